/*
 * hello.c: the HELLO's options map through proto_msg_pack and
 * proto_msg_unpack. Round trips with every key; the limits of each list and
 * value at, under and over the edge; unknown keys and keys of the wrong
 * type left out while the rest still count; HELLOs of 5, 6 and 7 elements
 * from nodes before the options; and the byte-exact examples of
 * PROTOCOL.md section 5.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "frame.h"
#include "tap.h"

/*
 * A frame body from a compact text: hex bytes, and 'text' for a str of
 * those bytes in its shortest form (no spaces inside). The HELLO
 * [0, 1, 0, "a", 0, 0, nil] opens every body made by hello_body.
 */
static size_t
body_of(const char *text, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (*text) {
		if (*text == ' ') {
			text++;
		} else if (*text == '\'') {
			const char *end = strchr(text + 1, '\'');
			size_t k;
			if (end == NULL)
				exit(2);
			k = (size_t)(end - text - 1);
			if (k < 32) {
				out[n++] = (uint8_t)(0xa0 | k);
			} else {
				out[n++] = 0xd9;
				out[n++] = (uint8_t)k;
			}
			memcpy(out + n, text + 1, k);
			n += k;
			text = end + 1;
		} else {
			unsigned v;
			if (sscanf(text, "%2x", &v) != 1) {
				fprintf(stderr, "bad body text at %s\n", text);
				exit(2);
			}
			out[n++] = (uint8_t)v;
			text += 2;
		}
		if (n > cap - 300) {
			fprintf(stderr, "body too long\n");
			exit(2);
		}
	}
	return n;
}

/* Unpacks text as a frame body, checked as every receiver checks it. The
 * body is kept in *keep (the caller frees it after clearing m). */
static int
unpack_text(const char *text, proto_msg *m, uint8_t **keep)
{
	static uint8_t body[4096];
	size_t n = body_of(text, body, sizeof(body));
	int rc;

	if ((*keep = malloc(n)) == NULL)
		exit(2);
	memcpy(*keep, body, n);
	proto_msg_init(m, 0);
	if ((rc = proto_frame_check_body(*keep, n)) != 0) {
		diag("'%s' fails the frame check: %s", text, proto_strerror(rc));
		return 1000 + rc;
	}
	return proto_msg_unpack(*keep, n, m);
}

/* Unpacks a HELLO [0, 1, 0, "a", 0, 0, nil, opts] of opts given as text. */
static int
unpack_opts(const char *opts, proto_msg *m, uint8_t **keep)
{
	char text[3000];

	snprintf(text, sizeof(text), "98 00 01 00 'a' 00 00 c0 %s", opts);
	return unpack_text(text, m, keep);
}

static int
entry_is(const proto_peer_entry *e, const char *host, uint16_t port)
{
	return e->host_len == strlen(host) &&
	    memcmp(e->host, host, e->host_len) == 0 && e->port == port;
}

static int
ext_is(const proto_hello_ext *e, const char *name, unsigned type)
{
	return e->name_len == strlen(name) &&
	    memcmp(e->name, name, e->name_len) == 0 && e->type == type;
}

/* Packs m, parses the frame and unpacks it into out (the frame is kept in
 * *frame for the caller to free after clearing out). */
static int
roundtrip(const proto_msg *m, proto_msg *out, uint8_t **frame, size_t *len)
{
	int rc;

	*frame = NULL;
	proto_msg_init(out, 0);
	if ((rc = proto_msg_pack(m, frame, len)) != 0)
		return rc;
	if (proto_frame_parse(*frame, *len, PROTO_FRAME_MAX) != (long)*len)
		return PROTO_ERR_MALFORMED;
	if (proto_frame_check_body(*frame + 4, *len - 4) != 0)
		return PROTO_ERR_MALFORMED;
	return proto_msg_unpack(*frame + 4, *len - 4, out);
}

static const proto_peer_entry addrs8[PROTO_HELLO_ADDRS_MAX] = {
	{ "10.0.0.1", 8, 1, NULL, 0 }, { "10.0.0.2", 8, 2, NULL, 0 }, { "192.168.1.20", 12, 8080, NULL, 0 },
	{ "::1", 3, 9, NULL, 0 }, { "2001:db8::7", 11, 65535, NULL, 0 },
	{ "255.255.255.255", 15, 3, NULL, 0 }, { "fe80::1", 7, 4, NULL, 0 }, { "127.0.0.1", 9, 5, NULL, 0 },
};

static void
test_roundtrip(void)
{
	static const uint8_t proof[PROTO_AUTH_LEN] = { 7, 7, 7 };
	proto_hello_ext ext[PROTO_HELLO_EXT_MAX];
	char names[PROTO_HELLO_EXT_MAX][PROTO_EXT_NAME_MAX + 1];
	proto_msg m, u;
	uint8_t *f;
	size_t len;
	int rc, good;

	for (unsigned i = 0; i < PROTO_HELLO_EXT_MAX; i++) {
		/* The last name is exactly PROTO_EXT_NAME_MAX bytes. */
		if (i + 1 == PROTO_HELLO_EXT_MAX)
			memset(names[i], 'z', PROTO_EXT_NAME_MAX);
		else
			snprintf(names[i], sizeof(names[i]), "ext_%u", i);
		names[i][i + 1 == PROTO_HELLO_EXT_MAX ? PROTO_EXT_NAME_MAX :
		    strlen(names[i])] = '\0';
		ext[i].name = names[i];
		ext[i].name_len = strlen(names[i]);
		ext[i].type = (uint8_t)(i == 0 ? PROTO_MSG_EXT_MIN :
		    i == 1 ? PROTO_MSG_EXT_MAX : 80 + i);
	}
	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = 1;
	m.caps = 0xf;
	m.text = "node";
	m.text_len = 4;
	m.listen_port = 7000;
	m.nfiles = 3;
	m.opts.has = PROTO_OPT_VMIN | PROTO_OPT_MAXREQ | PROTO_OPT_MAXFRAME |
	    PROTO_OPT_SEEN | PROTO_OPT_MAPPED | PROTO_OPT_RELAY;
	m.opts.relay = 65535;
	m.opts.vmin = 1;
	m.opts.maxreq = 0;
	m.opts.maxframe = UINT32_MAX;
	m.opts.seen = (proto_peer_entry){ "2001:db8::1", 11, 40000, NULL, 0 };
	m.opts.mapped = (proto_peer_entry){ "2001:db8::ffff:ffff:ffff:ffff",
	    29, 65535, NULL, 0 };
	m.opts.addrs = addrs8;
	m.opts.naddrs = PROTO_HELLO_ADDRS_MAX;
	m.opts.ext = ext;
	m.opts.next = PROTO_HELLO_EXT_MAX;
	rc = roundtrip(&m, &u, &f, &len);
	good = rc == 0 && u.type == PROTO_MSG_HELLO && u.version == 1 &&
	    u.caps == 0xf && u.listen_port == 7000 && u.nfiles == 3 &&
	    u.auth == NULL && u.opts.has == m.opts.has && u.opts.vmin == 1 &&
	    u.opts.maxreq == 0 && u.opts.maxframe == UINT32_MAX &&
	    entry_is(&u.opts.seen, "2001:db8::1", 40000) &&
	    entry_is(&u.opts.mapped, "2001:db8::ffff:ffff:ffff:ffff", 65535) &&
	    u.opts.relay == 65535 &&
	    u.opts.naddrs == PROTO_HELLO_ADDRS_MAX &&
	    u.opts.next == PROTO_HELLO_EXT_MAX;
	for (size_t i = 0; good && i < PROTO_HELLO_ADDRS_MAX; i++) {
		char host[PROTO_HOST_MAX + 1];
		memcpy(host, addrs8[i].host, addrs8[i].host_len);
		host[addrs8[i].host_len] = '\0';
		good = entry_is(&u.opts.addrs[i], host, addrs8[i].port);
	}
	for (size_t i = 0; good && i < PROTO_HELLO_EXT_MAX; i++)
		good = ext_is(&u.opts.ext[i], names[i], ext[i].type);
	ok(good, "round trip: every key, 8 addrs, 16 ext (types 64 and 127, a "
	    "name of 32 bytes), maxreq 0, maxframe UINT32_MAX");
	ok(rc == 0 && f[4] == 0x98,
	    "HELLO with options is 8 elements");
	ok(rc == 0 && len < PROTO_FRAME_HANDSHAKE_MAX,
	    "the fullest HELLO (%zu bytes) fits the handshake's frame", len);
	proto_msg_clear(&u);
	free(f);

	m.auth = proof;
	rc = roundtrip(&m, &u, &f, &len);
	ok(rc == 0 && u.auth != NULL && memcmp(u.auth, proof, 32) == 0 &&
	    u.opts.naddrs == PROTO_HELLO_ADDRS_MAX && u.opts.maxreq == 0,
	    "round trip: auth and options together");
	proto_msg_clear(&u);
	free(f);

	/* No options: the HELLO of nodes before them, 6 or 7 elements. */
	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = 1;
	rc = roundtrip(&m, &u, &f, &len);
	ok(rc == 0 && f[4] == 0x96 && proto_hello_opts_empty(&u.opts),
	    "no options: 6 elements, as before");
	proto_msg_clear(&u);
	free(f);
	m.auth = proof;
	rc = roundtrip(&m, &u, &f, &len);
	ok(rc == 0 && f[4] == 0x97 && u.auth != NULL &&
	    proto_hello_opts_empty(&u.opts), "auth alone: 7 elements");
	proto_msg_clear(&u);
	free(f);

	/* One key alone packs 8 elements with nil for auth. */
	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = 1;
	m.opts.has = PROTO_OPT_MAXREQ;
	m.opts.maxreq = 64;
	rc = roundtrip(&m, &u, &f, &len);
	ok(rc == 0 && f[4] == 0x98 && u.auth == NULL &&
	    u.opts.has == PROTO_OPT_MAXREQ && u.opts.maxreq == 64 &&
	    u.opts.naddrs == 0 && u.opts.next == 0,
	    "maxreq alone: 8 elements, nil auth, nothing else set");
	proto_msg_clear(&u);
	free(f);
}

static void
test_pack_limits(void)
{
	proto_peer_entry nine[PROTO_HELLO_ADDRS_MAX + 1];
	proto_hello_ext ext = { "x", 1, PROTO_MSG_EXT_MIN };
	proto_msg m;
	uint8_t *f = NULL;
	size_t len;

	for (size_t i = 0; i < PROTO_HELLO_ADDRS_MAX + 1; i++)
		nine[i] = (proto_peer_entry){ "10.0.0.1", 8, 1, NULL, 0 };
	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = 1;
	m.opts.addrs = nine;
	m.opts.naddrs = PROTO_HELLO_ADDRS_MAX + 1;
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_INVALID,
	    "pack 9 addrs -> INVALID");
	m.opts.naddrs = 1;
	nine[0] = (proto_peer_entry){ "localhost", 9, 1, NULL, 0 };
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_INVALID,
	    "pack an addr that is a name -> INVALID");
	nine[0] = (proto_peer_entry){ "10.0.0.1", 8, 0, NULL, 0 };
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_INVALID,
	    "pack an addr of port 0 -> INVALID");
	m.opts.naddrs = 0;
	m.opts.has = PROTO_OPT_SEEN;
	m.opts.seen = (proto_peer_entry){ "10.0.0.256", 10, 1, NULL, 0 };
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_INVALID,
	    "pack seen 10.0.0.256 -> INVALID");
	m.opts.has = PROTO_OPT_MAXFRAME;
	m.opts.maxframe = PROTO_HELLO_MAXFRAME_MIN - 1;
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_INVALID,
	    "pack maxframe 4095 -> INVALID");
	m.opts.has = 0;
	m.opts.ext = &ext;
	m.opts.next = 1;
	ext.type = PROTO_MSG_EXT_MIN - 1;
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_INVALID,
	    "pack ext type 63 -> INVALID");
	ext.type = PROTO_MSG_EXT_MAX + 1;
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_INVALID,
	    "pack ext type 128 -> INVALID");
	ext.type = PROTO_MSG_EXT_MIN;
	ext.name_len = PROTO_EXT_NAME_MAX + 1;
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_INVALID,
	    "pack ext name of 33 bytes -> INVALID");
	ext.name_len = 0;
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_INVALID,
	    "pack ext name empty -> INVALID");
}

/* Keys that must be left out, each beside a good "maxreq" 5 that must
 * still count. */
static void
test_left_out(void)
{
	static const struct {
		const char *key;
		const char *why;
	} bad[] = {
		{ "'vmin' 'x'", "vmin a str" },
		{ "'vmin' ff", "vmin negative" },
		{ "'vmin' cf 00 00 00 01 00 00 00 00", "vmin over uint32" },
		{ "'vmin' 02", "vmin above the version (1)" },
		{ "'maxframe' cd 0f ff", "maxframe 4095" },
		{ "'maxframe' cb 40 00 00 00 00 00 00 00", "maxframe a float" },
		{ "'seen' 'x'", "seen a str" },
		{ "'seen' 91 '1.2.3.4'", "seen of one element" },
		{ "'seen' 92 'localhost' 01", "seen a name" },
		{ "'seen' 92 '1.2.3.4' 00", "seen port 0" },
		{ "'seen' 92 '1.2.3.4' ce 00 01 00 00", "seen port 65536" },
		{ "'seen' 92 c4 04 01 02 03 04 01", "seen host a bin" },
		{ "'seen' 92 '' 01", "seen host empty" },
		{ "'mapped' 'x'", "mapped a str" },
		{ "'mapped' 92 'localhost' 01", "mapped a name" },
		{ "'mapped' 92 '1.2.3.4' 00", "mapped port 0" },
		{ "'relay' 00", "relay port 0" },
		{ "'relay' ce 00 01 00 00", "relay port 65536" },
		{ "'relay' 'x'", "relay a str" },
		{ "'addrs' 81 01 02", "addrs a map" },
		{ "'addrs' 99 92 '1.1.1.1' 01 92 '1.1.1.1' 01 92 '1.1.1.1' 01 "
		  "92 '1.1.1.1' 01 92 '1.1.1.1' 01 92 '1.1.1.1' 01 "
		  "92 '1.1.1.1' 01 92 '1.1.1.1' 01 92 '1.1.1.1' 01",
		  "addrs of 9 entries" },
		{ "'ext' 91 01", "ext an array" },
		{ "'ext' 81 'a' 3f", "ext type 63" },
		{ "'ext' 81 'a' cc 80", "ext type 128" },
		{ "'ext' 81 '' 40", "ext name empty" },
		{ "'ext' 81 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' 40",
		  "ext name of 33 bytes" },
		{ "'ext' 81 c4 01 61 40", "ext name a bin" },
		{ "'ext' 81 'a' 'b'", "ext type a str" },
		{ "'ext' 8f 'a' 40 'b' 40 'c' 40 'd' 40 'e' 40 'f' 40 'g' 40 "
		  "'h' 40 'i' 40 'j' 40 'k' 40 'l' 40 'm' 40 'n' 40 'o' 40",
		  "(control: ext of 15 entries, kept)" },
		{ "'ext' de 00 11 'a' 40 'b' 40 'c' 40 'd' 40 'e' 40 'f' 40 "
		  "'g' 40 'h' 40 'i' 40 'j' 40 'k' 40 'l' 40 'm' 40 'n' 40 "
		  "'o' 40 'p' 40 'q' 40", "ext of 17 entries" },
		{ "'unknown' 92 01 81 'x' 'y'", "an unknown key" },
		{ "01 02", "a uint key" },
		{ "c0 'vmin'", "a nil key" },
		{ "'VMIN' 01", "a key of another case" },
	};
	char text[2000];
	proto_msg m;
	uint8_t *keep;
	int rc;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int control = bad[i].why[0] == '(';
		snprintf(text, sizeof(text), "82 'maxreq' 05 %s", bad[i].key);
		rc = unpack_opts(text, &m, &keep);
		ok(rc == 0 && m.opts.has == PROTO_OPT_MAXREQ &&
		    m.opts.maxreq == 5 && m.opts.naddrs == 0 &&
		    (control ? m.opts.next == 15 : m.opts.next == 0),
		    "left out: %s; maxreq still 5", bad[i].why);
		if (rc == 0)
			proto_msg_clear(&m);
		free(keep);
	}
}

static void
test_accepted(void)
{
	proto_msg m;
	uint8_t *keep;
	int rc;

	rc = unpack_opts("84 'maxreq' cf 00 00 01 00 00 00 00 00 'maxframe' "
	    "cf 00 00 00 01 00 00 00 00 'vmin' 00 'seen' 93 '10.1.2.3' 01 c0",
	    &m, &keep);
	ok(rc == 0 && m.opts.maxreq == UINT32_MAX &&
	    m.opts.maxframe == UINT32_MAX && m.opts.vmin == 0 &&
	    (m.opts.has & PROTO_OPT_VMIN) &&
	    entry_is(&m.opts.seen, "10.1.2.3", 1),
	    "maxreq and maxframe past uint32 taken as UINT32_MAX; vmin 0; seen "
	    "with a 3rd element");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_opts("81 'relay' cd 1b bc", &m, &keep);
	ok(rc == 0 && m.opts.has == PROTO_OPT_RELAY && m.opts.relay == 7100,
	    "relay 7100");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_opts("81 'maxframe' cd 10 00", &m, &keep);
	ok(rc == 0 && m.opts.has == PROTO_OPT_MAXFRAME &&
	    m.opts.maxframe == 4096, "maxframe exactly 4096");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_opts("81 'addrs' 94 92 '1.2.3.4' 01 92 'example.com' 02 "
	    "92 '::ffff:1.2.3.4' 03 'junk'", &m, &keep);
	ok(rc == 0 && m.opts.naddrs == 2 &&
	    entry_is(&m.opts.addrs[0], "1.2.3.4", 1) &&
	    entry_is(&m.opts.addrs[1], "::ffff:1.2.3.4", 3),
	    "addrs: a name and a non-entry skipped, the rest kept");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_opts("81 'ext' 84 'a' 40 'b' 3f 'a' 41 'c' 7f", &m, &keep);
	ok(rc == 0 && m.opts.next == 2 && ext_is(&m.opts.ext[0], "a", 64) &&
	    ext_is(&m.opts.ext[1], "c", 127),
	    "ext: a number out of range skipped, a name twice: the first");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_opts("82 'maxreq' 01 'maxreq' 'x'", &m, &keep);
	ok(rc == 0 && m.opts.has == 0,
	    "a key twice: the later counts (here, left out)");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_opts("82 'maxreq' 'x' 'maxreq' 02", &m, &keep);
	ok(rc == 0 && m.opts.has == PROTO_OPT_MAXREQ && m.opts.maxreq == 2,
	    "a key twice: the later counts (here, 2)");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_opts("81 'maxreq' c0", &m, &keep);
	ok(rc == 0 && m.opts.has == 0, "maxreq nil: left out");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_opts("80", &m, &keep);
	ok(rc == 0 && proto_hello_opts_empty(&m.opts), "an empty map");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_opts("92 01 02", &m, &keep);
	ok(rc == 0 && proto_hello_opts_empty(&m.opts) && m.version == 1,
	    "an 8th element that is not a map: no options, the HELLO stands");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_text("99 00 01 00 'a' 00 00 c0 81 'maxreq' 03 81 'x' 01",
	    &m, &keep);
	ok(rc == 0 && m.opts.maxreq == 3,
	    "elements past the 8th are ignored");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_text("98 00 01 00 'a' 00 00 c4 20 "
	    "00000000000000000000000000000000000000000000000000000000000000ff "
	    "81 'maxreq' 03", &m, &keep);
	ok(rc == 0 && m.auth != NULL && m.auth[31] == 0xff &&
	    m.opts.maxreq == 3, "auth and options");
	proto_msg_clear(&m);
	free(keep);

	rc = unpack_text("98 00 02 00 'a' 00 00 c0 81 'vmin' 01", &m, &keep);
	ok(rc == 0 && m.version == 2 && (m.opts.has & PROTO_OPT_VMIN) &&
	    m.opts.vmin == 1, "version 2 with vmin 1 unpacks");
	proto_msg_clear(&m);
	free(keep);
}

/* HELLOs of the nodes before the options still decode, with none. */
static void
test_old_hellos(void)
{
	static const struct {
		const char *body;
		const char *why;
	} old[] = {
		{ "95 00 01 00 'p2p_ref' 00", "5 elements (p2p_ref, no nfiles)" },
		{ "96 00 01 00 'a' cd 1f 90 00", "6 elements" },
		{ "97 00 01 00 'a' cd 1f 90 00 c4 20 "
		  "0000000000000000000000000000000000000000000000000000000000000000",
		  "7 elements (auth)" },
		{ "97 00 01 00 'a' cd 1f 90 00 c0", "7 elements, nil" },
	};
	proto_msg m;
	uint8_t *keep;

	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
		int rc = unpack_text(old[i].body, &m, &keep);
		ok(rc == 0 && m.type == PROTO_MSG_HELLO && m.version == 1 &&
		    proto_hello_opts_empty(&m.opts),
		    "old HELLO: %s decodes, no options", old[i].why);
		if (rc == 0)
			proto_msg_clear(&m);
		free(keep);
	}
}

static int
frame_is(const proto_msg *m, const char *hex, const char *name)
{
	uint8_t want[512];
	uint8_t *f = NULL;
	size_t n = body_of(hex, want, sizeof(want)), len = 0;
	int good;

	if (proto_msg_pack(m, &f, &len) != 0)
		len = 0;
	good = is_int(len, n, name) && is_mem(f, want, n, name);
	if (!good && len > 0) {
		char got[3 * 512 + 1];
		for (size_t i = 0; i < len && i < 512; i++)
			snprintf(got + 3 * i, 4, "%02x ", f[i]);
		diag("proto_msg_pack produced: %s", got);
	}
	free(f);
	return good;
}

/* The examples of PROTOCOL.md section 5, byte for byte. */
static void
test_examples(void)
{
	static const proto_hello_ext ext = { "ut_demo", 7, 64 };
	static const proto_peer_entry addr = { "192.0.2.7", 9, 8080, NULL, 0 };
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = 1;
	m.caps = 1;
	m.text = "a";
	m.text_len = 1;
	m.listen_port = 8080;
	m.nfiles = 1;
	m.opts.has = PROTO_OPT_VMIN | PROTO_OPT_MAXREQ | PROTO_OPT_MAXFRAME |
	    PROTO_OPT_SEEN;
	m.opts.vmin = 1;
	m.opts.maxreq = 64;
	m.opts.maxframe = 16777216;
	m.opts.seen = (proto_peer_entry){ "10.0.0.9", 8, 40000, NULL, 0 };
	frame_is(&m,
	    "00 00 00 3a  98 00 01 01 a1 61 cd 1f 90 01 c0 84 "
	    "a4 76 6d 69 6e 01 "
	    "a6 6d 61 78 72 65 71 40 "
	    "a8 6d 61 78 66 72 61 6d 65 ce 01 00 00 00 "
	    "a4 73 65 65 6e 92 a8 31 30 2e 30 2e 30 2e 39 cd 9c 40",
	    "PROTOCOL.md 5: HELLO with vmin, maxreq, maxframe and seen");

	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = 1;
	m.text = "b";
	m.text_len = 1;
	m.listen_port = 8080;
	m.opts.addrs = &addr;
	m.opts.naddrs = 1;
	m.opts.ext = &ext;
	m.opts.next = 1;
	frame_is(&m,
	    "00 00 00 2f  98 00 01 00 a1 62 cd 1f 90 00 c0 82 "
	    "a5 61 64 64 72 73 91 92 a9 31 39 32 2e 30 2e 32 2e 37 cd 1f 90 "
	    "a3 65 78 74 81 a7 75 74 5f 64 65 6d 6f 40",
	    "PROTOCOL.md 5: HELLO with addrs and ext");

	{
		static const proto_peer_entry ext_addr = { "5.5.5.1", 7, 7000,
		    NULL, 0 };
		proto_msg_init(&m, PROTO_MSG_HELLO);
		m.version = 1;
		m.text = "c";
		m.text_len = 1;
		m.listen_port = 7000;
		m.opts.addrs = &ext_addr;
		m.opts.naddrs = 1;
		m.opts.has = PROTO_OPT_MAPPED;
		m.opts.mapped = ext_addr;
		frame_is(&m,
		    "00 00 00 32  98 00 01 00 a1 63 cd 1b 58 00 c0 82 "
		    "a5 61 64 64 72 73 91 92 a7 35 2e 35 2e 35 2e 31 cd 1b 58 "
		    "a6 6d 61 70 70 65 64 92 a7 35 2e 35 2e 35 2e 31 cd 1b 58",
		    "PROTOCOL.md 5: HELLO with addrs and mapped");
	}
}

int
main(void)
{
	test_roundtrip();
	test_pack_limits();
	test_left_out();
	test_accepted();
	test_old_hellos();
	test_examples();
	return done_testing();
}
