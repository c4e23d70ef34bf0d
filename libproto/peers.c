/*
 * The known-peers table: small enough for linear scans. Every way in goes
 * through note(), which decides what a sighting may change: first-hand
 * beats hearsay, a record is kept only when it verifies and names the
 * address, and a record replaces another of the same identity only when
 * newer.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "peers.h"

void
proto_peers_init(proto_peer_table *t)
{
	memset(t, 0, sizeof(*t));
}

/* A place where a node can listen: an IP address that is not a wildcard,
 * and a port. */
static int
listenable(const proto_addr *a)
{
	return (a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6) &&
	    proto_addr_port(a) != 0 && !proto_addr_is_any(a);
}

/* The nodes of this host that we saw ourselves are as many as it runs:
 * trusted as we trust ourselves, and never counted against the limit. */
static int
exempt(const proto_known_peer *e)
{
	return e->checked && proto_addr_is_loopback(&e->addr);
}

static int
expired_record(const proto_known_peer *e, time_t now)
{
	return e->record_len > 0 &&
	    e->exp + PROTO_RECORD_SKEW < (uint64_t)now;
}

static void
drop_record(proto_known_peer *e)
{
	e->record_len = 0;
	e->seq = e->exp = e->flags = 0;
	proto_addr_set_pin(&e->addr, NULL);
}

size_t
proto_peers_expire(proto_peer_table *t, time_t now)
{
	size_t kept = 0, dropped = 0;

	for (size_t i = 0; i < t->count; i++) {
		proto_known_peer *e = &t->peers[i];
		if (now - e->seen > PROTO_PEERS_EXPIRY) {
			dropped++;
			continue;
		}
		if (expired_record(e, now))
			drop_record(e);
		if (kept != i)
			t->peers[kept] = *e;
		kept++;
	}
	t->count = kept;
	return dropped;
}

static proto_known_peer *
find(proto_peer_table *t, const proto_addr *a)
{
	for (size_t i = 0; i < t->count; i++)
		if (proto_addr_equal(&t->peers[i].addr, a))
			return &t->peers[i];
	return NULL;
}

const proto_known_peer *
proto_peers_find(const proto_peer_table *t, const proto_addr *a)
{
	return find((proto_peer_table *)t, a);
}

/* Of the entries of host (all of them when host is NULL) that a newcomer
 * may displace, the one to go: the oldest unchecked, else, for a newcomer
 * seen first-hand, the oldest. NULL when none may. */
static proto_known_peer *
victim(proto_peer_table *t, const proto_addr *host, int firsthand)
{
	proto_known_peer *old = NULL, *old_heard = NULL;

	for (size_t i = 0; i < t->count; i++) {
		proto_known_peer *e = &t->peers[i];
		if (host != NULL && (exempt(e) ||
		    !proto_addr_same_site(&e->addr, host)))
			continue;
		if (old == NULL || e->seen < old->seen)
			old = e;
		if (!e->checked && (old_heard == NULL ||
		    e->seen < old_heard->seen))
			old_heard = e;
	}
	/* Hearsay never pushes out a node that answered. */
	return old_heard != NULL ? old_heard : firsthand ? old : NULL;
}

/* A slot for a new entry at a, made by pushing out another when a's host
 * or the table is full; NULL when none may go. */
static proto_known_peer *
make_room(proto_peer_table *t, const proto_addr *a, int firsthand)
{
	if (!(firsthand && proto_addr_is_loopback(a))) {
		size_t same = 0;
		for (size_t i = 0; i < t->count; i++)
			same += !exempt(&t->peers[i]) &&
			    proto_addr_same_site(&t->peers[i].addr, a);
		if (same >= PROTO_PEERS_PER_HOST)
			return victim(t, a, firsthand);
	}
	if (t->count < PROTO_PEER_TABLE_MAX)
		return &t->peers[t->count++];
	return victim(t, NULL, firsthand);
}

/* r (verified, naming e's address) said of e, first-hand or not. */
static void
take_record(proto_known_peer *e, const proto_record *r, const uint8_t *rec,
    size_t rec_len, int firsthand, time_t now)
{
	if (e->record_len > 0) {
		int same = memcmp(e->addr.pin, r->id, PROTO_IDENTITY_LEN) == 0;
		/* An old record replayed cannot undo a newer one; and what
		 * others say cannot move an address to another identity. */
		if ((same && r->seq <= e->seq) || (!same && !firsthand))
			return;
	} else if (!firsthand && e->has_seen_id &&
	    memcmp(e->seen_id, r->id, PROTO_IDENTITY_LEN) != 0)
		return; /* we saw another node there ourselves */
	/* The node signed it lately: it was there, as far as anyone can
	 * tell, and the record's expiry bounds how long that is believed. */
	if (e->record_len > 0 || firsthand)
		e->seen = now;
	memcpy(e->record, rec, rec_len);
	e->record_len = rec_len;
	e->seq = r->seq;
	e->exp = r->exp;
	e->flags = r->flags;
	proto_addr_set_pin(&e->addr, r->id);
}

static int
note(proto_peer_table *t, const proto_addr *a, int firsthand,
    const uint8_t *peer_id, const uint8_t *rec, size_t rec_len)
{
	time_t now = time(NULL);
	proto_known_peer *e;
	proto_record r;
	int sig;

	if (!listenable(a))
		return PROTO_ERR_INVALID;
	proto_peers_expire(t, now);
	sig = rec != NULL && rec_len > 0 &&
	    proto_record_verify(rec, rec_len, (uint64_t)now, &r) == 0 &&
	    proto_record_has_addr(&r, a) && (peer_id == NULL ||
	    memcmp(r.id, peer_id, PROTO_IDENTITY_LEN) == 0);
	if ((e = find(t, a)) == NULL) {
		if ((e = make_room(t, a, firsthand)) == NULL)
			return PROTO_ERR_TOO_BIG;
		memset(e, 0, sizeof(*e));
		e->addr = *a;
		proto_addr_set_pin(&e->addr, NULL);
		proto_addr_host(a, e->host, sizeof(e->host));
		e->seen = now;
	}
	if (firsthand) {
		e->seen = now;
		e->checked = 1;
		if (peer_id != NULL) {
			/* Someone else answers there now. */
			if (e->record_len > 0 && memcmp(e->addr.pin, peer_id,
			    PROTO_IDENTITY_LEN) != 0)
				drop_record(e);
			e->has_seen_id = 1;
			memcpy(e->seen_id, peer_id, PROTO_IDENTITY_LEN);
		}
	}
	if (sig)
		take_record(e, &r, rec, rec_len, firsthand, now);
	return !e->checked;
}

int
proto_peers_add(proto_peer_table *t, const proto_addr *a,
    const uint8_t *peer_id, const uint8_t *rec, size_t rec_len)
{
	int rc = note(t, a, 1, peer_id, rec, rec_len);

	return rc < 0 ? rc : 0;
}

int
proto_peers_heard(proto_peer_table *t, const proto_addr *a,
    const uint8_t *rec, size_t rec_len)
{
	return note(t, a, 0, NULL, rec, rec_len);
}

int
proto_peers_holds(proto_peer_table *t, const proto_addr *a,
    const uint8_t id[PROTO_HASH_LEN])
{
	proto_known_peer *e = find(t, a);
	size_t i;

	if (e == NULL)
		return PROTO_ERR_INVALID;
	for (i = 0; i < e->nids; i++)
		if (memcmp(e->ids[i], id, PROTO_HASH_LEN) == 0)
			break;
	if (i == e->nids && e->nids < PROTO_PEER_IDS_MAX)
		e->nids++;
	if (i == e->nids)
		i--;
	memmove(e->ids[1], e->ids[0], i * PROTO_HASH_LEN);
	memcpy(e->ids[0], id, PROTO_HASH_LEN);
	return 0;
}

static int
holds(const proto_known_peer *e, const uint8_t *id)
{
	for (size_t i = 0; id != NULL && i < e->nids; i++)
		if (memcmp(e->ids[i], id, PROTO_HASH_LEN) == 0)
			return 1;
	return 0;
}

size_t
proto_peers_list(const proto_peer_table *t, proto_peer_entry *out,
    size_t max, const proto_addr *skip, const uint8_t *id)
{
	const proto_known_peer *order[PROTO_PEER_TABLE_MAX];
	time_t now = time(NULL);
	size_t n = 0, k = 0, nholds = 0;

	for (size_t i = 0; i < t->count; i++) {
		const proto_known_peer *e = &t->peers[i];
		int sig = e->record_len > 0 && !expired_record(e, now);
		if ((!e->checked && !sig) || now - e->seen > PROTO_PEERS_EXPIRY)
			continue;
		if (skip != NULL && proto_addr_equal(&e->addr, skip))
			continue;
		order[k++] = e;
		/* Those that hold the file go first. */
		if (holds(e, id)) {
			order[k - 1] = order[nholds];
			order[nholds++] = e;
		}
	}
	/*
	 * A uniform random sample of each part: answered newest first, every
	 * asker would be given the same few peers, and a swarm would crowd
	 * onto them while the rest upload nothing. A partial Fisher-Yates
	 * shuffle, the holders among themselves, then the rest.
	 */
	for (size_t i = 0; i < k && i < max; i++) {
		size_t end = i < nholds ? nholds : k;
		size_t j = i + (size_t)random() % (end - i);
		const proto_known_peer *e = order[j];
		order[j] = order[i];
		order[i] = e;
	}
	for (size_t i = 0; i < k && n < max; i++) {
		const proto_known_peer *e = order[i];
		out[n].host = e->host;
		out[n].host_len = strlen(e->host);
		out[n].port = proto_addr_port(&e->addr);
		out[n].record = NULL;
		out[n].record_len = 0;
		if (e->record_len > 0 && !expired_record(e, now)) {
			out[n].record = e->record;
			out[n].record_len = e->record_len;
		}
		n++;
	}
	return n;
}

int
proto_peers_host_port(const struct sockaddr *sa, char *host, uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, INET6_ADDRSTRLEN);
		*port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, INET6_ADDRSTRLEN);
		*port = ntohs(in6->sin6_port);
		return 0;
	}
	strcpy(host, "?");
	*port = 0;
	return PROTO_ERR_INVALID;
}
