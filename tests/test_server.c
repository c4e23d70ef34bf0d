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
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "proto.h"
#include "frame.h"
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

/* A plaintext client that says HELLO with listen_port, caps and rec (its
 * record, or NULL) and then sends first (NULL: nothing more). -1 on
 * failure. */
static int
hello_client(const proto_server *srv, uint16_t listen_port, uint64_t caps,
    const uint8_t *rec, size_t rec_len, const proto_msg *first)
{
	struct sockaddr_in in;
	proto_msg m;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	in.sin_port = htons(proto_server_port(srv));
	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = PROTO_VERSION;
	m.listen_port = listen_port;
	m.caps = caps;
	m.opts.rec = rec;
	m.opts.rec_len = rec_len;
	if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0 ||
	    send_msg(fd, &m) != 0 || (first != NULL && send_msg(fd, first) != 0)) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* The next message of type from fd, turning base meanwhile (2 s at
 * most), into m, which borrows from a static buffer until the next call
 * and is the caller's to clear. 0, or -1. */
static int
read_types(struct event_base *base, int fd, unsigned type, unsigned type2,
    proto_msg *m)
{
	static uint8_t buf[1 << 17];
	static size_t have;
	static int last_fd = -1;

	if (fd != last_fd)
		have = 0;
	last_fd = fd;
	for (int i = 0; i < 400; i++) {
		long n = proto_frame_parse(buf, have, PROTO_FRAME_MAX);
		ssize_t got;
		if (n > 0) {
			/* m borrows from body; buf moves on. */
			static uint8_t body[1 << 17];
			memcpy(body, buf, (size_t)n);
			memmove(buf, buf + n, have - (size_t)n);
			have -= (size_t)n;
			if (proto_msg_unpack(body + PROTO_FRAME_HEADER,
			    (size_t)n - PROTO_FRAME_HEADER, m) != 0)
				return -1;
			if (m->type == type || m->type == type2)
				return 0;
			proto_msg_clear(m);
			continue;
		}
		turn(base);
		got = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (got > 0)
			have += (size_t)got;
		else if (got == 0)
			return -1;
		else
			poll(&(struct pollfd){ fd, POLLIN, 0 }, 1, 5);
	}
	return -1;
}

/* The next message of type on fd, the others skipped: 0, or -1. */
static int
read_type(struct event_base *base, int fd, unsigned type, proto_msg *m)
{
	return read_types(base, fd, type, type, m);
}

/*
 * PEERS with an id: the peers that asked for that file (one of ours) come
 * first; a record a client sent in its HELLO is passed on to askers that
 * take records, and left out for the others; a file we do not share is
 * not noted.
 */
static void
test_peers_for_a_file(void)
{
	struct event_base *base = event_base_new();
	proto_store *st;
	proto_manifest *mf;
	proto_server *srv = serve(base, &st, &mf);
	char kdir[] = "/tmp/test_server_key.XXXXXX", kpath[64];
	uint8_t rec[PROTO_RECORD_MAX], other[PROTO_HASH_LEN];
	const proto_known_peer *e;
	proto_identity *key = NULL;
	proto_record r;
	proto_addr a7001, a7002;
	proto_msg get, peers, m;
	size_t rec_len = 0;
	int fa, fb, fc, fd, fe;

	snprintf(kpath, sizeof(kpath), "%s/k.pem", mkdtemp(kdir));
	memset(&r, 0, sizeof(r));
	proto_addr_from_host(&a7001, "127.0.0.1", 9, 7001);
	proto_addr_from_host(&a7002, "127.0.0.1", 9, 7002);
	r.addrs[0] = a7001;
	r.naddrs = 1;
	r.seq = 1;
	r.exp = (uint64_t)time(NULL) + 3600;
	if (proto_identity_load(kpath, 1, &key) != 0 ||
	    proto_record_sign(&r, key, rec, &rec_len) != 0)
		diag("cannot make a record");
	memset(other, 0x42, sizeof(other));

	proto_msg_init(&get, PROTO_MSG_GET_MANIFEST);
	get.rid = 1;
	get.id = mf->id;
	fa = hello_client(srv, 7001, 0, rec, rec_len, &get);
	get.id = other;
	fb = hello_client(srv, 7002, 0, NULL, 0, &get);
	fc = hello_client(srv, 7003, 0, NULL, 0, NULL);
	ok(fa >= 0 && fb >= 0 && fc >= 0, "three listening clients connect");
	ok(read_type(base, fa, PROTO_MSG_MANIFEST, &m) == 0,
	    "a: asked for our file, got its manifest");
	proto_msg_clear(&m);
	ok(read_type(base, fb, PROTO_MSG_ERROR, &m) == 0,
	    "b: asked for a file we do not share: NOT_FOUND");
	proto_msg_clear(&m);
	for (int i = 0; i < 20; i++)
		turn(base);
	e = proto_peers_find(proto_server_known(srv), &a7001);
	ok(e != NULL && e->record_len == rec_len && e->nids == 1 &&
	    memcmp(e->ids[0], mf->id, PROTO_HASH_LEN) == 0 && e->addr.has_pin &&
	    memcmp(e->addr.pin, proto_identity_id(key), PROTO_IDENTITY_LEN) == 0,
	    "a's entry: its record (pinned to it), holding our file");
	e = proto_peers_find(proto_server_known(srv), &a7002);
	ok(e != NULL && e->nids == 0 && e->record_len == 0,
	    "b's entry: unsigned, and the id we do not share not noted");

	proto_msg_init(&peers, PROTO_MSG_PEERS);
	peers.rid = 10;
	peers.id = NULL;
	send_msg(fa, &peers);
	ok(read_type(base, fa, PROTO_MSG_PEERS_REPLY, &m) == 0 &&
	    m.rid == 10 && m.npeers == 2 && m.peers[0].port != 7001 &&
	    m.peers[1].port != 7001, "a asks without an id: the two others, "
	    "not itself");
	proto_msg_clear(&m);
	/* a seen longest ago: only what it holds puts it first. (The
	 * connected clients were seen again at that first PEERS, and are
	 * not for a minute.) */
	for (size_t i = 0; i < proto_server_known(srv)->count; i++) {
		proto_known_peer *k = &proto_server_known(srv)->peers[i];
		k->seen = time(NULL) - (proto_addr_equal(&k->addr, &a7001) ?
		    100 : proto_addr_port(&k->addr) - 7000);
	}
	proto_msg_init(&peers, PROTO_MSG_PEERS);
	peers.rid = 9;
	peers.id = mf->id;
	fd = hello_client(srv, 0, PROTO_CAP_RECORDS, NULL, 0, &peers);
	ok(read_type(base, fd, PROTO_MSG_PEERS_REPLY, &m) == 0 && m.rid == 9 &&
	    m.npeers == 3, "PEERS about our file, records cap: 3 entries");
	ok(m.npeers == 3 && m.peers[0].port == 7001 &&
	    m.peers[0].record_len == rec_len &&
	    memcmp(m.peers[0].record, rec, rec_len) == 0,
	    "... a first, who asked for that file, with its record");
	ok(m.npeers == 3 && m.peers[1].record == NULL &&
	    m.peers[2].record == NULL && m.peers[1].port + m.peers[2].port ==
	    7002 + 7003 && m.peers[1].port != m.peers[2].port,
	    "... then the others, unsigned");
	proto_msg_clear(&m);
	fe = hello_client(srv, 0, 0, NULL, 0, &peers);
	ok(read_type(base, fe, PROTO_MSG_PEERS_REPLY, &m) == 0 &&
	    m.npeers == 3 && m.peers[0].port == 7001 &&
	    m.peers[0].record == NULL,
	    "without the records cap: a first, without its record");
	proto_msg_clear(&m);
	close(fe);

	close(fa);
	close(fb);
	close(fc);
	close(fd);
	proto_server_free(srv);
	proto_store_free(st);
	proto_identity_free(key);
	unlink(kpath);
	rmdir(kdir);
	proto_base_free(base);
}

/* The bits set in a HAVE_MAP. */
static unsigned
map_count(const proto_msg *m, uint64_t *first)
{
	unsigned n = 0;

	for (size_t i = 0; i < m->bits_len * 8; i++)
		if (m->bits[i / 8] & (0x80 >> (i % 8))) {
			if (n++ == 0)
				*first = i;
		}
	return n;
}

/*
 * Upload slots and super-seeding: of 7 sharing fetchers with the choke
 * cap, each is shown one chunk, the first 5 five different ones, and 5
 * are unchoked (their GET_CHUNK answered), 2 choked (ERROR CHOKED); a
 * fetcher without the cap is never choked; one that does not listen is
 * shown the whole file.
 */
static void
test_slots_and_super_seeding(void)
{
	struct event_base *base = event_base_new();
	proto_store *st;
	proto_manifest *mf;
	proto_server *srv = serve(base, &st, &mf);
	int fds[9], chunks = 0, choked = 0, distinct = 0;
	uint64_t shown[9] = { 0 };
	unsigned one = 0;
	proto_msg m, r;

	for (int i = 0; i < 9; i++) {
		uint64_t caps = PROTO_CAP_SWARM | (i < 7 ? PROTO_CAP_CHOKE : 0);
		fds[i] = hello_client(srv, i == 8 ? 0 : (uint16_t)(7101 + i),
		    caps, NULL, 0, NULL);
	}
	turn(base);
	turn(base);
	/* All asked before any is answered: no clock runs in between. */
	for (int i = 0; i < 9; i++) {
		proto_msg_init(&m, PROTO_MSG_INTERESTED);
		m.rid = 1;
		m.id = mf->id;
		send_msg(fds[i], &m);
	}
	for (int i = 0; i < 9; i++) {
		if (read_type(base, fds[i], PROTO_MSG_HAVE_MAP, &r) == 0) {
			unsigned n = map_count(&r, &shown[i]);
			if (i < 8)
				one += n == 1;
			else
				ok(n == 5, "super-seeding: a fetcher that does not "
				    "listen is shown the whole file (%u)", n);
			proto_msg_clear(&r);
		}
	}
	is_int(one, 8, "super-seeding: each sharing fetcher is shown one chunk");
	for (int i = 0; i < 8; i++) {
		int seen = 0;
		for (int k = 0; k < i; k++)
			seen |= shown[i] == shown[k];
		distinct += !seen;
	}
	is_int(distinct, 5, "super-seeding: the 8 are shown all 5 chunks, "
	    "the least shown first");
	for (int i = 0; i < 8; i++) {
		proto_msg_init(&m, PROTO_MSG_GET_CHUNK);
		m.rid = 2;
		m.id = mf->id;
		m.index = shown[i];
		m.chunk_size = CHUNK;
		send_msg(fds[i], &m);
	}
	for (int i = 0; i < 7; i++) {
		if (read_types(base, fds[i], PROTO_MSG_CHUNK, PROTO_MSG_ERROR,
		    &r) != 0)
			continue;
		chunks += r.type == PROTO_MSG_CHUNK;
		choked += r.type == PROTO_MSG_ERROR &&
		    r.code == PROTO_CODE_CHOKED;
		proto_msg_clear(&r);
	}
	is_int(chunks, 5, "slots: 5 of 7 fetchers with the choke cap served");
	is_int(choked, 2, "slots: the other 2 answered ERROR CHOKED");
	ok(read_type(base, fds[7], PROTO_MSG_CHUNK, &r) == 0,
	    "slots: a fetcher without the cap is never choked");
	proto_msg_clear(&r);
	for (int i = 0; i < 9; i++)
		close(fds[i]);
	proto_server_free(srv);
	proto_store_free(st);
	proto_base_free(base);
}

/* What holds() in test_have_unless is asked, and of whom it says yes. */
struct holds_ctx {
	char yes[64];       /* proto_conn_peer of the client that holds */
	int asked, said_yes;
};

static int
holds_if_peer(const proto_conn *c, uint64_t index, void *arg)
{
	struct holds_ctx *h = arg;
	int yes = strcmp(proto_conn_peer(c), h->yes) == 0;

	(void)index;
	h->asked++;
	h->said_yes += yes;
	return yes;
}

/*
 * proto_server_have_unless: no HAVE to the interested client of which
 * holds() says it has the chunk; the others get theirs. A later plain
 * HAVE reaches both, so "none" is seen without waiting for silence.
 */
static void
test_have_unless(void)
{
	struct event_base *base = event_base_new();
	proto_store *st;
	proto_manifest *mf;
	proto_server *srv = serve(base, &st, &mf);
	struct sockaddr_in local;
	socklen_t sl = sizeof(local);
	struct holds_ctx h;
	int a, b;
	proto_msg m;

	memset(&h, 0, sizeof(h));
	a = interested_client(srv, mf->id, 0);
	b = interested_client(srv, mf->id, 0);
	ok(a >= 0 && b >= 0, "have_unless: two interested clients connect");
	if (getsockname(a, (struct sockaddr *)&local, &sl) == 0)
		snprintf(h.yes, sizeof(h.yes), "127.0.0.1:%u",
		    ntohs(local.sin_port));
	for (int i = 0; i < 50 && proto_server_clients(srv) < 2; i++)
		turn(base);
	turn(base);
	proto_server_have_unless(srv, mf->id, 3, holds_if_peer, &h);
	is_int(h.asked, 2, "have_unless: holds() asked of both clients");
	is_int(h.said_yes, 1, "have_unless: ... and says one holds chunk 3");
	proto_server_have(srv, mf->id, 2);
	ok(read_type(base, a, PROTO_MSG_HAVE, &m) == 0 && m.index == 2,
	    "have_unless: the client that holds chunk 3 gets no HAVE for it, "
	    "only the later HAVE 2");
	proto_msg_clear(&m);
	ok(read_type(base, b, PROTO_MSG_HAVE, &m) == 0 && m.index == 3,
	    "have_unless: the other client gets HAVE 3");
	proto_msg_clear(&m);
	ok(read_type(base, b, PROTO_MSG_HAVE, &m) == 0 && m.index == 2,
	    "have_unless: ... then HAVE 2");
	proto_msg_clear(&m);
	close(a);
	close(b);
	proto_server_free(srv);
	proto_store_free(st);
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
	test_peers_for_a_file();
	test_slots_and_super_seeding();
	test_have_unless();
	unlink(path);
	rmdir(dir);
	return done_testing();
}
