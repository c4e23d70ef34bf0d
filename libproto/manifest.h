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

#define PROTO_NAME_MAX 255u
/* The largest packed manifest: the hashes and a little room for the rest. */
#define PROTO_MANIFEST_MAX (PROTO_MAX_CHUNKS * PROTO_HASH_LEN + 8192u)

typedef struct proto_manifest {
	uint8_t id[PROTO_HASH_LEN];
	char *name;          /* one path component, NUL-terminated */
	uint64_t size;
	uint32_t chunk_size;
	uint64_t nchunks;
	uint8_t *chunks;     /* nchunks * PROTO_HASH_LEN bytes */
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
 * caller frees; "path" is included only when with_path is set. 0, or
 * PROTO_ERR_NOMEM with *out and *len untouched. */
int proto_manifest_pack(const proto_manifest *mf, int with_path,
    uint8_t **out, size_t *len);

/*
 * Unpacks the manifest at the start of buf, of which len bytes are at hand.
 * Returns the bytes it took (> 0) and sets *out (the caller frees); 0 when
 * more bytes are needed; a negative PROTO_ERR_* when the bytes are not a
 * valid manifest, including one whose chunk hashes do not produce its id
 * (PROTO_ERR_MISMATCH). Nothing is allocated before the bytes are checked.
 */
long proto_manifest_unpack(const uint8_t *buf, size_t len,
    proto_manifest **out);

/* 0 when data is chunk index of mf, PROTO_ERR_MISMATCH when it is not,
 * PROTO_ERR_INVALID for an index or length that cannot be. */
int proto_manifest_check_chunk(const proto_manifest *mf, uint64_t index,
    const void *data, size_t len);

/*
 * Carries mf's chunk layer up to chunk_size, a size valid for the file and
 * no smaller than mf's: each new chunk hash is the node above the old ones
 * it spans, the last padded as the tree is (so the id stays the same). A
 * fetcher uses it to fetch in chunks of its own choosing, whatever a peer
 * chunked with. 0; PROTO_ERR_INVALID for a size that cannot be (mf
 * unchanged); PROTO_ERR_NOMEM (mf unchanged).
 */
int proto_manifest_rechunk(proto_manifest *mf, size_t chunk_size);

/* 1 when name is one acceptable path component (1..255 bytes, no '/', no
 * NUL, not "." or ".."), else 0. */
int proto_name_valid(const char *name, size_t len);

#endif
