/*
 * dht.c and nodedht.c: the key derivations and the value of PROTOCOL.md
 * byte for byte; every hostile value refused with its reason; then nodes
 * over an in-process engine (a table of values, listens answered at once
 * and on every put, some from another thread): an id announced and found,
 * pinned to its signer, once; a node found by its identity; planted
 * values counted and never reported; a flood bounded; the guard against
 * the public network. Last, where the test runs in a network namespace of
 * its own (loopback alone) and the OpenDHT module loads, three nodes over
 * real OpenDHT runners on 127.0.0.1 with a private network id.
 */
#include <net/if.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "proto.h"
#include "tap.h"

#define DEADLINE_S 10
#define REAL_DEADLINE_S 40

/* The record of test_record.c (PROTOCOL.md section 4), signed with seed
 * 00..1f: identity a050837d...91a5. */
static const uint8_t vector[] = {
	0x92, 0xc4, 0x50, 0x85, 0xa3, 0x6b, 0x65, 0x79, 0xc4, 0x20, 0x03, 0xa1,
	0x07, 0xbf, 0xf3, 0xce, 0x10, 0xbe, 0x1d, 0x70, 0xdd, 0x18, 0xe7, 0x4b,
	0xc0, 0x99, 0x67, 0xe4, 0xd6, 0x30, 0x9b, 0xa5, 0x0d, 0x5f, 0x1d, 0xdc,
	0x86, 0x64, 0x12, 0x55, 0x31, 0xb8, 0xa5, 0x61, 0x64, 0x64, 0x72, 0x73,
	0x91, 0x92, 0xa8, 0x31, 0x30, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x35, 0xcd,
	0x1f, 0x90, 0xa3, 0x73, 0x65, 0x71, 0x01, 0xa3, 0x65, 0x78, 0x70, 0xce,
	0x65, 0x53, 0xff, 0x10, 0xa5, 0x66, 0x6c, 0x61, 0x67, 0x73, 0x03, 0xc4,
	0x40, 0xa3, 0x18, 0x2e, 0x45, 0x2b, 0xfe, 0x34, 0xae, 0x10, 0xac, 0xfa,
	0xb0, 0x37, 0x70, 0xb4, 0x90, 0xa1, 0x7d, 0xd5, 0x27, 0x4e, 0x9f, 0x55,
	0xc9, 0xa4, 0x1e, 0xfc, 0x2d, 0xc3, 0x03, 0x1d, 0x21, 0xcb, 0x11, 0x86,
	0xea, 0x14, 0xa9, 0x2f, 0xf8, 0x5c, 0x34, 0x21, 0xcf, 0xf5, 0x28, 0xc0,
	0x0f, 0xe1, 0xa2, 0x2a, 0x15, 0xb8, 0x05, 0x79, 0x3a, 0x02, 0x04, 0x09,
	0x98, 0x75, 0x56, 0x94, 0x0f,
};
#define NOW 1700000000u

static char dir[] = "/tmp/test_dht.XXXXXX";

static void
hex(const char *text, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sscanf(text + 2 * i, "%2hhx", &out[i]);
}

static proto_identity *
key_from_pem(const char *pem, const char *name)
{
	char path[256];
	proto_identity *id = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	if (pem != NULL && ((f = fopen(path, "w")) == NULL ||
	    fputs(pem, f) < 0 || fclose(f) != 0 || chmod(path, 0600) != 0))
		exit(2);
	if (proto_identity_load(path, pem == NULL, &id) != 0) {
		diag("cannot make key %s", name);
		exit(2);
	}
	return id;
}

static proto_identity *
vector_key(void)
{
	return key_from_pem("-----BEGIN PRIVATE KEY-----\n"
	    "MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n"
	    "-----END PRIVATE KEY-----\n", "vector");
}

static void
test_keys(void)
{
	uint8_t id[32], secret[32], key[PROTO_DHT_KEY_LEN], want[20];
	uint8_t ident[32];

	for (int i = 0; i < 32; i++) {
		id[i] = (uint8_t)i;
		secret[i] = 0xaa;
	}
	hex("a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5",
	    ident, 32);
	is_int(proto_dht_key_content(id, NULL, key), 0, "content key made");
	hex("7992622e0506488208141b94f4378d53fbdb5221", want, 20);
	is_mem(key, want, 20, "content key of 00..1f: 7992622e...5221");
	proto_dht_key_content(id, secret, key);
	hex("d21c0a3fb360f3a76fffcc924520e4847f2cd62e", want, 20);
	is_mem(key, want, 20, "... with secret aa..aa: d21c0a3f...d62e");
	proto_dht_key_node(ident, NULL, key);
	hex("149931506d79835b1f13baa0c16faa92dd750907", want, 20);
	is_mem(key, want, 20, "node key of a050837d...: 14993150...0907");
	is_int(proto_dht_network(NULL), 0, "no secret: the public network 0");
	is_int(proto_dht_network(secret), 0xa3f4744d, "secret aa..aa: network "
	    "0xa3f4744d");
}

static void
test_value(void)
{
	proto_identity *k = vector_key();
	uint8_t id[32], key[20], other[20], v[PROTO_DHT_VALUE_MAX], w[2048];
	uint8_t want[PROTO_DHT_VALUE_MAX];
	proto_record r;
	size_t len = 0;

	for (int i = 0; i < 32; i++)
		id[i] = (uint8_t)i;
	proto_dht_key_content(id, NULL, key);
	is_int(proto_dht_value_pack(key, vector, sizeof(vector), k, v, &len),
	    0, "value: packed");
	is_int(len, 3 + 20 + 2 + sizeof(vector) + 2 + 64, "value: 240 bytes");
	hex("93c4147992622e0506488208141b94f4378d53fbdb5221c495", want, 25);
	is_mem(v, want, 25, "value: 93 c4 14 KEY c4 95 ...");
	ok(memcmp(v + 25, vector, sizeof(vector)) == 0 && v[174] == 0xc4 &&
	    v[175] == 0x40, "value: ... RECORD c4 40 SIG");
	/* As openssl pkeyutl -sign -rawin gives it over the same bytes. */
	hex("2ffab29dbd229ec149661ea168eea2061f505e7777808b9847e019864bf2a1d5"
	    "fc40ee81f51a58a0494f249379a211b71debe178a54bef45482afb1dc87d9d09",
	    want, 64);
	is_mem(v + 176, want, 64, "value: the signature of PROTOCOL.md");
	is_int(proto_dht_value_verify(v, len, key, NOW, &r), 0,
	    "value: verifies at 1700000000");
	ok(strcmp(proto_addr_text(&r.addrs[0]), "10.0.0.5:8080") == 0,
	    "value: carries 10.0.0.5:8080");

	memcpy(other, key, 20);
	other[0] ^= 1;
	is_int(proto_dht_value_verify(v, len, other, NOW, &r),
	    PROTO_ERR_INVALID, "hostile: found under another key");
	is_int(proto_dht_value_verify(v, len, key, NOW + 100000, &r),
	    PROTO_ERR_STALE, "hostile: its record expired");
	memcpy(w, v, len);
	w[len - 1] ^= 1;
	is_int(proto_dht_value_verify(w, len, key, NOW, &r),
	    PROTO_ERR_MISMATCH, "hostile: the value's signature flipped");
	memcpy(w, v, len);
	w[30] ^= 1;
	ok(proto_dht_value_verify(w, len, key, NOW, &r) != 0,
	    "hostile: a byte of the record changed");
	/* Re-signed by another key over the same record: the record's key
	 * must be the value's signer. */
	{
		proto_identity *k2 = key_from_pem(NULL, "other");
		size_t l2;
		proto_dht_value_pack(key, vector, sizeof(vector), k2, w, &l2);
		is_int(proto_dht_value_verify(w, l2, key, NOW, &r),
		    PROTO_ERR_MISMATCH, "hostile: signed by another than the "
		    "record's node");
		proto_identity_free(k2);
	}
	is_int(proto_dht_value_verify(v, len - 1, key, NOW, &r),
	    PROTO_ERR_MALFORMED, "hostile: one byte short");
	memset(w, 0, sizeof(w));
	is_int(proto_dht_value_verify(w, PROTO_DHT_VALUE_MAX + 1, key, NOW, &r),
	    PROTO_ERR_TOO_BIG, "hostile: one byte past the limit");
	is_int(proto_dht_value_verify((const uint8_t *)"", 0, key, NOW, &r),
	    PROTO_ERR_MALFORMED, "hostile: empty");
	/* bin16 for a record under 256 bytes: not the shortest form. */
	memcpy(w, v, 23);
	w[23] = 0xc5;
	w[24] = 0;
	w[25] = sizeof(vector);
	memcpy(w + 26, v + 25, len - 25);
	is_int(proto_dht_value_verify(w, len + 1, key, NOW, &r),
	    PROTO_ERR_MALFORMED, "hostile: a longer encoding than needed");
	is_int(proto_dht_value_pack(key, w, PROTO_RECORD_MAX + 1, k, v, &len),
	    PROTO_ERR_TOO_BIG, "pack: a record past the limit");
	proto_identity_free(k);
}

/* ---- an engine in this process ---- */

#define FAKE_VALUES 4096
#define FAKE_ENGINES 8

struct fake_engine {
	proto_dht_value_fn on_value;
	void *ctx;
	uint8_t keys[16][20];
	size_t nkeys;
	uint16_t port;
};

static struct {
	pthread_mutex_t lock;
	struct { uint8_t key[20]; size_t len; uint8_t *data; } v[FAKE_VALUES];
	size_t nv;
	struct fake_engine *e[FAKE_ENGINES];
	size_t ne;
	unsigned boots;
	char last_boot[64];
} net;

static void
deliver(const uint8_t key[20], const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < net.ne; i++)
		for (size_t j = 0; j < net.e[i]->nkeys; j++)
			if (memcmp(net.e[i]->keys[j], key, 20) == 0)
				net.e[i]->on_value(key, data, len,
				    net.e[i]->ctx);
}

static void
fake_put(void *e, const uint8_t key[20], const uint8_t *data, size_t len)
{
	(void)e;
	pthread_mutex_lock(&net.lock);
	if (net.nv < FAKE_VALUES && (net.v[net.nv].data = malloc(len))) {
		memcpy(net.v[net.nv].key, key, 20);
		memcpy(net.v[net.nv].data, data, len);
		net.v[net.nv++].len = len;
	}
	deliver(key, data, len);
	pthread_mutex_unlock(&net.lock);
}

static void *
fake_start(uint16_t port, uint32_t network, proto_dht_value_fn fn,
    void *ctx, int *err)
{
	struct fake_engine *e = calloc(1, sizeof(*e));

	(void)network;
	(void)err;
	e->on_value = fn;
	e->ctx = ctx;
	e->port = port ? port : (uint16_t)(40000 + net.ne);
	pthread_mutex_lock(&net.lock);
	net.e[net.ne++] = e;
	pthread_mutex_unlock(&net.lock);
	return e;
}

static void
fake_bootstrap(void *e, const char *host, const char *service)
{
	(void)e;
	net.boots++;
	snprintf(net.last_boot, sizeof(net.last_boot), "%s %s", host, service);
}

static int
fake_listen(void *arg, const uint8_t key[20])
{
	struct fake_engine *e = arg;

	pthread_mutex_lock(&net.lock);
	memcpy(e->keys[e->nkeys++], key, 20);
	for (size_t i = 0; i < net.nv; i++)
		if (memcmp(net.v[i].key, key, 20) == 0)
			e->on_value(key, net.v[i].data, net.v[i].len, e->ctx);
	pthread_mutex_unlock(&net.lock);
	return 0;
}

static uint16_t
fake_port(void *arg)
{
	return ((struct fake_engine *)arg)->port;
}

static void
fake_free(void *arg)
{
	pthread_mutex_lock(&net.lock);
	for (size_t i = 0; i < net.ne; i++)
		if (net.e[i] == arg) {
			net.e[i] = net.e[--net.ne];
			break;
		}
	pthread_mutex_unlock(&net.lock);
	free(arg);
}

static const proto_dht_engine_ops fake = { PROTO_DHT_ENGINE_ABI,
    fake_start, fake_bootstrap, fake_put, fake_listen, fake_port,
    fake_free };

static void
fake_reset(void)
{
	for (size_t i = 0; i < net.nv; i++)
		free(net.v[i].data);
	net.nv = 0;
	net.boots = 0;
}

/* ---- nodes ---- */

struct seen_log {
	unsigned found;
	proto_addr addr[64];
	uint8_t pin[64][32];
	int pinned[64];
	int record[64];
};

static void
on_seen(const proto_node_seen *s, void *arg)
{
	struct seen_log *l = arg;

	if (s->what != PROTO_NODE_FOUND || strcmp(s->source, "dht") != 0 ||
	    l->found >= 64)
		return;
	l->addr[l->found] = s->addr;
	l->pinned[l->found] = s->addr.has_pin;
	if (s->addr.has_pin)
		memcpy(l->pin[l->found], s->addr.pin, 32);
	l->record[l->found] = s->record != NULL;
	l->found++;
}

static proto_addr
loopback(uint16_t port)
{
	proto_addr a;
	struct sockaddr_in in;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_port = htons(port);
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	proto_addr_from_sockaddr(&a, (struct sockaddr *)&in, sizeof(in));
	return a;
}

static proto_node *
node(struct event_base *base, const proto_identity *id, int listen)
{
	proto_node_config cfg;
	proto_node_cbs cbs = { NULL };
	proto_addr at = loopback(0);
	proto_node *n;

	memset(&cfg, 0, sizeof(cfg));
	cfg.server.conn.node_name = "n";
	cfg.identity = id;
	n = proto_node_new(base, &cfg, &cbs, NULL);
	if (n == NULL || (listen && proto_node_listen(n, &at) != 0))
		exit(2);
	return n;
}

static proto_manifest *
manifest(const char *name)
{
	static uint8_t bytes[3000];
	char path[256];
	proto_manifest *mf = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	memcpy(bytes, name, strlen(name));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, bytes, sizeof(bytes)) != sizeof(bytes) ||
	    lseek(fd, 0, SEEK_SET) != 0 ||
	    proto_manifest_build_fd(fd, name, path, 0, &mf) != 0)
		exit(2);
	close(fd);
	return mf;
}

static void
run_until(struct event_base *base, const unsigned *count, unsigned want,
    int seconds)
{
	time_t end = time(NULL) + seconds;

	while (time(NULL) < end && *count < want) {
		struct timespec ms = { 0, 2000000 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ms, NULL);
	}
}

static void
run_for(struct event_base *base, int ms)
{
	for (int i = 0; i < ms / 2; i++) {
		struct timespec t = { 0, 2000000 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&t, NULL);
	}
}

static proto_dht *
start_in(proto_node *n, const proto_dht_engine_ops *ops, int announce,
    const char *boot, unsigned reput, const uint8_t *secret)
{
	proto_dht_config c;
	proto_dht *d = NULL;
	const char *why;

	memset(&c, 0, sizeof(c));
	c.engine = ops;
	c.boot = boot ? &boot : NULL;
	c.nboot = boot != NULL;
	c.announce = announce;
	c.reput = reput;
	c.network = 4242;
	c.secret = secret;
	if (proto_node_start_dht(n, &c, &d, &why) != 0) {
		diag("dht: %s", why ? why : "?");
		exit(2);
	}
	return d;
}

static proto_dht *
start(proto_node *n, const proto_dht_engine_ops *ops, int announce,
    const char *boot, unsigned reput)
{
	return start_in(n, ops, announce, boot, reput, NULL);
}

static void
test_found(struct event_base *base)
{
	proto_identity *ka = key_from_pem(NULL, "a");
	proto_manifest *mf = manifest("f1");
	proto_node *a = node(base, ka, 1), *b = node(base, NULL, 0);
	struct seen_log log;
	proto_dht *da, *db;
	proto_dht_stats st;

	fake_reset();
	memset(&log, 0, sizeof(log));
	proto_store_add(proto_node_store(a), mf);
	da = start(a, &fake, 1, "127.0.0.1:4222", 1);
	ok(da != NULL && net.boots == 1 &&
	    strcmp(net.last_boot, "127.0.0.1 4222") == 0,
	    "start: the bootstrap node given, as host and service");
	proto_dht_stats_get(da, &st);
	is_int(st.puts, 2, "announce: at start, one value for the file and "
	    "one for the identity");
	db = start(b, &fake, 0, NULL, 0);
	proto_node_watch(b, on_seen, &log);
	is_int(proto_node_lookup(b, mf->id), 1, "lookup: the dht source asked");
	run_until(base, &log.found, 1, DEADLINE_S);
	is_int(log.found, 1, "lookup: the announcing node reported once");
	ok(log.found == 1 && proto_addr_port(&log.addr[0]) ==
	    proto_node_port(a) && log.pinned[0] && memcmp(log.pin[0],
	    proto_identity_id(ka), 32) == 0 && log.record[0],
	    "... at its port, pinned to its identity, with its record");
	/* Re-put every second: the same record again is no news. */
	run_for(base, 2500);
	proto_dht_stats_get(da, &st);
	ok(st.puts >= 4, "announce: put again after reput seconds (%llu)",
	    (unsigned long long)st.puts);
	is_int(log.found, 1, "... and not reported again");
	proto_dht_stats_get(db, &st);
	ok(st.repeated >= 1 && st.taken == 1, "... counted as repeated");

	/* By identity. */
	is_int(proto_dht_find_node(db, proto_identity_id(ka)), 0,
	    "find_node: listening on the identity's key");
	run_until(base, &log.found, 2, DEADLINE_S);
	ok(log.found == 2 && log.pinned[1] && memcmp(log.pin[1],
	    proto_identity_id(ka), 32) == 0, "find_node: found, pinned");
	/* The store gains a file: announced within seconds. */
	{
		proto_manifest *mf2 = manifest("f2");
		uint64_t before;
		proto_dht_stats_get(da, &st);
		before = st.puts;
		proto_store_add(proto_node_store(a), mf2);
		run_for(base, 2500);
		proto_dht_stats_get(da, &st);
		ok(st.puts > before, "a file added later is announced");
		proto_node_lookup(b, mf2->id);
		run_until(base, &log.found, 3, DEADLINE_S);
		is_int(log.found, 3, "... and found");
	}
	proto_node_free(b);
	proto_node_free(a);
	proto_identity_free(ka);
}

/* Puts v (len bytes) under key as a stranger would. */
static void
plant(const uint8_t key[20], const uint8_t *v, size_t len)
{
	fake_put(NULL, key, v, len);
}

struct flood {
	uint8_t key[20];
	unsigned n;
};

static void *
flood_thread(void *arg)
{
	struct flood *f = arg;
	uint8_t junk[64];

	memset(junk, 0x93, sizeof(junk));
	for (unsigned i = 0; i < f->n; i++)
		fake_put(NULL, f->key, junk, sizeof(junk));
	return NULL;
}

static void
test_hostile(struct event_base *base)
{
	proto_identity *ka = key_from_pem(NULL, "a"), *kv = vector_key();
	proto_identity *signers[40];
	proto_manifest *mf = manifest("f3");
	proto_node *a = node(base, ka, 1), *b = node(base, NULL, 0);
	uint8_t key[20], nkey[20], v[PROTO_DHT_VALUE_MAX], big[5000];
	struct seen_log log;
	proto_dht_stats st;
	proto_dht *db;
	size_t len;
	pthread_t th;
	struct flood fl;

	fake_reset();
	memset(&log, 0, sizeof(log));
	proto_dht_key_content(mf->id, NULL, key);
	proto_dht_key_node(proto_identity_id(ka), NULL, nkey);
	db = start(b, &fake, 0, NULL, 0);
	proto_node_watch(b, on_seen, &log);
	proto_node_lookup(b, mf->id);
	proto_dht_find_node(db, proto_identity_id(ka));
	/* Oversized, garbage, expired (the vector's record of 2023), another
	 * key's, and a stranger's value under a's identity. */
	memset(big, 0, sizeof(big));
	plant(key, big, sizeof(big));
	plant(key, (const uint8_t *)"\x93junk", 5);
	proto_dht_value_pack(key, vector, sizeof(vector), kv, v, &len);
	plant(key, v, len);
	proto_dht_value_pack(nkey, vector, sizeof(vector), kv, v, &len);
	plant(key, v, len);
	/* Fresh records of 40 strangers at 127.0.0.1 ports that refuse. */
	for (int i = 0; i < 40; i++) {
		char name[16];
		proto_record r;
		uint8_t rec[PROTO_RECORD_MAX];
		size_t rlen;
		snprintf(name, sizeof(name), "s%d", i);
		signers[i] = key_from_pem(NULL, name);
		memset(&r, 0, sizeof(r));
		r.addrs[0] = loopback((uint16_t)(1 + i));
		r.naddrs = 1;
		r.seq = 1;
		r.exp = (uint64_t)time(NULL) + 600;
		proto_record_sign(&r, signers[i], rec, &rlen);
		proto_dht_value_pack(key, rec, rlen, signers[i], v, &len);
		plant(key, v, len);
		if (i == 1) {
			v[len - 1] ^= 1;
			plant(key, v, len);
		}
		/* ... and one under a's identity key, signed by itself. */
		if (i == 0) {
			proto_dht_value_pack(nkey, rec, rlen, signers[i], v,
			    &len);
			plant(nkey, v, len);
		}
	}
	run_for(base, 300);
	proto_dht_stats_get(db, &st);
	is_int(st.oversized, 1, "hostile: oversized, counted");
	is_int(st.malformed, 1, "hostile: malformed, counted");
	is_int(st.stale, 1, "hostile: expired, counted");
	is_int(st.wrong_key, 2, "hostile: for another key, or another node "
	    "under an identity's key, counted");
	is_int(st.bad_sig, 1, "hostile: wrongly signed, counted");
	is_int(st.taken, PROTO_DHT_SIGNERS_MAX, "flood: 32 signers taken");
	is_int(st.over_signers, 40 - PROTO_DHT_SIGNERS_MAX,
	    "flood: the rest counted, not kept");
	is_int(log.found, PROTO_DHT_SIGNERS_MAX,
	    "flood: one address reported for each signer taken, no more");

	/* A flood from another thread: the queue holds at most its bound. */
	memcpy(fl.key, key, 20);
	fl.n = 3000;
	pthread_create(&th, NULL, flood_thread, &fl);
	pthread_join(th, NULL);
	run_for(base, 200);
	proto_dht_stats_get(db, &st);
	ok(st.queue_full >= 3000 - PROTO_DHT_QUEUE_MAX,
	    "flood: past %u waiting, dropped and counted (%llu)",
	    PROTO_DHT_QUEUE_MAX, (unsigned long long)st.queue_full);
	is_int(log.found, PROTO_DHT_SIGNERS_MAX, "flood: nothing reported");

	/* The honest node among them is still found. */
	proto_store_add(proto_node_store(a), mf);
	start(a, &fake, 1, NULL, 0);
	proto_node_free(b);
	b = node(base, NULL, 0);
	memset(&log, 0, sizeof(log));
	db = start(b, &fake, 0, NULL, 0);
	proto_node_watch(b, on_seen, &log);
	{
		/* The honest one answers first in its own lookup of a's
		 * identity: strangers cannot speak there. */
		proto_dht_find_node(db, proto_identity_id(ka));
		run_until(base, &log.found, 1, DEADLINE_S);
		ok(log.found == 1 && proto_addr_port(&log.addr[0]) ==
		    proto_node_port(a), "hostile: the honest node is found "
		    "by identity among strangers' values");
	}
	proto_node_free(b);
	proto_node_free(a);
	for (int i = 0; i < 40; i++)
		proto_identity_free(signers[i]);
	proto_identity_free(ka);
	proto_identity_free(kv);
}

/* A private swarm's values, sealed: PROTOCOL.md's example byte for byte
 * (also computed apart, with another ChaCha20-Poly1305), every forgery
 * refused; then nodes of one swarm find each other while what outsiders
 * put under the swarm's keys is counted and never reported. */
static void
test_sealed(struct event_base *base)
{
	proto_identity *k = vector_key(), *ka = key_from_pem(NULL, "a");
	proto_identity *ko = key_from_pem(NULL, "o");
	proto_manifest *mf = manifest("f4");
	uint8_t secret[32], other[32], id[32], key[20], nonce[12];
	uint8_t v[PROTO_DHT_VALUE_MAX], s[PROTO_DHT_SEALED_MAX + 1];
	uint8_t opened[PROTO_DHT_VALUE_MAX], want[64], digest[32];
	size_t vlen = 0, slen = 0, olen = 0;
	proto_node *a, *b;
	struct seen_log log;
	proto_dht_stats st;
	proto_dht *db;
	proto_record r;

	memset(secret, 0xaa, sizeof(secret));
	memset(other, 0xbb, sizeof(other));
	for (int i = 0; i < 32; i++)
		id[i] = (uint8_t)i;
	for (int i = 0; i < 12; i++)
		nonce[i] = (uint8_t)i;
	proto_dht_key_content(id, secret, key);
	proto_dht_value_pack(key, vector, sizeof(vector), k, v, &vlen);
	is_int(proto_dht_seal(secret, key, nonce, v, vlen, s, &slen), 0,
	    "seal: sealed");
	is_int(slen, 12 + 240 + 16, "seal: nonce, the value's 240 bytes, tag");
	hex("000102030405060708090a0b01f123237d06ef4ef1c976664ac81a73d4ecaa77",
	    want, 32);
	is_mem(s, want, 32, "seal: nonce || ciphertext as PROTOCOL.md shows");
	hex("e3dd475a", want, 4);
	is_mem(s + slen - 4, want, 4, "seal: ... and its tag");
	proto_sha256(s, slen, digest);
	hex("5b0ae722b8a5015a7f005e40e2a95b1b7ad6ad077667abfac3f72cf4217dcb78",
	    want, 32);
	is_mem(digest, want, 32, "seal: every byte (SHA-256 of the whole)");
	ok(proto_dht_unseal(secret, key, s, slen, opened, &olen) == 0 &&
	    olen == vlen && memcmp(opened, v, vlen) == 0 &&
	    proto_dht_value_verify(opened, olen, key, NOW - 10, &r) == 0,
	    "unseal: the value back, and it verifies");
	is_int(proto_dht_unseal(other, key, s, slen, opened, &olen),
	    PROTO_ERR_MISMATCH, "unseal: another swarm's secret opens nothing");
	{
		uint8_t moved[20];
		memcpy(moved, key, 20);
		moved[0] ^= 1;
		is_int(proto_dht_unseal(secret, moved, s, slen, opened, &olen),
		    PROTO_ERR_MISMATCH, "unseal: under another key, refused");
	}
	s[40] ^= 1;
	is_int(proto_dht_unseal(secret, key, s, slen, opened, &olen),
	    PROTO_ERR_MISMATCH, "unseal: a byte altered, refused");
	s[40] ^= 1;
	is_int(proto_dht_unseal(secret, key, s, 27, opened, &olen),
	    PROTO_ERR_MALFORMED, "unseal: shorter than nonce and tag");
	is_int(proto_dht_unseal(secret, key, s, PROTO_DHT_SEALED_MAX + 1,
	    opened, &olen), PROTO_ERR_TOO_BIG, "unseal: past the bound");
	is_int(proto_dht_seal(secret, key, NULL, v, PROTO_DHT_VALUE_MAX + 1, s,
	    &slen), PROTO_ERR_TOO_BIG, "seal: a value past the bound");
	{
		uint8_t s2[PROTO_DHT_SEALED_MAX];
		size_t s2len;
		proto_dht_seal(secret, key, NULL, v, vlen, s, &slen);
		proto_dht_seal(secret, key, NULL, v, vlen, s2, &s2len);
		ok(memcmp(s, s2, 12) != 0, "seal: a node's nonces are random");
	}

	/* Nodes of the swarm, and outsiders' values under its key. */
	fake_reset();
	memset(&log, 0, sizeof(log));
	a = node(base, ka, 1);
	b = node(base, NULL, 0);
	proto_store_add(proto_node_store(a), mf);
	start_in(a, &fake, 1, NULL, 0, secret);
	proto_dht_key_content(mf->id, secret, key);
	{
		size_t j = 0;
		while (j < net.nv && memcmp(net.v[j].key, key, 20) != 0)
			j++;
		ok(j < net.nv && net.v[j].len > 12 + 16 &&
		    proto_dht_value_verify(net.v[j].data, net.v[j].len, key,
		    (uint64_t)time(NULL), &r) != 0 &&
		    memmem(net.v[j].data, net.v[j].len,
		    proto_identity_id(ka), 8) == NULL, "announce: what a "
		    "swarm's node puts under the swarm's key is no readable "
		    "value, and shows not its identity");
	}
	{
		/* An outsider who saw the key: its own signed value, plain,
		 * and one sealed with another secret. */
		proto_record rec;
		uint8_t rb[PROTO_RECORD_MAX];
		size_t rlen;
		memset(&rec, 0, sizeof(rec));
		rec.addrs[0] = loopback(1);
		rec.naddrs = 1;
		rec.seq = 1;
		rec.exp = (uint64_t)time(NULL) + 600;
		proto_record_sign(&rec, ko, rb, &rlen);
		proto_dht_value_pack(key, rb, rlen, ko, v, &vlen);
		plant(key, v, vlen);
		proto_dht_seal(other, key, NULL, v, vlen, s, &slen);
		plant(key, s, slen);
	}
	db = start_in(b, &fake, 0, NULL, 0, secret);
	proto_node_watch(b, on_seen, &log);
	proto_node_lookup(b, mf->id);
	run_until(base, &log.found, 1, DEADLINE_S);
	run_for(base, 200);
	is_int(log.found, 1, "swarm: its node found, once");
	ok(log.found == 1 && proto_addr_port(&log.addr[0]) ==
	    proto_node_port(a) && log.pinned[0] && memcmp(log.pin[0],
	    proto_identity_id(ka), 32) == 0, "... at its port, pinned");
	proto_dht_stats_get(db, &st);
	is_int(st.unsealed, 2, "swarm: an outsider's plain value and one "
	    "sealed with another secret, counted, not reported");
	proto_node_free(b);
	proto_node_free(a);
	proto_identity_free(k);
	proto_identity_free(ka);
	proto_identity_free(ko);
}

static void
test_guard(struct event_base *base)
{
	proto_node *n = node(base, NULL, 0);
	proto_dht_config c;
	const char *boot, *why = NULL;

	memset(&c, 0, sizeof(c));
	c.engine = &fake;
	c.boot = &boot;
	c.nboot = 1;
	setenv("MINI_P2P_NO_PUBLIC_DHT", "1", 1);
	boot = PROTO_DHT_PUBLIC_BOOTSTRAP;
	is_int(proto_node_start_dht(n, &c, NULL, &why), PROTO_ERR_INVALID,
	    "guard: the public bootstrap node refused");
	ok(why != NULL && strstr(why, "MINI_P2P_NO_PUBLIC_DHT") != NULL,
	    "... saying why");
	boot = "dht.example.org:4222";
	is_int(proto_node_start_dht(n, &c, NULL, &why), PROTO_ERR_INVALID,
	    "guard: any name refused (no lookup)");
	boot = "127.0.0.1";
	is_int(proto_node_start_dht(n, &c, NULL, &why), PROTO_ERR_INVALID,
	    "a bootstrap node without a port refused");
	net.boots = 0;
	boot = "127.0.0.1:4222";
	is_int(proto_node_start_dht(n, &c, NULL, &why), 0,
	    "guard: an IP address taken");
	is_int(net.boots, 1, "... and bootstrapped");
	proto_node_free(n);
	n = node(base, NULL, 0);
	setenv("MINI_P2P_NO_PUBLIC_DHT", "0", 1);
	boot = PROTO_DHT_PUBLIC_BOOTSTRAP;
	net.boots = 0;
	is_int(proto_node_start_dht(n, &c, NULL, &why), 0,
	    "guard off: the public node allowed (fake engine: nothing sent)");
	proto_node_free(n);
	setenv("MINI_P2P_NO_PUBLIC_DHT", "1", 1);
}

/* 1 when this process sees loopback alone: a namespace of its own. */
static int
isolated(void)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	int others = 0;

	/* Asked of the kernel (netlink), not of /sys, which shows the
	 * namespace it was mounted in. */
	if (ifs == NULL)
		return 0;
	for (i = ifs; i->if_index != 0; i++)
		if (strcmp(i->if_name, "lo") != 0)
			others++;
	if_freenameindex(ifs);
	return others == 0;
}

static void
test_opendht(struct event_base *base)
{
	const proto_dht_engine_ops *ops;
	proto_identity *ka = key_from_pem(NULL, "a");
	proto_manifest *mf = manifest("f4");
	proto_node *a, *b, *c;
	proto_dht *da, *db;
	struct seen_log log;
	char boot[32];
	const char *why = "";
	int rc;

	if (!isolated()) {
		ok(1, "# SKIP OpenDHT: not in a network namespace of loopback "
		    "alone (run under bats/netns-run)");
		return;
	}
	if ((rc = proto_dht_engine_load(NULL, &ops, &why)) != 0) {
		ok(1, "# SKIP OpenDHT: no module (%s; make deps, make)", why);
		return;
	}
	ok(ops->abi == PROTO_DHT_ENGINE_ABI, "opendht: the module loads");
	memset(&log, 0, sizeof(log));
	a = node(base, ka, 1);
	proto_store_add(proto_node_store(a), mf);
	da = start(a, ops, 1, NULL, 2);
	ok(proto_dht_port(da) != 0, "opendht: a runner bound a UDP port");
	snprintf(boot, sizeof(boot), "127.0.0.1:%u", proto_dht_port(da));
	c = node(base, NULL, 0);
	(void)start(c, ops, 0, boot, 0);
	b = node(base, NULL, 0);
	db = start(b, ops, 0, boot, 0);
	proto_node_watch(b, on_seen, &log);
	proto_node_lookup(b, mf->id);
	run_until(base, &log.found, 1, REAL_DEADLINE_S);
	ok(log.found >= 1 && proto_addr_port(&log.addr[0]) ==
	    proto_node_port(a) && log.pinned[0],
	    "opendht: three runners, network 4242: the id announced is found, "
	    "pinned");
	proto_dht_find_node(db, proto_identity_id(ka));
	run_until(base, &log.found, 2, REAL_DEADLINE_S);
	ok(log.found >= 2, "opendht: the node found by its identity");
	proto_node_free(b);
	proto_node_free(c);
	proto_node_free(a);
	proto_identity_free(ka);
}

int
main(void)
{
	struct event_base *base = event_base_new();
	char cmd[64];

	signal(SIGPIPE, SIG_IGN);
	alarm(180);
	pthread_mutex_init(&net.lock, NULL);
	setenv("MINI_P2P_NO_PUBLIC_DHT", "1", 1);
	if (base == NULL || mkdtemp(dir) == NULL) {
		diag("setup failed");
		return 1;
	}
	test_keys();
	test_value();
	test_found(base);
	test_hostile(base);
	test_sealed(base);
	test_guard(base);
	test_opendht(base);
	proto_base_free(base);
	fake_reset();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("cannot remove %s", dir);
	return done_testing();
}
