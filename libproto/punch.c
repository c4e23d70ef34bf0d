/*
 * A fetcher's connection to a node through a relay, direct first, relayed
 * last (PROTOCOL.md section 13, "Hole punching"): it binds a port, asks the
 * relay to have the node punch to it (PUNCH_ASK), and on the relay's GO
 * connects from that port to where the relay saw the node's answer come
 * from, while the node connects to it: behind routers that keep a source
 * port, the two SYNs cross and TCP's simultaneous open gives each side the
 * connection. When any of it fails or is late, the connection takes the
 * relay's circuit as before. The connection's bufferevent is made without
 * a socket, as a race's is (connrace.c), and given whichever comes.
 */
#include <errno.h>
#include <fcntl.h>
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
#include "frame.h"
#include "log_private.h"
#include "punch_private.h"

enum phase { ASKING, PUNCHING, CIRCUIT };

struct proto__punch {
	proto_conn *c;
	enum phase phase;
	proto_addr relay, node;
	uint8_t id[PROTO_IDENTITY_LEN];
	uint16_t lport;         /* the port punched from */
	int lfd;                /* bound to lport; connecting once told */
	int rfd;                /* to the relay: the ask, or the circuit */
	struct event *lev, *rev;
	struct event *start;    /* the first step, from the loop */
	struct event *deadline; /* of the phase */
	struct event *retry;    /* a refused punch is tried again */
	uint8_t in[PROTO_FRAME_HEADER + PROTO_RELAY_MSG_MAX];
	size_t have;
};

static void
drop_fd(int *fd, struct event **ev)
{
	if (*ev != NULL)
		event_free(*ev);
	*ev = NULL;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void
proto__conn_punch_free(proto_conn *c)
{
	struct proto__punch *p = c->punch;

	if (p == NULL)
		return;
	drop_fd(&p->lfd, &p->lev);
	drop_fd(&p->rfd, &p->rev);
	if (p->start != NULL)
		event_free(p->start);
	if (p->deadline != NULL)
		event_free(p->deadline);
	if (p->retry != NULL)
		event_free(p->retry);
	free(p);
	c->punch = NULL;
}

static void
failed(struct proto__punch *p, int err)
{
	proto_conn *c = p->c;

	proto__conn_punch_free(c);
	c->depth++;
	errno = err;
	proto__conn_fail(c, PROTO_ERR_SYSTEM);
	proto__conn_leave(c);
}

/* fd is the connection's now: TLS and the HELLO start on it. */
static void
hand_over(struct proto__punch *p, int fd)
{
	proto_conn *c = p->c;
	struct timeval tv = { (time_t)c->timeout, 0 };
	int one = 1;

	proto__conn_punch_free(c);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The handshake's time starts now, whatever the punch took. */
	evtimer_add(c->handshake, &tv);
	if (bufferevent_setfd(c->bev, fd) != 0 ||
	    bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
		close(fd);
		c->depth++;
		errno = EIO;
		proto__conn_fail(c, PROTO_ERR_SYSTEM);
		proto__conn_leave(c);
	}
}

static int
socket_for(const proto_addr *a)
{
	return socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
}

/* A non-blocking connect to a from fd, cb told when it ends. */
static int
start_connect(struct proto__punch *p, int fd, const proto_addr *a,
    struct event **ev, event_callback_fn cb)
{
	struct event_base *base = bufferevent_get_base(p->c->bev);

	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0 &&
	    errno != EINPROGRESS)
		return -1;
	if ((*ev = event_new(base, fd, EV_WRITE, cb, p)) == NULL ||
	    event_add(*ev, NULL) != 0)
		return -1;
	return 0;
}

static int
connect_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	return err;
}

/* Our relay message, whole, on a socket that just connected (a fresh
 * socket's buffer holds 160 bytes). */
static int
send_msg(int fd, const proto_relay_msg *m)
{
	uint8_t buf[PROTO_RELAY_MSG_MAX];
	size_t n;

	return proto_relay_msg_pack(m, buf, sizeof(buf), &n) != 0 ||
	    write(fd, buf, n) != (ssize_t)n ? -1 : 0;
}

static void
circuit_connected(evutil_socket_t fd, short what, void *arg)
{
	struct proto__punch *p = arg;
	proto_relay_msg m;
	int err = connect_error(fd);

	(void)what;
	memset(&m, 0, sizeof(m));
	m.kind = PROTO_RELAY_CONNECT;
	m.rid = 1;
	memcpy(m.id, p->id, sizeof(m.id));
	if (err == 0 && send_msg(fd, &m) != 0)
		err = errno ? errno : EIO;
	if (err != 0) {
		failed(p, err);
		return;
	}
	event_free(p->rev);
	p->rev = NULL;
	p->rfd = -1;
	hand_over(p, fd);
}

/* Relayed last: the circuit, as proto_conn_connect_relayed makes it. */
static void
fall_back(struct proto__punch *p, const char *why)
{
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: not punched (%s): through "
	    "the relay", p->c->peer, why);
	p->phase = CIRCUIT;
	drop_fd(&p->lfd, &p->lev);
	drop_fd(&p->rfd, &p->rev);
	evtimer_del(p->deadline);
	evtimer_del(p->retry);
	if ((p->rfd = socket_for(&p->relay)) < 0 ||
	    start_connect(p, p->rfd, &p->relay, &p->rev,
	    circuit_connected) != 0)
		failed(p, errno ? errno : EIO);
}

static void
expired(evutil_socket_t fd, short what, void *arg)
{
	struct proto__punch *p = arg;

	(void)fd;
	(void)what;
	fall_back(p, p->phase == ASKING ? "the relay is late" :
	    "no connection in time");
}

static void try_punch(evutil_socket_t fd, short what, void *arg);

static void
punch_answered(evutil_socket_t fd, short what, void *arg)
{
	struct proto__punch *p = arg;
	proto_conn *c = p->c;
	struct timeval later = { 0, PUNCH_RETRY_MS * 1000 };
	int err = connect_error(fd);

	(void)what;
	if (err != 0) {
		/* Refused: the node's router had no hole yet. Again, until
		 * the phase's deadline. */
		drop_fd(&p->lfd, &p->lev);
		evtimer_add(p->retry, &later);
		return;
	}
	event_free(p->lev);
	p->lev = NULL;
	p->lfd = -1;
	c->relayed = 0;
	c->punched = 1;
	c->peer_addr = p->node;
	c->has_peer_addr = 1;
	proto_addr_host(&p->node, c->host, sizeof(c->host));
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: punched to %s", c->peer,
	    proto_addr_text(&p->node));
	hand_over(p, fd);
}

static void
try_punch(evutil_socket_t unused, short what, void *arg)
{
	struct proto__punch *p = arg;
	struct sockaddr_storage ss;
	int one = 1;

	(void)unused;
	(void)what;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = p->node.ss.ss_family;
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(p->lport);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(p->lport);
	if (p->lfd < 0 && ((p->lfd = socket_for(&p->node)) < 0 ||
	    setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 || bind(p->lfd, (struct sockaddr *)&ss,
	    ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6)) != 0)) {
		fall_back(p, strerror(errno));
		return;
	}
	if (start_connect(p, p->lfd, &p->node, &p->lev, punch_answered) != 0)
		fall_back(p, strerror(errno));
}

static void
told(struct proto__punch *p, const proto_relay_msg *m)
{
	struct timeval window = { PUNCH_SECS, 0 };
	const char *why;

	if (m->kind == PROTO_RELAY_ERROR) {
		fall_back(p, m->message[0] ? m->message : "refused");
		return;
	}
	if (m->kind != PROTO_RELAY_PUNCH_GO ||
	    proto__punch_addr(&p->node, m->ip, m->iplen, m->port) != 0 ||
	    p->node.ss.ss_family != p->relay.ss.ss_family) {
		fall_back(p, "not a GO");
		return;
	}
	if ((why = proto__punch_refusal(&p->node)) != NULL) {
		fall_back(p, why);
		return;
	}
	drop_fd(&p->rfd, &p->rev);
	p->phase = PUNCHING;
	evtimer_add(p->deadline, &window);
	/* lfd was bound before the ask: it connects now. */
	try_punch(-1, 0, p);
}

static void
relay_said(evutil_socket_t fd, short what, void *arg)
{
	struct proto__punch *p = arg;
	proto_relay_msg m;
	uint32_t n;
	ssize_t got;

	(void)what;
	got = read(fd, p->in + p->have, sizeof(p->in) - p->have);
	if (got <= 0) {
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		fall_back(p, "the relay closed");
		return;
	}
	p->have += (size_t)got;
	if (p->have < PROTO_FRAME_HEADER)
		return;
	if (proto_frame_get_len(p->in, PROTO_RELAY_MSG_MAX, &n) != 0) {
		fall_back(p, "a frame too big");
		return;
	}
	if (p->have < PROTO_FRAME_HEADER + n)
		return;
	if (proto_relay_msg_parse(p->in + PROTO_FRAME_HEADER, n, 1, &m) != 0) {
		fall_back(p, "malformed");
		return;
	}
	told(p, &m);
}

static void
asked_connected(evutil_socket_t fd, short what, void *arg)
{
	struct proto__punch *p = arg;
	struct event_base *base = bufferevent_get_base(p->c->bev);
	proto_relay_msg m;

	(void)what;
	memset(&m, 0, sizeof(m));
	m.kind = PROTO_RELAY_PUNCH_ASK;
	m.rid = 1;
	memcpy(m.id, p->id, sizeof(m.id));
	m.port = p->lport;
	event_free(p->rev);
	p->rev = NULL;
	if (connect_error(fd) != 0 || send_msg(fd, &m) != 0 ||
	    (p->rev = event_new(base, fd, EV_READ | EV_PERSIST, relay_said,
	    p)) == NULL || event_add(p->rev, NULL) != 0)
		fall_back(p, "the relay is unreachable");
}

/* The port to punch from, bound now so that the relay can be told it. */
static int
bind_local(struct proto__punch *p)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int one = 1;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = p->relay.ss.ss_family;
	if ((p->lfd = socket_for(&p->relay)) < 0 ||
	    setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 || bind(p->lfd, (struct sockaddr *)&ss,
	    ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6)) != 0 ||
	    getsockname(p->lfd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	p->lport = ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

static void
begin(evutil_socket_t fd, short what, void *arg)
{
	struct proto__punch *p = arg;
	struct timeval ask = { PUNCH_ASK_SECS, 0 };

	(void)fd;
	(void)what;
	evtimer_add(p->deadline, &ask);
	if (bind_local(p) != 0 || (p->rfd = socket_for(&p->relay)) < 0 ||
	    start_connect(p, p->rfd, &p->relay, &p->rev,
	    asked_connected) != 0)
		fall_back(p, strerror(errno));
}

proto_conn *
proto_conn_connect_punched(struct event_base *base, const struct sockaddr *sa,
    socklen_t salen, const uint8_t *id, const proto_conn_config *cfg,
    const proto_conn_cbs *cbs, void *ctx)
{
	struct timeval now = { 0, 0 };
	struct bufferevent *bev;
	struct proto__punch *p;
	proto_conn *c;
	SSL *ssl;

	/* Only over TLS: the pinned identity is what makes the relay's
	 * word harmless, punched or relayed. */
	if (cfg->tls == NULL || (p = calloc(1, sizeof(*p))) == NULL) {
		errno = cfg->tls == NULL ? EINVAL : ENOMEM;
		return NULL;
	}
	p->lfd = p->rfd = -1;
	memcpy(p->id, id, sizeof(p->id));
	if (proto_addr_from_sockaddr(&p->relay, sa, salen) != 0) {
		free(p);
		errno = EINVAL;
		return NULL;
	}
	ssl = SSL_new(cfg->tls);
	bev = ssl == NULL ? NULL : bufferevent_openssl_socket_new(base, -1,
	    ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL && ssl != NULL)
		SSL_free(ssl);
	if (bev == NULL || (c = proto__conn_setup(bev, cfg, cbs, ctx,
	    sa)) == NULL) {
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	p->c = c;
	c->punch = p;
	c->relayed = 1;
	/* The punch has deadlines of its own; the handshake's time starts
	 * once a socket is had (hand_over). */
	evtimer_del(c->handshake);
	/* Begun from the loop: the owner has its connection first. */
	if ((p->start = evtimer_new(base, begin, p)) == NULL ||
	    (p->deadline = evtimer_new(base, expired, p)) == NULL ||
	    (p->retry = evtimer_new(base, try_punch, p)) == NULL ||
	    evtimer_add(p->start, &now) != 0) {
		proto__conn_really_free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}
