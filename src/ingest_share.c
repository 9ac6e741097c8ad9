/* ingest_share: a device's share of the spool, on the owner (ingest.h).
 *
 * A runaway device must not fill the spool that every device needs while
 * the upstream is away (iotgw/share.h has the rule: per-device limits, and
 * a fair share from half full). A reading over its device's share is not
 * staged: it is held here, in order, with every later reading of that
 * device, and the session that sent it is told (NEWS_SHARE_HOLD: its acks
 * from that reading on wait, and it is not read). When the upstream takes
 * readings and the device has room again, its held readings are staged
 * first, and the sessions are told which commit holds them
 * (NEWS_SHARE_COMMITTED); a session none of whose readings wait any more
 * is read again. One line when a device's episode starts, one when it is
 * well within its share again. */
#include <stdlib.h>
#include <string.h>

#include "ingest_int.h"
#include "iotgw/log.h"
#include "iotgw/share.h"

bool ingest_shares_apply(struct ingest *ig)
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
	size_t active = ig->hooks.active_devices(ig->hooks.arg);
	in->devices = active > held ? active : held;
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
		if (dev->held || share_episode_use(&in) >= SHARE_EPISODE_END) {
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

bool ingest_over_share(struct ingest *ig, struct device_state *dev, uint64_t cost)
{
	if (!dev->share_episode && !ingest_shares_apply(ig))
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
		struct log_fields f = {.device = dev->name};
		log_event(LOG_WARNING, EV_SPOOL_SHARE_EXCEEDED, &f,
			  "device %s holds %llu reading(s), %llu bytes, of the spool (%.0f%% full, "
			  "%zu device(s) competing): over its %s of %llu; not read until the "
			  "upstream takes some, other devices are read",
			  dev->name, (unsigned long long)in.messages - 1,
			  (unsigned long long)(in.bytes - cost), in.fill * 100, in.devices,
			  share_limit_name(which), (unsigned long long)limit);
	}
	return true;
}

bool ingest_hold_entry(struct ingest *ig, struct ingest_slot *slot, unsigned worker,
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
	ingest_tell(ig, &(struct ingest_news){.kind = NEWS_SHARE_HOLD,
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

bool ingest_stage_held(struct ingest *ig)
{
	ig->share_recheck = false;
	for (struct device_state *dev = ig->held_devices; dev; dev = dev->held_next) {
		struct share_in in;
		if (share_of(ig, dev->name, 0, 0, &in, NULL, NULL) >= SHARE_RESUME)
			continue; /* no room yet */
		const struct rb_entry *e;
		while ((e = rbatch_peek(dev->held))) {
			enum stage_result r = ingest_stage_entry(ig, dev, e, true);
			if (r == STAGE_FULL) {
				ingest_full(ig);
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

void ingest_held_committed(struct ingest *ig, uint64_t c)
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
			ingest_tell(ig, &(struct ingest_news){.kind = NEWS_SHARE_COMMITTED,
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

void ingest_share_progress(struct ingest *ig)
{
	/* The upstream took readings: devices held over their share may
	 * have room again (a few runaways, so rechecking them is cheap). */
	if ((ig->held_devices || ig->share_logged) &&
	    spool_count(ig->spool) != ig->share_checked_count) {
		ig->share_checked_count = spool_count(ig->spool);
		if (ig->held_devices)
			ig->share_recheck = true;
		share_episodes_end(ig);
	}
}
