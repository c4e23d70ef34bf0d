/*
 * Unit tests for libproto/have.c (chunk bitfields) and libproto/picker.c
 * (rarest first, in order, the endgame).
 */
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "picker.h"
#include "tap.h"

static void
test_bits(void)
{
	proto_have h;
	uint8_t wire[2] = { 0x80, 0x40 };

	ok(proto_have_init(&h, 10) == 0 && h.n == 10 && h.count == 0,
	    "init: 10 chunks, none held");
	is_int((int)proto_have_bytes(10), 2, "10 chunks take 2 bytes");
	is_int((int)proto_have_bytes(0), 0, "0 chunks take 0 bytes");
	is_int((int)proto_have_bytes(PROTO_MAX_CHUNKS), 2097152,
	    "the most chunks take 2 MiB");
	ok(proto_have_set(&h, 0) == 1 && proto_have_set(&h, 0) == 0 &&
	    h.count == 1, "set: 1 the first time, 0 after; counted once");
	ok(proto_have_set(&h, 10) == 0 && h.count == 1,
	    "set past the end: ignored");
	ok(proto_have_test(&h, 0) && !proto_have_test(&h, 1) &&
	    !proto_have_test(&h, 10), "test");
	ok(h.bits[0] == 0x80, "chunk 0 is the high bit of byte 0");
	proto_have_set(&h, 9);
	ok(h.bits[1] == 0x40, "chunk 9 is bit 6 of byte 1");
	proto_have_fill(&h);
	ok(h.count == 10 && h.bits[0] == 0xff && h.bits[1] == 0xc0,
	    "fill: every chunk, and no bit past the last");
	ok(proto_have_load(&h, wire, 2) == 0 && h.count == 2 &&
	    proto_have_test(&h, 0) && proto_have_test(&h, 9) &&
	    !proto_have_test(&h, 1), "load: bits and count from the wire");
	wire[1] = 0x20;
	is_int(proto_have_load(&h, wire, 2), PROTO_ERR_MALFORMED,
	    "load: a bit past the last chunk -> MALFORMED");
	ok(h.count == 2 && proto_have_test(&h, 9),
	    "a refused load leaves the bits as they were");
	is_int(proto_have_load(&h, wire, 1), PROTO_ERR_MALFORMED,
	    "load: too short -> MALFORMED");
	is_int(proto_have_load(&h, wire, 3), PROTO_ERR_MALFORMED,
	    "load: too long -> MALFORMED");
	proto_have_free(&h);
	ok(h.bits == NULL && h.n == 0, "free clears");
}

/* A file of 1 MiB + 1 byte: 5 chunks of 256 KiB, 17 of 64 KiB. */
static void
test_covers(void)
{
	const uint64_t size = (1u << 20) + 1;
	proto_have big, small;

	proto_have_init(&big, 5);
	proto_have_set(&big, 1);
	ok(proto_have_covers(&big, 256 << 10, size, 64 << 10, 4) &&
	    proto_have_covers(&big, 256 << 10, size, 64 << 10, 7) &&
	    !proto_have_covers(&big, 256 << 10, size, 64 << 10, 3) &&
	    !proto_have_covers(&big, 256 << 10, size, 64 << 10, 8),
	    "a smaller chunk lies inside one of the holder's");
	ok(proto_have_covers(&big, 256 << 10, size, 256 << 10, 1) &&
	    !proto_have_covers(&big, 256 << 10, size, 256 << 10, 0),
	    "the same chunk size: the same bit");
	ok(!proto_have_covers(&big, 256 << 10, size, 64 << 10, 17),
	    "a chunk past the end is never held");

	proto_have_init(&small, 17);
	for (uint64_t i = 4; i < 8; i++)
		proto_have_set(&small, i);
	ok(proto_have_covers(&small, 64 << 10, size, 256 << 10, 1),
	    "a larger chunk is held when all of its smaller ones are");
	proto_have_set(&small, 16);
	ok(proto_have_covers(&small, 64 << 10, size, 256 << 10, 4),
	    "the short last chunk: only the chunk that exists is needed");
	proto_have_set(&small, 8);
	ok(!proto_have_covers(&small, 64 << 10, size, 256 << 10, 2),
	    "one of four is not enough");
	ok(!proto_have_covers(&small, 64 << 10, size, 1 << 20, 0),
	    "1 MiB chunk 0 with 5 of its 16 small chunks: not held");
	proto_have_free(&big);
	proto_have_free(&small);

	/* An empty file: one chunk of no byte, at any chunk size. */
	proto_have_init(&small, 1);
	ok(!proto_have_covers(&small, 16384, 0, 65536, 0),
	    "empty file, its chunk not held: not covered");
	proto_have_set(&small, 0);
	ok(proto_have_covers(&small, 16384, 0, 65536, 0) &&
	    !proto_have_covers(&small, 16384, 0, 65536, 1),
	    "empty file, its chunk held: chunk 0 covered, no other");
	proto_have_free(&small);
}

static int
never_asked(uint64_t i, void *ctx)
{
	(void)i;
	(void)ctx;
	return 0;
}

static int
asked_set(uint64_t i, void *ctx)
{
	const proto_have *asked = ctx;

	return proto_have_test(asked, i);
}

static void
test_picker(void)
{
	proto_picker pk;
	proto_have a, b, asked;
	uint64_t cursor = 0;
	int64_t i;

	ok(proto_picker_init(&pk, 8) == 0 && pk.ndone == 0, "picker: init");
	is_int((int)proto_picker_pick(&pk, NULL, &cursor, 8, 1, never_asked,
	    NULL), 0, "in order from a seed: chunk 0");
	cursor = 5;
	is_int((int)proto_picker_pick(&pk, NULL, &cursor, 8, 0, never_asked,
	    NULL), 5, "rarest from a seed, no partial peers: the cursor's");
	is_int((int)cursor, 6, "the cursor moves past the pick");

	/* Partial peer a holds 1, 2, 3; b holds 2 and 3: 1 is the rarest. */
	proto_have_init(&a, 8);
	proto_have_init(&b, 8);
	proto_have_set(&a, 1);
	proto_have_set(&a, 2);
	proto_have_set(&a, 3);
	proto_have_set(&b, 2);
	proto_have_set(&b, 3);
	proto_picker_add_holder(&pk, &a);
	proto_picker_add_holder(&pk, &b);
	ok(pk.avail[1] == 1 && pk.avail[2] == 2 && pk.avail[0] == 0,
	    "availability counts the partial holders");
	cursor = 2;
	is_int((int)proto_picker_pick(&pk, &a, &cursor, 8, 0, never_asked,
	    NULL), 1, "from a: the rarest chunk it holds, before the cursor");
	cursor = 4;
	is_int((int)proto_picker_pick(&pk, NULL, &cursor, 8, 0, never_asked,
	    NULL), 4, "from a seed: a chunk no partial peer holds");
	cursor = 0;
	is_int((int)proto_picker_pick(&pk, &b, &cursor, 8, 0, never_asked,
	    NULL), 2, "from b: only what b holds");
	is_int((int)proto_picker_pick(&pk, &a, &cursor, 2, 1, never_asked,
	    NULL), 1, "in order within a window of 2: chunk 1");
	is_int((int)proto_picker_pick(&pk, &b, &cursor, 2, 1, never_asked,
	    NULL), -1, "in order, nothing b holds within the window: -1");

	proto_picker_remove_holder(&pk, &b);
	ok(pk.avail[2] == 1 && pk.avail[3] == 1,
	    "a holder that leaves no longer counts");

	/* Every chunk asked for: the endgame. */
	for (uint64_t k = 0; k < 8; k++)
		proto_picker_asked(&pk, k);
	ok(pk.state[0] == PROTO_CHUNK_INFLIGHT, "asked: in flight");
	proto_have_init(&asked, 8);
	proto_have_set(&asked, 0);
	proto_have_set(&asked, 1);
	is_int((int)proto_picker_pick(&pk, NULL, &cursor, 8, 0, asked_set,
	    &asked), 2, "endgame: the first chunk in flight not asked of "
	    "this peer");
	proto_picker_done(&pk, 2);
	ok(proto_picker_done(&pk, 2) == 0 && pk.ndone == 1,
	    "done: counted once");
	is_int((int)proto_picker_pick(&pk, &a, &cursor, 8, 0, asked_set,
	    &asked), 3, "endgame: only chunks the peer holds");
	proto_picker_unask(&pk, 5);
	ok(pk.state[5] == PROTO_CHUNK_MISSING,
	    "the last request for a chunk over: missing again");
	cursor = 0;
	i = proto_picker_pick(&pk, NULL, &cursor, 8, 0, asked_set, &asked);
	is_int((int)i, 5, "a missing chunk comes before the endgame");
	proto_picker_asked(&pk, 0);
	proto_picker_unask(&pk, 0);
	ok(pk.state[0] == PROTO_CHUNK_INFLIGHT,
	    "two requests out, one over: still in flight");
	proto_have_free(&a);
	proto_have_free(&b);
	proto_have_free(&asked);
	proto_picker_free(&pk);
}

int
main(void)
{
	test_bits();
	test_covers();
	test_picker();
	return done_testing();
}
