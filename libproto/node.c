/*
 * A node: its store, server, own addresses, discovery sources and the one
 * peer-exchange client (node.h). The LAN source is nodelan.c's, the
 * peer exchange that asks once (p2p-discover's) nodepex.c's, the standing
 * one nodeboot.c's, and the node's own record noderecord.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "error.h"
#include "ifaddr.h"
#include "node.h"
#include "node_private.h"

void
proto__node_say(proto_node *n, int level, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	if (n->cbs.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	n->cbs.log(level, text, n->ctx);
}

static void destroy(proto_node *n);

static void
enter(proto_node *n)
{
	n->depth++;
}

/* Leaves a callback of ours: 1 when the node was freed meanwhile (the
 * caller touches nothing of it then). */
static int
leave(proto_node *n)
{
	if (--n->depth > 0 || !n->dying)
		return 0;
	destroy(n);
	return 1;
}

static void
server_log(int level, const char *text, void *arg)
{
	proto_node *n = arg;

	if (n->cbs.log != NULL)
		n->cbs.log(level, text, n->ctx);
}

static void
server_upload(const proto_upload *u, void *arg)
{
	proto_node *n = arg;

	if (n->cbs.on_upload != NULL)
		n->cbs.on_upload(u, n->ctx);
}

static const uint8_t *
server_record(size_t *len, void *arg)
{
	return proto_node_record(arg, len);
}

/* ---- own addresses ---- */

static int
in_list(const struct sockaddr_storage *list, size_t count,
    const proto_addr *a)
{
	for (size_t i = 0; i < count; i++) {
		proto_addr l;
		if (proto_addr_from_sockaddr(&l, (const struct sockaddr *)
		    &list[i], sizeof(list[i])) == 0 &&
		    proto_addr_same_host(a, &l))
			return 1;
	}
	return 0;
}

int
proto_node_is_self(const proto_node *n, const proto_addr *a)
{
	if (n->listening && n->ext_how != PROTO_NODE_EXT_NONE &&
	    proto_addr_equal(a, &n->external))
		return 1;
	if (!n->listening || proto_addr_port(a) != proto_node_port(n))
		return 0;
	return proto_addr_is_loopback(a) || proto_addr_is_any(a) ||
	    proto_addr_same_host(a, &n->bound) ||
	    in_list(n->local, n->nlocal, a);
}

int
proto_node_listen(proto_node *n, const proto_addr *at)
{
	int rc, count = 0;
	uint16_t port;

	if ((rc = proto_server_listen(n->server, (const struct sockaddr *)
	    &at->ss, at->len)) != 0)
		return rc;
	n->listening = 1;
	port = proto_server_port(n->server);
	n->bound = *at;
	proto_addr_set_port(&n->bound, port);
	count = proto_ifaddr_list(AF_UNSPEC, port, n->local,
	    PROTO_NODE_ADDRS_MAX);
	n->nlocal = count > 0 ? (size_t)count : 0;
	/* :: takes IPv4 connections too, unless the system says otherwise:
	 * both families are listed for it. */
	count = 0;
	if (proto_addr_is_any(at))
		count = proto_ifaddr_list(at->ss.ss_family == AF_INET ?
		    AF_INET : AF_UNSPEC, port, n->mine, PROTO_NODE_ADDRS_MAX);
	if (count <= 0) {
		memcpy(&n->mine[0], &n->bound.ss, n->bound.len);
		count = 1;
	}
	n->nmine = (size_t)count;
	proto__node_addrs_changed(n);
	return 0;
}

uint64_t
proto_node_caps(const proto_node *n)
{
	return n->listening ? PROTO_CAP_SWARM : 0;
}

uint16_t
proto_node_port(const proto_node *n)
{
	return n->listening ? proto_server_port(n->server) : 0;
}

size_t
proto_node_addrs(const proto_node *n, proto_addr *out, size_t max)
{
	size_t k = 0;
	int ext = n->listening && n->ext_how != PROTO_NODE_EXT_NONE;

	/* Beyond a NAT, the one address others reach: first, so that a
	 * record cut to its first few still has it. */
	if (ext && k < max)
		out[k++] = n->external;
	for (size_t i = 0; i < n->nmine && k < max; i++)
		if (proto_addr_from_sockaddr(&out[k], (const struct sockaddr *)
		    &n->mine[i], sizeof(n->mine[i])) == 0 && (!ext ||
		    !proto_addr_equal(&out[k], &n->external)))
			k++;
	return k;
}

/* ---- what the sources find ---- */

int
proto_node_report(proto_node *n, const proto_node_seen *seen)
{
	const proto_addr *addr = &seen->addr;
	proto_peer_table *t = proto_server_known(n->server);
	proto_node_seen s = *seen;
	const proto_known_peer *e;

	if (proto_addr_port(addr) == 0 || proto_addr_is_any(addr) ||
	    (addr->ss.ss_family != AF_INET &&
	    addr->ss.ss_family != AF_INET6)) {
		proto__node_say(n, PROTO_LOG_DEBUG, "%s: a malformed address; ignored",
		    seen->source);
		return 0;
	}
	if (proto_node_is_self(n, addr)) {
		proto__node_say(n, PROTO_LOG_DEBUG, "%s: %s: ourselves; ignored",
		    seen->source, proto_addr_text(addr));
		return 0;
	}
	/* Signed by the node there: whoever answers at addr must be it. */
	if (!proto__node_record_pins(&s.addr, s.record, s.record_len)) {
		s.record = NULL;
		s.record_len = 0;
	}
	/* What a datagram says, or that a node did not answer, is no reason
	 * to pass an address on; a name given by others, only with its
	 * record. */
	if (s.what == PROTO_NODE_FOUND)
		proto_peers_heard(t, &s.addr, s.record, s.record_len);
	else if (s.what == PROTO_NODE_MET) {
		proto_peers_add(t, addr, s.identity, s.record, s.record_len);
		if ((e = proto_peers_find(t, addr)) != NULL)
			s.addr = e->addr;
	}
	enter(n);
	for (size_t i = 0; i < n->nwatchers && !n->dying; i++)
		if (n->watchers[i].fn != NULL)
			n->watchers[i].fn(&s, n->watchers[i].ctx);
	(void)leave(n);
	return 1;
}

int
proto_node_found(proto_node *n, const proto_addr *addr, const char *source)
{
	proto_node_seen seen;

	memset(&seen, 0, sizeof(seen));
	seen.addr = *addr;
	seen.source = source;
	seen.what = PROTO_NODE_FOUND;
	return proto_node_report(n, &seen);
}

static int
watch(proto_node *n, proto_node_watch_fn fn, proto_node_conn_fn conn_fn,
    void *ctx)
{
	if (n->nwatchers == PROTO_NODE_WATCHERS_MAX)
		return PROTO_ERR_TOO_BIG;
	n->watchers[n->nwatchers].fn = fn;
	n->watchers[n->nwatchers].conn_fn = conn_fn;
	n->watchers[n->nwatchers++].ctx = ctx;
	return 0;
}

int
proto_node_watch(proto_node *n, proto_node_watch_fn fn, void *ctx)
{
	return watch(n, fn, NULL, ctx);
}

int
proto_node_watch_conns(proto_node *n, proto_node_conn_fn fn, void *ctx)
{
	return watch(n, NULL, fn, ctx);
}

static void
unwatch(proto_node *n, proto_node_watch_fn fn, proto_node_conn_fn conn_fn,
    const void *ctx)
{
	for (size_t i = 0; i < n->nwatchers; i++)
		if (n->watchers[i].fn == fn && n->watchers[i].conn_fn ==
		    conn_fn && n->watchers[i].ctx == ctx) {
			memmove(&n->watchers[i], &n->watchers[i + 1],
			    (n->nwatchers - i - 1) * sizeof(n->watchers[0]));
			n->nwatchers--;
			return;
		}
}

void
proto_node_unwatch(proto_node *n, proto_node_watch_fn fn, const void *ctx)
{
	unwatch(n, fn, NULL, ctx);
}

void
proto_node_unwatch_conns(proto_node *n, proto_node_conn_fn fn,
    const void *ctx)
{
	unwatch(n, NULL, fn, ctx);
}

/* A node connected on a duplex connection: offered to the watchers, the
 * first to attach to it keeps it. */
static void
on_duplex(proto_conn *c, void *arg)
{
	proto_node *n = arg;
	const char *host = proto_conn_peer_host(c);
	proto_addr a;

	if (proto_conn_peer_listen_port(c) == 0 || proto_addr_from_host(&a,
	    host, strlen(host), proto_conn_peer_listen_port(c)) != 0)
		return;
	enter(n);
	for (size_t i = 0; i < n->nwatchers && !n->dying; i++)
		if (n->watchers[i].conn_fn != NULL &&
		    n->watchers[i].conn_fn(c, &a, n->watchers[i].ctx))
			break;
	(void)leave(n);
}

int
proto_node_serve(proto_node *n, proto_conn *c)
{
	return proto_server_adopt(n->server, c);
}

proto_conn *
proto_node_conn_to(proto_node *n, const proto_addr *a)
{
	return proto_server_duplex_conn(n->server, a);
}

/* A node that listens connected to us: found too. The server has
 * entered it. */
static void
on_inbound(const proto_addr *a, void *arg)
{
	proto_node_found(arg, a, "inbound");
}

/* ---- sources ---- */

int
proto_node_add_source(proto_node *n, const proto_node_source_ops *ops,
    void *state)
{
	int rc;

	if (n->nsources == PROTO_NODE_SOURCES_MAX) {
		if (ops->free != NULL)
			ops->free(state);
		return PROTO_ERR_TOO_BIG;
	}
	if ((rc = ops->start(n, state)) != 0) {
		int saved = errno;
		if (ops->free != NULL)
			ops->free(state);
		errno = saved;
		return rc;
	}
	n->sources[n->nsources].ops = ops;
	n->sources[n->nsources++].state = state;
	return 0;
}

size_t
proto_node_lookup(proto_node *n, const uint8_t id[PROTO_HASH_LEN])
{
	size_t asked = 0;

	for (size_t i = 0; i < n->nsources; i++)
		if (n->sources[i].ops->lookup != NULL &&
		    n->sources[i].ops->lookup(n->sources[i].state, id) == 0)
			asked++;
	return asked;
}

size_t
proto_node_announce(proto_node *n, const uint8_t id[PROTO_HASH_LEN])
{
	size_t told = 0;

	for (size_t i = 0; i < n->nsources; i++)
		if (n->sources[i].ops->announce != NULL &&
		    n->sources[i].ops->announce(n->sources[i].state, id) == 0)
			told++;
	return told;
}

/* ---- life ---- */

proto_node *
proto_node_new(struct event_base *base, const proto_node_config *cfg,
    const proto_node_cbs *cbs, void *ctx)
{
	proto_server_cbs scbs = { .log = server_log, .on_peer = on_inbound,
	    .on_heard = proto__node_on_heard, .on_duplex = on_duplex,
	    .record = server_record, .on_upload = server_upload };
	proto_node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->base = base;
	n->cfg = *cfg;
	n->cbs = *cbs;
	n->ctx = ctx;
	if (cfg->nboot > 0) {
		if ((n->boot = calloc(cfg->nboot, sizeof(*n->boot))) == NULL) {
			free(n);
			return NULL;
		}
		memcpy(n->boot, cfg->boot, cfg->nboot * sizeof(*n->boot));
	}
	n->cfg.boot = n->boot;
	n->cfg.server.conn.on_seen = proto__node_on_seen;
	n->cfg.server.conn.seen_ctx = n;
	if ((n->store = proto_store_new()) == NULL ||
	    (n->server = proto_server_new(base, n->store, &n->cfg.server,
	    &scbs, n)) == NULL) {
		proto_store_free(n->store);
		free(n->boot);
		free(n);
		return NULL;
	}
	return n;
}

static void
destroy(proto_node *n)
{
	while (n->conns)
		proto__node_conn_free(n->conns);
	for (size_t i = 0; i < n->nsources; i++)
		if (n->sources[i].ops->free != NULL)
			n->sources[i].ops->free(n->sources[i].state);
	if (n->boot_ev)
		event_free(n->boot_ev);
	proto_server_free(n->server);
	proto_store_free(n->store);
	free(n->boot);
	free(n);
}

void
proto_node_free(proto_node *n)
{
	if (n == NULL)
		return;
	if (n->depth > 0) {
		n->dying = 1;
		return;
	}
	destroy(n);
}

proto_store *
proto_node_store(proto_node *n)
{
	return n->store;
}

proto_server *
proto_node_server(proto_node *n)
{
	return n->server;
}

proto_peer_table *
proto_node_known(proto_node *n)
{
	return proto_server_known(n->server);
}

/* ---- for the node's other modules (node_private.h) ---- */

void
proto__node_enter(proto_node *n)
{
	enter(n);
}

int
proto__node_leave(proto_node *n)
{
	return leave(n);
}

void
proto__node_log(proto_node *n, int level, const char *text)
{
	if (n->cbs.log != NULL)
		n->cbs.log(level, text, n->ctx);
}

struct event_base *
proto__node_base(const proto_node *n)
{
	return n->base;
}

const proto_addr *
proto__node_boot(const proto_node *n, size_t *count)
{
	*count = n->cfg.nboot;
	return n->boot;
}

void
proto__node_conn_config(proto_node *n, proto_conn_config *out,
    proto_addr said[PROTO_HELLO_ADDRS_MAX])
{
	*out = n->cfg.server.conn;
	out->listen_port = proto_node_port(n);
	out->nfiles = proto_store_count(n->store);
	out->tls = n->cfg.client_tls;
	out->record = proto_node_record(n, &out->record_len);
	out->caps = proto_node_caps(n);
	out->naddrs = proto_node_addrs(n, said, PROTO_HELLO_ADDRS_MAX);
	out->addrs = said;
	out->on_seen = proto__node_on_seen;
	out->seen_ctx = n;
	out->mapped = n->listening && n->ext_how == PROTO_NODE_EXT_MAPPED ?
	    &n->external : NULL;
	/* Asking, it takes no requests (PROTOCOL.md: they flow one way). */
	out->max_requests = 0;
}

proto_record_own *
proto__node_own(proto_node *n)
{
	return &n->own;
}

const proto_identity *
proto__node_identity(const proto_node *n)
{
	return n->cfg.identity;
}
