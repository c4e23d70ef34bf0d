/*
 * A node's side of a punch (PROTOCOL.md section 13, "Hole punching"): its
 * relay tells it where a fetcher waits (PUNCH_TELL); it binds a port,
 * starts connecting from it to the fetcher, and only then tells the relay
 * that port (PUNCH_READY, on a connection of its own), so that its router
 * holds the hole before the fetcher's SYN comes. The connection made is
 * handed to the server as one it accepted: the node is the TLS server and
 * answers, the fetcher asks.
 *
 * The relay is not trusted: it can make the node send SYNs to an address
 * and port of its choosing. So the node punches only to addresses that
 * could be a fetcher's router (never loopback, unspecified, multicast,
 * broadcast or link-local, never a port below 1024), at most
 * PUNCH_NODE_MAX at once and one at once to an address, at most
 * PUNCH_RATE each PUNCH_RATE_SECS; what is over the rate is dropped
 * unanswered, what is refused otherwise is declined (READY with port 0)
 * so that the fetcher takes the circuit at once.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "error.h"
#include "log_private.h"
#include "punch_private.h"
#include "server.h"

struct attempt {
	proto__puncher *pu;
	int used;
	int fd;                 /* connecting to the fetcher */
	proto_addr to;
	struct event *ev, *timer;
};

/* A READY on its way to the relay: written once connected, then closed. */
struct ready {
	int fd;
	uint8_t buf[PROTO_RELAY_MSG_MAX];
	size_t len;
	struct event *ev;
};

struct proto__puncher {
	struct event_base *base;
	proto_server *srv;
	proto_addr relay;
	struct proto__punch_rate rate;
	struct attempt at[PUNCH_NODE_MAX];
	struct ready *readies[PUNCH_RATE]; /* no more are ever asked */
};

const char *
proto__punch_refusal(const proto_addr *a)
{
	const struct sockaddr_in *s4 = (const void *)&a->ss;
	const struct sockaddr_in6 *s6 = (const void *)&a->ss;

	if (proto_addr_port(a) < PUNCH_PORT_MIN)
		return "a port below 1024";
	if (proto_addr_is_loopback(a) || proto_addr_is_any(a))
		return "a loopback or unspecified address";
	if (a->ss.ss_family == AF_INET) {
		uint32_t ip = ntohl(s4->sin_addr.s_addr);
		if ((ip >> 28) >= 14 || (ip >> 24) == 0 ||
		    (ip >> 16) == 0xa9fe)
			return "a multicast, broadcast or link-local address";
		return NULL;
	}
	if (a->ss.ss_family != AF_INET6)
		return "not an IP address";
	if (IN6_IS_ADDR_MULTICAST(&s6->sin6_addr) ||
	    IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr) ||
	    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return "a multicast, link-local or mapped address";
	return NULL;
}

int
proto__punch_rate_take(struct proto__punch_rate *r, time_t now)
{
	if (now - r->start >= PUNCH_RATE_SECS || now < r->start) {
		r->start = now;
		r->n = 0;
	}
	if (r->n >= PUNCH_RATE)
		return 0;
	r->n++;
	return 1;
}

int
proto__punch_addr(proto_addr *a, const uint8_t *ip, size_t iplen,
    uint16_t port)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;

	if (iplen == 4) {
		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		memcpy(&s4.sin_addr, ip, 4);
		s4.sin_port = htons(port);
		return proto_addr_from_sockaddr(a, (struct sockaddr *)&s4,
		    sizeof(s4)) == 0 ? 0 : -1;
	}
	if (iplen != 16)
		return -1;
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	memcpy(&s6.sin6_addr, ip, 16);
	s6.sin6_port = htons(port);
	return proto_addr_from_sockaddr(a, (struct sockaddr *)&s6,
	    sizeof(s6)) == 0 ? 0 : -1;
}

static void
attempt_end(struct attempt *t)
{
	if (t->ev != NULL)
		event_free(t->ev);
	if (t->timer != NULL)
		event_free(t->timer);
	if (t->fd >= 0)
		close(t->fd);
	t->ev = t->timer = NULL;
	t->fd = -1;
	t->used = 0;
}

static void
ready_free(proto__puncher *pu, size_t i)
{
	struct ready *r = pu->readies[i];

	if (r == NULL)
		return;
	if (r->ev != NULL)
		event_free(r->ev);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
	pu->readies[i] = NULL;
}

static void
ready_connected(evutil_socket_t fd, short what, void *arg)
{
	proto__puncher *pu = arg;
	int err = 0;
	socklen_t len = sizeof(err);
	size_t i;

	(void)what;
	for (i = 0; i < PUNCH_RATE; i++)
		if (pu->readies[i] != NULL && pu->readies[i]->fd == fd)
			break;
	if (i == PUNCH_RATE)
		return;
	/* A fresh socket takes 160 bytes whole; a refused relay is the
	 * fetcher's to notice (its wait ends). */
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0 &&
	    write(fd, pu->readies[i]->buf, pu->readies[i]->len) < 0)
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "punch: relay: %s",
		    strerror(errno));
	ready_free(pu, i);
}

/* READY (port 0: declined) to the relay, on a connection of its own. */
static void
say_ready(proto__puncher *pu, const uint8_t *token, uint16_t port)
{
	proto_relay_msg m;
	struct ready *r;
	size_t i;

	for (i = 0; i < PUNCH_RATE && pu->readies[i] != NULL; i++)
		;
	if (i == PUNCH_RATE || (r = calloc(1, sizeof(*r))) == NULL)
		return;
	pu->readies[i] = r;
	memset(&m, 0, sizeof(m));
	m.kind = PROTO_RELAY_PUNCH_READY;
	m.rid = 1;
	memcpy(m.token, token, sizeof(m.token));
	m.port = port;
	r->fd = socket(pu->relay.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (r->fd < 0 || proto_relay_msg_pack(&m, r->buf, sizeof(r->buf),
	    &r->len) != 0 || (connect(r->fd, (struct sockaddr *)&pu->relay.ss,
	    pu->relay.len) != 0 && errno != EINPROGRESS) ||
	    (r->ev = event_new(pu->base, r->fd, EV_WRITE, ready_connected,
	    pu)) == NULL || event_add(r->ev, NULL) != 0)
		ready_free(pu, i);
}

static void
attempt_expired(evutil_socket_t fd, short what, void *arg)
{
	struct attempt *t = arg;

	(void)fd;
	(void)what;
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "punch to %s: no connection in "
	    "time", proto_addr_text(&t->to));
	attempt_end(t);
}

static void
attempt_answered(evutil_socket_t fd, short what, void *arg)
{
	struct attempt *t = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)what;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err != 0) {
		/* A refusal: the fetcher's router has no hole yet, or never
		 * will; the fetcher's own SYN, if it comes, finds none. */
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "punch to %s: %s",
		    proto_addr_text(&t->to), strerror(err));
		attempt_end(t);
		return;
	}
	PLOG(PROTO_LOG_CONN, PROTO_LOG_INFO, "punched to %s",
	    proto_addr_text(&t->to));
	t->fd = -1;
	if (proto_server_accept_punched(t->pu->srv, (int)fd, &t->to) != 0)
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "punch to %s: no room",
		    proto_addr_text(&t->to));
	attempt_end(t);
}

/* The port bound and the connect begun: 0, or -1. */
static int
attempt_start(proto__puncher *pu, struct attempt *t, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct timeval window = { PUNCH_NODE_SECS, 0 };
	int one = 1;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = t->to.ss.ss_family;
	t->pu = pu;
	t->used = 1;
	t->fd = socket(t->to.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (t->fd < 0 || setsockopt(t->fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 || bind(t->fd, (struct sockaddr *)&ss,
	    ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6)) != 0 ||
	    getsockname(t->fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	*port = ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	if ((connect(t->fd, (struct sockaddr *)&t->to.ss, t->to.len) != 0 &&
	    errno != EINPROGRESS) ||
	    (t->ev = event_new(pu->base, t->fd, EV_WRITE, attempt_answered,
	    t)) == NULL || event_add(t->ev, NULL) != 0 ||
	    (t->timer = evtimer_new(pu->base, attempt_expired, t)) == NULL ||
	    evtimer_add(t->timer, &window) != 0)
		return -1;
	return 0;
}

void
proto__puncher_told(proto__puncher *pu, const proto_relay_msg *m)
{
	struct attempt *t = NULL;
	const char *why = NULL;
	proto_addr to;
	uint16_t port = 0;

	memset(&to, 0, sizeof(to));

	/* Past the rate, not even a decline: that too costs a connection. */
	if (!proto__punch_rate_take(&pu->rate, time(NULL))) {
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "punch: over the rate, "
		    "ignored");
		return;
	}
	if (proto__punch_addr(&to, m->ip, m->iplen, m->port) != 0)
		why = "no address";
	else if (to.ss.ss_family != pu->relay.ss.ss_family)
		why = "another family than the relay's";
	else
		why = proto__punch_refusal(&to);
	for (size_t i = 0; why == NULL && i < PUNCH_NODE_MAX; i++) {
		if (pu->at[i].used && proto_addr_same_host(&pu->at[i].to,
		    &to))
			why = "one already under way to that address";
		else if (!pu->at[i].used && t == NULL)
			t = &pu->at[i];
	}
	if (why == NULL && t == NULL)
		why = "too many at once";
	if (why == NULL) {
		t->to = to;
		if (attempt_start(pu, t, &port) != 0) {
			why = strerror(errno);
			attempt_end(t);
			port = 0;
		}
	}
	if (why != NULL)
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG,
		    "punch to %s declined: %s", proto_addr_text(&to), why);
	else
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG,
		    "punch to %s from port %u", proto_addr_text(&to), port);
	say_ready(pu, m->token, port);
}

proto__puncher *
proto__puncher_new(struct event_base *base, struct proto_server *srv,
    const proto_addr *relay)
{
	proto__puncher *pu = calloc(1, sizeof(*pu));

	if (pu == NULL)
		return NULL;
	pu->base = base;
	pu->srv = srv;
	pu->relay = *relay;
	for (size_t i = 0; i < PUNCH_NODE_MAX; i++)
		pu->at[i].fd = -1;
	return pu;
}

void
proto__puncher_free(proto__puncher *pu)
{
	if (pu == NULL)
		return;
	for (size_t i = 0; i < PUNCH_NODE_MAX; i++)
		attempt_end(&pu->at[i]);
	for (size_t i = 0; i < PUNCH_RATE; i++)
		ready_free(pu, i);
	free(pu);
}
