/* Unit tests for src/strmap.c: the string-keyed map behind the client-id and
 * device-id registries. What the header promises: keys are copied (the caller's
 * string may change or go away), values are borrowed (the map frees them only in
 * strmap_free, and only through the caller's function), put inserts or replaces,
 * del hands the value back. The map has no iteration; size is checked instead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iotgw/strmap.h"

static struct strmap *new_map(void)
{
	struct strmap *m = strmap_new();
	assert_non_null(m);
	return m;
}

/* A distinct value per key, without allocating: the address of an element. */
static char values[20000];

static void *val(size_t i)
{
	return &values[i];
}

static void key_of(size_t i, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "dev%05zu", i);
	assert_true(n > 0 && (size_t)n < outlen);
}

static void test_empty_map(void **state)
{
	(void)state;
	struct strmap *m = new_map();
	assert_int_equal(strmap_size(m), 0);
	assert_null(strmap_get(m, "dev0001"));
	assert_null(strmap_get(m, ""));
	assert_null(strmap_del(m, "dev0001"));
	assert_int_equal(strmap_size(m), 0);
	strmap_free(m, NULL);
	strmap_free(NULL, NULL); /* like every _free in iotgw */
	strmap_free(NULL, free);
}

static void test_put_get_del(void **state)
{
	(void)state;
	struct strmap *m = new_map();
	int a, b;
	assert_int_equal(strmap_put(m, "dev0001", &a), 0);
	assert_int_equal(strmap_put(m, "dev0002", &b), 0);
	assert_int_equal(strmap_size(m), 2);
	assert_ptr_equal(strmap_get(m, "dev0001"), &a);
	assert_ptr_equal(strmap_get(m, "dev0002"), &b);
	assert_null(strmap_get(m, "dev0003"));

	assert_ptr_equal(strmap_del(m, "dev0001"), &a);
	assert_int_equal(strmap_size(m), 1);
	assert_null(strmap_get(m, "dev0001"));
	assert_ptr_equal(strmap_get(m, "dev0002"), &b);
	/* a second delete finds nothing and changes nothing */
	assert_null(strmap_del(m, "dev0001"));
	assert_int_equal(strmap_size(m), 1);
	/* and the key can come back */
	assert_int_equal(strmap_put(m, "dev0001", &b), 0);
	assert_ptr_equal(strmap_get(m, "dev0001"), &b);
	assert_int_equal(strmap_size(m), 2);
	strmap_free(m, NULL);
}

static void test_overwrite_replaces_without_growing(void **state)
{
	(void)state;
	struct strmap *m = new_map();
	int a, b;
	assert_int_equal(strmap_put(m, "k", &a), 0);
	assert_int_equal(strmap_put(m, "k", &b), 0);
	assert_int_equal(strmap_size(m), 1);
	assert_ptr_equal(strmap_get(m, "k"), &b);
	assert_int_equal(strmap_put(m, "k", &b), 0); /* the same value again */
	assert_int_equal(strmap_size(m), 1);
	assert_ptr_equal(strmap_del(m, "k"), &b);
	assert_int_equal(strmap_size(m), 0);
	assert_null(strmap_get(m, "k"));
	strmap_free(m, NULL);
}

static void test_keys_are_copied(void **state)
{
	(void)state;
	struct strmap *m = new_map();
	int a;
	char key[16];
	snprintf(key, sizeof key, "%s", "esp-a1b2c3");
	assert_int_equal(strmap_put(m, key, &a), 0);
	/* the caller reuses its buffer: the map still has the old key, not the new one */
	snprintf(key, sizeof key, "%s", "esp-ffffff");
	assert_ptr_equal(strmap_get(m, "esp-a1b2c3"), &a);
	assert_null(strmap_get(m, key));

	char *heap = strdup("dev0042");
	assert_non_null(heap);
	assert_int_equal(strmap_put(m, heap, &a), 0);
	free(heap); /* the map holds its own copy (ASan would see a use after free) */
	assert_ptr_equal(strmap_get(m, "dev0042"), &a);
	assert_ptr_equal(strmap_del(m, "dev0042"), &a);
	strmap_free(m, NULL);
}

static void test_keys_are_whole_strings(void **state)
{
	(void)state;
	struct strmap *m = new_map();
	static const char *const keys[] = {"", "a", "ab", "abc", "b", "ba", "A", "a ", " a",
					   "\xc3\xa9", "dev0001", "dev00010", "dev0001\x01"};
	const size_t n = sizeof keys / sizeof keys[0];
	for (size_t i = 0; i < n; i++)
		assert_int_equal(strmap_put(m, keys[i], val(i)), 0);
	assert_int_equal(strmap_size(m), n);
	for (size_t i = 0; i < n; i++)
		assert_ptr_equal(strmap_get(m, keys[i]), val(i));
	/* prefixes and extensions of stored keys are other keys */
	assert_null(strmap_get(m, "abcd"));
	assert_null(strmap_get(m, "dev000"));
	assert_null(strmap_get(m, "B"));
	/* the empty key is a key like any other */
	assert_ptr_equal(strmap_del(m, ""), val(0));
	assert_null(strmap_get(m, ""));
	assert_ptr_equal(strmap_get(m, "a"), val(1));

	/* a long key */
	char big[4096];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(strmap_put(m, big, val(99)), 0);
	assert_ptr_equal(strmap_get(m, big), val(99));
	big[sizeof big - 2] = 'y';
	assert_null(strmap_get(m, big));
	strmap_free(m, NULL);
}

static void test_null_values(void **state)
{
	(void)state;
	/* A NULL value is stored (it counts) but reads back like a missing key. */
	struct strmap *m = new_map();
	assert_int_equal(strmap_put(m, "k", NULL), 0);
	assert_int_equal(strmap_size(m), 1);
	assert_null(strmap_get(m, "k"));
	assert_null(strmap_del(m, "k"));
	assert_int_equal(strmap_size(m), 0);
	assert_int_equal(strmap_put(m, "k", NULL), 0);
	strmap_free(m, free); /* free_value is not called for NULL */
}

static void test_many_keys(void **state)
{
	(void)state;
	/* Far past the initial table, through several rehashes, with deletes in between. */
	struct strmap *m = new_map();
	const size_t n = sizeof values;
	char key[32];
	for (size_t i = 0; i < n; i++) {
		key_of(i, key, sizeof key);
		assert_int_equal(strmap_put(m, key, val(i)), 0);
		assert_int_equal(strmap_size(m), i + 1);
		if (i % 1000 == 999) { /* every key so far, mid-growth */
			for (size_t j = 0; j <= i; j += 97) {
				key_of(j, key, sizeof key);
				assert_ptr_equal(strmap_get(m, key), val(j));
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		key_of(i, key, sizeof key);
		assert_ptr_equal(strmap_get(m, key), val(i));
	}
	/* delete the even ones */
	for (size_t i = 0; i < n; i += 2) {
		key_of(i, key, sizeof key);
		assert_ptr_equal(strmap_del(m, key), val(i));
	}
	assert_int_equal(strmap_size(m), n / 2);
	for (size_t i = 0; i < n; i++) {
		key_of(i, key, sizeof key);
		if (i % 2)
			assert_ptr_equal(strmap_get(m, key), val(i));
		else
			assert_null(strmap_get(m, key));
	}
	/* overwrite the odd ones: the size stays */
	for (size_t i = 1; i < n; i += 2) {
		key_of(i, key, sizeof key);
		assert_int_equal(strmap_put(m, key, val(i - 1)), 0);
	}
	assert_int_equal(strmap_size(m), n / 2);
	for (size_t i = 1; i < n; i += 2) {
		key_of(i, key, sizeof key);
		assert_ptr_equal(strmap_get(m, key), val(i - 1));
	}
	/* and empty it completely */
	for (size_t i = 1; i < n; i += 2) {
		key_of(i, key, sizeof key);
		assert_ptr_equal(strmap_del(m, key), val(i - 1));
	}
	assert_int_equal(strmap_size(m), 0);
	key_of(1, key, sizeof key);
	assert_null(strmap_get(m, key));
	strmap_free(m, NULL);
}

static size_t freed;

static void count_free(void *p)
{
	freed++;
	free(p);
}

static void test_free_releases_values_through_the_callback(void **state)
{
	(void)state;
	struct strmap *m = new_map();
	char key[32];
	freed = 0;
	for (size_t i = 0; i < 300; i++) {
		key_of(i, key, sizeof key);
		int *v = malloc(sizeof *v);
		assert_non_null(v);
		*v = (int)i;
		assert_int_equal(strmap_put(m, key, v), 0);
	}
	/* values are borrowed: a replaced or deleted value is the caller's to free */
	int *old = strmap_get(m, "dev00000");
	int *repl = malloc(sizeof *repl);
	assert_non_null(repl);
	*repl = -1;
	assert_int_equal(strmap_put(m, "dev00000", repl), 0);
	free(old);
	int *gone = strmap_del(m, "dev00001");
	assert_non_null(gone);
	assert_int_equal(*gone, 1);
	free(gone);
	assert_int_equal(strmap_put(m, "null-value", NULL), 0);
	/* every remaining non-NULL value exactly once (ASan: no leak, no double free) */
	strmap_free(m, count_free);
	assert_int_equal(freed, 299);
}

/* The reference vectors of the SipHash paper (appendix A): key 00..0f,
 * messages 00, 01, ... of every length; here 0 and 15 bytes, and 8 (one
 * whole block, no tail). */
static bool drop_odd(void *ctx, const char *key, void *value)
{
	(void)key;
	++*(int *)ctx;
	return (uintptr_t)value % 2 == 1;
}

static void test_sweep(void **state)
{
	(void)state;
	struct strmap *m = strmap_new();
	char key[16];
	for (uintptr_t i = 0; i < 5000; i++) {
		snprintf(key, sizeof key, "k%lu", (unsigned long)i);
		assert_int_equal(strmap_put(m, key, (void *)i), 0);
	}
	int seen = 0;
	assert_int_equal(strmap_sweep(m, drop_odd, &seen, NULL), 2500);
	assert_int_equal(seen, 5000);
	assert_int_equal(strmap_size(m), 2500);
	for (uintptr_t i = 0; i < 5000; i++) {
		snprintf(key, sizeof key, "k%lu", (unsigned long)i);
		assert_true(strmap_get(m, key) == (i % 2 ? NULL : (void *)i));
	}
	seen = 0;
	assert_int_equal(strmap_sweep(m, drop_odd, &seen, NULL), 0);
	assert_int_equal(seen, 2500);
	strmap_free(m, NULL);
}

static void test_siphash_reference_vectors(void **state)
{
	(void)state;
	const uint64_t key[2] = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
	unsigned char msg[16];
	for (int i = 0; i < 16; i++)
		msg[i] = (unsigned char)i;
	assert_true(strmap_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ull);
	assert_true(strmap_siphash24(key, msg, 15) == 0xa129ca6149be45e5ull);
	assert_true(strmap_siphash24(key, msg, 8) == 0x93f5f5799a932462ull);
}

/* Maps keyed independently hold the same ids all the same. */
static void test_two_maps_hold_the_same_ids(void **state)
{
	(void)state;
	/* The same ids, put in two maps, come back out of both. */
	struct strmap *a = strmap_new(), *b = strmap_new();
	assert_non_null(a);
	assert_non_null(b);
	char id[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(id, sizeof id, "dev%04d", i);
		assert_int_equal(strmap_put(a, id, a), 0);
		assert_int_equal(strmap_put(b, id, b), 0);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(id, sizeof id, "dev%04d", i);
		assert_ptr_equal(strmap_get(a, id), a);
		assert_ptr_equal(strmap_get(b, id), b);
	}
	strmap_free(a, NULL);
	strmap_free(b, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_siphash_reference_vectors),
		cmocka_unit_test(test_two_maps_hold_the_same_ids),
		cmocka_unit_test(test_empty_map),
		cmocka_unit_test(test_put_get_del),
		cmocka_unit_test(test_overwrite_replaces_without_growing),
		cmocka_unit_test(test_keys_are_copied),
		cmocka_unit_test(test_keys_are_whole_strings),
		cmocka_unit_test(test_null_values),
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_free_releases_values_through_the_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
