/*
 * The set of files a node shares, by content id: their manifests and, for
 * serving, their open descriptors.
 */
#ifndef PROTO_STORE_H
#define PROTO_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "have.h"
#include "manifest.h"
#include "tree.h"

typedef struct proto_store proto_store;

/* A new empty store, or NULL when out of memory; the caller frees it with
 * proto_store_free. */
proto_store *proto_store_new(void);

/* Frees the store, its manifests, and closes its descriptors. NULL does
 * nothing. */
void proto_store_free(proto_store *st);

/* Adds mf, which must have a path and its whole chunk layer, taking
 * ownership of it in every case. Nothing vouches that the path holds the
 * bytes mf describes, so each chunk of it is hashed the first time it is
 * served (proto_store_check). Returns 0, 1 when the id was already there
 * (mf is freed, the first one kept), PROTO_ERR_INVALID for a manifest
 * without its layer (proto_manifest_has_layer; freed), or
 * PROTO_ERR_NOMEM. */
int proto_store_add(proto_store *st, proto_manifest *mf);

/*
 * Adds mf (taking it in every case), chunked by the caller from the file
 * rel beneath the directory root_fd, whose st_dev and st_ino were dev and
 * ino (ino 0: not checked). root_fd stays the caller's and open while the
 * store is: the file is opened, when first served, only beneath that
 * directory and through no link, whatever happens to the tree meanwhile,
 * and served only when it is still that file. Its bytes are trusted as
 * chunked. Returns as proto_store_add (mf must have its layer).
 */
int proto_store_add_beneath(proto_store *st, proto_manifest *mf, int root_fd,
    const char *rel, uint64_t dev, uint64_t ino);

/* Opens rel read-only and without blocking (O_NONBLOCK: a FIFO does not
 * wait for a writer) beneath the directory root_fd, refusing "..", an
 * absolute path and any link on the way (openat2 RESOLVE_BENEATH and
 * RESOLVE_NO_SYMLINKS, or one component at a time on older kernels).
 * A descriptor, or PROTO_ERR_SYSTEM with errno set (EXDEV, ELOOP: it would
 * leave). */
int proto_open_beneath(int root_fd, const char *rel);

/*
 * Adds a file still being fetched: mf, fd (readable) and have (in
 * mf->chunk_size units) stay the caller's and must outlive the entry;
 * chunks are served only where have says so. Returns 0, 1 when the id was
 * already there, or PROTO_ERR_NOMEM; mf, fd and have stay the caller's
 * whatever it returns.
 */
int proto_store_add_partial(proto_store *st, proto_manifest *mf, int fd,
    const proto_have *have);

/* Replaces what the store knows id holds; NULL: the whole file. have is
 * borrowed and must outlive the entry (or the next call). An unknown id is
 * ignored. */
void proto_store_set_have(proto_store *st, const uint8_t id[PROTO_HASH_LEN],
    const proto_have *have);

/* What the node holds of id: NULL for a whole file (or an unknown id).
 * Borrowed from whoever set it (proto_store_add_partial, _set_have). */
const proto_have *proto_store_have(const proto_store *st,
    const uint8_t id[PROTO_HASH_LEN]);

/* 1 when every byte of chunk index, in chunks of chunk_size, is held; 0
 * otherwise, and for an unknown id. */
int proto_store_holds(const proto_store *st, const uint8_t id[PROTO_HASH_LEN],
    uint32_t chunk_size, uint64_t index);

/* The manifest for id, or NULL. Borrowed: valid while the store is. */
const proto_manifest *proto_store_find(const proto_store *st,
    const uint8_t id[PROTO_HASH_LEN]);

/* The number of files, and the i-th in the order they were added (NULL for
 * i past the count; borrowed, valid while the store is). */
size_t proto_store_count(const proto_store *st);
const proto_manifest *proto_store_get(const proto_store *st, size_t i);

/* The path of file i beneath its directory (proto_store_add_beneath), or
 * NULL (added otherwise, or i past the count). Borrowed, as the manifest. */
const char *proto_store_rel(const proto_store *st, size_t i);

/*
 * Adds the finished tree t (docs/PROTOCOL.md section 10), taking it in
 * every case: a node that holds it answers GET_MANIFEST and HAS for its
 * id. Its files are added on their own (proto_store_add_beneath). 0; 1
 * when the id was there already (t freed); PROTO_ERR_INVALID for a tree
 * not finished; PROTO_ERR_NOMEM.
 */
int proto_store_add_tree(proto_store *st, proto_tree *t);

/* The tree of id, or NULL; borrowed, valid while the store is. */
const proto_tree *proto_store_find_tree(const proto_store *st,
    const uint8_t id[PROTO_HASH_LEN]);

/* How many withdrawn ids a store remembers. */
#define PROTO_STORE_GONE_MAX 256

/*
 * Withdraws the file or tree of id, one the owner added whole (not a
 * fetch's): freed, and its id remembered as withdrawn (the last
 * PROTO_STORE_GONE_MAX of them). Every manifest, tree and path the store
 * lent is invalid after it; the order of proto_store_get shifts. 0, or
 * PROTO_ERR_INVALID for an id not held or a fetch's.
 */
int proto_store_remove(proto_store *st, const uint8_t id[PROTO_HASH_LEN]);

/* 1 when id was withdrawn (proto_store_remove) and is among the last
 * PROTO_STORE_GONE_MAX so; 0 otherwise. Added again, it is found as
 * before: ask proto_store_find first. */
int proto_store_withdrawn(const proto_store *st,
    const uint8_t id[PROTO_HASH_LEN]);

/* The number of trees, and the i-th in the order added (NULL past it). */
size_t proto_store_tree_count(const proto_store *st);
const proto_tree *proto_store_get_tree(const proto_store *st, size_t i);

/*
 * A read-only descriptor of the file of id into *fd, opened on first use
 * (without blocking) and kept; the store closes it, so the caller must not.
 * Returns 0; PROTO_ERR_INVALID for an unknown id; PROTO_ERR_SYSTEM
 * (errno set) when the file cannot be opened, and PROTO_ERR_MISMATCH when it
 * is not a regular file, not the file that was chunked (add_beneath), its
 * size is no longer the manifest's, or a chunk did not match before: it
 * changed on disk since it was chunked, or never held those bytes.
 */
int proto_store_open(proto_store *st, const uint8_t id[PROTO_HASH_LEN],
    int *fd);

/*
 * Before bytes off..off+len of id go out (after proto_store_open): for a
 * file added with proto_store_add, hashes each manifest chunk they touch
 * that was not hashed before, and remembers those that matched. 0 when
 * they may be served; PROTO_ERR_MISMATCH when a chunk does not match (the
 * file is then never served again) or the file is shorter than the
 * manifest; PROTO_ERR_SYSTEM (errno set) or PROTO_ERR_NOMEM;
 * PROTO_ERR_INVALID for an unknown id or one not opened. A file that
 * changes after its chunks were checked is not checked again: the
 * fetcher's own check catches that.
 */
int proto_store_check(proto_store *st, const uint8_t id[PROTO_HASH_LEN],
    uint64_t off, size_t len);

/*
 * The run (index, count) of id's chunk layer at chunk_size, and its lowest
 * proof_layers uncles (docs/PROTOCOL.md section 1), as proto_merkle_run
 * writes them into the caller's hashes and proof. The tree above the layer
 * is built the first time (about as many hashes as the layer has) and
 * kept. 0; PROTO_ERR_INVALID for an unknown id, a file whose layer is not
 * whole here yet, a chunk size finer than the manifest's or a run that is
 * not one; PROTO_ERR_NOMEM; PROTO_ERR_CRYPTO.
 */
int proto_store_hashes(proto_store *st, const uint8_t id[PROTO_HASH_LEN],
    uint32_t chunk_size, uint64_t index, uint32_t count,
    uint32_t proof_layers, uint8_t *hashes, size_t *nhashes, uint8_t *proof,
    size_t *nproof);

#endif
