/*
 * p2p-fetch PREFIX and p2p-fetch --name NAME (p2p-fetch.h): the id looked
 * up first in the lists of the peers given, with the LIST request
 * p2p-fetch --list makes; the fetch then goes on as for the whole id.
 * Lists come from peers: only the candidates are kept (RESOLVE_MAX ids at
 * most), their names made printable and cut, and no listed name is ever a
 * path here (the output is named from the manifest, by fetchname.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p2p-fetch.h"

#define PREFIX_MIN 8        /* hex digits: fewer match too many to say */
#define RESOLVE_MAX 16      /* different ids kept and shown */
#define SHOWN_NAME_MAX 256  /* bytes of a candidate's name kept */

struct candidate {
	uint8_t id[PROTO_HASH_LEN];
	char name[SHOWN_NAME_MAX + 2];  /* printable; a tree's ends in '/' */
	char peer[PROTO_ADDR_TEXT_MAX]; /* the first peer that listed it */
};

struct fetch_resolve {
	struct candidate c[RESOLVE_MAX];
	size_t n;
	int more;               /* another id matched with no room left */
};

/* arg: an id whole, or a prefix; exits 2 saying what is wrong else. */
static void
parse_id(struct fetch *f, const char *arg)
{
	char shown[80];
	size_t len = strlen(arg), bad;

	if (proto_id_parse(arg, f->id) == 0)
		return;
	proto_msg_printable(shown, sizeof(shown), arg, len);
	bad = strspn(arg, "0123456789abcdefABCDEF");
	if (bad < len)
		tool_die(2, "malformed content id '%s': character %zu is not a "
		    "hex digit; an id is %d hex digits (a unique prefix of %d "
		    "or more will do) or a p2p:// link, and --name NAME "
		    "fetches by name: p2p-fetch --list -p HOST shows what a "
		    "peer shares", shown, bad + 1, PROTO_ID_HEX_LEN,
		    PREFIX_MIN);
	if (len > PROTO_ID_HEX_LEN || len < PREFIX_MIN)
		tool_die(2, "malformed content id '%s': %zu hex digit%s; an "
		    "id is %d, or a unique prefix of %d or more: p2p-fetch "
		    "--list -p HOST shows the ids a peer shares", shown, len,
		    len == 1 ? "" : "s", PROTO_ID_HEX_LEN, PREFIX_MIN);
	for (size_t i = 0; i < len; i++)
		f->prefix[i] = (char)tolower((unsigned char)arg[i]);
	f->prefix[len] = '\0';
}

const char *
fetch_take_target(struct fetch *f, int argc, char **argv)
{
	if (argc == 0 && f->by_name == NULL)
		return "no ID: give the content id to fetch (p2p-chunk --id "
		    "FILE prints a file's; p2p-fetch --list -p HOST the ids a "
		    "peer shares)";
	if (argc > 0 && f->by_name != NULL)
		return "--name NAME or an ID, not both";
	if (argc > 1)
		return "one ID at a time";
	if (argc == 1 && !fetch_link(f, argv[0]))
		parse_id(f, argv[0]);
	return NULL;
}

/* 1 when e is what was asked for: its id starts with the prefix, or its
 * name or path in its tree is the name. */
static int
wanted(const struct fetch *f, const proto_list_entry *e, const char *hex)
{
	size_t nl;

	if (f->prefix[0] != '\0')
		return strncmp(hex, f->prefix, strlen(f->prefix)) == 0;
	nl = strlen(f->by_name);
	return (e->name_len == nl && memcmp(e->name, f->by_name, nl) == 0) ||
	    (e->path != NULL && e->path_len == nl &&
	    memcmp(e->path, f->by_name, nl) == 0);
}

static void
take(struct fetch *f, const proto_list_entry *e)
{
	static const uint8_t none[PROTO_HASH_LEN];
	struct fetch_resolve *r = f->resolve;
	const char *peer = proto_fetch_list_peer(f->fx);
	struct candidate *c;
	char hex[PROTO_ID_HEX_LEN + 1];

	/* The all-zero id is no file's (as --list says). */
	if (memcmp(e->id, none, PROTO_HASH_LEN) == 0)
		return;
	proto_hex_encode(e->id, PROTO_HASH_LEN, hex);
	if (!wanted(f, e, hex))
		return;
	for (size_t i = 0; i < r->n; i++)
		if (memcmp(r->c[i].id, e->id, PROTO_HASH_LEN) == 0)
			return;
	if (r->n == RESOLVE_MAX) {
		r->more = 1;
		return;
	}
	c = &r->c[r->n++];
	memcpy(c->id, e->id, PROTO_HASH_LEN);
	if (e->path != NULL)
		proto_msg_printable(c->name, SHOWN_NAME_MAX + 1, e->path,
		    e->path_len);
	else
		proto_msg_printable(c->name, SHOWN_NAME_MAX + 1, e->name,
		    e->name_len);
	if (e->kind == PROTO_LIST_TREE)
		strcat(c->name, "/");
	/* A tab would split the candidate's line (ID, NAME, PEER). */
	for (char *t = c->name; *t; t++)
		if (*t == '\t')
			*t = '?';
	snprintf(c->peer, sizeof(c->peer), "%s", peer != NULL ? peer : "?");
}

static void
on_list(const proto_list_entry *entries, size_t n, void *arg)
{
	for (size_t i = 0; i < n; i++)
		take(arg, &entries[i]);
}

/* A list fetch has no use for these. */
static int
on_manifest(proto_manifest *mf, void *arg)
{
	(void)mf;
	(void)arg;
	return -1;
}

static void
on_chunk(uint64_t index, const uint8_t *data, size_t len, void *arg)
{
	(void)index;
	(void)data;
	(void)len;
	(void)arg;
}

static void
on_complete(void *arg)
{
	(void)arg;
}

static void
on_end(int code, void *arg)
{
	fetch_finish(arg, code);
}

/* What was asked for, as the messages say it: what matches has it (is
 * named it), or with many, have it (are named it). */
static void
asked(const struct fetch *f, int many, char *out, size_t outlen)
{
	char shown[SHOWN_NAME_MAX + 1];

	if (f->prefix[0] != '\0') {
		snprintf(out, outlen, "%s an id starting with %s",
		    many ? "have" : "has", f->prefix);
		return;
	}
	proto_msg_printable(shown, sizeof(shown), f->by_name,
	    strlen(f->by_name));
	snprintf(out, outlen, "%s named '%s'", many ? "are" : "is", shown);
}

/* How to see the lists: the same peers, given the same way. */
static void
list_hint(const struct fetch *f, char *out, size_t outlen)
{
	size_t n = (size_t)snprintf(out, outlen, "p2p-fetch --list");

	for (int i = 0; i < f->npeers && i < 3 && n < outlen; i++)
		n += (size_t)snprintf(out + n, outlen - n, " -p %s",
		    proto_addr_text(&f->peers[i]));
	if (f->npeers > 3 && n < outlen)
		snprintf(out + n, outlen - n, " ...");
	else if (f->npeers == 0 && n < outlen)
		snprintf(out + n, outlen - n, " (the same peers on stdin)");
}

/* Exits 1 unless exactly one id matched; takes it then. */
static void
decide(struct fetch *f)
{
	struct fetch_resolve *r = f->resolve;
	char what[SHOWN_NAME_MAX + 32], hint[256], hex[PROTO_ID_HEX_LEN + 1];

	asked(f, r->n > 1, what, sizeof(what));
	list_hint(f, hint, sizeof(hint));
	if (r->n == 0)
		tool_die(1, "none of the files or trees the peers list %s; to "
		    "see what they share: %s", what, hint);
	if (r->n > 1 || r->more) {
		tool_log(LOG_ERROR, "%s%zu files or trees the peers list %s; "
		    "fetch one by its id (or 8 hex digits or more of it that "
		    "no other has):", r->more ? "more than " : "", r->n, what);
		for (size_t i = 0; i < r->n; i++) {
			proto_hex_encode(r->c[i].id, PROTO_HASH_LEN, hex);
			fprintf(stderr, "%s\t%s\t%s\n", hex, r->c[i].name,
			    r->c[i].peer);
		}
		exit(1);
	}
	memcpy(f->id, r->c[0].id, PROTO_HASH_LEN);
	proto_hex_encode(f->id, PROTO_HASH_LEN, hex);
	tool_log(LOG_INFO, "%s: %s, listed by %s", hex, r->c[0].name,
	    r->c[0].peer);
}

/* The peers read from stdin are given ones now: stdin has ended (the
 * list waited for it), and the fetch to come takes f->peers. */
static void
keep_stdin_peers(struct fetch *f)
{
	size_t n = (size_t)f->npeers + f->nknown;

	if (f->stdin_ev != NULL)
		event_free(f->stdin_ev);
	f->stdin_ev = NULL;
	f->read_stdin = 0;
	f->stdin_open = 0;
	if (f->nknown == 0)
		return;
	if ((f->peers = realloc(f->peers, n * sizeof(*f->peers))) == NULL)
		tool_die(1, "out of memory");
	memcpy(f->peers + f->npeers, f->known, f->nknown * sizeof(*f->known));
	f->npeers = (int)n;
	f->nknown = 0;
}

void
fetch_resolve(struct fetch *f)
{
	static const proto_fetch_cbs cbs = { tool_proto_log, on_manifest,
	    on_chunk, on_complete, on_list, on_end, NULL, NULL };
	proto_fetch_config cfg;

	if (f->prefix[0] == '\0' && f->by_name == NULL) {
		proto_hex_encode(f->id, PROTO_HASH_LEN, f->hex);
		return;
	}
	if (f->npeers == 0 && !f->read_stdin)
		tool_die(2, "a PREFIX or --name is looked up in the lists of "
		    "the peers given by -p or on stdin: give them");
	if ((f->resolve = calloc(1, sizeof(*f->resolve))) == NULL)
		tool_die(1, "out of memory");
	memset(&cfg, 0, sizeof(cfg));
	cfg.list = 1;
	cfg.conn = f->cfg;
	cfg.timeout = f->timeout;
	cfg.max_peers = f->max_peers;
	if ((f->fx = proto_fetch_new(f->base, &cfg, &cbs, f)) == NULL)
		tool_die(1, "out of memory");
	proto_fetch_more_peers(f->fx, 1);
	for (int i = 0; i < f->npeers && !f->done; i++)
		if (proto_fetch_add_peer(f->fx, &f->peers[i]) != 0)
			tool_die(1, "out of memory");
	if (!f->done)
		fetch_start_peers(f);
	if (!f->done)
		proto_fetch_more_peers(f->fx, f->stdin_open);
	if (!f->done)
		event_base_dispatch(f->base);
	if (f->exit_code != 0)
		exit(f->exit_code);
	decide(f);
	proto_fetch_free(f->fx);
	f->fx = NULL;
	free(f->resolve);
	f->resolve = NULL;
	f->done = 0;
	keep_stdin_peers(f);
	proto_hex_encode(f->id, PROTO_HASH_LEN, f->hex);
}
