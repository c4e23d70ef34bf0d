/*
 * The frame reader of a peer connection: the read state machine (wait for
 * a length, check it, wait for the whole frame, check and decode it, hand
 * it up, drain, loop), the marks that wake it (libevent's watermarks and
 * the socket's SO_RCVLOWAT), and the fast path that reads a large frame
 * straight from the socket with readv.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn_private.h"
#include "error.h"
#include "frame.h"
#include "log_private.h"
#include "msg.h"

/* Read ahead at most this much beyond a frame in progress. */
#define READ_AHEAD (1u << 20)
/* The most SO_RCVLOWAT asks for; the kernel caps it by the buffer. */
#define MAX_LOWAT (256 << 10)
/* Read this much beyond the frame in progress: the next frame's start. */
#define READ_EXTRA (64u << 10)

static int fill_from(int, struct evbuffer *, size_t);

void
proto__conn_set_read_marks(proto_conn *c, size_t low)
{
	if (low == c->low_mark)
		return;
	c->low_mark = low;
	bufferevent_setwatermark(c->bev, EV_READ, low,
	    low > READ_AHEAD ? low : READ_AHEAD);
}

/* Bytes received but still in the socket's buffer. */
size_t
proto__conn_queued_in_kernel(const proto_conn *c)
{
	int fd = bufferevent_getfd(c->bev), n = 0;

	if (fd < 0 || ioctl(fd, FIONREAD, &n) != 0 || n < 0)
		return 0;
	return (size_t)n;
}

/*
 * Called on every change to the input buffer. Each read from the socket
 * restarts the idle timer; the bytes that came by then are the mark a
 * peer must pass by the next idle timeout to count as sending. Without
 * it, a peer gone silent mid-frame, its frame's first part read, counted
 * as sending once and had two timeouts instead of one.
 */
void
proto__conn_input_cb(struct evbuffer *in, const struct evbuffer_cb_info *info,
    void *arg)
{
	proto_conn *c = arg;

	(void)in;
	if (info->n_added == 0)
		return;
	/* What SO_RCVLOWAT holds back stays in the kernel after a read. */
	c->last_queued = proto_conn_bytes_read(c) + (c->rcvlowat > 1 ?
	    proto__conn_queued_in_kernel(c) : 0);
}

/* Asks the kernel to wake us only once want more bytes have arrived (at
 * most MAX_LOWAT), so a large frame is read in a few big reads instead of
 * hundreds of small ones as the segments trickle in. */
void
proto__conn_set_lowat(proto_conn *c, size_t want)
{
	int fd = bufferevent_getfd(c->bev);
	int v = want < 1 ? 1 : want > MAX_LOWAT ? MAX_LOWAT : (int)want;

	if (fd < 0 || c->ssl != NULL || v == c->rcvlowat)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) == 0)
		c->rcvlowat = v;
}

/*
 * Reads up to want bytes (and a little more) straight from the socket into
 * the input buffer. libevent's own socket reads take at most 4 KiB a call;
 * a 256 KiB chunk would cost 64 wake-ups and reads, this one or two.
 * Returns 0 (including when nothing was there) or a PROTO_ERR_*.
 */
static int
fill(proto_conn *c, size_t want)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	int fd = bufferevent_getfd(c->bev), rc;
	size_t before = evbuffer_get_length(in);

	/* Under TLS the bytes on the socket are not the frame's. */
	if (fd < 0 || c->ssl != NULL)
		return 0;
	want += READ_EXTRA;
	/* Reading past libevent, we must keep to the rate limit ourselves:
	 * take no more than this connection's share of the group's budget,
	 * and charge what we took to the group, as libevent's reads do. */
	if (c->limit != NULL) {
		ev_ssize_t max = bufferevent_get_max_to_read(c->bev);
		if (max <= 0)
			return 0;
		if ((size_t)max < want)
			want = (size_t)max;
	}
	/* A bufferevent keeps its input's end frozen against its user; we
	 * add to it here exactly as its own read path does. */
	evbuffer_unfreeze(in, 0);
	rc = fill_from(fd, in, want);
	evbuffer_freeze(in, 0);
	if (c->limit != NULL && evbuffer_get_length(in) > before)
		bufferevent_rate_limit_group_decrement_read(c->limit->group,
		    (ev_ssize_t)(evbuffer_get_length(in) - before));
	return rc;
}

static int
fill_from(int fd, struct evbuffer *in, size_t want)
{
	struct evbuffer_iovec vec[2];
	struct iovec iov[2];
	ssize_t got;
	int n;

	if ((n = evbuffer_reserve_space(in, (ev_ssize_t)want, vec, 2)) <= 0)
		return PROTO_ERR_NOMEM;
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = vec[i].iov_base;
		iov[i].iov_len = vec[i].iov_len;
	}
	do
		got = readv(fd, iov, n);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		evbuffer_commit_space(in, vec, 0);
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 :
		    PROTO_ERR_SYSTEM;
	}
	if (got == 0) {
		evbuffer_commit_space(in, vec, 0);
		return PROTO_ERR_CLOSED;
	}
	for (int i = 0; i < n; i++) {
		size_t take = (size_t)got < vec[i].iov_len ? (size_t)got :
		    vec[i].iov_len;
		vec[i].iov_len = take;
		got -= (ssize_t)take;
	}
	evbuffer_commit_space(in, vec, n);
	return 0;
}

/*
 * The need bytes of the frame at the front of in, contiguous. Where the
 * buffer holds them in pieces they are copied into a scratch buffer the
 * connection keeps: a fresh allocation per frame, as evbuffer_pullup makes,
 * costs the kernel a page clearing for every 4 KiB of every chunk.
 */
static uint8_t *
frame_bytes(proto_conn *c, struct evbuffer *in, size_t need)
{
	if (evbuffer_get_contiguous_space(in) >= need)
		return evbuffer_pullup(in, (ev_ssize_t)need);
	if (c->scratch_cap < need) {
		uint8_t *p = realloc(c->scratch, need);
		if (p == NULL)
			return NULL;
		c->scratch = p;
		c->scratch_cap = need;
	}
	if (evbuffer_copyout(in, c->scratch, need) != (ev_ssize_t)need)
		return NULL;
	return c->scratch;
}

/* One step of the read state machine. Returns 1 to go on, 0 to stop. */
static int
read_one(proto_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t avail = evbuffer_get_length(in), need;
	uint8_t *frame;
	proto_msg m;
	int rc;

	if (!c->have_len) {
		uint8_t hdr[PROTO_FRAME_HEADER];
		if (avail < PROTO_FRAME_HEADER) {
			proto__conn_set_read_marks(c, PROTO_FRAME_HEADER);
			proto__conn_set_lowat(c, 1);
			return 0;
		}
		evbuffer_copyout(in, hdr, sizeof(hdr));
		/* A TLS record (handshake or alert, version 3.x) where a
		 * HELLO was due: say so rather than "frame too large". */
		if (!c->ready && c->ssl == NULL && (hdr[0] == 0x16 ||
		    hdr[0] == 0x15) && hdr[1] == 0x03) {
			snprintf(c->detail, sizeof(c->detail), "the peer speaks "
			    "TLS and this node does not (--no-tls)");
			/* Our plaintext HELLO is what tells it so (its TLS
			 * reads it as a bad record): it goes out even when we
			 * read its ClientHello before writing. */
			c->refusing = 1;
			proto__conn_fail(c, PROTO_ERR_TLS);
			return 0;
		}
		rc = proto_frame_get_len(hdr, c->ready ? c->max_frame :
		    PROTO_FRAME_HANDSHAKE_MAX, &c->frame_len);
		if (rc != 0) {
			proto__conn_fail(c, rc);
			return 0;
		}
		c->have_len = 1;
	}
	need = PROTO_FRAME_HEADER + (size_t)c->frame_len;
	if (avail < need) {
		if ((rc = fill(c, need - avail)) != 0) {
			proto__conn_fail(c, rc);
			return 0;
		}
		avail = evbuffer_get_length(in);
	}
	if (avail < need) {
		/* Wake up only when the rest of the frame is in: the kernel
		 * holds it back where it can (then any byte libevent reads
		 * must reach us, to read the rest), else libevent does. */
		if (bufferevent_getfd(c->bev) >= 0 && c->ssl == NULL) {
			proto__conn_set_read_marks(c, 1);
			proto__conn_set_lowat(c, need - avail);
		} else
			proto__conn_set_read_marks(c, need);
		return 0;
	}
	if ((frame = frame_bytes(c, in, need)) == NULL) {
		proto__conn_fail(c, PROTO_ERR_NOMEM);
		return 0;
	}
	rc = proto_frame_check_body(frame + PROTO_FRAME_HEADER, c->frame_len);
	if (rc == 0)
		rc = proto_msg_unpack(frame + PROTO_FRAME_HEADER, c->frame_len,
		    &m);
	if (rc != 0) {
		proto__conn_fail(c, rc);
		return 0;
	}
	c->bytes_in += need;
	proto__conn_trace(c, '<', &m, need, NULL);
	if (!c->ready)
		proto__conn_handle_hello(c, &m);
	else if (m.type == PROTO_MSG_HELLO)
		proto__conn_fail(c, PROTO_ERR_MALFORMED);
	else if (proto__conn_refused(c, &m))
		proto__conn_fail(c, PROTO_ERR_REFUSED);
	else if (m.rid == 0 && !proto__conn_type_known(c, m.type))
		/* Pushed by a newer peer, for those who understand it: no
		 * answer is due, and none of our business. */
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: ignored a message "
		    "of unknown type %u", c->peer, m.type);
	else
		proto__conn_route(c, &m);
	proto_msg_clear(&m);
	if (c->freed || c->closed)
		return 0;
	evbuffer_drain(in, need);
	c->have_len = 0;
	return 1;
}

void
proto__conn_process(proto_conn *c)
{
	c->depth++;
	while (!c->freed && !c->closed && !c->flushing) {
		/* Leave requests unread while the peer is slow to take our
		 * answers; the write callback comes back here. */
		if (proto_conn_pending_out(c) > c->out_limit || c->held)
			break;
		if (!read_one(c))
			break;
	}
	proto__conn_leave(c);
}

void
proto__conn_read_cb(struct bufferevent *bev, void *arg)
{
	proto_conn *c = arg;

	if (c->lingering) {
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	proto__conn_process(c);
}
