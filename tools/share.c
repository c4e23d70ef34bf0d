/*
 * What p2p-serve shares and what it never does: manifests checked against
 * their files, -d trees walked beneath their directory, and this node's
 * own secrets (key, swarm secret, configuration) left out whatever -d or
 * a manifest says, matched by device and inode.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "share.h"
#include "tls.h"

static void
keep_private(struct tool_share *sh, const char *path, const char *what)
{
	struct stat st;

	if (path == NULL || sh->npriv == TOOL_SHARE_PRIVATE_MAX ||
	    stat(path, &st) != 0)
		return;
	sh->priv[sh->npriv].dev = (uint64_t)st.st_dev;
	sh->priv[sh->npriv].ino = (uint64_t)st.st_ino;
	sh->priv[sh->npriv].dir = S_ISDIR(st.st_mode);
	sh->priv[sh->npriv++].what = what;
}

/* What st is of this node's secrets, or NULL. */
static const char *
private_what(const struct tool_share *sh, const struct stat *st)
{
	for (int i = 0; i < sh->npriv; i++)
		if (sh->priv[i].dev == (uint64_t)st->st_dev &&
		    sh->priv[i].ino == (uint64_t)st->st_ino)
			return sh->priv[i].what;
	return NULL;
}

/* 1 when the directory fd (closed here) is the one of dev and ino or lies
 * beneath it, by its ".." entries up to the root. */
static int
dir_within(int fd, uint64_t dev, uint64_t ino)
{
	struct stat st, up;

	while (fd >= 0 && fstat(fd, &st) == 0) {
		int parent;
		if ((uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino) {
			close(fd);
			return 1;
		}
		parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = parent;
		if (fd >= 0 && fstat(fd, &up) == 0 && up.st_dev == st.st_dev &&
		    up.st_ino == st.st_ino)
			break; /* the root is its own parent */
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/* What of this node's secrets the directory fd (closed here) lies in, or
 * NULL. */
static const char *
private_dir_of(const struct tool_share *sh, int fd)
{
	for (int i = 0; i < sh->npriv; i++)
		if (sh->priv[i].dir && dir_within(fd < 0 ? -1 : dup(fd),
		    sh->priv[i].dev, sh->priv[i].ino)) {
			close(fd);
			return sh->priv[i].what;
		}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* The walk leaves out hidden names (unless --hidden) and this node's
 * secrets, whatever -d says. */
static int
skip_entry(const char *path, const char *name, const struct stat *st,
    void *arg)
{
	struct tool_share *sh = arg;
	const char *what = private_what(sh, st);

	if (what != NULL) {
		tool_log(LOG_INFO, "%s: %s; never served", path, what);
		return 1;
	}
	if (name[0] == '.' && !sh->hidden) {
		tool_log(LOG_DEBUG, "%s: hidden; not served (--hidden shares "
		    "it)", path);
		return 1;
	}
	return 0;
}

void
tool_share_manifest(struct tool_share *sh, proto_manifest *mf)
{
	char hex[PROTO_ID_HEX_LEN + 1], name[PROTO_NAME_MAX + 1];
	const char *what;
	struct stat st;
	int rc;

	proto_hex_encode(mf->id, PROTO_HASH_LEN, hex);
	proto_msg_printable(name, sizeof(name), mf->name, strlen(mf->name));
	if (mf->path == NULL) {
		tool_log(LOG_ERROR, "%s: manifest has no local path; not served",
		    name);
		proto_manifest_free(mf);
		return;
	}
	if (!proto_manifest_has_layer(mf)) {
		tool_log(LOG_ERROR, "%s: manifest has no chunk hashes (a peer's, "
		    "not p2p-chunk's); not served", name);
		proto_manifest_free(mf);
		return;
	}
	if (stat(mf->path, &st) != 0) {
		tool_log(LOG_ERROR, "%s: %s", mf->path, strerror(errno));
		proto_manifest_free(mf);
		return;
	}
	if ((uint64_t)st.st_size != mf->size) {
		tool_log(LOG_ERROR, "%s: size changed since it was chunked; "
		    "not served", mf->path);
		proto_manifest_free(mf);
		return;
	}
	if ((what = private_what(sh, &st)) == NULL) {
		char *dir = strdup(mf->path), *slash;
		if (dir == NULL)
			tool_die(1, "out of memory");
		if ((slash = strrchr(dir, '/')) != NULL)
			slash[slash == dir] = '\0';
		what = private_dir_of(sh, open(slash ? dir : ".",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		free(dir);
	}
	if (what != NULL) {
		tool_log(LOG_ERROR, "%s: %s; never served", mf->path, what);
		proto_manifest_free(mf);
		return;
	}
	if ((rc = proto_store_add(sh->store, mf)) < 0)
		tool_die(1, "%s", proto_strerror(rc));
	if (rc == 0)
		tool_log(LOG_INFO, "serving %s %s", hex, name);
}

/* A rescan walks the files in the order the walk before met them, so
 * the search starts after the last one found and wraps around: a walk of
 * n files costs n, not n * n (seconds of a server's time, every rescan,
 * for a tree of 10000). */
static struct tool_shared_file *
find_file(struct tool_share *sh, int root, const char *rel)
{
	for (size_t k = 0; k < sh->nfiles; k++) {
		size_t i = (sh->find_next + k) % sh->nfiles;
		if (sh->files[i].root == root &&
		    strcmp(sh->files[i].rel, rel) == 0) {
			sh->find_next = i + 1;
			return &sh->files[i];
		}
	}
	return NULL;
}

static int
same_file(const struct tool_shared_file *f, const struct stat *sb)
{
	return f->dev == (uint64_t)sb->st_dev && f->ino == (uint64_t)sb->st_ino &&
	    f->size == (uint64_t)sb->st_size &&
	    f->mtime_s == (int64_t)sb->st_mtim.tv_sec &&
	    f->mtime_ns == (int64_t)sb->st_mtim.tv_nsec;
}

/* The id withdrawn from the store. The store holds the same bytes once,
 * from one path, perhaps the one that went: another file shared with
 * them is marked to be chunked and added again, by a walk straight after
 * (tool_share_rescan), which serves the id anew. */
static void
withdraw(struct tool_share *sh, const uint8_t id[PROTO_HASH_LEN])
{
	for (size_t i = 0; i < sh->nfiles; i++)
		if (memcmp(sh->files[i].id, id, PROTO_HASH_LEN) == 0) {
			sh->files[i].mtime_s = INT64_MIN;
			sh->again = 1;
		}
	(void)proto_store_remove(sh->store, id);
}

/* Notes what was shared at rel, as sb is now; a change withdraws the
 * bytes it had before. */
static void
remember(struct tool_share *sh, const char *path, const char *rel,
    const struct stat *sb, const uint8_t id[PROTO_HASH_LEN])
{
	struct tool_shared_file *f = find_file(sh, sh->walk_root, rel);
	uint8_t old[PROTO_HASH_LEN];
	int had = f != NULL;

	if (f == NULL) {
		if (sh->nfiles == sh->capfiles) {
			size_t cap = sh->capfiles ? sh->capfiles * 2 : 64;
			void *grown = realloc(sh->files, cap * sizeof(*f));
			if (grown == NULL)
				tool_die(1, "out of memory");
			sh->files = grown;
			sh->capfiles = cap;
		}
		f = &sh->files[sh->nfiles++];
		memset(f, 0, sizeof(*f));
		f->root = sh->walk_root;
		if ((f->rel = strdup(rel)) == NULL)
			tool_die(1, "out of memory");
	}
	memcpy(old, f->id, PROTO_HASH_LEN);
	f->dev = (uint64_t)sb->st_dev;
	f->ino = (uint64_t)sb->st_ino;
	f->size = (uint64_t)sb->st_size;
	f->mtime_s = (int64_t)sb->st_mtim.tv_sec;
	f->mtime_ns = (int64_t)sb->st_mtim.tv_nsec;
	memcpy(f->id, id, PROTO_HASH_LEN);
	f->seen = 1;
	if (had && memcmp(old, id, PROTO_HASH_LEN) != 0) {
		char hex[PROTO_ID_HEX_LEN + 1];
		proto_hex_encode(old, PROTO_HASH_LEN, hex);
		tool_log(LOG_INFO, "%s: changed; %s withdrawn", path, hex);
		withdraw(sh, old);
	}
}

/* After a rescan's walk: what it did not meet is gone. */
static void
forget_unseen(struct tool_share *sh, const char *dir)
{
	for (size_t i = 0; i < sh->nfiles;) {
		struct tool_shared_file *f = &sh->files[i];
		uint8_t id[PROTO_HASH_LEN];
		char hex[PROTO_ID_HEX_LEN + 1];
		if (f->root != sh->walk_root || f->seen) {
			i++;
			continue;
		}
		memcpy(id, f->id, PROTO_HASH_LEN);
		proto_hex_encode(id, PROTO_HASH_LEN, hex);
		tool_log(LOG_INFO, "%s/%s: gone; %s withdrawn", dir, f->rel, hex);
		free(f->rel);
		*f = sh->files[--sh->nfiles];
		withdraw(sh, id);
	}
}

/* A file met walking a -d directory: hashed and later served through the
 * directory's descriptor, never through a link nor from outside it, even
 * if the tree changes under us (a directory swapped for a link). */
static int
share_file(const char *path, const char *name, void *arg)
{
	struct tool_share *sh = arg;
	const char *rel = path + strlen(sh->walk_dir);
	char hex[PROTO_ID_HEX_LEN + 1], shown[PROTO_NAME_MAX + 1];
	proto_manifest *mf;
	struct stat sb;
	int fd, rc;

	while (*rel == '/')
		rel++;
	if ((fd = proto_open_beneath(sh->walk_root, rel)) < 0) {
		tool_log(LOG_ERROR, "%s: %s", path, errno == EXDEV ||
		    errno == ELOOP ? "leads outside the shared directory; not "
		    "served" : strerror(errno));
		return 0;
	}
	/* The walk saw a regular file, but it may since have been swapped. */
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		tool_log(LOG_ERROR, "%s: not a regular file; not served", path);
		close(fd);
		return 0;
	}
	if (private_what(sh, &sb) != NULL) {
		tool_log(LOG_INFO, "%s: %s; never served", path,
		    private_what(sh, &sb));
		close(fd);
		return 0;
	}
	/* Unchanged since the last walk: served already, not hashed again. */
	{
		struct tool_shared_file *f = find_file(sh, sh->walk_root, rel);
		if (f != NULL && same_file(f, &sb)) {
			close(fd);
			f->seen = 1;
			if (sh->tree != NULL && proto_tree_add_file(sh->tree, rel,
			    strlen(rel), f->size, (uint32_t)sb.st_mode & 0777,
			    f->id) != 0)
				tool_log(LOG_ERROR, "%s: not in the tree of %s",
				    path, sh->walk_dir);
			return 0;
		}
	}
	rc = proto_manifest_build_fd(fd, name, path, 0, &mf);
	close(fd);
	if (rc != 0) {
		tool_log(LOG_ERROR, "%s: %s", path, rc == PROTO_ERR_SYSTEM ?
		    strerror(errno) : proto_strerror(rc));
		return 0;
	}
	if (sh->tree != NULL && (rc = proto_tree_add_file(sh->tree, rel,
	    strlen(rel), mf->size, (uint32_t)sb.st_mode & 0777, mf->id)) != 0)
		tool_log(LOG_ERROR, "%s: %s; not in the tree of %s", path,
		    rc == PROTO_ERR_TOO_BIG ? "more entries than a tree holds" :
		    proto_strerror(rc), sh->walk_dir);
	proto_hex_encode(mf->id, PROTO_HASH_LEN, hex);
	proto_msg_printable(shown, sizeof(shown), mf->name, strlen(mf->name));
	{
		uint8_t id[PROTO_HASH_LEN];
		memcpy(id, mf->id, PROTO_HASH_LEN);
		if ((rc = proto_store_add_beneath(sh->store, mf, sh->walk_root,
		    rel, (uint64_t)sb.st_dev, (uint64_t)sb.st_ino)) < 0)
			tool_die(1, "%s", proto_strerror(rc));
		if (rc == 0)
			tool_log(LOG_INFO, "serving %s %s", hex, shown);
		remember(sh, path, rel, &sb, id);
	}
	return 0;
}

/* A directory met walking a -d directory: in the tree when nothing
 * served lies beneath it. */
static int
share_subdir(const char *path, const char *name, void *arg)
{
	struct tool_share *sh = arg;
	const char *rel = path + strlen(sh->walk_dir);

	(void)name;
	while (*rel == '/')
		rel++;
	if (sh->tree != NULL && proto_tree_add_dir(sh->tree, rel,
	    strlen(rel)) != 0)
		tool_log(LOG_ERROR, "%s: not in the tree of %s", path,
		    sh->walk_dir);
	return 0;
}

/* The tree of what a -d walk served: shared by its id too. */
static void
share_tree(struct tool_share *sh, const char *dir)
{
	char hex[PROTO_ID_HEX_LEN + 1], real[4096];
	const char *base = NULL;
	proto_tree *t = sh->tree;
	int rc;

	sh->tree = NULL;
	if (realpath(dir, real) != NULL && (base = strrchr(real, '/')) != NULL)
		base = base[1] ? base + 1 : NULL;
	if (base != NULL && proto_tree_set_name(t, base) == PROTO_ERR_NOMEM)
		tool_die(1, "out of memory");
	if ((rc = proto_tree_finish(t)) != 0) {
		tool_log(LOG_ERROR, "%s: %s; its files are served, not its tree",
		    dir, rc == PROTO_ERR_TOO_BIG ? "too large for one tree" :
		    proto_strerror(rc));
		proto_tree_free(t);
		return;
	}
	proto_hex_encode(t->id, PROTO_HASH_LEN, hex);
	memcpy(sh->tree_id, t->id, PROTO_HASH_LEN);
	sh->has_tree = 1;
	if (proto_store_find_tree(sh->store, t->id) == NULL)
		tool_log(LOG_INFO, "serving tree %s %s (%zu files, %llu bytes)",
		    hex, dir, t->nfiles, (unsigned long long)t->total_size);
	if ((rc = proto_store_add_tree(sh->store, t)) < 0)
		tool_die(1, "%s", proto_strerror(rc));
}

/* This node's key, its swarm's secret and its configuration: whatever -d
 * or a manifest says, never served (matched by device and inode, so a
 * hard link or another spelling is caught too). */
void
tool_share_find_private(struct tool_share *sh, const struct tool_config *config)
{
	const char *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");
	char dir[4200];

	keep_private(sh, tool_tls_identity_path(), "this node's key");
	keep_private(sh, tool_tls_secret_path(), "the swarm's secret");
	if (config->path[0] != '\0')
		keep_private(sh, config->path, "the configuration");
	if (home != NULL && *home != '\0') {
		snprintf(dir, sizeof(dir), "%.4000s/.config/p2p", home);
		keep_private(sh, dir, "the configuration directory");
	}
	if (xdg != NULL && *xdg != '\0') {
		snprintf(dir, sizeof(dir), "%.4000s/p2p", xdg);
		keep_private(sh, dir, "the configuration directory");
	}
}

/* Sharing the home directory (or above it) is rarely meant. */
static void
warn_home(const struct tool_share *sh, const char *dir, int root)
{
	const char *home = getenv("HOME");
	struct stat st;

	if (home == NULL || *home == '\0' || fstat(root, &st) != 0)
		return;
	if (dir_within(open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
	    (uint64_t)st.st_dev, (uint64_t)st.st_ino))
		tool_log(LOG_WARN, "%s: shares the home directory %s: anyone "
		    "can fetch what is in it (%sthis node's key and "
		    "configuration excepted)", dir, home, sh->hidden ? "" :
		    "hidden files, ");
}

/* One walk of dir: what is new or changed shared, and on a rescan what
 * went withdrawn; its tree made anew. */
static void
walk_dir(struct tool_share *sh, const char *dir, int root)
{
	for (size_t i = 0; i < sh->nfiles; i++)
		if (sh->files[i].root == root)
			sh->files[i].seen = 0;
	sh->walk_dir = dir;
	sh->walk_root = root;
	if ((sh->tree = proto_tree_new()) == NULL)
		tool_die(1, "out of memory");
	tool_walk_tree(dir, share_file, share_subdir, skip_entry,
	    sh->rescanning ? LOG_DEBUG : LOG_INFO, sh);
	if (sh->rescanning)
		forget_unseen(sh, dir);
	share_tree(sh, dir);
}

void
tool_share_dir(struct tool_share *sh, const char *dir, int root)
{
	const char *what = private_dir_of(sh, dup(root));

	sh->has_tree = 0;
	if (what != NULL) {
		tool_log(LOG_ERROR, "%s: holds %s; not shared", dir, what);
		return;
	}
	warn_home(sh, dir, root);
	walk_dir(sh, dir, root);
	{
		struct tool_shared_dir *d;
		void *grown = realloc(sh->dirs, (sh->ndirs + 1) * sizeof(*d));
		if (grown == NULL)
			tool_die(1, "out of memory");
		sh->dirs = grown;
		d = &sh->dirs[sh->ndirs++];
		d->dir = dir;
		d->root = root;
		d->has_tree = sh->has_tree;
		memcpy(d->tree_id, sh->tree_id, PROTO_HASH_LEN);
	}
}

static void rescan_dirs(struct tool_share *sh);

void
tool_share_rescan(struct tool_share *sh)
{
	sh->rescanning = 1;
	sh->again = 0;
	rescan_dirs(sh);
	if (sh->again)
		rescan_dirs(sh);
	sh->rescanning = 0;
}

static void
rescan_dirs(struct tool_share *sh)
{
	for (size_t i = 0; i < sh->ndirs; i++) {
		struct tool_shared_dir *d = &sh->dirs[i];
		walk_dir(sh, d->dir, d->root);
		if (d->has_tree && (!sh->has_tree ||
		    memcmp(d->tree_id, sh->tree_id, PROTO_HASH_LEN) != 0))
			(void)proto_store_remove(sh->store, d->tree_id);
		d->has_tree = sh->has_tree;
		memcpy(d->tree_id, sh->tree_id, PROTO_HASH_LEN);
	}
}

void
tool_share_end(struct tool_share *sh)
{
	for (size_t i = 0; i < sh->nfiles; i++)
		free(sh->files[i].rel);
	free(sh->files);
	free(sh->dirs);
	sh->files = NULL;
	sh->dirs = NULL;
	sh->nfiles = sh->capfiles = sh->ndirs = 0;
}

/* A file: hashed and served by its content id, under its own name. */
static int
share_one_file(struct tool_share *sh, const char *path, uint8_t *id)
{
	char real[4096];
	const char *name;
	proto_manifest *mf;
	int fd, rc;

	if (realpath(path, real) == NULL || (name = strrchr(real, '/')) == NULL) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = proto_manifest_build_fd(fd, name + 1, path, 0, &mf);
	close(fd);
	if (rc != 0) {
		tool_log(LOG_ERROR, "%s: %s", path, rc == PROTO_ERR_SYSTEM ?
		    strerror(errno) : proto_strerror(rc));
		return -1;
	}
	memcpy(id, mf->id, PROTO_HASH_LEN);
	tool_share_manifest(sh, mf);
	return proto_store_find(sh->store, id) != NULL ? 0 : -1;
}

int
tool_share_path(struct tool_share *sh, const char *path,
    struct tool_shared *out, int *root)
{
	struct stat st;

	*root = -1;
	memset(out, 0, sizeof(*out));
	out->path = path;
	if (stat(path, &st) != 0) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return share_one_file(sh, path, out->id);
	if ((*root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		return -1;
	}
	tool_share_dir(sh, path, *root);
	if (!sh->has_tree)
		return -1;
	memcpy(out->id, sh->tree_id, PROTO_HASH_LEN);
	out->tree = 1;
	return 0;
}

void
tool_share_log_upload(const proto_upload *u)
{
	char name[PROTO_NAME_MAX + 1], peer[PROTO_NODE_NAME_MAX + 1];
	char id[PROTO_ID_HEX_LEN + 1], ident[PROTO_ID_HEX_LEN + 1] = "";

	proto_msg_printable(name, sizeof(name), u->name, strlen(u->name));
	proto_msg_printable(peer, sizeof(peer), u->peer_name,
	    strlen(u->peer_name));
	proto_hex_encode(u->id, PROTO_HASH_LEN, id);
	id[8] = '\0';
	if (u->peer_id != NULL) {
		proto_hex_encode(u->peer_id, PROTO_HASH_LEN, ident);
		ident[8] = '\0';
	}
	tool_log(LOG_INFO, "uploaded %s (%s) to %s (%s%s%s): %llu bytes, "
	    "%llu of %llu chunks%s", name, id, u->peer, *peer ? peer : "no name",
	    *ident ? ", " : "", ident, (unsigned long long)u->bytes,
	    (unsigned long long)u->distinct, (unsigned long long)u->nchunks,
	    u->complete ? ", the whole file" : "");
}
