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

#include "server.h"

struct event;
struct event_base;
struct evconnlistener;

#define PENDING_MAX 64      /* requests queued per client */
#define QUEUED_BYTES (1u << 20)

struct request {
	unsigned type;
	uint32_t rid;
	uint8_t id[PROTO_HASH_LEN];
	uint64_t index;
	uint32_t chunk_size;
	uint32_t count, proof_layers;   /* GET_HASHES */
	int cancelled;
};

struct client {
	proto_server *srv;
	proto_conn *conn;
	struct client *prev, *next;
	struct request queue[PENDING_MAX];
	unsigned head, count;
	int interested;
	uint8_t interest[PROTO_HASH_LEN];
	int handshaking;    /* accepted, its HELLO not yet taken */
	uint64_t seq;       /* order of acceptance: lower is older */
	char host[PROTO_HOST_MAX + 1];
};

struct proto_server {
	struct event_base *base;
	proto_store *store;
	proto_server_config cfg;
	proto_server_cbs cbs;
	void *ctx;
	struct evconnlistener *listener;
	struct event *retry_ev;
	proto_beacon *beacon;
	proto_peer_table known;
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
};

/* server.c: the log, and a client's end (its slot freed, a waiting
 * connection taken in its place). */
void proto__server_say(proto_server *srv, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void proto__server_client_free(struct client *cl);

/* serveanswer.c: a client's requests, and its output drained. */
void proto__server_on_msg(proto_conn *c, proto_msg *m, void *arg);
void proto__server_on_written(proto_conn *c, void *arg);

#endif
