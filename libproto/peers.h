/*
 * A bounded table of peers a node has heard of (from bootstrap peers, peer
 * exchange, announcements), for passing on to others. What a datagram says
 * is only heard: it is passed on once a connection to it has shown a node
 * there, so a forged or replayed announcement plants nothing in others'
 * tables.
 */
#ifndef PROTO_PEERS_H
#define PROTO_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

#include "msg.h"

#define PROTO_PEER_TABLE_MAX 256u

typedef struct proto_peer_table {
	struct proto_known_peer {
		char host[PROTO_HOST_MAX + 1];
		uint16_t port;
		time_t seen;
		int checked;     /* a node answered there: passed on */
	} peers[PROTO_PEER_TABLE_MAX];
	size_t count;
} proto_peer_table;

/* Empties t, the caller's (a plain struct: nothing to free). */
void proto_peers_init(proto_peer_table *t);

/* Notes host:port as seen now, and checked; host (not NUL-terminated) is
 * copied. host must be an IP address as text, at most PROTO_HOST_MAX
 * bytes; others are ignored (returns PROTO_ERR_INVALID, t unchanged).
 * Returns 0 otherwise. When full, the entry heard but unchecked longest ago
 * makes room, else the entry seen longest ago. */
int proto_peers_add(proto_peer_table *t, const char *host, size_t host_len,
    uint16_t port);

/* As proto_peers_add, for host:port only heard of (an announcement): kept
 * but not listed until proto_peers_add checks it. It makes room only by
 * an unchecked entry, never a checked one. Returns 1 when host:port is
 * unchecked now (worth a connection to check it), 0 when it was checked,
 * or PROTO_ERR_INVALID, or PROTO_ERR_TOO_BIG when no room. */
int proto_peers_heard(proto_peer_table *t, const char *host,
    size_t host_len, uint16_t port);

/* The address of sa (IPv4 or IPv6) as text into host (at least
 * PROTO_HOST_MAX + 1 bytes, which an IPv6 address fits) and its port into
 * *port: the form the table keeps. PROTO_ERR_INVALID for another family,
 * host then "?". */
int proto_peers_host_port(const struct sockaddr *sa, char *host,
    uint16_t *port);

/* Fills out (at most max entries, most recently seen first) with checked
 * entries that borrow from t, leaving out skip_host:skip_port (the asker).
 * Returns the count. */
size_t proto_peers_list(const proto_peer_table *t, proto_peer_entry *out,
    size_t max, const char *skip_host, uint16_t skip_port);

#endif
