/* log_level: see include/iotgw/log_level.h. */
#include "iotgw/log_level.h"

#include <stddef.h>
#include <syslog.h>

const char *const log_level_names[] = {"err", "error", "warning", "notice", "info", "debug",
				       NULL};
const int log_level_values[] = {LOG_ERR, LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

const char *log_level_name(int prio)
{
	if (prio >= LOG_EMERG && prio <= LOG_CRIT)
		return "crit"; /* emerg, alert, crit: not levels one can choose */
	for (size_t i = 0; log_level_names[i]; i++)
		if (log_level_values[i] == prio)
			return log_level_names[i];
	return "debug";
}
