/*
 * p2p-bench's tree figure (tree.h): a tree of many small files, fetched
 * by p2p-fetch and copied by tar through socat, runs interleaved.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../tool.h"
#include "figure.h"
#include "proc.h"
#include "rig.h"
#include "tree.h"

#define TREE_DIRS 8

static void path_of(char *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A path (PATH_MAX bytes) into out; one too long ends the program. */
static void
path_of(char *out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX)
		tool_die(1, "a path too long under %s", rig_workdir());
}

/* Writes nfiles files of 1024 to 4096 bytes under dir, the same every
 * run: file i in dI (I = i % TREE_DIRS), every third one a level deeper.
 * Returns their bytes. */
static uint64_t
make_tree(const char *dir, int nfiles)
{
	uint64_t x = 0x2545f4914f6cdd1dull, total = 0;
	static uint64_t buf[4096 / 8];
	char path[PATH_MAX];

	if (mkdir(dir, 0755) != 0)
		tool_die_errno(1, "%s", dir);
	for (int d = 0; d < TREE_DIRS; d++) {
		path_of(path, "%s/d%d", dir, d);
		if (mkdir(path, 0755) != 0)
			tool_die_errno(1, "%s", path);
		path_of(path, "%s/d%d/deep", dir, d);
		if (mkdir(path, 0755) != 0)
			tool_die_errno(1, "%s", path);
	}
	for (int i = 0; i < nfiles; i++) {
		size_t size;
		FILE *f;
		for (size_t k = 0; k < sizeof(buf) / 8; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[k] = x;
		}
		size = 1024 + (size_t)(x % 3073);
		path_of(path, "%s/d%d/%sf%06d.bin", dir, i % TREE_DIRS,
		    i % 3 == 0 ? "deep/" : "", i);
		if ((f = fopen(path, "wb")) == NULL ||
		    fwrite(buf, 1, size, f) != size || fclose(f) != 0)
			tool_die_errno(1, "%s", path);
		total += size;
	}
	return total;
}

static int
remove_one(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* Removes the tree at dir, if any. */
static void
remove_tree(const char *dir)
{
	if (access(dir, F_OK) == 0 &&
	    nftw(dir, remove_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
		tool_die_errno(1, "removing %s", dir);
}

/* A loopback port free now, for socat to listen on. */
static unsigned
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		tool_die_errno(1, "a loopback port");
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Starts p2p-serve -d dir in s and waits until it serves the tree (its
 * log says so), up to 120 s. */
static void
serve_tree(struct server *s, const char *dir, int plain)
{
	char serve[PATH_MAX], log[PATH_MAX], line[512];
	char *argv[] = { serve, "-p", "0", "--bind", "127.0.0.1",
	    "--no-announce", "-v", "--max-peers", "64", "-d", (char *)dir,
	    NULL, NULL };
	double deadline = proc_now() + 120;
	int served = 0;

	if (plain)
		argv[11] = "--no-tls";
	rig_tool_path(serve, sizeof(serve), "p2p-serve");
	snprintf(log, sizeof(log), "%s/tree-serve%d.log", rig_workdir(),
	    plain);
	if (proc_server_start_logged(s, argv, NULL, log) != 0)
		tool_die(1, "p2p-serve -d %s did not start", dir);
	while (!served && proc_now() < deadline) {
		struct timespec pause = { 0, 50 * 1000 * 1000 };
		FILE *f = fopen(log, "r");
		while (f != NULL && fgets(line, sizeof(line), f) != NULL)
			if (strstr(line, "serving tree") != NULL)
				served = 1;
		if (f != NULL)
			fclose(f);
		if (!served)
			nanosleep(&pause, NULL);
	}
	unlink(log);
	if (!served)
		tool_die(1, "p2p-serve -d %s: no tree served in 120 s", dir);
}

/* One copy of src into dst by tar and socat, whole processes: the
 * receiver listens, the sender connects (retrying until it listens). */
static struct run
tar_copy(const char *src, const char *dst)
{
	char recv_cmd[PATH_MAX + 128], send_cmd[PATH_MAX + 128];
	char sh[] = "/bin/sh";
	char *rargv[] = { sh, "-c", recv_cmd, NULL };
	char *sargv[] = { sh, "-c", send_cmd, NULL };
	unsigned port = free_port();
	struct run r, sr;
	double start;
	pid_t rpid, spid;

	remove_tree(dst);
	if (mkdir(dst, 0755) != 0)
		tool_die_errno(1, "%s", dst);
	snprintf(recv_cmd, sizeof(recv_cmd), "socat -u TCP-LISTEN:%u,"
	    "bind=127.0.0.1,reuseaddr - | tar xf - -C '%s'", port, dst);
	snprintf(send_cmd, sizeof(send_cmd), "tar cf - -C '%s' . | socat -u "
	    "- TCP:127.0.0.1:%u,retry=200,interval=0.01", src, port);
	start = proc_now();
	rpid = proc_spawn(rargv, NULL, NULL);
	spid = proc_spawn(sargv, NULL, NULL);
	sr = proc_finish(spid, start);
	r = proc_finish(rpid, start);
	r.ok = r.ok && sr.ok;
	proc_usage_add(&r.use, &sr.use);
	return r;
}

/* 1 when program is found on PATH. */
static int
have(const char *program)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", program);
	return system(cmd) == 0;
}

void
tree_bench(int nfiles, int reps, int quiet)
{
	char src[PATH_MAX], dst[PATH_MAX], chunk[PATH_MAX], cmd[PATH_MAX * 2];
	char id[80], name[48], tls_path[PATH_MAX], plain_path[PATH_MAX];
	char *argv[16], *pargv[16];
	struct server srv[2];
	struct figure *f, *p;
	uint64_t bytes;
	int baseline = have("socat") && have("tar");
	FILE *pipe;

	snprintf(src, sizeof(src), "%s/tree-src", rig_workdir());
	snprintf(dst, sizeof(dst), "%s/tree-dst", rig_workdir());
	if (strchr(src, '\'') != NULL)
		tool_die(1, "%s: a quote in the path", src);
	bytes = make_tree(src, nfiles);
	rig_tool_path(chunk, sizeof(chunk), "p2p-chunk");
	if (snprintf(cmd, sizeof(cmd), "'%s' --tree --id '%s'", chunk, src) >=
	    (int)sizeof(cmd))
		tool_die(1, "%s: too long a path", src);
	if ((pipe = popen(cmd, "r")) == NULL || fgets(id, sizeof(id), pipe) ==
	    NULL)
		tool_die(1, "p2p-chunk --tree --id %s failed", src);
	pclose(pipe);
	id[strcspn(id, "\n")] = '\0';
	serve_tree(&srv[0], src, 0);
	serve_tree(&srv[1], src, 1);
	rig_fetch_argv(argv, tls_path, &srv[0], 1, id, dst, 0);
	rig_fetch_argv(pargv, plain_path, &srv[1], 1, id, dst, 1);

	snprintf(name, sizeof(name), "tree/%d", nfiles);
	f = figure_new(name, bytes);
	snprintf(f->note, sizeof(f->note), "%d files of 1-4 KiB in %d "
	    "directories, p2p-fetch -o DIR", nfiles, 2 * TREE_DIRS);
	snprintf(name, sizeof(name), "tree-plain/%d", nfiles);
	p = figure_new(name, bytes);
	snprintf(p->note, sizeof(p->note), "the same with --no-tls on both "
	    "ends");
	if (baseline) {
		snprintf(f->baseline, sizeof(f->baseline), "tar|socat|tar");
		snprintf(p->baseline, sizeof(p->baseline), "tar|socat|tar");
	}
	for (int i = 0; i < reps; i++) {
		if (!quiet)
			fprintf(stderr, "p2p-bench: tree/%d: run %d of %d\n",
			    nfiles, i + 1, reps);
		if (baseline)
			f->base[f->nbase++] = tar_copy(src, dst);
		remove_tree(dst);
		f->runs[f->nruns++] = proc_timed(argv, NULL);
		remove_tree(dst);
		p->runs[p->nruns++] = proc_timed(pargv, NULL);
	}
	memcpy(p->base, f->base, sizeof(p->base));
	p->nbase = f->nbase;
	remove_tree(dst);
	proc_server_stop(&srv[0]);
	proc_server_stop(&srv[1]);
	remove_tree(src);
}
