/*
 * A node's identity and TLS (docs/PROTOCOL.md section 8). Each node has an
 * Ed25519 key pair kept in a PEM file of mode 0600, made on first use; its
 * identity is the SHA-256 of its public key (DER SubjectPublicKeyInfo).
 * Connections are TLS 1.3 with a certificate made from that key at start,
 * self-signed: what authenticates a peer is its identity, pinned by the
 * user or learned, not a certificate authority.
 */
#ifndef PROTO_IDENTITY_H
#define PROTO_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_IDENTITY_LEN 32
#define PROTO_IDENTITY_HEX_LEN 64
#define PROTO_KEY_LEN 32        /* an Ed25519 public key, raw */
#define PROTO_SIG_LEN 64        /* an Ed25519 signature */

typedef struct proto_identity proto_identity;
struct ssl_ctx_st;
struct ssl_st;

/*
 * Loads the key at path, or when there is none and create is set, makes
 * one and writes it there (mode 0600, its directory made 0700 if missing).
 * A key file that is not ours alone is refused (PROTO_ERR_INVALID, errno
 * saying why: EACCES, group or others may read or write it, so someone
 * else may have it or change it; EPERM, another user owns it; EINVAL, not
 * a regular file), judged on the opened file. 0 with *out the caller's
 * (proto_identity_free), PROTO_ERR_SYSTEM (errno set) or another
 * PROTO_ERR_*; *out is set only on success. path is borrowed for the call.
 */
int proto_identity_load(const char *path, int create, proto_identity **out);

/* The default key file: $P2P_IDENTITY, else $XDG_CONFIG_HOME/p2p/
 * identity.pem, else ~/.config/p2p/identity.pem. Written into out (outlen
 * bytes, the caller's). 0; PROTO_ERR_INVALID when none of the three is set;
 * PROTO_ERR_TOO_BIG when it does not fit (out then cut short). */
int proto_identity_default_path(char *out, size_t outlen);

/* Frees id and its key. NULL does nothing. A TLS context made from it
 * holds its own references and may outlive it. */
void proto_identity_free(proto_identity *id);

/* The 32 bytes of the identity; owned by id, valid until it is freed. */
const uint8_t *proto_identity_id(const proto_identity *id);

/* The raw Ed25519 public key of id into out (the caller's). 0, or
 * PROTO_ERR_CRYPTO when OpenSSL cannot give it. */
int proto_identity_public_key(const proto_identity *id,
    uint8_t out[PROTO_KEY_LEN]);

/* Signs the len bytes at msg with id's key (Ed25519, no prehash) into sig,
 * the caller's. 0, or PROTO_ERR_CRYPTO. msg is borrowed for the call. */
int proto_identity_sign(const proto_identity *id, const uint8_t *msg,
    size_t len, uint8_t sig[PROTO_SIG_LEN]);

/* The identity of the raw Ed25519 public key key, into out: what
 * proto_identity_id gives for the identity holding it (SHA-256 of its DER
 * SubjectPublicKeyInfo). 0, or PROTO_ERR_CRYPTO. */
int proto_identity_of_key(const uint8_t key[PROTO_KEY_LEN],
    uint8_t out[PROTO_IDENTITY_LEN]);

/* 1 when sig is key's Ed25519 signature of the len bytes at msg, else 0
 * (a key OpenSSL refuses included). Everything is borrowed for the call. */
int proto_identity_verify(const uint8_t key[PROTO_KEY_LEN],
    const uint8_t *msg, size_t len, const uint8_t sig[PROTO_SIG_LEN]);

/*
 * A TLS 1.3 context presenting id's certificate. Both ends present one and
 * accept any (the identity is checked after the handshake), so the server
 * side asks the client for its certificate. The caller frees it with
 * SSL_CTX_free; id is borrowed for the call. NULL on failure (out of
 * memory, or OpenSSL refused the key).
 */
struct ssl_ctx_st *proto_tls_ctx_new(const proto_identity *id, int server);

/* The identity of the peer on ssl, once the handshake is done: 0, or
 * PROTO_ERR_INVALID when it showed no usable certificate. */
int proto_tls_peer_id(struct ssl_st *ssl, uint8_t out[PROTO_IDENTITY_LEN]);

/* The identity ssl presents (its own certificate's): 0, or
 * PROTO_ERR_INVALID when it has none. */
int proto_tls_own_id(struct ssl_st *ssl, uint8_t out[PROTO_IDENTITY_LEN]);

#endif
