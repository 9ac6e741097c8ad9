/* reading: the normalized record sent upstream and the dead-letter record for
 * rejected payloads, as JSON (cJSON), plus upstream topic templates. Pure. */
#include "iotgw/reading.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotgw/mqtt_codec.h"
#include "iotgw/reason.h"

#define TOPIC_MAX 65535 /* 1.5.3: an MQTT string is at most 65535 bytes */

/* Adds s[0..n) as a JSON string (NULL as JSON null). cJSON copies bytes
 * through unchecked, so text that is not valid UTF-8 would make the whole
 * record invalid JSON: in that case non-ASCII bytes (and NULs) become '?'. */
static bool add_text(cJSON *o, const char *key, const char *s, size_t n)
{
	if (!s)
		return cJSON_AddNullToObject(o, key) != NULL;
	char *copy = malloc(n + 1);
	if (!copy)
		return false;
	memcpy(copy, s, n);
	copy[n] = '\0';
	if (!mqtt_utf8_valid(copy, n)) {
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)copy[i];
			if (c == 0 || c >= 0x80)
				copy[i] = '?';
		}
	}
	bool ok = cJSON_AddStringToObject(o, key, copy) != NULL;
	free(copy);
	return ok;
}

static bool add_str(cJSON *o, const char *key, const char *s)
{
	return add_text(o, key, s, s ? strlen(s) : 0);
}

/* Integers go out as raw JSON text so they are exact at any size; a double
 * would round above 2^53. */
static bool add_u64(cJSON *o, const char *key, uint64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return cJSON_AddRawToObject(o, key, buf) != NULL;
}

static double round2(double v)
{
	/* Beyond 1e13 there are no hundredths left to round (and v * 100 could
	 * overflow); non-finite values print as null. */
	if (!isfinite(v) || fabs(v) > 1e13)
		return v;
	double r = round(v * 100.0) / 100.0;
	/* -0.004 rounds to -0, which cJSON prints as "-0". */
	return r == 0.0 ? 0.0 : r;
}

static bool add_ts(cJSON *o, struct timespec ts)
{
	char buf[32];
	reading_format_ts(ts, buf);
	return cJSON_AddStringToObject(o, "ts", buf) != NULL;
}

static char *finish(cJSON *o, bool ok)
{
	char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return s;
}

char *reading_to_json(const struct reading *r)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	const struct dec_result *v = &r->value;
	bool ok = add_str(o, "device", r->device) && add_str(o, "gateway", r->gateway) &&
		  add_ts(o, r->ts) && add_u64(o, "seq", r->seq) &&
		  cJSON_AddNumberToObject(o, "temperature_c", round2(v->temperature_c)) != NULL;
	if (ok && v->has_humidity)
		ok = cJSON_AddNumberToObject(o, "humidity_pct", round2(v->humidity_pct)) != NULL;
	if (ok)
		ok = add_str(o, "format", dec_format_name(v->format));
	if (ok && r->event)
		ok = add_str(o, "event", r->event);
	if (ok && v->has_raw)
		ok = cJSON_AddNumberToObject(o, "raw", v->raw) != NULL;
	return finish(o, ok);
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 4648 section 4: standard alphabet, '=' padding. Returns a malloc'd
 * NUL-terminated string, or NULL. */
static char *base64(const uint8_t *p, size_t n)
{
	if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	size_t outlen = (n + 2) / 3 * 4;
	char *out = malloc(outlen + 1);
	if (!out)
		return NULL;
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

char *deadletter_to_json(const char *device, const char *gateway, struct timespec ts,
			 const char *topic, size_t topic_len, const char *reason,
			 const uint8_t *payload, size_t payload_len)
{
	char *b64 = base64(payload_len ? payload : (const uint8_t *)"", payload_len);
	if (!b64)
		return NULL;
	cJSON *o = cJSON_CreateObject();
	if (!o) {
		free(b64);
		return NULL;
	}
	/* The payload can be up to max_packet_size: reference the base64 text
	 * instead of letting cJSON copy it once more. */
	cJSON *b = cJSON_CreateStringReference(b64);
	bool ok = add_str(o, "device", device) && add_str(o, "gateway", gateway) &&
		  add_ts(o, ts) && add_text(o, "topic", topic, topic ? topic_len : 0) &&
		  add_str(o, "reason", reason) && b != NULL;
	if (ok) {
		cJSON_AddItemToObject(o, "payload_b64", b);
		b = NULL;
		ok = add_u64(o, "payload_len", payload_len);
	}
	cJSON_Delete(b);
	char *s = finish(o, ok);
	free(b64);
	return s;
}

void reading_format_ts(struct timespec ts, char out[32])
{
	struct tm tm;
	long ms = ts.tv_nsec / 1000000;

	if (ms < 0 || ms > 999)
		ms = 0;
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
