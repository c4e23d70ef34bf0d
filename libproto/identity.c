/*
 * Identities and TLS contexts with OpenSSL 3. The certificate is made anew
 * at every start from the kept key: only the key matters.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "error.h"
#include "hash.h"
#include "identity.h"

struct proto_identity {
	EVP_PKEY *key;
	X509 *cert;
	uint8_t id[PROTO_IDENTITY_LEN];
};

int
proto_identity_default_path(char *out, size_t outlen)
{
	const char *env = getenv("P2P_IDENTITY"), *xdg, *home;
	int n;

	if (env != NULL && *env)
		n = snprintf(out, outlen, "%s", env);
	else if ((xdg = getenv("XDG_CONFIG_HOME")) != NULL && *xdg)
		n = snprintf(out, outlen, "%s/p2p/identity.pem", xdg);
	else if ((home = getenv("HOME")) != NULL && *home)
		n = snprintf(out, outlen, "%s/.config/p2p/identity.pem", home);
	else
		return PROTO_ERR_INVALID;
	return n > 0 && (size_t)n < outlen ? 0 : PROTO_ERR_TOO_BIG;
}

/* SHA-256 of the DER SubjectPublicKeyInfo: of an Ed25519 key from its raw
 * bytes (proto_identity_of_key), any other through OpenSSL's encoder. */
static int
key_id(EVP_PKEY *key, uint8_t out[PROTO_IDENTITY_LEN])
{
	unsigned char *der = NULL, raw[PROTO_KEY_LEN];
	unsigned int len = 0;
	size_t rawlen = sizeof(raw);
	int n, ok;

	if (EVP_PKEY_is_a(key, "ED25519") &&
	    EVP_PKEY_get_raw_public_key(key, raw, &rawlen) == 1 &&
	    rawlen == PROTO_KEY_LEN)
		return proto_identity_of_key(raw, out);
	if ((n = i2d_PUBKEY(key, &der)) <= 0)
		return PROTO_ERR_INVALID;
	ok = EVP_Digest(der, (size_t)n, out, &len, EVP_sha256(), NULL);
	OPENSSL_free(der);
	return ok && len == PROTO_IDENTITY_LEN ? 0 : PROTO_ERR_INVALID;
}

/* Makes every missing directory of path, mode 0700. */
static int
make_parents(const char *path)
{
	char dir[4096];
	size_t n = strlen(path);

	if (n >= sizeof(dir))
		return -1;
	memcpy(dir, path, n + 1);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

/*
 * Writes a new key to a file of our own, then links it into place: another
 * process starting at the same moment either wins the link, and we read
 * its key, or finds ours complete. Never a half-written key file.
 */
static int
create_key(const char *path)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char tmp[4200];
	FILE *f = NULL;
	int fd, rc = 0;

	if (key == NULL)
		return PROTO_ERR_NOMEM;
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if (make_parents(path) != 0 ||
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) < 0) {
		EVP_PKEY_free(key);
		return PROTO_ERR_SYSTEM;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		rc = PROTO_ERR_SYSTEM;
	} else if (!PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) ||
	    fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = PROTO_ERR_SYSTEM;
	if (f != NULL && fclose(f) != 0)
		rc = PROTO_ERR_SYSTEM;
	if (rc == 0 && link(tmp, path) != 0 && errno != EEXIST)
		rc = PROTO_ERR_SYSTEM;
	unlink(tmp);
	EVP_PKEY_free(key);
	return rc;
}

/* A key file is a PEM private key: a few hundred bytes at most. */
#define KEY_FILE_MAX 16384

/*
 * An Ed25519 key as this library writes it (PEM_write_PrivateKey: PKCS #8,
 * RFC 8410) is 48 bytes of DER, this prefix and the 32-byte private key,
 * in one line of base64. Read here without OpenSSL's decoders, which cost
 * a small fetch a fifth of its CPU time (they are set up at first use);
 * any other key file goes to PEM_read_bio_PrivateKey. NULL when text is
 * not such a key.
 */
static const uint8_t ed25519_pkcs8_prefix[16] = {
	0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
	0x04, 0x22, 0x04, 0x20
};

/* 1 when the n characters at s are all base64 digits. EVP_DecodeBlock
 * takes "=", anywhere in the line, as six zero bits and still counts
 * whole groups: a damaged line would give another key, where OpenSSL's
 * decoder refuses the file. 48 bytes need no padding. */
static int
all_base64(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
			return 0;
	}
	return 1;
}

static EVP_PKEY *
read_ed25519_pem(const char *text, size_t len)
{
	static const char begin[] = "-----BEGIN PRIVATE KEY-----\n",
	    end[] = "\n-----END PRIVATE KEY-----\n";
	const size_t b64 = 64, blen = sizeof(begin) - 1,
	    elen = sizeof(end) - 1;
	unsigned char der[48];
	EVP_PKEY *key = NULL;

	if (len != blen + b64 + elen || memcmp(text, begin, blen) != 0 ||
	    memcmp(text + blen + b64, end, elen) != 0 ||
	    !all_base64(text + blen, b64))
		return NULL;
	if (EVP_DecodeBlock(der, (const unsigned char *)text + blen,
	    (int)b64) == (int)sizeof(der) &&
	    memcmp(der, ed25519_pkcs8_prefix,
	    sizeof(ed25519_pkcs8_prefix)) == 0)
		key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
		    der + sizeof(ed25519_pkcs8_prefix),
		    sizeof(der) - sizeof(ed25519_pkcs8_prefix));
	OPENSSL_cleanse(der, sizeof(der));
	return key;
}

static int
read_key(const char *path, EVP_PKEY **out)
{
	struct stat st;
	char text[KEY_FILE_MAX];
	size_t got = 0;
	ssize_t n = 0;
	BIO *bio;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return PROTO_ERR_SYSTEM;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return PROTO_ERR_SYSTEM;
	}
	/* Judged on the file opened, so none can be swapped in after. */
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		errno = !S_ISREG(st.st_mode) ? EINVAL :
		    st.st_uid != geteuid() ? EPERM : EACCES;
		close(fd);
		return PROTO_ERR_INVALID;
	}
	if (st.st_size > KEY_FILE_MAX) {
		close(fd);
		return PROTO_ERR_MALFORMED;
	}
	while (got < sizeof(text) &&
	    (n = read(fd, text + got, sizeof(text) - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (n < 0)
		return PROTO_ERR_SYSTEM;
	if ((*out = read_ed25519_pem(text, got)) == NULL &&
	    (bio = BIO_new_mem_buf(text, (int)got)) != NULL) {
		*out = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	OPENSSL_cleanse(text, sizeof(text));
	return *out != NULL ? 0 : PROTO_ERR_MALFORMED;
}

/* A self-signed certificate for key, valid from an hour ago for ten
 * years: its dates are not checked by peers, but OpenSSL wants some. */
static X509 *
make_cert(EVP_PKEY *key)
{
	X509 *cert = X509_new();
	X509_NAME *name;

	if (cert == NULL)
		return NULL;
	if (!X509_set_version(cert, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) ||
	    X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 86400) ==
	    NULL || !X509_set_pubkey(cert, key) ||
	    (name = X509_get_subject_name(cert)) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"mini-p2p node", -1, -1, 0) ||
	    !X509_set_issuer_name(cert, name) ||
	    !X509_sign(cert, key, NULL)) {
		X509_free(cert);
		return NULL;
	}
	return cert;
}

int
proto_identity_load(const char *path, int create, proto_identity **out)
{
	proto_identity *id = calloc(1, sizeof(*id));
	int rc;

	if (id == NULL)
		return PROTO_ERR_NOMEM;
	rc = read_key(path, &id->key);
	if (rc == PROTO_ERR_SYSTEM && errno == ENOENT && create &&
	    (rc = create_key(path)) == 0)
		rc = read_key(path, &id->key);
	if (rc == 0 && (id->cert = make_cert(id->key)) == NULL)
		rc = PROTO_ERR_NOMEM;
	if (rc == 0)
		rc = key_id(id->key, id->id);
	if (rc != 0) {
		int err = errno;
		proto_identity_free(id);
		errno = err;
		return rc;
	}
	*out = id;
	return 0;
}

void
proto_identity_free(proto_identity *id)
{
	if (id == NULL)
		return;
	X509_free(id->cert);
	EVP_PKEY_free(id->key);
	free(id);
}

const uint8_t *
proto_identity_id(const proto_identity *id)
{
	return id->id;
}

int
proto_identity_public_key(const proto_identity *id,
    uint8_t out[PROTO_KEY_LEN])
{
	size_t len = PROTO_KEY_LEN;

	return EVP_PKEY_get_raw_public_key(id->key, out, &len) == 1 &&
	    len == PROTO_KEY_LEN ? 0 : PROTO_ERR_CRYPTO;
}

int
proto_identity_sign(const proto_identity *id, const uint8_t *msg,
    size_t len, uint8_t sig[PROTO_SIG_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t siglen = PROTO_SIG_LEN;
	int ok;

	/* Ed25519 hashes inside: no digest is named, one shot. */
	ok = md != NULL &&
	    EVP_DigestSignInit(md, NULL, NULL, NULL, id->key) == 1 &&
	    EVP_DigestSign(md, sig, &siglen, msg, len) == 1 &&
	    siglen == PROTO_SIG_LEN;
	EVP_MD_CTX_free(md);
	return ok ? 0 : PROTO_ERR_CRYPTO;
}

/* The DER SubjectPublicKeyInfo of an Ed25519 key (RFC 8410) is this
 * prefix and the 32 raw bytes: hashed directly, without OpenSSL's encoder,
 * which costs tens of microseconds a key (records are checked by the
 * thousand in a swarm). test_identity checks it against i2d_PUBKEY. */
static const uint8_t ed25519_spki_prefix[12] = {
	0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00
};

int
proto_identity_of_key(const uint8_t key[PROTO_KEY_LEN],
    uint8_t out[PROTO_IDENTITY_LEN])
{
	uint8_t spki[sizeof(ed25519_spki_prefix) + PROTO_KEY_LEN];

	memcpy(spki, ed25519_spki_prefix, sizeof(ed25519_spki_prefix));
	memcpy(spki + sizeof(ed25519_spki_prefix), key, PROTO_KEY_LEN);
	return proto_sha256(spki, sizeof(spki), out) == 0 ? 0 :
	    PROTO_ERR_CRYPTO;
}

int
proto_identity_verify(const uint8_t key[PROTO_KEY_LEN], const uint8_t *msg,
    size_t len, const uint8_t sig[PROTO_SIG_LEN])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
	    key, PROTO_KEY_LEN);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	ok = pk != NULL && md != NULL &&
	    EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1 &&
	    EVP_DigestVerify(md, sig, PROTO_SIG_LEN, msg, len) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return ok;
}

/* Any certificate will do: the identity behind it is checked once the
 * handshake is done, against a pin or not at all. */
static int
accept_any(int preverify, X509_STORE_CTX *ctx)
{
	(void)preverify;
	(void)ctx;
	return 1;
}

struct ssl_ctx_st *
proto_tls_ctx_new(const proto_identity *id, int server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() :
	    TLS_client_method());

	if (ctx == NULL)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_use_certificate(ctx, id->cert) ||
	    !SSL_CTX_use_PrivateKey(ctx, id->key) ||
	    !SSL_CTX_check_private_key(ctx)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
	/* Peers do not resume sessions: no tickets to keep or send. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

int
proto_tls_peer_id(struct ssl_st *ssl, uint8_t out[PROTO_IDENTITY_LEN])
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	EVP_PKEY *key;
	int rc;

	if (cert == NULL)
		return PROTO_ERR_INVALID;
	key = X509_get0_pubkey(cert);
	rc = key != NULL ? key_id(key, out) : PROTO_ERR_INVALID;
	X509_free(cert);
	return rc;
}

int
proto_tls_own_id(struct ssl_st *ssl, uint8_t out[PROTO_IDENTITY_LEN])
{
	X509 *cert = SSL_get_certificate(ssl);
	EVP_PKEY *key = cert != NULL ? X509_get0_pubkey(cert) : NULL;

	return key != NULL ? key_id(key, out) : PROTO_ERR_INVALID;
}
