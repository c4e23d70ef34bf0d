/*
 * The punches a relay coordinates (PROTOCOL.md section 13, "Hole
 * punching"): a fetcher asks for one to a registered node that punches;
 * the relay tells the node where it sees the fetcher from, and tells the
 * fetcher where it sees the node's answer from. It relays no byte of the
 * connection that follows, nor connects anywhere itself.
 */
#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>
#include "error.h"
#include "log_private.h"
#include "msg.h"
#include "relay_private.h"

/* The address the relay sees c from, as a PUNCH element: 4 bytes for
 * IPv4 (an IPv4-mapped IPv6 address too), else 16. */
static void
ip_of(const struct rconn *c, proto_relay_msg *m)
{
	const struct sockaddr_in6 *s6 = (const void *)&c->addr.ss;
	const struct sockaddr_in *s4 = (const void *)&c->addr.ss;

	if (c->addr.ss.ss_family == AF_INET) {
		memcpy(m->ip, &s4->sin_addr, 4);
		m->iplen = 4;
	} else if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memcpy(m->ip, s6->sin6_addr.s6_addr + 12, 4);
		m->iplen = 4;
	} else {
		memcpy(m->ip, &s6->sin6_addr, 16);
		m->iplen = 16;
	}
}

void
proto__relay_on_punch_ask(struct rconn *c, const proto_relay_msg *m)
{
	proto_relay *r = c->r;
	struct rconn *ctl = proto__relay_find_control(r, m->id);
	unsigned all, to_id, from_host;
	proto_relay_msg tell;

	/* A refused punch is not a refused circuit: the fetcher asks for
	 * one next, which is counted. */
	memcpy(c->id, m->id, PROTO_IDENTITY_LEN);
	if (ctl == NULL) {
		proto__relay_refuse(c, m->rid, PROTO_CODE_NOT_FOUND,
		    "no such node here");
		return;
	}
	if (!(ctl->caps & PROTO_CAP_PUNCH) || m->port == 0) {
		proto__relay_refuse(c, m->rid, PROTO_CODE_NO_PUNCH,
		    "the node does not punch");
		return;
	}
	/* A punch counts as a circuit: it costs the node a connection. */
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
	memset(&tell, 0, sizeof(tell));
	tell.kind = PROTO_RELAY_PUNCH_TELL;
	memcpy(tell.token, c->token, sizeof(tell.token));
	ip_of(c, &tell);
	tell.port = m->port;
	proto__relay_send(ctl, &tell);
	r->nnew--;
	c->fetcher = 1;
	c->rid = m->rid;
	c->state = R_PUNCH;
	bufferevent_disable(c->bev, EV_READ);
	proto__relay_set_timer(c, PUNCH_WAIT_SECS);
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "relay: punch asked by %s:%u",
	    c->host, m->port);
}

void
proto__relay_on_punch_ready(struct rconn *c, const proto_relay_msg *m)
{
	struct rconn *f;
	proto_relay_msg go;

	for (f = c->r->conns; f != NULL; f = f->next)
		if (f->state == R_PUNCH && CRYPTO_memcmp(f->token, m->token,
		    sizeof(f->token)) == 0)
			break;
	if (f == NULL) {
		proto__relay_refuse(c, m->rid, PROTO_CODE_NOT_FOUND,
		    "no such token");
		return;
	}
	memset(f->token, 0, sizeof(f->token));
	f->fetcher = 0;
	if (m->port == 0) {
		proto__relay_refuse(f, f->rid, PROTO_CODE_NO_PUNCH,
		    "the node declined to punch");
		proto__relay_close(c);
		return;
	}
	memset(&go, 0, sizeof(go));
	go.kind = PROTO_RELAY_PUNCH_GO;
	go.rid = f->rid;
	ip_of(c, &go);
	go.port = m->port;
	proto__relay_send(f, &go);
	c->r->st.punches++;
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "relay: punch %s to %s:%u",
	    f->host, c->host, m->port);
	proto__relay_close(f);
	proto__relay_close(c);
}
