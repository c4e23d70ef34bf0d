/*
 * A node's server: its life, its clients and their slots, the listener and
 * the connections it takes in, and the beacon that answers for it on the
 * LAN. What a client is answered is serveanswer.c's.
 *
 * A connection holds a slot from the moment it is accepted, before TLS and
 * before the private swarm's proof, so slots still in their handshake are
 * kept apart: one address may hold max_host_handshakes of them, and when
 * every slot (or the max_handshakes budget) is taken, a newcomer displaces
 * the oldest connection still in its handshake. Only a connection through
 * its handshake keeps its slot against all comers; the connection's own
 * deadline ends a handshake that drags on.
 *
 * The cap binds only while handshakes are many: below half the handshake
 * budget, with a slot free, an address past its cap is let in at once,
 * displacing nobody, so a hundred fetchers on one host start together
 * (held to 8 at a time, each fetcher's handshake waited for the other
 * processes' CPU, and on a busy machine some waited past the timeout and
 * failed). A trickling address can thus hold half the budget, never more,
 * and never a slot it had to displace anyone for. Past that, an address
 * past its cap waits rather than being refused: its surplus connections
 * are held, unread and holding no slot, in a queue of at most max_peers,
 * and taken in order as that address's handshakes end; one that waits
 * longer than the handshake timeout is closed. A trickling address thus
 * holds its own handshakes and waiting places, never another address's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "error.h"
#include "server_private.h"

#define DEFAULT_MAX_PEERS 50
#define DEFAULT_HOST_HANDSHAKES 8
#define WAITING_MAX 1024    /* connections held for their address's turn */

void
proto__server_say(proto_server *srv, int level, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	if (srv->cbs.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	srv->cbs.log(level, text, srv->ctx);
}

static void take_waiting(proto_server *srv, const char *host);

void
proto__server_client_free(struct client *cl)
{
	proto_server *srv = cl->srv;

	if (cl->conn != NULL) {
		srv->stats.bytes_in += proto_conn_bytes_in(cl->conn);
		srv->stats.bytes_out += proto_conn_bytes_out(cl->conn);
	}
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		srv->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	srv->nclients--;
	if (cl->handshaking)
		srv->nhandshaking--;
	/* A guest lets go; dropped for what it did, the connection ends
	 * too (its owner hears of it from the loop). */
	if (cl->guest)
		proto_conn_detach(cl->conn, !srv->freeing);
	else
		proto_conn_free(cl->conn);
	if (cl->handshaking && !srv->freeing)
		take_waiting(srv, cl->host);
	free(cl->queue);
	free(cl);
	/* A slot is free again: take the connections waiting for one. */
	if (srv->listener != NULL && srv->nclients < srv->cfg.max_peers)
		evconnlistener_enable(srv->listener);
}

static void
on_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct client *cl = arg;
	proto_server *srv = cl->srv;
	const char *host = proto_conn_peer_host(c);

	cl->handshaking = 0;
	srv->nhandshaking--;
	proto__server_say(srv, PROTO_LOG_DEBUG, "%s: connected (%s)",
	    proto_conn_peer(c), proto_conn_peer_name(c));
	take_waiting(srv, cl->host);
	/* Requests may flow both ways: the owner may ask here too, rather
	 * than connect again. Offered before the peer is named, so that a
	 * fetch told of it takes this connection. */
	if (proto_conn_duplex(c) && srv->cbs.on_duplex != NULL)
		srv->cbs.on_duplex(c, srv->ctx);
	/* A peer that listens can be passed on to others. */
	if (hello->listen_port != 0 && proto_addr_from_host(&cl->listen_at,
	    host, strlen(host), hello->listen_port) == 0) {
		const proto_known_peer *e;
		cl->listens = 1;
		/* Its record, if it sent one, must name the node that
		 * showed its identity here, and this address. */
		proto_peers_add(&srv->known, &cl->listen_at,
		    proto_conn_peer_id(c), hello->opts.rec,
		    hello->opts.rec_len);
		if ((e = proto_peers_find(&srv->known, &cl->listen_at)) != NULL)
			cl->listen_at = e->addr;
		if (srv->cbs.on_peer != NULL)
			srv->cbs.on_peer(&cl->listen_at, srv->ctx);
	}
}

void
proto__server_touch_known(proto_server *srv)
{
	time_t now = time(NULL);

	if (now - srv->known_touched < 60)
		return;
	srv->known_touched = now;
	for (const struct client *cl = srv->clients; cl; cl = cl->next)
		if (cl->listens && !cl->handshaking)
			proto_peers_add(&srv->known, &cl->listen_at,
			    proto_conn_peer_id(cl->conn), NULL, 0);
}

static void
on_close(proto_conn *c, int err, void *arg)
{
	struct client *cl = arg;
	const char *detail = proto_conn_error_detail(c);

	proto__server_say(cl->srv, err == PROTO_ERR_CLOSED ? PROTO_LOG_DEBUG :
	    PROTO_LOG_INFO, "%s: closed: %s%s%s", proto_conn_peer(c),
	    err == PROTO_ERR_SYSTEM ? strerror(errno) : proto_strerror(err),
	    *detail ? ": " : "", detail);
	proto__server_client_free(cl);
}

/* Idle clients are dropped after ten timeouts, so they cannot hold a peer
 * slot forever. */
static int
on_idle(proto_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	return 0;
}

static const proto_conn_cbs client_cbs = { on_ready, proto__server_on_msg,
    on_close, on_idle, proto__server_on_written, NULL };

/* Its owner let go: the connection is ours now, ended when idle too. */
static void
on_handed(proto_conn *c, void *arg)
{
	struct client *cl = arg;

	cl->guest = 0;
	proto_conn_set_idle_timeout(c, 10 * cl->srv->cfg.conn.timeout);
}

static const proto_conn_cbs guest_cbs = { NULL, proto__server_on_msg,
    on_close, on_idle, proto__server_on_written, on_handed };

int
proto_server_adopt(proto_server *srv, proto_conn *c)
{
	struct client *cl;
	const char *host = proto_conn_peer_host(c);
	int rc;

	if (srv->nclients >= srv->cfg.max_peers)
		return PROTO_ERR_TOO_BIG;
	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		return PROTO_ERR_NOMEM;
	if ((rc = proto_conn_attach(c, &guest_cbs, cl)) != 0) {
		free(cl);
		return rc;
	}
	cl->srv = srv;
	cl->conn = c;
	cl->guest = 1;
	snprintf(cl->host, sizeof(cl->host), "%s", host);
	/* Its answers must never stop the owner's reading. */
	proto_conn_raise_out_limit(c, srv->cfg.conn.out_limit);
	cl->seq = srv->accepted++;
	cl->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = cl;
	srv->clients = cl;
	srv->nclients++;
	proto__server_say(srv, PROTO_LOG_DEBUG, "%s: answered on a connection "
	    "this node made", proto_conn_peer(c));
	return 0;
}

proto_conn *
proto_server_duplex_conn(const proto_server *srv, const proto_addr *a)
{
	char host[PROTO_ADDR_TEXT_MAX];

	proto_addr_host(a, host, sizeof(host));
	for (const struct client *cl = srv->clients; cl; cl = cl->next) {
		const uint8_t *id = proto_conn_peer_id(cl->conn);
		if (cl->guest || cl->handshaking ||
		    !proto_conn_duplex(cl->conn) ||
		    !proto_conn_answers(cl->conn))
			continue;
		/* The same node: its identity when pinned, else where it
		 * listens. */
		if (a->has_pin ? id != NULL && memcmp(id, a->pin,
		    PROTO_IDENTITY_LEN) == 0 :
		    proto_conn_peer_listen_port(cl->conn) ==
		    proto_addr_port(a) &&
		    strcmp(proto_conn_peer_host(cl->conn), host) == 0)
			return cl->conn;
	}
	return NULL;
}

/* The connection longest in its handshake, or NULL. */
static struct client *
oldest_handshaking(const proto_server *srv)
{
	struct client *old = NULL;

	for (struct client *cl = srv->clients; cl; cl = cl->next)
		if (cl->handshaking && (old == NULL || cl->seq < old->seq))
			old = cl;
	return old;
}

static unsigned
handshakes_from(const proto_server *srv, const char *host)
{
	unsigned n = 0;

	for (const struct client *cl = srv->clients; cl; cl = cl->next)
		n += cl->handshaking && strcmp(cl->host, host) == 0;
	return n;
}

/* 1 when host must wait for one of its handshakes to end: it is at its
 * cap, and the server has no handshake room to spare (half the budget in
 * use, or every slot taken). */
static int
must_wait(const proto_server *srv, const char *host)
{
	return handshakes_from(srv, host) >= srv->cfg.max_host_handshakes &&
	    (srv->nhandshaking >= srv->cfg.max_handshakes / 2 ||
	    srv->nclients >= srv->cfg.max_peers);
}

/* Takes fd from host:port in: a slot, its handshake under way. */
static void
admit(proto_server *srv, evutil_socket_t fd, const char *host, uint16_t port)
{
	struct client *cl, *old;

	if ((srv->nhandshaking >= srv->cfg.max_handshakes ||
	    srv->nclients >= srv->cfg.max_peers) &&
	    (old = oldest_handshaking(srv)) != NULL) {
		proto__server_say(srv, PROTO_LOG_DEBUG, "%s: dropped: its "
		    "handshake, the oldest of %u under way, gives way to %s:%u",
		    proto_conn_peer(old->conn), srv->nhandshaking, host, port);
		proto__server_client_free(old);
	}
	if (srv->nclients >= srv->cfg.max_peers) {
		/* Refuse at once rather than leave it waiting in the backlog:
		 * the peer sees the connection close and tries elsewhere. */
		evutil_closesocket(fd);
		proto__server_say(srv, PROTO_LOG_DEBUG,
		    "refused %s:%u: %u peers", host, port, srv->nclients);
		return;
	}
	if ((cl = calloc(1, sizeof(*cl))) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	cl->srv = srv;
	snprintf(cl->host, sizeof(cl->host), "%s", host);
	srv->cfg.conn.nfiles = proto_store_count(srv->store);
	srv->cfg.conn.record = NULL;
	srv->cfg.conn.record_len = 0;
	if (srv->cbs.record != NULL)
		srv->cfg.conn.record = srv->cbs.record(
		    &srv->cfg.conn.record_len, srv->ctx);
	if ((cl->conn = proto_conn_accept(srv->base, fd, &srv->cfg.conn,
	    &client_cbs, cl)) == NULL) {
		free(cl);
		return;
	}
	proto_conn_set_idle_timeout(cl->conn, 10 * srv->cfg.conn.timeout);
	cl->handshaking = 1;
	cl->seq = srv->accepted++;
	cl->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = cl;
	srv->clients = cl;
	srv->nclients++;
	srv->nhandshaking++;
	srv->stats.peers++;
}

/* host's handshakes went below the cap: its oldest waiting connection, if
 * any, gets its turn. */
static void
take_waiting(proto_server *srv, const char *host)
{
	unsigned i;
	struct waiting w;

	if (must_wait(srv, host))
		return;
	for (i = 0; i < srv->nwaiting; i++)
		if (strcmp(srv->waiting[i].host, host) == 0)
			break;
	if (i == srv->nwaiting)
		return;
	w = srv->waiting[i];
	memmove(&srv->waiting[i], &srv->waiting[i + 1],
	    (srv->nwaiting - i - 1) * sizeof(srv->waiting[0]));
	srv->nwaiting--;
	admit(srv, w.fd, w.host, w.port);
}

/* Waits past the handshake timeout end: the peer has long given up. */
static void
waiting_expired(evutil_socket_t fd, short what, void *arg)
{
	proto_server *srv = arg;
	struct timeval now, limit = { srv->cfg.conn.timeout ?
	    (time_t)srv->cfg.conn.timeout : 30, 0 }, age;

	/* Whole seconds are fine: the timer runs once a second. */
	unsigned i = 0, kept = 0;
	struct timeval second = { 1, 0 };

	(void)fd;
	(void)what;
	event_base_gettimeofday_cached(srv->base, &now);
	for (i = 0; i < srv->nwaiting; i++) {
		evutil_timersub(&now, &srv->waiting[i].since, &age);
		if (age.tv_sec >= limit.tv_sec) {
			proto__server_say(srv, PROTO_LOG_DEBUG, "%s:%u: waited "
			    "%ld s for its address's handshakes; closed",
			    srv->waiting[i].host, srv->waiting[i].port,
			    (long)age.tv_sec);
			evutil_closesocket(srv->waiting[i].fd);
		} else
			srv->waiting[kept++] = srv->waiting[i];
	}
	srv->nwaiting = kept;
	if (srv->nwaiting > 0)
		evtimer_add(srv->waiting_ev, &second);
}

static void
on_accept(struct evconnlistener *lst, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	proto_server *srv = arg;
	char host[PROTO_HOST_MAX + 1];
	uint16_t port;

	(void)lst;
	(void)salen;
	proto_peers_host_port(sa, host, &port);
	if (must_wait(srv, host)) {
		/* One address cannot hold the handshake slots, nor churn
		 * through them displacing others: its surplus waits its
		 * turn, or, the queue full, is refused. */
		struct waiting *w;
		struct timeval second = { 1, 0 };
		if (srv->nwaiting >= srv->waiting_max) {
			evutil_closesocket(fd);
			proto__server_say(srv, PROTO_LOG_DEBUG,
			    "refused %s:%u: %u handshakes from it under way, "
			    "%u waiting", host, port,
			    srv->cfg.max_host_handshakes, srv->nwaiting);
			return;
		}
		w = &srv->waiting[srv->nwaiting++];
		w->fd = fd;
		snprintf(w->host, sizeof(w->host), "%s", host);
		w->port = port;
		event_base_gettimeofday_cached(srv->base, &w->since);
		if (!evtimer_pending(srv->waiting_ev, NULL))
			evtimer_add(srv->waiting_ev, &second);
		return;
	}
	admit(srv, fd, host, port);
}

static void
retry_accept(evutil_socket_t fd, short what, void *arg)
{
	proto_server *srv = arg;

	(void)fd;
	(void)what;
	if (srv->nclients < srv->cfg.max_peers)
		evconnlistener_enable(srv->listener);
}

/* Out of descriptors, the listener would spin on the pending connection:
 * pause it for a second instead. */
static void
on_accept_error(struct evconnlistener *lst, void *arg)
{
	proto_server *srv = arg;
	struct timeval second = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	proto__server_say(srv, PROTO_LOG_WARN, "accept: %s",
	    evutil_socket_error_to_string(err));
	evconnlistener_disable(lst);
	evtimer_add(srv->retry_ev, &second);
}

proto_server *
proto_server_new(struct event_base *base, proto_store *store,
    const proto_server_config *cfg, const proto_server_cbs *cbs, void *ctx)
{
	proto_server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	srv->base = base;
	srv->store = store;
	srv->cfg = *cfg;
	if (srv->cfg.max_peers == 0)
		srv->cfg.max_peers = DEFAULT_MAX_PEERS;
	if (srv->cfg.max_handshakes == 0 ||
	    srv->cfg.max_handshakes > srv->cfg.max_peers)
		srv->cfg.max_handshakes = srv->cfg.max_peers;
	if (srv->cfg.max_host_handshakes == 0)
		srv->cfg.max_host_handshakes = DEFAULT_HOST_HANDSHAKES;
	/* It may ask on what it accepted (a fetch of the node's does). */
	srv->cfg.conn.caps |= PROTO_CAP_SWARM | PROTO_CAP_DUPLEX |
	    PROTO_CAP_HASHES | PROTO_CAP_TREES;
	/* Past REQUESTS_MAX a request is answered BUSY, so that is what a
	 * client may have out. */
	if (srv->cfg.conn.max_requests == 0)
		srv->cfg.conn.max_requests = REQUESTS_MAX;
	proto_server_set_addrs(srv, cfg->conn.addrs, cfg->conn.naddrs);
	proto_server_set_mapped(srv, cfg->conn.mapped);
	if (srv->cfg.inline_chunks == 0)
		srv->cfg.inline_chunks = PROTO_SERVER_INLINE_CHUNKS;
	if (srv->cfg.inline_chunks > PROTO_INLINE_MAX)
		srv->cfg.inline_chunks = PROTO_INLINE_MAX;
	/* Read requests (and CANCELs) while the largest chunk waits to go
	 * out beside what the queue lets in: the queue, not the connection,
	 * bounds what a client holds. */
	if (srv->cfg.conn.out_limit == 0)
		srv->cfg.conn.out_limit = QUEUED_BYTES + PROTO_CHUNK_MAX +
		    (1u << 20);
	if (cbs != NULL)
		srv->cbs = *cbs;
	srv->ctx = ctx;
	proto_peers_init(&srv->known);
	srv->waiting_max = srv->cfg.max_peers < WAITING_MAX ?
	    srv->cfg.max_peers : WAITING_MAX;
	srv->retry_ev = evtimer_new(base, retry_accept, srv);
	srv->waiting_ev = evtimer_new(base, waiting_expired, srv);
	srv->waiting = calloc(srv->waiting_max, sizeof(*srv->waiting));
	if (srv->retry_ev == NULL || srv->waiting_ev == NULL ||
	    srv->waiting == NULL) {
		proto_server_free(srv);
		return NULL;
	}
	return srv;
}

void
proto_server_set_mapped(proto_server *srv, const proto_addr *mapped)
{
	if (mapped != NULL)
		srv->mapped = *mapped;
	srv->cfg.conn.mapped = mapped != NULL ? &srv->mapped : NULL;
}

void
proto_server_set_addrs(proto_server *srv, const proto_addr *addrs, size_t n)
{
	if (n > PROTO_HELLO_ADDRS_MAX)
		n = PROTO_HELLO_ADDRS_MAX;
	for (size_t i = 0; i < n; i++)
		srv->addrs[i] = addrs[i];
	srv->cfg.conn.addrs = srv->addrs;
	srv->cfg.conn.naddrs = n;
}

void
proto_server_free(proto_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->listener != NULL)
		evconnlistener_free(srv->listener);
	srv->listener = NULL;
	srv->freeing = 1;
	while (srv->clients)
		proto__server_client_free(srv->clients);
	for (unsigned i = 0; i < srv->nwaiting; i++)
		evutil_closesocket(srv->waiting[i].fd);
	free(srv->waiting);
	proto_beacon_free(srv->beacon);
	if (srv->retry_ev != NULL)
		event_free(srv->retry_ev);
	if (srv->waiting_ev != NULL)
		event_free(srv->waiting_ev);
	free(srv);
}

int
proto_server_listen(proto_server *srv, const struct sockaddr *sa,
    socklen_t salen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	srv->listener = evconnlistener_new_bind(srv->base, on_accept, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, sa, (int)salen);
	if (srv->listener == NULL)
		return PROTO_ERR_SYSTEM;
	evconnlistener_set_error_cb(srv->listener, on_accept_error);
	if (getsockname(evconnlistener_get_fd(srv->listener),
	    (struct sockaddr *)&ss, &len) != 0)
		return PROTO_ERR_SYSTEM;
	srv->cfg.conn.listen_port = ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

uint16_t
proto_server_port(const proto_server *srv)
{
	return srv->cfg.conn.listen_port;
}

static int
beacon_has(const uint8_t id[PROTO_HASH_LEN], void *arg)
{
	proto_server *srv = arg;

	return proto_store_find(srv->store, id) != NULL;
}

static uint64_t
beacon_nfiles(void *arg)
{
	proto_server *srv = arg;

	return proto_store_count(srv->store);
}

static void
beacon_announce(const struct sockaddr_in *from, const proto_disco_msg *m,
    void *arg)
{
	proto_server *srv = arg;
	const char *name = srv->cfg.conn.node_name ? srv->cfg.conn.node_name :
	    "";
	proto_addr a;

	if (m->port == srv->cfg.conn.listen_port && m->name_len ==
	    strlen(name) && memcmp(m->name, name, m->name_len) == 0)
		return; /* most likely our own announcement */
	if (proto_addr_from_sockaddr(&a, (const struct sockaddr *)from,
	    sizeof(*from)) != 0)
		return;
	proto_addr_set_port(&a, m->port);
	/* Whoever can send a datagram can say anything in it: a node is
	 * passed on only once a connection to it shows it is there. */
	if (proto_peers_heard(&srv->known, &a, NULL, 0) == 1 &&
	    srv->cbs.on_heard != NULL)
		srv->cbs.on_heard(&a, srv->ctx);
}

static void
beacon_bad(const struct sockaddr_in *from, int err, void *arg)
{
	char host[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &from->sin_addr, host, sizeof(host));
	proto__server_say(arg, PROTO_LOG_DEBUG, "datagram from %s:%u: %s; "
	    "ignored", host, ntohs(from->sin_port), proto_strerror(err));
}

int
proto_server_start_beacon(proto_server *srv, const proto_beacon_config *cfg)
{
	static const proto_beacon_cbs cbs = { beacon_has, beacon_nfiles,
	    beacon_announce, beacon_bad };
	proto_beacon_config bc = *cfg;

	bc.tcp_port = srv->cfg.conn.listen_port;
	bc.name = srv->cfg.conn.node_name;
	srv->beacon = proto_beacon_new(srv->base, &bc, &cbs, srv);
	return srv->beacon != NULL ? 0 : PROTO_ERR_SYSTEM;
}

proto_peer_table *
proto_server_known(proto_server *srv)
{
	return &srv->known;
}

int
proto_server_connected_from(const proto_server *srv, const char *host,
    uint16_t port)
{
	for (const struct client *cl = srv->clients; cl; cl = cl->next)
		if (proto_conn_peer_listen_port(cl->conn) == port &&
		    strcmp(proto_conn_peer_host(cl->conn), host) == 0)
			return 1;
	return 0;
}

unsigned
proto_server_clients(const proto_server *srv)
{
	return srv->nclients;
}

void
proto_server_stats_get(const proto_server *srv, proto_server_stats *st)
{
	*st = srv->stats;
	for (const struct client *cl = srv->clients; cl; cl = cl->next) {
		st->bytes_in += proto_conn_bytes_in(cl->conn);
		st->bytes_out += proto_conn_bytes_out(cl->conn);
	}
	st->datagrams_bad = srv->beacon ? proto_beacon_bad(srv->beacon) : 0;
}
