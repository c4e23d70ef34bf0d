/*
 * The DHT options and settings, and the start of a node's DHT source
 * (dht.h). The bootstrap list is the flags' when given, else the
 * environment's, else the file's, else the public network's node.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dht.h"
#include "tls.h"

static struct {
	int on;
	char list[1024];        /* comma-separated, from file or env */
	const char *flags[PROTO_DHT_BOOT_MAX];
	size_t nflags;
	uint16_t port;
} dht;

void
tool_dht_config(const struct tool_config *cfg)
{
	dht.on = cfg->dht;
	dht.port = cfg->dht_port;
	snprintf(dht.list, sizeof(dht.list), "%s", cfg->dht_bootstrap);
}

int
tool_dht_option(int ch)
{
	switch (ch) {
	case TOOL_OPT_DHT:
		dht.on = 1;
		return 1;
	case TOOL_OPT_DHT_BOOT:
		if (dht.nflags == PROTO_DHT_BOOT_MAX)
			tool_die(2, "at most %u --dht-bootstrap nodes",
			    PROTO_DHT_BOOT_MAX);
		dht.flags[dht.nflags++] = optarg;
		return 1;
	case TOOL_OPT_DHT_PORT:
		dht.port = (uint16_t)tool_parse_number(optarg, 0, 65535,
		    "DHT port");
		return 1;
	}
	return 0;
}

void
tool_dht_enable(void)
{
	dht.on = 1;
}

int
tool_dht_on(void)
{
	return dht.on;
}

proto_dht *
tool_dht_start(proto_node *node, int announce)
{
	static char list[1024];
	const char *boot[PROTO_DHT_BOOT_MAX];
	const proto_dht_engine_ops *ops;
	proto_dht_config c;
	proto_dht *d = NULL;
	const char *why = NULL;
	size_t nboot = 0;
	char *save = NULL, *s;
	int rc;

	if (announce && tool_tls_identity() == NULL)
		tool_die(1, "--dht: announcing needs TLS (the node's record is "
		    "signed with its identity)");
	if (proto_dht_engine_load(NULL, &ops, &why) != 0)
		tool_die(1, "--dht: cannot load the DHT module: %s (make deps, "
		    "then make)", why);
	if (dht.nflags > 0) {
		memcpy(boot, dht.flags, dht.nflags * sizeof(boot[0]));
		nboot = dht.nflags;
	} else if (dht.list[0] != '\0') {
		snprintf(list, sizeof(list), "%s", dht.list);
		for (s = strtok_r(list, ", ", &save); s != NULL &&
		    nboot < PROTO_DHT_BOOT_MAX; s = strtok_r(NULL, ", ", &save))
			boot[nboot++] = s;
	} else
		boot[nboot++] = PROTO_DHT_PUBLIC_BOOTSTRAP;
	memset(&c, 0, sizeof(c));
	c.engine = ops;
	c.boot = boot;
	c.nboot = nboot;
	c.port = dht.port;
	c.secret = tool_tls_secret();
	c.announce = announce;
	if ((rc = proto_node_start_dht(node, &c, &d, &why)) != 0) {
		if (why != NULL)
			tool_die(1, "--dht: %s", why);
		tool_die(1, "--dht: cannot start: %s", rc == PROTO_ERR_SYSTEM ?
		    strerror(errno) : proto_strerror(rc));
	}
	tool_log(LOG_INFO, "dht: UDP port %u, %zu bootstrap node(s)%s",
	    proto_dht_port(d), nboot, announce ? ", announcing" : "");
	if (c.secret != NULL)
		tool_log(LOG_INFO, "dht: the private swarm's own network %u "
		    "(its bootstrap nodes: dhtnode -n %u)",
		    (unsigned)proto_dht_network(c.secret),
		    (unsigned)proto_dht_network(c.secret));
	return d;
}

void
tool_dht_report(const proto_dht *d)
{
	proto_dht_stats st;

	if (d == NULL)
		return;
	proto_dht_stats_get(d, &st);
	tool_log(LOG_INFO, "dht: values=%llu taken=%llu puts=%llu ignored: "
	    "oversized=%llu malformed=%llu wrong_key=%llu stale=%llu "
	    "bad_sig=%llu unsealed=%llu repeated=%llu over_signers=%llu "
	    "queue_full=%llu",
	    (unsigned long long)st.values, (unsigned long long)st.taken,
	    (unsigned long long)st.puts, (unsigned long long)st.oversized,
	    (unsigned long long)st.malformed, (unsigned long long)st.wrong_key,
	    (unsigned long long)st.stale, (unsigned long long)st.bad_sig,
	    (unsigned long long)st.unsealed, (unsigned long long)st.repeated,
	    (unsigned long long)st.over_signers,
	    (unsigned long long)st.queue_full);
}
