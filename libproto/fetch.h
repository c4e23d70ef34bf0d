/*
 * Fetching one file by content id from many peers at once: the machinery
 * behind p2p-fetch. Peers are asked for the manifest until one sends one
 * that hashes to the id, which is adopted; a peer that comes after is asked
 * only what it holds (INTERESTED, or HAS), never for the manifest again. A
 * manifest of a large file may come without its chunk layer, with the
 * tree's root in its place: the hashes are then asked of peers a run at a
 * time (GET_HASHES), each run checked against the root, and a chunk is
 * asked for as soon as its run is held. Every peer that holds the
 * file keeps several chunk requests in flight, answered in the order
 * asked; peers that can say what they hold (PROTO_CAP_SWARM) are asked
 * (INTERESTED, HAVE_MAP, then HAVE pushes) and the rarest chunks go first,
 * while whole-file seeds are spared the chunks other fetchers hold. At the
 * end the last chunks are asked of several peers and the copies cancelled
 * once one arrives. Every chunk is verified before the owner sees it; a
 * peer that sends a bad one is dropped and its chunks asked of others; a
 * peer that had the file and lost the line is reconnected a few times.
 * More peers are learned from the ones we have (PEERS), never ourselves
 * and never one address twice.
 *
 * Everything a fetch keeps per peer is bounded. It knows at most
 * PROTO_FETCH_PEERS_MAX peers (connected, waiting for room, or gone); a
 * gone peer that sent no chunk makes room for a new one. At most
 * max_peers are connected at once; it connects to peers learned from
 * others while fewer than 25 are (tens: enough that every fetcher's upload
 * finds takers), and takes those that connect to it up to max_peers; the
 * owner's peers beyond max_peers wait in order for room.
 * One peer's PEERS answers lead to PROTO_FETCH_PER_SOURCE connections at
 * most, and all peers' to PROTO_FETCH_LEARNED_CONNECTS, over the fetch's
 * life: liars naming one another cannot make it connect without end. A gone peer named again is tried again only
 * after a backoff, 2 s doubling with each failure up to 300 s; one dropped
 * for what it did, never.
 *
 * The fetch never writes the file: the owner gets each verified chunk
 * through a callback. It runs on the owner's event_base; where each peer's
 * scan starts comes from random(), which the owner seeds.
 */
#ifndef PROTO_FETCH_H
#define PROTO_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "conn.h"
#include "manifest.h"
#include "msg.h"
#include "node.h"
#include "server.h"
#include "tree.h"

struct event_base;

typedef struct proto_fetch proto_fetch;

#define PROTO_FETCH_PEERS_MAX 256  /* peers a fetch knows at once */
#define PROTO_FETCH_PER_SOURCE 16  /* connections on one peer's word */
#define PROTO_FETCH_LEARNED_CONNECTS 1024 /* on any peer's word, in all */

typedef struct proto_fetch_config {
	const uint8_t *id;      /* PROTO_HASH_LEN bytes; copied; unused with
	                         * list */
	int list;               /* ask each peer for LIST instead; the fetch
	                         * ends once every peer has answered or gone
	                         * and none are to come: 0 when one answered */
	proto_conn_config conn; /* for every connection (pin is set per peer);
	                         * copied, its pointers borrowed for the
	                         * fetch's life */
	unsigned timeout;       /* seconds a peer owing answers may be silent,
	                         * and the fetch go without progress; 0: 30 */
	unsigned max_peers;     /* connected or retrying at once; 0: 50 */
	uint64_t max_file_size; /* a bigger manifest ends the fetch; 0: none */
	size_t chunk_size;      /* the least the fetch asks in: a power of
	                         * two from PROTO_CHUNK_MIN to PROTO_CHUNK_MAX,
	                         * narrowed to the file (proto_chunk_size_fit);
	                         * 0: the least that keeps the file within
	                         * PROTO_CHUNK_AUTO_COUNT chunks. Either is
	                         * doubled while the file has more than
	                         * PROTO_INLINE_MAX chunks and it can be, so
	                         * peers of before the hashes take it. A manifest
	                         * chunked finer is carried up to it
	                         * (proto_manifest_rechunk), whatever the peer
	                         * that sent it chose; one chunked coarser
	                         * cannot be split and is kept so */
	proto_node *node;       /* the owner's node, whose addresses are
	                         * ourselves, never connected to, and whose
	                         * finds (proto_node_found) are fetched from
	                         * too, as learned peers; borrowed, it must
	                         * outlive the fetch or its proto_fetch_close;
	                         * NULL: none */
	const char *short_note; /* appended to the messages of a fetch that
	                         * ends incomplete (" (partial file kept)");
	                         * borrowed; NULL: none */
} proto_fetch_config;

typedef struct proto_fetch_cbs {
	/* Optional: one line for the owner's log, at a proto_log_level; text
	 * is valid during the call. */
	void (*log)(int level, const char *text, void *ctx);
	/* The manifest is adopted: mf stays the fetch's and valid until
	 * proto_fetch_free (the owner may lend it to a store meanwhile). The
	 * owner may call proto_fetch_held and proto_fetch_set_order here.
	 * Nonzero ends the fetch (on_end with 1); say why first. */
	int (*on_manifest)(proto_manifest *mf, void *ctx);
	/* Chunk index, verified: data (len bytes) is valid during the call.
	 * When it cannot be kept, the owner calls proto_fetch_stop. */
	void (*on_chunk)(uint64_t index, const uint8_t *data, size_t len,
	    void *ctx);
	/* Every chunk is held. The owner ends the fetch (proto_fetch_stop) or
	 * goes on serving (proto_fetch_close). */
	void (*on_complete)(void *ctx);
	/* With list: a peer's files, valid during the call; once per peer
	 * that answers. */
	void (*on_list)(const proto_list_entry *entries, size_t n, void *ctx);
	/* The fetch is over: 1 when it failed (said through log first), 0
	 * after a list. Not called after proto_fetch_stop. */
	void (*on_end)(int code, void *ctx);
	/* Optional: the hashes of chunks first to first + count - 1 are held
	 * now, checked (a manifest that came without its layer), and none of
	 * them was asked for yet: the owner may call proto_fetch_held for
	 * those it has (an earlier run's, proto_output_resume_range). */
	void (*on_hashes)(uint64_t first, uint64_t count, void *ctx);
	/* Optional: the id is a tree's (docs/PROTOCOL.md section 10), and a
	 * peer sent its manifest, valid for the id: t is the owner's now. The
	 * owner ends this fetch (proto_fetch_stop) and fetches the tree's
	 * files by their ids. Nonzero ends the fetch (on_end with 1). Without
	 * it, the trees capability is not stated (except with list) and a
	 * peer that sends a tree manifest is dropped. */
	int (*on_tree)(struct proto_tree *t, void *ctx);
} proto_fetch_cbs;

typedef struct proto_fetch_stats {
	uint64_t bytes_in;       /* read from connections closed so far */
	uint64_t bytes_reading;  /* taken from open ones, partial frames too */
	uint64_t chunks_fetched; /* verified from peers */
	uint64_t chunks_done;    /* held: fetched or proto_fetch_held */
	uint64_t peers_dropped;  /* for what they did */
	uint64_t cancelled;      /* CANCELs sent for endgame copies */
	uint64_t duplicates;     /* copies that came anyway, dropped */
	unsigned peers_alive;    /* connected, connecting or to retry */
	unsigned peers_queued;   /* the owner's, waiting for room */
	size_t peers;            /* known now: proto_fetch_peer; at most
	                          * PROTO_FETCH_PEERS_MAX */
	uint64_t connects;       /* connections attempted, retries too */
	uint64_t manifests;      /* MANIFEST answers taken */
	uint64_t hash_runs;      /* runs of chunk hashes taken and checked
	                          * (a manifest without its layer) */
} proto_fetch_stats;

/* A fetch on base, which must outlive it; the caller frees it with
 * proto_fetch_free. cfg and cbs are copied; every
 * callback but log and on_list (needed with list) must be set. NULL when
 * out of memory. The clock of cfg.timeout starts now: a fetch given no
 * peer within it ends (on_end with 1). */
proto_fetch *proto_fetch_new(struct event_base *base,
    const proto_fetch_config *cfg, const proto_fetch_cbs *cbs, void *ctx);

/* Closes every connection, frees the fetch and its manifest. NULL does
 * nothing. Not from inside one of its callbacks. */
void proto_fetch_free(proto_fetch *fx);

/*
 * Connects to addr (copied), accepting only the identity its pin names
 * (any, without one). An address already known is skipped silently, unless
 * it is gone and its backoff over: then it is tried again. One past
 * max_peers waits for room, in order. Ourselves (the server's port at a
 * loopback, wildcard or interface address) or one past
 * PROTO_FETCH_PEERS_MAX is skipped with a log line; all return 0 too. The
 * fetch does no lookups: the owner parsed addr (proto_addr_parse). A
 * connect that fails at once can leave no peer: when none are to come
 * (proto_fetch_more_peers), on_end is then called before this returns; an
 * owner adding several sets more to 1 first. 0, or PROTO_ERR_NOMEM.
 */
int proto_fetch_add_peer(proto_fetch *fx, const proto_addr *addr);

/* A node heard of elsewhere (it connected to the owner's server) at addr
 * (copied): fetched from too, as a learned peer, while there is room. No
 * result: one that cannot be taken is dropped, as a peer's PEERS would be. */
void proto_fetch_add_learned(proto_fetch *fx, const proto_addr *addr);

/* While more is 1, running out of peers is no failure: the owner has more
 * to add. Starts at 0; setting 0 checks at once (on_end may follow). */
void proto_fetch_more_peers(proto_fetch *fx, int more);

/* From now on, chunks are asked for lowest first, and none from limit on:
 * the window of an owner writing in order. Called again as it moves. */
void proto_fetch_set_order(proto_fetch *fx, uint64_t limit);

/* Chunk index is the owner's already (an earlier run's, checked): it is
 * not asked for. Only once a manifest is adopted; before, or for an index
 * past the file, it is ignored. */
void proto_fetch_held(proto_fetch *fx, uint64_t index);

/* Ends the fetch without on_end: nothing more is asked for, chunks still
 * arriving are dropped. Connections stay open until _close or _free. */
void proto_fetch_stop(proto_fetch *fx);

/* Closes every connection and fetches nothing more; counters stay. Peers
 * added later still connect, but are asked for no chunk (a node that
 * fetched the whole file and goes on serving it). */
void proto_fetch_close(proto_fetch *fx);

/* The adopted manifest, or NULL; valid until proto_fetch_free. One that
 * came without its layer fills in as runs of hashes arrive
 * (proto_manifest_hash_known). */
const proto_manifest *proto_fetch_manifest(const proto_fetch *fx);

/* The counters now, copied into *st, the caller's. */
void proto_fetch_stats_get(const proto_fetch *fx, proto_fetch_stats *st);

/* Peer i (in the order added, from 0 to stats.peers - 1): its address as
 * canonical HOST:PORT (proto_addr_text), valid until the next call into
 * the fetch, and the chunks it sent that were kept. A peer that sent none may be forgotten, and the peers
 * after it renumbered. 0, or PROTO_ERR_INVALID past the last. */
/* How peer i (numbered as proto_fetch_peer) was last reached:
 * "direct" or "mapped" (proto_conn_path), static text, into *path; NULL
 * when no connection to it got through its handshake. 0, or
 * PROTO_ERR_INVALID past the last. */
int proto_fetch_peer_path(const proto_fetch *fx, size_t i,
    const char **path);

int proto_fetch_peer(const proto_fetch *fx, size_t i, const char **addr,
    uint64_t *chunks);

/* 1 when the peer on connection c told this fetch (its HAVE_MAP and
 * HAVEs) that it holds chunk index, in the manifest's chunk size; 2 when
 * it holds the whole file (a seed, which may still want our HAVEs: one
 * that super-seeds watches them); 0 when it did not say, or no peer of
 * the fetch is on c. */
int proto_fetch_peer_holds(const proto_fetch *fx, const proto_conn *c,
    uint64_t index);

/* During on_list: the address of the peer whose list it is, as canonical
 * HOST:PORT (proto_addr_text), valid until the callback returns; NULL at
 * any other time. */
const char *proto_fetch_list_peer(const proto_fetch *fx);

#endif
