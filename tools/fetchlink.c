/*
 * p2p-fetch LINK (p2p-fetch.h): what p2p-send prints, taken apart by
 * libproto's link.c into the id, the peers (each pinned to the sender's
 * identity) and, for a link without addresses, the DHT's lookups.
 */
#include <stdlib.h>
#include <string.h>

#include "dht.h"
#include "p2p-fetch.h"

int
fetch_link(struct fetch *f, const char *arg)
{
	proto_link *l;
	const char *why = NULL;
	size_t where = 0, n;

	if (!proto_link_is(arg))
		return 0;
	if ((l = malloc(sizeof(*l))) == NULL)
		tool_die(1, "out of memory");
	if (proto_link_parse(arg, l, &why, &where) != 0) {
		if (where != 0)
			tool_die(2, "link: address %zu: %s", where, why);
		tool_die(2, "link: %s", why);
	}
	memcpy(f->id, l->id, PROTO_HASH_LEN);
	n = (size_t)f->npeers + l->naddrs;
	if (l->naddrs > 0 && (f->peers = realloc(f->peers,
	    (n ? n : 1) * sizeof(*f->peers))) == NULL)
		tool_die(1, "out of memory");
	for (size_t i = 0; i < l->naddrs; i++)
		f->peers[f->npeers++] = l->addrs[i];
	if (l->naddrs == 0 && f->npeers == 0 && !tool_dht_on())
		tool_die(2, "link: no addresses: give --dht to look the id up "
		    "in the DHT, or -p HOST:PORT");
	/* Without addresses, the sender is found by its identity too. */
	if (l->naddrs == 0 && l->has_identity && tool_dht_on() &&
	    f->nfind < (int)(sizeof(f->find) / sizeof(f->find[0])))
		memcpy(f->find[f->nfind++], l->identity, PROTO_IDENTITY_LEN);
	f->link = 1;
	f->remote_name = 1;
	free(l);
	return 1;
}
