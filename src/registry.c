/* registry: the gateway's tables about its sessions. The map from MQTT
 * client id to the session that holds it (MQTT 3.1.1 section 3.1.4-2: a
 * second connection with the same client id takes over), which borrows the
 * client id strings from the sessions (a session releases its entry before
 * it frees them); and the TLS handshakes in progress, in all and by source
 * address, which bound what unauthenticated peers can make us compute and
 * hold (max_handshakes, max_handshakes_per_address). */
#include <stdint.h>

#include "gateway_int.h"
#include "iotgw/log.h"

int gateway_registry_claim(struct gateway *gw, const char *client_id, struct session *s,
			   struct session **old)
{
	*old = strmap_get(gw->by_client_id, client_id);
	return strmap_put(gw->by_client_id, client_id, s);
}

void gateway_registry_release(struct gateway *gw, const char *client_id,
			      const struct session *s)
{
	if (strmap_get(gw->by_client_id, client_id) == s)
		(void)strmap_del(gw->by_client_id, client_id);
}

static unsigned addr_count(const struct gateway *gw, const char *addr)
{
	return (unsigned)(uintptr_t)strmap_get(gw->hs_by_addr, addr);
}

bool gateway_hs_admit(struct gateway *gw, const struct listener *l, const char *addr)
{
	const struct cfg_gateway *c = &gw->cfg->gateway;
	struct log_fields f = {.listener = l->name, .peer = addr};
	if (gw->handshakes >= c->max_handshakes) {
		if (!gw->hs_full)
			log_event(LOG_WARNING, EV_CONNECTION_LIMIT, &f,
				  "%u TLS handshakes in progress (max_handshakes): refusing new TLS "
				  "connections until some finish",
				  gw->handshakes);
		gw->hs_full = true;
		gw->hs_refused++;
		gw->hs_refused_total++;
		return false;
	}
	if (addr_count(gw, addr) >= c->max_handshakes_per_address) {
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

void gateway_hs_begin(struct gateway *gw, const char *addr)
{
	gw->handshakes++;
	/* Out of memory: the address goes uncounted, the total still holds. */
	(void)strmap_put(gw->hs_by_addr, addr, (void *)(uintptr_t)(addr_count(gw, addr) + 1));
}

void gateway_hs_end(struct gateway *gw, const char *addr)
{
	gw->handshakes--;
	unsigned n = addr_count(gw, addr);
	if (n <= 1)
		(void)strmap_del(gw->hs_by_addr, addr);
	else
		(void)strmap_put(gw->hs_by_addr, addr, (void *)(uintptr_t)(n - 1));
	if (gw->hs_full && gw->handshakes < gw->cfg->gateway.max_handshakes) {
		log_event(LOG_NOTICE, EV_CONNECTION_LIMIT, NULL,
			  "below max_handshakes again; %llu TLS connection(s) were refused",
			  (unsigned long long)gw->hs_refused);
		gw->hs_full = false;
		gw->hs_refused = 0;
	}
}
