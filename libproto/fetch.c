/*
 * A fetch's session (fetch.h): the peers it knows, which are reconnected
 * and dropped here (fetchpeers.c keeps their table: added, connected,
 * queued for room), the manifest and the picker they share, and the
 * judgement of the whole: progress or none within the timeout, and whether
 * any peer is left to hope for. What one peer is asked is fetchpeer.c's,
 * what its answers do fetchanswer.c's. This file calls fetchpeers.c and
 * fetchpeer.c; none of them calls it, and news of a peer reaches it only
 * through the fetch_peer_events it fills here. All call fetchutil.c.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "error.h"
#include "fetch_private.h"

#define DEFAULT_TIMEOUT 30
#define DEFAULT_MAX_PEERS 50
#define RECONNECTS 3          /* per peer that had the file */
#define PROGRESS_MIN 1024     /* bytes within the timeout that count as
                               * progress */


/* Alive, or waiting for room: still to hope for. */
static int
peer_pending(const struct fetch_peer *p)
{
	return p->state != FETCH_GONE;
}

static void
peer_close(struct fetch_peer *p)
{
	if (p->state == FETCH_QUEUED)
		p->state = FETCH_GONE;
	if (p->state == FETCH_GONE)
		return;
	/* The answers still due to us are not for whoever asks on the
	 * connection next. */
	if (p->conn)
		proto_conn_owed_away(p->conn, p->count);
	proto__fetch_peer_release(p);
	if (p->conn) {
		p->f->bytes_in += proto_conn_bytes_in(p->conn);
		/* Its connection may still carry the node's answers to the
		 * peer: it goes on for them, the server's from now on. */
		if (p->borrowed)
			proto_conn_detach(p->conn, 0);
		else
			proto_conn_release(p->conn);
		p->conn = NULL;
		p->borrowed = 0;
	}
	p->state = FETCH_GONE;
}

static const char *
short_note(const proto_fetch *f)
{
	return f->cfg.short_note ? f->cfg.short_note : "";
}

/* What is left to hope for: a peer still connected, or one yet to come. */
static void
check_exhausted(proto_fetch *f)
{
	const char *last = NULL;

	if (f->done || f->closed)
		return;
	/* What was said as a warning already is not said again here. */
	for (size_t i = 0; i < f->npeers; i++) {
		if (peer_pending(f->peers[i]))
			return;
		if (f->peers[i]->why[0] && !f->peers[i]->said)
			last = f->peers[i]->why;
	}
	if (f->more_peers)
		return;
	if (f->cfg.list && f->listed > 0) {
		proto__fetch_end(f, 0);
		return;
	}
	if (f->npeers == 0)
		proto__fetch_log(f, PROTO_LOG_ERROR, "no peers to fetch from");
	else if (f->cfg.list)
		proto__fetch_log(f, PROTO_LOG_ERROR, "%s", last ? last : "peer gone");
	else if (f->changed_at[0] != '\0')
		proto__fetch_log(f, PROTO_LOG_ERROR, "%s: changed on the sharing "
		    "node (%s)", f->hex, f->changed_at);
	else if (f->mf == NULL && f->not_found > 0)
		proto__fetch_log(f, PROTO_LOG_ERROR, "%s: not found on any peer",
		    f->hex);
	else if (f->mf == NULL && f->npeers == 1 && last)
		proto__fetch_log(f, PROTO_LOG_ERROR, "%s", last);
	else if (f->mf == NULL) {
		for (size_t i = 0; i < f->npeers; i++)
			if (f->peers[i]->why[0] && !f->peers[i]->said)
				proto__fetch_log(f, PROTO_LOG_ERROR, "%s",
				    f->peers[i]->why);
		proto__fetch_log(f, PROTO_LOG_ERROR, "%s: no peer could be reached",
		    f->hex);
	} else
		proto__fetch_log(f, PROTO_LOG_ERROR, "%s: every peer failed; %llu of "
		    "%llu chunks missing%s", f->hex,
		    (unsigned long long)(f->mf->nchunks - f->pk.ndone),
		    (unsigned long long)f->mf->nchunks, short_note(f));
	proto__fetch_end(f, 1);
}

/* Whether something else than p may still answer: a peer that did, one
 * alive, or one to come. */
static int
others_answer(const proto_fetch *f, const struct fetch_peer *p)
{
	if (f->listed > 0 || f->more_peers)
		return 1;
	for (size_t i = 0; i < f->npeers; i++)
		if (f->peers[i] != p && peer_pending(f->peers[i]))
			return 1;
	return 0;
}

static void consider(proto_fetch *f, struct fetch_peer *source,
    const proto_addr *addr);

static void
peer_done(struct fetch_peer *p)
{
	peer_close(p);
	check_exhausted(p->f);
}

/* Drops a peer for what it did (bad), or lost it through no fault; either
 * way its chunks go to the others. Reached through proto__fetch_peer_fail,
 * which has said why in p->why. */
static void
peer_failed(struct fetch_peer *p, int bad)
{
	proto_fetch *f = p->f;
	int repeat = p->repeat;

	p->repeat = 0;
	if (bad) {
		f->peers_dropped++;
		proto__fetch_log(f, repeat ? PROTO_LOG_DEBUG : PROTO_LOG_WARN,
		    "%s; dropping peer", p->why);
		p->said = 1;
	} else {
		/* A list goes on without this peer's files: say so. */
		int level = f->cfg.list && others_answer(f, p) ? PROTO_LOG_WARN :
		    PROTO_LOG_DEBUG;
		proto__fetch_log(f, level, "%s", p->why);
		p->said = level == PROTO_LOG_WARN;
	}
	peer_close(p);
	if (bad)
		p->bad = 1;
	else if (p->fails < 30)
		p->fails++;
	/* Named again later, it is tried again after a while. */
	p->retry_at = proto__fetch_now() + (p->fails == 0 ? FETCH_BACKOFF_MIN :
	    p->fails >= 8 ? FETCH_BACKOFF_MAX :
	    FETCH_BACKOFF_MIN * (double)(1u << (p->fails - 1)));
	if (p->retry_at > proto__fetch_now() + FETCH_BACKOFF_MAX)
		p->retry_at = proto__fetch_now() + FETCH_BACKOFF_MAX;
	/* A peer that had the file and lost the line through no fault of its
	 * own (a cut, a reset, a timeout) is tried again, a few times. */
	if (!bad && p->line_lost && p->retries < RECONNECTS && !f->done &&
	    !f->closed && p->retry_ev != NULL) {
		struct timeval half = { 0, 500000 };
		p->retries++;
		p->state = FETCH_RETRYING;
		evtimer_add(p->retry_ev, &half);
		proto__fetch_log(f, PROTO_LOG_INFO, "%s; reconnecting (%u of %u)",
		    p->why, p->retries, RECONNECTS);
	}
	proto__fetch_admit_queued(f);
	if (f->mf != NULL)
		for (size_t i = 0; i < f->npeers; i++)
			proto__fetch_peer_pump(f->peers[i]);
	check_exhausted(f);
}

/* The owner's node found a peer: fetched from too, unless all it says is
 * that the peer did not answer it. */
static void
node_found(const proto_node_seen *seen, void *arg)
{
	if (seen->what != PROTO_NODE_UNREACHED)
		consider(arg, NULL, &seen->addr);
}

/* A node connected to ours on a duplex connection: asked there. */
static int
node_conn(proto_conn *c, const proto_addr *addr, void *arg)
{
	return proto__fetch_take_conn(arg, c, addr);
}

/* A peer heard of from another, source (PEERS), or that connected to us
 * (source NULL): worth fetching from too, unless it is ourselves. Its pin,
 * if any, is the identity of the record its node signed: what others say
 * of a peer never pins it. */
static void
consider(proto_fetch *f, struct fetch_peer *source, const proto_addr *addr)
{
	if (f->done || f->closed || f->cfg.list)
		return;
	if (proto__fetch_add_peer(f, addr, 1, source) != 0) {
		proto__fetch_log(f, PROTO_LOG_ERROR, "out of memory");
		proto__fetch_end(f, 1);
	}
}

static void
peer_learned(struct fetch_peer *source, const proto_addr *addr)
{
	consider(source->f, source, addr);
}

static const struct fetch_peer_events session_events = {
	peer_failed, peer_done, peer_learned
};

void
proto_fetch_add_learned(proto_fetch *fx, const proto_addr *addr)
{
	consider(fx, NULL, addr);
}

/* 1 when a peer with the file is connected and ready: it holds what is
 * missing, or may come to (a fetcher), or hides it for now (a seed that
 * super-seeds shows a chunk at a time). Only a node that can say it will
 * not serve us now (the choke cap) counts: from one that cannot, silence
 * is all the fetch has to go by, as before. */
static int
holder_connected(const proto_fetch *f)
{
	if (f->mf == NULL)
		return 0;
	for (size_t i = 0; i < f->npeers; i++)
		if (f->peers[i]->state == FETCH_READY &&
		    f->peers[i]->has_file && f->peers[i]->chokes)
			return 1;
	return 0;
}

/* Bytes still arriving are progress too: a slow peer's chunk may take
 * longer than the timeout and still be on its way. A trickle is not: a
 * peer dripping a byte now and then must not hold the fetch; nor are
 * HAVEs, which a peer can send as often as it likes. */
static void
note_bytes_seen(proto_fetch *f)
{
	uint64_t seen = 0;

	for (size_t i = 0; i < f->npeers; i++)
		if (f->peers[i]->conn)
			seen += proto__fetch_peer_net_bytes(f->peers[i]);
	if (seen < f->bytes_seen || seen - f->bytes_seen >= PROGRESS_MIN) {
		f->bytes_seen = seen;
		f->last_progress = time(NULL);
	}
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	proto_fetch *f = arg;
	unsigned t = f->cfg.timeout;

	(void)fd;
	(void)what;
	if (f->closed || f->done)
		return;
	for (size_t i = 0; i < f->npeers && !f->done && !f->closed; i++)
		proto__fetch_peer_resume(f->peers[i]);
	/* New peers may have joined those we know since we last asked; and
	 * when the fetchers bring nothing, the seeds are asked for more. */
	for (size_t i = 0; f->mf != NULL && i < f->npeers; i++) {
		struct fetch_peer *p = f->peers[i];
		proto__fetch_peer_ask_peers(p);
		if (p->manifest_wait && p->state == FETCH_READY) {
			p->manifest_wait = 0;
			p->manifest_tries++;
			proto__fetch_peer_ask_holdings(p);
		}
		proto__fetch_peer_check_hold(p);
		if (proto__fetch_stalled(f))
			proto__fetch_peer_pump(p);
	}
	note_bytes_seen(f);
	/* Complete is no failure, whatever the owner does next. */
	if (time(NULL) - f->last_progress < (time_t)t ||
	    (f->mf != NULL && f->pk.ndone == f->mf->nchunks))
		return;
	/* Slow is not failed: a peer still connected that holds what is
	 * missing (a seed with many fetchers, which chokes us for a while)
	 * is waited for, up to FETCH_SLOW_PATIENCE timeouts. */
	if (time(NULL) - f->last_progress < (time_t)t * FETCH_SLOW_PATIENCE &&
	    holder_connected(f))
		return;
	if (proto__fetch_make_room(f))
		return;
	if (f->cfg.list && f->listed > 0) {
		/* What the others said is listed; the silent ones are left. */
		for (size_t i = 0; i < f->npeers; i++)
			if (proto__fetch_peer_alive(f->peers[i]))
				proto__fetch_log(f, PROTO_LOG_WARN, "%s: no answer "
				    "within %u s", proto_addr_text(&f->peers[i]->addr), t);
		proto__fetch_end(f, 0);
		return;
	}
	if (f->changed_at[0] != '\0')
		proto__fetch_log(f, PROTO_LOG_ERROR, "%s: changed on the sharing "
		    "node (%s)", f->hex, f->changed_at);
	else if (f->mf == NULL && f->not_found > 0)
		proto__fetch_log(f, PROTO_LOG_ERROR, "%s: not found on any peer",
		    f->hex);
	else if (f->mf == NULL) {
		for (size_t i = 0; i < f->npeers; i++)
			if (proto__fetch_peer_alive(f->peers[i]))
				proto__fetch_log(f, PROTO_LOG_ERROR, "%s: no answer "
				    "within %u s", proto_addr_text(&f->peers[i]->addr), t);
		if (f->cfg.list)
			proto__fetch_log(f, PROTO_LOG_ERROR, "no peer answered within "
			    "%u s", t);
		else
			proto__fetch_log(f, PROTO_LOG_ERROR, "%s: no peer answered "
			    "within %u s", f->hex, t);
	} else
		proto__fetch_log(f, PROTO_LOG_ERROR, "%s: no progress for %u s; %llu "
		    "of %llu chunks missing%s", f->hex, t,
		    (unsigned long long)(f->mf->nchunks - f->pk.ndone),
		    (unsigned long long)f->mf->nchunks, short_note(f));
	proto__fetch_end(f, 1);
}

proto_fetch *
proto_fetch_new(struct event_base *base, const proto_fetch_config *cfg,
    const proto_fetch_cbs *cbs, void *ctx)
{
	/* Timeouts count in seconds: a quarter of one is soon enough. */
	struct timeval quarter = { 0, 250000 };
	proto_fetch *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->base = base;
	f->cfg = *cfg;
	f->cbs = *cbs;
	f->ctx = ctx;
	f->events = &session_events;
	if (f->cfg.timeout == 0)
		f->cfg.timeout = DEFAULT_TIMEOUT;
	if (f->cfg.max_peers == 0)
		f->cfg.max_peers = DEFAULT_MAX_PEERS;
	if (!cfg->list) {
		memcpy(f->id, cfg->id, PROTO_HASH_LEN);
		proto_hex_encode(f->id, PROTO_HASH_LEN, f->hex);
	}
	f->cfg.id = f->id;
	f->last_progress = time(NULL);
	if (cfg->node != NULL) {
		if (proto_node_watch(cfg->node, node_found, f) != 0 ||
		    proto_node_watch_conns(cfg->node, node_conn, f) != 0) {
			proto_fetch_free(f);
			return NULL;
		}
		f->watching = 1;
	}
	f->tick = event_new(base, -1, EV_PERSIST, on_tick, f);
	if (f->tick == NULL || event_add(f->tick, &quarter) != 0) {
		proto_fetch_free(f);
		return NULL;
	}
	return f;
}

void
proto_fetch_close(proto_fetch *fx)
{
	fx->closed = 1;
	/* Finds would be ignored now; and the node may go before the fetch. */
	if (fx->watching) {
		proto_node_unwatch(fx->cfg.node, node_found, fx);
		proto_node_unwatch_conns(fx->cfg.node, node_conn, fx);
	}
	fx->watching = 0;
	for (size_t i = 0; i < fx->npeers; i++) {
		if (fx->peers[i]->retry_ev)
			evtimer_del(fx->peers[i]->retry_ev);
		peer_close(fx->peers[i]);
	}
}

void
proto_fetch_free(proto_fetch *fx)
{
	if (fx == NULL)
		return;
	proto_fetch_close(fx);
	for (size_t i = 0; i < fx->npeers; i++)
		proto__fetch_peer_free(fx->peers[i]);
	free(fx->peers);
	proto_picker_free(&fx->pk);
	proto__fetch_runs_free(fx);
	proto_manifest_free(fx->mf);
	if (fx->tick)
		event_free(fx->tick);
	free(fx);
}

void
proto_fetch_more_peers(proto_fetch *fx, int more)
{
	fx->more_peers = more;
	if (!more)
		check_exhausted(fx);
}

void
proto_fetch_set_order(proto_fetch *fx, uint64_t limit)
{
	fx->ordered = 1;
	fx->limit = limit;
}

void
proto_fetch_held(proto_fetch *fx, uint64_t index)
{
	if (fx->mf != NULL && index < fx->mf->nchunks)
		proto_picker_done(&fx->pk, index);
}

void
proto_fetch_stop(proto_fetch *fx)
{
	fx->done = 1;
}

const proto_manifest *
proto_fetch_manifest(const proto_fetch *fx)
{
	return fx->mf;
}

void
proto_fetch_stats_get(const proto_fetch *fx, proto_fetch_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->bytes_in = fx->bytes_in;
	for (size_t i = 0; i < fx->npeers; i++)
		if (fx->peers[i]->conn)
			st->bytes_reading +=
			    proto_conn_bytes_read(fx->peers[i]->conn);
	st->chunks_fetched = fx->chunks_fetched;
	st->chunks_done = fx->pk.ndone;
	st->peers_dropped = fx->peers_dropped;
	st->cancelled = fx->cancels;
	st->duplicates = fx->wasted;
	st->peers_alive = proto__fetch_alive_peers(fx);
	for (size_t i = 0; i < fx->npeers; i++)
		st->peers_queued += fx->peers[i]->state == FETCH_QUEUED;
	st->peers = fx->npeers;
	st->connects = fx->connects;
	st->manifests = fx->manifests;
	st->hash_runs = fx->hash_runs;
}

int
proto_fetch_peer_path(const proto_fetch *fx, size_t i, const char **path)
{
	if (i >= fx->npeers)
		return PROTO_ERR_INVALID;
	*path = fx->peers[i]->path;
	return 0;
}

int
proto_fetch_peer(const proto_fetch *fx, size_t i, const char **addr,
    uint64_t *chunks)
{
	if (i >= fx->npeers)
		return PROTO_ERR_INVALID;
	*addr = proto_addr_text(&fx->peers[i]->addr);
	*chunks = fx->peers[i]->chunks;
	return 0;
}

int
proto_fetch_peer_holds(const proto_fetch *fx, const proto_conn *c,
    uint64_t index)
{
	for (size_t i = 0; i < fx->npeers; i++) {
		const struct fetch_peer *p = fx->peers[i];

		if (p->conn == c && p->mapped)
			return p->whole ? 2 : proto_have_test(&p->has, index);
	}
	return 0;
}

const char *
proto_fetch_list_peer(const proto_fetch *fx)
{
	return fx->listing != NULL ? proto_addr_text(&fx->listing->addr) :
	    NULL;
}
