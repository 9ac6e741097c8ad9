/* gateway_config: a configuration file made into the running gateway.
 * gateway_prepare builds everything that can fail (TLS contexts, ACLs,
 * password files) and reports what expires soon before anything changes,
 * so `iotgw -t` (gateway_check_config), the start and a reload check
 * alike; gateway_apply then binds new listeners, updates kept ones, closes
 * removed ones and swaps the configuration in. A reload comes from SIGHUP
 * (gateway.c) or from watched TLS and password files changing (here). */
#include "iotgw/gateway.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "gateway_config.h"
#include "gateway_int.h"
#include "worker.h"
#include "iotgw/auth.h"
#include "iotgw/cpus.h"
#include "iotgw/log.h"
#include "iotgw/downlink.h"
#include "iotgw/reading.h"
#include "iotgw/sdnotify.h"
#include "iotgw/tls_ctx.h"
#include "iotgw/version.h"
#include "iotgw/watch.h"
#include "metrics_http.h"

/* ---- preparing and checking ---- */

void gateway_prepared_free(struct prepared *p)
{
	for (size_t i = 0; p->parts && i < p->nparts; i++) {
		if (p->parts[i].ctx)
			SSL_CTX_free(p->parts[i].ctx);
		auth_acl_free(p->parts[i].acl);
		auth_acl_free(p->parts[i].sub_acl);
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
	if (auth_acl_compile(l->subscribe_acl, &parts->sub_acl, why, sizeof why) != 0)
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

unsigned gateway_threads_resolve(unsigned configured, char *why, size_t cap)
{
	if (configured) {
		snprintf(why, cap, "%u", configured);
		return configured;
	}
	struct cpus c;
	cpus_available(&c);
	unsigned n = cpus_usable(&c);
	if (c.quota)
		snprintf(why, cap, "auto: %u CPU(s) in the affinity, a CPU quota of %u at %s",
			 c.affinity, c.quota, c.quota_at);
	else
		snprintf(why, cap, "auto: %u CPU(s) in the affinity, no CPU quota", c.affinity);
	return n > CFG_THREADS_MAX ? CFG_THREADS_MAX : n;
}

void gateway_threads_name(unsigned configured, char *out, size_t cap)
{
	if (configured)
		snprintf(out, cap, "%u", configured);
	else
		snprintf(out, cap, "auto");
}

int gateway_prepare(const char *path, struct prepared *p, cfg_diag_fn diag, void *dctx)
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
	int errors = gateway_prepare(path, &p, diag, dctx);
	struct iotgw_config cfg = p.cfg;
	memset(&p.cfg, 0, sizeof p.cfg);
	gateway_prepared_free(&p);
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
void gateway_diag_to_log(void *ctx, enum cfg_severity sev, const char *file, int line,
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
	if (l->tls == CFG_TLS_OFF && l->proxy_identity == CFG_PROXY_ID_SSL_CN)
		log_event(LOG_WARNING, EV_PLAINTEXT_LISTENER, &f,
			  "listener %s on %s is plaintext behind a TLS-terminating balancer: "
			  "devices are named by its certificate CN (proxy_identity = ssl-cn), "
			  "so any host in proxy_from can claim any device",
			  l->name, l->bind_desc);
	else if (l->tls == CFG_TLS_OFF)
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
/* The upstream's callbacks into the downlink. */
static void command_in(void *arg, const char *topic, const void *payload, size_t len)
{
	downlink_command_in(arg, topic, payload, len);
}

static bool command_hold(void *arg)
{
	return downlink_holding_acks(arg);
}

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
int gateway_apply(struct gateway *gw, struct prepared *p)
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

	if (gw->cfg && gw->cfg->gateway.threads != p->cfg.gateway.threads) {
		/* Threads are started once; connections may be on them. */
		char was[16], now[16];
		gateway_threads_name(gw->cfg->gateway.threads, was, sizeof was);
		gateway_threads_name(p->cfg.gateway.threads, now, sizeof now);
		log_event(LOG_WARNING, EV_CONFIG_WARNING, NULL,
			  "[gateway] threads changed to %s: takes effect at the next start; still "
			  "%s (%u thread(s))",
			  now, was, gw->nworkers);
		p->cfg.gateway.threads = gw->cfg->gateway.threads;
	}
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
	gateway_prepared_free(p);
	log_set_level(gw->cfg->gateway.log_level);
	spool_set_limits(gw->spool, gw->cfg->spool.max_messages, gw->cfg->spool.max_bytes,
			 gw->cfg->spool.min_free);
	/* Rules, topics and shares; devices held over their share are
	 * rechecked before the loop sleeps, not only once the upstream takes
	 * readings. */
	ingest_configure(gw->ingest, gw->cfg);
	spool_set_durability(gw->spool, gw->cfg->spool.durability);
	for (struct listener *l = gw->listeners; l; l = l->next)
		log_if_legacy(l);
	if (configure_presence(gw) != 0 ||
	    downlink_configure(gw->dl, &gw->cfg->downlink, gw->cfg->gateway.name) != 0 ||
	    upstream_set_downlink(gw->up, downlink_subscription(gw->dl), command_in,
				  command_hold, gw->dl) != 0 ||
	    upstream_configure(gw->up, &gw->cfg->upstream, up_ctx) != 0)
		log_event(LOG_ERR, EV_CONFIG_RELOAD_FAILED, NULL,
			  "out of memory applying upstream settings");
	return 0;
}

static void on_files_changed(void *arg)
{
	struct gw_runtime *rt = arg;
	if (rt->gw.stopping)
		return;
	log_event(LOG_NOTICE, EV_TLS_FILES_CHANGED, NULL,
		  "certificate, key, CA, CRL or password files changed: reloading");
	gateway_reload(rt);
}

static void add_path(const char **paths, size_t *n, const struct cfg_path *p)
{
	if (p->path)
		paths[(*n)++] = p->path;
}

/* watch_tls_files: the files every TLS context and password check is built
 * from; a change reloads exactly like SIGHUP. */
void gateway_update_watch(struct gw_runtime *rt)
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

void gateway_restart_stats(struct gw_runtime *rt)
{
	const struct cfg_upstream *u = &rt->gw.cfg->upstream;
	if (strcmp(u->stats_topic, "none") == 0)
		ev_timer_stop(rt->gw.loop, &rt->stats_timer);
	else
		ev_timer_start(rt->gw.loop, &rt->stats_timer, u->stats_interval_ms);
}

void gateway_reload(struct gw_runtime *rt)
{
	struct gateway *gw = &rt->gw;
	sdn_reloading();
	char *path = strdup(gw->cfg->path);
	struct prepared p;
	int errors = path ? gateway_prepare(path, &p, gateway_diag_to_log, NULL) : 1;
	if (errors) {
		gw->m.reloads_failed++;
		log_event(LOG_ERR, EV_CONFIG_RELOAD_FAILED, NULL,
			  "%s: %d error(s); keeping the running configuration",
			  path ? path : "config", errors);
		if (path)
			gateway_prepared_free(&p);
	} else if ((workers_park(gw), gateway_apply(gw, &p)) != 0) {
		workers_unpark(gw);
		gw->m.reloads_failed++;
		log_event(LOG_ERR, EV_CONFIG_RELOAD_FAILED, NULL,
			  "%s: cannot apply; keeping the running configuration", path);
		gateway_prepared_free(&p);
	} else {
		log_event(LOG_NOTICE, EV_CONFIG_RELOADED, NULL,
			  "configuration %s reloaded; %zu connection(s) kept", path,
			  gateway_sessions(gw));
		gw->m.reloads_ok++;
		gateway_update_watch(rt);
		gateway_restart_stats(rt);
		/* Devices the new configuration would not let in any more
		 * (the workers still parked: their sessions are ours to close). */
		GW_FOR_EACH_WORKER(gw, w) {
			struct session *next;
			for (struct session *s = w->sessions; s; s = next) {
				next = session_next(s);
				session_recheck(s);
			}
		}
		workers_unpark(gw);
	}
	free(path);
	struct status_snapshot snap;
	char line[512];
	gateway_snapshot(gw, &snap);
	status_line(&snap, line, sizeof line);
	sdn_ready(line);
}
