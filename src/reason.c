/* reason: see include/iotgw/reason.h. */
#include "iotgw/reason.h"

#include <stdarg.h>
#include <stdio.h>

int reason_fail(char *why, size_t whylen, const char *fmt, ...)
{
	if (why && whylen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -1;
}
