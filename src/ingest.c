/* ingest: from a device PUBLISH to a durable spool entry.
 *
 * gateway_ingest decodes and stages; gateway_commit, once per loop
 * iteration, writes everything staged in one transaction and only then
 * releases the devices' acks. When the spool is full or a commit fails the
 * gateway stops reading devices (TCP back-pressure) instead of dropping or
 * acknowledging anything it could not store.
 *
 * Data flows one way: sessions hand readings to gateway_ingest, and what
 * becomes of them comes back as news (gateway_int.h, enum ingest_news),
 * queued where it happens and delivered to the sessions by gateway_commit
 * alone, between its commits. A session reading again may stage more; the
 * next round commits it. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway_int.h"
#include "iotgw/decoder.h"
#include "iotgw/downlink.h"
#include "iotgw/log.h"
#include "iotgw/reading.h"
#include "iotgw/sdnotify.h"
#include "iotgw/share.h"

/* Devices are read again once the spool is below its limit by this much
 * (1%): close to the limit, so that at the limit devices go at the rate
 * the upstream drains, in small steps, instead of stopping until a tenth
 * of the spool has drained and then all rushing in. */
#define RESUME_FILL 0.99
/* ... while the episode (one spool_full line, one spool_resumed line, the
 * metrics' full episodes and seconds) lasts until it is below 90%. */
#define EPISODE_END_FILL 0.9
#define COMMIT_RETRY_MS 1000    /* a failing commit is retried this often */
#define COMMIT_ROUNDS 4         /* commit-and-deliver rounds per loop iteration */
#define DISK_RECHECK_MS 1000    /* free space is measured this often while it is short */
#define JSON_MAX (8u << 20)     /* a dead letter of a max_packet_size (1M) payload fits */

struct device_state {
	uint64_t seq;
	int64_t last_seen_ms; /* wall clock: a reading or a connection */
	/* Held over its share, logged, and not yet well within it again: on
	 * gw->share_logged (through share_next) until then. */
	bool share_episode;
	struct device_state *share_next;
	bool dirty;
	struct device_state *dirty_next;
	char name[]; /* the key, for staging the seq */
};

/* ---- devices ---- */

static struct device_state *device_new(struct gateway *gw, const char *device, uint64_t seq)
{
	size_t n = strlen(device);
	struct device_state *d = calloc(1, sizeof *d + n + 1);
	if (!d)
		return NULL;
	memcpy(d->name, device, n + 1);
	d->seq = seq;
	if (strmap_put(gw->devices, device, d) != 0) {
		free(d);
		return NULL;
	}
	return d;
}

static struct device_state *device_state(struct gateway *gw, const char *device)
{
	struct device_state *d = strmap_get(gw->devices, device);
	return d ? d : device_new(gw, device, 0);
}

void gateway_device_seen(struct gateway *gw, const char *device)
{
	struct device_state *d = device_state(gw, device);
	if (d)
		d->last_seen_ms = gateway_wall_ms();
}

/* Not seen since the cut-off, and nothing of it waiting for a commit. */
static bool forgotten(void *ctx, const char *key, void *value)
{
	(void)key;
	const struct device_state *d = value;
	return !d->dirty && !d->share_episode && d->last_seen_ms < *(const int64_t *)ctx;
}

void gateway_forget_devices(struct gateway *gw)
{
	unsigned after_s = gw->cfg->spool.forget_devices_after_s;
	if (!after_s)
		return;
	int64_t cut = gateway_wall_ms() - (int64_t)after_s * 1000;
	size_t mem = strmap_sweep(gw->devices, forgotten, &cut, free);
	int64_t rows = spool_forget_devices(gw->spool, cut);
	if (mem || rows > 0)
		log_event(LOG_INFO, EV_DEVICES_FORGOTTEN, NULL,
			  "forgot %zu device(s) not seen for %u s (forget_devices_after): their "
			  "sequence numbers start again at 1 if they come back (%lld row(s) "
			  "deleted)",
			  mem, after_s, (long long)rows);
	else if (rows < 0)
		log_event(LOG_WARNING, EV_SPOOL_ERROR, NULL,
			  "%s: cannot delete forgotten devices (will try again)",
			  spool_path(gw->spool));
}

/* Rows between two "still loading" messages to systemd. */
#define LOAD_EXTEND_EVERY 65536
#define LOAD_EXTEND_USEC (30ull * 1000 * 1000)

static void on_loaded_seq(void *ctx, const char *device, uint64_t seq, int64_t last_seen_ms)
{
	struct gateway *gw = ctx;
	/* Start-up time grows with the devices ever seen: keep systemd's
	 * start timeout from killing a start that is progressing. */
	if (strmap_size(gw->devices) % LOAD_EXTEND_EVERY == LOAD_EXTEND_EVERY - 1) {
		char status[96];
		snprintf(status, sizeof status, "loading device sequence numbers: %zu so far",
			 strmap_size(gw->devices) + 1);
		sdn_extend_timeout(LOAD_EXTEND_USEC, status);
	}
	struct device_state *d = device ? device_new(gw, device, seq) : NULL;
	if (d)
		d->last_seen_ms = last_seen_ms;
	else if (device)
		log_event(LOG_ERR, EV_SPOOL_ERROR, NULL,
			  "out of memory loading the sequence number of %s", device);
}

int gateway_load_devices(struct gateway *gw)
{
	return spool_load_seqs(gw->spool, on_loaded_seq, gw);
}

static void free_device(void *p)
{
	free(p);
}

void gateway_free_devices(struct gateway *gw)
{
	strmap_free(gw->devices, free_device);
	gw->devices = NULL;
	gw->dirty_devices = NULL;
	gw->share_logged = NULL;
}

/* ---- a device's share of the spool ---- */

/* Does any share limit apply now? Without per-device limits and below
 * SHARE_FAIR_FROM (the usual case) nothing is looked up per reading. */
static bool shares_apply(struct gateway *gw)
{
	const struct cfg_spool *c = &gw->cfg->spool;
	return c->max_messages_per_device || c->max_bytes_per_device ||
	       (c->fair_share && spool_fill(gw->spool) >= SHARE_FAIR_FROM);
}

/* The device's use of its share, with `more` messages of `bytes` added. */
static double share_of(struct gateway *gw, const char *device, uint64_t more, uint64_t bytes,
		       struct share_in *in, enum share_limit *which, uint64_t *limit)
{
	const struct cfg_spool *c = &gw->cfg->spool;
	spool_device_usage(gw->spool, device, &in->messages, &in->bytes);
	in->messages += more;
	in->bytes += bytes;
	in->max_messages_per_device = c->max_messages_per_device;
	in->max_bytes_per_device = c->max_bytes_per_device;
	in->fair = c->fair_share;
	in->fill = spool_fill(gw->spool);
	in->max_messages = c->max_messages;
	in->max_bytes = c->max_bytes;
	size_t held = spool_devices(gw->spool);
	in->devices = gw->nactive > held ? gw->nactive : held;
	return share_use(in, which, limit);
}

/* Ends the episodes of devices now well within their share, with one
 * line each: when the upstream takes readings, whether or not the device
 * publishes again. */
static void share_episodes_end(struct gateway *gw)
{
	struct device_state **pp = &gw->share_logged;
	while (*pp) {
		struct device_state *dev = *pp;
		struct share_in in;
		(void)share_of(gw, dev->name, 0, 0, &in, NULL, NULL);
		if (share_episode_use(&in) >= SHARE_EPISODE_END) {
			pp = &dev->share_next;
			continue;
		}
		*pp = dev->share_next;
		dev->share_next = NULL;
		dev->share_episode = false;
		struct log_fields f = {.device = dev->name};
		log_event(LOG_NOTICE, EV_SPOOL_SHARE_RELEASED, &f,
			  "device %s is back within its share of the spool (it holds %llu "
			  "reading(s), %llu bytes; spool %.0f%% full)",
			  dev->name, (unsigned long long)in.messages,
			  (unsigned long long)in.bytes, in.fill * 100);
	}
}

/* Over its share with this reading (cost bytes)? Logs the start of an
 * episode. */
static bool over_share(struct gateway *gw, struct device_state *dev, const struct log_fields *f,
		       uint64_t cost)
{
	if (!dev->share_episode && !shares_apply(gw))
		return false;
	struct share_in in;
	enum share_limit which;
	uint64_t limit;
	double use = share_of(gw, dev->name, 1, cost, &in, &which, &limit);
	if (use <= 1.0)
		return false;
	if (!dev->share_episode) {
		dev->share_episode = true;
		dev->share_next = gw->share_logged;
		gw->share_logged = dev;
		gw->m.share_episodes++;
		log_event(LOG_WARNING, EV_SPOOL_SHARE_EXCEEDED, f,
			  "device %s holds %llu reading(s), %llu bytes, of the spool (%.0f%% full, "
			  "%zu device(s) competing): over its %s of %llu; not read until the "
			  "upstream takes some, other devices are read",
			  dev->name, (unsigned long long)in.messages - 1,
			  (unsigned long long)(in.bytes - cost), in.fill * 100, in.devices,
			  share_limit_name(which), (unsigned long long)limit);
	}
	return true;
}

bool gateway_share_room(struct gateway *gw, const char *device)
{
	struct share_in in;
	return share_of(gw, device, 0, 0, &in, NULL, NULL) < SHARE_RESUME;
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

enum ingest_result gateway_ingest(struct gateway *gw, const char *device,
				  const struct log_fields *f, const struct mqtt_publish *pub)
{
	const struct iotgw_config *cfg = gw->cfg;
	if (gw->write_failed)
		return INGEST_FULL; /* nothing more until the spool can write again */
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
	dev->last_seen_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;

	struct dec_result value = {0};
	char why[256] = "no [decode] rule matches this topic";
	bool ok = rule && dec_payload(rule, pub->payload, pub->payload_len, &value, why,
				      sizeof why) == 0;
	struct buf *json = &gw->json;
	json->len = 0;
	int jrc;
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
		jrc = reading_json(&r, json);
		tlen = reading_topic(cfg->upstream.topic, device, cfg->gateway.name,
				     has_event ? event : NULL, topic, sizeof topic);
	} else {
		jrc = deadletter_json(device, cfg->gateway.name, now, pub->topic.ptr,
				      pub->topic.len, why, pub->payload, pub->payload_len, json);
		tlen = reading_topic(cfg->upstream.dead_letter_topic, device, cfg->gateway.name,
				     has_event ? event : NULL, topic, sizeof topic);
	}
	if (jrc != 0 || tlen < 0)
		return INGEST_FULL;
	/* A full spool holds everyone back; short of that, the device over
	 * its share alone. */
	if (!spool_has_room(gw->spool, (size_t)tlen, json->len))
		return INGEST_FULL;
	if (over_share(gw, dev, f, spool_entry_cost((size_t)tlen, json->len)))
		return INGEST_OVER_SHARE;
	int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	if (spool_put(gw->spool, device, topic, json->data, json->len, now_ms) != 0)
		return INGEST_FULL;
	if (ok) {
		dev->seq++;
		if (!dev->dirty) {
			dev->dirty = true;
			dev->dirty_next = gw->dirty_devices;
			gw->dirty_devices = dev;
		}
		gw->m.accepted++;
		if (log_enabled(LOG_DEBUG))
			log_event(LOG_DEBUG, EV_READING_ACCEPTED, f, "%.*s: %.2f C (seq %llu)",
				  (int)pub->topic.len, pub->topic.ptr, value.temperature_c,
				  (unsigned long long)dev->seq);
	} else {
		gw->m.rejected[!rule		  ? REJECT_NO_RULE
			       : value.implausible ? REJECT_IMPLAUSIBLE
						   : REJECT_MALFORMED]++;
		log_event(LOG_WARNING, EV_PAYLOAD_REJECTED, f,
			  "payload on %.*s rejected: %s; sent to dead-letter topic %s",
			  (int)pub->topic.len, pub->topic.ptr, why, topic);
	}
	return INGEST_OK;
}

/* ---- news for the sessions ---- */

/* Queues n behind the news not yet delivered. The same news twice in a row
 * says nothing more (every kind is idempotent), so it is queued once. */
static void tell(struct gateway *gw, enum ingest_news n)
{
	struct news_queue *q = &gw->newsq;
	if (q->n && q->q[(q->head + q->n - 1) % NEWS_QUEUE_MAX] == n)
		return;
	if (q->n == NEWS_QUEUE_MAX) {
		/* Cannot happen (see struct news_queue); dropping a flush's
		 * news would keep acks from ever going out, or send them early. */
		log_event(LOG_CRIT, EV_LOOP_FAILED, NULL,
			  "internal error: %u undelivered spool news; exiting so that devices "
			  "re-send what was not acknowledged",
			  q->n);
		abort();
	}
	q->q[(q->head + q->n) % NEWS_QUEUE_MAX] = n;
	q->n++;
}

/* Delivers the queued news in order, and what the sessions' reactions
 * queue meanwhile (a device read again filling the spool). */
static void deliver_news(struct gateway *gw)
{
	struct news_queue *q = &gw->newsq;
	while (q->n) {
		enum ingest_news n = q->q[q->head];
		q->head = (q->head + 1) % NEWS_QUEUE_MAX;
		q->n--;
		gw->news(gw, n);
	}
}

/* ---- back-pressure ---- */

static void pause_devices(struct gateway *gw, const char *why)
{
	if (gw->spool_full)
		return;
	gw->spool_full = true;
	if (!gw->m.full_since_ms) { /* a limit episode may become a write episode */
		gw->m.full_episodes++;
		gw->m.full_since_ms = ev_now_ms(gw->loop);
		gw->full_logged = false;
	}
	if (!gw->full_logged || gw->write_failed) {
		gw->full_logged = true;
		log_event(LOG_WARNING, EV_SPOOL_FULL, NULL,
			  "spool full (%s): holding devices back; nothing is dropped", why);
	}
	tell(gw, NEWS_HOLD_DEVICES);
}

void gateway_spool_full(struct gateway *gw)
{
	if (gw->spool_full)
		return;
	char why[PATH_MAX + 128];
	if (gw->write_failed)
		snprintf(why, sizeof why, "writes are failing");
	else if (spool_disk_low(gw->spool))
		snprintf(why, sizeof why,
			 "free space: %llu KiB left for %s, below the %llu KiB reserve (min_free)",
			 (unsigned long long)(spool_disk_free(gw->spool) / 1024),
			 spool_path(gw->spool),
			 (unsigned long long)(spool_disk_reserve(gw->spool) / 1024));
	else
		snprintf(why, sizeof why, "limit: %llu messages, %llu bytes queued",
			 (unsigned long long)spool_count(gw->spool),
			 (unsigned long long)spool_bytes(gw->spool));
	pause_devices(gw, why);
}

void gateway_maybe_resume(struct gateway *gw)
{
	/* The upstream took readings: devices held over their share may
	 * have room again (a few runaways, so rechecking them is cheap). */
	if ((gw->share_held || gw->share_logged) &&
	    spool_count(gw->spool) != gw->share_checked_count) {
		gw->share_checked_count = spool_count(gw->spool);
		if (gw->share_held)
			tell(gw, NEWS_SHARE_ROOM);
		share_episodes_end(gw);
	}
	if (gw->spool_full && !gw->write_failed && !spool_disk_low(gw->spool) &&
	    spool_fill(gw->spool) < RESUME_FILL) {
		gw->spool_full = false;
		tell(gw, NEWS_READ_DEVICES); /* may fill it again at once */
	}
	/* At its limit the spool fills and drains by the percent: the
	 * episode ends, once, when it is well below. */
	if (gw->m.full_since_ms && !gw->spool_full && spool_fill(gw->spool) < EPISODE_END_FILL) {
		gw->m.full_ms += ev_now_ms(gw->loop) - gw->m.full_since_ms;
		gw->m.full_since_ms = 0;
		log_event(LOG_NOTICE, EV_SPOOL_RESUMED, NULL,
			  "spool has room (%llu queued, below %.0f%%): devices are read freely "
			  "again",
			  (unsigned long long)spool_count(gw->spool), EPISODE_END_FILL * 100);
	}
}

/* ---- group commit ---- */

static int stage_seqs(struct gateway *gw)
{
	while (gw->dirty_devices) {
		struct device_state *d = gw->dirty_devices;
		if (spool_put_seq(gw->spool, d->name, d->seq) != 0)
			return -1;
		gw->dirty_devices = d->dirty_next;
		d->dirty = false;
		d->dirty_next = NULL;
	}
	return 0;
}

static void on_flush_done(struct ev_loop *loop, struct ev_io *io, uint32_t events);

/* Moves the acks of committed readings towards their devices: a flush of
 * the WAL is started when commits with readings are not on disk yet (one
 * at a time; acks committed meanwhile wait for the next), else they go out
 * now (durability = os, or nothing new to flush). */
static void flush_progress(struct gateway *gw)
{
	/* Devices' acks wait for the flush, and so do the broker's PUBACKs of
	 * commands (downlink_holding_acks). */
	if (gw->flushing || (!gw->awaiting_flush && !downlink_holding_acks(gw->dl)))
		return;
	if (!spool_flush_pending(gw->spool)) {
		if (gw->awaiting_flush)
			tell(gw, NEWS_ALL_DURABLE);
		return;
	}
	if (gw->flush_io.fd < 0 &&
	    ev_io_start(gw->loop, &gw->flush_io, spool_flush_fd(gw->spool), EPOLLIN, on_flush_done,
			gw) != 0) {
		/* Cannot hear back from the flush thread: cannot acknowledge. */
		log_event(LOG_CRIT, EV_SPOOL_FLUSH_FAILED, NULL,
			  "cannot watch the spool's flush thread: %s; exiting so that devices "
			  "re-send what was not acknowledged",
			  strerror(errno));
		_exit(EXIT_FAILURE);
	}
	if (spool_flush_start(gw->spool)) {
		gw->flushing = true;
		tell(gw, NEWS_FLUSH_STARTED);
	}
}

static void on_flush_done(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct gateway *gw = io->arg;
	char err[PATH_MAX + 128];
	int rc = spool_flush_finish(gw->spool, err, sizeof err);
	if (rc == 1)
		return;
	gw->flushing = false;
	if (rc < 0) {
		/* After a failed fsync the kernel may have dropped the data and
		 * a retry could falsely succeed: never acknowledge it. A restart
		 * recovers the WAL; devices re-send what they had no PUBACK for. */
		log_event(LOG_CRIT, EV_SPOOL_FLUSH_FAILED, NULL,
			  "%s; readings since the last flush may not be on disk: exiting so that "
			  "devices re-send them",
			  err);
		_exit(EXIT_FAILURE);
	}
	/* The acks it covered go out, and the next flush starts, in
	 * gateway_commit (before the loop sleeps again, right after this). */
	tell(gw, NEWS_FLUSHED);
}

static bool commit_once(struct gateway *gw)
{
	char err[256] = "out of memory";
	uint64_t t0 = ev_clock_us();
	int rc = stage_seqs(gw) != 0 ? -1 : spool_commit(gw->spool, err, sizeof err);
	prom_observe(&gw->m.commit, (double)(ev_clock_us() - t0) / 1e6, 1);
	if (rc != 0) {
		gw->m.write_errors++;
		if (!gw->write_failed) {
			gw->write_failed = true;
			log_event(LOG_ERR, EV_SPOOL_WRITE_FAILED, NULL,
				  "%s: commit failed: %s; %llu message(s) held in memory, "
				  "unacknowledged; retrying every %d ms",
				  spool_path(gw->spool), err,
				  (unsigned long long)spool_count(gw->spool), COMMIT_RETRY_MS);
			char why[300];
			snprintf(why, sizeof why, "write failed: %s", err);
			gw->spool_full = false; /* a limit episode becomes a write episode */
			pause_devices(gw, why);
		}
		gw->retry_at_ms = ev_now_ms(gw->loop) + COMMIT_RETRY_MS;
		ev_timer_start(gw->loop, &gw->commit_retry, COMMIT_RETRY_MS);
		return false;
	}
	if (gw->write_failed) {
		gw->write_failed = false;
		ev_timer_stop(gw->loop, &gw->commit_retry);
		log_event(LOG_NOTICE, EV_SPOOL_WRITE_RECOVERED, NULL, "%s: commits succeed again",
			  spool_path(gw->spool));
	}
	gw->kick_upstream = true;
	tell(gw, NEWS_COMMITTED);
	return true;
}

void gateway_commit(struct gateway *gw)
{
	/* A failing commit is retried every COMMIT_RETRY_MS; news (a flush
	 * that finished, room again) are delivered meanwhile all the same. */
	bool may_commit = !(gw->write_failed && ev_now_ms(gw->loop) < gw->retry_at_ms);
	/* Held back for want of disk space with nothing to commit (the
	 * upstream is down, space was freed by someone else): measure again
	 * now and then, or nothing would ever notice. */
	if (may_commit && gw->spool_full && spool_disk_low(gw->spool) &&
	    ev_now_ms(gw->loop) >= gw->disk_check_at_ms) {
		(void)spool_check_disk(gw->spool);
		gw->disk_check_at_ms = ev_now_ms(gw->loop) + DISK_RECHECK_MS;
		ev_timer_start(gw->loop, &gw->commit_retry, DISK_RECHECK_MS);
	}
	bool ok = may_commit;
	for (int round = 0; round < COMMIT_ROUNDS; round++) {
		if (ok && (spool_commit_due_in(gw->spool) == 0 || gw->dirty_devices)) {
			gw->input_barred++;
			ok = commit_once(gw);
			gw->input_barred--;
		}
		else if (ok && gw->awaiting_commit && !spool_has_staged(gw->spool))
			/* Replies held behind nothing new (a resent QoS 2
			 * PUBLISH, a PINGREQ after it) have nothing to wait for. */
			tell(gw, NEWS_COMMITTED);
		/* The commit's news (and those of the loop's callbacks: a
		 * flush that finished) first, so that the sessions committed
		 * to flush_progress are on gw->awaiting_flush. Then the flush
		 * (or, with nothing to flush, the acks out) and room for the
		 * devices held back; delivering those reads devices again,
		 * which may stage readings for the next round. The deletes and
		 * commands of a failed commit may have gone through on their
		 * own (spool_commit): flushing those keeps the broker's PUBACKs,
		 * and the deletes that free space, coming. */
		deliver_news(gw);
		flush_progress(gw);
		gateway_maybe_resume(gw);
		deliver_news(gw);
		if (!ok || spool_commit_due_in(gw->spool) != 0)
			break;
	}
	if (!ok)
		return;
	/* Devices released above staged more than the rounds allowed: wake up
	 * again at once rather than sleep on uncommitted readings. Deletes
	 * alone wait a little to share a commit (spool_commit_due_in). */
	int64_t due = spool_commit_due_in(gw->spool);
	if (due == 0)
		ev_timer_start(gw->loop, &gw->commit_retry, 0);
	else if (due > 0 && !ev_timer_active(&gw->commit_retry))
		ev_timer_start(gw->loop, &gw->commit_retry, (uint64_t)due);
}

static void on_commit_retry(struct ev_loop *loop, struct ev_timer *t)
{
	/* Nothing to do here: waking the loop is enough, its before-sleep hook
	 * retries the commit. */
	(void)loop;
	(void)t;
}

void gateway_ingest_init(struct gateway *gw)
{
	/* The record of the PUBLISH being ingested, reused for every one. A
	 * dead letter carries the payload in base64: room for the largest. */
	buf_init(&gw->json, JSON_MAX);
	gw->flush_io.fd = -1;
	ev_timer_init(&gw->commit_retry, on_commit_retry, gw);
}
