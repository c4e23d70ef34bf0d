/*
 * A node's server: its life, its clients and their slots, the listener and
 * the connections it takes in, and the beacon that answers for it on the
 * LAN. What a client is answered is serveanswer.c's.
 *
 * How connections are let in (slots, handshakes, an address's waiting
 * queue) is serveadmit.c's.
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

void
proto__server_client_link(proto_server *srv, struct client *cl)
{
	cl->seq = srv->accepted++;
	cl->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = cl;
	srv->clients = cl;
	srv->nclients++;
}

void
proto__server_client_free(struct client *cl)
{
	proto_server *srv = cl->srv;

	/* Told while its connection is still there to name the peer. */
	proto__server_upload_end(cl);
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
	/* First, while it is still attached: a super-seeded client we
	 * watch as the guest of its connection lets go of it. */
	proto__server_super_drop(cl);
	/* A guest lets go; dropped for what it did, the connection ends
	 * too (its owner hears of it from the loop). */
	if (cl->guest)
		proto_conn_detach(cl->conn, !srv->freeing);
	else
		proto_conn_free(cl->conn);
	if (cl->handshaking && !srv->freeing)
		proto__server_take_waiting(srv, cl->host);
	for (unsigned i = 0; i < cl->count; i++)
		proto__server_request_done(&cl->queue[(cl->head + i) %
		    cl->cap]);
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
	proto__server_take_waiting(srv, cl->host);
	cl->chokes = (proto_conn_peer_caps(c) & PROTO_CAP_CHOKE) != 0;
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

int
proto__server_gone(proto_server *srv, proto_conn *c, uint32_t rid,
    const uint8_t *id)
{
	if (!proto_store_withdrawn(srv->store, id))
		return 0;
	proto_conn_send_error(c, rid, PROTO_CODE_CHANGED, "changed on this "
	    "node: shared no more");
	return 1;
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

const proto_conn_cbs proto__server_client_cbs = { on_ready, proto__server_on_msg,
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
	/* Our HELLO here was the fetch's, which states the cap too. */
	cl->chokes = (proto_conn_peer_caps(c) & PROTO_CAP_CHOKE) != 0;
	snprintf(cl->host, sizeof(cl->host), "%s", host);
	/* Its answers must never stop the owner's reading. */
	proto_conn_raise_out_limit(c, srv->cfg.conn.out_limit);
	proto__server_client_link(srv, cl);
	/* A node we connected to that listens is one to pass on, as those
	 * that connect to us are: else a fetcher's table would hold only
	 * the peers that found it, and PEERS would spread nothing. */
	if (proto_conn_peer_listen_port(c) != 0 &&
	    proto_addr_from_host(&cl->listen_at, host, strlen(host),
	    proto_conn_peer_listen_port(c)) == 0) {
		const proto_known_peer *e;
		cl->listens = 1;
		proto_peers_add(&srv->known, &cl->listen_at,
		    proto_conn_peer_id(c), NULL, 0);
		if ((e = proto_peers_find(&srv->known, &cl->listen_at)) != NULL)
			cl->listen_at = e->addr;
	}
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
		/* One a fetch asks on already takes no second: another
		 * fetch of the same node's (a tree's files, several at
		 * once) would connect anew, and those connections, kept
		 * for the peer's requests, would pile up past its
		 * --max-peers. */
		if (cl->guest || cl->handshaking ||
		    !proto_conn_duplex(cl->conn) ||
		    !proto_conn_answers(cl->conn) ||
		    !proto_conn_attachable(cl->conn))
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
	    PROTO_CAP_HASHES | PROTO_CAP_TREES | PROTO_CAP_CHOKE |
	    PROTO_CAP_FILES;
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
	srv->retry_ev = evtimer_new(base, proto__server_retry_accept, srv);
	srv->waiting_ev = evtimer_new(base, proto__server_waiting_expired, srv);
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
	proto__server_super_free(srv);
	proto__server_choke_free(srv);
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

	srv->listener = evconnlistener_new_bind(srv->base, proto__server_on_accept, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, sa, (int)salen);
	if (srv->listener == NULL)
		return PROTO_ERR_SYSTEM;
	evconnlistener_set_error_cb(srv->listener, proto__server_on_accept_error);
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
beacon_announce(const struct sockaddr *from, const proto_disco_msg *m,
    void *arg)
{
	proto_server *srv = arg;
	const char *name = srv->cfg.conn.node_name ? srv->cfg.conn.node_name :
	    "";
	proto_addr a;

	if (m->port == srv->cfg.conn.listen_port && m->name_len ==
	    strlen(name) && memcmp(m->name, name, m->name_len) == 0)
		return; /* most likely our own announcement */
	/* A link-local source names no address another host could use:
	 * nodes announce from a routable one (disco6.c). */
	if (from->sa_family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(
	    &((const struct sockaddr_in6 *)(const void *)from)->sin6_addr))
		return;
	if (proto_addr_from_sockaddr(&a, from, from->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) != 0)
		return;
	proto_addr_set_port(&a, m->port);
	/* Whoever can send a datagram can say anything in it: a node is
	 * passed on only once a connection to it shows it is there. */
	if (proto_peers_heard(&srv->known, &a, NULL, 0) == 1 &&
	    srv->cbs.on_heard != NULL)
		srv->cbs.on_heard(&a, srv->ctx);
}

static void
beacon_bad(const struct sockaddr *from, int err, void *arg)
{
	proto_addr a;

	if (proto_addr_from_sockaddr(&a, from, from->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) != 0)
		return;
	proto__server_say(arg, PROTO_LOG_DEBUG, "datagram from %s: %s; "
	    "ignored", proto_addr_text(&a), proto_strerror(err));
}

/* The families the listener takes: an announcement over another names,
 * as its source address, somewhere nobody listens. An IPv6 wildcard takes
 * IPv4 too unless IPV6_V6ONLY. 0: both. */
static int
listen_family(proto_server *srv)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in6 *s6 = (const void *)&ss;
	socklen_t len = sizeof(ss);
	int only = 0;
	socklen_t olen = sizeof(only);
	evutil_socket_t fd;

	if (srv->listener == NULL)
		return 0;
	fd = evconnlistener_get_fd(srv->listener);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET || (ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)))
		return AF_INET;
	if (ss.ss_family != AF_INET6)
		return 0;
	if (!IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ||
	    (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, &olen) == 0 &&
	    only))
		return AF_INET6;
	return 0;
}

int
proto_server_start_beacon(proto_server *srv, const proto_beacon_config *cfg)
{
	static const proto_beacon_cbs cbs = { beacon_has, beacon_nfiles,
	    beacon_announce, beacon_bad };
	proto_beacon_config bc = *cfg;

	bc.tcp_port = srv->cfg.conn.listen_port;
	bc.name = srv->cfg.conn.node_name;
	if (bc.family == 0)
		bc.family = listen_family(srv);
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
