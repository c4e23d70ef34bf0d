/*
 * nginx as p2p-bench's HTTP baseline: started by the bench itself, as the
 * invoking user, on free loopback ports, with a prefix, config, pid file,
 * logs, web root and a throwaway TLS certificate of its own in a fresh
 * directory, and stopped by its pid.
 */
#ifndef BENCH_NGINX_H
#define BENCH_NGINX_H

#include <limits.h>
#include <sys/types.h>

#define NGINX_PATH "/usr/sbin/nginx"

/* A running nginx: one process (master_process off), so its pid is the
 * one that serves, and its CPU time and RSS are the server's whole cost.
 * pid is 0 when not running. */
struct nginx {
	pid_t pid;
	unsigned http_port, https_port;
	char dir[PATH_MAX - 64];   /* prefix; the web root is dir/www */
	char cert[PATH_MAX];       /* the certificate, for curl --cacert */
};

/* Makes a fresh directory under parent, a self-signed ECDSA P-256
 * certificate for IP 127.0.0.1 valid one day (openssl req), and a config
 * serving dir/www over HTTP/1.1 on one free loopback port and over HTTPS
 * (TLS 1.3 only) on another, sendfile on, no access log; then starts
 * nginx on it and waits up to 10 s until both ports accept connections.
 * Returns 0; or -1 with *why saying what failed (a static string), the
 * directory removed and nothing left running. nginx dies with p2p-bench
 * (PR_SET_PDEATHSIG) and is stopped at exit if nginx_stop was not
 * called. */
int nginx_start(struct nginx *n, const char *parent, const char **why);

/* Puts file into n's web root under its base name (a hard link, else a
 * symbolic one). Returns 0, or -1 with errno set. */
int nginx_publish(const struct nginx *n, const char *file);

/* Stops n (SIGTERM to its pid), waits for it and removes its directory.
 * Nothing when it is not running. */
void nginx_stop(struct nginx *n);

#endif
