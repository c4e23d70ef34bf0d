/*
 * The chunk picker. Scans are linear from a cursor; the rarest-first scan
 * stops at the first chunk no other partial holder has (it cannot do
 * better) or after SCAN_MAX candidates, so a pick over a file of the most
 * chunks allowed stays cheap.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "picker.h"

#define SCAN_MAX 4096u

int
proto_picker_init(proto_picker *pk, uint64_t n)
{
	size_t cells = n ? (size_t)n : 1;

	memset(pk, 0, sizeof(*pk));
	pk->n = n;
	pk->nmissing = n;
	pk->state = calloc(cells, 1);
	pk->asked = calloc(cells, 1);
	pk->avail = calloc(cells, sizeof(*pk->avail));
	if (pk->state == NULL || pk->asked == NULL || pk->avail == NULL) {
		proto_picker_free(pk);
		return PROTO_ERR_NOMEM;
	}
	return 0;
}

void
proto_picker_free(proto_picker *pk)
{
	free(pk->state);
	free(pk->asked);
	free(pk->avail);
	memset(pk, 0, sizeof(*pk));
}

void
proto_picker_asked(proto_picker *pk, uint64_t i)
{
	if (pk->state[i] == PROTO_CHUNK_MISSING) {
		pk->state[i] = PROTO_CHUNK_INFLIGHT;
		pk->nmissing--;
	}
	if (pk->asked[i] < UINT8_MAX)
		pk->asked[i]++;
}

void
proto_picker_unask(proto_picker *pk, uint64_t i)
{
	if (pk->asked[i] > 0)
		pk->asked[i]--;
	if (pk->asked[i] == 0 && pk->state[i] == PROTO_CHUNK_INFLIGHT) {
		pk->state[i] = PROTO_CHUNK_MISSING;
		pk->nmissing++;
		if (i < pk->next_missing)
			pk->next_missing = i;
	}
}

int
proto_picker_done(proto_picker *pk, uint64_t i)
{
	if (pk->state[i] == PROTO_CHUNK_DONE)
		return 0;
	if (pk->state[i] == PROTO_CHUNK_MISSING)
		pk->nmissing--;
	pk->state[i] = PROTO_CHUNK_DONE;
	pk->ndone++;
	return 1;
}

void
proto_picker_gain(proto_picker *pk, uint64_t i)
{
	if (i < pk->n && pk->avail[i] < UINT16_MAX)
		pk->avail[i]++;
}

void
proto_picker_add_holder(proto_picker *pk, const proto_have *have)
{
	for (uint64_t i = 0; i < pk->n && i < have->n; i++)
		if (proto_have_test(have, i))
			proto_picker_gain(pk, i);
}

void
proto_picker_remove_holder(proto_picker *pk, const proto_have *have)
{
	for (uint64_t i = 0; i < pk->n && i < have->n; i++)
		if (proto_have_test(have, i) && pk->avail[i] > 0)
			pk->avail[i]--;
}

static int
holds(const proto_have *have, uint64_t i)
{
	return have == NULL || proto_have_test(have, i);
}

static int
hashed(const proto_picker *pk, uint64_t i)
{
	return pk->hashed == NULL || proto_have_test(pk->hashed, i);
}

static int64_t
pick_in_order(proto_picker *pk, const proto_have *have, uint64_t limit)
{
	while (pk->next_missing < pk->n &&
	    pk->state[pk->next_missing] != PROTO_CHUNK_MISSING)
		pk->next_missing++;
	for (uint64_t i = pk->next_missing; i < limit; i++)
		if (pk->state[i] == PROTO_CHUNK_MISSING && holds(have, i) &&
		    hashed(pk, i))
			return (int64_t)i;
	return -1;
}

static int64_t
pick_rarest(proto_picker *pk, const proto_have *have, uint64_t *cursor,
    uint64_t limit)
{
	/* A chunk the peer holds is at best held by it alone; a seed's
	 * chunks may be held by no partial peer at all. */
	unsigned floor = have != NULL ? 1 : 0, seen = 0;
	int64_t best = -1;

	if (limit == 0)
		return -1;
	for (uint64_t k = 0, i = *cursor % limit; k < limit;
	    k++, i = i + 1 == limit ? 0 : i + 1) {
		if (pk->state[i] != PROTO_CHUNK_MISSING || !holds(have, i) ||
		    !hashed(pk, i))
			continue;
		if (best < 0 || pk->avail[i] < pk->avail[best])
			best = (int64_t)i;
		if (pk->avail[best] <= floor || ++seen >= SCAN_MAX)
			break;
	}
	if (best >= 0)
		*cursor = (uint64_t)best + 1;
	return best;
}

int64_t
proto_picker_pick(proto_picker *pk, const proto_have *have,
    uint64_t *cursor, uint64_t limit, int in_order,
    proto_picker_asked_fn asked_of, void *ctx)
{
	int64_t i;

	if (limit > pk->n)
		limit = pk->n;
	i = in_order ? pick_in_order(pk, have, limit) :
	    pick_rarest(pk, have, cursor, limit);
	/* The endgame only once nothing is left to ask for (within the
	 * window, in order): before that, a peer that holds nothing missing
	 * waits rather than fetch a copy of what another is bringing. */
	if (i >= 0 || (in_order ? pk->next_missing < limit : pk->nmissing > 0))
		return i;
	while (pk->first_undone < pk->n &&
	    pk->state[pk->first_undone] == PROTO_CHUNK_DONE)
		pk->first_undone++;
	for (uint64_t k = pk->first_undone; k < limit; k++)
		if (pk->state[k] == PROTO_CHUNK_INFLIGHT &&
		    pk->asked[k] < UINT8_MAX && holds(have, k) &&
		    !asked_of(k, ctx))
			return (int64_t)k;
	return -1;
}
