/*
 * What a node's server answers: a client's LIST, GET_MANIFEST, GET_CHUNK,
 * PEERS, HAS, INTERESTED and GET_HASHES (CANCEL withdraws one still
 * queued), and the HAVEs pushed to clients interested in a file as the
 * node gets its chunks. A peer without PROTO_CAP_HASHES is told only of
 * manifests it can take whole, as the protocol was before: never one
 * without its layer, nor one of more than PROTO_INLINE_MAX chunks.
 *
 * Each client has a queue of the requests it sent, answered in order as its
 * output drains: everything but chunk data is small, and chunk data go in
 * while less than QUEUED_BYTES wait to be written, so the rest of the queue
 * can still be cancelled. A client past its REQUESTS_MAX is answered BUSY
 * (in turn), and one past QUEUE_MAX dropped: reading never stops.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "frame.h"
#include "merkle.h"
#include "server_private.h"

#define LIST_MAX 16000      /* entries per LIST_REPLY: within a frame */

/*
 * Sends m, the answer to its rid, or when it cannot go the ERROR that
 * says why, so that every request is answered once: BAD_REQUEST for an
 * answer larger than the client's maxframe (its own limit refuses it),
 * BUSY when memory ran short (worth asking again later). 0 when m went.
 */
static int
send_answer(proto_conn *c, const proto_msg *m)
{
	int rc = proto_conn_send(c, m);

	if (rc == PROTO_ERR_TOO_BIG)
		proto_conn_send_error(c, m->rid, PROTO_CODE_BAD_REQUEST,
		    "the answer is larger than your maxframe");
	else if (rc != 0)
		proto_conn_send_error(c, m->rid, PROTO_CODE_BUSY,
		    "out of memory; ask again later");
	return rc;
}

/* The entries of a LIST_REPLY to a peer with PROTO_CAP_TREES: the files
 * with their paths in their trees, then the trees; within a frame's
 * objects (six an entry) and bytes. */
#define LIST_TREES_MAX 10000
#define LIST_BYTES_MAX (12u << 20)

static size_t
list_trees(const proto_store *st, proto_list_entry *entries, size_t n)
{
	size_t bytes = 0, k = 0, nt = proto_store_tree_count(st);

	for (size_t i = 0; i < n && k < LIST_TREES_MAX; i++) {
		const proto_manifest *mf = proto_store_get(st, i);
		const char *rel = proto_store_rel(st, i);
		proto_list_entry *e = &entries[k];
		e->id = mf->id;
		e->size = mf->size;
		e->name = mf->name;
		e->name_len = strlen(mf->name);
		e->extended = 1;
		e->kind = PROTO_LIST_FILE;
		if (rel != NULL && proto_tree_path_valid(rel, strlen(rel))) {
			e->path = rel;
			e->path_len = strlen(rel);
		}
		if ((bytes += 64 + e->name_len + e->path_len) > LIST_BYTES_MAX)
			return k;
		k++;
	}
	for (size_t i = 0; i < nt && k < LIST_TREES_MAX; i++) {
		const proto_tree *t = proto_store_get_tree(st, i);
		proto_list_entry *e = &entries[k++];
		e->id = t->id;
		e->size = t->total_size;
		e->name = t->name ? t->name : "tree";
		e->name_len = strlen(e->name);
		e->extended = 1;
		e->kind = PROTO_LIST_TREE;
		e->nfiles = t->nfiles;
	}
	return k;
}

static void
answer_list(proto_server *srv, proto_conn *c, uint32_t rid)
{
	size_t n = proto_store_count(srv->store);
	size_t nt = proto_store_tree_count(srv->store);
	int trees = (proto_conn_peer_caps(c) & PROTO_CAP_TREES) != 0;
	proto_list_entry *entries;
	proto_msg m;

	if (n > LIST_MAX)
		n = LIST_MAX;
	if ((entries = calloc(n + nt + 1, sizeof(*entries))) == NULL) {
		proto_conn_send_error(c, rid, PROTO_CODE_BUSY,
		    "out of memory; ask again later");
		return;
	}
	if (trees)
		n = list_trees(srv->store, entries, n);
	else
		for (size_t i = 0; i < n; i++) {
			const proto_manifest *mf = proto_store_get(srv->store, i);
			entries[i].id = mf->id;
			entries[i].size = mf->size;
			entries[i].name = mf->name;
			entries[i].name_len = strlen(mf->name);
		}
	proto_msg_init(&m, PROTO_MSG_LIST_REPLY);
	m.rid = rid;
	m.entries = entries;
	m.nentries = n;
	send_answer(c, &m);
	free(entries);
}

/* NULL when c's peer can be told of mf, else why not. */
static const char *
beyond_peer(const proto_conn *c, const proto_manifest *mf)
{
	if (proto_conn_peer_caps(c) & PROTO_CAP_HASHES)
		return NULL;
	if (!proto_manifest_has_layer(mf))
		return "chunk hashes not all held yet";
	if (mf->nchunks > PROTO_INLINE_MAX)
		return "more chunks than a manifest holds: needs the hashes "
		    "capability";
	return NULL;
}

/* A tree's manifest, to a peer that takes one (PROTO_CAP_TREES). */
static void
answer_tree(proto_server *srv, proto_conn *c, const struct request *r)
{
	const proto_tree *t = proto_store_find_tree(srv->store, r->id);
	proto_msg m;

	if (t == NULL && proto__server_gone(srv, c, r->rid, r->id))
		return;
	if (t == NULL || !(proto_conn_peer_caps(c) & PROTO_CAP_TREES)) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_NOT_FOUND,
		    t == NULL ? "no such file" : "a tree: needs the trees "
		    "capability");
		return;
	}
	proto_msg_init(&m, PROTO_MSG_MANIFEST);
	m.rid = r->rid;
	m.tree = (struct proto_tree *)t;
	if (send_answer(c, &m) == 0)
		srv->stats.manifests_out++;
}

static void
answer_manifest(proto_server *srv, proto_conn *c, const struct request *r)
{
	const proto_manifest *mf = proto_store_find(srv->store, r->id);
	proto_manifest rooted;
	const char *why;
	proto_msg m;

	if (mf == NULL) {
		answer_tree(srv, c, r);
		return;
	}
	if ((why = beyond_peer(c, mf)) != NULL) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_NOT_FOUND, why);
		return;
	}
	proto_msg_init(&m, PROTO_MSG_MANIFEST);
	m.rid = r->rid;
	/* Packing a MANIFEST never includes the local path. */
	m.manifest = (proto_manifest *)mf;
	/* Only a peer that can ask for the hashes is sent the root alone
	 * (beyond_peer turned away the rest that would need it). */
	if (!proto_manifest_has_layer(mf) ||
	    ((proto_conn_peer_caps(c) & PROTO_CAP_HASHES) &&
	    mf->nchunks > srv->cfg.inline_chunks)) {
		/* The root in place of the layer: a view, nothing copied. */
		rooted = *mf;
		rooted.chunks = NULL;
		rooted.known = NULL;
		m.manifest = &rooted;
	}
	if (send_answer(c, &m) == 0)
		srv->stats.manifests_out++;
}

/* A run of the chunk layer and its proof, from a file whose layer is
 * whole here. */
static void
answer_hashes(proto_server *srv, proto_conn *c, const struct request *r)
{
	uint8_t hashes[PROTO_HASHES_MAX * PROTO_HASH_LEN];
	uint8_t proof[PROTO_PROOF_MAX * PROTO_HASH_LEN];
	const proto_manifest *mf = proto_store_find(srv->store, r->id);
	proto_msg m;
	int rc;

	if (mf == NULL) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_NOT_FOUND,
		    "no such file");
		return;
	}
	/* Index 0 always lies in the file: this checks the rest. */
	if (proto_run_check(mf->size, r->chunk_size, 0, r->count) != 0 ||
	    r->index % r->count != 0) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_BAD_REQUEST,
		    "not a run of the chunk layer");
		return;
	}
	if (r->index >= proto_chunk_count(mf->size, r->chunk_size)) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_NOT_FOUND,
		    "no such chunk");
		return;
	}
	proto_msg_init(&m, PROTO_MSG_HASHES);
	m.rid = r->rid;
	rc = proto_store_hashes(srv->store, r->id, r->chunk_size, r->index,
	    r->count, r->proof_layers, hashes, &m.nhashes, proof, &m.nproof);
	if (rc != 0) {
		proto_conn_send_error(c, r->rid, rc == PROTO_ERR_INVALID ?
		    PROTO_CODE_NOT_FOUND : PROTO_CODE_INTERNAL,
		    rc == PROTO_ERR_INVALID ? "chunk hashes not held at that "
		    "chunk size" : proto_strerror(rc));
		return;
	}
	m.hashes = hashes;
	m.proof = proof;
	if (proto_conn_send(c, &m) == 0)
		srv->stats.hashes_out++;
}

static void
answer_chunk(proto_server *srv, proto_conn *c, const struct request *r)
{
	const proto_manifest *mf = proto_store_find(srv->store, r->id);
	uint8_t hdr[PROTO_CHUNK_HEADER_MAX];
	uint64_t off;
	size_t len;
	int fd, rc;

	if (mf == NULL) {
		if (!proto__server_gone(srv, c, r->rid, r->id))
			proto_conn_send_error(c, r->rid, PROTO_CODE_NOT_FOUND,
			    "no such file");
		return;
	}
	if (!proto_chunk_size_valid(mf->size, r->chunk_size)) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_BAD_REQUEST,
		    "chunk size not valid for this file");
		return;
	}
	if (r->index >= proto_chunk_count(mf->size, r->chunk_size)) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_NOT_FOUND,
		    "no such chunk");
		return;
	}
	if (!proto_store_holds(srv->store, r->id, r->chunk_size, r->index)) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_NOT_FOUND,
		    "chunk not held");
		return;
	}
	off = r->index * (uint64_t)r->chunk_size;
	len = proto_chunk_len(mf->size, r->chunk_size, r->index);
	/* Said before the file is touched: no failure of the file's. */
	if (proto_msg_chunk_header(r->rid, (uint32_t)len, hdr) -
	    PROTO_FRAME_HEADER + len > proto_conn_peer_max_frame(c)) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_BAD_REQUEST,
		    "the chunk is larger than your maxframe");
		return;
	}
	if ((rc = proto_store_open(srv->store, r->id, &fd)) != 0 ||
	    (rc = proto_store_check(srv->store, r->id, off, len)) != 0 ||
	    (rc = proto_conn_send_chunk_file(c, r->rid, fd, off, len)) != 0) {
		proto__server_say(srv, PROTO_LOG_WARN, "%s: %s",
		    mf->path ? mf->path : mf->name,
		    rc == PROTO_ERR_SYSTEM ? strerror(errno) :
		    rc == PROTO_ERR_MISMATCH ? "not the file its manifest "
		    "describes (changed on disk since it was chunked?); not "
		    "served" : proto_strerror(rc));
		proto_conn_send_error(c, r->rid, PROTO_CODE_INTERNAL,
		    "file unavailable");
		return;
	}
	srv->stats.chunks_out++;
}

/* The peers we know, those known to hold the file asked about first,
 * without the asker itself. */
static void
answer_peers(struct client *cl, const struct request *r)
{
	proto_server *srv = cl->srv;
	proto_peer_entry list[PROTO_PEERS_MAX];
	proto_msg m;

	proto__server_touch_known(srv);
	proto_msg_init(&m, PROTO_MSG_PEERS_REPLY);
	m.rid = r->rid;
	m.peers = list;
	m.npeers = proto_peers_list(&srv->known, list, PROTO_PEERS_MAX,
	    cl->listens ? &cl->listen_at : NULL, r->has_id ? r->id : NULL);
	/* A peer that does not say it takes records gets the old form:
	 * one written before them may want exactly two elements. Nor does
	 * one whose maxframe they would not fit. */
	if (proto_conn_peer_caps(cl->conn) & PROTO_CAP_RECORDS) {
		int rc = proto_conn_send(cl->conn, &m);
		if (rc == 0)
			return;
		if (rc != PROTO_ERR_TOO_BIG) {
			send_answer(cl->conn, &m);
			return;
		}
	}
	for (size_t i = 0; i < m.npeers; i++)
		list[i].record = NULL;
	send_answer(cl->conn, &m);
}

static void
answer_has(proto_server *srv, proto_conn *c, const struct request *r)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_HAS_REPLY);
	m.rid = r->rid;
	m.has = proto_store_find(srv->store, r->id) != NULL ||
	    proto_store_find_tree(srv->store, r->id) != NULL;
	if (m.has || !proto__server_gone(srv, c, r->rid, r->id))
		send_answer(c, &m);
}

/* What the node holds of the file, and a HAVE for each chunk it gets
 * from now on. */
static void
answer_interested(struct client *cl, const struct request *r)
{
	proto_server *srv = cl->srv;
	const proto_manifest *mf = proto_store_find(srv->store, r->id);
	const proto_have *have;
	proto_have whole;
	proto_msg m;
	int rc;

	if (mf == NULL || (mf->nchunks > PROTO_INLINE_MAX &&
	    !(proto_conn_peer_caps(cl->conn) & PROTO_CAP_HASHES))) {
		/* A peer of before the hashes takes no map that long. */
		proto_conn_send_error(cl->conn, r->rid, PROTO_CODE_NOT_FOUND,
		    "no such file");
		return;
	}
	if ((have = proto_store_have(srv->store, r->id)) == NULL &&
	    proto__server_super_map(cl, mf, &whole))
		have = &whole;
	else if (have == NULL) {
		if (proto_have_init(&whole, mf->nchunks) != 0) {
			proto_conn_send_error(cl->conn, r->rid,
			    PROTO_CODE_BUSY, "out of memory; ask again later");
			return;
		}
		proto_have_fill(&whole);
		have = &whole;
	}
	proto_msg_init(&m, PROTO_MSG_HAVE_MAP);
	m.rid = r->rid;
	m.chunk_size = mf->chunk_size;
	m.bits = have->bits;
	m.bits_len = proto_have_bytes(have->n);
	rc = send_answer(cl->conn, &m);
	if (have == &whole)
		proto_have_free(&whole);
	if (rc != 0) {
		proto__server_super_drop(cl);
		return;
	}
	cl->interested = 1;
	memcpy(cl->interest, r->id, PROTO_HASH_LEN);
	proto__server_choke_candidate(cl);
}

static void
answer(struct client *cl, const struct request *r)
{
	proto_server *srv = cl->srv;
	proto_conn *c = cl->conn;

	if (r->cancelled) {
		srv->stats.cancelled++;
		proto_conn_send_error(c, r->rid, PROTO_CODE_CANCELLED,
		    "cancelled");
		return;
	}
	if (r->busy) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_BUSY,
		    "over 64 requests outstanding");
		return;
	}
	switch (r->type) {
	case PROTO_MSG_LIST:
		answer_list(srv, c, r->rid);
		break;
	case PROTO_MSG_GET_MANIFEST:
		answer_manifest(srv, c, r);
		break;
	case PROTO_MSG_GET_CHUNK: {
		uint64_t before = srv->stats.chunks_out;
		/* Asked before our CHOKE reached it, or ignoring it. */
		if (cl->chokes && !cl->unchoked) {
			proto_conn_send_error(c, r->rid, PROTO_CODE_CHOKED,
			    "choked");
			break;
		}
		answer_chunk(srv, c, r);
		if (srv->stats.chunks_out != before)
			proto__server_upload_sent(cl, r->id, r->chunk_size,
			    r->index);
		if (srv->nsuper > 0 && srv->stats.chunks_out != before)
			proto__server_super_sent(cl, r->id, r->chunk_size,
			    r->index);
		break;
	}
	case PROTO_MSG_PEERS:
		answer_peers(cl, r);
		break;
	case PROTO_MSG_HAS:
		answer_has(srv, c, r);
		break;
	case PROTO_MSG_INTERESTED:
		answer_interested(cl, r);
		break;
	case PROTO_MSG_GET_HASHES:
		answer_hashes(srv, c, r);
		break;
	case PROTO_MSG_GET_FILES:
		proto__server_answer_files(srv, c, r);
		break;
	default:
		proto_conn_send_error(c, r->rid, PROTO_CODE_BAD_REQUEST,
		    "unexpected message");
		break;
	}
}

/* Doubles cl's ring (the first time: QUEUE_FIRST entries), its requests
 * kept in order from index 0. 0, or PROTO_ERR_NOMEM (cl unchanged). */
#define QUEUE_FIRST 8
static int
grow(struct client *cl)
{
	unsigned cap = cl->cap ? cl->cap * 2 : QUEUE_FIRST;
	struct request *q;

	if (cap > QUEUE_MAX)
		cap = QUEUE_MAX;
	if ((q = calloc(cap, sizeof(*q))) == NULL)
		return PROTO_ERR_NOMEM;
	for (unsigned i = 0; i < cl->count; i++)
		q[i] = cl->queue[(cl->head + i) % cl->cap];
	free(cl->queue);
	cl->queue = q;
	cl->cap = cap;
	cl->head = 0;
	return 0;
}

/* Answers queued requests while little output waits. */
static void
drain(struct client *cl)
{
	while (cl->count > 0 &&
	    proto_conn_pending_out(cl->conn) < QUEUED_BYTES) {
		struct request r = cl->queue[cl->head];
		cl->head = (cl->head + 1) % cl->cap;
		cl->count--;
		answer(cl, &r);
		proto__server_request_done(&r);
	}
}

static void
cancel(struct client *cl, uint32_t rid)
{
	for (unsigned i = 0; i < cl->count; i++) {
		struct request *r = &cl->queue[(cl->head + i) % cl->cap];
		if (r->rid == rid && !r->cancelled) {
			r->cancelled = 1;
			return;
		}
	}
	/* Answered already, or never asked: nothing to do. */
}

void
proto__server_on_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct client *cl = arg;
	struct request *r;

	proto__server_say(cl->srv, PROTO_LOG_TRACE, "%s: %s rid %u",
	    proto_conn_peer(c), proto_msg_type_name(m->type), m->rid);
	if (m->type == PROTO_MSG_CANCEL) {
		cancel(cl, m->rid);
		return;
	}
	/* Who asks for a file we share fetches it, and soon holds some of
	 * it: worth naming to those who ask for peers of that file. Only
	 * our files, so a peer cannot fill the table with ids. */
	if ((m->type == PROTO_MSG_GET_MANIFEST ||
	    m->type == PROTO_MSG_INTERESTED || m->type == PROTO_MSG_HAS) &&
	    cl->listens && proto_store_find(cl->srv->store, m->id) != NULL)
		(void)proto_peers_holds(&cl->srv->known, &cl->listen_at, m->id);
	/* A HAVE is pushed, never answered (rid 0 is no request): a server
	 * has no use for it. (The connection drops the pushes of types it
	 * does not know.) */
	if ((m->type == PROTO_MSG_HAVE || m->type == PROTO_MSG_CHOKE ||
	    m->type == PROTO_MSG_UNCHOKE) && m->rid == 0) {
		proto__server_say(cl->srv, PROTO_LOG_DEBUG, "%s: ignored a "
		    "pushed %s", proto_conn_peer(c),
		    proto_msg_type_name(m->type));
		return;
	}
	if (m->type == PROTO_MSG_GET_CHUNK)
		proto__server_choke_asked(cl);
	if (cl->count == QUEUE_MAX) {
		/* It ignored BUSY for REQUESTS_MAX requests: not a client
		 * that will ever wait for room. */
		proto__server_say(cl->srv, PROTO_LOG_INFO, "%s: dropped: over "
		    "%u requests outstanding", proto_conn_peer(c), QUEUE_MAX);
		proto_conn_send_error(c, m->rid, PROTO_CODE_BAD_REQUEST,
		    "over 128 requests outstanding");
		/* A guest's connection ends through its owner. */
		if (!cl->guest) {
			proto_conn_close_after_flush(c);
			cl->conn = NULL;
		}
		proto__server_client_free(cl);
		return;
	}
	if (cl->count == cl->cap && grow(cl) != 0) {
		proto_conn_send_error(c, m->rid, PROTO_CODE_BUSY,
		    "out of memory; ask again later");
		return;
	}
	r = &cl->queue[(cl->head + cl->count) % cl->cap];
	memset(r, 0, sizeof(*r));
	r->busy = cl->count >= REQUESTS_MAX;
	r->type = m->type;
	r->rid = m->rid;
	if (m->id != NULL) {
		memcpy(r->id, m->id, PROTO_HASH_LEN);
		r->has_id = 1;
	}
	r->index = m->index;
	r->chunk_size = m->chunk_size;
	r->count = m->count;
	r->proof_layers = m->proof_layers;
	/* A busy one is answered BUSY whatever it asks: its ids unkept. */
	if (m->type == PROTO_MSG_GET_FILES && !r->busy) {
		r->ids_bad = m->ids_bad;
		if (m->nids > 0 && (r->ids = malloc(m->nids *
		    PROTO_HASH_LEN)) == NULL)
			r->busy = 1;
		else if (m->nids > 0) {
			memcpy(r->ids, m->ids, m->nids * PROTO_HASH_LEN);
			r->nids = (unsigned)m->nids;
		}
	}
	cl->count++;
	drain(cl);
}

void
proto__server_on_written(proto_conn *c, void *arg)
{
	(void)c;
	drain(arg);
	proto__server_super_written(arg);
}
