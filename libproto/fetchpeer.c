/*
 * One peer of a fetch (fetch.h): the requests it has out, which it must
 * answer in the order asked, which chunk to ask it for next and how many
 * at once, and the hold on a request it does not answer (a peer that
 * claims chunks and never sends them). What each answer does is
 * fetchanswer.c's. The session (fetch.c, with its table in fetchpeers.c)
 * owns the peers, connects them and decides when they are gone. fetch.c
 * and fetchanswer.c call this file, never the reverse: what becomes of a
 * peer goes back through f->events, which fetch.c fills. It calls
 * fetchutil.c too, and fetchhashes.c for the runs of chunk hashes to ask
 * for.
 */
#include <stdlib.h>

#include "error.h"
#include "fetch_private.h"
#include "merkle.h"

#define INFLIGHT_BYTES (2u << 20) /* requested, unanswered, per peer */
#define INFLIGHT_CHUNKS 16        /* chunk requests per peer */
/* A peer that sends nothing towards the chunk it owes first for this
 * long, while another peer's chunks are verified, holds the request: it
 * is asked of others, and the holder's claims stop counting. A liar that
 * claims chunks and never sends them would otherwise keep the seeds from
 * being asked for them. */
#define HOLD_DEADLINE 1.0
#define HOLD_PROGRESS 1024        /* net bytes that move the deadline */
/* Bytes arriving are no proof of a peer worth waiting for: one that sends
 * a chunk slower than this, while others deliver, is held too. A head
 * chunk request has HOLD_DEADLINE plus its length at SLOW_RATE. */
#define SLOW_RATE (64.0 * 1024)
#define RUNS_INFLIGHT 2           /* GET_HASHES per peer: 32 KiB of
                                   * hashes on the way, for 512 chunks a
                                   * run */

static const proto_have *
peer_have(const struct fetch_peer *p)
{
	return p->whole ? NULL : &p->has;
}

/* Bytes the peer sent on this connection that were not HAVEs: a frame
 * still arriving counts, a HAVE once whole does not. */
uint64_t
proto__fetch_peer_net_bytes(const struct fetch_peer *p)
{
	uint64_t seen = p->conn ? proto_conn_bytes_seen(p->conn) : 0;
	/* Nor are its requests to us, on a duplex connection. */
	uint64_t not = p->have_bytes + (p->conn ?
	    proto_conn_bytes_asked(p->conn) : 0);

	return seen > not ? seen - not : 0;
}

/* The head request starts its clock anew. */
void
proto__fetch_peer_hold_reset(struct fetch_peer *p)
{
	p->hold_mark = proto__fetch_now();
	p->hold_net = proto__fetch_peer_net_bytes(p);
}

/* Another request is first in line: its own deadline starts. */
void
proto__fetch_peer_head_new(struct fetch_peer *p)
{
	proto__fetch_peer_hold_reset(p);
	p->head_since = p->hold_mark;
}

/* Its claims count for rarity (and so spare seeds) again, or no more. */
void
proto__fetch_peer_set_demoted(struct fetch_peer *p, int demoted)
{
	proto_fetch *f = p->f;

	if (p->demoted == demoted)
		return;
	p->demoted = demoted;
	if (!p->mapped || p->whole || f->mf == NULL)
		return;
	if (demoted)
		proto_picker_remove_holder(&f->pk, &p->has);
	else
		proto_picker_add_holder(&f->pk, &p->has);
}

/* 1 when p still owes a chunk it was asked for and not told to forget. */
static int
owes_chunk(const struct fetch_peer *p)
{
	for (unsigned i = 0; i < p->count; i++) {
		const struct fetch_request *r =
		    &p->queue[(p->head + i) % FETCH_QUEUE_MAX];
		if (r->kind == FETCH_REQ_CHUNK && !r->cancelled)
			return 1;
	}
	return 0;
}

/* CANCEL for r, one of p's (a peer with the swarm cap). */
static void
cancel_request(struct fetch_peer *p, struct fetch_request *r)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_CANCEL);
	m.rid = r->rid;
	if (proto_conn_send(p->conn, &m) == 0) {
		r->cancelled = 1;
		p->f->cancels++;
	}
}

/*
 * Called each tick: a peer whose first chunk request has seen no bytes for
 * HOLD_DEADLINE, or is not done within HOLD_DEADLINE plus its length at
 * SLOW_RATE, while chunks came from others, is demoted, and its chunk
 * requests go back to the pool (their answers, should they come, are still
 * taken). One that claimed chunks and sent none of the first for the whole
 * timeout is dropped: a HAVE now and then keeps it from ever being idle.
 * One demoted that owes nothing more is asked again once nothing comes
 * from others.
 */
void
proto__fetch_peer_check_hold(struct fetch_peer *p)
{
	proto_fetch *f = p->f;
	const struct fetch_request *head = &p->queue[p->head];
	uint64_t net = proto__fetch_peer_net_bytes(p);
	double now = proto__fetch_now(), budget;
	int held, slow;

	if (p->state != FETCH_READY || f->mf == NULL)
		return;
	if (p->demoted && !owes_chunk(p)) {
		/* What it held came from others and was cancelled: it owes
		 * nothing now. When the others bring nothing either, it is
		 * asked again: a seed slow to start under load, demoted,
		 * would else never be, and once the other fetchers were gone
		 * the fetch waited out its timeout for its last chunks. */
		if (proto__fetch_stalled(f)) {
			proto__fetch_log(f, PROTO_LOG_INFO, "%s: asked again: "
			    "nothing comes from the others",
			    proto_addr_text(&p->addr));
			proto__fetch_peer_set_demoted(p, 0);
		}
		return;
	}
	if (p->count == 0 || head->kind != FETCH_REQ_CHUNK)
		return;
	if (net < p->hold_net || net - p->hold_net >= HOLD_PROGRESS)
		proto__fetch_peer_hold_reset(p);
	budget = HOLD_DEADLINE + (double)proto_chunk_len(f->mf->size,
	    f->mf->chunk_size, head->index) / SLOW_RATE;
	held = now - p->hold_mark >= HOLD_DEADLINE &&
	    f->last_chunk >= p->hold_mark;
	slow = now - p->head_since >= budget && f->last_chunk >= p->head_since;
	if (!held && !slow)
		return;
	/* A seed that super-seeds shows a chunk at a time, and may be slow
	 * to send it when many share its upload: held FETCH_SLOW_PATIENCE
	 * timeouts, not one, makes a liar (its claims stopped counting at
	 * once, when it was demoted). */
	if (held && p->mapped && !p->whole && now - p->hold_mark >=
	    (double)f->cfg.timeout * (p->chokes ? FETCH_SLOW_PATIENCE : 1)) {
		proto__fetch_peer_fail(p, 1, "%s: claims chunk %llu and sent none of "
		    "it for %u s", proto_addr_text(&p->addr), (unsigned long long)head->index,
		    f->cfg.timeout * (p->chokes ? FETCH_SLOW_PATIENCE : 1));
		return;
	}
	if (p->demoted)
		return;
	if (held)
		proto__fetch_log(f, PROTO_LOG_INFO, "%s: chunk %llu held for "
		    "%.1f s; asking others", proto_addr_text(&p->addr),
		    (unsigned long long)head->index, now - p->hold_mark);
	else
		proto__fetch_log(f, PROTO_LOG_INFO, "%s: chunk %llu not done "
		    "after %.1f s; asking others", proto_addr_text(&p->addr),
		    (unsigned long long)head->index, now - p->head_since);
	proto__fetch_peer_set_demoted(p, 1);
	for (unsigned i = 0; i < p->count; i++) {
		struct fetch_request *r =
		    &p->queue[(p->head + i) % FETCH_QUEUE_MAX];
		if (r->kind == FETCH_REQ_CHUNK && !r->abandoned) {
			r->abandoned = 1;
			proto_picker_unask(&f->pk, r->index);
			/* Those behind the head it may not have begun: what
			 * it still holds queued would be a copy wasted. */
			if (i > 0 && p->swarm && !r->cancelled)
				cancel_request(p, r);
		}
	}
	for (size_t k = 0; k < f->npeers; k++)
		if (f->peers[k] != p)
			proto__fetch_peer_pump(f->peers[k]);
}

/* The peer is gone: the chunks it was asked for go back to the pool, and
 * what it held no longer counts towards any chunk's rarity. */
void
proto__fetch_peer_release(struct fetch_peer *p)
{
	proto_fetch *f = p->f;

	if (f->mf != NULL) {
		for (unsigned i = 0; i < p->count; i++) {
			struct fetch_request *r =
			    &p->queue[(p->head + i) % FETCH_QUEUE_MAX];
			if (r->kind == FETCH_REQ_CHUNK && !r->abandoned)
				proto_picker_unask(&f->pk, r->index);
			if (r->kind == FETCH_REQ_HASHES)
				proto__fetch_run_unask(f, r->index);
		}
		p->inflight_bytes = 0;
	}
	p->runs_out = 0;
	if (p->mapped && !p->whole && !p->demoted && f->mf != NULL)
		proto_picker_remove_holder(&f->pk, &p->has);
	p->demoted = 0;
	p->paused = p->resend = 0;
	proto_have_free(&p->has);
	proto_have_free(&p->theirs);
	p->mapped = p->whole = 0;
	p->count = 0;
	p->asking_peers = 0;
}

int
proto__fetch_peer_send(struct fetch_peer *p, enum fetch_req_kind kind,
    uint64_t index)
{
	static const unsigned types[] = { PROTO_MSG_GET_MANIFEST,
	    PROTO_MSG_GET_CHUNK, PROTO_MSG_LIST, PROTO_MSG_INTERESTED,
	    PROTO_MSG_PEERS, PROTO_MSG_HAS, PROTO_MSG_GET_HASHES };
	proto_fetch *f = p->f;
	struct fetch_request *r;
	proto_msg m;
	int rc;

	/* Never more out than the peer takes (its HELLO's maxreq). */
	if (p->count >= FETCH_QUEUE_MAX || p->count >= p->maxreq)
		return PROTO_ERR_TOO_BIG;
	r = &p->queue[(p->head + p->count) % FETCH_QUEUE_MAX];
	/* rid 0 is what pushed messages (HAVE) carry. */
	if (f->next_rid == 0)
		f->next_rid = 1;
	r->rid = f->next_rid++;
	r->kind = kind;
	r->index = index;
	r->cancelled = 0;
	r->abandoned = 0;
	proto_msg_init(&m, types[kind]);
	m.rid = r->rid;
	m.id = f->id;
	m.index = index;
	if (kind == FETCH_REQ_CHUNK)
		m.chunk_size = f->mf->chunk_size;
	if (kind == FETCH_REQ_HASHES) {
		/* A whole proof: only the root is held to check it by. */
		m.chunk_size = f->mf->chunk_size;
		m.index = index * f->run_len;
		m.count = f->run_len;
		m.proof_layers = proto_run_proof_len(f->mf->size,
		    f->mf->chunk_size, f->run_len);
	}
	if ((rc = proto_conn_send(p->conn, &m)) != 0)
		return rc;
	if (p->count++ == 0)
		proto__fetch_peer_head_new(p);
	return 0;
}

static int
asked_of(uint64_t index, void *arg)
{
	const struct fetch_peer *p = arg;

	for (unsigned i = 0; i < p->count; i++) {
		const struct fetch_request *r =
		    &p->queue[(p->head + i) % FETCH_QUEUE_MAX];
		if (r->kind == FETCH_REQ_CHUNK && r->index == index)
			return 1;
	}
	return 0;
}

/* Peers that hold part of the file and say which. */
static unsigned
partial_peers(const proto_fetch *f)
{
	unsigned n = 0;

	for (size_t i = 0; i < f->npeers; i++)
		n += f->peers[i]->state == FETCH_READY &&
		    f->peers[i]->mapped && !f->peers[i]->whole;
	return n;
}

/*
 * The next chunk to ask p for, or -1: the rarest it holds, or the lowest
 * missing one within the window when the owner writes in order. When
 * none is missing, the endgame: a chunk still out at other peers, asked
 * again here, so that slow or stalled peers cannot hold up the end of the
 * file; the first copy to arrive is kept and the others cancelled.
 */
static int64_t
pick_chunk(proto_fetch *f, struct fetch_peer *p)
{
	uint64_t limit = f->mf->nchunks;

	if (f->ordered && f->limit < limit)
		limit = f->limit;
	/* Among other fetchers, ties are broken at random for every pick: a
	 * fetcher moving through the file in order would soon walk into the
	 * run another is fetching from the same seed, unseen until it
	 * arrives. Alone with seeds, in order, for the disk's sake. */
	if (!f->ordered && partial_peers(f) > 0)
		p->cursor = (uint64_t)random() % f->mf->nchunks;
	return proto_picker_pick(&f->pk, peer_have(p), &p->cursor, limit,
	    f->ordered, asked_of, p);
}

/* 1 when a peer other than a seed holds chunk i and has room to be asked
 * for it now: not held, paused, choking us or full, and what it was asked
 * first has moved within HOLD_DEADLINE (one that sends nothing is no
 * source, though nothing came from others to have it held). */
static int
other_holder_free(const proto_fetch *f, uint64_t i)
{
	double now = proto__fetch_now();

	for (size_t k = 0; k < f->npeers; k++) {
		const struct fetch_peer *q = f->peers[k];
		if (q->state == FETCH_READY && q->mapped && !q->whole &&
		    !q->demoted && !q->paused && !q->choked &&
		    q->count < INFLIGHT_CHUNKS && q->count < q->maxreq &&
		    (q->count == 0 || now - q->hold_mark < HOLD_DEADLINE) &&
		    proto_have_test(&q->has, i))
			return 1;
	}
	return 0;
}

/*
 * 1 when chunk i is better not asked of p now: a copy the endgame would
 * ask for twice while p is busy, or a chunk that another fetcher holds
 * and can be asked for now, asked of a seed. A seed's upload goes to the
 * chunks only it has, and the rest passes between the fetchers; the seed
 * is asked for those too only when every fetcher that holds them is
 * busy, held or gone, chunk by chunk: never for all at once because
 * nothing came for a while.
 */
static int
spare(const proto_fetch *f, const struct fetch_peer *p, uint64_t i)
{
	if (f->pk.state[i] == PROTO_CHUNK_INFLIGHT)
		return p->inflight_bytes > 0;
	return p->whole && f->pk.avail[i] > 0 && other_holder_free(f, i);
}

/* Asks p for the next runs of chunk hashes, a few at a time: the first
 * chunks wait only for the first run. A peer that had none to give is
 * asked again after a while (a fetcher, its layer not whole yet). */
static int
ask_runs(struct fetch_peer *p)
{
	proto_fetch *f = p->f;
	int64_t run;

	if (!p->hashes || f->runs == NULL || p->hashes_after > proto__fetch_now())
		return 0;
	while (p->runs_out < RUNS_INFLIGHT && p->count < FETCH_QUEUE_MAX &&
	    (run = proto__fetch_run_next(f)) >= 0) {
		if (proto__fetch_peer_send(p, FETCH_REQ_HASHES,
		    (uint64_t)run) != 0) {
			proto__fetch_peer_fail(p, 0, "%s: cannot send",
			    proto_addr_text(&p->addr));
			return -1;
		}
		proto__fetch_run_asked(f, (uint64_t)run);
		p->runs_out++;
	}
	return 0;
}

void
proto__fetch_peer_ask_holdings(struct fetch_peer *p)
{
	proto_fetch *f = p->f;
	enum fetch_req_kind kind = p->swarm ? FETCH_REQ_INTERESTED :
	    p->no_has ? FETCH_REQ_MANIFEST : FETCH_REQ_HAS;

	p->cursor = (uint64_t)random() % (f->mf->nchunks ? f->mf->nchunks : 1);
	if (proto__fetch_peer_send(p, kind, 0) != 0)
		proto__fetch_peer_fail(p, 0, "%s: cannot send",
		    proto_addr_text(&p->addr));
}

void
proto__fetch_peer_pump(struct fetch_peer *p)
{
	proto_fetch *f = p->f;
	size_t min_inflight = 2 * (size_t)f->mf->chunk_size;
	size_t budget = INFLIGHT_BYTES > min_inflight ?
	    INFLIGHT_BYTES : min_inflight;

	/* Beside other fetchers, a seed is asked for two chunks at a time:
	 * a long queue there hides from them what is on its way to us, and
	 * they would ask the seed for the same chunks. */
	if (p->whole && partial_peers(f) > 0)
		budget = min_inflight;

	if (p->state != FETCH_READY || !p->has_file || f->done || f->closed ||
	    p->paused)
		return;
	if (ask_runs(p) != 0 || (p->swarm && !p->mapped) || p->demoted ||
	    p->choked)
		return;
	/* The count cap keeps the first peer to answer from taking every
	 * small chunk before the others are ready; the peer's maxreq keeps
	 * us within what it takes. */
	while (p->count < INFLIGHT_CHUNKS && p->count < p->maxreq &&
	    p->inflight_bytes < budget) {
		int64_t i = pick_chunk(f, p);
		if (i < 0 || spare(f, p, (uint64_t)i))
			break;
		if (proto__fetch_peer_send(p, FETCH_REQ_CHUNK, (uint64_t)i) != 0) {
			proto__fetch_peer_fail(p, 0, "%s: cannot send", proto_addr_text(&p->addr));
			return;
		}
		proto_picker_asked(&f->pk, (uint64_t)i);
		p->inflight_bytes += proto_chunk_len(f->mf->size,
		    f->mf->chunk_size, (uint64_t)i);
	}
}

/* Asks p for the peers it knows, when there is room for more. */
void
proto__fetch_peer_ask_peers(struct fetch_peer *p)
{
	proto_fetch *f = p->f;

	/* A PEERS never takes the last request the peer allows. */
	if (p->state != FETCH_READY || p->asking_peers || f->cfg.list ||
	    p->paused || p->count + 1 >= p->maxreq ||
	    p->supplied >= PROTO_FETCH_PER_SOURCE ||
	    f->learned_connects >= PROTO_FETCH_LEARNED_CONNECTS ||
	    !proto__fetch_seeking(f) || proto__fetch_now() < p->peers_after ||
	    (p->peers_after > 0 &&
	    proto__fetch_now() < f->peers_asked + FETCH_PEERS_GAP))
		return;
	/* The first time, at once; then one peer a FETCH_PEERS_GAP. */
	if (proto__fetch_peer_send(p, FETCH_REQ_PEERS, 0) == 0) {
		p->asking_peers = 1;
		p->peers_after = proto__fetch_now() + FETCH_PEERS_EVERY;
		f->peers_asked = proto__fetch_now();
	}
}

/*
 * BUSY, or an error code this implementation does not know: the request
 * failed here, not for good. The peer is kept, but asked nothing new for
 * FETCH_BUSY_MIN seconds, twice as long for each pause in a row (up to
 * FETCH_BUSY_MAX), so that a busy peer is not pressed and one that refuses
 * for a reason of its own is not asked again at once; its chunks go to
 * the others meanwhile. The answers to requests sent before the pause
 * began come during it and do not lengthen it.
 */
void
proto__fetch_peer_pause(struct fetch_peer *p, int resend)
{
	proto_fetch *f = p->f;
	double wait;

	if (resend)
		p->resend = resend;
	if (p->paused)
		return;
	wait = p->busy_streak >= 5 ? FETCH_BUSY_MAX :
	    FETCH_BUSY_MIN * (double)(1u << p->busy_streak);
	if (wait > FETCH_BUSY_MAX)
		wait = FETCH_BUSY_MAX;
	if (p->busy_streak < 16)
		p->busy_streak++;
	p->paused = 1;
	p->resume_at = proto__fetch_now() + wait;
	proto__fetch_log(f, PROTO_LOG_INFO, "%s: asking it nothing new for "
	    "%.0f s", proto_addr_text(&p->addr), wait);
	if (f->mf != NULL)
		for (size_t k = 0; k < f->npeers; k++)
			if (f->peers[k] != p)
				proto__fetch_peer_pump(f->peers[k]);
}

void
proto__fetch_peer_resume(struct fetch_peer *p)
{
	int kind = p->resend - 1;

	if (!p->paused || p->state != FETCH_READY ||
	    proto__fetch_now() < p->resume_at)
		return;
	p->paused = 0;
	p->resend = 0;
	if (kind >= 0 && proto__fetch_peer_send(p, (enum fetch_req_kind)kind,
	    0) != 0) {
		proto__fetch_peer_fail(p, 0, "%s: cannot send",
		    proto_addr_text(&p->addr));
		return;
	}
	if (p->f->mf != NULL)
		proto__fetch_peer_pump(p);
}
