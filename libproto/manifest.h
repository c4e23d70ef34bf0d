/*
 * Manifests: what a fetcher needs to verify a file chunk by chunk
 * (docs/PROTOCOL.md section 2). Built from a file, packed to msgpack, and
 * unpacked from untrusted bytes with every bound checked first.
 */
#ifndef PROTO_MANIFEST_H
#define PROTO_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "have.h"

#define PROTO_NAME_MAX 255u
/* The largest packed manifest: the hashes and a little room for the rest.
 * Only a local one comes near it; one in a MANIFEST carries at most
 * PROTO_INLINE_MAX hashes. */
#define PROTO_MANIFEST_MAX (PROTO_MAX_CHUNKS * PROTO_HASH_LEN + 8192u)

/*
 * A manifest holds its chunk layer whole (chunks set, known NULL: what
 * p2p-chunk writes, and every manifest with "chunks"), or none of it
 * (chunks NULL: one that came with its root alone, "layer-less"), or, once
 * a fetcher opened it (proto_manifest_open_layer), the hashes verified so
 * far (chunks set, known saying which; known goes, NULL, once all are).
 */
typedef struct proto_manifest {
	uint8_t id[PROTO_HASH_LEN];
	char *name;          /* one path component, NUL-terminated */
	uint64_t size;
	uint32_t chunk_size;
	uint64_t nchunks;
	uint8_t *chunks;     /* nchunks * PROTO_HASH_LEN bytes, or NULL */
	proto_have *known;   /* NULL, or which hashes of chunks are there */
	uint8_t root[PROTO_HASH_LEN]; /* the tree's: id = H(size_be64 || root) */
	char *path;          /* local file, or NULL; never sent to peers */
} proto_manifest;

/* Frees mf and everything it owns; NULL does nothing. */
void proto_manifest_free(proto_manifest *mf);

/*
 * Reads fd to its end and builds the manifest of its bytes under name.
 * chunk_size 0 picks proto_chunk_size_auto() (fd must then be a regular
 * file, or a 256 KiB start is used); a chunk size wider than a short file is
 * narrowed to it. name and path (when not NULL) are copied into the
 * manifest; fd stays the caller's, read to its end. Returns 0 with *out
 * the caller's to free (proto_manifest_free); PROTO_ERR_INVALID for a name
 * not proto_name_valid or a chunk size not allowed; PROTO_ERR_TOO_BIG for
 * a file with more than PROTO_MAX_CHUNKS chunks; PROTO_ERR_SYSTEM with
 * errno set; PROTO_ERR_NOMEM; PROTO_ERR_CRYPTO. *out is NULL on failure.
 */
int proto_manifest_build_fd(int fd, const char *name, const char *path,
    size_t chunk_size, proto_manifest **out);

/* The same, calling fn(done, ctx) after each chunk with the bytes read so
 * far, for a progress report; fn may be NULL. */
typedef void (*proto_manifest_progress_fn)(uint64_t done, void *ctx);
int proto_manifest_build_fd_progress(int fd, const char *name,
    const char *path, size_t chunk_size, proto_manifest_progress_fn fn,
    void *ctx, proto_manifest **out);

/* Packs mf (only read) as one msgpack map into a malloc'd buffer the
 * caller frees; "path" is included only when with_path is set. A manifest
 * that holds its layer whole carries it ("chunks"), any other its root
 * ("root") in its place. 0, or PROTO_ERR_NOMEM with *out and *len
 * untouched. */
int proto_manifest_pack(const proto_manifest *mf, int with_path,
    uint8_t **out, size_t *len);

/*
 * Unpacks the manifest at the start of buf, of which len bytes are at hand.
 * Returns the bytes it took (> 0) and sets *out (the caller frees); 0 when
 * more bytes are needed; a negative PROTO_ERR_* when the bytes are not a
 * valid manifest, including one whose chunk hashes, or root, do not produce
 * its id (PROTO_ERR_MISMATCH). A manifest with its root and no "chunks"
 * unpacks layer-less (chunks NULL). Nothing is allocated before the bytes
 * are checked.
 */
long proto_manifest_unpack(const uint8_t *buf, size_t len,
    proto_manifest **out);

/* 0 when data is chunk index of mf, PROTO_ERR_MISMATCH when it is not,
 * PROTO_ERR_INVALID for an index or length that cannot be, or a chunk
 * whose hash mf does not hold yet. */
int proto_manifest_check_chunk(const proto_manifest *mf, uint64_t index,
    const void *data, size_t len);

/*
 * Carries mf's chunk layer, which it holds whole, up to chunk_size, a size
 * valid for the file and no smaller than mf's: each new chunk hash is the node above the old ones
 * it spans, the last padded as the tree is (so the id stays the same). A
 * fetcher uses it to fetch in chunks of its own choosing, whatever a peer
 * chunked with. 0; PROTO_ERR_INVALID for a size that cannot be (mf
 * unchanged); PROTO_ERR_NOMEM (mf unchanged).
 */
int proto_manifest_rechunk(proto_manifest *mf, size_t chunk_size);

/* 1 when mf holds its whole chunk layer (chunks set, known NULL). */
int proto_manifest_has_layer(const proto_manifest *mf);

/* 1 when mf holds the hash of chunk index, else 0. */
int proto_manifest_hash_known(const proto_manifest *mf, uint64_t index);

/*
 * Makes a layer-less mf (chunks NULL) ready to take its hashes at
 * chunk_size, any size valid for the file: chunk_size and nchunks set, the
 * layer allocated and none of it known. 0; PROTO_ERR_INVALID for a
 * manifest that has a layer or a size not valid (mf unchanged);
 * PROTO_ERR_NOMEM (mf unchanged).
 */
int proto_manifest_open_layer(proto_manifest *mf, size_t chunk_size);

/*
 * Takes the run (index, count) of mf's layer (docs/PROTOCOL.md section 1)
 * once it checks against mf's root (proto_run_verify): hashes holds its
 * nhashes real hashes, proof its nproof uncles, both borrowed. Once every
 * hash is known, known is freed and NULL. 0; PROTO_ERR_MISMATCH when the
 * run does not hash to the root; PROTO_ERR_INVALID for a run that is not
 * one, or mf not opened (proto_manifest_open_layer); as proto_sha256. mf
 * is unchanged on failure.
 */
int proto_manifest_add_run(proto_manifest *mf, uint64_t index, uint64_t count,
    const uint8_t *hashes, size_t nhashes, const uint8_t *proof,
    size_t nproof);

/* 1 when name is one acceptable path component (1..255 bytes, no '/', no
 * NUL, not "." or ".."), else 0. */
int proto_name_valid(const char *name, size_t len);

#endif
