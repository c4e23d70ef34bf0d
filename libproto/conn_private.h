/*
 * What the modules of a peer connection share, and nothing else sees: the
 * connection itself, a rate-limit group, and the functions one of them
 * calls in another (proto__conn_*). Private to libproto; conn.h is the
 * public API.
 */
#ifndef PROTO_CONN_PRIVATE_H
#define PROTO_CONN_PRIVATE_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/util.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "addr.h"
#include "identity.h"
#include "msg.h"
#include "record.h"

struct bufferevent;
struct event;

struct proto_conn_limit {
	struct bufferevent_rate_limit_group *group;
	struct ev_token_bucket_cfg *cfg;
	size_t write_piece; /* file data queued in pieces of this much, or 0 */
	unsigned members;   /* connections in the group */
	int doomed;         /* proto_conn_limit_free was called */
};

/* One extension of a HELLO's "ext": its name and the type it is sent as. */
struct conn_ext {
	char name[PROTO_EXT_NAME_MAX + 1];
	uint8_t type;
};

/* A holder's callbacks: the connection's owner's, or its guest's. */
struct conn_holder {
	proto_conn_cbs cbs;
	void *ctx;
	int on;
};

struct proto_conn {
	struct bufferevent *bev;
	proto_conn_limit *limit; /* borrowed from the config, or NULL */
	proto_conn_cbs cbs;     /* the owner's */
	void *ctx;
	/* Requests both ways (both HELLOs carry PROTO_CAP_DUPLEX): the
	 * owner takes the messages of its role, the guest (attached) those
	 * of the other; a message whose taker is gone is answered or
	 * dropped here (connduplex.c). */
	int duplex;
	int owner_answers;  /* the owner takes requests (it accepted, or
	                     * took c over from the one that connected) */
	struct conn_holder guest;
	struct event *notify; /* tells a holder of an end the other chose */
	int notify_owner;   /* ... the owner (else the guest) */
	unsigned timeout;
	size_t out_limit;
	int ready;
	int closed;         /* on_close was called, or the owner let go */
	int freed;          /* proto_conn_free was called */
	int flushing;       /* free once the output is written */
	int lingering;      /* ... it is: reading until the peer closes */
	int refusing;       /* we told the peer why we refuse it (an ERROR,
	                     * or a plaintext HELLO to a TLS peer) */
	struct event *deadline; /* while flushing: frees it, come what may */
	struct event *handshake; /* ends a handshake not over in time */
	int depth;          /* callback frames active on this conn */
	int held;           /* the owner asked for no more messages */
	SSL *ssl;           /* NULL: plaintext */
	int tls_done;       /* handshake over, identity checked */
	int outbound;       /* we connected: the TLS client */
	int relayed;        /* through a relay's circuit */
	int punched;        /* a hole punched through a relay's word */
	int has_pin, has_secret;
	uint8_t pin[PROTO_IDENTITY_LEN], peer_id[PROTO_IDENTITY_LEN];
	uint8_t secret[32];
	char detail[320];
	/* Our HELLO, sent once TLS is up. */
	char name[PROTO_NODE_NAME_MAX + 1];
	uint16_t listen_port;
	uint64_t nfiles, caps;
	uint8_t record[PROTO_RECORD_MAX];
	size_t record_len;  /* 0: none */
	uint32_t max_requests;      /* "maxreq"; 0: not said */
	char addr_host[PROTO_HELLO_ADDRS_MAX][INET6_ADDRSTRLEN]; /* "addrs" */
	uint16_t addr_port[PROTO_HELLO_ADDRS_MAX];
	size_t naddrs;
	char mapped_host[INET6_ADDRSTRLEN]; /* "mapped": ours, when */
	uint16_t mapped_port;               /* ... not 0 */
	uint16_t relay_port;                /* "relay": ours; 0: none */
	uint16_t peer_relay_port;           /* the peer's; 0: none */
	struct conn_ext ext[PROTO_HELLO_EXT_MAX]; /* "ext": our numbering */
	size_t next;
	int have_len;
	uint32_t frame_len;
	size_t low_mark;
	int rcvlowat;       /* the socket's SO_RCVLOWAT as last set */
	unsigned idle_timeout; /* seconds, after the handshake; 0: none */
	uint64_t last_queued; /* bytes read or queued in the kernel at the
	                       * last read from the socket or idle timeout */
	size_t max_frame;   /* the longest frame accepted after the handshake */
	uint8_t *scratch;   /* a frame in one piece, when the buffer has it in
	                     * several */
	size_t scratch_cap;
	uint64_t bytes_in, bytes_out;
	uint32_t answers_not_ours;  /* answers still due to an asker that
	                             * let go (proto_conn_owed_away) */
	uint64_t bytes_asked;       /* of the peer's requests, on a duplex
	                             * connection */
	int peer_unchoked;          /* the peer's last CHOKE or UNCHOKE here
	                             * was UNCHOKE */
	uint16_t peer_port;
	uint64_t peer_nfiles;
	uint64_t peer_caps;
	struct proto__race *race;   /* the attempts of
	                             * proto_conn_connect_race, until one
	                             * wins (connrace.c) */
	struct proto__punch *punch; /* a punch under way (punch.c) */
	proto_addr peer_addr;       /* the socket's peer, when known */
	int has_peer_addr;
	/* What the peer's HELLO said, and the version agreed. */
	uint32_t version;
	uint32_t peer_maxreq;       /* UINT32_MAX: not said */
	size_t peer_max_frame;      /* PROTO_FRAME_MAX: not said */
	void (*on_seen)(const proto_addr *, const proto_addr *, void *);
	void *seen_ctx;             /* the config's on_seen, told "seen" */
	proto_addr seen;            /* where it sees us ... */
	int has_seen;               /* ... when it said */
	proto_addr peer_mapped;     /* what its router forwards to it ... */
	int has_peer_mapped;        /* ... when it said */
	proto_addr peer_addrs[PROTO_HELLO_ADDRS_MAX];
	size_t peer_naddrs;
	struct conn_ext peer_ext[PROTO_HELLO_EXT_MAX];
	size_t peer_next;
	char host[INET6_ADDRSTRLEN];
	char peer[INET6_ADDRSTRLEN + 8];
	char peer_name[PROTO_NODE_NAME_MAX + 1];
	/* Under TLS, chunks whose data are read from their files as the
	 * output drains (connsend.c), oldest first. */
	struct file_out *files, *files_tail;
	uint64_t files_left;        /* their bytes not yet read */
	struct evbuffer_cb_entry *drained; /* refills the output as the
	                             * socket takes it; NULL: not yet */
	int pump_err, pump_errno;   /* a refill failed there: the write
	                             * callback ends the connection */
	unsigned drain_pieces;      /* refills there since the last write
	                             * callback */
	struct evbuffer *lazy;      /* frames proto_conn_send_lazy holds
	                             * back, or NULL */
	struct event *lazy_ev;      /* sends them when their time is up */
	int pumping;                /* in pump: a drain it causes (a paired
	                             * or filtering bufferevent passes bytes
	                             * on at once) is its own loop's */
};

/* connsend.c: chunk data still to be read into the output (TLS). */
void proto__conn_pump_files(proto_conn *c);
void proto__conn_drop_files(proto_conn *c);
/* connlazy.c: what proto_conn_send_lazy held, into the output now, or
 * dropped with the connection. */
int proto__conn_flush_lazy(proto_conn *c);
void proto__conn_drop_lazy(proto_conn *c);
/* connsend.c: m packed for c's peer (not larger than it takes), and a
 * malloc'd frame queued (jumps: it may pass chunk data). */
int proto__conn_pack(proto_conn *c, const proto_msg *m, uint8_t **frame,
    size_t *len);
int proto__conn_queue_owned(proto_conn *c, uint8_t *frame, size_t len,
    int jumps);
/* connsend.c: the trace line of a message sent ('>') or read ('<'), a
 * HAVE's chunk in it; note, if not NULL, after. */
void proto__conn_trace(const proto_conn *c, char dir, const proto_msg *m,
    size_t len, const char *note);

/* conn.c: the object's life (the deferred free, the linger), a failure. */
void proto__conn_really_free(proto_conn *c);
void proto__conn_linger(proto_conn *c);
void proto__conn_leave(proto_conn *c);
void proto__conn_fail(proto_conn *c, int err);
/* conn.c's set-up of a connection on bev, which it owns from then (freed
 * when it fails); sa: the peer we dial, NULL for one accepted. */
proto_conn *proto__conn_setup(struct bufferevent *bev,
    const proto_conn_config *cfg, const proto_conn_cbs *cbs, void *ctx,
    const struct sockaddr *sa);
/* connrace.c: ends a race still running (its sockets closed). */
void proto__conn_race_free(proto_conn *c);

/* connread.c: the frame reader. */
void proto__conn_set_read_marks(proto_conn *c, size_t low);
size_t proto__conn_queued_in_kernel(const proto_conn *c);
void proto__conn_input_cb(struct evbuffer *in,
    const struct evbuffer_cb_info *info, void *arg);
void proto__conn_set_lowat(proto_conn *c, size_t want);
void proto__conn_process(proto_conn *c);
void proto__conn_read_cb(struct bufferevent *bev, void *arg);

/* connsend.c: the output. */
void proto__conn_write_cb(struct bufferevent *bev, void *arg);

/* handshake.c: HELLO and the swarm's proof; what is known of a type. */
int proto__conn_type_known(const proto_conn *c, unsigned type);
int proto__conn_send_hello(proto_conn *c);
void proto__conn_handle_hello(proto_conn *c, const proto_msg *m);
int proto__conn_refused(proto_conn *c, const proto_msg *m);
void proto__conn_handshake_expired(evutil_socket_t fd, short what,
    void *arg);

/* conntls.c: the bufferevent's events, and TLS. */
void proto__conn_event_cb(struct bufferevent *bev, short what, void *arg);

/* connduplex.c: requests both ways. */
/* Hands m to whoever takes it: the owner, the guest, or nobody. */
void proto__conn_route(proto_conn *c, proto_msg *m);
/* The guest's on_written, after the owner's. */
void proto__conn_guest_written(proto_conn *c);
/* The guest hears the end of c (err), and is gone: 1 when it was there. */
int proto__conn_guest_close(proto_conn *c, int err);
/* proto_conn_free with a guest: the guest is told, later; 1 when that
 * is so (c then lives on until it is). */
int proto__conn_free_shared(proto_conn *c);
/* The guest hears from the loop that c ends. */
void proto__conn_tell_guest(proto_conn *c);
void proto__conn_duplex_free(proto_conn *c);

/* ratelimit.c: the rate-limit groups. */
void proto__conn_leave_group(proto_conn *c);

#endif
