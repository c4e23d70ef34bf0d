/*
 * check.c: the bounds checker for untrusted msgpack. Every input is copied
 * into a heap buffer of exactly its length, so a read past buf + len shows
 * up under AddressSanitizer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "check.h"
#include "frame.h"
#include "tap.h"

/* proto_check_msgpack on an exact-size copy of len bytes at p. */
static long
check_lim(const void *p, size_t len, const proto_check_limits *lim)
{
	uint8_t *copy = malloc(len ? len : 1);
	long n;

	if (copy == NULL)
		exit(2);
	if (len)
		memcpy(copy, p, len);
	n = proto_check_msgpack(copy, len, lim);
	free(copy);
	return n;
}

/* With the default depth and object limits and max_bytes max. */
static long
check(const void *p, size_t len, size_t max)
{
	proto_check_limits lim;

	proto_check_limits_init(&lim, max);
	return check_lim(p, len, &lim);
}

#define CHECK(bytes, max) check(bytes, sizeof(bytes) - 1, max)

static void
test_limits_init(void)
{
	proto_check_limits lim;

	proto_check_limits_init(&lim, 1234);
	is_int(lim.max_bytes, 1234, "limits_init: max_bytes as given");
	is_int(lim.max_depth, PROTO_CHECK_DEPTH, "limits_init: default depth 16");
	is_int(lim.max_objects, PROTO_CHECK_OBJECTS,
	    "limits_init: default objects 65536");
}

static void
test_scalars(void)
{
	is_int(CHECK("\x01", 100), 1, "scalar: positive fixint");
	is_int(CHECK("\xff", 100), 1, "scalar: negative fixint");
	is_int(CHECK("\xc0", 100), 1, "scalar: nil");
	is_int(CHECK("\xc3", 100), 1, "scalar: true");
	is_int(CHECK("\xcc\x80", 100), 2, "scalar: uint8");
	is_int(CHECK("\xcf\x01\x02\x03\x04\x05\x06\x07\x08", 100), 9,
	    "scalar: uint64");
	is_int(CHECK("\xd3\x01\x02\x03\x04\x05\x06\x07\x08", 100), 9,
	    "scalar: int64");
	is_int(CHECK("\xca\x00\x00\x00\x00", 100), 5, "scalar: float32");
	is_int(CHECK("\xcb\x00\x00\x00\x00\x00\x00\x00\x00", 100), 9,
	    "scalar: float64");
	is_int(CHECK("\xa0", 100), 1, "raw: empty fixstr");
	is_int(CHECK("\xd9\x00", 100), 2, "raw: empty str8");
	is_int(CHECK("\xc4\x03xyz", 100), 5, "raw: bin8 of 3");
	is_int(CHECK("\xc5\x00\x02xy", 100), 5, "raw: bin16 of 2");
	is_int(CHECK("\xc6\x00\x00\x00\x01x", 100), 6, "raw: bin32 of 1");
	is_int(CHECK("\x90", 100), 1, "container: empty fixarray");
	is_int(CHECK("\x80", 100), 1, "container: empty fixmap");
	is_int(CHECK("\xdc\x00\x00", 100), 3, "container: empty array16");
	is_int(CHECK("\xdf\x00\x00\x00\x00", 100), 5, "container: empty map32");
	is_int(CHECK("\x82\x01\x02\xa1k\x90", 100), 6, "container: fixmap of 2");
	is_int(CHECK("\x92\x01\x02\xc1\xc1", 100), 3,
	    "trailing bytes after the object are not read");
}

static void
test_truncated(void)
{
	static const uint8_t msg[] = {
		0x95, 0x00, 0x01, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0xa3, 'a', 'b',
		'c', 0x82, 0xc4, 0x02, 1, 2, 0xdc, 0x00, 0x01, 0xc0, 0xd9, 0x01,
		'z', 0xc6, 0x00, 0x00, 0x00, 0x02, 'q', 'r',
	};
	int all = 1;

	is_int(check("", 0, 100), 0, "truncated: empty input -> 0 (need more)");
	is_int(CHECK("\xcf\x00\x00\x00", 100), 0,
	    "truncated: uint64 with 3 of 8 bytes -> 0");
	is_int(CHECK("\xa3" "ab", 100), 0, "truncated: fixstr 3 with 2 bytes -> 0");
	is_int(CHECK("\xd9", 100), 0, "truncated: str8 header without length -> 0");
	is_int(CHECK("\xdd\x00\x00", 100), 0,
	    "truncated: inside an array32 length field -> 0");
	is_int(CHECK("\x92\x01", 100), 0,
	    "truncated: array of 2 holding 1 element -> 0");
	is_int(CHECK("\x81\x01", 100), 0, "truncated: map missing its value -> 0");
	is_int(check(msg, sizeof(msg), 1000), (long)sizeof(msg),
	    "whole nested message is accepted");
	for (size_t i = 0; i < sizeof(msg); i++) {
		long n = check(msg, i, 1000);
		if (n != 0) {
			diag("prefix of %zu bytes gave %ld", i, n);
			all = 0;
		}
	}
	ok(all, "truncated: every proper prefix of a nested message -> 0");
	is_int(check(msg, sizeof(msg) - 1, sizeof(msg) - 1), PROTO_ERR_TOO_BIG,
	    "truncated but at max_bytes: cannot fit -> TOO_BIG, not need more");
}

static void
test_exact_limit(void)
{
	is_int(CHECK("\xa3" "abc", 4), 4, "exact limit: str of 4 bytes, max 4");
	is_int(CHECK("\xa3" "abc", 3), PROTO_ERR_TOO_BIG,
	    "one over the limit: str of 4 bytes, max 3 -> TOO_BIG");
	is_int(CHECK("\x93\x01\x02\x03", 4), 4,
	    "exact limit: array of 4 bytes, max 4");
	is_int(CHECK("\x93\x01\x02\x03", 3), PROTO_ERR_TOO_BIG,
	    "one over the limit: array of 4 bytes, max 3 -> TOO_BIG");
	is_int(CHECK("\x01", 1), 1, "exact limit: 1-byte scalar, max 1");
	is_int(CHECK("\x01", 0), PROTO_ERR_TOO_BIG, "max_bytes 0 -> TOO_BIG");
	is_int(CHECK("\xcd\x01\x02", 2), PROTO_ERR_TOO_BIG,
	    "uint16 needs 3 bytes, max 2 -> TOO_BIG");
	is_int(CHECK("\x93\x01\x02\x03\x04", 4), 4,
	    "max_bytes smaller than len, object fits -> its length");
}

static void
test_giant(void)
{
	uint8_t nest[32 * 5];
	proto_check_limits lim;

	is_int(CHECK("\xdd\x01\x00\x00\x00", 5), PROTO_ERR_TOO_BIG,
	    "giant: array32 of 2^24 elements in a 5-byte buffer -> TOO_BIG");
	is_int(CHECK("\xdd\x01\x00\x00\x00", PROTO_FRAME_MAX), PROTO_ERR_TOO_BIG,
	    "giant: array32 of 2^24 elements, max 16 MiB -> TOO_BIG");
	proto_check_limits_init(&lim, SIZE_MAX);
	lim.max_objects = UINT32_MAX;
	is_int(check_lim("\xdd\x01\x00\x00\x00", 5, &lim), 0,
	    "giant: array32 of 2^24, no byte or object limit -> need more");
	is_int(check_lim("\xdd\xff\xff\xff\xff", 5, &lim), PROTO_ERR_TOO_BIG,
	    "giant: array32 of 2^32-1 overflows a uint32 object limit -> TOO_BIG");
	is_int(CHECK("\xdf\xff\xff\xff\xff", 1 << 20), PROTO_ERR_TOO_BIG,
	    "giant: map32 of 2^32-1 pairs -> TOO_BIG");
	is_int(CHECK("\xdb\xff\xff\xff\xff", PROTO_FRAME_MAX), PROTO_ERR_TOO_BIG,
	    "giant: str32 of length 0xFFFFFFFF -> TOO_BIG");
	is_int(CHECK("\xc6\xff\xff\xff\xff", PROTO_FRAME_MAX), PROTO_ERR_TOO_BIG,
	    "giant: bin32 of length 0xFFFFFFFF -> TOO_BIG");
	is_int(CHECK("\xdb\xff\xff\xff\xff", SIZE_MAX), 0,
	    "giant: str32 0xFFFFFFFF with max SIZE_MAX -> need more, no overflow");
	for (int i = 0; i < 32; i++)
		memcpy(nest + 5 * i, "\xdd\x00\x00\x00\x01", 5);
	is_int(check(nest, sizeof(nest), sizeof(nest)), PROTO_ERR_TOO_BIG,
	    "giant: 32 nested array32 headers -> TOO_BIG");
	is_int(check(nest, sizeof(nest), 1 << 20), PROTO_ERR_TOO_BIG,
	    "giant: 32 nested array32 headers, roomy max -> TOO_BIG");
}

/* n nested one-element arrays around a 1, or around nothing. */
static size_t
nested(uint8_t *buf, unsigned n, int innermost_empty)
{
	size_t len = 0;

	for (unsigned i = 0; i < n; i++)
		buf[len++] = 0x91;
	if (innermost_empty)
		buf[len - 1] = 0x90;
	else
		buf[len++] = 0x01;
	return len;
}

static void
test_depth(void)
{
	uint8_t buf[64];
	proto_check_limits lim;
	size_t n;

	n = nested(buf, 16, 0);
	is_int(check(buf, n, 100), (long)n, "depth exact limit: 16 nested arrays ok");
	n = nested(buf, 17, 0);
	is_int(check(buf, n, 100), PROTO_ERR_TOO_BIG,
	    "depth: 17 nested arrays -> TOO_BIG");
	n = 0;
	for (int i = 0; i < 16; i++) {
		buf[n++] = 0x81;
		buf[n++] = 0x00;
	}
	buf[n++] = 0x01;
	is_int(check(buf, n, 100), (long)n, "depth exact limit: 16 nested maps ok");
	memmove(buf + 2, buf, n);
	buf[0] = 0x81;
	buf[1] = 0x00;
	n += 2;
	is_int(check(buf, n, 100), PROTO_ERR_TOO_BIG,
	    "depth: 17 nested maps -> TOO_BIG");
	n = nested(buf, 16, 1);
	is_int(check(buf, n, 100), (long)n,
	    "depth: 16 nested arrays, innermost empty ok");
	n = nested(buf, 17, 1);
	is_int(check(buf, n, 100), PROTO_ERR_TOO_BIG,
	    "depth: 17 nested arrays, innermost empty -> TOO_BIG");

	proto_check_limits_init(&lim, 100);
	lim.max_depth = 2;
	n = nested(buf, 2, 0);
	is_int(check_lim(buf, n, &lim), (long)n, "max_depth 2: 2 nested ok");
	n = nested(buf, 3, 0);
	is_int(check_lim(buf, n, &lim), PROTO_ERR_TOO_BIG,
	    "max_depth 2: 3 nested -> TOO_BIG");
	lim.max_depth = 0;
	is_int(check_lim("\x07", 1, &lim), 1, "max_depth 0: a scalar ok");
	is_int(check_lim("\x91\x07", 2, &lim), PROTO_ERR_TOO_BIG,
	    "max_depth 0: an array -> TOO_BIG");
	lim.max_depth = 1000;
	n = nested(buf, 17, 0);
	is_int(check_lim(buf, n, &lim), PROTO_ERR_TOO_BIG,
	    "max_depth over 16 is capped: 17 nested -> TOO_BIG");
}

static void
test_bad_types(void)
{
	static const uint8_t ext[] = { 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7,
	    0xd8 };
	static const char *const ext_name[] = { "ext8", "ext16", "ext32",
	    "fixext1", "fixext2", "fixext4", "fixext8", "fixext16" };
	uint8_t buf[32];

	is_int(CHECK("\xc1", 100), PROTO_ERR_MALFORMED,
	    "reserved byte 0xc1 -> MALFORMED");
	is_int(CHECK("\x92\x01\xc1", 100), PROTO_ERR_MALFORMED,
	    "0xc1 inside an array -> MALFORMED");
	for (size_t i = 0; i < sizeof(ext); i++) {
		memset(buf, 0, sizeof(buf));
		buf[0] = ext[i];
		is_int(check(buf, sizeof(buf), 100), PROTO_ERR_MALFORMED,
		    ext_name[i]);
	}
	is_int(CHECK("\x81\xa1k\xd4\x01\x02", 100), PROTO_ERR_MALFORMED,
	    "fixext1 as a map value -> MALFORMED");
}

static void
test_objects(void)
{
	proto_check_limits lim;
	uint8_t *big;
	size_t n = 5 + 65536;

	proto_check_limits_init(&lim, 100);
	lim.max_objects = 3;
	is_int(check_lim("\x92\x01\x02", 3, &lim), 3,
	    "max_objects exact limit: [1,2] is 3 objects, limit 3");
	is_int(check_lim("\x93\x01\x02\x03", 4, &lim), PROTO_ERR_TOO_BIG,
	    "max_objects: [1,2,3] is 4 objects, limit 3 -> TOO_BIG");
	is_int(check_lim("\x81\x01\x02", 3, &lim), 3,
	    "max_objects: map {1:2} is 3 objects");
	is_int(check_lim("\x91\x91\x91\x01", 4, &lim), PROTO_ERR_TOO_BIG,
	    "max_objects: 4 nested objects, limit 3 -> TOO_BIG");
	lim.max_objects = 1;
	is_int(check_lim("\x07", 1, &lim), 1, "max_objects 1: a scalar ok");
	is_int(check_lim("\x90", 1, &lim), 1, "max_objects 1: empty array ok");
	lim.max_objects = 0;
	is_int(check_lim("\x07", 1, &lim), PROTO_ERR_TOO_BIG,
	    "max_objects 0: anything -> TOO_BIG");

	/* The default: 65536 objects in all. */
	if ((big = malloc(n)) == NULL)
		exit(2);
	memcpy(big, "\xdd\x00\x00\xff\xff", 5);
	memset(big + 5, 0xc0, 65535);
	is_int(check(big, 5 + 65535, 1 << 20), 5 + 65535,
	    "default objects exact limit: array of 65535 nils = 65536 objects");
	memcpy(big, "\xdd\x00\x01\x00\x00", 5);
	memset(big + 5, 0xc0, 65536);
	is_int(check(big, n, 1 << 20), PROTO_ERR_TOO_BIG,
	    "default objects: array of 65536 nils = 65537 objects -> TOO_BIG");
	free(big);
}

/* Random bytes must never crash, read out of bounds, or claim more than
 * len. A tiny LCG keeps the run reproducible. */
static void
test_random(void)
{
	uint32_t seed = 12345;
	uint8_t buf[64];
	int sane = 1;

	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(round % 64) + 1;
		long n;
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)(seed >> 16);
		}
		n = check(buf, len, round % 3 ? 64 : len);
		if (n > (long)len || (n < 0 && n != PROTO_ERR_TOO_BIG &&
		    n != PROTO_ERR_MALFORMED)) {
			diag("round %d: len %zu gave %ld", round, len, n);
			sane = 0;
		}
	}
	ok(sane, "random bytes: 20000 inputs, results within len or errors");
}

int
main(void)
{
	test_limits_init();
	test_scalars();
	test_truncated();
	test_exact_limit();
	test_giant();
	test_depth();
	test_bad_types();
	test_objects();
	test_random();
	return done_testing();
}
