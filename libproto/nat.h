/*
 * Port mapping (PRODUCT.md section 9): a node behind a home router asks
 * it to forward the node's TCP listen port, with NAT-PMP, else UPnP-IGD;
 * renews the mapping before its lease ends, removes it when the node is
 * freed, and takes the router's external address as the node's own
 * (proto_node_set_mapped), which it then announces.
 *
 * The protocols are spoken by a plug-in behind proto_nat_engine_ops, a
 * module of its own (build/lib/mini-p2p/nat.so, linking libnatpmp and
 * libminiupnpc) loaded only when a node starts mapping: the tools and
 * libproto link neither. NAT-PMP runs on the node's event loop (a
 * non-blocking UDP socket to the default gateway); UPnP-IGD's discovery
 * and SOAP calls block, so they run on a thread of their own and their
 * result comes back through the loop.
 *
 * Safety: NAT-PMP sends to the default gateway and UPnP multicasts an
 * SSDP search on the LAN. Nothing starts this unless asked (--nat).
 */
#ifndef PROTO_NAT_H
#define PROTO_NAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "node.h"

/* A NAT-PMP answer (RFC 6886): the gateway's public address (type 0), or
 * a TCP mapping (type 2): public_port and lifetime granted. */
typedef struct proto_nat_pmp_answer {
	unsigned type;
	char addr[16];          /* dotted IPv4, type 0 */
	uint16_t private_port, public_port;
	uint32_t lifetime;      /* seconds; 0: removed */
} proto_nat_pmp_answer;

#define PROTO_NAT_AGAIN 1       /* pmp_read: no answer yet */

typedef struct proto_nat_engine_ops {
	unsigned abi;           /* PROTO_NAT_ENGINE_ABI */
	/* NAT-PMP to the default gateway: a handle, *fd its non-blocking
	 * UDP socket to watch for reading; NULL with why set on failure. */
	void *(*pmp_open)(int *fd, const char **why);
	/* Send a request (one pending at a time): the public address; a TCP
	 * mapping of port to public (0: any) for lifetime seconds (0 with
	 * public 0: remove it). 0, or a negative code for pmp_why. */
	int (*pmp_ask_addr)(void *h);
	int (*pmp_ask_map)(void *h, uint16_t port, uint16_t public_port,
	    uint32_t lifetime);
	/* The answer to the pending request: 0 with *a set, PROTO_NAT_AGAIN
	 * (none yet; resent when due), or a negative code: the gateway
	 * refused, or gave up after its retries. */
	int (*pmp_read)(void *h, proto_nat_pmp_answer *a);
	/* How long until pmp_read is due (a resend or the give-up). */
	int (*pmp_wait)(void *h, struct timeval *tv);
	void (*pmp_close)(void *h);
	const char *(*pmp_why)(int code);
	/* UPnP-IGD, blocking (call from a thread, never the loop): discovers
	 * the gateway within timeout_ms and maps TCP port to the same
	 * external port at this host's LAN address for lifetime seconds.
	 * A handle with ext (at least 64 bytes) the external address, or
	 * NULL with why (whylen bytes) set. */
	void *(*upnp_map)(uint16_t port, uint32_t lifetime,
	    unsigned timeout_ms, char *ext, char *why, size_t whylen);
	/* Asks for the same mapping again (a renewal): 0, or -1. */
	int (*upnp_renew)(void *h, uint32_t lifetime);
	/* Removes the mapping and frees h. */
	void (*upnp_unmap)(void *h);
} proto_nat_engine_ops;

#define PROTO_NAT_ENGINE_ABI 1u
#define PROTO_NAT_ENGINE_SYMBOL "proto_nat_engine_v1"

/* Loads the engine module: MINI_P2P_NAT_MODULE when set, else nat.so
 * beside the program (../lib/mini-p2p/) or in the installed directory.
 * 0 with *ops set, or PROTO_ERR_SYSTEM with *why (static text) set. */
int proto_nat_engine_load(const proto_nat_engine_ops **ops,
    const char **why);

typedef struct proto_nat_config {
	const proto_nat_engine_ops *engine; /* borrowed; NULL: loaded */
	uint32_t lease;         /* seconds asked for; 0: 3600 */
	unsigned pmp_timeout_ms; /* NAT-PMP's answer, before UPnP; 0: 2000 */
	unsigned upnp_timeout_ms; /* UPnP discovery; 0: 2000 */
} proto_nat_config;

/*
 * Maps the node's listen port (listen first) as a source of the node
 * ("nat"): the outcome is logged once at info ("mapped TCP PORT at
 * EXTIP:EXTPORT via NAT-PMP", or why not), and the external address is
 * the node's (proto_node_set_mapped) while the mapping holds. Renewed at
 * half its lease; removed when the node is freed (a bounded wait, at most
 * about a second for NAT-PMP, the UPnP call's own timeouts). 0, or
 * PROTO_ERR_SYSTEM with errno set (ENOENT: no module, why in the log).
 */
int proto_node_start_nat(proto_node *node, const proto_nat_config *cfg);

#endif
