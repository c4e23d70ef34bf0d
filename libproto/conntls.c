/*
 * What a connection's bufferevent events mean: connected (under TLS, the
 * peer's identity checked against its pin, then our HELLO), timeouts (the
 * handshake's, and the idle one a slow but sending peer is spared), errors
 * and ends, each failure put in words a user can act on: a peer that does
 * not speak TLS, one that had no room, one that TCP never reached.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "conn_private.h"
#include "error.h"
#include "hash.h"
#include "identity.h"
#include "log_private.h"

/* Bytes that must arrive within an idle timeout for a peer to count as
 * sending. */
#define PROGRESS_MIN 1024u

/* Whether a connection we make got as far as TCP; if not, err is why. */
static int
tcp_connected(const proto_conn *c, int *err)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = bufferevent_getfd(c->bev), e = 0;
	socklen_t elen = sizeof(e);

	/* Bytes written (our ClientHello) mean TCP got through, even when
	 * the peer has reset the connection since. */
	if (!c->outbound || fd < 0 || (c->ssl != NULL &&
	    BIO_number_written(SSL_get_wbio(c->ssl)) > 0) ||
	    getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		return 1;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0 || e == 0)
		e = *err ? *err : ECONNREFUSED;
	*err = e;
	return 0;
}

/* A plaintext node whose peer hangs up before its HELLO: the likeliest
 * reason is a peer that wants TLS. */
static void
untold(proto_conn *c)
{
	snprintf(c->detail, sizeof(c->detail), "closed before its HELLO: the "
	    "peer may want TLS (this node runs with --no-tls)");
}

/* Why the handshake failed, in words a user can act on. */
static void
tls_failed(proto_conn *c, unsigned long err)
{
	const char *why = err ? ERR_reason_error_string(err) : NULL;

	if (!c->tls_done && err != 0 &&
	    ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
		why = NULL;
	/* A node without TLS sends its HELLO at once, and OpenSSL reads it as
	 * a bad record (below): a peer that closes having sent nothing is
	 * most likely one with no room for us, or one that ended our
	 * handshake (its deadline, its limits). */
	if (why == NULL && BIO_number_read(SSL_get_rbio(c->ssl)) == 0)
		snprintf(c->detail, sizeof(c->detail), "the peer closed the "
		    "connection before it answered: it may have no room for "
		    "more peers (--max-peers) or refuse this address");
	else if (why == NULL)
		snprintf(c->detail, sizeof(c->detail), "the peer closed the "
		    "connection during the TLS handshake");
	else if (strstr(why, "wrong version") || strstr(why, "packet length") ||
	    strstr(why, "http request") || strstr(why, "record layer"))
		snprintf(c->detail, sizeof(c->detail), "%s: the peer does not "
		    "speak TLS (it may run with --no-tls)", why);
	else
		snprintf(c->detail, sizeof(c->detail), "%s", why);
	/* The rest of OpenSSL's queue belongs to this failure too. */
	ERR_clear_error();
}

/* The handshake is over: check who the peer is, then say HELLO. */
static void
tls_ready(proto_conn *c)
{
	c->tls_done = 1;
	if (proto_tls_peer_id(c->ssl, c->peer_id) != 0) {
		snprintf(c->detail, sizeof(c->detail), "the peer showed no "
		    "usable certificate");
		proto__conn_fail(c, PROTO_ERR_TLS);
		return;
	}
	if (c->has_pin && CRYPTO_memcmp(c->pin, c->peer_id,
	    sizeof(c->pin)) != 0) {
		char got[PROTO_IDENTITY_HEX_LEN + 1];
		char want[PROTO_IDENTITY_HEX_LEN + 1];
		proto_hex_encode(c->peer_id, PROTO_IDENTITY_LEN, got);
		proto_hex_encode(c->pin, PROTO_IDENTITY_LEN, want);
		snprintf(c->detail, sizeof(c->detail), "identity %s, not the "
		    "%s asked for", got, want);
		proto__conn_fail(c, PROTO_ERR_IDENTITY);
		return;
	}
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: TLS %s, %s", c->peer,
	    SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
	if (proto__conn_send_hello(c) != 0)
		proto__conn_fail(c, PROTO_ERR_NOMEM);
}

void
proto__conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	proto_conn *c = arg;

	(void)bev;
	if (c->flushing) {
		if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR |
		    BEV_EVENT_TIMEOUT))
			proto__conn_really_free(c);
		return;
	}
	c->depth++;
	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;
		setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP,
		    TCP_NODELAY, &one, sizeof(one));
		if (c->ssl != NULL && !c->tls_done)
			tls_ready(c);
	} else if (what & BEV_EVENT_TIMEOUT) {
		size_t queued = proto__conn_queued_in_kernel(c);
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: nothing %s for %u s",
		    c->peer, what & BEV_EVENT_WRITING ? "written" : "read",
		    c->ready && !(what & BEV_EVENT_WRITING) ? c->idle_timeout :
		    c->timeout);
		if (!c->ready || (what & BEV_EVENT_WRITING)) {
			if (!c->ready)
				snprintf(c->detail, sizeof(c->detail), "nothing "
				    "came for %u s during the handshake",
				    c->timeout);
			proto__conn_fail(c, PROTO_ERR_TIMEOUT);
		}
		else if (proto_conn_bytes_read(c) + queued >=
		    c->last_queued + PROGRESS_MIN) {
			/* Bytes arrived that SO_RCVLOWAT keeps in the kernel
			 * until the frame is whole: a slow peer, not a silent
			 * one. A byte now and then is not enough. Counted
			 * with those read since, as a read of a large frame's
			 * first part (MAX_LOWAT) empties the kernel's queue. */
			c->last_queued = proto_conn_bytes_read(c) + queued;
			bufferevent_enable(c->bev, EV_READ);
		}
		else if (c->cbs.on_idle == NULL || c->cbs.on_idle(c, c->ctx))
			bufferevent_enable(c->bev, EV_READ);
		else
			proto__conn_fail(c, PROTO_ERR_TIMEOUT);
	} else if (what & BEV_EVENT_ERROR) {
		unsigned long tls_err = c->ssl ?
		    bufferevent_get_openssl_error(c->bev) : 0;
		int err = EVUTIL_SOCKET_ERROR();
		if (c->ssl != NULL && !c->tls_done && !tcp_connected(c, &err)) {
			errno = err;
			proto__conn_fail(c, PROTO_ERR_SYSTEM);
		} else if (tls_err != 0 && c->tls_done &&
		    ERR_GET_REASON(tls_err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			proto__conn_fail(c, PROTO_ERR_CLOSED);
		} else if (tls_err != 0 || (c->ssl != NULL && !c->tls_done)) {
			tls_failed(c, tls_err);
			proto__conn_fail(c, PROTO_ERR_TLS);
		} else {
			if (!c->ready && c->ssl == NULL)
				untold(c);
			errno = err ? err : ECONNRESET;
			proto__conn_fail(c, PROTO_ERR_SYSTEM);
		}
	} else if (what & BEV_EVENT_EOF) {
		int err = 0;
		if (c->ssl != NULL && !c->tls_done && !tcp_connected(c, &err)) {
			errno = err;
			proto__conn_fail(c, PROTO_ERR_SYSTEM);
		} else if (c->ssl != NULL && !c->tls_done) {
			tls_failed(c, 0);
			proto__conn_fail(c, PROTO_ERR_TLS);
		} else {
			if (!c->ready && c->ssl == NULL)
				untold(c);
			proto__conn_fail(c, PROTO_ERR_CLOSED);
		}
	}
	proto__conn_leave(c);
}
