/* decoder: payload bytes -> a temperature (and maybe humidity) reading.
 *
 * Pure functions: no I/O, no logging, no global state. A failure returns a
 * precise, human-readable reason that the caller logs and puts in the
 * dead-letter record.
 *
 * Ownership: results and reasons go into the caller's struct and buffer;
 * rules belong to the config (or are static: dec_default_rules), and
 * dec_rule_for returns one of those it was given; names are static. */
#ifndef IOTGW_DECODER_H
#define IOTGW_DECODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dec_format {
	DEC_AUTO = 0, /* watson if {"d":{..}}, flat JSON if an object, else number */
	DEC_WATSON,   /* {"d":{"temp":21.5,"humidity":40}} (IBM Watson IoT envelope) */
	DEC_JSON,     /* {"temp":21.5,"humidity":40,"unit":"C"} */
	DEC_NUMBER,   /* "21.5", "21.5 C", "70.7F", "21.5°C" */
	DEC_ADC,      /* raw ADC count: celsius = raw * scale + offset */
};

/* One [decode NAME] section of the configuration; owned by the config. */
struct dec_rule {
	char *name;
	int line;           /* config line of the section header, 0 for built-ins */
	char *topic_filter; /* MQTT filter with + and #, matched on the device's topic */
	char **devices;     /* NULL/0: any device; else only these device ids */
	size_t ndevices;
	enum dec_format format;
	double scale, offset; /* DEC_ADC calibration */
	double min_c, max_c;  /* accepted range in Celsius, inclusive */
	char default_unit;    /* 'C' or 'F' for numbers/JSON without a unit */
};

struct dec_result {
	enum dec_format format; /* resolved: never DEC_AUTO */
	double temperature_c;
	bool has_humidity;
	double humidity_pct;
	bool has_raw; /* DEC_ADC: the raw count the temperature came from */
	double raw;
	/* Set on failure when the payload decoded but its value is outside
	 * the rule's range (a sensor fault, not a firmware bug): the two are
	 * counted apart (iotgw_readings_rejected_total). */
	bool implausible;
};

/* Decodes payload with rule. Returns 0 and fills out, or -1 and writes a
 * reason into why (and out->implausible for a value out of range) (e.g. "temperature 130.2 C outside -40..125 C",
 * "JSON: no \"temp\" or \"temperature\" key", "not a number: \"abc\"").
 * Rejects NaN, infinities, overflow, empty and non-UTF-8 text, humidity
 * outside 0..100. Fahrenheit is converted to Celsius before the range check. */
int dec_payload(const struct dec_rule *rule, const uint8_t *payload, size_t len,
		struct dec_result *out, char *why, size_t whylen);

/* The first rule (in order) whose filter matches topic and whose device list
 * is empty or contains device; NULL if none. */
const struct dec_rule *dec_rule_for(const struct dec_rule *rules, size_t nrules,
				    const char *topic, size_t topic_len, const char *device);

/* Built-in rules used when the configuration has no [decode] section:
 * "iot-2/evt/+/fmt/json" -> watson, then "#" -> auto; range -40..125 C. */
const struct dec_rule *dec_default_rules(size_t *nrules);

const char *dec_format_name(enum dec_format f); /* "watson", "json", ... */
/* Parses "auto", "watson", "json", "number", "adc"; -1 if unknown. */
int dec_format_parse(const char *s, enum dec_format *out);

/* Watson IoT event name from "iot-2/evt/<event>/fmt/<fmt>", copied into out
 * (NUL-terminated); returns 0, or -1 if topic is not of that form. */
int dec_watson_event(const char *topic, size_t topic_len, char *out, size_t cap);

#endif
