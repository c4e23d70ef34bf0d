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
 * as section 4 of PROTOCOL.md requires.
 *
 * A fetcher on a duplex connection is also watched, as BEP 16's seed
 * watches its peers' HAVEs: the node, as the guest of that connection,
 * asks it INTERESTED in the file, and so hears its HAVE_MAP and a HAVE for
 * each chunk it gets, from us or from others. Such a fetcher is shown a
 * new chunk once it lacks fewer than SUPER_PENDING of those shown to it,
 * and only a chunk that no watched fetcher here holds or was shown: the
 * seed sends first copies (and again those whose holders all left), the
 * fetchers all the others. One that has said nothing new for
 * SUPER_STUCK_S, and waits for nothing from us, is shown the chunks
 * fewest hold that it lacks, more each time, as it may have no other
 * source. Fetchers not watched (no duplex, or a guest there already) are
 * shown chunks as before, by what the seed has sent least.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "server_private.h"

#define SUPER_MIN 3           /* sharing fetchers of a file, at least */
#define SUPER_MAX_CHUNKS 4096 /* larger files: every chunk at once */
#define SUPER_FIRST 1         /* chunks revealed with the map */
#define SUPER_IDLE_OUT 16384  /* bytes waiting for it: it asks nothing */
#define SUPER_TICK_US 250000  /* a fetcher that asks nothing: one more */
#define SUPER_STUCK_S 1.0     /* a watched fetcher with no news: stuck */
#define SUPER_PENDING 2       /* first copies shown to a watched fetcher
                               * at once */
#define WATCH_RID 1           /* our one request on a watched connection */

struct super_file {
	uint8_t id[PROTO_HASH_LEN];
	uint64_t n;
	uint32_t chunk_size;
	uint32_t *sent;     /* times each chunk went out */
	uint32_t *shown;    /* fetchers it was revealed to */
	uint32_t *held;     /* watched fetchers that said they hold it */
	uint32_t *infl;     /* watched fetchers sent it, not yet holding it */
	int over;           /* too few fetchers left: revealed to all */
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

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
add_file(proto_server *srv, const uint8_t *id, uint64_t n,
    uint32_t chunk_size)
{
	struct super_file *sf, *grown;

	if ((sf = find_file(srv, id)) != NULL)
		return sf->n == n && sf->chunk_size == chunk_size ? sf : NULL;
	grown = realloc(srv->super, (srv->nsuper + 1) * sizeof(*grown));
	if (grown == NULL)
		return NULL;
	srv->super = grown;
	sf = &srv->super[srv->nsuper];
	memset(sf, 0, sizeof(*sf));
	memcpy(sf->id, id, PROTO_HASH_LEN);
	sf->n = n;
	sf->chunk_size = chunk_size;
	sf->sent = calloc(n, sizeof(*sf->sent));
	sf->shown = calloc(n, sizeof(*sf->shown));
	sf->held = calloc(n, sizeof(*sf->held));
	sf->infl = calloc(n, sizeof(*sf->infl));
	if (sf->sent == NULL || sf->shown == NULL || sf->held == NULL ||
	    sf->infl == NULL) {
		free(sf->sent);
		free(sf->shown);
		free(sf->held);
		free(sf->infl);
		return NULL;
	}
	srv->nsuper++;
	return sf;
}

static void tick(evutil_socket_t fd, short what, void *arg);
static void unwatch(struct client *cl);

/* The watched fetchers connected now that hold chunk i or were sent it:
 * 0 when no fetcher here can pass it on, as none has it or is about to,
 * whether it never left the seed or those who had it are gone. */
static uint32_t
claimed(const struct super_file *sf, uint64_t i)
{
	return sf->held[i] + sf->infl[i];
}

/* 1 when chunk i is better to show than chunk j: fewer claim it, then
 * the seed sent it fewer times, then it was shown to fewer. */
static int
better(const struct super_file *sf, uint64_t i, uint64_t j)
{
	if (claimed(sf, i) != claimed(sf, j))
		return claimed(sf, i) < claimed(sf, j);
	if (sf->sent[i] != sf->sent[j])
		return sf->sent[i] < sf->sent[j];
	return sf->shown[i] < sf->shown[j];
}

/* The chunk to reveal to cl next: of those not revealed to it (nor held
 * by it, when watched), the best (better()), ties from a random place;
 * -1 when none is left. */
static int64_t
next_chunk(const struct super_file *sf, const struct client *cl)
{
	uint64_t start = (uint64_t)random() % sf->n;
	int64_t best = -1;

	for (uint64_t k = 0; k < sf->n; k++) {
		uint64_t i = (start + k) % sf->n;
		if (proto_have_test(&cl->shown, i) ||
		    (cl->watch != NULL && proto_have_test(&cl->holds, i)))
			continue;
		if (best < 0 || better(sf, i, (uint64_t)best))
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
	if (cl->watch != NULL && !proto_have_test(&cl->holds, i))
		cl->pending++;
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
	unwatch(cl);
	proto_have_free(&cl->shown);
	cl->super = 0;
}

/* What cl held leaves the swarm's count with it. */
static void
forget(struct client *cl)
{
	struct super_file *sf = find_file(cl->srv, cl->interest);

	if (sf != NULL && sf->n == cl->holds.n)
		for (uint64_t i = 0; i < sf->n; i++) {
			if (proto_have_test(&cl->holds, i) && sf->held[i] > 0)
				sf->held[i]--;
			else if (proto_have_test(&cl->sent_to, i) &&
			    sf->infl[i] > 0)
				sf->infl[i]--;
		}
	proto_have_free(&cl->holds);
	proto_have_free(&cl->sent_to);
	cl->watch = NULL;
	cl->watch_mapped = 0;
	cl->pending = 0;
}

static void
unwatch(struct client *cl)
{
	if (cl->watch == NULL)
		return;
	proto_conn_detach(cl->watch, 0);
	forget(cl);
}

/* cl said it holds chunk i (in its map, or by a HAVE). */
static void
note_held(struct client *cl, struct super_file *sf, uint64_t i)
{
	if (!proto_have_set(&cl->holds, i))
		return;
	sf->held[i]++;
	if (proto_have_test(&cl->sent_to, i) && sf->infl[i] > 0)
		sf->infl[i]--;
	if (proto_have_test(&cl->shown, i) && cl->pending > 0)
		cl->pending--;
}

/* A watched fetcher that lacks fewer than SUPER_PENDING of the chunks
 * shown to it is shown chunks whose first copy has not left the seed
 * yet, while any is left: once every chunk is out, the fetchers have
 * them from each other. Two at a time, so that one is on its way while
 * the other is asked for. */
static void
show_first_copy(struct client *cl, struct super_file *sf)
{
	int64_t i;

	if (!cl->watch_mapped)
		return;
	while (cl->pending < SUPER_PENDING && (i = next_chunk(sf, cl)) >= 0 &&
	    claimed(sf, (uint64_t)i) == 0)
		reveal(cl, sf, (uint64_t)i, 1);
}

/* The map the watched fetcher answered with: what it holds already. */
static void
take_map(struct client *cl, struct super_file *sf, const proto_conn *c,
    const proto_msg *m)
{
	proto_have map;

	if (m->chunk_size != sf->chunk_size ||
	    proto_have_init(&map, sf->n) != 0)
		goto unwatched;
	if (proto_have_load(&map, m->bits, m->bits_len) != 0) {
		proto_have_free(&map);
		goto unwatched;
	}
	for (uint64_t i = 0; i < sf->n; i++)
		if (proto_have_test(&map, i))
			note_held(cl, sf, i);
	proto_have_free(&map);
	cl->watch_mapped = 1;
	proto__server_say(cl->srv, PROTO_LOG_DEBUG, "%s: holds %llu of %llu "
	    "chunks; it tells us of each it gets", proto_conn_peer(c),
	    (unsigned long long)cl->holds.count, (unsigned long long)sf->n);
	show_first_copy(cl, sf);
	return;
unwatched:
	/* Chunked otherwise, or a malformed map: shown as the unwatched. */
	unwatch(cl);
}

/* What arrives on a watched fetcher's connection for us, its guest: the
 * answer to our INTERESTED and its HAVEs. An ERROR (it does not share
 * the file) ends the watch; the rest (its CHOKE, say) is no concern of a
 * node that asks it for nothing more. */
static void
watch_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct client *cl = arg;
	struct super_file *sf;

	if (!cl->super || (sf = find_file(cl->srv, cl->interest)) == NULL ||
	    sf->over || sf->n != cl->holds.n)
		return;
	if (m->type == PROTO_MSG_HAVE_MAP && m->rid == WATCH_RID)
		take_map(cl, sf, c, m);
	else if (m->type == PROTO_MSG_HAVE && m->rid == 0 && m->id != NULL &&
	    memcmp(m->id, sf->id, PROTO_HASH_LEN) == 0 && m->index < sf->n) {
		note_held(cl, sf, m->index);
		cl->news_at = now_s();
		cl->super_idle = 0;
		show_first_copy(cl, sf);
	} else if (m->type == PROTO_MSG_ERROR && m->rid == WATCH_RID)
		unwatch(cl);
}

/* The connection ended: it is no longer ours to let go of. */
static void
watch_close(proto_conn *c, int err, void *arg)
{
	(void)c;
	(void)err;
	forget(arg);
}

static const proto_conn_cbs watch_cbs = {
	.on_msg = watch_msg,
	.on_close = watch_close,
};

/* Watches cl, a fetcher that super-seeding starts for: subscribes to what
 * it holds, asking as the guest of its connection. Not possible (it did
 * not connect with requests both ways, or someone asks there already):
 * cl is shown chunks as before. */
static void
watch(struct client *cl, const struct super_file *sf)
{
	proto_msg m;

	if (cl->guest || !proto_conn_duplex(cl->conn))
		return;
	if (proto_have_init(&cl->holds, sf->n) != 0 ||
	    proto_have_init(&cl->sent_to, sf->n) != 0 ||
	    proto_conn_attach(cl->conn, &watch_cbs, cl) != 0) {
		proto_have_free(&cl->holds);
		proto_have_free(&cl->sent_to);
		return;
	}
	cl->watch = cl->conn;
	cl->news_at = now_s();
	proto__server_say(cl->srv, PROTO_LOG_DEBUG, "%s: super-seeded, and "
	    "asked what it holds", proto_conn_peer(cl->conn));
	proto_msg_init(&m, PROTO_MSG_INTERESTED);
	m.rid = WATCH_RID;
	m.id = sf->id;
	if (proto_conn_send(cl->conn, &m) != 0)
		unwatch(cl);
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
	if ((sf = add_file(srv, mf->id, mf->nchunks, mf->chunk_size)) == NULL ||
	    sf->over)
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
	watch(cl, sf);
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
	for (uint64_t i = first; i <= last && i < sf->n; i++) {
		sf->sent[i]++;
		if (cl->watch != NULL && !proto_have_test(&cl->holds, i) &&
		    proto_have_set(&cl->sent_to, i))
			sf->infl[i]++;
	}
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
 * cannot tell) and must not wait long for the one it lacks. A watched
 * one, whose HAVEs say what it holds, only once it is stuck: nothing
 * new from it for SUPER_STUCK_S, then twice as many each time. */
static void
show_next(struct client *cl, int ticked)
{
	struct super_file *sf;
	unsigned n = 1;
	int64_t i;

	if (!cl->super || !idle(cl) ||
	    (sf = find_file(cl->srv, cl->interest)) == NULL || sf->over)
		return;
	if (cl->watch != NULL) {
		/* Its HAVEs say when it needs more, and the clock when a
		 * chunk it lacks has no other source here now (those who
		 * had it left) or it is stuck. */
		double now = now_s();
		if (ticked)
			show_first_copy(cl, sf);
		if (!ticked || now - cl->news_at < SUPER_STUCK_S ||
		    cl->holds.count >= sf->n)
			return;
		cl->news_at = now;
	}
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
	unwatch(cl);
	proto_have_free(&cl->shown);
	cl->super = 0;
}

void
proto__server_super_free(proto_server *srv)
{
	for (unsigned i = 0; i < srv->nsuper; i++) {
		free(srv->super[i].sent);
		free(srv->super[i].shown);
		free(srv->super[i].held);
		free(srv->super[i].infl);
	}
	free(srv->super);
	srv->super = NULL;
	srv->nsuper = 0;
	if (srv->super_ev != NULL)
		event_free(srv->super_ev);
	srv->super_ev = NULL;
}
