/* ackq: replies held until durable, with their read times (ackq.h). */
#include "iotgw/ackq.h"

#include <string.h>

void ackq_init(struct ackq *q, size_t max)
{
	memset(q, 0, sizeof *q);
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

bool ackq_uncommitted(const struct ackq *q)
{
	return q->bytes.len > q->committed;
}

bool ackq_committed(const struct ackq *q)
{
	return q->committed > 0;
}

void ackq_commit(struct ackq *q)
{
	q->committed = q->bytes.len;
}

void ackq_flush_started(struct ackq *q)
{
	q->flushing = q->committed;
}

const uint8_t *ackq_front(const struct ackq *q, bool all_committed, size_t *n)
{
	*n = all_committed ? q->committed : q->flushing;
	return q->bytes.data;
}

void ackq_release(struct ackq *q, size_t n, uint64_t now_us, struct prom_histo *h)
{
	size_t i = 0;
	for (; i < q->nmarks && q->marks[i].end <= n; i++)
		prom_observe(h, (double)(now_us - q->marks[i].t_us) / 1e6, q->marks[i].n);
	q->nmarks = (uint8_t)(q->nmarks - i);
	memmove(q->marks, q->marks + i, q->nmarks * sizeof q->marks[0]);
	for (i = 0; i < q->nmarks; i++)
		q->marks[i].end -= (uint32_t)n;
	buf_consume(&q->bytes, n);
	q->committed -= n;
	q->flushing = 0;
	buf_shrink_if_empty(&q->bytes);
}
