/*
 * A tree manifest as a msgpack object, for msg.c, which carries one in a
 * MANIFEST, and treemap.c. Private to libproto.
 */
#ifndef PROTO_TREE_PRIVATE_H
#define PROTO_TREE_PRIVATE_H

#include <msgpack.h>

#include "tree.h"

/* 1 when obj is a map with a "tree" key: a tree manifest, not a file's. */
int proto__tree_is_manifest(const msgpack_object *obj);

/* Builds a finished tree from a tree manifest map, validating it fully
 * ("tree" decoded, then its hash compared with "id": PROTO_ERR_MISMATCH).
 * *out is the caller's; NULL on failure. */
int proto__tree_from_object(const msgpack_object *obj, proto_tree **out);

/* Appends the finished t's manifest map to pk. 0 or PROTO_ERR_INVALID. */
int proto__tree_pack_object(msgpack_packer *pk, const proto_tree *t,
    int with_path);

#endif
