/*
 * The node a sharing p2p-fetch runs (-o, unless --no-share): its listener,
 * beacon and port mapping, and the HAVEs it sends its peers as chunks
 * arrive, so that fetchers of the same file fetch from each other.
 */
#include <errno.h>
#include <string.h>

#include "nat.h"
#include "p2p-fetch.h"
#include "tls.h"

#define REQUEST_FRAME_MAX 16384 /* what peers may send our server */

/* A HAVE tells a peer what it may ask for, so a peer that holds the chunk
 * is left out where it connected to us. Where we connected to it, it may
 * be a seed that super-seeds and watches us (PROTOCOL.md section 4,
 * "Watching"), as the side that accepted: it shows us a few chunks at a
 * time, so it looks like a peer that holds some, and it counts the HAVEs
 * it hears. There every HAVE goes, at once to a peer that holds the
 * whole file. In a swarm of 100 HAVEs are nearly all the messages. */
static int
peer_holds(const proto_conn *c, uint64_t index, void *arg)
{
	const struct fetch *f = arg;
	int holds = f->fx != NULL ? proto_fetch_peer_holds(f->fx, c, index) :
	    0;

	if (holds != 0 && proto_conn_answers(c))
		return PROTO_HAVE_SKIP;
	return holds == 2 ? PROTO_HAVE_NOW : PROTO_HAVE_SEND;
}

/* A verified chunk, written: only now may it be served. */
void
fetch_share_chunk(struct fetch *f, uint64_t index)
{
	if (f->store != NULL)
		proto_server_have_unless(f->server, f->id, index, peer_holds,
		    f);
}

void
fetch_start_node(struct fetch *f)
{
	static const proto_node_cbs cbs = { .log = tool_proto_log };
	proto_node_config cfg;
	proto_addr at;
	struct sockaddr_storage ss;
	socklen_t sslen;

	memset(&cfg, 0, sizeof(cfg));
	cfg.server.conn.node_name = f->cfg.node_name;
	cfg.server.conn.timeout = f->timeout;
	cfg.server.conn.max_frame = REQUEST_FRAME_MAX;
	cfg.server.max_peers = f->max_peers;
	cfg.server.inline_chunks = f->inline_chunks;
	tool_tls_apply(&cfg.server.conn, 1);
	cfg.server.conn.limit = f->cfg.limit;
	cfg.client_tls = f->cfg.tls;
	cfg.identity = tool_tls_identity();
	tool_bind_address(f->bind_addr, f->share_port, &ss, &sslen);
	if ((f->node = proto_node_new(f->base, &cfg, &cbs, f)) == NULL ||
	    proto_addr_from_sockaddr(&at, (struct sockaddr *)&ss, sslen) != 0)
		tool_die(1, "out of memory");
	f->store = proto_node_store(f->node);
	f->server = proto_node_server(f->node);
	if (proto_node_listen(f->node, &at) != 0)
		tool_die_errno(1, "bind %s port %u", f->bind_addr,
		    f->share_port);
	f->cfg.listen_port = proto_node_port(f->node);
	tool_log(LOG_INFO, "sharing on port %u", f->cfg.listen_port);
	if (proto_node_start_beacon(f->node, &f->disco) != 0)
		tool_log(LOG_DEBUG, "discovery port %u: %s; not discoverable",
		    f->disco.port, strerror(errno));
	tool_nat_start(f->node);
}
