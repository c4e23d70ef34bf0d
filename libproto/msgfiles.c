/*
 * GET_FILES [20, rid, [id, ...]] and FILES [21, rid, [data or nil, ...]]
 * (docs/PROTOCOL.md section 4): their shapes only. Whether the bytes are
 * the files asked for is the asker's to check, by their ids.
 */
#include <string.h>

#include "error.h"
#include "msg_private.h"

int
proto__msg_pack_files(msgpack_packer *pk, const proto_msg *m)
{
	switch (m->type) {
	case PROTO_MSG_GET_FILES:
		if (m->nids > PROTO_FILES_MAX)
			return PROTO_ERR_TOO_BIG;
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, PROTO_MSG_GET_FILES);
		msgpack_pack_uint32(pk, m->rid);
		msgpack_pack_array(pk, m->nids);
		for (size_t i = 0; i < m->nids; i++) {
			msgpack_pack_bin(pk, PROTO_HASH_LEN);
			msgpack_pack_bin_body(pk, m->ids + i * PROTO_HASH_LEN,
			    PROTO_HASH_LEN);
		}
		return 0;
	case PROTO_MSG_FILES:
		if (m->nfiles_in > PROTO_FILES_MAX)
			return PROTO_ERR_TOO_BIG;
		for (size_t i = 0; i < m->nfiles_in; i++)
			if (m->files[i].held &&
			    m->files[i].len > PROTO_FILES_SIZE_MAX)
				return PROTO_ERR_TOO_BIG;
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, PROTO_MSG_FILES);
		msgpack_pack_uint32(pk, m->rid);
		msgpack_pack_array(pk, m->nfiles_in);
		for (size_t i = 0; i < m->nfiles_in; i++) {
			if (!m->files[i].held) {
				msgpack_pack_nil(pk);
				continue;
			}
			msgpack_pack_bin(pk, m->files[i].len);
			msgpack_pack_bin_body(pk, m->files[i].data,
			    m->files[i].len);
		}
		return 0;
	}
	return PROTO_ERR_INVALID;
}

/* GET_FILES: a list too long, or an id that is not one, is the
 * responder's to refuse (BAD_REQUEST), as a request it cannot answer; only
 * a list that is no array is malformed. */
static int
unpack_ids(const msgpack_object *o, msgpack_zone *zone, proto_msg *m)
{
	const msgpack_object *e = o->via.array.ptr;
	uint8_t *ids;

	if (o->via.array.size > PROTO_FILES_MAX) {
		m->ids_bad = 1;
		return 0;
	}
	for (uint32_t i = 0; i < o->via.array.size; i++)
		if (e[i].type != MSGPACK_OBJECT_BIN ||
		    e[i].via.bin.size != PROTO_HASH_LEN) {
			m->ids_bad = 1;
			return 0;
		}
	/* One byte at least: an empty list is a list, not ids_bad. */
	if ((ids = msgpack_zone_malloc(zone, o->via.array.size *
	    PROTO_HASH_LEN + 1)) == NULL)
		return PROTO_ERR_NOMEM;
	for (uint32_t i = 0; i < o->via.array.size; i++)
		memcpy(ids + i * PROTO_HASH_LEN, e[i].via.bin.ptr,
		    PROTO_HASH_LEN);
	m->ids = ids;
	m->nids = o->via.array.size;
	return 0;
}

static int
unpack_data(const msgpack_object *o, msgpack_zone *zone, proto_msg *m)
{
	const msgpack_object *e = o->via.array.ptr;
	proto_file_data *files;

	if (o->via.array.size > PROTO_FILES_MAX)
		return PROTO_ERR_MALFORMED;
	if ((files = msgpack_zone_malloc(zone, (o->via.array.size + 1) *
	    sizeof(*files))) == NULL)
		return PROTO_ERR_NOMEM;
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		memset(&files[i], 0, sizeof(files[i]));
		if (e[i].type == MSGPACK_OBJECT_NIL)
			continue;
		if (e[i].type != MSGPACK_OBJECT_BIN ||
		    e[i].via.bin.size > PROTO_FILES_SIZE_MAX)
			return PROTO_ERR_MALFORMED;
		files[i].held = 1;
		files[i].data = (const uint8_t *)e[i].via.bin.ptr;
		files[i].len = e[i].via.bin.size;
	}
	m->files = files;
	m->nfiles_in = o->via.array.size;
	return 0;
}

int
proto__msg_unpack_files(const msgpack_object *a, uint32_t n,
    msgpack_zone *zone, proto_msg *m)
{
	if (n < 3 || a[2].type != MSGPACK_OBJECT_ARRAY)
		return PROTO_ERR_MALFORMED;
	return m->type == PROTO_MSG_GET_FILES ? unpack_ids(&a[2], zone, m) :
	    unpack_data(&a[2], zone, m);
}
