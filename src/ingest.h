/* ingest: from a device PUBLISH to a durable spool entry, and the news of
 * what became of it.
 *
 * Owns: the per-device state (seq, last seen, share episodes), the record
 * being built (one buffer, reused), the group commit and the progress of
 * the spool's disk flush, the back-pressure state (spool full, writes
 * failing), its figures (struct ingest_metrics) and the queue of news for
 * the devices. Borrows the loop, the spool and the configuration in
 * service.
 *
 * Data flows one way. Sessions hand readings in (ingest_put); what becomes
 * of them comes back as news, queued where it happens (a commit, the disk
 * flush's completion, the upstream's progress, a reading that filled the
 * spool) and delivered through hooks->news from ingest_turn alone, between
 * its commits, in the order it happened. The rest of the gateway is seen
 * only through struct ingest_hooks: a few questions about what the
 * sessions and the downlink hold. This is the boundary a later split of
 * device I/O over threads would cross: batches in, news out. Not thread
 * safe: the loop's thread only. */
#ifndef IOTGW_INGEST_H
#define IOTGW_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotgw/config.h"
#include "iotgw/evloop.h"
#include "iotgw/log.h"
#include "iotgw/mqtt_codec.h"
#include "iotgw/prom.h"
#include "iotgw/spool.h"

/* What ingest tells the devices. */
enum ingest_news {
	NEWS_COMMITTED,     /* a commit succeeded: every ack held so far is committed */
	NEWS_FLUSH_STARTED, /* a disk flush of every commit so far began */
	NEWS_FLUSHED,       /* that flush finished: the acks it covered may go out */
	NEWS_ALL_DURABLE,   /* no flush needed: every committed ack may go out */
	NEWS_HOLD_DEVICES,  /* the spool is full or failing: stop reading devices */
	NEWS_READ_DEVICES,  /* room again: read them */
	NEWS_SHARE_ROOM,    /* the spool took readings away: recheck devices held over their share */
};

struct ingest_hooks {
	/* The devices hear the news (session_news). Called from ingest_turn
	 * only; may hand in more readings (ingest_put). */
	void (*news)(void *arg, enum ingest_news n);
	/* Do sessions hold acks behind readings not yet committed? Behind
	 * committed ones, waiting for the disk flush? */
	bool (*acks_uncommitted)(void *arg);
	bool (*acks_committed)(void *arg);
	/* Does the downlink hold a broker PUBACK until its command is on disk
	 * (downlink_holding_acks)? */
	bool (*commands_waiting)(void *arg);
	/* Are devices held back over their share of the spool? */
	bool (*share_held)(void *arg);
	/* Devices past their CONNECT, competing for the spool. */
	size_t (*active_devices)(void *arg);
	void *arg;
};

enum reject_class { REJECT_NO_RULE, REJECT_MALFORMED, REJECT_IMPLAUSIBLE, REJECT__COUNT };

/* Ingest's figures (metrics.c, gateway_status.c). */
struct ingest_metrics {
	uint64_t accepted;
	uint64_t rejected[REJECT__COUNT];
	struct prom_histo commit; /* spool_commit duration */
	uint64_t full_episodes;
	uint64_t full_ms;        /* in episodes that ended */
	uint64_t full_since_ms;  /* monotonic start of the current one, 0 outside one */
	uint64_t write_errors;   /* failed commits */
	uint64_t share_episodes; /* devices held back over their share of the spool */
};

struct ingest;

/* Borrows loop and spool; copies hooks. NULL: out of memory. Nothing is
 * ingested before ingest_configure. */
struct ingest *ingest_new(struct ev_loop *loop, struct spool *spool,
			  const struct ingest_hooks *hooks);
/* The configuration in service (at start and after every reload; borrowed):
 * rules, topics, spool shares. Devices held over their share are rechecked
 * at the next turn, as the shares may have changed. */
void ingest_configure(struct ingest *ig, const struct iotgw_config *cfg);
/* Stops its timer and its watch of the flush; frees the devices. */
void ingest_free(struct ingest *ig);

/* Per-device sequence numbers: loaded from the spool at start. 0 or -1. */
int ingest_load_devices(struct ingest *ig);
size_t ingest_devices(const struct ingest *ig);
bool ingest_device_known(const struct ingest *ig, const char *device);
/* A device connected: it counts as known, and as seen now for
 * forget_devices_after. */
void ingest_device_seen(struct ingest *ig, const char *device);
/* Forgets the devices not seen for forget_devices_after, in memory and in
 * the spool (a timer of the gateway's calls it). */
void ingest_forget_devices(struct ingest *ig);

/* INGEST_OVER_SHARE: this device alone is over its share of the spool
 * (iotgw/share.h): hold it back, read the others. */
enum ingest_result { INGEST_OK, INGEST_FULL, INGEST_OVER_SHARE };

/* Decodes one device PUBLISH and stages the reading (or its dead letter)
 * for the next commit. INGEST_FULL: nothing was staged and nothing
 * changed; call ingest_full and retry later. */
enum ingest_result ingest_put(struct ingest *ig, const char *device, const struct log_fields *f,
			      const struct mqtt_publish *pub);
/* The spool filled up: every device is held back (NEWS_HOLD_DEVICES)
 * until it has room again. */
void ingest_full(struct ingest *ig);
/* May a device held back over its share be read again (its use below
 * SHARE_RESUME)? */
bool ingest_share_room(struct ingest *ig, const char *device);

/* Once per loop iteration, before it sleeps: the group commit, in rounds
 * (a commit of what is staged, then the news it and the loop's callbacks
 * queued, which may stage more for the next round), and the one place the
 * news reach the devices. true: entries were committed that the upstream
 * should be offered. */
bool ingest_turn(struct ingest *ig);

/* Above 0 inside a commit or a callback that must not parse device input
 * (the upstream's progress): session_process_input asserts it is 0. */
void ingest_bar_input(struct ingest *ig, bool on);
bool ingest_input_barred(const struct ingest *ig);

bool ingest_holding(const struct ingest *ig);      /* devices held back: full or failing */
bool ingest_write_failed(const struct ingest *ig); /* the last commit failed */
const struct ingest_metrics *ingest_metrics(const struct ingest *ig);

#endif
