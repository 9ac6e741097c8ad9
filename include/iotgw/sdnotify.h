/* sdnotify: the one place that talks to systemd's notification socket
 * (sd_notify(3)); every call is a no-op when NOTIFY_SOCKET is unset. The
 * status texts are copied into the message; nothing is kept. */
#ifndef IOTGW_SDNOTIFY_H
#define IOTGW_SDNOTIFY_H

#include <stdint.h>

void sdn_ready(const char *status);
void sdn_reloading(void);
void sdn_stopping(void);
void sdn_status(const char *status);
void sdn_watchdog(void);
/* Start-up is taking long (a large spool to open and read): systemd gets
 * usec more from now (EXTEND_TIMEOUT_USEC) and a STATUS= saying why. */
void sdn_extend_timeout(uint64_t usec, const char *status);
/* Watchdog interval in ms when WatchdogSec= is set for us, else 0. */
uint64_t sdn_watchdog_interval_ms(void);

#endif
