/*
 * p2p-bench's process runner: starts whole programs, waits for them and
 * says what each run cost (wall time, CPU time, peak RSS from wait4), and
 * starts and stops the servers a figure measures against. Every figure,
 * ours and the baselines alike, is measured through these, so that all
 * are timed the same way.
 */
#ifndef BENCH_PROC_H
#define BENCH_PROC_H

#include <sys/types.h>

/* What one or several processes cost: CPU time (user and system) summed
 * over them, and the largest peak RSS among them. nproc counts the
 * processes added; all zero is "none yet". */
struct proc_usage {
	double cpu_s;
	long rss_kib;
	int nproc;
};

/* One measured run: its wall time, whether it succeeded, and the usage of
 * the processes it waited for (one, or all of a run of several at once). */
struct run {
	double secs;
	int ok;
	struct proc_usage use;
};

/* Adds one's processes to into: CPU time summed, RSS the larger. */
void proc_usage_add(struct proc_usage *into, const struct proc_usage *one);

/* Seconds on the monotonic clock, for start times given to proc_finish. */
double proc_now(void);

/* Starts argv[0] (a path, not searched) with argv, stdin from in_path and
 * stdout to out_path (truncated or created), each /dev/null when NULL,
 * and stderr to /dev/null. Returns the pid, to be given to proc_finish;
 * a failed exec shows as exit 127 there. Exits the program when it cannot
 * fork. */
pid_t proc_spawn(char *const argv[], const char *in_path,
    const char *out_path);

/* proc_spawn with stderr to err_path (truncated or created; /dev/null
 * when NULL), for programs whose --stats a figure reads. */
pid_t proc_spawn_logged(char *const argv[], const char *in_path,
    const char *out_path, const char *err_path);

/* Waits for pid and returns its run: wall time since start (a proc_now
 * value), ok when it exited 0, its CPU time and peak RSS. All zero when
 * pid cannot be waited for. */
struct run proc_finish(pid_t pid, double start);

/* proc_finish without waiting: 0 while pid runs; else 1 with its run in
 * r (all zero when pid cannot be waited for). */
int proc_poll(pid_t pid, double start, struct run *r);

/* proc_spawn then proc_finish: argv run once, stdout to out_path. */
struct run proc_timed(char *const argv[], const char *out_path);

/* One run of a program that writes the file out: out is removed first,
 * and the run is ok only when it exits 0 and out exists afterwards (as
 * p2p-fetch renames its .part to out only once the file is whole and
 * verified). */
struct run proc_timed_file(char *const argv[], const char *out);

/* A server process that prints its HOST:PORT as its first stdout line.
 * pid is 0 when not running. */
struct server {
	pid_t pid;
	char addr[64];
};

/* Starts argv as a server, stdin from in_path (/dev/null when NULL), and
 * reads its first line (without the newline) into s->addr, waiting up to
 * 10 s. Returns 0, or -1 when no line came; s->pid is set either way, for
 * proc_server_stop. The server gets SIGTERM when p2p-bench dies
 * (PR_SET_PDEATHSIG). Exits the program when it cannot pipe or fork. */
int proc_server_start(struct server *s, char *const argv[],
    const char *in_path);

/* proc_server_start with the server's stderr to err_path (truncated or
 * created; /dev/null when NULL). */
int proc_server_start_logged(struct server *s, char *const argv[],
    const char *in_path, const char *err_path);

/* Stops s (SIGTERM) and waits for it; nothing when it is not running.
 * Returns what the server cost over its whole life (zero when it was not
 * running), for figures that count the serving side too. */
struct proc_usage proc_server_stop(struct server *s);

#endif
