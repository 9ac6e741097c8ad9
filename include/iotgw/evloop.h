/* evloop: the single-threaded epoll reactor that owns every descriptor.
 *
 * I/O watchers are registered by fd with a callback; epoll's data.ptr points
 * at the watcher. Timers live in a binary min-heap (one timer per connection
 * is normal, so no linear scans). "now" is a cached CLOCK_MONOTONIC value,
 * refreshed once per iteration. Objects that may still be referenced by
 * events of the current batch must not be freed in a callback: hand them to
 * ev_defer, which runs after the batch. Watchers and timers belong to their
 * callers (the loop only points at them): stop them before freeing. */
#ifndef IOTGW_EVLOOP_H
#define IOTGW_EVLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct ev_loop;
struct ev_io;
struct ev_timer;

typedef void (*ev_io_fn)(struct ev_loop *loop, struct ev_io *io, uint32_t events);
typedef void (*ev_timer_fn)(struct ev_loop *loop, struct ev_timer *t);
typedef void (*ev_hook_fn)(struct ev_loop *loop, void *arg);

struct ev_io {
	int fd;         /* -1 when stopped */
	uint32_t want;  /* EPOLLIN | EPOLLOUT currently registered */
	uint32_t fed;   /* events ev_io_feed queued, not yet delivered */
	ev_io_fn fn;
	void *arg;
};

struct ev_timer {
	uint64_t deadline_ms;
	size_t heap_index; /* SIZE_MAX when not active */
	ev_timer_fn fn;
	void *arg;
};

struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop *loop);

/* Registers fd with interest `events`. Returns 0 or -1 (errno set). */
int ev_io_start(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t events, ev_io_fn fn,
		void *arg);
/* Changes the interest set; a no-op when unchanged. */
int ev_io_set(struct ev_loop *loop, struct ev_io *io, uint32_t events);
/* Deregisters (the fd is not closed), dropping fed events. Safe on a
 * stopped watcher. */
void ev_io_stop(struct ev_loop *loop, struct ev_io *io);
/* Delivers `events` to a started watcher on the next iteration as if epoll
 * had reported them (the loop does not sleep meanwhile): for readiness
 * epoll cannot see, such as bytes TLS already decrypted. */
void ev_io_feed(struct ev_loop *loop, struct ev_io *io, uint32_t events);

void ev_timer_init(struct ev_timer *t, ev_timer_fn fn, void *arg);
/* (Re)arms t to fire after delay_ms (from a timer callback, 0 means the
 * next iteration: a timer re-armed with 0 by itself cannot spin). */
void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t delay_ms);
void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t);
bool ev_timer_active(const struct ev_timer *t);

uint64_t ev_now_ms(const struct ev_loop *loop);
/* The same cached instant in microseconds: when this batch's input was
 * read, for latency figures. */
uint64_t ev_now_us(const struct ev_loop *loop);
/* Monotonic milliseconds / microseconds, read fresh. */
uint64_t ev_clock_ms(void);
uint64_t ev_clock_us(void);
/* The wall clock (CLOCK_REALTIME) in milliseconds, read fresh: times that
 * outlive the process (a device last seen, a spool entry's age). */
int64_t ev_wall_ms(void);

/* Called once per iteration after events and timers, before sleeping: the
 * place for batched work (flushes, pending TLS data, deferred frees). */
void ev_set_before_sleep(struct ev_loop *loop, ev_hook_fn fn, void *arg);

/* Runs fn(arg) after the current batch of events has been dispatched. */
void ev_defer(struct ev_loop *loop, void (*fn)(void *), void *arg);

/* Runs until ev_stop; returns 0, or -1 on a loop-level failure (errno set). */
int ev_run(struct ev_loop *loop);
void ev_stop(struct ev_loop *loop);

#endif
