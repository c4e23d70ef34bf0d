/*
 * What a server pushes unasked to the peers subscribed to a file: a HAVE
 * for each chunk it comes to hold, left out for a peer that holds it,
 * held a moment for a peer it chokes (PROTOCOL.md section 4, HAVE).
 */
#include <string.h>

#include "server_private.h"

void
proto_server_have(proto_server *srv, const uint8_t id[PROTO_HASH_LEN],
    uint64_t index)
{
	proto_server_have_unless(srv, id, index, NULL, NULL);
}

void
proto_server_have_unless(proto_server *srv,
    const uint8_t id[PROTO_HASH_LEN], uint64_t index,
    int (*holds)(const proto_conn *c, uint64_t index, void *ctx),
    void *ctx)
{
	proto_msg m;

	proto_msg_init(&m, PROTO_MSG_HAVE);
	m.id = id;
	m.index = index;
	for (struct client *cl = srv->clients, *next; cl; cl = next) {
		int how;

		next = cl->next;
		if (!cl->interested ||
		    memcmp(cl->interest, id, PROTO_HASH_LEN) != 0)
			continue;
		how = holds != NULL ? holds(cl->conn, index, ctx) :
		    PROTO_HAVE_SEND;
		if (how == PROTO_HAVE_SKIP)
			continue;
		/* Answers wait for the output to drain; HAVEs, which no
		 * request paces, would pile up without end for a peer that
		 * does not read. Past what a reading peer ever has waiting,
		 * it goes. */
		if (proto_conn_pending_out(cl->conn) > srv->cfg.conn.out_limit) {
			proto__server_say(srv, PROTO_LOG_INFO,
			    "%s: dropped: it reads nothing (%zu bytes "
			    "wait for it)",
			    proto_conn_peer(cl->conn),
			    proto_conn_pending_out(cl->conn));
			proto__server_client_free(cl);
			continue;
		}
		/* A peer we choke cannot ask for the chunk yet: its news
		 * waits a moment and goes with other news, in one write. */
		if (how == PROTO_HAVE_SEND && cl->chokes && !cl->unchoked)
			proto_conn_send_lazy(cl->conn, &m);
		else
			proto_conn_send(cl->conn, &m);
	}
}

void
proto_server_flush_news(proto_server *srv)
{
	for (struct client *cl = srv->clients; cl != NULL; cl = cl->next)
		if (cl->conn != NULL)
			(void)proto_conn_flush_lazy(cl->conn);
}
