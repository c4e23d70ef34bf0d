/*
 * What nodedht.c (the DHT source: the engine's threads, the queue, the
 * puts, the lookups) and nodedhtread.c (a value read: opened, verified,
 * kept once per signer, reported) share. Private to libproto.
 */
#ifndef PROTO_DHT_PRIVATE_H
#define PROTO_DHT_PRIVATE_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <event2/util.h>

#include "dht.h"
#include "node.h"
#include "peers.h"

struct pending {
	uint8_t key[PROTO_DHT_KEY_LEN];
	size_t len;
	uint8_t data[];
};

/* A node whose value was taken: its identity and where it says it is
 * (several nodes may share one identity: one user's, on two hosts). */
struct signer {
	uint8_t id[PROTO_IDENTITY_LEN];
	uint8_t where[8];
	uint64_t seq;
};

struct lookup {
	uint8_t key[PROTO_DHT_KEY_LEN];
	int node;               /* an identity's key: only it may sign */
	uint8_t identity[PROTO_IDENTITY_LEN];
	struct signer signers[PROTO_DHT_SIGNERS_MAX];
	size_t nsigners;
};

struct proto_dht {
	proto_node *node;
	const proto_dht_engine_ops *ops;
	void *engine;
	char boot[PROTO_DHT_BOOT_MAX][PROTO_ADDR_TEXT_MAX + 8];
	size_t nboot;
	uint16_t port;
	uint32_t network;
	int sealed;
	uint8_t secret[32];
	unsigned reput;
	int announce;
	/* from the engine's threads, under lock */
	pthread_mutex_t lock;
	struct pending *queue[PROTO_DHT_QUEUE_MAX];
	size_t nqueue;
	int wake[2];
	struct event *wake_ev, *tick_ev;
	/* the loop's */
	uint8_t (*announced)[PROTO_HASH_LEN];
	size_t nannounced;
	size_t scanned;         /* store entries looked at */
	time_t next_reput;
	proto_addr ext;         /* the node's external address at the last */
	unsigned ext_how;       /* ... round (proto_node_external) */
	struct lookup *lookups[PROTO_DHT_LOOKUPS_MAX];
	size_t nlookups;
	proto_dht_stats st;     /* values, oversized, queue_full: under lock */
};

/* nodedhtread.c: the lookup listening on key, or NULL. */
struct lookup *proto__dht_lookup_of(proto_dht *d,
    const uint8_t key[PROTO_DHT_KEY_LEN]);
/* One value off the queue, taken or counted. 1 when the node was freed
 * meanwhile (a watcher did it). */
int proto__dht_take(proto_dht *d, const struct pending *p);

#endif
