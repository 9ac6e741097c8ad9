/* log_level: the names of the log levels, one list for the log_level key
 * of iotgw.conf(5) (config) and for the level shown in each log line (log).
 *
 * Levels are syslog priorities, LOG_ERR (3) .. LOG_DEBUG (7). Pure, so that
 * the config parser can use it in the unit tests and fuzz targets. Every
 * name returned is a static string. Short form of the module: log_level_. */
#ifndef IOTGW_LOG_LEVEL_H
#define IOTGW_LOG_LEVEL_H

/* The names the log_level key accepts, NULL-terminated ("err", "error",
 * "warning", "notice", "info", "debug"), and the priority of each. */
extern const char *const log_level_names[];
extern const int log_level_values[];

/* The name of prio in log lines: the first of log_level_names with that
 * priority; "crit" for the three above LOG_ERR, "debug" for anything else. */
const char *log_level_name(int prio);

#endif
