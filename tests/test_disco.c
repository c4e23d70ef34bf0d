/*
 * disco.c: discovery datagrams packed and unpacked, the padding and size
 * limits that keep answers from amplifying, malformed and random input, and
 * the broadcast targets. Every datagram is unpacked from a heap buffer of
 * exactly its length so that a read past the end shows up under
 * AddressSanitizer.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "tap.h"

/* A datagram built by hand, byte by byte. */
struct dgram {
	uint8_t b[1024];
	size_t n;
};

static void
put(struct dgram *d, const void *p, size_t len)
{
	if (d->n + len > sizeof(d->b))
		exit(2);
	memcpy(d->b + d->n, p, len);
	d->n += len;
}

static void
put_u8(struct dgram *d, uint8_t v)
{
	put(d, &v, 1);
}

static void
put_be(struct dgram *d, uint64_t v, unsigned bytes)
{
	while (bytes-- > 0)
		put_u8(d, (uint8_t)(v >> (8 * bytes)));
}

/* A fixarray header and the magic, version and type. */
static void
head(struct dgram *d, unsigned items, unsigned version, unsigned type)
{
	d->n = 0;
	put_u8(d, (uint8_t)(0x90 | items));
	put(d, "\xa4mp2p", 5);
	put_u8(d, (uint8_t)version);
	put_u8(d, (uint8_t)type);
}

/* A bin 8 of zeros making the datagram total bytes long (total >= n + 2). */
static void
pad_to(struct dgram *d, size_t total)
{
	size_t k = total - d->n - 2;

	put_u8(d, 0xc4);
	put_u8(d, (uint8_t)k);
	while (k-- > 0)
		put_u8(d, 0);
}

/* ["mp2p", version, 0, nonce (uint 32), nil, padding to total bytes] */
static void
query_v(struct dgram *d, unsigned version, size_t total)
{
	head(d, 6, version, PROTO_DISCO_QUERY);
	put_u8(d, 0xce);
	put_be(d, 7, 4);
	put_u8(d, 0xc0);
	pad_to(d, total);
}

/* ["mp2p", 1, 1, 0, 8080, "node", 3] */
static void
announce_v(struct dgram *d, unsigned version)
{
	head(d, 7, version, PROTO_DISCO_ANNOUNCE);
	put_u8(d, 0x00);
	put_u8(d, 0xcd);
	put_be(d, 8080, 2);
	put(d, "\xa4node", 5);
	put_u8(d, 0x03);
}

/* Unpacks a heap copy of exactly len bytes; the copy is freed. */
static int
unpack_len(const void *buf, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	proto_disco_msg m;
	int rc;

	if (copy == NULL)
		exit(2);
	if (len)
		memcpy(copy, buf, len);
	rc = proto_disco_unpack(copy, len, &m);
	free(copy);
	return rc;
}

static int
unpack_d(const struct dgram *d)
{
	return unpack_len(d->b, d->n);
}

static int
pack(const proto_disco_msg *m, struct dgram *d)
{
	d->n = 0;
	return proto_disco_pack(m, d->b, sizeof(d->b), &d->n);
}

static void
test_query_round_trip(void)
{
	static const uint8_t vector[12] = { 0x96, 0xa4, 'm', 'p', '2', 'p',
	    0x01, 0x00, 0x01, 0xc0, 0xc4, 0x34 };
	static const uint8_t zeros[64];
	uint8_t want[PROTO_HASH_LEN], *heap;
	proto_disco_msg m, u;
	struct dgram d;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_QUERY;
	m.nonce = 1;
	is_int(pack(&m, &d), 0, "query no want: pack succeeds");
	is_int(d.n, PROTO_DISCO_QUERY_MIN,
	    "query no want: padded to exactly PROTO_DISCO_QUERY_MIN");
	is_mem(d.b, vector, sizeof(vector),
	    "query no want: bytes match the PROTOCOL.md test vector");
	is_mem(d.b + 12, zeros, 52, "query no want: 52 bytes of zero padding");

	heap = malloc(d.n);
	if (heap == NULL)
		exit(2);
	memcpy(heap, d.b, d.n);
	is_int(proto_disco_unpack(heap, d.n, &u), 0,
	    "query no want: unpack succeeds");
	is_int(u.type, PROTO_DISCO_QUERY, "query no want: type QUERY");
	is_int(u.nonce, 1, "query no want: nonce round trips");
	ok(u.want == NULL, "query no want: want is NULL");
	free(heap);

	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(0xa0 + i);
	m.nonce = UINT32_MAX;
	m.want = want;
	is_int(pack(&m, &d), 0, "query want, nonce 2^32-1: pack succeeds");
	is_int(d.n, PROTO_DISCO_QUERY_MIN,
	    "query want, largest nonce: exactly PROTO_DISCO_QUERY_MIN bytes");
	heap = malloc(d.n);
	if (heap == NULL)
		exit(2);
	memcpy(heap, d.b, d.n);
	is_int(proto_disco_unpack(heap, d.n, &u), 0,
	    "query want: unpack succeeds");
	is_int(u.type, PROTO_DISCO_QUERY, "query want: type QUERY");
	is_int(u.nonce, UINT32_MAX, "query want: nonce 2^32-1 round trips");
	ok(u.want != NULL && u.want >= heap &&
	    u.want + PROTO_HASH_LEN <= heap + d.n,
	    "query want: want points into the datagram");
	if (u.want != NULL)
		is_mem(u.want, want, PROTO_HASH_LEN, "query want: id round trips");
	else
		ok(0, "query want: id round trips");
	free(heap);

	/* Every nonce size keeps the query at the minimum. */
	m.want = NULL;
	for (int with = 0; with < 2; with++) {
		static const uint32_t nonces[] = { 0, 127, 128, 255, 256,
		    65535, 65536, UINT32_MAX };
		int bad = 0;

		m.want = with ? want : NULL;
		for (size_t i = 0; i < sizeof(nonces) / sizeof(nonces[0]); i++) {
			m.nonce = nonces[i];
			if (pack(&m, &d) != 0 || d.n < PROTO_DISCO_QUERY_MIN ||
			    unpack_d(&d) != 0) {
				diag("nonce %u: %zu bytes", nonces[i], d.n);
				bad++;
			}
		}
		ok(bad == 0, "query min size: every nonce width, want %s, "
		    ">= PROTO_DISCO_QUERY_MIN and unpacks", with ? "set" : "nil");
	}

	m.want = NULL;
	m.nonce = 1;
	d.n = 0;
	is_int(proto_disco_pack(&m, d.b, PROTO_DISCO_QUERY_MIN - 1, &d.n),
	    PROTO_ERR_TOO_BIG, "query pack: cap one under 64 -> TOO_BIG");
	is_int(proto_disco_pack(&m, d.b, PROTO_DISCO_QUERY_MIN, &d.n), 0,
	    "query pack exact cap: 64");
	m.type = 2;
	is_int(pack(&m, &d), PROTO_ERR_INVALID, "pack: unknown type -> INVALID");
}

static void
test_announce_round_trip(void)
{
	static const uint8_t vector[15] = { 0x97, 0xa4, 'm', 'p', '2', 'p',
	    0x01, 0x01, 0x00, 0xcd, 0x1f, 0x90, 0xa1, 0x61, 0x01 };
	char name[200];
	proto_disco_msg m, u;
	struct dgram d;
	uint8_t *heap;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_ANNOUNCE;
	m.port = 8080;
	m.name = "a";
	m.name_len = 1;
	m.nfiles = 1;
	is_int(pack(&m, &d), 0, "announce: pack succeeds");
	is_int(d.n, sizeof(vector), "announce: 15 bytes");
	is_mem(d.b, vector, sizeof(vector),
	    "announce: bytes match the PROTOCOL.md test vector");

	m.nonce = 0xdeadbeef;
	m.port = 65535;
	m.name = "node-a";
	m.name_len = 6;
	m.nfiles = UINT64_MAX;
	is_int(pack(&m, &d), 0, "announce extremes: pack succeeds");
	heap = malloc(d.n);
	if (heap == NULL)
		exit(2);
	memcpy(heap, d.b, d.n);
	is_int(proto_disco_unpack(heap, d.n, &u), 0,
	    "announce extremes: unpack succeeds");
	is_int(u.type, PROTO_DISCO_ANNOUNCE, "announce: type ANNOUNCE");
	is_int(u.nonce, 0xdeadbeef, "announce: nonce round trips");
	is_int(u.port, 65535, "announce: port 65535 round trips");
	is_int(u.name_len, 6, "announce: name length round trips");
	ok(u.name != NULL && (const uint8_t *)u.name >= heap &&
	    (const uint8_t *)u.name + u.name_len <= heap + d.n,
	    "announce: name points into the datagram");
	if (u.name != NULL)
		is_mem(u.name, "node-a", 6, "announce: name round trips");
	else
		ok(0, "announce: name round trips");
	ok(u.nfiles == UINT64_MAX, "announce: nfiles 2^64-1 round trips");
	ok(u.want == NULL, "announce: want stays NULL");
	free(heap);

	m.name = NULL;
	m.name_len = 5;
	is_int(pack(&m, &d), 0, "announce NULL name: pack succeeds");
	is_int(unpack_d(&d), 0, "announce NULL name: unpacks");
	memset(&u, 0xff, sizeof(u));
	proto_disco_unpack(d.b, d.n, &u);
	is_int(u.name_len, 0, "announce NULL name: empty name");

	for (size_t i = 0; i < sizeof(name); i++)
		name[i] = (char)('a' + i % 26);
	m.name = name;
	m.name_len = sizeof(name);
	m.nonce = UINT32_MAX;
	is_int(pack(&m, &d), 0, "announce 200-byte name: pack succeeds");
	ok(d.n <= PROTO_DISCO_ANSWER_MAX,
	    "announce 200-byte name: %zu bytes <= PROTO_DISCO_ANSWER_MAX", d.n);
	is_int(d.n, 75, "announce largest: 75 bytes as PROTOCOL.md says");
	ok(d.n <= 2 * PROTO_DISCO_QUERY_MIN,
	    "announce largest: at most twice the smallest query");
	heap = malloc(d.n);
	if (heap == NULL)
		exit(2);
	memcpy(heap, d.b, d.n);
	is_int(proto_disco_unpack(heap, d.n, &u), 0,
	    "announce 200-byte name: unpack succeeds");
	is_int(u.name_len, PROTO_DISCO_NAME_MAX,
	    "announce 200-byte name: cut to PROTO_DISCO_NAME_MAX");
	if (u.name != NULL)
		is_mem(u.name, name, PROTO_DISCO_NAME_MAX,
		    "announce 200-byte name: the first 48 bytes kept");
	else
		ok(0, "announce 200-byte name: the first 48 bytes kept");
	free(heap);

	m.name_len = PROTO_DISCO_NAME_MAX;
	is_int(pack(&m, &d), 0, "announce name exact limit: 48 bytes packs");
	memset(&u, 0, sizeof(u));
	proto_disco_unpack(d.b, d.n, &u);
	is_int(u.name_len, PROTO_DISCO_NAME_MAX,
	    "announce name exact limit: 48 bytes unpacks whole");

	d.n = 0;
	is_int(proto_disco_pack(&m, d.b, 74, &d.n), PROTO_ERR_TOO_BIG,
	    "announce pack: cap one under 75 -> TOO_BIG");
}

/* Every prefix of a valid datagram is rejected; returns how many were not. */
static int
truncations(const struct dgram *d, const char *what)
{
	int bad = 0;

	for (size_t len = 0; len < d->n; len++) {
		int rc = unpack_len(d->b, len);
		if (rc != PROTO_ERR_MALFORMED) {
			if (bad == 0)
				diag("%s cut to %zu of %zu bytes: %d (%s)", what,
				    len, d->n, rc, proto_strerror(rc));
			bad++;
		}
	}
	return bad;
}

static void
test_truncated(void)
{
	uint8_t want[PROTO_HASH_LEN];
	proto_disco_msg m;
	struct dgram d;

	is_int(unpack_len("", 0), PROTO_ERR_MALFORMED,
	    "empty datagram -> MALFORMED");

	memset(want, 0x5a, sizeof(want));
	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_QUERY;
	m.nonce = 0x12345678;
	pack(&m, &d);
	is_int(unpack_d(&d), 0, "truncated query no want: whole one unpacks");
	is_int(truncations(&d, "query"), 0,
	    "truncated query no want: every prefix -> MALFORMED");
	m.want = want;
	pack(&m, &d);
	is_int(truncations(&d, "query want"), 0,
	    "truncated query want: every prefix -> MALFORMED");
	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_ANNOUNCE;
	m.nonce = 99;
	m.port = 4242;
	m.name = "some node";
	m.name_len = 9;
	m.nfiles = 1u << 20;
	pack(&m, &d);
	is_int(unpack_d(&d), 0, "truncated announce: whole one unpacks");
	is_int(truncations(&d, "announce"), 0,
	    "truncated announce: every prefix -> MALFORMED");
}

static void
test_malformed(void)
{
	struct dgram d;

	query_v(&d, 1, 64);
	is_int(unpack_d(&d), 0, "hand-made query: baseline unpacks");
	announce_v(&d, 1);
	is_int(unpack_d(&d), 0, "hand-made announce: baseline unpacks");

	/* Magic and version. */
	query_v(&d, 1, 64);
	d.b[5] = 'q';
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "wrong magic \"mp2q\" -> MALFORMED");
	announce_v(&d, 1);
	d.b[2] = 'M';
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "wrong magic \"Mp2p\" in announce -> MALFORMED");
	d.n = 0;
	put_u8(&d, 0x96);
	put(&d, "\xa3mp2", 4);
	put(&d, "\x01\x00\x07\xc0", 4);
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "magic of 3 bytes \"mp2\" -> MALFORMED");
	d.n = 0;
	put_u8(&d, 0x96);
	put(&d, "\xc4\x04mp2p", 6); /* a bin, not a str */
	put(&d, "\x01\x00\x07\xc0", 4);
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "magic as bin instead of str -> MALFORMED");
	query_v(&d, 2, 64);
	is_int(unpack_d(&d), PROTO_ERR_VERSION, "query version 2 -> VERSION");
	announce_v(&d, 2);
	is_int(unpack_d(&d), PROTO_ERR_VERSION,
	    "announce version 2 -> VERSION");
	query_v(&d, 0, 64);
	is_int(unpack_d(&d), PROTO_ERR_VERSION, "query version 0 -> VERSION");
	query_v(&d, 1, 64);
	d.b[6] = 0xc0; /* version nil */
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "version nil -> MALFORMED");

	/* Type. */
	head(&d, 7, 1, 2);
	put(&d, "\x00\xcd\x1f\x90\xa1\x61\x01", 7);
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED, "unknown type 2 -> MALFORMED");
	head(&d, 7, 1, 0x7f);
	put(&d, "\x00\xcd\x1f\x90\xa1\x61\x01", 7);
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "unknown type 127 -> MALFORMED");
	/* A type beyond 32 bits must not wrap to QUERY or ANNOUNCE. */
	head(&d, 6, 1, 0);
	d.n--;
	put_u8(&d, 0xcf);
	put_be(&d, (uint64_t)1 << 32, 8);
	put(&d, "\x07\xc0", 2);
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "type 2^32 (uint 64, query-shaped) -> MALFORMED");
	head(&d, 7, 1, 0);
	d.n--;
	put_u8(&d, 0xcf);
	put_be(&d, ((uint64_t)1 << 32) + 1, 8);
	put(&d, "\x00\xcd\x1f\x90\xa1\x61\x01", 7);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "type 2^32+1 (uint 64, announce-shaped) -> MALFORMED");
	query_v(&d, 1, 64);
	d.b[7] = 0xff; /* negative fixint -1 */
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "type -1 (negative fixint) -> MALFORMED");

	/* Element counts. */
	d.n = 0;
	put(&d, "\x93\xa4mp2p\x01\x00", 8);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "query of 3 elements -> MALFORMED");
	head(&d, 5, 1, 0);
	put_u8(&d, 0x07);
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "query of 5 elements, 64+ bytes -> MALFORMED");
	announce_v(&d, 1);
	d.b[0] = 0x96;
	d.n--;
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce of 6 elements -> MALFORMED");
	announce_v(&d, 1);
	d.b[0] = 0x98;
	put_u8(&d, 0x05);
	is_int(unpack_d(&d), 0,
	    "announce with one extra element: ignored, unpacks");
	announce_v(&d, 1);
	d.b[0] = 0x9f;
	put_u8(&d, 0x05);
	put(&d, "\xc4\x04\x7f\x00\x00\x01", 6);
	for (int i = 0; i < 6; i++)
		put_u8(&d, 0xc0);
	is_int(unpack_d(&d), 0, "announce of 15 elements (fixarray max)");
	announce_v(&d, 1);
	d.b[0] = 0x99;
	put_u8(&d, 0x05);
	put_u8(&d, 0xc0);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce of 9 elements, addr nil -> MALFORMED");
	announce_v(&d, 1);
	d.b[0] = 0x99;
	put_u8(&d, 0x05);
	put(&d, "\xc4\x03\x7f\x00\x00", 5);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce of 9 elements, addr of 3 bytes -> MALFORMED");
	announce_v(&d, 1);
	d.b[0] = 0x99;
	put(&d, "\xa1x", 2);
	put(&d, "\xc4\x04\x7f\x00\x00\x01", 6);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce of 9 elements, time a str -> MALFORMED");
	/* The same 16 elements as array 16. */
	announce_v(&d, 1);
	memmove(d.b + 3, d.b + 1, d.n - 1);
	d.b[0] = 0xdc;
	d.b[1] = 0x00;
	d.b[2] = 0x10;
	d.n += 2;
	for (int i = 0; i < 9; i++)
		put_u8(&d, 0xc0);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce of 16 elements (array 16) -> MALFORMED");
	announce_v(&d, 1);
	memmove(d.b + 3, d.b + 1, d.n - 1);
	d.b[0] = 0xdc;
	d.b[1] = 0x00;
	d.b[2] = 0x07;
	d.n += 2;
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce as array 16 of 7 -> MALFORMED (fixarray only)");

	/* Not an array, or more after it. */
	is_int(unpack_len("\x81\xa4mp2p\x01", 7), PROTO_ERR_MALFORMED,
	    "a map -> MALFORMED");
	is_int(unpack_len("\xa4mp2p", 5), PROTO_ERR_MALFORMED,
	    "a bare str -> MALFORMED");
	is_int(unpack_len("\x90", 1), PROTO_ERR_MALFORMED,
	    "an empty array -> MALFORMED");
	is_int(unpack_len("\xc1", 1), PROTO_ERR_MALFORMED,
	    "reserved byte 0xc1 -> MALFORMED");
	announce_v(&d, 1);
	put_u8(&d, 0x00);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce with a trailing byte -> MALFORMED");
	query_v(&d, 1, 64);
	put_u8(&d, 0xc0);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "query with a trailing nil -> MALFORMED");

	/* Ports. */
	announce_v(&d, 1);
	d.b[9] = 0x00;
	d.b[10] = 0x00;
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce port 0 (uint 16) -> MALFORMED");
	head(&d, 7, 1, 1);
	put(&d, "\x00\x00\xa1\x61\x01", 5);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce port 0 (fixint) -> MALFORMED");
	head(&d, 7, 1, 1);
	put(&d, "\x00\xce\x00\x01\x00\x00\xa1\x61\x01", 9);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce port 65536 -> MALFORMED");
	head(&d, 7, 1, 1);
	put(&d, "\x00\xce\x00\x00\xff\xff\xa1\x61\x01", 9);
	is_int(unpack_d(&d), 0, "announce port 65535 as uint 32: accepted");
	head(&d, 7, 1, 1);
	put(&d, "\x00\xff\xa1\x61\x01", 5);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce port -1 -> MALFORMED");
	head(&d, 7, 1, 1);
	put(&d, "\x00\xa2\x38\x30\xa1\x61\x01", 7);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce port as str \"80\" -> MALFORMED");

	/* Nonces. */
	head(&d, 6, 1, 0);
	put_u8(&d, 0xcf);
	put_be(&d, (uint64_t)UINT32_MAX + 1, 8);
	put_u8(&d, 0xc0);
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "query nonce 2^32 -> MALFORMED");
	head(&d, 6, 1, 0);
	put_u8(&d, 0xcf);
	put_be(&d, UINT32_MAX, 8);
	put_u8(&d, 0xc0);
	pad_to(&d, 64);
	is_int(unpack_d(&d), 0, "query nonce 2^32-1 as uint 64: accepted");
	head(&d, 7, 1, 1);
	put_u8(&d, 0xcf);
	put_be(&d, UINT64_MAX, 8);
	put(&d, "\xcd\x1f\x90\xa1\x61\x01", 6);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce nonce 2^64-1 -> MALFORMED");
	head(&d, 6, 1, 0);
	put_u8(&d, 0xd2); /* int 32 */
	put_be(&d, 5, 4);
	put_u8(&d, 0xc0);
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "query nonce as int 32 -> MALFORMED");

	/* want. */
	for (unsigned wl = 31; wl <= 33; wl += 2) {
		head(&d, 6, 1, 0);
		put_u8(&d, 0x07);
		put_u8(&d, 0xc4);
		put_u8(&d, (uint8_t)wl);
		for (unsigned i = 0; i < wl; i++)
			put_u8(&d, 0x11);
		pad_to(&d, 64);
		is_int(unpack_d(&d), PROTO_ERR_MALFORMED, wl == 31 ?
		    "query want of 31 bytes -> MALFORMED" :
		    "query want of 33 bytes -> MALFORMED");
	}
	head(&d, 6, 1, 0);
	put_u8(&d, 0x07);
	put_u8(&d, 0xc5); /* bin 16 of 32 */
	put_be(&d, 32, 2);
	for (int i = 0; i < 32; i++)
		put_u8(&d, 0x11);
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "query want as bin 16 -> MALFORMED (bin 8 only)");
	head(&d, 6, 1, 0);
	put_u8(&d, 0x07);
	put_u8(&d, 0xd9); /* str 8 of 32 */
	put_u8(&d, 32);
	for (int i = 0; i < 32; i++)
		put_u8(&d, 'x');
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "query want as str -> MALFORMED");
	head(&d, 6, 1, 0);
	put(&d, "\x07\xc2", 2); /* false */
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "query want false -> MALFORMED");

	/* Names. */
	head(&d, 7, 1, 1);
	put(&d, "\x00\xcd\x1f\x90\xd9\x31", 6);
	for (int i = 0; i < 49; i++)
		put_u8(&d, 'n');
	put_u8(&d, 0x01);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce name of 49 bytes -> MALFORMED");
	head(&d, 7, 1, 1);
	put(&d, "\x00\xcd\x1f\x90\xda\x00\x01\x61\x01", 9);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce name as str 16 -> MALFORMED");
	head(&d, 7, 1, 1);
	put(&d, "\x00\xcd\x1f\x90\xc0\x01", 6);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce name nil -> MALFORMED");
	head(&d, 7, 1, 1);
	put(&d, "\x00\xcd\x1f\x90\xa1\x61\xa1\x31", 8);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce nfiles as str -> MALFORMED");
	head(&d, 7, 1, 1);
	put(&d, "\x00\xcd\x1f\x90\xa1\x61\xff", 7);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "announce nfiles -1 -> MALFORMED");
}

static void
test_sizes(void)
{
	struct dgram d;
	uint8_t *big;

	query_v(&d, 1, 64);
	is_int(unpack_d(&d), 0, "query exact limit: 64 bytes unpacks");
	query_v(&d, 1, 63);
	is_int(unpack_d(&d), PROTO_ERR_TOO_BIG,
	    "query short: 63 bytes -> TOO_BIG");
	d.n = 0;
	put(&d, "\x96\xa4mp2p\x01\x00\x07\xc0\xc4\x00", 12);
	is_int(unpack_d(&d), PROTO_ERR_TOO_BIG,
	    "query short: 12 bytes, empty padding -> TOO_BIG");
	head(&d, 6, 1, 0);
	put_u8(&d, 0x07);
	put_u8(&d, 0xc4);
	put_u8(&d, 32);
	for (int i = 0; i < 32; i++)
		put_u8(&d, 0x11);
	pad_to(&d, 63);
	is_int(unpack_d(&d), PROTO_ERR_TOO_BIG,
	    "query short with want: 63 bytes -> TOO_BIG");

	/* The datagram limit: padding as bin 16. */
	for (size_t total = 512; total <= 513; total++) {
		head(&d, 6, 1, 0);
		put(&d, "\x07\xc0", 2);
		put_u8(&d, 0xc5);
		put_be(&d, total - d.n - 2, 2);
		while (d.n < total)
			put_u8(&d, 0);
		if (total == 512)
			is_int(unpack_d(&d), 0,
			    "datagram exact limit: 512-byte query unpacks");
		else
			is_int(unpack_d(&d), PROTO_ERR_TOO_BIG,
			    "datagram over limit: 513-byte query -> TOO_BIG");
	}
	big = calloc(1, 70000);
	if (big == NULL)
		exit(2);
	is_int(unpack_len(big, 70000), PROTO_ERR_TOO_BIG,
	    "datagram giant: 70000 bytes -> TOO_BIG");
	free(big);

	/* Bombs and nesting. */
	is_int(unpack_len("\xdd\xff\xff\xff\xff", 5), PROTO_ERR_MALFORMED,
	    "array32 bomb: 2^32-1 elements declared in 5 bytes -> MALFORMED");
	is_int(unpack_len("\xdf\xff\xff\xff\xff", 5), PROTO_ERR_MALFORMED,
	    "map32 bomb: 2^32-1 pairs declared in 5 bytes -> MALFORMED");
	head(&d, 6, 1, 0);
	put(&d, "\x07\xc0", 2);
	put(&d, "\xdd\xff\xff\xff\xff", 5);
	while (d.n < 64)
		put_u8(&d, 0);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "array32 bomb as padding of a query -> MALFORMED");
	head(&d, 6, 1, 0);
	put(&d, "\x07\xc0", 2);
	put(&d, "\xdb\xff\xff\xff\xff", 5);
	while (d.n < 64)
		put_u8(&d, 0);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "str32 bomb as padding of a query -> MALFORMED");
	head(&d, 6, 1, 0);
	put(&d, "\x07\xc0", 2);
	put(&d, "\x91\xc4\x30", 3); /* [bin 48] */
	while (d.n < 64)
		put_u8(&d, 0);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "nested array as padding of a query -> MALFORMED");
	head(&d, 6, 1, 0);
	put(&d, "\x07\x90", 2); /* want [] */
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "nested empty array as want -> MALFORMED");
	head(&d, 6, 1, 0);
	put(&d, "\x07\x80", 2); /* want {} */
	pad_to(&d, 64);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "nested map as want -> MALFORMED");
	announce_v(&d, 1);
	d.b[0] = 0x98;
	put(&d, "\x91\x91\x91\x00", 4);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "nested arrays after an announce's fields -> MALFORMED");
	d.n = 0;
	for (int i = 0; i < 16; i++)
		put_u8(&d, 0x91);
	put_u8(&d, 0x00);
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "16 nested arrays -> MALFORMED");
	announce_v(&d, 1);
	d.b[0] = 0x98;
	put(&d, "\xd4\x01\x00", 3); /* fixext 1 */
	is_int(unpack_d(&d), PROTO_ERR_MALFORMED,
	    "ext after an announce's fields -> MALFORMED");
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

/* Checks what a successful unpack gave; 0 when it makes sense. */
static int
sane(const uint8_t *buf, size_t len, const proto_disco_msg *m)
{
	if (len > PROTO_DISCO_DATAGRAM_MAX || (buf[0] & 0xf0) != 0x90)
		return -1;
	if (m->type == PROTO_DISCO_QUERY)
		return len < PROTO_DISCO_QUERY_MIN || (m->want != NULL &&
		    (m->want < buf || m->want + PROTO_HASH_LEN > buf + len)) ||
		    m->name != NULL || m->port != 0 ? -1 : 0;
	if (m->type == PROTO_DISCO_ANNOUNCE)
		return m->port == 0 || m->name == NULL ||
		    m->name_len > PROTO_DISCO_NAME_MAX ||
		    (const uint8_t *)m->name < buf ||
		    (const uint8_t *)m->name + m->name_len > buf + len ||
		    m->want != NULL ? -1 : 0;
	return -1;
}

static void
test_random(void)
{
	static const int rounds = 20000;
	int crashed_not = 0, nonsense = 0, accepted = 0, badcode = 0;
	int noise_accepted = 0;
	uint8_t want[PROTO_HASH_LEN];
	struct dgram seeds[3];
	proto_disco_msg m;

	memset(want, 0x77, sizeof(want));
	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_QUERY;
	m.nonce = 0x01020304;
	pack(&m, &seeds[0]);
	m.want = want;
	pack(&m, &seeds[1]);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_ANNOUNCE;
	m.port = 9000;
	m.name = "random";
	m.name_len = 6;
	m.nfiles = 300;
	pack(&m, &seeds[2]);

	for (int r = 0; r < rounds; r++) {
		size_t len;
		uint8_t *buf;
		int rc;

		if (r % 2 == 0) {
			/* Pure noise, some of it opening like an array. */
			len = rnd() % 600;
			buf = malloc(len ? len : 1);
			if (buf == NULL)
				exit(2);
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rnd();
			if (len > 0 && r % 4 == 0)
				buf[0] = (uint8_t)(0x90 | (rnd() & 0x0f));
		} else {
			/* A valid datagram with a few bytes changed, cut
			 * or grown. */
			const struct dgram *s = &seeds[rnd() % 3];
			unsigned flips = 1 + rnd() % 4;

			len = s->n;
			if (rnd() % 4 == 0)
				len = rnd() % (s->n + 8);
			buf = malloc(len ? len : 1);
			if (buf == NULL)
				exit(2);
			for (size_t i = 0; i < len; i++)
				buf[i] = i < s->n ? s->b[i] : (uint8_t)rnd();
			for (unsigned f = 0; f < flips && len > 0; f++)
				buf[rnd() % len] = (uint8_t)rnd();
		}
		rc = proto_disco_unpack(buf, len, &m);
		crashed_not++;
		if (rc == 0) {
			accepted++;
			if (r % 2 == 0)
				noise_accepted++;
			if (sane(buf, len, &m) != 0) {
				if (nonsense == 0)
					diag("round %d: accepted %zu bytes with "
					    "type %u port %u name_len %zu", r, len,
					    m.type, m.port, m.name_len);
				nonsense++;
			}
		} else if (rc != PROTO_ERR_MALFORMED && rc != PROTO_ERR_TOO_BIG &&
		    rc != PROTO_ERR_VERSION)
			badcode++;
		free(buf);
	}
	is_int(crashed_not, rounds, "random: 20000 byte strings, no crash");
	is_int(nonsense, 0, "random: nothing accepted with nonsense fields");
	is_int(badcode, 0, "random: every error is MALFORMED, TOO_BIG or "
	    "VERSION");
	is_int(noise_accepted, 0, "random: no pure noise accepted");
	diag("random: %d of %d accepted", accepted, rounds);
}

static void
test_targets(void)
{
	struct sockaddr_in out[16];
	int n;

	memset(out, 0xee, sizeof(out));
	n = proto_disco_targets("127.255.255.255", 9999, out, 16);
	is_int(n, 1, "targets override: count 1");
	is_int(out[0].sin_family, AF_INET, "targets override: AF_INET");
	is_int(ntohs(out[0].sin_port), 9999, "targets override: port set");
	is_int(ntohl(out[0].sin_addr.s_addr), 0x7fffffff,
	    "targets override: address 127.255.255.255");
	n = proto_disco_targets("127.0.0.1", 1, out, 1);
	is_int(n, 1, "targets override exact limit: max 1");
	is_int(ntohs(out[0].sin_port), 1, "targets override: port 1 set");
	is_int(proto_disco_targets("256.1.1.1", 9999, out, 16),
	    PROTO_ERR_INVALID, "targets bad override: 256.1.1.1 -> INVALID");
	is_int(proto_disco_targets("localhost", 9999, out, 16),
	    PROTO_ERR_INVALID, "targets bad override: a name -> INVALID");
	is_int(proto_disco_targets("::1", 9999, out, 16), PROTO_ERR_INVALID,
	    "targets bad override: IPv6 -> INVALID");
	is_int(proto_disco_targets("127.255.255.255", 9999, out, 0),
	    PROTO_ERR_INVALID, "targets: max 0 -> INVALID");

	memset(out, 0, sizeof(out));
	n = proto_disco_targets(NULL, 4321, out, 16);
	ok(n >= 0 && n <= 16, "targets no override (NULL): %d, >= 0", n);
	{
		int bad = 0;
		for (int i = 0; i < n; i++)
			if (out[i].sin_family != AF_INET ||
			    ntohs(out[i].sin_port) != 4321)
				bad++;
		is_int(bad, 0, "targets no override: each AF_INET, port set");
	}
	n = proto_disco_targets("", 4321, out, 16);
	ok(n >= 0 && n <= 16, "targets empty override: interfaces, %d", n);
	n = proto_disco_targets(NULL, 4321, out, 1);
	ok(n >= 0 && n <= 1, "targets no override: max 1 honoured (%d)", n);
}

static void
from_addr(struct sockaddr_in *sin, const char *addr)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(PROTO_DISCO_PORT);
	inet_pton(AF_INET, addr, &sin->sin_addr);
}

static int
check4(const proto_disco_msg *m, const struct sockaddr_in *from, time_t now,
    int sealed)
{
	return proto_disco_check_announce(m, (const struct sockaddr *)from,
	    now, sealed);
}

static void
test_stamp(void)
{
	/* docs/PROTOCOL.md section 6: node "a", TCP port 8080, 1 file, at
	 * time 1700000000 from 10.0.0.5. */
	static const uint8_t vector[] = { 0x99, 0xa4, 'm', 'p', '2', 'p',
	    0x01, 0x01, 0x00, 0xcd, 0x1f, 0x90, 0xa1, 'a', 0x01,
	    0xce, 0x65, 0x53, 0xf1, 0x00, 0xc4, 0x04, 10, 0, 0, 5 };
	proto_disco_msg m, u;
	struct sockaddr_in from;
	struct dgram d;
	time_t t = 1700000000;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_ANNOUNCE;
	m.port = 8080;
	m.name = "a";
	m.name_len = 1;
	m.nfiles = 1;
	m.stamped = 1;
	m.time = (uint64_t)t;
	memcpy(m.addr, "\x0a\x00\x00\x05", 4);
	is_int(pack(&m, &d), 0, "stamp: packs");
	ok(d.n == sizeof(vector) && memcmp(d.b, vector, d.n) == 0,
	    "stamp: the test vector of PROTOCOL.md (%zu bytes)", d.n);
	is_int(proto_disco_unpack(d.b, d.n, &u), 0, "stamp: unpacks");
	ok(u.stamped && u.time == (uint64_t)t &&
	    memcmp(u.addr, m.addr, 4) == 0, "stamp: time and addr read back");
	m.time = UINT64_MAX;
	m.name = "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn";
	m.name_len = strlen(m.name);
	m.nfiles = UINT64_MAX;
	m.nonce = UINT32_MAX;
	is_int(pack(&m, &d), 0, "stamp: largest announce packs");
	ok(d.n <= 90, "stamp: largest announce %zu bytes, <= 90", d.n);

	/* Unstamped (an old node's): understood, time and addr unset. */
	announce_v(&d, 1);
	is_int(proto_disco_unpack(d.b, d.n, &u), 0, "unstamped: unpacks");
	is_int(u.stamped, 0, "unstamped: not stamped");

	/* What a private swarm's node believes. */
	m.time = (uint64_t)t;
	from_addr(&from, "10.0.0.5");
	is_int(check4(&m, &from, t, 1), 0,
	    "check sealed: from its addr, on time -> believed");
	is_int(check4(&m, &from, t + 120, 1), 0,
	    "check sealed: 120 s old (the limit) -> believed");
	is_int(check4(&m, &from, t - 120, 1), 0,
	    "check sealed: 120 s ahead (the limit) -> believed");
	is_int(check4(&m, &from, t + 121, 1),
	    PROTO_ERR_STALE, "check sealed: 121 s old -> STALE");
	is_int(check4(&m, &from, t - 121, 1),
	    PROTO_ERR_STALE, "check sealed: 121 s ahead -> STALE");
	m.time = 0;
	is_int(check4(&m, &from, t, 1), PROTO_ERR_STALE,
	    "check sealed: time 0 -> STALE");
	m.time = UINT64_MAX;
	is_int(check4(&m, &from, t, 1), PROTO_ERR_STALE,
	    "check sealed: time 2^64-1 -> STALE");
	m.time = (uint64_t)t;
	from_addr(&from, "10.0.0.6");
	is_int(check4(&m, &from, t, 1), PROTO_ERR_STALE,
	    "check sealed: replayed from another address -> STALE");
	m.stamped = 0;
	from_addr(&from, "10.0.0.5");
	is_int(check4(&m, &from, t, 1), PROTO_ERR_STALE,
	    "check sealed: unstamped -> STALE");
	/* Unsealed: anyone could have said it; old nodes do not stamp. */
	is_int(check4(&m, &from, t, 0), 0,
	    "check unsealed: unstamped -> believed");
	m.stamped = 1;
	m.time = 0;
	from_addr(&from, "10.0.0.6");
	is_int(check4(&m, &from, t, 0), 0,
	    "check unsealed: stamp not checked");
}

/* The stamp over IPv6: a 16-byte addr, checked against the source. */
static void
test_stamp6(void)
{
	/* docs/PROTOCOL.md section 6: the vector of test_stamp, sent from
	 * fd00::5. */
	static const uint8_t vector[] = { 0x99, 0xa4, 'm', 'p', '2', 'p',
	    0x01, 0x01, 0x00, 0xcd, 0x1f, 0x90, 0xa1, 'a', 0x01,
	    0xce, 0x65, 0x53, 0xf1, 0x00, 0xc4, 0x10, 0xfd, 0, 0, 0, 0, 0, 0,
	    0, 0, 0, 0, 0, 0, 0, 0, 5 };
	proto_disco_msg m, u;
	struct sockaddr_in6 from;
	struct sockaddr_in from4;
	struct dgram d;
	time_t t = 1700000000;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_ANNOUNCE;
	m.port = 8080;
	m.name = "a";
	m.name_len = 1;
	m.nfiles = 1;
	m.stamped = 1;
	m.time = (uint64_t)t;
	m.addr_len = 16;
	inet_pton(AF_INET6, "fd00::5", m.addr);
	is_int(pack(&m, &d), 0, "stamp6: packs");
	ok(d.n == sizeof(vector) && memcmp(d.b, vector, d.n) == 0,
	    "stamp6: the IPv6 test vector of PROTOCOL.md (%zu bytes)", d.n);
	is_int(proto_disco_unpack(d.b, d.n, &u), 0, "stamp6: unpacks");
	ok(u.stamped && u.addr_len == 16 && memcmp(u.addr, m.addr, 16) == 0,
	    "stamp6: addr read back, 16 bytes");
	memset(&from, 0, sizeof(from));
	from.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "fd00::5", &from.sin6_addr);
	is_int(proto_disco_check_announce(&u, (const struct sockaddr *)&from,
	    t, 1), 0, "check6 sealed: from its addr -> believed");
	inet_pton(AF_INET6, "fd00::6", &from.sin6_addr);
	is_int(proto_disco_check_announce(&u, (const struct sockaddr *)&from,
	    t, 1), PROTO_ERR_STALE, "check6 sealed: another address -> STALE");
	from_addr(&from4, "253.0.0.0");
	is_int(check4(&u, &from4, t, 1), PROTO_ERR_STALE,
	    "check6 sealed: a 16-byte addr from an IPv4 source -> STALE");
	/* Neither 4 nor 16 bytes: malformed. */
	d.b[d.n - 17] = 0x0f;
	d.n--;
	is_int(proto_disco_unpack(d.b, d.n, &u), PROTO_ERR_MALFORMED,
	    "stamp6: a 15-byte addr -> MALFORMED");
}

static void
test_targets6(void)
{
	proto_disco_target6 out[16];
	int n;

	is_int(proto_disco_targets6(NULL, "off", 9999, out, 16), 0,
	    "targets6 off: none");
	is_int(proto_disco_targets6("127.255.255.255", NULL, 9999, out, 16), 0,
	    "targets6: the IPv4 override set, the IPv6 one not: none");
	is_int(proto_disco_targets6("127.255.255.255", "", 9999, out, 16), 0,
	    "targets6: the IPv4 override set, the IPv6 one empty: none");
	n = proto_disco_targets6("127.255.255.255", "::1", 4321, out, 16);
	is_int(n, 1, "targets6 ::1 (beside an IPv4 override): one");
	ok(out[0].to.sin6_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&out[0].to.sin6_addr) &&
	    ntohs(out[0].to.sin6_port) == 4321 &&
	    IN6_IS_ADDR_UNSPECIFIED(&out[0].from),
	    "targets6 ::1: the address, port set, no source chosen");
	is_int(proto_disco_targets6(NULL, "10.0.0.1", 9999, out, 16),
	    PROTO_ERR_INVALID, "targets6 an IPv4 address -> INVALID");
	is_int(proto_disco_targets6(NULL, "ip6-localhost", 9999, out, 16),
	    PROTO_ERR_INVALID, "targets6 a name -> INVALID");
	is_int(proto_disco_targets6(NULL, "off", 9999, out, 0),
	    PROTO_ERR_INVALID, "targets6 max 0 -> INVALID");
	/* The group: one target per interface that has a routable address,
	 * never loopback (the unit tests run where lo is all there is). */
	n = proto_disco_targets6(NULL, NULL, 9999, out, 16);
	ok(n >= 0 && n <= 16, "targets6 default: %d interfaces", n);
	{
		int bad = 0;
		for (int i = 0; i < n; i++)
			if (!IN6_IS_ADDR_MC_LINKLOCAL(&out[i].to.sin6_addr) ||
			    out[i].to.sin6_scope_id == 0 ||
			    IN6_IS_ADDR_LINKLOCAL(&out[i].from) ||
			    IN6_IS_ADDR_LOOPBACK(&out[i].from))
				bad++;
		is_int(bad, 0, "targets6 default: ff02:: on an interface, from "
		    "a routable address");
	}
}

static void
test_source(void)
{
	struct sockaddr_in to;
	uint8_t addr[4];

	from_addr(&to, "127.0.0.1");
	is_int(proto_disco_source(&to, addr), 0, "source to 127.0.0.1: 0");
	ok(memcmp(addr, "\x7f\x00\x00\x01", 4) == 0,
	    "source to 127.0.0.1: from 127.0.0.1");
	from_addr(&to, "127.255.255.255");
	is_int(proto_disco_source(&to, addr), 0,
	    "source to 127.255.255.255 (broadcast): 0");
	ok(addr[0] == 127, "source to 127.255.255.255: a loopback address");
}

/* proto_disco_broadcast over dotted quads: "-" when it refuses. */
static const char *
brd_of(const char *addr, unsigned prefix, const char *brd)
{
	static char text[INET_ADDRSTRLEN];
	struct in_addr a, b = { 0 };
	uint32_t mask = prefix ? htonl(0xffffffffu << (32 - prefix)) : 0, out;

	inet_pton(AF_INET, addr, &a);
	if (brd != NULL)
		inet_pton(AF_INET, brd, &b);
	if (proto_disco_broadcast(a.s_addr, mask, b.s_addr, &out) != 0)
		return "-";
	inet_ntop(AF_INET, &out, text, sizeof(text));
	return text;
}

static void
test_broadcast(void)
{
	is_str(brd_of("10.78.0.1", 24, "10.78.0.255"), "10.78.0.255",
	    "broadcast: a set one is kept");
	is_str(brd_of("10.78.0.1", 24, "10.78.0.127"), "10.78.0.127",
	    "broadcast: a set one is kept, even an odd one");
	is_str(brd_of("10.78.0.1", 24, "10.78.0.1"), "10.78.0.255",
	    "broadcast /24 unset (shown as the address): computed");
	is_str(brd_of("10.78.0.1", 24, NULL), "10.78.0.255",
	    "broadcast /24 unset (0): computed");
	is_str(brd_of("10.78.200.7", 16, "10.78.200.7"), "10.78.255.255",
	    "broadcast /16 unset: computed");
	is_str(brd_of("172.16.5.9", 20, NULL), "172.16.15.255",
	    "broadcast /20 unset: host bits across a byte");
	is_str(brd_of("10.1.2.3", 8, NULL), "10.255.255.255",
	    "broadcast /8 unset");
	is_str(brd_of("192.168.1.77", 30, NULL), "192.168.1.79",
	    "broadcast /30 unset: the last of four");
	is_str(brd_of("10.80.0.0", 31, "10.80.0.0"), "10.80.0.1",
	    "broadcast /31 (.0): the other end of the link");
	is_str(brd_of("10.80.0.1", 31, NULL), "10.80.0.0",
	    "broadcast /31 (.1): the other end, not itself");
	is_str(brd_of("10.81.0.5", 32, "10.81.0.5"), "-",
	    "broadcast /32: nobody to reach, refused");
	is_str(brd_of("10.81.0.5", 32, NULL), "-",
	    "broadcast /32 with none shown: refused");
	is_str(brd_of("0.0.0.1", 0, NULL), "255.255.255.255",
	    "broadcast /0: every host bit");
}

/* 1 when a is within net/plen (proto_disco_prefix6), -1 on a bad text. */
static int
in_prefix6(const char *a, const char *net, unsigned plen)
{
	struct in6_addr x, n, m;

	if (inet_pton(AF_INET6, a, &x) != 1 || inet_pton(AF_INET6, net, &n) != 1)
		return -1;
	memset(&m, 0, sizeof(m));
	for (unsigned i = 0; i < plen; i++)
		m.s6_addr[i / 8] |= (uint8_t)(0x80u >> (i % 8));
	return proto_disco_prefix6(&x, &n, &m);
}

static void
test_prefix6(void)
{
	is_int(in_prefix6("fd00:77::3", "fd00:77::1", 64), 1,
	    "prefix6: same /64");
	is_int(in_prefix6("fd00:78::2", "fd00:77::1", 64), 0,
	    "prefix6: the next /64 (behind a router)");
	is_int(in_prefix6("fd00:77:0:0:8000::1", "fd00:77::1", 65), 0,
	    "prefix6: /65, the first host bit differs");
	is_int(in_prefix6("fd00:77::1", "fd00:77::1", 128), 1,
	    "prefix6: /128, itself");
	is_int(in_prefix6("fd00:77::2", "fd00:77::1", 128), 0,
	    "prefix6: /128, another");
	is_int(in_prefix6("2001:db8::9", "fd00:77::1", 0), 1,
	    "prefix6: /0, anything");
}

int
main(void)
{
	test_query_round_trip();
	test_announce_round_trip();
	test_truncated();
	test_malformed();
	test_sizes();
	test_random();
	test_targets();
	test_broadcast();
	test_stamp();
	test_stamp6();
	test_targets6();
	test_source();
	test_prefix6();
	return done_testing();
}
