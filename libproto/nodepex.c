/*
 * A node's one peer-exchange client (node.h): every bootstrap round a
 * connection to each bootstrap peer, which is told our port and asked for
 * the peers it knows; and a connection to each node heard on the LAN, to
 * see that it is there before it is passed on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "error.h"
#include "node_private.h"

#define DEFAULT_BOOT_INTERVAL 30

/* ---- the peer-exchange client: bootstrap peers, and checks ---- */

void
proto__node_conn_free(struct node_conn *nc)
{
	proto_node *n = nc->node;

	if (nc->prev)
		nc->prev->next = nc->next;
	else
		n->conns = nc->next;
	if (nc->next)
		nc->next->prev = nc->prev;
	if (nc->check)
		n->nchecks--;
	proto_conn_free(nc->conn);
	free(nc);
}

/* What a bootstrap peer tells us: the peers it knows. Names are never
 * looked up: only addresses are taken. */
static void
boot_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct node_conn *nc = arg;
	proto_node *n = nc->node;

	proto__node_enter(n);
	if (m->type == PROTO_MSG_PEERS_REPLY)
		for (size_t i = 0; i < m->npeers && !n->dying; i++) {
			proto_addr a;
			if (proto_addr_from_host(&a, m->peers[i].host,
			    m->peers[i].host_len, m->peers[i].port) == 0)
				proto_node_found(n, &a, "bootstrap");
		}
	if (!n->dying)
		proto__node_say(n, PROTO_LOG_DEBUG, "%s: bootstrap: %zu peers known",
		    proto_conn_peer(c), proto_server_known(n->server)->count);
	if (proto__node_leave(n))
		return;
	proto__node_conn_free(nc);
}

static void
boot_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct node_conn *nc = arg;
	proto_node *n = nc->node;
	const char *host = proto_conn_peer_host(c);
	proto_addr a;
	proto_msg m;

	if (nc->check) {
		/* The handshake (and in a private swarm its proof) passed:
		 * a node is there, and may be passed on. */
		proto__node_say(n, PROTO_LOG_DEBUG, "%s: heard on the LAN, and there",
		    proto_conn_peer(c));
		a = nc->at;
		proto__node_enter(n);
		proto_node_found(n, &a, "lan");
		if (proto__node_leave(n))
			return;
		proto__node_conn_free(nc);
		return;
	}
	if (hello->listen_port != 0 && proto_addr_from_host(&a, host,
	    strlen(host), hello->listen_port) == 0) {
		proto__node_enter(n);
		proto_node_found(n, &a, "bootstrap");
		if (proto__node_leave(n))
			return;
	}
	proto_msg_init(&m, PROTO_MSG_PEERS);
	m.rid = 1;
	if (proto_conn_send(c, &m) != 0)
		proto__node_conn_free(nc);
}

static void
boot_close(proto_conn *c, int err, void *arg)
{
	struct node_conn *nc = arg;

	proto__node_say(nc->node, PROTO_LOG_DEBUG, "%s: bootstrap: %s", proto_conn_peer(c),
	    err == PROTO_ERR_SYSTEM ? strerror(errno) : proto_strerror(err));
	proto__node_conn_free(nc);
}

static const proto_conn_cbs boot_cbs = { boot_ready, boot_msg, boot_close,
    NULL, NULL, NULL };

/* A connection to at that tells our port and file count. NULL with errno
 * set when it cannot be started. */
static struct node_conn *
conn_to(proto_node *n, const proto_addr *at, int check)
{
	struct node_conn *nc = calloc(1, sizeof(*nc));
	proto_conn_config ccfg = n->cfg.server.conn;
	proto_addr said[PROTO_HELLO_ADDRS_MAX];

	if (nc == NULL)
		return NULL;
	nc->node = n;
	nc->at = *at;
	nc->check = check;
	ccfg.listen_port = proto_node_port(n);
	ccfg.nfiles = proto_store_count(n->store);
	ccfg.tls = n->cfg.client_tls;
	ccfg.caps = proto_node_caps(n);
	ccfg.naddrs = proto_node_addrs(n, said, PROTO_HELLO_ADDRS_MAX);
	ccfg.addrs = said;
	/* Asking, it takes no requests (PROTOCOL.md: they flow one way). */
	ccfg.max_requests = 0;
	nc->conn = proto_conn_connect(n->base, (const struct sockaddr *)
	    &at->ss, at->len, &ccfg, &boot_cbs, nc);
	if (nc->conn == NULL) {
		int saved = errno;
		free(nc);
		errno = saved;
		return NULL;
	}
	if (check)
		n->nchecks++;
	nc->next = n->conns;
	if (n->conns)
		n->conns->prev = nc;
	n->conns = nc;
	return nc;
}

/* A node announced itself: connect to see that it is there before it is
 * passed on, a few at a time (it is heard again at its next announcement
 * when there is no room now). */
void
proto__node_on_heard(const char *host, uint16_t port, void *arg)
{
	proto_node *n = arg;
	proto_addr a;

	if (!n->cfg.check_heard || n->nchecks >= PROTO_NODE_CHECKS_MAX ||
	    proto_addr_from_host(&a, host, strlen(host), port) != 0)
		return;
	for (struct node_conn *nc = n->conns; nc; nc = nc->next)
		if (nc->check && proto_addr_equal(&nc->at, &a))
			return;
	/* Connected to us already, through its handshake (and the swarm's
	 * proof): that is the check. */
	if (proto_server_duplex_conn(n->server, &a) != NULL) {
		proto__node_say(n, PROTO_LOG_DEBUG, "%s: heard on the LAN, and connected "
		    "to us", proto_addr_text(&a));
		proto_node_found(n, &a, "lan");
		return;
	}
	(void)conn_to(n, &a, 1);
}

/* Connects to every bootstrap peer: the HELLO tells it our port, and we ask
 * for the peers it knows. */
static void
boot_round(evutil_socket_t fd, short what, void *arg)
{
	proto_node *n = arg;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < n->cfg.nboot; i++)
		if (conn_to(n, &n->boot[i], 0) == NULL)
			proto__node_say(n, PROTO_LOG_WARN, "bootstrap %s: %s",
			    proto_addr_text(&n->boot[i]), strerror(errno));
}

static int
boot_start(proto_node *n, void *state)
{
	unsigned interval = n->cfg.boot_interval ? n->cfg.boot_interval :
	    DEFAULT_BOOT_INTERVAL;
	struct timeval tv = { (time_t)interval, 0 };

	(void)state;
	n->boot_ev = event_new(n->base, -1, EV_PERSIST, boot_round, n);
	if (n->boot_ev == NULL || event_add(n->boot_ev, &tv) != 0)
		return PROTO_ERR_NOMEM;
	boot_round(-1, 0, n);
	return 0;
}

static const proto_node_source_ops boot_source = { "bootstrap", boot_start,
    NULL, NULL, NULL };

int
proto_node_start_bootstrap(proto_node *n)
{
	if (n->cfg.nboot == 0)
		return 0;
	return proto_node_add_source(n, &boot_source, NULL);
}
