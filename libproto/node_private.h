/*
 * What node.c (a node's life, addresses, sources and finds) and nodepex.c
 * (its peer-exchange client: bootstrap rounds and LAN checks) share, and
 * nothing else sees. Private to libproto; node.h is the public API.
 */
#ifndef PROTO_NODE_PRIVATE_H
#define PROTO_NODE_PRIVATE_H

#include <stdint.h>
#include <sys/socket.h>

#include "node.h"

struct event;

/* A connection to a bootstrap peer, to learn the peers it knows; or to a
 * node heard on the LAN (check set), to see that it is there. */
struct node_conn {
	proto_node *node;
	proto_conn *conn;
	struct node_conn *prev, *next;
	proto_addr at;
	int check;
};

struct node_source {
	const proto_node_source_ops *ops;
	void *state;
};

struct node_watcher {
	proto_node_watch_fn fn;
	proto_node_conn_fn conn_fn;     /* or this */
	void *ctx;
};

struct proto_node {
	struct event_base *base;
	proto_node_config cfg;
	proto_addr *boot;
	proto_node_cbs cbs;
	void *ctx;
	proto_store *store;
	proto_server *server;
	proto_addr bound;
	int listening;
	struct sockaddr_storage mine[PROTO_NODE_ADDRS_MAX]; /* reachable at */
	size_t nmine;
	struct sockaddr_storage local[PROTO_NODE_ADDRS_MAX]; /* this host's */
	size_t nlocal;
	struct node_source sources[PROTO_NODE_SOURCES_MAX];
	size_t nsources;
	struct node_watcher watchers[PROTO_NODE_WATCHERS_MAX];
	size_t nwatchers;
	struct node_conn *conns;
	unsigned nchecks;
	struct event *boot_ev;
	int depth;      /* callbacks of ours on the stack */
	int dying;      /* proto_node_free was called from one of them */
};

/* node.c: the log, and the callbacks of ours on the stack (proto_node_free
 * inside one frees the node once it returns: leave says 1 then, and the
 * caller touches nothing of it). */
void proto__node_say(proto_node *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void proto__node_enter(proto_node *n);
int proto__node_leave(proto_node *n);

/* nodepex.c: a peer-exchange connection's end, and a node heard on the
 * LAN (the server's on_heard). */
struct node_conn;
void proto__node_conn_free(struct node_conn *nc);
void proto__node_on_heard(const char *host, uint16_t port, void *arg);

#endif
