/*
 * Error codes shared by every libproto module. Functions return 0 (or a
 * non-negative count) on success and one of these negative values on failure.
 */
#ifndef PROTO_ERROR_H
#define PROTO_ERROR_H

enum {
	PROTO_OK = 0,
	PROTO_ERR_NOMEM = -1,      /* allocation failed */
	PROTO_ERR_MALFORMED = -2,  /* bytes are not a valid object or message */
	PROTO_ERR_TOO_BIG = -3,    /* a length or count exceeds its limit */
	PROTO_ERR_VERSION = -4,    /* peer speaks another protocol version */
	PROTO_ERR_MISMATCH = -5,   /* a hash or content id does not match */
	PROTO_ERR_INVALID = -6,    /* an argument is out of range */
	PROTO_ERR_SYSTEM = -7,     /* a system call failed; see errno */
	PROTO_ERR_CRYPTO = -8,     /* OpenSSL failed */
	PROTO_ERR_CLOSED = -9,     /* the peer closed the connection */
	PROTO_ERR_TIMEOUT = -10,   /* a deadline passed */
	PROTO_ERR_TRUNCATED = -11, /* input ended inside an object */
	PROTO_ERR_TLS = -12,       /* TLS failed: the handshake or a record */
	PROTO_ERR_IDENTITY = -13,  /* the peer is not the one pinned */
	PROTO_ERR_AUTH = -14,      /* the peer does not know the swarm's secret */
	PROTO_ERR_REFUSED = -15,   /* the peer refused us (an ERROR with rid 0) */
	PROTO_ERR_STALE = -16,     /* a datagram too old, or not from where it
	                            * says: a replay */
	PROTO_ERR_LIMITED = -17,   /* over a rate limit */
	PROTO_ERR_OFF_LINK = -18,  /* a link-scoped datagram from off the link */
};

/* A static, human-readable description of err; never NULL. */
const char *proto_strerror(int err);

#endif
