/*
 * The standing peer exchange, the one PEX client a node runs (node.h):
 * every interval, a connection to each bootstrap peer, which is told our
 * port and asked for the peers it knows; and a connection to each node
 * heard on the LAN, to see that it is there before it is passed on.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "error.h"
#include "node.h"
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
	/* Hearsay: what the peer says of others is entered as heard, and
	 * passed on only with the record its node signed. */
	if (m->type == PROTO_MSG_PEERS_REPLY)
		for (size_t i = 0; i < m->npeers && !n->dying; i++) {
			const proto_peer_entry *e = &m->peers[i];
			proto_node_seen seen;
			memset(&seen, 0, sizeof(seen));
			if (proto_addr_from_host(&seen.addr, e->host,
			    e->host_len, e->port) != 0)
				continue;
			seen.source = "bootstrap";
			seen.record = e->record;
			seen.record_len = e->record_len;
			proto_node_report(n, &seen);
		}
	if (!n->dying)
		proto__node_say(n, PROTO_LOG_DEBUG, "%s: bootstrap: %zu peers known",
		    proto_conn_peer(c), proto_server_known(n->server)->count);
	if (proto__node_leave(n))
		return;
	proto__node_conn_free(nc);
}

/* A node answered at a on c (hello, its HELLO): passed on from now on,
 * with the identity it showed and its record. */
static void
met(proto_node *n, proto_conn *c, const proto_msg *hello,
    const proto_addr *a, const char *source)
{
	proto_node_seen seen;

	memset(&seen, 0, sizeof(seen));
	seen.addr = *a;
	seen.source = source;
	seen.what = PROTO_NODE_MET;
	seen.name = proto_conn_peer_name(c);
	seen.has_nfiles = 1;
	seen.nfiles = proto_conn_peer_nfiles(c);
	seen.identity = proto_conn_peer_id(c);
	seen.record = hello->opts.rec;
	seen.record_len = hello->opts.rec_len;
	proto_node_report(n, &seen);
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
		met(n, c, hello, &a, "lan");
		if (proto__node_leave(n))
			return;
		proto__node_conn_free(nc);
		return;
	}
	if (hello->listen_port != 0 && proto_addr_from_host(&a, host,
	    strlen(host), hello->listen_port) == 0) {
		proto__node_enter(n);
		met(n, c, hello, &a, "bootstrap");
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
	proto_conn_config ccfg;
	proto_addr said[PROTO_HELLO_ADDRS_MAX];

	if (nc == NULL)
		return NULL;
	nc->node = n;
	nc->at = *at;
	nc->check = check;
	proto__node_conn_config(n, &ccfg, said);
	/* The answer is a PEERS_REPLY, records and all, whatever the
	 * server's connections take in. */
	ccfg.max_frame = PROTO_NODE_PEERS_FRAME_MAX;
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
proto__node_on_heard(const proto_addr *a, void *arg)
{
	proto_node *n = arg;

	if (!n->cfg.check_heard || n->nchecks >= PROTO_NODE_CHECKS_MAX)
		return;
	for (struct node_conn *nc = n->conns; nc; nc = nc->next)
		if (nc->check && proto_addr_equal(&nc->at, a))
			return;
	/* Connected to us already, through its handshake (and the swarm's
	 * proof), on a connection that stays: that is the check. */
	if (proto_server_duplex_conn(n->server, a) != NULL) {
		proto__node_say(n, PROTO_LOG_DEBUG, "%s: heard on the LAN, and "
		    "connected to us", proto_addr_text(a));
		proto_node_found(n, a, "lan");
		return;
	}
	(void)conn_to(n, a, 1);
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
