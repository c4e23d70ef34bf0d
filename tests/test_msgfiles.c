/*
 * msgfiles.c: GET_FILES and FILES through proto_msg_pack,
 * proto_frame_parse and proto_msg_unpack; the encoding example of
 * docs/PROTOCOL.md section 5, byte for byte; the id of a one-block file
 * from its bytes alone (section 1); hand-written bodies of the wrong
 * shape; and the limits, exact and one past.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "frame.h"
#include "tap.h"

/* B1, the one byte 0x00, and the empty file (section 1). */
#define B1 "f116abd57c3e0560fd70ec4abc84e1a1385d3aaa1a936cdda4bfefbcf099a26c"
#define E0 "9a0be4ec109b7ca51504ebd60835e9599f33a732c47c5450301784f5c28edd63"

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

/* The id of a file of one block, from its bytes alone. */
static void
id_of(const uint8_t *data, size_t len, uint8_t id[32])
{
	uint8_t root[32];

	proto_sha256(data, len, root);
	proto_hash_id_of_root(len, root, id);
}

static void
test_ids(void)
{
	uint8_t want[32], got[32], zero = 0;

	proto_id_parse(B1, want);
	id_of(&zero, 1, got);
	ok(memcmp(got, want, 32) == 0, "B1's id is H(size_be64 || H(bytes))");
	proto_id_parse(E0, want);
	id_of(&zero, 0, got);
	ok(memcmp(got, want, 32) == 0, "the empty file's id likewise");
}

static void
test_example(void)
{
	static const uint8_t ask_head[] = { 0x00, 0x00, 0x00, 0x48, 0x93,
	    0x14, 0x04, 0x92, 0xc4, 0x20 };
	static const uint8_t answer[] = { 0x00, 0x00, 0x00, 0x08, 0x93, 0x15,
	    0x04, 0x92, 0xc4, 0x01, 0x00, 0xc0 };
	uint8_t ids[64], zero = 0, *f;
	proto_file_data files[2] = { { 1, &zero, 1 }, { 0, NULL, 0 } };
	proto_msg m, u;
	size_t len;
	int rc;

	proto_id_parse(B1, ids);
	memset(ids + 32, 0x11, 32);
	proto_msg_init(&m, PROTO_MSG_GET_FILES);
	m.rid = 4;
	m.ids = ids;
	m.nids = 2;
	rc = roundtrip(&m, &u, &f, &len);
	ok(rc == 0 && len == 76 && memcmp(f, ask_head, sizeof(ask_head)) == 0 &&
	    memcmp(f + 10, ids, 32) == 0 && f[42] == 0xc4 && f[43] == 0x20 &&
	    memcmp(f + 44, ids + 32, 32) == 0,
	    "GET_FILES: the example of section 5, byte for byte");
	ok(rc == 0 && u.type == PROTO_MSG_GET_FILES && u.rid == 4 &&
	    u.nids == 2 && !u.ids_bad && memcmp(u.ids, ids, 64) == 0,
	    "GET_FILES unpacks to its ids");
	proto_msg_clear(&u);
	free(f);

	proto_msg_init(&m, PROTO_MSG_FILES);
	m.rid = 4;
	m.files = files;
	m.nfiles_in = 2;
	rc = roundtrip(&m, &u, &f, &len);
	ok(rc == 0 && len == sizeof(answer) &&
	    memcmp(f, answer, sizeof(answer)) == 0,
	    "FILES: the example of section 5, byte for byte");
	ok(rc == 0 && u.type == PROTO_MSG_FILES && u.nfiles_in == 2 &&
	    u.files[0].held && u.files[0].len == 1 && u.files[0].data[0] == 0 &&
	    !u.files[1].held, "FILES unpacks: the byte, then nil");
	proto_msg_clear(&u);
	free(f);

	proto_msg_init(&m, PROTO_MSG_FILES);
	m.rid = 9;
	rc = roundtrip(&m, &u, &f, &len);
	ok(rc == 0 && u.nfiles_in == 0, "FILES of no entry round-trips");
	proto_msg_clear(&u);
	free(f);
}

static void
test_limits(void)
{
	static uint8_t ids[(PROTO_FILES_MAX + 1) * 32];
	static uint8_t data[PROTO_FILES_SIZE_MAX + 1];
	static proto_file_data files[PROTO_FILES_MAX + 1];
	proto_msg m, u;
	uint8_t *f;
	size_t len;
	int rc;

	proto_msg_init(&m, PROTO_MSG_GET_FILES);
	m.rid = 1;
	m.ids = ids;
	m.nids = PROTO_FILES_MAX;
	rc = roundtrip(&m, &u, &f, &len);
	ok(rc == 0 && u.nids == PROTO_FILES_MAX && !u.ids_bad,
	    "GET_FILES of 256 ids round-trips");
	proto_msg_clear(&u);
	free(f);
	m.nids = PROTO_FILES_MAX + 1;
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_TOO_BIG,
	    "GET_FILES of 257 ids is not packed");

	for (unsigned i = 0; i <= PROTO_FILES_MAX; i++) {
		files[i].held = 1;
		files[i].data = data;
		files[i].len = PROTO_FILES_SIZE_MAX;
	}
	proto_msg_init(&m, PROTO_MSG_FILES);
	m.files = files;
	m.nfiles_in = PROTO_FILES_MAX;
	rc = roundtrip(&m, &u, &f, &len);
	ok(rc == 0 && u.nfiles_in == PROTO_FILES_MAX &&
	    u.files[255].len == PROTO_FILES_SIZE_MAX,
	    "FILES of 256 files of 16384 bytes round-trips");
	proto_msg_clear(&u);
	free(f);
	m.nfiles_in = PROTO_FILES_MAX + 1;
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_TOO_BIG,
	    "FILES of 257 entries is not packed");
	m.nfiles_in = 1;
	files[0].len = PROTO_FILES_SIZE_MAX + 1;
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_TOO_BIG,
	    "FILES with a file of 16385 bytes is not packed");
}

/* Hand-written bodies: what is malformed, and what is BAD_REQUEST. */
static void
test_shapes(void)
{
	static uint8_t big[3 + 3 + 257 * 34];
	proto_msg m;
	size_t n = 0;
	int rc;

	{
		uint8_t body[] = { 0x93, 0x14, 0x01, 0xc0 };
		is_int(proto_msg_unpack(body, sizeof(body), &m),
		    PROTO_ERR_MALFORMED, "GET_FILES without an array: malformed");
	}
	{
		uint8_t body[] = { 0x92, 0x14, 0x01 };
		is_int(proto_msg_unpack(body, sizeof(body), &m),
		    PROTO_ERR_MALFORMED, "GET_FILES without ids: malformed");
	}
	{
		uint8_t body[] = { 0x93, 0x14, 0x01, 0x91, 0xc4, 0x01, 0x11 };
		rc = proto_msg_unpack(body, sizeof(body), &m);
		ok(rc == 0 && m.ids_bad, "GET_FILES with an id of one byte: "
		    "unpacked, to be answered BAD_REQUEST");
		if (rc == 0)
			proto_msg_clear(&m);
	}
	{
		uint8_t body[] = { 0x93, 0x14, 0x01, 0x91, 0x05 };
		rc = proto_msg_unpack(body, sizeof(body), &m);
		ok(rc == 0 && m.ids_bad, "GET_FILES with an id that is a uint: "
		    "BAD_REQUEST");
		if (rc == 0)
			proto_msg_clear(&m);
	}
	big[n++] = 0x93;
	big[n++] = 0x14;
	big[n++] = 0x01;
	big[n++] = 0xdc;
	big[n++] = 0x01;
	big[n++] = 0x01;        /* an array 16 of 257 */
	for (int i = 0; i < 257; i++) {
		big[n++] = 0xc4;
		big[n++] = 0x20;
		memset(big + n, i, 32);
		n += 32;
	}
	rc = proto_msg_unpack(big, n, &m);
	ok(rc == 0 && m.ids_bad && m.ids == NULL,
	    "GET_FILES of 257 ids: BAD_REQUEST");
	if (rc == 0)
		proto_msg_clear(&m);
	{
		uint8_t body[] = { 0x93, 0x15, 0x01, 0x91, 0xa1, 0x61 };
		is_int(proto_msg_unpack(body, sizeof(body), &m),
		    PROTO_ERR_MALFORMED, "FILES with a str entry: malformed");
	}
	{
		uint8_t body[] = { 0x93, 0x15, 0x01, 0xc0 };
		is_int(proto_msg_unpack(body, sizeof(body), &m),
		    PROTO_ERR_MALFORMED, "FILES without an array: malformed");
	}
	{
		/* A bin 16 of 16385 bytes: one past a block. */
		static uint8_t body[7 + 16385] = { 0x93, 0x15, 0x01, 0x91,
		    0xc5, 0x40, 0x01 };
		is_int(proto_msg_unpack(body, sizeof(body), &m),
		    PROTO_ERR_MALFORMED, "FILES with a file of 16385 bytes: "
		    "malformed");
	}
	/* The same 257 entries as FILES: nil each. */
	memset(big, 0xc0, sizeof(big));
	big[0] = 0x93;
	big[1] = 0x15;
	big[2] = 0x01;
	big[3] = 0xdc;
	big[4] = 0x01;
	big[5] = 0x01;
	is_int(proto_msg_unpack(big, 6 + 257, &m), PROTO_ERR_MALFORMED,
	    "FILES of 257 entries: malformed");
}

int
main(void)
{
	test_ids();
	test_example();
	test_limits();
	test_shapes();
	return done_testing();
}
