/*
 * A manifest as a msgpack object, for msg.c, which carries manifests inside
 * messages, and manifest.c. Private to libproto.
 */
#ifndef PROTO_MANIFEST_PRIVATE_H
#define PROTO_MANIFEST_PRIVATE_H

#include <msgpack.h>

#include "manifest.h"

/* Builds a manifest from an unpacked msgpack map, validating it fully: one
 * with more than max_inline hashes in "chunks" is PROTO_ERR_TOO_BIG. */
int proto__manifest_from_object(const msgpack_object *obj, uint64_t max_inline,
    proto_manifest **out);

/* Appends mf as a map to pk: its layer inline when it holds it whole
 * (proto_manifest_has_layer), else its root. */
int proto__manifest_pack_object(msgpack_packer *pk, const proto_manifest *mf,
    int with_path);

#endif
