/*
 * Requests both ways on one connection (PROTOCOL.md section 4): when both
 * HELLOs carry PROTO_CAP_DUPLEX, the connection has two holders. Its owner
 * (who made or accepted it) takes the messages of its role: on a
 * connection it made, the answers to its requests; on one it accepted, the
 * peer's requests. A guest attached later takes those of the other role.
 * A message's type says which it is, so the two sides' request ids never
 * clash. Each holder lets go on its own: the owner hands c over to the
 * guest, or the guest detaches; an end one of them chooses reaches the
 * other from the event loop, never within the call that chose it, since
 * the two are different modules (a fetch and a server) that must not run
 * inside each other's calls.
 */
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn_private.h"
#include "error.h"
#include "frame.h"
#include "log_private.h"

/* 1 when m is a request (the other side's, answered by whoever answers
 * here): every type that is not an answer, so that an unknown request
 * reaches the side that says BAD_REQUEST to it. Every answer type a later
 * version adds belongs in this list, or it would go to the side that
 * answers. */
static int
is_request(const proto_msg *m)
{
	switch (m->type) {
	case PROTO_MSG_LIST_REPLY:
	case PROTO_MSG_MANIFEST:
	case PROTO_MSG_CHUNK:
	case PROTO_MSG_PEERS_REPLY:
	case PROTO_MSG_HAS_REPLY:
	case PROTO_MSG_HAVE_MAP:
	case PROTO_MSG_HAVE:
	case PROTO_MSG_HASHES:
	case PROTO_MSG_FILES:
	case PROTO_MSG_CHOKE:
	case PROTO_MSG_UNCHOKE:
	case PROTO_MSG_ERROR:
		return 0;
	default:
		return 1;
	}
}

void
proto__conn_route(proto_conn *c, proto_msg *m)
{
	int req = is_request(m);

	/* The peer chokes this connection, not a fetch: whoever asks here
	 * next, after the fetch that heard UNCHOKE has ended, is unchoked
	 * too, and the peer will not say so again. */
	if ((m->type == PROTO_MSG_CHOKE || m->type == PROTO_MSG_UNCHOKE) &&
	    m->rid == 0)
		c->peer_unchoked = m->type == PROTO_MSG_UNCHOKE;
	/* An answer to one who let go: never to the asker after it. */
	if (!req && m->rid != 0 && c->answers_not_ours > 0) {
		c->answers_not_ours--;
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: %s rid %u: for the "
		    "side that asked before; dropped", c->peer,
		    proto_msg_type_name(m->type), m->rid);
		return;
	}
	if (c->duplex && req)
		c->bytes_asked += PROTO_FRAME_HEADER + (uint64_t)c->frame_len;

	/* Not duplex, or an ERROR about the connection itself: the owner's,
	 * as it always was. */
	if (!c->duplex || (m->type == PROTO_MSG_ERROR && m->rid == 0) ||
	    req == c->owner_answers) {
		if (c->cbs.on_msg != NULL)
			c->cbs.on_msg(c, m, c->ctx);
		return;
	}
	if (c->guest.on) {
		if (c->guest.cbs.on_msg != NULL)
			c->guest.cbs.on_msg(c, m, c->guest.ctx);
		return;
	}
	/* Nobody takes it (yet, or any more). A request is still answered
	 * once, and BUSY says to ask again later, or elsewhere; a CANCEL
	 * has nothing to withdraw, an answer no one to wait for it. */
	if (req && m->type != PROTO_MSG_CANCEL) {
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: %s rid %u: no one "
		    "answers here; BUSY", c->peer,
		    proto_msg_type_name(m->type), m->rid);
		proto_conn_send_error(c, m->rid, PROTO_CODE_BUSY,
		    "no requests taken on this connection now");
	} else
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: %s rid %u: no one "
		    "asked here; dropped", c->peer,
		    proto_msg_type_name(m->type), m->rid);
}

void
proto__conn_guest_written(proto_conn *c)
{
	if (c->guest.on && c->guest.cbs.on_written != NULL)
		c->guest.cbs.on_written(c, c->guest.ctx);
}

int
proto__conn_guest_close(proto_conn *c, int err)
{
	struct conn_holder g = c->guest;

	if (!g.on)
		return 0;
	c->guest.on = 0;
	if (g.cbs.on_close != NULL) {
		c->depth++;
		g.cbs.on_close(c, err, g.ctx);
		c->depth--;
	}
	return 1;
}

/* An end one holder chose reaches the other. */
static void
notify_cb(evutil_socket_t fd, short what, void *arg)
{
	proto_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->notify_owner) {
		c->notify_owner = 0;
		if (!c->freed && c->cbs.on_close != NULL) {
			c->depth++;
			c->cbs.on_close(c, PROTO_ERR_CLOSED, c->ctx);
			proto__conn_leave(c);
		}
		return;
	}
	(void)proto__conn_guest_close(c, PROTO_ERR_CLOSED);
	if (c->freed && !c->flushing && c->depth == 0)
		proto__conn_really_free(c);
}

/* Schedules notify_cb; 0, or PROTO_ERR_NOMEM. */
static int
notify_later(proto_conn *c, int owner)
{
	if (c->notify == NULL && (c->notify = event_new(bufferevent_get_base(
	    c->bev), -1, 0, notify_cb, c)) == NULL)
		return PROTO_ERR_NOMEM;
	c->notify_owner = owner;
	event_active(c->notify, 0, 0);
	return 0;
}

void
proto__conn_tell_guest(proto_conn *c)
{
	/* No event to tell it later: told now. */
	if (c->guest.on && notify_later(c, 0) != 0)
		(void)proto__conn_guest_close(c, PROTO_ERR_CLOSED);
}

int
proto__conn_free_shared(proto_conn *c)
{
	if (!c->guest.on || c->flushing)
		return 0;
	if (notify_later(c, 0) != 0) {
		(void)proto__conn_guest_close(c, PROTO_ERR_CLOSED);
		return 0;
	}
	c->freed = 1;
	c->closed = 1;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	return 1;
}

void
proto__conn_duplex_free(proto_conn *c)
{
	/* Whatever the path to here, a guest still attached hears of it. */
	(void)proto__conn_guest_close(c, PROTO_ERR_CLOSED);
	if (c->notify != NULL)
		event_free(c->notify);
	c->notify = NULL;
}

int
proto_conn_duplex(const proto_conn *c)
{
	return c->duplex;
}

uint64_t
proto_conn_bytes_asked(const proto_conn *c)
{
	return c->bytes_asked;
}

int
proto_conn_peer_chokes(const proto_conn *c)
{
	return (c->peer_caps & PROTO_CAP_CHOKE) != 0 &&
	    (c->caps & PROTO_CAP_CHOKE) != 0 && !c->peer_unchoked;
}

int
proto_conn_answers(const proto_conn *c)
{
	return c->owner_answers;
}

int
proto_conn_attachable(const proto_conn *c)
{
	return c->ready && c->duplex && !c->closed && !c->freed &&
	    !c->flushing && !c->guest.on;
}

int
proto_conn_attach(proto_conn *c, const proto_conn_cbs *cbs, void *ctx)
{
	if (!proto_conn_attachable(c))
		return PROTO_ERR_INVALID;
	c->guest.cbs = *cbs;
	c->guest.ctx = ctx;
	c->guest.on = 1;
	/* A guest that asks takes the answers, as large as our HELLO said
	 * (handshake.c): till now only requests came, and the owner's
	 * limit for them held. */
	if (c->owner_answers)
		c->max_frame = PROTO_FRAME_MAX;
	return 0;
}

void
proto_conn_detach(proto_conn *c, int end)
{
	if (c == NULL || !c->guest.on)
		return;
	c->guest.on = 0;
	/* Out of memory for the event, c goes on: the owner must hear of
	 * any end, and never within this call. */
	if (!end || c->closed || c->freed || notify_later(c, 1) != 0)
		return;
	c->closed = 1;
	bufferevent_disable(c->bev, EV_READ);
}

void
proto_conn_owed_away(proto_conn *c, uint32_t n)
{
	if (c != NULL)
		c->answers_not_ours += n;
}

void
proto_conn_release(proto_conn *c)
{
	struct conn_holder g;

	if (c == NULL)
		return;
	if (!c->guest.on || c->closed || c->freed) {
		proto_conn_free(c);
		return;
	}
	g = c->guest;
	c->guest.on = 0;
	c->cbs = g.cbs;
	c->ctx = g.ctx;
	c->owner_answers = !c->owner_answers;
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: handed over: this side "
	    "now only %s", c->peer, c->owner_answers ? "answers" : "asks");
	if (c->cbs.on_handed != NULL)
		c->cbs.on_handed(c, c->ctx);
}

void
proto_conn_raise_out_limit(proto_conn *c, size_t min)
{
	if (c->out_limit < min)
		c->out_limit = min;
}

/* This side's rank and the peer's: by identity under TLS (when they
 * differ), else by the address each is seen at (the peer's "seen" of us when it said it, so
 * that both sides rank alike behind a NAT) and the port each listens on.
 * <0, 0 (cannot tell) or >0 as this side is below the peer or above. */
static int
rank(const proto_conn *c)
{
	char mine[PROTO_ADDR_TEXT_MAX];
	int d;

	/* Two nodes may share a key (one user's, on one host): then the
	 * addresses tell them apart. */
	if (c->ssl != NULL && c->tls_done) {
		uint8_t own[PROTO_IDENTITY_LEN];
		if (proto_tls_own_id(c->ssl, own) != 0)
			return 0;
		if ((d = memcmp(own, c->peer_id, PROTO_IDENTITY_LEN)) != 0)
			return d;
	}
	if (c->has_seen)
		proto_addr_host(&c->seen, mine, sizeof(mine));
	else {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		proto_addr a;
		if (getsockname(bufferevent_getfd(c->bev), (struct sockaddr *)
		    &ss, &len) != 0 || proto_addr_from_sockaddr(&a,
		    (struct sockaddr *)&ss, len) != 0)
			return 0;
		proto_addr_host(&a, mine, sizeof(mine));
	}
	if ((d = strcmp(mine, c->host)) != 0)
		return d;
	return (int)c->listen_port - (int)c->peer_port;
}

int
proto_conn_kept(const proto_conn *c)
{
	int r = rank(c);

	if (!c->ready || r == 0)
		return -1;
	/* Kept: the one the lower node dialled. */
	return c->outbound ? r < 0 : r > 0;
}
