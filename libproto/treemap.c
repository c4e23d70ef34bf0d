/*
 * The tree manifest, the msgpack map that carries a tree's encoding
 * (docs/PROTOCOL.md section 10): what p2p-chunk --tree writes and a
 * MANIFEST holds for a tree id. The encoding travels as one bin, so a tree
 * of many files is a handful of msgpack objects, and its id is checked by
 * hashing those bytes before one entry of it is read.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "error.h"
#include "manifest.h"
#include "tree_private.h"

struct fields {
	const msgpack_object *v, *id, *name, *tree, *path;
};

static int
key_is(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	    memcmp(k->via.str.ptr, s, n) == 0;
}

int
proto__tree_is_manifest(const msgpack_object *obj)
{
	if (obj->type != MSGPACK_OBJECT_MAP)
		return 0;
	for (uint32_t i = 0; i < obj->via.map.size; i++)
		if (key_is(&obj->via.map.ptr[i].key, "tree"))
			return 1;
	return 0;
}

static int
find_fields(const msgpack_object *obj, struct fields *f)
{
	memset(f, 0, sizeof(*f));
	if (obj->type != MSGPACK_OBJECT_MAP)
		return PROTO_ERR_MALFORMED;
	for (uint32_t i = 0; i < obj->via.map.size; i++) {
		const msgpack_object *k = &obj->via.map.ptr[i].key;
		const msgpack_object *val = &obj->via.map.ptr[i].val;
		if (key_is(k, "v")) f->v = val;
		else if (key_is(k, "id")) f->id = val;
		else if (key_is(k, "name")) f->name = val;
		else if (key_is(k, "tree")) f->tree = val;
		else if (key_is(k, "path")) f->path = val;
	}
	if (!f->v || !f->id || !f->tree)
		return PROTO_ERR_MALFORMED;
	if (f->v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || f->v->via.u64 != 1)
		return PROTO_ERR_VERSION;
	if (f->id->type != MSGPACK_OBJECT_BIN ||
	    f->id->via.bin.size != PROTO_HASH_LEN ||
	    f->tree->type != MSGPACK_OBJECT_BIN)
		return PROTO_ERR_MALFORMED;
	if (f->tree->via.bin.size > PROTO_TREE_BYTES_MAX)
		return PROTO_ERR_TOO_BIG;
	return 0;
}

int
proto__tree_from_object(const msgpack_object *obj, proto_tree **out)
{
	uint8_t id[PROTO_HASH_LEN];
	proto_tree *t;
	struct fields f;
	int rc;

	*out = NULL;
	if ((rc = find_fields(obj, &f)) != 0)
		return rc;
	/* The id first, over the bytes as they came: a forged tree costs
	 * one hash, not a decoding. */
	{
		size_t n = PROTO_TREE_PREFIX_LEN + f.tree->via.bin.size;
		uint8_t *buf = malloc(n);
		if (buf == NULL)
			return PROTO_ERR_NOMEM;
		memcpy(buf, PROTO_TREE_PREFIX, PROTO_TREE_PREFIX_LEN);
		memcpy(buf + PROTO_TREE_PREFIX_LEN, f.tree->via.bin.ptr,
		    f.tree->via.bin.size);
		rc = proto_sha256(buf, n, id);
		free(buf);
		if (rc != 0)
			return rc;
	}
	if (memcmp(id, f.id->via.bin.ptr, PROTO_HASH_LEN) != 0)
		return PROTO_ERR_MISMATCH;
	if ((rc = proto_tree_decode((const uint8_t *)f.tree->via.bin.ptr,
	    f.tree->via.bin.size, &t)) != 0)
		return rc;
	/* Name and path are words, not part of the id: a bad one is
	 * dropped, not held against the tree. */
	if (f.name != NULL && f.name->type == MSGPACK_OBJECT_STR &&
	    proto_name_valid(f.name->via.str.ptr, f.name->via.str.size) &&
	    (t->name = strndup(f.name->via.str.ptr,
	    f.name->via.str.size)) == NULL)
		rc = PROTO_ERR_NOMEM;
	if (rc == 0 && f.path != NULL && f.path->type == MSGPACK_OBJECT_STR &&
	    f.path->via.str.size > 0 &&
	    !memchr(f.path->via.str.ptr, '\0', f.path->via.str.size) &&
	    (t->path = strndup(f.path->via.str.ptr,
	    f.path->via.str.size)) == NULL)
		rc = PROTO_ERR_NOMEM;
	if (rc != 0) {
		proto_tree_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

static void
pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

int
proto__tree_pack_object(msgpack_packer *pk, const proto_tree *t,
    int with_path)
{
	int path = with_path && t->path != NULL;

	if (!t->finished)
		return PROTO_ERR_INVALID;
	msgpack_pack_map(pk, 3 + (t->name != NULL) + path);
	pack_str(pk, "v");
	msgpack_pack_uint8(pk, 1);
	pack_str(pk, "id");
	msgpack_pack_bin(pk, PROTO_HASH_LEN);
	msgpack_pack_bin_body(pk, t->id, PROTO_HASH_LEN);
	if (t->name != NULL) {
		pack_str(pk, "name");
		pack_str(pk, t->name);
	}
	pack_str(pk, "tree");
	msgpack_pack_bin(pk, t->enc_len);
	msgpack_pack_bin_body(pk, t->enc, t->enc_len);
	if (path) {
		pack_str(pk, "path");
		pack_str(pk, t->path);
	}
	return 0;
}

int
proto_tree_pack(const proto_tree *t, int with_path, uint8_t **out,
    size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if ((rc = proto__tree_pack_object(&pk, t, with_path)) != 0) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	if (sb.data == NULL) {
		msgpack_sbuffer_destroy(&sb);
		return PROTO_ERR_NOMEM;
	}
	*out = (uint8_t *)sb.data;
	*len = sb.size;
	return 0;
}

long
proto_tree_unpack(const uint8_t *buf, size_t len, proto_tree **out)
{
	proto_check_limits lim;
	msgpack_unpacked up;
	size_t off = 0;
	long n;
	int rc;

	*out = NULL;
	proto_check_limits_init(&lim, PROTO_TREE_BYTES_MAX + 8192u);
	lim.max_objects = 64; /* a small map and one blob */
	if ((n = proto_check_msgpack(buf, len, &lim)) <= 0)
		return n;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (const char *)buf, (size_t)n, &off) !=
	    MSGPACK_UNPACK_SUCCESS || off != (size_t)n)
		rc = PROTO_ERR_MALFORMED;
	else
		rc = proto__tree_from_object(&up.data, out);
	msgpack_unpacked_destroy(&up);
	return rc != 0 ? rc : n;
}
