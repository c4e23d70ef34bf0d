/*
 * What a connection knows of its peer and of itself, for its owner: what
 * the peer's HELLO said (name, caps, ports, limits, addresses, options),
 * the identity it showed, the address it sees us at, the path, the bytes
 * counted. Read only: conn.c and its neighbours set these.
 */
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "conn_private.h"

const char *
proto_conn_peer(const proto_conn *c)
{
	return c->peer;
}

uint64_t
proto_conn_bytes_in(const proto_conn *c)
{
	return c->bytes_in;
}

uint64_t
proto_conn_bytes_out(const proto_conn *c)
{
	return c->bytes_out;
}

size_t
proto_conn_pending_out(const proto_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) +
	    (size_t)c->files_left +
	    (c->lazy != NULL ? evbuffer_get_length(c->lazy) : 0);
}

const char *
proto_conn_peer_name(const proto_conn *c)
{
	return c->peer_name;
}

uint16_t
proto_conn_peer_listen_port(const proto_conn *c)
{
	return c->peer_port;
}

uint64_t
proto_conn_peer_nfiles(const proto_conn *c)
{
	return c->peer_nfiles;
}

uint64_t
proto_conn_peer_caps(const proto_conn *c)
{
	return c->peer_caps;
}

void
proto_conn_hold(proto_conn *c, int hold)
{
	c->held = hold;
	/* Messages already buffered are not announced again by libevent. */
	if (!hold && c->depth == 0 && !c->freed && !c->closed)
		proto__conn_process(c);
}

uint32_t
proto_conn_version(const proto_conn *c)
{
	return c->version;
}

uint32_t
proto_conn_peer_maxreq(const proto_conn *c)
{
	return c->peer_maxreq;
}

size_t
proto_conn_peer_max_frame(const proto_conn *c)
{
	return c->peer_max_frame;
}

const proto_addr *
proto_conn_seen(const proto_conn *c)
{
	return c->has_seen ? &c->seen : NULL;
}

const proto_addr *
proto_conn_peer_mapped(const proto_conn *c)
{
	return c->has_peer_mapped ? &c->peer_mapped : NULL;
}

uint16_t
proto_conn_peer_relay_port(const proto_conn *c)
{
	return c->peer_relay_port;
}

const char *
proto_conn_path(const proto_conn *c)
{
	if (c->relayed)
		return "relayed";
	if (c->punched)
		return "punched";
	return c->outbound && c->has_peer_mapped && c->has_peer_addr &&
	    proto_addr_equal(&c->peer_addr, &c->peer_mapped) ? "mapped" :
	    "direct";
}

size_t
proto_conn_peer_addrs(const proto_conn *c, const proto_addr **out)
{
	*out = c->peer_addrs;
	return c->peer_naddrs;
}

unsigned
proto_conn_peer_ext(const proto_conn *c, const char *name)
{
	for (size_t i = 0; i < c->peer_next; i++)
		if (strcmp(c->peer_ext[i].name, name) == 0)
			return c->peer_ext[i].type;
	return 0;
}

const char *
proto_conn_ext_name(const proto_conn *c, unsigned type)
{
	for (size_t i = 0; i < c->next; i++)
		if (c->ext[i].type == type)
			return c->ext[i].name;
	return NULL;
}

const uint8_t *
proto_conn_peer_id(const proto_conn *c)
{
	return c->tls_done ? c->peer_id : NULL;
}

const char *
proto_conn_error_detail(const proto_conn *c)
{
	return c->detail;
}

const char *
proto_conn_peer_host(const proto_conn *c)
{
	return c->host;
}

uint64_t
proto_conn_bytes_seen(const proto_conn *c)
{
	return c->bytes_in + evbuffer_get_length(bufferevent_get_input(c->bev)) +
	    proto__conn_queued_in_kernel(c);
}

uint64_t
proto_conn_bytes_read(const proto_conn *c)
{
	return c->bytes_in + evbuffer_get_length(bufferevent_get_input(c->bev));
}
