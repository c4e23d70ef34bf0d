/*
 * beacon.c: a real beacon on a real event_base, with UDP on 127.0.0.1 only.
 * Each beacon gets a free port and the target 127.0.0.1, so its own
 * announcements come back to it; a client socket on another port sends
 * queries and reads the answers. The event loop only ever runs in bounded
 * steps (EVLOOP_NONBLOCK under a wall-clock deadline), so no case can hang.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "proto.h"
#include "tap.h"

#define MAXREC 64
#define TCP_PORT 4242
#define NFILES 17

/* What the callbacks saw. */
struct rec {
	uint8_t accept[PROTO_HASH_LEN]; /* the one id has() says yes to */
	int has_calls;
	int nfiles_calls;
	int nbad;
	int bad_err[MAXREC];
	uint16_t bad_from_port[MAXREC];
	int nann;
	struct {
		uint16_t from_port;
		uint32_t from_addr;
		int family;
		uint32_t nonce;
		uint16_t port;
		char name[PROTO_DISCO_NAME_MAX + 1];
		uint64_t nfiles;
	} ann[MAXREC];
};

static struct event_base *base;

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
nap(void)
{
	struct timespec ts = { 0, 1000000 };

	nanosleep(&ts, NULL);
}

static int
has_cb(const uint8_t id[PROTO_HASH_LEN], void *ctx)
{
	struct rec *r = ctx;

	r->has_calls++;
	return memcmp(id, r->accept, PROTO_HASH_LEN) == 0;
}

static uint64_t
nfiles_cb(void *ctx)
{
	struct rec *r = ctx;

	r->nfiles_calls++;
	return NFILES;
}

static void
announce_cb(const struct sockaddr *sa, const proto_disco_msg *m,
    void *ctx)
{
	const struct sockaddr_in *from = (const void *)sa;
	struct rec *r = ctx;

	if (r->nann >= MAXREC)
		return;
	r->ann[r->nann].family = sa->sa_family;
	r->ann[r->nann].from_port = ntohs(from->sin_port);
	r->ann[r->nann].from_addr = ntohl(from->sin_addr.s_addr);
	r->ann[r->nann].nonce = m->nonce;
	r->ann[r->nann].port = m->port;
	snprintf(r->ann[r->nann].name, sizeof(r->ann[r->nann].name), "%.*s",
	    (int)m->name_len, m->name);
	r->ann[r->nann].nfiles = m->nfiles;
	r->nann++;
}

static void
bad_cb(const struct sockaddr *sa, int err, void *ctx)
{
	const struct sockaddr_in *from = (const void *)sa;
	struct rec *r = ctx;

	if (r->nbad < MAXREC) {
		r->bad_err[r->nbad] = err;
		r->bad_from_port[r->nbad] = ntohs(from->sin_port);
	}
	r->nbad++;
}

static void
loopback(struct sockaddr_in *sin, uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons(port);
}

/* A non-blocking UDP socket on 127.0.0.1 at a free port; *port gets it. */
static int
udp_socket(uint16_t *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	loopback(&sin, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
		perror("udp socket");
		exit(2);
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A port that was free a moment ago. */
static uint16_t
free_port(void)
{
	uint16_t port;
	int fd = udp_socket(&port);

	close(fd);
	return port;
}

static void
send_to(int fd, uint16_t port, const void *buf, size_t len)
{
	struct sockaddr_in to;

	loopback(&to, port);
	if (sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) !=
	    (ssize_t)len) {
		perror("sendto");
		exit(2);
	}
}

/* Sends a QUERY with nonce and want (or NULL); returns its length. */
static size_t
send_query(int fd, uint16_t port, uint32_t nonce, const uint8_t *want)
{
	uint8_t buf[PROTO_DISCO_DATAGRAM_MAX];
	proto_disco_msg m;
	size_t len = 0;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_QUERY;
	m.nonce = nonce;
	m.want = want;
	if (proto_disco_pack(&m, buf, sizeof(buf), &len) != 0)
		exit(2);
	send_to(fd, port, buf, len);
	return len;
}

/* Runs the loop until a datagram arrives at fd or ms pass. Returns its
 * length (into buf, *from_port its source port), or -1. */
static long
wait_datagram(int fd, uint8_t *buf, size_t cap, uint16_t *from_port, long ms)
{
	long end = now_ms() + ms;

	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&from,
		    &fl);

		if (n >= 0) {
			if (from_port)
				*from_port = ntohs(from.sin_port);
			return (long)n;
		}
		if (now_ms() >= end)
			return -1;
		event_base_loop(base, EVLOOP_NONBLOCK);
		nap();
	}
}

/* Runs the loop for ms, counting the datagrams that arrive at fd. */
static int
count_datagrams(int fd, long ms)
{
	uint8_t buf[PROTO_DISCO_DATAGRAM_MAX];
	long end = now_ms() + ms;
	int n = 0;

	while (now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		while (recv(fd, buf, sizeof(buf), 0) >= 0)
			n++;
		nap();
	}
	return n;
}

/* Runs the loop until *counter reaches want or ms pass. */
static int
run_until(const int *counter, int want, long ms)
{
	long end = now_ms() + ms;

	while (*counter < want && now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (*counter < want)
			nap();
	}
	return *counter >= want;
}

static proto_beacon *
start(uint16_t port, unsigned max_answers, const proto_beacon_cbs *cbs,
    struct rec *r)
{
	proto_beacon_config cfg;
	proto_beacon *b;

	memset(&cfg, 0, sizeof(cfg));
	cfg.port = port;
	cfg.target = "127.0.0.1";
	cfg.tcp_port = TCP_PORT;
	cfg.name = "t";
	cfg.max_answers = max_answers;
	b = proto_beacon_new(base, &cfg, cbs, r);
	if (b == NULL)
		diag("proto_beacon_new on port %u: %s", port, strerror(errno));
	return b;
}

static void
test_new(void)
{
	proto_beacon_config cfg;
	proto_beacon_cbs cbs;
	struct rec r;

	memset(&cfg, 0, sizeof(cfg));
	memset(&cbs, 0, sizeof(cbs));
	memset(&r, 0, sizeof(r));
	cfg.port = free_port();
	cfg.target = "not-an-address";
	cfg.tcp_port = TCP_PORT;
	errno = 0;
	ok(proto_beacon_new(base, &cfg, &cbs, &r) == NULL,
	    "new bad target: \"not-an-address\" -> NULL");
	is_int(errno, EINVAL, "new bad target: errno EINVAL");
	proto_beacon_free(NULL);
	ok(1, "free NULL: does nothing");
}

static void
test_answer(void)
{
	proto_beacon_cbs cbs = { has_cb, nfiles_cb, announce_cb, NULL };
	uint8_t buf[PROTO_DISCO_DATAGRAM_MAX + 1], want[PROTO_HASH_LEN];
	proto_disco_msg m;
	struct rec r;
	proto_beacon *b;
	uint16_t port = free_port(), cport, from_port = 0;
	size_t qlen;
	long n;
	int fd, i;

	memset(&r, 0, sizeof(r));
	memset(r.accept, 0xaa, sizeof(r.accept));
	b = start(port, 0, &cbs, &r);
	ok(b != NULL, "answer: beacon on 127.0.0.1:%u", port);
	if (b == NULL)
		return;
	fd = udp_socket(&cport);

	/* Its startup announcement goes to the target: to itself. */
	ok(run_until(&r.nann, 1, 1000),
	    "startup: the announcement reaches the target (itself)");
	if (r.nann >= 1) {
		is_int(r.ann[0].from_port, port,
		    "startup: announcement comes from the discovery port");
		is_int(r.ann[0].nonce, 0, "startup: unasked, nonce 0");
		is_int(r.ann[0].port, TCP_PORT, "startup: tcp_port 4242");
		is_str(r.ann[0].name, "t", "startup: name \"t\"");
		ok(r.ann[0].nfiles == NFILES, "startup: nfiles from callback");
	}

	qlen = send_query(fd, port, 0x00c0ffee, NULL);
	n = wait_datagram(fd, buf, sizeof(buf), &from_port, 1000);
	ok(n > 0, "query: an answer comes back to the client's socket");
	is_int(from_port, port, "query: answer sent from the discovery port");
	memset(&m, 0, sizeof(m));
	is_int(n > 0 ? proto_disco_unpack(buf, (size_t)n, &m) : -999, 0,
	    "query: the answer unpacks");
	is_int(m.type, PROTO_DISCO_ANNOUNCE, "query: answer is an ANNOUNCE");
	is_int(m.nonce, 0x00c0ffee, "query: answer echoes the nonce");
	is_int(m.port, TCP_PORT, "query: answer carries tcp_port 4242");
	is_int(m.name_len, 1, "query: name length 1");
	ok(m.name != NULL && m.name_len == 1 && m.name[0] == 't',
	    "query: name \"t\"");
	ok(m.nfiles == NFILES, "query: nfiles from the callback (%llu)",
	    (unsigned long long)m.nfiles);
	ok(n > 0 && (size_t)n <= PROTO_DISCO_ANSWER_MAX &&
	    (size_t)n <= 2 * qlen, "query: answer (%ld bytes) at most twice "
	    "the query (%zu) and <= PROTO_DISCO_ANSWER_MAX", n, qlen);
	is_int(proto_beacon_answered(b), 1, "query: answered() is 1");
	is_int(count_datagrams(fd, 50), 0, "query: exactly one answer");

	/* want: has() decides. */
	send_query(fd, port, 0x11, r.accept);
	n = wait_datagram(fd, buf, sizeof(buf), NULL, 1000);
	memset(&m, 0, sizeof(m));
	ok(n > 0 && proto_disco_unpack(buf, (size_t)n, &m) == 0 &&
	    m.nonce == 0x11, "want accepted by has(): answered");
	is_int(r.has_calls, 1, "want accepted: has() called once");
	memset(want, 0xbb, sizeof(want));
	i = r.has_calls;
	send_query(fd, port, 0x22, want);
	is_int(count_datagrams(fd, 200), 0,
	    "want rejected by has(): no answer within 200 ms");
	is_int(r.has_calls, i + 1, "want rejected: has() was asked");
	is_int(proto_beacon_answered(b), 2, "want rejected: answered() still 2");
	is_int(proto_beacon_bad(b), 0, "want rejected: not a bad datagram");

	/* A foreign ANNOUNCE: reported, never answered. */
	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_ANNOUNCE;
	m.nonce = 0;
	m.port = 5555;
	m.name = "other";
	m.name_len = 5;
	m.nfiles = 3;
	if (proto_disco_pack(&m, buf, sizeof(buf), &qlen) != 0)
		exit(2);
	i = r.nann;
	send_to(fd, port, buf, qlen);
	ok(run_until(&r.nann, i + 1, 1000),
	    "foreign announce: on_announce called");
	if (r.nann > i) {
		is_int(r.ann[i].from_port, cport,
		    "foreign announce: from is the sender's port");
		is_int(r.ann[i].from_addr, INADDR_LOOPBACK,
		    "foreign announce: from is 127.0.0.1");
		is_int(r.ann[i].port, 5555, "foreign announce: tcp_port 5555");
		is_str(r.ann[i].name, "other", "foreign announce: name");
		ok(r.ann[i].nfiles == 3, "foreign announce: nfiles 3");
	}
	is_int(count_datagrams(fd, 50), 0, "foreign announce: not answered");
	is_int(proto_beacon_answered(b), 2, "foreign announce: answered() 2");

	/* Without on_bad, a bad datagram is still counted. */
	send_to(fd, port, "junk", 4);
	send_query(fd, port, 0x33, NULL); /* in order: after the junk */
	ok(wait_datagram(fd, buf, sizeof(buf), NULL, 1000) > 0,
	    "bad without on_bad: the next query is still answered");
	is_int(proto_beacon_bad(b), 1, "bad without on_bad: bad() counts it");

	close(fd);
	proto_beacon_free(b);
}

static void
test_bad(void)
{
	/* No has(): a query with want goes unanswered. */
	proto_beacon_cbs cbs = { NULL, NULL, announce_cb, bad_cb };
	static const int want_err[] = { PROTO_ERR_MALFORMED,
	    PROTO_ERR_MALFORMED, PROTO_ERR_TOO_BIG, PROTO_ERR_TOO_BIG,
	    PROTO_ERR_TOO_BIG, PROTO_ERR_VERSION, PROTO_ERR_MALFORMED,
	    PROTO_ERR_MALFORMED };
	static const char *what[] = { "garbage", "empty datagram",
	    "513 bytes", "600 bytes", "query of 12 bytes", "version 2",
	    "announce port 0", "array32 bomb" };
	const int nsent = (int)(sizeof(want_err) / sizeof(want_err[0]));
	uint8_t big[600], want[PROTO_HASH_LEN], buf[PROTO_DISCO_DATAGRAM_MAX];
	struct rec r;
	proto_beacon *b;
	uint16_t port = free_port(), cport;
	int fd, wrong = 0, from_wrong = 0;

	memset(&r, 0, sizeof(r));
	b = start(port, 0, &cbs, &r);
	ok(b != NULL, "bad: beacon on 127.0.0.1:%u", port);
	if (b == NULL)
		return;
	fd = udp_socket(&cport);
	run_until(&r.nann, 1, 500); /* its own startup announcement */
	is_int(proto_beacon_bad(b), 0, "bad: none at start");

	send_to(fd, port, "\x01\x02garbage", 9);
	send_to(fd, port, "", 0);
	memset(big, 0, sizeof(big));
	send_to(fd, port, big, 513);
	send_to(fd, port, big, 600);
	send_to(fd, port, "\x96\xa4mp2p\x01\x00\x07\xc0\xc4\x00", 12);
	send_to(fd, port, "\x97\xa4mp2p\x02\x01\x00\xcd\x1f\x90\xa1\x61\x01",
	    15);
	send_to(fd, port, "\x97\xa4mp2p\x01\x01\x00\x00\xa1\x61\x01", 13);
	send_to(fd, port, "\xdd\xff\xff\xff\xff", 5);
	ok(run_until(&r.nbad, nsent, 1000), "bad: on_bad called for each of %d",
	    nsent);
	is_int(r.nbad, nsent, "bad: on_bad called once per bad datagram");
	is_int(proto_beacon_bad(b), nsent, "bad: bad() counts every one");
	for (int i = 0; i < r.nbad && i < nsent; i++) {
		if (r.bad_err[i] != want_err[i]) {
			diag("%s: on_bad err %d (%s), expected %d", what[i],
			    r.bad_err[i], proto_strerror(r.bad_err[i]),
			    want_err[i]);
			wrong++;
		}
		if (r.bad_from_port[i] != cport)
			from_wrong++;
	}
	is_int(wrong, 0, "bad: each err as unpack says (MALFORMED, TOO_BIG for "
	    "size, VERSION)");
	is_int(from_wrong, 0, "bad: on_bad from is the sender");
	is_int(r.nann, 1, "bad: no on_announce for a bad announce");
	is_int(count_datagrams(fd, 50), 0, "bad: nothing answered");
	is_int(proto_beacon_answered(b), 0, "bad: answered() 0");

	/* Exactly the datagram limit is read whole, not as too big. */
	{
		uint8_t q[PROTO_DISCO_DATAGRAM_MAX];

		/* A query padded with a bin 16 up to 512 bytes. */
		memset(q, 0, sizeof(q));
		memcpy(q, "\x96\xa4mp2p\x01\x00\x44\xc0\xc5", 11);
		q[11] = (uint8_t)((PROTO_DISCO_DATAGRAM_MAX - 13) >> 8);
		q[12] = (uint8_t)(PROTO_DISCO_DATAGRAM_MAX - 13);
		send_to(fd, port, q, PROTO_DISCO_DATAGRAM_MAX);
		ok(wait_datagram(fd, buf, sizeof(buf), NULL, 1000) > 0,
		    "bad exact limit: a 512-byte query is answered");
		is_int(proto_beacon_bad(b), nsent,
		    "bad exact limit: 512 bytes is not bad");
	}

	memset(want, 0xcc, sizeof(want));
	send_query(fd, port, 0x55, want);
	is_int(count_datagrams(fd, 200), 0,
	    "no has() callback: a query with want gets no answer");
	is_int(proto_beacon_bad(b), nsent, "no has(): not counted as bad");

	close(fd);
	proto_beacon_free(b);
}

/* Milliseconds into the current wall-clock second. */
static long
ms_into_second(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_nsec / 1000000;
}

static void
test_rate_limit(void)
{
	proto_beacon_cbs cbs = { NULL, nfiles_cb, NULL, bad_cb };
	uint8_t buf[PROTO_DISCO_DATAGRAM_MAX];
	struct rec r;
	proto_beacon *b;
	uint16_t port = free_port(), cport;
	time_t t0, t1 = 0;
	uint64_t a0 = 0;
	int fd, got = 0, tries;

	memset(&r, 0, sizeof(r));
	b = start(port, 5, &cbs, &r);
	ok(b != NULL, "rate: beacon with max_answers 5 on 127.0.0.1:%u", port);
	if (b == NULL)
		return;
	fd = udp_socket(&cport);
	for (tries = 0; tries < 3; tries++) {
		long end;
		int bad0 = r.nbad;

		/* Start early in a second, so all 20 land in it, but not at
		 * its very start: time() may still tell the one before. */
		end = now_ms() + 1100;
		while ((ms_into_second() > 600 || ms_into_second() < 50) &&
		    now_ms() < end) {
			event_base_loop(base, EVLOOP_NONBLOCK);
			nap();
		}
		count_datagrams(fd, 0);
		a0 = proto_beacon_answered(b);
		t0 = time(NULL);
		for (uint32_t i = 0; i < 20; i++)
			send_query(fd, port, 1000 + i, NULL);
		send_to(fd, port, "x", 1); /* sentinel: after all 20 */
		run_until(&r.nbad, bad0 + 1, 1000);
		got = count_datagrams(fd, 30);
		t1 = time(NULL);
		if (t0 == t1)
			break;
		diag("rate: a second boundary passed, again");
		got = -1;
	}
	ok(got >= 0, "rate: 20 queries sent and taken within one second");
	ok(got >= 0 && got <= 5, "rate: at most 5 answers within one second "
	    "(%d of 20)", got);
	ok(got >= 1, "rate: some of them are answered (%d)", got);
	is_int(proto_beacon_answered(b) - a0, got,
	    "rate: answered() counts only the answers sent");

	/* Next second, it answers again. */
	{
		long end = now_ms() + 1200;
		long n = -1;

		while (time(NULL) == t1 && now_ms() < end) {
			event_base_loop(base, EVLOOP_NONBLOCK);
			nap();
		}
		count_datagrams(fd, 0);
		send_query(fd, port, 0x77, NULL);
		n = wait_datagram(fd, buf, sizeof(buf), NULL, 500);
		ok(n > 0, "rate: the next second, a query is answered again");
	}

	close(fd);
	proto_beacon_free(b);
}

/* A UDP socket bound to addr (any of 127/8), port from the kernel. */
static int
udp_socket_at(const char *addr)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	loopback(&sin, 0);
	inet_pton(AF_INET, addr, &sin.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		perror("udp socket");
		exit(2);
	}
	return fd;
}

/* Sends an ANNOUNCE for tcp_port, stamped (when addr) with addr and time,
 * and sealed with key (when not NULL). */
static void
send_announce(int fd, uint16_t port, uint16_t tcp_port, const char *addr,
    time_t when, const uint8_t *key)
{
	uint8_t buf[PROTO_DISCO_DATAGRAM_MAX];
	proto_disco_msg m;
	size_t len = 0;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_ANNOUNCE;
	m.port = tcp_port;
	m.name = "other";
	m.name_len = 5;
	if (addr != NULL) {
		m.stamped = 1;
		m.time = (uint64_t)when;
		inet_pton(AF_INET, addr, m.addr);
	}
	if (proto_disco_pack(&m, buf, sizeof(buf) - PROTO_DISCO_TAG_LEN,
	    &len) != 0 || (key != NULL &&
	    proto_disco_seal(buf, &len, sizeof(buf), key) != 0))
		exit(2);
	send_to(fd, port, buf, len);
}

static int
saw_tcp_port(const struct rec *r, uint16_t tcp_port)
{
	for (int i = 0; i < r->nann && i < MAXREC; i++)
		if (r->ann[i].port == tcp_port)
			return 1;
	return 0;
}

static void
test_replay(void)
{
	proto_beacon_cbs cbs = { NULL, nfiles_cb, announce_cb, bad_cb };
	proto_beacon_config cfg;
	uint8_t key[32];
	struct rec r;
	proto_beacon *b;
	uint16_t port = free_port();
	time_t now = time(NULL);
	int here, there, bad0;

	memset(key, 0x5a, sizeof(key));
	memset(&r, 0, sizeof(r));
	memset(&cfg, 0, sizeof(cfg));
	cfg.port = port;
	cfg.target = "127.0.0.1";
	cfg.tcp_port = TCP_PORT;
	cfg.name = "t";
	cfg.secret = key;
	b = proto_beacon_new(base, &cfg, &cbs, &r);
	ok(b != NULL, "replay: sealed beacon on 127.0.0.1:%u", port);
	if (b == NULL)
		return;
	ok(run_until(&r.nann, 1, 1000),
	    "replay: its own stamped, sealed announcement is believed");
	here = udp_socket_at("127.0.0.1");
	there = udp_socket_at("127.0.0.2");

	/* A member's announcement, copied and sent on from elsewhere. */
	bad0 = r.nbad;
	send_announce(there, port, 5001, "127.0.0.1", now, key);
	run_until(&r.nbad, bad0 + 1, 1000);
	ok(!saw_tcp_port(&r, 5001),
	    "replay: from another source address -> not taken");
	is_int(r.nbad > bad0 ? r.bad_err[bad0] : 0, PROTO_ERR_STALE,
	    "replay: from another source address -> STALE");

	bad0 = r.nbad;
	send_announce(here, port, 5002, "127.0.0.1", now - 1000, key);
	run_until(&r.nbad, bad0 + 1, 1000);
	ok(!saw_tcp_port(&r, 5002), "replay: 1000 s old -> not taken");
	is_int(r.nbad > bad0 ? r.bad_err[bad0] : 0, PROTO_ERR_STALE,
	    "replay: 1000 s old -> STALE");

	bad0 = r.nbad;
	send_announce(here, port, 5003, NULL, 0, key);
	run_until(&r.nbad, bad0 + 1, 1000);
	ok(!saw_tcp_port(&r, 5003), "replay: sealed but unstamped -> not taken");

	send_announce(here, port, 5004, "127.0.0.1", now, key);
	run_until(&r.nann, r.nann + 1, 1000);
	ok(saw_tcp_port(&r, 5004),
	    "replay: fresh, from the address it names -> taken");
	close(here);
	close(there);
	proto_beacon_free(b);
}

/* Over IPv6 (target6 ::1): the sealed beacon hears its own announcement,
 * stamped with a 16-byte address, and answers a query sent over IPv6. */
static void
test_ipv6(void)
{
	proto_beacon_cbs cbs = { NULL, nfiles_cb, announce_cb, bad_cb };
	proto_beacon_config cfg;
	struct sockaddr_in6 to;
	proto_disco_msg m;
	uint8_t key[32], buf[PROTO_DISCO_DATAGRAM_MAX];
	struct rec r;
	proto_beacon *b;
	uint16_t port = free_port();
	int fd, v6 = 0;
	size_t len;
	long n = -1;

	memset(key, 0x5a, sizeof(key));
	memset(&r, 0, sizeof(r));
	memset(&cfg, 0, sizeof(cfg));
	cfg.port = port;
	cfg.target = "127.0.0.1";
	cfg.target6 = "::1";
	cfg.tcp_port = TCP_PORT;
	cfg.name = "t";
	cfg.secret = key;
	b = proto_beacon_new(base, &cfg, &cbs, &r);
	ok(b != NULL, "ipv6: sealed beacon, targets 127.0.0.1 and ::1");
	if (b == NULL)
		return;
	run_until(&r.nann, 2, 2000);
	for (int i = 0; i < r.nann; i++)
		v6 += r.ann[i].family == AF_INET6;
	ok(v6 == 1, "ipv6: its own announcement over IPv6 heard, stamped "
	    "and believed (%d of %d)", v6, r.nann);
	is_int(r.nbad, 0, "ipv6: nothing bad");

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&to, 0, sizeof(to));
	to.sin6_family = AF_INET6;
	to.sin6_addr = in6addr_loopback;
	to.sin6_port = htons(port);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_QUERY;
	m.nonce = 77;
	if (fd >= 0 && proto_disco_pack(&m, buf, sizeof(buf) -
	    PROTO_DISCO_TAG_LEN, &len) == 0 &&
	    proto_disco_seal(buf, &len, sizeof(buf), key) == 0 &&
	    sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) ==
	    (ssize_t)len)
		n = wait_datagram(fd, buf, sizeof(buf), NULL, 2000);
	len = n > 0 ? (size_t)n : 0;
	ok(n > 0 && proto_disco_open(buf, &len, key) == 0 &&
	    proto_disco_unpack(buf, len, &m) == 0 && m.nonce == 77 &&
	    m.stamped && m.addr_len == 16 &&
	    memcmp(m.addr, &in6addr_loopback, 16) == 0,
	    "ipv6: a query over IPv6 answered, stamped from ::1");
	if (fd >= 0)
		close(fd);
	proto_beacon_free(b);

	/* The IPv4 override set, the IPv6 one not: nothing over IPv6. */
	memset(&r, 0, sizeof(r));
	cfg.target6 = NULL;
	cfg.port = free_port();
	b = proto_beacon_new(base, &cfg, &cbs, &r);
	run_until(&r.nann, 2, 300);
	v6 = 0;
	for (int i = 0; i < r.nann; i++)
		v6 += r.ann[i].family == AF_INET6;
	ok(b != NULL && r.nann == 1 && v6 == 0,
	    "ipv6: with the IPv4 override alone, IPv4 only (%d heard)", r.nann);
	proto_beacon_free(b);
}

static void
test_announce_flood(void)
{
	proto_beacon_cbs cbs = { NULL, nfiles_cb, announce_cb, bad_cb };
	struct rec r;
	proto_beacon *b;
	uint16_t port = free_port();
	int flooder, other, own, limited = 0, sent = 200;

	memset(&r, 0, sizeof(r));
	b = start(port, 0, &cbs, &r);
	ok(b != NULL, "flood: beacon on 127.0.0.1:%u", port);
	if (b == NULL)
		return;
	run_until(&r.nann, 1, 1000);
	own = r.nann;
	flooder = udp_socket_at("127.0.0.3");
	other = udp_socket_at("127.0.0.4");
	/* Unsealed and unstamped, as an old node's: believed, but no more
	 * than the limit from one address. */
	for (int i = 0; i < sent; i++)
		send_announce(flooder, port, (uint16_t)(6000 + i), NULL, 0,
		    NULL);
	{
		long end = now_ms() + 3000;
		while (r.nann - own + r.nbad < sent && now_ms() < end) {
			event_base_loop(base, EVLOOP_NONBLOCK);
			nap();
		}
	}
	for (int i = 0; i < r.nbad && i < MAXREC; i++)
		limited += r.bad_err[i] == PROTO_ERR_LIMITED;
	ok(r.nann - own + r.nbad == sent, "flood: all %d taken in", sent);
	ok(r.nann - own >= 1, "flood: the first are believed (%d)",
	    r.nann - own);
	ok(r.nann - own <= 40, "flood: at most a burst of 32 (and a few "
	    "more a second) believed from one address: %d of %d",
	    r.nann - own, sent);
	ok(limited > 0 && limited == (r.nbad < MAXREC ? r.nbad : MAXREC),
	    "flood: the rest refused as LIMITED");
	send_announce(other, port, 7000, NULL, 0, NULL);
	{
		int n0 = r.nann;
		run_until(&r.nann, n0 + 1, 1000);
	}
	ok(saw_tcp_port(&r, 7000) || r.nann > MAXREC,
	    "flood: another address is still heard");
	close(flooder);
	close(other);
	proto_beacon_free(b);
}

int
main(void)
{
	long start_ms = now_ms();

	base = event_base_new();
	if (base == NULL)
		return 2;
	test_new();
	test_answer();
	test_bad();
	test_rate_limit();
	test_replay();
	test_ipv6();
	test_announce_flood();
	event_base_free(base);
	diag("took %ld ms", now_ms() - start_ms);
	return done_testing();
}
