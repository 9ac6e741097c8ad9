/* Unit tests for src/numfmt.c: the hand-written number text against the C
 * library calls it replaces, byte for byte (formatting) and bit for bit
 * (parsing), on fixed edge cases and on pseudo-random values from a fixed
 * seed. The fast paths are also checked directly, with how often they are
 * taken, so that a fast path that is wrong, or one that quietly hands
 * everything to the C library, fails here. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "iotgw/numfmt.h"

#include "test_rand.h"

/* What src/reading.c wrote before numfmt: cJSON's rule through snprintf. */
static void format_ref(double v, char out[NUMFMT_JSON_CAP])
{
	double a = fabs(v), back = 0;
	if (!isfinite(v)) {
		snprintf(out, NUMFMT_JSON_CAP, "null");
	} else if (a <= INT_MAX && v == (double)(int)v) {
		snprintf(out, NUMFMT_JSON_CAP, "%d", (int)v);
	} else {
		snprintf(out, NUMFMT_JSON_CAP, "%1.15g", v);
		if (sscanf(out, "%lg", &back) != 1 ||
		    fabs(back - v) > fmax(fabs(back), a) * DBL_EPSILON)
			snprintf(out, NUMFMT_JSON_CAP, "%1.17g", v);
	}
}

static double bits_to_double(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

/* Formats v both ways; also the fast path alone, when it takes v. Returns
 * whether the fast path took it. */
static int check_format(double v)
{
	char want[NUMFMT_JSON_CAP], got[NUMFMT_JSON_CAP], fast[NUMFMT_JSON_CAP];
	format_ref(v, want);
	size_t n = numfmt_json(v, got);
	if (strcmp(got, want) != 0 || n != strlen(want))
		fail_msg("numfmt_json(%a = %.17g): want \"%s\", got \"%s\" (%zu)", v, v, want, got,
			 n);
	size_t fn = numfmt_json_fast(v, fast);
	if (fn == 0)
		return 0;
	if (strcmp(fast, want) != 0 || fn != strlen(want))
		fail_msg("numfmt_json_fast(%a = %.17g): want \"%s\", got \"%s\"", v, v, want, fast);
	return 1;
}

static void test_format_edges(void **state)
{
	(void)state;
	const double two53 = 9007199254740992.0;
	const double fixed[] = {
		0.0, -0.0, 1.0, -1.0, 0.1, 0.3, 0.1 + 0.2, 21.5, -40.25, 21.37, 99.99, 125, -40,
		123456789.123456, 0.5, 1.0 / 3, 2.0 / 3, 100, 1e-5, 1.5e-4, 123.456789,
		0.000123456, 732 * 0.1 - 50, (70.7 - 32.0) * 5.0 / 9.0,
		/* 1e-4: the switch to an exponent */
		1e-4, -1e-4, nextafter(1e-4, 0), nextafter(1e-4, 1), 0.00011, 0.000099,
		0.0001005, 0.000100000000000001,
		/* 1e15: the 15-digit limit */
		1e15, -1e15, nextafter(1e15, 0), 1e15 - 1, 1e15 + 1, 999999999999999.9,
		99999999999999.98, 1e14 + 0.5, 1e13, 1e13 + 0.25, 1e12 + 0.25, 123456789012.345,
		/* int limits */
		2147483647.0, -2147483647.0, -2147483648.0, 2147483648.0, 2147483647.5,
		-2147483648.5, 4294967296.0,
		/* 2^53 and above */
		two53, two53 + 2, -two53, two53 - 1, 1e16, 1e17, 1.2345678901234567e18,
		/* 17 digits needed */
		0.1 + 0.7, 1.1 * 1.1, 23.200000000000003, 5e-324, -5e-324, 2.2250738585072014e-308,
		2.2250738585072009e-308, DBL_MIN, DBL_MAX, -DBL_MAX, 1e300, 1e-300, 1e22, 1e23,
		/* not finite */
		INFINITY, -INFINITY, NAN,
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		check_format(fixed[i]);

	/* The fast path takes the usual values, and writes them as expected. */
	static const struct {
		double v;
		const char *text;
	} usual[] = {
		{ 0.0, "0" },
		{ -0.0, "0" },
		{ 21.5, "21.5" },
		{ -40.25, "-40.25" },
		{ 0.1, "0.1" },
		{ 0.3, "0.3" },
		{ 1e-4, "0.0001" },
		{ 0.000123, "0.000123" },
		{ 123456789.123456, "123456789.123456" },
		{ 99999999999999.9, "99999999999999.9" },
		{ 1e15 - 1, "999999999999999" },
		{ -2147483648.0, "-2147483648" },
		{ 732, "732" },
	};
	for (size_t i = 0; i < sizeof(usual) / sizeof(usual[0]); i++) {
		char out[NUMFMT_JSON_CAP];
		size_t n = numfmt_json_fast(usual[i].v, out);
		if (n == 0 || strcmp(out, usual[i].text) != 0)
			fail_msg("fast path for %.17g: want \"%s\", got %zu \"%s\"", usual[i].v,
				 usual[i].text, n, n ? out : "");
	}
	/* And leaves these to snprintf. */
	const double rare[] = { 0.1 + 0.2, 1e15, two53, 1e-5, 0.0000995, 1.0 / 3, 1e300, 5e-324 };
	for (size_t i = 0; i < sizeof(rare) / sizeof(rare[0]); i++) {
		char out[NUMFMT_JSON_CAP];
		if (numfmt_json_fast(rare[i], out) != 0)
			fail_msg("fast path took %.17g as \"%s\"", rare[i], out);
	}
}

/* The text of a random decimal: up to 15 digits, 0 to 8 of them after the
 * point, maybe negative. Returns whether it has at most 15 significant
 * digits and 6 decimals, and lies in [1e-4, 1e15): what the fast path
 * must take. */
static int random_decimal(char *text, size_t cap)
{
	int k = (int)(test_rand() % 9);
	int len = 1 + (int)(test_rand() % 15);
	uint64_t m = test_rand() % 1000000000000000ull;
	uint64_t lim = 1;
	for (int i = 0; i < len; i++)
		lim *= 10;
	m %= lim;
	const char *sign = test_rand() % 2 ? "-" : "";
	uint64_t p10 = 1;
	for (int i = 0; i < k; i++)
		p10 *= 10;
	if (k == 0)
		snprintf(text, cap, "%s%llu", sign, (unsigned long long)m);
	else
		snprintf(text, cap, "%s%llu.%0*llu", sign, (unsigned long long)(m / p10), k,
			 (unsigned long long)(m % p10));
	/* m < 10^15: at most 15 significant digits; in range unless tiny. */
	return k <= 6 && m >= p10 / 10000 && m != 0;
}

static void test_format_random(void **state)
{
	(void)state;
	int must = 0, took = 0;
	for (int i = 0; i < 300000; i++) {
		char text[40];
		int usual = random_decimal(text, sizeof(text));
		double v = strtod(text, NULL);
		int fast = check_format(v);
		if (usual) {
			must++;
			if (!fast)
				fail_msg("fast path left \"%s\" (%.17g) to snprintf", text, v);
		}
		took += fast;
	}
	print_message("random decimals: %d of 300000 by hand (%d had to be)\n", took, must);
	assert_true(must > 150000);

	/* Any double: random bit patterns, and results of the arithmetic the
	 * decoder does (Fahrenheit, ADC calibration), which rarely land on a
	 * short decimal. */
	took = 0;
	for (int i = 0; i < 200000; i++) {
		double v = bits_to_double(test_rand());
		took += check_format(v);
		double r = (double)(test_rand() % 4096);
		took += check_format(r * 0.1 - 50);
		took += check_format((r / 10 - 32.0) * 5.0 / 9.0);
		double mant = (double)(test_rand() >> 11);
		took += check_format(ldexp(mant, (int)(test_rand() % 80) - 60));
	}
	print_message("other doubles: %d of 800000 by hand\n", took);
}

/* Parses text both ways. Returns whether numfmt_parse_fast took it. */
static int check_parse(const char *text)
{
	size_t n = strlen(text);
	char *end = NULL;
	double want = strtod(text, &end);
	double got = 0, fast = 0;
	int rc = numfmt_parse(text, n, &got);
	if (rc != 0)
		fail_msg("numfmt_parse(\"%s\") failed", text);
	if (end != text + n)
		fail_msg("test bug: strtod stops early in \"%s\"", text);
	if (memcmp(&got, &want, sizeof(got)) != 0)
		fail_msg("numfmt_parse(\"%s\"): want %a, got %a", text, want, got);
	if (numfmt_parse_fast(text, n, &fast) != 0)
		return 0;
	if (memcmp(&fast, &want, sizeof(fast)) != 0)
		fail_msg("numfmt_parse_fast(\"%s\"): want %a, got %a", text, want, fast);
	return 1;
}

static void test_parse_edges(void **state)
{
	(void)state;
	static const char *const good[] = {
		"0", "-0", "+0", "00", "007", "-007.500", ".5", "5.", "-.5e-3", "+.5E+3", "1e5",
		"1E+5", "1e-5", "0.1", "0.3", "21.5", "-40.25", "123456789.123456", "0.0001",
		"9007199254740991", "9007199254740992", "9007199254740993", "9007199254740994",
		"9007199254740995", "18446744073709551615", "18446744073709551616",
		"99999999999999999999", "1e22", "1e23", "1e-22", "1e-23", "123e20", "123e-24",
		"4.9e-324", "5e-324", "2e-324", "2.2250738585072014e-308",
		"2.2250738585072011e-308",
		"1.7976931348623157e308", "1.7976931348623158e308", "1e308", "1e309", "-1e400",
		"1e-400", "0e999999999", "-0e-999999999", "0.000000000000000000000000000000",
		"123456789012345678901234567890", "0.000000000000000000000000000001",
		"1.0000000000000000000000000000000000000000000000000000000000001",
		"0.30000000000000004", "0.1000000000000000055511151231257827",
		"1.5e00000000000000000000000000000000000000000000000000000000001",
		"9007199254740993e-22", "9007199254740992e22", "1e00000000000000000000000000000000",
	};
	int took = 0;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		took += check_parse(good[i]);
	assert_true(took > 20);

	static const char *const usual[] = { "0", "-0", "21.5", "-40.25", "0.1", "1e5", ".5",
					     "9007199254740992", "123456789.123456", "1e-22" };
	for (size_t i = 0; i < sizeof(usual) / sizeof(usual[0]); i++) {
		double v;
		if (numfmt_parse_fast(usual[i], strlen(usual[i]), &v) != 0)
			fail_msg("fast path left \"%s\" to strtod", usual[i]);
	}

	/* Not numbers, or too long: -1, and *out untouched. */
	static const char *const bad[] = {
		"", "-", "+", ".", "-.", "e5", ".e5", "1e", "1e+", "1e-", "0x10", "inf", "nan",
		"Infinity", " 1", "1 ", "1.2.3", "1e5.5", "--1", "+-1", "1,5", "1e5e5", "1..",
		"1234567890123456789012345678901234567890123456789012345678901234",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double v = 42;
		if (numfmt_parse(bad[i], strlen(bad[i]), &v) != -1 || v != 42)
			fail_msg("numfmt_parse accepted \"%s\"", bad[i]);
		if (numfmt_parse_fast(bad[i], strlen(bad[i]), &v) != -1 || v != 42)
			fail_msg("numfmt_parse_fast accepted \"%s\"", bad[i]);
	}
	/* Length-delimited: the bytes after n are not read. */
	double v = 0;
	assert_int_equal(numfmt_parse("21.5x", 4, &v), 0);
	assert_true(v == 21.5);
	assert_int_equal(numfmt_parse("1.5e300000", 3, &v), 0);
	assert_true(v == 1.5);
}

static void test_parse_random(void **state)
{
	(void)state;
	int took = 0;
	for (int i = 0; i < 300000; i++) {
		char text[64];
		random_decimal(text, sizeof(text));
		/* At most 15 digits and 8 decimals: always exact. */
		if (!check_parse(text))
			fail_msg("fast path left \"%s\" to strtod", text);
		/* With an exponent, sometimes beyond the exact range. */
		size_t n = strlen(text);
		snprintf(text + n, sizeof(text) - n, "e%d", (int)(test_rand() % 61) - 30);
		took += check_parse(text);
	}
	print_message("with exponents: %d of 300000 exact\n", took);
	assert_true(took > 100000);

	/* Any double, as printf writes it with various precisions. */
	took = 0;
	for (int i = 0; i < 100000; i++) {
		double d = bits_to_double(test_rand());
		if (!isfinite(d))
			continue;
		char texts[5][400];
		snprintf(texts[0], sizeof(texts[0]), "%.17g", d);
		snprintf(texts[1], sizeof(texts[1]), "%.15g", d);
		snprintf(texts[2], sizeof(texts[2]), "%.6g", d);
		snprintf(texts[3], sizeof(texts[3]), "%.3e", d);
		snprintf(texts[4], sizeof(texts[4]), "%.20f", d);
		for (size_t f = 0; f < 5; f++)
			if (strlen(texts[f]) <= NUMFMT_PARSE_MAX)
				took += check_parse(texts[f]);
		char text[64];
		double scaled = ldexp((double)(test_rand() >> 11), -(int)(test_rand() % 60));
		snprintf(text, sizeof(text), "%.17g", scaled);
		took += check_parse(text);
	}
	print_message("printf'd doubles: %d exact\n", took);
}

/* cJSON's own printing is what the reading promises: numfmt_json against it.
 * One difference is kept on purpose, from before numfmt: -0 is written "0"
 * (cJSON 1.7.15 prints "-0"; readings never carry -0 anyway, round2 and the
 * ADC decoder clear it). */
static void test_format_matches_cjson(void **state)
{
	(void)state;
	for (int i = 0; i < 100000; i++) {
		double v;
		switch (i % 4) {
		case 0:
			v = bits_to_double(test_rand());
			break;
		case 1:
			v = (double)(int64_t)(test_rand() % 2000001) / 100.0 - 10000.0;
			break;
		case 2: {
			char text[40];
			random_decimal(text, sizeof(text));
			v = strtod(text, NULL);
			break;
		}
		default:
			v = (double)(int64_t)(test_rand() >> 10) * (test_rand() % 2 ? 1 : -1);
			break;
		}
		if (v == 0)
			v = 0.0;
		cJSON *num = cJSON_CreateNumber(v);
		assert_non_null(num);
		char *want = cJSON_PrintUnformatted(num);
		assert_non_null(want);
		char got[NUMFMT_JSON_CAP];
		numfmt_json(v, got);
		if (strcmp(got, want) != 0)
			fail_msg("%a: cJSON \"%s\", numfmt \"%s\"", v, want, got);
		free(want);
		cJSON_Delete(num);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_edges),	 cmocka_unit_test(test_format_random),
		cmocka_unit_test(test_parse_edges),	 cmocka_unit_test(test_parse_random),
		cmocka_unit_test(test_format_matches_cjson),
	};
	return cmocka_run_group_tests_name("numfmt", tests, NULL, NULL);
}
