/*
 * Message encoding with msgpack-c's packer, decoding with its unpacker after
 * the frame has been bounds-checked, then a shape check of every element.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "frame.h"
#include "manifest_private.h"
#include "tree_private.h"
#include "msg_private.h"
#include "record.h"

void
proto_msg_init(proto_msg *m, unsigned type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

void
proto_msg_clear(proto_msg *m)
{
	proto_manifest_free(m->manifest);
	proto_tree_free(m->tree);
	if (m->zone_ != NULL)
		msgpack_zone_free(m->zone_);
	memset(m, 0, sizeof(*m));
}

const char *
proto_msg_type_name(unsigned type)
{
	static const char *names[] = { "HELLO", "ERROR", "LIST", "LIST_REPLY",
	    "GET_MANIFEST", "MANIFEST", "GET_CHUNK", "CHUNK", "PEERS",
	    "PEERS_REPLY", "HAS", "HAS_REPLY", "INTERESTED", "HAVE_MAP", "HAVE",
	    "CANCEL", "GET_HASHES", "HASHES", "CHOKE", "UNCHOKE", "GET_FILES",
	    "FILES" };

	return type < PROTO_MSG_TYPE_COUNT ? names[type] : "unknown";
}

static void
pack_bytes(msgpack_packer *pk, int bin, const void *p, size_t n)
{
	if (bin) {
		msgpack_pack_bin(pk, n);
		msgpack_pack_bin_body(pk, p, n);
	} else {
		msgpack_pack_str(pk, n);
		msgpack_pack_str_body(pk, p, n);
	}
}

static int
pack_body(msgpack_packer *pk, const proto_msg *m)
{
	switch (m->type) {
	case PROTO_MSG_HELLO: {
		int opts = !proto_hello_opts_empty(&m->opts);
		msgpack_pack_array(pk, opts ? 8 : m->auth != NULL ? 7 : 6);
		msgpack_pack_uint8(pk, PROTO_MSG_HELLO);
		msgpack_pack_uint32(pk, m->version);
		msgpack_pack_uint64(pk, m->caps);
		pack_bytes(pk, 0, m->text, m->text_len > PROTO_NODE_NAME_MAX ?
		    PROTO_NODE_NAME_MAX : m->text_len);
		msgpack_pack_uint16(pk, m->listen_port);
		msgpack_pack_uint64(pk, m->nfiles);
		if (m->auth != NULL)
			pack_bytes(pk, 1, m->auth, PROTO_AUTH_LEN);
		else if (opts)
			msgpack_pack_nil(pk);
		return opts ? proto__hello_pack_opts(pk, &m->opts) : 0;
	}
	case PROTO_MSG_ERROR:
		msgpack_pack_array(pk, 4);
		msgpack_pack_uint8(pk, PROTO_MSG_ERROR);
		msgpack_pack_uint32(pk, m->rid);
		msgpack_pack_uint32(pk, m->code);
		pack_bytes(pk, 0, m->text, m->text_len > PROTO_ERROR_TEXT_MAX ?
		    PROTO_ERROR_TEXT_MAX : m->text_len);
		return 0;
	/* PEERS: [8, rid], or [8, rid, id] asking about one file. */
	case PROTO_MSG_PEERS:
		msgpack_pack_array(pk, m->id != NULL ? 3 : 2);
		msgpack_pack_uint8(pk, PROTO_MSG_PEERS);
		msgpack_pack_uint32(pk, m->rid);
		if (m->id != NULL)
			pack_bytes(pk, 1, m->id, PROTO_HASH_LEN);
		return 0;
	/* Requests of a rid alone: [type, rid]. */
	case PROTO_MSG_LIST:
	case PROTO_MSG_CANCEL:
		msgpack_pack_array(pk, 2);
		msgpack_pack_uint8(pk, (uint8_t)m->type);
		msgpack_pack_uint32(pk, m->rid);
		return 0;
	case PROTO_MSG_LIST_REPLY:
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, PROTO_MSG_LIST_REPLY);
		msgpack_pack_uint32(pk, m->rid);
		msgpack_pack_array(pk, m->nentries);
		for (size_t i = 0; i < m->nentries; i++) {
			const proto_list_entry *e = &m->entries[i];
			msgpack_pack_array(pk, e->extended ? 5 : 3);
			pack_bytes(pk, 1, e->id, PROTO_HASH_LEN);
			msgpack_pack_uint64(pk, e->size);
			pack_bytes(pk, 0, e->name, e->name_len);
			if (!e->extended)
				continue;
			msgpack_pack_uint8(pk, e->kind == PROTO_LIST_TREE);
			if (e->kind == PROTO_LIST_TREE)
				msgpack_pack_uint64(pk, e->nfiles);
			else if (e->path != NULL)
				pack_bytes(pk, 0, e->path, e->path_len);
			else
				pack_bytes(pk, 0, e->name, e->name_len);
		}
		return 0;
	/* Requests about one file: [type, rid, id]. */
	case PROTO_MSG_GET_MANIFEST:
	case PROTO_MSG_HAS:
	case PROTO_MSG_INTERESTED:
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, (uint8_t)m->type);
		msgpack_pack_uint32(pk, m->rid);
		pack_bytes(pk, 1, m->id, PROTO_HASH_LEN);
		return 0;
	case PROTO_MSG_MANIFEST:
		if (m->manifest == NULL && m->tree == NULL)
			return PROTO_ERR_INVALID;
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, PROTO_MSG_MANIFEST);
		msgpack_pack_uint32(pk, m->rid);
		if (m->manifest == NULL)
			return proto__tree_pack_object(pk, m->tree, 0);
		return proto__manifest_pack_object(pk, m->manifest, 0);
	case PROTO_MSG_GET_CHUNK:
		msgpack_pack_array(pk, 5);
		msgpack_pack_uint8(pk, PROTO_MSG_GET_CHUNK);
		msgpack_pack_uint32(pk, m->rid);
		pack_bytes(pk, 1, m->id, PROTO_HASH_LEN);
		msgpack_pack_uint64(pk, m->index);
		msgpack_pack_uint32(pk, m->chunk_size);
		return 0;
	case PROTO_MSG_CHUNK:
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, PROTO_MSG_CHUNK);
		msgpack_pack_uint32(pk, m->rid);
		pack_bytes(pk, 1, m->data, m->data_len);
		return 0;
	case PROTO_MSG_PEERS_REPLY:
		if (m->npeers > PROTO_PEERS_MAX)
			return PROTO_ERR_TOO_BIG;
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, PROTO_MSG_PEERS_REPLY);
		msgpack_pack_uint32(pk, m->rid);
		msgpack_pack_array(pk, m->npeers);
		for (size_t i = 0; i < m->npeers; i++) {
			const proto_peer_entry *e = &m->peers[i];
			if (e->record != NULL &&
			    e->record_len > PROTO_RECORD_MAX)
				return PROTO_ERR_TOO_BIG;
			msgpack_pack_array(pk, e->record != NULL ? 3 : 2);
			pack_bytes(pk, 0, e->host, e->host_len);
			msgpack_pack_uint16(pk, e->port);
			if (e->record != NULL)
				pack_bytes(pk, 1, e->record, e->record_len);
		}
		return 0;
	case PROTO_MSG_HAS_REPLY:
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, PROTO_MSG_HAS_REPLY);
		msgpack_pack_uint32(pk, m->rid);
		if (m->has)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		return 0;
	case PROTO_MSG_HAVE_MAP:
		if (m->bits_len > PROTO_MAX_CHUNKS / 8)
			return PROTO_ERR_TOO_BIG;
		msgpack_pack_array(pk, 4);
		msgpack_pack_uint8(pk, PROTO_MSG_HAVE_MAP);
		msgpack_pack_uint32(pk, m->rid);
		msgpack_pack_uint32(pk, m->chunk_size);
		pack_bytes(pk, 1, m->bits, m->bits_len);
		return 0;
	/* Pushed, of nothing but their type: [18, 0], [19, 0]. */
	case PROTO_MSG_CHOKE:
	case PROTO_MSG_UNCHOKE:
		msgpack_pack_array(pk, 2);
		msgpack_pack_uint8(pk, (uint8_t)m->type);
		msgpack_pack_uint32(pk, 0);
		return 0;
	case PROTO_MSG_HAVE:
		msgpack_pack_array(pk, 4);
		msgpack_pack_uint8(pk, PROTO_MSG_HAVE);
		msgpack_pack_uint32(pk, 0);
		pack_bytes(pk, 1, m->id, PROTO_HASH_LEN);
		msgpack_pack_uint64(pk, m->index);
		return 0;
	case PROTO_MSG_GET_HASHES:
	case PROTO_MSG_HASHES:
		return proto__msg_pack_hashes(pk, m);
	case PROTO_MSG_GET_FILES:
	case PROTO_MSG_FILES:
		return proto__msg_pack_files(pk, m);
	}
	return PROTO_ERR_INVALID;
}

int
proto_msg_pack(const proto_msg *m, uint8_t **frame, size_t *len)
{
	static const uint8_t room[PROTO_FRAME_HEADER];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	/* Reserve the length prefix, filled in once the body's size is known. */
	if (msgpack_sbuffer_write(&sb, (const char *)room, sizeof(room)) != 0)
		rc = PROTO_ERR_NOMEM;
	else
		rc = pack_body(&pk, m);
	if (rc == 0 && sb.data == NULL)
		rc = PROTO_ERR_NOMEM;
	if (rc == 0 && sb.size - PROTO_FRAME_HEADER > PROTO_FRAME_MAX)
		rc = PROTO_ERR_TOO_BIG;
	if (rc != 0) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	proto_frame_put_len((uint8_t *)sb.data,
	    (uint32_t)(sb.size - PROTO_FRAME_HEADER));
	*frame = (uint8_t *)sb.data;
	*len = sb.size;
	return 0;
}

size_t
proto_msg_chunk_header(uint32_t rid, uint32_t data_len,
    uint8_t hdr[PROTO_CHUNK_HEADER_MAX])
{
	size_t n = PROTO_FRAME_HEADER;

	/* [7, rid, bin32]: rid in its shortest form, the bin always bin32 so
	 * the header's size does not depend on the data. */
	hdr[n++] = 0x93;
	hdr[n++] = PROTO_MSG_CHUNK;
	if (rid <= 0x7f) {
		hdr[n++] = (uint8_t)rid;
	} else if (rid <= 0xff) {
		hdr[n++] = 0xcc;
		hdr[n++] = (uint8_t)rid;
	} else if (rid <= 0xffff) {
		hdr[n++] = 0xcd;
		hdr[n++] = (uint8_t)(rid >> 8);
		hdr[n++] = (uint8_t)rid;
	} else {
		hdr[n++] = 0xce;
		for (int s = 24; s >= 0; s -= 8)
			hdr[n++] = (uint8_t)(rid >> s);
	}
	hdr[n++] = 0xc6;
	for (int s = 24; s >= 0; s -= 8)
		hdr[n++] = (uint8_t)(data_len >> s);
	proto_frame_put_len(hdr, (uint32_t)(n - PROTO_FRAME_HEADER + data_len));
	return n;
}

static int
get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return PROTO_ERR_MALFORMED;
	*out = o->via.u64;
	return 0;
}

static int
get_raw(const msgpack_object *o, int bin, size_t min, size_t max,
    const uint8_t **p, size_t *n)
{
	if (bin && o->type == MSGPACK_OBJECT_BIN) {
		*p = (const uint8_t *)o->via.bin.ptr;
		*n = o->via.bin.size;
	} else if (!bin && o->type == MSGPACK_OBJECT_STR) {
		*p = (const uint8_t *)o->via.str.ptr;
		*n = o->via.str.size;
	} else
		return PROTO_ERR_MALFORMED;
	return *n >= min && *n <= max ? 0 : PROTO_ERR_MALFORMED;
}

int
proto__msg_get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
	return get_uint(o, max, out);
}

int
proto__msg_get_raw(const msgpack_object *o, int bin, size_t min, size_t max,
    const uint8_t **p, size_t *n)
{
	return get_raw(o, bin, min, max, p, n);
}

static int
get_id(const msgpack_object *o, const uint8_t **id)
{
	size_t n;

	return get_raw(o, 1, PROTO_HASH_LEN, PROTO_HASH_LEN, id, &n);
}

/* The fourth and fifth elements of an entry, when both are there and
 * right; anything else reads as the three-element form. */
static void
unpack_list_more(const msgpack_object *e, proto_list_entry *out)
{
	const msgpack_object *a = e->via.array.ptr;
	const uint8_t *path;
	uint64_t kind;

	out->extended = 0;
	out->kind = PROTO_LIST_FILE;
	out->path = NULL;
	out->path_len = 0;
	out->nfiles = 0;
	if (e->via.array.size < 5 || get_uint(&a[3], 1, &kind) != 0)
		return;
	if (kind == PROTO_LIST_TREE) {
		if (get_uint(&a[4], UINT64_MAX, &out->nfiles) != 0)
			return;
	} else if (get_raw(&a[4], 0, 1, PROTO_TREE_PATH_MAX, &path,
	    &out->path_len) != 0 ||
	    !proto_tree_path_valid((const char *)path, out->path_len)) {
		out->path_len = 0;
		return;
	} else {
		out->path = (const char *)path;
	}
	out->kind = (unsigned)kind;
	out->extended = 1;
}

static int
unpack_list(const msgpack_object *o, msgpack_zone *zone, proto_msg *m)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return PROTO_ERR_MALFORMED;
	m->nentries = o->via.array.size;
	if (m->nentries == 0)
		return 0;
	/* The count is bounded by the frame check: at most 65536 objects. */
	m->entries = msgpack_zone_malloc(zone,
	    m->nentries * sizeof(*m->entries));
	if (m->entries == NULL)
		return PROTO_ERR_NOMEM;
	for (size_t i = 0; i < m->nentries; i++) {
		const msgpack_object *e = &o->via.array.ptr[i];
		proto_list_entry *out = &m->entries[i];
		const uint8_t *name;
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 3 ||
		    get_id(&e->via.array.ptr[0], &out->id) != 0 ||
		    get_uint(&e->via.array.ptr[1], UINT64_MAX,
		    &out->size) != 0 ||
		    get_raw(&e->via.array.ptr[2], 0, 1, PROTO_NAME_MAX, &name,
		    &out->name_len) != 0 ||
		    !proto_name_valid((const char *)name, out->name_len))
			return PROTO_ERR_MALFORMED;
		out->name = (const char *)name;
		unpack_list_more(e, out);
	}
	return 0;
}

static int
unpack_peers(const msgpack_object *o, msgpack_zone *zone, proto_msg *m)
{
	if (o->type != MSGPACK_OBJECT_ARRAY ||
	    o->via.array.size > PROTO_PEERS_MAX)
		return PROTO_ERR_MALFORMED;
	m->npeers = o->via.array.size;
	if (m->npeers == 0)
		return 0;
	m->peers = msgpack_zone_malloc(zone, m->npeers * sizeof(*m->peers));
	if (m->peers == NULL)
		return PROTO_ERR_NOMEM;
	for (size_t i = 0; i < m->npeers; i++) {
		const msgpack_object *e = &o->via.array.ptr[i];
		proto_peer_entry *out = &m->peers[i];
		const uint8_t *host;
		uint64_t port;
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2 ||
		    get_raw(&e->via.array.ptr[0], 0, 1, PROTO_HOST_MAX, &host,
		    &out->host_len) != 0 ||
		    get_uint(&e->via.array.ptr[1], UINT16_MAX, &port) != 0 ||
		    port == 0)
			return PROTO_ERR_MALFORMED;
		out->host = (const char *)host;
		out->port = (uint16_t)port;
		/* A third element that is no record leaves the entry
		 * unsigned: room for what comes later. */
		if (e->via.array.size < 3 || get_raw(&e->via.array.ptr[2], 1,
		    1, PROTO_RECORD_MAX, &out->record, &out->record_len) != 0) {
			out->record = NULL;
			out->record_len = 0;
		}
	}
	return 0;
}

static int
unpack_fields(const msgpack_object *a, uint32_t n, msgpack_zone *zone,
    proto_msg *m)
{
	const uint8_t *p;
	uint64_t v;
	int rc;

	switch (m->type) {
	case PROTO_MSG_HELLO:
		if (n < 5 || get_uint(&a[1], UINT32_MAX, &v) != 0)
			return PROTO_ERR_MALFORMED;
		m->version = (uint32_t)v;
		if (get_uint(&a[2], UINT64_MAX, &m->caps) != 0 ||
		    get_raw(&a[3], 0, 0, PROTO_NODE_NAME_MAX, &p,
		    &m->text_len) != 0 ||
		    get_uint(&a[4], UINT16_MAX, &v) != 0)
			return PROTO_ERR_MALFORMED;
		m->text = (const char *)p;
		m->listen_port = (uint16_t)v;
		/* nfiles came after version 1's first draft: tolerate its
		 * absence or another type there. */
		if (n >= 6 && get_uint(&a[5], UINT64_MAX, &m->nfiles) != 0)
			m->nfiles = 0;
		/* auth: only in private swarms; anything else there (nil
		 * before the options) is no proof, and the receiver that
		 * wants one says so. */
		if (n >= 7 && get_raw(&a[6], 1, PROTO_AUTH_LEN, PROTO_AUTH_LEN,
		    &p, &(size_t){ 0 }) == 0)
			m->auth = p;
		if (n >= 8 &&
		    (rc = proto__hello_unpack_opts(&a[7], zone, &m->opts)) != 0)
			return rc;
		/* A lowest version above the highest says nothing. */
		if ((m->opts.has & PROTO_OPT_VMIN) && m->opts.vmin > m->version)
			m->opts.has &= ~PROTO_OPT_VMIN;
		return 0;
	case PROTO_MSG_ERROR:
		if (n < 4 || get_uint(&a[2], UINT32_MAX, &v) != 0 ||
		    get_raw(&a[3], 0, 0, PROTO_ERROR_TEXT_MAX, &p,
		    &m->text_len) != 0)
			return PROTO_ERR_MALFORMED;
		m->code = (uint32_t)v;
		m->text = (const char *)p;
		return 0;
	case PROTO_MSG_LIST:
		return 0;
	case PROTO_MSG_LIST_REPLY:
		return n < 3 ? PROTO_ERR_MALFORMED : unpack_list(&a[2], zone, m);
	case PROTO_MSG_GET_MANIFEST:
		return n < 3 ? PROTO_ERR_MALFORMED : get_id(&a[2], &m->id);
	case PROTO_MSG_MANIFEST:
		if (n >= 3 && proto__tree_is_manifest(&a[2]))
			return proto__tree_from_object(&a[2], &m->tree);
		return n < 3 ? PROTO_ERR_MALFORMED :
		    proto__manifest_from_object(&a[2], PROTO_INLINE_MAX,
		    &m->manifest);
	case PROTO_MSG_GET_CHUNK:
		if (n < 5 || get_id(&a[2], &m->id) != 0 ||
		    get_uint(&a[3], UINT64_MAX, &m->index) != 0 ||
		    get_uint(&a[4], PROTO_CHUNK_MAX, &v) != 0)
			return PROTO_ERR_MALFORMED;
		m->chunk_size = (uint32_t)v;
		return 0;
	case PROTO_MSG_CHUNK:
		return n < 3 ? PROTO_ERR_MALFORMED :
		    get_raw(&a[2], 1, 0, PROTO_CHUNK_MAX, &m->data,
		    &m->data_len);
	case PROTO_MSG_PEERS:
		/* The id came later: absent or nil, all peers are asked
		 * for. */
		if (n < 3 || a[2].type == MSGPACK_OBJECT_NIL)
			return 0;
		return get_id(&a[2], &m->id);
	case PROTO_MSG_PEERS_REPLY:
		return n < 3 ? PROTO_ERR_MALFORMED : unpack_peers(&a[2], zone, m);
	case PROTO_MSG_HAS:
		return n < 3 ? PROTO_ERR_MALFORMED : get_id(&a[2], &m->id);
	case PROTO_MSG_HAS_REPLY:
		if (n < 3 || a[2].type != MSGPACK_OBJECT_BOOLEAN)
			return PROTO_ERR_MALFORMED;
		m->has = a[2].via.boolean;
		return 0;
	case PROTO_MSG_INTERESTED:
		return n < 3 ? PROTO_ERR_MALFORMED : get_id(&a[2], &m->id);
	case PROTO_MSG_HAVE_MAP:
		if (n < 4 || get_uint(&a[2], PROTO_CHUNK_MAX, &v) != 0 ||
		    !proto_chunk_size_allowed((uint32_t)v) ||
		    get_raw(&a[3], 1, 0, PROTO_MAX_CHUNKS / 8, &m->bits,
		    &m->bits_len) != 0)
			return PROTO_ERR_MALFORMED;
		m->chunk_size = (uint32_t)v;
		return 0;
	case PROTO_MSG_HAVE:
		return n < 4 || get_id(&a[2], &m->id) != 0 ||
		    get_uint(&a[3], PROTO_MAX_CHUNKS - 1, &m->index) != 0 ?
		    PROTO_ERR_MALFORMED : 0;
	case PROTO_MSG_CANCEL:
		return 0;
	case PROTO_MSG_CHOKE:
	case PROTO_MSG_UNCHOKE:
		/* Pushed only: one that asks for an answer is no CHOKE. */
		return m->rid != 0 ? PROTO_ERR_MALFORMED : 0;
	case PROTO_MSG_GET_HASHES:
	case PROTO_MSG_HASHES:
		return proto__msg_unpack_hashes(a, n, m);
	case PROTO_MSG_GET_FILES:
	case PROTO_MSG_FILES:
		return proto__msg_unpack_files(a, n, zone, m);
	}
	return 0; /* unknown type: the caller answers it */
}

int
proto_msg_unpack(const uint8_t *body, size_t len, proto_msg *m)
{
	msgpack_zone *zone;
	msgpack_object obj;
	const msgpack_object *a;
	uint64_t v;
	size_t off = 0;
	int rc;

	proto_msg_init(m, 0);
	if ((zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE)) == NULL)
		return PROTO_ERR_NOMEM;
	if (msgpack_unpack((const char *)body, len, &off, zone, &obj) !=
	    MSGPACK_UNPACK_SUCCESS || off != len ||
	    obj.type != MSGPACK_OBJECT_ARRAY || obj.via.array.size < 1) {
		msgpack_zone_free(zone);
		return PROTO_ERR_MALFORMED;
	}
	a = obj.via.array.ptr;
	if (get_uint(&a[0], UINT32_MAX, &v) != 0) {
		msgpack_zone_free(zone);
		return PROTO_ERR_MALFORMED;
	}
	m->type = (unsigned)v;
	/* Every type but HELLO carries a request id second. */
	if (m->type != PROTO_MSG_HELLO && obj.via.array.size >= 2) {
		if (get_uint(&a[1], UINT32_MAX, &v) != 0) {
			msgpack_zone_free(zone);
			return PROTO_ERR_MALFORMED;
		}
		m->rid = (uint32_t)v;
	} else if (m->type != PROTO_MSG_HELLO) {
		msgpack_zone_free(zone);
		return PROTO_ERR_MALFORMED;
	}
	if ((rc = unpack_fields(a, obj.via.array.size, zone, m)) != 0) {
		proto_manifest_free(m->manifest);
		proto_tree_free(m->tree);
		msgpack_zone_free(zone);
		proto_msg_init(m, 0);
		return rc;
	}
	m->zone_ = zone;
	return 0;
}

void
proto_msg_printable(char *out, size_t outlen, const char *text, size_t len)
{
	size_t j = 0;

	for (size_t i = 0; i < len && j + 1 < outlen; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == 0xc2 && i + 1 < len &&
		    (unsigned char)text[i + 1] >= 0x80 &&
		    (unsigned char)text[i + 1] <= 0x9f) {
			out[j++] = '?';
			i++;
		} else
			out[j++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[j] = '\0';
}
