/* ingest: from a device PUBLISH to a durable spool entry (ingest.h says
 * what it owns and how it talks to the rest).
 *
 * ingest_put decodes and stages; ingest_turn, once per loop iteration,
 * writes everything staged in one transaction and only then releases the
 * devices' acks (through its news). When the spool is full or a commit
 * fails the gateway stops reading devices (TCP back-pressure) instead of
 * dropping or acknowledging anything it could not store. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ingest.h"

#include "iotgw/buf.h"
#include "iotgw/decoder.h"
#include "iotgw/log.h"
#include "iotgw/reading.h"
#include "iotgw/sdnotify.h"
#include "iotgw/share.h"
#include "iotgw/strmap.h"

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
/* While a checkpoint holds the spool's database (spool_lent) nothing is
 * committed; devices are read meanwhile, up to this many staged readings
 * (a few MB), then held until it ends. QoS 1 devices stop sooner on their
 * own (their acks wait); this bounds a QoS 0 flood on a slow disk. */
#define LENT_STAGED_MAX 16384

struct device_state {
	uint64_t seq;
	int64_t last_seen_ms; /* wall clock: a reading or a connection */
	/* Held over its share, logged, and not yet well within it again: on
	 * ig->share_logged (through share_next) until then. */
	bool share_episode;
	struct device_state *share_next;
	bool dirty;
	struct device_state *dirty_next;
	char name[]; /* the key, for staging the seq */
};

/* The news not yet delivered, oldest first. The order matters: a flush's
 * completion must reach the sessions before the start of the next flush,
 * and a commit before or after a flush's start as it happened, or acks
 * would go out ahead of their flush. Bounded by construction: between two
 * deliveries at most a flush's completion and a hold arrive from the
 * loop's callbacks, and each step of ingest_turn adds a few. */
#define NEWS_QUEUE_MAX 32
struct news_queue {
	enum ingest_news q[NEWS_QUEUE_MAX];
	unsigned head, n;
};

struct ingest {
	struct ev_loop *loop;              /* borrowed */
	struct spool *spool;               /* borrowed */
	const struct iotgw_config *cfg;    /* borrowed: the configuration in service */
	struct ingest_hooks hooks;
	struct strmap *devices;            /* device id -> struct device_state */
	struct device_state *dirty_devices; /* seq changed since the last commit */
	struct device_state *share_logged;  /* in a logged share episode */
	uint64_t share_checked_count;       /* the spool's count at the last share recheck */
	struct buf json;                    /* the record being built (owned; reused) */
	/* Back-pressure: devices are not read (the spool full, or failing). */
	bool spool_full;
	bool full_logged; /* this episode's spool_full line is written */
	bool ckpt_hold;   /* held for a checkpoint with LENT_STAGED_MAX staged */
	/* Group commit: a failing commit (disk full, I/O error) is retried
	 * every second; the disk flush runs on the spool's thread. */
	bool kick_upstream; /* newly committed entries to offer upstream */
	bool write_failed;
	uint64_t retry_at_ms;
	uint64_t disk_check_at_ms; /* next free-space measurement while held for it */
	struct ev_timer commit_retry;
	bool flushing;         /* the spool's disk flush is running */
	struct ev_io flush_io; /* its completion (spool_flush_fd) */
	struct news_queue newsq;
	unsigned input_barred;
	struct ingest_metrics m;
};

/* ---- devices ---- */

static struct device_state *device_new(struct ingest *ig, const char *device, uint64_t seq)
{
	size_t n = strlen(device);
	struct device_state *d = calloc(1, sizeof *d + n + 1);
	if (!d)
		return NULL;
	memcpy(d->name, device, n + 1);
	d->seq = seq;
	if (strmap_put(ig->devices, device, d) != 0) {
		free(d);
		return NULL;
	}
	return d;
}

static struct device_state *device_state(struct ingest *ig, const char *device)
{
	struct device_state *d = strmap_get(ig->devices, device);
	return d ? d : device_new(ig, device, 0);
}

void ingest_device_seen(struct ingest *ig, const char *device)
{
	struct device_state *d = device_state(ig, device);
	if (d)
		d->last_seen_ms = ev_wall_ms();
}

/* Not seen since the cut-off, and nothing of it waiting for a commit. */
static bool forgotten(void *ctx, const char *key, void *value)
{
	(void)key;
	const struct device_state *d = value;
	return !d->dirty && !d->share_episode && d->last_seen_ms < *(const int64_t *)ctx;
}

void ingest_forget_devices(struct ingest *ig)
{
	unsigned after_s = ig->cfg->spool.forget_devices_after_s;
	if (!after_s)
		return;
	int64_t cut = ev_wall_ms() - (int64_t)after_s * 1000;
	size_t mem = strmap_sweep(ig->devices, forgotten, &cut, free);
	int64_t rows = spool_forget_devices(ig->spool, cut);
	if (mem || rows > 0)
		log_event(LOG_INFO, EV_DEVICES_FORGOTTEN, NULL,
			  "forgot %zu device(s) not seen for %u s (forget_devices_after): their "
			  "sequence numbers start again at 1 if they come back (%lld row(s) "
			  "deleted)",
			  mem, after_s, (long long)rows);
	else if (rows < 0)
		log_event(LOG_WARNING, EV_SPOOL_ERROR, NULL,
			  "%s: cannot delete forgotten devices (will try again)",
			  spool_path(ig->spool));
}

/* Rows between two "still loading" messages to systemd. */
#define LOAD_EXTEND_EVERY 65536
#define LOAD_EXTEND_USEC (30ull * 1000 * 1000)

static void on_loaded_seq(void *ctx, const char *device, uint64_t seq, int64_t last_seen_ms)
{
	struct ingest *ig = ctx;
	/* Start-up time grows with the devices ever seen: keep systemd's
	 * start timeout from killing a start that is progressing. */
	if (strmap_size(ig->devices) % LOAD_EXTEND_EVERY == LOAD_EXTEND_EVERY - 1) {
		char status[96];
		snprintf(status, sizeof status, "loading device sequence numbers: %zu so far",
			 strmap_size(ig->devices) + 1);
		sdn_extend_timeout(LOAD_EXTEND_USEC, status);
	}
	struct device_state *d = device ? device_new(ig, device, seq) : NULL;
	if (d)
		d->last_seen_ms = last_seen_ms;
	else if (device)
		log_event(LOG_ERR, EV_SPOOL_ERROR, NULL,
			  "out of memory loading the sequence number of %s", device);
}

int ingest_load_devices(struct ingest *ig)
{
	return spool_load_seqs(ig->spool, on_loaded_seq, ig);
}

static void free_device(void *p)
{
	free(p);
}

static void free_devices(struct ingest *ig)
{
	strmap_free(ig->devices, free_device);
	ig->devices = NULL;
	ig->dirty_devices = NULL;
	ig->share_logged = NULL;
}

/* ---- a device's share of the spool ---- */

/* Does any share limit apply now? Without per-device limits and below
 * SHARE_FAIR_FROM (the usual case) nothing is looked up per reading. */
static bool shares_apply(struct ingest *ig)
{
	const struct cfg_spool *c = &ig->cfg->spool;
	return c->max_messages_per_device || c->max_bytes_per_device ||
	       (c->fair_share && spool_fill(ig->spool) >= SHARE_FAIR_FROM);
}

/* The device's use of its share, with `more` messages of `bytes` added. */
static double share_of(struct ingest *ig, const char *device, uint64_t more, uint64_t bytes,
		       struct share_in *in, enum share_limit *which, uint64_t *limit)
{
	const struct cfg_spool *c = &ig->cfg->spool;
	spool_device_usage(ig->spool, device, &in->messages, &in->bytes);
	in->messages += more;
	in->bytes += bytes;
	in->max_messages_per_device = c->max_messages_per_device;
	in->max_bytes_per_device = c->max_bytes_per_device;
	in->fair = c->fair_share;
	in->fill = spool_fill(ig->spool);
	in->max_messages = c->max_messages;
	in->max_bytes = c->max_bytes;
	size_t held = spool_devices(ig->spool);
	in->devices = ig->hooks.active_devices(ig->hooks.arg) > held ? ig->hooks.active_devices(ig->hooks.arg) : held;
	return share_use(in, which, limit);
}

/* Ends the episodes of devices now well within their share, with one
 * line each: when the upstream takes readings, whether or not the device
 * publishes again. */
static void share_episodes_end(struct ingest *ig)
{
	struct device_state **pp = &ig->share_logged;
	while (*pp) {
		struct device_state *dev = *pp;
		struct share_in in;
		(void)share_of(ig, dev->name, 0, 0, &in, NULL, NULL);
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
static bool over_share(struct ingest *ig, struct device_state *dev, const struct log_fields *f,
		       uint64_t cost)
{
	if (!dev->share_episode && !shares_apply(ig))
		return false;
	struct share_in in;
	enum share_limit which;
	uint64_t limit;
	double use = share_of(ig, dev->name, 1, cost, &in, &which, &limit);
	if (use <= 1.0)
		return false;
	if (!dev->share_episode) {
		dev->share_episode = true;
		dev->share_next = ig->share_logged;
		ig->share_logged = dev;
		ig->m.share_episodes++;
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

bool ingest_share_room(struct ingest *ig, const char *device)
{
	struct share_in in;
	return share_of(ig, device, 0, 0, &in, NULL, NULL) < SHARE_RESUME;
}

/* ---- ingestion ---- */

static const struct dec_rule *rules_of(const struct ingest *ig, size_t *n)
{
	if (ig->cfg->nrules) {
		*n = ig->cfg->nrules;
		return ig->cfg->rules;
	}
	return dec_default_rules(n);
}

static bool staged_enough(const struct ingest *ig)
{
	return spool_lent(ig->spool) && spool_staged(ig->spool) >= LENT_STAGED_MAX;
}

enum ingest_result ingest_put(struct ingest *ig, const char *device,
				  const struct log_fields *f, const struct mqtt_publish *pub)
{
	const struct iotgw_config *cfg = ig->cfg;
	if (ig->write_failed)
		return INGEST_FULL; /* nothing more until the spool can write again */
	struct device_state *dev = device_state(ig, device);
	if (!dev)
		return INGEST_FULL; /* out of memory: hold the device back, do not drop */
	size_t nrules;
	const struct dec_rule *rules = rules_of(ig, &nrules);
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
	struct buf *json = &ig->json;
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
	 * its share alone. So does a checkpoint with enough staged behind it. */
	if (!spool_has_room(ig->spool, (size_t)tlen, json->len) || staged_enough(ig))
		return INGEST_FULL;
	if (over_share(ig, dev, f, spool_entry_cost((size_t)tlen, json->len)))
		return INGEST_OVER_SHARE;
	int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	if (spool_put(ig->spool, device, topic, json->data, json->len, now_ms) != 0)
		return INGEST_FULL;
	if (ok) {
		dev->seq++;
		if (!dev->dirty) {
			dev->dirty = true;
			dev->dirty_next = ig->dirty_devices;
			ig->dirty_devices = dev;
		}
		ig->m.accepted++;
		if (log_enabled(LOG_DEBUG))
			log_event(LOG_DEBUG, EV_READING_ACCEPTED, f, "%.*s: %.2f C (seq %llu)",
				  (int)pub->topic.len, pub->topic.ptr, value.temperature_c,
				  (unsigned long long)dev->seq);
	} else {
		ig->m.rejected[!rule		  ? REJECT_NO_RULE
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
static void tell(struct ingest *ig, enum ingest_news n)
{
	struct news_queue *q = &ig->newsq;
	if (q->n && q->q[(q->head + q->n - 1) % NEWS_QUEUE_MAX] == n)
		return;
	if (q->n == NEWS_QUEUE_MAX) {
		/* Cannot happen (struct news_queue); dropping a flush's
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
static void deliver_news(struct ingest *ig)
{
	struct news_queue *q = &ig->newsq;
	while (q->n) {
		enum ingest_news n = q->q[q->head];
		q->head = (q->head + 1) % NEWS_QUEUE_MAX;
		q->n--;
		ig->hooks.news(ig->hooks.arg, n);
	}
}

/* ---- back-pressure ---- */

static void pause_devices(struct ingest *ig, const char *why)
{
	if (ig->spool_full)
		return;
	ig->spool_full = true;
	if (!ig->m.full_since_ms) { /* a limit episode may become a write episode */
		ig->m.full_episodes++;
		ig->m.full_since_ms = ev_now_ms(ig->loop);
		ig->full_logged = false;
	}
	if (!ig->full_logged || ig->write_failed) {
		ig->full_logged = true;
		log_event(LOG_WARNING, EV_SPOOL_FULL, NULL,
			  "spool full (%s): holding devices back; nothing is dropped", why);
	}
	tell(ig, NEWS_HOLD_DEVICES);
}

void ingest_full(struct ingest *ig)
{
	if (ig->spool_full)
		return;
	if (staged_enough(ig)) {
		/* Not full: waiting for the checkpoint (ingest_turn reads them
		 * again when it ends). Not an episode to log or count. */
		if (!ig->ckpt_hold) {
			ig->ckpt_hold = true;
			tell(ig, NEWS_HOLD_DEVICES);
		}
		return;
	}
	char why[PATH_MAX + 128];
	if (ig->write_failed)
		snprintf(why, sizeof why, "writes are failing");
	else if (spool_disk_low(ig->spool))
		snprintf(why, sizeof why,
			 "free space: %llu KiB left for %s, below the %llu KiB reserve (min_free)",
			 (unsigned long long)(spool_disk_free(ig->spool) / 1024),
			 spool_path(ig->spool),
			 (unsigned long long)(spool_disk_reserve(ig->spool) / 1024));
	else
		snprintf(why, sizeof why, "limit: %llu messages, %llu bytes queued",
			 (unsigned long long)spool_count(ig->spool),
			 (unsigned long long)spool_bytes(ig->spool));
	pause_devices(ig, why);
}

static void maybe_resume(struct ingest *ig)
{
	/* The upstream took readings: devices held over their share may
	 * have room again (a few runaways, so rechecking them is cheap). */
	if ((ig->hooks.share_held(ig->hooks.arg) || ig->share_logged) &&
	    spool_count(ig->spool) != ig->share_checked_count) {
		ig->share_checked_count = spool_count(ig->spool);
		if (ig->hooks.share_held(ig->hooks.arg))
			tell(ig, NEWS_SHARE_ROOM);
		share_episodes_end(ig);
	}
	if (ig->spool_full && !ig->write_failed && !spool_disk_low(ig->spool) &&
	    spool_fill(ig->spool) < RESUME_FILL) {
		ig->spool_full = false;
		tell(ig, NEWS_READ_DEVICES); /* may fill it again at once */
	}
	/* At its limit the spool fills and drains by the percent: the
	 * episode ends, once, when it is well below. */
	if (ig->m.full_since_ms && !ig->spool_full && spool_fill(ig->spool) < EPISODE_END_FILL) {
		ig->m.full_ms += ev_now_ms(ig->loop) - ig->m.full_since_ms;
		ig->m.full_since_ms = 0;
		log_event(LOG_NOTICE, EV_SPOOL_RESUMED, NULL,
			  "spool has room (%llu queued, below %.0f%%): devices are read freely "
			  "again",
			  (unsigned long long)spool_count(ig->spool), EPISODE_END_FILL * 100);
	}
}

/* ---- group commit ---- */

static int stage_seqs(struct ingest *ig)
{
	while (ig->dirty_devices) {
		struct device_state *d = ig->dirty_devices;
		if (spool_put_seq(ig->spool, d->name, d->seq) != 0)
			return -1;
		ig->dirty_devices = d->dirty_next;
		d->dirty = false;
		d->dirty_next = NULL;
	}
	return 0;
}

static void on_flush_done(struct ev_loop *loop, struct ev_io *io, uint32_t events);

/* Watches the spool's flush thread from the first turn it exists on: it
 * reports the flushes ingest starts and the checkpoints the spool starts on
 * its own (a checkpoint holds the commits back until it ends). */
static void watch_flush(struct ingest *ig)
{
	int fd = spool_flush_fd(ig->spool);
	if (ig->flush_io.fd >= 0 || fd < 0)
		return;
	if (ev_io_start(ig->loop, &ig->flush_io, fd, EPOLLIN, on_flush_done, ig) != 0) {
		/* Cannot hear back from the flush thread: cannot acknowledge. */
		log_event(LOG_CRIT, EV_SPOOL_FLUSH_FAILED, NULL,
			  "cannot watch the spool's flush thread: %s; exiting so that devices "
			  "re-send what was not acknowledged",
			  strerror(errno));
		_exit(EXIT_FAILURE);
	}
}

/* Moves the acks of committed readings towards their devices: a flush of
 * the WAL is started when commits with readings are not on disk yet (one
 * at a time; acks committed meanwhile wait for the next), else they go out
 * now (durability = os, or nothing new to flush). */
static void flush_progress(struct ingest *ig)
{
	/* Devices' acks wait for the flush, and so do the broker's PUBACKs of
	 * commands (downlink_holding_acks). */
	if (ig->flushing || (!ig->hooks.acks_committed(ig->hooks.arg) && !ig->hooks.commands_waiting(ig->hooks.arg)))
		return;
	if (!spool_flush_pending(ig->spool)) {
		if (ig->hooks.acks_committed(ig->hooks.arg))
			tell(ig, NEWS_ALL_DURABLE);
		return;
	}
	if (spool_flush_start(ig->spool)) {
		ig->flushing = true;
		tell(ig, NEWS_FLUSH_STARTED);
	}
}

static void on_flush_done(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct ingest *ig = io->arg;
	char err[PATH_MAX + 128];
	int rc = spool_flush_finish(ig->spool, err, sizeof err);
	if (rc == 1)
		return;
	ig->flushing = false;
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
	 * ingest_turn (before the loop sleeps again, right after this). After
	 * a checkpoint the acks wait for the flush that follows it, and the
	 * backlog on disk can be read again: offer the upstream more. */
	tell(ig, NEWS_FLUSHED);
	ig->kick_upstream = true;
}

static bool commit_once(struct ingest *ig)
{
	char err[256] = "out of memory";
	uint64_t t0 = ev_clock_us();
	int rc = stage_seqs(ig) != 0 ? -1 : spool_commit(ig->spool, err, sizeof err);
	prom_observe(&ig->m.commit, (double)(ev_clock_us() - t0) / 1e6, 1);
	if (rc != 0) {
		ig->m.write_errors++;
		if (!ig->write_failed) {
			ig->write_failed = true;
			log_event(LOG_ERR, EV_SPOOL_WRITE_FAILED, NULL,
				  "%s: commit failed: %s; %llu message(s) held in memory, "
				  "unacknowledged; retrying every %d ms",
				  spool_path(ig->spool), err,
				  (unsigned long long)spool_count(ig->spool), COMMIT_RETRY_MS);
			char why[300];
			snprintf(why, sizeof why, "write failed: %s", err);
			ig->spool_full = false; /* a limit episode becomes a write episode */
			pause_devices(ig, why);
		}
		ig->retry_at_ms = ev_now_ms(ig->loop) + COMMIT_RETRY_MS;
		ev_timer_start(ig->loop, &ig->commit_retry, COMMIT_RETRY_MS);
		return false;
	}
	if (ig->write_failed) {
		ig->write_failed = false;
		ev_timer_stop(ig->loop, &ig->commit_retry);
		log_event(LOG_NOTICE, EV_SPOOL_WRITE_RECOVERED, NULL, "%s: commits succeed again",
			  spool_path(ig->spool));
	}
	ig->kick_upstream = true;
	tell(ig, NEWS_COMMITTED);
	return true;
}

bool ingest_turn(struct ingest *ig)
{
	/* A failing commit is retried every COMMIT_RETRY_MS; news (a flush
	 * that finished, room again) are delivered meanwhile all the same. */
	bool may_commit = !(ig->write_failed && ev_now_ms(ig->loop) < ig->retry_at_ms);
	/* Held back for want of disk space with nothing to commit (the
	 * upstream is down, space was freed by someone else): measure again
	 * now and then, or nothing would ever notice. */
	if (may_commit && ig->spool_full && spool_disk_low(ig->spool) &&
	    ev_now_ms(ig->loop) >= ig->disk_check_at_ms) {
		(void)spool_check_disk(ig->spool);
		ig->disk_check_at_ms = ev_now_ms(ig->loop) + DISK_RECHECK_MS;
		ev_timer_start(ig->loop, &ig->commit_retry, DISK_RECHECK_MS);
	}
	watch_flush(ig);
	if (ig->ckpt_hold && !spool_lent(ig->spool)) {
		ig->ckpt_hold = false;
		if (!ig->spool_full)
			tell(ig, NEWS_READ_DEVICES);
	}
	bool ok = may_commit;
	for (int round = 0; round < COMMIT_ROUNDS; round++) {
		/* While the spool's database is with a checkpoint nothing is
		 * committed; its end wakes the loop (watch_flush). */
		if (ok && !spool_lent(ig->spool) &&
		    (spool_commit_due_in(ig->spool) == 0 || ig->dirty_devices)) {
			ig->input_barred++;
			ok = commit_once(ig);
			ig->input_barred--;
		}
		else if (ok && !spool_has_staged(ig->spool) && ig->hooks.acks_uncommitted(ig->hooks.arg))
			/* Replies held behind nothing new (a resent QoS 2
			 * PUBLISH, a PINGREQ after it) have nothing to wait for. */
			tell(ig, NEWS_COMMITTED);
		/* The commit's news (and those of the loop's callbacks: a
		 * flush that finished) first, so that flush_progress sees the
		 * acks now committed (hooks.acks_committed). Then the flush
		 * (or, with nothing to flush, the acks out) and room for the
		 * devices held back; delivering those reads devices again,
		 * which may stage readings for the next round. The deletes and
		 * commands of a failed commit may have gone through on their
		 * own (spool_commit): flushing those keeps the broker's PUBACKs,
		 * and the deletes that free space, coming. */
		deliver_news(ig);
		flush_progress(ig);
		maybe_resume(ig);
		deliver_news(ig);
		if (!ok || spool_commit_due_in(ig->spool) != 0)
			break;
	}
	bool kick = ig->kick_upstream;
	ig->kick_upstream = false;
	if (!ok)
		return kick;
	/* Devices released above staged more than the rounds allowed: wake up
	 * again at once rather than sleep on uncommitted readings. Deletes
	 * alone wait a little to share a commit (spool_commit_due_in). */
	int64_t due = spool_commit_due_in(ig->spool);
	if (due == 0)
		ev_timer_start(ig->loop, &ig->commit_retry, 0);
	else if (due > 0 && !ev_timer_active(&ig->commit_retry))
		ev_timer_start(ig->loop, &ig->commit_retry, (uint64_t)due);
	return kick;
}

static void on_commit_retry(struct ev_loop *loop, struct ev_timer *t)
{
	/* Nothing to do here: waking the loop is enough, its before-sleep hook
	 * retries the commit. */
	(void)loop;
	(void)t;
}

struct ingest *ingest_new(struct ev_loop *loop, struct spool *spool,
			  const struct ingest_hooks *hooks)
{
	struct ingest *ig = calloc(1, sizeof *ig);
	if (!ig)
		return NULL;
	ig->loop = loop;
	ig->spool = spool;
	ig->hooks = *hooks;
	ig->devices = strmap_new();
	if (!ig->devices) {
		free(ig);
		return NULL;
	}
	/* The record of the PUBLISH being ingested, reused for every one. A
	 * dead letter carries the payload in base64: room for the largest. */
	buf_init(&ig->json, JSON_MAX);
	ig->flush_io.fd = -1;
	ev_timer_init(&ig->commit_retry, on_commit_retry, ig);
	return ig;
}

void ingest_free(struct ingest *ig)
{
	if (!ig)
		return;
	ev_timer_stop(ig->loop, &ig->commit_retry);
	ev_io_stop(ig->loop, &ig->flush_io);
	free_devices(ig);
	buf_free(&ig->json);
	free(ig);
}

size_t ingest_devices(const struct ingest *ig)
{
	return strmap_size(ig->devices);
}

bool ingest_device_known(const struct ingest *ig, const char *device)
{
	return strmap_get(ig->devices, device) != NULL;
}

void ingest_configure(struct ingest *ig, const struct iotgw_config *cfg)
{
	ig->cfg = cfg;
	ig->share_checked_count = UINT64_MAX; /* shares may have changed */
}

void ingest_bar_input(struct ingest *ig, bool on)
{
	if (on)
		ig->input_barred++;
	else
		ig->input_barred--;
}

bool ingest_input_barred(const struct ingest *ig)
{
	return ig->input_barred > 0;
}

bool ingest_holding(const struct ingest *ig)
{
	return ig->spool_full;
}

bool ingest_write_failed(const struct ingest *ig)
{
	return ig->write_failed;
}

const struct ingest_metrics *ingest_metrics(const struct ingest *ig)
{
	return &ig->m;
}
