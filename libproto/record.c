/*
 * Peer records: the body packed with msgpack-c in the order PROTOCOL.md
 * gives, signed under the domain prefix; and a record from a peer walked
 * by the bounds checker before msgpack-c sees it, then taken apart field by
 * field, with nothing believed until its expiry and signature are checked.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "check.h"
#include "error.h"
#include "hash.h"
#include "record.h"

/* Body and record nest two deep; a body holds at most a few dozen
 * objects, but unknown keys may add some. */
#define RECORD_DEPTH 4u
#define RECORD_OBJECTS 256u

/* The bytes a signature covers: the domain, a zero byte, the body. */
#define DOMAIN_LEN (sizeof(PROTO_RECORD_DOMAIN))

static void
pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void
pack_key(msgpack_packer *pk, const char *k)
{
	pack_str(pk, k, strlen(k));
}

static int
pack_body(msgpack_packer *pk, const proto_record *r)
{
	msgpack_pack_map(pk, 5);
	pack_key(pk, "key");
	msgpack_pack_bin(pk, PROTO_KEY_LEN);
	msgpack_pack_bin_body(pk, r->key, PROTO_KEY_LEN);
	pack_key(pk, "addrs");
	msgpack_pack_array(pk, r->naddrs);
	for (size_t i = 0; i < r->naddrs; i++) {
		char host[PROTO_ADDR_TEXT_MAX];
		const proto_addr *a = &r->addrs[i];
		if ((a->ss.ss_family != AF_INET &&
		    a->ss.ss_family != AF_INET6) || proto_addr_port(a) == 0)
			return PROTO_ERR_INVALID;
		proto_addr_host(a, host, sizeof(host));
		msgpack_pack_array(pk, 2);
		pack_str(pk, host, strlen(host));
		msgpack_pack_uint16(pk, proto_addr_port(a));
	}
	pack_key(pk, "seq");
	msgpack_pack_uint64(pk, r->seq);
	pack_key(pk, "exp");
	msgpack_pack_uint64(pk, r->exp);
	pack_key(pk, "flags");
	msgpack_pack_uint64(pk, r->flags);
	return 0;
}

/* A bin header of the shortest form for n bytes at p; its length. */
static size_t
bin_header(uint8_t *p, size_t n)
{
	if (n <= 0xff) {
		p[0] = 0xc4;
		p[1] = (uint8_t)n;
		return 2;
	}
	p[0] = 0xc5;
	p[1] = (uint8_t)(n >> 8);
	p[2] = (uint8_t)n;
	return 3;
}

int
proto_record_sign(proto_record *r, const proto_identity *id,
    uint8_t out[PROTO_RECORD_MAX], size_t *len)
{
	uint8_t sig[PROTO_SIG_LEN];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t n;
	int rc;

	if (r->naddrs > PROTO_RECORD_ADDRS_MAX)
		return PROTO_ERR_TOO_BIG;
	if ((rc = proto_identity_public_key(id, r->key)) != 0)
		return rc;
	memcpy(r->id, proto_identity_id(id), PROTO_IDENTITY_LEN);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	rc = pack_body(&pk, r);
	if (rc == 0 && sb.data == NULL)
		rc = PROTO_ERR_NOMEM;
	/* Eight addresses of the longest text fit with room to spare; the
	 * check keeps that true whatever changes. */
	if (rc == 0 && 1 + 3 + sb.size + 2 + PROTO_SIG_LEN > PROTO_RECORD_MAX)
		rc = PROTO_ERR_TOO_BIG;
	if (rc == 0) {
		uint8_t signed_bytes[DOMAIN_LEN + PROTO_RECORD_MAX];
		memcpy(signed_bytes, PROTO_RECORD_DOMAIN, DOMAIN_LEN);
		memcpy(signed_bytes + DOMAIN_LEN, sb.data, sb.size);
		rc = proto_identity_sign(id, signed_bytes, DOMAIN_LEN + sb.size,
		    sig);
	}
	if (rc != 0) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	/* [body, sig]: a fixarray of two bins. */
	n = 0;
	out[n++] = 0x92;
	n += bin_header(out + n, sb.size);
	memcpy(out + n, sb.data, sb.size);
	n += sb.size;
	n += bin_header(out + n, PROTO_SIG_LEN);
	memcpy(out + n, sig, PROTO_SIG_LEN);
	n += PROTO_SIG_LEN;
	*len = n;
	msgpack_sbuffer_destroy(&sb);
	return 0;
}

/* 1 when o is the str key. */
static int
is_key(const msgpack_object *o, const char *key)
{
	size_t n = strlen(key);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    memcmp(o->via.str.ptr, key, n) == 0;
}

static int
get_uint(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return PROTO_ERR_MALFORMED;
	*v = o->via.u64;
	return 0;
}

static int
get_addrs(const msgpack_object *o, proto_record *r)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return PROTO_ERR_MALFORMED;
	if (o->via.array.size > PROTO_RECORD_ADDRS_MAX)
		return PROTO_ERR_TOO_BIG;
	r->naddrs = o->via.array.size;
	for (size_t i = 0; i < r->naddrs; i++) {
		const msgpack_object *e = &o->via.array.ptr[i];
		const msgpack_object *host, *port;
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2)
			return PROTO_ERR_MALFORMED;
		host = &e->via.array.ptr[0];
		port = &e->via.array.ptr[1];
		if (host->type != MSGPACK_OBJECT_STR ||
		    port->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    port->via.u64 > UINT16_MAX ||
		    proto_addr_from_host(&r->addrs[i], host->via.str.ptr,
		    host->via.str.size, (uint16_t)port->via.u64) != 0)
			return PROTO_ERR_MALFORMED;
	}
	return 0;
}

/* The body's map into r. Each known key once, every one there; the
 * others are skipped, whatever they hold. */
static int
take_body(const msgpack_object *o, proto_record *r)
{
	enum { KEY = 1, ADDRS = 2, SEQ = 4, EXP = 8, FLAGS = 16, ALL = 31 };
	unsigned seen = 0;
	int rc;

	if (o->type != MSGPACK_OBJECT_MAP)
		return PROTO_ERR_MALFORMED;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		unsigned bit;
		if (is_key(k, "key")) {
			bit = KEY;
			rc = v->type == MSGPACK_OBJECT_BIN &&
			    v->via.bin.size == PROTO_KEY_LEN ? 0 :
			    PROTO_ERR_MALFORMED;
			if (rc == 0)
				memcpy(r->key, v->via.bin.ptr, PROTO_KEY_LEN);
		} else if (is_key(k, "addrs")) {
			bit = ADDRS;
			rc = get_addrs(v, r);
		} else if (is_key(k, "seq")) {
			bit = SEQ;
			rc = get_uint(v, &r->seq);
		} else if (is_key(k, "exp")) {
			bit = EXP;
			rc = get_uint(v, &r->exp);
		} else if (is_key(k, "flags")) {
			bit = FLAGS;
			rc = get_uint(v, &r->flags);
		} else
			continue;
		/* Two values for one key: which one was signed is a matter
		 * of which decoder reads it. Neither is taken. */
		if (seen & bit)
			return PROTO_ERR_MALFORMED;
		if (rc != 0)
			return rc;
		seen |= bit;
	}
	return seen == ALL ? 0 : PROTO_ERR_MALFORMED;
}

/* The one msgpack object in the len bytes at p, unpacked into zone once
 * the checker has bounded it. */
static int
unpack_one(const uint8_t *p, size_t len, msgpack_zone *zone,
    msgpack_object *obj)
{
	proto_check_limits lim;
	size_t off = 0;
	long n;

	proto_check_limits_init(&lim, len);
	lim.max_depth = RECORD_DEPTH;
	lim.max_objects = RECORD_OBJECTS;
	if ((n = proto_check_msgpack(p, len, &lim)) < 0)
		return (int)n;
	if ((size_t)n != len)
		return PROTO_ERR_MALFORMED;
	if (msgpack_unpack((const char *)p, len, &off, zone, obj) !=
	    MSGPACK_UNPACK_SUCCESS || off != len)
		return PROTO_ERR_MALFORMED;
	return 0;
}

/*
 * The records whose signature was checked lately, by the SHA-256 of all
 * their bytes (body and signature alike: a record that differs in one byte
 * is checked afresh), in as many slots as the digest's first bytes pick.
 * In a swarm every PEERS answer names the same nodes with the same
 * records, and an Ed25519 check costs far more than the hash: 100 fetchers
 * of one file checked 28,000. What else a record says (its expiry above
 * all) is read again every time. The lock is for a caller's other threads.
 */
#define CHECKED_SLOTS 1024u

struct checked_record {
	uint8_t digest[PROTO_HASH_LEN];
	uint8_t id[PROTO_IDENTITY_LEN];
	int used;
};

static struct checked_record checked[CHECKED_SLOTS];
static pthread_mutex_t checked_lock = PTHREAD_MUTEX_INITIALIZER;

static struct checked_record *
checked_slot(const uint8_t digest[PROTO_HASH_LEN])
{
	return &checked[((unsigned)digest[0] << 8 | digest[1]) %
	    CHECKED_SLOTS];
}

/* 1, id set, when the record of this digest was checked before. */
static int
checked_before(const uint8_t digest[PROTO_HASH_LEN],
    uint8_t id[PROTO_IDENTITY_LEN])
{
	const struct checked_record *c = checked_slot(digest);
	int hit;

	pthread_mutex_lock(&checked_lock);
	hit = c->used && memcmp(c->digest, digest, PROTO_HASH_LEN) == 0;
	if (hit)
		memcpy(id, c->id, PROTO_IDENTITY_LEN);
	pthread_mutex_unlock(&checked_lock);
	return hit;
}

static void
remember_checked(const uint8_t digest[PROTO_HASH_LEN],
    const uint8_t id[PROTO_IDENTITY_LEN])
{
	struct checked_record *c = checked_slot(digest);

	pthread_mutex_lock(&checked_lock);
	memcpy(c->digest, digest, PROTO_HASH_LEN);
	memcpy(c->id, id, PROTO_IDENTITY_LEN);
	c->used = 1;
	pthread_mutex_unlock(&checked_lock);
}

static int
verify(const uint8_t *buf, size_t len, uint64_t now, proto_record *out,
    msgpack_zone *zone)
{
	uint8_t signed_bytes[DOMAIN_LEN + PROTO_RECORD_MAX];
	uint8_t digest[PROTO_HASH_LEN];
	msgpack_object rec, body;
	const msgpack_object *b, *s;
	int rc;

	if ((rc = unpack_one(buf, len, zone, &rec)) != 0)
		return rc;
	if (rec.type != MSGPACK_OBJECT_ARRAY || rec.via.array.size != 2)
		return PROTO_ERR_MALFORMED;
	b = &rec.via.array.ptr[0];
	s = &rec.via.array.ptr[1];
	if (b->type != MSGPACK_OBJECT_BIN || s->type != MSGPACK_OBJECT_BIN ||
	    s->via.bin.size != PROTO_SIG_LEN)
		return PROTO_ERR_MALFORMED;
	if ((rc = unpack_one((const uint8_t *)b->via.bin.ptr,
	    b->via.bin.size, zone, &body)) != 0 ||
	    (rc = take_body(&body, out)) != 0)
		return rc;
	/* Cheap checks before the costly one. */
	if (out->exp > UINT64_MAX - PROTO_RECORD_SKEW ||
	    out->exp + PROTO_RECORD_SKEW < now ||
	    out->exp > now + PROTO_RECORD_LIFETIME_MAX + PROTO_RECORD_SKEW)
		return PROTO_ERR_STALE;
	if (proto_sha256(buf, len, digest) == 0 && checked_before(digest,
	    out->id))
		return 0;
	memcpy(signed_bytes, PROTO_RECORD_DOMAIN, DOMAIN_LEN);
	memcpy(signed_bytes + DOMAIN_LEN, b->via.bin.ptr, b->via.bin.size);
	if (!proto_identity_verify(out->key, signed_bytes,
	    DOMAIN_LEN + b->via.bin.size, (const uint8_t *)s->via.bin.ptr))
		return PROTO_ERR_MISMATCH;
	if ((rc = proto_identity_of_key(out->key, out->id)) != 0)
		return rc;
	remember_checked(digest, out->id);
	return 0;
}

int
proto_record_verify(const uint8_t *buf, size_t len, uint64_t now,
    proto_record *out)
{
	msgpack_zone zone;
	int rc;

	if (len > PROTO_RECORD_MAX)
		return PROTO_ERR_TOO_BIG;
	memset(out, 0, sizeof(*out));
	if (!msgpack_zone_init(&zone, 2 * PROTO_RECORD_MAX))
		return PROTO_ERR_NOMEM;
	rc = verify(buf, len, now, out, &zone);
	msgpack_zone_destroy(&zone);
	return rc;
}

int
proto_record_has_addr(const proto_record *r, const proto_addr *a)
{
	for (size_t i = 0; i < r->naddrs; i++)
		if (proto_addr_equal(&r->addrs[i], a))
			return 1;
	return 0;
}

/* 1 when o says addrs (n, already cut to the limit) and flags. */
static int
says(const proto_record_own *o, const proto_addr *addrs, size_t n,
    uint64_t flags)
{
	if (o->r.naddrs != n || o->r.flags != flags)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!proto_addr_equal(&o->r.addrs[i], &addrs[i]))
			return 0;
	return 1;
}

int
proto_record_refresh(proto_record_own *o, const proto_identity *id,
    const proto_addr *addrs, size_t n, uint64_t flags, uint64_t now)
{
	proto_record r;
	struct timespec ts;
	uint64_t ms;
	size_t len;
	int rc;

	if (n > PROTO_RECORD_ADDRS_MAX)
		n = PROTO_RECORD_ADDRS_MAX;
	if (o->len > 0 && says(o, addrs, n, flags) &&
	    o->r.exp >= now + PROTO_RECORD_LIFETIME / 2)
		return 0;
	memset(&r, 0, sizeof(r));
	for (size_t i = 0; i < n; i++) {
		r.addrs[i] = addrs[i];
		proto_addr_set_pin(&r.addrs[i], NULL);
	}
	r.naddrs = n;
	r.flags = flags;
	r.exp = now + PROTO_RECORD_LIFETIME;
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	r.seq = ms > o->r.seq ? ms : o->r.seq + 1;
	if ((rc = proto_record_sign(&r, id, o->buf, &len)) != 0)
		return rc;
	o->r = r;
	o->len = len;
	return 0;
}
