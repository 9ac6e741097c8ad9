/* spool: the durable, bounded queue between ingestion and upstream.
 *
 * Storage is SQLite in WAL mode (DIR/spool.db; docs/architecture.md says
 * why). Writes are group-committed: spool_put only stages an entry in
 * memory, and spool_commit writes everything staged since the last commit,
 * the deletes of acknowledged entries and the per-device sequence numbers
 * in one transaction (one fsync with durability = fsync). The caller
 * acknowledges a device only after the commit that holds its reading
 * succeeded. A failed commit (disk full, I/O error) keeps everything staged,
 * in order, for the next attempt.
 *
 * Entries keep arrival order. Upstream sends committed entries from the
 * head, marking them in flight; an entry is deleted only once the broker
 * acknowledged it; a lost upstream connection makes in-flight entries
 * unsent again, in the same order. Only a window of committed entries is
 * held in memory; a backlog larger than that stays on disk and is read
 * back in batches.
 *
 * Ownership: spool_open returns a spool the caller closes with spool_close.
 * spool_put copies topic and payload. Entries (spool_next_unsent) and
 * spool_path belong to the spool: an entry stays valid until it is acked
 * or the spool is closed, and is never freed by the caller. */
#ifndef IOTGW_SPOOL_H
#define IOTGW_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotgw/config.h"

#define SPOOL_DB_NAME "spool.db"
#define SPOOL_LOCK_NAME "iotgw.lock"
#define SPOOL_STATUS_NAME "status"

struct spool_entry {
	struct spool_entry *next;
	uint64_t id; /* position in the queue, increasing */
	char *topic;
	uint8_t *payload;
	size_t len;
	int64_t enqueued_ms; /* wall clock (ms since the epoch): survives restarts */
	int mid;             /* upstream message id while in flight */
	bool inflight;
	unsigned sends;   /* times published (in this process) */
	uint64_t sent_us; /* monotonic, when last published */
	struct spool_owner *owner; /* the device it is charged to, or NULL */
};

struct spool;

/* Opens (creating if needed) DIR/spool.db and takes DIR/iotgw.lock, so a
 * second gateway cannot use the same spool. NULL with a reason in err. */
struct spool *spool_open(const struct cfg_spool *cfg, char *err, size_t errlen);
/* Commits what is staged (best effort), then closes the database. */
void spool_close(struct spool *s);
void spool_set_limits(struct spool *s, uint64_t max_messages, uint64_t max_bytes,
		      uint64_t min_free);
void spool_set_durability(struct spool *s, enum cfg_durability d);
const char *spool_path(const struct spool *s);

/* Would an entry of this size fit now (staged entries count, and the file
 * system must keep min_free)? */
bool spool_has_room(const struct spool *s, size_t topic_len, size_t payload_len);

/* Stages a copy for the next commit, charged to device (NULL: to nobody,
 * e.g. the downlink's status reports). 0, or -1 when full or out of
 * memory. */
int spool_put(struct spool *s, const char *device, const char *topic, const void *payload,
	      size_t len, int64_t now_ms);
/* What one device holds in the spool (staged entries count, and entries
 * still on disk from before a restart): entries and their cost against
 * max_bytes; 0 and 0 for a device with none. The spool keeps these counts
 * per device (spool_owner.c), so ingest can hold back the device over its
 * share (iotgw/share.h). */
void spool_device_usage(const struct spool *s, const char *device, uint64_t *messages,
			uint64_t *bytes);
/* Devices holding entries. */
size_t spool_devices(const struct spool *s);
/* The devices holding the most entries, most first (ties by name), at
 * most n of them: "which device fills my spool?" (the status file, for
 * `iotgw --spool-stats`). device points into the spool until it changes.
 * Returns how many were filled. O(devices): for the status, not per
 * message. */
#define SPOOL_TOP_DEVICES 5 /* what --spool-stats's top_devices shows */
struct spool_holder {
	const char *device;
	uint64_t entries;
};
size_t spool_top_devices(const struct spool *s, struct spool_holder *top, size_t n);
/* What an entry of this size costs against max_bytes. */
uint64_t spool_entry_cost(size_t topic_len, size_t payload_len);
/* Stages a device's latest sequence number for the next commit (which
 * also records the device as seen then). */
int spool_put_seq(struct spool *s, const char *device, uint64_t seq);
/* Calls fn for every persisted device sequence number, with when the
 * device last had a reading committed (ms since the epoch). 0 or -1. */
int spool_load_seqs(struct spool *s,
		    void (*fn)(void *ctx, const char *device, uint64_t seq, int64_t last_seen_ms),
		    void *ctx);
/* Deletes the sequence numbers of devices last seen before before_ms, at
 * once (a transaction of its own). The number deleted, or -1. */
int64_t spool_forget_devices(struct spool *s, int64_t before_ms);

/* Anything staged (entries, deletes, sequence numbers) awaiting a commit? */
bool spool_dirty(const struct spool *s);
/* Entries or sequence numbers staged, which someone waits for (their
 * devices' acks)? */
bool spool_has_staged(const struct spool *s);
/* When a commit is due, in ms from now: 0 = now (anything staged, or many
 * deletes), > 0 = deletes alone, which may wait that long to share a
 * commit, -1 = nothing to commit (or nothing may be: spool_lent). */
int64_t spool_commit_due_in(const struct spool *s);
/* One transaction for everything staged. 0; -1 with SQLite's reason in err,
 * and everything stays staged for a later attempt. Never while lent. */
int spool_commit(struct spool *s, char *err, size_t errlen);
/* The database is with the flush thread for a WAL checkpoint: commits (and
 * reading the backlog from disk) wait until spool_flush_finish takes it
 * back; staging goes on. With durability = fsync the WAL's checkpoints run
 * there, so that the two syncs SQLite makes in each never stop the loop;
 * with durability = os SQLite's automatic checkpoint runs inside the
 * commit. */
bool spool_lent(const struct spool *s);
/* Entries staged for the next commit. */
uint64_t spool_staged(const struct spool *s);
/* Checkpoints the flush thread completed, and (in *failed) those that
 * failed (a full disk; the next one tries again). */
uint64_t spool_checkpoints(const struct spool *s, uint64_t *failed);

/* The oldest committed entry not yet in flight, or NULL. May read the next
 * batch from disk. The spool owns it (see the top of this file). */
struct spool_entry *spool_next_unsent(struct spool *s);
/* e (the spool_next_unsent entry) was published as mid at now_us. */
void spool_mark_inflight(struct spool *s, struct spool_entry *e, int mid, uint64_t now_us);
/* Deletes the in-flight entry with this message id (the delete is staged
 * for the next commit), telling when it was published; -1 if none. */
int spool_ack(struct spool *s, int mid, uint64_t *sent_us);
/* Upstream lost: every in-flight entry becomes unsent again. */
void spool_requeue_inflight(struct spool *s);

/* Entries queued, staged ones included, and their size against max_bytes. */
uint64_t spool_count(const struct spool *s);
uint64_t spool_bytes(const struct spool *s);
unsigned spool_inflight(const struct spool *s);
/* Age in ms of the oldest entry, 0 when empty. */
uint64_t spool_oldest_age_ms(struct spool *s, int64_t now_ms);
/* Fill level as a fraction of the tighter of the two limits. */
double spool_fill(const struct spool *s);
/* The free-space reserve ([spool] min_free, at most a quarter of the file
 * system). New entries are refused while less than that is free, counting
 * the database's reusable pages; everything staged, the deletes and the
 * checkpoints write into the reserve, so a full disk holds devices back and
 * recovers as the upstream drains instead of wedging. spool_commit measures
 * again now and then; spool_check_disk measures now (and gives the WAL
 * back when low) and returns spool_disk_low(). Low turns off only above
 * 1.5 times the reserve. */
bool spool_check_disk(struct spool *s);
bool spool_disk_low(const struct spool *s);
uint64_t spool_disk_free(const struct spool *s);
uint64_t spool_disk_reserve(const struct spool *s);
/* Successful commits since open. */
uint64_t spool_commits(const struct spool *s);
/* Disk flushes issued since start: SQLite's own (checkpoints) and the
 * flush thread's. */
uint64_t spool_syncs(const struct spool *s);

/* durability = fsync: a commit is written to the WAL but flushed to disk
 * by a thread of the spool's own, so the loop never waits for the disk.
 * spool_flush_pending: a commit with entries is not flushed yet;
 * spool_flush_start: starts a flush of every commit so far (false if one
 * is running, the thread runs a checkpoint, or nothing needs it); when
 * spool_flush_fd (an eventfd; -1 with durability = os, where nothing is
 * flushed) is readable, spool_flush_finish: 0 = a job ended (after a flush,
 * what was committed before its start is on disk; after a checkpoint, the
 * database is back: commit what waited), 1 = still running, -1 = the flush
 * failed (reason in err): what it covered may not be on disk and must not
 * be acknowledged. The eventfd must be watched whenever it exists, as the
 * spool starts checkpoints on its own. */
int spool_flush_fd(const struct spool *s);
bool spool_flush_pending(const struct spool *s);
bool spool_flush_start(struct spool *s);
int spool_flush_finish(struct spool *s, char *err, size_t errlen);

/* A table of another module in the same database (the downlink's
 * commands), written in the spool's own transactions so that it shares
 * their group commit and flush. write runs inside every commit (0, or -1:
 * the whole transaction fails and everything stays staged); staged says it
 * has rows a flush must cover (new ones), dirty that it has anything at
 * all (deletes too); committed is told the number of the commit that
 * wrote them. */
struct sqlite3;
struct spool_sidecar {
	int (*write)(void *arg, struct sqlite3 *db);
	bool (*staged)(void *arg);
	bool (*dirty)(void *arg);
	void (*committed)(void *arg, uint64_t commit);
	void *arg;
};
void spool_set_sidecar(struct spool *s, const struct spool_sidecar *sc);
struct sqlite3 *spool_db(struct spool *s);
/* The commits known to be on disk: flushed with durability = fsync, every
 * commit with durability = os. */
uint64_t spool_durable_commits(const struct spool *s);

/* The counting VFS under the spool (spool_vfs.c): file syncs (fsync or
 * fdatasync) SQLite actually issued in this process. */
int spool_vfs_register(void);
uint64_t spool_vfs_syncs(void);
extern const char spool_vfs_name[];

/* What a spool costs against max_bytes per entry beyond topic and payload. */
#define SPOOL_ENTRY_OVERHEAD 32

#endif
