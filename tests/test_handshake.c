/*
 * handshake.c and the connection's dispatch, through a proto_conn whose
 * peer is a raw bufferevent of a pair (no sockets): the options our HELLO
 * states and what the peer's mean (its maxreq, maxframe, seen, addrs and
 * ext, read back through the accessors); the version both speak, or ERROR
 * VERSION naming the range; pushes of unknown types dropped, requests of
 * unknown types and our own extensions handed up; and no frame sent past
 * the peer's maxframe. The loop only runs in bounded steps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proto.h"
#include "frame.h"
#include "tap.h"

struct side {
	proto_conn *c;
	int ready, closed, close_err, nmsg;
	unsigned types[16];
	uint32_t rids[16];
};

static int
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Runs the loop until *flag reaches want or ms pass. */
static int
run_until(struct event_base *base, const int *flag, int want, int ms)
{
	int end = now_ms() + ms;
	struct timespec nap = { 0, 1000000 };

	while (*flag < want && now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (*flag < want)
			nanosleep(&nap, NULL);
	}
	return *flag >= want;
}

static void
on_ready(proto_conn *c, const proto_msg *hello, void *ctx)
{
	(void)c;
	(void)hello;
	((struct side *)ctx)->ready++;
}

static void
on_msg(proto_conn *c, proto_msg *m, void *ctx)
{
	struct side *s = ctx;

	(void)c;
	if (s->nmsg < 16) {
		s->types[s->nmsg] = m->type;
		s->rids[s->nmsg] = m->rid;
	}
	s->nmsg++;
}

static void
on_close(proto_conn *c, int err, void *ctx)
{
	struct side *s = ctx;

	(void)c;
	s->closed++;
	s->close_err = err;
}

static const proto_conn_cbs cbs = { on_ready, on_msg, on_close, NULL, NULL, NULL };

struct env {
	struct event_base *base;
	struct bufferevent *pair[2];
	struct side s;
};

static const proto_hello_ext our_ext[] = { { "ut_echo", 7, 70 } };

/* A proto_conn on pair[1] stating maxreq 64, an address and extension
 * ut_echo as type 70; the raw pair[0] is the test's peer. */
static void
env_init(struct env *e, size_t max_frame)
{
	proto_addr addr;
	proto_conn_config cfg;

	memset(e, 0, sizeof(*e));
	memset(&cfg, 0, sizeof(cfg));
	cfg.node_name = "node";
	cfg.listen_port = 7000;
	cfg.timeout = 5;
	cfg.max_frame = max_frame;
	cfg.max_requests = 64;
	if (proto_addr_parse(&addr, "192.0.2.1:7000", 14, 0, PROTO_ADDR_NUMERIC,
	    NULL) != 0)
		exit(2);
	cfg.addrs = &addr;
	cfg.naddrs = 1;
	cfg.ext = our_ext;
	cfg.next = 1;
	if ((e->base = event_base_new()) == NULL ||
	    bufferevent_pair_new(e->base, BEV_OPT_DEFER_CALLBACKS,
	    e->pair) != 0) {
		fprintf(stderr, "libevent setup failed\n");
		exit(2);
	}
	if ((e->s.c = proto_conn_new(e->pair[1], &cfg, &cbs, &e->s)) == NULL)
		exit(2);
	bufferevent_enable(e->pair[0], EV_READ | EV_WRITE);
}

static void
env_done(struct env *e)
{
	struct timespec nap = { 0, 5000000 };

	proto_conn_free(e->s.c);
	bufferevent_free(e->pair[0]);
	event_base_loop(e->base, EVLOOP_NONBLOCK);
	nanosleep(&nap, NULL);
	proto_base_free(e->base);
}

static void
raw_write(struct env *e, const void *p, size_t n)
{
	bufferevent_write(e->pair[0], p, n);
}

static void
raw_send(struct env *e, const proto_msg *m)
{
	uint8_t *f;
	size_t len;

	if (proto_msg_pack(m, &f, &len) != 0)
		exit(2);
	raw_write(e, f, len);
	free(f);
}

/* The next message from the conn, within 2 s: its frame (free it after
 * clearing m), or NULL. */
static uint8_t *
raw_recv(struct env *e, proto_msg *m)
{
	struct evbuffer *in = bufferevent_get_input(e->pair[0]);
	int end = now_ms() + 2000;
	struct timespec nap = { 0, 1000000 };

	for (;;) {
		size_t avail = evbuffer_get_length(in);
		long n = avail >= 4 ? proto_frame_parse(evbuffer_pullup(in, -1),
		    avail, PROTO_FRAME_MAX) : 0;
		if (n > 0) {
			uint8_t *f = malloc((size_t)n);
			if (f == NULL)
				exit(2);
			evbuffer_remove(in, f, (size_t)n);
			if (proto_msg_unpack(f + 4, (size_t)n - 4, m) != 0) {
				free(f);
				return NULL;
			}
			return f;
		}
		if (n < 0 || now_ms() > end)
			return NULL;
		event_base_loop(e->base, EVLOOP_NONBLOCK);
		nanosleep(&nap, NULL);
	}
}

/* A HELLO from the raw side: version, and opts (may be NULL). */
static void
raw_hello(struct env *e, uint32_t version, const proto_hello_opts *opts)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = version;
	m.text = "raw";
	m.text_len = 3;
	if (opts != NULL)
		m.opts = *opts;
	raw_send(e, &m);
}

static void
test_our_hello(void)
{
	struct env e;
	proto_msg m;
	uint8_t *f;

	env_init(&e, 16384);
	f = raw_recv(&e, &m);
	ok(f != NULL && m.type == PROTO_MSG_HELLO && m.version == 1,
	    "our HELLO arrives, version 1");
	ok(f != NULL && (m.opts.has & PROTO_OPT_VMIN) && m.opts.vmin == 1,
	    "our HELLO: vmin 1");
	ok(f != NULL && (m.opts.has & PROTO_OPT_MAXREQ) && m.opts.maxreq == 64,
	    "our HELLO: maxreq 64 (the config's)");
	ok(f != NULL && (m.opts.has & PROTO_OPT_MAXFRAME) &&
	    m.opts.maxframe == 16384,
	    "our HELLO: maxframe 16384 (the frame it takes after the handshake)");
	ok(f != NULL && !(m.opts.has & PROTO_OPT_SEEN),
	    "our HELLO: no seen on a pair (no socket address)");
	ok(f != NULL && m.opts.naddrs == 1 && m.opts.addrs[0].port == 7000 &&
	    m.opts.addrs[0].host_len == 9 &&
	    memcmp(m.opts.addrs[0].host, "192.0.2.1", 9) == 0,
	    "our HELLO: addrs [192.0.2.1, 7000]");
	ok(f != NULL && m.opts.next == 1 && m.opts.ext[0].type == 70 &&
	    m.opts.ext[0].name_len == 7 &&
	    memcmp(m.opts.ext[0].name, "ut_echo", 7) == 0,
	    "our HELLO: ext {ut_echo: 70}");
	if (f != NULL) {
		proto_msg_clear(&m);
		free(f);
	}
	env_done(&e);
}

static void
test_their_options(void)
{
	static const proto_peer_entry addrs[] = { { "10.9.8.7", 8, 4000, NULL, 0 },
	    { "2001:db8::2", 11, 4001, NULL, 0 } };
	static const proto_hello_ext ext[] = { { "ut_echo", 7, 99 },
	    { "ut_other", 8, 64 } };
	proto_hello_opts o;
	const proto_addr *got;
	struct env e;

	memset(&o, 0, sizeof(o));
	o.has = PROTO_OPT_MAXREQ | PROTO_OPT_MAXFRAME | PROTO_OPT_SEEN;
	o.maxreq = 5;
	o.maxframe = 1u << 30;
	o.seen = (proto_peer_entry){ "203.0.113.9", 11, 51000, NULL, 0 };
	o.addrs = addrs;
	o.naddrs = 2;
	o.ext = ext;
	o.next = 2;
	env_init(&e, 0);
	raw_hello(&e, 1, &o);
	ok(run_until(e.base, &e.s.ready, 1, 2000), "HELLO with options: ready");
	is_int(proto_conn_version(e.s.c), 1, "version 1 agreed");
	is_int(proto_conn_peer_maxreq(e.s.c), 5, "peer maxreq 5 kept");
	is_int(proto_conn_peer_max_frame(e.s.c), PROTO_FRAME_MAX,
	    "peer maxframe 2^30 taken as PROTO_FRAME_MAX");
	ok(proto_conn_seen(e.s.c) != NULL &&
	    strcmp(proto_addr_text(proto_conn_seen(e.s.c)),
	    "203.0.113.9:51000") == 0, "seen: 203.0.113.9:51000");
	ok(proto_conn_peer_addrs(e.s.c, &got) == 2 &&
	    strcmp(proto_addr_text(&got[0]), "10.9.8.7:4000") == 0 &&
	    strcmp(proto_addr_text(&got[1]), "[2001:db8::2]:4001") == 0,
	    "peer addrs kept, both families");
	is_int(proto_conn_peer_ext(e.s.c, "ut_echo"), 99,
	    "peer's ext: ut_echo is its type 99");
	is_int(proto_conn_peer_ext(e.s.c, "ut_other"), 64,
	    "peer's ext: ut_other is its type 64");
	is_int(proto_conn_peer_ext(e.s.c, "ut_none"), 0,
	    "peer's ext: an extension it did not name is 0");
	is_str(proto_conn_ext_name(e.s.c, 70), "ut_echo",
	    "our ext: type 70 is ut_echo");
	ok(proto_conn_ext_name(e.s.c, 99) == NULL,
	    "our ext: type 99 is none of ours (the peer's number)");
	env_done(&e);

	/* A peer of before the options: nothing said, the defaults. */
	env_init(&e, 0);
	raw_hello(&e, 1, NULL);
	ok(run_until(e.base, &e.s.ready, 1, 2000), "HELLO without options: ready");
	ok(proto_conn_peer_maxreq(e.s.c) == UINT32_MAX &&
	    proto_conn_peer_max_frame(e.s.c) == PROTO_FRAME_MAX &&
	    proto_conn_seen(e.s.c) == NULL &&
	    proto_conn_peer_addrs(e.s.c, &got) == 0 &&
	    proto_conn_peer_ext(e.s.c, "ut_echo") == 0,
	    "no options: maxreq unbounded, maxframe 16 MiB, no seen, addrs, ext");
	env_done(&e);
}

/* The HELLO a peer of versions vmin..vmax sends: its answer, ready or
 * refused (*text: the ERROR's words). */
static int
versions(uint32_t vmax, int has_vmin, uint32_t vmin, char *text, size_t len)
{
	proto_hello_opts o;
	struct env e;
	proto_msg m;
	uint8_t *f;
	int ready;

	memset(&o, 0, sizeof(o));
	o.has = has_vmin ? PROTO_OPT_VMIN : 0;
	o.vmin = vmin;
	env_init(&e, 0);
	raw_hello(&e, vmax, &o);
	run_until(e.base, &e.s.closed, 1, 300);
	ready = e.s.ready && !e.s.closed;
	text[0] = '\0';
	while ((f = raw_recv(&e, &m)) != NULL) {
		if (m.type == PROTO_MSG_ERROR && m.rid == 0 &&
		    m.code == PROTO_CODE_VERSION)
			snprintf(text, len, "%.*s", (int)m.text_len, m.text);
		proto_msg_clear(&m);
		free(f);
		if (text[0])
			break;
	}
	if (!ready && e.s.close_err != PROTO_ERR_VERSION)
		ready = -1;
	env_done(&e);
	return ready;
}

static void
test_versions(void)
{
	char text[300];

	is_int(versions(2, 1, 1, text, sizeof(text)), 1,
	    "versions 1 to 2: spoken at 1");
	is_int(versions(5, 1, 0, text, sizeof(text)), 1,
	    "versions 0 to 5: spoken at 1");
	is_int(versions(2, 0, 0, text, sizeof(text)), 0,
	    "version 2 without vmin (2 only): refused VERSION");
	is_str(text, "unsupported protocol version: supported versions 1 to 1",
	    "the refusal names the range this node speaks");
	is_int(versions(3, 1, 2, text, sizeof(text)), 0,
	    "versions 2 to 3: refused");
	is_int(versions(0, 0, 0, text, sizeof(text)), 0,
	    "version 0: refused");
	is_int(versions(1, 1, 1, text, sizeof(text)), 1, "version 1, vmin 1");
}

static void
test_dispatch(void)
{
	/* [42, 0, {"x": 1}], [99, 0], [200, 0, "y"], [48, 0],
	 * [42, 5] (an unknown request), [70, 0, 1] (our ut_echo, pushed),
	 * [70, 6] (asked), [2, 7] (LIST). */
	static const uint8_t frames[] = {
		0, 0, 0, 7, 0x93, 0x2a, 0x00, 0x81, 0xa1, 'x', 0x01,
		0, 0, 0, 3, 0x92, 0x63, 0x00,
		0, 0, 0, 6, 0x93, 0xcc, 0xc8, 0x00, 0xa1, 'y',
		0, 0, 0, 3, 0x92, 0x30, 0x00,
		0, 0, 0, 3, 0x92, 0x2a, 0x05,
		0, 0, 0, 4, 0x93, 0x46, 0x00, 0x01,
		0, 0, 0, 3, 0x92, 0x46, 0x06,
		0, 0, 0, 3, 0x92, 0x02, 0x07,
	};
	struct env e;

	env_init(&e, 0);
	raw_hello(&e, 1, NULL);
	run_until(e.base, &e.s.ready, 1, 2000);
	raw_write(&e, frames, sizeof(frames));
	run_until(e.base, &e.s.nmsg, 4, 2000);
	ok(!e.s.closed, "pushes of unknown types: the connection lives");
	is_int(e.s.nmsg, 4, "four messages handed up, the pushes not");
	ok(e.s.types[0] == 42 && e.s.rids[0] == 5,
	    "an unknown request (type 42, rid 5) handed up to be answered");
	ok(e.s.types[1] == 70 && e.s.rids[1] == 0,
	    "our extension's push (type 70, rid 0) handed up");
	ok(e.s.types[2] == 70 && e.s.rids[2] == 6,
	    "our extension's request handed up");
	ok(e.s.types[3] == PROTO_MSG_LIST && e.s.rids[3] == 7,
	    "a LIST after them all: the stream is in step");
	env_done(&e);
}

static void
test_maxframe(void)
{
	proto_hello_opts o;
	struct env e;
	proto_msg m;
	uint8_t *f;
	int fd = memfd_create("test_handshake", 0);
	static uint8_t data[8192];

	if (fd < 0 || write(fd, data, sizeof(data)) != (ssize_t)sizeof(data))
		exit(2);
	memset(&o, 0, sizeof(o));
	o.has = PROTO_OPT_MAXFRAME;
	o.maxframe = 4096;
	env_init(&e, 0);
	raw_hello(&e, 1, &o);
	run_until(e.base, &e.s.ready, 1, 2000);
	/* [7, 1, bin32 of n]: 1 + 1 + 1 + 5 bytes around the data. */
	is_int(proto_conn_send_chunk_file(e.s.c, 1, fd, 0, 4096 - 8), 0,
	    "a CHUNK frame of exactly the peer's maxframe (4096) goes");
	is_int(proto_conn_send_chunk_file(e.s.c, 2, fd, 0, 4096 - 7),
	    PROTO_ERR_TOO_BIG, "one byte more: TOO_BIG, nothing queued");
	proto_msg_init(&m, PROTO_MSG_HAS_REPLY);
	m.rid = 3;
	is_int(proto_conn_send(e.s.c, &m), 0, "a small answer goes");
	f = raw_recv(&e, &m); /* our HELLO */
	if (f != NULL) {
		proto_msg_clear(&m);
		free(f);
	}
	f = raw_recv(&e, &m);
	ok(f != NULL && m.type == PROTO_MSG_CHUNK && m.rid == 1 &&
	    m.data_len == 4096 - 8, "the peer gets the CHUNK of 4096 ...");
	if (f != NULL) {
		proto_msg_clear(&m);
		free(f);
	}
	f = raw_recv(&e, &m);
	ok(f != NULL && m.type == PROTO_MSG_HAS_REPLY && m.rid == 3,
	    "... then the answer after it: nothing of the refused one");
	if (f != NULL) {
		proto_msg_clear(&m);
		free(f);
	}
	env_done(&e);
	close(fd);
}

int
main(void)
{
	test_our_hello();
	test_their_options();
	test_versions();
	test_dispatch();
	test_maxframe();
	libevent_global_shutdown();
	return done_testing();
}
