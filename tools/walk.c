/*
 * The directory walk behind p2p-chunk and p2p-serve -d: every regular file
 * under the names given, in name order, so a shared tree is listed the same
 * way every time and never leads outside itself.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tool.h"

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

struct walk_ops {
	tool_file_fn fn;
	tool_file_fn dirfn;     /* each directory below the top, or NULL */
	tool_skip_fn skip;
	void *ctx;
	int link_level;         /* a link met inside is said at this level;
	                         * -1: nothing said */
};

/* Names given by the user are followed when they are links; links met
 * inside a directory are not, so a shared tree cannot reach outside. */
static int
walk(const char *path, int top, const struct walk_ops *ops)
{
	tool_file_fn fn = ops->fn;
	tool_skip_fn skip = ops->skip;
	void *ctx = ops->ctx;
	struct dirent **entries;
	struct stat st;
	int n, errors = 0;

	if ((top ? stat(path, &st) : lstat(path, &st)) != 0) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		return 1;
	}
	if (!top && skip != NULL) {
		const char *slash = strrchr(path, '/');
		if (skip(path, slash ? slash + 1 : path, &st, ctx))
			return 0;
	}
	if (S_ISREG(st.st_mode)) {
		const char *slash = strrchr(path, '/');
		return fn(path, slash ? slash + 1 : path, ctx) != 0;
	}
	if (S_ISLNK(st.st_mode) && ops->link_level >= 0)
		tool_log(ops->link_level, "%s: a symbolic link; skipped", path);
	if (!S_ISDIR(st.st_mode))
		return 0; /* links, devices, sockets: not files to share */
	if (!top && ops->dirfn != NULL) {
		const char *slash = strrchr(path, '/');
		if (ops->dirfn(path, slash ? slash + 1 : path, ctx) != 0)
			return 1;
	}
	if ((n = scandir(path, &entries, NULL, by_name)) < 0) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		const char *d = entries[i]->d_name;
		char *child;
		if (strcmp(d, ".") != 0 && strcmp(d, "..") != 0 &&
		    asprintf(&child, "%s/%s", path, d) >= 0) {
			errors += walk(child, 0, ops);
			free(child);
		}
		free(entries[i]);
	}
	free(entries);
	return errors;
}

int
tool_walk(const char *path, tool_file_fn fn, void *ctx)
{
	struct walk_ops ops = { fn, NULL, NULL, ctx, -1 };

	return walk(path, 1, &ops);
}

int
tool_walk_skip(const char *path, tool_file_fn fn, tool_skip_fn skip,
    void *ctx)
{
	struct walk_ops ops = { fn, NULL, skip, ctx, -1 };

	return walk(path, 1, &ops);
}

int
tool_walk_tree(const char *path, tool_file_fn fn, tool_file_fn dirfn,
    tool_skip_fn skip, int link_level, void *ctx)
{
	struct walk_ops ops = { fn, dirfn, skip, ctx, link_level };

	return walk(path, 1, &ops);
}
