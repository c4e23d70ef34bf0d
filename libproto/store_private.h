/*
 * What store.c exposes beyond its public API, for its unit tests. Private
 * to libproto.
 */
#ifndef PROTO_STORE_PRIVATE_H
#define PROTO_STORE_PRIVATE_H

/* proto_open_beneath without openat2: one component at a time. Exposed for
 * the unit tests, since this kernel has openat2. */
int proto__store_open_by_components(int root_fd, const char *rel);

#endif
