/*
 * A fetch's table of peers: adding one (turning away ourselves and an
 * address already known, bounding the table to PROTO_FETCH_PEERS_MAX by
 * forgetting a gone peer that brought nothing, trying a known one again
 * once its backoff is over), connecting it, and the owner's peers that
 * wait for room until one is made. The session (fetch.c) calls this file
 * and judges what a peer's end means; this file reaches fetchanswer.c
 * only through the connection callbacks it hands a new connection, and
 * calls fetchutil.c. It never calls fetch.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/socket.h>

#include <event2/event.h>

#include "error.h"
#include "fetch_private.h"

static void connect_peer(struct fetch_peer *p);

/* The owner's peers that waited for room get it, in the order given. A
 * new peer has its own chance: the clock of the timeout starts again. */
void
proto__fetch_admit_queued(proto_fetch *f)
{
	if (f->admitting || f->done || f->closed)
		return;
	f->admitting = 1;
	for (size_t i = 0; i < f->npeers &&
	    proto__fetch_alive_peers(f) < f->cfg.max_peers; i++)
		if (f->peers[i]->state == FETCH_QUEUED) {
			f->last_progress = time(NULL);
			connect_peer(f->peers[i]);
		}
	f->admitting = 0;
}

/* 1 when a is the owner's node itself. */
static int
is_self(const proto_fetch *f, const proto_addr *a)
{
	return f->cfg.node != NULL && proto_node_is_self(f->cfg.node, a);
}

/* A peer's line starts afresh. */
static void
line_new(struct fetch_peer *p)
{
	p->has_file = 0;
	p->swarm = 0;
	p->paused = p->resend = 0;
	p->busy_streak = 0;
	p->line_lost = 0;
	p->have_bytes = 0;
	p->started = proto__fetch_now();
}

/* p asks on c, which the node's server accepted from it: as its guest.
 * 0, or PROTO_ERR_INVALID when c takes no guest. */
static int
borrow(struct fetch_peer *p, proto_conn *c)
{
	int rc;

	if ((rc = proto_conn_attach(c, &proto__fetch_guest_cbs, p)) != 0)
		return rc;
	if (p->retry_ev != NULL)
		evtimer_del(p->retry_ev);
	line_new(p);
	p->conn = c;
	p->borrowed = 1;
	/* What came before was not ours. */
	p->in_mark = proto_conn_bytes_in(c);
	p->have_bytes = proto__fetch_peer_net_bytes(p);
	proto__fetch_log(p->f, PROTO_LOG_DEBUG, "%s: asking on the connection "
	    "it made", proto_addr_text(&p->addr));
	proto__fetch_peer_start(p);
	return 0;
}

/* Where a peer sees us is the node's to weigh. */
static void
seen_by(const proto_addr *seen, const proto_addr *by, void *node)
{
	(void)proto_node_observe(node, seen, by);
}

static void
connect_peer(struct fetch_peer *p)
{
	proto_fetch *f = p->f;
	proto_conn_config cfg = f->cfg.conn;
	proto_addr said[PROTO_HELLO_ADDRS_MAX], mapped;

	/* What the owner's node serves, it says on every connection; and
	 * it answers there, so that the peer may ask too. A connection the
	 * peer made to the node does instead of a second one. */
	if (f->cfg.node != NULL) {
		proto_conn *c;
		cfg.caps |= proto_node_caps(f->cfg.node);
		if (proto_node_port(f->cfg.node) != 0) {
			cfg.caps |= PROTO_CAP_DUPLEX;
			/* What the node's server takes on a connection (its
			 * queue, server_private.h's REQUESTS_MAX). */
			if (cfg.max_requests == 0)
				cfg.max_requests = 64;
		}
		cfg.naddrs = proto_node_addrs(f->cfg.node, said,
		    PROTO_HELLO_ADDRS_MAX);
		cfg.addrs = said;
		cfg.on_seen = seen_by;
		cfg.seen_ctx = f->cfg.node;
		if (proto_node_external(f->cfg.node, &mapped) ==
		    PROTO_NODE_EXT_MAPPED)
			cfg.mapped = &mapped;
		if ((c = proto_node_conn_to(f->cfg.node, &p->addr)) != NULL &&
		    borrow(p, c) == 0)
			return;
	}
	p->state = FETCH_CONNECTING;
	line_new(p);
	p->in_mark = 0;
	f->connects++;
	if (p->addr.has_pin)
		cfg.pin = p->addr.pin;
	/* A fetch of a node's: the node's record goes in the HELLO, so the
	 * peer can pass it on as it is. */
	if (f->cfg.node != NULL)
		cfg.record = proto_node_record(f->cfg.node, &cfg.record_len);
	/* We take a manifest without its layer, and ask for the hashes; and
	 * we take CHOKE, which our node's server, answering here, sends. */
	cfg.caps |= PROTO_CAP_HASHES | PROTO_CAP_CHOKE;
	if (f->cbs.on_tree != NULL || f->cfg.list)
		cfg.caps |= PROTO_CAP_TREES;
	/* Through a relay only as told, and only over TLS: the node's
	 * identity, pinned, is what makes the relay harmless. */
	if (p->addr.relayed && (!p->addr.has_pin || cfg.tls == NULL)) {
		proto__fetch_peer_fail(p, 0, "%s: a node is reached through a "
		    "relay only with TLS and its identity",
		    proto_addr_text(&p->addr));
		return;
	}
	/* A node the owner names with an identity may be named at several
	 * addresses: raced, and the race waits for the loop, so that those
	 * named with this one (a link's) join it. */
	if (p->addr.relayed)
		p->conn = proto_conn_connect_punched(f->base,
		    (struct sockaddr *)&p->addr.ss, p->addr.len, p->addr.pin,
		    &cfg, &proto__fetch_peer_cbs, p);
	else if (p->addr.has_pin && !p->learned) {
		proto_addr all[PROTO_CONN_RACE_MAX];
		all[0] = p->addr;
		memcpy(all + 1, p->alts, p->nalts * sizeof(*all));
		p->conn = proto_conn_connect_race(f->base, all, p->nalts + 1,
		    &cfg, &proto__fetch_peer_cbs, p);
	} else
		p->conn = proto_conn_connect(f->base, (struct sockaddr *)
		    &p->addr.ss, p->addr.len, &cfg, &proto__fetch_peer_cbs, p);
	if (p->conn == NULL) {
		proto__fetch_peer_fail(p, 0, "connect %s: %s", proto_addr_text(&p->addr),
		    strerror(errno));
		return;
	}
	proto_conn_set_idle_timeout(p->conn, f->cfg.timeout);
	proto__fetch_log(f, PROTO_LOG_DEBUG, "%s: connecting", proto_addr_text(&p->addr));
}

static void
reconnect(evutil_socket_t fd, short what, void *arg)
{
	struct fetch_peer *p = arg;

	(void)fd;
	(void)what;
	if (p->state == FETCH_RETRYING && !p->f->done)
		connect_peer(p);
}

void
proto__fetch_peer_free(struct fetch_peer *p)
{
	if (p == NULL)
		return;
	if (p->retry_ev)
		event_free(p->retry_ev);
	free(p);
}

/* A gone peer that brought nothing and is not being retried: forgotten
 * first when the table is full (the oldest such), so that a flood of
 * addresses that lead nowhere cannot grow it. 1 when one was. */
static int
forget_one(proto_fetch *f)
{
	for (size_t i = 0; i < f->npeers; i++) {
		struct fetch_peer *p = f->peers[i];
		if (p->state != FETCH_GONE || p->chunks > 0)
			continue;
		proto__fetch_peer_free(p);
		memmove(&f->peers[i], &f->peers[i + 1],
		    (f->npeers - i - 1) * sizeof(*f->peers));
		f->npeers--;
		return 1;
	}
	return 0;
}

/* The peer known at a (in any spelling), or NULL. Through a relay, the
 * relay's address is many nodes': the same peer only by the same pin, and
 * never one reached directly there. */
static struct fetch_peer *
find_peer(const proto_fetch *f, const proto_addr *a)
{
	for (size_t i = 0; i < f->npeers; i++) {
		const proto_addr *pa = &f->peers[i]->addr;
		if (pa->relayed != a->relayed || !proto_addr_equal(pa, a))
			continue;
		if (a->relayed && (!pa->has_pin || !a->has_pin ||
		    memcmp(pa->pin, a->pin, PROTO_IDENTITY_LEN) != 0))
			continue;
		return f->peers[i];
	}
	return NULL;
}

/* Another address the owner gives of a node it gave at one already, by
 * the identity it must show there (a link's): raced with the first
 * (happy eyeballs) rather than a peer of its own. Addresses learned from
 * records stay peers of their own: one of them answering for another
 * node would otherwise end the race with the wrong identity. 1 when
 * taken so. */
static int
another_address(proto_fetch *f, const proto_addr *a)
{
	/* A relay's circuit is not an address to race: a peer of its own. */
	if (!a->has_pin || a->relayed)
		return 0;
	for (size_t i = 0; i < f->npeers; i++) {
		struct fetch_peer *p = f->peers[i];
		if (p->learned || !p->addr.has_pin || p->bad ||
		    p->addr.relayed ||
		    memcmp(p->addr.pin, a->pin,
		    PROTO_IDENTITY_LEN) != 0)
			continue;
		for (size_t j = 0; j < p->nalts; j++)
			if (proto_addr_equal(&p->alts[j], a))
				return 1;
		if (p->nalts == sizeof(p->alts) / sizeof(p->alts[0]))
			return 0;
		p->alts[p->nalts++] = *a;
		if (p->conn != NULL && !p->borrowed)
			(void)proto_conn_race_add(p->conn, a);
		proto__fetch_log(f, PROTO_LOG_DEBUG, "%s: another address of "
		    "%s", proto_addr_text(a), proto_addr_text(&p->addr));
		return 1;
	}
	return 0;
}

/* Room to connect one more: under max_peers, and for a learned one
 * while seeking (FETCH_PEERS_TARGET) and within its source's budget. */
static int
room_for(const proto_fetch *f, int learned, const struct fetch_peer *source)
{
	if (proto__fetch_alive_peers(f) >= f->cfg.max_peers)
		return 0;
	if (learned && !proto__fetch_seeking(f))
		return 0;
	if (source == NULL)
		return 1;
	return source->supplied < PROTO_FETCH_PER_SOURCE &&
	    f->learned_connects < PROTO_FETCH_LEARNED_CONNECTS;
}

int
proto__fetch_record_matters(const proto_fetch *f, const proto_addr *a,
    const struct fetch_peer *source)
{
	const struct fetch_peer *p = find_peer(f, a);

	if (p == NULL)
		return room_for(f, 1, source);
	return p->state != FETCH_CONNECTING && p->state != FETCH_READY;
}

/* A known peer named again: tried again when it is gone through no fault
 * of its own and its backoff is over. */
static void
revive(proto_fetch *f, struct fetch_peer *p, int learned,
    struct fetch_peer *source)
{
	if (p->state != FETCH_GONE || p->bad || f->done || f->closed ||
	    proto__fetch_now() < p->retry_at || !room_for(f, learned, source))
		return;
	if (source != NULL) {
		source->supplied++;
		f->learned_connects++;
	}
	proto__fetch_log(f, PROTO_LOG_DEBUG, "%s: named again; reconnecting",
	    proto_addr_text(&p->addr));
	connect_peer(p);
}

/*
 * A known peer named again, with a pin or none. The owner's word is taken
 * as it is. A record's (learned with a pin) is taken while the peer is not
 * connected: a record someone made for an address not theirs would
 * otherwise keep the node that is there away for good, once its own
 * record comes. Learned without a pin, it changes nothing.
 */
static void
repin(struct fetch_peer *p, const proto_addr *addr, int learned)
{
	int same = p->addr.has_pin == addr->has_pin && (!addr->has_pin ||
	    memcmp(p->addr.pin, addr->pin, PROTO_IDENTITY_LEN) == 0);

	if (same || (learned && (!addr->has_pin ||
	    p->state == FETCH_CONNECTING || p->state == FETCH_READY)))
		return;
	proto_addr_set_pin(&p->addr, addr->has_pin ? addr->pin : NULL);
	proto__fetch_log(p->f, PROTO_LOG_DEBUG, "%s: %s", proto_addr_text(addr),
	    addr->has_pin ? "pinned to the identity named now" :
	    "no longer pinned: the owner says so");
}

/* A new peer at addr, not yet connected; NULL when out of memory. */
static struct fetch_peer *
new_peer(proto_fetch *f, const proto_addr *addr, int learned)
{
	struct fetch_peer *p;

	if (f->npeers == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 8;
		struct fetch_peer **np = realloc(f->peers, cap * sizeof(*np));
		if (np == NULL)
			return NULL;
		f->peers = np;
		f->cap = cap;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->retry_ev = evtimer_new(f->base, reconnect, p)) == NULL) {
		proto__fetch_peer_free(p);
		return NULL;
	}
	p->f = f;
	p->addr = *addr;
	p->learned = learned;
	f->peers[f->npeers++] = p;
	return p;
}

int
proto__fetch_take_conn(proto_fetch *f, proto_conn *c, const proto_addr *addr)
{
	struct fetch_peer *p = find_peer(f, addr);

	if (f->done || f->closed || f->cfg.list || (p != NULL && p->bad))
		return 0;
	if (p != NULL && p->conn != NULL) {
		proto_conn *old;
		/* Both dialled: the one the lower node dialled is kept, by
		 * both. Ours loses: its requests go back to the pool, and it
		 * ends (the peer does not ask on it: it ranks alike). */
		if (p->borrowed || proto_conn_kept(c) != 1)
			return 0;
		old = p->conn;
		proto__fetch_log(f, PROTO_LOG_DEBUG, "%s: connected both ways; "
		    "keeping the one it made", proto_addr_text(&p->addr));
		proto__fetch_peer_release(p);
		f->bytes_in += proto_conn_bytes_in(old);
		p->conn = NULL;
		p->state = FETCH_GONE;
		proto_conn_close_after_flush(old);
		return borrow(p, c) == 0;
	}
	/* It came to us: asked as long as max_peers allows, whatever the
	 * target of those we seek. */
	if (p == NULL) {
		if (!room_for(f, 0, NULL) || (f->npeers >= PROTO_FETCH_PEERS_MAX &&
		    !forget_one(f)))
			return 0;
		if ((p = new_peer(f, addr, 1)) == NULL)
			return 0;
	} else if (!room_for(f, 0, NULL))
		return 0;
	return borrow(p, c) == 0;
}

/* learned: heard of from another peer; source: that peer, when it named
 * it in PEERS. */
int
proto__fetch_add_peer(proto_fetch *f, const proto_addr *addr, int learned,
    struct fetch_peer *source)
{
	const char *text = proto_addr_text(addr);
	struct fetch_peer *p;
	int queue = 0;

	if ((p = find_peer(f, addr)) != NULL) {
		repin(p, addr, learned);
		revive(f, p, learned, source);
		return 0;
	}
	if (!learned && another_address(f, addr))
		return 0;
	if (!room_for(f, learned, source)) {
		/* The owner's peers wait their turn: the first ones given
		 * may all be stalling. */
		if (learned) {
			proto__fetch_log(f, PROTO_LOG_DEBUG, "%s: ignored: %u peers "
			    "already", text, proto__fetch_alive_peers(f));
			return 0;
		}
		queue = 1;
	}
	if (is_self(f, addr)) {
		proto__fetch_log(f, PROTO_LOG_DEBUG, "%s: ourselves; not connecting",
		    text);
		return 0;
	}
	if (f->npeers >= PROTO_FETCH_PEERS_MAX && !forget_one(f)) {
		proto__fetch_log(f, learned ? PROTO_LOG_DEBUG : PROTO_LOG_WARN,
		    "%s: ignored: %d peers known already", text,
		    PROTO_FETCH_PEERS_MAX);
		return 0;
	}
	if ((p = new_peer(f, addr, learned)) == NULL)
		return PROTO_ERR_NOMEM;
	if (queue) {
		p->state = FETCH_QUEUED;
		proto__fetch_log(f, PROTO_LOG_DEBUG, "%s: waiting: %u peers already",
		    text, proto__fetch_alive_peers(f));
		return 0;
	}
	if (source != NULL) {
		source->supplied++;
		f->learned_connects++;
	}
	connect_peer(p);
	return 0;
}

int
proto_fetch_add_peer(proto_fetch *fx, const proto_addr *addr)
{
	return proto__fetch_add_peer(fx, addr, 0, NULL);
}

/* No progress within the timeout while the owner's peers wait for room:
 * the peers that never answered (still connecting, or no manifest) make it
 * for them, whichever of their timeouts and ours comes first. 1 when one
 * was let in. */
int
proto__fetch_make_room(proto_fetch *f)
{
	double now = proto__fetch_now();
	int queued = 0;

	for (size_t i = 0; i < f->npeers; i++)
		queued |= f->peers[i]->state == FETCH_QUEUED;
	if (!queued)
		return 0;
	/* Not those let in meanwhile. */
	for (size_t i = 0; i < f->npeers && !f->done; i++) {
		struct fetch_peer *p = f->peers[i];
		if (p->started < now && (p->state == FETCH_CONNECTING ||
		    (p->state == FETCH_READY && !p->has_file)))
			proto__fetch_peer_fail(p, 0, "%s: no answer within %u s",
			    proto_addr_text(&p->addr), f->cfg.timeout);
	}
	for (size_t i = 0; i < f->npeers; i++)
		if (f->peers[i]->state == FETCH_QUEUED)
			return 0;
	return !f->done;
}
