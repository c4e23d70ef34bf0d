/*
 * The swarm figures: a seed (p2p-serve) and N fetchers (p2p-fetch -o), all
 * at --max-upload-rate SWARM_RATE and --stats, waited for together; each
 * one's upload read from its --stats line, its file compared with the
 * seed's. The ideal is the time the seed needs to send one copy, or the
 * time the swarm's whole upload needs for N copies, whichever is longer:
 * no schedule beats either.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../tool.h"
#include "figure.h"
#include "proc.h"
#include "rig.h"
#include "swarm.h"

#define SWARM_FIGS 16

/* One figure's numbers beyond the figure's times: per run, the seed's
 * copies and the CPU; of the last run, every fetcher's upload. */
struct swarm_fig {
	int n, churn, nruns;
	struct figure *fig;
	double ideal;
	double copies[FIGURE_MAX_RUNS];
	double cpu[FIGURE_MAX_RUNS];
	int killed[FIGURE_MAX_RUNS];
	uint64_t up[SWARM_MAX_FETCHERS];    /* bytes, the last run's */
	uint64_t up_chunks[SWARM_MAX_FETCHERS];
	int up_known[SWARM_MAX_FETCHERS];   /* it stayed and said */
};

static struct swarm_fig figs[SWARM_FIGS];
static int nfigs;

/* KEY=N (key is " KEY=") from the --stats line in path; -1 when there
 * is none. */
static int64_t
stats_field(const char *path, const char *key)
{
	char line[8192];
	int64_t v = -1;
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f)) {
		const char *at = strstr(line, key);
		if (strstr(line, ": stats ") != NULL && at != NULL)
			v = strtoll(at + strlen(key), NULL, 10);
	}
	if (f)
		fclose(f);
	return v;
}

static int
same_file(const char *a, const char *b)
{
	static char ba[1 << 16], bb[1 << 16];
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int same = fa != NULL && fb != NULL;

	while (same) {
		size_t na = fread(ba, 1, sizeof(ba), fa);
		size_t nb = fread(bb, 1, sizeof(bb), fb);
		if (na != nb || memcmp(ba, bb, na) != 0)
			same = 0;
		if (na == 0)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(const double *v, int n)
{
	double s[FIGURE_MAX_RUNS > SWARM_MAX_FETCHERS ? FIGURE_MAX_RUNS :
	    SWARM_MAX_FETCHERS];

	if (n == 0)
		return 0;
	memcpy(s, v, sizeof(double) * (size_t)n);
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* The fetcher i's paths in the work directory. */
static void
fetcher_paths(int i, char *out, char *err)
{
	snprintf(out, PATH_MAX, "%s/swarm-%d.bin", rig_workdir(), i);
	snprintf(err, PATH_MAX, "%s/swarm-%d.err", rig_workdir(), i);
}

/* Fetchers to kill and when: k of n, each at a random moment within the
 * ideal time; when[i] < 0 for those left alone. */
static int
choose_victims(int n, int churn, double ideal, unsigned seed, double *when)
{
	int k = churn ? n / 4 : 0;

	srand(seed);
	for (int i = 0; i < n; i++)
		when[i] = -1;
	for (int done = 0; done < k;) {
		int i = rand() % n;
		if (when[i] >= 0)
			continue;
		when[i] = ideal * ((double)rand() / RAND_MAX);
		done++;
	}
	return k;
}

static void
swarm_run(struct swarm_fig *sf, const char *file, const char *mf,
    const char *id)
{
	char serve_path[PATH_MAX], fetch_path[PATH_MAX], rate[32], seed_err[PATH_MAX];
	char out[PATH_MAX], err[PATH_MAX];
	static pid_t pids[SWARM_MAX_FETCHERS];
	static double when[SWARM_MAX_FETCHERS];
	static struct run runs[SWARM_MAX_FETCHERS];
	static int over[SWARM_MAX_FETCHERS];
	struct proc_usage seed_use, all = { 0, 0, 0 };
	struct server seed;
	int n = sf->n, r = sf->nruns, left = n, ok = 0;
	double start, last = 0, deadline;
	int64_t seed_out;

	snprintf(rate, sizeof(rate), "%u", SWARM_RATE);
	rig_tool_path(serve_path, sizeof(serve_path), "p2p-serve");
	rig_tool_path(fetch_path, sizeof(fetch_path), "p2p-fetch");
	snprintf(seed_err, sizeof(seed_err), "%s/swarm-seed.err", rig_workdir());
	{
		char *argv[] = { serve_path, "-p", "0", "--bind", "127.0.0.1",
		    "--no-announce", "--stats", "--max-upload-rate", rate, NULL };
		if (proc_server_start_logged(&seed, argv, mf, seed_err) != 0)
			tool_die(1, "p2p-serve did not start");
	}
	sf->killed[r] = choose_victims(n, sf->churn, sf->ideal,
	    (unsigned)(n * 1000 + r), when);
	start = proc_now();
	for (int i = 0; i < n; i++) {
		char *argv[] = { fetch_path, "-p", seed.addr, "-T", "60", "-q",
		    "--stats", "--bind", "127.0.0.1", "--max-upload-rate", rate,
		    "-o", out, (char *)id, NULL };
		fetcher_paths(i, out, err);
		unlink(out);
		pids[i] = proc_spawn_logged(argv, NULL, NULL, err);
		over[i] = 0;
	}
	/* However the protocol behaves, the figure ends: a fetch gives up
	 * after 60 s without progress, and this is the backstop. */
	deadline = start + 120 + 30 * sf->ideal;
	while (left > 0) {
		struct timespec tick = { 0, 10 * 1000 * 1000 };
		double now = proc_now();
		for (int i = 0; i < n; i++) {
			if (over[i])
				continue;
			if (when[i] >= 0 && now - start >= when[i]) {
				kill(pids[i], SIGKILL);
				when[i] = -2;
			}
			if (now > deadline)
				kill(pids[i], SIGKILL);
			if (proc_poll(pids[i], start, &runs[i])) {
				over[i] = 1;
				left--;
				proc_usage_add(&all, &runs[i].use);
			}
		}
		if (left > 0)
			nanosleep(&tick, NULL);
	}
	seed_use = proc_server_stop(&seed);
	proc_usage_add(&all, &seed_use);
	seed_out = stats_field(seed_err, " bytes_out=");
	for (int i = 0; i < n; i++) {
		fetcher_paths(i, out, err);
		sf->up_known[i] = 0;
		if (when[i] != -2) {
			int64_t up;
			if (runs[i].ok && same_file(file, out)) {
				ok++;
				if (runs[i].secs > last)
					last = runs[i].secs;
			}
			if ((up = stats_field(err, " bytes_out=")) >= 0) {
				sf->up[i] = (uint64_t)up;
				sf->up_chunks[i] = (uint64_t)stats_field(err,
				    " chunks_out=");
				sf->up_known[i] = 1;
			}
		}
		unlink(out);
		unlink(err);
		/* A killed fetch leaves its .part behind. */
		strncat(out, ".part", PATH_MAX - strlen(out) - 1);
		unlink(out);
	}
	unlink(seed_err);
	sf->fig->runs[r].secs = last;
	sf->fig->runs[r].ok = ok == n - sf->killed[r];
	sf->fig->runs[r].use = all;
	sf->fig->nruns++;
	sf->copies[r] = seed_out >= 0 ? (double)seed_out / SWARM_SIZE : -1;
	sf->cpu[r] = all.cpu_s;
	sf->nruns++;
}

void
swarm_bench(int n, int reps, int churn, int quiet)
{
	char file[PATH_MAX], mf[PATH_MAX], id[80], name[64], sz[24];
	struct swarm_fig *sf;
	double one = (double)SWARM_SIZE / SWARM_RATE;
	double all = (double)SWARM_SIZE * n / ((double)SWARM_RATE * (n + 1));

	if (nfigs == SWARM_FIGS)
		tool_die(1, "more than %d swarm figures", SWARM_FIGS);
	if (n < 1 || n > SWARM_MAX_FETCHERS)
		tool_die(1, "%d fetchers: from 1 to %d", n, SWARM_MAX_FETCHERS);
	if (reps > FIGURE_MAX_RUNS)
		reps = FIGURE_MAX_RUNS;
	sf = &figs[nfigs++];
	memset(sf, 0, sizeof(*sf));
	sf->n = n;
	sf->churn = churn;
	sf->ideal = one > all ? one : all;
	figure_size_name(SWARM_SIZE, sz, sizeof(sz));
	snprintf(name, sizeof(name), "%s/%d/%s", churn ? "swarm-churn" :
	    "swarm", n, sz);
	sf->fig = figure_new(name, (uint64_t)SWARM_SIZE * (uint64_t)n);
	snprintf(sf->fig->note, sizeof(sf->fig->note), "1 seed, %d fetchers%s, "
	    "each at %u KiB/s up; until all done", n, churn ? " (a quarter "
	    "killed)" : "", SWARM_RATE >> 10);
	rig_prepare("swarm", SWARM_SIZE, file, mf, id);
	for (int r = 0; r < reps; r++) {
		swarm_run(sf, file, mf, id);
		if (!quiet)
			fprintf(stderr, "p2p-bench: %s run %d: %.2f s (ideal %.2f), "
			    "%s, seed %.2f copies, CPU %.1f s\n", name, r + 1,
			    sf->fig->runs[r].secs, sf->ideal,
			    sf->fig->runs[r].ok ? "all ok" : "FAILED",
			    sf->copies[r], sf->cpu[r]);
	}
	unlink(file);
	unlink(mf);
}

/* The last run's fetchers' uploads: min, median, max in MiB, and how many
 * of those that stayed uploaded no chunk. */
static void
uploads(const struct swarm_fig *sf, double *lo, double *med, double *hi,
    int *idle, int *known)
{
	double v[SWARM_MAX_FETCHERS];
	int k = 0;

	*idle = 0;
	for (int i = 0; i < sf->n; i++)
		if (sf->up_known[i]) {
			v[k++] = sf->up[i] / 1048576.0;
			*idle += sf->up_chunks[i] == 0;
		}
	*known = k;
	*lo = *hi = 0;
	for (int i = 0; i < k; i++) {
		if (i == 0 || v[i] < *lo)
			*lo = v[i];
		if (v[i] > *hi)
			*hi = v[i];
	}
	*med = median(v, k);
}

void
swarm_report(FILE *j, FILE *s)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (nfigs == 0)
		return;
	fprintf(s, "\nswarm: 1 seed and N fetchers (-o), every one at "
	    "--max-upload-rate %u, a %u MiB file; times in s (median of the "
	    "runs);\nideal = the longer of one copy at the rate and N copies "
	    "over the whole swarm's upload; CPU = all processes' CPU time,\n"
	    "beside the %ld cores' time over the run (near 100%%: the machine, "
	    "not the protocol, is the limit); uploads of the last run, MiB.\n",
	    SWARM_RATE, SWARM_SIZE >> 20, cores);
	fprintf(s, "%-22s %4s %7s %7s %7s %6s %6s %7s %5s %23s %5s\n",
	    "figure", "runs", "all", "ideal", "x ideal", "ok", "seed x",
	    "CPU s", "CPU%", "fetcher up min/med/max", "idle");
	fprintf(j, ",\n  \"swarm\": [\n");
	for (int i = 0; i < nfigs; i++) {
		const struct swarm_fig *sf = &figs[i];
		struct figure_stats st = figure_summarize(sf->fig->runs,
		    sf->fig->nruns);
		double copies = median(sf->copies, sf->nruns);
		double cpu = median(sf->cpu, sf->nruns), lo, med, hi;
		double share = st.median > 0 && cores > 0 ?
		    100 * cpu / (st.median * (double)cores) : 0;
		int idle, known, first = 1;

		uploads(sf, &lo, &med, &hi, &idle, &known);
		fprintf(s, "%-22s %4d %7.2f %7.2f %7.2f %3d/%-2d %6.2f %7.1f "
		    "%4.0f%% %7.2f/%7.2f/%7.2f %2d/%-2d\n", sf->fig->name,
		    sf->nruns, st.median, sf->ideal, sf->ideal > 0 ?
		    st.median / sf->ideal : 0, st.ok, st.n, copies, cpu, share,
		    lo, med, hi, idle, known);
		fprintf(j, "    {\"name\": \"%s\", \"fetchers\": %d, \"churn\": "
		    "%s, \"killed\": %d, \"rate\": %u, \"bytes\": %u, "
		    "\"runs\": %d, \"ok_runs\": %d, \"median_s\": %.3f, "
		    "\"min_s\": %.3f, \"max_s\": %.3f, \"ideal_s\": %.3f, "
		    "\"seed_copies\": %.3f, \"cpu_s\": %.2f, \"cpu_share\": "
		    "%.3f, \"uploads\": [", sf->fig->name, sf->n,
		    sf->churn ? "true" : "false", sf->killed[0], SWARM_RATE,
		    SWARM_SIZE, st.n, st.ok, st.median, st.min, st.max,
		    sf->ideal, copies, cpu, share / 100);
		for (int k = 0; k < sf->n; k++)
			if (sf->up_known[k]) {
				fprintf(j, "%s%llu", first ? "" : ", ",
				    (unsigned long long)sf->up[k]);
				first = 0;
			}
		fprintf(j, "]}%s\n", i + 1 < nfigs ? "," : "");
	}
	fprintf(j, "  ]");
}
