/* libFuzzer target for the decoder and the records built from its result.
 *
 * Input: the first byte selects the format (modulo 5: auto, watson, json,
 * number, adc), the rest is the payload. Decodes with a fixed rule; on
 * success encodes the reading, always encodes the dead-letter record, and
 * checks the invariants callers rely on. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotgw/decoder.h"
#include "iotgw/reading.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json(char *s)
{
	if (!s)
		abort(); /* only out of memory may return NULL */
	cJSON *j = cJSON_Parse(s);
	if (!j)
		abort(); /* our output must always be valid JSON */
	cJSON_Delete(j);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct dec_rule rule = {
		.name = NULL,
		.topic_filter = NULL,
		.format = (enum dec_format)(data[0] % 5),
		.scale = 0.1,
		.offset = -50.0,
		.min_c = -40.0,
		.max_c = 125.0,
		.default_unit = (data[0] & 0x80) ? 'F' : 'C',
	};
	const uint8_t *payload = data + 1;
	size_t len = size - 1;
	struct dec_result res;
	char why[256];
	struct timespec ts = { .tv_sec = 1795298220, .tv_nsec = 123000000 };

	memset(why, 'X', sizeof(why));
	if (dec_payload(&rule, payload, len, &res, why, sizeof(why)) == 0) {
		if (res.format == DEC_AUTO || !isfinite(res.temperature_c) ||
		    res.temperature_c < rule.min_c - 1e-6 || res.temperature_c > rule.max_c + 1e-6)
			abort();
		if (res.has_humidity && !(res.humidity_pct >= 0 && res.humidity_pct <= 100))
			abort();
		if (res.has_raw != (res.format == DEC_ADC))
			abort();
		struct reading r = { .device = "dev0001", .gateway = "gw-1", .event = "status",
				     .seq = 42, .ts = ts, .value = res };
		check_json(reading_to_json(&r));
		snprintf(why, sizeof(why), "accepted");
	} else {
		if (memchr(why, '\0', sizeof(why)) == NULL || why[0] == '\0')
			abort(); /* a failure always has a reason */
	}
	check_json(deadletter_to_json("dev0001", "gw-1", ts, (const char *)payload, len, why,
				      payload, len));

	/* The payload as a topic and as a topic template exercise the rest. */
	char out[128];
	(void)dec_watson_event((const char *)payload, len, out, sizeof(out));
	char *tmpl = malloc(len + 1);
	if (tmpl) {
		memcpy(tmpl, payload, len);
		tmpl[len] = '\0';
		char tw[128];
		int ok = reading_topic_check(tmpl, tw, sizeof(tw)) == 0;
		int n = reading_topic(tmpl, "dev0001", "gw-1", NULL, out, sizeof(out));
		/* A checked template never contains a wildcard after expansion. */
		if (ok && n >= 0 && (memchr(out, '+', (size_t)n) || memchr(out, '#', (size_t)n)))
			abort();
		free(tmpl);
	}
	return 0;
}
