/*
 * Values from the command line, the environment and the configuration
 * file, checked whole and in range: numbers, chunk sizes, rates, content
 * ids, HOST:PORT and bind addresses. A bad value ends the tool with exit 2
 * and a message naming what it was for and the value itself.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"
#include "tool.h"

uint64_t
tool_parse_number(const char *text, uint64_t min, uint64_t max,
    const char *what)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (!isdigit((unsigned char)text[0]))
		tool_die(2, "%s '%s': not a number", what, text);
	v = strtoull(text, &end, 10);
	if (*end != '\0')
		tool_die(2, "%s '%s': not a number", what, text);
	if (errno == ERANGE || v < min || v > max)
		tool_die(2, "%s '%s': must be from %llu to %llu", what, text,
		    (unsigned long long)min, (unsigned long long)max);
	return v;
}

size_t
tool_parse_chunk_size(const char *text, const char *what)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = isdigit((unsigned char)text[0]) ? strtoull(text, &end, 10) : 0;
	if (v != 0 && errno == 0) {
		if ((*end == 'K' || *end == 'k') && end[1] == '\0' &&
		    v <= (1ull << 40))
			v <<= 10;
		else if ((*end == 'M' || *end == 'm') && end[1] == '\0' &&
		    v <= (1ull << 30))
			v <<= 20;
		else if (*end != '\0')
			v = 0;
	}
	if (v == 0 || v > PROTO_CHUNK_MAX ||
	    !proto_chunk_size_allowed((size_t)v))
		tool_die(2, "%s '%s': must be a power of two from 16K to 4M",
		    what, text);
	return (size_t)v;
}

int
tool_rate_parse(const char *text, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	errno = 0;
	if (!isdigit((unsigned char)text[0]))
		return -1;
	v = strtoull(text, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		const char *units = "KMG", *u = strchr(units,
		    toupper((unsigned char)*end));
		if (u == NULL || *u == '\0' || end[1] != '\0')
			return -1;
		shift = 10 * (unsigned)(u - units + 1);
	}
	if (v > (1ull << 40) >> shift)
		return -1;
	v <<= shift;
	if (v != 0 && v < 1024)
		return -1;
	*out = v;
	return 0;
}

uint64_t
tool_parse_rate(const char *text, const char *what)
{
	uint64_t v;

	if (tool_rate_parse(text, &v) != 0)
		tool_die(2, "%s '%s': want bytes per second from 1K to 1T, with "
		    "K, M or G, or 0 for no limit", what, text);
	return v;
}

void
tool_parse_id(const char *text, uint8_t id[PROTO_HASH_LEN])
{
	if (proto_id_parse(text, id) != 0) {
		char shown[80];
		proto_msg_printable(shown, sizeof(shown), text, strlen(text));
		tool_die(2, "malformed content id '%s'", shown);
	}
}

int
tool_resolve(const char *hostport, proto_addr *a, const char **why)
{
	return proto_addr_parse(a, hostport, strlen(hostport), 0,
	    PROTO_ADDR_RESOLVE, why) == 0 ? 0 : -1;
}

void
tool_parse_peer(const char *what, const char *arg, int pin_ok, proto_addr *a)
{
	proto_addr unused;
	uint8_t pin[PROTO_IDENTITY_LEN];
	const char *addr, *why;
	int has_pin = 0;

	addr = pin_ok ? tool_tls_split_pin(arg, pin, &has_pin) : arg;
	if (addr == NULL)
		tool_die(2, "%s '%s': the identity before '@' must be %d hex "
		    "digits", what, arg, PROTO_IDENTITY_HEX_LEN);
	if (a == NULL)
		a = &unused;
	/* IDENTITY@relay:HOST:PORT: the node IDENTITY, through the relay at
	 * HOST:PORT. */
	if (strncmp(addr, "relay:", 6) == 0 && strpbrk(addr + 6, ":[") != NULL) {
		if (!has_pin)
			tool_die(2, "%s '%s': a node reached through a relay is "
			    "named by its identity: IDENTITY@relay:HOST:PORT",
			    what, arg);
		if (tool_resolve(addr + 6, a, &why) != 0)
			tool_die(2, "%s '%s': %s", what, arg, why);
		proto_addr_set_pin(a, pin);
		a->relayed = 1;
		return;
	}
	/* A host alone, or [IPv6] alone, means the default port. */
	size_t n = strlen(addr);
	if (n > 0 && n < 256 && (addr[0] == '[' ? addr[n - 1] == ']' :
	    strchr(addr, ':') == NULL)) {
		char withport[300];

		snprintf(withport, sizeof(withport), "%s:%u", addr,
		    TOOL_DEFAULT_PORT);
		if (tool_resolve(withport, a, &why) != 0)
			tool_die(2, "%s '%s': %s", what, arg, why);
	} else if (tool_resolve(addr, a, &why) != 0)
		tool_die(2, "%s '%s': %s", what, arg, why);
	proto_addr_set_pin(a, has_pin ? pin : NULL);
}

void
tool_bind_address(const char *bind_addr, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *len)
{
	proto_addr a;
	const char *why;

	int v6 = strchr(bind_addr, ':') != NULL;
	char hostport[300];

	/* A port from 1 is wanted: put the real one in after. */
	snprintf(hostport, sizeof(hostport), "%s%s%s:1", v6 ? "[" : "",
	    bind_addr, v6 ? "]" : "");
	if (tool_resolve(hostport, &a, &why) != 0)
		tool_die(2, "bind address '%s': %s", bind_addr, why);
	proto_addr_set_port(&a, port);
	*ss = a.ss;
	*len = a.len;
}
