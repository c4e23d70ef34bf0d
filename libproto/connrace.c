/*
 * Happy eyeballs (RFC 8305): a connection to a node known by several
 * addresses goes to the first that answers. The attempts are plain
 * non-blocking TCP connects raced here; the winner's socket is then handed
 * to the connection's bufferevent, which was made without one, so TLS and
 * the HELLO start on it as on any connection we dial.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "conn_private.h"
#include "error.h"
#include "log_private.h"

struct proto__race {
	proto_conn *c;
	proto_addr addrs[PROTO_CONN_RACE_MAX]; /* in the order tried, once
	                                        * the first is */
	size_t n, next;
	int fds[PROTO_CONN_RACE_MAX];
	struct event *evs[PROTO_CONN_RACE_MAX];
	struct event *timer;
	int ordered;
};

/* IPv6 first, then the families taking turns, each in the order given. */
static void
order(struct proto__race *r)
{
	proto_addr v6[PROTO_CONN_RACE_MAX], v4[PROTO_CONN_RACE_MAX];
	size_t n6 = 0, n4 = 0, i6 = 0, i4 = 0, k = 0;

	for (size_t i = 0; i < r->n; i++) {
		if (r->addrs[i].ss.ss_family == AF_INET6)
			v6[n6++] = r->addrs[i];
		else
			v4[n4++] = r->addrs[i];
	}
	while (i6 < n6 || i4 < n4) {
		if (i6 < n6)
			r->addrs[k++] = v6[i6++];
		if (i4 < n4)
			r->addrs[k++] = v4[i4++];
	}
	r->ordered = 1;
}

static void
drop(struct proto__race *r, size_t i)
{
	if (r->evs[i] != NULL)
		event_free(r->evs[i]);
	r->evs[i] = NULL;
	if (r->fds[i] >= 0)
		close(r->fds[i]);
	r->fds[i] = -1;
}

void
proto__conn_race_free(proto_conn *c)
{
	struct proto__race *r = c->race;

	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		drop(r, i);
	if (r->timer != NULL)
		event_free(r->timer);
	free(r);
	c->race = NULL;
}

static int
pending(const struct proto__race *r)
{
	for (size_t i = 0; i < r->next; i++)
		if (r->fds[i] >= 0)
			return 1;
	return 0;
}

/* Nothing left to try: the connection fails with the last error. */
static void
lost(struct proto__race *r, int err)
{
	proto_conn *c = r->c;

	if (pending(r) || r->next < r->n)
		return;
	c->depth++;
	errno = err;
	proto__conn_fail(c, PROTO_ERR_SYSTEM);
	proto__conn_leave(c);
}

static void
won(struct proto__race *r, size_t i)
{
	proto_conn *c = r->c;
	int fd = r->fds[i], one = 1;

	r->fds[i] = -1;
	if (proto_addr_from_sockaddr(&c->peer_addr, (const struct sockaddr *)
	    &r->addrs[i].ss, r->addrs[i].len) == 0) {
		c->has_peer_addr = 1;
		snprintf(c->peer, sizeof(c->peer), "%s",
		    proto_addr_text(&c->peer_addr));
		proto_addr_host(&c->peer_addr, c->host, sizeof(c->host));
	}
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: connected first of %zu "
	    "addresses", c->peer, r->n);
	proto__conn_race_free(c);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bufferevent_setfd(c->bev, fd) != 0 ||
	    bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
		close(fd);
		c->depth++;
		errno = EIO;
		proto__conn_fail(c, PROTO_ERR_SYSTEM);
		proto__conn_leave(c);
	}
}

static void start_next(evutil_socket_t fd, short what, void *arg);

static void
answered(evutil_socket_t fd, short what, void *arg)
{
	struct proto__race *r = arg;
	int err = 0;
	socklen_t len = sizeof(err);
	size_t i;

	(void)what;
	for (i = 0; i < r->next && r->fds[i] != fd; i++)
		;
	if (i == r->next)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == 0) {
		won(r, i);
		return;
	}
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: %s", proto_addr_text(
	    &r->addrs[i]), strerror(err));
	drop(r, i);
	/* A failure starts the next attempt at once. */
	if (r->next < r->n)
		event_active(r->timer, EV_TIMEOUT, 0);
	else
		lost(r, err);
}

/* The next attempt, and the timer for the one after. */
static void
start_next(evutil_socket_t unused, short what, void *arg)
{
	struct proto__race *r = arg;
	struct timeval delay = { 0, PROTO_CONN_RACE_DELAY_MS * 1000 };
	size_t i;
	int fd, err = 0;

	(void)unused;
	(void)what;
	if (!r->ordered)
		order(r);
	if (r->next >= r->n)
		return;
	i = r->next++;
	fd = socket(r->addrs[i].ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, (const struct sockaddr *)&r->addrs[i].ss,
	    r->addrs[i].len) != 0 && errno != EINPROGRESS))
		err = errno;
	if (fd >= 0)
		r->fds[i] = fd;
	if (err == 0 && (r->evs[i] = event_new(event_get_base(r->timer), fd,
	    EV_WRITE, answered, r)) != NULL && event_add(r->evs[i], NULL) == 0) {
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: connecting (%zu of "
		    "%zu)", proto_addr_text(&r->addrs[i]), i + 1, r->n);
		if (r->next < r->n)
			evtimer_add(r->timer, &delay);
		return;
	}
	if (err == 0)
		err = ENOMEM;
	drop(r, i);
	if (r->next < r->n)
		event_active(r->timer, EV_TIMEOUT, 0);
	else
		lost(r, err);
}

proto_conn *
proto_conn_connect_race(struct event_base *base, const proto_addr *addrs,
    size_t n, const proto_conn_config *cfg, const proto_conn_cbs *cbs,
    void *ctx)
{
	struct timeval now = { 0, 0 };
	struct bufferevent *bev;
	struct proto__race *r;
	proto_conn *c;

	if (n == 0 || n > PROTO_CONN_RACE_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	for (size_t i = 0; i < PROTO_CONN_RACE_MAX; i++)
		r->fds[i] = -1;
	memcpy(r->addrs, addrs, n * sizeof(*addrs));
	r->n = n;
	if (cfg->tls != NULL) {
		SSL *ssl = SSL_new(cfg->tls);
		bev = ssl == NULL ? NULL : bufferevent_openssl_socket_new(base,
		    -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL && ssl != NULL)
			SSL_free(ssl);
	} else
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL || (c = proto__conn_setup(bev, cfg, cbs, ctx,
	    (const struct sockaddr *)&addrs[0].ss)) == NULL) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->c = c;
	c->race = r;
	/* The first attempt once the loop runs: addresses added until then
	 * race too. */
	if ((r->timer = evtimer_new(base, start_next, r)) == NULL ||
	    evtimer_add(r->timer, &now) != 0) {
		proto__conn_really_free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

int
proto_conn_race_add(proto_conn *c, const proto_addr *a)
{
	struct proto__race *r = c->race;

	if (r == NULL || r->ordered || r->n >= PROTO_CONN_RACE_MAX)
		return PROTO_ERR_INVALID;
	for (size_t i = 0; i < r->n; i++)
		if (proto_addr_equal(&r->addrs[i], a))
			return 0;
	r->addrs[r->n++] = *a;
	return 0;
}
