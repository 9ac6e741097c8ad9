/* spool_stats: `iotgw --spool-stats`, the spool as an operator sees it. */
#ifndef IOTGW_SPOOL_STATS_H
#define IOTGW_SPOOL_STATS_H

#include <stdio.h>

/* Prints `key: value` lines for the spool in dir to out (see iotgw(8)).
 * Returns 0, or 1 after an "iotgw: ..." message on err. */
int spool_stats_print(const char *dir, FILE *out, FILE *err);

/* The pid of the gateway holding dir's lock: 0 if none, -1 if unknown. */
long spool_running_pid(const char *dir);

#endif
