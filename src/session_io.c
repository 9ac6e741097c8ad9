/* session_io: what a session sends and how it ends — the layer under the
 * MQTT state machine (session.c) and its helpers (session_sub.c,
 * session_rate.c, session_proxy.c, session_news.c), which all call down
 * into it and never the other way round.
 *
 * It owns: the session's state changes (and the handshake and
 * pre-authentication accounting that follow them), its replies in the
 * order packets came in (held behind acks awaiting the spool commit), the
 * guard against devices that do not read what they are sent, and closing
 * (one log line, then teardown; the memory is freed on the loop's deferred
 * list, so a caller up the stack may still look at the session). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "gateway_int.h"
#include "iotgw/ackq.h"
#include "iotgw/log.h"
#include "iotgw/pwcheck.h"
#include "session_int.h"
#include "tokens.h"
#include "verdict.h"

#define UNREAD_MAX 16384 /* replies a device may leave unread (4096 PUBACKs) */

static const char *const sess_state_names[] = {"handshake", "await-connect", "active", "closing",
					       "closed"};

/* What connections that have not sent their CONNECT yet hold in input
 * buffers, all together: bounded by max_preauth_memory, so that many
 * partial CONNECTs cannot take the memory honest devices need. Counted
 * whenever the buffer changes size or the session leaves that state. */
void session_preauth_account(struct session *s)
{
	size_t now = s->state == SESS_AWAIT_CONNECT || s->state == SESS_HANDSHAKE ? s->in.cap : 0;
	if (now != s->preauth) {
		atomic_fetch_add_explicit(&s->gw->preauth_bytes, now, memory_order_relaxed);
		atomic_fetch_sub_explicit(&s->gw->preauth_bytes, s->preauth, memory_order_relaxed);
	}
	s->preauth = now;
}

void session_set_state(struct session *s, enum sess_state next)
{
	if (s->state == SESS_HANDSHAKE && next != SESS_HANDSHAKE && s->conn &&
	    conn_is_tls(s->conn))
		gateway_hs_end(s->gw, s->peer);
	if (log_enabled(LOG_DEBUG)) {
		struct log_fields f = session_fields(s);
		log_event(LOG_DEBUG, EV_SESSION_STATE, &f, "state %s -> %s (thread %u)",
			  sess_state_names[s->state], sess_state_names[next], s->w->index);
	}
	if (s->state == SESS_ACTIVE && next != SESS_ACTIVE)
		atomic_fetch_sub_explicit(&s->w->nactive, 1, memory_order_relaxed);
	else if (next == SESS_ACTIVE && s->state != SESS_ACTIVE)
		atomic_fetch_add_explicit(&s->w->nactive, 1, memory_order_relaxed);
	s->state = next;
	session_preauth_account(s);
}

void session_share_hold(struct session *s)
{
	if (s->share_held)
		return;
	s->share_held = true;
	list_add(&s->w->share_held, s, SHARE_LINK);
}

void session_share_release(struct session *s)
{
	if (!s->share_held)
		return;
	s->share_held = false;
	list_del(&s->w->share_held, s, SHARE_LINK);
}

bool session_seal(struct session *s)
{
	if (!ackq_seal(&s->acks))
		return false;
	list_del(&s->w->unsealed, s, COMMIT_LINK);
	if (ackq_sealed(&s->acks))
		list_add(&s->w->sealed, s, FLUSH_LINK);
	return true;
}

void session_post(struct session *s, struct wmsg *m)
{
	if (!m)
		return; /* out of memory: the owner's state stays as it was */
	m->token = s->token;
	m->worker = s->w->index;
	wq_post(&s->gw->owner_inbox, m);
}

static void session_destroy(void *p)
{
	struct session *s = p;
	conn_free(s->conn);
	buf_free(&s->in);
	ackq_free(&s->acks);
	free(s->client_id);
	free(s->sub_answer);
	metrics_conn_closed(s->listener, s->tls_slot);
	atomic_fetch_sub(&s->listener->nconns, 1); /* the gateway frees a closed listener at 0 */
	s->magic = 0; /* a stale pointer must not pass the magic check */
	free(s);
}

static void stop_awaiting(struct session *s)
{
	list_del(&s->w->unsealed, s, COMMIT_LINK);
	list_del(&s->w->sealed, s, FLUSH_LINK);
	list_del(&s->w->batch_wait, s, BWAIT_LINK);
}

static void unlink_session(struct session *s)
{
	struct worker *w = s->w;
	/* Acks still held are dropped: the device resends after reconnecting,
	 * and the spool already has (or will commit) the reading. */
	stop_awaiting(s);
	session_share_release(s);
	if (s->att != ATT_NONE) {
		/* The owner releases its client id (unless a takeover moved it)
		 * and its downlink record. */
		session_post(s, wmsg_text(O_DETACH, s->client_id, s->device, NULL));
		s->att = ATT_NONE;
	}
	tokens_del(w, s->token, s);
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	atomic_fetch_sub_explicit(&w->nsessions, 1, memory_order_relaxed);
}

/* Tears down without logging (the caller logged why). */
void session_teardown(struct session *s)
{
	if (s->state == SESS_CLOSED)
		return;
	session_set_state(s, SESS_CLOSED);
	ev_timer_stop(s->w->loop, &s->timer);
	ev_timer_stop(s->w->loop, &s->rate_timer);
	if (s->pw_job) { /* its answer is no longer wanted */
		pwcheck_cancel(s->pw_job);
		s->pw_job = NULL;
	}
	if (s->conn)
		conn_pause_reading(s->conn);
	unlink_session(s);
	ev_defer(s->w->loop, session_destroy, s);
}

/* The session's log line for a verdict, under its handler's name. */
void session_emit(struct session *s, const struct verdict *v)
{
	struct log_fields f = session_fields(s);
	log_event_at(v->w.file, v->w.line, v->w.func, v->prio, v->event, &f, "%s", v->msg);
}

void session_close_at(const char *file, int line, const char *func, struct session *s, int prio,
		      enum iotgw_event event, const char *fmt, ...)
{
	if (s->state == SESS_CLOSED)
		return;
	if (log_enabled(prio)) {
		struct verdict v;
		va_list ap;
		va_start(ap, fmt);
		verdict_vset(&v, (struct where){file, func, line}, prio, event, fmt, ap);
		va_end(ap);
		session_emit(s, &v);
	}
	session_teardown(s);
}

int session_send(struct session *s, const uint8_t *p, size_t n)
{
	if (conn_send(s->conn, p, n) == 0) {
		/* A device that does not read its PUBACKs would go on publishing
		 * into the spool for as long as its socket took them: stop
		 * reading it until it has read what it was sent (on_drained). */
		if (!s->unread && conn_pending_output(s->conn) > UNREAD_MAX) {
			s->unread = true;
			conn_pause_reading(s->conn);
			struct log_fields f = session_fields(s);
			log_event(LOG_NOTICE, EV_DEVICE_NOT_READING, &f,
				  "device does not read its acknowledgements (%zu bytes waiting); "
				  "not read until it does",
				  conn_pending_output(s->conn));
		}
		return 0;
	}
	session_close(s, LOG_NOTICE, EV_DEVICE_DISCONNECTED, "send failed: %s",
		      conn_error(s->conn));
	return -1;
}

/* Holds a reply until the spool commit in progress succeeded; is_ack: a
 * PUBACK/PUBREC, whose PUBLISH was read in this loop iteration. */
int session_hold_reply(struct session *s, const uint8_t *pkt, size_t n, bool is_ack)
{
	if (ackq_append(&s->acks, pkt, n, is_ack, ev_now_us(s->w->loop)) != 0) {
		session_close(s, LOG_WARNING, EV_DEVICE_DISCONNECTED,
			      "too many messages awaiting the spool commit; connection closed");
		return -1;
	}
	if (ackq_len(&s->acks) >= ACKS_HOLD && !s->held) {
		s->held = true;
		conn_pause_reading(s->conn);
	}
	list_add(&s->w->unsealed, s, COMMIT_LINK);
	return 0;
}

/* Replies go out in the order the device's packets came in (a client may
 * rely on it): behind any acks held for the commit, or at once. */
void session_reply(struct session *s, const uint8_t *p, size_t n)
{
	assert(n > 0); /* an encoder that did not fit its buffer */
	if (ackq_len(&s->acks))
		(void)session_hold_reply(s, p, n, false);
	else
		(void)session_send(s, p, n);
}
