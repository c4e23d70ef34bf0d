/*
 * Share links: one line that carries what a fetch needs, so that the
 * receiver pastes it rather than typing a 64-digit id and an address:
 *
 *   p2p://ID[@ADDR[,ADDR]...][#IDENTITY]
 *
 * ID is the content id (a file's or a tree's), each ADDR an IP address
 * and port as proto_addr_text writes them (IPv6 in brackets), and
 * IDENTITY the sender's, to pin (docs/PROTOCOL.md section 12). A link is
 * what a user pasted: parsed strictly, every length bounded, and never a
 * name to look up.
 */
#ifndef PROTO_LINK_H
#define PROTO_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "hash.h"
#include "identity.h"

#define PROTO_LINK_SCHEME "p2p://"
#define PROTO_LINK_MAX 2048u      /* bytes of a whole link, NUL aside */
#define PROTO_LINK_ADDRS_MAX 16u  /* addresses in one link */

typedef struct proto_link {
	uint8_t id[PROTO_HASH_LEN];
	proto_addr addrs[PROTO_LINK_ADDRS_MAX]; /* pinned when has_identity */
	size_t naddrs;
	uint8_t identity[PROTO_IDENTITY_LEN];
	int has_identity;
} proto_link;

/* 1 when text (NUL-terminated) starts with the scheme, "p2p://": then it
 * is meant as a link, and proto_link_parse says whether it is one. */
int proto_link_is(const char *text);

/*
 * Parses text (NUL-terminated) into *l: the scheme, 64 hex digits of id,
 * then optionally '@' and 1 to PROTO_LINK_ADDRS_MAX comma-separated
 * addresses (IP addresses, never names), then optionally '#' and 64 hex
 * digits of identity, then the end. Hex digits in either case. Returns 0,
 * or PROTO_ERR_MALFORMED with *why (static text; may be NULL) naming what
 * is wrong and *where (may be NULL) the 1-based address it is about, or 0.
 * *l is unspecified after a failure.
 */
int proto_link_parse(const char *text, proto_link *l, const char **why,
    size_t *where);

/*
 * Writes l as a link into out (outlen bytes, the caller's; a NUL ends it),
 * with its first naddrs addresses and, when has_identity, its identity.
 * Returns 0, or PROTO_ERR_INVALID when it does not fit or l holds more
 * than PROTO_LINK_ADDRS_MAX addresses.
 */
int proto_link_format(const proto_link *l, char *out, size_t outlen);

#endif
