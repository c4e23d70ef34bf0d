/*
 * p2p-chunk: reads files and writes, for each, its manifest (the chunk
 * hashes and the content id, docs/PROTOCOL.md section 2) to stdout as a
 * msgpack stream, or with --id only the content ids, one per line. It is a
 * pure filter: p2p-serve reads what it writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

struct options {
	size_t chunk_size; /* 0: automatic */
	int ids_only;
	int with_paths;    /* --id of several files: ID<TAB>PATH lines */
	const char *shown; /* the path as walked, or "-" */
	uint64_t max_file_size; /* 0: no limit */
	int tree;
	int torrent;
	proto_tree *t;     /* with --tree */
};

static struct tool_config config;

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-chunk [-fqv] [-c SIZE] [--id] [--progress] [--config FILE]\n"
	    "                 FILE|DIR...\n"
	    "       p2p-chunk --tree [-fqv] [--id] DIR\n"
	    "       p2p-chunk --torrent [-fqv] FILE|DIR\n"
	    "  -c, --chunk-size SIZE  chunk size, a power of two from 16K to 4M\n"
	    "                         (default: automatic, or MINI_P2P_CHUNK_SIZE)\n"
	    "      --id               print only the content ids, one per line\n"
	    "                         (ID<TAB>PATH for several files or a directory)\n"
	    "      --tree             write DIR's tree manifest (one id for the\n"
	    "                         whole directory); with --id, its tree id\n"
	    "      --torrent          write a BitTorrent v2 .torrent of FILE or DIR\n"
	    "                         (BEP 52), from the same hashes\n"
	    "  -f, --force            write manifests even to a terminal\n"
	    "      --progress         show progress on stderr even when it is not\n"
	    "                         a terminal\n"
	    "      --config FILE      read settings from FILE\n"
	    "      --strict           an unknown key in that file is an error\n"
	    "  -q, --quiet            print only errors, no progress\n"
	    "  -v, --verbose          print more (repeat for more)\n"
	    "  -h, --help             print this help and exit\n"
	    "  -V, --version          print the version and exit\n"
	    "A directory yields one manifest per regular file in it, recursively;\n"
	    "'-' reads standard input. --tree skips symbolic links, with a warning.\n");
}

static void
emit(const proto_manifest *mf, const struct options *opt)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if (opt->ids_only) {
		char hex[PROTO_ID_HEX_LEN + 1];
		proto_hex_encode(mf->id, PROTO_HASH_LEN, hex);
		if (opt->with_paths)
			rc = dprintf(STDOUT_FILENO, "%s\t%s\n", hex,
			    opt->shown) < 0 ? -1 : 0;
		else {
			hex[PROTO_ID_HEX_LEN] = '\n';
			rc = tool_write_all(STDOUT_FILENO, hex, sizeof(hex));
		}
	} else {
		if ((rc = proto_manifest_pack(mf, 1, &buf, &len)) != 0)
			tool_die(1, "%s: %s", mf->name, proto_strerror(rc));
		rc = tool_write_all(STDOUT_FILENO, buf, len);
		free(buf);
	}
	if (rc != 0) {
		if (errno == EPIPE)
			exit(1); /* the reader went away: nothing to say */
		tool_die_errno(1, "write");
	}
}

struct progress {
	struct tool_progress line;
	uint64_t total, done;
};

static void
hashed(uint64_t done, void *arg)
{
	struct progress *p = arg;

	p->done = done;
	tool_progress_update(&p->line, done, p->total, -1);
}

/* Builds the manifest of fd, showing the progress line meanwhile. */
static int
build(int fd, const char *name, const char *path, size_t chunk_size,
    proto_manifest **mf)
{
	struct progress p = { .total = 0, .done = 0 };
	struct stat st;
	int rc;

	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		p.total = (uint64_t)st.st_size;
	tool_progress_start(&p.line, name);
	rc = proto_manifest_build_fd_progress(fd, name, path, chunk_size,
	    hashed, &p, mf);
	tool_progress_end(&p.line, p.done, p.total, -1);
	return rc;
}

static int
chunk_fd(int fd, const char *name, const char *path,
    const struct options *opt)
{
	proto_manifest *mf;
	int rc;

	if ((rc = build(fd, name, path, opt->chunk_size, &mf)) != 0) {
		if (rc == PROTO_ERR_SYSTEM)
			tool_log(LOG_ERROR, "%s: %s", path ? path : name,
			    strerror(errno));
		else if (rc == PROTO_ERR_TOO_BIG)
			tool_log(LOG_ERROR, "%s: too large for chunk size %zu: "
			    "at most %u chunks (use a larger -c)",
			    path ? path : name, opt->chunk_size,
			    PROTO_MAX_CHUNKS);
		else
			tool_log(LOG_ERROR, "%s: %s", path ? path : name,
			    proto_strerror(rc));
		return 1;
	}
	tool_log(LOG_INFO, "%s: %llu bytes, %llu chunks of %u", name,
	    (unsigned long long)mf->size, (unsigned long long)mf->nchunks,
	    mf->chunk_size);
	emit(mf, opt);
	proto_manifest_free(mf);
	return 0;
}

static int
chunk_file(const char *path, const char *name, void *arg)
{
	char real[PATH_MAX];
	int fd, rc;

	((struct options *)arg)->shown = path;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		return 1;
	}
	if (((struct options *)arg)->max_file_size > 0) {
		struct stat st;
		if (fstat(fd, &st) == 0 && (uint64_t)st.st_size >
		    ((struct options *)arg)->max_file_size) {
			tool_log(LOG_ERROR, "%s: %lld bytes, over "
			    "storage.max_file_size (%llu) in %s", path,
			    (long long)st.st_size, (unsigned long long)
			    ((struct options *)arg)->max_file_size, config.path);
			close(fd);
			return 1;
		}
	}
	/* p2p-serve opens the file by this path, from any directory. */
	if (realpath(path, real) == NULL) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		close(fd);
		return 1;
	}
	rc = chunk_fd(fd, name, real, arg);
	close(fd);
	return rc;
}

/* A file of the tree, hashed with the progress line. */
static int
tree_hash(int fd, const char *name, proto_manifest **mf, void *arg)
{
	const struct options *opt = arg;

	return build(fd, name, NULL, opt->chunk_size, mf);
}

/* --tree DIR: one tree manifest, or its id. */
static int
chunk_tree(const char *dir, struct options *opt)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int errors, rc;

	errors = tool_tree_build(dir, tree_hash, opt, &opt->t);
	if (errors)
		tool_die(1, "%s: %d file%s could not be read; no tree written",
		    dir, errors, errors == 1 ? "" : "s");
	tool_log(LOG_INFO, "%s: %zu files, %llu bytes, %zu entries", dir,
	    opt->t->nfiles, (unsigned long long)opt->t->total_size,
	    opt->t->count);
	if (opt->ids_only) {
		char hex[PROTO_ID_HEX_LEN + 2];
		proto_hex_encode(opt->t->id, PROTO_HASH_LEN, hex);
		hex[PROTO_ID_HEX_LEN] = '\n';
		rc = tool_write_all(STDOUT_FILENO, hex, PROTO_ID_HEX_LEN + 1);
	} else {
		if (proto_tree_pack(opt->t, 1, &buf, &len) != 0)
			tool_die(1, "out of memory");
		rc = tool_write_all(STDOUT_FILENO, buf, len);
		free(buf);
	}
	proto_tree_free(opt->t);
	if (rc != 0) {
		if (errno == EPIPE)
			exit(1);
		tool_die_errno(1, "write");
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "id", no_argument, NULL, 'i' },
		{ "force", no_argument, NULL, 'f' },
		{ "tree", no_argument, NULL, 't' },
		{ "torrent", no_argument, NULL, 'T' },
		TOOL_LONGOPT_PROGRESS,
		TOOL_LONGOPTS_COMMON,
	};
	struct options opt = { 0, 0, 0, NULL, 0, 0, 0, NULL };
	struct stat st;
	int ch, force = 0, errors = 0;

	tool_init("p2p-chunk", LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	tool_config_load(argc, argv, &config);
	if (config.has_chunk_size)
		opt.chunk_size = config.chunk_size;
	if (config.has_max_file_size)
		opt.max_file_size = config.max_file_size;
	while ((ch = getopt_long(argc, argv, "c:fqvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			opt.chunk_size = tool_parse_chunk_size(optarg,
			    "chunk size");
			break;
		case 'i':
			opt.ids_only = 1;
			break;
		case 'f':
			force = 1;
			break;
		case 't':
			opt.tree = 1;
			break;
		case 'T':
			opt.torrent = 1;
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
	if (argc == 0) {
		usage(stderr);
		return 2;
	}
	if (opt.tree && argc != 1) {
		fprintf(stderr, "%s: --tree takes one DIR\n", tool_name);
		usage(stderr);
		return 2;
	}
	if (opt.torrent && (argc != 1 || opt.tree || opt.ids_only)) {
		fprintf(stderr, "%s: --torrent takes one FILE or DIR, and "
		    "neither --tree nor --id\n", tool_name);
		usage(stderr);
		return 2;
	}
	if (!opt.ids_only && !force && isatty(STDOUT_FILENO))
		tool_die(2, "refusing to write binary output to a terminal; "
		    "redirect stdout, use --id, or -f");
	if (opt.tree)
		return chunk_tree(argv[0], &opt);
	if (opt.torrent)
		return tool_torrent(argv[0], tree_hash, &opt, STDOUT_FILENO);
	/* One file: its id alone, for $(p2p-chunk --id f); several, or a
	 * directory: which id is whose, as sha256sum says it. */
	opt.with_paths = argc > 1 || (argc == 1 && stat(argv[0], &st) == 0 &&
	    S_ISDIR(st.st_mode));
	for (int i = 0; i < argc; i++) {
		opt.shown = argv[i];
		if (strcmp(argv[i], "-") == 0)
			errors += chunk_fd(STDIN_FILENO, "stdin", NULL, &opt);
		else
			errors += tool_walk(argv[i], chunk_file, &opt);
	}
	return errors ? 1 : 0;
}
