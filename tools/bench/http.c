/*
 * p2p-fetch against HTTP: every way of moving the same file is a whole
 * client process from a server started once per figure, and the ways take
 * turns, so that a noisy moment costs them all alike. Besides the wall
 * time, each run records its client's CPU time and peak RSS (wait4) and
 * its server's: CPU time from /proc/PID/task/TID/schedstat (nanoseconds on
 * the CPU, all threads) before and after the run, and peak RSS from
 * VmHWM after resetting it through /proc/PID/clear_refs.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tool.h"
#include "figure.h"
#include "http.h"
#include "nginx.h"
#include "raw.h"
#include "rig.h"

enum way { W_TLS, W_PLAIN, W_HTTPS, W_HTTP, W_RAW, W_SHA, NWAYS };

static const char *const way_name[NWAYS] = {
	"p2p-fetch", "p2p-fetch --no-tls", "curl https", "curl http",
	"raw TCP copy", "sha256sum",
};
/* Which curl each way is compared with: over HTTPS where the way
 * encrypts, over HTTP where it does not; none for sha256sum. */
static const int way_curl[NWAYS] = {
	W_HTTPS, W_HTTP, W_HTTPS, W_HTTP, W_HTTP, -1,
};

struct sample {
	struct run client;
	double srv_cpu;         /* seconds */
	long srv_rss_kib;       /* 0: no server */
};

struct http_fig {
	char name[32];
	uint64_t bytes;
	int n;
	struct sample s[NWAYS][FIGURE_MAX_RUNS];
};

#define HTTP_MAX_FIGS 8

static struct http_fig figs[HTTP_MAX_FIGS];
static int nfigs;

/* Seconds pid's threads have been on a CPU; 0 when unreadable. Threads
 * that ended are not counted, which for p2p-serve, nginx and the raw
 * sender (one thread each) loses nothing. */
static double
task_cpu(pid_t pid)
{
	char path[64], sub[400];
	unsigned long long ns, sum = 0;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		FILE *f;
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s/schedstat", path, e->d_name);
		if ((f = fopen(sub, "r")) == NULL)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		fclose(f);
	}
	closedir(d);
	return sum / 1e9;
}

/* Starts pid's peak RSS again from its current RSS (Linux 4.0 on). */
static void
peak_reset(pid_t pid)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
	if ((f = fopen(path, "w")) != NULL) {
		fputs("5", f);
		fclose(f);
	}
}

static long
peak_rss(pid_t pid)
{
	char path[64], line[128];
	long kib = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* One run of argv against the server srv (0: none). It is ok when it
 * exits 0 and, where out is given, out then holds bytes bytes. */
static struct sample
sample_run(char *const argv[], const char *out, uint64_t bytes, pid_t srv)
{
	struct sample s;
	struct stat st;
	double cpu0 = 0;

	memset(&s, 0, sizeof(s));
	if (out != NULL)
		unlink(out);
	if (srv > 0) {
		peak_reset(srv);
		cpu0 = task_cpu(srv);
	}
	s.client = proc_timed(argv, NULL);
	if (srv > 0) {
		s.srv_cpu = task_cpu(srv) - cpu0;
		s.srv_rss_kib = peak_rss(srv);
	}
	if (out != NULL && (stat(out, &st) != 0 || (uint64_t)st.st_size != bytes))
		s.client.ok = 0;
	return s;
}

static void
curl_argv(char **argv, char *curl, const struct nginx *ng, int tls,
    char *url, size_t urllen, const char *base, char *out)
{
	int n = 0;

	snprintf(url, urllen, "%s://127.0.0.1:%u/%s", tls ? "https" : "http",
	    tls ? ng->https_port : ng->http_port, base);
	argv[n++] = curl;
	argv[n++] = "-sSf";
	argv[n++] = "--http1.1";
	if (tls) {
		argv[n++] = "--tlsv1.3";
		argv[n++] = "--cacert";
		argv[n++] = (char *)ng->cert;
	}
	argv[n++] = "-o";
	argv[n++] = out;
	argv[n++] = url;
	argv[n] = NULL;
}

static int
start_nginx(struct nginx *ng, const char *file)
{
	static int warned;
	const char *why = "";

	if (nginx_start(ng, rig_workdir(), &why) == 0) {
		if (nginx_publish(ng, file) == 0)
			return 0;
		why = "cannot put the test file in its web root";
		nginx_stop(ng);
	}
	if (!warned)
		tool_log(LOG_WARN, "no HTTP baselines: nginx: %s", why);
	warned = 1;
	return -1;
}

void
http_bench(uint64_t size, int reps)
{
	char sz[24], file[PATH_MAX], mf[PATH_MAX], id[80], out[PATH_MAX];
	char fetch_path[PATH_MAX], plain_path[PATH_MAX], curl[] =
	    "/usr/bin/curl", sha[] = "/usr/bin/sha256sum";
	char url_s[PATH_MAX], url_p[PATH_MAX];
	char *argv[NWAYS][32];
	pid_t srv[NWAYS];
	struct server tls_srv, plain_srv, raw;
	struct nginx ng;
	struct http_fig *f;

	if (nfigs == HTTP_MAX_FIGS)
		tool_die(1, "more than %d vs-http figures", HTTP_MAX_FIGS);
	if (reps > FIGURE_MAX_RUNS)
		reps = FIGURE_MAX_RUNS;
	figure_size_name(size, sz, sizeof(sz));
	rig_prepare("http", size, file, mf, id);
	if (start_nginx(&ng, file) != 0) {
		unlink(file);
		unlink(mf);
		return;
	}
	if (tool_level >= LOG_WARN)
		fprintf(stderr, "p2p-bench: vs-http/%s: %d runs of %d ways\n",
		    sz, reps, NWAYS);
	rig_serve(&tls_srv, mf, "64", 0);
	rig_serve(&plain_srv, mf, "64", 1);
	raw_start(&raw, rig_self(), file);
	snprintf(out, sizeof(out), "%s/http-out.bin", rig_workdir());
	rig_fetch_argv(argv[W_TLS], fetch_path, &tls_srv, 1, id, out, 0);
	rig_fetch_argv(argv[W_PLAIN], plain_path, &plain_srv, 1, id, out, 1);
	curl_argv(argv[W_HTTPS], curl, &ng, 1, url_s, sizeof(url_s),
	    "http.bin", out);
	curl_argv(argv[W_HTTP], curl, &ng, 0, url_p, sizeof(url_p),
	    "http.bin", out);
	argv[W_RAW][0] = (char *)rig_self();
	argv[W_RAW][1] = "--raw-recv";
	argv[W_RAW][2] = raw.addr;
	argv[W_RAW][3] = out;
	argv[W_RAW][4] = NULL;
	argv[W_SHA][0] = sha;
	argv[W_SHA][1] = file;
	argv[W_SHA][2] = NULL;
	srv[W_TLS] = tls_srv.pid;
	srv[W_PLAIN] = plain_srv.pid;
	srv[W_HTTPS] = srv[W_HTTP] = ng.pid;
	srv[W_RAW] = raw.pid;
	srv[W_SHA] = 0;

	f = &figs[nfigs++];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "vs-http/%s", sz);
	f->bytes = size;
	for (int i = 0; i < reps; i++)
		for (int w = 0; w < NWAYS; w++)
			f->s[w][i] = sample_run(argv[w], w == W_SHA ? NULL : out,
			    size, srv[w]);
	f->n = reps;
	unlink(out);
	nginx_stop(&ng);
	proc_server_stop(&tls_srv);
	proc_server_stop(&plain_srv);
	proc_server_stop(&raw);
	unlink(file);
	unlink(mf);
}

void
http_latency(int reps)
{
	char file[PATH_MAX], mf[PATH_MAX], id[80], out[PATH_MAX], url[PATH_MAX];
	char fetch_path[PATH_MAX], curl[] = "/usr/bin/curl", tru[] = "/bin/true";
	char *fargv[32], *cargv[16], *vargv[3], *targv[2] = { tru, NULL };
	struct server srv;
	struct nginx ng;
	struct figure *lat, *exe;

	if (reps > FIGURE_MAX_RUNS)
		reps = FIGURE_MAX_RUNS;
	rig_prepare("lat", 1024, file, mf, id);
	if (start_nginx(&ng, file) != 0) {
		unlink(file);
		unlink(mf);
		return;
	}
	if (tool_level >= LOG_WARN)
		fprintf(stderr, "p2p-bench: latency/1K, latency/exec: %d runs\n",
		    reps);
	rig_serve(&srv, mf, "64", 0);
	snprintf(out, sizeof(out), "%s/lat-out.bin", rig_workdir());
	rig_fetch_argv(fargv, fetch_path, &srv, 1, id, out, 0);
	curl_argv(cargv, curl, &ng, 1, url, sizeof(url), "lat.bin", out);
	vargv[0] = fetch_path;
	vargv[1] = "--version";
	vargv[2] = NULL;
	lat = figure_new("latency/1K", 1024);
	snprintf(lat->baseline, sizeof(lat->baseline), "curl https+nginx");
	snprintf(lat->note, sizeof(lat->note), "p2p-fetch (TLS) against curl "
	    "over HTTPS, both from a running server");
	exe = figure_new("latency/exec", 0);
	snprintf(exe->baseline, sizeof(exe->baseline), "/bin/true");
	snprintf(exe->note, sizeof(exe->note), "p2p-fetch --version against "
	    "/bin/true: starting and ending a process");
	for (int i = 0; i < reps; i++) {
		lat->runs[lat->nruns++] = sample_run(fargv, out, 1024, 0).client;
		lat->base[lat->nbase++] = sample_run(cargv, out, 1024, 0).client;
		exe->runs[exe->nruns++] = proc_timed(vargv, NULL);
		exe->base[exe->nbase++] = proc_timed(targv, NULL);
	}
	unlink(out);
	nginx_stop(&ng);
	proc_server_stop(&srv);
	unlink(file);
	unlink(mf);
}

static int
by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of the runs' client CPU (server 0) or server CPU (1). */
static double
median_cpu(const struct sample *s, int n, int server)
{
	double v[FIGURE_MAX_RUNS];

	if (n == 0)
		return 0;
	for (int i = 0; i < n; i++)
		v[i] = server ? s[i].srv_cpu : s[i].client.use.cpu_s;
	qsort(v, n, sizeof(v[0]), by_value);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long
max_srv_rss(const struct sample *s, int n)
{
	long m = 0;

	for (int i = 0; i < n; i++)
		if (s[i].srv_rss_kib > m)
			m = s[i].srv_rss_kib;
	return m;
}

/* The way's wall-time statistics, through figure_summarize. */
static struct figure_stats
way_stats(const struct http_fig *f, int w)
{
	struct run r[FIGURE_MAX_RUNS];

	for (int i = 0; i < f->n; i++)
		r[i] = f->s[w][i].client;
	return figure_summarize(r, f->n);
}

void
http_report(FILE *j, FILE *s)
{
	if (nfigs == 0)
		return;
	fprintf(s, "\nvs-http: the same file each way, the ways taking turns, "
	    "each a whole client process from a running server;\nnginx "
	    "(sendfile on, one process) serves curl; times in ms (median), "
	    "x curl = curl's median / this one's\n(curl over HTTPS for TLS, "
	    "over HTTP for the rest); CPU in ms (median), RSS in MiB (peak), "
	    "client and server apart.\n");
	fprintf(s, "%-14s %-19s %4s %9s %8s %6s %6s %8s %7s %8s %7s\n",
	    "figure", "way", "runs", "median", "MiB/s", "ok", "x curl",
	    "cli CPU", "cli RSS", "srv CPU", "srv RSS");
	fprintf(j, ",\n  \"http\": [\n");
	for (int i = 0; i < nfigs; i++) {
		const struct http_fig *f = &figs[i];
		fprintf(j, "    {\"name\": \"%s\", \"bytes\": %llu, \"runs\": %d, "
		    "\"ways\": [\n", f->name, (unsigned long long)f->bytes, f->n);
		for (int w = 0; w < NWAYS; w++) {
			struct figure_stats st = way_stats(f, w);
			double mibs = st.median > 0 ?
			    f->bytes / st.median / (1 << 20) : 0;
			double ratio = 0, ccpu = median_cpu(f->s[w], f->n, 0);
			double scpu = median_cpu(f->s[w], f->n, 1);
			long srss = max_srv_rss(f->s[w], f->n);
			if (way_curl[w] >= 0 && st.median > 0)
				ratio = way_stats(f, way_curl[w]).median /
				    st.median;
			fprintf(s, "%-14s %-19s %4d %9.2f %8.1f %3d/%-2d ",
			    f->name, way_name[w], st.n, st.median * 1e3, mibs,
			    st.ok, st.n);
			fprintf(j, "      {\"way\": \"%s\", \"median_s\": %.6f, "
			    "\"min_s\": %.6f, \"max_s\": %.6f, \"mib_per_s\": "
			    "%.1f, \"success_rate\": %.3f, \"client_cpu_s\": "
			    "%.6f, \"client_peak_rss_kib\": %ld", way_name[w],
			    st.median, st.min, st.max, mibs,
			    st.n ? (double)st.ok / st.n : 0, ccpu, st.rss);
			if (way_curl[w] >= 0) {
				fprintf(s, "%6.2f %8.2f %7.1f %8.2f %7.1f\n", ratio,
				    ccpu * 1e3, st.rss / 1024.0, scpu * 1e3,
				    srss / 1024.0);
				fprintf(j, ", \"vs_curl\": {\"way\": \"%s\", "
				    "\"ratio\": %.3f}, \"server_cpu_s\": %.6f, "
				    "\"server_peak_rss_kib\": %ld",
				    way_name[way_curl[w]], ratio, scpu, srss);
			} else {
				fprintf(s, "%6s %8.2f %7.1f %8s %7s\n", "-",
				    ccpu * 1e3, st.rss / 1024.0, "-", "-");
			}
			fprintf(j, "}%s\n", w + 1 < NWAYS ? "," : "");
		}
		fprintf(j, "    ]}%s\n", i + 1 < nfigs ? "," : "");
	}
	fprintf(j, "  ]");
}
