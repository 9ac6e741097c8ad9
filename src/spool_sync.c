/* spool_sync: the spool's disk flush, on a thread of its own.
 *
 * With durability = fsync a device may only be acknowledged once its
 * reading is on disk. SQLite would sync the WAL inside every COMMIT, on the
 * event loop, which then stops every device and the upstream for as long as
 * the disk takes (milliseconds on an SSD, up to a second on an SD card).
 * Instead the spool commits with synchronous = NORMAL (the WAL frames reach
 * the page cache, SQLite still syncs around checkpoints) and this thread
 * calls fdatasync(2) on the WAL: the loop asks for "everything committed up
 * to commit N", keeps reading, decoding and committing meanwhile, and hears
 * back through an eventfd. The flushes then batch themselves: while one runs,
 * the next batch grows.
 *
 * fdatasync works on the file, not on a descriptor, so our own descriptor of
 * spool.db-wal flushes what SQLite wrote through its own. The directory is
 * synced once, for the WAL file's own entry.
 *
 * The WAL's checkpoints run here too. SQLite syncs the WAL and then the
 * database in every checkpoint (synchronous = NORMAL); run inside a COMMIT
 * on the loop, as SQLite's automatic checkpoint is, those two syncs stopped
 * every device for as long as the disk took. The spool's connection keeps
 * its database exclusively (spool.c), so no second connection can
 * checkpoint: the loop lends this thread its own connection for the
 * checkpoint and leaves it alone until the job is collected (the
 * connection is opened SQLITE_OPEN_NOMUTEX: one thread at a time, which the
 * lending guarantees). */
#include "spool_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <sqlite3.h>

#include "iotgw/reason.h"

struct spool_sync {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int efd; /* the thread signals the loop here */
	char wal[PATH_MAX], dir[PATH_MAX];
	int wal_fd; /* opened by the thread on first use */
	bool dir_synced;
	unsigned restarts; /* WAL restarts the thread made (checkpoint_once) */
	/* Under mu: */
	bool busy;        /* a job was asked for and not yet collected */
	bool done;        /* ... and it finished */
	bool stop;
	sqlite3 *ckpt_db; /* the job is a checkpoint of this lent connection */
	uint64_t target;  /* commit number the current flush covers */
	int result;       /* 0, or the errno (SQLite's code) of the failure */
	uint64_t count;   /* flushes done */
};

static int checkpoint_once(struct spool_sync *y, sqlite3 *db)
{
	int log = 0, done = 0;
	int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
	/* All of the WAL is in the database: the next write starts it over,
	 * and SQLite first syncs its new header. That write is made here, so
	 * that this sync too is the thread's and not the loop's next commit's:
	 * user_version, which nothing reads, alternating. */
	if (rc == SQLITE_OK && log > 0 && done == log) {
		char sql[40];
		snprintf(sql, sizeof sql, "PRAGMA user_version=%u", ++y->restarts & 1u);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	return rc == SQLITE_OK ? 0 : rc;
}

static int flush_once(struct spool_sync *y)
{
	if (y->wal_fd < 0) {
		y->wal_fd = open(y->wal, O_RDONLY | O_CLOEXEC);
		if (y->wal_fd < 0)
			return errno;
	}
	if (fdatasync(y->wal_fd) != 0)
		return errno;
	if (!y->dir_synced) {
		int d = open(y->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (d < 0 || fsync(d) != 0) {
			int e = errno;
			if (d >= 0)
				close(d);
			return e;
		}
		close(d);
		y->dir_synced = true;
	}
	return 0;
}

static void *run(void *p)
{
	struct spool_sync *y = p;
	pthread_mutex_lock(&y->mu);
	for (;;) {
		while (!y->stop && !(y->busy && !y->done))
			pthread_cond_wait(&y->cv, &y->mu);
		if (y->stop)
			break;
		sqlite3 *db = y->ckpt_db;
		pthread_mutex_unlock(&y->mu);
		int rc = db ? checkpoint_once(y, db) : flush_once(y);
		pthread_mutex_lock(&y->mu);
		y->result = rc;
		y->done = true;
		if (!db)
			y->count++;
		uint64_t one = 1;
		ssize_t w = write(y->efd, &one, sizeof one);
		(void)w; /* an eventfd write only fails when its counter is full */
	}
	pthread_mutex_unlock(&y->mu);
	return NULL;
}

struct spool_sync *spool_sync_new(const char *wal_path, const char *dir, char *err,
				  size_t errlen)
{
	struct spool_sync *y = calloc(1, sizeof *y);
	if (!y) {
		(void)reason_fail(err, errlen, "out of memory");
		return NULL;
	}
	y->wal_fd = -1;
	snprintf(y->wal, sizeof y->wal, "%s", wal_path);
	snprintf(y->dir, sizeof y->dir, "%s", dir);
	y->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (y->efd < 0) {
		(void)reason_fail(err, errlen, "eventfd: %s", strerror(errno));
		free(y);
		return NULL;
	}
	pthread_mutex_init(&y->mu, NULL);
	pthread_cond_init(&y->cv, NULL);
	int rc = pthread_create(&y->thread, NULL, run, y);
	if (rc != 0) {
		(void)reason_fail(err, errlen, "cannot start the flush thread: %s", strerror(rc));
		close(y->efd);
		pthread_mutex_destroy(&y->mu);
		pthread_cond_destroy(&y->cv);
		free(y);
		return NULL;
	}
	return y;
}

void spool_sync_free(struct spool_sync *y)
{
	if (!y)
		return;
	pthread_mutex_lock(&y->mu);
	y->stop = true;
	pthread_cond_signal(&y->cv);
	pthread_mutex_unlock(&y->mu);
	pthread_join(y->thread, NULL);
	if (y->wal_fd >= 0)
		close(y->wal_fd);
	close(y->efd);
	pthread_mutex_destroy(&y->mu);
	pthread_cond_destroy(&y->cv);
	free(y);
}

int spool_sync_fd(const struct spool_sync *y)
{
	return y->efd;
}

static bool begin(struct spool_sync *y, uint64_t upto, sqlite3 *db)
{
	pthread_mutex_lock(&y->mu);
	bool start = !y->busy;
	if (start) {
		y->busy = true;
		y->done = false;
		y->target = upto;
		y->ckpt_db = db;
		pthread_cond_signal(&y->cv);
	}
	pthread_mutex_unlock(&y->mu);
	return start;
}

bool spool_sync_begin(struct spool_sync *y, uint64_t upto)
{
	return begin(y, upto, NULL);
}

bool spool_sync_checkpoint(struct spool_sync *y, sqlite3 *db)
{
	return begin(y, 0, db);
}

int spool_sync_end(struct spool_sync *y, uint64_t *upto, int *error, bool *checkpoint)
{
	uint64_t v;
	ssize_t r = read(y->efd, &v, sizeof v);
	(void)r; /* EAGAIN: nothing new, the state below says so */
	pthread_mutex_lock(&y->mu);
	int rc = 1;
	if (y->busy && y->done) {
		y->busy = false;
		*checkpoint = y->ckpt_db != NULL;
		y->ckpt_db = NULL; /* the connection is the loop's again */
		*upto = y->target;
		*error = y->result;
		rc = y->result ? -1 : 0;
	}
	pthread_mutex_unlock(&y->mu);
	return rc;
}

bool spool_sync_busy(struct spool_sync *y)
{
	pthread_mutex_lock(&y->mu);
	bool b = y->busy;
	pthread_mutex_unlock(&y->mu);
	return b;
}

uint64_t spool_sync_count(struct spool_sync *y)
{
	pthread_mutex_lock(&y->mu);
	uint64_t n = y->count;
	pthread_mutex_unlock(&y->mu);
	return n;
}
