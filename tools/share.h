/*
 * share.c: the files p2p-serve shares, and this node's secrets it never
 * does.
 */
#ifndef TOOL_SHARE_H
#define TOOL_SHARE_H

#include "tool.h"

#define TOOL_SHARE_PRIVATE_MAX 8

struct tool_share {
	proto_store *store;         /* borrowed: where shared files go */
	int hidden;                 /* --hidden: share dot files too */
	const char *walk_dir;       /* the -d directory being walked */
	int walk_root;              /* and its descriptor */
	proto_tree *tree;           /* and its tree, while walked */
	uint8_t tree_id[PROTO_HASH_LEN]; /* the last tree shared, when */
	int has_tree;               /* ... set: tool_share_dir's */
	struct tool_private_file {  /* this node's secrets: never served */
		uint64_t dev, ino;
		int dir;
		const char *what;
	} priv[TOOL_SHARE_PRIVATE_MAX];
	int npriv;
	/* Every file a walk shared, to tell on a rescan what changed: */
	struct tool_shared_file {
		int root;           /* its directory's descriptor */
		char *rel;          /* its path beneath */
		uint64_t dev, ino, size;
		int64_t mtime_s, mtime_ns;
		uint8_t id[PROTO_HASH_LEN];
		int seen;           /* met by the walk under way */
	} *files;
	size_t nfiles, capfiles;
	size_t find_next;           /* where find_file looks first */
	int rescanning;             /* a walk of tool_share_rescan */
	int again;                  /* ... and another walk needed */
	struct tool_shared_dir {    /* the directories walked, to rescan */
		const char *dir;
		int root;
		uint8_t tree_id[PROTO_HASH_LEN];
		int has_tree;
	} *dirs;
	size_t ndirs;
};

/* Notes this node's key, its swarm's secret and its configuration (file
 * and directories) as never to be served. */
void tool_share_find_private(struct tool_share *sh,
    const struct tool_config *config);

/* Serves mf (taken) when its file is there, the size it was chunked at and
 * none of this node's secrets; says why not otherwise. */
void tool_share_manifest(struct tool_share *sh, proto_manifest *mf);

/* Serves every regular file under dir (root: its descriptor, kept open by
 * the caller while the node serves), and the tree of those files and of
 * the empty directories by its tree id (then in tree_id, has_tree set;
 * else has_tree 0), unless dir holds this node's secrets; warns when dir
 * is the home directory or above it. */
void tool_share_dir(struct tool_share *sh, const char *dir, int root);

/* Walks every directory shared again: a new file is shared, a changed one
 * (size, modification time, inode) chunked again and its old id withdrawn
 * (proto_store_remove: asked for, it is answered CHANGED), a removed one
 * withdrawn, and the directory's tree shared anew when it changed. Says
 * each change at LOG_INFO. */
void tool_share_rescan(struct tool_share *sh);

/* Frees what the walks kept (not the store's files). */
void tool_share_end(struct tool_share *sh);

/* What tool_share_path shared: path borrowed, id the file's content id or
 * the folder's tree id. */
struct tool_shared {
	const char *path;
	uint8_t id[PROTO_HASH_LEN];
	int tree;
};

/* Shares path, a file by its content id under its own name or a folder
 * whole (tool_share_dir), and says what in *out. A folder's descriptor
 * goes in *root (else -1), for the caller to keep open while the node
 * serves and close after. 0, or -1 when path cannot be shared (said). */
int tool_share_path(struct tool_share *sh, const char *path,
    struct tool_shared *out, int *root);

/* One line at LOG_INFO for an upload that is over (the node's on_upload):
 * "uploaded NAME (ID8) to PEER (PEERNAME, IDENT8): BYTES bytes, D of N
 * chunks", and ", the whole file" when the peer got every chunk from us. */
void tool_share_log_upload(const proto_upload *u);

#endif
