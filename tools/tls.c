/*
 * The tools' TLS settings. One identity and two contexts per process: every
 * connection it accepts uses the server one, every connection it makes the
 * client one. The server one is made when first wanted.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "tls.h"
#include "tool.h"

#define SECRET_MAX 4096

static struct {
	int off;
	const char *identity_path, *secret_path;
	proto_identity *id;
	SSL_CTX *client, *server;
	uint8_t secret[32];
	int has_secret;
	char hex[PROTO_IDENTITY_HEX_LEN + 1];
} tls;

int
tool_tls_option(int ch)
{
	switch (ch) {
	case TOOL_OPT_NO_TLS:
		tls.off = 1;
		return 1;
	case TOOL_OPT_IDENTITY:
		tls.identity_path = optarg;
		return 1;
	case TOOL_OPT_SECRET:
		tls.secret_path = optarg;
		return 1;
	}
	return 0;
}

/* The swarm's key: SHA-256 of the whole file, so any secret works, a
 * passphrase or random bytes. */
static void
read_secret(const char *path)
{
	uint8_t buf[SECRET_MAX + 1];
	unsigned len = 0;
	ssize_t n;
	size_t got = 0;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0)
		tool_die_errno(1, "secret file %s", path);
	/* Whoever else can read it is in the swarm; whoever can write it
	 * can move us to another. Judged on the file opened, which may be a
	 * pipe of ours (--secret-file <(pass show swarm)). */
	if (st.st_uid != geteuid())
		tool_die(1, "secret file %s: owned by another user: not used "
		    "(use a copy of your own, chmod 600)", path);
	if ((st.st_mode & 077) != 0)
		tool_die(1, "secret file %s: group or others can read or write "
		    "it: not used (chmod 600 it)", path);
	while ((n = read(fd, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (n < 0)
		tool_die_errno(1, "secret file %s", path);
	if (got == 0 || got > SECRET_MAX)
		tool_die(1, "secret file %s: want 1 to %d bytes", path,
		    SECRET_MAX);
	if (!EVP_Digest(buf, got, tls.secret, &len, EVP_sha256(), NULL))
		tool_die(1, "secret file %s: cannot hash it", path);
	OPENSSL_cleanse(buf, sizeof(buf));
	tls.has_secret = 1;
}

void
tool_tls_start(void)
{
	const char *env = getenv("MINI_P2P_NO_TLS");
	char path[4096];
	int rc;

	if (env != NULL && strcmp(env, "1") == 0)
		tls.off = 1;
	if (tls.off) {
		if (tls.secret_path != NULL)
			tool_die(2, "--secret-file needs TLS: not with --no-tls");
		tool_log(LOG_WARN, "TLS is off: traffic is neither encrypted "
		    "nor authenticated, and anyone on the path can read or "
		    "change it");
		snprintf(tls.hex, sizeof(tls.hex), "-");
		return;
	}
	if (tls.identity_path != NULL)
		snprintf(path, sizeof(path), "%s", tls.identity_path);
	else if (proto_identity_default_path(path, sizeof(path)) != 0)
		tool_die(1, "no place for this node's key: set HOME or give "
		    "--identity FILE");
	rc = proto_identity_load(path, 1, &tls.id);
	if (rc == PROTO_ERR_INVALID && errno == EPERM)
		tool_die(1, "%s: owned by another user: not used as this "
		    "node's key (use a key of your own, chmod 600)", path);
	if (rc == PROTO_ERR_INVALID && errno == EACCES)
		tool_die(1, "%s: group or others can read or write it: not "
		    "used as this node's key (chmod 600 it)", path);
	if (rc == PROTO_ERR_INVALID)
		tool_die(1, "%s: not a regular file: not used as this node's "
		    "key", path);
	if (rc == PROTO_ERR_SYSTEM)
		tool_die_errno(1, "%s", path);
	if (rc != 0)
		tool_die(1, "%s: %s", path, proto_strerror(rc));
	/* The server's context is made when first wanted: a fetch that
	 * does not share never accepts, and a context costs a small fetch
	 * a tenth of its time. */
	if ((tls.client = proto_tls_ctx_new(tls.id, 0)) == NULL)
		tool_die(1, "cannot set up TLS");
	proto_hex_encode(proto_identity_id(tls.id), PROTO_IDENTITY_LEN, tls.hex);
	if (tls.secret_path != NULL)
		read_secret(tls.secret_path);
}

const char *
tool_tls_identity_path(void)
{
	static char path[4096];

	if (tls.identity_path != NULL)
		return tls.identity_path;
	if (proto_identity_default_path(path, sizeof(path)) != 0)
		return NULL;
	return path;
}

const char *
tool_tls_secret_path(void)
{
	return tls.secret_path;
}

void
tool_tls_apply(proto_conn_config *cfg, int server)
{
	if (!tls.off && server && tls.server == NULL &&
	    (tls.server = proto_tls_ctx_new(tls.id, 1)) == NULL)
		tool_die(1, "cannot set up TLS");
	cfg->tls = tls.off ? NULL : server ? tls.server : tls.client;
	cfg->secret = tls.has_secret ? tls.secret : NULL;
}

int
tool_tls_off(void)
{
	return tls.off;
}

const uint8_t *
tool_tls_secret(void)
{
	return tls.has_secret ? tls.secret : NULL;
}

const proto_identity *
tool_tls_identity(void)
{
	return tls.off ? NULL : tls.id;
}

const char *
tool_tls_identity_hex(void)
{
	return tls.hex[0] ? tls.hex : "-";
}

const char *
tool_tls_split_pin(const char *arg, uint8_t pin[PROTO_IDENTITY_LEN],
    int *has_pin)
{
	const char *at = strchr(arg, '@');
	char hex[PROTO_IDENTITY_HEX_LEN + 1];

	*has_pin = 0;
	if (at == NULL)
		return arg;
	if (at - arg != PROTO_IDENTITY_HEX_LEN)
		return NULL;
	memcpy(hex, arg, PROTO_IDENTITY_HEX_LEN);
	hex[PROTO_IDENTITY_HEX_LEN] = '\0';
	if (proto_id_parse(hex, pin) != 0)
		return NULL;
	*has_pin = 1;
	return at + 1;
}

void
tool_tls_end(void)
{
	SSL_CTX_free(tls.client);
	SSL_CTX_free(tls.server);
	proto_identity_free(tls.id);
	memset(&tls, 0, sizeof(tls));
}
