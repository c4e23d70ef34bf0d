/*
 * p2p-bench's swarm figures: one seed and N fetchers writing to files (so
 * each shares what it has), all started together and all capped at the
 * same upload rate, so the swarm's upload, not the loopback, is what is
 * measured. Each figure reports the time until all are done beside the
 * ideal, the seed's upload in copies of the file, every process's upload
 * as its --stats said, and the CPU time of them all, which tells a figure
 * this machine's cores limit from one the protocol does. With churn, a
 * quarter of the fetchers are killed (SIGKILL) at random moments.
 */
#ifndef BENCH_SWARM_H
#define BENCH_SWARM_H

#include <stdint.h>
#include <stdio.h>

#define SWARM_SIZE (8u << 20)      /* the file: about 4 s at the rate */
#define SWARM_RATE (2u << 20)      /* bytes/s, every process's upload */
#define SWARM_MAX_FETCHERS 200

/* Measures the figure of n fetchers (1 <= n <= SWARM_MAX_FETCHERS), reps
 * runs, with a quarter of them killed when churn. Adds a figure
 * "swarm/N/8M" (or "swarm-churn/...") for the table, and keeps the
 * swarm's own numbers for swarm_report. Progress, a line a run, on
 * stderr unless quiet. Exits the program when the seed does not start. */
void swarm_bench(int n, int reps, int churn, int quiet);

/* The swarm figures measured, if any: a "swarm" array appended to the
 * JSON report (json is positioned after the figures' array, before the
 * closing brace; ",\n  \"swarm\": [...]" is written) and a table of its
 * own in the summary. */
void swarm_report(FILE *json, FILE *summary);

#endif
