/*
 * peers.c: the known-peers table. Adding and refreshing, what counts as a
 * host, eviction when full, and listing newest first without the asker.
 * Ages are made distinct by writing .seen directly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "proto.h"
#include "tap.h"

static proto_peer_table table;

static int
add(const char *host, uint16_t port)
{
	return proto_peers_add(&table, host, strlen(host), port);
}

/* Index of host:port in the table, or -1. */
static int
find(const char *host, uint16_t port)
{
	for (size_t i = 0; i < table.count; i++)
		if (table.peers[i].port == port &&
		    strcmp(table.peers[i].host, host) == 0)
			return (int)i;
	return -1;
}

static void
test_add(void)
{
	char buf[80];
	time_t before;
	int i;

	memset(&table, 0xa5, sizeof(table));
	proto_peers_init(&table);
	is_int(table.count, 0, "init: empty table");

	before = time(NULL);
	is_int(add("10.0.0.1", 9000), 0, "add: IPv4 address");
	is_int(table.count, 1, "add: count 1");
	is_str(table.peers[0].host, "10.0.0.1", "add: host stored");
	is_int(table.peers[0].port, 9000, "add: port stored");
	ok(table.peers[0].seen >= before && table.peers[0].seen <= time(NULL),
	    "add: seen is now");

	table.peers[0].seen = 1000;
	is_int(add("10.0.0.1", 9000), 0, "add dedupe: same host:port again");
	is_int(table.count, 1, "add dedupe: still one entry");
	ok(table.peers[0].seen >= before,
	    "add dedupe: same host:port refreshes seen (was 1000, now %lld)",
	    (long long)table.peers[0].seen);

	is_int(add("10.0.0.1", 9001), 0, "add: same host, other port");
	is_int(add("10.0.0.2", 9000), 0, "add: other host, same port");
	is_int(table.count, 3, "add: both are new entries");

	/* Wire strings are not NUL-terminated: host_len rules. */
	is_int(proto_peers_add(&table, "10.0.0.3xyz", 8, 7000), 0,
	    "add host_len: 8 bytes of \"10.0.0.3xyz\" is 10.0.0.3");
	ok(find("10.0.0.3", 7000) >= 0, "add host_len: stored as 10.0.0.3");
	is_int(table.count, 4, "add host_len: count 4");

	is_int(add("example.com", 80), PROTO_ERR_INVALID,
	    "add non-address: example.com -> INVALID");
	is_int(add("localhost", 80), PROTO_ERR_INVALID,
	    "add non-address: localhost -> INVALID");
	is_int(add("", 80), PROTO_ERR_INVALID, "add non-address: \"\" -> INVALID");
	is_int(proto_peers_add(&table, "10.0.0.9", 0, 80), PROTO_ERR_INVALID,
	    "add non-address: host_len 0 -> INVALID");
	is_int(add("10.0.0", 80), PROTO_ERR_INVALID,
	    "add non-address: 10.0.0 -> INVALID");
	is_int(add("10.0.0.256", 80), PROTO_ERR_INVALID,
	    "add non-address: 10.0.0.256 -> INVALID");
	is_int(add(" 10.0.0.1", 80), PROTO_ERR_INVALID,
	    "add non-address: leading space -> INVALID");
	is_int(add("10.0.0.1:80", 80), PROTO_ERR_INVALID,
	    "add non-address: host:port text -> INVALID");
	is_int(add("[::1]", 80), PROTO_ERR_INVALID,
	    "add non-address: bracketed [::1] -> INVALID");
	memset(buf, 'a', sizeof(buf));
	is_int(proto_peers_add(&table, buf, 65, 80), PROTO_ERR_INVALID,
	    "add host too long: 65 bytes -> INVALID");
	is_int(proto_peers_add(&table, buf, 64, 80), PROTO_ERR_INVALID,
	    "add host exact limit: 64 bytes of 'a' -> INVALID (not an address)");
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "10.0.0.8", 8);
	is_int(proto_peers_add(&table, buf, 65, 80), PROTO_ERR_INVALID,
	    "add host too long: 65 bytes, an address then NULs -> INVALID");
	is_int(add("10.0.0.5", 0), PROTO_ERR_INVALID, "add port 0 -> INVALID");
	is_int(find("10.0.0.5", 0), -1, "add port 0: not entered");
	is_int(table.count, 4, "add rejects: count unchanged at 4");

	is_int(add("::1", 9000), 0, "add IPv6: ::1 accepted");
	is_int(add("2001:db8::1", 9000), 0, "add IPv6: 2001:db8::1 accepted");
	is_int(add("fe80::aaaa:bbbb:cccc:dddd", 9000), 0,
	    "add IPv6: fe80::aaaa:bbbb:cccc:dddd accepted");
	is_int(add("::ffff:10.0.0.1", 9000), 0,
	    "add IPv6: v4-mapped ::ffff:10.0.0.1 accepted");
	is_int(add("0000:0000:0000:0000:0000:ffff:255.255.255.255", 1), 0,
	    "add IPv6: longest text form (45 bytes) accepted");
	ok((i = find("2001:db8::1", 9000)) >= 0, "add IPv6: entry found");
	is_int(table.count, 9, "add IPv6: count 9");
	is_int(add("::1", 9000), 0, "add IPv6 dedupe: ::1 again");
	is_int(table.count, 9, "add IPv6 dedupe: count still 9");
	is_int(add("65535", 1), PROTO_ERR_INVALID,
	    "add non-address: bare number -> INVALID");
}

/* host_len bytes, not a C string: a NUL inside is not part of an address
 * (hosts in PEERS_REPLY come from the wire). Own table, so that a failure
 * here does not shift the counts of the other cases. */
static void
test_embedded_nul(void)
{
	proto_peers_init(&table);
	is_int(proto_peers_add(&table, "10.0.0.8\0xy", 11, 80),
	    PROTO_ERR_INVALID,
	    "add embedded NUL: \"10.0.0.8\\0xy\" (11 bytes) -> INVALID");
	is_int(table.count, 0, "add embedded NUL: nothing entered");
	is_int(proto_peers_add(&table, "10.0.0.8\0", 9, 80), PROTO_ERR_INVALID,
	    "add embedded NUL: trailing NUL inside host_len -> INVALID");
}

static void
test_full(void)
{
	char host[32];
	int bad = 0, victim;

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
		table.peers[i].seen = 1000000 + (time_t)i;
	victim = find("10.1.0.100", 5000);
	table.peers[victim].seen = 5;

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
	ok(find("10.1.0.1", 5000) >= 0, "full again: 10.1.0.1 is kept");

	table.peers[find("10.1.0.1", 5000)].seen = 1;
	is_int(add("10.1.0.200", 5000), 0, "full refresh: an existing peer");
	ok(find("10.1.0.1", 5000) >= 0,
	    "full refresh: nothing evicted for a known peer");
	is_int(table.count, PROTO_PEER_TABLE_MAX, "full refresh: count at max");

	is_int(add("example.com", 5000), PROTO_ERR_INVALID,
	    "full: a non-address is still rejected");
	ok(find("10.1.0.1", 5000) >= 0,
	    "full: a rejected host evicts nothing");
}

static void
test_list(void)
{
	static const struct {
		const char *host;
		uint16_t port;
		time_t seen;
	} in[] = {
		{ "10.0.0.1", 1000, 30 },
		{ "10.0.0.2", 1000, 50 },
		{ "10.0.0.3", 1000, 10 },
		{ "10.0.0.2", 2000, 40 },
		{ "::1", 1000, 20 },
	};
	static const char *order[] = { "10.0.0.2:1000", "10.0.0.2:2000",
	    "10.0.0.1:1000", "::1:1000", "10.0.0.3:1000" };
	proto_peer_entry out[PROTO_PEER_TABLE_MAX + 1];
	char got[64];
	size_t n;
	int bad;

	proto_peers_init(&table);
	is_int(proto_peers_list(&table, out, 8, NULL, 0), 0,
	    "list empty table: 0");
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		add(in[i].host, in[i].port);
		table.peers[find(in[i].host, in[i].port)].seen = in[i].seen;
	}

	n = proto_peers_list(&table, out, 8, NULL, 0);
	is_int(n, 5, "list: all 5 without an asker");
	bad = 0;
	for (size_t i = 0; i < n && i < 5; i++) {
		snprintf(got, sizeof(got), "%.*s:%u", (int)out[i].host_len,
		    out[i].host, out[i].port);
		if (strcmp(got, order[i]) != 0) {
			diag("list[%zu] is %s, expected %s", i, got, order[i]);
			bad++;
		}
	}
	is_int(bad, 0, "list: newest first");
	bad = 0;
	for (size_t i = 0; i < n; i++)
		if (out[i].host_len != strlen(out[i].host) ||
		    (const char *)out[i].host < (const char *)&table ||
		    (const char *)out[i].host >= (const char *)(&table + 1))
			bad++;
	is_int(bad, 0, "list: entries borrow from the table, host_len right");

	n = proto_peers_list(&table, out, 8, "10.0.0.2", 1000);
	is_int(n, 4, "list skip: asker 10.0.0.2:1000 left out");
	bad = 0;
	for (size_t i = 0; i < n; i++)
		if (out[i].port == 1000 && out[i].host_len == 8 &&
		    memcmp(out[i].host, "10.0.0.2", 8) == 0)
			bad++;
	is_int(bad, 0, "list skip: asker not among them");
	ok(n >= 1 && out[0].port == 2000 && memcmp(out[0].host, "10.0.0.2",
	    8) == 0, "list skip: same host, other port is kept and first");
	is_int(proto_peers_list(&table, out, 8, "10.0.0.9", 1000), 5,
	    "list skip: unknown asker skips nothing");
	is_int(proto_peers_list(&table, out, 8, "::1", 1000), 4,
	    "list skip: IPv6 asker left out");
	is_int(proto_peers_list(&table, out, 8, "10.0.0.3", 1001), 5,
	    "list skip: asker's host with another port skips nothing");

	n = proto_peers_list(&table, out, 2, NULL, 0);
	is_int(n, 2, "list max: 2 honoured");
	ok(n == 2 && out[0].port == 1000 && out[1].port == 2000 &&
	    memcmp(out[0].host, "10.0.0.2", 8) == 0,
	    "list max: the 2 newest");
	memset(out, 0, sizeof(out));
	is_int(proto_peers_list(&table, out, 0, NULL, 0), 0,
	    "list max 0: nothing");
	ok(out[0].host == NULL, "list max 0: out untouched");
	n = proto_peers_list(&table, out, 2, "10.0.0.2", 1000);
	is_int(n, 2, "list max with skip: still 2");
	ok(n == 2 && out[0].port == 2000 && memcmp(out[1].host, "10.0.0.1",
	    8) == 0, "list max with skip: the 2 newest others");
	is_int(proto_peers_list(&table, out, 5, NULL, 0), 5,
	    "list max exact: max == count");

	/* A full table, listed whole. */
	proto_peers_init(&table);
	for (unsigned i = 0; i < PROTO_PEER_TABLE_MAX; i++) {
		snprintf(got, sizeof(got), "10.3.%u.%u", i / 256, i % 256);
		add(got, 6000);
		table.peers[i].seen = (time_t)((i * 7919u) % 1009u);
	}
	n = proto_peers_list(&table, out, PROTO_PEER_TABLE_MAX + 1, NULL, 0);
	is_int(n, PROTO_PEER_TABLE_MAX, "list full table: all 256");
	bad = 0;
	for (size_t i = 1; i < n; i++) {
		int a = find(out[i - 1].host, 6000), b = find(out[i].host, 6000);
		if (a < 0 || b < 0 || table.peers[a].seen < table.peers[b].seen)
			bad++;
	}
	is_int(bad, 0, "list full table: newest first throughout");
	is_int(proto_peers_list(&table, out, PROTO_PEER_TABLE_MAX, "10.3.0.7",
	    6000), PROTO_PEER_TABLE_MAX - 1, "list full table: asker skipped");
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
test_heard(void)
{
	static proto_peer_table t;
	proto_peer_entry out[PROTO_PEER_TABLE_MAX];
	char host[32];

	proto_peers_init(&t);
	is_int(proto_peers_heard(&t, "10.0.0.1", 8, 7000), 1,
	    "heard: new -> 1 (worth checking)");
	is_int(proto_peers_heard(&t, "10.0.0.1", 8, 7000), 1,
	    "heard again, still unchecked -> 1");
	is_int((int)t.count, 1, "heard: kept once");
	is_int((int)proto_peers_list(&t, out, 64, NULL, 0), 0,
	    "heard: not listed before it is checked");
	is_int(proto_peers_add(&t, "10.0.0.1", 8, 7000), 0, "heard: checked");
	is_int((int)proto_peers_list(&t, out, 64, NULL, 0), 1,
	    "heard: listed once checked");
	is_int(proto_peers_heard(&t, "10.0.0.1", 8, 7000), 0,
	    "heard after checked -> 0, stays checked");
	is_int((int)proto_peers_list(&t, out, 64, NULL, 0), 1,
	    "heard after checked: still listed");
	is_int(proto_peers_heard(&t, "host", 4, 7000), PROTO_ERR_INVALID,
	    "heard: a name -> INVALID");

	/* Hearsay never pushes out a node that answered. */
	proto_peers_init(&t);
	for (unsigned i = 0; i < PROTO_PEER_TABLE_MAX; i++) {
		snprintf(host, sizeof(host), "10.1.%u.%u", i / 256, i % 256);
		proto_peers_add(&t, host, strlen(host), 8000);
	}
	is_int(proto_peers_heard(&t, "10.2.0.1", 8, 8000), PROTO_ERR_TOO_BIG,
	    "heard, table full of checked entries -> TOO_BIG");
	is_int((int)proto_peers_list(&t, out, PROTO_PEER_TABLE_MAX, NULL, 0),
	    PROTO_PEER_TABLE_MAX, "heard: every checked entry still listed");
	/* A checked entry makes room from the unchecked first. */
	proto_peers_init(&t);
	proto_peers_heard(&t, "10.3.0.1", 8, 9000);
	for (unsigned i = 1; i < PROTO_PEER_TABLE_MAX; i++) {
		snprintf(host, sizeof(host), "10.1.%u.%u", i / 256, i % 256);
		proto_peers_add(&t, host, strlen(host), 8000);
	}
	t.peers[0].seen += 1000; /* the heard one is the newest */
	is_int(proto_peers_add(&t, "10.4.0.1", 8, 8000), 0,
	    "full with one heard: a checked one enters");
	is_int((int)proto_peers_list(&t, out, PROTO_PEER_TABLE_MAX, NULL, 0),
	    PROTO_PEER_TABLE_MAX, "full: the heard one made room, newest "
	    "as it was");
	is_int(proto_peers_heard(&t, "10.3.0.1", 8, 9000), PROTO_ERR_TOO_BIG,
	    "full: the heard one is gone, no room for it now");
}

int
main(void)
{
	test_add();
	test_embedded_nul();
	test_full();
	test_list();
	test_host_port();
	test_heard();
	return done_testing();
}
