/*
 * Chunk hashes on demand (docs/PROTOCOL.md section 1, "Runs and proofs"):
 * a run of a file's chunk layer, an aligned power-of-two stretch of it,
 * comes with the uncle hashes that tie it to the tree's root, so that a
 * fetcher holding only the root checks each run before it uses a hash of
 * it. proto_run_verify is the fetcher's check; a proto_merkle, the levels
 * above a whole layer kept once, is what a node answers GET_HASHES from.
 */
#ifndef PROTO_MERKLE_H
#define PROTO_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

#define PROTO_HASHES_MAX 512u /* hashes in one run (16 KiB) */
/* Uncles in one proof: a tree of PROTO_MAX_CHUNKS chunks needs 24 at
 * most; a HASHES with more is malformed. */
#define PROTO_PROOF_MAX 32u

/* The width of the chunk layer at chunk_size padded with zero nodes: the
 * smallest power of two at least the chunk count. 0 when chunk_size is not
 * valid for a file of size bytes. */
uint64_t proto_layer_width(uint64_t size, size_t chunk_size);

/* The uncles of a whole proof of a run of count hashes: log2(width) -
 * log2(count); 0 when the run would be wider than the layer. */
unsigned proto_run_proof_len(uint64_t size, size_t chunk_size, uint64_t count);

/* The hashes a run carries: the real ones, min(count, chunks - index); 0
 * for an index past the last chunk. */
uint64_t proto_run_hashes(uint64_t size, size_t chunk_size, uint64_t index,
    uint64_t count);

/* 0 when (index, count) is a run of the layer at chunk_size: chunk_size
 * valid for size, count a power of two from 1 to PROTO_HASHES_MAX and no
 * more than the layer's width, index a multiple of count and below the
 * chunk count. PROTO_ERR_INVALID otherwise. */
int proto_run_check(uint64_t size, size_t chunk_size, uint64_t index,
    uint64_t count);

/*
 * Checks a run against root: hashes holds the nhashes real hashes of the
 * run (proto_run_hashes; the padding past the last chunk is implied),
 * proof the nproof uncles, lowest first, a whole proof
 * (proto_run_proof_len). Both borrowed for the call. 0 when they hash up
 * to root; PROTO_ERR_MISMATCH when not; PROTO_ERR_INVALID for a run that
 * is not one (proto_run_check) or counts that are not those; as
 * proto_sha256.
 */
int proto_run_verify(const uint8_t root[PROTO_HASH_LEN], uint64_t size,
    size_t chunk_size, uint64_t index, uint64_t count, const uint8_t *hashes,
    size_t nhashes, const uint8_t *proof, size_t nproof);

typedef struct proto_merkle proto_merkle;

/*
 * The tree above a whole chunk layer of nchunks hashes at chunk_size of a
 * file of size bytes, built at once (about nchunks hashes, and as many
 * bytes again as the layer). layer is borrowed: it must stay, unchanged,
 * until proto_merkle_free. 0 with *out the caller's; PROTO_ERR_INVALID for
 * a chunk size or count that cannot be; PROTO_ERR_NOMEM; PROTO_ERR_CRYPTO.
 * *out is NULL on failure.
 */
int proto_merkle_new(const uint8_t *layer, uint64_t nchunks,
    size_t chunk_size, uint64_t size, proto_merkle **out);

/* Frees t (not the layer it borrows); NULL does nothing. */
void proto_merkle_free(proto_merkle *t);

/* The tree's root into root. */
void proto_merkle_root(const proto_merkle *t, uint8_t root[PROTO_HASH_LEN]);

/*
 * Answers a run at chunk_size, which may be coarser than the layer's but
 * not finer: the run's real hashes into hashes (room for PROTO_HASHES_MAX,
 * the caller's), their count in *nhashes, and the lowest proof_layers of
 * its uncles (all of them when it has fewer) into proof (room for
 * PROTO_PROOF_MAX), their count in *nproof. 0; PROTO_ERR_INVALID for a run
 * that is not one (proto_run_check) or a chunk size finer than the layer's.
 */
int proto_merkle_run(const proto_merkle *t, size_t chunk_size, uint64_t index,
    uint64_t count, uint32_t proof_layers, uint8_t *hashes, size_t *nhashes,
    uint8_t *proof, size_t *nproof);

#endif
