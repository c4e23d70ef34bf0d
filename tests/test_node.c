/*
 * node.c: a node at its edges. One with no listener (no port, no address,
 * nothing is itself), two that find each other through bootstrap, a source
 * that reports a malformed or the node's own address, and a node freed
 * from inside its own callback.
 */
#include <signal.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/event.h>

#include "proto.h"
#include "tap.h"

#define DEADLINE_S 10

/* What a watcher saw. */
struct seen {
	unsigned count;
	proto_addr last;
	char source[32];
	proto_node *free_me; /* freed from inside the callback */
};

static void
watch(const proto_addr *addr, const char *source, void *arg)
{
	struct seen *s = arg;

	s->count++;
	s->last = *addr;
	snprintf(s->source, sizeof(s->source), "%s", source);
	if (s->free_me != NULL) {
		proto_node_free(s->free_me);
		s->free_me = NULL;
	}
}

static proto_node *
node_new(struct event_base *base, const proto_addr *boot, size_t nboot)
{
	proto_node_config cfg;
	proto_node_cbs cbs = { NULL };

	memset(&cfg, 0, sizeof(cfg));
	cfg.server.conn.node_name = "node";
	cfg.boot = boot;
	cfg.nboot = nboot;
	return proto_node_new(base, &cfg, &cbs, NULL);
}

static proto_addr
loopback(uint16_t port)
{
	proto_addr a;
	struct sockaddr_in in;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_port = htons(port);
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	proto_addr_from_sockaddr(&a, (struct sockaddr *)&in, sizeof(in));
	return a;
}

static void
test_no_listener(struct event_base *base)
{
	proto_node *n = node_new(base, NULL, 0);
	proto_addr out[4], a = loopback(8080);
	struct seen s;

	memset(&s, 0, sizeof(s));
	ok(n != NULL, "a node with no listener is made");
	is_int(proto_node_port(n), 0, "... its port is 0");
	is_int((int)proto_node_addrs(n, out, 4), 0, "... it has no address");
	is_int(proto_node_is_self(n, &a), 0,
	    "... and no address is itself, loopback included");
	proto_node_watch(n, watch, &s);
	is_int(proto_node_found(n, &a, "test"), 1,
	    "... yet what it finds is offered");
	ok(s.count == 1 && proto_addr_equal(&s.last, &a) &&
	    strcmp(s.source, "test") == 0, "... to its watcher, with the source");
	is_int((int)proto_node_known(n)->count, 1, "... and entered as known");
	proto_node_unwatch(n, watch, &s);
	proto_node_found(n, &a, "test");
	is_int(s.count, 1, "unwatched: offered no more");
	proto_node_free(n);
	proto_node_free(NULL);
}

/* A source that reports what it is given, at start. */
struct reporter {
	const proto_addr *addrs;
	size_t n;
	int offered;
	int freed;
	int lookups;
};

static int
reporter_start(proto_node *node, void *state)
{
	struct reporter *r = state;

	for (size_t i = 0; i < r->n; i++)
		r->offered += proto_node_found(node, &r->addrs[i], "reporter");
	return 0;
}

static int
reporter_lookup(void *state, const uint8_t id[PROTO_HASH_LEN])
{
	struct reporter *r = state;

	(void)id;
	r->lookups++;
	return 0;
}

static void
reporter_free(void *state)
{
	struct reporter *r = state;

	r->freed++;
}

static const proto_node_source_ops reporter_ops = { "reporter",
    reporter_start, reporter_lookup, NULL, reporter_free };

static void
test_source_malformed_or_self(struct event_base *base)
{
	proto_node *n = node_new(base, NULL, 0);
	proto_addr at = loopback(0), bad[4];
	uint8_t id[PROTO_HASH_LEN] = { 0 };
	struct reporter r;
	struct seen s;
	uint16_t port;

	memset(&s, 0, sizeof(s));
	memset(&r, 0, sizeof(r));
	is_int(proto_node_listen(n, &at), 0, "a node listens on 127.0.0.1");
	port = proto_node_port(n);
	ok(port != 0, "... on a port the kernel picked");
	bad[0] = loopback(port);                     /* itself */
	proto_addr_from_host(&bad[1], "0.0.0.0", 7, 9); /* a wildcard */
	bad[2] = loopback(9);
	proto_addr_set_port(&bad[2], 0);             /* no port */
	bad[3] = loopback(port == 65535 ? 1 : port + 1); /* another node */
	r.addrs = bad;
	r.n = 4;
	proto_node_watch(n, watch, &s);
	is_int(proto_node_add_source(n, &reporter_ops, &r), 0,
	    "a source is added and started");
	is_int(r.offered, 1, "of itself, a wildcard, no port and another: "
	    "one offered");
	ok(s.count == 1 && proto_addr_equal(&s.last, &bad[3]),
	    "... the other node, and only it, reaches the watcher");
	is_int((int)proto_node_known(n)->count, 1, "... and the table");
	is_int((int)proto_node_lookup(n, id), 1, "a lookup asks the source");
	is_int(r.lookups, 1, "... once");
	is_int((int)proto_node_announce(n, id), 0,
	    "a source with no announce is not told");
	proto_node_free(n);
	is_int(r.freed, 1, "the source's state is freed with the node");
}

static void
run_until(struct event_base *base, const unsigned *a, const unsigned *b)
{
	time_t end = time(NULL) + DEADLINE_S;

	while (time(NULL) < end && (*a == 0 || *b == 0)) {
		struct timespec ms = { 0, 1000000 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ms, NULL);
	}
}

static void
test_two_nodes_bootstrap(struct event_base *base)
{
	proto_node *a = node_new(base, NULL, 0), *b;
	proto_addr at = loopback(0), a_addr;
	struct seen sa, sb;

	memset(&sa, 0, sizeof(sa));
	memset(&sb, 0, sizeof(sb));
	proto_node_listen(a, &at);
	a_addr = loopback(proto_node_port(a));
	b = node_new(base, &a_addr, 1);
	proto_node_listen(b, &at);
	proto_node_watch(a, watch, &sa);
	proto_node_watch(b, watch, &sb);
	is_int(proto_node_start_bootstrap(b), 0, "b bootstraps through a");
	run_until(base, &sa.count, &sb.count);
	ok(sb.count >= 1 && proto_addr_port(&sb.last) == proto_node_port(a) &&
	    strcmp(sb.source, "bootstrap") == 0,
	    "b finds a through bootstrap");
	ok(sa.count >= 1 && proto_addr_port(&sa.last) == proto_node_port(b),
	    "a finds b, which connected to it");
	ok(proto_node_known(b)->count >= 1, "b knows a");
	proto_node_free(b);
	proto_node_free(a);
}

static void
test_free_inside_callback(struct event_base *base)
{
	proto_node *n = node_new(base, NULL, 0);
	proto_addr one = loopback(7000);
	struct seen s, t;

	memset(&s, 0, sizeof(s));
	memset(&t, 0, sizeof(t));
	s.free_me = n;
	proto_node_watch(n, watch, &s);
	proto_node_watch(n, watch, &t);
	is_int(proto_node_found(n, &one, "test"), 1,
	    "a watcher frees the node from inside its callback");
	is_int(s.count, 1, "... it was called");
	is_int(t.count, 0, "... the watchers after it are not, once freed");
}

int
main(void)
{
	struct event_base *base = event_base_new();

	signal(SIGPIPE, SIG_IGN);
	test_no_listener(base);
	test_source_malformed_or_self(base);
	test_two_nodes_bootstrap(base);
	test_free_inside_callback(base);
	proto_base_free(base);
	return done_testing();
}
