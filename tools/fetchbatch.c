/*
 * The small files of a tree fetched to -o DIR, many to a request
 * (GET_FILES, docs/PROTOCOL.md section 4), from the peers that state the
 * files cap: before the tree's files are fetched one fetch each
 * (fetchtree.c), each file of one block whose path is free is asked for
 * in batches, several batches in flight on one connection to each peer.
 * Every file's bytes are checked against its id before they are written,
 * through PATH.part renamed to PATH, with the entry's mode. A peer whose
 * answer is wrong (more entries than asked, none at all, a file of the
 * wrong size or bytes that are not the id's), or that leaves a request
 * unanswered for the timeout (-T), is dropped and its files asked of the
 * others; a peer named through a relay is not asked. What no peer gave
 * (nil, or no peer with the cap) is left to the fetch of each file after.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "p2p-fetch.h"

#define BATCH_PEERS 4           /* connections, one to each peer given */
#define BATCH_INFLIGHT 4        /* GET_FILES out on one */
#define BATCH_BYTES (1u << 20)  /* of files asked in one */

struct batch_req {
	uint32_t rid;
	size_t *idx;                /* the entries asked, in order */
	size_t n;
	struct timespec deadline;   /* sent + -T: no answer by then drops */
};

struct batch_peer {
	struct fetch_batch *b;
	proto_conn *c;
	/* At the oldest request's deadline: pushes keep the connection from
	 * going idle, so only this ends a peer that never answers. */
	struct event *timer;
	int gone;
	uint32_t rid;
	struct batch_req reqs[BATCH_INFLIGHT]; /* oldest first */
	unsigned nreqs, maxreq;
};

struct fetch_batch {
	struct fetch *f;
	size_t *queue;              /* entries to ask for: a ring */
	size_t qhead, qlen, qcap;
	struct batch_peer peers[BATCH_PEERS];
	unsigned npeers;
	uint8_t *got;               /* per entry: written here */
	struct event *end_ev;
	int ended;
	/* The directory of the last entry written, opened through no link:
	 * a tree's files come directory by directory. */
	char *dir_path;
	size_t dir_len;
	int dir_fd;
	uint64_t fetched, refused, bad;
};

static void pump(struct batch_peer *p);

/* The timer at p's oldest request's deadline (answers come in order, so
 * it is the first to pass), or none with nothing out. */
static void
arm(struct batch_peer *p)
{
	struct timespec now;
	struct timeval tv = { 0, 0 };
	const struct timespec *d;

	if (p->timer == NULL)
		return;
	if (p->gone || p->nreqs == 0) {
		evtimer_del(p->timer);
		return;
	}
	d = &p->reqs[0].deadline;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (d->tv_sec > now.tv_sec || (d->tv_sec == now.tv_sec &&
	    d->tv_nsec > now.tv_nsec)) {
		long ns = d->tv_nsec - now.tv_nsec;
		tv.tv_sec = d->tv_sec - now.tv_sec - (ns < 0);
		tv.tv_usec = (ns < 0 ? ns + 1000000000L : ns) / 1000 + 1;
		if (tv.tv_usec >= 1000000) {
			tv.tv_sec++;
			tv.tv_usec -= 1000000;
		}
	}
	evtimer_add(p->timer, &tv);
}

static void
queue_push(struct fetch_batch *b, size_t i, int front)
{
	if (front) {
		b->qhead = (b->qhead + b->qcap - 1) % b->qcap;
		b->queue[b->qhead] = i;
	} else
		b->queue[(b->qhead + b->qlen) % b->qcap] = i;
	b->qlen++;
}

static size_t
queue_pop(struct fetch_batch *b)
{
	size_t i = b->queue[b->qhead];

	b->qhead = (b->qhead + 1) % b->qcap;
	b->qlen--;
	return i;
}

/* The batch is over when nothing waits or nothing can ask: the files
 * left go to the fetch of each. */
static void
maybe_end(struct fetch_batch *b)
{
	unsigned live = 0, out = 0;

	for (unsigned k = 0; k < b->npeers; k++)
		if (!b->peers[k].gone) {
			live++;
			out += b->peers[k].nreqs;
		}
	if (!b->ended && (live == 0 || (b->qlen == 0 && out == 0))) {
		b->ended = 1;
		event_active(b->end_ev, 0, 0);
	}
}

/* The requests still out on p, their files given back to the others
 * (those not yet answered first, in their order). */
static void
peer_drop(struct batch_peer *p, const char *why)
{
	struct fetch_batch *b = p->b;

	if (p->gone)
		return;
	if (why != NULL)
		tool_log(LOG_WARN, "%s: %s; its files asked elsewhere",
		    proto_conn_peer(p->c), why);
	p->gone = 1;
	for (unsigned r = p->nreqs; r-- > 0;) {
		for (size_t k = p->reqs[r].n; k-- > 0;)
			queue_push(b, p->reqs[r].idx[k], 1);
		free(p->reqs[r].idx);
	}
	p->nreqs = 0;
	arm(p);
	proto_conn_free(p->c);
	p->c = NULL;
	for (unsigned k = 0; k < b->npeers; k++)
		if (!b->peers[k].gone)
			pump(&b->peers[k]);
	maybe_end(b);
}

/* The directory of e, opened once for the entries after it there. */
static int
parent_of(struct fetch_batch *b, const proto_tree_entry *e, const char **leaf)
{
	const char *slash = strrchr(e->path, '/');
	size_t len = slash ? (size_t)(slash - e->path) : 0;

	*leaf = slash ? slash + 1 : e->path;
	if (b->dir_fd >= 0 && len == b->dir_len &&
	    memcmp(b->dir_path, e->path, len) == 0)
		return b->dir_fd;
	if (b->dir_fd >= 0)
		close(b->dir_fd);
	b->dir_fd = tree_open_dirs(fetch_tree_root(b->f), e->path, len);
	free(b->dir_path);
	b->dir_path = b->dir_fd >= 0 ? strndup(e->path, len) : NULL;
	b->dir_len = len;
	if (b->dir_fd >= 0 && b->dir_path == NULL)
		tool_die(1, "out of memory");
	return b->dir_fd;
}

/* Writes entry i's bytes, checked, through PATH.part. 0, or -1 (said, the
 * run ended). */
static int
write_file(struct fetch_batch *b, size_t i, const uint8_t *data, size_t len)
{
	const proto_tree_entry *e = &b->f->tree->entries[i];
	char part[PROTO_TREE_NAME_MAX + 8];
	const char *leaf;
	int dir = parent_of(b, e, &leaf), fd, rc = 0;
	/* With copies to make, the mode comes after them (it may take the
	 * owner's read away): fetch_tree_file_written gives it. */
	int mode_now = !fetch_tree_has_copies(b->f, i);

	if (dir < 0) {
		fetch_tree_failed(b->f, e->path, tree_path_error());
		return -1;
	}
	snprintf(part, sizeof(part), "%s.part", leaf);
	if ((fd = openat(dir, part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0)
		rc = -1;
	else {
		/* The mode before the name: the file appears whole and as
		 * the tree says, or not at all. */
		if (tool_write_all(fd, data, len) != 0 ||
		    (mode_now && fchmod(fd, e->mode & 0777) != 0))
			rc = -1;
		if (close(fd) != 0)
			rc = -1;
		if (rc == 0 && renameat(dir, part, dir, leaf) != 0)
			rc = -1;
	}
	if (rc != 0) {
		fetch_tree_failed(b->f, e->path, strerror(errno));
		return -1;
	}
	b->got[i] = 1;
	b->fetched++;
	return fetch_tree_file_written(b->f, i);
}

/* 1 when data are the bytes of entry e: its size, and its id from them
 * (one block: the root is the block's hash). */
static int
is_file(const proto_tree_entry *e, const uint8_t *data, size_t len)
{
	uint8_t root[PROTO_HASH_LEN], id[PROTO_HASH_LEN];

	return len == e->size && proto_sha256(data, len, root) == 0 &&
	    proto_hash_id_of_root(len, root, id) == 0 &&
	    memcmp(id, e->id, PROTO_HASH_LEN) == 0;
}

static void
on_files(struct batch_peer *p, const proto_msg *m)
{
	struct fetch_batch *b = p->b;
	struct batch_req r = p->reqs[0];
	const proto_tree_entry *entries = b->f->tree->entries;

	/* Answers come in order: the first request out is this one. */
	memmove(&p->reqs[0], &p->reqs[1], --p->nreqs * sizeof(p->reqs[0]));
	if (m->nfiles_in > r.n || (m->nfiles_in == 0 && r.n > 0)) {
		p->reqs[p->nreqs++] = r;  /* given back with the rest */
		b->bad++;
		peer_drop(p, m->nfiles_in > r.n ? "FILES: more files than "
		    "asked for" : "FILES: none of the files asked for");
		return;
	}
	for (size_t k = 0; k < m->nfiles_in; k++) {
		const proto_file_data *d = &m->files[k];
		if (!d->held) {
			b->refused++;   /* left to the fetch of each file */
			continue;
		}
		if (!is_file(&entries[r.idx[k]], d->data, d->len)) {
			b->bad++;
			/* This file and the rest: asked of the others. */
			memmove(r.idx, r.idx + k, (r.n - k) * sizeof(*r.idx));
			r.n -= k;
			p->reqs[p->nreqs++] = r;
			peer_drop(p, "FILES: a file that is not the one asked "
			    "for (wrong size or bytes)");
			return;
		}
		if (write_file(b, r.idx[k], d->data, d->len) != 0) {
			free(r.idx);
			return;
		}
	}
	/* Cut short (the rest did not fit the frame): asked again. */
	for (size_t k = r.n; k-- > m->nfiles_in;)
		queue_push(b, r.idx[k], 1);
	free(r.idx);
	pump(p);
	arm(p);
	maybe_end(b);
}

static void
on_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct batch_peer *p = arg;

	(void)c;
	if (p->b->ended || p->gone)
		return;
	if (m->type == PROTO_MSG_ERROR && m->rid == 0) {
		peer_drop(p, NULL);     /* about the connection: said there */
		return;
	}
	if (m->rid == 0)
		return;                 /* pushed: nothing this asks for */
	if (p->nreqs == 0 || m->rid != p->reqs[0].rid ||
	    (m->type != PROTO_MSG_FILES && m->type != PROTO_MSG_ERROR)) {
		p->b->bad++;
		peer_drop(p, "an answer to nothing asked");
		return;
	}
	if (m->type == PROTO_MSG_ERROR) {
		/* BUSY or refused: the others, or each file's fetch, get
		 * these. */
		peer_drop(p, NULL);
		return;
	}
	on_files(p, m);
}

/* Asks for the next files while p has room. */
static void
pump(struct batch_peer *p)
{
	struct fetch_batch *b = p->b;
	const proto_tree_entry *entries = b->f->tree->entries;

	while (!p->gone && !b->ended && p->nreqs < p->maxreq && b->qlen > 0) {
		uint8_t ids[PROTO_FILES_MAX * PROTO_HASH_LEN];
		struct batch_req *r = &p->reqs[p->nreqs];
		uint64_t bytes = 0;
		proto_msg m;
		if ((r->idx = calloc(PROTO_FILES_MAX, sizeof(size_t))) == NULL)
			tool_die(1, "out of memory");
		r->n = 0;
		while (b->qlen > 0 && r->n < PROTO_FILES_MAX &&
		    bytes < BATCH_BYTES) {
			size_t i = queue_pop(b);
			memcpy(ids + r->n * PROTO_HASH_LEN, entries[i].id,
			    PROTO_HASH_LEN);
			bytes += entries[i].size;
			r->idx[r->n++] = i;
		}
		r->rid = ++p->rid;
		proto_msg_init(&m, PROTO_MSG_GET_FILES);
		m.rid = r->rid;
		m.ids = ids;
		m.nids = r->n;
		clock_gettime(CLOCK_MONOTONIC, &r->deadline);
		r->deadline.tv_sec += p->b->f->timeout;
		p->nreqs++;
		if (p->nreqs == 1)
			arm(p);
		if (proto_conn_send(p->c, &m) != 0) {
			peer_drop(p, "out of memory");
			return;
		}
	}
}

static void
on_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct batch_peer *p = arg;
	uint32_t maxreq = proto_conn_peer_maxreq(c);

	if (!(hello->caps & PROTO_CAP_FILES)) {
		tool_log(LOG_DEBUG, "%s: no files cap: its small files are "
		    "fetched one by one", proto_conn_peer(c));
		peer_drop(p, NULL);
		return;
	}
	/* maxreq 0 from a peer that answers: taken as one at a time. */
	p->maxreq = maxreq == 0 ? 1 : maxreq < BATCH_INFLIGHT ? maxreq :
	    BATCH_INFLIGHT;
	pump(p);
	maybe_end(p->b);
}

static void
on_close(proto_conn *c, int err, void *arg)
{
	struct batch_peer *p = arg;

	tool_log(LOG_DEBUG, "%s: %s", proto_conn_peer(c), proto_strerror(err));
	peer_drop(p, NULL);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct batch_peer *p = arg;

	(void)fd;
	(void)what;
	if (p->gone || p->b->ended || p->nreqs == 0)
		return;
	peer_drop(p, "no answer to GET_FILES within the timeout");
}

static int
on_idle(proto_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	return 0;
}

static void
batch_over(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	struct fetch_batch *b = f->batch;

	(void)fd;
	(void)what;
	for (unsigned k = 0; k < b->npeers; k++)
		if (!b->peers[k].gone)
			peer_drop(&b->peers[k], NULL);
	if (b->fetched + b->bad > 0)
		tool_log(LOG_INFO, "%s: %llu small files fetched in batches "
		    "(%llu not held there, %llu wrong)", f->hex,
		    (unsigned long long)b->fetched,
		    (unsigned long long)b->refused,
		    (unsigned long long)b->bad);
	if (!f->done)
		fetch_tree_batch_done(f);
}

int
fetch_batch_got(const struct fetch *f, size_t i)
{
	return f->batch != NULL && f->batch->got[i];
}

/* The files to ask for: of one block, the first with their bytes, their
 * path free (anything there, or in the way, is the fetch of each's to
 * judge: kept, resumed or refused). */
static void
find_small(struct fetch_batch *b)
{
	const proto_tree *t = b->f->tree;

	for (size_t i = 0; i < t->count; i++) {
		const proto_tree_entry *e = &t->entries[i];
		const char *leaf;
		struct stat st;
		int dir;
		if (e->dir || e->size == 0 || e->size > PROTO_FILES_SIZE_MAX ||
		    !fetch_tree_is_first(b->f, i))
			continue;
		if ((dir = parent_of(b, e, &leaf)) < 0 ||
		    fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
		    errno != ENOENT)
			continue;
		queue_push(b, i, 0);
	}
}

int
fetch_batch_start(struct fetch *f)
{
	static const proto_conn_cbs cbs = { on_ready, on_msg, on_close,
	    on_idle, NULL, NULL };
	struct fetch_batch *b;
	const proto_addr *addrs[BATCH_PEERS];
	unsigned n = 0;

	for (int i = 0; i < f->npeers && n < BATCH_PEERS; i++)
		addrs[n++] = &f->peers[i];
	for (size_t i = 0; i < f->nknown && n < BATCH_PEERS; i++)
		addrs[n++] = &f->known[i];
	if (n == 0)
		return 0;
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->got = calloc(f->tree->count + 1, 1)) == NULL ||
	    (b->queue = calloc(f->tree->count + 1, sizeof(size_t))) == NULL ||
	    (b->end_ev = event_new(f->base, -1, 0, batch_over, f)) == NULL)
		tool_die(1, "out of memory");
	f->batch = b;
	b->f = f;
	b->qcap = f->tree->count + 1;
	b->dir_fd = -1;
	find_small(b);
	if (b->qlen == 0)
		return 0;
	for (unsigned k = 0; k < n; k++) {
		struct batch_peer *p = &b->peers[b->npeers];
		proto_conn_config cfg = f->cfg;
		/* Through a relay the node is not at ss: the fetch of each
		 * file reaches it by the circuit. */
		if (addrs[k]->relayed)
			continue;
		/* A connection of its own, that only asks: never kept in
		 * place of the fetch's (no duplex), answering nothing. */
		cfg.caps &= ~(uint64_t)PROTO_CAP_DUPLEX;
		cfg.max_requests = 0;
		if (addrs[k]->has_pin)
			cfg.pin = addrs[k]->pin;
		p->b = b;
		if ((p->c = proto_conn_connect(f->base,
		    (const struct sockaddr *)&addrs[k]->ss, addrs[k]->len, &cfg,
		    &cbs, p)) == NULL)
			continue;
		if ((p->timer = evtimer_new(f->base, on_deadline, p)) == NULL)
			tool_die(1, "out of memory");
		proto_conn_set_idle_timeout(p->c, f->timeout);
		b->npeers++;
	}
	if (b->npeers == 0)
		return 0;
	return 1;
}

void
fetch_batch_free(struct fetch *f)
{
	struct fetch_batch *b = f->batch;

	if (b == NULL)
		return;
	for (unsigned k = 0; k < b->npeers; k++) {
		for (unsigned r = 0; r < b->peers[k].nreqs; r++)
			free(b->peers[k].reqs[r].idx);
		proto_conn_free(b->peers[k].c);
		if (b->peers[k].timer != NULL)
			event_free(b->peers[k].timer);
	}
	if (b->end_ev != NULL)
		event_free(b->end_ev);
	if (b->dir_fd >= 0)
		close(b->dir_fd);
	free(b->dir_path);
	free(b->queue);
	free(b->got);
	free(b);
	f->batch = NULL;
}
