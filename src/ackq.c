/* ackq: replies held until durable, with their read times (ackq.h). */
#include "iotgw/ackq.h"

#include <string.h>

void ackq_init(struct ackq *q, size_t max)
{
	memset(q, 0, sizeof *q);
	q->hold_from = UINT64_MAX;
	buf_init(&q->bytes, max);
}

void ackq_free(struct ackq *q)
{
	buf_free(&q->bytes);
}

int ackq_append(struct ackq *q, const uint8_t *p, size_t n, bool is_ack, uint64_t read_us)
{
	if (buf_append(&q->bytes, p, n) != 0)
		return -1;
	if (!is_ack)
		return 0;
	struct ackq_mark *m = q->nmarks ? &q->marks[q->nmarks - 1] : NULL;
	if (!m || (m->t_us != read_us && q->nmarks < ACKQ_MARKS)) {
		m = &q->marks[q->nmarks++];
		*m = (struct ackq_mark){.t_us = read_us};
	}
	m->end = (uint32_t)q->bytes.len;
	m->n++;
	return 0;
}

size_t ackq_len(const struct ackq *q)
{
	return q->bytes.len;
}

uint64_t ackq_pos(const struct ackq *q)
{
	return q->base + q->bytes.len;
}

static size_t sealed_len(const struct ackq *q)
{
	return q->nsegs ? q->segs[q->nsegs - 1].end : 0;
}

bool ackq_open(const struct ackq *q)
{
	return q->bytes.len > sealed_len(q);
}

bool ackq_sealed(const struct ackq *q)
{
	return q->nsegs > 0;
}

bool ackq_seal(struct ackq *q)
{
	if (!ackq_open(q))
		return true;
	uint32_t start = (uint32_t)sealed_len(q), end = (uint32_t)q->bytes.len;
	if (q->hold_from <= q->base + start) { /* all of it held */
		if (q->nsegs == ACKQ_SEGS)
			return false;
		q->segs[q->nsegs++] = (struct ackq_seg){end, ACKQ_HELD};
		return true;
	}
	if (q->hold_from < q->base + end) { /* pending, then held */
		if (q->nsegs + 2 > ACKQ_SEGS)
			return false;
		q->segs[q->nsegs++] =
			(struct ackq_seg){(uint32_t)(q->hold_from - q->base), ACKQ_PENDING};
		q->segs[q->nsegs++] = (struct ackq_seg){end, ACKQ_HELD};
		return true;
	}
	if (q->nsegs < ACKQ_SEGS) {
		q->segs[q->nsegs++] = (struct ackq_seg){end, ACKQ_PENDING};
		return true;
	}
	struct ackq_seg *last = &q->segs[q->nsegs - 1];
	if (last->commit == ACKQ_HELD)
		return false; /* its own event frees it; the tail waits */
	/* One wait for both: the later (pending). */
	last->end = end;
	last->commit = ACKQ_PENDING;
	return true;
}

/* A relative offset of a position, clamped to the sealed bytes. */
static uint32_t rel(const struct ackq *q, uint64_t pos)
{
	if (pos <= q->base)
		return 0;
	uint64_t r = pos - q->base;
	size_t sealed = sealed_len(q);
	return r > sealed ? (uint32_t)sealed : (uint32_t)r;
}

/* Splits the segment holding offset at into two at it, when a segment is
 * free; false when it could not (the caller leaves the segment whole). */
static bool split_at(struct ackq *q, uint32_t at)
{
	unsigned i = 0;
	uint32_t start = 0;
	for (; i < q->nsegs && q->segs[i].end <= at; i++)
		start = q->segs[i].end;
	if (i == q->nsegs || at == start)
		return true; /* past the sealed bytes, or on a boundary already */
	if (q->nsegs == ACKQ_SEGS)
		return false;
	memmove(&q->segs[i + 1], &q->segs[i], (q->nsegs - i) * sizeof q->segs[0]);
	q->segs[i].end = at;
	q->nsegs++;
	return true;
}

/* Retags the segments of kind `from` whose bytes lie in [lo, hi). */
static void retag(struct ackq *q, uint64_t from, uint64_t to, uint32_t lo, uint32_t hi)
{
	bool lo_ok = split_at(q, lo), hi_ok = split_at(q, hi);
	uint32_t start = 0;
	for (unsigned i = 0; i < q->nsegs; start = q->segs[i].end, i++) {
		struct ackq_seg *s = &q->segs[i];
		if (s->commit != from || s->end <= lo || start >= hi)
			continue;
		/* A segment that sticks out of the range could not be split:
		 * it keeps its tag, or takes the later one, whichever waits
		 * longer (held is the latest of all). */
		bool inside = (start >= lo || lo_ok) && (s->end <= hi || hi_ok);
		if (inside)
			s->commit = to;
		else if (to == ACKQ_HELD)
			s->commit = ACKQ_HELD;
	}
}

void ackq_commit_pending(struct ackq *q, uint64_t c, uint64_t upto)
{
	retag(q, ACKQ_PENDING, c, 0, rel(q, upto));
}

void ackq_hold(struct ackq *q, uint64_t from)
{
	if (from < q->hold_from)
		q->hold_from = from;
	retag(q, ACKQ_PENDING, ACKQ_HELD, rel(q, from), (uint32_t)sealed_len(q));
}

void ackq_commit_held(struct ackq *q, uint64_t c, uint64_t upto)
{
	if (upto == UINT64_MAX)
		q->hold_from = UINT64_MAX;
	else if (upto > q->hold_from)
		q->hold_from = upto;
	retag(q, ACKQ_HELD, c, 0, upto == UINT64_MAX ? (uint32_t)sealed_len(q) : rel(q, upto));
}

const uint8_t *ackq_front(const struct ackq *q, uint64_t durable, size_t *n)
{
	*n = 0;
	for (unsigned i = 0; i < q->nsegs && q->segs[i].commit <= durable; i++)
		*n = q->segs[i].end;
	return q->bytes.data;
}

void ackq_release(struct ackq *q, size_t n, uint64_t now_us, struct prom_histo *h)
{
	if (n == 0)
		return;
	size_t i = 0;
	for (; i < q->nmarks && q->marks[i].end <= n; i++)
		prom_observe(h, (double)(now_us - q->marks[i].t_us) / 1e6, q->marks[i].n);
	q->nmarks = (uint8_t)(q->nmarks - i);
	memmove(q->marks, q->marks + i, q->nmarks * sizeof q->marks[0]);
	for (i = 0; i < q->nmarks; i++)
		q->marks[i].end -= (uint32_t)n;
	for (i = 0; i < q->nsegs && q->segs[i].end <= n; i++)
		;
	q->nsegs = (uint8_t)(q->nsegs - i);
	memmove(q->segs, q->segs + i, q->nsegs * sizeof q->segs[0]);
	for (i = 0; i < q->nsegs; i++)
		q->segs[i].end -= (uint32_t)n;
	buf_consume(&q->bytes, n);
	q->base += n;
	buf_shrink_if_empty(&q->bytes);
}
