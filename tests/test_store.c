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

#include "proto.h"
#include "store_private.h"
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

/* The manifest of the file rel (under the test's directory), with path
 * set to the file named by path_rel. */
static int
manifest_of(const char *rel, const char *path_rel, proto_manifest **mf)
{
	char path[256], other[256];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	snprintf(other, sizeof(other), "%s/%s", top, path_rel);
	if ((fd = open(path, O_RDONLY)) < 0)
		return PROTO_ERR_SYSTEM;
	rc = proto_manifest_build_fd(fd, "f", other, 0, mf);
	close(fd);
	return rc;
}

/* Chunks rel beneath root as p2p-serve -d does and adds it. */
static void
add_walked(proto_store *st, int root, const char *rel, const char *name,
    uint8_t id[PROTO_HASH_LEN])
{
	proto_manifest *mf;
	struct stat sb;
	int fd = proto_open_beneath(root, rel);

	if (fd < 0 || fstat(fd, &sb) != 0 ||
	    proto_manifest_build_fd(fd, name, rel, 0, &mf) != 0) {
		fprintf(stderr, "cannot chunk %s\n", rel);
		exit(2);
	}
	close(fd);
	memcpy(id, mf->id, PROTO_HASH_LEN);
	if (proto_store_add_beneath(st, mf, root, rel, (uint64_t)sb.st_dev,
	    (uint64_t)sb.st_ino) != 0)
		exit(2);
}

int
main(void)
{
	uint8_t id_fifo[PROTO_HASH_LEN], id_swap[PROTO_HASH_LEN];
	uint8_t id_kept[PROTO_HASH_LEN];
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

	fd = proto__store_open_by_components(root, "a/f");
	ok(fd >= 0, "without openat2: a file beneath opens");
	if (fd >= 0)
		close(fd);
	ok(fails_with(proto__store_open_by_components(root, "a/../../outside/f"),
	    EXDEV, EXDEV), "without openat2: \"..\" refused");
	ok(fails_with(proto__store_open_by_components(root, "link/f"), ELOOP,
	    ENOTDIR), "without openat2: a link to a directory refused");
	ok(fails_with(proto__store_open_by_components(root, "a/l"), ELOOP, ELOOP),
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
		is_int(proto_store_add_beneath(st, mf, root, "a/f", 0, 0), 0,
		    "added beneath the directory");
		run("mv \"$T/root/a\" \"$T/root/a.old\"");
		run("ln -s ../outside \"$T/root/a\"");
		fd = -1;
		is_int(proto_store_open(st, id, &fd), PROTO_ERR_SYSTEM,
		    "after a directory on the way became a link: not opened");
		ok(fd == -1, "no descriptor handed out");
	}
	proto_store_free(st);

	/* A stuck open would hang here: the alarm turns it into a failure. */
	alarm(20);
	st = proto_store_new();
	put("root/fifo", "regular when chunked");
	add_walked(st, root, "fifo", "fifo", id_fifo);
	run("rm \"$T/root/fifo\" && mkfifo \"$T/root/fifo\"");
	is_int(proto_store_open(st, id_fifo, &fd), PROTO_ERR_MISMATCH,
	    "a FIFO put in the file's place: refused, without blocking");

	put("root/swap", "first bytes");
	add_walked(st, root, "swap", "swap", id_swap);
	put("root/swap.new", "other bytes");
	run("mv \"$T/root/swap.new\" \"$T/root/swap\"");
	is_int(proto_store_open(st, id_swap, &fd), PROTO_ERR_MISMATCH,
	    "another file of the same size renamed over it: refused");

	put("root/kept", "kept as it was");
	add_walked(st, root, "kept", "kept", id_kept);
	is_int(proto_store_open(st, id_kept, &fd), 0, "the file chunked opens");
	proto_store_free(st);

	/* A manifest made elsewhere: its path may name other bytes. */
	st = proto_store_new();
	put("root/honest", "the bytes of the manifest");
	put("root/other", "secret bytes of that size");
	is_int(manifest_of("root/honest", "root/honest", &mf), 0,
	    "manifest of honest");
	memcpy(id_kept, mf->id, PROTO_HASH_LEN);
	is_int(proto_store_add(st, mf), 0, "a manifest with its own path");
	is_int(proto_store_open(st, id_kept, &fd), 0, "opens");
	is_int(proto_store_check(st, id_kept, 0, 25), 0,
	    "bytes that match their manifest may go out");
	is_int(manifest_of("root/honest", "root/other", &mf), 0,
	    "manifest of honest, path of other");
	memcpy(id_swap, mf->id, PROTO_HASH_LEN);
	id_swap[0] ^= 1; /* another entry for the same bytes */
	memcpy(mf->id, id_swap, PROTO_HASH_LEN);
	is_int(proto_store_add(st, mf), 0, "a manifest naming another file");
	is_int(proto_store_open(st, id_swap, &fd), 0,
	    "opens: the size is right");
	is_int(proto_store_check(st, id_swap, 0, 25), PROTO_ERR_MISMATCH,
	    "its bytes do not match: not served");
	is_int(proto_store_open(st, id_swap, &fd), PROTO_ERR_MISMATCH,
	    "and never again");
	run("truncate -s 3 \"$T/root/honest\"");
	is_int(proto_store_open(st, id_kept, &fd), PROTO_ERR_MISMATCH,
	    "shrunk: refused");
	proto_store_free(st);

	/* Withdrawn: gone, and remembered as such, the last 256. */
	st = proto_store_new();
	put("root/w1", "first");
	put("root/w2", "second");
	add_walked(st, root, "w1", "w1", id_kept);
	add_walked(st, root, "w2", "w2", id_swap);
	is_int(proto_store_withdrawn(st, id_kept), 0, "held: not withdrawn");
	is_int(proto_store_remove(st, id_kept), 0, "removed");
	ok(proto_store_find(st, id_kept) == NULL, "no longer found");
	is_int(proto_store_withdrawn(st, id_kept), 1, "remembered as withdrawn");
	ok(proto_store_find(st, id_swap) != NULL &&
	    proto_store_count(st) == 1, "the other file still held, alone");
	is_int(proto_store_remove(st, id_kept), PROTO_ERR_INVALID,
	    "removed twice: not held");
	for (int i = 0; i < PROTO_STORE_GONE_MAX - 1; i++) {
		uint8_t other[PROTO_HASH_LEN] = { 0 };
		memcpy(other, &i, sizeof(i));
		other[31] = 0xee;
		(void)proto_store_remove(st, other);
	}
	is_int(proto_store_withdrawn(st, id_kept), 1,
	    "ids never held are not remembered: still withdrawn");
	is_int(proto_store_remove(st, id_swap), 0, "the last removed");
	ok(proto_store_count(st) == 0 && proto_store_withdrawn(st, id_swap),
	    "empty, the id remembered");
	proto_store_free(st);
	alarm(0);

	close(root);
	run("rm -rf \"$T\"");
	return done_testing();
}
