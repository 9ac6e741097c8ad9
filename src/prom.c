/* prom: Prometheus text exposition and latency histograms (see prom.h). */
#include "iotgw/prom.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* 0.5 ms to 10 s: a device's PUBACK on a quiet gateway takes well under a
 * millisecond, a commit behind a slow disk or a broker round trip over a
 * WAN takes tens to hundreds. */
const double prom_buckets[PROM_NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					    0.1,    0.25,  0.5,    1,     2.5,  5,     10};

void prom_observe(struct prom_histo *h, double seconds, uint64_t n)
{
	if (n == 0)
		return;
	if (!(seconds >= 0)) /* NaN or negative (a clock step): counts as 0 */
		seconds = 0;
	size_t i = 0;
	while (i < PROM_NBUCKETS && seconds > prom_buckets[i])
		i++;
	if (i < PROM_NBUCKETS)
		h->bucket[i] += n;
	h->count += n;
	h->sum += seconds * (double)n;
}

int prom_family(struct buf *b, const char *name, const char *type, const char *help)
{
	return buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *open_brace(const char *labels)
{
	return labels && labels[0] ? "{" : "";
}

static const char *close_brace(const char *labels)
{
	return labels && labels[0] ? "}" : "";
}

int prom_sample(struct buf *b, const char *name, const char *labels, double value)
{
	if (isnan(value))
		return buf_appendf(b, "%s%s%s%s NaN\n", name, open_brace(labels), labels ? labels : "",
			       close_brace(labels));
	if (isinf(value))
		return buf_appendf(b, "%s%s%s%s %s\n", name, open_brace(labels),
			       labels ? labels : "", close_brace(labels),
			       value > 0 ? "+Inf" : "-Inf");
	if (value == floor(value) && fabs(value) < 9.007199254740992e15)
		return buf_appendf(b, "%s%s%s%s %.0f\n", name, open_brace(labels),
			       labels ? labels : "", close_brace(labels), value);
	return buf_appendf(b, "%s%s%s%s %.17g\n", name, open_brace(labels), labels ? labels : "",
		       close_brace(labels), value);
}

int prom_sample_u64(struct buf *b, const char *name, const char *labels, uint64_t value)
{
	return buf_appendf(b, "%s%s%s%s %llu\n", name, open_brace(labels), labels ? labels : "",
		       close_brace(labels), (unsigned long long)value);
}

int prom_histo(struct buf *b, const char *name, const char *labels, const struct prom_histo *h)
{
	const char *sep = labels && labels[0] ? "," : "";
	const char *l = labels ? labels : "";
	uint64_t cum = 0;
	int rc = 0;
	for (size_t i = 0; i < PROM_NBUCKETS; i++) {
		cum += h->bucket[i];
		rc |= buf_appendf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, l, sep, prom_buckets[i],
			      (unsigned long long)cum);
	}
	rc |= buf_appendf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, l, sep,
		      (unsigned long long)h->count);
	char sname[128];
	snprintf(sname, sizeof sname, "%s_sum", name);
	rc |= prom_sample(b, sname, labels, h->sum);
	snprintf(sname, sizeof sname, "%s_count", name);
	rc |= prom_sample_u64(b, sname, labels, h->count);
	return rc;
}

char *prom_label_value(const char *v, char *out, size_t cap)
{
	size_t o = 0;
	for (; *v && o + 3 < cap; v++) {
		if (*v == '\\' || *v == '"') {
			out[o++] = '\\';
			out[o++] = *v;
		} else if (*v == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *v;
		}
	}
	if (cap)
		out[o < cap ? o : cap - 1] = '\0';
	return out;
}

void prom_histo_add(struct prom_histo *dst, const struct prom_histo *src)
{
	for (size_t i = 0; i < PROM_NBUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
}
