/* log: one place where iotgw writes log lines.
 *
 * Under systemd (JOURNAL_STREAM names our stderr) each line is a native
 * journald entry with structured fields: MESSAGE, PRIORITY, IOTGW_EVENT and,
 * where known, IOTGW_DEVICE, IOTGW_PEER (address:port), IOTGW_PEER_ADDRESS
 * (the address alone), IOTGW_LISTENER, IOTGW_TLS_VERSION, and CODE_FILE,
 * CODE_LINE, CODE_FUNC of the call that logged, so operators can run
 * `journalctl -u iotgw IOTGW_EVENT=tls_handshake_failed`. Otherwise a
 * human-readable line goes to stderr:
 *   2026-12-03T14:12:01.123Z iotgw[PID]: warning event=tls_handshake_failed peer=127.0.0.1:40112 listener=mtls: message
 * and when that stderr is itself a journal stream (--log-stderr under
 * systemd) the timestamp gives way to an sd-daemon(3) "<N>" priority
 * prefix, so journald still files the line at its priority.
 * Priorities are syslog's (LOG_ERR .. LOG_DEBUG); the level is checked before
 * anything is formatted. Nothing is returned to own: log_event copies what
 * it is given before it returns, and names are static. */
#ifndef IOTGW_LOG_H
#define IOTGW_LOG_H

#include <stdbool.h>
#include <syslog.h>

#include "iotgw/events.h"
#include "iotgw/log_level.h" /* log_level_name */

/* Context of a log line; any field may be NULL. */
struct log_fields {
	const char *device;
	const char *peer; /* "address:port" */
	const char *listener;
	const char *tls_version;
};

enum log_target { LOG_TARGET_AUTO, LOG_TARGET_STDERR, LOG_TARGET_JOURNAL };

void log_init(enum log_target target, int level);
/* Sets the level from the configuration, unless log_force_level was called. */
void log_set_level(int level);
void log_force_level(int level);
bool log_enabled(int prio);
/* Is stderr a journal stream (JOURNAL_STREAM, sd-daemon(3))? Then plain
 * lines written there need a "<N>" priority prefix. */
bool log_stderr_is_journal(void);

/* event: EV_DEVICE_CONNECTED etc. (iotgw/events.h), logged as its stable name.
 * The caller's file, line and function go into the journal's CODE_* fields. */
/* Lines of one event beyond 1000 in 10 s (not debug, not critical) are
 * counted instead of written, and one event=log_suppressed line says how
 * many: when the event comes again after the interval, or at
 * log_flush_suppressed (call it every second or so; all = true at exit
 * writes every count now). */
#define log_event(...) log_event_at(__FILE__, __LINE__, __func__, __VA_ARGS__)
void log_flush_suppressed(bool all);
void log_event_at(const char *file, int line, const char *func, int prio, enum iotgw_event event,
		  const struct log_fields *f, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

#endif
