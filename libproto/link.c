/*
 * Share links (link.h): parsed by hand, byte by byte, since a link is
 * pasted from another machine and may be cut, doubled or edited: every
 * part is bounded and checked before it is used, and what is wrong is
 * named.
 */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "hash.h"
#include "link.h"

/* Exactly 2 * n hex digits in p's len bytes into out. 0, or -1. */
static int
parse_hex(const char *p, size_t len, uint8_t *out, size_t n)
{
	if (len != 2 * n || proto_hex_decode(p, out, n) != 0)
		return -1;
	return 0;
}

int
proto_link_is(const char *text)
{
	return strncmp(text, PROTO_LINK_SCHEME, strlen(PROTO_LINK_SCHEME)) == 0;
}

static int
fail(const char **why, const char *text)
{
	if (why != NULL)
		*why = text;
	return PROTO_ERR_MALFORMED;
}

/* The comma-separated addresses of p (len bytes) into l. */
static int
parse_addrs(const char *p, size_t len, proto_link *l, const char **why,
    size_t *where)
{
	const char *end = p + len;

	if (len == 0)
		return fail(why, "no address after '@'");
	while (p <= end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t n = (size_t)((comma ? comma : end) - p);
		const char *awhy = NULL;

		if (where != NULL)
			*where = l->naddrs + 1;
		if (l->naddrs == PROTO_LINK_ADDRS_MAX)
			return fail(why, "more than 16 addresses");
		if (n == 0)
			return fail(why, "an empty address");
		if (n >= PROTO_ADDR_TEXT_MAX)
			return fail(why, "an address too long");
		if (proto_addr_parse(&l->addrs[l->naddrs], p, n, 0,
		    PROTO_ADDR_NUMERIC, &awhy) != 0)
			return fail(why, awhy != NULL ? awhy :
			    "want HOST:PORT");
		l->naddrs++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if (where != NULL)
		*where = 0;
	return 0;
}

int
proto_link_parse(const char *text, proto_link *l, const char **why,
    size_t *where)
{
	size_t len = strnlen(text, PROTO_LINK_MAX + 1), slen;
	const char *p, *end, *at, *hash;
	int rc;

	if (where != NULL)
		*where = 0;
	memset(l, 0, sizeof(*l));
	if (!proto_link_is(text))
		return fail(why, "does not start with p2p://");
	if (len > PROTO_LINK_MAX)
		return fail(why, "longer than 2048 bytes");
	slen = strlen(PROTO_LINK_SCHEME);
	p = text + slen;
	end = text + len;
	hash = memchr(p, '#', (size_t)(end - p));
	at = memchr(p, '@', (size_t)((hash ? hash : end) - p));
	if (parse_hex(p, (size_t)((at ? at : hash ? hash : end) - p), l->id,
	    PROTO_HASH_LEN) != 0)
		return fail(why, "the content id must be 64 hex digits");
	if (at != NULL && (rc = parse_addrs(at + 1,
	    (size_t)((hash ? hash : end) - at - 1), l, why, where)) != 0)
		return rc;
	if (hash != NULL) {
		if (parse_hex(hash + 1, (size_t)(end - hash - 1), l->identity,
		    PROTO_IDENTITY_LEN) != 0)
			return fail(why, "the identity after '#' must be 64 "
			    "hex digits");
		l->has_identity = 1;
		for (size_t i = 0; i < l->naddrs; i++)
			proto_addr_set_pin(&l->addrs[i], l->identity);
	}
	return 0;
}

int
proto_link_format(const proto_link *l, char *out, size_t outlen)
{
	char hex[2 * PROTO_HASH_LEN + 1];
	size_t used;
	int n;

	if (l->naddrs > PROTO_LINK_ADDRS_MAX || outlen == 0)
		return PROTO_ERR_INVALID;
	proto_hex_encode(l->id, PROTO_HASH_LEN, hex);
	n = snprintf(out, outlen, "%s%s", PROTO_LINK_SCHEME, hex);
	for (size_t i = 0; n >= 0 && (size_t)n < outlen && i < l->naddrs;
	    i++) {
		used = (size_t)n;
		n = snprintf(out + used, outlen - used, "%c%s",
		    i == 0 ? '@' : ',', proto_addr_text(&l->addrs[i]));
		n = n < 0 ? n : n + (int)used;
	}
	if (n >= 0 && (size_t)n < outlen && l->has_identity) {
		used = (size_t)n;
		proto_hex_encode(l->identity, PROTO_IDENTITY_LEN, hex);
		n = snprintf(out + used, outlen - used, "#%s", hex);
		n = n < 0 ? n : n + (int)used;
	}
	if (n < 0 || (size_t)n >= outlen) {
		out[0] = '\0';
		return PROTO_ERR_INVALID;
	}
	return 0;
}
