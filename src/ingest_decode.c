/* ingest_decode: the worker's half of ingest (ingest.h). A device PUBLISH
 * becomes an entry of the worker's batch: the [decode] rule that matches
 * its topic, the value its payload holds, the Watson event name, the
 * time it was read; or, when no rule decodes it, a dead letter carrying
 * the topic, the reason and the payload, logged here with the session's
 * fields. Reads only the configuration in service, so any worker may run
 * it; the owner numbers and stores the entry (ingest.c). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ingest.h"
#include "iotgw/decoder.h"
#include "iotgw/log.h"
#include "iotgw/reading.h"

static const struct dec_rule *rules_of(const struct iotgw_config *cfg, size_t *n)
{
	if (cfg->nrules) {
		*n = cfg->nrules;
		return cfg->rules;
	}
	return dec_default_rules(n);
}

int ingest_decode(const struct iotgw_config *cfg, const char *device, const struct log_fields *f,
		  uint64_t token, uint64_t ack_pos, const struct mqtt_publish *pub, struct rbatch *b)
{
	size_t nrules;
	const struct dec_rule *rules = rules_of(cfg, &nrules);
	const struct dec_rule *rule =
		dec_rule_for(rules, nrules, pub->topic.ptr, pub->topic.len, device);
	char event[64];
	bool has_event =
		dec_watson_event(pub->topic.ptr, pub->topic.len, event, sizeof event) == 0;
	struct rb_entry e = {.token = token, .ack_pos = ack_pos};
	clock_gettime(CLOCK_REALTIME, &e.ts);
	char why[256] = "no [decode] rule matches this topic";
	e.ok = rule && dec_payload(rule, pub->payload, pub->payload_len, &e.value, why,
				   sizeof why) == 0;
	if (e.ok)
		return rbatch_add(b, &e, device, has_event ? event : NULL, NULL, 0, NULL, NULL, 0);
	e.reject = !rule		? REJECT_NO_RULE
		   : e.value.implausible ? REJECT_IMPLAUSIBLE
					 : REJECT_MALFORMED;
	if (rbatch_add(b, &e, device, has_event ? event : NULL, pub->topic.ptr, pub->topic.len,
		       why, pub->payload, pub->payload_len) != 0)
		return -1;
	char topic[512];
	if (reading_topic(cfg->upstream.dead_letter_topic, device, cfg->gateway.name,
			  has_event ? event : NULL, topic, sizeof topic) < 0)
		snprintf(topic, sizeof topic, "%s", cfg->upstream.dead_letter_topic);
	log_event(LOG_WARNING, EV_PAYLOAD_REJECTED, f,
		  "payload on %.*s rejected: %s; sent to dead-letter topic %s", (int)pub->topic.len,
		  pub->topic.ptr, why, topic);
	return 0;
}
