/*
 * One type for a peer's address: the socket address, its canonical text
 * and, optionally, the identity the peer must show. An address is parsed
 * (and, at the edge, resolved) once; below that it is compared and
 * formatted here and nowhere else, IPv4 and IPv6 alike. A proto_addr is a
 * plain value: the caller keeps it, copies it with =, and frees nothing.
 */
#ifndef PROTO_ADDR_H
#define PROTO_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "identity.h"

/* "[" + the longest IPv6 text (45) + "]:" + 5 digits + NUL, rounded up. */
#define PROTO_ADDR_TEXT_MAX 56u

typedef struct proto_addr {
	struct sockaddr_storage ss; /* AF_INET or AF_INET6, port set */
	socklen_t len;
	char text[PROTO_ADDR_TEXT_MAX]; /* "192.0.2.1:8080", "[2001:db8::1]:8080" */
	uint8_t pin[PROTO_IDENTITY_LEN]; /* the identity it must show ... */
	int has_pin;                     /* ... when this is 1 */
	int relayed; /* 1: ss is a relay's, and pin the node reached through
	              * it (PROTOCOL.md section 13) */
} proto_addr;

/* Flags of proto_addr_parse. */
#define PROTO_ADDR_NUMERIC 0 /* an IP address only: what peers may say */
#define PROTO_ADDR_RESOLVE 1 /* a host name is looked up (getaddrinfo):
                              * for what a user typed, never for what a
                              * peer said */

/*
 * Parses text (len bytes, no NUL needed) as HOST:PORT, [IPV6]:PORT, or,
 * when default_port is not 0, HOST or [IPV6] alone meaning that port. HOST
 * is an IPv4 or IPv6 address, or with PROTO_ADDR_RESOLVE also a name (the
 * first address it resolves to is taken). An IPv4-mapped IPv6 address
 * becomes the IPv4 address, so one node has one spelling. The pin is
 * cleared.
 * Returns 0, or PROTO_ERR_INVALID with *why (static text, may be NULL) set:
 * "want HOST:PORT", "port must be from 1 to 65535", "not an IP address",
 * or the resolver's words. *a is unspecified after a failure.
 */
int proto_addr_parse(proto_addr *a, const char *text, size_t len,
    uint16_t default_port, int flags, const char **why);

/* The address in sa (salen bytes; AF_INET or AF_INET6, IPv4-mapped made
 * IPv4), port included; pin cleared. 0, or PROTO_ERR_INVALID for another
 * family or a short salen. */
int proto_addr_from_sockaddr(proto_addr *a, const struct sockaddr *sa,
    socklen_t salen);

/* host (host_len bytes: an IP address as text, never a name) and port, as a
 * peer states them in PEERS. 0, or PROTO_ERR_INVALID (port 0, a name, a
 * length past PROTO_HOST_MAX, a NUL inside). */
int proto_addr_from_host(proto_addr *a, const char *host, size_t host_len,
    uint16_t port);

/* 1 when a and b are the same IP address and port (pins aside). */
int proto_addr_equal(const proto_addr *a, const proto_addr *b);

/* 1 when a and b are the same IP address, whatever the ports. */
int proto_addr_same_host(const proto_addr *a, const proto_addr *b);

/* 1 when a and b are one host for a per-host limit: the same IPv4
 * address, or the same IPv6 /64 (one machine has a whole /64 to use). */
int proto_addr_same_site(const proto_addr *a, const proto_addr *b);

/* The canonical HOST:PORT text; valid as long as *a is. */
const char *proto_addr_text(const proto_addr *a);

/* The IP address alone as text, without brackets, into out (outlen bytes,
 * the caller's; PROTO_ADDR_TEXT_MAX always fits); "?" when it does not. */
void proto_addr_host(const proto_addr *a, char *out, size_t outlen);

/* The port, in host order. */
uint16_t proto_addr_port(const proto_addr *a);

/* Sets the port, and the text with it. */
void proto_addr_set_port(proto_addr *a, uint16_t port);

/* Sets (pin not NULL, PROTO_IDENTITY_LEN bytes, copied) or clears the
 * identity the peer at a must show. */
void proto_addr_set_pin(proto_addr *a, const uint8_t *pin);

/* 1 for 127.0.0.0/8 and ::1. */
int proto_addr_is_loopback(const proto_addr *a);

/* 1 for 0.0.0.0 and ::. */
int proto_addr_is_any(const proto_addr *a);

#endif
