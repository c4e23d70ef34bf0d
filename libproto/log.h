/*
 * A logging hook. libproto never prints; what it sees on the wire is still
 * worth a debug or trace line to whoever runs it, so a program may hand it
 * a function that receives each event as one line of text. Without a hook,
 * or above the level set for a module, nothing is even formatted.
 *
 * The hook and the levels are process-wide: set them before making
 * connections, from one thread.
 */
#ifndef PROTO_LOG_H
#define PROTO_LOG_H

enum proto_log_module {
	PROTO_LOG_CONN,   /* peer connections: handshakes, frames, closes */
	PROTO_LOG_DISCO,  /* discovery datagrams and announcements */
	PROTO_LOG_STORE,  /* the files a node shares */
	PROTO_LOG_MODULES
};

enum proto_log_level {
	PROTO_LOG_ERROR, PROTO_LOG_WARN, PROTO_LOG_INFO, PROTO_LOG_DEBUG,
	PROTO_LOG_TRACE
};

/* msg is one line, valid during the call: no newline, and no other control
 * character (C0, DEL, C1), each made '?' (proto_msg_printable), since
 * events quote what peers chose. */
typedef void (*proto_log_fn)(int module, int level, const char *msg,
    void *ctx);

/* Sends every later event to fn with ctx; NULL turns logging off. */
void proto_log_set(proto_log_fn fn, void *ctx);

/* Events of module up to max_level (a proto_log_level; -1: none) are sent.
 * Every module starts at -1. Out-of-range modules are ignored. */
void proto_log_set_level(int module, int max_level);

#endif
