/*
 * p2p-fetch: downloads a file by content id from several peers at once.
 * Peers come from -p and from HOST:PORT lines on stdin (what p2p-discover
 * prints), joining as they arrive. The first manifest that hashes to the id
 * is adopted; then each ready peer keeps several chunk requests in flight,
 * every chunk is checked against the manifest before it is written, and a
 * peer that sends a bad chunk is dropped and its chunks asked of others.
 * Output goes to stdout in order, through a bounded window of chunks that
 * arrived early, or with -o to FILE.part at each chunk's offset, renamed to
 * FILE when complete; a later run over the same FILE.part keeps every chunk
 * that already checks and fetches only the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "tool.h"

#define DEFAULT_TIMEOUT 30
#define DEFAULT_MAX_PEERS 50
#define PEER_INFLIGHT_BYTES (2u << 20) /* requested, unanswered, per peer */
#define PEER_INFLIGHT_MAX 64           /* requests per peer */
#define PEER_INFLIGHT_CHUNKS 16        /* chunk requests per peer */
#define WINDOW_BYTES (8u << 20)        /* early chunks held for stdout */
#define RECONNECTS 3                   /* per peer that had the file */
#define PROGRESS_MIN 1024              /* bytes within the timeout that
                                        * count as progress */

enum chunk_state { CHUNK_MISSING, CHUNK_INFLIGHT, CHUNK_DONE };
enum peer_state { PEER_CONNECTING, PEER_READY, PEER_RETRYING, PEER_GONE };
enum req_kind { REQ_MANIFEST, REQ_CHUNK, REQ_LIST };

struct request {
	uint32_t rid;
	enum req_kind kind;
	uint64_t index;
};

struct peer {
	struct fetch *f;
	char *addr;
	proto_conn *conn;
	enum peer_state state;
	struct sockaddr_storage ss;     /* where it listens, for reconnecting */
	socklen_t sslen;
	struct event *retry_ev;
	unsigned retries;
	int line_lost;                  /* cut or reset while ready: worth
	                                 * reconnecting; silence is not */
	int has_file;
	struct request queue[PEER_INFLIGHT_MAX]; /* answers come in order */
	unsigned head, count;
	size_t inflight_bytes;
	uint64_t chunks;
	char why[160];  /* why it went, for the final message */
};

struct fetch {
	struct event_base *base;
	uint8_t id[PROTO_HASH_LEN];
	char hex[PROTO_ID_HEX_LEN + 1];
	proto_manifest *mf;
	uint8_t *state;             /* enum chunk_state per chunk */
	uint8_t *asked;             /* requests out for each chunk */
	uint64_t first_undone;      /* every chunk below is done */
	uint64_t ndone, next_missing;
	struct peer **peers;
	size_t npeers, cap;
	unsigned max_peers, timeout;
	uint64_t max_file_size;     /* 0: no limit */
	uint32_t next_rid;
	/* output */
	const char *out_path;
	char *part_path;
	int out_fd;
	uint64_t next_write;        /* stdout: first chunk not yet written */
	uint8_t **window;           /* stdout: early chunks by index % size */
	uint64_t window_chunks;
	/* peers on stdin */
	struct event *stdin_ev;
	char line[512];
	size_t linelen;
	int stdin_open;
	/* progress and outcome */
	struct event *tick;
	time_t last_progress;
	int listing, stats, exit_code, done;
	unsigned not_found;
	uint64_t bytes_in, chunks_fetched, chunks_resumed, peers_dropped;
	uint64_t bytes_seen;        /* at the last tick, over live peers */
	proto_conn_config cfg;
	struct tool_progress progress;
	struct event *progress_ev;
};

static void fetch_finish(struct fetch *f, int code);
static void pump(struct peer *p);

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-fetch [-qv] [-p HOST:PORT]... [-o FILE] [-T SECONDS]\n"
	    "                 [--max-peers N] [--max-download-rate RATE]\n"
	    "                 [--max-upload-rate RATE] [--progress] [--stats]\n"
	    "                 [--json] [--config FILE] ID\n"
	    "       p2p-fetch --list [--json] -p HOST:PORT\n"
	    "  -p, --peer HOST:PORT   fetch from this peer (repeat for more); '-'\n"
	    "                         or no -p at all: read HOST:PORT lines on stdin\n"
	    "  -o, --output FILE      write to FILE (through FILE.part, resumable)\n"
	    "                         instead of stdout\n"
	    "  -T, --timeout SECONDS  connect timeout, and the longest wait with no\n"
	    "                         progress (default 30, or MINI_P2P_TIMEOUT)\n"
	    "      --max-peers N      peers at once (default %d, or MINI_P2P_MAX_PEERS)\n"
	    "      --list             list the files the peer shares:\n"
	    "                         ID<TAB>SIZE<TAB>NAME\n"
	    "      --max-download-rate RATE  receive at most RATE bytes/s, over all\n"
	    "                         peers (K, M, G: binary; 0: no limit)\n"
	    "      --max-upload-rate RATE    send at most RATE bytes/s\n"
	    "      --progress         show progress on stderr even when it is not\n"
	    "                         a terminal\n"
	    "      --stats            print what was fetched from whom on stderr\n"
	    "      --json             --list and --stats as JSON, one object a line\n"
	    "      --config FILE      read settings from FILE\n"
	    "  -q, --quiet            print only errors, no progress\n"
	    "  -v, --verbose          print more (repeat for more)\n"
	    "  -h, --help             print this help and exit\n"
	    "  -V, --version          print the version and exit\n",
	    DEFAULT_MAX_PEERS);
}

static int
peer_alive(const struct peer *p)
{
	return p->state != PEER_GONE;
}

/* One request for chunk i is over: when none is left and the chunk is not
 * done, it is missing again. */
static void
unask(struct fetch *f, uint64_t i)
{
	if (f->asked[i] > 0)
		f->asked[i]--;
	if (f->asked[i] == 0 && f->state[i] == CHUNK_INFLIGHT) {
		f->state[i] = CHUNK_MISSING;
		if (i < f->next_missing)
			f->next_missing = i;
	}
}

/* Chunks a peer was asked for go back to the pool. */
static void
release_requests(struct peer *p)
{
	struct fetch *f = p->f;

	for (unsigned i = 0; i < p->count; i++) {
		struct request *r = &p->queue[(p->head + i) % PEER_INFLIGHT_MAX];
		if (r->kind == REQ_CHUNK)
			unask(f, r->index);
	}
	p->count = 0;
	p->inflight_bytes = 0;
}

static void
peer_close(struct peer *p)
{
	struct fetch *f = p->f;

	if (p->state == PEER_GONE)
		return;
	if (f->mf != NULL)
		release_requests(p);
	p->count = 0;
	if (p->conn) {
		f->bytes_in += proto_conn_bytes_in(p->conn);
		proto_conn_free(p->conn);
		p->conn = NULL;
	}
	p->state = PEER_GONE;
}

/* What is left to hope for: a peer still connected, or one yet to come. */
static void
check_exhausted(struct fetch *f)
{
	const char *last = NULL;

	if (f->done)
		return;
	for (size_t i = 0; i < f->npeers; i++) {
		if (peer_alive(f->peers[i]))
			return;
		if (f->peers[i]->why[0])
			last = f->peers[i]->why;
	}
	if (f->stdin_open)
		return;
	if (f->npeers == 0)
		tool_log(LOG_ERROR, "no peers to fetch from");
	else if (f->listing)
		tool_log(LOG_ERROR, "%s", last ? last : "peer gone");
	else if (f->mf == NULL && f->not_found > 0)
		tool_log(LOG_ERROR, "%s: not found on any peer", f->hex);
	else if (f->mf == NULL && f->npeers == 1 && last)
		tool_log(LOG_ERROR, "%s", last);
	else if (f->mf == NULL) {
		for (size_t i = 0; i < f->npeers; i++)
			if (f->peers[i]->why[0])
				tool_log(LOG_ERROR, "%s", f->peers[i]->why);
		tool_log(LOG_ERROR, "%s: no peer could be reached", f->hex);
	}
	else
		tool_log(LOG_ERROR, "%s: every peer failed; %llu of %llu chunks "
		    "missing%s", f->hex,
		    (unsigned long long)(f->mf->nchunks - f->ndone),
		    (unsigned long long)f->mf->nchunks,
		    f->part_path ? " (partial file kept)" : "");
	fetch_finish(f, 1);
}

/* Drops a peer for what it did, or lost it through no fault; either way its
 * chunks go to the others. */
static void
peer_fail(struct peer *p, int bad, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
peer_fail(struct peer *p, int bad, const char *fmt, ...)
{
	va_list ap;

	if (p->state == PEER_GONE)
		return;
	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
	if (bad) {
		p->f->peers_dropped++;
		tool_log(LOG_WARN, "%s; dropping peer", p->why);
	} else
		tool_log(LOG_DEBUG, "%s", p->why);
	peer_close(p);
	/* A peer that had the file and lost the line through no fault of its
	 * own (a cut, a reset, a timeout) is tried again, a few times. */
	if (!bad && p->line_lost && p->retries < RECONNECTS && !p->f->done &&
	    p->retry_ev != NULL) {
		struct timeval half = { 0, 500000 };
		p->retries++;
		p->state = PEER_RETRYING;
		evtimer_add(p->retry_ev, &half);
		tool_log(LOG_INFO, "%s; reconnecting (%u of %u)", p->why,
		    p->retries, RECONNECTS);
	}
	if (p->f->mf != NULL)
		for (size_t i = 0; i < p->f->npeers; i++)
			pump(p->f->peers[i]);
	check_exhausted(p->f);
}

static int
send_request(struct peer *p, enum req_kind kind, uint64_t index)
{
	struct fetch *f = p->f;
	struct request *r;
	proto_msg m;

	r = &p->queue[(p->head + p->count) % PEER_INFLIGHT_MAX];
	r->rid = f->next_rid++;
	r->kind = kind;
	r->index = index;
	proto_msg_init(&m, kind == REQ_LIST ? PROTO_MSG_LIST :
	    kind == REQ_MANIFEST ? PROTO_MSG_GET_MANIFEST :
	    PROTO_MSG_GET_CHUNK);
	m.rid = r->rid;
	m.id = f->id;
	m.index = index;
	if (kind == REQ_CHUNK)
		m.chunk_size = f->mf->chunk_size;
	if (proto_conn_send(p->conn, &m) != 0)
		return -1;
	p->count++;
	return 0;
}

static int
asked_of(const struct peer *p, uint64_t index)
{
	for (unsigned i = 0; i < p->count; i++) {
		const struct request *r =
		    &p->queue[(p->head + i) % PEER_INFLIGHT_MAX];
		if (r->kind == REQ_CHUNK && r->index == index)
			return 1;
	}
	return 0;
}

/*
 * The next chunk to ask p for, or -1: the lowest missing one, within the
 * window when writing in order to stdout. When none is missing, the endgame:
 * a chunk still out at other peers, asked again here, so that slow or
 * stalled peers cannot hold up the end of the file: whichever peer is
 * fastest ends up bringing it, and the later copies are dropped when they
 * arrive. Only the tail of the file is ever fetched twice.
 */
static int64_t
pick_chunk(struct fetch *f, const struct peer *p)
{
	uint64_t limit = f->mf->nchunks;

	if (f->window != NULL && f->next_write + f->window_chunks < limit)
		limit = f->next_write + f->window_chunks;
	while (f->next_missing < f->mf->nchunks &&
	    f->state[f->next_missing] != CHUNK_MISSING)
		f->next_missing++;
	if (f->next_missing < limit)
		return (int64_t)f->next_missing;
	while (f->first_undone < f->mf->nchunks &&
	    f->state[f->first_undone] == CHUNK_DONE)
		f->first_undone++;
	for (uint64_t i = f->first_undone; i < limit; i++)
		if (f->state[i] == CHUNK_INFLIGHT && f->asked[i] < UINT8_MAX &&
		    !asked_of(p, i))
			return (int64_t)i;
	return -1;
}

static void
pump(struct peer *p)
{
	struct fetch *f = p->f;
	size_t min_inflight = 2 * (size_t)f->mf->chunk_size;
	size_t budget = PEER_INFLIGHT_BYTES > min_inflight ?
	    PEER_INFLIGHT_BYTES : min_inflight;

	if (p->state != PEER_READY || !p->has_file || f->done)
		return;
	/* The count cap keeps the first peer to answer from taking every
	 * small chunk before the others are ready. */
	while (p->count < PEER_INFLIGHT_CHUNKS && p->inflight_bytes < budget) {
		int64_t i = pick_chunk(f, p);
		if (i < 0)
			break;
		if (send_request(p, REQ_CHUNK, (uint64_t)i) != 0) {
			peer_fail(p, 0, "%s: cannot send", p->addr);
			return;
		}
		f->state[i] = CHUNK_INFLIGHT;
		f->asked[i]++;
		p->inflight_bytes += proto_chunk_len(f->mf->size,
		    f->mf->chunk_size, (uint64_t)i);
	}
}

static void
pump_all(struct fetch *f)
{
	for (size_t i = 0; i < f->npeers && !f->done; i++)
		pump(f->peers[i]);
}

static void
write_out(struct fetch *f, const void *data, size_t len, uint64_t off)
{
	if (f->part_path != NULL) {
		const char *p = data;
		while (len > 0) {
			ssize_t n = pwrite(f->out_fd, p, len, (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				tool_log(LOG_ERROR, "%s: %s (partial file kept)",
				    f->part_path, strerror(errno));
				fetch_finish(f, 1);
				return;
			}
			p += n;
			off += (uint64_t)n;
			len -= (size_t)n;
		}
		return;
	}
	if (tool_write_all(f->out_fd, data, len) != 0) {
		if (errno != EPIPE)
			tool_log(LOG_ERROR, "write: %s", strerror(errno));
		fetch_finish(f, 1);
	}
}

/* Writes the chunks now in order at the front of the window. */
static void
flush_window(struct fetch *f)
{
	while (!f->done && f->next_write < f->mf->nchunks) {
		uint64_t slot = f->next_write % f->window_chunks;
		if (f->window[slot] == NULL)
			break;
		write_out(f, f->window[slot], proto_chunk_len(f->mf->size,
		    f->mf->chunk_size, f->next_write), 0);
		free(f->window[slot]);
		f->window[slot] = NULL;
		f->next_write++;
	}
}

static void
complete(struct fetch *f)
{
	if (f->part_path != NULL) {
		/* The file grew as chunks were written; ext4 writes into a
		 * preallocated hole many times slower than it appends, so it
		 * gets its full length only now (and loses any excess). */
		if (ftruncate(f->out_fd, (off_t)f->mf->size) != 0 ||
		    fdatasync(f->out_fd) != 0 || rename(f->part_path,
		    f->out_path) != 0) {
			tool_log(LOG_ERROR, "%s: %s (partial file kept)",
			    f->part_path, strerror(errno));
			fetch_finish(f, 1);
			return;
		}
	}
	tool_log(LOG_INFO, "%s: complete, %llu bytes", f->hex,
	    (unsigned long long)f->mf->size);
	fetch_finish(f, 0);
}

static void
take_chunk(struct peer *p, uint64_t index, const proto_msg *m)
{
	struct fetch *f = p->f;
	size_t len = proto_chunk_len(f->mf->size, f->mf->chunk_size, index);
	int rc;

	p->inflight_bytes -= len < p->inflight_bytes ? len : p->inflight_bytes;
	unask(f, index);
	/* After a failure (a full disk, say) the fetch is over: later chunks
	 * already in the buffers are not written, nor reported again. A
	 * chunk already done came twice in the endgame: the copy is dropped. */
	if (f->done || f->state[index] == CHUNK_DONE)
		return;
	rc = proto_manifest_check_chunk(f->mf, index, m->data, m->data_len);
	if (rc != 0) {
		peer_fail(p, 1, "%s: chunk %llu failed verification", p->addr,
		    (unsigned long long)index);
		return;
	}
	f->state[index] = CHUNK_DONE;
	f->ndone++;
	f->chunks_fetched++;
	p->chunks++;
	f->last_progress = time(NULL);
	if (f->window == NULL)
		write_out(f, m->data, m->data_len,
		    index * (uint64_t)f->mf->chunk_size);
	else if (index == f->next_write) {
		write_out(f, m->data, m->data_len, 0);
		f->next_write++;
		flush_window(f);
	} else {
		uint8_t *copy = malloc(m->data_len ? m->data_len : 1);
		if (copy == NULL) {
			tool_log(LOG_ERROR, "out of memory");
			fetch_finish(f, 1);
			return;
		}
		memcpy(copy, m->data, m->data_len);
		f->window[index % f->window_chunks] = copy;
	}
	if (!f->done && f->ndone == f->mf->nchunks)
		complete(f);
}

/* Marks the chunks FILE.part already holds intact; returns their count. */
static uint64_t
resume_part(struct fetch *f)
{
	const proto_manifest *mf = f->mf;
	uint8_t *buf = malloc(mf->chunk_size ? mf->chunk_size : 1);
	struct stat st;
	uint64_t kept = 0;

	if (buf == NULL || fstat(f->out_fd, &st) != 0) {
		free(buf);
		return 0;
	}
	for (uint64_t i = 0; i < mf->nchunks; i++) {
		uint64_t off = i * (uint64_t)mf->chunk_size;
		size_t len = proto_chunk_len(mf->size, mf->chunk_size, i);
		off_t data;
		if (off + len > (uint64_t)st.st_size || len == 0)
			break;
		/* Never-written ranges are holes: nothing to hash there. */
		data = lseek(f->out_fd, (off_t)off, SEEK_DATA);
		if (data < 0 || (uint64_t)data >= off + len)
			continue;
		if (pread(f->out_fd, buf, len, (off_t)off) != (ssize_t)len)
			break;
		if (proto_manifest_check_chunk(mf, i, buf, len) == 0) {
			f->state[i] = CHUNK_DONE;
			kept++;
		}
	}
	free(buf);
	return kept;
}

static int
adopt_manifest(struct fetch *f, proto_manifest *mf)
{
	f->mf = mf;
	if ((f->state = calloc(mf->nchunks, 1)) == NULL ||
	    (f->asked = calloc(mf->nchunks, 1)) == NULL)
		return -1;
	if (f->part_path != NULL) {
		/* Never through a link someone left in our place: a .part
		 * is ours, a regular file, or not opened at all. */
		f->out_fd = open(f->part_path, O_RDWR | O_CREAT | O_CLOEXEC |
		    O_NOFOLLOW, 0644);
		if (f->out_fd < 0) {
			tool_log(LOG_ERROR, "%s: %s", f->part_path,
			    strerror(errno));
			return -1;
		}
		f->chunks_resumed = resume_part(f);
		f->ndone = f->chunks_resumed;
		if (f->chunks_resumed > 0)
			tool_log(LOG_INFO, "%s: %llu of %llu chunks already "
			    "there", f->part_path,
			    (unsigned long long)f->chunks_resumed,
			    (unsigned long long)mf->nchunks);
	} else {
		f->window_chunks = WINDOW_BYTES / mf->chunk_size;
		if (f->window_chunks < 2)
			f->window_chunks = 2;
		f->window = calloc(f->window_chunks, sizeof(*f->window));
		if (f->window == NULL)
			return -1;
	}
	if (f->ndone == mf->nchunks)
		complete(f);
	return 0;
}

static void
on_manifest(struct peer *p, proto_msg *m)
{
	struct fetch *f = p->f;

	if (memcmp(m->manifest->id, f->id, PROTO_HASH_LEN) != 0) {
		peer_fail(p, 1, "%s: sent the manifest of another file",
		    p->addr);
		return;
	}
	p->has_file = 1;
	if (f->mf == NULL && f->max_file_size > 0 &&
	    m->manifest->size > f->max_file_size) {
		tool_log(LOG_ERROR, "%s: %llu bytes, over storage.max_file_size "
		    "(%llu)", f->hex, (unsigned long long)m->manifest->size,
		    (unsigned long long)f->max_file_size);
		fetch_finish(f, 1);
		return;
	}
	if (f->mf == NULL) {
		f->last_progress = time(NULL);
		if (adopt_manifest(f, m->manifest) != 0) {
			m->manifest = NULL;
			fetch_finish(f, 1);
			return;
		}
		m->manifest = NULL; /* taken */
		tool_log(LOG_INFO, "%s: %s, %llu bytes in %llu chunks, from %s",
		    f->hex, f->mf->name, (unsigned long long)f->mf->size,
		    (unsigned long long)f->mf->nchunks, p->addr);
		pump_all(f);
	} else
		pump(p);
}

static void
print_entry_json(const char *hex, const proto_list_entry *e)
{
	struct tool_json j;

	fflush(stdout);
	tool_json_start(&j);
	tool_json_str(&j, "id", hex, PROTO_ID_HEX_LEN);
	tool_json_uint(&j, "size", e->size);
	tool_json_str(&j, "name", e->name, e->name_len);
	if (tool_json_finish(&j, STDOUT_FILENO) != 0 && errno != EPIPE)
		tool_log(LOG_ERROR, "write: %s", strerror(errno));
}

static void
print_list(struct peer *p, const proto_msg *m)
{
	char hex[PROTO_ID_HEX_LEN + 1], name[PROTO_NAME_MAX + 1];

	for (size_t i = 0; i < m->nentries; i++) {
		const proto_list_entry *e = &m->entries[i];
		proto_hex_encode(e->id, PROTO_HASH_LEN, hex);
		if (tool_opt.json) {
			print_entry_json(hex, e);
			continue;
		}
		tool_printable(e->name, e->name_len, name, sizeof(name));
		/* A tab in a name would split the line's fields. */
		for (char *t = name; *t; t++)
			if (*t == '\t')
				*t = '?';
		printf("%s\t%llu\t%s\n", hex, (unsigned long long)e->size, name);
	}
	if (fflush(stdout) != 0 && errno != EPIPE)
		tool_log(LOG_ERROR, "write: %s", strerror(errno));
	(void)p;
	fetch_finish(p->f, 0);
}

static void
on_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct peer *p = arg;
	struct request r;

	(void)c;
	if (p->count == 0) {
		peer_fail(p, 1, "%s: sent an unrequested %s", p->addr,
		    proto_msg_type_name(m->type));
		return;
	}
	r = p->queue[p->head];
	if (m->rid != r.rid) {
		peer_fail(p, 1, "%s: answered out of order", p->addr);
		return;
	}
	p->head = (p->head + 1) % PEER_INFLIGHT_MAX;
	p->count--;
	if (m->type == PROTO_MSG_ERROR) {
		char text[PROTO_ERROR_TEXT_MAX + 1];
		tool_printable(m->text, m->text_len, text, sizeof(text));
		if (r.kind == REQ_CHUNK) {
			/* The file may have changed under the peer. */
			p->queue[(p->head + PEER_INFLIGHT_MAX - 1) %
			    PEER_INFLIGHT_MAX] = r;
			p->count++;
			peer_fail(p, 1, "%s: chunk %llu refused: %s", p->addr,
			    (unsigned long long)r.index, text);
			return;
		}
		if (m->code == PROTO_CODE_NOT_FOUND && r.kind == REQ_MANIFEST)
			p->f->not_found++;
		peer_fail(p, 0, "%s: %s", p->addr, text);
		return;
	}
	switch (r.kind) {
	case REQ_LIST:
		if (m->type != PROTO_MSG_LIST_REPLY)
			break;
		print_list(p, m);
		return;
	case REQ_MANIFEST:
		if (m->type != PROTO_MSG_MANIFEST)
			break;
		on_manifest(p, m);
		return;
	case REQ_CHUNK:
		if (m->type != PROTO_MSG_CHUNK)
			break;
		take_chunk(p, r.index, m);
		if (p->state == PEER_READY)
			pump(p);
		return;
	}
	peer_fail(p, 1, "%s: answered with %s", p->addr,
	    proto_msg_type_name(m->type));
}

static void
on_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct peer *p = arg;

	(void)c;
	(void)hello;
	p->state = PEER_READY;
	tool_log(LOG_DEBUG, "%s: connected to %s", p->addr,
	    proto_conn_peer_name(c));
	if (send_request(p, p->f->listing ? REQ_LIST : REQ_MANIFEST, 0) != 0)
		peer_fail(p, 0, "%s: cannot send", p->addr);
}

static void
on_close(proto_conn *c, int err, void *arg)
{
	struct peer *p = arg;

	(void)c;
	p->line_lost = p->state == PEER_READY && p->has_file &&
	    (err == PROTO_ERR_CLOSED || err == PROTO_ERR_SYSTEM);
	if (err == PROTO_ERR_SYSTEM && p->state == PEER_CONNECTING)
		peer_fail(p, 0, "connect %s: %s", p->addr, strerror(errno));
	else if (err == PROTO_ERR_SYSTEM)
		peer_fail(p, 0, "%s: %s", p->addr, strerror(errno));
	else if (err == PROTO_ERR_TIMEOUT && p->state == PEER_CONNECTING)
		peer_fail(p, 0, "connect %s: timed out", p->addr);
	else if (err == PROTO_ERR_CLOSED || err == PROTO_ERR_TIMEOUT)
		peer_fail(p, 0, "%s: %s", p->addr, proto_strerror(err));
	else
		peer_fail(p, 1, "%s: protocol error: %s", p->addr,
		    proto_strerror(err));
}

/* A peer that owes us answers and sends nothing for the timeout is gone;
 * one that owes nothing may idle. */
static int
on_idle(proto_conn *c, void *arg)
{
	struct peer *p = arg;

	(void)c;
	return p->count == 0;
}

static unsigned
alive_peers(const struct fetch *f)
{
	unsigned n = 0;

	for (size_t i = 0; i < f->npeers; i++)
		n += peer_alive(f->peers[i]);
	return n;
}

static const proto_conn_cbs peer_cbs = { on_ready, on_msg, on_close,
    on_idle };

static void
connect_peer(struct peer *p)
{
	p->state = PEER_CONNECTING;
	p->has_file = 0;
	p->line_lost = 0;
	p->conn = proto_conn_connect(p->f->base, (struct sockaddr *)&p->ss,
	    p->sslen, &p->f->cfg, &peer_cbs, p);
	if (p->conn == NULL) {
		peer_fail(p, 0, "connect %s: %s", p->addr, strerror(errno));
		return;
	}
	proto_conn_set_idle_timeout(p->conn, p->f->timeout);
	tool_log(LOG_DEBUG, "%s: connecting", p->addr);
}

static void
reconnect(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;

	(void)fd;
	(void)what;
	if (p->state == PEER_RETRYING && !p->f->done)
		connect_peer(p);
}

static void
add_peer(struct fetch *f, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *why;
	struct peer *p;

	for (size_t i = 0; i < f->npeers; i++)
		if (strcmp(f->peers[i]->addr, addr) == 0)
			return;
	if (alive_peers(f) >= f->max_peers) {
		tool_log(LOG_DEBUG, "%s: ignored: %u peers already", addr,
		    f->max_peers);
		return;
	}
	if (tool_resolve(addr, &ss, &sslen, &why) != 0) {
		tool_log(LOG_WARN, "peer '%s': %s", addr, why);
		return;
	}
	if (f->npeers == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 8;
		struct peer **np = realloc(f->peers, cap * sizeof(*np));
		if (np == NULL)
			tool_die(1, "out of memory");
		f->peers = np;
		f->cap = cap;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->addr = strdup(addr)) == NULL)
		tool_die(1, "out of memory");
	p->f = f;
	p->ss = ss;
	p->sslen = sslen;
	if ((p->retry_ev = evtimer_new(f->base, reconnect, p)) == NULL)
		tool_die(1, "out of memory");
	f->peers[f->npeers++] = p;
	connect_peer(p);
}

static void
take_line(struct fetch *f, char *line)
{
	char *end = line + strcspn(line, "\t \r\n");

	*end = '\0';
	if (line[0] == '\0' || line[0] == '#')
		return;
	add_peer(f, line);
}

static void
stdin_ready(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	char buf[4096];
	ssize_t n;

	(void)what;
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (f->linelen > 0) {
			f->line[f->linelen] = '\0';
			take_line(f, f->line);
			f->linelen = 0;
		}
		if (f->stdin_ev)
			event_del(f->stdin_ev);
		f->stdin_open = 0;
		check_exhausted(f);
		return;
	}
	for (ssize_t i = 0; i < n && !f->done; i++) {
		if (buf[i] == '\n') {
			f->line[f->linelen] = '\0';
			take_line(f, f->line);
			f->linelen = 0;
		} else if (f->linelen + 1 < sizeof(f->line))
			f->line[f->linelen++] = buf[i];
	}
}

/* 1 when epoll can watch fd: a pipe or a socket, not a file or device. */
static int
is_pollable(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) ||
	    S_ISSOCK(st.st_mode));
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;

	(void)fd;
	(void)what;
	/* Bytes still arriving are progress too: a slow peer's chunk may take
	 * longer than the timeout and still be on its way. A trickle is not:
	 * a peer dripping a byte now and then must not hold the fetch. */
	{
		uint64_t seen = 0;
		for (size_t i = 0; i < f->npeers; i++)
			if (f->peers[i]->conn)
				seen += proto_conn_bytes_seen(f->peers[i]->conn);
		if (seen < f->bytes_seen || seen - f->bytes_seen >= PROGRESS_MIN) {
			f->bytes_seen = seen;
			f->last_progress = time(NULL);
		}
	}
	if (f->done || time(NULL) - f->last_progress < (time_t)f->timeout)
		return;
	if (f->mf == NULL && f->not_found > 0)
		tool_log(LOG_ERROR, "%s: not found on any peer", f->hex);
	else if (f->mf == NULL) {
		for (size_t i = 0; i < f->npeers; i++)
			if (peer_alive(f->peers[i]))
				tool_log(LOG_ERROR, "%s: no answer within %u s",
				    f->peers[i]->addr, f->timeout);
		tool_log(LOG_ERROR, "%s: no peer answered within %u s", f->hex,
		    f->timeout);
	}
	else
		tool_log(LOG_ERROR, "%s: no progress for %u s; %llu of %llu "
		    "chunks missing%s", f->hex, f->timeout,
		    (unsigned long long)(f->mf->nchunks - f->ndone),
		    (unsigned long long)f->mf->nchunks,
		    f->part_path ? " (partial file kept)" : "");
	fetch_finish(f, 1);
}

/* The bytes in: those kept from FILE.part, and those read from peers so
 * far (of chunks not yet whole too, so that big chunks at a low rate still
 * move the line). */
static uint64_t
progress_done(const struct fetch *f)
{
	uint64_t n = f->bytes_in;

	if (f->mf == NULL)
		return 0;
	if (f->ndone == f->mf->nchunks)
		return f->mf->size;
	for (size_t i = 0; i < f->npeers; i++)
		if (f->peers[i]->conn)
			n += proto_conn_bytes_read(f->peers[i]->conn);
	n += f->chunks_resumed * (uint64_t)f->mf->chunk_size;
	return n < f->mf->size ? n : f->mf->size;
}

static void
show_progress(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;

	(void)fd;
	(void)what;
	tool_progress_update(&f->progress, progress_done(f),
	    f->mf ? f->mf->size : 0, (int)alive_peers(f));
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct fetch *f = arg;

	(void)what;
	tool_log(LOG_ERROR, "interrupted by %s%s", strsignal((int)sig),
	    f->part_path ? " (partial file kept)" : "");
	fetch_finish(f, 1);
}

static void
start_progress(struct fetch *f)
{
	struct timeval quarter = { 0, 250000 };

	tool_progress_start(&f->progress, NULL);
	if (!f->progress.on)
		return;
	f->progress_ev = event_new(f->base, -1, EV_PERSIST, show_progress, f);
	if (f->progress_ev == NULL || event_add(f->progress_ev, &quarter) != 0)
		tool_die(1, "out of memory");
}

static void
fetch_finish(struct fetch *f, int code)
{
	if (f->done)
		return;
	f->done = 1;
	f->exit_code = code;
	event_base_loopbreak(f->base);
}

static void
print_stats_json(struct fetch *f)
{
	struct tool_json j;
	uint64_t used_peers = 0;

	tool_json_start(&j);
	tool_json_str(&j, "tool", tool_name, strlen(tool_name));
	tool_json_uint(&j, "bytes_in", f->bytes_in);
	tool_json_uint(&j, "chunks_fetched", f->chunks_fetched);
	tool_json_uint(&j, "chunks_resumed", f->chunks_resumed);
	for (size_t i = 0; i < f->npeers; i++)
		used_peers += f->peers[i]->chunks > 0;
	tool_json_uint(&j, "peers_used", used_peers);
	tool_json_uint(&j, "peers_dropped", f->peers_dropped);
	tool_json_open(&j, "from", '[');
	for (size_t i = 0; i < f->npeers; i++) {
		if (f->peers[i]->chunks == 0)
			continue;
		tool_json_open(&j, NULL, '{');
		tool_json_str(&j, "peer", f->peers[i]->addr,
		    strlen(f->peers[i]->addr));
		tool_json_uint(&j, "chunks", f->peers[i]->chunks);
		tool_json_close(&j, '}');
	}
	tool_json_close(&j, ']');
	tool_json_uint(&j, "exit", (uint64_t)f->exit_code);
	(void)tool_json_finish(&j, STDERR_FILENO);
}

static void
print_stats(struct fetch *f)
{
	char from[4096] = "";
	size_t used = 0, used_peers = 0;

	if (tool_opt.json) {
		print_stats_json(f);
		return;
	}
	for (size_t i = 0; i < f->npeers; i++) {
		struct peer *p = f->peers[i];
		if (p->chunks == 0)
			continue;
		used_peers++;
		if (used < sizeof(from))
			used += (size_t)snprintf(from + used,
			    sizeof(from) - used, "%s%s/%llu", used ? "," : "",
			    p->addr, (unsigned long long)p->chunks);
	}
	fprintf(stderr, "p2p-fetch: stats bytes_in=%llu chunks_fetched=%llu "
	    "chunks_resumed=%llu peers_used=%zu peers_dropped=%llu from=%s\n",
	    (unsigned long long)f->bytes_in,
	    (unsigned long long)f->chunks_fetched,
	    (unsigned long long)f->chunks_resumed, used_peers,
	    (unsigned long long)f->peers_dropped, used ? from : "-");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "peer", required_argument, NULL, 'p' },
		{ "output", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "max-peers", required_argument, NULL, 'M' },
		{ "list", no_argument, NULL, 'L' },
		{ "stats", no_argument, NULL, 'S' },
		TOOL_LONGOPT_PROGRESS,
		TOOL_LONGOPT_JSON,
		TOOL_LONGOPTS_RATES,
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static struct fetch fetch;
	struct fetch *f = &fetch;
	struct tool_config config;
	struct event *sigint, *sigterm;
	struct timeval second = { 1, 0 };
	static const char **peer_args; /* static: reachable at any exit */
	const char *env;
	int ch, npeer_args = 0, read_stdin = 0;

	tool_init("p2p-fetch", LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	tool_raise_fd_limit();
	f->timeout = DEFAULT_TIMEOUT;
	f->max_peers = DEFAULT_MAX_PEERS;
	f->out_fd = STDOUT_FILENO;
	tool_config_load(argc, argv, &config);
	if (config.has_max_peers)
		f->max_peers = config.max_peers;
	if (config.has_connection_timeout)
		f->timeout = config.connection_timeout;
	if (config.has_max_file_size)
		f->max_file_size = config.max_file_size;
	if ((env = getenv("MINI_P2P_TIMEOUT")) != NULL && *env)
		f->timeout = (unsigned)tool_parse_number(env, 1, 3600,
		    "MINI_P2P_TIMEOUT");
	if ((env = getenv("MINI_P2P_MAX_PEERS")) != NULL && *env)
		f->max_peers = (unsigned)tool_parse_number(env, 1, 100000,
		    "MINI_P2P_MAX_PEERS");
	if ((peer_args = calloc((size_t)argc, sizeof(*peer_args))) == NULL)
		tool_die(1, "out of memory");
	while ((ch = getopt_long(argc, argv, "p:o:T:qvhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (strcmp(optarg, "-") == 0) {
				read_stdin = 1;
				break;
			}
			{
				struct sockaddr_storage ss;
				socklen_t len;
				const char *why;
				if (tool_resolve(optarg, &ss, &len, &why) != 0)
					tool_die(2, "peer '%s': %s", optarg,
					    why);
			}
			peer_args[npeer_args++] = optarg;
			break;
		case 'o':
			f->out_path = optarg;
			break;
		case 'T':
			f->timeout = (unsigned)tool_parse_number(optarg, 1,
			    3600, "timeout");
			break;
		case 'M':
			f->max_peers = (unsigned)tool_parse_number(optarg, 1,
			    100000, "max peers");
			break;
		case 'L':
			f->listing = 1;
			break;
		case 'S':
			f->stats = 1;
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
	if (f->listing) {
		if (argc != 0 || npeer_args != 1 || read_stdin || f->out_path) {
			usage(stderr);
			return 2;
		}
	} else {
		if (argc != 1) {
			usage(stderr);
			return 2;
		}
		tool_parse_id(argv[0], f->id);
		proto_hex_encode(f->id, PROTO_HASH_LEN, f->hex);
		if (npeer_args == 0)
			read_stdin = 1;
		if (f->out_path == NULL && isatty(STDOUT_FILENO))
			tool_die(2, "refusing to write a file to a terminal; "
			    "use -o FILE or redirect stdout");
		if (f->out_path != NULL) {
			if (f->out_path[0] == '\0')
				tool_die(2, "output file name is empty");
			if (asprintf(&f->part_path, "%s.part", f->out_path) < 0)
				tool_die(1, "out of memory");
		}
	}
	if (read_stdin && isatty(STDIN_FILENO))
		tool_die(2, "no peers: give -p HOST:PORT, or pipe HOST:PORT "
		    "lines in (p2p-discover | p2p-fetch ID)");
	f->cfg.node_name = tool_hostname();
	f->cfg.timeout = f->timeout;
	f->last_progress = time(NULL);
	if ((f->base = event_base_new()) == NULL ||
	    (f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, f)) == NULL ||
	    event_add(f->tick, &second) != 0)
		tool_die(1, "out of memory");
	f->cfg.limit = tool_conn_limit(f->base);
	if (!f->listing)
		start_progress(f);
	if (read_stdin && !is_pollable(STDIN_FILENO)) {
		/* epoll cannot watch a file: read its lines now. */
		f->stdin_open = 1;
		while (f->stdin_open && !f->done)
			stdin_ready(STDIN_FILENO, EV_READ, f);
	} else if (read_stdin) {
		evutil_make_socket_nonblocking(STDIN_FILENO);
		f->stdin_ev = event_new(f->base, STDIN_FILENO,
		    EV_READ | EV_PERSIST, stdin_ready, f);
		if (f->stdin_ev == NULL || event_add(f->stdin_ev, NULL) != 0)
			tool_die(1, "stdin: cannot read peers from it");
		f->stdin_open = 1;
	}
	sigint = evsignal_new(f->base, SIGINT, on_signal, f);
	sigterm = evsignal_new(f->base, SIGTERM, on_signal, f);
	if (sigint == NULL || sigterm == NULL || event_add(sigint, NULL) ||
	    event_add(sigterm, NULL))
		tool_die(1, "cannot watch signals");
	for (int i = 0; i < npeer_args && !f->done; i++)
		add_peer(f, peer_args[i]);
	if (!f->done)
		check_exhausted(f);
	if (!f->done)
		event_base_dispatch(f->base);
	for (size_t i = 0; i < f->npeers; i++)
		peer_close(f->peers[i]);
	tool_conn_limit_free();
	if (f->progress_ev != NULL) {
		tool_progress_end(&f->progress, progress_done(f),
		    f->mf ? f->mf->size : 0, -1);
		event_free(f->progress_ev);
	}
	if (f->stats)
		print_stats(f);
	for (size_t i = 0; i < f->npeers; i++) {
		if (f->peers[i]->retry_ev)
			event_free(f->peers[i]->retry_ev);
		free(f->peers[i]->addr);
		free(f->peers[i]);
	}
	if (f->part_path != NULL && f->out_fd >= 0 && f->out_fd !=
	    STDOUT_FILENO)
		close(f->out_fd);
	for (uint64_t i = 0; f->window && i < f->window_chunks; i++)
		free(f->window[i]);
	free(f->window);
	free(f->peers);
	free(f->state);
	free(f->asked);
	free(f->part_path);
	free(peer_args);
	proto_manifest_free(f->mf);
	event_free(sigint);
	event_free(sigterm);
	event_free(f->tick);
	if (f->stdin_ev)
		event_free(f->stdin_ev);
	event_base_free(f->base);
	return f->exit_code;
}
