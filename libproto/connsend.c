/*
 * The output side of a peer connection: messages packed into frames and
 * queued, chunks queued from their files (sendfile pieces over TCP, read
 * into memory under TLS), and the write callback, which ends a flush and
 * goes back to the requests that a full output left unread.
 */
#include <errno.h>
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

int
proto_conn_send(proto_conn *c, const proto_msg *m)
{
	uint8_t *frame;
	size_t len;
	int rc;

	if ((rc = proto_msg_pack(m, &frame, &len)) != 0)
		return rc;
	if ((rc = add_owned(c, frame, len)) != 0)
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
 * Over TLS the data are read into memory now. libevent would map the file
 * instead, and a file that shrinks while a slow peer's chunks wait in the
 * buffer then kills the whole process with SIGBUS when TLS reads the
 * mapping; read now, a short file is an error this request gets. Plain TCP
 * keeps sendfile: the kernel copies, and a file cut short ends only that
 * connection (libevent sees the write return 0).
 */
static int
read_chunk(int fd, uint64_t off, uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = pread(fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return PROTO_ERR_SYSTEM;
		if (n == 0)
			return PROTO_ERR_MISMATCH;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

struct shared_buf {
	unsigned refs;
	uint8_t *data;
};

static void
unref_piece(const void *data, size_t len, void *arg)
{
	struct shared_buf *b = arg;

	(void)data;
	(void)len;
	if (--b->refs == 0) {
		free(b->data);
		free(b);
	}
}

/*
 * Queues len bytes at data (malloc'd; the output owns it from now on) as
 * pieces of at most piece bytes: TLS writes a whole buffer piece whatever
 * the write budget, as sendfile does a whole file segment.
 */
static int
add_pieces(proto_conn *c, uint8_t *data, size_t len, size_t piece)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct shared_buf *b = malloc(sizeof(*b));

	if (b == NULL) {
		free(data);
		return PROTO_ERR_NOMEM;
	}
	b->data = data;
	b->refs = 1; /* ours, until every piece is queued */
	for (size_t at = 0; at < len; at += piece) {
		b->refs++;
		if (evbuffer_add_reference(out, data + at, len - at < piece ?
		    len - at : piece, unref_piece, b) != 0) {
			b->refs--;
			unref_piece(NULL, 0, b);
			return PROTO_ERR_NOMEM;
		}
	}
	unref_piece(NULL, 0, b);
	return 0;
}

int
proto_conn_send_chunk_file(proto_conn *c, uint32_t rid, int fd, uint64_t off,
    size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_file_segment *seg = NULL;
	int copy = c->ssl != NULL;
	uint8_t *hdr;
	size_t hlen;
	int rc;

	if (len > PROTO_CHUNK_MAX)
		return PROTO_ERR_INVALID;
	if ((hdr = malloc(PROTO_CHUNK_HEADER_MAX + (copy ? len : 0))) == NULL)
		return PROTO_ERR_NOMEM;
	hlen = proto_msg_chunk_header(rid, (uint32_t)len, hdr);
	/* Whatever can fail for want of the file's bytes fails before
	 * anything is queued, so the request can still be answered. */
	if (copy)
		rc = read_chunk(fd, off, hdr + hlen, len);
	else if (len > 0 && (seg = evbuffer_file_segment_new(fd, (ev_off_t)off,
	    (ev_off_t)len, EVBUF_FS_DISABLE_MMAP)) == NULL)
		rc = PROTO_ERR_SYSTEM;
	else
		rc = 0;
	if (rc != 0) {
		free(hdr);
		return rc;
	}
	if (copy && c->limit && c->limit->write_piece &&
	    len > c->limit->write_piece)
		rc = add_pieces(c, hdr, hlen + len, c->limit->write_piece);
	else
		rc = add_owned(c, hdr, hlen + (copy ? len : 0));
	if (rc != 0) {
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

	if (c->flushing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
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
