/* gateway: the process-wide owner. It holds the configuration, listeners,
 * device sessions, the spool and the upstream, all driven by one event loop,
 * and handles signals (SIGHUP reload, SIGTERM/SIGINT stop) and systemd
 * notifications. */
#ifndef IOTGW_GATEWAY_H
#define IOTGW_GATEWAY_H

#include "iotgw/config.h"

struct gateway;

/* Loads and fully checks a configuration file: parse, then build every TLS
 * context and check the upstream files and the spool directory (writable by
 * the calling user). as_service: the check stands in for the service
 * (`iotgw -t -u USER`, or run by systemd), so also warn about what the
 * shipped unit forbids. Returns the number of errors (each reported
 * through diag). On 0, *out holds the config (caller frees). */
int gateway_check_config(const char *path, struct iotgw_config *out, cfg_diag_fn diag,
			 void *dctx, bool as_service);

/* Exit status for an invalid configuration (sysexits' EX_CONFIG), apart
 * from 1 for other failures, so that the unit's RestartPreventExitStatus=
 * stops systemd from restarting a gateway that cannot start as configured. */
#define IOTGW_EXIT_CONFIG 78

/* Loads the configuration, binds listeners and starts connecting upstream.
 * Returns NULL after logging why, with the exit status to use in *status
 * (IOTGW_EXIT_CONFIG for configuration errors, else 1). */
struct gateway *gateway_new(const char *config_path, int *status);
/* The caller owns the gateway (gateway_free); everything it holds is its. */

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int gateway_run(struct gateway *gw);

void gateway_free(struct gateway *gw);

#endif
