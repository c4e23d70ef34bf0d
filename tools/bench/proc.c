/*
 * Whole processes, started and timed for p2p-bench: fork and exec with the
 * standard descriptors redirected, wait4 for the exit status, CPU time and
 * peak RSS, and servers whose address is their first line of output.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../tool.h"
#include "proc.h"

void
proc_usage_add(struct proc_usage *into, const struct proc_usage *one)
{
	into->cpu_s += one->cpu_s;
	if (one->rss_kib > into->rss_kib)
		into->rss_kib = one->rss_kib;
	into->nproc += one->nproc;
}

double
proc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

pid_t
proc_spawn(char *const argv[], const char *in_path, const char *out_path)
{
	return proc_spawn_logged(argv, in_path, out_path, NULL);
}

pid_t
proc_spawn_logged(char *const argv[], const char *in_path,
    const char *out_path, const char *err_path)
{
	pid_t pid = fork();

	if (pid < 0)
		tool_die_errno(1, "fork");
	if (pid == 0) {
		int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
		int out = open(out_path ? out_path : "/dev/null",
		    O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int null = open(err_path ? err_path : "/dev/null",
		    O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || out < 0 || null < 0)
			_exit(127);
		dup2(in, 0);
		dup2(out, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static struct proc_usage
usage_of(const struct rusage *ru)
{
	struct proc_usage u;

	u.cpu_s = (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
	    (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
	u.rss_kib = ru->ru_maxrss;
	u.nproc = 1;
	return u;
}

struct run
proc_finish(pid_t pid, double start)
{
	struct rusage ru;
	struct run r = { 0, 0, { 0, 0, 0 } };
	int status;

	if (wait4(pid, &status, 0, &ru) < 0)
		return r;
	r.secs = proc_now() - start;
	r.use = usage_of(&ru);
	r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	return r;
}

int
proc_poll(pid_t pid, double start, struct run *r)
{
	struct rusage ru;
	int status;
	pid_t got = wait4(pid, &status, WNOHANG, &ru);

	if (got == 0)
		return 0;
	memset(r, 0, sizeof(*r));
	if (got == pid) {
		r->secs = proc_now() - start;
		r->use = usage_of(&ru);
		r->ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	return 1;
}

struct run
proc_timed(char *const argv[], const char *out_path)
{
	double start = proc_now();

	return proc_finish(proc_spawn(argv, NULL, out_path), start);
}

struct run
proc_timed_file(char *const argv[], const char *out)
{
	struct run r;

	unlink(out);
	r = proc_timed(argv, NULL);
	if (access(out, F_OK) != 0)
		r.ok = 0;
	return r;
}

int
proc_server_start(struct server *s, char *const argv[], const char *in_path)
{
	return proc_server_start_logged(s, argv, in_path, NULL);
}

int
proc_server_start_logged(struct server *s, char *const argv[],
    const char *in_path, const char *err_path)
{
	int fds[2];
	ssize_t n = 0;
	double deadline = proc_now() + 10;

	if (pipe(fds) != 0)
		tool_die_errno(1, "pipe");
	if ((s->pid = fork()) < 0)
		tool_die_errno(1, "fork");
	if (s->pid == 0) {
		int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
		int null = open(err_path ? err_path : "/dev/null",
		    O_WRONLY | O_CREAT | O_TRUNC, 0644);
		/* A bench killed before it stops its servers takes them
		 * along, rather than leaving them serving. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(in, 0);
		dup2(fds[1], 1);
		dup2(null, 2);
		close(fds[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	while (n < (ssize_t)sizeof(s->addr) - 1 && proc_now() < deadline) {
		ssize_t got = read(fds[0], s->addr + n, 1);
		if (got <= 0)
			break;
		if (s->addr[n] == '\n')
			break;
		n += got;
	}
	s->addr[n] = '\0';
	close(fds[0]);
	return n > 0 ? 0 : -1;
}

struct proc_usage
proc_server_stop(struct server *s)
{
	struct proc_usage u = { 0, 0, 0 };
	struct rusage ru;

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		if (wait4(s->pid, NULL, 0, &ru) == s->pid)
			u = usage_of(&ru);
		s->pid = 0;
	}
	return u;
}
