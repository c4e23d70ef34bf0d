/*
 * A store: an array of entries in insertion order, indexed by an open
 * addressing table on the id's first bytes (ids are SHA-256 values, so
 * their bytes are already uniformly spread).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "error.h"
#include "log_private.h"
#include "merkle.h"
#include "store.h"
#include "store_private.h"

struct entry {
	proto_manifest *mf;
	int fd;
	int borrowed;            /* mf and fd are the caller's (a fetch) */
	const proto_have *have;  /* NULL: the whole file */
	int root_fd;             /* the shared directory, or -1 */
	char *rel;               /* the file beneath root_fd */
	uint64_t dev, ino;       /* the file that was chunked; ino 0: any */
	uint8_t *checked;        /* a bit per manifest chunk whose bytes were
	                          * hashed and matched; NULL: chunked here */
	int bad;                 /* a chunk did not match: never served */
	proto_merkle *tree;      /* above the layer, once a run was asked */
};

struct proto_store {
	struct entry *entries;
	size_t count, cap;
	size_t *slots;    /* index + 1 into entries; 0 is empty */
	size_t nslots;    /* a power of two, at least twice count */
	proto_tree **trees; /* the trees shared, in the order added; few,
	                     * so looked up one by one */
	size_t ntrees;
	/* Ids withdrawn (proto_store_remove), the last PROTO_STORE_GONE_MAX
	 * in a ring: so a node can say "changed here", not "never had it". */
	uint8_t gone[PROTO_STORE_GONE_MAX][PROTO_HASH_LEN];
	size_t ngone, gone_next;
};

proto_store *
proto_store_new(void)
{
	return calloc(1, sizeof(proto_store));
}

void
proto_store_free(proto_store *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->count; i++) {
		proto_merkle_free(st->entries[i].tree);
		free(st->entries[i].rel);
		free(st->entries[i].checked);
		if (st->entries[i].borrowed)
			continue;
		if (st->entries[i].fd >= 0)
			close(st->entries[i].fd);
		proto_manifest_free(st->entries[i].mf);
	}
	for (size_t i = 0; i < st->ntrees; i++)
		proto_tree_free(st->trees[i]);
	free(st->trees);
	free(st->entries);
	free(st->slots);
	free(st);
}

static size_t
slot_of(const uint8_t id[PROTO_HASH_LEN], size_t nslots)
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	return (size_t)(h & (nslots - 1));
}

static size_t *
find_slot(const proto_store *st, const uint8_t id[PROTO_HASH_LEN])
{
	size_t i = slot_of(id, st->nslots);

	for (;; i = (i + 1) & (st->nslots - 1)) {
		size_t e = st->slots[i];
		if (e == 0 ||
		    memcmp(st->entries[e - 1].mf->id, id, PROTO_HASH_LEN) == 0)
			return &st->slots[i];
	}
}

static int
grow_table(proto_store *st)
{
	size_t nslots = st->nslots ? st->nslots * 2 : 64, *old = st->slots;
	size_t oldn = st->nslots;

	if ((st->slots = calloc(nslots, sizeof(*st->slots))) == NULL) {
		st->slots = old;
		return PROTO_ERR_NOMEM;
	}
	st->nslots = nslots;
	for (size_t i = 0; i < oldn; i++)
		if (old[i] != 0)
			*find_slot(st, st->entries[old[i] - 1].mf->id) = old[i];
	free(old);
	return 0;
}

static int
add_entry(proto_store *st, const struct entry *add)
{
	size_t *slot;

	if ((st->count + 1) * 2 > st->nslots && grow_table(st) != 0)
		return PROTO_ERR_NOMEM;
	slot = find_slot(st, add->mf->id);
	if (*slot != 0) {
		PLOG(PROTO_LOG_STORE, PROTO_LOG_DEBUG, "%s: the same bytes as "
		    "%s; kept once", add->mf->path ? add->mf->path :
		    add->mf->name, st->entries[*slot - 1].mf->path ?
		    st->entries[*slot - 1].mf->path : "?");
		return 1;
	}
	if (st->count == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		struct entry *e = realloc(st->entries, cap * sizeof(*e));
		if (e == NULL)
			return PROTO_ERR_NOMEM;
		st->entries = e;
		st->cap = cap;
	}
	st->entries[st->count] = *add;
	*slot = ++st->count;
	if (proto__plog_levels[PROTO_LOG_STORE] >= PROTO_LOG_DEBUG) {
		char hex[PROTO_ID_HEX_LEN + 1];
		const proto_manifest *mf = add->mf;
		proto_hex_encode(mf->id, PROTO_HASH_LEN, hex);
		proto__plog_emit(PROTO_LOG_STORE, PROTO_LOG_DEBUG, "added %s: %s, %llu "
		    "bytes in %llu chunks of %u", hex, add->rel ? add->rel :
		    mf->path ? mf->path : mf->name,
		    (unsigned long long)mf->size,
		    (unsigned long long)mf->nchunks, mf->chunk_size);
	}
	return 0;
}

/* Whoever made mf, its path may name other bytes than it describes: each
 * chunk is hashed before it is first served. */
int
proto_store_add(proto_store *st, proto_manifest *mf)
{
	struct entry e = { mf, -1, 0, NULL, -1, NULL, 0, 0, NULL, 0, NULL };
	int rc;

	if (!proto_manifest_has_layer(mf)) {
		proto_manifest_free(mf);
		return PROTO_ERR_INVALID;
	}
	if ((e.checked = calloc(1, proto_have_bytes(mf->nchunks))) == NULL) {
		proto_manifest_free(mf);
		return PROTO_ERR_NOMEM;
	}
	if ((rc = add_entry(st, &e)) != 0) {
		free(e.checked);
		proto_manifest_free(mf);
	}
	return rc;
}

int
proto_store_add_partial(proto_store *st, proto_manifest *mf, int fd,
    const proto_have *have)
{
	struct entry e = { mf, fd, 1, have, -1, NULL, 0, 0, NULL, 0, NULL };

	return add_entry(st, &e);
}

int
proto_store_add_beneath(proto_store *st, proto_manifest *mf, int root_fd,
    const char *rel, uint64_t dev, uint64_t ino)
{
	struct entry e = { mf, -1, 0, NULL, root_fd, strdup(rel), dev, ino,
	    NULL, 0, NULL };
	int rc;

	if (!proto_manifest_has_layer(mf)) {
		free(e.rel);
		proto_manifest_free(mf);
		return PROTO_ERR_INVALID;
	}
	if (e.rel == NULL) {
		proto_manifest_free(mf);
		return PROTO_ERR_NOMEM;
	}
	if ((rc = add_entry(st, &e)) != 0) {
		free(e.rel);
		proto_manifest_free(mf);
	}
	return rc;
}

/* Without openat2 (Linux before 5.6): one component at a time, none of them
 * a link, none of them "..". */
int
proto__store_open_by_components(int root_fd, const char *rel)
{
	char *copy = strdup(rel), *save = NULL, *part, *next;
	int dir = root_fd, fd = -1;

	if (copy == NULL) {
		errno = ENOMEM;
		return PROTO_ERR_SYSTEM;
	}
	errno = ENOENT; /* a path of nothing but slashes */
	for (part = strtok_r(copy, "/", &save); part != NULL; part = next) {
		int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
		next = strtok_r(NULL, "/", &save);
		if (strcmp(part, "..") == 0) {
			if (dir != root_fd)
				close(dir);
			errno = EXDEV;
			fd = -1;
			break;
		}
		fd = openat(dir, part, flags | (next ? O_DIRECTORY : 0));
		if (dir != root_fd)
			close(dir);
		if (fd < 0 || next == NULL)
			break;
		dir = fd;
	}
	free(copy);
	return fd < 0 ? PROTO_ERR_SYSTEM : fd;
}

int
proto_open_beneath(int root_fd, const char *rel)
{
	struct open_how how;
	long fd;

	if (rel[0] == '/' || rel[0] == '\0') {
		errno = EXDEV;
		return PROTO_ERR_SYSTEM;
	}
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
	    RESOLVE_NO_MAGICLINKS;
	fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		return proto__store_open_by_components(root_fd, rel);
	return fd < 0 ? PROTO_ERR_SYSTEM : (int)fd;
}

static struct entry *
find_entry(const proto_store *st, const uint8_t id[PROTO_HASH_LEN])
{
	size_t i;

	if (st->nslots == 0 || (i = *find_slot(st, id)) == 0)
		return NULL;
	return &st->entries[i - 1];
}

void
proto_store_set_have(proto_store *st, const uint8_t id[PROTO_HASH_LEN],
    const proto_have *have)
{
	struct entry *e = find_entry(st, id);

	if (e != NULL)
		e->have = have;
}

const proto_have *
proto_store_have(const proto_store *st, const uint8_t id[PROTO_HASH_LEN])
{
	const struct entry *e = find_entry(st, id);

	return e ? e->have : NULL;
}

int
proto_store_holds(const proto_store *st, const uint8_t id[PROTO_HASH_LEN],
    uint32_t chunk_size, uint64_t index)
{
	const struct entry *e = find_entry(st, id);

	if (e == NULL)
		return 0;
	if (e->have == NULL)
		return index < proto_chunk_count(e->mf->size, chunk_size);
	return proto_have_covers(e->have, e->mf->chunk_size, e->mf->size,
	    chunk_size, index);
}

const proto_manifest *
proto_store_find(const proto_store *st, const uint8_t id[PROTO_HASH_LEN])
{
	size_t e;

	if (st->nslots == 0)
		return NULL;
	e = *find_slot(st, id);
	return e ? st->entries[e - 1].mf : NULL;
}

size_t
proto_store_count(const proto_store *st)
{
	return st->count;
}

const proto_manifest *
proto_store_get(const proto_store *st, size_t i)
{
	return i < st->count ? st->entries[i].mf : NULL;
}

const char *
proto_store_rel(const proto_store *st, size_t i)
{
	return i < st->count ? st->entries[i].rel : NULL;
}

int
proto_store_add_tree(proto_store *st, proto_tree *t)
{
	proto_tree **grown;

	if (!t->finished) {
		proto_tree_free(t);
		return PROTO_ERR_INVALID;
	}
	if (proto_store_find_tree(st, t->id) != NULL) {
		proto_tree_free(t);
		return 1;
	}
	if ((grown = realloc(st->trees, (st->ntrees + 1) *
	    sizeof(*st->trees))) == NULL) {
		proto_tree_free(t);
		return PROTO_ERR_NOMEM;
	}
	st->trees = grown;
	st->trees[st->ntrees++] = t;
	return 0;
}

const proto_tree *
proto_store_find_tree(const proto_store *st, const uint8_t id[PROTO_HASH_LEN])
{
	for (size_t i = 0; i < st->ntrees; i++)
		if (memcmp(st->trees[i]->id, id, PROTO_HASH_LEN) == 0)
			return st->trees[i];
	return NULL;
}

size_t
proto_store_tree_count(const proto_store *st)
{
	return st->ntrees;
}

const proto_tree *
proto_store_get_tree(const proto_store *st, size_t i)
{
	return i < st->ntrees ? st->trees[i] : NULL;
}

/* A FIFO put in the file's place would block the open, and with it the
 * whole event loop: opened without blocking, and kept only when it is a
 * regular file, the one that was chunked. */
static int
open_entry(struct entry *e)
{
	struct stat sb;
	int fd;

	if (e->rel != NULL)
		fd = proto_open_beneath(e->root_fd, e->rel);
	else if (e->mf->path == NULL)
		return PROTO_ERR_INVALID;
	else
		fd = open(e->mf->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
		    O_NONBLOCK);
	if (fd < 0)
		return PROTO_ERR_SYSTEM;
	if (fstat(fd, &sb) != 0) {
		close(fd);
		return PROTO_ERR_SYSTEM;
	}
	if (!S_ISREG(sb.st_mode) || (e->ino != 0 &&
	    ((uint64_t)sb.st_dev != e->dev || (uint64_t)sb.st_ino != e->ino))) {
		close(fd);
		return PROTO_ERR_MISMATCH;
	}
	PLOG(PROTO_LOG_STORE, PROTO_LOG_TRACE, "opened %s", e->rel ? e->rel :
	    e->mf->path);
	e->fd = fd;
	return 0;
}

int
proto_store_open(proto_store *st, const uint8_t id[PROTO_HASH_LEN], int *fd)
{
	struct entry *e = find_entry(st, id);
	struct stat sb;
	int rc;

	if (e == NULL)
		return PROTO_ERR_INVALID;
	if (e->borrowed) {
		/* A file being fetched: its holder answers for what it has. */
		*fd = e->fd;
		return 0;
	}
	if (e->bad)
		return PROTO_ERR_MISMATCH;
	if (e->fd < 0 && (rc = open_entry(e)) != 0)
		return rc;
	if (fstat(e->fd, &sb) != 0)
		return PROTO_ERR_SYSTEM;
	if ((uint64_t)sb.st_size != e->mf->size)
		return PROTO_ERR_MISMATCH;
	*fd = e->fd;
	return 0;
}

static int
read_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pread(fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return PROTO_ERR_SYSTEM;
		if (n == 0)
			return PROTO_ERR_MISMATCH; /* shorter than it was */
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int
proto_store_check(proto_store *st, const uint8_t id[PROTO_HASH_LEN],
    uint64_t off, size_t len)
{
	struct entry *e = find_entry(st, id);
	uint8_t *buf = NULL, h[PROTO_HASH_LEN];
	uint64_t first, last, cs;
	int rc = 0;

	if (e == NULL)
		return PROTO_ERR_INVALID;
	if (e->bad)
		return PROTO_ERR_MISMATCH;
	if (e->checked == NULL)
		return 0;
	if (e->fd < 0)
		return PROTO_ERR_INVALID;
	cs = e->mf->chunk_size;
	first = off / cs;
	last = len > 0 ? (off + len - 1) / cs : first;
	for (uint64_t i = first; i <= last && i < e->mf->nchunks; i++) {
		size_t clen = proto_chunk_len(e->mf->size, cs, i);
		if (e->checked[i / 8] & (0x80 >> (i % 8)))
			continue;
		if (buf == NULL && (buf = malloc(cs)) == NULL)
			return PROTO_ERR_NOMEM;
		if ((rc = read_full(e->fd, buf, clen, i * cs)) != 0)
			break;
		if ((rc = proto_hash_chunk(buf, clen, cs, h)) != 0)
			break;
		if (memcmp(h, e->mf->chunks + i * PROTO_HASH_LEN,
		    PROTO_HASH_LEN) != 0) {
			PLOG(PROTO_LOG_STORE, PROTO_LOG_DEBUG, "%s: chunk %llu "
			    "does not match the manifest", e->mf->path,
			    (unsigned long long)i);
			e->bad = 1;
			rc = PROTO_ERR_MISMATCH;
			break;
		}
		e->checked[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	}
	free(buf);
	return rc;
}

int
proto_store_hashes(proto_store *st, const uint8_t id[PROTO_HASH_LEN],
    uint32_t chunk_size, uint64_t index, uint32_t count,
    uint32_t proof_layers, uint8_t *hashes, size_t *nhashes, uint8_t *proof,
    size_t *nproof)
{
	struct entry *e = find_entry(st, id);
	int rc;

	/* A file still being fetched answers once its layer is whole: what
	 * it holds then never changes. */
	if (e == NULL || !proto_manifest_has_layer(e->mf) ||
	    chunk_size < e->mf->chunk_size)
		return PROTO_ERR_INVALID;
	if (e->tree == NULL && (rc = proto_merkle_new(e->mf->chunks,
	    e->mf->nchunks, e->mf->chunk_size, e->mf->size, &e->tree)) != 0)
		return rc;
	return proto_merkle_run(e->tree, chunk_size, index, count, proof_layers,
	    hashes, nhashes, proof, nproof);
}

/* The slots again from the entries: after a removal, when probe runs may
 * have a hole. */
static void
rehash(proto_store *st)
{
	memset(st->slots, 0, st->nslots * sizeof(*st->slots));
	for (size_t i = 0; i < st->count; i++)
		*find_slot(st, st->entries[i].mf->id) = i + 1;
}

static void
remember_gone(proto_store *st, const uint8_t id[PROTO_HASH_LEN])
{
	if (proto_store_withdrawn(st, id))
		return;
	memcpy(st->gone[st->gone_next], id, PROTO_HASH_LEN);
	st->gone_next = (st->gone_next + 1) % PROTO_STORE_GONE_MAX;
	if (st->ngone < PROTO_STORE_GONE_MAX)
		st->ngone++;
}

int
proto_store_remove(proto_store *st, const uint8_t id[PROTO_HASH_LEN])
{
	size_t e = st->nslots ? *find_slot(st, id) : 0;
	struct entry *en;

	for (size_t i = 0; i < st->ntrees; i++)
		if (memcmp(st->trees[i]->id, id, PROTO_HASH_LEN) == 0) {
			proto_tree_free(st->trees[i]);
			memmove(&st->trees[i], &st->trees[i + 1],
			    (st->ntrees - i - 1) * sizeof(*st->trees));
			st->ntrees--;
			remember_gone(st, id);
			return 0;
		}
	if (e == 0)
		return PROTO_ERR_INVALID;
	en = &st->entries[e - 1];
	if (en->borrowed)
		return PROTO_ERR_INVALID;
	proto_merkle_free(en->tree);
	free(en->rel);
	free(en->checked);
	if (en->fd >= 0)
		close(en->fd);
	proto_manifest_free(en->mf);
	memmove(en, en + 1, (st->count - e) * sizeof(*en));
	st->count--;
	rehash(st);
	remember_gone(st, id);
	return 0;
}

int
proto_store_withdrawn(const proto_store *st, const uint8_t id[PROTO_HASH_LEN])
{
	for (size_t i = 0; i < st->ngone; i++)
		if (memcmp(st->gone[i], id, PROTO_HASH_LEN) == 0)
			return 1;
	return 0;
}
