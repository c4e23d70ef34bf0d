/*
 * The report and the summary table, written once every figure is measured:
 * each figure's median, min and max wall time, throughput at the median,
 * success rate and peak RSS, and its baseline's beside it with the ratio.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../tool.h"
#include "figure.h"
#include "http.h"
#include "report.h"
#include "swarm.h"

/* The first CPU's model name; "unknown" where /proc/cpuinfo names none. */
static void
cpu_model(char *out, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(out, len, "unknown");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "model name", 10) == 0) {
			char *v = strchr(line, ':');
			if (v) {
				v += 1 + (v[1] == ' ');
				v[strcspn(v, "\n")] = '\0';
				snprintf(out, len, "%s", v);
			}
			break;
		}
	if (f)
		fclose(f);
}

/* MiB/s, and 0 rather than a division by zero for an unmeasured time. */
static double
mib_s(uint64_t bytes, double secs)
{
	return secs > 0 ? bytes / secs / (1 << 20) : 0;
}

void
report_write(const char *json_path, const char *summary_path,
    const char *mode)
{
	char model[128], date[64];
	struct utsname u;
	time_t t = time(NULL);
	FILE *j, *s;

	cpu_model(model, sizeof(model));
	uname(&u);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	if ((j = fopen(json_path, "w")) == NULL)
		tool_die_errno(1, "%s", json_path);
	if ((s = fopen(summary_path, "w")) == NULL)
		tool_die_errno(1, "%s", summary_path);
	fprintf(j, "{\n  \"date\": \"%s\",\n  \"machine\": {\"cpu\": \"%s\", "
	    "\"cores\": %ld, \"kernel\": \"%s %s\"},\n  \"mode\": \"%s\",\n"
	    "  \"figures\": [\n", date, model, sysconf(_SC_NPROCESSORS_ONLN),
	    u.sysname, u.release, mode);
	fprintf(s, "p2p-bench %s, %s, %ld cores, %s %s, %s mode\n"
	    "Whole p2p-fetch processes on loopback; times in ms; ratio = "
	    "baseline time / ours (1.0 = as fast as the baseline).\n\n",
	    date, model, sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release,
	    mode);
	fprintf(s, "%-24s %4s %9s %9s %9s %9s %6s %7s  %-14s %9s %6s\n",
	    "figure", "runs", "median", "min", "max", "MiB/s", "ok", "RSS MiB",
	    "baseline", "median", "ratio");
	for (int i = 0; i < figure_count(); i++) {
		const struct figure *f = figure_get(i);
		struct figure_stats st = figure_summarize(f->runs, f->nruns);
		struct figure_stats bs = figure_summarize(f->base, f->nbase);
		double ratio = f->nbase && st.median > 0 ?
		    bs.median / st.median : 0;

		fprintf(j, "    {\"name\": \"%s\", \"bytes\": %llu, \"runs\": %d, "
		    "\"median_s\": %.6f, \"min_s\": %.6f, \"max_s\": %.6f, "
		    "\"mib_per_s\": %.1f, \"success_rate\": %.3f, "
		    "\"peak_rss_kib\": %ld", f->name,
		    (unsigned long long)f->bytes, st.n, st.median, st.min,
		    st.max, mib_s(f->bytes, st.median),
		    st.n ? (double)st.ok / st.n : 0, st.rss);
		if (f->nbase)
			fprintf(j, ", \"baseline\": {\"name\": \"%s\", "
			    "\"runs\": %d, \"median_s\": %.6f, \"min_s\": %.6f, "
			    "\"max_s\": %.6f, \"mib_per_s\": %.1f}, "
			    "\"ratio\": %.3f", f->baseline, bs.n, bs.median,
			    bs.min, bs.max, mib_s(f->bytes, bs.median), ratio);
		if (f->note[0])
			fprintf(j, ", \"note\": \"%s\"", f->note);
		fprintf(j, "}%s\n", i + 1 < figure_count() ? "," : "");
		fprintf(s, "%-24s %4d %9.2f %9.2f %9.2f %9.1f %3d/%-2d %7.1f",
		    f->name, st.n, st.median * 1e3, st.min * 1e3, st.max * 1e3,
		    mib_s(f->bytes, st.median), st.ok, st.n, st.rss / 1024.0);
		if (f->nbase)
			fprintf(s, "  %-14s %9.2f %6.2f", f->baseline,
			    bs.median * 1e3, ratio);
		if (f->note[0])
			fprintf(s, "  (%s)", f->note);
		fputc('\n', s);
	}
	fprintf(j, "  ]");
	swarm_report(j, s);
	http_report(j, s);
	fprintf(j, "\n}\n");
	if (fclose(j) != 0 || fclose(s) != 0)
		tool_die_errno(1, "writing the reports");
}
