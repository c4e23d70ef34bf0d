/*
 * p2p-discover: finds peers and prints them as HOST:PORT lines as they are
 * found, each once. It asks the LAN (a QUERY datagram to the discovery
 * targets every second, and it listens for announcements), the bootstrap
 * peers given with -b, and every peer found for the peers it knows (peer
 * exchange over TCP). It stops after its timeout, or at once when the
 * reader of its output goes away, so `p2p-discover | p2p-fetch ID` never
 * hangs.
 */
#include <arpa/inet.h>
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

#include "tls.h"
#include "tool.h"

#define DEFAULT_TIMEOUT 5
#define MAX_FOUND 256
#define MAX_TARGETS 16

struct found {
	proto_addr addr;         /* numbers only: what a peer may give */
	char host[PROTO_ADDR_TEXT_MAX]; /* its host alone, for --json */
	int printed, asked;      /* printed: on stdout; asked: for peers */
	int confirmed;           /* has the file (with --hash) */
	int heard;               /* announced itself on the LAN */
	proto_conn *conn;
	struct discover *d;
	char name[PROTO_NODE_NAME_MAX + 1];
	char id[PROTO_IDENTITY_HEX_LEN + 1]; /* from its TLS handshake */
	uint64_t nfiles;
};

struct discover {
	struct event_base *base;
	struct found found[MAX_FOUND];
	size_t nfound;
	int query_fd, listen_fd;
	struct event *query_ev, *listen_ev, *resend_ev, *watch_ev, *end_ev;
	struct sockaddr_in targets[MAX_TARGETS];
	int ntargets;
	uint32_t nonce;
	const uint8_t *want;
	uint8_t want_id[PROTO_HASH_LEN];
	int long_format;
	uint64_t printed, bad;
	proto_conn_config cfg;
	const uint8_t *secret;   /* a private swarm's: datagrams sealed */
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-discover [-lqv] [--json] [-t SECONDS] [-b HOST:PORT]... [--hash ID]\n"
	    "                    [--discovery-port PORT] [--discovery-addr ADDR]\n"
	    "                    [--no-tls] [--identity FILE] [--secret-file FILE]\n"
	    "  -t, --timeout SECONDS      stop after this long (default %d)\n"
	    "  -b, --bootstrap HOST:PORT  ask this peer for the peers it knows\n"
	    "      --hash ID              only peers that have this file\n"
	    "  -l, --long                 HOST:PORT<TAB>NAME<TAB>IDENTITY<TAB>NFILES\n"
	    "      --json                 the same as a JSON object, one a line\n"
	    "      --discovery-port PORT  UDP discovery port (default 9999)\n"
	    "      --discovery-addr ADDR  where queries go (default: each interface's\n"
	    "                             broadcast address)\n"
	    TOOL_TLS_USAGE
	    "  -q, --quiet                print only errors\n"
	    "  -v, --verbose              print more (repeat for more)\n"
	    "  -h, --help                 print this help and exit\n"
	    "  -V, --version              print the version and exit\n"
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
		rc = printf("%s\t%s\t%s\t%llu\n", addr, name[0] ? name : "-",
		    f->id[0] ? f->id : "-", (unsigned long long)f->nfiles);
	} else
		rc = printf("%s\n", addr);
	if (rc < 0 || fflush(stdout) != 0) {
		/* The reader went away: nothing more to do. */
		finish(d);
	}
}

static void ask_peers(struct discover *d, struct found *f);

/* Returns the entry for host:port, adding it (and asking it for its peers)
 * when new; NULL when the table is full or the host is not an address. */
static struct found *
note_peer(struct discover *d, const char *host, size_t host_len, uint16_t port)
{
	proto_addr a;
	struct found *f;

	/* Numbers only: a peer must not make us resolve names. */
	if (proto_addr_from_host(&a, host, host_len, port) != 0)
		return NULL;
	for (size_t i = 0; i < d->nfound; i++)
		if (proto_addr_equal(&d->found[i].addr, &a))
			return &d->found[i];
	if (d->nfound == MAX_FOUND)
		return NULL;
	f = &d->found[d->nfound++];
	memset(f, 0, sizeof(*f));
	f->addr = a;
	proto_addr_host(&a, f->host, sizeof(f->host));
	f->d = d;
	tool_log(LOG_DEBUG, "found %s", proto_addr_text(&a));
	ask_peers(d, f);
	return f;
}

static void
conn_done(struct found *f)
{
	proto_conn_free(f->conn);
	f->conn = NULL;
}

static void
on_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct found *f = arg;
	proto_msg m;

	snprintf(f->name, sizeof(f->name), "%s", proto_conn_peer_name(c));
	f->nfiles = hello->nfiles;
	if (proto_conn_peer_id(c) != NULL)
		proto_hex_encode(proto_conn_peer_id(c), PROTO_IDENTITY_LEN,
		    f->id);
	if (f->d->want) {
		proto_msg_init(&m, PROTO_MSG_HAS);
		m.rid = 1;
		m.id = f->d->want;
		proto_conn_send(c, &m);
	} else {
		f->confirmed = 1;
		print_peer(f->d, f);
	}
	proto_msg_init(&m, PROTO_MSG_PEERS);
	m.rid = 2;
	proto_conn_send(c, &m);
}

static void
on_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct found *f = arg;
	struct discover *d = f->d;

	(void)c;
	if (m->type == PROTO_MSG_HAS_REPLY && m->rid == 1) {
		f->confirmed = m->has;
		print_peer(d, f);
		return;
	}
	if (m->type == PROTO_MSG_PEERS_REPLY) {
		for (size_t i = 0; i < m->npeers; i++)
			note_peer(d, m->peers[i].host, m->peers[i].host_len,
			    m->peers[i].port);
	}
	/* PEERS_REPLY or an ERROR for it ends what we ask of this peer. */
	if (m->rid == 2)
		conn_done(f);
}

static void
on_close(proto_conn *c, int err, void *arg)
{
	struct found *f = arg;

	const char *detail = proto_conn_error_detail(c);

	tool_log(err == PROTO_ERR_TLS || err == PROTO_ERR_AUTH ||
	    err == PROTO_ERR_REFUSED ? LOG_WARN :
	    LOG_DEBUG, "%s: %s%s%s", proto_conn_peer(c),
	    err == PROTO_ERR_SYSTEM ? strerror(errno) : proto_strerror(err),
	    *detail ? ": " : "", detail);
	conn_done(f);
	/* -l waits for the handshake to show the identity; without one,
	 * a node heard on the LAN is still shown. */
	if (f->d->long_format && f->heard)
		print_peer(f->d, f);
}

/* Peer exchange: connect, learn its name and file count from its HELLO,
 * ask whether it has the file, and for the peers it knows. */
static void
ask_peers(struct discover *d, struct found *f)
{
	static const proto_conn_cbs cbs = { on_ready, on_msg, on_close, NULL,
	    NULL, NULL };
	if (f->asked)
		return;
	f->asked = 1;
	f->conn = proto_conn_connect(d->base, (struct sockaddr *)&f->addr.ss,
	    f->addr.len, &d->cfg, &cbs, f);
}

static void
send_query(struct discover *d, const struct sockaddr_in *to)
{
	uint8_t buf[PROTO_DISCO_DATAGRAM_MAX];
	proto_disco_msg m;
	size_t len;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_DISCO_QUERY;
	m.nonce = d->nonce;
	/* No id in the query even with --hash: peers without the file must
	 * answer too, since they may know peers that have it. Whether a peer
	 * has it is asked over TCP (HAS) during peer exchange. */
	if (proto_disco_pack(&m, buf, PROTO_DISCO_DATAGRAM_MAX -
	    PROTO_DISCO_TAG_LEN, &len) == 0 && (d->secret == NULL ||
	    proto_disco_seal(buf, &len, sizeof(buf), d->secret) == 0))
		(void)sendto(d->query_fd, buf, len, MSG_DONTWAIT,
		    (const struct sockaddr *)to, sizeof(*to));
}

static void
resend(evutil_socket_t fd, short what, void *arg)
{
	struct discover *d = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < d->ntargets; i++)
		send_query(d, &d->targets[i]);
}

static void
on_datagram(evutil_socket_t fd, short what, void *arg)
{
	struct discover *d = arg;
	uint8_t buf[PROTO_DISCO_DATAGRAM_MAX];

	(void)what;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_in from;
		socklen_t fromlen = sizeof(from);
		char host[INET_ADDRSTRLEN];
		proto_disco_msg m;
		struct found *f;
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC,
		    (struct sockaddr *)&from, &fromlen);
		if (n < 0)
			break;
		size_t len = (size_t)n;
		if (n > (ssize_t)sizeof(buf) || fromlen != sizeof(from) ||
		    (d->secret != NULL &&
		    proto_disco_open(buf, &len, d->secret) != 0) ||
		    proto_disco_unpack(buf, len, &m) != 0) {
			d->bad++;
			continue;
		}
		if (m.type != PROTO_DISCO_ANNOUNCE)
			continue;
		/* An answer carries our nonce, an announcement 0: another
		 * nonce is someone else's answer, sent on to us. A private
		 * swarm's must also be stamped from where it came, lately. */
		if ((m.nonce != 0 && m.nonce != d->nonce) ||
		    proto_disco_check_announce(&m, &from, time(NULL),
		    d->secret != NULL) != 0) {
			d->bad++;
			continue;
		}
		inet_ntop(AF_INET, &from.sin_addr, host, sizeof(host));
		if ((f = note_peer(d, host, strlen(host), m.port)) == NULL)
			continue;
		snprintf(f->name, sizeof(f->name), "%.*s", (int)m.name_len,
		    m.name);
		f->nfiles = m.nfiles;
		f->heard = 1;
		if (d->want == NULL)
			f->confirmed = 1;
		/* -l waits for the identity the handshake shows. */
		if (!d->long_format || f->conn == NULL)
			print_peer(d, f);
	}
}

/* A pipe's write end reports an error once its reader has gone. */
static void
watch_stdout(evutil_socket_t fd, short what, void *arg)
{
	struct pollfd p = { STDOUT_FILENO, 0, 0 };

	(void)fd;
	(void)what;
	if (poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)))
		finish(arg);
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

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "bootstrap", required_argument, NULL, 'b' },
		{ "hash", required_argument, NULL, 'H' },
		{ "long", no_argument, NULL, 'l' },
		TOOL_LONGOPT_JSON,
		{ "discovery-port", required_argument, NULL, 'D' },
		{ "discovery-addr", required_argument, NULL, 'A' },
		TOOL_LONGOPTS_TLS,
		TOOL_LONGOPTS_COMMON,
	};
	static struct discover disco;
	struct tool_config config;
	/* The bootstrap peers, resolved once (static: reachable at any
	 * exit). */
	static struct boot_peer {
		char host[PROTO_ADDR_TEXT_MAX];
		uint16_t port;
	} *boot;
	struct discover *d = &disco;
	struct timeval tick = { 0, 100000 }, second = { 1, 0 }, end;
	const char *target;
	unsigned timeout = DEFAULT_TIMEOUT;
	uint16_t port = PROTO_DISCO_PORT;
	int ch, nboot = 0;

	tool_init("p2p-discover", LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	tool_config_load(argc, argv, &config);
	target = config.discovery_addr;
	if (config.has_discovery_port)
		port = config.discovery_port;
	if ((boot = calloc((size_t)argc, sizeof(*boot))) == NULL)
		tool_die(1, "out of memory");
	while ((ch = getopt_long(argc, argv, "t:b:lqvhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 't':
			timeout = (unsigned)tool_parse_number(optarg, 1, 3600,
			    "timeout");
			break;
		case 'b': {
			proto_addr a;
			tool_parse_peer("bootstrap peer", optarg, 0, &a);
			proto_addr_host(&a, boot[nboot].host,
			    sizeof(boot[nboot].host));
			boot[nboot++].port = proto_addr_port(&a);
			break;
		}
		case 'H':
			tool_parse_id(optarg, d->want_id);
			d->want = d->want_id;
			break;
		case 'l':
			d->long_format = 1;
			break;
		case 'D':
			port = (uint16_t)tool_parse_number(optarg, 1, 65535,
			    "discovery port");
			break;
		case 'A':
			target = optarg;
			break;
		default:
			if (tool_common_option(ch, usage) ||
			    tool_tls_option(ch))
				break;
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	d->ntargets = proto_disco_targets(target, port, d->targets,
	    MAX_TARGETS);
	if (d->ntargets < 0)
		tool_die(2, "discovery address '%s': want an IPv4 address",
		    target);
	if ((d->base = event_base_new()) == NULL)
		tool_die(1, "out of memory");
	d->cfg.node_name = tool_hostname();
	d->cfg.timeout = timeout;
	tool_tls_start();
	tool_tls_apply(&d->cfg, 0);
	d->secret = tool_tls_secret();
	if (evutil_secure_rng_init() == 0)
		evutil_secure_rng_get_bytes(&d->nonce, sizeof(d->nonce));
	if (d->nonce == 0)
		d->nonce = (uint32_t)getpid() | 1;
	if ((d->query_fd = proto_disco_socket(0, 0)) < 0)
		tool_die_errno(1, "discovery socket");
	d->query_ev = add_event(d, d->query_fd, EV_READ | EV_PERSIST,
	    on_datagram, NULL);
	/* Hearing announcements too is a bonus; another program may hold
	 * the port without sharing it. */
	if ((d->listen_fd = proto_disco_socket(port, 1)) >= 0)
		d->listen_ev = add_event(d, d->listen_fd, EV_READ | EV_PERSIST,
		    on_datagram, NULL);
	else
		tool_log(LOG_DEBUG, "discovery port %u: %s", port,
		    strerror(errno));
	d->resend_ev = add_event(d, -1, EV_PERSIST, resend, &second);
	d->watch_ev = add_event(d, -1, EV_PERSIST, watch_stdout, &tick);
	end.tv_sec = timeout;
	end.tv_usec = 0;
	d->end_ev = add_event(d, -1, 0, on_end, &end);
	resend(-1, 0, d);
	for (int i = 0; i < nboot; i++)
		note_peer(d, boot[i].host, strlen(boot[i].host), boot[i].port);
	event_base_dispatch(d->base);
	for (size_t i = 0; i < d->nfound; i++)
		proto_conn_free(d->found[i].conn);
	if (d->bad > 0)
		tool_log(LOG_DEBUG, "%llu datagrams ignored",
		    (unsigned long long)d->bad);
	if (d->printed == 0)
		tool_log(LOG_ERROR, "no peers found");
	event_free(d->query_ev);
	if (d->listen_ev)
		event_free(d->listen_ev);
	event_free(d->resend_ev);
	event_free(d->watch_ev);
	event_free(d->end_ev);
	close(d->query_fd);
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	proto_base_free(d->base);
	tool_tls_end();
	free(boot);
	return d->printed > 0 ? 0 : 1;
}
