/*
 * The relay messages (PROTOCOL.md section 13): plain frames exchanged with
 * a relay before a circuit carries anything else.
 */
#include <msgpack.h>
#include <string.h>
#include "error.h"
#include "frame.h"
#include "relay.h"

static void
pack_bin(msgpack_packer *pk, const uint8_t *b, size_t n)
{
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, b, n);
}

int
proto_relay_msg_pack(const proto_relay_msg *m, uint8_t *out, size_t cap,
    size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	switch (m->kind) {
	case PROTO_RELAY_ASK_NONCE:
	case PROTO_RELAY_REGISTERED:
		msgpack_pack_array(&pk, 2);
		msgpack_pack_uint32(&pk, PROTO_MSG_RELAY_REGISTER);
		msgpack_pack_uint32(&pk, m->rid);
		break;
	case PROTO_RELAY_NONCE:
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint32(&pk, PROTO_MSG_RELAY_REGISTER);
		msgpack_pack_uint32(&pk, m->rid);
		pack_bin(&pk, m->nonce, sizeof(m->nonce));
		break;
	case PROTO_RELAY_PROVE:
		/* The caps go only when there are some: as before, else. */
		msgpack_pack_array(&pk, m->caps != 0 ? 5 : 4);
		msgpack_pack_uint32(&pk, PROTO_MSG_RELAY_REGISTER);
		msgpack_pack_uint32(&pk, m->rid);
		pack_bin(&pk, m->key, sizeof(m->key));
		pack_bin(&pk, m->sig, sizeof(m->sig));
		if (m->caps != 0)
			msgpack_pack_uint32(&pk, m->caps);
		break;
	case PROTO_RELAY_PUNCH_ASK:
	case PROTO_RELAY_PUNCH_READY:
		msgpack_pack_array(&pk, 4);
		msgpack_pack_uint32(&pk, PROTO_MSG_RELAY_PUNCH);
		msgpack_pack_uint32(&pk, m->rid);
		if (m->kind == PROTO_RELAY_PUNCH_ASK)
			pack_bin(&pk, m->id, sizeof(m->id));
		else
			pack_bin(&pk, m->token, sizeof(m->token));
		msgpack_pack_uint16(&pk, m->port);
		break;
	case PROTO_RELAY_PUNCH_TELL:
	case PROTO_RELAY_PUNCH_GO:
		if (m->iplen != 4 && m->iplen != 16) {
			rc = PROTO_ERR_INVALID;
			break;
		}
		msgpack_pack_array(&pk, m->kind == PROTO_RELAY_PUNCH_TELL ?
		    5 : 4);
		msgpack_pack_uint32(&pk, PROTO_MSG_RELAY_PUNCH);
		/* Pushed to the node (rid 0); the fetcher's rid answered. */
		msgpack_pack_uint32(&pk, m->kind == PROTO_RELAY_PUNCH_TELL ?
		    0 : m->rid);
		if (m->kind == PROTO_RELAY_PUNCH_TELL)
			pack_bin(&pk, m->token, sizeof(m->token));
		pack_bin(&pk, m->ip, m->iplen);
		msgpack_pack_uint16(&pk, m->port);
		break;
	case PROTO_RELAY_CONNECT:
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint32(&pk, PROTO_MSG_RELAY_CONNECT);
		msgpack_pack_uint32(&pk, m->rid);
		pack_bin(&pk, m->id, sizeof(m->id));
		break;
	case PROTO_RELAY_INCOMING:
	case PROTO_RELAY_ACCEPT:
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint32(&pk, m->kind == PROTO_RELAY_INCOMING ?
		    PROTO_MSG_RELAY_INCOMING : PROTO_MSG_RELAY_ACCEPT);
		msgpack_pack_uint32(&pk, m->kind == PROTO_RELAY_INCOMING ? 0 :
		    m->rid);
		pack_bin(&pk, m->token, sizeof(m->token));
		break;
	case PROTO_RELAY_ERROR: {
		size_t n = strnlen(m->message, sizeof(m->message) - 1);
		msgpack_pack_array(&pk, 4);
		msgpack_pack_uint32(&pk, 1);
		msgpack_pack_uint32(&pk, m->rid);
		msgpack_pack_uint32(&pk, m->code);
		msgpack_pack_str(&pk, n);
		msgpack_pack_str_body(&pk, m->message, n);
		break;
	}
	default:
		rc = PROTO_ERR_INVALID;
	}
	if (rc == 0 && sb.size + PROTO_FRAME_HEADER > cap)
		rc = PROTO_ERR_TOO_BIG;
	if (rc == 0) {
		proto_frame_put_len(out, (uint32_t)sb.size);
		memcpy(out + PROTO_FRAME_HEADER, sb.data, sb.size);
		*len = sb.size + PROTO_FRAME_HEADER;
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static int
get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return -1;
	*out = o->via.u64;
	return 0;
}

static int
get_bin(const msgpack_object *o, uint8_t *out, size_t n)
{
	if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != n)
		return -1;
	memcpy(out, o->via.bin.ptr, n);
	return 0;
}

static int
get_ip(const msgpack_object *o, proto_relay_msg *m)
{
	if (o->type != MSGPACK_OBJECT_BIN || (o->via.bin.size != 4 &&
	    o->via.bin.size != 16))
		return -1;
	m->iplen = (uint8_t)o->via.bin.size;
	memcpy(m->ip, o->via.bin.ptr, m->iplen);
	return 0;
}

/* Type 26: which form goes by who sent it, its rid (the relay pushes TELL
 * with 0, answers GO with the fetcher's, never 0) and the size of its first
 * bin (an identity, 32 bytes, asks; a token, 16, answers a TELL). */
static int
parse_punch(const msgpack_object *e, size_t n, int from_relay,
    proto_relay_msg *m)
{
	uint64_t port;
	size_t last;

	if (from_relay && m->rid == 0) {
		m->kind = PROTO_RELAY_PUNCH_TELL;
		if (n < 5 || get_bin(&e[2], m->token, sizeof(m->token)) != 0 ||
		    get_ip(&e[3], m) != 0)
			return -1;
		last = 4;
	} else if (from_relay) {
		m->kind = PROTO_RELAY_PUNCH_GO;
		if (n < 4 || get_ip(&e[2], m) != 0)
			return -1;
		last = 3;
	} else {
		if (n < 4 || e[2].type != MSGPACK_OBJECT_BIN)
			return -1;
		m->kind = e[2].via.bin.size == PROTO_IDENTITY_LEN ?
		    PROTO_RELAY_PUNCH_ASK : PROTO_RELAY_PUNCH_READY;
		if ((m->kind == PROTO_RELAY_PUNCH_ASK ? get_bin(&e[2], m->id,
		    sizeof(m->id)) : get_bin(&e[2], m->token,
		    sizeof(m->token))) != 0)
			return -1;
		last = 3;
	}
	if (get_uint(&e[last], UINT16_MAX, &port) != 0)
		return -1;
	m->port = (uint16_t)port;
	return 0;
}

static int
parse_object(const msgpack_object *o, int from_relay, proto_relay_msg *m)
{
	const msgpack_object *e;
	uint64_t type, rid, code;
	size_t n;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2)
		return -1;
	e = o->via.array.ptr;
	n = o->via.array.size;
	if (get_uint(&e[0], UINT32_MAX, &type) != 0 ||
	    get_uint(&e[1], UINT32_MAX, &rid) != 0)
		return -1;
	m->rid = (uint32_t)rid;
	switch (type) {
	case 1:
		if (n < 4 || get_uint(&e[2], UINT32_MAX, &code) != 0 ||
		    e[3].type != MSGPACK_OBJECT_STR)
			return -1;
		m->kind = PROTO_RELAY_ERROR;
		m->code = (uint32_t)code;
		for (size_t i = 0; i < e[3].via.str.size &&
		    i < sizeof(m->message) - 1; i++) {
			char ch = e[3].via.str.ptr[i];
			m->message[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
		}
		return 0;
	case PROTO_MSG_RELAY_REGISTER:
		if (n == 2 || (n > 2 && e[2].type != MSGPACK_OBJECT_BIN)) {
			m->kind = from_relay ? PROTO_RELAY_REGISTERED :
			    PROTO_RELAY_ASK_NONCE;
			return 0;
		}
		if (from_relay) {
			m->kind = PROTO_RELAY_NONCE;
			return get_bin(&e[2], m->nonce, sizeof(m->nonce));
		}
		m->kind = PROTO_RELAY_PROVE;
		/* A fifth element, the node's caps, is read when a uint. */
		if (n > 4 && get_uint(&e[4], UINT32_MAX, &code) == 0)
			m->caps = (uint32_t)code;
		return n < 4 || get_bin(&e[2], m->key, sizeof(m->key)) != 0 ||
		    get_bin(&e[3], m->sig, sizeof(m->sig)) != 0 ? -1 : 0;
	case PROTO_MSG_RELAY_PUNCH:
		return parse_punch(e, n, from_relay, m);
	case PROTO_MSG_RELAY_CONNECT:
		m->kind = PROTO_RELAY_CONNECT;
		return n < 3 ? -1 : get_bin(&e[2], m->id, sizeof(m->id));
	case PROTO_MSG_RELAY_INCOMING:
	case PROTO_MSG_RELAY_ACCEPT:
		m->kind = type == PROTO_MSG_RELAY_INCOMING ?
		    PROTO_RELAY_INCOMING : PROTO_RELAY_ACCEPT;
		return n < 3 ? -1 : get_bin(&e[2], m->token, sizeof(m->token));
	default:
		return -1;
	}
}

int
proto_relay_msg_parse(const uint8_t *body, size_t len, int from_relay,
    proto_relay_msg *m)
{
	msgpack_unpacked u;
	size_t off = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	if (len > PROTO_FRAME_HANDSHAKE_MAX ||
	    proto_frame_check_body(body, len) != 0)
		return PROTO_ERR_MALFORMED;
	msgpack_unpacked_init(&u);
	rc = msgpack_unpack_next(&u, (const char *)body, len, &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == len &&
	    parse_object(&u.data, from_relay, m) == 0 ? 0 :
	    PROTO_ERR_MALFORMED;
	msgpack_unpacked_destroy(&u);
	return rc;
}
