/*
 * A connection's handshake: our HELLO, with the proof that we know the
 * swarm's secret; the peer's HELLO checked (its proof, its version) or
 * refused with an ERROR that says why; a peer's own refusal recognised; and
 * the hard deadline by which the whole handshake must be over.
 */
#include <stdio.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

#include "conn_private.h"
#include "error.h"
#include "log_private.h"
#include "msg.h"

/*
 * The proof that the side in role ("client": the one that connected) knows
 * the swarm's secret: an HMAC, keyed with the secret, of keying material
 * exported from this TLS session for that role. It is worth nothing on any
 * other connection, and one side's proof is not the other's.
 */
static int
auth_proof(proto_conn *c, const char *role, uint8_t out[PROTO_AUTH_LEN])
{
	static const char label[] = "EXPORTER-mini-p2p-swarm";
	uint8_t ekm[32];
	unsigned len = 0;

	if (SSL_export_keying_material(c->ssl, ekm, sizeof(ekm), label,
	    sizeof(label) - 1, (const unsigned char *)role, strlen(role),
	    1) != 1)
		return PROTO_ERR_CRYPTO;
	if (HMAC(EVP_sha256(), c->secret, sizeof(c->secret), ekm, sizeof(ekm),
	    out, &len) == NULL || len != PROTO_AUTH_LEN)
		return PROTO_ERR_CRYPTO;
	return 0;
}

int
proto__conn_send_hello(proto_conn *c)
{
	uint8_t proof[PROTO_AUTH_LEN];
	proto_msg hello;

	proto_msg_init(&hello, PROTO_MSG_HELLO);
	hello.version = PROTO_VERSION;
	hello.text = c->name;
	hello.text_len = strlen(c->name);
	hello.listen_port = c->listen_port;
	hello.nfiles = c->nfiles;
	/* Every connection of ours takes records in PEERS_REPLY. */
	hello.caps = c->caps | PROTO_CAP_RECORDS;
	if (c->record_len > 0) {
		hello.opts.rec = c->record;
		hello.opts.rec_len = c->record_len;
	}
	if (c->has_secret) {
		if (auth_proof(c, c->outbound ? "client" : "server", proof) != 0)
			return PROTO_ERR_CRYPTO;
		hello.auth = proof;
	}
	return proto_conn_send(c, &hello);
}

/* 1 when the peer's HELLO proves it knows our secret, or none is asked. */
static int
hello_authentic(proto_conn *c, const proto_msg *m)
{
	uint8_t want[PROTO_AUTH_LEN];

	if (!c->has_secret)
		return 1;
	if (m->auth == NULL) {
		snprintf(c->detail, sizeof(c->detail), "it gave no proof of "
		    "the swarm's secret (--secret-file)");
		return 0;
	}
	if (auth_proof(c, c->outbound ? "server" : "client", want) != 0 ||
	    CRYPTO_memcmp(want, m->auth, sizeof(want)) != 0) {
		snprintf(c->detail, sizeof(c->detail), "its proof of the "
		    "swarm's secret is wrong: another swarm (--secret-file)");
		return 0;
	}
	return 1;
}

/* 1 when m is the peer refusing the connection itself (an ERROR with rid 0
 * for our version or our place in its swarm), its words kept as detail. */
int
proto__conn_refused(proto_conn *c, const proto_msg *m)
{
	char text[PROTO_ERROR_TEXT_MAX + 1];

	if (m->type != PROTO_MSG_ERROR || m->rid != 0 ||
	    (m->code != PROTO_CODE_AUTH && m->code != PROTO_CODE_VERSION))
		return 0;
	proto_msg_printable(text, sizeof(text), m->text, m->text_len);
	snprintf(c->detail, sizeof(c->detail), "it says: %s", text);
	return 1;
}

void
proto__conn_handle_hello(proto_conn *c, const proto_msg *m)
{
	struct timeval tv = { c->timeout, 0 };

	if (m->type != PROTO_MSG_HELLO) {
		proto__conn_fail(c, PROTO_ERR_MALFORMED);
		return;
	}
	if (!hello_authentic(c, m)) {
		/* Said, so that a node set up without the secret knows why;
		 * that this node is in a private swarm is no secret. */
		c->refusing = 1;
		proto_conn_send_error(c, 0, PROTO_CODE_AUTH, m->auth == NULL ?
		    "a private swarm: give its secret (--secret-file)" :
		    "a private swarm: your secret is not this swarm's "
		    "(--secret-file)");
		proto__conn_fail(c, PROTO_ERR_AUTH);
		return;
	}
	if (m->version != PROTO_VERSION) {
		PLOG(PROTO_LOG_CONN, PROTO_LOG_INFO, "%s: speaks protocol "
		    "version %llu, not %u", c->peer,
		    (unsigned long long)m->version, PROTO_VERSION);
		c->refusing = 1;
		proto_conn_send_error(c, 0, PROTO_CODE_VERSION,
		    "unsupported protocol version");
		proto__conn_fail(c, PROTO_ERR_VERSION);
		return;
	}
	c->ready = 1;
	c->peer_port = m->listen_port;
	c->peer_nfiles = m->nfiles;
	c->peer_caps = m->caps;
	proto_msg_printable(c->peer_name, sizeof(c->peer_name), m->text,
	    m->text_len);
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: handshake done: '%s', "
	    "%llu files, listening on port %u", c->peer, c->peer_name,
	    (unsigned long long)c->peer_nfiles, c->peer_port);
	/* The handshake's deadline ends; the idle one, if any, begins. */
	event_del(c->handshake);
	{
		struct timeval idle = { c->idle_timeout, 0 };
		bufferevent_set_timeouts(c->bev, c->idle_timeout ? &idle : NULL,
		    &tv);
	}
	if (c->cbs.on_ready != NULL)
		c->cbs.on_ready(c, m, c->ctx);
}

/*
 * The whole handshake (TCP, TLS, both HELLOs and the swarm's proof) must be
 * over within the timeout from the start. The read timeout alone does not
 * see to it: it restarts with every byte, and a peer sending one every few
 * seconds, or a TLS record never finished, would hold its slot forever.
 */
void
proto__conn_handshake_expired(evutil_socket_t fd, short what, void *arg)
{
	proto_conn *c = arg;
	const char *stage;

	(void)fd;
	(void)what;
	if (c->ready || c->closed)
		return;
	if (c->ssl != NULL && !c->tls_done)
		stage = BIO_number_read(SSL_get_rbio(c->ssl)) == 0 ?
		    "the peer sent nothing of TLS" : "TLS unfinished";
	else
		stage = "no HELLO from the peer";
	snprintf(c->detail, sizeof(c->detail), "the handshake did not end "
	    "within %u s (%s)", c->timeout, stage);
	c->depth++;
	proto__conn_fail(c, PROTO_ERR_TIMEOUT);
	proto__conn_leave(c);
}
