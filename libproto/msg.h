/*
 * Protocol messages (docs/PROTOCOL.md section 4): one struct for every type,
 * packed into frames and unpacked from checked frame bodies.
 */
#ifndef PROTO_MSG_H
#define PROTO_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "manifest.h"

/* The protocol versions spoken: the HELLO's version is the highest, its
 * "vmin" the lowest. */
#define PROTO_VERSION 1u
#define PROTO_VERSION_MIN 1u
#define PROTO_NODE_NAME_MAX 64u
#define PROTO_ERROR_TEXT_MAX 255u
#define PROTO_AUTH_LEN 32u

enum proto_msg_type {
	PROTO_MSG_HELLO = 0,
	PROTO_MSG_ERROR = 1,
	PROTO_MSG_LIST = 2,
	PROTO_MSG_LIST_REPLY = 3,
	PROTO_MSG_GET_MANIFEST = 4,
	PROTO_MSG_MANIFEST = 5,
	PROTO_MSG_GET_CHUNK = 6,
	PROTO_MSG_CHUNK = 7,
	PROTO_MSG_PEERS = 8,
	PROTO_MSG_PEERS_REPLY = 9,
	PROTO_MSG_HAS = 10,
	PROTO_MSG_HAS_REPLY = 11,
	PROTO_MSG_INTERESTED = 12,
	PROTO_MSG_HAVE_MAP = 13,
	PROTO_MSG_HAVE = 14,
	PROTO_MSG_CANCEL = 15,
	PROTO_MSG_GET_HASHES = 16,
	PROTO_MSG_HASHES = 17,
	PROTO_MSG_CHOKE = 18,
	PROTO_MSG_UNCHOKE = 19,
	PROTO_MSG_GET_FILES = 20, /* sent only to peers with PROTO_CAP_FILES */
	PROTO_MSG_FILES = 21,
	PROTO_MSG_TYPE_COUNT
};

enum proto_error_code {
	PROTO_CODE_NOT_FOUND = 1,
	PROTO_CODE_BAD_REQUEST = 2,
	PROTO_CODE_VERSION = 3,
	PROTO_CODE_BUSY = 4,
	PROTO_CODE_INTERNAL = 5,
	PROTO_CODE_CANCELLED = 6,
	PROTO_CODE_AUTH = 7,
	PROTO_CODE_CHOKED = 8,  /* sent only to peers with PROTO_CAP_CHOKE */
	PROTO_CODE_CHANGED = 9, /* the id was shared here, and is no more:
	                         * its file changed or went */
	PROTO_CODE_COUNT  /* codes from here on are unknown to this
	                   * implementation: 10-63 future core, 64-127
	                   * extensions (PROTOCOL.md) */
};

/* The ranges of message types (PROTOCOL.md, "Extending the protocol"):
 * 0-21 defined here, 22-25 the relay's (relay.h, sent only on a relay's
 * port), 26-63 future core messages, 64-127 extension messages numbered
 * per connection through the HELLO's "ext", 128 and up never sent. */
#define PROTO_MSG_CORE_MAX 63u
#define PROTO_MSG_EXT_MIN 64u
#define PROTO_MSG_EXT_MAX 127u

/* HELLO caps: the sender answers INTERESTED with a HAVE_MAP, pushes HAVE,
 * and takes CANCEL; without it a peer is taken to hold whole files. */
#define PROTO_CAP_SWARM 1u
/* HELLO caps: the sender answers requests on connections it made and may
 * send requests on connections it accepted; only when both HELLOs carry
 * it may either side ask (PROTOCOL.md section 4, "Requests both ways"). */
#define PROTO_CAP_DUPLEX 2u
/* HELLO caps: PEERS_REPLY entries may carry records (record.h) for the
 * sender; a responder leaves them out for a peer without it. */
#define PROTO_CAP_RECORDS 4u
/* HELLO caps: the sender takes a MANIFEST without its chunk layer (its
 * root in its place) and, where it answers requests, answers GET_HASHES.
 * A peer without it is never sent a manifest without its layer. */
#define PROTO_CAP_HASHES 8u
/* HELLO caps: the sender takes a tree manifest in MANIFEST and LIST_REPLY
 * entries of five elements (docs/PROTOCOL.md section 10); a peer without
 * it is told of no tree. */
#define PROTO_CAP_TREES 16u
/* HELLO caps: upload slots. Where both HELLOs carry it, the side that
 * answers may choke the other (CHOKE, UNCHOKE, pushed), and answers the
 * GET_CHUNKs of a choked peer ERROR CHOKED; the side that asks sends no
 * GET_CHUNK while choked. A peer starts choked. */
#define PROTO_CAP_CHOKE 32u
/* HELLO caps: the sender answers GET_FILES (many small files in one
 * answer, FILES); a peer without it is never sent one. */
#define PROTO_CAP_FILES 64u

/* GET_FILES: at most this many ids, each of a file of at most
 * PROTO_FILES_SIZE_MAX bytes (one block: its content id is checked from
 * its bytes alone). */
#define PROTO_FILES_MAX 256u
#define PROTO_FILES_SIZE_MAX 16384u

/* An entry of FILES: a file's bytes, or none (not held there). */
typedef struct proto_file_data {
	int held;             /* 0: nil, not held by the sender */
	const uint8_t *data;  /* len bytes when held */
	size_t len;           /* at most PROTO_FILES_SIZE_MAX */
} proto_file_data;
/* Bit 7: the sender relays (PROTOCOL.md section 13), at the port its
 * HELLO's "relay" option names. */
#define PROTO_CAP_RELAY 128u
/* Bit 8: the sender punches (PROTOCOL.md section 13): in a relay's HELLO,
 * it coordinates RELAY_PUNCH; in a node's registration, it takes one. */
#define PROTO_CAP_PUNCH 256u

#define PROTO_PEERS_MAX 64u
#define PROTO_HOST_MAX 64u

typedef struct proto_peer_entry {
	const char *host;     /* an IP address as text, not NUL-terminated */
	size_t host_len;
	uint16_t port;
	const uint8_t *record; /* the node's signed record (record.h), not
	                       * yet verified when unpacked; NULL: none */
	size_t record_len;    /* at most PROTO_RECORD_MAX */
} proto_peer_entry;

/* The HELLO's options map (its 8th element): its limits. */
#define PROTO_HELLO_ADDRS_MAX 8u
#define PROTO_HELLO_EXT_MAX 16u
#define PROTO_EXT_NAME_MAX 32u

/* Which of the options map's scalar keys are present (proto_hello_opts
 * has); the lists are present when their count is not 0. */
#define PROTO_OPT_VMIN 0x01u
#define PROTO_OPT_MAXREQ 0x02u
#define PROTO_OPT_MAXFRAME 0x04u
#define PROTO_OPT_SEEN 0x08u
#define PROTO_OPT_MAPPED 0x10u
#define PROTO_OPT_RELAY 0x20u

/* One entry of "ext": the peer sends extension `name` as message `type`. */
typedef struct proto_hello_ext {
	const char *name;     /* 1..PROTO_EXT_NAME_MAX bytes, not
	                       * NUL-terminated */
	size_t name_len;
	uint8_t type;         /* PROTO_MSG_EXT_MIN..PROTO_MSG_EXT_MAX */
} proto_hello_ext;

/*
 * The options of a HELLO (PROTOCOL.md section 4). A decoder sets only what
 * arrived well formed: a known key of the wrong type or out of range is
 * left out as if absent, and so is an unknown key. New keys are new
 * fields here (and a PROTO_OPT_* bit for a scalar).
 */
typedef struct proto_hello_opts {
	unsigned has;         /* PROTO_OPT_* of the scalars present */
	uint32_t vmin;        /* "vmin": lowest version spoken, <= version */
	uint32_t maxreq;      /* "maxreq": requests accepted outstanding */
	uint32_t maxframe;    /* "maxframe": largest frame accepted, at least
	                       * PROTO_HELLO_MAXFRAME_MIN */
	proto_peer_entry seen; /* "seen": the receiver's address as the
	                        * sender sees it (an IP address, checked) */
	const proto_peer_entry *addrs; /* "addrs": where the sender can be
	                                * reached (IP addresses, checked) */
	size_t naddrs;        /* <= PROTO_HELLO_ADDRS_MAX */
	const proto_hello_ext *ext; /* "ext": the sender's numbering */
	size_t next;          /* <= PROTO_HELLO_EXT_MAX */
	const uint8_t *rec;   /* "rec": the sender's own signed record
	                       * (record.h), not verified here; NULL: none */
	size_t rec_len;       /* 1..PROTO_RECORD_MAX */
	proto_peer_entry mapped; /* "mapped": the address the sender's router
	                        * forwards to it (a port mapping it holds) */
	uint16_t relay;       /* "relay": the TCP port where the sender relays
	                       * (PROTOCOL.md section 13), 1..65535 */
} proto_hello_opts;

/* The least a maxframe may say: every node takes a HELLO's frame. */
#define PROTO_HELLO_MAXFRAME_MIN 4096u

/* What a LIST_REPLY entry of five elements names (PROTO_CAP_TREES). */
#define PROTO_LIST_FILE 0u
#define PROTO_LIST_TREE 1u

typedef struct proto_list_entry {
	const uint8_t *id;    /* PROTO_HASH_LEN bytes */
	uint64_t size;        /* a tree's: all its files' */
	const char *name;     /* not NUL-terminated */
	size_t name_len;
	/* The five-element form: packed when extended is set (only to a
	 * peer with PROTO_CAP_TREES); unpacked as set when it came whole and
	 * right, else extended 0, kind PROTO_LIST_FILE, path NULL. */
	int extended;
	unsigned kind;        /* PROTO_LIST_FILE or PROTO_LIST_TREE */
	const char *path;     /* a file's path in its tree (proto_tree_path_valid,
	                       * not NUL-terminated), or NULL */
	size_t path_len;
	uint64_t nfiles;      /* a tree's files */
} proto_list_entry;

/*
 * A decoded message. Pointers borrow from the frame body it was unpacked
 * from (valid while that body is) or from the caller when packing. For
 * MANIFEST, manifest is owned by the message after unpacking: proto_msg_clear
 * frees it unless the caller took it (set it to NULL).
 */
typedef struct proto_msg {
	unsigned type;
	uint32_t rid;
	/* HELLO */
	uint32_t version;
	uint64_t caps;
	uint16_t listen_port;
	uint64_t nfiles;      /* files the sender shares */
	const uint8_t *auth;  /* HELLO: proof of the swarm secret, 32 bytes,
	                       * or NULL */
	proto_hello_opts opts; /* HELLO: its options; packed as the 8th
	                        * element when any is present */
	/* HELLO: node name; ERROR: message text */
	const char *text;
	size_t text_len;
	/* ERROR */
	uint32_t code;
	/* LIST_REPLY */
	proto_list_entry *entries;
	size_t nentries;
	/* PEERS_REPLY */
	proto_peer_entry *peers;
	size_t npeers;
	/* HAS_REPLY */
	int has;
	/* GET_MANIFEST, GET_CHUNK, HAS, INTERESTED, HAVE; PEERS: the content
	 * id asked about, or NULL */
	const uint8_t *id;
	uint64_t index;       /* GET_CHUNK, HAVE */
	uint32_t chunk_size;  /* GET_CHUNK: the requester's chunk size;
	                       * HAVE_MAP: the sender's */
	/* HAVE_MAP: the bitfield (have.h) */
	const uint8_t *bits;
	size_t bits_len;
	/* MANIFEST: a file's, or a tree's (one of the two is set) */
	proto_manifest *manifest;
	struct proto_tree *tree; /* owned after unpacking, as manifest */
	/* CHUNK */
	const uint8_t *data;
	size_t data_len;
	/* GET_HASHES: the run asked for (id, chunk_size, index above), and
	 * the uncles wanted, lowest first (UINT32_MAX: all of them) */
	uint32_t count;
	uint32_t proof_layers;
	/* HASHES: nhashes and nproof hashes of PROTO_HASH_LEN bytes */
	const uint8_t *hashes;
	size_t nhashes;
	const uint8_t *proof;
	size_t nproof;
	/* GET_FILES: nids content ids of PROTO_HASH_LEN bytes, back to back;
	 * unpacked with ids_bad set (ids NULL, nids 0) when the array held
	 * more than PROTO_FILES_MAX, or an id that is not a 32-byte bin: an
	 * answer of BAD_REQUEST, not a protocol error */
	const uint8_t *ids;
	size_t nids;
	int ids_bad;
	/* FILES: one entry per id asked, in order (fewer when the rest did
	 * not fit in the asker's maxframe) */
	const proto_file_data *files;
	size_t nfiles_in;

	void *zone_; /* private: msgpack storage of an unpacked message */
} proto_msg;

/* 1 when opts holds nothing to send (no key present). */
int proto_hello_opts_empty(const proto_hello_opts *opts);

/* Zeroes m and sets its type; m is the caller's (usually on the stack). */
void proto_msg_init(proto_msg *m, unsigned type);

/* Frees what unpacking allocated (the manifest unless taken, the msgpack
 * storage the borrowed pointers point into) and zeroes m; m can be reused
 * after proto_msg_init. Safe on a zeroed or already cleared m. */
void proto_msg_clear(proto_msg *m);

/*
 * Packs m as a whole frame (length prefix included) into a malloc'd buffer
 * that the caller frees; m and what it points to are only read. Returns 0;
 * PROTO_ERR_TOO_BIG when it would exceed PROTO_FRAME_MAX (or for more than
 * PROTO_PEERS_MAX peers, a bitfield past PROTO_MAX_CHUNKS bits, more than
 * PROTO_FILES_MAX ids or files, a file past PROTO_FILES_SIZE_MAX);
 * PROTO_ERR_INVALID for a type that cannot be packed or a MANIFEST without
 * one; PROTO_ERR_NOMEM. *frame and *len are set only on success.
 */
int proto_msg_pack(const proto_msg *m, uint8_t **frame, size_t *len);

/* Writes into hdr (the caller's) the bytes that open a CHUNK frame carrying
 * data_len bytes of data; the data itself follows them on the wire, so a
 * large chunk is never copied into a packed frame. Returns the header's
 * length, at most PROTO_CHUNK_HEADER_MAX. */
#define PROTO_CHUNK_HEADER_MAX 16u
size_t proto_msg_chunk_header(uint32_t rid, uint32_t data_len,
    uint8_t hdr[PROTO_CHUNK_HEADER_MAX]);

/*
 * Unpacks a frame body (without the length prefix) that passed
 * proto_frame_check_body. On success m holds the message and must be
 * cleared; on failure (PROTO_ERR_MALFORMED for a wrong shape, others from
 * the manifest) m needs no clearing. Unknown types unpack with only type and
 * rid set, so a responder can answer BAD_REQUEST.
 */
int proto_msg_unpack(const uint8_t *body, size_t len, proto_msg *m);

/*
 * Copies len bytes of text a peer sent into out (outlen bytes, outlen >= 1,
 * always terminated), each control byte made '?': C0, DEL, and C1 (U+0080
 * to U+009F, two bytes in UTF-8). What peers name ends up in logs and on
 * terminals, where such bytes would move the cursor or forge lines.
 */
void proto_msg_printable(char *out, size_t outlen, const char *text,
    size_t len);

/* The message type's name, for logs: a static string, "unknown" for a type
 * past the known ones; never NULL. */
const char *proto_msg_type_name(unsigned type);

#endif
