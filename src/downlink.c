/* downlink: commands from the upstream broker to devices; see the header
 * for what it owns and the delivery rules. */
#include "iotgw/downlink.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "downlink_int.h"
#include "iotgw/cmdtopic.h"
#include "iotgw/log.h"
#include "iotgw/mqtt_codec.h"
#include "iotgw/strmap.h"

#define EXPIRY_TICK_MS 1000
#define DEVICE_MAX 64

struct dl_sub {
	char *filter;
	uint8_t qos;
};

struct dl_device {
	struct cmd *head, *tail;
	unsigned n;
	struct dl_sub subs[DL_SUBS_MAX];
	unsigned nsubs;
	void *session; /* attached session, or NULL */
	bool clean;
	bool work; /* on the pump's list */
	struct dl_device *work_next;
	uint16_t last_pid;
	char name[];
};

struct downlink {
	struct ev_loop *loop;
	struct spool *spool;
	struct downlink_hooks hooks;
	struct dl_store *store;
	struct strmap *devices;
	struct ev_timer expiry;
	struct cfg_downlink cfg; /* strings owned here */
	char *gateway;
	char subscription[CMDTOPIC_MAX];
	bool enabled;
	uint64_t next_id, queued;
	/* Staged for the next spool commit, and the commit that must be on
	 * disk before the broker may have its PUBACKs. */
	struct cmd **ins;
	size_t nins, capins;
	uint64_t *del;
	size_t ndel, capdel;
	uint64_t hold_commit;
	struct dl_device *work;
	struct cmd *all_head, *all_tail; /* every queued command, in id order */
	struct downlink_metrics m;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the spool's transactions ---- */

static int sc_write(void *arg, struct sqlite3 *db)
{
	(void)db;
	struct downlink *dl = arg;
	return dl_store_write(dl->store, dl->ins, dl->nins, dl->del, dl->ndel);
}

static bool sc_staged(void *arg)
{
	return ((struct downlink *)arg)->nins > 0;
}

static bool sc_dirty(void *arg)
{
	struct downlink *dl = arg;
	return dl->nins > 0 || dl->ndel > 0;
}

static void sc_committed(void *arg, uint64_t commit)
{
	struct downlink *dl = arg;
	for (size_t i = 0; i < dl->nins; i++)
		dl->ins[i]->commit = commit;
	if (dl->nins)
		dl->hold_commit = commit;
	dl->nins = 0;
	dl->ndel = 0;
}

bool downlink_holding_acks(const struct downlink *dl)
{
	return dl && (dl->nins > 0 || spool_durable_commits(dl->spool) < dl->hold_commit);
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	void *q = realloc(*p, c * size);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

/* Forgets c's row: unstaged if not written yet, else a delete is staged. */
static void unstore(struct downlink *dl, struct cmd *c)
{
	if (c->commit == 0) {
		for (size_t i = 0; i < dl->nins; i++) {
			if (dl->ins[i] == c) {
				memmove(&dl->ins[i], &dl->ins[i + 1],
					(dl->nins - i - 1) * sizeof dl->ins[0]);
				dl->nins--;
				return;
			}
		}
		return;
	}
	if (grow((void **)&dl->del, &dl->capdel, dl->ndel, sizeof dl->del[0]) == 0)
		dl->del[dl->ndel++] = c->id;
	/* else: the row stays and comes back after a restart, where it
	 * expires or is delivered again (at least once). */
}

/* ---- devices ---- */

static struct dl_device *device_get(struct downlink *dl, const char *name, bool create)
{
	struct dl_device *d = strmap_get(dl->devices, name);
	if (d || !create)
		return d;
	size_t n = strlen(name);
	d = calloc(1, sizeof *d + n + 1);
	if (!d)
		return NULL;
	memcpy(d->name, name, n + 1);
	if (strmap_put(dl->devices, d->name, d) != 0) {
		free(d);
		return NULL;
	}
	return d;
}

static void want_work(struct downlink *dl, struct dl_device *d)
{
	if (d->work || !d->session)
		return;
	d->work = true;
	d->work_next = dl->work;
	dl->work = d;
}

static void subs_clear(struct dl_device *d)
{
	for (unsigned i = 0; i < d->nsubs; i++)
		free(d->subs[i].filter);
	d->nsubs = 0;
}

/* ---- outcomes ---- */

static void report(struct downlink *dl, const struct cmd *c, const char *status, const char *why)
{
	if (strcmp(dl->cfg.status_topic, "none") == 0)
		return;
	char topic[CMDTOPIC_MAX];
	struct cmdtopic_vars v = {
		.device = c->device, .command = c->name, .gateway = dl->gateway, .topic = c->topic};
	if (cmdtopic_render(dl->cfg.status_topic, &v, topic, sizeof topic) < 0)
		return;
	/* cJSON escapes the names (a command name is any text of a topic
	 * level); a status is rare, not worth a writer of its own. */
	cJSON *o = cJSON_CreateObject();
	char *body = NULL;
	if (o && cJSON_AddStringToObject(o, "device", c->device) &&
	    cJSON_AddStringToObject(o, "command", c->name) &&
	    cJSON_AddStringToObject(o, "status", status) &&
	    (!why || cJSON_AddStringToObject(o, "reason", why)) &&
	    cJSON_AddNumberToObject(o, "received", (double)c->received_ms) &&
	    cJSON_AddNumberToObject(o, "at", (double)wall_ms()))
		body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	/* Through the spool, like a reading: durable, in order, at least once. */
	if (!body || spool_put(dl->spool, NULL, topic, body, strlen(body), wall_ms()) != 0) {
		struct log_fields f = {.device = c->device};
		log_event(LOG_WARNING, EV_COMMAND_STATUS_DROPPED, &f,
			  "status '%s' of command %s not sent: %s", status, c->name,
			  body ? "the spool is full" : "out of memory");
	}
	cJSON_free(body);
}

/* Takes c off d's queue (it must be there) and frees it. */
static void remove_cmd(struct downlink *dl, struct dl_device *d, struct cmd *c)
{
	struct cmd **pp = &d->head, *prev = NULL;
	while (*pp && *pp != c) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = c->next;
	if (d->tail == c)
		d->tail = prev;
	d->n--;
	dl->queued--;
	if (c->all_prev)
		c->all_prev->all_next = c->all_next;
	else
		dl->all_head = c->all_next;
	if (c->all_next)
		c->all_next->all_prev = c->all_prev;
	else
		dl->all_tail = c->all_prev;
	unstore(dl, c);
	dl_cmd_free(c);
}

/* ---- commands in ---- */

static void reject(struct downlink *dl, const struct cmd *c, const char *why)
{
	dl->m.rejected++;
	struct log_fields f = {.device = c->device};
	log_event(LOG_WARNING, EV_COMMAND_REJECTED, &f, "command %s for %s on %s rejected: %s",
		  c->name, c->device, c->topic, why);
	report(dl, c, "rejected", why);
}

static void append(struct downlink *dl, struct dl_device *d, struct cmd *c)
{
	c->next = NULL;
	if (d->tail)
		d->tail->next = c;
	else
		d->head = c;
	d->tail = c;
	d->n++;
	dl->queued++;
	c->all_next = NULL;
	c->all_prev = dl->all_tail;
	if (dl->all_tail)
		dl->all_tail->all_next = c;
	else
		dl->all_head = c;
	dl->all_tail = c;
	if (c->id >= dl->next_id)
		dl->next_id = c->id + 1;
	if (!ev_timer_active(&dl->expiry))
		ev_timer_start(dl->loop, &dl->expiry, EXPIRY_TICK_MS);
	want_work(dl, d);
}

void downlink_command_in(struct downlink *dl, const char *topic, const void *payload, size_t len)
{
	if (!dl->enabled)
		return;
	char device[DEVICE_MAX + 1], name[CMDTOPIC_NAME_MAX + 1];
	struct cmd tmp = {.device = device, .name = name, .topic = (char *)topic};
	if (cmdtopic_parse(dl->cfg.topic, dl->gateway, topic, strlen(topic), device, sizeof device,
			   name, sizeof name) != 0) {
		dl->m.rejected++;
		log_event(LOG_WARNING, EV_COMMAND_REJECTED, NULL,
			  "message on %s ignored: it does not name a device and a command as "
			  "[downlink] topic = %s does",
			  topic, dl->cfg.topic);
		return;
	}
	dl->m.received++;
	tmp.received_ms = wall_ms();
	struct dl_device *d = device_get(dl, device, false);
	if (len > dl->cfg.max_payload) {
		char why[96];
		snprintf(why, sizeof why, "payload of %zu bytes is above max_payload (%u)", len,
			 (unsigned)dl->cfg.max_payload);
		reject(dl, &tmp, why);
		return;
	}
	if (dl->cfg.validate_json) {
		cJSON *j = cJSON_ParseWithLength(payload, len);
		cJSON_Delete(j);
		if (!j) {
			reject(dl, &tmp, "payload is not JSON (validate_json = on)");
			return;
		}
	}
	if (!d && !(dl->hooks.known && dl->hooks.known(dl->hooks.arg, device))) {
		reject(dl, &tmp, "no such device has ever connected or published here");
		return;
	}
	if (dl->queued >= dl->cfg.max_queued) {
		reject(dl, &tmp, "the command queue is full (max_queued)");
		return;
	}
	if (d && d->n >= dl->cfg.max_queued_per_device) {
		reject(dl, &tmp, "the device's command queue is full (max_queued_per_device)");
		return;
	}
	if (dl->cfg.command_ttl_ms == 0 && !(d && d->session)) {
		reject(dl, &tmp, "the device is not connected (command_ttl = 0)");
		return;
	}
	if (!d)
		d = device_get(dl, device, true);
	struct cmd *c = calloc(1, sizeof *c);
	if (!d || !c || grow((void **)&dl->ins, &dl->capins, dl->nins, sizeof dl->ins[0]) != 0 ||
	    !(c->device = strdup(device)) || !(c->name = strdup(name)) ||
	    !(c->topic = strdup(topic)) || !(c->payload = malloc(len ? len : 1))) {
		dl_cmd_free(c);
		reject(dl, &tmp, "out of memory");
		return;
	}
	memcpy(c->payload, payload, len);
	c->len = len;
	c->id = dl->next_id++;
	c->received_ms = tmp.received_ms;
	c->expires_ms = dl->cfg.command_ttl_ms ? c->received_ms + dl->cfg.command_ttl_ms : 0;
	dl->ins[dl->nins++] = c;
	append(dl, d, c);
	struct log_fields f = {.device = device};
	log_event(LOG_INFO, EV_COMMAND_RECEIVED, &f, "command %s for %s queued (%zu bytes, %s)",
		  name, device, len, d->session ? "device connected" : "device not connected");
}

/* ---- sessions ---- */

struct dl_device *downlink_attach(struct downlink *dl, const char *device, bool clean,
				  void *session, bool *session_present)
{
	struct dl_device *d = device_get(dl, device, true);
	*session_present = false;
	if (!d)
		return NULL;
	d->session = session;
	if (clean || d->clean) {
		/* A clean session starts with nothing of the last one: no
		 * subscriptions, and unacknowledged commands go out afresh. */
		subs_clear(d);
		for (struct cmd *c = d->head; c; c = c->next)
			c->pid = 0;
	} else {
		*session_present = d->nsubs > 0;
	}
	d->clean = clean;
	for (struct cmd *c = d->head; c; c = c->next)
		c->inflight = false; /* 4.4: sent again on this connection */
	want_work(dl, d);
	return d;
}

struct dl_device *downlink_of(struct downlink *dl, const char *device, const void *session)
{
	struct dl_device *d = device_get(dl, device, false);
	return d && d->session == session ? d : NULL;
}

void downlink_detach(struct downlink *dl, struct dl_device *d, void *session)
{
	if (!d || d->session != session)
		return;
	d->session = NULL;
	if (d->clean)
		subs_clear(d);
	/* Nothing to keep: the record goes (a device rotating client ids
	 * would otherwise grow the table; the gateway's device table says it
	 * was seen). */
	if (!d->head && !d->nsubs && !d->work) {
		free(strmap_del(dl->devices, d->name));
		return;
	}
	/* command_ttl = 0: only for the connection that was there. */
	for (struct cmd *c = d->head, *next; c; c = next) {
		next = c->next;
		if (c->expires_ms == 0) {
			dl->m.expired++;
			struct log_fields f = {.device = d->name};
			log_event(LOG_NOTICE, EV_COMMAND_EXPIRED, &f,
				  "command %s for %s expired: the device disconnected before "
				  "acknowledging it (command_ttl = 0)",
				  c->name, d->name);
			report(dl, c, "expired", "disconnected");
			remove_cmd(dl, d, c);
		}
	}
}

uint8_t downlink_subscribe(struct downlink *dl, struct dl_device *d, const char *filter,
			   size_t len, uint8_t qos)
{
	if (!dl->enabled || !d)
		return 0x80;
	uint8_t granted = qos > 1 ? 1 : qos; /* QoS 2 is granted as 1 (3.8.4) */
	dl->m.subscribes++;
	for (unsigned i = 0; i < d->nsubs; i++) {
		if (strlen(d->subs[i].filter) == len && memcmp(d->subs[i].filter, filter, len) == 0) {
			d->subs[i].qos = granted; /* 3.8.4: replaces the existing one */
			want_work(dl, d);
			return granted;
		}
	}
	if (d->nsubs == DL_SUBS_MAX || !(d->subs[d->nsubs].filter = strndup(filter, len)))
		return 0x80;
	d->subs[d->nsubs++].qos = granted;
	want_work(dl, d);
	return granted;
}

void downlink_unsubscribe(struct downlink *dl, struct dl_device *d, const char *filter,
			  size_t len)
{
	(void)dl;
	if (!d)
		return;
	for (unsigned i = 0; i < d->nsubs; i++) {
		if (strlen(d->subs[i].filter) == len && memcmp(d->subs[i].filter, filter, len) == 0) {
			free(d->subs[i].filter);
			d->subs[i] = d->subs[--d->nsubs];
			return;
		}
	}
}

bool downlink_puback(struct downlink *dl, struct dl_device *d, uint16_t pid)
{
	if (!d || pid == 0)
		return false;
	for (struct cmd *c = d->head; c; c = c->next) {
		if (c->pid != pid)
			continue;
		dl->m.delivered++;
		struct log_fields f = {.device = d->name};
		log_event(LOG_INFO, EV_COMMAND_DELIVERED, &f,
			  "command %s delivered to %s (acknowledged after %u send(s))", c->name,
			  d->name, c->sends);
		report(dl, c, "delivered", NULL);
		remove_cmd(dl, d, c);
		want_work(dl, d);
		return true;
	}
	return false;
}

/* ---- delivery ---- */

static uint16_t next_pid(struct dl_device *d)
{
	for (;;) {
		d->last_pid = (uint16_t)(d->last_pid == 65535 ? 1 : d->last_pid + 1);
		bool used = false;
		for (struct cmd *c = d->head; c && !used; c = c->next)
			used = c->pid == d->last_pid;
		if (!used)
			return d->last_pid;
	}
}

/* The QoS a command on topic goes out with, or -1 when no subscription
 * of the device matches it. */
static int matching_qos(const struct dl_device *d, const char *topic, size_t len)
{
	int q = -1;
	for (unsigned i = 0; i < d->nsubs; i++)
		if (mqtt_topic_matches(d->subs[i].filter, topic, len) && d->subs[i].qos > q)
			q = d->subs[i].qos;
	return q;
}

/* Sends what d may have now, in order. false when the session closed. */
static bool deliver_device(struct downlink *dl, struct dl_device *d)
{
	unsigned inflight = 0;
	for (struct cmd *c = d->head; c; c = c->next)
		inflight += c->inflight;
	for (struct cmd *c = d->head, *next; c && d->session && inflight < DL_INFLIGHT; c = next) {
		next = c->next;
		if (c->inflight)
			continue;
		char topic[CMDTOPIC_MAX];
		struct cmdtopic_vars v = {.device = d->name, .command = c->name, .gateway = dl->gateway};
		int tl = cmdtopic_render(dl->cfg.device_topic, &v, topic, sizeof topic);
		int qos = tl > 0 ? matching_qos(d, topic, (size_t)tl) : -1;
		if (qos < 0)
			continue; /* held until the device subscribes, or expiry */
		bool dup = qos == 1 && c->pid != 0; /* the same packet id again (4.4) */
		if (qos == 1 && c->pid == 0)
			c->pid = next_pid(d);
		size_t cap = (size_t)tl + c->len + 16;
		uint8_t *pkt = malloc(cap);
		size_t n = pkt ? mqtt_encode_publish(pkt, cap, topic, (size_t)tl, c->payload, c->len,
						     (uint8_t)qos, dup, qos ? c->pid : 0)
			       : 0;
		int rc = n ? dl->hooks.deliver(dl->hooks.arg, d->session, pkt, n) : -1;
		free(pkt);
		if (rc != 0)
			return false;
		c->sends++;
		if (c->sends > 1)
			dl->m.resent++;
		if (qos == 0) {
			/* Written: that is all QoS 0 promises. */
			dl->m.delivered++;
			struct log_fields f = {.device = d->name};
			log_event(LOG_INFO, EV_COMMAND_DELIVERED, &f,
				  "command %s delivered to %s (QoS 0: written)", c->name, d->name);
			report(dl, c, "delivered", NULL);
			remove_cmd(dl, d, c);
			continue;
		}
		c->inflight = true;
		inflight++;
	}
	return true;
}

void downlink_pump(struct downlink *dl)
{
	struct dl_device *d = dl->work;
	dl->work = NULL;
	while (d) {
		struct dl_device *next = d->work_next;
		d->work = false;
		d->work_next = NULL;
		if (d->session && d->head)
			(void)deliver_device(dl, d);
		else if (!d->session && !d->head && !d->nsubs)
			free(strmap_del(dl->devices, d->name)); /* see downlink_detach */
		d = next;
	}
}

/* ---- expiry ---- */

static void on_expiry(struct ev_loop *loop, struct ev_timer *t)
{
	struct downlink *dl = t->arg;
	int64_t now = wall_ms();
	/* Every queued command, once a second while there are any: bounded by
	 * max_queued. */
	for (struct cmd *c = dl->all_head, *next; c; c = next) {
		next = c->all_next;
		if (c->expires_ms == 0 || c->expires_ms > now)
			continue;
		struct dl_device *d = device_get(dl, c->device, false);
		dl->m.expired++;
		struct log_fields f = {.device = c->device};
		log_event(LOG_NOTICE, EV_COMMAND_EXPIRED, &f,
			  "command %s for %s expired after %lld s undelivered (%u send(s))",
			  c->name, c->device, (long long)(now - c->received_ms) / 1000, c->sends);
		report(dl, c, "expired", NULL);
		if (d)
			remove_cmd(dl, d, c);
	}
	if (dl->queued)
		ev_timer_start(loop, t, EXPIRY_TICK_MS);
}

/* ---- life ---- */

static void on_loaded(void *ctx, struct cmd *c)
{
	struct downlink *dl = ctx;
	if (c->expires_ms == 0)
		c->expires_ms = 1; /* command_ttl = 0: its connection is gone */
	struct dl_device *d = device_get(dl, c->device, true);
	if (!d) {
		dl_cmd_free(c);
		return;
	}
	append(dl, d, c);
}

struct downlink *downlink_new(struct ev_loop *loop, struct spool *spool,
			      const struct downlink_hooks *hooks, char *err, size_t errlen)
{
	struct downlink *dl = calloc(1, sizeof *dl);
	if (!dl || !(dl->devices = strmap_new())) {
		free(dl);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	dl->loop = loop;
	dl->spool = spool;
	dl->hooks = *hooks;
	dl->next_id = 1;
	ev_timer_init(&dl->expiry, on_expiry, dl);
	dl->store = dl_store_open(spool_db(spool), err, errlen);
	if (!dl->store || dl_store_load(dl->store, on_loaded, dl) != 0) {
		if (dl->store)
			snprintf(err, errlen, "cannot read the queued commands");
		downlink_free(dl);
		return NULL;
	}
	struct spool_sidecar sc = {sc_write, sc_staged, sc_dirty, sc_committed, dl};
	spool_set_sidecar(spool, &sc);
	return dl;
}

static void cfg_strings_free(struct cfg_downlink *c)
{
	free(c->topic);
	free(c->device_topic);
	free(c->status_topic);
}

int downlink_configure(struct downlink *dl, const struct cfg_downlink *cfg, const char *name)
{
	struct cfg_downlink c = *cfg;
	c.topic = strdup(cfg->topic);
	c.device_topic = strdup(cfg->device_topic);
	c.status_topic = strdup(cfg->status_topic);
	char *gw = strdup(name);
	if (!c.topic || !c.device_topic || !c.status_topic || !gw) {
		cfg_strings_free(&c);
		free(gw);
		return -1;
	}
	cfg_strings_free(&dl->cfg);
	free(dl->gateway);
	dl->cfg = c;
	dl->gateway = gw;
	dl->enabled = strcmp(c.topic, "none") != 0;
	struct cmdtopic_vars v = {.gateway = gw};
	if (dl->enabled && cmdtopic_render(c.topic, &v, dl->subscription, sizeof dl->subscription) < 0)
		dl->enabled = false; /* the config check makes this unreachable */
	return 0;
}

static void device_free(void *p)
{
	struct dl_device *d = p;
	subs_clear(d);
	for (struct cmd *c = d->head, *next; c; c = next) {
		next = c->next;
		dl_cmd_free(c);
	}
	free(d);
}

void downlink_free(struct downlink *dl)
{
	if (!dl)
		return;
	if (dl->spool)
		spool_set_sidecar(dl->spool, NULL);
	ev_timer_stop(dl->loop, &dl->expiry);
	dl_store_close(dl->store);
	strmap_free(dl->devices, device_free);
	cfg_strings_free(&dl->cfg);
	free(dl->gateway);
	free(dl->ins);
	free(dl->del);
	free(dl);
}

const char *downlink_subscription(const struct downlink *dl)
{
	return dl && dl->enabled ? dl->subscription : NULL;
}

uint64_t downlink_queued(const struct downlink *dl)
{
	return dl ? dl->queued : 0;
}

const struct downlink_metrics *downlink_metrics(const struct downlink *dl)
{
	return &dl->m;
}
