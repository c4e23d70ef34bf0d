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
	uint32_t addr;
	double tokens;
	struct timespec last;
};

struct proto_beacon {
	struct event *read_ev, *timer_ev;
	int fd;
	proto_beacon_cbs cbs;
	void *ctx;
	struct sockaddr_in targets[MAX_TARGETS];
	int ntargets;
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

static void
send_announce(proto_beacon *b, const struct sockaddr_in *to, uint32_t nonce)
{
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
	if (proto_disco_source(to, m.addr) == 0) {
		m.stamped = 1;
		m.time = (uint64_t)time(NULL);
	}
	if (proto_disco_pack(&m, buf, PROTO_DISCO_ANSWER_MAX, &len) != 0 ||
	    (b->sealed && proto_disco_seal(buf, &len, sizeof(buf), b->key) != 0))
		return;
	/* Best effort: a full socket buffer loses one announcement. */
	(void)sendto(b->fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)to,
	    sizeof(*to));
	if (proto__plog_levels[PROTO_LOG_DISCO] >= PROTO_LOG_TRACE) {
		char host[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &to->sin_addr, host, sizeof(host));
		proto__plog_emit(PROTO_LOG_DISCO, PROTO_LOG_TRACE, "> %s to %s:%u: "
		    "TCP port %u, %llu files", nonce ? "answer" : "announcement",
		    host, ntohs(to->sin_port), m.port,
		    (unsigned long long)m.nfiles);
	}
}

static void
announce_all(evutil_socket_t fd, short what, void *arg)
{
	proto_beacon *b = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < b->ntargets; i++)
		send_announce(b, &b->targets[i], 0);
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
may_take_announce(proto_beacon *b, uint32_t addr)
{
	struct ann_source *src = NULL;
	struct timespec now;
	double dt;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (unsigned i = 0; i < b->nsources; i++) {
		if (b->sources[i].addr == addr) {
			src = &b->sources[i];
			break;
		}
		if (src == NULL || b->sources[i].last.tv_sec < src->last.tv_sec ||
		    (b->sources[i].last.tv_sec == src->last.tv_sec &&
		    b->sources[i].last.tv_nsec < src->last.tv_nsec))
			src = &b->sources[i];
	}
	if (src == NULL || src->addr != addr) {
		if (b->nsources < ANN_SOURCES)
			src = &b->sources[b->nsources++];
		src->addr = addr;
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
    const struct sockaddr_in *from)
{
	proto_disco_msg m = { 0 };
	int rc = b->sealed ? proto_disco_open(buf, &len, b->key) : 0;

	if (rc == 0)
		rc = proto_disco_unpack(buf, len, &m);
	if (rc == 0 && m.type == PROTO_DISCO_ANNOUNCE)
		rc = proto_disco_check_announce(&m, from, time(NULL),
		    b->sealed);
	if (rc == 0 && m.type == PROTO_DISCO_ANNOUNCE &&
	    !may_take_announce(b, from->sin_addr.s_addr))
		rc = PROTO_ERR_LIMITED;
	if (proto__plog_levels[PROTO_LOG_DISCO] >= PROTO_LOG_TRACE) {
		char host[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &from->sin_addr, host, sizeof(host));
		proto__plog_emit(PROTO_LOG_DISCO, PROTO_LOG_TRACE, "< %zu bytes from "
		    "%s:%u: %s", len, host, ntohs(from->sin_port), rc != 0 ?
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
		send_announce(b, from, m.nonce);
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
		struct sockaddr_in from;
		socklen_t fromlen = sizeof(from);
		/* One byte more than the limit tells an oversized datagram
		 * (MSG_TRUNC returns its real length) from one at the limit. */
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC,
		    (struct sockaddr *)&from, &fromlen);
		if (n < 0)
			break;
		if (fromlen != sizeof(from) || from.sin_family != AF_INET)
			continue;
		if ((size_t)n > PROTO_DISCO_DATAGRAM_MAX) {
			b->bad++;
			if (b->cbs.on_bad)
				b->cbs.on_bad(&from, PROTO_ERR_TOO_BIG, b->ctx);
			continue;
		}
		take_datagram(b, buf, (size_t)n, &from);
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
	n = proto_disco_targets(cfg->target, port, b->targets, MAX_TARGETS);
	if (n < 0) {
		free(b);
		errno = EINVAL;
		return NULL;
	}
	b->ntargets = n;
	if ((b->fd = proto_disco_socket(port, 1)) < 0) {
		int err = errno;
		free(b);
		errno = err;
		return NULL;
	}
	b->read_ev = event_new(base, b->fd, EV_READ | EV_PERSIST, on_readable,
	    b);
	b->timer_ev = event_new(base, -1, EV_PERSIST, announce_all, b);
	if (b->read_ev == NULL || b->timer_ev == NULL ||
	    event_add(b->read_ev, NULL) != 0 ||
	    (!cfg->answer_only && event_add(b->timer_ev, &tv) != 0)) {
		proto_beacon_free(b);
		errno = ENOMEM;
		return NULL;
	}
	PLOG(PROTO_LOG_DISCO, PROTO_LOG_DEBUG, "beacon on UDP port %u: "
	    "announcing TCP port %u to %d targets every %ld s", port,
	    b->tcp_port, b->ntargets, (long)tv.tv_sec);
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
	if (b->timer_ev)
		event_free(b->timer_ev);
	close(b->fd);
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
