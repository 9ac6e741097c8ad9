/* gateway_config: what the two files of the gateway's own work share:
 * gateway.c (the process: signals, timers, stop, gateway_new/run/free) and
 * gateway_config.c (preparing, checking and applying a configuration, at
 * start and at reload). Not part of any interface: nothing outside these
 * two files includes it. */
#ifndef IOTGW_GATEWAY_CONFIG_H
#define IOTGW_GATEWAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "gateway_int.h"

struct watch;

/* What gateway_new allocates: the gateway (first, so that the public
 * struct gateway * converts back) and what only the process needs. */
struct gw_runtime {
	struct gateway gw;
	int sigfd;
	struct ev_io sig_io;
	struct ev_timer status_timer;
	struct ev_timer watchdog_timer;
	struct ev_timer drain_timer;
	struct ev_timer expiry_timer; /* daily look at our certificates' and CRLs' expiry */
	struct ev_timer stats_timer;  /* [upstream] stats_topic */
	struct ev_timer forget_timer; /* [spool] forget_devices_after */
	struct ev_timer tls_sessions_timer; /* keep_tls_sessions */
	uint64_t watchdog_ms;
	struct watch *watch; /* watch_tls_files = yes */
};

/* A configuration with its TLS contexts built, ready to be applied. */
struct prepared {
	struct iotgw_config cfg;
	struct listener_parts *parts; /* one per listener */
	size_t nparts;
	SSL_CTX *up_ctx;              /* upstream client context; NULL for tls = off */
};

/* Parses path and builds what it needs (TLS contexts, ACLs, password
 * files), reporting every problem and what expires soon through diag.
 * Returns the number of errors; p is freed with gateway_prepared_free in
 * any case, or consumed by gateway_apply. */
int gateway_prepare(const char *path, struct prepared *p, cfg_diag_fn diag, void *dctx);
void gateway_prepared_free(struct prepared *p);
/* 0 with p consumed, or -1 with nothing changed (the reason is logged). */
int gateway_apply(struct gateway *gw, struct prepared *p);
/* A diag for gateway_prepare that logs (config_error, config_warning). */
void gateway_diag_to_log(void *ctx, enum cfg_severity sev, const char *file, int line,
			 const char *msg);
/* SIGHUP (or watched files changed): prepare and apply the file again, or
 * keep the running configuration; tells systemd RELOADING=1, then READY=1. */
void gateway_reload(struct gw_runtime *rt);
/* watch_tls_files: watches the files of the configuration in force. */
void gateway_update_watch(struct gw_runtime *rt);
/* [upstream] stats_topic: (re)starts or stops the stats timer. */
void gateway_restart_stats(struct gw_runtime *rt);

#endif
