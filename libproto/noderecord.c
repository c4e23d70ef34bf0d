/*
 * The node's own record, sent in every HELLO and passed on by others, and
 * the check of a record a source got for another node (node.h,
 * node_private.h).
 */
#include <time.h>

#include "node.h"
#include "node_private.h"
#include "record.h"

const uint8_t *
proto_node_record(proto_node *n, size_t *len)
{
	proto_record_own *own = proto__node_own(n);
	proto_store *store = proto_node_store(n);
	proto_addr addrs[PROTO_RECORD_ADDRS_MAX];
	uint64_t flags = PROTO_RECORD_REACHABLE;
	size_t count;

	*len = 0;
	if (proto__node_identity(n) == NULL || proto_node_port(n) == 0)
		return NULL;
	count = proto_node_addrs(n, addrs, PROTO_RECORD_ADDRS_MAX);
	for (size_t i = 0; i < proto_store_count(store); i++)
		if (proto_store_have(store, proto_store_get(store, i)->id) ==
		    NULL) {
			flags |= PROTO_RECORD_SEED;
			break;
		}
	if (proto_record_refresh(own, proto__node_identity(n), addrs, count,
	    flags, (uint64_t)time(NULL)) != 0 || own->len == 0)
		return NULL;
	*len = own->len;
	return own->buf;
}

int
proto__node_record_pins(proto_addr *addr, const uint8_t *rec, size_t len)
{
	proto_record r;

	if (rec == NULL || proto_record_verify(rec, len, (uint64_t)time(NULL),
	    &r) != 0 || !proto_record_has_addr(&r, addr))
		return 0;
	proto_addr_set_pin(addr, r.id);
	return 1;
}
