/*
 * p2p-fetch of a tree to stdout: a POSIX tar stream (pax, IEEE Std
 * 1003.1-2001 "pax" format, ustar headers with pax extended headers where
 * ustar cannot say it: a path too long, a file of 8 GiB or more), one
 * member per entry in the tree's order. fetchtree.c writes each file's
 * verified bytes in between, through libproto's output, in order and in
 * bounded memory; here are the headers, the padding and the end.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "p2p-fetch.h"

#define BLOCK 512u

static int
put(const void *buf, size_t len)
{
	if (tool_write_all(STDOUT_FILENO, buf, len) == 0)
		return 0;
	if (errno != EPIPE)
		tool_log(LOG_ERROR, "write: %s", strerror(errno));
	return -1;
}

/* An octal field of n bytes: n - 1 digits and a NUL. 0 when v fits. */
static int
octal(char *field, size_t n, uint64_t v)
{
	char tmp[32];

	snprintf(tmp, sizeof(tmp), "%0*llo", (int)(n - 1),
	    (unsigned long long)v);
	if (strlen(tmp) > n - 1)
		return -1;
	memcpy(field, tmp, n - 1);
	field[n - 1] = '\0';
	return 0;
}

static void
checksum(unsigned char *h)
{
	unsigned sum = 0;

	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

/* One ustar header; name as much of the path as fits (the pax header
 * before it carries the whole). */
static int
header(const char *name, size_t len, char type, uint32_t mode, uint64_t size,
    time_t mtime)
{
	unsigned char h[BLOCK];

	memset(h, 0, sizeof(h));
	memcpy(h, name, len > 100 ? 100 : len);
	octal((char *)h + 100, 8, mode);
	octal((char *)h + 108, 8, 0);
	octal((char *)h + 116, 8, 0);
	if (octal((char *)h + 124, 12, size) != 0)
		octal((char *)h + 124, 12, 0); /* the pax header has it */
	octal((char *)h + 136, 12, (uint64_t)mtime);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	checksum(h);
	return put(h, sizeof(h));
}

/* A pax record "LEN KEY=VALUE\n", LEN counting itself, appended to buf. */
static size_t
record(char *buf, size_t off, const char *key, const char *val, size_t vlen)
{
	size_t body = strlen(key) + vlen + 3, n = body + 1;

	for (;;) {
		size_t digits = (size_t)snprintf(NULL, 0, "%zu", n);
		if (body + digits == n)
			break;
		n = body + digits;
	}
	off += (size_t)sprintf(buf + off, "%zu %s=", n, key);
	memcpy(buf + off, val, vlen);
	off += vlen;
	buf[off++] = '\n';
	return off;
}

int
fetch_tar_header(struct fetch *f, const proto_tree_entry *e)
{
	char name[PROTO_TREE_PATH_MAX + 2], pax[PROTO_TREE_PATH_MAX + 128];
	size_t len = e->path_len, plen = 0;
	time_t now = f->tar_time;

	memcpy(name, e->path, len);
	if (e->dir)
		name[len++] = '/';
	name[len] = '\0';
	if (len > 100)
		plen = record(pax, plen, "path", name, len);
	if (!e->dir && e->size > 077777777777ull) {
		char size[24];
		snprintf(size, sizeof(size), "%llu",
		    (unsigned long long)e->size);
		plen = record(pax, plen, "size", size, strlen(size));
	}
	if (plen > 0) {
		char zero[BLOCK];
		memset(zero, 0, sizeof(zero));
		if (header("PaxHeader", 9, 'x', 0644, plen, now) != 0 ||
		    put(pax, plen) != 0 ||
		    (plen % BLOCK && put(zero, BLOCK - plen % BLOCK) != 0))
			return -1;
	}
	return header(name, len, e->dir ? '5' : '0', e->dir ? 0755 : e->mode,
	    e->dir ? 0 : e->size, now);
}

int
fetch_tar_end_file(struct fetch *f, const proto_tree_entry *e)
{
	char zero[BLOCK];

	(void)f;
	if (e->dir || e->size % BLOCK == 0)
		return 0;
	memset(zero, 0, sizeof(zero));
	return put(zero, BLOCK - e->size % BLOCK);
}

int
fetch_tar_finish(struct fetch *f)
{
	char zero[2 * BLOCK];

	(void)f;
	memset(zero, 0, sizeof(zero));
	return put(zero, sizeof(zero));
}
