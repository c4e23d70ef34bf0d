/*
 * Sources that ask, for a one-shot report of who is there (p2p-discover):
 * the LAN query, which sends a QUERY datagram every second and reports
 * each answer and announcement it hears, and the peer exchange that asks
 * each node once, transitively, for its name, file count, identity, the
 * peers it knows and, after proto_node_lookup, whether it holds an id.
 * They report through proto_node_report (node.h), with the details a
 * node's standing sources (the beacon, bootstrap) do not keep.
 */
#ifndef PROTO_NODEQUERY_H
#define PROTO_NODEQUERY_H

#include <stdint.h>

#include "node.h"

#define PROTO_NODE_ASK_MAX 256  /* nodes the peer exchange asks, at most */

typedef struct proto_node_query_config {
	uint16_t port;          /* discovery port; 0: PROTO_DISCO_PORT */
	const char *target;     /* where queries go: proto_disco_targets'
	                         * override, or NULL: each interface's
	                         * broadcast address; borrowed during the
	                         * call */
	const char *target6;    /* proto_disco_targets6's override6 ("off",
	                         * an IPv6 address, or NULL); borrowed
	                         * likewise */
	unsigned seconds;       /* ask for this long, then stop (sockets
	                         * closed); 0: until the node is freed */
	const uint8_t *secret;  /* a private swarm's 32-byte key: queries
	                         * sealed, answers that are not ignored;
	                         * copied */
} proto_node_query_config;

/*
 * The LAN query as a source ("lan"): a QUERY to the targets at once and
 * every second, each ANNOUNCE that answers it (its nonce) or is
 * unsolicited (nonce 0; heard on the discovery port when it can be shared,
 * a bonus) checked as proto_disco_check_announce says and reported as
 * PROTO_NODE_HEARD with the name and file count it gives. A node with no
 * listener may ask. 0; PROTO_ERR_SYSTEM with errno set (EINVAL: a bad
 * target, else the query socket's failure); PROTO_ERR_NOMEM;
 * PROTO_ERR_TOO_BIG past PROTO_NODE_SOURCES_MAX.
 */
int proto_node_query_lan(proto_node *node, const proto_node_query_config *cfg);

/*
 * Peer exchange that asks once ("pex"), as a source: a connection to each
 * bootstrap peer of the node's config, and to each node any source
 * reports from now on, up to PROTO_NODE_ASK_MAX in all, each asked once.
 * A handshake that passes is reported as PROTO_NODE_MET (its HELLO's name
 * and file count, its TLS key's identity); the node is then asked for the
 * peers it knows, which are asked in turn (numbers only: no name is looked
 * up), and, once proto_node_lookup gave an id (call it before the loop
 * runs for it to reach every node), whether it holds it: PROTO_NODE_HAS.
 * A connection that fails or ends first is PROTO_NODE_UNREACHED, and
 * logged at warning level when TLS, the swarm's proof or a refusal ended
 * it. Connections start once the loop runs. 0, PROTO_ERR_NOMEM or
 * PROTO_ERR_TOO_BIG past PROTO_NODE_SOURCES_MAX or PROTO_NODE_WATCHERS_MAX.
 */
int proto_node_query_peers(proto_node *node);

#endif
