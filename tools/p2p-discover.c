/*
 * p2p-discover: finds peers and prints them as HOST:PORT lines as they are
 * found, each once. It is a node with no listener that asks: the LAN (a
 * QUERY datagram to the discovery targets every second, and it listens for
 * announcements), the bootstrap peers given with -b, and every peer found
 * for the peers it knows (peer exchange over TCP), through the node's
 * query sources (nodequery.h). What they report, this prints. It stops
 * after its timeout, or at once when the reader of its output goes away,
 * so `p2p-discover | p2p-fetch ID` never hangs; with --quick (or -t 0)
 * as soon as every peer it asked has answered and nothing new came for a
 * short quiet time.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "dht.h"
#include "tls.h"
#include "tool.h"

#define DEFAULT_TIMEOUT 5
#define MAX_FOUND 256
#define QUIET_SECONDS 1.0 /* --quick: nothing new for this long ends it */

/* A peer reported, and what is known of it. */
struct found {
	proto_addr addr;         /* numbers only: what a peer may give */
	char host[PROTO_ADDR_TEXT_MAX]; /* its host alone, for --json */
	int printed;             /* on stdout */
	int confirmed;           /* has the file (with --hash) */
	int heard;               /* announced itself on the LAN */
	int unreached;           /* a connection to it failed or ended */
	int answered;            /* said what this run waits for of it */
	char name[PROTO_NODE_NAME_MAX + 1];
	char id[PROTO_IDENTITY_HEX_LEN + 1]; /* from its TLS handshake */
	uint64_t nfiles;
	const char *path;        /* how its handshake was reached; NULL */
};

struct discover {
	struct event_base *base;
	proto_node *node;
	struct found found[MAX_FOUND];
	size_t nfound;
	struct event *watch_ev, *end_ev;
	const uint8_t *want;
	uint8_t want_id[PROTO_HASH_LEN];
	int long_format;
	uint64_t printed;
	proto_dht *dht;         /* the node's, with --dht */
	int quick;              /* --quick, -t 0 */
	double news;            /* when the last new thing came, monotonic */
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-discover [-lqv] [--json] [--quick] [-t SECONDS] [-b HOST:PORT]...\n"
	    "                    [--hash ID]\n"
	    "                    [--discovery-port PORT] [--discovery-addr ADDR]\n"
	    "                    [--no-tls] [--identity FILE] [--secret-file FILE]\n"
	    "                    [--dht] [--dht-bootstrap HOST:PORT]... [--dht-port PORT]\n"
	    "                    [--config FILE] [--strict]\n"
	    "  -t, --timeout SECONDS  stop after this long (default %d; 0: --quick)\n"
	    "      --quick            stop once every peer asked has answered and\n"
	    "                         nothing new came for a second\n"
	    "  -b, --bootstrap HOST:PORT  ask this peer for the peers it knows\n"
	    "      --hash ID          only peers that have this file\n"
	    "  -l, --long             HOST:PORT<TAB>NAME<TAB>IDENTITY<TAB>NFILES\n"
	    "                         <TAB>PATH (direct, mapped; - not met)\n"
	    "      --json             the same as a JSON object, one a line\n"
	    "      --discovery-port PORT  UDP discovery port (default 9999)\n"
	    "      --discovery-addr ADDR  where queries go (default: each interface's\n"
	    "                         broadcast address)\n"
	    TOOL_TLS_USAGE
	    TOOL_DHT_USAGE
	    "      --config FILE      read settings from FILE\n"
	    "      --strict           an unknown key in that file is an error\n"
	    "  -q, --quiet            print only errors\n"
	    "  -v, --verbose          print more (repeat for more)\n"
	    "  -h, --help             print this help and exit\n"
	    "  -V, --version          print the version and exit\n"
	    "Prints each peer found once, as HOST:PORT; exit 0 when it found any,\n"
	    "1 when none.\n", DEFAULT_TIMEOUT);
}

static void
finish(struct discover *d)
{
	event_base_loopbreak(d->base);
}

static int
print_peer_json(const struct found *f, const char *addr)
{
	struct tool_json j;

	tool_json_start(&j);
	tool_json_str(&j, "addr", addr, strlen(addr));
	tool_json_str(&j, "host", f->host, strlen(f->host));
	tool_json_uint(&j, "port", proto_addr_port(&f->addr));
	tool_json_str(&j, "name", f->name, strlen(f->name));
	tool_json_null(&j, "identity"); /* until TLS */
	tool_json_uint(&j, "nfiles", f->nfiles);
	if (f->path != NULL)
		tool_json_str(&j, "path", f->path, strlen(f->path));
	else
		tool_json_null(&j, "path");
	return tool_json_finish(&j, STDOUT_FILENO);
}

static void
print_peer(struct discover *d, struct found *f)
{
	char name[PROTO_NODE_NAME_MAX + 1];
	const char *addr = proto_addr_text(&f->addr);
	int rc;

	if (f->printed || (d->want && !f->confirmed))
		return;
	f->printed = 1;
	d->printed++;
	if (tool_opt.json) {
		rc = print_peer_json(f, addr);
	} else if (d->long_format) {
		proto_msg_printable(name, sizeof(name), f->name, strlen(f->name));
		for (char *t = name; *t; t++)
			if (*t == '\t')
				*t = '?';
		rc = printf("%s\t%s\t%s\t%llu\t%s\n", addr,
		    name[0] ? name : "-", f->id[0] ? f->id : "-",
		    (unsigned long long)f->nfiles, f->path ? f->path : "-");
	} else
		rc = printf("%s\n", addr);
	if (rc < 0 || fflush(stdout) != 0) {
		/* The reader went away: nothing more to do. */
		finish(d);
	}
}

/* The entry for addr, added when new; NULL when the table is full. */
static struct found *
entry(struct discover *d, const proto_addr *addr)
{
	struct found *f;

	for (size_t i = 0; i < d->nfound; i++)
		if (proto_addr_equal(&d->found[i].addr, addr))
			return &d->found[i];
	if (d->nfound == MAX_FOUND)
		return NULL;
	f = &d->found[d->nfound++];
	memset(f, 0, sizeof(*f));
	f->addr = *addr;
	proto_addr_host(addr, f->host, sizeof(f->host));
	tool_log(LOG_DEBUG, "found %s", proto_addr_text(addr));
	return f;
}

/* What the node's sources report. A peer heard on the LAN is printed at
 * once; -l waits for the identity its handshake shows, or for the
 * connection to fail; --hash waits for its answer. */
static void
on_seen(const proto_node_seen *s, void *arg)
{
	struct discover *d = arg;
	struct found *f = entry(d, &s->addr);

	if (f == NULL)
		return;
	d->news = now();
	if (s->what == PROTO_NODE_HEARD || s->what == PROTO_NODE_MET) {
		if (s->name != NULL)
			snprintf(f->name, sizeof(f->name), "%s", s->name);
		if (s->has_nfiles)
			f->nfiles = s->nfiles;
		if (s->identity != NULL)
			proto_hex_encode(s->identity, PROTO_IDENTITY_LEN,
			    f->id);
		if (s->path != NULL)
			f->path = s->path;
	}
	switch (s->what) {
	case PROTO_NODE_HEARD:
		f->heard = 1;
		/* Its datagram answers a plain run; -l and --hash wait for a
		 * connection's word. */
		f->answered |= !d->long_format && d->want == NULL;
		if (d->want == NULL)
			f->confirmed = 1;
		if (!d->long_format || f->unreached)
			print_peer(d, f);
		break;
	case PROTO_NODE_MET:
		f->answered |= d->want == NULL;
		if (d->want == NULL) {
			f->confirmed = 1;
			print_peer(d, f);
		}
		break;
	case PROTO_NODE_HAS:
		f->answered = 1;
		f->confirmed = s->has;
		print_peer(d, f);
		break;
	case PROTO_NODE_UNREACHED:
		f->answered = 1;
		f->unreached = 1;
		/* A node heard on the LAN is still shown without its
		 * identity. */
		if (d->long_format && f->heard)
			print_peer(d, f);
		break;
	}
}

/* --quick: done when every peer asked (the bootstrap peers, and those
 * found, which are asked in turn) has answered and nothing new came for
 * the quiet time. */
static int
quick_done(const struct discover *d)
{
	if (now() - d->news < QUIET_SECONDS)
		return 0;
	for (size_t i = 0; i < d->nfound; i++)
		if (!d->found[i].answered)
			return 0;
	return 1;
}

/* A pipe's write end reports an error once its reader has gone. */
static void
watch_stdout(evutil_socket_t fd, short what, void *arg)
{
	struct pollfd p = { STDOUT_FILENO, 0, 0 };
	struct discover *d = arg;

	(void)fd;
	(void)what;
	if (poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)))
		finish(d);
	else if (d->quick && quick_done(d))
		finish(d);
}

static void
on_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg);
}

static struct event *
add_event(struct discover *d, int fd, short what, event_callback_fn cb,
    const struct timeval *tv)
{
	struct event *ev = event_new(d->base, fd, what, cb, d);

	if (ev == NULL || event_add(ev, tv) != 0)
		tool_die(1, "out of memory");
	return ev;
}

static void
start_node(struct discover *d, const proto_addr *boot, size_t nboot,
    unsigned timeout, const proto_node_query_config *q)
{
	static const proto_node_cbs cbs = { .log = tool_proto_log };
	proto_node_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.server.conn.node_name = tool_hostname();
	cfg.server.conn.timeout = timeout;
	tool_tls_apply(&cfg.server.conn, 0);
	/* It never listens: its TLS context is the one it connects with. */
	cfg.client_tls = cfg.server.conn.tls;
	cfg.server.conn.tls = NULL;
	cfg.boot = boot;
	cfg.nboot = nboot;
	if ((d->node = proto_node_new(d->base, &cfg, &cbs, d)) == NULL ||
	    proto_node_watch(d->node, on_seen, d) != 0 ||
	    proto_node_query_peers(d->node) != 0)
		tool_die(1, "out of memory");
	/* Before the lookup, which it is asked too. */
	if (tool_dht_on())
		d->dht = tool_dht_start(d->node, 0);
	if (d->want != NULL)
		(void)proto_node_lookup(d->node, d->want);
	if (proto_node_query_lan(d->node, q) != 0)
		tool_die_errno(1, "discovery socket");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "bootstrap", required_argument, NULL, 'b' },
		{ "hash", required_argument, NULL, 'H' },
		{ "long", no_argument, NULL, 'l' },
		{ "quick", no_argument, NULL, 'Q' },
		TOOL_LONGOPT_JSON,
		{ "discovery-port", required_argument, NULL, 'D' },
		{ "discovery-addr", required_argument, NULL, 'A' },
		TOOL_LONGOPTS_TLS,
		TOOL_LONGOPTS_DHT,
		TOOL_LONGOPTS_COMMON,
	};
	static struct discover disco;
	struct tool_config config;
	/* The bootstrap peers, resolved once (static: reachable at any
	 * exit). */
	static proto_addr *boot;
	struct discover *d = &disco;
	struct timeval tick = { 0, 100000 }, end;
	proto_node_query_config q;
	struct sockaddr_in target;
	unsigned timeout = DEFAULT_TIMEOUT;
	int ch;
	size_t nboot = 0;

	tool_init("p2p-discover", LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	tool_config_load(argc, argv, &config);
	tool_dht_config(&config);
	memset(&q, 0, sizeof(q));
	q.target = config.discovery_addr;
	q.target6 = config.discovery_addr6;
	q.port = PROTO_DISCO_PORT;
	if (config.has_discovery_port)
		q.port = config.discovery_port;
	if ((boot = calloc((size_t)argc, sizeof(*boot))) == NULL)
		tool_die(1, "out of memory");
	while ((ch = getopt_long(argc, argv, "t:b:lqvhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 't':
			timeout = (unsigned)tool_parse_number(optarg, 0, 3600,
			    "timeout");
			break;
		case 'Q':
			d->quick = 1;
			break;
		case 'b':
			tool_parse_peer("bootstrap peer", optarg, 0,
			    &boot[nboot++]);
			break;
		case 'H':
			tool_parse_id(optarg, d->want_id);
			d->want = d->want_id;
			break;
		case 'l':
			d->long_format = 1;
			break;
		case 'D':
			q.port = (uint16_t)tool_parse_number(optarg, 1, 65535,
			    "discovery port");
			break;
		case 'A':
			q.target = optarg;
			break;
		default:
			if (tool_common_option(ch, usage) ||
			    tool_tls_option(ch) || tool_dht_option(ch))
				break;
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (proto_disco_targets(q.target, q.port, &target, 1) < 0)
		tool_die(2, "discovery address '%s': want an IPv4 address",
		    q.target);
	/* -t 0: --quick, within the default time. */
	if (timeout == 0) {
		d->quick = 1;
		timeout = DEFAULT_TIMEOUT;
	}
	if ((d->base = event_base_new()) == NULL)
		tool_die(1, "out of memory");
	tool_tls_start();
	q.seconds = timeout;
	q.secret = tool_tls_secret();
	d->news = now();
	start_node(d, boot, nboot, timeout, &q);
	/* The bootstrap peers are asked: each is waited for. */
	for (size_t i = 0; i < nboot; i++)
		(void)entry(d, &boot[i]);
	d->watch_ev = add_event(d, -1, EV_PERSIST, watch_stdout, &tick);
	end.tv_sec = timeout;
	end.tv_usec = 0;
	d->end_ev = add_event(d, -1, 0, on_end, &end);
	event_base_dispatch(d->base);
	tool_dht_report(d->dht);
	proto_node_free(d->node);
	if (d->printed == 0)
		tool_log(LOG_ERROR, "no peers found");
	event_free(d->watch_ev);
	event_free(d->end_ev);
	proto_base_free(d->base);
	tool_tls_end();
	free(boot);
	return d->printed > 0 ? 0 : 1;
}
