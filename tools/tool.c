/*
 * The small helpers that belong to no larger concern: writing a whole
 * buffer to a pipe, the descriptor limit, the host name, libproto's log
 * hook, and the bandwidth budget every connection of the process shares.
 * Values are parsed in parse.c, settings layered in config.c, JSON written
 * in json.c, shared trees walked in walk.c; tool.h declares them all.
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tool.h"

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

void
tool_proto_log(int level, const char *text, void *ctx)
{
	(void)ctx;
	tool_log(level, "%s", text);
}

static proto_conn_limit *limit;

proto_conn_limit *
tool_conn_limit(struct event_base *base)
{
	if (limit != NULL || (tool_opt.max_upload_rate == 0 &&
	    tool_opt.max_download_rate == 0))
		return limit;
	if ((limit = proto_conn_limit_new(base, tool_opt.max_download_rate,
	    tool_opt.max_upload_rate)) == NULL)
		tool_die(1, "out of memory");
	tool_log(LOG_DEBUG, "bandwidth: at most %llu bytes/s down, %llu up "
	    "(0: no limit)", (unsigned long long)tool_opt.max_download_rate,
	    (unsigned long long)tool_opt.max_upload_rate);
	return limit;
}

void
tool_conn_limit_free(void)
{
	proto_conn_limit_free(limit);
	limit = NULL;
}
