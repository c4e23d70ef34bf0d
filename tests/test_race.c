/*
 * connrace.c: happy eyeballs over real sockets on loopback (127.0.0.1 and
 * ::1; the unit tests run in a namespace of their own). The listeners
 * are plain sockets that accept and read the HELLO frame's first bytes;
 * the loop runs in bounded steps, so no case can hang.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "proto.h"
#include "tap.h"

struct side {
	int closed, close_err, close_errno;
};

static void
on_ready(proto_conn *c, const proto_msg *hello, void *ctx)
{
	(void)c;
	(void)hello;
	(void)ctx;
}

static void
on_msg(proto_conn *c, proto_msg *m, void *ctx)
{
	(void)c;
	(void)m;
	(void)ctx;
}

static void
on_close(proto_conn *c, int err, void *ctx)
{
	struct side *s = ctx;

	(void)c;
	s->closed = 1;
	s->close_err = err;
	s->close_errno = errno;
}

static const proto_conn_cbs cbs = { on_ready, on_msg, on_close, NULL, NULL,
    NULL };

static int
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* A listener on host (a literal) at a free port; -1 when the family is
 * missing. a is its address. */
static int
listener(const char *host, proto_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd;

	if (proto_addr_parse(a, host, strlen(host), 1, 0, NULL) != 0)
		return -1;
	proto_addr_set_port(a, 0);
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a->ss, a->len) != 0 ||
	    listen(fd, 4) != 0 || getsockname(fd, (struct sockaddr *)&ss,
	    &len) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	proto_addr_from_sockaddr(a, (struct sockaddr *)&ss, len);
	return fd;
}

/* A port where nothing listens: a listener's, closed. */
static void
closed_port(const char *host, proto_addr *a)
{
	int fd = listener(host, a);

	if (fd >= 0)
		close(fd);
}

/* Runs the loop until lfd accepts a connection that sends bytes, or ms
 * pass; returns the accepted socket (closed by the caller) or -1. */
static int
accepted(struct event_base *base, int lfd, int ms)
{
	int end = now_ms() + ms, fd = -1;
	char buf[8];

	while (now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (fd < 0)
			fd = accept(lfd, NULL, NULL);
		if (fd >= 0 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			return fd;
		usleep(1000);
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

static void
run_until(struct event_base *base, const int *flag, int ms)
{
	int end = now_ms() + ms;

	while (!*flag && now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

int
main(void)
{
	struct event_base *base = event_base_new();
	proto_conn_config cfg;
	proto_addr a[PROTO_CONN_RACE_MAX + 1], v4, v6, dead4, dead6;
	struct side s;
	proto_conn *c;
	int l4, l6, fd;

	memset(&cfg, 0, sizeof(cfg));
	cfg.node_name = "racer";
	l4 = listener("127.0.0.1", &v4);
	l6 = listener("[::1]", &v6);
	closed_port("127.0.0.1", &dead4);
	closed_port("[::1]", &dead6);
	if (base == NULL || l4 < 0 || l6 < 0) {
		ok(0, "needs 127.0.0.1 and ::1 to listen on");
		return done_testing();
	}

	errno = 0;
	ok(proto_conn_connect_race(base, a, 0, &cfg, &cbs, &s) == NULL &&
	    errno == EINVAL, "no address: NULL, EINVAL");
	for (int i = 0; i <= PROTO_CONN_RACE_MAX; i++)
		a[i] = v4;
	errno = 0;
	ok(proto_conn_connect_race(base, a, PROTO_CONN_RACE_MAX + 1, &cfg,
	    &cbs, &s) == NULL && errno == EINVAL, "too many addresses: NULL, "
	    "EINVAL");

	/* Named IPv4 first, IPv6 second: IPv6 is tried first, and wins. */
	memset(&s, 0, sizeof(s));
	a[0] = v4;
	c = proto_conn_connect_race(base, a, 1, &cfg, &cbs, &s);
	ok(c != NULL, "race: started");
	is_int(proto_conn_race_add(c, &v6), 0, "race: an address added "
	    "before the loop runs");
	is_int(proto_conn_race_add(c, &v4), 0, "race: one already there: 0");
	fd = accepted(base, l6, 3000);
	ok(fd >= 0, "race: the IPv6 listener gets the connection and the HELLO");
	is_str(proto_conn_peer(c), proto_addr_text(&v6), "race: its peer is "
	    "the IPv6 address");
	is_int(proto_conn_race_add(c, &dead4), PROTO_ERR_INVALID,
	    "race: no address added once it ran");
	ok(!s.closed, "race: not closed");
	proto_conn_free(c);
	if (fd >= 0)
		close(fd);
	fd = accept(l4, NULL, NULL);
	if (fd >= 0)
		close(fd);

	/* IPv6 refused: IPv4 follows at once, and wins. */
	memset(&s, 0, sizeof(s));
	a[0] = dead6;
	a[1] = v4;
	c = proto_conn_connect_race(base, a, 2, &cfg, &cbs, &s);
	fd = accepted(base, l4, 3000);
	ok(fd >= 0, "refused IPv6: the IPv4 listener gets the HELLO");
	is_str(proto_conn_peer(c), proto_addr_text(&v4), "refused IPv6: "
	    "its peer is the IPv4 address");
	proto_conn_free(c);
	if (fd >= 0)
		close(fd);

	/* All refused: on_close, PROTO_ERR_SYSTEM, the connect's errno. */
	memset(&s, 0, sizeof(s));
	a[0] = dead4;
	a[1] = dead6;
	c = proto_conn_connect_race(base, a, 2, &cfg, &cbs, &s);
	run_until(base, &s.closed, 3000);
	ok(s.closed && s.close_err == PROTO_ERR_SYSTEM &&
	    s.close_errno == ECONNREFUSED, "all refused: on_close, "
	    "PROTO_ERR_SYSTEM, ECONNREFUSED (%d, %d)", s.close_err,
	    s.close_errno);
	proto_conn_free(c);

	/* Freed while racing: its sockets go with it. */
	memset(&s, 0, sizeof(s));
	a[0] = v4;
	c = proto_conn_connect_race(base, a, 1, &cfg, &cbs, &s);
	proto_conn_free(c);
	run_until(base, &s.closed, 50);
	ok(!s.closed, "freed before it ran: no callback");

	/* Closed after flushing while racing: freed at once, its race
	 * stopped; no attempt wins later to send a HELLO. */
	memset(&s, 0, sizeof(s));
	cfg.timeout = 30;
	a[0] = v4;
	c = proto_conn_connect_race(base, a, 1, &cfg, &cbs, &s);
	proto_conn_close_after_flush(c);
	fd = accepted(base, l4, 300);
	ok(fd < 0 && !s.closed, "closed after flushing while racing: no HELLO "
	    "sent, no callback");
	if (fd >= 0)
		close(fd);
	fd = accept(l4, NULL, NULL);
	if (fd >= 0)
		close(fd);

	close(l4);
	close(l6);
	event_base_free(base);
	return done_testing();
}
