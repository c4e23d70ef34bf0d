/*
 * A peer's line as a fetch sees it: its start (what the peer's HELLO
 * allows, and the first requests), its end (cut, reset, refused or timed
 * out, and whether it is worth connecting again), and its silences. These
 * and fetchanswer.c's proto__fetch_on_msg are the connection's callbacks
 * (proto__fetch_peer_cbs, and proto__fetch_guest_cbs on a connection the
 * node's server accepted), which fetchpeers.c hands each connection.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "fetch_private.h"

void
proto__fetch_peer_start(struct fetch_peer *p)
{
	proto_conn *c = p->conn;
	uint32_t maxreq = proto_conn_peer_maxreq(c);

	p->state = FETCH_READY;
	p->fails = 0;
	/* Of its addresses, the one that answered first is where it is. */
	for (size_t i = 0; i < p->nalts; i++)
		if (strcmp(proto_addr_text(&p->alts[i]), proto_conn_peer(c)) ==
		    0) {
			proto_addr was = p->addr;
			p->addr = p->alts[i];
			p->alts[i] = was;
			break;
		}
	p->path = proto_conn_path(c);
	p->swarm = (proto_conn_peer_caps(c) & PROTO_CAP_SWARM) != 0;
	if (maxreq == 0) {
		proto__fetch_peer_fail(p, 0, "%s: takes no requests (maxreq 0)",
		    proto_addr_text(&p->addr));
		return;
	}
	p->maxreq = maxreq < FETCH_QUEUE_MAX ? maxreq : FETCH_QUEUE_MAX;
	p->hashes = (proto_conn_peer_caps(c) & PROTO_CAP_HASHES) != 0;
	/* Both HELLOs carry the cap (ours always does): it chokes us until
	 * it says otherwise, on this connection, perhaps to a fetch before
	 * this one. */
	p->chokes = (proto_conn_peer_caps(c) & PROTO_CAP_CHOKE) != 0;
	p->choked = p->chokes && proto_conn_peer_chokes(c);
	p->hashes_after = 0;
	proto__fetch_log(p->f, PROTO_LOG_DEBUG, "%s: connected to %s", proto_addr_text(&p->addr),
	    proto_conn_peer_name(c));
	/* The manifest is asked for until one is held; after that, a peer is
	 * asked only what it holds. */
	if (!p->f->cfg.list && p->f->mf != NULL)
		proto__fetch_peer_ask_holdings(p);
	else if (proto__fetch_peer_send(p, p->f->cfg.list ? FETCH_REQ_LIST :
	    FETCH_REQ_MANIFEST, 0) != 0) {
		proto__fetch_peer_fail(p, 0, "%s: cannot send", proto_addr_text(&p->addr));
		return;
	}
	if (p->state == FETCH_READY)
		proto__fetch_peer_ask_peers(p);
}

static void
on_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct fetch_peer *p = arg;

	(void)hello;
	/* Both may ask here: the node answers the peer on this connection,
	 * as on those it accepts. */
	if (proto_conn_duplex(c) && p->f->cfg.node != NULL &&
	    proto_node_serve(p->f->cfg.node, c) != 0)
		proto__fetch_log(p->f, PROTO_LOG_DEBUG, "%s: its requests here "
		    "are not answered", proto_addr_text(&p->addr));
	proto__fetch_peer_start(p);
}

static void
on_close(proto_conn *c, int err, void *arg)
{
	struct fetch_peer *p = arg;
	const char *detail = proto_conn_error_detail(c);
	const char *sep = *detail ? ": " : "";
	const char *what = err == PROTO_ERR_SYSTEM ? strerror(errno) :
	    proto_strerror(err);

	p->line_lost = p->state == FETCH_READY && p->has_file &&
	    (err == PROTO_ERR_CLOSED || err == PROTO_ERR_SYSTEM);
	if ((err == PROTO_ERR_SYSTEM || err == PROTO_ERR_TIMEOUT) &&
	    p->state == FETCH_CONNECTING)
		proto__fetch_peer_fail(p, 0, "connect %s: %s%s%s", proto_addr_text(&p->addr), what, sep,
		    detail);
	else if (err == PROTO_ERR_SYSTEM || err == PROTO_ERR_CLOSED ||
	    err == PROTO_ERR_TIMEOUT)
		proto__fetch_peer_fail(p, 0, "%s: %s%s%s", proto_addr_text(&p->addr), what, sep, detail);
	else if (err == PROTO_ERR_TLS || err == PROTO_ERR_REFUSED) {
		/* Not an attack, most likely a peer set up otherwise: said
		 * now, as it would only show at the end. */
		proto__fetch_log(p->f, PROTO_LOG_WARN, "%s: %s%s%s", proto_addr_text(&p->addr), what,
		    sep, detail);
		proto__fetch_peer_fail(p, 0, "%s: %s%s%s", proto_addr_text(&p->addr), what, sep, detail);
		p->said = 1;
	} else if (err == PROTO_ERR_IDENTITY) {
		/* The detail names both identities: the same one is the same
		 * node, at another of its addresses or tried again, and is
		 * said once. */
		p->repeat = strcmp(p->f->said_identity, detail) == 0;
		snprintf(p->f->said_identity, sizeof(p->f->said_identity),
		    "%s", detail);
		proto__fetch_peer_fail(p, 1, "%s: %s%s%s", proto_addr_text(&p->addr), what, sep, detail);
	} else if (err == PROTO_ERR_AUTH)
		proto__fetch_peer_fail(p, 1, "%s: %s%s%s", proto_addr_text(&p->addr), what, sep, detail);
	else
		proto__fetch_peer_fail(p, 1, "%s: protocol error: %s", proto_addr_text(&p->addr), what);
	/* A guest's connection is gone once this returns. */
	if (p->borrowed && p->conn == c) {
		p->conn = NULL;
		p->borrowed = 0;
	}
}

/* The server let go of the connection: ours now. */
static void
on_handed(proto_conn *c, void *arg)
{
	struct fetch_peer *p = arg;

	p->borrowed = 0;
	proto_conn_set_idle_timeout(c, p->f->cfg.timeout);
}


/* A peer that owes us answers and sends nothing for the timeout is gone
 * (a path gone silent looks no different); one that owes nothing may
 * idle, as one that chokes us does. Slow is not failed: a seed with the
 * choke cap that shares its upload among many may owe us for several
 * timeouts. While others feed the fetch (a chunk verified within half
 * the timeout; its chunks went to them once held a timeout), it is waited
 * for, up to FETCH_SLOW_PATIENCE timeouts; when nothing arrives from
 * anyone, its silence is taken for a dead path at once, as before. */
static int
on_idle(proto_conn *c, void *arg)
{
	struct fetch_peer *p = arg;
	const proto_fetch *f = p->f;

	(void)c;
	if (p->count == 0)
		return 1;
	return p->chokes && p->has_file &&
	    proto__fetch_now() - f->last_chunk < f->cfg.timeout / 2.0 &&
	    ++p->idle_strikes < FETCH_SLOW_PATIENCE;
}

const proto_conn_cbs proto__fetch_peer_cbs = { on_ready, proto__fetch_on_msg, on_close,
    on_idle, NULL, NULL };
const proto_conn_cbs proto__fetch_guest_cbs = { NULL, proto__fetch_on_msg, on_close,
    on_idle, NULL, on_handed };
