/* log: one place where iotgw writes log lines.
 *
 * Under systemd (JOURNAL_STREAM names our stderr) each line is a native
 * journald entry with structured fields: MESSAGE, PRIORITY, IOTGW_EVENT and,
 * where known, IOTGW_DEVICE, IOTGW_PEER, IOTGW_LISTENER, IOTGW_TLS_VERSION,
 * so operators can run `journalctl -u iotgw IOTGW_EVENT=tls_handshake_failed`.
 * Otherwise a human-readable line goes to stderr:
 *   iotgw[PID]: warning event=tls_handshake_failed peer=127.0.0.1:40112 listener=mtls: message
 * Priorities are syslog's (LOG_ERR .. LOG_DEBUG); the level is checked before
 * anything is formatted. */
#ifndef IOTGW_LOG_H
#define IOTGW_LOG_H

#include <stdbool.h>
#include <syslog.h>

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

/* event: a stable machine-readable name such as "device_connected"; never NULL. */
void log_event(int prio, const char *event, const struct log_fields *f, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Startup/loop-level failure: logs at LOG_CRIT and exits(1). */
void log_fatal(const char *event, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

const char *log_level_name(int prio);
/* "err"/"error", "warning", "notice", "info", "debug" -> priority; -1 if unknown. */
int log_level_parse(const char *s);

#endif
