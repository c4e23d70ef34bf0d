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
#include "frame.h"
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
	proto_peer_entry addrs[PROTO_HELLO_ADDRS_MAX];
	proto_hello_ext ext[PROTO_HELLO_EXT_MAX];
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
	hello.opts.has = PROTO_OPT_VMIN;
	hello.opts.vmin = PROTO_VERSION_MIN;
	/* A side that may ask here (duplex) takes answers of any size, the
	 * chunks it asks for; until it asks, a frame past max_frame still
	 * ends the connection (proto_conn_attach raises it). */
	if (c->caps & PROTO_CAP_DUPLEX) {
		hello.opts.has |= PROTO_OPT_MAXFRAME;
		hello.opts.maxframe = PROTO_FRAME_MAX;
	} else if (c->max_frame >= PROTO_HELLO_MAXFRAME_MIN) {
		hello.opts.has |= PROTO_OPT_MAXFRAME;
		hello.opts.maxframe = (uint32_t)c->max_frame;
	}
	if (c->max_requests != 0) {
		hello.opts.has |= PROTO_OPT_MAXREQ;
		hello.opts.maxreq = c->max_requests;
	}
	/* Through a relay, the socket's peer is the relay, not the node; a
	 * punched socket's is the node's router at a port of the moment. */
	if (c->has_peer_addr && !c->relayed && !c->punched) {
		hello.opts.has |= PROTO_OPT_SEEN;
		hello.opts.seen.host = c->host;
		hello.opts.seen.host_len = strlen(c->host);
		hello.opts.seen.port = proto_addr_port(&c->peer_addr);
	}
	for (size_t i = 0; i < c->naddrs; i++) {
		addrs[i].host = c->addr_host[i];
		addrs[i].host_len = strlen(c->addr_host[i]);
		addrs[i].port = c->addr_port[i];
	}
	hello.opts.addrs = addrs;
	hello.opts.naddrs = c->naddrs;
	if (c->relay_port != 0) {
		hello.opts.has |= PROTO_OPT_RELAY;
		hello.opts.relay = c->relay_port;
	}
	if (c->mapped_port != 0) {
		hello.opts.has |= PROTO_OPT_MAPPED;
		hello.opts.mapped.host = c->mapped_host;
		hello.opts.mapped.host_len = strlen(c->mapped_host);
		hello.opts.mapped.port = c->mapped_port;
	}
	for (size_t i = 0; i < c->next; i++) {
		ext[i].name = c->ext[i].name;
		ext[i].name_len = strlen(c->ext[i].name);
		ext[i].type = c->ext[i].type;
	}
	hello.opts.ext = ext;
	hello.opts.next = c->next;
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

/* The version both speak: the highest of ours and the peer's, if both
 * speak it; else 0. A peer without "vmin" speaks its version alone. */
static uint32_t
agreed_version(const proto_msg *m)
{
	uint32_t vmin = (m->opts.has & PROTO_OPT_VMIN) ? m->opts.vmin :
	    m->version;
	uint32_t v = m->version < PROTO_VERSION ? m->version : PROTO_VERSION;

	return v >= PROTO_VERSION_MIN && v >= vmin ? v : 0;
}

/* What the peer's HELLO options tell: kept, each checked again as an
 * address (numbers only: never looked up). */
static void
take_options(proto_conn *c, const proto_hello_opts *o)
{
	if (o->has & PROTO_OPT_MAXREQ)
		c->peer_maxreq = o->maxreq;
	if (o->has & PROTO_OPT_MAXFRAME)
		c->peer_max_frame = o->maxframe < PROTO_FRAME_MAX ?
		    o->maxframe : PROTO_FRAME_MAX;
	if ((o->has & PROTO_OPT_SEEN) && proto_addr_from_host(&c->seen,
	    o->seen.host, o->seen.host_len, o->seen.port) == 0)
		c->has_seen = 1;
	if ((o->has & PROTO_OPT_RELAY) && (c->peer_caps & PROTO_CAP_RELAY))
		c->peer_relay_port = o->relay;
	if ((o->has & PROTO_OPT_MAPPED) && proto_addr_from_host(
	    &c->peer_mapped, o->mapped.host, o->mapped.host_len,
	    o->mapped.port) == 0)
		c->has_peer_mapped = 1;
	for (size_t i = 0; i < o->naddrs &&
	    c->peer_naddrs < PROTO_HELLO_ADDRS_MAX; i++)
		if (proto_addr_from_host(&c->peer_addrs[c->peer_naddrs],
		    o->addrs[i].host, o->addrs[i].host_len,
		    o->addrs[i].port) == 0)
			c->peer_naddrs++;
	for (size_t i = 0; i < o->next && c->peer_next < PROTO_HELLO_EXT_MAX;
	    i++) {
		struct conn_ext *e = &c->peer_ext[c->peer_next];
		/* A NUL inside would make the name another. */
		if (memchr(o->ext[i].name, '\0', o->ext[i].name_len) != NULL)
			continue;
		memcpy(e->name, o->ext[i].name, o->ext[i].name_len);
		e->name[o->ext[i].name_len] = '\0';
		e->type = o->ext[i].type;
		c->peer_next++;
	}
}

/* 1 for a core type this implementation defines, or an extension type
 * this side numbered in its HELLO. */
int
proto__conn_type_known(const proto_conn *c, unsigned type)
{
	return type < PROTO_MSG_TYPE_COUNT ||
	    proto_conn_ext_name(c, type) != NULL;
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
	if ((c->version = agreed_version(m)) == 0) {
		char text[80];
		PLOG(PROTO_LOG_CONN, PROTO_LOG_INFO, "%s: speaks protocol "
		    "versions %llu to %llu, this node %u to %u", c->peer,
		    (unsigned long long)((m->opts.has & PROTO_OPT_VMIN) ?
		    m->opts.vmin : m->version), (unsigned long long)m->version,
		    PROTO_VERSION_MIN, PROTO_VERSION);
		snprintf(text, sizeof(text), "unsupported protocol version: "
		    "supported versions %u to %u", PROTO_VERSION_MIN,
		    PROTO_VERSION);
		c->refusing = 1;
		proto_conn_send_error(c, 0, PROTO_CODE_VERSION, text);
		proto__conn_fail(c, PROTO_ERR_VERSION);
		return;
	}
	c->ready = 1;
	c->peer_port = m->listen_port;
	c->peer_nfiles = m->nfiles;
	c->peer_caps = m->caps;
	c->duplex = (c->caps & m->caps & PROTO_CAP_DUPLEX) != 0;
	proto_msg_printable(c->peer_name, sizeof(c->peer_name), m->text,
	    m->text_len);
	take_options(c, &m->opts);
	PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: handshake done: '%s', "
	    "%llu files, listening on port %u, version %u, caps %#llx, "
	    "sees us at %s", c->peer, c->peer_name,
	    (unsigned long long)c->peer_nfiles, c->peer_port, c->version,
	    (unsigned long long)c->peer_caps,
	    c->has_seen ? proto_addr_text(&c->seen) : "(not said)");
	if (c->peer_relay_port != 0)
		PLOG(PROTO_LOG_CONN, PROTO_LOG_DEBUG, "%s: relays on port %u",
		    c->peer, c->peer_relay_port);
	if (c->has_seen && c->has_peer_addr && !c->relayed && !c->punched &&
	    c->on_seen != NULL)
		c->on_seen(&c->seen, &c->peer_addr, c->seen_ctx);
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
