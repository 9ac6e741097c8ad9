/* Unit tests for src/ackq.c: replies held until durable. Segments are
 * sealed, tagged with the commit that holds their batch and released in
 * order once that commit is durable; the open tail waits for its seal; the
 * read-time marks give one latency observation per ack (not per other
 * reply), later batches merge into the last mark when the marks run out,
 * segments merge (waiting for the later commit) when they run out, and the
 * ceiling is kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iotgw/ackq.h"

static const uint8_t ACK[4] = {0x40, 0x02, 0x00, 0x01};
static const uint8_t PINGRESP[2] = {0xd0, 0x00};

static void test_segments_release_in_order(void **state)
{
	(void)state;
	struct ackq q;
	ackq_init(&q, 1024);
	struct prom_histo h = {0};
	assert_int_equal(ackq_append(&q, ACK, 4, true, 1000), 0);
	assert_int_equal(ackq_append(&q, PINGRESP, 2, false, 1000), 0);
	assert_true(ackq_open(&q));
	assert_false(ackq_sealed(&q));
	ackq_seal(&q);
	assert_false(ackq_open(&q));
	assert_true(ackq_sealed(&q));
	size_t n;
	(void)ackq_front(&q, 100, &n);
	assert_int_equal(n, 0); /* pending: its commit is not known yet */
	ackq_commit_pending(&q, 7, UINT64_MAX);
	assert_int_equal(ackq_append(&q, ACK, 4, true, 2000), 0); /* after the seal */
	(void)ackq_front(&q, 6, &n);
	assert_int_equal(n, 0); /* commit 7 is not durable at 6 */
	const uint8_t *p = ackq_front(&q, 7, &n);
	assert_int_equal(n, 6); /* the segment, not the open tail */
	assert_memory_equal(p, ACK, 4);
	ackq_release(&q, n, 1500, &h);
	assert_int_equal(h.count, 1); /* the ack, not the PINGRESP */
	assert_true(h.sum > 0.00049 && h.sum < 0.00051);
	assert_false(ackq_sealed(&q));
	assert_true(ackq_open(&q));
	ackq_seal(&q);
	ackq_commit_pending(&q, 8, UINT64_MAX);
	(void)ackq_front(&q, 8, &n);
	assert_int_equal(n, 4);
	ackq_release(&q, n, 4000, &h);
	assert_int_equal(h.count, 2);
	assert_int_equal(ackq_len(&q), 0);
	assert_null(q.bytes.data); /* an idle device holds no buffer */
	ackq_free(&q);
}

static void test_later_segment_waits_for_the_earlier(void **state)
{
	(void)state;
	struct ackq q;
	ackq_init(&q, 1024);
	assert_int_equal(ackq_append(&q, ACK, 4, true, 1), 0);
	ackq_seal(&q);
	ackq_commit_pending(&q, 5, UINT64_MAX);
	assert_int_equal(ackq_append(&q, PINGRESP, 2, false, 1), 0);
	ackq_seal(&q);
	ackq_commit_pending(&q, 3, UINT64_MAX); /* an older commit: still behind commit 5 */
	size_t n;
	(void)ackq_front(&q, 4, &n);
	assert_int_equal(n, 0);
	(void)ackq_front(&q, 5, &n);
	assert_int_equal(n, 6);
	ackq_free(&q);
}

static void test_segments_merge_when_full(void **state)
{
	(void)state;
	struct ackq q;
	ackq_init(&q, 1024);
	for (uint64_t c = 1; c <= ACKQ_SEGS + 2; c++) {
		assert_int_equal(ackq_append(&q, ACK, 4, true, c), 0);
		ackq_seal(&q);
		ackq_commit_pending(&q, c, UINT64_MAX);
	}
	assert_int_equal(q.nsegs, ACKQ_SEGS);
	size_t n;
	(void)ackq_front(&q, ACKQ_SEGS - 1, &n);
	assert_int_equal(n, 4 * (ACKQ_SEGS - 1));
	(void)ackq_front(&q, ACKQ_SEGS + 1, &n); /* the merged last waits for the latest */
	assert_int_equal(n, 4 * (ACKQ_SEGS - 1));
	(void)ackq_front(&q, ACKQ_SEGS + 2, &n);
	assert_int_equal(n, 4 * (ACKQ_SEGS + 2));
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
	ackq_seal(&q);
	ackq_commit_pending(&q, 1, UINT64_MAX);
	struct prom_histo h = {0};
	size_t n;
	(void)ackq_front(&q, 1, &n);
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
	ackq_seal(&q);
	ackq_commit_pending(&q, 1, UINT64_MAX);
	assert_int_equal(ackq_append(&q, ACK, 4, true, 20), 0);
	ackq_seal(&q);
	struct prom_histo h = {0};
	size_t n;
	(void)ackq_front(&q, 1, &n);
	assert_int_equal(n, 4);
	ackq_release(&q, n, 30, &h);
	assert_int_equal(h.count, 1);
	assert_int_equal(q.nmarks, 1);
	assert_int_equal(q.marks[0].end, 4);
	assert_int_equal(q.nsegs, 1);
	assert_int_equal(q.segs[0].end, 4);
	assert_true(q.segs[0].commit == ACKQ_PENDING);
	ackq_free(&q);
}

static void test_partial_commit_and_share_hold(void **state)
{
	(void)state;
	struct ackq q;
	ackq_init(&q, 1024);
	/* Three PUBLISHes' acks in one batch, and a PINGRESP after them. */
	uint64_t pos[3];
	for (int i = 0; i < 3; i++) {
		pos[i] = ackq_pos(&q);
		assert_int_equal(ackq_append(&q, ACK, 4, true, 1), 0);
	}
	assert_int_equal(ackq_append(&q, PINGRESP, 2, false, 1), 0);
	assert_true(ackq_seal(&q));
	/* The spool took the first; the rest wait (full). */
	ackq_commit_pending(&q, 4, pos[1]);
	size_t n;
	(void)ackq_front(&q, 4, &n);
	assert_int_equal(n, 4);
	/* The second is over its device's share: held from there on. */
	ackq_hold(&q, pos[1]);
	ackq_commit_pending(&q, 5, UINT64_MAX); /* the batch's last commit: nothing pending left */
	(void)ackq_front(&q, 9, &n);
	assert_int_equal(n, 4); /* held bytes wait whatever is durable */
	ackq_release(&q, n, 2, &(struct prom_histo){0});
	ackq_commit_held(&q, 6, pos[2]); /* the second staged later, the third still held */
	(void)ackq_front(&q, 6, &n);
	assert_int_equal(n, 4);
	ackq_commit_held(&q, 7, UINT64_MAX);
	(void)ackq_front(&q, 6, &n);
	assert_int_equal(n, 4);
	(void)ackq_front(&q, 7, &n);
	assert_int_equal(n, 10);
	assert_int_equal(ackq_pos(&q), 14);
	ackq_free(&q);
}

static void test_hold_covers_what_is_sealed_later(void **state)
{
	(void)state;
	struct ackq q;
	ackq_init(&q, 1024);
	assert_int_equal(ackq_append(&q, ACK, 4, true, 1), 0);
	uint64_t held = ackq_pos(&q);
	assert_int_equal(ackq_append(&q, ACK, 4, true, 1), 0);
	/* Held before its bytes were sealed (no segment was free then). */
	ackq_hold(&q, held);
	assert_true(ackq_seal(&q));
	ackq_commit_pending(&q, 3, UINT64_MAX);
	size_t n;
	(void)ackq_front(&q, 3, &n);
	assert_int_equal(n, 4); /* the first; the second waits over the share */
	ackq_commit_held(&q, 4, UINT64_MAX);
	(void)ackq_front(&q, 4, &n);
	assert_int_equal(n, 8);
	assert_int_equal(ackq_append(&q, ACK, 4, true, 1), 0);
	assert_true(ackq_seal(&q)); /* the hold ended: pending again */
	ackq_commit_pending(&q, 5, UINT64_MAX);
	(void)ackq_front(&q, 5, &n);
	assert_int_equal(n, 12);
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
		cmocka_unit_test(test_segments_release_in_order),
		cmocka_unit_test(test_later_segment_waits_for_the_earlier),
		cmocka_unit_test(test_segments_merge_when_full),
		cmocka_unit_test(test_marks_merge_when_full),
		cmocka_unit_test(test_partial_release_shifts_marks),
		cmocka_unit_test(test_partial_commit_and_share_hold),
		cmocka_unit_test(test_hold_covers_what_is_sealed_later),
		cmocka_unit_test(test_ceiling),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
