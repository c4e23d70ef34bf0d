/*
 * Peer records (docs/PROTOCOL.md section 4, "Peer records"): what a node
 * says about itself (its key, where it listens, its flags), signed with
 * its Ed25519 identity key, so that others can pass it on and nobody on
 * the way can change it or make one in its name. The identity a record
 * names is derived from the key it carries, never stated: a record cannot
 * claim another node's identity. A record is bounded in size, carries a
 * sequence number (the highest wins) and expires.
 */
#ifndef PROTO_RECORD_H
#define PROTO_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "identity.h"

#define PROTO_RECORD_MAX 1024u       /* bytes of a whole record */
#define PROTO_RECORD_ADDRS_MAX 8u    /* addresses in one */
#define PROTO_RECORD_SKEW 600u       /* seconds of clock difference
                                      * forgiven either way */
#define PROTO_RECORD_LIFETIME_MAX 86400u /* exp at most this far ahead
                                      * (plus the skew) */

/* Flags: what the node says it is. Unknown bits are kept and ignored. */
#define PROTO_RECORD_SEED 1u         /* it shares whole files */
#define PROTO_RECORD_REACHABLE 2u    /* it accepts connections */
#define PROTO_RECORD_RELAY_ONLY 4u   /* reached through a relay only */

/* The signature's domain: these bytes, then one zero byte, then the body. */
#define PROTO_RECORD_DOMAIN "mini-p2p peer record v1"

typedef struct proto_record {
	uint8_t key[PROTO_KEY_LEN];     /* the signer's Ed25519 public key */
	uint8_t id[PROTO_IDENTITY_LEN]; /* its identity, derived from key */
	proto_addr addrs[PROTO_RECORD_ADDRS_MAX]; /* where it listens; no
	                                 * pins */
	size_t naddrs;
	uint64_t seq;                   /* higher is newer */
	uint64_t exp;                   /* seconds since 1970, UTC */
	uint64_t flags;                 /* PROTO_RECORD_* */
} proto_record;

/*
 * Makes and signs the record of id saying what r says: its addrs (naddrs
 * of them, IPv4 or IPv6 with a port; pins ignored), seq, exp and flags.
 * r->key and r->id are set from id; the rest of r is only read. The
 * record goes into out (the caller's, PROTO_RECORD_MAX bytes) and its
 * length into *len. 0; PROTO_ERR_TOO_BIG for more than
 * PROTO_RECORD_ADDRS_MAX addresses; PROTO_ERR_INVALID for an address
 * without a port or of another family; PROTO_ERR_CRYPTO;
 * PROTO_ERR_NOMEM. out and *len are set only on success. id is borrowed
 * for the call.
 */
int proto_record_sign(proto_record *r, const proto_identity *id,
    uint8_t out[PROTO_RECORD_MAX], size_t *len);

/*
 * Decodes the record in the len bytes at buf (from a peer: anything) and
 * checks it at time now (seconds since 1970): its shape, its expiry, then
 * its signature. 0 with *out filled (addresses without pins); otherwise
 * *out is unspecified and nothing is allocated:
 *   PROTO_ERR_TOO_BIG   len past PROTO_RECORD_MAX, more than
 *                       PROTO_RECORD_ADDRS_MAX addresses;
 *   PROTO_ERR_MALFORMED not a record as PROTOCOL.md defines it (a key
 *                       missing, twice, or of the wrong type; a host that
 *                       is not an IP address; bytes after it);
 *   PROTO_ERR_STALE     expired more than PROTO_RECORD_SKEW ago, or
 *                       expiring further ahead than
 *                       PROTO_RECORD_LIFETIME_MAX + PROTO_RECORD_SKEW;
 *   PROTO_ERR_MISMATCH  the signature is not the key's over this body.
 * buf is borrowed for the call.
 */
int proto_record_verify(const uint8_t *buf, size_t len, uint64_t now,
    proto_record *out);

/* 1 when a (its IP address and port; pins aside) is among r's addresses,
 * else 0. */
int proto_record_has_addr(const proto_record *r, const proto_addr *a);

/* How long this implementation's own records last, in seconds. */
#define PROTO_RECORD_LIFETIME 3600u

/* A node's own record, kept signed: a plain struct the caller keeps,
 * zeroed before the first proto_record_refresh. */
typedef struct proto_record_own {
	proto_record r;                 /* what it says */
	uint8_t buf[PROTO_RECORD_MAX];  /* the record itself ... */
	size_t len;                     /* ... 0 until first signed */
} proto_record_own;

/*
 * Keeps o signed by id, saying addrs (n of them; the first
 * PROTO_RECORD_ADDRS_MAX are taken) and flags. It is signed anew when it
 * never was, when what it says changed, or when less than half of
 * PROTO_RECORD_LIFETIME is left before its exp at now (seconds since
 * 1970): exp then is now + PROTO_RECORD_LIFETIME, and seq the wall clock
 * in milliseconds, or one more than the last seq if that is not more, so
 * that a node that restarts still goes up. 0 (o->buf and o->len hold the
 * record), or what proto_record_sign returned (o as it was). id and addrs
 * are borrowed for the call.
 */
int proto_record_refresh(proto_record_own *o, const proto_identity *id,
    const proto_addr *addrs, size_t n, uint64_t flags, uint64_t now);

#endif
