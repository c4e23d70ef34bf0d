/*
 * p2p-serve: shares files with peers. It serves the files and folders
 * named on its command line (a folder as p2p-send does: every file in it
 * and its tree), every file whose manifest arrives on stdin (as p2p-chunk
 * writes them, taken as they come) and every file under the directories
 * given with -d, answering list, manifest and
 * chunk requests until it is signalled. On plain TCP chunk bytes go from the
 * file to the socket without passing through user space. It is
 * found through a beacon on the discovery port (answers and announcements),
 * joins through bootstrap peers (-b), and tells whoever asks the peers it
 * knows.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "dht.h"
#include "nat.h"
#include "relay.h"
#include "share.h"
#include "tls.h"
#include "tool.h"

#define DEFAULT_PORT 8080
#define DEFAULT_MAX_PEERS 50
#define LIST_MAX 16000 /* entries per LIST_REPLY: within the frame's limits */
#define REQUEST_FRAME_MAX 16384
#define CHECKS_MAX 8 /* connections at once to nodes heard on the LAN */
#define OPT_HIDDEN 0x300 /* past tool.h's and tls.h's long-only options */
#define OPT_RESCAN 0x301
#define DEFAULT_RESCAN 10 /* seconds between walks of the shared folders */

struct server {
	struct event_base *base;
	proto_node *node;
	proto_node_config cfg;
	proto_beacon_config disco;
	int announce;
	struct event *stdin_ev;
	proto_store *store;         /* the node's */
	struct tool_share share;    /* what of it is served, and never */
	int *roots;                 /* every -d directory's and every folder
	                             * named's, kept to serve (-1: none) */
	uint8_t *inbuf;             /* manifest bytes from stdin not yet used */
	size_t inlen, incap;
	int stats;
	unsigned rescan;            /* seconds between walks; 0: on SIGHUP only */
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-serve [-qv] [-p PORT] [--bind ADDR] [-d DIR]... [-n NAME]\n"
	    "                 [--rescan SECONDS]\n"
	    "                 [-b HOST:PORT]... [--no-announce] [--discovery-port PORT]\n"
	    "                 [--discovery-addr ADDR] [--discovery-interval SECONDS]\n"
	    "                 [--max-peers N] [--max-handshakes N]\n"
	    "                 [--max-host-handshakes N] [-T SECONDS] [--max-upload-rate RATE]\n"
	    "                 [--max-download-rate RATE] [--stats] [--json]\n"
	    "                 [--config FILE] [--no-tls] [--identity FILE]\n"
	    "                 [--secret-file FILE] [--hidden] [--dht]\n"
	    "                 [--dht-bootstrap HOST:PORT]... [--dht-port PORT] [--nat] [--no-nat]\n"
	    "                 [--relay] [--relay-port PORT] [--relay-max-circuits N]\n"
	    "                 [--relay-rate RATE] [--via-relay HOST:PORT]\n"
	    "                 [FILE...]\n"
	    "  -p, --port PORT        TCP port to listen on (default %d; 0: any)\n"
	    "      --bind ADDR        address to listen on (default 0.0.0.0)\n"
	    "  -d, --dir DIR          share every regular file under DIR\n"
	    "      --rescan SECONDS   walk the shared folders again this often:\n"
	    "                         new and changed files shared, removed ones\n"
	    "                         withdrawn (default %d; 0: only on SIGHUP)\n"
	    "      --hidden           with -d, share hidden files and directories\n"
	    "                         too (never this node's key, secret or\n"
	    "                         configuration)\n"
	    "  -n, --name NAME        node name told to peers (default: host name)\n"
	    "  -b, --bootstrap HOST:PORT  join through this peer (repeat for more)\n"
	    "      --no-announce      no LAN discovery: neither announce nor answer\n"
	    "      --discovery-port PORT  UDP discovery port (default 9999)\n"
	    "      --discovery-addr ADDR  where announcements go (default: each\n"
	    "                         interface's broadcast address)\n"
	    "      --discovery-interval SECONDS  between announcements (default 30)\n"
	    "      --max-peers N      connections at once (default %d, or\n"
	    "                         MINI_P2P_MAX_PEERS)\n"
	    "      --max-handshakes N of those, still in their handshake; past it a\n"
	    "                         newcomer displaces the oldest (default: all)\n"
	    "      --max-host-handshakes N  handshakes from one address at once\n"
	    "                         (default 8)\n"
	    "  -T, --timeout SECONDS  whole-handshake and stalled-write timeout\n"
	    "                         (default 30)\n"
	    "      --max-upload-rate RATE    send at most RATE bytes/s, over all\n"
	    "                         peers (K, M, G: binary; 0: no limit)\n"
	    "      --max-download-rate RATE  receive at most RATE bytes/s\n"
	    "      --stats            print what was served on stderr at exit\n"
	    "      --json             --stats as a JSON object\n"
	    "      --config FILE      read settings from FILE\n"
	    "      --strict           an unknown key in that file is an error\n"
	    TOOL_TLS_USAGE
	    TOOL_DHT_USAGE
	    TOOL_NAT_USAGE
	    TOOL_RELAY_USAGE
	    "  -q, --quiet            print only errors\n"
	    "  -v, --verbose          print more (repeat for more)\n"
	    "  -h, --help             print this help and exit\n"
	    "  -V, --version          print the version and exit\n"
	    "Each FILE is served (a folder whole, by its tree id); so are the\n"
	    "manifests read on stdin (p2p-chunk FILE | p2p-serve).\n"
	    "Prints the addresses it can be reached at, HOST:PORT a line, on stdout.\n",
	    DEFAULT_PORT, DEFAULT_RESCAN, DEFAULT_MAX_PEERS);
}

/* Takes every complete manifest at the front of the stdin buffer. */
static int
take_manifests(struct server *srv)
{
	size_t used = 0;

	while (used < srv->inlen) {
		proto_manifest *mf;
		long n = proto_manifest_unpack(srv->inbuf + used,
		    srv->inlen - used, &mf);
		if (n == 0)
			break;
		if (n < 0) {
			tool_log(LOG_ERROR, "stdin: not a manifest stream: %s",
			    proto_strerror((int)n));
			return -1;
		}
		used += (size_t)n;
		tool_share_manifest(&srv->share, mf);
	}
	memmove(srv->inbuf, srv->inbuf + used, srv->inlen - used);
	srv->inlen -= used;
	return 0;
}

/* Reads what stdin has; returns 1 at its end, -1 on error, 0 otherwise. */
static int
read_stdin(struct server *srv)
{
	ssize_t n;

	if (srv->inlen == srv->incap) {
		size_t cap = srv->incap ? srv->incap * 2 : 65536;
		if (cap > PROTO_MANIFEST_MAX * 2) {
			tool_log(LOG_ERROR, "stdin: manifest too large");
			return -1;
		}
		if ((srv->inbuf = realloc(srv->inbuf, cap)) == NULL)
			tool_die(1, "out of memory");
		srv->incap = cap;
	}
	n = read(STDIN_FILENO, srv->inbuf + srv->inlen, srv->incap - srv->inlen);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n < 0) {
		tool_log(LOG_ERROR, "stdin: %s", strerror(errno));
		return -1;
	}
	if (n == 0) {
		if (srv->inlen > 0)
			tool_log(LOG_ERROR, "stdin: truncated manifest");
		return 1;
	}
	srv->inlen += (size_t)n;
	return take_manifests(srv);
}

static void
stdin_ready(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	if (read_stdin(srv) != 0) {
		event_del(srv->stdin_ev);
		free(srv->inbuf);
		srv->inbuf = NULL;
		srv->inlen = srv->incap = 0;
	}
}

/* A pipe is read as manifests arrive; a file is read at once; a terminal
 * or a device is not read at all. */
static void
setup_stdin(struct server *srv)
{
	struct stat st;

	if (fstat(STDIN_FILENO, &st) != 0)
		return;
	if (S_ISREG(st.st_mode)) {
		while (read_stdin(srv) == 0)
			;
		return;
	}
	if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
		return;
	evutil_make_socket_nonblocking(STDIN_FILENO);
	srv->stdin_ev = event_new(srv->base, STDIN_FILENO,
	    EV_READ | EV_PERSIST, stdin_ready, srv);
	if (srv->stdin_ev == NULL || event_add(srv->stdin_ev, NULL) != 0)
		tool_die(1, "stdin: cannot watch");
}

static void
start_discovery(struct server *srv)
{
	if (proto_node_start_bootstrap(srv->node) != 0)
		tool_die(1, "out of memory");
	if (!srv->announce)
		return;
	if (proto_node_start_beacon(srv->node, &srv->disco) != 0)
		tool_log(LOG_WARN, "discovery port %u: %s; not discoverable",
		    srv->disco.port, errno == EINVAL ?
		    "bad discovery address" : strerror(errno));
	else
		tool_log(LOG_DEBUG, "discovery on UDP port %u",
		    srv->disco.port);
}

static void
print_stats(const struct server *srv)
{
	proto_server_stats st;
	struct tool_json j;

	proto_server_stats_get(proto_node_server(srv->node), &st);
	if (!tool_opt.json) {
		fprintf(stderr, "p2p-serve: stats bytes_in=%llu bytes_out=%llu "
		    "chunks_out=%llu manifests_out=%llu peers=%llu "
		    "cancelled=%llu datagrams_bad=%llu hashes_out=%llu\n",
		    (unsigned long long)st.bytes_in,
		    (unsigned long long)st.bytes_out,
		    (unsigned long long)st.chunks_out,
		    (unsigned long long)st.manifests_out,
		    (unsigned long long)st.peers,
		    (unsigned long long)st.cancelled,
		    (unsigned long long)st.datagrams_bad,
		    (unsigned long long)st.hashes_out);
		return;
	}
	tool_json_start(&j);
	tool_json_str(&j, "tool", tool_name, strlen(tool_name));
	tool_json_uint(&j, "bytes_in", st.bytes_in);
	tool_json_uint(&j, "bytes_out", st.bytes_out);
	tool_json_uint(&j, "chunks_out", st.chunks_out);
	tool_json_uint(&j, "manifests_out", st.manifests_out);
	tool_json_uint(&j, "peers", st.peers);
	tool_json_uint(&j, "cancelled", st.cancelled);
	tool_json_uint(&j, "datagrams_bad", st.datagrams_bad);
	tool_json_uint(&j, "hashes_out", st.hashes_out);
	(void)tool_json_finish(&j, STDERR_FILENO);
}

/* The shared folders walked again: on the timer, and on SIGHUP. */
static void
on_rescan(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	if (sig == SIGHUP)
		tool_log(LOG_INFO, "SIGHUP: walking the shared folders again");
	tool_share_rescan(&srv->share);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	tool_log(LOG_INFO, "%s: shutting down", strsignal((int)sig));
	event_base_loopbreak(arg);
}

/* Listens, then prints where peers can reach us, one HOST:PORT a line: the
 * address bound to, or for a wildcard (0.0.0.0, ::) each interface's address,
 * those other machines can reach first, since 0.0.0.0:PORT is of use to
 * nobody. */
static void
listen_on(struct server *srv, const char *bind_addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	proto_addr at, mine[PROTO_NODE_ADDRS_MAX];
	int v6 = strchr(bind_addr, ':') != NULL;
	size_t n;

	tool_bind_address(bind_addr, port, &ss, &sslen);
	if (proto_addr_from_sockaddr(&at, (struct sockaddr *)&ss, sslen) != 0 ||
	    proto_node_listen(srv->node, &at) != 0)
		tool_die_errno(1, "bind %s%s%s:%u", v6 ? "[" : "", bind_addr,
		    v6 ? "]" : "", port);
	n = proto_node_addrs(srv->node, mine, PROTO_NODE_ADDRS_MAX);
	for (size_t i = 0; i < n; i++) {
		printf("%s\n", proto_addr_text(&mine[i]));
		tool_log(LOG_INFO, "listening on %s", proto_addr_text(&mine[i]));
	}
	fflush(stdout);
}

static void
on_upload(const proto_upload *u, void *ctx)
{
	(void)ctx;
	tool_share_log_upload(u);
}

static const proto_node_cbs node_cbs = { .log = tool_proto_log,
    .on_upload = on_upload };

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'B' },
		{ "dir", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "max-peers", required_argument, NULL, 'M' },
		{ "max-handshakes", required_argument, NULL, 'H' },
		{ "max-host-handshakes", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "stats", no_argument, NULL, 'S' },
		TOOL_LONGOPT_JSON,
		TOOL_LONGOPTS_RATES,
		{ "bootstrap", required_argument, NULL, 'b' },
		{ "no-announce", no_argument, NULL, 'N' },
		{ "discovery-port", required_argument, NULL, 'D' },
		{ "discovery-addr", required_argument, NULL, 'A' },
		{ "discovery-interval", required_argument, NULL, 'I' },
		{ "hidden", no_argument, NULL, OPT_HIDDEN },
		{ "rescan", required_argument, NULL, OPT_RESCAN },
		TOOL_LONGOPTS_TLS,
		TOOL_LONGOPTS_DHT,
		TOOL_LONGOPTS_NAT,
		TOOL_LONGOPTS_RELAY,
		TOOL_LONGOPTS_COMMON,
	};
	struct server srv;
	proto_dht *dht = NULL;
	struct tool_config config;
	struct event *sigint, *sigterm, *sighup, *rescan_ev;
	static const char **dirs;
	static proto_addr *boot; /* static: reachable at any exit */
	const char *bind_addr = "0.0.0.0";
	uint16_t port = DEFAULT_PORT;
	int ch, ndirs = 0, nroots;

	tool_init("p2p-serve", LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	/* PEERS answers are a random sample: not the same in every run. */
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	tool_raise_fd_limit();
	memset(&srv, 0, sizeof(srv));
	srv.cfg.server.conn.node_name = tool_hostname();
	srv.cfg.server.conn.timeout = 30;
	/* Requests are small; only answers to our bootstrap queries come
	 * close, and those are bounded by PROTO_PEERS_MAX entries. */
	srv.cfg.server.conn.max_frame = REQUEST_FRAME_MAX;
	srv.cfg.server.max_peers = DEFAULT_MAX_PEERS;
	srv.announce = 1;
	srv.rescan = DEFAULT_RESCAN;
	srv.disco.port = PROTO_DISCO_PORT;
	srv.disco.interval = 30;
	tool_config_load(argc, argv, &config);
	srv.disco.target = config.discovery_addr;
	srv.disco.target6 = config.discovery_addr6;
	if (config.has_max_peers)
		srv.cfg.server.max_peers = config.max_peers;
	if (config.has_connection_timeout)
		srv.cfg.server.conn.timeout = config.connection_timeout;
	if (config.has_discovery_interval)
		srv.disco.interval = config.discovery_interval;
	if (config.has_discovery_port)
		srv.disco.port = config.discovery_port;
	srv.cfg.server.inline_chunks = config.inline_chunks;
	tool_dht_config(&config);
	tool_nat_config(&config);
	if ((dirs = calloc((size_t)argc, sizeof(*dirs))) == NULL ||
	    (boot = calloc((size_t)argc, sizeof(*boot))) == NULL)
		tool_die(1, "out of memory");
	while ((ch = getopt_long(argc, argv, "p:d:n:b:T:qvhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'p':
			port = (uint16_t)tool_parse_number(optarg, 0, 65535,
			    "port");
			break;
		case 'B':
			bind_addr = optarg;
			break;
		case 'd':
			dirs[ndirs++] = optarg;
			break;
		case 'n':
			if (strlen(optarg) > PROTO_NODE_NAME_MAX)
				tool_die(2, "name '%s': at most %u bytes",
				    optarg, PROTO_NODE_NAME_MAX);
			srv.cfg.server.conn.node_name = optarg;
			break;
		case 'M':
			srv.cfg.server.max_peers = (unsigned)tool_parse_number(optarg, 1,
			    100000, "max peers");
			break;
		case 'H':
			srv.cfg.server.max_handshakes = (unsigned)tool_parse_number(
			    optarg, 1, 100000, "max handshakes");
			break;
		case 'a':
			srv.cfg.server.max_host_handshakes = (unsigned)tool_parse_number(
			    optarg, 1, 100000, "max host handshakes");
			break;
		case 'T':
			srv.cfg.server.conn.timeout = (unsigned)tool_parse_number(optarg,
			    1, 3600, "timeout");
			break;
		case 'S':
			srv.stats = 1;
			break;
		case OPT_HIDDEN:
			srv.share.hidden = 1;
			break;
		case OPT_RESCAN:
			srv.rescan = (unsigned)tool_parse_number(optarg, 0, 86400,
			    "rescan interval");
			break;
		case 'b':
			tool_parse_peer("bootstrap peer", optarg, 0,
			    &boot[srv.cfg.nboot++]);
			break;
		case 'N':
			srv.announce = 0;
			break;
		case 'D':
			srv.disco.port = (uint16_t)tool_parse_number(optarg, 1,
			    65535, "discovery port");
			break;
		case 'A': {
			struct sockaddr_in sin;
			if (proto_disco_targets(optarg, 1, &sin, 1) != 1)
				tool_die(2, "discovery address '%s': want an "
				    "IPv4 address", optarg);
			srv.disco.target = optarg;
			break;
		}
		case 'I':
			srv.disco.interval = (unsigned)tool_parse_number(optarg,
			    1, 86400, "discovery interval");
			break;
		default:
			if (tool_common_option(ch, usage) ||
			    tool_tls_option(ch) || tool_dht_option(ch) ||
			    tool_nat_option(ch) || tool_relay_option(ch))
				break;
			usage(stderr);
			return 2;
		}
	}
	/* A mistyped name fails before an address is printed; the files are
	 * read once the server listens, as -d directories are. */
	for (int i = optind; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0)
			tool_die_errno(1, "%s", argv[i]);
	}
	tool_tls_start();
	tool_tls_apply(&srv.cfg.server.conn, 1);
	srv.disco.secret = tool_tls_secret();
	nroots = ndirs + (argc - optind);
	if ((srv.roots = calloc((size_t)nroots + 1, sizeof(int))) == NULL)
		tool_die(1, "out of memory");
	for (int i = 0; i < nroots; i++)
		srv.roots[i] = -1;
	for (int i = 0; i < ndirs; i++) {
		srv.roots[i] = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (srv.roots[i] < 0 && errno == ENOTDIR)
			tool_die(1, "%s is a file: to share it, p2p-serve %s",
			    dirs[i], dirs[i]);
		if (srv.roots[i] < 0)
			tool_die_errno(1, "%s", dirs[i]);
	}
	if ((srv.base = event_base_new()) == NULL)
		tool_die(1, "out of memory");
	/* Every connection shares the budget: those accepted and those made
	 * to bootstrap peers. */
	srv.cfg.server.conn.limit = tool_conn_limit(srv.base);
	srv.cfg.boot = boot;
	srv.cfg.boot_interval = srv.disco.interval;
	{
		proto_conn_config client;
		memset(&client, 0, sizeof(client));
		tool_tls_apply(&client, 0);
		srv.cfg.client_tls = client.tls;
	}
	srv.cfg.check_heard = 1;
	srv.cfg.identity = tool_tls_identity();
	tool_relay_apply(&srv.cfg.server.conn);
	if ((srv.node = proto_node_new(srv.base, &srv.cfg, &node_cbs,
	    &srv)) == NULL)
		tool_die(1, "out of memory");
	srv.store = proto_node_store(srv.node);
	/* Before the address is printed: whoever read it may signal at once,
	 * and the signal must end the server cleanly even before the loop
	 * runs (libevent holds it until then). */
	sigint = evsignal_new(srv.base, SIGINT, on_signal, srv.base);
	sigterm = evsignal_new(srv.base, SIGTERM, on_signal, srv.base);
	sighup = evsignal_new(srv.base, SIGHUP, on_rescan, &srv);
	if (sigint == NULL || sigterm == NULL || sighup == NULL ||
	    event_add(sigint, NULL) || event_add(sigterm, NULL) ||
	    event_add(sighup, NULL))
		tool_die(1, "cannot watch signals");
	listen_on(&srv, bind_addr, port);
	tool_log(LOG_INFO, "identity %s%s", tool_tls_identity_hex(),
	    tool_tls_secret() ? " (private swarm)" : "");
	srv.share.store = srv.store;
	tool_share_find_private(&srv.share, &config);
	for (int i = 0; i < ndirs; i++)
		tool_share_dir(&srv.share, dirs[i], srv.roots[i]);
	free(dirs);
	for (int i = optind; i < argc; i++) {
		struct tool_shared got;
		if (tool_share_path(&srv.share, argv[i], &got,
		    &srv.roots[ndirs + i - optind]) != 0)
			exit(1); /* tool_share_path said why */
	}
	setup_stdin(&srv);
	rescan_ev = event_new(srv.base, -1, EV_PERSIST, on_rescan, &srv);
	if (rescan_ev == NULL)
		tool_die(1, "out of memory");
	if (srv.rescan > 0 && srv.share.ndirs > 0) {
		struct timeval tv = { (time_t)srv.rescan, 0 };
		if (event_add(rescan_ev, &tv) != 0)
			tool_die(1, "cannot set the rescan timer");
	}
	if (proto_store_count(srv.store) == 0 && srv.stdin_ev == NULL)
		tool_log(LOG_WARN, "sharing nothing: name files (p2p-serve "
		    "FILE), pipe manifests in (p2p-chunk FILE | p2p-serve) or "
		    "give -d DIR");
	start_discovery(&srv);
	tool_nat_start(srv.node);
	tool_relay_start(srv.node, srv.base, bind_addr);
	if (tool_dht_on())
		dht = tool_dht_start(srv.node, 1);
	event_base_dispatch(srv.base);
	if (srv.stats)
		print_stats(&srv);
	tool_dht_report(dht);
	tool_relay_end(srv.stats);
	proto_node_free(srv.node);
	tool_conn_limit_free();
	event_free(sigint);
	event_free(sigterm);
	event_free(sighup);
	event_free(rescan_ev);
	tool_share_end(&srv.share);
	if (srv.stdin_ev)
		event_free(srv.stdin_ev);
	free(boot);
	for (int i = 0; i < nroots; i++)
		if (srv.roots[i] >= 0)
			close(srv.roots[i]);
	free(srv.roots);
	free(srv.inbuf);
	proto_base_free(srv.base);
	tool_tls_end();
	return 0;
}
