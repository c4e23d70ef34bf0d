/*
 * Discovery over IPv6: the datagrams of IPv4, sent to a link-local
 * multicast group on each interface that has an IPv6 address others can
 * reach, from that address, so that what a receiver sees as the source is
 * an address it can connect to and pass on (a link-local one needs its
 * interface named, and means nothing to another host).
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "disco.h"
#include "error.h"

/* A routable (global or unique-local) address of an interface that can
 * multicast. */
static int
usable(const struct ifaddrs *ifa)
{
	const struct sockaddr_in6 *a = (const void *)ifa->ifa_addr;

	return a != NULL && a->sin6_family == AF_INET6 &&
	    (ifa->ifa_flags & IFF_UP) && (ifa->ifa_flags & IFF_MULTICAST) &&
	    !(ifa->ifa_flags & IFF_LOOPBACK) &&
	    !IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr) &&
	    !IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) &&
	    !IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
}

int
proto_disco_targets6(const char *override4, const char *override6,
    uint16_t port, proto_disco_target6 *out, size_t max)
{
	struct in6_addr group;
	struct ifaddrs *ifs, *ifa;
	size_t n = 0;

	if (max == 0)
		return PROTO_ERR_INVALID;
	if (override6 == NULL || *override6 == '\0') {
		/* Who kept IPv4 discovery in one place kept all of it. */
		if (override4 != NULL && *override4 != '\0')
			return 0;
		override6 = PROTO_DISCO_GROUP6;
	}
	if (strcmp(override6, "off") == 0)
		return 0;
	if (inet_pton(AF_INET6, override6, &group) != 1)
		return PROTO_ERR_INVALID;
	if (!IN6_IS_ADDR_MULTICAST(&group)) {
		memset(&out[0], 0, sizeof(out[0]));
		out[0].to.sin6_family = AF_INET6;
		out[0].to.sin6_addr = group;
		out[0].to.sin6_port = htons(port);
		return 1;
	}
	if (getifaddrs(&ifs) != 0)
		return PROTO_ERR_SYSTEM;
	for (ifa = ifs; ifa != NULL && n < max; ifa = ifa->ifa_next) {
		unsigned idx;
		size_t i;

		if (!usable(ifa) || (idx = if_nametoindex(ifa->ifa_name)) == 0)
			continue;
		for (i = 0; i < n && out[i].to.sin6_scope_id != idx; i++)
			;
		if (i < n)
			continue; /* one target, one source, per interface */
		memset(&out[n], 0, sizeof(out[n]));
		out[n].to.sin6_family = AF_INET6;
		out[n].to.sin6_addr = group;
		out[n].to.sin6_port = htons(port);
		out[n].to.sin6_scope_id = idx;
		out[n].from = ((const struct sockaddr_in6 *)(const void *)
		    ifa->ifa_addr)->sin6_addr;
		n++;
	}
	freeifaddrs(ifs);
	return (int)n;
}

int
proto_disco_socket6(uint16_t port, int shared, const proto_disco_target6 *t,
    size_t n)
{
	struct sockaddr_in6 sin6;
	int fd, one = 1, hops = 255;

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return PROTO_ERR_SYSTEM;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops,
	    sizeof(hops)) != 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops,
	    sizeof(hops)) != 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one,
	    sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one,
	    sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one,
	    sizeof(one)) != 0 ||
	    (shared && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT,
	    &one, sizeof(one)) != 0)))
		goto fail;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_any;
	sin6.sin6_port = htons(port);
	if (bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct ipv6_mreq mr;

		if (!IN6_IS_ADDR_MULTICAST(&t[i].to.sin6_addr))
			continue;
		mr.ipv6mr_multiaddr = t[i].to.sin6_addr;
		mr.ipv6mr_interface = t[i].to.sin6_scope_id;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr,
		    sizeof(mr)) != 0 && errno != EADDRINUSE)
			goto fail;
	}
	return fd;
fail:
	{
		int err = errno;
		close(fd);
		errno = err;
	}
	return PROTO_ERR_SYSTEM;
}

int
proto_disco_send6(int fd, const proto_disco_target6 *t, const void *buf,
    size_t len)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	} ctl;
	struct iovec iov = { (void *)(uintptr_t)buf, len };
	struct msghdr msg;

	memset(&msg, 0, sizeof(msg));
	msg.msg_name = (void *)(uintptr_t)&t->to;
	msg.msg_namelen = sizeof(t->to);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (!IN6_IS_ADDR_UNSPECIFIED(&t->from)) {
		struct in6_pktinfo *pi;
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(*pi));
		pi = (struct in6_pktinfo *)(void *)CMSG_DATA(c);
		pi->ipi6_addr = t->from;
		pi->ipi6_ifindex = t->to.sin6_scope_id;
	}
	return sendmsg(fd, &msg, MSG_DONTWAIT) == (ssize_t)len ? 0 :
	    PROTO_ERR_SYSTEM;
}

int
proto_disco_source6(const proto_disco_target6 *t, uint8_t addr[16])
{
	struct sockaddr_in6 me;
	socklen_t len = sizeof(me);
	int fd, rc = 0;

	if (!IN6_IS_ADDR_UNSPECIFIED(&t->from)) {
		memcpy(addr, &t->from, 16);
		return 0;
	}
	/* A UDP connect sends nothing: it only asks the routing table. */
	if ((fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return PROTO_ERR_SYSTEM;
	if (connect(fd, (const struct sockaddr *)&t->to, sizeof(t->to)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&me, &len) != 0 ||
	    me.sin6_family != AF_INET6)
		rc = PROTO_ERR_SYSTEM;
	else
		memcpy(addr, &me.sin6_addr, 16);
	{
		int err = errno;
		close(fd);
		errno = err;
	}
	return rc;
}

int
proto_disco_prefix6(const struct in6_addr *a, const struct in6_addr *net,
    const struct in6_addr *mask)
{
	for (size_t i = 0; i < 16; i++)
		if ((a->s6_addr[i] ^ net->s6_addr[i]) & mask->s6_addr[i])
			return 0;
	return 1;
}

/* Whether src is an address of this host, or within the prefix of an
 * address of interface ifindex (on its link). */
static int
src_on_link(const struct in6_addr *src, unsigned ifindex)
{
	struct ifaddrs *ifs, *ifa;
	int yes = 0;

	if (getifaddrs(&ifs) != 0)
		return 0;
	for (ifa = ifs; ifa != NULL && !yes; ifa = ifa->ifa_next) {
		const struct sockaddr_in6 *a = (const void *)ifa->ifa_addr;
		const struct sockaddr_in6 *m = (const void *)ifa->ifa_netmask;

		if (a == NULL || a->sin6_family != AF_INET6)
			continue;
		if (IN6_ARE_ADDR_EQUAL(&a->sin6_addr, src))
			yes = 1;
		else if (m != NULL && m->sin6_family == AF_INET6 &&
		    if_nametoindex(ifa->ifa_name) == ifindex)
			yes = proto_disco_prefix6(src, &a->sin6_addr,
			    &m->sin6_addr);
	}
	freeifaddrs(ifs);
	return yes;
}

int
proto_disco_recv6(int fd, uint8_t *buf, size_t cap,
    struct sockaddr_in6 *from, size_t *len)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
		    CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { buf, cap };
	struct in6_addr dst = IN6ADDR_ANY_INIT;
	unsigned ifindex = 0;
	int hops = -1;
	struct msghdr msg;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.msg_name = from;
	msg.msg_namelen = sizeof(*from);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	if ((n = recvmsg(fd, &msg, MSG_TRUNC | MSG_DONTWAIT)) < 0)
		return PROTO_ERR_SYSTEM;
	if (msg.msg_namelen != sizeof(*from) || from->sin6_family != AF_INET6)
		return PROTO_ERR_MALFORMED;
	*len = (size_t)n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL;
	    c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != IPPROTO_IPV6)
			continue;
		if (c->cmsg_type == IPV6_PKTINFO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			dst = pi.ipi6_addr;
			ifindex = pi.ipi6_ifindex;
		} else if (c->cmsg_type == IPV6_HOPLIMIT &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(&hops, CMSG_DATA(c), sizeof(hops));
	}
	/* No router forwards a datagram to a link-scoped group or from a
	 * link-local source, and every router lowers the hop limit: any of
	 * these shows the sender is on the link. Nodes before the hop limit
	 * of 255 send with 1, hence the prefix rule last. */
	if (hops == 255 || IN6_IS_ADDR_MC_LINKLOCAL(&dst) ||
	    IN6_IS_ADDR_LINKLOCAL(&from->sin6_addr) ||
	    src_on_link(&from->sin6_addr, ifindex))
		return 0;
	return PROTO_ERR_OFF_LINK;
}
