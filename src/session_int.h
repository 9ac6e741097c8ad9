/* session_int: one device session as the files of the session module see
 * it. Not a public interface: the rest of the daemon holds a struct
 * session * only through gateway_int.h. Calls go one way, down:
 *   session_news.c (what durability news does to sessions)
 *     -> session.c (the MQTT state machine, packet handlers, timers)
 *       -> session_sub.c, session_rate.c, session_proxy.c (one concern each)
 *         -> session_io.c (state changes, replies, closing)
 * A lower file never calls a higher one; what must come back up (a rate
 * timer, a password check's answer) is a callback session.c registers. */
#ifndef IOTGW_SESSION_INT_H
#define IOTGW_SESSION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway_int.h"
#include "iotgw/ackq.h"
#include "iotgw/tbucket.h"
#include "trust.h"
#include "worker.h"

#define QOS2_MAX 64
/* A device that sends this many bytes of acks' worth of messages in one loop
 * iteration is not read further until the commit releases them: it bounds
 * the held acks and keeps one fast device from starving the others. */
#define ACKS_HOLD 4096
#define ACKS_MAX (ACKS_HOLD + 1024) /* room for a SUBACK behind the last ack */

/* A session's membership of one of its worker's lists. */
struct sess_link {
	struct session *prev, *next;
	bool on;
};

enum sess_state { SESS_HANDSHAKE, SESS_AWAIT_CONNECT, SESS_ACTIVE, SESS_CLOSING, SESS_CLOSED };

/* Its CONNECT's way through the owner (registry, downlink): not yet asked,
 * asked (the CONNECT waits in `in`), answered. */
enum sess_attach { ATT_NONE, ATT_WAITING, ATT_DONE, ATT_FAILED };

struct session {
	uint32_t magic;
	struct session *prev, *next; /* the worker's sessions */
	struct gateway *gw;
	struct worker *w; /* the worker that owns it, for its whole life */
	uint64_t token;   /* its name in messages (ingest.h, TOKEN_WORKER) */
	struct listener *listener;
	struct conn *conn;
	enum sess_state state;
	struct ev_timer timer;
	struct buf in;
	uint64_t last_rx_ms;
	unsigned keepalive_ms; /* 0 = none */
	bool paused;
	/* Attached at the owner (its client id registered, its downlink
	 * record taken): detached when it ends. */
	enum sess_attach att;
	bool present; /* the answer's session present flag, for the CONNACK */
	char *client_id;
	char cert_identity[IOTGW_DEVICE_MAX + 1]; /* from the client certificate */
	char device[IOTGW_DEVICE_MAX + 1];
	char peer[64];
	uint16_t qos2_ids[QOS2_MAX]; /* QoS 2 PUBLISHes awaiting PUBREL (4.3.3) */
	size_t nqos2;
	/* PUBACK/PUBREC packets held until their readings are durable, and
	 * any reply behind them, in order (ackq.h). With replies not sealed
	 * yet the session is on w->unsealed (await_commit); with sealed ones
	 * not yet released on w->sealed (await_flush). */
	struct ackq acks;
	struct sess_link await_commit, await_flush;
	struct sess_link resume; /* on release_acks' list to read again */
	/* Not read because its device is over its share of the spool: on
	 * w->share_held until the owner stages its held readings. */
	struct sess_link share;
	bool share_held;
	/* Not read until the worker has room in a new batch: on w->batch_wait. */
	struct sess_link bwait;
	bool batch_waiting;
	/* Its SUBSCRIBE's way through the owner (the downlink): asked, and the
	 * answer (return code and reason per filter) once it came. */
	bool sub_waiting;
	uint8_t *sub_answer;
	size_t sub_answer_len;
	bool held; /* not read until its acks go out (ACKS_HOLD) */
	/* Not read until it reads its acknowledgements: more than UNREAD_MAX
	 * bytes of replies it has not taken wait in its output buffer. */
	bool unread;
	int8_t tls_slot; /* counted in listener->m.conns[], -1 before that */
	/* Its password check on the workers (pwcheck), and the result: the
	 * CONNECT stays in `in` and is handled again with it. */
	struct pwcheck_job *pw_job;
	enum trust_pw pw;
	struct dl_device *dl_dev; /* its downlink record while active */
	/* Its listener's max_message_rate and max_byte_rate (session_rate.c):
	 * over them it is not read (throttled) until rate_timer fires. */
	struct tbucket msg_rate, byte_rate;
	struct ev_timer rate_timer;
	bool throttled;
	bool rate_episode; /* logged once until it is back within its rate */
	size_t preauth; /* bytes counted in gw->preauth_bytes (before CONNECT) */
};

/* The gateway's lists of sessions awaiting a commit or a flush, and the
 * release's list of sessions to read again: intrusive, one link each. */
#define COMMIT_LINK offsetof(struct session, await_commit)
#define FLUSH_LINK offsetof(struct session, await_flush)
#define RESUME_LINK offsetof(struct session, resume)
#define SHARE_LINK offsetof(struct session, share)
#define BWAIT_LINK offsetof(struct session, bwait)

static inline struct sess_link *link_of(struct session *s, size_t off)
{
	return (struct sess_link *)(void *)((char *)s + off);
}

static inline void list_add(struct session **head, struct session *s, size_t off)
{
	struct sess_link *l = link_of(s, off);
	if (l->on)
		return;
	l->on = true;
	l->prev = NULL;
	l->next = *head;
	if (l->next)
		link_of(l->next, off)->prev = s;
	*head = s;
}

static inline void list_del(struct session **head, struct session *s, size_t off)
{
	struct sess_link *l = link_of(s, off);
	if (!l->on)
		return;
	if (l->prev)
		link_of(l->prev, off)->next = l->next;
	else
		*head = l->next;
	if (l->next)
		link_of(l->next, off)->prev = l->prev;
	*l = (struct sess_link){0};
}

/* session_sub.c: SUBSCRIBE and UNSUBSCRIBE (the SUBACK or UNSUBACK goes
 * out through session_reply); a reason when the packet is malformed, and
 * in *retry whether the packet waits for the owner's answer. */
const char *session_subscribe(struct session *s, const uint8_t *body, size_t len, bool unsub,
			      bool *retry);


/* session_rate.c: may s handle a PUBLISH of `bytes` now? false: it is over
 * its rate and is not read until it is back within it (or it was closed:
 * rate_limit_action = disconnect). */
bool session_rate_admit(struct session *s, size_t bytes);

/* session_proxy.c: what the PROXY protocol header does to a session (the
 * conn handler's proxied), and no header within handshake_timeout. */
bool session_proxied(void *owner, const struct conn_proxied *p);
void session_proxy_timeout(struct session *s);

/* session_io.c */
struct verdict;
void session_set_state(struct session *s, enum sess_state next);
/* Counts s's input buffer in gw->preauth_bytes while s has no CONNECT. */
void session_preauth_account(struct session *s);
int session_send(struct session *s, const uint8_t *p, size_t n); /* closes on failure */
/* Holds a reply until the commit in progress succeeded (is_ack: a PUBACK
 * or PUBREC for a PUBLISH read in this iteration); -1: closed. */
int session_hold_reply(struct session *s, const uint8_t *pkt, size_t n, bool is_ack);
/* A reply in the order packets came in: behind held acks, or at once. */
void session_reply(struct session *s, const uint8_t *p, size_t n);
void session_emit(struct session *s, const struct verdict *v); /* its log line */
void session_teardown(struct session *s); /* without logging: the caller did */
/* s's device is over its share of the spool: on gw->share_held (counted
 * in nshare_held) until released; session_resume leaves it paused
 * meanwhile. */
void session_share_hold(struct session *s);
void session_share_release(struct session *s);
/* Seals the replies held since the last batch (worker_hand_batch): they
 * wait for that batch's commit. false: not sealed yet (no segment free). */
bool session_seal(struct session *s);
/* A message about s to the owner. */
void session_post(struct session *s, struct wmsg *m);

/* The log fields that name s: device, peer, listener, TLS version. */
static inline struct log_fields session_fields(const struct session *s)
{
	return (struct log_fields){
		.device = s->device[0] ? s->device : NULL,
		.peer = s->peer,
		.listener = s->listener->name,
		.tls_version = s->conn ? conn_tls_version(s->conn) : NULL,
	};
}

/* session.c: the owner's answers (worker.c hands them over). */
void session_attached(struct session *s, bool ok, bool present);
void session_taken_over(struct session *s, const char *peer);
void session_subacked(struct session *s, uint16_t pid, const uint8_t *answer, size_t len);
/* session_news.c: ingest's news for the worker's sessions. */
void session_news(struct worker *w, const struct ingest_news *n);

/* session.c, for session_news.c */
void session_process_input(struct session *s); /* the packets already in `in` */
void session_input_settled(struct session *s); /* `in` freed if empty, after handling */
void session_pause(struct session *s);
/* Reads s again unless it is held over its share (session_share_hold). */
void session_resume(struct session *s);
/* Reads again if nothing else holds s back (paused, held, unread, throttled). */
void session_resume_reading(struct session *s);

#endif
