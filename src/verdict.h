/* verdict: what a packet handler decided about its connection, with the
 * log line that says why. Handlers return one; the session carries it out
 * in one place (Mosquitto's handle__packet, likewise), and the line keeps
 * the handler's CODE_FILE/CODE_LINE. The verdict owns its text. */
#ifndef IOTGW_VERDICT_H
#define IOTGW_VERDICT_H

#include <stdarg.h>

#include "iotgw/events.h"

/* DONE: go on; RETRY: keep the packet for later (spool full); CLOSE: close
 * now; LINGER: close once queued output (a refusing CONNACK) is out. */
enum outcome { OUT_DONE, OUT_RETRY, OUT_CLOSE, OUT_LINGER };

struct where {
	const char *file, *func;
	int line;
};

#define HERE ((struct where){__FILE__, __func__, __LINE__})

struct verdict {
	struct where w;
	int prio;
	enum iotgw_event event;
	char msg[400];
};

/* Fills v and returns o, so a handler can `return decide(v, ...)`. */
enum outcome decide_at(struct where w, struct verdict *v, enum outcome o, int prio,
		       enum iotgw_event event, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* The same from a va_list. */
void verdict_vset(struct verdict *v, struct where w, int prio, enum iotgw_event event,
		  const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#define decide(...) decide_at(HERE, __VA_ARGS__)

#endif
