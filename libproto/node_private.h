/*
 * What the node's modules share and nothing else sees: node.c keeps the
 * node, nodeboot.c its standing peer exchange (bootstrap peers and the
 * check of nodes heard on the LAN), nodelan.c and nodepex.c the LAN and
 * the peer exchange that asks once (p2p-discover's), noderecord.c the
 * node's own record and the check of the records others pass on. Private to libproto; node.h and
 * nodequery.h are the public API.
 */
#ifndef PROTO_NODE_PRIVATE_H
#define PROTO_NODE_PRIVATE_H

#include <stddef.h>
#include <time.h>

#include "conn.h"
#include "node.h"
#include "record.h"

struct event_base;
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

/* What one peer said it sees us at (nodeext.c): by its host, the
 * latest. */
struct node_observed {
	proto_addr by;          /* the peer's address (its host counts) */
	proto_addr seen;        /* the host it sees us at, our port */
	time_t when;
};

#define NODE_OBSERVED_MAX 16  /* peers whose word is kept */
#define NODE_OBSERVED_AGREE 2 /* distinct hosts that must agree */

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
	proto_record_own own;   /* our record, once listening */
	struct node_observed observed[NODE_OBSERVED_MAX];
	size_t nobserved;
	proto_addr external;    /* where others reach us, when ext_how */
	unsigned ext_how;       /* PROTO_NODE_EXT_*: none, seen, mapped */
	int depth;      /* callbacks of ours on the stack */
	int dying;      /* proto_node_free was called from one of them */
};

/* nodeboot.c: a connection of the standing peer exchange ended (unlinked
 * and freed); a node heard on the LAN, checked when cfg.check_heard (the
 * server's on_heard, arg the node). */
void proto__node_conn_free(struct node_conn *nc);
void proto__node_on_heard(const proto_addr *a, void *arg);

/* A callback of a source's own (a timer, a socket, a connection) that may
 * report brackets its work with these: a watcher may free the node, which
 * is then destroyed at the outermost leave. proto__node_leave returns 1
 * when it was: the caller touches nothing of the node or of its source's
 * state after that. */
void proto__node_enter(proto_node *n);
int proto__node_leave(proto_node *n);

/* One line for the owner's log (cbs.log), at a proto_log_level; _say
 * formats it (at most 511 bytes). */
void proto__node_log(proto_node *n, int level, const char *text);
void proto__node_say(proto_node *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The node's event_base. */
struct event_base *proto__node_base(const proto_node *n);

/* The bootstrap peers of the node's config, *count of them; the node's,
 * valid until proto_node_free. */
const proto_addr *proto__node_boot(const proto_node *n, size_t *count);

/* What a connection the node makes says of it: the node's name, secret
 * and rate-limit group, its port, file count, record, caps and addresses
 * (into said) in HELLO, the client TLS context; it takes no requests.
 * Pointers borrowed from the node (the record valid until the next
 * proto_node_record) and from said. */
void proto__node_conn_config(proto_node *n, proto_conn_config *out,
    proto_addr said[PROTO_HELLO_ADDRS_MAX]);

/* A PEERS_REPLY of 64 entries, each with the longest record: the largest
 * frame a connection that asks for PEERS takes. */
#define PROTO_NODE_PEERS_FRAME_MAX (PROTO_PEERS_MAX * (PROTO_RECORD_MAX + 96))

/* The node's own record as last signed, and the key that signs it
 * (NULL: none); noderecord.c keeps the record. */
proto_record_own *proto__node_own(proto_node *n);
const proto_identity *proto__node_identity(const proto_node *n);

/* nodeext.c: the conn config's on_seen for the node's connections (ctx
 * the node); the HELLO "addrs" and the server told anew after the
 * external address changed. */
void proto__node_on_seen(const proto_addr *seen, const proto_addr *by,
    void *arg);
void proto__node_addrs_changed(proto_node *n);

/* 1 when rec (len bytes, or NULL) is a record that verifies now and lists
 * addr: addr is then pinned to its identity. 0 otherwise, addr untouched. */
int proto__node_record_pins(proto_addr *addr, const uint8_t *rec,
    size_t len);

#endif
