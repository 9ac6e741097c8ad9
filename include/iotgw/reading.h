/* reading: the normalized record forwarded upstream, and the dead-letter
 * record for rejected payloads, encoded as JSON. Pure functions.
 *
 * Ownership: a struct reading borrows its strings. The encoders append to
 * the caller's struct buf or write into the caller's array; only the
 * *_to_json forms allocate, and the caller frees what they return. */
#ifndef IOTGW_READING_H
#define IOTGW_READING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "iotgw/buf.h"
#include "iotgw/decoder.h"

struct reading {
	const char *device;
	const char *gateway;
	const char *event; /* Watson event name, or NULL */
	uint64_t seq;      /* per device, monotonic: lets consumers drop duplicates */
	struct timespec ts; /* CLOCK_REALTIME when the gateway received it */
	struct dec_result value;
};

/* {"device":"dev0001","gateway":"gw-1","ts":"2026-11-21T21:57:00.123Z",
 *  "seq":42,"temperature_c":21.37,"humidity_pct":40.1,"format":"watson"}
 * plus "event" when known and "raw" for ADC readings. Temperatures and
 * humidity are rounded to 2 decimals. Appended to out (the caller's, reused
 * from reading to reading; no NUL): 0, or -1 when out would pass its
 * ceiling or memory ran out, with out as it was. */
int reading_json(const struct reading *r, struct buf *out);
/* The same as a malloc'd NUL-terminated string the caller frees (NULL when
 * out of memory), for callers off the hot path. */
char *reading_to_json(const struct reading *r);

/* {"device":..,"gateway":..,"ts":..,"topic":..,"reason":..,
 *  "payload_b64":"..","payload_len":N}, appended to out as reading_json
 * does; deadletter_to_json returns it malloc'd (caller frees). */
int deadletter_json(const char *device, const char *gateway, struct timespec ts,
		    const char *topic, size_t topic_len, const char *reason,
		    const uint8_t *payload, size_t payload_len, struct buf *out);
char *deadletter_to_json(const char *device, const char *gateway, struct timespec ts,
			 const char *topic, size_t topic_len, const char *reason,
			 const uint8_t *payload, size_t payload_len);

/* RFC 3339 UTC with milliseconds: "2026-11-21T21:57:00.123Z". out >= 32. */
void reading_format_ts(struct timespec ts, char out[32]);

/* Expands {device}, {gateway} and {event} in tmpl into out (NUL-terminated).
 * A NULL value expands to "unknown". Returns the length, or -1 if out is too
 * small, tmpl has an unknown {placeholder} or a stray brace, or the result
 * would contain an MQTT wildcard (a PUBLISH topic may not, 3.3.2.1). */
int reading_topic(const char *tmpl, const char *device, const char *gateway, const char *event,
		  char *out, size_t cap);

/* Checks a template for reading_topic (known placeholders, balanced braces,
 * no MQTT wildcards). Returns 0, or -1 with a reason in why. */
int reading_topic_check(const char *tmpl, char *why, size_t whylen);

#endif
