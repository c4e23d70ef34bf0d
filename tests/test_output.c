/*
 * Unit tests for libproto/output.c: a stream written in order whatever the
 * order chunks come in, and never past its window; FILE.part resumed from
 * what verifies, refused when it is a link, a FIFO or a directory or not
 * ours alone (another user's, writable by others, hard-linked), and
 * renamed only once complete; write errors reported with errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"
#include "tap.h"

#define CHUNK 16384
#define NCHUNKS 5
#define FILE_SIZE (NCHUNKS * CHUNK - 100)

static char dir[] = "/tmp/test_output.XXXXXX";
static uint8_t content[FILE_SIZE];

static char *
in_dir(const char *name)
{
	static char paths[4][256];
	static int next;
	char *p = paths[next++ % 4];

	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

static const uint8_t *
chunk(uint64_t i)
{
	return content + i * CHUNK;
}

static size_t
chunk_len(uint64_t i)
{
	return proto_chunk_len(FILE_SIZE, CHUNK, i);
}

static proto_manifest *
manifest_of(const uint8_t *data, size_t len)
{
	proto_manifest *mf = NULL;
	int fd = open(in_dir("src"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len ||
	    lseek(fd, 0, SEEK_SET) != 0 ||
	    proto_manifest_build_fd(fd, "f", NULL, CHUNK, &mf) != 0) {
		perror("manifest");
		exit(2);
	}
	close(fd);
	return mf;
}

/* The whole of a file, or NULL; *len its size. */
static uint8_t *
slurp(const char *path, size_t *len)
{
	static uint8_t buf[FILE_SIZE + CHUNK];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	*len = n < 0 ? 0 : (size_t)n;
	return buf;
}

static proto_output *
stream_to(proto_manifest *mf, int fd, size_t window_bytes)
{
	proto_output_config cfg = { mf, NULL, NULL, fd, window_bytes, 0 };
	proto_output *o = NULL;

	if (proto_output_new(&cfg, &o) != 0) {
		fprintf(stderr, "stream output: cannot make\n");
		exit(2);
	}
	return o;
}

static int
file_output(proto_manifest *mf, proto_output **o)
{
	proto_output_config cfg = { mf, in_dir("out"), in_dir("out.part"), -1,
	    0, 0 };

	*o = NULL;
	return proto_output_new(&cfg, o);
}

static void
test_stream_out_of_order(proto_manifest *mf)
{
	static const uint64_t order[NCHUNKS] = { 2, 4, 0, 3, 1 };
	int fd = open(in_dir("stream"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	proto_output *o = stream_to(mf, fd, 0);
	int rc = 0;
	size_t len;
	const uint8_t *got;

	is_int(proto_output_limit(o), PROTO_OUTPUT_WINDOW / CHUNK,
	    "stream: the default window is 8 MiB of chunks");
	for (int i = 0; i < NCHUNKS && rc == 0; i++) {
		rc = proto_output_write(o, order[i], chunk(order[i]),
		    chunk_len(order[i]));
		if (i == 1)
			is_int(proto_output_have(o)->count, 0,
			    "stream: chunks 2 and 4 held, none written");
		if (i == 2)
			is_int(proto_output_have(o)->count, 1,
			    "stream: chunk 0 written, 2 still waits for 1");
	}
	is_int(rc, 0, "stream: every chunk taken, in any order");
	is_int(proto_output_write(o, 3, chunk(3), chunk_len(3)), 0,
	    "stream: a chunk already written is ignored");
	is_int(proto_output_finish(o), 0, "stream: finish once complete");
	proto_output_free(o);
	close(fd);
	got = slurp(in_dir("stream"), &len);
	is_int(len, FILE_SIZE, "stream: the file's length, no chunk twice");
	is_mem(got, content, FILE_SIZE, "stream: the bytes in order");
}

static void
test_stream_window_full(proto_manifest *mf)
{
	int fd = open(in_dir("window"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	proto_output *o = stream_to(mf, fd, 1);
	size_t len;
	const uint8_t *got;

	is_int(proto_output_limit(o), 2,
	    "window: smaller than a chunk holds 2 chunks all the same");
	is_int(proto_output_write(o, 1, chunk(1), chunk_len(1)), 0,
	    "window: the last chunk it holds is taken early");
	is_int(proto_output_write(o, 1, chunk(1), chunk_len(1)), 0,
	    "window: the same early chunk again is ignored");
	is_int(proto_output_write(o, 2, chunk(2), chunk_len(2)),
	    PROTO_ERR_INVALID, "window full: a chunk past it is refused");
	is_int(proto_output_finish(o), PROTO_ERR_INVALID,
	    "window: finish with chunks missing is refused");
	is_int(proto_output_write(o, 0, chunk(0), chunk_len(0)), 0,
	    "window: the missing chunk releases the held one");
	is_int(proto_output_limit(o), 4, "window: the limit moved by two");
	is_int(proto_output_write(o, 2, chunk(2), chunk_len(2)), 0,
	    "window: the chunk refused before now fits");
	is_int(proto_output_write(o, 4, chunk(4), chunk_len(4) + 1),
	    PROTO_ERR_INVALID, "a length not the chunk's: refused");
	is_int(proto_output_write(o, NCHUNKS, chunk(0), 1), PROTO_ERR_INVALID,
	    "an index past the file: refused");
	is_int(proto_output_share(o, NULL), PROTO_ERR_INVALID,
	    "a stream has no file to share");
	proto_output_free(o);
	close(fd);
	got = slurp(in_dir("window"), &len);
	is_int(len, 3 * CHUNK, "window: three chunks written, in order");
	is_mem(got, content, 3 * CHUNK, "window: their bytes");
}

static void
test_stream_write_errors(proto_manifest *mf)
{
	int fd = open(in_dir("closed"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int pipefd[2];
	proto_output *o;

	close(fd);
	o = stream_to(mf, fd, 0);
	errno = 0;
	is_int(proto_output_write(o, 1, chunk(1), chunk_len(1)), 0,
	    "closed fd: an early chunk is only held");
	is_int(proto_output_write(o, 0, chunk(0), chunk_len(0)),
	    PROTO_ERR_SYSTEM, "closed fd: the write fails");
	is_int(errno, EBADF, "closed fd: errno says why");
	proto_output_free(o);

	if (pipe(pipefd) != 0)
		exit(2);
	close(pipefd[0]);
	signal(SIGPIPE, SIG_IGN);
	o = stream_to(mf, pipefd[1], 0);
	is_int(proto_output_write(o, 0, chunk(0), chunk_len(0)),
	    PROTO_ERR_SYSTEM, "reader gone: the write fails");
	is_int(errno, EPIPE, "reader gone: EPIPE, for a quiet exit");
	proto_output_free(o);
	ok(fcntl(pipefd[1], F_GETFD) == 0, "the caller's fd is not closed");
	close(pipefd[1]);
}

struct held {
	uint64_t index[NCHUNKS];
	int n;
};

static void
on_held(uint64_t index, void *ctx)
{
	struct held *h = ctx;

	if (h->n < NCHUNKS)
		h->index[h->n++] = index;
}

/* out.part left by an earlier run: chunks 0 and 2 good, 1 corrupt, 3 never
 * written (a hole), and the file ends inside chunk 4. */
static void
make_old_part(void)
{
	uint8_t bad[CHUNK];
	int fd = open(in_dir("out.part"), O_WRONLY | O_CREAT | O_TRUNC, 0644);

	memcpy(bad, chunk(1), CHUNK);
	bad[100] ^= 1;
	if (fd < 0 || pwrite(fd, chunk(0), CHUNK, 0) != CHUNK ||
	    pwrite(fd, bad, CHUNK, CHUNK) != CHUNK ||
	    pwrite(fd, chunk(2), CHUNK, 2 * CHUNK) != CHUNK ||
	    pwrite(fd, chunk(4), 10, 4 * CHUNK) != 10) {
		perror("out.part");
		exit(2);
	}
	close(fd);
}

static void
test_file_resume_and_rename(proto_manifest *mf)
{
	struct held h = { { 0 }, 0 };
	proto_output *o;
	proto_store *st = proto_store_new();
	uint64_t kept = 99;
	size_t len;
	const uint8_t *got;
	int rc = 0;

	make_old_part();
	is_int(file_output(mf, &o), 0, "resume: the old out.part is opened");
	is_int(proto_output_share(o, st), 0, "resume: lent to a store");
	is_int(proto_output_resume(o, on_held, &h, &kept), 0,
	    "resume: read back");
	is_int(kept, 2, "resume: two chunks kept");
	ok(h.n == 2 && h.index[0] == 0 && h.index[1] == 2,
	    "resume: held told of chunks 0 and 2, in order");
	ok(!proto_have_test(proto_output_have(o), 1),
	    "resume: the corrupt chunk is not held");
	ok(proto_store_holds(st, mf->id, CHUNK, 2) &&
	    !proto_store_holds(st, mf->id, CHUNK, 3),
	    "resume: the store serves what is held, not the hole");
	is_int(proto_output_limit(o), 0, "a file takes chunks in any order");
	is_int(proto_output_finish(o), PROTO_ERR_INVALID,
	    "finish with chunks missing: refused");
	ok(access(in_dir("out"), F_OK) != 0, "so nothing is renamed");
	for (uint64_t i = 1; i < NCHUNKS && rc == 0; i++)
		rc = proto_output_write(o, i, chunk(i), chunk_len(i));
	is_int(rc, 0, "resume: the missing chunks written, those held skipped");
	ok(proto_store_holds(st, mf->id, CHUNK, 3),
	    "a chunk written is served at once");
	is_int(proto_output_finish(o), 0, "finish: renamed");
	proto_store_free(st);
	proto_output_free(o);
	ok(access(in_dir("out.part"), F_OK) != 0, "finish: out.part is gone");
	got = slurp(in_dir("out"), &len);
	is_int(len, FILE_SIZE, "finish: out has the file's length");
	is_mem(got, content, FILE_SIZE, "finish: out has the file's bytes");
}

/* A damaged copy at out itself, with repair: kept where it verifies, the
 * rest written over it, never renamed; not when out.part is there, nor
 * when out has other names. */
static void
test_file_repair_in_place(proto_manifest *mf)
{
	char out[256], part[256];
	proto_output_config cfg = { mf, out, part, -1, 0, 1 };
	proto_output *o;
	struct stat before, after;
	uint64_t kept = 0;
	size_t len;
	const uint8_t *got;
	int fd;

	/* in_dir's buffers are reused: the config keeps its own. */
	snprintf(out, sizeof(out), "%s", in_dir("out"));
	snprintf(part, sizeof(part), "%s", in_dir("out.part"));
	unlink(out);
	unlink(part);
	fd = open(in_dir("out"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ok(fd >= 0 && write(fd, content, FILE_SIZE) == FILE_SIZE &&
	    pwrite(fd, "X", 1, 3 * CHUNK + 1) == 1 && close(fd) == 0,
	    "repair: out written, chunk 3 damaged");
	stat(in_dir("out"), &before);
	is_int(proto_output_new(&cfg, &o), 0, "repair: out opened");
	ok(access(in_dir("out.part"), F_OK) != 0, "repair: no out.part made");
	is_str(proto_output_file(o), in_dir("out"), "repair: out is written");
	proto_output_resume(o, NULL, NULL, &kept);
	is_int(kept, NCHUNKS - 1, "repair: every chunk but the damaged kept");
	is_int(proto_output_write(o, 3, chunk(3), chunk_len(3)), 0,
	    "repair: the damaged chunk written over");
	is_int(proto_output_finish(o), 0, "repair: finished");
	proto_output_free(o);
	stat(in_dir("out"), &after);
	ok(before.st_ino == after.st_ino, "repair: in place, not renamed");
	got = slurp(in_dir("out"), &len);
	ok(len == FILE_SIZE && memcmp(got, content, FILE_SIZE) == 0,
	    "repair: out has the file's bytes");

	ok(link(in_dir("out"), in_dir("other")) == 0, "repair: out hard-linked");
	is_int(proto_output_new(&cfg, &o), 0, "repair: hard-linked out: opened");
	is_str(proto_output_file(o), in_dir("out.part"),
	    "repair: a hard-linked out is not written into: out.part is");
	proto_output_free(o);
	unlink(in_dir("other"));
	is_int(proto_output_new(&cfg, &o), 0, "repair: out.part there: opened");
	is_str(proto_output_file(o), in_dir("out.part"),
	    "repair: an earlier run's out.part goes first");
	proto_output_free(o);
	unlink(in_dir("out.part"));
	cfg.repair = 0;
	is_int(proto_output_new(&cfg, &o), 0, "no repair: opened");
	is_str(proto_output_file(o), in_dir("out.part"),
	    "no repair: out.part, as before");
	proto_output_free(o);
	unlink(in_dir("out.part"));
	unlink(in_dir("out"));
}

/* A .part longer than the file (chunked otherwise before) loses the rest;
 * one of the wrong file keeps nothing. */
static void
test_file_excess_and_foreign(proto_manifest *mf)
{
	uint8_t junk[FILE_SIZE + CHUNK];
	proto_output *o;
	uint64_t kept = 99;
	size_t len;
	int fd, rc = 0;

	memset(junk, 'x', sizeof(junk));
	fd = open(in_dir("out.part"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, junk, sizeof(junk)) != (ssize_t)sizeof(junk))
		exit(2);
	close(fd);
	unlink(in_dir("out"));
	is_int(file_output(mf, &o), 0, "foreign .part: opened");
	is_int(proto_output_resume(o, NULL, NULL, &kept), 0,
	    "foreign .part: read back");
	is_int(kept, 0, "foreign .part: nothing verifies, nothing kept");
	for (uint64_t i = 0; i < NCHUNKS && rc == 0; i++)
		rc = proto_output_write(o, i, chunk(i), chunk_len(i));
	is_int(proto_output_finish(o), 0, "foreign .part: overwritten");
	proto_output_free(o);
	is_mem(slurp(in_dir("out"), &len), content, FILE_SIZE,
	    "foreign .part: the file's bytes");
	is_int(len, FILE_SIZE, "excess past the file's end cut off");
}

static void
test_file_refused(proto_manifest *mf)
{
	proto_output *o;
	size_t len;
	const uint8_t *got;
	int fd;

	unlink(in_dir("out.part"));
	fd = open(in_dir("canary"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "untouched", 9) != 9 ||
	    symlink(in_dir("canary"), in_dir("out.part")) != 0)
		exit(2);
	close(fd);
	errno = 0;
	is_int(file_output(mf, &o), PROTO_ERR_SYSTEM,
	    "a .part that is a symbolic link: refused");
	is_int(errno, ELOOP, "symbolic link: ELOOP, to say so");
	ok(o == NULL, "symbolic link: no output made");
	got = slurp(in_dir("canary"), &len);
	ok(len == 9 && memcmp(got, "untouched", 9) == 0,
	    "symbolic link: its target is untouched");

	unlink(in_dir("out.part"));
	if (mkfifo(in_dir("out.part"), 0644) != 0)
		exit(2);
	is_int(file_output(mf, &o), PROTO_ERR_INVALID,
	    "a .part that is a FIFO: not a regular file");
	ok(o == NULL, "FIFO: no output made");

	unlink(in_dir("out.part"));
	if (mkdir(in_dir("out.part"), 0755) != 0)
		exit(2);
	errno = 0;
	is_int(file_output(mf, &o), PROTO_ERR_SYSTEM,
	    "a .part that is a directory: refused");
	is_int(errno, EISDIR, "directory: EISDIR");
	rmdir(in_dir("out.part"));

	{
		proto_output_config cfg = { mf, in_dir("out"), NULL, -1, 0, 0 };
		is_int(proto_output_new(&cfg, &o), PROTO_ERR_INVALID,
		    "a path without a .part path: invalid");
	}
}

/* A .part planted for us: opening it must fail with EPERM and leave it as
 * it was. */
static void
refused_untouched(proto_manifest *mf, const char *what)
{
	proto_output *o;
	const uint8_t *got;
	size_t len;
	int rc;


	errno = 0;
	rc = file_output(mf, &o);
	ok(rc == PROTO_ERR_SYSTEM, "%s: refused (%d)", what, rc);
	ok(errno == EPERM, "%s: EPERM, to say so (%s)", what, strerror(errno));
	ok(o == NULL, "%s: no output made", what);
	got = slurp(in_dir("out.part"), &len);
	ok(got != NULL && len == 7 && memcmp(got, "planted", 7) == 0,
	    "%s: left as it was", what);
	proto_output_free(o);
}

static void
plant_part(mode_t mode)
{
	int fd;

	unlink(in_dir("out.part"));
	fd = open(in_dir("out.part"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "planted", 7) != 7 || fchmod(fd, mode) != 0)
		exit(2);
	close(fd);
}

/* In a directory others can write (/tmp), a .part someone else can still
 * write would let them change the file after it is verified. */
static void
test_file_not_ours(proto_manifest *mf)
{
	proto_output *o;

	plant_part(0666);
	refused_untouched(mf, "a .part others may write");
	plant_part(0664);
	refused_untouched(mf, "a .part its group may write");
	plant_part(0644);
	if (link(in_dir("out.part"), in_dir("other-name")) != 0)
		exit(2);
	refused_untouched(mf, "a .part with another name (hard link)");
	unlink(in_dir("other-name"));
	if (geteuid() == 0) {
		if (chown(in_dir("out.part"), 65534, 65534) != 0)
			exit(2);
		refused_untouched(mf, "a .part of another user");
	} else
		ok(1, "# SKIP another user's .part: needs root to chown");
	plant_part(0644);
	is_int(file_output(mf, &o), 0, "our own .part, mode 644: taken");
	proto_output_free(o);
	unlink(in_dir("out.part"));
}

/* A file over RLIMIT_FSIZE stands in for a full disk. */
static void
test_file_write_error(proto_manifest *mf)
{
	struct rlimit old, small;
	proto_output *o;
	int rc;

	unlink(in_dir("out"));
	unlink(in_dir("out.part"));
	if (file_output(mf, &o) != 0 || getrlimit(RLIMIT_FSIZE, &old) != 0)
		exit(2);
	signal(SIGXFSZ, SIG_IGN);
	small = old;
	small.rlim_cur = CHUNK;
	if (setrlimit(RLIMIT_FSIZE, &small) != 0)
		exit(2);
	is_int(proto_output_write(o, 0, chunk(0), chunk_len(0)), 0,
	    "file: a chunk within the limit written");
	rc = proto_output_write(o, 2, chunk(2), chunk_len(2));
	is_int(rc, PROTO_ERR_SYSTEM, "file too big: the write fails");
	is_int(errno, EFBIG, "file too big: errno says why");
	ok(!proto_have_test(proto_output_have(o), 2),
	    "file too big: the chunk is not held");
	setrlimit(RLIMIT_FSIZE, &old);
	proto_output_free(o);
	ok(access(in_dir("out.part"), F_OK) == 0, "the partial file is kept");
}

static void
test_empty_file(void)
{
	proto_manifest *mf = manifest_of(content, 0);
	proto_output *o;
	struct stat st;

	unlink(in_dir("out"));
	unlink(in_dir("out.part"));
	is_int(file_output(mf, &o), 0, "empty file: opened");
	is_int(proto_output_write(o, 0, content, 0), 0,
	    "empty file: its one empty chunk written");
	is_int(proto_output_finish(o), 0, "empty file: renamed");
	ok(stat(in_dir("out"), &st) == 0 && st.st_size == 0,
	    "empty file: out exists, empty");
	proto_output_free(o);
	proto_manifest_free(mf);
}

int
main(void)
{
	proto_manifest *mf;
	uint32_t x = 12345;

	if (mkdtemp(dir) == NULL)
		return 2;
	for (size_t i = 0; i < sizeof(content); i++) {
		x = x * 1103515245u + 12345u;
		content[i] = (uint8_t)(x >> 16);
	}
	mf = manifest_of(content, FILE_SIZE);
	proto_output_free(NULL);
	ok(1, "proto_output_free(NULL) does nothing");
	test_stream_out_of_order(mf);
	test_stream_window_full(mf);
	test_stream_write_errors(mf);
	test_file_resume_and_rename(mf);
	test_file_repair_in_place(mf);
	test_file_excess_and_foreign(mf);
	test_file_refused(mf);
	test_file_not_ours(mf);
	test_file_write_error(mf);
	test_empty_file();
	proto_manifest_free(mf);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 2;
	}
	return done_testing();
}
