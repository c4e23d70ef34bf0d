/*
 * The output side of a fetch: verified chunks to a stream in order through
 * a ring of early chunks, or to FILE.part at their offsets, renamed when
 * complete. The have bitfield is what is on disk (or written to the
 * stream), which is what a node may serve from FILE.part.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "hash.h"
#include "output.h"

struct proto_output {
	proto_manifest *mf;
	char *path, *part_path;    /* NULL: a stream */
	int fd;
	proto_have have;
	uint64_t next_write;       /* stream: first chunk not yet written */
	uint8_t **window;          /* stream: early chunks by index % size */
	uint64_t window_chunks;
	int in_place;              /* writing FILE itself: no rename */
};

/* Opens FILE.part as the header says: a descriptor, -1 with errno set, or
 * -2 for what is not a regular file (or cannot be looked at: not known to
 * be one). The checks are on the opened file, so nothing can be swapped in
 * after them. In a shared directory (/tmp) another user can leave a .part
 * for us to fill: whoever can still write it after our verification owns
 * the file we end with, so only one that is ours alone is taken. */
static int
open_part(const char *path)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0644);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -2;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) ||
	    st.st_nlink != 1) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* FILE itself, to be repaired in place: its chunks that verify are kept
 * and only the rest written over. Only when no FILE.part is there (an
 * earlier run's goes first), and only a regular file of ours alone with
 * the manifest's size: writing into a hard-linked or shared file would
 * change it under other names and users, and one of another size is not a
 * damaged copy. A descriptor, or -1 (then FILE.part is used as before). */
static int
open_existing(const char *path, const char *part_path, uint64_t size)
{
	struct stat st;
	int fd;

	if (lstat(part_path, &st) == 0 || errno != ENOENT)
		return -1;
	if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) ||
	    st.st_nlink != 1 || (uint64_t)st.st_size != size) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
setup_window(proto_output *o, size_t window_bytes)
{
	if (window_bytes == 0)
		window_bytes = PROTO_OUTPUT_WINDOW;
	o->window_chunks = window_bytes / o->mf->chunk_size;
	if (o->window_chunks < 2)
		o->window_chunks = 2;
	o->window = calloc(o->window_chunks, sizeof(*o->window));
	return o->window == NULL ? PROTO_ERR_NOMEM : 0;
}

int
proto_output_new(const proto_output_config *cfg, proto_output **out)
{
	proto_output *o;
	int rc;

	if (cfg->mf == NULL || cfg->mf->chunk_size == 0 ||
	    (cfg->path != NULL && cfg->part_path == NULL) ||
	    (cfg->path == NULL && cfg->fd < 0))
		return PROTO_ERR_INVALID;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return PROTO_ERR_NOMEM;
	o->mf = cfg->mf;
	o->fd = -1;
	if (proto_have_init(&o->have, o->mf->nchunks) != 0) {
		rc = PROTO_ERR_NOMEM;
		goto fail;
	}
	if (cfg->path == NULL) {
		o->fd = cfg->fd;
		if ((rc = setup_window(o, cfg->window_bytes)) != 0)
			goto fail;
		*out = o;
		return 0;
	}
	if ((o->path = strdup(cfg->path)) == NULL ||
	    (o->part_path = strdup(cfg->part_path)) == NULL) {
		rc = PROTO_ERR_NOMEM;
		goto fail;
	}
	if (cfg->repair &&
	    (o->fd = open_existing(o->path, o->part_path, o->mf->size)) >= 0) {
		o->in_place = 1;
		*out = o;
		return 0;
	}
	if ((o->fd = open_part(o->part_path)) < 0) {
		rc = o->fd == -2 ? PROTO_ERR_INVALID : PROTO_ERR_SYSTEM;
		o->fd = -1;
		goto fail;
	}
	*out = o;
	return 0;
fail:
	{
		int e = errno;
		proto_output_free(o);
		errno = e;
	}
	return rc;
}

void
proto_output_free(proto_output *o)
{
	if (o == NULL)
		return;
	if (o->path != NULL && o->fd >= 0)
		close(o->fd);
	for (uint64_t i = 0; o->window != NULL && i < o->window_chunks; i++)
		free(o->window[i]);
	free(o->window);
	proto_have_free(&o->have);
	free(o->path);
	free(o->part_path);
	free(o);
}

int
proto_output_resume(proto_output *o,
    void (*held)(uint64_t index, void *ctx), void *ctx, uint64_t *kept)
{
	return proto_output_resume_range(o, 0, o->mf->nchunks, held, ctx, kept);
}

int
proto_output_resume_range(proto_output *o, uint64_t first, uint64_t count,
    void (*held)(uint64_t index, void *ctx), void *ctx, uint64_t *kept)
{
	const proto_manifest *mf = o->mf;
	uint64_t n = 0, end;
	struct stat st;
	uint8_t *buf;
	int rc = 0;

	if (kept != NULL)
		*kept = 0;
	if (o->path == NULL || first >= mf->nchunks)
		return 0;
	end = count < mf->nchunks - first ? first + count : mf->nchunks;
	if ((buf = malloc(mf->chunk_size)) == NULL)
		return PROTO_ERR_NOMEM;
	if (fstat(o->fd, &st) != 0) {
		free(buf);
		return PROTO_ERR_SYSTEM;
	}
	for (uint64_t i = first; i < end; i++) {
		uint64_t off = i * (uint64_t)mf->chunk_size;
		size_t len = proto_chunk_len(mf->size, mf->chunk_size, i);
		ssize_t got;
		off_t data;

		/* A file cut short ends the chunks it can hold. */
		if (off + len > (uint64_t)st.st_size || len == 0)
			break;
		/* A hash not held yet (a manifest without its layer): asked
		 * again when it is. Already written: nothing to read. */
		if (!proto_manifest_hash_known(mf, i) ||
		    proto_have_test(&o->have, i))
			continue;
		/* Never-written ranges are holes: nothing to hash there. */
		data = lseek(o->fd, (off_t)off, SEEK_DATA);
		if (data < 0 || (uint64_t)data >= off + len)
			continue;
		if ((got = pread(o->fd, buf, len, (off_t)off)) != (ssize_t)len) {
			rc = got < 0 ? PROTO_ERR_SYSTEM : 0;
			break;
		}
		if (proto_manifest_check_chunk(mf, i, buf, len) == 0 &&
		    proto_have_set(&o->have, i)) {
			n++;
			if (held != NULL)
				held(i, ctx);
		}
	}
	free(buf);
	if (kept != NULL)
		*kept = n;
	return rc;
}

/* Writes all of len bytes at off (with path) or to the stream; 0, or
 * PROTO_ERR_SYSTEM with errno set. */
static int
put(proto_output *o, const uint8_t *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = o->path != NULL ?
		    pwrite(o->fd, p, len, (off_t)off) : write(o->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return PROTO_ERR_SYSTEM;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes the chunks now in order at the front of the window. */
static int
flush_window(proto_output *o)
{
	const proto_manifest *mf = o->mf;

	while (o->next_write < mf->nchunks) {
		uint64_t slot = o->next_write % o->window_chunks;
		uint8_t *data = o->window[slot];
		int rc;

		if (data == NULL)
			break;
		rc = put(o, data, proto_chunk_len(mf->size, mf->chunk_size,
		    o->next_write), 0);
		if (rc != 0)
			return rc;
		o->window[slot] = NULL;
		free(data);
		proto_have_set(&o->have, o->next_write++);
	}
	return 0;
}

int
proto_output_write(proto_output *o, uint64_t index, const uint8_t *data,
    size_t len)
{
	const proto_manifest *mf = o->mf;
	uint8_t **slot;
	int rc;

	if (index >= mf->nchunks ||
	    len != proto_chunk_len(mf->size, mf->chunk_size, index))
		return PROTO_ERR_INVALID;
	if (proto_have_test(&o->have, index))
		return 0;
	if (o->path != NULL) {
		rc = put(o, data, len, index * (uint64_t)mf->chunk_size);
		if (rc == 0)
			proto_have_set(&o->have, index);
		return rc;
	}
	if (index >= proto_output_limit(o))
		return PROTO_ERR_INVALID;
	if (index == o->next_write) {
		if ((rc = put(o, data, len, 0)) != 0)
			return rc;
		proto_have_set(&o->have, o->next_write++);
		return flush_window(o);
	}
	slot = &o->window[index % o->window_chunks];
	if (*slot != NULL)
		return 0;
	if ((*slot = malloc(len ? len : 1)) == NULL)
		return PROTO_ERR_NOMEM;
	memcpy(*slot, data, len);
	return 0;
}

uint64_t
proto_output_limit(const proto_output *o)
{
	return o->path != NULL ? 0 : o->next_write + o->window_chunks;
}

int
proto_output_finish(proto_output *o)
{
	if (o->have.count != o->mf->nchunks)
		return PROTO_ERR_INVALID;
	if (o->path == NULL)
		return 0;
	/* The file grew as chunks were written; ext4 writes into a
	 * preallocated hole many times slower than it appends, so it gets its
	 * full length only now (and loses any excess). */
	if (ftruncate(o->fd, (off_t)o->mf->size) != 0 ||
	    fdatasync(o->fd) != 0 ||
	    (!o->in_place && rename(o->part_path, o->path) != 0))
		return PROTO_ERR_SYSTEM;
	return 0;
}

const char *
proto_output_file(const proto_output *o)
{
	if (o->path == NULL)
		return NULL;
	return o->in_place ? o->path : o->part_path;
}

const proto_have *
proto_output_have(const proto_output *o)
{
	return &o->have;
}

int
proto_output_share(proto_output *o, proto_store *st)
{
	if (o->path == NULL)
		return PROTO_ERR_INVALID;
	return proto_store_add_partial(st, o->mf, o->fd, &o->have);
}
