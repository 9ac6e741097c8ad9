/* log: journald-native structured entries under systemd, readable lines on
 * stderr otherwise. The only module that writes log output. */
#include "iotgw/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "iotgw/text.h"

/* A flood (resets, malformed packets, refused subscriptions from a bot)
 * must not fill the disk or bury everything else: per event at most
 * RATE_BURST lines per RATE_INTERVAL_MS, then one log_suppressed line with
 * the count. Debug lines (asked for) and critical ones are never dropped. */
#define RATE_INTERVAL_MS 10000
#define RATE_BURST 1000

struct rate {
	uint64_t start_ms;
	unsigned lines;
	unsigned long long suppressed;
	int prio; /* of the lines suppressed, for the summary */
};
static struct rate rates[EV__COUNT];
/* Every worker logs: the budgets are shared, under this lock (a line is
 * never per reading, except at debug, which has no budget). */
static pthread_mutex_t rates_mu = PTHREAD_MUTEX_INITIALIZER;

static int log_level = LOG_INFO;
static bool level_forced; /* -d on the command line outlives config reloads */
static bool use_journal;
/* Plain lines into a journal stream (--log-stderr under systemd): "<N>"
 * prefixes instead of timestamps, which journald adds itself. */
static bool stderr_journal;

/* sd-daemon(3): JOURNAL_STREAM holds "DEV:INODE" of the stream systemd
 * connected to our stderr; if it matches, we are logging to the journal and
 * can send native entries with fields instead of plain text. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	if (!js)
		return false;
	unsigned long long dev, ino;
	if (sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return false;
	struct stat st;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

bool log_stderr_is_journal(void)
{
	return stderr_is_journal();
}

void log_init(enum log_target target, int level)
{
	log_level = level;
	stderr_journal = stderr_is_journal();
	switch (target) {
	case LOG_TARGET_STDERR:
		use_journal = false;
		break;
	case LOG_TARGET_JOURNAL:
		use_journal = true;
		break;
	case LOG_TARGET_AUTO:
		use_journal = stderr_journal;
		break;
	}
}

void log_set_level(int level)
{
	if (!level_forced)
		log_level = level;
}

void log_force_level(int level)
{
	log_level = level;
	level_forced = true;
}

bool log_enabled(int prio)
{
	return prio <= log_level;
}

/* Appends one "NAME=value" journal field; values come from the network
 * (device ids, peers) but journald fields are length-delimited, so no escaping
 * is needed beyond what asprintf gives us. */
static void add_field(struct iovec *iov, int *n, char **owned, const char *name,
		      const char *value)
{
	if (!value)
		return;
	char *s = NULL;
	int len = asprintf(&s, "%s=%s", name, value);
	if (len < 0)
		return;
	owned[*n] = s;
	iov[*n].iov_base = s;
	iov[*n].iov_len = (size_t)len;
	(*n)++;
}

/* "192.0.2.7" of "192.0.2.7:40112", "::1" of "[::1]:40112": the field to
 * match every connection from one host, whatever its ephemeral port. */
static void emit(const char *file, int line, const char *func, int prio, enum iotgw_event event,
		 const struct log_fields *f, const char *msg)
{
	if (use_journal) {
		struct iovec iov[10];
		char *owned[10];
		int n = 0;
		char prio_s[4], addr[64];
		snprintf(prio_s, sizeof prio_s, "%d", prio);
		/* `journalctl -u iotgw` shows MESSAGE alone: say whose it is
		 * ("dev0001: device sent DISCONNECT"), as the fields would. */
		const char *who = f ? (f->device ? f->device : f->peer) : NULL;
		char *full = NULL;
		if (who && asprintf(&full, "%s: %s", who, msg) < 0)
			full = NULL;
		add_field(iov, &n, owned, "MESSAGE", full ? full : msg);
		free(full);
		add_field(iov, &n, owned, "PRIORITY", prio_s);
		add_field(iov, &n, owned, "IOTGW_EVENT", event_name(event));
		if (f) {
			add_field(iov, &n, owned, "IOTGW_DEVICE", f->device);
			add_field(iov, &n, owned, "IOTGW_PEER", f->peer);
			add_field(iov, &n, owned, "IOTGW_PEER_ADDRESS",
				  text_peer_address(f->peer, addr, sizeof addr));
			add_field(iov, &n, owned, "IOTGW_LISTENER", f->listener);
			add_field(iov, &n, owned, "IOTGW_TLS_VERSION", f->tls_version);
		}
		add_field(iov, &n, owned, "SYSLOG_IDENTIFIER", "iotgw");
		char code_file[256], code_line[32];
		snprintf(code_file, sizeof code_file, "CODE_FILE=%s", file);
		snprintf(code_line, sizeof code_line, "CODE_LINE=%d", line);
		sd_journal_sendv_with_location(code_file, code_line, func, iov, n);
		for (int i = 0; i < n; i++)
			free(owned[i]);
		return;
	}
	char ctx[512];
	size_t off = 0;
	ctx[0] = '\0';
	if (f) {
		const struct {
			const char *k, *v;
		} kv[] = {{"device", f->device},
			  {"peer", f->peer},
			  {"listener", f->listener},
			  {"tls", f->tls_version}};
		for (size_t i = 0; i < 4; i++) {
			if (!kv[i].v || off >= sizeof ctx)
				continue;
			int w = snprintf(ctx + off, sizeof ctx - off, " %s=%s", kv[i].k, kv[i].v);
			if (w > 0)
				off += (size_t)w;
		}
	}
	char stamp[40];
	if (stderr_journal) {
		snprintf(stamp, sizeof stamp, "<%d>", prio);
	} else {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		struct tm tm;
		gmtime_r(&now.tv_sec, &tm);
		size_t w = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(stamp + w, sizeof stamp - w, ".%03ldZ ", now.tv_nsec / 1000000);
	}
	/* One fprintf per line: stdio locks the stream, so lines from the
	 * upstream connect thread never interleave with the loop's. */
	fprintf(stderr, "%siotgw[%ld]: %s event=%s%s: %s\n", stamp, (long)getpid(),
		log_level_name(prio), event_name(event), ctx, msg);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Says how many lines of e were suppressed, once its interval is over (or
 * now, with force). */
static void summarize(enum iotgw_event e, uint64_t now, bool force)
{
	struct rate *r = &rates[e];
	if (!r->suppressed || (!force && now - r->start_ms < RATE_INTERVAL_MS))
		return;
	char msg[160];
	snprintf(msg, sizeof msg, "%llu more event=%s line(s) suppressed in %llu s (flood)",
		 r->suppressed, event_name(e), (unsigned long long)(now - r->start_ms + 999) / 1000);
	r->suppressed = 0;
	emit(__FILE__, __LINE__, __func__, r->prio, EV_LOG_SUPPRESSED, NULL, msg);
}

/* false: the line is over its event's budget (counted, not logged). */
static bool within_rate(int prio, enum iotgw_event event)
{
	if (prio >= LOG_DEBUG || prio <= LOG_CRIT || event <= EV_NONE || event >= EV__COUNT)
		return true;
	pthread_mutex_lock(&rates_mu);
	struct rate *r = &rates[event];
	uint64_t now = mono_ms();
	if (now - r->start_ms >= RATE_INTERVAL_MS) {
		summarize(event, now, false);
		r->start_ms = now;
		r->lines = 0;
	}
	bool ok = r->lines < RATE_BURST;
	if (ok) {
		r->lines++;
	} else {
		r->suppressed++;
		r->prio = prio;
	}
	pthread_mutex_unlock(&rates_mu);
	return ok;
}

void log_flush_suppressed(bool all)
{
	uint64_t now = mono_ms();
	pthread_mutex_lock(&rates_mu);
	for (int e = EV_NONE + 1; e < EV__COUNT; e++)
		summarize((enum iotgw_event)e, now, all);
	pthread_mutex_unlock(&rates_mu);
}

void log_event_at(const char *file, int line, const char *func, int prio, enum iotgw_event event,
		  const struct log_fields *f, const char *fmt, ...)
{
	if (!log_enabled(prio) || !within_rate(prio, event))
		return;
	int saved = errno;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* Messages quote client ids and topics; a device must not be able to
	 * forge log lines with embedded newlines or terminal escapes. */
	size_t n = strlen(msg);
	char shown[TEXT_QUOTE_CAP(sizeof msg)];
	text_quote(shown, sizeof shown, msg, n, n, TEXT_KEEP_UTF8 | TEXT_UNQUOTED);
	emit(file, line, func, prio, event, f, shown);
	errno = saved;
}
