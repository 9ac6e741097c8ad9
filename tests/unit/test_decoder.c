/* Unit tests for src/decoder.c: one table of payload cases (each its own
 * cmocka test, named after the case) plus tests for rule selection, the
 * built-in rules, format names and Watson event extraction. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iotgw/decoder.h"
#include "iotgw/jscan.h"

#include "test_rand.h"

struct dcase {
	const char *name;
	enum dec_format fmt;
	const char *payload;
	size_t len;
	char unit;            /* rule default unit; 0 = 'C' */
	double scale, offset; /* ADC calibration; scale 0 = 1 */
	int ok;
	enum dec_format want_fmt;
	double temp;
	int has_hum;
	double hum;
	const char *why; /* exact reason on failure */
};

/* Payloads are string literals; sizeof keeps embedded NULs. */
#define P(s) .payload = (s), .len = sizeof(s) - 1
#define OK(n, f, s, wf, t) { .name = (n), .fmt = (f), P(s), .ok = 1, .want_fmt = (wf), .temp = (t) }
#define OKH(n, f, s, wf, t, h)                                                             \
	{ .name = (n), .fmt = (f), P(s), .ok = 1, .want_fmt = (wf), .temp = (t), .has_hum = 1, \
	  .hum = (h) }
#define BAD(n, f, s, w) { .name = (n), .fmt = (f), P(s), .ok = 0, .why = (w) }
#define OKF(n, f, s, wf, t) \
	{ .name = (n), .fmt = (f), P(s), .unit = 'F', .ok = 1, .want_fmt = (wf), .temp = (t) }
/* TMP36 on an ESP8266 ADC as in the MicroPython example: raw / 10 - 50. */
#define ADC_OK(n, s, t) \
	{ .name = (n), .fmt = DEC_ADC, P(s), .scale = 0.1, .offset = -50, .ok = 1, \
	  .want_fmt = DEC_ADC, .temp = (t) }
#define ADC_BAD(n, s, w) \
	{ .name = (n), .fmt = DEC_ADC, P(s), .scale = 0.1, .offset = -50, .ok = 0, .why = (w) }

#define D10 "1111111111"
#define D100 D10 D10 D10 D10 D10 D10 D10 D10 D10 D10

static const struct dcase cases[] = {
	/* number */
	OK("num_plain", DEC_NUMBER, "21.5", DEC_NUMBER, 21.5),
	OK("num_space_unit", DEC_NUMBER, " 21.5 C", DEC_NUMBER, 21.5),
	OK("num_fahrenheit", DEC_NUMBER, "70.7F", DEC_NUMBER, 21.5),
	OK("num_77F_is_25C", DEC_NUMBER, "77F", DEC_NUMBER, 25.0),
	OK("num_degree_C", DEC_NUMBER, "21.5\xc2\xb0" "C", DEC_NUMBER, 21.5),
	OK("num_degree_F_spaced", DEC_NUMBER, "77 \xc2\xb0" "F", DEC_NUMBER, 25.0),
	OK("num_negative", DEC_NUMBER, "-3", DEC_NUMBER, -3.0),
	OK("num_lower_c", DEC_NUMBER, "21.5c", DEC_NUMBER, 21.5),
	OK("num_lower_f", DEC_NUMBER, "77f", DEC_NUMBER, 25.0),
	OK("num_whitespace", DEC_NUMBER, "\t\r\n 25 \n\v\f", DEC_NUMBER, 25.0),
	OK("num_exponent_sign", DEC_NUMBER, "+4.5e1", DEC_NUMBER, 45.0),
	OK("num_leading_point", DEC_NUMBER, ".5", DEC_NUMBER, 0.5),
	OK("num_trailing_point", DEC_NUMBER, "5.", DEC_NUMBER, 5.0),
	OK("num_trailing_nul", DEC_NUMBER, "21.5\0", DEC_NUMBER, 21.5),
	OK("num_underflow_is_zero", DEC_NUMBER, "1e-400", DEC_NUMBER, 0.0),
	OK("num_min_exact", DEC_NUMBER, "-40", DEC_NUMBER, -40.0),
	OK("num_max_exact", DEC_NUMBER, "125", DEC_NUMBER, 125.0),
	OK("num_min_exact_F", DEC_NUMBER, "-40F", DEC_NUMBER, -40.0),
	OK("num_max_exact_F", DEC_NUMBER, "257F", DEC_NUMBER, 125.0),
	OKF("num_default_unit_F", DEC_NUMBER, "77", DEC_NUMBER, 25.0),
	OKF("num_explicit_C_beats_default_F", DEC_NUMBER, "25C", DEC_NUMBER, 25.0),
	BAD("num_min_just_below", DEC_NUMBER, "-40.01", "temperature -40.01 C outside -40..125 C"),
	BAD("num_max_just_above", DEC_NUMBER, "125.01", "temperature 125.01 C outside -40..125 C"),
	BAD("num_above_range", DEC_NUMBER, "130.2", "temperature 130.2 C outside -40..125 C"),
	BAD("num_above_range_F", DEC_NUMBER, "257.1F",
	    "temperature 257.1 F (125.056 C) outside -40..125 C"),
	BAD("num_huge_finite", DEC_NUMBER, "1e308", "temperature 1e+308 C outside -40..125 C"),
	BAD("num_huge_F_overflows", DEC_NUMBER, "1.7e308F",
	    "temperature 1.7e+308 F (inf C) outside -40..125 C"),
	BAD("num_abc", DEC_NUMBER, "abc", "not a number: \"abc\""),
	BAD("num_nan", DEC_NUMBER, "nan", "not a number: \"nan\""),
	BAD("num_NAN", DEC_NUMBER, "NAN", "not a number: \"NAN\""),
	BAD("num_inf", DEC_NUMBER, "inf", "not a number: \"inf\""),
	BAD("num_minus_infinity", DEC_NUMBER, "-Infinity", "not a number: \"-Infinity\""),
	BAD("num_overflow", DEC_NUMBER, "1e400", "number out of range: \"1e400\""),
	BAD("num_neg_overflow", DEC_NUMBER, "-1e400", "number out of range: \"-1e400\""),
	BAD("num_hex", DEC_NUMBER, "0x10", "not a number: \"0x10\""),
	BAD("num_unknown_unit", DEC_NUMBER, "21.5K", "not a number: \"21.5K\""),
	BAD("num_two_units", DEC_NUMBER, "21.5 C C", "not a number: \"21.5 C C\""),
	BAD("num_two_numbers", DEC_NUMBER, "21.5 22", "not a number: \"21.5 22\""),
	BAD("num_decimal_comma", DEC_NUMBER, "21,5", "not a number: \"21,5\""),
	BAD("num_bare_exponent", DEC_NUMBER, "1e", "not a number: \"1e\""),
	BAD("num_sign_only", DEC_NUMBER, "-", "not a number: \"-\""),
	BAD("num_point_only", DEC_NUMBER, ".", "not a number: \".\""),
	BAD("num_degree_only", DEC_NUMBER, "\xc2\xb0" "C", "not a number: \"\\xc2\\xb0C\""),
	BAD("num_unit_first", DEC_NUMBER, "C21", "not a number: \"C21\""),
	BAD("num_quote_escaped", DEC_NUMBER, "a\"b\\c\xc3\xa9",
	    "not a number: \"a\\\"b\\\\c\\xc3\\xa9\""),
	BAD("num_quote_truncated", DEC_NUMBER, "xxxxxxxxxxyyyyyyyyyyxxxxxxxxxxyyyyyyyyyyzzzzzzzzzz",
	    "not a number: \"xxxxxxxxxxyyyyyyyyyyxxxxxxxxxxyyyyyyyyyy\"... (50 bytes)"),
	BAD("num_too_long", DEC_NUMBER, D100,
	    "number too long: \"1111111111111111111111111111111111111111\"... (100 bytes)"),
	BAD("num_empty", DEC_NUMBER, "", "empty payload"),
	BAD("num_only_nul", DEC_NUMBER, "\0", "empty payload"),
	BAD("num_blank", DEC_NUMBER, " \t\r\n", "payload is only whitespace"),
	BAD("num_embedded_nul", DEC_NUMBER, "21\0.5", "payload contains a NUL byte at offset 2"),
	BAD("num_two_trailing_nuls", DEC_NUMBER, "21.5\0\0",
	    "payload contains a NUL byte at offset 4"),
	BAD("num_control_byte", DEC_NUMBER, "21\x01",
	    "payload contains control byte 0x01 at offset 2"),
	BAD("num_del_byte", DEC_NUMBER, "\x7f" "21",
	    "payload contains control byte 0x7f at offset 0"),
	BAD("num_not_utf8", DEC_NUMBER, "\xff" "21",
	    "payload is not valid UTF-8 (byte 0xff at offset 0)"),
	BAD("num_latin1_degree", DEC_NUMBER, "21\xb0" "C",
	    "payload is not valid UTF-8 (byte 0xb0 at offset 2)"),
	BAD("num_overlong_utf8", DEC_NUMBER, "1\xc0\xaf",
	    "payload is not valid UTF-8 (byte 0xc0 at offset 1)"),
	BAD("num_surrogate_utf8", DEC_NUMBER, "1\xed\xa0\x80",
	    "payload is not valid UTF-8 (byte 0xed at offset 1)"),
	BAD("num_above_10ffff", DEC_NUMBER, "1\xf4\x90\x80\x80",
	    "payload is not valid UTF-8 (byte 0xf4 at offset 1)"),
	BAD("num_truncated_utf8", DEC_NUMBER, "21\xc2",
	    "payload is not valid UTF-8 (byte 0xc2 at offset 2)"),

	/* flat JSON */
	OK("json_temp", DEC_JSON, "{\"temp\":21.5}", DEC_JSON, 21.5),
	OKH("json_temperature_hum_F", DEC_JSON,
	    "{\"temperature\":70.7,\"humidity\":40.1,\"unit\":\"F\"}", DEC_JSON, 21.5, 40.1),
	OK("json_string_number", DEC_JSON, "{\"temp\":\"21.5\"}", DEC_JSON, 21.5),
	OK("json_string_number_spaces", DEC_JSON, "{\"temp\":\" 21.5 \"}", DEC_JSON, 21.5),
	OKH("json_hum_alias_string", DEC_JSON, "{\"temp\":21,\"hum\":\"55.5\"}", DEC_JSON, 21.0,
	    55.5),
	OKH("json_hum_100", DEC_JSON, "{\"temp\":21,\"humidity\":100}", DEC_JSON, 21.0, 100.0),
	OKH("json_hum_0", DEC_JSON, "{\"temp\":21,\"humidity\":0}", DEC_JSON, 21.0, 0.0),
	OK("json_unit_degree_F", DEC_JSON, "{\"temp\":77,\"unit\":\"\xc2\xb0" "F\"}",
	   DEC_JSON, 25.0),
	OK("json_unit_lower_c", DEC_JSON, "{\"temp\":25,\"unit\":\"c\"}", DEC_JSON, 25.0),
	OKF("json_default_unit_F", DEC_JSON, "{\"temp\":77}", DEC_JSON, 25.0),
	OKF("json_unit_C_beats_default_F", DEC_JSON, "{\"temp\":25,\"unit\":\"C\"}",
	    DEC_JSON, 25.0),
	OK("json_extra_keys_ignored", DEC_JSON,
	   "{\"rssi\":-70,\"temp\":21,\"uptime\":123,\"meta\":{\"x\":[1,2,{\"temp\":99}]}}",
	   DEC_JSON, 21.0),
	OK("json_whitespace", DEC_JSON, "\r\n {\n\t\"temp\" : 21 \n}\r\n", DEC_JSON, 21.0),
	OK("json_escaped_key", DEC_JSON, "{\"te\\u006dp\":21}", DEC_JSON, 21.0),
	OK("json_min_exact", DEC_JSON, "{\"temp\":-40}", DEC_JSON, -40.0),
	OK("json_max_exact", DEC_JSON, "{\"temp\":125}", DEC_JSON, 125.0),
	BAD("json_max_just_above", DEC_JSON, "{\"temp\":125.01}",
	    "temperature 125.01 C outside -40..125 C"),
	BAD("json_out_of_range_F", DEC_JSON, "{\"temp\":300,\"unit\":\"F\"}",
	    "temperature 300 F (148.889 C) outside -40..125 C"),
	BAD("json_hum_100_1", DEC_JSON, "{\"temp\":21,\"humidity\":100.1}",
	    "humidity 100.1 % outside 0..100 %"),
	BAD("json_hum_negative", DEC_JSON, "{\"temp\":21,\"humidity\":-0.1}",
	    "humidity -0.1 % outside 0..100 %"),
	BAD("json_no_temp", DEC_JSON, "{\"hum\":40}", "JSON: no \"temp\" or \"temperature\" key"),
	BAD("json_empty_object", DEC_JSON, "{}", "JSON: no \"temp\" or \"temperature\" key"),
	BAD("json_case_sensitive_key", DEC_JSON, "{\"Temp\":21}",
	    "JSON: no \"temp\" or \"temperature\" key"),
	BAD("json_both_keys", DEC_JSON, "{\"temp\":21,\"temperature\":22}",
	    "JSON: both \"temp\" and \"temperature\" keys"),
	BAD("json_duplicate_key", DEC_JSON, "{\"temp\":21,\"temp\":22}",
	    "JSON: duplicate \"temp\" key"),
	BAD("json_duplicate_hum", DEC_JSON, "{\"temp\":21,\"hum\":1,\"humidity\":2}",
	    "JSON: both \"hum\" and \"humidity\" keys"),
	BAD("json_string_abc", DEC_JSON, "{\"temp\":\"abc\"}",
	    "JSON: \"temp\" not a number: \"abc\""),
	BAD("json_string_nan", DEC_JSON, "{\"temp\":\"nan\"}",
	    "JSON: \"temp\" not a number: \"nan\""),
	BAD("json_string_inf", DEC_JSON, "{\"temperature\":\"-inf\"}",
	    "JSON: \"temperature\" not a number: \"-inf\""),
	BAD("json_string_hex", DEC_JSON, "{\"temp\":\"0x10\"}",
	    "JSON: \"temp\" not a number: \"0x10\""),
	BAD("json_string_with_unit", DEC_JSON, "{\"temp\":\"21.5C\"}",
	    "JSON: \"temp\" not a number: \"21.5C\""),
	BAD("json_string_empty", DEC_JSON, "{\"temp\":\"\"}", "JSON: \"temp\" not a number: \"\""),
	BAD("json_string_overflow", DEC_JSON, "{\"temp\":\"1e400\"}",
	    "JSON: \"temp\" number out of range: \"1e400\""),
	BAD("json_number_overflow", DEC_JSON, "{\"temp\":1e400}", "JSON: \"temp\" is out of range"),
	BAD("json_number_neg_overflow", DEC_JSON, "{\"temp\":-1e400}",
	    "JSON: \"temp\" is out of range"),
	BAD("json_hum_overflow", DEC_JSON, "{\"temp\":1,\"hum\":1e999}",
	    "JSON: \"hum\" is out of range"),
	BAD("json_bool", DEC_JSON, "{\"temp\":true}", "JSON: \"temp\" is a boolean, not a number"),
	BAD("json_null", DEC_JSON, "{\"temp\":null}", "JSON: \"temp\" is null, not a number"),
	BAD("json_object", DEC_JSON, "{\"temp\":{\"v\":1}}",
	    "JSON: \"temp\" is an object, not a number"),
	BAD("json_array", DEC_JSON, "{\"temp\":[21]}", "JSON: \"temp\" is an array, not a number"),
	BAD("json_hum_null", DEC_JSON, "{\"temp\":21,\"humidity\":null}",
	    "JSON: \"humidity\" is null, not a number"),
	BAD("json_unit_unknown", DEC_JSON, "{\"temp\":21,\"unit\":\"K\"}",
	    "JSON: unknown unit \"K\" (expected \"C\" or \"F\")"),
	BAD("json_unit_number", DEC_JSON, "{\"temp\":21,\"unit\":1}",
	    "JSON: \"unit\" is a number, not \"C\" or \"F\""),
	BAD("json_truncated", DEC_JSON, "{\"temp\":21.5", "JSON: syntax error near offset 11"),
	BAD("json_trailing_garbage", DEC_JSON, "{\"temp\":21.5}x",
	    "JSON: unexpected data after the value at offset 13"),
	BAD("json_two_objects", DEC_JSON, "{\"temp\":1} {\"temp\":2}",
	    "JSON: unexpected data after the value at offset 10"),
	BAD("json_array_top", DEC_JSON, "[21.5]", "JSON: payload is an array, not an object"),
	BAD("json_number_top", DEC_JSON, "21.5", "JSON: payload is a number, not an object"),
	BAD("json_string_top", DEC_JSON, "\"21.5\"", "JSON: payload is a string, not an object"),
	BAD("json_hex_literal", DEC_JSON, "{\"temp\":0x10}", "JSON: syntax error near offset 9"),
	BAD("json_nan_literal", DEC_JSON, "{\"temp\":NaN}", "JSON: syntax error near offset 8"),
	BAD("json_single_quotes", DEC_JSON, "{'temp':21}", "JSON: syntax error near offset 2"),
	BAD("json_not_utf8_in_string", DEC_JSON, "{\"temp\":\"\xff\"}",
	    "payload is not valid UTF-8 (byte 0xff at offset 9)"),
	BAD("json_raw_control_in_string", DEC_JSON, "{\"temp\":\"2\x01\"}",
	    "payload contains control byte 0x01 at offset 10"),
	BAD("json_nul_inside", DEC_JSON, "{\"temp\":21}\0 ",
	    "payload contains a NUL byte at offset 11"),
	BAD("json_escaped_nul", DEC_JSON, "{\"temp\":\"21\\u0000junk\"}",
	    "JSON: escaped NUL (\\u0000) at offset 11"),
	BAD("json_escaped_nul_in_key", DEC_AUTO, " {\"t\\u0000\":1,\"temp\":2}",
	    "JSON: escaped NUL (\\u0000) at offset 4"),
	OK("json_escaped_backslash_u0000_is_text", DEC_JSON,
	   "{\"x\":\"\\\\u0000\",\"temp\":2}", DEC_JSON, 2.0),
	OK("json_escaped_u0001_ok", DEC_JSON, "{\"x\":\"\\u0001\",\"temp\":2}", DEC_JSON, 2.0),
	BAD("json_watson_envelope_as_json", DEC_JSON, "{\"d\":{\"temp\":21}}",
	    "JSON: no \"temp\" or \"temperature\" key"),

	/* Watson IoT envelope */
	OKH("watson_basic", DEC_WATSON, "{\"d\":{\"temp\":21.5,\"humidity\":40}}", DEC_WATSON, 21.5,
	    40.0),
	OK("watson_temperature_F_string", DEC_WATSON,
	   "{\"d\":{\"temperature\":\"77\",\"unit\":\"F\"}}", DEC_WATSON, 25.0),
	OK("watson_extra_top_keys", DEC_WATSON, "{\"ts\":\"x\",\"d\":{\"temp\":-40}}", DEC_WATSON,
	   -40.0),
	BAD("watson_missing_d", DEC_WATSON, "{\"temp\":21}", "Watson: no \"d\" object"),
	BAD("watson_d_number", DEC_WATSON, "{\"d\":5}", "Watson: \"d\" is a number, not an object"),
	BAD("watson_d_string", DEC_WATSON, "{\"d\":\"{}\"}",
	    "Watson: \"d\" is a string, not an object"),
	BAD("watson_d_array", DEC_WATSON, "{\"d\":[{\"temp\":1}]}",
	    "Watson: \"d\" is an array, not an object"),
	BAD("watson_d_null", DEC_WATSON, "{\"d\":null}", "Watson: \"d\" is null, not an object"),
	BAD("watson_d_empty", DEC_WATSON, "{\"d\":{}}",
	    "Watson: no \"temp\" or \"temperature\" key in \"d\""),
	BAD("watson_temp_null", DEC_WATSON, "{\"d\":{\"temp\":null}}",
	    "Watson: \"d.temp\" is null, not a number"),
	BAD("watson_temp_string_junk", DEC_WATSON, "{\"d\":{\"temperature\":\"warm\"}}",
	    "Watson: \"d.temperature\" not a number: \"warm\""),
	BAD("watson_duplicate_d", DEC_WATSON, "{\"d\":{\"temp\":21},\"d\":{\"temp\":22}}",
	    "Watson: duplicate \"d\" key"),
	BAD("watson_nested_junk", DEC_WATSON, "{\"d\":{\"temp\":{\"d\":{\"temp\":1}}}}",
	    "Watson: \"d.temp\" is an object, not a number"),
	BAD("watson_temp_at_top_only", DEC_WATSON, "{\"temp\":21,\"d\":{\"hum\":3}}",
	    "Watson: no \"temp\" or \"temperature\" key in \"d\""),
	BAD("watson_hum_out_of_range", DEC_WATSON, "{\"d\":{\"temp\":21,\"humidity\":-1}}",
	    "humidity -1 % outside 0..100 %"),
	BAD("watson_temp_out_of_range", DEC_WATSON, "{\"d\":{\"temp\":-40.5}}",
	    "temperature -40.5 C outside -40..125 C"),
	BAD("watson_array_top", DEC_WATSON, "[]", "Watson: payload is an array, not an object"),
	BAD("watson_syntax", DEC_WATSON, "{\"d\":{\"temp\":21,}}",
	    "Watson: syntax error near offset 17"),
	BAD("watson_plain_number", DEC_WATSON, "21.5",
	    "Watson: payload is a number, not an object"),

	/* auto */
	OKH("auto_watson", DEC_AUTO, "{\"d\":{\"temp\":21,\"hum\":50}}", DEC_WATSON, 21.0, 50.0),
	OK("auto_json", DEC_AUTO, "{\"temp\":21}", DEC_JSON, 21.0),
	OK("auto_number", DEC_AUTO, "21.5", DEC_NUMBER, 21.5),
	OK("auto_number_unit", DEC_AUTO, " 70.7 \xc2\xb0" "F\n", DEC_NUMBER, 21.5),
	OK("auto_json_leading_ws", DEC_AUTO, "  {\"temp\":21}", DEC_JSON, 21.0),
	OK("auto_d_not_object_is_json", DEC_AUTO, "{\"d\":5,\"temp\":21}", DEC_JSON, 21.0),
	BAD("auto_d_not_object_no_temp", DEC_AUTO, "{\"d\":5}",
	    "JSON: no \"temp\" or \"temperature\" key"),
	BAD("auto_bad_json", DEC_AUTO, "{bad", "JSON: syntax error near offset 2"),
	BAD("auto_bad_json_offset_after_ws", DEC_AUTO, "  {bad",
	    "JSON: syntax error near offset 4"),
	BAD("auto_array_is_number", DEC_AUTO, "[21]", "not a number: \"[21]\""),
	BAD("auto_empty", DEC_AUTO, "", "empty payload"),
	BAD("auto_nan", DEC_AUTO, "NaN", "not a number: \"NaN\""),

	/* ADC: TMP36, celsius = raw * 0.1 - 50 */
	ADC_OK("adc_tmp36_732", "732", 23.2),
	ADC_OK("adc_whitespace", " 732\r\n", 23.2),
	ADC_OK("adc_fraction", "732.5", 23.25),
	ADC_OK("adc_min_exact", "100", -40.0),
	ADC_OK("adc_max_exact", "1750", 125.0),
	ADC_BAD("adc_max_just_above", "1751", "temperature 125.1 C (raw 1751) outside -40..125 C"),
	ADC_BAD("adc_zero_below_min", "0", "temperature -50 C (raw 0) outside -40..125 C"),
	ADC_BAD("adc_negative", "-5", "ADC: raw count -5 is negative"),
	ADC_BAD("adc_unit", "732C", "ADC: not a number: \"732C\""),
	ADC_BAD("adc_nan", "nan", "ADC: not a number: \"nan\""),
	ADC_BAD("adc_json", "{\"raw\":732}", "ADC: not a number: \"{\\\"raw\\\":732}\""),
	ADC_BAD("adc_overflow", "1e400", "ADC: number out of range: \"1e400\""),
	ADC_BAD("adc_empty", "", "empty payload"),
	{ .name = "adc_calibration_overflow", .fmt = DEC_ADC, P("1e308"), .scale = 10, .ok = 0,
	  .why = "ADC: raw count 1e+308 calibrates to a non-finite value" },
	{ .name = "adc_identity", .fmt = DEC_ADC, P("25"), .scale = 1, .ok = 1,
	  .want_fmt = DEC_ADC, .temp = 25.0 },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static struct dec_rule rule_for_case(const struct dcase *c)
{
	struct dec_rule r = {
		.name = NULL,
		.topic_filter = NULL,
		.format = c->fmt,
		.scale = c->scale != 0 ? c->scale : 1.0,
		.offset = c->offset,
		.min_c = -40.0,
		.max_c = 125.0,
		.default_unit = c->unit ? c->unit : 'C',
	};
	return r;
}

static void run_case(void **state)
{
	const struct dcase *c = *state;
	struct dec_rule rule = rule_for_case(c);
	struct dec_result res;
	char why[256];
	/* A heap copy of exactly len bytes, so ASan catches any read past the end
	 * (payloads arrive without a terminating NUL). */
	uint8_t *buf = malloc(c->len ? c->len : 1);
	assert_non_null(buf);
	memcpy(buf, c->payload, c->len);

	memset(why, 'X', sizeof(why));
	int rc = dec_payload(&rule, buf, c->len, &res, why, sizeof(why));
	if (c->ok) {
		if (rc != 0)
			print_error("unexpected failure: %s\n", why);
		assert_int_equal(rc, 0);
		assert_int_equal(res.format, c->want_fmt);
		assert_true(fabs(res.temperature_c - c->temp) < 1e-9);
		assert_int_equal(res.has_humidity, c->has_hum);
		if (c->has_hum)
			assert_true(fabs(res.humidity_pct - c->hum) < 1e-9);
		assert_int_equal(res.has_raw, c->fmt == DEC_ADC);
		if (res.has_raw) {
			double raw = strtod(c->payload, NULL);
			assert_true(fabs(res.raw - raw) < 1e-9);
		}
	} else {
		assert_int_equal(rc, -1);
		assert_string_equal(why, c->why);
	}
	free(buf);
}

/* Deeper than CJSON_NESTING_LIMIT (1000): rejected, not a stack overflow. */
static void test_deep_nesting(void **state)
{
	(void)state;
	static const size_t depths[] = { 900, 1001, 5000, 200000 };
	for (size_t k = 0; k < sizeof(depths) / sizeof(depths[0]); k++) {
		size_t depth = depths[k];
		size_t len = 0;
		char *p = malloc(depth * 2 + 64);
		assert_non_null(p);
		len += (size_t)snprintf(p, 64, "{\"temp\":21,\"x\":");
		memset(p + len, '[', depth);
		len += depth;
		memset(p + len, ']', depth);
		len += depth;
		p[len++] = '}';
		struct dec_rule rule = { .format = DEC_JSON, .scale = 1, .min_c = -40,
					 .max_c = 125, .default_unit = 'C' };
		struct dec_result res;
		char why[256];
		int rc = dec_payload(&rule, (const uint8_t *)p, len, &res, why, sizeof(why));
		if (depth < 1000) {
			assert_int_equal(rc, 0);
			assert_true(fabs(res.temperature_c - 21.0) < 1e-9);
		} else {
			assert_int_equal(rc, -1);
			assert_non_null(strstr(why, "JSON: syntax error near offset"));
		}
		/* Same through auto and Watson. */
		rule.format = DEC_AUTO;
		rc = dec_payload(&rule, (const uint8_t *)p, len, &res, why, sizeof(why));
		assert_int_equal(rc, depth < 1000 ? 0 : -1);
		rule.format = DEC_WATSON;
		rc = dec_payload(&rule, (const uint8_t *)p, len, &res, why, sizeof(why));
		assert_int_equal(rc, -1);
		free(p);
	}
}

/* A large payload (max_packet_size scale) of valid JSON decodes fine. */
static void test_big_payload(void **state)
{
	(void)state;
	size_t pad = 1 << 20;
	char *p = malloc(pad + 64);
	assert_non_null(p);
	size_t len = (size_t)snprintf(p, 64, "{\"pad\":\"");
	memset(p + len, 'a', pad);
	len += pad;
	len += (size_t)snprintf(p + len, 64, "\",\"temp\":22.25}");
	struct dec_rule rule = { .format = DEC_AUTO, .scale = 1, .min_c = -40, .max_c = 125,
				 .default_unit = 'C' };
	struct dec_result res;
	char why[256];
	assert_int_equal(dec_payload(&rule, (const uint8_t *)p, len, &res, why, sizeof(why)), 0);
	assert_int_equal(res.format, DEC_JSON);
	assert_true(fabs(res.temperature_c - 22.25) < 1e-9);
	free(p);
}

/* ---- the fast paths against the C library and cJSON ---- */

/* A random decimal: up to 12 digits, 0 to 8 after the point, maybe
 * negative, sometimes with an exponent or a leading '+' (numbers only). */
static void random_number(char *out, size_t cap, int json)
{
	static const char *const signs[] = { "", "", "-", "+" };
	int k = (int)(test_rand() % 9);
	uint64_t m = test_rand() % 1000000000000ull;
	if (test_rand() % 2)
		m %= 100000; /* sensor-sized */
	uint64_t p10 = 1;
	for (int i = 0; i < k; i++)
		p10 *= 10;
	const char *sign = signs[test_rand() % (json ? 3 : 4)];
	int len;
	if (k == 0)
		len = snprintf(out, cap, "%s%llu", sign, (unsigned long long)m);
	else
		len = snprintf(out, cap, "%s%llu.%0*llu", sign, (unsigned long long)(m / p10), k,
			       (unsigned long long)(m % p10));
	if (test_rand() % 8 == 0 && len > 0 && (size_t)len < cap)
		snprintf(out + len, cap - (size_t)len, "e%d", (int)(test_rand() % 41) - 20);
}

static void assert_same_bits(double a, double b, const char *what, const char *text)
{
	if (memcmp(&a, &b, sizeof(a)) != 0)
		fail_msg("%s for \"%s\": %a, strtod %a", what, text, a, b);
}

/* The number and ADC decoders read what strtod reads, bit for bit. */
static void test_numbers_match_strtod(void **state)
{
	(void)state;
	struct dec_rule num = { .format = DEC_NUMBER, .scale = 1, .min_c = -1e300, .max_c = 1e300,
				.default_unit = 'C' };
	struct dec_rule adc = num;
	adc.format = DEC_ADC;
	struct dec_result res;
	char why[256], text[64];
	for (int i = 0; i < 300000; i++) {
		random_number(text, sizeof(text), 0);
		double want = strtod(text, NULL);
		size_t n = strlen(text);
		if (dec_payload(&num, (const uint8_t *)text, n, &res, why, sizeof(why)) != 0)
			fail_msg("number \"%s\": %s", text, why);
		assert_same_bits(res.temperature_c, want, "number", text);
		if (want < 0)
			continue;
		if (dec_payload(&adc, (const uint8_t *)text, n, &res, why, sizeof(why)) != 0)
			fail_msg("adc \"%s\": %s", text, why);
		assert_same_bits(res.raw, want == 0 ? 0.0 : want, "adc", text);
	}
}

struct payload {
	char text[512];
	size_t n;
	char temp[64]; /* the temperature's number text, "" if none */
	int unit_c;    /* no unit, or unit C (with the rule's default C) */
};

static void add(struct payload *pl, const char *s)
{
	size_t len = strlen(s);
	if (pl->n + len < sizeof(pl->text)) {
		memcpy(pl->text + pl->n, s, len);
		pl->n += len;
		pl->text[pl->n] = '\0';
	}
}

static const char *ws(void)
{
	static const char *const w[] = { "", "", "", " ", "\n", "\t", " \r\n " };
	return w[test_rand() % (sizeof(w) / sizeof(w[0]))];
}

/* A value for a number field: mostly a number, sometimes a string holding
 * one (maybe padded), rarely something else. number gets the text. */
static void field_value(struct payload *pl, char number[64])
{
	static const char *const odd[] = { "true", "null", "\"abc\"", "{\"v\":1}", "[21]",
					   "\"\"", "1e400", "\"1e400\"", "\"0x10\"" };
	unsigned r = (unsigned)(test_rand() % 20);
	random_number(number, 64, 1);
	if (r == 0) {
		add(pl, odd[test_rand() % (sizeof(odd) / sizeof(odd[0]))]);
		number[0] = '\0';
	} else if (r < 4) {
		add(pl, "\"");
		add(pl, r == 3 ? " " : "");
		add(pl, number);
		add(pl, r == 3 ? " " : "");
		add(pl, "\"");
	} else {
		add(pl, number);
	}
}

/* The fields of a reading, as members of an object (without braces),
 * after members others. */
static void fields(struct payload *pl, int members)
{
	static const char *const tkeys[] = { "temp", "temperature" };
	static const char *const hkeys[] = { "humidity", "hum" };
	static const char *const units[] = { "C", "F", "c", "\xc2\xb0" "F", "K", " C" };
	static const char *const extra[] = { "\"rssi\":-70", "\"ts\":\"2026-11-21\"",
					     "\"meta\":{\"x\":[1,{\"temp\":99}]}", "\"ok\":true" };
	char hum[64];
	pl->unit_c = 1;
	if (test_rand() % 3 == 0) {
		add(pl, members++ ? "," : "");
		add(pl, extra[test_rand() % 4]);
	}
	if (test_rand() % 20 != 0) {
		add(pl, members++ ? "," : "");
		add(pl, ws());
		add(pl, "\"");
		add(pl, tkeys[test_rand() % 2]);
		add(pl, "\":");
		add(pl, ws());
		field_value(pl, pl->temp);
		add(pl, ws());
	}
	if (test_rand() % 2) {
		add(pl, members++ ? "," : "");
		add(pl, "\"");
		add(pl, hkeys[test_rand() % 2]);
		add(pl, "\":");
		field_value(pl, hum);
	}
	if (test_rand() % 4 == 0) {
		const char *u = units[test_rand() % (sizeof(units) / sizeof(units[0]))];
		add(pl, members++ ? "," : "");
		add(pl, "\"unit\":\"");
		add(pl, u);
		add(pl, "\"");
		pl->unit_c = strcmp(u, "C") == 0 || strcmp(u, "c") == 0;
	}
	if (test_rand() % 30 == 0) {
		/* A second temperature: duplicate or competing keys. */
		add(pl, members++ ? "," : "");
		add(pl, test_rand() % 2 ? "\"temp\":1" : "\"temperature\":2");
	}
}

static void random_payload(struct payload *pl)
{
	pl->n = 0;
	pl->text[0] = '\0';
	pl->temp[0] = '\0';
	add(pl, "{");
	add(pl, ws());
	switch (test_rand() % 4) {
	case 0:
		fields(pl, 0); /* flat */
		break;
	case 1:
		add(pl, "\"d\":{");
		fields(pl, 0);
		add(pl, "}");
		break;
	case 2:
		add(pl, "\"ts\":1,\"d\":");
		add(pl, ws());
		add(pl, "{");
		fields(pl, 0);
		add(pl, "}");
		if (test_rand() % 10 == 0)
			add(pl, ",\"d\":{}"); /* a duplicate "d" */
		break;
	default:
		add(pl, "\"d\":");
		add(pl, test_rand() % 2 ? "5" : "[]");
		fields(pl, 1);
		if (test_rand() % 10 == 0)
			add(pl, ",\"d\":0"); /* a duplicate "d" */
		break;
	}
	add(pl, ws());
	add(pl, "}");
}

static void same_result(const char *text, int rc1, const struct dec_result *a, const char *why1,
			int rc2, const struct dec_result *b, const char *why2)
{
	if (rc1 != rc2 || (rc1 != 0 && strcmp(why1, why2) != 0))
		fail_msg("%s:\n fast %d \"%s\"\n cJSON %d \"%s\"", text, rc1, why1, rc2, why2);
	if (a->format != b->format || a->has_humidity != b->has_humidity ||
	    a->has_raw != b->has_raw || a->implausible != b->implausible ||
	    memcmp(&a->temperature_c, &b->temperature_c, sizeof(double)) != 0 ||
	    memcmp(&a->humidity_pct, &b->humidity_pct, sizeof(double)) != 0 ||
	    memcmp(&a->raw, &b->raw, sizeof(double)) != 0)
		fail_msg("%s: results differ (temperature %a / %a)", text, a->temperature_c,
			 b->temperature_c);
}

/* dec_payload on a heap copy of exactly n bytes, so ASan sees any read
 * past them. */
static int decode_copy(const struct dec_rule *rule, const char *text, size_t n,
		       struct dec_result *res, char *why, size_t whylen)
{
	uint8_t *copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, text, n);
	int rc = dec_payload(rule, copy, n, res, why, whylen);
	free(copy);
	return rc;
}

/* JSON payloads decode the same through jscan as through cJSON: each one
 * again with a member whose name is escaped ("\u0078", i.e. "x"), which
 * jscan leaves to cJSON and cJSON ignores like any other extra key. */
static void test_json_fast_matches_cjson(void **state)
{
	(void)state;
	static const enum dec_format fmts[] = { DEC_AUTO, DEC_WATSON, DEC_JSON };
	int decoded = 0;
	for (int i = 0; i < 200000; i++) {
		struct payload pl, slow;
		random_payload(&pl);
		struct jscan_val v;
		if (jscan_parse(pl.text, pl.n, &v) != 0)
			fail_msg("jscan rejects %s", pl.text);
		slow.n = 0;
		slow.text[0] = '\0';
		add(&slow, "{\"\\u0078\":0");
		add(&slow, pl.text[1 + strspn(pl.text + 1, " \t\r\n")] == '}' ? "" : ",");
		add(&slow, pl.text + 1);
		if (jscan_parse(slow.text, slow.n, &v) == 0)
			fail_msg("jscan accepts %s", slow.text);
		char unit = test_rand() % 8 ? 'C' : 'F';
		struct dec_rule rule = { .format = fmts[test_rand() % 3], .scale = 1, .min_c = -40,
					 .max_c = 125, .default_unit = unit };
		if (test_rand() % 2) {
			rule.min_c = -1e300;
			rule.max_c = 1e300;
		}
		struct dec_result a, b;
		char why1[256], why2[256];
		int rc1 = decode_copy(&rule, pl.text, pl.n, &a, why1, sizeof(why1));
		int rc2 = decode_copy(&rule, slow.text, slow.n, &b, why2, sizeof(why2));
		same_result(pl.text, rc1, &a, why1, rc2, &b, why2);
		if (rc1 != 0)
			continue;
		decoded++;
		/* And the temperature is strtod's, bit for bit. */
		if (pl.temp[0] && pl.unit_c && rule.default_unit == 'C')
			assert_same_bits(a.temperature_c, strtod(pl.temp, NULL), "JSON", pl.text);
	}
	print_message("%d of 200000 payloads decoded\n", decoded);
	assert_true(decoded > 30000);
}

static void test_reason_buffer_edges(void **state)
{
	(void)state;
	struct dec_rule rule = { .format = DEC_NUMBER, .scale = 1, .min_c = -40, .max_c = 125,
				 .default_unit = 'C' };
	struct dec_result res;
	char small[8];

	/* NULL / zero-sized reason buffers are allowed. */
	assert_int_equal(dec_payload(&rule, (const uint8_t *)"abc", 3, &res, NULL, 0), -1);
	assert_int_equal(dec_payload(&rule, (const uint8_t *)"abc", 3, &res, small, 0), -1);
	/* A short buffer gets a truncated, terminated reason. */
	assert_int_equal(dec_payload(&rule, (const uint8_t *)"abc", 3, &res, small, sizeof(small)),
			 -1);
	assert_string_equal(small, "not a n");
	/* NULL payload with length 0. */
	assert_int_equal(dec_payload(&rule, NULL, 0, &res, small, sizeof(small)), -1);
	/* Success leaves an empty reason. */
	char why[64] = "stale";
	assert_int_equal(dec_payload(&rule, (const uint8_t *)"20", 2, &res, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	/* Failure clears the result. */
	assert_int_equal(dec_payload(&rule, (const uint8_t *)"x", 1, &res, why, sizeof(why)), -1);
	assert_int_equal(res.has_humidity, 0);
	assert_int_equal(res.has_raw, 0);
	/* A NULL rule means the built-in catch-all (auto). */
	assert_int_equal(dec_payload(NULL, (const uint8_t *)"{\"d\":{\"temp\":3}}", 16, &res, why,
				     sizeof(why)),
			 0);
	assert_int_equal(res.format, DEC_WATSON);
}

static void test_custom_range(void **state)
{
	(void)state;
	struct dec_rule rule = { .format = DEC_NUMBER, .scale = 1, .min_c = 0, .max_c = 50.5,
				 .default_unit = 'C' };
	struct dec_result res;
	char why[128];
	assert_int_equal(dec_payload(&rule, (const uint8_t *)"50.5", 4, &res, why, sizeof(why)), 0);
	assert_int_equal(dec_payload(&rule, (const uint8_t *)"0", 1, &res, why, sizeof(why)), 0);
	assert_int_equal(dec_payload(&rule, (const uint8_t *)"-1", 2, &res, why, sizeof(why)), -1);
	assert_string_equal(why, "temperature -1 C outside 0..50.5 C");
	assert_int_equal(dec_payload(&rule, (const uint8_t *)"50.6", 4, &res, why, sizeof(why)),
			 -1);
	assert_string_equal(why, "temperature 50.6 C outside 0..50.5 C");
}

static void test_unknown_format(void **state)
{
	(void)state;
	struct dec_rule rule = { .format = (enum dec_format)42, .scale = 1, .min_c = -40,
				 .max_c = 125, .default_unit = 'C' };
	struct dec_result res;
	char why[128];
	assert_int_equal(dec_payload(&rule, (const uint8_t *)"1", 1, &res, why, sizeof(why)), -1);
	assert_string_equal(why, "unknown decode format 42");
}

static char *dev_a[] = { "dev1", "dev2" };

static const struct dec_rule sel_rules[] = {
	{ .name = "pair", .topic_filter = "site/+/temp", .devices = dev_a, .ndevices = 2,
	  .format = DEC_NUMBER },
	{ .name = "site", .topic_filter = "site/+/temp", .format = DEC_ADC },
	{ .name = "watson", .topic_filter = "iot-2/evt/+/fmt/json", .format = DEC_WATSON },
	{ .name = "all", .topic_filter = "#", .format = DEC_AUTO },
};

static const char *sel(size_t nrules, const char *topic, const char *device)
{
	const struct dec_rule *r = dec_rule_for(sel_rules, nrules, topic, strlen(topic), device);
	return r ? r->name : "(none)";
}

static void test_rule_for(void **state)
{
	(void)state;
	assert_string_equal(sel(4, "site/a/temp", "dev2"), "pair");
	assert_string_equal(sel(4, "site/a/temp", "dev1"), "pair");
	assert_string_equal(sel(4, "site/a/temp", "dev3"), "site");
	assert_string_equal(sel(4, "site/a/temp", "dev"), "site");
	assert_string_equal(sel(4, "site/a/temp", NULL), "site");
	assert_string_equal(sel(4, "iot-2/evt/status/fmt/json", "dev1"), "watson");
	assert_string_equal(sel(4, "iot-2/evt/status/fmt/text", "dev1"), "all");
	assert_string_equal(sel(4, "other/topic", "dev1"), "all");
	assert_string_equal(sel(3, "other/topic", "dev1"), "(none)");
	assert_string_equal(sel(0, "site/a/temp", "dev1"), "(none)");
	assert_string_equal(sel(4, "site/a/b/temp", "dev1"), "all");

	/* The topic is a length-delimited view, not NUL-terminated. */
	const char *buf = "site/a/tempXYZ";
	const struct dec_rule *r = dec_rule_for(sel_rules, 4, buf, 11, "dev1");
	assert_non_null(r);
	assert_string_equal(r->name, "pair");
	r = dec_rule_for(sel_rules, 3, buf, 14, "dev1");
	assert_null(r);
}

static void test_default_rules(void **state)
{
	(void)state;
	size_t n = 0;
	const struct dec_rule *r = dec_default_rules(&n);
	assert_non_null(r);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].topic_filter, "iot-2/evt/+/fmt/json");
	assert_int_equal(r[0].format, DEC_WATSON);
	assert_string_equal(r[1].topic_filter, "#");
	assert_int_equal(r[1].format, DEC_AUTO);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(r[i].name);
		assert_int_equal(r[i].line, 0);
		assert_int_equal(r[i].ndevices, 0);
		assert_true(r[i].min_c == -40.0 && r[i].max_c == 125.0);
		assert_int_equal(r[i].default_unit, 'C');
		assert_true(r[i].scale == 1.0 && r[i].offset == 0.0);
	}
	const char *t = "iot-2/evt/status/fmt/json";
	assert_ptr_equal(dec_rule_for(r, n, t, strlen(t), "dev1"), &r[0]);
	t = "home/livingroom/temp";
	assert_ptr_equal(dec_rule_for(r, n, t, strlen(t), "dev1"), &r[1]);

	/* End to end with the built-ins: a Watson payload on a Watson topic. */
	t = "iot-2/evt/status/fmt/json";
	const struct dec_rule *w = dec_rule_for(r, n, t, strlen(t), "dev1");
	struct dec_result res;
	char why[128];
	const char *p = "{\"d\":{\"temp\":21.5,\"humidity\":40}}";
	assert_int_equal(dec_payload(w, (const uint8_t *)p, strlen(p), &res, why, sizeof(why)), 0);
	assert_int_equal(res.format, DEC_WATSON);
	p = "21.5";
	assert_int_equal(dec_payload(w, (const uint8_t *)p, strlen(p), &res, why, sizeof(why)), -1);
	assert_string_equal(why, "Watson: payload is a number, not an object");
}

static void test_format_names(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		enum dec_format f;
	} names[] = {
		{ "auto", DEC_AUTO },	  { "watson", DEC_WATSON }, { "json", DEC_JSON },
		{ "number", DEC_NUMBER }, { "adc", DEC_ADC },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		enum dec_format f = (enum dec_format)99;
		assert_string_equal(dec_format_name(names[i].f), names[i].name);
		assert_int_equal(dec_format_parse(names[i].name, &f), 0);
		assert_int_equal(f, names[i].f);
	}
	enum dec_format f = DEC_ADC;
	assert_int_equal(dec_format_parse("xml", &f), -1);
	assert_int_equal(dec_format_parse("", &f), -1);
	assert_int_equal(dec_format_parse("Watson", &f), -1);
	assert_int_equal(dec_format_parse("json ", &f), -1);
	assert_int_equal(dec_format_parse(NULL, &f), -1);
	assert_int_equal(f, DEC_ADC);
	assert_string_equal(dec_format_name((enum dec_format)42), "unknown");
}

static void test_watson_event(void **state)
{
	(void)state;
	static const struct {
		const char *topic;
		int rc;
		const char *event;
	} ev[] = {
		{ "iot-2/evt/status/fmt/json", 0, "status" },
		{ "iot-2/evt/e/fmt/txt", 0, "e" },
		{ "iot-2/evt/temp-reading_1/fmt/json", 0, "temp-reading_1" },
		{ "iot-2/evt//fmt/json", -1, NULL },
		{ "iot-2/evt/status/fmt/", -1, NULL },
		{ "iot-2/evt/status/fmt", -1, NULL },
		{ "iot-2/evt/status/fmt/json/x", -1, NULL },
		{ "iot-2/evt/status/xyz/json", -1, NULL },
		{ "iot-2/evt/status", -1, NULL },
		{ "iot-2/evt/", -1, NULL },
		{ "iot-2/cmd/status/fmt/json", -1, NULL },
		{ "/iot-2/evt/status/fmt/json", -1, NULL },
		{ "iot-2/evt/st+tus/fmt/json", -1, NULL },
		{ "", -1, NULL },
	};
	for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		char out[32];
		int rc = dec_watson_event(ev[i].topic, strlen(ev[i].topic), out, sizeof(out));
		assert_int_equal(rc, ev[i].rc);
		if (rc == 0)
			assert_string_equal(out, ev[i].event);
	}
	/* Length-delimited, and cap must hold the event plus its NUL. */
	const char *t = "iot-2/evt/status/fmt/json/more";
	char out[7];
	assert_int_equal(dec_watson_event(t, 25, out, sizeof(out)), 0);
	assert_string_equal(out, "status");
	assert_int_equal(dec_watson_event(t, 25, out, 6), -1);
	assert_int_equal(dec_watson_event(t, 25, NULL, 0), -1);
	assert_int_equal(dec_watson_event(t, strlen(t), out, sizeof(out)), -1);
}

int main(void)
{
	static struct CMUnitTest tests[NCASES + 16];
	size_t n = 0;

	for (size_t i = 0; i < NCASES; i++) {
		tests[n].name = cases[i].name;
		tests[n].test_func = run_case;
		tests[n].setup_func = NULL;
		tests[n].teardown_func = NULL;
		tests[n].initial_state = (void *)&cases[i];
		n++;
	}
	const struct CMUnitTest more[] = {
		cmocka_unit_test(test_deep_nesting),	cmocka_unit_test(test_big_payload),
		cmocka_unit_test(test_reason_buffer_edges), cmocka_unit_test(test_custom_range),
		cmocka_unit_test(test_unknown_format),	cmocka_unit_test(test_rule_for),
		cmocka_unit_test(test_default_rules),	cmocka_unit_test(test_format_names),
		cmocka_unit_test(test_watson_event),	cmocka_unit_test(test_numbers_match_strtod),
		cmocka_unit_test(test_json_fast_matches_cjson),
	};
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		tests[n++] = more[i];
	return _cmocka_run_group_tests("decoder", tests, n, NULL, NULL);
}
