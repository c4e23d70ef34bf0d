/*
 * The raw TCP copy baseline's two ends, run as p2p-bench --raw-send and
 * --raw-recv, and how p2p-bench starts and times them.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tool.h"
#include "raw.h"

void
raw_send(const char *path)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int lfd, one = 1;

	signal(SIGPIPE, SIG_IGN);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(lfd, 128) || getsockname(lfd, (struct sockaddr *)&sin, &len))
		tool_die_errno(1, "raw sender");
	printf("127.0.0.1:%u\n", ntohs(sin.sin_port));
	fflush(stdout);
	for (;;) {
		int c = accept(lfd, NULL, NULL), fd;
		struct stat st;
		off_t off = 0;
		if (c < 0)
			continue;
		if ((fd = open(path, O_RDONLY)) >= 0 && fstat(fd, &st) == 0)
			while (off < st.st_size &&
			    sendfile(c, fd, &off, (size_t)(st.st_size - off)) > 0)
				;
		if (fd >= 0)
			close(fd);
		close(c);
	}
}

int
raw_recv(const char *hostport, const char *out_path)
{
	proto_addr a;
	const char *why;
	static char buf[1 << 20];
	int fd, out;
	ssize_t n;

	if (tool_resolve(hostport, &a, &why) != 0)
		tool_die(2, "%s: %s", hostport, why);
	if ((fd = socket(a.ss.ss_family, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&a.ss, a.len) != 0)
		tool_die_errno(1, "connect %s", hostport);
	if ((out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		tool_die_errno(1, "%s", out_path);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (tool_write_all(out, buf, (size_t)n) != 0)
			tool_die_errno(1, "%s", out_path);
	return close(out) == 0 && n == 0 ? 0 : 1;
}

void
raw_start(struct server *s, const char *self, const char *file)
{
	char *argv[] = { (char *)self, "--raw-send", (char *)file, NULL };

	if (proc_server_start(s, argv, NULL) != 0)
		tool_die(1, "raw sender did not start");
}

struct run
raw_timed_recv(const struct server *s, const char *self, const char *out)
{
	char *argv[] = { (char *)self, "--raw-recv", (char *)s->addr,
	    (char *)out, NULL };

	unlink(out);
	return proc_timed(argv, NULL);
}
