/*
 * Where the verified chunks of one fetched file go: to a stream (a pipe,
 * stdout) in order, holding the chunks that arrive early in a bounded
 * window, or to FILE.part at each chunk's offset, renamed to FILE once
 * complete. A FILE.part an earlier run left is reused: the chunks in it
 * that verify against the manifest are kept (proto_output_resume), so only
 * the rest need fetching. The output writes; it never asks for anything.
 */
#ifndef PROTO_OUTPUT_H
#define PROTO_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "have.h"
#include "manifest.h"
#include "store.h"

typedef struct proto_output proto_output;

#define PROTO_OUTPUT_WINDOW (8u << 20) /* default bytes held for a stream */

typedef struct proto_output_config {
	proto_manifest *mf;       /* the file's; borrowed, not changed; must
	                           * outlive the output */
	const char *path;         /* the file to end as; NULL: write to fd */
	const char *part_path;    /* where it grows (path + ".part"); needed
	                           * with path; both copied */
	int fd;                   /* without path: the stream, in order; stays
	                           * the caller's (never closed). A pipe whose
	                           * reader left raises SIGPIPE unless the
	                           * caller ignores it */
	size_t window_bytes;      /* without path: chunks held while an
	                           * earlier one is missing, at least 2;
	                           * 0: PROTO_OUTPUT_WINDOW */
	int repair;               /* with path: when no part_path is there and
	                           * path is a regular file of ours alone (no
	                           * other names, no group or other write) of
	                           * the manifest's size, it is written in
	                           * place: resumed like a part, never renamed */
} proto_output_config;

/*
 * A new output in *out (the caller frees it with proto_output_free), or
 * with path, FILE.part opened read-write: the one an earlier run left, else
 * a new one (mode 0644). Never through a symbolic link left in its place,
 * never one made between our look and our creating it, and only a regular
 * file of ours alone. Returns 0; PROTO_ERR_SYSTEM with errno set when it
 * cannot be opened (ELOOP: part_path is a symbolic link; EISDIR: a
 * directory; EPERM: it belongs to another user, group or others may write
 * it, or it has other names: hard links), left as it is;
 * PROTO_ERR_INVALID when it is not a regular file (a FIFO, a device) or the
 * config is not valid; PROTO_ERR_NOMEM. *out is set only on success.
 */
int proto_output_new(const proto_output_config *cfg, proto_output **out);

/* Closes FILE.part (not a caller's fd) and frees the chunks held early.
 * NULL does nothing. */
void proto_output_free(proto_output *o);

/*
 * With path: reads FILE.part and marks every chunk there that verifies
 * against the manifest as written, calling held(index, ctx) for each (in
 * order), and sets *kept (may be NULL) to their count. Ranges never
 * written (holes) are not read, nor chunks whose hashes the manifest does
 * not hold yet; a chunk that does not verify is left to be fetched and
 * overwritten. Only once, before the first proto_output_write.
 * Returns 0 (also for a stream, which holds nothing), or PROTO_ERR_NOMEM
 * or PROTO_ERR_SYSTEM (errno set; the chunks marked so far stay).
 */
int proto_output_resume(proto_output *o,
    void (*held)(uint64_t index, void *ctx), void *ctx, uint64_t *kept);

/* The same for chunks first to first + count - 1 only, and only those
 * whose hashes the manifest holds and that are not written yet: a
 * manifest that came without its layer is resumed run by run as its
 * hashes arrive (the fetch's on_hashes). Before any of those chunks is
 * written; returns as proto_output_resume. */
int proto_output_resume_range(proto_output *o, uint64_t first, uint64_t count,
    void (*held)(uint64_t index, void *ctx), void *ctx, uint64_t *kept);

/*
 * Chunk index, already verified: data (len bytes, the chunk's full length)
 * is borrowed for the call. With path it is written at its offset; to a
 * stream, it and the chunks it releases from the window are written when
 * it is the next in order, else a copy is held. A chunk already taken is
 * ignored. Returns 0; PROTO_ERR_SYSTEM with errno set when a write failed
 * (EPIPE: the stream's reader left); PROTO_ERR_NOMEM; PROTO_ERR_INVALID
 * for an index past the file, a wrong length, or (a stream) an index past
 * proto_output_limit. After a failure the output is fit only for
 * proto_output_free.
 */
int proto_output_write(proto_output *o, uint64_t index, const uint8_t *data,
    size_t len);

/* A stream: the first chunk index the window cannot hold yet, to ask for
 * nothing from there on (proto_fetch_set_order); it moves as chunks are
 * written. With path: 0, for any order. */
uint64_t proto_output_limit(const proto_output *o);

/*
 * Every chunk is written: with path, FILE.part gets the file's length (it
 * grew only as far as chunks were written), reaches the disk, and is
 * renamed to FILE (written in place: not renamed); the descriptor stays
 * open, now on FILE. A stream has
 * nothing left to do. Returns 0, or PROTO_ERR_SYSTEM with errno set
 * (FILE.part is left as it is), or PROTO_ERR_INVALID when chunks are
 * missing.
 */
int proto_output_finish(proto_output *o);

/* The file being written, for messages: FILE when repaired in place (see
 * repair), else FILE.part; NULL for a stream. Borrowed from o. */
const char *proto_output_file(const proto_output *o);

/* The chunks written (with path: also those kept by proto_output_resume),
 * in the manifest's chunk size; valid until proto_output_free. */
const proto_have *proto_output_have(const proto_output *o);

/*
 * With path: lends FILE.part to st as a file being fetched, served chunk by
 * chunk as proto_output_have says; the output must outlive st's entry (free
 * st first). Returns as proto_store_add_partial, or PROTO_ERR_INVALID for
 * a stream.
 */
int proto_output_share(proto_output *o, proto_store *st);

#endif
