/*
 * A tree's files on disk, for p2p-fetch -o DIR (fetchtree.c): directories
 * made or opened beneath DIR one component at a time and never through a
 * link, modes given through no link, a file already there told by its
 * bytes, and a file fetched once copied to its other paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p2p-fetch.h"

/*
 * Opens the directory rel[0..len) beneath root, making each missing
 * component (mode 0755 before the umask) and refusing any that is a link
 * or not a directory. A descriptor, or -1 with errno set (ELOOP: a link on
 * the way; ENOTDIR: a file there).
 */
int
tree_open_dirs(int root, const char *rel, size_t len)
{
	int fd = dup(root);
	size_t start = 0;

	while (fd >= 0 && start < len) {
		char name[PROTO_TREE_NAME_MAX + 1];
		size_t end = start;
		int next;
		while (end < len && rel[end] != '/')
			end++;
		memcpy(name, rel + start, end - start);
		name[end - start] = '\0';
		next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (next < 0 && errno == ENOENT && (mkdirat(fd, name, 0755) == 0 ||
		    errno == EEXIST))
			next = openat(fd, name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && (errno == ENOTDIR || errno == ELOOP)) {
			struct stat st;
			if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				errno = ELOOP;
		}
		close(fd);
		fd = next;
		start = end + 1;
	}
	return fd;
}

/* The directory a path lies in, opened as open_dirs does; *leaf is set to
 * its last component. */
int
tree_open_parent(int root, const proto_tree_entry *e, const char **leaf)
{
	const char *slash = strrchr(e->path, '/');

	*leaf = slash ? slash + 1 : e->path;
	return tree_open_dirs(root, e->path, slash ? (size_t)(slash - e->path) : 0);
}

const char *
tree_path_error(void)
{
	return errno == ELOOP ? "a symbolic link on the way; not written "
	    "through" : errno == ENOTDIR ? "a file where a directory must be" :
	    strerror(errno);
}

/* Gives the file its entry's mode, through no link. */
int
tree_apply_mode(int dir, const char *leaf, uint32_t mode)
{
	int fd = openat(dir, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fchmod(fd, mode & 0777);
	close(fd);
	return rc;
}

/* 1 when leaf in dir is a regular file (not a link) holding e's bytes. */
int
tree_already_there(int dir, const char *leaf, const proto_tree_entry *e)
{
	proto_manifest *mf;
	struct stat st;
	int fd, same = 0;

	if ((fd = openat(dir, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) < 0)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size == e->size &&
	    proto_manifest_build_fd(fd, "f", NULL, 0, &mf) == 0) {
		same = memcmp(mf->id, e->id, PROTO_HASH_LEN) == 0;
		proto_manifest_free(mf);
	}
	close(fd);
	return same;
}

/* Copies src (a file of this tree, whole and checked) to dst through
 * dst.part, in dir. 0, or -1 with errno set. */
int
tree_copy_file(int sdir, const char *src, int ddir, const char *dst)
{
	char part[PROTO_TREE_NAME_MAX + 8], buf[65536];
	int in, out, rc = 0;
	ssize_t n;

	snprintf(part, sizeof(part), "%s.part", dst);
	if ((in = openat(sdir, src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if ((out = openat(ddir, part, O_WRONLY | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, 0644)) < 0) {
		close(in);
		return -1;
	}
	while (rc == 0 && (n = read(in, buf, sizeof(buf))) != 0)
		if (n < 0 || tool_write_all(out, buf, (size_t)n) != 0)
			rc = -1;
	if (rc == 0 && fsync(out) != 0)
		rc = -1;
	close(in);
	if (close(out) != 0)
		rc = -1;
	return rc == 0 ? renameat(ddir, part, ddir, dst) : -1;
}
