/* verdict: a handler's decision and its log line (verdict.h). */
#include <stdarg.h>
#include <stdio.h>

#include "verdict.h"

void verdict_vset(struct verdict *v, struct where w, int prio, enum iotgw_event event,
		  const char *fmt, va_list ap)
{
	*v = (struct verdict){.w = w, .prio = prio, .event = event};
	vsnprintf(v->msg, sizeof v->msg, fmt, ap);
}

enum outcome decide_at(struct where w, struct verdict *v, enum outcome o, int prio,
		       enum iotgw_event event, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verdict_vset(v, w, prio, event, fmt, ap);
	va_end(ap);
	return o;
}
