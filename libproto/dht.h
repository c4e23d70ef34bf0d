/*
 * The DHT as a node's source (docs/PROTOCOL.md section 11): a node that
 * opts in joins an existing DHT (OpenDHT) and puts, under a key derived
 * from each content id it holds and under one derived from its identity,
 * a value that carries its signed peer record (record.h) bound to that
 * key; a node that looks an id (or an identity) up listens on the key and
 * reports the addresses of each value that verifies, pinned to the
 * identity that signed it. Everything the DHT hands over is a stranger's
 * word: bounded, verified, counted when turned away.
 *
 * The engine that speaks the DHT's own protocol is a plug-in behind
 * proto_dht_engine_ops, loaded at run time from a shared module
 * (mini-p2p-dht.so, linked with libopendht-c) only by the programs that
 * ask for the DHT: libproto itself does not link OpenDHT, so a program
 * that never starts the DHT never loads it or its C++ runtime.
 */
#ifndef PROTO_DHT_H
#define PROTO_DHT_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "identity.h"
#include "record.h"

struct proto_node;

#define PROTO_DHT_KEY_LEN 20u      /* an OpenDHT InfoHash */
#define PROTO_DHT_VALUE_MAX (PROTO_RECORD_MAX + 96u) /* bytes of a value */
#define PROTO_DHT_BOOT_MAX 16u     /* bootstrap nodes */
#define PROTO_DHT_ANNOUNCE_MAX 4096u /* content ids a node announces */
#define PROTO_DHT_LOOKUPS_MAX 64u  /* keys listened on at once */
#define PROTO_DHT_SIGNERS_MAX 32u  /* distinct nodes taken per key */
#define PROTO_DHT_ADDRS_TAKEN 4u   /* addresses reported per record */
#define PROTO_DHT_QUEUE_MAX 256u   /* values waiting for the event loop */
#define PROTO_DHT_REPUT 300u       /* seconds between puts of one value
                                    * (OpenDHT keeps one for 600) */

/* The domains the derivations and the value's signature use: these
 * bytes, then one zero byte. */
#define PROTO_DHT_DOMAIN_CONTENT "mini-p2p dht content v1"
#define PROTO_DHT_DOMAIN_NODE "mini-p2p dht node v1"
#define PROTO_DHT_DOMAIN_VALUE "mini-p2p dht value v1"
#define PROTO_DHT_DOMAIN_NETWORK "mini-p2p dht network v1"
#define PROTO_DHT_DOMAIN_SEAL "mini-p2p dht seal v1"

/* The public OpenDHT network's bootstrap node: the default of
 * network.dht_bootstrap. Tests and demos always name their own. */
#define PROTO_DHT_PUBLIC_BOOTSTRAP "bootstrap.jami.net:4222"

/*
 * The DHT key of a content id / of a node's identity: the first 20 bytes
 * of SHA-256(domain || 0x00 || secret || id), secret (32 bytes) present
 * only for a private swarm (NULL: the public form). 0 or PROTO_ERR_CRYPTO.
 */
int proto_dht_key_content(const uint8_t id[PROTO_HASH_LEN],
    const uint8_t *secret, uint8_t key[PROTO_DHT_KEY_LEN]);
int proto_dht_key_node(const uint8_t identity[PROTO_IDENTITY_LEN],
    const uint8_t *secret, uint8_t key[PROTO_DHT_KEY_LEN]);

/* The DHT network id: 0 (OpenDHT's public network) without a secret; for a
 * private swarm the first 4 bytes of SHA-256(domain || 0x00 || secret),
 * big-endian, 1 when those are 0. */
uint32_t proto_dht_network(const uint8_t *secret);

/*
 * The value put under key: [key, record, sig] (a msgpack array of three
 * bins), sig the Ed25519 signature by id's key over domain || 0x00 || key
 * || record; record is id's own (len bytes, at most PROTO_RECORD_MAX).
 * Into out (PROTO_DHT_VALUE_MAX bytes), its length into *outlen. 0,
 * PROTO_ERR_TOO_BIG, or PROTO_ERR_CRYPTO. All borrowed for the call.
 */
int proto_dht_value_pack(const uint8_t key[PROTO_DHT_KEY_LEN],
    const uint8_t *record, size_t len, const proto_identity *id,
    uint8_t out[PROTO_DHT_VALUE_MAX], size_t *outlen);

/*
 * A private swarm's values are sealed: nonce || ChaCha20-Poly1305 of the
 * value || tag, keyed by SHA-256(PROTO_DHT_DOMAIN_SEAL || 0x00 || secret),
 * the DHT key as the associated data. Outsiders read nothing of it, and
 * cannot put one that opens, nor move one to another key.
 */
#define PROTO_DHT_SEAL_NONCE 12u
#define PROTO_DHT_SEAL_TAG 16u
#define PROTO_DHT_SEALED_MAX \
    (PROTO_DHT_VALUE_MAX + PROTO_DHT_SEAL_NONCE + PROTO_DHT_SEAL_TAG)

/*
 * Seals value (len bytes, at most PROTO_DHT_VALUE_MAX) for key with the
 * swarm's 32-byte secret, under nonce (PROTO_DHT_SEAL_NONCE bytes; NULL:
 * random, as a node always does; a test gives one), into out, its length
 * (len + 28) into *outlen. 0, PROTO_ERR_TOO_BIG or PROTO_ERR_CRYPTO. All
 * borrowed for the call.
 */
int proto_dht_seal(const uint8_t secret[32],
    const uint8_t key[PROTO_DHT_KEY_LEN], const uint8_t *nonce,
    const uint8_t *value, size_t len, uint8_t out[PROTO_DHT_SEALED_MAX],
    size_t *outlen);

/*
 * Opens what the DHT handed over under key (anything) with the secret:
 * 0 with the value in out and its length in *outlen, to be checked by
 * proto_dht_value_verify; PROTO_ERR_TOO_BIG (len past
 * PROTO_DHT_SEALED_MAX), PROTO_ERR_MALFORMED (too short to be sealed),
 * PROTO_ERR_MISMATCH (not sealed with this secret for this key, or
 * altered) or PROTO_ERR_CRYPTO. All borrowed for the call.
 */
int proto_dht_unseal(const uint8_t secret[32],
    const uint8_t key[PROTO_DHT_KEY_LEN], const uint8_t *buf, size_t len,
    uint8_t out[PROTO_DHT_VALUE_MAX], size_t *outlen);

/*
 * Checks a value from the DHT (anything) found under key at time now: 0
 * with *out the record it carries, verified as proto_record_verify does
 * and its signer the one who signed the value; otherwise *out is
 * unspecified and nothing is allocated:
 *   PROTO_ERR_TOO_BIG   len past PROTO_DHT_VALUE_MAX, or what the record
 *                       says is;
 *   PROTO_ERR_MALFORMED not [key, record, sig] in the shortest encoding,
 *                       or a record that does not decode;
 *   PROTO_ERR_INVALID   it names another key (a value moved);
 *   PROTO_ERR_STALE     its record expired (or lasts too long);
 *   PROTO_ERR_MISMATCH  a signature does not verify.
 * buf is borrowed for the call.
 */
int proto_dht_value_verify(const uint8_t *buf, size_t len,
    const uint8_t key[PROTO_DHT_KEY_LEN], uint64_t now, proto_record *out);

/*
 * The engine: the DHT's own protocol, on threads of its own. Loaded from
 * a shared module (proto_dht_engine_load) or given by a test.
 * on_value may be called on any thread, at any time between start's
 * return and free's: it copies what it needs (data is valid during the
 * call only).
 */
typedef void (*proto_dht_value_fn)(const uint8_t key[PROTO_DHT_KEY_LEN],
    const uint8_t *data, size_t len, void *ctx);

typedef struct proto_dht_engine_ops {
	unsigned abi;           /* PROTO_DHT_ENGINE_ABI */
	/* Runs a node on UDP port (0: any) of network, calling on_value
	 * with every value a listen yields. NULL on failure, *err a
	 * negative errno. */
	void *(*start)(uint16_t port, uint32_t network,
	    proto_dht_value_fn on_value, void *ctx, int *err);
	/* Joins through host ("1.2.3.4", a name) and service (a port). */
	void (*bootstrap)(void *e, const char *host, const char *service);
	/* Puts data (copied) under key, to expire as the DHT decides. */
	void (*put)(void *e, const uint8_t key[PROTO_DHT_KEY_LEN],
	    const uint8_t *data, size_t len);
	/* Values under key, those there and those to come, through on_value;
	 * 0 or a negative errno. */
	int (*listen)(void *e, const uint8_t key[PROTO_DHT_KEY_LEN]);
	/* The UDP port it is bound to (IPv4). */
	uint16_t (*port)(void *e);
	/* Stops the node and its threads: no on_value after it returns. */
	void (*free)(void *e);
} proto_dht_engine_ops;

#define PROTO_DHT_ENGINE_ABI 1u
/* The symbol a module exports: a const proto_dht_engine_ops. */
#define PROTO_DHT_ENGINE_SYMBOL "proto_dht_engine_v1"

/*
 * Loads the engine module at path (NULL: MINI_P2P_DHT_MODULE when set,
 * else mini-p2p/dht.so in the library directory next to the program's
 * own: ../lib from its bin/, then PROTO_MODULE_DIR). 0 with *ops the
 * module's (loaded for the rest of the process); PROTO_ERR_SYSTEM (ENOENT:
 * no module, ENOEXEC: not one of this ABI) with why, a static or
 * per-thread text, saying what.
 */
int proto_dht_engine_load(const char *path,
    const proto_dht_engine_ops **ops, const char **why);

typedef struct proto_dht_config {
	const proto_dht_engine_ops *engine; /* borrowed; static in practice */
	const char *const *boot; /* bootstrap nodes, "HOST:PORT" ("[V6]:PORT"),
	                         * nboot of them; copied */
	size_t nboot;
	uint16_t port;          /* UDP; 0: any */
	uint32_t network;       /* 0: proto_dht_network(secret) */
	const uint8_t *secret;  /* a private swarm's 32 bytes; copied; NULL:
	                         * none */
	unsigned reput;         /* seconds between puts; 0: PROTO_DHT_REPUT */
	int announce;           /* 1: put what the node holds and where it
	                         * is (a node that listens); 0: look up only */
} proto_dht_config;

/* What the source turned away, and did. */
typedef struct proto_dht_stats {
	uint64_t values;        /* values the engine delivered */
	uint64_t taken;         /* that verified and were reported */
	uint64_t oversized;     /* dropped before being copied */
	uint64_t malformed, wrong_key, stale, bad_sig, not_wanted;
	uint64_t unsealed;      /* a private swarm's: not sealed with its
	                         * secret for the key */
	uint64_t repeated;      /* a signer's value seen before, no newer */
	uint64_t over_signers;  /* past PROTO_DHT_SIGNERS_MAX for a key */
	uint64_t queue_full;    /* dropped waiting for the loop */
	uint64_t puts;          /* values put */
} proto_dht_stats;

typedef struct proto_dht proto_dht;

/*
 * The DHT as a source of node ("dht"): starts the engine on cfg's port
 * and network, joins through cfg's bootstrap nodes and, with announce,
 * puts a value for every content id in the node's store (those added
 * later within a few seconds, proto_node_announce at once) and one under
 * its identity, each put again every reput seconds with the record as it
 * is then. The source's lookup (proto_node_lookup) listens on an id's
 * key; each value that verifies reports PROTO_NODE_FOUND for up to
 * PROTO_DHT_ADDRS_TAKEN of its record's addresses (loopback ones only when
 * it lists no other), pinned to its signer, with the record; once per
 * signer and seq. *out (may be NULL) is the source, the node's: valid
 * until proto_node_free.
 *
 * Refused (PROTO_ERR_INVALID, *why saying why) when MINI_P2P_NO_PUBLIC_DHT
 * is set to anything but 0 or empty and a bootstrap node is not an IP
 * address or is PROTO_DHT_PUBLIC_BOOTSTRAP: the guard that keeps tests
 * and demos from ever reaching the public network; also for a bootstrap
 * node that is not HOST:PORT. PROTO_ERR_SYSTEM (errno set) when the engine
 * cannot start; PROTO_ERR_NOMEM; PROTO_ERR_TOO_BIG (too many sources or
 * bootstrap nodes).
 */
int proto_node_start_dht(struct proto_node *node, const proto_dht_config *cfg,
    proto_dht **out, const char **why);

/* Looks the node of identity up: listens on its key and reports, as the
 * lookup of an id does, the addresses its own value names, only when
 * signed by that identity. 0, PROTO_ERR_TOO_BIG past
 * PROTO_DHT_LOOKUPS_MAX, or PROTO_ERR_NOMEM. */
int proto_dht_find_node(proto_dht *d, const uint8_t identity[PROTO_IDENTITY_LEN]);

/* The source's counts so far, into out. */
void proto_dht_stats_get(const proto_dht *d, proto_dht_stats *out);

/* The UDP port the engine is bound to. */
uint16_t proto_dht_port(const proto_dht *d);

#endif
