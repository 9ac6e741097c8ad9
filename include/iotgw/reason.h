/* reason: the one way a function explains a failure to its caller.
 *
 * Codecs and checks do not log (the boundary that calls them does, once, with
 * context); they write a printable reason into the caller's buffer and
 * return -1. why may be NULL or whylen 0 when the caller does not want it. */
#ifndef IOTGW_REASON_H
#define IOTGW_REASON_H

#include <stddef.h>

/* Formats the reason into why (truncated to whylen) and returns -1. */
int reason_fail(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
