/* share: how much of the spool one device may hold (pure, no I/O).
 *
 * The rule behind [spool] max_messages_per_device, max_bytes_per_device
 * and fair_share (docs/iotgw.conf.5): a device that would go over its
 * share is held back (not read) while the others are read, so that one
 * runaway firmware cannot take the room honest devices need while the
 * upstream is slow or away. Its share is
 *   - the configured per-device limits, when set (0: none), and
 *   - with fair_share, once the spool is at least half full: the spool's
 *     limits divided by the devices competing for it (connected, or
 *     holding readings in it), rounded up. Devices publishing at the same rate never
 *     go over this before the spool is full; the one that publishes far
 *     more than the others is held back first.
 * Ingest asks before each reading (share_use with the reading counted);
 * a held device is read again once share_use without a new reading falls
 * below SHARE_RESUME. */
#ifndef IOTGW_SHARE_H
#define IOTGW_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fill of the spool from which fair_share applies. */
#define SHARE_FAIR_FROM 0.5
/* A held device is read again below this use of its share (a little room,
 * so that it is not paused and resumed at every reading the upstream
 * takes). */
#define SHARE_RESUME 0.99
/* Its episode (one line when held, one when it ends) ends below this. */
#define SHARE_EPISODE_END 0.9

struct share_in {
	uint64_t messages, bytes; /* the device's, with the new reading if any */
	uint64_t max_messages_per_device, max_bytes_per_device; /* 0: no such limit */
	bool fair;                               /* fair_share = yes */
	double fill;                             /* the spool's fill (0..1) */
	uint64_t max_messages, max_bytes;        /* the spool's limits */
	size_t devices;                          /* competing for the spool, at least 1 */
};

/* Which limit decided share_use. */
enum share_limit { SHARE_NONE, SHARE_MESSAGES, SHARE_BYTES, SHARE_FAIR_MESSAGES, SHARE_FAIR_BYTES };

/* The device's use of its share: the largest of its messages and bytes
 * over each limit in force; above 1 it is over its share. 0 when no limit
 * applies. *which (may be NULL) names the limit that gave the result, and
 * *limit (may be NULL) that limit's value. */
double share_use(const struct share_in *in, enum share_limit *which, uint64_t *limit);

/* The same, with the fair share applying whatever the spool's fill: what
 * ends an episode. A device held back at half full is read again when the
 * upstream brings the spool below it, and held again when it crosses it;
 * its episode (one line each way) lasts until it holds less than
 * SHARE_EPISODE_END of its fair share, not until the next crossing. */
double share_episode_use(const struct share_in *in);

/* A short description of the limit for log lines ("max_messages_per_device"...). */
const char *share_limit_name(enum share_limit which);

#endif
