/*
 * fetchhashes.c and the fetch's peers after the manifest: a proto_fetch
 * and in-process proto_servers on one event_base, over loopback only. A
 * manifest sent as its root is filled run by run and the file arrives
 * whole; the first chunk comes before the last run; a peer whose run does
 * not hash to the root is dropped before any chunk is asked of it; peers
 * met once the manifest is held are never asked for it again. Each case
 * runs the loop in bounded steps, so none can hang.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "proto.h"
#include "tap.h"

#define CHUNK 16384
#define NCHUNKS 600                     /* two runs: 512, then 88 */
#define FILE_SIZE (NCHUNKS * CHUNK - 50)
#define SPARSE_SIZE (100u << 20)        /* 6400 chunks: 13 runs */
#define WIDE_SIZE ((4ull << 30) + CHUNK)  /* 262145 chunks of 16K */
#define DEADLINE_S 20

static char dir[] = "/tmp/test_fetchhashes.XXXXXX";
static uint8_t content[FILE_SIZE];

struct owner {
	proto_fetch *fx;
	uint8_t *got;
	size_t size;
	int manifests, completes, ended, code, chunks;
	uint64_t runs[16][2];   /* on_hashes: first, count */
	unsigned nruns;
	uint64_t runs_at_first_chunk;
	int stop_at;            /* stop once this many chunks are in */
	char late[2][64];       /* peers added once the manifest is held */
	char log[8192];
};

static void
on_log(int level, const char *text, void *ctx)
{
	struct owner *o = ctx;
	size_t n = strlen(o->log);

	(void)level;
	snprintf(o->log + n, sizeof(o->log) - n, "%s\n", text);
}

static int
add_peer_text(proto_fetch *fx, const char *text)
{
	proto_addr a;

	if (proto_addr_parse(&a, text, strlen(text), 0, PROTO_ADDR_NUMERIC,
	    NULL) != 0)
		exit(2);
	return proto_fetch_add_peer(fx, &a);
}

static int
on_manifest(proto_manifest *mf, void *ctx)
{
	struct owner *o = ctx;

	(void)mf;
	o->manifests++;
	for (int i = 0; i < 2; i++)
		if (o->late[i][0])
			add_peer_text(o->fx, o->late[i]);
	return 0;
}

static void
on_chunk(uint64_t index, const uint8_t *data, size_t len, void *ctx)
{
	struct owner *o = ctx;
	proto_fetch_stats st;

	if (o->chunks++ == 0) {
		proto_fetch_stats_get(o->fx, &st);
		o->runs_at_first_chunk = st.hash_runs;
	}
	if (o->stop_at > 0 && o->chunks == o->stop_at)
		proto_fetch_stop(o->fx);
	if (o->got != NULL && index * CHUNK + len <= o->size)
		memcpy(o->got + index * CHUNK, data, len);
}

static void
on_complete(void *ctx)
{
	struct owner *o = ctx;

	o->completes++;
	proto_fetch_stop(o->fx);
}

static void
on_end(int code, void *ctx)
{
	struct owner *o = ctx;

	o->ended++;
	o->code = code;
}

static void
on_hashes(uint64_t first, uint64_t count, void *ctx)
{
	struct owner *o = ctx;

	if (o->nruns < 16) {
		o->runs[o->nruns][0] = first;
		o->runs[o->nruns][1] = count;
	}
	o->nruns++;
}

static const proto_fetch_cbs cbs = { on_log, on_manifest, on_chunk,
    on_complete, NULL, on_end, on_hashes, NULL };

/* A server on 127.0.0.1 sharing path at 16K, its manifest sent as its
 * root past inline_chunks (0: the default); with forge, its layer altered
 * after the id was made (the root it sends stays right). */
static proto_server *
serve(struct event_base *base, proto_store **st, const char *path,
    unsigned inline_chunks, int forge, char *addr, size_t len)
{
	struct sockaddr_in in;
	proto_server_config cfg;
	proto_manifest *mf = NULL;
	proto_server *srv;
	int fd = open(path, O_RDONLY);

	memset(&cfg, 0, sizeof(cfg));
	cfg.conn.node_name = forge ? "liar" : "seed";
	cfg.inline_chunks = inline_chunks;
	*st = proto_store_new();
	if (fd < 0 || proto_manifest_build_fd(fd, "f", path, CHUNK, &mf) != 0)
		exit(2);
	close(fd);
	if (forge)
		mf->chunks[3 * PROTO_HASH_LEN] ^= 1;
	proto_store_add(*st, mf);
	srv = proto_server_new(base, *st, &cfg, NULL, NULL);
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (srv == NULL || proto_server_listen(srv, (struct sockaddr *)&in,
	    sizeof(in)) != 0)
		exit(2);
	snprintf(addr, len, "127.0.0.1:%u", proto_server_port(srv));
	return srv;
}

static void
fetch_new(struct event_base *base, const uint8_t *id, struct owner *o,
    uint8_t *got, size_t size)
{
	proto_fetch_config cfg;

	memset(o, 0, sizeof(*o));
	o->got = got;
	o->size = size;
	memset(&cfg, 0, sizeof(cfg));
	cfg.id = id;
	cfg.conn.node_name = "fetcher";
	cfg.timeout = 10;
	cfg.chunk_size = CHUNK;
	o->fx = proto_fetch_new(base, &cfg, &cbs, o);
	proto_fetch_more_peers(o->fx, 1);
}

/* Runs the loop until done(o) or the deadline; 1 when done. */
static int
run_until(struct event_base *base, struct owner *o,
    int (*done)(const struct owner *))
{
	time_t end = time(NULL) + DEADLINE_S;

	while (!done(o) && !o->ended && time(NULL) < end) {
		struct timespec ms = { 0, 200000 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ms, NULL);
	}
	if (!done(o))
		diag("not done; log:\n%s", o->log);
	return done(o);
}

static int
completed(const struct owner *o)
{
	return o->completes > 0;
}

static int
enough_chunks(const struct owner *o)
{
	return o->chunks >= o->stop_at;
}

static int
dropped_one(const struct owner *o)
{
	proto_fetch_stats st;

	proto_fetch_stats_get(o->fx, &st);
	return st.peers_dropped > 0;
}

static void
write_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		exit(2);
	close(fd);
}

static const uint8_t *
id_of(const proto_store *st)
{
	return proto_store_get(st, 0)->id;
}

static void
test_on_demand(struct event_base *base, const char *path)
{
	static uint8_t got[FILE_SIZE];
	proto_server_stats ss;
	proto_fetch_stats fs;
	proto_store *st;
	struct owner o;
	char addr[64];
	proto_server *srv = serve(base, &st, path, 1, 0, addr, sizeof(addr));

	fetch_new(base, id_of(st), &o, got, FILE_SIZE);
	add_peer_text(o.fx, addr);
	ok(run_until(base, &o, completed), "on demand: complete");
	is_mem(got, content, FILE_SIZE, "on demand: the bytes are the file's");
	proto_fetch_stats_get(o.fx, &fs);
	proto_server_stats_get(srv, &ss);
	ok(fs.manifests == 1 && fs.hash_runs == 2 && ss.hashes_out == 2 &&
	    ss.manifests_out == 1, "on demand: 1 manifest, 2 runs asked and "
	    "taken (%llu, %llu)", (unsigned long long)fs.hash_runs,
	    (unsigned long long)ss.hashes_out);
	ok(o.nruns == 2 && o.runs[0][0] == 0 && o.runs[0][1] == 512 &&
	    o.runs[1][0] == 512 && o.runs[1][1] == 88,
	    "on_hashes: (0, 512) then (512, 88), the padding not counted");
	ok(proto_manifest_has_layer(proto_fetch_manifest(o.fx)),
	    "the fetch's manifest is whole now");
	proto_fetch_free(o.fx);
	proto_server_free(srv);
	proto_store_free(st);

	/* The same server with the default limit: the layer inline. */
	srv = serve(base, &st, path, 0, 0, addr, sizeof(addr));
	fetch_new(base, id_of(st), &o, got, FILE_SIZE);
	add_peer_text(o.fx, addr);
	ok(run_until(base, &o, completed), "inline: complete");
	proto_fetch_stats_get(o.fx, &fs);
	ok(fs.hash_runs == 0 && o.nruns == 0, "inline: no run asked");
	proto_fetch_free(o.fx);
	proto_server_free(srv);
	proto_store_free(st);
}

/* 13 runs of hashes; the first chunk comes after two, and no chunk is
 * asked for before its run is in (its answer could not be checked, and
 * the peer would be dropped for it). */
static void
test_first_chunk_early(struct event_base *base, const char *sparse)
{
	proto_fetch_stats fs;
	proto_store *st;
	struct owner o;
	char addr[64];
	proto_server *srv = serve(base, &st, sparse, 1, 0, addr, sizeof(addr));

	fetch_new(base, id_of(st), &o, NULL, SPARSE_SIZE);
	o.stop_at = 1000;
	add_peer_text(o.fx, addr);
	ok(run_until(base, &o, enough_chunks), "sparse: 1000 chunks");
	ok(o.runs_at_first_chunk >= 1 && o.runs_at_first_chunk < 13,
	    "the first chunk came with %llu of 13 runs held, not the layer",
	    (unsigned long long)o.runs_at_first_chunk);
	proto_fetch_stats_get(o.fx, &fs);
	ok(fs.peers_dropped == 0 && strstr(o.log, "verification") == NULL,
	    "no chunk asked for before its hash: none failed its check");
	proto_fetch_free(o.fx);
	proto_server_free(srv);
	proto_store_free(st);
}

static void
test_forged_run(struct event_base *base, const char *path)
{
	static uint8_t got[FILE_SIZE];
	proto_server_stats ss;
	proto_store *lst, *hst;
	struct owner o;
	char laddr[64], haddr[64];
	proto_server *liar = serve(base, &lst, path, 1, 1, laddr,
	    sizeof(laddr));
	proto_server *honest = serve(base, &hst, path, 1, 0, haddr,
	    sizeof(haddr));

	fetch_new(base, id_of(hst), &o, got, FILE_SIZE);
	add_peer_text(o.fx, laddr);
	ok(run_until(base, &o, dropped_one), "a forged run: its peer dropped");
	ok(strstr(o.log, "do not match the root") != NULL,
	    "... said: the hashes do not match the root");
	proto_server_stats_get(liar, &ss);
	ok(ss.chunks_out == 0 && o.chunks == 0,
	    "... and no chunk was asked of anyone before its hash checked");
	add_peer_text(o.fx, haddr);
	ok(run_until(base, &o, completed), "then an honest peer: complete");
	is_mem(got, content, FILE_SIZE, "... the bytes are the file's");
	proto_fetch_free(o.fx);
	proto_server_free(liar);
	proto_server_free(honest);
	proto_store_free(lst);
	proto_store_free(hst);
}

/* Asked for 16K chunks of a file that has more than PROTO_INLINE_MAX of
 * them, the fetch takes 32K, which peers of before the hashes take too;
 * its runs come from a tree of the seed's 16K layer. */
static void
test_own_size_coarser(struct event_base *base, const char *wide)
{
	const proto_manifest *mf;
	proto_store *st;
	struct owner o;
	char addr[64];
	proto_server *srv = serve(base, &st, wide, 0, 0, addr, sizeof(addr));

	fetch_new(base, id_of(st), &o, NULL, 0);
	o.stop_at = 1;
	add_peer_text(o.fx, addr);
	ok(run_until(base, &o, enough_chunks), "wide: a first chunk");
	mf = proto_fetch_manifest(o.fx);
	ok(mf != NULL && mf->chunk_size == 32768 && mf->nchunks == 131073,
	    "asked for 16K of 262145 chunks: 32K, 131073 chunks");
	proto_fetch_free(o.fx);
	proto_server_free(srv);
	proto_store_free(st);
}

/* A peer met once the manifest is held is asked what it holds, and
 * serves chunks, but is never asked for the manifest. */
static void
test_no_refetch(struct event_base *base, const char *path)
{
	static uint8_t got[FILE_SIZE];
	proto_server_stats s[3];
	proto_store *st[3];
	proto_server *srv[3];
	char addr[3][64];
	struct owner o;

	for (int i = 0; i < 3; i++)
		srv[i] = serve(base, &st[i], path, 0, 0, addr[i],
		    sizeof(addr[i]));
	fetch_new(base, id_of(st[0]), &o, got, FILE_SIZE);
	snprintf(o.late[0], sizeof(o.late[0]), "%s", addr[1]);
	snprintf(o.late[1], sizeof(o.late[1]), "%s", addr[2]);
	add_peer_text(o.fx, addr[0]);
	ok(run_until(base, &o, completed), "three seeds: complete");
	is_mem(got, content, FILE_SIZE, "three seeds: the bytes are the file's");
	for (int i = 0; i < 3; i++)
		proto_server_stats_get(srv[i], &s[i]);
	is_int(s[0].manifests_out + s[1].manifests_out + s[2].manifests_out, 1,
	    "three seeds: one manifest sent in all");
	ok(s[1].chunks_out + s[2].chunks_out > 0, "the two met after it served "
	    "chunks (%llu, %llu)", (unsigned long long)s[1].chunks_out,
	    (unsigned long long)s[2].chunks_out);
	proto_fetch_free(o.fx);
	for (int i = 0; i < 3; i++) {
		proto_server_free(srv[i]);
		proto_store_free(st[i]);
	}
}

int
main(void)
{
	struct event_base *base;
	char path[64], sparse[64], wide[64];
	int fd;

	alarm(180);
	if (mkdtemp(dir) == NULL || (base = event_base_new()) == NULL)
		return 1;
	srandom(1);
	for (size_t i = 0; i < FILE_SIZE; i++)
		content[i] = (uint8_t)(i * 7 + i / 251);
	snprintf(path, sizeof(path), "%s/f", dir);
	snprintf(sparse, sizeof(sparse), "%s/sparse", dir);
	write_file(path, content, FILE_SIZE);
	if ((fd = open(sparse, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0 ||
	    ftruncate(fd, SPARSE_SIZE) != 0)
		return 1;
	close(fd);
	snprintf(wide, sizeof(wide), "%s/wide", dir);
	if ((fd = open(wide, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0 ||
	    ftruncate(fd, (off_t)WIDE_SIZE) != 0)
		return 1;
	close(fd);

	test_on_demand(base, path);
	test_first_chunk_early(base, sparse);
	test_forged_run(base, path);
	test_no_refetch(base, path);
	test_own_size_coarser(base, wide);

	proto_base_free(base);
	unlink(path);
	unlink(sparse);
	unlink(wide);
	rmdir(dir);
	return done_testing();
}
