/*
 * A tree's entries, its canonical encoding and its id (docs/PROTOCOL.md
 * section 10). The encoding is written with msgpack-c, which always picks
 * the shortest forms, and read back by hand, so that a peer's bytes are
 * bounded at every step; a decoded tree is encoded again and must give the
 * same bytes, which is what makes the encoding canonical: one tree, one id.
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "error.h"
#include "manifest.h"
#include "tree.h"

proto_tree *
proto_tree_new(void)
{
	return calloc(1, sizeof(proto_tree));
}

void
proto_tree_free(proto_tree *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->count; i++)
		free(t->entries[i].path);
	free(t->entries);
	free(t->name);
	free(t->path);
	free(t->buf);
	free(t);
}

int
proto_tree_path_valid(const char *path, size_t len)
{
	size_t start = 0, depth = 0;

	if (len == 0 || len > PROTO_TREE_PATH_MAX || memchr(path, '\0', len))
		return 0;
	for (size_t i = 0; i <= len; i++) {
		size_t n;
		if (i < len && path[i] != '/')
			continue;
		n = i - start;
		if (n == 0 || n > PROTO_TREE_NAME_MAX ||
		    (n == 1 && path[start] == '.') ||
		    (n == 2 && path[start] == '.' && path[start + 1] == '.') ||
		    ++depth > PROTO_TREE_DEPTH_MAX)
			return 0;
		start = i + 1;
	}
	return 1;
}

static int
add_entry(proto_tree *t, const char *path, size_t len, proto_tree_entry **out)
{
	proto_tree_entry *e;

	if (t->finished || !proto_tree_path_valid(path, len))
		return PROTO_ERR_INVALID;
	if (t->count == PROTO_TREE_ENTRIES_MAX)
		return PROTO_ERR_TOO_BIG;
	if (t->count == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		void *p = realloc(t->entries, cap * sizeof(*t->entries));
		if (p == NULL)
			return PROTO_ERR_NOMEM;
		t->entries = p;
		t->cap = cap;
	}
	e = &t->entries[t->count];
	memset(e, 0, sizeof(*e));
	if ((e->path = malloc(len + 1)) == NULL)
		return PROTO_ERR_NOMEM;
	memcpy(e->path, path, len);
	e->path[len] = '\0';
	e->path_len = len;
	t->count++;
	*out = e;
	return 0;
}

int
proto_tree_add_file(proto_tree *t, const char *path, size_t len,
    uint64_t size, uint32_t mode, const uint8_t id[PROTO_HASH_LEN])
{
	proto_tree_entry *e;
	int rc;

	if (mode > 0777 || size > PROTO_TREE_FILE_MAX)
		return PROTO_ERR_INVALID;
	if ((rc = add_entry(t, path, len, &e)) != 0)
		return rc;
	e->size = size;
	e->mode = mode;
	memcpy(e->id, id, PROTO_HASH_LEN);
	return 0;
}

int
proto_tree_add_dir(proto_tree *t, const char *path, size_t len)
{
	proto_tree_entry *e;
	int rc;

	if ((rc = add_entry(t, path, len, &e)) != 0)
		return rc;
	e->dir = 1;
	return 0;
}

int
proto_tree_set_name(proto_tree *t, const char *name)
{
	char *copy = NULL;

	if (name != NULL) {
		if (!proto_name_valid(name, strlen(name)))
			return PROTO_ERR_INVALID;
		if ((copy = strdup(name)) == NULL)
			return PROTO_ERR_NOMEM;
	}
	free(t->name);
	t->name = copy;
	return 0;
}

/* Raw bytes order; a path sorts before every longer path it begins. */
static int
path_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int
entry_cmp(const void *x, const void *y)
{
	const proto_tree_entry *a = x, *b = y;

	return path_cmp(a->path, a->path_len, b->path, b->path_len);
}

/* The index of the entry whose path is path[0..len) among the first n of
 * sorted entries, or -1. */
static long
lookup(const proto_tree_entry *e, size_t n, const char *path, size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = path_cmp(e[mid].path, e[mid].path_len, path, len);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

const proto_tree_entry *
proto_tree_find(const proto_tree *t, const char *path, size_t len)
{
	long i;

	if (!t->finished)
		return NULL;
	i = lookup(t->entries, t->count, path, len);
	return i < 0 ? NULL : &t->entries[i];
}

/* Marks (dir = 2) the directories something lies beneath; a file
 * something lies beneath is a clash. Entries are sorted. */
static int
mark_ancestors(proto_tree *t)
{
	for (size_t i = 0; i < t->count; i++) {
		const proto_tree_entry *e = &t->entries[i];
		for (size_t k = 0; k < e->path_len; k++) {
			long a;
			if (e->path[k] != '/')
				continue;
			if ((a = lookup(t->entries, t->count, e->path, k)) < 0)
				continue;
			if (!t->entries[a].dir)
				return PROTO_ERR_INVALID;
			t->entries[a].dir = 2;
		}
	}
	return 0;
}

static int
encode(proto_tree *t)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_sbuffer_write(&sb, PROTO_TREE_PREFIX,
	    PROTO_TREE_PREFIX_LEN) != 0 ||
	    msgpack_pack_array(&pk, t->count) != 0)
		rc = PROTO_ERR_NOMEM;
	for (size_t i = 0; i < t->count && rc == 0; i++) {
		const proto_tree_entry *e = &t->entries[i];
		if (msgpack_pack_array(&pk, e->dir ? 1 : 4) != 0 ||
		    msgpack_pack_bin(&pk, e->path_len) != 0 ||
		    msgpack_pack_bin_body(&pk, e->path, e->path_len) != 0)
			rc = PROTO_ERR_NOMEM;
		else if (!e->dir && (msgpack_pack_uint64(&pk, e->size) != 0 ||
		    msgpack_pack_uint32(&pk, e->mode) != 0 ||
		    msgpack_pack_bin(&pk, PROTO_HASH_LEN) != 0 ||
		    msgpack_pack_bin_body(&pk, e->id, PROTO_HASH_LEN) != 0))
			rc = PROTO_ERR_NOMEM;
		if (sb.size > PROTO_TREE_PREFIX_LEN + PROTO_TREE_BYTES_MAX)
			rc = PROTO_ERR_TOO_BIG;
	}
	if (rc == 0)
		rc = proto_sha256(sb.data, sb.size, t->id);
	if (rc != 0) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	t->buf = (uint8_t *)sb.data;
	t->enc = t->buf + PROTO_TREE_PREFIX_LEN;
	t->enc_len = sb.size - PROTO_TREE_PREFIX_LEN;
	return 0;
}

int
proto_tree_finish(proto_tree *t)
{
	size_t kept = 0;
	int rc;

	if (t->finished)
		return 0;
	if (t->count > 1)
		qsort(t->entries, t->count, sizeof(*t->entries), entry_cmp);
	for (size_t i = 1; i < t->count; i++)
		if (entry_cmp(&t->entries[i - 1], &t->entries[i]) == 0)
			return PROTO_ERR_INVALID;
	if ((rc = mark_ancestors(t)) != 0)
		return rc;
	t->nfiles = 0;
	t->total_size = 0;
	for (size_t i = 0; i < t->count; i++) {
		const proto_tree_entry *e = &t->entries[i];
		if (e->dir)
			continue;
		if (e->size > PROTO_TREE_TOTAL_MAX - t->total_size)
			return PROTO_ERR_TOO_BIG;
		t->total_size += e->size;
		t->nfiles++;
	}
	for (size_t i = 0; i < t->count; i++) {
		if (t->entries[i].dir == 2)
			free(t->entries[i].path);
		else
			t->entries[kept++] = t->entries[i];
	}
	t->count = kept;
	if ((rc = encode(t)) != 0)
		return rc;
	t->finished = 1;
	return 0;
}

/* A reader of the encoding: each take checks the bytes left first. */
struct rd {
	const uint8_t *p;
	size_t left;
};

static int
take(struct rd *r, size_t n, const uint8_t **p)
{
	if (n > r->left)
		return PROTO_ERR_MALFORMED;
	*p = r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

static uint64_t
be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | *p++;
	return v;
}

/* Any width here; the comparison with the encoding made again refuses
 * all but the shortest. */
static int
rd_uint(struct rd *r, uint64_t *v)
{
	const uint8_t *p;
	size_t n;

	if (take(r, 1, &p) != 0)
		return PROTO_ERR_MALFORMED;
	if (*p < 0x80) {
		*v = *p;
		return 0;
	}
	if (*p < 0xcc || *p > 0xcf)
		return PROTO_ERR_MALFORMED;
	n = (size_t)1 << (*p - 0xcc);
	if (take(r, n, &p) != 0)
		return PROTO_ERR_MALFORMED;
	*v = be(p, n);
	return 0;
}

static int
rd_array(struct rd *r, uint64_t *n)
{
	const uint8_t *p;

	if (take(r, 1, &p) != 0)
		return PROTO_ERR_MALFORMED;
	if ((*p & 0xf0) == 0x90) {
		*n = *p & 0x0f;
		return 0;
	}
	if (*p != 0xdc && *p != 0xdd)
		return PROTO_ERR_MALFORMED;
	if (take(r, *p == 0xdc ? 2 : 4, &p) != 0)
		return PROTO_ERR_MALFORMED;
	*n = be(p, p[-1] == 0xdc ? 2 : 4);
	return 0;
}

static int
rd_bin(struct rd *r, size_t max, const uint8_t **body, size_t *n)
{
	const uint8_t *p;
	size_t w;
	uint64_t v;

	if (take(r, 1, &p) != 0 || *p < 0xc4 || *p > 0xc6)
		return PROTO_ERR_MALFORMED;
	w = (size_t)1 << (*p - 0xc4);
	if (take(r, w, &p) != 0)
		return PROTO_ERR_MALFORMED;
	if ((v = be(p, w)) > max)
		return PROTO_ERR_INVALID;
	*n = (size_t)v;
	return take(r, *n, body);
}

static int
rd_entry(struct rd *r, proto_tree *t)
{
	const uint8_t *path, *id;
	uint64_t n, size, mode;
	size_t plen, idlen;
	int rc;

	if ((rc = rd_array(r, &n)) != 0)
		return rc;
	if (n != 1 && n != 4)
		return PROTO_ERR_MALFORMED;
	if ((rc = rd_bin(r, PROTO_TREE_PATH_MAX, &path, &plen)) != 0)
		return rc;
	if (n == 1)
		return proto_tree_add_dir(t, (const char *)path, plen);
	if ((rc = rd_uint(r, &size)) != 0 || (rc = rd_uint(r, &mode)) != 0 ||
	    (rc = rd_bin(r, PROTO_HASH_LEN, &id, &idlen)) != 0)
		return rc;
	if (idlen != PROTO_HASH_LEN || mode > 0777 ||
	    size > PROTO_TREE_FILE_MAX)
		return PROTO_ERR_INVALID;
	return proto_tree_add_file(t, (const char *)path, plen, size,
	    (uint32_t)mode, id);
}

int
proto_tree_decode(const uint8_t *enc, size_t len, proto_tree **out)
{
	struct rd r = { enc, len };
	proto_tree *t;
	uint64_t n;
	int rc;

	*out = NULL;
	if (len > PROTO_TREE_BYTES_MAX)
		return PROTO_ERR_TOO_BIG;
	if ((rc = rd_array(&r, &n)) != 0)
		return rc;
	/* Every entry takes at least 3 bytes: a count beyond the bytes or
	 * the limit is refused before anything is allocated for it. */
	if (n > PROTO_TREE_ENTRIES_MAX)
		return PROTO_ERR_TOO_BIG;
	if (n > r.left / 3)
		return PROTO_ERR_MALFORMED;
	if ((t = proto_tree_new()) == NULL)
		return PROTO_ERR_NOMEM;
	if ((t->entries = calloc(n ? n : 1, sizeof(*t->entries))) == NULL) {
		free(t);
		return PROTO_ERR_NOMEM;
	}
	t->cap = n ? n : 1;
	rc = 0;
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		rc = rd_entry(&r, t);
		/* Sorted strictly as they come: a duplicate never waits for
		 * the sort. */
		if (rc == 0 && i > 0 && entry_cmp(&t->entries[i - 1],
		    &t->entries[i]) >= 0)
			rc = PROTO_ERR_MALFORMED;
	}
	if (rc == 0 && r.left != 0)
		rc = PROTO_ERR_MALFORMED;
	if (rc == 0)
		rc = proto_tree_finish(t);
	if (rc == 0 && (t->enc_len != len || memcmp(t->enc, enc, len) != 0))
		rc = PROTO_ERR_MALFORMED;
	if (rc != 0) {
		proto_tree_free(t);
		return rc;
	}
	*out = t;
	return 0;
}
