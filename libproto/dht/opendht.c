/*
 * The DHT engine module (dht.h, proto_dht_engine_ops) over OpenDHT's C
 * binding: built as its own shared object, the only thing that links
 * libopendht-c, and loaded with dlopen by the programs that start the DHT.
 * OpenDHT runs its node on threads of its own ("threaded" mode, the one
 * that delivers from C) and calls back on them; those calls go straight
 * to on_value, which copies. The node joins no LAN multicast and no
 * proxy: only the bootstrap nodes it is told of.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <opendht/opendht_c.h>

#include "dht.h"

#define LISTENS_MAX PROTO_DHT_LOOKUPS_MAX

struct engine;

/* What a listen's callbacks get: kept in the engine, which outlives
 * OpenDHT's threads. */
struct listen {
	struct engine *e;
	dht_infohash key;
	dht_op_token *token;
};

struct engine {
	dht_runner *runner;
	proto_dht_value_fn on_value;
	void *ctx;
	struct listen listens[LISTENS_MAX];
	size_t nlistens;
};

static void *
engine_start(uint16_t port, uint32_t network, proto_dht_value_fn on_value,
    void *ctx, int *err)
{
	struct engine *e = calloc(1, sizeof(*e));
	dht_runner_config cfg;
	int rc;

	if (e == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	e->on_value = on_value;
	e->ctx = ctx;
	if ((e->runner = dht_runner_new()) == NULL) {
		free(e);
		*err = -ENOMEM;
		return NULL;
	}
	dht_runner_config_default(&cfg);
	cfg.dht_config.node_config.network = network;
	cfg.threaded = true;
	cfg.peer_discovery = false;
	cfg.peer_publish = false;
	cfg.proxy_server = NULL;
	cfg.log = false;
	if ((rc = dht_runner_run_config(e->runner, port, &cfg)) != 0) {
		dht_runner_delete(e->runner);
		free(e);
		*err = rc < 0 ? rc : -rc;
		return NULL;
	}
	return e;
}

static void
engine_bootstrap(void *arg, const char *host, const char *service)
{
	struct engine *e = arg;

	dht_runner_bootstrap(e->runner, host, service);
}

static void
engine_put(void *arg, const uint8_t key[PROTO_DHT_KEY_LEN],
    const uint8_t *data, size_t len)
{
	struct engine *e = arg;
	dht_infohash h;
	dht_value *v;

	memcpy(h.d, key, PROTO_DHT_KEY_LEN);
	if ((v = dht_value_new(data, len)) == NULL)
		return;
	dht_runner_put(e->runner, &h, v, NULL, NULL, false);
	dht_value_unref(v);
}

/* On an OpenDHT thread: each value there, then each new one. */
static bool
on_listen(const dht_value *v, bool expired, void *arg)
{
	struct listen *l = arg;
	dht_data_view d;

	if (!expired) {
		d = dht_value_get_data(v);
		l->e->on_value(l->key.d, d.data, d.size, l->e->ctx);
	}
	return true;
}

static void
on_listen_done(void *arg)
{
	(void)arg;
}

static int
engine_listen(void *arg, const uint8_t key[PROTO_DHT_KEY_LEN])
{
	struct engine *e = arg;
	struct listen *l;

	if (e->nlistens == LISTENS_MAX)
		return -E2BIG;
	l = &e->listens[e->nlistens];
	l->e = e;
	memcpy(l->key.d, key, PROTO_DHT_KEY_LEN);
	l->token = dht_runner_listen(e->runner, &l->key, on_listen,
	    on_listen_done, l);
	if (l->token == NULL)
		return -ENOMEM;
	e->nlistens++;
	return 0;
}

static uint16_t
engine_port(void *arg)
{
	struct engine *e = arg;

	return dht_runner_get_bound_port(e->runner, AF_INET);
}

static void
engine_free(void *arg)
{
	struct engine *e = arg;

	if (e == NULL)
		return;
	for (size_t i = 0; i < e->nlistens; i++) {
		dht_runner_cancel_listen(e->runner, &e->listens[i].key,
		    e->listens[i].token);
		dht_op_token_delete(e->listens[i].token);
	}
	/* The destructor joins OpenDHT's threads: no call back after it. */
	dht_runner_delete(e->runner);
	free(e);
}

const proto_dht_engine_ops proto_dht_engine_v1 = {
	PROTO_DHT_ENGINE_ABI, engine_start, engine_bootstrap, engine_put,
	engine_listen, engine_port, engine_free,
};
