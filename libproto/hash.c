/*
 * SHA-256 through OpenSSL's EVP interface and the Merkle tree arithmetic of
 * docs/PROTOCOL.md section 1.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "error.h"
#include "hash.h"

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* Fetching the digest once avoids OpenSSL 3's implicit fetch on every init,
 * which costs a lock and a lookup per 16 KiB block. */
static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *
sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md;
}

static int
digest(EVP_MD_CTX *ctx, const void *a, size_t alen, const void *b,
    size_t blen, uint8_t out[PROTO_HASH_LEN])
{
	const EVP_MD *md = sha256();

	if (md == NULL || !EVP_DigestInit_ex(ctx, md, NULL) ||
	    !EVP_DigestUpdate(ctx, a, alen) ||
	    (blen > 0 && !EVP_DigestUpdate(ctx, b, blen)) ||
	    !EVP_DigestFinal_ex(ctx, out, NULL))
		return PROTO_ERR_CRYPTO;
	return 0;
}

int
proto_sha256(const void *data, size_t len, uint8_t out[PROTO_HASH_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc;

	if (ctx == NULL)
		return PROTO_ERR_NOMEM;
	rc = digest(ctx, data, len, NULL, 0, out);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
proto_hash_pair(const uint8_t left[PROTO_HASH_LEN],
    const uint8_t right[PROTO_HASH_LEN], uint8_t out[PROTO_HASH_LEN])
{
	uint8_t both[2 * PROTO_HASH_LEN];

	memcpy(both, left, PROTO_HASH_LEN);
	memcpy(both + PROTO_HASH_LEN, right, PROTO_HASH_LEN);
	return proto_sha256(both, sizeof(both), out);
}

int
proto_hash_zero(unsigned height, uint8_t out[PROTO_HASH_LEN])
{
	if (height >= 64)
		return PROTO_ERR_INVALID;
	memset(out, 0, PROTO_HASH_LEN);
	for (unsigned h = 0; h < height; h++) {
		int rc;
		if ((rc = proto_hash_pair(out, out, out)) != 0)
			return rc;
	}
	return 0;
}

static uint64_t
block_count(uint64_t size)
{
	return size == 0 ? 1 : size / PROTO_BLOCK_SIZE +
	    (size % PROTO_BLOCK_SIZE != 0);
}

static uint64_t
tree_width(uint64_t size)
{
	uint64_t n = block_count(size), w = 1;

	while (w < n)
		w <<= 1;
	return w;
}

static int
is_pow2(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

static unsigned
log2_exact(uint64_t x)
{
	unsigned k = 0;

	while (x > 1) {
		x >>= 1;
		k++;
	}
	return k;
}

uint64_t
proto_chunk_count(uint64_t size, size_t chunk_size)
{
	if (chunk_size == 0)
		return 0;
	if (size == 0)
		return 1;
	return size / chunk_size + (size % chunk_size != 0);
}

size_t
proto_chunk_len(uint64_t size, size_t chunk_size, uint64_t index)
{
	uint64_t start;

	if (index >= proto_chunk_count(size, chunk_size))
		return 0;
	start = index * (uint64_t)chunk_size;
	return size - start < chunk_size ? (size_t)(size - start) : chunk_size;
}

int
proto_chunk_size_allowed(size_t chunk_size)
{
	return is_pow2(chunk_size) && chunk_size >= PROTO_CHUNK_MIN &&
	    chunk_size <= PROTO_CHUNK_MAX;
}

int
proto_chunk_size_valid(uint64_t size, size_t chunk_size)
{
	return proto_chunk_size_allowed(chunk_size) &&
	    chunk_size / PROTO_BLOCK_SIZE <= tree_width(size) &&
	    proto_chunk_count(size, chunk_size) <= PROTO_MAX_CHUNKS;
}

size_t
proto_chunk_size_fit(uint64_t size, size_t requested)
{
	uint64_t widest = tree_width(size) * PROTO_BLOCK_SIZE;
	size_t cs = requested;

	if (!proto_chunk_size_allowed(requested))
		return 0;
	if (cs > widest)
		cs = (size_t)widest;
	return proto_chunk_size_valid(size, cs) ? cs : 0;
}

size_t
proto_chunk_size_auto(uint64_t size)
{
	size_t cs = PROTO_CHUNK_AUTO_MIN;

	while (cs > PROTO_CHUNK_MIN &&
	    proto_chunk_count(size, cs) < PROTO_CHUNK_AUTO_SPREAD)
		cs >>= 1;
	while (cs < PROTO_CHUNK_MAX &&
	    proto_chunk_count(size, cs) > PROTO_CHUNK_AUTO_COUNT)
		cs <<= 1;
	return proto_chunk_size_fit(size, cs);
}

/* Reduces n (a power of two) hashes at nodes to their root, in place. */
static int
reduce(EVP_MD_CTX *ctx, uint8_t *nodes, uint64_t n)
{
	int rc;

	for (; n > 1; n /= 2)
		for (uint64_t i = 0; i < n / 2; i++) {
			uint8_t *pair = nodes + 2 * i * PROTO_HASH_LEN;
			if ((rc = digest(ctx, pair, 2 * PROTO_HASH_LEN, NULL, 0,
			    nodes + i * PROTO_HASH_LEN)) != 0)
				return rc;
		}
	return 0;
}

int
proto_hash_chunk(const void *data, size_t len, size_t chunk_size,
    uint8_t out[PROTO_HASH_LEN])
{
	uint8_t leaves[PROTO_CHUNK_MAX / PROTO_BLOCK_SIZE][PROTO_HASH_LEN];
	size_t nleaves = chunk_size / PROTO_BLOCK_SIZE;
	uint64_t nreal = block_count(len);
	const uint8_t *p = data;
	EVP_MD_CTX *ctx;
	int rc = 0;

	if (!proto_chunk_size_allowed(chunk_size) || len > chunk_size)
		return PROTO_ERR_INVALID;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return PROTO_ERR_NOMEM;
	for (size_t i = 0; i < nleaves && rc == 0; i++) {
		if (i < nreal) {
			size_t off = i * PROTO_BLOCK_SIZE;
			size_t n = len - off < PROTO_BLOCK_SIZE ? len - off :
			    PROTO_BLOCK_SIZE;
			rc = digest(ctx, p + off, n, NULL, 0, leaves[i]);
		} else
			memset(leaves[i], 0, PROTO_HASH_LEN);
	}
	if (rc == 0 && (rc = reduce(ctx, leaves[0], nleaves)) == 0)
		memcpy(out, leaves[0], PROTO_HASH_LEN);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
proto_hash_content_id(const uint8_t *layer, uint64_t count, size_t chunk_size,
    uint64_t size, uint8_t id[PROTO_HASH_LEN])
{
	return proto_hash_root(layer, count, chunk_size, size, NULL, id);
}

int
proto_hash_id_of_root(uint64_t size, const uint8_t root[PROTO_HASH_LEN],
    uint8_t id[PROTO_HASH_LEN])
{
	uint8_t buf[8 + PROTO_HASH_LEN];

	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)(size >> (56 - 8 * i));
	memcpy(buf + 8, root, PROTO_HASH_LEN);
	return proto_sha256(buf, sizeof(buf), id);
}

int
proto_hash_root(const uint8_t *layer, uint64_t count, size_t chunk_size,
    uint64_t size, uint8_t root[PROTO_HASH_LEN], uint8_t id[PROTO_HASH_LEN])
{
	uint8_t pad[PROTO_HASH_LEN], *nodes;
	uint64_t top;
	EVP_MD_CTX *ctx;
	int rc;

	if (!proto_chunk_size_valid(size, chunk_size) ||
	    count != proto_chunk_count(size, chunk_size))
		return PROTO_ERR_INVALID;
	top = tree_width(size) / (chunk_size / PROTO_BLOCK_SIZE);
	if ((rc = proto_hash_zero(log2_exact(chunk_size / PROTO_BLOCK_SIZE),
	    pad)) != 0)
		return rc;
	if ((nodes = malloc(top * PROTO_HASH_LEN)) == NULL)
		return PROTO_ERR_NOMEM;
	memcpy(nodes, layer, count * PROTO_HASH_LEN);
	for (uint64_t i = count; i < top; i++)
		memcpy(nodes + i * PROTO_HASH_LEN, pad, PROTO_HASH_LEN);
	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		free(nodes);
		return PROTO_ERR_NOMEM;
	}
	rc = reduce(ctx, nodes, top);
	EVP_MD_CTX_free(ctx);
	if (rc == 0 && root != NULL)
		memcpy(root, nodes, PROTO_HASH_LEN);
	if (rc == 0 && id != NULL)
		rc = proto_hash_id_of_root(size, nodes, id);
	free(nodes);
	return rc;
}

void
proto_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
proto_hex_decode(const char *text, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value(text[2 * i]), lo;
		if (hi < 0 || (lo = hex_value(text[2 * i + 1])) < 0)
			return PROTO_ERR_MALFORMED;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int
proto_id_parse(const char *text, uint8_t id[PROTO_HASH_LEN])
{
	if (proto_hex_decode(text, id, PROTO_HASH_LEN) != 0)
		return PROTO_ERR_MALFORMED;
	return text[PROTO_ID_HEX_LEN] == '\0' ? 0 : PROTO_ERR_MALFORMED;
}
