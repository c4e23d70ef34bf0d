/*
 * GET_HASHES [16, rid, id, chunk_size, index, count, proof_layers] and
 * HASHES [17, rid, hashes, proof]: their shapes only. Whether a run is
 * one, and whether it hashes to the root, is merkle.c's.
 */
#include "error.h"
#include "merkle.h"
#include "msg_private.h"

int
proto__msg_pack_hashes(msgpack_packer *pk, const proto_msg *m)
{
	switch (m->type) {
	case PROTO_MSG_GET_HASHES:
		msgpack_pack_array(pk, 7);
		msgpack_pack_uint8(pk, PROTO_MSG_GET_HASHES);
		msgpack_pack_uint32(pk, m->rid);
		msgpack_pack_bin(pk, PROTO_HASH_LEN);
		msgpack_pack_bin_body(pk, m->id, PROTO_HASH_LEN);
		msgpack_pack_uint32(pk, m->chunk_size);
		msgpack_pack_uint64(pk, m->index);
		msgpack_pack_uint32(pk, m->count);
		msgpack_pack_uint32(pk, m->proof_layers);
		return 0;
	case PROTO_MSG_HASHES:
		if (m->nhashes > PROTO_HASHES_MAX || m->nproof > PROTO_PROOF_MAX)
			return PROTO_ERR_TOO_BIG;
		msgpack_pack_array(pk, 4);
		msgpack_pack_uint8(pk, PROTO_MSG_HASHES);
		msgpack_pack_uint32(pk, m->rid);
		msgpack_pack_bin(pk, m->nhashes * PROTO_HASH_LEN);
		msgpack_pack_bin_body(pk, m->hashes, m->nhashes * PROTO_HASH_LEN);
		msgpack_pack_bin(pk, m->nproof * PROTO_HASH_LEN);
		msgpack_pack_bin_body(pk, m->proof, m->nproof * PROTO_HASH_LEN);
		return 0;
	}
	return PROTO_ERR_INVALID;
}

static int
get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return PROTO_ERR_MALFORMED;
	*out = o->via.u64;
	return 0;
}

/* A bin of whole hashes, from min to max of them. */
static int
get_hashes(const msgpack_object *o, size_t min, size_t max,
    const uint8_t **p, size_t *n)
{
	if (o->type != MSGPACK_OBJECT_BIN ||
	    o->via.bin.size % PROTO_HASH_LEN != 0 ||
	    o->via.bin.size / PROTO_HASH_LEN < min ||
	    o->via.bin.size / PROTO_HASH_LEN > max)
		return PROTO_ERR_MALFORMED;
	*p = (const uint8_t *)o->via.bin.ptr;
	*n = o->via.bin.size / PROTO_HASH_LEN;
	return 0;
}

int
proto__msg_unpack_hashes(const msgpack_object *a, uint32_t n, proto_msg *m)
{
	uint64_t cs, count, layers = UINT32_MAX;
	size_t idlen;

	if (m->type == PROTO_MSG_HASHES)
		return n < 4 ||
		    get_hashes(&a[2], 1, PROTO_HASHES_MAX, &m->hashes,
		    &m->nhashes) != 0 ||
		    get_hashes(&a[3], 0, PROTO_PROOF_MAX, &m->proof,
		    &m->nproof) != 0 ? PROTO_ERR_MALFORMED : 0;
	/* GET_HASHES: what the numbers mean is the responder's to judge
	 * (BAD_REQUEST); only their types and widths are checked here. */
	if (n < 6 || get_hashes(&a[2], 1, 1, &m->id, &idlen) != 0 ||
	    get_uint(&a[3], PROTO_CHUNK_MAX, &cs) != 0 ||
	    get_uint(&a[4], UINT64_MAX, &m->index) != 0 ||
	    get_uint(&a[5], UINT32_MAX, &count) != 0 ||
	    (n >= 7 && get_uint(&a[6], UINT32_MAX, &layers) != 0))
		return PROTO_ERR_MALFORMED;
	m->chunk_size = (uint32_t)cs;
	m->count = (uint32_t)count;
	m->proof_layers = (uint32_t)layers;
	return 0;
}
