/*
 * The bounded table of peers a node knows and passes on in PEERS_REPLY
 * (docs/PROTOCOL.md section 4, "The peer table"). One entry per address
 * where a node listens; an entry that came with a node's signed record
 * names that node's identity (its address is pinned to it) and is passed
 * on with the record. Nothing anyone says fills it: at most
 * PROTO_PEERS_PER_HOST entries share one host (an IPv4 address, an IPv6
 * /64), hearsay never pushes out a node seen first-hand, an entry not seen
 * for PROTO_PEERS_EXPIRY seconds goes, and hearsay heard again is not seen
 * again: only a connection, or the node's own newer record, refreshes it.
 * What is only heard and unsigned (an announcement, an old peer's PEERS
 * entry) is kept but not passed on until a connection there shows a node.
 */
#ifndef PROTO_PEERS_H
#define PROTO_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

#include "addr.h"
#include "msg.h"
#include "record.h"

#define PROTO_PEER_TABLE_MAX 256u
#define PROTO_PEERS_PER_HOST 4u   /* entries at one host, but for nodes of
                                   * this host seen first-hand */
#define PROTO_PEERS_EXPIRY 1800   /* seconds an entry outlives its last
                                   * sighting */
#define PROTO_PEER_IDS_MAX 8u     /* content ids kept per entry */

typedef struct proto_known_peer {
	proto_addr addr;   /* where it listens; pinned to the identity of
	                    * its record, when it has one */
	char host[PROTO_HOST_MAX + 1]; /* addr's IP address as text */
	time_t seen;       /* first-hand: the last sighting; hearsay: when
	                    * first heard */
	int checked;       /* first-hand: a node answered there */
	int has_seen_id;   /* ... and showed this identity (TLS) */
	uint8_t seen_id[PROTO_IDENTITY_LEN];
	uint8_t record[PROTO_RECORD_MAX]; /* its signed record, as received */
	size_t record_len; /* 0: none */
	uint64_t seq, exp, flags; /* the record's */
	uint8_t ids[PROTO_PEER_IDS_MAX][PROTO_HASH_LEN]; /* content ids it
	                    * holds, most recently learned first */
	size_t nids;
} proto_known_peer;

typedef struct proto_peer_table {
	proto_known_peer peers[PROTO_PEER_TABLE_MAX];
	size_t count;
} proto_peer_table;

/* Empties t, the caller's (a plain struct: nothing to free). */
void proto_peers_init(proto_peer_table *t);

/*
 * A node answered at a (IPv4 or IPv6 with a port; its pin is ignored): a
 * connection there, or from there with a listen port, completed its
 * handshake. peer_id is the identity it showed (TLS), or NULL without
 * TLS. rec (rec_len bytes, or NULL) is the record it sent of itself: kept
 * when it verifies, lists a, names peer_id (when given) and is not older
 * than the one kept; otherwise the entry is unsigned. All borrowed for
 * the call. The entry is seen now. 0; PROTO_ERR_INVALID for an address
 * that is no place to listen (port 0, a wildcard, another family);
 * PROTO_ERR_TOO_BIG when no entry may make room (see the file's top).
 */
int proto_peers_add(proto_peer_table *t, const proto_addr *a,
    const uint8_t *peer_id, const uint8_t *rec, size_t rec_len);

/*
 * Someone said a node listens at a: an announcement (rec NULL) or a PEERS
 * entry, maybe with the node's record (kept as proto_peers_add says,
 * without a peer_id). Hearsay heard again is not seen again; a newer
 * record is kept. An unsigned entry is not passed on until
 * proto_peers_add checks it, and makes room only by another unchecked
 * one. Returns 1 when a is unchecked now (worth a connection to check
 * it), 0 when it was checked, PROTO_ERR_INVALID, or PROTO_ERR_TOO_BIG
 * when there is no room.
 */
int proto_peers_heard(proto_peer_table *t, const proto_addr *a,
    const uint8_t *rec, size_t rec_len);

/* The node at a (an entry there, checked or not) holds or fetches the
 * content id: noted first among at most PROTO_PEER_IDS_MAX. 0, or
 * PROTO_ERR_INVALID when there is no entry at a. */
int proto_peers_holds(proto_peer_table *t, const proto_addr *a,
    const uint8_t id[PROTO_HASH_LEN]);

/* Drops the entries not seen for PROTO_PEERS_EXPIRY seconds before now,
 * and the records expired by now (their entries stay, unsigned). The
 * count of entries dropped. */
size_t proto_peers_expire(proto_peer_table *t, time_t now);

/* The entry at a (pins aside), owned by t and valid until t next
 * changes, or NULL. */
const proto_known_peer *proto_peers_find(const proto_peer_table *t,
    const proto_addr *a);

/*
 * Fills out (at most max entries) with what may be passed on: entries
 * checked first-hand or signed, not expired, leaving out skip (the asker;
 * NULL: none). With id (a content id, or NULL), the entries known to hold
 * it come first; within each part, a uniform random sample (random()),
 * so that askers are not all given the same few peers. Each
 * entry borrows its host and record from t, valid until t next changes.
 * Returns the count.
 */
size_t proto_peers_list(const proto_peer_table *t, proto_peer_entry *out,
    size_t max, const proto_addr *skip, const uint8_t *id);

/* The address of sa (IPv4 or IPv6) as text into host (at least
 * PROTO_HOST_MAX + 1 bytes, which an IPv6 address fits) and its port into
 * *port. PROTO_ERR_INVALID for another family, host then "?". */
int proto_peers_host_port(const struct sockaddr *sa, char *host,
    uint16_t *port);

#endif
