/*
 * A peer connection over a bufferevent: the object and its life. Callbacks
 * may free the connection they are called for: a depth counter defers the
 * real free until the outermost callback frame has returned. A connection
 * its owner lets go of ends by itself, lingering to read what the peer
 * still sends; proto_base_free ends those left.
 *
 * The rest of a connection lives next door, sharing conn_private.h: the
 * frame reader in connread.c, the output in connsend.c, HELLO and the
 * swarm's proof in handshake.c, the events and TLS in conntls.c, the
 * rate-limit groups in ratelimit.c, what a connection knows of its peer
 * (the accessors) in connpeer.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/ssl.h>

#include "addr.h"
#include "conn_private.h"
#include "error.h"
#include "frame.h"
#include "log_private.h"
#include "peers.h"
#include "punch_private.h"
#include "relay.h"

#define DEFAULT_TIMEOUT 30
#define DEFAULT_OUT_LIMIT (4u << 20)
/* Bytes moved per read or write call at most. */
#define SINGLE_IO (1u << 20)
/* How long a connection we close reads (and drops) what the peer still
 * sends, once our last bytes are written. */
#define LINGER_SECS 2

/* The peer's address, kept for the HELLO's "seen", its HOST:PORT for
 * messages and its host alone, through the one formatter (addr.h). */
static void
format_addr(proto_conn *c, const struct sockaddr *sa)
{
	if (proto_addr_from_sockaddr(&c->peer_addr, sa,
	    sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in)) != 0)
		return;
	c->has_peer_addr = 1;
	snprintf(c->peer, sizeof(c->peer), "%s",
	    proto_addr_text(&c->peer_addr));
	proto_addr_host(&c->peer_addr, c->host, sizeof(c->host));
}

void
proto__conn_really_free(proto_conn *c)
{
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->handshake != NULL)
		event_free(c->handshake);
	/* Leave the group now: the owner may free it once its connections
	 * are freed, while libevent could still hold this bufferevent. */
	proto__conn_leave_group(c);
	proto__conn_drop_files(c);
	proto__conn_drop_lazy(c);
	/* libevent may hold the buffer a while longer: nothing of c there. */
	if (c->drained != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(c->bev),
		    c->drained);
	proto__conn_duplex_free(c);
	proto__conn_race_free(c);
	proto__conn_punch_free(c);
	bufferevent_free(c->bev);
	free(c->scratch);
	free(c);
}

/* An orphan's time is up: whatever the peer does, it goes. */
static void
orphan_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	proto__conn_really_free(arg);
}

/*
 * Our last bytes are written: rather than close at once, read and drop what
 * the peer still sends until it closes, or for LINGER_SECS at most. Closed
 * with its requests unread, the kernel would reset the connection, and a
 * reset can destroy, before the peer reads it, the ERROR that told it why.
 * The deadline is a timer of its own: a read timeout restarts with every
 * byte, and under TLS the read callback waits for whole records, so a peer
 * dripping bytes would hold the connection forever.
 */
void
proto__conn_linger(proto_conn *c)
{
	struct timeval tv = { LINGER_SECS, 0 };
	int fd = bufferevent_getfd(c->bev);

	if (c->lingering)
		return;
	c->lingering = 1;
	if (event_add(c->deadline, &tv) != 0) {
		proto__conn_really_free(c);
		return;
	}
	/* What it reads is dropped: it must not spend the group's budget. */
	proto__conn_leave_group(c);
	/* The end of our side, at once, for a peer that waits for it: TLS's
	 * close_notify, or TCP's FIN. Nothing is written after either. */
	if (c->ssl != NULL)
		(void)SSL_shutdown(c->ssl);
	else if (fd >= 0)
		(void)shutdown(fd, SHUT_WR);
	proto__conn_set_lowat(c, 1);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bufferevent_disable(c->bev, EV_WRITE);
	if (bufferevent_enable(c->bev, EV_READ) != 0)
		proto__conn_really_free(c);
}

/* Called as each callback returns: completes a deferred free or flush. */
void
proto__conn_leave(proto_conn *c)
{
	if (--c->depth > 0)
		return;
	if (c->freed)
		proto__conn_really_free(c);
	else if (c->flushing &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		proto__conn_linger(c);
}

/* Ends the connection from our side after a failure, telling the owner. */
void
proto__conn_fail(proto_conn *c, int err)
{
	int saved = errno;

	if (c->closed)
		return;
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: closed: %s%s%s (%llu bytes "
	    "in, %llu out)", c->peer, proto_strerror(err),
	    err == PROTO_ERR_SYSTEM ? ": " : "",
	    err == PROTO_ERR_SYSTEM ? strerror(saved) : "",
	    (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
	/* on_close reads errno for PROTO_ERR_SYSTEM. */
	errno = saved;
	c->closed = 1;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	/* The guest first: the owner may free c in its on_close. Should
	 * the owner have freed c meanwhile, nothing follows for it. */
	(void)proto__conn_guest_close(c, err);
	errno = saved;
	if (!c->freed && c->cbs.on_close != NULL)
		c->cbs.on_close(c, err, c->ctx);
}

/* sa: the peer's address, for messages; NULL to ask the socket. */
static void
name_peer(proto_conn *c, const struct sockaddr *sa)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	const char *what = sa == NULL ? "accepted" : "connecting";

	if (sa == NULL && fd >= 0 &&
	    getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		sa = (struct sockaddr *)&ss;
	if (sa != NULL)
		format_addr(c, sa);
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: %s", c->peer, what);
}

/* What our HELLO's options say, copied from cfg, and what the peer's
 * mean until it says otherwise. */
static void
hello_options(proto_conn *c, const proto_conn_config *cfg)
{
	c->max_requests = cfg->max_requests;
	for (size_t i = 0; i < cfg->naddrs &&
	    c->naddrs < PROTO_HELLO_ADDRS_MAX; i++) {
		proto_addr_host(&cfg->addrs[i], c->addr_host[c->naddrs],
		    sizeof(c->addr_host[0]));
		c->addr_port[c->naddrs] = proto_addr_port(&cfg->addrs[i]);
		if (c->addr_port[c->naddrs] != 0 &&
		    strcmp(c->addr_host[c->naddrs], "?") != 0)
			c->naddrs++;
	}
	for (size_t i = 0; i < cfg->next && c->next < PROTO_HELLO_EXT_MAX;
	    i++) {
		const proto_hello_ext *e = &cfg->ext[i];
		if (e->name_len == 0 || e->name_len > PROTO_EXT_NAME_MAX ||
		    e->type < PROTO_MSG_EXT_MIN || e->type > PROTO_MSG_EXT_MAX)
			continue;
		memcpy(c->ext[c->next].name, e->name, e->name_len);
		c->ext[c->next].name[e->name_len] = '\0';
		c->ext[c->next++].type = e->type;
	}
	c->peer_maxreq = UINT32_MAX;
	c->peer_max_frame = PROTO_FRAME_MAX;
}

/* How a connection came: made or accepted as ever, or either end of a
 * relay's circuit (sa is then the relay's). */
enum conn_how { CONN_PLAIN, CONN_RELAY_OUT, CONN_RELAY_IN };

static proto_conn *
conn_setup(struct bufferevent *bev, const proto_conn_config *cfg,
    const proto_conn_cbs *cbs, void *ctx, const struct sockaddr *sa,
    enum conn_how how)
{
	proto_conn *c;
	struct timeval tv;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	c->bev = bev;
	c->cbs = *cbs;
	c->ctx = ctx;
	c->timeout = cfg->timeout ? cfg->timeout : DEFAULT_TIMEOUT;
	c->out_limit = cfg->out_limit ? cfg->out_limit : DEFAULT_OUT_LIMIT;
	c->rcvlowat = 1;
	c->max_frame = cfg->max_frame && cfg->max_frame < PROTO_FRAME_MAX ?
	    cfg->max_frame : PROTO_FRAME_MAX;
	snprintf(c->peer, sizeof(c->peer), "?");
	snprintf(c->host, sizeof(c->host), "?");
	name_peer(c, sa);
	tv.tv_sec = c->timeout;
	tv.tv_usec = 0;
	bufferevent_setcb(bev, proto__conn_read_cb, proto__conn_write_cb,
	    proto__conn_event_cb, c);
	if (evbuffer_add_cb(bufferevent_get_input(bev), proto__conn_input_cb,
	    c) == NULL) {
		proto__conn_really_free(c);
		return NULL;
	}
	if ((c->handshake = evtimer_new(bufferevent_get_base(bev),
	    proto__conn_handshake_expired, c)) == NULL ||
	    evtimer_add(c->handshake, &tv) != 0) {
		proto__conn_really_free(c);
		return NULL;
	}
	/* libevent moves 16 KiB per callback by default: far too little to
	 * keep up with loopback or a fast LAN. */
	bufferevent_set_max_single_read(bev, SINGLE_IO);
	bufferevent_set_max_single_write(bev, SINGLE_IO);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_setwatermark(bev, EV_WRITE, c->out_limit / 2, 0);
	proto__conn_set_read_marks(c, PROTO_FRAME_HEADER);
	if (cfg->limit != NULL) {
		if (bufferevent_add_to_rate_limit_group(bev,
		    cfg->limit->group) != 0) {
			proto__conn_really_free(c);
			return NULL;
		}
		c->limit = cfg->limit;
		c->limit->members++;
	}
	snprintf(c->name, sizeof(c->name), "%s",
	    cfg->node_name ? cfg->node_name : "");
	c->listen_port = cfg->listen_port;
	c->nfiles = cfg->nfiles;
	c->caps = cfg->caps;
	c->on_seen = cfg->on_seen;
	if (cfg->mapped != NULL && proto_addr_port(cfg->mapped) != 0) {
		proto_addr_host(cfg->mapped, c->mapped_host,
		    sizeof(c->mapped_host));
		c->mapped_port = proto_addr_port(cfg->mapped);
	}
	c->seen_ctx = cfg->seen_ctx;
	c->relay_port = cfg->relay_port;
	if (c->relay_port != 0)
		c->caps |= PROTO_CAP_RELAY | PROTO_CAP_PUNCH;
	if (cfg->record != NULL && cfg->record_len <= PROTO_RECORD_MAX) {
		memcpy(c->record, cfg->record, cfg->record_len);
		c->record_len = cfg->record_len;
	}
	hello_options(c, cfg);
	c->outbound = how == CONN_PLAIN ? sa != NULL : how == CONN_RELAY_OUT;
	c->owner_answers = !c->outbound;
	c->relayed = how != CONN_PLAIN;
	if ((c->ssl = bufferevent_openssl_get_ssl(bev)) != NULL) {
		/* A peer that just closes is an end, not an attack. */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		if (cfg->pin != NULL) {
			memcpy(c->pin, cfg->pin, sizeof(c->pin));
			c->has_pin = 1;
		}
		if (cfg->secret != NULL) {
			memcpy(c->secret, cfg->secret, sizeof(c->secret));
			c->has_secret = 1;
		}
	}
	/* Without TLS the HELLO goes at once; with it, once the handshake
	 * is done (tls_ready). */
	if ((c->ssl == NULL && proto__conn_send_hello(c) != 0) ||
	    bufferevent_enable(bev, EV_READ | EV_WRITE) != 0) {
		proto__conn_really_free(c);
		return NULL;
	}
	return c;
}

/* A connection made as ever (connrace.c's too). */
proto_conn *
proto__conn_setup(struct bufferevent *bev, const proto_conn_config *cfg,
    const proto_conn_cbs *cbs, void *ctx, const struct sockaddr *sa)
{
	return conn_setup(bev, cfg, cbs, ctx, sa, CONN_PLAIN);
}

proto_conn *
proto_conn_new(struct bufferevent *bev, const proto_conn_config *cfg,
    const proto_conn_cbs *cbs, void *ctx)
{
	evutil_socket_t fd = bufferevent_getfd(bev);
	proto_conn *c = conn_setup(bev, cfg, cbs, ctx, NULL, CONN_PLAIN);
	int one = 1;

	if (c == NULL)
		return NULL;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return c;
}

proto_conn *
proto_conn_accept(struct event_base *base, int fd,
    const proto_conn_config *cfg, const proto_conn_cbs *cbs, void *ctx)
{
	struct bufferevent *bev;

	if (cfg->tls != NULL) {
		SSL *ssl = SSL_new(cfg->tls);
		bev = ssl == NULL ? NULL : bufferevent_openssl_socket_new(base,
		    fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL && ssl != NULL)
			SSL_free(ssl);
	} else
		bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return NULL;
	}
	return proto_conn_new(bev, cfg, cbs, ctx);
}

proto_conn *
proto_conn_connect(struct event_base *base, const struct sockaddr *sa,
    socklen_t salen, const proto_conn_config *cfg, const proto_conn_cbs *cbs,
    void *ctx)
{
	struct bufferevent *bev;
	proto_conn *c;

	if (cfg->tls != NULL) {
		SSL *ssl = SSL_new(cfg->tls);
		if (ssl == NULL) {
			errno = ENOMEM;
			return NULL;
		}
		bev = bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL)
			SSL_free(ssl);
	} else
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL;
	if ((c = conn_setup(bev, cfg, cbs, ctx, sa, CONN_PLAIN)) == NULL)
		return NULL;
	if (bufferevent_socket_connect(bev, sa, (int)salen) != 0) {
		int err = errno;
		proto__conn_really_free(c);
		errno = err;
		return NULL;
	}
	return c;
}

/* Over a circuit of the relay at sa: our relay message goes first, plain,
 * then the handshake as ever, TLS as a filter over the same socket so that
 * it begins after the message. */
static proto_conn *
relayed(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
    const proto_relay_msg *m, const proto_conn_config *cfg,
    const proto_conn_cbs *cbs, void *ctx)
{
	uint8_t buf[PROTO_RELAY_MSG_MAX];
	struct bufferevent *plain, *bev;
	int outbound = m->kind == PROTO_RELAY_CONNECT;
	proto_conn *c;
	size_t n;

	if (proto_relay_msg_pack(m, buf, sizeof(buf), &n) != 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((plain = bufferevent_socket_new(base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		return NULL;
	if (bufferevent_socket_connect(plain, sa, (int)salen) != 0 ||
	    bufferevent_write(plain, buf, n) != 0) {
		int err = errno;
		bufferevent_free(plain);
		errno = err;
		return NULL;
	}
	bev = plain;
	if (cfg->tls != NULL) {
		SSL *ssl = SSL_new(cfg->tls);
		bev = ssl == NULL ? NULL : bufferevent_openssl_filter_new(base,
		    plain, ssl, outbound ? BUFFEREVENT_SSL_CONNECTING :
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL) {
			if (ssl != NULL)
				SSL_free(ssl);
			bufferevent_free(plain);
			errno = ENOMEM;
			return NULL;
		}
	}
	/* The relay's address names the peer in messages, either way. */
	if ((c = conn_setup(bev, cfg, cbs, ctx, sa, outbound ? CONN_RELAY_OUT :
	    CONN_RELAY_IN)) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

proto_conn *
proto_conn_connect_relayed(struct event_base *base, const struct sockaddr *sa,
    socklen_t salen, const uint8_t *id, const proto_conn_config *cfg,
    const proto_conn_cbs *cbs, void *ctx)
{
	proto_relay_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = PROTO_RELAY_CONNECT;
	m.rid = 1;
	memcpy(m.id, id, sizeof(m.id));
	return relayed(base, sa, salen, &m, cfg, cbs, ctx);
}

proto_conn *
proto_conn_accept_relayed(struct event_base *base, const struct sockaddr *sa,
    socklen_t salen, const uint8_t *token, const proto_conn_config *cfg,
    const proto_conn_cbs *cbs, void *ctx)
{
	proto_relay_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = PROTO_RELAY_ACCEPT;
	m.rid = 1;
	memcpy(m.token, token, sizeof(m.token));
	return relayed(base, sa, salen, &m, cfg, cbs, ctx);
}

void
proto_conn_free(proto_conn *c)
{
	if (c == NULL || c->freed)
		return;
	/* A refusal said is not dropped: whoever frees the connection, the
	 * peer learns why. */
	if (c->refusing) {
		proto_conn_close_after_flush(c);
		return;
	}
	if (proto__conn_free_shared(c))
		return;
	c->freed = 1;
	c->closed = 1;
	if (c->depth > 0)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	else
		proto__conn_really_free(c);
}

void
proto_conn_close_after_flush(proto_conn *c)
{
	struct timeval flush;

	if (c == NULL || c->freed || c->flushing)
		return;
	/* Still racing: nothing was sent, nothing is to flush. Its attempts
	 * end now, or one could win later and greet on a closed connection. */
	if (c->race != NULL || c->punch != NULL) {
		proto__conn_race_free(c);
		proto__conn_punch_free(c);
		proto_conn_free(c);
		return;
	}
	/* News held back goes with the rest (a seed that watches us counts
	 * our last HAVEs); failing that, it is dropped with the connection. */
	(void)proto_conn_flush_lazy(c);
	/* Its owner lets go: the connection must end by itself, however the
	 * peer behaves. */
	flush.tv_sec = c->timeout;
	flush.tv_usec = 0;
	c->deadline = evtimer_new(bufferevent_get_base(c->bev),
	    orphan_expired, c);
	if (c->deadline == NULL || event_add(c->deadline, &flush) != 0) {
		proto_conn_free(c);
		return;
	}
	c->flushing = 1;
	c->closed = 1;
	/* A guest hears of it from the loop, before c goes. */
	proto__conn_tell_guest(c);
	if (c->depth > 0 || evbuffer_get_length(bufferevent_get_output(c->bev))
	    > 0) {
		/* The write callback lingers once the output has gone. */
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_enable(c->bev, EV_WRITE);
		return;
	}
	proto__conn_linger(c);
}

/* event_base_foreach_event: finds a connection left to end by itself. */
static int
find_orphan(const struct event_base *base, const struct event *ev,
    void *arg)
{
	(void)base;
	if (event_get_callback(ev) != orphan_expired)
		return 0;
	*(proto_conn **)arg = event_get_callback_arg(ev);
	return 1;
}

/* A few turns of the loop, without waiting. */
static void
run_ready(struct event_base *base)
{
	for (int turn = 0; turn < 4; turn++)
		if (event_base_loop(base, EVLOOP_NONBLOCK) != 0)
			break;
}

void
proto_base_free(struct event_base *base)
{
	proto_conn *c;

	/* What connections closing after a flush can still send at once (an
	 * ERROR that says why) goes now. */
	run_ready(base);
	/* Then they go: they belong to no one, and each has its deadline
	 * timer on the base, which is how they are found. */
	for (;;) {
		c = NULL;
		event_base_foreach_event(base, find_orphan, &c);
		if (c == NULL)
			break;
		proto__conn_really_free(c);
	}
	/* A freed connection's last callbacks take a turn or two of the loop;
	 * with no event left, the loop returns 1 at once. */
	run_ready(base);
	event_base_free(base);
}

void
proto_conn_set_idle_timeout(proto_conn *c, unsigned secs)
{
	struct timeval rd = { secs, 0 }, wr = { c->timeout, 0 };

	c->idle_timeout = secs;
	/* Before the handshake its own deadline stays in force. */
	if (c->ready)
		bufferevent_set_timeouts(c->bev, secs ? &rd : NULL, &wr);
}
