/*
 * LAN discovery datagrams (docs/PROTOCOL.md section 6): a QUERY asks who is
 * there, optionally for one content id; an ANNOUNCE says "a node listens on
 * this TCP port". Also the sockets and broadcast targets they travel on.
 */
#ifndef PROTO_DISCO_H
#define PROTO_DISCO_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hash.h"

#define PROTO_DISCO_PORT 9999
/* A query is padded to at least this many bytes and an answer is at most
 * PROTO_DISCO_ANSWER_MAX: an answer is never more than twice its query. */
#define PROTO_DISCO_QUERY_MIN 64u
#define PROTO_DISCO_ANSWER_MAX 128u
#define PROTO_DISCO_DATAGRAM_MAX 512u
#define PROTO_DISCO_NAME_MAX 48u

enum proto_disco_type {
	PROTO_DISCO_QUERY = 0,
	PROTO_DISCO_ANNOUNCE = 1,
};

typedef struct proto_disco_msg {
	unsigned type;
	uint32_t nonce;      /* QUERY: chosen by the asker; ANNOUNCE: echoed,
	                      * or 0 when unsolicited */
	const uint8_t *want; /* QUERY: a content id, or NULL for any node */
	uint16_t port;       /* ANNOUNCE: the node's TCP port */
	const char *name;    /* ANNOUNCE: node name, not NUL-terminated */
	size_t name_len;
	uint64_t nfiles;     /* ANNOUNCE: files shared */
	int stamped;         /* ANNOUNCE: time and addr are set (sent by
	                      * nodes since the stamp was added) */
	uint64_t time;       /* ANNOUNCE: the sender's clock, Unix seconds */
	uint8_t addr[16];    /* ANNOUNCE: the address it sends from, IPv4
	                      * (addr_len 4) or IPv6 (16) */
	size_t addr_len;     /* 4 or 16; 0 packs as 4 */
} proto_disco_msg;

/* How far an ANNOUNCE's time may be from the receiver's clock, either way,
 * for a private swarm's node to believe it. */
#define PROTO_DISCO_FRESH_SECS 120

/* Packs m into buf (cap bytes, the caller's); *len is the datagram's
 * length. Queries are padded to PROTO_DISCO_QUERY_MIN; a name is cut to
 * PROTO_DISCO_NAME_MAX. 0; PROTO_ERR_TOO_BIG when it does not fit cap;
 * PROTO_ERR_INVALID for an unknown type; PROTO_ERR_NOMEM. buf and *len are
 * written only on success. */
int proto_disco_pack(const proto_disco_msg *m, uint8_t *buf, size_t cap,
    size_t *len);

/* Unpacks a datagram. Pointers in m borrow from buf: valid while buf is
 * and unchanged. 0; PROTO_ERR_MALFORMED
 * for anything but a well-formed datagram of our magic and a known type,
 * PROTO_ERR_VERSION for another version, PROTO_ERR_TOO_BIG for an oversized
 * datagram or a query too short to answer. Allocates nothing. */
int proto_disco_unpack(const uint8_t *buf, size_t len, proto_disco_msg *m);

/*
 * Private swarms: a datagram is sealed with a tag of PROTO_DISCO_TAG_LEN
 * bytes appended, the first bytes of HMAC-SHA256(key, datagram), where key
 * is the swarm's 32-byte key (borrowed for the call). proto_disco_seal
 * appends it and adds it to *len (cap: buf's size): 0, PROTO_ERR_TOO_BIG
 * when it does not fit (buf unchanged) or PROTO_ERR_CRYPTO.
 * proto_disco_open checks it and takes it off *len: 0, or PROTO_ERR_MISMATCH
 * (another swarm, or none), PROTO_ERR_TRUNCATED (shorter than a tag) or
 * PROTO_ERR_CRYPTO, *len then unchanged.
 */
#define PROTO_DISCO_TAG_LEN 16u
int proto_disco_seal(uint8_t *buf, size_t *len, size_t cap,
    const uint8_t key[32]);
int proto_disco_open(const uint8_t *buf, size_t *len, const uint8_t key[32]);

/*
 * Whether an ANNOUNCE m that arrived from `from` at time now may be
 * believed. A sealed one (sealed set: a private swarm's, tag checked) must
 * be stamped, with addr the datagram's source address and time within
 * PROTO_DISCO_FRESH_SECS of now: the tag then proves a member said it there
 * and lately, so a copy replayed from elsewhere, or later, fails. An
 * unsealed one is believed as it is (anyone can forge one; old nodes send
 * them unstamped). 0, or PROTO_ERR_STALE.
 */
int proto_disco_check_announce(const proto_disco_msg *m,
    const struct sockaddr *from, time_t now, int sealed);

/* The source address a datagram to `to` leaves with (the routing table's
 * choice, which an ANNOUNCE claims in addr). 0, or PROTO_ERR_SYSTEM with
 * errno set. */
int proto_disco_source(const struct sockaddr_in *to, uint8_t addr[4]);

/*
 * Where discovery datagrams go: override ("A.B.C.D", e.g. 127.255.255.255)
 * when not NULL or empty, else the broadcast address of every IPv4 address
 * of an interface that is up and can broadcast (proto_disco_broadcast).
 * Fills at most max addresses with port set. Returns the count, or a
 * PROTO_ERR_*.
 */
int proto_disco_targets(const char *override, uint16_t port,
    struct sockaddr_in *out, size_t max);

/*
 * The broadcast address of an interface address addr/mask whose broadcast
 * address as the system shows it is brd (all in network byte order). A brd
 * that is set is the answer. Unset (0, or addr itself, as an address added
 * without one shows) it is computed: addr with every host bit set; for a
 * /31, which has no broadcast address (RFC 3021), the other address, the
 * link's only other host. 0 with *out set, or PROTO_ERR_INVALID for a /32:
 * nobody else is on its network.
 */
int proto_disco_broadcast(uint32_t addr, uint32_t mask, uint32_t brd,
    uint32_t *out);

/* A non-blocking UDP socket allowed to broadcast, bound to port on every
 * address (0: any free port). With shared set, other sockets may bind the
 * same port (several servers on one host) and all receive broadcasts.
 * Returns the descriptor, or PROTO_ERR_SYSTEM with errno set. */
int proto_disco_socket(uint16_t port, int shared);

/* ---- IPv6 (disco6.c) ---- */

/* The link-local multicast group of IPv6 discovery ("mp2p" in its last 32
 * bits), on the discovery port. */
#define PROTO_DISCO_GROUP6 "ff02::6d70:3270"

/* Where an IPv6 datagram goes (to: the group with the interface as scope
 * id, or a unicast address) and the address it leaves from (from: a
 * routable address of that interface; :: for the routing table's pick). */
typedef struct proto_disco_target6 {
	struct sockaddr_in6 to;
	struct in6_addr from;
} proto_disco_target6;

/*
 * The IPv6 targets. override6 "off": none. An IPv6 address: that unicast
 * address, or for a multicast one that group on each interface below. NULL
 * or empty: PROTO_DISCO_GROUP6 on each interface that is up, can multicast,
 * is not loopback and has a global or unique-local IPv6 address (the first
 * such address is the source), unless override4 (the IPv4 override) is set:
 * then none, so that whoever kept discovery on one host kept all of it.
 * At most max (one per interface), port set. The count, or a PROTO_ERR_*.
 */
int proto_disco_targets6(const char *override4, const char *override6,
    uint16_t port, proto_disco_target6 *out, size_t max);

/* A non-blocking IPv6-only UDP socket bound to port on every address (0:
 * any free port; shared as for proto_disco_socket), sending with hop limit
 * 255 (multicast and unicast, so a receiver can tell it came from the
 * link), its multicast looped back to the host's other nodes, having
 * joined the group of each multicast target of t[0..n), and set to report
 * each datagram's destination, interface and hop limit for
 * proto_disco_recv6. The descriptor, or PROTO_ERR_SYSTEM with errno set. */
int proto_disco_socket6(uint16_t port, int shared, const proto_disco_target6 *t,
    size_t n);

/* Sends buf (len bytes) to t->to from t->from (when set) without waiting.
 * 0, or PROTO_ERR_SYSTEM with errno set. */
int proto_disco_send6(int fd, const proto_disco_target6 *t, const void *buf,
    size_t len);

/* The address a datagram to t leaves from (t->from when set, else the
 * routing table's choice), for an ANNOUNCE's addr. 0, or PROTO_ERR_SYSTEM. */
int proto_disco_source6(const proto_disco_target6 *t, uint8_t addr[16]);

/*
 * Takes one datagram from fd (a proto_disco_socket6) into buf (cap bytes);
 * *len is its real length (more than cap when cut) and *from its source.
 * 0 when it came from the link (docs/PROTOCOL.md section 6): hop limit
 * 255, or sent to a link-scoped group, or from a link-local address, an
 * address of this host, or one within the prefix of an address of the
 * interface it arrived on. PROTO_ERR_OFF_LINK otherwise (*len and *from
 * set: drop it); PROTO_ERR_MALFORMED for a source that is not IPv6;
 * PROTO_ERR_SYSTEM with errno set (EAGAIN: nothing waits).
 */
int proto_disco_recv6(int fd, uint8_t *buf, size_t cap,
    struct sockaddr_in6 *from, size_t *len);

/* 1 when a is within net/mask, else 0. */
int proto_disco_prefix6(const struct in6_addr *a, const struct in6_addr *net,
    const struct in6_addr *mask);

#endif
