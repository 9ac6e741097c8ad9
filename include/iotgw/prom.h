/* prom: the Prometheus text exposition format (0.0.4) and the histogram
 * the daemon keeps its latencies in. Pure: no I/O, no clock.
 *
 * Writers append to a caller-owned buf and return 0, or -1 when it is full
 * (a renderer ORs the results and checks once at the end). Label text is passed preformatted
 * (`listener="mqtts",reason="revoked"`); prom_label_value escapes a value
 * that came from outside (a listener name from the configuration). */
#ifndef IOTGW_PROM_H
#define IOTGW_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "iotgw/buf.h"

/* Upper bounds in seconds, without +Inf (the histogram's count is that). */
#define PROM_NBUCKETS 14
extern const double prom_buckets[PROM_NBUCKETS];

/* Cumulative on output only: bucket[i] counts observations in
 * (prom_buckets[i-1], prom_buckets[i]]; above the last bound counts only
 * in count. */
struct prom_histo {
	uint64_t bucket[PROM_NBUCKETS];
	uint64_t count;
	double sum;
};

/* n observations of `seconds` each. */
void prom_observe(struct prom_histo *h, double seconds, uint64_t n);
/* Adds src's observations to dst (one series kept in several places). */
void prom_histo_add(struct prom_histo *dst, const struct prom_histo *src);

/* "# HELP name help\n# TYPE name type\n" */
int prom_family(struct buf *b, const char *name, const char *type, const char *help);
/* "name{labels} value\n"; labels NULL or "" for none. Integers print
 * exactly; other values with enough digits to round-trip. */
int prom_sample(struct buf *b, const char *name, const char *labels, double value);
int prom_sample_u64(struct buf *b, const char *name, const char *labels, uint64_t value);
/* The _bucket (cumulative, le="..." appended to labels), _sum and _count
 * lines of one histogram series. */
int prom_histo(struct buf *b, const char *name, const char *labels, const struct prom_histo *h);
/* Escapes a label value (backslash, double quote, newline) into out;
 * truncates to cap. Returns out. */
char *prom_label_value(const char *v, char *out, size_t cap);

#endif
