/*
 * p2p-fetch's output path (p2p-fetch.h): where the file goes, checked
 * before a byte moves, and never over another file unasked. With -O, a
 * link, or -o DIR (an existing directory), the file is written under the
 * name its manifest gives, made safe first: a peer chooses that name, and
 * a peer is not trusted to choose where we write. An existing file is
 * written over only when it is this file (a chunk of it verifies: a
 * damaged copy, repaired), or with --force.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p2p-fetch.h"

/*
 * name made one harmless path component in out (PROTO_NAME_MAX + 1
 * bytes): no control characters (C0, DEL, and the two-byte UTF-8 form of
 * C1, which terminals obey too), no '/', and no leading '.' or '-' (so no
 * "..", no hidden file, nothing a shell reads as an option); the content
 * id in hex when nothing is left.
 */
static void
safe_name(const char *name, const char *hex, char *out)
{
	size_t n = 0, len = name != NULL ? strlen(name) : 0;

	for (size_t i = 0; i < len && n < PROTO_NAME_MAX; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f || c == '/')
			continue;
		if (c == 0xc2 && i + 1 < len &&
		    (unsigned char)name[i + 1] >= 0x80 &&
		    (unsigned char)name[i + 1] <= 0x9f) {
			i++;
			continue;
		}
		if (n == 0 && (c == '.' || c == '-'))
			continue;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	if (n == 0)
		snprintf(out, PROTO_NAME_MAX + 1, "%s", hex);
}

/* Sets out_path to name (made safe) in out_dir, and part_path with it. */
static void
name_output(struct fetch *f, const char *name)
{
	char safe[PROTO_NAME_MAX + 1];
	size_t dl = strlen(f->out_dir);

	safe_name(name, f->hex, safe);
	while (dl > 1 && f->out_dir[dl - 1] == '/')
		dl--;
	free(f->named_path);
	free(f->part_path);
	f->part_path = NULL;
	if ((strcmp(f->out_dir, ".") == 0 ?
	    asprintf(&f->named_path, "%s", safe) :
	    asprintf(&f->named_path, "%.*s%s%s", (int)dl, f->out_dir,
	    f->out_dir[dl - 1] == '/' ? "" : "/", safe)) < 0 ||
	    asprintf(&f->part_path, "%s.part", f->named_path) < 0)
		tool_die(1, "out of memory");
	f->out_path = f->named_path;
	tool_log(LOG_INFO, "%s: writing to %s", f->hex, f->out_path);
}

void
fetch_check_output(struct fetch *f)
{
	const char *o = f->out_path;
	struct stat st;
	char *dir, *slash;
	int rc;

	if (o == NULL) {
		if (f->remote_name)
			f->out_dir = ".";
		return;
	}
	if (o[0] == '\0')
		tool_die(2, "output file name is empty");
	if ((rc = stat(o, &st)) == 0 && S_ISDIR(st.st_mode)) {
		/* A file is written in it under its name; a tree's root is
		 * DIR itself, as before. */
		f->out_dir = o;
		return;
	}
	if (o[strlen(o) - 1] == '/')
		tool_die(1, "%s: %s", o, rc == 0 ? "not a directory" :
		    errno == ENOENT ? "no such directory" : strerror(errno));
	if (f->remote_name && !f->link)
		tool_die(2, "-O writes under the sender's name: -o then names "
		    "a directory, and %s is none", o);
	if ((dir = strdup(o)) == NULL)
		tool_die(1, "out of memory");
	if ((slash = strrchr(dir, '/')) != NULL) {
		slash[slash == dir] = '\0';
		if (stat(dir, &st) != 0)
			tool_die(1, "%s: %s (the directory of -o %s)", dir,
			    errno == ENOENT ? "no such directory" :
			    strerror(errno), o);
		if (!S_ISDIR(st.st_mode))
			tool_die(1, "%s: not a directory (in -o %s)", dir, o);
	}
	free(dir);
	if (asprintf(&f->part_path, "%s.part", o) < 0)
		tool_die(1, "out of memory");
}

/* 1 when a chunk of the file at path verifies against mf (or both are
 * empty): the same file, perhaps damaged. Read only; stops at the first
 * chunk that does. */
static int
same_file(const char *path, const proto_manifest *mf)
{
	uint8_t *buf;
	int fd, same = mf->size == 0;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) < 0)
		return 0;
	if ((buf = malloc(mf->chunk_size)) == NULL)
		tool_die(1, "out of memory");
	for (uint64_t i = 0; !same && i < mf->nchunks; i++) {
		size_t len = proto_chunk_len(mf->size, mf->chunk_size, i);
		if (!proto_manifest_hash_known(mf, i))
			continue;
		if (pread(fd, buf, len, (off_t)(i * mf->chunk_size)) !=
		    (ssize_t)len)
			break;
		same = proto_manifest_check_chunk(mf, i, buf, len) == 0;
	}
	free(buf);
	close(fd);
	return same;
}

int
fetch_output_for(struct fetch *f, const proto_manifest *mf)
{
	struct stat st;
	char why[96];

	if (f->out_dir != NULL && f->part_path == NULL)
		name_output(f, mf->name);
	if (f->out_path == NULL || f->force || lstat(f->out_path, &st) != 0)
		return 0;
	if (!S_ISREG(st.st_mode))
		snprintf(why, sizeof(why), "not a regular file");
	else if ((uint64_t)st.st_size != mf->size)
		snprintf(why, sizeof(why), "%llu bytes, not %llu",
		    (unsigned long long)st.st_size,
		    (unsigned long long)mf->size);
	else if (!same_file(f->out_path, mf))
		snprintf(why, sizeof(why), "no chunk of it matches");
	else
		return 0;
	tool_log(LOG_ERROR, "%s: exists and is another file (%s); not "
	    "overwritten: remove it, or give --force to replace it",
	    f->out_path, why);
	return -1;
}

int
fetch_open_output(struct fetch *f)
{
	/* A damaged FILE (of the right size) is repaired in place. */
	proto_output_config cfg = { f->mf, f->out_path, f->part_path,
	    STDOUT_FILENO, 0, 1 };
	int rc;

	if ((rc = proto_output_new(&cfg, &f->out)) == 0)
		return 0;
	if (rc == PROTO_ERR_SYSTEM && f->part_path != NULL)
		tool_log(LOG_ERROR, "%s: %s", f->part_path, errno == ELOOP ?
		    "is a symbolic link; not written through" :
		    errno == EPERM ? "not yours alone (another user's, "
		    "writable by group or others, or hard-linked); not used: "
		    "remove it, or fetch to another FILE" :
		    strerror(errno));
	else if (rc == PROTO_ERR_INVALID)
		tool_log(LOG_ERROR, "%s: not a regular file; not written",
		    f->part_path);
	else
		tool_log(LOG_ERROR, "%s", proto_strerror(rc));
	return -1;
}

void
fetch_output_held(struct fetch *f)
{
	const char *file = proto_output_file(f->out);

	if (file == NULL || f->out_path == NULL ||
	    strcmp(file, f->out_path) != 0 ||
	    f->chunks_resumed != f->mf->nchunks)
		return;
	tool_log(LOG_WARN, "%s: already complete and verified; nothing to "
	    "fetch", f->out_path);
}

void
fetch_name_tree(struct fetch *f, const proto_tree *t)
{
	if (f->out_path == NULL && f->out_dir != NULL)
		name_output(f, t->name);
}
