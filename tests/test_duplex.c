/*
 * Requests both ways on one connection (connduplex.c, proto_server_adopt,
 * the node's offer of a connection to its fetch): a server answering on a
 * connection it did not accept, a guest asking on one a server accepted,
 * the two sides' rids never clashing, a hand-over, the ends each holder
 * hears of, and a fetch that downloads over a connection the peer made.
 * Everything on 127.0.0.1, one event_base, bounded loop steps.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <openssl/ssl.h>

#include "proto.h"
#include "tap.h"

#define CHUNK 16384
#define FILE_SIZE (5 * CHUNK)

static char dir[] = "/tmp/test_duplex.XXXXXX";
static char path[64];
static uint8_t content[FILE_SIZE];

/* What one holder of a connection saw. */
struct side {
	int ready, closed, handed;
	int err;
	unsigned type;      /* the last message */
	uint32_t rid, code;
	size_t nentries;
	char name[32];      /* of the first LIST_REPLY entry */
	int msgs;
};

static void
side_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	(void)c;
	(void)hello;
	((struct side *)arg)->ready = 1;
}

static void
side_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct side *s = arg;

	(void)c;
	s->msgs++;
	s->type = m->type;
	s->rid = m->rid;
	s->code = m->code;
	if (m->type == PROTO_MSG_LIST_REPLY) {
		s->nentries = m->nentries;
		s->name[0] = '\0';
		if (m->nentries > 0)
			snprintf(s->name, sizeof(s->name), "%.*s",
			    (int)m->entries[0].name_len, m->entries[0].name);
	}
}

static void
side_close(proto_conn *c, int err, void *arg)
{
	struct side *s = arg;

	(void)c;
	s->closed = 1;
	s->err = err;
}

static void
side_handed(proto_conn *c, void *arg)
{
	(void)c;
	((struct side *)arg)->handed = 1;
}

static const proto_conn_cbs side_cbs = { side_ready, side_msg, side_close,
    NULL, NULL, side_handed };

/* The duplex connection a server accepted, as its on_duplex gave it. */
static proto_conn *accepted;

static void
on_duplex(proto_conn *c, void *arg)
{
	(void)arg;
	accepted = c;
}

static void
turn(struct event_base *base, int *until)
{
	for (int i = 0; i < 400 && (until == NULL || !*until); i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (until != NULL && !*until)
			usleep(1000);
	}
}

static proto_store *
store_with_file(const char *name)
{
	proto_store *st = proto_store_new();
	proto_manifest *mf = NULL;
	int fd = open(path, O_RDONLY);

	proto_manifest_build_fd(fd, name, path, CHUNK, &mf);
	close(fd);
	proto_store_add(st, mf);
	return st;
}

static struct ssl_ctx_st *server_tls; /* for server(): NULL, plaintext */

static proto_server *
server(struct event_base *base, proto_store *st, int listen,
    const proto_server_cbs *cbs)
{
	proto_server_config cfg;
	proto_server *srv;
	struct sockaddr_in in;

	memset(&cfg, 0, sizeof(cfg));
	cfg.conn.node_name = "srv";
	cfg.conn.tls = server_tls;
	srv = proto_server_new(base, st, &cfg, cbs, NULL);
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (listen && proto_server_listen(srv, (struct sockaddr *)&in,
	    sizeof(in)) != 0)
		diag("cannot listen on 127.0.0.1");
	return srv;
}

/* A connection to port with caps, its owner s. */
static proto_conn *
dial(struct event_base *base, uint16_t port, uint64_t caps, struct side *s)
{
	proto_conn_config cfg;
	struct sockaddr_in in;

	memset(&cfg, 0, sizeof(cfg));
	cfg.node_name = "dialler";
	cfg.listen_port = 1;
	cfg.caps = caps;
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	in.sin_port = htons(port);
	return proto_conn_connect(base, (struct sockaddr *)&in, sizeof(in),
	    &cfg, &side_cbs, s);
}

static void
ask(proto_conn *c, unsigned type, uint32_t rid)
{
	proto_msg m;

	proto_msg_init(&m, type);
	m.rid = rid;
	if (proto_conn_send(c, &m) != 0)
		diag("cannot send");
}

/*
 * A (a server with file "a", not listening) answers on the connection the
 * test made to B (a server with file "b"); a guest asks on the connection
 * B accepted. Both use rid 1: each is answered by the other side.
 */
static void
test_both_ways(void)
{
	struct event_base *base = event_base_new();
	proto_server_cbs cbs = { .on_duplex = on_duplex };
	proto_store *sa = store_with_file("a"), *sb = store_with_file("b");
	proto_server *a = server(base, sa, 0, NULL);
	proto_server *b = server(base, sb, 1, &cbs);
	struct side owner = { 0 }, guest = { 0 };
	proto_conn *c;
	int got;

	accepted = NULL;
	c = dial(base, proto_server_port(b), PROTO_CAP_SWARM |
	    PROTO_CAP_DUPLEX, &owner);
	turn(base, &owner.ready);
	ok(owner.ready && accepted != NULL, "connected; the server offered the "
	    "connection it accepted");
	if (!owner.ready || accepted == NULL)
		goto out;
	ok(proto_conn_duplex(c) && proto_conn_duplex(accepted), "duplex on "
	    "both sides");
	ok(!proto_conn_answers(c) && proto_conn_answers(accepted), "the "
	    "dialler's owner asks, the accepter's answers");
	is_int(proto_conn_kept(c), proto_conn_kept(accepted), "both sides "
	    "agree whether this connection is the one kept");
	is_int(proto_server_adopt(a, c), 0, "A answers on the connection the "
	    "test made");
	is_int(proto_server_adopt(a, c), PROTO_ERR_INVALID, "... once");
	is_int(proto_conn_attach(accepted, &side_cbs, &guest), 0, "a guest "
	    "asks on the connection B accepted");
	is_int(proto_server_clients(a), 1, "A counts the guest client");

	ask(c, PROTO_MSG_LIST, 1);
	ask(accepted, PROTO_MSG_LIST, 1);
	got = 0;
	for (int i = 0; i < 400 && !(owner.msgs && guest.msgs); i++)
		turn(base, &got);
	is_int(owner.type, PROTO_MSG_LIST_REPLY, "the dialler's LIST rid 1: "
	    "answered");
	is_str(owner.name, "b", "... by B, which accepted");
	is_int(guest.type, PROTO_MSG_LIST_REPLY, "the guest's LIST rid 1: "
	    "answered");
	is_str(guest.name, "a", "... by A, on the connection it did not "
	    "accept");

	/* The dialler lets go: A, its guest, owns it now and still answers. */
	proto_conn_release(c);
	guest.msgs = 0;
	ask(accepted, PROTO_MSG_LIST, 2);
	for (int i = 0; i < 400 && !guest.msgs; i++)
		turn(base, &got);
	ok(guest.msgs == 1 && guest.rid == 2 && guest.type ==
	    PROTO_MSG_LIST_REPLY, "handed over: A still answers (rid 2)");

	/* A goes: it frees the connection it now owns; the guest on the
	 * other end hears of it, from the loop. */
	proto_server_free(a);
	a = NULL;
	turn(base, &guest.closed);
	ok(guest.closed, "A gone: the guest on the far end is told");
	/* B goes: the guest's connection is closed already, freed with B. */
out:
	proto_server_free(a);
	proto_server_free(b);
	proto_store_free(sa);
	proto_store_free(sb);
	proto_base_free(base);
}

/* A request no one takes on a duplex connection is answered BUSY; the
 * owner's end reaches a guest from the loop, never within the call. */
static void
test_no_taker_and_ends(void)
{
	struct event_base *base = event_base_new();
	proto_server_cbs cbs = { .on_duplex = on_duplex };
	proto_store *sb = store_with_file("b");
	proto_server *b = server(base, sb, 1, &cbs);
	struct side owner = { 0 }, guest = { 0 };
	proto_conn *c;
	int got = 0;

	accepted = NULL;
	c = dial(base, proto_server_port(b), PROTO_CAP_DUPLEX, &owner);
	turn(base, &owner.ready);
	if (!owner.ready || accepted == NULL) {
		ok(0, "connected");
		goto out;
	}
	is_int(proto_conn_attach(accepted, &side_cbs, &guest), 0, "a guest "
	    "asks on the accepted connection");
	ask(accepted, PROTO_MSG_PEERS, 9);
	for (int i = 0; i < 400 && !guest.msgs; i++)
		turn(base, &got);
	ok(guest.type == PROTO_MSG_ERROR && guest.rid == 9 &&
	    guest.code == PROTO_CODE_BUSY, "no one answers on the dialler's "
	    "side: ERROR BUSY, rid 9");
	is_int(owner.msgs, 0, "... and the dialler's owner saw no request");

	/* The guest ends it: the owner hears on_close from the loop. */
	proto_conn_detach(accepted, 1);
	turn(base, &owner.closed);
	ok(owner.closed, "a guest that ends the connection: the dialler "
	    "closes");
	proto_conn_free(c);
	c = NULL;
out:
	proto_conn_free(c);
	proto_server_free(b);
	proto_store_free(sb);
	proto_base_free(base);
}

/* A guest that lets go with answers still due: they never reach the
 * guest after it, whose rids start afresh. */
static void
test_answers_owed_away(void)
{
	struct event_base *base = event_base_new();
	proto_server_cbs cbs = { .on_duplex = on_duplex };
	proto_store *sa = store_with_file("a"), *sb = store_with_file("b");
	proto_server *a = server(base, sa, 0, NULL);
	proto_server *b = server(base, sb, 1, &cbs);
	struct side owner = { 0 }, first = { 0 }, second = { 0 };
	proto_conn *c;
	int got = 0;

	accepted = NULL;
	c = dial(base, proto_server_port(b), PROTO_CAP_DUPLEX, &owner);
	turn(base, &owner.ready);
	if (!owner.ready || accepted == NULL || proto_server_adopt(a, c) != 0) {
		ok(0, "connected, A answering on the dialler's side");
		goto out;
	}
	is_int(proto_conn_attach(accepted, &side_cbs, &first), 0, "owed "
	    "away: a first guest asks twice (rids 7, 8) ...");
	ask(accepted, PROTO_MSG_LIST, 7);
	ask(accepted, PROTO_MSG_LIST, 8);
	proto_conn_owed_away(accepted, 2);
	proto_conn_detach(accepted, 0);
	is_int(proto_conn_attach(accepted, &side_cbs, &second), 0, "... and "
	    "lets go before the answers; a second guest asks (rid 1)");
	ask(accepted, PROTO_MSG_LIST, 1);
	for (int i = 0; i < 400 && !second.msgs; i++)
		turn(base, &got);
	turn(base, NULL);
	ok(second.msgs == 1 && second.rid == 1 && second.type ==
	    PROTO_MSG_LIST_REPLY, "owed away: the second guest gets its own "
	    "answer alone (rid 1), never the first one's");
	is_int(first.msgs, 0, "owed away: nor does the first, gone");
	proto_conn_detach(accepted, 0);
out:
	proto_conn_free(c);
	proto_server_free(a);
	proto_server_free(b);
	proto_store_free(sa);
	proto_store_free(sb);
	proto_base_free(base);
}

/* Without the cap on one side, nothing changes: no guest, no adoption,
 * and a request the accepter sends reaches the dialler's owner as
 * before. */
static void
test_not_duplex(void)
{
	struct event_base *base = event_base_new();
	proto_server_cbs cbs = { .on_duplex = on_duplex };
	proto_store *sa = store_with_file("a"), *sb = store_with_file("b");
	proto_server *a = server(base, sa, 0, NULL);
	proto_server *b = server(base, sb, 1, &cbs);
	struct side owner = { 0 }, guest = { 0 };
	proto_conn *c;

	accepted = NULL;
	c = dial(base, proto_server_port(b), PROTO_CAP_SWARM, &owner);
	turn(base, &owner.ready);
	ok(owner.ready && !proto_conn_duplex(c), "a dialler without the cap: "
	    "not duplex");
	ok(accepted == NULL, "... not offered by the server");
	is_int(proto_server_adopt(a, c), PROTO_ERR_INVALID, "... not adopted");
	is_int(proto_conn_attach(c, &side_cbs, &guest), PROTO_ERR_INVALID,
	    "... no guest");
	proto_conn_free(c);
	proto_server_free(a);
	proto_server_free(b);
	proto_store_free(sa);
	proto_store_free(sb);
	proto_base_free(base);
}

/* A fetch whose node a seed connects to (as a p2p-fetch -o does) fetches
 * over that connection: no connection of its own. */
static int fetched_done;
static uint8_t fetched[FILE_SIZE];

static int
f_manifest(proto_manifest *mf, void *arg)
{
	(void)mf;
	(void)arg;
	return 0;
}

static void
f_chunk(uint64_t index, const uint8_t *data, size_t len, void *arg)
{
	(void)arg;
	if (index * CHUNK + len <= sizeof(fetched))
		memcpy(fetched + index * CHUNK, data, len);
}

static void
f_complete(void *arg)
{
	(void)arg;
	fetched_done = 1;
}

static void
f_end(int code, void *arg)
{
	(void)arg;
	diag("the fetch ended: %d", code);
	fetched_done = -1;
}

static void
test_fetch_over_accepted(void)
{
	struct event_base *base = event_base_new();
	proto_store *ss = store_with_file("s");
	proto_server *seed = server(base, ss, 0, NULL);
	proto_node_config ncfg;
	proto_node_cbs ncbs = { NULL };
	proto_node *node;
	proto_fetch_config fcfg;
	proto_fetch_cbs fcbs = { NULL, f_manifest, f_chunk, f_complete, NULL,
	    f_end, NULL, NULL };
	proto_fetch *fx;
	proto_fetch_stats st;
	proto_addr at;
	struct side owner = { 0 };
	proto_conn *c;

	memset(&ncfg, 0, sizeof(ncfg));
	ncfg.server.conn.node_name = "fetcher";
	/* As the tools: small frames from the peers that connect, whose
	 * requests are small; the answers it asks for there are not. */
	ncfg.server.conn.max_frame = 16384;
	node = proto_node_new(base, &ncfg, &ncbs, NULL);
	{
		struct sockaddr_in in;
		memset(&in, 0, sizeof(in));
		in.sin_family = AF_INET;
		in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		proto_addr_from_sockaddr(&at, (struct sockaddr *)&in,
		    sizeof(in));
	}
	if (node == NULL || proto_node_listen(node, &at) != 0) {
		ok(0, "a node listening");
		goto out;
	}
	memset(&fcfg, 0, sizeof(fcfg));
	fcfg.id = proto_store_get(ss, 0)->id;
	fcfg.node = node;
	fcfg.timeout = 10;
	fx = proto_fetch_new(base, &fcfg, &fcbs, NULL);
	fetched_done = 0;
	/* The seed connects to the node, and answers on its connection. */
	c = dial(base, proto_node_port(node), PROTO_CAP_SWARM |
	    PROTO_CAP_DUPLEX, &owner);
	turn(base, &owner.ready);
	is_int(owner.ready ? proto_server_adopt(seed, c) : -1, 0, "the seed "
	    "connected to the node and answers there");
	for (int i = 0; i < 20 && !fetched_done; i++)
		turn(base, &fetched_done);
	is_int(fetched_done, 1, "the fetch completed");
	is_mem(fetched, content, sizeof(content), "... with the seed's bytes");
	proto_fetch_stats_get(fx, &st);
	is_int((long long)st.connects, 0, "... without connecting anywhere");
	proto_fetch_free(fx);
	/* The node's server owns the connection again; freeing the node
	 * closes it, and the seed, its guest, hears of it. */
	proto_node_free(node);
	node = NULL;
	turn(base, &owner.closed);
	ok(owner.closed, "the node gone: the seed's connection ends");
	proto_conn_free(c);
out:
	proto_node_free(node);
	proto_server_free(seed);
	proto_store_free(ss);
	proto_base_free(base);
}

/* Two sharing fetchers that connect to each other at once, each also
 * fetching from a seed: one of their two connections is dropped by both,
 * and both complete. */
struct pair_side {
	proto_node *node;
	proto_fetch *fx;
	int done;
	int both_ways;      /* it said it dropped its own connection */
};

static int
p_manifest(proto_manifest *mf, void *arg)
{
	(void)mf;
	(void)arg;
	return 0;
}

static void
p_chunk(uint64_t index, const uint8_t *data, size_t len, void *arg)
{
	(void)arg;
	if (index * CHUNK + len > sizeof(content) ||
	    memcmp(content + index * CHUNK, data, len) != 0)
		diag("chunk %llu differs", (unsigned long long)index);
}

static void
p_complete(void *arg)
{
	((struct pair_side *)arg)->done = 1;
}

static void
p_end(int code, void *arg)
{
	(void)code;
	((struct pair_side *)arg)->done = -1;
}

static void
p_log(int level, const char *text, void *arg)
{
	(void)level;
	if (strstr(text, "connected both ways") != NULL)
		((struct pair_side *)arg)->both_ways++;
}

static proto_addr
loopback(uint16_t port)
{
	struct sockaddr_in in;
	proto_addr a;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	in.sin_port = htons(port);
	proto_addr_from_sockaddr(&a, (struct sockaddr *)&in, sizeof(in));
	return a;
}

/* tls: both nodes under TLS with one key (two nodes of one user on one
 * host): the addresses rank them. */
static void
test_both_dial(int tls)
{
	struct event_base *base = event_base_new();
	proto_store *ss = store_with_file("s");
	proto_server *seed;
	proto_fetch_cbs fcbs = { p_log, p_manifest, p_chunk, p_complete, NULL,
	    p_end, NULL, NULL };
	struct pair_side side[2];
	proto_addr any = loopback(0), seed_at;
	proto_identity *id = NULL;
	struct ssl_ctx_st *stls = NULL, *ctls = NULL;
	char key[80];

	if (tls) {
		snprintf(key, sizeof(key), "%s/key", dir);
		if (proto_identity_load(key, 1, &id) != 0 ||
		    (stls = proto_tls_ctx_new(id, 1)) == NULL ||
		    (ctls = proto_tls_ctx_new(id, 0)) == NULL)
			diag("no TLS");
	}
	server_tls = stls;
	seed = server(base, ss, 1, NULL);
	server_tls = NULL;
	seed_at = loopback(proto_server_port(seed));
	memset(side, 0, sizeof(side));
	for (int i = 0; i < 2; i++) {
		proto_node_config ncfg;
		proto_node_cbs ncbs = { NULL };
		proto_fetch_config fcfg;

		memset(&ncfg, 0, sizeof(ncfg));
		ncfg.server.conn.node_name = i ? "b" : "a";
		ncfg.server.conn.max_frame = 16384;
		ncfg.server.conn.tls = stls;
		ncfg.client_tls = ctls;
		side[i].node = proto_node_new(base, &ncfg, &ncbs, NULL);
		proto_node_listen(side[i].node, &any);
		memset(&fcfg, 0, sizeof(fcfg));
		fcfg.id = proto_store_get(ss, 0)->id;
		fcfg.node = side[i].node;
		fcfg.conn.listen_port = proto_node_port(side[i].node);
		fcfg.conn.tls = ctls;
		fcfg.timeout = 10;
		side[i].fx = proto_fetch_new(base, &fcfg, &fcbs, &side[i]);
	}
	/* Each connects to the other before either connection is up. */
	for (int i = 0; i < 2; i++) {
		proto_addr other = loopback(proto_node_port(side[!i].node));
		proto_fetch_add_peer(side[i].fx, &other);
		proto_fetch_add_peer(side[i].fx, &seed_at);
	}
	for (int i = 0; i < 40 && !(side[0].done && side[1].done); i++) {
		turn(base, NULL);
		usleep(10000);
	}
	ok(side[0].done == 1 && side[1].done == 1, "%s: both fetchers "
	    "complete", tls ? "TLS, one key" : "plaintext");
	is_int(side[0].both_ways + side[1].both_ways, 1, "one of the two "
	    "connections between them dropped, by the node that made it");
	/* Left: each node answers the seed (on the connection its fetch
	 * made) and the other fetcher, on the one connection kept. */
	turn(base, NULL);
	is_int(proto_server_clients(proto_node_server(side[0].node)), 2,
	    "a's server: the seed's connection and one with b");
	is_int(proto_server_clients(proto_node_server(side[1].node)), 2,
	    "b's server: the seed's connection and one with a");
	for (int i = 0; i < 2; i++) {
		proto_fetch_free(side[i].fx);
		proto_node_free(side[i].node);
	}
	proto_server_free(seed);
	proto_store_free(ss);
	proto_base_free(base);
	if (ctls != NULL)
		SSL_CTX_free(ctls);
	if (stls != NULL)
		SSL_CTX_free(stls);
	proto_identity_free(id);
	if (tls)
		unlink(key);
}

/*
 * Whether the peer chokes us is the connection's: a fetch that takes
 * over a connection on which the server said UNCHOKE to the one before
 * is unchoked, and hears no second UNCHOKE. And a connection someone
 * asks on already takes no second asker.
 */
static void
test_choke_state_and_attachable(void)
{
	struct event_base *base = event_base_new();
	proto_server_cbs cbs = { .on_duplex = on_duplex };
	proto_store *sb = store_with_file("b");
	proto_server *b = server(base, sb, 1, &cbs);
	struct side owner = { 0 }, guest = { 0 };
	proto_conn *c;
	proto_msg m;

	accepted = NULL;
	c = dial(base, proto_server_port(b), PROTO_CAP_SWARM |
	    PROTO_CAP_DUPLEX | PROTO_CAP_CHOKE, &owner);
	turn(base, &owner.ready);
	if (!owner.ready || accepted == NULL) {
		ok(0, "connected with the choke cap");
		goto out;
	}
	is_int(proto_conn_peer_chokes(c), 1, "the server chokes a new peer");
	proto_msg_init(&m, PROTO_MSG_INTERESTED);
	m.rid = 1;
	m.id = proto_store_get(sb, 0)->id;
	if (proto_conn_send(c, &m) != 0)
		diag("cannot send");
	for (int i = 0; i < 20 && proto_conn_peer_chokes(c); i++)
		turn(base, NULL);
	is_int(proto_conn_peer_chokes(c), 0, "INTERESTED: UNCHOKE, kept by "
	    "the connection for whoever asks on it next");

	ok(proto_conn_attachable(accepted), "no guest yet: one may ask");
	is_int(proto_conn_attach(accepted, &side_cbs, &guest), 0, "a guest "
	    "asks");
	ok(!proto_conn_attachable(accepted), "... and no second one may");
	proto_conn_detach(accepted, 0);
	ok(proto_conn_attachable(accepted), "the guest gone: one may again");
	proto_conn_free(c);
out:
	proto_server_free(b);
	proto_store_free(sb);
	proto_base_free(base);
}

/* The connection the node was offered, seen before the fetch takes it. */
static proto_conn *offered;

static int
watch_offered(proto_conn *c, const proto_addr *addr, void *arg)
{
	(void)addr;
	(void)arg;
	offered = c;
	return 0;
}

/* Turns base until proto_fetch_peer_holds(fx, c, index) is 1, 4 s at
 * most; what it says last. */
static int
await_holds(struct event_base *base, proto_fetch *fx, proto_conn *c,
    uint64_t index)
{
	int holds = 0;

	for (int i = 0; i < 10 && !holds; i++) {
		for (int k = 0; k < 400 && !holds; k++) {
			event_base_loop(base, EVLOOP_NONBLOCK);
			holds = proto_fetch_peer_holds(fx, c, index);
			if (!holds)
				usleep(1000);
		}
	}
	return holds;
}

/*
 * proto_fetch_peer_holds: what a peer told the fetch it holds, on the
 * connection the fetch asks it on: its HAVE_MAP, then its HAVEs; 0 for a
 * connection no peer of the fetch is on.
 */
static void
test_peer_holds(void)
{
	struct event_base *base = event_base_new();
	proto_store *ss = proto_store_new();
	proto_manifest *mf = NULL;
	proto_have have;
	proto_server *seed;
	proto_node_config ncfg;
	proto_node_cbs ncbs = { NULL };
	proto_node *node;
	proto_fetch_config fcfg;
	proto_fetch_cbs fcbs = { NULL, f_manifest, f_chunk, f_complete, NULL,
	    f_end, NULL, NULL };
	proto_fetch *fx = NULL;
	proto_addr at;
	struct sockaddr_in in;
	struct side owner = { 0 };
	proto_conn *c = NULL;
	int fd = open(path, O_RDONLY);

	/* A seed that holds chunks 0 and 1 of the 5. */
	if (fd < 0 || proto_manifest_build_fd(fd, "p", path, CHUNK, &mf) != 0 ||
	    proto_have_init(&have, mf->nchunks) != 0 ||
	    proto_have_set(&have, 0) != 1 || proto_have_set(&have, 1) != 1 ||
	    proto_store_add_partial(ss, mf, fd, &have) != 0) {
		ok(0, "peer_holds: a partial seed");
		exit(2);
	}
	seed = server(base, ss, 0, NULL);
	memset(&ncfg, 0, sizeof(ncfg));
	ncfg.server.conn.node_name = "fetcher";
	ncfg.server.conn.max_frame = 16384;
	node = proto_node_new(base, &ncfg, &ncbs, NULL);
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	proto_addr_from_sockaddr(&at, (struct sockaddr *)&in, sizeof(in));
	if (node == NULL || proto_node_listen(node, &at) != 0) {
		ok(0, "peer_holds: a node listening");
		goto out;
	}
	offered = NULL;
	proto_node_watch_conns(node, watch_offered, NULL);
	memset(&fcfg, 0, sizeof(fcfg));
	fcfg.id = mf->id;
	fcfg.node = node;
	fcfg.timeout = 10;
	fx = proto_fetch_new(base, &fcfg, &fcbs, NULL);
	fetched_done = 0;
	c = dial(base, proto_node_port(node), PROTO_CAP_SWARM |
	    PROTO_CAP_DUPLEX, &owner);
	turn(base, &owner.ready);
	is_int(owner.ready ? proto_server_adopt(seed, c) : -1, 0,
	    "peer_holds: a partial seed connected to the node answers there");
	turn(base, NULL);
	ok(offered != NULL, "peer_holds: the node was offered the connection");
	if (offered == NULL)
		goto out;
	ok(await_holds(base, fx, offered, 1),
	    "peer_holds: 1 for a chunk the peer's HAVE_MAP names");
	is_int(proto_fetch_peer_holds(fx, c, 0), 0,
	    "peer_holds: 0 for a connection no peer of the fetch is on");
	is_int(proto_fetch_peer_holds(fx, offered, 0), 1,
	    "peer_holds: ... for each of them");
	is_int(proto_fetch_peer_holds(fx, offered, 3), 0,
	    "peer_holds: 0 for a chunk it did not name");
	proto_have_set(&have, 3);
	proto_server_have(seed, mf->id, 3);
	ok(await_holds(base, fx, offered, 3),
	    "peer_holds: 1 once the peer sent HAVE for it");
	is_int(proto_fetch_peer_holds(fx, offered, 4), 0,
	    "peer_holds: ... still 0 for one it never named");
out:
	proto_fetch_free(fx);
	proto_node_free(node);
	if (c != NULL) {
		turn(base, &owner.closed);
		proto_conn_free(c);
	}
	proto_server_free(seed);
	proto_store_free(ss);
	proto_have_free(&have);
	proto_manifest_free(mf);
	close(fd);
	proto_base_free(base);
}

int
main(void)
{
	int fd;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/f", dir);
	for (size_t i = 0; i < sizeof(content); i++)
		content[i] = (uint8_t)(i * 13 + 5);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, content, sizeof(content)) !=
	    (ssize_t)sizeof(content))
		return 1;
	close(fd);
	test_both_ways();
	test_no_taker_and_ends();
	test_answers_owed_away();
	test_not_duplex();
	test_choke_state_and_attachable();
	test_fetch_over_accepted();
	test_both_dial(0);
	test_both_dial(1);
	test_peer_holds();
	unlink(path);
	rmdir(dir);
	return done_testing();
}
