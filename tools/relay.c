/*
 * The relay options of p2p-serve and what they start (relay.h).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"
#include "tls.h"

#define DEFAULT_RELAY_PORT 8081

static int relay_on;
static uint16_t relay_port = DEFAULT_RELAY_PORT;
static proto_relay_config relay_cfg;
static const char *via;
static proto_relay *relay;
static proto_relay_client *client;

int
tool_relay_option(int ch)
{
	switch (ch) {
	case TOOL_OPT_RELAY:
		relay_on = 1;
		return 1;
	case TOOL_OPT_RELAY_PORT:
		relay_port = (uint16_t)tool_parse_number(optarg, 0, 65535,
		    "relay port");
		return 1;
	case TOOL_OPT_RELAY_CIRCUITS:
		relay_cfg.max_circuits = (unsigned)tool_parse_number(optarg, 1,
		    100000, "relay circuits");
		return 1;
	case TOOL_OPT_RELAY_RATE:
		relay_cfg.rate = tool_parse_rate(optarg, "relay rate");
		if (relay_cfg.rate == 0)
			tool_die(2, "relay rate: a relay is always bounded");
		if (relay_cfg.rate < (1u << 20))
			relay_cfg.circuit_rate = relay_cfg.rate;
		return 1;
	case TOOL_OPT_VIA_RELAY:
		via = optarg;
		return 1;
	}
	return 0;
}

void
tool_relay_apply(proto_conn_config *cfg)
{
	if (relay_on)
		cfg->relay_port = relay_port;
}

void
tool_relay_start(proto_node *node, struct event_base *base,
    const char *bind_addr)
{
	const char *dump = getenv("MINI_P2P_RELAY_DUMP");
	const char *old = getenv("MINI_P2P_RELAY_BEFORE_PUNCH");

	if (relay_on) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (dump != NULL && *dump != '\0' && (relay_cfg.dump_fd =
		    open(dump, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		    0600)) < 0)
			tool_die_errno(1, "%s", dump);
		relay_cfg.before_punch = old != NULL && *old == '1';
		tool_bind_address(bind_addr, relay_port, &ss, &len);
		if ((relay = proto_relay_new(base, &relay_cfg)) == NULL)
			tool_die(1, "out of memory");
		if (proto_relay_listen(relay, (struct sockaddr *)&ss, len) != 0)
			tool_die_errno(1, "relay port %u", relay_port);
		tool_log(LOG_INFO, "relaying on port %u",
		    proto_relay_port(relay));
	}
	if (via != NULL) {
		proto_addr a;

		if (tool_tls_identity() == NULL)
			tool_die(2, "--via-relay: a node reached through a "
			    "relay needs TLS (its identity is what a fetcher "
			    "pins)");
		tool_parse_peer("relay", via, 0, &a);
		if ((client = proto_relay_client_new(base,
		    proto_node_server(node), tool_tls_identity(), &a)) == NULL)
			tool_die(1, "out of memory");
	}
}

void
tool_relay_end(int stats)
{
	if (relay != NULL && stats) {
		proto_relay_stats st;
		proto_relay_stats_get(relay, &st);
		tool_log(LOG_INFO, "relayed: %llu circuits, %llu refused, "
		    "%llu bytes, %llu punches", (unsigned long long)st.circuits,
		    (unsigned long long)st.refused,
		    (unsigned long long)st.bytes,
		    (unsigned long long)st.punches);
	}
	proto_relay_free(relay);
	relay = NULL;
	proto_relay_client_free(client);
	client = NULL;
	if (relay_cfg.dump_fd > 0)
		close(relay_cfg.dump_fd);
}
