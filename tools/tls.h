/*
 * TLS for the tools that connect to peers (p2p-serve, p2p-fetch,
 * p2p-discover): the options --no-tls, --identity FILE and --secret-file
 * FILE, the node's identity, and the contexts every connection uses.
 */
#ifndef TOOL_TLS_H
#define TOOL_TLS_H

#include <stdint.h>

#include "proto.h"

enum { TOOL_OPT_NO_TLS = 0x200, TOOL_OPT_IDENTITY, TOOL_OPT_SECRET };
#define TOOL_LONGOPTS_TLS \
	{ "no-tls", no_argument, NULL, TOOL_OPT_NO_TLS }, \
	{ "identity", required_argument, NULL, TOOL_OPT_IDENTITY }, \
	{ "secret-file", required_argument, NULL, TOOL_OPT_SECRET }

#define TOOL_TLS_USAGE \
	"      --no-tls           plaintext: no encryption, no identities (for\n" \
	"                         benchmarks and trusted networks only)\n" \
	"      --identity FILE    this node's key (default ~/.config/p2p/\n" \
	"                         identity.pem, made on first use)\n" \
	"      --secret-file FILE  a private swarm: only nodes with this\n" \
	"                         secret connect, and see each other's\n" \
	"                         discovery\n"

/* Handles the TLS options; 1 when ch was one of them. */
int tool_tls_option(int ch);

/*
 * Loads (or makes) the identity and the contexts, and reads the secret,
 * unless --no-tls (or MINI_P2P_NO_TLS=1), which is said loudly. Exits 1
 * when the key or the secret cannot be had, 2 for --secret-file with
 * --no-tls.
 */
void tool_tls_start(void);

/* Sets cfg's TLS fields for a connection we accept (server) or make. */
void tool_tls_apply(proto_conn_config *cfg, int server);

/* 1 when connections are plaintext. */
int tool_tls_off(void);

/* The swarm's key (32 bytes) when --secret-file was given, else NULL. */
const uint8_t *tool_tls_secret(void);

/* This node's identity (its key signs the node's record), or NULL
 * without TLS; valid until tool_tls_end. */
const proto_identity *tool_tls_identity(void);

/* This node's identity in hex, or "-" without TLS. */
const char *tool_tls_identity_hex(void);

/*
 * Splits "ID@HOST:PORT" into the pinned identity and the address (a
 * pointer into arg); plain "HOST:PORT" gives has_pin 0. NULL when the
 * identity is not 64 hex digits.
 */
const char *tool_tls_split_pin(const char *arg, uint8_t pin[PROTO_IDENTITY_LEN],
    int *has_pin);

/* The files that hold this node's secrets, TLS on or off: the identity's
 * key (--identity, or where the default one is; NULL when there is no
 * such place) and the --secret-file (or NULL). Static storage. */
const char *tool_tls_identity_path(void);
const char *tool_tls_secret_path(void);

/* Frees what tool_tls_start made. */
void tool_tls_end(void);

#endif
