/* ackq: a device's replies held until the readings they acknowledge are
 * durable. Pure: no I/O, no clock (the caller passes times).
 *
 * Bytes are appended in the order the device's packets came in; a
 * PUBACK/PUBREC is marked with when its PUBLISH was read, so releasing it
 * can feed the PUBACK latency histogram. A position is a count of bytes
 * ever appended (ackq_pos), so it names the same byte however much has
 * gone out since. The queue is a row of segments, front to back, then the
 * open tail:
 *   - the open tail: replies appended since the last seal;
 *   - ackq_seal closes it into a segment that waits for its worker's batch
 *     of readings to be committed (ACKQ_PENDING);
 *   - ackq_commit_pending tags pending bytes before a position with the
 *     number of the spool commit that holds their readings;
 *   - ackq_hold marks pending bytes from a position on as held: their
 *     readings wait over the device's share of the spool, and
 *     ackq_commit_held tags them once those are committed;
 *   - ackq_front says how many front bytes may go out once every commit up
 *     to a number is on disk; a pending or held segment stops it.
 * So a reply never leaves before the readings ahead of it are durable,
 * whichever thread committed them. Where no segment is free to split one,
 * the whole segment waits for the later event (never released early). The
 * ackq owns its buffer; ackq_front points into it until the next call. */
#ifndef IOTGW_ACKQ_H
#define IOTGW_ACKQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotgw/buf.h"
#include "iotgw/prom.h"

/* More read batches than this between two releases merge into the last
 * mark (counted as read earlier than they were: the figure errs high). */
#define ACKQ_MARKS 4
#define ACKQ_SEGS 8
#define ACKQ_PENDING (UINT64_MAX - 1) /* its batch is not committed yet */
#define ACKQ_HELD UINT64_MAX          /* its readings wait over a share */

struct ackq_mark {
	uint32_t end, n; /* the n acks up to byte `end` were read at t_us */
	uint64_t t_us;
};

struct ackq_seg {
	uint32_t end;    /* bytes up to here */
	uint64_t commit; /* durable once this commit is; ACKQ_PENDING, ACKQ_HELD */
};

struct ackq {
	struct buf bytes;
	uint64_t base;      /* the position of bytes.data[0] */
	uint64_t hold_from; /* bytes from here on are held when sealed (UINT64_MAX: none) */
	struct ackq_seg segs[ACKQ_SEGS];
	uint8_t nsegs;
	struct ackq_mark marks[ACKQ_MARKS];
	uint8_t nmarks;
};

void ackq_init(struct ackq *q, size_t max);
void ackq_free(struct ackq *q);

/* Appends a reply to the open tail; is_ack: a PUBACK/PUBREC for a PUBLISH
 * read at read_us. 0, or -1 when the queue is at its ceiling (nothing
 * appended). */
int ackq_append(struct ackq *q, const uint8_t *p, size_t n, bool is_ack, uint64_t read_us);
size_t ackq_len(const struct ackq *q);
uint64_t ackq_pos(const struct ackq *q); /* the position the next byte gets */
bool ackq_open(const struct ackq *q);   /* replies appended since the last seal */
bool ackq_sealed(const struct ackq *q); /* sealed segments not yet released */
/* Closes the open tail into a pending segment. false: no segment free (the
 * tail stays open; seal again later). */
bool ackq_seal(struct ackq *q);
/* Pending bytes before position upto are in commit c. */
void ackq_commit_pending(struct ackq *q, uint64_t c, uint64_t upto);
/* Pending bytes from position from on are held over a share, and so are
 * bytes from there sealed later. */
void ackq_hold(struct ackq *q, uint64_t from);
/* Held bytes before position upto (UINT64_MAX: all, and the hold ends) are
 * in commit c. */
void ackq_commit_held(struct ackq *q, uint64_t c, uint64_t upto);
/* The front bytes that may go out with every commit up to `durable` on
 * disk (0: none). */
const uint8_t *ackq_front(const struct ackq *q, uint64_t durable, size_t *n);
/* The first n bytes (a whole number of segments) went out at now_us:
 * their acks' latencies into h. */
void ackq_release(struct ackq *q, size_t n, uint64_t now_us, struct prom_histo *h);

#endif
