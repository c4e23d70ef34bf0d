/*
 * Relays (PROTOCOL.md section 13). A node with a public address that opts
 * in relays: nodes no one can reach register with it and keep a control
 * connection; a fetcher asks it for a circuit to one of them by identity,
 * the node connects to the relay for that circuit, and from then on the
 * relay copies bytes both ways without reading them. The two ends then run
 * the ordinary handshake, TLS and all, over the circuit: the relay sees
 * only ciphertext, and since the fetcher pins the identity it asked for,
 * the relay can drop a circuit, never read or forge one.
 *
 * relaymsg.c packs and parses the relay messages (the preamble, plain
 * frames before any TLS); relay.c is the relay; relayclient.c the control
 * connection of a node reached through a relay.
 */
#ifndef PROTO_RELAY_H
#define PROTO_RELAY_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "addr.h"
#include "identity.h"

struct event_base;
struct proto_server;

#define PROTO_MSG_RELAY_REGISTER 22u
#define PROTO_MSG_RELAY_CONNECT 23u
#define PROTO_MSG_RELAY_INCOMING 24u
#define PROTO_MSG_RELAY_ACCEPT 25u
#define PROTO_MSG_RELAY_PUNCH 26u
/* ERROR code of a relay: the node will not punch (old, or declined). */
#define PROTO_CODE_NO_PUNCH 10u

#define PROTO_RELAY_NONCE_LEN 32u
#define PROTO_RELAY_TOKEN_LEN 16u
/* The longest relay message this implementation sends, frame header
 * included (an ERROR's text is cut to fit). */
#define PROTO_RELAY_MSG_MAX 160u
/* The longest frame body taken from a relay or its clients (PROTOCOL.md
 * section 13): another implementation's ERROR may say more. */
#define PROTO_RELAY_FRAME_MAX 4096u
/* What a register proof signs, before the relay's nonce. */
#define PROTO_RELAY_DOMAIN "mini-p2p relay register v1"

typedef enum proto_relay_kind {
	PROTO_RELAY_ASK_NONCE = 1, /* [22, rid] */
	PROTO_RELAY_NONCE,         /* [22, rid, nonce] */
	PROTO_RELAY_PROVE,         /* [22, rid, key, sig] */
	PROTO_RELAY_REGISTERED,    /* [22, rid] from the relay */
	PROTO_RELAY_CONNECT,       /* [23, rid, identity] */
	PROTO_RELAY_INCOMING,      /* [24, 0, token] */
	PROTO_RELAY_ACCEPT,        /* [25, rid, token] */
	PROTO_RELAY_ERROR,         /* [1, rid, code, message] */
	PROTO_RELAY_PUNCH_ASK,     /* [26, rid, identity, port] fetcher */
	PROTO_RELAY_PUNCH_TELL,    /* [26, 0, token, ip, port] to the node */
	PROTO_RELAY_PUNCH_READY,   /* [26, rid, token, port] from the node */
	PROTO_RELAY_PUNCH_GO       /* [26, rid, ip, port] to the fetcher */
} proto_relay_kind;

typedef struct proto_relay_msg {
	proto_relay_kind kind;
	uint32_t rid;
	uint8_t nonce[PROTO_RELAY_NONCE_LEN];
	uint8_t key[PROTO_KEY_LEN];
	uint8_t sig[PROTO_SIG_LEN];
	uint8_t id[PROTO_IDENTITY_LEN];
	uint8_t token[PROTO_RELAY_TOKEN_LEN];
	uint32_t code;       /* PROTO_RELAY_ERROR */
	char message[64];    /* PROTO_RELAY_ERROR, NUL-terminated, printable */
	uint32_t caps;       /* PROTO_RELAY_PROVE: the node's (0: not said) */
	uint8_t ip[16];      /* PUNCH_TELL, PUNCH_GO: 4 or 16 bytes, */
	uint8_t iplen;       /* ... network order */
	uint16_t port;       /* the PUNCH forms; 0 in READY: declined */
} proto_relay_msg;

/*
 * Packs m as one frame (4-byte length and body) into out (cap bytes, the
 * caller's; PROTO_RELAY_MSG_MAX always fits), *len set to its size. 0, or
 * PROTO_ERR_INVALID (an unknown kind), PROTO_ERR_TOO_BIG (cap too small).
 */
int proto_relay_msg_pack(const proto_relay_msg *m, uint8_t *out, size_t cap,
    size_t *len);
/*
 * Parses the body of one frame (len bytes, the header stripped) into *m.
 * from_relay: 1 when the relay sent it (a [22, rid] is then REGISTERED,
 * else ASK_NONCE). 0, or PROTO_ERR_MALFORMED: not a relay message, a
 * wrong length, a missing element. Elements past those defined are
 * ignored. body is borrowed for the call.
 */
int proto_relay_msg_parse(const uint8_t *body, size_t len, int from_relay,
    proto_relay_msg *m);

/* The relay. Every bound is enforced; 0 means the default shown. */
typedef struct proto_relay_config {
	unsigned max_circuits;   /* circuits up or waiting (16) */
	unsigned max_nodes;      /* registered nodes (64) */
	unsigned max_per_node;   /* circuits to one node (4) */
	unsigned max_per_host;   /* circuits from one IP address, and nodes
	                          * registered from one (4) */
	uint64_t rate;           /* bytes/s through all circuits (4 MiB) */
	uint64_t circuit_rate;   /* bytes/s of one circuit (1 MiB) */
	unsigned idle_secs;      /* a circuit silent both ways ends (120) */
	unsigned wait_secs;      /* a circuit's node has this to come (10) */
	int dump_fd;             /* tests only: >0, every byte relayed is
	                          * written here too */
	int before_punch;        /* tests only: 1, RELAY_PUNCH is taken as
	                          * a relay from before it takes it */
} proto_relay_config;

typedef struct proto_relay_stats {
	uint64_t circuits;       /* circuits spliced */
	uint64_t refused;        /* circuits refused: bounds, unknown node */
	uint64_t punches;        /* punches coordinated (GO sent) */
	uint64_t bytes;          /* bytes copied, both ways */
	unsigned nodes;          /* registered now */
	unsigned active;         /* circuits up or waiting now */
} proto_relay_stats;

typedef struct proto_relay proto_relay;

/* A relay on base, cfg copied. NULL when out of memory. */
proto_relay *proto_relay_new(struct event_base *base,
    const proto_relay_config *cfg);
/* Listens on sa (salen bytes). 0, or PROTO_ERR_SYSTEM with errno set. */
int proto_relay_listen(proto_relay *r, const struct sockaddr *sa,
    socklen_t salen);
/* The port it listens on, 0 before proto_relay_listen. */
uint16_t proto_relay_port(const proto_relay *r);
void proto_relay_stats_get(const proto_relay *r, proto_relay_stats *st);
/* Closes every connection and frees r. NULL does nothing. */
void proto_relay_free(proto_relay *r);

/*
 * A node reached through the relay at *relay: it registers as id (borrowed;
 * must outlive the client) and keeps the control connection, connecting
 * again after a loss (2 s, doubling to 60 s); each circuit asked of it
 * becomes a connection srv (borrowed) accepts. NULL when out of memory.
 */
typedef struct proto_relay_client proto_relay_client;
proto_relay_client *proto_relay_client_new(struct event_base *base,
    struct proto_server *srv, const proto_identity *id,
    const proto_addr *relay);
/* 1 while registered with the relay. */
int proto_relay_client_registered(const proto_relay_client *rc);
void proto_relay_client_free(proto_relay_client *rc);

#endif
