/*
 * hash.c: SHA-256, Z(h), chunk hashes, chunk arithmetic and sizes, id text,
 * and the content id test vectors of docs/PROTOCOL.md section 1, checked
 * against golden values and against a Merkle root computed here from raw
 * SHA-256, following the document literally.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "proto.h"
#include "tap.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)

/* The golden content ids of the test vectors (PROTOCOL.md section 1). */
#define ID_EMPTY "9a0be4ec109b7ca51504ebd60835e9599f33a732c47c5450301784f5c28edd63"
#define ID_ONE "f116abd57c3e0560fd70ec4abc84e1a1385d3aaa1a936cdda4bfefbcf099a26c"
#define ID_BLOCK "bb39c10902cb0bf1abb3cec21af97209771888e93970205e3a28fb4940aec473"
#define ID_BLOCK1 "784e0e50eea59248cef35ca092d8117f39853c35806e43196a2051d42be6e3e7"
#define ID_MIB "ba33d5d17e73d53de11d74ca9416996c9cfc1b4e10cb86a568d2cc986ed6c44a"
/* The chunk hashes of byte(16385) at chunk size 16384. */
#define C0 "4348e3b98e8a327b34ced39c1da9e67cdb4cd5e48e4d7960607a3ae403d35f0c"
#define C1 "a9f51566bd6705f7ea6ad54bb9deb449f795582d6529a0e22207b8981233ec58"

static void
hex(const uint8_t *h, char out[PROTO_ID_HEX_LEN + 1])
{
	proto_hex_encode(h, PROTO_HASH_LEN, out);
}

/* SHA-256 straight from OpenSSL, independent of proto_sha256. */
static void
raw_sha256(const void *a, size_t alen, const void *b, size_t blen,
    uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, a, alen) ||
	    (blen && !EVP_DigestUpdate(ctx, b, blen)) ||
	    !EVP_DigestFinal_ex(ctx, out, NULL)) {
		fprintf(stderr, "OpenSSL failed\n");
		exit(2);
	}
	EVP_MD_CTX_free(ctx);
}

/* byte(n): n bytes, byte i = i mod 251. */
static uint8_t *
byte_n(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	if (p == NULL)
		exit(2);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i % 251);
	return p;
}

/*
 * The content id, as PROTOCOL.md section 1 says, word for word: blocks of
 * 16384, nblocks = max(1, ceil(size/16384)), leaf = H(block), width W the
 * smallest power of two >= nblocks, padding leaves of 32 zero bytes, inner
 * node H(left || right), id = H(size_be64 || root).
 */
static void
doc_content_id(const uint8_t *data, uint64_t size, uint8_t id[32])
{
	uint64_t nblocks = size == 0 ? 1 : (size + 16383) / 16384, w = 1;
	uint8_t (*nodes)[32], be[8];

	while (w < nblocks)
		w *= 2;
	if ((nodes = calloc(w, 32)) == NULL)
		exit(2);
	for (uint64_t i = 0; i < nblocks; i++) {
		uint64_t off = i * 16384;
		uint64_t n = size - off < 16384 ? size - off : 16384;
		raw_sha256(data + off, n, NULL, 0, nodes[i]);
	}
	/* nodes[nblocks .. w-1] stay 32 zero bytes: the padding. */
	for (uint64_t n = w; n > 1; n /= 2)
		for (uint64_t i = 0; i < n / 2; i++)
			raw_sha256(nodes[2 * i], 32, nodes[2 * i + 1], 32, nodes[i]);
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(size >> (56 - 8 * i));
	raw_sha256(be, 8, nodes[0], 32, id);
	free(nodes);
}

/* A memfd holding n bytes of data. */
static int
memfd_with(const uint8_t *data, size_t n)
{
	int fd = memfd_create("test_hash", 0);
	size_t off = 0;

	if (fd < 0) {
		perror("memfd_create");
		exit(2);
	}
	while (off < n) {
		ssize_t w = write(fd, data + off, n - off);
		if (w <= 0) {
			perror("write");
			exit(2);
		}
		off += (size_t)w;
	}
	return fd;
}

/* The id of data built by proto_manifest_build_fd at chunk size cs, as
 * hex; "" on failure. *cs_used gets the manifest's chunk size. */
static void
built_id(const uint8_t *data, size_t n, size_t cs, char out[65],
    uint32_t *cs_used)
{
	proto_manifest *mf = NULL;
	int fd = memfd_with(data, n);
	int rc = proto_manifest_build_fd(fd, "vector", NULL, cs, &mf);

	close(fd);
	out[0] = '\0';
	if (rc != 0) {
		diag("build_fd(size %zu, cs %zu): %s", n, cs,
		    proto_strerror(rc));
		return;
	}
	hex(mf->id, out);
	if (cs_used)
		*cs_used = mf->chunk_size;
	proto_manifest_free(mf);
}

static void
test_sha256(void)
{
	uint8_t h[32];
	char x[65];

	is_int(proto_sha256("", 0, h), 0, "sha256: empty input succeeds");
	hex(h, x);
	is_str(x, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	    "sha256: \"\" known value");
	is_int(proto_sha256("abc", 3, h), 0, "sha256: \"abc\" succeeds");
	hex(h, x);
	is_str(x, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    "sha256: \"abc\" known value");
	proto_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	    h);
	hex(h, x);
	is_str(x, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
	    "sha256: 56-byte two-block message known value");
}

static void
test_pair_and_zero(void)
{
	uint8_t z[32], zero[32] = { 0 }, a[32], b[32], ab[64], want[32], out[32];
	char x[65];

	is_int(proto_hash_zero(0, z), 0, "Z(0) succeeds");
	is_mem(z, zero, 32, "Z(0) is 32 zero bytes");
	is_int(proto_hash_zero(1, z), 0, "Z(1) succeeds");
	hex(z, x);
	is_str(x, "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b",
	    "Z(1) = H(64 zero bytes)");
	proto_hash_zero(2, z);
	hex(z, x);
	is_str(x, "db56114e00fdd4c1f85c892bf35ac9a89289aaecb1ebd0a96cde606a748b5d71",
	    "Z(2) = H(Z(1) || Z(1))");
	is_int(proto_hash_zero(63, z), 0, "Z(63): highest height accepted");
	is_int(proto_hash_zero(64, z), PROTO_ERR_INVALID,
	    "Z(64): height over the limit -> INVALID");

	proto_sha256("left", 4, a);
	proto_sha256("right", 5, b);
	memcpy(ab, a, 32);
	memcpy(ab + 32, b, 32);
	proto_sha256(ab, 64, want);
	proto_hash_pair(a, b, out);
	is_mem(out, want, 32, "hash_pair = H(left || right)");
	memcpy(out, a, 32);
	proto_hash_pair(out, b, out);
	is_mem(out, want, 32, "hash_pair: out aliasing left");
	memcpy(out, b, 32);
	proto_hash_pair(a, out, out);
	is_mem(out, want, 32, "hash_pair: out aliasing right");
}

static void
test_hash_chunk(void)
{
	uint8_t *data = byte_n(4 << 20), h[32], leaf0[32], leaf1[32], n01[32],
	    z1[32], want[32], zeroleaf[32];
	uint8_t *zeros = calloc(1, 4 << 20);

	/* One whole block at 16 KiB: the chunk hash is the leaf. */
	raw_sha256(data, 16384, NULL, 0, leaf0);
	is_int(proto_hash_chunk(data, 16384, 16384, h), 0,
	    "hash_chunk: one full block at 16K succeeds");
	is_mem(h, leaf0, 32, "hash_chunk: one full block = H(block)");

	/* Empty chunk (the empty file): H(""). */
	raw_sha256("", 0, NULL, 0, want);
	is_int(proto_hash_chunk(NULL, 0, 16384, h), 0,
	    "hash_chunk: empty chunk succeeds");
	is_mem(h, want, 32, "hash_chunk: empty chunk = H(\"\")");

	/* One byte at 32 KiB: one real leaf and one zero leaf. */
	raw_sha256(data, 1, NULL, 0, leaf0);
	memset(zeroleaf, 0, 32);
	raw_sha256(leaf0, 32, zeroleaf, 32, want);
	proto_hash_chunk(data, 1, 32768, h);
	is_mem(h, want, 32, "hash_chunk padding: 1 byte at 32K = H(H(b) || 0^32)");

	/* 16385 bytes at 64 KiB: leaves L0 L1 0 0. */
	raw_sha256(data, 16384, NULL, 0, leaf0);
	raw_sha256(data + 16384, 1, NULL, 0, leaf1);
	raw_sha256(leaf0, 32, leaf1, 32, n01);
	proto_hash_zero(1, z1);
	raw_sha256(n01, 32, z1, 32, want);
	proto_hash_chunk(data, 16385, 65536, h);
	is_mem(h, want, 32,
	    "hash_chunk padding: 16385 bytes at 64K = H(H(L0||L1) || Z(1))");

	/* Giant: a full 4 MiB chunk of zeros is 8 levels over H(0^16384). */
	raw_sha256(zeros, 16384, NULL, 0, want);
	for (int i = 0; i < 8; i++)
		raw_sha256(want, 32, want, 32, want);
	is_int(proto_hash_chunk(zeros, 4 << 20, 4 << 20, h), 0,
	    "hash_chunk giant: full 4M chunk succeeds");
	is_mem(h, want, 32, "hash_chunk giant: 4M of zeros = 256-leaf tree");

	is_int(proto_hash_chunk(data, 16385, 16384, h), PROTO_ERR_INVALID,
	    "hash_chunk: len one over chunk_size -> INVALID");
	is_int(proto_hash_chunk(data, 100, 8192, h), PROTO_ERR_INVALID,
	    "hash_chunk: chunk_size under 16K -> INVALID");
	is_int(proto_hash_chunk(data, 100, 3 * 16384, h), PROTO_ERR_INVALID,
	    "hash_chunk: chunk_size not a power of two -> INVALID");
	is_int(proto_hash_chunk(data, 100, 8 << 20, h), PROTO_ERR_INVALID,
	    "hash_chunk: chunk_size over 4M -> INVALID");
	free(data);
	free(zeros);
}

static void
test_chunk_arith(void)
{
	is_int(proto_chunk_count(0, 16384), 1, "chunk_count: empty file has 1");
	is_int(proto_chunk_count(1, 16384), 1, "chunk_count: 1 byte");
	is_int(proto_chunk_count(16384, 16384), 1, "chunk_count: exact chunk");
	is_int(proto_chunk_count(16385, 16384), 2,
	    "chunk_count: one byte over a chunk");
	is_int(proto_chunk_count(1 * TiB, 4 << 20), 262144,
	    "chunk_count: 1 TiB at 4M");
	is_int(proto_chunk_count(UINT64_MAX, 4 << 20), 1ull << 42,
	    "chunk_count giant: UINT64_MAX bytes at 4M");
	is_int(proto_chunk_count(100, 0), 0, "chunk_count: chunk_size 0 -> 0");

	is_int(proto_chunk_len(16385, 16384, 0), 16384, "chunk_len: full first");
	is_int(proto_chunk_len(16385, 16384, 1), 1, "chunk_len: 1-byte last");
	is_int(proto_chunk_len(16385, 16384, 2), 0, "chunk_len: past the end -> 0");
	is_int(proto_chunk_len(32768, 16384, 1), 16384,
	    "chunk_len: exact multiple, last chunk full");
	is_int(proto_chunk_len(0, 16384, 0), 0, "chunk_len: empty file -> 0");
	is_int(proto_chunk_len(5 * GiB, 4 << 20, 1279), 4 << 20,
	    "chunk_len: last chunk of a 5 GiB file (64-bit offsets)");
	/* index * chunk_size wraps around 2^64 here: 2^50 * 2^14 = 2^64. */
	is_int(proto_chunk_len(100, 16384, 1ull << 50), 0,
	    "chunk_len giant index: 2^50 at 16K (offset wraps 2^64) -> 0");
	is_int(proto_chunk_len(100, 16384, UINT64_MAX), 0,
	    "chunk_len giant index: UINT64_MAX -> 0");
}

static void
test_chunk_sizes(void)
{
	ok(proto_chunk_size_allowed(16384), "allowed: 16K (minimum)");
	ok(proto_chunk_size_allowed(4 << 20), "allowed: 4M (maximum)");
	ok(!proto_chunk_size_allowed(8192), "allowed: 8K under the minimum");
	ok(!proto_chunk_size_allowed(8 << 20), "allowed: 8M over the maximum");
	ok(!proto_chunk_size_allowed(3 * 16384), "allowed: 48K not a power of two");
	ok(!proto_chunk_size_allowed(0), "allowed: 0");

	ok(proto_chunk_size_valid(0, 16384), "valid: empty file at 16K");
	ok(!proto_chunk_size_valid(0, 32768),
	    "valid: empty file at 32K is wider than the tree");
	ok(proto_chunk_size_valid(16385, 32768), "valid: 16385 at 32K (W = 2)");
	ok(!proto_chunk_size_valid(16385, 65536),
	    "valid: 16385 at 64K wider than the tree");
	ok(proto_chunk_size_valid(1 * TiB, 4 << 20),
	    "valid: 1 TiB at 4M = 262144 chunks");
	ok(proto_chunk_size_valid(1 * TiB + 1, 4 << 20),
	    "valid: 1 TiB + 1 at 4M = 262145 chunks (the old limit lifted)");
	ok(proto_chunk_size_valid(1 * TiB, 2 << 20),
	    "valid: 1 TiB at 2M = 524288 chunks");
	ok(proto_chunk_size_valid(64 * TiB, 4 << 20),
	    "valid exact limit: 64 TiB at 4M = 2^24 chunks");
	ok(!proto_chunk_size_valid(64 * TiB + 1, 4 << 20),
	    "valid: 64 TiB + 1 at 4M = 2^24 + 1 chunks");
	ok(proto_chunk_size_valid(256 * GiB, 16384),
	    "valid exact limit: 256 GiB at 16K = 2^24 chunks");
	ok(!proto_chunk_size_valid(256 * GiB + 1, 16384),
	    "valid: 256 GiB + 1 at 16K = 2^24 + 1 chunks");
	ok(!proto_chunk_size_valid(1 * MiB, 3 * 16384),
	    "valid: not a power of two");

	is_int(proto_chunk_size_fit(1, 4 << 20), 16384, "fit: 1 byte at 4M -> 16K");
	is_int(proto_chunk_size_fit(16385, 1 << 20), 32768,
	    "fit: 16385 bytes at 1M -> 32K");
	is_int(proto_chunk_size_fit(1 * GiB, 65536), 65536,
	    "fit: 1 GiB at 64K stays 64K");
	is_int(proto_chunk_size_fit(20 * GiB, 16384), 16384,
	    "fit: 20 GiB at 16K (1310720 chunks) stays 16K");
	is_int(proto_chunk_size_fit(300 * GiB, 16384), 0,
	    "fit: 300 GiB at 16K has too many chunks -> 0");
	is_int(proto_chunk_size_fit(100, 12345), 0, "fit: request not allowed -> 0");

	is_int(proto_chunk_size_auto(0), 16384, "auto: empty file -> 16K");
	is_int(proto_chunk_size_auto(1), 16384, "auto: 1-byte file -> 16K");
	is_int(proto_chunk_size_auto(1 * GiB), 256 * 1024, "auto: 1 GiB -> 256K");
	is_int(proto_chunk_size_auto(32u << 20), 256 * 1024,
	    "auto: 32 MiB = 128 chunks of 256K -> 256K");
	is_int(proto_chunk_size_auto((32u << 20) - 1), 256 * 1024,
	    "auto: 32 MiB - 1, 128 chunks of 256K -> 256K");
	is_int(proto_chunk_size_auto(16u << 20), 256 * 1024,
	    "auto exact limit: 16 MiB = 64 chunks of 256K -> 256K");
	is_int(proto_chunk_size_auto((16u << 20) - 1), 256 * 1024,
	    "auto: 16 MiB - 1, still 64 chunks of 256K -> 256K");
	is_int(proto_chunk_size_auto(15u << 20), 128 * 1024,
	    "auto: 15 MiB, 60 chunks of 256K -> 128K");
	is_int(proto_chunk_size_auto(8u << 20), 128 * 1024,
	    "auto: 8 MiB -> 128K (64 chunks, to spread fast)");
	is_int(proto_chunk_size_auto(1u << 20), 16384,
	    "auto: 1 MiB -> 16K (64 chunks: no finer size)");
	is_int(proto_chunk_size_auto(4 * GiB), 256 * 1024,
	    "auto exact limit: 4 GiB = 16384 chunks of 256K -> 256K");
	is_int(proto_chunk_size_auto(4 * GiB + 1), 512 * 1024,
	    "auto: 4 GiB + 1 -> 512K");
	is_int(proto_chunk_size_auto(20 * GiB), 2 << 20, "auto: 20 GiB -> 2M");
	is_int(proto_chunk_size_auto(1 * TiB), 4 << 20, "auto: 1 TiB -> 4M");
	is_int(proto_chunk_size_auto(1 * TiB + 1), 4 << 20,
	    "auto: 1 TiB + 1 -> 4M (262145 chunks)");
	is_int(proto_chunk_size_auto(64 * TiB), 4 << 20, "auto: 64 TiB -> 4M");
	is_int(proto_chunk_size_auto(64 * TiB + 1), 0, "auto: over 64 TiB -> 0");
	is_int(proto_chunk_size_auto(UINT64_MAX), 0, "auto giant: UINT64_MAX -> 0");
}

static void
test_id_text(void)
{
	const char *lower = ID_BLOCK1;
	char upper[65], buf[80], back[65];
	uint8_t id[32];

	is_int(proto_id_parse(lower, id), 0, "id_parse: 64 lowercase hex");
	hex(id, back);
	is_str(back, lower, "id_parse + hex_encode round trip");
	for (int i = 0; i < 65; i++)
		upper[i] = (char)(lower[i] >= 'a' && lower[i] <= 'f' ?
		    lower[i] - 'a' + 'A' : lower[i]);
	is_int(proto_id_parse(upper, id), 0, "id_parse: uppercase accepted");
	hex(id, back);
	is_str(back, lower, "id_parse: uppercase gives the same id");
	memcpy(buf, lower, 63);
	buf[63] = '\0';
	is_int(proto_id_parse(buf, id), PROTO_ERR_MALFORMED,
	    "id_parse truncated: 63 chars -> MALFORMED");
	memcpy(buf, lower, 64);
	buf[64] = '0';
	buf[65] = '\0';
	is_int(proto_id_parse(buf, id), PROTO_ERR_MALFORMED,
	    "id_parse: 65 chars -> MALFORMED");
	is_int(proto_id_parse("", id), PROTO_ERR_MALFORMED,
	    "id_parse: empty string -> MALFORMED");
	memcpy(buf, lower, 65);
	buf[10] = 'g';
	is_int(proto_id_parse(buf, id), PROTO_ERR_MALFORMED,
	    "id_parse: non-hex 'g' -> MALFORMED");
	memcpy(buf, lower, 65);
	buf[63] = ' ';
	is_int(proto_id_parse(buf, id), PROTO_ERR_MALFORMED,
	    "id_parse: trailing space inside 64 -> MALFORMED");
	memcpy(buf, lower, 65);
	buf[0] = 'x';
	is_int(proto_id_parse(buf, id), PROTO_ERR_MALFORMED,
	    "id_parse: leading non-hex -> MALFORMED");
}

static void
test_vectors(void)
{
	static const struct {
		const char *what;
		size_t size;
		int zero; /* one byte 0x00 rather than byte(n) */
		const char *want;
	} vec[] = {
		{ "empty", 0, 0, ID_EMPTY },
		{ "one byte 0x00", 1, 1, ID_ONE },
		{ "byte(16384)", 16384, 0, ID_BLOCK },
		{ "byte(16385)", 16385, 0, ID_BLOCK1 },
		{ "byte(1048576)", 1048576, 0, ID_MIB },
	};
	static const size_t sizes[] = { 16384, 65536, 1 << 20, 4 << 20 };

	for (size_t v = 0; v < sizeof(vec) / sizeof(vec[0]); v++) {
		uint8_t *data = byte_n(vec[v].size), id[32];
		char got[65], doc[65], name[160];
		int same = 1;

		if (vec[v].zero)
			memset(data, 0, vec[v].size);
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			uint32_t cs = 0;
			built_id(data, vec[v].size, sizes[s], got, &cs);
			snprintf(name, sizeof(name),
			    "vector %s at chunk size %zu = golden id", vec[v].what,
			    sizes[s]);
			if (!is_str(got, vec[v].want, name))
				same = 0;
			snprintf(name, sizeof(name),
			    "vector %s at %zu: manifest chunk size valid (%u)",
			    vec[v].what, sizes[s], (unsigned)cs);
			ok(proto_chunk_size_valid(vec[v].size, cs), "%s", name);
		}
		built_id(data, vec[v].size, 0, got, NULL);
		snprintf(name, sizeof(name), "vector %s at auto chunk size = golden id",
		    vec[v].what);
		is_str(got, vec[v].want, name);
		/* The document against the code: the root by hand. */
		doc_content_id(data, vec[v].size, id);
		hex(id, doc);
		snprintf(name, sizeof(name),
		    "vector %s: Merkle root by hand from raw SHA-256 = golden id",
		    vec[v].what);
		is_str(doc, vec[v].want, name);
		if (!same)
			diag("%s: chunk size changes the id", vec[v].what);
		free(data);
	}
}

/* The chunk layer of byte(16385) at 16K, and ids from layers (the doc's
 * "pad the layer with Z(k)" rule) for odd block counts. */
static void
test_layers(void)
{
	uint8_t *data = byte_n(5 * 16384 + 7), layer[8][32], id[32], want[32];
	char x[65], w[65], name[128];
	static const size_t sizes_odd[] = { 16384, 32768, 65536, 131072 };
	size_t n = 16385;

	proto_hash_chunk(data, 16384, 16384, layer[0]);
	proto_hash_chunk(data + 16384, 1, 16384, layer[1]);
	hex(layer[0], x);
	is_str(x, C0, "byte(16385) at 16K: chunk 0 hash = golden C0");
	hex(layer[1], x);
	is_str(x, C1, "byte(16385) at 16K: chunk 1 hash = golden C1");
	raw_sha256("\x45", 1, NULL, 0, want);
	is_mem(layer[1], want, 32,
	    "byte(16385) at 16K: chunk 1 = H(0x45), byte 16384 mod 251 = 69");
	is_int(proto_hash_content_id(&layer[0][0], 2, 16384, n, id), 0,
	    "content_id from byte(16385)'s 16K layer succeeds");
	hex(id, x);
	is_str(x, ID_BLOCK1, "content_id from layer [C0, C1] = ID_BLOCK1");
	is_int(proto_hash_content_id(&layer[0][0], 1, 16384, n, id),
	    PROTO_ERR_INVALID, "content_id: count one short -> INVALID");
	is_int(proto_hash_content_id(&layer[0][0], 2, 65536, n, id),
	    PROTO_ERR_INVALID, "content_id: chunk size wider than tree -> INVALID");

	/* 5 blocks + 7 bytes = 6 blocks, W = 8: padding at every chunk size. */
	n = 5 * 16384 + 7;
	doc_content_id(data, n, want);
	for (size_t s = 0; s < sizeof(sizes_odd) / sizeof(sizes_odd[0]); s++) {
		size_t cs = sizes_odd[s];
		uint64_t count = proto_chunk_count(n, cs);
		for (uint64_t j = 0; j < count; j++)
			proto_hash_chunk(data + j * cs, proto_chunk_len(n, cs, j),
			    cs, layer[j]);
		snprintf(name, sizeof(name),
		    "6-block file, layer at %zu (%llu chunks, padded with Z(k)) "
		    "gives the hand-made id", cs, (unsigned long long)count);
		ok(proto_hash_content_id(&layer[0][0], count, cs, n, id) == 0 &&
		    memcmp(id, want, 32) == 0, "%s", name);
		built_id(data, n, cs, x, NULL);
		hex(want, w);
		ok(strcmp(x, w) == 0,
		    "6-block file built at %zu matches the hand-made id", cs);
	}
	free(data);
}

/* A pipe (not seekable) must give the same id as a file. */
static void
test_pipe(void)
{
	uint8_t *data = byte_n(16385);
	static const size_t sizes[] = { 0, 16384, 1 << 20 };

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		proto_manifest *mf = NULL;
		int p[2], rc;
		char x[65] = "";

		if (pipe(p) != 0 || write(p[1], data, 16385) != 16385) {
			perror("pipe");
			exit(2);
		}
		close(p[1]);
		rc = proto_manifest_build_fd(p[0], "pipe", NULL, sizes[s], &mf);
		close(p[0]);
		if (rc == 0)
			hex(mf->id, x);
		ok(rc == 0 && strcmp(x, ID_BLOCK1) == 0,
		    "byte(16385) through a pipe at chunk size %zu = ID_BLOCK1",
		    sizes[s]);
		if (rc == 0)
			ok(proto_chunk_size_valid(mf->size, mf->chunk_size),
			    "pipe at %zu: chunk size %u narrowed to the tree",
			    sizes[s], mf->chunk_size);
		proto_manifest_free(mf);
	}
	free(data);
}

int
main(void)
{
	test_sha256();
	test_pair_and_zero();
	test_hash_chunk();
	test_chunk_arith();
	test_chunk_sizes();
	test_id_text();
	test_vectors();
	test_layers();
	test_pipe();
	return done_testing();
}
