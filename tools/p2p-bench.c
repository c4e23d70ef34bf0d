/*
 * p2p-bench: the benchmark suite. Every figure is a whole p2p-fetch process
 * on loopback, run several times, reported as median, min and max wall
 * time, throughput, success rate and peak RSS, beside a baseline measured
 * in the same run on the same bytes: a raw TCP copy (this program's own
 * sender and receiver, whole processes too), curl from an HTTP server and
 * sha256sum. Writes benchmark_report.json and benchmark_summary.txt;
 * progress goes to stderr. This file holds the options and the figures;
 * tools/bench/ how processes are run (proc), figures kept (figure), the
 * test files and servers set up (rig), the raw copy done (raw), the
 * figures against curl and nginx measured (http, nginx) and the report
 * written (report).
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"
#include "bench/figure.h"
#include "bench/http.h"
#include "bench/proc.h"
#include "bench/raw.h"
#include "bench/report.h"
#include "bench/rig.h"
#include "bench/swarm.h"
#include "bench/tree.h"

#define MAX_SERVERS 8

static int quick, full;

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-bench [-qv] [--quick | --full] [-r REPS] [--json FILE]\n"
	    "                 [--summary FILE] [--dir DIR] [--swarm N[,N]...]\n"
	    "                 [--churn] [--http] [--tree N]\n"
	    "  --quick          small sizes and few repetitions (under 2 minutes)\n"
	    "  --full           add the 1 GiB transfer\n"
	    "  -r, --reps N     repetitions of each small figure (default 10)\n"
	    "  --json FILE      the report (default benchmark_report.json)\n"
	    "  --summary FILE   the table (default benchmark_summary.txt)\n"
	    "  --dir DIR        where to put the test files (default $TMPDIR)\n"
	    "  --swarm N,...    only the swarm figures, one seed and N fetchers\n"
	    "                   for each N given (-r runs each, default 3)\n"
	    "  --churn          with --swarm: kill a quarter of the fetchers\n"
	    "                   (SIGKILL) at random moments\n"
	    "  --http           only the HTTP baselines (vs-http/) and the latency\n"
	    "                   figures, at the sizes of the mode\n"
	    "  --tree N         only the tree figure: N files of 1-4 KiB fetched\n"
	    "                   beside tar | socat (-r runs, default 3)\n"
	    "  -q, --quiet      no progress on stderr\n"
	    "  -v, --verbose    print more (repeat for more)\n"
	    "  -h, --help       print this help and exit\n"
	    "  -V, --version    print the version and exit\n"
	    "Runs on loopback only; needs p2p-serve, p2p-fetch and p2p-chunk\n"
	    "beside it.\n");
}

static void
progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
progress(const char *fmt, ...)
{
	va_list ap;

	if (tool_level < LOG_WARN)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "p2p-bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* The same fetches beside curl from a local HTTP server, where curl and
 * python3's http.server are installed. */
static void
bench_curl(const struct figure *ours, const char *file, const char *out,
    int reps)
{
	char curl[] = "/usr/bin/curl", py[] = "/usr/bin/python3", url[PATH_MAX];
	char name[64];
	char *pargv[] = { py, "-u", "-m", "http.server", "0", "--bind",
	    "127.0.0.1", "--directory", (char *)rig_workdir(), NULL };
	struct server http;
	struct figure *g;
	unsigned port;
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;

	if (access(curl, X_OK) != 0 || access(py, X_OK) != 0)
		return;
	if (proc_server_start(&http, pargv, NULL) != 0 ||
	    sscanf(http.addr, "Serving HTTP on %*s port %u", &port) != 1) {
		proc_server_stop(&http);
		return;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/%.200s", port, base);
	/* single/SIZE again, as http/SIZE: the same runs, another baseline. */
	snprintf(name, sizeof(name), "http/%.40s", ours->name + 7);
	g = figure_new(name, ours->bytes);
	snprintf(g->baseline, sizeof(g->baseline), "curl+http.server");
	snprintf(g->note, sizeof(g->note), "the single/ runs beside curl "
	    "from python3 -m http.server");
	memcpy(g->runs, ours->runs, sizeof(g->runs));
	g->nruns = ours->nruns;
	for (int i = 0; i < reps; i++) {
		char *cargv[] = { curl, "-sf", "-o", (char *)out, url, NULL };
		unlink(out);
		g->base[g->nbase++] = proc_timed(cargv, NULL);
	}
	unlink(out);
	proc_server_stop(&http);
}

static void
bench_single(uint64_t size, int reps)
{
	char name[48], sz[24], file[PATH_MAX], mf[PATH_MAX], id[80];
	char out[PATH_MAX], fetch_path[PATH_MAX], *argv[32];
	struct server srv, raw;
	struct figure *f;

	figure_size_name(size, sz, sizeof(sz));
	snprintf(name, sizeof(name), "single/%s", sz);
	progress("%s: %d runs", name, reps);
	rig_prepare(sz, size, file, mf, id);
	rig_serve(&srv, mf, "64", 0);
	raw_start(&raw, rig_self(), file);
	snprintf(out, sizeof(out), "%s/out.bin", rig_workdir());
	rig_fetch_argv(argv, fetch_path, &srv, 1, id, out, 0);
	f = figure_new(name, size);
	snprintf(f->baseline, sizeof(f->baseline), "raw TCP copy");
	for (int i = 0; i < reps; i++) {
		f->base[f->nbase++] = raw_timed_recv(&raw, rig_self(), out);
		f->runs[f->nruns++] = proc_timed_file(argv, out);
	}
	unlink(out);
	proc_server_stop(&srv);
	proc_server_stop(&raw);
	bench_curl(f, file, out, reps);
	if (size >= (64u << 20)) {
		/* The hashing baseline on the largest files. */
		char chunk[PATH_MAX], sha[] = "/usr/bin/sha256sum";
		struct figure *h;
		rig_tool_path(chunk, sizeof(chunk), "p2p-chunk");
		snprintf(name, sizeof(name), "hash/%s", sz);
		h = figure_new(name, size);
		snprintf(h->baseline, sizeof(h->baseline), "sha256sum");
		snprintf(h->note, sizeof(h->note), "p2p-chunk --id against "
		    "sha256sum, same file");
		for (int i = 0; i < (reps < 3 ? reps : 3); i++) {
			char *cargv[] = { chunk, "--id", file, NULL };
			char *sargv[] = { sha, file, NULL };
			h->runs[h->nruns++] = proc_timed(cargv, NULL);
			h->base[h->nbase++] = proc_timed(sargv, NULL);
		}
	}
	unlink(file);
	unlink(mf);
}

/* The cost of TLS: the same fetch with TLS (the default) and with
 * --no-tls on both ends, runs interleaved. */
static void
bench_tls(uint64_t size, int reps)
{
	char name[48], sz[24], file[PATH_MAX], mf[PATH_MAX], id[80];
	char out[PATH_MAX], fetch_path[PATH_MAX], plain_path[PATH_MAX];
	char *argv[32], *pargv[32];
	struct server tls_srv, plain_srv;
	struct figure *f;

	figure_size_name(size, sz, sizeof(sz));
	snprintf(name, sizeof(name), "tls/%s", sz);
	progress("%s: %d runs", name, reps);
	rig_prepare(sz, size, file, mf, id);
	rig_serve(&tls_srv, mf, "64", 0);
	rig_serve(&plain_srv, mf, "64", 1);
	snprintf(out, sizeof(out), "%s/out.bin", rig_workdir());
	rig_fetch_argv(pargv, plain_path, &plain_srv, 1, id, out, 1);
	rig_fetch_argv(argv, fetch_path, &tls_srv, 1, id, out, 0);
	f = figure_new(name, size);
	snprintf(f->baseline, sizeof(f->baseline), "--no-tls fetch");
	snprintf(f->note, sizeof(f->note), "TLS 1.3 on both ends against "
	    "plaintext on both ends, same file, same run");
	for (int i = 0; i < reps; i++) {
		f->base[f->nbase++] = proc_timed_file(pargv, out);
		f->runs[f->nruns++] = proc_timed_file(argv, out);
	}
	unlink(out);
	proc_server_stop(&tls_srv);
	proc_server_stop(&plain_srv);
	unlink(file);
	unlink(mf);
}

static void
bench_peers(uint64_t size, int reps)
{
	char sz[24], file[PATH_MAX], mf[PATH_MAX], id[80], out[PATH_MAX];
	char fetch_path[PATH_MAX], *argv[48], name[48];
	struct server srv[MAX_SERVERS];
	static const int counts[] = { 1, 2, 4, 8 };

	figure_size_name(size, sz, sizeof(sz));
	rig_prepare("peers", size, file, mf, id);
	for (int i = 0; i < MAX_SERVERS; i++)
		rig_serve(&srv[i], mf, "64", 0);
	snprintf(out, sizeof(out), "%s/out.bin", rig_workdir());
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		struct figure *f;
		snprintf(name, sizeof(name), "peers/%d/%s", counts[c], sz);
		progress("%s: %d runs", name, reps);
		f = figure_new(name, size);
		rig_fetch_argv(argv, fetch_path, srv, counts[c], id, out, 0);
		for (int i = 0; i < reps; i++)
			f->runs[f->nruns++] = proc_timed_file(argv, out);
	}
	unlink(out);
	for (int i = 0; i < MAX_SERVERS; i++)
		proc_server_stop(&srv[i]);
	unlink(file);
	unlink(mf);
}

static void
bench_concurrent(uint64_t size, int nfetchers)
{
	char sz[24], file[PATH_MAX], mf[PATH_MAX], id[80], name[48];
	char fetch_path[PATH_MAX], *argv[16], out[PATH_MAX];
	static pid_t pids[256];
	struct server srv;
	struct figure *f;
	double start;
	int ok = 0;

	figure_size_name(size, sz, sizeof(sz));
	snprintf(name, sizeof(name), "concurrent/%d/%s", nfetchers, sz);
	progress("%s", name);
	rig_prepare("conc", size, file, mf, id);
	rig_serve(&srv, mf, "512", 0);
	f = figure_new(name, size * (uint64_t)nfetchers);
	snprintf(f->note, sizeof(f->note), "%d fetchers at once from one "
	    "server; time until the last is done", nfetchers);
	start = proc_now();
	for (int i = 0; i < nfetchers; i++) {
		rig_fetch_argv(argv, fetch_path, &srv, 1, id, out, 0);
		snprintf(out, sizeof(out), "%s/conc-%d.bin", rig_workdir(), i);
		pids[i] = proc_spawn(argv, NULL, NULL);
	}
	f->runs[0].ok = 1;
	for (int i = 0; i < nfetchers; i++) {
		struct run r = proc_finish(pids[i], start);
		ok += r.ok;
		proc_usage_add(&f->runs[0].use, &r.use);
		snprintf(out, sizeof(out), "%s/conc-%d.bin", rig_workdir(), i);
		unlink(out);
	}
	f->runs[0].secs = proc_now() - start;
	f->runs[0].ok = ok == nfetchers;
	f->nruns = 1;
	snprintf(f->note + strlen(f->note), sizeof(f->note) - strlen(f->note),
	    "; %d of %d succeeded", ok, nfetchers);
	proc_server_stop(&srv);
	unlink(file);
	unlink(mf);
}

/* One of three sources is killed a third of the way into each fetch. */
static void
bench_resilience(uint64_t size, int reps)
{
	char sz[24], file[PATH_MAX], mf[PATH_MAX], id[80], name[48];
	char fetch_path[PATH_MAX], *argv[32], out[PATH_MAX];
	struct server srv[3];
	struct figure *f, *alone;
	double typical;

	figure_size_name(size, sz, sizeof(sz));
	snprintf(name, sizeof(name), "resilience/3-1/%s", sz);
	progress("%s: %d runs", name, reps);
	rig_prepare("resil", size, file, mf, id);
	snprintf(out, sizeof(out), "%s/out.bin", rig_workdir());
	for (int i = 0; i < 3; i++)
		rig_serve(&srv[i], mf, "64", 0);
	rig_fetch_argv(argv, fetch_path, srv, 3, id, out, 0);
	/* Measure the undisturbed time first, to know when "a third of the
	 * way" is. */
	alone = figure_new("resilience/3-0/", size);
	snprintf(alone->name, sizeof(alone->name), "resilience/3-0/%s", sz);
	for (int i = 0; i < reps; i++)
		alone->runs[alone->nruns++] = proc_timed_file(argv, out);
	typical = figure_summarize(alone->runs, alone->nruns).median;
	f = figure_new(name, size);
	snprintf(f->note, sizeof(f->note), "a source killed (SIGKILL) "
	    "after %.0f ms", typical / 3 * 1000);
	for (int i = 0; i < reps; i++) {
		struct timespec third = { 0, 0 };
		double start;
		pid_t pid;
		unlink(out);
		third.tv_sec = (time_t)(typical / 3);
		third.tv_nsec = (long)((typical / 3 - third.tv_sec) * 1e9);
		start = proc_now();
		pid = proc_spawn(argv, NULL, NULL);
		nanosleep(&third, NULL);
		kill(srv[0].pid, SIGKILL);
		waitpid(srv[0].pid, NULL, 0);
		f->runs[f->nruns] = proc_finish(pid, start);
		if (access(out, F_OK) != 0)
			f->runs[f->nruns].ok = 0;
		f->nruns++;
		rig_serve(&srv[0], mf, "64", 0);
		rig_fetch_argv(argv, fetch_path, srv, 3, id, out, 0);
	}
	unlink(out);
	for (int i = 0; i < 3; i++)
		proc_server_stop(&srv[i]);
	unlink(file);
	unlink(mf);
}

/* --swarm 1,10,25: those swarm figures alone. */
static void
bench_swarm_list(const char *list, int reps, int churn)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t != NULL;
	    t = strtok_r(NULL, ",", &save)) {
		int n = (int)tool_parse_number(t, 1, SWARM_MAX_FETCHERS,
		    "fetchers");
		progress("swarm/%d: %d runs%s", n, reps, churn ? ", churn" : "");
		swarm_bench(n, reps, churn, tool_level < LOG_WARN);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'Q' },
		{ "full", no_argument, NULL, 'F' },
		{ "reps", required_argument, NULL, 'r' },
		{ "json", required_argument, NULL, 'J' },
		{ "summary", required_argument, NULL, 'S' },
		{ "dir", required_argument, NULL, 'd' },
		{ "swarm", required_argument, NULL, 'W' },
		{ "churn", no_argument, NULL, 'C' },
		{ "http", no_argument, NULL, 'H' },
		{ "tree", required_argument, NULL, 'T' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "raw-send", required_argument, NULL, 's' },
		{ "raw-recv", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	const char *json = "benchmark_report.json";
	const char *summary = "benchmark_summary.txt";
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	const char *raw_peer = NULL, *swarm = NULL;
	int ch, reps = 10, reps_given = 0, churn = 0, http_only = 0, tree = 0;

	tool_init("p2p-bench", LOG_WARN);
	while ((ch = getopt_long(argc, argv, "r:d:qvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'Q': quick = 1; break;
		case 'F': full = 1; break;
		case 'r':
			reps = (int)tool_parse_number(optarg, 1, FIGURE_MAX_RUNS,
			    "repetitions");
			reps_given = 1;
			break;
		case 'W': swarm = optarg; break;
		case 'C': churn = 1; break;
		case 'H': http_only = 1; break;
		case 'T':
			tree = (int)tool_parse_number(optarg, 1, TREE_FILES_MAX,
			    "files");
			break;
		case 'J': json = optarg; break;
		case 'S': summary = optarg; break;
		case 'd': dir = optarg; break;
		case 'q': tool_quiet(); tool_level = -1; break;
		case 'v': tool_verbose(); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("p2p-bench %s\n", TOOL_VERSION); return 0;
		case 's': raw_send(optarg);
		case 'R': raw_peer = optarg; break;
		default: usage(stderr); return 2;
		}
	}
	if (raw_peer != NULL) {
		if (optind + 1 != argc) {
			usage(stderr);
			return 2;
		}
		return raw_recv(raw_peer, argv[optind]);
	}
	if (optind != argc || (quick && full) || (churn && swarm == NULL) ||
	    (http_only && swarm != NULL) || (tree && swarm != NULL) ||
	    (tree && http_only)) {
		usage(stderr);
		return 2;
	}
	rig_init(dir);
	signal(SIGPIPE, SIG_IGN);
	if (swarm != NULL) {
		bench_swarm_list(swarm, reps_given ? reps : 3, churn);
		goto report;
	}
	if (tree) {
		progress("tree/%d: %d runs", tree, reps_given ? reps : 3);
		tree_bench(tree, reps_given ? reps : 3, tool_level < LOG_WARN);
		goto report;
	}
	{
		static const uint64_t sizes[] = { 1u << 10, 10u << 10,
		    100u << 10, 1u << 20, 100u << 20 };
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			int r = sizes[i] >= (100u << 20) ? (quick ? 3 : 5) :
			    (quick ? (reps < 5 ? reps : 5) : reps);
			if (!http_only)
				bench_single(sizes[i], r);
			http_bench(sizes[i], r);
		}
		if (full) {
			if (!http_only)
				bench_single(1u << 30, 3);
			http_bench(1u << 30, 3);
		}
		http_latency(quick ? (reps < 5 ? reps : 5) : reps);
		if (http_only)
			goto report;
	}
	bench_tls(full ? 1u << 30 : 100u << 20, 3);
	bench_peers(quick ? 32u << 20 : 128u << 20, quick ? 3 : 5);
	bench_concurrent(10u << 20, 1);
	bench_concurrent(10u << 20, 10);
	bench_concurrent(10u << 20, 100);
	bench_resilience(quick ? 64u << 20 : 256u << 20, quick ? 3 : 5);
	progress("tree/%d: 3 runs", quick ? 500 : TREE_FILES_DEFAULT);
	tree_bench(quick ? 500 : TREE_FILES_DEFAULT, 3, tool_level < LOG_WARN);
	{
		static const int counts[] = { 1, 10, 25, 50, 100 };
		for (size_t i = 0; i < (full ? 5u : 3u); i++)
			swarm_bench(counts[i], quick ? 1 : 3, 0,
			    tool_level < LOG_WARN);
		if (!quick)
			swarm_bench(full ? 50 : 25, 3, 1, tool_level < LOG_WARN);
	}
report:
	report_write(json, summary,
	    quick ? "quick" : full ? "full" : "default");
	progress("wrote %s and %s", json, summary);
	if (tool_level >= LOG_WARN) {
		FILE *s = fopen(summary, "r");
		char line[512];
		while (s && fgets(line, sizeof(line), s))
			fputs(line, stdout);
		if (s)
			fclose(s);
	}
	return 0;
}
