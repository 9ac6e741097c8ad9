#include "iotgw/sdnotify.h"

#include <stdio.h>
#include <time.h>

#include <systemd/sd-daemon.h>

void sdn_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void sdn_reloading(void)
{
	/* MONOTONIC_USEC lets systemd (Type=notify-reload) match this reload
	 * to the SIGHUP it sent. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	unsigned long long usec =
		(unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading configuration", usec);
}

void sdn_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

void sdn_status(const char *status)
{
	sd_notifyf(0, "STATUS=%s", status);
}

void sdn_extend_timeout(uint64_t usec, const char *status)
{
	sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu\nSTATUS=%s", (unsigned long long)usec, status);
}

void sdn_watchdog(void)
{
	sd_notify(0, "WATCHDOG=1");
}

uint64_t sdn_watchdog_interval_ms(void)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec / 2000u; /* ping at half the interval, as sd_watchdog_enabled(3) advises */
}
