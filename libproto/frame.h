/*
 * Frames: a 4-byte big-endian length, then that many bytes holding exactly
 * one msgpack object (docs/PROTOCOL.md section 3).
 */
#ifndef PROTO_FRAME_H
#define PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_FRAME_HEADER 4u
#define PROTO_FRAME_MAX (16u << 20)
#define PROTO_FRAME_HANDSHAKE_MAX 4096u

/* Writes len big-endian into hdr. */
void proto_frame_put_len(uint8_t hdr[PROTO_FRAME_HEADER], uint32_t len);

/* Reads the body length from hdr into *len. PROTO_ERR_TOO_BIG when it
 * exceeds max: the caller must stop reading the stream. */
int proto_frame_get_len(const uint8_t hdr[PROTO_FRAME_HEADER], size_t max,
    uint32_t *len);

/* 0 when body holds exactly one msgpack object within the checker's limits
 * (check.h), else PROTO_ERR_MALFORMED or PROTO_ERR_TOO_BIG. */
int proto_frame_check_body(const uint8_t *body, size_t len);

/*
 * Parses a frame at the start of buf, of which len bytes are at hand.
 * Returns the frame's whole length (header included, > 0) once it is
 * complete and its body checks; 0 when more bytes are needed; a negative
 * PROTO_ERR_* when the length exceeds max or the body is malformed.
 */
long proto_frame_parse(const uint8_t *buf, size_t len, size_t max);

#endif
