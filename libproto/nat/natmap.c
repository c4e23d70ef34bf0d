/*
 * The port-mapping engine (nat.h): NAT-PMP through libnatpmp and
 * UPnP-IGD through libminiupnpc, built alone into nat.so so that only a
 * process that maps a port maps these libraries.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <natpmp.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>

#include "nat.h"

/* ---- NAT-PMP ---- */

static void *
pmp_open(int *fd, const char **why)
{
	natpmp_t *p = calloc(1, sizeof(*p));
	int rc;

	if (p == NULL) {
		*why = "out of memory";
		return NULL;
	}
	if ((rc = initnatpmp(p, 0, 0)) < 0) {
		*why = rc == NATPMP_ERR_CANNOTGETGATEWAY ?
		    "no default gateway" : "cannot open its socket";
		free(p);
		return NULL;
	}
	*fd = p->s;
	return p;
}

static int
pmp_ask_addr(void *h)
{
	int rc = sendpublicaddressrequest(h);

	return rc < 0 ? rc : 0;
}

static int
pmp_ask_map(void *h, uint16_t port, uint16_t public_port, uint32_t lifetime)
{
	int rc = sendnewportmappingrequest(h, NATPMP_PROTOCOL_TCP, port,
	    public_port, lifetime);

	return rc < 0 ? rc : 0;
}

static int
pmp_read(void *h, proto_nat_pmp_answer *a)
{
	natpmpresp_t r;
	int rc = readnatpmpresponseorretry(h, &r);

	if (rc == NATPMP_TRYAGAIN)
		return PROTO_NAT_AGAIN;
	if (rc < 0)
		return rc;
	memset(a, 0, sizeof(*a));
	a->type = r.type;
	if (r.type == NATPMP_RESPTYPE_PUBLICADDRESS)
		inet_ntop(AF_INET, &r.pnu.publicaddress.addr, a->addr,
		    sizeof(a->addr));
	else {
		a->private_port = r.pnu.newportmapping.privateport;
		a->public_port = r.pnu.newportmapping.mappedpublicport;
		a->lifetime = r.pnu.newportmapping.lifetime;
	}
	return 0;
}

static int
pmp_wait(void *h, struct timeval *tv)
{
	return getnatpmprequesttimeout(h, tv) < 0 ? -1 : 0;
}

static void
pmp_close(void *h)
{
	closenatpmp(h);
	free(h);
}

static const char *
pmp_why(int code)
{
	switch (code) {
	case NATPMP_ERR_NOGATEWAYSUPPORT:
	case NATPMP_ERR_RECVFROM:
		return "the gateway does not answer it";
	case NATPMP_ERR_UNSUPPORTEDVERSION:
		return "the gateway speaks another version";
	case NATPMP_ERR_NOTAUTHORIZED:
		return "the gateway refused (not authorized)";
	case NATPMP_ERR_NETWORKFAILURE:
		return "the gateway has no external address";
	case NATPMP_ERR_OUTOFRESOURCES:
		return "the gateway is out of mappings";
	case NATPMP_ERR_SENDERR:
		return "cannot send to the gateway";
	default:
		return "it failed";
	}
}

/* ---- UPnP-IGD ---- */

struct upnp {
	struct UPNPUrls urls;
	struct IGDdatas data;
	char lan[64];
	char port[8];
};

static void *
upnp_map(uint16_t port, uint32_t lifetime, unsigned timeout_ms, char *ext,
    char *why, size_t whylen)
{
	struct UPNPDev *devs;
	struct upnp *u = calloc(1, sizeof(*u));
	int err = 0, rc;
	char lease[16];

	if (u == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	devs = upnpDiscover((int)timeout_ms, NULL, NULL, 0, 0, 2, &err);
	if (devs == NULL) {
		snprintf(why, whylen, "no gateway answered its search");
		free(u);
		return NULL;
	}
	rc = UPNP_GetValidIGD(devs, &u->urls, &u->data, u->lan,
	    sizeof(u->lan));
	freeUPNPDevlist(devs);
	if (rc != 1) {
		snprintf(why, whylen, rc == 0 ? "no gateway device found" :
		    "the gateway is not connected");
		if (rc != 0)
			FreeUPNPUrls(&u->urls);
		free(u);
		return NULL;
	}
	snprintf(u->port, sizeof(u->port), "%u", port);
	snprintf(lease, sizeof(lease), "%u", lifetime);
	if ((rc = UPNP_AddPortMapping(u->urls.controlURL,
	    u->data.first.servicetype, u->port, u->port, u->lan, "mini-p2p",
	    "TCP", NULL, lease)) != 0) {
		snprintf(why, whylen, "the gateway refused: %s", strupnperror(rc));
		FreeUPNPUrls(&u->urls);
		free(u);
		return NULL;
	}
	ext[0] = '\0';
	if (UPNP_GetExternalIPAddress(u->urls.controlURL,
	    u->data.first.servicetype, ext) != 0 || ext[0] == '\0') {
		snprintf(why, whylen, "the gateway did not say its address");
		UPNP_DeletePortMapping(u->urls.controlURL,
		    u->data.first.servicetype, u->port, "TCP", NULL);
		FreeUPNPUrls(&u->urls);
		free(u);
		return NULL;
	}
	return u;
}

static int
upnp_renew(void *h, uint32_t lifetime)
{
	struct upnp *u = h;
	char lease[16];

	snprintf(lease, sizeof(lease), "%u", lifetime);
	return UPNP_AddPortMapping(u->urls.controlURL,
	    u->data.first.servicetype, u->port, u->port, u->lan, "mini-p2p",
	    "TCP", NULL, lease) == 0 ? 0 : -1;
}

static void
upnp_unmap(void *h)
{
	struct upnp *u = h;

	if (u == NULL)
		return;
	UPNP_DeletePortMapping(u->urls.controlURL, u->data.first.servicetype,
	    u->port, "TCP", NULL);
	FreeUPNPUrls(&u->urls);
	free(u);
}

const proto_nat_engine_ops proto_nat_engine_v1 = {
	PROTO_NAT_ENGINE_ABI,
	pmp_open, pmp_ask_addr, pmp_ask_map, pmp_read, pmp_wait, pmp_close,
	pmp_why,
	upnp_map, upnp_renew, upnp_unmap,
};
