/*
 * p2p-bench's work directory, test files, and the p2p-serve and p2p-fetch
 * processes its figures are made of.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tool.h"
#include "rig.h"

static char bindir[PATH_MAX - 64], workdir[PATH_MAX - 64], self[PATH_MAX];

static void
cleanup_workdir(void)
{
	char key[PATH_MAX + 16];

	if (workdir[0] == '\0')
		return;
	snprintf(key, sizeof(key), "%s/identity.pem", workdir);
	unlink(key);
	rmdir(workdir);
}

void
rig_init(const char *dir)
{
	char key[PATH_MAX];
	char *slash;
	ssize_t n;

	if ((n = readlink("/proc/self/exe", self, sizeof(bindir) - 1)) < 0)
		tool_die_errno(1, "/proc/self/exe");
	self[n] = '\0';
	memcpy(bindir, self, (size_t)n + 1);
	if ((slash = strrchr(bindir, '/')) != NULL)
		*slash = '\0';
	snprintf(workdir, sizeof(workdir), "%s/p2p-bench.XXXXXX", dir);
	if (mkdtemp(workdir) == NULL)
		tool_die_errno(1, "%s", workdir);
	atexit(cleanup_workdir);
	snprintf(key, sizeof(key), "%s/identity.pem", workdir);
	setenv("P2P_IDENTITY", key, 1);
}

const char *
rig_self(void)
{
	return self;
}

const char *
rig_workdir(void)
{
	return workdir;
}

void
rig_tool_path(char *out, size_t len, const char *tool)
{
	snprintf(out, len, "%s/%s", bindir, tool);
}

static void
make_file(const char *path, uint64_t size)
{
	uint64_t x = 0x9e3779b97f4a7c15ull ^ size;
	static uint64_t buf[8192];
	FILE *f = fopen(path, "wb");

	if (f == NULL)
		tool_die_errno(1, "%s", path);
	while (size > 0) {
		size_t n = size < sizeof(buf) ? (size_t)size : sizeof(buf);
		for (size_t i = 0; i < sizeof(buf) / 8; i++) {
			/* xorshift64: incompressible enough, and fast. */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		if (fwrite(buf, 1, n, f) != n)
			tool_die_errno(1, "%s", path);
		size -= n;
	}
	if (fclose(f) != 0)
		tool_die_errno(1, "%s", path);
}

void
rig_prepare(const char *name, uint64_t size, char *file, char *mf, char *id)
{
	char chunk[PATH_MAX], *argv[4];
	FILE *p;
	char cmd[PATH_MAX * 2 + 32];

	snprintf(file, PATH_MAX, "%s/%s.bin", workdir, name);
	snprintf(mf, PATH_MAX, "%s/%s.mf", workdir, name);
	make_file(file, size);
	rig_tool_path(chunk, sizeof(chunk), "p2p-chunk");
	argv[0] = chunk;
	argv[1] = file;
	argv[2] = NULL;
	if (!proc_timed(argv, mf).ok)
		tool_die(1, "p2p-chunk %s failed", file);
	snprintf(cmd, sizeof(cmd), "'%s' --id '%s'", chunk, file);
	if ((p = popen(cmd, "r")) == NULL || fgets(id, 80, p) == NULL)
		tool_die(1, "p2p-chunk --id %s failed", file);
	pclose(p);
	id[strcspn(id, "\n")] = '\0';
}

void
rig_serve(struct server *s, const char *mf, const char *max_peers, int plain)
{
	char serve_path[PATH_MAX];
	char *argv[] = { serve_path, "-p", "0", "--bind", "127.0.0.1",
	    "--no-announce", "-q", "--max-peers", (char *)max_peers, NULL,
	    NULL };

	if (plain)
		argv[9] = "--no-tls";
	rig_tool_path(serve_path, sizeof(serve_path), "p2p-serve");
	if (proc_server_start(s, argv, mf) != 0)
		tool_die(1, "p2p-serve did not start");
}

void
rig_fetch_argv(char **argv, char *fetch_path, struct server *s, int npeers,
    char *id, char *out, int plain)
{
	int n = 0;

	rig_tool_path(fetch_path, PATH_MAX, "p2p-fetch");
	argv[n++] = fetch_path;
	for (int i = 0; i < npeers; i++) {
		argv[n++] = "-p";
		argv[n++] = s[i].addr;
	}
	if (plain)
		argv[n++] = "--no-tls";
	argv[n++] = "-T";
	argv[n++] = "30";
	argv[n++] = "-o";
	argv[n++] = out;
	argv[n++] = id;
	argv[n] = NULL;
}
