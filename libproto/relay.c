/*
 * The relay (PROTOCOL.md section 13): registrations of the nodes it makes
 * reachable, and circuits, each a pair of connections whose bytes it
 * copies both ways unread, within bounded buffers and rate limits. It
 * never connects anywhere: the fetcher and the node both connect to it.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "error.h"
#include "frame.h"
#include "log_private.h"
#include "msg.h"
#include "relay.h"
#include "relay_private.h"

static void rconn_free(struct rconn *c);

static void
unlink_conn(struct rconn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->r->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void
rconn_free(struct rconn *c)
{
	struct rconn *o = c->peer;

	if (c->state == R_NEW)
		c->r->nnew--;
	unlink_conn(c);
	if (c->timer != NULL)
		event_free(c->timer);
	bufferevent_free(c->bev);
	c->peer = NULL;
	free(c);
	/* A circuit ends whole: what is queued toward the other end goes
	 * first. */
	if (o != NULL) {
		o->peer = NULL;
		rconn_free(o);
	}
}

static void
closing_written(struct bufferevent *bev, void *arg)
{
	(void)bev;
	rconn_free(arg);
}

static void
closing_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	rconn_free(arg);
}

static void
timer_fired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rconn_free(arg);
}

void
proto__relay_set_timer(struct rconn *c, int secs)
{
	struct timeval tv = { secs, 0 };

	if (c->timer == NULL)
		c->timer = evtimer_new(c->r->base, timer_fired, c);
	if (c->timer != NULL)
		evtimer_add(c->timer, &tv);
}

/* Sends what is queued, then closes (or at the deadline). */
void
proto__relay_close(struct rconn *c)
{
	if (c->state == R_NEW)
		c->r->nnew--;
	c->state = R_CLOSING;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_setcb(c->bev, NULL, closing_written, closing_event, c);
	/* Never freed inside the caller's frame: from the loop, once the
	 * output is gone (at once when there is none), or at the deadline. */
	proto__relay_set_timer(c, evbuffer_get_length(bufferevent_get_output(
	    c->bev)) ==
	    0 ? 0 : NEW_SECS);
}

void
proto__relay_send(struct rconn *c, const proto_relay_msg *m)
{
	uint8_t buf[PROTO_RELAY_MSG_MAX];
	size_t n;

	if (proto_relay_msg_pack(m, buf, sizeof(buf), &n) == 0)
		bufferevent_write(c->bev, buf, n);
}

void
proto__relay_refuse(struct rconn *c, uint32_t rid, uint32_t code,
    const char *why)
{
	proto_relay_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = PROTO_RELAY_ERROR;
	m.rid = rid;
	m.code = code;
	snprintf(m.message, sizeof(m.message), "%s", why);
	proto__relay_send(c, &m);
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "relay: refused %s: %s",
	    c->host, why);
	if (c->fetcher)
		c->r->st.refused++;
	proto__relay_close(c);
}

struct rconn *
proto__relay_find_control(proto_relay *r, const uint8_t id[PROTO_IDENTITY_LEN])
{
	for (struct rconn *c = r->conns; c != NULL; c = c->next)
		if (c->state == R_CONTROL && memcmp(c->id, id,
		    PROTO_IDENTITY_LEN) == 0)
			return c;
	return NULL;
}

/* Circuits up or waiting: all, to id, from host. */
void
proto__relay_count(proto_relay *r, const uint8_t *id, const proto_addr *host,
    unsigned *all, unsigned *to_id, unsigned *from_host)
{
	*all = *to_id = *from_host = 0;
	for (struct rconn *c = r->conns; c != NULL; c = c->next) {
		if (!c->fetcher || (c->state != R_WAITING &&
		    c->state != R_SPLICED && c->state != R_PUNCH))
			continue;
		(*all)++;
		*to_id += memcmp(c->id, id, PROTO_IDENTITY_LEN) == 0;
		*from_host += proto_addr_same_site(&c->addr, host);
	}
}

static void
on_prove(struct rconn *c, const proto_relay_msg *m)
{
	uint8_t signed_[sizeof(PROTO_RELAY_DOMAIN) - 1 + PROTO_RELAY_NONCE_LEN];
	proto_relay_msg ok;
	struct rconn *old;
	unsigned nodes = 0, here = 0;

	memcpy(signed_, PROTO_RELAY_DOMAIN, sizeof(PROTO_RELAY_DOMAIN) - 1);
	memcpy(signed_ + sizeof(PROTO_RELAY_DOMAIN) - 1, c->nonce,
	    PROTO_RELAY_NONCE_LEN);
	if (!c->has_nonce || !proto_identity_verify(m->key, signed_,
	    sizeof(signed_), m->sig) || proto_identity_of_key(m->key, c->id)) {
		proto__relay_refuse(c, m->rid, PROTO_CODE_AUTH, "no proof");
		return;
	}
	/* The node itself, connecting again: the new connection takes the old
	 * one's place, which goes once the new one is in (not if refused). */
	old = proto__relay_find_control(c->r, c->id);
	for (struct rconn *o = c->r->conns; o != NULL; o = o->next) {
		if (o->state != R_CONTROL || o == old)
			continue;
		nodes++;
		here += proto_addr_same_site(&o->addr, &c->addr);
	}
	/* Keys cost nothing to make: one host cannot take every place. */
	if (nodes >= c->r->cfg.max_nodes || here >= c->r->cfg.max_per_host) {
		proto__relay_refuse(c, m->rid, PROTO_CODE_BUSY, "relay full");
		return;
	}
	if (old != NULL)
		rconn_free(old);
	c->caps = m->caps;
	memset(&ok, 0, sizeof(ok));
	ok.kind = PROTO_RELAY_REGISTERED;
	ok.rid = m->rid;
	proto__relay_send(c, &ok);
	c->r->nnew--;
	c->state = R_CONTROL;
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "relay: %s registered",
	    c->host);
	evtimer_del(c->timer);
}

static void
on_connect(struct rconn *c, const proto_relay_msg *m)
{
	proto_relay *r = c->r;
	struct rconn *ctl = proto__relay_find_control(r, m->id);
	unsigned all, to_id, from_host;
	proto_relay_msg in;

	c->fetcher = 1;
	memcpy(c->id, m->id, PROTO_IDENTITY_LEN);
	if (ctl == NULL) {
		proto__relay_refuse(c, m->rid, PROTO_CODE_NOT_FOUND,
		    "no such node here");
		return;
	}
	proto__relay_count(r, m->id, &c->addr, &all, &to_id, &from_host);
	if (all >= r->cfg.max_circuits || to_id >= r->cfg.max_per_node ||
	    from_host >= r->cfg.max_per_host) {
		proto__relay_refuse(c, m->rid, PROTO_CODE_BUSY,
		    "too many circuits");
		return;
	}
	if (RAND_bytes(c->token, sizeof(c->token)) != 1) {
		proto__relay_refuse(c, m->rid, PROTO_CODE_INTERNAL, "no token");
		return;
	}
	memset(&in, 0, sizeof(in));
	in.kind = PROTO_RELAY_INCOMING;
	memcpy(in.token, c->token, sizeof(in.token));
	proto__relay_send(ctl, &in);
	r->nnew--;
	c->state = R_WAITING;
	/* What the fetcher sends on (its TLS hello) waits in the socket. */
	bufferevent_disable(c->bev, EV_READ);
	proto__relay_set_timer(c, (int)r->cfg.wait_secs);
}

static void splice_read(struct bufferevent *bev, void *arg);
static void splice_written(struct bufferevent *bev, void *arg);
static void splice_event(struct bufferevent *bev, short what, void *arg);

static void
splice_start(struct rconn *c)
{
	proto_relay *r = c->r;
	struct timeval idle = { (time_t)r->cfg.idle_secs, 0 };

	if (c->timer != NULL)
		evtimer_del(c->timer);
	c->state = R_SPLICED;
	c->last = time(NULL);
	bufferevent_setcb(c->bev, splice_read, splice_written, splice_event,
	    c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, SPLICE_MAX);
	bufferevent_set_timeouts(c->bev, &idle, NULL);
	if (r->cbucket != NULL)
		bufferevent_set_rate_limit(c->bev, r->cbucket);
	if (r->group != NULL)
		bufferevent_add_to_rate_limit_group(c->bev, r->group);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
on_accept(struct rconn *c, const proto_relay_msg *m)
{
	struct rconn *f;

	for (f = c->r->conns; f != NULL; f = f->next)
		if (f->state == R_WAITING && CRYPTO_memcmp(f->token, m->token,
		    sizeof(f->token)) == 0)
			break;
	if (f == NULL) {
		proto__relay_refuse(c, m->rid, PROTO_CODE_NOT_FOUND,
		    "no such token");
		return;
	}
	/* Single use: the token is spent with the circuit. */
	memset(f->token, 0, sizeof(f->token));
	c->r->nnew--;
	c->peer = f;
	f->peer = c;
	c->r->st.circuits++;
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "relay: circuit %s to %s",
	    f->host, c->host);
	splice_start(c);
	splice_start(f);
	/* What either sent past its relay message goes through now. */
	splice_read(f->bev, f);
	splice_read(c->bev, c);
}

static void
new_read(struct bufferevent *bev, void *arg)
{
	struct rconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[PROTO_FRAME_HEADER], body[PROTO_RELAY_FRAME_MAX];
	proto_relay_msg m;
	uint32_t n;

	while (c->state == R_NEW || c->state == R_CONTROL) {
		if (c->state == R_CONTROL) {
			/* Nothing is defined after the registration. */
			if (evbuffer_get_length(in) > 0)
				rconn_free(c);
			return;
		}
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
			return;
		if (proto_frame_get_len(hdr, sizeof(body), &n) != 0) {
			proto__relay_refuse(c, 0, PROTO_CODE_BAD_REQUEST,
			    "too big");
			return;
		}
		if (evbuffer_get_length(in) < sizeof(hdr) + n)
			return;
		evbuffer_drain(in, sizeof(hdr));
		evbuffer_remove(in, body, n);
		if (proto_relay_msg_parse(body, n, 0, &m) != 0 ||
		    (c->r->cfg.before_punch && (m.kind ==
		    PROTO_RELAY_PUNCH_ASK ||
		    m.kind == PROTO_RELAY_PUNCH_READY))) {
			proto__relay_refuse(c, 0, PROTO_CODE_BAD_REQUEST,
			    "malformed");
			return;
		}
		switch (m.kind) {
		case PROTO_RELAY_ASK_NONCE:
			/* One nonce a connection: asking again and never
			 * reading would grow what we queue without bound. */
			if (c->has_nonce) {
				proto__relay_refuse(c, m.rid, PROTO_CODE_BAD_REQUEST,
				    "nonce already sent");
				return;
			}
			if (RAND_bytes(c->nonce, sizeof(c->nonce)) != 1) {
				proto__relay_refuse(c, m.rid,
				    PROTO_CODE_INTERNAL, "");
				return;
			}
			c->has_nonce = 1;
			m.kind = PROTO_RELAY_NONCE;
			memcpy(m.nonce, c->nonce, sizeof(m.nonce));
			proto__relay_send(c, &m);
			break;
		case PROTO_RELAY_PROVE:
			on_prove(c, &m);
			if (c->state != R_CONTROL)
				return;
			break;
		case PROTO_RELAY_CONNECT:
			on_connect(c, &m);
			return;
		case PROTO_RELAY_ACCEPT:
			on_accept(c, &m);
			return;
		case PROTO_RELAY_PUNCH_ASK:
			proto__relay_on_punch_ask(c, &m);
			return;
		case PROTO_RELAY_PUNCH_READY:
			proto__relay_on_punch_ready(c, &m);
			return;
		default:
			proto__relay_refuse(c, m.rid, PROTO_CODE_BAD_REQUEST,
			    "not a relay request");
			return;
		}
	}
}

static void
new_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	rconn_free(arg);
}

static void
splice_read(struct bufferevent *bev, void *arg)
{
	struct rconn *c = arg, *o = c->peer;
	struct evbuffer *in = bufferevent_get_input(bev), *out;
	size_t n = evbuffer_get_length(in);

	if (o == NULL || n == 0)
		return;
	out = bufferevent_get_output(o->bev);
	if (c->r->cfg.dump_fd > 0) {
		unsigned char *p = evbuffer_pullup(in, -1);
		if (p != NULL && write(c->r->cfg.dump_fd, p, n) < 0)
			c->r->cfg.dump_fd = -1;
	}
	c->r->st.bytes += n;
	c->last = o->last = time(NULL);
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= SPLICE_MAX) {
		/* The other end is slow: this one waits for it. */
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(o->bev, EV_WRITE, SPLICE_MAX / 2, 0);
	}
}

static void
splice_written(struct bufferevent *bev, void *arg)
{
	struct rconn *c = arg;

	if (c->peer != NULL && c->peer->state == R_SPLICED) {
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(c->peer->bev, EV_READ);
	}
}

static void
splice_event(struct bufferevent *bev, short what, void *arg)
{
	struct rconn *c = arg, *o = c->peer;

	if ((what & BEV_EVENT_TIMEOUT) && o != NULL &&
	    time(NULL) - c->last < (time_t)c->r->cfg.idle_secs) {
		/* Silent this way, busy the other: the circuit lives. */
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if (o != NULL && !(what & BEV_EVENT_TIMEOUT)) {
		/* One end went: what is on its way to the other still goes. */
		o->peer = NULL;
		c->peer = NULL;
		proto__relay_close(o);
	}
	rconn_free(c);
}

static void
on_conn(struct evconnlistener *lis, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	proto_relay *r = arg;
	struct rconn *c;
	proto_addr from;
	unsigned here = 0;

	(void)lis;
	if (proto_addr_from_sockaddr(&from, sa, (socklen_t)salen) != 0) {
		evutil_closesocket(fd);
		return;
	}
	/* One host's silent connections cannot take every place. */
	for (c = r->conns; c != NULL; c = c->next)
		here += c->state == R_NEW && proto_addr_same_site(&c->addr,
		    &from);
	if (r->nnew >= NEW_MAX || here >= NEW_PER_HOST ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		char text[PROTO_ADDR_TEXT_MAX];

		proto_addr_host(&from, text, sizeof(text));
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG,
		    "relay: refused %s: too many new connections", text);
		evutil_closesocket(fd);
		return;
	}
	c->r = r;
	c->addr = from;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr,
		    c->host, sizeof(c->host));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr,
		    c->host, sizeof(c->host));
	evutil_make_socket_nonblocking(fd);
	c->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	r->nnew++;
	c->next = r->conns;
	if (r->conns != NULL)
		r->conns->prev = c;
	r->conns = c;
	bufferevent_setcb(c->bev, new_read, NULL, new_event, c);
	/* Room for one whole frame, no more: reading waits for it to go. */
	bufferevent_setwatermark(c->bev, EV_READ, 0,
	    PROTO_FRAME_HEADER + PROTO_RELAY_FRAME_MAX);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	proto__relay_set_timer(c, NEW_SECS);
}

proto_relay *
proto_relay_new(struct event_base *base, const proto_relay_config *cfg)
{
	proto_relay *r = calloc(1, sizeof(*r));
	struct timeval sec = { 1, 0 };

	if (r == NULL)
		return NULL;
	r->base = base;
	r->cfg = *cfg;
#define DEF(f, v) if (r->cfg.f == 0) r->cfg.f = (v)
	DEF(max_circuits, 16);
	DEF(max_nodes, 64);
	DEF(max_per_node, 4);
	DEF(max_per_host, 4);
	DEF(rate, 4u << 20);
	DEF(circuit_rate, 1u << 20);
	DEF(idle_secs, 120);
	DEF(wait_secs, 10);
#undef DEF
	r->bucket = ev_token_bucket_cfg_new(r->cfg.rate, r->cfg.rate,
	    r->cfg.rate, r->cfg.rate, &sec);
	r->cbucket = ev_token_bucket_cfg_new(r->cfg.circuit_rate,
	    r->cfg.circuit_rate, r->cfg.circuit_rate, r->cfg.circuit_rate,
	    &sec);
	if (r->bucket != NULL)
		r->group = bufferevent_rate_limit_group_new(base, r->bucket);
	if (r->group == NULL || r->cbucket == NULL) {
		proto_relay_free(r);
		return NULL;
	}
	return r;
}

int
proto_relay_listen(proto_relay *r, const struct sockaddr *sa, socklen_t salen)
{
	r->lis = evconnlistener_new_bind(r->base, on_conn, r,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64, sa, (int)salen);
	return r->lis == NULL ? PROTO_ERR_SYSTEM : 0;
}

uint16_t
proto_relay_port(const proto_relay *r)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (r->lis == NULL || getsockname(evconnlistener_get_fd(r->lis),
	    (struct sockaddr *)&ss, &len) != 0)
		return 0;
	return ntohs(ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port);
}

void
proto_relay_stats_get(const proto_relay *r, proto_relay_stats *st)
{
	*st = r->st;
	st->nodes = st->active = 0;
	for (const struct rconn *c = r->conns; c != NULL; c = c->next) {
		st->nodes += c->state == R_CONTROL;
		st->active += c->fetcher && (c->state == R_WAITING ||
		    c->state == R_SPLICED);
	}
}

void
proto_relay_free(proto_relay *r)
{
	if (r == NULL)
		return;
	while (r->conns != NULL)
		rconn_free(r->conns);
	if (r->lis != NULL)
		evconnlistener_free(r->lis);
	if (r->group != NULL)
		bufferevent_rate_limit_group_free(r->group);
	if (r->bucket != NULL)
		ev_token_bucket_cfg_free(r->bucket);
	if (r->cbucket != NULL)
		ev_token_bucket_cfg_free(r->cbucket);
	free(r);
}
