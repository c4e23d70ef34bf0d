/*
 * hash_file: prints the content id of each file named, one a line, as
 * `p2p-chunk --id` does, through libproto's public API alone. It shows the
 * least a program needs to use the library: one header, and the flags
 * pkg-config gives for the installed library (`make install`):
 *
 *   cc -o hash_file hash_file.c $(pkg-config --cflags --libs libproto)
 *
 * `make` builds it in-tree too, as build/examples/hash_file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <proto.h>

/* Prints the id of the file at path ('-': standard input); 0 or 1. */
static int
hash_one(const char *path)
{
	char hex[PROTO_ID_HEX_LEN + 1];
	proto_manifest *mf;
	int fd, rc;

	fd = strcmp(path, "-") == 0 ? STDIN_FILENO :
	    open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "hash_file: %s: %s\n", path, strerror(errno));
		return 1;
	}
	/* The id depends on the bytes alone: any valid name will do, and a
	 * chunk size of 0 lets the library choose. */
	rc = proto_manifest_build_fd(fd, "file", NULL, 0, &mf);
	if (rc == PROTO_ERR_SYSTEM)
		fprintf(stderr, "hash_file: %s: %s\n", path, strerror(errno));
	else if (rc != 0)
		fprintf(stderr, "hash_file: %s: %s\n", path, proto_strerror(rc));
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc != 0)
		return 1;
	proto_hex_encode(mf->id, PROTO_HASH_LEN, hex);
	printf("%s\n", hex);
	proto_manifest_free(mf);
	return 0;
}

int
main(int argc, char **argv)
{
	int failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: hash_file FILE...\n");
		return 2;
	}
	for (int i = 1; i < argc; i++)
		failed |= hash_one(argv[i]);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "hash_file: write: %s\n", strerror(errno));
		return 1;
	}
	return failed;
}
