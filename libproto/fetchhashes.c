/*
 * A fetch whose manifest came without its chunk layer (fetch.h): the layer
 * in runs of run_len hashes, each asked of one peer at a time in file
 * order (GET_HASHES), checked against the root the id vouches for, and
 * written into the manifest, whose chunks the picker may then choose. The
 * first chunks go out as soon as the first run is in; the rest of the
 * layer follows while they come. fetchpeer.c asks, fetchanswer.c hands
 * the answers here; this file calls fetchutil.c only.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fetch_private.h"
#include "merkle.h"

int
proto__fetch_runs_init(proto_fetch *f)
{
	const proto_manifest *mf = f->mf;
	uint64_t width = proto_layer_width(mf->size, mf->chunk_size);

	f->run_len = width < PROTO_HASHES_MAX ? (uint32_t)width :
	    PROTO_HASHES_MAX;
	f->nruns = (mf->nchunks + f->run_len - 1) / f->run_len;
	f->run_hint = 0;
	if ((f->runs = calloc(f->nruns, 1)) == NULL)
		return PROTO_ERR_NOMEM;
	f->pk.hashed = mf->known;
	return 0;
}

void
proto__fetch_runs_free(proto_fetch *f)
{
	free(f->runs);
	f->runs = NULL;
	f->nruns = 0;
}

int64_t
proto__fetch_run_next(proto_fetch *f)
{
	if (f->runs == NULL)
		return -1;
	while (f->run_hint < f->nruns &&
	    f->runs[f->run_hint] != FETCH_RUN_MISSING)
		f->run_hint++;
	return f->run_hint < f->nruns ? (int64_t)f->run_hint : -1;
}

void
proto__fetch_run_asked(proto_fetch *f, uint64_t run)
{
	if (f->runs != NULL && run < f->nruns &&
	    f->runs[run] == FETCH_RUN_MISSING)
		f->runs[run] = FETCH_RUN_ASKED;
}

static void
run_missing(proto_fetch *f, uint64_t run)
{
	f->runs[run] = FETCH_RUN_MISSING;
	if (run < f->run_hint)
		f->run_hint = run;
}

void
proto__fetch_run_unask(proto_fetch *f, uint64_t run)
{
	if (f->runs != NULL && run < f->nruns && f->runs[run] == FETCH_RUN_ASKED)
		run_missing(f, run);
}

int
proto__fetch_run_take(proto_fetch *f, uint64_t run, const proto_msg *m)
{
	proto_manifest *mf = f->mf;
	uint64_t first = run * f->run_len;
	int rc;

	if (f->runs == NULL || run >= f->nruns)
		return 0; /* every hash came already */
	if (f->runs[run] == FETCH_RUN_DONE)
		return 0;
	rc = proto_manifest_add_run(mf, first, f->run_len, m->hashes,
	    m->nhashes, m->proof, m->nproof);
	if (rc != 0) {
		run_missing(f, run);
		return rc;
	}
	f->runs[run] = FETCH_RUN_DONE;
	f->hash_runs++;
	/* Once the layer is whole, known is gone: so are the runs. */
	f->pk.hashed = mf->known;
	proto__fetch_log(f, PROTO_LOG_DEBUG, "%s: chunk hashes %llu to %llu "
	    "checked against the root", f->hex, (unsigned long long)first,
	    (unsigned long long)(first + m->nhashes - 1));
	if (mf->known == NULL)
		proto__fetch_runs_free(f);
	if (f->cbs.on_hashes != NULL)
		f->cbs.on_hashes(first, m->nhashes, f->ctx);
	return 0;
}
