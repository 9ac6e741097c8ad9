/* spool_disk: the spool's free-space reserve. New entries are refused
 * while the file system (counting the pages SQLite can reuse) has less
 * than the reserve free, so that the deletes, the checkpoints and what is
 * already staged can always be written and a full disk never wedges the
 * spool (include/iotgw/spool.h states the contract). Here the free space
 * is measured, the WAL is sized by the reserve and given back when the
 * disk runs low, and the verdict keeps its hysteresis. */
#include <sqlite3.h>
#include <stdio.h>
#include <sys/statvfs.h>

#include "iotgw/spool.h"
#include "spool_int.h"

/* The free-space reserve is measured again after this long, or once
 * commits may have written an eighth of it since the last measurement. */
#define DISK_CHECK_MS 1000
#define WAL_LIMIT (4 * 1024 * 1024) /* journal_size_limit */

/* Writes the WAL back into the database and truncates it: what a full
 * disk needs most, since the WAL holds old versions of pages that the
 * database file has room for. Fails harmlessly while a reader (iotgw
 * --spool-stats) holds a snapshot. */
void spool_checkpoint_truncate(struct spool *s)
{
	(void)sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

static int measure_free(struct spool *s, uint64_t *total)
{
	struct statvfs st;
	if (statvfs(s->dir, &st) != 0)
		return -1;
	uint64_t reusable = 0;
	if (sqlite3_step(s->st_freelist) == SQLITE_ROW)
		reusable = (uint64_t)sqlite3_column_int64(s->st_freelist, 0);
	sqlite3_reset(s->st_freelist);
	s->disk_free = (uint64_t)st.f_bavail * st.f_frsize + reusable;
	*total = (uint64_t)st.f_blocks * st.f_frsize;
	return 0;
}

/* Bounds the WAL by the reserve: a checkpoint once the WAL holds a quarter
 * of it (1000 pages, SQLite's default, at most), and a WAL that grew past
 * WAL_LIMIT is cut back after the checkpoint. */
static void size_wal(struct spool *s)
{
	uint64_t pages = s->reserve / 4 / PAGE_ESTIMATE;
	if (pages > 1000)
		pages = 1000;
	if (pages < 16)
		pages = 16;
	s->ckpt_pages = (int)pages;
	spool_arm_checkpoints(s);
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA journal_size_limit=%d", WAL_LIMIT);
	(void)exec(s->db, sql);
}

bool spool_check_disk(struct spool *s)
{
	if (s->lent)
		return s->disk_low; /* the database is with the checkpoint: next time */
	s->checked_at_ms = mono_ms();
	s->written_since_check = 0;
	uint64_t total;
	if (measure_free(s, &total) != 0)
		return s->disk_low; /* cannot tell: keep the last verdict */
	uint64_t reserve = s->min_free < total / 4 ? s->min_free : total / 4;
	if (reserve != s->reserve) {
		s->reserve = reserve;
		size_wal(s);
	}
	if (s->disk_free < s->reserve) {
		spool_checkpoint_truncate(s);
		(void)measure_free(s, &total);
	}
	/* Hysteresis: low below the reserve, fine again above 1.5 times it,
	 * so that devices are not paused and resumed at every commit. */
	if (s->disk_free < s->reserve)
		s->disk_low = true;
	else if (s->disk_free >= s->reserve + s->reserve / 2)
		s->disk_low = false;
	return s->disk_low;
}

bool spool_disk_low(const struct spool *s)
{
	return s->disk_low;
}

uint64_t spool_disk_free(const struct spool *s)
{
	return s->disk_free;
}

uint64_t spool_disk_reserve(const struct spool *s)
{
	return s->reserve;
}

void spool_maybe_check_disk(struct spool *s, uint64_t written)
{
	s->written_since_check += written;
	if (s->written_since_check >= s->reserve / 8 ||
	    mono_ms() - s->checked_at_ms >= DISK_CHECK_MS)
		(void)spool_check_disk(s);
}
