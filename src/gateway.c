/* gateway: the process around the event loop. gateway_new sets it up
 * (signals as a signalfd, the timers, the spool and the upstream, and the
 * configuration through gateway_config.c), gateway_run runs the loop, and
 * SIGTERM or SIGINT stops it: listeners close, sessions end, and the
 * upstream gets a moment to take what is queued. Also the periodic work:
 * DIR/status and STATUS=, the stats_topic message, the daily expiry check,
 * the watchdog, and DIR/tls-sessions (keep_tls_sessions). */
#include "iotgw/gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "gateway_config.h"
#include "gateway_int.h"
#include "iotgw/downlink.h"
#include "iotgw/log.h"
#include "iotgw/reading.h"
#include "iotgw/sdnotify.h"
#include "iotgw/tls_ctx.h"
#include "iotgw/watch.h"
#include "iotgw/pwcheck.h"
#include "metrics_http.h"
#include "worker.h"

/* Password checks: two threads (a gateway box has few cores; the loops
 * keep theirs), and at most this many waiting before new ones are refused. */
#define PWCHECK_THREADS 2
#define PWCHECK_QUEUE 64

#define STATUS_INTERVAL_MS 1000
#define EXPIRY_INTERVAL_MS (24ull * 3600 * 1000) /* own certificates and CRLs, daily */
#define SHUTDOWN_DRAIN_MS 5000 /* on stop, give upstream this long to take the queue */
/* Hand-and-commit rounds per owner turn: acks released may read devices
 * held for them, whose readings go in the next round's batch. */
#define TURN_ROUNDS 4
/* DIR/tls-sessions is rewritten this often when sessions changed: after a
 * crash, devices whose sessions are older resume; the rest reconnect with
 * full handshakes. */
#define TLS_SESSIONS_SAVE_MS (5u * 60 * 1000)

/* ---- status and watchdog ---- */

/* Every second: DIR/status for `iotgw status`; STATUS= for systemctl. */
static void on_status_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct gw_runtime *rt = t->arg;
	struct status_snapshot snap;
	char line[512];
	gateway_snapshot(&rt->gw, &snap);
	status_line(&snap, line, sizeof line);
	sdn_status(line);
	gateway_write_status(&rt->gw);
	listener_reap(&rt->gw); /* listeners a reload removed, once their sessions are gone */
	log_flush_suppressed(false);
	ev_timer_start(loop, t, STATUS_INTERVAL_MS);
}

/* [upstream] stats_topic: the figures for sites that only have the broker. */
static void on_stats_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct gw_runtime *rt = t->arg;
	struct gateway *gw = &rt->gw;
	const struct cfg_upstream *u = &gw->cfg->upstream;
	if (strcmp(u->stats_topic, "none") == 0)
		return;
	char topic[512], json[768];
	struct status_snapshot snap;
	gateway_snapshot(gw, &snap);
	if (reading_topic(u->stats_topic, "", gw->cfg->gateway.name, NULL, topic, sizeof topic) >= 0) {
		snprintf(json, sizeof json,
			 "{\"gateway\":\"%s\",\"time\":%lld,\"uptime_s\":%lld,\"connections\":%llu,"
			 "\"readings_accepted\":%llu,\"readings_rejected\":%llu,"
			 "\"readings_forwarded\":%llu,\"spool_entries\":%llu,"
			 "\"spool_oldest_age_s\":%llu,\"spool_full\":%s}",
			 gw->cfg->gateway.name, (long long)snap.now_unix,
			 (long long)(snap.now_unix - snap.start_unix),
			 (unsigned long long)snap.connections, (unsigned long long)snap.readings,
			 (unsigned long long)snap.rejected, (unsigned long long)snap.forwarded,
			 (unsigned long long)snap.queued, (unsigned long long)snap.oldest_age_s,
			 snap.full ? "true" : "false");
		(void)upstream_publish_aside(gw->up, topic, json);
	}
	ev_timer_start(loop, t, u->stats_interval_ms);
}

/* Daily, between reloads: what would break devices in the next
 * expiry_warning (our certificates, the CRLs we check with). */
struct expiry_log {
	const char *listener;
};

static void log_expiry(void *arg, enum tls_expiry_kind kind, bool expired, const char *text)
{
	(void)kind;
	struct expiry_log *e = arg;
	struct log_fields f = {.listener = e->listener};
	log_event(expired ? LOG_ERR : LOG_WARNING, EV_TLS_EXPIRING, &f, "%s %s: %s",
		  e->listener ? "listener" : "upstream", e->listener ? e->listener : "connection",
		  text);
}

/* Often enough that a device is forgotten within a quarter of
 * forget_devices_after of its time, at most hourly (a sweep walks the
 * device table). */
static uint64_t forget_interval_ms(const struct gateway *gw)
{
	uint64_t q = (uint64_t)gw->cfg->spool.forget_devices_after_s * 250;
	return q < 250 ? 250 : q > 3600000 ? 3600000 : q;
}

static void on_forget_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct gw_runtime *rt = t->arg;
	ingest_forget_devices(rt->gw.ingest);
	ev_timer_start(loop, t, forget_interval_ms(&rt->gw));
}

static void on_expiry_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct gw_runtime *rt = t->arg;
	struct gateway *gw = &rt->gw;
	time_t now = time(NULL);
	unsigned horizon = gw->cfg->gateway.expiry_warning_s;
	for (struct listener *l = gw->listeners; l; l = l->next) {
		struct expiry_log e = {l->name};
		if (l->ctx)
			tls_ctx_expiring(l->ctx, now, horizon, log_expiry, &e);
	}
	SSL_CTX *up = upstream_tls_ctx(gw->up);
	struct expiry_log e = {NULL};
	if (up)
		tls_ctx_expiring(up, now, horizon, log_expiry, &e);
	ev_timer_start(loop, t, EXPIRY_INTERVAL_MS);
}

static void on_watchdog_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct gw_runtime *rt = t->arg;
	/* Pinged from the loop itself: a stuck loop stops the pings. */
	sdn_watchdog();
	ev_timer_start(loop, t, rt->watchdog_ms);
}

/* The owner's turn, with worker 0's (they share the main thread): the
 * worker hands its batch, the owner takes every worker's messages, stages
 * and commits, and worker 0 acts on the news; again while that read more. */
static void before_sleep(struct ev_loop *loop, void *arg)
{
	(void)loop;
	struct gateway *gw = arg;
	struct worker *w0 = &gw->workers[0];
	for (int round = 0; round < TURN_ROUNDS; round++) {
		worker_hand_batch(w0);
		owner_drain(gw);
		/* Commands first: what they deliver and delete joins this commit. */
		downlink_pump(gw->dl);
		/* The PUBLISHes that refill the window the broker's PUBACKs
		 * opened carry entries committed earlier: out before the
		 * transaction, which would otherwise lengthen every round trip
		 * (at a fixed window, the round trip is the rate). What the
		 * commit offers goes after it. */
		upstream_flush(gw->up);
		if (ingest_turn(gw->ingest))
			upstream_kick(gw->up);
		upstream_flush(gw->up);
		if (!worker_drain(w0) || (w0->filling->n == 0 && !w0->unsealed))
			break;
	}
}

/* ---- stop ---- */

static void finish(struct gw_runtime *rt)
{
	ev_stop(rt->gw.loop);
}

static void on_drain_timer(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	finish(t->arg);
}

static void begin_stop(struct gw_runtime *rt, int signo)
{
	struct gateway *gw = &rt->gw;
	if (rt->gw.stopping) {
		finish(rt); /* a second signal: stop now */
		return;
	}
	rt->gw.stopping = true;
	sdn_stopping();
	log_event(LOG_NOTICE, EV_GATEWAY_STOPPING, NULL, "%s received; stopping (%zu connections)",
		  strsignal(signo), gateway_sessions(gw));
	workers_park(gw); /* their listening sockets and sessions are closed here */
	while (gw->listeners) {
		struct listener *next = gw->listeners->next;
		listener_close(gw->listeners);
		gw->listeners = next;
	}
	GW_FOR_EACH_WORKER(gw, w)
		for (struct session *s = w->sessions; s; s = session_next(s))
			session_close(s, LOG_INFO, EV_DEVICE_DISCONNECTED, "gateway stopping");
	workers_unpark(gw);
	if (spool_count(gw->spool) == 0 || !upstream_connected(gw->up)) {
		finish(rt);
		return;
	}
	/* Everything queued was acknowledged to devices: give the upstream a
	 * moment to take it before exiting. */
	ev_timer_start(gw->loop, &rt->drain_timer, SHUTDOWN_DRAIN_MS);
}

static void on_drain_progress(struct gw_runtime *rt)
{
	if (rt->gw.stopping && spool_count(rt->gw.spool) == 0)
		finish(rt);
}

/* The upstream's progress (readings acknowledged and deleted): what it
 * means for the devices (room again) is ingest_turn's to tell them,
 * before the loop sleeps; never from inside the upstream's callback. */
static void on_progress(void *arg)
{
	struct gw_runtime *rt = arg;
	on_drain_progress(rt);
}

static void on_signal(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct gw_runtime *rt = io->arg;
	struct signalfd_siginfo si;
	while (read(rt->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGHUP) {
			if (!rt->gw.stopping)
				gateway_reload(rt);
		} else if (si.ssi_signo == SIGUSR1) {
			/* `systemctl kill -s USR1 iotgw`: the figures of STATUS=
			 * and DIR/status, in the log, now. */
			struct status_snapshot snap;
			char line[512];
			gateway_snapshot(&rt->gw, &snap);
			status_line(&snap, line, sizeof line);
			log_event(LOG_NOTICE, EV_STATUS, NULL, "status: %s", line);
		} else {
			begin_stop(rt, (int)si.ssi_signo);
		}
	}
}

/* ---- lifecycle ---- */

static bool device_known(void *arg, const char *device)
{
	struct gateway *gw = arg;
	return ingest_device_known(gw->ingest, device);
}

/* ---- what ingest asks of the workers and the downlink ---- */

static bool commands_waiting(void *arg)
{
	return downlink_holding_acks(((struct gateway *)arg)->dl);
}

static size_t active_devices(void *arg)
{
	return gateway_active_sessions(arg);
}

/* ---- TLS sessions across restarts (keep_tls_sessions) ---- */

static int tls_sessions_path(const struct gateway *gw, char *out, size_t cap)
{
	return snprintf(out, cap, "%s/tls-sessions", gw->cfg->spool.dir) < (int)cap ? 0 : -1;
}

static void load_tls_sessions(struct gateway *gw)
{
	char path[4096], err[512];
	if (!gw->cfg->gateway.keep_tls_sessions || tls_sessions_path(gw, path, sizeof path) != 0)
		return;
	long n = tls_ctx_sessions_load(path, err, sizeof err);
	if (n < 0)
		log_event(LOG_WARNING, EV_TLS_SESSIONS, NULL,
			  "%s; devices whose sessions were lost do full handshakes", err);
	else if (n > 0)
		log_event(LOG_INFO, EV_TLS_SESSIONS, NULL,
			  "%ld TLS session(s) from %s: their devices can resume", n, path);
}

/* Also when keep_tls_sessions was turned off by a reload: the file is
 * removed then, so that no stale secrets stay on disk. */
static void save_tls_sessions(struct gateway *gw, bool at_exit)
{
	char path[4096], err[512];
	if (tls_sessions_path(gw, path, sizeof path) != 0)
		return;
	if (!gw->cfg->gateway.keep_tls_sessions) {
		(void)unlink(path);
		return;
	}
	if (!at_exit && !tls_ctx_sessions_changed())
		return;
	long n = tls_ctx_sessions_save(path, err, sizeof err);
	if (n < 0)
		log_event(LOG_WARNING, EV_TLS_SESSIONS, NULL,
			  "cannot keep the TLS sessions: %s; after a restart devices do full "
			  "handshakes",
			  err);
	else if (at_exit)
		log_event(LOG_INFO, EV_TLS_SESSIONS, NULL,
			  "%ld TLS session(s) kept in %s for the next start", n, path);
}

static void on_tls_sessions_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct gw_runtime *rt = t->arg;
	save_tls_sessions(&rt->gw, false);
	ev_timer_start(loop, t, TLS_SESSIONS_SAVE_MS);
}

static int open_spool(struct gw_runtime *rt, const struct cfg_spool *cfg)
{
	struct gateway *gw = &rt->gw;
	char err[512];
	/* Opening counts what is queued and reading the device table takes
	 * time with its size: tell systemd before (and on_loaded_seq while),
	 * so that TimeoutStartSec= does not kill a start that progresses. */
	sdn_extend_timeout(90ull * 1000 * 1000, "opening the spool");
	gw->spool = spool_open(cfg, err, sizeof err);
	if (!gw->spool) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "cannot open the spool: %s", err);
		return -1;
	}
	const struct ingest_hooks ih = {owner_news, commands_waiting, active_devices, gw};
	gw->ingest = ingest_new(gw->loop, gw->spool, &ih);
	if (!gw->ingest) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "out of memory");
		return -1;
	}
	if (ingest_load_devices(gw->ingest) != 0) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL,
			  "%s: cannot read the device sequence numbers", spool_path(gw->spool));
		return -1;
	}
	log_event(LOG_INFO, EV_SPOOL_OPEN, NULL,
		  "spool %s: %llu queued (oldest %llus), %zu device(s) known, durability %s",
		  spool_path(gw->spool), (unsigned long long)spool_count(gw->spool),
		  (unsigned long long)(spool_oldest_age_ms(gw->spool, ev_wall_ms()) / 1000),
		  ingest_devices(gw->ingest),
		  cfg->durability == CFG_DURABLE_FSYNC ? "fsync" : "os");
	struct downlink_hooks hooks = {owner_deliver, device_known, gw};
	gw->dl = downlink_new(gw->loop, gw->spool, &hooks, err, sizeof err);
	if (!gw->dl) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "%s: %s", spool_path(gw->spool), err);
		return -1;
	}
	gw->up = upstream_new(gw->loop, gw->spool, on_progress, rt);
	if (!gw->up) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "cannot create upstream client");
		return -1;
	}
	return 0;
}

/* The workers ([gateway] threads), before the listeners open: each binds
 * its own socket on every address. Their threads start once the listeners
 * are open (workers_start). */
static int make_workers(struct gateway *gw, const struct cfg_gateway *g)
{
	char why[1200], err[256];
	unsigned n = gateway_threads_resolve(g->threads, why, sizeof why);
	if (n > INGEST_WORKERS_MAX)
		n = INGEST_WORKERS_MAX;
	gw->workers = calloc(n, sizeof *gw->workers);
	if (!gw->workers) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "out of memory");
		return -1;
	}
	gw->nworkers = n;
	for (unsigned i = 0; i < n; i++) {
		struct ev_loop *loop = i == 0 ? gw->loop : ev_loop_new();
		if (!loop || worker_init(&gw->workers[i], gw, i, loop, err, sizeof err) != 0) {
			if (!loop)
				snprintf(err, sizeof err, "out of memory");
			else if (i > 0 && !gw->workers[i].gw)
				ev_loop_free(loop);
			log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "worker %u: %s", i, err);
			return -1;
		}
	}
	log_event(LOG_INFO, EV_THREADS_STARTED, NULL,
		  "threads = %s: devices on %u worker thread(s), the main one included, each "
		  "with its own connections (TLS, MQTT, decoding)",
		  why, n);
	return 0;
}

struct gateway *gateway_new(const char *path, int *status)
{
	*status = 1;
	struct gw_runtime *rt = calloc(1, sizeof *rt);
	if (!rt)
		return NULL;
	struct gateway *gw = &rt->gw;
	rt->sigfd = -1;
	gw->m.start_unix_ms = ev_wall_ms();
	gw->loop = ev_loop_new();
	gw->by_client_id = strmap_new();
	gw->hs_by_addr = strmap_new();
	gw->auth_fails = strmap_new();
	pthread_mutex_init(&gw->admit_mu, NULL);
	pthread_mutex_init(&gw->park.mu, NULL);
	pthread_cond_init(&gw->park.cv, NULL);
	gw->pwcheck = pwcheck_new(PWCHECK_THREADS, PWCHECK_QUEUE);
	if (!gw->loop || !gw->by_client_id || !gw->hs_by_addr || !gw->auth_fails ||
	    !gw->pwcheck || owner_init(gw) != 0) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "out of memory");
		gateway_free(gw);
		return NULL;
	}
	/* Signals arrive as events in the loop, never as asynchronous handlers. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	rt->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (rt->sigfd < 0 || ev_io_start(gw->loop, &rt->sig_io, rt->sigfd, EPOLLIN, on_signal, rt)) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "signalfd: %s", strerror(errno));
		gateway_free(gw);
		return NULL;
	}
	ev_timer_init(&rt->status_timer, on_status_timer, rt);
	ev_timer_init(&rt->watchdog_timer, on_watchdog_timer, rt);
	ev_timer_init(&rt->drain_timer, on_drain_timer, rt);
	ev_timer_init(&rt->expiry_timer, on_expiry_timer, rt);
	ev_timer_init(&rt->stats_timer, on_stats_timer, rt);
	ev_timer_init(&rt->forget_timer, on_forget_timer, rt);
	ev_timer_init(&rt->tls_sessions_timer, on_tls_sessions_timer, rt);
	ev_set_before_sleep(gw->loop, before_sleep, gw);

	/* Startup goes through the same prepare/apply path as a reload; the
	 * spool opens in between, as it needs the configuration and the
	 * upstream needs the spool. */
	struct prepared p;
	int errors = gateway_prepare(path, &p, gateway_diag_to_log, NULL);
	if (!errors)
		log_set_level(p.cfg.gateway.log_level); /* before the spool logs */
	if (!errors && open_spool(rt, &p.cfg.spool) != 0) {
		gateway_prepared_free(&p);
		gateway_free(gw);
		return NULL;
	}
	if (!errors && make_workers(gw, &p.cfg.gateway) != 0) {
		gateway_prepared_free(&p);
		gateway_free(gw);
		return NULL;
	}
	if (errors || gateway_apply(gw, &p) != 0) {
		if (errors) {
			log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL,
				  "configuration %s has %d error(s) (config_error lines above); "
				  "exiting with status %d",
				  path, errors, IOTGW_EXIT_CONFIG);
			*status = IOTGW_EXIT_CONFIG;
		}
		gateway_prepared_free(&p);
		gateway_free(gw);
		return NULL;
	}
	gateway_update_watch(rt);
	load_tls_sessions(gw);
	char err[256];
	if (workers_start(gw, err, sizeof err) != 0) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "%s", err);
		gateway_free(gw);
		return NULL;
	}
	return gw;
}

int gateway_run(struct gateway *gw)
{
	struct gw_runtime *rt = (struct gw_runtime *)gw;
	struct status_snapshot snap;
	char line[512];
	gateway_snapshot(gw, &snap);
	status_line(&snap, line, sizeof line);
	log_event(LOG_NOTICE, EV_GATEWAY_READY, NULL, "iotgw %s ready: %s", gw->cfg->gateway.name,
		  line);
	/* The status file first: once READY=1, `iotgw --spool-stats` answers. */
	gateway_write_status(gw);
	sdn_ready(line);
	ev_timer_start(gw->loop, &rt->status_timer, STATUS_INTERVAL_MS);
	gateway_restart_stats(rt);
	ev_timer_start(gw->loop, &rt->expiry_timer, EXPIRY_INTERVAL_MS);
	ev_timer_start(gw->loop, &rt->forget_timer, 0);
	ev_timer_start(gw->loop, &rt->tls_sessions_timer, TLS_SESSIONS_SAVE_MS);
	rt->watchdog_ms = sdn_watchdog_interval_ms();
	if (rt->watchdog_ms) {
		sdn_watchdog();
		ev_timer_start(gw->loop, &rt->watchdog_timer, rt->watchdog_ms);
	}
	if (ev_run(gw->loop) != 0) {
		log_event(LOG_CRIT, EV_LOOP_FAILED, NULL, "epoll_wait: %s", strerror(errno));
		return 1;
	}
	before_sleep(gw->loop, gw); /* what the last iteration read */
	save_tls_sessions(gw, true);
	uint64_t left = spool_count(gw->spool);
	if (left)
		log_event(LOG_NOTICE, EV_SPOOL_KEPT, NULL,
			  "%llu message(s) not yet acknowledged upstream stay in %s and are sent "
			  "after the next start",
			  (unsigned long long)left, spool_path(gw->spool));
	gateway_write_status(gw);
	log_flush_suppressed(true);
	log_event(LOG_NOTICE, EV_GATEWAY_STOPPED, NULL, "stopped");
	return 0;
}

void gateway_free(struct gateway *gw)
{
	if (!gw)
		return;
	struct gw_runtime *rt = (struct gw_runtime *)gw;
	/* From here on one thread: the workers' threads end first. */
	workers_stop(gw);
	GW_FOR_EACH_WORKER(gw, w)
		while (w->sessions)
			session_close(w->sessions, LOG_DEBUG, EV_DEVICE_DISCONNECTED,
				      "gateway exiting");
	while (gw->listeners) {
		struct listener *next = gw->listeners->next;
		listener_close(gw->listeners);
		gw->listeners = next;
	}
	if (gw->up)
		upstream_free(gw->up);
	/* After the sessions and the upstream that call into it, before the
	 * loop (its timer) and the database (its statements). */
	downlink_free(gw->dl);
	metrics_http_close(gw->http);
	/* Before the sessions' memory goes (ev_loop_free): their password
	 * checks (the threads first, then each worker's port), their batches
	 * and the news for them. */
	pwcheck_free(gw->pwcheck);
	gw->pwcheck = NULL;
	GW_FOR_EACH_WORKER(gw, w)
		worker_free(w);
	owner_free(gw);
	if (gw->loop) {
		if (rt->sigfd >= 0)
			ev_io_stop(gw->loop, &rt->sig_io);
		ev_timer_stop(gw->loop, &rt->status_timer);
		ev_timer_stop(gw->loop, &rt->watchdog_timer);
		ev_timer_stop(gw->loop, &rt->drain_timer);
		ev_timer_stop(gw->loop, &rt->expiry_timer);
		ev_timer_stop(gw->loop, &rt->stats_timer);
		ev_timer_stop(gw->loop, &rt->forget_timer);
		ev_timer_stop(gw->loop, &rt->tls_sessions_timer);
		ingest_free(gw->ingest);
		gw->ingest = NULL;
		watch_free(rt->watch);
		ev_loop_free(gw->loop); /* runs deferred frees of sessions */
	}
	listener_reap(gw); /* no session is left to name them */
	if (rt->sigfd >= 0)
		close(rt->sigfd);
	spool_close(gw->spool);
	strmap_free(gw->by_client_id, NULL);
	free(gw->workers);
	strmap_free(gw->hs_by_addr, NULL);
	strmap_free(gw->auth_fails, free);
	gateway_conn_rates_free(gw);
	if (gw->cfg) {
		cfg_free(gw->cfg);
		free(gw->cfg);
	}
	pthread_mutex_destroy(&gw->admit_mu);
	pthread_mutex_destroy(&gw->park.mu);
	pthread_cond_destroy(&gw->park.cv);
	free(rt);
}
