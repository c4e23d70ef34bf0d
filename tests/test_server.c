/*
 * server.c: a proto_server on 127.0.0.1 and raw clients written here, on
 * one event_base. The loop runs in bounded steps, so no case can hang.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "proto.h"
#include "tap.h"

#define CHUNK 16384
#define FILE_SIZE (5 * CHUNK)

static char dir[] = "/tmp/test_server.XXXXXX";
static char path[64];

static proto_server *
serve(struct event_base *base, proto_store **st, proto_manifest **mf)
{
	struct sockaddr_in in;
	proto_server_config cfg;
	proto_server *srv;
	int fd = open(path, O_RDONLY);

	memset(&cfg, 0, sizeof(cfg));
	cfg.conn.node_name = "seed";
	*st = proto_store_new();
	*mf = NULL;
	proto_manifest_build_fd(fd, "f", path, CHUNK, mf);
	close(fd);
	proto_store_add(*st, *mf);
	srv = proto_server_new(base, *st, &cfg, NULL, NULL);
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (srv == NULL || proto_server_listen(srv, (struct sockaddr *)&in,
	    sizeof(in)) != 0)
		diag("cannot serve on 127.0.0.1");
	return srv;
}

static void
turn(struct event_base *base)
{
	for (int i = 0; i < 8; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static int
send_msg(int fd, const proto_msg *m)
{
	uint8_t *frame;
	size_t len;
	ssize_t n;
	int rc = -1;

	if (proto_msg_pack(m, &frame, &len) != 0)
		return -1;
	n = send(fd, frame, len, MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		rc = 0;
	free(frame);
	return rc;
}

/* A plaintext client of srv that said HELLO and INTERESTED in id; rcvbuf
 * small for one that will read nothing. -1 on failure. */
static int
interested_client(const proto_server *srv, const uint8_t *id, int rcvbuf)
{
	struct sockaddr_in in;
	proto_msg m;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	in.sin_port = htons(proto_server_port(srv));
	if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0) {
		close(fd);
		return -1;
	}
	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = PROTO_VERSION;
	m.text = "client";
	m.text_len = 6;
	if (send_msg(fd, &m) != 0) {
		close(fd);
		return -1;
	}
	proto_msg_init(&m, PROTO_MSG_INTERESTED);
	m.rid = 1;
	m.id = id;
	if (send_msg(fd, &m) != 0) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Reads what is there; the bytes read, or -1 once the server has closed. */
static long
drain_fd(int fd)
{
	char buf[65536];
	long total = 0;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		total += n;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
		return -1;
	return total;
}

/*
 * HAVEs are not paced by requests: one goes to every interested peer for
 * every chunk the node gets. A peer that never reads must not make the
 * server queue them without end; one that reads gets them all.
 */
static void
test_have_to_a_peer_that_never_reads(void)
{
	struct event_base *base = event_base_new();
	proto_store *st;
	proto_manifest *mf;
	proto_server *srv = serve(base, &st, &mf);
	int idle, reader;
	long got = 0, r, have_len;
	unsigned rounds, sent = 0, clients_at_start;
	proto_msg m;
	uint8_t *frame;
	size_t len;

	proto_msg_init(&m, PROTO_MSG_HAVE);
	m.id = mf->id;
	m.index = 4;
	if (proto_msg_pack(&m, &frame, &len) != 0)
		len = 0;
	free(frame);
	have_len = (long)len;

	idle = interested_client(srv, mf->id, 4096);
	reader = interested_client(srv, mf->id, 0);
	ok(idle >= 0 && reader >= 0, "two interested clients connect");
	for (int i = 0; i < 50 && proto_server_clients(srv) < 2; i++)
		turn(base);
	turn(base);
	clients_at_start = proto_server_clients(srv);
	is_int(clients_at_start, 2, "the server holds both");
	/* 300 rounds of 1000 HAVEs, about 13 MB in all: more than the
	 * kernel's buffers and the server's bound together. */
	for (rounds = 0; rounds < 300; rounds++) {
		for (unsigned i = 0; i < 1000; i++, sent++)
			proto_server_have(srv, mf->id, sent % 5);
		turn(base);
		if ((r = drain_fd(reader)) < 0)
			break;
		got += r;
	}
	is_int(rounds, 300, "the reading client is never dropped");
	is_int(proto_server_clients(srv), 1,
	    "the client that reads nothing is dropped");
	/* The reader gets every HAVE: its output keeps draining. */
	for (int i = 0; i < 200 && got < (long)sent * have_len; i++) {
		struct pollfd p = { reader, POLLIN, 0 };
		turn(base);
		poll(&p, 1, 10);
		if ((r = drain_fd(reader)) < 0)
			break;
		got += r;
	}
	ok(have_len > 0 && got >= (long)sent * have_len, "the reader got "
	    "%ld bytes for %u HAVEs of %ld", got, sent, have_len);
	close(idle);
	close(reader);
	proto_server_free(srv);
	proto_store_free(st);
	proto_base_free(base);
}

/* A port already in use: a system error, named as one (PROTO_ERR_NOMEM was
 * -1, so "-1 with errno" read as "out of memory"). */
static void
test_listen_port_in_use(void)
{
	struct event_base *base = event_base_new();
	proto_store *st;
	proto_manifest *mf;
	proto_server *srv = serve(base, &st, &mf), *again;

	(void)mf;
	proto_server_config cfg;
	struct sockaddr_in in;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	again = proto_server_new(base, st, &cfg, NULL, NULL);
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	in.sin_port = htons(proto_server_port(srv));
	errno = 0;
	rc = proto_server_listen(again, (struct sockaddr *)&in, sizeof(in));
	is_int(rc, PROTO_ERR_SYSTEM, "listen on a port in use: PROTO_ERR_SYSTEM");
	is_int(errno, EADDRINUSE, "... errno EADDRINUSE");
	is_str(proto_strerror(rc), proto_strerror(PROTO_ERR_SYSTEM),
	    "... named a system error, not out of memory");
	proto_server_free(again);
	proto_server_free(srv);
	proto_store_free(st); /* and mf, which it took */
	proto_base_free(base);
}

int
main(void)
{
	static uint8_t content[FILE_SIZE];
	int fd;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/f", dir);
	for (size_t i = 0; i < sizeof(content); i++)
		content[i] = (uint8_t)(i * 7);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, content, sizeof(content)) !=
	    (ssize_t)sizeof(content))
		return 1;
	close(fd);
	test_have_to_a_peer_that_never_reads();
	test_listen_port_in_use();
	unlink(path);
	rmdir(dir);
	return done_testing();
}
