/*
 * Hole punching through a relay (PROTOCOL.md section 13, "Hole punching"):
 * punch.c the fetcher's side (a connection that punches first and takes
 * the relay's circuit when that fails), punchnode.c the node's (the
 * connections a relay's PUNCH_TELL asks of it, bounded).
 */
#ifndef PROTO_PUNCH_PRIVATE_H
#define PROTO_PUNCH_PRIVATE_H
#include <time.h>
#include "addr.h"
#include "relay.h"

struct event_base;
struct proto_server;
typedef struct proto_conn proto_conn;

#define PUNCH_ASK_SECS 3    /* the fetcher waits this for the relay's GO */
#define PUNCH_SECS 3        /* ... and this for its connect to cross */
#define PUNCH_NODE_SECS 6   /* the node's connect, from the TELL */
#define PUNCH_RETRY_MS 250  /* a connect refused is tried again after */
#define PUNCH_NODE_MAX 4    /* a node's punches at once */
#define PUNCH_RATE 8        /* ... and at most this many each */
#define PUNCH_RATE_SECS 10  /* ... of these */
#define PUNCH_PORT_MIN 1024 /* no punch to a lower port: no SYN scans */

/* Why a punch to a must not be made, or NULL: loopback, unspecified,
 * multicast, broadcast or link-local addresses, ports below 1024. A
 * relay names the address, and must not aim the node's SYNs at its own
 * host or at services. */
const char *proto__punch_refusal(const proto_addr *a);

/* A window of PUNCH_RATE punches per PUNCH_RATE_SECS. */
struct proto__punch_rate {
	time_t start;
	unsigned n;
};
/* 1 and one taken when the window at now has room, else 0. */
int proto__punch_rate_take(struct proto__punch_rate *r, time_t now);

/* The address a PUNCH element names (ip, iplen 4 or 16, port). 0, or -1
 * when iplen is neither. */
int proto__punch_addr(proto_addr *a, const uint8_t *ip, size_t iplen,
    uint16_t port);

/* conn.c: ends a punch still under way (its sockets closed). */
void proto__conn_punch_free(proto_conn *c);

/* The node's punches: those its relay asks of it, each connection made
 * handed to srv as one it accepted. */
typedef struct proto__puncher proto__puncher;
proto__puncher *proto__puncher_new(struct event_base *base,
    struct proto_server *srv, const proto_addr *relay);
/* A TELL from the relay: punch to the address it names, answer READY. */
void proto__puncher_told(proto__puncher *pu, const proto_relay_msg *m);
void proto__puncher_free(proto__puncher *pu);

#endif
