/* Unit tests for src/ackq.c: replies held until durable. The three parts
 * (flushing, committed, waiting) release in order, the read-time marks give
 * one latency observation per ack (not per other reply), later batches merge
 * into the last mark when the marks run out, and the ceiling is kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iotgw/ackq.h"

static const uint8_t ACK[4] = {0x40, 0x02, 0x00, 0x01};
static const uint8_t PINGRESP[2] = {0xd0, 0x00};

static void test_parts_release_in_order(void **state)
{
	(void)state;
	struct ackq q;
	ackq_init(&q, 1024);
	struct prom_histo h = {0};
	assert_int_equal(ackq_append(&q, ACK, 4, true, 1000), 0);
	assert_int_equal(ackq_append(&q, PINGRESP, 2, false, 1000), 0);
	assert_true(ackq_uncommitted(&q));
	ackq_commit(&q);
	assert_false(ackq_uncommitted(&q));
	ackq_flush_started(&q);
	assert_int_equal(ackq_append(&q, ACK, 4, true, 2000), 0); /* after the commit */
	size_t n;
	const uint8_t *p = ackq_front(&q, false, &n);
	assert_int_equal(n, 6); /* what the flush covers */
	assert_memory_equal(p, ACK, 4);
	ackq_release(&q, n, 1500, &h);
	assert_int_equal(h.count, 1); /* the ack, not the PINGRESP */
	assert_true(h.sum > 0.00049 && h.sum < 0.00051);
	assert_false(ackq_committed(&q));
	assert_true(ackq_uncommitted(&q));
	ackq_commit(&q);
	(void)ackq_front(&q, true, &n); /* durability = os: all committed */
	assert_int_equal(n, 4);
	ackq_release(&q, n, 4000, &h);
	assert_int_equal(h.count, 2);
	assert_int_equal(ackq_len(&q), 0);
	assert_null(q.bytes.data); /* an idle device holds no buffer */
	ackq_free(&q);
}

static void test_marks_merge_when_full(void **state)
{
	(void)state;
	struct ackq q;
	ackq_init(&q, 1024);
	for (uint64_t t = 1; t <= ACKQ_MARKS + 3; t++)
		assert_int_equal(ackq_append(&q, ACK, 4, true, t * 1000), 0);
	assert_int_equal(q.nmarks, ACKQ_MARKS);
	ackq_commit(&q);
	struct prom_histo h = {0};
	size_t n;
	(void)ackq_front(&q, true, &n);
	ackq_release(&q, n, 100000, &h);
	assert_int_equal(h.count, ACKQ_MARKS + 3);
	/* merged ones count from the last mark's (earlier) read time: never too low */
	double low = 0;
	for (uint64_t t = 1; t <= ACKQ_MARKS + 3; t++)
		low += (100000.0 - (double)t * 1000) / 1e6;
	assert_true(h.sum >= low - 1e-9);
	assert_int_equal(q.nmarks, 0);
	ackq_free(&q);
}

static void test_partial_release_shifts_marks(void **state)
{
	(void)state;
	struct ackq q;
	ackq_init(&q, 1024);
	assert_int_equal(ackq_append(&q, ACK, 4, true, 10), 0);
	ackq_commit(&q);
	ackq_flush_started(&q);
	assert_int_equal(ackq_append(&q, ACK, 4, true, 20), 0);
	ackq_commit(&q);
	struct prom_histo h = {0};
	size_t n;
	(void)ackq_front(&q, false, &n);
	assert_int_equal(n, 4);
	ackq_release(&q, n, 30, &h);
	assert_int_equal(h.count, 1);
	assert_int_equal(q.nmarks, 1);
	assert_int_equal(q.marks[0].end, 4);
	assert_int_equal(q.committed, 4);
	ackq_free(&q);
}

static void test_ceiling(void **state)
{
	(void)state;
	struct ackq q;
	ackq_init(&q, 6);
	assert_int_equal(ackq_append(&q, ACK, 4, true, 1), 0);
	assert_int_equal(ackq_append(&q, ACK, 4, true, 1), -1);
	assert_int_equal(ackq_len(&q), 4);
	assert_int_equal(q.marks[0].n, 1);
	ackq_free(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parts_release_in_order),
		cmocka_unit_test(test_marks_merge_when_full),
		cmocka_unit_test(test_partial_release_shifts_marks),
		cmocka_unit_test(test_ceiling),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
