/*
 * link.c: share links. A link round-trips; each part's edges (the id one
 * digit short or long, a non-hex digit, 16 addresses and 17, an empty
 * address, a name where only IP addresses may come, a link past its
 * length) fail with the part named; the identity pins every address.
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "tap.h"

#define ID "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define IDENT "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static void
test_roundtrip(void)
{
	proto_link l;
	char out[PROTO_LINK_MAX + 1];
	const char *why = NULL;
	size_t where = 9;
	const char *text = "p2p://" ID "@10.0.0.1:8080,[2001:db8::1]:443#" IDENT;

	is_int(proto_link_parse(text, &l, &why, &where), 0, "a full link parses");
	is_int(where, 0, "... no address named");
	is_int(l.naddrs, 2, "... two addresses");
	is_str(proto_addr_text(&l.addrs[1]), "[2001:db8::1]:443", "... IPv6 kept");
	ok(l.has_identity && l.addrs[0].has_pin && l.addrs[1].has_pin &&
	    memcmp(l.addrs[1].pin, l.identity, PROTO_IDENTITY_LEN) == 0,
	    "... every address pinned to the identity");
	is_int(l.id[0], 0x00, "... id first byte");
	is_int(l.id[31], 0xff, "... id last byte");
	is_int(proto_link_format(&l, out, sizeof(out)), 0, "formats");
	is_str(out, text, "... the same bytes");
	is_int(proto_link_format(&l, out, strlen(text)), PROTO_ERR_INVALID,
	    "one byte short of room: refused");
	is_str(out, "", "... and nothing half written");

	is_int(proto_link_parse("p2p://" ID, &l, &why, NULL), 0,
	    "the id alone parses");
	ok(l.naddrs == 0 && !l.has_identity, "... no address, no identity");
	is_int(proto_link_format(&l, out, sizeof(out)), 0, "... formats");
	is_str(out, "p2p://" ID, "... as it was");
	is_int(proto_link_parse("p2p://" ID "#" IDENT, &l, &why, NULL), 0,
	    "id and identity, no address");
	is_int(proto_link_parse("p2p://" "00112233445566778899AABBCCDDEEFF"
	    "00112233445566778899aabbccddeeff@10.0.0.1:1", &l, &why, NULL), 0,
	    "capital hex digits");
}

static void
bad(const char *text, const char *want_why, size_t want_where,
    const char *name)
{
	proto_link l;
	const char *why = NULL;
	size_t where = 99;

	is_int(proto_link_parse(text, &l, &why, &where), PROTO_ERR_MALFORMED,
	    name);
	is_str(why, want_why, "... says why");
	is_int(where, want_where, "... names the address");
}

static void
test_bad(void)
{
	char many[PROTO_LINK_MAX + 64];
	size_t n;

	bad("http://" ID, "does not start with p2p://", 0, "another scheme");
	bad("p2p://" ID "0", "the content id must be 64 hex digits", 0,
	    "65 digits");
	bad("p2p://" "0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
	    "the content id must be 64 hex digits", 0, "63 digits");
	bad("p2p://" "g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
	    "the content id must be 64 hex digits", 0, "a g");
	bad("p2p://" ID "@", "no address after '@'", 0, "'@' and nothing");
	bad("p2p://" ID "@10.0.0.1:1,", "an empty address", 2, "a comma last");
	bad("p2p://" ID "@10.0.0.1:1,,10.0.0.2:2", "an empty address", 2,
	    "two commas");
	bad("p2p://" ID "@example.org:80", "not an IP address", 1,
	    "a name: never looked up");
	bad("p2p://" ID "@10.0.0.1:1,10.0.0.1", "want HOST:PORT", 2,
	    "no port");
	bad("p2p://" ID "@10.0.0.1:0", "port must be from 1 to 65535", 1,
	    "port 0");
	bad("p2p://" ID "@10.0.0.1:1#" IDENT "0",
	    "the identity after '#' must be 64 hex digits", 0, "identity long");
	bad("p2p://" ID "@10.0.0.1:1#",
	    "the identity after '#' must be 64 hex digits", 0, "'#' and nothing");
	bad("p2p://" ID "#" IDENT "@10.0.0.1:1",
	    "the identity after '#' must be 64 hex digits", 0, "'@' after '#'");

	/* 16 addresses: the most; 17: one too many. */
	n = (size_t)snprintf(many, sizeof(many), "p2p://" ID);
	for (int i = 0; i < 16; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "%c10.0.0.%d:1",
		    i ? ',' : '@', i + 1);
	{
		proto_link l;
		is_int(proto_link_parse(many, &l, NULL, NULL), 0, "16 addresses");
		is_int(l.naddrs, 16, "... all kept");
	}
	snprintf(many + n, sizeof(many) - n, ",10.0.0.99:1");
	bad(many, "more than 16 addresses", 17, "17 addresses");

	/* Past PROTO_LINK_MAX bytes, whatever follows. */
	memset(many, 'a', sizeof(many) - 1);
	memcpy(many, "p2p://", 6);
	many[PROTO_LINK_MAX + 1] = '\0';
	bad(many, "longer than 2048 bytes", 0, "2049 bytes");
}

int
main(void)
{
	test_roundtrip();
	test_bad();
	return done_testing();
}
