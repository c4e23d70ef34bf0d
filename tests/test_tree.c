/*
 * Unit tests for libproto/tree.c and treemap.c: the test vectors of
 * docs/PROTOCOL.md section 10, and every path and bound a peer could
 * break: "..", absolute, empty components, NUL, overlong, duplicates, a
 * file where a directory must be, counts past the bytes and the limits.
 */
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "tap.h"

static const char EMPTY_ID[] =
    "9a0be4ec109b7ca51504ebd60835e9599f33a732c47c5450301784f5c28edd63";
static const char BYTE1_ID[] =
    "f116abd57c3e0560fd70ec4abc84e1a1385d3aaa1a936cdda4bfefbcf099a26c";

static void
unhex(const char *hex, uint8_t *out)
{
	for (size_t i = 0; hex[2 * i] != '\0'; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static void
id_is(const proto_tree *t, const char *want, const char *name)
{
	char hex[PROTO_ID_HEX_LEN + 1];

	proto_hex_encode(t->id, PROTO_HASH_LEN, hex);
	ok(strcmp(hex, want) == 0, "%s: the id of PROTOCOL.md", name);
	if (strcmp(hex, want) != 0)
		diag("got %s", hex);
}

static proto_tree *
build(int which)
{
	uint8_t e[PROTO_HASH_LEN], o[PROTO_HASH_LEN];
	proto_tree *t = proto_tree_new();

	unhex(EMPTY_ID, e);
	unhex(BYTE1_ID, o);
	/* Added out of order on purpose: finish sorts. */
	if (which == 2)
		proto_tree_add_file(t, "d/b", 3, 1, 0755, o);
	if (which == 3)
		proto_tree_add_dir(t, "e", 1);
	if (which >= 1)
		proto_tree_add_file(t, "a", 1, 0, 0644, e);
	if (which == 2)
		proto_tree_add_dir(t, "d", 1); /* not empty: dropped */
	return t;
}

static void
test_vectors(void)
{
	static const struct {
		const char *name, *enc, *id;
	} v[] = {
		{ "empty tree", "90", "54128b41bb79c58b9bd54459b32664fa"
		    "2697abb2de4200e3f7913200a3af33d5" },
		{ "one file", "9194c40161" "00cd01a4c420" "9a0be4ec109b7ca5"
		    "1504ebd60835e9599f33a732c47c5450301784f5c28edd63",
		    "d168033d367f6658bf0e645b31bae6b4"
		    "fc689ae0627b5de45d81457fec249e42" },
		{ "nested", NULL, "791eae33b482652904349cc44e749c21"
		    "5869628f754419f9d2e98afbdd85cccf" },
		{ "an empty directory", NULL, "ad028ae2844bbf612450c5edd90ba95b"
		    "21ca4bfcbddcacb4beb87a89444dc9c7" },
	};

	for (int i = 0; i < 4; i++) {
		proto_tree *t = build(i), *back = NULL;
		ok(proto_tree_finish(t) == 0, "%s: finishes", v[i].name);
		id_is(t, v[i].id, v[i].name);
		if (v[i].enc != NULL) {
			uint8_t want[64];
			size_t n = strlen(v[i].enc) / 2;
			unhex(v[i].enc, want);
			ok(t->enc_len == n && memcmp(t->enc, want, n) == 0,
			    "%s: the encoding is byte for byte", v[i].name);
		}
		ok(proto_tree_decode(t->enc, t->enc_len, &back) == 0,
		    "%s: decodes", v[i].name);
		ok(back && memcmp(back->id, t->id, PROTO_HASH_LEN) == 0 &&
		    back->count == t->count, "%s: the same tree back", v[i].name);
		proto_tree_free(back);
		proto_tree_free(t);
	}
}

static void
test_paths(void)
{
	static const struct {
		const char *p;
		size_t len;
		int ok;
	} v[] = {
		{ "a", 1, 1 }, { "a/b/c", 5, 1 }, { ".hidden", 7, 1 },
		{ "a..b", 4, 1 }, { "...", 3, 1 },
		{ "", 0, 0 }, { "..", 2, 0 }, { "../x", 4, 0 }, { "a/../b", 6, 0 },
		{ "a/..", 4, 0 }, { ".", 1, 0 }, { "a/./b", 5, 0 },
		{ "/etc/x", 6, 0 }, { "a//b", 4, 0 }, { "a/", 2, 0 },
		{ "/", 1, 0 }, { "a\0b", 3, 0 },
	};
	char *longname, *deep;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		ok(proto_tree_path_valid(v[i].p, v[i].len) == v[i].ok,
		    "path %zu (%.*s): %s", i, (int)v[i].len, v[i].p,
		    v[i].ok ? "valid" : "refused");
	longname = malloc(PROTO_TREE_PATH_MAX + 2);
	memset(longname, 'x', PROTO_TREE_PATH_MAX + 1);
	for (size_t i = 255; i < PROTO_TREE_PATH_MAX; i += 256)
		longname[i] = '/';
	longname[PROTO_TREE_PATH_MAX - 1] = 'x';
	ok(proto_tree_path_valid(longname, PROTO_TREE_PATH_MAX),
	    "a path of exactly %u bytes is valid", PROTO_TREE_PATH_MAX);
	ok(!proto_tree_path_valid(longname, PROTO_TREE_PATH_MAX + 1),
	    "one byte more is overlong");
	memset(longname, 'x', 256);
	ok(proto_tree_path_valid(longname, 255) &&
	    !proto_tree_path_valid(longname, 256),
	    "a component of 255 bytes is valid, of 256 overlong");
	free(longname);
	deep = malloc(2 * PROTO_TREE_DEPTH_MAX + 2);
	for (size_t i = 0; i <= PROTO_TREE_DEPTH_MAX; i++) {
		deep[2 * i] = 'd';
		deep[2 * i + 1] = '/';
	}
	ok(proto_tree_path_valid(deep, 2 * PROTO_TREE_DEPTH_MAX - 1) &&
	    !proto_tree_path_valid(deep, 2 * PROTO_TREE_DEPTH_MAX + 1),
	    "%u components are valid, one more too deep",
	    PROTO_TREE_DEPTH_MAX);
	free(deep);
}

static void
test_build_refusals(void)
{
	uint8_t id[PROTO_HASH_LEN] = { 0 };
	proto_tree *t = proto_tree_new();

	is_int(proto_tree_add_file(t, "../x", 4, 1, 0644, id),
	    PROTO_ERR_INVALID, "add: .. refused");
	is_int(proto_tree_add_file(t, "x", 1, 1, 04755, id),
	    PROTO_ERR_INVALID, "add: a set-id mode refused");
	is_int(proto_tree_add_file(t, "x", 1, PROTO_TREE_FILE_MAX + 1, 0644,
	    id), PROTO_ERR_INVALID, "add: a file past 64 TiB refused");
	is_int((int)t->count, 0, "nothing was added");
	proto_tree_add_file(t, "x", 1, 1, 0644, id);
	proto_tree_add_file(t, "x", 1, 2, 0600, id);
	is_int(proto_tree_finish(t), PROTO_ERR_INVALID,
	    "finish: the same path twice is refused");
	proto_tree_free(t);
	t = proto_tree_new();
	proto_tree_add_file(t, "x", 1, 1, 0644, id);
	proto_tree_add_file(t, "x/y", 3, 1, 0644, id);
	is_int(proto_tree_finish(t), PROTO_ERR_INVALID,
	    "finish: a file where a directory must be is refused");
	proto_tree_free(t);
	t = proto_tree_new();
	proto_tree_add_file(t, "x!", 2, 1, 0644, id);
	proto_tree_add_file(t, "x/y", 3, 1, 0644, id);
	proto_tree_add_file(t, "x", 1, 1, 0644, id);
	is_int(proto_tree_finish(t), PROTO_ERR_INVALID,
	    "finish: the clash is found with a name sorted between");
	proto_tree_free(t);
	t = proto_tree_new();
	proto_tree_add_dir(t, "x", 1);
	proto_tree_add_dir(t, "x", 1);
	is_int(proto_tree_finish(t), PROTO_ERR_INVALID,
	    "finish: a directory twice is refused");
	proto_tree_free(t);
}

/* Encodes entries by hand, as a forger would, and decodes them. */
static int
decode_hex(const char *hex)
{
	uint8_t buf[256];
	proto_tree *t = NULL;
	int rc;

	unhex(hex, buf);
	rc = proto_tree_decode(buf, strlen(hex) / 2, &t);
	ok((rc == 0) == (t != NULL), "out set only on success");
	proto_tree_free(t);
	return rc;
}

#define ID32 "c420" "0000000000000000000000000000000000000000000000000000000000000000"

static void
test_decode_refusals(void)
{
	uint8_t big[8] = { 0xdd, 0x00, 0x04, 0x00, 0x01 };
	proto_tree *t = NULL;

	is_int(decode_hex("9191c4022e2e"), PROTO_ERR_INVALID,
	    "decode: a directory named .. is refused");
	is_int(decode_hex("9194c4062f6574632f780100" ID32), PROTO_ERR_INVALID,
	    "decode: /etc/x is refused");
	is_int(decode_hex("9194c404612f2f620100" ID32), PROTO_ERR_INVALID,
	    "decode: an empty component is refused");
	is_int(decode_hex("9194c40361006201" "00" ID32), PROTO_ERR_INVALID,
	    "decode: a NUL in a path is refused");
	is_int(decode_hex("9294c4017801cd01a4" ID32 "94c4017801cd01a4" ID32),
	    PROTO_ERR_MALFORMED, "decode: a duplicate is refused");
	is_int(decode_hex("9294c4017801cd01a4" ID32 "94c403782f7901cd01a4"
	    ID32), PROTO_ERR_INVALID,
	    "decode: a file where a directory must be is refused");
	is_int(decode_hex("9291c4017894c403782f7901cd01a4" ID32),
	    PROTO_ERR_MALFORMED,
	    "decode: a directory listed with something beneath is refused");
	is_int(decode_hex("9294c403782f7901cd01a4" ID32 "94c4017801cd01a4"
	    ID32), PROTO_ERR_MALFORMED, "decode: unsorted is refused");
	is_int(decode_hex("9194c4017801cd0800" ID32), PROTO_ERR_INVALID,
	    "decode: a mode with set-id bits is refused");
	is_int(decode_hex("9194c4017801d101a4" ID32), PROTO_ERR_MALFORMED,
	    "decode: a signed int is refused");
	is_int(decode_hex("9194c40178cc01cd01a4" ID32), PROTO_ERR_MALFORMED,
	    "decode: a long form where a short one fits is refused");
	is_int(decode_hex("9194a1780100" ID32), PROTO_ERR_MALFORMED,
	    "decode: a path as str, not bin, is refused");
	is_int(decode_hex("9194c4017801cd01a4c41f"
	    "00000000000000000000000000000000000000000000000000000000000000"),
	    PROTO_ERR_INVALID, "decode: an id of 31 bytes is refused");
	is_int(decode_hex("919300"), PROTO_ERR_MALFORMED,
	    "decode: an entry of three elements is refused");
	is_int(decode_hex("90" "00"), PROTO_ERR_MALFORMED,
	    "decode: a byte after the tree is refused");
	is_int(decode_hex("9194c4017801cd01"), PROTO_ERR_MALFORMED,
	    "decode: truncated is refused");
	is_int(decode_hex("9194c4ff78"), PROTO_ERR_MALFORMED,
	    "decode: a path longer than the bytes left is refused");
	is_int(decode_hex("9194c40178cf0001000000000000cd01a4" ID32),
	    PROTO_ERR_INVALID, "decode: a file of 2^48 bytes is refused");
	/* 262145 entries declared in 5 bytes: refused before allocating. */
	is_int(proto_tree_decode(big, 5, &t), PROTO_ERR_TOO_BIG,
	    "decode: a count past the entry limit is refused");
	big[2] = 0x00;
	big[3] = 0x10;
	is_int(proto_tree_decode(big, 5, &t), PROTO_ERR_MALFORMED,
	    "decode: a count past the bytes left is refused");
	ok(t == NULL, "nothing out");
	is_int(proto_tree_decode(big, PROTO_TREE_BYTES_MAX + 1, &t),
	    PROTO_ERR_TOO_BIG, "decode: an encoding past the limit is refused "
	    "unread");
}

static void
test_manifest_map(void)
{
	proto_tree *t = build(2), *back = NULL;
	uint8_t *buf;
	size_t len;

	proto_tree_finish(t);
	proto_tree_set_name(t, "dir");
	t->path = strdup("/local/dir");
	is_int(proto_tree_pack(t, 0, &buf, &len), 0, "pack");
	ok(len > 0 && buf[0] == 0x84, "a map of 4 keys without the path");
	is_int((int)proto_tree_unpack(buf, len, &back), (int)len,
	    "unpack takes it all");
	ok(back && back->path == NULL && strcmp(back->name, "dir") == 0 &&
	    memcmp(back->id, t->id, PROTO_HASH_LEN) == 0, "same id and name");
	proto_tree_free(back);
	is_int((int)proto_tree_unpack(buf, len - 1, &back), 0,
	    "unpack of a truncated map: needs more");
	/* The tree's bytes start right after "tree" and its bin header. */
	buf[len - 1] ^= 1;
	is_int((int)proto_tree_unpack(buf, len, &back), PROTO_ERR_MISMATCH,
	    "a flipped byte in the tree: its id does not match");
	free(buf);
	is_int(proto_tree_pack(t, 1, &buf, &len), 0, "pack with the path");
	ok(buf[0] == 0x85, "a map of 5 keys with it");
	is_int((int)proto_tree_unpack(buf, len, &back), (int)len, "unpack");
	ok(back && back->path && strcmp(back->path, "/local/dir") == 0,
	    "the local path kept");
	proto_tree_free(back);
	free(buf);
	proto_tree_free(t);
}

int
main(void)
{
	test_vectors();
	test_paths();
	test_build_refusals();
	test_decode_refusals();
	test_manifest_map();
	return done_testing();
}
