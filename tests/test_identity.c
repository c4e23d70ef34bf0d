/*
 * Unit tests for libproto/identity.c: the key file is made once, kept
 * private and gives the same identity every time; two nodes complete a TLS
 * 1.3 handshake and each learns the other's identity; TLS connections freed
 * in the middle of a stream leave nothing behind once the base is freed;
 * a chunk over TLS goes out as fast as the socket takes it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "proto.h"
#include "identity.h"
#include "tap.h"

/* Runs both ends of a handshake over a memory BIO pair. 1 when done. */
static int
handshake(SSL *client, SSL *server)
{
	BIO *cb, *sb;
	int cdone = 0, sdone = 0;

	if (!BIO_new_bio_pair(&cb, 0, &sb, 0))
		return 0;
	SSL_set_bio(client, cb, cb);
	SSL_set_bio(server, sb, sb);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);
	for (int i = 0; i < 100 && !(cdone && sdone); i++) {
		if (!cdone)
			cdone = SSL_do_handshake(client) == 1;
		if (!sdone)
			sdone = SSL_do_handshake(server) == 1;
	}
	return cdone && sdone;
}

/* A server and a client proto_conn on base, TLS over a socketpair; the
 * client's socket in *client_fd. The server's socket has room for sndbuf
 * bytes when not 0. Exits 2 when the system fails. */
static void
tls_pair_buf(struct event_base *base, const proto_conn_config *scfg,
    const proto_conn_config *ccfg, const proto_conn_cbs *cbs, void *arg,
    proto_conn **server, proto_conn **client, int *client_fd, int sndbuf)
{
	struct bufferevent *bev;
	int sv[2];

	if (base == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		exit(2);
	if (sndbuf != 0)
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
		    sizeof(sndbuf));
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	*server = proto_conn_accept(base, sv[0], scfg, cbs, arg);
	bev = bufferevent_openssl_socket_new(base, sv[1], SSL_new(ccfg->tls),
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	*client = bev ? proto_conn_new(bev, ccfg, cbs, arg) : NULL;
	*client_fd = sv[1];
}

static void
tls_pair(struct event_base *base, const proto_conn_config *scfg,
    const proto_conn_config *ccfg, const proto_conn_cbs *cbs, void *arg,
    proto_conn **server, proto_conn **client, int *client_fd)
{
	tls_pair_buf(base, scfg, ccfg, cbs, arg, server, client, client_fd, 0);
}

/* Two TLS proto_conns over a socketpair: both send messages as soon as
 * they are ready; the first to arrive frees both, inside its callback, while
 * more are on the way both ways and libevent has callbacks queued. */
struct pair {
	struct event_base *base;
	proto_conn *client, *server;
	int ready, got;
};

static void
pair_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct pair *p = arg;
	proto_msg m;

	(void)hello;
	p->ready++;
	proto_msg_init(&m, PROTO_MSG_PEERS);
	for (uint32_t rid = 1; rid <= 200; rid++) {
		m.rid = rid;
		proto_conn_send(c, &m);
	}
}

static void
pair_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct pair *p = arg;

	(void)c;
	(void)m;
	if (p->got++ > 0)
		return;
	proto_conn_free(p->client);
	proto_conn_free(p->server);
	p->server = p->client = NULL;
	/* As a tool ends: what else the loop had to run stays queued. */
	event_base_loopbreak(p->base);
}

static void
pair_close(proto_conn *c, int err, void *arg)
{
	(void)c;
	(void)err;
	(void)arg;
}

/* LeakSanitizer (make check-asan) or valgrind judge this one: a
 * bufferevent_openssl freed in the loop's last turn used to outlive
 * event_base_free. */
static void
test_freed_mid_stream(SSL_CTX *cctx, SSL_CTX *sctx)
{
	static const proto_conn_cbs cbs = { pair_ready, pair_msg, pair_close,
	    NULL, NULL, NULL };
	proto_conn_config ccfg = { 0 }, scfg = { 0 };
	struct event_base *base = event_base_new();
	struct pair p = { base, NULL, NULL, 0, 0 };
	struct timeval limit = { 10, 0 };
	int fd;

	ccfg.tls = cctx;
	scfg.tls = sctx;
	tls_pair(base, &scfg, &ccfg, &cbs, &p, &p.server, &p.client, &fd);
	ok(p.server && p.client, "two TLS connections over a socketpair");
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	ok(p.ready > 0 && p.got > 0, "a message arrived; both freed in its callback");
	/* The case in point: libevent still holds callbacks of what was
	 * freed. Whether proto_base_free runs them (else their connections
	 * leak) is for LeakSanitizer to see. */
	ok(event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) > 0,
	    "callbacks still queued when the loop broke");
	proto_base_free(base);
}

/* The refusal case: the server side, in a private swarm, refuses a client
 * without the secret and lets go of the connection (close_after_flush). */
struct refusal {
	proto_conn *server;
	int server_closed, client_closed;
};

static void
refusal_close(proto_conn *c, int err, void *arg)
{
	struct refusal *r = arg;

	if (c == r->server) {
		r->server_closed = err;
		proto_conn_close_after_flush(c);
		r->server = NULL;
	} else
		r->client_closed = err;
}

static long long
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A refused peer that keeps the line open and drips the start of a TLS
 * record that never completes, a byte every 200 ms: the refusing side must
 * still let go of the connection about 2 s after its last bytes went. (A
 * read timeout restarts with every byte, and the read callback waits for
 * whole records: this peer used to hold the connection for ever.)
 */
static void
test_refused_dripper(SSL_CTX *cctx, SSL_CTX *sctx)
{
	static const proto_conn_cbs cbs = { NULL, NULL, refusal_close, NULL,
	    NULL, NULL };
	static const uint8_t secret[32] = { 1 };
	static const uint8_t record[] = { 0x17, 0x03, 0x03, 0x40, 0x00 };
	proto_conn_config ccfg = { 0 }, scfg = { 0 };
	struct event_base *base = event_base_new();
	struct refusal r = { NULL, 0, 0 };
	proto_conn *client;
	long long start, gone = -1, next_drip;
	size_t dripped = 0;
	int fd;

	ccfg.tls = cctx;
	scfg.tls = sctx;
	scfg.secret = secret;
	tls_pair(base, &scfg, &ccfg, &cbs, &r, &r.server, &client, &fd);
	start = ms_now();
	while (r.client_closed == 0 && ms_now() - start < 10000) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(5000);
	}
	is_int(r.server_closed, PROTO_ERR_AUTH, "the server refuses the client");
	is_int(r.client_closed, PROTO_ERR_REFUSED, "the client is told so");
	/* The client no longer reads; its socket drips a record's start. */
	start = next_drip = ms_now();
	while (gone < 0 && ms_now() - start < 10000) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (ms_now() >= next_drip) {
			uint8_t b = record[dripped < sizeof(record) ?
			    dripped : sizeof(record) - 1];
			if (write(fd, &b, 1) < 0 && errno == EPIPE)
				gone = ms_now() - start;
			dripped++;
			next_drip += 200;
		}
		usleep(5000);
	}
	diag("let go after %lld ms of dripping (%zu bytes)", gone, dripped);
	ok(gone >= 1500 && gone < 5000, "the dripping peer is let go after the "
	    "linger of 2 s, not at once, and within 5 s");
	proto_conn_free(client);
	proto_base_free(base);
}

/* A chunk over TLS, sent as the socket takes it. */
struct turns {
	int ready;
};

static void
turns_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct turns *t = arg;

	(void)c;
	(void)hello;
	t->ready++;
}

static void
turns_msg(proto_conn *c, proto_msg *m, void *arg)
{
	(void)c;
	(void)m;
	(void)arg;
}

/*
 * One turn of the loop sends several TLS records of a chunk, not one: the
 * output is refilled as libevent drains it, a few pieces a turn. Refilled
 * only from the write callback, a piece went out a turn, and a fetcher,
 * woken for each, spent half as much CPU again. A few, not all the socket
 * takes: the other connections get their turn.
 */
static void
test_chunk_in_one_turn(SSL_CTX *cctx, SSL_CTX *sctx, const char *dir)
{
	static const proto_conn_cbs cbs = { turns_ready, turns_msg, pair_close,
	    NULL, NULL, NULL };
	static uint8_t bytes[256 << 10];
	proto_conn_config ccfg = { 0 }, scfg = { 0 };
	struct event_base *base = event_base_new();
	struct turns t = { 0 };
	proto_conn *server, *client;
	char path[256];
	long long start;
	size_t before, sent;
	int fd;

	ccfg.tls = cctx;
	scfg.tls = sctx;
	/* Room for the whole chunk in the socket, whatever the default. */
	tls_pair_buf(base, &scfg, &ccfg, &cbs, &t, &server, &client, &fd,
	    1 << 20);
	start = ms_now();
	while (t.ready < 2 && ms_now() - start < 10000) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	is_int(t.ready, 2, "a TLS pair, both ends ready");
	snprintf(path, sizeof(path), "%s/chunk", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, bytes, sizeof(bytes)) != sizeof(bytes))
		exit(2);
	is_int(proto_conn_send_chunk_file(server, 1, fd, 0, sizeof(bytes)), 0,
	    "a 256 KiB chunk is queued from its file");
	before = proto_conn_pending_out(server);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	sent = before - proto_conn_pending_out(server);
	diag("%zu bytes of %zu sent in one turn", sent, before);
	ok(sent >= 4 * (16u << 10), "one turn of the loop sends four TLS "
	    "records of it or more, not one");
	ok(sent < before, "... and not the whole chunk: other connections "
	    "get their turn");
	close(fd);
	unlink(path);
	proto_conn_free(client);
	proto_conn_free(server);
	proto_base_free(base);
}

#ifndef ED448_RC
#define ED448_RC 0
#endif
#ifndef P256_RC
#define P256_RC 0
#endif

/* The fallback's calls, counted: PEM_read_bio_PrivateKey here stands in
 * front of libcrypto's (the executable's symbol wins), so a test can tell
 * which path read a key file. */
static int pem_reads;

EVP_PKEY *
PEM_read_bio_PrivateKey(BIO *bp, EVP_PKEY **x, pem_password_cb *cb, void *u)
{
	typedef EVP_PKEY *(*read_fn)(BIO *, EVP_PKEY **, pem_password_cb *,
	    void *);
	static read_fn next;

	pem_reads++;
	if (next == NULL)
		*(void **)&next = dlsym(RTLD_NEXT, "PEM_read_bio_PrivateKey");
	return next != NULL ? next(bp, x, cb, u) : NULL;
}

static int
put_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int ok = fd >= 0 && write(fd, text, len) == (ssize_t)len;

	if (fd >= 0)
		close(fd);
	return ok && chmod(path, 0600) == 0 ? 0 : -1;
}

/* The whole of path into buf (NUL-terminated); its length, or -1. */
static long
get_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (long)n;
}

/* SHA-256 of the DER SubjectPublicKeyInfo of the key in the PEM text, as
 * OpenSSL encodes it: the identity computed without the library. */
static int
expected_id(const char *text, size_t len, uint8_t out[PROTO_IDENTITY_LEN])
{
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) :
	    NULL;
	unsigned char *der = NULL;
	unsigned int dlen = 0;
	int n = key ? i2d_PUBKEY(key, &der) : -1, rc = -1;

	if (n > 0 && EVP_Digest(der, (size_t)n, out, &dlen, EVP_sha256(),
	    NULL) == 1 && dlen == PROTO_IDENTITY_LEN)
		rc = 0;
	OPENSSL_free(der);
	EVP_PKEY_free(key);
	BIO_free(bio);
	return rc;
}

/* Loads path; its identity into id when it loads; the fallback's calls
 * into *reads. proto_identity_load's return. */
static int
load(const char *path, uint8_t id[PROTO_IDENTITY_LEN], int *reads)
{
	proto_identity *k = NULL;
	int rc;

	pem_reads = 0;
	rc = proto_identity_load(path, 0, &k);
	*reads = pem_reads;
	if (rc == 0)
		memcpy(id, proto_identity_id(k), PROTO_IDENTITY_LEN);
	proto_identity_free(k);
	return rc;
}

/* text with every "\n" made "\r\n", into out (big enough). */
static size_t
crlf(const char *text, char *out)
{
	size_t n = 0;

	for (; *text; text++) {
		if (*text == '\n')
			out[n++] = '\r';
		out[n++] = *text;
	}
	out[n] = '\0';
	return n;
}

/*
 * read_key's two paths. The key file as this library and `openssl genpkey`
 * write it is read without OpenSSL's decoders and gives the identity
 * OpenSSL's encoding would; anything else goes to PEM_read_bio_PrivateKey
 * as before; broken files are refused as MALFORMED; a file over 16 KiB is
 * refused before it is read.
 */
static void
test_key_file_paths(const char *dir)
{
	char p[256], q[256], cmd[1200], text[20000], alt[40000];
	uint8_t fast[PROTO_IDENTITY_LEN], want[PROTO_IDENTITY_LEN],
	    got[PROTO_IDENTITY_LEN];
	proto_identity *k = NULL;
	long len;
	int reads, rc;

	snprintf(p, sizeof(p), "%s/gen.pem", dir);
	snprintf(q, sizeof(q), "%s/alt.pem", dir);

	/* The library's own key file. */
	is_int(proto_identity_load(p, 1, &k), 0, "keys: made by create");
	proto_identity_free(k);
	len = get_file(p, text, sizeof(text));
	is_int(load(p, got, &reads), 0, "keys: its own key file loads");
	is_int(reads, 0, "keys: ... without OpenSSL's PEM decoder");
	ok(len > 0 && expected_id(text, (size_t)len, want) == 0 &&
	    memcmp(got, want, sizeof(want)) == 0,
	    "keys: ... its identity is SHA-256 of i2d_PUBKEY");
	unlink(p);

	/* One from the openssl tool. */
	snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm ed25519 "
	    "-out '%s' 2>/dev/null", p);
	if (system(cmd) != 0 || chmod(p, 0600) != 0 ||
	    (len = get_file(p, text, sizeof(text))) <= 0) {
		ok(0, "keys: openssl genpkey -algorithm ed25519");
		return;
	}
	is_int(len, 28 + 64 + 27, "keys: genpkey's file is one line of "
	    "base64 between the BEGIN and END lines");
	is_int(load(p, fast, &reads), 0, "keys: genpkey's ed25519 key loads");
	is_int(reads, 0, "keys: ... without OpenSSL's PEM decoder");
	ok(expected_id(text, (size_t)len, want) == 0 &&
	    memcmp(fast, want, sizeof(want)) == 0,
	    "keys: ... its identity is SHA-256 of i2d_PUBKEY");

	/* The same key in other clothes: the fallback, the same identity. */
	put_file(q, alt, crlf(text, alt));
	rc = load(q, got, &reads);
	ok(rc == 0 && reads == 1 && memcmp(got, fast, sizeof(got)) == 0,
	    "keys: CRLF line ends: through the fallback (%d, %d reads), the "
	    "same identity", rc, reads);
	snprintf(alt, sizeof(alt), "a comment before the key\n%s", text);
	put_file(q, alt, strlen(alt));
	rc = load(q, got, &reads);
	ok(rc == 0 && reads == 1 && memcmp(got, fast, sizeof(got)) == 0,
	    "keys: text before the PEM: through the fallback (%d, %d reads), "
	    "the same identity", rc, reads);
	snprintf(alt, sizeof(alt), "%.*s", (int)len - 1, text);
	put_file(q, alt, strlen(alt));
	rc = load(q, got, &reads);
	ok(rc == 0 && reads == 1 && memcmp(got, fast, sizeof(got)) == 0,
	    "keys: no newline at the end: through the fallback (%d, %d "
	    "reads), the same identity", rc, reads);

	/* Broken copies of the fast path's layout: refused, no crash. */
	memcpy(alt, text, (size_t)len + 1);
	alt[28 + 10] = '*';
	put_file(q, alt, (size_t)len);
	is_int(load(q, got, &reads), PROTO_ERR_MALFORMED,
	    "keys: a character not base64 in the line: MALFORMED");
	memcpy(alt, text, (size_t)len + 1);
	memcpy(alt + 28 + 60, "====", 4);
	put_file(q, alt, (size_t)len);
	is_int(load(q, got, &reads), PROTO_ERR_MALFORMED,
	    "keys: the line's end made padding: MALFORMED (not another key)");
	memcpy(alt, text, (size_t)len + 1);
	alt[28 + 30] = '=';
	put_file(q, alt, (size_t)len);
	is_int(load(q, got, &reads), PROTO_ERR_MALFORMED,
	    "keys: an \"=\" inside the line: MALFORMED (not another key)");
	snprintf(alt, sizeof(alt), "%.*s%s", 28 + 40, text, text + 28 + 64);
	put_file(q, alt, strlen(alt));
	is_int(load(q, got, &reads), PROTO_ERR_MALFORMED,
	    "keys: the base64 line cut short: MALFORMED");
	put_file(q, text, (size_t)len - 10);
	is_int(load(q, got, &reads), PROTO_ERR_MALFORMED,
	    "keys: the file cut in its END line: MALFORMED");
	put_file(q, "", 0);
	is_int(load(q, got, &reads), PROTO_ERR_MALFORMED,
	    "keys: an empty file: MALFORMED");
	{
		/* The right layout and length, a wrong DER prefix: "MC4C"
		 * (30 2e 02 ...) made "MC8C" (30 2f 02 ...), and the OID
		 * 1.3.101.112 (Ed25519) made 1.3.101.113 (Ed448). */
		memcpy(alt, text, (size_t)len + 1);
		alt[28 + 2] = '8';
		put_file(q, alt, (size_t)len);
		is_int(load(q, got, &reads), PROTO_ERR_MALFORMED,
		    "keys: a wrong DER length in the prefix: MALFORMED");
		memcpy(alt, text, (size_t)len + 1);
		ok(memcmp(alt + 28 + 12, "K2Vw", 4) == 0,
		    "keys: the OID is where it is expected");
		memcpy(alt + 28 + 12, "K2Vx", 4);
		put_file(q, alt, (size_t)len);
		is_int(load(q, got, &reads), PROTO_ERR_MALFORMED,
		    "keys: the Ed448 OID on a 32-byte key: MALFORMED");
	}

	/* Other key types go to the fallback, as they always went. */
	snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm ed448 "
	    "-out '%s' 2>/dev/null && chmod 600 '%s'", q, q);
	if (system(cmd) == 0) {
		len = get_file(q, alt, sizeof(alt));
		rc = load(q, got, &reads);
		ok(rc == ED448_RC && reads == 1, "keys: an Ed448 key: through "
		    "the fallback, %d as before the fast path (%d)", ED448_RC,
		    rc);
		if (rc == 0)
			ok(expected_id(alt, (size_t)len, want) == 0 &&
			    memcmp(got, want, sizeof(want)) == 0,
			    "keys: ... its identity is SHA-256 of i2d_PUBKEY");
	} else
		ok(1, "# SKIP openssl genpkey ed448");
	snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm EC -pkeyopt "
	    "ec_paramgen_curve:P-256 -out '%s' 2>/dev/null && chmod 600 '%s'",
	    q, q);
	if (system(cmd) == 0) {
		rc = load(q, got, &reads);
		ok(rc == P256_RC && reads == 1, "keys: an EC P-256 key: through "
		    "the fallback, %d as before the fast path (%d)", P256_RC,
		    rc);
	} else
		ok(1, "# SKIP openssl genpkey EC P-256");

	/* Size: 16 KiB loads (text before the key), one byte more does not,
	 * whatever follows. */
	len = get_file(p, text, sizeof(text));
	{
		size_t pad = 16384 - (size_t)len, n = 0;
		while (n < pad) {
			size_t line = pad - n > 64 ? 64 : pad - n;
			memset(alt + n, 'x', line - 1);
			alt[n + line - 1] = '\n';
			n += line;
		}
		memcpy(alt + n, text, (size_t)len);
		put_file(q, alt, n + (size_t)len);
		rc = load(q, got, &reads);
		ok(rc == 0 && memcmp(got, fast, sizeof(got)) == 0,
		    "keys: a key file of 16384 bytes loads (%d)", rc);
		memmove(alt + 1, alt, n + (size_t)len);
		alt[0] = '\n';
		put_file(q, alt, n + (size_t)len + 1);
		is_int(load(q, got, &reads), PROTO_ERR_MALFORMED,
		    "keys: one of 16385 bytes: MALFORMED");
		is_int(reads, 0, "keys: ... refused before any decoding");
	}
	unlink(p);
	unlink(q);
}

int
main(void)
{
	char dir[] = "/tmp/test_identity.XXXXXX", path[256], other[256];
	proto_identity *a = NULL, *a2 = NULL, *b = NULL;
	uint8_t seen[PROTO_IDENTITY_LEN];
	struct stat st;
	SSL_CTX *cctx, *sctx;
	SSL *c, *s;

	/* A write to a closed socket is an error to look at, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL)
		return 2;
	snprintf(path, sizeof(path), "%s/sub/identity.pem", dir);
	snprintf(other, sizeof(other), "%s/b.pem", dir);
	is_int(proto_identity_load(path, 0, &a), PROTO_ERR_SYSTEM,
	    "no key file and no create: SYSTEM (ENOENT)");
	is_int(proto_identity_load(path, 1, &a), 0, "made on first use");
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600,
	    "the key file has mode 0600");
	snprintf(other, sizeof(other), "%s/sub", dir);
	ok(stat(other, &st) == 0 && (st.st_mode & 0777) == 0700,
	    "its directory, made for it, has mode 0700");
	is_int(proto_identity_load(path, 1, &a2), 0, "loaded again");
	ok(a && a2 && memcmp(proto_identity_id(a), proto_identity_id(a2),
	    PROTO_IDENTITY_LEN) == 0, "the same key, the same identity");
	chmod(path, 0644);
	proto_identity_free(a2);
	a2 = NULL;
	is_int(proto_identity_load(path, 1, &a2), PROTO_ERR_INVALID,
	    "a key file others can read is refused");
	chmod(path, 0600);
	snprintf(other, sizeof(other), "%s/b.pem", dir);
	is_int(proto_identity_load(other, 1, &b), 0, "a second node");
	ok(b && memcmp(proto_identity_id(a), proto_identity_id(b),
	    PROTO_IDENTITY_LEN) != 0, "two keys, two identities");
	for (int i = 0; i < 2; i++) {
		/* The identity from the raw key (the DER prefix written out)
		 * is the one from OpenSSL's encoding of the key. */
		const proto_identity *k = i ? b : a;
		uint8_t pub[PROTO_KEY_LEN], id[PROTO_IDENTITY_LEN];
		ok(k != NULL && proto_identity_public_key(k, pub) == 0 &&
		    proto_identity_of_key(pub, id) == 0 && memcmp(id,
		    proto_identity_id(k), PROTO_IDENTITY_LEN) == 0,
		    "key %d: proto_identity_of_key is the identity of its DER "
		    "SubjectPublicKeyInfo", i + 1);
	}

	{
		/* PROTOCOL.md section 8: the identity's test vector. */
		static const char pem[] = "-----BEGIN PRIVATE KEY-----\n"
		    "MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n"
		    "-----END PRIVATE KEY-----\n";
		char vec[256], hex[PROTO_IDENTITY_HEX_LEN + 1] = "";
		proto_identity *v = NULL;
		FILE *f;
		snprintf(vec, sizeof(vec), "%s/vector.pem", dir);
		if ((f = fopen(vec, "w")) == NULL || fputs(pem, f) < 0 ||
		    fclose(f) != 0 || chmod(vec, 0600) != 0)
			return 2;
		if (proto_identity_load(vec, 0, &v) == 0)
			proto_hex_encode(proto_identity_id(v),
			    PROTO_IDENTITY_LEN, hex);
		is_str(hex, "a050837d85070582ccf7394b0988847cc312cb88259b894899f6f"
		    "239cf1791a5", "PROTOCOL.md 8: the identity of seed 00..1f");
		proto_identity_free(v);
		unlink(vec);
	}

	cctx = proto_tls_ctx_new(a, 0);
	sctx = proto_tls_ctx_new(b, 1);
	ok(cctx && sctx, "TLS contexts for both ends");
	c = SSL_new(cctx);
	s = SSL_new(sctx);
	ok(handshake(c, s), "the handshake completes");
	ok(SSL_version(c) == TLS1_3_VERSION, "TLS 1.3");
	ok(proto_tls_peer_id(c, seen) == 0 &&
	    memcmp(seen, proto_identity_id(b), PROTO_IDENTITY_LEN) == 0,
	    "the client sees the server's identity");
	ok(proto_tls_peer_id(s, seen) == 0 &&
	    memcmp(seen, proto_identity_id(a), PROTO_IDENTITY_LEN) == 0,
	    "the server sees the client's identity");
	SSL_free(c);
	SSL_free(s);
	test_freed_mid_stream(cctx, sctx);
	test_refused_dripper(cctx, sctx);
	test_chunk_in_one_turn(cctx, sctx, dir);
	test_key_file_paths(dir);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	proto_identity_free(a);
	proto_identity_free(a2);
	proto_identity_free(b);
	unlink(path);
	unlink(other);
	snprintf(other, sizeof(other), "%s/sub", dir);
	rmdir(other);
	rmdir(dir);
	return done_testing();
}
