/*
 * p2p-verify: checks a file against a manifest (every chunk on its own, so a
 * mismatch names the bad chunks) or against a content id, or a directory
 * against a tree manifest (a line for each file that differs) or a tree id.
 * A pure filter:
 * exit 0 when the file matches, 1 when it does not.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

#define MAX_LISTED 20

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-verify [-qv] [--json] [--config FILE] -m MANIFEST FILE\n"
	    "       p2p-verify [-qv] [--json] [--config FILE] -m TREE_MANIFEST DIR\n"
	    "       p2p-verify [-qv] [--json] [--config FILE] TREEID DIR\n"
	    "       p2p-verify [-qv] [--json] [--config FILE] ID FILE\n"
	    "  -m, --manifest MANIFEST  check against the first manifest in\n"
	    "                           MANIFEST ('-' for standard input)\n"
	    "      --json               print the result as a JSON object\n"
	    "      --config FILE        read settings from FILE\n"
	    "      --strict             an unknown key in that file is an error\n"
	    "  -q, --quiet              print only errors\n"
	    "  -v, --verbose            print more\n"
	    "  -h, --help               print this help and exit\n"
	    "  -V, --version            print the version and exit\n"
	    "FILE '-' is standard input.\n"
	    "Prints OK<TAB>FILE or FAILED<TAB>FILE; exit 0 on a match, 1 when\n"
	    "the file differs or cannot be read, 2 on a usage error.\n");
}

/* Reads the first manifest of a stream, whatever follows it: a file's, or
 * with treep a tree's (into *treep). */
static proto_manifest *
read_manifest(const char *path, proto_tree **treep)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO :
	    open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 0;
	proto_manifest *mf = NULL;
	uint8_t *buf = NULL;
	long rc = 0;

	if (fd < 0)
		tool_die_errno(1, "%s", path);
	for (;;) {
		ssize_t n;
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			uint8_t *grown = realloc(buf, cap);
			if (grown == NULL)
				tool_die(1, "%s: out of memory", path);
			buf = grown;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			tool_die_errno(1, "%s", path);
		len += (size_t)n;
		rc = treep != NULL ? proto_tree_unpack(buf, len, treep) :
		    proto_manifest_unpack(buf, len, &mf);
		if (rc != 0 || n == 0)
			break;
	}
	if (rc == 0)
		tool_die(1, "manifest: %s: %s", path,
		    len == 0 ? "empty" : "truncated");
	if (rc < 0)
		tool_die(1, "manifest: %s: not a valid %smanifest: %s", path,
		    treep != NULL ? "tree " : "", proto_strerror((int)rc));
	free(buf);
	if (fd != STDIN_FILENO)
		close(fd);
	return mf;
}

static proto_manifest *
manifest_of(const char *file, size_t chunk_size)
{
	proto_manifest *mf;
	int fd, rc;

	if (strcmp(file, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		tool_die_errno(1, "%s", file);
	rc = proto_manifest_build_fd(fd, "file", NULL, chunk_size, &mf);
	if (rc == PROTO_ERR_SYSTEM)
		tool_die_errno(1, "%s", file);
	if (rc != 0)
		tool_die(1, "%s: %s", file, proto_strerror(rc));
	close(fd);
	return mf;
}

static int
is_dir(const char *path)
{
	struct stat st;

	return strcmp(path, "-") != 0 && stat(path, &st) == 0 &&
	    S_ISDIR(st.st_mode);
}

/* What was found, for --json. */
struct outcome {
	const proto_manifest *got;   /* the file's own manifest */
	const uint8_t *want;         /* the id expected */
	const uint64_t *bad;         /* chunks that differ, with -m */
	uint64_t nbad;
	int chunks_compared;         /* with -m and the same size */
};

static int
report_json(const char *file, int ok, const struct outcome *o)
{
	char hex[PROTO_ID_HEX_LEN + 1];
	struct tool_json j;

	tool_json_start(&j);
	tool_json_str(&j, "file", file, strlen(file));
	tool_json_bool(&j, "ok", ok);
	proto_hex_encode(o->got->id, PROTO_HASH_LEN, hex);
	tool_json_str(&j, "id", hex, PROTO_ID_HEX_LEN);
	proto_hex_encode(o->want, PROTO_HASH_LEN, hex);
	tool_json_str(&j, "expected", hex, PROTO_ID_HEX_LEN);
	tool_json_uint(&j, "size", o->got->size);
	if (o->chunks_compared) {
		tool_json_open(&j, "bad_chunks", '[');
		for (uint64_t i = 0; i < o->nbad; i++)
			tool_json_uint(&j, NULL, o->bad[i]);
		tool_json_close(&j, ']');
	}
	return tool_json_finish(&j, STDOUT_FILENO);
}

static int
report(const char *file, int ok, const struct outcome *o)
{
	if (tool_opt.json) {
		if (report_json(file, ok, o) != 0 && errno != EPIPE)
			tool_die_errno(1, "write");
	} else
		printf("%s\t%s\n", ok ? "OK" : "FAILED", file);
	return ok ? 0 : 1;
}

static int
verify_manifest(const proto_manifest *want, const char *file)
{
	proto_manifest *got = manifest_of(file, want->chunk_size);
	struct outcome o = { got, want->id, NULL, 0, 0 };
	uint64_t *bad;
	int rc;

	if (got->size != want->size) {
		tool_log(LOG_ERROR, "%s: size %llu differs from manifest's %llu",
		    file, (unsigned long long)got->size,
		    (unsigned long long)want->size);
		rc = report(file, 0, &o);
		proto_manifest_free(got);
		return rc;
	}
	if (!proto_manifest_has_layer(want)) {
		/* A manifest as a peer sends a huge file's: its root alone,
		 * so the id says whether, and nothing where. */
		rc = memcmp(got->id, want->id, PROTO_HASH_LEN) == 0;
		if (!rc)
			tool_log(LOG_ERROR, "%s: content id differs (the manifest "
			    "has no chunk hashes to say where)", file);
		rc = report(file, rc, &o);
		proto_manifest_free(got);
		return rc;
	}
	if ((bad = calloc(want->nchunks, sizeof(*bad))) == NULL)
		tool_die(1, "out of memory");
	for (uint64_t i = 0; i < want->nchunks; i++) {
		if (memcmp(got->chunks + i * PROTO_HASH_LEN,
		    want->chunks + i * PROTO_HASH_LEN, PROTO_HASH_LEN) == 0)
			continue;
		bad[o.nbad++] = i;
		if (o.nbad <= MAX_LISTED)
			tool_log(LOG_ERROR, "%s: chunk %llu does not match",
			    file, (unsigned long long)i);
	}
	if (o.nbad > MAX_LISTED)
		tool_log(LOG_ERROR, "%s: ...and %llu more chunks", file,
		    (unsigned long long)(o.nbad - MAX_LISTED));
	o.bad = bad;
	o.chunks_compared = 1;
	rc = report(file, o.nbad == 0, &o);
	free(bad);
	proto_manifest_free(got);
	return rc;
}

/* One way an entry of the tree differs from what is on disk: a line on
 * stderr, and a place in --json's "bad_files". */
static void
bad_entry(struct tool_json *j, const char *dir, const proto_tree_entry *e,
    const char *why)
{
	char shown[PROTO_TREE_PATH_MAX + 1];

	proto_msg_printable(shown, sizeof(shown), e->path, e->path_len);
	tool_log(LOG_ERROR, "%s/%s: %s", dir, shown, why);
	if (j != NULL) {
		tool_json_open(j, NULL, '{');
		tool_json_str(j, "path", e->path, e->path_len);
		tool_json_str(j, "problem", why, strlen(why));
		tool_json_close(j, '}');
	}
}

/* One file of the tree against what lies at its path beneath root: 0 when
 * it matches, 1 when not (said through bad_entry). */
static int
verify_entry(int root, struct tool_json *j, const char *dir,
    const proto_tree_entry *e)
{
	char why[128];
	proto_manifest *got;
	struct stat st;
	int fd, rc, bad = 0;

	if ((fd = proto_open_beneath(root, e->path)) < 0) {
		bad_entry(j, dir, e, errno == ENOENT ? "missing" :
		    strerror(errno));
		return 1;
	}
	if (fstat(fd, &st) != 0 || (e->dir ? !S_ISDIR(st.st_mode) :
	    !S_ISREG(st.st_mode))) {
		bad_entry(j, dir, e, e->dir ? "not a directory" :
		    "not a regular file");
		close(fd);
		return 1;
	}
	if (e->dir) {
		close(fd);
		return 0;
	}
	if ((uint64_t)st.st_size != e->size) {
		snprintf(why, sizeof(why), "size %llu differs from the tree's %llu",
		    (unsigned long long)st.st_size, (unsigned long long)e->size);
		bad_entry(j, dir, e, why);
		close(fd);
		return 1;
	}
	if (((uint32_t)st.st_mode & 0777) != e->mode) {
		snprintf(why, sizeof(why), "mode %03o differs from the tree's %03o",
		    (unsigned)st.st_mode & 0777, (unsigned)e->mode);
		bad_entry(j, dir, e, why);
		bad = 1;
	}
	/* The tree holds each file's content id, not its chunk hashes: it
	 * says whether, and only the file's own manifest says where. */
	rc = proto_manifest_build_fd(fd, "file", NULL, 0, &got);
	close(fd);
	if (rc != 0) {
		bad_entry(j, dir, e, rc == PROTO_ERR_SYSTEM ? strerror(errno) :
		    proto_strerror(rc));
		return 1;
	}
	if (memcmp(got->id, e->id, PROTO_HASH_LEN) != 0) {
		bad_entry(j, dir, e, "content differs");
		bad = 1;
	}
	proto_manifest_free(got);
	return bad;
}

/* DIR against a tree manifest: every entry checked, each difference a
 * line; files in DIR the tree does not list are not looked at. */
static int
verify_tree(const proto_tree *t, const char *dir)
{
	struct tool_json j, *jp = NULL;
	uint64_t nbad = 0;
	int root;

	if ((root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		tool_die_errno(1, "%s", dir);
	if (tool_opt.json) {
		char hex[PROTO_ID_HEX_LEN + 1];
		jp = &j;
		tool_json_start(jp);
		tool_json_str(jp, "file", dir, strlen(dir));
		proto_hex_encode(t->id, PROTO_HASH_LEN, hex);
		tool_json_str(jp, "expected", hex, PROTO_ID_HEX_LEN);
		tool_json_open(jp, "bad_files", '[');
	}
	for (size_t i = 0; i < t->count; i++)
		nbad += (uint64_t)verify_entry(root, jp, dir, &t->entries[i]);
	close(root);
	if (jp != NULL) {
		tool_json_close(jp, ']');
		tool_json_bool(jp, "ok", nbad == 0);
		if (tool_json_finish(jp, STDOUT_FILENO) != 0 && errno != EPIPE)
			tool_die_errno(1, "write");
	} else
		printf("%s\t%s\n", nbad == 0 ? "OK" : "FAILED", dir);
	return nbad == 0 ? 0 : 1;
}

/* DIR's tree id against ID: whether, not where (the tree manifest, with
 * -m, names the files). */
static int
verify_tree_id(const char *hexid, const char *dir)
{
	uint8_t id[PROTO_HASH_LEN];
	proto_tree *t;
	int ok;

	tool_parse_id(hexid, id);
	ok = tool_tree_build(dir, NULL, NULL, &t) == 0 &&
	    memcmp(t->id, id, PROTO_HASH_LEN) == 0;
	if (t == NULL)
		tool_log(LOG_ERROR, "%s: files could not be read", dir);
	else if (!ok)
		tool_log(LOG_ERROR, "%s: tree id differs (the tree manifest, "
		    "with -m, names the files)", dir);
	if (tool_opt.json) {
		char hex[PROTO_ID_HEX_LEN + 1];
		struct tool_json j;
		tool_json_start(&j);
		tool_json_str(&j, "file", dir, strlen(dir));
		tool_json_bool(&j, "ok", ok);
		if (t != NULL) {
			proto_hex_encode(t->id, PROTO_HASH_LEN, hex);
			tool_json_str(&j, "id", hex, PROTO_ID_HEX_LEN);
		}
		proto_hex_encode(id, PROTO_HASH_LEN, hex);
		tool_json_str(&j, "expected", hex, PROTO_ID_HEX_LEN);
		if (tool_json_finish(&j, STDOUT_FILENO) != 0 && errno != EPIPE)
			tool_die_errno(1, "write");
	} else
		printf("%s\t%s\n", ok ? "OK" : "FAILED", dir);
	proto_tree_free(t);
	return ok ? 0 : 1;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "manifest", required_argument, NULL, 'm' },
		TOOL_LONGOPT_JSON,
		TOOL_LONGOPTS_COMMON,
	};
	const char *manifest_path = NULL;
	struct tool_config config;
	proto_manifest *mf;
	int ch, rc;

	tool_init("p2p-verify", LOG_WARN);
	tool_config_load(argc, argv, &config);
	while ((ch = getopt_long(argc, argv, "m:qvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			manifest_path = optarg;
			break;
		default:
			if (tool_common_option(ch, usage))
				break;
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != (manifest_path ? 1 : 2)) {
		usage(stderr);
		return 2;
	}
	if (manifest_path && strcmp(manifest_path, "-") == 0 &&
	    strcmp(argv[0], "-") == 0)
		tool_die(2, "the manifest and the file cannot both be stdin");
	if (manifest_path && is_dir(argv[0])) {
		proto_tree *t = NULL;
		(void)read_manifest(manifest_path, &t);
		rc = verify_tree(t, argv[0]);
		proto_tree_free(t);
		return rc;
	}
	if (manifest_path) {
		mf = read_manifest(manifest_path, NULL);
		rc = verify_manifest(mf, argv[0]);
	} else {
		if (is_dir(argv[1]))
			return verify_tree_id(argv[0], argv[1]);
		uint8_t id[PROTO_HASH_LEN];
		struct outcome o = { NULL, id, NULL, 0, 0 };
		tool_parse_id(argv[0], id);
		mf = manifest_of(argv[1], 0);
		o.got = mf;
		rc = memcmp(mf->id, id, PROTO_HASH_LEN) == 0;
		if (!rc)
			tool_log(LOG_ERROR, "%s: content id differs", argv[1]);
		rc = report(argv[1], rc, &o);
	}
	proto_manifest_free(mf);
	return rc;
}
