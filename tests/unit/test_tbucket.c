/* tbucket: admits `rate` per second over time, bursts up to `burst`, and
 * a large cost puts the bucket into debt instead of being refused forever. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "iotgw/tbucket.h"

static void test_burst_then_rate(void **state)
{
	(void)state;
	struct tbucket b = {0};
	uint64_t now = 1000;
	for (int i = 0; i < 10; i++) /* full at first: the burst goes at once */
		assert_int_equal(tb_take(&b, 10, 10, 1, now), 0);
	uint64_t wait = tb_take(&b, 10, 10, 1, now);
	assert_true(wait > 0 && wait <= 101);
	/* Over 10 s at most 10/s more are admitted, and about that many. */
	int admitted = 0;
	for (uint64_t t = now; t < now + 10000; t += 5)
		admitted += tb_take(&b, 10, 10, 1, t) == 0;
	assert_in_range(admitted, 99, 101);
	assert_false(tb_full(&b, 10, 10, now + 10000));
	assert_true(tb_full(&b, 10, 10, now + 12000));
}

static void test_debt(void **state)
{
	(void)state;
	struct tbucket b = {0};
	/* 1000 bytes/s; one 5000-byte packet passes, then 5 s of debt. */
	assert_int_equal(tb_take(&b, 1000, 1000, 5000, 1), 0);
	uint64_t wait = tb_take(&b, 1000, 1000, 10, 1);
	assert_in_range(wait, 4000, 4100);
	assert_true(tb_take(&b, 1000, 1000, 10, 3000) > 0);
	assert_int_equal(tb_take(&b, 1000, 1000, 10, 1 + wait), 0);
}

static void test_unlimited(void **state)
{
	(void)state;
	struct tbucket b = {0};
	for (int i = 0; i < 1000; i++)
		assert_int_equal(tb_take(&b, 0, 0, 1e9, 5), 0);
	assert_true(tb_full(&b, 0, 0, 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_debt),
		cmocka_unit_test(test_unlimited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
