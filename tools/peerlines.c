/*
 * p2p-fetch's peers from stdin: the HOST:PORT lines p2p-discover prints,
 * each added to the fetch as it arrives, from a pipe watched by the event
 * loop or from a file read at once.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p2p-fetch.h"
#include "tls.h"

/* arg: HOST:PORT, or ID@HOST:PORT to accept only the peer of that
 * identity there, or ID@relay:HOST:PORT for that node through the relay
 * there. */
static void
add_peer(struct fetch *f, const char *arg)
{
	uint8_t pin[PROTO_IDENTITY_LEN];
	const char *text, *why;
	proto_addr addr;
	int has_pin, relayed = 0;

	if ((text = tool_tls_split_pin(arg, pin, &has_pin)) == NULL) {
		tool_log(LOG_WARN, "peer '%s': the identity before '@' is not "
		    "%d hex digits", arg, PROTO_IDENTITY_HEX_LEN);
		return;
	}
	if (has_pin && strncmp(text, "relay:", 6) == 0 &&
	    strpbrk(text + 6, ":[") != NULL) {
		text += 6;
		relayed = 1;
	}
	if (tool_resolve(text, &addr, &why) != 0) {
		tool_log(LOG_WARN, "peer '%s': %s", text, why);
		return;
	}
	proto_addr_set_pin(&addr, has_pin ? pin : NULL);
	addr.relayed = relayed;
	fetch_add_peer(f, &addr);
}

/* Peers on stdin: the first field of each line (what p2p-discover
 * prints); blank lines and # comments are passed over, a long line cut. */
static void
take_bytes(struct fetch *f, const char *buf, size_t n)
{
	for (size_t i = 0; i < n && !f->done; i++) {
		if (buf[i] != '\n') {
			if (f->linelen + 1 < sizeof(f->line))
				f->line[f->linelen++] = buf[i];
			continue;
		}
		f->line[f->linelen] = '\0';
		f->line[strcspn(f->line, "\t \r")] = '\0';
		f->linelen = 0;
		if (f->line[0] != '\0' && f->line[0] != '#')
			add_peer(f, f->line);
	}
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
	if (n > 0) {
		take_bytes(f, buf, (size_t)n);
		return;
	}
	if (f->linelen > 0)
		take_bytes(f, "\n", 1);
	if (f->stdin_ev)
		event_del(f->stdin_ev);
	f->stdin_open = 0;
	fetch_no_more_peers(f);
}

/* 1 when epoll can watch fd: a pipe or a socket, not a file or device. */
static int
is_pollable(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) ||
	    S_ISSOCK(st.st_mode));
}

/* A pipe on stdin is watched, a file read at once (epoll cannot watch
 * one). */
void
fetch_start_peers(struct fetch *f)
{
	if (f->read_stdin && !is_pollable(STDIN_FILENO)) {
		f->stdin_open = 1;
		while (f->stdin_open && !f->done)
			stdin_ready(STDIN_FILENO, EV_READ, f);
	} else if (f->read_stdin) {
		evutil_make_socket_nonblocking(STDIN_FILENO);
		f->stdin_ev = event_new(f->base, STDIN_FILENO,
		    EV_READ | EV_PERSIST, stdin_ready, f);
		if (f->stdin_ev == NULL || event_add(f->stdin_ev, NULL) != 0)
			tool_die(1, "stdin: cannot read peers from it");
		f->stdin_open = 1;
	}
}
