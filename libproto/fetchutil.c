/*
 * What every part of a fetch uses and none decides: the owner's log and
 * end, the clock, and counts over the peers. It calls no other fetch file
 * by name, so that the calls between them may go one way only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "fetch_private.h"

void
proto__fetch_log(proto_fetch *f, int level, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	if (f->cbs.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	f->cbs.log(level, text, f->ctx);
}

void
proto__fetch_end(proto_fetch *f, int code)
{
	if (f->done)
		return;
	f->done = 1;
	f->cbs.on_end(code, f->ctx);
}

double
proto__fetch_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Nothing verified for a second: any source is worth asking. */
int
proto__fetch_stalled(const proto_fetch *f)
{
	return proto__fetch_now() - f->last_chunk > 1.0;
}

void
proto__fetch_peer_fail(struct fetch_peer *p, int bad, const char *fmt, ...)
{
	va_list ap;

	if (p->state == FETCH_GONE)
		return;
	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
	p->f->events->failed(p, bad);
}

int
proto__fetch_peer_alive(const struct fetch_peer *p)
{
	return p->state != FETCH_GONE && p->state != FETCH_QUEUED;
}

unsigned
proto__fetch_alive_peers(const proto_fetch *f)
{
	unsigned n = 0;

	for (size_t i = 0; i < f->npeers; i++)
		n += proto__fetch_peer_alive(f->peers[i]);
	return n;
}

int
proto__fetch_seeking(const proto_fetch *f)
{
	unsigned alive = proto__fetch_alive_peers(f);

	return alive < FETCH_PEERS_TARGET && alive < f->cfg.max_peers;
}
