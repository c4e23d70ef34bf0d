/*
 * Building, packing and unpacking manifests. Unpacking is the hostile path:
 * check.c bounds the bytes, msgpack-c decodes them, and then every field is
 * validated and the chunk layer is hashed up to the id it claims.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "manifest_private.h"
#include "manifest.h"
#include "merkle.h"

void
proto_manifest_free(proto_manifest *mf)
{
	if (mf == NULL)
		return;
	free(mf->name);
	free(mf->chunks);
	if (mf->known != NULL)
		proto_have_free(mf->known);
	free(mf->known);
	free(mf->path);
	free(mf);
}

int
proto_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > PROTO_NAME_MAX || memchr(name, '/', len) ||
	    memchr(name, '\0', len))
		return 0;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	return 1;
}

/* Reads up to len bytes at off: pread for files, read for pipes. Returns
 * the bytes read, short only at end of input, or -1. */
static ssize_t
read_full(int fd, int seekable, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = seekable ?
		    pread(fd, (char *)buf + got, len - got, (off_t)(off + got)) :
		    read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* 1 when [off, off+len) of fd lies in a hole, so reads as zeros. */
static int
in_hole(int fd, uint64_t off, size_t len)
{
	off_t data = lseek(fd, (off_t)off, SEEK_DATA);

	if (data < 0)
		return errno == ENXIO; /* no data at or after off */
	return (uint64_t)data >= off + len;
}

struct layer {
	uint8_t *hashes;
	uint64_t count, cap;
};

static int
layer_push(struct layer *l, const uint8_t hash[PROTO_HASH_LEN])
{
	if (l->count == PROTO_MAX_CHUNKS)
		return PROTO_ERR_TOO_BIG;
	if (l->count == l->cap) {
		uint64_t cap = l->cap ? l->cap * 2 : 64;
		uint8_t *p = realloc(l->hashes, cap * PROTO_HASH_LEN);
		if (p == NULL)
			return PROTO_ERR_NOMEM;
		l->hashes = p;
		l->cap = cap;
	}
	memcpy(l->hashes + l->count++ * PROTO_HASH_LEN, hash, PROTO_HASH_LEN);
	return 0;
}

struct progress {
	proto_manifest_progress_fn fn;
	void *ctx;
};

static int
hash_stream(int fd, size_t cs, struct layer *l, uint64_t *size_out,
    size_t *cs_out, const struct progress *pr)
{
	struct stat st;
	int seekable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	uint8_t hash[PROTO_HASH_LEN], zero_hash[PROTO_HASH_LEN];
	int have_zero_hash = 0, rc = 0;
	uint64_t size = 0;
	uint8_t *buf;

	if ((buf = malloc(cs)) == NULL)
		return PROTO_ERR_NOMEM;
	for (;;) {
		ssize_t n;

		/* A sparse file's holes hash alike: hash one, reuse it. */
		if (seekable && size + cs <= (uint64_t)st.st_size &&
		    in_hole(fd, size, cs)) {
			if (!have_zero_hash) {
				memset(buf, 0, cs);
				if ((rc = proto_hash_chunk(buf, cs, cs,
				    zero_hash)) != 0)
					break;
				have_zero_hash = 1;
			}
			if ((rc = layer_push(l, zero_hash)) != 0)
				break;
			size += cs;
			if (pr->fn)
				pr->fn(size, pr->ctx);
			continue;
		}
		if ((n = read_full(fd, seekable, buf, cs, size)) < 0) {
			rc = PROTO_ERR_SYSTEM;
			break;
		}
		if (n == 0 && l->count > 0)
			break;
		if (l->count == 0 && (size_t)n < cs) {
			/* The whole file fits in one chunk: narrow the chunk
			 * to the tree, as the id's definition requires. */
			cs = proto_chunk_size_fit((uint64_t)n, cs);
		}
		if ((rc = proto_hash_chunk(buf, (size_t)n, cs, hash)) != 0 ||
		    (rc = layer_push(l, hash)) != 0)
			break;
		size += (uint64_t)n;
		if (pr->fn)
			pr->fn(size, pr->ctx);
		if ((size_t)n < cs)
			break;
	}
	free(buf);
	*size_out = size;
	*cs_out = cs;
	return rc;
}

int
proto_manifest_build_fd(int fd, const char *name, const char *path,
    size_t chunk_size, proto_manifest **out)
{
	return proto_manifest_build_fd_progress(fd, name, path, chunk_size,
	    NULL, NULL, out);
}

int
proto_manifest_build_fd_progress(int fd, const char *name, const char *path,
    size_t chunk_size, proto_manifest_progress_fn fn, void *ctx,
    proto_manifest **out)
{
	struct progress pr = { fn, ctx };
	struct layer l = { NULL, 0, 0 };
	proto_manifest *mf;
	struct stat st;
	uint64_t size;
	size_t cs = chunk_size;
	int rc;

	*out = NULL;
	if (!proto_name_valid(name, strlen(name)))
		return PROTO_ERR_INVALID;
	if (cs == 0) {
		/* A pipe's length is unknown: start small, narrow at the end. */
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
			cs = PROTO_CHUNK_AUTO_MIN;
		else if ((cs = proto_chunk_size_auto((uint64_t)st.st_size)) == 0)
			return PROTO_ERR_TOO_BIG;
	}
	if (!proto_chunk_size_allowed(cs))
		return PROTO_ERR_INVALID;
	if ((rc = hash_stream(fd, cs, &l, &size, &cs, &pr)) != 0) {
		free(l.hashes);
		return rc;
	}
	if ((mf = calloc(1, sizeof(*mf))) == NULL) {
		free(l.hashes);
		return PROTO_ERR_NOMEM;
	}
	mf->size = size;
	mf->chunk_size = (uint32_t)cs;
	mf->nchunks = l.count;
	mf->chunks = l.hashes;
	mf->name = strdup(name);
	mf->path = path ? strdup(path) : NULL;
	if (mf->name == NULL || (path && mf->path == NULL))
		rc = PROTO_ERR_NOMEM;
	else
		rc = proto_hash_root(mf->chunks, mf->nchunks, cs, size,
		    mf->root, mf->id);
	if (rc != 0) {
		proto_manifest_free(mf);
		return rc;
	}
	*out = mf;
	return 0;
}

static void
pack_key(msgpack_packer *pk, const char *key)
{
	size_t n = strlen(key);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, key, n);
}

int
proto__manifest_pack_object(msgpack_packer *pk, const proto_manifest *mf,
    int with_path)
{
	size_t name_len = strlen(mf->name);
	int rc = 0;

	rc |= msgpack_pack_map(pk, with_path && mf->path ? 7 : 6);
	pack_key(pk, "v");
	rc |= msgpack_pack_uint8(pk, 1);
	pack_key(pk, "id");
	rc |= msgpack_pack_bin(pk, PROTO_HASH_LEN);
	rc |= msgpack_pack_bin_body(pk, mf->id, PROTO_HASH_LEN);
	pack_key(pk, "name");
	rc |= msgpack_pack_str(pk, name_len);
	rc |= msgpack_pack_str_body(pk, mf->name, name_len);
	pack_key(pk, "size");
	rc |= msgpack_pack_uint64(pk, mf->size);
	pack_key(pk, "chunk_size");
	rc |= msgpack_pack_uint32(pk, mf->chunk_size);
	if (proto_manifest_has_layer(mf)) {
		pack_key(pk, "chunks");
		rc |= msgpack_pack_bin(pk, mf->nchunks * PROTO_HASH_LEN);
		rc |= msgpack_pack_bin_body(pk, mf->chunks,
		    mf->nchunks * PROTO_HASH_LEN);
	} else {
		pack_key(pk, "root");
		rc |= msgpack_pack_bin(pk, PROTO_HASH_LEN);
		rc |= msgpack_pack_bin_body(pk, mf->root, PROTO_HASH_LEN);
	}
	if (with_path && mf->path) {
		size_t n = strlen(mf->path);
		pack_key(pk, "path");
		rc |= msgpack_pack_str(pk, n);
		rc |= msgpack_pack_str_body(pk, mf->path, n);
	}
	return rc ? PROTO_ERR_NOMEM : 0;
}

int
proto_manifest_pack(const proto_manifest *mf, int with_path, uint8_t **out,
    size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if ((rc = proto__manifest_pack_object(&pk, mf, with_path)) != 0) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	*out = (uint8_t *)sb.data;
	*len = sb.size;
	return 0;
}

static int
key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	    memcmp(k->via.str.ptr, name, n) == 0;
}

/* The fields of a manifest map, each NULL when absent. */
struct fields {
	const msgpack_object *v, *id, *name, *size, *cs, *chunks, *root, *path;
};

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
		else if (key_is(k, "size")) f->size = val;
		else if (key_is(k, "chunk_size")) f->cs = val;
		else if (key_is(k, "chunks")) f->chunks = val;
		else if (key_is(k, "root")) f->root = val;
		else if (key_is(k, "path")) f->path = val;
	}
	if (!f->v || !f->id || !f->name || !f->size || !f->cs ||
	    (!f->chunks && !f->root))
		return PROTO_ERR_MALFORMED;
	if (f->v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || f->v->via.u64 != 1)
		return PROTO_ERR_VERSION;
	if (f->id->type != MSGPACK_OBJECT_BIN ||
	    f->id->via.bin.size != PROTO_HASH_LEN ||
	    f->name->type != MSGPACK_OBJECT_STR ||
	    !proto_name_valid(f->name->via.str.ptr, f->name->via.str.size) ||
	    f->size->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    f->cs->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    (f->chunks && f->chunks->type != MSGPACK_OBJECT_BIN) ||
	    (f->root && (f->root->type != MSGPACK_OBJECT_BIN ||
	    f->root->via.bin.size != PROTO_HASH_LEN)) ||
	    (f->path && f->path->type != MSGPACK_OBJECT_STR))
		return PROTO_ERR_MALFORMED;
	return 0;
}

int
proto__manifest_from_object(const msgpack_object *obj, uint64_t max_inline,
    proto_manifest **out)
{
	uint8_t computed[PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	const uint8_t *layer = NULL;
	struct fields f;
	proto_manifest *mf;
	uint64_t nchunks, size;
	size_t cs;
	int rc, want_path;

	*out = NULL;
	if ((rc = find_fields(obj, &f)) != 0)
		return rc;
	if (f.cs->via.u64 > PROTO_CHUNK_MAX ||
	    !proto_chunk_size_valid(f.size->via.u64, (size_t)f.cs->via.u64))
		return PROTO_ERR_INVALID;
	size = f.size->via.u64;
	cs = (size_t)f.cs->via.u64;
	nchunks = proto_chunk_count(size, cs);
	if (f.chunks != NULL) {
		if (nchunks > max_inline)
			return PROTO_ERR_TOO_BIG;
		if (f.chunks->via.bin.size != nchunks * PROTO_HASH_LEN)
			return PROTO_ERR_MALFORMED;
		layer = (const uint8_t *)f.chunks->via.bin.ptr;
		rc = proto_hash_root(layer, nchunks, cs, size, root, computed);
		/* Both: each must be right. */
		if (rc == 0 && f.root != NULL &&
		    memcmp(root, f.root->via.bin.ptr, PROTO_HASH_LEN) != 0)
			rc = PROTO_ERR_MISMATCH;
	} else {
		memcpy(root, f.root->via.bin.ptr, PROTO_HASH_LEN);
		rc = proto_hash_id_of_root(size, root, computed);
	}
	if (rc != 0)
		return rc;
	if (memcmp(computed, f.id->via.bin.ptr, PROTO_HASH_LEN) != 0)
		return PROTO_ERR_MISMATCH;
	if ((mf = calloc(1, sizeof(*mf))) == NULL)
		return PROTO_ERR_NOMEM;
	memcpy(mf->id, computed, PROTO_HASH_LEN);
	memcpy(mf->root, root, PROTO_HASH_LEN);
	mf->size = size;
	mf->chunk_size = (uint32_t)cs;
	mf->nchunks = nchunks;
	mf->name = strndup(f.name->via.str.ptr, f.name->via.str.size);
	if (layer != NULL)
		mf->chunks = malloc(nchunks * PROTO_HASH_LEN);
	/* A path is only ever read from our own p2p-chunk; a bad one is
	 * dropped rather than trusted. */
	want_path = f.path && f.path->via.str.size > 0 &&
	    !memchr(f.path->via.str.ptr, '\0', f.path->via.str.size);
	if (want_path)
		mf->path = strndup(f.path->via.str.ptr, f.path->via.str.size);
	if (mf->name == NULL || (layer != NULL && mf->chunks == NULL) ||
	    (want_path && mf->path == NULL)) {
		proto_manifest_free(mf);
		return PROTO_ERR_NOMEM;
	}
	if (layer != NULL)
		memcpy(mf->chunks, layer, nchunks * PROTO_HASH_LEN);
	*out = mf;
	return 0;
}

long
proto_manifest_unpack(const uint8_t *buf, size_t len, proto_manifest **out)
{
	proto_check_limits lim;
	msgpack_unpacked up;
	size_t off = 0;
	long n;
	int rc;

	*out = NULL;
	proto_check_limits_init(&lim, PROTO_MANIFEST_MAX);
	lim.max_objects = 64; /* a manifest is a small map and two blobs */
	if ((n = proto_check_msgpack(buf, len, &lim)) <= 0)
		return n;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (const char *)buf, (size_t)n, &off) !=
	    MSGPACK_UNPACK_SUCCESS || off != (size_t)n)
		rc = PROTO_ERR_MALFORMED;
	else
		rc = proto__manifest_from_object(&up.data, PROTO_MAX_CHUNKS,
		    out);
	msgpack_unpacked_destroy(&up);
	return rc != 0 ? rc : n;
}

int
proto_manifest_check_chunk(const proto_manifest *mf, uint64_t index,
    const void *data, size_t len)
{
	uint8_t hash[PROTO_HASH_LEN];
	int rc;

	if (!proto_manifest_hash_known(mf, index) ||
	    len != proto_chunk_len(mf->size, mf->chunk_size, index))
		return PROTO_ERR_INVALID;
	if ((rc = proto_hash_chunk(data, len, mf->chunk_size, hash)) != 0)
		return rc;
	return memcmp(hash, mf->chunks + index * PROTO_HASH_LEN,
	    PROTO_HASH_LEN) == 0 ? 0 : PROTO_ERR_MISMATCH;
}

int
proto_manifest_rechunk(proto_manifest *mf, size_t chunk_size)
{
	uint8_t pad[PROTO_HASH_LEN], *layer;
	uint64_t n = mf->nchunks, ratio;
	unsigned height = 0;

	if (!proto_manifest_has_layer(mf) || chunk_size < mf->chunk_size ||
	    chunk_size % mf->chunk_size != 0 ||
	    !proto_chunk_size_valid(mf->size, chunk_size))
		return PROTO_ERR_INVALID;
	if (chunk_size == mf->chunk_size)
		return 0;
	for (uint64_t b = mf->chunk_size / PROTO_BLOCK_SIZE; b > 1; b >>= 1)
		height++;
	if ((layer = malloc(n * PROTO_HASH_LEN)) == NULL)
		return PROTO_ERR_NOMEM;
	memcpy(layer, mf->chunks, n * PROTO_HASH_LEN);
	/* One level at a time: pairs hashed, an odd last one with Z(h). */
	for (ratio = chunk_size / mf->chunk_size; ratio > 1; ratio >>= 1) {
		uint64_t m = (n + 1) / 2;
		int rc;
		if ((rc = proto_hash_zero(height, pad)) != 0) {
			free(layer);
			return rc;
		}
		for (uint64_t i = 0; i < m; i++) {
			const uint8_t *r = 2 * i + 1 < n ?
			    layer + (2 * i + 1) * PROTO_HASH_LEN : pad;
			if ((rc = proto_hash_pair(layer + 2 * i * PROTO_HASH_LEN,
			    r, layer + i * PROTO_HASH_LEN)) != 0) {
				free(layer);
				return rc;
			}
		}
		n = m;
		height++;
	}
	free(mf->chunks);
	mf->chunks = layer;
	mf->nchunks = n;
	mf->chunk_size = (uint32_t)chunk_size;
	return 0;
}

int
proto_manifest_has_layer(const proto_manifest *mf)
{
	return mf->chunks != NULL && mf->known == NULL;
}

int
proto_manifest_hash_known(const proto_manifest *mf, uint64_t index)
{
	return index < mf->nchunks && mf->chunks != NULL &&
	    (mf->known == NULL || proto_have_test(mf->known, index));
}

int
proto_manifest_open_layer(proto_manifest *mf, size_t chunk_size)
{
	uint64_t n = proto_chunk_count(mf->size, chunk_size);
	proto_have *known;
	uint8_t *layer;

	if (mf->chunks != NULL || !proto_chunk_size_valid(mf->size, chunk_size))
		return PROTO_ERR_INVALID;
	if ((known = calloc(1, sizeof(*known))) == NULL)
		return PROTO_ERR_NOMEM;
	/* Untouched pages cost nothing: a huge layer is paid for as it
	 * arrives. */
	if ((layer = calloc(n, PROTO_HASH_LEN)) == NULL ||
	    proto_have_init(known, n) != 0) {
		free(layer);
		free(known);
		return PROTO_ERR_NOMEM;
	}
	mf->chunks = layer;
	mf->known = known;
	mf->nchunks = n;
	mf->chunk_size = (uint32_t)chunk_size;
	return 0;
}

int
proto_manifest_add_run(proto_manifest *mf, uint64_t index, uint64_t count,
    const uint8_t *hashes, size_t nhashes, const uint8_t *proof,
    size_t nproof)
{
	int rc;

	if (mf->chunks == NULL)
		return PROTO_ERR_INVALID;
	if ((rc = proto_run_verify(mf->root, mf->size, mf->chunk_size, index,
	    count, hashes, nhashes, proof, nproof)) != 0)
		return rc;
	if (mf->known == NULL)
		return 0; /* all known already, and the run agrees */
	memcpy(mf->chunks + index * PROTO_HASH_LEN, hashes,
	    nhashes * PROTO_HASH_LEN);
	for (size_t i = 0; i < nhashes; i++)
		proto_have_set(mf->known, index + i);
	if (mf->known->count == mf->nchunks) {
		proto_have_free(mf->known);
		free(mf->known);
		mf->known = NULL;
	}
	return 0;
}
