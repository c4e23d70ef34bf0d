/*
 * Manifests without their chunk layer (docs/PROTOCOL.md section 2): the
 * example of section 5 byte for byte, unpacking with "root" in place of
 * "chunks" (and both, and neither), the inline limit of a MANIFEST, a
 * layer opened and filled run by run (a forged run refused, the manifest
 * unchanged), the store's answers and refusals, and the size arithmetic of
 * a file of 1 TiB + 1 byte, the first the protocol once had no chunk size
 * for.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto.h"
#include "frame.h"
#include "tap.h"

#define TiB (1ull << 40)

/* The layer-less manifest of byte(16385) named "f" (section 5). */
static const char example[] =
    "86 a1 76 01 a2 69 64 c4 20 78 4e 0e 50 ee a5 92 48 ce f3 5c a0 92 d8 "
    "11 7f 39 85 3c 35 80 6e 43 19 6a 20 51 d4 2b e6 e3 e7 a4 6e 61 6d 65 "
    "a1 66 a4 73 69 7a 65 cd 40 01 aa 63 68 75 6e 6b 5f 73 69 7a 65 cd 40 "
    "00 a4 72 6f 6f 74 c4 20 9d 78 87 c6 5d 57 7a 02 37 fb 3c 09 98 b8 7b "
    "3a 62 76 2d 03 79 68 89 a2 ca ea 01 db 91 4c cb b8";

static size_t
unhex(const char *text, uint8_t *out)
{
	size_t n = 0;
	unsigned b;

	for (; *text; text++)
		if (*text != ' ' && sscanf(text, "%2x", &b) == 1) {
			out[n++] = (uint8_t)b;
			text++;
		}
	return n;
}

/* The manifest of byte(size) at chunk size cs, named "f". */
static proto_manifest *
build(size_t size, size_t cs)
{
	int fd = memfd_create("test_layerless", 0);
	proto_manifest *mf = NULL;

	for (size_t i = 0; i < size; i++) {
		uint8_t b = (uint8_t)(i % 251);
		if (write(fd, &b, 1) != 1)
			exit(2);
	}
	if (lseek(fd, 0, SEEK_SET) != 0 ||
	    proto_manifest_build_fd(fd, "f", "/tmp/f", cs, &mf) != 0)
		exit(2);
	close(fd);
	return mf;
}

/* A view of mf without its layer: what a node sends a peer that asks. */
static proto_manifest
rooted(const proto_manifest *mf)
{
	proto_manifest v = *mf;

	v.chunks = NULL;
	v.known = NULL;
	v.path = NULL;
	return v;
}

static void
test_example(void)
{
	proto_manifest *mf = build(16385, 16384), v = rooted(mf), *u;
	uint8_t want[256], *packed;
	size_t wlen = unhex(example, want), len;

	ok(proto_manifest_pack(&v, 0, &packed, &len) == 0 && len == wlen &&
	    memcmp(packed, want, len) == 0,
	    "pack without the layer: the example of section 5, byte for byte");
	ok(proto_manifest_unpack(packed, len, &u) == (long)len, "and back");
	ok(u != NULL && u->chunks == NULL && u->known == NULL &&
	    !proto_manifest_has_layer(u) && u->size == 16385 &&
	    u->chunk_size == 16384 && u->nchunks == 2 &&
	    memcmp(u->root, mf->root, 32) == 0 &&
	    memcmp(u->id, mf->id, 32) == 0, "unpacked: root, id, size, no layer");
	is_int(proto_manifest_check_chunk(u, 0, "x", 1), PROTO_ERR_INVALID,
	    "check_chunk without the layer -> INVALID");
	is_int(proto_manifest_rechunk(u, 32768), PROTO_ERR_INVALID,
	    "rechunk without the layer -> INVALID");
	free(packed);
	/* Nothing but the root changed hands: packing it again is the same. */
	ok(proto_manifest_pack(u, 0, &packed, &len) == 0 && len == wlen &&
	    memcmp(packed, want, len) == 0, "a layer-less one packs as it came");
	free(packed);
	proto_manifest_free(u);
	proto_manifest_free(mf);
}

static void
test_unpack_edges(void)
{
	uint8_t buf[256];
	size_t n = unhex(example, buf);
	proto_manifest *u;

	buf[n - 1] ^= 1;
	is_int(proto_manifest_unpack(buf, n, &u), PROTO_ERR_MISMATCH,
	    "a root that does not give the id -> MISMATCH");
	buf[n - 1] ^= 1;
	buf[n - 33] = 0x1f; /* c4 20 -> c4 1f: a root of 31 bytes, one left */
	ok(proto_manifest_unpack(buf, n - 1, &u) == PROTO_ERR_MALFORMED,
	    "a root of 31 bytes -> MALFORMED");
	n = unhex(example, buf);
	buf[n - 37] = 'x'; /* "root" -> "roox": neither root nor chunks */
	is_int(proto_manifest_unpack(buf, n, &u), PROTO_ERR_MALFORMED,
	    "neither chunks nor root -> MALFORMED");
}

/* Packs mf with both "chunks" and "root" by hand: each must be right. */
static void
test_both(void)
{
	proto_manifest *mf = build(16385, 16384), *u;
	uint8_t *inl, *buf;
	size_t len;

	proto_manifest_pack(mf, 0, &inl, &len);
	if ((buf = malloc(len + 40)) == NULL)
		exit(2);
	memcpy(buf, inl, len);
	buf[0] = 0x87; /* one more key */
	memcpy(buf + len, "\xa4root\xc4\x20", 7);
	memcpy(buf + len + 7, mf->root, 32);
	ok(proto_manifest_unpack(buf, len + 39, &u) == (long)(len + 39) &&
	    proto_manifest_has_layer(u), "chunks and a right root: taken whole");
	proto_manifest_free(u);
	buf[len + 38] ^= 1;
	is_int(proto_manifest_unpack(buf, len + 39, &u), PROTO_ERR_MISMATCH,
	    "chunks and a wrong root -> MISMATCH");
	free(buf);
	free(inl);
	proto_manifest_free(mf);
}

/* A MANIFEST carries at most PROTO_INLINE_MAX hashes: one more is refused
 * before any is hashed; the exact limit is hashed (and, its id made up,
 * found not to match). */
static void
test_inline_limit(void)
{
	proto_manifest mf;
	proto_msg m, u;
	uint8_t *frame;
	size_t len;

	memset(&mf, 0, sizeof(mf));
	mf.name = "f";
	mf.chunk_size = 16384;
	for (uint64_t n = PROTO_INLINE_MAX; n <= PROTO_INLINE_MAX + 1; n++) {
		mf.size = n * 16384;
		mf.nchunks = n;
		if ((mf.chunks = calloc(n, 32)) == NULL)
			exit(2);
		proto_msg_init(&m, PROTO_MSG_MANIFEST);
		m.rid = 1;
		m.manifest = &mf;
		ok(proto_msg_pack(&m, &frame, &len) == 0,
		    "MANIFEST of %llu hashes packs (%zu bytes)",
		    (unsigned long long)n, len);
		is_int(proto_msg_unpack(frame + PROTO_FRAME_HEADER,
		    len - PROTO_FRAME_HEADER, &u), n > PROTO_INLINE_MAX ?
		    PROTO_ERR_TOO_BIG : PROTO_ERR_MISMATCH, n > PROTO_INLINE_MAX ?
		    "MANIFEST of 262145 inline hashes -> TOO_BIG" :
		    "MANIFEST of 262144 inline hashes: taken, and checked");
		free(frame);
		free(mf.chunks);
	}
}

static void
test_fill(void)
{
	proto_manifest *whole = build(81820, 16384), v = rooted(whole), *mf;
	uint8_t h[PROTO_HASHES_MAX * 32], p[PROTO_PROOF_MAX * 32];
	uint8_t *a, *b, data[16384];
	proto_merkle *t;
	size_t nh, np, alen, blen;

	proto_manifest_pack(&v, 0, &a, &alen);
	proto_manifest_unpack(a, alen, &mf);
	free(a);
	is_int(proto_manifest_open_layer(mf, 12345), PROTO_ERR_INVALID,
	    "open_layer at a size not valid -> INVALID");
	ok(proto_manifest_open_layer(mf, 16384) == 0 && mf->nchunks == 5 &&
	    mf->known != NULL && mf->known->count == 0, "open_layer at 16K");
	is_int(proto_manifest_open_layer(mf, 16384), PROTO_ERR_INVALID,
	    "open_layer twice -> INVALID");
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i % 251);
	is_int(proto_manifest_check_chunk(mf, 0, data, 16384), PROTO_ERR_INVALID,
	    "check_chunk before its hash came -> INVALID");
	proto_merkle_new(whole->chunks, 5, 16384, 81820, &t);
	proto_merkle_run(t, 16384, 0, 4, UINT32_MAX, h, &nh, p, &np);
	p[0] ^= 1;
	is_int(proto_manifest_add_run(mf, 0, 4, h, nh, p, np),
	    PROTO_ERR_MISMATCH, "add_run with a bad uncle -> MISMATCH");
	ok(mf->known->count == 0 && !proto_manifest_hash_known(mf, 0),
	    "... and nothing taken");
	p[0] ^= 1;
	ok(proto_manifest_add_run(mf, 0, 4, h, nh, p, np) == 0 &&
	    proto_manifest_hash_known(mf, 3) && !proto_manifest_hash_known(mf, 4),
	    "add_run (0, 4): chunks 0 to 3 known, 4 not");
	ok(proto_manifest_check_chunk(mf, 0, data, 16384) == 0,
	    "check_chunk of chunk 0 now passes");
	ok(!proto_manifest_has_layer(mf), "not whole yet");
	proto_merkle_run(t, 16384, 4, 4, UINT32_MAX, h, &nh, p, &np);
	ok(proto_manifest_add_run(mf, 4, 4, h, nh, p, np) == 0 &&
	    mf->known == NULL && proto_manifest_has_layer(mf),
	    "add_run (4, 4): whole, known gone");
	ok(proto_manifest_add_run(mf, 4, 4, h, nh, p, np) == 0,
	    "a run again, once whole: checked, no harm");
	proto_manifest_pack(mf, 0, &a, &alen);
	proto_manifest_pack(whole, 0, &b, &blen);
	ok(alen == blen && memcmp(a, b, alen) == 0,
	    "whole now: packs as the one built from the file");
	free(a);
	free(b);
	proto_merkle_free(t);
	proto_manifest_free(mf);

	/* Opened coarser than the sender's: the tree answers at 32K. */
	proto_manifest_pack(&v, 0, &a, &alen);
	proto_manifest_unpack(a, alen, &mf);
	free(a);
	proto_merkle_new(whole->chunks, 5, 16384, 81820, &t);
	proto_merkle_run(t, 32768, 0, 4, UINT32_MAX, h, &nh, p, &np);
	ok(proto_manifest_open_layer(mf, 32768) == 0 &&
	    proto_manifest_add_run(mf, 0, 4, h, nh, p, np) == 0 &&
	    mf->nchunks == 3 && proto_manifest_has_layer(mf),
	    "open_layer at 32K, one run of 4 (3 real): whole");
	proto_merkle_free(t);
	proto_manifest_free(mf);
	proto_manifest_free(whole);
}

static void
test_store(void)
{
	proto_manifest *whole = build(81820, 16384), v = rooted(whole), *mf;
	uint8_t h[PROTO_HASHES_MAX * 32], p[PROTO_PROOF_MAX * 32], *a;
	uint8_t id[32];
	proto_store *st = proto_store_new();
	size_t nh, np, alen;

	memcpy(id, whole->id, 32);
	proto_manifest_pack(&v, 0, &a, &alen);
	proto_manifest_unpack(a, alen, &mf);
	free(a);
	mf->path = strdup("/tmp/f");
	is_int(proto_store_add(st, mf), PROTO_ERR_INVALID,
	    "store: a manifest without its layer is refused");
	ok(proto_store_add(st, whole) == 0, "store: the whole one taken");
	ok(proto_store_hashes(st, id, 16384, 4, 4, UINT32_MAX, h, &nh, p,
	    &np) == 0 && nh == 1 && np == 1 && proto_run_verify(whole->root,
	    81820, 16384, 4, 4, h, nh, p, np) == 0,
	    "store_hashes (4, 4): a run that verifies");
	ok(proto_store_hashes(st, id, 65536, 0, 2, 0, h, &nh, p, &np) == 0 &&
	    nh == 2 && np == 0, "store_hashes at 64K, proof_layers 0");
	id[0] ^= 1;
	is_int(proto_store_hashes(st, id, 16384, 0, 1, 9, h, &nh, p, &np),
	    PROTO_ERR_INVALID, "store_hashes: unknown id -> INVALID");
	proto_store_free(st);
}

/* Size arithmetic only: nothing of 1 TiB is hashed. */
static void
test_huge(void)
{
	uint64_t size = TiB + 1;
	size_t cs = proto_chunk_size_auto(size);
	proto_manifest mf, *u;
	uint8_t *packed;
	size_t len;
	int rc;

	is_int(cs, 4u << 20, "1 TiB + 1: a valid chunk size, 4M");
	ok(proto_chunk_size_valid(size, cs), "... valid for it");
	is_int(proto_chunk_count(size, cs), 262145, "... 262145 chunks");
	is_int(proto_layer_width(size, cs), 524288, "... a layer 524288 wide");
	is_int(proto_run_proof_len(size, cs, 512), 10,
	    "... a run of 512 has 10 uncles");
	ok(proto_run_check(size, cs, 262144, 512) == 0 &&
	    proto_run_hashes(size, cs, 262144, 512) == 1,
	    "... its last run holds one hash");
	memset(&mf, 0, sizeof(mf));
	mf.name = "huge";
	mf.size = size;
	mf.chunk_size = (uint32_t)cs;
	mf.nchunks = proto_chunk_count(size, cs);
	memset(mf.root, 0xab, 32);
	proto_hash_id_of_root(size, mf.root, mf.id);
	len = 0;
	rc = proto_manifest_pack(&mf, 0, &packed, &len);
	ok(rc == 0 && len < 200,
	    "1 TiB + 1: a manifest without its layer of %zu bytes", len);
	ok(proto_manifest_unpack(packed, len, &u) == (long)len &&
	    u->size == size && u->chunk_size == cs && u->nchunks == 262145 &&
	    u->chunks == NULL, "... well formed: unpacked, 262145 chunks");
	proto_manifest_free(u);
	free(packed);
	is_int(proto_chunk_size_auto(64 * TiB + 1), 0,
	    "64 TiB + 1: no valid chunk size (the limit now)");
	mf.size = 64 * TiB + 1;
	proto_hash_id_of_root(mf.size, mf.root, mf.id);
	proto_manifest_pack(&mf, 0, &packed, &len);
	is_int(proto_manifest_unpack(packed, len, &u), PROTO_ERR_INVALID,
	    "... its manifest refused");
	free(packed);
}

int
main(void)
{
	test_example();
	test_unpack_edges();
	test_both();
	test_inline_limit();
	test_fill();
	test_store();
	test_huge();
	return done_testing();
}
