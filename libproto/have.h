/*
 * Which chunks of a file a node holds: a bitfield, first chunk in the high
 * bit of the first byte (docs/PROTOCOL.md section 4, HAVE_MAP), with the
 * count of bits set. Peers may chunk the same file differently, so a
 * question is asked in the asker's chunk size and answered from the
 * holder's.
 */
#ifndef PROTO_HAVE_H
#define PROTO_HAVE_H

#include <stddef.h>
#include <stdint.h>

typedef struct proto_have {
	uint8_t *bits;
	uint64_t n;       /* chunks */
	uint64_t count;   /* bits set */
} proto_have;

/* The bytes a bitfield of n chunks takes on the wire. */
size_t proto_have_bytes(uint64_t n);

/* An empty bitfield of n chunks in h (the caller's; any previous bits are
 * not freed); h->bits is h's own until proto_have_free. 0 or
 * PROTO_ERR_NOMEM (h then zeroed: proto_have_free on it is harmless). */
int proto_have_init(proto_have *h, uint64_t n);

/* Frees the bits; h can be initialised again. A zeroed h is fine. */
void proto_have_free(proto_have *h);

/* 1 when bit i is set; 0 when clear or i is out of range. */
int proto_have_test(const proto_have *h, uint64_t i);

/* Sets bit i; returns 1 when it was clear, 0 when it was set or i is out
 * of range. */
int proto_have_set(proto_have *h, uint64_t i);

/* Sets every bit below n (count becomes n). */
void proto_have_fill(proto_have *h);

/*
 * Replaces h's bits with len bytes received from a peer, which must be
 * exactly proto_have_bytes(h->n) long with the bits past n clear; bits is
 * copied. 0; PROTO_ERR_MALFORMED otherwise, h unchanged.
 */
int proto_have_load(proto_have *h, const uint8_t *bits, size_t len);

/*
 * Whether h, kept in chunks of h_chunk_size, holds every byte of chunk
 * index of a file of size bytes cut in chunks of chunk_size. An empty
 * file's one chunk (index 0) is held when h holds its chunk 0.
 */
int proto_have_covers(const proto_have *h, uint32_t h_chunk_size,
    uint64_t size, uint32_t chunk_size, uint64_t index);

#endif
