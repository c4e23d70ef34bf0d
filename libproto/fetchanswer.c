/*
 * What a peer's line brings to a fetch (fetch.h): its HELLO, each answer
 * matched to the request it owes first, and its end. An answer's effect is
 * here: a manifest adopted or checked, a HAVE_MAP, HAVE or HAS_REPLY that
 * says what it holds, a run of chunk hashes (checked by fetchhashes.c), a
 * chunk verified and handed to the owner (its copies elsewhere
 * cancelled), the peers it knows, an ERROR: proto__fetch_on_msg, the
 * message callback of the connection's callbacks (fetchline.c's, which
 * also start and end a line). This file calls fetchpeer.c (to ask more of
 * the peer) and fetchutil.c, never the reverse, and tells the session what
 * became of a peer through f->events.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "fetch_private.h"
#include "record.h"

#define MANIFEST_TRIES 40         /* of a learned peer, a tick apart */
#define HASHES_RETRY 2.0          /* s before a peer without the hashes
                                   * asked is asked again */

/* One request of p's is over, answered or not. One it was deemed to hold
 * was unasked then already. */
static void
finish_chunk_request(struct fetch_peer *p, const struct fetch_request *r)
{
	proto_fetch *f = p->f;
	size_t len = proto_chunk_len(f->mf->size, f->mf->chunk_size, r->index);

	p->inflight_bytes -= len < p->inflight_bytes ? len : p->inflight_bytes;
	if (!r->abandoned)
		proto_picker_unask(&f->pk, r->index);
}

/* Chunk index came from p: the requests other peers still have out for it
 * are cancelled (those that answer anyway have their copy dropped). */
static void
cancel_copies(proto_fetch *f, const struct fetch_peer *from, uint64_t index)
{
	for (size_t k = 0; k < f->npeers; k++) {
		struct fetch_peer *q = f->peers[k];
		if (q == from || q->state != FETCH_READY || !q->swarm)
			continue;
		for (unsigned i = 0; i < q->count; i++) {
			struct fetch_request *r =
			    &q->queue[(q->head + i) % FETCH_QUEUE_MAX];
			proto_msg m;
			if (r->kind != FETCH_REQ_CHUNK || r->index != index ||
			    r->cancelled)
				continue;
			proto_msg_init(&m, PROTO_MSG_CANCEL);
			m.rid = r->rid;
			if (proto_conn_send(q->conn, &m) == 0) {
				r->cancelled = 1;
				f->cancels++;
			}
		}
	}
}

static void
take_chunk(struct fetch_peer *p, const struct fetch_request *r,
    const proto_msg *m)
{
	proto_fetch *f = p->f;
	uint64_t index = r->index;

	finish_chunk_request(p, r);
	/* After a failure (a full disk, say) the fetch is over: later chunks
	 * already in the buffers are not handed over, nor reported again. A
	 * chunk already done came twice in the endgame: the copy is dropped. */
	if (f->done || f->closed)
		return;
	if (f->pk.state[index] == PROTO_CHUNK_DONE) {
		f->wasted++;
		return;
	}
	if (proto_manifest_check_chunk(f->mf, index, m->data,
	    m->data_len) != 0) {
		proto__fetch_peer_fail(p, 1, "%s: chunk %llu failed verification",
		    proto_addr_text(&p->addr), (unsigned long long)index);
		return;
	}
	f->chunks_fetched++;
	p->chunks++;
	p->busy_streak = 0;
	proto__fetch_peer_set_demoted(p, 0);
	f->last_progress = time(NULL);
	f->last_chunk = proto__fetch_now();
	f->cbs.on_chunk(index, m->data, m->data_len, f->ctx);
	if (f->done)
		return;
	/* Kept by the owner: only now is it done. */
	proto_picker_done(&f->pk, index);
	cancel_copies(f, p, index);
	if (f->pk.ndone == f->mf->nchunks)
		f->cbs.on_complete(f->ctx);
}

/* The chunk size the fetch asks in: its own, not the first peer's, which
 * could make a big file a quarter of a million requests. By default the
 * finest that keeps the file within PROTO_CHUNK_AUTO_COUNT chunks; and
 * within PROTO_INLINE_MAX where it can, which peers of before the hashes
 * take. A peer's coarser layer cannot be split (nor, without its layer, is
 * it asked for a finer one) and is kept. */
static size_t
own_chunk_size(const proto_fetch *f, const proto_manifest *mf)
{
	size_t cs = f->cfg.chunk_size;

	if (cs == 0)
		for (cs = PROTO_CHUNK_MIN; cs < PROTO_CHUNK_MAX &&
		    proto_chunk_count(mf->size, cs) > PROTO_CHUNK_AUTO_COUNT;
		    cs <<= 1)
			;
	while (cs < PROTO_CHUNK_MAX &&
	    proto_chunk_count(mf->size, cs) > PROTO_INLINE_MAX)
		cs <<= 1;
	cs = proto_chunk_size_fit(mf->size, cs);
	return cs > mf->chunk_size ? cs : mf->chunk_size;
}

/* The first manifest that hashes to the id: ours from now on, in our
 * chunk size; one without its layer opened to take it run by run. */
static int
adopt_manifest(proto_fetch *f, proto_manifest *mf)
{
	size_t cs = own_chunk_size(f, mf);
	int rc = 0;

	f->mf = mf;
	if (mf->chunks == NULL)
		rc = proto_manifest_open_layer(mf, cs);
	else if (cs != mf->chunk_size)
		rc = proto_manifest_rechunk(mf, cs);
	if (rc != 0) {
		proto__fetch_log(f, PROTO_LOG_ERROR, "out of memory");
		return -1;
	}
	if (proto_picker_init(&f->pk, mf->nchunks) != 0 ||
	    (mf->known != NULL && proto__fetch_runs_init(f) != 0))
		return -1;
	if (f->cbs.on_manifest(mf, f->ctx) != 0)
		return -1;
	if (f->pk.ndone == mf->nchunks)
		f->cbs.on_complete(f->ctx);
	return 0;
}

/* The peer holds the file: ask what of it, if it can tell, else take it
 * to hold all of it. */
static void
start_peer(struct fetch_peer *p)
{
	p->cursor = (uint64_t)random() % (p->f->mf->nchunks ?
	    p->f->mf->nchunks : 1);
	if (!p->swarm) {
		p->whole = 1;
		proto__fetch_peer_pump(p);
	} else if (proto__fetch_peer_send(p, FETCH_REQ_INTERESTED, 0) != 0)
		proto__fetch_peer_fail(p, 0, "%s: cannot send", proto_addr_text(&p->addr));
	else
		/* Runs of hashes need no map: asked at once. */
		proto__fetch_peer_pump(p);
}

/* The peer says it has the file (HAS_REPLY true): whole, as a peer
 * without the swarm cap always is. */
static void
take_has(struct fetch_peer *p, const proto_msg *m)
{
	if (!m->has) {
		p->f->not_found++;
		proto__fetch_peer_fail(p, 0, "%s: does not have %s",
		    proto_addr_text(&p->addr), p->f->hex);
		return;
	}
	p->has_file = 1;
	p->whole = 1;
	proto__fetch_peer_pump(p);
}

/* A run of chunk hashes, for r: a forged one drops the peer. */
static void
take_hashes(struct fetch_peer *p, const struct fetch_request *r,
    const proto_msg *m)
{
	proto_fetch *f = p->f;
	uint64_t before = f->pk.ndone;
	int rc;

	if (p->runs_out > 0)
		p->runs_out--;
	if (f->done || f->closed)
		return;
	if ((rc = proto__fetch_run_take(f, r->index, m)) != 0) {
		proto__fetch_peer_fail(p, rc == PROTO_ERR_MISMATCH ||
		    rc == PROTO_ERR_INVALID, "%s: chunk hashes %llu on %s",
		    proto_addr_text(&p->addr),
		    (unsigned long long)(r->index * f->run_len),
		    rc == PROTO_ERR_MISMATCH ? "do not match the root" :
		    proto_strerror(rc));
		return;
	}
	/* The owner may have held some of the chunks (on_hashes): the file
	 * may even be complete now. */
	if (before < f->mf->nchunks && f->pk.ndone == f->mf->nchunks &&
	    !f->done) {
		f->cbs.on_complete(f->ctx);
		return;
	}
	/* New chunks to ask for, of every peer. */
	for (size_t k = 0; k < f->npeers && !f->done; k++)
		proto__fetch_peer_pump(f->peers[k]);
}

/* A tree manifest for the id (msg.c checked that it hashes to its own):
 * the owner's, when it takes trees; a peer that sends one to a fetch that
 * does not asked for a file it does not have. */
static void
take_tree(struct fetch_peer *p, proto_msg *m)
{
	proto_fetch *f = p->f;
	proto_tree *t = m->tree;

	if (memcmp(t->id, f->id, PROTO_HASH_LEN) != 0 ||
	    f->cbs.on_tree == NULL) {
		proto__fetch_peer_fail(p, 1, "%s: sent %s", proto_addr_text(
		    &p->addr), f->cbs.on_tree == NULL ? "a tree manifest, not "
		    "a file's" : "the manifest of another tree");
		return;
	}
	m->tree = NULL; /* taken */
	if (f->done || f->closed) {
		proto_tree_free(t);
		return;
	}
	f->manifests++;
	if (f->cbs.on_tree(t, f->ctx) != 0)
		proto__fetch_end(f, 1);
}

static void
take_manifest(struct fetch_peer *p, proto_msg *m)
{
	proto_fetch *f = p->f;

	if (m->tree != NULL) {
		take_tree(p, m);
		return;
	}
	if (memcmp(m->manifest->id, f->id, PROTO_HASH_LEN) != 0) {
		proto__fetch_peer_fail(p, 1, "%s: sent the manifest of another file",
		    proto_addr_text(&p->addr));
		return;
	}
	f->manifests++;
	p->has_file = 1;
	p->busy_streak = 0;
	if (f->mf == NULL && f->cfg.max_file_size > 0 &&
	    m->manifest->size > f->cfg.max_file_size) {
		proto__fetch_log(f, PROTO_LOG_ERROR, "%s: %llu bytes, over "
		    "storage.max_file_size (%llu)", f->hex,
		    (unsigned long long)m->manifest->size,
		    (unsigned long long)f->cfg.max_file_size);
		proto__fetch_end(f, 1);
		return;
	}
	if (f->mf == NULL) {
		int rc;
		f->last_progress = time(NULL);
		f->last_chunk = proto__fetch_now();
		rc = adopt_manifest(f, m->manifest);
		m->manifest = NULL; /* taken */
		if (rc != 0) {
			proto__fetch_end(f, 1);
			return;
		}
		proto__fetch_log(f, PROTO_LOG_INFO, "%s: %s, %llu bytes in %llu "
		    "chunks, from %s", f->hex, f->mf->name,
		    (unsigned long long)f->mf->size,
		    (unsigned long long)f->mf->nchunks, proto_addr_text(&p->addr));
		if (f->done || f->closed)
			return;
	}
	start_peer(p);
}

static void
take_peers(struct fetch_peer *p, const proto_msg *m)
{
	p->asking_peers = 0;
	/* A connect that fails at once can end p too: then it is done. And
	 * with peers enough, no record need be checked. */
	for (size_t i = 0; i < m->npeers && p->state == FETCH_READY &&
	    proto__fetch_seeking(p->f); i++) {
		const proto_peer_entry *e = &m->peers[i];
		proto_record r;
		proto_addr a;
		/* Only addresses: a name from a peer would mean a lookup. */
		if (proto_addr_from_host(&a, e->host, e->host_len,
		    e->port) != 0)
			continue;
		/* Signed by the node there: dialled, it must be that node.
		 * Any other record is no more than the address beside it. */
		if (e->record != NULL && proto__fetch_record_matters(p->f, &a,
		    p) && proto_record_verify(e->record,
		    e->record_len, (uint64_t)time(NULL), &r) == 0 &&
		    proto_record_has_addr(&r, &a))
			proto_addr_set_pin(&a, r.id);
		p->f->events->learned(p, &a);
	}
}

/* BUSY, or a code this implementation does not know (a newer peer's):
 * the request failed at this peer, for now. It goes elsewhere, or to this
 * peer again after a pause; the peer is not dropped. */
static int
later(struct fetch_peer *p, const struct fetch_request *r, const proto_msg *m,
    const char *text)
{
	const char *what[] = { "the manifest", "a chunk", "the list",
	    "what it holds", "its peers" };

	if (m->code != PROTO_CODE_BUSY && m->code != 0 &&
	    m->code < PROTO_CODE_COUNT)
		return 0;
	proto__fetch_log(p->f, PROTO_LOG_INFO, "%s: %s to %s: %s",
	    proto_addr_text(&p->addr), m->code == PROTO_CODE_BUSY ? "busy" :
	    "an error this node does not know", what[r->kind], text);
	if (r->kind == FETCH_REQ_PEERS) {
		p->asking_peers = 0;
		return 1;
	}
	proto__fetch_peer_pause(p, r->kind == FETCH_REQ_CHUNK ? 0 :
	    1 + (int)r->kind);
	return 1;
}

/* An ERROR in answer to r. */
static void
take_error(struct fetch_peer *p, const struct fetch_request *r,
    const proto_msg *m)
{
	char text[PROTO_ERROR_TEXT_MAX + 1];

	proto_msg_printable(text, sizeof(text), m->text, m->text_len);
	if (r->kind == FETCH_REQ_CHUNK)
		finish_chunk_request(p, r);
	/* Asked before its CHOKE came: the chunk goes back to the pool,
	 * the peer keeps its place. Whether it chokes us now, CHOKE and
	 * UNCHOKE say (they may come before this answer: they pass chunk
	 * data waiting to go, an ERROR does not). */
	if (r->kind == FETCH_REQ_CHUNK && m->code == PROTO_CODE_CHOKED) {
		for (size_t k = 0; k < p->f->npeers && !p->f->done; k++)
			proto__fetch_peer_pump(p->f->peers[k]);
		return;
	}
	if (m->code == PROTO_CODE_CHANGED) {
		snprintf(p->f->changed_at, sizeof(p->f->changed_at), "%s",
		    proto_addr_text(&p->addr));
		proto__fetch_peer_fail(p, 0, "%s: %s changed on the sharing "
		    "node", proto_addr_text(&p->addr), p->f->hex);
		return;
	}
	if (later(p, r, m, text))
		return;
	switch (r->kind) {
	case FETCH_REQ_CHUNK:
		if (m->code == PROTO_CODE_CANCELLED && r->cancelled) {
			proto__fetch_peer_pump(p);
			return;
		}
		if (m->code == PROTO_CODE_NOT_FOUND && !p->whole) {
			/* Its map said otherwise; no harm meant, perhaps,
			 * but no use either. */
			proto__fetch_peer_fail(p, 0, "%s: chunk %llu not held: %s",
			    proto_addr_text(&p->addr), (unsigned long long)r->index, text);
			return;
		}
		/* The file may have changed under the peer. */
		proto__fetch_peer_fail(p, 1, "%s: chunk %llu refused: %s", proto_addr_text(&p->addr),
		    (unsigned long long)r->index, text);
		return;
	case FETCH_REQ_PEERS:
		p->asking_peers = 0;
		return;
	case FETCH_REQ_HASHES:
		/* Not a reason to drop it: it may have chunks still, and the
		 * hashes later (a fetcher, its layer not whole yet). */
		if (p->runs_out > 0)
			p->runs_out--;
		proto__fetch_run_unask(p->f, r->index);
		p->hashes_after = proto__fetch_now() + HASHES_RETRY;
		if (m->code != PROTO_CODE_NOT_FOUND)
			p->hashes = 0;
		proto__fetch_log(p->f, PROTO_LOG_DEBUG, "%s: no chunk hashes: %s",
		    proto_addr_text(&p->addr), text);
		for (size_t k = 0; k < p->f->npeers && !p->f->done; k++)
			proto__fetch_peer_pump(p->f->peers[k]);
		return;
	case FETCH_REQ_HAS:
		if (m->code != PROTO_CODE_NOT_FOUND) {
			/* A peer of before HAS: asked the old way. */
			p->no_has = 1;
			if (proto__fetch_peer_send(p, FETCH_REQ_MANIFEST, 0) != 0)
				proto__fetch_peer_fail(p, 0, "%s: cannot send",
				    proto_addr_text(&p->addr));
			return;
		}
		/* fall through */
	case FETCH_REQ_INTERESTED:
	case FETCH_REQ_MANIFEST:
		/* A peer found through others is most likely a fetcher of
		 * this file that has not got the manifest yet: asked again
		 * each tick for ten seconds. */
		if (m->code == PROTO_CODE_NOT_FOUND && p->learned &&
		    p->manifest_tries < MANIFEST_TRIES) {
			p->manifest_wait = 1;
			return;
		}
		if (m->code == PROTO_CODE_NOT_FOUND)
			p->f->not_found++;
		break;
	default:
		break;
	}
	proto__fetch_peer_fail(p, 0, "%s: %s", proto_addr_text(&p->addr), text);
}

void
proto__fetch_on_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct fetch_peer *p = arg;
	struct fetch_request r;

	uint64_t in = proto_conn_bytes_in(c);

	p->idle_strikes = 0;
	/* A HAVE is no progress on a request, however long its frame. */
	if (m->type == PROTO_MSG_HAVE && m->rid == 0)
		p->have_bytes += in - p->in_mark;
	p->in_mark = in;
	if (m->type == PROTO_MSG_HAVE && m->rid == 0) {
		proto__fetch_take_have(p, m);
		return;
	}
	if (m->type == PROTO_MSG_CHOKE || m->type == PROTO_MSG_UNCHOKE) {
		proto__fetch_take_choke(p, m->type == PROTO_MSG_CHOKE);
		return;
	}
	if (p->count == 0) {
		proto__fetch_peer_fail(p, 1, "%s: sent an unrequested %s", proto_addr_text(&p->addr),
		    proto_msg_type_name(m->type));
		return;
	}
	r = p->queue[p->head];
	if (m->rid != r.rid) {
		proto__fetch_peer_fail(p, 1, "%s: answered out of order", proto_addr_text(&p->addr));
		return;
	}
	p->head = (p->head + 1) % FETCH_QUEUE_MAX;
	p->count--;
	proto__fetch_peer_head_new(p);
	if (m->type == PROTO_MSG_ERROR) {
		take_error(p, &r, m);
		return;
	}
	switch (r.kind) {
	case FETCH_REQ_LIST:
		if (m->type != PROTO_MSG_LIST_REPLY)
			break;
		p->f->listed++;
		p->f->listing = p;
		p->f->cbs.on_list(m->entries, m->nentries, p->f->ctx);
		p->f->listing = NULL;
		/* This peer has told all it will: the fetch ends with the
		 * last one. */
		p->f->events->done(p);
		return;
	case FETCH_REQ_MANIFEST:
		if (m->type != PROTO_MSG_MANIFEST)
			break;
		take_manifest(p, m);
		return;
	case FETCH_REQ_CHUNK:
		if (m->type != PROTO_MSG_CHUNK)
			break;
		take_chunk(p, &r, m);
		if (p->state == FETCH_READY)
			proto__fetch_peer_pump(p);
		return;
	case FETCH_REQ_INTERESTED:
		if (m->type != PROTO_MSG_HAVE_MAP)
			break;
		proto__fetch_take_map(p, m);
		return;
	case FETCH_REQ_HAS:
		if (m->type != PROTO_MSG_HAS_REPLY)
			break;
		take_has(p, m);
		return;
	case FETCH_REQ_HASHES:
		if (m->type != PROTO_MSG_HASHES)
			break;
		take_hashes(p, &r, m);
		return;
	case FETCH_REQ_PEERS:
		if (m->type != PROTO_MSG_PEERS_REPLY)
			break;
		take_peers(p, m);
		return;
	}
	proto__fetch_peer_fail(p, 1, "%s: answered with %s", proto_addr_text(&p->addr),
	    proto_msg_type_name(m->type));
}
