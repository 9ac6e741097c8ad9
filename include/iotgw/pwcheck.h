/* pwcheck: password checks (PBKDF2, milliseconds each) on worker threads,
 * so that wrong passwords arriving faster than one core can hash them
 * delay nobody else: the event loop hands a check over and hears back
 * through an eventfd, in its own thread.
 *
 * The queue is bounded: a check that finds it full is refused at once
 * (the device is told to come back later). The pwcheck owns its jobs; a
 * job pointer stays valid until its done callback ran or pwcheck_cancel
 * was called, whichever comes first. Call everything from the loop thread. */
#ifndef IOTGW_PWCHECK_H
#define IOTGW_PWCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotgw/auth.h"
#include "iotgw/evloop.h"

struct pwcheck;
struct pwcheck_job;

typedef void (*pwcheck_done_fn)(void *owner, bool good);

/* threads workers, at most queue_max checks waiting or running. NULL on
 * failure (errno set). */
struct pwcheck *pwcheck_new(struct ev_loop *loop, unsigned threads, unsigned queue_max);
/* Stops the workers (a running check is waited for) and frees every job;
 * no callback runs. NULL is fine. */
void pwcheck_free(struct pwcheck *pc);

/* Checks pw[0..len) against device's entry in pf (copied now: pf may be
 * freed by a reload meanwhile); done(owner, good) runs later from the
 * loop. NULL when the queue is full or memory is short: nothing queued. */
struct pwcheck_job *pwcheck_submit(struct pwcheck *pc, const struct auth_pwfile *pf,
				   const char *device, const uint8_t *pw, size_t len,
				   pwcheck_done_fn done, void *owner);
/* The owner is going away: its callback will not run, and a check not
 * started yet is dropped (the job pointer is invalid after this call). */
void pwcheck_cancel(struct pwcheck_job *job);

unsigned pwcheck_queued(const struct pwcheck *pc); /* waiting or running */

#endif
