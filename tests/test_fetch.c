/*
 * fetch.c and fetchpeer.c: a proto_fetch and in-process proto_servers on
 * one event_base, over loopback only. Each case runs the loop in bounded
 * steps until the fetch ends or a deadline passes, so none can hang.
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
#define FILE_SIZE (5 * CHUNK - 100)
#define DEADLINE_S 10

static char dir[] = "/tmp/test_fetch.XXXXXX";
/* The chunk size the next fetch asks in; 0: CHUNK, the seeds' own. */
static size_t fetch_cs;
static uint8_t content[FILE_SIZE];

/* What the fetch told its owner. */
struct owner {
	proto_fetch *fx;
	uint8_t got[FILE_SIZE];
	unsigned chunk_calls[8];
	int manifests, completes, ended, code;
	size_t cs;              /* the chunk size asked for; 0: CHUNK */
	size_t listed;
	char list_peer[64];     /* proto_fetch_list_peer during on_list */
	char log[4096];
};

static void
on_log(int level, const char *text, void *ctx)
{
	struct owner *o = ctx;
	size_t n = strlen(o->log);

	(void)level;
	snprintf(o->log + n, sizeof(o->log) - n, "%s\n", text);
}

/* text parsed as the tools parse what a user typed, then given to fx. */
static int
add_peer_text(proto_fetch *fx, const char *text)
{
	proto_addr a;

	if (proto_addr_parse(&a, text, strlen(text), 0, PROTO_ADDR_NUMERIC,
	    NULL) != 0) {
		diag("bad test address '%s'", text);
		exit(2);
	}
	return proto_fetch_add_peer(fx, &a);
}

static int
on_manifest(proto_manifest *mf, void *ctx)
{
	struct owner *o = ctx;

	(void)mf;
	o->manifests++;
	return 0;
}

static void
on_chunk(uint64_t index, const uint8_t *data, size_t len, void *ctx)
{
	struct owner *o = ctx;

	size_t cs = o->cs ? o->cs : CHUNK;

	if (index < 8)
		o->chunk_calls[index]++;
	if (index * cs + len <= FILE_SIZE)
		memcpy(o->got + index * cs, data, len);
}

static void
on_complete(void *ctx)
{
	struct owner *o = ctx;

	o->completes++;
	proto_fetch_stop(o->fx);
}

static void
on_list(const proto_list_entry *e, size_t n, void *ctx)
{
	struct owner *o = ctx;

	(void)e;
	o->listed = n;
	snprintf(o->list_peer, sizeof(o->list_peer), "%s",
	    proto_fetch_list_peer(o->fx) ? proto_fetch_list_peer(o->fx) :
	    "(null)");
}

static void
on_end(int code, void *ctx)
{
	struct owner *o = ctx;

	o->ended++;
	o->code = code;
}

static const proto_fetch_cbs cbs = { on_log, on_manifest, on_chunk,
    on_complete, on_list, on_end, NULL, NULL };

/* A server on 127.0.0.1, any port, sharing path when not NULL. */
static proto_server *
serve(struct event_base *base, proto_store **st, const char *path,
    proto_manifest **mfp)
{
	struct sockaddr_in in;
	proto_server_config cfg;
	proto_server *srv;

	memset(&cfg, 0, sizeof(cfg));
	cfg.conn.node_name = "seed";
	*st = proto_store_new();
	if (path != NULL) {
		int fd = open(path, O_RDONLY);
		proto_manifest *mf = NULL;
		proto_manifest_build_fd(fd, "f", path, CHUNK, &mf);
		close(fd);
		if (mfp != NULL)
			*mfp = mf;
		proto_store_add(*st, mf);
	}
	srv = proto_server_new(base, *st, &cfg, NULL, NULL);
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (srv == NULL || proto_server_listen(srv, (struct sockaddr *)&in,
	    sizeof(in)) != 0)
		diag("cannot serve on 127.0.0.1");
	return srv;
}

static void
addr_of(const proto_server *srv, const char *host, char *out, size_t len)
{
	snprintf(out, len, "%s:%u", host, proto_server_port(srv));
}

static proto_fetch *
fetch_new(struct event_base *base, const uint8_t *id, int list,
    proto_node *self, struct owner *o)
{
	proto_fetch_config cfg;

	memset(o, 0, sizeof(*o));
	o->cs = fetch_cs;
	memset(&cfg, 0, sizeof(cfg));
	cfg.id = id;
	cfg.list = list;
	cfg.conn.node_name = "fetcher";
	cfg.timeout = 5;
	cfg.chunk_size = fetch_cs ? fetch_cs : CHUNK;
	cfg.node = self;
	o->fx = proto_fetch_new(base, &cfg, &cbs, o);
	return o->fx;
}

/* Runs the loop until the fetch ends or completes, or the deadline. */
static void
run(struct event_base *base, struct owner *o)
{
	time_t end = time(NULL) + DEADLINE_S;

	while (!o->ended && !o->completes && time(NULL) < end) {
		struct timespec ms = { 0, 1000000 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ms, NULL);
	}
	if (!o->ended && !o->completes)
		diag("deadline passed; log:\n%s", o->log);
}

/* A fetch of id (or a list) from srv alone, run to its end. Returns what
 * adding the peer returned. */
static int
fetch_from(struct event_base *base, const uint8_t *id, int list,
    const proto_server *srv, struct owner *o, char *addr, size_t len)
{
	int rc;

	fetch_new(base, id, list, NULL, o);
	addr_of(srv, "127.0.0.1", addr, len);
	rc = add_peer_text(o->fx, addr);
	proto_fetch_more_peers(o->fx, 0);
	run(base, o);
	return rc;
}

static void
write_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		diag("cannot write %s", path);
	close(fd);
}

static void
test_fetch_whole_file(struct event_base *base, const char *path)
{
	proto_store *st;
	proto_manifest *mf = NULL;
	proto_server *srv = serve(base, &st, path, &mf);
	struct owner o;
	proto_fetch_stats s;
	char addr[64];
	int once = 1;

	is_int(fetch_from(base, mf->id, 0, srv, &o, addr, sizeof(addr)), 0,
	    "add a peer: 0");
	is_int(o.manifests, 1, "one seed: the manifest adopted once");
	is_int(o.completes, 1, "one seed: complete");
	for (int i = 0; i < 5; i++)
		once &= o.chunk_calls[i] == 1;
	ok(once, "one seed: each of the 5 chunks handed over once");
	is_mem(o.got, content, FILE_SIZE, "one seed: the bytes are the file's");
	ok(proto_fetch_manifest(o.fx) != NULL &&
	    proto_fetch_manifest(o.fx)->nchunks == 5,
	    "the adopted manifest stays readable");
	proto_fetch_stats_get(o.fx, &s);
	ok(s.chunks_fetched == 5 && s.chunks_done == 5 &&
	    s.peers_dropped == 0 && s.peers == 1,
	    "stats: 5 fetched, 5 done, 1 peer, none dropped");
	/* The seed goes away: the fetch, stopped, loses its only peer, and
	 * still does not end (on_end) by itself. */
	proto_server_free(srv);
	proto_store_free(st);
	for (int i = 0; i < 300; i++) {
		struct timespec ms = { 0, 1000000 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ms, NULL);
	}
	is_int(o.ended, 0, "on_end is not called after proto_fetch_stop, "
	    "even once every peer is gone");
	proto_fetch_close(o.fx);
	proto_fetch_stats_get(o.fx, &s);
	ok(s.bytes_in > FILE_SIZE && s.peers_alive == 0,
	    "after close: the bytes read are counted, no peer alive");
	{
		const char *a;
		uint64_t n;
		ok(proto_fetch_peer(o.fx, 0, &a, &n) == 0 &&
		    strcmp(a, addr) == 0 && n == 5,
		    "peer 0: its address as given, 5 chunks");
		is_int(proto_fetch_peer(o.fx, 1, &a, &n), PROTO_ERR_INVALID,
		    "peer past the last: INVALID");
	}
	proto_fetch_free(o.fx);
}

/* The chunk size is the fetch's: a seed that chunked in 16 KiB is asked in
 * the 32 KiB the fetch chose, and a fetch that leaves the choice to the
 * library gets no more than PROTO_CHUNK_AUTO_COUNT chunks either way. */
static void
test_own_chunk_size(struct event_base *base, const char *path)
{
	proto_store *st;
	proto_manifest *mf = NULL;
	proto_server *srv = serve(base, &st, path, &mf);
	const proto_manifest *got;
	struct owner o;
	char addr[64];

	fetch_cs = 2 * CHUNK;
	fetch_from(base, mf->id, 0, srv, &o, addr, sizeof(addr));
	got = proto_fetch_manifest(o.fx);
	is_int(o.completes, 1, "own chunk size: complete");
	ok(got != NULL && mf->chunk_size == CHUNK &&
	    got->chunk_size == 2 * CHUNK && got->nchunks == 3 &&
	    memcmp(got->id, mf->id, PROTO_HASH_LEN) == 0,
	    "a seed's 16 KiB manifest (5 chunks) is asked in the fetch's "
	    "32 KiB (3 chunks)");
	ok(o.chunk_calls[0] == 1 && o.chunk_calls[1] == 1 &&
	    o.chunk_calls[2] == 1 && o.chunk_calls[3] == 0,
	    "own chunk size: chunks 0 to 2 handed over once each");
	is_mem(o.got, content, FILE_SIZE, "own chunk size: the bytes are "
	    "the file's");
	proto_fetch_free(o.fx);
	/* A bigger chunk than the file's tree is narrowed to it. */
	fetch_cs = PROTO_CHUNK_MAX;
	fetch_from(base, mf->id, 0, srv, &o, addr, sizeof(addr));
	got = proto_fetch_manifest(o.fx);
	ok(o.completes == 1 && got != NULL && got->nchunks == 1 &&
	    got->chunk_size == 8 * CHUNK,
	    "own chunk size of 4 MiB: narrowed to the file's 128 KiB");
	is_mem(o.got, content, FILE_SIZE, "in one chunk: the bytes are the "
	    "file's");
	proto_fetch_free(o.fx);
	fetch_cs = 0;
	proto_server_free(srv);
	proto_store_free(st);
}

static void
test_bad_chunk_drops_peer(struct event_base *base, const char *bad_path)
{
	proto_store *st;
	proto_manifest *mf = NULL;
	proto_server *srv = serve(base, &st, NULL, NULL);
	uint8_t flipped[FILE_SIZE];
	struct owner o;
	proto_fetch_stats s;
	char addr[64];
	unsigned handed = 0;
	int fd = open(bad_path, O_RDONLY);

	/* A server checks a manifest it was given against the file before it
	 * serves it; a file it holds as a fetch does goes out unchecked: the
	 * lying peer. The manifest is built, then the bytes behind it change. */
	if (fd < 0 || proto_manifest_build_fd(fd, "f", bad_path, CHUNK,
	    &mf) != 0 || proto_store_add_partial(st, mf, fd, NULL) != 0)
		diag("cannot share %s", bad_path);
	memcpy(flipped, content, FILE_SIZE);
	for (size_t i = 0; i < FILE_SIZE; i += CHUNK)
		flipped[i] ^= 0xff;
	write_file(bad_path, flipped, FILE_SIZE);
	fetch_from(base, mf->id, 0, srv, &o, addr, sizeof(addr));
	for (int i = 0; i < 8; i++)
		handed += o.chunk_calls[i];
	is_int(handed, 0, "bad chunks: none handed to the owner");
	proto_fetch_stats_get(o.fx, &s);
	is_int(s.peers_dropped, 1, "bad chunks: the peer is dropped");
	ok(strstr(o.log, "failed verification; dropping peer") != NULL,
	    "bad chunks: the log says why");
	ok(o.ended == 1 && o.code == 1 &&
	    strstr(o.log, "every peer failed; 5 of 5 chunks missing") != NULL,
	    "bad chunks, no other peer: the fetch ends with 1, exhausted");
	proto_fetch_free(o.fx);
	proto_server_free(srv);
	proto_store_free(st);
	proto_manifest_free(mf);
	close(fd);
}

static void
test_duplicate_address_connects_once(struct event_base *base,
    const char *path)
{
	proto_store *st;
	proto_manifest *mf = NULL;
	proto_server *srv = serve(base, &st, path, &mf);
	proto_server_stats ss;
	proto_fetch_stats s;
	struct owner o;
	char addr[64], other[64];

	fetch_new(base, mf->id, 0, NULL, &o);
	addr_of(srv, "127.0.0.1", addr, sizeof(addr));
	/* An IPv4-mapped IPv6 address is the same node as its IPv4 text. */
	snprintf(other, sizeof(other), "[::ffff:127.0.0.1]:%u",
	    proto_server_port(srv));
	add_peer_text(o.fx, addr);
	add_peer_text(o.fx, addr);
	add_peer_text(o.fx, other);
	proto_fetch_more_peers(o.fx, 0);
	proto_fetch_stats_get(o.fx, &s);
	is_int(s.peers, 1, "one address three times, two spellings: one peer");
	run(base, &o);
	is_int(o.completes, 1, "... and the file arrives");
	proto_server_stats_get(srv, &ss);
	is_int(ss.peers, 1,
	    "the server saw one connection");
	proto_fetch_free(o.fx);
	proto_server_free(srv);
	proto_store_free(st);
}

/* Through one relay, two nodes are two peers; the relay's address given
 * directly is a third; a learned record there re-pins none. */
static void
test_relayed_peers_apart(struct event_base *base)
{
	static const uint8_t zero[PROTO_HASH_LEN];
	uint8_t pin_x[PROTO_IDENTITY_LEN], pin_y[PROTO_IDENTITY_LEN];
	proto_addr x, y, direct;
	proto_fetch_stats s;
	struct owner o;

	memset(pin_x, 0x11, sizeof(pin_x));
	memset(pin_y, 0x22, sizeof(pin_y));
	fetch_new(base, zero, 0, NULL, &o);
	if (proto_addr_parse(&x, "127.0.0.1:9", 11, 0, PROTO_ADDR_NUMERIC,
	    NULL) != 0)
		exit(2);
	direct = x;
	proto_addr_set_pin(&x, pin_x);
	x.relayed = 1;
	y = x;
	proto_addr_set_pin(&y, pin_y);
	proto_fetch_add_peer(o.fx, &x);
	proto_fetch_add_peer(o.fx, &y);
	proto_fetch_add_peer(o.fx, &direct);
	proto_fetch_stats_get(o.fx, &s);
	is_int(s.peers, 3, "X and Y through one relay, and the relay's "
	    "address directly: three peers");
	proto_fetch_add_peer(o.fx, &x);
	proto_fetch_stats_get(o.fx, &s);
	is_int(s.peers, 3, "X through the relay again: the same peer");
	proto_fetch_free(o.fx);
}

static void
test_not_found_anywhere(struct event_base *base)
{
	proto_store *st;
	proto_server *srv = serve(base, &st, NULL, NULL);
	uint8_t id[PROTO_HASH_LEN];
	char hex[PROTO_ID_HEX_LEN + 1], want[PROTO_ID_HEX_LEN + 64], addr[64];
	struct owner o;

	memset(id, 0xab, sizeof(id));
	proto_hex_encode(id, sizeof(id), hex);
	snprintf(want, sizeof(want), "%s: not found on any peer", hex);
	fetch_from(base, id, 0, srv, &o, addr, sizeof(addr));
	ok(o.ended == 1 && o.code == 1 && o.manifests == 0,
	    "no peer has the file: on_end(1), no manifest");
	ok(strstr(o.log, want) != NULL, "... and the log says not found");
	proto_fetch_free(o.fx);
	proto_server_free(srv);
	proto_store_free(st);
}

static void
test_more_peers_then_none(struct event_base *base)
{
	uint8_t id[PROTO_HASH_LEN] = { 1 };
	struct owner o;

	fetch_new(base, id, 0, NULL, &o);
	proto_fetch_more_peers(o.fx, 1);
	is_int(o.ended, 0, "no peer yet, more to come: not over");
	proto_fetch_more_peers(o.fx, 0);
	ok(o.ended == 1 && o.code == 1 &&
	    strstr(o.log, "no peers to fetch from") != NULL,
	    "no peer and no more to come: on_end(1) at once");
	proto_fetch_free(o.fx);
}

/* A node of our own, listening on 127.0.0.1, that holds the file. */
static proto_node *
own_node(struct event_base *base, const char *path, proto_manifest **mfp)
{
	proto_node_config cfg;
	proto_node_cbs ncbs = { NULL };
	proto_node *node;
	proto_addr at;
	int fd = open(path, O_RDONLY);
	struct sockaddr_in in;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	proto_addr_from_sockaddr(&at, (struct sockaddr *)&in, sizeof(in));
	memset(&cfg, 0, sizeof(cfg));
	cfg.server.conn.node_name = "self";
	node = proto_node_new(base, &cfg, &ncbs, NULL);
	*mfp = NULL;
	proto_manifest_build_fd(fd, "f", path, CHUNK, mfp);
	close(fd);
	if (node == NULL || *mfp == NULL || proto_node_listen(node, &at) != 0 ||
	    proto_store_add(proto_node_store(node), *mfp) < 0) {
		diag("cannot make a node on 127.0.0.1");
		exit(2);
	}
	return node;
}

static void
test_never_ourselves(struct event_base *base, const char *path)
{
	proto_manifest *mf;
	proto_node *node = own_node(base, path, &mf);
	uint16_t port = proto_node_port(node);
	proto_fetch_stats s;
	proto_addr self;
	struct owner o;
	char addr[64];

	fetch_new(base, mf->id, 0, node, &o);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	add_peer_text(o.fx, addr);
	proto_addr_from_host(&self, "127.0.0.1", 9, port);
	proto_fetch_add_learned(o.fx, &self);
	proto_addr_from_host(&self, "0.0.0.0", 7, port);
	proto_fetch_add_learned(o.fx, &self);
	proto_fetch_stats_get(o.fx, &s);
	ok(s.peers == 0 && strstr(o.log, "ourselves; not connecting"),
	    "our own node's port: never connected, given or learned, at a "
	    "loopback or wildcard address");
	proto_fetch_free(o.fx);
	proto_node_free(node);
}

static void
test_list(struct event_base *base, const char *path)
{
	proto_store *st;
	proto_server *srv = serve(base, &st, path, NULL);
	struct owner o;
	char addr[64];

	fetch_from(base, NULL, 1, srv, &o, addr, sizeof(addr));
	ok(o.listed == 1 && o.ended == 1 && o.code == 0,
	    "list: one file listed, then on_end(0)");
	ok(strcmp(o.list_peer, addr) == 0 &&
	    proto_fetch_list_peer(o.fx) == NULL,
	    "list: on_list is told whose list it is (%s), and only then",
	    o.list_peer);
	proto_fetch_free(o.fx);
	proto_server_free(srv);
	proto_store_free(st);
}

/*
 * An empty file from a peer that holds it only partly: its map shows the
 * one chunk missing, then a HAVE says it has it. That chunk holds no byte;
 * the HAVE once made the fetch walk 2^50 chunks of ours (end - 1 wrapped),
 * the loop blocked for days. Now the chunk is asked for and the fetch ends.
 */
static void
test_empty_file_have(struct event_base *base)
{
	proto_store *st;
	proto_server *srv = serve(base, &st, NULL, NULL);
	proto_manifest *mf = NULL;
	proto_have have;
	struct owner o;
	char path[64], addr[64];
	time_t end;
	int fd;

	snprintf(path, sizeof(path), "%s/empty", dir);
	write_file(path, content, 0);
	fd = open(path, O_RDONLY);
	if (fd < 0 || proto_manifest_build_fd(fd, "e", path, CHUNK, &mf) != 0 ||
	    proto_have_init(&have, 1) != 0 ||
	    proto_store_add_partial(st, mf, fd, &have) != 0) {
		diag("cannot share an empty file");
		exit(2);
	}
	fetch_new(base, mf->id, 0, NULL, &o);
	addr_of(srv, "127.0.0.1", addr, sizeof(addr));
	add_peer_text(o.fx, addr);
	proto_fetch_more_peers(o.fx, 1);
	/* Until the manifest is adopted, then a moment for the map (nothing
	 * held) to be read. */
	end = time(NULL) + DEADLINE_S;
	for (int after = 0; time(NULL) < end && !o.ended && after < 200;) {
		struct timespec ms = { 0, 1000000 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ms, NULL);
		after += o.manifests > 0;
	}
	is_int(o.manifests, 1, "empty file, partial peer: manifest adopted");
	is_int(o.completes, 0, "... nothing held yet: not complete");
	proto_have_set(&have, 0);
	proto_server_have(srv, mf->id, 0);
	run(base, &o);
	is_int(o.completes, 1, "... its HAVE for the empty chunk: complete");
	if (!o.completes)
		diag("ended %d code %d; log:\n%s", o.ended, o.code, o.log);
	proto_fetch_free(o.fx);
	proto_server_free(srv);
	proto_store_free(st);
	proto_have_free(&have);
	proto_manifest_free(mf);
	close(fd);
	unlink(path);
}

int
main(void)
{
	struct event_base *base;
	char path[64], bad[64];

	/* A fetch stuck in a loop must fail the run, not hang it. */
	alarm(120);
	if (mkdtemp(dir) == NULL || (base = event_base_new()) == NULL) {
		diag("setup failed");
		return 1;
	}
	srandom(1);
	for (size_t i = 0; i < FILE_SIZE; i++)
		content[i] = (uint8_t)(i * 7 + i / 251);
	snprintf(path, sizeof(path), "%s/f", dir);
	snprintf(bad, sizeof(bad), "%s/bad", dir);
	write_file(path, content, FILE_SIZE);
	write_file(bad, content, FILE_SIZE);

	proto_fetch_free(NULL);
	ok(1, "free(NULL) does nothing");
	test_fetch_whole_file(base, path);
	test_own_chunk_size(base, path);
	test_bad_chunk_drops_peer(base, bad);
	test_duplicate_address_connects_once(base, path);
	test_relayed_peers_apart(base);
	test_not_found_anywhere(base);
	test_more_peers_then_none(base);
	test_never_ourselves(base, path);
	test_list(base, path);
	test_empty_file_have(base);

	proto_base_free(base);
	unlink(path);
	unlink(bad);
	rmdir(dir);
	return done_testing();
}
