/*
 * What the node's modules share and nothing else sees: node.c keeps the
 * node, nodequery.c the sources that ask once (the LAN query and the peer
 * exchange that p2p-discover runs). Private to libproto; node.h and
 * nodequery.h are the public API.
 */
#ifndef PROTO_NODE_PRIVATE_H
#define PROTO_NODE_PRIVATE_H

#include <stddef.h>

#include "conn.h"
#include "node.h"

struct event_base;

/* A callback of a source's own (a timer, a socket, a connection) that may
 * report brackets its work with these: a watcher may free the node, which
 * is then destroyed at the outermost leave. proto__node_leave returns 1
 * when it was: the caller touches nothing of the node or of its source's
 * state after that. */
void proto__node_enter(proto_node *n);
int proto__node_leave(proto_node *n);

/* One line for the owner's log (cbs.log), at a proto_log_level. */
void proto__node_log(proto_node *n, int level, const char *text);

/* The node's event_base. */
struct event_base *proto__node_base(const proto_node *n);

/* The bootstrap peers of the node's config, *count of them; the node's,
 * valid until proto_node_free. */
const proto_addr *proto__node_boot(const proto_node *n, size_t *count);

/* What a connection the node makes says of it: the node's name, secret
 * and rate-limit group, its port and file count in HELLO, the client TLS
 * context. Pointers borrowed from the node. */
void proto__node_conn_config(const proto_node *n, proto_conn_config *out);

#endif
