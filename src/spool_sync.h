/* spool_sync: the flush thread behind durability = fsync (spool_sync.c says
 * why). Private to the spool: one job at a time, asked for by the loop,
 * finished when the eventfd (spool_sync_fd) becomes readable. A job is a
 * flush (with the number of the last commit it must cover) or a WAL
 * checkpoint of the spool's database, which the loop lends the thread and
 * does not touch until the job is collected. Otherwise the thread touches
 * nothing but its own descriptors and the fields under its mutex. */
#ifndef IOTGW_SPOOL_SYNC_H
#define IOTGW_SPOOL_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spool_sync;
struct sqlite3;

/* Starts the thread for the WAL at wal_path in dir. NULL with a reason. */
struct spool_sync *spool_sync_new(const char *wal_path, const char *dir, char *err,
				  size_t errlen);
/* Waits for a flush in progress, stops the thread and frees. */
void spool_sync_free(struct spool_sync *y);
int spool_sync_fd(const struct spool_sync *y);
/* Starts a flush covering commits up to `upto`; false if a job is running. */
bool spool_sync_begin(struct spool_sync *y, uint64_t upto);
/* Starts a PASSIVE checkpoint of db, lent to the thread until the job is
 * collected; false if a job is running. */
bool spool_sync_checkpoint(struct spool_sync *y, struct sqlite3 *db);
/* After the eventfd fired: 1 while the job runs, else 0 (done: *upto is
 * what a flush covered, 0 for a checkpoint) or -1 (*error: the errno of a
 * failed flush, or SQLite's result code of a failed checkpoint). *checkpoint
 * says which kind it was. */
int spool_sync_end(struct spool_sync *y, uint64_t *upto, int *error, bool *checkpoint);
bool spool_sync_busy(struct spool_sync *y);
/* Flushes done since start. */
uint64_t spool_sync_count(struct spool_sync *y);

#endif
