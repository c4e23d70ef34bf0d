/*
 * Hole punching (PROTOCOL.md section 13, "Hole punching"): the RELAY_PUNCH
 * frames byte for byte as the examples show them, parsed back; what a
 * parser must refuse; and the node's bounds on where and how often a relay
 * may have it punch.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "frame.h"
#include "punch_private.h"
#include "tap.h"

static proto_relay_msg
msg(proto_relay_kind kind, uint32_t rid, uint16_t port)
{
	proto_relay_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = kind;
	m.rid = rid;
	m.port = port;
	memset(m.id, 0x33, sizeof(m.id));
	memset(m.token, 0x44, sizeof(m.token));
	return m;
}

/* m packs to exactly want (n bytes), and parses back to the same. */
static void
exact(const char *name, const proto_relay_msg *m, int from_relay,
    const uint8_t *want, size_t n)
{
	uint8_t buf[PROTO_RELAY_MSG_MAX];
	proto_relay_msg back;
	size_t len = 0;
	char what[96];

	snprintf(what, sizeof(what), "%s: packs", name);
	is_int(proto_relay_msg_pack(m, buf, sizeof(buf), &len), 0, what);
	snprintf(what, sizeof(what), "%s: %zu bytes", name, n);
	is_int(len, n, what);
	snprintf(what, sizeof(what), "%s: its bytes", name);
	is_mem(buf, want, n, what);
	snprintf(what, sizeof(what), "%s: parses back", name);
	is_int(proto_relay_msg_parse(buf + 4, len - 4, from_relay, &back), 0,
	    what);
	snprintf(what, sizeof(what), "%s: the same message", name);
	ok(back.kind == m->kind && back.rid == m->rid && back.port ==
	    m->port && back.iplen == m->iplen && memcmp(back.ip, m->ip,
	    m->iplen) == 0 && back.caps == m->caps, "%s", what);
}

/* hdr (its length n0), then fill bytes of value v, then tail. */
static size_t
build(uint8_t *out, const uint8_t *hdr, size_t n0, uint8_t v, size_t nv,
    const uint8_t *tail, size_t nt)
{
	memcpy(out, hdr, n0);
	memset(out + n0, v, nv);
	if (nt > 0) /* tail may be NULL then, which memcpy may not take */
		memcpy(out + n0 + nv, tail, nt);
	return n0 + nv + nt;
}

static void
test_vectors(void)
{
	static const uint8_t ask_h[] = { 0, 0, 0, 0x28, 0x94, 0x1a, 0x01,
	    0xc4, 0x20 }, ask_t[] = { 0xcd, 0x9c, 0x40 };
	static const uint8_t tell_h[] = { 0, 0, 0, 0x1e, 0x95, 0x1a, 0x00,
	    0xc4, 0x10 }, tell_t[] = { 0xc4, 0x04, 5, 5, 5, 1, 0xcd, 0x9c,
	    0x40 };
	static const uint8_t ready_h[] = { 0, 0, 0, 0x18, 0x94, 0x1a, 0x01,
	    0xc4, 0x10 }, ready_t[] = { 0xcd, 0xa0, 0x28 };
	static const uint8_t decl_h[] = { 0, 0, 0, 0x16, 0x94, 0x1a, 0x01,
	    0xc4, 0x10 }, decl_t[] = { 0x00 };
	static const uint8_t go[] = { 0, 0, 0, 0x0c, 0x94, 0x1a, 0x01, 0xc4,
	    0x04, 6, 6, 6, 1, 0xcd, 0xa0, 0x28 };
	static const uint8_t prove_h[] = { 0, 0, 0, 0x6a, 0x95, 0x16, 0x02,
	    0xc4, 0x20 }, prove_t[] = { 0xcd, 0x01, 0x00 };
	uint8_t want[PROTO_RELAY_MSG_MAX], *p;
	proto_relay_msg m;
	size_t n;

	m = msg(PROTO_RELAY_PUNCH_ASK, 1, 40000);
	n = build(want, ask_h, sizeof(ask_h), 0x33, 32, ask_t, sizeof(ask_t));
	exact("PUNCH_ASK", &m, 0, want, n);
	m = msg(PROTO_RELAY_PUNCH_TELL, 0, 40000);
	memcpy(m.ip, "\x05\x05\x05\x01", 4);
	m.iplen = 4;
	n = build(want, tell_h, sizeof(tell_h), 0x44, 16, tell_t,
	    sizeof(tell_t));
	exact("PUNCH_TELL", &m, 1, want, n);
	m = msg(PROTO_RELAY_PUNCH_READY, 1, 41000);
	n = build(want, ready_h, sizeof(ready_h), 0x44, 16, ready_t,
	    sizeof(ready_t));
	exact("PUNCH_READY", &m, 0, want, n);
	m = msg(PROTO_RELAY_PUNCH_READY, 1, 0);
	n = build(want, decl_h, sizeof(decl_h), 0x44, 16, decl_t,
	    sizeof(decl_t));
	exact("PUNCH_READY declined", &m, 0, want, n);
	m = msg(PROTO_RELAY_PUNCH_GO, 1, 41000);
	memcpy(m.ip, "\x06\x06\x06\x01", 4);
	m.iplen = 4;
	exact("PUNCH_GO", &m, 1, go, sizeof(go));
	/* A proof that says the node punches: its caps, fifth. */
	m = msg(PROTO_RELAY_PROVE, 2, 0);
	memset(m.key, 0x11, sizeof(m.key));
	memset(m.sig, 0x22, sizeof(m.sig));
	m.caps = PROTO_CAP_PUNCH;
	n = build(want, prove_h, sizeof(prove_h), 0x11, 32, NULL, 0);
	want[n++] = 0xc4;
	want[n++] = 0x40;
	p = want + n;
	memset(p, 0x22, 64);
	memcpy(p + 64, prove_t, sizeof(prove_t));
	exact("PROVE with caps", &m, 0, want, n + 64 + sizeof(prove_t));
	/* An IPv6 GO: 16 bytes of address. */
	m = msg(PROTO_RELAY_PUNCH_GO, 3, 5000);
	memset(m.ip, 0x20, 16);
	m.iplen = 16;
	is_int(proto_relay_msg_pack(&m, want, sizeof(want), &n), 0,
	    "PUNCH_GO of IPv6: packs");
	m.iplen = 5;
	is_int(proto_relay_msg_pack(&m, want, sizeof(want), &n),
	    PROTO_ERR_INVALID, "an address of 5 bytes: not packed");
}

static int
parse(const uint8_t *b, size_t n, int from_relay)
{
	proto_relay_msg m;

	return proto_relay_msg_parse(b, n, from_relay, &m);
}

static void
test_refused(void)
{
	/* [26, 1, bin 32, 70000]: a port past 65535. */
	uint8_t bigport[3 + 34 + 5] = { 0x94, 0x1a, 0x01, 0xc4, 0x20 };
	/* [26, 1, bin 32]: no port. */
	uint8_t noport[3 + 34] = { 0x93, 0x1a, 0x01, 0xc4, 0x20 };
	/* [26, 1, bin 20, 5]: neither an identity nor a token. */
	uint8_t odd[3 + 22 + 1] = { 0x94, 0x1a, 0x01, 0xc4, 20 };
	/* From the relay, [26, 1, bin 5, 5]: an address of 5 bytes. */
	static const uint8_t ip5[] = { 0x94, 0x1a, 0x01, 0xc4, 0x05, 1, 2, 3,
	    4, 5, 0x05 };
	/* From the relay, [26, 0, token, bin 4]: a TELL without its port. */
	uint8_t tellshort[3 + 18 + 6] = { 0x94, 0x1a, 0x00, 0xc4, 0x10 };
	/* [26, 1, "x", 5]: a str, not a bin. */
	static const uint8_t str[] = { 0x94, 0x1a, 0x01, 0xa1, 'x', 0x05 };

	memcpy(bigport + 37, "\xce\x00\x01\x11\x70", 5);
	odd[25] = 0x05;
	memcpy(tellshort + 21, "\xc4\x04\x01\x02\x03\x04", 6);
	is_int(parse(bigport, sizeof(bigport), 0), PROTO_ERR_MALFORMED,
	    "PUNCH_ASK with port 70000: refused");
	is_int(parse(noport, sizeof(noport), 0), PROTO_ERR_MALFORMED,
	    "PUNCH_ASK without its port: refused");
	is_int(parse(odd, sizeof(odd), 0), PROTO_ERR_MALFORMED,
	    "a bin of 20 bytes: refused");
	is_int(parse(ip5, sizeof(ip5), 1), PROTO_ERR_MALFORMED,
	    "PUNCH_GO with an address of 5 bytes: refused");
	is_int(parse(tellshort, sizeof(tellshort), 1), PROTO_ERR_MALFORMED,
	    "PUNCH_TELL without its port: refused");
	is_int(parse(str, sizeof(str), 0), PROTO_ERR_MALFORMED,
	    "a str for the identity: refused");
}

static const char *
refusal(const char *ip, uint16_t port)
{
	uint8_t b[16];
	proto_addr a;
	int v6 = strchr(ip, ':') != NULL;

	if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, b) != 1 ||
	    proto__punch_addr(&a, b, v6 ? 16 : 4, port) != 0)
		return "bad test address";
	return proto__punch_refusal(&a);
}

static void
test_bounds(void)
{
	struct proto__punch_rate r = { 0, 0 };
	int took = 0;
	proto_addr a;

	ok(refusal("5.5.5.1", 40000) == NULL, "a router's address: punched");
	ok(refusal("2001:db8::1", 40000) == NULL, "an IPv6 address: punched");
	ok(refusal("127.0.0.1", 40000) != NULL, "loopback: refused");
	ok(refusal("::1", 40000) != NULL, "IPv6 loopback: refused");
	ok(refusal("0.0.0.0", 40000) != NULL, "unspecified: refused");
	ok(refusal("::", 40000) != NULL, "IPv6 unspecified: refused");
	ok(refusal("224.0.0.1", 40000) != NULL, "multicast: refused");
	ok(refusal("255.255.255.255", 40000) != NULL, "broadcast: refused");
	ok(refusal("169.254.1.1", 40000) != NULL, "link-local: refused");
	ok(refusal("ff02::1", 40000) != NULL, "IPv6 multicast: refused");
	ok(refusal("fe80::1", 40000) != NULL, "IPv6 link-local: refused");
	ok(refusal("::ffff:127.0.0.1", 40000) != NULL,
	    "IPv4-mapped: refused");
	ok(refusal("5.5.5.1", 80) != NULL, "port 80: refused");
	ok(refusal("5.5.5.1", 1023) != NULL, "port 1023: refused");
	ok(refusal("5.5.5.1", 1024) == NULL, "port 1024: punched");
	is_int(proto__punch_addr(&a, (const uint8_t *)"abc", 3, 5000), -1,
	    "an address of 3 bytes: none");
	for (int i = 0; i < 20; i++)
		took += proto__punch_rate_take(&r, 1000);
	is_int(took, PUNCH_RATE, "20 punches at once: the rate's 8 taken");
	is_int(proto__punch_rate_take(&r, 1000 + PUNCH_RATE_SECS - 1), 0,
	    "none more within the window");
	is_int(proto__punch_rate_take(&r, 1000 + PUNCH_RATE_SECS), 1,
	    "one more once it has passed");
}

int
main(void)
{
	test_vectors();
	test_refused();
	test_bounds();
	return done_testing();
}
