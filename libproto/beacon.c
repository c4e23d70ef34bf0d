/*
 * The beacon: one UDP socket, one read event, one announcement timer. Each
 * read callback takes a bounded number of datagrams, so a flood cannot keep
 * the event loop from the TCP connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "beacon.h"
#include "error.h"
#include "log_private.h"

#define MAX_TARGETS 16
#define BATCH 64
/* Announcements believed from one source address: a burst of ANN_BURST,
 * then ANN_PER_SEC a second. Far above what the nodes of one host send
 * (each one every interval), far below what would churn the peer table. */
#define ANN_BURST 32
#define ANN_PER_SEC 4
#define ANN_SOURCES 64

struct ann_source {
	uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	double tokens;
	struct timespec last;
};

struct proto_beacon {
	struct event *read_ev, *read_ev6, *timer_ev;
	int fd, fd6;
	proto_beacon_cbs cbs;
	void *ctx;
	struct sockaddr_in targets[MAX_TARGETS];
	int ntargets;
	proto_disco_target6 targets6[MAX_TARGETS];
	int ntargets6;
	uint16_t tcp_port;
	char name[PROTO_DISCO_NAME_MAX + 1];
	unsigned max_answers, answers_this_second;
	int sealed;
	uint8_t key[32];
	time_t second;
	uint64_t bad, answered;
	struct ann_source sources[ANN_SOURCES];
	unsigned nsources;
};

/* from as text, for the log. */
static const char *
from_text(const struct sockaddr *from, proto_addr *a)
{
	if (proto_addr_from_sockaddr(a, from, from->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) != 0)
		return "?";
	return proto_addr_text(a);
}

/* An ANNOUNCE to `to` over IPv4, or over IPv6 to t6 when it is set. */
static void
send_announce(proto_beacon *b, const struct sockaddr_in *to,
    const proto_disco_target6 *t6, uint32_t nonce)
{
	proto_addr shown;
	uint8_t buf[PROTO_DISCO_ANSWER_MAX + PROTO_DISCO_TAG_LEN];
	proto_disco_msg m;
	size_t len;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_ANNOUNCE;
	m.nonce = nonce;
	m.port = b->tcp_port;
	m.name = b->name;
	m.name_len = strlen(b->name);
	m.nfiles = b->cbs.nfiles ? b->cbs.nfiles(b->ctx) : 0;
	/* Stamped with when and where from, under the tag: a copy replayed
	 * from another address, or later, is refused by the swarm. */
	if (t6 != NULL ? proto_disco_source6(t6, m.addr) == 0 :
	    proto_disco_source(to, m.addr) == 0) {
		m.stamped = 1;
		m.time = (uint64_t)time(NULL);
		m.addr_len = t6 != NULL ? 16 : 4;
	}
	if (proto_disco_pack(&m, buf, PROTO_DISCO_ANSWER_MAX, &len) != 0 ||
	    (b->sealed && proto_disco_seal(buf, &len, sizeof(buf), b->key) != 0))
		return;
	/* Best effort: a full socket buffer loses one announcement. */
	if (t6 != NULL)
		(void)proto_disco_send6(b->fd6, t6, buf, len);
	else
		(void)sendto(b->fd, buf, len, MSG_DONTWAIT,
		    (const struct sockaddr *)to, sizeof(*to));
	if (proto__plog_levels[PROTO_LOG_DISCO] >= PROTO_LOG_TRACE)
		proto__plog_emit(PROTO_LOG_DISCO, PROTO_LOG_TRACE, "> %s to %s: "
		    "TCP port %u, %llu files", nonce ? "answer" : "announcement",
		    from_text(t6 != NULL ? (const struct sockaddr *)&t6->to :
		    (const struct sockaddr *)to, &shown), m.port,
		    (unsigned long long)m.nfiles);
}

static void
announce_all(evutil_socket_t fd, short what, void *arg)
{
	proto_beacon *b = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < b->ntargets; i++)
		send_announce(b, &b->targets[i], NULL, 0);
	for (int i = 0; i < b->ntargets6; i++)
		send_announce(b, NULL, &b->targets6[i], 0);
}

/* The key of from for the per-source limit: its address, 16 bytes. */
static void
source_key(const struct sockaddr *from, uint8_t key[16])
{
	memset(key, 0, 16);
	if (from->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)from)->
		    sin6_addr, 16);
		return;
	}
	key[10] = key[11] = 0xff;
	memcpy(key + 12, &((const struct sockaddr_in *)(const void *)from)->
	    sin_addr, 4);
}

static int
may_answer(proto_beacon *b)
{
	time_t now = time(NULL);

	if (now != b->second) {
		b->second = now;
		b->answers_this_second = 0;
	}
	return b->answers_this_second++ < b->max_answers;
}

/* A token bucket per source address, the least recently heard making
 * room for a new one. 1 when an announcement from addr may be taken. */
static int
may_take_announce(proto_beacon *b, const uint8_t addr[16])
{
	struct ann_source *src = NULL;
	struct timespec now;
	double dt;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (unsigned i = 0; i < b->nsources; i++) {
		if (memcmp(b->sources[i].addr, addr, 16) == 0) {
			src = &b->sources[i];
			break;
		}
		if (src == NULL || b->sources[i].last.tv_sec < src->last.tv_sec ||
		    (b->sources[i].last.tv_sec == src->last.tv_sec &&
		    b->sources[i].last.tv_nsec < src->last.tv_nsec))
			src = &b->sources[i];
	}
	if (src == NULL || memcmp(src->addr, addr, 16) != 0) {
		if (b->nsources < ANN_SOURCES)
			src = &b->sources[b->nsources++];
		memcpy(src->addr, addr, 16);
		src->tokens = ANN_BURST;
		src->last = now;
	}
	dt = (double)(now.tv_sec - src->last.tv_sec) +
	    (double)(now.tv_nsec - src->last.tv_nsec) / 1e9;
	src->last = now;
	src->tokens += dt * ANN_PER_SEC;
	if (src->tokens > ANN_BURST)
		src->tokens = ANN_BURST;
	if (src->tokens < 1)
		return 0;
	src->tokens -= 1;
	return 1;
}

static void
take_datagram(proto_beacon *b, const uint8_t *buf, size_t len,
    const struct sockaddr *from)
{
	proto_disco_msg m = { 0 };
	proto_addr shown;
	uint8_t key[16];
	int rc = b->sealed ? proto_disco_open(buf, &len, b->key) : 0;

	if (rc == 0)
		rc = proto_disco_unpack(buf, len, &m);
	if (rc == 0 && m.type == PROTO_DISCO_ANNOUNCE)
		rc = proto_disco_check_announce(&m, from, time(NULL),
		    b->sealed);
	source_key(from, key);
	if (rc == 0 && m.type == PROTO_DISCO_ANNOUNCE &&
	    !may_take_announce(b, key))
		rc = PROTO_ERR_LIMITED;
	if (proto__plog_levels[PROTO_LOG_DISCO] >= PROTO_LOG_TRACE) {
		proto__plog_emit(PROTO_LOG_DISCO, PROTO_LOG_TRACE, "< %zu bytes from "
		    "%s: %s", len, from_text(from, &shown), rc != 0 ?
		    proto_strerror(rc) : m.type == PROTO_DISCO_QUERY ? "query" :
		    m.type == PROTO_DISCO_ANNOUNCE ? "announcement" : "other");
	}
	if (rc != 0) {
		b->bad++;
		if (b->cbs.on_bad)
			b->cbs.on_bad(from, rc, b->ctx);
		return;
	}
	if (m.type == PROTO_DISCO_QUERY) {
		if (m.want != NULL && (b->cbs.has == NULL ||
		    !b->cbs.has(m.want, b->ctx)))
			return;
		if (!may_answer(b)) {
			PLOG(PROTO_LOG_DISCO, PROTO_LOG_DEBUG, "over %u answers "
			    "this second: query left unanswered",
			    b->max_answers);
			return;
		}
		if (from->sa_family == AF_INET6) {
			proto_disco_target6 t6;
			memset(&t6, 0, sizeof(t6));
			memcpy(&t6.to, from, sizeof(t6.to));
			send_announce(b, NULL, &t6, m.nonce);
		} else
			send_announce(b, (const struct sockaddr_in *)
			    (const void *)from, NULL, m.nonce);
		b->answered++;
	} else if (m.type == PROTO_DISCO_ANNOUNCE && b->cbs.on_announce)
		b->cbs.on_announce(from, &m, b->ctx);
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	proto_beacon *b = arg;
	uint8_t buf[PROTO_DISCO_DATAGRAM_MAX + 1];

	(void)what;
	for (int i = 0; i < BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		const struct sockaddr *sa = (const struct sockaddr *)&from;
		/* One byte more than the limit tells an oversized datagram
		 * (MSG_TRUNC returns its real length) from one at the limit. */
		ssize_t n;

		if (fd == b->fd6) {
			size_t got;
			int rc = proto_disco_recv6(fd, buf, sizeof(buf),
			    (struct sockaddr_in6 *)&from, &got);
			if (rc == PROTO_ERR_SYSTEM)
				break;
			if (rc == PROTO_ERR_OFF_LINK) {
				b->bad++;
				if (b->cbs.on_bad)
					b->cbs.on_bad(sa, rc, b->ctx);
			}
			if (rc != 0)
				continue;
			n = (ssize_t)got;
		} else if ((n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC,
		    (struct sockaddr *)&from, &fromlen)) < 0)
			break;
		else if (fromlen != sizeof(struct sockaddr_in) ||
		    from.ss_family != AF_INET)
			continue;
		if ((size_t)n > PROTO_DISCO_DATAGRAM_MAX) {
			b->bad++;
			if (b->cbs.on_bad)
				b->cbs.on_bad(sa, PROTO_ERR_TOO_BIG, b->ctx);
			continue;
		}
		take_datagram(b, buf, (size_t)n, sa);
	}
}

proto_beacon *
proto_beacon_new(struct event_base *base, const proto_beacon_config *cfg,
    const proto_beacon_cbs *cbs, void *ctx)
{
	uint16_t port = cfg->port ? cfg->port : PROTO_DISCO_PORT;
	struct timeval tv = { cfg->interval ? cfg->interval : 30, 0 };
	proto_beacon *b;
	int n;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->cbs = *cbs;
	b->ctx = ctx;
	b->tcp_port = cfg->tcp_port;
	b->max_answers = cfg->max_answers ? cfg->max_answers : 200;
	if (cfg->secret != NULL) {
		memcpy(b->key, cfg->secret, sizeof(b->key));
		b->sealed = 1;
	}
	snprintf(b->name, sizeof(b->name), "%s", cfg->name ? cfg->name : "");
	n = cfg->family == AF_INET6 ? 0 :
	    proto_disco_targets(cfg->target, port, b->targets, MAX_TARGETS);
	if (n < 0) {
		free(b);
		errno = EINVAL;
		return NULL;
	}
	b->ntargets = n;
	b->fd6 = -1;
	n = cfg->family == AF_INET ? 0 : proto_disco_targets6(cfg->target,
	    cfg->target6, port, b->targets6, MAX_TARGETS);
	if (n < 0) {
		free(b);
		errno = EINVAL;
		return NULL;
	}
	/* IPv6 is a bonus: a system without it still discovers over IPv4. */
	if (n > 0 && (b->fd6 = proto_disco_socket6(port, 1, b->targets6,
	    (size_t)n)) < 0)
		PLOG(PROTO_LOG_DISCO, PROTO_LOG_DEBUG, "no IPv6 discovery: %s",
		    strerror(errno));
	b->ntargets6 = b->fd6 >= 0 ? n : 0;
	/* A node reached over IPv6 alone says nothing over IPv4, where the
	 * source address of its datagrams would name no listener. */
	b->fd = -1;
	if (cfg->family != AF_INET6 &&
	    (b->fd = proto_disco_socket(port, 1)) < 0) {
		int err = errno;
		if (b->fd6 >= 0)
			close(b->fd6);
		free(b);
		errno = err;
		return NULL;
	}
	if (b->fd >= 0)
		b->read_ev = event_new(base, b->fd, EV_READ | EV_PERSIST,
		    on_readable, b);
	if (b->fd6 >= 0 && ((b->read_ev6 = event_new(base, b->fd6, EV_READ |
	    EV_PERSIST, on_readable, b)) == NULL ||
	    event_add(b->read_ev6, NULL) != 0)) {
		proto_beacon_free(b);
		errno = ENOMEM;
		return NULL;
	}
	b->timer_ev = event_new(base, -1, EV_PERSIST, announce_all, b);
	if ((b->fd >= 0 && (b->read_ev == NULL ||
	    event_add(b->read_ev, NULL) != 0)) || b->timer_ev == NULL ||
	    (!cfg->answer_only && event_add(b->timer_ev, &tv) != 0)) {
		proto_beacon_free(b);
		errno = ENOMEM;
		return NULL;
	}
	PLOG(PROTO_LOG_DISCO, PROTO_LOG_DEBUG, "beacon on UDP port %u: "
	    "announcing TCP port %u to %d targets (and %d over IPv6) every "
	    "%ld s", port, b->tcp_port, b->ntargets, b->ntargets6,
	    (long)tv.tv_sec);
	if (!cfg->answer_only)
		announce_all(-1, 0, b);
	return b;
}

void
proto_beacon_free(proto_beacon *b)
{
	if (b == NULL)
		return;
	if (b->read_ev)
		event_free(b->read_ev);
	if (b->read_ev6)
		event_free(b->read_ev6);
	if (b->timer_ev)
		event_free(b->timer_ev);
	if (b->fd >= 0)
		close(b->fd);
	if (b->fd6 >= 0)
		close(b->fd6);
	free(b);
}

uint64_t
proto_beacon_bad(const proto_beacon *b)
{
	return b->bad;
}

uint64_t
proto_beacon_answered(const proto_beacon *b)
{
	return b->answered;
}
