/*
 * Upload slots (BitTorrent's choking, PROTOCOL.md section 4, caps bit 4):
 * a node's upload goes to a few peers at a time, so that each of them gets
 * a chunk fast and passes it on, rather than every peer a trickle that
 * its fetcher gives up on. Only peers whose HELLO carries the choke cap
 * are choked; the others are answered as they always were. Such a peer
 * starts choked; once subscribed (INTERESTED) to a file the node shares,
 * it is a candidate. CHOKE_SLOTS candidates are unchoked by what they gave
 * this node over the last round (bytes received on the connection: the
 * chunks its own fetch got from them), ties to the one unchoked longest
 * ago, so that a seed, given nothing, takes its fetchers in turn; and one
 * more, the optimistic unchoke, a choked candidate at random, so that a
 * newcomer with nothing to give gets a start. Every CHOKE_ROUND seconds
 * the slots are given anew; a peer that asks for no chunk for CHOKE_IDLE
 * seconds (it has all it wants of us) leaves its slot to another at once.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log_private.h"
#include "server_private.h"

#define CHOKE_SLOTS 4
#define CHOKE_ROUND 10.0      /* s: slots given anew, the optimistic one
                               * moved */
#define CHOKE_IDLE 3.0        /* s without a GET_CHUNK: the slot goes */
#define CHOKE_UNUSED 1.0      /* s without one since it was given */
#define CHOKE_TICK_US 500000

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
candidate(const struct client *cl)
{
	return cl->chokes && cl->interested && !cl->handshaking &&
	    cl->conn != NULL;
}

static void
set_choked(struct client *cl, int choked, double now)
{
	proto_msg m;

	if (cl->unchoked == !choked)
		return;
	cl->unchoked = !choked;
	cl->optimistic = 0;
	if (!choked) {
		cl->unchoked_at = now;
		cl->last_ask = now;
	}
	proto_msg_init(&m, choked ? PROTO_MSG_CHOKE : PROTO_MSG_UNCHOKE);
	proto_conn_send(cl->conn, &m);
	proto__server_say(cl->srv, PROTO_LOG_DEBUG, "%s: %s",
	    proto_conn_peer(cl->conn), choked ? "choked" : "unchoked");
}

static unsigned
unchoked_count(const proto_server *srv)
{
	unsigned n = 0;

	for (const struct client *cl = srv->clients; cl; cl = cl->next)
		n += cl->unchoked;
	return n;
}

/* What cl gave this round, as a claim to a slot. Nothing from one that
 * never asked us for a chunk: a seed that watches what its fetcher holds
 * (servesuper.c) subscribes to it, and gave it most, but asks for
 * nothing, and a slot given to it would lie idle. Nothing from one we
 * super-seed either: what comes from it is its HAVEs, not chunks, and
 * a seed takes its fetchers in turn, else those that tell it most would
 * keep its slots from one that lags. */
static uint64_t
gave(const struct client *cl)
{
	return cl->asked && !cl->super ? cl->given : 0;
}

/* The choked candidate to unchoke next: the one that gave most this
 * round, then the one unchoked longest ago (never: first). NULL when none
 * is waiting. */
static struct client *
best_waiting(proto_server *srv)
{
	struct client *best = NULL;

	for (struct client *cl = srv->clients; cl; cl = cl->next) {
		if (!candidate(cl) || cl->unchoked)
			continue;
		if (best == NULL || gave(cl) > gave(best) ||
		    (gave(cl) == gave(best) &&
		    cl->unchoked_at < best->unchoked_at))
			best = cl;
	}
	return best;
}

/* A choked candidate at random, or NULL. */
static struct client *
random_waiting(proto_server *srv)
{
	struct client *pick = NULL;
	unsigned seen = 0;

	for (struct client *cl = srv->clients; cl; cl = cl->next)
		if (candidate(cl) && !cl->unchoked &&
		    (unsigned)random() % ++seen == 0)
			pick = cl;
	return pick;
}

/* Free slots go to the candidates waiting, best first. */
static void
fill(proto_server *srv, double now)
{
	struct client *cl;
	unsigned n = unchoked_count(srv);

	while (n < CHOKE_SLOTS + 1 && (cl = best_waiting(srv)) != NULL) {
		set_choked(cl, 0, now);
		n++;
	}
}

/* The round: what each gave since the last, the best CHOKE_SLOTS kept or
 * unchoked, one more at random, the rest choked. */
static void
round_anew(proto_server *srv, double now)
{
	struct client *cl, *opt;
	unsigned kept = 0;

	for (cl = srv->clients; cl; cl = cl->next) {
		uint64_t in = cl->conn ? proto_conn_bytes_in(cl->conn) : 0;
		cl->given = in - (in >= cl->given_mark ? cl->given_mark : in);
		cl->given_mark = in;
		cl->keep = 0;
	}
	/* The best CHOKE_SLOTS of all candidates, choked or not: picked
	 * one by one among those not kept yet. */
	while (kept < CHOKE_SLOTS) {
		struct client *best = NULL;
		for (cl = srv->clients; cl; cl = cl->next)
			if (candidate(cl) && !cl->keep && (best == NULL ||
			    gave(cl) > gave(best) || (gave(cl) == gave(best) &&
			    cl->unchoked_at < best->unchoked_at)))
				best = cl;
		if (best == NULL)
			break;
		best->keep = 1;
		kept++;
	}
	for (cl = srv->clients; cl; cl = cl->next)
		if (cl->unchoked && !cl->keep)
			set_choked(cl, 1, now);
	for (cl = srv->clients; cl; cl = cl->next)
		if (cl->keep)
			set_choked(cl, 0, now);
	if ((opt = random_waiting(srv)) != NULL) {
		set_choked(opt, 0, now);
		opt->optimistic = 1;
	}
	srv->choke_round = now;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	proto_server *srv = arg;
	double now = now_s();

	(void)fd;
	(void)what;
	if (now - srv->choke_round >= CHOKE_ROUND) {
		round_anew(srv, now);
		return;
	}
	/* A slot its holder does not use goes to one waiting: sooner when
	 * it has asked nothing since it got it (a seed subscribed to what
	 * its fetcher holds never does). */
	for (struct client *cl = srv->clients; cl; cl = cl->next)
		if (cl->unchoked && cl->count == 0 &&
		    (now - cl->last_ask >= CHOKE_IDLE ||
		    (cl->last_ask <= cl->unchoked_at &&
		    now - cl->unchoked_at >= CHOKE_UNUSED)) && best_waiting(srv))
			set_choked(cl, 1, now);
	fill(srv, now);
}

void
proto__server_choke_candidate(struct client *cl)
{
	proto_server *srv = cl->srv;
	struct timeval t = { 0, CHOKE_TICK_US };

	if (!cl->chokes)
		return;
	if (srv->choke_ev == NULL) {
		if ((srv->choke_ev = event_new(srv->base, -1, EV_PERSIST, tick,
		    srv)) == NULL || event_add(srv->choke_ev, &t) != 0) {
			/* No slots without the clock: nobody is choked. */
			if (srv->choke_ev != NULL)
				event_free(srv->choke_ev);
			srv->choke_ev = NULL;
			set_choked(cl, 0, now_s());
			return;
		}
		srv->choke_round = now_s();
	}
	fill(srv, now_s());
}

void
proto__server_choke_asked(struct client *cl)
{
	cl->last_ask = now_s();
	cl->asked = 1;
}

void
proto__server_choke_free(proto_server *srv)
{
	if (srv->choke_ev != NULL)
		event_free(srv->choke_ev);
	srv->choke_ev = NULL;
}
