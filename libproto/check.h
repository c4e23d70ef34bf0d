/*
 * A bounds checker for msgpack bytes from untrusted sources. msgpack-c's
 * unpacker reserves whatever element count a header declares, so every frame
 * and manifest is walked here first; only what passes is handed to msgpack-c.
 */
#ifndef PROTO_CHECK_H
#define PROTO_CHECK_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_CHECK_DEPTH 16
#define PROTO_CHECK_OBJECTS 65536

typedef struct proto_check_limits {
	size_t max_bytes;     /* the object may be at most this long */
	unsigned max_depth;   /* containers nested at most this deep */
	uint32_t max_objects; /* objects declared in all, at most */
} proto_check_limits;

/* Fills lim with max_bytes and the default depth and object limits. */
void proto_check_limits_init(proto_check_limits *lim, size_t max_bytes);

/*
 * Walks the one msgpack object that starts at buf, of which len bytes are
 * at hand. Returns its length (> 0) when it is complete within len bytes; 0
 * when more bytes are needed; PROTO_ERR_TOO_BIG when a length, count or depth
 * exceeds lim (including an object that cannot fit in lim->max_bytes);
 * PROTO_ERR_MALFORMED for the reserved byte 0xc1 and for ext types, which the
 * protocol does not use. Reads nothing past buf + len.
 */
long proto_check_msgpack(const uint8_t *buf, size_t len,
    const proto_check_limits *lim);

#endif
