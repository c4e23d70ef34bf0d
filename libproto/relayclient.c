/*
 * A node reached through a relay (PROTOCOL.md section 13): the control
 * connection it keeps there, registered by proving its identity, on which
 * the relay announces each circuit a fetcher asks for. The node then
 * connects to the relay for that circuit itself: a relay never connects
 * out, and the node never takes a connection from anyone's word but its
 * relay's.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "error.h"
#include "frame.h"
#include "log_private.h"
#include "msg.h"
#include "punch_private.h"
#include "relay.h"
#include "server.h"

#define BACKOFF_MIN 2
#define BACKOFF_MAX 60

struct proto_relay_client {
	struct event_base *base;
	proto_server *srv;
	const proto_identity *id;
	proto_addr relay;
	struct bufferevent *bev;
	struct event *retry;
	proto__puncher *pu;     /* the punches the relay asks of us */
	int registered;
	int backoff;
};

static void
send_msg(proto_relay_client *rc, const proto_relay_msg *m)
{
	uint8_t buf[PROTO_RELAY_MSG_MAX];
	size_t n;

	if (proto_relay_msg_pack(m, buf, sizeof(buf), &n) == 0)
		bufferevent_write(rc->bev, buf, n);
}

/* The control connection is lost: another, later. */
static void
drop(proto_relay_client *rc, const char *why)
{
	struct timeval tv = { rc->backoff, 0 };

	PLOG(PROTO_LOG_CONN, PROTO_LOG_INFO, "relay %s: %s; again in %d s",
	    proto_addr_text(&rc->relay), why, rc->backoff);
	if (rc->bev != NULL)
		bufferevent_free(rc->bev);
	rc->bev = NULL;
	rc->registered = 0;
	evtimer_add(rc->retry, &tv);
	rc->backoff = rc->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX :
	    rc->backoff * 2;
}

static int
prove(proto_relay_client *rc, const proto_relay_msg *nonce)
{
	uint8_t signed_[sizeof(PROTO_RELAY_DOMAIN) - 1 + PROTO_RELAY_NONCE_LEN];
	proto_relay_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = PROTO_RELAY_PROVE;
	m.rid = 2;
	m.caps = PROTO_CAP_PUNCH;
	memcpy(signed_, PROTO_RELAY_DOMAIN, sizeof(PROTO_RELAY_DOMAIN) - 1);
	memcpy(signed_ + sizeof(PROTO_RELAY_DOMAIN) - 1, nonce->nonce,
	    PROTO_RELAY_NONCE_LEN);
	if (proto_identity_public_key(rc->id, m.key) != 0 ||
	    proto_identity_sign(rc->id, signed_, sizeof(signed_), m.sig) != 0)
		return -1;
	send_msg(rc, &m);
	return 0;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	proto_relay_client *rc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[PROTO_FRAME_HEADER], body[PROTO_RELAY_FRAME_MAX];
	proto_relay_msg m;
	uint32_t n;

	for (;;) {
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
			return;
		if (proto_frame_get_len(hdr, sizeof(body), &n) != 0) {
			drop(rc, "frame too big");
			return;
		}
		if (evbuffer_get_length(in) < sizeof(hdr) + n)
			return;
		evbuffer_drain(in, sizeof(hdr));
		evbuffer_remove(in, body, n);
		if (proto_relay_msg_parse(body, n, 1, &m) != 0) {
			drop(rc, "malformed message");
			return;
		}
		switch (m.kind) {
		case PROTO_RELAY_NONCE:
			if (prove(rc, &m) != 0) {
				drop(rc, "cannot sign");
				return;
			}
			break;
		case PROTO_RELAY_REGISTERED:
			rc->registered = 1;
			rc->backoff = BACKOFF_MIN;
			PLOG(PROTO_LOG_CONN, PROTO_LOG_INFO,
			    "relay %s: reachable through it",
			    proto_addr_text(&rc->relay));
			break;
		case PROTO_RELAY_INCOMING:
			if (rc->registered && proto_server_accept_relayed(
			    rc->srv, &rc->relay, m.token) != 0)
				PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG,
				    "relay %s: no room for a circuit",
				    proto_addr_text(&rc->relay));
			break;
		case PROTO_RELAY_PUNCH_TELL:
			if (rc->registered)
				proto__puncher_told(rc->pu, &m);
			break;
		case PROTO_RELAY_ERROR:
			drop(rc, m.message[0] ? m.message : "refused");
			return;
		default:
			drop(rc, "unexpected message");
			return;
		}
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	proto_relay_client *rc = arg;
	int one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		/* A control connection may be silent for hours. */
		setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_KEEPALIVE,
		    &one, sizeof(one));
		return;
	}
	drop(rc, what & BEV_EVENT_EOF ? "closed" : "connection failed");
}

static void
connect_now(evutil_socket_t fd, short what, void *arg)
{
	proto_relay_client *rc = arg;
	proto_relay_msg m;

	(void)fd;
	(void)what;
	rc->bev = bufferevent_socket_new(rc->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (rc->bev == NULL) {
		drop(rc, "out of memory");
		return;
	}
	bufferevent_setcb(rc->bev, on_read, NULL, on_event, rc);
	bufferevent_setwatermark(rc->bev, EV_READ, 0,
	    PROTO_FRAME_HEADER + PROTO_RELAY_FRAME_MAX);
	if (bufferevent_socket_connect(rc->bev,
	    (const struct sockaddr *)&rc->relay.ss, (int)rc->relay.len) != 0) {
		drop(rc, "cannot connect");
		return;
	}
	memset(&m, 0, sizeof(m));
	m.kind = PROTO_RELAY_ASK_NONCE;
	m.rid = 1;
	send_msg(rc, &m);
	bufferevent_enable(rc->bev, EV_READ | EV_WRITE);
}

proto_relay_client *
proto_relay_client_new(struct event_base *base, proto_server *srv,
    const proto_identity *id, const proto_addr *relay)
{
	proto_relay_client *rc = calloc(1, sizeof(*rc));

	if (rc == NULL)
		return NULL;
	rc->base = base;
	rc->srv = srv;
	rc->id = id;
	rc->relay = *relay;
	rc->backoff = BACKOFF_MIN;
	if ((rc->retry = evtimer_new(base, connect_now, rc)) == NULL ||
	    (rc->pu = proto__puncher_new(base, srv, relay)) == NULL) {
		if (rc->retry != NULL)
			event_free(rc->retry);
		free(rc);
		return NULL;
	}
	connect_now(-1, 0, rc);
	return rc;
}

int
proto_relay_client_registered(const proto_relay_client *rc)
{
	return rc->registered;
}

void
proto_relay_client_free(proto_relay_client *rc)
{
	if (rc == NULL)
		return;
	if (rc->bev != NULL)
		bufferevent_free(rc->bev);
	event_free(rc->retry);
	proto__puncher_free(rc->pu);
	free(rc);
}
