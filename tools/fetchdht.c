/*
 * p2p-fetch and the DHT (p2p-fetch.h): -p ID@dht, a node found by its
 * identity wherever it is now and pinned to it, and --dht, the nodes the
 * DHT names for the id. Both go through the node's DHT source, whose
 * reports the fetch takes as it takes any source's.
 */
#include <string.h>

#include "dht.h"
#include "p2p-fetch.h"
#include "tls.h"

#define DHT_SUFFIX "@dht"

int
fetch_peer_dht(struct fetch *f, const char *arg)
{
	size_t n = strlen(arg), sl = strlen(DHT_SUFFIX);
	char hex[PROTO_IDENTITY_HEX_LEN + 1];

	if (n < sl || strcmp(arg + n - sl, DHT_SUFFIX) != 0)
		return 0;
	if (n - sl != PROTO_IDENTITY_HEX_LEN)
		tool_die(2, "peer '%s': the identity before '@dht' must be %d "
		    "hex digits", arg, PROTO_IDENTITY_HEX_LEN);
	memcpy(hex, arg, PROTO_IDENTITY_HEX_LEN);
	hex[PROTO_IDENTITY_HEX_LEN] = '\0';
	if (proto_id_parse(hex, f->find[f->nfind]) != 0)
		tool_die(2, "peer '%s': the identity before '@dht' must be %d "
		    "hex digits", arg, PROTO_IDENTITY_HEX_LEN);
	if (f->nfind == (int)(sizeof(f->find) / sizeof(f->find[0])) - 1)
		tool_die(2, "at most %zu -p ID@dht",
		    sizeof(f->find) / sizeof(f->find[0]) - 1);
	f->nfind++;
	return 1;
}

void
fetch_start_dht(struct fetch *f)
{
	static const proto_node_cbs cbs = { .log = tool_proto_log };
	proto_node_config cfg;
	int lookup = tool_dht_on();

	if (!lookup && f->nfind == 0)
		return;
	if (f->node == NULL) {
		/* No listener: it asks, and is not found. */
		memset(&cfg, 0, sizeof(cfg));
		cfg.server.conn.node_name = f->cfg.node_name;
		cfg.server.conn.timeout = f->timeout;
		cfg.client_tls = f->cfg.tls;
		if ((f->node = proto_node_new(f->base, &cfg, &cbs, f)) == NULL)
			tool_die(1, "out of memory");
	}
	f->dht = tool_dht_start(f->node, proto_node_port(f->node) != 0 &&
	    tool_tls_identity() != NULL);
	if (lookup && !f->listing)
		(void)proto_node_lookup(f->node, f->id);
	for (int i = 0; i < f->nfind; i++)
		if (proto_dht_find_node(f->dht, f->find[i]) != 0)
			tool_die(1, "--dht: cannot look identity up");
}

static void
dht_done(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;

	(void)fd;
	(void)what;
	proto_fetch_more_peers(f->fx, f->stdin_open);
}

void
fetch_wait_dht(struct fetch *f)
{
	struct timeval tv = { (time_t)f->timeout, 0 };

	if (f->dht == NULL)
		return;
	proto_fetch_more_peers(f->fx, 1);
	f->dht_ev = evtimer_new(f->base, dht_done, f);
	if (f->dht_ev == NULL || evtimer_add(f->dht_ev, &tv) != 0)
		tool_die(1, "out of memory");
}

void
fetch_end_dht(struct fetch *f)
{
	tool_dht_report(f->dht);
	if (f->dht_ev != NULL)
		event_free(f->dht_ev);
	f->dht_ev = NULL;
}
