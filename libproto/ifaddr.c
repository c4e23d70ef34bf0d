/*
 * The addresses of this host's interfaces, reachable ones first (ifaddr.h).
 */
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>

#include "error.h"
#include "ifaddr.h"

static int
is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(
	    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
}

static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return 0;
	if (b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.
		    s_addr == ((const struct sockaddr_in *)(const void *)b)->
		    sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->
	    sin6_addr, &((const struct sockaddr_in6 *)(const void *)b)->
	    sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* Appends the interfaces' addresses that are (or are not) loopback. */
static size_t
collect(const struct ifaddrs *ifs, int family, int loopback, unsigned port,
    struct sockaddr_storage *out, size_t n, size_t max)
{
	const struct ifaddrs *ifa;

	for (ifa = ifs; ifa != NULL && n < max; ifa = ifa->ifa_next) {
		const struct sockaddr *sa = ifa->ifa_addr;
		size_t i;

		if (sa == NULL || !(ifa->ifa_flags & IFF_UP) ||
		    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
		    (family != AF_UNSPEC && sa->sa_family != family) ||
		    is_loopback(sa) != loopback)
			continue;
		if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr))
			continue;
		for (i = 0; i < n && !same_addr(&out[i], sa); i++)
			;
		if (i < n)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		if (sa->sa_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)
			    (void *)&out[n];
			memcpy(sin, sa, sizeof(*sin));
			sin->sin_port = htons((uint16_t)port);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)
			    (void *)&out[n];
			memcpy(sin6, sa, sizeof(*sin6));
			sin6->sin6_port = htons((uint16_t)port);
		}
		n++;
	}
	return n;
}

int
proto_ifaddr_list(int family, unsigned port, struct sockaddr_storage *out,
    size_t max)
{
	struct ifaddrs *ifs;
	size_t n;

	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		return PROTO_ERR_INVALID;
	if (getifaddrs(&ifs) != 0)
		return PROTO_ERR_SYSTEM;
	n = collect(ifs, family, 0, port, out, 0, max);
	n = collect(ifs, family, 1, port, out, n, max);
	freeifaddrs(ifs);
	return (int)n;
}
