/*
 * What the DHT holds, byte for byte (docs/PROTOCOL.md section 11): the
 * keys derived from content ids and identities, the network id of a
 * private swarm, the value that binds a peer record to its key and its
 * seal in a private swarm; and the
 * loader of the engine module, so that OpenDHT is mapped only into the
 * processes that start the DHT.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "dht.h"
#include "error.h"
#include "module_private.h"


/* SHA-256(domain || 0x00 || a || b), a or b may be absent. */
static int
derive(const char *domain, const uint8_t *a, size_t alen, const uint8_t *b,
    size_t blen, uint8_t out[PROTO_HASH_LEN])
{
	uint8_t buf[64 + 2 * PROTO_HASH_LEN];
	size_t n = strlen(domain) + 1;

	memcpy(buf, domain, n);
	if (a != NULL) {
		memcpy(buf + n, a, alen);
		n += alen;
	}
	if (b != NULL) {
		memcpy(buf + n, b, blen);
		n += blen;
	}
	return proto_sha256(buf, n, out) == 0 ? 0 : PROTO_ERR_CRYPTO;
}

static int
key_of(const char *domain, const uint8_t id[32], const uint8_t *secret,
    uint8_t key[PROTO_DHT_KEY_LEN])
{
	uint8_t h[PROTO_HASH_LEN];
	int rc;

	if ((rc = derive(domain, secret, 32, id, 32, h)) != 0)
		return rc;
	memcpy(key, h, PROTO_DHT_KEY_LEN);
	return 0;
}

int
proto_dht_key_content(const uint8_t id[PROTO_HASH_LEN],
    const uint8_t *secret, uint8_t key[PROTO_DHT_KEY_LEN])
{
	return key_of(PROTO_DHT_DOMAIN_CONTENT, id, secret, key);
}

int
proto_dht_key_node(const uint8_t identity[PROTO_IDENTITY_LEN],
    const uint8_t *secret, uint8_t key[PROTO_DHT_KEY_LEN])
{
	return key_of(PROTO_DHT_DOMAIN_NODE, identity, secret, key);
}

uint32_t
proto_dht_network(const uint8_t *secret)
{
	uint8_t h[PROTO_HASH_LEN];
	uint32_t v;

	if (secret == NULL ||
	    derive(PROTO_DHT_DOMAIN_NETWORK, secret, 32, NULL, 0, h) != 0)
		return 0;
	v = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | h[3];
	return v ? v : 1;
}

#define VDOMAIN_LEN (sizeof(PROTO_DHT_DOMAIN_VALUE))

/* domain || 0x00 || key || record into out (room for it); its length. */
static size_t
signed_bytes(uint8_t *out, const uint8_t key[PROTO_DHT_KEY_LEN],
    const uint8_t *record, size_t len)
{
	memcpy(out, PROTO_DHT_DOMAIN_VALUE, VDOMAIN_LEN);
	memcpy(out + VDOMAIN_LEN, key, PROTO_DHT_KEY_LEN);
	memcpy(out + VDOMAIN_LEN + PROTO_DHT_KEY_LEN, record, len);
	return VDOMAIN_LEN + PROTO_DHT_KEY_LEN + len;
}

int
proto_dht_value_pack(const uint8_t key[PROTO_DHT_KEY_LEN],
    const uint8_t *record, size_t len, const proto_identity *id,
    uint8_t out[PROTO_DHT_VALUE_MAX], size_t *outlen)
{
	uint8_t msg[VDOMAIN_LEN + PROTO_DHT_KEY_LEN + PROTO_RECORD_MAX];
	uint8_t sig[PROTO_SIG_LEN];
	size_t n = 0;

	if (len > PROTO_RECORD_MAX)
		return PROTO_ERR_TOO_BIG;
	if (proto_identity_sign(id, msg, signed_bytes(msg, key, record, len),
	    sig) != 0)
		return PROTO_ERR_CRYPTO;
	out[n++] = 0x93;
	out[n++] = 0xc4;
	out[n++] = PROTO_DHT_KEY_LEN;
	memcpy(out + n, key, PROTO_DHT_KEY_LEN);
	n += PROTO_DHT_KEY_LEN;
	if (len <= 0xff) {
		out[n++] = 0xc4;
		out[n++] = (uint8_t)len;
	} else {
		out[n++] = 0xc5;
		out[n++] = (uint8_t)(len >> 8);
		out[n++] = (uint8_t)len;
	}
	memcpy(out + n, record, len);
	n += len;
	out[n++] = 0xc4;
	out[n++] = PROTO_SIG_LEN;
	memcpy(out + n, sig, PROTO_SIG_LEN);
	*outlen = n + PROTO_SIG_LEN;
	return 0;
}

int
proto_dht_value_verify(const uint8_t *buf, size_t len,
    const uint8_t key[PROTO_DHT_KEY_LEN], uint64_t now, proto_record *out)
{
	uint8_t msg[VDOMAIN_LEN + PROTO_DHT_KEY_LEN + PROTO_RECORD_MAX];
	const uint8_t *rec, *sig;
	size_t n = 0, rlen;
	int rc;

	if (len > PROTO_DHT_VALUE_MAX)
		return PROTO_ERR_TOO_BIG;
	/* Fixed shape, shortest forms only: one encoding, one meaning. */
	if (len < 3 + PROTO_DHT_KEY_LEN + 2 || buf[0] != 0x93 ||
	    buf[1] != 0xc4 || buf[2] != PROTO_DHT_KEY_LEN)
		return PROTO_ERR_MALFORMED;
	n = 3 + PROTO_DHT_KEY_LEN;
	if (buf[n] == 0xc4) {
		rlen = buf[n + 1];
		n += 2;
	} else if (buf[n] == 0xc5 && len > n + 2) {
		rlen = (size_t)buf[n + 1] << 8 | buf[n + 2];
		if (rlen <= 0xff)
			return PROTO_ERR_MALFORMED;
		n += 3;
	} else
		return PROTO_ERR_MALFORMED;
	if (rlen > PROTO_RECORD_MAX)
		return PROTO_ERR_TOO_BIG;
	if (len != n + rlen + 2 + PROTO_SIG_LEN)
		return PROTO_ERR_MALFORMED;
	rec = buf + n;
	n += rlen;
	if (buf[n] != 0xc4 || buf[n + 1] != PROTO_SIG_LEN)
		return PROTO_ERR_MALFORMED;
	sig = buf + n + 2;
	if (memcmp(buf + 3, key, PROTO_DHT_KEY_LEN) != 0)
		return PROTO_ERR_INVALID;
	if ((rc = proto_record_verify(rec, rlen, now, out)) != 0)
		return rc;
	if (!proto_identity_verify(out->key, msg, signed_bytes(msg, key, rec,
	    rlen), sig))
		return PROTO_ERR_MISMATCH;
	return 0;
}

/* ChaCha20-Poly1305 of in (len) with the swarm's seal key, nonce and the
 * DHT key as associated data, into out; with open, the tag is checked
 * (tag in, else tag out). 0, PROTO_ERR_MISMATCH (open: the tag did not
 * verify) or PROTO_ERR_CRYPTO. */
static int
seal_crypt(int open, const uint8_t secret[32],
    const uint8_t key[PROTO_DHT_KEY_LEN], const uint8_t *nonce,
    const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	uint8_t k[PROTO_HASH_LEN];
	EVP_CIPHER_CTX *ctx;
	int n, rc = PROTO_ERR_CRYPTO;

	if (derive(PROTO_DHT_DOMAIN_SEAL, secret, 32, NULL, 0, k) != 0 ||
	    (ctx = EVP_CIPHER_CTX_new()) == NULL)
		return PROTO_ERR_CRYPTO;
	if (EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL,
	    !open) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN,
	    PROTO_DHT_SEAL_NONCE, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, k, nonce, !open) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &n, key, PROTO_DHT_KEY_LEN) != 1 ||
	    EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
		goto done;
	if (open) {
		if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG,
		    PROTO_DHT_SEAL_TAG, tag) != 1)
			goto done;
		rc = EVP_CipherFinal_ex(ctx, out + n, &n) == 1 ? 0 :
		    PROTO_ERR_MISMATCH;
	} else if (EVP_CipherFinal_ex(ctx, out + n, &n) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, PROTO_DHT_SEAL_TAG,
	    tag) == 1)
		rc = 0;
done:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

int
proto_dht_seal(const uint8_t secret[32],
    const uint8_t key[PROTO_DHT_KEY_LEN], const uint8_t *nonce,
    const uint8_t *value, size_t len, uint8_t out[PROTO_DHT_SEALED_MAX],
    size_t *outlen)
{
	int rc;

	if (len > PROTO_DHT_VALUE_MAX)
		return PROTO_ERR_TOO_BIG;
	if (nonce != NULL)
		memcpy(out, nonce, PROTO_DHT_SEAL_NONCE);
	else if (RAND_bytes(out, PROTO_DHT_SEAL_NONCE) != 1)
		return PROTO_ERR_CRYPTO;
	if ((rc = seal_crypt(0, secret, key, out, value, len,
	    out + PROTO_DHT_SEAL_NONCE, out + PROTO_DHT_SEAL_NONCE + len)) != 0)
		return rc;
	*outlen = PROTO_DHT_SEAL_NONCE + len + PROTO_DHT_SEAL_TAG;
	return 0;
}

int
proto_dht_unseal(const uint8_t secret[32],
    const uint8_t key[PROTO_DHT_KEY_LEN], const uint8_t *buf, size_t len,
    uint8_t out[PROTO_DHT_VALUE_MAX], size_t *outlen)
{
	uint8_t tag[PROTO_DHT_SEAL_TAG];
	size_t n;
	int rc;

	if (len > PROTO_DHT_SEALED_MAX)
		return PROTO_ERR_TOO_BIG;
	if (len < PROTO_DHT_SEAL_NONCE + PROTO_DHT_SEAL_TAG)
		return PROTO_ERR_MALFORMED;
	n = len - PROTO_DHT_SEAL_NONCE - PROTO_DHT_SEAL_TAG;
	/* The tag is copied out: the cipher wants a writable one. */
	memcpy(tag, buf + PROTO_DHT_SEAL_NONCE + n, PROTO_DHT_SEAL_TAG);
	if ((rc = seal_crypt(1, secret, key, buf, buf + PROTO_DHT_SEAL_NONCE,
	    n, out, tag)) != 0) {
		/* Nothing of a forgery is left for the caller to read. */
		OPENSSL_cleanse(out, n);
		return rc;
	}
	*outlen = n;
	return 0;
}

/* ---- the engine module ---- */

int
proto_dht_engine_load(const char *path, const proto_dht_engine_ops **ops,
    const char **why)
{
	const void *o;
	int rc = proto__module_load(path, "MINI_P2P_DHT_MODULE", "dht.so",
	    PROTO_DHT_ENGINE_SYMBOL, PROTO_DHT_ENGINE_ABI, "a DHT engine", &o,
	    why);

	if (rc == 0)
		*ops = o;
	return rc;
}
