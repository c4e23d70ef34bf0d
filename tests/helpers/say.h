/*
 * What the test helpers (p2p-badpeer, p2p-faultproxy) share: messages on
 * stderr in the tools' style and a monotonic clock. Not part of libproto:
 * the helpers are built for the tests only.
 */
#ifndef SAY_H
#define SAY_H

#include <stdio.h>

/* The program's name, first on every line; set before the first message. */
extern const char *progname;

/* "NAME: message" on stderr, flushed at once (tests read it while the
 * helper runs). */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "NAME: fatal: message" on stderr, then exit(code). */
void die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* Milliseconds on CLOCK_MONOTONIC. */
long long now_ms(void);

#endif
