/*
 * Unit tests for libproto/store.c: files under a shared directory are
 * opened beneath its descriptor only, through no link, even when the tree
 * is changed after it was walked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "proto.h"
#include "tap.h"

static char top[] = "/tmp/test_store.XXXXXX";

static void
put(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) < 0 ||
	    fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

/* A shell command, with the test's directory in $T. */
static void
run(const char *cmd)
{
	setenv("T", top, 1);
	if (system(cmd) != 0) {
		fprintf(stderr, "failed: %s\n", cmd);
		exit(2);
	}
}

static int
fails_with(int fd, int err1, int err2)
{
	int e = errno;

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return e == err1 || e == err2;
}

int
main(void)
{
	char root_path[256];
	proto_store *st;
	proto_manifest *mf;
	int root, fd;

	if (mkdtemp(top) == NULL)
		return 2;
	run("mkdir -p \"$T/root/a\" \"$T/outside\"");
	put("root/a/f", "inside");
	put("outside/f", "secret");
	run("ln -s ../outside \"$T/root/link\"");
	run("ln -s ../../outside/f \"$T/root/a/l\"");
	snprintf(root_path, sizeof(root_path), "%s/root", top);
	if ((root = open(root_path, O_RDONLY | O_DIRECTORY)) < 0)
		return 2;

	fd = proto_open_beneath(root, "a/f");
	ok(fd >= 0, "a file beneath the directory opens");
	if (fd >= 0)
		close(fd);
	ok(fails_with(proto_open_beneath(root, "../outside/f"), EXDEV, EXDEV),
	    "\"..\" out of the directory: EXDEV");
	ok(fails_with(proto_open_beneath(root, "a/../../outside/f"), EXDEV,
	    EXDEV), "\"..\" further down: EXDEV");
	ok(fails_with(proto_open_beneath(root, "/etc/hostname"), EXDEV, EXDEV),
	    "an absolute path: EXDEV");
	ok(fails_with(proto_open_beneath(root, ""), EXDEV, EXDEV),
	    "an empty path: EXDEV");
	ok(fails_with(proto_open_beneath(root, "link/f"), ELOOP, EXDEV),
	    "through a link to a directory outside: refused");
	ok(fails_with(proto_open_beneath(root, "a/l"), ELOOP, EXDEV),
	    "a link to a file outside: refused");

	fd = store_open_by_components(root, "a/f");
	ok(fd >= 0, "without openat2: a file beneath opens");
	if (fd >= 0)
		close(fd);
	ok(fails_with(store_open_by_components(root, "a/../../outside/f"),
	    EXDEV, EXDEV), "without openat2: \"..\" refused");
	ok(fails_with(store_open_by_components(root, "link/f"), ELOOP,
	    ENOTDIR), "without openat2: a link to a directory refused");
	ok(fails_with(store_open_by_components(root, "a/l"), ELOOP, ELOOP),
	    "without openat2: a link to a file refused");

	/* Shared as a/f; then a becomes a link to the outside directory,
	 * whose f has the same size. */
	st = proto_store_new();
	fd = proto_open_beneath(root, "a/f");
	if (st == NULL || fd < 0 ||
	    proto_manifest_build_fd(fd, "f", "a/f", 0, &mf) != 0)
		return 2;
	close(fd);
	{
		uint8_t id[PROTO_HASH_LEN];
		memcpy(id, mf->id, sizeof(id));
		is_int(proto_store_add_beneath(st, mf, root, "a/f"), 0,
		    "added beneath the directory");
		run("mv \"$T/root/a\" \"$T/root/a.old\"");
		run("ln -s ../outside \"$T/root/a\"");
		fd = -1;
		is_int(proto_store_open(st, id, &fd), PROTO_ERR_SYSTEM,
		    "after a directory on the way became a link: not opened");
		ok(fd == -1, "no descriptor handed out");
	}
	proto_store_free(st);
	close(root);
	run("rm -rf \"$T\"");
	return done_testing();
}
