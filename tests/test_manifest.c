/*
 * manifest.c: building from a descriptor (regular, sparse), packing,
 * unpacking untrusted bytes (hand-made maps with every field wrong in turn),
 * chunk verification, and name validation.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <msgpack.h>

#include "proto.h"
#include "tap.h"

#define SIZE 100000u
#define CS 32768u
#define NCHUNKS 4u

static uint8_t *data;

static int
memfd_with(const uint8_t *p, size_t n)
{
	int fd = memfd_create("test_manifest", 0);
	size_t off = 0;

	if (fd < 0)
		exit(2);
	while (off < n) {
		ssize_t w = write(fd, p + off, n - off);
		if (w <= 0)
			exit(2);
		off += (size_t)w;
	}
	return fd;
}

static proto_manifest *
build(const uint8_t *p, size_t n, size_t cs, const char *path)
{
	proto_manifest *mf = NULL;
	int fd = memfd_with(p, n);
	int rc = proto_manifest_build_fd(fd, "data.bin", path, cs, &mf);

	close(fd);
	if (rc != 0)
		diag("build_fd: %s", proto_strerror(rc));
	return mf;
}

/* Unpacks an exact-size heap copy of len bytes. */
static long
unpack(const uint8_t *p, size_t len, proto_manifest **out)
{
	uint8_t *copy = malloc(len ? len : 1);
	long n;

	if (copy == NULL)
		exit(2);
	if (len)
		memcpy(copy, p, len);
	n = proto_manifest_unpack(copy, len, out);
	free(copy);
	return n;
}

/* The fields of a hand-made manifest map; each can be wrong on purpose. */
enum { K_V = 1, K_ID = 2, K_NAME = 4, K_SIZE = 8, K_CS = 16, K_CHUNKS = 32 };

struct fields {
	unsigned omit;          /* K_* keys left out */
	uint64_t v;
	const uint8_t *id;
	size_t id_len;
	int id_as_str;
	const char *name;
	size_t name_len;
	uint64_t size;
	int size_negative;
	uint64_t cs;
	const uint8_t *chunks;
	size_t chunks_len;
	const char *path;       /* "path" key when not NULL */
	int extra;              /* an unknown key with an array value */
	int reverse;            /* keys in reverse order */
};

static void
pk_str(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void
pack_field(msgpack_packer *pk, const struct fields *f, int which)
{
	switch (which) {
	case K_V:
		pk_str(pk, "v", 1);
		msgpack_pack_uint64(pk, f->v);
		break;
	case K_ID:
		pk_str(pk, "id", 2);
		if (f->id_as_str)
			pk_str(pk, (const char *)f->id, f->id_len);
		else {
			msgpack_pack_bin(pk, f->id_len);
			msgpack_pack_bin_body(pk, f->id, f->id_len);
		}
		break;
	case K_NAME:
		pk_str(pk, "name", 4);
		pk_str(pk, f->name, f->name_len);
		break;
	case K_SIZE:
		pk_str(pk, "size", 4);
		if (f->size_negative)
			msgpack_pack_int64(pk, -1);
		else
			msgpack_pack_uint64(pk, f->size);
		break;
	case K_CS:
		pk_str(pk, "chunk_size", 10);
		msgpack_pack_uint64(pk, f->cs);
		break;
	case K_CHUNKS:
		pk_str(pk, "chunks", 6);
		msgpack_pack_bin(pk, f->chunks_len);
		msgpack_pack_bin_body(pk, f->chunks, f->chunks_len);
		break;
	}
}

static uint8_t *
pack_fields(const struct fields *f, size_t *len)
{
	static const int order[] = { K_V, K_ID, K_NAME, K_SIZE, K_CS, K_CHUNKS };
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t n = 0;

	for (int i = 0; i < 6; i++)
		n += !(f->omit & order[i]);
	n += (f->path != NULL) + (f->extra != 0);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n);
	if (f->extra) {
		pk_str(&pk, "x-future", 8);
		msgpack_pack_array(&pk, 3);
		msgpack_pack_int(&pk, 1);
		msgpack_pack_nil(&pk);
		pk_str(&pk, "z", 1);
	}
	for (int i = 0; i < 6; i++) {
		int which = order[f->reverse ? 5 - i : i];
		if (!(f->omit & which))
			pack_field(&pk, f, which);
	}
	if (f->path) {
		pk_str(&pk, "path", 4);
		pk_str(&pk, f->path, strlen(f->path));
	}
	*len = sb.size;
	return (uint8_t *)sb.data;
}

/* The fields of mf, correct. */
static struct fields
fields_of(const proto_manifest *mf)
{
	struct fields f;

	memset(&f, 0, sizeof(f));
	f.v = 1;
	f.id = mf->id;
	f.id_len = 32;
	f.name = mf->name;
	f.name_len = strlen(mf->name);
	f.size = mf->size;
	f.cs = mf->chunk_size;
	f.chunks = mf->chunks;
	f.chunks_len = mf->nchunks * 32;
	return f;
}

static long
unpack_fields(const struct fields *f, proto_manifest **out)
{
	size_t len;
	uint8_t *b = pack_fields(f, &len);
	long n = unpack(b, len, out);

	free(b);
	return n;
}

static void
test_build(void)
{
	proto_manifest *mf = build(data, SIZE, CS, "/srv/data.bin");
	uint8_t h[32], id[32];
	int good = 1;

	if (!ok(mf != NULL, "build_fd of 100000 bytes at 32K"))
		return;
	is_int(mf->size, SIZE, "build: size");
	is_int(mf->chunk_size, CS, "build: chunk_size as asked");
	is_int(mf->nchunks, NCHUNKS, "build: 4 chunks");
	is_str(mf->name, "data.bin", "build: name");
	is_str(mf->path, "/srv/data.bin", "build: path copied");
	for (unsigned j = 0; j < NCHUNKS; j++) {
		proto_hash_chunk(data + j * CS, proto_chunk_len(SIZE, CS, j), CS, h);
		good &= memcmp(h, mf->chunks + 32 * j, 32) == 0;
	}
	ok(good, "build: every chunk hash = proto_hash_chunk of its bytes");
	proto_hash_content_id(mf->chunks, NCHUNKS, CS, SIZE, id);
	is_mem(mf->id, id, 32, "build: id = content id of the layer");
	proto_manifest_free(mf);

	mf = build(data, SIZE, 0, NULL);
	ok(mf && mf->chunk_size == 16384 && mf->nchunks == 7 && !mf->path,
	    "build auto: 100000 bytes, 7 chunks of 16K (fewer than 64 at "
	    "any size), no path");
	proto_manifest_free(mf);

	mf = build(data, 0, 4 << 20, NULL);
	ok(mf && mf->size == 0 && mf->chunk_size == 16384 && mf->nchunks == 1,
	    "build: empty file at 4M -> one chunk of 16K");
	proto_manifest_free(mf);

	{
		int fd = memfd_with(data, 10);
		is_int(proto_manifest_build_fd(fd, "a/b", NULL, CS, &mf),
		    PROTO_ERR_INVALID, "build: name with '/' -> INVALID");
		ok(mf == NULL, "build: *out NULL on failure");
		is_int(proto_manifest_build_fd(fd, "", NULL, CS, &mf),
		    PROTO_ERR_INVALID, "build: empty name -> INVALID");
		is_int(proto_manifest_build_fd(fd, "x", NULL, 3 * 16384, &mf),
		    PROTO_ERR_INVALID, "build: chunk size 48K -> INVALID");
		is_int(proto_manifest_build_fd(fd, "x", NULL, 8 << 20, &mf),
		    PROTO_ERR_INVALID, "build: chunk size 8M -> INVALID");
		close(fd);
	}
	errno = 0;
	is_int(proto_manifest_build_fd(-1, "x", NULL, CS, &mf), PROTO_ERR_SYSTEM,
	    "build: bad descriptor -> SYSTEM");
	is_int(errno, EBADF, "build: bad descriptor leaves errno EBADF");
	proto_manifest_free(NULL);
	ok(1, "manifest_free(NULL) does nothing");
}

static void
test_roundtrip(void)
{
	proto_manifest *mf = build(data, SIZE, CS, "/srv/data.bin"), *u = NULL;
	uint8_t *b, *two;
	size_t len, len2;
	long n;

	if (mf == NULL)
		return;
	ok(proto_manifest_pack(mf, 0, &b, &len) == 0, "pack without path");
	ok(memmem(b, len, "\xa4path", 5) == NULL,
	    "pack without path: no \"path\" key");
	n = unpack(b, len, &u);
	is_int(n, (long)len, "unpack takes the whole packed manifest");
	ok(u && memcmp(u->id, mf->id, 32) == 0 && u->size == SIZE &&
	    u->chunk_size == CS && u->nchunks == NCHUNKS &&
	    memcmp(u->chunks, mf->chunks, NCHUNKS * 32) == 0 &&
	    strcmp(u->name, "data.bin") == 0 && u->path == NULL,
	    "round trip: every field equal, no path");
	proto_manifest_free(u);

	/* Two manifests back to back, as p2p-chunk writes them. */
	if ((two = malloc(2 * len)) == NULL)
		exit(2);
	memcpy(two, b, len);
	memcpy(two + len, b, len);
	n = unpack(two, 2 * len, &u);
	is_int(n, (long)len, "stream: first of two manifests takes its bytes");
	proto_manifest_free(u);
	n = unpack(two + len, len, &u);
	is_int(n, (long)len, "stream: second manifest unpacks from there");
	proto_manifest_free(u);
	free(two);

	/* Truncated: every proper prefix needs more. */
	{
		int all = 1;
		for (size_t i = 0; i < len; i++) {
			n = unpack(b, i, &u);
			if (n != 0 || u != NULL) {
				diag("prefix %zu gave %ld", i, n);
				all = 0;
				proto_manifest_free(u);
			}
		}
		ok(all, "truncated: every proper prefix -> 0, nothing allocated");
	}

	/* One chunk-hash byte flipped: the layer no longer gives the id. */
	{
		uint8_t *p = memmem(b, len, mf->chunks + 32, 32);
		ok(p != NULL, "the packed bytes hold chunk 1's hash");
		if (p) {
			p[7] ^= 0x01;
			is_int(unpack(b, len, &u), PROTO_ERR_MISMATCH,
			    "chunk hash byte flipped -> MISMATCH");
			ok(u == NULL, "MISMATCH: *out stays NULL");
			p[7] ^= 0x01;
		}
		p = memmem(b, len, mf->id, 32);
		if (p) {
			p[31] ^= 0x80;
			is_int(unpack(b, len, &u), PROTO_ERR_MISMATCH,
			    "id byte flipped -> MISMATCH");
			p[31] ^= 0x80;
		}
		is_int(unpack(b, len, &u), (long)len, "restored bytes unpack again");
		proto_manifest_free(u);
	}
	free(b);

	ok(proto_manifest_pack(mf, 1, &b, &len2) == 0, "pack with path");
	ok(memmem(b, len2, "\xa4path", 5) != NULL &&
	    memmem(b, len2, "/srv/data.bin", 13) != NULL,
	    "pack with_path: \"path\" key and value present");
	n = unpack(b, len2, &u);
	ok(n == (long)len2 && u && u->path && strcmp(u->path, "/srv/data.bin") == 0,
	    "round trip with path: path restored");
	proto_manifest_free(u);
	free(b);

	free(mf->path);
	mf->path = NULL;
	ok(proto_manifest_pack(mf, 1, &b, &len2) == 0 && len2 == len &&
	    memmem(b, len2, "\xa4path", 5) == NULL,
	    "pack with_path but no path: no \"path\" key");
	free(b);
	proto_manifest_free(mf);
}

static void
test_fields(void)
{
	proto_manifest *mf = build(data, SIZE, CS, NULL), *u = NULL;
	struct fields f;
	uint8_t *bigchunks, wrong_id[32], *bad;
	char name255[256], name256[257];
	static const struct {
		unsigned omit;
		const char *why;
	} missing[] = {
		{ K_V, "missing key \"v\" -> MALFORMED" },
		{ K_ID, "missing key \"id\" -> MALFORMED" },
		{ K_NAME, "missing key \"name\" -> MALFORMED" },
		{ K_SIZE, "missing key \"size\" -> MALFORMED" },
		{ K_CS, "missing key \"chunk_size\" -> MALFORMED" },
		{ K_CHUNKS, "missing key \"chunks\" -> MALFORMED" },
	};
	long n;

	if (mf == NULL)
		return;
	f = fields_of(mf);
	n = unpack_fields(&f, &u);
	ok(n > 0 && u && memcmp(u->id, mf->id, 32) == 0,
	    "hand-made map of the right fields unpacks");
	proto_manifest_free(u);

	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		f = fields_of(mf);
		f.omit = missing[i].omit;
		is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED, missing[i].why);
	}

	f = fields_of(mf);
	f.extra = 1;
	n = unpack_fields(&f, &u);
	ok(n > 0 && u != NULL, "extra unknown key (array value) accepted");
	proto_manifest_free(u);

	f = fields_of(mf);
	f.reverse = 1;
	f.extra = 1;
	n = unpack_fields(&f, &u);
	ok(n > 0 && u != NULL, "keys in another order accepted");
	proto_manifest_free(u);

	f = fields_of(mf);
	f.path = "/a/b";
	n = unpack_fields(&f, &u);
	ok(n > 0 && u && u->path && strcmp(u->path, "/a/b") == 0,
	    "\"path\" read back when present");
	proto_manifest_free(u);

	f = fields_of(mf);
	f.v = 2;
	is_int(unpack_fields(&f, &u), PROTO_ERR_VERSION, "\"v\" 2 -> VERSION");
	f.v = 0;
	is_int(unpack_fields(&f, &u), PROTO_ERR_VERSION, "\"v\" 0 -> VERSION");

	f = fields_of(mf);
	memcpy(wrong_id, mf->id, 32);
	wrong_id[0] ^= 0xff;
	f.id = wrong_id;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MISMATCH, "wrong id -> MISMATCH");
	f.id = mf->id;
	f.id_len = 31;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED, "id of 31 bytes -> MALFORMED");
	f.id_len = 32;
	f.id_as_str = 1;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED, "id as a str -> MALFORMED");

	f = fields_of(mf);
	f.name = "a/b";
	f.name_len = 3;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED,
	    "name with '/' -> MALFORMED");
	f.name = "..";
	f.name_len = 2;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED, "name \"..\" -> MALFORMED");
	f.name = ".";
	f.name_len = 1;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED, "name \".\" -> MALFORMED");
	f.name = "";
	f.name_len = 0;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED,
	    "empty name -> MALFORMED");
	f.name = "a\0b";
	f.name_len = 3;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED,
	    "name with a NUL -> MALFORMED");
	memset(name256, 'n', sizeof(name256));
	f.name = name256;
	f.name_len = 256;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED,
	    "name of 256 bytes -> MALFORMED");
	memset(name255, 'n', sizeof(name255));
	name255[255] = '\0';
	f.name = name255;
	f.name_len = 255;
	n = unpack_fields(&f, &u);
	ok(n > 0 && u && strlen(u->name) == 255, "name exact limit: 255 bytes ok");
	proto_manifest_free(u);
	f.name = "...";
	f.name_len = 3;
	n = unpack_fields(&f, &u);
	ok(n > 0 && u, "name \"...\" is an ordinary name");
	proto_manifest_free(u);

	f = fields_of(mf);
	f.cs = 3 * 16384;
	is_int(unpack_fields(&f, &u), PROTO_ERR_INVALID,
	    "chunk_size 48K (not a power of two) -> INVALID");
	f.cs = 8192;
	is_int(unpack_fields(&f, &u), PROTO_ERR_INVALID, "chunk_size 8K -> INVALID");
	f.cs = 8 << 20;
	is_int(unpack_fields(&f, &u), PROTO_ERR_INVALID, "chunk_size 8M -> INVALID");
	f.cs = (1ull << 32) + CS;
	is_int(unpack_fields(&f, &u), PROTO_ERR_INVALID,
	    "giant chunk_size 2^32 + 32K (would truncate to 32K) -> INVALID");
	f.cs = 262144;
	is_int(unpack_fields(&f, &u), PROTO_ERR_INVALID,
	    "chunk_size 256K wider than a 100000-byte tree -> INVALID");

	f = fields_of(mf);
	f.chunks_len = NCHUNKS * 32 - 1;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED,
	    "chunks length one short -> MALFORMED");
	if ((bigchunks = calloc(1, NCHUNKS * 32 + 32)) == NULL)
		exit(2);
	memcpy(bigchunks, mf->chunks, NCHUNKS * 32);
	f.chunks = bigchunks;
	f.chunks_len = NCHUNKS * 32 + 1;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED,
	    "chunks length one over -> MALFORMED");
	f.chunks_len = NCHUNKS * 32 + 32;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED,
	    "chunks with one hash too many -> MALFORMED");
	free(bigchunks);

	f = fields_of(mf);
	f.size = SIZE + CS;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED,
	    "size one chunk larger than the layer -> MALFORMED");
	f.size = SIZE + 1;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MISMATCH,
	    "size off by one, same chunk count -> MISMATCH");
	f.size_negative = 1;
	is_int(unpack_fields(&f, &u), PROTO_ERR_MALFORMED, "size -1 -> MALFORMED");
	f.size_negative = 0;
	f.size = UINT64_MAX;
	is_int(unpack_fields(&f, &u), PROTO_ERR_INVALID,
	    "giant size UINT64_MAX -> INVALID");

	is_int(unpack((const uint8_t *)"\x96\x01\x02\x03\x04\x05\x06", 7, &u),
	    PROTO_ERR_MALFORMED, "an array, not a map -> MALFORMED");
	is_int(unpack((const uint8_t *)"\xc1", 1, &u), PROTO_ERR_MALFORMED,
	    "0xc1 -> MALFORMED");
	is_int(unpack((const uint8_t *)"\x81\xa6" "chunks\xc6\xff\xff\xff\xff", 13,
	    &u), PROTO_ERR_TOO_BIG,
	    "giant: chunks bin32 of 0xFFFFFFFF -> TOO_BIG");
	if ((bad = calloc(1, 200)) == NULL)
		exit(2);
	memcpy(bad, "\x81\xa1x\xdc\x00\x64", 6); /* {"x": [100 nils]} */
	is_int(unpack(bad, 106, &u), PROTO_ERR_TOO_BIG,
	    "a map of over 64 objects -> TOO_BIG");
	free(bad);
	proto_manifest_free(mf);
}

static void
test_check_chunk(void)
{
	proto_manifest *mf = build(data, SIZE, CS, NULL), *e;
	uint8_t *copy = malloc(CS);
	size_t last = SIZE - 3 * CS;

	if (mf == NULL || copy == NULL)
		exit(2);
	is_int(proto_manifest_check_chunk(mf, 0, data, CS), 0,
	    "check_chunk: good first chunk");
	is_int(proto_manifest_check_chunk(mf, 3, data + 3 * CS, last), 0,
	    "check_chunk: good short last chunk");
	memcpy(copy, data + CS, CS);
	copy[CS - 1] ^= 0x01;
	is_int(proto_manifest_check_chunk(mf, 1, copy, CS), PROTO_ERR_MISMATCH,
	    "check_chunk: last byte flipped -> MISMATCH");
	is_int(proto_manifest_check_chunk(mf, 2, data + CS, CS),
	    PROTO_ERR_MISMATCH, "check_chunk: another chunk's bytes -> MISMATCH");
	is_int(proto_manifest_check_chunk(mf, 0, data, CS - 1), PROTO_ERR_INVALID,
	    "check_chunk: one byte short -> INVALID");
	is_int(proto_manifest_check_chunk(mf, 3, data + 3 * CS, CS),
	    PROTO_ERR_INVALID, "check_chunk: last chunk at full length -> INVALID");
	is_int(proto_manifest_check_chunk(mf, 3, data + 3 * CS, last + 1),
	    PROTO_ERR_INVALID, "check_chunk: last chunk one over -> INVALID");
	is_int(proto_manifest_check_chunk(mf, NCHUNKS, data, CS),
	    PROTO_ERR_INVALID, "check_chunk: index == nchunks -> INVALID");
	is_int(proto_manifest_check_chunk(mf, 1ull << 50, data, CS),
	    PROTO_ERR_INVALID, "check_chunk: giant index 2^50 -> INVALID");
	proto_manifest_free(mf);

	e = build(data, 0, 16384, NULL);
	is_int(e ? proto_manifest_check_chunk(e, 0, "", 0) : -100, 0,
	    "check_chunk: the empty file's empty chunk");
	is_int(e ? proto_manifest_check_chunk(e, 0, data, 1) : -100,
	    PROTO_ERR_INVALID, "check_chunk: 1 byte for the empty file -> INVALID");
	proto_manifest_free(e);
	free(copy);
}

/* The id of fd built at chunk size cs, or NULL. */
static proto_manifest *
build_from(int fd, size_t cs)
{
	proto_manifest *mf = NULL;
	int rc = proto_manifest_build_fd(fd, "sparse", NULL, cs, &mf);

	if (rc != 0)
		diag("build_fd: %s", proto_strerror(rc));
	return mf;
}

static void
test_sparse(void)
{
	const size_t size = 64u << 20;
	static const size_t sizes[] = { 0, 16384, 4 << 20 };
	uint8_t *zeros = calloc(1, 1 << 20);
	int sparse = memfd_create("sparse", 0), full = memfd_create("full", 0);
	int mixed = memfd_create("mixed", 0), mixed_full = memfd_create("mf", 0);
	off_t hole;

	if (zeros == NULL || sparse < 0 || full < 0 || mixed < 0 ||
	    mixed_full < 0 || ftruncate(sparse, (off_t)size) != 0)
		exit(2);
	for (size_t off = 0; off < size; off += 1 << 20)
		if (write(full, zeros, 1 << 20) != 1 << 20)
			exit(2);
	hole = lseek(sparse, 0, SEEK_HOLE);
	ok(hole == 0, "the ftruncated memfd is one hole (SEEK_HOLE at 0)");

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		proto_manifest *a = build_from(sparse, sizes[s]);
		proto_manifest *b = build_from(full, sizes[s]);
		ok(a && b && a->size == size && b->size == size &&
		    a->nchunks == b->nchunks &&
		    memcmp(a->chunks, b->chunks, a->nchunks * 32) == 0 &&
		    memcmp(a->id, b->id, 32) == 0,
		    "sparse 64 MiB at chunk size %zu: same layer and id as "
		    "written zeros", sizes[s]);
		proto_manifest_free(a);
		proto_manifest_free(b);
	}

	/* Data, a hole, data, and a tail that is not a whole chunk. */
	if (ftruncate(mixed, (off_t)(size + 5)) != 0 ||
	    pwrite(mixed, data, SIZE, 0) != (ssize_t)SIZE ||
	    pwrite(mixed, data, SIZE, 40 << 20) != (ssize_t)SIZE ||
	    pwrite(mixed, "tail!", 5, (off_t)size) != 5)
		exit(2);
	for (size_t off = 0; off < size; off += 1 << 20)
		if (write(mixed_full, zeros, 1 << 20) != 1 << 20)
			exit(2);
	if (pwrite(mixed_full, data, SIZE, 0) != (ssize_t)SIZE ||
	    pwrite(mixed_full, data, SIZE, 40 << 20) != (ssize_t)SIZE ||
	    pwrite(mixed_full, "tail!", 5, (off_t)size) != 5)
		exit(2);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		proto_manifest *a = build_from(mixed, sizes[s]);
		proto_manifest *b = build_from(mixed_full, sizes[s]);
		ok(a && b && a->size == size + 5 &&
		    a->nchunks == b->nchunks &&
		    memcmp(a->chunks, b->chunks, a->nchunks * 32) == 0 &&
		    memcmp(a->id, b->id, 32) == 0,
		    "data + hole + data + 5-byte tail at %zu: same id as written",
		    sizes[s]);
		proto_manifest_free(a);
		proto_manifest_free(b);
	}
	close(sparse);
	close(full);
	close(mixed);
	close(mixed_full);
	free(zeros);
}

static void
test_names(void)
{
	char n255[255], n256[256];

	memset(n255, 'a', sizeof(n255));
	memset(n256, 'a', sizeof(n256));
	ok(proto_name_valid("file.txt", 8), "name_valid: ordinary name");
	ok(proto_name_valid(n255, 255), "name_valid exact limit: 255 bytes");
	ok(!proto_name_valid(n256, 256), "name_valid: 256 bytes");
	ok(!proto_name_valid("", 0), "name_valid: empty");
	ok(!proto_name_valid(".", 1), "name_valid: \".\"");
	ok(!proto_name_valid("..", 2), "name_valid: \"..\"");
	ok(proto_name_valid("..a", 3), "name_valid: \"..a\" is fine");
	ok(proto_name_valid(".hidden", 7), "name_valid: \".hidden\" is fine");
	ok(!proto_name_valid("a/b", 3), "name_valid: '/' inside");
	ok(!proto_name_valid("/", 1), "name_valid: \"/\"");
	ok(!proto_name_valid("ab\0", 3), "name_valid: NUL inside the length");
	ok(proto_name_valid("ab/cd", 2), "name_valid: only len bytes are looked at");
}

/* A layer carried up is the layer built at the larger size, byte for byte,
 * whatever the number of chunks (odd ones padded); never down, never to a
 * size the file cannot have. */
static void
test_rechunk(void)
{
	/* Sizes within data's SIZE bytes. */
	static const size_t sizes[] = { 16384, 16385, 3 * 16384 + 7, 5 * 16384,
	    4 * 16384 + 5, SIZE };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		proto_manifest *fine = build(data, n, 16384, NULL);
		for (size_t cs = 32768; fine && cs <= 131072; cs <<= 1) {
			proto_manifest *want;
			if (!proto_chunk_size_valid(n, cs))
				continue;
			want = build(data, n, cs, NULL);
			proto_manifest *mf = build(data, n, 16384, NULL);
			int rc = proto_manifest_rechunk(mf, cs);
			ok(rc == 0 && want && mf->chunk_size == cs &&
			    mf->nchunks == want->nchunks &&
			    memcmp(mf->chunks, want->chunks,
			    want->nchunks * PROTO_HASH_LEN) == 0 &&
			    memcmp(mf->id, want->id, PROTO_HASH_LEN) == 0,
			    "rechunk %zu bytes from 16 KiB to %zu: the layer "
			    "built at %zu", n, cs, cs);
			proto_manifest_free(mf);
			proto_manifest_free(want);
		}
		proto_manifest_free(fine);
	}
	{
		proto_manifest *mf = build(data, 5 * 16384, 32768, NULL);
		uint64_t nchunks = mf->nchunks;
		is_int(proto_manifest_rechunk(mf, 16384), PROTO_ERR_INVALID,
		    "rechunk down: INVALID");
		is_int(proto_manifest_rechunk(mf, 1u << 20), PROTO_ERR_INVALID,
		    "rechunk wider than the file's tree: INVALID");
		is_int(proto_manifest_rechunk(mf, 3 * 32768), PROTO_ERR_INVALID,
		    "rechunk to a size not a power of two: INVALID");
		ok(mf->chunk_size == 32768 && mf->nchunks == nchunks,
		    "after a refused rechunk the manifest is unchanged");
		is_int(proto_manifest_rechunk(mf, 32768), 0,
		    "rechunk to its own size: 0");
		proto_manifest_free(mf);
	}
}

int
main(void)
{
	if ((data = malloc(SIZE)) == NULL)
		return 2;
	for (size_t i = 0; i < SIZE; i++)
		data[i] = (uint8_t)(i % 251);
	test_build();
	test_roundtrip();
	test_fields();
	test_check_chunk();
	test_sparse();
	test_names();
	test_rechunk();
	free(data);
	return done_testing();
}
