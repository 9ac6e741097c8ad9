/* session_news: what happens elsewhere in the gateway means for the
 * devices. The spool's progress (session_news, ingest's news hook, which
 * ingest_turn alone calls): a commit makes the held acks committed; a finished
 * disk flush (or none needed) sends them and reads again the devices held
 * for them; a full or failing spool holds every device back, and room
 * reads them again. A reload's new CA or CRL, or a balancer no longer
 * trusted (session_recheck). */
#include <netdb.h>
#include <sys/socket.h>

#include "iotgw/cidr.h"
#include "session_int.h"

static void acks_committed(struct gateway *gw)
{
	struct session *s;
	while ((s = gw->awaiting_commit)) {
		list_del(&gw->awaiting_commit, s, COMMIT_LINK);
		ackq_commit(&s->acks);
		list_add(&gw->awaiting_flush, s, FLUSH_LINK);
	}
}

static void flush_started(struct gateway *gw)
{
	for (struct session *s = gw->awaiting_flush; s; s = s->await_flush.next)
		ackq_flush_started(&s->acks);
}

static void release_acks(struct gateway *gw, bool all_committed)
{
	/* First every session's acks go out, with no device input read (so
	 * nothing re-enters the lists being walked); then the sessions held
	 * for their acks are read again, queuing acks for the next commit. */
	struct session *held = NULL, *s, *next;
	uint64_t now_us = ev_clock_us();
	for (s = gw->awaiting_flush; s; s = next) {
		next = s->await_flush.next;
		size_t n;
		const uint8_t *p = ackq_front(&s->acks, all_committed, &n);
		if (n && s->state == SESS_ACTIVE)
			(void)session_send(s, p, n);
		ackq_release(&s->acks, n, now_us, &gw->m.puback);
		if (!ackq_committed(&s->acks))
			list_del(&gw->awaiting_flush, s, FLUSH_LINK);
		if (s->held && ackq_len(&s->acks) < ACKS_HOLD) {
			s->held = false;
			/* Reading may set `held` again (a burst of more than
			 * ACKS_HOLD pipelined messages): that hold belongs to
			 * the next commit and must survive. */
			if (s->state == SESS_ACTIVE && !s->paused)
				list_add(&held, s, RESUME_LINK);
		}
	}
	while ((s = held)) {
		list_del(&held, s, RESUME_LINK);
		if (s->state != SESS_ACTIVE || s->paused || s->held || s->unread)
			continue;
		/* Packets already in `in` are ours to handle; what the socket
		 * or TLS still holds, conn reports as readable. */
		conn_resume_reading(s->conn);
		session_process_input(s);
	}
}

/* Moves the sessions from the head up to and including last to the tail:
 * the next round starts with the one after it. */
static void rotate_after(struct gateway *gw, struct session *last)
{
	struct session *first = gw->sessions, *tail = last;
	if (!last->next || first == NULL)
		return;
	while (tail->next)
		tail = tail->next;
	gw->sessions = last->next;
	gw->sessions->prev = NULL;
	last->next = NULL;
	tail->next = first;
	first->prev = tail;
}

/* Resumes the held devices until one fills the spool again, in turns:
 * the next round starts after the device this one stopped at, so with a
 * spool at its limit every device gets its share of the room the
 * upstream frees, not the first ones in the list every time. */
static void read_devices(struct gateway *gw)
{
	struct session *s = gw->sessions;
	while (s && !ingest_holding(gw->ingest)) {
		session_resume(s);
		if (ingest_holding(gw->ingest)) {
			if (s->state != SESS_CLOSED)
				rotate_after(gw, s);
			return;
		}
		/* Still valid if s closed meanwhile: its memory goes after
		 * this loop turn, and unlinking leaves its own next alone. */
		s = s->next;
	}
}

/* Devices held over their share whose share has room again are read
 * (unless the spool as a whole holds everyone back). */
static void read_share_held(struct gateway *gw)
{
	struct session *s = gw->share_held, *next;
	for (; s; s = next) {
		next = s->share.next;
		if (!ingest_share_room(gw->ingest, s->device))
			continue;
		session_share_release(s);
		if (!ingest_holding(gw->ingest))
			session_resume(s); /* may hold it again, or close it: next is kept */
	}
}

void session_news(struct gateway *gw, enum ingest_news n)
{
	switch (n) {
	case NEWS_COMMITTED:
		acks_committed(gw);
		break;
	case NEWS_FLUSH_STARTED:
		flush_started(gw);
		break;
	case NEWS_FLUSHED:
	case NEWS_ALL_DURABLE:
		release_acks(gw, n == NEWS_ALL_DURABLE);
		break;
	case NEWS_HOLD_DEVICES:
		for (struct session *s = gw->sessions; s; s = s->next)
			session_pause(s);
		break;
	case NEWS_READ_DEVICES:
		read_devices(gw);
		break;
	case NEWS_SHARE_ROOM:
		read_share_held(gw);
		break;
	}
}

static void recheck_cert(struct session *s)
{
	const struct listener *l = s->listener;
	if (l->tls != CFG_TLS_MUTUAL || !l->disconnect_revoked || !l->ctx)
		return;
	char why[256];
	if (conn_recheck_peer(s->conn, l->ctx, why, sizeof why) != 0)
		session_close(s, LOG_WARNING, EV_CERT_REVOKED,
			      "certificate no longer accepted after reload: %s; connection closed",
			      why);
}

/* A balancer taken out of proxy_from could otherwise keep claiming any
 * address (and, with ssl-cn, any device) on the connections it has open.
 * The connection's own TCP peer is the balancer, whatever its header said. */
static void recheck_balancer(struct session *s)
{
	struct listener *l = s->listener;
	struct sockaddr_storage ss;
	if (l->proxy == CFG_PROXY_OFF || conn_socket_peer(s->conn, &ss) != 0 ||
	    cidr_contains(l->proxy_from, l->nproxy_from, (const struct sockaddr *)&ss))
		return;
	char host[64] = "?";
	(void)getnameinfo((const struct sockaddr *)&ss, sizeof ss, host, sizeof host, NULL, 0,
			  NI_NUMERICHOST);
	l->m.proxy_refusals[PROXY_REFUSED_UNTRUSTED]++;
	session_close(s, LOG_WARNING, EV_PROXY_UNTRUSTED,
		      "balancer %s is no longer in proxy_from of listener %s after reload; "
		      "connection closed",
		      host, l->name);
}

void session_recheck(struct session *s)
{
	if (s->state != SESS_AWAIT_CONNECT && s->state != SESS_ACTIVE)
		return;
	recheck_balancer(s);
	if (s->state != SESS_CLOSED)
		recheck_cert(s);
}

struct session *session_next(const struct session *s)
{
	return s->next;
}
