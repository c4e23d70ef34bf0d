/*
 * Declarations shared between libproto's modules and not part of the public
 * API.
 */
#ifndef PROTO_INTERNAL_H
#define PROTO_INTERNAL_H

#include <msgpack.h>
#include <netinet/in.h>
#include <time.h>

#include "error.h"
#include "have.h"
#include "identity.h"
#include "log.h"
#include "manifest.h"

/* Builds a manifest from an unpacked msgpack map, validating it fully. */
int proto__manifest_from_object(const msgpack_object *obj,
    proto_manifest **out);

/* Appends mf as a map to pk. */
int proto__manifest_pack_object(msgpack_packer *pk, const proto_manifest *mf,
    int with_path);

/* proto_open_beneath without openat2: one component at a time. Exposed for
 * the unit tests, since this kernel has openat2. */
int proto__store_open_by_components(int root_fd, const char *rel);

/* The logging hook's levels per module (log.c), checked before any
 * formatting so that an unwanted trace costs one comparison. */
extern int proto__plog_levels[PROTO_LOG_MODULES];

void proto__plog_emit(int module, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define PLOG(module, level, ...) do { \
	if ((level) <= proto__plog_levels[module]) \
		proto__plog_emit((module), (level), __VA_ARGS__); \
} while (0)

#endif
