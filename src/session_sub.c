/* session_sub: a device's SUBSCRIBE and UNSUBSCRIBE, and the commands the
 * downlink writes to it. The listener's subscribe_acl decides which filters
 * a device may have; the downlink keeps them and delivers. */
#include <string.h>

#include "iotgw/auth.h"
#include "iotgw/downlink.h"
#include "iotgw/log.h"
#include "iotgw/mqtt_codec.h"
#include "session_int.h"

#define FILTERS_MAX 256 /* per SUBSCRIBE: more is a flood, not a device */

static void refused(struct session *s, const struct mqtt_str *f, const char *why)
{
	struct log_fields lf = session_fields(s);
	log_event(LOG_NOTICE, EV_SUBSCRIBE_REFUSED, &lf, "SUBSCRIBE to %.*s refused: %s",
		  (int)f->len, f->ptr, why);
}

const char *session_subscribe(struct session *s, const uint8_t *body, size_t len, bool unsub)
{
	uint16_t id;
	size_t count;
	const char *why = NULL;
	enum mqtt_result r = unsub ? mqtt_decode_unsubscribe(body, len, &id, &count, &why)
				   : mqtt_decode_subscribe(body, len, &id, &count, &why);
	if (r != MQTT_OK)
		return why ? why : "malformed packet";
	if (count > FILTERS_MAX)
		return "more than 256 topic filters in one packet";
	struct downlink *dl = s->gw->dl;
	uint8_t codes[FILTERS_MAX];
	size_t off = 0;
	for (size_t i = 0; i < count; i++) {
		struct mqtt_str f;
		uint8_t qos;
		if (!mqtt_filter_next(body, len, !unsub, &off, &f, &qos))
			return "malformed packet"; /* the decoder accepted it: unreachable */
		if (unsub) {
			downlink_unsubscribe(dl, s->dl_dev, f.ptr, f.len);
			continue;
		}
		codes[i] = 0x80;
		if (!downlink_subscription(dl))
			refused(s, &f, "this gateway has no downlink ([downlink] topic = none)");
		else if (!auth_filter_allowed(s->listener->sub_acl, s->device, f.ptr, f.len))
			refused(s, &f, "not allowed by the listener's subscribe_acl");
		else if ((codes[i] = downlink_subscribe(dl, s->dl_dev, f.ptr, f.len, qos)) == 0x80)
			refused(s, &f, "too many subscriptions for this device");
		if (codes[i] == 0x80)
			s->listener->m.subscribe_refusals++;
	}
	if (unsub) {
		uint8_t pkt[4];
		session_reply(s, pkt, mqtt_encode_ack(pkt, sizeof pkt, MQTT_UNSUBACK, id));
		return NULL;
	}
	uint8_t pkt[4 + 4 + FILTERS_MAX];
	session_reply(s, pkt, mqtt_encode_suback(pkt, sizeof pkt, id, codes, count));
	return NULL;
}

int session_deliver(void *session, const uint8_t *pkt, size_t n)
{
	struct session *s = session;
	if (s->state != SESS_ACTIVE)
		return -1;
	session_reply(s, pkt, n);
	return s->state == SESS_ACTIVE ? 0 : -1;
}
