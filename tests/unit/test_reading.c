/* Unit tests for src/reading.c: exact JSON for readings and dead letters,
 * base64 (RFC 4648 vectors), timestamps and upstream topic templates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "iotgw/reading.h"

/* 2026-11-21T21:57:00.123Z */
#define TS_INIT { .tv_sec = 1795298220, .tv_nsec = 123456789 }
#define TS ((struct timespec)TS_INIT)

struct rcase {
	const char *name;
	struct reading r;
	const char *json;
};

static const struct rcase rcases[] = {
	{ "reading_watson_full",
	  { .device = "dev0001", .gateway = "gw-1", .event = "status", .seq = 42, .ts = TS_INIT,
	    .value = { .format = DEC_WATSON, .temperature_c = 21.3749, .has_humidity = true,
		       .humidity_pct = 40.1 } },
	  "{\"device\":\"dev0001\",\"gateway\":\"gw-1\",\"ts\":\"2026-11-21T21:57:00.123Z\","
	  "\"seq\":42,\"temperature_c\":21.37,\"humidity_pct\":40.1,\"format\":\"watson\","
	  "\"event\":\"status\"}" },
	{ "reading_number_minimal",
	  { .device = "d", .gateway = "g", .seq = 1, .ts = { 0, 0 },
	    .value = { .format = DEC_NUMBER, .temperature_c = 25.0 } },
	  "{\"device\":\"d\",\"gateway\":\"g\",\"ts\":\"1970-01-01T00:00:00.000Z\",\"seq\":1,"
	  "\"temperature_c\":25,\"format\":\"number\"}" },
	{ "reading_adc_raw",
	  { .device = "tmp36", .gateway = "gw", .seq = 7, .ts = TS_INIT,
	    .value = { .format = DEC_ADC, .temperature_c = 732 * 0.1 - 50, .has_raw = true,
		       .raw = 732 } },
	  "{\"device\":\"tmp36\",\"gateway\":\"gw\",\"ts\":\"2026-11-21T21:57:00.123Z\",\"seq\":7,"
	  "\"temperature_c\":23.2,\"format\":\"adc\",\"raw\":732}" },
	{ "reading_rounding_half_up",
	  { .device = "d", .gateway = "g", .seq = 2, .ts = TS_INIT,
	    .value = { .format = DEC_JSON, .temperature_c = 21.375, .has_humidity = true,
		       .humidity_pct = 99.999 } },
	  "{\"device\":\"d\",\"gateway\":\"g\",\"ts\":\"2026-11-21T21:57:00.123Z\",\"seq\":2,"
	  "\"temperature_c\":21.38,\"humidity_pct\":100,\"format\":\"json\"}" },
	{ "reading_negative_and_fahrenheit_converted",
	  { .device = "d", .gateway = "g", .seq = 3, .ts = TS_INIT,
	    .value = { .format = DEC_NUMBER, .temperature_c = (70.7 - 32.0) * 5.0 / 9.0 - 40.0 } },
	  "{\"device\":\"d\",\"gateway\":\"g\",\"ts\":\"2026-11-21T21:57:00.123Z\",\"seq\":3,"
	  "\"temperature_c\":-18.5,\"format\":\"number\"}" },
	{ "reading_negative_zero",
	  { .device = "d", .gateway = "g", .seq = 4, .ts = TS_INIT,
	    .value = { .format = DEC_NUMBER, .temperature_c = -0.004 } },
	  "{\"device\":\"d\",\"gateway\":\"g\",\"ts\":\"2026-11-21T21:57:00.123Z\",\"seq\":4,"
	  "\"temperature_c\":0,\"format\":\"number\"}" },
	{ "reading_seq_2_53",
	  { .device = "d", .gateway = "g", .seq = 9007199254740993ULL, .ts = TS_INIT,
	    .value = { .format = DEC_NUMBER, .temperature_c = 1 } },
	  "{\"device\":\"d\",\"gateway\":\"g\",\"ts\":\"2026-11-21T21:57:00.123Z\","
	  "\"seq\":9007199254740993,\"temperature_c\":1,\"format\":\"number\"}" },
	{ "reading_seq_u64_max",
	  { .device = "d", .gateway = "g", .seq = UINT64_MAX, .ts = TS_INIT,
	    .value = { .format = DEC_NUMBER, .temperature_c = 1 } },
	  "{\"device\":\"d\",\"gateway\":\"g\",\"ts\":\"2026-11-21T21:57:00.123Z\","
	  "\"seq\":18446744073709551615,\"temperature_c\":1,\"format\":\"number\"}" },
	{ "reading_escapes",
	  { .device = "a\"b\\c\x01", .gateway = "g\xc3\xa9", .event = "e/1", .seq = 5,
	    .ts = TS_INIT,
	    .value = { .format = DEC_WATSON, .temperature_c = 1 } },
	  "{\"device\":\"a\\\"b\\\\c\\u0001\",\"gateway\":\"g\xc3\xa9\","
	  "\"ts\":\"2026-11-21T21:57:00.123Z\",\"seq\":5,\"temperature_c\":1,"
	  "\"format\":\"watson\",\"event\":\"e/1\"}" },
	{ "reading_invalid_utf8_replaced",
	  { .device = "d\xff\xc3", .gateway = "g", .seq = 6, .ts = TS_INIT,
	    .value = { .format = DEC_NUMBER, .temperature_c = 1 } },
	  "{\"device\":\"d??\",\"gateway\":\"g\",\"ts\":\"2026-11-21T21:57:00.123Z\",\"seq\":6,"
	  "\"temperature_c\":1,\"format\":\"number\"}" },
	{ "reading_null_device",
	  { .device = NULL, .gateway = "g", .seq = 0, .ts = TS_INIT,
	    .value = { .format = DEC_NUMBER, .temperature_c = 1 } },
	  "{\"device\":null,\"gateway\":\"g\",\"ts\":\"2026-11-21T21:57:00.123Z\",\"seq\":0,"
	  "\"temperature_c\":1,\"format\":\"number\"}" },
};

static void run_reading(void **state)
{
	const struct rcase *c = *state;
	char *s = reading_to_json(&c->r);
	assert_non_null(s);
	assert_string_equal(s, c->json);
	/* And it is JSON. */
	cJSON *j = cJSON_Parse(s);
	assert_non_null(j);
	cJSON_Delete(j);
	free(s);
}

/* The writer against cJSON, which produced these records before: the same
 * bytes for every kind of value a reading can carry. */
static double round2_ref(double v)
{
	if (!isfinite(v) || fabs(v) > 1e13)
		return v;
	double r = round(v * 100.0) / 100.0;
	return r == 0.0 ? 0.0 : r;
}

static char *reference_json(const struct reading *r)
{
	cJSON *o = cJSON_CreateObject();
	char seq[24];
	snprintf(seq, sizeof seq, "%llu", (unsigned long long)r->seq);
	char ts[32];
	reading_format_ts(r->ts, ts);
	cJSON_AddStringToObject(o, "device", r->device);
	cJSON_AddStringToObject(o, "gateway", r->gateway);
	cJSON_AddStringToObject(o, "ts", ts);
	cJSON_AddRawToObject(o, "seq", seq);
	cJSON_AddNumberToObject(o, "temperature_c", round2_ref(r->value.temperature_c));
	if (r->value.has_humidity)
		cJSON_AddNumberToObject(o, "humidity_pct", round2_ref(r->value.humidity_pct));
	cJSON_AddStringToObject(o, "format", dec_format_name(r->value.format));
	if (r->event)
		cJSON_AddStringToObject(o, "event", r->event);
	if (r->value.has_raw)
		cJSON_AddNumberToObject(o, "raw", r->value.raw);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static void test_reading_matches_cjson(void **state)
{
	(void)state;
	static const double fixed[] = {0, -0.0, 0.004, -0.004, 0.005, 21.37, -40, 125, 99.99,
				       100, 0.1, 1e-5, 123456.789, 1e12 + 0.25, 1e13, 2e13,
				       -1e15, 1e300, 2147483647.0, -2147483648.0, 4294967296.0,
				       1023, 0.5, 33.333333333, -12.345};
	uint64_t x = 88172645463325252ull; /* xorshift: the same cases every run */
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double v;
		size_t nf = sizeof fixed / sizeof fixed[0];
		if (i < (int)nf)
			v = fixed[i];
		else if (i % 3 == 0)
			v = (double)(int64_t)(x % 2000001) / 100.0 - 10000.0; /* hundredths */
		else if (i % 3 == 1)
			v = ((double)(x >> 11) / 9007199254740992.0 - 0.5) * 400.0; /* any */
		else
			v = (double)(int64_t)(x % 100000) - 50000.0; /* whole */
		/* Raw counts: some calibrated, some with 3 to 6 decimals (the
		 * nearest double to m / 10^k: one correctly rounded division). */
		static const double p10[] = {1e3, 1e4, 1e5, 1e6};
		double raw = i % 8 ? v * 7 : (double)(int64_t)(x % 2000000001) / p10[x % 4];
		struct reading r = {
			.device = i % 7 ? "dev0001" : "d\"\\\n\x01\xe2\x82\xac",
			.gateway = "gw-1",
			.event = i % 2 ? "status" : NULL,
			.seq = x,
			.ts = {(time_t)(x % 4102444800ull), (long)(x % 1000000000)},
			.value = {.format = DEC_ADC, .temperature_c = v, .has_humidity = i % 5 == 0,
				  .humidity_pct = v / 3, .has_raw = i % 4 == 0, .raw = raw},
		};
		char *want = reference_json(&r);
		char *got = reading_to_json(&r);
		assert_non_null(want);
		assert_non_null(got);
		if (strcmp(want, got) != 0)
			fail_msg("value %.17g:\n want %s\n got  %s", v, want, got);
		free(want);
		free(got);
	}
}

/* The timestamp by arithmetic, against the C library, over the years. */
static void test_ts_matches_libc(void **state)
{
	(void)state;
	for (int64_t t = 0; t < 253402300800; t += 86399 * 7 + 3601) {
		struct timespec ts = {(time_t)t, 999000000};
		char got[32], want[32], date[26];
		struct tm tm;
		reading_format_ts(ts, got);
		assert_non_null(gmtime_r(&ts.tv_sec, &tm));
		strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(want, sizeof want, "%s.999Z", date);
		if (strcmp(got, want) != 0)
			fail_msg("t=%lld: got %s, want %s", (long long)t, got, want);
	}
}

/* Into a bounded buffer: all or nothing. */
static void test_reading_json_bounded(void **state)
{
	(void)state;
	struct reading r = {.device = "dev0001", .gateway = "gw-1", .seq = 1, .ts = {0, 0},
			    .value = {.format = DEC_NUMBER, .temperature_c = 21.5}};
	struct buf b;
	buf_init(&b, 40);
	assert_int_equal(buf_append(&b, "x", 1), 0);
	assert_int_equal(reading_json(&r, &b), -1);
	assert_int_equal(b.len, 1);
	buf_free(&b);
	buf_init(&b, 4096);
	assert_int_equal(reading_json(&r, &b), 0);
	assert_int_equal(reading_json(&r, &b), 0);
	assert_int_equal(b.len % 2, 0);
	assert_memory_equal(b.data, b.data + b.len / 2, b.len / 2);
	buf_free(&b);
}

struct dlcase {
	const char *name;
	const char *payload;
	size_t len;
	const char *b64;
};

#define DL(n, s, b) { (n), (s), sizeof(s) - 1, (b) }

/* RFC 4648 section 10 test vectors, plus binary bytes and the full alphabet. */
static const struct dlcase dlcases[] = {
	DL("b64_empty", "", ""),
	DL("b64_f", "f", "Zg=="),
	DL("b64_fo", "fo", "Zm8="),
	DL("b64_foo", "foo", "Zm9v"),
	DL("b64_foob", "foob", "Zm9vYg=="),
	DL("b64_fooba", "fooba", "Zm9vYmE="),
	DL("b64_foobar", "foobar", "Zm9vYmFy"),
	DL("b64_binary", "\x00\xff\xfe\x3e\x3f", "AP/+Pj8="),
	DL("b64_all_high", "\xfb\xff\xbf", "+/+/"),
	DL("b64_nul_bytes", "\0\0\0\0", "AAAAAA=="),
};

static void run_deadletter_b64(void **state)
{
	const struct dlcase *c = *state;
	/* Heap copy of exactly len bytes so ASan sees any overread. */
	uint8_t *p = malloc(c->len ? c->len : 1);
	assert_non_null(p);
	memcpy(p, c->payload, c->len);
	char *s = deadletter_to_json("d", "g", TS, "t", 1, "r", c->len ? p : NULL, c->len);
	assert_non_null(s);
	cJSON *j = cJSON_Parse(s);
	assert_non_null(j);
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "payload_b64");
	assert_true(cJSON_IsString(b));
	assert_string_equal(b->valuestring, c->b64);
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "payload_len");
	assert_true(cJSON_IsNumber(n));
	assert_true(n->valuedouble == (double)c->len);
	cJSON_Delete(j);
	free(s);
	free(p);
}

static void test_deadletter_exact(void **state)
{
	(void)state;
	/* The topic is a view into a packet: only topic_len bytes count. */
	const char *topic = "sensors/dev0001/tempJUNK";
	const char *reason = "temperature 130.2 C outside -40..125 C";
	char *s = deadletter_to_json("dev0001", "gw-1", TS, topic, 20, reason,
				     (const uint8_t *)"130.2", 5);
	assert_non_null(s);
	assert_string_equal(s, "{\"device\":\"dev0001\",\"gateway\":\"gw-1\","
			       "\"ts\":\"2026-11-21T21:57:00.123Z\","
			       "\"topic\":\"sensors/dev0001/temp\","
			       "\"reason\":\"temperature 130.2 C outside -40..125 C\","
			       "\"payload_b64\":\"MTMwLjI=\",\"payload_len\":5}");
	free(s);

	/* Reasons with quotes; a topic that is not UTF-8 is made safe. */
	s = deadletter_to_json("d", "g", TS, "a/\xff/b", 5, "not a number: \"abc\"",
			       (const uint8_t *)"abc", 3);
	assert_non_null(s);
	assert_string_equal(s, "{\"device\":\"d\",\"gateway\":\"g\","
			       "\"ts\":\"2026-11-21T21:57:00.123Z\",\"topic\":\"a/?/b\","
			       "\"reason\":\"not a number: \\\"abc\\\"\","
			       "\"payload_b64\":\"YWJj\",\"payload_len\":3}");
	free(s);

	/* Empty payload, NULL topic and reason. */
	s = deadletter_to_json("d", "g", TS, NULL, 0, NULL, NULL, 0);
	assert_non_null(s);
	assert_string_equal(s, "{\"device\":\"d\",\"gateway\":\"g\","
			       "\"ts\":\"2026-11-21T21:57:00.123Z\",\"topic\":null,"
			       "\"reason\":null,\"payload_b64\":\"\",\"payload_len\":0}");
	free(s);
}

static void test_deadletter_large(void **state)
{
	(void)state;
	size_t n = (1u << 20) + 1;
	uint8_t *p = malloc(n);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7);
	char *s = deadletter_to_json("d", "g", TS, "t", 1, "r", p, n);
	assert_non_null(s);
	cJSON *j = cJSON_Parse(s);
	assert_non_null(j);
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "payload_b64");
	assert_true(cJSON_IsString(b));
	assert_int_equal(strlen(b->valuestring), (n + 2) / 3 * 4);
	cJSON_Delete(j);
	free(s);
	free(p);
}

static void test_format_ts(void **state)
{
	(void)state;
	static const struct {
		struct timespec ts;
		const char *want;
	} tc[] = {
		{ { 0, 0 }, "1970-01-01T00:00:00.000Z" },
		{ { 1795298220, 123456789 }, "2026-11-21T21:57:00.123Z" },
		{ { 951825600, 999999999 }, "2000-02-29T12:00:00.999Z" },
		{ { 951825600, 999999 }, "2000-02-29T12:00:00.000Z" },
		{ { 951825600, 1000000 }, "2000-02-29T12:00:00.001Z" },
		{ { -1, 500000000 }, "1969-12-31T23:59:59.500Z" },
		{ { 253402300799, 0 }, "9999-12-31T23:59:59.000Z" },
		{ { 4102444800, 0 }, "2100-01-01T00:00:00.000Z" },
		/* Invalid nanoseconds do not produce a malformed field. */
		{ { 0, 1500000000 }, "1970-01-01T00:00:00.000Z" },
		{ { 0, -5 }, "1970-01-01T00:00:00.000Z" },
	};
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		char out[32];
		reading_format_ts(tc[i].ts, out);
		assert_string_equal(out, tc[i].want);
	}
	/* Absurd clocks still give a terminated string that fits. */
	char out[32];
	struct timespec huge = { .tv_sec = (time_t)INT64_MAX, .tv_nsec = 0 };
	reading_format_ts(huge, out);
	assert_true(strlen(out) < 32);
	struct timespec far = { .tv_sec = (time_t)67767976233316800LL, .tv_nsec = 0 };
	reading_format_ts(far, out);
	assert_true(strlen(out) < 32);
	struct timespec neg = { .tv_sec = (time_t)INT64_MIN, .tv_nsec = 0 };
	reading_format_ts(neg, out);
	assert_true(strlen(out) < 32);
}

static void test_topic_expand(void **state)
{
	(void)state;
	static const struct {
		const char *tmpl, *device, *gateway, *event;
		int rc;
		const char *want;
	} tc[] = {
		{ "sensors/{device}/temperature", "dev0001", "gw-1", NULL, 27,
		  "sensors/dev0001/temperature" },
		{ "iotgw/{gateway}/deadletter/{device}", "dev0001", "gw-1", NULL, 29,
		  "iotgw/gw-1/deadletter/dev0001" },
		{ "x/{event}", "d", "g", NULL, 9, "x/unknown" },
		{ "x/{event}", "d", "g", "status", 8, "x/status" },
		{ "{device}", NULL, "g", NULL, 7, "unknown" },
		{ "{device}{gateway}{event}", "a", "b", "c", 3, "abc" },
		{ "plain/topic", "d", "g", "e", 11, "plain/topic" },
		{ "", "d", "g", "e", 0, "" },
		{ "{device}/\xc3\xa9", "d", "g", "e", 4, "d/\xc3\xa9" },
		{ "x/{foo}", "d", "g", "e", -1, NULL },
		{ "x/{Device}", "d", "g", "e", -1, NULL },
		{ "x/{}", "d", "g", "e", -1, NULL },
		{ "x/{device", "d", "g", "e", -1, NULL },
		{ "x/device}", "d", "g", "e", -1, NULL },
		{ "x/{dev{device}}", "d", "g", "e", -1, NULL },
		{ "x/+/{device}", "d", "g", "e", -1, NULL },
		{ "x/{device}/#", "d", "g", "e", -1, NULL },
		/* A value with a wildcard would make the upstream PUBLISH malformed. */
		{ "x/{device}", "a+b", "g", "e", -1, NULL },
		{ "x/{event}", "d", "g", "#", -1, NULL },
	};
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		char out[64];
		int rc = reading_topic(tc[i].tmpl, tc[i].device, tc[i].gateway, tc[i].event, out,
				       sizeof(out));
		if (rc != tc[i].rc)
			print_error("template %s\n", tc[i].tmpl);
		assert_int_equal(rc, tc[i].rc);
		if (rc >= 0)
			assert_string_equal(out, tc[i].want);
	}
}

static void test_topic_overflow(void **state)
{
	(void)state;
	const char *t = "sensors/{device}/temperature"; /* 27 bytes expanded */
	char out[40];
	memset(out, 'Z', sizeof(out));
	assert_int_equal(reading_topic(t, "dev0001", "g", NULL, out, 28), 27);
	assert_string_equal(out, "sensors/dev0001/temperature");
	assert_int_equal(out[28], 'Z');
	assert_int_equal(reading_topic(t, "dev0001", "g", NULL, out, 27), -1);
	assert_int_equal(reading_topic(t, "dev0001", "g", NULL, out, 16), -1); /* inside value */
	assert_int_equal(reading_topic(t, "dev0001", "g", NULL, out, 15), -1); /* value + NUL */
	assert_int_equal(reading_topic(t, "dev0001", "g", NULL, out, 8), -1);
	assert_int_equal(reading_topic(t, "dev0001", "g", NULL, out, 1), -1);
	assert_int_equal(reading_topic(t, "dev0001", "g", NULL, out, 0), -1);
	assert_int_equal(reading_topic("", "d", "g", NULL, out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(reading_topic("{device}", "dev", "g", NULL, out, 4), 3);
	assert_int_equal(reading_topic("{device}", "dev", "g", NULL, out, 3), -1);
}

static void test_topic_check(void **state)
{
	(void)state;
	static const struct {
		const char *tmpl;
		const char *why; /* NULL: valid */
	} tc[] = {
		{ "sensors/{device}/temperature", NULL },
		{ "iotgw/{gateway}/deadletter/{device}", NULL },
		{ "a/{event}/{device}/{gateway}", NULL },
		{ "static/topic", NULL },
		{ "/leading/slash/ok", NULL },
		{ "", "topic template is empty" },
		{ "x/{foo}", "unknown placeholder {foo} (known: {device} {gateway} {event})" },
		{ "x/{}", "unknown placeholder {} (known: {device} {gateway} {event})" },
		{ "x/{device", "'{' at offset 2 is not closed" },
		{ "x/{dev{ice}", "'{' at offset 2 is not closed" },
		{ "x/device}", "'}' without '{' at offset 8" },
		{ "{device}}", "'}' without '{' at offset 8" },
		{ "sensors/+/t",
		  "wildcard '+' at offset 8 not allowed in a topic name (MQTT 3.3.2.1)" },
		{ "sensors/#",
		  "wildcard '#' at offset 8 not allowed in a topic name (MQTT 3.3.2.1)" },
		{ "$SYS/{device}",
		  "topic template must not start with '$' (reserved, MQTT 4.7.2)" },
		{ "x/\xff", "topic template is not valid UTF-8 (MQTT 1.5.3)" },
		{ "x/{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}",
		  "unknown placeholder {aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}... "
		  "(known: {device} {gateway} {event})" },
	};
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		char why[160] = "", out[128];
		const char *t = tc[i].tmpl;
		int rc = reading_topic_check(t, why, sizeof(why));
		int expands = reading_topic(t, "d", "g", "e", out, sizeof(out)) >= 0;
		if (!tc[i].why) {
			assert_int_equal(rc, 0);
			assert_true(expands); /* every valid template also expands */
		} else {
			assert_int_equal(rc, -1);
			assert_string_equal(why, tc[i].why);
			/* reading_topic refuses what it cannot expand; the rest are
			 * refused only by the check. */
			assert_int_equal(expands, t[0] == '\0' || t[0] == '$' ||
							  (unsigned char)t[2] == 0xff);
		}
	}
	assert_int_equal(reading_topic_check(NULL, NULL, 0), -1);
	/* Longer than an MQTT string can be. */
	char *big = malloc(70000);
	assert_non_null(big);
	memset(big, 'a', 69999);
	big[69999] = '\0';
	char why[128];
	assert_int_equal(reading_topic_check(big, why, sizeof(why)), -1);
	assert_string_equal(why, "topic template is longer than 65535 bytes");
	free(big);
}

int main(void)
{
	enum { NR = sizeof(rcases) / sizeof(rcases[0]), ND = sizeof(dlcases) / sizeof(dlcases[0]) };
	static struct CMUnitTest tests[NR + ND + 16];
	size_t n = 0;

	for (size_t i = 0; i < NR; i++)
		tests[n++] = (struct CMUnitTest){ .name = rcases[i].name,
						  .test_func = run_reading,
						  .initial_state = (void *)&rcases[i] };
	for (size_t i = 0; i < ND; i++)
		tests[n++] = (struct CMUnitTest){ .name = dlcases[i].name,
						  .test_func = run_deadletter_b64,
						  .initial_state = (void *)&dlcases[i] };
	const struct CMUnitTest more[] = {
		cmocka_unit_test(test_deadletter_exact), cmocka_unit_test(test_deadletter_large),
		cmocka_unit_test(test_format_ts),	 cmocka_unit_test(test_topic_expand),
		cmocka_unit_test(test_topic_overflow),	 cmocka_unit_test(test_topic_check),
		cmocka_unit_test(test_reading_matches_cjson),
		cmocka_unit_test(test_ts_matches_libc),
		cmocka_unit_test(test_reading_json_bounded),
	};
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		tests[n++] = more[i];
	return _cmocka_run_group_tests("reading", tests, n, NULL, NULL);
}
