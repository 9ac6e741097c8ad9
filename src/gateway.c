#include "iotgw/gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <limits.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "gateway_int.h"
#include "iotgw/auth.h"
#include "iotgw/decoder.h"
#include "iotgw/log.h"
#include "iotgw/reading.h"
#include "iotgw/sdnotify.h"
#include "iotgw/tls_ctx.h"
#include "iotgw/version.h"
#include "iotgw/watch.h"
#include "metrics_http.h"

#define STATUS_INTERVAL_MS 1000
#define EXPIRY_INTERVAL_MS (24ull * 3600 * 1000) /* own certificates and CRLs, daily */
#define SHUTDOWN_DRAIN_MS 5000 /* on stop, give upstream this long to take the queue */

struct gw_runtime {
	struct gateway gw;
	int sigfd;
	struct ev_io sig_io;
	struct ev_timer status_timer;
	struct ev_timer watchdog_timer;
	struct ev_timer drain_timer;
	struct ev_timer expiry_timer; /* daily look at our certificates' and CRLs' expiry */
	struct ev_timer stats_timer;  /* [upstream] stats_topic */
	uint64_t watchdog_ms;
	struct watch *watch; /* watch_tls_files = yes */
};

/* A configuration with its TLS contexts built, ready to be applied. */
struct prepared {
	struct iotgw_config cfg;
	struct listener_parts *parts; /* one per listener */
	size_t nparts;
	SSL_CTX *up_ctx;              /* upstream client context; NULL for tls = off */
};

static void prepared_free(struct prepared *p)
{
	for (size_t i = 0; p->parts && i < p->nparts; i++) {
		if (p->parts[i].ctx)
			SSL_CTX_free(p->parts[i].ctx);
		auth_acl_free(p->parts[i].acl);
		auth_pwfile_free(p->parts[i].pwfile);
	}
	free(p->parts);
	p->parts = NULL;
	if (p->up_ctx)
		SSL_CTX_free(p->up_ctx);
	p->up_ctx = NULL;
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

static void pw_diag(void *ctx, const char *file, int line, const char *msg)
{
	counting_diag(ctx, CFG_ERROR, file, line, msg);
}

static void prepare_auth(const struct cfg_listener *l, struct listener_parts *parts,
			 const char *path, struct diag_counter *dc)
{
	char why[256];
	if (trust_acl_enforced(l) &&
	    auth_acl_from_list((const char *const *)l->publish_acl, l->npublish_acl, &parts->acl,
			       why, sizeof why) != 0)
		counting_diag(dc, CFG_ERROR, path, l->line, why);
	if (l->password_file.path)
		(void)auth_pwfile_load(l->password_file.path, &parts->pwfile, pw_diag, dc);
}

/* Expiry at start and reload: a warning with the line of the file. */
struct expiry_report {
	struct diag_counter *dc;
	const char *path, *who;
	int cert_line, crl_line;
};

static void report_expiry(void *arg, enum tls_expiry_kind kind, bool expired, const char *text)
{
	struct expiry_report *r = arg;
	char msg[600];
	snprintf(msg, sizeof msg, "%s: %s%s", r->who, text,
		 expired ? "" : "; renew it before then (iotgw-pki, then a reload)");
	counting_diag(r->dc, CFG_WARNING, r->path,
		      kind == TLS_EXPIRY_CRL ? r->crl_line : r->cert_line, msg);
}

static void check_expiry(struct diag_counter *dc, const char *path, const struct iotgw_config *cfg,
			 const struct prepared *p)
{
	time_t now = time(NULL);
	char who[80];
	for (size_t i = 0; i < p->nparts; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];
		if (!p->parts[i].ctx)
			continue;
		snprintf(who, sizeof who, "listener '%s'", l->name ? l->name : "?");
		struct expiry_report r = {dc, path, who, l->cert.line, l->crl.line};
		tls_ctx_expiring(p->parts[i].ctx, now, cfg->gateway.expiry_warning_s, report_expiry,
				 &r);
	}
	if (p->up_ctx) {
		struct expiry_report r = {dc, path, "upstream", cfg->upstream.cert.line,
					  cfg->upstream.crl.line};
		tls_ctx_expiring(p->up_ctx, now, cfg->gateway.expiry_warning_s, report_expiry, &r);
	}
}

static int prepare(const char *path, struct prepared *p, cfg_diag_fn diag, void *dctx)
{
	struct diag_counter dc = {diag, dctx, 0};
	memset(p, 0, sizeof *p);
	/* Files are checked even when the syntax has errors, so that one
	 * `iotgw -t` run reports every problem. */
	(void)cfg_load_file(path, &p->cfg, counting_diag, &dc);
	p->parts = calloc(p->cfg.nlisteners ? p->cfg.nlisteners : 1, sizeof *p->parts);
	p->nparts = p->parts ? p->cfg.nlisteners : 0;
	if (!p->parts) {
		counting_diag(&dc, CFG_ERROR, path, 0, "out of memory");
		return dc.errors;
	}
	for (size_t i = 0; i < p->cfg.nlisteners; i++) {
		const struct cfg_listener *l = &p->cfg.listeners[i];
		if (l->tls == CFG_TLS_OFF)
			continue;
		p->parts[i].ctx = tls_ctx_listener(l, path, counting_diag, &dc);
	}
	for (size_t i = 0; i < p->cfg.nlisteners; i++)
		prepare_auth(&p->cfg.listeners[i], &p->parts[i], path, &dc);
	if (p->cfg.upstream.tls)
		p->up_ctx = tls_ctx_upstream(&p->cfg.upstream, path, counting_diag, &dc);
	check_expiry(&dc, path, &p->cfg, p);
	return dc.errors;
}

/* The spool directory as the service will meet it: writable by whoever
 * runs the check (`iotgw -t -u iotgw`, or ExecStartPre as User=), and
 * inside what the shipped unit lets it write. */
static int check_spool_dir(const char *path, const struct cfg_spool *sp, cfg_diag_fn diag,
			   void *dctx, bool as_service)
{
	char msg[PATH_MAX + 256];
	struct stat st;
	int errors = 0;
	if (stat(sp->dir, &st) != 0) {
		snprintf(msg, sizeof msg,
			 "[spool] dir %s does not exist yet: the gateway creates it at start (under "
			 "systemd, StateDirectory=iotgw makes " IOTGW_STATE_DIR ")",
			 sp->dir);
		diag(dctx, CFG_WARNING, path, 0, msg);
	} else if (!S_ISDIR(st.st_mode) || access(sp->dir, W_OK | X_OK) != 0) {
		snprintf(msg, sizeof msg,
			 "[spool] dir %s is not a directory this user (uid %ld) can write: the "
			 "spool cannot be opened; chown it to the service user",
			 sp->dir, (long)geteuid());
		diag(dctx, CFG_ERROR, path, 0, msg);
		errors++;
	}
	if (as_service && strcmp(sp->dir, IOTGW_STATE_DIR) != 0) {
		snprintf(msg, sizeof msg,
			 "[spool] dir %s is outside " IOTGW_STATE_DIR ", the only directory the "
			 "shipped unit lets the service write (ProtectSystem=strict): add "
			 "ReadWritePaths=%s with `systemctl edit iotgw`",
			 sp->dir, sp->dir);
		diag(dctx, CFG_WARNING, path, 0, msg);
	}
	return errors;
}

int gateway_check_config(const char *path, struct iotgw_config *out, cfg_diag_fn diag,
			 void *dctx, bool as_service)
{
	struct prepared p;
	int errors = prepare(path, &p, diag, dctx);
	struct iotgw_config cfg = p.cfg;
	memset(&p.cfg, 0, sizeof p.cfg);
	prepared_free(&p);
	if (!errors && cfg.spool.dir)
		errors += check_spool_dir(path, &cfg.spool, diag, dctx, as_service);
	if (errors) {
		cfg_free(&cfg);
		return errors;
	}
	*out = cfg;
	return 0;
}

/* Config problems found at runtime (SIGHUP) go to the log. */
static void diag_to_log(void *ctx, enum cfg_severity sev, const char *file, int line,
			const char *msg)
{
	(void)ctx;
	if (line > 0)
		log_event(sev == CFG_ERROR ? LOG_ERR : LOG_WARNING,
			  sev == CFG_ERROR ? EV_CONFIG_ERROR : EV_CONFIG_WARNING, NULL, "%s:%d: %s",
			  file, line, msg);
	else
		log_event(sev == CFG_ERROR ? LOG_ERR : LOG_WARNING,
			  sev == CFG_ERROR ? EV_CONFIG_ERROR : EV_CONFIG_WARNING, NULL, "%s: %s",
			  file, msg);
}

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

static void before_sleep(struct ev_loop *loop, void *arg)
{
	(void)loop;
	struct gateway *gw = arg;
	gateway_commit(gw);
	if (gw->kick_upstream) {
		gw->kick_upstream = false;
		upstream_kick(gw->up);
	}
	upstream_flush(gw->up);
}

/* ---- listeners and reload ---- */

/* The link that points at the listener bound where c binds (the same
 * addresses in the same order), or at the list's terminating NULL.
 * Listeners are identified by address, not name. */
static struct listener **find_listener(struct listener **list, const struct cfg_listener *c)
{
	char desc[CFG_BINDS_TEXT];
	cfg_binds_format(c->binds, c->nbinds, desc, sizeof desc);
	while (*list && strcmp((*list)->bind_desc, desc) != 0)
		list = &(*list)->next;
	return list;
}

static void log_listener(const struct listener *l)
{
	struct log_fields f = {.listener = l->name};
	log_event(LOG_INFO, EV_LISTENER_BOUND, &f, "listening on %s (tls %s)", l->bind_desc,
		  cfg_tls_mode_name(l->tls));
	if (l->tls == CFG_TLS_OFF)
		log_event(LOG_WARNING, EV_PLAINTEXT_LISTENER, &f,
			  "listener %s on %s is plaintext: readings and client ids travel "
			  "unencrypted and devices are not authenticated",
			  l->name, l->bind_desc);
}

/* RSA key exchange has no forward secrecy: worth a warning at every start
 * and reload that keeps it. */
static void log_if_legacy(const struct listener *l)
{
	char suites[256];
	if (!l->ctx || !tls_ctx_is_legacy(l->ctx, suites, sizeof suites))
		return;
	struct log_fields f = {.listener = l->name};
	log_event(LOG_WARNING, EV_TLS_LEGACY, &f,
		  "listener %s accepts TLS 1.2 suites without forward secrecy (%s) for old "
		  "firmware; a recorded session can be decrypted later with the server key",
		  l->name, suites);
}

/* [upstream] presence_topic: what the broker says about us (retained). */
static int configure_presence(struct gateway *gw)
{
	const struct iotgw_config *c = gw->cfg;
	char topic[512], birth[512], will[256], bye[256], started[32];
	if (strcmp(c->upstream.presence_topic, "none") == 0 ||
	    reading_topic(c->upstream.presence_topic, "", c->gateway.name, NULL, topic,
			  sizeof topic) < 0)
		return upstream_set_presence(gw->up, NULL, NULL, NULL, NULL);
	time_t t = (time_t)(gw->m.start_unix_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* The gateway name is checked to be plain characters: no escaping. */
	snprintf(birth, sizeof birth,
		 "{\"state\":\"online\",\"gateway\":\"%s\",\"version\":\"%s\","
		 "\"started\":\"%s\"}",
		 c->gateway.name, IOTGW_VERSION, started);
	snprintf(will, sizeof will,
		 "{\"state\":\"offline\",\"gateway\":\"%s\",\"reason\":\"connection lost\"}",
		 c->gateway.name);
	snprintf(bye, sizeof bye,
		 "{\"state\":\"offline\",\"gateway\":\"%s\",\"reason\":\"stopped\"}",
		 c->gateway.name);
	return upstream_set_presence(gw->up, topic, birth, will, bye);
}

/* [metrics] bind: (re)opened when its addresses changed. At start a
 * failure stops the gateway like a listener's; at reload it is logged and
 * the metrics stay off until the next reload (devices do not care). */
static int apply_metrics(struct gateway *gw, const struct cfg_metrics *m, bool starting)
{
	char want[CFG_BINDS_TEXT];
	cfg_binds_format(m->binds, m->nbinds, want, sizeof want);
	if (gw->http && strcmp(metrics_http_where(gw->http), want) == 0)
		return 0;
	metrics_http_close(gw->http);
	gw->http = NULL;
	if (m->nbinds == 0)
		return 0;
	char err[300];
	gw->http = metrics_http_open(gw, m, err, sizeof err);
	if (!gw->http) {
		log_event(LOG_ERR, EV_LISTENER_FAILED, NULL, "%s%s", err,
			  starting ? "" : "; metrics stay off until the next reload");
		return starting ? -1 : 0;
	}
	log_event(LOG_INFO, EV_LISTENER_BOUND, NULL,
		  "metrics on http://%s/metrics (also /healthz, /readyz)", want);
	return 0;
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
		log_event(LOG_ERR, EV_CONFIG_RELOAD_FAILED, NULL, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct cfg_listener *c = &p->cfg.listeners[i];
		if (*find_listener(&gw->listeners, c)) {
			keep[i] = true;
			continue;
		}
		char err[256];
		fresh[i] = listener_open(gw, c, &p->parts[i], gw->listeners, err, sizeof err);
		if (!fresh[i]) {
			struct log_fields f = {.listener = c->name};
			log_event(LOG_ERR, EV_LISTENER_FAILED, &f, "%s:%d: listener %s: %s",
				  p->cfg.path ? p->cfg.path : "config", c->line, c->name, err);
			for (size_t j = 0; j < i; j++)
				if (fresh[j])
					listener_close(fresh[j]); /* frees the parts it took */
			free(fresh);
			free(keep);
			log_set_level(old_level);
			return -1;
		}
	}
	if (apply_metrics(gw, &p->cfg.metrics, gw->cfg == NULL) != 0) {
		for (size_t j = 0; j < n; j++)
			if (fresh[j])
				listener_close(fresh[j]);
		free(fresh);
		free(keep);
		log_set_level(old_level);
		return -1;
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
			listener_update(l, &p->cfg.listeners[i], &p->parts[i]);
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
		log_event(LOG_INFO, EV_LISTENER_CLOSED, &f,
			  "listener %s on %s removed; its %u connection(s) stay up", old->name,
			  old->bind_desc, old->nconns);
		listener_close(old);
		old = next;
	}
	free(fresh);
	free(keep);

	if (gw->cfg && strcmp(gw->cfg->spool.dir, p->cfg.spool.dir) != 0) {
		/* The open spool and its lock stay where they are. */
		log_event(LOG_WARNING, EV_CONFIG_WARNING, NULL,
			  "[spool] dir changed to %s: takes effect at the next start; still "
			  "using %s",
			  p->cfg.spool.dir, gw->cfg->spool.dir);
		char *keep_dir = gw->cfg->spool.dir;
		gw->cfg->spool.dir = p->cfg.spool.dir;
		p->cfg.spool.dir = keep_dir;
	}
	if (gw->cfg) {
		cfg_free(gw->cfg);
	} else {
		gw->cfg = calloc(1, sizeof *gw->cfg);
		if (!gw->cfg)
			abort();
	}
	*gw->cfg = p->cfg;
	memset(&p->cfg, 0, sizeof p->cfg);
	SSL_CTX *up_ctx = p->up_ctx;
	p->up_ctx = NULL;
	prepared_free(p);
	log_set_level(gw->cfg->gateway.log_level);
	spool_set_limits(gw->spool, gw->cfg->spool.max_messages, gw->cfg->spool.max_bytes,
			 gw->cfg->spool.min_free);
	spool_set_durability(gw->spool, gw->cfg->spool.durability);
	for (struct listener *l = gw->listeners; l; l = l->next)
		log_if_legacy(l);
	if (configure_presence(gw) != 0 ||
	    upstream_configure(gw->up, &gw->cfg->upstream, up_ctx) != 0)
		log_event(LOG_ERR, EV_CONFIG_RELOAD_FAILED, NULL,
			  "out of memory applying upstream settings");
	return 0;
}

static void reload(struct gw_runtime *rt);

static void on_files_changed(void *arg)
{
	struct gw_runtime *rt = arg;
	if (rt->gw.stopping)
		return;
	log_event(LOG_NOTICE, EV_TLS_FILES_CHANGED, NULL,
		  "certificate, key, CA, CRL or password files changed: reloading");
	reload(rt);
}

static void add_path(const char **paths, size_t *n, const struct cfg_path *p)
{
	if (p->path)
		paths[(*n)++] = p->path;
}

/* watch_tls_files: the files every TLS context and password check is built
 * from; a change reloads exactly like SIGHUP. */
static void update_watch(struct gw_runtime *rt)
{
	struct gateway *gw = &rt->gw;
	if (!gw->cfg->gateway.watch_tls_files) {
		watch_free(rt->watch);
		rt->watch = NULL;
		return;
	}
	if (!rt->watch && !(rt->watch = watch_new(gw->loop, 1000, on_files_changed, rt))) {
		log_event(LOG_ERR, EV_WATCH_FAILED, NULL,
			  "watch_tls_files: cannot set up inotify: %s; reload with SIGHUP",
			  strerror(errno));
		return;
	}
	size_t cap = gw->cfg->nlisteners * 5 + 4, n = 0;
	const char **paths = calloc(cap, sizeof *paths);
	if (!paths)
		return;
	for (size_t i = 0; i < gw->cfg->nlisteners; i++) {
		const struct cfg_listener *l = &gw->cfg->listeners[i];
		add_path(paths, &n, &l->cert);
		add_path(paths, &n, &l->key);
		add_path(paths, &n, &l->ca);
		add_path(paths, &n, &l->crl);
		add_path(paths, &n, &l->password_file);
	}
	add_path(paths, &n, &gw->cfg->upstream.ca);
	add_path(paths, &n, &gw->cfg->upstream.cert);
	add_path(paths, &n, &gw->cfg->upstream.key);
	add_path(paths, &n, &gw->cfg->upstream.crl);
	char err[256] = "";
	int failed = watch_set(rt->watch, paths, n, err, sizeof err);
	if (failed)
		log_event(LOG_WARNING, EV_WATCH_FAILED, NULL,
			  "watch_tls_files: %d file(s) cannot be watched (%s); reload those with "
			  "SIGHUP",
			  failed, err);
	free(paths);
}

static void restart_stats(struct gw_runtime *rt)
{
	const struct cfg_upstream *u = &rt->gw.cfg->upstream;
	if (strcmp(u->stats_topic, "none") == 0)
		ev_timer_stop(rt->gw.loop, &rt->stats_timer);
	else
		ev_timer_start(rt->gw.loop, &rt->stats_timer, u->stats_interval_ms);
}

static void reload(struct gw_runtime *rt)
{
	struct gateway *gw = &rt->gw;
	sdn_reloading();
	char *path = strdup(gw->cfg->path);
	struct prepared p;
	int errors = path ? prepare(path, &p, diag_to_log, NULL) : 1;
	gw->m.reloads_failed++; /* until it succeeded */
	if (errors) {
		log_event(LOG_ERR, EV_CONFIG_RELOAD_FAILED, NULL,
			  "%s: %d error(s); keeping the running configuration",
			  path ? path : "config", errors);
		if (path)
			prepared_free(&p);
	} else if (apply(gw, &p) != 0) {
		log_event(LOG_ERR, EV_CONFIG_RELOAD_FAILED, NULL,
			  "%s: cannot apply; keeping the running configuration", path);
		prepared_free(&p);
	} else {
		log_event(LOG_NOTICE, EV_CONFIG_RELOADED, NULL,
			  "configuration %s reloaded; %zu connection(s) kept", path,
			  gw->nsessions);
		gw->m.reloads_failed--;
		gw->m.reloads_ok++;
		update_watch(rt);
		restart_stats(rt);
		/* Devices whose certificate the new CA/CRL no longer accepts. */
		struct session *next;
		for (struct session *s = gw->sessions; s; s = next) {
			next = session_next(s);
			session_recheck_cert(s);
		}
	}
	free(path);
	struct status_snapshot snap;
	char line[512];
	gateway_snapshot(gw, &snap);
	status_line(&snap, line, sizeof line);
	sdn_ready(line);
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
		  strsignal(signo), gw->nsessions);
	while (gw->listeners) {
		struct listener *next = gw->listeners->next;
		listener_close(gw->listeners);
		gw->listeners = next;
	}
	for (struct session *s = gw->sessions; s; s = session_next(s))
		session_close(s, LOG_INFO, EV_DEVICE_DISCONNECTED, "gateway stopping");
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

static void on_progress(void *arg)
{
	struct gw_runtime *rt = arg;
	gateway_maybe_resume(&rt->gw);
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
				reload(rt);
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

static int open_spool(struct gw_runtime *rt, const struct cfg_spool *cfg)
{
	struct gateway *gw = &rt->gw;
	char err[512];
	gw->spool = spool_open(cfg, err, sizeof err);
	if (!gw->spool) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "cannot open the spool: %s", err);
		return -1;
	}
	if (gateway_load_devices(gw) != 0) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL,
			  "%s: cannot read the device sequence numbers", spool_path(gw->spool));
		return -1;
	}
	log_event(LOG_INFO, EV_SPOOL_OPEN, NULL,
		  "spool %s: %llu queued (oldest %llus), %zu device(s) known, durability %s",
		  spool_path(gw->spool), (unsigned long long)spool_count(gw->spool),
		  (unsigned long long)(spool_oldest_age_ms(gw->spool, gateway_wall_ms()) / 1000),
		  strmap_size(gw->devices),
		  cfg->durability == CFG_DURABLE_FSYNC ? "fsync" : "os");
	gw->up = upstream_new(gw->loop, gw->spool, on_progress, rt);
	if (!gw->up) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "cannot create upstream client");
		return -1;
	}
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
	gw->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	gw->m.start_unix_ms = gateway_wall_ms();
	gw->loop = ev_loop_new();
	gw->by_client_id = strmap_new();
	gw->devices = strmap_new();
	if (!gw->loop || !gw->by_client_id || !gw->devices) {
		log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL, "out of memory");
		gateway_free(gw);
		return NULL;
	}
	gateway_ingest_init(gw);
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
	ev_set_before_sleep(gw->loop, before_sleep, gw);

	/* Startup goes through the same prepare/apply path as a reload; the
	 * spool opens in between, as it needs the configuration and the
	 * upstream needs the spool. */
	struct prepared p;
	int errors = prepare(path, &p, diag_to_log, NULL);
	if (!errors)
		log_set_level(p.cfg.gateway.log_level); /* before the spool logs */
	if (!errors && open_spool(rt, &p.cfg.spool) != 0) {
		prepared_free(&p);
		gateway_free(gw);
		return NULL;
	}
	if (errors || apply(gw, &p) != 0) {
		if (errors) {
			log_event(LOG_CRIT, EV_STARTUP_FAILED, NULL,
				  "configuration %s has %d error(s) (config_error lines above); "
				  "exiting with status %d",
				  path, errors, IOTGW_EXIT_CONFIG);
			*status = IOTGW_EXIT_CONFIG;
		}
		prepared_free(&p);
		gateway_free(gw);
		return NULL;
	}
	update_watch(rt);
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
	sdn_ready(line);
	gateway_write_status(gw);
	ev_timer_start(gw->loop, &rt->status_timer, STATUS_INTERVAL_MS);
	restart_stats(rt);
	ev_timer_start(gw->loop, &rt->expiry_timer, EXPIRY_INTERVAL_MS);
	rt->watchdog_ms = sdn_watchdog_interval_ms();
	if (rt->watchdog_ms) {
		sdn_watchdog();
		ev_timer_start(gw->loop, &rt->watchdog_timer, rt->watchdog_ms);
	}
	if (ev_run(gw->loop) != 0) {
		log_event(LOG_CRIT, EV_LOOP_FAILED, NULL, "epoll_wait: %s", strerror(errno));
		return 1;
	}
	gateway_commit(gw);
	uint64_t left = spool_count(gw->spool);
	if (left)
		log_event(LOG_NOTICE, EV_SPOOL_KEPT, NULL,
			  "%llu message(s) not yet acknowledged upstream stay in %s and are sent "
			  "after the next start",
			  (unsigned long long)left, spool_path(gw->spool));
	gateway_write_status(gw);
	log_event(LOG_NOTICE, EV_GATEWAY_STOPPED, NULL, "stopped");
	return 0;
}

void gateway_free(struct gateway *gw)
{
	if (!gw)
		return;
	struct gw_runtime *rt = (struct gw_runtime *)gw;
	while (gw->sessions)
		session_close(gw->sessions, LOG_DEBUG, EV_DEVICE_DISCONNECTED, "gateway exiting");
	while (gw->listeners) {
		struct listener *next = gw->listeners->next;
		listener_close(gw->listeners);
		gw->listeners = next;
	}
	if (gw->up)
		upstream_free(gw->up);
	metrics_http_close(gw->http);
	if (gw->loop) {
		if (rt->sigfd >= 0)
			ev_io_stop(gw->loop, &rt->sig_io);
		ev_timer_stop(gw->loop, &rt->status_timer);
		ev_timer_stop(gw->loop, &rt->watchdog_timer);
		ev_timer_stop(gw->loop, &rt->drain_timer);
		ev_timer_stop(gw->loop, &rt->expiry_timer);
		ev_timer_stop(gw->loop, &rt->stats_timer);
		ev_timer_stop(gw->loop, &gw->commit_retry);
		ev_io_stop(gw->loop, &gw->flush_io);
		watch_free(rt->watch);
		ev_loop_free(gw->loop); /* runs deferred frees of sessions */
	}
	if (rt->sigfd >= 0)
		close(rt->sigfd);
	if (gw->reserve_fd >= 0)
		close(gw->reserve_fd);
	spool_close(gw->spool);
	strmap_free(gw->by_client_id, NULL);
	gateway_free_devices(gw);
	buf_free(&gw->json);
	if (gw->cfg) {
		cfg_free(gw->cfg);
		free(gw->cfg);
	}
	free(rt);
}
