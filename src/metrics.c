/* metrics: the Prometheus exposition (text format 0.0.4) of the gateway's
 * figures. Reads counters kept where things happen (listeners, the
 * gateway, the upstream, the spool) and never walks sessions, so a scrape
 * costs the same with ten devices or ten thousand. Labels are small fixed
 * sets; no label ever names a device. */
#include <dirent.h>
#include <mosquitto.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "gateway_int.h"
#include "worker.h"
#include "iotgw/downlink.h"
#include "iotgw/tls_ctx.h"
#include "iotgw/version.h"

static const char *const fail_names[CONN_FAIL__COUNT] = {
	[CONN_FAIL_PROTOCOL] = "protocol",	 [CONN_FAIL_UNKNOWN_CA] = "unknown_ca",
	[CONN_FAIL_REVOKED] = "revoked",	 [CONN_FAIL_EXPIRED] = "expired",
	[CONN_FAIL_NO_CERT] = "no_certificate", [CONN_FAIL_BAD_CERT] = "bad_certificate",
	[CONN_FAIL_CLOSED] = "closed",		 [CONN_FAIL_TIMEOUT] = "timeout",
};

/* CONNACK return codes 1..5 (MQTT 3.1.1, 3.2.2.3). */
static const char *const connack_names[6] = {
	"",
	"unacceptable_protocol_version",
	"identifier_rejected",
	"server_unavailable",
	"bad_username_or_password",
	"not_authorized",
};

static const char *const tls_slot_names[TLS_SLOT__COUNT] = {"none", "TLSv1.2", "TLSv1.3",
							    "other"};

static const char *const reject_names[REJECT__COUNT] = {"no_rule", "malformed", "implausible"};

/* One counter or gauge per listener: fn picks the value. */
typedef uint64_t (*listener_value)(const struct listener *l);

static int per_listener(struct buf *b, struct gateway *gw, const char *name, const char *type,
			const char *help, listener_value fn)
{
	int rc = prom_family(b, name, type, help);
	char lv[200], labels[256];
	for (const struct listener *l = gw->listeners; l; l = l->next) {
		snprintf(labels, sizeof labels, "listener=\"%s\"",
			 prom_label_value(l->name, lv, sizeof lv));
		rc |= prom_sample_u64(b, name, labels, fn(l));
	}
	return rc;
}

static uint64_t l_handshakes(const struct listener *l)
{
	return l->m.handshakes;
}
static uint64_t l_connects(const struct listener *l)
{
	return l->m.connects;
}
static uint64_t l_protocol_errors(const struct listener *l)
{
	return l->m.protocol_errors;
}
static uint64_t l_acl_denials(const struct listener *l)
{
	return l->m.acl_denials;
}
static uint64_t l_subscribe_refusals(const struct listener *l)
{
	return l->m.subscribe_refusals;
}
static uint64_t l_rate_limited(const struct listener *l)
{
	return l->m.rate_limited;
}
static uint64_t l_conn_rate_refusals(const struct listener *l)
{
	return l->m.conn_rate_refusals;
}
static uint64_t l_auth_failures(const struct listener *l)
{
	return l->m.auth_failures;
}
static uint64_t l_max(const struct listener *l)
{
	return l->max_connections;
}

#define GAUGE(name, help, value)                                                                   \
	(prom_family(b, name, "gauge", help) | prom_sample(b, name, NULL, (double)(value)))
#define COUNTER(name, help, value)                                                                 \
	(prom_family(b, name, "counter", help) | prom_sample_u64(b, name, NULL, (uint64_t)(value)))

static uint64_t w_handshakes(const struct worker *w)
{
	return atomic_load_explicit(&w->handshakes, memory_order_relaxed);
}

static uint64_t w_connections(const struct worker *w)
{
	return atomic_load_explicit(&w->nsessions, memory_order_relaxed);
}

/* NAME{thread} of every worker. */
static int per_worker(struct buf *b, struct gateway *gw, const char *name, const char *type,
		      const char *help, uint64_t (*get)(const struct worker *))
{
	int rc = prom_family(b, name, type, help);
	GW_FOR_EACH_WORKER(gw, w) {
		char tl[32];
		snprintf(tl, sizeof tl, "thread=\"%u\"", w->index);
		rc |= prom_sample_u64(b, name, tl, get(w));
	}
	return rc;
}

/* NAME{listener,reason} of listener l: n samples, counts[i] under reasons[i]. */
static int by_reason(struct buf *b, const char *name, const struct listener *l,
		     const char *const *reasons, const _Atomic uint64_t *counts, int n)
{
	char lv[200], labels[300];
	int rc = 0;
	for (int r = 0; r < n; r++) {
		snprintf(labels, sizeof labels, "listener=\"%s\",reason=\"%s\"",
			 prom_label_value(l->name, lv, sizeof lv), reasons[r]);
		rc |= prom_sample_u64(b, name, labels, counts[r]);
	}
	return rc;
}

/* Listeners with proxy_protocol only: the others refuse nothing so. */
static int proxy_refusals(struct buf *b, struct gateway *gw)
{
	static const char *const reasons[PROXY_REFUSED__COUNT] = {"untrusted", "invalid",
								  "timeout"};
	int rc = prom_family(b, "iotgw_proxy_refusals_total", "counter",
			     "Connections a proxy_protocol listener closed before TLS or MQTT: "
			     "untrusted (not in proxy_from), invalid (a malformed or cut header), "
			     "timeout (no header within handshake_timeout).");
	for (const struct listener *l = gw->listeners; l; l = l->next)
		if (l->proxy != CFG_PROXY_OFF)
			rc |= by_reason(b, "iotgw_proxy_refusals_total", l, reasons,
					l->m.proxy_refusals, PROXY_REFUSED__COUNT);
	return rc;
}

static int listeners(struct buf *b, struct gateway *gw)
{
	char lv[200], labels[300];
	int rc = prom_family(b, "iotgw_connections", "gauge",
			     "Device connections open past the TLS handshake, by listener and TLS "
			     "version (none: plaintext).");
	for (const struct listener *l = gw->listeners; l; l = l->next)
		for (int v = 0; v < TLS_SLOT__COUNT; v++) {
			if (v == TLS_SLOT_OTHER && !l->m.conns[v])
				continue;
			if ((v == TLS_SLOT_NONE) != (l->tls == CFG_TLS_OFF))
				continue;
			snprintf(labels, sizeof labels, "listener=\"%s\",tls_version=\"%s\"",
				 prom_label_value(l->name, lv, sizeof lv), tls_slot_names[v]);
			rc |= prom_sample_u64(b, "iotgw_connections", labels, l->m.conns[v]);
		}
	rc |= per_listener(b, gw, "iotgw_connections_max", "gauge",
			   "The listener's max_connections.", l_max);
	rc |= per_listener(b, gw, "iotgw_handshakes_total", "counter",
			   "TLS handshakes completed.", l_handshakes);
	rc |= prom_family(b, "iotgw_handshake_failures_total", "counter",
			  "TLS handshakes that failed, by reason class.");
	for (const struct listener *l = gw->listeners; l; l = l->next)
		if (l->tls != CFG_TLS_OFF)
			rc |= by_reason(b, "iotgw_handshake_failures_total", l, fail_names,
					l->m.hs_failures, CONN_FAIL__COUNT);
	rc |= prom_family(b, "iotgw_handshakes_in_progress", "gauge",
			  "TLS handshakes in progress, all listeners (max_handshakes).");
	pthread_mutex_lock(&gw->admit_mu); /* the workers count these at accept */
	unsigned handshakes = gw->handshakes;
	uint64_t hs_refused = gw->hs_refused_total, hs_evicted = gw->hs_evicted_total;
	pthread_mutex_unlock(&gw->admit_mu);
	rc |= prom_sample_u64(b, "iotgw_handshakes_in_progress", NULL, handshakes);
	rc |= prom_family(b, "iotgw_handshake_limit_refusals_total", "counter",
			  "TLS connections closed at once at max_handshakes or "
			  "max_handshakes_per_address.");
	rc |= prom_sample_u64(b, "iotgw_handshake_limit_refusals_total", NULL, hs_refused);
	rc |= GAUGE("iotgw_threads",
		    "Worker threads, each owning its devices' connections end to end, the "
		    "main one included ([gateway] threads).",
		    (double)gw->nworkers);
	rc |= per_worker(b, gw, "iotgw_thread_handshakes_total", "counter",
			 "TLS handshakes finished (done or failed) on each worker thread; "
			 "thread 0 is the main one.",
			 w_handshakes);
	rc |= per_worker(b, gw, "iotgw_thread_connections", "gauge",
			 "Device connections each worker thread owns; thread 0 is the main one.",
			 w_connections);
	rc |= COUNTER("iotgw_handshake_evictions_total",
		      "TLS handshakes without a complete ClientHello closed at max_handshakes "
		      "to admit a new connection.",
		      hs_evicted);
	rc |= GAUGE("iotgw_preauth_memory_bytes",
		    "Input buffers of connections that have not sent CONNECT (max_preauth_memory).",
		    (double)atomic_load(&gw->preauth_bytes));
	rc |= COUNTER("iotgw_preauth_refusals_total",
		      "Connections closed at max_preauth_memory.", gw->preauth_refusals);
	rc |= per_listener(b, gw, "iotgw_device_connects_total", "counter",
			   "MQTT CONNECTs accepted.", l_connects);
	rc |= prom_family(b, "iotgw_connect_refusals_total", "counter",
			  "MQTT CONNECTs refused, by CONNACK return code.");
	for (const struct listener *l = gw->listeners; l; l = l->next) /* codes 1..5 */
		rc |= by_reason(b, "iotgw_connect_refusals_total", l, connack_names + 1,
				l->m.refusals + 1, 5);
	rc |= per_listener(b, gw, "iotgw_protocol_errors_total", "counter",
			   "Connections closed for malformed or illegal MQTT.", l_protocol_errors);
	rc |= per_listener(b, gw, "iotgw_acl_denials_total", "counter",
			   "PUBLISHes refused by the listener's publish_acl.", l_acl_denials);
	rc |= per_listener(b, gw, "iotgw_auth_failures_total", "counter",
			   "CONNECTs refused for a wrong or unknown password.", l_auth_failures);
	rc |= per_listener(b, gw, "iotgw_subscribe_refusals_total", "counter",
			   "SUBSCRIBE filters answered 0x80 (subscribe_acl, no downlink, too many).",
			   l_subscribe_refusals);
	rc |= per_listener(b, gw, "iotgw_rate_limited_total", "counter",
			   "Episodes of a device over max_message_rate or max_byte_rate.",
			   l_rate_limited);
	rc |= per_listener(b, gw, "iotgw_connection_rate_refusals_total", "counter",
			   "Connections refused over max_connection_rate_per_address.",
			   l_conn_rate_refusals);
	return rc | proxy_refusals(b, gw);
}

static int commands(struct buf *b, struct gateway *gw)
{
	const struct downlink_metrics *dm = downlink_metrics(gw->dl);
	static const char *const outcome[] = {"delivered", "expired", "rejected"};
	const uint64_t counts[] = {dm->delivered, dm->expired, dm->rejected};
	int rc = COUNTER("iotgw_commands_received_total",
			 "Commands taken from the upstream broker for devices.", dm->received);
	rc |= prom_family(b, "iotgw_commands_total", "counter",
			  "Commands by outcome: delivered (PUBACKed, or written at QoS 0), expired "
			  "(command_ttl), rejected.");
	for (size_t i = 0; i < 3; i++) {
		char labels[48];
		snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome[i]);
		rc |= prom_sample_u64(b, "iotgw_commands_total", labels, counts[i]);
	}
	rc |= COUNTER("iotgw_commands_resent_total",
		      "Command PUBLISHes sent again (reconnect, resubscribe).", dm->resent);
	rc |= GAUGE("iotgw_commands_queued", "Commands held for devices, on disk.",
		    (double)downlink_queued(gw->dl));
	if (downlink_subscription(gw->dl))
		rc |= GAUGE("iotgw_downlink_subscribed",
			    "1 once the broker granted the command subscription on this "
			    "connection, else 0 (no command can arrive).",
			    upstream_metrics(gw->up)->downlink_subscribed ? 1 : 0);
	return rc;
}

static int readings(struct buf *b, struct gateway *gw)
{
	const struct upstream_metrics *um = upstream_metrics(gw->up);
	const struct ingest_metrics *im = ingest_metrics(gw->ingest);
	char labels[64];
	int rc = prom_family(b, "iotgw_readings_accepted_total", "counter",
			     "Readings decoded and queued for upstream.");
	rc |= prom_sample_u64(b, "iotgw_readings_accepted_total", NULL, im->accepted);
	rc |= prom_family(b, "iotgw_readings_rejected_total", "counter",
			  "Payloads that did not decode, sent to the dead-letter topic, by reason.");
	for (int r = 0; r < REJECT__COUNT; r++) {
		snprintf(labels, sizeof labels, "reason=\"%s\"", reject_names[r]);
		rc |= prom_sample_u64(b, "iotgw_readings_rejected_total", labels, im->rejected[r]);
	}
	rc |= prom_family(b, "iotgw_readings_forwarded_total", "counter",
			  "Spool entries the upstream broker acknowledged.");
	rc |= prom_sample_u64(b, "iotgw_readings_forwarded_total", NULL, um->forwarded);
	rc |= prom_family(b, "iotgw_readings_dropped_total", "counter",
			  "Spool entries the broker can never take (e.g. larger than it allows), "
			  "dropped (event upstream_rejected).");
	rc |= prom_sample_u64(b, "iotgw_readings_dropped_total", NULL, um->dropped);
	rc |= prom_family(b, "iotgw_readings_resent_total", "counter",
			  "Spool entries published again after a lost upstream connection.");
	rc |= prom_sample_u64(b, "iotgw_readings_resent_total", NULL, um->resent);
	rc |= prom_family(b, "iotgw_device_puback_latency_seconds", "histogram",
			  "Device PUBLISH read to its PUBACK written (the reading is durable).");
	/* Each worker keeps its own; a scrape adds them up. */
	struct prom_histo puback = {0};
	GW_FOR_EACH_WORKER(gw, w) {
		pthread_mutex_lock(&w->mu);
		prom_histo_add(&puback, &w->puback);
		pthread_mutex_unlock(&w->mu);
	}
	rc |= prom_histo(b, "iotgw_device_puback_latency_seconds", NULL, &puback);
	return rc;
}

static int spool(struct buf *b, struct gateway *gw)
{
	struct spool *sp = gw->spool;
	const struct ingest_metrics *im = ingest_metrics(gw->ingest);
	uint64_t full_ms = im->full_ms;
	if (im->full_since_ms)
		full_ms += ev_now_ms(gw->loop) - im->full_since_ms;
	int rc = GAUGE("iotgw_spool_entries", "Entries queued for upstream.", spool_count(sp));
	rc |= GAUGE("iotgw_spool_bytes", "Bytes queued, as counted against max_bytes.",
		    spool_bytes(sp));
	rc |= GAUGE("iotgw_spool_limit_bytes", "The spool's max_bytes.", gw->cfg->spool.max_bytes);
	rc |= GAUGE("iotgw_spool_limit_entries", "The spool's max_messages.",
		    gw->cfg->spool.max_messages);
	rc |= GAUGE("iotgw_spool_oldest_age_seconds", "Age of the oldest queued entry; 0 when empty.",
		    (double)spool_oldest_age_ms(sp, ev_wall_ms()) / 1000);
	rc |= COUNTER("iotgw_spool_commits_total", "Spool transactions committed.",
		      spool_commits(sp));
	rc |= COUNTER("iotgw_spool_fsyncs_total", "Disk flushes of the spool.", spool_syncs(sp));
	rc |= prom_family(b, "iotgw_spool_commit_duration_seconds", "histogram",
			  "Time a spool transaction took to commit.");
	rc |= prom_histo(b, "iotgw_spool_commit_duration_seconds", NULL, &im->commit);
	rc |= GAUGE("iotgw_spool_full", "1 while devices are held back (spool full or not writing).",
		    ingest_holding(gw->ingest) ? 1 : 0);
	rc |= COUNTER("iotgw_spool_full_episodes_total", "Times devices were held back.",
		      im->full_episodes);
	rc |= prom_family(b, "iotgw_spool_full_seconds_total", "counter",
			  "Time devices spent held back.");
	rc |= prom_sample(b, "iotgw_spool_full_seconds_total", NULL, (double)full_ms / 1000);
	rc |= COUNTER("iotgw_spool_write_errors_total", "Spool commits that failed.",
		      im->write_errors);
	uint64_t ckpt_failed = 0;
	uint64_t ckpts = spool_checkpoints(sp, &ckpt_failed);
	rc |= COUNTER("iotgw_spool_checkpoints_total",
		      "WAL checkpoints the spool's flush thread ran (durability = fsync).", ckpts);
	rc |= COUNTER("iotgw_spool_checkpoint_failures_total",
		      "WAL checkpoints that failed (a full disk); the next one tries again.",
		      ckpt_failed);
	rc |= GAUGE("iotgw_spool_devices", "Devices holding readings in the spool.",
		    (double)spool_devices(sp));
	rc |= GAUGE("iotgw_devices_over_share",
		    "Devices whose readings wait over their share of the spool (not read meanwhile).",
		    (double)ingest_metrics(gw->ingest)->share_held);
	rc |= COUNTER("iotgw_spool_share_episodes_total",
		      "Times a device was held back over its share of the spool.",
		      im->share_episodes);
	return rc;
}

static int upstream(struct buf *b, struct gateway *gw)
{
	const struct upstream_metrics *um = upstream_metrics(gw->up);
	bool up = upstream_connected(gw->up);
	char labels[64];
	int rc = GAUGE("iotgw_upstream_up", "1 while connected to the upstream broker.", up ? 1 : 0);
	rc |= COUNTER("iotgw_upstream_connects_total", "Upstream connections established.",
		      um->connects);
	rc |= prom_family(b, "iotgw_upstream_disconnects_total", "counter",
			  "Failed upstream connection attempts and lost connections, by reason.");
	for (int r = 0; r < UP_DROP__COUNT; r++) {
		snprintf(labels, sizeof labels, "reason=\"%s\"",
			 upstream_drop_name((enum up_drop_class)r));
		rc |= prom_sample_u64(b, "iotgw_upstream_disconnects_total", labels,
				      um->disconnects[r]);
	}
	rc |= prom_family(b, "iotgw_upstream_refusals_total", "counter",
			  "CONNECTs the upstream broker refused, by CONNACK return code.");
	for (int c = 1; c < 6; c++) {
		snprintf(labels, sizeof labels, "reason=\"%s\"", connack_names[c]);
		rc |= prom_sample_u64(b, "iotgw_upstream_refusals_total", labels, um->refusals[c]);
	}
	rc |= GAUGE("iotgw_upstream_down_seconds",
		    "0 while connected, else seconds since the connection was lost (or since start).",
		    up ? 0 : (double)(ev_clock_ms() - um->down_since_ms) / 1000);
	rc |= GAUGE("iotgw_upstream_last_connected_timestamp_seconds",
		    "When the upstream connection was last established (unix time; 0: never).",
		    (double)(um->last_connected_unix_ms / 1000));
	rc |= GAUGE("iotgw_upstream_inflight", "Entries published, awaiting the broker's PUBACK.",
		    spool_inflight(gw->spool));
	rc |= prom_family(b, "iotgw_upstream_puback_latency_seconds", "histogram",
			  "Entry published upstream to the broker's PUBACK.");
	rc |= prom_histo(b, "iotgw_upstream_puback_latency_seconds", NULL, &um->puback);
	return rc;
}

static int expiry_samples(struct buf *b, SSL_CTX *ctx, const char *listener)
{
	static const char *const kinds[] = {"certificate", "ca", "crl"};
	time_t t[3];
	char labels[300];
	int rc = 0;
	tls_ctx_expiry(ctx, &t[0], &t[1], &t[2]);
	for (int k = 0; k < 3; k++) {
		if (!t[k])
			continue; /* absent, never 0: an alert on "expires before now" */
		snprintf(labels, sizeof labels, "listener=\"%s\",kind=\"%s\"", listener, kinds[k]);
		rc |= prom_sample(b, "iotgw_tls_expiry_timestamp_seconds", labels, (double)t[k]);
	}
	return rc;
}

static int tls_expiry(struct buf *b, struct gateway *gw)
{
	char lv[200];
	int rc = prom_family(b, "iotgw_tls_expiry_timestamp_seconds", "gauge",
			     "When the gateway's own certificate (kind=certificate), the earliest "
			     "trusted CA (kind=ca) or the earliest CRL nextUpdate (kind=crl) of a "
			     "listener or of upstream expires (unix time).");
	for (const struct listener *l = gw->listeners; l; l = l->next)
		if (l->ctx)
			rc |= expiry_samples(b, l->ctx, prom_label_value(l->name, lv, sizeof lv));
	SSL_CTX *up = upstream_tls_ctx(gw->up);
	if (up)
		rc |= expiry_samples(b, up, "upstream");
	return rc;
}

static unsigned count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n ? n - 1 : 0; /* the directory's own descriptor */
}

/* The standard process_* metrics, from /proc/self/stat. */
static int process(struct buf *b, struct gateway *gw)
{
	double cpu = 0, vsize = 0, rss = 0;
	FILE *f = fopen("/proc/self/stat", "re");
	if (f) {
		char line[1024];
		if (fgets(line, sizeof line, f)) {
			/* Fields after the command name, which may hold spaces. */
			const char *p = strrchr(line, ')');
			unsigned long utime = 0, stime = 0, vs = 0;
			long rs = 0;
			if (p && sscanf(p + 2,
					"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d "
					"%*d %*d %*d %*d %*u %lu %ld",
					&utime, &stime, &vs, &rs) == 4) {
				double tick = (double)sysconf(_SC_CLK_TCK);
				cpu = (double)(utime + stime) / tick;
				vsize = (double)vs;
				rss = (double)rs * (double)sysconf(_SC_PAGESIZE);
			}
		}
		fclose(f);
	}
	struct rlimit rl = {0};
	(void)getrlimit(RLIMIT_NOFILE, &rl);
	int rc = prom_family(b, "process_cpu_seconds_total", "counter",
			     "Total user and system CPU time spent in seconds.");
	rc |= prom_sample(b, "process_cpu_seconds_total", NULL, cpu);
	rc |= GAUGE("process_resident_memory_bytes", "Resident memory size in bytes.", rss);
	rc |= GAUGE("process_virtual_memory_bytes", "Virtual memory size in bytes.", vsize);
	rc |= GAUGE("process_open_fds", "Number of open file descriptors.", count_fds());
	rc |= GAUGE("process_max_fds", "Maximum number of open file descriptors.",
		    (double)rl.rlim_cur);
	rc |= GAUGE("process_start_time_seconds", "Start time of the process since unix epoch.",
		    (double)(gw->m.start_unix_ms / 1000));
	return rc;
}

static int build(struct buf *b, struct gateway *gw)
{
	int maj, min, rev;
	mosquitto_lib_version(&maj, &min, &rev);
	char labels[300];
	snprintf(labels, sizeof labels,
		 "version=\"%s\",openssl=\"%s\",libmosquitto=\"%d.%d.%d\",sqlite=\"%s\"",
		 IOTGW_VERSION, OpenSSL_version(OPENSSL_VERSION_STRING), maj, min, rev,
		 sqlite3_libversion());
	int rc = prom_family(b, "iotgw_build_info", "gauge",
			     "Versions of iotgw and the libraries it runs with; always 1.");
	rc |= prom_sample(b, "iotgw_build_info", labels, 1);
	rc |= GAUGE("iotgw_start_time_seconds", "When the gateway started (unix time).",
		    (double)(gw->m.start_unix_ms / 1000));
	struct status_snapshot snap;
	char why[128];
	gateway_snapshot(gw, &snap);
	rc |= GAUGE("iotgw_ready", "1 when /readyz answers 200: listeners bound, spool writing, "
				   "not stopping (the upstream is not part of it).",
		    status_ready(&snap, why, sizeof why) ? 1 : 0);
	rc |= prom_family(b, "iotgw_config_reloads_total", "counter",
			  "Configuration reloads (SIGHUP, watched TLS files), by result.");
	rc |= prom_sample_u64(b, "iotgw_config_reloads_total", "result=\"ok\"", gw->m.reloads_ok);
	rc |= prom_sample_u64(b, "iotgw_config_reloads_total", "result=\"failed\"",
			      gw->m.reloads_failed);
	return rc;
}

int metrics_conn_opened(struct listener *l, const char *tls_version)
{
	enum tls_slot slot = !tls_version				  ? TLS_SLOT_NONE
			     : strcmp(tls_version, "TLSv1.3") == 0 ? TLS_SLOT_13
			     : strcmp(tls_version, "TLSv1.2") == 0 ? TLS_SLOT_12
								   : TLS_SLOT_OTHER;
	l->m.conns[slot]++;
	if (tls_version)
		l->m.handshakes++;
	return (int)slot;
}

void metrics_conn_closed(struct listener *l, int slot)
{
	if (slot >= 0)
		l->m.conns[slot]--;
}

int metrics_render(struct gateway *gw, struct buf *out)
{
	int rc = build(out, gw);
	rc |= process(out, gw);
	rc |= listeners(out, gw);
	rc |= readings(out, gw);
	rc |= commands(out, gw);
	rc |= spool(out, gw);
	rc |= upstream(out, gw);
	rc |= tls_expiry(out, gw);
	return rc;
}
