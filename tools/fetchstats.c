/*
 * p2p-fetch --stats: what the run fetched from whom, what it served, and
 * how it ended, as one line on stderr once the loop is over; and the
 * figures of the progress line.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "p2p-fetch.h"

/* "from": the peers that sent chunks we kept, and how many each. */
static void
from_json(struct fetch *f, struct tool_json *j)
{
	const char *addr;
	uint64_t chunks;

	tool_json_open(j, "from", '[');
	for (size_t i = 0; proto_fetch_peer(f->fx, i, &addr, &chunks) == 0;
	    i++) {
		if (chunks == 0)
			continue;
		tool_json_open(j, NULL, '{');
		tool_json_str(j, "peer", addr, strlen(addr));
		tool_json_uint(j, "chunks", chunks);
		tool_json_close(j, '}');
	}
	tool_json_close(j, ']');
}

/* How a peer that sent chunks was reached: "direct", "mapped" (through
 * the port its router forwards), "-" when not known. */
static const char *
path_of(struct fetch *f, size_t i)
{
	const char *path;

	return proto_fetch_peer_path(f->fx, i, &path) == 0 && path != NULL ?
	    path : "-";
}

/* "paths": the peers of "from", each with how it was reached. */
static void
paths_json(struct fetch *f, struct tool_json *j)
{
	const char *addr, *path;
	uint64_t chunks;

	tool_json_open(j, "paths", '[');
	for (size_t i = 0; proto_fetch_peer(f->fx, i, &addr, &chunks) == 0;
	    i++) {
		if (chunks == 0)
			continue;
		path = path_of(f, i);
		tool_json_open(j, NULL, '{');
		tool_json_str(j, "peer", addr, strlen(addr));
		tool_json_str(j, "path", path, strlen(path));
		tool_json_close(j, '}');
	}
	tool_json_close(j, ']');
}

/* --stats: one line on stderr, KEY=VALUE or a JSON object, the same keys
 * in the same order. */
void
fetch_print_stats(struct fetch *f)
{
	char line[12288], from[4096] = "", paths[4096] = "";
	size_t used = 0, pused = 0, at, used_peers = 0;
	enum { FROM_BEFORE = 5, NNUM = 13 }; /* "from" before "cancelled" */
	proto_server_stats ss;
	proto_fetch_stats fs;
	struct tool_json j;
	const char *addr;
	uint64_t chunks;

	for (size_t i = 0; proto_fetch_peer(f->fx, i, &addr, &chunks) == 0;
	    i++) {
		if (chunks == 0)
			continue;
		used_peers++;
		if (used < sizeof(from))
			used += (size_t)snprintf(from + used,
			    sizeof(from) - used, "%s%s/%llu", used ? "," : "",
			    addr, (unsigned long long)chunks);
		if (pused < sizeof(paths))
			pused += (size_t)snprintf(paths + pused,
			    sizeof(paths) - pused, "%s%s/%s", pused ? "," : "",
			    addr, path_of(f, i));
	}
	proto_fetch_stats_get(f->fx, &fs);
	memset(&ss, 0, sizeof(ss));
	if (f->server != NULL)
		proto_server_stats_get(f->server, &ss);
	const struct { const char *key; uint64_t v; } num[NNUM] = {
		{ "bytes_in", fs.bytes_in },
		{ "chunks_fetched", fs.chunks_fetched + f->tree_chunks },
		{ "chunks_resumed", f->chunks_resumed },
		{ "peers_used", used_peers },
		{ "peers_dropped", fs.peers_dropped },
		{ "cancelled", fs.cancelled }, { "duplicates", fs.duplicates },
		{ "bytes_out", ss.bytes_out }, { "chunks_out", ss.chunks_out },
		{ "peers_in", ss.peers }, { "connects", fs.connects },
		{ "manifests", fs.manifests }, { "hash_runs", fs.hash_runs },
	};
	if (tool_opt.json) {
		tool_json_start(&j);
		tool_json_str(&j, "tool", tool_name, strlen(tool_name));
		for (size_t i = 0; i < NNUM; i++) {
			if (i == FROM_BEFORE)
				from_json(f, &j);
			tool_json_uint(&j, num[i].key, num[i].v);
		}
		paths_json(f, &j);
		tool_json_uint(&j, "exit", (uint64_t)f->exit_code);
		(void)tool_json_finish(&j, STDERR_FILENO);
		return;
	}
	at = (size_t)snprintf(line, sizeof(line), "%s: stats", tool_name);
	for (size_t i = 0; i < NNUM; i++) {
		if (i == FROM_BEFORE)
			at += (size_t)snprintf(line + at, sizeof(line) - at,
			    " from=%s", used ? from : "-");
		at += (size_t)snprintf(line + at, sizeof(line) - at,
		    " %s=%llu", num[i].key, (unsigned long long)num[i].v);
	}
	snprintf(line + at, sizeof(line) - at, " paths=%s", pused ? paths :
	    "-");
	fprintf(stderr, "%s\n", line);
}

/* The length of chunk index of the manifest: the last may be short. */
uint64_t
fetch_chunk_length(const proto_manifest *mf, uint64_t index)
{
	uint64_t at = index * (uint64_t)mf->chunk_size;

	if (at >= mf->size)
		return 0;
	return mf->size - at < mf->chunk_size ? mf->size - at :
	    mf->chunk_size;
}

/* What an earlier run left: shown apart on the final progress line, and
 * not counted in the rates. */
void
fetch_note_resumed(struct fetch *f)
{
	char note[64];

	if (f->chunks_resumed == 0 || f->mf == NULL)
		return;
	snprintf(note, sizeof(note), "resumed %llu of %llu chunks",
	    (unsigned long long)f->chunks_resumed,
	    (unsigned long long)f->mf->nchunks);
	tool_progress_resumed(&f->progress, f->bytes_resumed, note);
}

/* The bytes in: those kept from FILE.part and those of the chunks
 * fetched and written; while running (moving) also those read from peers
 * so far, of chunks not yet whole too, so that big chunks at a low rate
 * still move the line. The final line says only what is kept, as the
 * messages after it do. */
uint64_t
fetch_progress_done(const struct fetch *f, int moving)
{
	proto_fetch_stats st;
	uint64_t kept, read;

	if (f->mf == NULL)
		return 0;
	proto_fetch_stats_get(f->fx, &st);
	if (st.chunks_done == f->mf->nchunks)
		return f->mf->size;
	kept = f->bytes_resumed + f->bytes_fetched;
	read = f->bytes_resumed + st.bytes_in + st.bytes_reading;
	if (moving && read > kept)
		kept = read;
	return kept < f->mf->size ? kept : f->mf->size;
}

/* The peers that sent chunks: those merely connected, or retried, are
 * not sources. */
int
fetch_sending_peers(const struct fetch *f)
{
	const char *addr;
	uint64_t chunks;
	int n = 0;

	for (size_t i = 0; proto_fetch_peer(f->fx, i, &addr, &chunks) == 0;
	    i++)
		n += chunks > 0;
	return n;
}
