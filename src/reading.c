/* reading: the normalized record sent upstream and the dead-letter record for
 * rejected payloads, as JSON, plus upstream topic templates. Pure. */
#include "iotgw/reading.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "iotgw/mqtt_codec.h"
#include "iotgw/numfmt.h"
#include "iotgw/reason.h"

#define TOPIC_MAX 65535 /* 1.5.3: an MQTT string is at most 65535 bytes */

/* ---- a small JSON writer into a caller's buffer ----
 *
 * The normalized reading is built for every PUBLISH, so it is written
 * straight into a reusable buffer: no tree, no allocation, no printf on the
 * usual path. The output is byte for byte what cJSON_PrintUnformatted gave
 * before (tests/unit/test_reading.c compares the two): the same escapes,
 * numbers as cJSON prints them ("%d" for integers, else the shortest of
 * "%1.15g" / "%1.17g" that reads back; numfmt_json, by hand for the usual
 * values), keys in the documented order. */

struct jw {
	struct buf *b;
	bool failed;
};

/* Most pieces are a few bytes and the buffer, reused, has room: those are
 * copied here, and buf_append (a call, its checks) only grows it. Within
 * cap is within the ceiling (buf keeps cap <= max). */
static void put(struct jw *w, const void *p, size_t n)
{
	struct buf *b = w->b;
	if (w->failed || n == 0)
		return;
	if (n <= b->cap - b->len) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
	} else if (buf_append(b, p, n) != 0) {
		w->failed = true;
	}
}

static void put_lit(struct jw *w, const char *s)
{
	put(w, s, strlen(s));
}

/* s[0..n) as a JSON string (NULL as null). Escapes as cJSON does. Text that
 * is not valid UTF-8 would make the whole record invalid JSON: then
 * non-ASCII bytes (and NULs) become '?'. */
static void put_text(struct jw *w, const char *s, size_t n)
{
	if (!s) {
		put_lit(w, "null");
		return;
	}
	bool sanitize = !mqtt_utf8_valid(s, n);
	put(w, "\"", 1);
	size_t run = 0; /* bytes s[i - run .. i) that need no escape */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool plain = c >= 32 && c != '"' && c != '\\' && !(sanitize && c >= 0x80);
		if (plain) {
			run++;
			continue;
		}
		put(w, s + i - run, run);
		run = 0;
		char esc[8];
		size_t en = 2;
		esc[0] = '\\';
		if (sanitize && (c == 0 || c >= 0x80)) {
			esc[0] = '?';
			en = 1;
		} else if (c == '"' || c == '\\') {
			esc[1] = (char)c;
		} else if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
			esc[1] = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		} else {
			static const char hex[] = "0123456789abcdef";
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			en = 6;
		}
		put(w, esc, en);
	}
	put(w, s + n - run, run);
	put(w, "\"", 1);
}

static void put_str(struct jw *w, const char *s)
{
	put_text(w, s, s ? strlen(s) : 0);
}

static void put_key(struct jw *w, const char *key)
{
	/* Every record starts with "device", so any other key follows one. */
	if (strcmp(key, "device") != 0)
		put(w, ",", 1);
	put(w, "\"", 1);
	put_lit(w, key);
	put(w, "\":", 2);
}

/* Decimal digits of v, right-aligned in out[24]; returns where they start. */
static char *u64_digits(uint64_t v, char out[24])
{
	char *p = out + 24;
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return p;
}

/* Integers are exact at any size (a double would round above 2^53). */
static void put_u64(struct jw *w, uint64_t v)
{
	char d[24];
	char *p = u64_digits(v, d);
	put(w, p, (size_t)(d + 24 - p));
}

/* A number as cJSON prints it, by numfmt: digit by digit for the usual
 * values, snprintf only for the rare rest. */
static void put_double(struct jw *w, double v)
{
	char d[NUMFMT_JSON_CAP];
	put(w, d, numfmt_json(v, d));
}

static int finish(struct jw *w, size_t start)
{
	if (!w->failed)
		return 0;
	w->b->len = start; /* nothing half-written stays behind */
	return -1;
}

static double round2(double v)
{
	/* Beyond 1e13 there are no hundredths left to round (and v * 100 could
	 * overflow); non-finite values print as null. */
	if (!isfinite(v) || fabs(v) > 1e13)
		return v;
	double r = round(v * 100.0) / 100.0;
	/* -0.004 rounds to -0, which would print as "-0". */
	return r == 0.0 ? 0.0 : r;
}

static void put_ts(struct jw *w, struct timespec ts)
{
	char buf[32];
	reading_format_ts(ts, buf);
	put(w, "\"", 1);
	put_lit(w, buf);
	put(w, "\"", 1);
}

int reading_json(const struct reading *r, struct buf *out)
{
	struct jw w = {out, false};
	size_t start = out->len;
	const struct dec_result *v = &r->value;
	put(&w, "{", 1);
	put_key(&w, "device");
	put_str(&w, r->device);
	put_key(&w, "gateway");
	put_str(&w, r->gateway);
	put_key(&w, "ts");
	put_ts(&w, r->ts);
	put_key(&w, "seq");
	put_u64(&w, r->seq);
	put_key(&w, "temperature_c");
	put_double(&w, round2(v->temperature_c));
	if (v->has_humidity) {
		put_key(&w, "humidity_pct");
		put_double(&w, round2(v->humidity_pct));
	}
	put_key(&w, "format");
	put_str(&w, dec_format_name(v->format));
	if (r->event) {
		put_key(&w, "event");
		put_str(&w, r->event);
	}
	if (v->has_raw) {
		put_key(&w, "raw");
		put_double(&w, v->raw);
	}
	put(&w, "}", 1);
	return finish(&w, start);
}

/* RFC 4648 section 4 (standard alphabet, '=' padding) as a JSON string,
 * encoded by OpenSSL straight into the buffer. */
static void put_base64(struct jw *w, const uint8_t *p, size_t n)
{
	size_t len = (n + 2) / 3 * 4;
	put(w, "\"", 1);
	/* EVP_EncodeBlock counts in int and writes a NUL after the text. */
	if (w->failed || n > INT_MAX / 4 * 3 || buf_reserve(w->b, len + 1) != 0) {
		w->failed = true;
		return;
	}
	(void)EVP_EncodeBlock(w->b->data + w->b->len, p, (int)n);
	w->b->len += len;
	put(w, "\"", 1);
}

int deadletter_json(const char *device, const char *gateway, struct timespec ts,
		    const char *topic, size_t topic_len, const char *reason,
		    const uint8_t *payload, size_t payload_len, struct buf *out)
{
	struct jw w = {out, false};
	size_t start = out->len;
	put(&w, "{", 1);
	put_key(&w, "device");
	put_str(&w, device);
	put_key(&w, "gateway");
	put_str(&w, gateway);
	put_key(&w, "ts");
	put_ts(&w, ts);
	put_key(&w, "topic");
	put_text(&w, topic, topic ? topic_len : 0);
	put_key(&w, "reason");
	put_str(&w, reason);
	put_key(&w, "payload_b64");
	put_base64(&w, payload_len ? payload : (const uint8_t *)"", payload_len);
	put_key(&w, "payload_len");
	put_u64(&w, payload_len);
	put(&w, "}", 1);
	return finish(&w, start);
}

/* The malloc'd, NUL-terminated forms, for callers off the hot path. */
static char *as_string(struct buf *b, int rc)
{
	if (rc != 0 || buf_append(b, "", 1) != 0) {
		buf_free(b);
		return NULL;
	}
	return (char *)b->data;
}

char *reading_to_json(const struct reading *r)
{
	struct buf b;
	buf_init(&b, SIZE_MAX);
	return as_string(&b, reading_json(r, &b));
}

char *deadletter_to_json(const char *device, const char *gateway, struct timespec ts,
			 const char *topic, size_t topic_len, const char *reason,
			 const uint8_t *payload, size_t payload_len)
{
	struct buf b;
	buf_init(&b, SIZE_MAX);
	return as_string(&b, deadletter_json(device, gateway, ts, topic, topic_len, reason,
					     payload, payload_len, &b));
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void two(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

void reading_format_ts(struct timespec ts, char out[32])
{
	long ms = ts.tv_nsec / 1000000;
	if (ms < 0 || ms > 999)
		ms = 0;
	/* Years 1970 .. 9999 by arithmetic (every reading has a timestamp);
	 * anything else through the C library, as before. */
	if (ts.tv_sec >= 0 && ts.tv_sec < 253402300800) {
		int64_t days = ts.tv_sec / 86400;
		unsigned sod = (unsigned)(ts.tv_sec % 86400), mon, day;
		int64_t year;
		civil_from_days(days, &year, &mon, &day);
		memcpy(out, "0000-00-00T00:00:00.000Z", 25);
		two(out, (unsigned)(year / 100));
		two(out + 2, (unsigned)(year % 100));
		two(out + 5, mon);
		two(out + 8, day);
		two(out + 11, sod / 3600);
		two(out + 14, sod / 60 % 60);
		two(out + 17, sod % 60);
		out[20] = (char)('0' + ms / 100);
		two(out + 21, (unsigned)(ms % 100));
		return;
	}
	struct tm tm;
	char date[26];
	/* strftime returns 0 if the year needs more than 11 characters, and
	 * gmtime_r fails beyond year 2^31: keep the field well-formed then. */
	if (!gmtime_r(&ts.tv_sec, &tm) ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(out, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(out, 32, "%s.%03ldZ", date, ms);
}

/* The placeholder named by p[0..n), or -1. */
static int placeholder(const char *p, size_t n)
{
	static const char *const names[] = { "device", "gateway", "event" };
	for (int i = 0; i < 3; i++)
		if (strlen(names[i]) == n && memcmp(p, names[i], n) == 0)
			return i;
	return -1;
}

int reading_topic(const char *tmpl, const char *device, const char *gateway, const char *event,
		  char *out, size_t cap)
{
	size_t o = 0;

	if (!tmpl || !out || cap == 0)
		return -1;
	for (const char *p = tmpl; *p;) {
		if (*p == '{') {
			const char *close = strchr(p + 1, '}');
			if (!close)
				return -1;
			const char *val;
			switch (placeholder(p + 1, (size_t)(close - p - 1))) {
			case 0:
				val = device;
				break;
			case 1:
				val = gateway;
				break;
			case 2:
				val = event;
				break;
			default:
				return -1;
			}
			if (!val)
				val = "unknown";
			/* A topic name must not contain wildcards (3.3.2.1): a device id
			 * "a+b" would make the upstream PUBLISH malformed. */
			if (strpbrk(val, "+#"))
				return -1;
			size_t vl = strlen(val);
			if (vl >= cap - o)
				return -1;
			memcpy(out + o, val, vl);
			o += vl;
			p = close + 1;
		} else if (*p == '}' || *p == '+' || *p == '#') {
			return -1;
		} else {
			if (cap - o < 2)
				return -1;
			out[o++] = *p++;
		}
	}
	if (o > INT_MAX)
		return -1;
	out[o] = '\0';
	return (int)o;
}

int reading_topic_check(const char *tmpl, char *why, size_t whylen)
{
	if (!tmpl || !*tmpl)
		return reason_fail(why, whylen, "topic template is empty");
	size_t len = strlen(tmpl);
	if (len > TOPIC_MAX)
		return reason_fail(why, whylen, "topic template is longer than %d bytes", TOPIC_MAX);
	if (!mqtt_utf8_valid(tmpl, len))
		return reason_fail(why, whylen, "topic template is not valid UTF-8 (MQTT 1.5.3)");
	if (tmpl[0] == '$')
		return reason_fail(why, whylen,
				   "topic template must not start with '$' (reserved, MQTT 4.7.2)");
	for (size_t i = 0; i < len; i++) {
		char c = tmpl[i];
		if (c == '+' || c == '#')
			return reason_fail(why, whylen,
					   "wildcard '%c' at offset %zu not allowed in a topic name "
					   "(MQTT 3.3.2.1)",
					   c, i);
		if (c == '}')
			return reason_fail(why, whylen, "'}' without '{' at offset %zu", i);
		if (c != '{')
			continue;
		const char *close = strchr(tmpl + i + 1, '}');
		const char *open = strchr(tmpl + i + 1, '{');
		if (!close || (open && open < close))
			return reason_fail(why, whylen, "'{' at offset %zu is not closed", i);
		size_t n = (size_t)(close - (tmpl + i + 1));
		if (placeholder(tmpl + i + 1, n) < 0) {
			int shown = n > 40 ? 40 : (int)n;
			return reason_fail(why, whylen,
					   "unknown placeholder {%.*s}%s "
					   "(known: {device} {gateway} {event})",
					   shown, tmpl + i + 1, n > 40 ? "..." : "");
		}
		i += n + 1;
	}
	return 0;
}
