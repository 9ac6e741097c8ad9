#include "iotgw/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define EV_BATCH 256

struct ev_deferred {
	void (*fn)(void *);
	void *arg;
};

struct ev_loop {
	int epfd;
	bool running;
	uint64_t now_ms;
	uint64_t now_us; /* the same instant, for latencies */
	struct ev_timer **heap;
	size_t nheap, capheap;
	struct ev_deferred *deferred;
	size_t ndeferred, capdeferred;
	ev_hook_fn before_sleep;
	void *before_sleep_arg;
	struct ev_io **fed; /* watchers with ev_io_feed events to deliver */
	size_t nfed, capfed;
	bool in_timers;
};

uint64_t ev_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t ev_clock_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t ev_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct ev_loop *ev_loop_new(void)
{
	struct ev_loop *loop = calloc(1, sizeof *loop);
	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	loop->now_us = ev_clock_us();
	loop->now_ms = loop->now_us / 1000;
	return loop;
}

static void run_deferred(struct ev_loop *loop);

void ev_loop_free(struct ev_loop *loop)
{
	if (!loop)
		return;
	run_deferred(loop);
	close(loop->epfd);
	free(loop->heap);
	free(loop->deferred);
	free(loop->fed);
	free(loop);
}

int ev_io_start(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t events, ev_io_fn fn,
		void *arg)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};
	io->fed = 0; /* a new watcher has nothing fed (its memory may be fresh) */
	io->fd = fd;
	io->want = events;
	io->fn = fn;
	io->arg = arg;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		io->fd = -1;
		return -1;
	}
	return 0;
}

int ev_io_set(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	if (io->fd < 0 || io->want == events)
		return 0;
	struct epoll_event ev = {.events = events, .data.ptr = io};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0)
		return -1;
	io->want = events;
	return 0;
}

void ev_io_stop(struct ev_loop *loop, struct ev_io *io)
{
	if (io->fd < 0)
		return;
	/* EBADF is possible when a library closed the fd first; ignoring it is
	 * safe because we deregister before any new descriptor can be opened. */
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->fd = -1;
	io->want = 0;
	if (io->fed) {
		io->fed = 0;
		for (size_t i = 0; i < loop->nfed; i++)
			if (loop->fed[i] == io) {
				loop->fed[i] = loop->fed[--loop->nfed];
				break;
			}
	}
}

void ev_io_feed(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	if (io->fd < 0 || !events)
		return;
	if (!io->fed) {
		if (loop->nfed == loop->capfed) {
			size_t cap = loop->capfed ? loop->capfed * 2 : 64;
			struct ev_io **f = realloc(loop->fed, cap * sizeof *f);
			if (!f)
				abort(); /* as ev_defer: the event must not be lost */
			loop->fed = f;
			loop->capfed = cap;
		}
		loop->fed[loop->nfed++] = io;
	}
	io->fed |= events;
}

/* Delivers what ev_io_feed queued before this call; feeds made by the
 * callbacks wait for the next iteration. */
static void run_fed(struct ev_loop *loop)
{
	size_t n = loop->nfed;
	for (size_t i = 0; i < n && i < loop->nfed; i++) {
		struct ev_io *io = loop->fed[i];
		uint32_t ev = io->fed;
		io->fed = 0;
		loop->fed[i] = NULL;
		if (io->fd >= 0 && ev)
			io->fn(loop, io, ev);
	}
	/* Compact: entries delivered are NULL; a stop during delivery moved
	 * a later entry down into a delivered slot's place. */
	size_t w = 0;
	for (size_t i = 0; i < loop->nfed; i++)
		if (loop->fed[i] && loop->fed[i]->fed)
			loop->fed[w++] = loop->fed[i];
	loop->nfed = w;
}

/* ---- timers: binary min-heap on deadline_ms ---- */

static void heap_swap(struct ev_loop *loop, size_t a, size_t b)
{
	struct ev_timer *t = loop->heap[a];
	loop->heap[a] = loop->heap[b];
	loop->heap[b] = t;
	loop->heap[a]->heap_index = a;
	loop->heap[b]->heap_index = b;
}

static void heap_up(struct ev_loop *loop, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (loop->heap[parent]->deadline_ms <= loop->heap[i]->deadline_ms)
			break;
		heap_swap(loop, i, parent);
		i = parent;
	}
}

static void heap_down(struct ev_loop *loop, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < loop->nheap && loop->heap[l]->deadline_ms < loop->heap[m]->deadline_ms)
			m = l;
		if (r < loop->nheap && loop->heap[r]->deadline_ms < loop->heap[m]->deadline_ms)
			m = r;
		if (m == i)
			return;
		heap_swap(loop, i, m);
		i = m;
	}
}

void ev_timer_init(struct ev_timer *t, ev_timer_fn fn, void *arg)
{
	t->deadline_ms = 0;
	t->heap_index = SIZE_MAX;
	t->fn = fn;
	t->arg = arg;
}

bool ev_timer_active(const struct ev_timer *t)
{
	return t->heap_index != SIZE_MAX;
}

void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t)
{
	if (!ev_timer_active(t))
		return;
	size_t i = t->heap_index;
	size_t last = loop->nheap - 1;
	if (i != last) {
		heap_swap(loop, i, last);
		loop->nheap--;
		heap_down(loop, i);
		heap_up(loop, i);
	} else {
		loop->nheap--;
	}
	t->heap_index = SIZE_MAX;
}

void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t delay_ms)
{
	ev_timer_stop(loop, t);
	if (loop->nheap == loop->capheap) {
		size_t cap = loop->capheap ? loop->capheap * 2 : 64;
		struct ev_timer **h = realloc(loop->heap, cap * sizeof *h);
		if (!h)
			abort(); /* a timer we cannot arm would silently break a promise */
		loop->heap = h;
		loop->capheap = cap;
	}
	if (delay_ms == 0 && loop->in_timers)
		delay_ms = 1; /* not again in this pass: see run_timers */
	t->deadline_ms = loop->now_ms + delay_ms;
	t->heap_index = loop->nheap;
	loop->heap[loop->nheap++] = t;
	heap_up(loop, t->heap_index);
}

uint64_t ev_now_ms(const struct ev_loop *loop)
{
	return loop->now_ms;
}

uint64_t ev_now_us(const struct ev_loop *loop)
{
	return loop->now_us;
}

void ev_set_before_sleep(struct ev_loop *loop, ev_hook_fn fn, void *arg)
{
	loop->before_sleep = fn;
	loop->before_sleep_arg = arg;
}

void ev_defer(struct ev_loop *loop, void (*fn)(void *), void *arg)
{
	if (loop->ndeferred == loop->capdeferred) {
		size_t cap = loop->capdeferred ? loop->capdeferred * 2 : 64;
		struct ev_deferred *d = realloc(loop->deferred, cap * sizeof *d);
		if (!d)
			abort();
		loop->deferred = d;
		loop->capdeferred = cap;
	}
	loop->deferred[loop->ndeferred++] = (struct ev_deferred){fn, arg};
}

static void run_deferred(struct ev_loop *loop)
{
	/* A deferred function may defer more work; run until none is left. */
	for (size_t i = 0; i < loop->ndeferred; i++)
		loop->deferred[i].fn(loop->deferred[i].arg);
	loop->ndeferred = 0;
}

static void run_timers(struct ev_loop *loop)
{
	loop->in_timers = true;
	while (loop->nheap > 0 && loop->heap[0]->deadline_ms <= loop->now_ms) {
		struct ev_timer *t = loop->heap[0];
		ev_timer_stop(loop, t);
		t->fn(loop, t);
	}
	loop->in_timers = false;
}

void ev_stop(struct ev_loop *loop)
{
	loop->running = false;
}

int ev_run(struct ev_loop *loop)
{
	struct epoll_event events[EV_BATCH];
	loop->running = true;
	while (loop->running) {
		if (loop->before_sleep)
			loop->before_sleep(loop, loop->before_sleep_arg);
		run_deferred(loop);
		int timeout = -1;
		if (loop->nfed > 0) {
			timeout = 0;
		} else if (loop->nheap > 0) {
			uint64_t now = ev_clock_ms();
			uint64_t d = loop->heap[0]->deadline_ms;
			timeout = d <= now ? 0 : (int)(d - now > 60000 ? 60000 : d - now);
		}
		if (!loop->running)
			break;
		int n = epoll_wait(loop->epfd, events, EV_BATCH, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		loop->now_us = ev_clock_us();
		loop->now_ms = loop->now_us / 1000;
		for (int i = 0; i < n; i++) {
			struct ev_io *io = events[i].data.ptr;
			/* A callback earlier in this batch may have stopped this
			 * watcher; its memory stays valid until run_deferred. */
			if (io->fd < 0)
				continue;
			io->fn(loop, io, events[i].events);
		}
		run_fed(loop);
		run_deferred(loop);
		run_timers(loop);
		run_deferred(loop);
	}
	return 0;
}
