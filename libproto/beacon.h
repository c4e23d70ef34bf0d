/*
 * The serving side of LAN discovery: a UDP socket on the discovery port that
 * answers queries at once and announces the node at start and every
 * interval. Datagrams that do not parse are counted and reported, never
 * trusted; answers are rate-limited and never larger than twice the query.
 */
#ifndef PROTO_BEACON_H
#define PROTO_BEACON_H

#include <netinet/in.h>
#include <stdint.h>

#include "disco.h"

struct event_base;

typedef struct proto_beacon proto_beacon;

typedef struct proto_beacon_config {
	uint16_t port;          /* discovery port; 0 means PROTO_DISCO_PORT */
	const char *target;     /* override of the broadcast targets, or NULL */
	const char *target6;    /* of the IPv6 targets (proto_disco_targets6:
	                         * "off", an address, or NULL) */
	unsigned interval;      /* seconds between announcements; 0 means 30 */
	uint16_t tcp_port;      /* what the announcements advertise */
	const char *name;       /* node name; borrowed during _new */
	unsigned max_answers;   /* answers per second at most; 0 means 200 */
	const uint8_t *secret;  /* a private swarm's 32-byte key: datagrams
	                         * sealed, unsealed ones ignored; copied */
	int answer_only;        /* answer queries, never announce: a node
	                         * that holds files only for a while (a
	                         * fetch) need not tell everyone */
	int family;             /* AF_INET or AF_INET6: that family only
	                         * (announce, answer and listen); 0: both */
} proto_beacon_config;

typedef struct proto_beacon_cbs {
	/* 1 when the node has the file id (a query for it is answered). */
	int (*has)(const uint8_t id[PROTO_HASH_LEN], void *ctx);
	/* The node's file count, for announcements. */
	uint64_t (*nfiles)(void *ctx);
	/* Optional: another node announced itself. m borrows the datagram. */
	void (*on_announce)(const struct sockaddr *from,
	    const proto_disco_msg *m, void *ctx);
	/* Optional: a datagram was ignored; err is a PROTO_ERR_*. from is
	 * a sockaddr_in or, over IPv6, a sockaddr_in6. */
	void (*on_bad)(const struct sockaddr *from, int err, void *ctx);
} proto_beacon_cbs;

/* Binds the discovery port (shared with other nodes on the host), over
 * IPv6 too when there are IPv6 targets (a system without IPv6 leaves it
 * IPv4 only; cfg->family may keep it to one family, an AF_INET6 beacon
 * without IPv6 then doing nothing), announces at once and starts answering. cfg is copied (name and secret too); cbs is
 * copied; ctx is passed to every callback; base must outlive the beacon,
 * which the caller frees with proto_beacon_free. NULL with errno set when
 * the socket cannot be had (ENOMEM when out of memory); PROTO_ERR-style
 * failures of the targets set errno to EINVAL. */
proto_beacon *proto_beacon_new(struct event_base *base,
    const proto_beacon_config *cfg, const proto_beacon_cbs *cbs, void *ctx);

/* Stops and frees; NULL does nothing. */
void proto_beacon_free(proto_beacon *b);

/* Datagrams ignored so far, and queries answered. */
uint64_t proto_beacon_bad(const proto_beacon *b);
uint64_t proto_beacon_answered(const proto_beacon *b);

#endif
