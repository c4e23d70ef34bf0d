/*
 * p2p-bench's HTTP baselines: p2p-fetch (TLS and --no-tls) beside curl
 * over HTTPS and HTTP from nginx, the raw TCP copy and sha256sum, on the
 * same bytes in the same run, runs interleaved, each client and each
 * server's CPU time and peak RSS apart; and the latency of a small fetch
 * and of a bare process start against curl and /bin/true.
 */
#ifndef BENCH_HTTP_H
#define BENCH_HTTP_H

#include <stdint.h>
#include <stdio.h>

/* The figure vs-http/SIZE: a test file of size bytes, fetched reps times
 * (at most FIGURE_MAX_RUNS) each way, the ways taking turns. Warns once
 * on stderr and measures nothing when nginx cannot be started. Exits the
 * program when a p2p-serve or the raw sender does not start. */
void http_bench(uint64_t size, int reps);

/* The figures latency/1K (p2p-fetch of 1 KiB from a running p2p-serve,
 * TLS, against curl over HTTPS from a running nginx) and latency/exec
 * (p2p-fetch --version against /bin/true), reps runs of each, taking
 * turns; ordinary figures, in the main table. */
void http_latency(int reps);

/* Writes the vs-http figures: into the JSON report (j, open inside its
 * top-level object, after the last member) as ", \"http\": [...]", and as
 * a table into the summary s. Nothing when there are none. */
void http_report(FILE *j, FILE *s);

#endif
