/*
 * p2p-badpeer: a peer that breaks the protocol on purpose, for the attack
 * suite (tests/attacks.bats). In the serve role it listens on 127.0.0.1 and
 * serves one file to p2p-fetch, misbehaving in one chosen way; in the attack
 * role it connects to a p2p-serve and misbehaves there. Everything honest
 * (HELLO, manifests, chunks) is packed with libproto; everything dishonest
 * is written byte by byte here. It reports on stderr what it did and what
 * the other side did about it, one "p2p-badpeer: ..." line each, so a test
 * can tell an attack that was fended off from one that never happened.
 *
 * Plain sockets, never blocking: every wait is a poll() with a deadline, so
 * the peer never hangs its test. One fetcher is served at a time.
 *
 * bats/p2p_ref.py has a fake peer too, kept for another proof: it is the
 * protocol written a second time, over TLS as the tools run by default
 * (p2p-fetch.bats, tls.bats); this one is plaintext and exact to the byte,
 * for attacks (attacks.bats). Modes both have, and why each stays:
 *
 *   here                   p2p_ref.py         why both
 *   serve honest           peer honest        here the control (the fetch
 *                                             uses it like any peer, so a
 *                                             drop in another mode is the
 *                                             mode's doing); there interop
 *                                             over TLS
 *   serve wrong-chunk      peer corrupt       same bytes; there the drop
 *                                             warning, -q and stdout a user
 *                                             sees, over TLS; here the attack
 *                                             table, plaintext
 *   serve forged-manifest  peer badmanifest   as wrong-chunk
 *   serve stall            peer silent        not the same: silent never
 *                                             sends HELLO, stall goes quiet
 *                                             after it
 *   attack huge-length     junk               not the same: junk is once,
 *                                             before HELLO, in TLS; this is
 *                                             after HELLO, in rounds, with
 *                                             the server's memory watched
 * Every other mode here needs exact bytes and is here alone; the
 * reference's notfound and slow (an honest peer, 10 ms a chunk) are there
 * alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "proto.h"
#include "frame.h"
#include "say.h"

#define IO_WAIT_MS 30000    /* longest wait for one read or write */
#define REACTION_MS 5000    /* how long an attack waits for the server */
#define DRIP_MS 2000        /* between two dripped bytes */
#define SLOW_PIECE 1024     /* slow-chunks: a piece every SLOW_MS */
#define SLOW_MS 250
#define JUNK_MAX (16u << 20) /* bytes sent after a huge length prefix */
#define HAVE_EVERY_MS 2000  /* liar: between two HAVEs that keep it alive */
#define SLOW_START_MS 3000  /* slow-start: before its first chunk */

const char *progname = "p2p-badpeer";

/* list-flood: LIST_FLOOD made-up ids that all start as the file's does
 * (its first 4 bytes: 8 hex digits), each named with 200 bytes of escapes
 * and C1 controls, as a peer that wants a prefix to match without end and
 * its candidates to write on the terminal. */
#define LIST_FLOOD 300
static uint8_t flood_ids[LIST_FLOOD][PROTO_HASH_LEN];
static char flood_name[201];

static void
list_flood(const uint8_t *id, proto_list_entry *e)
{
	static const char bad[] = "\x1b]2;owned\x07\xc2\x9b";

	for (size_t i = 0; i < sizeof(flood_name) - 1; i++)
		flood_name[i] = bad[i % (sizeof(bad) - 1)];
	for (int i = 0; i < LIST_FLOOD; i++) {
		memcpy(flood_ids[i], id, 4);
		memset(flood_ids[i] + 4, 0x5a, PROTO_HASH_LEN - 4);
		flood_ids[i][31] = (uint8_t)i;
		flood_ids[i][30] = (uint8_t)(i >> 8);
		e[i] = (proto_list_entry){ .id = flood_ids[i], .size = 1,
		    .name = flood_name, .name_len = sizeof(flood_name) - 1 };
	}
}

/* hostile-names: the name of its node, of its file and its error texts, all
 * chosen to forge a line of the victim's own, colour its terminal (ESC and
 * the one-byte C1 CSI, U+009B) and split a tab-separated record. */
#define HOSTILE_NAME "x\np2p-fetch: error: forged\x1b[31m\xc2\x9b" "1m\tz"

/* Set by SIGTERM in the attack role: end the attack and report. */
static volatile sig_atomic_t stop;

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-badpeer serve MODE MANIFEST FILE\n"
	    "       p2p-badpeer attack [-m] [-f FROM] [-i FIRST] [-n COUNT] [-t SECONDS]\n"
	    "                          MODE HOST:PORT [ID]\n"
	    "serve modes: honest wrong-chunk wrong-manifest forged-manifest\n"
	    "  truncated-frame huge-length bomb-array bomb-nested bomb-str\n"
	    "  unknown-type out-of-order unrequested overlong-chunk drip\n"
	    "  drip-chunks slow-chunks stall stall-chunks close-mid-chunk\n"
	    "  bad-version liar pex-flood hostile-names slow-start\n"
	    "  push-unknown error-code busy maxreq asks list-flood\n"
	    "attack modes: huge-length bomb-array bomb-nested bomb-str\n"
	    "  unknown-type truncated-frame drip pipeline never-read\n"
	    "  flood-connect flood-silent big-frame hostile-names trickle\n"
	    "  push-unknown\n"
	    "  -f FROM     connect from this IPv4 address (trickle, flood-*, drip)\n"
	    "  -m          each connection from the next address after FROM\n"
	    "  -i FIRST    the first chunk asked for (pipeline, never-read; then\n"
	    "              the next ones, wrapping)\n"
	    "  -n COUNT    connections (drip, flood-*, trickle) or requests (pipeline,\n"
	    "              never-read)\n"
	    "  -t SECONDS  how long the attack lasts (pipeline: how long it\n"
	    "              reads nothing)\n");
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- bytes on sockets, every wait bounded ---- */

/* Waits up to ms for events on fd: the revents, 0 on timeout, -1 on error. */
static int
wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { fd, events, 0 };
	int n;

	do
		n = poll(&p, 1, ms);
	while (n < 0 && errno == EINTR);
	return n <= 0 ? n : p.revents;
}

/* Sends all of buf. 0, or -1 with errno (ETIMEDOUT when the peer took
 * nothing for ms, EPIPE or ECONNRESET when it went). */
static int
send_all(int fd, const void *buf, size_t len, int ms)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(fd, POLLOUT, ms);
			if (r == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			if (r < 0)
				return -1;
			continue;
		}
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads exactly len bytes within ms. 1 done, 0 at end of stream, -1 on
 * error or timeout (errno ETIMEDOUT). */
static int
recv_all(int fd, void *buf, size_t len, int ms)
{
	uint8_t *p = buf;
	long long deadline = now_ms() + ms;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			long long left = deadline - now_ms();
			int r = left > 0 ? wait_fd(fd, POLLIN, (int)left) : 0;
			if (r == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			if (r < 0)
				return -1;
			continue;
		}
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

/* Reads and drops whatever arrives until the peer closes or ms pass,
 * counting the bytes in *got (when not NULL). 1 when it closed (or reset),
 * 0 when it was still open. */
static int
drain(int fd, int ms, size_t *got)
{
	long long deadline = now_ms() + ms;
	uint8_t buf[65536];

	for (;;) {
		long long left = deadline - now_ms();
		ssize_t n;
		if (left <= 0)
			return 0;
		if (wait_fd(fd, POLLIN, (int)left) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return 1;
		if (n > 0 && got != NULL)
			*got += (size_t)n;
	}
}

/* One frame: its body, malloc'd, in *body (the caller frees). 1, 0 at a
 * clean end of stream, -1 on error, timeout or a frame over max. */
static int
recv_frame(int fd, uint8_t **body, uint32_t *len, size_t max, int ms)
{
	uint8_t hdr[PROTO_FRAME_HEADER];
	int r;

	*body = NULL;
	if ((r = recv_all(fd, hdr, sizeof(hdr), ms)) <= 0)
		return r;
	if (proto_frame_get_len(hdr, max, len) != 0) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((*body = malloc(*len ? *len : 1)) == NULL)
		die(1, "out of memory");
	if ((r = recv_all(fd, *body, *len, ms)) <= 0) {
		free(*body);
		*body = NULL;
		return r < 0 ? -1 : 0;
	}
	return 1;
}

/* One message, checked and unpacked into m; *body holds its bytes (m
 * borrows from it). Same results as recv_frame, and -1 with EPROTO for a
 * malformed one. */
static int
recv_msg(int fd, proto_msg *m, uint8_t **body, int ms)
{
	uint32_t len;
	int r = recv_frame(fd, body, &len, PROTO_FRAME_MAX, ms);

	if (r <= 0)
		return r;
	if (proto_frame_check_body(*body, len) != 0 ||
	    proto_msg_unpack(*body, len, m) != 0) {
		free(*body);
		*body = NULL;
		errno = EPROTO;
		return -1;
	}
	return 1;
}

static int
send_msg(int fd, const proto_msg *m)
{
	uint8_t *frame;
	size_t len;
	int rc;

	if ((rc = proto_msg_pack(m, &frame, &len)) != 0)
		die(1, "packing %s: %s", proto_msg_type_name(m->type),
		    proto_strerror(rc));
	rc = send_all(fd, frame, len, IO_WAIT_MS);
	free(frame);
	return rc;
}

/* maxreq mode: the requests it says it takes outstanding. */
#define MAXREQ_SAID 2

static int
send_hello(int fd, uint32_t version, const char *name, uint16_t port,
    uint64_t nfiles, uint64_t caps, uint32_t maxreq)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_HELLO);
	if (maxreq != 0) {
		m.opts.has = PROTO_OPT_MAXREQ;
		m.opts.maxreq = maxreq;
	}
	m.caps = caps;
	m.version = version;
	m.text = name;
	m.text_len = strlen(name);
	m.listen_port = port;
	m.nfiles = nfiles;
	return send_msg(fd, &m);
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Appends [type, rid] opening bytes: a fixarray of n, then both as uint32
 * forms (legal, if not the shortest). Returns the bytes written (11). */
static size_t
put_head(uint8_t *p, unsigned n, unsigned type, uint32_t rid)
{
	p[0] = (uint8_t)(0x90 | n);
	p[1] = 0xce;
	put_be32(p + 2, type);
	p[6] = 0xce;
	put_be32(p + 7, rid);
	return 11;
}

/*
 * The hostile frames, in a malloc'd buffer the caller frees, length prefix
 * included. rid is the request a serving peer pretends to answer.
 *   bomb-array:  a 4 KiB frame whose array32 header declares 2^24 elements
 *   bomb-nested: 32 array32 headers of one element each, nested
 *   bomb-str:    a str32 declaring 0xFFFFFFFF bytes, in a 4 KiB frame
 */
static uint8_t *
bomb_frame(const char *mode, uint32_t rid, size_t *len)
{
	size_t body = 4096, n = PROTO_FRAME_HEADER;
	uint8_t *f = calloc(1, PROTO_FRAME_HEADER + body);

	if (f == NULL)
		die(1, "out of memory");
	n += put_head(f + n, 3, PROTO_MSG_MANIFEST, rid);
	if (strcmp(mode, "bomb-array") == 0) {
		f[n++] = 0xdd;
		/* then zeros to the end, each a fixint element */
		put_be32(f + n, 1u << 24);
	} else if (strcmp(mode, "bomb-nested") == 0) {
		for (int i = 0; i < 32; i++) {
			f[n++] = 0xdd;
			put_be32(f + n, 1);
			n += 4;
		}
		f[n++] = 0xc0;
		body = n - PROTO_FRAME_HEADER;
	} else {
		f[n++] = 0xdb;
		put_be32(f + n, 0xffffffffu);
		n += 4;
		memset(f + n, 'A', PROTO_FRAME_HEADER + body - n);
	}
	proto_frame_put_len(f, (uint32_t)body);
	*len = PROTO_FRAME_HEADER + body;
	return f;
}

/* ---- serve role ---- */

struct server {
	const char *mode;
	proto_manifest *mf;       /* what p2p-chunk wrote */
	proto_manifest *other;    /* a manifest of other bytes */
	proto_manifest *forged;   /* the right id, a wrong chunk hash */
	int file;
	uint16_t port;
};

struct peer {
	struct server *srv;
	int fd;
	int drip;                 /* send one byte every DRIP_MS */
	int slow;                 /* send SLOW_PIECE bytes every SLOW_MS */
	int told;                 /* "misbehaved" already said */
	int subscribed;           /* liar: its HAVE_MAP went; a HAVE when
	                           * idle from now on */
	int holding;              /* liar: a GET_CHUNK it will never answer
	                           * came, and answers are in order */
	int started;              /* slow-start: its first chunk went */
	unsigned manifests_asked, chunks_asked, refused;
	unsigned most_out, answered;  /* maxreq: requests seen out at once */
};

/* pex-flood: the next closed address it names, a fresh one each time. */
static unsigned pex_next;

static int
is_mode(const struct peer *p, const char *mode)
{
	return strcmp(p->srv->mode, mode) == 0;
}

/* Says once per connection what this peer did wrong: the suite checks the
 * line to know the misbehaviour really happened. */
static void
misbehaved(struct peer *p, const char *what)
{
	if (p->told)
		return;
	p->told = 1;
	note("misbehaved: %s: %s", p->srv->mode, what);
}

/* Sends bytes to the fetcher, all at once or dripped. -1 once it is gone. */
static int
out(struct peer *p, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	size_t step = p->slow ? SLOW_PIECE : 1;

	if (!p->drip && !p->slow)
		return send_all(p->fd, buf, len, IO_WAIT_MS);
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		if (send_all(p->fd, b + i, n, IO_WAIT_MS) != 0)
			return -1;
		/* Wait out the gap, but notice at once when the peer hangs
		 * up; its requests stay unread meanwhile. */
		if (wait_fd(p->fd, POLLRDHUP, p->slow ? SLOW_MS : DRIP_MS) != 0)
			return -1;
	}
	return 0;
}

static int
out_msg(struct peer *p, const proto_msg *m)
{
	uint8_t *frame;
	size_t len;
	int rc;

	if ((rc = proto_msg_pack(m, &frame, &len)) != 0)
		die(1, "packing %s: %s", proto_msg_type_name(m->type),
		    proto_strerror(rc));
	rc = out(p, frame, len);
	free(frame);
	return rc;
}

static int
out_error(struct peer *p, uint32_t rid, uint32_t code, const char *text)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_ERROR);
	m.rid = rid;
	m.code = code;
	m.text = text;
	m.text_len = strlen(text);
	return out_msg(p, &m);
}

static int
out_manifest(struct peer *p, uint32_t rid, proto_manifest *mf)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_MANIFEST);
	m.rid = rid;
	m.manifest = mf;
	return out_msg(p, &m);
}

/* A CHUNK frame whose data are len bytes; its length prefix says frame_len
 * bytes follow (the honest value when 0), and only send bytes of the whole
 * are sent (all when 0). */
static int
out_chunk(struct peer *p, uint32_t rid, const uint8_t *data, size_t len,
    uint32_t frame_len, size_t send)
{
	uint8_t hdr[PROTO_CHUNK_HEADER_MAX], *whole;
	size_t hlen = proto_msg_chunk_header(rid, (uint32_t)len, hdr);
	int rc;

	if (frame_len != 0)
		proto_frame_put_len(hdr, frame_len);
	if ((whole = malloc(hlen + len)) == NULL)
		die(1, "out of memory");
	memcpy(whole, hdr, hlen);
	if (len > 0)
		memcpy(whole + hlen, data, len);
	rc = out(p, whole, send ? send : hlen + len);
	free(whole);
	return rc;
}

/* The news of a newer peer, pushed (rid 0) in types this node's peers do
 * not know: 42 (a future core type, with a map after the rid), 99 (an
 * extension number nobody gave out, with a str), 48 (a core type not
 * given out yet, bare) and 200 (past the types ever sent). Into buf (64 bytes); the
 * bytes written. */
static size_t
unknown_pushes(uint8_t *buf)
{
	static const uint8_t pushes[] = {
		0x00, 0x00, 0x00, 0x0a, 0x93, 0x2a, 0x00, 0x81, 0xa4, 'n', 'e',
		'w', 's', 0x01,
		0x00, 0x00, 0x00, 0x05, 0x93, 0x63, 0x00, 0xa1, 'x',
		0x00, 0x00, 0x00, 0x03, 0x92, 0x30, 0x00,
		0x00, 0x00, 0x00, 0x04, 0x92, 0xcc, 0xc8, 0x00,
	};

	memcpy(buf, pushes, sizeof(pushes));
	return sizeof(pushes);
}

/* Chunk index at chunk size cs of the served file, malloc'd; NULL (and
 * *why set) for a request no honest peer could answer. */
static uint8_t *
read_chunk(struct server *srv, uint64_t index, uint32_t cs, size_t *len,
    uint32_t *code, const char **why)
{
	uint8_t *buf;
	ssize_t n;

	if (!proto_chunk_size_valid(srv->mf->size, cs)) {
		*code = PROTO_CODE_BAD_REQUEST;
		*why = "chunk size not valid for this file";
		return NULL;
	}
	if (index >= proto_chunk_count(srv->mf->size, cs)) {
		*code = PROTO_CODE_NOT_FOUND;
		*why = "no such chunk";
		return NULL;
	}
	*len = proto_chunk_len(srv->mf->size, cs, index);
	if ((buf = malloc(*len + 64)) == NULL)
		die(1, "out of memory");
	n = pread(srv->file, buf, *len, (off_t)(index * cs));
	if (n != (ssize_t)*len) {
		free(buf);
		*code = PROTO_CODE_INTERNAL;
		*why = "file unavailable";
		return NULL;
	}
	return buf;
}

/* The hostile answers that replace a MANIFEST. 1: the connection is
 * finished; 0: go on; -1: the fetcher went. */
static int
answer_manifest(struct peer *p, const proto_msg *req)
{
	struct server *srv = p->srv;
	size_t len;
	int rc;

	if (memcmp(req->id, srv->mf->id, PROTO_HASH_LEN) != 0)
		return out_error(p, req->rid, PROTO_CODE_NOT_FOUND,
		    "no such file");
	if (is_mode(p, "busy") && p->manifests_asked++ == 0) {
		p->refused++;
		note("busy: BUSY to GET_MANIFEST");
		return out_error(p, req->rid, PROTO_CODE_BUSY, "later, please");
	}
	if (is_mode(p, "huge-length")) {
		uint8_t junk[65536];
		size_t sent = 0;
		memset(junk, 0x5a, sizeof(junk));
		misbehaved(p, "a 0xFFFFFFFF length prefix, then junk");
		if (out(p, "\xff\xff\xff\xff", 4) != 0)
			return -1;
		while (sent < JUNK_MAX && send_all(p->fd, junk, sizeof(junk),
		    REACTION_MS) == 0)
			sent += sizeof(junk);
		note("huge-length: the fetcher took %zu bytes of junk", sent);
		return 1;
	}
	if (strncmp(srv->mode, "bomb-", 5) == 0) {
		uint8_t *f = bomb_frame(srv->mode, req->rid, &len);
		misbehaved(p, "a bomb in a legal-size frame");
		rc = out(p, f, len);
		free(f);
		return rc;
	}
	if (is_mode(p, "unknown-type")) {
		uint8_t m[PROTO_FRAME_HEADER + 16];
		size_t n = put_head(m + PROTO_FRAME_HEADER, 2, 200, req->rid);
		proto_frame_put_len(m, (uint32_t)n);
		misbehaved(p, "answered with message type 200");
		return out(p, m, PROTO_FRAME_HEADER + n);
	}
	if (is_mode(p, "wrong-manifest")) {
		misbehaved(p, "sent the manifest of other bytes");
		return out_manifest(p, req->rid, srv->other);
	}
	if (is_mode(p, "forged-manifest")) {
		misbehaved(p, "sent a manifest whose hashes do not match its id");
		return out_manifest(p, req->rid, srv->forged);
	}
	if (is_mode(p, "drip")) {
		misbehaved(p, "dripping the manifest, a byte every 2 s");
		p->drip = 1;
	}
	if ((rc = out_manifest(p, req->rid, srv->mf)) != 0)
		return rc;
	if (is_mode(p, "unrequested")) {
		uint32_t code;
		const char *why;
		uint8_t *data = read_chunk(srv, 0, srv->mf->chunk_size, &len,
		    &code, &why);
		misbehaved(p, "sent a CHUNK nobody asked for");
		rc = out_chunk(p, 0xfffffff0u, data, data ? len : 0, 0, 0);
		free(data);
		return rc;
	}
	return 0;
}

static int
answer_chunk(struct peer *p, const proto_msg *req)
{
	struct server *srv = p->srv;
	uint8_t *data;
	size_t len = 0;
	uint32_t code, rid = req->rid;
	const char *why;
	int rc;

	if (is_mode(p, "stall-chunks")) {
		misbehaved(p, "manifest sent, chunk requests never answered");
		drain(p->fd, 600000, NULL);
		return 1;
	}
	if (is_mode(p, "liar")) {
		misbehaved(p, "claims every chunk but the last, answers no "
		    "GET_CHUNK, sends a HAVE every 2 s");
		p->holding = 1;
		return 0;
	}
	if (memcmp(req->id, srv->mf->id, PROTO_HASH_LEN) != 0)
		return out_error(p, rid, PROTO_CODE_NOT_FOUND, "no such file");
	if (is_mode(p, "slow-start") && !p->started) {
		/* An honest seed under load: nothing of its first chunk for a
		 * while, then every chunk asked, CANCELs or not. */
		misbehaved(p, "its first chunk 3 s late, every chunk sent");
		sleep_ms(SLOW_START_MS);
		p->started = 1;
		/* Then a HAVE when idle, as a node that stays: the fetch
		 * decides when to go, not its idle timeout. */
		p->subscribed = 1;
	}
	/* error-code: its first chunk refused with a code no node knows;
	 * busy: its first three with BUSY. The rest are answered. */
	if ((is_mode(p, "error-code") && p->chunks_asked == 0) ||
	    (is_mode(p, "busy") && p->chunks_asked < 3)) {
		p->chunks_asked++;
		p->refused++;
		note("%s: %s to GET_CHUNK %llu", srv->mode, is_mode(p, "busy") ?
		    "BUSY" : "error code 77", (unsigned long long)req->index);
		return out_error(p, rid, is_mode(p, "busy") ? PROTO_CODE_BUSY :
		    77, "made-up trouble");
	}
	p->chunks_asked++;
	if ((data = read_chunk(srv, req->index, req->chunk_size, &len, &code,
	    &why)) == NULL)
		return out_error(p, rid, code, why);
	if (is_mode(p, "drip-chunks")) {
		misbehaved(p, "dripping chunks, a byte every 2 s");
		p->drip = 1;
	}
	if (is_mode(p, "slow-chunks")) {
		misbehaved(p, "sending chunks at 4 KiB/s, 1 KiB at a time");
		p->slow = 1;
	}
	if (is_mode(p, "wrong-chunk") && len > 0) {
		misbehaved(p, "flipped a byte in every chunk");
		data[len / 2] ^= 0xff;
	}
	if (is_mode(p, "overlong-chunk")) {
		misbehaved(p, "sent chunks 64 bytes longer than they are");
		memset(data + len, 0, 64);
		len += 64;
	}
	if (is_mode(p, "out-of-order")) {
		misbehaved(p, "answered chunk requests with the next rid");
		rid++;
	}
	if (is_mode(p, "truncated-frame")) {
		/* The frame is whole on the wire, the bin inside it is not. */
		uint8_t hdr[PROTO_CHUNK_HEADER_MAX];
		size_t hlen = proto_msg_chunk_header(rid, (uint32_t)len, hdr);
		size_t cut = hlen - PROTO_FRAME_HEADER + len / 2;
		misbehaved(p, "a CHUNK frame cut short inside, then close");
		rc = out_chunk(p, rid, data, len, (uint32_t)cut,
		    PROTO_FRAME_HEADER + cut);
		free(data);
		return rc ? rc : 1;
	}
	if (is_mode(p, "close-mid-chunk")) {
		uint8_t hdr[PROTO_CHUNK_HEADER_MAX];
		size_t hlen = proto_msg_chunk_header(rid, (uint32_t)len, hdr);
		misbehaved(p, "half a CHUNK, then close");
		rc = out_chunk(p, rid, data, len, 0, hlen + len / 2);
		free(data);
		return rc ? rc : 1;
	}
	rc = out_chunk(p, rid, data, len, 0, 0);
	free(data);
	return rc;
}

/* liar: a map of every chunk but the last, in the manifest's chunk size;
 * pex-flood: of none (a fetcher just started), so that it stays and is
 * asked for peers while the fetch lasts. */
static int
answer_interested(struct peer *p, const proto_msg *req)
{
	const proto_manifest *mf = p->srv->mf;
	size_t nbytes = (size_t)((mf->nchunks + 7) / 8);
	uint8_t *bits = calloc(1, nbytes ? nbytes : 1);
	proto_msg m;
	int rc;

	if (bits == NULL)
		die(1, "out of memory");
	for (uint64_t i = 0; is_mode(p, "liar") && i + 1 < mf->nchunks; i++)
		bits[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	proto_msg_init(&m, PROTO_MSG_HAVE_MAP);
	m.rid = req->rid;
	m.chunk_size = mf->chunk_size;
	m.bits = bits;
	m.bits_len = nbytes;
	rc = out_msg(p, &m);
	free(bits);
	p->subscribed = 1;
	return rc;
}

/* liar: a HAVE for a chunk it claimed already, which says nothing new
 * but keeps bytes coming, so that no idle timeout ever fires. */
static int
out_have(struct peer *p)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_HAVE);
	m.rid = 0;
	m.id = p->srv->mf->id;
	m.index = 0;
	return out_msg(p, &m);
}

static int
answer(struct peer *p, const proto_msg *req)
{
	struct server *srv = p->srv;
	proto_msg m;

	if (p->holding)
		return 0;
	if (is_mode(p, "push-unknown")) {
		uint8_t buf[64];
		misbehaved(p, "pushed messages of types 42, 99, 48 and 200 "
		    "(rid 0) before every answer");
		if (out(p, buf, unknown_pushes(buf)) != 0)
			return -1;
	}
	switch (req->type) {
	case PROTO_MSG_GET_MANIFEST:
		return answer_manifest(p, req);
	case PROTO_MSG_GET_CHUNK:
		return answer_chunk(p, req);
	case PROTO_MSG_LIST: {
		proto_list_entry e[LIST_FLOOD + 1] = { { .id = srv->mf->id,
		    .size = srv->mf->size, .name = srv->mf->name,
		    .name_len = strlen(srv->mf->name) } };
		proto_msg_init(&m, PROTO_MSG_LIST_REPLY);
		m.rid = req->rid;
		m.entries = e;
		m.nentries = 1;
		if (is_mode(p, "list-flood")) {
			list_flood(srv->mf->id, e + 1);
			m.nentries += LIST_FLOOD;
			misbehaved(p, "listed 300 more ids sharing the "
			    "file's first 8 hex digits, named with escapes");
		}
		return out_msg(p, &m);
	}
	case PROTO_MSG_HAS:
		proto_msg_init(&m, PROTO_MSG_HAS_REPLY);
		m.rid = req->rid;
		m.has = memcmp(req->id, srv->mf->id, PROTO_HASH_LEN) == 0;
		return out_msg(p, &m);
	case PROTO_MSG_PEERS: {
		proto_peer_entry e[PROTO_PEERS_MAX];
		char host[PROTO_PEERS_MAX][16];
		memset(e, 0, sizeof(e));
		proto_msg_init(&m, PROTO_MSG_PEERS_REPLY);
		m.rid = req->rid;
		if (is_mode(p, "pex-flood")) {
			/* 127.1.x.y port 1: nobody listens there, so each
			 * is refused at once and leaves room for the next. */
			for (unsigned i = 0; i < PROTO_PEERS_MAX; i++) {
				unsigned k = pex_next++;
				snprintf(host[i], sizeof(host[i]), "127.1.%u.%u",
				    (k >> 8) & 0xff, k & 0xff);
				e[i].host = host[i];
				e[i].host_len = strlen(host[i]);
				e[i].port = 1;
			}
			m.peers = e;
			m.npeers = PROTO_PEERS_MAX;
			misbehaved(p, "64 new closed addresses in every PEERS "
			    "answer");
			note("pex-flood: %u addresses named", pex_next);
		}
		return out_msg(p, &m);
	}
	case PROTO_MSG_INTERESTED:
		if (!is_mode(p, "liar") && !is_mode(p, "pex-flood"))
			break;
		return answer_interested(p, req);
	case PROTO_MSG_CANCEL:
		/* slow-start: the chunk went, or goes, anyway (it says no
		 * swarm cap: none comes). */
		if (is_mode(p, "slow-start"))
			return 0;
		break;
	default:
		break;
	}
	return out_error(p, req->rid, PROTO_CODE_BAD_REQUEST,
	    "unexpected message");
}

/*
 * maxreq: with a request read and not yet answered, the whole frames
 * waiting behind it in the socket are requests outstanding too. Given a
 * moment to arrive (a fetcher that ignores maxreq sends its window at
 * once), they are counted without being read.
 */
static void
count_outstanding(struct peer *p)
{
	static uint8_t buf[65536];
	ssize_t n;
	size_t at = 0;
	unsigned out = 1;

	sleep_ms(20);
	n = recv(p->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	while (n > 0 && at + PROTO_FRAME_HEADER <= (size_t)n) {
		uint32_t len = (uint32_t)buf[at] << 24 |
		    (uint32_t)buf[at + 1] << 16 | (uint32_t)buf[at + 2] << 8 |
		    buf[at + 3];
		if (at + PROTO_FRAME_HEADER + len > (size_t)n)
			break;
		at += PROTO_FRAME_HEADER + len;
		/* A CANCEL is no request. */
		if (len >= 2 && buf[at - len + 1] == PROTO_MSG_CANCEL)
			continue;
		out++;
	}
	if (out > p->most_out)
		p->most_out = out;
	p->answered++;
}

static void
serve_peer(struct server *srv, int fd, const char *who)
{
	struct peer p = { .srv = srv, .fd = fd };
	char name[PROTO_NODE_NAME_MAX + 1];
	uint8_t *body;
	proto_msg m;
	int r;

	snprintf(name, sizeof(name), "badpeer-%s", srv->mode);
	if (strcmp(srv->mode, "bad-version") == 0)
		misbehaved(&p, "HELLO with version 2");
	if (strcmp(srv->mode, "hostile-names") == 0) {
		snprintf(name, sizeof(name), "%s", HOSTILE_NAME);
		misbehaved(&p, "a node name and a file name with a newline, "
		    "a forged line, escapes and a tab");
	}
	if (send_hello(fd, strcmp(srv->mode, "bad-version") == 0 ? 2 :
	    PROTO_VERSION, name, srv->port, 1,
	    strcmp(srv->mode, "liar") == 0 ||
	    strcmp(srv->mode, "pex-flood") == 0 ? PROTO_CAP_SWARM : 0,
	    strcmp(srv->mode, "maxreq") == 0 ? MAXREQ_SAID : 0) != 0) {
		note("%s: HELLO: %s", who, strerror(errno));
		return;
	}
	if ((r = recv_msg(fd, &m, &body, IO_WAIT_MS)) <= 0) {
		note("%s: no HELLO: %s", who, r ? strerror(errno) : "closed");
		return;
	}
	if (m.type != PROTO_MSG_HELLO)
		note("%s: %s before HELLO", who, proto_msg_type_name(m.type));
	proto_msg_clear(&m);
	free(body);
	if (strcmp(srv->mode, "asks") == 0) {
		/* Requests flow from the connecting side only, without the
		 * duplex cap in both HELLOs (ours has none). */
		proto_msg_init(&m, PROTO_MSG_LIST);
		m.rid = 1;
		misbehaved(&p, "a LIST to the node that connected, without "
		    "the duplex cap");
		if (send_msg(fd, &m) != 0) {
			note("%s: gone", who);
			return;
		}
	}
	if (strcmp(srv->mode, "stall") == 0) {
		misbehaved(&p, "silent after the handshake");
		drain(fd, 600000, NULL);
		note("%s: gone", who);
		return;
	}
	for (;;) {
		/* Idle for long: the fetcher decides when to go. The liar
		 * speaks up every few seconds once subscribed, and
		 * slow-start once started. */
		if (p.subscribed) {
			r = wait_fd(fd, POLLIN, HAVE_EVERY_MS);
			if (r == 0) {
				if (out_have(&p) != 0) {
					note("%s: gone", who);
					return;
				}
				continue;
			}
		}
		if ((r = recv_msg(fd, &m, &body, 600000)) <= 0) {
			note("%s: %s", who, r ? strerror(errno) : "closed");
			break;
		}
		if (strcmp(srv->mode, "maxreq") == 0)
			count_outstanding(&p);
		r = answer(&p, &m);
		proto_msg_clear(&m);
		free(body);
		if (r != 0) {
			note("%s: %s", who, r > 0 ? "closing" : "gone");
			break;
		}
	}
	if (p.refused > 0)
		note("%s: %u GET_MANIFEST, %u GET_CHUNK asked, %u refused", who,
		    p.manifests_asked, p.chunks_asked, p.refused);
	if (strcmp(srv->mode, "maxreq") == 0)
		note("maxreq: at most %u requests outstanding (maxreq %u), %u "
		    "answered", p.most_out, MAXREQ_SAID, p.answered);
}

/* A copy of mf (without path) whose chunk layer has one byte flipped;
 * with reid, the id is recomputed to match, making it the valid manifest
 * of other bytes. */
static proto_manifest *
altered(const proto_manifest *mf, int reid)
{
	proto_manifest *a = calloc(1, sizeof(*a));
	size_t n = mf->nchunks * PROTO_HASH_LEN;

	if (a == NULL || (a->name = strdup(mf->name)) == NULL ||
	    (a->chunks = malloc(n)) == NULL)
		die(1, "out of memory");
	memcpy(a->id, mf->id, PROTO_HASH_LEN);
	a->size = mf->size;
	a->chunk_size = mf->chunk_size;
	a->nchunks = mf->nchunks;
	memcpy(a->chunks, mf->chunks, n);
	a->chunks[0] ^= 0x01;
	if (reid && proto_hash_content_id(a->chunks, a->nchunks,
	    a->chunk_size, a->size, a->id) != 0)
		die(1, "cannot hash the other manifest");
	return a;
}

/* A manifest may be as large as PROTO_MANIFEST_MAX (512 MiB): read into a
 * buffer grown as the file goes, not one that large from the start. */
static proto_manifest *
load_manifest(const char *path)
{
	uint8_t *buf = NULL;
	proto_manifest *mf;
	size_t len = 0, cap = 0;
	ssize_t n = 1;
	long used;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die(1, "%s: %s", path, strerror(errno));
	while (n > 0 && len < PROTO_MANIFEST_MAX) {
		if (len == cap) {
			cap = cap ? 2 * cap : 65536;
			if ((buf = realloc(buf, cap)) == NULL)
				die(1, "out of memory");
		}
		if ((n = read(fd, buf + len, cap - len)) > 0)
			len += (size_t)n;
	}
	close(fd);
	if ((used = proto_manifest_unpack(buf, len, &mf)) <= 0)
		die(1, "%s: not a manifest: %s", path, used == 0 ?
		    "truncated" : proto_strerror((int)used));
	free(buf);
	return mf;
}

static const char *serve_modes[] = { "honest", "wrong-chunk",
	"wrong-manifest", "forged-manifest", "truncated-frame", "huge-length",
	"bomb-array", "bomb-nested", "bomb-str", "unknown-type", "out-of-order",
	"unrequested", "overlong-chunk", "drip", "drip-chunks", "slow-chunks",
	"stall", "stall-chunks", "close-mid-chunk", "bad-version", "liar",
	"pex-flood", "hostile-names", "slow-start", "push-unknown", "error-code",
	"busy", "maxreq", "asks", "list-flood", NULL };

static int
known(const char *const *modes, const char *mode)
{
	for (int i = 0; modes[i] != NULL; i++)
		if (strcmp(modes[i], mode) == 0)
			return 1;
	return 0;
}

static int
serve(int argc, char **argv)
{
	struct server srv;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int one = 1, lfd;

	if (argc != 4) {
		usage(stderr);
		return 2;
	}
	memset(&srv, 0, sizeof(srv));
	srv.mode = argv[1];
	if (!known(serve_modes, srv.mode))
		die(2, "unknown serve mode '%s'", srv.mode);
	srv.mf = load_manifest(argv[2]);
	/* The name is not part of the content id: still a valid manifest. */
	if (strcmp(srv.mode, "hostile-names") == 0) {
		free(srv.mf->name);
		if ((srv.mf->name = strdup(HOSTILE_NAME)) == NULL)
			die(1, "out of memory");
	}
	if ((srv.file = open(argv[3], O_RDONLY | O_CLOEXEC)) < 0)
		die(1, "%s: %s", argv[3], strerror(errno));
	srv.other = altered(srv.mf, 1);
	srv.forged = altered(srv.mf, 0);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die(1, "socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) != 0)
		die(1, "listen on 127.0.0.1: %s", strerror(errno));
	srv.port = ntohs(sin.sin_port);
	printf("127.0.0.1:%u\n", (unsigned)srv.port);
	fflush(stdout);
	note("serving %s as '%s' on 127.0.0.1:%u", argv[3], srv.mode,
	    (unsigned)srv.port);
	/* One fetcher at a time is all a test needs. */
	for (;;) {
		char who[64];
		int fd;
		len = sizeof(sin);
		fd = accept4(lfd, (struct sockaddr *)&sin, &len, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die(1, "accept: %s", strerror(errno));
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		snprintf(who, sizeof(who), "127.0.0.1:%u",
		    (unsigned)ntohs(sin.sin_port));
		note("%s: connected", who);
		serve_peer(&srv, fd, who);
		close(fd);
	}
}

/* ---- attack role ---- */

struct attack {
	const char *mode, *addr;
	struct sockaddr_storage ss;
	socklen_t sslen;
	uint8_t id[PROTO_HASH_LEN];
	int have_id;
	unsigned count, secs;
	uint64_t first;           /* pipeline, never-read: first chunk asked */
	uint32_t chunk_size;      /* of the file, once asked */
	uint64_t nchunks;
	uint32_t rid;
	struct in_addr from;      /* bind here first; 0: the kernel's choice */
	int many;                 /* connection i from from + i */
};

/* Binds fd to the source address of connection i, as -f and -m say. */
static void
bind_from(const struct attack *a, int fd, unsigned i)
{
	struct sockaddr_in sin;

	if (a->from.s_addr == 0)
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(ntohl(a->from.s_addr) + (a->many ? i : 0));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		die(1, "bind %s: %s", inet_ntoa(sin.sin_addr), strerror(errno));
}

/* A connected socket, or -1 (with a note). Nonblocking connect, bounded. */
static int
dial(struct attack *a)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0), one = 1, err = 0;
	socklen_t len = sizeof(err);

	if (fd < 0) {
		note("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&a->ss, a->sslen) != 0 &&
	    errno != EINPROGRESS) {
		note("connect %s: %s", a->addr, strerror(errno));
		close(fd);
		return -1;
	}
	if (wait_fd(fd, POLLOUT, REACTION_MS) <= 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
		note("connect %s: %s", a->addr, err ? strerror(err) :
		    "timed out");
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* HELLO both ways. 0, or -1 (with a note). */
static int
greet(struct attack *a, int fd)
{
	uint8_t *body;
	proto_msg m;
	int r;

	if (send_hello(fd, PROTO_VERSION, "badpeer-attack", 0, 0, 0, 0) != 0) {
		note("%s: HELLO: %s", a->addr, strerror(errno));
		return -1;
	}
	if ((r = recv_msg(fd, &m, &body, REACTION_MS)) <= 0) {
		note("%s: no HELLO from the server: %s", a->addr,
		    r ? strerror(errno) : "closed");
		return -1;
	}
	r = m.type == PROTO_MSG_HELLO ? 0 : -1;
	if (r)
		note("%s: %s instead of HELLO", a->addr,
		    proto_msg_type_name(m.type));
	proto_msg_clear(&m);
	free(body);
	return r;
}

/* Asks for the manifest of a->id, honestly, to learn the chunk size. */
static int
learn_file(struct attack *a, int fd)
{
	uint8_t *body;
	proto_msg m;
	int r;

	if (!a->have_id)
		die(2, "attack %s needs an ID", a->mode);
	proto_msg_init(&m, PROTO_MSG_GET_MANIFEST);
	m.rid = a->rid++;
	m.id = a->id;
	if (send_msg(fd, &m) != 0) {
		note("%s: GET_MANIFEST: %s", a->addr, strerror(errno));
		return -1;
	}
	if ((r = recv_msg(fd, &m, &body, IO_WAIT_MS)) <= 0) {
		note("%s: no manifest: %s", a->addr, r ? strerror(errno) :
		    "the server closed");
		return -1;
	}
	if (m.type != PROTO_MSG_MANIFEST) {
		note("%s: %s instead of MANIFEST", a->addr,
		    proto_msg_type_name(m.type));
		proto_msg_clear(&m);
		free(body);
		return -1;
	}
	a->chunk_size = m.manifest->chunk_size;
	a->nchunks = m.manifest->nchunks;
	proto_msg_clear(&m);
	free(body);
	return 0;
}

/* A GET_CHUNK frame for the n-th chunk (wrapping) into buf (64 bytes). */
static size_t
get_chunk_frame(struct attack *a, uint64_t n, uint8_t *buf)
{
	proto_msg m;
	uint8_t *frame;
	size_t len;

	proto_msg_init(&m, PROTO_MSG_GET_CHUNK);
	m.rid = a->rid++;
	m.id = a->id;
	m.index = (a->first + n) % a->nchunks;
	m.chunk_size = a->chunk_size;
	if (proto_msg_pack(&m, &frame, &len) != 0 || len > 64)
		die(1, "cannot pack GET_CHUNK");
	memcpy(buf, frame, len);
	free(frame);
	return len;
}

/*
 * The attacks made of one bad message, repeated on fresh connections until
 * the time is up (so a leak shows in the server's memory). What the server
 * should do: close on a protocol error (huge-length, bomb-*), answer ERROR
 * BAD_REQUEST and stay (unknown-type), wait for the rest of a frame and
 * free it when the peer gives up (truncated-frame: half of a 4 KiB frame,
 * a request length any node accepts, then we close).
 */
static int
attack_rounds(struct attack *a)
{
	long long end = now_ms() + (long long)a->secs * 1000;
	unsigned rounds = 0, closed = 0, open = 0, answered = 0, wrong = 0;
	unsigned early = 0;
	int said = 0;

	do {
		int fd = dial(a);
		if (fd < 0)
			return 1;
		if (greet(a, fd) != 0) {
			close(fd);
			return 1;
		}
		if (!said) {
			note("attack %s: under way", a->mode);
			said = 1;
		}
		rounds++;
		if (strcmp(a->mode, "huge-length") == 0) {
			static uint8_t junk[1u << 20];
			if (send_all(fd, "\xff\xff\xff\xff", 4, REACTION_MS) ==
			    0)
				send_all(fd, junk, sizeof(junk), REACTION_MS);
		} else if (strncmp(a->mode, "bomb-", 5) == 0) {
			size_t len;
			uint8_t *f = bomb_frame(a->mode, a->rid++, &len);
			send_all(fd, f, len, REACTION_MS);
			free(f);
		} else if (strcmp(a->mode, "unknown-type") == 0) {
			uint8_t f[PROTO_FRAME_HEADER + 16];
			for (unsigned i = 0; i < 100; i++) {
				size_t n = put_head(f + PROTO_FRAME_HEADER, 2,
				    200, a->rid + i);
				proto_frame_put_len(f, (uint32_t)n);
				if (send_all(fd, f, PROTO_FRAME_HEADER + n,
				    REACTION_MS) != 0)
					break;
			}
			for (unsigned i = 0; i < 100; i++) {
				uint8_t *body;
				proto_msg m;
				if (recv_msg(fd, &m, &body, REACTION_MS) <= 0)
					break;
				if (m.type == PROTO_MSG_ERROR && m.rid ==
				    a->rid + i && m.code ==
				    PROTO_CODE_BAD_REQUEST)
					answered++;
				else
					wrong++;
				proto_msg_clear(&m);
				free(body);
			}
			a->rid += 100;
			/* An answered request is no reason to close. */
			if (wait_fd(fd, POLLIN, 200) != 0)
				closed++;
			else
				open++;
			close(fd);
			continue;
		} else {
			/* truncated-frame: a GET_CHUNK opening, then a bin
			 * 16 that the frame's end will never reach */
			uint8_t f[PROTO_FRAME_HEADER + 2048];
			memset(f, 0, sizeof(f));
			proto_frame_put_len(f, 4096);
			f[4] = 0x95;
			f[5] = PROTO_MSG_GET_CHUNK;
			f[7] = 0xc5;
			f[8] = 0x0f;
			f[9] = 0xf0;
			if (send_all(fd, f, sizeof(f), REACTION_MS) != 0 ||
			    wait_fd(fd, POLLIN, 200) != 0)
				early++;
			close(fd);
			continue;
		}
		if (drain(fd, REACTION_MS, NULL))
			closed++;
		else
			open++;
		close(fd);
	} while (now_ms() < end && !stop);
	if (strcmp(a->mode, "unknown-type") == 0)
		note("attack %s: %u rounds of 100 requests: %u answered "
		    "ERROR BAD_REQUEST, %u otherwise; connection kept %u, "
		    "closed %u", a->mode, rounds, answered, wrong, open,
		    closed);
	else if (strcmp(a->mode, "truncated-frame") == 0)
		note("attack %s: %u rounds of half a 4 KiB frame, then "
		    "close; the server closed first %u times", a->mode, rounds,
		    early);
	else
		note("attack %s: %u rounds: the server closed %u, kept %u "
		    "open past %d s", a->mode, rounds, closed, open,
		    REACTION_MS / 1000);
	return 0;
}

/* Many connections, each greeted (flood-silent: never), held for the time
 * given; drip also sends a GET_CHUNK on each, a byte every 2 s; trickle
 * sends no HELLO but the start of a TLS ClientHello record (of a HELLO
 * frame when MINI_P2P_NO_TLS=1), a byte every 2 s, so that the server's
 * handshake never ends. Ends early once the server has closed every one. */
struct held {
	int hello_sent, greeted;  /* our HELLO out; the server's in */
	size_t dripped;           /* request bytes sent */
	long long gone;           /* ms from the start when it closed */
};

static int
attack_hold(struct attack *a)
{
	int silent = strcmp(a->mode, "flood-silent") == 0;
	int trickle = strcmp(a->mode, "trickle") == 0;
	int drip = strcmp(a->mode, "drip") == 0 || trickle;
	struct pollfd *pf = calloc(a->count, sizeof(*pf));
	struct held *h = calloc(a->count, sizeof(*h));
	long long start, end, next_drip, first = -1, last = -1;
	unsigned open = 0, closed = 0, greeted = 0, answered = 0, up = 0;
	uint8_t req[64];
	size_t reqlen = 0;

	if (pf == NULL || h == NULL)
		die(1, "out of memory");
	if (trickle) {
		const char *plain = getenv("MINI_P2P_NO_TLS");
		/* A handshake record (TLS 1.0 framing, 512 bytes), or a HELLO
		 * frame of 512 bytes: either way far more than 2 s a byte
		 * lets arrive within any timeout. */
		static const uint8_t tls[] = { 0x16, 0x03, 0x01, 0x02, 0x00 };
		static const uint8_t frame[] = { 0x00, 0x00, 0x02, 0x00 };
		memset(req, 0, sizeof(req));
		if (plain != NULL && strcmp(plain, "1") == 0) {
			memcpy(req, frame, sizeof(frame));
		} else
			memcpy(req, tls, sizeof(tls));
		reqlen = sizeof(req);
	} else if (drip) {
		int fd = dial(a);
		if (fd < 0 || greet(a, fd) != 0 || learn_file(a, fd) != 0) {
			free(pf);
			free(h);
			return 1;
		}
		close(fd);
		reqlen = get_chunk_frame(a, 0, req);
	}
	for (unsigned i = 0; i < a->count; i++) {
		int one = 1;
		pf[i].fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, 0);
		if (pf[i].fd < 0)
			die(1, "socket: %s", strerror(errno));
		setsockopt(pf[i].fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		bind_from(a, pf[i].fd, i);
		if (connect(pf[i].fd, (struct sockaddr *)&a->ss, a->sslen) !=
		    0 && errno != EINPROGRESS) {
			note("connect %s: %s", a->addr, strerror(errno));
			return 1;
		}
		pf[i].events = POLLIN | POLLOUT;
		open++;
	}
	start = now_ms();
	end = start + (long long)a->secs * 1000;
	next_drip = start + DRIP_MS;
	note("attack %s: under way, %u connections", a->mode, a->count);
	while (open > 0 && now_ms() < end && !stop) {
		long long t = now_ms(), until = drip && next_drip < end ?
		    next_drip : end;
		if (poll(pf, a->count, until > t ? (int)(until - t) : 0) < 0 &&
		    errno != EINTR)
			die(1, "poll: %s", strerror(errno));
		t = now_ms();
		for (unsigned i = 0; i < a->count; i++) {
			uint8_t buf[4096];
			ssize_t n;
			if (pf[i].fd < 0)
				continue;
			if ((pf[i].revents & POLLOUT) && !h[i].hello_sent) {
				/* Connected: a HELLO fits any socket buffer. */
				pf[i].events = POLLIN;
				h[i].hello_sent = 1;
				if (++up == a->count)
					note("attack %s: all %u connected",
					    a->mode, a->count);
				if (!silent && !trickle && send_hello(pf[i].fd,
				    PROTO_VERSION, "badpeer-flood", 0, 0, 0, 0) != 0)
					pf[i].revents |= POLLERR;
			}
			if (!(pf[i].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			n = recv(pf[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n > 0) {
				/* The server's HELLO; after it, the answer to
				 * a dripped request that got through. */
				if (!h[i].greeted)
					greeted++;
				else if (h[i].dripped == reqlen && drip)
					answered++;
				h[i].greeted = 1;
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			close(pf[i].fd);
			pf[i].fd = -1;
			h[i].gone = t - start;
			if (first < 0)
				first = h[i].gone;
			last = h[i].gone;
			open--;
			closed++;
		}
		if (drip && t >= next_drip) {
			for (unsigned i = 0; i < a->count; i++)
				if (pf[i].fd >= 0 && h[i].hello_sent &&
				    h[i].dripped < reqlen &&
				    send_all(pf[i].fd, req + h[i].dripped, 1,
				    REACTION_MS) == 0)
					h[i].dripped++;
			next_drip = t + DRIP_MS;
		}
	}
	for (unsigned i = 0; i < a->count; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	if (closed > 0)
		note("attack %s: %u connections, %u greeted by the server; "
		    "the server closed %u (the first after %lld ms, the last "
		    "after %lld ms), %u still open", a->mode, a->count,
		    greeted, closed, first, last, open);
	else
		note("attack %s: %u connections, %u greeted by the server; "
		    "the server closed none in %u s", a->mode, a->count,
		    greeted, a->secs);
	if (drip && !trickle)
		note("attack %s: %u dripped requests answered", a->mode,
		    answered);
	free(pf);
	free(h);
	return 0;
}

/* big-frame: on each of count connections, a request frame of the largest
 * legal length (16 MiB) all but its last byte, held for secs. A request is
 * never longer than a hundred bytes; what the server keeps of these shows
 * in its memory. */
static int
attack_big_frame(struct attack *a)
{
	static uint8_t body[PROTO_FRAME_MAX];
	int *fds = calloc(a->count, sizeof(*fds));
	size_t taken = 0;
	unsigned closed = 0;
	uint8_t hdr[PROTO_FRAME_HEADER];

	if (fds == NULL)
		die(1, "out of memory");
	/* A GET_CHUNK opening, then a bin32 holding the rest. */
	body[0] = 0x95;
	body[1] = PROTO_MSG_GET_CHUNK;
	body[2] = 0x00;
	body[3] = 0xc6;
	put_be32(body + 4, PROTO_FRAME_MAX - 8);
	proto_frame_put_len(hdr, PROTO_FRAME_MAX);
	for (unsigned i = 0; i < a->count; i++) {
		const uint8_t *p = body;
		size_t left = PROTO_FRAME_MAX - 1;
		if ((fds[i] = dial(a)) < 0 || greet(a, fds[i]) != 0)
			return 1;
		if (i == 0)
			note("attack %s: under way, %u connections", a->mode,
			    a->count);
		if (send_all(fds[i], hdr, sizeof(hdr), REACTION_MS) != 0)
			continue;
		/* What the server reads within a second of the last write. */
		while (left > 0) {
			ssize_t n;
			if (wait_fd(fds[i], POLLOUT, 1000) <= 0)
				break;
			n = send(fds[i], p, left, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n <= 0)
				break;
			p += n;
			left -= (size_t)n;
			taken += (size_t)n;
		}
	}
	for (long long end = now_ms() + (long long)a->secs * 1000;
	    now_ms() < end && !stop;)
		sleep_ms(100);
	for (unsigned i = 0; i < a->count; i++) {
		closed += wait_fd(fds[i], POLLRDHUP, 0) != 0;
		close(fds[i]);
	}
	note("attack %s: %u connections took %zu bytes of 16 MiB frames in "
	    "all (%zu KiB each on average); the server closed %u", a->mode,
	    a->count, taken, taken / 1024 / a->count, closed);
	free(fds);
	return 0;
}

/* pipeline: count GET_CHUNK requests at once, nothing read for secs, then
 * every answer read and checked in order. never-read: the requests, then
 * nothing read ever; reports when the server gives up on us. */
static int
attack_requests(struct attack *a)
{
	int never = strcmp(a->mode, "never-read") == 0;
	size_t cap = (size_t)a->count * 64, len = 0, off = 0;
	uint8_t *reqs = malloc(cap ? cap : 1);
	long long start, quiet_end;
	uint32_t first_rid;
	unsigned chunks = 0, errors = 0, wrong = 0, got = 0;
	int fd, closed = 0;

	if (reqs == NULL)
		die(1, "out of memory");
	if ((fd = dial(a)) < 0 || greet(a, fd) != 0 ||
	    learn_file(a, fd) != 0) {
		free(reqs);
		return 1;
	}
	first_rid = a->rid;
	for (unsigned i = 0; i < a->count; i++)
		len += get_chunk_frame(a, i, reqs + len);
	start = now_ms();
	quiet_end = start + (long long)a->secs * 1000;
	note("attack %s: under way, %u requests", a->mode, a->count);
	/* Write what the server takes, read nothing. */
	while (now_ms() < quiet_end && !closed && !stop) {
		int r = wait_fd(fd, off < len ? POLLOUT | POLLRDHUP : POLLRDHUP,
		    (int)(quiet_end - now_ms()));
		if (r > 0 && (r & (POLLERR | POLLHUP | POLLRDHUP))) {
			closed = 1;
			break;
		}
		if (r > 0 && (r & POLLOUT)) {
			ssize_t n = send(fd, reqs + off, len - off,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				closed = 1;
		}
	}
	if (closed) {
		note("attack %s: the server closed the connection after "
		    "%lld ms, %zu of %zu request bytes taken", a->mode,
		    now_ms() - start, off, len);
		close(fd);
		free(reqs);
		return 0;
	}
	if (never) {
		/* Only now read: a stream that ends (after what was queued for
		 * us) shows the server gave up on us meanwhile. */
		size_t waiting = 0;
		int eof = drain(fd, 3000, &waiting);
		note("attack %s: %zu of %zu request bytes taken; after %u s "
		    "unread, %zu answer bytes were waiting and the server had %s",
		    a->mode, off, len, a->secs, waiting, eof ?
		    "closed the connection" : "kept the connection open");
		close(fd);
		free(reqs);
		return 0;
	}
	/* Now read every answer, sending the rest of the requests too. */
	while (got < a->count && !stop) {
		struct pollfd p = { fd, (short)(POLLIN | (off < len ? POLLOUT :
		    0)), 0 };
		uint8_t *body;
		proto_msg m;
		int r;
		if (poll(&p, 1, 2 * REACTION_MS) <= 0) {
			note("attack %s: no answer for %d s", a->mode,
			    2 * REACTION_MS / 1000);
			break;
		}
		if (p.revents & POLLOUT) {
			ssize_t n = send(fd, reqs + off, len - off,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
		}
		if (!(p.revents & (POLLIN | POLLERR | POLLHUP)))
			continue;
		if ((r = recv_msg(fd, &m, &body, IO_WAIT_MS)) <= 0) {
			note("attack %s: answer %u: %s", a->mode, got,
			    r ? strerror(errno) : "the server closed");
			break;
		}
		if (m.rid != first_rid + got)
			wrong++;
		if (m.type == PROTO_MSG_CHUNK)
			chunks++;
		else if (m.type == PROTO_MSG_ERROR)
			errors++;
		else
			wrong++;
		got++;
		proto_msg_clear(&m);
		free(body);
	}
	note("attack %s: %u of %u answers after %lld ms: %u CHUNK, %u ERROR, "
	    "%u out of order or unexpected", a->mode, got, a->count,
	    now_ms() - start, chunks, errors, wrong);
	close(fd);
	free(reqs);
	return 0;
}

static const char *attack_modes[] = { "huge-length", "bomb-array",
	"bomb-nested", "bomb-str", "unknown-type", "truncated-frame", "drip",
	"pipeline", "never-read", "flood-connect", "flood-silent", "big-frame",
	"hostile-names", "trickle", "push-unknown", NULL };

/* hostile-names: a HELLO with the hostile node name and a LIST, then a
 * refusal (ERROR VERSION, rid 0) whose text is the hostile name: the
 * server logs both, which must not forge its lines. */
static int
attack_names(struct attack *a)
{
	uint8_t *body;
	proto_msg m;
	int fd, r;

	if ((fd = dial(a)) < 0)
		return 1;
	if (send_hello(fd, PROTO_VERSION, HOSTILE_NAME, 0, 0, 0, 0) != 0 ||
	    recv_msg(fd, &m, &body, REACTION_MS) <= 0) {
		note("attack %s: no HELLO from the server", a->mode);
		close(fd);
		return 1;
	}
	proto_msg_clear(&m);
	free(body);
	proto_msg_init(&m, PROTO_MSG_LIST);
	m.rid = a->rid++;
	if (send_msg(fd, &m) == 0 && (r = recv_msg(fd, &m, &body,
	    REACTION_MS)) > 0) {
		proto_msg_clear(&m);
		free(body);
	}
	note("attack %s: HELLO named with a newline, a forged line and "
	    "escapes, and a LIST", a->mode);
	proto_msg_init(&m, PROTO_MSG_ERROR);
	m.rid = 0;
	m.code = PROTO_CODE_VERSION;
	m.text = HOSTILE_NAME;
	m.text_len = strlen(HOSTILE_NAME);
	r = send_msg(fd, &m);
	drain(fd, REACTION_MS, NULL);
	close(fd);
	note("attack %s: %s", a->mode, r == 0 ? "a refusal with the same "
	    "text" : "the refusal could not be sent");
	return 0;
}

/*
 * push-unknown: a newer peer's news pushed (rid 0) to a server between
 * requests: types it does not know, and a HAVE, which a server has no use
 * for. None may be answered (an answer to rid 0 is no answer at all) nor
 * end the connection: the requests around them are answered, in order,
 * and nothing else comes. A last request closes the check: every answer
 * to what went before it comes first.
 */
static int
attack_pushes(struct attack *a)
{
	uint8_t buf[4096];
	size_t n = 0;
	uint32_t want[3];
	unsigned answered = 0, other = 0;
	proto_msg m;
	uint8_t *body, *frame;
	size_t len;
	int fd, r;

	if ((fd = dial(a)) < 0 || greet(a, fd) != 0 || learn_file(a, fd) != 0)
		return 1;
	n += unknown_pushes(buf + n);
	want[0] = a->rid;
	n += get_chunk_frame(a, 0, buf + n);
	n += unknown_pushes(buf + n);
	proto_msg_init(&m, PROTO_MSG_HAVE);
	m.id = a->id;
	m.index = 0;
	if (proto_msg_pack(&m, &frame, &len) != 0)
		die(1, "cannot pack HAVE");
	memcpy(buf + n, frame, len);
	n += len;
	free(frame);
	want[1] = a->rid;
	n += get_chunk_frame(a, 1, buf + n);
	n += unknown_pushes(buf + n);
	proto_msg_init(&m, PROTO_MSG_PEERS);
	m.rid = want[2] = a->rid++;
	if (proto_msg_pack(&m, &frame, &len) != 0)
		die(1, "cannot pack PEERS");
	memcpy(buf + n, frame, len);
	n += len;
	free(frame);
	note("attack %s: under way", a->mode);
	if (send_all(fd, buf, n, REACTION_MS) != 0) {
		note("attack %s: send: %s", a->mode, strerror(errno));
		close(fd);
		return 1;
	}
	while (answered + other < 3 &&
	    (r = recv_msg(fd, &m, &body, REACTION_MS)) > 0) {
		unsigned want_type = answered < 2 ? PROTO_MSG_CHUNK :
		    PROTO_MSG_PEERS_REPLY;
		if (m.type == want_type && m.rid == want[answered])
			answered++;
		else {
			note("attack %s: unexpected %s rid %u", a->mode,
			    proto_msg_type_name(m.type), m.rid);
			other++;
		}
		proto_msg_clear(&m);
		free(body);
	}
	note("attack %s: 10 pushes among 3 requests: %u answered in order, %u "
	    "other messages; connection %s", a->mode, answered, other,
	    answered == 3 && wait_fd(fd, POLLIN, 200) == 0 ? "kept" : "closed");
	close(fd);
	return 0;
}

static int
attack(int argc, char **argv)
{
	struct attack a;
	int ch;
	char *end;

	memset(&a, 0, sizeof(a));
	a.secs = 10;
	/* rid 0 is no request but a push (PROTOCOL.md): never answered. */
	a.rid = 1;
	optind = 1;
	while ((ch = getopt(argc, argv, "f:i:mn:t:")) != -1) {
		unsigned long v;
		switch (ch) {
		case 'f':
			if (inet_pton(AF_INET, optarg, &a.from) != 1)
				die(2, "source address '%s': want IPv4", optarg);
			break;
		case 'm':
			a.many = 1;
			break;
		case 'i':
			errno = 0;
			a.first = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end)
				die(2, "first chunk '%s': want a number", optarg);
			break;
		case 'n':
		case 't':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 1 ||
			    v > 1000000)
				die(2, "%s '%s': want 1..1000000", ch == 'n' ?
				    "count" : "seconds", optarg);
			if (ch == 'n')
				a.count = (unsigned)v;
			else
				a.secs = (unsigned)v;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2 || argc > 3) {
		usage(stderr);
		return 2;
	}
	a.mode = argv[0];
	a.addr = argv[1];
	if (!known(attack_modes, a.mode))
		die(2, "unknown attack mode '%s'", a.mode);
	if (argc == 3) {
		if (proto_id_parse(argv[2], a.id) != 0)
			die(2, "malformed content id '%s'", argv[2]);
		a.have_id = 1;
	}
	{
		char host[256], *colon;
		struct addrinfo hints, *res;
		snprintf(host, sizeof(host), "%s", a.addr);
		if ((colon = strrchr(host, ':')) == NULL)
			die(2, "'%s': want HOST:PORT", a.addr);
		*colon = '\0';
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
		if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
			die(2, "'%s': want a numeric HOST:PORT", a.addr);
		memcpy(&a.ss, res->ai_addr, res->ai_addrlen);
		a.sslen = res->ai_addrlen;
		freeaddrinfo(res);
	}
	if (strcmp(a.mode, "pipeline") == 0 || strcmp(a.mode, "never-read") ==
	    0) {
		if (a.count == 0)
			a.count = strcmp(a.mode, "pipeline") == 0 ? 10000 :
			    1000;
		return attack_requests(&a);
	}
	if (strcmp(a.mode, "drip") == 0 || strncmp(a.mode, "flood-", 6) == 0 ||
	    strcmp(a.mode, "trickle") == 0) {
		if (a.count == 0)
			a.count = strcmp(a.mode, "drip") == 0 ? 1 : 200;
		return attack_hold(&a);
	}
	if (strcmp(a.mode, "hostile-names") == 0)
		return attack_names(&a);
	if (strcmp(a.mode, "push-unknown") == 0)
		return attack_pushes(&a);
	if (strcmp(a.mode, "big-frame") == 0) {
		if (a.count == 0)
			a.count = 10;
		return attack_big_frame(&a);
	}
	return attack_rounds(&a);
}

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "attack") == 0) {
		/* No SA_RESTART: a wait in poll() ends at once. */
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_term;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		return attack(argc - 1, argv + 1);
	}
	usage(stderr);
	return 2;
}
