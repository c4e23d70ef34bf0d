/*
 * Declarations shared between libproto's modules and not part of the public
 * API.
 */
#ifndef PROTO_INTERNAL_H
#define PROTO_INTERNAL_H

#include <msgpack.h>

#include "manifest.h"

/* Builds a manifest from an unpacked msgpack map, validating it fully. */
int manifest_from_object(const msgpack_object *obj, proto_manifest **out);

/* Appends mf as a map to pk. */
int manifest_pack_object(msgpack_packer *pk, const proto_manifest *mf,
    int with_path);

/* proto_open_beneath without openat2: one component at a time. Exposed for
 * the unit tests, since this kernel has openat2. */
int store_open_by_components(int root_fd, const char *rel);

#endif
