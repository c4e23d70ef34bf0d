/*
 * relaymsg.c: the relay messages, byte for byte as PROTOCOL.md section 13
 * shows them, parsed back, and what a parser must refuse.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"
#include "frame.h"
#include "tap.h"

static proto_relay_msg
msg(proto_relay_kind kind, uint32_t rid)
{
	proto_relay_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = kind;
	m.rid = rid;
	memset(m.nonce, 0xaa, sizeof(m.nonce));
	memset(m.key, 0x11, sizeof(m.key));
	memset(m.sig, 0x22, sizeof(m.sig));
	memset(m.id, 0x33, sizeof(m.id));
	memset(m.token, 0x44, sizeof(m.token));
	return m;
}

/* want: the frame's first bytes (through the first bin's header); then
 * the bins' bytes follow as msg() fills them. */
static void
vector(const char *name, proto_relay_msg m, int from_relay,
    const uint8_t *head, size_t head_len, size_t total)
{
	uint8_t buf[PROTO_RELAY_MSG_MAX];
	proto_relay_msg back;
	size_t n = 0;
	char what[96];

	snprintf(what, sizeof(what), "%s: packs", name);
	is_int(proto_relay_msg_pack(&m, buf, sizeof(buf), &n), 0, what);
	snprintf(what, sizeof(what), "%s: %zu bytes", name, total);
	is_int(n, total, what);
	snprintf(what, sizeof(what), "%s: its bytes", name);
	is_mem(buf, head, head_len, what);
	snprintf(what, sizeof(what), "%s: parses back", name);
	is_int(proto_relay_msg_parse(buf + 4, n - 4, from_relay, &back), 0,
	    what);
	snprintf(what, sizeof(what), "%s: same kind and rid", name);
	ok(back.kind == m.kind && back.rid == (m.kind ==
	    PROTO_RELAY_INCOMING ? 0 : m.rid), "%s", what);
}

static void
test_vectors(void)
{
	static const uint8_t ask[] = { 0, 0, 0, 3, 0x92, 0x16, 0x01 };
	static const uint8_t nonce[] = { 0, 0, 0, 0x25, 0x93, 0x16, 0x01,
	    0xc4, 0x20, 0xaa };
	static const uint8_t prove[] = { 0, 0, 0, 0x67, 0x94, 0x16, 0x02,
	    0xc4, 0x20, 0x11 };
	static const uint8_t done[] = { 0, 0, 0, 3, 0x92, 0x16, 0x02 };
	static const uint8_t conn[] = { 0, 0, 0, 0x25, 0x93, 0x17, 0x01,
	    0xc4, 0x20, 0x33 };
	static const uint8_t inc[] = { 0, 0, 0, 0x15, 0x93, 0x18, 0x00,
	    0xc4, 0x10, 0x44 };
	static const uint8_t acc[] = { 0, 0, 0, 0x15, 0x93, 0x19, 0x01,
	    0xc4, 0x10, 0x44 };
	static const uint8_t err[] = { 0, 0, 0, 0x16, 0x94, 0x01, 0x01, 0x01,
	    0xb1, 'n', 'o', ' ', 's', 'u', 'c', 'h', ' ', 'n', 'o', 'd', 'e',
	    ' ', 'h', 'e', 'r', 'e' };
	proto_relay_msg e = msg(PROTO_RELAY_ERROR, 1);
	uint8_t buf[PROTO_RELAY_MSG_MAX];
	proto_relay_msg back;
	size_t n;

	vector("ASK_NONCE", msg(PROTO_RELAY_ASK_NONCE, 1), 0, ask,
	    sizeof(ask), 7);
	vector("NONCE", msg(PROTO_RELAY_NONCE, 1), 1, nonce, sizeof(nonce),
	    41);
	vector("PROVE", msg(PROTO_RELAY_PROVE, 2), 0, prove, sizeof(prove),
	    107);
	vector("REGISTERED", msg(PROTO_RELAY_REGISTERED, 2), 1, done,
	    sizeof(done), 7);
	vector("CONNECT", msg(PROTO_RELAY_CONNECT, 1), 0, conn, sizeof(conn),
	    41);
	vector("INCOMING", msg(PROTO_RELAY_INCOMING, 9), 1, inc, sizeof(inc),
	    25);
	vector("ACCEPT", msg(PROTO_RELAY_ACCEPT, 1), 0, acc, sizeof(acc), 25);
	e.code = PROTO_CODE_NOT_FOUND;
	strcpy(e.message, "no such node here");
	vector("ERROR", e, 1, err, sizeof(err), sizeof(err));

	/* The bins come back whole. */
	e = msg(PROTO_RELAY_PROVE, 2);
	proto_relay_msg_pack(&e, buf, sizeof(buf), &n);
	proto_relay_msg_parse(buf + 4, n - 4, 0, &back);
	ok(memcmp(back.key, e.key, sizeof(e.key)) == 0 &&
	    memcmp(back.sig, e.sig, sizeof(e.sig)) == 0, "PROVE: key and sig");
	e = msg(PROTO_RELAY_CONNECT, 1);
	proto_relay_msg_pack(&e, buf, sizeof(buf), &n);
	proto_relay_msg_parse(buf + 4, n - 4, 0, &back);
	ok(memcmp(back.id, e.id, sizeof(e.id)) == 0, "CONNECT: identity");
	is_int(proto_relay_msg_pack(&e, buf, 20, &n), PROTO_ERR_TOO_BIG,
	    "pack: short buffer -> TOO_BIG");
}

static int
parse_bytes(const uint8_t *b, size_t n)
{
	proto_relay_msg m;

	return proto_relay_msg_parse(b, n, 0, &m);
}

static void
test_refused(void)
{
	/* [23, 1, bin 31]: an identity one byte short. */
	uint8_t shortid[3 + 2 + 31] = { 0x93, 0x17, 0x01, 0xc4, 31 };
	/* [25, 1]: no token. */
	static const uint8_t notoken[] = { 0x92, 0x19, 0x01 };
	/* [2, 1]: LIST, not a relay message. */
	static const uint8_t list[] = { 0x92, 0x02, 0x01 };
	/* [22, 1] and a byte more. */
	static const uint8_t trailing[] = { 0x92, 0x16, 0x01, 0x00 };
	/* [22, -1]: a negative rid. */
	static const uint8_t negrid[] = { 0x92, 0x16, 0xff };
	/* {} : not an array. */
	static const uint8_t map[] = { 0x80 };
	/* [22, 1, key, "sig"]: a str where the signature goes. */
	uint8_t strsig[3 + 34 + 4] = { 0x94, 0x16, 0x01, 0xc4, 0x20 };
	/* [23, 1, bin 32, 7]: an element more is fine. */
	uint8_t more[3 + 34 + 1] = { 0x94, 0x17, 0x01, 0xc4, 0x20 };

	memcpy(strsig + 37, "\xa3sig", 4);
	more[37] = 0x07;
	is_int(parse_bytes(shortid, sizeof(shortid)), PROTO_ERR_MALFORMED,
	    "CONNECT with a 31-byte identity: refused");
	is_int(parse_bytes(notoken, sizeof(notoken)), PROTO_ERR_MALFORMED,
	    "ACCEPT without its token: refused");
	is_int(parse_bytes(list, sizeof(list)), PROTO_ERR_MALFORMED,
	    "LIST: not a relay message");
	is_int(parse_bytes(trailing, sizeof(trailing)), PROTO_ERR_MALFORMED,
	    "a byte past the message: refused");
	is_int(parse_bytes(negrid, sizeof(negrid)), PROTO_ERR_MALFORMED,
	    "a negative rid: refused");
	is_int(parse_bytes(map, sizeof(map)), PROTO_ERR_MALFORMED,
	    "a map: refused");
	is_int(parse_bytes(strsig, sizeof(strsig)), PROTO_ERR_MALFORMED,
	    "PROVE with a str for its signature: refused");
	is_int(parse_bytes(more, sizeof(more)), 0,
	    "CONNECT with an element more: taken");
	is_int(parse_bytes(list, 0), PROTO_ERR_MALFORMED, "nothing: refused");
}

static void
hex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
}

/* The register proof of PROTOCOL.md section 13: the key of seed 00..1f
 * (section 8's test key) signs the domain and a nonce of 32 bytes 0xaa. */
static void
test_proof(void)
{
	static const char pem[] = "-----BEGIN PRIVATE KEY-----\n"
	    "MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n"
	    "-----END PRIVATE KEY-----\n";
	char path[] = "/tmp/test_relay_keyXXXXXX";
	uint8_t msg_[sizeof(PROTO_RELAY_DOMAIN) - 1 + PROTO_RELAY_NONCE_LEN];
	uint8_t sig[PROTO_SIG_LEN], want[PROTO_SIG_LEN], key[PROTO_KEY_LEN];
	uint8_t wantkey[PROTO_KEY_LEN];
	proto_identity *id = NULL;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, pem, sizeof(pem) - 1) != (ssize_t)(sizeof(pem)
	    - 1) || fchmod(fd, 0600) != 0) {
		ok(0, "test key written");
		return;
	}
	close(fd);
	is_int(proto_identity_load(path, 0, &id), 0, "test key loaded");
	unlink(path);
	if (id == NULL)
		return;
	memcpy(msg_, PROTO_RELAY_DOMAIN, sizeof(PROTO_RELAY_DOMAIN) - 1);
	memset(msg_ + sizeof(PROTO_RELAY_DOMAIN) - 1, 0xaa,
	    PROTO_RELAY_NONCE_LEN);
	hex("9e269de9d4d9aa5c336bb7ac816e09e5244838c1285fab94854a24596193ebb8"
	    "059eb594871e755ae94e5c4c0cafd006ad6792b605509da02e615aa8be16ef0a",
	    want, sizeof(want));
	hex("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
	    wantkey, sizeof(wantkey));
	is_int(proto_identity_public_key(id, key), 0, "its public key");
	is_mem(key, wantkey, sizeof(key), "the key of the vector");
	is_int(proto_identity_sign(id, msg_, sizeof(msg_), sig), 0, "signs");
	is_mem(sig, want, sizeof(sig), "the proof of the vector");
	ok(proto_identity_verify(key, msg_, sizeof(msg_), sig),
	    "and it verifies");
	msg_[sizeof(msg_) - 1] ^= 1;
	ok(!proto_identity_verify(key, msg_, sizeof(msg_), sig),
	    "not over another nonce");
	proto_identity_free(id);
}

int
main(void)
{
	test_proof();
	test_vectors();
	test_refused();
	return done_testing();
}
