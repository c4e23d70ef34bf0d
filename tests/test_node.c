/*
 * node.c: a node at its edges. One with no listener (no port, no address,
 * nothing is itself), two that find each other through bootstrap, a source
 * that reports a malformed or the node's own address, and a node freed
 * from inside its own callback. nodelan.c and nodepex.c: the sources that
 * ask once, and the details they report (what a datagram says; what a
 * handshake shows, and whether a node has the id looked up; who did not
 * answer).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "proto.h"
#include "tap.h"

#define DEADLINE_S 10

/* What a watcher saw. */
struct seen {
	unsigned count;
	proto_addr last;
	char source[32];
	unsigned what;
	proto_node *free_me; /* freed from inside the callback */
};

static void
watch(const proto_node_seen *seen, void *arg)
{
	struct seen *s = arg;

	s->count++;
	s->last = seen->addr;
	s->what = seen->what;
	snprintf(s->source, sizeof(s->source), "%s", seen->source);
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

/* ---- the sources that ask once ---- */

/* Every report a watcher saw, in order. */
struct report {
	proto_addr addr;
	char source[16];
	unsigned what;
	char name[PROTO_NODE_NAME_MAX + 1];
	int named, has_nfiles, has_id, has;
	uint64_t nfiles;
	uint8_t id[PROTO_IDENTITY_LEN];
};

struct reports {
	struct report r[32];
	unsigned n;
	unsigned of[PROTO_NODE_UNREACHED + 1]; /* counts by what */
};

static void
record(const proto_node_seen *seen, void *arg)
{
	struct reports *rs = arg;
	struct report *r;

	if (seen->what <= PROTO_NODE_UNREACHED)
		rs->of[seen->what]++;
	if (rs->n == sizeof(rs->r) / sizeof(rs->r[0]))
		return;
	r = &rs->r[rs->n++];
	memset(r, 0, sizeof(*r));
	r->addr = seen->addr;
	snprintf(r->source, sizeof(r->source), "%s", seen->source);
	r->what = seen->what;
	if (seen->name != NULL) {
		r->named = 1;
		snprintf(r->name, sizeof(r->name), "%s", seen->name);
	}
	r->has_nfiles = seen->has_nfiles;
	r->nfiles = seen->nfiles;
	if (seen->identity != NULL) {
		r->has_id = 1;
		memcpy(r->id, seen->identity, PROTO_IDENTITY_LEN);
	}
	r->has = seen->has;
}

/* The first report of what about the node at port, or NULL. */
static const struct report *
reported(const struct reports *rs, unsigned what, uint16_t port)
{
	for (unsigned i = 0; i < rs->n; i++)
		if (rs->r[i].what == what &&
		    proto_addr_port(&rs->r[i].addr) == port)
			return &rs->r[i];
	return NULL;
}

static unsigned
count_of(const struct reports *rs, unsigned what, uint16_t port)
{
	unsigned k = 0;

	for (unsigned i = 0; i < rs->n; i++)
		k += rs->r[i].what == what &&
		    proto_addr_port(&rs->r[i].addr) == port;
	return k;
}

/* Runs the loop until *count reaches want, or the deadline. */
static void
run_for(struct event_base *base, const unsigned *count, unsigned want)
{
	time_t end = time(NULL) + DEADLINE_S;

	while (time(NULL) < end && *count < want) {
		struct timespec ms = { 0, 1000000 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ms, NULL);
	}
}

/* A UDP port nobody holds now. */
static uint16_t
free_udp_port(void)
{
	struct sockaddr_in in;
	socklen_t len = sizeof(in);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	uint16_t port = 0;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&in, sizeof(in)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&in, &len) == 0)
		port = ntohs(in.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static uint64_t
three_files(void *ctx)
{
	(void)ctx;
	return 3;
}

static void
test_query_lan(struct event_base *base)
{
	proto_node *q = node_new(base, NULL, 0);
	proto_beacon_config bcfg;
	proto_beacon_cbs bcbs = { NULL, three_files, NULL, NULL };
	proto_node_query_config qcfg;
	proto_beacon *b;
	struct reports rs;
	const struct report *r;

	memset(&rs, 0, sizeof(rs));
	memset(&bcfg, 0, sizeof(bcfg));
	memset(&qcfg, 0, sizeof(qcfg));
	qcfg.port = bcfg.port = free_udp_port();
	qcfg.target = bcfg.target = "127.255.255.255";
	bcfg.tcp_port = 4242;
	bcfg.name = "answerer";
	/* It answers queries; announcing would do too, so it does not. */
	bcfg.answer_only = 1;
	b = proto_beacon_new(base, &bcfg, &bcbs, NULL);
	ok(b != NULL, "a beacon answers on the test's discovery port");
	proto_node_watch(q, record, &rs);
	qcfg.target = "not-an-address";
	errno = 0;
	ok(proto_node_query_lan(q, &qcfg) == PROTO_ERR_SYSTEM &&
	    errno == EINVAL, "a LAN query to a bad target: EINVAL");
	qcfg.target = "127.255.255.255";
	is_int(proto_node_query_lan(q, &qcfg), 0,
	    "a node with no listener queries the LAN");
	run_for(base, &rs.of[PROTO_NODE_HEARD], 1);
	r = reported(&rs, PROTO_NODE_HEARD, 4242);
	ok(r != NULL && strcmp(r->source, "lan") == 0,
	    "the answer is reported as heard, by \"lan\"");
	ok(r != NULL && r->named && strcmp(r->name, "answerer") == 0 &&
	    r->has_nfiles && r->nfiles == 3,
	    "... with the name and file count the answer gives");
	ok(r != NULL && !r->has_id, "... and no identity: a datagram shows none");
	is_str(r != NULL ? proto_addr_text(&r->addr) : NULL, "127.0.0.1:4242",
	    "... at the sender's address and the TCP port it names");
	ok(proto_node_known(q)->count == 0,
	    "what a datagram says is not passed on");
	proto_node_free(q);
	proto_beacon_free(b);
}

/* A node on 127.0.0.1 named name, over TLS with key, holding mf when not
 * NULL. */
static proto_node *
tls_node(struct event_base *base, const char *name, struct ssl_ctx_st *tls,
    proto_manifest *mf)
{
	proto_node_config cfg;
	proto_node_cbs cbs = { NULL };
	proto_addr at = loopback(0);
	proto_node *n;

	memset(&cfg, 0, sizeof(cfg));
	cfg.server.conn.node_name = name;
	cfg.server.conn.tls = tls;
	n = proto_node_new(base, &cfg, &cbs, NULL);
	if (n == NULL || proto_node_listen(n, &at) != 0 ||
	    (mf != NULL && proto_store_add(proto_node_store(n), mf) < 0)) {
		diag("cannot make node %s on 127.0.0.1", name);
		exit(2);
	}
	return n;
}

/* A node that asks: no listener, TLS as a client, these bootstrap peers. */
static proto_node *
asker(struct event_base *base, struct ssl_ctx_st *tls, const proto_addr *boot,
    size_t nboot)
{
	proto_node_config cfg;
	proto_node_cbs cbs = { NULL };

	memset(&cfg, 0, sizeof(cfg));
	cfg.server.conn.node_name = "asker";
	cfg.client_tls = tls;
	cfg.boot = boot;
	cfg.nboot = nboot;
	return proto_node_new(base, &cfg, &cbs, NULL);
}

static proto_identity *
key(const char *dir, const char *name)
{
	char path[256];
	proto_identity *id = NULL;

	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	if (proto_identity_load(path, 1, &id) != 0) {
		diag("cannot make a key in %s", dir);
		exit(2);
	}
	return id;
}

static void
test_query_peers(struct event_base *base, const char *dir)
{
	proto_identity *ka = key(dir, "a"), *kb = key(dir, "b"),
	    *kq = key(dir, "q");
	struct ssl_ctx_st *sa = proto_tls_ctx_new(ka, 1),
	    *sb = proto_tls_ctx_new(kb, 1), *cq = proto_tls_ctx_new(kq, 0);
	static uint8_t bytes[3000];
	char path[256];
	proto_manifest *mf = NULL;
	proto_node *a, *b, *q;
	proto_addr a_addr, b_addr;
	const struct report *r;
	struct reports rs;
	int fd;

	memset(&rs, 0, sizeof(rs));
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, bytes, sizeof(bytes)) != sizeof(bytes) ||
	    lseek(fd, 0, SEEK_SET) != 0 ||
	    proto_manifest_build_fd(fd, "file", path, 0, &mf) != 0) {
		diag("cannot make a file in %s", dir);
		exit(2);
	}
	close(fd);
	a = tls_node(base, "node-a", sa, mf);
	b = tls_node(base, "node-b", sb, NULL);
	a_addr = loopback(proto_node_port(a));
	b_addr = loopback(proto_node_port(b));
	/* a met b, and names it when asked for its peers (one only heard
	 * of is not passed on). */
	{
		proto_node_seen met;
		memset(&met, 0, sizeof(met));
		met.addr = b_addr;
		met.source = "test";
		met.what = PROTO_NODE_MET;
		proto_node_report(a, &met);
	}
	q = asker(base, cq, &a_addr, 1);
	proto_node_watch(q, record, &rs);
	is_int(proto_node_query_peers(q), 0,
	    "a node with no listener asks its bootstrap peer");
	is_int((int)proto_node_lookup(q, mf->id), 1,
	    "... and looks an id up through it");
	run_for(base, &rs.of[PROTO_NODE_HAS], 2);
	r = reported(&rs, PROTO_NODE_MET, proto_node_port(a));
	ok(r != NULL && strcmp(r->source, "pex") == 0 && r->named &&
	    strcmp(r->name, "node-a") == 0 && r->has_nfiles &&
	    r->nfiles == 1, "the bootstrap peer is met: its HELLO's name and "
	    "file count");
	ok(r != NULL && r->has_id &&
	    memcmp(r->id, proto_identity_id(ka), PROTO_IDENTITY_LEN) == 0,
	    "... and its TLS key's identity");
	r = reported(&rs, PROTO_NODE_MET, proto_node_port(b));
	ok(r != NULL && r->named && strcmp(r->name, "node-b") == 0 &&
	    r->has_nfiles && r->nfiles == 0 && r->has_id &&
	    memcmp(r->id, proto_identity_id(kb), PROTO_IDENTITY_LEN) == 0,
	    "the peer it names is asked in turn, and met with its own details");
	r = reported(&rs, PROTO_NODE_HAS, proto_node_port(a));
	ok(r != NULL && r->has == 1, "the one with the file says it has it");
	r = reported(&rs, PROTO_NODE_HAS, proto_node_port(b));
	ok(r != NULL && r->has == 0, "the one without says it has not");
	ok(count_of(&rs, PROTO_NODE_MET, proto_node_port(a)) == 1 &&
	    count_of(&rs, PROTO_NODE_MET, proto_node_port(b)) == 1,
	    "each is asked once");
	is_int((int)rs.of[PROTO_NODE_UNREACHED], 0, "nobody went unanswered");
	ok(proto_node_known(q)->count == 2, "both met are known");
	proto_node_free(q);

	/* A node another source reports is asked too. */
	memset(&rs, 0, sizeof(rs));
	{
		struct reporter rep;
		memset(&rep, 0, sizeof(rep));
		rep.addrs = &b_addr;
		rep.n = 1;
		q = asker(base, cq, NULL, 0);
		proto_node_watch(q, record, &rs);
		proto_node_query_peers(q);
		proto_node_add_source(q, &reporter_ops, &rep);
		run_for(base, &rs.of[PROTO_NODE_MET], 1);
		r = reported(&rs, PROTO_NODE_MET, proto_node_port(b));
		ok(r != NULL && strcmp(r->name, "node-b") == 0,
		    "a node another source reports is asked and met");
		proto_node_free(q);
	}
	proto_node_free(a); /* and mf, its store's */
	proto_node_free(b);
	unlink(path);
	SSL_CTX_free(sa);
	SSL_CTX_free(sb);
	SSL_CTX_free(cq);
	proto_identity_free(ka);
	proto_identity_free(kb);
	proto_identity_free(kq);
}

static void
test_query_unreached(struct event_base *base)
{
	proto_node *closed = node_new(base, NULL, 0), *q;
	proto_addr at = loopback(0), gone;
	struct reports rs;
	const struct report *r;

	memset(&rs, 0, sizeof(rs));
	/* A port that was listened on and is no more. */
	proto_node_listen(closed, &at);
	gone = loopback(proto_node_port(closed));
	proto_node_free(closed);
	q = asker(base, NULL, &gone, 1);
	proto_node_watch(q, record, &rs);
	proto_node_query_peers(q);
	run_for(base, &rs.of[PROTO_NODE_UNREACHED], 1);
	r = reported(&rs, PROTO_NODE_UNREACHED, proto_addr_port(&gone));
	ok(r != NULL && strcmp(r->source, "pex") == 0 && !r->named,
	    "a bootstrap peer that does not answer is reported unreached");
	is_int((int)rs.of[PROTO_NODE_MET], 0, "... and never met");
	ok(proto_node_known(q)->count == 0, "... nor passed on");
	proto_node_free(q);
}

/* A watcher that frees the node at the first handshake. */
static void
free_on_met(const proto_node_seen *seen, void *arg)
{
	proto_node **n = arg;

	if (seen->what == PROTO_NODE_MET && *n != NULL) {
		proto_node_free(*n);
		*n = NULL;
	}
}

static void
test_query_freed_inside(struct event_base *base)
{
	proto_node *a = node_new(base, NULL, 0), *q;
	proto_addr at = loopback(0), a_addr;
	time_t end;

	proto_node_listen(a, &at);
	a_addr = loopback(proto_node_port(a));
	q = asker(base, NULL, &a_addr, 1);
	proto_node_watch(q, free_on_met, &q);
	proto_node_query_peers(q);
	end = time(NULL) + DEADLINE_S;
	while (q != NULL && time(NULL) < end) {
		struct timespec ms = { 0, 1000000 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ms, NULL);
	}
	ok(q == NULL, "a watcher frees the asking node at a handshake's "
	    "report, inside the connection's callback");
	/* The loop runs on: nothing of the freed node may fire. */
	for (int i = 0; i < 50; i++) {
		struct timespec ms = { 0, 1000000 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ms, NULL);
	}
	ok(1, "... and the loop runs on after it");
	proto_node_free(a);
}

int
main(void)
{
	struct event_base *base = event_base_new();
	char dir[] = "/tmp/test_node.XXXXXX";
	char path[64];

	signal(SIGPIPE, SIG_IGN);
	alarm(120);
	if (base == NULL || mkdtemp(dir) == NULL) {
		diag("setup failed");
		return 1;
	}
	test_no_listener(base);
	test_source_malformed_or_self(base);
	test_two_nodes_bootstrap(base);
	test_free_inside_callback(base);
	test_query_lan(base);
	test_query_peers(base, dir);
	test_query_unreached(base);
	test_query_freed_inside(base);
	proto_base_free(base);
	for (const char *k = "abq"; *k; k++) {
		snprintf(path, sizeof(path), "%s/%c.pem", dir, *k);
		unlink(path);
	}
	rmdir(dir);
	return done_testing();
}
