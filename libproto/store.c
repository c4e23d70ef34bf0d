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
#include <unistd.h>

#include "error.h"
#include "internal.h"
#include "store.h"

struct entry {
	proto_manifest *mf;
	int fd;
};

struct proto_store {
	struct entry *entries;
	size_t count, cap;
	size_t *slots;    /* index + 1 into entries; 0 is empty */
	size_t nslots;    /* a power of two, at least twice count */
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
		if (st->entries[i].fd >= 0)
			close(st->entries[i].fd);
		proto_manifest_free(st->entries[i].mf);
	}
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

int
proto_store_add(proto_store *st, proto_manifest *mf)
{
	size_t *slot;

	if ((st->count + 1) * 2 > st->nslots && grow_table(st) != 0) {
		proto_manifest_free(mf);
		return PROTO_ERR_NOMEM;
	}
	slot = find_slot(st, mf->id);
	if (*slot != 0) {
		PLOG(PROTO_LOG_STORE, PROTO_LOG_DEBUG, "%s: the same bytes as "
		    "%s; kept once", mf->path ? mf->path : mf->name,
		    st->entries[*slot - 1].mf->path);
		proto_manifest_free(mf);
		return 1;
	}
	if (st->count == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		struct entry *e = realloc(st->entries, cap * sizeof(*e));
		if (e == NULL) {
			proto_manifest_free(mf);
			return PROTO_ERR_NOMEM;
		}
		st->entries = e;
		st->cap = cap;
	}
	st->entries[st->count].mf = mf;
	st->entries[st->count].fd = -1;
	*slot = ++st->count;
	if (plog_levels[PROTO_LOG_STORE] >= PROTO_LOG_DEBUG) {
		char hex[PROTO_ID_HEX_LEN + 1];
		proto_hex_encode(mf->id, PROTO_HASH_LEN, hex);
		plog_emit(PROTO_LOG_STORE, PROTO_LOG_DEBUG, "added %s: %s, %llu "
		    "bytes in %llu chunks of %u", hex, mf->path,
		    (unsigned long long)mf->size,
		    (unsigned long long)mf->nchunks, mf->chunk_size);
	}
	return 0;
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

int
proto_store_open(proto_store *st, const uint8_t id[PROTO_HASH_LEN], int *fd)
{
	struct entry *e;
	struct stat sb;
	size_t i;

	if (st->nslots == 0 || (i = *find_slot(st, id)) == 0)
		return PROTO_ERR_INVALID;
	e = &st->entries[i - 1];
	if (e->fd < 0) {
		if (e->mf->path == NULL)
			return PROTO_ERR_INVALID;
		e->fd = open(e->mf->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (e->fd < 0)
			return PROTO_ERR_SYSTEM;
		PLOG(PROTO_LOG_STORE, PROTO_LOG_TRACE, "opened %s", e->mf->path);
	}
	if (fstat(e->fd, &sb) != 0)
		return PROTO_ERR_SYSTEM;
	if ((uint64_t)sb.st_size != e->mf->size)
		return PROTO_ERR_MISMATCH;
	*fd = e->fd;
	return 0;
}
