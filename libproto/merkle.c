/*
 * Runs of a chunk layer and their proofs. A level of the tree is kept
 * only as far as it holds real nodes: every node past them lies over
 * padding alone and is Z(height), so a layer of n hashes costs about n
 * more, however wide its power of two.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "merkle.h"

#define LEVELS_MAX 64

struct proto_merkle {
	uint64_t size;
	size_t chunk_size;
	unsigned height;                /* log2 of the layer's width */
	const uint8_t *level[LEVELS_MAX]; /* level 0 borrowed, the rest in
	                                   * store */
	uint64_t count[LEVELS_MAX];     /* real nodes of each level */
	uint8_t zero[LEVELS_MAX][PROTO_HASH_LEN]; /* padding of each level */
	uint8_t *store;
};

static int
is_pow2(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

static unsigned
log2_of(uint64_t x)
{
	unsigned k = 0;

	while (x > 1) {
		x >>= 1;
		k++;
	}
	return k;
}

uint64_t
proto_layer_width(uint64_t size, size_t chunk_size)
{
	uint64_t n, w = 1;

	if (!proto_chunk_size_valid(size, chunk_size))
		return 0;
	n = proto_chunk_count(size, chunk_size);
	while (w < n)
		w <<= 1;
	return w;
}

unsigned
proto_run_proof_len(uint64_t size, size_t chunk_size, uint64_t count)
{
	uint64_t w = proto_layer_width(size, chunk_size);

	if (!is_pow2(count) || count > w)
		return 0;
	return log2_of(w) - log2_of(count);
}

uint64_t
proto_run_hashes(uint64_t size, size_t chunk_size, uint64_t index,
    uint64_t count)
{
	uint64_t n = proto_chunk_count(size, chunk_size);

	if (index >= n)
		return 0;
	return n - index < count ? n - index : count;
}

int
proto_run_check(uint64_t size, size_t chunk_size, uint64_t index,
    uint64_t count)
{
	uint64_t w = proto_layer_width(size, chunk_size);

	if (w == 0 || !is_pow2(count) || count > PROTO_HASHES_MAX ||
	    count > w || index % count != 0 ||
	    index >= proto_chunk_count(size, chunk_size))
		return PROTO_ERR_INVALID;
	return 0;
}

int
proto_run_verify(const uint8_t root[PROTO_HASH_LEN], uint64_t size,
    size_t chunk_size, uint64_t index, uint64_t count, const uint8_t *hashes,
    size_t nhashes, const uint8_t *proof, size_t nproof)
{
	uint8_t nodes[PROTO_HASHES_MAX][PROTO_HASH_LEN];
	uint8_t pad[PROTO_HASH_LEN];
	uint64_t pos;
	int rc;

	if (proto_run_check(size, chunk_size, index, count) != 0 ||
	    nhashes != proto_run_hashes(size, chunk_size, index, count) ||
	    nproof != proto_run_proof_len(size, chunk_size, count))
		return PROTO_ERR_INVALID;
	if ((rc = proto_hash_zero(log2_of(chunk_size / PROTO_BLOCK_SIZE),
	    pad)) != 0)
		return rc;
	memcpy(nodes, hashes, nhashes * PROTO_HASH_LEN);
	for (size_t i = nhashes; i < count; i++)
		memcpy(nodes[i], pad, PROTO_HASH_LEN);
	/* The run's own subtree, then one uncle a level up to the root. */
	for (uint64_t n = count; n > 1; n /= 2)
		for (uint64_t i = 0; i < n / 2; i++)
			if ((rc = proto_hash_pair(nodes[2 * i], nodes[2 * i + 1],
			    nodes[i])) != 0)
				return rc;
	pos = index / count;
	for (size_t u = 0; u < nproof; u++, pos >>= 1) {
		const uint8_t *uncle = proof + u * PROTO_HASH_LEN;
		rc = pos & 1 ? proto_hash_pair(uncle, nodes[0], nodes[0]) :
		    proto_hash_pair(nodes[0], uncle, nodes[0]);
		if (rc != 0)
			return rc;
	}
	return memcmp(nodes[0], root, PROTO_HASH_LEN) == 0 ? 0 :
	    PROTO_ERR_MISMATCH;
}

static const uint8_t *
node(const proto_merkle *t, unsigned level, uint64_t pos)
{
	return pos < t->count[level] ? t->level[level] + pos * PROTO_HASH_LEN :
	    t->zero[level];
}

int
proto_merkle_new(const uint8_t *layer, uint64_t nchunks, size_t chunk_size,
    uint64_t size, proto_merkle **out)
{
	uint64_t width = proto_layer_width(size, chunk_size), total = 0;
	unsigned k = log2_of(chunk_size / PROTO_BLOCK_SIZE);
	proto_merkle *t;
	uint8_t *p;
	int rc;

	*out = NULL;
	if (width == 0 || nchunks != proto_chunk_count(size, chunk_size))
		return PROTO_ERR_INVALID;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return PROTO_ERR_NOMEM;
	t->size = size;
	t->chunk_size = chunk_size;
	t->height = log2_of(width);
	t->level[0] = layer;
	t->count[0] = nchunks;
	for (unsigned l = 1; l <= t->height; l++) {
		t->count[l] = (t->count[l - 1] + 1) / 2;
		total += t->count[l];
	}
	if ((rc = proto_hash_zero(k, t->zero[0])) != 0) {
		free(t);
		return rc;
	}
	for (unsigned l = 1; l <= t->height; l++)
		if ((rc = proto_hash_pair(t->zero[l - 1], t->zero[l - 1],
		    t->zero[l])) != 0) {
			free(t);
			return rc;
		}
	if (total > 0 && (t->store = malloc(total * PROTO_HASH_LEN)) == NULL) {
		free(t);
		return PROTO_ERR_NOMEM;
	}
	p = t->store;
	for (unsigned l = 1; l <= t->height; l++) {
		t->level[l] = p;
		for (uint64_t i = 0; i < t->count[l]; i++, p += PROTO_HASH_LEN)
			if ((rc = proto_hash_pair(node(t, l - 1, 2 * i),
			    node(t, l - 1, 2 * i + 1), p)) != 0) {
				proto_merkle_free(t);
				return rc;
			}
	}
	*out = t;
	return 0;
}

void
proto_merkle_free(proto_merkle *t)
{
	if (t == NULL)
		return;
	free(t->store);
	free(t);
}

void
proto_merkle_root(const proto_merkle *t, uint8_t root[PROTO_HASH_LEN])
{
	memcpy(root, node(t, t->height, 0), PROTO_HASH_LEN);
}

int
proto_merkle_run(const proto_merkle *t, size_t chunk_size, uint64_t index,
    uint64_t count, uint32_t proof_layers, uint8_t *hashes, size_t *nhashes,
    uint8_t *proof, size_t *nproof)
{
	unsigned base, top;
	uint64_t n, pos;
	size_t u = 0;

	if (chunk_size < t->chunk_size ||
	    proto_run_check(t->size, chunk_size, index, count) != 0)
		return PROTO_ERR_INVALID;
	base = log2_of(chunk_size / t->chunk_size);
	top = base + log2_of(count);
	n = proto_run_hashes(t->size, chunk_size, index, count);
	for (uint64_t i = 0; i < n; i++)
		memcpy(hashes + i * PROTO_HASH_LEN, node(t, base, index + i),
		    PROTO_HASH_LEN);
	pos = index / count;
	for (unsigned l = top; l < t->height && u < proof_layers &&
	    u < PROTO_PROOF_MAX; l++, u++, pos >>= 1)
		memcpy(proof + u * PROTO_HASH_LEN, node(t, l, pos ^ 1),
		    PROTO_HASH_LEN);
	*nhashes = (size_t)n;
	*nproof = u;
	return 0;
}
