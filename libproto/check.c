/*
 * Walks msgpack without allocating: a fixed stack of "items left" counters,
 * one per nesting level. Every declared length and count is compared with
 * the bytes that could still follow before it is believed.
 */
#include "check.h"
#include "error.h"

void
proto_check_limits_init(proto_check_limits *lim, size_t max_bytes)
{
	lim->max_bytes = max_bytes;
	lim->max_depth = PROTO_CHECK_DEPTH;
	lim->max_objects = PROTO_CHECK_OBJECTS;
}

static uint64_t
be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* What the type byte b introduces. *lenbytes is the size of a length field
 * that follows it (0 when the length is in b); *fixed is the payload length
 * of a scalar, str or bin, or the item count of a container, when known from
 * b alone. */
enum kind { SCALAR, RAW, ARRAY, MAP, BAD };

static enum kind
classify(uint8_t b, unsigned *lenbytes, uint64_t *fixed)
{
	*lenbytes = 0;
	*fixed = 0;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return SCALAR;
	if ((b & 0xe0) == 0xa0) {
		*fixed = b & 0x1f;
		return RAW;
	}
	if ((b & 0xf0) == 0x90) {
		*fixed = b & 0x0f;
		return ARRAY;
	}
	if ((b & 0xf0) == 0x80) {
		*fixed = b & 0x0f;
		return MAP;
	}
	switch (b) {
	case 0xcc: case 0xd0: *fixed = 1; return SCALAR;
	case 0xcd: case 0xd1: *fixed = 2; return SCALAR;
	case 0xce: case 0xd2: case 0xca: *fixed = 4; return SCALAR;
	case 0xcf: case 0xd3: case 0xcb: *fixed = 8; return SCALAR;
	case 0xd9: case 0xc4: *lenbytes = 1; return RAW;
	case 0xda: case 0xc5: *lenbytes = 2; return RAW;
	case 0xdb: case 0xc6: *lenbytes = 4; return RAW;
	case 0xdc: *lenbytes = 2; return ARRAY;
	case 0xdd: *lenbytes = 4; return ARRAY;
	case 0xde: *lenbytes = 2; return MAP;
	case 0xdf: *lenbytes = 4; return MAP;
	}
	return BAD; /* 0xc1 and the ext family */
}

long
proto_check_msgpack(const uint8_t *buf, size_t len,
    const proto_check_limits *lim)
{
	uint64_t left[PROTO_CHECK_DEPTH + 1];
	uint64_t objects = 0;
	size_t off = 0, max = lim->max_bytes;
	unsigned depth = 0, max_depth = lim->max_depth;

	if (max_depth > PROTO_CHECK_DEPTH)
		max_depth = PROTO_CHECK_DEPTH;
	left[0] = 1;
	for (;;) {
		unsigned lenbytes;
		uint64_t n;
		enum kind k;

		while (left[depth] == 0) {
			if (depth == 0)
				return (long)off;
			depth--;
		}
		left[depth]--;
		if (++objects > lim->max_objects)
			return PROTO_ERR_TOO_BIG;
		if (off >= max)
			return PROTO_ERR_TOO_BIG;
		if (off >= len)
			return 0;
		k = classify(buf[off++], &lenbytes, &n);
		if (k == BAD)
			return PROTO_ERR_MALFORMED;
		if (lenbytes > 0) {
			if (lenbytes > max - off)
				return PROTO_ERR_TOO_BIG;
			if (lenbytes > len - off)
				return 0;
			n = be(buf + off, lenbytes);
			off += lenbytes;
		}
		switch (k) {
		case SCALAR:
		case RAW:
			if (n > max - off)
				return PROTO_ERR_TOO_BIG;
			if (n > len - off)
				return 0;
			off += n;
			break;
		case MAP:
			n *= 2;
			/* FALLTHROUGH */
		case ARRAY:
			/* Each item takes at least one byte. */
			if (n > max - off || objects + n > lim->max_objects)
				return PROTO_ERR_TOO_BIG;
			/* An empty container still counts as a level. */
			if (depth + 1 > max_depth)
				return PROTO_ERR_TOO_BIG;
			if (n > 0)
				left[++depth] = n;
			break;
		case BAD:
			return PROTO_ERR_MALFORMED;
		}
	}
}
