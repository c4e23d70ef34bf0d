/*
 * p2p-serve: shares files with peers. It serves every file whose manifest
 * arrives on stdin (as p2p-chunk writes them, taken as they come) and every
 * file under the directories given with -d, answering list, manifest and
 * chunk requests until it is signalled. Chunk bytes go from the file to the
 * socket without passing through user space where the kernel allows. It is
 * found through a beacon on the discovery port (answers and announcements),
 * joins through bootstrap peers (-b), and tells whoever asks the peers it
 * knows.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "tool.h"

#define DEFAULT_PORT 8080
#define DEFAULT_MAX_PEERS 50
#define LIST_MAX 16000 /* entries per LIST_REPLY: within the frame's limits */
#define REQUEST_FRAME_MAX 16384

struct server {
	struct event_base *base;
	proto_beacon *beacon;
	proto_beacon_config disco;
	int announce;
	proto_peer_table known;
	const char **boot;
	int nboot;
	struct event *boot_ev;
	struct client *booting;   /* connections to bootstrap peers */
	struct evconnlistener *listener;
	struct event *stdin_ev, *retry_ev;
	proto_store *store;
	proto_conn_config cfg;
	struct client *clients;
	unsigned nclients, max_peers;
	uint8_t *inbuf;           /* manifest bytes from stdin not yet used */
	size_t inlen, incap;
	uint64_t bytes_in, bytes_out, chunks_out, manifests_out, peers;
	int stats;
};

struct client {
	struct server *srv;
	proto_conn *conn;
	struct client *prev, *next;
	int outbound;             /* a bootstrap connection of ours */
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: p2p-serve [-qv] [-p PORT] [--bind ADDR] [-d DIR]... [-n NAME]\n"
	    "                 [-b HOST:PORT]... [--no-announce] [--discovery-port PORT]\n"
	    "                 [--discovery-addr ADDR] [--discovery-interval SECONDS]\n"
	    "                 [--max-peers N] [-T SECONDS] [--stats] [--config FILE]\n"
	    "  -p, --port PORT        TCP port to listen on (default %d; 0: any)\n"
	    "      --bind ADDR        address to listen on (default 0.0.0.0)\n"
	    "  -d, --dir DIR          share every regular file under DIR\n"
	    "  -n, --name NAME        node name told to peers (default: host name)\n"
	    "  -b, --bootstrap HOST:PORT  join through this peer (repeat for more)\n"
	    "      --no-announce      no LAN discovery: neither announce nor answer\n"
	    "      --discovery-port PORT  UDP discovery port (default 9999)\n"
	    "      --discovery-addr ADDR  where announcements go (default: each\n"
	    "                         interface's broadcast address)\n"
	    "      --discovery-interval SECONDS  between announcements (default 30)\n"
	    "      --max-peers N      connections at once (default %d, or\n"
	    "                         MINI_P2P_MAX_PEERS)\n"
	    "  -T, --timeout SECONDS  handshake and stalled-write timeout (default 30)\n"
	    "      --stats            print what was served on stderr at exit\n"
	    "      --config FILE      read settings from FILE\n"
	    "  -q, --quiet            print only errors\n"
	    "  -v, --verbose          print more (repeat for more)\n"
	    "  -h, --help             print this help and exit\n"
	    "  -V, --version          print the version and exit\n"
	    "Manifests read on stdin (p2p-chunk FILE | p2p-serve) are served too.\n"
	    "Prints its listening address as HOST:PORT on stdout.\n",
	    DEFAULT_PORT, DEFAULT_MAX_PEERS);
}

static void
share(struct server *srv, proto_manifest *mf)
{
	char hex[PROTO_ID_HEX_LEN + 1], name[PROTO_NAME_MAX + 1];
	struct stat st;
	int rc;

	proto_hex_encode(mf->id, PROTO_HASH_LEN, hex);
	tool_printable(mf->name, strlen(mf->name), name, sizeof(name));
	if (mf->path == NULL) {
		tool_log(LOG_ERROR, "%s: manifest has no local path; not served",
		    name);
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
	if ((rc = proto_store_add(srv->store, mf)) < 0)
		tool_die(1, "%s", proto_strerror(rc));
	if (rc == 0)
		tool_log(LOG_INFO, "serving %s %s", hex, name);
}

static int
share_file(const char *path, const char *name, void *arg)
{
	char real[4096];
	proto_manifest *mf;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		return 0;
	}
	if (realpath(path, real) == NULL) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		close(fd);
		return 0;
	}
	rc = proto_manifest_build_fd(fd, name, real, 0, &mf);
	close(fd);
	if (rc != 0) {
		tool_log(LOG_ERROR, "%s: %s", path, rc == PROTO_ERR_SYSTEM ?
		    strerror(errno) : proto_strerror(rc));
		return 0;
	}
	share(arg, mf);
	return 0;
}

static void
client_free(struct client *cl)
{
	struct server *srv = cl->srv;

	if (cl->conn != NULL) {
		srv->bytes_in += proto_conn_bytes_in(cl->conn);
		srv->bytes_out += proto_conn_bytes_out(cl->conn);
	}
	if (cl->prev)
		cl->prev->next = cl->next;
	else if (cl->outbound)
		srv->booting = cl->next;
	else
		srv->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	if (!cl->outbound)
		srv->nclients--;
	proto_conn_free(cl->conn);
	free(cl);
}

static void
answer_list(struct server *srv, proto_conn *c, uint32_t rid)
{
	size_t n = proto_store_count(srv->store);
	proto_list_entry *entries;
	proto_msg m;

	if (n > LIST_MAX)
		n = LIST_MAX;
	if ((entries = calloc(n ? n : 1, sizeof(*entries))) == NULL) {
		proto_conn_send_error(c, rid, PROTO_CODE_INTERNAL,
		    "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const proto_manifest *mf = proto_store_get(srv->store, i);
		entries[i].id = mf->id;
		entries[i].size = mf->size;
		entries[i].name = mf->name;
		entries[i].name_len = strlen(mf->name);
	}
	proto_msg_init(&m, PROTO_MSG_LIST_REPLY);
	m.rid = rid;
	m.entries = entries;
	m.nentries = n;
	proto_conn_send(c, &m);
	free(entries);
}

static void
answer_manifest(struct server *srv, proto_conn *c, const proto_msg *req)
{
	const proto_manifest *mf = proto_store_find(srv->store, req->id);
	proto_msg m;

	if (mf == NULL) {
		proto_conn_send_error(c, req->rid, PROTO_CODE_NOT_FOUND,
		    "no such file");
		return;
	}
	proto_msg_init(&m, PROTO_MSG_MANIFEST);
	m.rid = req->rid;
	/* Packing a MANIFEST never includes the local path. */
	m.manifest = (proto_manifest *)mf;
	if (proto_conn_send(c, &m) == 0)
		srv->manifests_out++;
}

static void
answer_chunk(struct server *srv, proto_conn *c, const proto_msg *req)
{
	const proto_manifest *mf = proto_store_find(srv->store, req->id);
	uint64_t off;
	size_t len;
	int fd, rc;

	if (mf == NULL) {
		proto_conn_send_error(c, req->rid, PROTO_CODE_NOT_FOUND,
		    "no such file");
		return;
	}
	if (!proto_chunk_size_valid(mf->size, req->chunk_size)) {
		proto_conn_send_error(c, req->rid, PROTO_CODE_BAD_REQUEST,
		    "chunk size not valid for this file");
		return;
	}
	if (req->index >= proto_chunk_count(mf->size, req->chunk_size)) {
		proto_conn_send_error(c, req->rid, PROTO_CODE_NOT_FOUND,
		    "no such chunk");
		return;
	}
	if ((rc = proto_store_open(srv->store, req->id, &fd)) != 0) {
		tool_log(LOG_WARN, "%s: %s", mf->path, rc == PROTO_ERR_SYSTEM ?
		    strerror(errno) : "file changed on disk since it was chunked");
		proto_conn_send_error(c, req->rid, PROTO_CODE_INTERNAL,
		    "file unavailable");
		return;
	}
	off = req->index * (uint64_t)req->chunk_size;
	len = proto_chunk_len(mf->size, req->chunk_size, req->index);
	if (proto_conn_send_chunk_file(c, req->rid, fd, off, len) == 0)
		srv->chunks_out++;
}

static void
answer_peers(struct server *srv, proto_conn *c, uint32_t rid)
{
	proto_peer_entry list[PROTO_PEERS_MAX];
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_PEERS_REPLY);
	m.rid = rid;
	m.peers = list;
	m.npeers = proto_peers_list(&srv->known, list, PROTO_PEERS_MAX,
	    proto_conn_peer_host(c), proto_conn_peer_listen_port(c));
	proto_conn_send(c, &m);
}

static void
answer_has(struct server *srv, proto_conn *c, const proto_msg *req)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_HAS_REPLY);
	m.rid = req->rid;
	m.has = proto_store_find(srv->store, req->id) != NULL;
	proto_conn_send(c, &m);
}

/* What a bootstrap peer tells us: the peers it knows. */
static void
take_peers(struct server *srv, proto_conn *c, const proto_msg *m)
{
	if (m->type == PROTO_MSG_PEERS_REPLY)
		for (size_t i = 0; i < m->npeers; i++)
			proto_peers_add(&srv->known, m->peers[i].host,
			    m->peers[i].host_len, m->peers[i].port);
	tool_log(LOG_DEBUG, "%s: bootstrap: %zu peers known", proto_conn_peer(c),
	    srv->known.count);
}

static void
on_msg(proto_conn *c, proto_msg *m, void *arg)
{
	struct client *cl = arg;
	struct server *srv = cl->srv;

	if (cl->outbound) {
		take_peers(srv, c, m);
		client_free(cl);
		return;
	}

	tool_log(LOG_TRACE, "%s: %s rid %u", proto_conn_peer(c),
	    proto_msg_type_name(m->type), m->rid);
	switch (m->type) {
	case PROTO_MSG_LIST:
		answer_list(srv, c, m->rid);
		break;
	case PROTO_MSG_GET_MANIFEST:
		answer_manifest(srv, c, m);
		break;
	case PROTO_MSG_GET_CHUNK:
		answer_chunk(srv, c, m);
		break;
	case PROTO_MSG_PEERS:
		answer_peers(srv, c, m->rid);
		break;
	case PROTO_MSG_HAS:
		answer_has(srv, c, m);
		break;
	default:
		proto_conn_send_error(c, m->rid, PROTO_CODE_BAD_REQUEST,
		    "unexpected message");
		break;
	}
}

static void
on_ready(proto_conn *c, const proto_msg *hello, void *arg)
{
	struct client *cl = arg;
	const char *host = proto_conn_peer_host(c);

	tool_log(LOG_DEBUG, "%s: connected (%s)", proto_conn_peer(c),
	    proto_conn_peer_name(c));
	/* A peer that listens can be passed on to others. */
	if (hello->listen_port != 0)
		proto_peers_add(&cl->srv->known, host, strlen(host),
		    hello->listen_port);
	if (cl->outbound) {
		proto_msg m;
		proto_msg_init(&m, PROTO_MSG_PEERS);
		m.rid = 1;
		if (proto_conn_send(c, &m) != 0)
			client_free(cl);
	}
}

static void
on_close(proto_conn *c, int err, void *arg)
{
	int level = err == PROTO_ERR_CLOSED ? LOG_DEBUG : LOG_INFO;

	struct client *cl = arg;

	tool_log(level, "%s: closed: %s", proto_conn_peer(c),
	    err == PROTO_ERR_SYSTEM ? strerror(errno) : proto_strerror(err));
	/* A peer of another version is told so before the line goes. */
	if (err == PROTO_ERR_VERSION) {
		cl->conn = NULL;
		proto_conn_close_after_flush(c);
		client_free(cl);
		return;
	}
	client_free(cl);
}

/* Idle clients are dropped after ten timeouts, so they cannot hold a peer
 * slot forever. */
static int
on_idle(proto_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	return 0;
}

static const proto_conn_cbs client_cbs = { on_ready, on_msg, on_close,
    on_idle };

static void
on_accept(struct evconnlistener *lst, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct server *srv = arg;
	struct bufferevent *bev;
	struct client *cl;

	(void)lst;
	(void)sa;
	(void)salen;
	if (srv->nclients >= srv->max_peers) {
		/* Refuse at once rather than leave it waiting in the backlog:
		 * the peer sees the connection close and tries elsewhere. */
		evutil_closesocket(fd);
		tool_log(LOG_DEBUG, "refused a connection: %u peers",
		    srv->nclients);
		return;
	}
	bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL || (cl = calloc(1, sizeof(*cl))) == NULL) {
		if (bev)
			bufferevent_free(bev);
		else
			evutil_closesocket(fd);
		return;
	}
	cl->srv = srv;
	srv->cfg.nfiles = proto_store_count(srv->store);
	if ((cl->conn = proto_conn_new(bev, &srv->cfg, &client_cbs, cl)) ==
	    NULL) {
		free(cl);
		return;
	}
	proto_conn_set_idle_timeout(cl->conn, 10 * srv->cfg.timeout);
	cl->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = cl;
	srv->clients = cl;
	srv->nclients++;
	srv->peers++;
}

static void
retry_accept(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	if (srv->nclients < srv->max_peers)
		evconnlistener_enable(srv->listener);
}

/* Out of descriptors, the listener would spin on the pending connection:
 * pause it for a second instead. */
static void
on_accept_error(struct evconnlistener *lst, void *arg)
{
	struct server *srv = arg;
	struct timeval second = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	tool_log(LOG_WARN, "accept: %s", evutil_socket_error_to_string(err));
	evconnlistener_disable(lst);
	evtimer_add(srv->retry_ev, &second);
}

/* Takes every complete manifest at the front of the stdin buffer. */
static int
take_manifests(struct server *srv)
{
	size_t used = 0;

	while (used < srv->inlen) {
		proto_manifest *mf;
		long n = proto_manifest_unpack(srv->inbuf + used,
		    srv->inlen - used, &mf);
		if (n == 0)
			break;
		if (n < 0) {
			tool_log(LOG_ERROR, "stdin: not a manifest stream: %s",
			    proto_strerror((int)n));
			return -1;
		}
		used += (size_t)n;
		share(srv, mf);
	}
	memmove(srv->inbuf, srv->inbuf + used, srv->inlen - used);
	srv->inlen -= used;
	return 0;
}

/* Reads what stdin has; returns 1 at its end, -1 on error, 0 otherwise. */
static int
read_stdin(struct server *srv)
{
	ssize_t n;

	if (srv->inlen == srv->incap) {
		size_t cap = srv->incap ? srv->incap * 2 : 65536;
		if (cap > PROTO_MANIFEST_MAX * 2) {
			tool_log(LOG_ERROR, "stdin: manifest too large");
			return -1;
		}
		if ((srv->inbuf = realloc(srv->inbuf, cap)) == NULL)
			tool_die(1, "out of memory");
		srv->incap = cap;
	}
	n = read(STDIN_FILENO, srv->inbuf + srv->inlen, srv->incap - srv->inlen);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n < 0) {
		tool_log(LOG_ERROR, "stdin: %s", strerror(errno));
		return -1;
	}
	if (n == 0) {
		if (srv->inlen > 0)
			tool_log(LOG_ERROR, "stdin: truncated manifest");
		return 1;
	}
	srv->inlen += (size_t)n;
	return take_manifests(srv);
}

static void
stdin_ready(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	if (read_stdin(srv) != 0) {
		event_del(srv->stdin_ev);
		free(srv->inbuf);
		srv->inbuf = NULL;
		srv->inlen = srv->incap = 0;
	}
}

/* A pipe is read as manifests arrive; a file is read at once; a terminal
 * or a device is not read at all. */
static void
setup_stdin(struct server *srv)
{
	struct stat st;

	if (fstat(STDIN_FILENO, &st) != 0)
		return;
	if (S_ISREG(st.st_mode)) {
		while (read_stdin(srv) == 0)
			;
		return;
	}
	if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
		return;
	evutil_make_socket_nonblocking(STDIN_FILENO);
	srv->stdin_ev = event_new(srv->base, STDIN_FILENO,
	    EV_READ | EV_PERSIST, stdin_ready, srv);
	if (srv->stdin_ev == NULL || event_add(srv->stdin_ev, NULL) != 0)
		tool_die(1, "stdin: cannot watch");
}

/* Connects to every bootstrap peer: the HELLO tells it our port, and we ask
 * for the peers it knows. One connection each at a time. */
static void
bootstrap(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < srv->nboot; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		const char *why;
		struct client *cl;

		if (tool_resolve(srv->boot[i], &ss, &len, &why) != 0) {
			tool_log(LOG_WARN, "bootstrap %s: %s", srv->boot[i], why);
			continue;
		}
		if ((cl = calloc(1, sizeof(*cl))) == NULL)
			return;
		cl->srv = srv;
		cl->outbound = 1;
		srv->cfg.nfiles = proto_store_count(srv->store);
		cl->conn = proto_conn_connect(srv->base, (struct sockaddr *)&ss,
		    len, &srv->cfg, &client_cbs, cl);
		if (cl->conn == NULL) {
			tool_log(LOG_WARN, "bootstrap %s: %s", srv->boot[i],
			    strerror(errno));
			free(cl);
			continue;
		}
		cl->next = srv->booting;
		if (srv->booting)
			srv->booting->prev = cl;
		srv->booting = cl;
	}
}

static int
beacon_has(const uint8_t id[PROTO_HASH_LEN], void *arg)
{
	struct server *srv = arg;

	return proto_store_find(srv->store, id) != NULL;
}

static uint64_t
beacon_nfiles(void *arg)
{
	struct server *srv = arg;

	return proto_store_count(srv->store);
}

static void
beacon_announce(const struct sockaddr_in *from, const proto_disco_msg *m,
    void *arg)
{
	struct server *srv = arg;
	char host[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &from->sin_addr, host, sizeof(host));
	if (m->port == srv->cfg.listen_port && m->name_len ==
	    strlen(srv->cfg.node_name) && memcmp(m->name, srv->cfg.node_name,
	    m->name_len) == 0)
		return; /* most likely our own announcement */
	proto_peers_add(&srv->known, host, strlen(host), m->port);
}

static void
beacon_bad(const struct sockaddr_in *from, int err, void *arg)
{
	char host[INET_ADDRSTRLEN];

	(void)arg;
	inet_ntop(AF_INET, &from->sin_addr, host, sizeof(host));
	tool_log(LOG_DEBUG, "datagram from %s:%u: %s; ignored", host,
	    ntohs(from->sin_port), proto_strerror(err));
}

static void
start_discovery(struct server *srv)
{
	static const proto_beacon_cbs cbs = { beacon_has, beacon_nfiles,
	    beacon_announce, beacon_bad };
	struct timeval tv = { srv->disco.interval, 0 };

	if (srv->nboot > 0) {
		srv->boot_ev = event_new(srv->base, -1, EV_PERSIST, bootstrap,
		    srv);
		if (srv->boot_ev == NULL || event_add(srv->boot_ev, &tv) != 0)
			tool_die(1, "out of memory");
		bootstrap(-1, 0, srv);
	}
	if (!srv->announce)
		return;
	srv->disco.tcp_port = srv->cfg.listen_port;
	srv->disco.name = srv->cfg.node_name;
	srv->beacon = proto_beacon_new(srv->base, &srv->disco, &cbs, srv);
	if (srv->beacon == NULL)
		tool_log(LOG_WARN, "discovery port %u: %s; not discoverable",
		    srv->disco.port, errno == EINVAL ?
		    "bad discovery address" : strerror(errno));
	else
		tool_log(LOG_DEBUG, "discovery on UDP port %u",
		    srv->disco.port);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	tool_log(LOG_INFO, "%s: shutting down", strsignal((int)sig));
	event_base_loopbreak(arg);
}

static void
listen_on(struct server *srv, const char *bind_addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *why;
	int v6 = strchr(bind_addr, ':') != NULL;
	char hostport[300], shown[300];

	snprintf(hostport, sizeof(hostport), "%s%s%s:%u", v6 ? "[" : "",
	    bind_addr, v6 ? "]" : "", port ? (unsigned)port : 1u);
	if (tool_resolve(hostport, &ss, &sslen, &why) != 0)
		tool_die(2, "bind address '%s': %s", bind_addr, why);
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	srv->listener = evconnlistener_new_bind(srv->base, on_accept, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, (struct sockaddr *)&ss, (int)sslen);
	snprintf(shown, sizeof(shown), "%s%s%s:%u", v6 ? "[" : "", bind_addr,
	    v6 ? "]" : "", port);
	if (srv->listener == NULL)
		tool_die_errno(1, "bind %s", shown);
	evconnlistener_set_error_cb(srv->listener, on_accept_error);
	sslen = sizeof(ss);
	getsockname(evconnlistener_get_fd(srv->listener),
	    (struct sockaddr *)&ss, &sslen);
	port = ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	srv->cfg.listen_port = port;
	snprintf(shown, sizeof(shown), "%s%s%s:%u", v6 ? "[" : "", bind_addr,
	    v6 ? "]" : "", port);
	printf("%s\n", shown);
	fflush(stdout);
	tool_log(LOG_INFO, "listening on %s", shown);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'B' },
		{ "dir", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "max-peers", required_argument, NULL, 'M' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "stats", no_argument, NULL, 'S' },
		{ "bootstrap", required_argument, NULL, 'b' },
		{ "no-announce", no_argument, NULL, 'N' },
		{ "discovery-port", required_argument, NULL, 'D' },
		{ "discovery-addr", required_argument, NULL, 'A' },
		{ "discovery-interval", required_argument, NULL, 'I' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct server srv;
	struct tool_config config;
	struct event *sigint, *sigterm;
	static const char **dirs, **boot; /* static: reachable at any exit */
	const char *bind_addr = "0.0.0.0", *env;
	uint16_t port = DEFAULT_PORT;
	int ch, ndirs = 0;

	tool_init("p2p-serve", LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	tool_raise_fd_limit();
	memset(&srv, 0, sizeof(srv));
	srv.cfg.node_name = tool_hostname();
	srv.cfg.timeout = 30;
	/* Requests are small; only answers to our bootstrap queries come
	 * close, and those are bounded by PROTO_PEERS_MAX entries. */
	srv.cfg.max_frame = REQUEST_FRAME_MAX;
	srv.max_peers = DEFAULT_MAX_PEERS;
	srv.announce = 1;
	srv.disco.port = PROTO_DISCO_PORT;
	srv.disco.interval = 30;
	srv.disco.target = getenv("MINI_P2P_DISCOVERY_ADDR");
	proto_peers_init(&srv.known);
	tool_config_load(argc, argv, &config);
	if (config.has_max_peers)
		srv.max_peers = config.max_peers;
	if (config.has_connection_timeout)
		srv.cfg.timeout = config.connection_timeout;
	if (config.has_discovery_interval)
		srv.disco.interval = config.discovery_interval;
	if ((env = getenv("MINI_P2P_DISCOVERY_PORT")) != NULL && *env)
		srv.disco.port = (uint16_t)tool_parse_number(env, 1, 65535,
		    "MINI_P2P_DISCOVERY_PORT");
	if ((env = getenv("MINI_P2P_MAX_PEERS")) != NULL && *env)
		srv.max_peers = (unsigned)tool_parse_number(env, 1, 100000,
		    "MINI_P2P_MAX_PEERS");
	if ((dirs = calloc((size_t)argc, sizeof(*dirs))) == NULL ||
	    (boot = calloc((size_t)argc, sizeof(*boot))) == NULL)
		tool_die(1, "out of memory");
	while ((ch = getopt_long(argc, argv, "p:d:n:b:T:qvhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'p':
			port = (uint16_t)tool_parse_number(optarg, 0, 65535,
			    "port");
			break;
		case 'B':
			bind_addr = optarg;
			break;
		case 'd':
			dirs[ndirs++] = optarg;
			break;
		case 'n':
			if (strlen(optarg) > PROTO_NODE_NAME_MAX)
				tool_die(2, "name '%s': at most %u bytes",
				    optarg, PROTO_NODE_NAME_MAX);
			srv.cfg.node_name = optarg;
			break;
		case 'M':
			srv.max_peers = (unsigned)tool_parse_number(optarg, 1,
			    100000, "max peers");
			break;
		case 'T':
			srv.cfg.timeout = (unsigned)tool_parse_number(optarg,
			    1, 3600, "timeout");
			break;
		case 'S':
			srv.stats = 1;
			break;
		case 'b': {
			struct sockaddr_storage ss;
			socklen_t len;
			const char *why;
			if (tool_resolve(optarg, &ss, &len, &why) != 0)
				tool_die(2, "bootstrap peer '%s': %s", optarg,
				    why);
			boot[srv.nboot++] = optarg;
			break;
		}
		case 'N':
			srv.announce = 0;
			break;
		case 'D':
			srv.disco.port = (uint16_t)tool_parse_number(optarg, 1,
			    65535, "discovery port");
			break;
		case 'A': {
			struct sockaddr_in sin;
			if (proto_disco_targets(optarg, 1, &sin, 1) != 1)
				tool_die(2, "discovery address '%s': want an "
				    "IPv4 address", optarg);
			srv.disco.target = optarg;
			break;
		}
		case 'I':
			srv.disco.interval = (unsigned)tool_parse_number(optarg,
			    1, 86400, "discovery interval");
			break;
		default:
			if (tool_common_option(ch, usage))
				break;
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	for (int i = 0; i < ndirs; i++) {
		struct stat st;
		if (stat(dirs[i], &st) != 0)
			tool_die_errno(1, "%s", dirs[i]);
		if (!S_ISDIR(st.st_mode))
			tool_die(1, "%s: not a directory", dirs[i]);
	}
	if ((srv.base = event_base_new()) == NULL ||
	    (srv.store = proto_store_new()) == NULL ||
	    (srv.retry_ev = evtimer_new(srv.base, retry_accept, &srv)) == NULL)
		tool_die(1, "out of memory");
	/* Before the address is printed: whoever read it may signal at once,
	 * and the signal must end the server cleanly even before the loop
	 * runs (libevent holds it until then). */
	sigint = evsignal_new(srv.base, SIGINT, on_signal, srv.base);
	sigterm = evsignal_new(srv.base, SIGTERM, on_signal, srv.base);
	if (sigint == NULL || sigterm == NULL || event_add(sigint, NULL) ||
	    event_add(sigterm, NULL))
		tool_die(1, "cannot watch signals");
	listen_on(&srv, bind_addr, port);
	for (int i = 0; i < ndirs; i++)
		tool_walk(dirs[i], share_file, &srv);
	free(dirs);
	setup_stdin(&srv);
	srv.boot = boot;
	if (proto_store_count(srv.store) == 0 && srv.stdin_ev == NULL)
		tool_log(LOG_WARN, "sharing nothing: pipe manifests in "
		    "(p2p-chunk FILE | p2p-serve) or give -d DIR");
	start_discovery(&srv);
	event_base_dispatch(srv.base);
	while (srv.clients)
		client_free(srv.clients);
	while (srv.booting)
		client_free(srv.booting);
	if (srv.stats)
		fprintf(stderr, "p2p-serve: stats bytes_in=%llu bytes_out=%llu "
		    "chunks_out=%llu manifests_out=%llu peers=%llu "
		    "datagrams_bad=%llu\n",
		    (unsigned long long)srv.bytes_in,
		    (unsigned long long)srv.bytes_out,
		    (unsigned long long)srv.chunks_out,
		    (unsigned long long)srv.manifests_out,
		    (unsigned long long)srv.peers,
		    (unsigned long long)(srv.beacon ?
		    proto_beacon_bad(srv.beacon) : 0));
	event_free(sigint);
	event_free(sigterm);
	if (srv.stdin_ev)
		event_free(srv.stdin_ev);
	event_free(srv.retry_ev);
	if (srv.boot_ev)
		event_free(srv.boot_ev);
	proto_beacon_free(srv.beacon);
	free(boot);
	evconnlistener_free(srv.listener);
	proto_store_free(srv.store);
	free(srv.inbuf);
	event_base_free(srv.base);
	return 0;
}
