/*
 * A directory on disk as a tree (docs/PROTOCOL.md section 10), for
 * p2p-chunk --tree and p2p-verify ID DIR: every regular file beneath it,
 * opened beneath the top and through no link, hashed and entered with its
 * permission bits; every directory, kept by proto_tree_finish when empty.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

struct tree_walk {
	const char *dir;        /* as given: the walk's paths start with it */
	int root;
	proto_tree *t;
	tool_hash_fn hash;
	void *ctx;
};

/* The path of what the walk met, relative to the tree's top. */
static const char *
relative(const struct tree_walk *w, const char *path)
{
	const char *rel = path + strlen(w->dir);

	while (*rel == '/')
		rel++;
	return rel;
}

static int
tree_file(const char *path, const char *name, void *arg)
{
	struct tree_walk *w = arg;
	const char *rel = relative(w, path);
	proto_manifest *mf;
	struct stat st;
	int fd, rc;

	if ((fd = proto_open_beneath(w->root, rel)) < 0 ||
	    fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		tool_log(LOG_ERROR, "%s: %s", path, fd < 0 ? strerror(errno) :
		    "not a regular file");
		if (fd >= 0)
			close(fd);
		return 1;
	}
	rc = w->hash != NULL ? w->hash(fd, name, &mf, w->ctx) :
	    proto_manifest_build_fd(fd, name, NULL, 0, &mf);
	close(fd);
	if (rc != 0) {
		tool_log(LOG_ERROR, "%s: %s", path, rc == PROTO_ERR_SYSTEM ?
		    strerror(errno) : proto_strerror(rc));
		return 1;
	}
	rc = proto_tree_add_file(w->t, rel, strlen(rel), mf->size,
	    (uint32_t)st.st_mode & 0777, mf->id);
	proto_manifest_free(mf);
	if (rc != 0)
		tool_log(LOG_ERROR, "%s: %s", path, rc == PROTO_ERR_TOO_BIG ?
		    "more entries than a tree holds" : proto_strerror(rc));
	return rc != 0;
}

static int
tree_dir(const char *path, const char *name, void *arg)
{
	struct tree_walk *w = arg;
	const char *rel = relative(w, path);
	int rc;

	(void)name;
	if ((rc = proto_tree_add_dir(w->t, rel, strlen(rel))) != 0)
		tool_log(LOG_ERROR, "%s: %s", path, rc == PROTO_ERR_TOO_BIG ?
		    "more entries than a tree holds" : proto_strerror(rc));
	return rc != 0;
}

int
tool_tree_build(const char *dir, tool_hash_fn hash, void *ctx,
    proto_tree **out)
{
	struct tree_walk w = { dir, -1, NULL, hash, ctx };
	char real[PATH_MAX];
	const char *base;
	int errors, rc;

	*out = NULL;
	if (realpath(dir, real) == NULL ||
	    (w.root = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		tool_die_errno(1, "%s", dir);
	if ((w.t = proto_tree_new()) == NULL)
		tool_die(1, "out of memory");
	errors = tool_walk_tree(dir, tree_file, tree_dir, NULL, LOG_WARN, &w);
	close(w.root);
	if (errors) {
		proto_tree_free(w.t);
		return errors;
	}
	base = strrchr(real, '/');
	base = base && base[1] ? base + 1 : "root";
	if ((w.t->path = strdup(real)) == NULL ||
	    proto_tree_set_name(w.t, base) == PROTO_ERR_NOMEM)
		tool_die(1, "out of memory");
	if ((rc = proto_tree_finish(w.t)) != 0)
		tool_die(1, "%s: %s", dir, rc == PROTO_ERR_TOO_BIG ? "too large "
		    "for one tree (see the limits in PROTOCOL.md)" :
		    proto_strerror(rc));
	*out = w.t;
	return 0;
}
