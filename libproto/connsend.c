/*
 * The output side of a peer connection: messages packed into frames and
 * queued, chunks queued from their files (sendfile pieces over TCP, read
 * into memory under TLS), and the write callback, which ends a flush and
 * goes back to the requests that a full output left unread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "conn_private.h"
#include "error.h"
#include "log_private.h"
#include "msg.h"

static void
free_frame(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	free(arg);
}

/*
 * Queues len bytes at data, a malloc'd buffer the output now owns. Never
 * evbuffer_add: after a file segment, libevent 2.1 sizes the next chain by
 * the segment's offset plus length, and so asks malloc for a terabyte when
 * the chunk lies a terabyte into a sparse file.
 */
static int
add_owned(proto_conn *c, uint8_t *data, size_t len)
{
	if (evbuffer_add_reference(bufferevent_get_output(c->bev), data, len,
	    free_frame, data) != 0) {
		free(data);
		return PROTO_ERR_NOMEM;
	}
	return 0;
}

static int enqueue(proto_conn *c, uint8_t *head, size_t hlen, int fd,
    uint64_t off, size_t left);
static void on_drained(struct evbuffer *out,
    const struct evbuffer_cb_info *info, void *arg);

int
proto_conn_send(proto_conn *c, const proto_msg *m)
{
	uint8_t *frame;
	size_t len;
	int rc;

	if ((rc = proto_msg_pack(m, &frame, &len)) != 0)
		return rc;
	/* Behind chunk data still to be read, in order. */
	if ((rc = c->files != NULL ? enqueue(c, frame, len, -1, 0, 0) :
	    add_owned(c, frame, len)) != 0)
		return rc;
	c->bytes_out += len;
	PLOG(PROTO_LOG_CONN, PROTO_LOG_TRACE, "%s: > %s rid %u, %zu bytes",
	    c->peer, proto_msg_type_name(m->type), m->rid, len);
	return 0;
}

int
proto_conn_send_error(proto_conn *c, uint32_t rid, uint32_t code,
    const char *text)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_ERROR);
	m.rid = rid;
	m.code = code;
	m.text = text;
	m.text_len = strlen(text);
	return proto_conn_send(c, &m);
}

/*
 * Over TLS chunk data are read from the file, a little at a time, as the
 * output drains: libevent would map the file instead, and a file that
 * shrinks while a slow peer's chunks wait in the buffer then kills the
 * whole process with SIGBUS when TLS reads the mapping; and reading whole
 * chunks in advance cost a thousand slow readers half a gigabyte. So a
 * chunk waits as (header, file, offset, length), and its bytes enter the
 * output FILE_PIECE (one TLS record) at a time, once the output has
 * emptied: TLS has by then taken the last piece into its own buffer and the
 * socket's, so waiting for empty starves nothing. The next piece is read as
 * soon as libevent drains the last one from the output (an evbuffer
 * callback), so that one writable socket takes a few pieces in one turn
 * of the loop (DRAIN_PIECES), while a peer that reads slowly still has one
 * piece waiting in memory: refilled only from the write callback, the
 * output sent one record a turn, and the
 * fetchers, woken for every record, spent 47% more CPU (100 concurrent
 * 10 MiB fetches). Frames sent meanwhile wait in the same queue, behind the
 * chunk they would otherwise cut in two. A file found short when the chunk
 * is queued is an error that request gets; one cut short after its header
 * went out can only end this connection, from the write callback. Plain
 * TCP keeps sendfile: the kernel copies, and a file cut short ends only
 * that connection too (libevent sees the write return 0).
 */
#define FILE_LOW 1u             /* pump when the output holds less */
#define FILE_PIECE (16u << 10)
/* Pieces read as libevent drains the output, between two write
 * callbacks: a connection takes at most this many more in one turn of the
 * loop, and the others theirs. Unbounded, the first connections served
 * took their whole chunks while the rest waited, and a fetcher that saw no
 * byte of a seed's chunk for a second took the seed for a liar (fetchpeer.c)
 * and stopped asking it. */
#define DRAIN_PIECES 4

struct file_out {
	struct file_out *next;
	uint8_t *head;          /* bytes to queue first (a frame, or a
	                         * chunk's header), malloc'd; NULL once
	                         * queued */
	size_t hlen;
	int fd;                 /* our own descriptor (dup), or -1 */
	uint64_t off;
	size_t left;            /* file bytes still to read */
};

static void
file_out_free(struct file_out *f)
{
	free(f->head);
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

void
proto__conn_drop_files(proto_conn *c)
{
	while (c->files != NULL) {
		struct file_out *f = c->files;
		c->files = f->next;
		file_out_free(f);
	}
	c->files_tail = NULL;
	c->files_left = 0;
}

/* Appends head (hlen bytes, malloc'd: the queue's from now on, freed on
 * failure too) and then left bytes of fd at off (fd -1: none; duplicated
 * here). 0, or PROTO_ERR_NOMEM or PROTO_ERR_SYSTEM, nothing queued. */
static int
enqueue(proto_conn *c, uint8_t *head, size_t hlen, int fd, uint64_t off,
    size_t left)
{
	struct file_out *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		free(head);
		return PROTO_ERR_NOMEM;
	}
	f->head = head;
	f->hlen = hlen;
	f->fd = -1;
	if (left > 0 && (f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		file_out_free(f);
		return PROTO_ERR_SYSTEM;
	}
	f->off = off;
	f->left = left;
	if (c->drained == NULL && (c->drained = evbuffer_add_cb(
	    bufferevent_get_output(c->bev), on_drained, c)) == NULL) {
		file_out_free(f);
		return PROTO_ERR_NOMEM;
	}
	if (c->files_tail != NULL)
		c->files_tail->next = f;
	else
		c->files = f;
	c->files_tail = f;
	c->files_left += hlen + left;
	return 0;
}

/* len bytes at off, read into a new buffer: *out, the caller's. */
static int
read_file(int fd, uint64_t off, size_t len, uint8_t **out)
{
	uint8_t *buf = malloc(len ? len : 1), *at = buf;
	size_t want = len;

	if (buf == NULL)
		return PROTO_ERR_NOMEM;
	while (want > 0) {
		ssize_t n = pread(fd, at, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return n < 0 ? PROTO_ERR_SYSTEM : PROTO_ERR_MISMATCH;
		}
		at += n;
		want -= (size_t)n;
		off += (uint64_t)n;
	}
	*out = buf;
	return 0;
}

static size_t
file_piece(const proto_conn *c)
{
	/* Under a rate limit TLS writes a whole buffer piece whatever the
	 * write budget: keep the pieces within it. */
	if (c->limit && c->limit->write_piece &&
	    c->limit->write_piece < FILE_PIECE)
		return c->limit->write_piece;
	return FILE_PIECE;
}

/*
 * Moves what waits into the output while less than FILE_LOW is there. Never
 * fails the connection: it may run inside libevent's write. On a failure
 * what waits is dropped and the error kept (pump_err, with errno and the
 * detail) for the write callback, which comes since the output empties.
 */
static void
pump(proto_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t piece = file_piece(c);

	while (c->files != NULL && evbuffer_get_length(out) < FILE_LOW) {
		struct file_out *f = c->files;
		size_t n = f->left < piece ? f->left : piece;
		uint8_t *buf;
		int rc = 0;

		if (f->head != NULL) {
			rc = add_owned(c, f->head, f->hlen);
			f->head = NULL;
			c->files_left -= f->hlen;
		}
		if (rc == 0 && n > 0 &&
		    (rc = read_file(f->fd, f->off, n, &buf)) == 0)
			rc = add_owned(c, buf, n);
		if (rc != 0) {
			/* Its header is out: the frame cannot be finished. */
			c->pump_errno = errno;
			if (rc != PROTO_ERR_NOMEM)
				snprintf(c->detail, sizeof(c->detail), "a shared "
				    "file ended before the chunk it was "
				    "serving: %s", rc == PROTO_ERR_SYSTEM ?
				    strerror(errno) : "shorter than its "
				    "manifest");
			c->pump_err = rc;
			proto__conn_drop_files(c);
			return;
		}
		f->off += n;
		f->left -= n;
		c->files_left -= n;
		if (f->left == 0) {
			c->files = f->next;
			if (c->files == NULL)
				c->files_tail = NULL;
			file_out_free(f);
		}
	}
}

/* libevent took bytes from the output (or we added some): when it took
 * the last, the next piece goes in at once, and the same write goes on. */
static void
on_drained(struct evbuffer *out, const struct evbuffer_cb_info *info,
    void *arg)
{
	proto_conn *c = arg;

	(void)out;
	if (info->n_deleted > 0 && c->files != NULL && !c->freed &&
	    (!c->closed || c->flushing) && c->drain_pieces < DRAIN_PIECES) {
		c->drain_pieces++;
		pump(c);
	}
}

/* The write callback's turn: refills, and ends the connection when a
 * refill failed, here or while libevent wrote. */
void
proto__conn_pump_files(proto_conn *c)
{
	c->drain_pieces = 0;
	pump(c);
	if (c->pump_err != 0) {
		int err = c->pump_err;
		c->pump_err = 0;
		errno = c->pump_errno;
		proto__conn_fail(c, err);
	}
}

/*
 * Queues a chunk whose data are read from fd as the output drains. Whatever
 * can fail for want of the file's bytes fails before anything is queued,
 * so the request can still be answered: the file's size is checked, and
 * when nothing waits before it, its header and first piece go into the
 * output now. Never fails the connection: the owner may be inside a
 * callback.
 */
static int
queue_file_out(proto_conn *c, const uint8_t *hdr, size_t hlen, int fd,
    uint64_t off, size_t len)
{
	struct stat st;
	uint8_t *head, *first = NULL;
	size_t n;
	int rc;

	if (fstat(fd, &st) != 0)
		return PROTO_ERR_SYSTEM;
	if ((uint64_t)st.st_size < off + len)
		return PROTO_ERR_MISMATCH;
	if ((head = malloc(hlen)) == NULL)
		return PROTO_ERR_NOMEM;
	memcpy(head, hdr, hlen);
	if (c->files != NULL)
		return enqueue(c, head, hlen, fd, off, len);
	n = file_piece(c);
	if (n > len)
		n = len;
	if ((rc = read_file(fd, off, n, &first)) != 0) {
		free(head);
		return rc;
	}
	/* What follows the first piece waits its turn; made ready before
	 * anything goes out, so that nothing half goes. */
	if (n < len && (rc = enqueue(c, NULL, 0, fd, off + n, len - n)) != 0) {
		free(head);
		free(first);
		return rc;
	}
	/* add_owned frees what it cannot queue. Out of memory between the
	 * two, the header goes alone and the peer finds the frame broken:
	 * it drops us, and no unverified byte can come of it. */
	if ((rc = add_owned(c, head, hlen)) == 0)
		rc = add_owned(c, first, n);
	else
		free(first);
	return rc;
}

int
proto_conn_send_chunk_file(proto_conn *c, uint32_t rid, int fd, uint64_t off,
    size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_file_segment *seg = NULL;
	uint8_t *hdr;
	size_t hlen;
	int rc;

	if (len > PROTO_CHUNK_MAX)
		return PROTO_ERR_INVALID;
	if (c->ssl != NULL) {
		uint8_t h[PROTO_CHUNK_HEADER_MAX];
		hlen = proto_msg_chunk_header(rid, (uint32_t)len, h);
		if ((rc = queue_file_out(c, h, hlen, fd, off, len)) != 0)
			return rc;
		goto queued;
	}
	if ((hdr = malloc(PROTO_CHUNK_HEADER_MAX)) == NULL)
		return PROTO_ERR_NOMEM;
	hlen = proto_msg_chunk_header(rid, (uint32_t)len, hdr);
	/* Whatever can fail for want of the file's bytes fails before
	 * anything is queued, so the request can still be answered. */
	if (len > 0 && (seg = evbuffer_file_segment_new(fd, (ev_off_t)off,
	    (ev_off_t)len, EVBUF_FS_DISABLE_MMAP)) == NULL) {
		free(hdr);
		return PROTO_ERR_SYSTEM;
	}
	if ((rc = add_owned(c, hdr, hlen)) != 0) {
		if (seg != NULL)
			evbuffer_file_segment_free(seg);
		return rc;
	}
	if (seg != NULL) {
		/* libevent's sendfile sends a whole piece whatever the write
		 * budget, so under a limit the pieces are kept small. */
		size_t piece = c->limit && c->limit->write_piece ?
		    c->limit->write_piece : len;
		for (size_t at = 0; at < len && rc == 0; at += piece)
			if (evbuffer_add_file_segment(out, seg, (ev_off_t)at,
			    (ev_off_t)(len - at < piece ? len - at : piece)) != 0)
				rc = PROTO_ERR_NOMEM;
		/* The buffer holds its own reference to the segment. */
		evbuffer_file_segment_free(seg);
	}
queued:
	c->bytes_out += hlen + len;
	PLOG(PROTO_LOG_CONN, PROTO_LOG_TRACE, "%s: > CHUNK rid %u, %zu bytes "
	    "from the file at %llu", c->peer, rid, hlen + len,
	    (unsigned long long)off);
	return rc;
}

void
proto__conn_write_cb(struct bufferevent *bev, void *arg)
{
	proto_conn *c = arg;

	if (c->files != NULL || c->pump_err != 0) {
		/* A file cut short fails the connection, and the owner may
		 * free it from on_close: the depth defers that free. */
		c->depth++;
		proto__conn_pump_files(c);
		if (c->freed || c->closed) {
			proto__conn_leave(c);
			return;
		}
		c->depth--;
	}
	if (c->flushing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
		    c->files == NULL)
			proto__conn_linger(c);
		return;
	}
	if (c->cbs.on_written != NULL && c->ready) {
		c->depth++;
		c->cbs.on_written(c, c->ctx);
		if (c->freed || c->closed) {
			proto__conn_leave(c);
			return;
		}
		c->depth--;
	}
	proto__conn_process(c);
}
