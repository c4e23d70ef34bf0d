/*
 * Port mapping as a source of the node (nat.h): NAT-PMP on the event
 * loop, else UPnP-IGD on a thread whose result comes back through a pipe;
 * renewal at half the lease; removal when the node is freed.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "error.h"
#include "module_private.h"
#include "nat.h"
#include "node_private.h"


/* ---- the engine module ---- */

int
proto_nat_engine_load(const proto_nat_engine_ops **ops, const char **why)
{
	const void *o;
	int rc = proto__module_load(NULL, "MINI_P2P_NAT_MODULE", "nat.so",
	    PROTO_NAT_ENGINE_SYMBOL, PROTO_NAT_ENGINE_ABI,
	    "a port-mapping engine", &o, why);

	if (rc == 0)
		*ops = o;
	return rc;
}

/* ---- the source ---- */

enum nat_state {
	NAT_PMP_ADDR,   /* NAT-PMP: asked the public address */
	NAT_PMP_MAP,    /* ... then the mapping */
	NAT_UPNP,       /* UPnP-IGD's thread maps */
	NAT_MAPPED,     /* mapped (via says how); renewed on the timer */
	NAT_PMP_RENEW,  /* NAT-PMP: asked the mapping again */
	NAT_UPNP_RENEW, /* UPnP's thread asks it again */
	NAT_NONE,       /* no mapping */
};

struct nat {
	proto_node *node;
	const proto_nat_engine_ops *e;
	proto_nat_config cfg;
	uint16_t port;
	enum nat_state st;
	const char *via;        /* "NAT-PMP", "UPnP-IGD" */
	char ext[64];           /* the external host */
	uint16_t ext_port;
	uint32_t lifetime;
	char pmp_failed[96];    /* why not NAT-PMP */
	void *pmp;
	struct event *pmp_ev, *timer;
	struct timeval deadline;
	/* UPnP: the thread, and what it leaves under mu */
	pthread_t th;
	int th_running;
	int pipe[2];
	struct event *pipe_ev;
	pthread_mutex_t mu;
	void *upnp;
	int upnp_ok;
	char upnp_ext[64];
	char upnp_failed[128];
};

static void
arm(struct nat *t, time_t sec, suseconds_t usec)
{
	struct timeval tv = { sec, usec };

	event_add(t->timer, &tv);
}

static void
mapped(struct nat *t)
{
	proto_addr a;
	uint32_t half = t->lifetime / 2 ? t->lifetime / 2 : 1;

	if (proto_addr_from_host(&a, t->ext, strlen(t->ext), t->ext_port) !=
	    0 || proto_addr_is_any(&a)) {
		proto__node_say(t->node, PROTO_LOG_INFO, "no port mapping: "
		    "%s gave no usable external address", t->via);
		t->st = NAT_NONE;
		return;
	}
	if (t->st != NAT_PMP_RENEW && t->st != NAT_UPNP_RENEW)
		proto__node_say(t->node, PROTO_LOG_INFO, "mapped TCP %u at %s "
		    "via %s", t->port, proto_addr_text(&a), t->via);
	else
		proto__node_say(t->node, PROTO_LOG_DEBUG, "renewed the mapping "
		    "of TCP %u at %s via %s", t->port, proto_addr_text(&a),
		    t->via);
	t->st = NAT_MAPPED;
	proto_node_set_mapped(t->node, &a);
	arm(t, half, 0);
}

/* A renewal failed: the mapping is taken as gone. */
static void
lost(struct nat *t, const char *why)
{
	proto__node_say(t->node, PROTO_LOG_WARN, "port mapping lost: %s "
	    "did not renew it (%s)", t->via, why);
	t->st = NAT_NONE;
	proto_node_set_mapped(t->node, NULL);
}

static void pmp_close(struct nat *t);

static void *
upnp_thread(void *arg)
{
	struct nat *t = arg;
	char ext[64] = "", why[128] = "";
	void *h = NULL;
	int ok;

	pthread_mutex_lock(&t->mu);
	h = t->upnp;
	pthread_mutex_unlock(&t->mu);
	if (h != NULL)
		ok = t->e->upnp_renew(h, t->lifetime) == 0;
	else
		ok = (h = t->e->upnp_map(t->port, t->cfg.lease,
		    t->cfg.upnp_timeout_ms, ext, why, sizeof(why))) != NULL;
	pthread_mutex_lock(&t->mu);
	t->upnp = h;
	t->upnp_ok = ok;
	memcpy(t->upnp_ext, ext, sizeof(ext));
	memcpy(t->upnp_failed, why, sizeof(why));
	pthread_mutex_unlock(&t->mu);
	if (write(t->pipe[1], "", 1) < 0) {
		/* The loop then never hears: the node frees it with the join. */
	}
	return NULL;
}

static void
upnp_start(struct nat *t)
{
	t->st = t->upnp != NULL ? NAT_UPNP_RENEW : NAT_UPNP;
	if (pthread_create(&t->th, NULL, upnp_thread, t) != 0) {
		if (t->st == NAT_UPNP_RENEW)
			lost(t, "no thread");
		else {
			proto__node_say(t->node, PROTO_LOG_INFO, "no port mapping: "
			    "NAT-PMP: %s; UPnP-IGD: cannot start its thread",
			    t->pmp_failed);
			t->st = NAT_NONE;
		}
		return;
	}
	t->th_running = 1;
}

static void
on_upnp(evutil_socket_t fd, short what, void *arg)
{
	struct nat *t = arg;
	char byte;
	int ok;

	(void)what;
	if (read(fd, &byte, 1) != 1 || !t->th_running)
		return;
	pthread_join(t->th, NULL);
	t->th_running = 0;
	pthread_mutex_lock(&t->mu);
	ok = t->upnp_ok;
	pthread_mutex_unlock(&t->mu);
	proto__node_enter(t->node);
	if (t->st == NAT_UPNP_RENEW) {
		if (ok)
			mapped(t);
		else
			lost(t, "the gateway refused");
	} else if (ok) {
		t->via = "UPnP-IGD";
		snprintf(t->ext, sizeof(t->ext), "%s", t->upnp_ext);
		t->ext_port = t->port;
		t->lifetime = t->cfg.lease;
		mapped(t);
	} else {
		proto__node_say(t->node, PROTO_LOG_INFO, "no port mapping: "
		    "NAT-PMP: %s; UPnP-IGD: %s", t->pmp_failed, t->upnp_failed);
		t->st = NAT_NONE;
	}
	(void)proto__node_leave(t->node);
}

/* NAT-PMP failed before mapping: UPnP-IGD next. */
static void
pmp_failed(struct nat *t, const char *why)
{
	snprintf(t->pmp_failed, sizeof(t->pmp_failed), "%s", why);
	pmp_close(t);
	upnp_start(t);
}

static int64_t
usec(const struct timeval *tv)
{
	return (int64_t)tv->tv_sec * 1000000 + tv->tv_usec;
}

static void
pmp_arm(struct nat *t)
{
	struct timeval wait, now, left;

	gettimeofday(&now, NULL);
	timersub(&t->deadline, &now, &left);
	if (left.tv_sec < 0)
		timerclear(&left);
	if (t->e->pmp_wait(t->pmp, &wait) != 0 || usec(&left) < usec(&wait))
		wait = left;
	arm(t, wait.tv_sec, wait.tv_usec);
}

static int
pmp_ask(struct nat *t, enum nat_state st)
{
	int rc;
	unsigned ms = t->cfg.pmp_timeout_ms;
	struct timeval now, span = { ms / 1000, (ms % 1000) * 1000 };

	rc = st == NAT_PMP_ADDR ? t->e->pmp_ask_addr(t->pmp) :
	    t->e->pmp_ask_map(t->pmp, t->port, t->port, t->cfg.lease);
	if (rc != 0)
		return rc;
	t->st = st;
	gettimeofday(&now, NULL);
	timeradd(&now, &span, &t->deadline);
	pmp_arm(t);
	return 0;
}

/* The pending NAT-PMP request: answered, failed, or still waited for. */
static void
pmp_step(struct nat *t)
{
	proto_nat_pmp_answer a;
	struct timeval now;
	int rc = t->e->pmp_read(t->pmp, &a);

	gettimeofday(&now, NULL);
	if (rc == PROTO_NAT_AGAIN && usec(&now) < usec(&t->deadline)) {
		pmp_arm(t);
		return;
	}
	if (rc != 0) {
		const char *why = rc == PROTO_NAT_AGAIN ? "no answer from the "
		    "gateway" : t->e->pmp_why(rc);
		if (t->st == NAT_PMP_RENEW)
			lost(t, why);
		else
			pmp_failed(t, why);
		return;
	}
	if (t->st == NAT_PMP_ADDR && a.type == 0) {
		snprintf(t->ext, sizeof(t->ext), "%s", a.addr);
		if ((rc = pmp_ask(t, NAT_PMP_MAP)) != 0)
			pmp_failed(t, t->e->pmp_why(rc));
	} else if ((t->st == NAT_PMP_MAP || t->st == NAT_PMP_RENEW) &&
	    a.type == 2 && a.public_port != 0 && a.lifetime != 0) {
		t->via = "NAT-PMP";
		t->ext_port = a.public_port;
		t->lifetime = a.lifetime;
		mapped(t);
	} else
		pmp_arm(t);
}

static void
on_pmp(evutil_socket_t fd, short what, void *arg)
{
	struct nat *t = arg;

	(void)what;
	if (t->pmp == NULL)
		return;
	if (t->st != NAT_PMP_ADDR && t->st != NAT_PMP_MAP &&
	    t->st != NAT_PMP_RENEW) {
		/* Nothing asked: a stray datagram, dropped, or it would wake
		 * the loop again and again. */
		char drop[64];
		if (fd >= 0 && recv(fd, drop, sizeof(drop), 0) < 0) {
			/* Nothing there after all. */
		}
		return;
	}
	proto__node_enter(t->node);
	pmp_step(t);
	(void)proto__node_leave(t->node);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct nat *t = arg;

	(void)fd;
	(void)what;
	if (t->st != NAT_MAPPED) {
		on_pmp(-1, 0, t);
		return;
	}
	/* Half the lease is gone: ask again. */
	proto__node_enter(t->node);
	if (t->pmp != NULL) {
		int rc = pmp_ask(t, NAT_PMP_RENEW);
		if (rc != 0)
			lost(t, t->e->pmp_why(rc));
	} else
		upnp_start(t);
	(void)proto__node_leave(t->node);
}

static void
pmp_close(struct nat *t)
{
	if (t->pmp_ev != NULL)
		event_free(t->pmp_ev);
	t->pmp_ev = NULL;
	if (t->pmp != NULL)
		t->e->pmp_close(t->pmp);
	t->pmp = NULL;
}

/* At the node's end: the mapping removed, NAT-PMP's within a second. */
static void
pmp_remove(struct nat *t)
{
	proto_nat_pmp_answer a;
	int fd = -1;

	if (t->pmp == NULL || t->e->pmp_ask_map(t->pmp, t->port, 0, 0) != 0)
		return;
	if (t->pmp_ev != NULL)
		fd = event_get_fd(t->pmp_ev);
	for (int i = 0; i < 10; i++) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			break;
		if (t->e->pmp_read(t->pmp, &a) != PROTO_NAT_AGAIN)
			break;
	}
}

static void
nat_free(void *state)
{
	struct nat *t = state;
	int was = t->st == NAT_MAPPED || t->st == NAT_PMP_RENEW ||
	    t->st == NAT_UPNP_RENEW;

	if (t->timer != NULL)
		event_free(t->timer);
	if (t->th_running)
		pthread_join(t->th, NULL);
	if (t->pipe_ev != NULL)
		event_free(t->pipe_ev);
	/* Asked and maybe granted, unheard: removed too, or the router
	 * would forward the port to nothing until the lease ends. */
	if (t->upnp != NULL)
		t->e->upnp_unmap(t->upnp);
	else if (was || t->st == NAT_PMP_MAP)
		pmp_remove(t);
	if (was)
		proto__node_say(t->node, PROTO_LOG_INFO, "removed the mapping "
		    "of TCP %u via %s", t->port, t->via);
	pmp_close(t);
	if (t->pipe[0] >= 0)
		close(t->pipe[0]);
	if (t->pipe[1] >= 0)
		close(t->pipe[1]);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static int
nat_start(proto_node *n, void *state)
{
	struct nat *t = state;
	struct event_base *base = proto__node_base(n);
	const char *why = NULL;
	int fd = -1, rc;

	t->node = n;
	if ((t->port = proto_node_port(n)) == 0) {
		errno = EINVAL;
		return PROTO_ERR_SYSTEM;
	}
	if (t->e == NULL && proto_nat_engine_load(&t->e, &why) != 0) {
		proto__node_say(n, PROTO_LOG_INFO, "no port mapping: cannot "
		    "load its module: %s", why);
		return PROTO_ERR_SYSTEM;
	}
	if (pipe(t->pipe) != 0)
		return PROTO_ERR_SYSTEM;
	evutil_make_socket_nonblocking(t->pipe[0]);
	if ((t->timer = evtimer_new(base, on_timer, t)) == NULL ||
	    (t->pipe_ev = event_new(base, t->pipe[0], EV_READ | EV_PERSIST,
	    on_upnp, t)) == NULL || event_add(t->pipe_ev, NULL) != 0)
		return PROTO_ERR_NOMEM;
	if ((t->pmp = t->e->pmp_open(&fd, &why)) == NULL) {
		pmp_failed(t, why);
		return 0;
	}
	if ((t->pmp_ev = event_new(base, fd, EV_READ | EV_PERSIST, on_pmp,
	    t)) == NULL || event_add(t->pmp_ev, NULL) != 0)
		return PROTO_ERR_NOMEM;
	if ((rc = pmp_ask(t, NAT_PMP_ADDR)) != 0)
		pmp_failed(t, t->e->pmp_why(rc));
	return 0;
}

static const proto_node_source_ops nat_ops = {
	"nat", nat_start, NULL, NULL, nat_free,
};

int
proto_node_start_nat(proto_node *node, const proto_nat_config *cfg)
{
	struct nat *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return PROTO_ERR_NOMEM;
	t->cfg = *cfg;
	t->e = cfg->engine;
	t->pipe[0] = t->pipe[1] = -1;
	t->st = NAT_NONE;
	if (t->cfg.lease == 0)
		t->cfg.lease = 3600;
	if (t->cfg.pmp_timeout_ms == 0)
		t->cfg.pmp_timeout_ms = 2000;
	if (t->cfg.upnp_timeout_ms == 0)
		t->cfg.upnp_timeout_ms = 2000;
	pthread_mutex_init(&t->mu, NULL);
	return proto_node_add_source(node, &nat_ops, t);
}
