/*
 * Rate limits: proto_conn_limit, a libevent rate-limit group whose budget
 * the connections made with it share, and a connection's leaving it. Under
 * a write limit, file data goes out in small pieces (connsend.c), since one
 * write may overrun the budget by a whole piece.
 */
#include <stdlib.h>

#include <event2/bufferevent.h>
#include <event2/util.h>

#include "conn_private.h"
#include "log_private.h"

/* libevent refills the budget every tick: short ticks keep the flow even.
 * The budget holds at most LIMIT_BURST ticks' worth: little to run ahead
 * with after an idle spell, yet a process the scheduler left waiting a
 * tick or so does not lose its share for good. */
#define LIMIT_TICK_MS 100
#define LIMIT_BURST 2
/* How far one write may overrun the budget (see file_piece in connsend.c):
 * half a tick's budget, within these bounds. A piece of many ticks'
 * budget leaves the group's bucket that far below zero, and until it
 * refills every member waits: a few members with file data to send then
 * take turns while the others (a HELLO, a small answer) starve for
 * seconds, as with 16 KiB pieces at 32 KiB/s among two dozen peers. */
#define LIMIT_PIECE_MIN (1u << 10)
#define LIMIT_PIECE_MAX (16u << 10)

static void limit_destroy(proto_conn_limit *l);

void
proto__conn_leave_group(proto_conn *c)
{
	if (c->limit == NULL)
		return;
	bufferevent_remove_from_rate_limit_group(c->bev);
	if (--c->limit->members == 0 && c->limit->doomed)
		limit_destroy(c->limit);
	c->limit = NULL;
}

static size_t
per_tick(uint64_t rate)
{
	uint64_t n;

	if (rate == 0)
		return EV_RATE_LIMIT_MAX;
	n = rate * LIMIT_TICK_MS / 1000;
	return n < 1 ? 1 : n > EV_RATE_LIMIT_MAX ? EV_RATE_LIMIT_MAX : (size_t)n;
}

static size_t
burst(size_t tick)
{
	return tick > EV_RATE_LIMIT_MAX / LIMIT_BURST ? EV_RATE_LIMIT_MAX :
	    tick * LIMIT_BURST;
}

proto_conn_limit *
proto_conn_limit_new(struct event_base *base, uint64_t read_rate,
    uint64_t write_rate)
{
	struct timeval tick = { 0, LIMIT_TICK_MS * 1000 };
	proto_conn_limit *l;
	size_t rd = per_tick(read_rate), wr = per_tick(write_rate);

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	if (write_rate != 0)
		l->write_piece = wr / 2 < LIMIT_PIECE_MIN ? LIMIT_PIECE_MIN :
		    wr / 2 > LIMIT_PIECE_MAX ? LIMIT_PIECE_MAX : wr / 2;
	l->cfg = ev_token_bucket_cfg_new(rd, burst(rd), wr, burst(wr), &tick);
	if (l->cfg == NULL || (l->group = bufferevent_rate_limit_group_new(base,
	    l->cfg)) == NULL) {
		limit_destroy(l);
		return NULL;
	}
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "rate limit: %llu bytes/s in, "
	    "%llu out (0: none)", (unsigned long long)read_rate,
	    (unsigned long long)write_rate);
	return l;
}

/* libevent insists that a group be empty when it is freed. */
void
proto_conn_limit_free(proto_conn_limit *l)
{
	if (l == NULL)
		return;
	l->doomed = 1;
	if (l->members == 0)
		limit_destroy(l);
}

static void
limit_destroy(proto_conn_limit *l)
{
	if (l->group != NULL)
		bufferevent_rate_limit_group_free(l->group);
	if (l->cfg != NULL)
		ev_token_bucket_cfg_free(l->cfg);
	free(l);
}
