/*
 * The port-mapping options and setting, and the start of a node's
 * mapping (nat.h).
 */
#include <stdlib.h>
#include <string.h>

#include "nat.h"

static int nat_on;

void
tool_nat_config(const struct tool_config *cfg)
{
	nat_on = cfg->nat;
}

int
tool_nat_option(int ch)
{
	switch (ch) {
	case TOOL_OPT_NAT:
		nat_on = 1;
		return 1;
	case TOOL_OPT_NO_NAT:
		nat_on = 0;
		return 1;
	}
	return 0;
}

void
tool_nat_start(proto_node *node)
{
	proto_nat_config c;
	const char *env = getenv("MINI_P2P_NAT_LEASE");

	if (!nat_on || proto_node_port(node) == 0)
		return;
	memset(&c, 0, sizeof(c));
	if (env != NULL && *env != '\0')
		c.lease = (uint32_t)tool_parse_number(env, 2, 86400,
		    "MINI_P2P_NAT_LEASE");
	/* Whatever fails, the node logs why and goes on unmapped. */
	(void)proto_node_start_nat(node, &c);
}
