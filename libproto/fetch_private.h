/*
 * What fetch.c (the session), fetchpeers.c (its table of peers),
 * fetchpeer.c (one peer's requests), fetchanswer.c (what its answers do)
 * and fetchutil.c (what all use) share, and no other module sees: the
 * fetch's state and the calls between the files. The calls go one way:
 * fetch.c calls fetchpeers.c and fetchpeer.c; fetchanswer.c, reached only
 * as a connection's callbacks, calls fetchpeer.c; news of a peer comes
 * back through the fetch_peer_events fetch.c fills; all call fetchutil.c.
 * fetchhashes.c keeps the runs of chunk hashes of a manifest that came
 * without its layer; fetchpeer.c and fetchanswer.c call it, and it calls
 * fetchutil.c only. Not installed.
 */
#ifndef PROTO_FETCH_PRIVATE_H
#define PROTO_FETCH_PRIVATE_H

#include "fetch.h"
#include "have.h"
#include "identity.h"
#include "log_private.h"
#include "manifest.h"
#include "picker.h"

#define FETCH_QUEUE_MAX 64 /* requests out per peer */

enum fetch_peer_state { FETCH_CONNECTING, FETCH_READY, FETCH_RETRYING,
    FETCH_GONE, FETCH_QUEUED };
enum fetch_req_kind { FETCH_REQ_MANIFEST, FETCH_REQ_CHUNK, FETCH_REQ_LIST,
    FETCH_REQ_INTERESTED, FETCH_REQ_PEERS, FETCH_REQ_HAS, FETCH_REQ_HASHES };

struct fetch_request {
	uint32_t rid;
	enum fetch_req_kind kind;
	uint64_t index;     /* a chunk, or (FETCH_REQ_HASHES) a run */
	int cancelled;      /* a CANCEL went after it */
	int abandoned;      /* held too long: asked of others meanwhile, no
	                     * longer counted as out by this peer */
};

struct fetch_peer {
	proto_fetch *f;
	proto_addr addr;                /* where it listens, and the identity
	                                 * it must show */
	proto_addr alts[PROTO_CONN_RACE_MAX - 1]; /* its other addresses
	                                 * (the same identity named there):
	                                 * raced with addr (happy eyeballs) */
	size_t nalts;
	proto_conn *conn;
	const char *path;               /* how it was last reached
	                                 * (proto_conn_path); NULL: never */
	int borrowed;                   /* conn is the node's server's, which
	                                 * the peer made: we ask there as its
	                                 * guest (proto_conn_attach) */
	enum fetch_peer_state state;
	int learned;                    /* from another peer, not the owner */
	int manifest_wait;              /* to ask again whether it has the
	                                 * file: for the manifest, or once we
	                                 * have it, what it holds */
	unsigned manifest_tries;
	struct event *retry_ev;
	unsigned retries;
	int bad;                        /* dropped for what it did: never again */
	unsigned fails;                 /* connections in a row that came to
	                                 * nothing */
	double retry_at;                /* gone: not connected again before */
	double started;                 /* its last connect */
	unsigned supplied;              /* connections made to addresses it
	                                 * named (PEERS) */
	int line_lost;                  /* cut or reset while ready: worth
	                                 * reconnecting; silence is not */
	int has_file;
	int swarm;          /* it tells what it holds (PROTO_CAP_SWARM) */
	int hashes;         /* it answers GET_HASHES (PROTO_CAP_HASHES) */
	int choked;         /* it chokes us (PROTO_CAP_CHOKE): no GET_CHUNK
	                     * until it says UNCHOKE */
	unsigned idle_strikes; /* idle timeouts in a row while it owed us
	                        * answers: a seed that chokes may be slow,
	                        * not gone (FETCH_SLOW_PATIENCE) */
	int chokes;         /* it has the choke cap: a node of this release,
	                     * whose silence is slowness, since it says when
	                     * it will not serve (CHOKE) */
	double hashes_after; /* had none to give: not asked again before */
	unsigned runs_out;  /* GET_HASHES it has to answer */
	int no_has;         /* refused HAS (a peer of before it): asked for
	                     * the manifest instead */
	int mapped;         /* ... and its HAVE_MAP came */
	int whole;          /* it holds the whole file */
	int asking_peers;   /* a PEERS request is out */
	double peers_after; /* not asked PEERS again before */
	proto_have theirs;  /* what it holds, in its chunk size */
	uint32_t their_chunk_size;
	proto_have has;     /* the same in ours, when not whole */
	uint64_t cursor;    /* where its rarest-first scan goes on */
	struct fetch_request queue[FETCH_QUEUE_MAX]; /* answers come in order */
	unsigned head, count;
	size_t inflight_bytes;
	/* Holding: what the peer sent since its head request became head,
	 * less the HAVEs, which are no progress on any request. */
	double head_since;      /* when the head request became head */
	double hold_mark;       /* when the head request last moved */
	uint64_t hold_net;      /* net bytes then */
	uint64_t in_mark;       /* bytes_in after its last whole message */
	uint64_t have_bytes;    /* of the HAVEs on this connection */
	int demoted;            /* held a request: its claims do not count,
	                         * nothing more is asked of it, until it
	                         * answers a chunk */
	unsigned maxreq;        /* requests it takes out at once: its
	                         * HELLO's maxreq, at most FETCH_QUEUE_MAX */
	/* Paused: it answered BUSY, or an error this implementation does
	 * not know, so nothing new is asked of it until the time given;
	 * the request that was refused, when not a chunk, is asked again
	 * then. */
	int paused;
	double resume_at;
	unsigned busy_streak;   /* pauses in a row: each twice the last */
	int resend;             /* 1 + the fetch_req_kind to ask again, or 0 */
	uint64_t chunks;
	char why[400];  /* why it went, for the final message */
	int said;       /* why was said as a warning: not again at the end */
	int repeat;     /* the failure on its way was said already, of this
	                 * node at another address: only at debug level */
};

/* What one peer's half tells the session. fetch.c fills it; fetchpeer.c
 * calls through it, and so never names a function of fetch.c. */
struct fetch_peer_events {
	/* p is lost, for what it did (bad) or through no fault; p->why says
	 * why. Its chunks go to the others. */
	void (*failed)(struct fetch_peer *p, int bad);
	/* p has told all it will (its LIST answered): closed, not failed. */
	void (*done)(struct fetch_peer *p);
	/* source named addr (PEERS): worth fetching from too. */
	void (*learned)(struct fetch_peer *source, const proto_addr *addr);
};

#define FETCH_PEERS_TARGET 15 /* connections a fetch seeks on others' word
                               * (within max_peers): with those that
                               * connect to it, tens (about 30 each in a
                               * swarm of 100), so that every fetcher's
                               * upload finds takers; each costs a HAVE a
                               * chunk, and 25 cost 1.3 times the CPU.
                               * Those that connect to it count, but are
                               * taken up to max_peers */
#define FETCH_PEERS_EVERY 3.0  /* s between PEERS to one peer, ... */
#define FETCH_PEERS_GAP 1.0    /* ... and to any, while short of the
                                * target: each answer is up to 64 records
                                * to verify */
#define FETCH_SLOW_PATIENCE 10 /* timeouts a fetch waits without progress
                                * while a peer with the file and the choke
                                * cap is connected; and that such a peer
                                * may hold a chunk before it is a liar */
#define FETCH_BUSY_MIN 1.0      /* s a peer that said BUSY is paused, */
#define FETCH_BUSY_MAX 32.0     /* doubling with each BUSY in a row */
#define FETCH_BACKOFF_MIN 2.0   /* s before a gone peer named again is */
#define FETCH_BACKOFF_MAX 300.0 /* tried again, doubling with each failure */

struct proto_fetch {
	struct event_base *base;
	proto_fetch_config cfg;
	proto_fetch_cbs cbs;
	void *ctx;
	const struct fetch_peer_events *events; /* fetch.c's, for fetchpeer.c */
	uint8_t id[PROTO_HASH_LEN];
	char hex[PROTO_ID_HEX_LEN + 1];     /* "" when listing */
	proto_manifest *mf;
	proto_picker pk;
	/* A manifest without its layer: runs of run_len hashes, asked of
	 * peers in order; NULL runs once every hash is held. */
	uint8_t *runs;                  /* enum fetch_run_state each */
	uint64_t nruns;
	uint64_t run_hint;              /* no run below is missing */
	uint32_t run_len;
	struct fetch_peer **peers;      /* in the order added; at most
	                                 * PROTO_FETCH_PEERS_MAX */
	size_t npeers, cap;
	uint64_t connects;              /* connections attempted */
	uint64_t learned_connects;      /* ... on another peer's word */
	double peers_asked;             /* when a PEERS last went out */
	int admitting;                  /* admit_queued is on the stack */
	uint32_t next_rid;
	int ordered;                /* lowest first, below limit */
	uint64_t limit;
	int more_peers, done, closed;
	int watching;               /* the node's finds */
	unsigned not_found;
	char changed_at[PROTO_ADDR_TEXT_MAX]; /* a peer that said the file
	                            * changed there (ERROR CHANGED), or "" */
	char said_identity[200]; /* the last identity mismatch said */
	unsigned listed;            /* peers that answered LIST */
	const struct fetch_peer *listing; /* during on_list: whose list */
	struct event *tick;
	time_t last_progress;
	double last_chunk;          /* when the last chunk was verified */
	uint64_t bytes_seen;        /* at the last tick, over live peers */
	uint64_t bytes_in, chunks_fetched, peers_dropped, cancels, wasted;
	uint64_t manifests, hash_runs;
};

/* fetchutil.c: used by both, calls neither. */
/* Says why in p->why (unless p is gone already) and tells the session
 * (events->failed). */
void proto__fetch_peer_fail(struct fetch_peer *p, int bad, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void proto__fetch_log(proto_fetch *f, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void proto__fetch_end(proto_fetch *f, int code);
double proto__fetch_now(void);
int proto__fetch_stalled(const proto_fetch *f);
int proto__fetch_peer_alive(const struct fetch_peer *p);
unsigned proto__fetch_alive_peers(const proto_fetch *f);
/* Whether the fetch seeks more peers: fewer alive than
 * FETCH_PEERS_TARGET, and than max_peers. */
int proto__fetch_seeking(const proto_fetch *f);

/* fetchpeers.c: the table of peers, for the session. */
/* 0 when a record naming the peer at a, learned from source, could change
 * nothing (its address already connected or connecting, or no room to
 * connect to it): its signature need not be checked. In a swarm every
 * PEERS answer names the same peers, and each check is an Ed25519
 * verification. */
int proto__fetch_record_matters(const proto_fetch *f, const proto_addr *a,
    const struct fetch_peer *source);

/* learned: heard of from another peer; source: that peer, when it named
 * it in PEERS. 0, or PROTO_ERR_NOMEM. */
int proto__fetch_add_peer(proto_fetch *f, const proto_addr *addr, int learned,
    struct fetch_peer *source);
void proto__fetch_peer_free(struct fetch_peer *p);
/* The owner's peers that waited for room get it, in the order given. */
void proto__fetch_admit_queued(proto_fetch *f);
/* The peers that never answered make room for the owner's waiting ones.
 * 1 when one was let in. */
int proto__fetch_make_room(proto_fetch *f);

/* A connection the node's server accepted from the node at addr, offered
 * (proto_node_watch_conns): 1 when a peer of ours now asks there. Of two
 * connections with one node, the one both keep (proto_conn_kept). */
int proto__fetch_take_conn(proto_fetch *f, proto_conn *c,
    const proto_addr *addr);
/* fetchhashes.c: the runs of a layer asked of peers, for fetchpeer.c and
 * fetchanswer.c. */
enum fetch_run_state { FETCH_RUN_MISSING, FETCH_RUN_ASKED, FETCH_RUN_DONE };
/* Once a layer-less manifest is adopted (its layer opened): every run
 * missing. 0 or PROTO_ERR_NOMEM. */
int proto__fetch_runs_init(proto_fetch *f);
void proto__fetch_runs_free(proto_fetch *f);
/* The first run neither held nor asked for, or -1. */
int64_t proto__fetch_run_next(proto_fetch *f);
void proto__fetch_run_asked(proto_fetch *f, uint64_t run);
/* A request for run is over unanswered: missing again unless held. */
void proto__fetch_run_unask(proto_fetch *f, uint64_t run);
/* HASHES m for run, checked against the root and taken; the owner is told
 * (on_hashes), and the chunks become ones to ask for. 0; or, the run
 * missing again, PROTO_ERR_MISMATCH (a forgery), PROTO_ERR_INVALID (not
 * the run's shape) or what proto_sha256 returns. */
int proto__fetch_run_take(proto_fetch *f, uint64_t run, const proto_msg *m);

/* fetchline.c: what a peer's connection brings, handed to each new one
 * (fetchpeers.c) and called by nothing else: as its owner, or as the
 * guest of one the node's server accepted. */
extern const proto_conn_cbs proto__fetch_peer_cbs;
extern const proto_conn_cbs proto__fetch_guest_cbs;
/* p's connection is ready: the first requests. */
void proto__fetch_peer_start(struct fetch_peer *p);
/* fetchanswer.c: a message from the peer, matched to what it owes. */
void proto__fetch_on_msg(proto_conn *c, proto_msg *m, void *arg);

/* fetchhave.c: what a peer holds and whether it serves us, for
 * fetchanswer.c: its HAVE_MAP (answering INTERESTED), a HAVE, CHOKE (1) or
 * UNCHOKE (0). */
void proto__fetch_take_map(struct fetch_peer *p, const proto_msg *m);
void proto__fetch_take_have(struct fetch_peer *p, const proto_msg *m);
void proto__fetch_take_choke(struct fetch_peer *p, int choked);

/* fetchpeer.c: the calls to one peer, from the session and the answers. */
int proto__fetch_peer_send(struct fetch_peer *p, enum fetch_req_kind kind,
    uint64_t index);
void proto__fetch_peer_pump(struct fetch_peer *p);
/* The manifest is held: asks p what of the file it holds (INTERESTED), or
 * whether it has it (HAS), or, a peer that knows no HAS, for the
 * manifest. */
void proto__fetch_peer_ask_holdings(struct fetch_peer *p);
void proto__fetch_peer_ask_peers(struct fetch_peer *p);
void proto__fetch_peer_release(struct fetch_peer *p);
void proto__fetch_peer_check_hold(struct fetch_peer *p);
uint64_t proto__fetch_peer_net_bytes(const struct fetch_peer *p);
/* The head request starts its clock anew. */
void proto__fetch_peer_hold_reset(struct fetch_peer *p);
void proto__fetch_peer_head_new(struct fetch_peer *p);
/* Its claims count for rarity (and so spare seeds) again, or no more. */
void proto__fetch_peer_set_demoted(struct fetch_peer *p, int demoted);
/* Nothing new is asked of it for a while (BUSY, or an unknown error);
 * resend: 1 + the request kind to ask again then, or 0. */
void proto__fetch_peer_pause(struct fetch_peer *p, int resend);
/* Called each tick: a pause that is over ends, and the peer is asked
 * again. */
void proto__fetch_peer_resume(struct fetch_peer *p);

#endif
