/*
 * The DHT for the tools that join it (p2p-serve, p2p-fetch, p2p-discover):
 * the options --dht, --dht-bootstrap HOST:PORT and --dht-port PORT, the
 * settings network.dht, network.dht_bootstrap and network.dht_port (and
 * MINI_P2P_DHT, MINI_P2P_DHT_BOOTSTRAP, MINI_P2P_DHT_PORT) under them, and
 * the start of the node's DHT source, whose engine module (OpenDHT) is
 * loaded then and only then.
 */
#ifndef TOOL_DHT_H
#define TOOL_DHT_H

#include "tool.h"

enum { TOOL_OPT_DHT = 0x280, TOOL_OPT_DHT_BOOT, TOOL_OPT_DHT_PORT };
#define TOOL_LONGOPTS_DHT \
	{ "dht", no_argument, NULL, TOOL_OPT_DHT }, \
	{ "dht-bootstrap", required_argument, NULL, TOOL_OPT_DHT_BOOT }, \
	{ "dht-port", required_argument, NULL, TOOL_OPT_DHT_PORT }

#define TOOL_DHT_USAGE \
	"      --dht              join the DHT (OpenDHT) to find and be found\n" \
	"                         beyond the LAN\n" \
	"      --dht-bootstrap HOST:PORT  join the DHT through this node (repeat\n" \
	"                         for more; default " PROTO_DHT_PUBLIC_BOOTSTRAP ")\n" \
	"      --dht-port PORT    the DHT's UDP port (default: any)\n"

/* Takes the file's and the environment's DHT settings (before the
 * flags). */
void tool_dht_config(const struct tool_config *cfg);

/* Handles the DHT options; 1 when ch was one of them. */
int tool_dht_option(int ch);

/* Turns the DHT on, as --dht does (p2p-fetch's -p ID@dht). */
void tool_dht_enable(void);

/* 1 when the DHT is on (--dht, network.dht, MINI_P2P_DHT=1). */
int tool_dht_on(void);

/*
 * Starts the node's DHT source: loads the engine module, joins through the
 * bootstrap nodes (the configured ones, else the public network's), and
 * with announce puts what the node holds and where it is (it needs TLS:
 * the identity signs). Exits 1 naming what failed (no module: make deps;
 * the public network refused under MINI_P2P_NO_PUBLIC_DHT). The source is
 * the node's.
 */
proto_dht *tool_dht_start(proto_node *node, int announce);

/* At -v, what the source turned away, one line on stderr. */
void tool_dht_report(const proto_dht *d);

#endif
