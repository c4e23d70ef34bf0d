/*
 * What a machine running the toolkit is on the network: a node. It owns
 * the store of files it shares, the server that answers for them (its
 * listener), the table of peers it knows and the discovery sources that
 * fill it: the LAN beacon and bootstrap peer exchange, each behind one
 * small interface (proto_node_source_ops), so that another source (a DHT)
 * is added without touching the tools. Everything a source learns of a
 * node comes through proto_node_report (proto_node_found for an address
 * alone), which turns away malformed addresses and the node itself,
 * enters those found or met in the table and offers every report, with
 * its details, to whoever watches (a fetch attached to the node, which
 * takes the address; p2p-discover, which prints it). p2p-serve is a node
 * with files; a p2p-fetch -o is a node that fetches and shares;
 * p2p-discover a node with no listener and the sources that ask
 * (nodequery.h).
 *
 * A node runs on the owner's event_base, which must outlive it. It prints
 * nothing: what it has to say goes to cbs.log, in the words the tools
 * print.
 */
#ifndef PROTO_NODE_H
#define PROTO_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "beacon.h"
#include "peers.h"
#include "server.h"
#include "store.h"

struct event_base;
struct ssl_ctx_st;

typedef struct proto_node proto_node;

#define PROTO_NODE_ADDRS_MAX 32   /* own addresses kept */
#define PROTO_NODE_WATCHERS_MAX 16 /* proto_node_watch and _watch_conns at
                                    * once: a fetch takes one of each, and a
                                    * tree runs several fetches */
#define PROTO_NODE_SOURCES_MAX 8  /* proto_node_add_source */
#define PROTO_NODE_CHECKS_MAX 8   /* connections at once to nodes heard on
                                   * the LAN, to see that they are there */

typedef struct proto_node_config {
	proto_server_config server; /* the server's, copied; server.conn holds
	                         * the node's name, TLS (server side), swarm
	                         * secret and rate-limit group, borrowed for
	                         * the node's life */
	struct ssl_ctx_st *client_tls; /* TLS for the connections the node
	                         * makes (bootstrap, checks); borrowed; NULL:
	                         * none */
	const proto_addr *boot; /* bootstrap peers, nboot of them; copied */
	size_t nboot;
	unsigned boot_interval; /* seconds between bootstrap rounds; 0: 30 */
	int check_heard;        /* nodes heard on the LAN are connected to and,
	                         * when a node answers there, passed on (and
	                         * offered to watchers); 0: only heard */
	const proto_identity *identity; /* the node's key, which signs its
	                         * record; borrowed for the node's life; NULL
	                         * (no TLS): the node has no record */
} proto_node_config;

typedef struct proto_node_cbs {
	/* Optional: one line for the owner's log, at a proto_log_level; text
	 * is valid during the call. The server's lines come here too. */
	void (*log)(int level, const char *text, void *ctx);
	/* Optional: a peer's upload from this node is over (server.h's
	 * on_upload, passed on). */
	void (*on_upload)(const proto_upload *u, void *ctx);
} proto_node_cbs;

/* What a source says of a node it found (proto_node_report). */
enum proto_node_news {
	PROTO_NODE_FOUND = 0,  /* a node to know (proto_node_found): entered
	                        * in the table as heard, passed on once a
	                        * connection shows a node there or with the
	                        * record it signed */
	PROTO_NODE_HEARD,      /* it says it is there (a LAN datagram): name
	                        * and nfiles are its own word, unchecked;
	                        * not passed on */
	PROTO_NODE_MET,        /* a handshake with it passed: name, nfiles
	                        * and identity are its HELLO's and its TLS
	                        * key's; entered in the table */
	PROTO_NODE_HAS,        /* it answered whether it holds the id looked
	                        * up (proto_node_lookup): has */
	PROTO_NODE_UNREACHED,  /* a connection to it failed, or ended before
	                        * it answered */
};

typedef struct proto_node_seen {
	proto_addr addr;        /* numbers only; pinned when the identity
	                         * there must be a given one */
	const char *source;     /* the reporting source's word: "lan",
	                         * "bootstrap", "pex", "inbound" */
	unsigned what;          /* a PROTO_NODE_* of enum proto_node_news */
	const char *name;       /* its node name, as it gave it (filter it
	                         * with proto_msg_printable before showing);
	                         * NULL: not known */
	int has_nfiles;         /* nfiles is known */
	uint64_t nfiles;        /* the files it says it shares */
	const uint8_t *identity; /* PROTO_IDENTITY_LEN bytes: its TLS key's;
	                         * NULL: not known, or no TLS */
	int has;                /* PROTO_NODE_HAS: 1 it holds the id, 0 not */
	const uint8_t *record;  /* the record it signed (record.h), record_len
	                         * bytes: its HELLO's, or the one it was named
	                         * with in a PEERS_REPLY; NULL: none. Checked
	                         * by proto_node_report */
	size_t record_len;
	const char *path;       /* PROTO_NODE_MET by a connection this node
	                         * made: how it reached the node,
	                         * proto_conn_path ("direct", "mapped"),
	                         * static text; NULL: not known */
} proto_node_seen;

/* Called for each report the node takes (a source's, or a node that
 * connected to it): seen and what it points to are valid during the
 * call. The watcher may call proto_node_unwatch and proto_node_free. */
typedef void (*proto_node_watch_fn)(const proto_node_seen *seen, void *ctx);

/* A discovery source. Every function but name and start may be NULL. */
typedef struct proto_node_source_ops {
	const char *name;       /* "lan", "bootstrap": the log's words */
	/* Begins: from now on the source reports through proto_node_found.
	 * 0, or a negative PROTO_ERR_* (PROTO_ERR_SYSTEM with errno set): the
	 * node goes on without it. */
	int (*start)(proto_node *node, void *state);
	/* Looks for the nodes that hold id; results through
	 * proto_node_found. 0, or a negative PROTO_ERR_*. */
	int (*lookup)(void *state, const uint8_t id[PROTO_HASH_LEN]);
	/* Tells the source the node holds id. 0, or a negative PROTO_ERR_*. */
	int (*announce)(void *state, const uint8_t id[PROTO_HASH_LEN]);
	/* Frees state, from proto_node_free; no report after. */
	void (*free)(void *state);
} proto_node_source_ops;

/* A node on base (which must outlive it) with an empty store, not yet
 * listening; the caller frees it with proto_node_free. cfg and cbs are
 * copied (the bootstrap list too; what cfg's fields say is borrowed stays
 * borrowed). NULL when out of memory. */
proto_node *proto_node_new(struct event_base *base,
    const proto_node_config *cfg, const proto_node_cbs *cbs, void *ctx);

/* Stops every source, closes every connection, frees the server, the
 * store and the node. NULL does nothing. Safe inside a callback of the
 * node's (a watcher, the log): the node is then freed once the callback
 * returns. */
void proto_node_free(proto_node *node);

/* The store of files the node shares: the node's, valid until
 * proto_node_free; the owner adds to it. */
proto_store *proto_node_store(proto_node *node);

/* The server answering for the node; the node's, valid until
 * proto_node_free. */
proto_server *proto_node_server(proto_node *node);

/* The peers the node knows and passes on; the node's, valid until
 * proto_node_free. */
proto_peer_table *proto_node_known(proto_node *node);

/* Listens at at (port 0: one the kernel picks) and learns its own
 * addresses: at, or on a wildcard address each interface's
 * (proto_ifaddr_list; for :: both families). 0, or PROTO_ERR_SYSTEM with
 * errno set. */
int proto_node_listen(proto_node *node, const proto_addr *at);

/* The port listened on, or 0 for a node with no listener. */
uint16_t proto_node_port(const proto_node *node);

/* Where the node can be reached, into out (at most max): those other
 * machines can reach first, then loopback, each with the port. The
 * count; 0 before proto_node_listen. */
size_t proto_node_addrs(const proto_node *node, proto_addr *out,
    size_t max);

/*
 * The node's external address: where machines beyond its NAT reach it.
 * PROTO_NODE_EXT_SEEN: NODE_OBSERVED_AGREE (2) peers at distinct hosts
 * said in their HELLO ("seen") that they see the node at one host, not
 * one of this host's; the node's own listen port with it (reachable only
 * through a router that forwards it). PROTO_NODE_EXT_MAPPED: a port
 * mapping the router granted (proto_node_set_mapped), which outranks what
 * peers say. Either comes first in proto_node_addrs, and so in the HELLO's
 * "addrs" and in the node's record, which the DHT and peer exchange pass
 * on.
 */
enum proto_node_ext {
	PROTO_NODE_EXT_NONE = 0,
	PROTO_NODE_EXT_SEEN,
	PROTO_NODE_EXT_MAPPED,
};

/* The node's external address into *out (when not NULL) and how it was
 * learnt: a PROTO_NODE_EXT_*, NONE (out untouched) when not known. */
unsigned proto_node_external(const proto_node *node, proto_addr *out);

/* The peer at by says in its HELLO that it sees this node at seen (both
 * borrowed for the call). Kept for the last NODE_OBSERVED_MAX (16) peer
 * hosts, one word per host; ignored for a node that does not listen, and
 * when seen is loopback, a wildcard or one of this host's addresses (no
 * NAT between). 1 when it changed the external address (logged once at
 * info), else 0. The node's connections call it themselves; exposed for
 * tests and for a source with connections of its own. */
int proto_node_observe(proto_node *node, const proto_addr *seen,
    const proto_addr *by);

/* A port mapping (the router's word) says the node is reachable at ext,
 * or, with NULL, no longer is: the external address is then what peers
 * say again, once they say it. 0, or PROTO_ERR_INVALID for an address
 * without a port. */
int proto_node_set_mapped(proto_node *node, const proto_addr *ext);

/* The caps (PROTO_CAP_*) the node's HELLOs state on the connections it
 * makes: PROTO_CAP_SWARM once it listens (its server answers INTERESTED),
 * else 0. */
uint64_t proto_node_caps(const proto_node *node);

/* 1 when addr is the node itself: its port at a loopback or wildcard
 * address or at one of this host's. Never for a node with no listener. */
int proto_node_is_self(const proto_node *node, const proto_addr *addr);

/* Adds a source (ops borrowed, static in practice; state owned by the
 * node from now on, freed with ops->free even on failure) and starts it.
 * 0, what its start returned (the source is then dropped), or
 * PROTO_ERR_TOO_BIG past PROTO_NODE_SOURCES_MAX. */
int proto_node_add_source(proto_node *node, const proto_node_source_ops *ops,
    void *state);

/* The LAN beacon as a source: answers and announces on the discovery
 * port (cfg copied; its tcp_port is the node's), and hears others'
 * announcements (checked first with check_heard). Listen first. 0, or
 * PROTO_ERR_SYSTEM with errno set (EINVAL: a bad target address). */
int proto_node_start_beacon(proto_node *node, const proto_beacon_config *cfg);

/* Bootstrap peer exchange as a source: every boot_interval, a connection
 * to each bootstrap peer of the config, which is told our port in HELLO
 * and asked for the peers it knows. Nothing to do without bootstrap
 * peers. 0, or PROTO_ERR_NOMEM. */
int proto_node_start_bootstrap(proto_node *node);

/* The node's own record (record.h), signed with cfg.identity, saying
 * where it listens (proto_node_addrs, the first PROTO_RECORD_ADDRS_MAX),
 * that it is reachable, and a seed once it shares a whole file; it
 * expires an hour after it is signed and is signed anew, with a higher
 * seq, when half of that is gone or what it says has changed. Owned by
 * the node and valid until the next call or proto_node_free; *len set.
 * NULL (*len 0) without an identity or a listener. */
const uint8_t *proto_node_record(proto_node *node, size_t *len);

/* Asks every source that can for the nodes holding id / tells them the
 * node holds it. The count of sources asked. */
size_t proto_node_lookup(proto_node *node, const uint8_t id[PROTO_HASH_LEN]);
size_t proto_node_announce(proto_node *node,
    const uint8_t id[PROTO_HASH_LEN]);

/* A source found a node at addr: proto_node_report of a PROTO_NODE_FOUND
 * with nothing known but addr (its pin, if any, kept). addr and source
 * are borrowed for the call. Returns 1 when offered, 0 when ignored. */
int proto_node_found(proto_node *node, const proto_addr *addr,
    const char *source);

/* A source says what seen says of a node. Ignored (with a debug line)
 * when its address is malformed (no port, a wildcard address) or the node
 * itself. Its record, when it verifies and lists the address, pins the
 * address to the record's identity (whoever answers there must be that
 * node) and is kept by the table; otherwise it is dropped. A FOUND is
 * entered in the table of known peers as heard (proto_peers_heard: not
 * passed on until a connection there shows a node, or with its record),
 * a MET as a node there (proto_peers_add, with its identity); the others
 * are not entered. Every report is offered to every watcher, with the
 * address pinned as above (for a MET, as the table has it) and the record
 * only when it verified. seen is borrowed for the call (the table keeps
 * copies). Returns 1 when offered, 0 when ignored. A source calling it
 * from a callback of its own brackets the call as nodequery.c does: a
 * watcher may free the node. */
int proto_node_report(proto_node *node, const proto_node_seen *seen);

/* fn(seen, ctx) for every report from now on, until
 * proto_node_unwatch with the same fn and ctx. 0, or PROTO_ERR_TOO_BIG past
 * PROTO_NODE_WATCHERS_MAX. */
int proto_node_watch(proto_node *node, proto_node_watch_fn fn, void *ctx);
void proto_node_unwatch(proto_node *node, proto_node_watch_fn fn,
    const void *ctx);

/*
 * Requests both ways. A watcher of connections is offered each duplex
 * connection a node makes to this one (PROTOCOL.md section 4), c with the
 * address it listens at (borrowed for the call): it returns 1 when it
 * attached to c (proto_conn_attach, to ask there), which no later watcher
 * is then offered, else 0. c stays the node's. 0, or PROTO_ERR_TOO_BIG
 * past PROTO_NODE_WATCHERS_MAX (shared with proto_node_watch).
 */
typedef int (*proto_node_conn_fn)(proto_conn *c, const proto_addr *addr,
    void *ctx);
int proto_node_watch_conns(proto_node *node, proto_node_conn_fn fn,
    void *ctx);
void proto_node_unwatch_conns(proto_node *node, proto_node_conn_fn fn,
    const void *ctx);

/* The node's server answers the requests on c, a duplex connection the
 * caller made and owns (proto_server_adopt says how long, and what it
 * returns). */
int proto_node_serve(proto_node *node, proto_conn *c);

/* A duplex connection from the node at addr that the server accepted
 * (proto_server_duplex_conn), to attach to instead of connecting; NULL
 * when none. */
proto_conn *proto_node_conn_to(proto_node *node, const proto_addr *addr);

#endif
