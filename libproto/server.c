/*
 * A node's server. Each client has a queue of the requests it sent, answered
 * in order as its output drains: everything but chunk data is small, and
 * chunk data go in while less than QUEUED_BYTES wait to be written, so the
 * rest of the queue can still be cancelled. A full queue stops reading from
 * that client until answers go out.
 *
 * A connection holds a slot from the moment it is accepted, before TLS and
 * before the private swarm's proof, so slots still in their handshake are
 * kept apart: one address may hold max_host_handshakes of them, and when
 * every slot (or the max_handshakes budget) is taken, a newcomer displaces
 * the oldest connection still in its handshake. Only a connection through
 * its handshake keeps its slot against all comers; the connection's own
 * deadline ends a handshake that drags on.
 *
 * An address past its handshakes waits rather than being refused: a
 * hundred fetchers on one host (or behind one NAT) start at once, and each
 * must get its turn. Its surplus connections are held, unread and holding
 * no slot, in a queue of at most max_peers, and taken in order as that
 * address's handshakes end; one that waits longer than the handshake
 * timeout is closed. A trickling address thus holds its own handshakes and
 * waiting places, never another address's.
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
#define LIST_MAX 16000      /* entries per LIST_REPLY: within a frame */
#define WAITING_MAX 1024    /* connections held for their address's turn */

static void
say(proto_server *srv, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(proto_server *srv, int level, const char *fmt, ...)
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

static void
client_free(struct client *cl)
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
	proto_conn_free(cl->conn);
	if (cl->handshaking && !srv->freeing)
		take_waiting(srv, cl->host);
	free(cl);
	/* A slot is free again: take the connections waiting for one. */
	if (srv->listener != NULL && srv->nclients < srv->cfg.max_peers)
		evconnlistener_enable(srv->listener);
}

static void
answer_list(proto_server *srv, proto_conn *c, uint32_t rid)
{
	size_t n = proto_store_count(srv->store);
	proto_list_entry *entries;
	proto_msg m;

	if (n > LIST_MAX)
		n = LIST_MAX;
	if ((entries = calloc(n ? n : 1, sizeof(*entries))) == NULL) {
		proto_conn_send_error(c, rid, PROTO_CODE_INTERNAL,
		    "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const proto_manifest *mf = proto_store_get(srv->store, i);
		entries[i].id = mf->id;
		entries[i].size = mf->size;
		entries[i].name = mf->name;
		entries[i].name_len = strlen(mf->name);
	}
	proto_msg_init(&m, PROTO_MSG_LIST_REPLY);
	m.rid = rid;
	m.entries = entries;
	m.nentries = n;
	proto_conn_send(c, &m);
	free(entries);
}

static void
answer_manifest(proto_server *srv, proto_conn *c, const struct request *r)
{
	const proto_manifest *mf = proto_store_find(srv->store, r->id);
	proto_msg m;

	if (mf == NULL) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_NOT_FOUND,
		    "no such file");
		return;
	}
	proto_msg_init(&m, PROTO_MSG_MANIFEST);
	m.rid = r->rid;
	/* Packing a MANIFEST never includes the local path. */
	m.manifest = (proto_manifest *)mf;
	if (proto_conn_send(c, &m) == 0)
		srv->stats.manifests_out++;
}

static void
answer_chunk(proto_server *srv, proto_conn *c, const struct request *r)
{
	const proto_manifest *mf = proto_store_find(srv->store, r->id);
	uint64_t off;
	size_t len;
	int fd, rc;

	if (mf == NULL) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_NOT_FOUND,
		    "no such file");
		return;
	}
	if (!proto_chunk_size_valid(mf->size, r->chunk_size)) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_BAD_REQUEST,
		    "chunk size not valid for this file");
		return;
	}
	if (r->index >= proto_chunk_count(mf->size, r->chunk_size)) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_NOT_FOUND,
		    "no such chunk");
		return;
	}
	if (!proto_store_holds(srv->store, r->id, r->chunk_size, r->index)) {
		proto_conn_send_error(c, r->rid, PROTO_CODE_NOT_FOUND,
		    "chunk not held");
		return;
	}
	off = r->index * (uint64_t)r->chunk_size;
	len = proto_chunk_len(mf->size, r->chunk_size, r->index);
	if ((rc = proto_store_open(srv->store, r->id, &fd)) != 0 ||
	    (rc = proto_store_check(srv->store, r->id, off, len)) != 0 ||
	    (rc = proto_conn_send_chunk_file(c, r->rid, fd, off, len)) != 0) {
		say(srv, PROTO_LOG_WARN, "%s: %s", mf->path ? mf->path : mf->name,
		    rc == PROTO_ERR_SYSTEM ? strerror(errno) :
		    rc == PROTO_ERR_MISMATCH ? "not the file its manifest "
		    "describes (changed on disk since it was chunked?); not "
		    "served" : proto_strerror(rc));
		proto_conn_send_error(c, r->rid, PROTO_CODE_INTERNAL,
		    "file unavailable");
		return;
	}
	srv->stats.chunks_out++;
}

static void
answer_peers(proto_server *srv, proto_conn *c, uint32_t rid)
{
	proto_peer_entry list[PROTO_PEERS_MAX];
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_PEERS_REPLY);
	m.rid = rid;
	m.peers = list;
	m.npeers = proto_peers_list(&srv->known, list, PROTO_PEERS_MAX,
	    proto_conn_peer_host(c), proto_conn_peer_listen_port(c));
	proto_conn_send(c, &m);
}

static void
answer_has(proto_server *srv, proto_conn *c, const struct request *r)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_HAS_REPLY);
	m.rid = r->rid;
	m.has = proto_store_find(srv->store, r->id) != NULL;
	proto_conn_send(c, &m);
}

/* What the node holds of the file, and a HAVE for each chunk it gets
 * from now on. */
static void
answer_interested(struct client *cl, const struct request *r)
{
	proto_server *srv = cl->srv;
	const proto_manifest *mf = proto_store_find(srv->store, r->id);
	const proto_have *have;
	proto_have whole;
	proto_msg m;

	if (mf == NULL) {
		proto_conn_send_error(cl->conn, r->rid, PROTO_CODE_NOT_FOUND,
		    "no such file");
		return;
	}
	if ((have = proto_store_have(srv->store, r->id)) == NULL) {
		if (proto_have_init(&whole, mf->nchunks) != 0) {
			proto_conn_send_error(cl->conn, r->rid,
			    PROTO_CODE_INTERNAL, "out of memory");
			return;
		}
		proto_have_fill(&whole);
		have = &whole;
	}
	proto_msg_init(&m, PROTO_MSG_HAVE_MAP);
	m.rid = r->rid;
	m.chunk_size = mf->chunk_size;
	m.bits = have->bits;
	m.bits_len = proto_have_bytes(have->n);
	proto_conn_send(cl->conn, &m);
	if (have == &whole)
		proto_have_free(&whole);
	cl->interested = 1;
	memcpy(cl->interest, r->id, PROTO_HASH_LEN);
}

static void
answer(struct client *cl, const struct request *r)
{
	proto_server *srv = cl->srv;
	proto_conn *c = cl->conn;

	if (r->cancelled) {
		srv->stats.cancelled++;
		proto_conn_send_error(c, r->rid, PROTO_CODE_CANCELLED,
		    "cancelled");
		return;
	}
	switch (r->type) {
	case PROTO_MSG_LIST:
		answer_list(srv, c, r->rid);
		break;
	case PROTO_MSG_GET_MANIFEST:
		answer_manifest(srv, c, r);
		break;
	case PROTO_MSG_GET_CHUNK:
		answer_chunk(srv, c, r);
		break;
	case PROTO_MSG_PEERS:
		answer_peers(srv, c, r->rid);
		break;
	case PROTO_MSG_HAS:
		answer_has(srv, c, r);
		break;
	case PROTO_MSG_INTERESTED:
		answer_interested(cl, r);
		break;
	default:
		proto_conn_send_error(c, r->rid, PROTO_CODE_BAD_REQUEST,
		    "unexpected message");
		break;
	}
}

/* Answers queued requests while little output waits; reading resumes once
 * the queue has room. */
static void
drain(struct client *cl)
{
	while (cl->count > 0 &&
	    proto_conn_pending_out(cl->conn) < QUEUED_BYTES) {
		struct request r = cl->queue[cl->head];
		cl->head = (cl->head + 1) % PENDING_MAX;
		cl->count--;
		answer(cl, &r);
	}
	proto_conn_hold(cl->conn, cl->count == PENDING_MAX);
}

static void
cancel(struct client *cl, uint32_t rid)
{
	for (unsigned i = 0; i < cl->count; i++) {
		struct request *r = &cl->queue[(cl->head + i) % PENDING_MAX];
		if (r->rid == rid && !r->cancelled) {
			r->cancelled = 1;
			return;
		}
	}
	/* Answered already, or never asked: nothing to do. */
}

static void
on_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct client *cl = arg;
	struct request *r;

	say(cl->srv, PROTO_LOG_TRACE, "%s: %s rid %u", proto_conn_peer(c),
	    proto_msg_type_name(m->type), m->rid);
	if (m->type == PROTO_MSG_CANCEL) {
		cancel(cl, m->rid);
		return;
	}
	/* The connection is held while the queue is full, so there is
	 * always room here. */
	r = &cl->queue[(cl->head + cl->count) % PENDING_MAX];
	memset(r, 0, sizeof(*r));
	r->type = m->type;
	r->rid = m->rid;
	if (m->id != NULL)
		memcpy(r->id, m->id, PROTO_HASH_LEN);
	r->index = m->index;
	r->chunk_size = m->chunk_size;
	cl->count++;
	drain(cl);
}

static void
on_written(proto_conn *c, void *arg)
{
	(void)c;
	drain(arg);
}

static void
on_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct client *cl = arg;
	proto_server *srv = cl->srv;
	const char *host = proto_conn_peer_host(c);

	cl->handshaking = 0;
	srv->nhandshaking--;
	say(srv, PROTO_LOG_DEBUG, "%s: connected (%s)", proto_conn_peer(c),
	    proto_conn_peer_name(c));
	take_waiting(srv, cl->host);
	/* A peer that listens can be passed on to others. */
	if (hello->listen_port != 0) {
		proto_peers_add(&srv->known, host, strlen(host),
		    hello->listen_port);
		if (srv->cbs.on_peer != NULL)
			srv->cbs.on_peer(host, hello->listen_port, srv->ctx);
	}
}

static void
on_close(proto_conn *c, int err, void *arg)
{
	struct client *cl = arg;
	const char *detail = proto_conn_error_detail(c);

	say(cl->srv, err == PROTO_ERR_CLOSED ? PROTO_LOG_DEBUG : PROTO_LOG_INFO,
	    "%s: closed: %s%s%s", proto_conn_peer(c), err == PROTO_ERR_SYSTEM ?
	    strerror(errno) : proto_strerror(err), *detail ? ": " : "", detail);
	client_free(cl);
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

static const proto_conn_cbs client_cbs = { on_ready, on_msg, on_close,
    on_idle, on_written };

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

/* Takes fd from host:port in: a slot, its handshake under way. */
static void
admit(proto_server *srv, evutil_socket_t fd, const char *host, uint16_t port)
{
	struct client *cl, *old;

	if ((srv->nhandshaking >= srv->cfg.max_handshakes ||
	    srv->nclients >= srv->cfg.max_peers) &&
	    (old = oldest_handshaking(srv)) != NULL) {
		say(srv, PROTO_LOG_DEBUG, "%s: dropped: its handshake, the "
		    "oldest of %u under way, gives way to %s:%u",
		    proto_conn_peer(old->conn), srv->nhandshaking, host, port);
		client_free(old);
	}
	if (srv->nclients >= srv->cfg.max_peers) {
		/* Refuse at once rather than leave it waiting in the backlog:
		 * the peer sees the connection close and tries elsewhere. */
		evutil_closesocket(fd);
		say(srv, PROTO_LOG_DEBUG, "refused %s:%u: %u peers", host, port,
		    srv->nclients);
		return;
	}
	if ((cl = calloc(1, sizeof(*cl))) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	cl->srv = srv;
	snprintf(cl->host, sizeof(cl->host), "%s", host);
	srv->cfg.conn.nfiles = proto_store_count(srv->store);
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

	if (handshakes_from(srv, host) >= srv->cfg.max_host_handshakes)
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
			say(srv, PROTO_LOG_DEBUG, "%s:%u: waited %ld s for its "
			    "address's handshakes; closed",
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
	if (handshakes_from(srv, host) >= srv->cfg.max_host_handshakes) {
		/* One address cannot hold the handshake slots, nor churn
		 * through them displacing others: its surplus waits its
		 * turn, or, the queue full, is refused. */
		struct waiting *w;
		struct timeval second = { 1, 0 };
		if (srv->nwaiting >= srv->waiting_max) {
			evutil_closesocket(fd);
			say(srv, PROTO_LOG_DEBUG, "refused %s:%u: %u handshakes "
			    "from it under way, %u waiting", host, port,
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

	say(srv, PROTO_LOG_WARN, "accept: %s",
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
	srv->cfg.conn.caps |= PROTO_CAP_SWARM;
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
proto_server_free(proto_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->listener != NULL)
		evconnlistener_free(srv->listener);
	srv->listener = NULL;
	srv->freeing = 1;
	while (srv->clients)
		client_free(srv->clients);
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
	char host[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &from->sin_addr, host, sizeof(host));
	if (m->port == srv->cfg.conn.listen_port && m->name_len ==
	    strlen(name) && memcmp(m->name, name, m->name_len) == 0)
		return; /* most likely our own announcement */
	/* Whoever can send a datagram can say anything in it: a node is
	 * passed on only once a connection to it shows it is there. */
	if (proto_peers_heard(&srv->known, host, strlen(host), m->port) == 1 &&
	    srv->cbs.on_heard != NULL)
		srv->cbs.on_heard(host, m->port, srv->ctx);
}

static void
beacon_bad(const struct sockaddr_in *from, int err, void *arg)
{
	char host[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &from->sin_addr, host, sizeof(host));
	say(arg, PROTO_LOG_DEBUG, "datagram from %s:%u: %s; ignored", host,
	    ntohs(from->sin_port), proto_strerror(err));
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

void
proto_server_have(proto_server *srv, const uint8_t id[PROTO_HASH_LEN],
    uint64_t index)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_HAVE);
	m.id = id;
	m.index = index;
	for (struct client *cl = srv->clients, *next; cl; cl = next) {
		next = cl->next;
		if (!cl->interested ||
		    memcmp(cl->interest, id, PROTO_HASH_LEN) != 0)
			continue;
		/* Answers wait for the output to drain; HAVEs, which no
		 * request paces, would pile up without end for a peer that
		 * does not read. Past what a reading peer ever has waiting,
		 * it goes. */
		if (proto_conn_pending_out(cl->conn) > srv->cfg.conn.out_limit) {
			say(srv, PROTO_LOG_INFO, "%s: dropped: it reads nothing "
			    "(%zu bytes wait for it)", proto_conn_peer(cl->conn),
			    proto_conn_pending_out(cl->conn));
			client_free(cl);
			continue;
		}
		proto_conn_send(cl->conn, &m);
	}
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
