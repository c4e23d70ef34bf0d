/*
 * Discovery datagrams: a msgpack array opening with the magic "mp2p" and
 * the version. Parsing reuses the frame checker's bounds, then reads the
 * few fields by hand; nothing is allocated for a datagram.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <msgpack.h>

#include "check.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "disco.h"
#include "error.h"

#define MAGIC "mp2p"
#define DISCO_VERSION 1

int
proto_disco_pack(const proto_disco_msg *m, uint8_t *buf, size_t cap,
    size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t name_len = m->name_len > PROTO_DISCO_NAME_MAX ?
	    PROTO_DISCO_NAME_MAX : m->name_len;
	int rc = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (m->type == PROTO_DISCO_QUERY) {
		static const uint8_t zeros[PROTO_DISCO_QUERY_MIN];
		msgpack_pack_array(&pk, 6);
		msgpack_pack_str_with_body(&pk, MAGIC, 4);
		msgpack_pack_uint8(&pk, DISCO_VERSION);
		msgpack_pack_uint8(&pk, PROTO_DISCO_QUERY);
		msgpack_pack_uint32(&pk, m->nonce);
		if (m->want)
			msgpack_pack_bin_with_body(&pk, m->want,
			    PROTO_HASH_LEN);
		else
			msgpack_pack_nil(&pk);
		/* Padding: the query costs the asker as much as half the
		 * answer, so spoofed queries amplify nothing. */
		size_t used = sb.size + 2;
		size_t pad = used < PROTO_DISCO_QUERY_MIN ?
		    PROTO_DISCO_QUERY_MIN - used : 0;
		msgpack_pack_bin_with_body(&pk, zeros, pad);
	} else if (m->type == PROTO_DISCO_ANNOUNCE) {
		msgpack_pack_array(&pk, m->stamped ? 9 : 7);
		msgpack_pack_str_with_body(&pk, MAGIC, 4);
		msgpack_pack_uint8(&pk, DISCO_VERSION);
		msgpack_pack_uint8(&pk, PROTO_DISCO_ANNOUNCE);
		msgpack_pack_uint32(&pk, m->nonce);
		msgpack_pack_uint16(&pk, m->port);
		msgpack_pack_str_with_body(&pk, m->name ? m->name : "",
		    m->name ? name_len : 0);
		msgpack_pack_uint64(&pk, m->nfiles);
		if (m->stamped) {
			msgpack_pack_uint64(&pk, m->time);
			msgpack_pack_bin_with_body(&pk, m->addr,
			    m->addr_len == 16 ? 16 : 4);
		}
	} else
		rc = PROTO_ERR_INVALID;
	if (rc == 0 && (sb.data == NULL || sb.size > cap))
		rc = sb.data == NULL ? PROTO_ERR_NOMEM : PROTO_ERR_TOO_BIG;
	if (rc == 0) {
		memcpy(buf, sb.data, sb.size);
		*len = sb.size;
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* A cursor over checked msgpack bytes, for the few shapes used here. */
struct cursor {
	const uint8_t *p, *end;
};

static int
read_uint(struct cursor *c, uint64_t *v)
{
	uint8_t b;
	unsigned n;

	if (c->p >= c->end)
		return -1;
	b = *c->p++;
	if (b <= 0x7f) {
		*v = b;
		return 0;
	}
	n = b == 0xcc ? 1 : b == 0xcd ? 2 : b == 0xce ? 4 : b == 0xcf ? 8 : 0;
	if (n == 0 || (size_t)(c->end - c->p) < n)
		return -1;
	for (*v = 0; n > 0; n--)
		*v = *v << 8 | *c->p++;
	return 0;
}

/* Reads a str (bin 0) or bin (bin 1) header and body. */
static int
read_raw(struct cursor *c, int bin, const uint8_t **body, size_t *len)
{
	uint8_t b;
	size_t n;

	if (c->p >= c->end)
		return -1;
	b = *c->p++;
	if (!bin && (b & 0xe0) == 0xa0)
		n = b & 0x1f;
	else if ((!bin && b == 0xd9) || (bin && b == 0xc4)) {
		if (c->p >= c->end)
			return -1;
		n = *c->p++;
	} else
		return -1;
	if ((size_t)(c->end - c->p) < n)
		return -1;
	*body = c->p;
	*len = n;
	c->p += n;
	return 0;
}

int
proto_disco_unpack(const uint8_t *buf, size_t len, proto_disco_msg *m)
{
	struct cursor c = { buf, buf + len };
	proto_check_limits lim;
	const uint8_t *raw;
	uint64_t v;
	size_t n;
	unsigned items;

	memset(m, 0, sizeof(*m));
	if (len > PROTO_DISCO_DATAGRAM_MAX)
		return PROTO_ERR_TOO_BIG;
	proto_check_limits_init(&lim, len);
	lim.max_depth = 1;
	lim.max_objects = 16;
	if (proto_check_msgpack(buf, len, &lim) != (long)len)
		return PROTO_ERR_MALFORMED;
	if ((buf[0] & 0xf0) != 0x90)
		return PROTO_ERR_MALFORMED;
	items = buf[0] & 0x0f;
	c.p++;
	if (items < 3 || read_raw(&c, 0, &raw, &n) != 0 || n != 4 ||
	    memcmp(raw, MAGIC, 4) != 0)
		return PROTO_ERR_MALFORMED;
	if (read_uint(&c, &v) != 0)
		return PROTO_ERR_MALFORMED;
	if (v != DISCO_VERSION)
		return PROTO_ERR_VERSION;
	if (read_uint(&c, &v) != 0 || v > PROTO_DISCO_ANNOUNCE)
		return PROTO_ERR_MALFORMED;
	m->type = (unsigned)v;
	if (m->type == PROTO_DISCO_QUERY) {
		if (items < 6)
			return PROTO_ERR_MALFORMED;
		if (len < PROTO_DISCO_QUERY_MIN)
			return PROTO_ERR_TOO_BIG; /* would amplify */
		if (read_uint(&c, &v) != 0 || v > UINT32_MAX)
			return PROTO_ERR_MALFORMED;
		m->nonce = (uint32_t)v;
		if (c.p < c.end && *c.p == 0xc0)
			c.p++;
		else if (read_raw(&c, 1, &m->want, &n) != 0 ||
		    n != PROTO_HASH_LEN)
			return PROTO_ERR_MALFORMED;
		return 0; /* the padding is not read */
	}
	if (m->type == PROTO_DISCO_ANNOUNCE) {
		if (items < 7 || read_uint(&c, &v) != 0 || v > UINT32_MAX)
			return PROTO_ERR_MALFORMED;
		m->nonce = (uint32_t)v;
		if (read_uint(&c, &v) != 0 || v == 0 || v > UINT16_MAX)
			return PROTO_ERR_MALFORMED;
		m->port = (uint16_t)v;
		if (read_raw(&c, 0, &raw, &m->name_len) != 0 ||
		    m->name_len > PROTO_DISCO_NAME_MAX)
			return PROTO_ERR_MALFORMED;
		m->name = (const char *)raw;
		if (read_uint(&c, &m->nfiles) != 0)
			return PROTO_ERR_MALFORMED;
		if (items >= 9) {
			if (read_uint(&c, &m->time) != 0 ||
			    read_raw(&c, 1, &raw, &n) != 0 ||
			    (n != 4 && n != 16))
				return PROTO_ERR_MALFORMED;
			memcpy(m->addr, raw, n);
			m->addr_len = n;
			m->stamped = 1;
		}
		return 0;
	}
	return PROTO_ERR_MALFORMED;
}

int
proto_disco_check_announce(const proto_disco_msg *m,
    const struct sockaddr *from, time_t now, int sealed)
{
	uint64_t t = now < 0 ? 0 : (uint64_t)now;
	const void *src = from->sa_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)(const void *)from)->
	    sin6_addr : (const void *)&((const struct sockaddr_in *)
	    (const void *)from)->sin_addr;
	size_t srclen = from->sa_family == AF_INET6 ? 16 : 4;

	if (!sealed)
		return 0;
	if (!m->stamped || (m->addr_len == 16 ? 16u : 4u) != srclen ||
	    memcmp(m->addr, src, srclen) != 0)
		return PROTO_ERR_STALE;
	if (m->time > t ? m->time - t > PROTO_DISCO_FRESH_SECS :
	    t - m->time > PROTO_DISCO_FRESH_SECS)
		return PROTO_ERR_STALE;
	return 0;
}

int
proto_disco_source(const struct sockaddr_in *to, uint8_t addr[4])
{
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	int fd, one = 1, rc = 0;

	/* A UDP connect sends nothing: it only asks the routing table. */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return PROTO_ERR_SYSTEM;
	if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) != 0 ||
	    connect(fd, (const struct sockaddr *)to, sizeof(*to)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&me, &len) != 0 ||
	    me.sin_family != AF_INET)
		rc = PROTO_ERR_SYSTEM;
	else
		memcpy(addr, &me.sin_addr.s_addr, 4);
	{
		int err = errno;
		close(fd);
		errno = err;
	}
	return rc;
}

int
proto_disco_broadcast(uint32_t addr, uint32_t mask, uint32_t brd,
    uint32_t *out)
{
	uint32_t a = ntohl(addr), m = ntohl(mask);

	/* An address added without "brd" shows its own address as the
	 * broadcast (or none): sending there reaches this host alone, and on
	 * it one socket of those that share the port. */
	if (brd != 0 && brd != addr) {
		*out = brd;
		return 0;
	}
	if (m == 0xffffffffu)
		return PROTO_ERR_INVALID;
	if (m == 0xfffffffeu)
		*out = htonl(a ^ 1);
	else
		*out = htonl(a | ~m);
	return 0;
}

int
proto_disco_targets(const char *override, uint16_t port,
    struct sockaddr_in *out, size_t max)
{
	struct ifaddrs *ifs, *ifa;
	size_t n = 0;

	if (max == 0)
		return PROTO_ERR_INVALID;
	if (override != NULL && *override != '\0') {
		memset(&out[0], 0, sizeof(out[0]));
		out[0].sin_family = AF_INET;
		out[0].sin_port = htons(port);
		if (inet_pton(AF_INET, override, &out[0].sin_addr) != 1)
			return PROTO_ERR_INVALID;
		return 1;
	}
	if (getifaddrs(&ifs) != 0)
		return PROTO_ERR_SYSTEM;
	for (ifa = ifs; ifa != NULL && n < max; ifa = ifa->ifa_next) {
		const struct sockaddr_in *a = (const void *)ifa->ifa_addr;
		const struct sockaddr_in *m = (const void *)ifa->ifa_netmask;
		const struct sockaddr_in *b = (const void *)ifa->ifa_broadaddr;
		uint32_t brd;

		if (a == NULL || a->sin_family != AF_INET || m == NULL ||
		    !(ifa->ifa_flags & IFF_UP) ||
		    !(ifa->ifa_flags & IFF_BROADCAST) ||
		    proto_disco_broadcast(a->sin_addr.s_addr,
		    m->sin_addr.s_addr, b ? b->sin_addr.s_addr : 0, &brd) != 0)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		out[n].sin_family = AF_INET;
		out[n].sin_addr.s_addr = brd;
		out[n].sin_port = htons(port);
		n++;
	}
	freeifaddrs(ifs);
	return (int)n;
}

int
proto_disco_socket(uint16_t port, int shared)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return PROTO_ERR_SYSTEM;
	if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) != 0 ||
	    (shared && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT,
	    &one, sizeof(one)) != 0)))
		goto fail;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_ANY);
	sin.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		goto fail;
	return fd;
fail:
	{
		int err = errno;
		close(fd);
		errno = err;
	}
	return PROTO_ERR_SYSTEM;
}

static int
disco_tag(const uint8_t *buf, size_t len, const uint8_t key[32],
    uint8_t tag[32])
{
	unsigned n = 0;

	return HMAC(EVP_sha256(), key, 32, buf, len, tag, &n) != NULL &&
	    n == 32 ? 0 : PROTO_ERR_CRYPTO;
}

int
proto_disco_seal(uint8_t *buf, size_t *len, size_t cap, const uint8_t key[32])
{
	uint8_t tag[32];
	int rc;

	if (*len + PROTO_DISCO_TAG_LEN > cap)
		return PROTO_ERR_TOO_BIG;
	if ((rc = disco_tag(buf, *len, key, tag)) != 0)
		return rc;
	memcpy(buf + *len, tag, PROTO_DISCO_TAG_LEN);
	*len += PROTO_DISCO_TAG_LEN;
	return 0;
}

int
proto_disco_open(const uint8_t *buf, size_t *len, const uint8_t key[32])
{
	uint8_t tag[32];
	size_t body;
	int rc;

	if (*len < PROTO_DISCO_TAG_LEN)
		return PROTO_ERR_TRUNCATED;
	body = *len - PROTO_DISCO_TAG_LEN;
	if ((rc = disco_tag(buf, body, key, tag)) != 0)
		return rc;
	if (CRYPTO_memcmp(tag, buf + body, PROTO_DISCO_TAG_LEN) != 0)
		return PROTO_ERR_MISMATCH;
	*len = body;
	return 0;
}
