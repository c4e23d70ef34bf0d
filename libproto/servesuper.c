/*
 * Super-seeding (BitTorrent's BEP 16, in this protocol's words): a node
 * that holds a file whole and has several fetchers of it that share
 * (they listen) answers their INTERESTED with a sparse HAVE_MAP, a few
 * chunks each, the ones it has sent least, and reveals one more (HAVE)
 * once a fetcher waits for nothing from it (no request queued, its
 * output drained): as soon as a chunk it sent is out, or every
 * SUPER_TICK_US while the fetcher asks nothing (it may have had what it
 * was shown from others). Each chunk thus leaves the seed about once,
 * and the fetchers pass it on among themselves; the seed goes on with the
 * chunks it sent least. Once fewer than SUPER_MIN fetchers remain, it
 * reveals the rest to each and is an ordinary seed again. What a node says it holds only grows,
 * as section 4 of PROTOCOL.md requires: nothing on the wire is new.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "server_private.h"

#define SUPER_MIN 3           /* sharing fetchers of a file, at least */
#define SUPER_MAX_CHUNKS 4096 /* larger files: every chunk at once */
#define SUPER_FIRST 1         /* chunks revealed with the map */
#define SUPER_IDLE_OUT 16384  /* bytes waiting for it: it asks nothing */
#define SUPER_TICK_US 250000  /* a fetcher that asks nothing: one more */

struct super_file {
	uint8_t id[PROTO_HASH_LEN];
	uint64_t n;
	uint32_t *sent;     /* times each chunk went out */
	uint32_t *shown;    /* fetchers it was revealed to */
	int over;           /* too few fetchers left: revealed to all */
};

/* The sharing fetchers of id, that the node could super-seed: they
 * listen, and so pass chunks on, and are subscribed to id or to nothing
 * yet (fetchers that come at once ask for the manifest first). */
static unsigned
sharing_fetchers(const proto_server *srv, const uint8_t *id)
{
	unsigned n = 0;

	for (const struct client *cl = srv->clients; cl; cl = cl->next)
		n += cl->listens && !cl->handshaking && (!cl->interested ||
		    memcmp(cl->interest, id, PROTO_HASH_LEN) == 0);
	return n;
}

static struct super_file *
find_file(proto_server *srv, const uint8_t *id)
{
	for (unsigned i = 0; i < srv->nsuper; i++)
		if (memcmp(srv->super[i].id, id, PROTO_HASH_LEN) == 0)
			return &srv->super[i];
	return NULL;
}

static struct super_file *
add_file(proto_server *srv, const uint8_t *id, uint64_t n)
{
	struct super_file *sf, *grown;

	if ((sf = find_file(srv, id)) != NULL)
		return sf->n == n ? sf : NULL;
	grown = realloc(srv->super, (srv->nsuper + 1) * sizeof(*grown));
	if (grown == NULL)
		return NULL;
	srv->super = grown;
	sf = &srv->super[srv->nsuper];
	memset(sf, 0, sizeof(*sf));
	memcpy(sf->id, id, PROTO_HASH_LEN);
	sf->n = n;
	sf->sent = calloc(n, sizeof(*sf->sent));
	sf->shown = calloc(n, sizeof(*sf->shown));
	if (sf->sent == NULL || sf->shown == NULL) {
		free(sf->sent);
		free(sf->shown);
		return NULL;
	}
	srv->nsuper++;
	return sf;
}

static void tick(evutil_socket_t fd, short what, void *arg);

/* The chunk to reveal to cl next: of those not revealed to it, the one
 * sent least, then revealed to fewest, ties from a random place; -1 when
 * none is left. */
static int64_t
next_chunk(const struct super_file *sf, const struct client *cl)
{
	uint64_t start = (uint64_t)random() % sf->n;
	int64_t best = -1;

	for (uint64_t k = 0; k < sf->n; k++) {
		uint64_t i = (start + k) % sf->n;
		if (proto_have_test(&cl->shown, i))
			continue;
		if (best < 0 || sf->sent[i] < sf->sent[best] ||
		    (sf->sent[i] == sf->sent[best] &&
		    sf->shown[i] < sf->shown[best]))
			best = (int64_t)i;
	}
	return best;
}

/* Reveals chunk i to cl: in its map (push 0) or by a HAVE. */
static void
reveal(struct client *cl, struct super_file *sf, uint64_t i, int push)
{
	proto_msg m;

	proto_have_set(&cl->shown, i);
	sf->shown[i]++;
	if (!push)
		return;
	proto_msg_init(&m, PROTO_MSG_HAVE);
	m.id = sf->id;
	m.index = i;
	proto_conn_send(cl->conn, &m);
}

/* cl sees the whole file from now on: a HAVE for each chunk not yet
 * revealed to it. */
static void
reveal_all(struct client *cl, struct super_file *sf)
{
	for (uint64_t i = 0; i < sf->n; i++)
		if (!proto_have_test(&cl->shown, i))
			reveal(cl, sf, i, 1);
	proto_have_free(&cl->shown);
	cl->super = 0;
}

int
proto__server_super_map(struct client *cl, const proto_manifest *mf,
    proto_have *out)
{
	proto_server *srv = cl->srv;
	struct super_file *sf;
	struct timeval t = { 0, SUPER_TICK_US };

	if (cl->super)
		proto__server_super_drop(cl);
	if (!cl->listens || mf->nchunks > SUPER_MAX_CHUNKS ||
	    mf->nchunks < 2 || proto_store_have(srv->store, mf->id) != NULL ||
	    sharing_fetchers(srv, mf->id) < SUPER_MIN)
		return 0;
	if ((sf = add_file(srv, mf->id, mf->nchunks)) == NULL || sf->over)
		return 0;
	if (srv->super_ev == NULL &&
	    ((srv->super_ev = event_new(srv->base, -1, EV_PERSIST, tick,
	    srv)) == NULL || event_add(srv->super_ev, &t) != 0))
		return 0;
	if (proto_have_init(&cl->shown, sf->n) != 0 ||
	    proto_have_init(out, sf->n) != 0) {
		proto_have_free(&cl->shown);
		return 0;
	}
	cl->super = 1;
	for (int k = 0; k < SUPER_FIRST; k++) {
		int64_t i = next_chunk(sf, cl);
		if (i < 0)
			break;
		reveal(cl, sf, (uint64_t)i, 0);
		proto_have_set(out, (uint64_t)i);
	}
	cl->super_asked = 1;
	return 1;
}

void
proto__server_super_sent(struct client *cl, const uint8_t *id,
    uint32_t chunk_size, uint64_t index)
{
	proto_server *srv = cl->srv;
	struct super_file *sf = find_file(srv, id);
	const proto_manifest *mf = proto_store_find(srv->store, id);
	uint64_t first, last;

	if (sf == NULL || sf->over || mf == NULL)
		return;
	/* The store's chunks the one asked covers (its size may differ). */
	first = index * (uint64_t)chunk_size / mf->chunk_size;
	last = (index + 1) * (uint64_t)chunk_size;
	last = (last < mf->size ? last : mf->size);
	last = last > 0 ? (last - 1) / mf->chunk_size : 0;
	for (uint64_t i = first; i <= last && i < sf->n; i++)
		sf->sent[i]++;
	cl->super_asked = 1;
	cl->super_idle = 0;
}

/* 1 when cl has nothing of ours to wait for: no request queued, little
 * output waiting. */
static int
idle(const struct client *cl)
{
	return cl->count == 0 &&
	    proto_conn_pending_out(cl->conn) < SUPER_IDLE_OUT;
}

/* Shows cl more chunks, when it is super-seeded and idle: one after a
 * chunk of ours went out to it; from the clock, twice as many each tick
 * it stays idle, since it may hold the chunks shown already (the node
 * cannot tell) and must not wait long for the one it lacks. */
static void
show_next(struct client *cl, int ticked)
{
	struct super_file *sf;
	unsigned n = 1;
	int64_t i;

	if (!cl->super || !idle(cl) ||
	    (sf = find_file(cl->srv, cl->interest)) == NULL || sf->over)
		return;
	if (ticked) {
		n = 1u << (cl->super_idle < 12 ? cl->super_idle : 12);
		cl->super_idle++;
	}
	while (n-- > 0 && cl->super && (i = next_chunk(sf, cl)) >= 0)
		reveal(cl, sf, (uint64_t)i, 1);
	cl->super_asked = 0;
}

void
proto__server_super_written(struct client *cl)
{
	if (cl->super && cl->super_asked)
		show_next(cl, 0);
}

/* Each tick: a fetcher that waits for nothing from us is shown one more
 * chunk (it may have had the ones shown from others); with fewer
 * sharing fetchers than SUPER_MIN left, the rest is revealed. */
static void
tick(evutil_socket_t fd, short what, void *arg)
{
	proto_server *srv = arg;

	(void)fd;
	(void)what;
	for (unsigned k = 0; k < srv->nsuper; k++) {
		struct super_file *sf = &srv->super[k];
		if (sf->over)
			continue;
		if (sharing_fetchers(srv, sf->id) < SUPER_MIN) {
			sf->over = 1;
			for (struct client *cl = srv->clients; cl; cl = cl->next)
				if (cl->super && memcmp(cl->interest, sf->id,
				    PROTO_HASH_LEN) == 0)
					reveal_all(cl, sf);
			continue;
		}
		for (struct client *cl = srv->clients; cl; cl = cl->next)
			if (cl->super && memcmp(cl->interest, sf->id,
			    PROTO_HASH_LEN) == 0)
				show_next(cl, 1);
	}
}

void
proto__server_super_drop(struct client *cl)
{
	proto_have_free(&cl->shown);
	cl->super = 0;
}

void
proto__server_super_free(proto_server *srv)
{
	for (unsigned i = 0; i < srv->nsuper; i++) {
		free(srv->super[i].sent);
		free(srv->super[i].shown);
	}
	free(srv->super);
	srv->super = NULL;
	srv->nsuper = 0;
	if (srv->super_ev != NULL)
		event_free(srv->super_ev);
	srv->super_ev = NULL;
}
