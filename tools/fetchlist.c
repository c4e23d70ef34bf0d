/*
 * p2p-fetch --list: the files its peers share, each printed once however
 * many peers list it. The ids already printed are kept in an
 * open-addressing set whose probe is keyed at random, since the peers
 * choose the ids.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "p2p-fetch.h"

/* 0, or -1 with errno set when the line could not be written. */
static int
print_entry_json(const char *hex, const proto_list_entry *e)
{
	struct tool_json j;

	fflush(stdout);
	tool_json_start(&j);
	tool_json_str(&j, "id", hex, PROTO_ID_HEX_LEN);
	tool_json_uint(&j, "size", e->size);
	tool_json_str(&j, "name", e->name, e->name_len);
	tool_json_str(&j, "type", e->kind == PROTO_LIST_TREE ? "tree" : "file",
	    4);
	if (e->kind == PROTO_LIST_TREE)
		tool_json_uint(&j, "files", e->nfiles);
	else if (e->path != NULL)
		tool_json_str(&j, "path", e->path, e->path_len);
	return tool_json_finish(&j, STDOUT_FILENO) != 0 ? -1 : 0;
}

/* The slot of id in the table: where it is, or the empty one it would take.
 * Peers choose the ids they list, so the probe starts at a mix of all 32
 * bytes under keys drawn at start: a peer cannot pick ids that all fall in
 * one run of slots. */
static size_t
listed_slot(const struct fetch *f, const uint8_t *id)
{
	static const uint8_t none[PROTO_HASH_LEN];
	uint64_t h = f->listed_key[0], w;
	size_t i;

	for (int k = 0; k < 4; k++) {
		memcpy(&w, id + 8 * k, sizeof(w));
		h = (h ^ w) * f->listed_key[1 + (k & 1)];
		h ^= h >> 31;
	}
	for (i = (size_t)h & (f->listed_cap - 1);
	    memcmp(f->listed[i], id, PROTO_HASH_LEN) != 0 &&
	    memcmp(f->listed[i], none, PROTO_HASH_LEN) != 0;
	    i = (i + 1) & (f->listed_cap - 1))
		;
	return i;
}

/* 1 when id was not listed before (it is now). The all-zero id stands for
 * an empty slot, so a peer that lists it is not believed: no file has it. */
static int
first_listing(struct fetch *f, const uint8_t *id)
{
	size_t i;

	if (f->listed_cap == 0) {
		if (getrandom(f->listed_key, sizeof(f->listed_key), 0) !=
		    (ssize_t)sizeof(f->listed_key))
			tool_die(1, "getrandom: %s", strerror(errno));
		f->listed_key[1] |= 1; /* odd: a multiplication that permutes */
		f->listed_key[2] |= 1;
	}
	if (f->nlisted * 2 >= f->listed_cap) {
		uint8_t (*old)[PROTO_HASH_LEN] = f->listed;
		size_t old_cap = f->listed_cap;
		f->listed_cap = old_cap ? old_cap * 2 : 64;
		if ((f->listed = calloc(f->listed_cap, PROTO_HASH_LEN)) == NULL)
			tool_die(1, "out of memory");
		for (size_t j = 0; j < old_cap; j++)
			memcpy(f->listed[listed_slot(f, old[j])], old[j],
			    PROTO_HASH_LEN);
		free(old);
	}
	i = listed_slot(f, id);
	if (memcmp(f->listed[i], id, PROTO_HASH_LEN) == 0)
		return 0;
	memcpy(f->listed[i], id, PROTO_HASH_LEN);
	f->nlisted++;
	return 1;
}

void
fetch_on_list(const proto_list_entry *entries, size_t n, void *arg)
{
	char hex[PROTO_ID_HEX_LEN + 1], name[PROTO_TREE_PATH_MAX + 2];
	struct fetch *f = arg;
	int failed = 0;

	for (size_t i = 0; i < n && !failed; i++) {
		const proto_list_entry *e = &entries[i];
		if (!first_listing(f, e->id))
			continue;
		proto_hex_encode(e->id, PROTO_HASH_LEN, hex);
		if (tool_opt.json) {
			failed = print_entry_json(hex, e) != 0;
			continue;
		}
		/* A file's path in its tree, a tree's name and a '/' (as ls -F
		 * marks a directory): neither a name nor a path ends in one. */
		if (e->path != NULL)
			proto_msg_printable(name, sizeof(name) - 1, e->path,
			    e->path_len);
		else
			proto_msg_printable(name, sizeof(name) - 1, e->name,
			    e->name_len);
		if (e->kind == PROTO_LIST_TREE)
			strcat(name, "/");
		/* A tab in a name would split the line's fields. */
		for (char *t = name; *t; t++)
			if (*t == '\t')
				*t = '?';
		printf("%s\t%llu\t%s\n", hex, (unsigned long long)e->size, name);
	}
	if (failed || fflush(stdout) != 0) {
		/* The reader went: a quiet end. */
		if (errno != EPIPE)
			tool_log(LOG_ERROR, "write: %s", strerror(errno));
		fetch_finish(f, errno == EPIPE ? 0 : 1);
	}
}
