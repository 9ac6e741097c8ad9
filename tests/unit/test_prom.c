/* Unit tests for src/prom.c: histogram buckets (le is inclusive, +Inf is the
 * count, bad values count as 0), the exposition lines (HELP/TYPE, labels,
 * integers exact, cumulative buckets) and label escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "iotgw/prom.h"

static char *text(struct buf *b)
{
	assert_int_equal(buf_append(b, "", 1), 0);
	return (char *)b->data;
}

static void test_buckets_are_inclusive_and_cumulative_on_output(void **state)
{
	(void)state;
	struct prom_histo h = {0};
	prom_observe(&h, 0.0005, 1); /* exactly the first bound: in it */
	prom_observe(&h, 0.0006, 2); /* next bucket, twice */
	prom_observe(&h, 11, 1);     /* above the last bound: only +Inf */
	prom_observe(&h, NAN, 1);    /* counted as 0 */
	prom_observe(&h, -1, 1);     /* a clock step: counted as 0 */
	prom_observe(&h, 1, 0);      /* nothing */
	assert_int_equal(h.count, 6);
	assert_int_equal(h.bucket[0], 3);
	assert_int_equal(h.bucket[1], 2);
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(prom_histo(&b, "x_seconds", "l=\"a\"", &h), 0);
	const char *t = text(&b);
	assert_non_null(strstr(t, "x_seconds_bucket{l=\"a\",le=\"0.0005\"} 3\n"));
	assert_non_null(strstr(t, "x_seconds_bucket{l=\"a\",le=\"0.001\"} 5\n"));
	assert_non_null(strstr(t, "x_seconds_bucket{l=\"a\",le=\"10\"} 5\n"));
	assert_non_null(strstr(t, "x_seconds_bucket{l=\"a\",le=\"+Inf\"} 6\n"));
	assert_non_null(strstr(t, "x_seconds_count{l=\"a\"} 6\n"));
	assert_non_null(strstr(t, "x_seconds_sum{l=\"a\"} 11.0017"));
	buf_free(&b);
}

static void test_histogram_without_labels(void **state)
{
	(void)state;
	struct prom_histo h = {0};
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(prom_histo(&b, "y", NULL, &h), 0);
	const char *t = text(&b);
	assert_non_null(strstr(t, "y_bucket{le=\"0.0005\"} 0\n"));
	assert_non_null(strstr(t, "y_sum 0\ny_count 0\n"));
	buf_free(&b);
}

static void test_samples(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(prom_family(&b, "a_total", "counter", "Things."), 0);
	assert_int_equal(prom_sample_u64(&b, "a_total", NULL, 18446744073709551615ull), 0);
	assert_int_equal(prom_sample(&b, "g", "", 3), 0);
	assert_int_equal(prom_sample(&b, "g", "k=\"v\"", 0.25), 0);
	assert_int_equal(prom_sample(&b, "g", NULL, 1e300), 0);
	assert_int_equal(prom_sample(&b, "g", NULL, INFINITY), 0);
	assert_int_equal(prom_sample(&b, "g", NULL, NAN), 0);
	assert_string_equal(text(&b), "# HELP a_total Things.\n# TYPE a_total counter\n"
				      "a_total 18446744073709551615\ng 3\ng{k=\"v\"} 0.25\n"
				      "g 1.0000000000000001e+300\ng +Inf\ng NaN\n");
	buf_free(&b);
}

static void test_full_buffer_is_reported(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(prom_sample(&b, "a_long_name", NULL, 1), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void test_label_escaping(void **state)
{
	(void)state;
	char out[32];
	assert_string_equal(prom_label_value("a\"b\\c\nd", out, sizeof out), "a\\\"b\\\\c\\nd");
	/* Truncation never splits an escape or overruns. */
	char small[5];
	assert_string_equal(prom_label_value("\"\"\"", small, sizeof small), "\\\"");
	assert_string_equal(prom_label_value("abcdef", small, sizeof small), "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets_are_inclusive_and_cumulative_on_output),
		cmocka_unit_test(test_histogram_without_labels),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_full_buffer_is_reported),
		cmocka_unit_test(test_label_escaping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
