/*
 * What msg.c shares with hello.c (the HELLO's options map) and
 * msghashes.c (GET_HASHES and HASHES, docs/PROTOCOL.md section 4): the
 * element readers, the options map's packer and reader, and the two
 * messages of chunk hashes on demand, which msg.c calls from its switches.
 * Private to libproto.
 */
#ifndef PROTO_MSG_PRIVATE_H
#define PROTO_MSG_PRIVATE_H

#include <msgpack.h>

#include "msg.h"

/* 0 with *out set when o is a uint <= max, else PROTO_ERR_MALFORMED. */
int proto__msg_get_uint(const msgpack_object *o, uint64_t max,
    uint64_t *out);

/* 0 with *p and *n set when o is a bin (bin 1) or str (bin 0) of min..max
 * bytes, else PROTO_ERR_MALFORMED. *p borrows from o. */
int proto__msg_get_raw(const msgpack_object *o, int bin, size_t min,
    size_t max, const uint8_t **p, size_t *n);

/* Appends opts as a map to pk, its keys in the order of PROTOCOL.md. 0, or
 * PROTO_ERR_INVALID for opts past their limits (nothing useful packed). */
int proto__hello_pack_opts(msgpack_packer *pk, const proto_hello_opts *opts);

/* Reads the options map o into opts (zeroed first), which borrows from o
 * and from zone. Keys unknown, of the wrong type or out of range are left
 * out; o not a map gives no options. 0, or PROTO_ERR_NOMEM. */
int proto__hello_unpack_opts(const msgpack_object *o, msgpack_zone *zone,
    proto_hello_opts *opts);
/* Appends m, a GET_HASHES or a HASHES, to pk. 0; PROTO_ERR_TOO_BIG for
 * more than PROTO_HASHES_MAX hashes or PROTO_PROOF_MAX uncles;
 * PROTO_ERR_INVALID for another type. */
int proto__msg_pack_hashes(msgpack_packer *pk, const proto_msg *m);

/* Fills m (type and rid set) from the n elements at a, borrowing from
 * them. 0 or PROTO_ERR_MALFORMED. */
int proto__msg_unpack_hashes(const msgpack_object *a, uint32_t n,
    proto_msg *m);


/* Appends m, a GET_FILES or a FILES, to pk. 0; PROTO_ERR_TOO_BIG past
 * PROTO_FILES_MAX entries or a file past PROTO_FILES_SIZE_MAX;
 * PROTO_ERR_INVALID for another type. */
int proto__msg_pack_files(msgpack_packer *pk, const proto_msg *m);

/* Fills m (type and rid set) from the n elements at a, borrowing from
 * them and from zone. 0, PROTO_ERR_MALFORMED or PROTO_ERR_NOMEM. */
int proto__msg_unpack_files(const msgpack_object *a, uint32_t n,
    msgpack_zone *zone, proto_msg *m);

#endif
