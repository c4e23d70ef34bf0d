/*
 * The two messages of chunk hashes on demand, GET_HASHES and HASHES
 * (docs/PROTOCOL.md section 4), packed and unpacked in msghashes.c for
 * msg.c, which calls them from its switches. Private to libproto.
 */
#ifndef PROTO_MSG_PRIVATE_H
#define PROTO_MSG_PRIVATE_H

#include <msgpack.h>

#include "msg.h"

/* Appends m, a GET_HASHES or a HASHES, to pk. 0; PROTO_ERR_TOO_BIG for
 * more than PROTO_HASHES_MAX hashes or PROTO_PROOF_MAX uncles;
 * PROTO_ERR_INVALID for another type. */
int proto__msg_pack_hashes(msgpack_packer *pk, const proto_msg *m);

/* Fills m (type and rid set) from the n elements at a, borrowing from
 * them. 0 or PROTO_ERR_MALFORMED. */
int proto__msg_unpack_hashes(const msgpack_object *a, uint32_t n,
    proto_msg *m);

#endif
