/* session_rate: a device's messages and bytes per second against its
 * listener's max_message_rate and max_byte_rate. One second of burst; a
 * device over either is not read until it is back within it, so TCP slows
 * it and it holds up nobody else (rate_limit_action = slow), or it is
 * disconnected (= disconnect); session.c's rate timer reads it again. One log line per episode: it starts when the
 * device is first held and ends once its buckets are full again. */
#include "iotgw/log.h"
#include "session_int.h"

bool session_rate_admit(struct session *s, size_t bytes)
{
	const struct listener *l = s->listener;
	if (!l->max_message_rate && !l->max_byte_rate)
		return true;
	uint64_t now = ev_now_ms(s->w->loop);
	double mr = l->max_message_rate, br = l->max_byte_rate;
	if (s->rate_episode && tb_full(&s->msg_rate, mr, mr, now) &&
	    tb_full(&s->byte_rate, br, br, now))
		s->rate_episode = false; /* back within its rates for a second */
	/* Both or neither: a message refused for its bytes takes no message. */
	uint64_t wait = tb_take(&s->byte_rate, br, br, 0, now);
	if (!wait)
		wait = tb_take(&s->msg_rate, mr, mr, 1, now);
	if (!wait) {
		(void)tb_take(&s->byte_rate, br, br, (double)bytes, now);
		return true;
	}
	if (!s->rate_episode) {
		s->rate_episode = true;
		s->listener->m.rate_limited++;
		struct log_fields f = session_fields(s);
		log_event(LOG_WARNING, EV_RATE_LIMITED, &f,
			  "device %s is over its rate (max_message_rate %u/s, max_byte_rate %u "
			  "bytes/s)%s",
			  s->device, l->max_message_rate, (unsigned)l->max_byte_rate,
			  l->rate_action == CFG_RATE_DISCONNECT ? "; disconnected"
								: ": read more slowly until it is back within");
	}
	if (l->rate_action == CFG_RATE_DISCONNECT) {
		session_close(s, LOG_INFO, EV_DEVICE_DISCONNECTED,
			      "over its rate (rate_limit_action = disconnect)");
		return false;
	}
	s->throttled = true;
	conn_pause_reading(s->conn);
	ev_timer_start(s->w->loop, &s->rate_timer, wait);
	return false;
}
