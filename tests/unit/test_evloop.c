/* Unit tests for src/evloop.c: the epoll reactor. Timers fire in deadline order
 * and never early (against the loop's cached "now"), can be stopped and re-armed
 * from anywhere, including their own callback; I/O watchers see readiness on pipes
 * and an eventfd, are level-triggered, change interest with ev_io_set and go quiet
 * with ev_io_stop; a watcher stopped by an earlier callback of the same batch is
 * not called, and ev_defer runs after the batch, so freeing it there is safe; the
 * before-sleep hook runs once per iteration; ev_stop ends ev_run, which can run
 * again. Every test arms a watchdog timer so that a broken loop fails instead of
 * hanging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "iotgw/evloop.h"

#define WATCHDOG_MS 5000

static void watchdog_fired(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	(void)t;
	fail_msg("the loop did not stop within %d ms", WATCHDOG_MS);
}

static struct ev_timer watchdog;

static struct ev_loop *new_loop(void)
{
	struct ev_loop *loop = ev_loop_new();
	assert_non_null(loop);
	ev_timer_init(&watchdog, watchdog_fired, NULL);
	ev_timer_start(loop, &watchdog, WATCHDOG_MS);
	return loop;
}

static void run(struct ev_loop *loop)
{
	assert_int_equal(ev_run(loop), 0);
}

static void stop_loop(struct ev_loop *loop, struct ev_timer *t)
{
	(void)t;
	ev_stop(loop);
}

static void make_pipe(int fds[2])
{
	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

static void write_byte(int fd, char c)
{
	assert_int_equal(write(fd, &c, 1), 1);
}

/* ---- timers ---- */

#define MAX_FIRED 512

struct fired {
	size_t n;
	int order[MAX_FIRED];
	uint64_t at[MAX_FIRED];       /* ev_now_ms when it fired */
	uint64_t deadline[MAX_FIRED]; /* its deadline then */
};

static struct fired fired;

struct tagged_timer {
	struct ev_timer t;
	int tag;
	int stop_after; /* stops the loop once this many timers fired (0: never) */
};

static void record_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct tagged_timer *tt = t->arg;
	assert_true(fired.n < MAX_FIRED);
	assert_false(ev_timer_active(t)); /* inactive by the time its callback runs */
	fired.order[fired.n] = tt->tag;
	fired.at[fired.n] = ev_now_ms(loop);
	fired.deadline[fired.n] = t->deadline_ms;
	fired.n++;
	if (tt->stop_after && (int)fired.n >= tt->stop_after)
		ev_stop(loop);
}

static void tagged_init(struct tagged_timer *tt, int tag, int stop_after)
{
	ev_timer_init(&tt->t, record_timer, tt);
	tt->tag = tag;
	tt->stop_after = stop_after;
}

static void test_timers_fire_in_deadline_order(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	memset(&fired, 0, sizeof fired);
	static const uint64_t delays[] = {30, 10, 0, 20, 5};
	const int n = (int)(sizeof delays / sizeof delays[0]);
	struct tagged_timer tt[5];
	uint64_t start = ev_now_ms(loop);
	for (int i = 0; i < n; i++) {
		tagged_init(&tt[i], i, n);
		assert_false(ev_timer_active(&tt[i].t));
		ev_timer_start(loop, &tt[i].t, delays[i]);
		assert_true(ev_timer_active(&tt[i].t));
		assert_true(tt[i].t.deadline_ms == start + delays[i]);
	}
	run(loop);
	assert_int_equal(fired.n, 5);
	static const int want[] = {2, 4, 1, 3, 0};
	for (int i = 0; i < n; i++) {
		assert_int_equal(fired.order[i], want[i]);
		assert_true(fired.at[i] >= fired.deadline[i]); /* never early */
		assert_false(ev_timer_active(&tt[i].t));
	}
	/* "now" does not go backwards */
	for (int i = 1; i < n; i++)
		assert_true(fired.at[i] >= fired.at[i - 1]);
	assert_true(ev_clock_ms() >= start + 30);
	ev_loop_free(loop);
}

static void test_stopped_timer_does_not_fire(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	memset(&fired, 0, sizeof fired);
	struct tagged_timer a, b, c;
	tagged_init(&a, 1, 0);
	tagged_init(&b, 2, 0);
	tagged_init(&c, 3, 0);
	ev_timer_start(loop, &a.t, 5);
	ev_timer_start(loop, &b.t, 10);
	ev_timer_start(loop, &c.t, 15);
	ev_timer_stop(loop, &a.t);
	assert_false(ev_timer_active(&a.t));
	ev_timer_stop(loop, &a.t); /* stopping a stopped timer is harmless */
	ev_timer_stop(loop, &c.t); /* the last one in the heap, too */
	struct ev_timer end;
	ev_timer_init(&end, stop_loop, NULL);
	ev_timer_start(loop, &end, 30);
	run(loop);
	assert_int_equal(fired.n, 1);
	assert_int_equal(fired.order[0], 2);
	ev_loop_free(loop);
}

static void test_restart_moves_the_deadline(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	memset(&fired, 0, sizeof fired);
	struct tagged_timer a, b;
	tagged_init(&a, 1, 2);
	tagged_init(&b, 2, 2);
	ev_timer_start(loop, &a.t, 5);
	ev_timer_start(loop, &b.t, 20);
	ev_timer_start(loop, &a.t, 40); /* re-armed: later than b now, and only once */
	assert_true(ev_timer_active(&a.t));
	run(loop);
	assert_int_equal(fired.n, 2);
	assert_int_equal(fired.order[0], 2);
	assert_int_equal(fired.order[1], 1);
	ev_loop_free(loop);
}

struct periodic {
	struct ev_timer t;
	int count;
};

static void periodic_fired(struct ev_loop *loop, struct ev_timer *t)
{
	struct periodic *p = t->arg;
	if (++p->count < 3)
		ev_timer_start(loop, t, 1); /* re-arming from its own callback */
	else
		ev_stop(loop);
}

static void test_timer_rearmed_from_its_callback(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	struct periodic p = {.count = 0};
	ev_timer_init(&p.t, periodic_fired, &p);
	ev_timer_start(loop, &p.t, 0);
	run(loop);
	assert_int_equal(p.count, 3);
	assert_false(ev_timer_active(&p.t));
	ev_loop_free(loop);
}

static void test_many_timers_with_stops(void **state)
{
	(void)state;
	/* The heap under churn: 300 timers with pseudo-random deadlines, a third of them
	 * stopped again (from the middle of the heap), the rest fire in deadline order. */
	struct ev_loop *loop = new_loop();
	memset(&fired, 0, sizeof fired);
	enum { N = 300 };
	static struct tagged_timer tt[N];
	uint32_t rnd = 12345;
	for (int i = 0; i < N; i++) {
		rnd = rnd * 1103515245u + 12345u;
		tagged_init(&tt[i], i, 0);
		ev_timer_start(loop, &tt[i].t, (rnd >> 16) % 40);
	}
	int live = 0;
	for (int i = 0; i < N; i++) {
		if (i % 3 == 1)
			ev_timer_stop(loop, &tt[i].t);
		else
			live++;
	}
	struct ev_timer end;
	ev_timer_init(&end, stop_loop, NULL);
	ev_timer_start(loop, &end, 60);
	run(loop);
	assert_int_equal(fired.n, live);
	for (size_t i = 0; i < fired.n; i++) {
		assert_true(fired.order[i] % 3 != 1);
		assert_true(fired.at[i] >= fired.deadline[i]);
		if (i > 0)
			assert_true(fired.deadline[i] >= fired.deadline[i - 1]);
	}
	ev_loop_free(loop);
}

/* ---- I/O ---- */

struct reader {
	struct ev_io io;
	int calls;
	uint32_t events;
	char got[16];
	size_t ngot;
	bool drain;     /* read what is there */
	int stop_after; /* stops the loop after this many calls (0: never) */
};

static void on_readable(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct reader *r = io->arg;
	r->calls++;
	r->events |= events;
	if (r->drain && (events & EPOLLIN)) {
		ssize_t k = read(io->fd, r->got + r->ngot, sizeof r->got - r->ngot);
		if (k > 0)
			r->ngot += (size_t)k;
	}
	if (r->stop_after && r->calls >= r->stop_after)
		ev_stop(loop);
}

static void test_pipe_readable(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	int fds[2];
	make_pipe(fds);
	struct reader r = {.drain = true, .stop_after = 1};
	assert_int_equal(ev_io_start(loop, &r.io, fds[0], EPOLLIN, on_readable, &r), 0);
	assert_int_equal(r.io.fd, fds[0]);
	assert_int_equal(r.io.want, EPOLLIN);
	write_byte(fds[1], 'a');
	run(loop);
	assert_int_equal(r.calls, 1);
	assert_true(r.events & EPOLLIN);
	assert_int_equal(r.ngot, 1);
	assert_int_equal(r.got[0], 'a');
	ev_io_stop(loop, &r.io);
	assert_int_equal(r.io.fd, -1);
	ev_io_stop(loop, &r.io); /* twice is harmless */
	/* the descriptor is not closed by the loop */
	assert_true(fcntl(fds[0], F_GETFD) >= 0);
	close(fds[0]);
	close(fds[1]);
	ev_loop_free(loop);
}

static void test_level_triggered(void **state)
{
	(void)state;
	/* A callback that leaves data unread is called again on the next iteration. */
	struct ev_loop *loop = new_loop();
	int fds[2];
	make_pipe(fds);
	struct reader r = {.drain = false, .stop_after = 3};
	assert_int_equal(ev_io_start(loop, &r.io, fds[0], EPOLLIN, on_readable, &r), 0);
	write_byte(fds[1], 'x');
	run(loop);
	assert_int_equal(r.calls, 3);
	ev_io_stop(loop, &r.io);
	close(fds[0]);
	close(fds[1]);
	ev_loop_free(loop);
}

static void test_io_set_changes_interest(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	int fds[2];
	make_pipe(fds);
	/* The write end of an empty pipe is writable, never readable. */
	struct reader w = {.stop_after = 1};
	assert_int_equal(ev_io_start(loop, &w.io, fds[1], EPOLLIN, on_readable, &w), 0);
	struct ev_timer t;
	ev_timer_init(&t, stop_loop, NULL);
	ev_timer_start(loop, &t, 20);
	run(loop);
	assert_int_equal(w.calls, 0); /* not ready for what it asked for */

	assert_int_equal(ev_io_set(loop, &w.io, EPOLLOUT), 0);
	assert_int_equal(w.io.want, EPOLLOUT);
	assert_int_equal(ev_io_set(loop, &w.io, EPOLLOUT), 0); /* unchanged: a no-op */
	ev_timer_start(loop, &t, 1000);
	run(loop);
	assert_int_equal(w.calls, 1);
	assert_true(w.events & EPOLLOUT);
	ev_timer_stop(loop, &t);

	/* set on a stopped watcher does nothing and does not fail */
	ev_io_stop(loop, &w.io);
	assert_int_equal(ev_io_set(loop, &w.io, EPOLLIN), 0);
	assert_int_equal(w.io.fd, -1);
	close(fds[0]);
	close(fds[1]);
	ev_loop_free(loop);
}

static void test_stopped_watcher_is_not_called(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	int fds[2];
	make_pipe(fds);
	struct reader r = {.drain = true};
	assert_int_equal(ev_io_start(loop, &r.io, fds[0], EPOLLIN, on_readable, &r), 0);
	ev_io_stop(loop, &r.io);
	write_byte(fds[1], 'z');
	struct ev_timer t;
	ev_timer_init(&t, stop_loop, NULL);
	ev_timer_start(loop, &t, 20);
	run(loop);
	assert_int_equal(r.calls, 0);
	/* started again, it sees the byte that came meanwhile */
	r.stop_after = 1;
	assert_int_equal(ev_io_start(loop, &r.io, fds[0], EPOLLIN, on_readable, &r), 0);
	ev_timer_start(loop, &t, 1000);
	run(loop);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.got[0], 'z');
	ev_timer_stop(loop, &t);
	ev_io_stop(loop, &r.io);
	close(fds[0]);
	close(fds[1]);
	ev_loop_free(loop);
}

static void test_hangup_is_reported(void **state)
{
	(void)state;
	/* The writer goes away: the reader hears of it without asking (EPOLLHUP). */
	struct ev_loop *loop = new_loop();
	int fds[2];
	make_pipe(fds);
	struct reader r = {.drain = true, .stop_after = 1};
	assert_int_equal(ev_io_start(loop, &r.io, fds[0], EPOLLIN, on_readable, &r), 0);
	close(fds[1]);
	run(loop);
	assert_int_equal(r.calls, 1);
	assert_true(r.events & EPOLLHUP);
	assert_int_equal(r.ngot, 0);
	ev_io_stop(loop, &r.io);
	close(fds[0]);
	ev_loop_free(loop);
}

static void test_io_start_failures(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	struct reader r = {.calls = 0};
	errno = 0;
	assert_int_equal(ev_io_start(loop, &r.io, -1, EPOLLIN, on_readable, &r), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(r.io.fd, -1);
	ev_io_stop(loop, &r.io); /* a watcher that never started stops fine */

	/* a regular file cannot be polled */
	char path[] = "/tmp/iotgw-evloop-test.XXXXXX";
	int f = mkstemp(path);
	assert_true(f >= 0);
	unlink(path);
	errno = 0;
	assert_int_equal(ev_io_start(loop, &r.io, f, EPOLLIN, on_readable, &r), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(r.io.fd, -1);
	close(f);

	/* one watcher per descriptor */
	int fds[2];
	make_pipe(fds);
	struct reader r2 = {.calls = 0};
	assert_int_equal(ev_io_start(loop, &r.io, fds[0], EPOLLIN, on_readable, &r), 0);
	errno = 0;
	assert_int_equal(ev_io_start(loop, &r2.io, fds[0], EPOLLIN, on_readable, &r2), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(r2.io.fd, -1);
	ev_io_stop(loop, &r.io);
	close(fds[0]);
	close(fds[1]);
	ev_loop_free(loop);
}

/* An eventfd poked from a timer: the timer runs in one iteration, the watcher
 * sees the eventfd in a later one. */
struct poke {
	struct ev_timer t;
	struct ev_io io;
	int efd;
	uint64_t poked_at, seen_at, value;
};

static void poke_fired(struct ev_loop *loop, struct ev_timer *t)
{
	struct poke *p = t->arg;
	uint64_t three = 3;
	p->poked_at = ev_now_ms(loop);
	assert_int_equal(write(p->efd, &three, sizeof three), (ssize_t)sizeof three);
}

static void poke_seen(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct poke *p = io->arg;
	assert_true(events & EPOLLIN);
	assert_int_equal(read(io->fd, &p->value, sizeof p->value), (ssize_t)sizeof p->value);
	p->seen_at = ev_now_ms(loop);
	ev_stop(loop);
}

static void test_eventfd_from_a_timer(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	struct poke p = {.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
	assert_true(p.efd >= 0);
	assert_int_equal(ev_io_start(loop, &p.io, p.efd, EPOLLIN, poke_seen, &p), 0);
	ev_timer_init(&p.t, poke_fired, &p);
	ev_timer_start(loop, &p.t, 10);
	run(loop);
	assert_true(p.value == 3);
	assert_true(p.seen_at >= p.poked_at);
	assert_true(p.poked_at >= p.t.deadline_ms);
	ev_io_stop(loop, &p.io);
	close(p.efd);
	ev_loop_free(loop);
}

/* ---- ev_defer, the before-sleep hook, ev_stop ---- */

/* Two watchers ready in the same batch; whichever runs first stops the other and
 * hands it to ev_defer to be freed. The other is not called, and the free happens
 * after the batch (ASan would report a use after free otherwise). */
struct peer {
	struct ev_io io;
	struct peer *other;
};

static int peer_calls, peer_frees, frees_seen_in_callback;
static struct peer *survivor;

static void free_peer(void *arg)
{
	peer_frees++;
	free(arg);
}

static void on_peer(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct peer *p = io->arg;
	(void)events;
	peer_calls++;
	survivor = p;
	ev_io_stop(loop, &p->other->io);
	ev_defer(loop, free_peer, p->other);
	frees_seen_in_callback = peer_frees; /* 0: not freed yet, the batch may hold its event */
}

static void test_defer_runs_after_the_batch(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	int a[2], b[2];
	make_pipe(a);
	make_pipe(b);
	struct peer *pa = calloc(1, sizeof *pa), *pb = calloc(1, sizeof *pb);
	assert_non_null(pa);
	assert_non_null(pb);
	pa->other = pb;
	pb->other = pa;
	assert_int_equal(ev_io_start(loop, &pa->io, a[0], EPOLLIN, on_peer, pa), 0);
	assert_int_equal(ev_io_start(loop, &pb->io, b[0], EPOLLIN, on_peer, pb), 0);
	/* both readable before the loop waits: one epoll batch holds both */
	write_byte(a[1], '1');
	write_byte(b[1], '2');
	peer_calls = peer_frees = 0;
	frees_seen_in_callback = -1;
	survivor = NULL;
	struct ev_timer t;
	ev_timer_init(&t, stop_loop, NULL);
	ev_timer_start(loop, &t, 0);
	run(loop);
	assert_int_equal(peer_calls, 1);
	assert_int_equal(frees_seen_in_callback, 0);
	assert_int_equal(peer_frees, 1);
	/* the one that was called is still registered */
	assert_non_null(survivor);
	assert_true(survivor->io.fd >= 0);
	ev_io_stop(loop, &survivor->io);
	free(survivor);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	ev_loop_free(loop);
}

static int order_log[8];
static size_t norder;

static void log_second(void *arg)
{
	(void)arg;
	order_log[norder++] = 2;
}

static void log_first(void *arg)
{
	struct ev_loop *loop = arg;
	order_log[norder++] = 1;
	ev_defer(loop, log_second, NULL); /* deferred from deferred work: runs too */
}

static void log_third(void *arg)
{
	(void)arg;
	order_log[norder++] = 3;
}

static void test_defer_chains_and_runs_at_free(void **state)
{
	(void)state;
	struct ev_loop *loop = ev_loop_new();
	assert_non_null(loop);
	norder = 0;
	ev_defer(loop, log_first, loop);
	ev_defer(loop, log_third, NULL);
	assert_int_equal(norder, 0); /* nothing runs at ev_defer time */
	/* freeing the loop runs what is still deferred (the deferred frees of the
	 * objects it served) */
	ev_loop_free(loop);
	assert_int_equal(norder, 3);
	size_t at[4] = {0};
	for (size_t i = 0; i < norder; i++)
		at[order_log[i]] = i + 1;
	assert_true(at[1] && at[2] && at[3]);
	assert_true(at[1] < at[2]); /* the chained one after the one that deferred it */
}

struct hook {
	int calls;
	int stop_at;
	int deferred_ran;
};

static void mark_deferred(void *arg)
{
	struct hook *h = arg;
	h->deferred_ran++;
}

static void before_sleep(struct ev_loop *loop, void *arg)
{
	struct hook *h = arg;
	h->calls++;
	/* work deferred here still runs before the loop sleeps */
	ev_defer(loop, mark_deferred, h);
	if (h->calls >= h->stop_at)
		ev_stop(loop);
}

static void tick(struct ev_loop *loop, struct ev_timer *t)
{
	ev_timer_start(loop, t, 1);
}

static void test_before_sleep_once_per_iteration(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	struct hook h = {.stop_at = 5};
	ev_set_before_sleep(loop, before_sleep, &h);
	struct ev_timer t;
	ev_timer_init(&t, tick, NULL);
	ev_timer_start(loop, &t, 0);
	run(loop);
	assert_int_equal(h.calls, 5);
	/* a stop from the hook ends the loop before it sleeps again */
	assert_int_equal(h.deferred_ran, 5);
	ev_timer_stop(loop, &t);
	ev_loop_free(loop);
}

static void test_run_again_after_stop(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	struct periodic p = {.count = 0};
	ev_timer_init(&p.t, periodic_fired, &p);
	struct ev_timer t;
	ev_timer_init(&t, stop_loop, NULL);
	/* a stop before ev_run does not carry over into it */
	ev_stop(loop);
	ev_timer_start(loop, &t, 1);
	run(loop);
	assert_false(ev_timer_active(&t));
	/* a second run works like the first */
	ev_timer_start(loop, &p.t, 0);
	run(loop);
	assert_int_equal(p.count, 3);
	assert_true(ev_timer_active(&watchdog));
	ev_loop_free(loop);
}

/* ---- a timer re-armed with 0 by itself, and fed events ---- */

static void rearm_zero(struct ev_loop *loop, struct ev_timer *t)
{
	int *n = t->arg;
	if (++*n < 5)
		ev_timer_start(loop, t, 0); /* must wait for the next pass, not spin */
	else
		ev_stop(loop);
}

static void test_zero_rearm_does_not_spin(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	int n = 0;
	struct ev_timer t;
	ev_timer_init(&t, rearm_zero, &n);
	ev_timer_start(loop, &t, 0);
	run(loop);
	assert_int_equal(n, 5);
	ev_loop_free(loop);
}

struct feed_log {
	int calls;
	uint32_t events;
	struct ev_io *other; /* stopped by the first callback */
	bool refeed;
};

static void on_fed(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct feed_log *f = io->arg;
	f->calls++;
	f->events |= events;
	if (f->other)
		ev_io_stop(loop, f->other);
	f->other = NULL;
	if (f->refeed) {
		f->refeed = false;
		ev_io_feed(loop, io, EPOLLOUT); /* next iteration */
		return;
	}
	ev_stop(loop);
}

static void test_fed_event_is_delivered_without_readiness(void **state)
{
	(void)state;
	struct ev_loop *loop = new_loop();
	int fds[2], fds2[2];
	make_pipe(fds); /* nothing written: epoll never reports the read end */
	make_pipe(fds2);
	struct feed_log a = {0}, b = {0};
	struct ev_io io, io2;
	assert_int_equal(ev_io_start(loop, &io, fds[0], EPOLLIN, on_fed, &a), 0);
	assert_int_equal(ev_io_start(loop, &io2, fds2[0], EPOLLIN, on_fed, &b), 0);
	a.other = &io2; /* a stops io2 before its fed event is delivered */
	a.refeed = true;
	ev_io_feed(loop, &io, EPOLLIN);
	ev_io_feed(loop, &io, EPOLLIN); /* twice: still one delivery */
	ev_io_feed(loop, &io2, EPOLLIN);
	run(loop); /* no timer due: a sleeping loop would hit the watchdog */
	assert_int_equal(a.calls, 2);
	assert_int_equal(a.events, EPOLLIN | EPOLLOUT);
	assert_int_equal(b.calls, 0);
	/* A stopped watcher takes no feed. */
	ev_io_stop(loop, &io);
	ev_io_feed(loop, &io, EPOLLIN);
	assert_int_equal(io.fed, 0);
	close(fds[0]);
	close(fds[1]);
	close(fds2[0]);
	close(fds2[1]);
	ev_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_fire_in_deadline_order),
		cmocka_unit_test(test_stopped_timer_does_not_fire),
		cmocka_unit_test(test_restart_moves_the_deadline),
		cmocka_unit_test(test_timer_rearmed_from_its_callback),
		cmocka_unit_test(test_many_timers_with_stops),
		cmocka_unit_test(test_pipe_readable),
		cmocka_unit_test(test_level_triggered),
		cmocka_unit_test(test_io_set_changes_interest),
		cmocka_unit_test(test_stopped_watcher_is_not_called),
		cmocka_unit_test(test_hangup_is_reported),
		cmocka_unit_test(test_io_start_failures),
		cmocka_unit_test(test_eventfd_from_a_timer),
		cmocka_unit_test(test_defer_runs_after_the_batch),
		cmocka_unit_test(test_defer_chains_and_runs_at_free),
		cmocka_unit_test(test_before_sleep_once_per_iteration),
		cmocka_unit_test(test_zero_rearm_does_not_spin),
		cmocka_unit_test(test_fed_event_is_delivered_without_readiness),
		cmocka_unit_test(test_run_again_after_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
