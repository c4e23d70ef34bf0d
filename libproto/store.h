/*
 * The set of files a node shares, by content id: their manifests and, for
 * serving, their open descriptors.
 */
#ifndef PROTO_STORE_H
#define PROTO_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "manifest.h"

typedef struct proto_store proto_store;

/* A new empty store, or NULL when out of memory. */
proto_store *proto_store_new(void);

/* Frees the store, its manifests, and closes its descriptors. NULL does
 * nothing. */
void proto_store_free(proto_store *st);

/* Adds mf, which must have a path, taking ownership of it in every case.
 * Returns 0, 1 when the id was already there (mf is freed, the first one
 * kept), or PROTO_ERR_NOMEM. */
int proto_store_add(proto_store *st, proto_manifest *mf);

/* The manifest for id, or NULL. Borrowed: valid while the store is. */
const proto_manifest *proto_store_find(const proto_store *st,
    const uint8_t id[PROTO_HASH_LEN]);

/* The number of files, and the i-th in the order they were added. */
size_t proto_store_count(const proto_store *st);
const proto_manifest *proto_store_get(const proto_store *st, size_t i);

/*
 * A read-only descriptor of the file of id, opened on first use and kept;
 * the store closes it. Fails with PROTO_ERR_SYSTEM (errno set) when the file
 * cannot be opened, and PROTO_ERR_MISMATCH when its size is no longer the
 * manifest's (it changed on disk since it was chunked).
 */
int proto_store_open(proto_store *st, const uint8_t id[PROTO_HASH_LEN],
    int *fd);

#endif
