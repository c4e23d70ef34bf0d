/*
 * peers.c: the known-peers table. Adding and refreshing, what counts as a
 * place to listen, eviction when full, the per-host limit (one host with
 * 256 ports does not take over the table), expiry, hearsay that is not
 * refreshed by being heard again, records (kept only when they verify and
 * name the address, the highest seq winning, never moving an address to
 * another identity on hearsay), the content ids an entry holds, and
 * listing them first. Ages are made distinct by writing .seen directly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "proto.h"
#include "tap.h"

static proto_peer_table table;
static proto_identity *key_a, *key_b;

static proto_addr
at(const char *host, uint16_t port)
{
	proto_addr a;

	if (proto_addr_from_host(&a, host, strlen(host), port) != 0) {
		printf("Bail out! %s is no address\n", host);
		exit(2);
	}
	return a;
}

static int
add(const char *host, uint16_t port)
{
	proto_addr a = at(host, port);

	return proto_peers_add(&table, &a, NULL, NULL, 0);
}

static int
heard(proto_peer_table *t, const char *host, uint16_t port)
{
	proto_addr a = at(host, port);

	return proto_peers_heard(t, &a, NULL, 0);
}

/* Index of host:port in t, or -1. */
static int
find_in(const proto_peer_table *t, const char *host, uint16_t port)
{
	proto_addr a = at(host, port);
	const proto_known_peer *e = proto_peers_find(t, &a);

	return e != NULL ? (int)(e - t->peers) : -1;
}

static int
find(const char *host, uint16_t port)
{
	return find_in(&table, host, port);
}

static size_t
count_host(const proto_peer_table *t, const char *host)
{
	size_t n = 0;

	for (size_t i = 0; i < t->count; i++)
		n += strcmp(t->peers[i].host, host) == 0;
	return n;
}

static void
test_add(void)
{
	proto_addr a;
	struct sockaddr_in any;
	time_t before;

	memset(&table, 0xa5, sizeof(table));
	proto_peers_init(&table);
	is_int(table.count, 0, "init: empty table");

	before = time(NULL);
	is_int(add("10.0.0.1", 9000), 0, "add: IPv4 address");
	is_int(table.count, 1, "add: count 1");
	is_str(table.peers[0].host, "10.0.0.1", "add: host text kept");
	is_str(proto_addr_text(&table.peers[0].addr), "10.0.0.1:9000",
	    "add: address kept");
	ok(table.peers[0].checked && table.peers[0].record_len == 0 &&
	    !table.peers[0].addr.has_pin, "add: checked, unsigned, no pin");
	ok(table.peers[0].seen >= before && table.peers[0].seen <= time(NULL),
	    "add: seen is now");

	table.peers[0].seen = time(NULL) - 1000;
	is_int(add("10.0.0.1", 9000), 0, "add dedupe: same address again");
	is_int(table.count, 1, "add dedupe: still one entry");
	ok(table.peers[0].seen >= before,
	    "add dedupe: seen first-hand again is seen now");
	is_int(add("::ffff:10.0.0.1", 9000), 0,
	    "add dedupe: the IPv4-mapped spelling ...");
	is_int(table.count, 1, "... is the same entry");

	is_int(add("10.0.0.1", 9001), 0, "add: same host, other port");
	is_int(add("10.0.0.2", 9000), 0, "add: other host, same port");
	is_int(table.count, 3, "add: both are new entries");
	is_int(add("2001:db8::1", 9000), 0, "add IPv6: 2001:db8::1");
	is_str(table.peers[find("2001:db8::1", 9000)].host, "2001:db8::1",
	    "add IPv6: host text without brackets");
	is_int(table.count, 4, "add IPv6: count 4");

	/* What is no place to listen. */
	a = at("10.0.0.5", 1);
	proto_addr_set_port(&a, 0);
	is_int(proto_peers_add(&table, &a, NULL, NULL, 0), PROTO_ERR_INVALID,
	    "add port 0 -> INVALID");
	is_int(proto_peers_heard(&table, &a, NULL, 0), PROTO_ERR_INVALID,
	    "heard port 0 -> INVALID");
	memset(&any, 0, sizeof(any));
	any.sin_family = AF_INET;
	any.sin_port = htons(80);
	proto_addr_from_sockaddr(&a, (struct sockaddr *)&any, sizeof(any));
	is_int(proto_peers_add(&table, &a, NULL, NULL, 0), PROTO_ERR_INVALID,
	    "add 0.0.0.0:80 (a wildcard) -> INVALID");
	memset(&a, 0, sizeof(a));
	is_int(proto_peers_add(&table, &a, NULL, NULL, 0), PROTO_ERR_INVALID,
	    "add an address of no family -> INVALID");
	is_int(table.count, 4, "add rejects: count unchanged at 4");
	a = at("10.0.0.9", 7);
	is_int(proto_peers_holds(&table, &a, (const uint8_t *)
	    "0123456789abcdef0123456789abcdef"), PROTO_ERR_INVALID,
	    "holds: no entry there -> INVALID");
}

static void
test_full(void)
{
	char host[32];
	int bad = 0, victim;
	time_t now = time(NULL);

	proto_peers_init(&table);
	for (unsigned i = 0; i < PROTO_PEER_TABLE_MAX; i++) {
		snprintf(host, sizeof(host), "10.1.%u.%u", i / 256, i % 256);
		if (add(host, 5000) != 0)
			bad++;
	}
	is_int(bad, 0, "full: 256 distinct peers added");
	is_int(table.count, PROTO_PEER_TABLE_MAX,
	    "full exact limit: count PROTO_PEER_TABLE_MAX");
	for (unsigned i = 0; i < PROTO_PEER_TABLE_MAX; i++)
		table.peers[i].seen = now - 1000 + (time_t)i;
	victim = find("10.1.0.100", 5000);
	table.peers[victim].seen = now - 1500;

	is_int(add("10.2.0.1", 5000), 0, "full: a new peer is added");
	is_int(table.count, PROTO_PEER_TABLE_MAX, "full: count stays at max");
	is_int(find("10.1.0.100", 5000), -1, "full: the oldest was evicted");
	ok(find("10.2.0.1", 5000) >= 0, "full: the new one is in");
	ok(find("10.1.0.0", 5000) >= 0, "full: the second oldest is kept");

	is_int(add("10.2.0.2", 5000), 0, "full again: another new peer");
	is_int(find("10.1.0.0", 5000), -1,
	    "full again: now the next oldest (10.1.0.0) was evicted");
	ok(find("10.2.0.1", 5000) >= 0,
	    "full again: the previous newcomer is kept");

	table.peers[find("10.1.0.1", 5000)].seen = now - 1600;
	is_int(add("10.1.0.200", 5000), 0, "full refresh: an existing peer");
	ok(find("10.1.0.1", 5000) >= 0,
	    "full refresh: nothing evicted for a known peer");
	is_int(heard(&table, "10.3.0.1", 5000), PROTO_ERR_TOO_BIG,
	    "full of checked entries: hearsay finds no room (TOO_BIG)");
	ok(find("10.1.0.1", 5000) >= 0, "... and pushes out nobody");
}

static void
test_list(void)
{
	static const struct {
		const char *host;
		uint16_t port;
		time_t age;
	} in[] = {
		{ "10.0.0.1", 1000, 30 },
		{ "10.0.0.2", 1000, 10 },
		{ "10.0.0.3", 1000, 50 },
		{ "10.0.0.2", 2000, 20 },
		{ "::1", 1000, 40 },
	};
	static const char *order[] = { "10.0.0.2:1000", "10.0.0.2:2000",
	    "10.0.0.1:1000", "[::1]:1000", "10.0.0.3:1000" };
	proto_peer_entry out[PROTO_PEER_TABLE_MAX + 1];
	proto_addr skip;
	char got[64];
	time_t now = time(NULL);
	size_t n;
	int bad;

	proto_peers_init(&table);
	is_int(proto_peers_list(&table, out, 8, NULL, NULL), 0,
	    "list empty table: 0");
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		add(in[i].host, in[i].port);
		table.peers[find(in[i].host, in[i].port)].seen = now - in[i].age;
	}
	heard(&table, "10.0.0.4", 1000);

	n = proto_peers_list(&table, out, 8, NULL, NULL);
	is_int(n, 5, "list: the 5 checked, not the one only heard");
	bad = 0;
	for (size_t i = 0; i < 5; i++) {
		int seen = 0;
		for (size_t k = 0; k < n; k++) {
			proto_addr a = at(out[k].host, out[k].port);
			seen += strcmp(proto_addr_text(&a), order[i]) == 0 &&
			    out[k].record == NULL;
		}
		if (seen != 1) {
			diag("%s listed %d times", order[i], seen);
			bad++;
		}
	}
	is_int(bad, 0, "list: each checked entry once, no records");
	bad = 0;
	for (size_t i = 0; i < n; i++)
		if (out[i].host_len != strlen(out[i].host) ||
		    (const char *)out[i].host < (const char *)&table ||
		    (const char *)out[i].host >= (const char *)(&table + 1))
			bad++;
	is_int(bad, 0, "list: entries borrow from the table, host_len right");

	skip = at("10.0.0.2", 1000);
	n = proto_peers_list(&table, out, 8, &skip, NULL);
	is_int(n, 4, "list skip: asker 10.0.0.2:1000 left out");
	bad = 1;
	for (size_t k = 0; k < n; k++)
		if (out[k].port == 2000 && memcmp(out[k].host, "10.0.0.2",
		    8) == 0)
			bad = 0;
	ok(!bad, "list skip: same host, other port is kept");
	skip = at("::1", 1000);
	is_int(proto_peers_list(&table, out, 8, &skip, NULL), 4,
	    "list skip: IPv6 asker left out");
	skip = at("10.0.0.3", 1001);
	is_int(proto_peers_list(&table, out, 8, &skip, NULL), 5,
	    "list skip: asker's host with another port skips nothing");
	n = proto_peers_list(&table, out, 2, NULL, NULL);
	ok(n == 2 && (out[0].port != out[1].port ||
	    strcmp(out[0].host, out[1].host) != 0), "list max 2: 2 of them");
	memset(out, 0, sizeof(out));
	is_int(proto_peers_list(&table, out, 0, NULL, NULL), 0,
	    "list max 0: nothing");
	ok(out[0].host == NULL, "list max 0: out untouched");

	/* A full table, listed whole. */
	proto_peers_init(&table);
	for (unsigned i = 0; i < PROTO_PEER_TABLE_MAX; i++) {
		snprintf(got, sizeof(got), "10.3.%u.%u", i / 256, i % 256);
		add(got, 6000);
		table.peers[i].seen = now - (time_t)((i * 7919u) % 1009u);
	}
	n = proto_peers_list(&table, out, PROTO_PEER_TABLE_MAX + 1, NULL,
	    NULL);
	is_int(n, PROTO_PEER_TABLE_MAX, "list full table: all 256");
	bad = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++)
			bad += out[i].host == out[k].host;
	is_int(bad, 0, "list full table: each entry once");
	/* A uniform sample, not the newest: asked 2000 times for 8 of the
	 * 256, every entry is given at some time (each is missed every time
	 * with a chance of about e^-62), and none much more than its share
	 * (8 * 2000 / 256 = 62.5; e^-50 or less of 200 times). */
	{
		static unsigned count[PROTO_PEER_TABLE_MAX];
		unsigned never = 0, most = 0;
		memset(count, 0, sizeof(count));
		for (int r = 0; r < 2000; r++) {
			n = proto_peers_list(&table, out, 8, NULL, NULL);
			for (size_t i = 0; i < n; i++) {
				int a = find(out[i].host, 6000);
				if (a >= 0)
					count[a]++;
			}
		}
		for (unsigned i = 0; i < PROTO_PEER_TABLE_MAX; i++) {
			never += count[i] == 0;
			most = count[i] > most ? count[i] : most;
		}
		is_int(never, 0, "list 8 of 256, 2000 times: every entry given");
		ok(most < 200, "list 8 of 256, 2000 times: none given more "
		    "than 200 times (%u)", most);
	}
}

/* The content ids an entry holds, and PEERS asked about one. */
static void
test_holds(void)
{
	uint8_t x[PROTO_HASH_LEN], y[PROTO_HASH_LEN], ids[10][PROTO_HASH_LEN];
	proto_peer_entry out[8];
	proto_addr b = at("10.0.0.2", 1000);
	time_t now = time(NULL);
	const proto_known_peer *e;
	int first;

	memset(x, 'x', sizeof(x));
	memset(y, 'y', sizeof(y));
	proto_peers_init(&table);
	add("10.0.0.1", 1000);
	add("10.0.0.2", 1000);
	add("10.0.0.3", 1000);
	table.peers[0].seen = now - 10;
	table.peers[1].seen = now - 30; /* the oldest */
	table.peers[2].seen = now - 20;
	is_int(proto_peers_holds(&table, &b, x), 0, "holds: 10.0.0.2 has X");
	is_int(proto_peers_list(&table, out, 8, NULL, x), 3,
	    "list for X: all three");
	ok(out[0].host_len == 8 && memcmp(out[0].host, "10.0.0.2", 8) == 0,
	    "list for X: its holder first, though seen longest ago");
	ok(memcmp(out[1].host, "10.0.0.2", 8) != 0 &&
	    memcmp(out[2].host, "10.0.0.2", 8) != 0 &&
	    memcmp(out[1].host, out[2].host, 8) != 0,
	    "list for X: then the others");
	is_int(proto_peers_list(&table, out, 1, NULL, x), 1,
	    "list for X, max 1: ...");
	ok(memcmp(out[0].host, "10.0.0.2", 8) == 0, "... the holder");

	for (int i = 0; i < 10; i++)
		memset(ids[i], i, PROTO_HASH_LEN);
	for (int i = 0; i < 10; i++)
		proto_peers_holds(&table, &b, ids[i]);
	e = proto_peers_find(&table, &b);
	is_int(e->nids, PROTO_PEER_IDS_MAX, "holds: at most 8 ids kept");
	ok(memcmp(e->ids[0], ids[9], PROTO_HASH_LEN) == 0 &&
	    memcmp(e->ids[7], ids[2], PROTO_HASH_LEN) == 0,
	    "holds: the 8 most recent, newest first");
	proto_peers_list(&table, out, 8, NULL, x);
	first = memcmp(out[0].host, "10.0.0.2", 8) == 0;
	ok(!first, "holds: X, learned longest ago, went");
	proto_peers_holds(&table, &b, ids[5]);
	ok(e->nids == 8 && memcmp(e->ids[0], ids[5], PROTO_HASH_LEN) == 0 &&
	    memcmp(e->ids[7], ids[2], PROTO_HASH_LEN) == 0,
	    "holds: an id held again moves first, nothing dropped");
}

/* One host cannot fill the table, however many ports it has. */
static void
test_per_host(void)
{
	char host[64];
	int bad = 0;

	proto_peers_init(&table);
	for (unsigned i = 0; i < 100; i++) {
		snprintf(host, sizeof(host), "10.5.0.%u", i);
		add(host, 7000);
	}
	for (unsigned port = 1; port <= 256; port++) {
		if (add("10.9.9.9", (uint16_t)port) != 0)
			bad++;
		else
			table.peers[find("10.9.9.9", (uint16_t)port)].seen =
			    time(NULL) - 1000 + (time_t)port;
	}
	is_int(bad, 0, "one host, 256 ports, first-hand: each taken ...");
	is_int(count_host(&table, "10.9.9.9"), PROTO_PEERS_PER_HOST,
	    "... but only 4 entries at that host");
	is_int(table.count, 104, "... the other 100 all still there");
	ok(find("10.9.9.9", 256) >= 0 && find("10.9.9.9", 253) >= 0 &&
	    find("10.9.9.9", 252) < 0, "... the 4 newest of its kept");

	for (unsigned port = 1000; port < 1256; port++)
		heard(&table, "10.8.8.8", (uint16_t)port);
	is_int(count_host(&table, "10.8.8.8"), PROTO_PEERS_PER_HOST,
	    "one host, 256 ports heard: 4 entries");
	is_int(heard(&table, "10.9.9.9", 9), PROTO_ERR_TOO_BIG,
	    "hearsay at a host full of checked entries: TOO_BIG");
	is_int(count_host(&table, "10.9.9.9"), 4, "... its 4 stay");

	for (unsigned i = 1; i <= 256; i++) {
		snprintf(host, sizeof(host), "2001:db8::%x", i);
		add(host, 7000);
	}
	bad = 0;
	for (size_t i = 0; i < table.count; i++)
		bad += strncmp(table.peers[i].host, "2001:db8::", 10) == 0;
	is_int(bad, 4, "one IPv6 /64, 256 addresses: 4 entries");
	is_int(add("2001:db8:0:1::1", 7000), 0,
	    "another /64 is another host");

	/* The nodes of this host seen first-hand: all of them. */
	proto_peers_init(&table);
	for (unsigned port = 1; port <= 100; port++)
		add("127.0.0.1", (uint16_t)port);
	is_int(table.count, 100,
	    "loopback, 100 ports first-hand: all kept (this host's nodes)");
	for (unsigned port = 101; port <= 200; port++)
		heard(&table, "127.0.0.1", (uint16_t)port);
	is_int(table.count, 104, "loopback hearsay: 4 more at most");
}

static void
test_expiry(void)
{
	proto_peer_entry out[8];
	time_t now = time(NULL);
	int i;

	proto_peers_init(&table);
	add("10.0.0.1", 1);
	add("10.0.0.2", 1);
	table.peers[0].seen = now - PROTO_PEERS_EXPIRY - 5;
	table.peers[1].seen = now - PROTO_PEERS_EXPIRY + 60;
	is_int(proto_peers_list(&table, out, 8, NULL, NULL), 1,
	    "expiry: an entry not seen for longer is not listed");
	add("10.0.0.3", 1);
	is_int(find("10.0.0.1", 1), -1, "expiry: ... and gone at the next add");
	ok(find("10.0.0.2", 1) >= 0, "expiry: seen within it: kept");
	is_int(proto_peers_expire(&table, now + 61), 1,
	    "expire: 61 s later, the second goes too");

	/* Hearsay heard again is not seen again. */
	proto_peers_init(&table);
	heard(&table, "10.0.0.7", 1);
	i = find("10.0.0.7", 1);
	table.peers[i].seen = now - 1000;
	is_int(heard(&table, "10.0.0.7", 1), 1, "heard again: still unchecked");
	ok(table.peers[i].seen == now - 1000,
	    "heard again: its last seen is kept, not made now");
	table.peers[i].seen = now - PROTO_PEERS_EXPIRY - 1;
	heard(&table, "10.0.0.7", 1);
	is_int(table.count, 1, "heard again once expired: a new entry ...");
	ok(table.peers[0].seen >= now, "... heard now");
	add("10.0.0.7", 1);
	table.peers[0].seen = now - 1000;
	heard(&table, "10.0.0.7", 1);
	ok(table.peers[0].seen == now - 1000,
	    "checked, then heard again: not seen again either");
}

static void
test_heard(void)
{
	static proto_peer_table t;
	proto_peer_entry out[PROTO_PEER_TABLE_MAX];
	proto_addr a = at("10.0.0.1", 7000);
	char host[32];

	proto_peers_init(&t);
	is_int(heard(&t, "10.0.0.1", 7000), 1, "heard: new -> 1 (worth "
	    "checking)");
	is_int(heard(&t, "10.0.0.1", 7000), 1, "heard again, still unchecked "
	    "-> 1");
	is_int((int)t.count, 1, "heard: kept once");
	is_int((int)proto_peers_list(&t, out, 64, NULL, NULL), 0,
	    "heard: not listed before it is checked");
	is_int(proto_peers_add(&t, &a, NULL, NULL, 0), 0, "heard: checked");
	is_int((int)proto_peers_list(&t, out, 64, NULL, NULL), 1,
	    "heard: listed once checked");
	is_int(heard(&t, "10.0.0.1", 7000), 0, "heard after checked -> 0");

	/* A checked entry makes room from the unchecked first. */
	proto_peers_init(&t);
	heard(&t, "10.3.0.1", 9000);
	for (unsigned i = 1; i < PROTO_PEER_TABLE_MAX; i++) {
		proto_addr b;
		snprintf(host, sizeof(host), "10.1.%u.%u", i / 256, i % 256);
		b = at(host, 8000);
		proto_peers_add(&t, &b, NULL, NULL, 0);
	}
	t.peers[0].seen += 1000; /* the heard one is the newest */
	a = at("10.4.0.1", 8000);
	is_int(proto_peers_add(&t, &a, NULL, NULL, 0), 0,
	    "full with one heard: a checked one enters");
	is_int((int)proto_peers_list(&t, out, PROTO_PEER_TABLE_MAX, NULL,
	    NULL), PROTO_PEER_TABLE_MAX, "full: the heard one made room");
	is_int(heard(&t, "10.3.0.1", 9000), PROTO_ERR_TOO_BIG,
	    "full: the heard one is gone, no room for it now");
}

/* A record of key saying addr, with seq and exp. */
static size_t
record(proto_identity *key, const char *host, uint16_t port, uint64_t seq,
    uint64_t exp, uint8_t out[PROTO_RECORD_MAX])
{
	proto_record r;
	size_t len = 0;

	memset(&r, 0, sizeof(r));
	r.addrs[0] = at(host, port);
	r.naddrs = 1;
	r.seq = seq;
	r.exp = exp;
	r.flags = PROTO_RECORD_REACHABLE;
	if (proto_record_sign(&r, key, out, &len) != 0)
		exit(2);
	return len;
}

static void
test_records(void)
{
	uint8_t ra[PROTO_RECORD_MAX], rb[PROTO_RECORD_MAX];
	uint8_t r5[PROTO_RECORD_MAX], r3[PROTO_RECORD_MAX], r7[PROTO_RECORD_MAX];
	const uint8_t *ida = proto_identity_id(key_a);
	const uint8_t *idb = proto_identity_id(key_b);
	proto_addr a = at("10.0.0.1", 7000), c = at("10.0.0.3", 7000);
	uint64_t exp = (uint64_t)time(NULL) + 3600;
	proto_peer_entry out[8];
	const proto_known_peer *e;
	size_t la, lb, l5, l3, l7;

	la = record(key_a, "10.0.0.1", 7000, 10, exp, ra);
	lb = record(key_b, "10.0.0.1", 7000, 10, exp, rb);
	proto_peers_init(&table);
	is_int(proto_peers_heard(&table, &a, ra, la), 1,
	    "signed hearsay: entered (unchecked: worth checking)");
	e = proto_peers_find(&table, &a);
	ok(e != NULL && e->record_len == la && e->addr.has_pin &&
	    memcmp(e->addr.pin, ida, PROTO_IDENTITY_LEN) == 0,
	    "signed hearsay: the record kept, the address pinned to it");
	is_int(proto_peers_list(&table, out, 8, NULL, NULL), 1,
	    "signed hearsay: passed on ...");
	ok(out[0].record == e->record && out[0].record_len == la,
	    "... with its record");

	/* Records that say nothing of this address, or say it falsely. */
	is_int(proto_peers_heard(&table, &c, ra, la), 1,
	    "a record that does not list the address: ...");
	e = proto_peers_find(&table, &c);
	ok(e->record_len == 0 && !e->addr.has_pin, "... the entry is unsigned");
	is_int(proto_peers_list(&table, out, 8, NULL, NULL), 1,
	    "... and not passed on");
	memcpy(rb, ra, la);
	rb[la - 1] ^= 1;
	proto_peers_heard(&table, &c, rb, la);
	ok(proto_peers_find(&table, &c)->record_len == 0,
	    "a record with a bad signature: unsigned");

	/* The highest seq wins; a replayed old record changes nothing. */
	proto_peers_init(&table);
	l5 = record(key_a, "10.0.0.1", 7000, 5, exp, r5);
	l3 = record(key_a, "10.0.0.1", 7000, 3, exp, r3);
	l7 = record(key_a, "10.0.0.1", 7000, 7, exp, r7);
	proto_peers_heard(&table, &a, r5, l5);
	proto_peers_heard(&table, &a, r3, l3);
	e = proto_peers_find(&table, &a);
	ok(e->seq == 5 && memcmp(e->record, r5, l5) == 0,
	    "seq: 3 after 5 is an old record: 5 kept");
	proto_peers_heard(&table, &a, r7, l7);
	ok(e->seq == 7 && memcmp(e->record, r7, l7) == 0,
	    "seq: 7 after 5: 7 taken");
	proto_peers_add(&table, &a, ida, r3, l3);
	ok(e->seq == 7, "seq: 3 first-hand after 7: still 7");

	/* Another identity for the same address. */
	lb = record(key_b, "10.0.0.1", 7000, 100, exp, rb);
	proto_peers_heard(&table, &a, rb, lb);
	ok(memcmp(e->addr.pin, ida, PROTO_IDENTITY_LEN) == 0,
	    "hearsay of B's record at A's address: A kept");
	proto_peers_add(&table, &a, ida, rb, lb);
	ok(memcmp(e->addr.pin, ida, PROTO_IDENTITY_LEN) == 0 && e->seq == 7,
	    "first-hand, A there (TLS), B's record: refused, A kept");
	proto_peers_add(&table, &a, idb, rb, lb);
	ok(memcmp(e->addr.pin, idb, PROTO_IDENTITY_LEN) == 0 && e->seq == 100,
	    "first-hand, B there (TLS) with its record: B now");
	proto_peers_add(&table, &a, ida, NULL, 0);
	ok(e->record_len == 0 && !e->addr.has_pin,
	    "first-hand, A there without a record: B's record dropped");
	proto_peers_heard(&table, &a, rb, lb);
	ok(e->record_len == 0, "... and B's record, heard, is not taken: "
	    "A was seen there");
	proto_peers_heard(&table, &a, ra, la);
	ok(e->record_len == la && memcmp(e->addr.pin, ida,
	    PROTO_IDENTITY_LEN) == 0, "... A's own record, heard, is");

	/* Expired records. */
	proto_peers_init(&table);
	la = record(key_a, "10.0.0.1", 7000, 1,
	    (uint64_t)time(NULL) - PROTO_RECORD_SKEW - 1, ra);
	proto_peers_heard(&table, &a, ra, la);
	ok(proto_peers_find(&table, &a)->record_len == 0,
	    "an expired record: not taken");
	la = record(key_a, "10.0.0.1", 7000, 1, exp, ra);
	proto_peers_heard(&table, &a, ra, la);
	table.peers[0].exp = (uint64_t)time(NULL) - PROTO_RECORD_SKEW - 1;
	is_int(proto_peers_list(&table, out, 8, NULL, NULL), 0,
	    "a record that expired while kept: no longer passed on");
	proto_peers_expire(&table, time(NULL));
	ok(table.count == 1 && table.peers[0].record_len == 0 &&
	    !table.peers[0].addr.has_pin,
	    "... and dropped at the next expiry, the entry unsigned");
}

static void
test_host_port(void)
{
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage un;
	char host[PROTO_HOST_MAX + 1];
	uint16_t port;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_port = htons(8080);
	inet_pton(AF_INET, "10.0.0.5", &in.sin_addr);
	ok(proto_peers_host_port((struct sockaddr *)&in, host, &port) == 0 &&
	    strcmp(host, "10.0.0.5") == 0 && port == 8080,
	    "host_port: an IPv4 address and its port");
	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	in6.sin6_port = htons(7000);
	inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
	ok(proto_peers_host_port((struct sockaddr *)&in6, host, &port) == 0 &&
	    strcmp(host, "fe80::1") == 0 && port == 7000,
	    "host_port: an IPv6 address, without brackets");
	memset(&un, 0, sizeof(un));
	un.ss_family = AF_UNIX;
	ok(proto_peers_host_port((struct sockaddr *)&un, host, &port) ==
	    PROTO_ERR_INVALID && strcmp(host, "?") == 0 && port == 0,
	    "host_port: another family is INVALID, host '?'");
}

static void
make_keys(void)
{
	char dir[] = "/tmp/test_peers.XXXXXX", pa[64], pb[64];

	if (mkdtemp(dir) == NULL)
		exit(2);
	snprintf(pa, sizeof(pa), "%s/a.pem", dir);
	snprintf(pb, sizeof(pb), "%s/b.pem", dir);
	if (proto_identity_load(pa, 1, &key_a) != 0 ||
	    proto_identity_load(pb, 1, &key_b) != 0)
		exit(2);
	unlink(pa);
	unlink(pb);
	rmdir(dir);
}

int
main(void)
{
	make_keys();
	test_add();
	test_full();
	test_list();
	test_holds();
	test_per_host();
	test_expiry();
	test_heard();
	test_records();
	test_host_port();
	proto_identity_free(key_a);
	proto_identity_free(key_b);
	return done_testing();
}
