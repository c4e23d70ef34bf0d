/*
 * p2p-chunk --torrent: a BitTorrent v2 metainfo file (BEP 52) of a file or
 * a directory, from the hashes the content ids are made of. A content id
 * is H(size_be64 || root), root being BEP 52's "pieces root" of the file,
 * and a chunk hash is the node its piece layer holds for a piece of the
 * chunk size: so the .torrent needs no hashing of its own. The piece
 * length is the largest chunk size among the files; a file chunked
 * smaller has its layer carried up to it (proto_manifest_rechunk).
 *
 * Bencoding is canonical: dictionary keys sorted as raw bytes, so a path
 * sorts component by component, and the output is the same for the same
 * files on any machine (no creation date, no "created by").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tool.h"

/* A file as the torrent needs it: what its manifest said, kept. */
struct tfile {
	const char *path;       /* relative to the top; the name for a file */
	uint64_t size;
	uint8_t id[PROTO_HASH_LEN];
	uint8_t root[PROTO_HASH_LEN];
	uint32_t chunk_size;
	uint64_t nchunks;
	uint8_t *layer;         /* nchunks hashes at chunk_size */
};

struct tlist {
	struct tfile *f;
	size_t n, cap;
	tool_hash_fn hash;
	void *ctx;
};

struct out {
	uint8_t *p;
	size_t len, cap;
};

static void
put(struct out *o, const void *data, size_t n)
{
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap < o->len + n)
			cap *= 2;
		if ((o->p = realloc(o->p, cap)) == NULL)
			tool_die(1, "out of memory");
		o->cap = cap;
	}
	memcpy(o->p + o->len, data, n);
	o->len += n;
}

static void
put_str(struct out *o, const void *s, size_t n)
{
	char head[24];

	put(o, head, (size_t)snprintf(head, sizeof(head), "%zu:", n));
	put(o, s, n);
}

static void
put_key(struct out *o, const char *key)
{
	put_str(o, key, strlen(key));
}

static void
put_int(struct out *o, uint64_t v)
{
	char text[32];

	put(o, text, (size_t)snprintf(text, sizeof(text), "i%llue",
	    (unsigned long long)v));
}

/* The manifest of a file, kept: the hash callback of the tree's walk. */
static int
keep(int fd, const char *name, proto_manifest **mf, void *arg)
{
	struct tlist *l = arg;
	struct tfile *f;
	int rc;

	rc = l->hash != NULL ? l->hash(fd, name, mf, l->ctx) :
	    proto_manifest_build_fd(fd, name, NULL, 0, mf);
	if (rc != 0)
		return rc;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		if ((l->f = realloc(l->f, l->cap * sizeof(*l->f))) == NULL)
			tool_die(1, "out of memory");
	}
	f = &l->f[l->n++];
	memset(f, 0, sizeof(*f));
	f->size = (*mf)->size;
	memcpy(f->id, (*mf)->id, PROTO_HASH_LEN);
	memcpy(f->root, (*mf)->root, PROTO_HASH_LEN);
	f->chunk_size = (*mf)->chunk_size;
	f->nchunks = (*mf)->nchunks;
	if ((f->layer = malloc(f->nchunks * PROTO_HASH_LEN)) == NULL)
		tool_die(1, "out of memory");
	memcpy(f->layer, (*mf)->chunks, f->nchunks * PROTO_HASH_LEN);
	return 0;
}

/* f's layer carried up to piece length pl (pl no smaller than its chunk
 * size, and valid for it: the file is larger than a piece). */
static void
layer_up(struct tfile *f, uint32_t pl)
{
	proto_manifest m;

	if (f->chunk_size == pl)
		return;
	memset(&m, 0, sizeof(m));
	m.size = f->size;
	m.chunk_size = f->chunk_size;
	m.nchunks = f->nchunks;
	m.chunks = f->layer;
	if (proto_manifest_rechunk(&m, pl) != 0)
		tool_die(1, "%s: cannot carry its hashes to pieces of %u bytes",
		    f->path, pl);
	f->layer = m.chunks;
	f->nchunks = m.nchunks;
	f->chunk_size = pl;
}

/* The length of path's component at its start. */
static size_t
component(const char *path)
{
	const char *slash = strchr(path, '/');

	return slash ? (size_t)(slash - path) : strlen(path);
}

/* Paths in the order of the file tree's keys: component by component, each
 * as raw bytes (a shorter one that is a prefix first). */
static int
by_components(const void *pa, const void *pb)
{
	const char *a = ((const struct tfile *)pa)->path;
	const char *b = ((const struct tfile *)pb)->path;

	for (;;) {
		size_t la = component(a), lb = component(b);
		int c = memcmp(a, b, la < lb ? la : lb);
		if (c != 0)
			return c;
		if (la != lb)
			return la < lb ? -1 : 1;
		a += la;
		b += lb;
		if (*a == '\0' || *b == '\0')
			return (*a != '\0') - (*b != '\0');
		a++;
		b++;
	}
}

/* The file tree of f[0..n), whose paths share their first off bytes. */
static void
put_tree(struct out *o, const struct tfile *f, size_t n, size_t off)
{
	size_t i = 0;

	put(o, "d", 1);
	while (i < n) {
		const char *name = f[i].path + off;
		size_t len = component(name), j = i + 1;
		put_str(o, name, len);
		if (name[len] == '\0') {
			/* A file: {"": {length, pieces root}}, no root when
			 * empty (BEP 52). */
			put(o, "d0:d", 4);
			put_key(o, "length");
			put_int(o, f[i].size);
			if (f[i].size > 0) {
				put_key(o, "pieces root");
				put_str(o, f[i].root, PROTO_HASH_LEN);
			}
			put(o, "ee", 2);
			i++;
			continue;
		}
		while (j < n && strncmp(f[j].path + off, name, len + 1) == 0)
			j++;
		put_tree(o, f + i, j - i, off + len + 1);
		i = j;
	}
	put(o, "e", 1);
}

static int
by_root(const void *pa, const void *pb)
{
	return memcmp(((const struct tfile *)pa)->root,
	    ((const struct tfile *)pb)->root, PROTO_HASH_LEN);
}

/* The metainfo of the files in l under name, into o. */
static void
put_torrent(struct out *o, struct tlist *l, const char *name, int single)
{
	uint32_t pl = PROTO_BLOCK_SIZE;
	struct tfile *by;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->f[i].chunk_size > pl)
			pl = l->f[i].chunk_size;
	qsort(l->f, l->n, sizeof(*l->f), by_components);
	put(o, "d", 1);
	put_key(o, "info");
	put(o, "d", 1);
	put_key(o, "file tree");
	if (single) {
		/* One file: the tree holds it under its own name. */
		put(o, "d", 1);
		put_str(o, name, strlen(name));
		put(o, "d0:d", 4);
		put_key(o, "length");
		put_int(o, l->f[0].size);
		if (l->f[0].size > 0) {
			put_key(o, "pieces root");
			put_str(o, l->f[0].root, PROTO_HASH_LEN);
		}
		put(o, "eee", 3);
	} else
		put_tree(o, l->f, l->n, 0);
	put_key(o, "meta version");
	put_int(o, 2);
	put_key(o, "name");
	put_str(o, name, strlen(name));
	put_key(o, "piece length");
	put_int(o, pl);
	put(o, "e", 1);
	/* A layer for each file larger than a piece, once per root, in the
	 * order of the roots. */
	for (i = 0; i < l->n; i++)
		if (l->f[i].size > pl)
			layer_up(&l->f[i], pl);
	put_key(o, "piece layers");
	put(o, "d", 1);
	if ((by = malloc((l->n ? l->n : 1) * sizeof(*by))) == NULL)
		tool_die(1, "out of memory");
	memcpy(by, l->f, l->n * sizeof(*by));
	qsort(by, l->n, sizeof(*by), by_root);
	for (i = 0; i < l->n; i++) {
		if (by[i].size <= pl || (i > 0 && memcmp(by[i].root,
		    by[i - 1].root, PROTO_HASH_LEN) == 0))
			continue;
		put_str(o, by[i].root, PROTO_HASH_LEN);
		put_str(o, by[i].layer, by[i].nchunks * PROTO_HASH_LEN);
	}
	free(by);
	put(o, "ee", 2);
}

int
tool_torrent(const char *path, tool_hash_fn hash, void *ctx, int out_fd)
{
	struct tlist l = { NULL, 0, 0, hash, ctx };
	struct out o = { NULL, 0, 0 };
	proto_tree *t = NULL;
	struct stat st;

	if (stat(path, &st) != 0)
		tool_die_errno(1, "%s", path);
	if (S_ISDIR(st.st_mode)) {
		int errors = tool_tree_build(path, keep, &l, &t);
		size_t n = 0;
		if (errors)
			tool_die(1, "%s: %d file%s could not be read; no torrent "
			    "written", path, errors, errors == 1 ? "" : "s");
		if (t->nfiles == 0)
			tool_die(1, "%s: no files: a torrent holds at least one",
			    path);
		/* The walk kept the files in its order, and each identical
		 * file once per path: paths are the tree's, matched by id. */
		for (size_t i = 0; i < t->count; i++) {
			const proto_tree_entry *e = &t->entries[i];
			if (e->dir)
				continue;
			for (size_t k = n; k < l.n; k++)
				if (memcmp(l.f[k].id, e->id, PROTO_HASH_LEN) ==
				    0) {
					struct tfile tmp = l.f[n];
					l.f[n] = l.f[k];
					l.f[k] = tmp;
					break;
				}
			l.f[n++].path = e->path;
		}
		put_torrent(&o, &l, t->name ? t->name : "root", 0);
	} else {
		const char *base = strrchr(path, '/');
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		proto_manifest *mf;
		int rc;
		base = base ? base + 1 : path;
		if (fd < 0)
			tool_die_errno(1, "%s", path);
		if ((rc = keep(fd, base, &mf, &l)) != 0)
			tool_die(1, "%s: %s", path, rc == PROTO_ERR_SYSTEM ?
			    strerror(errno) : proto_strerror(rc));
		close(fd);
		proto_manifest_free(mf);
		l.f[0].path = base;
		put_torrent(&o, &l, base, 1);
	}
	if (tool_write_all(out_fd, o.p, o.len) != 0) {
		if (errno == EPIPE)
			exit(1);
		tool_die_errno(1, "write");
	}
	free(o.p);
	for (size_t i = 0; i < l.n; i++)
		free(l.f[i].layer);
	free(l.f);
	proto_tree_free(t);
	return 0;
}
