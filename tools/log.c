/*
 * Logging for the p2p-* tools: a level per module, set by a filter such as
 * "info,conn=trace" (P2P_LOG, RUST_LOG, logging.level, -v, -q), and one
 * line on stderr per event. The tool's own errors and warnings are the
 * diagnostics STYLE.md asks for ("p2p-fetch: connect HOST:PORT: reason");
 * every other event carries a timestamp, its level and its module, since
 * those lines are read afterwards, beside other logs. libproto's events
 * (log.h) and libevent's come here through hooks.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "tool.h"

const char *tool_name = "p2p";
int tool_levels[MOD_COUNT] = { LOG_WARN, LOG_WARN, LOG_WARN, LOG_WARN };
static int default_level = LOG_WARN;

static const char *level_names[] = { "error", "warn", "info", "debug",
    "trace" };
static const char *module_names[MOD_COUNT] = { NULL, "conn", "disco",
    "store" };

/* libproto's modules, in the order of enum tool_module after MOD_TOOL. */
static const int proto_module[MOD_COUNT] = { -1, PROTO_LOG_CONN,
    PROTO_LOG_DISCO, PROTO_LOG_STORE };

static void
levels_changed(void)
{
	for (int m = 0; m < MOD_COUNT; m++)
		if (proto_module[m] >= 0)
			proto_log_set_level(proto_module[m], tool_levels[m]);
}

static int
parse_level(const char *text, size_t len)
{
	for (int i = 0; i < 5; i++)
		if (len == strlen(level_names[i]) &&
		    strncasecmp(text, level_names[i], len) == 0)
			return i;
	if (len == 7 && strncasecmp(text, "warning", 7) == 0)
		return LOG_WARN;
	return -1;
}

/*
 * The modules a filter name stands for, as a bit set; 0 when it names none
 * of this tool's (another tool's, or another program's under RUST_LOG).
 * The original design's "mini_p2p::network" style is accepted, and so are
 * "proto::conn" and the original's module names.
 */
static unsigned
parse_module(const char *text, size_t len)
{
	static const struct { const char *name; unsigned set; } names[] = {
		{ "tool", 1u << MOD_TOOL },
		{ "conn", 1u << MOD_CONN }, { "net", 1u << MOD_CONN },
		{ "network", 1u << MOD_CONN },
		{ "disco", 1u << MOD_DISCO }, { "discovery", 1u << MOD_DISCO },
		{ "store", 1u << MOD_STORE }, { "storage", 1u << MOD_STORE },
		{ "proto", (1u << MOD_CONN) | (1u << MOD_DISCO) |
		    (1u << MOD_STORE) },
		{ "mini_p2p", (1u << MOD_COUNT) - 1 },
	};
	static const char *prefixes[] = { "mini_p2p::", "proto::", "p2p::" };
	const char *sep;

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i]);
		if (len > n && strncmp(text, prefixes[i], n) == 0) {
			text += n;
			len -= n;
			break;
		}
	}
	/* A deeper path (network::conn) is within its first component. */
	if ((sep = memmem(text, len, "::", 2)) != NULL)
		len = (size_t)(sep - text);
	if (len == strlen(tool_name) && strncmp(text, tool_name, len) == 0)
		return 1u << MOD_TOOL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (len == strlen(names[i].name) &&
		    strncmp(text, names[i].name, len) == 0)
			return names[i].set;
	return 0;
}

/* One directive of a filter: LEVEL, MODULE=LEVEL, or MODULE (trace). */
static int
parse_directive(const char *text, size_t len, int *all, int explicit[])
{
	const char *eq = memchr(text, '=', len);
	unsigned set;
	int level;

	while (len > 0 && isspace((unsigned char)*text)) {
		text++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		len--;
	if (len == 0)
		return 0;
	if (eq == NULL) {
		if ((level = parse_level(text, len)) >= 0) {
			*all = level;
			return 0;
		}
		/* A bare word that is neither a level nor one of our
		 * modules is most likely a misspelt level. */
		if ((set = parse_module(text, len)) == 0)
			return -1;
		level = LOG_TRACE;
	} else {
		set = parse_module(text, (size_t)(eq - text));
		level = parse_level(eq + 1, len - (size_t)(eq + 1 - text));
		if (level < 0)
			return -1;
	}
	for (int m = 0; m < MOD_COUNT; m++)
		if (set & (1u << m))
			explicit[m] = level;
	return 0;
}

int
tool_log_filter(const char *spec, int levels[MOD_COUNT])
{
	int all = -1, explicit[MOD_COUNT], rc = 0;

	for (int m = 0; m < MOD_COUNT; m++)
		explicit[m] = -1;
	while (spec != NULL && *spec != '\0') {
		size_t n = strcspn(spec, ",");
		if (parse_directive(spec, n, &all, explicit) != 0)
			rc = -1;
		spec += n + (spec[n] == ',');
	}
	for (int m = 0; m < MOD_COUNT; m++)
		levels[m] = explicit[m] >= 0 ? explicit[m] : all >= 0 ? all :
		    default_level;
	return rc;
}

/* P2P_LOG, else RUST_LOG (the original design's name), or NULL. */
const char *
tool_log_env(void)
{
	const char *env = getenv("P2P_LOG");

	if (env == NULL || *env == '\0')
		env = getenv("RUST_LOG");
	return env != NULL && *env != '\0' ? env : NULL;
}

void
tool_log_apply(const int levels[MOD_COUNT])
{
	memcpy(tool_levels, levels, sizeof(tool_levels));
	levels_changed();
}

static void
timestamp(char *out, size_t outlen)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, outlen - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Writes one whole line with one write, so lines from several processes
 * sharing a stderr do not interleave. Messages quote what peers chose (file
 * and node names, error texts): every one goes through the one printable
 * filter here, so no peer can start a line of its own or send a terminal
 * an escape sequence, whichever message forgot to filter. */
static void
emit(int module, int level, const char *text, const char *suffix_text)
{
	char line[1536], msg[1024], suffix_buf[256];
	const char *suffix = NULL;
	int n;

	proto_msg_printable(msg, sizeof(msg), text, strlen(text));
	if (suffix_text != NULL) {
		proto_msg_printable(suffix_buf, sizeof(suffix_buf), suffix_text,
		    strlen(suffix_text));
		suffix = suffix_buf;
	}
	tool_progress_clear();
	if (module == MOD_TOOL && level <= LOG_WARN) {
		n = snprintf(line, sizeof(line), "%s: %s%s%s\n", tool_name, msg,
		    suffix ? ": " : "", suffix ? suffix : "");
	} else {
		char when[40];
		timestamp(when, sizeof(when));
		n = snprintf(line, sizeof(line), "%s: %s %s%s%s: %s%s%s\n",
		    tool_name, when, level_names[level],
		    module_names[module] ? " " : "",
		    module_names[module] ? module_names[module] : "", msg,
		    suffix ? ": " : "", suffix ? suffix : "");
	}
	if (n >= (int)sizeof(line)) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (n > 0)
		(void)tool_write_all(STDERR_FILENO, line, (size_t)n);
}

static void
vlog(int module, int level, const char *fmt, va_list ap, const char *suffix)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	emit(module, level, msg, suffix);
}

static void
from_proto(int module, int level, const char *msg, void *ctx)
{
	(void)ctx;
	for (int m = 0; m < MOD_COUNT; m++)
		if (proto_module[m] == module && level <= tool_levels[m] &&
		    level >= LOG_ERROR && level <= LOG_TRACE)
			emit(m, level, msg, NULL);
}

/* libevent's own complaints are about sockets: the conn module's. */
static void
from_libevent(int severity, const char *msg)
{
	int level = severity == EVENT_LOG_ERR ? LOG_ERROR :
	    severity == EVENT_LOG_WARN ? LOG_WARN :
	    severity == EVENT_LOG_MSG ? LOG_INFO : LOG_DEBUG;

	if (level <= tool_levels[MOD_CONN])
		emit(MOD_CONN, level, msg, NULL);
}

void
tool_init(const char *name, int level)
{
	int levels[MOD_COUNT];
	const char *env;

	tool_name = name;
	default_level = level;
	env = tool_log_env();
	if (tool_log_filter(env, levels) != 0) {
		/* Say it at the default levels, then stop: a misspelt level
		 * would otherwise leave the user without the lines asked for. */
		tool_log_filter(NULL, levels);
		tool_log_apply(levels);
		tool_die(2, "%s '%s': a level is error, warn, info, debug or "
		    "trace (MODULE=LEVEL for one module)", getenv("P2P_LOG") !=
		    NULL && *getenv("P2P_LOG") != '\0' ? "P2P_LOG" : "RUST_LOG",
		    env);
	}
	tool_log_apply(levels);
	proto_log_set(from_proto, NULL);
	event_set_log_callback(from_libevent);
}

void
tool_verbose(void)
{
	for (int m = 0; m < MOD_COUNT; m++)
		if (tool_levels[m] < LOG_TRACE)
			tool_levels[m]++;
	levels_changed();
}

void
tool_quiet(void)
{
	for (int m = 0; m < MOD_COUNT; m++)
		tool_levels[m] = LOG_ERROR;
	tool_opt.quiet = 1;
	levels_changed();
}

int
tool_log_enabled(int module, int level)
{
	return module >= 0 && module < MOD_COUNT && level <= tool_levels[module];
}

void
tool_logm(int module, int level, const char *fmt, ...)
{
	va_list ap;

	if (!tool_log_enabled(module, level))
		return;
	va_start(ap, fmt);
	vlog(module, level, fmt, ap, NULL);
	va_end(ap);
}

void
tool_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (!tool_log_enabled(MOD_TOOL, level))
		return;
	va_start(ap, fmt);
	vlog(MOD_TOOL, level, fmt, ap, NULL);
	va_end(ap);
}

void
tool_die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(MOD_TOOL, LOG_ERROR, fmt, ap, NULL);
	va_end(ap);
	exit(code);
}

void
tool_die_errno(int code, const char *fmt, ...)
{
	const char *reason = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	vlog(MOD_TOOL, LOG_ERROR, fmt, ap, reason);
	va_end(ap);
	exit(code);
}
