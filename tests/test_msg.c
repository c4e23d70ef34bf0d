/*
 * msg.c: every message type through proto_msg_pack, proto_frame_parse and
 * proto_msg_unpack; hand-written bodies with wrong element types and short
 * arrays; unknown types; the encoding examples of PROTOCOL.md section 5;
 * and the CHUNK header that precedes sendfile data.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto.h"
#include "frame.h"
#include "tap.h"

static uint8_t id_a[32], id_b[32], id_c[32];

/* Packs m, parses the frame, and unpacks its body into out. Returns the
 * unpack result (or a parse error); *frame is the caller's to free after
 * out is cleared (out borrows from it). */
static int
roundtrip(const proto_msg *m, proto_msg *out, uint8_t **frame)
{
	size_t len = 0;
	long n;
	int rc;

	*frame = NULL;
	proto_msg_init(out, 0);
	if ((rc = proto_msg_pack(m, frame, &len)) != 0) {
		diag("pack: %s", proto_strerror(rc));
		return rc;
	}
	n = proto_frame_parse(*frame, len, PROTO_FRAME_MAX);
	if (n != (long)len) {
		diag("frame_parse gave %ld for a frame of %zu", n, len);
		return n < 0 ? (int)n : PROTO_ERR_MALFORMED;
	}
	return proto_msg_unpack(*frame + PROTO_FRAME_HEADER,
	    len - PROTO_FRAME_HEADER, out);
}

/*
 * A body from a compact text: hex bytes separated by spaces, and tokens
 * IDn (a bin of n bytes of 0x11; ID alone is 32), Sn (a str of n 'x').
 */
static size_t
body_of(const char *text, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (*text) {
		if (*text == ' ') {
			text++;
			continue;
		}
		if (text[0] == 'I' && text[1] == 'D') {
			char *end = (char *)text + 2;
			unsigned long k = 32;
			if (isdigit((unsigned char)text[2]))
				k = strtoul(text + 2, &end, 10);
			out[n++] = 0xc4;
			out[n++] = (uint8_t)k;
			memset(out + n, 0x11, k);
			n += k;
			text = end;
		} else if (text[0] == 'S') {
			char *end;
			unsigned long k;
			if (!isdigit((unsigned char)text[1])) {
				fprintf(stderr, "bad S token at %s\n", text);
				exit(2);
			}
			k = strtoul(text + 1, &end, 10);
			if (k < 32)
				out[n++] = (uint8_t)(0xa0 | k);
			else if (k < 256) {
				out[n++] = 0xd9;
				out[n++] = (uint8_t)k;
			} else {
				out[n++] = 0xda;
				out[n++] = (uint8_t)(k >> 8);
				out[n++] = (uint8_t)k;
			}
			memset(out + n, 'x', k);
			n += k;
			text = end;
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

/* Unpacks the body described by text (after checking it as a frame body,
 * as every receiver does), into m. */
static int
unpack_text(const char *text, proto_msg *m)
{
	static uint8_t body[4096];
	size_t n = body_of(text, body, sizeof(body));
	uint8_t *copy = malloc(n);
	int rc;

	if (copy == NULL)
		exit(2);
	memcpy(copy, body, n);
	proto_msg_init(m, 0);
	if ((rc = proto_frame_check_body(copy, n)) != 0) {
		diag("body '%s' fails the frame check: %s", text,
		    proto_strerror(rc));
		free(copy);
		return 1000 + rc;
	}
	rc = proto_msg_unpack(copy, n, m);
	/* Only the fields that do not borrow from the body are used after. */
	if (rc == 0) {
		m->text = NULL;
		m->id = NULL;
		m->data = NULL;
		m->entries = NULL;
		proto_msg_clear(m);
	}
	free(copy);
	return rc;
}

static proto_manifest *
make_manifest(size_t size, size_t cs, const char *path)
{
	proto_manifest *mf = NULL;
	int fd = memfd_create("test_msg", 0);
	uint8_t *data = malloc(size + 1);

	if (fd < 0 || data == NULL)
		exit(2);
	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	if (write(fd, data, size) != (ssize_t)size ||
	    proto_manifest_build_fd(fd, "file.bin", path, cs, &mf) != 0) {
		fprintf(stderr, "make_manifest failed\n");
		exit(2);
	}
	close(fd);
	free(data);
	return mf;
}

static void
test_roundtrip(void)
{
	proto_msg m, u;
	uint8_t *f;
	char longname[100];
	char longtext[300];
	proto_list_entry ents[3] = {
		{ .id = id_a, .size = 0, .name = "empty", .name_len = 5 },
		{ .id = id_b, .size = UINT64_MAX, .name = "huge.iso",
		    .name_len = 8 },
		{ .id = id_c, .size = 16385, .name = "x", .name_len = 1 },
	};
	proto_manifest *mf;
	int rc, good;

	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = 1;
	m.caps = 0x123456789abcdefull;
	m.text = "node-a";
	m.text_len = 6;
	m.listen_port = 65535;
	m.rid = 99; /* HELLO carries no rid */
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_HELLO && u.version == 1 &&
	    u.caps == m.caps && u.text_len == 6 &&
	    memcmp(u.text, "node-a", 6) == 0 && u.listen_port == 65535 &&
	    u.rid == 0, "round trip HELLO (caps 64-bit, port 65535, no rid)");
	proto_msg_clear(&u);
	free(f);

	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = 1;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_HELLO && u.text_len == 0 &&
	    u.listen_port == 0, "round trip HELLO empty name (text NULL, len 0)");
	proto_msg_clear(&u);
	free(f);

	memset(longname, 'n', sizeof(longname));
	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = 1;
	m.text = longname;
	m.text_len = sizeof(longname);
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.text_len == PROTO_NODE_NAME_MAX,
	    "HELLO name over 64 bytes is cut to 64 when packed");
	proto_msg_clear(&u);
	free(f);

	proto_msg_init(&m, PROTO_MSG_ERROR);
	m.rid = 42;
	m.code = PROTO_CODE_NOT_FOUND;
	m.text = "no such id";
	m.text_len = 10;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_ERROR && u.rid == 42 &&
	    u.code == PROTO_CODE_NOT_FOUND && u.text_len == 10 &&
	    memcmp(u.text, "no such id", 10) == 0, "round trip ERROR");
	proto_msg_clear(&u);
	free(f);

	memset(longtext, 't', sizeof(longtext));
	m.text = longtext;
	m.text_len = sizeof(longtext);
	m.code = UINT32_MAX;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.text_len == PROTO_ERROR_TEXT_MAX && u.code == UINT32_MAX,
	    "ERROR text over 255 bytes is cut to 255; code UINT32_MAX");
	proto_msg_clear(&u);
	free(f);

	proto_msg_init(&m, PROTO_MSG_LIST);
	m.rid = UINT32_MAX;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_LIST && u.rid == UINT32_MAX,
	    "round trip LIST (rid UINT32_MAX)");
	proto_msg_clear(&u);
	free(f);

	proto_msg_init(&m, PROTO_MSG_LIST_REPLY);
	m.rid = 7;
	m.entries = ents;
	m.nentries = 3;
	rc = roundtrip(&m, &u, &f);
	good = rc == 0 && u.type == PROTO_MSG_LIST_REPLY && u.rid == 7 &&
	    u.nentries == 3;
	for (size_t i = 0; good && i < 3; i++)
		good = memcmp(u.entries[i].id, ents[i].id, 32) == 0 &&
		    u.entries[i].size == ents[i].size &&
		    u.entries[i].name_len == ents[i].name_len &&
		    memcmp(u.entries[i].name, ents[i].name, ents[i].name_len) == 0;
	ok(good, "round trip LIST_REPLY with 3 entries (size 0, UINT64_MAX)");
	proto_msg_clear(&u);
	free(f);

	m.nentries = 0;
	m.entries = NULL;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_LIST_REPLY && u.nentries == 0,
	    "round trip LIST_REPLY empty");
	proto_msg_clear(&u);
	free(f);

	proto_msg_init(&m, PROTO_MSG_GET_MANIFEST);
	m.rid = 128;
	m.id = id_b;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_GET_MANIFEST && u.rid == 128 &&
	    u.id != NULL && memcmp(u.id, id_b, 32) == 0,
	    "round trip GET_MANIFEST");
	proto_msg_clear(&u);
	free(f);

	mf = make_manifest(100000, 32768, "/srv/file.bin");
	proto_msg_init(&m, PROTO_MSG_MANIFEST);
	m.rid = 5;
	m.manifest = mf;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_MANIFEST && u.rid == 5 &&
	    u.manifest != NULL && memcmp(u.manifest->id, mf->id, 32) == 0 &&
	    u.manifest->size == 100000 && u.manifest->chunk_size == 32768 &&
	    u.manifest->nchunks == 4 &&
	    memcmp(u.manifest->chunks, mf->chunks, 4 * 32) == 0 &&
	    strcmp(u.manifest->name, "file.bin") == 0,
	    "round trip MANIFEST");
	ok(rc == 0 && u.manifest && u.manifest->path == NULL,
	    "MANIFEST message never carries \"path\"");
	proto_msg_clear(&u);
	ok(u.manifest == NULL, "msg_clear frees the unpacked manifest");
	free(f);

	rc = roundtrip(&m, &u, &f);
	if (rc == 0) {
		proto_manifest *taken = u.manifest;
		u.manifest = NULL; /* the caller takes it */
		proto_msg_clear(&u);
		ok(taken && taken->nchunks == 4,
		    "MANIFEST: taken manifest outlives msg_clear");
		proto_manifest_free(taken);
	} else
		ok(0, "MANIFEST: taken manifest outlives msg_clear");
	free(f);

	proto_msg_init(&m, PROTO_MSG_GET_CHUNK);
	m.rid = 70000;
	m.id = id_c;
	m.index = 1ull << 40;
	m.chunk_size = 65536;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_GET_CHUNK && u.rid == 70000 &&
	    memcmp(u.id, id_c, 32) == 0 && u.index == 1ull << 40 &&
	    u.chunk_size == 65536, "round trip GET_CHUNK (index 2^40)");
	proto_msg_clear(&u);
	free(f);

	proto_msg_init(&m, PROTO_MSG_CHUNK);
	m.rid = 3;
	m.data = mf->chunks;
	m.data_len = 100;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_CHUNK && u.rid == 3 &&
	    u.data_len == 100 && memcmp(u.data, mf->chunks, 100) == 0,
	    "round trip CHUNK of 100 bytes");
	proto_msg_clear(&u);
	free(f);

	m.data = NULL;
	m.data_len = 0;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_CHUNK && u.data_len == 0,
	    "round trip CHUNK empty (data NULL)");
	proto_msg_clear(&u);
	free(f);
	proto_manifest_free(mf);
}

static void
test_pack_errors(void)
{
	proto_msg m, u;
	uint8_t *f = NULL, *big;
	size_t len = 0;
	int rc;

	proto_msg_init(&m, PROTO_MSG_MANIFEST);
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_INVALID,
	    "pack MANIFEST without a manifest -> INVALID");
	proto_msg_init(&m, PROTO_MSG_TYPE_COUNT);
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_INVALID,
	    "pack unknown type -> INVALID");

	if ((big = calloc(1, PROTO_FRAME_MAX)) == NULL)
		exit(2);
	/* [7, 0, bin32]: 1 + 1 + 1 + 5 bytes around the data. */
	proto_msg_init(&m, PROTO_MSG_CHUNK);
	m.data = big;
	m.data_len = PROTO_FRAME_MAX - 8;
	rc = proto_msg_pack(&m, &f, &len);
	ok(rc == 0 && len == PROTO_FRAME_MAX + 4,
	    "pack exact limit: CHUNK with a body of exactly PROTO_FRAME_MAX");
	if (rc == 0) {
		is_int(proto_frame_parse(f, len, PROTO_FRAME_MAX),
		    (long)len, "giant CHUNK frame at the limit parses");
		is_int(proto_msg_unpack(f + 4, len - 4, &u), PROTO_ERR_MALFORMED,
		    "giant: CHUNK data over PROTO_CHUNK_MAX unpacks MALFORMED");
		free(f);
	}
	m.data_len = PROTO_FRAME_MAX - 7;
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_TOO_BIG,
	    "pack one over the limit: body PROTO_FRAME_MAX + 1 -> TOO_BIG");

	m.data_len = PROTO_CHUNK_MAX;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.data_len == PROTO_CHUNK_MAX,
	    "CHUNK of exactly PROTO_CHUNK_MAX unpacks");
	proto_msg_clear(&u);
	free(f);
	m.data_len = PROTO_CHUNK_MAX + 1;
	rc = roundtrip(&m, &u, &f);
	is_int(rc, PROTO_ERR_MALFORMED, "CHUNK of PROTO_CHUNK_MAX + 1 -> MALFORMED");
	free(f);
	free(big);
}

static void
test_examples(void)
{
	static const uint8_t hello[] = { 0x00, 0x00, 0x00, 0x0a, 0x96, 0x00,
	    0x01, 0x00, 0xa1, 0x61, 0xcd, 0x1f, 0x90, 0x00 };
	uint8_t want[64], *f = NULL, id[32];
	size_t len = 0, n = 0;
	proto_msg m;
	char hex[3 * 64 + 1];

	proto_msg_init(&m, PROTO_MSG_HELLO);
	m.version = 1;
	m.text = "a";
	m.text_len = 1;
	m.listen_port = 8080;
	if (proto_msg_pack(&m, &f, &len) != 0)
		len = 0;
	for (size_t i = 0; i < len && i < 64; i++)
		snprintf(hex + 3 * i, 4, "%02x ", f[i]);
	if (len == 0)
		hex[0] = '\0';
	is_int(len, sizeof(hello), "PROTOCOL.md 5: HELLO frame is 14 bytes");
	if (!is_mem(f, hello, len < sizeof(hello) ? len : sizeof(hello),
	    "PROTOCOL.md 5: HELLO \"a\" port 8080 = 00 00 00 0a 96 00 01 00 a1 "
	    "61 cd 1f 90 00"))
		diag("proto_msg_pack produced: %s", hex);
	free(f);

	/* GET_CHUNK rid 7, chunk 3 at 65536:
	 * 95 06 07 c4 20 <32 id bytes> 03 ce 00 01 00 00, frame length 43. */
	for (int i = 0; i < 32; i++)
		id[i] = (uint8_t)(0xa0 + i);
	proto_frame_put_len(want, 43);
	n = 4;
	memcpy(want + n, "\x95\x06\x07\xc4\x20", 5);
	n += 5;
	memcpy(want + n, id, 32);
	n += 32;
	memcpy(want + n, "\x03\xce\x00\x01\x00\x00", 6);
	n += 6;
	proto_msg_init(&m, PROTO_MSG_GET_CHUNK);
	m.rid = 7;
	m.id = id;
	m.index = 3;
	m.chunk_size = 65536;
	if (proto_msg_pack(&m, &f, &len) != 0)
		len = 0;
	is_int(len, n, "PROTOCOL.md 5: GET_CHUNK frame is 4 + 43 bytes");
	is_mem(f, want, len < n ? len : n,
	    "PROTOCOL.md 5: GET_CHUNK rid 7 chunk 3 at 65536 bytes");
	free(f);
}

static void
test_chunk_header(void)
{
	static const uint32_t rids[] = { 0, 127, 128, 200, 255, 256, 65535,
	    65536, 70000, UINT32_MAX };
	static const size_t want_len[] = { 12, 12, 13, 13, 13, 14, 14, 16, 16,
	    16 };
	static const uint32_t lens[] = { 0, 5, 70000 };
	uint8_t hdr[PROTO_CHUNK_HEADER_MAX];

	for (size_t r = 0; r < sizeof(rids) / sizeof(rids[0]); r++) {
		size_t hlen = proto_msg_chunk_header(rids[r], 5, hdr);
		ok(hlen == want_len[r] && hlen <= PROTO_CHUNK_HEADER_MAX,
		    "chunk_header rid %u: %zu bytes (want %zu)", rids[r], hlen,
		    want_len[r]);
		for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			size_t total;
			uint8_t *f;
			proto_msg u;
			long n;
			int rc;

			hlen = proto_msg_chunk_header(rids[r], lens[l], hdr);
			total = hlen + lens[l];
			if ((f = malloc(total)) == NULL)
				exit(2);
			memcpy(f, hdr, hlen);
			for (size_t i = 0; i < lens[l]; i++)
				f[hlen + i] = (uint8_t)(i ^ r);
			n = proto_frame_parse(f, total, PROTO_FRAME_MAX);
			rc = n == (long)total ? proto_msg_unpack(f + 4, total - 4,
			    &u) : -100;
			ok(rc == 0 && u.type == PROTO_MSG_CHUNK &&
			    u.rid == rids[r] && u.data_len == lens[l] &&
			    (lens[l] == 0 ||
			    memcmp(u.data, f + hlen, lens[l]) == 0),
			    "chunk_header rid %u + %u data bytes unpacks as that "
			    "CHUNK", rids[r], lens[l]);
			if (rc == 0)
				proto_msg_clear(&u);
			free(f);
		}
	}
}

static void
test_malformed(void)
{
	static const struct {
		const char *body;
		const char *why;
	} bad[] = {
		{ "80", "body is a map, not an array" },
		{ "90", "empty array (no type)" },
		{ "05", "body is a scalar" },
		{ "92 ff 00", "type negative" },
		{ "92 a1 30 00", "type is a str" },
		{ "92 c0 00", "type is nil" },
		{ "92 cf 00 00 00 01 00 00 00 00 00", "type over uint32" },
		{ "94 00 01 00 a1 61", "short: HELLO of 4 elements" },
		{ "95 00 a1 31 00 a1 61 00", "HELLO version is a str" },
		{ "95 00 ff 00 a1 61 00", "HELLO version negative" },
		{ "95 00 cf 00 00 00 01 00 00 00 00 00 a1 61 00",
		  "HELLO version over uint32" },
		{ "95 00 01 a0 a1 61 00", "HELLO caps is a str" },
		{ "95 00 01 00 c4 01 61 00", "HELLO name is a bin" },
		{ "95 00 01 00 S65 00", "HELLO name of 65 bytes" },
		{ "95 00 01 00 a1 61 ce 00 01 00 00", "HELLO port 65536" },
		{ "95 00 01 00 a1 61 ff", "HELLO port negative" },
		{ "95 00 01 00 a1 61 c0", "HELLO port nil" },
		{ "93 01 00 01", "short: ERROR of 3 elements" },
		{ "94 01 a1 31 01 a0", "ERROR rid is a str" },
		{ "94 01 cf 00 00 00 01 00 00 00 00 01 a0", "ERROR rid over uint32" },
		{ "94 01 00 a1 31 a0", "ERROR code is a str" },
		{ "94 01 00 01 c4 00", "ERROR text is a bin" },
		{ "94 01 00 01 S256", "ERROR text of 256 bytes" },
		{ "91 02", "short: LIST without rid" },
		{ "92 02 ff", "LIST rid negative" },
		{ "92 02 c0", "LIST rid nil" },
		{ "92 03 00", "short: LIST_REPLY without entries" },
		{ "93 03 00 80", "LIST_REPLY entries is a map" },
		{ "93 03 00 91 01", "LIST_REPLY entry is not an array" },
		{ "93 03 00 91 92 ID 01", "short: LIST_REPLY entry of 2" },
		{ "93 03 00 91 93 ID31 01 a1 61", "LIST_REPLY entry id of 31 bytes" },
		{ "93 03 00 91 93 S32 01 a1 61", "LIST_REPLY entry id is a str" },
		{ "93 03 00 91 93 ID a1 31 a1 61", "LIST_REPLY entry size is a str" },
		{ "93 03 00 91 93 ID ff a1 61", "LIST_REPLY entry size negative" },
		{ "93 03 00 91 93 ID 01 a0", "LIST_REPLY entry name empty" },
		{ "93 03 00 91 93 ID 01 S256", "LIST_REPLY entry name 256 bytes" },
		{ "93 03 00 92 93 ID 01 a1 61 93 ID 01 c4 01 61",
		  "LIST_REPLY second entry name is a bin" },
		{ "92 04 00", "short: GET_MANIFEST without id" },
		{ "93 04 00 S32", "GET_MANIFEST id is a str" },
		{ "93 04 00 ID31", "GET_MANIFEST id of 31 bytes" },
		{ "93 04 00 ID33", "GET_MANIFEST id of 33 bytes" },
		{ "92 05 00", "short: MANIFEST without manifest" },
		{ "93 05 00 90", "MANIFEST manifest is an array" },
		{ "93 05 00 80", "MANIFEST manifest is an empty map" },
		{ "94 06 00 ID 03", "short: GET_CHUNK of 4 (no chunk_size)" },
		{ "95 06 00 ID a1 33 cd 40 00", "GET_CHUNK index is a str" },
		{ "95 06 00 ID ff cd 40 00", "GET_CHUNK index negative" },
		{ "95 06 00 ID33 03 cd 40 00", "GET_CHUNK id of 33 bytes" },
		{ "95 06 00 ID 03 ce 00 40 00 01",
		  "GET_CHUNK chunk_size over PROTO_CHUNK_MAX" },
		{ "95 06 00 ID 03 a1 31", "GET_CHUNK chunk_size is a str" },
		{ "92 07 00", "short: CHUNK without data" },
		{ "93 07 00 a1 61", "CHUNK data is a str" },
		{ "93 07 00 c0", "CHUNK data nil" },
		{ "91 63", "unknown type without rid" },
		{ "92 0c 01", "short: INTERESTED without id" },
		{ "93 0c 01 ID31", "INTERESTED id of 31 bytes" },
		{ "93 0d 01 cd 40 00", "short: HAVE_MAP without bits" },
		{ "94 0d 01 cd 40 00 a1 80", "HAVE_MAP bits is a str" },
		{ "94 0d 01 cd 30 00 c4 01 80", "HAVE_MAP chunk size not a power of two" },
		{ "94 0d 01 cd 20 00 c4 01 80", "HAVE_MAP chunk size under 16 KiB" },
		{ "94 0d 01 ce 00 80 00 00 c4 01 80", "HAVE_MAP chunk size over 4 MiB" },
		{ "93 0e 00 ID", "short: HAVE without index" },
		{ "94 0e 00 ID ce 01 00 00 00", "HAVE index past the most chunks" },
		{ "94 0e 00 ID31 01", "HAVE id of 31 bytes" },
		{ "91 0f", "short: CANCEL without rid" },
	};
	proto_msg m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = unpack_text(bad[i].body, &m);
		ok(rc == PROTO_ERR_MALFORMED && m.manifest == NULL,
		    "malformed: %s -> MALFORMED", bad[i].why);
		if (rc != PROTO_ERR_MALFORMED)
			diag("  got %d for %s", rc, bad[i].body);
	}
}

static void
test_accepted(void)
{
	proto_msg m;
	int rc;

	rc = unpack_text("95 00 01 00 S64 cd 1f 90", &m);
	is_int(rc, 0, "HELLO exact limit: name of 64 bytes");
	rc = unpack_text("96 00 01 00 a1 61 00 93 01 02 03", &m);
	is_int(rc, 0, "HELLO with an extra element (extension) accepted");
	rc = unpack_text("95 00 02 00 a0 00", &m);
	ok(rc == 0 && m.version == 0,
	    "HELLO version 2 unpacks (the connection rejects it)");
	rc = unpack_text("94 01 00 01 S255", &m);
	is_int(rc, 0, "ERROR exact limit: text of 255 bytes");
	rc = unpack_text("93 02 05 c0", &m);
	is_int(rc, 0, "LIST with an extra element accepted");
	rc = unpack_text("93 03 00 91 94 ID 01 a1 61 c0", &m);
	is_int(rc, 0, "LIST_REPLY entry with a 4th element accepted");
	rc = unpack_text("93 03 00 91 93 ID 01 S255", &m);
	is_int(rc, 0, "LIST_REPLY exact limit: name of 255 bytes");
	rc = unpack_text("95 06 00 ID 03 ce 00 40 00 00", &m);
	is_int(rc, 0, "GET_CHUNK exact limit: chunk_size = PROTO_CHUNK_MAX");

	proto_msg_init(&m, 0);
	{
		uint8_t body[] = { 0x92, 0x63, 0x07 };
		rc = proto_msg_unpack(body, sizeof(body), &m);
		ok(rc == 0 && m.type == 99 && m.rid == 7,
		    "unknown type 99 unpacks with type and rid set");
		if (rc == 0)
			proto_msg_clear(&m);
	}
	{
		uint8_t body[] = { 0x93, PROTO_MSG_TYPE_COUNT, 0xcd, 0x12, 0x34,
		    0x81, 0x01, 0x02 };
		rc = proto_msg_unpack(body, sizeof(body), &m);
		ok(rc == 0 && m.type == PROTO_MSG_TYPE_COUNT && m.rid == 0x1234,
		    "unknown type past the last with a map after the rid unpacks");
		if (rc == 0)
			proto_msg_clear(&m);
	}
	{
		uint8_t body[] = { 0x92, 0xce, 0xff, 0xff, 0xff, 0xff, 0x01 };
		rc = proto_msg_unpack(body, sizeof(body), &m);
		ok(rc == 0 && m.type == UINT32_MAX && m.rid == 1,
		    "unknown type UINT32_MAX unpacks");
		if (rc == 0)
			proto_msg_clear(&m);
	}
	{
		uint8_t body[] = { 0x92, 0x02, 0x01, 0x00 };
		is_int(proto_msg_unpack(body, sizeof(body), &m),
		    PROTO_ERR_MALFORMED, "unpack: trailing byte after the array");
		is_int(proto_msg_unpack(body, 2, &m), PROTO_ERR_MALFORMED,
		    "unpack truncated: array of 2 with 1 element");
	}
}

/* A MANIFEST message carrying a manifest whose id does not match. */
static void
test_manifest_in_msg(void)
{
	proto_manifest *mf = make_manifest(50000, 16384, NULL);
	uint8_t *packed, *body;
	size_t plen;
	proto_msg m;

	if (proto_manifest_pack(mf, 0, &packed, &plen) != 0)
		exit(2);
	if ((body = malloc(plen + 3)) == NULL)
		exit(2);
	memcpy(body, "\x93\x05\x09", 3);
	memcpy(body + 3, packed, plen);
	ok(proto_frame_check_body(body, plen + 3) == 0 &&
	    proto_msg_unpack(body, plen + 3, &m) == 0 && m.manifest &&
	    m.rid == 9 && m.manifest->size == 50000,
	    "hand-made MANIFEST message unpacks");
	proto_msg_clear(&m);
	body[3 + plen - 1] ^= 1; /* last byte of the chunk layer */
	is_int(proto_msg_unpack(body, plen + 3, &m), PROTO_ERR_MISMATCH,
	    "MANIFEST message with a flipped chunk hash -> MISMATCH");
	ok(m.manifest == NULL && m.type == 0, "failed unpack leaves m clear");
	free(body);
	free(packed);
	proto_manifest_free(mf);
}

/* The swarm messages: INTERESTED, HAVE_MAP, HAVE, CANCEL. */
/* The examples of PROTOCOL.md section 5 for HAVE_MAP and CANCEL. */
static void
test_swarm_examples(void)
{
	static const uint8_t map_frame[] = { 0x00, 0x00, 0x00, 0x09, 0x94, 0x0d,
	    0x02, 0xcd, 0x40, 0x00, 0xc4, 0x01, 0xa0 };
	static const uint8_t cancel_frame[] = { 0x00, 0x00, 0x00, 0x03, 0x92,
	    0x0f, 0x07 };
	static const uint8_t bits[1] = { 0xa0 };
	uint8_t *f = NULL;
	size_t len = 0;
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_HAVE_MAP);
	m.rid = 2;
	m.chunk_size = 16384;
	m.bits = bits;
	m.bits_len = 1;
	ok(proto_msg_pack(&m, &f, &len) == 0 && len == sizeof(map_frame) &&
	    memcmp(f, map_frame, len) == 0,
	    "PROTOCOL.md 5: HAVE_MAP = 00 00 00 09 94 0d 02 cd 40 00 c4 01 a0");
	free(f);
	proto_msg_init(&m, PROTO_MSG_CANCEL);
	m.rid = 7;
	ok(proto_msg_pack(&m, &f, &len) == 0 && len == sizeof(cancel_frame) &&
	    memcmp(f, cancel_frame, len) == 0,
	    "PROTOCOL.md 5: CANCEL = 00 00 00 03 92 0f 07");
	free(f);
	{
		static const uint8_t choke[] = { 0x00, 0x00, 0x00, 0x03, 0x92,
		    0x12, 0x00 };
		static const uint8_t unchoke[] = { 0x00, 0x00, 0x00, 0x03, 0x92,
		    0x13, 0x00 };
		static const uint8_t choke_rid[] = { 0x92, 0x12, 0x05 };
		static const uint8_t choked[] = { 0x00, 0x00, 0x00, 0x0b, 0x94,
		    0x01, 0x05, 0x08, 0xa6, 'c', 'h', 'o', 'k', 'e', 'd' };
		proto_msg u;
		proto_msg_init(&m, PROTO_MSG_CHOKE);
		m.rid = 9; /* a push: always sent with rid 0 */
		ok(proto_msg_pack(&m, &f, &len) == 0 && len == sizeof(choke) &&
		    memcmp(f, choke, len) == 0,
		    "PROTOCOL.md 5: CHOKE = 00 00 00 03 92 12 00");
		ok(proto_msg_unpack(f + 4, len - 4, &u) == 0 &&
		    u.type == PROTO_MSG_CHOKE && u.rid == 0, "CHOKE unpacked");
		proto_msg_clear(&u);
		free(f);
		proto_msg_init(&m, PROTO_MSG_UNCHOKE);
		ok(proto_msg_pack(&m, &f, &len) == 0 &&
		    len == sizeof(unchoke) && memcmp(f, unchoke, len) == 0,
		    "PROTOCOL.md 5: UNCHOKE = 00 00 00 03 92 13 00");
		free(f);
		ok(proto_msg_unpack(choke_rid, sizeof(choke_rid), &u) ==
		    PROTO_ERR_MALFORMED, "CHOKE with a rid other than 0: "
		    "malformed");
		proto_msg_clear(&u);
		proto_msg_init(&m, PROTO_MSG_ERROR);
		m.rid = 5;
		m.code = PROTO_CODE_CHOKED;
		m.text = "choked";
		m.text_len = 6;
		ok(proto_msg_pack(&m, &f, &len) == 0 && len == sizeof(choked) &&
		    memcmp(f, choked, len) == 0, "PROTOCOL.md 5: ERROR CHOKED "
		    "= 00 00 00 0b 94 01 05 08 a6 63 68 6f 6b 65 64");
		free(f);
	}
	{
		static const char text[] = "changed on this node: shared no more";
		static const uint8_t head[] = { 0x00, 0x00, 0x00, 0x2a, 0x94,
		    0x01, 0x05, 0x09, 0xd9, 0x24 };
		proto_msg_init(&m, PROTO_MSG_ERROR);
		m.rid = 5;
		m.code = PROTO_CODE_CHANGED;
		m.text = text;
		m.text_len = sizeof(text) - 1;
		ok(proto_msg_pack(&m, &f, &len) == 0 &&
		    len == sizeof(head) + sizeof(text) - 1 &&
		    memcmp(f, head, sizeof(head)) == 0 &&
		    memcmp(f + sizeof(head), text, sizeof(text) - 1) == 0,
		    "PROTOCOL.md 5: ERROR CHANGED = 00 00 00 2a 94 01 05 09 d9 "
		    "24 'changed on this node: shared no more'");
		free(f);
	}
}

static void
test_swarm_messages(void)
{
	static const uint8_t bits[3] = { 0xa5, 0xff, 0x80 };
	proto_msg m, u;
	uint8_t *f;
	int rc;

	proto_msg_init(&m, PROTO_MSG_INTERESTED);
	m.rid = 7;
	m.id = id_a;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_INTERESTED && u.rid == 7 &&
	    memcmp(u.id, id_a, 32) == 0, "round trip INTERESTED");
	proto_msg_clear(&u);
	free(f);

	proto_msg_init(&m, PROTO_MSG_HAVE_MAP);
	m.rid = 8;
	m.chunk_size = 1u << 20;
	m.bits = bits;
	m.bits_len = sizeof(bits);
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_HAVE_MAP && u.rid == 8 &&
	    u.chunk_size == 1u << 20 && u.bits_len == 3 &&
	    memcmp(u.bits, bits, 3) == 0, "round trip HAVE_MAP");
	proto_msg_clear(&u);
	free(f);

	proto_msg_init(&m, PROTO_MSG_HAVE_MAP);
	m.chunk_size = 16384;
	m.bits_len = PROTO_MAX_CHUNKS / 8 + 1;
	m.bits = bits;
	ok(proto_msg_pack(&m, &f, &(size_t){ 0 }) == PROTO_ERR_TOO_BIG,
	    "pack HAVE_MAP of more bits than the most chunks -> TOO_BIG");

	proto_msg_init(&m, PROTO_MSG_HAVE);
	m.rid = 99; /* a push: always sent with rid 0 */
	m.id = id_b;
	m.index = PROTO_MAX_CHUNKS - 1;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_HAVE && u.rid == 0 &&
	    memcmp(u.id, id_b, 32) == 0 && u.index == PROTO_MAX_CHUNKS - 1,
	    "round trip HAVE (rid 0, the last chunk index)");
	proto_msg_clear(&u);
	free(f);

	proto_msg_init(&m, PROTO_MSG_CANCEL);
	m.rid = 0xfffffffe;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.type == PROTO_MSG_CANCEL && u.rid == 0xfffffffe,
	    "round trip CANCEL");
	proto_msg_clear(&u);
	free(f);
}

static void
test_type_names(void)
{
	static const char *const names[] = { "HELLO", "ERROR", "LIST",
	    "LIST_REPLY", "GET_MANIFEST", "MANIFEST", "GET_CHUNK", "CHUNK",
	    "PEERS", "PEERS_REPLY", "HAS", "HAS_REPLY", "INTERESTED", "HAVE_MAP",
	    "HAVE", "CANCEL", "GET_HASHES", "HASHES", "CHOKE", "UNCHOKE",
	    "GET_FILES", "FILES" };

	for (unsigned t = 0; t < PROTO_MSG_TYPE_COUNT; t++)
		is_str(proto_msg_type_name(t), names[t], names[t]);
	is_str(proto_msg_type_name(PROTO_MSG_TYPE_COUNT), "unknown",
	    "type name past the last is \"unknown\"");
	is_str(proto_msg_type_name(UINT32_MAX), "unknown",
	    "type name of UINT32_MAX is \"unknown\"");
}

static void
test_printable(void)
{
	char out[16];
	/* "é" is c3 a9 and "ā" is c4 81: UTF-8, kept; c2 85 is U+0085 (NEL). */
	static const char text[] = "a\tb\x1b[2J\x7f\xc3\xa9\xc4\x81\xc2\x85z";

	proto_msg_printable(out, sizeof(out), text, sizeof(text) - 1);
	is_str(out, "a?b?[2J?\xc3\xa9\xc4\x81?z",
	    "printable: C0, DEL and UTF-8 C1 controls made '?', UTF-8 kept");
	proto_msg_printable(out, 4, "abcdef", 6);
	is_str(out, "abc", "printable: cut to fit, terminated");
	proto_msg_printable(out, 1, "abc", 3);
	is_str(out, "", "printable: room for the terminator only");
	proto_msg_printable(out, sizeof(out), "a\xc2", 2);
	is_str(out, "a\xc2", "printable: a lone lead byte at the end is kept");
}

/* Unpacks the body text into m, which the caller clears; the body is
 * static, valid until the next call. */
static int
unpack_keep(const char *text, proto_msg *m)
{
	static uint8_t body[8192];
	size_t n = body_of(text, body, sizeof(body));

	proto_msg_init(m, 0);
	if (proto_frame_check_body(body, n) != 0)
		return 1000;
	return proto_msg_unpack(body, n, m);
}

/* PEERS asked about one file, and PEERS_REPLY entries with records, as
 * PROTOCOL.md section 4 has them; old forms stay as they were. */
static void
test_peers_messages(void)
{
	static const uint8_t peers[] = { 0x00, 0x00, 0x00, 0x03, 0x92, 0x08,
	    0x01 };
	static const uint8_t reply[] = { 0x00, 0x00, 0x00, 0x11, 0x93, 0x09,
	    0x01, 0x91, 0x92, 0xa8, '1', '0', '.', '0', '.', '0', '.', '5',
	    0xcd, 0x1f, 0x90 };
	static uint8_t rec[PROTO_RECORD_MAX + 1];
	proto_peer_entry e[3] = {
		{ "10.0.0.5", 8, 8080, NULL, 0 },
		{ "::1", 3, 1, rec, 149 },
		{ "10.0.0.6", 8, 65535, rec, PROTO_RECORD_MAX },
	};
	uint8_t *f = NULL;
	size_t len = 0;
	proto_msg m, u;
	int rc;

	for (size_t i = 0; i < sizeof(rec); i++)
		rec[i] = (uint8_t)(i * 7);
	proto_msg_init(&m, PROTO_MSG_PEERS);
	m.rid = 1;
	ok(proto_msg_pack(&m, &f, &len) == 0 && len == sizeof(peers) &&
	    memcmp(f, peers, len) == 0,
	    "PROTOCOL.md 5: PEERS rid 1 without an id = 00 00 00 03 92 08 01");
	free(f);
	m.id = id_a;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && f[4] == 0x93 && u.type == PROTO_MSG_PEERS &&
	    u.rid == 1 && u.id != NULL && memcmp(u.id, id_a, 32) == 0,
	    "PEERS with an id: [8, rid, id] round trip");
	proto_msg_clear(&u);
	free(f);
	ok(unpack_keep("92 08 01", &u) == 0 && u.id == NULL,
	    "PEERS without an id: id NULL");
	proto_msg_clear(&u);
	ok(unpack_keep("93 08 01 c0", &u) == 0 && u.id == NULL,
	    "PEERS with nil for the id: id NULL");
	proto_msg_clear(&u);
	{
		uint8_t want[41] = { 0x00, 0x00, 0x00, 0x25, 0x93, 0x08, 0x02,
		    0xc4, 0x20 };
		uint8_t id11[32];
		memset(id11, 0x11, sizeof(id11));
		memcpy(want + 9, id11, 32);
		m.rid = 2;
		m.id = id11;
		ok(proto_msg_pack(&m, &f, &len) == 0 && len == sizeof(want) &&
		    memcmp(f, want, len) == 0, "PROTOCOL.md 5: PEERS rid 2 "
		    "about id 11..11 = 00 00 00 25 93 08 02 c4 20 11 ...");
		free(f);
	}
	is_int(unpack_text("93 08 01 ID31", &u), PROTO_ERR_MALFORMED,
	    "PEERS with an id of 31 bytes: MALFORMED");
	is_int(unpack_text("93 08 01 S32", &u), PROTO_ERR_MALFORMED,
	    "PEERS with an id that is a str: MALFORMED");
	is_int(unpack_text("94 08 01 ID c0", &u), 0,
	    "PEERS with an id and an element after: accepted");

	proto_msg_init(&m, PROTO_MSG_PEERS_REPLY);
	m.rid = 1;
	m.peers = e;
	m.npeers = 1;
	ok(proto_msg_pack(&m, &f, &len) == 0 && len == sizeof(reply) &&
	    memcmp(f, reply, len) == 0,
	    "PROTOCOL.md 5: an unsigned PEERS_REPLY entry is [host, port]");
	free(f);
	e[0].record = rec;
	e[0].record_len = 149;
	ok(proto_msg_pack(&m, &f, &len) == 0 && len == 4 + 0xa8 &&
	    memcmp(f, "\x00\x00\x00\xa8\x93\x09\x01\x91\x93", 9) == 0 &&
	    memcmp(f + 9, reply + 9, 12) == 0 &&
	    memcmp(f + 21, "\xc4\x95", 2) == 0 && memcmp(f + 23, rec, 149) == 0,
	    "PROTOCOL.md 5: the entry with a 149-byte record, frame 00 00 00 "
	    "a8 93 09 01 91 93 ... c4 95 <record>");
	free(f);
	e[0].record = NULL;
	e[0].record_len = 0;
	m.npeers = 3;
	rc = roundtrip(&m, &u, &f);
	ok(rc == 0 && u.npeers == 3 && u.peers[0].record == NULL &&
	    u.peers[1].record_len == 149 &&
	    memcmp(u.peers[1].record, rec, 149) == 0 &&
	    u.peers[2].record_len == PROTO_RECORD_MAX &&
	    memcmp(u.peers[2].record, rec, PROTO_RECORD_MAX) == 0 &&
	    u.peers[2].port == 65535,
	    "PEERS_REPLY: records round trip, 1024 bytes the exact limit");
	proto_msg_clear(&u);
	free(f);
	e[2].record_len = PROTO_RECORD_MAX + 1;
	is_int(proto_msg_pack(&m, &f, &len), PROTO_ERR_TOO_BIG,
	    "PEERS_REPLY: a record of 1025 bytes is not packed: TOO_BIG");

	ok(unpack_keep("93 09 01 91 93 a8 31 30 2e 30 2e 30 2e 35 01 a1 78",
	    &u) == 0 && u.npeers == 1 && u.peers[0].record == NULL,
	    "PEERS_REPLY entry whose third element is a str: unsigned");
	proto_msg_clear(&u);
	ok(unpack_keep("93 09 01 91 93 a8 31 30 2e 30 2e 30 2e 35 01 c4 00",
	    &u) == 0 && u.peers[0].record == NULL,
	    "... an empty bin: unsigned");
	proto_msg_clear(&u);
	{
		char text[4200];
		int k = snprintf(text, sizeof(text),
		    "93 09 01 91 93 a8 31 30 2e 30 2e 30 2e 35 01 c5 04 01");
		for (int i = 0; i < 1025; i++)
			k += snprintf(text + k, sizeof(text) - (size_t)k, " 00");
		ok(unpack_keep(text, &u) == 0 && u.npeers == 1 &&
		    u.peers[0].record == NULL && u.peers[0].record_len == 0,
		    "... a bin of 1025 bytes: unsigned, nothing kept of it");
		proto_msg_clear(&u);
	}
	ok(unpack_keep("93 09 01 92 93 a8 31 30 2e 30 2e 30 2e 35 01 c4 02 "
	    "aa bb 92 a3 3a 3a 31 02", &u) == 0 && u.npeers == 2 &&
	    u.peers[0].record_len == 2 && u.peers[0].record[1] == 0xbb &&
	    u.peers[1].record == NULL && u.peers[1].port == 2,
	    "PEERS_REPLY: an entry with a record beside an old one");
	proto_msg_clear(&u);
	is_int(unpack_text("93 09 01 91 91 a8 31 30 2e 30 2e 30 2e 35", &u),
	    PROTO_ERR_MALFORMED, "PEERS_REPLY entry of one element: MALFORMED");
	is_int(unpack_text("93 09 01 91 93 a8 31 30 2e 30 2e 30 2e 35 00 "
	    "c4 01 00", &u), PROTO_ERR_MALFORMED,
	    "PEERS_REPLY entry of port 0 with a record: MALFORMED");
}

int
main(void)
{
	for (int i = 0; i < 32; i++) {
		id_a[i] = (uint8_t)i;
		id_b[i] = (uint8_t)(0xff - i);
		id_c[i] = (uint8_t)(i * 13);
	}
	test_roundtrip();
	test_pack_errors();
	test_examples();
	test_chunk_header();
	test_malformed();
	test_accepted();
	test_manifest_in_msg();
	test_swarm_messages();
	test_swarm_examples();
	test_type_names();
	test_printable();
	test_peers_messages();
	return done_testing();
}
