/* Shared helpers of the p2p-* tools; see tool.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

const char *tool_name = "p2p";
int tool_level = LOG_WARN;

static int
level_from(const char *text, int fallback)
{
	static const char *names[] = { "error", "warn", "info", "debug",
	    "trace" };

	if (text == NULL || *text == '\0')
		return fallback;
	/* RUST_LOG style "module=level,..." keeps its last level word. */
	const char *eq = strrchr(text, '=');
	if (eq != NULL)
		text = eq + 1;
	for (int i = 0; i < 5; i++)
		if (strncasecmp(text, names[i], strlen(names[i])) == 0)
			return i;
	return fallback;
}

void
tool_init(const char *name, int default_level)
{
	const char *env = getenv("P2P_LOG");

	tool_name = name;
	if (env == NULL || *env == '\0')
		env = getenv("RUST_LOG");
	tool_level = level_from(env, default_level);
}

void
tool_verbose(void)
{
	if (tool_level < LOG_TRACE)
		tool_level++;
}

void
tool_quiet(void)
{
	tool_level = LOG_ERROR;
}

static void
vsay(const char *fmt, va_list ap, const char *suffix)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (suffix)
		fprintf(stderr, "%s: %s: %s\n", tool_name, line, suffix);
	else
		fprintf(stderr, "%s: %s\n", tool_name, line);
}

void
tool_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > tool_level)
		return;
	va_start(ap, fmt);
	vsay(fmt, ap, NULL);
	va_end(ap);
}

void
tool_die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap, NULL);
	va_end(ap);
	exit(code);
}

void
tool_die_errno(int code, const char *fmt, ...)
{
	const char *reason = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap, reason);
	va_end(ap);
	exit(code);
}

uint64_t
tool_parse_number(const char *text, uint64_t min, uint64_t max,
    const char *what)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (!isdigit((unsigned char)text[0]))
		tool_die(2, "%s '%s': not a number", what, text);
	v = strtoull(text, &end, 10);
	if (*end != '\0')
		tool_die(2, "%s '%s': not a number", what, text);
	if (errno == ERANGE || v < min || v > max)
		tool_die(2, "%s '%s': must be from %llu to %llu", what, text,
		    (unsigned long long)min, (unsigned long long)max);
	return v;
}

size_t
tool_parse_chunk_size(const char *text, const char *what)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = isdigit((unsigned char)text[0]) ? strtoull(text, &end, 10) : 0;
	if (v != 0 && errno == 0) {
		if ((*end == 'K' || *end == 'k') && end[1] == '\0' &&
		    v <= (1ull << 40))
			v <<= 10;
		else if ((*end == 'M' || *end == 'm') && end[1] == '\0' &&
		    v <= (1ull << 30))
			v <<= 20;
		else if (*end != '\0')
			v = 0;
	}
	if (v == 0 || v > PROTO_CHUNK_MAX ||
	    !proto_chunk_size_allowed((size_t)v))
		tool_die(2, "%s '%s': must be a power of two from 16K to 4M",
		    what, text);
	return (size_t)v;
}

void
tool_parse_id(const char *text, uint8_t id[PROTO_HASH_LEN])
{
	if (proto_id_parse(text, id) != 0) {
		char shown[80];
		tool_printable(text, strlen(text), shown, sizeof(shown));
		tool_die(2, "malformed content id '%s'", shown);
	}
}

int
tool_resolve(const char *hostport, struct sockaddr_storage *ss,
    socklen_t *len, const char **why)
{
	char host[256], *colon, *end;
	struct addrinfo hints, *res;
	unsigned long port;
	size_t n = strlen(hostport);
	int rc;

	if (n == 0 || n >= sizeof(host)) {
		*why = "want HOST:PORT";
		return -1;
	}
	memcpy(host, hostport, n + 1);
	if ((colon = strrchr(host, ':')) == NULL || colon == host) {
		*why = "want HOST:PORT";
		return -1;
	}
	*colon = '\0';
	errno = 0;
	port = isdigit((unsigned char)colon[1]) ?
	    strtoul(colon + 1, &end, 10) : 0;
	if (port == 0 || port > 65535 || *end != '\0' || errno) {
		*why = "port must be from 1 to 65535";
		return -1;
	}
	if (host[0] == '[' && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		*why = gai_strerror(rc);
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int
tool_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
tool_printable(const char *text, size_t len, char *out, size_t outlen)
{
	size_t j = 0;

	for (size_t i = 0; i < len && j + 1 < outlen; i++) {
		unsigned char c = (unsigned char)text[i];
		out[j++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[j] = '\0';
}

void
tool_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			tool_log(LOG_DEBUG, "cannot raise the descriptor limit: "
			    "%s", strerror(errno));
	}
}

const char *
tool_hostname(void)
{
	static char name[PROTO_NODE_NAME_MAX + 1];

	if (name[0] == '\0' && gethostname(name, sizeof(name)) != 0)
		strcpy(name, "p2p");
	name[sizeof(name) - 1] = '\0';
	return name;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Names given by the user are followed when they are links; links met
 * inside a directory are not, so a shared tree cannot reach outside. */
static int
walk(const char *path, int top, tool_file_fn fn, void *ctx)
{
	struct dirent **entries;
	struct stat st;
	int n, errors = 0;

	if ((top ? stat(path, &st) : lstat(path, &st)) != 0) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		return 1;
	}
	if (S_ISREG(st.st_mode)) {
		const char *slash = strrchr(path, '/');
		return fn(path, slash ? slash + 1 : path, ctx) != 0;
	}
	if (!S_ISDIR(st.st_mode))
		return 0; /* links, devices, sockets: not files to share */
	if ((n = scandir(path, &entries, NULL, by_name)) < 0) {
		tool_log(LOG_ERROR, "%s: %s", path, strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		const char *d = entries[i]->d_name;
		char *child;
		if (strcmp(d, ".") != 0 && strcmp(d, "..") != 0 &&
		    asprintf(&child, "%s/%s", path, d) >= 0) {
			errors += walk(child, 0, fn, ctx);
			free(child);
		}
		free(entries[i]);
	}
	free(entries);
	return errors;
}

int
tool_walk(const char *path, tool_file_fn fn, void *ctx)
{
	return walk(path, 1, fn, ctx);
}
