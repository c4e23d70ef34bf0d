/*
 * Which chunk to ask a peer for next. Each chunk is missing, in flight or
 * done; each has a count of requests out for it and of the peers holding
 * it that are not whole-file seeds (its availability). A fetch asks for
 * the rarest chunk the peer holds, ties broken by where that peer's own
 * cursor stands (started at random, so peers spread over the file), or in
 * file order when the output must be written in order. When nothing is
 * missing, the endgame: a chunk still in flight elsewhere, asked again of
 * a peer that holds it and was not asked for it yet. A chunk whose hash
 * the fetch does not hold yet (a manifest without its layer) is never
 * picked: it could not be verified.
 */
#ifndef PROTO_PICKER_H
#define PROTO_PICKER_H

#include <stdint.h>

#include "have.h"

enum proto_chunk_state { PROTO_CHUNK_MISSING, PROTO_CHUNK_INFLIGHT,
    PROTO_CHUNK_DONE };

typedef struct proto_picker {
	uint64_t n;
	uint8_t *state;         /* enum proto_chunk_state */
	uint8_t *asked;         /* requests out */
	uint16_t *avail;        /* partial holders connected */
	uint64_t ndone;
	uint64_t nmissing;      /* chunks neither done nor asked for */
	uint64_t first_undone;  /* every chunk below is done */
	uint64_t next_missing;  /* no chunk below is missing */
	const proto_have *hashed; /* chunks whose hashes are held; NULL: all.
	                           * Borrowed: the owner keeps it current */
} proto_picker;

/* n chunks, all missing. 0 or PROTO_ERR_NOMEM. */
int proto_picker_init(proto_picker *pk, uint64_t n);
void proto_picker_free(proto_picker *pk);

/* Chunk i was asked for / one request for it is over. A chunk none is out
 * for and not done is missing again. */
void proto_picker_asked(proto_picker *pk, uint64_t i);
void proto_picker_unask(proto_picker *pk, uint64_t i);

/* Chunk i is verified and kept. Returns 1 the first time. */
int proto_picker_done(proto_picker *pk, uint64_t i);

/* A partial holder gained chunk i / came with or left with have. */
void proto_picker_gain(proto_picker *pk, uint64_t i);
void proto_picker_add_holder(proto_picker *pk, const proto_have *have);
void proto_picker_remove_holder(proto_picker *pk, const proto_have *have);

/* Tells the picker whether this peer has a request out for chunk i. */
typedef int (*proto_picker_asked_fn)(uint64_t i, void *ctx);

/*
 * The chunk to ask a peer for, or -1. have: what the peer holds (NULL: the
 * whole file). cursor: the peer's own, moved past the pick. limit: chunks
 * from limit on are not asked for yet (a window). in_order: the lowest
 * missing chunk instead of the rarest. asked_of tells the endgame which
 * chunks this peer was asked for already.
 */
int64_t proto_picker_pick(proto_picker *pk, const proto_have *have,
    uint64_t *cursor, uint64_t limit, int in_order,
    proto_picker_asked_fn asked_of, void *ctx);

#endif
