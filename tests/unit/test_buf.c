/* Unit tests for src/buf.c: the growable byte buffer with a ceiling. What the
 * header promises: nothing is allocated until bytes arrive, growth never passes
 * the ceiling (a refused append leaves the buffer as it was, also when the
 * sizes would overflow), consume keeps the rest in order from data[0], and an
 * empty buffer can give its storage back and be used again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iotgw/buf.h"

/* A byte pattern that shows where each byte came from. */
static uint8_t pat(size_t i)
{
	return (uint8_t)(i * 7u + 3u);
}

static void fill_pattern(uint8_t *p, size_t start, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(start + i);
}

static void assert_pattern(const struct buf *b, size_t start)
{
	for (size_t i = 0; i < b->len; i++)
		if (b->data[i] != pat(start + i))
			fail_msg("byte %zu is %u, expected %u", i, b->data[i], pat(start + i));
}

static void assert_invariants(const struct buf *b)
{
	assert_true(b->len <= b->cap);
	assert_true(b->cap <= b->max);
	assert_true((b->cap == 0) == (b->data == NULL));
}

static void test_init_allocates_nothing(void **state)
{
	(void)state;
	struct buf b;
	memset(&b, 0xa5, sizeof b);
	buf_init(&b, 4096);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 4096);
	/* appending nothing does not allocate either */
	assert_int_equal(buf_append(&b, "x", 0), 0);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	/* nor does reserving nothing */
	assert_int_equal(buf_reserve(&b, 0), 0);
	assert_null(b.data);
	buf_free(&b);
	assert_null(b.data);
}

static void test_append_keeps_bytes_across_growth(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1u << 20);
	uint8_t chunk[1024];
	size_t total = 0, last_cap = 0, grew = 0;
	/* odd-sized appends (1..1009 bytes) cross every doubling from the first allocation
	 * to 200 KB */
	for (size_t n = 1; total + n <= 200000; n = n % 997 + 13) {
		fill_pattern(chunk, total, n);
		assert_int_equal(buf_append(&b, chunk, n), 0);
		total += n;
		assert_int_equal(b.len, total);
		assert_invariants(&b);
		if (b.cap != last_cap) {
			assert_true(b.cap > last_cap);
			last_cap = b.cap;
			grew++;
		}
	}
	assert_pattern(&b, 0);
	/* geometric growth: a handful of reallocations, not one per append */
	assert_true(grew >= 2 && grew <= 20);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void test_reserve_makes_room_without_changing_contents(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10000);
	assert_int_equal(buf_append(&b, "abc", 3), 0);
	assert_int_equal(buf_reserve(&b, 5000), 0);
	assert_true(b.cap >= 5003);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "abc", 3);
	assert_invariants(&b);
	/* room already there: the storage stays where it is */
	uint8_t *before = b.data;
	size_t cap = b.cap;
	assert_int_equal(buf_reserve(&b, 10), 0);
	assert_ptr_equal(b.data, before);
	assert_int_equal(b.cap, cap);
	/* appends within the reserved room do not move it either */
	uint8_t chunk[4000];
	fill_pattern(chunk, 0, sizeof chunk);
	assert_int_equal(buf_append(&b, chunk, sizeof chunk), 0);
	assert_ptr_equal(b.data, before);
	buf_free(&b);
}

static void test_ceiling_is_exact(void **state)
{
	(void)state;
	/* a ceiling that is not a power of two and below the first allocation */
	struct buf b;
	buf_init(&b, 100);
	uint8_t chunk[100];
	fill_pattern(chunk, 0, sizeof chunk);
	assert_int_equal(buf_append(&b, chunk, 60), 0);
	assert_invariants(&b);
	assert_int_equal(buf_append(&b, chunk + 60, 40), 0); /* exactly full */
	assert_int_equal(b.len, 100);
	assert_int_equal(b.cap, 100);
	assert_pattern(&b, 0);
	/* one byte more is refused, and nothing changes */
	uint8_t *data = b.data;
	assert_int_equal(buf_append(&b, "x", 1), -1);
	assert_int_equal(buf_reserve(&b, 1), -1);
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.len, 100);
	assert_int_equal(b.cap, 100);
	assert_pattern(&b, 0);
	/* consuming makes room again */
	buf_consume(&b, 1);
	assert_int_equal(buf_append(&b, chunk, 1), 0);
	assert_int_equal(b.len, 100);
	assert_int_equal(buf_append(&b, chunk, 1), -1);
	buf_free(&b);
}

static void test_refused_append_leaves_buffer_unchanged(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1000);
	assert_int_equal(buf_append(&b, "hello", 5), 0);
	struct buf saved = b;
	uint8_t big[1001];
	memset(big, 'z', sizeof big);
	/* larger than the whole ceiling, and larger than what is left */
	assert_int_equal(buf_append(&b, big, sizeof big), -1);
	assert_int_equal(buf_append(&b, big, 996), -1);
	assert_int_equal(buf_reserve(&b, 996), -1);
	assert_memory_equal(&b, &saved, sizeof b);
	assert_memory_equal(b.data, "hello", 5);
	/* what still fits is accepted */
	assert_int_equal(buf_append(&b, big, 995), 0);
	assert_int_equal(b.len, 1000);
	buf_free(&b);
}

static void test_sizes_that_would_overflow_are_refused(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, SIZE_MAX);
	assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	struct buf saved = b;
	/* len + extra wraps around: must not be taken for a small request */
	assert_int_equal(buf_reserve(&b, SIZE_MAX), -1);
	assert_int_equal(buf_reserve(&b, SIZE_MAX - 5), -1);
	assert_memory_equal(&b, &saved, sizeof b);
	buf_free(&b);

	/* a ceiling of 0 takes nothing but empty appends */
	buf_init(&b, 0);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(buf_append(&b, "x", 1), -1);
	assert_int_equal(buf_reserve(&b, 1), -1);
	assert_null(b.data);
	buf_free(&b);
}

static void test_consume(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 4096);
	uint8_t chunk[1000];
	fill_pattern(chunk, 0, sizeof chunk);
	assert_int_equal(buf_append(&b, chunk, sizeof chunk), 0);
	size_t cap = b.cap;

	buf_consume(&b, 0);
	assert_int_equal(b.len, 1000);
	assert_pattern(&b, 0);

	buf_consume(&b, 1);
	assert_int_equal(b.len, 999);
	assert_pattern(&b, 1); /* the rest moved to data[0], in order */

	buf_consume(&b, 500);
	assert_int_equal(b.len, 499);
	assert_pattern(&b, 501);
	assert_int_equal(b.cap, cap); /* consume never reallocates */

	buf_consume(&b, b.len); /* everything */
	assert_int_equal(b.len, 0);
	assert_non_null(b.data); /* storage kept until shrink */
	assert_int_equal(b.cap, cap);
	buf_free(&b);
}

static void test_stream_of_appends_and_consumes(void **state)
{
	(void)state;
	/* A connection's input: bytes arrive in chunks, whole "packets" of varying sizes
	 * are taken off the front; the order of every byte survives, the ceiling holds. */
	struct buf b;
	buf_init(&b, 3000);
	uint8_t chunk[700];
	size_t in = 0, out = 0;
	for (unsigned round = 0; round < 2000; round++) {
		size_t n = (round * 37u) % sizeof chunk + 1;
		fill_pattern(chunk, in, n);
		if (buf_append(&b, chunk, n) == 0) {
			in += n;
		} else {
			assert_true(b.len + n > b.max); /* refused only at the ceiling */
		}
		assert_invariants(&b);
		assert_int_equal(b.len, in - out);
		assert_pattern(&b, out);
		size_t take = (round * 53u) % 900;
		if (take > b.len)
			take = b.len;
		buf_consume(&b, take);
		out += take;
	}
	assert_true(in > 100000); /* the buffer was reused many times over */
	buf_free(&b);
}

static void test_shrink_if_empty(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 4096);
	/* never allocated: nothing to do */
	buf_shrink_if_empty(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);

	assert_int_equal(buf_append(&b, "abc", 3), 0);
	/* not empty: kept */
	buf_shrink_if_empty(&b);
	assert_non_null(b.data);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "abc", 3);

	buf_consume(&b, 3);
	buf_shrink_if_empty(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 4096); /* the ceiling stays */
	buf_shrink_if_empty(&b);    /* twice is harmless */

	/* and the buffer is usable again, with the same ceiling */
	assert_int_equal(buf_append(&b, "xyz", 3), 0);
	assert_memory_equal(b.data, "xyz", 3);
	uint8_t big[4094];
	memset(big, 0, sizeof big);
	assert_int_equal(buf_append(&b, big, sizeof big), -1);
	assert_int_equal(buf_append(&b, big, sizeof big - 1), 0);
	assert_int_equal(b.len, 4096);
	buf_free(&b);
}

static void test_free_resets_and_is_idempotent(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 512);
	assert_int_equal(buf_append(&b, "data", 4), 0);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	buf_free(&b); /* a second free is safe (data is NULL) */
	/* reusable after free with the same ceiling */
	assert_int_equal(buf_append(&b, "more", 4), 0);
	assert_memory_equal(b.data, "more", 4);
	assert_int_equal(b.max, 512);
	buf_free(&b);
}

/* buf_appendf formats in place when the text fits, grows exactly when it
 * does not, and leaves the buffer unchanged past the ceiling. */
static void test_appendf(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 64);
	assert_int_equal(buf_appendf(&b, "%s=%d", "a", 1), 0); /* from nothing */
	assert_int_equal(b.len, 3);
	assert_int_equal(buf_appendf(&b, ";%0*d", 20, 7), 0); /* grows */
	assert_int_equal(b.len, 24);
	assert_memory_equal(b.data, "a=1;00000000000000000007", 24);
	assert_int_equal(buf_appendf(&b, "%s", ""), 0);
	assert_int_equal(b.len, 24);
	/* 40 more would pass the ceiling of 64 (with room for the NUL). */
	assert_int_equal(buf_appendf(&b, "%040d", 0), -1);
	assert_int_equal(b.len, 24);
	assert_memory_equal(b.data, "a=1;00000000000000000007", 24);
	assert_int_equal(buf_appendf(&b, "%038d", 0), 0);
	assert_int_equal(b.len, 62);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_allocates_nothing),
		cmocka_unit_test(test_append_keeps_bytes_across_growth),
		cmocka_unit_test(test_reserve_makes_room_without_changing_contents),
		cmocka_unit_test(test_ceiling_is_exact),
		cmocka_unit_test(test_refused_append_leaves_buffer_unchanged),
		cmocka_unit_test(test_sizes_that_would_overflow_are_refused),
		cmocka_unit_test(test_consume),
		cmocka_unit_test(test_stream_of_appends_and_consumes),
		cmocka_unit_test(test_shrink_if_empty),
		cmocka_unit_test(test_free_resets_and_is_idempotent),
		cmocka_unit_test(test_appendf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
