/*
 * p2p-faultproxy: a TCP relay that breaks the path on purpose, for the fault
 * suite (tests/faults.bats), where tc netem is not available. It listens on
 * 127.0.0.1 (the port chosen by the kernel, printed on stdout), relays every
 * connection to one target, and injects the faults asked for: latency, a
 * rate cap, a stream that goes silent, is cut (FIN) or reset (RST) after so
 * many bytes, or has one byte flipped. Faults apply to the server->client
 * stream unless --direction says otherwise, and with --only-first K to the
 * first K connections only, so that a client which reconnects finds a clean
 * path. Every fault injected and every connection closed is reported on
 * stderr, one "p2p-faultproxy: connection N: ..." line each, so that a test
 * can tell a fault that happened from one that never did. With --dump FILE
 * every byte relayed, both ways, is appended to FILE as it goes through
 * (after any flip), so a test can look at what was on the wire: that no
 * plaintext crosses a TLS connection, say.
 *
 * Byte counts are exact: the bytes before a cut, a reset or silence reach
 * the client, and none after them. Before a reset the proxy waits (up to a
 * second) until the kernel has sent and seen acknowledged everything queued,
 * since an RST discards what is still in the send buffer.
 *
 * Exit status: 0 after SIGTERM or SIGINT, 1 when it cannot listen or run,
 * 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "say.h"

#define QUEUE_HIGH (1u << 20)  /* held plus queued bytes before reading stops */
#define RESET_POLL_US 5000     /* between two looks at the send queue */
#define RESET_POLLS 200        /* looks before resetting anyway (1 s) */
#define NO_LIMIT UINT64_MAX

enum { CLIENT, SERVER };       /* relay->bev[] */
enum { UP, DOWN };             /* relay->dir[]: dir[i] reads bev[i] */
enum { DIR_UP = 1, DIR_DOWN = 2 };
enum fault { FAULT_SILENT, FAULT_CUT, FAULT_RESET };

/* RELAY_FLUSH: one side is gone or cut; what is owed to the sink is sent,
 * then the sink is closed (FIN, or RST when rst is set). */
enum relay_state { RELAY_OPEN, RELAY_SILENT, RELAY_FLUSH };

struct held {                  /* a chunk of data waiting out --delay */
	struct held *next;
	long long due_ms;
	struct evbuffer *buf;
};

struct dir {
	struct relay *r;
	int from, to;              /* indexes into relay->bev */
	int faulty;
	uint64_t relayed;          /* bytes queued to the sink so far */
	struct held *head, *tail;
	size_t held_bytes;
	struct event *timer;       /* delivers held chunks when due */
};

struct relay {
	struct proxy *px;
	struct relay *prev, *next;
	unsigned id;
	struct bufferevent *bev[2];
	struct dir dir[2];
	int connected;
	enum relay_state state;
	int sink, rst, finishing;
	unsigned polls;
	struct event *finisher;
};

struct proxy {
	struct event_base *base;
	struct sockaddr_storage target;
	socklen_t target_len;
	const char *target_name;
	unsigned long long delay_ms;
	struct ev_token_bucket_cfg *rate;
	uint64_t silent_after, cut_after, reset_after, flip_byte;
	uint64_t only_first;       /* NO_LIMIT: every connection */
	int direction;
	int dump_fd;               /* --dump: -1 for none */
	const char *dump_path;
	unsigned accepted;
	struct relay *relays;
};

const char *progname = "p2p-faultproxy";

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-faultproxy [--delay MS] [--rate BYTES_PER_SEC]\n"
	    "                      [--silent-after N] [--cut-after N]\n"
	    "                      [--reset-after N] [--flip-byte N]\n"
	    "                      [--only-first K] [--direction down|up|both]\n"
	    "                      [--dump FILE] TARGET_HOST:PORT\n"
	    "  listens on 127.0.0.1, prints 127.0.0.1:PORT on stdout, and relays\n"
	    "  every connection to TARGET with these faults:\n"
	    "  --delay MS            hold each chunk of data MS ms\n"
	    "  --rate BYTES_PER_SEC  relay at most this many bytes a second\n"
	    "  --silent-after N      after N bytes relay nothing more, and keep\n"
	    "                        the connection open\n"
	    "  --cut-after N         after N bytes close both sides (FIN)\n"
	    "  --reset-after N       after N bytes reset both sides (RST)\n"
	    "  --flip-byte N         invert byte N of the stream (from 0)\n"
	    "  --only-first K        faults on the first K connections only\n"
	    "  --direction D         the stream the faults act on: down\n"
	    "                        (server to client, the default), up, both\n"
	    "  --dump FILE           append every byte relayed, both ways, to\n"
	    "                        FILE\n"
	    "  -h, --help            print this help and exit\n");
}

static uint64_t
parse_number(const char *text, uint64_t min, uint64_t max, const char *what)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (text[0] < '0' || text[0] > '9')
		die(2, "%s: not a number: '%s'", what, text);
	v = strtoull(text, &end, 10);
	if (*end != '\0')
		die(2, "%s: not a number: '%s'", what, text);
	if (errno == ERANGE || v < min || v > max)
		die(2, "%s: '%s' is out of range %" PRIu64 "..%" PRIu64, what,
		    text, min, max);
	return v;
}

static void
parse_target(struct proxy *px, const char *text)
{
	struct addrinfo hints, *res;
	char host[256], port[8];
	const char *colon = strrchr(text, ':');
	size_t hostlen;
	int rc;

	if (colon == NULL || colon == text || colon[1] == '\0')
		die(2, "target '%s': not HOST:PORT", text);
	hostlen = (size_t)(colon - text);
	if (text[0] == '[' && colon[-1] == ']') {
		text++;
		hostlen -= 2;
	}
	if (hostlen >= sizeof(host))
		die(2, "target '%s': host name too long", text);
	memcpy(host, text, hostlen);
	host[hostlen] = '\0';
	snprintf(port, sizeof(port), "%" PRIu64,
	    parse_number(colon + 1, 1, 65535, "target port"));
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		die(2, "target '%s': %s", px->target_name, gai_strerror(rc));
	memcpy(&px->target, res->ai_addr, res->ai_addrlen);
	px->target_len = res->ai_addrlen;
	freeaddrinfo(res);
}

static const char *
dir_name(const struct dir *d)
{
	return d->from == SERVER ? "down" : "up";
}

static void
drop_held(struct dir *d)
{
	struct held *h;

	while ((h = d->head) != NULL) {
		d->head = h->next;
		evbuffer_free(h->buf);
		free(h);
	}
	d->tail = NULL;
	d->held_bytes = 0;
	if (d->timer)
		evtimer_del(d->timer);
}

static void
relay_free(struct relay *r)
{
	struct proxy *px = r->px;

	note("connection %u: closed: %" PRIu64 " bytes down, %" PRIu64
	    " bytes up", r->id, r->dir[DOWN].relayed, r->dir[UP].relayed);
	for (int i = 0; i < 2; i++) {
		drop_held(&r->dir[i]);
		if (r->dir[i].timer)
			event_free(r->dir[i].timer);
		if (r->bev[i])
			bufferevent_free(r->bev[i]);
	}
	if (r->finisher)
		event_free(r->finisher);
	if (r->prev)
		r->prev->next = r->next;
	else
		px->relays = r->next;
	if (r->next)
		r->next->prev = r->prev;
	free(r);
}

/* Reading from d's source goes on while little is owed to its sink. */
static void
dir_flow(struct dir *d)
{
	struct relay *r = d->r;
	size_t owed;

	if (r->state != RELAY_OPEN || r->bev[d->from] == NULL ||
	    r->bev[d->to] == NULL)
		return;
	owed = d->held_bytes +
	    evbuffer_get_length(bufferevent_get_output(r->bev[d->to]));
	if (owed >= QUEUE_HIGH)
		bufferevent_disable(r->bev[d->from], EV_READ);
	else
		bufferevent_enable(r->bev[d->from], EV_READ);
}

/* In RELAY_FLUSH, once everything owed to the sink has left, the finisher
 * closes it. Never frees the relay itself: callers may still hold it. */
static void
flush_check(struct relay *r)
{
	if (r->state != RELAY_FLUSH || r->finishing)
		return;
	if (r->dir[1 - r->sink].head != NULL ||
	    evbuffer_get_length(bufferevent_get_output(r->bev[r->sink])) > 0)
		return;
	r->finishing = 1;
	event_active(r->finisher, EV_TIMEOUT, 0);
}

static void
fault(struct dir *d, enum fault kind)
{
	struct relay *r = d->r;
	static const char *const what[] = { "silent", "cut", "reset" };

	note("connection %u: %s after %" PRIu64 " bytes %s", r->id,
	    what[kind], d->relayed, dir_name(d));
	drop_held(&r->dir[UP]);
	drop_held(&r->dir[DOWN]);
	if (kind == FAULT_SILENT) {
		/* A black hole: both sides may send; nothing gets through. */
		r->state = RELAY_SILENT;
		for (int i = 0; i < 2; i++)
			if (r->bev[i])
				bufferevent_enable(r->bev[i], EV_READ);
		return;
	}
	if (r->bev[d->from]) {
		bufferevent_free(r->bev[d->from]);
		r->bev[d->from] = NULL;
	}
	r->state = RELAY_FLUSH;
	r->sink = d->to;
	r->rst = kind == FAULT_RESET;
	bufferevent_setwatermark(r->bev[r->sink], EV_WRITE, 0, 0);
	flush_check(r);
}

/* The first byte-count fault not yet reached on d, or NO_LIMIT. */
static uint64_t
next_limit(const struct proxy *px, enum fault *kind)
{
	uint64_t stop = NO_LIMIT;

	if (px->silent_after < stop) {
		stop = px->silent_after;
		*kind = FAULT_SILENT;
	}
	if (px->cut_after < stop) {
		stop = px->cut_after;
		*kind = FAULT_CUT;
	}
	if (px->reset_after < stop) {
		stop = px->reset_after;
		*kind = FAULT_RESET;
	}
	return stop;
}

static void
flip(struct dir *d, struct evbuffer *src, size_t off)
{
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v;

	if (evbuffer_ptr_set(src, &pos, off, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_peek(src, 1, &pos, &v, 1) < 1 || v.iov_len == 0) {
		note("connection %u: cannot flip byte %" PRIu64, d->r->id,
		    d->r->px->flip_byte);
		return;
	}
	((unsigned char *)v.iov_base)[0] ^= 0xff;
	note("connection %u: flipped byte %" PRIu64 " %s", d->r->id,
	    d->r->px->flip_byte, dir_name(d));
}

/* Appends the first n bytes of src to the --dump file. A dump that misses
 * bytes would let a test pass on what it never saw: a write error is
 * fatal. */
static void
dump(struct proxy *px, struct evbuffer *src, size_t n)
{
	struct evbuffer_iovec *v;
	int nvec;

	if (px->dump_fd < 0 || n == 0)
		return;
	nvec = evbuffer_peek(src, (ev_ssize_t)n, NULL, NULL, 0);
	if (nvec <= 0 || (v = calloc((size_t)nvec, sizeof(*v))) == NULL)
		die(1, "--dump %s: out of memory", px->dump_path);
	evbuffer_peek(src, (ev_ssize_t)n, NULL, v, nvec);
	for (int i = 0; i < nvec && n > 0; i++) {
		const unsigned char *p = v[i].iov_base;
		size_t len = v[i].iov_len < n ? v[i].iov_len : n;
		n -= len;
		while (len > 0) {
			ssize_t w = write(px->dump_fd, p, len);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				die(1, "--dump %s: %s", px->dump_path,
				    w < 0 ? strerror(errno) : "short write");
			p += w;
			len -= (size_t)w;
		}
	}
	free(v);
}

/* Moves src to d's sink, up to the next fault, and injects it there. */
static void
deliver(struct dir *d, struct evbuffer *src)
{
	struct relay *r = d->r;
	struct proxy *px = r->px;

	while ((r->state == RELAY_OPEN || r->state == RELAY_FLUSH) &&
	    r->bev[d->to] != NULL) {
		enum fault kind = FAULT_CUT;
		uint64_t stop = d->faulty ? next_limit(px, &kind) : NO_LIMIT;
		size_t n = evbuffer_get_length(src);

		if (stop <= d->relayed) {
			fault(d, kind);
			break;
		}
		if (n == 0)
			break;
		if (stop - d->relayed < n)
			n = (size_t)(stop - d->relayed);
		if (d->faulty && px->flip_byte >= d->relayed &&
		    px->flip_byte - d->relayed < n)
			flip(d, src, (size_t)(px->flip_byte - d->relayed));
		dump(px, src, n);
		evbuffer_remove_buffer(src,
		    bufferevent_get_output(r->bev[d->to]), n);
		d->relayed += n;
	}
	evbuffer_drain(src, evbuffer_get_length(src));
}

static void
arm(struct dir *d)
{
	long long wait = d->head->due_ms - now_ms();
	struct timeval tv;

	if (wait < 0)
		wait = 0;
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000 * 1000);
	evtimer_add(d->timer, &tv);
}

static void
on_held_due(evutil_socket_t fd, short what, void *arg)
{
	struct dir *d = arg;
	struct relay *r = d->r;
	long long now = now_ms();

	(void)fd;
	(void)what;
	while (d->head != NULL && d->head->due_ms <= now) {
		struct held *h = d->head;
		d->head = h->next;
		if (d->head == NULL)
			d->tail = NULL;
		d->held_bytes -= evbuffer_get_length(h->buf);
		deliver(d, h->buf);
		evbuffer_free(h->buf);
		free(h);
	}
	if (d->head != NULL)
		arm(d);
	dir_flow(d);
	flush_check(r);
}

static int
hold(struct dir *d, struct evbuffer *in)
{
	struct held *h = calloc(1, sizeof(*h));

	if (h == NULL || (h->buf = evbuffer_new()) == NULL) {
		free(h);
		return -1;
	}
	h->due_ms = now_ms() + (long long)d->r->px->delay_ms;
	d->held_bytes += evbuffer_get_length(in);
	evbuffer_add_buffer(h->buf, in);
	if (d->tail)
		d->tail->next = h;
	else
		d->head = h;
	d->tail = h;
	if (!evtimer_pending(d->timer, NULL))
		arm(d);
	return 0;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct dir *d = &r->dir[bev == r->bev[CLIENT] ? UP : DOWN];
	struct evbuffer *in = bufferevent_get_input(bev);

	if (r->state != RELAY_OPEN || r->bev[d->to] == NULL) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (d->faulty && r->px->delay_ms > 0) {
		if (hold(d, in) != 0) {
			note("connection %u: out of memory", r->id);
			evbuffer_drain(in, evbuffer_get_length(in));
		}
	} else
		deliver(d, in);
	dir_flow(d);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	int side = bev == r->bev[CLIENT] ? CLIENT : SERVER;

	if (r->state == RELAY_OPEN)
		dir_flow(&r->dir[1 - side]);
	else if (r->state == RELAY_FLUSH && side == r->sink)
		flush_check(r);
}

/* The proxy relays at once what it reads: Nagle's algorithm on its sockets
 * would hold back a short tail until the peer acknowledges, and a peer that
 * delays its acknowledgements then waits 40 ms for a frame no real path
 * would have held. */
static void
no_delay(struct bufferevent *bev)
{
	int one = 1;

	setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one));
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;
	int side = bev == r->bev[CLIENT] ? CLIENT : SERVER;

	if (what & BEV_EVENT_CONNECTED) {
		r->connected = 1;
		no_delay(bev);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (side == SERVER && !r->connected) {
		note("connection %u: connect %s: %s", r->id, r->px->target_name,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		relay_free(r);
		return;
	}
	if (side == CLIENT || r->state == RELAY_FLUSH) {
		relay_free(r);
		return;
	}
	/* The server went. */
	bufferevent_free(r->bev[SERVER]);
	r->bev[SERVER] = NULL;
	if (r->state == RELAY_SILENT) {
		note("connection %u: server closed; client kept open", r->id);
		return;
	}
	/* What the server sent is still owed to the client, then a FIN. */
	drop_held(&r->dir[UP]);
	r->state = RELAY_FLUSH;
	r->sink = CLIENT;
	r->rst = 0;
	bufferevent_setwatermark(r->bev[CLIENT], EV_WRITE, 0, 0);
	flush_check(r);
}

/* Closes the sink once its data are out: for a reset, once the kernel has
 * nothing left to send either, since the RST would discard it. */
static void
on_finish(evutil_socket_t unused, short what, void *arg)
{
	struct relay *r = arg;

	(void)unused;
	(void)what;
	if (r->rst && r->bev[r->sink] != NULL) {
		evutil_socket_t fd = bufferevent_getfd(r->bev[r->sink]);
		struct linger lg = { 1, 0 };
		int unsent = 0;

		if (ioctl(fd, SIOCOUTQ, &unsent) == 0 && unsent > 0 &&
		    r->polls++ < RESET_POLLS) {
			struct timeval tv = { 0, RESET_POLL_US };
			evtimer_add(r->finisher, &tv);
			return;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0)
			note("connection %u: SO_LINGER: %s", r->id,
			    strerror(errno));
	}
	relay_free(r);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct proxy *px = arg;
	struct relay *r;
	int faulty;

	(void)l;
	(void)sa;
	(void)salen;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		note("out of memory: connection refused");
		evutil_closesocket(fd);
		return;
	}
	r->px = px;
	r->id = ++px->accepted;
	r->next = px->relays;
	if (r->next)
		r->next->prev = r;
	px->relays = r;
	faulty = px->only_first == NO_LIMIT || r->id <= px->only_first;
	r->bev[CLIENT] = bufferevent_socket_new(px->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (r->bev[CLIENT] == NULL)
		evutil_closesocket(fd);
	r->bev[SERVER] = bufferevent_socket_new(px->base, -1,
	    BEV_OPT_CLOSE_ON_FREE);
	r->finisher = evtimer_new(px->base, on_finish, r);
	for (int i = 0; i < 2; i++) {
		struct dir *d = &r->dir[i];
		d->r = r;
		d->from = i;
		d->to = 1 - i;
		d->faulty = faulty &&
		    (px->direction & (i == UP ? DIR_UP : DIR_DOWN));
		d->timer = evtimer_new(px->base, on_held_due, d);
	}
	if (r->bev[CLIENT] == NULL || r->bev[SERVER] == NULL ||
	    r->finisher == NULL || r->dir[UP].timer == NULL ||
	    r->dir[DOWN].timer == NULL) {
		note("connection %u: out of memory", r->id);
		relay_free(r);
		return;
	}
	no_delay(r->bev[CLIENT]);
	for (int i = 0; i < 2; i++) {
		bufferevent_setcb(r->bev[i], on_read, on_write, on_event, r);
		bufferevent_setwatermark(r->bev[i], EV_WRITE, QUEUE_HIGH / 2,
		    0);
		if (r->dir[i].faulty && px->rate != NULL &&
		    bufferevent_set_rate_limit(r->bev[i], px->rate) != 0)
			note("connection %u: cannot set the rate", r->id);
		bufferevent_enable(r->bev[i], EV_READ | EV_WRITE);
	}
	note("connection %u: accepted%s", r->id, faulty ? "" :
	    ", relayed cleanly");
	if (bufferevent_socket_connect(r->bev[SERVER],
	    (struct sockaddr *)&px->target, (int)px->target_len) != 0) {
		note("connection %u: connect %s: %s", r->id, px->target_name,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		relay_free(r);
	}
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

int
main(int argc, char **argv)
{
	enum { O_DELAY = 256, O_RATE, O_SILENT, O_CUT, O_RESET, O_FLIP,
	    O_ONLY_FIRST, O_DIRECTION, O_DUMP };
	static const struct option longopts[] = {
		{ "delay", required_argument, NULL, O_DELAY },
		{ "rate", required_argument, NULL, O_RATE },
		{ "silent-after", required_argument, NULL, O_SILENT },
		{ "cut-after", required_argument, NULL, O_CUT },
		{ "reset-after", required_argument, NULL, O_RESET },
		{ "flip-byte", required_argument, NULL, O_FLIP },
		{ "only-first", required_argument, NULL, O_ONLY_FIRST },
		{ "direction", required_argument, NULL, O_DIRECTION },
		{ "dump", required_argument, NULL, O_DUMP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct proxy proxy;
	struct proxy *px = &proxy;
	struct sockaddr_in sin;
	struct sockaddr_storage bound;
	socklen_t boundlen = sizeof(bound);
	struct evconnlistener *listener;
	struct event *sigterm, *sigint;
	uint64_t rate = 0;
	int ch;

	px->silent_after = px->cut_after = px->reset_after = NO_LIMIT;
	px->flip_byte = px->only_first = NO_LIMIT;
	px->direction = DIR_DOWN;
	px->dump_fd = -1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case O_DELAY:
			px->delay_ms = parse_number(optarg, 0, 600000, "--delay");
			break;
		case O_RATE:
			rate = parse_number(optarg, 1, 1ull << 40, "--rate");
			break;
		case O_SILENT:
			px->silent_after = parse_number(optarg, 0, NO_LIMIT - 1,
			    "--silent-after");
			break;
		case O_CUT:
			px->cut_after = parse_number(optarg, 0, NO_LIMIT - 1,
			    "--cut-after");
			break;
		case O_RESET:
			px->reset_after = parse_number(optarg, 0, NO_LIMIT - 1,
			    "--reset-after");
			break;
		case O_FLIP:
			px->flip_byte = parse_number(optarg, 0, NO_LIMIT - 1,
			    "--flip-byte");
			break;
		case O_ONLY_FIRST:
			px->only_first = parse_number(optarg, 0, UINT32_MAX,
			    "--only-first");
			break;
		case O_DIRECTION:
			if (strcmp(optarg, "down") == 0)
				px->direction = DIR_DOWN;
			else if (strcmp(optarg, "up") == 0)
				px->direction = DIR_UP;
			else if (strcmp(optarg, "both") == 0)
				px->direction = DIR_UP | DIR_DOWN;
			else
				die(2, "--direction: '%s' is not down, up or "
				    "both", optarg);
			break;
		case O_DUMP:
			px->dump_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	px->target_name = argv[optind];
	parse_target(px, px->target_name);
	if (px->dump_path != NULL && (px->dump_fd = open(px->dump_path,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		die(1, "--dump %s: %s", px->dump_path, strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	if ((px->base = event_base_new()) == NULL)
		die(1, "cannot start the event loop");
	if (rate > 0) {
		/* Ticks of 100 ms keep the flow smooth; below 10 bytes a
		 * second, one byte a tick of 1000/rate ms. */
		struct timeval tick = { 0, 100000 };
		size_t per_tick = (size_t)(rate / 10);
		if (rate < 10) {
			tick.tv_usec = (suseconds_t)(1000000 / rate);
			if (tick.tv_usec >= 1000000) {
				tick.tv_sec = 1;
				tick.tv_usec = 0;
			}
			per_tick = 1;
		}
		px->rate = ev_token_bucket_cfg_new(per_tick, per_tick,
		    EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, &tick);
		if (px->rate == NULL)
			die(1, "--rate: cannot set up the rate limit");
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listener = evconnlistener_new_bind(px->base, on_accept, px,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    -1, (struct sockaddr *)&sin, sizeof(sin));
	if (listener == NULL)
		die(1, "listen 127.0.0.1: %s", strerror(errno));
	if (getsockname(evconnlistener_get_fd(listener),
	    (struct sockaddr *)&bound, &boundlen) != 0)
		die(1, "getsockname: %s", strerror(errno));
	sigterm = evsignal_new(px->base, SIGTERM, on_signal, px->base);
	sigint = evsignal_new(px->base, SIGINT, on_signal, px->base);
	if (sigterm == NULL || sigint == NULL || event_add(sigterm, NULL) ||
	    event_add(sigint, NULL))
		die(1, "cannot watch signals");
	printf("127.0.0.1:%u\n",
	    (unsigned)ntohs(((struct sockaddr_in *)&bound)->sin_port));
	if (fflush(stdout) != 0)
		die(1, "stdout: %s", strerror(errno));
	event_base_dispatch(px->base);
	while (px->relays)
		relay_free(px->relays);
	evconnlistener_free(listener);
	event_free(sigterm);
	event_free(sigint);
	if (px->rate)
		ev_token_bucket_cfg_free(px->rate);
	event_base_free(px->base);
	if (px->dump_fd >= 0 && close(px->dump_fd) != 0)
		die(1, "--dump %s: %s", px->dump_path, strerror(errno));
	return 0;
}
