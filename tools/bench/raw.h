/*
 * The raw TCP copy baseline: the least any transfer over loopback can
 * cost, a sender that sendfile()s the file to whoever connects and a
 * receiver that reads it all to a file. Both are whole processes, like the
 * p2p-fetch runs they are set beside: p2p-bench runs itself again, as
 * `p2p-bench --raw-send FILE` and `p2p-bench --raw-recv HOST:PORT OUT`,
 * whose main calls raw_send and raw_recv.
 */
#ifndef BENCH_RAW_H
#define BENCH_RAW_H

#include "proc.h"

/* The sender's body: listens on an ephemeral loopback port, prints its
 * HOST:PORT as the first line on stdout, then sends the file at path,
 * whole, to every connection and closes it, until killed. Never returns;
 * exits the program when it cannot listen. */
void raw_send(const char *path) __attribute__((noreturn));

/* The receiver's body: connects to hostport and writes all it reads to
 * out_path (created or truncated). Returns the exit code: 0 when the
 * sender closed and the file was written, 1 when a read or closing the
 * file failed. Exits the program with 2 for a bad hostport and with 1
 * when it cannot connect, or open or write out_path. */
int raw_recv(const char *hostport, const char *out_path);

/* Starts the sender of file in s by running self (p2p-bench's own path)
 * with --raw-send. Exits the program when it does not start; stop it with
 * proc_server_stop. */
void raw_start(struct server *s, const char *self, const char *file);

/* One timed copy from the sender s into out, by self --raw-recv; out is
 * removed first. */
struct run raw_timed_recv(const struct server *s, const char *self,
    const char *out);

#endif
