/* spool_sync: the flush thread behind durability = fsync (spool_sync.c says
 * why). Private to the spool: one flush at a time, asked for by the loop
 * with the number of the last commit it must cover, finished when the
 * eventfd (spool_sync_fd) becomes readable. The thread touches nothing but
 * its own descriptors and the fields under its mutex. */
#ifndef IOTGW_SPOOL_SYNC_H
#define IOTGW_SPOOL_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spool_sync;

/* Starts the thread for the WAL at wal_path in dir. NULL with a reason. */
struct spool_sync *spool_sync_new(const char *wal_path, const char *dir, char *err,
				  size_t errlen);
/* Waits for a flush in progress, stops the thread and frees. */
void spool_sync_free(struct spool_sync *y);
int spool_sync_fd(const struct spool_sync *y);
/* Starts a flush covering commits up to `upto`; false if one is running. */
bool spool_sync_begin(struct spool_sync *y, uint64_t upto);
/* After the eventfd fired: 1 while the flush runs, else 0 (done: *upto is
 * what it covered) or -1 (*error is the errno of the failed flush). */
int spool_sync_end(struct spool_sync *y, uint64_t *upto, int *error);
bool spool_sync_busy(struct spool_sync *y);
/* Flushes done since start. */
uint64_t spool_sync_count(struct spool_sync *y);

#endif
