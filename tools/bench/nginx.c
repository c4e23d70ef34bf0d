/*
 * nginx started and stopped for p2p-bench's HTTP baselines. Everything it
 * reads and writes lives in one directory of the bench's own, so it needs
 * neither root nor the system's nginx config, and leaves nothing behind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nginx.h"
#include "proc.h"

/* The one nginx running, if any, for the exit handler. */
static struct nginx *running;

/* Why the last start failed: nginx's own first complaint. */
static char reason[256];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A loopback port nobody listens on now. nginx binds it a moment later;
 * another program taking it in between makes the start fail, and the
 * caller tries again. */
static unsigned
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	unsigned port = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int
port_open(unsigned port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static int
make_cert(struct nginx *n, char *key, size_t keylen)
{
	char openssl[] = "/usr/bin/openssl";
	char *argv[] = { openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
	    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out",
	    n->cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
	    "subjectAltName=IP:127.0.0.1", NULL };

	snprintf(key, keylen, "%s/key.pem", n->dir);
	snprintf(n->cert, sizeof(n->cert), "%s/cert.pem", n->dir);
	return proc_timed(argv, NULL).ok ? 0 : -1;
}

static int
write_conf(const struct nginx *n, const char *conf, const char *key)
{
	FILE *f = fopen(conf, "w");
	const char *d = n->dir;

	if (f == NULL)
		return -1;
	/* One process serving (no master and worker), so that its pid is
	 * the server's whole cost; no user directive, as without a master
	 * nginx never changes user. The temp paths are nginx's compiled-in
	 * ones otherwise, under /var/lib. */
	fprintf(f, "master_process off;\ndaemon off;\npid %s/nginx.pid;\n"
	    "error_log %s/error.log warn;\nevents { worker_connections 256; }\n"
	    "http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n"
	    "  default_type application/octet-stream;\n"
	    "  client_body_temp_path %s/tmp-body;\n"
	    "  proxy_temp_path %s/tmp-proxy;\n"
	    "  fastcgi_temp_path %s/tmp-fastcgi;\n"
	    "  uwsgi_temp_path %s/tmp-uwsgi;\n"
	    "  scgi_temp_path %s/tmp-scgi;\n"
	    "  server { listen 127.0.0.1:%u; root %s/www; }\n"
	    "  server {\n    listen 127.0.0.1:%u ssl;\n"
	    "    ssl_protocols TLSv1.3;\n    ssl_certificate %s;\n"
	    "    ssl_certificate_key %s;\n    root %s/www;\n  }\n}\n",
	    d, d, d, d, d, d, d, n->http_port, d, n->https_port, n->cert,
	    key, d);
	return fclose(f);
}

/* Appends the first line of dir/name to reason: 1 when there was one. */
static int
first_line(const char *dir, const char *name)
{
	char path[PATH_MAX + 16], line[200];
	FILE *f;
	int got;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	got = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	if (got) {
		line[strcspn(line, "\n")] = '\0';
		snprintf(reason, sizeof(reason), "it did not start: %s", line);
	}
	return got;
}

static void
stop_at_exit(void)
{
	if (running != NULL)
		nginx_stop(running);
}

/* Starts nginx on conf and waits until both ports answer: 0, or -1 when
 * it exited (a port taken, most likely) or did not answer in 10 s. */
static int
launch(struct nginx *n, const char *conf)
{
	char err[PATH_MAX];
	double deadline = proc_now() + 10;
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	snprintf(err, sizeof(err), "%s/stderr.log", n->dir);
	if ((n->pid = fork()) < 0)
		return n->pid = 0, -1;
	if (n->pid == 0) {
		char nginx[] = NGINX_PATH;
		char *argv[] = { nginx, "-p", n->dir, "-c", (char *)conf, "-e",
		    err, NULL };
		int null = open("/dev/null", O_RDWR);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	while (proc_now() < deadline) {
		if (waitpid(n->pid, NULL, WNOHANG) != 0) {
			n->pid = 0;
			return -1;
		}
		if (port_open(n->http_port) && port_open(n->https_port))
			return 0;
		nanosleep(&tick, NULL);
	}
	kill(n->pid, SIGKILL);
	waitpid(n->pid, NULL, 0);
	n->pid = 0;
	return -1;
}

int
nginx_start(struct nginx *n, const char *parent, const char **why)
{
	static int registered;
	char conf[PATH_MAX], key[PATH_MAX], www[PATH_MAX];

	memset(n, 0, sizeof(*n));
	if (access(NGINX_PATH, X_OK) != 0) {
		*why = NGINX_PATH " not found (make deps installs nginx-light)";
		return -1;
	}
	snprintf(n->dir, sizeof(n->dir), "%s/nginx.XXXXXX", parent);
	if (mkdtemp(n->dir) == NULL) {
		*why = "cannot make its directory";
		return -1;
	}
	snprintf(conf, sizeof(conf), "%s/nginx.conf", n->dir);
	snprintf(www, sizeof(www), "%s/www", n->dir);
	if (mkdir(www, 0755) != 0) {
		*why = "cannot make its web root";
		rm_tree(n->dir);
		return -1;
	}
	if (make_cert(n, key, sizeof(key)) != 0) {
		*why = "openssl req could not make the certificate";
		rm_tree(n->dir);
		return -1;
	}
	if (!registered) {
		atexit(stop_at_exit);
		registered = 1;
	}
	for (int tries = 0; tries < 3; tries++) {
		n->http_port = free_port();
		do
			n->https_port = free_port();
		while (n->https_port == n->http_port);
		if (n->http_port == 0 || n->https_port == 0 ||
		    write_conf(n, conf, key) != 0)
			break;
		if (launch(n, conf) == 0) {
			running = n;
			return 0;
		}
	}
	snprintf(reason, sizeof(reason), "it did not start");
	if (!first_line(n->dir, "stderr.log"))
		first_line(n->dir, "error.log");
	*why = reason;
	rm_tree(n->dir);
	return -1;
}

int
nginx_publish(const struct nginx *n, const char *file)
{
	char dst[PATH_MAX + 8];
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;

	snprintf(dst, sizeof(dst), "%s/www/%s", n->dir, base);
	unlink(dst);
	if (link(file, dst) == 0)
		return 0;
	return symlink(file, dst);
}

void
nginx_stop(struct nginx *n)
{
	if (n->pid > 0) {
		kill(n->pid, SIGTERM);
		waitpid(n->pid, NULL, 0);
		n->pid = 0;
		rm_tree(n->dir);
	}
	if (running == n)
		running = NULL;
}
