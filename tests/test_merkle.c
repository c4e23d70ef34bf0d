/*
 * merkle.c: runs of a chunk layer and their proofs, against the test
 * vectors of docs/PROTOCOL.md section 1 ("Runs and proofs"): byte(81820),
 * five chunks of 16 KiB in a tree eight wide. Every run the tree answers
 * is checked with proto_run_verify, and so is every way to forge one: a
 * bad uncle, a bad hash, uncles swapped, a short proof, padding passed as
 * a hash, a run past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "tap.h"

#define SIZE 81820u /* byte(81820): 5 chunks of 16384, the last 16284 */

/* The vectors of PROTOCOL.md, section 1. */
#define ID "1107b2454107b406702ff219c9b600d7e36ab9ad0167a67645e401f2e28335f3"
#define ROOT "a1978092f50e0511dd2ea84db39af241e8bffbcd64d20974d31ab69a1a113601"
static const char *const chunk_hex[5] = {
	"4348e3b98e8a327b34ced39c1da9e67cdb4cd5e48e4d7960607a3ae403d35f0c",
	"f7c9045c2a79a8a2a587efbf5b310652685b292e6fbb0b08c1df857500da2699",
	"597f81859724f979aece03e95c048d6ee5c6d59351e6a4db048997db6f05c845",
	"e20f1d51951c26d95412e711a195c74f1d4317ef260e98f2f86e74ed414c670f",
	"6c44d8e1b0afb9e92bfe48b697e5ea06ca69c2058312f1a65ce07ca13f44aa42",
};
/* N1[i]: the node above chunks 2i and 2i + 1; N2[i], above N1[2i, 2i+1]. */
#define N1_0 "d9e13d0b676ad681164ef0b7b5910d1328ea83a047cad57e619d76bbe3a08525"
#define N1_1 "e28097eaaa55956702cf8195d1a551dbabb63e3d679b294cf33d506a6b5ef479"
#define N1_2 "f51260ab708d5ddb3d030e19956bfc68a54030c80f2bec0b2f2ba6a3ddaf9091"
#define N2_0 "2d6b546231225a7132a38ab354f03e9132e4b9141da89f1784b71ab2fb34fae3"
#define N2_1 "329a81b59f2b3a0927716c988bd5ff0925f6fbe72d748f7aed3dc3ab19d8760c"

static uint8_t layer[5][PROTO_HASH_LEN], root[PROTO_HASH_LEN];

static void
unhex(const char *text, uint8_t out[PROTO_HASH_LEN])
{
	if (proto_id_parse(text, out) != 0)
		exit(2);
}

/* hashes, in hex, concatenated: what a run or proof must be. */
static int
same(const uint8_t *got, size_t n, const char *const *want)
{
	uint8_t h[PROTO_HASH_LEN];

	for (size_t i = 0; i < n; i++) {
		unhex(want[i], h);
		if (memcmp(got + i * PROTO_HASH_LEN, h, PROTO_HASH_LEN) != 0)
			return 0;
	}
	return 1;
}

static void
test_vectors(void)
{
	uint8_t *data = malloc(SIZE), id[PROTO_HASH_LEN], want[PROTO_HASH_LEN];
	uint8_t got_root[PROTO_HASH_LEN];
	int ok_all = 1;

	if (data == NULL)
		exit(2);
	for (size_t i = 0; i < SIZE; i++)
		data[i] = (uint8_t)(i % 251);
	for (size_t j = 0; j < 5; j++) {
		size_t len = proto_chunk_len(SIZE, 16384, j);
		proto_hash_chunk(data + j * 16384, len, 16384, layer[j]);
		unhex(chunk_hex[j], want);
		ok_all &= memcmp(layer[j], want, PROTO_HASH_LEN) == 0;
	}
	ok(ok_all, "vector: the five chunk hashes of byte(81820)");
	ok(proto_hash_root(layer[0], 5, 16384, SIZE, got_root, id) == 0,
	    "hash_root of the layer");
	unhex(ROOT, root);
	is_mem(got_root, root, 32, "vector: the root");
	unhex(ID, want);
	is_mem(id, want, 32, "vector: the content id");
	ok(proto_hash_id_of_root(SIZE, root, id) == 0 &&
	    memcmp(id, want, 32) == 0, "id_of_root: H(size_be64 || root)");
	free(data);
}

static void
test_arith(void)
{
	is_int(proto_layer_width(SIZE, 16384), 8, "width: 5 chunks -> 8");
	is_int(proto_layer_width(SIZE, 32768), 4, "width: 3 chunks -> 4");
	is_int(proto_layer_width(0, 16384), 1, "width: the empty file -> 1");
	is_int(proto_layer_width(SIZE, 12345), 0, "width: invalid size -> 0");
	is_int(proto_run_proof_len(SIZE, 16384, 1), 3, "proof of 1: 3 uncles");
	is_int(proto_run_proof_len(SIZE, 16384, 4), 1, "proof of 4: 1 uncle");
	is_int(proto_run_proof_len(SIZE, 16384, 8), 0, "proof of 8: none");
	is_int(proto_run_proof_len(SIZE, 16384, 16), 0,
	    "proof of 16: wider than the layer -> 0");
	is_int(proto_run_hashes(SIZE, 16384, 4, 4), 1,
	    "hashes of run (4, 4): 1, the rest padding");
	is_int(proto_run_hashes(SIZE, 16384, 0, 8), 5, "hashes of (0, 8): 5");
	is_int(proto_run_hashes(SIZE, 16384, 5, 1), 0, "hashes past the end: 0");

	ok(proto_run_check(SIZE, 16384, 0, 1) == 0, "run (0, 1)");
	ok(proto_run_check(SIZE, 16384, 4, 4) == 0, "run (4, 4): ends in padding");
	ok(proto_run_check(SIZE, 16384, 0, 8) == 0, "run (0, 8): the whole layer");
	ok(proto_run_check(SIZE, 16384, 5, 1) != 0, "run past the end: (5, 1)");
	ok(proto_run_check(SIZE, 16384, 8, 8) != 0, "run past the end: (8, 8)");
	ok(proto_run_check(SIZE, 16384, 0, 16) != 0, "run wider than the layer");
	ok(proto_run_check(SIZE, 16384, 0, 3) != 0, "run of 3: not a power of two");
	ok(proto_run_check(SIZE, 16384, 0, 0) != 0, "run of 0");
	ok(proto_run_check(SIZE, 16384, 1, 2) != 0, "run (1, 2): not aligned");
	ok(proto_run_check(SIZE, 12345, 0, 1) != 0, "run at an invalid size");
	ok(proto_run_check(1ull << 30, 16384, 512, 512) == 0,
	    "run of 512: the most");
	ok(proto_run_check(1ull << 30, 16384, 0, 1024) != 0,
	    "run of 1024: past PROTO_HASHES_MAX");
}

/* Asks t for (index, count) and checks the hashes and uncles it gives,
 * and that they verify. */
static void
check_run(const proto_merkle *t, size_t cs, uint64_t index, uint64_t count,
    uint32_t layers, size_t nh, const char *const *hashes, size_t np,
    const char *const *proof, const char *name)
{
	uint8_t h[PROTO_HASHES_MAX * 32], p[PROTO_PROOF_MAX * 32];
	size_t gh = 99, gp = 99;
	int rc = proto_merkle_run(t, cs, index, count, layers, h, &gh, p, &gp);

	ok(rc == 0 && gh == nh && gp == np && same(h, nh, hashes) &&
	    same(p, np, proof), "tree run %s", name);
	if (layers >= np && np == proto_run_proof_len(SIZE, cs, count))
		ok(proto_run_verify(root, SIZE, cs, index, count, h, gh, p,
		    gp) == 0, "verify %s", name);
}

static void
test_tree(void)
{
	const char *const h0[] = { chunk_hex[0] };
	const char *const p0[] = { chunk_hex[1], N1_1, N2_1 };
	const char *const h2[] = { chunk_hex[2], chunk_hex[3] };
	const char *const p2[] = { N1_0, N2_1 };
	const char *const h4[] = { chunk_hex[4] };
	const char *const p4[] = { N2_0 };
	const char *const hc[] = { N1_2 };
	uint8_t h[PROTO_HASHES_MAX * 32], p[PROTO_PROOF_MAX * 32], got[32];
	proto_merkle *t, *coarse, *none;
	uint8_t up[3][32];
	size_t gh, gp;

	ok(proto_merkle_new(layer[0], 5, 16384, SIZE, &t) == 0, "tree built");
	proto_merkle_root(t, got);
	is_mem(got, root, 32, "tree: its root is the vector's");
	check_run(t, 16384, 0, 1, UINT32_MAX, 1, h0, 3, p0, "(0, 1)");
	check_run(t, 16384, 2, 2, UINT32_MAX, 2, h2, 2, p2, "(2, 2)");
	check_run(t, 16384, 4, 4, UINT32_MAX, 1, h4, 1, p4,
	    "(4, 4): one hash, three of padding implied");
	check_run(t, 16384, 0, 8, UINT32_MAX, 5, chunk_hex, 0, NULL,
	    "(0, 8): the layer, no uncles");
	check_run(t, 16384, 0, 1, 1, 1, h0, 1, p0,
	    "(0, 1) with proof_layers 1: the lowest uncle only");
	check_run(t, 32768, 2, 2, UINT32_MAX, 1, hc, 1, p4,
	    "(2, 2) at 32K, from the 16K layer");
	ok(proto_merkle_run(t, 16384, 5, 1, 9, h, &gh, p, &gp) ==
	    PROTO_ERR_INVALID, "tree: run past the end refused");
	ok(proto_merkle_run(t, 16384, 1, 2, 9, h, &gh, p, &gp) ==
	    PROTO_ERR_INVALID, "tree: unaligned run refused");
	proto_merkle_free(t);

	/* The tree of the 32K layer answers 32K and coarser, never 16K. */
	unhex(N1_0, up[0]);
	unhex(N1_1, up[1]);
	unhex(N1_2, up[2]);
	ok(proto_merkle_new(up[0], 3, 32768, SIZE, &coarse) == 0,
	    "tree built from the 32K layer");
	proto_merkle_root(coarse, got);
	is_mem(got, root, 32, "tree at 32K: the same root");
	ok(proto_merkle_run(coarse, 16384, 0, 1, 9, h, &gh, p, &gp) ==
	    PROTO_ERR_INVALID, "tree at 32K: a 16K run refused (finer)");
	ok(proto_merkle_new(up[0], 4, 32768, SIZE, &none) ==
	    PROTO_ERR_INVALID && none == NULL,
	    "tree: a count that is not the file's refused");
	proto_merkle_free(coarse);
	proto_merkle_free(NULL);
}

static void
test_forgeries(void)
{
	uint8_t h[PROTO_HASHES_MAX * 32], p[PROTO_PROOF_MAX * 32], other[32];
	proto_merkle *t;
	size_t gh, gp;

	proto_merkle_new(layer[0], 5, 16384, SIZE, &t);
	proto_merkle_run(t, 16384, 0, 1, UINT32_MAX, h, &gh, p, &gp);
	ok(proto_run_verify(root, SIZE, 16384, 0, 1, h, gh, p, gp) == 0,
	    "verify (0, 1): the honest run");
	p[32] ^= 1;
	is_int(proto_run_verify(root, SIZE, 16384, 0, 1, h, gh, p, gp),
	    PROTO_ERR_MISMATCH, "verify: a bad uncle -> MISMATCH");
	p[32] ^= 1;
	h[0] ^= 0x80;
	is_int(proto_run_verify(root, SIZE, 16384, 0, 1, h, gh, p, gp),
	    PROTO_ERR_MISMATCH, "verify: a bad hash in the run -> MISMATCH");
	h[0] ^= 0x80;
	memcpy(other, p, 32);
	memcpy(p, p + 32, 32);
	memcpy(p + 32, other, 32);
	is_int(proto_run_verify(root, SIZE, 16384, 0, 1, h, gh, p, gp),
	    PROTO_ERR_MISMATCH, "verify: uncles swapped -> MISMATCH");
	memcpy(p + 32, p, 32);
	memcpy(p, other, 32);
	is_int(proto_run_verify(root, SIZE, 16384, 0, 1, h, gh, p, gp - 1),
	    PROTO_ERR_INVALID, "verify: a proof one short -> INVALID");
	is_int(proto_run_verify(root, SIZE, 16384, 1, 1, h, gh, p, gp),
	    PROTO_ERR_MISMATCH, "verify: chunk 0's run as chunk 1's -> MISMATCH");
	memcpy(other, root, 32);
	other[31] ^= 1;
	is_int(proto_run_verify(other, SIZE, 16384, 0, 1, h, gh, p, gp),
	    PROTO_ERR_MISMATCH, "verify: against another root -> MISMATCH");

	/* Padding: (4, 4) carries one hash; a second, Z(0), is not taken. */
	proto_merkle_run(t, 16384, 4, 4, UINT32_MAX, h, &gh, p, &gp);
	memset(h + 32, 0, 32);
	is_int(proto_run_verify(root, SIZE, 16384, 4, 4, h, 2, p, gp),
	    PROTO_ERR_INVALID, "verify: padding sent as a hash -> INVALID");
	ok(proto_run_verify(root, SIZE, 16384, 4, 4, h, 1, p, gp) == 0,
	    "verify: the padding implied -> OK");
	is_int(proto_run_verify(root, SIZE, 16384, 8, 8, h, 0, p, 0),
	    PROTO_ERR_INVALID, "verify: a run past the end -> INVALID");
	is_int(proto_run_verify(root, SIZE, 16384, 6, 2, h, 0, p, 1),
	    PROTO_ERR_INVALID, "verify: a run in the padding alone -> INVALID");
	proto_merkle_free(t);
}

/* A layer of 1000 made-up hashes: every run at every count verifies, and
 * the tree agrees with hash_root. */
static void
test_many(void)
{
	const uint64_t n = 1000, size = n * 16384 - 7;
	uint8_t *big = malloc(n * 32), r[32];
	uint8_t h[PROTO_HASHES_MAX * 32], p[PROTO_PROOF_MAX * 32];
	proto_merkle *t;
	unsigned bad = 0, runs = 0;
	size_t gh, gp;

	if (big == NULL)
		exit(2);
	for (uint64_t i = 0; i < n * 32; i++)
		big[i] = (uint8_t)(i * 7 + i / 32);
	proto_hash_root(big, n, 16384, size, r, NULL);
	ok(proto_merkle_new(big, n, 16384, size, &t) == 0, "tree of 1000");
	for (uint64_t count = 1; count <= 512; count *= 2)
		for (uint64_t i = 0; i < n; i += count) {
			runs++;
			if (proto_merkle_run(t, 16384, i, count, UINT32_MAX, h,
			    &gh, p, &gp) != 0 || proto_run_verify(r, size, 16384,
			    i, count, h, gh, p, gp) != 0)
				bad++;
		}
	ok(bad == 0, "all %u runs of 1 to 512 over 1000 hashes verify", runs);
	proto_merkle_free(t);
	free(big);
}

int
main(void)
{
	test_vectors();
	test_arith();
	test_tree();
	test_forgeries();
	test_many();
	return done_testing();
}
