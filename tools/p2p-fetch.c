/*
 * p2p-fetch: downloads a file by content id from several peers at once.
 * Peers come from -p and from HOST:PORT lines on stdin (what p2p-discover
 * prints), joining as they arrive; libproto's fetch (fetch.h) does the
 * asking, verifying and dropping, and its output (output.h) the writing:
 * to stdout in order, or with -o through FILE.part, renamed to FILE when
 * complete; a later run over the same FILE.part keeps every chunk that
 * already checks and fetches only the rest. What remains here is the
 * words: options, messages and progress; --list, the peers on stdin and
 * --stats are in fetchlist.c, peerlines.c and fetchstats.c.
 *
 * Writing to a file, the fetch is a peer too: it listens, serves the chunks
 * it has verified from FILE.part, tells its peers (HAVE) as it gets more,
 * and with --seed keeps serving once complete.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "dht.h"
#include "nat.h"
#include "p2p-fetch.h"
#include "tls.h"

#define DEFAULT_TIMEOUT 30
#define DEFAULT_MAX_PEERS 50

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-fetch [-qvO] [-p HOST:PORT]... [-o FILE|DIR] [--force]\n"
	    "                 [-T SECONDS] [--max-peers N] [--seed] [--no-share]\n"
	    "                 [--port PORT] [--bind ADDR] [--max-download-rate RATE]\n"
	    "                 [--max-upload-rate RATE] [--progress] [--stats]\n"
	    "                 [--json] [--config FILE] [--no-tls]\n"
	    "                 [--identity FILE] [--secret-file FILE] [--dht] [--nat]\n"
	    "                 [--dht-bootstrap HOST:PORT]... [--dht-port PORT] [--no-nat]\n"
	    "                 ID | PREFIX | p2p://ID[@HOST:PORT,...][#IDENTITY]\n"
	    "       p2p-fetch [options] --name NAME\n"
	    "       p2p-fetch --list [--json] [-p HOST:PORT]...\n"
	    "  -p, --peer [ID@]HOST:PORT  fetch from this peer (repeat for more);\n"
	    "                         with ID, only if it shows that identity; '-'\n"
	    "                         or no -p at all: read HOST:PORT lines on stdin;\n"
	    "                         ID@dht: the node of that identity, wherever\n"
	    "                         the DHT says it is now; ID@relay:HOST:PORT:\n"
	    "                         through the relay there\n"
	    "  -o, --output FILE      write to FILE (through FILE.part, resumable)\n"
	    "                         instead of stdout; an existing DIR: write\n"
	    "                         there under the sender's name\n"
	    "  -O, --remote-name      write under the sender's name, here (a link\n"
	    "                         does so too)\n"
	    "      --force            write over an existing file that is not this\n"
	    "                         one (by default refused)\n"
	    "  -T, --timeout SECONDS  connect timeout, and the longest wait with no\n"
	    "                         progress (default 30, or MINI_P2P_TIMEOUT)\n"
	    "      --max-peers N      peers at once, each way (default %d, or\n"
	    "                         MINI_P2P_MAX_PEERS)\n"
	    "      --seed             with -o: once complete, go on serving the file\n"
	    "                         until interrupted\n"
	    "      --no-share         with -o: do not serve the chunks fetched so far\n"
	    "                         to other peers (by default a fetch to a file\n"
	    "                         does)\n"
	    "      --port PORT        TCP port to serve on (default 0: any)\n"
	    "      --bind ADDR        address to serve on (default 0.0.0.0)\n"
	    "      --list             list the files the peers share, each once:\n"
	    "                         ID<TAB>SIZE<TAB>NAME\n"
	    "      --name NAME        fetch what the peers list as NAME (or that\n"
	    "                         path in a tree); PREFIX (8 hex digits or more\n"
	    "                         of an id) is looked up in the lists too\n"
	    "      --max-download-rate RATE  receive at most RATE bytes/s, over all\n"
	    "                         peers (K, M, G: binary; 0: no limit)\n"
	    "      --max-upload-rate RATE    send at most RATE bytes/s\n"
	    "      --progress         show progress on stderr even when it is not\n"
	    "                         a terminal\n"
	    "      --stats            print what was fetched from whom on stderr\n"
	    "      --json             --list and --stats as JSON, one object a line\n"
	    "      --config FILE      read settings from FILE\n"
	    "      --strict           an unknown key in that file is an error\n"
	    TOOL_TLS_USAGE
	    TOOL_DHT_USAGE
	    TOOL_NAT_USAGE
	    "  -q, --quiet            print only errors, no progress\n"
	    "  -v, --verbose          print more (repeat for more)\n"
	    "  -h, --help             print this help and exit\n"
	    "  -V, --version          print the version and exit\n",
	    DEFAULT_MAX_PEERS);
}

/* Says why the output failed, and ends the fetch. */
static void
output_failed(struct fetch *f, int rc)
{
	if (rc == PROTO_ERR_SYSTEM && f->part_path != NULL)
		tool_log(LOG_ERROR, "%s: %s (partial file kept)", proto_output_file(f->out),
		    strerror(errno));
	else if (rc == PROTO_ERR_SYSTEM && errno != EPIPE)
		tool_log(LOG_ERROR, "write: %s", strerror(errno));
	else if (rc != PROTO_ERR_SYSTEM)
		tool_log(LOG_ERROR, "%s", proto_strerror(rc));
	fetch_finish(f, 1);
}

/* With --seed the node stays to serve the whole file: the peers it fetched
 * from are no longer needed. */
static void
start_seeding(struct fetch *f)
{
	f->seeding = 1;
	proto_store_set_have(f->store, f->id, NULL);
	proto_fetch_close(f->fx);
	tool_log(LOG_INFO, "%s: seeding on port %u until interrupted", f->hex,
	    proto_server_port(f->server));
}

static void
on_complete(void *arg)
{
	struct fetch *f = arg;
	int rc;

	if ((rc = proto_output_finish(f->out)) != 0) {
		output_failed(f, rc);
		return;
	}
	tool_log(LOG_INFO, "%s: complete, %llu bytes", f->hex,
	    (unsigned long long)f->mf->size);
	if (f->server != NULL)
		proto_server_flush_news(f->server);
	if (f->seed && f->server != NULL)
		start_seeding(f);
	else
		fetch_finish(f, 0);
}

static void
on_chunk(uint64_t index, const uint8_t *data, size_t len, void *arg)
{
	struct fetch *f = arg;
	int rc;

	if ((rc = proto_output_write(f->out, index, data, len)) != 0) {
		output_failed(f, rc);
		return;
	}
	f->bytes_fetched += len;
	if (proto_output_limit(f->out) != 0)
		proto_fetch_set_order(f->fx, proto_output_limit(f->out));
	fetch_share_chunk(f, index);
}

/* A chunk an earlier run left in FILE.part, checked. */
static void
on_held(uint64_t index, void *arg)
{
	struct fetch *f = arg;

	proto_fetch_held(f->fx, index);
	if (f->mf != NULL)
		f->bytes_resumed += fetch_chunk_length(f->mf, index);
	fetch_share_chunk(f, index);
}

/* Hashes arrived for chunks of a manifest that came without its layer:
 * those of them FILE.part holds already are kept. */
static void
on_hashes(uint64_t first, uint64_t count, void *arg)
{
	struct fetch *f = arg;
	uint64_t kept = 0;

	if (f->out == NULL)
		return;
	(void)proto_output_resume_range(f->out, first, count, on_held, f,
	    &kept);
	f->chunks_resumed += kept;
	fetch_note_resumed(f);
	if (kept > 0)
		tool_log(LOG_DEBUG, "%s: %llu of chunks %llu to %llu already "
		    "there", proto_output_file(f->out), (unsigned long long)kept,
		    (unsigned long long)first,
		    (unsigned long long)(first + count - 1));
}

static int
on_manifest(proto_manifest *mf, void *arg)
{
	struct fetch *f = arg;

	f->mf = mf;
	if (fetch_output_for(f, mf) != 0 || fetch_open_output(f) != 0) {
		fetch_finish(f, 1);
		return -1;
	}
	/* Served chunk by chunk as they are verified, those kept first. */
	if (f->server != NULL && proto_output_share(f->out, f->store) != 0) {
		tool_log(LOG_ERROR, "out of memory");
		return -1;
	}
	/* What cannot be read back is simply fetched again. */
	(void)proto_output_resume(f->out, on_held, f, &f->chunks_resumed);
	if (f->chunks_resumed > 0)
		tool_log(LOG_INFO, "%s: %llu of %llu chunks already there",
		    proto_output_file(f->out), (unsigned long long)f->chunks_resumed,
		    (unsigned long long)mf->nchunks);
	fetch_note_resumed(f);
	fetch_output_held(f);
	if (proto_output_limit(f->out) != 0)
		proto_fetch_set_order(f->fx, proto_output_limit(f->out));
	return 0;
}

static void
on_end(int code, void *arg)
{
	fetch_finish(arg, code);
}

static void
show_progress(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;

	(void)fd;
	(void)what;
	tool_progress_update(&f->progress, fetch_progress_done(f, 1),
	    f->mf ? f->mf->size : 0, fetch_sending_peers(f));
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct fetch *f = arg;

	(void)what;
	if (f->seeding) {
		tool_log(LOG_INFO, "%s: stopped seeding", strsignal((int)sig));
		fetch_finish(f, 0);
		return;
	}
	if (fetch_to_file(f) && f->mf != NULL && f->tree == NULL)
		tool_log(LOG_ERROR, "interrupted by %s (partial file kept: "
		    "%llu of %llu bytes)", strsignal((int)sig),
		    (unsigned long long)fetch_progress_done(f, 0),
		    (unsigned long long)f->mf->size);
	else
		tool_log(LOG_ERROR, "interrupted by %s%s", strsignal((int)sig),
		    fetch_to_file(f) ? " (partial file kept)" : "");
	/* As a shell reports a command a signal ended: 128 + the signal, so
	 * that a script tells an interrupt from a failure. */
	fetch_finish(f, 128 + (int)sig);
}

static void
start_progress(struct fetch *f)
{
	struct timeval quarter = { 0, 250000 };

	tool_progress_start(&f->progress, NULL);
	if (!f->progress.on)
		return;
	f->progress_ev = event_new(f->base, -1, EV_PERSIST, show_progress, f);
	if (f->progress_ev == NULL || event_add(f->progress_ev, &quarter) != 0)
		tool_die(1, "out of memory");
}

void
fetch_finish(struct fetch *f, int code)
{
	if (f->done)
		return;
	f->done = 1;
	f->exit_code = code;
	if (f->fx != NULL)
		proto_fetch_stop(f->fx);
	event_base_loopbreak(f->base);
}

/* A fetch to a file is a node that shares what it has fetched: it listens
 * before it connects anywhere, so every HELLO it sends names its port, and
 * the nodes that connect to it are fetched from too. */
static void
start_fetch(struct fetch *f)
{
	static const proto_fetch_cbs cbs = { tool_proto_log,
	    on_manifest, on_chunk, on_complete, fetch_on_list, on_end,
	    on_hashes, fetch_on_tree };
	proto_fetch_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.id = f->id;
	cfg.list = f->listing;
	cfg.conn = f->cfg;
	cfg.timeout = f->timeout;
	cfg.max_peers = f->max_peers;
	cfg.max_file_size = f->max_file_size;
	cfg.node = f->node;
	cfg.short_note = fetch_to_file(f) ? " (partial file kept)" : NULL;
	if ((f->fx = proto_fetch_new(f->base, &cfg, &cbs, f)) == NULL)
		tool_die(1, "out of memory");
}

/* Defaults, then the configuration file, then the environment; the flags
 * read later win. */
static void
load_settings(struct fetch *f, int argc, char **argv)
{
	struct tool_config config;

	f->timeout = DEFAULT_TIMEOUT;
	f->max_peers = DEFAULT_MAX_PEERS;
	f->share = 1;
	f->bind_addr = "0.0.0.0";
	f->disco.port = PROTO_DISCO_PORT;
	f->disco.answer_only = 1;
	tool_config_load(argc, argv, &config);
	tool_dht_config(&config);
	tool_nat_config(&config);
	if (config.has_max_peers)
		f->max_peers = config.max_peers;
	if (config.has_connection_timeout)
		f->timeout = config.connection_timeout;
	if (config.has_max_file_size)
		f->max_file_size = config.max_file_size;
	if (config.has_discovery_port)
		f->disco.port = config.discovery_port;
	f->disco.target = config.discovery_addr;
	f->disco.target6 = config.discovery_addr6;
	f->inline_chunks = config.inline_chunks;
}

/* What was wrong, when there is more to say than getopt did, then the
 * usage; exit 2. */
static void __attribute__((noreturn))
usage_error(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "%s: %s\n", tool_name, why);
	usage(stderr);
	exit(2);
}

static void
parse_options(struct fetch *f, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "peer", required_argument, NULL, 'p' },
		{ "output", required_argument, NULL, 'o' },
		{ "remote-name", no_argument, NULL, 'O' },
		{ "force", no_argument, NULL, 'F' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "max-peers", required_argument, NULL, 'M' },
		{ "list", no_argument, NULL, 'L' },
		{ "name", required_argument, NULL, 'm' },
		{ "stats", no_argument, NULL, 'S' },
		{ "seed", no_argument, NULL, 's' },
		{ "no-share", no_argument, NULL, 'N' },
		{ "port", required_argument, NULL, 'P' },
		{ "bind", required_argument, NULL, 'B' },
		TOOL_LONGOPTS_TLS,
		TOOL_LONGOPTS_DHT,
		TOOL_LONGOPTS_NAT,
		TOOL_LONGOPT_PROGRESS,
		TOOL_LONGOPT_JSON,
		TOOL_LONGOPTS_RATES,
		TOOL_LONGOPTS_COMMON,
	};
	int ch;

	if ((f->peers = calloc((size_t)argc, sizeof(*f->peers))) ==
	    NULL)
		tool_die(1, "out of memory");
	while ((ch = getopt_long(argc, argv, "p:o:OT:qvhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (strcmp(optarg, "-") == 0) {
				f->read_stdin = 1;
				break;
			}
			if (fetch_peer_dht(f, optarg))
				break;
			tool_parse_peer("peer", optarg, 1,
			    &f->peers[f->npeers++]);
			break;
		case 'o':
			f->out_path = optarg;
			break;
		case 'O':
			f->remote_name = 1;
			break;
		case 'F':
			f->force = 1;
			break;
		case 'T':
			f->timeout = (unsigned)tool_parse_number(optarg, 1,
			    3600, "timeout");
			break;
		case 'M':
			f->max_peers = (unsigned)tool_parse_number(optarg, 1,
			    100000, "max peers");
			break;
		case 'L':
			f->listing = 1;
			break;
		case 'm':
			f->by_name = optarg;
			break;
		case 'S':
			f->stats = 1;
			break;
		case 's':
			f->seed = 1;
			break;
		case 'N':
			f->share = 0;
			break;
		case 'P':
			f->share_port = (uint16_t)tool_parse_number(optarg, 0,
			    65535, "port");
			break;
		case 'B':
			f->bind_addr = optarg;
			break;
		default:
			if (!tool_common_option(ch, usage) &&
			    !tool_tls_option(ch) && !tool_dht_option(ch) &&
			    !tool_nat_option(ch))
				usage_error(NULL);
		}
	}
}

/* The operands, and the options that only make sense together. */
static void
check_arguments(struct fetch *f, int argc, char **argv)
{
	if (f->listing) {
		if (f->npeers == 0)
			f->read_stdin = 1;
		if (argc != 0)
			usage_error("--list takes no ID");
		if (f->out_path)
			usage_error("--list writes to stdout: no -o");
		if (f->remote_name)
			usage_error("--list writes to stdout: no -O");
		if (f->by_name)
			usage_error("--list lists all: no --name");
	} else {
		const char *why = fetch_take_target(f, argc, argv);

		if (why != NULL)
			usage_error(why);
		if (f->npeers == 0 && f->nfind == 0 && !tool_dht_on())
			f->read_stdin = 1;
		fetch_check_output(f);
		if (!fetch_to_file(f) && isatty(STDOUT_FILENO))
			tool_die(2, "refusing to write a file to a terminal; "
			    "use -o FILE, -O or redirect stdout");
		if (f->seed && (!fetch_to_file(f) || !f->share))
			tool_die(2, "--seed serves the file: it needs -o FILE "
			    "and no --no-share");
	}
	if (f->read_stdin && isatty(STDIN_FILENO))
		tool_die(2, "no peers: give -p HOST:PORT, or pipe HOST:PORT "
		    "lines in (p2p-discover | p2p-fetch ID)");
}

/* What is left to say (progress, --stats) once the loop is over, then
 * everything freed in the order each thing's borrowers go. */
static void
fetch_end(struct fetch *f)
{
	proto_fetch_close(f->fx);
	tool_conn_limit_free();
	if (f->progress_ev != NULL) {
		tool_progress_end(&f->progress, fetch_progress_done(f, 0),
		    f->mf ? f->mf->size : 0, -1);
		event_free(f->progress_ev);
	}
	if (f->stats)
		fetch_print_stats(f);
	fetch_tree_free(f);
	fetch_end_dht(f);
	proto_node_free(f->node);
	proto_output_free(f->out);
	proto_fetch_free(f->fx);
	free(f->part_path);
	free(f->named_path);
	free(f->peers);
	free(f->listed);
	if (f->stdin_ev)
		event_free(f->stdin_ev);
}

int
main(int argc, char **argv)
{
	static struct fetch fetch;
	struct fetch *f = &fetch;
	struct event *sigint, *sigterm;

	tool_init("p2p-fetch", LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	tool_raise_fd_limit();
	load_settings(f, argc, argv);
	parse_options(f, argc, argv);
	check_arguments(f, argc - optind, argv + optind);
	tool_tls_start();
	tool_tls_apply(&f->cfg, 0);
	f->disco.secret = tool_tls_secret();
	f->cfg.node_name = tool_hostname();
	f->cfg.timeout = f->timeout;
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	f->tar_time = time(NULL);
	if ((f->base = event_base_new()) == NULL)
		tool_die(1, "out of memory");
	f->cfg.limit = tool_conn_limit(f->base);
	fetch_resolve(f);
	if (fetch_to_file(f) && f->share)
		fetch_start_node(f);
	fetch_start_dht(f);
	start_fetch(f);
	if (!f->listing)
		start_progress(f);
	sigint = evsignal_new(f->base, SIGINT, on_signal, f);
	sigterm = evsignal_new(f->base, SIGTERM, on_signal, f);
	if (sigint == NULL || sigterm == NULL || event_add(sigint, NULL) ||
	    event_add(sigterm, NULL))
		tool_die(1, "cannot watch signals");
	/* Every peer given is added before running out of them can count: a
	 * first one whose connect fails at once must not end the fetch. */
	proto_fetch_more_peers(f->fx, 1);
	for (int i = 0; i < f->npeers && !f->done; i++)
		if (proto_fetch_add_peer(f->fx, &f->peers[i]) != 0)
			tool_die(1, "out of memory");
	if (!f->done)
		fetch_start_peers(f);
	if (!f->done)
		proto_fetch_more_peers(f->fx, f->stdin_open || f->dht);
	if (!f->done)
		fetch_wait_dht(f);
	if (!f->done)
		event_base_dispatch(f->base);
	fetch_end(f);
	event_free(sigint);
	event_free(sigterm);
	proto_base_free(f->base);
	tool_tls_end();
	return f->exit_code;
}
