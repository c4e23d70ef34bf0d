/*
 * p2p-send: shares files and folders with one command, and prints for each
 * the line the receiver pastes: p2p-fetch 'p2p://ID@HOST:PORT,...#IDENTITY'
 * (libproto's link.h), with every address of this host other machines can
 * reach and this node's identity to pin. A file is shared by its content
 * id, a folder by its tree id with every file in it (tools/share.c, as
 * p2p-serve -d does). It serves until it is signalled.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "dht.h"
#include "share.h"
#include "tls.h"
#include "tool.h"

#define REQUEST_FRAME_MAX 16384
#define DEFAULT_MAX_PEERS 50
#define OPT_HIDDEN 0x300 /* past tool.h's and tls.h's long-only options */
#define OPT_ONCE 0x301

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-send [-qv] [-p PORT] [--bind ADDR] [--hidden] [--once] [--json]\n"
	    "                [--max-upload-rate RATE] [--max-download-rate RATE]\n"
	    "                [--config FILE] [--no-tls] [--identity FILE]\n"
	    "                [--secret-file FILE] [--dht]\n"
	    "                [--dht-bootstrap HOST:PORT]... [--dht-port PORT]\n"
	    "                PATH...\n"
	    "  -p, --port PORT        TCP port to listen on (default 0: any)\n"
	    "      --bind ADDR        address to listen on (default 0.0.0.0; '::':\n"
	    "                         IPv6 too)\n"
	    "      --hidden           in a folder, share hidden files too (never\n"
	    "                         this node's key, secret or configuration)\n"
	    "      --once             exit 0 once a peer got a whole file (its\n"
	    "                         connection over)\n"
	    "      --json             each link as a JSON object\n"
	    "      --max-upload-rate RATE    send at most RATE bytes/s, over all\n"
	    "                         peers (K, M, G: binary; 0: no limit)\n"
	    "      --max-download-rate RATE  receive at most RATE bytes/s\n"
	    "      --config FILE      read settings from FILE\n"
	    "      --strict           an unknown key in that file is an error\n"
	    TOOL_TLS_USAGE
	    TOOL_DHT_USAGE
	    "  -q, --quiet            print only errors\n"
	    "  -v, --verbose          print more (repeat for more)\n"
	    "  -h, --help             print this help and exit\n"
	    "  -V, --version          print the version and exit\n"
	    "Shares each PATH (a file, or a folder whole) until interrupted, and\n"
	    "prints for each the command that fetches it on another machine:\n"
	    "p2p-fetch 'p2p://ID@HOST:PORT,...#IDENTITY'\n");
}

/* The addresses to put in a link: those other machines can reach, or
 * loopback when there is nothing else; at most PROTO_LINK_ADDRS_MAX. */
static void
link_addrs(proto_node *node, proto_link *l)
{
	proto_addr mine[PROTO_NODE_ADDRS_MAX];
	size_t n = proto_node_addrs(node, mine, PROTO_NODE_ADDRS_MAX);
	int outside = 0;

	for (size_t i = 0; i < n; i++)
		outside |= !proto_addr_is_loopback(&mine[i]);
	for (size_t i = 0; i < n && l->naddrs < PROTO_LINK_ADDRS_MAX; i++)
		if (!outside || !proto_addr_is_loopback(&mine[i]))
			l->addrs[l->naddrs++] = mine[i];
	if (l->naddrs == 0)
		tool_die(1, "no address to put in a link");
}

/* One line per PATH on stdout: the command, or with --json an object. */
static void
print_links(proto_node *node, const struct tool_shared *sent, int n)
{
	static proto_link l; /* static: 16 addresses are big for a stack */
	char text[PROTO_LINK_MAX + 1];

	memset(&l, 0, sizeof(l));
	link_addrs(node, &l);
	if (tool_tls_identity() != NULL) {
		if (proto_id_parse(tool_tls_identity_hex(), l.identity) != 0)
			tool_die(1, "identity: not 64 hex digits");
		l.has_identity = 1;
	}
	for (int i = 0; i < n; i++) {
		struct tool_json j;

		memcpy(l.id, sent[i].id, PROTO_HASH_LEN);
		if (proto_link_format(&l, text, sizeof(text)) != 0)
			tool_die(1, "link too long");
		if (!tool_opt.json) {
			printf("p2p-fetch '%s'\n", text);
			continue;
		}
		fflush(stdout);
		tool_json_start(&j);
		tool_json_str(&j, "path", sent[i].path, strlen(sent[i].path));
		tool_json_str(&j, "type", sent[i].tree ? "tree" : "file", 4);
		tool_json_str(&j, "link", text, strlen(text));
		if (tool_json_finish(&j, STDOUT_FILENO) != 0)
			tool_die_errno(1, "stdout");
	}
	if (fflush(stdout) != 0)
		tool_die_errno(1, "stdout");
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	tool_log(LOG_INFO, "%s: stopped sending", strsignal((int)sig));
	event_base_loopbreak(arg);
}

static struct event_base *loop; /* on_upload's, to end with --once */
static int once;

/* Each upload said (with -v); with --once, the first whole file to reach
 * a peer ends the run, once its connection is over (so every byte got
 * there). A folder's files are many uploads, hence --once takes files
 * only. */
static void
on_upload(const proto_upload *u, void *ctx)
{
	(void)ctx;
	tool_share_log_upload(u);
	if (once && u->complete && u->ended) {
		tool_log(LOG_INFO, "--once: a whole file was sent; done");
		event_base_loopbreak(loop);
	}
}

static const proto_node_cbs node_cbs = { .log = tool_proto_log,
    .on_upload = on_upload };

/* The node: listening, TLS as the options say, on the LAN's discovery. */
static proto_node *
start_node(struct event_base *base, const char *bind_addr, uint16_t port,
    const struct tool_config *config)
{
	proto_node_config cfg;
	proto_beacon_config disco;
	proto_conn_config client;
	struct sockaddr_storage ss;
	socklen_t sslen;
	proto_addr at;
	proto_node *node;

	memset(&cfg, 0, sizeof(cfg));
	cfg.server.conn.node_name = tool_hostname();
	cfg.server.conn.timeout = config->has_connection_timeout ?
	    config->connection_timeout : 30;
	cfg.server.conn.max_frame = REQUEST_FRAME_MAX;
	cfg.server.max_peers = config->has_max_peers ? config->max_peers :
	    DEFAULT_MAX_PEERS;
	cfg.server.inline_chunks = config->inline_chunks;
	tool_tls_apply(&cfg.server.conn, 1);
	cfg.server.conn.limit = tool_conn_limit(base);
	memset(&client, 0, sizeof(client));
	tool_tls_apply(&client, 0);
	cfg.client_tls = client.tls;
	cfg.identity = tool_tls_identity();
	if ((node = proto_node_new(base, &cfg, &node_cbs, NULL)) == NULL)
		tool_die(1, "out of memory");
	tool_bind_address(bind_addr, port, &ss, &sslen);
	if (proto_addr_from_sockaddr(&at, (struct sockaddr *)&ss, sslen) != 0 ||
	    proto_node_listen(node, &at) != 0)
		tool_die_errno(1, "bind %s port %u", bind_addr, port);
	memset(&disco, 0, sizeof(disco));
	disco.port = config->has_discovery_port ? config->discovery_port :
	    PROTO_DISCO_PORT;
	disco.target = config->discovery_addr;
	disco.target6 = config->discovery_addr6;
	disco.secret = tool_tls_secret();
	disco.answer_only = 1;
	if (proto_node_start_beacon(node, &disco) != 0)
		tool_log(LOG_DEBUG, "discovery port %u: %s; not discoverable",
		    disco.port, strerror(errno));
	return node;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'B' },
		{ "hidden", no_argument, NULL, OPT_HIDDEN },
		{ "once", no_argument, NULL, OPT_ONCE },
		TOOL_LONGOPT_JSON,
		TOOL_LONGOPTS_RATES,
		TOOL_LONGOPTS_TLS,
		TOOL_LONGOPTS_DHT,
		TOOL_LONGOPTS_COMMON,
	};
	static struct tool_share share;
	struct tool_config config;
	struct event_base *base;
	struct event *sigint, *sigterm;
	const char *bind_addr = "0.0.0.0";
	struct tool_shared *sent;
	proto_node *node;
	proto_dht *dht = NULL;
	uint16_t port = 0;
	int ch, n, *roots;

	tool_init("p2p-send", LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	tool_raise_fd_limit();
	tool_config_load(argc, argv, &config);
	tool_dht_config(&config);
	while ((ch = getopt_long(argc, argv, "p:qvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			port = (uint16_t)tool_parse_number(optarg, 0, 65535,
			    "port");
			break;
		case 'B':
			bind_addr = optarg;
			break;
		case OPT_HIDDEN:
			share.hidden = 1;
			break;
		case OPT_ONCE:
			once = 1;
			break;
		default:
			if (tool_common_option(ch, usage) ||
			    tool_tls_option(ch) || tool_dht_option(ch))
				break;
			usage(stderr);
			return 2;
		}
	}
	if ((n = argc - optind) == 0) {
		fprintf(stderr, "p2p-send: no PATH: give the files or folders "
		    "to send\n");
		usage(stderr);
		return 2;
	}
	for (int i = optind; once && i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			fprintf(stderr, "p2p-send: --once: %s is a folder; "
			    "--once sends files only\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if ((sent = calloc((size_t)n, sizeof(*sent))) == NULL ||
	    (roots = calloc((size_t)n, sizeof(*roots))) == NULL)
		tool_die(1, "out of memory");
	for (int i = 0; i < n; i++)
		roots[i] = -1;
	tool_tls_start();
	if ((base = loop = event_base_new()) == NULL)
		tool_die(1, "out of memory");
	sigint = evsignal_new(base, SIGINT, on_signal, base);
	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	if (sigint == NULL || sigterm == NULL || event_add(sigint, NULL) ||
	    event_add(sigterm, NULL))
		tool_die(1, "cannot watch signals");
	node = start_node(base, bind_addr, port, &config);
	share.store = proto_node_store(node);
	tool_share_find_private(&share, &config);
	for (int i = 0; i < n; i++)
		if (tool_share_path(&share, argv[optind + i], &sent[i],
		    &roots[i]) != 0)
			exit(1); /* tool_share_path said why */
	print_links(node, sent, n);
	if (tool_level >= LOG_WARN && isatty(STDERR_FILENO))
		fprintf(stderr, "p2p-send: on the other machine, run the line "
		    "above; sending until interrupted (Ctrl-C)\n");
	if (tool_dht_on())
		dht = tool_dht_start(node, 1);
	event_base_dispatch(base);
	tool_dht_report(dht);
	proto_node_free(node);
	tool_conn_limit_free();
	event_free(sigint);
	event_free(sigterm);
	for (int i = 0; i < n; i++)
		if (roots[i] >= 0)
			close(roots[i]);
	tool_share_end(&share);
	free(roots);
	free(sent);
	proto_base_free(base);
	tool_tls_end();
	return 0;
}
