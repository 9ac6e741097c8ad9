/* cmdtopic: the downlink's topic templates ([downlink] topic, device_topic,
 * status_topic). Pure: no I/O, no allocation.
 *
 * A template is a topic whose levels may be exactly one of the placeholders
 * {device}, {command}, {gateway} (and, in status_topic, {topic}: the whole
 * topic the command came on). The upstream template is also what the
 * gateway subscribes to: {device} and {command} become '+', and an incoming
 * topic is split back into the two by level. */
#ifndef IOTGW_CMDTOPIC_H
#define IOTGW_CMDTOPIC_H

#include <stdbool.h>
#include <stddef.h>

#define CMDTOPIC_MAX 1024 /* bytes of a rendered topic, with its NUL */
#define CMDTOPIC_NAME_MAX 64 /* bytes of a command name */

enum cmdtopic_kind {
	CMDTOPIC_UPSTREAM, /* {device} and {command} once each, '+' allowed, no '#' */
	CMDTOPIC_DEVICE,   /* {command} once, {device} at most once, no wildcards */
	CMDTOPIC_STATUS,   /* any placeholders, {topic} too, no wildcards */
};

/* 0, or -1 with a reason ("{device} must be a whole level") in why. */
int cmdtopic_check(enum cmdtopic_kind kind, const char *tmpl, char *why, size_t whylen);

/* What the placeholders stand for; NULL ones must not be in the template. */
struct cmdtopic_vars {
	const char *device, *command, *gateway, *topic;
};

/* Writes tmpl with its placeholders filled in (an upstream template's
 * {device} and {command} as '+' when vars leaves them NULL: the
 * subscription). Returns the length, or -1 when it does not fit cap or a
 * placeholder has no value. */
int cmdtopic_render(const char *tmpl, const struct cmdtopic_vars *v, char *out, size_t cap);

/* Splits topic[0..len) by the upstream template (with {gateway} = gateway):
 * on a match, copies the levels standing for {device} and {command} into
 * device and command (NUL-terminated) and returns 0. -1 when the topic
 * does not match, a level is empty or too long (cap bytes with the NUL). */
int cmdtopic_parse(const char *tmpl, const char *gateway, const char *topic, size_t len,
		   char *device, size_t device_cap, char *command, size_t command_cap);

#endif
