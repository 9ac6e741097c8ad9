/* registry: the gateway's tables about its sessions. The map from MQTT
 * client id to the token of the session that holds it (MQTT 3.1.1 section
 * 3.1.4-2: a second connection with the same client id takes over), kept
 * by the owner; and the TLS handshakes in progress, in all and by source
 * address, which bound what unauthenticated peers can make us compute and
 * hold (max_handshakes, max_handshakes_per_address; at max_handshakes a new
 * connection evicts the oldest handshake still without a complete
 * ClientHello, conn_evict_stalled_hello); and new connections per
 * source address per second (max_connection_rate_per_address).
 *
 * The registry of client ids is the owner's alone. The per-address tables
 * are every worker's, at accept and at CONNECT: under gw->admit_mu (once
 * per connection, never per reading); the stalled hello evicted at
 * max_handshakes is the oldest of any worker's (conn_evict_stalled_hello). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "gateway_int.h"
#include "iotgw/log.h"
#include "iotgw/strmap.h"
#include "iotgw/tbucket.h"
#include "iotgw/text.h"

#define AUTH_FAILS_FORGET_MS (10u * 60 * 1000)
#define AUTH_BACKOFF_MAX_S 60u
/* More addresses than this with failures: forget them all (the table stays
 * bounded whatever an attacker's address range; the worst case is that the
 * backoff starts again). */
#define AUTH_FAILS_TABLE_MAX 10000

_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "a token fits in a map's pointer");

int gateway_registry_claim(struct gateway *gw, const char *client_id, uint64_t token,
			   uint64_t *old)
{
	*old = (uint64_t)(uintptr_t)strmap_get(gw->by_client_id, client_id);
	return strmap_put(gw->by_client_id, client_id, (void *)(uintptr_t)token);
}

void gateway_registry_release(struct gateway *gw, const char *client_id, uint64_t token)
{
	if ((uint64_t)(uintptr_t)strmap_get(gw->by_client_id, client_id) == token)
		(void)strmap_del(gw->by_client_id, client_id);
}

/* The source address of a peer "addr:port" (the peer itself if it has no
 * port): what handshake counts and password failures are kept by. */
static const char *addr_of(const char *peer, char *out, size_t cap)
{
	return text_peer_address(peer, out, cap) ? out : peer;
}

static unsigned addr_count(const struct gateway *gw, const char *addr)
{
	return (unsigned)(uintptr_t)strmap_get(gw->hs_by_addr, addr);
}

static bool gateway_hs_admit_held(struct gateway *gw, const struct listener *l, const char *peer)
{
	char a[64];
	const char *addr = addr_of(peer, a, sizeof a);
	const struct cfg_gateway *c = &gw->cfg->gateway;
	struct log_fields f = {.listener = l->name, .peer = peer};
	bool addr_full = addr_count(gw, addr) >= c->max_handshakes_per_address;
	if (gw->handshakes >= c->max_handshakes) {
		if (!gw->hs_full)
			log_event(LOG_WARNING, EV_CONNECTION_LIMIT, &f,
				  "%u TLS handshakes in progress (max_handshakes): new TLS "
				  "connections evict the oldest handshake without a complete "
				  "ClientHello, and are refused while there is none",
				  gw->handshakes);
		gw->hs_full = true;
		/* Not at an address that is over its own limit: it would be
		 * refused after the eviction. The evicted handshake still counts
		 * until its session closes on the next iteration, so the count
		 * may pass max_handshakes meanwhile by the connections admitted
		 * this way, each of which evicted one. */
		if (!addr_full && conn_evict_stalled_hello()) {
			gw->hs_evicted++;
			gw->hs_evicted_total++;
			return true;
		}
		gw->hs_refused++;
		gw->hs_refused_total++;
		return false;
	}
	if (addr_full) {
		/* One line per refusal; a flood is summarized by the log. */
		log_event(LOG_WARNING, EV_CONNECTION_LIMIT, &f,
			  "%u TLS handshakes in progress from %s (max_handshakes_per_address); "
			  "connection refused",
			  addr_count(gw, addr), addr);
		gw->hs_refused_total++;
		return false;
	}
	return true;
}

static void gateway_hs_begin_held(struct gateway *gw, const char *peer)
{
	char a[64];
	const char *addr = addr_of(peer, a, sizeof a);
	gw->handshakes++;
	/* Out of memory: the address goes uncounted, the total still holds. */
	(void)strmap_put(gw->hs_by_addr, addr, (void *)(uintptr_t)(addr_count(gw, addr) + 1));
}

static void gateway_hs_end_held(struct gateway *gw, const char *peer)
{
	char a[64];
	const char *addr = addr_of(peer, a, sizeof a);
	gw->handshakes--;
	unsigned n = addr_count(gw, addr);
	if (n <= 1)
		(void)strmap_del(gw->hs_by_addr, addr);
	else
		(void)strmap_put(gw->hs_by_addr, addr, (void *)(uintptr_t)(n - 1));
	if (gw->hs_full && gw->handshakes < gw->cfg->gateway.max_handshakes) {
		log_event(LOG_NOTICE, EV_CONNECTION_LIMIT, NULL,
			  "below max_handshakes again; %llu TLS connection(s) were refused, "
			  "%llu stalled handshake(s) evicted",
			  (unsigned long long)gw->hs_refused, (unsigned long long)gw->hs_evicted);
		gw->hs_full = false;
		gw->hs_refused = 0;
		gw->hs_evicted = 0;
	}
}

/* Connection rates by source address: a fixed table of token buckets
 * indexed by a keyed hash of the address, so it never grows whatever the
 * attacker's address range. Two addresses that share a slot share a
 * bucket (the limit is then stricter for both, never looser); with a
 * random SipHash key nobody can choose which. */
#define CONN_SLOTS 4096

struct conn_slot {
	struct tbucket b;
	bool logged; /* this episode of refusals has its log line */
};

struct conn_rates {
	uint64_t key[2];
	struct conn_slot slot[CONN_SLOTS];
};

static bool gateway_conn_admit_held(struct gateway *gw, struct listener *l, const char *peer)
{
	if (!l->conn_rate)
		return true;
	if (!gw->conn_rates) {
		gw->conn_rates = calloc(1, sizeof *gw->conn_rates);
		if (!gw->conn_rates)
			return true; /* out of memory: not limited, rather than refused */
		if (getrandom(gw->conn_rates->key, sizeof gw->conn_rates->key, 0) !=
		    (ssize_t)sizeof gw->conn_rates->key)
			gw->conn_rates->key[0] = (uint64_t)(uintptr_t)gw ^ ev_clock_us();
	}
	char a[64];
	const char *addr = addr_of(peer, a, sizeof a);
	struct conn_slot *s =
		&gw->conn_rates->slot[strmap_siphash24(gw->conn_rates->key, addr, strlen(addr)) %
				      CONN_SLOTS];
	uint64_t now = ev_clock_ms();
	double r = l->conn_rate;
	if (s->logged && tb_full(&s->b, r, r, now))
		s->logged = false;
	if (tb_take(&s->b, r, r, 1, now) == 0)
		return true;
	l->m.conn_rate_refusals++;
	if (!s->logged) {
		s->logged = true;
		struct log_fields f = {.listener = l->name, .peer = peer};
		log_event(LOG_WARNING, EV_CONNECTION_LIMIT, &f,
			  "more than %u new connections per second from %s "
			  "(max_connection_rate_per_address): refusing them until it slows down",
			  l->conn_rate, addr);
	}
	return false;
}

void gateway_conn_rates_free(struct gateway *gw)
{
	free(gw->conn_rates);
	gw->conn_rates = NULL;
}

struct auth_fails {
	unsigned n;
	uint64_t last_ms, until_ms;
};

static void gateway_auth_failed_held(struct gateway *gw, const char *peer)
{
	char a[64];
	const char *addr = addr_of(peer, a, sizeof a);
	uint64_t now = ev_clock_ms();
	struct auth_fails *f = strmap_get(gw->auth_fails, addr);
	if (!f) {
		if (strmap_size(gw->auth_fails) >= AUTH_FAILS_TABLE_MAX) {
			strmap_free(gw->auth_fails, free);
			gw->auth_fails = strmap_new();
			if (!gw->auth_fails)
				abort(); /* at start-up it could be made; freeing gave room */
		}
		f = calloc(1, sizeof *f);
		if (!f || strmap_put(gw->auth_fails, addr, f) != 0) {
			free(f);
			return; /* out of memory: no backoff for this one */
		}
	}
	if (now - f->last_ms > AUTH_FAILS_FORGET_MS)
		f->n = 0;
	f->n++;
	f->last_ms = now;
	unsigned free_fails = gw->cfg->gateway.auth_backoff_after;
	if (free_fails && f->n > free_fails) {
		unsigned shift = f->n - free_fails - 1;
		uint64_t wait = shift >= 6 ? AUTH_BACKOFF_MAX_S : 1u << shift;
		f->until_ms = now + 1000 * (wait < AUTH_BACKOFF_MAX_S ? wait : AUTH_BACKOFF_MAX_S);
	}
}

static void gateway_auth_ok_held(struct gateway *gw, const char *peer)
{
	char a[64];
	free(strmap_del(gw->auth_fails, addr_of(peer, a, sizeof a)));
}

static unsigned gateway_auth_backoff_held(struct gateway *gw, const char *peer)
{
	char a[64];
	const struct auth_fails *f = strmap_get(gw->auth_fails, addr_of(peer, a, sizeof a));
	uint64_t now = ev_clock_ms();
	if (!f || now >= f->until_ms)
		return 0;
	return (unsigned)((f->until_ms - now + 999) / 1000);
}

bool gateway_hs_admit(struct gateway *gw, const struct listener *l, const char *peer)
{
	pthread_mutex_lock(&gw->admit_mu);
	bool r = gateway_hs_admit_held(gw, l, peer);
	pthread_mutex_unlock(&gw->admit_mu);
	return r;
}

void gateway_hs_begin(struct gateway *gw, const char *peer)
{
	pthread_mutex_lock(&gw->admit_mu);
	gateway_hs_begin_held(gw, peer);
	pthread_mutex_unlock(&gw->admit_mu);
}

void gateway_hs_end(struct gateway *gw, const char *peer)
{
	pthread_mutex_lock(&gw->admit_mu);
	gateway_hs_end_held(gw, peer);
	pthread_mutex_unlock(&gw->admit_mu);
}

bool gateway_conn_admit(struct gateway *gw, struct listener *l, const char *peer)
{
	pthread_mutex_lock(&gw->admit_mu);
	bool r = gateway_conn_admit_held(gw, l, peer);
	pthread_mutex_unlock(&gw->admit_mu);
	return r;
}

void gateway_auth_failed(struct gateway *gw, const char *peer)
{
	pthread_mutex_lock(&gw->admit_mu);
	gateway_auth_failed_held(gw, peer);
	pthread_mutex_unlock(&gw->admit_mu);
}

void gateway_auth_ok(struct gateway *gw, const char *peer)
{
	pthread_mutex_lock(&gw->admit_mu);
	gateway_auth_ok_held(gw, peer);
	pthread_mutex_unlock(&gw->admit_mu);
}

unsigned gateway_auth_backoff(struct gateway *gw, const char *peer)
{
	pthread_mutex_lock(&gw->admit_mu);
	unsigned r = gateway_auth_backoff_held(gw, peer);
	pthread_mutex_unlock(&gw->admit_mu);
	return r;
}
