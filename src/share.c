/* share: the per-device share of the spool (see iotgw/share.h). */
#include "iotgw/share.h"

static void consider(double *best, enum share_limit *which, uint64_t *limit, uint64_t used,
		     uint64_t cap, enum share_limit kind)
{
	if (cap == 0)
		return;
	double use = (double)used / (double)cap;
	if (use > *best) {
		*best = use;
		*which = kind;
		*limit = cap;
	}
}

double share_use(const struct share_in *in, enum share_limit *which, uint64_t *limit)
{
	double best = 0;
	enum share_limit w = SHARE_NONE;
	uint64_t cap = 0;
	consider(&best, &w, &cap, in->messages, in->max_messages_per_device, SHARE_MESSAGES);
	consider(&best, &w, &cap, in->bytes, in->max_bytes_per_device, SHARE_BYTES);
	/* Alone, a device may fill the spool: there is nobody to be fair to. */
	if (in->fair && in->fill >= SHARE_FAIR_FROM && in->devices > 1) {
		uint64_t n = (uint64_t)in->devices;
		/* Rounded up: the shares add up to at least the whole spool, so
		 * that devices at the same rate fill it before any is over (and
		 * each may hold one message, however many compete). */
		uint64_t fm = (in->max_messages + n - 1) / n;
		uint64_t fb = (in->max_bytes + n - 1) / n;
		consider(&best, &w, &cap, in->messages, fm, SHARE_FAIR_MESSAGES);
		consider(&best, &w, &cap, in->bytes, fb, SHARE_FAIR_BYTES);
	}
	if (which)
		*which = w;
	if (limit)
		*limit = cap;
	return best;
}

double share_episode_use(const struct share_in *in)
{
	struct share_in always = *in;
	always.fill = 1.0;
	return share_use(&always, NULL, NULL);
}

const char *share_limit_name(enum share_limit which)
{
	switch (which) {
	case SHARE_MESSAGES:
		return "max_messages_per_device";
	case SHARE_BYTES:
		return "max_bytes_per_device";
	case SHARE_FAIR_MESSAGES:
		return "fair share of max_messages";
	case SHARE_FAIR_BYTES:
		return "fair share of max_bytes";
	case SHARE_NONE:
		break;
	}
	return "none";
}
