/*
 * record.c: the test vector of PROTOCOL.md byte for byte (seed -> key ->
 * identity -> record -> signature, checked against the openssl command
 * when it was written), every bit of it flipped and refused, every field
 * tampered with and re-signed under another domain refused, the expiry
 * edges, the size edges, and bodies that are not records; a node's own
 * record kept signed, and two nodes passing one on.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <msgpack.h>

#include "proto.h"
#include "tap.h"

#define NOW 1700000000u
#define EXP 1700003600u

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
#define BODY_OFF 3u
#define BODY_LEN 0x50u

static proto_identity *key;

static void
load_vector_key(void)
{
	static const char pem[] = "-----BEGIN PRIVATE KEY-----\n"
	    "MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n"
	    "-----END PRIVATE KEY-----\n";
	char dir[] = "/tmp/test_record.XXXXXX", path[64];
	FILE *f;

	if (mkdtemp(dir) == NULL)
		exit(2);
	snprintf(path, sizeof(path), "%s/k.pem", dir);
	if ((f = fopen(path, "w")) == NULL || fputs(pem, f) < 0 ||
	    fclose(f) != 0 || chmod(path, 0600) != 0 ||
	    proto_identity_load(path, 0, &key) != 0)
		exit(2);
	unlink(path);
	rmdir(dir);
}

/* A record of body (n bytes), signed by the vector's key over prefix
 * (plen bytes; the domain and its zero byte when it is right). */
static size_t
seal_with(const uint8_t *body, size_t n, const char *prefix, size_t plen,
    uint8_t *out)
{
	uint8_t msg[2048], sig[PROTO_SIG_LEN];
	size_t k = 0;

	memcpy(msg, prefix, plen);
	memcpy(msg + plen, body, n);
	if (proto_identity_sign(key, msg, plen + n, sig) != 0)
		exit(2);
	out[k++] = 0x92;
	if (n <= 0xff) {
		out[k++] = 0xc4;
		out[k++] = (uint8_t)n;
	} else {
		out[k++] = 0xc5;
		out[k++] = (uint8_t)(n >> 8);
		out[k++] = (uint8_t)n;
	}
	memcpy(out + k, body, n);
	k += n;
	out[k++] = 0xc4;
	out[k++] = PROTO_SIG_LEN;
	memcpy(out + k, sig, PROTO_SIG_LEN);
	return k + PROTO_SIG_LEN;
}

static size_t
seal(const uint8_t *body, size_t n, uint8_t *out)
{
	return seal_with(body, n, PROTO_RECORD_DOMAIN,
	    sizeof(PROTO_RECORD_DOMAIN), out);
}

/* ---- bodies written with msgpack-c, field by field ---- */

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void
begin(size_t pairs)
{
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, pairs);
}

static void
str(const char *s)
{
	msgpack_pack_str(&pk, strlen(s));
	msgpack_pack_str_body(&pk, s, strlen(s));
}

static void
f_key(void)
{
	uint8_t k[PROTO_KEY_LEN];

	proto_identity_public_key(key, k);
	str("key");
	msgpack_pack_bin(&pk, sizeof(k));
	msgpack_pack_bin_body(&pk, k, sizeof(k));
}

static void
f_addrs(const char *host, uint64_t port)
{
	str("addrs");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 2);
	str(host);
	msgpack_pack_uint64(&pk, port);
}

static void
f_uint(const char *k, uint64_t v)
{
	str(k);
	msgpack_pack_uint64(&pk, v);
}

/* A whole body: key, one address, seq 1, exp EXP, flags 3. */
static void
f_rest(void)
{
	f_addrs("10.0.0.5", 8080);
	f_uint("seq", 1);
	f_uint("exp", EXP);
	f_uint("flags", 3);
}

/* Seals the body written and verifies it at NOW. */
static int
check_body(proto_record *r)
{
	uint8_t rec[2048];
	size_t n = seal((const uint8_t *)sb.data, sb.size, rec);

	return proto_record_verify(rec, n, NOW, r);
}

static void
test_vector(void)
{
	static const uint8_t want_key[] = { 0x03, 0xa1, 0x07, 0xbf, 0xf3,
	    0xce, 0x10, 0xbe, 0x1d, 0x70, 0xdd, 0x18, 0xe7, 0x4b, 0xc0, 0x99,
	    0x67, 0xe4, 0xd6, 0x30, 0x9b, 0xa5, 0x0d, 0x5f, 0x1d, 0xdc, 0x86,
	    0x64, 0x12, 0x55, 0x31, 0xb8 };
	static const uint8_t want_id[] = { 0xa0, 0x50, 0x83, 0x7d, 0x85,
	    0x07, 0x05, 0x82, 0xcc, 0xf7, 0x39, 0x4b, 0x09, 0x88, 0x84, 0x7c,
	    0xc3, 0x12, 0xcb, 0x88, 0x25, 0x9b, 0x89, 0x48, 0x99, 0xf6, 0xf2,
	    0x39, 0xcf, 0x17, 0x91, 0xa5 };
	uint8_t out[PROTO_RECORD_MAX], id[PROTO_IDENTITY_LEN];
	proto_record r, v;
	size_t len = 0;

	memset(&r, 0, sizeof(r));
	proto_addr_from_host(&r.addrs[0], "10.0.0.5", 8, 8080);
	r.naddrs = 1;
	r.seq = 1;
	r.exp = EXP;
	r.flags = PROTO_RECORD_SEED | PROTO_RECORD_REACHABLE;
	is_int(proto_record_sign(&r, key, out, &len), 0, "vector: signed");
	is_int(len, sizeof(vector), "vector: 149 bytes");
	ok(len == sizeof(vector) && memcmp(out, vector, len) == 0,
	    "vector: the bytes of PROTOCOL.md");
	is_mem(r.key, want_key, sizeof(want_key),
	    "vector: seed 00..1f has public key 03a107bf...31b8");
	is_mem(r.id, want_id, sizeof(want_id),
	    "vector: its identity is a050837d...91a5, as in section 8");
	ok(proto_identity_of_key(want_key, id) == 0 &&
	    memcmp(id, want_id, sizeof(id)) == 0,
	    "vector: identity derived from the key alone");

	is_int(proto_record_verify(vector, sizeof(vector), NOW, &v), 0,
	    "vector: verifies at 1700000000");
	is_mem(v.id, want_id, sizeof(want_id), "vector: names identity "
	    "a050837d...");
	ok(v.naddrs == 1 && strcmp(proto_addr_text(&v.addrs[0]),
	    "10.0.0.5:8080") == 0 && !v.addrs[0].has_pin,
	    "vector: addrs [10.0.0.5:8080], no pin");
	ok(v.seq == 1 && v.exp == EXP && v.flags == 3,
	    "vector: seq 1, exp 1700003600, flags 3");
	ok(proto_record_has_addr(&v, &r.addrs[0]), "has_addr: its address");
	proto_addr_set_port(&r.addrs[0], 8081);
	ok(!proto_record_has_addr(&v, &r.addrs[0]),
	    "has_addr: another port is not");
}

/* No bit of the vector can change unnoticed. */
static void
test_every_bit(void)
{
	uint8_t buf[sizeof(vector)];
	proto_record v;
	int accepted = 0;

	for (size_t i = 0; i < sizeof(vector); i++)
		for (int b = 0; b < 8; b++) {
			memcpy(buf, vector, sizeof(buf));
			buf[i] ^= (uint8_t)(1u << b);
			if (proto_record_verify(buf, sizeof(buf), NOW, &v) == 0) {
				diag("byte %zu bit %d flipped: accepted", i, b);
				accepted++;
			}
		}
	is_int(accepted, 0, "every one of the 1192 bits flipped: refused");
	for (size_t n = 0; n < sizeof(vector); n++)
		if (proto_record_verify(vector, n, NOW, &v) == 0)
			accepted++;
	is_int(accepted, 0, "every truncation of the vector: refused");
}

/* Each field changed, the old signature kept: the signature says no. */
static void
test_tamper(void)
{
	static const struct {
		size_t off;
		uint8_t val;
		const char *what;
	} edits[] = {
		{ 10, 0x04, "key" },
		{ 58, 0x36, "host 10.0.0.5 -> 10.0.0.6" },
		{ 61, 0x91, "port 8080 -> 8081" },
		{ 66, 0x02, "seq 1 -> 2" },
		{ 75, 0x11, "exp + 1" },
		{ 82, 0x01, "flags 3 -> 1 (not reachable)" },
		{ 85, 0xa4, "signature" },
	};
	uint8_t buf[sizeof(vector)];
	proto_record v;

	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		memcpy(buf, vector, sizeof(buf));
		buf[edits[i].off] = edits[i].val;
		ok(proto_record_verify(buf, sizeof(buf), NOW, &v) ==
		    PROTO_ERR_MISMATCH, "tampered %s: MISMATCH", edits[i].what);
	}
}

static void
test_domain(void)
{
	uint8_t rec[512];
	const uint8_t *body = vector + BODY_OFF;
	proto_record v;
	size_t n;

	n = seal(body, BODY_LEN, rec);
	ok(n == sizeof(vector) && memcmp(rec, vector, n) == 0,
	    "domain: the vector is the body sealed under its domain");
	n = seal_with(body, BODY_LEN, "mini-p2p peer record v2", 24, rec);
	is_int(proto_record_verify(rec, n, NOW, &v), PROTO_ERR_MISMATCH,
	    "domain: signed under \"... v2\": MISMATCH");
	n = seal_with(body, BODY_LEN, "mini-p2p peer record v1", 23, rec);
	is_int(proto_record_verify(rec, n, NOW, &v), PROTO_ERR_MISMATCH,
	    "domain: without the zero byte: MISMATCH");
	n = seal_with(body, BODY_LEN, "", 0, rec);
	is_int(proto_record_verify(rec, n, NOW, &v), PROTO_ERR_MISMATCH,
	    "domain: the body alone signed: MISMATCH");
}

static void
test_expiry(void)
{
	proto_record v;
	const uint64_t skew = PROTO_RECORD_SKEW;
	const uint64_t life = PROTO_RECORD_LIFETIME_MAX;

	is_int(proto_record_verify(vector, sizeof(vector), EXP, &v), 0,
	    "expiry: at exp: valid");
	is_int(proto_record_verify(vector, sizeof(vector), EXP + skew, &v), 0,
	    "expiry: exp + skew: still valid (clocks differ)");
	is_int(proto_record_verify(vector, sizeof(vector), EXP + skew + 1,
	    &v), PROTO_ERR_STALE, "expiry: exp + skew + 1: STALE");
	is_int(proto_record_verify(vector, sizeof(vector),
	    EXP - life - skew, &v), 0,
	    "far future: exp = now + lifetime max + skew: valid");
	is_int(proto_record_verify(vector, sizeof(vector),
	    EXP - life - skew - 1, &v), PROTO_ERR_STALE,
	    "far future: one second further: STALE");

	begin(5);
	f_key();
	f_addrs("10.0.0.5", 8080);
	f_uint("seq", 1);
	f_uint("exp", UINT64_MAX);
	f_uint("flags", 3);
	is_int(check_body(&v), PROTO_ERR_STALE,
	    "far future: exp 2^64 - 1: STALE, no overflow");
	begin(5);
	f_key();
	f_addrs("10.0.0.5", 8080);
	f_uint("seq", 1);
	f_uint("exp", 0);
	f_uint("flags", 3);
	is_int(check_body(&v), PROTO_ERR_STALE, "expiry: exp 0: STALE");
}

/* The length of a whole body with an unknown key "x" holding m zero
 * bytes, sealed; what verifying it said in padded_rc. */
static int padded_rc;

static size_t
padded(size_t m, proto_record *v)
{
	static const uint8_t pad[PROTO_RECORD_MAX];
	uint8_t rec[2 * PROTO_RECORD_MAX];
	size_t n;

	begin(6);
	f_key();
	f_rest();
	str("x");
	msgpack_pack_bin(&pk, m);
	msgpack_pack_bin_body(&pk, pad, m);
	n = seal((const uint8_t *)sb.data, sb.size, rec);
	padded_rc = proto_record_verify(rec, n, NOW, v);
	return n;
}

static void
test_sizes(void)
{
	uint8_t out[PROTO_RECORD_MAX + 8], big[PROTO_RECORD_MAX + 1];
	proto_record r, v;
	size_t len = 0;
	char host[64];

	memset(&r, 0, sizeof(r));
	for (unsigned i = 0; i < PROTO_RECORD_ADDRS_MAX; i++) {
		snprintf(host, sizeof(host),
		    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff%02x", i);
		proto_addr_from_host(&r.addrs[i], host, strlen(host), 65535);
	}
	r.naddrs = PROTO_RECORD_ADDRS_MAX;
	r.seq = UINT64_MAX;
	r.exp = EXP;
	r.flags = UINT64_MAX;
	is_int(proto_record_sign(&r, key, out, &len), 0,
	    "exact limit: 8 of the longest IPv6 addresses, every number at "
	    "its widest: signed");
	ok(len <= PROTO_RECORD_MAX, "exact limit: %zu bytes <= %u", len,
	    PROTO_RECORD_MAX);
	is_int(proto_record_verify(out, len, NOW, &v), 0,
	    "exact limit: verifies");
	ok(v.naddrs == 8 && v.seq == UINT64_MAX && v.flags == UINT64_MAX &&
	    proto_addr_equal(&v.addrs[7], &r.addrs[7]),
	    "exact limit: every field back");

	r.naddrs = PROTO_RECORD_ADDRS_MAX + 1;
	proto_addr_from_host(&r.addrs[0], "10.0.0.1", 8, 1);
	is_int(proto_record_sign(&r, key, out, &len), PROTO_ERR_TOO_BIG,
	    "sign: 9 addresses: TOO_BIG");
	r.naddrs = 1;
	memset(&r.addrs[0], 0, sizeof(r.addrs[0]));
	is_int(proto_record_sign(&r, key, out, &len), PROTO_ERR_INVALID,
	    "sign: an address of no family: INVALID");

	/* Nine addresses, signed: refused however well signed. */
	begin(5);
	f_key();
	str("addrs");
	msgpack_pack_array(&pk, 9);
	for (int i = 0; i < 9; i++) {
		msgpack_pack_array(&pk, 2);
		str("10.0.0.1");
		msgpack_pack_uint16(&pk, (uint16_t)(1000 + i));
	}
	f_uint("seq", 1);
	f_uint("exp", EXP);
	f_uint("flags", 0);
	is_int(check_body(&v), PROTO_ERR_TOO_BIG,
	    "verify: 9 addresses: TOO_BIG");

	memset(big, 0, sizeof(big));
	memcpy(big, vector, sizeof(vector));
	is_int(proto_record_verify(big, sizeof(big), NOW, &v),
	    PROTO_ERR_TOO_BIG, "verify: 1025 bytes: TOO_BIG before anything");
	is_int(proto_record_verify(big, sizeof(vector) + 1, NOW, &v),
	    PROTO_ERR_MALFORMED, "verify: a byte after the record: MALFORMED");

	/* An unknown key pads a record to exactly the limit, then one
	 * byte past it. */
	{
		size_t m = 0;
		while (m < PROTO_RECORD_MAX && padded(m, &v) !=
		    PROTO_RECORD_MAX)
			m++;
		is_int(padded(m, &v), PROTO_RECORD_MAX, "exact limit: a record "
		    "of 1024 bytes (an unknown key padding it)");
		is_int(padded_rc, 0, "exact limit: 1024 bytes verify");
		is_int(padded(m + 1, &v), PROTO_RECORD_MAX + 1,
		    "past the limit: 1025 bytes ...");
		is_int(padded_rc, PROTO_ERR_TOO_BIG, "... well signed: TOO_BIG");
	}
}

static void
test_shapes(void)
{
	proto_record v;
	uint8_t rec[512];

	begin(5);
	f_key();
	f_rest();
	is_int(check_body(&v), 0, "shape: the control body verifies");

	begin(6);
	f_key();
	f_rest();
	str("future");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_nil(&pk);
	msgpack_pack_true(&pk);
	is_int(check_body(&v), 0, "shape: an unknown key is ignored");

	begin(5);
	f_rest();
	f_uint("seq", 2);
	is_int(check_body(&v), PROTO_ERR_MALFORMED,
	    "shape: seq twice (and no key): MALFORMED");
	begin(6);
	f_key();
	f_rest();
	f_uint("flags", 0);
	is_int(check_body(&v), PROTO_ERR_MALFORMED,
	    "shape: flags twice, different values: MALFORMED");
	begin(4);
	f_addrs("10.0.0.5", 8080);
	f_uint("seq", 1);
	f_uint("exp", EXP);
	f_uint("flags", 3);
	is_int(check_body(&v), PROTO_ERR_MALFORMED, "shape: no key: MALFORMED");
	begin(4);
	f_key();
	f_addrs("10.0.0.5", 8080);
	f_uint("seq", 1);
	f_uint("exp", EXP);
	is_int(check_body(&v), PROTO_ERR_MALFORMED,
	    "shape: no flags: MALFORMED");
	begin(5);
	f_key();
	f_addrs("example.com", 8080);
	f_uint("seq", 1);
	f_uint("exp", EXP);
	f_uint("flags", 3);
	is_int(check_body(&v), PROTO_ERR_MALFORMED,
	    "shape: a host name, not an address: MALFORMED");
	begin(5);
	f_key();
	f_addrs("10.0.0.5", 0);
	f_uint("seq", 1);
	f_uint("exp", EXP);
	f_uint("flags", 3);
	is_int(check_body(&v), PROTO_ERR_MALFORMED, "shape: port 0: MALFORMED");
	begin(5);
	f_key();
	f_addrs("10.0.0.5", 65536);
	f_uint("seq", 1);
	f_uint("exp", EXP);
	f_uint("flags", 3);
	is_int(check_body(&v), PROTO_ERR_MALFORMED,
	    "shape: port 65536: MALFORMED");
	begin(5);
	f_key();
	f_addrs("10.0.0.5", 8080);
	str("seq");
	msgpack_pack_int64(&pk, -1);
	f_uint("exp", EXP);
	f_uint("flags", 3);
	is_int(check_body(&v), PROTO_ERR_MALFORMED, "shape: seq -1: MALFORMED");
	begin(5);
	str("key");
	msgpack_pack_bin(&pk, 31);
	msgpack_pack_bin_body(&pk, vector, 31);
	f_rest();
	is_int(check_body(&v), PROTO_ERR_MALFORMED,
	    "shape: a 31-byte key: MALFORMED");

	/* The outer array. */
	memcpy(rec, vector, sizeof(vector));
	rec[0] = 0x93;
	rec[sizeof(vector)] = 0x00;
	is_int(proto_record_verify(rec, sizeof(vector) + 1, NOW, &v),
	    PROTO_ERR_MALFORMED, "shape: [body, sig, 0]: MALFORMED");
	is_int(proto_record_verify(rec, sizeof(vector), NOW, &v),
	    PROTO_ERR_TOO_BIG, "shape: an array of 3 holding 2: TOO_BIG "
	    "(declares more than the bytes hold)");
	memcpy(rec, vector, sizeof(vector));
	rec[BODY_OFF + BODY_LEN + 1] = 0x3f;
	is_int(proto_record_verify(rec, sizeof(vector) - 1, NOW, &v),
	    PROTO_ERR_MALFORMED, "shape: a 63-byte signature: MALFORMED");
	{
		/* A body that is an array, not a map. */
		static const uint8_t arr[] = { 0x91, 0x01 };
		size_t n = seal(arr, sizeof(arr), rec);
		is_int(proto_record_verify(rec, n, NOW, &v),
		    PROTO_ERR_MALFORMED, "shape: a body that is no map: "
		    "MALFORMED");
	}
	{
		/* A body claiming 2^32 - 1 entries in 5 bytes: the checker
		 * stops it before msgpack-c reserves room for them. */
		static const uint8_t huge[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
		size_t n = seal(huge, sizeof(huge), rec);
		is_int(proto_record_verify(rec, n, NOW, &v), PROTO_ERR_TOO_BIG,
		    "shape: a map of 2^32 - 1 entries declared: TOO_BIG");
	}
}

/* A node's own record kept signed: once, again only when it says
 * something else or half its life is gone, seq always going up. */
static void
test_refresh(void)
{
	proto_record_own o;
	proto_addr addrs[10];
	proto_record v;
	uint64_t now = (uint64_t)time(NULL), seq;
	char host[32];

	for (int i = 0; i < 10; i++) {
		snprintf(host, sizeof(host), "10.0.0.%d", i + 1);
		proto_addr_from_host(&addrs[i], host, strlen(host), 7000);
	}
	proto_addr_set_pin(&addrs[0], vector);
	memset(&o, 0, sizeof(o));
	is_int(proto_record_refresh(&o, key, addrs, 10, 2, now), 0,
	    "refresh: signed the first time");
	ok(o.len > 0 && proto_record_verify(o.buf, o.len, now, &v) == 0,
	    "refresh: the record verifies");
	ok(v.naddrs == PROTO_RECORD_ADDRS_MAX && v.flags == 2 &&
	    v.exp == now + PROTO_RECORD_LIFETIME &&
	    proto_addr_equal(&v.addrs[7], &addrs[7]) && !v.addrs[0].has_pin,
	    "refresh: the first 8 addresses, no pins, flags, exp now + 1 h");
	ok(v.seq >= now * 1000, "refresh: seq is the clock in milliseconds");
	seq = o.r.seq;
	is_int(proto_record_refresh(&o, key, addrs, 10, 2,
	    now + PROTO_RECORD_LIFETIME / 2), 0, "refresh again, half an hour "
	    "on, the same said ...");
	ok(o.r.seq == seq, "... not signed again");
	proto_record_refresh(&o, key, addrs, 10, 3, now);
	ok(o.r.seq > seq && o.r.flags == 3, "flags changed: signed again, a "
	    "higher seq");
	seq = o.r.seq;
	proto_record_refresh(&o, key, addrs + 1, 2, 3, now);
	ok(o.r.seq > seq && o.r.naddrs == 2, "addresses changed: signed again");
	seq = o.r.seq;
	proto_record_refresh(&o, key, addrs + 1, 2, 3,
	    now + PROTO_RECORD_LIFETIME / 2 + 1);
	ok(o.r.seq > seq && o.r.exp == now + PROTO_RECORD_LIFETIME / 2 + 1 +
	    PROTO_RECORD_LIFETIME, "less than half its life left: signed again");
	o.r.seq = UINT64_MAX - 1; /* a clock gone back: still up */
	proto_record_refresh(&o, key, addrs, 1, 3, now);
	ok(o.r.seq == UINT64_MAX, "a clock behind the last seq: seq + 1");
}

/* A signature checked once is not checked again, and nothing else of the
 * record is taken on trust: its expiry, and any byte changed. */
static void
test_checked_again(void)
{
	static proto_record_own own[100];
	uint8_t buf[sizeof(vector)];
	uint64_t now = (uint64_t)time(NULL);
	proto_addr a;
	proto_record v;
	int good = 0;

	is_int(proto_record_verify(vector, sizeof(vector), NOW, &v), 0,
	    "checked again: the vector verifies");
	is_int(proto_record_verify(vector, sizeof(vector), EXP +
	    PROTO_RECORD_SKEW + 1, &v), PROTO_ERR_STALE,
	    "checked again: once past its expiry, STALE all the same");
	memcpy(buf, vector, sizeof(buf));
	buf[sizeof(buf) - 1] ^= 1;
	is_int(proto_record_verify(buf, sizeof(buf), NOW, &v),
	    PROTO_ERR_MISMATCH, "checked again: its signature's last bit "
	    "flipped: MISMATCH");
	proto_addr_from_host(&a, "10.0.0.9", 8, 7000);
	/* Many records, each verified twice (the second time from memory,
	 * unless two share a slot). */
	for (int i = 0; i < 100; i++) {
		memset(&own[i], 0, sizeof(own[i]));
		proto_addr_set_port(&a, (uint16_t)(7000 + i));
		if (proto_record_refresh(&own[i], key, &a, 1, 2, now) == 0 &&
		    proto_record_verify(own[i].buf, own[i].len, now, &v) == 0 &&
		    proto_record_verify(own[i].buf, own[i].len, now, &v) == 0 &&
		    memcmp(v.id, proto_identity_id(key), PROTO_IDENTITY_LEN) ==
		    0 && proto_addr_port(&v.addrs[0]) == 7000 + i)
			good++;
	}
	is_int(good, 100, "checked again: 100 records, each verified twice, "
	    "naming their signer and their own address");
	ok(proto_record_verify(own[0].buf, own[0].len, now, &v) == 0 &&
	    proto_record_verify(vector, sizeof(vector), NOW, &v) == 0 &&
	    v.seq == 1, "checked again: the first ones, and the vector, "
	    "still verify, each as itself");
}

/* Watches what a node offers. */
static void
offered(const proto_node_seen *seen, void *arg)
{
	proto_addr *last = arg;

	*last = seen->addr;
}

/* Two nodes, b bootstrapping through a (plaintext: no TLS identity, so the
 * record alone names a): b's table keeps a's record, and what b offers
 * its watcher is pinned to a's identity. */
static void
test_nodes(void)
{
	struct event_base *base = event_base_new();
	proto_node_config cfg;
	proto_node_cbs cbs = { NULL };
	proto_node *a, *b;
	proto_addr at, a_addr, got;
	const proto_known_peer *e;
	const uint8_t *rec;
	size_t len;
	time_t end;

	memset(&cfg, 0, sizeof(cfg));
	memset(&got, 0, sizeof(got));
	proto_addr_from_host(&at, "127.0.0.1", 9, 1);
	proto_addr_set_port(&at, 0);
	a = proto_node_new(base, &cfg, &cbs, NULL);
	ok(proto_node_record(a, &len) == NULL && len == 0,
	    "node without a key: no record");
	proto_node_free(a);
	cfg.identity = key;
	a = proto_node_new(base, &cfg, &cbs, NULL);
	ok(proto_node_record(a, &len) == NULL, "node not listening: no record");
	proto_node_listen(a, &at);
	a_addr = at;
	proto_addr_set_port(&a_addr, proto_node_port(a));
	rec = proto_node_record(a, &len);
	ok(rec != NULL && proto_record_verify(rec, len, (uint64_t)time(NULL),
	    &(proto_record){ 0 }) == 0, "listening with a key: a record");

	cfg.boot = &a_addr;
	cfg.nboot = 1;
	b = proto_node_new(base, &cfg, &cbs, NULL);
	proto_node_listen(b, &at);
	proto_node_watch(b, offered, &got);
	proto_node_start_bootstrap(b);
	end = time(NULL) + 10;
	while (time(NULL) < end && !got.has_pin) {
		struct timespec ms = { 0, 1000000 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ms, NULL);
	}
	e = proto_peers_find(proto_node_known(b), &a_addr);
	ok(e != NULL && e->checked && e->record_len > 0 &&
	    memcmp(e->addr.pin, proto_identity_id(key), PROTO_IDENTITY_LEN) == 0,
	    "b met a: a's entry holds a's record");
	ok(proto_addr_equal(&got, &a_addr) && got.has_pin &&
	    memcmp(got.pin, proto_identity_id(key), PROTO_IDENTITY_LEN) == 0,
	    "b offers a pinned to a's identity");
	proto_node_free(b);
	proto_node_free(a);
	proto_base_free(base);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	load_vector_key();
	msgpack_sbuffer_init(&sb);
	test_vector();
	test_every_bit();
	test_tamper();
	test_domain();
	test_expiry();
	test_sizes();
	test_shapes();
	test_refresh();
	test_checked_again();
	test_nodes();
	msgpack_sbuffer_destroy(&sb);
	proto_identity_free(key);
	return done_testing();
}
