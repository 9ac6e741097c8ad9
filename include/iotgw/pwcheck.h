/* pwcheck: password checks (PBKDF2, milliseconds each) on threads of their
 * own, so that wrong passwords arriving faster than one core can hash them
 * delay nobody else: an event loop hands a check over through its port
 * and hears back through the port's eventfd, in its own thread.
 *
 * One pool of threads and one bounded queue for the process: a check that
 * finds it full is refused at once (the device is told to come back
 * later). Each event loop (worker) has a port. The pool owns its jobs; a
 * job pointer stays valid until its done callback ran or pwcheck_cancel
 * was called, whichever comes first. Call a port's functions from its
 * loop's thread; the pool's from the thread that made it. */
#ifndef IOTGW_PWCHECK_H
#define IOTGW_PWCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotgw/auth.h"
#include "iotgw/evloop.h"

struct pwcheck;
struct pwcheck_port;
struct pwcheck_job;

typedef void (*pwcheck_done_fn)(void *owner, bool good);

/* threads threads, at most queue_max checks waiting or running. NULL on
 * failure (errno set). */
struct pwcheck *pwcheck_new(unsigned threads, unsigned queue_max);
/* Stops the threads (a running check is waited for) and frees the jobs
 * not finished; no callback runs. Before the ports. NULL is fine. */
void pwcheck_free(struct pwcheck *pc);
/* A loop's way in and out. NULL on failure (errno set). */
struct pwcheck_port *pwcheck_port_new(struct pwcheck *pc, struct ev_loop *loop);
/* Frees the finished jobs not yet reported; no callback runs. After
 * pwcheck_free. NULL is fine. */
void pwcheck_port_free(struct pwcheck_port *port);

/* Checks pw[0..len) against device's entry in pf (copied now: pf may be
 * freed by a reload meanwhile); done(owner, good) runs later from the
 * loop. NULL when the queue is full or memory is short: nothing queued. */
struct pwcheck_job *pwcheck_submit(struct pwcheck_port *port, const struct auth_pwfile *pf,
				   const char *device, const uint8_t *pw, size_t len,
				   pwcheck_done_fn done, void *owner);
/* The owner is going away: its callback will not run, and a check not
 * started yet is dropped (the job pointer is invalid after this call). */
void pwcheck_cancel(struct pwcheck_job *job);

unsigned pwcheck_queued(struct pwcheck_port *port); /* the pool's, waiting or running */

#endif
