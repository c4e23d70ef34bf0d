/* The length prefix and the structural check of a frame body. */
#include "check.h"
#include "error.h"
#include "frame.h"

void
proto_frame_put_len(uint8_t hdr[PROTO_FRAME_HEADER], uint32_t len)
{
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
}

int
proto_frame_get_len(const uint8_t hdr[PROTO_FRAME_HEADER], size_t max,
    uint32_t *len)
{
	uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];

	if (n > max)
		return PROTO_ERR_TOO_BIG;
	*len = n;
	return 0;
}

int
proto_frame_check_body(const uint8_t *body, size_t len)
{
	proto_check_limits lim;
	long n;

	proto_check_limits_init(&lim, len);
	n = proto_check_msgpack(body, len, &lim);
	if (n < 0)
		return (int)n;
	/* A complete body has all its bytes: "need more" means truncated. */
	if (n == 0 || (size_t)n != len)
		return PROTO_ERR_MALFORMED;
	return 0;
}

long
proto_frame_parse(const uint8_t *buf, size_t len, size_t max)
{
	uint32_t n;
	int rc;

	if (len < PROTO_FRAME_HEADER)
		return 0;
	if ((rc = proto_frame_get_len(buf, max, &n)) != 0)
		return rc;
	if (len - PROTO_FRAME_HEADER < n)
		return 0;
	if ((rc = proto_frame_check_body(buf + PROTO_FRAME_HEADER, n)) != 0)
		return rc;
	return (long)(PROTO_FRAME_HEADER + n);
}
