/* cmdtopic: the downlink's topic templates; see the header. Pure. */
#include "iotgw/cmdtopic.h"

#include <stdio.h>
#include <string.h>

static const char *const names[] = {"{device}", "{command}", "{gateway}", "{topic}"};
enum { P_DEVICE, P_COMMAND, P_GATEWAY, P_TOPIC, P_NONE };

/* Which placeholder a level is, P_NONE for none. */
static int placeholder(const char *lv, size_t n)
{
	for (int i = 0; i < P_NONE; i++)
		if (strlen(names[i]) == n && memcmp(lv, names[i], n) == 0)
			return i;
	return P_NONE;
}

static int fail(char *why, size_t whylen, const char *msg)
{
	snprintf(why, whylen, "%s", msg);
	return -1;
}

int cmdtopic_check(enum cmdtopic_kind kind, const char *tmpl, char *why, size_t whylen)
{
	size_t len = strlen(tmpl);
	if (len == 0 || len >= CMDTOPIC_MAX)
		return fail(why, whylen, "a topic of 1 to 1023 bytes is needed");
	int seen[P_NONE] = {0};
	for (const char *lv = tmpl;;) {
		const char *end = strchr(lv, '/');
		size_t n = end ? (size_t)(end - lv) : strlen(lv);
		int ph = placeholder(lv, n);
		if (ph != P_NONE) {
			seen[ph]++;
		} else if (memchr(lv, '{', n) || memchr(lv, '}', n)) {
			return fail(why, whylen,
				    "a placeholder ({device}, {command}, {gateway}) must be a "
				    "whole level");
		} else if (memchr(lv, '#', n)) {
			return fail(why, whylen, "'#' is not allowed here");
		} else if (memchr(lv, '+', n) && (kind != CMDTOPIC_UPSTREAM || n != 1)) {
			return fail(why, whylen,
				    kind == CMDTOPIC_UPSTREAM ? "'+' must be a whole level"
							      : "'+' is not allowed here");
		}
		if (!end)
			break;
		lv = end + 1;
	}
	if (seen[P_TOPIC] && kind != CMDTOPIC_STATUS)
		return fail(why, whylen, "{topic} is only for status_topic");
	switch (kind) {
	case CMDTOPIC_UPSTREAM:
		if (seen[P_DEVICE] != 1 || seen[P_COMMAND] != 1)
			return fail(why, whylen, "{device} and {command} must each be a level, once");
		break;
	case CMDTOPIC_DEVICE:
		if (seen[P_COMMAND] != 1 || seen[P_DEVICE] > 1)
			return fail(why, whylen,
				    "{command} must be a level, once ({device} at most once)");
		break;
	case CMDTOPIC_STATUS:
		break;
	}
	return 0;
}

int cmdtopic_render(const char *tmpl, const struct cmdtopic_vars *v, char *out, size_t cap)
{
	const char *vals[P_NONE] = {v->device, v->command, v->gateway, v->topic};
	size_t o = 0;
	for (const char *lv = tmpl;;) {
		const char *end = strchr(lv, '/');
		size_t n = end ? (size_t)(end - lv) : strlen(lv);
		int ph = placeholder(lv, n);
		const char *src = lv;
		if (ph != P_NONE) {
			if (vals[ph]) {
				src = vals[ph];
				n = strlen(src);
			} else if (ph == P_DEVICE || ph == P_COMMAND) {
				src = "+"; /* the subscription */
				n = 1;
			} else {
				return -1;
			}
		}
		if (o + n + 1 > cap) /* room for the NUL or the next slash */
			return -1;
		memcpy(out + o, src, n);
		o += n;
		if (!end)
			break;
		out[o++] = '/';
		lv = end + 1;
	}
	out[o] = '\0';
	return (int)o;
}

static int copy_level(const char *p, size_t n, char *out, size_t cap)
{
	if (n == 0 || n >= cap)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int cmdtopic_parse(const char *tmpl, const char *gateway, const char *topic, size_t len,
		   char *device, size_t device_cap, char *command, size_t command_cap)
{
	const char *t = topic, *tend = topic + len;
	for (const char *lv = tmpl;;) {
		const char *end = strchr(lv, '/');
		size_t n = end ? (size_t)(end - lv) : strlen(lv);
		const char *slash = memchr(t, '/', (size_t)(tend - t));
		size_t tn = slash ? (size_t)(slash - t) : (size_t)(tend - t);
		int ph = placeholder(lv, n);
		if (ph == P_DEVICE) {
			if (copy_level(t, tn, device, device_cap) != 0)
				return -1;
		} else if (ph == P_COMMAND) {
			if (copy_level(t, tn, command, command_cap) != 0)
				return -1;
		} else if (ph == P_GATEWAY) {
			if (tn != strlen(gateway) || memcmp(t, gateway, tn) != 0)
				return -1;
		} else if (!(n == 1 && lv[0] == '+') && (tn != n || memcmp(t, lv, n) != 0)) {
			return -1;
		}
		if (!end)
			return slash ? -1 : 0; /* the topic must end with the template */
		if (!slash)
			return -1;
		lv = end + 1;
		t = slash + 1;
	}
}
