/*
 * The DHT as a node's source (dht.h): the engine's values cross from its
 * threads to the event loop through a bounded queue under a mutex and a
 * pipe that wakes the loop (no libevent locking needed); there each is
 * verified, bound to the key it came under, kept once per signer and seq,
 * and its addresses reported to the node (nodedhtread.c). A timer puts the
 * node's values: new content ids within seconds, all of them again every
 * reput seconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "dht.h"
#include "error.h"
#include "log.h"
#include "dht_private.h"
#include "node_private.h"

#define SCAN_SECONDS 2  /* how soon a file added to the store is announced */

/* ---- from the engine's threads ---- */

static void
on_value(const uint8_t key[PROTO_DHT_KEY_LEN], const uint8_t *data,
    size_t len, void *ctx)
{
	proto_dht *d = ctx;
	struct pending *p = NULL;
	int was_empty;

	/* Bounded before anything is copied (d->sealed is set before the
	 * engine starts, and never changes). */
	size_t max = d->sealed ? PROTO_DHT_SEALED_MAX : PROTO_DHT_VALUE_MAX;

	if (len <= max && (p = malloc(sizeof(*p) + len)) != NULL) {
		memcpy(p->key, key, PROTO_DHT_KEY_LEN);
		memcpy(p->data, data, len);
		p->len = len;
	}
	pthread_mutex_lock(&d->lock);
	d->st.values++;
	if (len > max)
		d->st.oversized++;
	else if (p == NULL || d->nqueue == PROTO_DHT_QUEUE_MAX) {
		d->st.queue_full++;
		free(p);
		p = NULL;
	}
	was_empty = d->nqueue == 0;
	if (p != NULL)
		d->queue[d->nqueue++] = p;
	pthread_mutex_unlock(&d->lock);
	if (p != NULL && was_empty)
		(void)!write(d->wake[1], "", 1);
}

/* ---- on the loop ---- */

static void
put_value(proto_dht *d, const uint8_t key[PROTO_DHT_KEY_LEN])
{
	uint8_t v[PROTO_DHT_VALUE_MAX];
	const uint8_t *rec;
	size_t rlen, vlen;

	if ((rec = proto_node_record(d->node, &rlen)) == NULL ||
	    proto_dht_value_pack(key, rec, rlen, proto__node_identity(d->node),
	    v, &vlen) != 0)
		return;
	if (d->sealed) {
		uint8_t sealed[PROTO_DHT_SEALED_MAX];
		size_t slen;
		if (proto_dht_seal(d->secret, key, NULL, v, vlen, sealed,
		    &slen) != 0)
			return;
		d->ops->put(d->engine, key, sealed, slen);
	} else
		d->ops->put(d->engine, key, v, vlen);
	d->st.puts++;
}

static void
put_content(proto_dht *d, const uint8_t id[PROTO_HASH_LEN])
{
	uint8_t key[PROTO_DHT_KEY_LEN];

	if (proto_dht_key_content(id, d->sealed ? d->secret : NULL, key) == 0)
		put_value(d, key);
}

static void
put_self(proto_dht *d)
{
	const proto_identity *id = proto__node_identity(d->node);
	uint8_t key[PROTO_DHT_KEY_LEN];

	if (id != NULL && proto_dht_key_node(proto_identity_id(id),
	    d->sealed ? d->secret : NULL, key) == 0)
		put_value(d, key);
}

/* Remembers id as announced; 0, or -1 when it was already or there is no
 * more room. */
static int
remember(proto_dht *d, const uint8_t id[PROTO_HASH_LEN])
{
	for (size_t i = 0; i < d->nannounced; i++)
		if (memcmp(d->announced[i], id, PROTO_HASH_LEN) == 0)
			return -1;
	if (d->nannounced == PROTO_DHT_ANNOUNCE_MAX) {
		proto__node_say(d->node, PROTO_LOG_DEBUG, "dht: more than %u "
		    "files; the rest not announced", PROTO_DHT_ANNOUNCE_MAX);
		return -1;
	}
	memcpy(d->announced[d->nannounced++], id, PROTO_HASH_LEN);
	return 0;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	proto_dht *d = arg;
	proto_store *store = proto_node_store(d->node);
	size_t count = proto_store_count(store);
	time_t now = time(NULL);
	int round = now >= d->next_reput;
	proto_addr ext;
	unsigned how;

	(void)fd;
	(void)what;
	if (!d->announce || proto_node_port(d->node) == 0)
		return;
	/* A mapping came or went, or peers now see us elsewhere: what the
	 * record says changed, and it is put again now, not in 5 minutes. */
	how = proto_node_external(d->node, &ext);
	if (how != d->ext_how || (how != PROTO_NODE_EXT_NONE &&
	    !proto_addr_equal(&ext, &d->ext))) {
		d->ext_how = how;
		if (how != PROTO_NODE_EXT_NONE)
			d->ext = ext;
		round = 1;
	}
	if (count < d->scanned)
		d->scanned = 0;
	/* New ids now; all of them in a round, which puts these too. */
	for (; d->scanned < count; d->scanned++) {
		const uint8_t *id = proto_store_get(store, d->scanned)->id;
		if (remember(d, id) == 0 && !round)
			put_content(d, id);
	}
	if (!round)
		return;
	d->next_reput = now + (time_t)d->reput;
	put_self(d);
	for (size_t i = 0; i < d->nannounced; i++)
		put_content(d, d->announced[i]);
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	proto_dht *d = arg;
	struct pending *batch[PROTO_DHT_QUEUE_MAX];
	char drain[64];
	size_t n;
	int gone = 0;

	(void)what;
	while (read(fd, drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&d->lock);
	n = d->nqueue;
	memcpy(batch, d->queue, n * sizeof(batch[0]));
	d->nqueue = 0;
	pthread_mutex_unlock(&d->lock);
	for (size_t i = 0; i < n; i++) {
		if (!gone)
			gone = proto__dht_take(d, batch[i]);
		free(batch[i]);
	}
}

static int
listen_key(proto_dht *d, const uint8_t key[PROTO_DHT_KEY_LEN],
    const uint8_t *identity)
{
	struct lookup *l;
	int rc;

	if (proto__dht_lookup_of(d, key) != NULL)
		return 0;
	if (d->nlookups == PROTO_DHT_LOOKUPS_MAX)
		return PROTO_ERR_TOO_BIG;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return PROTO_ERR_NOMEM;
	memcpy(l->key, key, PROTO_DHT_KEY_LEN);
	if (identity != NULL) {
		l->node = 1;
		memcpy(l->identity, identity, PROTO_IDENTITY_LEN);
	}
	d->lookups[d->nlookups++] = l;
	if ((rc = d->ops->listen(d->engine, key)) != 0) {
		free(d->lookups[--d->nlookups]);
		return rc == -ENOMEM ? PROTO_ERR_NOMEM : PROTO_ERR_TOO_BIG;
	}
	return 0;
}

/* ---- the source ---- */

static int
dht_lookup(void *state, const uint8_t id[PROTO_HASH_LEN])
{
	proto_dht *d = state;
	uint8_t key[PROTO_DHT_KEY_LEN];

	if (proto_dht_key_content(id, d->sealed ? d->secret : NULL, key) != 0)
		return PROTO_ERR_CRYPTO;
	return listen_key(d, key, NULL);
}

int
proto_dht_find_node(proto_dht *d, const uint8_t identity[PROTO_IDENTITY_LEN])
{
	uint8_t key[PROTO_DHT_KEY_LEN];

	if (proto_dht_key_node(identity, d->sealed ? d->secret : NULL, key) != 0)
		return PROTO_ERR_CRYPTO;
	return listen_key(d, key, identity);
}

static int
dht_announce(void *state, const uint8_t id[PROTO_HASH_LEN])
{
	proto_dht *d = state;

	if (!d->announce || proto_node_port(d->node) == 0)
		return PROTO_ERR_INVALID;
	if (remember(d, id) == 0)
		put_content(d, id);
	return 0;
}

/* "HOST:PORT" or "[V6]:PORT" into host and port texts. */
static int
split_hostport(const char *s, char *host, size_t hostlen, char port[8])
{
	const char *colon = strrchr(s, ':');
	size_t hl;

	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) > 5 ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	snprintf(port, 8, "%s", colon + 1);
	return 0;
}

static int
dht_start(proto_node *n, void *state)
{
	proto_dht *d = state;
	char host[PROTO_ADDR_TEXT_MAX + 8], port[8];
	struct timeval tv = { SCAN_SECONDS, 0 };
	int err = 0;

	d->node = n;
	if (pipe2(d->wake, O_NONBLOCK | O_CLOEXEC) != 0)
		return PROTO_ERR_SYSTEM;
	d->wake_ev = event_new(proto__node_base(n), d->wake[0],
	    EV_READ | EV_PERSIST, on_wake, d);
	d->tick_ev = event_new(proto__node_base(n), -1, EV_PERSIST, tick, d);
	if (d->wake_ev == NULL || d->tick_ev == NULL ||
	    event_add(d->wake_ev, NULL) != 0 || event_add(d->tick_ev, &tv) != 0)
		return PROTO_ERR_NOMEM;
	d->engine = d->ops->start(d->port, d->network, on_value, d, &err);
	if (d->engine == NULL) {
		errno = err < 0 ? -err : EIO;
		return PROTO_ERR_SYSTEM;
	}
	for (size_t i = 0; i < d->nboot; i++)
		if (split_hostport(d->boot[i], host, sizeof(host), port) == 0)
			d->ops->bootstrap(d->engine, host, port);
	proto__node_say(n, PROTO_LOG_DEBUG, "dht: UDP port %u, network %u, "
	    "%zu bootstrap node(s)", d->ops->port(d->engine),
	    (unsigned)d->network, d->nboot);
	tick(-1, 0, d);
	return 0;
}

static void
dht_free(void *state)
{
	proto_dht *d = state;

	if (d == NULL)
		return;
	/* The engine first: once it is gone, no thread calls on_value. */
	if (d->engine != NULL)
		d->ops->free(d->engine);
	if (d->wake_ev != NULL)
		event_free(d->wake_ev);
	if (d->tick_ev != NULL)
		event_free(d->tick_ev);
	if (d->wake[0] >= 0) {
		close(d->wake[0]);
		close(d->wake[1]);
	}
	for (size_t i = 0; i < d->nqueue; i++)
		free(d->queue[i]);
	for (size_t i = 0; i < d->nlookups; i++)
		free(d->lookups[i]);
	free(d->announced);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static const proto_node_source_ops dht_source = { "dht", dht_start,
    dht_lookup, dht_announce, dht_free };

/* 1 when the environment forbids the public network. */
static int
public_forbidden(void)
{
	const char *g = getenv("MINI_P2P_NO_PUBLIC_DHT");

	return g != NULL && *g != '\0' && strcmp(g, "0") != 0;
}

/* 0 when boot may be used: always, unless the guard is on; then only an
 * IP address that is not the public bootstrap node's. */
static int
check_boot(const char *boot, const char **why)
{
	char host[PROTO_ADDR_TEXT_MAX + 8], port[8];
	struct in6_addr a6;

	if (split_hostport(boot, host, sizeof(host), port) != 0) {
		*why = "a DHT bootstrap node must be HOST:PORT";
		return PROTO_ERR_INVALID;
	}
	if (!public_forbidden())
		return 0;
	if (strcmp(boot, PROTO_DHT_PUBLIC_BOOTSTRAP) == 0 ||
	    (inet_pton(AF_INET, host, &a6) != 1 &&
	    inet_pton(AF_INET6, host, &a6) != 1)) {
		*why = "MINI_P2P_NO_PUBLIC_DHT is set: the DHT bootstrap nodes "
		    "must be IP addresses, not the public network's";
		return PROTO_ERR_INVALID;
	}
	return 0;
}

int
proto_node_start_dht(proto_node *n, const proto_dht_config *cfg,
    proto_dht **out, const char **why)
{
	proto_dht *d;
	int rc;

	*why = NULL;
	if (cfg->nboot > PROTO_DHT_BOOT_MAX) {
		*why = "too many DHT bootstrap nodes";
		return PROTO_ERR_TOO_BIG;
	}
	for (size_t i = 0; i < cfg->nboot; i++)
		if ((rc = check_boot(cfg->boot[i], why)) != 0)
			return rc;
	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->announced = calloc(PROTO_DHT_ANNOUNCE_MAX,
	    sizeof(d->announced[0]))) == NULL) {
		free(d);
		return PROTO_ERR_NOMEM;
	}
	pthread_mutex_init(&d->lock, NULL);
	d->wake[0] = d->wake[1] = -1;
	d->ops = cfg->engine;
	for (size_t i = 0; i < cfg->nboot; i++)
		snprintf(d->boot[d->nboot++], sizeof(d->boot[0]), "%s",
		    cfg->boot[i]);
	d->port = cfg->port;
	if (cfg->secret != NULL) {
		d->sealed = 1;
		memcpy(d->secret, cfg->secret, 32);
	}
	d->network = cfg->network ? cfg->network :
	    proto_dht_network(cfg->secret);
	d->reput = cfg->reput ? cfg->reput : PROTO_DHT_REPUT;
	d->announce = cfg->announce;
	if ((rc = proto_node_add_source(n, &dht_source, d)) != 0) {
		if (rc == PROTO_ERR_SYSTEM)
			*why = strerror(errno);
		return rc;
	}
	if (out != NULL)
		*out = d;
	return 0;
}

void
proto_dht_stats_get(const proto_dht *d, proto_dht_stats *out)
{
	pthread_mutex_lock((pthread_mutex_t *)&d->lock);
	*out = d->st;
	pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
}

uint16_t
proto_dht_port(const proto_dht *d)
{
	return d->engine != NULL ? d->ops->port(d->engine) : 0;
}
