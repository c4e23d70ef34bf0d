/*
 * The figures p2p-bench measured, kept in one table for the whole run so
 * the report can list them in order, and the statistics they are reported
 * by.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tool.h"
#include "figure.h"

static struct figure figures[FIGURE_MAX];
static int nfigures;

struct figure *
figure_new(const char *name, uint64_t bytes)
{
	struct figure *f;

	if (nfigures == FIGURE_MAX)
		tool_die(1, "more than %d figures", FIGURE_MAX);
	f = &figures[nfigures++];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->bytes = bytes;
	return f;
}

int
figure_count(void)
{
	return nfigures;
}

const struct figure *
figure_get(int i)
{
	return &figures[i];
}

static int
by_secs(const void *a, const void *b)
{
	double x = ((const struct run *)a)->secs, y = ((const struct run *)b)->secs;

	return (x > y) - (x < y);
}

struct figure_stats
figure_summarize(const struct run *runs, int n)
{
	struct run sorted[FIGURE_MAX_RUNS];
	struct figure_stats s = { 0, 0, 0, 0, 0, n };

	if (n == 0)
		return s;
	memcpy(sorted, runs, n * sizeof(*runs));
	qsort(sorted, n, sizeof(*sorted), by_secs);
	s.median = n % 2 ? sorted[n / 2].secs :
	    (sorted[n / 2 - 1].secs + sorted[n / 2].secs) / 2;
	s.min = sorted[0].secs;
	s.max = sorted[n - 1].secs;
	for (int i = 0; i < n; i++) {
		if (runs[i].use.rss_kib > s.rss)
			s.rss = runs[i].use.rss_kib;
		s.ok += runs[i].ok;
	}
	return s;
}

const char *
figure_size_name(uint64_t n, char *buf, size_t len)
{
	if (n >= (1u << 30) && n % (1u << 30) == 0)
		snprintf(buf, len, "%lluG", (unsigned long long)(n >> 30));
	else if (n >= (1u << 20) && n % (1u << 20) == 0)
		snprintf(buf, len, "%lluM", (unsigned long long)(n >> 20));
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, len, "%lluK", (unsigned long long)(n >> 10));
	else
		snprintf(buf, len, "%llu", (unsigned long long)n);
	return buf;
}
