/* session_sub: a device's SUBSCRIBE and UNSUBSCRIBE, and the commands the
 * downlink writes to it. The listener's subscribe_acl decides which filters
 * a device may have; the downlink, on the owner, keeps them and delivers.
 *
 * A SUBSCRIBE asks the owner (O_SUBSCRIBE: each filter, its QoS and
 * whether the ACL allows it) and waits in `in`, not read further, for the
 * answer (W_SUBACK: a return code and a reason per filter); handled again
 * with it, it logs the refusals and sends the SUBACK in reply order. An
 * UNSUBSCRIBE needs no answer. */
#include <stdlib.h>
#include <string.h>

#include "iotgw/auth.h"
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

/* The filters as the owner reads them: per filter, its QoS, whether the
 * ACL allows it, its length (2 bytes) and its bytes; after the device's
 * name. */
static struct wmsg *filters_msg(struct session *s, enum wmsg_kind kind, const uint8_t *body,
				size_t len, size_t count, bool unsub)
{
	size_t dl = strlen(s->device);
	struct wmsg *m = wmsg_new(kind, dl + 1 + count * 4 + len);
	if (!m)
		return NULL;
	memcpy(m->data, s->device, dl + 1);
	size_t at = dl + 1, off = 0;
	for (size_t i = 0; i < count; i++) {
		struct mqtt_str f;
		uint8_t qos = 0;
		if (!mqtt_filter_next(body, len, !unsub, &off, &f, &qos))
			break; /* the decoder accepted it: unreachable */
		m->data[at++] = qos;
		m->data[at++] = unsub || auth_filter_allowed(s->listener->sub_acl, s->device,
							     f.ptr, f.len);
		m->data[at++] = (uint8_t)(f.len >> 8);
		m->data[at++] = (uint8_t)f.len;
		memcpy(m->data + at, f.ptr, f.len);
		at += f.len;
	}
	m->len = at;
	return m;
}

/* Handled again with the owner's answer: the refusals logged, the SUBACK
 * out. */
static const char *answer(struct session *s, const uint8_t *body, size_t len, uint16_t id,
			  size_t count)
{
	uint8_t codes[FILTERS_MAX];
	size_t off = 0;
	for (size_t i = 0; i < count; i++) {
		struct mqtt_str f;
		uint8_t qos;
		if (!mqtt_filter_next(body, len, true, &off, &f, &qos))
			return "malformed packet"; /* the decoder accepted it: unreachable */
		bool have = 2 * i + 1 < s->sub_answer_len;
		codes[i] = have ? s->sub_answer[2 * i] : 0x80;
		if (codes[i] != 0x80)
			continue;
		s->listener->m.subscribe_refusals++;
		switch (have ? s->sub_answer[2 * i + 1] : SUB_TOO_MANY) {
		case SUB_NO_DOWNLINK:
			refused(s, &f, "this gateway has no downlink ([downlink] topic = none)");
			break;
		case SUB_ACL:
			refused(s, &f, "not allowed by the listener's subscribe_acl");
			break;
		default:
			refused(s, &f, "too many subscriptions for this device");
			break;
		}
	}
	free(s->sub_answer);
	s->sub_answer = NULL;
	s->sub_answer_len = 0;
	uint8_t pkt[4 + 4 + FILTERS_MAX];
	session_reply(s, pkt, mqtt_encode_suback(pkt, sizeof pkt, id, codes, count));
	return NULL;
}

const char *session_subscribe(struct session *s, const uint8_t *body, size_t len, bool unsub,
			      bool *retry)
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
	if (unsub) {
		session_post(s, filters_msg(s, O_UNSUBSCRIBE, body, len, count, true));
		uint8_t pkt[4];
		session_reply(s, pkt, mqtt_encode_ack(pkt, sizeof pkt, MQTT_UNSUBACK, id));
		return NULL;
	}
	if (s->sub_answer)
		return answer(s, body, len, id, count);
	struct wmsg *m = filters_msg(s, O_SUBSCRIBE, body, len, count, false);
	if (!m) {
		/* Out of memory: every filter refused, as the downlink would. */
		s->sub_answer_len = 0;
		s->sub_answer = calloc(1, 1);
		return s->sub_answer ? answer(s, body, len, id, count) : "out of memory";
	}
	m->n = id;
	session_post(s, m);
	s->sub_waiting = true;
	conn_pause_reading(s->conn);
	*retry = true;
	return NULL;
}

int session_deliver(struct session *s, const uint8_t *pkt, size_t n)
{
	if (s->state != SESS_ACTIVE)
		return -1;
	session_reply(s, pkt, n);
	return s->state == SESS_ACTIVE ? 0 : -1;
}
