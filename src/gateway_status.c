/* gateway_status: the running gateway's snapshot (status.h) and where it
 * goes: the DIR/status file `iotgw status` and `--spool-stats` read. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway_int.h"
#include "worker.h"
#include "iotgw/version.h"

/* The devices holding the most of the spool, as `iotgw --spool-stats`
 * prints them ("dev1=120 dev7=33"): the spool is the gateway's alone while
 * it runs (spool.c, locking_mode), so the figure comes from here. */
static void top_devices(const struct spool *sp, char *out, size_t cap)
{
	struct spool_holder top[SPOOL_TOP_DEVICES];
	size_t n = spool_top_devices(sp, top, SPOOL_TOP_DEVICES), len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && len < cap; i++) {
		int w = snprintf(out + len, cap - len, "%s%s=%llu", i ? " " : "", top[i].device,
				 (unsigned long long)top[i].entries);
		if (w < 0 || (size_t)w >= cap - len) {
			out[len] = '\0'; /* a whole name or none */
			break;
		}
		len += (size_t)w;
	}
}

void gateway_snapshot(struct gateway *gw, struct status_snapshot *s)
{
	memset(s, 0, sizeof *s);
	int64_t now_ms = ev_wall_ms();
	s->pid = (long)getpid();
	snprintf(s->version, sizeof s->version, "%s", IOTGW_VERSION);
	s->now_unix = now_ms / 1000;
	s->start_unix = gw->m.start_unix_ms / 1000;
	for (const struct listener *l = gw->listeners; l; l = l->next) {
		s->listeners++;
		s->addresses += (unsigned)l->nsocks;
		if (l->nsocks == 0)
			s->listeners_unbound++;
	}
	s->connections = gateway_sessions(gw);
	const struct upstream_metrics *um = upstream_metrics(gw->up);
	snprintf(s->upstream, sizeof s->upstream, "%s", upstream_state_name(gw->up));
	if (upstream_connected(gw->up)) {
		s->upstream_since_unix = um->last_connected_unix_ms / 1000;
	} else {
		/* down_since is monotonic: as wall time, counted back from now */
		uint64_t down_ms = ev_clock_ms() - um->down_since_ms;
		s->upstream_since_unix = (now_ms - (int64_t)down_ms) / 1000;
		snprintf(s->upstream_why, sizeof s->upstream_why, "%s", um->why);
	}
	s->inflight = spool_inflight(gw->spool);
	s->queued = spool_count(gw->spool);
	s->bytes = spool_bytes(gw->spool);
	s->max_messages = gw->cfg->spool.max_messages;
	s->max_bytes = gw->cfg->spool.max_bytes;
	s->oldest_age_s = spool_oldest_age_ms(gw->spool, now_ms) / 1000;
	s->devices = ingest_devices(gw->ingest);
	top_devices(gw->spool, s->top_devices, sizeof s->top_devices);
	const struct ingest_metrics *im = ingest_metrics(gw->ingest);
	s->full = ingest_holding(gw->ingest);
	s->write_failed = ingest_write_failed(gw->ingest);
	s->stopping = gw->stopping;
	s->readings = im->accepted;
	for (int i = 0; i < REJECT__COUNT; i++)
		s->rejected += im->rejected[i];
	s->forwarded = um->forwarded;
	s->commits = spool_commits(gw->spool);
	s->fsyncs = spool_syncs(gw->spool);
}

/* Written aside and renamed, so a reader never sees half a file; not
 * synced: it is rewritten every second anyway. */
void gateway_write_status(struct gateway *gw)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s", gw->cfg->spool.dir, SPOOL_STATUS_NAME) >=
		    (int)sizeof path ||
	    snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return;
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	struct status_snapshot s;
	gateway_snapshot(gw, &s);
	int rc = status_write_kv(&s, f);
	if (fclose(f) != 0 || rc != 0 || rename(tmp, path) != 0)
		(void)unlink(tmp);
}

size_t gateway_sessions(const struct gateway *gw)
{
	size_t n = 0;
	GW_FOR_EACH_WORKER(gw, w)
		n += atomic_load_explicit(&w->nsessions, memory_order_relaxed);
	return n;
}

size_t gateway_active_sessions(const struct gateway *gw)
{
	size_t n = 0;
	GW_FOR_EACH_WORKER(gw, w)
		n += atomic_load_explicit(&w->nactive, memory_order_relaxed);
	return n;
}
