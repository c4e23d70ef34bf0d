/*
 * Trees: a directory as one thing with one id (docs/PROTOCOL.md section
 * 10). A tree lists every regular file's relative path, size, permission
 * bits and content id, and each empty directory; its id is SHA-256 over a
 * domain prefix and one canonical encoding, so one tree has one id however
 * it was walked. Built from a walk, or decoded from a peer's bytes with
 * every bound and every path checked before anything is kept.
 */
#ifndef PROTO_TREE_H
#define PROTO_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

/* The limits a tree from anyone must keep (docs/PROTOCOL.md section 10). */
#define PROTO_TREE_ENTRIES_MAX 262144u  /* files and empty directories */
#define PROTO_TREE_PATH_MAX 4095u       /* bytes of one path */
#define PROTO_TREE_NAME_MAX 255u        /* bytes of one component */
#define PROTO_TREE_DEPTH_MAX 64u        /* components of one path */
#define PROTO_TREE_BYTES_MAX (15u << 20) /* the encoding: fits a frame */
#define PROTO_TREE_FILE_MAX (1ull << 46) /* a file: one that can be shared */
#define PROTO_TREE_TOTAL_MAX (1ull << 60) /* all files together */
/* Hashed before the encoding; its first 8 bytes, read as a size, exceed
 * every file's, so no tree id is a file's content id. */
#define PROTO_TREE_PREFIX "mini-p2p-tree-v1"
#define PROTO_TREE_PREFIX_LEN 16u

typedef struct proto_tree_entry {
	char *path;        /* relative, '/' between components, NUL-terminated
	                    * (and holding no other NUL); the tree's */
	size_t path_len;
	int dir;           /* 1: an empty directory; the fields below unused */
	uint64_t size;
	uint32_t mode;     /* permission bits only: at most 0777 */
	uint8_t id[PROTO_HASH_LEN]; /* the file's content id */
} proto_tree_entry;

/*
 * A tree being built (entries in any order), or finished (proto_tree_finish:
 * sorted by path bytes, checked, encoded, id set). Everything it points to
 * is its own.
 */
typedef struct proto_tree {
	uint8_t id[PROTO_HASH_LEN];   /* once finished */
	char *name;                   /* the directory's name, for people;
	                               * not in the id; NULL: none */
	char *path;                   /* local only: where it lies; NULL */
	proto_tree_entry *entries;
	size_t count, cap;
	size_t nfiles;                /* once finished */
	uint64_t total_size;          /* once finished: the files' bytes */
	uint8_t *buf;                 /* once finished: the prefix, then */
	const uint8_t *enc;           /* the canonical encoding, enc_len bytes */
	size_t enc_len;
	int finished;
} proto_tree;

/* A new empty tree, or NULL when out of memory; proto_tree_free frees it. */
proto_tree *proto_tree_new(void);

/* Frees t and all it owns; NULL does nothing. */
void proto_tree_free(proto_tree *t);

/*
 * 1 when the len bytes at path are one acceptable relative path: 1 to
 * PROTO_TREE_PATH_MAX bytes, no NUL, components of 1 to PROTO_TREE_NAME_MAX
 * bytes between single '/' (so none empty, no leading or trailing '/'),
 * none "." or "..", at most PROTO_TREE_DEPTH_MAX of them. Else 0.
 */
int proto_tree_path_valid(const char *path, size_t len);

/*
 * Adds a file (path copied) to an unfinished tree. 0; PROTO_ERR_INVALID
 * for a path not proto_tree_path_valid, a mode above 0777, a size above
 * PROTO_TREE_FILE_MAX or a finished tree; PROTO_ERR_TOO_BIG past
 * PROTO_TREE_ENTRIES_MAX entries; PROTO_ERR_NOMEM. t is unchanged on
 * failure.
 */
int proto_tree_add_file(proto_tree *t, const char *path, size_t len,
    uint64_t size, uint32_t mode, const uint8_t id[PROTO_HASH_LEN]);

/* Adds a directory met on the walk (path copied); proto_tree_finish keeps
 * it only when nothing lies beneath it. Returns as proto_tree_add_file. */
int proto_tree_add_dir(proto_tree *t, const char *path, size_t len);

/* Sets the informational name (copied; NULL clears it); a name that is
 * not proto_name_valid is PROTO_ERR_INVALID. 0 or PROTO_ERR_NOMEM. */
int proto_tree_set_name(proto_tree *t, const char *name);

/*
 * Sorts the entries by path bytes, drops directories that have something
 * beneath them, and checks the rest: no path twice, no path beneath a file
 * (a file where a directory must be), the total within
 * PROTO_TREE_TOTAL_MAX and the encoding within PROTO_TREE_BYTES_MAX; then
 * encodes the tree and sets its id. 0; PROTO_ERR_INVALID (a duplicate or
 * a clash; t then fit only for proto_tree_free); PROTO_ERR_TOO_BIG;
 * PROTO_ERR_NOMEM; PROTO_ERR_CRYPTO. Finishing twice does nothing.
 */
int proto_tree_finish(proto_tree *t);

/*
 * Decodes len bytes of canonical encoding (not the prefix) into a finished
 * tree in *out, the caller's to free. Nothing is allocated before a count
 * or length is checked against its limit and against the bytes left.
 * Returns 0; PROTO_ERR_MALFORMED when the bytes are not exactly one
 * canonical encoding (other forms, unsorted, a directory that is not
 * empty, bytes left over); PROTO_ERR_INVALID for a bad path, mode, size,
 * duplicate or clash; PROTO_ERR_TOO_BIG past a limit; PROTO_ERR_NOMEM.
 * *out is NULL on failure.
 */
int proto_tree_decode(const uint8_t *enc, size_t len, proto_tree **out);

/*
 * Packs the finished t as its manifest map (docs/PROTOCOL.md section 10:
 * "v", "id", "name" when set, "tree", and "path" when with_path and set)
 * into a malloc'd buffer the caller frees. 0; PROTO_ERR_INVALID for a tree
 * not finished; PROTO_ERR_NOMEM (*out and *len untouched).
 */
int proto_tree_pack(const proto_tree *t, int with_path, uint8_t **out,
    size_t *len);

/*
 * Unpacks the tree manifest map at the start of buf (len bytes at hand):
 * the bytes it took (> 0) with *out set (the caller frees it); 0 when more
 * bytes are needed; a negative PROTO_ERR_* when they are not a valid tree
 * manifest, PROTO_ERR_MISMATCH when "tree" does not hash to "id".
 */
long proto_tree_unpack(const uint8_t *buf, size_t len, proto_tree **out);

/* The entry whose path is the len bytes at path, in a finished tree, or
 * NULL. Borrowed from t. */
const proto_tree_entry *proto_tree_find(const proto_tree *t, const char *path,
    size_t len);

#endif
