/* ingest_int: struct ingest as its files see it (ingest.c: devices,
 * staging, the readings held over a share, the group commit, the flush,
 * back-pressure; ingest_share.c: whether a device is over its share of
 * the spool). Not a public interface. */
#ifndef IOTGW_INGEST_INT_H
#define IOTGW_INGEST_INT_H

#include "ingest.h"
#include "iotgw/buf.h"
#include "iotgw/strmap.h"

struct device_state {
	uint64_t seq;
	int64_t last_seen_ms; /* wall clock: a reading or a connection */
	/* Held over its share, logged, and not yet well within it again: on
	 * ig->share_logged (through share_next) until then. */
	bool share_episode;
	struct device_state *share_next;
	bool dirty;
	struct device_state *dirty_next;
	/* Its readings held over its share, in order (NULL: none); on
	 * ig->held_devices through held_next while it has some. */
	struct rbatch *held;
	struct device_state *held_next;
	/* Sessions whose held readings this turn staged (ingest_share.c). */
	struct buf staged_tokens;
	char name[]; /* the key, for staging the seq */
};

/* A worker's batch while the owner has it. */
struct ingest_slot {
	struct rbatch *b;
	bool in_commit; /* entries of it are staged for the coming commit */
	/* Sessions told in this batch that readings of theirs are held
	 * (NEWS_SHARE_HOLD once per session and batch). */
	uint64_t told[8];
	unsigned ntold;
};

struct ingest {
	struct ev_loop *loop;              /* borrowed */
	struct spool *spool;               /* borrowed */
	const struct iotgw_config *cfg;    /* borrowed: the configuration in service */
	struct ingest_hooks hooks;
	struct strmap *devices;            /* device id -> struct device_state */
	struct device_state *dirty_devices; /* seq changed since the last commit */
	struct device_state *share_logged;  /* in a logged share episode */
	struct device_state *held_devices;  /* with readings held over their share */
	uint64_t share_checked_count;       /* the spool's count at the last share recheck */
	bool share_recheck;                 /* held devices may have room: try them */
	struct buf json;                    /* the record being built (owned; reused) */
	struct buf waits;                   /* scratch: struct ingest_wait for the news */
	struct ingest_slot slot[INGEST_WORKERS_MAX];
	unsigned next_slot; /* the worker staged first next time (round robin) */
	/* Back-pressure: devices are not read (the spool full, or failing). */
	bool spool_full;
	bool full_logged; /* this episode's spool_full line is written */
	bool ckpt_hold;   /* held for a checkpoint with LENT_STAGED_MAX staged */
	/* Group commit: a failing commit (disk full, I/O error) is retried
	 * every second; the disk flush runs on the spool's thread. Commits are
	 * numbered; acks wait until their commit is durable. */
	bool kick_upstream; /* newly committed entries to offer upstream */
	bool write_failed;
	uint64_t retry_at_ms;
	uint64_t disk_check_at_ms; /* next free-space measurement while held for it */
	struct ev_timer commit_retry;
	uint64_t commits;      /* successful commits so far */
	uint64_t durable;      /* commits up to here are on disk */
	uint64_t need_durable; /* acks wait for commits up to here */
	uint64_t flush_covers; /* the running flush makes commits up to here durable */
	bool flushing;         /* the spool's disk flush is running */
	struct ev_io flush_io; /* its completion (spool_flush_fd) */
	struct ingest_metrics m;
};

/* ingest_share.c (ingest.c calls it; it calls nothing back) */
/* Over its share with this entry (cost bytes)? Logs an episode's start. */
bool ingest_over_share(struct ingest *ig, struct device_state *dev, uint64_t cost);
/* May a device held over its share be staged again (below SHARE_RESUME)? */
bool ingest_share_room(struct ingest *ig, const struct device_state *dev);
/* The upstream took readings: devices may be back within their share
 * (ig->share_recheck), and episodes end. */
void ingest_share_progress(struct ingest *ig);

#endif
