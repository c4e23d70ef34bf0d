/*
 * p2p-fetch of a tree (docs/PROTOCOL.md section 10): once the id turned
 * out to be a tree's, its files are fetched one libproto fetch each, by
 * their content ids, from the same peers. With -o DIR they go to their
 * paths under DIR, at most TREE_JOBS at a time, each through PATH.part, a
 * file already whole kept and one fetched at several paths fetched once;
 * without -o the tree is written to stdout as a tar stream (fetchtar.c),
 * a file at a time, in the tree's order. Every path was checked when the
 * tree was decoded; here each directory on the way is made or opened
 * through no link, so nothing is written outside DIR.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p2p-fetch.h"

#define TREE_JOBS 4             /* files fetched at once, to a directory */

struct job {
	struct fetch *f;
	const proto_tree_entry *e;
	proto_fetch *fx;
	proto_output *out;
	proto_manifest *mf;         /* fx's, once adopted */
	char *path, *part;          /* with -o: DIR/PATH and DIR/PATH.part */
	struct event *reap;         /* frees the job outside fx's callbacks */
	int ended;
};

struct fetch_tree {
	int root;                   /* -o DIR, opened; -1 for a stream */
	size_t next;                /* the next entry to start */
	struct job *jobs[TREE_JOBS];
	unsigned running;
	uint64_t fetched, kept, copied;
	/* Of each file entry: the first entry with its bytes (itself when
	 * none before), and the next entry after it with the same bytes
	 * (NO_COPY when none). Found once, by sorting: a tree of n files
	 * looked up pairwise costs n * n per file, minutes at 10000. */
	size_t *first, *next_copy;
};

#define NO_COPY SIZE_MAX

static void start_jobs(struct fetch *f);

/* Says "WHAT: WHY" and ends the run. */
void
fetch_tree_failed(struct fetch *f, const char *what, const char *why)
{
	char shown[PROTO_TREE_PATH_MAX + 1];

	proto_msg_printable(shown, sizeof(shown), what, strlen(what));
	tool_log(LOG_ERROR, "%s: %s", shown, why);
	fetch_finish(f, 1);
}

/* The first entry before i with e's bytes, or NULL. */
static const proto_tree_entry *
first_with(const struct fetch *f, size_t i)
{
	size_t k = f->ft->first[i];

	return k == i ? NULL : &f->tree->entries[k];
}

static int
by_bytes(const void *a, const void *b, void *arg)
{
	const proto_tree *t = arg;
	size_t i = *(const size_t *)a, k = *(const size_t *)b;
	int c = memcmp(t->entries[i].id, t->entries[k].id, PROTO_HASH_LEN);

	return c != 0 ? c : (i > k) - (i < k);
}

/* ft->first and ft->next_copy for f's tree: its files sorted by their
 * bytes, then by place, each run of equal ids chained in order. */
static void
find_copies(struct fetch *f)
{
	const proto_tree *t = f->tree;
	struct fetch_tree *ft = f->ft;
	size_t n = 0, *order;

	if ((ft->first = calloc(t->count + 1, sizeof(size_t))) == NULL ||
	    (ft->next_copy = calloc(t->count + 1, sizeof(size_t))) == NULL ||
	    (order = calloc(t->count + 1, sizeof(size_t))) == NULL)
		tool_die(1, "out of memory");
	for (size_t i = 0; i < t->count; i++) {
		ft->first[i] = i;
		ft->next_copy[i] = NO_COPY;
		if (!t->entries[i].dir)
			order[n++] = i;
	}
	qsort_r(order, n, sizeof(size_t), by_bytes, (void *)t);
	for (size_t j = 1; j < n; j++)
		if (memcmp(t->entries[order[j]].id, t->entries[order[j - 1]].id,
		    PROTO_HASH_LEN) == 0) {
			ft->first[order[j]] = ft->first[order[j - 1]];
			ft->next_copy[order[j - 1]] = order[j];
		}
	free(order);
}

/* The copies of e's bytes listed after it, now that e is whole; then e's
 * own mode (after, in case it takes the owner's read away). */
static int
file_done(struct fetch *f, size_t i)
{
	struct fetch_tree *ft = f->ft;
	const proto_tree *t = f->tree;
	const proto_tree_entry *e = &t->entries[i];
	const char *leaf, *dleaf;
	int dir = tree_open_parent(ft->root, e, &leaf), rc = 0;

	if (dir < 0) {
		fetch_tree_failed(f, e->path, tree_path_error());
		return -1;
	}
	for (size_t k = ft->next_copy[i]; k != NO_COPY && rc == 0;
	    k = ft->next_copy[k]) {
		const proto_tree_entry *d = &t->entries[k];
		int ddir = tree_open_parent(ft->root, d, &dleaf);
		if (ddir < 0) {
			fetch_tree_failed(f, d->path, tree_path_error());
			rc = -1;
			break;
		}
		if (!tree_already_there(ddir, dleaf, d) &&
		    tree_copy_file(dir, leaf, ddir, dleaf) != 0) {
			fetch_tree_failed(f, d->path, strerror(errno));
			rc = -1;
		} else if (tree_apply_mode(ddir, dleaf, d->mode) != 0) {
			fetch_tree_failed(f, d->path, strerror(errno));
			rc = -1;
		}
		ft->copied++;
		close(ddir);
	}
	if (rc == 0 && tree_apply_mode(dir, leaf, e->mode) != 0) {
		fetch_tree_failed(f, e->path, strerror(errno));
		rc = -1;
	}
	close(dir);
	return rc;
}

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	proto_fetch_free(j->fx);
	proto_output_free(j->out);
	if (j->reap != NULL)
		event_free(j->reap);
	free(j->path);
	free(j->part);
	free(j);
}

static void
reap(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct fetch *f = j->f;
	struct fetch_tree *ft = f->ft;

	(void)fd;
	(void)what;
	/* --stats counts the chunks of every file's fetch. */
	if (j->fx != NULL) {
		proto_fetch_stats fs;
		proto_fetch_stats_get(j->fx, &fs);
		f->tree_chunks += fs.chunks_fetched;
	}
	for (unsigned k = 0; k < TREE_JOBS; k++)
		if (ft->jobs[k] == j)
			ft->jobs[k] = NULL;
	ft->running--;
	job_free(j);
	if (!f->done)
		start_jobs(f);
}

/* The job is over (complete or not): freed once out of its callbacks. */
static void
job_end(struct job *j)
{
	j->ended = 1;
	proto_fetch_stop(j->fx);
	event_active(j->reap, 0, 0);
}

/* A chunk an earlier run left in PATH.part, checked: not asked for. */
static void
job_held(uint64_t index, void *arg)
{
	proto_fetch_held(((struct job *)arg)->fx, index);
}

static int
job_manifest(proto_manifest *mf, void *arg)
{
	struct job *j = arg;
	/* A file there that differs is repaired in place when it has the
	 * entry's size. */
	proto_output_config cfg = { mf, j->path, j->part, STDOUT_FILENO, 0,
	    1 };
	uint64_t kept = 0;
	int rc;

	j->mf = mf;
	if ((rc = proto_output_new(&cfg, &j->out)) != 0) {
		tool_log(LOG_ERROR, "%s: %s", j->part ? j->part : "stdout",
		    rc == PROTO_ERR_SYSTEM ? strerror(errno) :
		    proto_strerror(rc));
		return -1;
	}
	if (j->path != NULL)
		(void)proto_output_resume(j->out, job_held, j, &kept);
	j->f->chunks_resumed += kept;
	if (proto_output_limit(j->out) != 0)
		proto_fetch_set_order(j->fx, proto_output_limit(j->out));
	return 0;
}

static void
job_chunk(uint64_t index, const uint8_t *data, size_t len, void *arg)
{
	struct job *j = arg;
	int rc;

	if (j->ended)
		return;
	if ((rc = proto_output_write(j->out, index, data, len)) != 0) {
		if (!(rc == PROTO_ERR_SYSTEM && errno == EPIPE))
			tool_log(LOG_ERROR, "%s: %s", j->part ? j->part :
			    "write", rc == PROTO_ERR_SYSTEM ? strerror(errno) :
			    proto_strerror(rc));
		fetch_finish(j->f, 1);
		job_end(j);
		return;
	}
	if (proto_output_limit(j->out) != 0)
		proto_fetch_set_order(j->fx, proto_output_limit(j->out));
}

static void
job_complete(void *arg)
{
	struct job *j = arg;
	struct fetch *f = j->f;
	int rc;

	if (j->ended)
		return;
	if ((rc = proto_output_finish(j->out)) != 0) {
		tool_log(LOG_ERROR, "%s: %s", j->part ? j->part : "write",
		    rc == PROTO_ERR_SYSTEM ? strerror(errno) :
		    proto_strerror(rc));
		fetch_finish(f, 1);
	} else {
		f->ft->fetched++;
		if (j->path != NULL)
			(void)file_done(f, (size_t)(j->e - f->tree->entries));
		else if (fetch_tar_end_file(f, j->e) != 0)
			fetch_finish(f, 1);
	}
	job_end(j);
}

static void
job_fail(int code, void *arg)
{
	struct job *j = arg;

	(void)code;
	tool_log(LOG_ERROR, "%s: not fetched%s", j->e->path,
	    j->path ? " (partial file kept)" : "");
	fetch_finish(j->f, 1);
	job_end(j);
}

/* Starts the fetch of entry e, from every peer known. */
static int
job_start(struct fetch *f, const proto_tree_entry *e, int dir)
{
	static const proto_fetch_cbs cbs = { tool_proto_log, job_manifest,
	    job_chunk, job_complete, NULL, job_fail, NULL, NULL };
	struct fetch_tree *ft = f->ft;
	proto_fetch_config cfg;
	struct job *j;
	unsigned slot = 0;

	while (ft->jobs[slot] != NULL)
		slot++;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		tool_die(1, "out of memory");
	j->f = f;
	j->e = e;
	if (dir >= 0 && (asprintf(&j->path, "%s/%s", f->out_path, e->path) < 0 ||
	    asprintf(&j->part, "%s.part", j->path) < 0))
		tool_die(1, "out of memory");
	memset(&cfg, 0, sizeof(cfg));
	cfg.id = e->id;
	cfg.conn = f->cfg;
	cfg.timeout = f->timeout;
	cfg.max_peers = f->max_peers;
	cfg.max_file_size = f->max_file_size;
	cfg.node = f->node;
	cfg.short_note = j->path ? " (partial file kept)" : NULL;
	if ((j->fx = proto_fetch_new(f->base, &cfg, &cbs, j)) == NULL ||
	    (j->reap = event_new(f->base, -1, 0, reap, j)) == NULL)
		tool_die(1, "out of memory");
	ft->jobs[slot] = j;
	ft->running++;
	proto_fetch_more_peers(j->fx, 1);
	for (int i = 0; i < f->npeers && !j->ended; i++)
		if (proto_fetch_add_peer(j->fx, &f->peers[i]) != 0)
			tool_die(1, "out of memory");
	for (size_t i = 0; i < f->nknown && !j->ended; i++)
		if (proto_fetch_add_peer(j->fx, &f->known[i]) != 0)
			tool_die(1, "out of memory");
	if (!j->ended)
		proto_fetch_more_peers(j->fx, f->stdin_open);
	return 0;
}

/* To a directory: the next entries that need fetching, up to TREE_JOBS at
 * once; empty directories, empty files, whole files and copies are done
 * on the way. The run ends when nothing is left and nothing runs. */
static void
start_dir_jobs(struct fetch *f)
{
	struct fetch_tree *ft = f->ft;
	const proto_tree *t = f->tree;

	while (!f->done && ft->running < TREE_JOBS && ft->next < t->count) {
		size_t i = ft->next++;
		const proto_tree_entry *e = &t->entries[i];
		const char *leaf;
		int dir;
		if (e->dir) {
			if ((dir = tree_open_dirs(ft->root, e->path, e->path_len)) < 0)
				fetch_tree_failed(f, e->path, tree_path_error());
			else
				close(dir);
			continue;
		}
		if (first_with(f, i) != NULL || fetch_batch_got(f, i))
			continue; /* a copy, made once the first is whole */
		if ((dir = tree_open_parent(ft->root, e, &leaf)) < 0) {
			fetch_tree_failed(f, e->path, tree_path_error());
			return;
		}
		if (tree_already_there(dir, leaf, e)) {
			ft->kept++;
			close(dir);
			(void)file_done(f, i);
			continue;
		}
		if (e->size == 0) {
			int fd = openat(dir, leaf, O_WRONLY | O_CREAT | O_TRUNC |
			    O_NOFOLLOW | O_CLOEXEC, 0644);
			close(dir);
			if (fd < 0 || close(fd) != 0) {
				fetch_tree_failed(f, e->path, strerror(errno));
				return;
			}
			(void)file_done(f, i);
			continue;
		}
		close(dir);
		job_start(f, e, ft->root);
	}
	if (!f->done && ft->running == 0 && ft->next == t->count) {
		tool_log(LOG_INFO, "%s: complete, %zu files (%llu fetched, %llu "
		    "already there, %llu copies)", f->hex, t->nfiles,
		    (unsigned long long)ft->fetched,
		    (unsigned long long)ft->kept,
		    (unsigned long long)ft->copied);
		fetch_finish(f, 0);
	}
}

/* To a stream: one entry at a time, in order, each file fetched. */
static void
start_tar_jobs(struct fetch *f)
{
	struct fetch_tree *ft = f->ft;
	const proto_tree *t = f->tree;

	while (!f->done && ft->running == 0 && ft->next < t->count) {
		const proto_tree_entry *e = &t->entries[ft->next++];
		if (fetch_tar_header(f, e) != 0) {
			fetch_finish(f, 1);
			return;
		}
		if (!e->dir && e->size > 0)
			job_start(f, e, -1);
		else if (fetch_tar_end_file(f, e) != 0)
			fetch_finish(f, 1);
	}
	if (!f->done && ft->running == 0 && ft->next == t->count)
		fetch_finish(f, fetch_tar_finish(f) != 0);
}

static void
start_jobs(struct fetch *f)
{
	if (f->ft->root >= 0)
		start_dir_jobs(f);
	else
		start_tar_jobs(f);
}

/* Out of the first fetch's callbacks: its connections closed, the tree's
 * files begin. */
static void
tree_begin(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	const proto_tree *t = f->tree;
	struct fetch_tree *ft = f->ft;

	(void)fd;
	(void)what;
	proto_fetch_close(f->fx);
	if (f->out_path != NULL) {
		for (size_t i = 0; i < t->count; i++) {
			char part[PROTO_TREE_PATH_MAX + 8];
			const proto_tree_entry *e = &t->entries[i];
			snprintf(part, sizeof(part), "%s.part", e->path);
			if (!e->dir && proto_tree_find(t, part, strlen(part))) {
				fetch_tree_failed(f, part, "listed, and also "
				    "the temporary name of another file; not "
				    "fetched");
				return;
			}
		}
		if (mkdir(f->out_path, 0755) != 0 && errno != EEXIST) {
			fetch_tree_failed(f, f->out_path, strerror(errno));
			return;
		}
		if ((ft->root = open(f->out_path, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) < 0) {
			fetch_tree_failed(f, f->out_path, strerror(errno));
			return;
		}
		if (fetch_batch_start(f))
			return;
	}
	start_jobs(f);
}

int
fetch_tree_root(const struct fetch *f)
{
	return f->ft->root;
}

int
fetch_tree_is_first(const struct fetch *f, size_t i)
{
	return f->ft->first[i] == i;
}

int
fetch_tree_has_copies(const struct fetch *f, size_t i)
{
	return f->ft->next_copy[i] != NO_COPY;
}

int
fetch_tree_file_written(struct fetch *f, size_t i)
{
	f->ft->fetched++;
	f->tree_chunks++;   /* its one chunk, for --stats */
	return f->ft->next_copy[i] == NO_COPY ? 0 : file_done(f, i);
}

void
fetch_tree_batch_done(struct fetch *f)
{
	start_jobs(f);
}

int
fetch_on_tree(proto_tree *t, void *arg)
{
	struct fetch *f = arg;

	if (f->tree != NULL) {
		proto_tree_free(t);
		return 0;
	}
	f->tree = t;
	fetch_name_tree(f, t);
	if ((f->ft = calloc(1, sizeof(*f->ft))) == NULL)
		tool_die(1, "out of memory");
	f->ft->root = -1;
	find_copies(f);
	tool_log(LOG_INFO, "%s: a tree: %zu files, %llu bytes, %zu entries",
	    f->hex, t->nfiles, (unsigned long long)t->total_size, t->count);
	if (f->store != NULL) {
		proto_tree *copy;
		if (proto_tree_decode(t->enc, t->enc_len, &copy) != 0 ||
		    proto_store_add_tree(f->store, copy) < 0)
			tool_die(1, "out of memory");
	}
	proto_fetch_stop(f->fx);
	if (event_base_once(f->base, -1, EV_TIMEOUT, tree_begin, f, NULL) != 0)
		tool_die(1, "out of memory");
	return 0;
}

void
fetch_add_peer(struct fetch *f, const proto_addr *addr)
{
	if (f->nknown == f->known_cap) {
		size_t cap = f->known_cap ? f->known_cap * 2 : 16;
		proto_addr *p = realloc(f->known, cap * sizeof(*p));
		if (p == NULL)
			tool_die(1, "out of memory");
		f->known = p;
		f->known_cap = cap;
	}
	f->known[f->nknown++] = *addr;
	if (f->ft == NULL) {
		if (proto_fetch_add_peer(f->fx, addr) != 0)
			tool_die(1, "out of memory");
		return;
	}
	for (unsigned k = 0; k < TREE_JOBS; k++)
		if (f->ft->jobs[k] != NULL && !f->ft->jobs[k]->ended &&
		    proto_fetch_add_peer(f->ft->jobs[k]->fx, addr) != 0)
			tool_die(1, "out of memory");
}

void
fetch_no_more_peers(struct fetch *f)
{
	proto_fetch_more_peers(f->fx, 0);
	if (f->ft == NULL)
		return;
	for (unsigned k = 0; k < TREE_JOBS; k++)
		if (f->ft->jobs[k] != NULL && !f->ft->jobs[k]->ended)
			proto_fetch_more_peers(f->ft->jobs[k]->fx, 0);
}

void
fetch_tree_free(struct fetch *f)
{
	fetch_batch_free(f);
	if (f->ft != NULL) {
		for (unsigned k = 0; k < TREE_JOBS; k++)
			job_free(f->ft->jobs[k]);
		if (f->ft->root >= 0)
			close(f->ft->root);
		free(f->ft->first);
		free(f->ft->next_copy);
		free(f->ft);
	}
	proto_tree_free(f->tree);
	free(f->known);
}
