/*
 * The one header of the helpers every p2p-* tool shares, a section per
 * file: messages and log levels per module (log.c), checked values
 * (parse.c), the configuration file and the shared options (config.c),
 * JSON lines (json.c), the progress line (progress.c), the walk of a
 * shared tree (walk.c), and the rest (tool.c). TLS is tls.h.
 */
#ifndef TOOL_H
#define TOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <getopt.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "proto.h"

#define TOOL_VERSION "0.1.0"

/* log.c: messages in the house style, and log levels per module. */

enum tool_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

/* What a log line is about: the tool's own events, or libproto's. The
 * names in filters: the tool's name (or "tool"), conn, disco, store. */
enum tool_module { MOD_TOOL, MOD_CONN, MOD_DISCO, MOD_STORE, MOD_COUNT };

extern const char *tool_name;
extern int tool_levels[MOD_COUNT];
#define tool_level tool_levels[MOD_TOOL]

/*
 * Sets the program name, the default level of every module, and the levels
 * from P2P_LOG (or RUST_LOG); routes libproto's and libevent's events to
 * the log.
 */
void tool_init(const char *name, int default_level);

/* Raise every module one level (-v, repeatable), or set them all to errors
 * only and turn off the automatic progress line (-q). */
void tool_verbose(void);
void tool_quiet(void);

/*
 * Parses a filter: comma-separated LEVEL (every module) and MODULE=LEVEL
 * directives, as "info,conn=trace"; a module may be spelled
 * mini_p2p::network or proto::conn. Modules left out get the default
 * level. Fills levels; returns 0, or -1 when a part was not valid (the rest
 * is still applied).
 */
int tool_log_filter(const char *spec, int levels[MOD_COUNT]);

/* P2P_LOG, else RUST_LOG, when set and not empty; else NULL. */
const char *tool_log_env(void);

/* Makes levels the current ones. */
void tool_log_apply(const int levels[MOD_COUNT]);

/* 1 when an event of module at level would be printed. */
int tool_log_enabled(int module, int level);

/* One line on stderr when the module's level allows: "NAME: message" for
 * the tool's errors and warnings, else "NAME: TIME LEVEL [MODULE]: message"
 * with a UTC timestamp. tool_log is for the tool's own module. */
void tool_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tool_logm(int module, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "NAME: message" on stderr, then exit(code). */
void tool_die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* "NAME: message: strerror(errno)" on stderr, then exit(code). */
void tool_die_errno(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* parse.c: values checked whole and in range; a bad one exits 2, named. */

/* Parses a whole decimal number in [min, max] or exits 2 naming what and
 * the bad value. */
uint64_t tool_parse_number(const char *text, uint64_t min, uint64_t max,
    const char *what);

/* Parses a chunk size: bytes, or a number with K or M (binary). Exits 2
 * unless it is a power of two from 16K to 4M. */
size_t tool_parse_chunk_size(const char *text, const char *what);

/* Parses a rate in bytes per second: a number, optionally with K, M or G
 * (binary). Returns 0 and sets *out (0: no limit), or -1 when the text is
 * not a rate from 1K (or 0) to 1T. */
int tool_rate_parse(const char *text, uint64_t *out);

/* The same, or exits 2 naming what and the bad value. */
uint64_t tool_parse_rate(const char *text, const char *what);

/* Parses a content id or exits 2. */
void tool_parse_id(const char *text, uint8_t id[PROTO_HASH_LEN]);

/*
 * Parses "HOST:PORT" (IPv6 as "[ADDR]:PORT"), a name looked up, into *a
 * (pin cleared): proto_addr_parse with PROTO_ADDR_RESOLVE, the one place a
 * tool turns what a user typed into an address. Returns 0, or -1 with a
 * reason in why (for a usage error the caller reports).
 */
int tool_resolve(const char *hostport, proto_addr *a, const char **why);

#define TOOL_DEFAULT_PORT 8080u /* p2p-serve's, and a peer's without one */

/*
 * Checks the peer an option names: "HOST:PORT" as tool_resolve takes it,
 * HOST or [IPv6] alone meaning TOOL_DEFAULT_PORT, or with pin_ok also
 * "ID@HOST:PORT" (tool_tls_split_pin), and parses it
 * into *a, pin and all, unless a is NULL. Exits 2 when it is not one, with
 * "WHAT 'ARG': why" (what as "bootstrap peer"), so that a bad -b or -p is a
 * usage error rather than a peer skipped later.
 */
void tool_parse_peer(const char *what, const char *arg, int pin_ok,
    proto_addr *a);

/* The socket address for listening on bind_addr (an IP address) at port
 * (0: any); exits 2 when bind_addr is not one. */
void tool_bind_address(const char *bind_addr, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *len);

/* config.c: the configuration file, and the options every tool shares. */

/*
 * Settings from the configuration file (PRODUCT.md section 6): --config
 * FILE when given on the command line, else config/default.toml here, else
 * ~/.config/p2p/config.toml. A missing default file is no error; a missing
 * --config file, or a bad value in any file, ends the program (exit 2,
 * naming file:line, the key and the value). Each has_* says whether the
 * file set that setting; the tools apply them before the environment and
 * the flags, which win.
 */
struct tool_config {
	unsigned max_peers, connection_timeout, discovery_interval;
	uint16_t discovery_port;
	const char *discovery_addr; /* from the environment; NULL: none */
	const char *discovery_addr6; /* MINI_P2P_DISCOVERY_ADDR6: an IPv6
	                         * address or "off"; NULL: none */
	size_t chunk_size;
	uint64_t max_file_size;
	unsigned inline_chunks; /* MINI_P2P_TEST_INLINE_CHUNKS, for tests
	                         * only; 0: the server's default */
	int log_levels[MOD_COUNT];
	int dht;                /* network.dht, MINI_P2P_DHT */
	char dht_bootstrap[1024]; /* network.dht_bootstrap: HOST:PORT, comma-
	                         * separated; MINI_P2P_DHT_BOOTSTRAP; "": the
	                         * public network's */
	uint16_t dht_port;      /* network.dht_port, MINI_P2P_DHT_PORT */
	int nat;                /* network.nat: map the listen port */
	int has_max_peers, has_connection_timeout, has_discovery_interval,
	    has_discovery_port, has_chunk_size, has_max_file_size,
	    has_log_level;
	char path[4096];      /* the file read, or "" */
};

/* Loads the configuration for this argv (which is not changed) into cfg:
 * the file, then the environment over it (MINI_P2P_MAX_PEERS,
 * MINI_P2P_TIMEOUT, MINI_P2P_CHUNK_SIZE, MINI_P2P_DISCOVERY_PORT,
 * MINI_P2P_DISCOVERY_ADDR, MINI_P2P_DISCOVERY_ADDR6, MINI_P2P_DHT, MINI_P2P_DHT_BOOTSTRAP,
 * MINI_P2P_DHT_PORT, and for the tests MINI_P2P_TEST_INLINE_CHUNKS;
 * a bad value is a usage error naming it), so that
 * each tool applies one set of values and its flags after them. Applies
 * the log level unless P2P_LOG or RUST_LOG is set, and the rate limits
 * (network.max_upload_rate, network.max_download_rate) to tool_opt, where
 * flags read later override them. */
void tool_config_load(int argc, char **argv, struct tool_config *cfg);

/* Options several tools share, set by tool_common_option (and the
 * configuration file for the rates). */
struct tool_options {
	int quiet;                  /* -q was given */
	int progress;               /* --progress: even when not a terminal */
	int json;                   /* --json */
	uint64_t max_upload_rate;   /* bytes/s; 0: none */
	uint64_t max_download_rate;
};
extern struct tool_options tool_opt;

/* getopt_long codes of the shared long options, past any character. */
enum {
	TOOL_OPT_PROGRESS = 0x100, TOOL_OPT_JSON, TOOL_OPT_MAX_UPLOAD,
	TOOL_OPT_MAX_DOWNLOAD, TOOL_OPT_STRICT
};
#define TOOL_LONGOPT_PROGRESS \
	{ "progress", no_argument, NULL, TOOL_OPT_PROGRESS }
#define TOOL_LONGOPT_JSON { "json", no_argument, NULL, TOOL_OPT_JSON }
#define TOOL_LONGOPTS_RATES \
	{ "max-upload-rate", required_argument, NULL, TOOL_OPT_MAX_UPLOAD }, \
	{ "max-download-rate", required_argument, NULL, TOOL_OPT_MAX_DOWNLOAD }

/* The long options tool_common_option handles, and the end of the table. */
#define TOOL_LONGOPTS_COMMON \
	{ "quiet", no_argument, NULL, 'q' }, \
	{ "verbose", no_argument, NULL, 'v' }, \
	{ "config", required_argument, NULL, 'C' }, \
	{ "strict", no_argument, NULL, TOOL_OPT_STRICT }, \
	{ "help", no_argument, NULL, 'h' }, \
	{ "version", no_argument, NULL, 'V' }, \
	{ NULL, 0, NULL, 0 }

/* Handles the options every tool shares: -q, -v, --config (read earlier by
 * tool_config_load), -h (usage on stdout, exit 0), -V (the version,
 * exit 0), and those of tool_opt for the tools that list them. Returns 1
 * when ch was one of them. */
int tool_common_option(int ch, void (*usage)(FILE *));

/* json.c: one JSON object a line. */

/*
 * JSON lines (--json): one object per line, written at once when complete.
 * Keys are ASCII literals; a NULL key is for values inside an array.
 */
struct tool_json {
	FILE *mem;
	char *buf;
	size_t len;
	int depth;
	int need_comma[8];
};
void tool_json_start(struct tool_json *j);
void tool_json_str(struct tool_json *j, const char *key, const char *s,
    size_t len);
void tool_json_uint(struct tool_json *j, const char *key, uint64_t v);
void tool_json_bool(struct tool_json *j, const char *key, int v);
void tool_json_null(struct tool_json *j, const char *key);
/* Opens a nested '[' or '{' under key, and closes it. */
void tool_json_open(struct tool_json *j, const char *key, char brace);
void tool_json_close(struct tool_json *j, char brace);
/* Ends the object and writes it as one line to fd. Returns 0, or -1 with
 * errno set. */
int tool_json_finish(struct tool_json *j, int fd);

/*
 * Writes s (len bytes, any bytes) as a JSON string, quotes included: UTF-8
 * passes as it is, '"', '\\', control characters, DEL, U+2028 and U+2029
 * are escaped, and each byte that is not part of valid UTF-8 becomes
 * U+FFFD, so that the output is always valid JSON.
 */
void tool_json_escape(FILE *out, const char *s, size_t len);

/* progress.c: the progress line. */

/*
 * A progress line on stderr: bytes done, rate, peers and time left, redrawn
 * in place at most four times a second. Shown when stderr is a terminal
 * (unless -q), or always with --progress; never otherwise.
 */
struct tool_progress {
	int on, drawn;
	const char *label;          /* shown first, as "name: ", or NULL */
	double start, last;         /* seconds, monotonic */
	double t[8];                /* recent samples, for the rate */
	uint64_t bytes[8];
	unsigned nsamples;
	uint64_t base;              /* bytes there before this run: not in
	                             * the rates */
	char note[64];              /* said last on the final line, or "" */
};

/* Starts the clock; label is borrowed until tool_progress_end. */
void tool_progress_start(struct tool_progress *p, const char *label);

/* Bytes that were there before this run (a resumed file): counted in the
 * bytes shown, not in the rates; note (copied, may be NULL) ends the
 * final line, as "resumed 591 of 800 chunks". */
void tool_progress_resumed(struct tool_progress *p, uint64_t bytes,
    const char *note);

/* done of total bytes (total 0: unknown), through peers (-1: not shown);
 * the line is redrawn when the last drawing is old enough. */
void tool_progress_update(struct tool_progress *p, uint64_t done,
    uint64_t total, int peers);

/* Draws the final state, with the time taken, and ends the line; nothing
 * when nothing was drawn and --progress was not given. */
void tool_progress_end(struct tool_progress *p, uint64_t done,
    uint64_t total, int peers);

/* Ends a progress line on screen so that other output starts on a line of
 * its own; the next update draws it again. */
void tool_progress_clear(void);

/* walk.c: the files of a shared tree. */

/* Calls fn for every regular file under path (itself when a file), in name
 * order, skipping symbolic links. fn returns 0 to go on. Returns the count
 * of errors reported (each already printed). */
typedef int (*tool_file_fn)(const char *path, const char *name, void *ctx);
int tool_walk(const char *path, tool_file_fn fn, void *ctx);

/* The same, asking skip first about every entry below path (files and
 * directories, as lstat saw them): 1 leaves it out, a directory with all
 * beneath it. */
typedef int (*tool_skip_fn)(const char *path, const char *name,
    const struct stat *st, void *ctx);
int tool_walk_skip(const char *path, tool_file_fn fn, tool_skip_fn skip,
    void *ctx);

/* The same for a tree: dirfn (may be NULL) is called for every directory
 * below path before what is in it, and each symbolic link met below path
 * is said at link_level (a LOG_* level; -1: not said), then skipped. */
int tool_walk_tree(const char *path, tool_file_fn fn, tool_file_fn dirfn,
    tool_skip_fn skip, int link_level, void *ctx);

/* treewalk.c: a directory as a tree. */

/* Hashes fd (a regular file, name for messages) into *mf: 0 or a
 * negative PROTO_ERR_*, as proto_manifest_build_fd. */
typedef int (*tool_hash_fn)(int fd, const char *name, proto_manifest **mf,
    void *ctx);

/*
 * Walks dir (symbolic links inside skipped, said at LOG_WARN) into a
 * finished tree in *out, the caller's to free, named after dir's last
 * component, each file hashed by hash(fd, name, &mf, ctx) (NULL:
 * proto_manifest_build_fd). Returns 0, or the count of files that could
 * not be read (each said; *out NULL). Dies when dir cannot be opened, out
 * of memory, or when the tree is not one a peer would take.
 */
int tool_tree_build(const char *dir, tool_hash_fn hash, void *ctx,
    proto_tree **out);

/*
 * torrent.c: writes to fd a BitTorrent v2 metainfo file (BEP 52) of path,
 * a file or a directory (as tool_tree_build walks it; empty directories
 * have no place in one), each file hashed by hash (NULL:
 * proto_manifest_build_fd). 0; dies with a message on any failure.
 */
int tool_torrent(const char *path, tool_hash_fn hash, void *ctx, int fd);

/* tool.c: pipes, the process's limits and name, the log hook, and the
 * bandwidth budget. */

/* Writes all of buf to fd. Returns 0, or -1 with errno set (EPIPE when the
 * reader went away). */
int tool_write_all(int fd, const void *buf, size_t len);

/* Raises the soft limit on open descriptors to the hard limit: a node with
 * many peers needs one per connection. */
void tool_raise_fd_limit(void);

/* The node name: the host name, or "p2p". Static storage. */
const char *tool_hostname(void);

/* libproto's log hook (proto_server_cbs.log): its levels are ours. */
void tool_proto_log(int level, const char *text, void *ctx);

/*
 * The budget every connection of this process shares, from tool_opt's
 * rates: NULL when there is no limit. Made on the first call, on base;
 * tool_conn_limit_free frees it once every connection is freed.
 */
proto_conn_limit *tool_conn_limit(struct event_base *base);
void tool_conn_limit_free(void);

#endif
