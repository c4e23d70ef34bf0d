/*
 * The output side of a peer connection: messages packed into frames and
 * queued, chunks queued from their files (sendfile pieces over TCP, read
 * into memory under TLS) with requests and pushes passing them, and the
 * write callback, which ends a flush and goes back to the requests that a
 * full output left unread.
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
#include "frame.h"
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

static int queue_frame(proto_conn *c, uint8_t *frame, size_t len,
    int jumps);
static void on_drained(struct evbuffer *out,
    const struct evbuffer_cb_info *info, void *arg);

/*
 * Whether a message may pass chunk data waiting to go: requests (once
 * requests flow both ways, a node's own GET_CHUNK must not wait behind the
 * chunks it serves) and what is pushed unasked (HAVE, a refusal). Answers
 * keep their order: a requester matches them to its requests by order.
 */
static int
jumps_chunks(const proto_msg *m)
{
	switch (m->type) {
	case PROTO_MSG_HELLO:
	case PROTO_MSG_LIST:
	case PROTO_MSG_GET_MANIFEST:
	case PROTO_MSG_GET_CHUNK:
	case PROTO_MSG_PEERS:
	case PROTO_MSG_HAS:
	case PROTO_MSG_INTERESTED:
	case PROTO_MSG_CANCEL:
	case PROTO_MSG_GET_FILES:
	case PROTO_MSG_HAVE:
	case PROTO_MSG_CHOKE:
	case PROTO_MSG_UNCHOKE:
		return 1;
	case PROTO_MSG_ERROR:
		return m->rid == 0;
	default:
		return 0;
	}
}

int
proto__conn_queue_owned(proto_conn *c, uint8_t *frame, size_t len, int jumps)
{
	return c->files != NULL ? queue_frame(c, frame, len, jumps) :
	    add_owned(c, frame, len);
}

int
proto__conn_pack(proto_conn *c, const proto_msg *m, uint8_t **frame, size_t *len)
{
	int rc;

	if ((rc = proto_msg_pack(m, frame, len)) != 0)
		return rc;
	/* The peer said it takes nothing larger (its HELLO's maxframe). */
	if (c->ready && *len - PROTO_FRAME_HEADER > c->peer_max_frame) {
		free(*frame);
		return PROTO_ERR_TOO_BIG;
	}
	return 0;
}

int
proto_conn_send(proto_conn *c, const proto_msg *m)
{
	uint8_t *frame;
	size_t len;
	int rc;

	/* What was held goes first, in the same write. */
	if ((rc = proto__conn_flush_lazy(c)) != 0)
		return rc;
	if ((rc = proto__conn_pack(c, m, &frame, &len)) != 0)
		return rc;
	if ((rc = c->files != NULL ?
	    queue_frame(c, frame, len, jumps_chunks(m)) :
	    add_owned(c, frame, len)) != 0)
		return rc;
	c->bytes_out += len;
	proto__conn_trace(c, '>', m, len, NULL);
	return 0;
}

void
proto__conn_trace(const proto_conn *c, char dir, const proto_msg *m,
    size_t len, const char *note)
{
	char chunk[32] = "";

	if (m->type == PROTO_MSG_HAVE)
		snprintf(chunk, sizeof(chunk), ", chunk %llu",
		    (unsigned long long)m->index);
	PLOG(PROTO_LOG_CONN, PROTO_LOG_TRACE, "%s: %c %s rid %u, %zu bytes%s%s%s",
	    c->peer, dir, proto_msg_type_name(m->type), m->rid, len, chunk,
	    note != NULL ? ", " : "", note != NULL ? note : "");
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
 * Chunk data wait in a queue of their own, as (header, file, offset,
 * length), and enter the output a piece at a time as it drains, so that
 * what may pass them (jumps_chunks) waits behind one piece at most, not
 * behind a megabyte of chunks.
 *
 * Over TLS each piece is read from the file (one TLS record): libevent
 * would map the file instead, and a file that shrinks while a slow peer's
 * chunks wait in the buffer then kills the whole process with SIGBUS when
 * TLS reads the mapping; and reading whole chunks in advance cost a
 * thousand slow readers half a gigabyte. A piece goes in once the output
 * has emptied: TLS has by then taken the last piece into its own buffer
 * and the socket's, so waiting for empty starves nothing (measured: a 256
 * MiB TLS fetch as fast as from mapped files). Plain TCP sends each piece
 * with sendfile from a file segment: the kernel copies, and the socket's
 * buffer keeps the line busy while the next piece is added.
 *
 * The next piece goes in as soon as libevent drains the last one from the
 * output (an evbuffer callback), so that one writable socket takes a few
 * pieces in one turn of the loop (DRAIN_PIECES), while a peer that reads
 * slowly still has one piece waiting in memory: refilled only from the
 * write callback, TLS sent one record a turn, and the fetchers, woken for
 * every record, spent 47% more CPU (100 concurrent 10 MiB fetches).
 *
 * A file found short when the chunk is queued is an error that request
 * gets; one cut short after its header went out can only end this
 * connection, from the write callback (over TCP libevent sees the write
 * return 0).
 */
#define FILE_LOW 1u             /* pump when the output holds less */
#define TLS_PIECE (16u << 10)
#define TCP_PIECE (256u << 10)
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
	int fd;                 /* TLS: our own descriptor (dup), or -1 */
	struct evbuffer_file_segment *seg; /* TCP: the chunk's bytes */
	uint64_t off;           /* TLS: in the file; TCP: in seg */
	size_t left;            /* file bytes still to go */
};

static void
file_out_free(struct file_out *f)
{
	free(f->head);
	if (f->fd >= 0)
		close(f->fd);
	if (f->seg != NULL)
		evbuffer_file_segment_free(f->seg);
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

/* A chunk in progress (its header out) must not be cut in two. */
static int
started(const struct file_out *f)
{
	return f->head == NULL;
}

/* Puts f in the queue: last, or when it jumps, after what has started
 * and after every frame that is not chunk data, so that what jumps never
 * passes an answer that is not a chunk (a HAVE must not arrive before the
 * HAVE_MAP of its file). */
static void
insert(proto_conn *c, struct file_out *f, int jumps)
{
	struct file_out *after = NULL;

	if (jumps) {
		for (struct file_out *e = c->files; e != NULL; e = e->next)
			if (started(e) || e->left == 0)
				after = e;
	} else
		after = c->files_tail;
	if (after != NULL) {
		f->next = after->next;
		after->next = f;
	} else {
		f->next = c->files;
		c->files = f;
	}
	if (f->next == NULL)
		c->files_tail = f;
	c->files_left += (f->head != NULL ? f->hlen : 0) + f->left;
}

/* A new entry for head (hlen bytes, malloc'd: the entry's from now on,
 * freed on failure too), or NULL when out of memory. */
static struct file_out *
file_out_new(uint8_t *head, size_t hlen)
{
	struct file_out *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		free(head);
		return NULL;
	}
	f->head = head;
	f->hlen = hlen;
	f->fd = -1;
	return f;
}

static int
queue_frame(proto_conn *c, uint8_t *frame, size_t len, int jumps)
{
	struct file_out *f = file_out_new(frame, len);

	if (f == NULL)
		return PROTO_ERR_NOMEM;
	insert(c, f, jumps);
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
	size_t piece = c->ssl != NULL ? TLS_PIECE : TCP_PIECE;

	/* Under a rate limit TLS writes a whole buffer piece, and sendfile
	 * a whole segment, whatever the write budget: keep the pieces
	 * within it. */
	if (c->limit && c->limit->write_piece && c->limit->write_piece < piece)
		return c->limit->write_piece;
	return piece;
}

/* Moves n bytes of f's data into the output. */
static int
add_piece(proto_conn *c, const struct file_out *f, size_t n)
{
	uint8_t *buf;
	int rc;

	if (f->seg != NULL)
		return evbuffer_add_file_segment(bufferevent_get_output(c->bev),
		    f->seg, (ev_off_t)f->off, (ev_off_t)n) == 0 ? 0 :
		    PROTO_ERR_NOMEM;
	if ((rc = read_file(f->fd, f->off, n, &buf)) != 0)
		return rc;
	return add_owned(c, buf, n);
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

	c->pumping = 1;
	while (c->files != NULL && evbuffer_get_length(out) < FILE_LOW) {
		struct file_out *f = c->files;
		size_t n = f->left < piece ? f->left : piece;
		int rc = 0;

		if (f->head != NULL) {
			rc = add_owned(c, f->head, f->hlen);
			f->head = NULL;
			c->files_left -= f->hlen;
		}
		if (rc == 0 && n > 0)
			rc = add_piece(c, f, n);
		if (rc != 0) {
			/* Its header is out: the frame cannot be finished. */
			c->pump_errno = errno;
			if (rc != PROTO_ERR_NOMEM)
				snprintf(c->detail, sizeof(c->detail), "a shared "
				    "file ended before the chunk it was "
				    "serving: %s", rc == PROTO_ERR_SYSTEM ?
				    strerror(errno) : "shorter than its "
				    "manifest");
			proto__conn_drop_files(c);
			c->pump_err = rc;
			c->pumping = 0;
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
	c->pumping = 0;
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
	    !c->pumping && (!c->closed || c->flushing) &&
	    c->drain_pieces < DRAIN_PIECES) {
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
 * With the output empty, f's header and first piece go into it now: the
 * write callback, which pumps, comes only once something is written.
 * A read that fails fails here, before anything is queued, so the request
 * can still be answered; f is then freed. Never fails the connection: the
 * owner may be inside a callback.
 */
static int
send_first(proto_conn *c, struct file_out *f)
{
	size_t n = f->left < file_piece(c) ? f->left : file_piece(c);
	uint8_t *first = NULL;
	int rc;

	if (n > 0 && f->seg == NULL &&
	    (rc = read_file(f->fd, f->off, n, &first)) != 0) {
		file_out_free(f);
		return rc;
	}
	/* add_owned frees what it cannot queue. Out of memory between the
	 * two, the header goes alone and the peer finds the frame broken:
	 * it drops us, and no unverified byte can come of it. */
	rc = add_owned(c, f->head, f->hlen);
	f->head = NULL;
	if (rc == 0 && n > 0)
		rc = first != NULL ? add_owned(c, first, n) : add_piece(c, f, n);
	else
		free(first);
	if (rc != 0) {
		file_out_free(f);
		return rc;
	}
	f->off += n;
	f->left -= n;
	return 0;
}

/* 1 when a CHUNK of header hlen and len bytes of data is a frame larger
 * than the peer said it takes. */
static int
too_big(const proto_conn *c, size_t hlen, size_t len)
{
	return c->ready && hlen - PROTO_FRAME_HEADER + len > c->peer_max_frame;
}

int
proto_conn_send_chunk_file(proto_conn *c, uint32_t rid, int fd, uint64_t off,
    size_t len)
{
	uint8_t hdr[PROTO_CHUNK_HEADER_MAX], *head;
	size_t hlen;
	struct file_out *f;
	struct stat st;
	int rc;

	if (len > PROTO_CHUNK_MAX)
		return PROTO_ERR_INVALID;
	hlen = proto_msg_chunk_header(rid, (uint32_t)len, hdr);
	if (too_big(c, hlen, len))
		return PROTO_ERR_TOO_BIG;
	/* Whatever can fail for want of the file's bytes fails before
	 * anything is queued, so the request can still be answered. */
	if (fstat(fd, &st) != 0)
		return PROTO_ERR_SYSTEM;
	if ((uint64_t)st.st_size < off + len)
		return PROTO_ERR_MISMATCH;
	if ((head = malloc(hlen)) == NULL)
		return PROTO_ERR_NOMEM;
	memcpy(head, hdr, hlen);
	if ((f = file_out_new(head, hlen)) == NULL)
		return PROTO_ERR_NOMEM;
	f->left = len;
	if (len > 0 && c->ssl != NULL) {
		f->off = off;
		if ((f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
			file_out_free(f);
			return PROTO_ERR_SYSTEM;
		}
	} else if (len > 0 && (f->seg = evbuffer_file_segment_new(fd,
	    (ev_off_t)off, (ev_off_t)len, EVBUF_FS_DISABLE_MMAP)) == NULL) {
		file_out_free(f);
		return PROTO_ERR_SYSTEM;
	}
	/* Refilled as the socket takes the output, from now on. */
	if (len > 0 && c->drained == NULL && (c->drained = evbuffer_add_cb(
	    bufferevent_get_output(c->bev), on_drained, c)) == NULL) {
		file_out_free(f);
		return PROTO_ERR_NOMEM;
	}
	if (c->files == NULL && evbuffer_get_length(bufferevent_get_output(
	    c->bev)) < FILE_LOW && (rc = send_first(c, f)) != 0)
		return rc;
	if (f->left > 0)
		insert(c, f, 0);
	else
		file_out_free(f);
	c->bytes_out += hlen + len;
	PLOG(PROTO_LOG_CONN, PROTO_LOG_TRACE, "%s: > CHUNK rid %u, %zu bytes "
	    "from the file at %llu", c->peer, rid, hlen + len,
	    (unsigned long long)off);
	return 0;
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
	if (c->guest.on && c->ready) {
		c->depth++;
		proto__conn_guest_written(c);
		if (c->freed || c->closed) {
			proto__conn_leave(c);
			return;
		}
		c->depth--;
	}
	proto__conn_process(c);
}
