/* The known-peers table: small enough for linear scans. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "peers.h"

void
proto_peers_init(proto_peer_table *t)
{
	memset(t, 0, sizeof(*t));
}

/* Enters host:port, checked or only heard; see proto_peers_heard. */
static int
note(proto_peer_table *t, const char *host, size_t host_len, uint16_t port,
    int checked)
{
	char text[PROTO_HOST_MAX + 1];
	unsigned char addr[sizeof(struct in6_addr)];
	size_t slot = t->count;
	long oldest = -1, oldest_heard = -1;

	if (host_len == 0 || host_len > PROTO_HOST_MAX || port == 0 ||
	    memchr(host, '\0', host_len) != NULL)
		return PROTO_ERR_INVALID;
	memcpy(text, host, host_len);
	text[host_len] = '\0';
	/* Only addresses: a peer must not make us resolve names. */
	if (inet_pton(AF_INET, text, addr) != 1 &&
	    inet_pton(AF_INET6, text, addr) != 1)
		return PROTO_ERR_INVALID;
	for (size_t i = 0; i < t->count; i++) {
		struct proto_known_peer *p = &t->peers[i];
		if (p->port == port && strcmp(p->host, text) == 0) {
			p->seen = time(NULL);
			p->checked |= checked;
			return !p->checked;
		}
		if (oldest < 0 || p->seen < t->peers[oldest].seen)
			oldest = (long)i;
		if (!p->checked && (oldest_heard < 0 ||
		    p->seen < t->peers[oldest_heard].seen))
			oldest_heard = (long)i;
	}
	if (t->count == PROTO_PEER_TABLE_MAX) {
		/* Hearsay never pushes out a node that answered. */
		if (oldest_heard >= 0)
			slot = (size_t)oldest_heard;
		else if (checked)
			slot = (size_t)oldest;
		else
			return PROTO_ERR_TOO_BIG;
	} else
		t->count++;
	memcpy(t->peers[slot].host, text, host_len + 1);
	t->peers[slot].port = port;
	t->peers[slot].seen = time(NULL);
	t->peers[slot].checked = checked;
	return !checked;
}

int
proto_peers_add(proto_peer_table *t, const char *host, size_t host_len,
    uint16_t port)
{
	int rc = note(t, host, host_len, port, 1);

	return rc < 0 ? rc : 0;
}

int
proto_peers_heard(proto_peer_table *t, const char *host, size_t host_len,
    uint16_t port)
{
	return note(t, host, host_len, port, 0);
}

static int
newest_first(const void *a, const void *b)
{
	const struct proto_known_peer *x = *(const struct proto_known_peer *const *)a;
	const struct proto_known_peer *y = *(const struct proto_known_peer *const *)b;

	return (x->seen < y->seen) - (x->seen > y->seen);
}

size_t
proto_peers_list(const proto_peer_table *t, proto_peer_entry *out,
    size_t max, const char *skip_host, uint16_t skip_port)
{
	const struct proto_known_peer *order[PROTO_PEER_TABLE_MAX] = { NULL };
	size_t n = 0;

	for (size_t i = 0; i < t->count; i++)
		order[i] = &t->peers[i];
	qsort(order, t->count, sizeof(order[0]), newest_first);
	for (size_t i = 0; i < t->count && n < max; i++) {
		if (!order[i]->checked)
			continue;
		if (skip_host && order[i]->port == skip_port &&
		    strcmp(order[i]->host, skip_host) == 0)
			continue;
		out[n].host = order[i]->host;
		out[n].host_len = strlen(order[i]->host);
		out[n].port = order[i]->port;
		n++;
	}
	return n;
}

int
proto_peers_host_port(const struct sockaddr *sa, char *host, uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, INET6_ADDRSTRLEN);
		*port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, INET6_ADDRSTRLEN);
		*port = ntohs(in6->sin6_port);
		return 0;
	}
	strcpy(host, "?");
	*port = 0;
	return PROTO_ERR_INVALID;
}
