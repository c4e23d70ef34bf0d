/*
 * Where a tool's settings come from, in the order they are applied: the
 * configuration file (--config FILE, else config/default.toml, else
 * ~/.config/p2p/config.toml), then the environment, then the flags. The
 * file is read here, and the options every tool shares (-q, -v, --config,
 * -h, -V, --progress, --json, the rate limits) are handled here, once.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "disco.h"
#include "tool.h"

struct tool_options tool_opt;

struct config_ctx {
	struct tool_config *cfg;
	int failed;
	const char *bad_key;
	char bad_value[1024];
	const char *why;
	FILE *file;
	const char *path;
	int line;               /* of the line the handler is given */
	int strict;             /* an unknown key is an error (--strict) */
	char unknown[256];      /* the unknown key that failed, with strict */
};

/* The value as TOML writes it: a trailing # comment dropped, blanks
 * trimmed, one pair of double quotes removed. */
static void
config_value(const char *raw, char *out, size_t outlen)
{
	size_t n = strcspn(raw, "#");

	while (n > 0 && (raw[n - 1] == ' ' || raw[n - 1] == '\t'))
		n--;
	if (n >= 2 && raw[0] == '"' && raw[n - 1] == '"') {
		raw++;
		n -= 2;
	}
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, raw, n);
	out[n] = '\0';
}

static int
config_number(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long n;
	char *end;

	errno = 0;
	if (!isdigit((unsigned char)v[0]))
		return 0;
	n = strtoull(v, &end, 10);
	if (*end != '\0' || errno || n < min || n > max)
		return 0;
	*out = n;
	return 1;
}

static int
config_entry_checked(struct config_ctx *c, const char *section,
    const char *name, const char *raw);

/* A bootstrap list: TOML's ["a:1", "b:2"] or a:1,b:2, into out as a,b
 * (comma-separated, no quotes, no blanks); each entry must end in :PORT.
 * 1 when it is one. */
static int
dht_list(const char *v, char *out, size_t outlen)
{
	char buf[1024], *save = NULL, *s;
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", v);
	out[0] = '\0';
	for (s = strtok_r(buf, "[], \t\"", &save); s != NULL;
	    s = strtok_r(NULL, "[], \t\"", &save)) {
		const char *colon = strrchr(s, ':');
		char *end;
		unsigned long port;
		if (colon == NULL || colon == s)
			return 0;
		port = strtoul(colon + 1, &end, 10);
		if (*end != '\0' || colon[1] == '\0' || port == 0 ||
		    port > 65535 || n + strlen(s) + 2 > outlen)
			return 0;
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", n ? "," : "",
		    s);
	}
	return n > 0;
}

static int
config_entry(void *user, const char *section, const char *name,
    const char *raw)
{
	struct config_ctx *c = user;
	int ok;

	/* ini_parse reports the first failing line; keep what failed there. */
	if (c->failed)
		return 1;
	ok = config_entry_checked(c, section, name, raw);
	c->failed = !ok;
	return ok;
}

static int
config_entry_checked(struct config_ctx *c, const char *section,
    const char *name, const char *raw)
{
	struct tool_config *cfg = c->cfg;
	char v[1024];
	uint64_t n;

	config_value(raw, v, sizeof(v));
	snprintf(c->bad_value, sizeof(c->bad_value), "%s", v);
	c->bad_key = NULL;
	if (strcmp(section, "network") == 0 && strcmp(name, "max_peers") == 0) {
		c->bad_key = "network.max_peers";
		c->why = "a number from 1 to 100000";
		if (!config_number(v, 1, 100000, &n))
			return 0;
		cfg->max_peers = (unsigned)n;
		cfg->has_max_peers = 1;
	} else if (strcmp(section, "network") == 0 &&
	    strcmp(name, "connection_timeout") == 0) {
		c->bad_key = "network.connection_timeout";
		c->why = "seconds, from 1 to 3600";
		if (!config_number(v, 1, 3600, &n))
			return 0;
		cfg->connection_timeout = (unsigned)n;
		cfg->has_connection_timeout = 1;
	} else if (strcmp(section, "network") == 0 &&
	    strcmp(name, "discovery_interval") == 0) {
		c->bad_key = "network.discovery_interval";
		c->why = "seconds, from 1 to 86400";
		if (!config_number(v, 1, 86400, &n))
			return 0;
		cfg->discovery_interval = (unsigned)n;
		cfg->has_discovery_interval = 1;
	} else if (strcmp(section, "storage") == 0 &&
	    strcmp(name, "chunk_size") == 0) {
		c->bad_key = "storage.chunk_size";
		c->why = "a power of two from 16384 to 4194304";
		if (!config_number(v, PROTO_CHUNK_MIN, PROTO_CHUNK_MAX, &n) ||
		    !proto_chunk_size_allowed((size_t)n))
			return 0;
		cfg->chunk_size = (size_t)n;
		cfg->has_chunk_size = 1;
	} else if (strcmp(section, "storage") == 0 &&
	    strcmp(name, "max_file_size") == 0) {
		c->bad_key = "storage.max_file_size";
		c->why = "bytes, at least 1";
		if (!config_number(v, 1, UINT64_MAX, &n))
			return 0;
		cfg->max_file_size = n;
		cfg->has_max_file_size = 1;
	} else if (strcmp(section, "network") == 0 &&
	    (strcmp(name, "max_upload_rate") == 0 ||
	    strcmp(name, "max_download_rate") == 0)) {
		int up = strcmp(name, "max_upload_rate") == 0;
		c->bad_key = up ? "network.max_upload_rate" :
		    "network.max_download_rate";
		c->why = "bytes per second from 1K to 1T, with K, M or G, or 0";
		if (tool_rate_parse(v, &n) != 0)
			return 0;
		*(up ? &tool_opt.max_upload_rate :
		    &tool_opt.max_download_rate) = n;
	} else if (strcmp(section, "network") == 0 &&
	    strcmp(name, "dht") == 0) {
		c->bad_key = "network.dht";
		c->why = "true or false";
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
			return 0;
		cfg->dht = strcmp(v, "true") == 0;
	} else if (strcmp(section, "network") == 0 &&
	    strcmp(name, "nat") == 0) {
		c->bad_key = "network.nat";
		c->why = "true or false";
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
			return 0;
		cfg->nat = strcmp(v, "true") == 0;
	} else if (strcmp(section, "network") == 0 &&
	    strcmp(name, "dht_bootstrap") == 0) {
		c->bad_key = "network.dht_bootstrap";
		c->why = "HOST:PORT, comma-separated";
		if (!dht_list(v, cfg->dht_bootstrap,
		    sizeof(cfg->dht_bootstrap)))
			return 0;
	} else if (strcmp(section, "network") == 0 &&
	    strcmp(name, "dht_port") == 0) {
		c->bad_key = "network.dht_port";
		c->why = "a UDP port, 0 for any";
		if (!config_number(v, 0, 65535, &n))
			return 0;
		cfg->dht_port = (uint16_t)n;
	} else if (strcmp(section, "logging") == 0 &&
	    strcmp(name, "level") == 0) {
		c->bad_key = "logging.level";
		c->why = "error, warn, info, debug or trace";
		/* A filter as in P2P_LOG is welcome too, but all of it. */
		if (v[0] == '\0' || tool_log_filter(v, cfg->log_levels) != 0)
			return 0;
		cfg->has_log_level = 1;
	} else {
		/* A misspelt key would otherwise be a setting silently lost. */
		if (c->strict) {
			snprintf(c->unknown, sizeof(c->unknown), "%s%s%s",
			    section, *section ? "." : "", name);
			return 0;
		}
		tool_log(LOG_WARN, "%s:%d: [%s] %s: unknown key, ignored "
		    "(--strict makes it an error)", c->path, c->line, section,
		    name);
	}
	return 1;
}

/* inih's reader, counting lines so that a warning can name its line
 * (the handler is given none). */
static char *
read_line(char *str, int num, void *stream)
{
	struct config_ctx *c = stream;
	char *got = fgets(str, num, c->file);

	if (got != NULL)
		c->line++;
	return got;
}

/* The environment beats the file: the one place it is read. */
static void
load_env(struct tool_config *cfg)
{
	const char *env;

	if ((env = getenv("MINI_P2P_MAX_PEERS")) != NULL && *env) {
		cfg->max_peers = (unsigned)tool_parse_number(env, 1, 100000,
		    "MINI_P2P_MAX_PEERS");
		cfg->has_max_peers = 1;
	}
	if ((env = getenv("MINI_P2P_TIMEOUT")) != NULL && *env) {
		cfg->connection_timeout = (unsigned)tool_parse_number(env, 1,
		    3600, "MINI_P2P_TIMEOUT");
		cfg->has_connection_timeout = 1;
	}
	if ((env = getenv("MINI_P2P_CHUNK_SIZE")) != NULL && *env) {
		cfg->chunk_size = tool_parse_chunk_size(env,
		    "MINI_P2P_CHUNK_SIZE");
		cfg->has_chunk_size = 1;
	}
	if ((env = getenv("MINI_P2P_DISCOVERY_PORT")) != NULL && *env) {
		cfg->discovery_port = (uint16_t)tool_parse_number(env, 1, 65535,
		    "MINI_P2P_DISCOVERY_PORT");
		cfg->has_discovery_port = 1;
	}
	cfg->discovery_addr = getenv("MINI_P2P_DISCOVERY_ADDR");
	cfg->discovery_addr6 = getenv("MINI_P2P_DISCOVERY_ADDR6");
	if (cfg->discovery_addr6 != NULL && *cfg->discovery_addr6) {
		proto_disco_target6 t6;
		if (proto_disco_targets6(NULL, cfg->discovery_addr6, 1, &t6,
		    1) < 0)
			tool_die(2, "MINI_P2P_DISCOVERY_ADDR6 '%s': want an IPv6 "
			    "address or off", cfg->discovery_addr6);
	}
	if ((env = getenv("MINI_P2P_DHT")) != NULL && *env)
		cfg->dht = (int)tool_parse_number(env, 0, 1, "MINI_P2P_DHT");
	if ((env = getenv("MINI_P2P_DHT_BOOTSTRAP")) != NULL && *env &&
	    !dht_list(env, cfg->dht_bootstrap, sizeof(cfg->dht_bootstrap)))
		tool_die(2, "MINI_P2P_DHT_BOOTSTRAP '%s': want HOST:PORT, "
		    "comma-separated", env);
	if ((env = getenv("MINI_P2P_DHT_PORT")) != NULL && *env)
		cfg->dht_port = (uint16_t)tool_parse_number(env, 0, 65535,
		    "MINI_P2P_DHT_PORT");
	/* For the tests alone: a few-MiB file sent as its root, as one past
	 * 64 GiB is, so that the hashes on demand are exercised in seconds. */
	if ((env = getenv("MINI_P2P_TEST_INLINE_CHUNKS")) != NULL && *env)
		cfg->inline_chunks = (unsigned)tool_parse_number(env, 1,
		    PROTO_INLINE_MAX, "MINI_P2P_TEST_INLINE_CHUNKS");
}

void
tool_config_load(int argc, char **argv, struct tool_config *cfg)
{
	const char *explicit = NULL, *home = getenv("HOME");
	char candidates[2][4096];
	struct config_ctx c;
	int ncand = 0, rc, strict = 0;
	FILE *file;

	memset(cfg, 0, sizeof(*cfg));
	/* --config is taken before getopt, since the file sits below the
	 * flags that getopt will read. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--strict") == 0)
			strict = 1;
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			explicit = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			explicit = argv[i] + 9;
	}
	if (explicit != NULL) {
		snprintf(candidates[ncand++], sizeof(candidates[0]), "%s",
		    explicit);
	} else {
		snprintf(candidates[ncand++], sizeof(candidates[0]),
		    "config/default.toml");
		if (home != NULL && *home != '\0' && strlen(home) < 4000)
			snprintf(candidates[ncand++], sizeof(candidates[0]),
			    "%.4000s/.config/p2p/config.toml", home);
	}
	for (int i = 0; i < ncand; i++) {
		if (explicit == NULL && access(candidates[i], F_OK) != 0)
			continue;
		memset(&c, 0, sizeof(c));
		c.cfg = cfg;
		c.path = candidates[i];
		c.strict = strict;
		if ((file = fopen(candidates[i], "r")) == NULL)
			tool_die(explicit ? 2 : 1, "config %s: %s", candidates[i],
			    strerror(errno ? errno : ENOENT));
		c.file = file;
		rc = ini_parse_stream(read_line, &c, config_entry, &c);
		fclose(file);
		if (rc < 0)
			tool_die(1, "config %s: out of memory", candidates[i]);
		if (rc > 0 && c.failed && c.unknown[0] != '\0')
			tool_die(2, "%s:%d: %s: unknown key", candidates[i], rc,
			    c.unknown);
		if (rc > 0 && c.failed && c.bad_key != NULL)
			tool_die(2, "%s:%d: %s = '%s': want %s", candidates[i],
			    rc, c.bad_key, c.bad_value, c.why);
		if (rc > 0)
			tool_die(2, "%s:%d: not a valid line", candidates[i], rc);
		snprintf(cfg->path, sizeof(cfg->path), "%.4000s", candidates[i]);
		break;
	}
	load_env(cfg);
	if (cfg->has_log_level && tool_log_env() == NULL)
		tool_log_apply(cfg->log_levels);
}

int
tool_common_option(int ch, void (*usage)(FILE *))
{
	switch (ch) {
	case 'q':
		tool_quiet();
		return 1;
	case 'v':
		tool_verbose();
		return 1;
	case 'C':
	case TOOL_OPT_STRICT:
		return 1;
	case TOOL_OPT_PROGRESS:
		tool_opt.progress = 1;
		return 1;
	case TOOL_OPT_JSON:
		tool_opt.json = 1;
		return 1;
	case TOOL_OPT_MAX_UPLOAD:
		tool_opt.max_upload_rate = tool_parse_rate(optarg,
		    "max upload rate");
		return 1;
	case TOOL_OPT_MAX_DOWNLOAD:
		tool_opt.max_download_rate = tool_parse_rate(optarg,
		    "max download rate");
		return 1;
	case 'h':
		usage(stdout);
		exit(0);
	case 'V':
		printf("%s %s\n", tool_name, TOOL_VERSION);
		exit(0);
	}
	return 0;
}
