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
 *
 * Writing to a file, the fetch is a peer too: it listens, serves the chunks
 * it has verified from FILE.part, tells its peers (HAVE) as it gets more,
 * and with --seed keeps serving once complete. It asks each peer what it
 * holds (INTERESTED, HAVE_MAP), asks for the rarest chunks first, learns
 * more peers from the ones it has (PEERS) and from those that connect to
 * it, and cancels the copies the endgame asked for once one arrives.
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

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <event2/event.h>

#include "tls.h"
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
#define REQUEST_FRAME_MAX 16384        /* what peers may send our server */
#define LOCAL_ADDRS_MAX 32
#define MANIFEST_TRIES 40               /* of a learned peer, a tick apart */
#define LEARNED_MAX 8                  /* peers at once found through others:
                                        * enough to swarm, few enough that
                                        * a hundred fetchers do not all
                                        * connect to each other */

enum peer_state { PEER_CONNECTING, PEER_READY, PEER_RETRYING, PEER_GONE };
enum req_kind { REQ_MANIFEST, REQ_CHUNK, REQ_LIST, REQ_INTERESTED,
    REQ_PEERS };

struct request {
	uint32_t rid;
	enum req_kind kind;
	uint64_t index;
	int cancelled;      /* a CANCEL went after it */
};

struct peer {
	struct fetch *f;
	char *addr;
	proto_conn *conn;
	enum peer_state state;
	struct sockaddr_storage ss;     /* where it listens, for reconnecting */
	uint8_t pin[PROTO_IDENTITY_LEN]; /* the identity it must show */
	int has_pin;
	int learned;                    /* from another peer, not the user */
	int manifest_wait;              /* to ask again for the manifest */
	unsigned manifest_tries;
	socklen_t sslen;
	struct event *retry_ev;
	unsigned retries;
	int line_lost;                  /* cut or reset while ready: worth
	                                 * reconnecting; silence is not */
	int has_file;
	int swarm;          /* it tells what it holds (PROTO_CAP_SWARM) */
	int mapped;         /* ... and its HAVE_MAP came */
	int whole;          /* it holds the whole file */
	int asking_peers;   /* a PEERS request is out */
	proto_have theirs;  /* what it holds, in its chunk size */
	uint32_t their_chunk_size;
	proto_have has;     /* the same in ours, when not whole */
	uint64_t cursor;    /* where its rarest-first scan goes on */
	struct request queue[PEER_INFLIGHT_MAX]; /* answers come in order */
	unsigned head, count;
	size_t inflight_bytes;
	uint64_t chunks;
	char why[400];  /* why it went, for the final message */
};

struct fetch {
	struct event_base *base;
	uint8_t id[PROTO_HASH_LEN];
	char hex[PROTO_ID_HEX_LEN + 1];
	proto_manifest *mf;
	proto_picker pk;
	proto_have have;            /* the chunks we hold */
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
	/* sharing what we have */
	int share, seed, seeding;
	const char *bind_addr;
	uint16_t share_port;
	proto_store *store;
	proto_server *server;
	proto_beacon_config disco;
	char local[LOCAL_ADDRS_MAX][INET6_ADDRSTRLEN];
	size_t nlocal;
	/* progress and outcome */
	struct event *tick;
	time_t last_progress;
	int listing, stats, exit_code, done;
	unsigned not_found;
	uint64_t bytes_in, chunks_fetched, chunks_resumed, peers_dropped;
	uint64_t cancels, wasted;
	double last_chunk;          /* when the last chunk was verified */
	uint64_t bytes_seen;        /* at the last tick, over live peers */
	proto_conn_config cfg;
	struct tool_progress progress;
	struct event *progress_ev;
};

static void fetch_finish(struct fetch *f, int code);
static void pump(struct peer *p);
static void add_peer(struct fetch *f, const char *addr, int learned);
static unsigned alive_peers(const struct fetch *f);
static unsigned learned_peers(const struct fetch *f);
static unsigned partial_peers(const struct fetch *f);

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-fetch [-qv] [-p HOST:PORT]... [-o FILE] [-T SECONDS]\n"
	    "                 [--max-peers N] [--seed] [--no-share] [--port PORT]\n"
	    "                 [--bind ADDR] [--max-download-rate RATE]\n"
	    "                 [--max-upload-rate RATE] [--progress] [--stats]\n"
	    "                 [--json] [--config FILE] [--no-tls]\n"
	    "                 [--identity FILE] [--secret-file FILE] ID\n"
	    "       p2p-fetch --list [--json] -p HOST:PORT\n"
	    "  -p, --peer [ID@]HOST:PORT  fetch from this peer (repeat for more);\n"
	    "                         with ID, only if it shows that identity; '-'\n"
	    "                         or no -p at all: read HOST:PORT lines on stdin\n"
	    "  -o, --output FILE      write to FILE (through FILE.part, resumable)\n"
	    "                         instead of stdout\n"
	    "  -T, --timeout SECONDS  connect timeout, and the longest wait with no\n"
	    "                         progress (default 30, or MINI_P2P_TIMEOUT)\n"
	    "      --max-peers N      peers at once, each way (default %d, or\n"
	    "                         MINI_P2P_MAX_PEERS)\n"
	    "      --seed             with -o: once complete, go on serving the file\n"
	    "                         until interrupted\n"
	    "      --no-share         with -o: do not serve the chunks fetched so far\n"
	    "                         to other peers (by default a fetch to a file\n"
	    "                         does)\n"
	    "      --port PORT        TCP port to serve on (default 0: any)\n"
	    "      --bind ADDR        address to serve on (default 0.0.0.0)\n"
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
	    TOOL_TLS_USAGE
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

/* What p holds, for the picker: NULL for the whole file. */
static const proto_have *
peer_have(const struct peer *p)
{
	return p->whole ? NULL : &p->has;
}

/* One request of p's for chunk i is over, answered or not. */
static void
finish_chunk_request(struct peer *p, uint64_t i)
{
	struct fetch *f = p->f;
	size_t len = proto_chunk_len(f->mf->size, f->mf->chunk_size, i);

	p->inflight_bytes -= len < p->inflight_bytes ? len : p->inflight_bytes;
	proto_picker_unask(&f->pk, i);
}

/* Chunks a peer was asked for go back to the pool. */
static void
release_requests(struct peer *p)
{
	struct fetch *f = p->f;

	for (unsigned i = 0; i < p->count; i++) {
		struct request *r = &p->queue[(p->head + i) % PEER_INFLIGHT_MAX];
		if (r->kind == REQ_CHUNK)
			proto_picker_unask(&f->pk, r->index);
	}
	p->count = 0;
	p->inflight_bytes = 0;
}

/* What p held no longer counts towards any chunk's rarity. */
static void
forget_map(struct peer *p)
{
	if (p->mapped && !p->whole && p->f->mf != NULL)
		proto_picker_remove_holder(&p->f->pk, &p->has);
	proto_have_free(&p->has);
	proto_have_free(&p->theirs);
	p->mapped = p->whole = 0;
}

static void
peer_close(struct peer *p)
{
	struct fetch *f = p->f;

	if (p->state == PEER_GONE)
		return;
	if (f->mf != NULL)
		release_requests(p);
	forget_map(p);
	p->count = 0;
	p->asking_peers = 0;
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

	if (f->done || f->seeding)
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
		    (unsigned long long)(f->mf->nchunks - f->pk.ndone),
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
	    !p->f->seeding && p->retry_ev != NULL) {
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
	static const unsigned types[] = { PROTO_MSG_GET_MANIFEST,
	    PROTO_MSG_GET_CHUNK, PROTO_MSG_LIST, PROTO_MSG_INTERESTED,
	    PROTO_MSG_PEERS };
	struct fetch *f = p->f;
	struct request *r;
	proto_msg m;

	if (p->count == PEER_INFLIGHT_MAX)
		return -1;
	r = &p->queue[(p->head + p->count) % PEER_INFLIGHT_MAX];
	/* rid 0 is what pushed messages (HAVE) carry. */
	if (f->next_rid == 0)
		f->next_rid = 1;
	r->rid = f->next_rid++;
	r->kind = kind;
	r->index = index;
	r->cancelled = 0;
	proto_msg_init(&m, types[kind]);
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
asked_of(uint64_t index, void *arg)
{
	const struct peer *p = arg;

	for (unsigned i = 0; i < p->count; i++) {
		const struct request *r =
		    &p->queue[(p->head + i) % PEER_INFLIGHT_MAX];
		if (r->kind == REQ_CHUNK && r->index == index)
			return 1;
	}
	return 0;
}

/*
 * The next chunk to ask p for, or -1: the rarest it holds, or the lowest
 * missing one within the window when writing in order to stdout. When
 * none is missing, the endgame: a chunk still out at other peers, asked
 * again here, so that slow or stalled peers cannot hold up the end of the
 * file; the first copy to arrive is kept and the others cancelled.
 */
static int64_t
pick_chunk(struct fetch *f, struct peer *p)
{
	uint64_t limit = f->mf->nchunks;

	if (f->window != NULL && f->next_write + f->window_chunks < limit)
		limit = f->next_write + f->window_chunks;
	/* Among other fetchers, ties are broken at random for every pick: a
	 * fetcher moving through the file in order would soon walk into the
	 * run another is fetching from the same seed, unseen until it
	 * arrives. Alone with seeds, in order, for the disk's sake. */
	if (f->window == NULL && partial_peers(f) > 0)
		p->cursor = (uint64_t)random() % f->mf->nchunks;
	return proto_picker_pick(&f->pk, peer_have(p), &p->cursor, limit,
	    f->window != NULL, asked_of, p);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Nothing verified for a second: any source is worth asking. */
static int
stalled(const struct fetch *f)
{
	return now_s() - f->last_chunk > 1.0;
}

/*
 * 1 when chunk i is better not asked of p now: a copy the endgame would
 * ask for twice while p is busy, or a chunk other fetchers hold asked of a
 * seed. A seed's upload goes to the chunks only it has, and the rest
 * passes between the fetchers; only when they bring nothing for a second
 * is the seed asked for those too.
 */
static int
spare(const struct fetch *f, const struct peer *p, uint64_t i)
{
	if (f->pk.state[i] == PROTO_CHUNK_INFLIGHT)
		return p->inflight_bytes > 0;
	return p->whole && f->pk.avail[i] > 0 && !stalled(f);
}

/* Peers that hold part of the file and say which. */
static unsigned
partial_peers(const struct fetch *f)
{
	unsigned n = 0;

	for (size_t i = 0; i < f->npeers; i++)
		n += f->peers[i]->state == PEER_READY &&
		    f->peers[i]->mapped && !f->peers[i]->whole;
	return n;
}

static void
pump(struct peer *p)
{
	struct fetch *f = p->f;
	size_t min_inflight = 2 * (size_t)f->mf->chunk_size;
	size_t budget = PEER_INFLIGHT_BYTES > min_inflight ?
	    PEER_INFLIGHT_BYTES : min_inflight;

	/* Beside other fetchers, a seed is asked for two chunks at a time:
	 * a long queue there hides from them what is on its way to us, and
	 * they would ask the seed for the same chunks. */
	if (p->whole && partial_peers(f) > 0)
		budget = min_inflight;

	if (p->state != PEER_READY || !p->has_file || f->done || f->seeding ||
	    (p->swarm && !p->mapped))
		return;
	/* The count cap keeps the first peer to answer from taking every
	 * small chunk before the others are ready. */
	while (p->count < PEER_INFLIGHT_CHUNKS && p->inflight_bytes < budget) {
		int64_t i = pick_chunk(f, p);
		if (i < 0 || spare(f, p, (uint64_t)i))
			break;
		if (send_request(p, REQ_CHUNK, (uint64_t)i) != 0) {
			peer_fail(p, 0, "%s: cannot send", p->addr);
			return;
		}
		proto_picker_asked(&f->pk, (uint64_t)i);
		p->inflight_bytes += proto_chunk_len(f->mf->size,
		    f->mf->chunk_size, (uint64_t)i);
	}
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

/* With --seed the node stays to serve the whole file: the peers it fetched
 * from are no longer needed. */
static void
start_seeding(struct fetch *f)
{
	f->seeding = 1;
	proto_store_set_have(f->store, f->id, NULL);
	for (size_t i = 0; i < f->npeers; i++) {
		struct peer *p = f->peers[i];
		if (p->retry_ev)
			evtimer_del(p->retry_ev);
		peer_close(p);
	}
	tool_log(LOG_INFO, "%s: seeding on port %u until interrupted", f->hex,
	    proto_server_port(f->server));
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
	if (f->seed && f->server != NULL)
		start_seeding(f);
	else
		fetch_finish(f, 0);
}

/* Chunk index came from p: the requests other peers still have out for it
 * are cancelled (those that answer anyway have their copy dropped). */
static void
cancel_copies(struct fetch *f, const struct peer *from, uint64_t index)
{
	for (size_t k = 0; k < f->npeers; k++) {
		struct peer *q = f->peers[k];
		if (q == from || q->state != PEER_READY || !q->swarm)
			continue;
		for (unsigned i = 0; i < q->count; i++) {
			struct request *r =
			    &q->queue[(q->head + i) % PEER_INFLIGHT_MAX];
			proto_msg m;
			if (r->kind != REQ_CHUNK || r->index != index ||
			    r->cancelled)
				continue;
			proto_msg_init(&m, PROTO_MSG_CANCEL);
			m.rid = r->rid;
			if (proto_conn_send(q->conn, &m) == 0) {
				r->cancelled = 1;
				f->cancels++;
			}
		}
	}
}

/* A verified chunk: ours now, and offered to our peers. */
static void
keep_chunk(struct fetch *f, uint64_t index)
{
	proto_picker_done(&f->pk, index);
	if (f->store == NULL)
		return;
	proto_have_set(&f->have, index);
	proto_server_have(f->server, f->id, index);
}

static void
take_chunk(struct peer *p, uint64_t index, const proto_msg *m)
{
	struct fetch *f = p->f;
	int rc;

	finish_chunk_request(p, index);
	/* After a failure (a full disk, say) the fetch is over: later chunks
	 * already in the buffers are not written, nor reported again. A
	 * chunk already done came twice in the endgame: the copy is dropped. */
	if (f->done || f->seeding)
		return;
	if (f->pk.state[index] == PROTO_CHUNK_DONE) {
		f->wasted++;
		return;
	}
	rc = proto_manifest_check_chunk(f->mf, index, m->data, m->data_len);
	if (rc != 0) {
		peer_fail(p, 1, "%s: chunk %llu failed verification", p->addr,
		    (unsigned long long)index);
		return;
	}
	f->chunks_fetched++;
	p->chunks++;
	f->last_progress = time(NULL);
	f->last_chunk = now_s();
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
	if (f->done)
		return;
	/* Written: only now may it be served. */
	keep_chunk(f, index);
	cancel_copies(f, p, index);
	if (f->pk.ndone == f->mf->nchunks)
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
			keep_chunk(f, i);
			kept++;
		}
	}
	free(buf);
	return kept;
}

/*
 * FILE.part: the one a run before us left, to resume, or a new one. Never
 * through a link someone left in our place (O_NOFOLLOW), never one that
 * appears between our look and our creating it (O_EXCL), and only a
 * regular file: a FIFO or a device by that name is not ours to write.
 */
static int
open_part(const char *path)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0644);
	if (fd < 0) {
		tool_log(LOG_ERROR, "%s: %s", path, errno == ELOOP ?
		    "is a symbolic link; not written through" :
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		tool_log(LOG_ERROR, "%s: not a regular file; not written",
		    path);
		close(fd);
		return -1;
	}
	return fd;
}

/* Serves the file being fetched from its .part, chunk by chunk as they are
 * verified. */
static int
share_part(struct fetch *f)
{
	int rc;

	if (proto_have_init(&f->have, f->mf->nchunks) != 0)
		return -1;
	rc = proto_store_add_partial(f->store, f->mf, f->out_fd, &f->have);
	if (rc != 0)
		return -1;
	return 0;
}

static int
adopt_manifest(struct fetch *f, proto_manifest *mf)
{
	f->mf = mf;
	if (proto_picker_init(&f->pk, mf->nchunks) != 0)
		return -1;
	if (f->part_path != NULL) {
		if ((f->out_fd = open_part(f->part_path)) < 0)
			return -1;
		if (f->server != NULL && share_part(f) != 0) {
			tool_log(LOG_ERROR, "out of memory");
			return -1;
		}
		f->chunks_resumed = resume_part(f);
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
	if (f->pk.ndone == mf->nchunks)
		complete(f);
	return 0;
}

/* The peer holds the file: ask what of it, if it can tell, else take it
 * to hold all of it. */
static void
start_peer(struct peer *p)
{
	p->cursor = (uint64_t)random() % (p->f->mf->nchunks ?
	    p->f->mf->nchunks : 1);
	if (!p->swarm) {
		p->whole = 1;
		pump(p);
	} else if (send_request(p, REQ_INTERESTED, 0) != 0)
		peer_fail(p, 0, "%s: cannot send", p->addr);
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
		f->last_chunk = now_s();
		if (adopt_manifest(f, m->manifest) != 0) {
			m->manifest = NULL;
			fetch_finish(f, 1);
			return;
		}
		m->manifest = NULL; /* taken */
		tool_log(LOG_INFO, "%s: %s, %llu bytes in %llu chunks, from %s",
		    f->hex, f->mf->name, (unsigned long long)f->mf->size,
		    (unsigned long long)f->mf->nchunks, p->addr);
		if (f->done || f->seeding)
			return;
	}
	start_peer(p);
}

/* A HAVE_MAP: what the peer holds, in its own chunk size, seen in ours. */
static void
take_map(struct peer *p, const proto_msg *m)
{
	const proto_manifest *mf = p->f->mf;

	if (!proto_chunk_size_valid(mf->size, m->chunk_size) ||
	    proto_have_init(&p->theirs, proto_chunk_count(mf->size,
	    m->chunk_size)) != 0 ||
	    proto_have_load(&p->theirs, m->bits, m->bits_len) != 0) {
		proto_have_free(&p->theirs);
		peer_fail(p, 1, "%s: sent a malformed HAVE_MAP", p->addr);
		return;
	}
	p->their_chunk_size = m->chunk_size;
	p->mapped = 1;
	if (p->theirs.count == p->theirs.n)
		p->whole = 1;
	else {
		if (proto_have_init(&p->has, mf->nchunks) != 0) {
			peer_fail(p, 0, "out of memory");
			return;
		}
		for (uint64_t i = 0; i < mf->nchunks; i++)
			if (proto_have_covers(&p->theirs, m->chunk_size,
			    mf->size, mf->chunk_size, i))
				proto_have_set(&p->has, i);
		proto_picker_add_holder(&p->f->pk, &p->has);
	}
	tool_log(LOG_DEBUG, "%s: holds %llu of %llu chunks", p->addr,
	    (unsigned long long)p->theirs.count,
	    (unsigned long long)p->theirs.n);
	pump(p);
}

/* A HAVE: one more chunk of theirs, which may complete some of ours. */
static void
take_have(struct peer *p, const proto_msg *m)
{
	const proto_manifest *mf = p->f->mf;
	uint64_t start, end;

	if (!p->mapped || p->whole ||
	    memcmp(m->id, p->f->id, PROTO_HASH_LEN) != 0)
		return;
	if (m->index >= p->theirs.n) {
		peer_fail(p, 1, "%s: HAVE for chunk %llu of %llu", p->addr,
		    (unsigned long long)m->index,
		    (unsigned long long)p->theirs.n);
		return;
	}
	if (!proto_have_set(&p->theirs, m->index))
		return;
	start = m->index * (uint64_t)p->their_chunk_size;
	end = start + p->their_chunk_size < mf->size ?
	    start + p->their_chunk_size : mf->size;
	for (uint64_t i = start / mf->chunk_size;
	    i <= (end - 1) / mf->chunk_size; i++)
		if (!proto_have_test(&p->has, i) && proto_have_covers(
		    &p->theirs, p->their_chunk_size, mf->size, mf->chunk_size,
		    i)) {
			proto_have_set(&p->has, i);
			proto_picker_gain(&p->f->pk, i);
		}
	pump(p);
}

/* 1 when host:port is this node's own server. */
static int
is_self(const struct fetch *f, const char *host, uint16_t port)
{
	if (f->server == NULL || port != proto_server_port(f->server))
		return 0;
	if (strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	    strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
		return 1;
	for (size_t i = 0; i < f->nlocal; i++)
		if (strcmp(host, f->local[i]) == 0)
			return 1;
	return 0;
}

static int
is_self_addr(const struct fetch *f, const struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN] = "";
	uint16_t port;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	return is_self(f, host, port);
}

/* A peer heard of from another (PEERS) or that connected to us: worth
 * fetching from too, if it is an address and not ourselves. */
static void
consider_peer(struct fetch *f, const char *host, size_t host_len,
    uint16_t port)
{
	char ip[INET6_ADDRSTRLEN], addr[INET6_ADDRSTRLEN + 8];
	unsigned char bin[sizeof(struct in6_addr)];
	int v6;

	if (f->done || f->seeding || f->listing || host_len >= sizeof(ip))
		return;
	memcpy(ip, host, host_len);
	ip[host_len] = '\0';
	v6 = strchr(ip, ':') != NULL;
	/* Only addresses: a name from a peer would mean a lookup. */
	if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, bin) != 1)
		return;
	snprintf(addr, sizeof(addr), v6 ? "[%s]:%u" : "%s:%u", ip, port);
	add_peer(f, addr, 1);
}

static void
take_peers(struct peer *p, const proto_msg *m)
{
	p->asking_peers = 0;
	for (size_t i = 0; i < m->npeers; i++)
		consider_peer(p->f, m->peers[i].host, m->peers[i].host_len,
		    m->peers[i].port);
}

static void
on_inbound(const char *host, uint16_t port, void *arg)
{
	consider_peer(arg, host, strlen(host), port);
}

/* Our addresses, so that a peer list naming us is not followed back. */
static void
load_local_addresses(struct fetch *f)
{
	struct ifaddrs *ifs, *ifa;

	if (getifaddrs(&ifs) != 0)
		return;
	for (ifa = ifs; ifa && f->nlocal < LOCAL_ADDRS_MAX; ifa = ifa->ifa_next) {
		const struct sockaddr *sa = ifa->ifa_addr;
		if (sa == NULL)
			continue;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)
			    (const void *)sa)->sin_addr, f->local[f->nlocal++],
			    INET6_ADDRSTRLEN);
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
			    (const void *)sa)->sin6_addr,
			    f->local[f->nlocal++], INET6_ADDRSTRLEN);
	}
	freeifaddrs(ifs);
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

/* An ERROR in answer to r. */
static void
on_error(struct peer *p, const struct request *r, const proto_msg *m)
{
	char text[PROTO_ERROR_TEXT_MAX + 1];

	tool_printable(m->text, m->text_len, text, sizeof(text));
	switch (r->kind) {
	case REQ_CHUNK:
		finish_chunk_request(p, r->index);
		if (m->code == PROTO_CODE_CANCELLED && r->cancelled) {
			pump(p);
			return;
		}
		if (m->code == PROTO_CODE_NOT_FOUND && !p->whole) {
			/* Its map said otherwise; no harm meant, perhaps,
			 * but no use either. */
			peer_fail(p, 0, "%s: chunk %llu not held: %s", p->addr,
			    (unsigned long long)r->index, text);
			return;
		}
		/* The file may have changed under the peer. */
		peer_fail(p, 1, "%s: chunk %llu refused: %s", p->addr,
		    (unsigned long long)r->index, text);
		return;
	case REQ_PEERS:
		p->asking_peers = 0;
		return;
	case REQ_MANIFEST:
		/* A peer found through others is most likely a fetcher of
		 * this file that has not got the manifest yet: asked again
		 * each tick for ten seconds. */
		if (m->code == PROTO_CODE_NOT_FOUND && p->learned &&
		    p->manifest_tries < MANIFEST_TRIES) {
			p->manifest_wait = 1;
			return;
		}
		if (m->code == PROTO_CODE_NOT_FOUND)
			p->f->not_found++;
		break;
	default:
		break;
	}
	peer_fail(p, 0, "%s: %s", p->addr, text);
}

static void
on_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct peer *p = arg;
	struct request r;

	(void)c;
	if (m->type == PROTO_MSG_HAVE && m->rid == 0) {
		take_have(p, m);
		return;
	}
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
		on_error(p, &r, m);
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
	case REQ_INTERESTED:
		if (m->type != PROTO_MSG_HAVE_MAP)
			break;
		take_map(p, m);
		return;
	case REQ_PEERS:
		if (m->type != PROTO_MSG_PEERS_REPLY)
			break;
		take_peers(p, m);
		return;
	}
	peer_fail(p, 1, "%s: answered with %s", p->addr,
	    proto_msg_type_name(m->type));
}

/* Asks p for the peers it knows, when there is room for more. */
static void
ask_peers(struct peer *p)
{
	if (p->state != PEER_READY || p->asking_peers || p->f->listing ||
	    alive_peers(p->f) >= p->f->max_peers ||
	    learned_peers(p->f) >= LEARNED_MAX)
		return;
	if (send_request(p, REQ_PEERS, 0) == 0)
		p->asking_peers = 1;
}

static void
on_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct peer *p = arg;

	p->state = PEER_READY;
	p->swarm = (hello->caps & PROTO_CAP_SWARM) != 0;
	tool_log(LOG_DEBUG, "%s: connected to %s", p->addr,
	    proto_conn_peer_name(c));
	if (send_request(p, p->f->listing ? REQ_LIST : REQ_MANIFEST, 0) != 0) {
		peer_fail(p, 0, "%s: cannot send", p->addr);
		return;
	}
	ask_peers(p);
}

static void
on_close(proto_conn *c, int err, void *arg)
{
	struct peer *p = arg;
	const char *detail = proto_conn_error_detail(c);
	const char *sep = *detail ? ": " : "";
	const char *what = err == PROTO_ERR_SYSTEM ? strerror(errno) :
	    proto_strerror(err);

	p->line_lost = p->state == PEER_READY && p->has_file &&
	    (err == PROTO_ERR_CLOSED || err == PROTO_ERR_SYSTEM);
	if ((err == PROTO_ERR_SYSTEM || err == PROTO_ERR_TIMEOUT) &&
	    p->state == PEER_CONNECTING)
		peer_fail(p, 0, "connect %s: %s%s%s", p->addr, what, sep,
		    detail);
	else if (err == PROTO_ERR_SYSTEM || err == PROTO_ERR_CLOSED ||
	    err == PROTO_ERR_TIMEOUT)
		peer_fail(p, 0, "%s: %s%s%s", p->addr, what, sep, detail);
	else if (err == PROTO_ERR_TLS || err == PROTO_ERR_REFUSED) {
		/* Not an attack, most likely a peer set up otherwise: said
		 * now, as it would only show at the end. */
		tool_log(LOG_WARN, "%s: %s%s%s", p->addr, what, sep, detail);
		peer_fail(p, 0, "%s: %s%s%s", p->addr, what, sep, detail);
	} else if (err == PROTO_ERR_IDENTITY || err == PROTO_ERR_AUTH)
		peer_fail(p, 1, "%s: %s%s%s", p->addr, what, sep, detail);
	else
		peer_fail(p, 1, "%s: protocol error: %s", p->addr, what);
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
    on_idle, NULL };

static void
connect_peer(struct peer *p)
{
	proto_conn_config cfg = p->f->cfg;

	p->state = PEER_CONNECTING;
	p->has_file = 0;
	p->swarm = 0;
	p->line_lost = 0;
	if (p->has_pin)
		cfg.pin = p->pin;
	p->conn = proto_conn_connect(p->f->base, (struct sockaddr *)&p->ss,
	    p->sslen, &cfg, &peer_cbs, p);
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

/* Peers found through others that are still with us. */
static unsigned
learned_peers(const struct fetch *f)
{
	unsigned n = 0;

	for (size_t i = 0; i < f->npeers; i++)
		n += peer_alive(f->peers[i]) && f->peers[i]->learned;
	return n;
}

/* arg: HOST:PORT, or ID@HOST:PORT to accept only the peer of that
 * identity there; learned: heard of from another peer. */
static void
add_peer(struct fetch *f, const char *arg, int learned)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *why, *addr;
	uint8_t pin[PROTO_IDENTITY_LEN];
	int has_pin;
	struct peer *p;

	if ((addr = tool_tls_split_pin(arg, pin, &has_pin)) == NULL) {
		tool_log(LOG_WARN, "peer '%s': the identity before '@' is not "
		    "%d hex digits", arg, PROTO_IDENTITY_HEX_LEN);
		return;
	}
	for (size_t i = 0; i < f->npeers; i++)
		if (strcmp(f->peers[i]->addr, addr) == 0)
			return;
	if (alive_peers(f) >= f->max_peers ||
	    (learned && learned_peers(f) >= LEARNED_MAX)) {
		tool_log(LOG_DEBUG, "%s: ignored: %u peers already", addr,
		    alive_peers(f));
		return;
	}
	if (tool_resolve(addr, &ss, &sslen, &why) != 0) {
		tool_log(LOG_WARN, "peer '%s': %s", addr, why);
		return;
	}
	if (is_self_addr(f, &ss)) {
		tool_log(LOG_DEBUG, "%s: ourselves; not connecting", addr);
		return;
	}
	/* The same peer under another spelling is still the same peer. */
	for (size_t i = 0; i < f->npeers; i++)
		if (f->peers[i]->sslen == sslen &&
		    memcmp(&f->peers[i]->ss, &ss, sslen) == 0)
			return;
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
	memcpy(p->pin, pin, sizeof(pin));
	p->has_pin = has_pin;
	p->learned = learned;
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
	add_peer(f, line, 0);
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
	if (f->seeding)
		return;
	/* New peers may have joined those we know since we last asked; and
	 * when the fetchers bring nothing, the seeds are asked for more. */
	for (size_t i = 0; f->mf != NULL && i < f->npeers; i++) {
		struct peer *p = f->peers[i];
		ask_peers(p);
		if (p->manifest_wait && p->state == PEER_READY) {
			p->manifest_wait = 0;
			p->manifest_tries++;
			if (send_request(p, REQ_MANIFEST, 0) != 0)
				peer_fail(p, 0, "%s: cannot send", p->addr);
		}
		if (stalled(f))
			pump(p);
	}
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
		    (unsigned long long)(f->mf->nchunks - f->pk.ndone),
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
	if (f->pk.ndone == f->mf->nchunks)
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
	if (f->seeding) {
		tool_log(LOG_INFO, "%s: stopped seeding", strsignal((int)sig));
		fetch_finish(f, 0);
		return;
	}
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
	tool_json_uint(&j, "cancelled", f->cancels);
	tool_json_uint(&j, "duplicates", f->wasted);
	{
		proto_server_stats st;
		memset(&st, 0, sizeof(st));
		if (f->server != NULL)
			proto_server_stats_get(f->server, &st);
		tool_json_uint(&j, "bytes_out", st.bytes_out);
		tool_json_uint(&j, "chunks_out", st.chunks_out);
		tool_json_uint(&j, "peers_in", st.peers);
	}
	tool_json_uint(&j, "exit", (uint64_t)f->exit_code);
	(void)tool_json_finish(&j, STDERR_FILENO);
}

static void
print_stats(struct fetch *f)
{
	char from[4096] = "";
	size_t used = 0, used_peers = 0;
	proto_server_stats st;

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
	memset(&st, 0, sizeof(st));
	if (f->server != NULL)
		proto_server_stats_get(f->server, &st);
	fprintf(stderr, "p2p-fetch: stats bytes_in=%llu chunks_fetched=%llu "
	    "chunks_resumed=%llu peers_used=%zu peers_dropped=%llu from=%s "
	    "cancelled=%llu duplicates=%llu bytes_out=%llu chunks_out=%llu "
	    "peers_in=%llu\n",
	    (unsigned long long)f->bytes_in,
	    (unsigned long long)f->chunks_fetched,
	    (unsigned long long)f->chunks_resumed, used_peers,
	    (unsigned long long)f->peers_dropped, used ? from : "-",
	    (unsigned long long)f->cancels, (unsigned long long)f->wasted,
	    (unsigned long long)st.bytes_out,
	    (unsigned long long)st.chunks_out,
	    (unsigned long long)st.peers);
}

/* A fetch to a file serves what it has fetched: it listens before it
 * connects anywhere, so every HELLO it sends names its port. */
static void
start_server(struct fetch *f)
{
	static const proto_server_cbs cbs = { tool_proto_log, on_inbound };
	struct sockaddr_storage ss;
	socklen_t sslen;
	proto_server_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.conn.node_name = f->cfg.node_name;
	cfg.conn.timeout = f->timeout;
	cfg.conn.max_frame = REQUEST_FRAME_MAX;
	cfg.max_peers = f->max_peers;
	tool_tls_apply(&cfg.conn, 1);
	cfg.conn.limit = f->cfg.limit;
	tool_bind_address(f->bind_addr, f->share_port, &ss, &sslen);
	if ((f->store = proto_store_new()) == NULL ||
	    (f->server = proto_server_new(f->base, f->store, &cfg, &cbs,
	    f)) == NULL)
		tool_die(1, "out of memory");
	if (proto_server_listen(f->server, (struct sockaddr *)&ss, sslen) != 0)
		tool_die_errno(1, "bind %s port %u", f->bind_addr,
		    f->share_port);
	f->cfg.listen_port = proto_server_port(f->server);
	load_local_addresses(f);
	tool_log(LOG_INFO, "sharing on port %u", f->cfg.listen_port);
	f->disco.target = getenv("MINI_P2P_DISCOVERY_ADDR");
	if (proto_server_start_beacon(f->server, &f->disco) != 0)
		tool_log(LOG_DEBUG, "discovery port %u: %s; not discoverable",
		    f->disco.port, strerror(errno));
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
		{ "seed", no_argument, NULL, 's' },
		{ "no-share", no_argument, NULL, 'N' },
		{ "port", required_argument, NULL, 'P' },
		{ "bind", required_argument, NULL, 'B' },
		TOOL_LONGOPTS_TLS,
		TOOL_LONGOPT_PROGRESS,
		TOOL_LONGOPT_JSON,
		TOOL_LONGOPTS_RATES,
		TOOL_LONGOPTS_COMMON,
	};
	static struct fetch fetch;
	struct fetch *f = &fetch;
	struct tool_config config;
	struct event *sigint, *sigterm;
	struct timeval tick = { 0, 250000 }; /* timeouts count in seconds */
	static const char **peer_args; /* static: reachable at any exit */
	const char *env;
	int ch, npeer_args = 0, read_stdin = 0;

	tool_init("p2p-fetch", LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	tool_raise_fd_limit();
	f->timeout = DEFAULT_TIMEOUT;
	f->max_peers = DEFAULT_MAX_PEERS;
	f->out_fd = STDOUT_FILENO;
	f->share = 1;
	f->bind_addr = "0.0.0.0";
	f->disco.port = PROTO_DISCO_PORT;
	f->disco.answer_only = 1;
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
	if ((env = getenv("MINI_P2P_DISCOVERY_PORT")) != NULL && *env)
		f->disco.port = (uint16_t)tool_parse_number(env, 1, 65535,
		    "MINI_P2P_DISCOVERY_PORT");
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
				const char *why, *addr;
				uint8_t pin[PROTO_IDENTITY_LEN];
				int has_pin;
				addr = tool_tls_split_pin(optarg, pin, &has_pin);
				if (addr == NULL)
					tool_die(2, "peer '%s': the identity "
					    "before '@' must be %d hex digits",
					    optarg, PROTO_IDENTITY_HEX_LEN);
				if (tool_resolve(addr, &ss, &len, &why) != 0)
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
		case 's':
			f->seed = 1;
			break;
		case 'N':
			f->share = 0;
			break;
		case 'P':
			f->share_port = (uint16_t)tool_parse_number(optarg, 0,
			    65535, "port");
			break;
		case 'B':
			f->bind_addr = optarg;
			break;
		default:
			if (tool_common_option(ch, usage) ||
			    tool_tls_option(ch))
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
		if (f->seed && (f->out_path == NULL || !f->share))
			tool_die(2, "--seed serves the file: it needs -o FILE "
			    "and no --no-share");
	}
	if (read_stdin && isatty(STDIN_FILENO))
		tool_die(2, "no peers: give -p HOST:PORT, or pipe HOST:PORT "
		    "lines in (p2p-discover | p2p-fetch ID)");
	tool_tls_start();
	tool_tls_apply(&f->cfg, 0);
	f->disco.secret = tool_tls_secret();
	f->cfg.node_name = tool_hostname();
	f->cfg.timeout = f->timeout;
	f->last_progress = time(NULL);
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	if ((f->base = event_base_new()) == NULL ||
	    (f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, f)) == NULL ||
	    event_add(f->tick, &tick) != 0)
		tool_die(1, "out of memory");
	f->cfg.limit = tool_conn_limit(f->base);
	if (f->out_path != NULL && f->share)
		start_server(f);
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
		add_peer(f, peer_args[i], 0);
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
	proto_server_free(f->server);
	proto_store_free(f->store);
	proto_have_free(&f->have);
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
	proto_picker_free(&f->pk);
	free(f->part_path);
	free(peer_args);
	proto_manifest_free(f->mf);
	event_free(sigint);
	event_free(sigterm);
	event_free(f->tick);
	if (f->stdin_ev)
		event_free(f->stdin_ev);
	proto_base_free(f->base);
	tool_tls_end();
	return f->exit_code;
}
