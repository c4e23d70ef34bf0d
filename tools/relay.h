/*
 * Relaying for p2p-serve (PROTOCOL.md section 13): --relay makes the node
 * a relay, bounded in circuits and bandwidth, off unless asked; and
 * --via-relay HOST:PORT makes it reachable through one, for a node no
 * one can connect to.
 */
#ifndef TOOL_RELAY_H
#define TOOL_RELAY_H

#include "tool.h"

enum {
	TOOL_OPT_RELAY = 0x2a0, TOOL_OPT_RELAY_PORT, TOOL_OPT_RELAY_CIRCUITS,
	TOOL_OPT_RELAY_RATE, TOOL_OPT_VIA_RELAY
};
#define TOOL_LONGOPTS_RELAY \
	{ "relay", no_argument, NULL, TOOL_OPT_RELAY }, \
	{ "relay-port", required_argument, NULL, TOOL_OPT_RELAY_PORT }, \
	{ "relay-max-circuits", required_argument, NULL, \
	    TOOL_OPT_RELAY_CIRCUITS }, \
	{ "relay-rate", required_argument, NULL, TOOL_OPT_RELAY_RATE }, \
	{ "via-relay", required_argument, NULL, TOOL_OPT_VIA_RELAY }

#define TOOL_RELAY_USAGE \
	"      --relay            relay for nodes no one can reach (off by\n" \
	"                         default); it sees only TLS ciphertext\n" \
	"      --relay-port PORT  the relay's TCP port (default 8081)\n" \
	"      --relay-max-circuits N  circuits at once (default 16)\n" \
	"      --relay-rate RATE  bytes/s through all circuits (default 4M;\n" \
	"                         a circuit: at most 1M, or RATE if less)\n" \
	"      --via-relay HOST:PORT  be reachable through that relay: fetch\n" \
	"                         with -p IDENTITY@relay:HOST:PORT\n"

/* Handles the options above; 1 when ch was one of them. */
int tool_relay_option(int ch);

/* With --relay on a fixed port, the node's HELLOs say it relays there
 * (caps bit 7 and "relay"); before the node is made from cfg. */
void tool_relay_apply(proto_conn_config *cfg);

/* Starts what was asked, once the node listens: the relay on bind_addr,
 * and the control connection to --via-relay's. Dies when the relay's port
 * cannot be had. MINI_P2P_RELAY_DUMP (tests only) names a file that gets
 * every byte relayed. */
void tool_relay_start(proto_node *node, struct event_base *base,
    const char *bind_addr);

/* Prints the relay's counts (--stats) and stops both. */
void tool_relay_end(int stats);

#endif
