/* session_news: what happens elsewhere in the gateway means for a worker's
 * devices. Ingest's news (posted by the owner, acted on here in the
 * worker's own turn): the commit that holds the worker's batch tags the
 * replies sealed with it; the durable commit sends what it covers and reads
 * again the devices held for their acks; a full or failing spool holds
 * every device back, and room reads them again; a device over its share is
 * held, and read again once its held readings are staged. A reload's new
 * CA or CRL, or a balancer no longer trusted (session_recheck). */
#include <netdb.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "iotgw/cidr.h"
#include "session_int.h"
#include "tokens.h"

/* The position from which token's acks wait, or UINT64_MAX. */
static uint64_t wait_of(const struct ingest_news *n, uint64_t token)
{
	size_t lo = 0, hi = n->nwaits;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (n->waits[mid].token < token)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n->nwaits && n->waits[lo].token == token ? n->waits[lo].pos : UINT64_MAX;
}

static void committed(struct worker *w, const struct ingest_news *n)
{
	for (struct session *s = w->sealed; s; s = s->await_flush.next)
		ackq_commit_pending(&s->acks, n->n, n->nwaits ? wait_of(n, s->token) : UINT64_MAX);
	if (!n->done)
		return;
	w->inflight = false;
	if (n->batch) {
		rbatch_reset(n->batch);
		if (w->spare)
			rbatch_free(n->batch);
		else
			w->spare = n->batch;
	}
}

static void release_acks(struct worker *w)
{
	/* First every session's acks go out, with no device input read (so
	 * nothing re-enters the lists being walked); then the sessions held
	 * for their acks are read again, queuing acks for the next batch. */
	struct session *held = NULL, *s, *next;
	uint64_t now_us = ev_clock_us();
	pthread_mutex_lock(&w->mu);
	for (s = w->sealed; s; s = next) {
		next = s->await_flush.next;
		size_t n;
		const uint8_t *p = ackq_front(&s->acks, w->durable, &n);
		if (n == 0)
			continue;
		if (s->state == SESS_ACTIVE)
			(void)session_send(s, p, n);
		ackq_release(&s->acks, n, now_us, &w->puback);
		if (!ackq_sealed(&s->acks))
			list_del(&w->sealed, s, FLUSH_LINK);
		if (s->held && ackq_len(&s->acks) < ACKS_HOLD) {
			s->held = false;
			/* Reading may set `held` again (a burst of more than
			 * ACKS_HOLD pipelined messages): that hold belongs to
			 * the next batch and must survive. */
			if (s->state == SESS_ACTIVE && !s->paused)
				list_add(&held, s, RESUME_LINK);
		}
	}
	pthread_mutex_unlock(&w->mu);
	while ((s = held)) {
		list_del(&held, s, RESUME_LINK);
		if (s->state != SESS_ACTIVE || s->paused || s->held || s->unread)
			continue;
		/* Packets already in `in` are ours to handle; what the socket
		 * or TLS still holds, conn reports as readable. */
		session_resume_reading(s);
	}
}

/* Moves the sessions from the head up to and including last to the tail:
 * the next round starts with the one after it. */
static void rotate_after(struct worker *w, struct session *last)
{
	struct session *first = w->sessions, *tail = last;
	if (!last->next || first == NULL)
		return;
	while (tail->next)
		tail = tail->next;
	w->sessions = last->next;
	w->sessions->prev = NULL;
	last->next = NULL;
	tail->next = first;
	first->prev = tail;
}

static bool holding(const struct worker *w)
{
	return atomic_load_explicit(&w->gw->holding, memory_order_acquire);
}

/* Resumes the held devices until one meets a full spool again, in turns:
 * the next round starts after the device this one stopped at, so with a
 * spool at its limit every device gets its share of the room the
 * upstream frees, not the first ones in the list every time. */
static void read_devices(struct worker *w)
{
	struct session *s = w->sessions;
	while (s && !holding(w)) {
		session_resume(s);
		if (holding(w)) {
			if (s->state != SESS_CLOSED)
				rotate_after(w, s);
			return;
		}
		/* Still valid if s closed meanwhile: its memory goes after
		 * this loop turn, and unlinking leaves its own next alone. */
		s = s->next;
	}
}

void session_news(struct worker *w, const struct ingest_news *n)
{
	struct session *s;
	switch (n->kind) {
	case NEWS_COMMITTED:
		committed(w, n);
		release_acks(w);
		break;
	case NEWS_DURABLE:
		if (n->n > w->durable)
			w->durable = n->n;
		release_acks(w);
		break;
	case NEWS_HOLD_DEVICES:
		for (s = w->sessions; s; s = s->next)
			session_pause(s);
		break;
	case NEWS_READ_DEVICES:
		read_devices(w);
		break;
	case NEWS_SHARE_HOLD:
		if (!(s = tokens_get(w, n->token)))
			break;
		ackq_hold(&s->acks, n->n);
		session_share_hold(s);
		session_pause(s);
		break;
	case NEWS_SHARE_COMMITTED:
		if (!(s = tokens_get(w, n->token)))
			break;
		ackq_commit_held(&s->acks, n->n, n->upto);
		if (n->upto == UINT64_MAX) {
			session_share_release(s);
			if (!holding(w))
				session_resume(s);
		}
		release_acks(w);
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
