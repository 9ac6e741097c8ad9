/* ackq: a device's replies held until the readings they acknowledge are
 * durable. Pure: no I/O, no clock (the caller passes times).
 *
 * Bytes are appended in the order the device's packets came in; a
 * PUBACK/PUBREC is marked with when its PUBLISH was read, so releasing it
 * can feed the PUBACK latency histogram. The queue has three parts, front
 * to back: covered by the disk flush in progress (`flushing`), committed
 * (`committed`, includes flushing), and waiting for the next commit. The
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

struct ackq_mark {
	uint32_t end, n; /* the n acks up to byte `end` were read at t_us */
	uint64_t t_us;
};

struct ackq {
	struct buf bytes;
	size_t committed, flushing;
	struct ackq_mark marks[ACKQ_MARKS];
	uint8_t nmarks;
};

void ackq_init(struct ackq *q, size_t max);
void ackq_free(struct ackq *q);

/* Appends a reply; is_ack: a PUBACK/PUBREC for a PUBLISH read at read_us.
 * 0, or -1 when the queue is at its ceiling (nothing appended). */
int ackq_append(struct ackq *q, const uint8_t *p, size_t n, bool is_ack, uint64_t read_us);
size_t ackq_len(const struct ackq *q);
bool ackq_uncommitted(const struct ackq *q); /* anything waiting for a commit */
bool ackq_committed(const struct ackq *q);   /* anything committed, not yet sent */
void ackq_commit(struct ackq *q);            /* everything held so far is committed */
void ackq_flush_started(struct ackq *q);     /* a flush covers everything committed */
/* What may go out: everything committed (all_committed) or what the
 * finished flush covered. */
const uint8_t *ackq_front(const struct ackq *q, bool all_committed, size_t *n);
/* The first n bytes went out at now_us: their acks' latencies into h. */
void ackq_release(struct ackq *q, size_t n, uint64_t now_us, struct prom_histo *h);

#endif
