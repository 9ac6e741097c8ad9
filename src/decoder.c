/* decoder: payload bytes -> a temperature (and maybe humidity) reading.
 *
 * Everything here is strict on purpose: a reading that is silently misread is
 * worse than one that lands in the dead-letter topic with a precise reason.
 * Pure: no I/O, no logging, no global state (cJSON's global error pointer is
 * written by cJSON itself but never read here). */
#include "iotgw/decoder.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "iotgw/jscan.h"
#include "iotgw/mqtt_codec.h"
#include "iotgw/numfmt.h"
#include "iotgw/reason.h"
#include "iotgw/text.h"

#define QUOTE_MAX 40  /* payload bytes quoted in a reason */
/* Number tokens (sign, digits, point, exponent) this long are refused:
 * numfmt_parse reads no more than NUMFMT_PARSE_MAX. */
#define NUMBER_MAX (NUMFMT_PARSE_MAX + 1)
/* Binary rounding in the Fahrenheit conversion and the ADC calibration can put
 * a value that is exactly on a bound in decimal a few ulps outside it; readings
 * are reported to 0.01 C, so this slack never admits a visibly different value. */
#define RANGE_SLACK 1e-9

static bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static void trim(const char **p, size_t *n)
{
	while (*n > 0 && is_ws((unsigned char)(*p)[0])) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && is_ws((unsigned char)(*p)[*n - 1]))
		(*n)--;
}

/* p[0..n) quoted for a reason: reasons end up in logs and in JSON, so
 * nothing unprintable or unbounded may pass through. */
static const char *quote(char *dst, size_t cap, const char *p, size_t n)
{
	return text_quote(dst, cap, p, n, QUOTE_MAX, 0);
}

/* Payloads must be UTF-8 text without NUL or other control bytes (tab, CR, LF
 * and friends are whitespace). Binary garbage is rejected here, once, with
 * the offset of the first bad byte, so every format below sees clean text. */
static int check_text(const unsigned char *s, size_t n, char *why, size_t whylen)
{
	size_t good = text_utf8_span((const char *)s, n);
	for (size_t i = 0; i < good; i++) {
		unsigned char c = s[i];
		if (c == 0)
			return reason_fail(why, whylen, "payload contains a NUL byte at offset %zu",
					   i);
		if ((c < 0x20 && !is_ws(c)) || c == 0x7f)
			return reason_fail(why, whylen,
					   "payload contains control byte 0x%02x at offset %zu", c,
					   i);
	}
	if (good < n)
		return reason_fail(why, whylen,
				   "payload is not valid UTF-8 (byte 0x%02x at offset %zu)",
				   s[good], good);
	return 0;
}

enum num_rc { NUM_OK = 0, NUM_SYNTAX, NUM_RANGE, NUM_LONG };

/* Scans a decimal number at the start of p: [+-] digits [. digits] [(e|E) [+-]
 * digits], where either side of the point may be empty but not both. strtod
 * alone would also accept hex, "inf", "nan" and leading whitespace, none of
 * which a sensor means. Overflow (1e400) is NUM_RANGE; underflow rounds
 * towards 0, which is the value meant. The value is strtod's, computed by
 * numfmt_parse without strtod for the usual numbers. */
static enum num_rc scan_number(const char *p, size_t n, size_t *used, double *out)
{
	size_t i = 0, digits = 0;

	if (i < n && (p[i] == '+' || p[i] == '-'))
		i++;
	while (i < n && is_digit(p[i])) {
		i++;
		digits++;
	}
	if (i < n && p[i] == '.') {
		i++;
		while (i < n && is_digit(p[i])) {
			i++;
			digits++;
		}
	}
	if (digits == 0)
		return NUM_SYNTAX;
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		size_t j = i + 1, edigits = 0;
		if (j < n && (p[j] == '+' || p[j] == '-'))
			j++;
		while (j < n && is_digit(p[j])) {
			j++;
			edigits++;
		}
		if (edigits == 0)
			return NUM_SYNTAX;
		i = j;
	}
	if (i >= NUMBER_MAX)
		return NUM_LONG;

	double v = 0;
	if (numfmt_parse(p, i, &v) != 0)
		return NUM_SYNTAX; /* not after the scan above, short of a foreign locale */
	if (!isfinite(v))
		return NUM_RANGE;
	*used = i;
	*out = v;
	return NUM_OK;
}

/* A whole string (whitespace trimmed) that must be exactly one number. On
 * error writes "<prefix>not a number: "..."" and similar into why. */
static int parse_whole_number(const char *p, size_t n, const char *prefix, double *out,
			      char *why, size_t whylen)
{
	char q[TEXT_QUOTE_CAP(QUOTE_MAX)];
	size_t used = 0;

	trim(&p, &n);
	switch (scan_number(p, n, &used, out)) {
	case NUM_OK:
		if (used == n)
			return 0;
		break;
	case NUM_RANGE:
		return reason_fail(why, whylen, "%snumber out of range: %s", prefix,
				   quote(q, sizeof(q), p, n));
	case NUM_LONG:
		return reason_fail(why, whylen, "%snumber too long: %s", prefix,
				   quote(q, sizeof(q), p, n));
	case NUM_SYNTAX:
		break;
	}
	return reason_fail(why, whylen, "%snot a number: %s", prefix, quote(q, sizeof(q), p, n));
}

/* "C", "F", "c", "f", "°C", "°F" (U+00B0 in UTF-8); 'C' or 'F' into *unit. */
static int parse_unit(const char *p, size_t n, char *unit)
{
	if (n == 3 && (unsigned char)p[0] == 0xc2 && (unsigned char)p[1] == 0xb0) {
		p += 2;
		n = 1;
	}
	if (n != 1)
		return -1;
	if (p[0] == 'C' || p[0] == 'c')
		*unit = 'C';
	else if (p[0] == 'F' || p[0] == 'f')
		*unit = 'F';
	else
		return -1;
	return 0;
}

static char rule_unit(const struct dec_rule *rule)
{
	return rule->default_unit == 'F' || rule->default_unit == 'f' ? 'F' : 'C';
}

static void fmt_num(char buf[40], double v)
{
	snprintf(buf, 40, "%.12g", v);
}

/* Derived values (F converted, ADC calibrated) are shown to 6 significant
 * digits: 148.889, not 148.888888888889. */
static void fmt_derived(char buf[40], double v)
{
	snprintf(buf, 40, "%.6g", v);
}

static bool in_range(double v, double lo, double hi)
{
	return isfinite(v) && v >= lo - RANGE_SLACK && v <= hi + RANGE_SLACK;
}

/* value was read in unit; converts to Celsius, range-checks it and the
 * humidity, and fills out. */
static int finish(const struct dec_rule *rule, enum dec_format fmt, double value, char unit,
		  bool has_hum, double hum, struct dec_result *out, char *why, size_t whylen)
{
	char a[40], b[40], lo[40], hi[40];
	double c = unit == 'F' ? (value - 32.0) * 5.0 / 9.0 : value;

	if (!in_range(c, rule->min_c, rule->max_c)) {
		out->implausible = true;
		fmt_num(a, value);
		fmt_num(lo, rule->min_c);
		fmt_num(hi, rule->max_c);
		if (unit == 'F') {
			fmt_derived(b, c);
			return reason_fail(why, whylen, "temperature %s F (%s C) outside %s..%s C", a, b,
					   lo, hi);
		}
		return reason_fail(why, whylen, "temperature %s C outside %s..%s C", a, lo, hi);
	}
	if (has_hum && !(hum >= 0.0 && hum <= 100.0)) {
		out->implausible = true;
		fmt_num(a, hum);
		return reason_fail(why, whylen, "humidity %s %% outside 0..100 %%", a);
	}
	out->format = fmt;
	out->temperature_c = c;
	out->has_humidity = has_hum;
	out->humidity_pct = has_hum ? hum : 0.0;
	return 0;
}

static int decode_number(const struct dec_rule *rule, const char *p, size_t n,
			 struct dec_result *out, char *why, size_t whylen)
{
	char q[TEXT_QUOTE_CAP(QUOTE_MAX)];
	size_t used = 0;
	double v = 0;
	char unit = rule_unit(rule);

	switch (scan_number(p, n, &used, &v)) {
	case NUM_OK:
		break;
	case NUM_RANGE:
		return reason_fail(why, whylen, "number out of range: %s", quote(q, sizeof(q), p, n));
	case NUM_LONG:
		return reason_fail(why, whylen, "number too long: %s", quote(q, sizeof(q), p, n));
	case NUM_SYNTAX:
		return reason_fail(why, whylen, "not a number: %s", quote(q, sizeof(q), p, n));
	}
	const char *rest = p + used;
	size_t rn = n - used;
	trim(&rest, &rn);
	/* Anything after the number must be exactly a unit: "21.5x", "0x10" and
	 * "21.5 22" are not numbers. */
	if (rn > 0 && parse_unit(rest, rn, &unit) != 0)
		return reason_fail(why, whylen, "not a number: %s", quote(q, sizeof(q), p, n));
	return finish(rule, DEC_NUMBER, v, unit, false, 0.0, out, why, whylen);
}

static int decode_adc(const struct dec_rule *rule, const char *p, size_t n,
		      struct dec_result *out, char *why, size_t whylen)
{
	char a[40], b[40], lo[40], hi[40];
	double raw = 0;

	if (parse_whole_number(p, n, "ADC: ", &raw, why, whylen) != 0)
		return -1;
	if (!(raw >= 0.0)) {
		fmt_num(a, raw);
		return reason_fail(why, whylen, "ADC: raw count %s is negative", a);
	}
	if (raw == 0.0)
		raw = 0.0; /* "-0" would be forwarded as "raw":-0 */
	double c = raw * rule->scale + rule->offset;
	/* The raw count is formatted for a reason only: not for every reading. */
	if (!isfinite(c)) {
		fmt_num(a, raw);
		return reason_fail(why, whylen, "ADC: raw count %s calibrates to a non-finite value", a);
	}
	if (!in_range(c, rule->min_c, rule->max_c)) {
		out->implausible = true;
		fmt_num(a, raw);
		fmt_derived(b, c);
		fmt_num(lo, rule->min_c);
		fmt_num(hi, rule->max_c);
		return reason_fail(why, whylen, "temperature %s C (raw %s) outside %s..%s C", b, a, lo,
				   hi);
	}
	out->format = DEC_ADC;
	out->temperature_c = c;
	out->has_raw = true;
	out->raw = raw;
	return 0;
}

static const char *json_type(const cJSON *v)
{
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsObject(v))
		return "an object";
	if (cJSON_IsArray(v))
		return "an array";
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNumber(v))
		return "a number";
	return "not a value";
}

/* The member of obj named a or b (b may be NULL). Duplicate or competing keys
 * are an error rather than a silent first-wins: cJSON would pick one of them,
 * the device may have meant the other. *found is NULL when absent. */
static int member(const cJSON *obj, const char *a, const char *b, const char *prefix,
		  const cJSON **found, char *why, size_t whylen)
{
	const cJSON *hit = NULL;

	*found = NULL;
	for (const cJSON *c = obj->child; c; c = c->next) {
		if (!c->string)
			continue;
		if (strcmp(c->string, a) != 0 && (!b || strcmp(c->string, b) != 0))
			continue;
		if (hit) {
			if (strcmp(hit->string, c->string) == 0)
				return reason_fail(why, whylen, "%s: duplicate \"%s\" key", prefix,
						   c->string);
			return reason_fail(why, whylen, "%s: both \"%s\" and \"%s\" keys", prefix,
					   hit->string, c->string);
		}
		hit = c;
	}
	*found = hit;
	return 0;
}

/* A JSON number, or a JSON string holding a strict number ("21.5"). */
static int json_number(const cJSON *v, const char *prefix, const char *path, double *out,
		       char *why, size_t whylen)
{
	if (cJSON_IsNumber(v)) {
		/* cJSON turns 1e400 into an infinity instead of failing. */
		if (!isfinite(v->valuedouble))
			return reason_fail(why, whylen, "%s: \"%s\" is out of range", prefix, path);
		*out = v->valuedouble;
		return 0;
	}
	if (cJSON_IsString(v) && v->valuestring) {
		char pre[96];
		snprintf(pre, sizeof(pre), "%s: \"%s\" ", prefix, path);
		return parse_whole_number(v->valuestring, strlen(v->valuestring), pre, out, why,
					  whylen);
	}
	return reason_fail(why, whylen, "%s: \"%s\" is %s, not a number", prefix, path, json_type(v));
}

/* Reads temp/temperature, humidity/hum and unit from obj (the payload object,
 * or Watson's "d"). inner names obj in reasons: "" or "d.". */
static int decode_fields(const struct dec_rule *rule, enum dec_format fmt, const cJSON *obj,
			 const char *prefix, const char *inner, struct dec_result *out, char *why,
			 size_t whylen)
{
	const cJSON *t, *h, *u;
	char path[64], q[TEXT_QUOTE_CAP(QUOTE_MAX)];
	double temp = 0, hum = 0;
	char unit = rule_unit(rule);

	if (member(obj, "temp", "temperature", prefix, &t, why, whylen) != 0 ||
	    member(obj, "humidity", "hum", prefix, &h, why, whylen) != 0 ||
	    member(obj, "unit", NULL, prefix, &u, why, whylen) != 0)
		return -1;
	if (!t)
		return reason_fail(why, whylen, "%s: no \"temp\" or \"temperature\" key%s", prefix,
				   *inner ? " in \"d\"" : "");
	if (u) {
		if (!cJSON_IsString(u) || !u->valuestring)
			return reason_fail(why, whylen, "%s: \"%sunit\" is %s, not \"C\" or \"F\"", prefix,
					   inner, json_type(u));
		if (parse_unit(u->valuestring, strlen(u->valuestring), &unit) != 0)
			return reason_fail(why, whylen, "%s: unknown unit %s (expected \"C\" or \"F\")",
					   prefix,
					   quote(q, sizeof(q), u->valuestring, strlen(u->valuestring)));
	}
	snprintf(path, sizeof(path), "%s%s", inner, t->string);
	if (json_number(t, prefix, path, &temp, why, whylen) != 0)
		return -1;
	if (h) {
		snprintf(path, sizeof(path), "%s%s", inner, h->string);
		if (json_number(h, prefix, path, &hum, why, whylen) != 0)
			return -1;
	}
	return finish(rule, fmt, temp, unit, h != NULL, hum, out, why, whylen);
}

/* Offset of the first \u0000 escape in p, or -1. cJSON decodes it into a NUL
 * that silently cuts the string short ("21\u0000junk" would read as "21");
 * check_text already keeps raw NULs out. Backslashes only occur inside JSON
 * strings, so skipping each escape pair is enough to find real escapes. */
static ptrdiff_t escaped_nul(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] != '\\')
			continue;
		if (p[i + 1] == 'u' && n - i >= 6 && memcmp(p + i + 2, "0000", 4) == 0)
			return (ptrdiff_t)i;
		i++; /* the escaped character, e.g. the second '\\' of "\\\\" */
	}
	return -1;
}

/* ---- the fast path: simple JSON read in place ----
 *
 * Nearly every payload is small, simple JSON ({"d":{"temp":21.5}}): jscan
 * reads it where it lies, without cJSON's allocations per value and its
 * locale-aware strtod. Whatever this path is unsure about (text jscan does
 * not take, a missing, duplicate or ill-typed field, a number that does not
 * parse) goes through cJSON as before, which finds the same values or says
 * precisely what is wrong: the reasons come from one place only. */

/* The members decode_fields reads, with how often each occurs. */
struct jfields {
	struct jscan_val d, t, h, u;
	unsigned nd, nt, nh, nu;
};

static bool key_is(const struct jscan_val *k, const char *s)
{
	size_t n = strlen(s);
	return k->n == n && memcmp(k->p, s, n) == 0;
}

static void jfields_collect(const struct jscan_val *obj, struct jfields *f)
{
	struct jscan_iter it;
	struct jscan_val k, v;

	memset(f, 0, sizeof(*f));
	jscan_iter_init(&it, obj);
	while (jscan_next(&it, &k, &v)) {
		if (key_is(&k, "d")) {
			f->d = v;
			f->nd++;
		} else if (key_is(&k, "temp") || key_is(&k, "temperature")) {
			f->t = v;
			f->nt++;
		} else if (key_is(&k, "humidity") || key_is(&k, "hum")) {
			f->h = v;
			f->nh++;
		} else if (key_is(&k, "unit")) {
			f->u = v;
			f->nu++;
		}
	}
}

/* v as json_number reads it from cJSON's tree (a JSON number, or a string
 * holding a strict number); false where json_number would fail. */
static bool jnumber(const struct jscan_val *v, double *out)
{
	const char *p = v->p;
	size_t n = v->n, used = 0;

	if (v->type == JSCAN_NUMBER)
		return numfmt_parse(p, n, out) == 0 && isfinite(*out);
	if (v->type != JSCAN_STRING)
		return false;
	trim(&p, &n);
	return scan_number(p, n, &used, out) == NUM_OK && used == n;
}

/* decode_json for simple JSON: the result of finish(), or 1 when it is
 * left to the cJSON path. */
static int decode_json_fast(const struct dec_rule *rule, enum dec_format fmt, const char *p,
			    size_t n, struct dec_result *out, char *why, size_t whylen)
{
	struct jscan_val root;
	struct jfields f;
	double temp = 0, hum = 0;
	char unit = rule_unit(rule);

	if (jscan_parse(p, n, &root) != 0 || root.type != JSCAN_OBJECT)
		return 1;
	jfields_collect(&root, &f);
	if (fmt != DEC_JSON) {
		/* decode_json's rules for "d": unique, and an object for Watson. */
		if (f.nd > 1)
			return 1;
		if (fmt == DEC_AUTO)
			fmt = f.nd == 1 && f.d.type == JSCAN_OBJECT ? DEC_WATSON : DEC_JSON;
		if (fmt == DEC_WATSON) {
			struct jscan_val d = f.d;
			if (f.nd != 1 || d.type != JSCAN_OBJECT)
				return 1;
			jfields_collect(&d, &f);
		}
	}
	if (f.nt != 1 || f.nh > 1 || f.nu > 1)
		return 1;
	if (f.nu == 1 && (f.u.type != JSCAN_STRING || parse_unit(f.u.p, f.u.n, &unit) != 0))
		return 1;
	if (!jnumber(&f.t, &temp) || (f.nh == 1 && !jnumber(&f.h, &hum)))
		return 1;
	return finish(rule, fmt, temp, unit, f.nh == 1, hum, out, why, whylen);
}

/* fmt is DEC_AUTO (payload starts with '{'), DEC_WATSON or DEC_JSON. base is
 * the offset of p in the payload, for error positions. */
static int decode_json(const struct dec_rule *rule, enum dec_format fmt, const char *p, size_t n,
		       size_t base, struct dec_result *out, char *why, size_t whylen)
{
	const char *end = NULL;
	const char *prefix = fmt == DEC_WATSON ? "Watson" : "JSON";
	int rc = decode_json_fast(rule, fmt, p, n, out, why, whylen);

	if (rc != 1)
		return rc;
	ptrdiff_t nul = escaped_nul(p, n);
	if (nul >= 0)
		return reason_fail(why, whylen, "%s: escaped NUL (\\u0000) at offset %zu", prefix,
				   base + (size_t)nul);
	/* With a length, cJSON never reads past p + n; we check the end ourselves
	 * because require_null_terminated would demand a NUL inside the length.
	 * Nesting deeper than CJSON_NESTING_LIMIT fails here, without recursion
	 * blowing the stack. */
	cJSON *root = cJSON_ParseWithLengthOpts(p, n, &end, 0);
	if (!root) {
		size_t at = end && end >= p && end <= p + n ? (size_t)(end - p) : 0;
		return reason_fail(why, whylen, "%s: syntax error near offset %zu", prefix, base + at);
	}
	if (end != p + n) {
		/* p is trimmed, so anything after the value is not whitespace. */
		size_t at = end && end >= p && end <= p + n ? (size_t)(end - p) : 0;
		rc = reason_fail(why, whylen, "%s: unexpected data after the value at offset %zu", prefix,
				 base + at);
		goto done;
	}
	if (!cJSON_IsObject(root)) {
		rc = reason_fail(why, whylen, "%s: payload is %s, not an object", prefix, json_type(root));
		goto done;
	}

	const cJSON *d = NULL;
	if (fmt == DEC_AUTO || fmt == DEC_WATSON) {
		if (member(root, "d", NULL, prefix, &d, why, whylen) != 0) {
			rc = -1;
			goto done;
		}
		if (fmt == DEC_AUTO)
			fmt = d && cJSON_IsObject(d) ? DEC_WATSON : DEC_JSON;
	}
	if (fmt == DEC_WATSON) {
		if (!d) {
			rc = reason_fail(why, whylen, "Watson: no \"d\" object");
			goto done;
		}
		if (!cJSON_IsObject(d)) {
			rc = reason_fail(why, whylen, "Watson: \"d\" is %s, not an object", json_type(d));
			goto done;
		}
		rc = decode_fields(rule, DEC_WATSON, d, "Watson", "d.", out, why, whylen);
	} else {
		rc = decode_fields(rule, DEC_JSON, root, "JSON", "", out, why, whylen);
	}
done:
	cJSON_Delete(root);
	return rc;
}

static char builtin_watson_name[] = "builtin-watson";
static char builtin_watson_filter[] = "iot-2/evt/+/fmt/json";
static char builtin_auto_name[] = "builtin-auto";
static char builtin_auto_filter[] = "#";

static const struct dec_rule builtin_rules[] = {
	{
		.name = builtin_watson_name,
		.line = 0,
		.topic_filter = builtin_watson_filter,
		.devices = NULL,
		.ndevices = 0,
		.format = DEC_WATSON,
		.scale = 1.0,
		.offset = 0.0,
		.min_c = -40.0,
		.max_c = 125.0,
		.default_unit = 'C',
	},
	{
		.name = builtin_auto_name,
		.line = 0,
		.topic_filter = builtin_auto_filter,
		.devices = NULL,
		.ndevices = 0,
		.format = DEC_AUTO,
		.scale = 1.0,
		.offset = 0.0,
		.min_c = -40.0,
		.max_c = 125.0,
		.default_unit = 'C',
	},
};

int dec_payload(const struct dec_rule *rule, const uint8_t *payload, size_t len,
		struct dec_result *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	if (why && whylen > 0)
		why[0] = '\0';
	if (!rule)
		rule = &builtin_rules[1];
	if (len == 0 || !payload)
		return reason_fail(why, whylen, "empty payload");
	/* Firmware that publishes sizeof(buf) instead of strlen(buf) sends the C
	 * string terminator along; one trailing NUL is that, not data. */
	if (payload[len - 1] == 0)
		len--;
	if (len == 0)
		return reason_fail(why, whylen, "empty payload");
	if (check_text(payload, len, why, whylen) != 0)
		return -1;

	const char *p = (const char *)payload;
	size_t n = len;
	trim(&p, &n);
	if (n == 0)
		return reason_fail(why, whylen, "payload is only whitespace");
	size_t base = (size_t)(p - (const char *)payload);

	switch (rule->format) {
	case DEC_AUTO:
		if (p[0] == '{')
			return decode_json(rule, DEC_AUTO, p, n, base, out, why, whylen);
		return decode_number(rule, p, n, out, why, whylen);
	case DEC_WATSON:
	case DEC_JSON:
		return decode_json(rule, rule->format, p, n, base, out, why, whylen);
	case DEC_NUMBER:
		return decode_number(rule, p, n, out, why, whylen);
	case DEC_ADC:
		return decode_adc(rule, p, n, out, why, whylen);
	}
	return reason_fail(why, whylen, "unknown decode format %d", (int)rule->format);
}

const struct dec_rule *dec_rule_for(const struct dec_rule *rules, size_t nrules,
				    const char *topic, size_t topic_len, const char *device)
{
	for (size_t i = 0; i < nrules; i++) {
		const struct dec_rule *r = &rules[i];
		if (!r->topic_filter || !mqtt_topic_matches(r->topic_filter, topic, topic_len))
			continue;
		if (r->ndevices == 0 || !r->devices)
			return r;
		if (!device)
			continue;
		for (size_t j = 0; j < r->ndevices; j++)
			if (r->devices[j] && strcmp(r->devices[j], device) == 0)
				return r;
	}
	return NULL;
}

const struct dec_rule *dec_default_rules(size_t *nrules)
{
	if (nrules)
		*nrules = sizeof(builtin_rules) / sizeof(builtin_rules[0]);
	return builtin_rules;
}

const char *dec_format_name(enum dec_format f)
{
	switch (f) {
	case DEC_AUTO:
		return "auto";
	case DEC_WATSON:
		return "watson";
	case DEC_JSON:
		return "json";
	case DEC_NUMBER:
		return "number";
	case DEC_ADC:
		return "adc";
	}
	return "unknown";
}

int dec_format_parse(const char *s, enum dec_format *out)
{
	static const enum dec_format all[] = { DEC_AUTO, DEC_WATSON, DEC_JSON, DEC_NUMBER,
					       DEC_ADC };

	if (!s)
		return -1;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(s, dec_format_name(all[i])) == 0) {
			if (out)
				*out = all[i];
			return 0;
		}
	}
	return -1;
}

int dec_watson_event(const char *topic, size_t topic_len, char *out, size_t cap)
{
	static const char pre[] = "iot-2/evt/";
	static const char mid[] = "/fmt/";
	const size_t prelen = sizeof(pre) - 1, midlen = sizeof(mid) - 1;

	if (!topic || topic_len <= prelen || memcmp(topic, pre, prelen) != 0)
		return -1;
	const char *ev = topic + prelen;
	size_t rest = topic_len - prelen;
	const char *slash = memchr(ev, '/', rest);
	if (!slash)
		return -1;
	size_t evlen = (size_t)(slash - ev);
	rest -= evlen;
	/* "/fmt/<fmt>" with a non-empty single-level format. */
	if (evlen == 0 || rest <= midlen || memcmp(slash, mid, midlen) != 0 ||
	    memchr(slash + midlen, '/', rest - midlen))
		return -1;
	/* The event lands in upstream topics via {event}: no wildcards (3.3.2.1)
	 * and no NUL (1.5.3). */
	for (size_t i = 0; i < evlen; i++)
		if (ev[i] == '+' || ev[i] == '#' || ev[i] == '\0')
			return -1;
	if (!out || cap <= evlen)
		return -1;
	memcpy(out, ev, evlen);
	out[evlen] = '\0';
	return 0;
}
