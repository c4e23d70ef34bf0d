/*
 * A value the DHT handed over, on the loop (docs/PROTOCOL.md section 11):
 * opened with the swarm's secret in a private swarm, verified and bound
 * to the key it came under, kept once per signer and seq (at most
 * PROTO_DHT_SIGNERS_MAX signers a key), its addresses reported to the
 * node pinned to its signer; what fails is counted in the stats.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dht_private.h"
#include "error.h"
#include "node_private.h"

struct lookup *
proto__dht_lookup_of(proto_dht *d, const uint8_t key[PROTO_DHT_KEY_LEN])
{
	for (size_t i = 0; i < d->nlookups; i++)
		if (memcmp(d->lookups[i]->key, key, PROTO_DHT_KEY_LEN) == 0)
			return d->lookups[i];
	return NULL;
}

/* The first 8 bytes of SHA-256 over r's addresses' texts. */
static void
where(const proto_record *r, uint8_t out[8])
{
	char text[PROTO_RECORD_ADDRS_MAX * (PROTO_ADDR_TEXT_MAX + 1)];
	uint8_t h[PROTO_HASH_LEN];
	size_t n = 0;

	for (size_t i = 0; i < r->naddrs; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s,",
		    proto_addr_text(&r->addrs[i]));
	memset(h, 0, sizeof(h));
	(void)proto_sha256(text, n, h);
	memcpy(out, h, 8);
}

/* 1 when the value is news: a node (identity and addresses) not seen, or
 * a higher seq; kept. 0 (counted) when not, or past the signers a key may
 * have. */
static int
fresh(proto_dht *d, struct lookup *l, const proto_record *r)
{
	uint8_t w[8];

	where(r, w);
	for (size_t i = 0; i < l->nsigners; i++)
		if (memcmp(l->signers[i].id, r->id, PROTO_IDENTITY_LEN) == 0 &&
		    memcmp(l->signers[i].where, w, 8) == 0) {
			if (r->seq <= l->signers[i].seq) {
				d->st.repeated++;
				return 0;
			}
			l->signers[i].seq = r->seq;
			return 1;
		}
	if (l->nsigners == PROTO_DHT_SIGNERS_MAX) {
		d->st.over_signers++;
		return 0;
	}
	memcpy(l->signers[l->nsigners].id, r->id, PROTO_IDENTITY_LEN);
	memcpy(l->signers[l->nsigners].where, w, 8);
	l->signers[l->nsigners++].seq = r->seq;
	return 1;
}

/* Reports r's addresses. 1 when the node was freed meanwhile. */
static int
report(proto_dht *d, const proto_record *r, const uint8_t *rec, size_t len)
{
	proto_node *n = d->node;
	proto_node_seen seen;
	size_t taken = 0, others = 0;

	for (size_t i = 0; i < r->naddrs; i++)
		if (!proto_addr_is_loopback(&r->addrs[i]))
			others++;
	proto__node_enter(n);
	for (size_t i = 0; i < r->naddrs && taken < PROTO_DHT_ADDRS_TAKEN;
	    i++) {
		if (others > 0 && proto_addr_is_loopback(&r->addrs[i]))
			continue;
		memset(&seen, 0, sizeof(seen));
		seen.addr = r->addrs[i];
		proto_addr_set_pin(&seen.addr, r->id);
		seen.source = "dht";
		seen.what = PROTO_NODE_FOUND;
		seen.identity = r->id;
		seen.record = rec;
		seen.record_len = len;
		taken++;
		proto_node_report(n, &seen);
	}
	return proto__node_leave(n);
}

/* The record inside a value that verified: after [0x93, bin8 key]. */
static const uint8_t *
value_record(const uint8_t *v, size_t *len)
{
	size_t n = 3 + PROTO_DHT_KEY_LEN;

	if (v[n] == 0xc4) {
		*len = v[n + 1];
		return v + n + 2;
	}
	*len = (size_t)v[n + 1] << 8 | v[n + 2];
	return v + n + 3;
}

int
proto__dht_take(proto_dht *d, const struct pending *p)
{
	struct lookup *l = proto__dht_lookup_of(d, p->key);
	uint8_t opened[PROTO_DHT_VALUE_MAX];
	const uint8_t *rec, *v = p->data;
	proto_record r;
	size_t rlen, vlen = p->len;
	int rc;

	if (l == NULL) {
		d->st.not_wanted++;
		return 0;
	}
	if (d->sealed) {
		/* A private swarm's: opened with its secret, or not ours. */
		if (proto_dht_unseal(d->secret, p->key, p->data, p->len, opened,
		    &vlen) != 0) {
			d->st.unsealed++;
			return 0;
		}
		v = opened;
	}
	rc = proto_dht_value_verify(v, vlen, p->key, (uint64_t)time(NULL), &r);
	switch (rc) {
	case 0:
		break;
	case PROTO_ERR_TOO_BIG:
		d->st.oversized++;
		return 0;
	case PROTO_ERR_INVALID:
		d->st.wrong_key++;
		return 0;
	case PROTO_ERR_STALE:
		d->st.stale++;
		return 0;
	case PROTO_ERR_MISMATCH:
		d->st.bad_sig++;
		return 0;
	default:
		d->st.malformed++;
		return 0;
	}
	/* Under an identity's key, only that identity speaks. */
	if (l->node && memcmp(r.id, l->identity, PROTO_IDENTITY_LEN) != 0) {
		d->st.wrong_key++;
		return 0;
	}
	if (!fresh(d, l, &r))
		return 0;
	d->st.taken++;
	rec = value_record(v, &rlen);
	return report(d, &r, rec, rlen);
}
