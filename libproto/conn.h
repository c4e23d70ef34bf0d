/*
 * Peer connections on libevent: the version handshake, then frames in and
 * out. The read side is a small state machine (wait for a length, check it,
 * wait for the whole frame, check and decode it, hand it up, drain, loop);
 * the write side stops reading new requests while too much output is queued,
 * so a peer that never reads costs a bounded amount of memory.
 *
 * A write to a peer that has gone raises SIGPIPE: a program with
 * connections ignores it (signal(SIGPIPE, SIG_IGN)), as the tools do.
 */
#ifndef PROTO_CONN_H
#define PROTO_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "msg.h"

struct bufferevent;
struct event_base;

typedef struct proto_conn proto_conn;

/*
 * A bandwidth budget that every connection made with it shares, in bytes
 * per second each way (libevent's rate-limit groups; 0: no limit). Made on
 * the base the connections run on, which must outlive it; NULL when out of
 * memory. _free lets go of it: it is freed at once, or when the last
 * connection made with it is; NULL does nothing.
 */
typedef struct proto_conn_limit proto_conn_limit;
proto_conn_limit *proto_conn_limit_new(struct event_base *base,
    uint64_t read_rate, uint64_t write_rate);
void proto_conn_limit_free(proto_conn_limit *l);

typedef struct proto_conn_config {
	const char *node_name;  /* sent in HELLO; borrowed during _new */
	uint16_t listen_port;   /* sent in HELLO; 0 when not listening */
	unsigned timeout;       /* seconds for the handshake and for a
	                         * stalled write; 0 means 30 */
	size_t out_limit;       /* stop reading requests while this much output
	                         * is queued; 0 means 4 MiB */
	uint64_t nfiles;        /* sent in HELLO: files shared */
	uint64_t caps;          /* sent in HELLO: PROTO_CAP_* */
	size_t max_frame;       /* the longest frame accepted from the peer
	                         * after the handshake; 0 means PROTO_FRAME_MAX.
	                         * A node that only answers requests needs
	                         * little, and a peer cannot make it buffer
	                         * more. */
	struct ssl_ctx_st *tls; /* TLS 1.3 (proto_tls_ctx_new); NULL: none */
	const uint8_t *pin;     /* the identity the peer must show, 32
	                         * bytes; NULL: any; copied */
	const uint8_t *secret;  /* a private swarm's key, 32 bytes (needs
	                         * tls): the peer must prove it knows it in
	                         * its HELLO; NULL: none; copied */
	proto_conn_limit *limit; /* a budget shared with other connections;
	                          * borrowed; NULL: no limit */
	const uint8_t *record;  /* our signed record (record.h), sent in
	                         * HELLO's options ("rec"); copied; NULL:
	                         * none */
	size_t record_len;      /* at most PROTO_RECORD_MAX, else not sent */
	/* The HELLO's options (PROTOCOL.md section 4) this side states; its
	 * versions, "maxframe" (max_frame) and "seen" (the peer's socket
	 * address) the connection states itself. */
	uint32_t max_requests;  /* "maxreq": requests taken outstanding on
	                         * this connection; 0: not said */
	const proto_addr *addrs; /* "addrs": where this node can be reached;
	                          * borrowed during _new; at most
	                          * PROTO_HELLO_ADDRS_MAX are sent */
	size_t naddrs;
	const proto_hello_ext *ext; /* "ext": the numbers this side gives
	                             * its extensions, which the peer then
	                             * sends them as; borrowed during _new;
	                             * at most PROTO_HELLO_EXT_MAX */
	size_t next;
	/* Optional: told, when the peer's HELLO has arrived and says where it
	 * sees this side ("seen"), that address and the peer's own (the
	 * socket's); both borrowed for the call, which must not free the
	 * connection. A peer's word, a hint: proto_node_observe weighs it. */
	void (*on_seen)(const proto_addr *seen, const proto_addr *by,
	    void *seen_ctx);
	void *seen_ctx;
	const proto_addr *mapped; /* "mapped": the address a port mapping
	                          * on this side's router forwards here;
	                          * copied during _new; NULL: none */
	uint16_t relay_port;      /* "relay", and caps bit 7: the port where
	                          * this node relays; 0: it does not */
} proto_conn_config;

typedef struct proto_conn_cbs {
	/* The peer's HELLO arrived and matched our version. */
	void (*on_ready)(proto_conn *c, const proto_msg *hello, void *ctx);
	/* A message after the handshake. m borrows from the input buffer and
	 * is valid during the call; the callee may take m->manifest. A
	 * message of a type this side does not know (neither a core type nor
	 * an extension it numbered in its HELLO) arrives only when it asks
	 * (rid not 0), to be answered ERROR BAD_REQUEST; one pushed (rid 0)
	 * is dropped here, logged at debug. */
	void (*on_msg)(proto_conn *c, proto_msg *m, void *ctx);
	/* The connection failed or was closed by the peer: err is a
	 * PROTO_ERR_*. Nothing more arrives; the owner frees c, here or later. */
	void (*on_close)(proto_conn *c, int err, void *ctx);
	/* Optional: no byte arrived for the timeout after the handshake.
	 * Return 1 to keep waiting, 0 to close with PROTO_ERR_TIMEOUT. When
	 * NULL, an idle connection is kept. */
	int (*on_idle)(proto_conn *c, void *ctx);
	/* Optional: some queued output was written; the owner may queue more
	 * (answers it held back) before more requests are read. */
	void (*on_written)(proto_conn *c, void *ctx);
	/* Optional, for a guest (proto_conn_attach): the owner let go of c
	 * (proto_conn_release), which is the guest's own from now on: it
	 * frees c, and its on_idle decides. */
	void (*on_handed)(proto_conn *c, void *ctx);
} proto_conn_cbs;

/*
 * Wraps bev, which the connection owns from now on (and frees with it), and
 * sends HELLO. cbs is copied; ctx is passed to every callback. NULL when out
 * of memory, bev then freed.
 */
proto_conn *proto_conn_new(struct bufferevent *bev,
    const proto_conn_config *cfg, const proto_conn_cbs *cbs, void *ctx);

/* Wraps the accepted socket fd (owned from now on) as cfg says: TLS or
 * not. NULL when out of memory, fd then closed. */
proto_conn *proto_conn_accept(struct event_base *base, int fd,
    const proto_conn_config *cfg, const proto_conn_cbs *cbs, void *ctx);

/* Starts a TCP connection to sa and returns its connection, or NULL with
 * errno set. Connect failures arrive later through on_close. */
proto_conn *proto_conn_connect(struct event_base *base,
    const struct sockaddr *sa, socklen_t salen, const proto_conn_config *cfg,
    const proto_conn_cbs *cbs, void *ctx);

/*
 * Through the relay at sa (PROTOCOL.md section 13): the fetcher's side
 * (proto_conn_connect_relayed) asks for a circuit to the node id (32
 * bytes, copied; cfg->pin should name it too, or TLS proves nothing), the
 * node's side (proto_conn_accept_relayed) takes the circuit token (16
 * bytes, copied) its relay sent. Each sends its relay message and then
 * runs the handshake over the circuit as proto_conn_connect or
 * proto_conn_accept would, TLS end to end; proto_conn_path says
 * "relayed". NULL with errno set; a relay's refusal arrives later through
 * on_close.
 */
proto_conn *proto_conn_connect_relayed(struct event_base *base,
    const struct sockaddr *sa, socklen_t salen, const uint8_t *id,
    const proto_conn_config *cfg, const proto_conn_cbs *cbs, void *ctx);
proto_conn *proto_conn_accept_relayed(struct event_base *base,
    const struct sockaddr *sa, socklen_t salen, const uint8_t *token,
    const proto_conn_config *cfg, const proto_conn_cbs *cbs, void *ctx);
/*
 * To the node id through the relay at sa, direct first, relayed last
 * (PROTOCOL.md section 13, "Hole punching"): asks the relay to have the
 * node punch, connects to where the relay says the node is, and when that
 * fails within a few seconds (or the relay or the node does not punch)
 * takes the relay's circuit as proto_conn_connect_relayed. Over TLS only
 * (cfg->tls, cfg->pin naming id). proto_conn_path then says "punched" or
 * "relayed". NULL with errno set (EINVAL without TLS).
 */
proto_conn *proto_conn_connect_punched(struct event_base *base,
    const struct sockaddr *sa, socklen_t salen, const uint8_t *id,
    const proto_conn_config *cfg, const proto_conn_cbs *cbs, void *ctx);

/*
 * Happy eyeballs (RFC 8305): as proto_conn_connect, to the first of
 * addrs[0..n) (1 to PROTO_CONN_RACE_MAX; copied) whose TCP connect
 * completes. IPv6 addresses are tried first, the families then taking
 * turns; each attempt starts PROTO_CONN_RACE_DELAY_MS after the one before,
 * or at once when the one before failed; the first connected wins and the
 * others are closed, then TLS and the HELLO go on the winner (the
 * connection's peer from then). The first attempt starts once the loop
 * runs, so that proto_conn_race_add may add addresses before. All failing,
 * on_close gets PROTO_ERR_SYSTEM with errno the last failure's. NULL with
 * errno set when it cannot start.
 */
#define PROTO_CONN_RACE_MAX 8
#define PROTO_CONN_RACE_DELAY_MS 250
proto_conn *proto_conn_connect_race(struct event_base *base,
    const proto_addr *addrs, size_t n, const proto_conn_config *cfg,
    const proto_conn_cbs *cbs, void *ctx);

/* Adds a (copied) to the addresses c races, before its first attempt. 0
 * (also when a is among them already); PROTO_ERR_INVALID when c races no
 * more (not made by proto_conn_connect_race, started, or full). */
int proto_conn_race_add(proto_conn *c, const proto_addr *a);

/* Closes the connection at once, dropping queued output; safe inside any of
 * its callbacks. No callback follows. NULL does nothing. Only the ERROR by
 * which this side refused the peer (PROTO_ERR_VERSION, PROTO_ERR_AUTH) is
 * not dropped: the connection then ends as proto_conn_close_after_flush
 * says. A guest (proto_conn_attach) hears on_close (PROTO_ERR_CLOSED) from
 * the event loop, after this call; c is freed then. The owner's call. */
void proto_conn_free(proto_conn *c);

/*
 * Requests both ways (PROTOCOL.md section 4). proto_conn_duplex: 1 when
 * both HELLOs carried PROTO_CAP_DUPLEX, so that either side may ask on c;
 * 0 before ready. proto_conn_answers: 1 when c's owner takes the peer's
 * requests (it accepted c, or was handed it), 0 when it takes the answers
 * to its own.
 */
int proto_conn_duplex(const proto_conn *c);
int proto_conn_answers(const proto_conn *c);

/* 1 while the peer chokes us on c (PROTOCOL.md section 4, CHOKE): both
 * HELLOs carried PROTO_CAP_CHOKE and the peer's last CHOKE or UNCHOKE on
 * c, if any, was CHOKE. The state is the connection's, whoever holds it:
 * a fetch that takes over a connection another left knows it from here,
 * as the peer does not say UNCHOKE twice. 0 before ready. */
int proto_conn_peer_chokes(const proto_conn *c);

/* Bytes of the peer's requests read so far (whole frames, on a duplex
 * connection; 0 otherwise): not progress on any of ours. */
uint64_t proto_conn_bytes_asked(const proto_conn *c);

/*
 * A second holder of a duplex connection, its guest: it takes the
 * messages of the role the owner does not play (the peer's requests and
 * CANCELs, or the answers to the guest's requests and the HAVEs pushed),
 * and may send on c. cbs is copied; on_ready and on_idle are not used;
 * on_written follows the owner's. The guest never frees c: it lets go
 * with proto_conn_detach, and once its on_close returns, c is no longer
 * its own. 0, or PROTO_ERR_INVALID (c not ready, not duplex, ending, or
 * with a guest already). Meanwhile a request no one takes is answered
 * ERROR BUSY, an answer no one waits for dropped.
 */
int proto_conn_attach(proto_conn *c, const proto_conn_cbs *cbs, void *ctx);

/* 1 when proto_conn_attach would take a guest on c now, else 0: so that
 * one who looks for a connection to ask on passes over one another asks
 * on already. */
int proto_conn_attachable(const proto_conn *c);

/* The guest lets go of c: nothing more reaches it, now. With end, c ends
 * too: its owner hears on_close (PROTO_ERR_CLOSED) from the event loop,
 * after this call. NULL, or no guest, does nothing. */
void proto_conn_detach(proto_conn *c, int end);

/* Before the side that asks on c lets go of it (proto_conn_detach or
 * proto_conn_release) with n requests unanswered: their answers, which
 * come first and in order, are dropped, never given to whoever asks on c
 * next (its request ids start afresh). NULL does nothing. */
void proto_conn_owed_away(proto_conn *c, uint32_t n);

/* The owner lets go of c. With a guest, c goes on as the guest's own:
 * its on_handed is called within this call, and the owner must not touch
 * c again. Without one, as proto_conn_free. NULL does nothing. */
void proto_conn_release(proto_conn *c);

/* Of two connections between the same two nodes, whether both keep this
 * one: 1 when the node of the lower rank dialled it, 0 when the other,
 * -1 when it cannot tell (not ready). The rank is the identity under TLS
 * (32 bytes, compared as unsigned) when the two differ, else the address
 * each is seen at
 * (the peer's "seen" of this side when said, else the socket's) and then
 * the port each listens on: what both sides compute alike. */
int proto_conn_kept(const proto_conn *c);

/* The owner's output may reach min before reading stops (out_limit): for
 * a guest that answers, whose answers must never stop the reading. */
void proto_conn_raise_out_limit(proto_conn *c, size_t min);

/*
 * Lets go of c: it sends every queued byte, then ends our side and reads
 * (and drops) what the peer still sends until the peer closes, so that the
 * last bytes are not lost to a reset. It frees itself within the timeout
 * for the sending and 2 s for the rest, whatever the peer does, or when
 * the base is freed with proto_base_free. No callback follows. One still
 * racing (proto_conn_connect_race), which has sent nothing, is freed at
 * once, its attempts ended.
 */
void proto_conn_close_after_flush(proto_conn *c);

/*
 * Frees base, which must be freed this way once it has carried connections,
 * after every event of the caller's on it is freed (it runs the loop a few
 * turns). It frees the connections still ending after
 * proto_conn_close_after_flush, and lets libevent run the callbacks it
 * still holds for freed TLS connections, which event_base_free would drop,
 * and with them the connections' memory.
 */
void proto_base_free(struct event_base *base);

/* Queues m, packed now: m and what it points to are borrowed for the call
 * only. 0; a PROTO_ERR_* from proto_msg_pack (nothing queued);
 * PROTO_ERR_TOO_BIG for a frame larger than the peer takes
 * (proto_conn_peer_max_frame; nothing queued: an answer is then an ERROR);
 * PROTO_ERR_NOMEM when queueing failed (nothing queued). */
int proto_conn_send(proto_conn *c, const proto_msg *m);

/* As proto_conn_send, for news that may wait a moment (a HAVE to a peer
 * that cannot ask for the chunk yet): held up to PROTO_CONN_LAZY_MS, and
 * sent with the next message sent on c, or then, in one write. A swarm's
 * HAVEs were 95% of its messages, each its own TLS record and wake-up of
 * the peer. Before the handshake is over, sent at once. */
#define PROTO_CONN_LAZY_MS 250
int proto_conn_send_lazy(proto_conn *c, const proto_msg *m);
/* What proto_conn_send_lazy holds goes into the output now. 0, or
 * PROTO_ERR_NOMEM (it is then dropped). */
int proto_conn_flush_lazy(proto_conn *c);

/* Queues an ERROR answer to rid; text (NUL-terminated) is borrowed for the
 * call. Returns as proto_conn_send. */
int proto_conn_send_error(proto_conn *c, uint32_t rid, uint32_t code,
    const char *text);

/*
 * Queues a CHUNK answer whose data are len bytes of fd at off: on plain TCP
 * sent straight from the file (sendfile; a file cut short meanwhile ends
 * the connection), over TLS read into memory now. The file is never
 * mapped. fd stays the caller's and must stay open until the data is sent.
 * 0; or, with nothing queued, PROTO_ERR_TOO_BIG (a frame larger than the
 * peer takes, proto_conn_peer_max_frame), PROTO_ERR_MISMATCH (the file
 * ends before off + len), PROTO_ERR_SYSTEM (errno set) or PROTO_ERR_NOMEM; a
 * PROTO_ERR_NOMEM may also come with the header queued, and the connection
 * is then fit only to be freed.
 */
int proto_conn_send_chunk_file(proto_conn *c, uint32_t rid, int fd,
    uint64_t off, size_t len);

/* While held, no further message is read (they wait in the socket); on
 * release reading goes on. For an owner with answers queued of its own. */
void proto_conn_hold(proto_conn *c, int hold);

/* Sets how long a wait may last with nothing arriving (on_idle then
 * decides). secs 0 turns it off. */
void proto_conn_set_idle_timeout(proto_conn *c, unsigned secs);

/* "HOST:PORT" of the peer, for messages; owned by c, valid while c is. */
const char *proto_conn_peer(const proto_conn *c);

/* Bytes read from and queued to the peer so far. */
uint64_t proto_conn_bytes_in(const proto_conn *c);
uint64_t proto_conn_bytes_out(const proto_conn *c);

/* Bytes read from the peer so far, including those of a frame still
 * arriving: what shows a slow peer is still sending. */
uint64_t proto_conn_bytes_seen(const proto_conn *c);

/* Bytes taken from the socket so far, including those of a frame still
 * arriving, but not those the kernel still holds: what a rate limit
 * lets through. */
uint64_t proto_conn_bytes_read(const proto_conn *c);

/* Bytes queued and not yet written. */
size_t proto_conn_pending_out(const proto_conn *c);

/* The peer's HELLO name (owned by c, valid while c is; "" before ready),
 * listen port, file count and caps, once ready; 0 before. */
const char *proto_conn_peer_name(const proto_conn *c);
uint16_t proto_conn_peer_listen_port(const proto_conn *c);
uint64_t proto_conn_peer_nfiles(const proto_conn *c);
uint64_t proto_conn_peer_caps(const proto_conn *c);

/* The protocol version the two sides speak (PROTOCOL.md section 4: the
 * highest both speak); 0 before ready. */
uint32_t proto_conn_version(const proto_conn *c);

/* How many requests the peer takes outstanding ("maxreq" of its HELLO), or
 * UINT32_MAX when it did not say; once ready. */
uint32_t proto_conn_peer_maxreq(const proto_conn *c);

/* The largest frame the peer takes ("maxframe", at most PROTO_FRAME_MAX),
 * or PROTO_FRAME_MAX when it did not say; once ready. proto_conn_send and
 * proto_conn_send_chunk_file send nothing larger. */
size_t proto_conn_peer_max_frame(const proto_conn *c);

/* Where the peer sees this side ("seen" of its HELLO: an IP address and
 * port, checked, never resolved), or NULL when it did not say. Owned by c,
 * valid while c is. A peer can say anything here: a hint, not a proof. */
const proto_addr *proto_conn_seen(const proto_conn *c);

/* The address the peer's router forwards to it ("mapped" of its HELLO),
 * or NULL when it did not say. Owned by c; a hint, as "seen". */
const proto_addr *proto_conn_peer_mapped(const proto_conn *c);

/* The port where the peer relays (caps bit 7 and "relay" of its HELLO,
 * PROTOCOL.md section 13), on the host it was reached at; 0 when it does
 * not say it relays. Once ready. */
uint16_t proto_conn_peer_relay_port(const proto_conn *c);

/* How this side reached the peer: "relayed" through a relay's circuit;
 * "punched" through a hole punched at a relay's word (proto_conn_connect_
 * punched); "mapped" when it connected to the
 * peer's "mapped" address (through the port the peer's router forwards),
 * else "direct" (its own address, or a connection the peer made). Static
 * text; once ready. */
const char *proto_conn_path(const proto_conn *c);

/* Where the peer says it can be reached ("addrs" of its HELLO, IP
 * addresses only): their count, *out (owned by c, valid while c is) set
 * to the first. Hints, as "seen". */
size_t proto_conn_peer_addrs(const proto_conn *c, const proto_addr **out);

/* The message type the peer gave extension name (NUL-terminated) in its
 * HELLO ("ext"), which is what this side sends it as; 0 when the peer
 * named no such extension. */
unsigned proto_conn_peer_ext(const proto_conn *c, const char *name);

/* The name this side gave message type (PROTO_MSG_EXT_MIN to
 * PROTO_MSG_EXT_MAX) in its HELLO, for what arrives as that type; NULL
 * when it gave none. Owned by c, valid while c is. */
const char *proto_conn_ext_name(const proto_conn *c, unsigned type);

/* The peer's identity (32 bytes, owned by c, valid while c is) once the
 * TLS handshake is done, else NULL. */
const uint8_t *proto_conn_peer_id(const proto_conn *c);

/* More about the last failure of a TLS, identity or secret check, for
 * messages; "" when there is nothing more to say. Owned by c; read it in
 * on_close, before c is freed. */
const char *proto_conn_error_detail(const proto_conn *c);

/* The peer's IP address as text (no port), or "?"; owned by c, valid
 * while c is. */
const char *proto_conn_peer_host(const proto_conn *c);

#endif
