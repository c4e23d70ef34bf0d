/*
 * msghashes.c: GET_HASHES and HASHES through proto_msg_pack,
 * proto_frame_parse and proto_msg_unpack; the encoding examples of
 * docs/PROTOCOL.md section 5, byte for byte; hand-written bodies of the
 * wrong shape; and the limits, exact and one past.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "frame.h"
#include "tap.h"

/* byte(81820)'s id, its chunk 4, and the node N2[0] (section 1). */
#define ID "1107b2454107b406702ff219c9b600d7e36ab9ad0167a67645e401f2e28335f3"
#define C4 "6c44d8e1b0afb9e92bfe48b697e5ea06ca69c2058312f1a65ce07ca13f44aa42"
#define N2_0 "2d6b546231225a7132a38ab354f03e9132e4b9141da89f1784b71ab2fb34fae3"

static uint8_t id[32], c4[32], n2[32];

static int
roundtrip(const proto_msg *m, proto_msg *out, uint8_t **frame, size_t *len)
{
	long n;
	int rc;

	*frame = NULL;
	proto_msg_init(out, 0);
	if ((rc = proto_msg_pack(m, frame, len)) != 0)
		return rc;
	n = proto_frame_parse(*frame, *len, PROTO_FRAME_MAX);
	if (n != (long)*len)
		return n < 0 ? (int)n : PROTO_ERR_MALFORMED;
	return proto_msg_unpack(*frame + PROTO_FRAME_HEADER,
	    *len - PROTO_FRAME_HEADER, out);
}

/* The bytes of hex text with spaces, and {ID}, {C4}, {N2} for the
 * 32-byte values above ({I31}: the id's first 31 bytes). */
static size_t
bytes_of(const char *text, uint8_t *out)
{
	size_t n = 0;

	while (*text) {
		if (*text == ' ') {
			text++;
		} else if (*text == '{') {
			const uint8_t *v = text[1] == 'I' ? id : text[1] == 'C' ?
			    c4 : n2;
			size_t k = text[2] == '3' ? 31 : 32;
			memcpy(out + n, v, k);
			n += k;
			text = strchr(text, '}') + 1;
		} else {
			unsigned b;
			if (sscanf(text, "%2x", &b) != 1)
				exit(2);
			out[n++] = (uint8_t)b;
			text += 2;
		}
	}
	return n;
}

static void
test_examples(void)
{
	uint8_t want[256], *frame;
	size_t wlen, len;
	proto_msg m, u;

	proto_msg_init(&m, PROTO_MSG_GET_HASHES);
	m.rid = 3;
	m.id = id;
	m.chunk_size = 16384;
	m.index = 4;
	m.count = 4;
	m.proof_layers = 1;
	wlen = bytes_of("00 00 00 2b 97 10 03 c4 20 {ID} cd 40 00 04 04 01",
	    want);
	ok(roundtrip(&m, &u, &frame, &len) == 0, "GET_HASHES round trip");
	ok(len == wlen && memcmp(frame, want, len) == 0,
	    "GET_HASHES: the example of PROTOCOL.md section 5, byte for byte");
	ok(u.type == PROTO_MSG_GET_HASHES && u.rid == 3 &&
	    memcmp(u.id, id, 32) == 0 && u.chunk_size == 16384 &&
	    u.index == 4 && u.count == 4 && u.proof_layers == 1,
	    "GET_HASHES: every field back");
	proto_msg_clear(&u);
	free(frame);

	proto_msg_init(&m, PROTO_MSG_HASHES);
	m.rid = 3;
	m.hashes = c4;
	m.nhashes = 1;
	m.proof = n2;
	m.nproof = 1;
	wlen = bytes_of("00 00 00 47 94 11 03 c4 20 {C4} c4 20 {N2}", want);
	ok(roundtrip(&m, &u, &frame, &len) == 0, "HASHES round trip");
	ok(len == wlen && memcmp(frame, want, len) == 0,
	    "HASHES: the example of PROTOCOL.md section 5, byte for byte");
	ok(u.type == PROTO_MSG_HASHES && u.rid == 3 && u.nhashes == 1 &&
	    memcmp(u.hashes, c4, 32) == 0 && u.nproof == 1 &&
	    memcmp(u.proof, n2, 32) == 0, "HASHES: every field back");
	proto_msg_clear(&u);
	free(frame);
	is_str(proto_msg_type_name(PROTO_MSG_GET_HASHES), "GET_HASHES",
	    "type 16 is GET_HASHES");
	is_str(proto_msg_type_name(PROTO_MSG_HASHES), "HASHES",
	    "type 17 is HASHES");
}

static void
test_limits(void)
{
	uint8_t *many = calloc(PROTO_HASHES_MAX + 1, 32), *frame;
	size_t len;
	proto_msg m, u;

	if (many == NULL)
		exit(2);
	proto_msg_init(&m, PROTO_MSG_HASHES);
	m.rid = 1;
	m.hashes = many;
	m.nhashes = PROTO_HASHES_MAX;
	m.proof = many;
	m.nproof = PROTO_PROOF_MAX;
	ok(roundtrip(&m, &u, &frame, &len) == 0 &&
	    u.nhashes == PROTO_HASHES_MAX && u.nproof == PROTO_PROOF_MAX,
	    "HASHES exact limits: 512 hashes, 32 uncles");
	proto_msg_clear(&u);
	free(frame);
	m.nhashes = PROTO_HASHES_MAX + 1;
	is_int(proto_msg_pack(&m, &frame, &len), PROTO_ERR_TOO_BIG,
	    "pack HASHES of 513 hashes -> TOO_BIG");
	m.nhashes = 1;
	m.nproof = PROTO_PROOF_MAX + 1;
	is_int(proto_msg_pack(&m, &frame, &len), PROTO_ERR_TOO_BIG,
	    "pack HASHES of 33 uncles -> TOO_BIG");
	m.nproof = 0;
	ok(roundtrip(&m, &u, &frame, &len) == 0 && u.nproof == 0,
	    "HASHES without uncles (a run as wide as the layer)");
	proto_msg_clear(&u);
	free(frame);
	free(many);
}

/* A body of hex text, with {ID} etc., unpacked: the result. */
static int
unpack_text(const char *text, proto_msg *u)
{
	static uint8_t body[64 * 1024];
	size_t n = bytes_of(text, body);

	return proto_msg_unpack(body, n, u);
}

static void
test_shapes(void)
{
	static const struct {
		const char *body;
		const char *why;
	} bad[] = {
		{ "95 10 01 c4 20 {ID} cd 40 00 00", "short: GET_HASHES of 5" },
		{ "96 10 01 c4 1f {I31} cd 40 00 00 01", "GET_HASHES id of 31 bytes" },
		{ "96 10 01 a4 61 62 63 64 cd 40 00 00 01", "GET_HASHES id is a str" },
		{ "96 10 01 c4 20 {ID} ce 00 80 00 00 00 01", "GET_HASHES chunk size over 4 MiB" },
		{ "96 10 01 c4 20 {ID} a1 31 00 01", "GET_HASHES chunk size is a str" },
		{ "96 10 01 c4 20 {ID} cd 40 00 ff 01", "GET_HASHES index negative" },
		{ "96 10 01 c4 20 {ID} cd 40 00 00 cf 00 00 00 01 00 00 00 00",
		  "GET_HASHES count over uint32" },
		{ "97 10 01 c4 20 {ID} cd 40 00 00 01 c0", "GET_HASHES proof_layers nil" },
		{ "93 11 01 c4 20 {C4}", "short: HASHES without proof" },
		{ "94 11 01 c4 00 c4 00", "HASHES of no hash" },
		{ "94 11 01 c4 21 {C4} 00 c4 00", "HASHES of 33 bytes" },
		{ "94 11 01 a4 61 62 63 64 c4 00", "HASHES hashes is a str" },
		{ "94 11 01 c4 20 {C4} c4 21 {N2} 00", "HASHES proof of 33 bytes" },
		{ "94 11 01 c4 20 {C4} c0", "HASHES proof nil" },
	};
	static uint8_t big[20000];
	proto_msg u;
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		is_int(unpack_text(bad[i].body, &u), PROTO_ERR_MALFORMED,
		    bad[i].why);
		proto_msg_clear(&u);
	}
	ok(unpack_text("96 10 01 c4 20 {ID} cd 40 00 00 01", &u) == 0 &&
	    u.proof_layers == UINT32_MAX && u.count == 1,
	    "GET_HASHES of 6: proof_layers absent means all");
	proto_msg_clear(&u);
	ok(unpack_text("98 10 01 c4 20 {ID} cd 40 00 00 01 05 a1 78", &u) == 0 &&
	    u.proof_layers == 5, "GET_HASHES of 8: the extra element ignored");
	proto_msg_clear(&u);
	/* 513 hashes: 16416 bytes in a bin 16. */
	n = 0;
	big[n++] = 0x94;
	big[n++] = 0x11;
	big[n++] = 0x01;
	big[n++] = 0xc5;
	big[n++] = (uint8_t)((513 * 32) >> 8);
	big[n++] = (uint8_t)(513 * 32);
	n += 513 * 32;
	big[n++] = 0xc4;
	big[n++] = 0x00;
	is_int(proto_msg_unpack(big, n, &u), PROTO_ERR_MALFORMED,
	    "HASHES of 513 hashes -> MALFORMED");
	proto_msg_clear(&u);
	big[4] = (uint8_t)((512 * 32) >> 8);
	big[5] = (uint8_t)(512 * 32);
	n = 6 + 512 * 32;
	big[n++] = 0xc5;
	big[n++] = (uint8_t)((33 * 32) >> 8);
	big[n++] = (uint8_t)(33 * 32);
	n += 33 * 32;
	is_int(proto_msg_unpack(big, n, &u), PROTO_ERR_MALFORMED,
	    "HASHES of 33 uncles -> MALFORMED");
	proto_msg_clear(&u);
}

int
main(void)
{
	proto_id_parse(ID, id);
	proto_id_parse(C4, c4);
	proto_id_parse(N2_0, n2);
	test_examples();
	test_limits();
	test_shapes();
	return done_testing();
}
