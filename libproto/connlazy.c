/*
 * News that may wait a moment (proto_conn_send_lazy): frames held in a
 * buffer of their own, and put into the output with the next message sent
 * or when their time is up, so that a peer told of many chunks is woken
 * once for them, in one TLS record.
 */
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn_private.h"
#include "error.h"
#include "log_private.h"
#include "msg.h"

/* What proto_conn_send_lazy held goes into the output: what is lazy is
 * pushed news, which passes chunk data as a HAVE does. */
int
proto__conn_flush_lazy(proto_conn *c)
{
	size_t len = c->lazy != NULL ? evbuffer_get_length(c->lazy) : 0;
	uint8_t *all;

	if (len == 0)
		return 0;
	if ((all = malloc(len)) == NULL)
		return PROTO_ERR_NOMEM;
	evbuffer_remove(c->lazy, all, len);
	return proto__conn_queue_owned(c, all, len, 1);
}

int
proto_conn_flush_lazy(proto_conn *c)
{
	return c->closed ? 0 : proto__conn_flush_lazy(c);
}

static void
lazy_due(evutil_socket_t fd, short what, void *arg)
{
	proto_conn *c = arg;

	(void)fd;
	(void)what;
	if (!c->closed && proto__conn_flush_lazy(c) != 0)
		proto__conn_fail(c, PROTO_ERR_NOMEM);
}

void
proto__conn_drop_lazy(proto_conn *c)
{
	if (c->lazy_ev != NULL)
		event_free(c->lazy_ev);
	if (c->lazy != NULL)
		evbuffer_free(c->lazy);
	c->lazy_ev = NULL;
	c->lazy = NULL;
}

int
proto_conn_send_lazy(proto_conn *c, const proto_msg *m)
{
	struct timeval due = { 0, PROTO_CONN_LAZY_MS * 1000 };
	uint8_t *frame;
	size_t len;
	int rc;

	if (!c->ready || c->closed)
		return proto_conn_send(c, m);
	if (c->lazy == NULL) {
		c->lazy = evbuffer_new();
		c->lazy_ev = evtimer_new(bufferevent_get_base(c->bev),
		    lazy_due, c);
		if (c->lazy == NULL || c->lazy_ev == NULL) {
			proto__conn_drop_lazy(c);
			return proto_conn_send(c, m);
		}
	}
	if ((rc = proto__conn_pack(c, m, &frame, &len)) != 0)
		return rc;
	rc = evbuffer_add(c->lazy, frame, len) == 0 ? 0 : PROTO_ERR_NOMEM;
	free(frame);
	if (rc != 0)
		return rc;
	if (!evtimer_pending(c->lazy_ev, NULL))
		evtimer_add(c->lazy_ev, &due);
	c->bytes_out += len;
	proto__conn_trace(c, '>', m, len, "held a moment");
	return 0;
}
