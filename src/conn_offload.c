/* conn_offload: TLS handshakes on more than one core ([gateway] threads).
 *
 * A full mutual-TLS handshake costs about a millisecond of CPU (key
 * exchange, signature, the device's chain verified), everything a device
 * does afterwards a few microseconds per reading. So the minute after a
 * restart, when every device of a site reconnects at once, is bound by
 * handshakes, and they are what this file spreads over threads; everything
 * else (MQTT, sessions, the spool, the upstream) stays with the loop
 * thread, which keeps one owner for every rule about devices.
 *
 * The loop reads a connection's PROXY header and its ClientHello itself
 * (cheap, and where max_handshakes and its eviction of stalled hellos
 * work), then conn_tls's client-hello callback picks a thread, round-robin
 * over the loop (0) and the n handshake threads. A connection picked for a
 * thread leaves the loop's epoll and crosses to that thread, which runs the
 * rest of the handshake on its own epoll and hands the connection back,
 * done or failed; the loop then reports it to its owner exactly as if it
 * had handshaken there. An SSL is used by one thread at a time; the
 * hand-overs go through one mutex (once per connection each way, never per
 * reading) and an eventfd per thread.
 *
 * Who may touch what: `where` and `abandoned` under `mu`; while a
 * connection is away (c->away, the loop's own flag) its thread owns
 * everything else in it, and the loop's conn.c entry points answer from
 * "handshake in progress" without looking. An owner that frees a
 * connection that is away (its handshake deadline) does not wait: the
 * connection is marked abandoned and its thread frees it. */
#include "conn_int.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define TRIM_AFTER_MS 1000

struct hs_thread {
	unsigned index; /* 1..n (0 is the loop) */
	pthread_t tid;
	bool started;
	struct ev_loop *loop;
	int efd;
	struct ev_io efd_io;
	struct conn *inbox; /* under mu: to take (CONN_TO_THREAD) or to free (abandoned) */
	bool stop;          /* under mu */
	atomic_uint_fast64_t done; /* handshakes finished here, failed ones included */
	atomic_uint held;          /* connections it holds now */
	struct ev_timer trim;      /* this thread: idle for a while, give memory back */
	bool wake_due;      /* loop thread: connections queued for it in this batch */
	bool wake_home_due; /* this thread: connections handed back in this batch */
};

static struct {
	pthread_mutex_t mu;
	struct ev_loop *loop; /* the loop thread's */
	int efd;
	struct ev_io efd_io;
	struct conn *back; /* under mu: handed back (CONN_TO_HOME), in order */
	struct conn *back_tail;
	struct hs_thread *threads;
	unsigned n;    /* handshake threads besides the loop */
	unsigned next; /* loop thread: the round-robin position, 0 = the loop */
	unsigned turn; /* loop thread: the handshake thread that wins the next tie */
	atomic_uint_fast64_t home_done; /* handshakes finished on the loop */
	struct conn_offload_ops ops;    /* conn.c's half: set at start, read-only after */
} off = {.mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1};

static void wake(int efd)
{
	uint64_t one = 1;
	ssize_t w = write(efd, &one, sizeof one);
	(void)w; /* EAGAIN: the counter is already non-zero, the reader wakes anyway */
}

static void drain_efd(int efd)
{
	uint64_t v;
	ssize_t r = read(efd, &v, sizeof v);
	(void)r;
}

/* Intrusive singly linked lists, all under mu. */
static void push(struct conn **head, struct conn *c)
{
	c->off_next = *head;
	*head = c;
}

static bool unlink_from(struct conn **head, struct conn **tail, struct conn *c)
{
	struct conn *prev = NULL;
	for (struct conn *x = *head; x; prev = x, x = x->off_next) {
		if (x != c)
			continue;
		if (prev)
			prev->off_next = c->off_next;
		else
			*head = c->off_next;
		if (tail && *tail == c)
			*tail = prev;
		c->off_next = NULL;
		return true;
	}
	return false;
}

/* ---- on a handshake thread ---- */

static void destroy_later(void *p)
{
	off.ops.destroy(p);
}

/* Events of this batch may still name it: freed after the batch. */
static void thread_free_conn(struct hs_thread *th, struct conn *c)
{
	ev_io_stop(th->loop, &c->io);
	atomic_fetch_sub(&th->held, 1);
	ev_defer(th->loop, destroy_later, c);
}

/* One wake-up of the loop for every connection handed back in a batch of
 * events (a storm finishes several per batch). */
static void wake_home(void *arg)
{
	struct hs_thread *th = arg;
	th->wake_home_due = false;
	wake(off.efd);
}

/* Hands a finished handshake back to the loop, unless its owner gave up
 * meanwhile: then the request is in our inbox and the next drain frees it. */
static void hand_back(struct hs_thread *th, struct conn *c)
{
	pthread_mutex_lock(&off.mu);
	if (c->abandoned) {
		pthread_mutex_unlock(&off.mu);
		return;
	}
	if (atomic_fetch_sub(&th->held, 1) == 1)
		ev_timer_start(th->loop, &th->trim, TRIM_AFTER_MS); /* re-armed: after the last */
	c->where = CONN_TO_HOME;
	c->off_next = NULL;
	if (off.back_tail)
		off.back_tail->off_next = c;
	else
		off.back = c;
	off.back_tail = c;
	pthread_mutex_unlock(&off.mu);
	if (!th->wake_home_due) {
		th->wake_home_due = true;
		ev_defer(th->loop, wake_home, th);
	}
}

/* One step of the handshake; when it ended, back to the loop. */
static void thread_step(struct hs_thread *th, struct conn *c)
{
	int r = off.ops.step(c);
	if (r == 0)
		return;
	ev_io_stop(th->loop, &c->io);
	c->hs_result = r < 0 ? -1 : 1;
	atomic_fetch_add(&th->done, 1);
	hand_back(th, c);
}

static void thread_on_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct conn *c = io->arg;
	struct hs_thread *th = c->thread;
	thread_step(th, c);
}

static void thread_on_wake(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)events;
	struct hs_thread *th = io->arg;
	drain_efd(th->efd);
	/* Taken under mu into a list of the thread's own (th_next): once a
	 * connection is ON_THREAD the loop may queue it again, abandoned,
	 * through off_next. */
	struct conn *list = NULL, **tail = &list;
	pthread_mutex_lock(&off.mu);
	for (struct conn *c = th->inbox; c; c = c->off_next) {
		c->th_abandoned = c->abandoned;
		if (!c->abandoned)
			c->where = CONN_ON_THREAD;
		c->th_next = NULL;
		*tail = c;
		tail = &c->th_next;
	}
	th->inbox = NULL;
	bool stop = th->stop;
	pthread_mutex_unlock(&off.mu);
	while (list) {
		struct conn *c = list;
		list = c->th_next;
		if (c->th_abandoned) {
			thread_free_conn(th, c);
			continue;
		}
		c->loop = loop;
		if (ev_io_start(loop, &c->io, c->fd, EPOLLIN, thread_on_io, c) != 0) {
			c->hs_errno = errno; /* the loop fails it (ops.returned) */
			c->hs_result = -1;
			hand_back(th, c);
			continue;
		}
		/* The ClientHello is already inside the SSL: go on at once. */
		thread_step(th, c);
	}
	if (stop)
		ev_stop(loop);
}

/* What a handshake allocates that lives on with the connection (its
 * session, record-layer contexts) comes from this thread's malloc arena,
 * between the handshake's short-lived buffers; glibc keeps the holes they
 * leave, about 0.6 KiB per idle connection after a storm (17.7 against 17.1
 * KiB with threads = 1 in make bench). A second after the thread's last
 * handshake, give the free pages back. malloc_trim walks every arena (the
 * loop's too, holding its lock for a moment), so only once the storm is
 * over, never during it. One arena for all threads (M_ARENA_MAX = 1) would
 * avoid the holes but cost 30 % more CPU per handshake in lock waits. */
static void on_trim(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	(void)t;
	(void)malloc_trim(0);
}

static void *thread_main(void *arg)
{
	struct hs_thread *th = arg;
	/* Signals are the loop thread's (signalfd): the mask is inherited
	 * from it, blocked, and stays so. */
	(void)ev_run(th->loop);
	return NULL;
}

/* ---- on the loop thread ---- */

static void home_on_wake(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)io;
	(void)events;
	drain_efd(off.efd);
	for (;;) {
		/* One at a time: an owner's callback may free another
		 * connection still queued here (conn_free finds it under mu). */
		pthread_mutex_lock(&off.mu);
		struct conn *c = off.back;
		if (c) {
			off.back = c->off_next;
			if (!off.back)
				off.back_tail = NULL;
			c->off_next = NULL;
			c->where = CONN_HOME;
		}
		pthread_mutex_unlock(&off.mu);
		if (!c)
			break;
		c->away = false;
		c->thread = NULL;
		c->loop = off.loop;
		off.ops.returned(c);
	}
}

/* One wake-up of a thread for every connection sent to it in a batch. */
static void wake_thread(void *arg)
{
	struct hs_thread *th = arg;
	th->wake_due = false;
	wake(th->efd);
}

bool conn_offload_pick(void)
{
	if (off.n == 0)
		return false;
	unsigned pick = off.next;
	off.next = (off.next + 1) % (off.n + 1);
	return pick != 0;
}

void conn_offload_send(struct conn *c)
{
	/* The thread holding the fewest handshakes, ties taken in turn: a
	 * thread held up by slow peers gets fewer new ones. */
	struct hs_thread *th = NULL;
	for (unsigned k = 0; k < off.n; k++) {
		struct hs_thread *x = &off.threads[(off.turn + k) % off.n];
		if (!th || atomic_load(&x->held) < atomic_load(&th->held))
			th = x;
	}
	off.turn = (th->index) % off.n; /* the one after it goes first next time */
	ev_io_stop(c->loop, &c->io);
	c->away = true;
	c->thread = th;
	atomic_fetch_add(&th->held, 1);
	pthread_mutex_lock(&off.mu);
	c->where = CONN_TO_THREAD;
	push(&th->inbox, c);
	pthread_mutex_unlock(&off.mu);
	if (!th->wake_due) {
		th->wake_due = true;
		ev_defer(off.loop, wake_thread, th);
	}
}

bool conn_offload_abandon(struct conn *c)
{
	struct hs_thread *th = c->thread;
	pthread_mutex_lock(&off.mu);
	switch (c->where) {
	case CONN_TO_THREAD: /* not taken yet: ours again */
		(void)unlink_from(&th->inbox, NULL, c);
		c->where = CONN_HOME;
		pthread_mutex_unlock(&off.mu);
		atomic_fetch_sub(&th->held, 1);
		c->away = false;
		return false;
	case CONN_TO_HOME: /* already back, not yet reported */
		(void)unlink_from(&off.back, &off.back_tail, c);
		c->where = CONN_HOME;
		pthread_mutex_unlock(&off.mu);
		c->away = false;
		c->loop = off.loop;
		return false;
	case CONN_ON_THREAD:
		c->abandoned = true;
		push(&th->inbox, c);
		pthread_mutex_unlock(&off.mu);
		wake(th->efd);
		return true; /* its thread frees it */
	case CONN_HOME:
		break;
	}
	pthread_mutex_unlock(&off.mu);
	c->away = false;
	return false;
}

void conn_offload_count_home(void)
{
	atomic_fetch_add(&off.home_done, 1);
}

static void stop_threads(void)
{
	pthread_mutex_lock(&off.mu);
	for (unsigned i = 0; i < off.n; i++)
		off.threads[i].stop = true;
	pthread_mutex_unlock(&off.mu);
	for (unsigned i = 0; i < off.n; i++) {
		struct hs_thread *th = &off.threads[i];
		if (!th->started)
			continue;
		wake(th->efd);
		pthread_join(th->tid, NULL);
	}
}

int conn_offload_start(struct ev_loop *loop, unsigned n, const struct conn_offload_ops *ops,
		       char *err, size_t errlen)
{
	off.loop = loop;
	off.ops = *ops;
	if (n == 0)
		return 0;
	off.threads = calloc(n, sizeof *off.threads);
	off.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!off.threads || off.efd < 0 ||
	    ev_io_start(loop, &off.efd_io, off.efd, EPOLLIN, home_on_wake, NULL) != 0) {
		snprintf(err, errlen, "handshake threads: %s", strerror(errno ? errno : ENOMEM));
		conn_threads_stop();
		return -1;
	}
	off.n = n;
	for (unsigned i = 0; i < n; i++)
		off.threads[i].efd = -1;
	for (unsigned i = 0; i < n; i++) {
		struct hs_thread *th = &off.threads[i];
		th->index = i + 1;
		th->loop = ev_loop_new();
		th->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ev_timer_init(&th->trim, on_trim, th);
		int rc = 0;
		if (!th->loop || th->efd < 0 ||
		    ev_io_start(th->loop, &th->efd_io, th->efd, EPOLLIN, thread_on_wake, th) != 0 ||
		    (rc = pthread_create(&th->tid, NULL, thread_main, th)) != 0) {
			snprintf(err, errlen, "handshake thread %u: %s", i + 1,
				 strerror(rc ? rc : errno ? errno : ENOMEM));
			conn_threads_stop();
			return -1;
		}
		th->started = true;
		char name[32]; /* top -H, ps -L, perf: which thread is which */
		snprintf(name, sizeof name, "iotgw-hs%u", i + 1);
		name[15] = '\0'; /* the kernel's limit; "iotgw-hs64" fits */
		(void)pthread_setname_np(th->tid, name);
	}
	return 0;
}

void conn_threads_stop(void)
{
	if (off.threads) {
		stop_threads();
		for (unsigned i = 0; i < off.n; i++) {
			struct hs_thread *th = &off.threads[i];
			if (th->loop) {
				ev_timer_stop(th->loop, &th->trim);
				if (th->efd >= 0)
					ev_io_stop(th->loop, &th->efd_io);
				ev_loop_free(th->loop);
			}
			if (th->efd >= 0)
				close(th->efd);
		}
		free(off.threads);
	}
	/* The loop's watcher is not stopped: the loop may be freed already
	 * (gateway_free frees it first, for the sessions' deferred frees);
	 * closing the descriptor takes it out of a live epoll all the same. */
	if (off.efd >= 0)
		close(off.efd);
	off.threads = NULL;
	off.n = 0;
	off.next = 0;
	off.turn = 0;
	off.efd = -1;
}

unsigned conn_threads(void)
{
	return off.n + 1;
}

uint64_t conn_thread_handshakes(unsigned i)
{
	if (i == 0)
		return atomic_load(&off.home_done);
	return i <= off.n ? atomic_load(&off.threads[i - 1].done) : 0;
}
