/*
 * p2p-bench's tree figure: many small files. A tree of files of 1 to 4
 * KiB (random sizes, from a fixed seed, spread over a few directories)
 * served by `p2p-serve -d`, fetched whole by `p2p-fetch TREEID -o DIR`,
 * beside `tar c | socat` into `socat | tar x` over loopback, the runs of
 * the two interleaved, and again with --no-tls on both ends. What it
 * measures is what a file costs beyond its bytes: a round trip, a
 * manifest, an open and a rename each.
 */
#ifndef BENCH_TREE_H
#define BENCH_TREE_H

#define TREE_FILES_DEFAULT 10000
#define TREE_FILES_MAX 100000

/* Measures the tree of nfiles files (1 <= nfiles <= TREE_FILES_MAX), reps
 * runs of each: adds the figures "tree/N" (TLS, the default) and
 * "tree-plain/N" (--no-tls), each beside the tar | socat runs. Without
 * socat, or tar, the figures have no baseline. Progress on stderr unless
 * quiet. Exits the program when the tree cannot be written or served. */
void tree_bench(int nfiles, int reps, int quiet);

#endif
