/*
 * p2p-fetch's own: the state of one run, shared by p2p-fetch.c (options,
 * messages, the fetch's callbacks) and the parts it is split into, each
 * linked into p2p-fetch alone.
 */
#ifndef TOOL_P2P_FETCH_H
#define TOOL_P2P_FETCH_H

#include <time.h>

#include <event2/event.h>

#include "tool.h"

struct fetch {
	struct event_base *base;
	proto_fetch *fx;
	uint8_t id[PROTO_HASH_LEN];
	char hex[PROTO_ID_HEX_LEN + 1];
	/* the id by a prefix of its hex (lowercase; "" for none) or by
	 * --name, looked up in the peers' lists first (fetchresolve.c) */
	char prefix[PROTO_ID_HEX_LEN + 1];
	const char *by_name;
	struct fetch_resolve *resolve;
	proto_manifest *mf;         /* the fetch's, once adopted */
	unsigned max_peers, timeout;
	unsigned inline_chunks;     /* the node's server's; 0: its default */
	uint64_t max_file_size;     /* 0: no limit */
	/* output: stdout, or with -o FILE through FILE.part; with -O, a link
	 * or -o DIR, a file named as its manifest says in out_dir */
	const char *out_path;
	char *part_path;
	const char *out_dir;        /* NULL: the file is not named so */
	char *named_path;           /* out_path once named */
	int remote_name, link, force;
	proto_output *out;          /* once the manifest is adopted */
	/* peers: -p, and lines on stdin */
	proto_addr *peers;          /* -p, parsed */
	int npeers, read_stdin;
	struct event *stdin_ev;
	char line[512];
	size_t linelen;
	int stdin_open;
	/* sharing what we have */
	int share, seed, seeding;
	const char *bind_addr;
	uint16_t share_port;
	proto_node *node;           /* with -o: the node that shares */
	proto_store *store;         /* the node's */
	proto_server *server;       /* the node's */
	proto_beacon_config disco;
	/* the DHT: --dht, and the identities of -p ID@dht */
	proto_dht *dht;             /* the node's */
	uint8_t find[16][PROTO_IDENTITY_LEN];
	int nfind;
	struct event *dht_ev;       /* the end of waiting for its answers */
	/* --list: the ids printed, so that a file several peers share is
	 * listed once (open addressing; a power of two slots) */
	uint8_t (*listed)[PROTO_HASH_LEN];
	size_t nlisted, listed_cap;
	uint64_t listed_key[3];     /* drawn at start: see listed_slot */
	/* progress and outcome */
	int listing, stats, exit_code, done;
	uint64_t chunks_resumed;
	uint64_t bytes_resumed;     /* of those chunks: kept, not fetched */
	uint64_t bytes_fetched;     /* of the chunks fetched and written */
	uint64_t tree_chunks;       /* chunks the tree's file fetches got */
	proto_conn_config cfg;
	struct tool_progress progress;
	struct event *progress_ev;
	/* a tree (fetchtree.c, fetchtar.c): once the id is a tree's */
	proto_tree *tree;
	struct fetch_tree *ft;
	struct fetch_batch *batch;  /* its small files, many to a request */
	proto_addr *known;          /* peers from stdin, for each file */
	size_t nknown, known_cap;
	time_t tar_time;            /* the members' mtime: when the run began */
};

/* Ends the run with exit status code: stops the fetch and breaks the loop.
 * Only the first call counts. */
void fetch_finish(struct fetch *f, int code);

/* The fetch's on_list callback (arg: the struct fetch): prints on stdout
 * each file not listed before, ID<TAB>SIZE<TAB>NAME or with --json an
 * object; ends the run when stdout cannot be written (quietly, exit 0,
 * when the reader went). The ids seen are freed with f->listed. */
void fetch_on_list(const proto_list_entry *entries, size_t n, void *arg);

/* With -p - or no -p: reads peers from stdin, HOST:PORT or ID@HOST:PORT
 * as the first field of each line, until it ends; sets f->stdin_open
 * while more may come. */
void fetch_start_peers(struct fetch *f);

/* The fetch's on_tree callback (arg: the struct fetch): the id is a tree's;
 * its files are fetched from now on, to -o DIR or as tar to stdout. */
int fetch_on_tree(proto_tree *t, void *arg);

/* A peer from stdin: fetched from, by the fetch and by every file's of a
 * tree (those running and those to come). */
void fetch_add_peer(struct fetch *f, const proto_addr *addr);

/* Stdin ended: no more peers will come, for any of the fetches. */
void fetch_no_more_peers(struct fetch *f);

/* fetchtree.c, for fetchbatch.c: the tree's -o DIR, opened; "WHAT: WHY"
 * said and the run ended; 1 when entry i is the first with its bytes
 * (the others are copies of it); 1 when it has copies; entry i written
 * whole, its copies made and then its mode given (0, or -1 said); the
 * batch over, the fetch of each file left begins. */
int fetch_tree_root(const struct fetch *f);
void fetch_tree_failed(struct fetch *f, const char *what, const char *why);
int fetch_tree_is_first(const struct fetch *f, size_t i);
int fetch_tree_has_copies(const struct fetch *f, size_t i);
int fetch_tree_file_written(struct fetch *f, size_t i);
void fetch_tree_batch_done(struct fetch *f);

/* fetchbatch.c: with -o DIR, before the fetch of each file, the tree's
 * small files (one block) asked for many to a request of the peers given
 * that state the files cap (GET_FILES). 1 when it runs (it calls
 * fetch_tree_batch_done when over), 0 when there is nothing to batch.
 * fetch_batch_got: 1 when entry i was written by it. fetch_batch_free
 * frees what it holds. */
int fetch_batch_start(struct fetch *f);
int fetch_batch_got(const struct fetch *f, size_t i);
void fetch_batch_free(struct fetch *f);

/* Frees what a tree's fetch holds (its files' fetches first). */
void fetch_tree_free(struct fetch *f);

/* treedisk.c: a tree's files under -o DIR, through no link.
 * tree_open_dirs opens the directory rel[0..len) beneath root, making each
 * missing component (0755 before the umask) and refusing one that is a
 * link or not a directory: a descriptor, or -1 with errno set (ELOOP: a
 * link on the way; ENOTDIR: a file there). tree_open_parent opens the
 * directory e lies in so, its last component in *leaf. tree_path_error
 * says what errno means for a path. tree_apply_mode gives leaf in dir a
 * mode; tree_already_there is 1 when leaf in dir is a regular file holding
 * e's bytes; tree_copy_file copies src to dst through dst.part (0, or -1
 * with errno set). */
int tree_open_dirs(int root, const char *rel, size_t len);
int tree_open_parent(int root, const proto_tree_entry *e, const char **leaf);
const char *tree_path_error(void);
int tree_apply_mode(int dir, const char *leaf, uint32_t mode);
int tree_already_there(int dir, const char *leaf, const proto_tree_entry *e);
int tree_copy_file(int sdir, const char *src, int ddir, const char *dst);

/* fetchtar.c: the tar stream of a tree. The header of entry e (a pax
 * header first when needed); the padding after a file's bytes; the end of
 * the archive. 0, or -1 (said, unless the reader went). */
int fetch_tar_header(struct fetch *f, const proto_tree_entry *e);
int fetch_tar_end_file(struct fetch *f, const proto_tree_entry *e);
int fetch_tar_finish(struct fetch *f);

/* -p ID@dht: 1 when arg is one (the identity kept, the DHT turned on
 * for it), 0 when arg is another kind of peer; exits 2 for a bad one. */
int fetch_peer_dht(struct fetch *f, const char *arg);

/* With --dht or -p ID@dht, before the fetch is made: the node (one with no
 * listener when -o did not make one) joins the DHT, looks the id up (with
 * --dht) and each identity. */
void fetch_start_dht(struct fetch *f);

/* With the DHT, after the peers given: more peers may come from it for
 * the timeout's length; then only as stdin says. */
void fetch_wait_dht(struct fetch *f);

/* Frees what fetch_start_dht made but the node. */
void fetch_end_dht(struct fetch *f);

/* fetchname.c: the output path. Checks -o before anything is fetched
 * (the directory of -o FILE must be there; -o DIR, -O and a link name the
 * file later); exits 1 (2 for -O with -o FILE) naming what is wrong. */
void fetch_check_output(struct fetch *f);

/* With the manifest: names the file when it is to be named, then refuses
 * (said; -1) an existing file there that is not this one, unless
 * --force. 0 to go on. */
int fetch_output_for(struct fetch *f, const proto_manifest *mf);

/* Opens f->out for f->mf; 0, or -1 (said). */
int fetch_open_output(struct fetch *f);

/* After the resume: says so when the file was whole already. */
void fetch_output_held(struct fetch *f);

/* A tree's id with -O or a link and no -o: its directory is named after
 * the tree. */
void fetch_name_tree(struct fetch *f, const proto_tree *t);

/* fetchlink.c: 1 when arg is a link (p2p://...), its id, peers and
 * identity taken; 0 when it is not one; exits 2 for a malformed one. */
int fetch_link(struct fetch *f, const char *arg);

/* fetchresolve.c: the operands of a fetch (argc of them; none with
 * --name): a link (fetch_link), an id (into f->id) or a prefix of 8 hex
 * digits or more (into f->prefix). NULL, or why they are wrong, for the
 * usage; exits 2 saying what is wrong with a malformed id. */
const char *fetch_take_target(struct fetch *f, int argc, char **argv);

/* Sets f->hex. With a prefix or --name, before the fetch is made: asks the peers given
 * (-p, then stdin to its end) for their lists and sets f->id to the one id
 * that matches; exits 1 naming the candidates when several do, the way to
 * see the lists when none does, or when no peer answered. The peers read
 * from stdin join f->peers. */
void fetch_resolve(struct fetch *f);

/* fetchnode.c: starts f's node (f->node, f->store, f->server): listens
 * on --share-port, announces on the LAN, maps the port (--nat); exits 1
 * when it cannot listen. */
void fetch_start_node(struct fetch *f);

/* fetchnode.c: index is verified and written: the node may serve it, and
 * tells the peers subscribed to the file (HAVE). */
void fetch_share_chunk(struct fetch *f, uint64_t index);

/* 1 when the fetch writes to a file (or a tree to a directory). */
#define fetch_to_file(f) ((f)->out_path != NULL || (f)->out_dir != NULL)

/* --stats: prints on stderr what the fetch (and the node's server, if
 * any) did, and f->exit_code, KEY=VALUE or with --json an object. */
void fetch_print_stats(struct fetch *f);

/* The length of chunk index of mf: the last may be short; 0 past the end. */
uint64_t fetch_chunk_length(const proto_manifest *mf, uint64_t index);

/* Tells the progress line what an earlier run left (f->chunks_resumed,
 * f->bytes_resumed): said apart on its final line, not in its rates. */
void fetch_note_resumed(struct fetch *f);

/* The bytes to show: those kept (resumed and fetched); when moving, also
 * those read so far of chunks not yet whole. At most the file's size. */
uint64_t fetch_progress_done(const struct fetch *f, int moving);

/* The peers that sent chunks, for the progress line. */
int fetch_sending_peers(const struct fetch *f);

#endif
