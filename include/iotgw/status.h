/* status: what the running gateway says about itself, in one snapshot.
 *
 * The daemon fills a snapshot (status.c) and sends it three ways: the
 * STATUS= line for systemd, the DIR/status file (`key: value` lines,
 * rewritten every second) and /readyz. `iotgw status`, another process,
 * reads the file back into a snapshot and prints the same report. This
 * module is the pure part: formats, parses and judges readiness. */
#ifndef IOTGW_STATUS_H
#define IOTGW_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "iotgw/buf.h"

struct status_snapshot {
	long pid;
	char version[32];
	int64_t now_unix, start_unix;
	unsigned listeners, addresses; /* addresses bound by the listeners */
	unsigned listeners_unbound;    /* listeners with an address not bound */
	uint64_t connections;
	char upstream[16];          /* "connected", "connecting", "down" */
	int64_t upstream_since_unix; /* connected since, or down since */
	char upstream_why[512];      /* why it is not connected; "" if unknown */
	uint64_t inflight;
	uint64_t queued, bytes, max_messages, max_bytes, oldest_age_s;
	uint64_t devices;       /* known: with a sequence number */
	char top_devices[448];  /* "dev1=120 dev7=33": the 5 holding the most entries */
	bool full;         /* devices are held back */
	bool write_failed; /* the spool cannot write */
	bool stopping;
	uint64_t readings, rejected, forwarded, commits, fsyncs;
};

/* `key: value` lines, one per field, ending with updated_unix. */
int status_write_kv(const struct status_snapshot *s, FILE *f);
/* Reads what status_write_kv wrote; unknown keys are skipped, missing ones
 * stay 0. Returns 0, or -1 when the text has no pid. */
int status_parse_kv(const char *text, struct status_snapshot *s);

/* Ready: every listener bound, the spool writing, not stopping. The
 * upstream is not part of it: buffering while it is down is the job.
 * why receives the reason when not. */
bool status_ready(const struct status_snapshot *s, char *why, size_t cap);

/* The human report (`iotgw status`, /readyz): a few lines. 0 or -1. */
int status_report(const struct status_snapshot *s, struct buf *out);
/* The one-line STATUS= text. */
void status_line(const struct status_snapshot *s, char *out, size_t cap);

#endif
