/*
 * frame.c: the length prefix, the body check, and frame parsing at and
 * around the two length limits. Inputs sit in heap buffers of exactly their
 * length so that a read past the end shows up under AddressSanitizer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "frame.h"
#include "tap.h"

/* A heap frame: header for body_len, then body (which may be shorter than
 * body_len: a frame still arriving). *len gets the bytes at hand. */
static uint8_t *
frame_of(uint32_t body_len, const void *body, size_t have, size_t *len)
{
	uint8_t *f = malloc(PROTO_FRAME_HEADER + have);

	if (f == NULL)
		exit(2);
	proto_frame_put_len(f, body_len);
	if (have)
		memcpy(f + PROTO_FRAME_HEADER, body, have);
	*len = PROTO_FRAME_HEADER + have;
	return f;
}

static long
parse(uint32_t body_len, const void *body, size_t have, size_t max)
{
	size_t len;
	uint8_t *f = frame_of(body_len, body, have, &len);
	long n = proto_frame_parse(f, len, max);

	free(f);
	return n;
}

static int
check_body(const void *body, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	if (copy == NULL)
		exit(2);
	if (len)
		memcpy(copy, body, len);
	rc = proto_frame_check_body(copy, len);
	free(copy);
	return rc;
}

/* A body of exactly n bytes (n >= 6): one bin32 filling it. */
static uint8_t *
bin_body(size_t n)
{
	uint8_t *b = malloc(n);
	uint32_t k = (uint32_t)(n - 5);

	if (b == NULL)
		exit(2);
	b[0] = 0xc6;
	b[1] = (uint8_t)(k >> 24);
	b[2] = (uint8_t)(k >> 16);
	b[3] = (uint8_t)(k >> 8);
	b[4] = (uint8_t)k;
	memset(b + 5, 0xab, n - 5);
	return b;
}

static void
test_len(void)
{
	uint8_t hdr[4];
	uint32_t len = 0;

	proto_frame_put_len(hdr, 0x01020304);
	is_mem(hdr, "\x01\x02\x03\x04", 4, "put_len writes big-endian");
	is_int(proto_frame_get_len(hdr, SIZE_MAX, &len), 0,
	    "get_len: under max succeeds");
	is_int(len, 0x01020304, "get_len reads big-endian");
	proto_frame_put_len(hdr, PROTO_FRAME_MAX);
	is_int(proto_frame_get_len(hdr, PROTO_FRAME_MAX, &len), 0,
	    "get_len exact limit: length == PROTO_FRAME_MAX");
	proto_frame_put_len(hdr, PROTO_FRAME_MAX + 1);
	len = 77;
	is_int(proto_frame_get_len(hdr, PROTO_FRAME_MAX, &len), PROTO_ERR_TOO_BIG,
	    "get_len: length over max -> TOO_BIG");
	is_int(len, 77, "get_len: *len untouched when over max");
	proto_frame_put_len(hdr, 0xffffffff);
	is_int(proto_frame_get_len(hdr, PROTO_FRAME_MAX, &len), PROTO_ERR_TOO_BIG,
	    "get_len giant: 0xFFFFFFFF -> TOO_BIG");
	proto_frame_put_len(hdr, PROTO_FRAME_HANDSHAKE_MAX);
	is_int(proto_frame_get_len(hdr, PROTO_FRAME_HANDSHAKE_MAX, &len), 0,
	    "get_len handshake exact limit: 4096");
	proto_frame_put_len(hdr, PROTO_FRAME_HANDSHAKE_MAX + 1);
	is_int(proto_frame_get_len(hdr, PROTO_FRAME_HANDSHAKE_MAX, &len),
	    PROTO_ERR_TOO_BIG, "get_len handshake max: 4097 -> TOO_BIG");
	proto_frame_put_len(hdr, 0);
	is_int(proto_frame_get_len(hdr, 0, &len), 0, "get_len: 0 with max 0");
}

static void
test_check_body(void)
{
	int rc;

	is_int(check_body("\x92\x01\x02", 3), 0, "body: one array");
	is_int(check_body("\x01", 1), 0, "body: one scalar");
	is_int(check_body("\x92\x01\x02\xff", 4), PROTO_ERR_MALFORMED,
	    "body: trailing garbage byte -> MALFORMED");
	is_int(check_body("\x92\x01\x02\xc1", 4), PROTO_ERR_MALFORMED,
	    "body: trailing 0xc1 -> MALFORMED");
	is_int(check_body("\x01\x02", 2), PROTO_ERR_MALFORMED,
	    "body: two objects (1, 2) -> MALFORMED");
	is_int(check_body("\x91\x01\x91\x02", 4), PROTO_ERR_MALFORMED,
	    "body: two objects ([1], [2]) -> MALFORMED");
	rc = check_body("", 0);
	ok(rc == PROTO_ERR_MALFORMED || rc == PROTO_ERR_TOO_BIG,
	    "body: empty body is rejected");
	diag("empty body gives %d (%s)", rc, proto_strerror(rc));
	rc = check_body("\x92\x01", 2);
	ok(rc == PROTO_ERR_MALFORMED || rc == PROTO_ERR_TOO_BIG,
	    "body truncated: array of 2 with 1 element is rejected");
	diag("truncated body gives %d (%s)", rc, proto_strerror(rc));
	is_int(check_body("\xdb\xff\xff\xff\xff", 5), PROTO_ERR_TOO_BIG,
	    "body giant: str32 0xFFFFFFFF in 5 bytes -> TOO_BIG");
	is_int(check_body("\xdd\x01\x00\x00\x00", 5), PROTO_ERR_TOO_BIG,
	    "body giant: array32 2^24 in 5 bytes -> TOO_BIG");
	is_int(check_body("\x91\xd4\x00\x00", 4), PROTO_ERR_MALFORMED,
	    "body: ext type inside -> MALFORMED");
}

static void
test_parse(void)
{
	uint8_t *body, *f;
	size_t len;
	long n;

	is_int(parse(3, "\x92\x01\x02", 3, PROTO_FRAME_MAX), 7,
	    "parse: whole frame -> 4 + 3");
	is_int(parse(3, "\x92\x01\x02", 2, PROTO_FRAME_MAX), 0,
	    "parse truncated: body one byte short -> 0");
	is_int(parse(3, "", 0, PROTO_FRAME_MAX), 0,
	    "parse truncated: header only -> 0");
	f = frame_of(3, "", 0, &len);
	is_int(proto_frame_parse(f, 2, PROTO_FRAME_MAX), 0,
	    "parse truncated: half a header -> 0");
	is_int(proto_frame_parse(f, 0, PROTO_FRAME_MAX), 0,
	    "parse truncated: nothing -> 0");
	free(f);
	is_int(parse(3, "\x92\x01\x02\x7f", 4, PROTO_FRAME_MAX), 7,
	    "parse: bytes of the next frame after it are left alone");
	is_int(parse(4, "\x92\x01\x02\x03", 4, PROTO_FRAME_MAX),
	    PROTO_ERR_MALFORMED, "parse: trailing garbage in body -> MALFORMED");
	is_int(parse(2, "\x01\x02", 2, PROTO_FRAME_MAX), PROTO_ERR_MALFORMED,
	    "parse: two objects in one body -> MALFORMED");
	n = parse(0, "", 0, PROTO_FRAME_MAX);
	ok(n == PROTO_ERR_MALFORMED || n == PROTO_ERR_TOO_BIG,
	    "parse: empty body (length 0) is an error, not need-more");
	is_int(parse(PROTO_FRAME_MAX + 1, "", 0, PROTO_FRAME_MAX),
	    PROTO_ERR_TOO_BIG, "parse: length over max, header only -> TOO_BIG");
	is_int(parse(0xffffffff, "", 0, PROTO_FRAME_MAX), PROTO_ERR_TOO_BIG,
	    "parse giant: length 0xFFFFFFFF -> TOO_BIG");
	is_int(parse(PROTO_FRAME_HANDSHAKE_MAX + 1, "", 0,
	    PROTO_FRAME_HANDSHAKE_MAX), PROTO_ERR_TOO_BIG,
	    "parse handshake max: 4097 -> TOO_BIG at once");

	/* Exactly the handshake limit: a 4096-byte body. */
	body = bin_body(PROTO_FRAME_HANDSHAKE_MAX);
	is_int(parse(PROTO_FRAME_HANDSHAKE_MAX, body, PROTO_FRAME_HANDSHAKE_MAX,
	    PROTO_FRAME_HANDSHAKE_MAX), 4 + PROTO_FRAME_HANDSHAKE_MAX,
	    "parse handshake exact limit: body of 4096 bytes");
	is_int(parse(PROTO_FRAME_HANDSHAKE_MAX, body, 100,
	    PROTO_FRAME_HANDSHAKE_MAX), 0,
	    "parse handshake exact limit, partial body -> 0");
	free(body);

	/* Exactly PROTO_FRAME_MAX: a 16 MiB body. */
	body = bin_body(PROTO_FRAME_MAX);
	is_int(parse(PROTO_FRAME_MAX, body, PROTO_FRAME_MAX, PROTO_FRAME_MAX),
	    4 + (long)PROTO_FRAME_MAX,
	    "parse exact limit: body of PROTO_FRAME_MAX bytes");
	is_int(parse(PROTO_FRAME_MAX, body, PROTO_FRAME_MAX - 1,
	    PROTO_FRAME_MAX), 0, "parse exact limit, one byte short -> 0");
	is_int(parse(PROTO_FRAME_MAX, body, PROTO_FRAME_MAX,
	    PROTO_FRAME_MAX - 1), PROTO_ERR_TOO_BIG,
	    "parse: same frame, max one less -> TOO_BIG");
	free(body);

	/* A body whose inner bin claims one byte more than the frame holds. */
	body = bin_body(100);
	body[4]++;
	is_int(parse(100, body, 100, PROTO_FRAME_MAX), PROTO_ERR_TOO_BIG,
	    "parse: inner length one over the frame -> TOO_BIG");
	body[4] -= 2;
	is_int(parse(100, body, 100, PROTO_FRAME_MAX), PROTO_ERR_MALFORMED,
	    "parse: inner length one under the frame -> MALFORMED (trailing)");
	free(body);
}

static void
test_nesting_and_objects(void)
{
	uint8_t buf[32], *big;
	size_t n = 0;

	for (int i = 0; i < 16; i++)
		buf[n++] = 0x91;
	buf[n++] = 0x00;
	is_int(parse((uint32_t)n, buf, n, PROTO_FRAME_MAX), 4 + (long)n,
	    "parse depth exact limit: 16 nested arrays");
	memmove(buf + 1, buf, n);
	buf[0] = 0x91;
	n++;
	is_int(parse((uint32_t)n, buf, n, PROTO_FRAME_MAX), PROTO_ERR_TOO_BIG,
	    "parse depth: 17 nested arrays -> TOO_BIG");

	n = 5 + 65535;
	if ((big = malloc(n + 1)) == NULL)
		exit(2);
	memcpy(big, "\xdd\x00\x00\xff\xff", 5);
	memset(big + 5, 0x00, 65535);
	is_int(parse((uint32_t)n, big, n, PROTO_FRAME_MAX), 4 + (long)n,
	    "parse objects exact limit: 65536 objects");
	memcpy(big, "\xdd\x00\x01\x00\x00", 5);
	big[n] = 0x00;
	is_int(parse((uint32_t)n + 1, big, n + 1, PROTO_FRAME_MAX),
	    PROTO_ERR_TOO_BIG, "parse objects: 65537 objects -> TOO_BIG");
	free(big);
}

int
main(void)
{
	test_len();
	test_check_body();
	test_parse();
	test_nesting_and_objects();
	return done_testing();
}
