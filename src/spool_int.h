/* spool_int: the spool's state, shared by spool.c (the queue: opening,
 * staging, committing, sending), spool_wal.c (flushes and checkpoints of
 * the WAL), spool_disk.c (the free-space reserve) and spool_owner.c (what
 * each device holds). Not part of the spool interface: nothing outside
 * these files includes it. */
#ifndef IOTGW_SPOOL_INT_H
#define IOTGW_SPOOL_INT_H

#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "iotgw/spool.h"
#include "iotgw/strmap.h"

#define PAGE_ESTIMATE 4096 /* bytes a commit writes to the WAL at least */

struct seq_update;
struct spool_sync;

struct spool {
	sqlite3 *db;
	struct spool_sidecar sidecar; /* all NULL when there is none */
	sqlite3_stmt *st_insert, *st_delete, *st_seq, *st_load, *st_oldest, *st_freelist;
	/* Prepared once: parsing them again at every commit showed up in
	 * profiles. */
	sqlite3_stmt *st_begin, *st_commit, *st_rollback;
	char path[PATH_MAX];
	char dir[PATH_MAX];
	int lock_fd;
	enum cfg_durability durability;
	/* durability = fsync: the flush thread (spool_sync.c), and the commits
	 * that must be flushed before their devices hear a PUBACK. Commits
	 * are numbered by `commits`. */
	struct spool_sync *sync;
	uint64_t must_flush; /* the last commit that carried entries or seqs */
	uint64_t flushed;    /* every commit up to here is on disk */
	uint64_t flushing;   /* what the flush in progress covers */
	/* WAL checkpoints: with the flush thread they run there, on this
	 * connection, lent to it meanwhile (`lent`: nothing here touches `db`
	 * until the job is collected); without it SQLite's automatic one runs
	 * inside the commit. Due once the WAL holds ckpt_pages (SQLite's WAL
	 * hook says after each commit). */
	bool lent;
	bool ckpt_due;
	uint64_t ckpt_upto; /* commits when the running checkpoint started */
	int ckpt_pages;
	uint64_t checkpoints, checkpoint_failures;
	int64_t oldest_ms; /* the oldest entry's enqueue time as last read from db, -1 before */

	struct spool_entry *staged_head, *staged_tail;
	uint64_t nstaged; /* entries between staged_head and staged_tail */
	struct spool_entry *head, *tail; /* ready */
	struct spool_entry *cursor;      /* first ready entry not in flight */
	uint64_t nready;
	uint64_t unloaded;
	uint64_t load_after;
	uint64_t next_id;

	uint64_t *deletes;
	size_t ndeletes, capdeletes;
	int64_t first_delete_ms; /* monotonic, when deletes became pending */
	struct seq_update *seqs;
	size_t nseqs, capseqs;

	uint64_t count, bytes;
	struct strmap *owners; /* device -> struct spool_owner (spool_owner.c) */
	unsigned inflight;
	uint64_t max_messages, max_bytes;
	uint64_t commits;

	/* Free-space reserve: new entries are refused while the file system
	 * (counting the pages SQLite can reuse) has less than `reserve` free,
	 * so that the deletes, the checkpoint and the entries already staged
	 * can always be written and a full disk never wedges the spool. */
	uint64_t min_free;      /* configured */
	uint64_t reserve;       /* in force: min_free, at most a quarter of the fs */
	uint64_t disk_free;     /* at the last measurement, reusable pages included */
	bool disk_low;
	uint64_t written_since_check; /* estimated bytes committed since */
	int64_t checked_at_ms;        /* monotonic */
};

static inline int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static inline int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* spool_owner.c: what each device holds in the spool, counted so that
 * ingest can hold back a device over its share. An owner exists while
 * the device has entries (staged, in memory or on disk); entries point to
 * theirs. */
struct spool_owner {
	uint64_t count, bytes;
	char name[]; /* the device id, written with its entries */
};
/* Charges an entry of cost to device: its owner (created if needed), or
 * NULL when out of memory. */
struct spool_owner *spool_owner_charge(struct spool *s, const char *device, uint64_t cost);
/* An entry of cost charged to o is gone (acknowledged). */
void spool_owner_release(struct spool *s, struct spool_owner *o, uint64_t cost);
/* The owner of device's entries, or NULL when it has none. */
struct spool_owner *spool_owner_find(const struct spool *s, const char *device);
/* At open: counts what survived from the previous run, in all and per
 * device; sets count, bytes, unloaded and next_id. 0, or -1 (SQLite's
 * error on the connection). */
int spool_load_totals(struct spool *s);
void spool_owners_free(struct spool *s);

/* spool_wal.c: who runs the WAL's checkpoints, from ckpt_pages (the flush
 * thread when there is one, else SQLite inside the commit); after a commit
 * or a flush, lends the connection to the flush thread for a checkpoint if
 * one is due and the thread is free. */
void spool_arm_checkpoints(struct spool *s);
void spool_maybe_checkpoint(struct spool *s);

/* spool_disk.c */
/* After a failed commit: gives the WAL back to the file system. */
void spool_checkpoint_truncate(struct spool *s);
/* After a commit that wrote about `written` bytes: measures the free space
 * again when that, or the time since the last measurement, calls for it. */
void spool_maybe_check_disk(struct spool *s, uint64_t written);

#endif
