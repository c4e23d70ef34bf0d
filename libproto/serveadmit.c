/*
 * How a node's server lets connections in.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "error.h"
#include "server_private.h"

/* Relayed circuits in their handshake at once: each is a connection we
 * open on the relay's word, and a hostile relay could otherwise send
 * INCOMING after INCOMING and displace every direct peer's handshake. */
#define RELAYED_HANDSHAKES_MAX 4u

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

/* Takes fd from host:port in (or, relay not NULL, the circuit token names
 * through that relay): a slot, its handshake under way. */
static void
admit_via(proto_server *srv, evutil_socket_t fd, const char *host,
    uint16_t port, const proto_addr *relay, const uint8_t *token)
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
		if (fd >= 0)
			evutil_closesocket(fd);
		proto__server_say(srv, PROTO_LOG_DEBUG,
		    "refused %s:%u: %u peers", host, port, srv->nclients);
		return;
	}
	if ((cl = calloc(1, sizeof(*cl))) == NULL) {
		if (fd >= 0)
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
	cl->conn = relay != NULL && token != NULL ?
	    proto_conn_accept_relayed(srv->base,
	    (const struct sockaddr *)&relay->ss, relay->len, token,
	    &srv->cfg.conn, &proto__server_client_cbs, cl) :
	    proto_conn_accept(srv->base, fd, &srv->cfg.conn,
	    &proto__server_client_cbs, cl);
	if (cl->conn == NULL) {
		free(cl);
		return;
	}
	proto_conn_set_idle_timeout(cl->conn, 10 * srv->cfg.conn.timeout);
	cl->handshaking = 1;
	cl->relayed = relay != NULL;
	proto__server_client_link(srv, cl);
	srv->nhandshaking++;
	srv->stats.peers++;
}

static void
admit(proto_server *srv, evutil_socket_t fd, const char *host, uint16_t port)
{
	admit_via(srv, fd, host, port, NULL, NULL);
}

int
proto_server_accept_relayed(proto_server *srv, const proto_addr *relay,
    const uint8_t *token)
{
	char host[PROTO_ADDR_TEXT_MAX];
	unsigned before = srv->nclients, pending = 0;

	proto_addr_host(relay, host, sizeof(host));
	for (const struct client *cl = srv->clients; cl; cl = cl->next)
		pending += cl->handshaking && cl->relayed;
	if (pending >= RELAYED_HANDSHAKES_MAX) {
		proto__server_say(srv, PROTO_LOG_DEBUG, "relay %s:%u: circuit "
		    "not taken: %u relayed handshakes under way", host,
		    proto_addr_port(relay), pending);
		return PROTO_ERR_LIMITED;
	}
	admit_via(srv, -1, host, proto_addr_port(relay), relay, token);
	return srv->nclients > before ? 0 : PROTO_ERR_TOO_BIG;
}

int
proto_server_accept_punched(proto_server *srv, int fd, const proto_addr *from)
{
	char host[PROTO_ADDR_TEXT_MAX];
	unsigned before = srv->nclients;

	proto_addr_host(from, host, sizeof(host));
	admit(srv, fd, host, proto_addr_port(from));
	return srv->nclients > before ? 0 : PROTO_ERR_TOO_BIG;
}

/* host's handshakes went below the cap: its oldest waiting connection, if
 * any, gets its turn. */
void
proto__server_take_waiting(proto_server *srv, const char *host)
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
void
proto__server_waiting_expired(evutil_socket_t fd, short what, void *arg)
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

void
proto__server_on_accept(struct evconnlistener *lst, evutil_socket_t fd,
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

void
proto__server_retry_accept(evutil_socket_t fd, short what, void *arg)
{
	proto_server *srv = arg;

	(void)fd;
	(void)what;
	if (srv->nclients < srv->cfg.max_peers)
		evconnlistener_enable(srv->listener);
}

/* Out of descriptors, the listener would spin on the pending connection:
 * pause it for a second instead. */
void
proto__server_on_accept_error(struct evconnlistener *lst, void *arg)
{
	proto_server *srv = arg;
	struct timeval second = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	proto__server_say(srv, PROTO_LOG_WARN, "accept: %s",
	    evutil_socket_error_to_string(err));
	evconnlistener_disable(lst);
	evtimer_add(srv->retry_ev, &second);
}
