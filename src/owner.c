/* owner: the main thread's side of the workers' messages (worker.h, wq.h).
 *
 * The owner keeps what must have one keeper whatever thread a device is
 * on: the registry of client ids (a second connection with a client id
 * takes over, on any worker), the downlink (a device's subscriptions and
 * commands outlive its connection), and ingest (the spool and the
 * per-device seq). It drains the workers' messages once per turn, in the
 * order each worker posted them, and answers through the workers' inboxes:
 * never by calling session code, which only the session's worker runs. */
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"
#include "iotgw/downlink.h"
#include "iotgw/log.h"
#include "worker.h"

/* Posts m to worker index, or drops it when there is none. */
static void to_worker(struct gateway *gw, unsigned index, struct wmsg *m)
{
	if (!m)
		return; /* out of memory: the session hears nothing; its timers end it */
	if (index >= gw->nworkers) {
		wmsg_free(m);
		return;
	}
	wq_post(&gw->workers[index].inbox, m);
}

static void answer(struct gateway *gw, enum wmsg_kind kind, uint64_t token, uint64_t n,
		   bool flag)
{
	struct wmsg *m = wmsg_new(kind, 0);
	if (m) {
		m->token = token;
		m->n = n;
		m->flag = flag;
	}
	to_worker(gw, TOKEN_WORKER(token), m);
}

static void *token_ptr(uint64_t token)
{
	return (void *)(uintptr_t)token;
}

static void on_attach(struct gateway *gw, const struct wmsg *m)
{
	const char *client_id = wmsg_str(m, 0), *device = wmsg_str(m, 1), *peer = wmsg_str(m, 2);
	uint64_t old = 0;
	if (gateway_registry_claim(gw, client_id, m->token, &old) != 0) {
		answer(gw, W_ATTACHED, m->token, 1, false);
		return;
	}
	if (old && old != m->token) {
		/* 3.1.4-2: the first connection is closed by its own worker. */
		struct wmsg *t = wmsg_text(W_TAKEOVER, peer, NULL, NULL);
		if (t)
			t->token = old;
		to_worker(gw, TOKEN_WORKER(old), t);
	}
	ingest_device_seen(gw->ingest, device);
	bool present = false;
	(void)downlink_attach(gw->dl, device, m->flag, token_ptr(m->token), &present);
	answer(gw, W_ATTACHED, m->token, 0, present);
}

static void on_detach(struct gateway *gw, const struct wmsg *m)
{
	const char *client_id = wmsg_str(m, 0), *device = wmsg_str(m, 1);
	gateway_registry_release(gw, client_id, m->token);
	struct dl_device *d = downlink_of(gw->dl, device, token_ptr(m->token));
	downlink_detach(gw->dl, d, token_ptr(m->token));
}

/* The filters of an O_SUBSCRIBE or O_UNSUBSCRIBE (session_sub.c wrote
 * them): fn for each, with its QoS and whether the ACL allowed it. */
static void each_filter(struct gateway *gw, const struct wmsg *m, struct dl_device *d,
			void (*fn)(struct gateway *, struct dl_device *, const char *, size_t,
				   uint8_t, bool, void *),
			void *arg)
{
	size_t at = strlen((const char *)m->data) + 1;
	while (at + 4 <= m->len) {
		uint8_t qos = m->data[at], allowed = m->data[at + 1];
		size_t len = (size_t)m->data[at + 2] << 8 | m->data[at + 3];
		at += 4;
		if (at + len > m->len)
			break;
		fn(gw, d, (const char *)m->data + at, len, qos, allowed, arg);
		at += len;
	}
}

struct suback {
	uint8_t *out;
	size_t n;
};

static void subscribe_one(struct gateway *gw, struct dl_device *d, const char *f, size_t len,
			  uint8_t qos, bool allowed, void *arg)
{
	struct suback *a = arg;
	uint8_t code = 0x80, why = SUB_TOO_MANY;
	if (!downlink_subscription(gw->dl))
		why = SUB_NO_DOWNLINK;
	else if (!allowed)
		why = SUB_ACL;
	else if ((code = downlink_subscribe(gw->dl, d, f, len, qos)) != 0x80)
		why = SUB_GRANTED;
	a->out[2 * a->n] = code;
	a->out[2 * a->n + 1] = why;
	a->n++;
}

static void on_subscribe(struct gateway *gw, const struct wmsg *m)
{
	struct dl_device *d = downlink_of(gw->dl, (const char *)m->data, token_ptr(m->token));
	struct wmsg *r = wmsg_new(W_SUBACK, m->len); /* 2 bytes a filter: enough */
	if (!r)
		return; /* the session waits; its keepalive or the device ends it */
	struct suback a = {r->data, 0};
	each_filter(gw, m, d, subscribe_one, &a);
	r->len = 2 * a.n;
	r->token = m->token;
	r->n = m->n;
	to_worker(gw, TOKEN_WORKER(m->token), r);
}

static void unsubscribe_one(struct gateway *gw, struct dl_device *d, const char *f, size_t len,
			    uint8_t qos, bool allowed, void *arg)
{
	(void)qos;
	(void)allowed;
	(void)arg;
	downlink_unsubscribe(gw->dl, d, f, len);
}

static void handle(struct gateway *gw, struct wmsg *m)
{
	switch (m->kind) {
	case O_BATCH:
		ingest_take(gw->ingest, m->worker, m->batch);
		m->batch = NULL;
		break;
	case O_ATTACH:
		on_attach(gw, m);
		break;
	case O_DETACH:
		on_detach(gw, m);
		break;
	case O_SUBSCRIBE:
		on_subscribe(gw, m);
		break;
	case O_UNSUBSCRIBE:
		each_filter(gw, m,
			    downlink_of(gw->dl, (const char *)m->data, token_ptr(m->token)),
			    unsubscribe_one, NULL);
		break;
	case O_CMD_ACK: {
		/* For a command; one that expired or was acknowledged already
		 * is harmless: nothing to do. */
		struct dl_device *d = downlink_of(gw->dl, wmsg_str(m, 0), token_ptr(m->token));
		(void)downlink_puback(gw->dl, d, (uint16_t)m->n);
		break;
	}
	default:
		break;
	}
}

void owner_drain(struct gateway *gw)
{
	struct wmsg *m = wq_take(&gw->owner_inbox);
	while (m) {
		struct wmsg *next = m->next;
		handle(gw, m);
		rbatch_free(m->batch);
		wmsg_free(m);
		m = next;
	}
}

static void on_inbox(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct gateway *gw = io->arg;
	wq_woken(&gw->owner_inbox);
	/* Handled in the turn's before-sleep hook (gateway.c), with the
	 * commit: waking is enough. */
}

int owner_init(struct gateway *gw)
{
	return wq_init(&gw->owner_inbox, gw->loop, on_inbox, gw);
}

void owner_free(struct gateway *gw)
{
	if (gw->owner_inbox.loop)
		wq_destroy(&gw->owner_inbox);
}

/* One worker's copy of a news item (its waits copied along); quiet: do not
 * wake it for this one. */
static void news_to(struct gateway *gw, unsigned w, const struct ingest_news *n, bool quiet)
{
	size_t wl = n->nwaits * sizeof *n->waits;
	struct wmsg *m = wmsg_new(W_NEWS, wl);
	if (!m) {
		/* Losing a commit's news would hold its acks for ever, or
		 * release them early: exit so that devices re-send. */
		log_event(LOG_CRIT, EV_LOOP_FAILED, NULL,
			  "out of memory telling worker %u about the spool; exiting so that "
			  "devices re-send what was not acknowledged",
			  w);
		abort();
	}
	m->news = *n;
	if (wl) {
		memcpy(m->data, n->waits, wl);
		m->news.waits = (const struct ingest_wait *)(const void *)m->data;
	}
	if (quiet && w < gw->nworkers)
		wq_post_quiet(&gw->workers[w].inbox, m);
	else
		to_worker(gw, w, m);
}

void owner_news(void *arg, const struct ingest_news *n)
{
	struct gateway *gw = arg;
	switch (n->kind) {
	case NEWS_HOLD_DEVICES:
	case NEWS_READ_DEVICES:
		atomic_store_explicit(&gw->holding, n->kind == NEWS_HOLD_DEVICES,
				      memory_order_release);
		for (unsigned w = 0; w < gw->nworkers; w++)
			news_to(gw, w, n, false);
		break;
	case NEWS_DURABLE:
		/* Only to the workers whose acks wait for a commit not yet
		 * known durable there: an idle worker is not woken per commit. */
		for (unsigned w = 0; w < gw->nworkers; w++) {
			struct worker *wk = &gw->workers[w];
			if (wk->awaits_commit > wk->told_durable) {
				wk->told_durable = n->n;
				news_to(gw, w, n, false);
			}
		}
		break;
	case NEWS_COMMITTED:
	case NEWS_SHARE_COMMITTED: {
		if (n->worker >= gw->nworkers)
			break;
		struct worker *wk = &gw->workers[n->worker];
		/* A commit the worker's replies wait for, not yet durable there: the
		 * NEWS_DURABLE that covers it wakes the worker (one wake a batch,
		 * not two); the worker also takes it at the start of its next turn. */
		bool quiet = n->kind == NEWS_COMMITTED && n->durable_follows &&
			     n->n > wk->told_durable;
		if (n->n > wk->awaits_commit)
			wk->awaits_commit = n->n;
		news_to(gw, n->worker, n, quiet);
		break;
	}
	case NEWS_SHARE_HOLD:
		news_to(gw, n->worker, n, false);
		break;
	}
}

int owner_deliver(void *arg, void *session, const uint8_t *pkt, size_t n)
{
	struct gateway *gw = arg;
	uint64_t token = (uint64_t)(uintptr_t)session;
	struct wmsg *m = wmsg_new(W_DELIVER, n);
	if (!m)
		return -1;
	memcpy(m->data, pkt, n);
	m->token = token;
	/* Written by the session's worker in its turn; a session that closed
	 * meanwhile drops it, and the device has the command again at its
	 * next connection (unacknowledged QoS 1), as if it had been lost on
	 * the way. */
	to_worker(gw, TOKEN_WORKER(token), m);
	return 0;
}
