/* ingest: from a device PUBLISH to a durable spool entry, and the news of
 * what became of it.
 *
 * Two halves on two sides of the batch boundary:
 *  - ingest_decode, on the worker that read the PUBLISH: the [decode] rule,
 *    the payload's value (or the dead letter and its log line), the time;
 *    appended to the worker's batch (rbatch.h). Pure: it reads only the
 *    configuration in service.
 *  - struct ingest, on the owner: the per-device state (seq, last seen,
 *    share episodes and the readings held over a share), the record being
 *    built (one buffer, reused), the staging of the workers' batches in
 *    order, the group commit and the progress of the spool's disk flush,
 *    the back-pressure state (spool full, writes failing), its figures
 *    (struct ingest_metrics). Borrows the loop, the spool and the
 *    configuration in service. Not thread safe: the owner's thread only.
 *
 * Data flows one way. Workers hand batches in (ingest_take); what became of
 * them goes out as news through hooks->news, posted where it happens:
 * a batch is in commit c (and comes back), every commit up to d is durable,
 * devices are held back or read again, a session is over its share or has
 * room again. The news never run session code: the hook posts them to the
 * workers, which act on them in their own turn. */
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
#include "rbatch.h"

#define INGEST_WORKERS_MAX 64
/* A session's token names it for as long as the process runs (a later
 * session never gets it): a number of its worker's, with the worker's index
 * in the low bits, so that news for it finds its way. */
#define TOKEN_WORKER(t) ((unsigned)((t) % INGEST_WORKERS_MAX))

enum ingest_news_kind {
	/* The worker's batch is in commit n. done: all of it, and the batch
	 * comes back; else its entries from each listed session's position on
	 * are not staged yet (the spool is full) and another NEWS_COMMITTED
	 * follows. */
	NEWS_COMMITTED,
	NEWS_DURABLE,      /* every commit up to n is on disk: their acks may go out */
	NEWS_HOLD_DEVICES, /* the spool is full or failing: stop reading devices */
	NEWS_READ_DEVICES, /* room again: read them */
	/* The session's readings from position n on are held over its
	 * device's share of the spool: hold it back. */
	NEWS_SHARE_HOLD,
	/* Its held readings before position upto (UINT64_MAX: all; then it
	 * may be read again) are in commit n. */
	NEWS_SHARE_COMMITTED,
};

/* A session whose acks from position pos on wait (NEWS_COMMITTED, not done). */
struct ingest_wait {
	uint64_t token, pos;
};

struct ingest_news {
	enum ingest_news_kind kind;
	unsigned worker;
	uint64_t token;
	uint64_t n;
	uint64_t upto;
	bool done;
	bool durable_follows; /* NEWS_COMMITTED: replies wait for n, not durable yet: a
			       * NEWS_DURABLE covering it follows */
	struct rbatch *batch;             /* NEWS_COMMITTED done: given back */
	const struct ingest_wait *waits; /* NEWS_COMMITTED not done, sorted by token */
	size_t nwaits;
};

struct ingest_hooks {
	/* Posts the news to the worker (kind's worker) or to every worker. */
	void (*news)(void *arg, const struct ingest_news *n);
	/* Does the downlink hold a broker PUBACK until its command is on disk
	 * (downlink_holding_acks)? */
	bool (*commands_waiting)(void *arg);
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
	uint64_t share_held;     /* devices whose readings wait over their share now */
};

/* ---- the worker's half ---- */

/* Decodes one device PUBLISH into an entry of b: the session's token and
 * its ackq position before the PUBLISH's ack. A payload no rule decodes
 * becomes a dead letter, logged here (f: the session's fields). 0, or -1
 * when b has no room (nothing appended). */
int ingest_decode(const struct iotgw_config *cfg, const char *device, const struct log_fields *f,
		  uint64_t token, uint64_t ack_pos, const struct mqtt_publish *pub, struct rbatch *b);

/* ---- the owner's half ---- */

struct ingest;

/* Borrows loop and spool; copies hooks. NULL: out of memory. Nothing is
 * ingested before ingest_configure. */
struct ingest *ingest_new(struct ev_loop *loop, struct spool *spool,
			  const struct ingest_hooks *hooks);
/* The configuration in service (at start and after every reload; borrowed):
 * topics, spool shares. Devices held over their share are rechecked at the
 * next turn, as the shares may have changed. */
void ingest_configure(struct ingest *ig, const struct iotgw_config *cfg);
/* Stops its timer and its watch of the flush; frees the devices and the
 * batches it holds. */
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

/* Worker w's sealed batch (w has none here already): staged at the next
 * turn, given back with NEWS_COMMITTED. */
void ingest_take(struct ingest *ig, unsigned worker, struct rbatch *b);

/* Once per owner turn, before it sleeps: the batches staged and committed,
 * in rounds (stage, commit, news, flush), and the news posted. true:
 * entries were committed that the upstream should be offered. */
bool ingest_turn(struct ingest *ig);

bool ingest_holding(const struct ingest *ig);      /* devices held back: full or failing */
bool ingest_write_failed(const struct ingest *ig); /* the last commit failed */
const struct ingest_metrics *ingest_metrics(const struct ingest *ig);

#endif
