/*
 * The LAN as a node's source, in its two roles: the beacon, which answers
 * and announces for a node that listens and hears the others (node.h), and
 * the query, which asks who is there for a while and reports each answer
 * with the name and file count it gives (nodequery.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "disco.h"
#include "error.h"
#include "log.h"
#include "node_private.h"
#include "nodequery.h"

#define MAX_TARGETS 16
#define BATCH 64        /* datagrams taken in one read callback */

/* ---- the beacon ---- */

static int
lan_start(proto_node *n, void *state)
{
	proto_beacon_config *cfg = state;

	cfg->tcp_port = proto_node_port(n);
	return proto_server_start_beacon(proto_node_server(n), cfg);
}

static void
lan_free(void *state)
{
	free(state);
}

static const proto_node_source_ops lan_source = { "lan", lan_start, NULL,
    NULL, lan_free };

int
proto_node_start_beacon(proto_node *n, const proto_beacon_config *cfg)
{
	proto_beacon_config *copy = malloc(sizeof(*copy));

	if (copy == NULL) {
		errno = ENOMEM;
		return PROTO_ERR_SYSTEM;
	}
	*copy = *cfg;
	return proto_node_add_source(n, &lan_source, copy);
}

/* ---- the query ---- */

struct query {
	proto_node *node;
	proto_node_query_config cfg;
	int query_fd, listen_fd, query_fd6, listen_fd6;
	struct event *query_ev, *listen_ev, *query_ev6, *listen_ev6;
	struct event *resend_ev, *end_ev;
	struct sockaddr_in targets[MAX_TARGETS];
	int ntargets;
	proto_disco_target6 targets6[MAX_TARGETS];
	int ntargets6;
	uint32_t nonce;
	int sealed;
	uint8_t key[32];
	uint64_t bad;
};

/* A QUERY to `to` over IPv4, or over IPv6 to t6 when it is set. */
static void
send_query(struct query *q, const struct sockaddr_in *to,
    const proto_disco_target6 *t6)
{
	uint8_t buf[PROTO_DISCO_DATAGRAM_MAX];
	proto_disco_msg m;
	size_t len;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_QUERY;
	m.nonce = q->nonce;
	/* No id in the query even when one is looked up: nodes without the
	 * file must answer too, since they may know nodes that have it.
	 * Whether a node has it is asked over TCP (the peer exchange). */
	if (proto_disco_pack(&m, buf, PROTO_DISCO_DATAGRAM_MAX -
	    PROTO_DISCO_TAG_LEN, &len) != 0 || (q->sealed &&
	    proto_disco_seal(buf, &len, sizeof(buf), q->key) != 0))
		return;
	if (t6 != NULL)
		(void)proto_disco_send6(q->query_fd6, t6, buf, len);
	else
		(void)sendto(q->query_fd, buf, len, MSG_DONTWAIT,
		    (const struct sockaddr *)to, sizeof(*to));
}

static void
resend(evutil_socket_t fd, short what, void *arg)
{
	struct query *q = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < q->ntargets; i++)
		send_query(q, &q->targets[i], NULL);
	for (int i = 0; i < q->ntargets6; i++)
		send_query(q, NULL, &q->targets6[i]);
}

/* One datagram: reported when it is an answer to us or an announcement,
 * believable as proto_disco_check_announce says; counted as bad when it
 * does not parse, is another swarm's or answers someone else. */
static void
take(struct query *q, uint8_t *buf, size_t len,
    const struct sockaddr *from)
{
	char name[PROTO_DISCO_NAME_MAX + 1];
	proto_node_seen seen;
	proto_disco_msg m;

	if ((q->sealed && proto_disco_open(buf, &len, q->key) != 0) ||
	    proto_disco_unpack(buf, len, &m) != 0) {
		q->bad++;
		return;
	}
	if (m.type != PROTO_DISCO_ANNOUNCE)
		return;
	/* An answer carries our nonce, an announcement 0: another nonce is
	 * someone else's answer, sent on to us. A private swarm's must also
	 * be stamped from where it came, lately. */
	if ((m.nonce != 0 && m.nonce != q->nonce) ||
	    proto_disco_check_announce(&m, from, time(NULL), q->sealed) != 0) {
		q->bad++;
		return;
	}
	memset(&seen, 0, sizeof(seen));
	/* A link-local source is no address to print or pass on (nodes
	 * announce from a routable one, disco6.c); the interface scope of
	 * an IPv6 source is not kept. */
	if (from->sa_family == AF_INET6) {
		struct sockaddr_in6 a6;
		memcpy(&a6, from, sizeof(a6));
		if (IN6_IS_ADDR_LINKLOCAL(&a6.sin6_addr))
			return;
		a6.sin6_scope_id = 0;
		a6.sin6_flowinfo = 0;
		if (proto_addr_from_sockaddr(&seen.addr, (const struct sockaddr *)
		    &a6, sizeof(a6)) != 0)
			return;
	} else if (proto_addr_from_sockaddr(&seen.addr, from,
	    sizeof(struct sockaddr_in)) != 0)
		return;
	proto_addr_set_port(&seen.addr, m.port);
	snprintf(name, sizeof(name), "%.*s", (int)m.name_len, m.name);
	seen.source = "lan";
	seen.what = PROTO_NODE_HEARD;
	seen.name = name;
	seen.has_nfiles = 1;
	seen.nfiles = m.nfiles;
	proto_node_report(q->node, &seen);
}

static void
on_datagram(evutil_socket_t fd, short what, void *arg)
{
	struct query *q = arg;
	uint8_t buf[PROTO_DISCO_DATAGRAM_MAX];

	(void)what;
	for (int i = 0; i < BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		int v6 = fd == q->query_fd6 || fd == q->listen_fd6;
		proto_node *n = q->node;
		ssize_t got;

		if (v6) {
			size_t len;
			int rc = proto_disco_recv6(fd, buf, sizeof(buf),
			    (struct sockaddr_in6 *)&from, &len);
			if (rc == PROTO_ERR_SYSTEM)
				break;
			/* Off the link, or not IPv6: bad, as too big is. */
			got = rc == 0 ? (ssize_t)len : (ssize_t)sizeof(buf) + 1;
		} else if ((got = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC,
		    (struct sockaddr *)&from, &fromlen)) < 0)
			break;
		if (got > (ssize_t)sizeof(buf) || (!v6 && (fromlen !=
		    sizeof(struct sockaddr_in) || from.ss_family != AF_INET))) {
			q->bad++;
			continue;
		}
		proto__node_enter(n);
		take(q, buf, (size_t)got, (const struct sockaddr *)&from);
		/* A watcher freed the node, and this source with it. */
		if (proto__node_leave(n))
			return;
	}
}

static void
drop(struct event **ev)
{
	if (*ev != NULL)
		event_free(*ev);
	*ev = NULL;
}

static void
stop(struct query *q)
{
	drop(&q->query_ev);
	drop(&q->listen_ev);
	drop(&q->query_ev6);
	drop(&q->listen_ev6);
	drop(&q->resend_ev);
	drop(&q->end_ev);
	if (q->query_fd >= 0)
		close(q->query_fd);
	if (q->listen_fd >= 0)
		close(q->listen_fd);
	if (q->query_fd6 >= 0)
		close(q->query_fd6);
	if (q->listen_fd6 >= 0)
		close(q->listen_fd6);
	q->query_fd = q->listen_fd = q->query_fd6 = q->listen_fd6 = -1;
}

static void
on_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	stop(arg);
}

static int
watch(struct query *q, int fd, short what, event_callback_fn cb,
    const struct timeval *tv, struct event **out)
{
	*out = event_new(proto__node_base(q->node), fd, what, cb, q);
	return *out != NULL && event_add(*out, tv) == 0 ? 0 : PROTO_ERR_NOMEM;
}

/* The IPv6 side, when there are IPv6 targets: a bonus, as the listening
 * socket is, so a system without IPv6 asks over IPv4 alone. */
static int
start6(struct query *q, uint16_t port)
{
	int rc;

	if (q->ntargets6 == 0)
		return 0;
	if ((q->query_fd6 = proto_disco_socket6(0, 0, NULL, 0)) < 0) {
		proto__node_say(q->node, PROTO_LOG_DEBUG, "no IPv6 discovery: %s",
		    strerror(errno));
		q->ntargets6 = 0;
		return 0;
	}
	if ((rc = watch(q, q->query_fd6, EV_READ | EV_PERSIST, on_datagram,
	    NULL, &q->query_ev6)) != 0)
		return rc;
	if ((q->listen_fd6 = proto_disco_socket6(port, 1, q->targets6,
	    (size_t)q->ntargets6)) >= 0)
		return watch(q, q->listen_fd6, EV_READ | EV_PERSIST,
		    on_datagram, NULL, &q->listen_ev6);
	return 0;
}

static int
query_start(proto_node *n, void *state)
{
	struct query *q = state;
	uint16_t port = q->cfg.port ? q->cfg.port : PROTO_DISCO_PORT;
	struct timeval second = { 1, 0 }, end = { (time_t)q->cfg.seconds, 0 };
	int rc;

	q->node = n;
	q->ntargets = proto_disco_targets(q->cfg.target, port, q->targets,
	    MAX_TARGETS);
	q->ntargets6 = proto_disco_targets6(q->cfg.target, q->cfg.target6,
	    port, q->targets6, MAX_TARGETS);
	/* borrowed for proto_node_query_lan only */
	q->cfg.target = q->cfg.target6 = NULL;
	if (q->ntargets < 0 || q->ntargets6 < 0) {
		errno = EINVAL;
		return PROTO_ERR_SYSTEM;
	}
	if (evutil_secure_rng_init() == 0)
		evutil_secure_rng_get_bytes(&q->nonce, sizeof(q->nonce));
	if (q->nonce == 0)
		q->nonce = (uint32_t)getpid() | 1;
	if ((q->query_fd = proto_disco_socket(0, 0)) < 0)
		return PROTO_ERR_SYSTEM;
	if ((rc = watch(q, q->query_fd, EV_READ | EV_PERSIST, on_datagram,
	    NULL, &q->query_ev)) != 0)
		return rc;
	/* Hearing announcements too is a bonus; another program may hold
	 * the port without sharing it. */
	if ((q->listen_fd = proto_disco_socket(port, 1)) >= 0) {
		if ((rc = watch(q, q->listen_fd, EV_READ | EV_PERSIST,
		    on_datagram, NULL, &q->listen_ev)) != 0)
			return rc;
	} else
		proto__node_say(n, PROTO_LOG_DEBUG, "discovery port %u: %s", port,
		    strerror(errno));
	if ((rc = start6(q, port)) != 0)
		return rc;
	if ((rc = watch(q, -1, EV_PERSIST, resend, &second,
	    &q->resend_ev)) != 0 || (q->cfg.seconds > 0 &&
	    (rc = watch(q, -1, 0, on_end, &end, &q->end_ev)) != 0))
		return rc;
	resend(-1, 0, q);
	return 0;
}

static void
query_free(void *state)
{
	struct query *q = state;

	if (q->bad > 0 && q->node != NULL)
		proto__node_say(q->node, PROTO_LOG_DEBUG, "%llu datagrams ignored",
		    (unsigned long long)q->bad);
	stop(q);
	free(q);
}

static const proto_node_source_ops query_source = { "lan query",
    query_start, NULL, NULL, query_free };

int
proto_node_query_lan(proto_node *n, const proto_node_query_config *cfg)
{
	struct query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return PROTO_ERR_NOMEM;
	q->cfg = *cfg;
	q->query_fd = q->listen_fd = q->query_fd6 = q->listen_fd6 = -1;
	if (cfg->secret != NULL) {
		memcpy(q->key, cfg->secret, sizeof(q->key));
		q->sealed = 1;
	}
	q->cfg.secret = NULL;
	return proto_node_add_source(n, &query_source, q);
}
