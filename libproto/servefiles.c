/*
 * GET_FILES, answered (docs/PROTOCOL.md section 4): the bytes of many
 * small files in one FILES, so that a tree of thousands of them costs a
 * round trip per few hundred, not per file. Each file is read whole from
 * the store, checked as a chunk served would be; one not held whole here,
 * larger than a block, or unreadable is answered nil. The answer stops
 * short, its entries fewer than the ids, where the next would not fit in
 * the asker's maxframe: the asker asks again for the rest.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "frame.h"
#include "merkle.h"
#include "server_private.h"

/* Around the entries of a FILES frame: its length, the array headers (5
 * and 3 bytes at most), the type (1) and the rid (5). */
#define FILES_FRAME_OVERHEAD (PROTO_FRAME_HEADER + 5 + 1 + 5 + 3)
/* An entry's header: a bin 16 at most, for PROTO_FILES_SIZE_MAX bytes. */
#define FILES_ENTRY_OVERHEAD 3

void
proto__server_request_done(struct request *r)
{
	free(r->ids);
	r->ids = NULL;
	r->nids = 0;
}

/* Reads the whole file id into buf (room for avail bytes); its length,
 * -1 when it is not to be sent, or -2 when it is larger than avail (then
 * nothing was read: the size is known from the manifest). */
static long
read_small(proto_server *srv, const uint8_t *id, uint8_t *buf, size_t avail)
{
	const proto_manifest *mf = proto_store_find(srv->store, id);
	ssize_t n;
	int fd, rc;

	if (mf == NULL || mf->size > PROTO_FILES_SIZE_MAX ||
	    !proto_store_holds(srv->store, id, mf->chunk_size, 0))
		return -1;
	if (mf->size > avail)
		return -2;
	if ((rc = proto_store_open(srv->store, id, &fd)) != 0 ||
	    (rc = proto_store_check(srv->store, id, 0, mf->size)) != 0) {
		proto__server_say(srv, PROTO_LOG_WARN, "%s: %s",
		    mf->path ? mf->path : mf->name,
		    rc == PROTO_ERR_SYSTEM ? strerror(errno) :
		    rc == PROTO_ERR_MISMATCH ? "not the file its manifest "
		    "describes (changed on disk since it was chunked?); not "
		    "served" : proto_strerror(rc));
		return -1;
	}
	if ((n = pread(fd, buf, mf->size, 0)) != (ssize_t)mf->size)
		return -1;
	return (long)n;
}

void
proto__server_answer_files(proto_server *srv, proto_conn *c,
    const struct request *r)
{
	proto_file_data files[PROTO_FILES_MAX];
	size_t room = proto_conn_peer_max_frame(c), used =
	    FILES_FRAME_OVERHEAD, n = 0, off = 0, cap;
	uint8_t *buf;
	proto_msg m;
	int rc;

	if (r->ids_bad) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_BAD_REQUEST,
		    "more than 256 ids, or an id that is not 32 bytes");
		return;
	}
	/* The most the answer can carry, whatever the files turn out to
	 * be: at most one block each, and no more than the asker's frame. */
	cap = (size_t)r->nids * PROTO_FILES_SIZE_MAX;
	if (cap > room)
		cap = room;
	if ((buf = malloc(cap + 1)) == NULL) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_BUSY,
		    "out of memory; ask again later");
		return;
	}
	for (; n < r->nids; n++) {
		/* The data so far is within room - used: off + avail <= cap. */
		size_t avail = used + FILES_ENTRY_OVERHEAD < room ?
		    room - used - FILES_ENTRY_OVERHEAD : 0;
		uint8_t *p = buf + off;
		long len = read_small(srv, r->ids + n * PROTO_HASH_LEN, p,
		    avail);
		memset(&files[n], 0, sizeof(files[n]));
		if (len == -2) {
			/* The rest is asked again; one that fits in no
			 * answer of this peer's is nil, or it would be
			 * asked for ever. */
			if (n > 0)
				break;
			len = -1;
		}
		if (len < 0) {
			used += 1;
			continue;
		}
		files[n].held = 1;
		files[n].data = p;
		files[n].len = (size_t)len;
		used += FILES_ENTRY_OVERHEAD + (size_t)len;
		off += (size_t)len;
	}
	proto_msg_init(&m, PROTO_MSG_FILES);
	m.rid = r->rid;
	m.files = files;
	m.nfiles_in = n;
	rc = proto_conn_send(c, &m);
	if (rc == PROTO_ERR_TOO_BIG)
		proto_conn_send_error(c, r->rid, PROTO_CODE_BAD_REQUEST,
		    "the answer is larger than your maxframe");
	else if (rc != 0)
		proto_conn_send_error(c, r->rid, PROTO_CODE_BUSY,
		    "out of memory; ask again later");
	else
		for (size_t i = 0; i < n; i++)
			srv->stats.chunks_out += files[i].held;
	free(buf);
}
