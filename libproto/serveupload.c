/*
 * What each peer got from us, file by file, told to the server's owner
 * once that upload is over (on_upload): so a tool can say "sent NAME to
 * PEER" once per file rather than a line per chunk, and p2p-send --once
 * can tell a whole file reached a peer. An upload is over when its
 * connection ends, as only then do we know the peer stopped asking; a
 * peer that goes on to more files than we keep count of has its oldest
 * told early, so what is kept per peer stays bounded.
 */
#include <stdlib.h>
#include <string.h>

#include "server_private.h"

static void
tell(struct client *cl, struct upload *u, int ended)
{
	proto_server *srv = cl->srv;
	proto_upload out;

	if (srv->cbs.on_upload == NULL || srv->freeing)
		return;
	memset(&out, 0, sizeof(out));
	/* Dropped for what it did, it may have lost its connection first. */
	out.peer = cl->conn != NULL ? proto_conn_peer(cl->conn) : cl->host;
	out.peer_name = cl->conn != NULL ? proto_conn_peer_name(cl->conn) : "";
	out.peer_id = cl->conn != NULL ? proto_conn_peer_id(cl->conn) : NULL;
	out.id = u->id;
	out.name = u->name != NULL ? u->name : "";
	out.size = u->size;
	out.bytes = u->bytes;
	out.chunks = u->chunks;
	out.distinct = u->got.count;
	out.nchunks = u->got.n;
	out.complete = u->got.count == u->got.n;
	out.ended = ended;
	srv->cbs.on_upload(&out, srv->ctx);
}

static void
forget(struct upload *u)
{
	free(u->name);
	proto_have_free(&u->got);
	memset(u, 0, sizeof(*u));
}

/* The oldest upload told and dropped: to make room, or as cl goes. */
static void
evict(struct client *cl, int ended)
{
	tell(cl, &cl->uploads[0], ended);
	forget(&cl->uploads[0]);
	memmove(&cl->uploads[0], &cl->uploads[1],
	    (cl->nuploads - 1) * sizeof(cl->uploads[0]));
	memset(&cl->uploads[cl->nuploads - 1], 0, sizeof(cl->uploads[0]));
	cl->nuploads--;
}

static struct upload *
find_or_start(struct client *cl, const proto_manifest *mf,
    uint32_t chunk_size)
{
	struct upload *u;

	for (unsigned i = 0; i < cl->nuploads; i++)
		if (cl->uploads[i].chunk_size == chunk_size &&
		    memcmp(cl->uploads[i].id, mf->id, PROTO_HASH_LEN) == 0)
			return &cl->uploads[i];
	if (cl->nuploads == PROTO_SERVER_UPLOADS_MAX)
		evict(cl, 0);
	u = &cl->uploads[cl->nuploads];
	memset(u, 0, sizeof(*u));
	if (proto_have_init(&u->got, proto_chunk_count(mf->size,
	    chunk_size)) != 0)
		return NULL;
	/* Copied: the file may leave the store before the upload is told. */
	if ((u->name = strdup(mf->name)) == NULL) {
		proto_have_free(&u->got);
		return NULL;
	}
	memcpy(u->id, mf->id, PROTO_HASH_LEN);
	u->chunk_size = chunk_size;
	u->size = mf->size;
	cl->nuploads++;
	return u;
}

void
proto__server_upload_sent(struct client *cl, const uint8_t *id,
    uint32_t chunk_size, uint64_t index)
{
	const proto_manifest *mf = proto_store_find(cl->srv->store, id);
	struct upload *u;

	/* Out of memory, the upload goes untold: it is only a report. */
	if (mf == NULL || (u = find_or_start(cl, mf, chunk_size)) == NULL)
		return;
	u->chunks++;
	u->bytes += proto_chunk_len(mf->size, chunk_size, index);
	(void)proto_have_set(&u->got, index);
}

void
proto__server_upload_end(struct client *cl)
{
	while (cl->nuploads > 0)
		evict(cl, 1);
}
