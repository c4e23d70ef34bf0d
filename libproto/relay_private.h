/*
 * The relay's insides, shared by relay.c (registrations and circuits) and
 * relaypunch.c (the punches it coordinates).
 */
#ifndef PROTO_RELAY_PRIVATE_H
#define PROTO_RELAY_PRIVATE_H
#include <netinet/in.h>
#include <time.h>
#include "relay.h"

#define SPLICE_MAX (256u << 10) /* bytes queued toward one side */
#define NEW_MAX 64u             /* connections not yet anything */
#define NEW_PER_HOST 8u         /* of those, from one host (or /64) */
#define NEW_SECS 10             /* to say what a connection is for */
#define PUNCH_WAIT_SECS 5       /* a punch's node has this to answer */

/* R_PUNCH: a fetcher's punch asked, the node told, its answer awaited. */
enum rstate { R_NEW, R_CONTROL, R_WAITING, R_SPLICED, R_PUNCH, R_CLOSING };

struct rconn {
	proto_relay *r;
	struct bufferevent *bev;
	enum rstate state;
	int fetcher;            /* it asked for the circuit (or punch) */
	char host[INET6_ADDRSTRLEN];
	proto_addr addr;        /* limits per host key on it */
	uint8_t nonce[PROTO_RELAY_NONCE_LEN];
	int has_nonce;
	uint8_t id[PROTO_IDENTITY_LEN]; /* registered, or asked for */
	uint8_t token[PROTO_RELAY_TOKEN_LEN];
	uint32_t caps;          /* a registered node's, from its proof */
	uint32_t rid;           /* R_PUNCH: the fetcher's, answered by GO */
	struct rconn *peer;     /* the other end of its circuit */
	struct event *timer;
	time_t last;            /* a byte went through its circuit */
	struct rconn *next, *prev;
};

struct proto_relay {
	struct event_base *base;
	proto_relay_config cfg;
	struct evconnlistener *lis;
	struct ev_token_bucket_cfg *bucket, *cbucket;
	struct bufferevent_rate_limit_group *group;
	struct rconn *conns;
	proto_relay_stats st;
	unsigned nnew;
};

/* relay.c */
void proto__relay_set_timer(struct rconn *c, int secs);
/* Sends what is queued, then closes (or at the deadline). */
void proto__relay_close(struct rconn *c);
void proto__relay_send(struct rconn *c, const proto_relay_msg *m);
/* An ERROR, then the close; counted as refused when c is a fetcher. */
void proto__relay_refuse(struct rconn *c, uint32_t rid, uint32_t code,
    const char *why);
struct rconn *proto__relay_find_control(proto_relay *r,
    const uint8_t id[PROTO_IDENTITY_LEN]);
/* Circuits and punches up or waiting: all, to id, from host. */
void proto__relay_count(proto_relay *r, const uint8_t *id,
    const proto_addr *host, unsigned *all, unsigned *to_id,
    unsigned *from_host);

/* relaypunch.c: a fetcher's PUNCH_ASK, a node's PUNCH_READY, on a
 * connection that has not said what it is (R_NEW). */
void proto__relay_on_punch_ask(struct rconn *c, const proto_relay_msg *m);
void proto__relay_on_punch_ready(struct rconn *c, const proto_relay_msg *m);

#endif
