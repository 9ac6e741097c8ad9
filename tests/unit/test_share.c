/* share: the per-device share of the spool — fixed limits, the fair
 * share once the spool is half full, and what is not over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "iotgw/share.h"

static struct share_in base(void)
{
	return (struct share_in){.fair = true, .max_messages = 1000, .max_bytes = 1 << 20,
				 .devices = 1};
}

static void test_no_limit_applies(void **state)
{
	(void)state;
	struct share_in in = base();
	in.messages = 900;
	in.bytes = 90000;
	in.fill = 0.9;
	enum share_limit w;
	/* Alone, a device may fill the spool. */
	assert_true(share_use(&in, &w, NULL) == 0.0);
	assert_int_equal(w, SHARE_NONE);
	/* Below half full, nobody is over a fair share. */
	in.devices = 10;
	in.fill = 0.49;
	assert_true(share_use(&in, &w, NULL) == 0.0);
	in.fair = false;
	in.fill = 0.99;
	assert_true(share_use(&in, &w, NULL) == 0.0);
}

static void test_fixed_limits(void **state)
{
	(void)state;
	struct share_in in = base();
	in.max_messages_per_device = 50;
	in.max_bytes_per_device = 4000;
	enum share_limit w;
	uint64_t limit;
	in.messages = 50;
	in.bytes = 1000;
	assert_true(share_use(&in, &w, &limit) == 1.0); /* at the limit: not over */
	assert_int_equal(w, SHARE_MESSAGES);
	assert_int_equal(limit, 50);
	in.messages = 51;
	assert_true(share_use(&in, &w, NULL) > 1.0);
	in.messages = 10;
	in.bytes = 4001;
	assert_true(share_use(&in, &w, &limit) > 1.0);
	assert_int_equal(w, SHARE_BYTES);
	assert_int_equal(limit, 4000);
	assert_string_equal(share_limit_name(w), "max_bytes_per_device");
}

static void test_fair_share(void **state)
{
	(void)state;
	struct share_in in = base();
	in.fill = 0.5;
	in.devices = 4;
	enum share_limit w;
	uint64_t limit;
	/* Four devices at the same rate hold a quarter each at a full spool:
	 * none is over. */
	in.messages = 250;
	in.bytes = 1000;
	assert_true(share_use(&in, &w, &limit) == 1.0);
	assert_int_equal(w, SHARE_FAIR_MESSAGES);
	assert_int_equal(limit, 250);
	in.messages = 251;
	assert_true(share_use(&in, NULL, NULL) > 1.0);
	/* Big readings: the byte share decides. */
	in.messages = 10;
	in.bytes = (1 << 20) / 4 + 1;
	assert_true(share_use(&in, &w, NULL) > 1.0);
	assert_int_equal(w, SHARE_FAIR_BYTES);
	/* More devices than messages: at least one each. */
	in.devices = 5000;
	in.messages = 1;
	in.bytes = 100;
	assert_true(share_use(&in, &w, &limit) >= 1.0);
	assert_int_equal(limit, 1);
	/* The tighter of a fixed limit and the fair share decides. */
	in = base();
	in.fill = 0.8;
	in.devices = 2;
	in.max_messages_per_device = 100;
	in.messages = 200;
	assert_true(share_use(&in, &w, &limit) == 2.0);
	assert_int_equal(w, SHARE_MESSAGES);
}

/* Below half full the fair share does not hold a device back, but its
 * episode lasts until it is well within that share. */
static void test_episode_ignores_the_fill(void **state)
{
	(void)state;
	struct share_in in = base();
	in.devices = 4;
	in.fill = 0.49;
	in.messages = 400;
	assert_true(share_use(&in, NULL, NULL) == 0.0);
	assert_true(share_episode_use(&in) > 1.0);
	in.messages = 200;
	assert_true(share_episode_use(&in) < SHARE_EPISODE_END);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_limit_applies),
		cmocka_unit_test(test_fixed_limits),
		cmocka_unit_test(test_fair_share),
		cmocka_unit_test(test_episode_ignores_the_fill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
