/*
 * p2p-bench's figures: each one a named measurement holding its runs and,
 * where it has one, a baseline's runs on the same bytes, recorded in the
 * order they were measured, and summarized (median, min, max, successes,
 * peak RSS) for the report.
 */
#ifndef BENCH_FIGURE_H
#define BENCH_FIGURE_H

#include <stddef.h>
#include <stdint.h>

#include "proc.h"

#define FIGURE_MAX 64
#define FIGURE_MAX_RUNS 50

struct figure {
	char name[64];
	uint64_t bytes;          /* moved per run (all fetchers together) */
	struct run runs[FIGURE_MAX_RUNS];
	int nruns;
	char baseline[32];       /* "" when none */
	struct run base[FIGURE_MAX_RUNS];
	int nbase;
	char note[128];
};

/* A new figure, zeroed but for its name (truncated to fit) and bytes, the
 * last of those figure_get counts. It stays valid, and the caller fills
 * its runs, until the program ends. Exits the program when FIGURE_MAX
 * figures are already taken. */
struct figure *figure_new(const char *name, uint64_t bytes);

/* How many figures figure_new made, and the i-th (0 <= i < that). */
int figure_count(void);
const struct figure *figure_get(int i);

/* A summary of n runs (n <= FIGURE_MAX_RUNS): the median, min and max wall
 * time, the largest peak RSS, and how many of the n were ok. All zero but
 * n when n is 0. */
struct figure_stats {
	double median, min, max;
	long rss;
	int ok, n;
};
struct figure_stats figure_summarize(const struct run *runs, int n);

/* n as a figure names its size: 1K, 10M, 1G; plain bytes when not a whole
 * number of KiB. Writes into buf (len bytes, truncated) and returns it. */
const char *figure_size_name(uint64_t n, char *buf, size_t len);

#endif
