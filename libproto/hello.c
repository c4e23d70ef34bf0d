/*
 * The HELLO's options map (PROTOCOL.md section 4): what a node says of its
 * versions, its limits, the addresses it sees and is reached at (and the
 * one its router forwards to it), and the
 * numbers it gives its extensions. Every key is optional, and a key that
 * is unknown, of the wrong type or out of range is left out, never an
 * error: a later version may widen a key, and the handshake must survive
 * it. Only the lists are bounded hard, before anything is allocated.
 */
#include <arpa/inet.h>
#include <string.h>

#include "error.h"
#include "msg_private.h"
#include "record.h"

int
proto_hello_opts_empty(const proto_hello_opts *o)
{
	return o->has == 0 && o->naddrs == 0 && o->next == 0 &&
	    o->rec_len == 0;
}

static int
key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	    memcmp(k->via.str.ptr, name, n) == 0;
}

static void
pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* 1 when host (n bytes) is an IP address as text, as PEERS_REPLY's. */
static int
host_is_ip(const char *host, size_t n)
{
	char buf[PROTO_HOST_MAX + 1];
	struct in6_addr a6;

	if (n == 0 || n > PROTO_HOST_MAX || memchr(host, '\0', n) != NULL)
		return 0;
	memcpy(buf, host, n);
	buf[n] = '\0';
	return inet_pton(AF_INET, buf, &a6) == 1 ||
	    inet_pton(AF_INET6, buf, &a6) == 1;
}

static int
entry_valid(const proto_peer_entry *e)
{
	return e->port != 0 && host_is_ip(e->host, e->host_len);
}

static void
pack_entry(msgpack_packer *pk, const proto_peer_entry *e)
{
	msgpack_pack_array(pk, 2);
	pack_str(pk, e->host, e->host_len);
	msgpack_pack_uint16(pk, e->port);
}

int
proto__hello_pack_opts(msgpack_packer *pk, const proto_hello_opts *o)
{
	size_t n = 0;

	if (o->naddrs > PROTO_HELLO_ADDRS_MAX || o->next > PROTO_HELLO_EXT_MAX ||
	    ((o->has & PROTO_OPT_SEEN) && !entry_valid(&o->seen)) ||
	    ((o->has & PROTO_OPT_MAPPED) && !entry_valid(&o->mapped)) ||
	    ((o->has & PROTO_OPT_MAXFRAME) &&
	    o->maxframe < PROTO_HELLO_MAXFRAME_MIN) ||
	    o->rec_len > PROTO_RECORD_MAX || (o->rec_len > 0 && o->rec == NULL))
		return PROTO_ERR_INVALID;
	for (size_t i = 0; i < o->naddrs; i++)
		if (!entry_valid(&o->addrs[i]))
			return PROTO_ERR_INVALID;
	for (size_t i = 0; i < o->next; i++)
		if (o->ext[i].name_len == 0 ||
		    o->ext[i].name_len > PROTO_EXT_NAME_MAX ||
		    o->ext[i].type < PROTO_MSG_EXT_MIN ||
		    o->ext[i].type > PROTO_MSG_EXT_MAX)
			return PROTO_ERR_INVALID;
	n = !!(o->has & PROTO_OPT_VMIN) + !!(o->has & PROTO_OPT_MAXREQ) +
	    !!(o->has & PROTO_OPT_MAXFRAME) + !!(o->has & PROTO_OPT_SEEN) +
	    (o->naddrs > 0) + (o->next > 0) + (o->rec_len > 0) +
	    !!(o->has & PROTO_OPT_MAPPED) + !!(o->has & PROTO_OPT_RELAY);
	msgpack_pack_map(pk, n);
	if (o->has & PROTO_OPT_VMIN) {
		pack_str(pk, "vmin", 4);
		msgpack_pack_uint32(pk, o->vmin);
	}
	if (o->has & PROTO_OPT_MAXREQ) {
		pack_str(pk, "maxreq", 6);
		msgpack_pack_uint32(pk, o->maxreq);
	}
	if (o->has & PROTO_OPT_MAXFRAME) {
		pack_str(pk, "maxframe", 8);
		msgpack_pack_uint32(pk, o->maxframe);
	}
	if (o->has & PROTO_OPT_SEEN) {
		pack_str(pk, "seen", 4);
		pack_entry(pk, &o->seen);
	}
	if (o->naddrs > 0) {
		pack_str(pk, "addrs", 5);
		msgpack_pack_array(pk, o->naddrs);
		for (size_t i = 0; i < o->naddrs; i++)
			pack_entry(pk, &o->addrs[i]);
	}
	if (o->next > 0) {
		pack_str(pk, "ext", 3);
		msgpack_pack_map(pk, o->next);
		for (size_t i = 0; i < o->next; i++) {
			pack_str(pk, o->ext[i].name, o->ext[i].name_len);
			msgpack_pack_uint8(pk, o->ext[i].type);
		}
	}
	if (o->rec_len > 0) {
		pack_str(pk, "rec", 3);
		msgpack_pack_bin(pk, o->rec_len);
		msgpack_pack_bin_body(pk, o->rec, o->rec_len);
	}
	if (o->has & PROTO_OPT_MAPPED) {
		pack_str(pk, "mapped", 6);
		pack_entry(pk, &o->mapped);
	}
	if (o->has & PROTO_OPT_RELAY) {
		pack_str(pk, "relay", 5);
		msgpack_pack_uint16(pk, o->relay);
	}
	return 0;
}

/* A [host, port] pair, host an IP address as text; extra elements are
 * room for later. 0 or PROTO_ERR_MALFORMED. */
static int
get_entry(const msgpack_object *o, proto_peer_entry *e)
{
	const uint8_t *host;
	uint64_t port;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2 ||
	    proto__msg_get_raw(&o->via.array.ptr[0], 0, 1, PROTO_HOST_MAX,
	    &host, &e->host_len) != 0 ||
	    proto__msg_get_uint(&o->via.array.ptr[1], UINT16_MAX, &port) != 0 ||
	    port == 0)
		return PROTO_ERR_MALFORMED;
	e->host = (const char *)host;
	e->port = (uint16_t)port;
	return entry_valid(e) ? 0 : PROTO_ERR_MALFORMED;
}

/* "addrs": entries that are not [IP, port] are skipped, as in PEERS_REPLY;
 * more than PROTO_HELLO_ADDRS_MAX leaves the key out. */
static int
get_addrs(const msgpack_object *o, msgpack_zone *zone, proto_hello_opts *opts)
{
	proto_peer_entry *out;
	size_t n = 0;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 ||
	    o->via.array.size > PROTO_HELLO_ADDRS_MAX)
		return 0;
	out = msgpack_zone_malloc(zone, o->via.array.size * sizeof(*out));
	if (out == NULL)
		return PROTO_ERR_NOMEM;
	for (uint32_t i = 0; i < o->via.array.size; i++)
		if (get_entry(&o->via.array.ptr[i], &out[n]) == 0)
			n++;
	opts->addrs = out;
	opts->naddrs = n;
	return 0;
}

/* "ext": entries whose name or number is out of range, and a name given
 * twice (after the first), are skipped; more than PROTO_HELLO_EXT_MAX
 * leaves the key out. */
static int
get_ext(const msgpack_object *o, msgpack_zone *zone, proto_hello_opts *opts)
{
	proto_hello_ext *out;
	size_t n = 0;

	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size == 0 ||
	    o->via.map.size > PROTO_HELLO_EXT_MAX)
		return 0;
	out = msgpack_zone_malloc(zone, o->via.map.size * sizeof(*out));
	if (out == NULL)
		return PROTO_ERR_NOMEM;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		const uint8_t *name;
		size_t len, j;
		uint64_t type;

		if (proto__msg_get_raw(&kv->key, 0, 1, PROTO_EXT_NAME_MAX,
		    &name, &len) != 0 ||
		    proto__msg_get_uint(&kv->val, PROTO_MSG_EXT_MAX, &type) != 0 ||
		    type < PROTO_MSG_EXT_MIN)
			continue;
		for (j = 0; j < n; j++)
			if (out[j].name_len == len &&
			    memcmp(out[j].name, name, len) == 0)
				break;
		if (j < n)
			continue;
		out[n].name = (const char *)name;
		out[n].name_len = len;
		out[n].type = (uint8_t)type;
		n++;
	}
	opts->ext = out;
	opts->next = n;
	return 0;
}

/* A uint key: values past uint32 say "more than this implementation will
 * ever use", and are taken as UINT32_MAX. */
static int
get_u32(const msgpack_object *o, uint32_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return PROTO_ERR_MALFORMED;
	*out = o->via.u64 > UINT32_MAX ? UINT32_MAX : (uint32_t)o->via.u64;
	return 0;
}

int
proto__hello_unpack_opts(const msgpack_object *o, msgpack_zone *zone,
    proto_hello_opts *opts)
{
	int rc = 0;

	memset(opts, 0, sizeof(*opts));
	if (o->type != MSGPACK_OBJECT_MAP)
		return 0;
	/* A key given twice: the later counts, each read as if alone. */
	for (uint32_t i = 0; i < o->via.map.size && rc == 0; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		uint64_t u;

		if (key_is(k, "vmin")) {
			opts->has &= ~PROTO_OPT_VMIN;
			if (proto__msg_get_uint(v, UINT32_MAX, &u) == 0) {
				opts->vmin = (uint32_t)u;
				opts->has |= PROTO_OPT_VMIN;
			}
		} else if (key_is(k, "maxreq")) {
			opts->has &= ~PROTO_OPT_MAXREQ;
			if (get_u32(v, &opts->maxreq) == 0)
				opts->has |= PROTO_OPT_MAXREQ;
		} else if (key_is(k, "maxframe")) {
			opts->has &= ~PROTO_OPT_MAXFRAME;
			if (get_u32(v, &opts->maxframe) == 0 &&
			    opts->maxframe >= PROTO_HELLO_MAXFRAME_MIN)
				opts->has |= PROTO_OPT_MAXFRAME;
		} else if (key_is(k, "seen")) {
			opts->has &= ~PROTO_OPT_SEEN;
			if (get_entry(v, &opts->seen) == 0)
				opts->has |= PROTO_OPT_SEEN;
		} else if (key_is(k, "mapped")) {
			opts->has &= ~PROTO_OPT_MAPPED;
			if (get_entry(v, &opts->mapped) == 0)
				opts->has |= PROTO_OPT_MAPPED;
		} else if (key_is(k, "relay")) {
			opts->has &= ~PROTO_OPT_RELAY;
			if (proto__msg_get_uint(v, 65535, &u) == 0 && u > 0) {
				opts->relay = (uint16_t)u;
				opts->has |= PROTO_OPT_RELAY;
			}
		} else if (key_is(k, "addrs")) {
			opts->naddrs = 0;
			rc = get_addrs(v, zone, opts);
		} else if (key_is(k, "ext")) {
			opts->next = 0;
			rc = get_ext(v, zone, opts);
		} else if (key_is(k, "rec")) {
			/* Checked by whoever uses it: verified, and its
			 * identity the connection's. */
			opts->rec = NULL;
			opts->rec_len = 0;
			if (proto__msg_get_raw(v, 1, 1, PROTO_RECORD_MAX,
			    &opts->rec, &opts->rec_len) != 0) {
				opts->rec = NULL;
				opts->rec_len = 0;
			}
		}
	}
	return rc;
}
