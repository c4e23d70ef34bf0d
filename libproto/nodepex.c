/*
 * Peer exchange that asks each node once (nodequery.h): who it is (its
 * HELLO, its TLS key), whether it holds the id looked up, and the peers it
 * knows, each of which is asked in turn. A table of the nodes asked bounds
 * it and keeps it from asking twice. node.c's bootstrap source is the
 * standing kind: it asks the bootstrap peers again every interval and
 * reports addresses only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "error.h"
#include "log.h"
#include "node_private.h"
#include "nodequery.h"

#define RID_HAS 1
#define RID_PEERS 2

struct asked {
	struct pex *pex;
	proto_addr addr;
	proto_conn *conn;
};

struct pex {
	proto_node *node;
	struct asked *asked;    /* PROTO_NODE_ASK_MAX of them */
	size_t nasked;
	struct event *begin_ev;
	int watching;
	int wanting;
	uint8_t want[PROTO_HASH_LEN];
};

static void
report(struct asked *a, unsigned what, const proto_conn *c,
    const proto_msg *hello, int has)
{
	proto_node_seen seen;

	memset(&seen, 0, sizeof(seen));
	seen.addr = a->addr;
	seen.source = "pex";
	seen.what = what;
	seen.has = has;
	if (c != NULL) {
		seen.name = proto_conn_peer_name(c);
		seen.has_nfiles = 1;
		seen.nfiles = proto_conn_peer_nfiles(c);
		seen.identity = proto_conn_peer_id(c);
		if (what == PROTO_NODE_MET)
			seen.path = proto_conn_path(c);
	}
	if (hello != NULL) {
		seen.record = hello->opts.rec;
		seen.record_len = hello->opts.rec_len;
	}
	proto_node_report(a->pex->node, &seen);
}

static void
done(struct asked *a)
{
	proto_conn_free(a->conn);
	a->conn = NULL;
}

/* The callbacks below run from the loop: each brackets its work, since a
 * watcher may free the node (and this source with it) in a report. */

static void
on_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct asked *a = arg;
	struct pex *p = a->pex;
	proto_node *n = p->node;
	proto_msg m;

	proto__node_enter(n);
	report(a, PROTO_NODE_MET, c, hello, 0);
	if (proto__node_leave(n))
		return;
	if (p->wanting) {
		proto_msg_init(&m, PROTO_MSG_HAS);
		m.rid = RID_HAS;
		m.id = p->want;
		(void)proto_conn_send(c, &m);
	}
	proto_msg_init(&m, PROTO_MSG_PEERS);
	m.rid = RID_PEERS;
	(void)proto_conn_send(c, &m);
}

static void ask(struct pex *p, const proto_addr *addr);

static void
on_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct asked *a = arg;
	struct pex *p = a->pex;
	proto_node *n = p->node;

	proto__node_enter(n);
	if (m->type == PROTO_MSG_HAS_REPLY && m->rid == RID_HAS)
		report(a, PROTO_NODE_HAS, c, NULL, m->has != 0);
	else if (m->type == PROTO_MSG_PEERS_REPLY)
		/* Numbers only: a peer must not make us look names up. A
		 * node named with its record must show its identity. */
		for (size_t i = 0; i < m->npeers; i++) {
			const proto_peer_entry *e = &m->peers[i];
			proto_addr learned;
			if (proto_addr_from_host(&learned, e->host,
			    e->host_len, e->port) != 0)
				continue;
			(void)proto__node_record_pins(&learned, e->record,
			    e->record_len);
			ask(p, &learned);
		}
	if (proto__node_leave(n))
		return;
	/* The PEERS answer, or an ERROR for it, ends what we ask. */
	if (m->rid == RID_PEERS)
		done(a);
}

static void
on_close(proto_conn *c, int err, void *arg)
{
	struct asked *a = arg;
	proto_node *n = a->pex->node;
	const char *detail = proto_conn_error_detail(c);

	proto__node_say(n, err == PROTO_ERR_TLS || err == PROTO_ERR_AUTH ||
	    err == PROTO_ERR_REFUSED ? PROTO_LOG_WARN : PROTO_LOG_DEBUG,
	    "%s: %s%s%s", proto_conn_peer(c), err == PROTO_ERR_SYSTEM ?
	    strerror(errno) : proto_strerror(err), *detail ? ": " : "", detail);
	done(a);
	proto__node_enter(n);
	report(a, PROTO_NODE_UNREACHED, NULL, NULL, 0);
	(void)proto__node_leave(n);
}

/* Asks addr, unless it was asked already or PROTO_NODE_ASK_MAX were. Run
 * inside a bracket: reports when the connection cannot even start. */
static void
ask(struct pex *p, const proto_addr *addr)
{
	static const proto_conn_cbs cbs = { on_ready, on_msg, on_close, NULL,
	    NULL, NULL };
	proto_conn_config ccfg;
	proto_addr said[PROTO_HELLO_ADDRS_MAX];
	struct asked *a;

	for (size_t i = 0; i < p->nasked; i++)
		if (proto_addr_equal(&p->asked[i].addr, addr))
			return;
	if (p->nasked == PROTO_NODE_ASK_MAX)
		return;
	a = &p->asked[p->nasked++];
	a->pex = p;
	a->addr = *addr;
	proto__node_say(p->node, PROTO_LOG_DEBUG, "pex: asking %s",
	    proto_addr_text(&a->addr));
	proto__node_conn_config(p->node, &ccfg, said);
	ccfg.max_frame = PROTO_NODE_PEERS_FRAME_MAX;
	/* A bootstrap peer given as ID@HOST:PORT must show that identity. */
	ccfg.pin = a->addr.has_pin ? a->addr.pin : NULL;
	a->conn = proto_conn_connect(proto__node_base(p->node),
	    (const struct sockaddr *)&a->addr.ss, a->addr.len, &ccfg, &cbs, a);
	if (a->conn == NULL) {
		proto__node_say(p->node, PROTO_LOG_DEBUG, "%s: %s",
		    proto_addr_text(&a->addr), strerror(errno));
		report(a, PROTO_NODE_UNREACHED, NULL, NULL, 0);
	}
}

/* Every node another source reports is asked too. */
static void
on_seen(const proto_node_seen *seen, void *arg)
{
	if (seen->what == PROTO_NODE_FOUND || seen->what == PROTO_NODE_HEARD)
		ask(arg, &seen->addr);
}

static void
begin(evutil_socket_t fd, short what, void *arg)
{
	struct pex *p = arg;
	proto_node *n = p->node;
	const proto_addr *boot;
	size_t nboot;

	(void)fd;
	(void)what;
	boot = proto__node_boot(n, &nboot);
	proto__node_enter(n);
	for (size_t i = 0; i < nboot; i++) {
		ask(p, &boot[i]);
		if (proto__node_leave(n))
			return;
		proto__node_enter(n);
	}
	(void)proto__node_leave(n);
}

static int
pex_start(proto_node *n, void *state)
{
	struct pex *p = state;
	struct timeval now = { 0, 0 };
	int rc;

	p->node = n;
	if ((p->asked = calloc(PROTO_NODE_ASK_MAX, sizeof(*p->asked))) == NULL)
		return PROTO_ERR_NOMEM;
	/* Connections start from the loop, where a report may free the node
	 * safely. */
	p->begin_ev = event_new(proto__node_base(n), -1, 0, begin, p);
	if (p->begin_ev == NULL || event_add(p->begin_ev, &now) != 0)
		return PROTO_ERR_NOMEM;
	if ((rc = proto_node_watch(n, on_seen, p)) != 0)
		return rc;
	p->watching = 1;
	return 0;
}

static int
pex_lookup(void *state, const uint8_t id[PROTO_HASH_LEN])
{
	struct pex *p = state;

	memcpy(p->want, id, PROTO_HASH_LEN);
	p->wanting = 1;
	return 0;
}

static void
pex_free(void *state)
{
	struct pex *p = state;

	if (p->watching)
		proto_node_unwatch(p->node, on_seen, p);
	for (size_t i = 0; i < p->nasked; i++)
		proto_conn_free(p->asked[i].conn);
	if (p->begin_ev != NULL)
		event_free(p->begin_ev);
	free(p->asked);
	free(p);
}

static const proto_node_source_ops pex_source = { "pex", pex_start,
    pex_lookup, NULL, pex_free };

int
proto_node_query_peers(proto_node *n)
{
	struct pex *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return PROTO_ERR_NOMEM;
	return proto_node_add_source(n, &pex_source, p);
}
