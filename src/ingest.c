/* ingest: the owner's half, from a worker's batch of decoded readings to
 * durable spool entries (ingest.h says what it owns and how it talks to
 * the rest).
 *
 * ingest_take receives a worker's batch; ingest_turn, once per owner
 * turn, stages the batches' entries in order (numbering each device's
 * readings), writes everything staged in one transaction and tells each
 * worker which commit holds its batch; the disk flush then makes commits
 * durable, and the news of the durable commit releases the devices' acks.
 * When the spool is full or a commit fails, staging stops where it is (the
 * rest of a batch waits, unacknowledged) and the devices are held back
 * (TCP back-pressure) instead of anything being dropped or acknowledged
 * that could not be stored. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ingest_int.h"

#include "iotgw/log.h"
#include "iotgw/reading.h"
#include "iotgw/sdnotify.h"

/* Devices are read again once the spool is below its limit by this much
 * (1%): close to the limit, so that at the limit devices go at the rate
 * the upstream drains, in small steps, instead of stopping until a tenth
 * of the spool has drained and then all rushing in. */
#define RESUME_FILL 0.99
/* ... while the episode (one spool_full line, one spool_resumed line, the
 * metrics' full episodes and seconds) lasts until it is below 90%. */
#define EPISODE_END_FILL 0.9
#define COMMIT_RETRY_MS 1000    /* a failing commit is retried this often */
#define DISK_RECHECK_MS 1000    /* free space is measured this often while it is short */
#define JSON_MAX (8u << 20)     /* a dead letter of a max_packet_size (1M) payload fits */
/* While a checkpoint holds the spool's database (spool_lent) nothing is
 * committed; batches are staged meanwhile, up to this many readings (a
 * few MB), then devices are held until it ends. QoS 1 devices stop sooner
 * on their own (their acks wait); this bounds a QoS 0 flood on a slow
 * disk. */
#define LENT_STAGED_MAX 16384

/* ---- devices ---- */

static struct device_state *device_new(struct ingest *ig, const char *device, uint64_t seq)
{
	size_t n = strlen(device);
	struct device_state *d = calloc(1, sizeof *d + n + 1);
	if (!d)
		return NULL;
	memcpy(d->name, device, n + 1);
	d->seq = seq;
	buf_init(&d->staged_tokens, 64 * sizeof(uint64_t));
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

/* Not seen since the cut-off, and nothing of it waiting. */
static bool forgotten(void *ctx, const char *key, void *value)
{
	(void)key;
	const struct device_state *d = value;
	return !d->dirty && !d->share_episode && !d->held &&
	       d->last_seen_ms < *(const int64_t *)ctx;
}

static void free_device(void *p)
{
	struct device_state *d = p;
	rbatch_free(d->held);
	buf_free(&d->staged_tokens);
	free(d);
}

void ingest_forget_devices(struct ingest *ig)
{
	unsigned after_s = ig->cfg->spool.forget_devices_after_s;
	if (!after_s)
		return;
	int64_t cut = ev_wall_ms() - (int64_t)after_s * 1000;
	size_t mem = strmap_sweep(ig->devices, forgotten, &cut, free_device);
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

static void full(struct ingest *ig);
static void tell(struct ingest *ig, const struct ingest_news *n);

/* ---- staging ---- */

static bool staged_enough(const struct ingest *ig)
{
	return spool_lent(ig->spool) && spool_staged(ig->spool) >= LENT_STAGED_MAX;
}

enum stage_result { STAGED, STAGE_FULL, STAGE_OVER_SHARE };

static enum stage_result stage_entry(struct ingest *ig, struct device_state *dev,
				      const struct rb_entry *e, bool share)
{
	const struct iotgw_config *cfg = ig->cfg;
	const char *device = rb_device(e);
	const char *event = rb_event(e);
	dev->last_seen_ms = (int64_t)e->ts.tv_sec * 1000 + e->ts.tv_nsec / 1000000;
	struct buf *json = &ig->json;
	json->len = 0;
	int jrc;
	char topic[512];
	int tlen;
	if (e->ok) {
		struct reading r = {
			.device = device,
			.gateway = cfg->gateway.name,
			.event = event,
			.seq = dev->seq + 1,
			.ts = e->ts,
			.value = e->value,
		};
		jrc = reading_json(&r, json);
		tlen = reading_topic(cfg->upstream.topic, device, cfg->gateway.name, event, topic,
				     sizeof topic);
	} else {
		char why[256];
		snprintf(why, sizeof why, "%.*s", (int)e->why_len, rb_why(e));
		jrc = deadletter_json(device, cfg->gateway.name, e->ts, rb_topic(e), e->topic_len,
				      why, rb_payload(e), e->payload_len, json);
		tlen = reading_topic(cfg->upstream.dead_letter_topic, device, cfg->gateway.name,
				     event, topic, sizeof topic);
	}
	if (jrc != 0 || tlen < 0)
		return STAGE_FULL;
	/* A full spool holds everyone back; short of that, the device over
	 * its share alone. So does a checkpoint with enough staged behind it. */
	if (!spool_has_room(ig->spool, (size_t)tlen, json->len) || staged_enough(ig))
		return STAGE_FULL;
	if (share && ingest_over_share(ig, dev, spool_entry_cost((size_t)tlen, json->len)))
		return STAGE_OVER_SHARE;
	if (spool_put(ig->spool, device, topic, json->data, json->len, dev->last_seen_ms) != 0)
		return STAGE_FULL;
	if (e->ok) {
		dev->seq++;
		if (!dev->dirty) {
			dev->dirty = true;
			dev->dirty_next = ig->dirty_devices;
			ig->dirty_devices = dev;
		}
		ig->m.accepted++;
		if (log_enabled(LOG_DEBUG)) {
			struct log_fields f = {.device = device};
			log_event(LOG_DEBUG, EV_READING_ACCEPTED, &f, "%.2f C (seq %llu)",
				  e->value.temperature_c, (unsigned long long)dev->seq);
		}
	} else {
		ig->m.rejected[e->reject < REJECT__COUNT ? e->reject : REJECT_MALFORMED]++;
	}
	return STAGED;
}

/* ---- readings held over a device's share (ingest_share.c says when) ---- */

static bool hold_entry(struct ingest *ig, struct ingest_slot *slot, unsigned worker,
		       struct device_state *dev, const struct rb_entry *e)
{
	if (!dev->held) {
		if (!(dev->held = rbatch_new()))
			return false;
		dev->held_next = ig->held_devices;
		ig->held_devices = dev;
		ig->m.share_held++;
	}
	if (rbatch_add_copy(dev->held, e) != 0)
		return false;
	/* Its session's acks from here on wait: told once per batch. */
	for (unsigned i = 0; i < slot->ntold; i++)
		if (slot->told[i] == e->token)
			return true;
	if (slot->ntold < sizeof slot->told / sizeof slot->told[0])
		slot->told[slot->ntold++] = e->token;
	tell(ig, &(struct ingest_news){.kind = NEWS_SHARE_HOLD,
					      .worker = worker,
					      .token = e->token,
					      .n = e->ack_pos});
	return true;
}

static void note_staged(struct device_state *dev, uint64_t token)
{
	const uint64_t *t = (const uint64_t *)(const void *)dev->staged_tokens.data;
	size_t n = dev->staged_tokens.len / sizeof token;
	for (size_t i = 0; i < n; i++)
		if (t[i] == token)
			return;
	/* Out of memory: that session hears at the device's next commit. */
	if (buf_append(&dev->staged_tokens, &token, sizeof token) != 0)
		return;
}

static bool stage_held(struct ingest *ig)
{
	ig->share_recheck = false;
	for (struct device_state *dev = ig->held_devices; dev; dev = dev->held_next) {
		if (!ingest_share_room(ig, dev))
			continue; /* no room yet */
		const struct rb_entry *e;
		while ((e = rbatch_peek(dev->held))) {
			enum stage_result r = stage_entry(ig, dev, e, true);
			if (r == STAGE_FULL) {
				full(ig);
				return false;
			}
			if (r == STAGE_OVER_SHARE)
				break;
			note_staged(dev, e->token);
			rbatch_pop(dev->held);
		}
	}
	return true;
}

/* The position of the first reading of token still held, or UINT64_MAX. */
static uint64_t first_held(const struct device_state *dev, uint64_t token)
{
	if (!dev->held)
		return UINT64_MAX;
	for (const struct rb_entry *e = rbatch_after(dev->held, NULL); e;
	     e = rbatch_after(dev->held, e))
		if (e->token == token)
			return e->ack_pos;
	return UINT64_MAX;
}

static void held_committed(struct ingest *ig, uint64_t c)
{
	struct device_state **pp = &ig->held_devices;
	while (*pp) {
		struct device_state *dev = *pp;
		if (rbatch_done(dev->held)) { /* all staged: the device is free */
			rbatch_free(dev->held);
			dev->held = NULL;
			ig->m.share_held--;
		}
		const uint64_t *t = (const uint64_t *)(const void *)dev->staged_tokens.data;
		size_t n = dev->staged_tokens.len / sizeof *t;
		for (size_t i = 0; i < n; i++) {
			tell(ig, &(struct ingest_news){.kind = NEWS_SHARE_COMMITTED,
							      .worker = TOKEN_WORKER(t[i]),
							      .token = t[i],
							      .n = c,
							      .upto = first_held(dev, t[i])});
			if (c > ig->need_durable)
				ig->need_durable = c;
		}
		if (dev->held && n)
			ig->share_recheck = true; /* it moved: see whether it has more room */
		dev->staged_tokens.len = 0;
		if (dev->held) {
			pp = &dev->held_next;
		} else {
			*pp = dev->held_next;
			dev->held_next = NULL;
			buf_shrink_if_empty(&dev->staged_tokens);
		}
	}
}

/* Stages what is left of worker w's batch, in order. false: the spool is
 * full (the rest waits in the batch). */
static bool stage_batch(struct ingest *ig, unsigned w)
{
	struct ingest_slot *slot = &ig->slot[w];
	const struct rb_entry *e;
	while ((e = rbatch_peek(slot->b))) {
		struct device_state *dev = device_state(ig, rb_device(e));
		if (!dev) { /* out of memory: wait, do not drop */
			full(ig);
			return false;
		}
		/* Behind readings of its device held over its share: behind
		 * them it waits, in order. */
		enum stage_result r =
			dev->held ? STAGE_OVER_SHARE : stage_entry(ig, dev, e, true);
		if (r == STAGE_FULL) {
			full(ig);
			return false;
		}
		if (r == STAGE_OVER_SHARE && !hold_entry(ig, slot, w, dev, e)) {
			full(ig);
			return false;
		}
		if (r == STAGED)
			slot->in_commit = true;
		rbatch_pop(slot->b);
	}
	return true;
}

static bool stage(struct ingest *ig)
{
	if (ig->spool_full || ig->ckpt_hold || ig->write_failed)
		return false;
	if (ig->share_recheck && !stage_held(ig))
		return false;
	unsigned n = INGEST_WORKERS_MAX;
	for (unsigned i = 0; i < n; i++) {
		unsigned w = (ig->next_slot + i) % n;
		if (ig->slot[w].b && !stage_batch(ig, w)) {
			ig->next_slot = w; /* it goes first next time */
			return false;
		}
	}
	ig->next_slot = (ig->next_slot + 1) % n;
	return true;
}

void ingest_take(struct ingest *ig, unsigned worker, struct rbatch *b)
{
	struct ingest_slot *slot = &ig->slot[worker];
	if (slot->b) { /* a worker has one batch with the owner at a time */
		log_event(LOG_CRIT, EV_LOOP_FAILED, NULL,
			  "internal error: worker %u handed a second batch; exiting so that devices "
			  "re-send what was not acknowledged",
			  worker);
		abort();
	}
	*slot = (struct ingest_slot){.b = b};
}

static void tell(struct ingest *ig, const struct ingest_news *n)
{
	ig->hooks.news(ig->hooks.arg, n);
}

static int cmp_wait(const void *a, const void *b)
{
	const struct ingest_wait *x = a, *y = b;
	return x->token < y->token ? -1 : x->token > y->token;
}

/* The sessions with readings left in a batch, and where each one's wait
 * begins (its first entry not staged), sorted by token. */
static size_t batch_waits(struct ingest *ig, const struct rbatch *b)
{
	struct buf *w = &ig->waits;
	w->len = 0;
	for (const struct rb_entry *e = rbatch_after(b, NULL); e; e = rbatch_after(b, e)) {
		struct ingest_wait *ws = (struct ingest_wait *)(void *)w->data;
		size_t n = w->len / sizeof *ws, i = 0;
		for (; i < n && ws[i].token != e->token; i++)
			;
		if (i < n)
			continue;
		struct ingest_wait one = {e->token, e->ack_pos};
		if (buf_append(w, &one, sizeof one) != 0)
			break; /* out of memory: those sessions' acks wait for the rest */
	}
	size_t n = w->len / sizeof(struct ingest_wait);
	if (n > 1)
		qsort(w->data, n, sizeof(struct ingest_wait), cmp_wait);
	return n;
}

/* Tells each worker whose batch has entries in commit c (done: all of
 * them, or it had none to commit) and gives finished batches back. */
static void answer_batches(struct ingest *ig, bool committed, uint64_t c)
{
	for (unsigned w = 0; w < INGEST_WORKERS_MAX; w++) {
		struct ingest_slot *slot = &ig->slot[w];
		if (!slot->b || (slot->in_commit && !committed))
			continue;
		bool done = rbatch_done(slot->b);
		if (!done && !slot->in_commit)
			continue; /* nothing new of it in this commit */
		struct ingest_news n = {.kind = NEWS_COMMITTED, .worker = w, .n = c, .done = done,
					.durable_follows = slot->b->replies && c > ig->durable};
		if (slot->b->replies)
			ig->need_durable = c > ig->need_durable ? c : ig->need_durable;
		if (done) {
			n.batch = slot->b;
			*slot = (struct ingest_slot){0};
		} else {
			n.nwaits = batch_waits(ig, slot->b);
			n.waits = (const struct ingest_wait *)(const void *)ig->waits.data;
			slot->in_commit = false;
			slot->ntold = 0;
		}
		tell(ig, &n);
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
	tell(ig, &(struct ingest_news){.kind = NEWS_HOLD_DEVICES});
}

static void full(struct ingest *ig)
{
	if (ig->spool_full)
		return;
	if (staged_enough(ig)) {
		/* Not full: waiting for the checkpoint (ingest_turn reads them
		 * again when it ends). Not an episode to log or count. */
		if (!ig->ckpt_hold) {
			ig->ckpt_hold = true;
			tell(ig, &(struct ingest_news){.kind = NEWS_HOLD_DEVICES});
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
	ingest_share_progress(ig);
	if (ig->spool_full && !ig->write_failed && !spool_disk_low(ig->spool) &&
	    spool_fill(ig->spool) < RESUME_FILL) {
		ig->spool_full = false;
		/* What waits in the batches goes first (stage), then the devices. */
		tell(ig, &(struct ingest_news){.kind = NEWS_READ_DEVICES});
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

/* ---- group commit and flush ---- */

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

static void set_durable(struct ingest *ig, uint64_t d)
{
	if (d <= ig->durable)
		return;
	ig->durable = d;
	tell(ig, &(struct ingest_news){.kind = NEWS_DURABLE, .n = d});
}

/* Makes the commits acks wait for durable: a flush of the WAL is started
 * when commits are not on disk yet (one at a time; commits meanwhile wait
 * for the next), else they are durable now (durability = os, or nothing
 * new to flush). */
static void flush_progress(struct ingest *ig)
{
	/* Devices' acks wait for the flush, and so do the broker's PUBACKs of
	 * commands (downlink_holding_acks). */
	if (ig->flushing ||
	    (ig->need_durable <= ig->durable && !ig->hooks.commands_waiting(ig->hooks.arg)))
		return;
	if (!spool_flush_pending(ig->spool)) {
		set_durable(ig, ig->commits);
		return;
	}
	if (spool_flush_start(ig->spool)) {
		ig->flushing = true;
		ig->flush_covers = ig->commits;
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
	/* The acks it covered go out now; the next flush starts in
	 * ingest_turn (before the loop sleeps again, right after this). After
	 * a checkpoint the acks wait for the flush that follows it, and the
	 * backlog on disk can be read again: offer the upstream more. */
	if (ig->flushing) {
		ig->flushing = false;
		set_durable(ig, ig->flush_covers);
	}
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
	ig->commits++;
	ig->kick_upstream = true;
	return true;
}

bool ingest_turn(struct ingest *ig)
{
	/* A failing commit is retried every COMMIT_RETRY_MS; batches that
	 * need no commit are answered meanwhile all the same. */
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
			tell(ig, &(struct ingest_news){.kind = NEWS_READ_DEVICES});
	}
	bool ok = may_commit;
	(void)stage(ig);
	bool committed = false;
	/* While the spool's database is with a checkpoint nothing is
	 * committed; its end wakes the loop (watch_flush). */
	if (ok && !spool_lent(ig->spool) &&
	    (spool_commit_due_in(ig->spool) == 0 || ig->dirty_devices))
		committed = ok = commit_once(ig);
	/* The batches in this commit, and those that needed none. */
	answer_batches(ig, committed, ig->commits);
	if (committed)
		held_committed(ig, ig->commits);
	/* Then the flush (or, with nothing to flush, the acks out) and room
	 * for the devices held back. The deletes and commands of a failed
	 * commit may have gone through on their own (spool_commit): flushing
	 * those keeps the broker's PUBACKs, and the deletes that free space,
	 * coming. */
	flush_progress(ig);
	maybe_resume(ig);
	bool kick = ig->kick_upstream;
	ig->kick_upstream = false;
	if (!ok)
		return kick;
	/* Room came back (or a share did) with readings still waiting in
	 * batches: stage them on the next turn, at once. */
	bool waiting = ig->share_recheck;
	for (unsigned w = 0; w < INGEST_WORKERS_MAX && !waiting; w++)
		waiting = ig->slot[w].b && !rbatch_done(ig->slot[w].b);
	if (waiting && !ig->spool_full && !ig->ckpt_hold) {
		ev_timer_start(ig->loop, &ig->commit_retry, 0);
		return kick;
	}
	/* Deletes alone wait a little to share a commit (spool_commit_due_in). */
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
	/* The record being staged, reused for every one. A dead letter carries
	 * the payload in base64: room for the largest. */
	buf_init(&ig->json, JSON_MAX);
	buf_init(&ig->waits, (size_t)RBATCH_ENTRIES_FULL * sizeof(struct ingest_wait));
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
	for (unsigned w = 0; w < INGEST_WORKERS_MAX; w++)
		rbatch_free(ig->slot[w].b);
	strmap_free(ig->devices, free_device);
	buf_free(&ig->json);
	buf_free(&ig->waits);
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
