/* spool_wal: the durability of the spool's WAL (see spool_int.h).
 *
 * With durability = fsync, commits reach the WAL with synchronous = NORMAL
 * (the page cache) and the spool's flush thread (spool_sync.c) makes them
 * durable: flushes of "every commit up to N", and the WAL's checkpoints,
 * for which the loop lends the thread its connection (spool_lent). With
 * durability = os there is no thread and SQLite checkpoints inside the
 * commit. spool.c keeps the queue; it calls spool_maybe_checkpoint after
 * each commit. */
#include <stdio.h>
#include <string.h>

#include "iotgw/reason.h"
#include "spool_int.h"
#include "spool_sync.h"

void spool_set_durability(struct spool *s, enum cfg_durability d)
{
	s->durability = d;
	/* NORMAL in WAL mode: a commit reaches the page cache, so it survives
	 * a crash of the process but not of the machine, and SQLite syncs only
	 * around checkpoints. With durability = fsync the flush thread syncs
	 * the WAL after commits (spool_flush_*), off the event loop: what
	 * synchronous = FULL would do inside every COMMIT. */
	(void)exec(s->db, "PRAGMA synchronous=NORMAL");
	if (d == CFG_DURABLE_FSYNC && !s->sync) {
		char wal[PATH_MAX + 8], err[256];
		snprintf(wal, sizeof wal, "%s-wal", s->path);
		s->sync = spool_sync_new(wal, s->dir, err, sizeof err);
		if (!s->sync) {
			/* Durability first: SQLite syncs every commit itself. */
			(void)exec(s->db, "PRAGMA synchronous=FULL");
		}
		spool_arm_checkpoints(s);
	}
}

/* SQLite's WAL hook, after every commit: how long the WAL has grown. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)db;
	(void)name;
	struct spool *s = arg;
	if (pages >= s->ckpt_pages)
		s->ckpt_due = true;
	return SQLITE_OK;
}

void spool_arm_checkpoints(struct spool *s)
{
	if (s->sync)
		(void)sqlite3_wal_hook(s->db, on_wal_commit, s); /* replaces the automatic one */
	else
		(void)sqlite3_wal_autocheckpoint(s->db, s->ckpt_pages);
}

/* Lends the connection to the flush thread for a checkpoint, if one is due
 * and the thread is free (else it starts after the flush running now). */
void spool_maybe_checkpoint(struct spool *s)
{
	if (s->sync && s->ckpt_due && !s->lent && spool_sync_checkpoint(s->sync, s->db)) {
		s->ckpt_due = false;
		s->lent = true;
		s->ckpt_upto = s->commits;
	}
}

bool spool_lent(const struct spool *s)
{
	return s->lent;
}

uint64_t spool_staged(const struct spool *s)
{
	return s->nstaged;
}

uint64_t spool_checkpoints(const struct spool *s, uint64_t *failed)
{
	if (failed)
		*failed = s->checkpoint_failures;
	return s->checkpoints;
}

uint64_t spool_durable_commits(const struct spool *s)
{
	return s->durability == CFG_DURABLE_FSYNC && s->sync ? s->flushed : s->commits;
}

/* ---- flushing (durability = fsync) ---- */

int spool_flush_fd(const struct spool *s)
{
	return s->sync ? spool_sync_fd(s->sync) : -1;
}

bool spool_flush_pending(const struct spool *s)
{
	return s->durability == CFG_DURABLE_FSYNC && s->sync && s->must_flush > s->flushed;
}

bool spool_flush_start(struct spool *s)
{
	if (!spool_flush_pending(s) || !spool_sync_begin(s->sync, s->must_flush))
		return false;
	s->flushing = s->must_flush;
	return true;
}

int spool_flush_finish(struct spool *s, char *err, size_t errlen)
{
	if (!s->sync)
		return 1;
	uint64_t upto = 0;
	int error = 0;
	bool ckpt = false;
	int rc = spool_sync_end(s->sync, &upto, &error, &ckpt);
	if (rc == 1)
		return 1;
	if (ckpt) {
		/* The connection is ours again. A failed checkpoint (a full
		 * disk: it writes into the database file) loses nothing: the
		 * WAL keeps the pages, and the next one tries again. */
		s->lent = false;
		if (rc == 0) {
			s->checkpoints++;
			/* With synchronous = NORMAL SQLite syncs the WAL before it
			 * copies it into the database (and the database after): a
			 * checkpoint that succeeded flushed every commit made before
			 * it started, whose acks need not wait for another flush. */
			if (s->ckpt_upto > s->flushed)
				s->flushed = s->ckpt_upto;
		} else {
			s->checkpoint_failures++;
		}
		return 0;
	}
	if (rc == 0 && upto > s->flushed)
		s->flushed = upto;
	if (rc < 0) {
		(void)reason_fail(err, errlen, "fdatasync %s-wal: %s", s->path, strerror(error));
		return rc;
	}
	spool_maybe_checkpoint(s); /* one that waited for this flush */
	return 0;
}
