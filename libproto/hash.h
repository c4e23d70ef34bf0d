/*
 * Content ids and chunk hashes: a SHA-256 Merkle tree over 16 KiB blocks
 * (docs/PROTOCOL.md section 1). The id depends on the file's bytes alone; the
 * chunk size only picks which layer of the tree a manifest carries.
 */
#ifndef PROTO_HASH_H
#define PROTO_HASH_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_HASH_LEN 32
#define PROTO_ID_HEX_LEN 64
#define PROTO_BLOCK_SIZE 16384u
#define PROTO_CHUNK_MIN PROTO_BLOCK_SIZE
#define PROTO_CHUNK_MAX (4u << 20)
/* The most chunks a file has at any valid chunk size: 2^24, so at 4 MiB a
 * file of up to 64 TiB (docs/PROTOCOL.md section 1). */
#define PROTO_MAX_CHUNKS 16777216u
/* The most hashes a MANIFEST carries inline (8 MiB), the chunk limit of the
 * protocol before chunk hashes could be asked for on demand: a peer without
 * PROTO_CAP_HASHES is never told of a layer longer than this. */
#define PROTO_INLINE_MAX 262144u
/* The automatic chunk size starts here and doubles while a file has more
 * chunks than PROTO_CHUNK_AUTO_COUNT, so manifests stay small; a file with
 * fewer than PROTO_CHUNK_AUTO_SPREAD chunks at it has it halved instead,
 * down to PROTO_CHUNK_MIN, so that a swarm passes the last chunks of a
 * small file on fast. */
#define PROTO_CHUNK_AUTO_MIN (256u << 10)
#define PROTO_CHUNK_AUTO_COUNT 16384u
#define PROTO_CHUNK_AUTO_SPREAD 64u

/* SHA-256 of len bytes at data into out (data borrowed for the call).
 * 0, PROTO_ERR_NOMEM or PROTO_ERR_CRYPTO (out then undefined). */
int proto_sha256(const void *data, size_t len, uint8_t out[PROTO_HASH_LEN]);

/* out = SHA-256(left || right); out may alias either input. Returns as
 * proto_sha256. */
int proto_hash_pair(const uint8_t left[PROTO_HASH_LEN],
    const uint8_t right[PROTO_HASH_LEN], uint8_t out[PROTO_HASH_LEN]);

/* Z(height): the node above 2^height zero leaves. 0; PROTO_ERR_INVALID
 * for height >= 64; as proto_sha256. */
int proto_hash_zero(unsigned height, uint8_t out[PROTO_HASH_LEN]);

/* Number of chunks of a file of size bytes at chunk_size (at least 1: the
 * empty file has one); 0 only for chunk_size 0. */
uint64_t proto_chunk_count(uint64_t size, size_t chunk_size);

/* Byte length of chunk index of a file of size bytes; 0 for an index past
 * the last chunk (and for the empty file's one chunk). */
size_t proto_chunk_len(uint64_t size, size_t chunk_size, uint64_t index);

/* 1 when chunk_size is a power of two from PROTO_CHUNK_MIN to
 * PROTO_CHUNK_MAX, else 0. */
int proto_chunk_size_allowed(size_t chunk_size);

/* 1 when chunk_size is valid for a file of size bytes (a power of two from
 * PROTO_CHUNK_MIN to PROTO_CHUNK_MAX, no wider than the tree, at most
 * PROTO_MAX_CHUNKS chunks), else 0. */
int proto_chunk_size_valid(uint64_t size, size_t chunk_size);

/* requested (a power of two from PROTO_CHUNK_MIN to PROTO_CHUNK_MAX) narrowed
 * to the width of the file's tree; 0 when the file would still have more than
 * PROTO_MAX_CHUNKS chunks. */
size_t proto_chunk_size_fit(uint64_t size, size_t requested);

/* The automatic chunk size for a file of size bytes; 0 when the file is too
 * large for any valid chunk size. */
size_t proto_chunk_size_auto(uint64_t size);

/* Chunk hash of a chunk of len bytes (len <= chunk_size; len 0 only for the
 * empty file's one chunk), padded with zero leaves to chunk_size; data is
 * borrowed for the call. 0; PROTO_ERR_INVALID for a chunk_size not
 * proto_chunk_size_allowed or len past it; PROTO_ERR_NOMEM;
 * PROTO_ERR_CRYPTO. */
int proto_hash_chunk(const void *data, size_t len, size_t chunk_size,
    uint8_t out[PROTO_HASH_LEN]);

/* The content id of a file of size bytes whose chunk layer at chunk_size is
 * the count hashes at layer (borrowed for the call). 0; PROTO_ERR_INVALID
 * when chunk_size is not proto_chunk_size_valid for size or count is not
 * proto_chunk_count(); PROTO_ERR_NOMEM; PROTO_ERR_CRYPTO. */
int proto_hash_content_id(const uint8_t *layer, uint64_t count,
    size_t chunk_size, uint64_t size, uint8_t id[PROTO_HASH_LEN]);

/* The same, giving the tree's root too (root may be NULL, id may be NULL):
 * what a manifest without its chunk layer carries. */
int proto_hash_root(const uint8_t *layer, uint64_t count, size_t chunk_size,
    uint64_t size, uint8_t root[PROTO_HASH_LEN], uint8_t id[PROTO_HASH_LEN]);

/* id = H(size_be64 || root), the content id of a file of size bytes whose
 * tree has root. Returns as proto_sha256. */
int proto_hash_id_of_root(uint64_t size, const uint8_t root[PROTO_HASH_LEN],
    uint8_t id[PROTO_HASH_LEN]);

/* Writes 2*n lowercase hex digits and a NUL to out, which the caller
 * sizes to 2*n + 1 bytes. */
void proto_hex_encode(const uint8_t *in, size_t n, char *out);

/* Reads 2*n hex digits (either case) at text into out (n bytes); text
 * need not end there. 0, or PROTO_ERR_MALFORMED at the first character
 * that is no hex digit (out then partly written; text is read no further). */
int proto_hex_decode(const char *text, uint8_t *out, size_t n);

/* Parses exactly 64 hex digits (either case), then the NUL, into id. 0 or
 * PROTO_ERR_MALFORMED (id then partly written). */
int proto_id_parse(const char *text, uint8_t id[PROTO_HASH_LEN]);

#endif
