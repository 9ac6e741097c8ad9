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

#include "gateway_int.h"
#include "iotgw/decoder.h"
#include "iotgw/log.h"
#include "iotgw/reading.h"
#include "iotgw/sdnotify.h"
#include "iotgw/tls_ctx.h"

#define STATUS_INTERVAL_MS 5000
#define RESUME_FILL 0.9        /* resume devices once the spool is below 90% */
#define SHUTDOWN_DRAIN_MS 5000 /* on stop, give upstream this long to take the queue */

struct device_state {
	uint64_t seq;
};

struct gw_runtime {
	struct gateway gw;
	int sigfd;
	struct ev_io sig_io;
	struct ev_timer status_timer;
	struct ev_timer watchdog_timer;
	struct ev_timer drain_timer;
	uint64_t watchdog_ms;
	bool stopping;
};

/* A configuration with its TLS contexts built, ready to be applied. */
struct prepared {
	struct iotgw_config cfg;
	SSL_CTX **ctxs; /* one per listener, NULL for tls = off */
};

static void prepared_free(struct prepared *p)
{
	for (size_t i = 0; p->ctxs && i < p->cfg.nlisteners; i++)
		if (p->ctxs[i])
			SSL_CTX_free(p->ctxs[i]);
	free(p->ctxs);
	p->ctxs = NULL;
	cfg_free(&p->cfg);
}

/* Counts errors as they are reported, so the total is exact whichever
 * layer (parser, TLS, upstream files) found them. */
struct diag_counter {
	cfg_diag_fn fn;
	void *ctx;
	int errors;
};

static void counting_diag(void *ctx, enum cfg_severity sev, const char *file, int line,
			  const char *msg)
{
	struct diag_counter *c = ctx;
	if (sev == CFG_ERROR)
		c->errors++;
	c->fn(c->ctx, sev, file, line, msg);
}

static int prepare(const char *path, struct prepared *p, cfg_diag_fn diag, void *dctx)
{
	struct diag_counter dc = {diag, dctx, 0};
	memset(p, 0, sizeof *p);
	/* Files are checked even when the syntax has errors, so that one
	 * `iotgw -t` run reports every problem. */
	(void)cfg_load_file(path, &p->cfg, counting_diag, &dc);
	p->ctxs = calloc(p->cfg.nlisteners ? p->cfg.nlisteners : 1, sizeof *p->ctxs);
	if (!p->ctxs) {
		counting_diag(&dc, CFG_ERROR, path, 0, "out of memory");
		return dc.errors;
	}
	for (size_t i = 0; i < p->cfg.nlisteners; i++) {
		const struct cfg_listener *l = &p->cfg.listeners[i];
		if (l->tls == CFG_TLS_OFF)
			continue;
		p->ctxs[i] = tls_ctx_listener(l, path, counting_diag, &dc);
	}
	(void)tls_check_upstream(&p->cfg.upstream, path, counting_diag, &dc);
	return dc.errors;
}

int gateway_check_config(const char *path, struct iotgw_config *out, cfg_diag_fn diag,
			 void *dctx)
{
	struct prepared p;
	int errors = prepare(path, &p, diag, dctx);
	for (size_t i = 0; p.ctxs && i < p.cfg.nlisteners; i++)
		if (p.ctxs[i])
			SSL_CTX_free(p.ctxs[i]);
	free(p.ctxs);
	if (errors) {
		cfg_free(&p.cfg);
		return errors;
	}
	*out = p.cfg;
	return 0;
}

/* Config problems found at runtime (SIGHUP) go to the log. */
static void diag_to_log(void *ctx, enum cfg_severity sev, const char *file, int line,
			const char *msg)
{
	(void)ctx;
	if (line > 0)
		log_event(sev == CFG_ERROR ? LOG_ERR : LOG_WARNING,
			  sev == CFG_ERROR ? "config_error" : "config_warning", NULL, "%s:%d: %s",
			  file, line, msg);
	else
		log_event(sev == CFG_ERROR ? LOG_ERR : LOG_WARNING,
			  sev == CFG_ERROR ? "config_error" : "config_warning", NULL, "%s: %s",
			  file, msg);
}

/* ---- ingestion ---- */

const struct dec_rule *gateway_rules(const struct gateway *gw, size_t *n)
{
	if (gw->cfg->nrules) {
		*n = gw->cfg->nrules;
		return gw->cfg->rules;
	}
	return dec_default_rules(n);
}

static struct device_state *device_state(struct gateway *gw, const char *device)
{
	struct device_state *d = strmap_get(gw->devices, device);
	if (d)
		return d;
	d = calloc(1, sizeof *d);
	if (d && strmap_put(gw->devices, device, d) != 0) {
		free(d);
		d = NULL;
	}
	return d;
}

enum ingest_result gateway_ingest(struct gateway *gw, const char *device,
				  const struct log_fields *f, const struct mqtt_publish *pub)
{
	const struct iotgw_config *cfg = gw->cfg;
	struct device_state *dev = device_state(gw, device);
	if (!dev)
		return INGEST_FULL; /* out of memory: hold the device back, do not drop */
	size_t nrules;
	const struct dec_rule *rules = gateway_rules(gw, &nrules);
	const struct dec_rule *rule =
		dec_rule_for(rules, nrules, pub->topic.ptr, pub->topic.len, device);
	char event[64];
	bool has_event =
		dec_watson_event(pub->topic.ptr, pub->topic.len, event, sizeof event) == 0;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);

	struct dec_result value;
	char why[256] = "no [decode] rule matches this topic";
	bool ok = rule && dec_payload(rule, pub->payload, pub->payload_len, &value, why,
				      sizeof why) == 0;
	char *json;
	char topic[512];
	int tlen;
	if (ok) {
		struct reading r = {
			.device = device,
			.gateway = cfg->gateway.name,
			.event = has_event ? event : NULL,
			.seq = dev->seq + 1,
			.ts = now,
			.value = value,
		};
		json = reading_to_json(&r);
		tlen = reading_topic(cfg->upstream.topic, device, cfg->gateway.name,
				     has_event ? event : NULL, topic, sizeof topic);
	} else {
		json = deadletter_to_json(device, cfg->gateway.name, now, pub->topic.ptr,
					  pub->topic.len, why, pub->payload, pub->payload_len);
		tlen = reading_topic(cfg->upstream.dead_letter_topic, device, cfg->gateway.name,
				     has_event ? event : NULL, topic, sizeof topic);
	}
	if (!json || tlen < 0) {
		free(json);
		return INGEST_FULL;
	}
	if (spool_put(gw->spool, topic, json, strlen(json), ev_now_ms(gw->loop)) != 0) {
		free(json);
		return INGEST_FULL;
	}
	free(json);
	gw->kick_upstream = true;
	if (ok) {
		dev->seq++;
		gw->stats.readings++;
		if (log_enabled(LOG_DEBUG))
			log_event(LOG_DEBUG, "reading_accepted", f, "%.*s: %.2f C (seq %llu)",
				  (int)pub->topic.len, pub->topic.ptr, value.temperature_c,
				  (unsigned long long)dev->seq);
	} else {
		gw->stats.rejected++;
		log_event(LOG_WARNING, "payload_rejected", f,
			  "payload on %.*s rejected: %s; sent to dead-letter topic %s",
			  (int)pub->topic.len, pub->topic.ptr, why, topic);
	}
	return INGEST_OK;
}

void gateway_spool_full(struct gateway *gw)
{
	if (gw->spool_full)
		return;
	gw->spool_full = true;
	log_event(LOG_WARNING, "queue_full", NULL,
		  "spool full (%llu messages, %llu bytes): holding devices back until upstream "
		  "catches up",
		  (unsigned long long)spool_count(gw->spool),
		  (unsigned long long)spool_bytes(gw->spool));
	for (struct session *s = gw->sessions; s; s = session_next(s))
		session_pause(s);
}

static void on_upstream_progress(void *arg)
{
	struct gateway *gw = arg;
	if (!gw->spool_full || spool_fill(gw->spool) >= RESUME_FILL)
		return;
	gw->spool_full = false;
	log_event(LOG_NOTICE, "queue_resumed", NULL, "spool below %.0f%%: reading devices again",
		  RESUME_FILL * 100);
	for (struct session *s = gw->sessions; s && !gw->spool_full; s = session_next(s))
		session_resume(s);
}

/* ---- status and watchdog ---- */

static void format_status(struct gateway *gw, char *out, size_t cap)
{
	snprintf(out, cap,
		 "%zu connections; upstream %s; spool %llu queued (oldest %llus)%s; %llu "
		 "readings, %llu rejected",
		 gw->nsessions, upstream_state_name(gw->up),
		 (unsigned long long)spool_count(gw->spool),
		 (unsigned long long)(spool_oldest_age_ms(gw->spool, ev_now_ms(gw->loop)) / 1000),
		 gw->spool_full ? " FULL" : "", (unsigned long long)gw->stats.readings,
		 (unsigned long long)gw->stats.rejected);
}

static void on_status_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct gw_runtime *rt = t->arg;
	char status[256];
	format_status(&rt->gw, status, sizeof status);
	sdn_status(status);
	ev_timer_start(loop, t, STATUS_INTERVAL_MS);
}

static void on_watchdog_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct gw_runtime *rt = t->arg;
	/* Pinged from the loop itself: a stuck loop stops the pings. */
	sdn_watchdog();
	ev_timer_start(loop, t, rt->watchdog_ms);
}

static void before_sleep(struct ev_loop *loop, void *arg)
{
	(void)loop;
	struct gateway *gw = arg;
	if (gw->kick_upstream) {
		gw->kick_upstream = false;
		upstream_kick(gw->up);
	}
}

/* ---- listeners and reload ---- */

/* The link that points at the listener bound where c binds, or at the
 * list's terminating NULL. Listeners are identified by address, not name. */
static struct listener **find_listener(struct listener **list, const struct cfg_listener *c)
{
	while (*list && !((*list)->port == c->port && strcmp((*list)->bind_host, c->bind_host) == 0))
		list = &(*list)->next;
	return list;
}

static void log_listener(const struct listener *l)
{
	struct log_fields f = {.listener = l->name};
	log_event(LOG_INFO, "listener_bound", &f, "listening on %s (tls %s)", l->bind_desc,
		  cfg_tls_mode_name(l->tls));
	if (l->tls == CFG_TLS_OFF)
		log_event(LOG_WARNING, "plaintext_listener", &f,
			  "listener %s on %s is plaintext: readings and client ids travel "
			  "unencrypted and devices are not authenticated",
			  l->name, l->bind_desc);
}

/* Applies a prepared configuration: binds new listeners first (so a bind
 * failure changes nothing), then updates kept ones, closes removed ones and
 * swaps the config. Consumes p on success. */
static int apply(struct gateway *gw, struct prepared *p)
{
	/* The new level applies from the first line this config causes. */
	int old_level = gw->cfg ? gw->cfg->gateway.log_level : LOG_INFO;
	log_set_level(p->cfg.gateway.log_level);
	size_t n = p->cfg.nlisteners;
	struct listener **fresh = calloc(n ? n : 1, sizeof *fresh);
	bool *keep = calloc(n ? n : 1, sizeof *keep);
	if (!fresh || !keep) {
		free(fresh);
		free(keep);
		log_event(LOG_ERR, "config_reload_failed", NULL, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct cfg_listener *c = &p->cfg.listeners[i];
		if (*find_listener(&gw->listeners, c)) {
			keep[i] = true;
			continue;
		}
		char err[256];
		fresh[i] = listener_open(gw, c, p->ctxs[i], err, sizeof err);
		if (!fresh[i]) {
			struct log_fields f = {.listener = c->name};
			log_event(LOG_ERR, "listener_failed", &f, "%s:%d: listener %s: %s",
				  p->cfg.path ? p->cfg.path : "config", c->line, c->name, err);
			for (size_t j = 0; j < i; j++)
				if (fresh[j]) {
					fresh[j]->ctx = NULL; /* still owned by p */
					listener_close(fresh[j]);
				}
			free(fresh);
			free(keep);
			log_set_level(old_level);
			return -1;
		}
		p->ctxs[i] = NULL; /* now owned by the listener */
	}
	/* Commit. Kept listeners take the new settings and context. */
	struct listener *old = gw->listeners, *list = NULL;
	gw->listeners = NULL;
	for (size_t i = 0; i < n; i++) {
		struct listener *l;
		if (keep[i]) {
			struct listener **pp = find_listener(&old, &p->cfg.listeners[i]);
			l = *pp;
			*pp = l->next;
			listener_update(l, &p->cfg.listeners[i], p->ctxs[i]);
			p->ctxs[i] = NULL;
			char *name = strdup(p->cfg.listeners[i].name);
			if (name) {
				free(l->name);
				l->name = name;
			}
		} else {
			l = fresh[i];
			log_listener(l);
		}
		l->next = list;
		list = l;
	}
	gw->listeners = list;
	while (old) {
		struct listener *next = old->next;
		struct log_fields f = {.listener = old->name};
		log_event(LOG_INFO, "listener_closed", &f,
			  "listener %s on %s removed; its %u connection(s) stay up", old->name,
			  old->bind_desc, old->nconns);
		listener_close(old);
		old = next;
	}
	free(fresh);
	free(keep);

	if (gw->cfg) {
		cfg_free(gw->cfg);
	} else {
		gw->cfg = calloc(1, sizeof *gw->cfg);
		if (!gw->cfg)
			abort();
	}
	*gw->cfg = p->cfg;
	memset(&p->cfg, 0, sizeof p->cfg);
	free(p->ctxs);
	p->ctxs = NULL;
	log_set_level(gw->cfg->gateway.log_level);
	spool_set_limits(gw->spool, gw->cfg->spool.max_messages, gw->cfg->spool.max_bytes);
	if (upstream_configure(gw->up, &gw->cfg->upstream) != 0)
		log_event(LOG_ERR, "config_reload_failed", NULL,
			  "out of memory applying upstream settings");
	return 0;
}

static void reload(struct gw_runtime *rt)
{
	struct gateway *gw = &rt->gw;
	sdn_reloading();
	char *path = strdup(gw->cfg->path);
	struct prepared p;
	int errors = path ? prepare(path, &p, diag_to_log, NULL) : 1;
	char status[256];
	if (errors) {
		log_event(LOG_ERR, "config_reload_failed", NULL,
			  "%s: %d error(s); keeping the running configuration",
			  path ? path : "config", errors);
		if (path)
			prepared_free(&p);
	} else if (apply(gw, &p) != 0) {
		log_event(LOG_ERR, "config_reload_failed", NULL,
			  "%s: cannot apply; keeping the running configuration", path);
		prepared_free(&p);
	} else {
		log_event(LOG_NOTICE, "config_reloaded", NULL,
			  "configuration %s reloaded; %zu connection(s) kept", path,
			  gw->nsessions);
	}
	free(path);
	format_status(gw, status, sizeof status);
	sdn_ready(status);
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
	if (rt->stopping) {
		finish(rt); /* a second signal: stop now */
		return;
	}
	rt->stopping = true;
	sdn_stopping();
	log_event(LOG_NOTICE, "gateway_stopping", NULL, "%s received; stopping (%zu connections)",
		  strsignal(signo), gw->nsessions);
	while (gw->listeners) {
		struct listener *next = gw->listeners->next;
		listener_close(gw->listeners);
		gw->listeners = next;
	}
	for (struct session *s = gw->sessions; s; s = session_next(s))
		session_close(s, LOG_INFO, "device_disconnected", "gateway stopping");
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
	if (rt->stopping && spool_count(rt->gw.spool) == 0)
		finish(rt);
}

static void on_progress(void *arg)
{
	struct gw_runtime *rt = arg;
	on_upstream_progress(&rt->gw);
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
			if (!rt->stopping)
				reload(rt);
		} else {
			begin_stop(rt, (int)si.ssi_signo);
		}
	}
}

/* ---- lifecycle ---- */

struct gateway *gateway_new(const char *path)
{
	struct gw_runtime *rt = calloc(1, sizeof *rt);
	if (!rt)
		return NULL;
	struct gateway *gw = &rt->gw;
	rt->sigfd = -1;
	gw->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	gw->loop = ev_loop_new();
	gw->by_client_id = strmap_new();
	gw->devices = strmap_new();
	gw->spool = spool_new(1, 1); /* real limits arrive with the config in apply() */
	if (!gw->loop || !gw->by_client_id || !gw->devices || !gw->spool) {
		log_event(LOG_CRIT, "startup_failed", NULL, "out of memory");
		gateway_free(gw);
		return NULL;
	}
	gw->up = upstream_new(gw->loop, gw->spool, on_progress, rt);
	if (!gw->up) {
		log_event(LOG_CRIT, "startup_failed", NULL, "cannot create upstream client");
		gateway_free(gw);
		return NULL;
	}
	/* Signals arrive as events in the loop, never as asynchronous handlers. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	rt->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (rt->sigfd < 0 || ev_io_start(gw->loop, &rt->sig_io, rt->sigfd, EPOLLIN, on_signal, rt)) {
		log_event(LOG_CRIT, "startup_failed", NULL, "signalfd: %s", strerror(errno));
		gateway_free(gw);
		return NULL;
	}
	ev_timer_init(&rt->status_timer, on_status_timer, rt);
	ev_timer_init(&rt->watchdog_timer, on_watchdog_timer, rt);
	ev_timer_init(&rt->drain_timer, on_drain_timer, rt);
	ev_set_before_sleep(gw->loop, before_sleep, gw);

	/* Startup goes through the same prepare/apply path as a reload. */
	struct prepared p;
	int errors = prepare(path, &p, diag_to_log, NULL);
	if (errors || apply(gw, &p) != 0) {
		if (errors)
			log_event(LOG_CRIT, "startup_failed", NULL, "configuration has %d error(s)",
				  errors);
		prepared_free(&p);
		gateway_free(gw);
		return NULL;
	}
	return gw;
}

int gateway_run(struct gateway *gw)
{
	struct gw_runtime *rt = (struct gw_runtime *)gw;
	char status[256];
	format_status(gw, status, sizeof status);
	log_event(LOG_NOTICE, "gateway_ready", NULL, "iotgw %s ready: %s", gw->cfg->gateway.name,
		  status);
	sdn_ready(status);
	ev_timer_start(gw->loop, &rt->status_timer, STATUS_INTERVAL_MS);
	rt->watchdog_ms = sdn_watchdog_interval_ms();
	if (rt->watchdog_ms) {
		sdn_watchdog();
		ev_timer_start(gw->loop, &rt->watchdog_timer, rt->watchdog_ms);
	}
	if (ev_run(gw->loop) != 0) {
		log_event(LOG_CRIT, "loop_failed", NULL, "epoll_wait: %s", strerror(errno));
		return 1;
	}
	uint64_t left = spool_count(gw->spool);
	if (left)
		log_event(LOG_ERR, "queue_discarded", NULL,
			  "%llu queued message(s) not yet acknowledged upstream are dropped at "
			  "exit (the in-memory spool does not survive a restart)",
			  (unsigned long long)left);
	log_event(LOG_NOTICE, "gateway_stopped", NULL, "stopped");
	return 0;
}

static void free_device(void *p)
{
	free(p);
}

void gateway_free(struct gateway *gw)
{
	if (!gw)
		return;
	struct gw_runtime *rt = (struct gw_runtime *)gw;
	while (gw->sessions)
		session_close(gw->sessions, LOG_DEBUG, "device_disconnected", "gateway exiting");
	while (gw->listeners) {
		struct listener *next = gw->listeners->next;
		listener_close(gw->listeners);
		gw->listeners = next;
	}
	if (gw->up)
		upstream_free(gw->up);
	if (gw->loop) {
		if (rt->sigfd >= 0)
			ev_io_stop(gw->loop, &rt->sig_io);
		ev_timer_stop(gw->loop, &rt->status_timer);
		ev_timer_stop(gw->loop, &rt->watchdog_timer);
		ev_timer_stop(gw->loop, &rt->drain_timer);
		ev_loop_free(gw->loop); /* runs deferred frees of sessions */
	}
	if (rt->sigfd >= 0)
		close(rt->sigfd);
	if (gw->reserve_fd >= 0)
		close(gw->reserve_fd);
	spool_free(gw->spool);
	strmap_free(gw->by_client_id, NULL);
	strmap_free(gw->devices, free_device);
	if (gw->cfg) {
		cfg_free(gw->cfg);
		free(gw->cfg);
	}
	free(rt);
}
