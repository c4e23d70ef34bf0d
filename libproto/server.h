/*
 * The serving side of a node: a listener, and for each peer that connects
 * the answers to its requests (LIST, GET_MANIFEST, GET_CHUNK, PEERS, HAS,
 * INTERESTED, GET_HASHES) from a store, in the order asked. Chunk answers
 * are queued a little at a time, so a CANCEL can still catch a request not
 * yet answered and a peer that reads slowly holds a bounded amount. p2p-serve is one of
 * these; p2p-fetch runs one beside its downloads, over a store that holds
 * the file it is fetching.
 */
#ifndef PROTO_SERVER_H
#define PROTO_SERVER_H

#include <stdint.h>
#include <sys/socket.h>

#include "beacon.h"
#include "conn.h"
#include "log.h"
#include "peers.h"
#include "store.h"

struct event_base;

typedef struct proto_server proto_server;
struct proto_upload;

typedef struct proto_server_config {
	proto_conn_config conn; /* for every connection; listen_port is set
	                         * by proto_server_listen, max_requests is
	                         * the server's queue (64) unless set, addrs
	                         * are copied (proto_server_set_addrs), ext
	                         * is borrowed for the server's life */
	unsigned max_peers;     /* connections at once; 0 means 50 */
	unsigned max_handshakes; /* of those, still in their handshake (TLS,
	                          * HELLO, the swarm's proof): past it, or
	                          * with every slot taken, a newcomer displaces
	                          * the oldest of them; 0 (or more than
	                          * max_peers) means max_peers */
	unsigned max_host_handshakes; /* handshakes from one address at once
	                          * once half of max_handshakes are under
	                          * way or every slot is taken (below that
	                          * its newcomers are let in, displacing
	                          * nobody); past it its newcomers wait,
	                          * unread, for their turn (at most max_peers
	                          * of them from all addresses, each at most
	                          * the handshake timeout), then are refused;
	                          * 0 means 8 */
	unsigned inline_chunks; /* the most hashes a MANIFEST carries inline
	                         * to a peer with PROTO_CAP_HASHES; past it,
	                         * the root in their place, and the peer asks
	                         * for them (GET_HASHES). 0 means
	                         * PROTO_SERVER_INLINE_CHUNKS; at most
	                         * PROTO_INLINE_MAX */
} proto_server_config;

/* The manifest of a file of at most this many chunks (512 KiB of hashes,
 * every file up to 64 GiB chunked automatically) goes whole; a larger one
 * as its root, to peers that can ask for the rest. */
#define PROTO_SERVER_INLINE_CHUNKS 16384u

typedef struct proto_server_cbs {
	/* Optional: what happened, for the owner's log. */
	void (*log)(int level, const char *text, void *ctx);
	/* Optional: a node that listens at a connected (its handshake is
	 * over); a is pinned to the identity of its record, when it sent a
	 * good one, and valid during the call. */
	void (*on_peer)(const proto_addr *a, void *ctx);
	/* Optional: a node announced itself at a and is not yet checked
	 * (proto_peers_heard). It is passed on once the owner connects
	 * there, and the handshake succeeds, and enters it with
	 * proto_peers_add; without this callback it never is. a is valid
	 * during the call. */
	void (*on_heard)(const proto_addr *a, void *ctx);
	/* Optional: a node connected on a duplex connection (both HELLOs
	 * carry PROTO_CAP_DUPLEX), c, which the server owns: the owner may
	 * ask there too (proto_conn_attach) rather than connect again.
	 * Called before on_peer for it. */
	void (*on_duplex)(proto_conn *c, void *ctx);
	/* Optional: the owner's signed record (record.h), sent in the HELLO
	 * of each connection accepted; *len set, NULL for none. Valid until
	 * the next call. */
	const uint8_t *(*record)(size_t *len, void *ctx);
	/* Optional: a peer got chunks of a file from us, and that upload is
	 * over: its connection ended (or it went on to more files than the
	 * server keeps count of for one peer, PROTO_SERVER_UPLOADS_MAX, and
	 * this is the one it asked of longest ago). Once per peer and file
	 * (and chunk size); never while the server is being freed. u and all
	 * it points to are valid during the call. */
	void (*on_upload)(const struct proto_upload *u, void *ctx);
} proto_server_cbs;

#define PROTO_SERVER_UPLOADS_MAX 4

/* One upload, as on_upload tells it. */
typedef struct proto_upload {
	const char *peer;       /* "HOST:PORT" of its connection */
	const char *peer_name;  /* the name of its HELLO ("" for none) */
	const uint8_t *peer_id; /* its identity (32 bytes), NULL without TLS */
	const uint8_t *id;      /* the file's content id (PROTO_HASH_LEN) */
	const char *name;       /* the file's name, as served */
	uint64_t size;          /* the file's size */
	uint64_t bytes;         /* chunk bytes sent it */
	uint64_t chunks;        /* chunks sent it, a chunk sent twice twice */
	uint64_t distinct;      /* of them, different chunks */
	uint64_t nchunks;       /* chunks of the file, at the size asked */
	int complete;           /* distinct == nchunks: it got the whole
	                         * file from us */
	int ended;              /* told as its connection ended (0: to
	                         * make room, the connection still up) */
} proto_upload;

typedef struct proto_server_stats {
	uint64_t bytes_in, bytes_out, chunks_out, manifests_out, peers,
	    cancelled, datagrams_bad;
	uint64_t hashes_out;    /* HASHES answers sent */
} proto_server_stats;

/* A server answering from store, which stays the caller's and, like base,
 * must outlive it; the caller frees it with proto_server_free. cfg and cbs
 * are copied; node_name is borrowed. NULL when out of memory. */
proto_server *proto_server_new(struct event_base *base, proto_store *store,
    const proto_server_config *cfg, const proto_server_cbs *cbs, void *ctx);

/* Closes every connection and frees the server. NULL does nothing. */
void proto_server_free(proto_server *srv);

/* Listens on sa (port 0: one the kernel picks). 0, or PROTO_ERR_SYSTEM with
 * errno set. */
int proto_server_listen(proto_server *srv, const struct sockaddr *sa,
    socklen_t salen);

/* The port listened on, or 0. */
uint16_t proto_server_port(const proto_server *srv);

/* Where this node can be reached, said in the HELLO of every connection
 * accepted from now on ("addrs"): the first PROTO_HELLO_ADDRS_MAX of the
 * n in addrs, copied. */
void proto_server_set_addrs(proto_server *srv, const proto_addr *addrs,
    size_t n);

/* The address a port mapping forwards to this node, said in the HELLO of
 * every connection accepted from now on ("mapped"); copied; NULL: none. */
void proto_server_set_mapped(proto_server *srv, const proto_addr *mapped);

/* Answers and announces on the discovery port, for the store's files;
 * cfg is copied (as proto_beacon_new), the beacon is the server's and goes
 * with it. A cfg->family of 0 becomes the listener's (proto_server_listen
 * first): an IPv4 address, IPv4 only; one IPv6 address (or :: with
 * IPV6_V6ONLY), IPv6 only; ::, both. 0, or PROTO_ERR_SYSTEM with errno set (EINVAL: a bad target
 * address). */
int proto_server_start_beacon(proto_server *srv,
    const proto_beacon_config *cfg);

/* The node now holds chunk index (in its manifest's chunk size) of id:
 * peers interested in id are told with a HAVE. A peer with more than the
 * connection's out_limit of output waiting (one that does not read) is
 * dropped instead. */
void proto_server_have(proto_server *srv, const uint8_t id[PROTO_HASH_LEN],
    uint64_t index);

/* As proto_server_have, but holds (c, index, ctx) says what becomes of
 * the HAVE to the peer on c: PROTO_HAVE_SKIP, none, for a peer that holds
 * that chunk already (a fetch knows what the peers it asks hold:
 * proto_fetch_peer_holds; in a swarm most HAVEs told peers of chunks they
 * had); PROTO_HAVE_NOW, sent at once (a seed, which watches what its
 * fetchers get to choose what to show them); PROTO_HAVE_SEND, as
 * proto_server_have does: held a moment (proto_conn_send_lazy) for a peer
 * we choke, else sent at once. holds may be NULL. */
/* What proto_server_have_unless held back goes to each client now (the
 * node is about to go: a seed watching it counts its last HAVEs). */
void proto_server_flush_news(proto_server *srv);

#define PROTO_HAVE_SEND 0
#define PROTO_HAVE_SKIP 1
#define PROTO_HAVE_NOW 2
void proto_server_have_unless(proto_server *srv,
    const uint8_t id[PROTO_HASH_LEN], uint64_t index,
    int (*holds)(const proto_conn *c, uint64_t index, void *ctx),
    void *ctx);

/* The peers this node knows, to pass on: filled from HELLOs (with the
 * records they carry), announcements (heard only, until checked:
 * on_heard) and by the owner; and what its clients ask for, as content
 * ids they hold. Owned by srv and valid until it is freed; the owner may
 * add to it. Never NULL. */
proto_peer_table *proto_server_known(proto_server *srv);

/*
 * Answers the requests of the peer on c, a duplex connection someone else
 * made (a fetch), as on those the server accepted (HAVE pushes too), as
 * c's guest (proto_conn_attach): until c ends, or the server goes (it then
 * detaches), or drops the peer for what it did (c then ends). When the
 * owner lets go of c (proto_conn_release), c is the server's. 0,
 * PROTO_ERR_TOO_BIG with max_peers connections already, PROTO_ERR_NOMEM,
 * or PROTO_ERR_INVALID (c not ready, not duplex, or with a guest).
 */
int proto_server_adopt(proto_server *srv, proto_conn *c);

/* Takes in the circuit its relay (at *relay) announced with token (16
 * bytes, copied; PROTOCOL.md section 13): connects to the relay, which
 * joins it to the fetcher, and answers it as a connection it accepted.
 * 0, or PROTO_ERR_TOO_BIG when the server has no room for it, or
 * PROTO_ERR_LIMITED (not taken) while 4 relayed circuits are still in
 * their handshake: a relay's INCOMINGs cannot crowd out direct peers. */
int proto_server_accept_relayed(proto_server *srv, const proto_addr *relay,
    const uint8_t *token);

/* Takes fd (owned by the server from now, closed on refusal), a TCP
 * connection punched to the fetcher at *from at its relay's word
 * (PROTOCOL.md section 13, "Hole punching"), as one it accepted: the node
 * the TLS server, answering. 0, or PROTO_ERR_TOO_BIG with no room. */
int proto_server_accept_punched(proto_server *srv, int fd,
    const proto_addr *from);

/* A duplex connection the server accepted from the node at a (its
 * identity when a is pinned, else the address and the port it listens
 * on) that no one asks on yet (proto_conn_attachable); NULL when none.
 * Owned by the server: valid until the callback in which
 * it was got returns. */
proto_conn *proto_server_duplex_conn(const proto_server *srv,
    const proto_addr *a);

/* 1 when a node listening on host:port is connected to us now. */
int proto_server_connected_from(const proto_server *srv, const char *host,
    uint16_t port);

/* Connections now, and the totals so far (closed connections included),
 * copied into *st, the caller's. */
unsigned proto_server_clients(const proto_server *srv);
void proto_server_stats_get(const proto_server *srv, proto_server_stats *st);

#endif
