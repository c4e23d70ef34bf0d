/*
 * servefiles.c: a proto_server on 127.0.0.1 answering GET_FILES to a raw
 * client written here: the files cap in its HELLO; each id answered in
 * order with its bytes or nil (unknown, larger than a block); the answer
 * cut short to the asker's maxframe, and a first file that fits in no
 * answer nil, one that does not fit never read; 257 ids, or an id of the
 * wrong length, BAD_REQUEST.
 */
#include <arpa/inet.h>
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
#include "frame.h"
#include "tap.h"

static char dir[] = "/tmp/test_servefiles.XXXXXX";
/* small: 1000 bytes; block: 16384; big: 16385, two blocks */
static const size_t sizes[3] = { 1000, 16384, 16385 };
static uint8_t ids[3][PROTO_HASH_LEN];
static uint8_t content[16385];

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
	int rc;

	if (proto_msg_pack(m, &frame, &len) != 0)
		return -1;
	rc = send(fd, frame, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
	free(frame);
	return rc;
}

/* The next message on fd (turning base meanwhile, 2 s at most) into m,
 * which borrows from a static buffer until the next call. 0, or -1. */
static int
read_msg(struct event_base *base, int fd, proto_msg *m)
{
	static uint8_t buf[1 << 17], body[1 << 17];
	static size_t have;

	for (int i = 0; i < 400; i++) {
		long n = proto_frame_parse(buf, have, PROTO_FRAME_MAX);
		ssize_t got;
		if (n > 0) {
			memcpy(body, buf, (size_t)n);
			memmove(buf, buf + n, have - (size_t)n);
			have -= (size_t)n;
			return proto_msg_unpack(body + PROTO_FRAME_HEADER,
			    (size_t)n - PROTO_FRAME_HEADER, m) == 0 ? 0 : -1;
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

/* A client of srv that said HELLO (maxframe, or 0 for none) and read the
 * server's: its caps in *caps. -1 on failure. */
static int
client(struct event_base *base, const proto_server *srv, uint32_t maxframe,
    uint64_t *caps)
{
	struct sockaddr_in in;
	proto_msg m;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	in.sin_port = htons(proto_server_port(srv));
	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = PROTO_VERSION;
	if (maxframe != 0) {
		m.opts.has = PROTO_OPT_MAXFRAME;
		m.opts.maxframe = maxframe;
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0 ||
	    send_msg(fd, &m) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (read_msg(base, fd, &m) != 0 || m.type != PROTO_MSG_HELLO) {
		close(fd);
		return -1;
	}
	*caps = m.caps;
	proto_msg_clear(&m);
	return fd;
}

/* GET_FILES of n ids (rid 1), its answer in *m. 0, or -1. */
static int
ask(struct event_base *base, int fd, const uint8_t *list, size_t n,
    proto_msg *m)
{
	proto_msg q;

	proto_msg_init(&q, PROTO_MSG_GET_FILES);
	q.rid = 1;
	q.ids = list;
	q.nids = n;
	return send_msg(fd, &q) == 0 ? read_msg(base, fd, m) : -1;
}

static int
is_held(const proto_msg *m, size_t k, size_t len)
{
	return m->files[k].held && m->files[k].len == len &&
	    memcmp(m->files[k].data, content, len) == 0;
}

static void
test_answers(struct event_base *base, const proto_server *srv)
{
	static uint8_t many[10 + 257 * (2 + PROTO_HASH_LEN)];
	uint8_t list[4 * PROTO_HASH_LEN];
	uint64_t caps = 0;
	proto_msg m;
	int fd = client(base, srv, 0, &caps);

	ok(fd >= 0 && (caps & PROTO_CAP_FILES) != 0,
	    "the server's HELLO states the files cap");
	memcpy(list, ids[0], PROTO_HASH_LEN);
	memcpy(list + 32, ids[2], PROTO_HASH_LEN);
	memset(list + 64, 0x11, PROTO_HASH_LEN);
	memcpy(list + 96, ids[1], PROTO_HASH_LEN);
	ok(ask(base, fd, list, 4, &m) == 0 && m.type == PROTO_MSG_FILES &&
	    m.rid == 1 && m.nfiles_in == 4 && is_held(&m, 0, 1000) &&
	    !m.files[1].held && !m.files[2].held && is_held(&m, 3, 16384),
	    "FILES: the small file, nil for two blocks, nil for an unknown "
	    "id, a whole block; in the order asked");
	proto_msg_clear(&m);
	{
		/* [20, 1, [257 ids]], by hand: no packer writes it. */
		size_t n = 4;
		many[n++] = 0x93;
		many[n++] = 0x14;
		many[n++] = 0x01;
		many[n++] = 0xdc;
		many[n++] = 0x01;
		many[n++] = 0x01;
		for (int i = 0; i < 257; i++) {
			many[n++] = 0xc4;
			many[n++] = 0x20;
			memset(many + n, i, PROTO_HASH_LEN);
			n += PROTO_HASH_LEN;
		}
		many[0] = 0;
		many[1] = 0;
		many[2] = (uint8_t)((n - 4) >> 8);
		many[3] = (uint8_t)(n - 4);
		ok(send(fd, many, n, MSG_NOSIGNAL) == (ssize_t)n &&
		    read_msg(base, fd, &m) == 0 && m.type == PROTO_MSG_ERROR &&
		    m.code == PROTO_CODE_BAD_REQUEST, "257 ids: BAD_REQUEST");
		proto_msg_clear(&m);
	}
	{
		/* [20, 1, [bin 1]]: an id of one byte. */
		static const uint8_t odd[] = { 0, 0, 0, 7, 0x93, 0x14, 0x01,
		    0x91, 0xc4, 0x01, 0x00 };
		ok(send(fd, odd, sizeof(odd), MSG_NOSIGNAL) ==
		    (ssize_t)sizeof(odd) && read_msg(base, fd, &m) == 0 &&
		    m.type == PROTO_MSG_ERROR &&
		    m.code == PROTO_CODE_BAD_REQUEST,
		    "an id of one byte: BAD_REQUEST");
		proto_msg_clear(&m);
	}
	ok(ask(base, fd, list, 0, &m) == 0 && m.type == PROTO_MSG_FILES &&
	    m.nfiles_in == 0, "no ids: FILES of none");
	proto_msg_clear(&m);
	close(fd);

	/* maxframe 4096: the block fits in no answer. */
	fd = client(base, srv, 4096, &caps);
	memcpy(list, ids[0], PROTO_HASH_LEN);
	memcpy(list + 32, ids[1], PROTO_HASH_LEN);
	ok(fd >= 0 && ask(base, fd, list, 2, &m) == 0 &&
	    m.type == PROTO_MSG_FILES && m.nfiles_in == 1 &&
	    is_held(&m, 0, 1000),
	    "maxframe 4096: cut short before the block, asked again later");
	proto_msg_clear(&m);
	ok(ask(base, fd, list + 32, 1, &m) == 0 && m.type == PROTO_MSG_FILES &&
	    m.nfiles_in == 1 && !m.files[0].held,
	    "maxframe 4096: the block alone is nil, never asked for ever");
	proto_msg_clear(&m);
	if (fd >= 0)
		close(fd);
}

/* A file that does not fit is left unread: its size, from the manifest,
 * decides. The block cut short on disk would be found short (and
 * answered nil) were it read; unread, the answer stops short before it. */
static void
test_unread(struct event_base *base, const proto_server *srv,
    const char *block_path)
{
	uint8_t list[2 * PROTO_HASH_LEN];
	uint64_t caps = 0;
	proto_msg m;
	int fd, ok_write = truncate(block_path, 0) == 0;

	fd = client(base, srv, 4096, &caps);
	memcpy(list, ids[0], PROTO_HASH_LEN);
	memcpy(list + 32, ids[1], PROTO_HASH_LEN);
	ok(ok_write && fd >= 0 && ask(base, fd, list, 2, &m) == 0 &&
	    m.type == PROTO_MSG_FILES && m.nfiles_in == 1 &&
	    is_held(&m, 0, 1000),
	    "maxframe 4096: the block that does not fit is not read (cut "
	    "short, not nil for its missing bytes)");
	proto_msg_clear(&m);
	if (fd >= 0)
		close(fd);
}

int
main(void)
{
	struct event_base *base = event_base_new();
	proto_server_config cfg;
	struct sockaddr_in in;
	proto_server *srv;
	proto_store *st = proto_store_new();
	char path[3][64];

	if (mkdtemp(dir) == NULL)
		return 1;
	for (size_t i = 0; i < sizeof(content); i++)
		content[i] = (uint8_t)(i * 7);
	for (int k = 0; k < 3; k++) {
		proto_manifest *mf = NULL;
		int fd;
		snprintf(path[k], sizeof(path[k]), "%s/f%d", dir, k);
		fd = open(path[k], O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, content, sizeof(content)) !=
		    (ssize_t)sizeof(content) || ftruncate(fd, sizes[k]) != 0 ||
		    proto_manifest_build_fd(fd, "f", path[k], 16384, &mf) != 0)
			return 1;
		close(fd);
		memcpy(ids[k], mf->id, PROTO_HASH_LEN);
		proto_store_add(st, mf);
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.conn.node_name = "seed";
	srv = proto_server_new(base, st, &cfg, NULL, NULL);
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (srv == NULL || proto_server_listen(srv, (struct sockaddr *)&in,
	    sizeof(in)) != 0)
		return 1;
	test_answers(base, srv);
	test_unread(base, srv, path[1]);
	proto_server_free(srv);
	proto_store_free(st);
	proto_base_free(base);
	for (int k = 0; k < 3; k++)
		unlink(path[k]);
	rmdir(dir);
	return done_testing();
}
