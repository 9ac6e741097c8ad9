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
 * is read again (ingest.c does the holding and staging; this file says
 * whether a device is over its share, or has room again). One line when a
 * device's episode starts, one when it is well within its share again. */
#include <stdlib.h>
#include <string.h>

#include "ingest_int.h"
#include "iotgw/log.h"
#include "iotgw/share.h"

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

bool ingest_share_room(struct ingest *ig, const struct device_state *dev)
{
	struct share_in in;
	return share_of(ig, dev->name, 0, 0, &in, NULL, NULL) < SHARE_RESUME;
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
