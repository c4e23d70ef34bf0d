/*
 * nodeext.c: the node's external address. What one peer says is not
 * believed; two peers at distinct hosts that agree are, and the address
 * then comes first in what the node says of itself and counts as itself.
 * What a peer says of a loopback or local address is ignored, a mapping
 * outranks what peers say, and only the last 16 peer hosts are kept.
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "proto.h"
#include "tap.h"

static proto_addr
addr(const char *host, uint16_t port)
{
	proto_addr a;

	if (proto_addr_from_host(&a, host, strlen(host), port) != 0)
		memset(&a, 0, sizeof(a));
	return a;
}

static proto_node *
node_new(struct event_base *base, int listen)
{
	proto_node_config cfg;
	proto_node_cbs cbs = { NULL };
	proto_node *n;
	proto_addr at = addr("127.0.0.1", 1);

	memset(&cfg, 0, sizeof(cfg));
	cfg.server.conn.node_name = "node";
	n = proto_node_new(base, &cfg, &cbs, NULL);
	proto_addr_set_port(&at, 0);
	if (n != NULL && listen && proto_node_listen(n, &at) != 0) {
		proto_node_free(n);
		return NULL;
	}
	return n;
}

static void
test_not_listening(struct event_base *base)
{
	proto_node *n = node_new(base, 0);
	proto_addr seen = addr("5.5.5.1", 40000);
	proto_addr b1 = addr("6.6.6.1", 8080), b2 = addr("7.7.7.1", 8080);

	is_int(proto_node_observe(n, &seen, &b1), 0, "no listener: ignored");
	is_int(proto_node_observe(n, &seen, &b2), 0, "... by a second host too");
	is_int(proto_node_external(n, NULL), PROTO_NODE_EXT_NONE,
	    "... and no external address");
	proto_node_free(n);
}

static void
test_two_agree(struct event_base *base)
{
	proto_node *n = node_new(base, 1);
	uint16_t port = proto_node_port(n);
	proto_addr seen = addr("5.5.5.1", 40000), got;
	proto_addr b1 = addr("6.6.6.1", 8080), b1b = addr("6.6.6.1", 9090);
	proto_addr b2 = addr("7.7.7.1", 8080), other = addr("5.5.5.9", 1);
	proto_addr list[PROTO_NODE_ADDRS_MAX], want = addr("5.5.5.1", port);

	is_int(proto_node_observe(n, &seen, &b1), 0, "one peer: not believed");
	is_int(proto_node_observe(n, &seen, &b1b), 0,
	    "the same host again, at another port: not believed");
	is_int(proto_node_external(n, NULL), PROTO_NODE_EXT_NONE,
	    "... no external address yet");
	is_int(proto_node_addrs(n, list, PROTO_NODE_ADDRS_MAX) > 0 &&
	    proto_addr_equal(&list[0], &want), 0, "... nor in the addresses");
	is_int(proto_node_is_self(n, &want), 0, "... nor self");
	is_int(proto_node_observe(n, &other, &b2), 0,
	    "a second host that disagrees: not believed");
	is_int(proto_node_observe(n, &seen, &b2), 1,
	    "a second host that agrees: believed");
	is_int(proto_node_external(n, &got), PROTO_NODE_EXT_SEEN, "... as seen");
	ok(proto_addr_equal(&got, &want), "... the host seen, our own port: %s",
	    proto_addr_text(&got));
	ok(proto_node_addrs(n, list, PROTO_NODE_ADDRS_MAX) >= 2 &&
	    proto_addr_equal(&list[0], &want), "... first of the addresses");
	ok(proto_node_is_self(n, &want), "... and self");
	is_int(proto_node_observe(n, &seen, &b1), 0,
	    "said again: nothing changes");
	proto_node_free(n);
}

static void
test_local_ignored(struct event_base *base)
{
	proto_node *n = node_new(base, 1);
	proto_addr lo = addr("127.0.0.1", 40000), any = addr("0.0.0.0", 1);
	proto_addr b1 = addr("6.6.6.1", 8080), b2 = addr("7.7.7.1", 8080);
	proto_addr seen = addr("5.5.5.1", 1);

	proto_node_observe(n, &lo, &b1);
	is_int(proto_node_observe(n, &lo, &b2), 0, "loopback seen: ignored");
	proto_node_observe(n, &any, &b1);
	is_int(proto_node_observe(n, &any, &b2), 0, "a wildcard seen: ignored");
	b2 = addr("127.0.0.2", 8080);
	proto_node_observe(n, &seen, &b1);
	is_int(proto_node_observe(n, &seen, &b2), 0,
	    "said by a peer on loopback: ignored");
	is_int(proto_node_external(n, NULL), PROTO_NODE_EXT_NONE,
	    "... no external address");
	proto_node_free(n);
}

static void
test_mapped_wins(struct event_base *base)
{
	proto_node *n = node_new(base, 1);
	proto_addr mapped = addr("5.5.5.1", 50000), got, nop = addr("5.5.5.1", 1);
	proto_addr seen = addr("9.9.9.9", 1);
	proto_addr b1 = addr("6.6.6.1", 8080), b2 = addr("7.7.7.1", 8080);

	proto_addr_set_port(&nop, 0);
	is_int(proto_node_set_mapped(n, &nop), PROTO_ERR_INVALID,
	    "a mapping without a port: refused");
	is_int(proto_node_set_mapped(n, &mapped), 0, "a mapping");
	is_int(proto_node_external(n, &got), PROTO_NODE_EXT_MAPPED, "... mapped");
	ok(proto_addr_equal(&got, &mapped), "... at its external port");
	ok(proto_node_is_self(n, &mapped), "... which is self");
	proto_node_observe(n, &seen, &b1);
	is_int(proto_node_observe(n, &seen, &b2), 0,
	    "two peers that say otherwise: the mapping holds");
	is_int(proto_node_set_mapped(n, NULL), 0, "the mapping gone");
	is_int(proto_node_external(n, NULL), PROTO_NODE_EXT_NONE,
	    "... no external address");
	ok(!proto_node_is_self(n, &mapped), "... nor self there");
	proto_node_free(n);
}

/* One peer host says one thing, 16 others each another: the first is
 * forgotten, so an 18th that agrees with it stands alone. */
static void
test_bounded(struct event_base *base)
{
	proto_node *n = node_new(base, 1);
	proto_addr first = addr("5.5.5.1", 1), by, seen;
	char host[32];

	by = addr("6.6.6.1", 8080);
	proto_node_observe(n, &first, &by);
	for (int i = 0; i < 16; i++) {
		snprintf(host, sizeof(host), "8.8.%d.1", i);
		by = addr(host, 8080);
		snprintf(host, sizeof(host), "9.9.%d.1", i);
		seen = addr(host, 1);
		proto_node_observe(n, &seen, &by);
	}
	by = addr("7.7.7.1", 8080);
	is_int(proto_node_observe(n, &first, &by), 0,
	    "the oldest word is forgotten past 16 peer hosts");
	is_int(proto_node_external(n, NULL), PROTO_NODE_EXT_NONE,
	    "... no external address");
	proto_node_free(n);
}

int
main(void)
{
	struct event_base *base = event_base_new();

	signal(SIGPIPE, SIG_IGN);
	alarm(60);
	if (base == NULL) {
		diag("setup failed");
		return 1;
	}
	test_not_listening(base);
	test_two_agree(base);
	test_local_ignored(base);
	test_mapped_wins(base);
	test_bounded(base);
	proto_base_free(base);
	return done_testing();
}
