/* tbucket: a token bucket, the one rule behind every rate limit (a device's
 * messages and bytes per second, connections per source address per
 * second). Pure: the caller passes the time.
 *
 * A bucket holds up to `burst` tokens and refills at `rate` per second; it
 * starts full. A cost is taken whenever the bucket is not empty, even a
 * cost larger than what is left (or than burst: one large packet), so the
 * bucket goes into debt and the next take waits until it is paid off. Over
 * time that admits exactly `rate` per second. */
#ifndef IOTGW_TBUCKET_H
#define IOTGW_TBUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct tbucket {
	double tokens;
	uint64_t at_ms; /* 0: never used (full) */
};

/* Takes cost at now_ms: 0 when taken, else the ms until a take can succeed
 * (nothing taken). rate 0: no limit (always 0). */
uint64_t tb_take(struct tbucket *b, double rate, double burst, double cost, uint64_t now_ms);
/* Is the bucket full again at now_ms (the device has been within its rate
 * for a while: an episode of limiting is over)? */
bool tb_full(const struct tbucket *b, double rate, double burst, uint64_t now_ms);

#endif
