/* session: one device connection's MQTT state machine.
 *
 *   HANDSHAKE --tls up--> AWAIT_CONNECT --CONNECT ok--> ACTIVE
 *        \____________________\___________________\__--> CLOSING -> CLOSED
 *
 * Every waiting state has a deadline on the session's one timer: the TLS
 * handshake timeout, then the CONNECT timeout, then 1.5 x keepalive
 * (MQTT 3.1.1 section 3.1.2.10). Bytes are read in chunks into `in` and parsed
 * from there; a packet is consumed only once fully handled, so back-pressure
 * can stop in the middle of a buffer and resume later without losing it. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway_int.h"
#include "iotgw/ackq.h"
#include "iotgw/auth.h"
#include "iotgw/log.h"
#include "iotgw/pwcheck.h"
#include "trust.h"
#include "session_int.h"
#include "tokens.h"
#include "verdict.h"

#define SESSION_MAGIC 0x5e55104du
#define READ_CHUNK 4096
/* Bytes read from one connection per loop turn: then the others get their
 * turn and the group commit runs. QoS 1 and 2 are bounded by ACKS_HOLD
 * already; QoS 0 has no acks, and without this one device sending faster
 * than the gateway parses would keep the loop in its read, every other
 * device waiting and its readings staged in memory. 64 KiB is a few
 * thousand small readings, or a sixteenth of a 1 MiB packet. */
#define READ_BUDGET (16 * READ_CHUNK)
#define OUT_MAX (64 * 1024)
#define LINGER_MS 2000
/* The largest first packet read before a device is known: a CONNECT with
 * a 64-character id, user name, password and a small will fits many times
 * over; the pre-authentication memory a connection can claim stays small. */
#define CONNECT_MAX 16384
#define CONNECT_MAX_TEXT "16384 bytes"

static const struct conn_handler session_conn_handler;

/* Not held back by the spool, its acks or its own unread replies. */
static bool readable_now(const struct session *s)
{
	return !s->paused && !s->held && !s->unread && !s->throttled && !s->batch_waiting &&
	       !s->sub_waiting && s->att != ATT_WAITING;
}

/* Every callback gets the session back as a void *; the magic catches type
 * confusion and use after free (it is scrubbed when the session is freed). */
static struct session *session_of(void *p)
{
	struct session *s = p;
	assert(s && s->magic == SESSION_MAGIC);
	return s;
}





/* Malformed or illegal MQTT: the connection is closed. */
#define violation(v, what, why)                                                                   \
	decide(v, OUT_CLOSE, LOG_WARNING, EV_MQTT_PROTOCOL_ERROR, "%s: %s; connection closed",    \
	       what, (why) ? (why) : "malformed packet")

/* Returns whether the session goes on reading packets. */
static bool carry_out(struct session *s, enum outcome o, const struct verdict *v)
{
	switch (o) {
	case OUT_DONE:
		break;
	case OUT_RETRY:
		return false;
	case OUT_CLOSE:
		if (v->event == EV_MQTT_PROTOCOL_ERROR)
			s->listener->m.protocol_errors++;
		else if (v->event == EV_ACL_DENIED)
			s->listener->m.acl_denials++;
		if (s->state == SESS_CLOSED)
			break;
		if (log_enabled(v->prio))
			session_emit(s, v);
		session_teardown(s);
		break;
	case OUT_LINGER:
		if (s->state == SESS_CLOSED || s->state == SESS_CLOSING)
			break;
		if (log_enabled(v->prio))
			session_emit(s, v);
		if (conn_pending_output(s->conn) == 0) {
			session_teardown(s);
			break;
		}
		session_set_state(s, SESS_CLOSING);
		conn_pause_reading(s->conn);
		ev_timer_start(s->w->loop, &s->timer, LINGER_MS);
		break;
	}
	return s->state == SESS_AWAIT_CONNECT || s->state == SESS_ACTIVE;
}


/* ---- timers ---- */

static void arm_keepalive(struct session *s)
{
	if (s->keepalive_ms == 0)
		return;
	uint64_t limit = (uint64_t)s->keepalive_ms * 3 / 2;
	uint64_t idle = ev_now_ms(s->w->loop) - s->last_rx_ms;
	ev_timer_start(s->w->loop, &s->timer, idle >= limit ? 0 : limit - idle);
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	struct session *s = session_of(t->arg);
	switch (s->state) {
	case SESS_HANDSHAKE:
		if (conn_awaiting_proxy(s->conn)) {
			session_proxy_timeout(s);
			break;
		}
		s->listener->m.hs_failures[CONN_FAIL_TIMEOUT]++;
		session_close(s, LOG_WARNING, EV_TLS_HANDSHAKE_TIMEOUT,
			      "TLS handshake not completed within %u ms; connection closed",
			      s->listener->handshake_timeout_ms);
		break;
	case SESS_AWAIT_CONNECT:
		session_close(s, LOG_WARNING, EV_CONNECT_TIMEOUT,
			      "no MQTT CONNECT within %u ms; connection closed",
			      s->gw->cfg->gateway.connect_timeout_ms);
		break;
	case SESS_ACTIVE: {
		uint64_t limit = (uint64_t)s->keepalive_ms * 3 / 2;
		/* While the gateway holds devices back it does not read their
		 * PINGREQs, so their silence is ours, not theirs. */
		if (s->paused || s->throttled ||
		    ev_now_ms(s->w->loop) - s->last_rx_ms < limit) {
			if (s->paused || s->throttled)
				s->last_rx_ms = ev_now_ms(s->w->loop);
			arm_keepalive(s);
			break;
		}
		session_close(s, LOG_NOTICE, EV_KEEPALIVE_TIMEOUT,
			      "nothing received for %llu ms (keepalive %u s x 1.5); connection "
			      "closed",
			      (unsigned long long)limit, s->keepalive_ms / 1000);
		break;
	}
	case SESS_CLOSING:
		session_teardown(s);
		break;
	case SESS_CLOSED:
		break;
	}
}

/* Back within its rates (session_rate.c held it). */
static void on_rate_timer(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	struct session *s = session_of(t->arg);
	s->throttled = false;
	session_resume_reading(s);
}

/* ---- packet handlers ---- */

static void send_connack(struct session *s, uint8_t rc, bool present)
{
	uint8_t pkt[4];
	size_t n = mqtt_encode_connack(pkt, sizeof pkt, present, rc);
	assert(n == sizeof pkt);
	(void)session_send(s, pkt, n);
}

/* Answers CONNECT with a refusal and lingers until it is out. */
__attribute__((format(printf, 6, 7))) static enum outcome
refuse_at(struct where w, struct session *s, struct verdict *v, uint8_t rc, enum iotgw_event event,
	  const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (rc < sizeof s->listener->m.refusals / sizeof s->listener->m.refusals[0])
		s->listener->m.refusals[rc]++;
	if (event == EV_AUTH_FAILED)
		s->listener->m.auth_failures++;
	send_connack(s, rc, false);
	return decide_at(w, v, OUT_LINGER, LOG_WARNING, event, "CONNECT refused (rc %u): %s", rc,
			 why);
}

#define refuse_as(...) refuse_at(HERE, __VA_ARGS__)
#define refuse(s, v, rc, ...) refuse_at(HERE, s, v, rc, EV_CONNECT_REFUSED, __VA_ARGS__)

static void on_password_checked(void *owner, bool good)
{
	struct session *s = session_of(owner);
	s->pw_job = NULL;
	s->pw = good ? TRUST_PW_GOOD : TRUST_PW_BAD;
	if (good)
		gateway_auth_ok(s->gw, s->peer);
	else
		gateway_auth_failed(s->gw, s->peer);
	conn_resume_reading(s->conn);
	session_process_input(s); /* the CONNECT again, with the result */
	session_input_settled(s);
}

/* Hands the password to the workers (a KDF run must not stop the loop) and
 * keeps the CONNECT for when the answer comes. Refused at once when the
 * source address is backing off after failures, or the workers are full. */
static enum outcome check_password(struct session *s, const struct mqtt_connect *c,
				   struct verdict *v)
{
	struct gateway *gw = s->gw;
	unsigned wait_s = gateway_auth_backoff(gw, s->peer);
	if (wait_s)
		return refuse_as(s, v, MQTT_CONNACK_BAD_USERNAME_PASSWORD, EV_AUTH_FAILED,
				 "too many wrong passwords from this address: refused for %u s "
				 "more without checking",
				 wait_s);
	s->pw_job = pwcheck_submit(s->w->pwcheck, s->listener->pwfile, s->device,
				   (const uint8_t *)c->password.ptr, c->password.len,
				   on_password_checked, s);
	if (!s->pw_job)
		return refuse(s, v, MQTT_CONNACK_SERVER_UNAVAILABLE,
			      "%u password checks already waiting; try again later",
			      pwcheck_queued(s->w->pwcheck));
	conn_pause_reading(s->conn);
	return OUT_RETRY;
}

static enum outcome handle_connect(struct session *s, uint8_t flags, const uint8_t *body,
				   size_t len, struct verdict *v)
{
	if (s->state != SESS_AWAIT_CONNECT)
		return violation(v, "second CONNECT", "a client may send CONNECT only once (3.1.0-2)");
	struct mqtt_connect c;
	const char *why = NULL;
	if (mqtt_decode_connect(flags, body, len, &c, &why) != MQTT_OK)
		return violation(v, "CONNECT", why);
	if (c.refuse == MQTT_CONNACK_BAD_PROTOCOL_VERSION)
		return refuse(s, v, MQTT_CONNACK_BAD_PROTOCOL_VERSION,
			      c.protocol_level == 5 ? "MQTT 5 is not supported; use MQTT 3.1.1 (or 3.1)"
						    : "unsupported protocol level %u; use MQTT 3.1.1",
			      c.protocol_level);
	if (c.refuse != MQTT_CONNACK_ACCEPTED)
		return refuse(s, v, (uint8_t)c.refuse,
			      "empty client id requires clean session (3.1.3-7)");
	if (s->pw_job)
		return OUT_RETRY; /* its password is being checked */
	if (s->att == ATT_NONE) { /* handled before: waiting for a password check */
		free(s->client_id);
		s->client_id = strndup(c.client_id.ptr, c.client_id.len);
		if (!s->client_id)
			return refuse(s, v, MQTT_CONNACK_SERVER_UNAVAILABLE, "out of memory");
	}
	struct trust_verdict tv;
	trust_connect(&s->listener->trust, s->cert_identity, &c, s->client_id, s->pw, s->device,
		      sizeof s->device, &tv);
	if (tv.connack == TRUST_CHECK_PASSWORD)
		return check_password(s, &c, v);
	if (tv.connack != MQTT_CONNACK_ACCEPTED)
		return refuse_as(s, v, tv.connack, tv.event, "%s", tv.why);
	if (s->att == ATT_NONE) {
		time_t not_after;
		char msg[256];
		if (s->listener->tls == CFG_TLS_MUTUAL &&
		    conn_peer_not_after(s->conn, &not_after) == 0 &&
		    trust_cert_expiring(not_after, time(NULL), s->listener->cert_expiry_warning_s,
					s->device, msg, sizeof msg)) {
			struct log_fields f = session_fields(s);
			log_event(LOG_WARNING, EV_CERT_EXPIRING, &f, "%s", msg);
		}
		/* The owner registers the client id (3.1.4-2: a second
		 * connection with the same one takes over, wherever the first
		 * is) and attaches the device's downlink record; the CONNECT
		 * waits in `in` for the answer (session_attached). */
		struct wmsg *m = wmsg_text(O_ATTACH, s->client_id, s->device, s->peer);
		if (!m)
			return refuse(s, v, MQTT_CONNACK_SERVER_UNAVAILABLE, "out of memory");
		m->flag = c.clean_session;
		session_post(s, m);
		s->att = ATT_WAITING;
		conn_pause_reading(s->conn);
		return OUT_RETRY;
	}
	if (s->att == ATT_WAITING)
		return OUT_RETRY;
	if (s->att == ATT_FAILED)
		return refuse(s, v, MQTT_CONNACK_SERVER_UNAVAILABLE, "out of memory");

	struct gateway *gw = s->gw;
	unsigned ka = c.keepalive;
	unsigned max = gw->cfg->gateway.max_keepalive_s;
	if (max && (ka == 0 || ka > max))
		ka = max;
	s->keepalive_ms = ka * 1000u;
	session_set_state(s, SESS_ACTIVE);
	ev_timer_stop(s->w->loop, &s->timer);
	arm_keepalive(s);
	send_connack(s, MQTT_CONNACK_ACCEPTED, s->present);
	if (s->state == SESS_CLOSED)
		return OUT_DONE; /* the send failed and said so */
	s->listener->m.connects++;
	struct log_fields f = session_fields(s);
	log_event(LOG_INFO, EV_DEVICE_CONNECTED, &f,
		  "device %s connected (client id %s, MQTT %s, keepalive %u s%s%s)", s->device,
		  s->client_id, c.protocol_level == 3 ? "3.1" : "3.1.1", ka,
		  conn_tls_cipher(s->conn) ? ", cipher " : "",
		  conn_tls_cipher(s->conn) ? conn_tls_cipher(s->conn) : "");
	return OUT_DONE;
}

void session_attached(struct session *s, bool ok, bool present)
{
	if (s->att != ATT_WAITING)
		return;
	s->att = ok ? ATT_DONE : ATT_FAILED;
	s->present = present;
	conn_resume_reading(s->conn);
	session_process_input(s); /* the CONNECT again, with the answer */
	session_input_settled(s);
}

/* After input was handled outside on_readable: an idle device keeps no
 * input buffer (READ_CHUNK) and no pre-authentication charge. */
void session_input_settled(struct session *s)
{
	if (s->state == SESS_CLOSED)
		return;
	buf_shrink_if_empty(&s->in);
	session_preauth_account(s);
}

/* The owner's answer to a SUBSCRIBE waiting in `in`: kept for
 * session_subscribe, which handles the packet again with it. */
void session_subacked(struct session *s, uint16_t pid, const uint8_t *ans, size_t len)
{
	(void)pid;
	if (!s->sub_waiting)
		return;
	s->sub_waiting = false;
	free(s->sub_answer);
	s->sub_answer = malloc(len ? len : 1);
	if (s->sub_answer)
		memcpy(s->sub_answer, ans, len);
	s->sub_answer_len = s->sub_answer ? len : 0;
	if (!s->sub_answer)
		s->sub_answer = calloc(1, 1); /* every filter refused */
	if (!s->sub_answer) {
		session_close(s, LOG_ERR, EV_DEVICE_DISCONNECTED,
			      "out of memory answering a SUBSCRIBE; connection closed");
		return;
	}
	session_resume_reading(s); /* the SUBSCRIBE again, with the answer */
}

void session_taken_over(struct session *s, const char *peer)
{
	session_close(s, LOG_NOTICE, EV_SESSION_TAKEN_OVER,
		      "client id %s connected again from %s; old connection closed", s->client_id,
		      peer);
}

static bool qos2_pending(const struct session *s, uint16_t id)
{
	for (size_t i = 0; i < s->nqos2; i++)
		if (s->qos2_ids[i] == id)
			return true;
	return false;
}


/* A PUBACK or PUBREC: its reading must be durable first. */
static void queue_ack(struct session *s, enum mqtt_type type, uint16_t id)
{
	uint8_t pkt[4];
	size_t n = mqtt_encode_ack(pkt, sizeof pkt, type, id);
	assert(n == sizeof pkt);
	(void)session_hold_reply(s, pkt, n, true);
}



static void send_ack(struct session *s, enum mqtt_type type, uint16_t id)
{
	uint8_t pkt[4];
	session_reply(s, pkt, mqtt_encode_ack(pkt, sizeof pkt, type, id));
}


/* OUT_RETRY: the packet stays in the buffer (spool full). */
static enum outcome handle_publish(struct session *s, uint8_t flags, const uint8_t *body,
				   size_t len, struct verdict *v)
{
	struct mqtt_publish p;
	const char *why = NULL;
	if (mqtt_decode_publish(flags, body, len, &p, &why) != MQTT_OK)
		return violation(v, "PUBLISH", why);
	if (p.qos == 2 && qos2_pending(s, p.packet_id)) {
		/* A resent QoS 2 PUBLISH we already took (4.3.3): ack it again,
		 * do not forward it twice. Queued, as its first PUBREC may still
		 * be waiting for the commit. */
		queue_ack(s, MQTT_PUBREC, p.packet_id);
		return OUT_DONE;
	}
	if (p.qos == 2 && s->nqos2 == QOS2_MAX)
		return violation(v, "PUBLISH", "more than 64 QoS 2 messages awaiting PUBREL; slow down");
	if (s->listener->acl &&
	    !auth_topic_allowed(s->listener->acl, s->device, p.topic.ptr, p.topic.len))
		/* MQTT 3.1.1 has no negative PUBACK: closing is the refusal. */
		return decide(v, OUT_CLOSE, LOG_WARNING, EV_ACL_DENIED,
			      "PUBLISH to \"%.*s\" is outside publish_acl of listener %s; "
			      "connection closed",
			      (int)(p.topic.len > 200 ? 200 : p.topic.len), p.topic.ptr,
			      s->listener->name);
	/* The spool is full or failing: held back at this reading (it stays
	 * in `in`), read again at NEWS_READ_DEVICES. */
	if (atomic_load_explicit(&s->gw->holding, memory_order_acquire)) {
		session_pause(s);
		return OUT_RETRY;
	}
	struct worker *w = s->w;
	if (rbatch_full(w->filling)) {
		/* Read again once the batch went to the owner. */
		s->batch_waiting = true;
		list_add(&w->batch_wait, s, BWAIT_LINK);
		conn_pause_reading(s->conn);
		return OUT_RETRY;
	}
	struct log_fields f = session_fields(s);
	if (ingest_decode(s->gw->cfg, s->device, &f, s->token, ackq_pos(&s->acks), &p,
			  w->filling) != 0) {
		if (w->filling->n == 0)
			return decide(v, OUT_CLOSE, LOG_ERR, EV_DEVICE_DISCONNECTED,
				      "out of memory for a reading of %zu bytes; connection closed",
				      p.payload_len);
		s->batch_waiting = true;
		list_add(&w->batch_wait, s, BWAIT_LINK);
		conn_pause_reading(s->conn);
		return OUT_RETRY;
	}
	/* Acknowledged only once durable: the ack waits for the commit that
	 * holds this turn's batch, and for the disk flush after it. */
	if (p.qos == 1) {
		queue_ack(s, MQTT_PUBACK, p.packet_id);
	} else if (p.qos == 2) {
		s->qos2_ids[s->nqos2++] = p.packet_id;
		queue_ack(s, MQTT_PUBREC, p.packet_id);
	}
	return OUT_DONE;
}

static enum outcome handle_pubrel(struct session *s, const uint8_t *body, size_t len,
				  struct verdict *v)
{
	uint16_t id;
	const char *why = NULL;
	if (mqtt_decode_ack(body, len, &id, &why) != MQTT_OK)
		return violation(v, "PUBREL", why);
	for (size_t i = 0; i < s->nqos2; i++) {
		if (s->qos2_ids[i] == id) {
			s->qos2_ids[i] = s->qos2_ids[--s->nqos2];
			break;
		}
	}
	send_ack(s, MQTT_PUBCOMP, id); /* also for unknown ids, 4.3.3 */
	return OUT_DONE;
}

/* Handles one complete packet. */
static enum outcome handle_packet(struct session *s, const struct mqtt_frame *fr,
				  const uint8_t *body, struct verdict *v)
{
	size_t len = fr->remaining_length;
	if (s->state == SESS_AWAIT_CONNECT && fr->type != MQTT_CONNECT)
		return violation(v, "first packet", "the first packet must be CONNECT (3.1.0-1)");
	switch (fr->type) {
	case MQTT_CONNECT:
		return handle_connect(s, fr->flags, body, len, v);
	case MQTT_PUBLISH:
		return handle_publish(s, fr->flags, body, len, v);
	case MQTT_PUBREL:
		return handle_pubrel(s, body, len, v);
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE: {
		bool unsub = fr->type == MQTT_UNSUBSCRIBE;
		bool retry = false;
		const char *why = session_subscribe(s, body, len, unsub, &retry);
		if (why)
			return violation(v, unsub ? "UNSUBSCRIBE" : "SUBSCRIBE", why);
		return retry ? OUT_RETRY : OUT_DONE;
	}
	case MQTT_PINGREQ: {
		uint8_t pkt[2];
		session_reply(s, pkt, mqtt_encode_pingresp(pkt, sizeof pkt));
		return OUT_DONE;
	}
	case MQTT_DISCONNECT:
		return decide(v, OUT_CLOSE, LOG_INFO, EV_DEVICE_DISCONNECTED, "device sent DISCONNECT");
	case MQTT_PUBACK: {
		/* For a command (downlink). One for a command that has expired
		 * or was acknowledged already is harmless: nothing to do. */
		uint16_t id;
		const char *why = NULL;
		if (mqtt_decode_ack(body, len, &id, &why) != MQTT_OK)
			return violation(v, "PUBACK", why);
		struct wmsg *m = wmsg_text(O_CMD_ACK, s->device, NULL, NULL);
		if (m)
			m->n = id;
		session_post(s, m);
		return OUT_DONE;
	}
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		/* Commands go out with QoS 0 or 1: there is no QoS 2 to ack. */
		return violation(v, "acknowledgement", "acknowledges a message never sent");
	default:
		return violation(v, "packet", "packet type not valid from a client");
	}
}

void session_process_input(struct session *s)
{
	size_t off = 0;
	struct verdict v;
	enum outcome o = OUT_DONE;
	while (carry_out(s, o, &v) && readable_now(s)) {
		/* Before CONNECT nobody is known: a connection may not make us
		 * buffer more than a CONNECT needs (max_packet_size can be 1M). */
		bool pre = s->state == SESS_AWAIT_CONNECT;
		uint32_t max = s->gw->cfg->gateway.max_packet_size;
		if (pre && max > CONNECT_MAX)
			max = CONNECT_MAX;
		struct mqtt_frame fr;
		const char *why = NULL;
		enum mqtt_result r =
			mqtt_frame_parse(s->in.data + off, s->in.len - off, max, &fr, &why);
		if (r == MQTT_INCOMPLETE)
			break;
		if (r == MQTT_E_TOO_LARGE) {
			o = pre ? violation(&v, "first packet", "larger than " CONNECT_MAX_TEXT
								" (no CONNECT is that large)")
				: violation(&v, "packet", "larger than max_packet_size");
			continue;
		}
		if (r != MQTT_OK) {
			o = violation(&v, "fixed header", why);
			continue;
		}
		size_t total = fr.header_len + fr.remaining_length;
		if (s->in.len - off < total)
			break;
		/* Over its rate: the packet waits in `in` until it is within.
		 * SUBSCRIBE and UNSUBSCRIBE count too (a flood of them costs
		 * more than one of PUBLISHes). */
		if ((fr.type == MQTT_PUBLISH || fr.type == MQTT_SUBSCRIBE ||
		     fr.type == MQTT_UNSUBSCRIBE) &&
		    s->state == SESS_ACTIVE &&
		    !session_rate_admit(s, total))
			break;
		o = handle_packet(s, &fr, s->in.data + off + fr.header_len, &v);
		if (o != OUT_RETRY) /* else kept; retried when the spool has room */
			off += total;
	}
	buf_consume(&s->in, off);
}

/* ---- conn events ---- */

static void on_up(void *owner)
{
	struct session *s = session_of(owner);
	if (s->listener->tls == CFG_TLS_MUTUAL &&
	    conn_peer_identity(s->conn, s->listener->identity, s->cert_identity,
			       sizeof s->cert_identity) != 0) {
		/* Verified but unusable certificate: refused at CONNECT with
		 * "not authorized", after this reason is logged. */
		s->cert_identity[0] = '\0';
		struct log_fields f = session_fields(s);
		log_event(LOG_WARNING, EV_IDENTITY_MISSING, &f, "%s", conn_error(s->conn));
	} else if (s->listener->tls == CFG_TLS_MUTUAL) {
		snprintf(s->device, sizeof s->device, "%s", s->cert_identity);
	}
	if (conn_is_tls(s->conn))
		atomic_fetch_add_explicit(&s->w->handshakes, 1, memory_order_relaxed);
	s->tls_slot = (int8_t)metrics_conn_opened(s->listener, conn_tls_version(s->conn));
	session_set_state(s, SESS_AWAIT_CONNECT);
	s->last_rx_ms = ev_now_ms(s->w->loop);
	ev_timer_start(s->w->loop, &s->timer, s->gw->cfg->gateway.connect_timeout_ms);
	if (conn_is_tls(s->conn) && log_enabled(LOG_DEBUG)) {
		struct log_fields f = session_fields(s);
		log_event(LOG_DEBUG, EV_TLS_ESTABLISHED, &f, "TLS up, cipher %s",
			  conn_tls_cipher(s->conn));
	}
}

/* May this pre-CONNECT session's buffer grow by a read? The first chunk
 * always may: an ordinary CONNECT fits in it, so a device is never
 * refused because others hold large partial CONNECTs (and that first
 * chunk is bounded by max_connections). Growing past it must fit under
 * max_preauth_memory, which is what many large partial CONNECTs hit. */
static bool preauth_room(struct session *s)
{
	struct gateway *gw = s->gw;
	uint64_t max = gw->cfg->gateway.max_preauth_memory;
	if (s->in.cap < READ_CHUNK || s->in.cap - s->in.len >= READ_CHUNK ||
	    atomic_load_explicit(&gw->preauth_bytes, memory_order_relaxed) + READ_CHUNK <= max)
		return true;
	gw->preauth_refusals++;
	return false;
}

static void on_readable(void *owner)
{
	struct session *s = session_of(owner);
	size_t budget = READ_BUDGET;
	while (s->state == SESS_AWAIT_CONNECT || s->state == SESS_ACTIVE) {
		if (!readable_now(s))
			return;
		if (budget == 0) {
			conn_yield_reading(s->conn);
			return;
		}
		if (s->state == SESS_AWAIT_CONNECT && !preauth_room(s)) {
			session_close(s, LOG_WARNING, EV_CONNECTION_LIMIT,
				      "connections without a CONNECT hold %zu bytes "
				      "(max_preauth_memory); connection closed",
				      atomic_load(&s->gw->preauth_bytes));
			return;
		}
		if (buf_reserve(&s->in, READ_CHUNK) != 0) {
			struct verdict v;
			(void)carry_out(s, violation(&v, "input", "buffer limit reached"), &v);
			return;
		}
		ssize_t n = conn_read(s->conn, s->in.data + s->in.len, s->in.cap - s->in.len);
		if (n > 0) {
			s->in.len += (size_t)n;
			budget = (size_t)n < budget ? budget - (size_t)n : 0;
			session_preauth_account(s);
			s->last_rx_ms = ev_now_ms(s->w->loop);
			session_process_input(s);
			continue;
		}
		if (n == 0 || conn_failed(s->conn)) {
			bool clean = n == 0;
			session_close(s, clean ? LOG_INFO : LOG_NOTICE, EV_DEVICE_DISCONNECTED,
				      "%s%s", clean ? "connection closed by peer" : "",
				      clean ? "" : conn_error(s->conn));
			return;
		}
		break; /* would block */
	}
	buf_shrink_if_empty(&s->in);
	session_preauth_account(s);
}

static void on_drained(void *owner)
{
	struct session *s = session_of(owner);
	if (s->state == SESS_CLOSING) {
		session_teardown(s);
		return;
	}
	if (s->unread) {
		s->unread = false;
		if (readable_now(s)) {
			conn_resume_reading(s->conn);
			session_process_input(s);
		}
	}
}

static void on_failed(void *owner)
{
	struct session *s = session_of(owner);
	if (s->state == SESS_HANDSHAKE) {
		s->listener->m.hs_failures[conn_fail_class(s->conn)]++;
		if (conn_is_tls(s->conn) && !conn_awaiting_proxy(s->conn))
			atomic_fetch_add_explicit(&s->w->handshakes, 1, memory_order_relaxed);
		/* Name the device the refused certificate claims to be, so that
		 * `journalctl IOTGW_DEVICE=...` finds the refusal. */
		if (s->listener->tls == CFG_TLS_MUTUAL &&
		    conn_refused_identity(s->conn, s->listener->identity, s->device,
					  sizeof s->device) != 0)
			s->device[0] = '\0';
		session_close(s, LOG_WARNING, EV_TLS_HANDSHAKE_FAILED,
			      "TLS handshake with %s on listener %s failed: %s", s->peer,
			      s->listener->name, conn_error(s->conn));
		return;
	}
	if (s->state == SESS_CLOSING) {
		session_teardown(s);
		return;
	}
	session_close(s, LOG_NOTICE, EV_DEVICE_DISCONNECTED, "%s", conn_error(s->conn));
}

static const struct conn_handler session_conn_handler = {
	.up = on_up,
	.readable = on_readable,
	.drained = on_drained,
	.failed = on_failed,
	.proxied = session_proxied,
};

struct session *session_new(struct worker *w, struct listener *l, int fd, const char *peer)
{
	struct gateway *gw = w->gw;
	struct session *s = calloc(1, sizeof *s);
	if (!s) {
		close(fd);
		return NULL;
	}
	s->magic = SESSION_MAGIC;
	s->tls_slot = -1;
	s->gw = gw;
	s->w = w;
	s->token = tokens_new(w);
	s->listener = l;
	atomic_fetch_add(&l->nconns, 1); /* keeps l (listener_close, listener_reap) */
	snprintf(s->peer, sizeof s->peer, "%s", peer);
	/* Room for the largest packet the config allows plus one read chunk. */
	buf_init(&s->in, (size_t)gw->cfg->gateway.max_packet_size + 5 + READ_CHUNK);
	ackq_init(&s->acks, ACKS_MAX);
	ev_timer_init(&s->timer, on_timer, s);
	ev_timer_init(&s->rate_timer, on_rate_timer, s);
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
	atomic_fetch_add_explicit(&w->nsessions, 1, memory_order_relaxed);
	s->state = SESS_HANDSHAKE;
	if (tokens_put(w, s->token, s) != 0) {
		close(fd);
		session_close(s, LOG_ERR, EV_ACCEPT_FAILED, "out of memory");
		return NULL;
	}
	s->conn = conn_new(w->loop, fd, l->ct, l->ctx, l->proxy, OUT_MAX, &session_conn_handler,
			   s);
	if (s->conn && conn_is_tls(s->conn))
		gateway_hs_begin(gw, s->peer);
	if (!s->conn) {
		session_close(s, LOG_ERR, EV_ACCEPT_FAILED, "cannot set up connection");
		return NULL;
	}
	if (conn_is_open(s->conn))
		on_up(s); /* plaintext: no handshake */
	else
		ev_timer_start(w->loop, &s->timer, l->handshake_timeout_ms);
	return s;
}

/* Back-pressure holds devices at their readings, not at the door: a device
 * still doing its handshake or CONNECT is served (CONNACK), and paused at
 * its first PUBLISH the spool cannot take, instead of timing out at
 * connect_timeout while the spool is full. */
void session_pause(struct session *s)
{
	if (s->paused || s->state != SESS_ACTIVE)
		return;
	s->paused = true;
	conn_pause_reading(s->conn);
}

void session_resume(struct session *s)
{
	if (!s->paused || s->share_held || s->state == SESS_CLOSED)
		return;
	s->paused = false;
	session_resume_reading(s);
}

void session_resume_reading(struct session *s)
{
	if (s->state == SESS_CLOSED || !readable_now(s))
		return; /* read again when the commit releases its acks, or it reads */
	/* Packets held back meanwhile are still in `in`: handle them now;
	 * bytes TLS already decrypted come as a readable event. */
	conn_resume_reading(s->conn);
	session_process_input(s);
	session_input_settled(s);
}
