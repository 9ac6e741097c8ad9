/* registry: the gateway's map from MQTT client id to the session that holds
 * it (MQTT 3.1.1 section 3.1.4-2: a second connection with the same client
 * id takes over). The map borrows the client id strings from the sessions;
 * a session releases its entry before it frees them. */
#include "gateway_int.h"

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
