/*
 * The addresses of this host's interfaces: what a node listening on a
 * wildcard address (0.0.0.0 or ::) can be reached at, for telling its user
 * and, later, its peers. 0.0.0.0 itself is never one of them.
 */
#ifndef PROTO_IFADDR_H
#define PROTO_IFADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Fills out (at most max entries) with the addresses of the interfaces that
 * are up, of family (AF_INET, AF_INET6, or AF_UNSPEC for both), each with
 * port (host order) set. IPv6 link-local addresses are left out: they need
 * an interface name to be of use. Addresses other machines can reach come
 * first, loopback last, each group in the kernel's order; an address is
 * listed once. Returns the count (0 when the host has none), or
 * PROTO_ERR_SYSTEM with errno set when the interfaces cannot be read, or
 * PROTO_ERR_INVALID for another family. Nothing is allocated that outlives
 * the call. */
int proto_ifaddr_list(int family, unsigned port, struct sockaddr_storage *out,
    size_t max);

#endif
