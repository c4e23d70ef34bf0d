/*
 * The node's external address (node.h): what the peers it meets say they
 * see it at, believed once two peers at distinct hosts agree, and what a
 * port mapping says, believed at once. One peer alone could send it
 * anywhere; two hosts agreeing cost an attacker two hosts.
 */
#include <string.h>
#include <time.h>

#include "error.h"
#include "node.h"
#include "node_private.h"

unsigned
proto_node_external(const proto_node *n, proto_addr *out)
{
	if (n->ext_how != PROTO_NODE_EXT_NONE && out != NULL)
		*out = n->external;
	return n->ext_how;
}

/* 1 when a's host is one of this host's own, loopback or a wildcard:
 * no NAT stands between the peer and us. */
static int
local_host(const proto_node *n, const proto_addr *a)
{
	proto_addr l;

	if (proto_addr_is_loopback(a) || proto_addr_is_any(a) ||
	    proto_addr_same_host(a, &n->bound))
		return 1;
	for (size_t i = 0; i < n->nlocal; i++)
		if (proto_addr_from_sockaddr(&l, (const struct sockaddr *)
		    &n->local[i], sizeof(n->local[i])) == 0 &&
		    proto_addr_same_host(a, &l))
			return 1;
	return 0;
}

/* The slot for the peer host of by: its own, a free one, or the oldest. */
static struct node_observed *
slot(proto_node *n, const proto_addr *by)
{
	struct node_observed *old = &n->observed[0];

	for (size_t i = 0; i < n->nobserved; i++) {
		if (proto_addr_same_host(&n->observed[i].by, by))
			return &n->observed[i];
		if (n->observed[i].when < old->when)
			old = &n->observed[i];
	}
	if (n->nobserved < NODE_OBSERVED_MAX)
		return &n->observed[n->nobserved++];
	return old;
}

static void
set_external(proto_node *n, const proto_addr *ext, unsigned how)
{
	n->external = *ext;
	n->ext_how = how;
	proto__node_addrs_changed(n);
}

int
proto_node_observe(proto_node *n, const proto_addr *seen,
    const proto_addr *by)
{
	struct node_observed *o;
	unsigned agree = 0;
	proto_addr ext;

	if (!n->listening || local_host(n, seen) ||
	    proto_addr_is_loopback(by) || proto_addr_is_any(by))
		return 0;
	o = slot(n, by);
	o->by = *by;
	o->seen = *seen;
	proto_addr_set_port(&o->seen, proto_node_port(n));
	o->when = time(NULL);
	for (size_t i = 0; i < n->nobserved; i++)
		if (proto_addr_same_host(&n->observed[i].seen, &o->seen))
			agree++;
	if (agree < NODE_OBSERVED_AGREE || n->ext_how ==
	    PROTO_NODE_EXT_MAPPED || (n->ext_how == PROTO_NODE_EXT_SEEN &&
	    proto_addr_equal(&n->external, &o->seen)))
		return 0;
	ext = o->seen;
	set_external(n, &ext, PROTO_NODE_EXT_SEEN);
	proto__node_say(n, PROTO_LOG_INFO, "external address %s: %u peers "
	    "see this node at it", proto_addr_text(&ext), agree);
	return 1;
}

int
proto_node_set_mapped(proto_node *n, const proto_addr *ext)
{
	if (ext == NULL) {
		if (n->ext_how == PROTO_NODE_EXT_MAPPED) {
			n->ext_how = PROTO_NODE_EXT_NONE;
			proto__node_addrs_changed(n);
		}
		return 0;
	}
	if (proto_addr_port(ext) == 0)
		return PROTO_ERR_INVALID;
	set_external(n, ext, PROTO_NODE_EXT_MAPPED);
	return 0;
}

void
proto__node_on_seen(const proto_addr *seen, const proto_addr *by, void *arg)
{
	(void)proto_node_observe(arg, seen, by);
}

void
proto__node_addrs_changed(proto_node *n)
{
	if (n->listening) {
		proto_addr said[PROTO_HELLO_ADDRS_MAX];
		proto_server_set_addrs(n->server, said, proto_node_addrs(n,
		    said, PROTO_HELLO_ADDRS_MAX));
		proto_server_set_mapped(n->server, n->ext_how ==
		    PROTO_NODE_EXT_MAPPED ? &n->external : NULL);
	}
}
