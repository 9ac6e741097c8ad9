/* Unit tests for src/jscan.c: whatever jscan accepts, cJSON reads the same
 * way (structure, keys, strings, numbers bit for bit), on fixed cases and on
 * pseudo-random JSON-like text from a fixed seed, clean and mutated; and
 * the simple JSON sensors send is accepted, so the decoder's fast path is
 * the usual one. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "iotgw/jscan.h"
#include "iotgw/numfmt.h"

#include "test_rand.h"

static bool json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* v (from jscan) against c (from cJSON), recursively. */
static void same(const char *text, const struct jscan_val *v, const cJSON *c)
{
	double d = 0;
	switch (v->type) {
	case JSCAN_OBJECT:
	case JSCAN_ARRAY: {
		if (!(v->type == JSCAN_OBJECT ? cJSON_IsObject(c) : cJSON_IsArray(c)))
			fail_msg("%s: container type differs", text);
		struct jscan_iter it;
		struct jscan_val k, e;
		const cJSON *child = c->child;
		jscan_iter_init(&it, v);
		while (jscan_next(&it, &k, &e)) {
			if (!child)
				fail_msg("%s: jscan has more members", text);
			if (v->type == JSCAN_OBJECT) {
				if (!child->string || strlen(child->string) != k.n ||
				    memcmp(child->string, k.p, k.n) != 0)
					fail_msg("%s: key \"%.*s\" differs", text, (int)k.n,
						 k.p);
			} else if (k.p != NULL || k.n != 0) {
				fail_msg("%s: an array element with a key", text);
			}
			same(text, &e, child);
			child = child->next;
		}
		if (child)
			fail_msg("%s: cJSON has more members", text);
		break;
	}
	case JSCAN_STRING:
		if (!cJSON_IsString(c) || strlen(c->valuestring) != v->n ||
		    memcmp(c->valuestring, v->p, v->n) != 0)
			fail_msg("%s: string \"%.*s\" differs", text, (int)v->n, v->p);
		break;
	case JSCAN_NUMBER:
		if (!cJSON_IsNumber(c) || numfmt_parse(v->p, v->n, &d) != 0 ||
		    memcmp(&d, &c->valuedouble, sizeof(d)) != 0)
			fail_msg("%s: number %.*s: numfmt %a, cJSON %a", text, (int)v->n, v->p, d,
				 c->valuedouble);
		break;
	case JSCAN_TRUE:
		if (!cJSON_IsTrue(c))
			fail_msg("%s: true differs", text);
		break;
	case JSCAN_FALSE:
		if (!cJSON_IsFalse(c))
			fail_msg("%s: false differs", text);
		break;
	case JSCAN_NULL:
		if (!cJSON_IsNull(c))
			fail_msg("%s: null differs", text);
		break;
	}
}

/* Visits every value under v with jscan_next (on the caller's bytes). */
static void walk(const struct jscan_val *v)
{
	struct jscan_iter it;
	struct jscan_val k, e;
	jscan_iter_init(&it, v);
	while (jscan_next(&it, &k, &e))
		walk(&e);
}

/* Returns whether jscan accepted text[0..n); if it did, cJSON must read it
 * to its end, with the same values. */
static bool check(const char *text, size_t n)
{
	struct jscan_val v;
	/* On a heap copy of exactly n bytes, so ASan sees any read past them. */
	char *copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, text, n);
	int rc = jscan_parse(copy, n, &v);
	if (rc == 0)
		walk(&v);
	free(copy);
	if (rc != 0)
		return false;
	assert_int_equal(jscan_parse(text, n, &v), 0);
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
	if (!root)
		fail_msg("jscan accepts, cJSON rejects: %.*s", (int)n, text);
	for (const char *q = end; q < text + n; q++)
		if (!json_ws(*q))
			fail_msg("cJSON stops early in: %.*s", (int)n, text);
	same(text, &v, root);
	cJSON_Delete(root);
	return true;
}

static void check_str(const char *text, bool accept)
{
	if (check(text, strlen(text)) != accept)
		fail_msg("jscan %s \"%s\"", accept ? "rejects" : "accepts", text);
}

static void test_fixed(void **state)
{
	(void)state;
	static const char *const good[] = {
		"{\"d\":{\"temp\":21.5,\"humidity\":40}}",
		" {\"temp\" : -40.25 , \"unit\":\"C\"}\r\n",
		"{\"rssi\":-70,\"temp\":21,\"meta\":{\"x\":[1,2,{\"temp\":99}]},\"ok\":true}",
		"{}", "[]", "[ ]", "{ }", "\"x\"", "\"\"", "-0", "0", "1e5", "-1.5E-3", "true",
		"false", "null", "[true,false,null,\"\",0,[],{}]", "{\"\":1,\"\":2}",
		"{\"\xc3\xa9\":\"\xe2\x82\xac\"}", "1e400", "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]",
		"123456789012345678901234567890123456789012345678901234567890123",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		check_str(good[i], true);
	static const char *const bad[] = {
		"", " ", "{", "}", "[", "{\"a\":01}", "{\"a\":.5}", "{\"a\":1.}", "{\"a\":+1}",
		"{\"a\":-}", "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":0x10}", "{\"a\":\"\\n\"}",
		"{\"a\":\"\\u0041\"}", "{\"\\u0061\":1}", "{\"a\":\"\x01\"}", "{\"a\":\"\t\"}",
		"\v{}", "{}\f", "{\"a\":1,}", "[1,]", "[,1]", "{,}", "{\"a\" 1}", "{a:1}",
		"{'a':1}", "{\"a\":1}}", "{\"a\":1} x", "{\"a\":1}{}", "tru", "nul", "True",
		"truex", "[1 2]", "{\"a\":1 \"b\":2}", "\xef\xbb\xbf{}", "{\"a\":NaN}",
		"{\"a\":Infinity}", "{\"a\":-Infinity}", "\"abc", "{\"a\":\"abc}",
		"1234567890123456789012345678901234567890123456789012345678901234",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_str(bad[i], false);
	/* A NUL inside the length is neither whitespace nor string content. */
	assert_false(check("{}\0", 3));
	assert_false(check("\0{}", 3));
	assert_false(check("[\"a\0\"]", 6));

	/* Nesting: JSCAN_DEPTH_MAX levels are fine, one more is cJSON's. */
	char deep[2 * JSCAN_DEPTH_MAX + 3];
	for (int extra = 0; extra <= 1; extra++) {
		int d = JSCAN_DEPTH_MAX + extra;
		for (int i = 0; i < d; i++) {
			deep[i] = '[';
			deep[2 * d - 1 - i] = ']';
		}
		deep[2 * d] = '\0';
		check_str(deep, extra == 0);
	}
}

static void test_iterate(void **state)
{
	(void)state;
	const char *t = "{ \"d\" : { \"temp\":21.5 }, \"n\":[1, \"x\"] ,\"b\":false}";
	struct jscan_val v, k, e, d;
	struct jscan_iter it;
	assert_int_equal(jscan_parse(t, strlen(t), &v), 0);
	assert_int_equal(v.type, JSCAN_OBJECT);
	assert_int_equal(v.n, strlen(t));
	jscan_iter_init(&it, &v);
	assert_int_equal(jscan_next(&it, &k, &d), 1);
	assert_int_equal(k.n, 1);
	assert_memory_equal(k.p, "d", 1);
	assert_int_equal(d.type, JSCAN_OBJECT);
	assert_int_equal(jscan_next(&it, &k, &e), 1);
	assert_memory_equal(k.p, "n", 1);
	assert_int_equal(e.type, JSCAN_ARRAY);
	assert_int_equal(e.n, 8);
	struct jscan_iter in;
	struct jscan_val ek, ee;
	jscan_iter_init(&in, &e);
	assert_int_equal(jscan_next(&in, &ek, &ee), 1);
	assert_null(ek.p);
	assert_int_equal(ee.type, JSCAN_NUMBER);
	assert_int_equal(jscan_next(&in, &ek, &ee), 1);
	assert_int_equal(ee.type, JSCAN_STRING);
	assert_int_equal(ee.n, 1);
	assert_memory_equal(ee.p, "x", 1);
	assert_int_equal(jscan_next(&in, &ek, &ee), 0);
	assert_int_equal(jscan_next(&it, &k, &e), 1);
	assert_int_equal(e.type, JSCAN_FALSE);
	assert_int_equal(jscan_next(&it, &k, &e), 0);
	assert_int_equal(jscan_next(&it, &k, &e), 0);
	jscan_iter_init(&it, &d);
	assert_int_equal(jscan_next(&it, &k, &e), 1);
	assert_int_equal(k.n, 4);
	assert_int_equal(e.type, JSCAN_NUMBER);
	assert_int_equal(e.n, 4);
	assert_memory_equal(e.p, "21.5", 4);
	assert_int_equal(jscan_next(&it, &k, &e), 0);
	/* A scalar has nothing to iterate. */
	assert_int_equal(jscan_parse("7", 1, &v), 0);
	jscan_iter_init(&it, &v);
	assert_int_equal(jscan_next(&it, &k, &e), 0);
}

/* ---- pseudo-random JSON-like text ---- */

struct gen {
	char buf[4096];
	size_t n;
	bool simple; /* only what jscan must accept */
};

static void put(struct gen *g, const char *s)
{
	size_t len = strlen(s);
	if (g->n + len < sizeof(g->buf)) {
		memcpy(g->buf + g->n, s, len);
		g->n += len;
	}
}

static const char *pick(const char *const *list, size_t n)
{
	return list[test_rand() % n];
}

#define PICK(list) pick(list, sizeof(list) / sizeof(list[0]))

static void gen_ws(struct gen *g)
{
	static const char *const ws[] = { "", "", "", "", "", " ", " ", "\n", "\t", "\r\n", "  " };
	static const char *const odd[] = { "\v", "\f", "\x01", "\x1f" };
	if (test_rand() % 200 == 0) {
		put(g, PICK(odd));
		g->simple = false;
	} else {
		put(g, PICK(ws));
	}
}

static void gen_string(struct gen *g, bool key)
{
	static const char *const keys[] = { "d", "temp", "temperature", "hum", "humidity", "unit",
					    "x", "", "ts", "\xc3\xa9", "rssi" };
	static const char *const chars[] = { "a", "b", "Z", "0", "9", " ", ".", "-", "{", "}",
					     "[", "]", ",", ":", "'", "/", "\xc3\xa9",
					     "\xe2\x82\xac", "\x7f" };
	static const char *const odd[] = { "\\n", "\\\"", "\\\\", "\\/", "\\u0041", "\\u00e9",
					   "\\ud83d\\ude00", "\\ud83d", "\\x", "\\u12", "\t",
					   "\x01", "\\" };
	put(g, "\"");
	if (key && test_rand() % 2) {
		put(g, PICK(keys));
	} else {
		int len = (int)(test_rand() % 8);
		for (int i = 0; i < len; i++) {
			if (test_rand() % 100 == 0) {
				put(g, PICK(odd));
				g->simple = false;
			} else {
				put(g, PICK(chars));
			}
		}
	}
	put(g, "\"");
}

static void put_digits(struct gen *g, int len, bool lead_nonzero)
{
	for (int i = 0; i < len; i++) {
		char c[2] = { (char)('0' + test_rand() % 10), '\0' };
		if (i == 0 && lead_nonzero && c[0] == '0')
			c[0] = '1';
		put(g, c);
	}
}

static void gen_number(struct gen *g)
{
	static const char *const odd[] = { "01", ".5", "1.", "+1", "-", "1e", "1E+", "0x1", "-.5",
					   "00", "1.e5", "--1", "1e5.5", "Infinity", "NaN" };
	if (test_rand() % 50 == 0) {
		put(g, PICK(odd));
		g->simple = false;
		return;
	}
	size_t start = g->n;
	if (test_rand() % 3 == 0)
		put(g, "-");
	if (test_rand() % 4 == 0)
		put(g, "0");
	else
		put_digits(g, 1 + (int)(test_rand() % (test_rand() % 20 == 0 ? 40 : 10)), true);
	if (test_rand() % 2) {
		put(g, ".");
		put_digits(g, 1 + (int)(test_rand() % (test_rand() % 20 == 0 ? 40 : 8)), false);
	}
	if (test_rand() % 5 == 0) {
		put(g, test_rand() % 2 ? "e" : "E");
		put(g, test_rand() % 3 == 0 ? "-" : test_rand() % 2 ? "+" : "");
		put_digits(g, 1 + (int)(test_rand() % 3), false);
	}
	if (g->n - start > NUMFMT_PARSE_MAX)
		g->simple = false;
}

static void gen_value(struct gen *g, int depth)
{
	static const char *const words[] = { "true", "false", "null" };
	static const char *const odd[] = { "tru", "nul", "True", "NULL", "falsey" };
	unsigned r = (unsigned)(test_rand() % 10);
	if (depth >= 4 && r < 5)
		r = 5 + r % 5; /* deep enough: a scalar */
	if (r < 5 && depth >= JSCAN_DEPTH_MAX)
		g->simple = false; /* a container one level too deep */
	if (r < 5) {
		bool object = r < 3;
		int members = (int)(test_rand() % 5);
		put(g, object ? "{" : "[");
		gen_ws(g);
		for (int i = 0; i < members; i++) {
			if (i > 0) {
				put(g, ",");
				gen_ws(g);
			}
			if (object) {
				gen_string(g, true);
				gen_ws(g);
				put(g, ":");
				gen_ws(g);
			}
			gen_value(g, depth + 1);
			gen_ws(g);
		}
		put(g, object ? "}" : "]");
	} else if (r < 7) {
		gen_number(g);
	} else if (r < 9) {
		gen_string(g, false);
	} else if (test_rand() % 50 == 0) {
		put(g, PICK(odd));
		g->simple = false;
	} else {
		put(g, PICK(words));
	}
}

static void test_random(void **state)
{
	(void)state;
	int clean = 0, accepted = 0, mutated_accepted = 0;
	for (int i = 0; i < 200000; i++) {
		struct gen g = { .n = 0, .simple = true };
		gen_ws(&g);
		/* Mostly objects, as payloads are; sometimes a deep chain. */
		if (i % 500 == 0) {
			int d = JSCAN_DEPTH_MAX - 2 + (int)(test_rand() % 5);
			for (int k = 0; k < d; k++)
				put(&g, "[");
			gen_value(&g, d);
			for (int k = 0; k < d; k++)
				put(&g, "]");
			if (d > JSCAN_DEPTH_MAX)
				g.simple = false;
		} else {
			gen_value(&g, i % 4 ? 0 : 3);
		}
		gen_ws(&g);
		if (g.n >= sizeof(g.buf) - 1)
			continue;
		bool ok = check(g.buf, g.n);
		if (g.simple) {
			clean++;
			if (!ok)
				fail_msg("jscan rejects simple JSON: %.*s", (int)g.n, g.buf);
		}
		accepted += ok;
		/* The same text damaged: one byte changed, or cut short. */
		if (g.n > 0) {
			static const char bytes[] = "{}[],:\"\\ 0-.e1a\t\x01";
			size_t at = test_rand() % g.n;
			if (test_rand() % 4 == 0)
				g.n = at;
			else
				g.buf[at] = bytes[test_rand() % (sizeof(bytes) - 1)];
			mutated_accepted += check(g.buf, g.n);
		}
	}
	print_message("%d texts accepted (%d simple by construction), %d damaged ones still "
		      "JSON\n",
		      accepted, clean, mutated_accepted);
	assert_true(clean > 100000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_iterate),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests_name("jscan", tests, NULL, NULL);
}
