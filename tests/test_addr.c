/*
 * addr.c: one address type. Parsing at its edges (brackets, no port, port 0
 * and 65536, a name where only numbers may come, text past the buffer),
 * IPv4-mapped IPv6 made IPv4, one canonical text per address, equality
 * across spellings, and the pin.
 */
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "proto.h"
#include "tap.h"

static int
parse(proto_addr *a, const char *text, uint16_t def, int flags,
    const char **why)
{
	return proto_addr_parse(a, text, strlen(text), def, flags, why);
}

static void
test_parse_numeric(void)
{
	proto_addr a;
	const char *why = NULL;

	is_int(parse(&a, "192.0.2.1:8080", 0, 0, &why), 0, "IPv4:PORT parses");
	is_str(proto_addr_text(&a), "192.0.2.1:8080", "IPv4 text is as given");
	is_int(proto_addr_port(&a), 8080, "IPv4 port");
	is_int(a.ss.ss_family, AF_INET, "IPv4 family");
	is_int(a.len, sizeof(struct sockaddr_in), "IPv4 length");
	is_int(a.has_pin, 0, "no pin after a parse");

	is_int(parse(&a, "[2001:db8::1]:443", 0, 0, &why), 0,
	    "[IPv6]:PORT parses");
	is_str(proto_addr_text(&a), "[2001:db8::1]:443", "IPv6 text in brackets");
	is_int(a.ss.ss_family, AF_INET6, "IPv6 family");

	is_int(parse(&a, "[2001:DB8:0:0::1]:443", 0, 0, &why), 0,
	    "IPv6 spelt long and in capitals parses");
	is_str(proto_addr_text(&a), "[2001:db8::1]:443",
	    "... and is written the one canonical way");

	is_int(parse(&a, "[::ffff:192.0.2.7]:9", 0, 0, &why), 0,
	    "IPv4-mapped IPv6 parses");
	is_int(a.ss.ss_family, AF_INET, "... and becomes IPv4");
	is_str(proto_addr_text(&a), "192.0.2.7:9", "... written as IPv4");

	is_int(parse(&a, "10.0.0.1:1", 0, 0, &why), 0, "port 1: lowest");
	is_int(parse(&a, "10.0.0.1:65535", 0, 0, &why), 0, "port 65535: highest");
}

static void
test_parse_default_port(void)
{
	proto_addr a;
	const char *why = NULL;

	is_int(parse(&a, "10.0.0.1", 8080, 0, &why), 0,
	    "HOST alone with a default port");
	is_str(proto_addr_text(&a), "10.0.0.1:8080", "... takes the default");
	is_int(parse(&a, "[::1]", 8080, 0, &why), 0, "[IPv6] alone");
	is_str(proto_addr_text(&a), "[::1]:8080", "... takes the default");
	is_int(parse(&a, "2001:db8::5", 8080, 0, &why), 0,
	    "an IPv6 address without brackets or port");
	is_str(proto_addr_text(&a), "[2001:db8::5]:8080",
	    "... is the address, not HOST:PORT");
	is_int(parse(&a, "10.0.0.1", 0, 0, &why), PROTO_ERR_INVALID,
	    "HOST alone without a default port: refused");
	is_str(why, "want HOST:PORT", "... want HOST:PORT");
}

static void
test_parse_bad(void)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "", "want HOST:PORT" },
		{ ":8080", "want HOST:PORT" },
		{ "[]:8080", "want HOST:PORT" },
		{ "[::1]x", "want HOST:PORT" },
		{ "[::1", "want HOST:PORT" },
		{ "10.0.0.1:0", "port must be from 1 to 65535" },
		{ "10.0.0.1:65536", "port must be from 1 to 65535" },
		{ "10.0.0.1:", "port must be from 1 to 65535" },
		{ "10.0.0.1:-1", "port must be from 1 to 65535" },
		{ "10.0.0.1:80x", "port must be from 1 to 65535" },
		{ "10.0.0.1: 80", "port must be from 1 to 65535" },
		{ "localhost:80", "not an IP address" },
		{ "10.0.0.256:80", "not an IP address" },
	};
	proto_addr a;
	char longer[400];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;
		int rc = parse(&a, bad[i].text, 0, PROTO_ADDR_NUMERIC, &why);
		ok(rc == PROTO_ERR_INVALID && why != NULL &&
		    strcmp(why, bad[i].why) == 0, "'%s' refused: %s (got %d, %s)",
		    bad[i].text, bad[i].why, rc, why ? why : "no reason");
	}
	memset(longer, '1', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	is_int(parse(&a, longer, 0, 0, NULL), PROTO_ERR_INVALID,
	    "399 bytes: refused, and a NULL why is fine");
	is_int(proto_addr_parse(&a, "10.0.0.1:80\0:9", 14, 0, 0, NULL),
	    PROTO_ERR_INVALID, "a NUL inside the text: refused");
	is_int(proto_addr_parse(&a, "10.0.0.1:8080", 11, 0, 0, NULL), 0,
	    "len bounds the text: '10.0.0.1:80' of a longer buffer");
	is_int(proto_addr_port(&a), 80, "... port 80");
}

static void
test_resolve(void)
{
	proto_addr a;
	const char *why = NULL;

	/* localhost is in /etc/hosts on every machine the tests run on. */
	is_int(parse(&a, "localhost:7000", 0, PROTO_ADDR_RESOLVE, &why), 0,
	    "a name resolves with PROTO_ADDR_RESOLVE");
	ok(proto_addr_is_loopback(&a), "localhost is loopback (%s)",
	    proto_addr_text(&a));
	is_int(proto_addr_port(&a), 7000, "... with the port given");
}

static void
test_from(void)
{
	proto_addr a, b;
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;

	is_int(proto_addr_from_host(&a, "10.1.2.3", 8, 9000), 0,
	    "from host text and port");
	is_str(proto_addr_text(&a), "10.1.2.3:9000", "... text");
	is_int(proto_addr_from_host(&a, "example.org", 11, 9000),
	    PROTO_ERR_INVALID, "from a name: refused (peers give addresses)");
	is_int(proto_addr_from_host(&a, "10.1.2.3", 8, 0), PROTO_ERR_INVALID,
	    "port 0: refused");
	is_int(proto_addr_from_host(&a, "10.1.2.3\0junk", 13, 9),
	    PROTO_ERR_INVALID, "a NUL inside: refused");
	is_int(proto_addr_from_host(&a, "", 0, 9), PROTO_ERR_INVALID,
	    "empty: refused");

	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(5);
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &s6.sin6_addr);
	is_int(proto_addr_from_sockaddr(&a, (struct sockaddr *)&s6,
	    sizeof(s6)), 0, "from a mapped sockaddr_in6");
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_port = htons(5);
	inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr);
	is_int(proto_addr_from_sockaddr(&b, (struct sockaddr *)&s4,
	    sizeof(s4)), 0, "from a sockaddr_in");
	ok(proto_addr_equal(&a, &b),
	    "mapped and plain IPv4 are one address (%s, %s)",
	    proto_addr_text(&a), proto_addr_text(&b));
	is_int(proto_addr_from_sockaddr(&b, (struct sockaddr *)&s4,
	    sizeof(s4) - 1), PROTO_ERR_INVALID, "a short length: refused");
	s4.sin_family = AF_UNIX;
	is_int(proto_addr_from_sockaddr(&b, (struct sockaddr *)&s4,
	    sizeof(s4)), PROTO_ERR_INVALID, "another family: refused");
}

static void
test_compare(void)
{
	proto_addr a, b;
	char host[PROTO_ADDR_TEXT_MAX];

	parse(&a, "[2001:db8::1]:80", 0, 0, NULL);
	parse(&b, "[2001:0db8:0::1]:80", 0, 0, NULL);
	ok(proto_addr_equal(&a, &b), "two spellings of one IPv6 address: equal");
	proto_addr_set_port(&b, 81);
	ok(!proto_addr_equal(&a, &b), "another port: not equal");
	ok(proto_addr_same_host(&a, &b), "... but the same host");
	is_str(proto_addr_text(&b), "[2001:db8::1]:81",
	    "set_port rewrites the text");
	parse(&b, "10.0.0.1:80", 0, 0, NULL);
	ok(!proto_addr_same_host(&a, &b), "IPv4 and IPv6: not the same host");
	ok(!proto_addr_same_site(&a, &b), "IPv4 and IPv6: not the same site");
	parse(&b, "[2001:db8::ffff:1:2]:9", 0, 0, NULL);
	ok(!proto_addr_same_host(&a, &b), "another address in the /64: "
	    "not the same host");
	ok(proto_addr_same_site(&a, &b), "... but the same site");
	parse(&b, "[2001:db8:0:1::1]:80", 0, 0, NULL);
	ok(!proto_addr_same_site(&a, &b), "another /64: not the same site");
	parse(&a, "10.0.0.1:1", 0, 0, NULL);
	parse(&b, "10.0.0.2:1", 0, 0, NULL);
	ok(!proto_addr_same_site(&a, &b), "another IPv4 address: another site");
	parse(&b, "10.0.0.1:2", 0, 0, NULL);
	ok(proto_addr_same_site(&a, &b), "one IPv4 address: one site");
	parse(&a, "[2001:db8::1]:80", 0, 0, NULL);
	proto_addr_host(&a, host, sizeof(host));
	is_str(host, "2001:db8::1", "host text without brackets");

	parse(&a, "0.0.0.0:1", 0, 0, NULL);
	ok(proto_addr_is_any(&a), "0.0.0.0 is any");
	parse(&a, "[::]:1", 0, 0, NULL);
	ok(proto_addr_is_any(&a), ":: is any");
	ok(!proto_addr_is_loopback(&a), ":: is not loopback");
	parse(&a, "127.9.9.9:1", 0, 0, NULL);
	ok(proto_addr_is_loopback(&a), "127.9.9.9 is loopback");
	parse(&a, "[::1]:1", 0, 0, NULL);
	ok(proto_addr_is_loopback(&a), "::1 is loopback");
}

static void
test_pin(void)
{
	proto_addr a, b;
	uint8_t pin[PROTO_IDENTITY_LEN];

	memset(pin, 0x5a, sizeof(pin));
	parse(&a, "10.0.0.1:80", 0, 0, NULL);
	b = a;
	proto_addr_set_pin(&a, pin);
	ok(a.has_pin && memcmp(a.pin, pin, sizeof(pin)) == 0, "pin set");
	ok(proto_addr_equal(&a, &b), "a pin does not change the address");
	proto_addr_set_pin(&a, NULL);
	ok(!a.has_pin, "pin cleared");
}

int
main(void)
{
	test_parse_numeric();
	test_parse_default_port();
	test_parse_bad();
	test_resolve();
	test_from();
	test_compare();
	test_pin();
	return done_testing();
}
