/*
 * The logging hook's side inside libproto: the levels and the emitter the
 * modules call through PLOG. Private to libproto (log.h is the public
 * half).
 */
#ifndef PROTO_LOG_PRIVATE_H
#define PROTO_LOG_PRIVATE_H

#include "log.h"

/* The logging hook's levels per module (log.c), checked before any
 * formatting so that an unwanted trace costs one comparison. */
extern int proto__plog_levels[PROTO_LOG_MODULES];

void proto__plog_emit(int module, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define PLOG(module, level, ...) do { \
	if ((level) <= proto__plog_levels[module]) \
		proto__plog_emit((module), (level), __VA_ARGS__); \
} while (0)

#endif
