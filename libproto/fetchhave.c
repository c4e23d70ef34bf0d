/*
 * What a peer says it holds and whether it serves us, for fetchanswer.c:
 * its HAVE_MAP, seen in our chunk size; each HAVE, which may cancel a
 * request for that chunk queued at a seed (a fetcher that holds it is
 * the better source); and CHOKE and UNCHOKE, which say whether it takes
 * chunk requests from us now. It calls fetchpeer.c to ask more, and
 * fetchutil.c; fetchanswer.c is its only caller.
 */
#include <string.h>

#include "fetch_private.h"

/* A HAVE_MAP: what the peer holds, in its own chunk size, seen in ours. */
void
proto__fetch_take_map(struct fetch_peer *p, const proto_msg *m)
{
	const proto_manifest *mf = p->f->mf;

	if (!proto_chunk_size_valid(mf->size, m->chunk_size) ||
	    proto_have_init(&p->theirs, proto_chunk_count(mf->size,
	    m->chunk_size)) != 0 ||
	    proto_have_load(&p->theirs, m->bits, m->bits_len) != 0) {
		proto_have_free(&p->theirs);
		proto__fetch_peer_fail(p, 1, "%s: sent a malformed HAVE_MAP", proto_addr_text(&p->addr));
		return;
	}
	p->their_chunk_size = m->chunk_size;
	p->mapped = 1;
	p->has_file = 1;
	if (p->theirs.count == p->theirs.n)
		p->whole = 1;
	else {
		if (proto_have_init(&p->has, mf->nchunks) != 0) {
			proto__fetch_peer_fail(p, 0, "out of memory");
			return;
		}
		for (uint64_t i = 0; i < mf->nchunks; i++)
			if (proto_have_covers(&p->theirs, m->chunk_size,
			    mf->size, mf->chunk_size, i))
				proto_have_set(&p->has, i);
		proto_picker_add_holder(&p->f->pk, &p->has);
	}
	proto__fetch_log(p->f, PROTO_LOG_DEBUG, "%s: holds %llu of %llu chunks",
	    proto_addr_text(&p->addr), (unsigned long long)p->theirs.count,
	    (unsigned long long)p->theirs.n);
	proto__fetch_peer_pump(p);
}

/*
 * Chunk i is held now by p, a fetcher we may ask: a request for it still
 * queued at a seed is cancelled (CANCEL), and it goes back to the pool,
 * for p or another fetcher to be asked. A seed slow under many fetchers
 * would else send it anyway, a copy the swarm passes on by itself. One
 * the seed has begun to send is past cancelling, and still taken.
 */
static void
cancel_at_seeds(proto_fetch *f, const struct fetch_peer *p, uint64_t i)
{
	if (p->demoted || p->paused || f->pk.state[i] != PROTO_CHUNK_INFLIGHT)
		return;
	for (size_t k = 0; k < f->npeers; k++) {
		struct fetch_peer *q = f->peers[k];
		if (q == p || q->state != FETCH_READY || !q->whole ||
		    !q->swarm)
			continue;
		/* Not the head: its bytes may be on their way already. */
		for (unsigned n = 1; n < q->count; n++) {
			struct fetch_request *r =
			    &q->queue[(q->head + n) % FETCH_QUEUE_MAX];
			proto_msg m;
			if (r->kind != FETCH_REQ_CHUNK || r->index != i ||
			    r->cancelled || r->abandoned)
				continue;
			proto_msg_init(&m, PROTO_MSG_CANCEL);
			m.rid = r->rid;
			if (proto_conn_send(q->conn, &m) != 0)
				continue;
			r->cancelled = 1;
			r->abandoned = 1;
			f->cancels++;
			proto_picker_unask(&f->pk, i);
		}
	}
}

/* A HAVE: one more chunk of theirs, which may complete some of ours. */
void
proto__fetch_take_have(struct fetch_peer *p, const proto_msg *m)
{
	const proto_manifest *mf = p->f->mf;
	uint64_t start, end, first, last;

	if (!p->mapped || p->whole ||
	    memcmp(m->id, p->f->id, PROTO_HASH_LEN) != 0)
		return;
	if (m->index >= p->theirs.n) {
		proto__fetch_peer_fail(p, 1, "%s: HAVE for chunk %llu of %llu",
		    proto_addr_text(&p->addr), (unsigned long long)m->index,
		    (unsigned long long)p->theirs.n);
		return;
	}
	if (!proto_have_set(&p->theirs, m->index))
		return;
	start = m->index * (uint64_t)p->their_chunk_size;
	end = start + p->their_chunk_size < mf->size ?
	    start + p->their_chunk_size : mf->size;
	/* Our chunks that theirs overlaps; an empty file's one chunk holds
	 * no byte, and end - 1 would wrap. */
	first = start / mf->chunk_size;
	last = end > start ? (end - 1) / mf->chunk_size : first;
	for (uint64_t i = first; i <= last && i < mf->nchunks; i++)
		if (!proto_have_test(&p->has, i) && proto_have_covers(
		    &p->theirs, p->their_chunk_size, mf->size, mf->chunk_size,
		    i)) {
			proto_have_set(&p->has, i);
			if (!p->demoted)
				proto_picker_gain(&p->f->pk, i);
			cancel_at_seeds(p->f, p, i);
		}
	proto__fetch_peer_pump(p);
}

/* CHOKE or UNCHOKE: its chunk requests still out are answered ERROR
 * CHOKED, or the chunk; new ones wait for UNCHOKE. */
void
proto__fetch_take_choke(struct fetch_peer *p, int choked)
{
	proto_fetch *f = p->f;

	if (p->choked == choked)
		return;
	p->choked = choked;
	proto__fetch_log(f, PROTO_LOG_DEBUG, "%s: %s us",
	    proto_addr_text(&p->addr), choked ? "chokes" : "unchokes");
	if (f->mf == NULL)
		return;
	if (choked) {
		/* Others may be asked for what it holds meanwhile. */
		for (size_t k = 0; k < f->npeers && !f->done; k++)
			if (f->peers[k] != p)
				proto__fetch_peer_pump(f->peers[k]);
		return;
	}
	/* A fresh start: what it held up before does not count now. */
	proto__fetch_peer_set_demoted(p, 0);
	proto__fetch_peer_pump(p);
}

