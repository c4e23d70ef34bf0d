/*
 * What the modules of a node's server share, and nothing else sees: the
 * server, its clients and their queues of requests, and the functions one
 * of them calls in another (proto__server_*). Private to libproto; server.h
 * is the public API.
 */
#ifndef PROTO_SERVER_PRIVATE_H
#define PROTO_SERVER_PRIVATE_H

#include <stdint.h>
#include <sys/time.h>

#include <event2/util.h>

#include "have.h"
#include "server.h"

struct event;
struct event_base;
struct evconnlistener;

/* A client may have REQUESTS_MAX requests outstanding: they are queued and
 * answered in turn. Past that it is answered BUSY, in turn too, for as
 * many again; past both it is dropped. The server never stops reading a
 * client to slow it: once requests flow both ways on a connection, a side
 * that stops reading can deadlock the other. */
#define REQUESTS_MAX 64     /* the texts of serveanswer.c name these */
#define QUEUE_MAX 128
#define QUEUED_BYTES (1u << 20)

struct request {
	unsigned type;
	uint32_t rid;
	uint8_t id[PROTO_HASH_LEN];
	uint64_t index;
	uint32_t chunk_size;
	int has_id;         /* PEERS: id was asked about */
	uint32_t count, proof_layers;   /* GET_HASHES */
	int cancelled;
	int busy;           /* past REQUESTS_MAX: answered BUSY */
	uint8_t *ids;       /* GET_FILES: nids ids, malloc'd; freed once
	                     * answered (proto__server_request_done) */
	unsigned nids;
	int ids_bad;        /* GET_FILES: answered BAD_REQUEST */
};

/* servefiles.c: answers a GET_FILES (FILES, or an ERROR); frees what the
 * request holds, answered or dropped. */
void proto__server_answer_files(proto_server *srv, proto_conn *c,
    const struct request *r);
void proto__server_request_done(struct request *r);

struct client {
	proto_server *srv;
	proto_conn *conn;
	struct client *prev, *next;
	/* A ring of cap entries, grown by doubling up to QUEUE_MAX: most
	 * clients have a few requests out, and a thousand of them at once
	 * should not cost 9 MiB of empty slots. */
	struct request *queue;
	unsigned cap, head, count;
	int interested;
	uint8_t interest[PROTO_HASH_LEN];
	int handshaking;    /* accepted, its HELLO not yet taken */
	int relayed;        /* a relay's circuit (proto_server_accept_relayed) */
	int guest;          /* conn is another's (a fetch's): answered as a
	                     * guest (proto_server_adopt), never freed here */
	uint64_t seq;       /* order of acceptance: lower is older */
	char host[PROTO_HOST_MAX + 1];
	int listens;        /* its HELLO named a port: ... */
	proto_addr listen_at; /* ... where it listens */
	int super;          /* super-seeded (servesuper.c): shown only ... */
	proto_have shown;   /* ... these chunks of its interest, so far */
	int super_asked;    /* sent a chunk since last shown one */
	unsigned super_idle; /* ticks in a row it asked nothing */
	/* What a super-seeded fetcher holds, where it tells us: we asked it
	 * (INTERESTED, as the guest of its duplex connection) and it answers
	 * with its HAVE_MAP and pushes a HAVE for each chunk it gets. */
	proto_conn *watch;  /* the connection we are the guest of; NULL */
	int watch_mapped;   /* its HAVE_MAP came */
	proto_have holds;   /* the chunks it said it holds */
	proto_have sent_to; /* the chunks we sent it */
	uint64_t pending;   /* chunks shown to it that it has not said */
	double news_at;     /* when it last said one, or was shown one */
	/* Upload slots (servechoke.c), for a peer with PROTO_CAP_CHOKE: */
	int chokes;         /* it takes CHOKE: its chunks wait for a slot */
	int unchoked;       /* it has one */
	int optimistic;     /* ... given at random */
	int keep;           /* kept in this round */
	double unchoked_at; /* when last unchoked; 0: never */
	double last_ask;    /* its last GET_CHUNK */
	int asked;          /* it sent one */
	uint64_t given;     /* bytes it sent us the last round */
	uint64_t given_mark;
	/* What it got from us (serveupload.c), oldest first: */
	struct upload {
		uint8_t id[PROTO_HASH_LEN];
		uint32_t chunk_size;
		char *name;
		uint64_t size, bytes, chunks;
		proto_have got;     /* which chunks, at chunk_size */
	} uploads[PROTO_SERVER_UPLOADS_MAX];
	unsigned nuploads;
};

struct super_file;

struct proto_server {
	struct event_base *base;
	proto_store *store;
	proto_server_config cfg;
	proto_addr addrs[PROTO_HELLO_ADDRS_MAX]; /* cfg.conn.addrs points here */
	proto_addr mapped;      /* cfg.conn.mapped points here, when set */
	proto_server_cbs cbs;
	void *ctx;
	struct evconnlistener *listener;
	struct event *retry_ev;
	proto_beacon *beacon;
	proto_peer_table known;
	time_t known_touched; /* when connected clients were last seen in
	                       * it */
	struct client *clients;
	unsigned nclients;
	unsigned nhandshaking;  /* clients still in their handshake */
	uint64_t accepted;      /* connections accepted so far */
	struct waiting {        /* past their address's handshakes, oldest
	                         * first */
		evutil_socket_t fd;
		char host[PROTO_HOST_MAX + 1];
		uint16_t port;
		struct timeval since;
	} *waiting;
	unsigned nwaiting, waiting_max;
	struct event *waiting_ev;   /* ends the waits past the timeout */
	int freeing;
	proto_server_stats stats;
	struct super_file *super;   /* files super-seeded (servesuper.c) */
	unsigned nsuper;
	struct event *super_ev;
	struct event *choke_ev;     /* servechoke.c's clock */
	double choke_round;         /* when the slots were last given */
};

/* server.c: the log, a client's start and end (its slot freed, a
 * waiting connection taken in its place). */
void proto__server_say(proto_server *srv, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void proto__server_client_free(struct client *cl);
/* cl joins srv's clients, the newest (its seq). */
void proto__server_client_link(proto_server *srv, struct client *cl);
/* What a client's connection is driven by. */
extern const proto_conn_cbs proto__server_client_cbs;

/* serveadmit.c: connections let in. The listener's callbacks, and its
 * timers' (a second's pause out of descriptors; a waiting connection's
 * expiry). host's handshakes went below its cap: its oldest waiting
 * connection, if any, is let in. */
struct evconnlistener;
void proto__server_on_accept(struct evconnlistener *lst, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg);
void proto__server_on_accept_error(struct evconnlistener *lst, void *arg);
void proto__server_retry_accept(evutil_socket_t fd, short what, void *arg);
void proto__server_waiting_expired(evutil_socket_t fd, short what, void *arg);
void proto__server_take_waiting(proto_server *srv, const char *host);

/* serveanswer.c: a client's requests, and its output drained. */
void proto__server_on_msg(proto_conn *c, proto_msg *m, void *arg);
void proto__server_on_written(proto_conn *c, void *arg);

/* servesuper.c: super-seeding. For cl's INTERESTED in mf, held whole:
 * 1 with the sparse map to answer in out (the caller frees it), when cl
 * is super-seeded; else 0. */
int proto__server_super_map(struct client *cl, const proto_manifest *mf,
    proto_have *out);
/* A chunk (index in chunk_size) of id went to cl: counted, and cl shown
 * another. */
void proto__server_super_sent(struct client *cl, const uint8_t *id,
    uint32_t chunk_size, uint64_t index);
/* cl's output drained: shown another chunk, if it waits for nothing. */
void proto__server_super_written(struct client *cl);
/* cl goes, or subscribes anew; the server goes. */
void proto__server_super_drop(struct client *cl);
void proto__server_super_free(proto_server *srv);

/* serveupload.c: a chunk (index in chunk_size) of id went to cl:
 * counted. cl goes: what it got is told (on_upload). */
void proto__server_upload_sent(struct client *cl, const uint8_t *id,
    uint32_t chunk_size, uint64_t index);
void proto__server_upload_end(struct client *cl);

/* servechoke.c: upload slots. cl subscribed to a file: a candidate for
 * one (nothing when it does not take CHOKE). cl asked for a chunk. The
 * server goes. */
void proto__server_choke_candidate(struct client *cl);
void proto__server_choke_asked(struct client *cl);
void proto__server_choke_free(proto_server *srv);

/* server.c: when id was shared here and withdrawn, answers rid ERROR
 * CHANGED and returns 1; else 0. */
int proto__server_gone(proto_server *srv, proto_conn *c, uint32_t rid,
    const uint8_t *id);

/* server.c: the entries of the clients connected now are seen now, at
 * most once every minute. */
void proto__server_touch_known(proto_server *srv);

#endif
