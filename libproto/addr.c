/*
 * Peer addresses: parsed once, compared and formatted here (addr.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "error.h"
#include "msg.h"

static struct sockaddr_in *
sin4(proto_addr *a)
{
	return (struct sockaddr_in *)(void *)&a->ss;
}

static struct sockaddr_in6 *
sin6(proto_addr *a)
{
	return (struct sockaddr_in6 *)(void *)&a->ss;
}

static const struct sockaddr_in *
csin4(const proto_addr *a)
{
	return (const struct sockaddr_in *)(const void *)&a->ss;
}

static const struct sockaddr_in6 *
csin6(const proto_addr *a)
{
	return (const struct sockaddr_in6 *)(const void *)&a->ss;
}

static void
format(proto_addr *a)
{
	char host[INET6_ADDRSTRLEN];

	proto_addr_host(a, host, sizeof(host));
	snprintf(a->text, sizeof(a->text), a->ss.ss_family == AF_INET6 ?
	    "[%s]:%u" : "%s:%u", host, proto_addr_port(a));
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes a.b.c.d: a node
 * that reached us over a dual-stack socket is the one its IPv4 text names. */
static void
unmap(proto_addr *a)
{
	struct sockaddr_in v4;

	if (a->ss.ss_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&sin6(a)->sin6_addr))
		return;
	memset(&v4, 0, sizeof(v4));
	v4.sin_family = AF_INET;
	v4.sin_port = sin6(a)->sin6_port;
	memcpy(&v4.sin_addr, &sin6(a)->sin6_addr.s6_addr[12], 4);
	memset(&a->ss, 0, sizeof(a->ss));
	memcpy(&a->ss, &v4, sizeof(v4));
	a->len = sizeof(v4);
}

int
proto_addr_from_sockaddr(proto_addr *a, const struct sockaddr *sa,
    socklen_t salen)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in))
		a->len = sizeof(struct sockaddr_in);
	else if (sa->sa_family == AF_INET6 &&
	    salen >= sizeof(struct sockaddr_in6))
		a->len = sizeof(struct sockaddr_in6);
	else
		return PROTO_ERR_INVALID;
	memcpy(&a->ss, sa, a->len);
	unmap(a);
	format(a);
	return 0;
}

/* host (NUL-terminated) as an IP address of either family. */
static int
numeric(proto_addr *a, const char *host, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, host, &sin4(a)->sin_addr) == 1) {
		sin4(a)->sin_family = AF_INET;
		sin4(a)->sin_port = htons(port);
		a->len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host, &sin6(a)->sin6_addr) == 1) {
		sin6(a)->sin6_family = AF_INET6;
		sin6(a)->sin6_port = htons(port);
		a->len = sizeof(struct sockaddr_in6);
	} else
		return PROTO_ERR_INVALID;
	unmap(a);
	format(a);
	return 0;
}

int
proto_addr_from_host(proto_addr *a, const char *host, size_t host_len,
    uint16_t port)
{
	char text[PROTO_HOST_MAX + 1];

	if (host_len == 0 || host_len > PROTO_HOST_MAX || port == 0 ||
	    memchr(host, '\0', host_len) != NULL)
		return PROTO_ERR_INVALID;
	memcpy(text, host, host_len);
	text[host_len] = '\0';
	return numeric(a, text, port);
}

static int
fail(const char **why, const char *text)
{
	if (why != NULL)
		*why = text;
	return PROTO_ERR_INVALID;
}

int
proto_addr_parse(proto_addr *a, const char *text, size_t len,
    uint16_t default_port, int flags, const char **why)
{
	char host[256];
	const char *port_text = NULL, *colon;
	unsigned long port = default_port;
	struct addrinfo hints, *res;
	int rc;

	if (len == 0 || len >= sizeof(host) || memchr(text, '\0', len))
		return fail(why, "want HOST:PORT");
	memcpy(host, text, len);
	host[len] = '\0';
	if (host[0] == '[') {
		char *close = strchr(host, ']');
		if (close == NULL || close == host + 1)
			return fail(why, "want HOST:PORT");
		*close = '\0';
		if (close[1] == ':')
			port_text = close + 2;
		else if (close[1] != '\0')
			return fail(why, "want HOST:PORT");
		memmove(host, host + 1, strlen(host + 1) + 1);
	} else if ((colon = strrchr(host, ':')) != NULL) {
		/* Two colons or more without brackets: an IPv6 address alone. */
		if (strchr(host, ':') == colon) {
			host[colon - host] = '\0';
			port_text = host + (colon - host) + 1;
		}
	}
	if (host[0] == '\0')
		return fail(why, "want HOST:PORT");
	if (port_text != NULL) {
		char *end;
		errno = 0;
		port = isdigit((unsigned char)port_text[0]) ?
		    strtoul(port_text, &end, 10) : 0;
		if (port == 0 || port > 65535 || *end != '\0' || errno)
			return fail(why, "port must be from 1 to 65535");
	} else if (default_port == 0)
		return fail(why, "want HOST:PORT");
	if (numeric(a, host, (uint16_t)port) == 0)
		return 0;
	if (!(flags & PROTO_ADDR_RESOLVE))
		return fail(why, "not an IP address");
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0)
		return fail(why, gai_strerror(rc));
	rc = proto_addr_from_sockaddr(a, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (rc != 0)
		return fail(why, "not an IP address");
	proto_addr_set_port(a, (uint16_t)port);
	return 0;
}

int
proto_addr_same_host(const proto_addr *a, const proto_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	if (a->ss.ss_family == AF_INET)
		return csin4(a)->sin_addr.s_addr == csin4(b)->sin_addr.s_addr;
	return memcmp(&csin6(a)->sin6_addr, &csin6(b)->sin6_addr,
	    sizeof(struct in6_addr)) == 0 &&
	    csin6(a)->sin6_scope_id == csin6(b)->sin6_scope_id;
}

int
proto_addr_same_site(const proto_addr *a, const proto_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	if (a->ss.ss_family == AF_INET)
		return proto_addr_same_host(a, b);
	return memcmp(&csin6(a)->sin6_addr, &csin6(b)->sin6_addr, 8) == 0;
}

int
proto_addr_equal(const proto_addr *a, const proto_addr *b)
{
	return proto_addr_same_host(a, b) &&
	    proto_addr_port(a) == proto_addr_port(b);
}

const char *
proto_addr_text(const proto_addr *a)
{
	return a->text;
}

void
proto_addr_host(const proto_addr *a, char *out, size_t outlen)
{
	const void *raw = a->ss.ss_family == AF_INET6 ?
	    (const void *)&csin6(a)->sin6_addr : (const void *)&csin4(a)->sin_addr;

	if (inet_ntop(a->ss.ss_family, raw, out, (socklen_t)outlen) == NULL &&
	    outlen > 0)
		snprintf(out, outlen, "?");
}

uint16_t
proto_addr_port(const proto_addr *a)
{
	return ntohs(a->ss.ss_family == AF_INET6 ? csin6(a)->sin6_port :
	    csin4(a)->sin_port);
}

void
proto_addr_set_port(proto_addr *a, uint16_t port)
{
	if (a->ss.ss_family == AF_INET6)
		sin6(a)->sin6_port = htons(port);
	else
		sin4(a)->sin_port = htons(port);
	format(a);
}

void
proto_addr_set_pin(proto_addr *a, const uint8_t *pin)
{
	a->has_pin = pin != NULL;
	if (pin != NULL)
		memcpy(a->pin, pin, PROTO_IDENTITY_LEN);
	else
		memset(a->pin, 0, PROTO_IDENTITY_LEN);
}

int
proto_addr_is_loopback(const proto_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return (ntohl(csin4(a)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&csin6(a)->sin6_addr);
}

int
proto_addr_is_any(const proto_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return csin4(a)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&csin6(a)->sin6_addr);
}
