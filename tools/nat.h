/*
 * Port mapping for the tools that listen (p2p-serve, p2p-fetch -o): the
 * options --nat and --no-nat, the setting network.nat under them (off
 * unless asked: a mapping request goes to the real router), and the start
 * of the node's mapping, whose module is loaded then and only then.
 */
#ifndef TOOL_NAT_H
#define TOOL_NAT_H

#include "tool.h"

enum { TOOL_OPT_NAT = 0x290, TOOL_OPT_NO_NAT };
#define TOOL_LONGOPTS_NAT \
	{ "nat", no_argument, NULL, TOOL_OPT_NAT }, \
	{ "no-nat", no_argument, NULL, TOOL_OPT_NO_NAT }

#define TOOL_NAT_USAGE \
	"      --nat              ask the router to forward the listen port\n" \
	"                         (NAT-PMP, else UPnP-IGD) and announce its\n" \
	"                         external address\n" \
	"      --no-nat           do not (the default)\n"

/* Takes the file's setting (before the flags). */
void tool_nat_config(const struct tool_config *cfg);

/* Handles --nat and --no-nat; 1 when ch was one of them. */
int tool_nat_option(int ch);

/* With --nat, starts mapping the node's listen port (listen first); what
 * comes of it the node logs. MINI_P2P_NAT_LEASE (seconds, 2 to 86400)
 * sets the lease asked for, for tests of renewal. */
void tool_nat_start(proto_node *node);

#endif
