/* status: the snapshot's formats, its parser and readiness (status.h). */
#include "iotgw/status.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* One table for both directions, so the file and its reader never drift. */
enum kv_type { KV_I64, KV_U64, KV_UINT, KV_LONG, KV_BOOL, KV_STR };

struct kv {
	const char *key;
	enum kv_type type;
	size_t off, size;
};

#define KV(k, t, f) {k, t, offsetof(struct status_snapshot, f), sizeof(((struct status_snapshot *)0)->f)}

static const struct kv kvs[] = {
	KV("pid", KV_LONG, pid),
	KV("version", KV_STR, version),
	KV("start_unix", KV_I64, start_unix),
	KV("listeners", KV_UINT, listeners),
	KV("addresses", KV_UINT, addresses),
	KV("listeners_unbound", KV_UINT, listeners_unbound),
	KV("connections", KV_U64, connections),
	KV("upstream", KV_STR, upstream),
	KV("upstream_since_unix", KV_I64, upstream_since_unix),
	KV("upstream_why", KV_STR, upstream_why),
	KV("inflight", KV_U64, inflight),
	KV("queued", KV_U64, queued),
	KV("bytes", KV_U64, bytes),
	KV("max_messages", KV_U64, max_messages),
	KV("max_bytes", KV_U64, max_bytes),
	KV("oldest_age_s", KV_U64, oldest_age_s),
	KV("devices", KV_U64, devices),
	KV("top_devices", KV_STR, top_devices),
	KV("full", KV_BOOL, full),
	KV("write_failed", KV_BOOL, write_failed),
	KV("stopping", KV_BOOL, stopping),
	KV("readings_total", KV_U64, readings),
	KV("rejected_total", KV_U64, rejected),
	KV("forwarded_total", KV_U64, forwarded),
	KV("commits_total", KV_U64, commits),
	KV("fsyncs_total", KV_U64, fsyncs),
	KV("updated_unix", KV_I64, now_unix),
};

#define NKV (sizeof kvs / sizeof kvs[0])

int status_write_kv(const struct status_snapshot *s, FILE *f)
{
	for (size_t i = 0; i < NKV; i++) {
		const char *p = (const char *)s + kvs[i].off;
		int64_t i64;
		uint64_t u64;
		unsigned u;
		long l;
		bool b;
		switch (kvs[i].type) {
		case KV_I64:
			memcpy(&i64, p, sizeof i64);
			fprintf(f, "%s: %" PRId64 "\n", kvs[i].key, i64);
			break;
		case KV_U64:
			memcpy(&u64, p, sizeof u64);
			fprintf(f, "%s: %" PRIu64 "\n", kvs[i].key, u64);
			break;
		case KV_UINT:
			memcpy(&u, p, sizeof u);
			fprintf(f, "%s: %u\n", kvs[i].key, u);
			break;
		case KV_LONG:
			memcpy(&l, p, sizeof l);
			fprintf(f, "%s: %ld\n", kvs[i].key, l);
			break;
		case KV_BOOL:
			memcpy(&b, p, sizeof b);
			fprintf(f, "%s: %s\n", kvs[i].key, b ? "yes" : "no");
			break;
		case KV_STR:
			/* Values are one line: the writer's strings never hold a
			 * newline (a reason is cut there). */
			fprintf(f, "%s: %.*s\n", kvs[i].key, (int)strcspn(p, "\n"), p);
			break;
		}
	}
	return ferror(f) ? -1 : 0;
}

static void parse_value(const struct kv *k, const char *v, size_t n, struct status_snapshot *s)
{
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%.*s", (int)n, v);
	char *p = (char *)s + k->off;
	int64_t i64;
	uint64_t u64;
	unsigned u;
	long l;
	bool b;
	switch (k->type) {
	case KV_I64:
		i64 = strtoll(tmp, NULL, 10);
		memcpy(p, &i64, sizeof i64);
		break;
	case KV_U64:
		u64 = strtoull(tmp, NULL, 10);
		memcpy(p, &u64, sizeof u64);
		break;
	case KV_UINT:
		u = (unsigned)strtoul(tmp, NULL, 10);
		memcpy(p, &u, sizeof u);
		break;
	case KV_LONG:
		l = strtol(tmp, NULL, 10);
		memcpy(p, &l, sizeof l);
		break;
	case KV_BOOL:
		b = strcmp(tmp, "yes") == 0;
		memcpy(p, &b, sizeof b);
		break;
	case KV_STR:
		snprintf(p, k->size, "%s", tmp);
		break;
	}
}

int status_parse_kv(const char *text, struct status_snapshot *s)
{
	memset(s, 0, sizeof *s);
	for (const char *line = text; *line;) {
		size_t len = strcspn(line, "\n");
		const char *colon = memchr(line, ':', len);
		if (colon) {
			size_t klen = (size_t)(colon - line);
			const char *v = colon + 1 + (colon + 1 < line + len && colon[1] == ' ');
			for (size_t i = 0; i < NKV; i++)
				if (strlen(kvs[i].key) == klen && memcmp(kvs[i].key, line, klen) == 0)
					parse_value(&kvs[i], v, (size_t)(line + len - v), s);
		}
		line += len + (line[len] == '\n');
	}
	return s->pid > 0 ? 0 : -1;
}

bool status_ready(const struct status_snapshot *s, char *why, size_t cap)
{
	if (s->stopping)
		snprintf(why, cap, "stopping");
	else if (s->listeners_unbound)
		snprintf(why, cap, "%u listener(s) not bound", s->listeners_unbound);
	else if (s->write_failed)
		snprintf(why, cap, "the spool cannot write (see the log: event spool_write_failed)");
	else
		return true;
	return false;
}

/* "3h 2m", "42 s": how long, for a human. */
static void span(int64_t secs, char *out, size_t cap)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(out, cap, "%" PRId64 " s", secs);
	else if (secs < 7200)
		snprintf(out, cap, "%" PRId64 "m %" PRId64 "s", secs / 60, secs % 60);
	else if (secs < 172800)
		snprintf(out, cap, "%" PRId64 "h %" PRId64 "m", secs / 3600, secs / 60 % 60);
	else
		snprintf(out, cap, "%" PRId64 "d %" PRId64 "h", secs / 86400, secs / 3600 % 24);
}

int status_report(const struct status_snapshot *s, struct buf *out)
{
	char up[32], since[32], why[128];
	span(s->now_unix - s->start_unix, up, sizeof up);
	bool ready = status_ready(s, why, sizeof why);
	int rc = 0;
	rc |= buf_appendf(out, "iotgw %s, pid %ld, up %s: %s%s%s\n", s->version, s->pid, up,
		      ready ? "ready" : "NOT READY", ready ? "" : ": ", ready ? "" : why);
	rc |= buf_appendf(out, "listeners: %u (%u address%s), %" PRIu64 " connection%s\n",
		      s->listeners, s->addresses, s->addresses == 1 ? "" : "es", s->connections,
		      s->connections == 1 ? "" : "s");
	span(s->now_unix - s->upstream_since_unix, since, sizeof since);
	if (strcmp(s->upstream, "connected") == 0)
		rc |= buf_appendf(out, "upstream: connected for %s, %" PRIu64 " in flight\n", since,
			      s->inflight);
	else
		rc |= buf_appendf(out, "upstream: %s for %s%s%s\n", s->upstream, since,
			      s->upstream_why[0] ? ": " : "", s->upstream_why);
	rc |= buf_appendf(out,
		      "spool: %" PRIu64 " queued (%" PRIu64 " KiB of %" PRIu64 " KiB, %" PRIu64
		      " of %" PRIu64 " messages), oldest %" PRIu64 " s%s\n",
		      s->queued, s->bytes / 1024, s->max_bytes / 1024, s->queued, s->max_messages,
		      s->oldest_age_s,
		      s->write_failed ? "; WRITES FAILING, devices held back"
		      : s->full	      ? "; FULL, devices held back"
				      : "");
	rc |= buf_appendf(out,
		      "readings: %" PRIu64 " accepted, %" PRIu64 " rejected, %" PRIu64
		      " forwarded\n",
		      s->readings, s->rejected, s->forwarded);
	return rc;
}

void status_line(const struct status_snapshot *s, char *out, size_t cap)
{
	int n = snprintf(out, cap,
			 "%" PRIu64 " connections; upstream %s; spool %" PRIu64
			 " queued (oldest %" PRIu64 "s)%s; %" PRIu64 " readings, %" PRIu64
			 " rejected; %" PRIu64 " commits, %" PRIu64 " fsyncs",
			 s->connections, s->upstream, s->queued, s->oldest_age_s,
			 s->full ? " FULL" : "", s->readings, s->rejected, s->commits, s->fsyncs);
	if (n < 0 || (size_t)n >= cap || strcmp(s->upstream, "connected") == 0)
		return;
	char since[32];
	span(s->now_unix - s->upstream_since_unix, since, sizeof since);
	snprintf(out + n, cap - (size_t)n, "; upstream %s for %s%s%.160s", s->upstream, since,
		 s->upstream_why[0] ? ": " : "", s->upstream_why);
}
