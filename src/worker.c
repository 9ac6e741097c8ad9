/* worker: one thread's share of the devices (worker.h). */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway_int.h"
#include "iotgw/log.h"
#include "iotgw/pwcheck.h"
#include "session_int.h"
#include "tokens.h"

static void on_inbox(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct worker *w = io->arg;
	wq_woken(&w->inbox);
	(void)worker_drain(w);
}

int worker_init(struct worker *w, struct gateway *gw, unsigned index, struct ev_loop *loop,
		char *err, size_t errlen)
{
	memset(w, 0, sizeof *w);
	w->index = index;
	w->gw = gw;
	w->loop = loop;
	pthread_mutex_init(&w->mu, NULL);
	w->by_token = strmap_new();
	w->filling = rbatch_new();
	w->pwcheck = pwcheck_port_new(gw->pwcheck, loop);
	if (!w->by_token || !w->filling || !w->pwcheck) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (wq_init(&w->inbox, loop, on_inbox, w) != 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void worker_free(struct worker *w)
{
	if (!w->gw)
		return; /* never set up */
	while (w->sessions)
		session_close(w->sessions, LOG_DEBUG, EV_DEVICE_DISCONNECTED, "gateway exiting");
	pwcheck_port_free(w->pwcheck); /* before the sessions' memory goes */
	w->pwcheck = NULL;
	if (w->inbox.loop)
		wq_destroy(&w->inbox);
	rbatch_free(w->filling);
	rbatch_free(w->spare);
	w->filling = w->spare = NULL;
	strmap_free(w->by_token, NULL);
	w->by_token = NULL;
	if (w->reserve_fd >= 0)
		close(w->reserve_fd);
	w->reserve_fd = -1;
	if (w->index > 0 && w->loop) {
		ev_loop_free(w->loop); /* runs the deferred frees of its sessions */
		w->loop = NULL;
	}
	pthread_mutex_destroy(&w->mu);
}

void worker_hand_batch(struct worker *w)
{
	if (w->inflight || (w->filling->n == 0 && !w->unsealed))
		return;
	struct wmsg *m = wmsg_new(O_BATCH, 0);
	struct rbatch *next = w->spare ? w->spare : rbatch_new();
	if (!m || !next) {
		/* Out of memory: the batch stays and is handed next turn. */
		wmsg_free(m);
		if (next != w->spare)
			rbatch_free(next);
		return;
	}
	w->spare = NULL;
	/* The replies held this turn wait for this batch's commit. */
	bool replies = false;
	struct session *s, *nx;
	for (s = w->unsealed; s; s = nx) {
		nx = s->await_commit.next;
		if (!session_seal(s))
			continue; /* no segment free: sealed with a later batch */
		replies = true;
	}
	w->filling->replies = replies;
	m->batch = w->filling;
	w->filling = next;
	w->inflight = true;
	m->worker = w->index;
	wq_post(&w->gw->owner_inbox, m);
	/* Devices that waited for room in a batch: read again. */
	while ((s = w->batch_wait)) {
		list_del(&w->batch_wait, s, BWAIT_LINK);
		s->batch_waiting = false;
		session_resume_reading(s);
	}
}

static void handle(struct worker *w, struct wmsg *m)
{
	if (m->kind == W_NEWS) {
		session_news(w, &m->news);
		return;
	}
	struct session *s = tokens_get(w, m->token);
	if (!s)
		return; /* it closed meanwhile */
	switch (m->kind) {
	case W_ATTACHED:
		session_attached(s, m->n == 0, m->flag);
		break;
	case W_SUBACK:
		session_subacked(s, (uint16_t)m->n, m->data, m->len);
		break;
	case W_TAKEOVER:
		session_taken_over(s, wmsg_str(m, 0));
		break;
	case W_DELIVER:
		(void)session_deliver(s, m->data, m->len);
		break;
	default:
		break;
	}
}

bool worker_drain(struct worker *w)
{
	struct wmsg *m = wq_take(&w->inbox);
	bool any = m != NULL;
	while (m) {
		struct wmsg *next = m->next;
		handle(w, m);
		wmsg_free(m);
		m = next;
	}
	return any;
}

/* ---- threads and parking ---- */

/* Between two turns of a worker thread's loop: its batch to the owner,
 * then a park or a stop the owner asked for. Nothing of the loop's last
 * batch of events is in flight here, so the owner may change what the
 * worker's loop watches while it waits. */
static void before_sleep(struct ev_loop *loop, void *arg)
{
	struct worker *w = arg;
	struct gateway *gw = w->gw;
	/* What was posted before the thread's first turn, or without a wake. */
	(void)worker_drain(w);
	worker_hand_batch(w);
	if (atomic_load_explicit(&gw->park.requested, memory_order_acquire)) {
		pthread_mutex_lock(&gw->park.mu);
		if (atomic_load(&gw->park.requested)) {
			gw->park.parked++;
			pthread_cond_broadcast(&gw->park.cv);
			while (atomic_load(&gw->park.requested))
				pthread_cond_wait(&gw->park.cv, &gw->park.mu);
			gw->park.parked--;
		}
		pthread_mutex_unlock(&gw->park.mu);
		/* What the owner posted meanwhile (a session it closed). */
		(void)worker_drain(w);
	}
	if (atomic_load_explicit(&gw->park.stop, memory_order_acquire))
		ev_stop(loop);
}

static void *thread_main(void *arg)
{
	struct worker *w = arg;
	ev_set_before_sleep(w->loop, before_sleep, w);
	if (ev_run(w->loop) != 0)
		log_event(LOG_CRIT, EV_LOOP_FAILED, NULL, "worker %u: epoll_wait: %s", w->index,
			  strerror(errno));
	return NULL;
}

int workers_start(struct gateway *gw, char *err, size_t errlen)
{
	for (unsigned i = 1; i < gw->nworkers; i++) {
		struct worker *w = &gw->workers[i];
		int rc = pthread_create(&w->tid, NULL, thread_main, w);
		if (rc != 0) {
			snprintf(err, errlen, "cannot start worker thread %u: %s", i, strerror(rc));
			return -1;
		}
		w->started = true;
		/* Posts from now on wake it, the owner's included. */
		wq_set_home(&w->inbox, w->tid);
		char name[16]; /* for top -H and perf */
		snprintf(name, sizeof name, "iotgw-w%u", i % 100u);
		(void)pthread_setname_np(w->tid, name);
	}
	return 0;
}

void workers_stop(struct gateway *gw)
{
	atomic_store(&gw->park.stop, true);
	for (unsigned i = 1; i < gw->nworkers; i++)
		if (gw->workers[i].started)
			wq_wake(&gw->workers[i].inbox);
	for (unsigned i = 1; i < gw->nworkers; i++) {
		struct worker *w = &gw->workers[i];
		if (w->started)
			pthread_join(w->tid, NULL);
		w->started = false;
	}
}

static unsigned running(const struct gateway *gw)
{
	unsigned n = 0;
	for (unsigned i = 1; i < gw->nworkers; i++)
		n += gw->workers[i].started;
	return n;
}

void workers_park(struct gateway *gw)
{
	unsigned n = running(gw);
	if (n == 0)
		return;
	pthread_mutex_lock(&gw->park.mu);
	atomic_store(&gw->park.requested, true);
	pthread_mutex_unlock(&gw->park.mu);
	for (unsigned i = 1; i < gw->nworkers; i++)
		if (gw->workers[i].started)
			wq_wake(&gw->workers[i].inbox);
	pthread_mutex_lock(&gw->park.mu);
	while (gw->park.parked < n)
		pthread_cond_wait(&gw->park.cv, &gw->park.mu);
	pthread_mutex_unlock(&gw->park.mu);
}

void workers_unpark(struct gateway *gw)
{
	if (running(gw) == 0)
		return;
	pthread_mutex_lock(&gw->park.mu);
	atomic_store(&gw->park.requested, false);
	pthread_cond_broadcast(&gw->park.cv);
	pthread_mutex_unlock(&gw->park.mu);
}
