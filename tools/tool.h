/*
 * The few helpers every p2p-* tool shares: messages in the house style,
 * log levels, checked parsing of command-line values, and writing to pipes.
 */
#ifndef TOOL_H
#define TOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "proto.h"

#define TOOL_VERSION "0.1.0"

enum tool_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

extern const char *tool_name;
extern int tool_level;

/* Sets the program name and the log level from P2P_LOG (or RUST_LOG),
 * falling back to default_level. */
void tool_init(const char *name, int default_level);

/* Raise (+1 per -v) or lower (-q) the level set by tool_init. */
void tool_verbose(void);
void tool_quiet(void);

/* "NAME: message" on stderr when level is enabled. */
void tool_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "NAME: message" on stderr, then exit(code). */
void tool_die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* "NAME: message: strerror(errno)" on stderr, then exit(code). */
void tool_die_errno(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* Parses a whole decimal number in [min, max] or exits 2 naming what and
 * the bad value. */
uint64_t tool_parse_number(const char *text, uint64_t min, uint64_t max,
    const char *what);

/* Parses a chunk size: bytes, or a number with K or M (binary). Exits 2
 * unless it is a power of two from 16K to 4M. */
size_t tool_parse_chunk_size(const char *text, const char *what);

/* Parses a content id or exits 2. */
void tool_parse_id(const char *text, uint8_t id[PROTO_HASH_LEN]);

/*
 * Resolves "HOST:PORT" (IPv6 as "[ADDR]:PORT") into ss. Returns 0, or -1
 * with a reason in why (for a usage error the caller reports).
 */
int tool_resolve(const char *hostport, struct sockaddr_storage *ss,
    socklen_t *len, const char **why);

/* Writes all of buf to fd. Returns 0, or -1 with errno set (EPIPE when the
 * reader went away). */
int tool_write_all(int fd, const void *buf, size_t len);

/* Copies text into out (outlen bytes) with control characters replaced, so
 * a peer's name cannot break a tab-separated line or a terminal. */
void tool_printable(const char *text, size_t len, char *out, size_t outlen);

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
	size_t chunk_size;
	uint64_t max_file_size;
	int log_level;
	int has_max_peers, has_connection_timeout, has_discovery_interval,
	    has_chunk_size, has_max_file_size, has_log_level;
	char path[4096];      /* the file read, or "" */
};

/* Loads the configuration for this argv (which is not changed) into cfg,
 * and applies its log level unless P2P_LOG or RUST_LOG is set. */
void tool_config_load(int argc, char **argv, struct tool_config *cfg);

/* Handles the options every tool shares: -q, -v, --config (read earlier by
 * tool_config_load), -h (usage on stdout, exit 0) and -V (the version,
 * exit 0). Returns 1 when ch was one of them. */
int tool_common_option(int ch, void (*usage)(FILE *));

/* Raises the soft limit on open descriptors to the hard limit: a node with
 * many peers needs one per connection. */
void tool_raise_fd_limit(void);

/* The node name: the host name, or "p2p". Static storage. */
const char *tool_hostname(void);

/* Calls fn for every regular file under path (itself when a file), in name
 * order, skipping symbolic links. fn returns 0 to go on. Returns the count
 * of errors reported (each already printed). */
typedef int (*tool_file_fn)(const char *path, const char *name, void *ctx);
int tool_walk(const char *path, tool_file_fn fn, void *ctx);

/* libproto's log hook (proto_server_cbs.log): its levels are ours. */
void tool_proto_log(int level, const char *text, void *ctx);

/* The socket address for listening on bind_addr (an IP address) at port
 * (0: any); exits 2 when bind_addr is not one. */
void tool_bind_address(const char *bind_addr, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *len);

#endif
