/* Names for the PROTO_ERR_* codes. */
#include "error.h"

const char *
proto_strerror(int err)
{
	switch (err) {
	case PROTO_OK: return "success";
	case PROTO_ERR_NOMEM: return "out of memory";
	case PROTO_ERR_MALFORMED: return "malformed data";
	case PROTO_ERR_TOO_BIG: return "length or count over its limit";
	case PROTO_ERR_VERSION: return "unsupported protocol version";
	case PROTO_ERR_MISMATCH: return "hash mismatch";
	case PROTO_ERR_INVALID: return "invalid argument";
	case PROTO_ERR_SYSTEM: return "system error";
	case PROTO_ERR_CRYPTO: return "cryptographic library error";
	case PROTO_ERR_CLOSED: return "connection closed by peer";
	case PROTO_ERR_TIMEOUT: return "timed out";
	case PROTO_ERR_TRUNCATED: return "truncated data";
	case PROTO_ERR_TLS: return "TLS failed";
	case PROTO_ERR_IDENTITY: return "peer identity is not the one expected";
	case PROTO_ERR_AUTH: return "peer is not in this private swarm";
	case PROTO_ERR_REFUSED: return "refused by peer";
	case PROTO_ERR_STALE: return "stale or replayed";
	case PROTO_ERR_LIMITED: return "over its rate limit";
	case PROTO_ERR_OFF_LINK: return "not from the link";
	}
	return "unknown error";
}
