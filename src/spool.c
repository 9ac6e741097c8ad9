/* spool: the durable queue. See include/iotgw/spool.h for the contract and
 * docs/architecture.md for why SQLite in WAL mode.
 *
 * Three groups of entries, all in id order:
 *   staged   - put since the last commit; in memory only, not yet durable;
 *   ready    - committed and held in memory (the upstream's send window
 *              comes from here); at most READY_MAX entries;
 *   unloaded - committed but only on disk (a backlog larger than READY_MAX);
 *              every one has an id above load_after, and is read back in
 *              batches when ready runs dry.
 * count and bytes cover all three, minus acknowledged entries whose delete
 * may still be staged.
 *
 * The free-space reserve that decides whether there is room on the disk is
 * in spool_disk.c, the WAL's flushes and checkpoints in spool_wal.c, what
 * each device holds in spool_owner.c; spool_int.h is what they share. */
#include "iotgw/spool.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iotgw/reason.h"
#include "spool_int.h"
#include "spool_sync.h"

#define READY_MAX 4096  /* committed entries kept in memory */
#define LOAD_BATCH 512  /* entries read back from disk at once */
/* Deletes alone are committed once this many are pending or the oldest is
 * this old: each commit costs locks and WAL frames whatever it carries, and
 * a delete that is lost only re-sends an entry the broker already has. */
#define DELETE_BATCH 2048
#define DELETE_DELAY_MS 50

struct seq_update {
	char *device;
	uint64_t seq;
};


/* Wall clock, ms since the epoch: when a device was last seen survives a
 * restart. */
static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t spool_entry_cost(size_t topic_len, size_t payload_len)
{
	return (uint64_t)topic_len + payload_len + SPOOL_ENTRY_OVERHEAD;
}

static void entry_free(struct spool_entry *e)
{
	free(e); /* topic and payload live in the same block */
}

/* One allocation per entry: the struct, then the topic (NUL-terminated),
 * then the payload. */
static struct spool_entry *entry_new(uint64_t id, const char *topic, size_t tlen,
				     const void *payload, size_t len, int64_t enqueued_ms)
{
	if (tlen > SIZE_MAX / 2 || len > SIZE_MAX / 2 - tlen - sizeof(struct spool_entry) - 1)
		return NULL;
	struct spool_entry *e = malloc(sizeof *e + tlen + 1 + len);
	if (!e)
		return NULL;
	memset(e, 0, sizeof *e);
	e->topic = (char *)(e + 1);
	memcpy(e->topic, topic, tlen);
	e->topic[tlen] = '\0';
	e->payload = (uint8_t *)e->topic + tlen + 1;
	if (len)
		memcpy(e->payload, payload, len);
	e->len = len;
	e->id = id;
	e->enqueued_ms = enqueued_ms;
	return e;
}

static void ready_append(struct spool *s, struct spool_entry *e)
{
	e->next = NULL;
	if (s->tail)
		s->tail->next = e;
	else
		s->head = e;
	s->tail = e;
	if (!s->cursor)
		s->cursor = e;
	s->nready++;
	s->load_after = e->id;
}

/* ---- opening ---- */

static int take_lock(struct spool *s, const char *dir, char *err, size_t errlen)
{
	char lockpath[PATH_MAX];
	if (snprintf(lockpath, sizeof lockpath, "%s/%s", dir, SPOOL_LOCK_NAME) >=
	    (int)sizeof lockpath) {
		(void)reason_fail(err, errlen, "spool directory %s: path too long", dir);
		return -1;
	}
	s->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		(void)reason_fail(err, errlen, "%s: %s", lockpath, strerror(errno));
		return -1;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		char pid[32] = "";
		ssize_t n = pread(s->lock_fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		(void)reason_fail(err, errlen,
				  "spool directory %s is in use by another iotgw (pid %s)", dir,
				  pid[0] ? pid : "unknown");
		close(s->lock_fd);
		s->lock_fd = -1;
		return -1;
	}
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, pid, (size_t)n, 0) != n) {
		/* the pid is informational; the lock is what matters */
	}
	return 0;
}

static int prepare_all(struct spool *s)
{
	static const struct {
		size_t off;
		const char *sql;
	} stmts[] = {
		{offsetof(struct spool, st_insert),
		 "INSERT INTO spool(id, topic, payload, enqueued_ms, device) "
		 "VALUES (?1, ?2, ?3, ?4, ?5)"},
		{offsetof(struct spool, st_delete), "DELETE FROM spool WHERE id = ?1"},
		{offsetof(struct spool, st_seq),
		 "INSERT INTO device_seq(device, seq, last_seen_ms) VALUES (?1, ?2, ?3) "
		 "ON CONFLICT(device) DO UPDATE SET seq = excluded.seq, "
		 "last_seen_ms = excluded.last_seen_ms"},
		{offsetof(struct spool, st_load),
		 "SELECT id, topic, payload, enqueued_ms, device FROM spool WHERE id > ?1 ORDER BY id "
		 "LIMIT ?2"},
		{offsetof(struct spool, st_oldest),
		 "SELECT enqueued_ms FROM spool WHERE id > ?1 ORDER BY id LIMIT 1"},
		{offsetof(struct spool, st_freelist),
		 "SELECT freelist_count * page_size FROM pragma_freelist_count(), "
		 "pragma_page_size()"},
		{offsetof(struct spool, st_begin), "BEGIN IMMEDIATE"},
		{offsetof(struct spool, st_commit), "COMMIT"},
		{offsetof(struct spool, st_rollback), "ROLLBACK"},
	};
	for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
		sqlite3_stmt **st = (sqlite3_stmt **)(void *)((char *)s + stmts[i].off);
		if (sqlite3_prepare_v3(s->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, st,
				       NULL) != SQLITE_OK)
			return -1;
	}
	return 0;
}

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS spool("
	" id INTEGER PRIMARY KEY,"
	" topic TEXT NOT NULL,"
	" payload BLOB NOT NULL,"
	" enqueued_ms INTEGER NOT NULL,"
	" device TEXT);"
	"CREATE TABLE IF NOT EXISTS device_seq("
	" device TEXT PRIMARY KEY,"
	" seq INTEGER NOT NULL,"
	" last_seen_ms INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;";

/* 1: the table has the column, 0: not, -1: error. */
static int has_column(sqlite3 *db, const char *table, const char *column)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Spools of earlier versions. Without spool.device, their entries are
 * charged to no device. Without device_seq.last_seen_ms, their devices
 * count as seen now (forget_devices_after then starts from the upgrade). */
static int migrate(struct spool *s)
{
	int dev = has_column(s->db, "spool", "device");
	if (dev < 0 || (dev == 0 && exec(s->db, "ALTER TABLE spool ADD COLUMN device TEXT") !=
					    SQLITE_OK))
		return -1;
	int seen = has_column(s->db, "device_seq", "last_seen_ms");
	if (seen != 0)
		return seen > 0 ? 0 : -1;
	if (exec(s->db, "ALTER TABLE device_seq ADD COLUMN last_seen_ms INTEGER NOT NULL "
			"DEFAULT 0") != SQLITE_OK)
		return -1;
	char sql[96];
	snprintf(sql, sizeof sql, "UPDATE device_seq SET last_seen_ms = %lld",
		 (long long)wall_ms());
	return exec(s->db, sql) == SQLITE_OK ? 0 : -1;
}

struct spool *spool_open(const struct cfg_spool *cfg, char *err, size_t errlen)
{
	if (spool_vfs_register() != 0) {
		(void)reason_fail(err, errlen, "cannot register the SQLite VFS");
		return NULL;
	}
	struct spool *s = calloc(1, sizeof *s);
	if (!s) {
		(void)reason_fail(err, errlen, "out of memory");
		return NULL;
	}
	s->lock_fd = -1;
	s->max_messages = cfg->max_messages;
	s->max_bytes = cfg->max_bytes;
	s->min_free = cfg->min_free;
	s->ckpt_pages = 1000; /* SQLite's own default, until the reserve sizes it (spool_disk.c) */
	s->oldest_ms = -1;    /* not read yet: an age of 0 while a checkpoint holds the database */
	if (snprintf(s->dir, sizeof s->dir, "%s", cfg->dir) >= (int)sizeof s->dir) {
		(void)reason_fail(err, errlen, "spool directory %s: path too long", cfg->dir);
		goto fail;
	}
	if (mkdir(cfg->dir, 0700) != 0 && errno != EEXIST) {
		(void)reason_fail(err, errlen, "cannot create spool directory %s: %s", cfg->dir,
				  strerror(errno));
		goto fail;
	}
	if (take_lock(s, cfg->dir, err, errlen) != 0)
		goto fail;
	if (snprintf(s->path, sizeof s->path, "%s/%s", cfg->dir, SPOOL_DB_NAME) >=
	    (int)sizeof s->path) {
		(void)reason_fail(err, errlen, "spool directory %s: path too long", cfg->dir);
		goto fail;
	}
	int rc = sqlite3_open_v2(s->path, &s->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 spool_vfs_name);
	if (rc != SQLITE_OK) {
		(void)reason_fail(err, errlen, "%s: %s", s->path,
				  s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	/* The database is ours alone while we run: the flock above already
	 * keeps a second gateway out. Exclusive locking mode, set before the
	 * first access in WAL mode, keeps SQLite's file locks from one
	 * transaction to the next and the WAL index in our memory (no -shm
	 * file): six fcntl calls fewer per commit, which at a light load is
	 * one commit per reading. Other processes cannot read it meanwhile;
	 * `iotgw --spool-stats` reads the status file instead. */
	if (exec(s->db, "PRAGMA locking_mode=EXCLUSIVE") != SQLITE_OK) {
		(void)reason_fail(err, errlen, "%s: cannot take exclusive locking mode: %s", s->path,
				  sqlite3_errmsg(s->db));
		goto fail;
	}
	/* WAL: a commit appends to the log and syncs only the log. */
	char *mode = NULL;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			mode = strdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	bool wal = mode && strcmp(mode, "wal") == 0;
	free(mode);
	if (!wal) {
		(void)reason_fail(err, errlen, "%s: cannot switch to WAL mode: %s", s->path,
				  sqlite3_errmsg(s->db));
		goto fail;
	}
	if (exec(s->db, schema) != SQLITE_OK || migrate(s) != 0 || spool_load_totals(s) != 0 ||
	    prepare_all(s) != 0) {
		(void)reason_fail(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
		goto fail;
	}
	spool_set_durability(s, cfg->durability);
	(void)spool_check_disk(s);
	return s;
fail:
	spool_close(s);
	return NULL;
}

static void free_list(struct spool_entry *e)
{
	while (e) {
		struct spool_entry *next = e->next;
		entry_free(e);
		e = next;
	}
}

static void clear_seqs(struct spool *s)
{
	for (size_t i = 0; i < s->nseqs; i++)
		free(s->seqs[i].device);
	s->nseqs = 0;
}

void spool_close(struct spool *s)
{
	if (!s)
		return;
	if (s->db) {
		/* The thread first: it may hold the connection (a checkpoint),
		 * and a flush it runs covers commits made before. */
		spool_sync_free(s->sync);
		s->sync = NULL;
		s->lent = false;
		if (spool_dirty(s))
			(void)spool_commit(s, NULL, 0);
		/* The last commits flushed before the database closes (closing
		 * would not sync a WAL in synchronous = NORMAL). */
		if (s->must_flush > s->flushed)
			(void)exec(s->db, "PRAGMA wal_checkpoint(FULL)");
		sqlite3_finalize(s->st_insert);
		sqlite3_finalize(s->st_delete);
		sqlite3_finalize(s->st_seq);
		sqlite3_finalize(s->st_load);
		sqlite3_finalize(s->st_oldest);
		sqlite3_finalize(s->st_freelist);
		sqlite3_finalize(s->st_begin);
		sqlite3_finalize(s->st_commit);
		sqlite3_finalize(s->st_rollback);
		sqlite3_close(s->db);
	}
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	free_list(s->staged_head);
	free_list(s->head);
	free(s->deletes);
	clear_seqs(s);
	free(s->seqs);
	spool_owners_free(s);
	free(s);
}

void spool_set_limits(struct spool *s, uint64_t max_messages, uint64_t max_bytes,
		      uint64_t min_free)
{
	s->max_messages = max_messages;
	s->max_bytes = max_bytes;
	if (s->min_free != min_free) {
		s->min_free = min_free;
		(void)spool_check_disk(s);
	}
}

const char *spool_path(const struct spool *s)
{
	return s->path;
}

/* ---- staging ---- */

bool spool_has_room(const struct spool *s, size_t topic_len, size_t payload_len)
{
	return !s->disk_low && s->count < s->max_messages &&
	       s->bytes + spool_entry_cost(topic_len, payload_len) <= s->max_bytes;
}

int spool_put(struct spool *s, const char *device, const char *topic, const void *payload,
	      size_t len, int64_t now_ms)
{
	size_t tlen = strlen(topic);
	if (!spool_has_room(s, tlen, len))
		return -1;
	struct spool_entry *e = entry_new(s->next_id, topic, tlen, payload, len, now_ms);
	if (!e)
		return -1;
	if (device && !(e->owner = spool_owner_charge(s, device, spool_entry_cost(tlen, len)))) {
		entry_free(e);
		return -1;
	}
	s->next_id++;
	if (s->staged_tail)
		s->staged_tail->next = e;
	else
		s->staged_head = e;
	s->staged_tail = e;
	s->nstaged++;
	s->count++;
	s->bytes += spool_entry_cost(tlen, len);
	return 0;
}

static void *grow(void *arr, size_t n, size_t *cap, size_t elsize)
{
	if (n < *cap)
		return arr;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *p = realloc(arr, ncap * elsize);
	if (p)
		*cap = ncap;
	return p;
}

int spool_put_seq(struct spool *s, const char *device, uint64_t seq)
{
	struct seq_update *g = grow(s->seqs, s->nseqs, &s->capseqs, sizeof *s->seqs);
	if (!g)
		return -1;
	s->seqs = g;
	char *d = strdup(device);
	if (!d)
		return -1;
	s->seqs[s->nseqs++] = (struct seq_update){d, seq};
	return 0;
}

int spool_load_seqs(struct spool *s,
		    void (*fn)(void *ctx, const char *device, uint64_t seq, int64_t last_seen_ms),
		    void *ctx)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT device, seq, last_seen_ms FROM device_seq", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(ctx, (const char *)sqlite3_column_text(st, 0),
		   (uint64_t)sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int64_t spool_forget_devices(struct spool *s, int64_t before_ms)
{
	if (s->lent)
		return 0; /* the database is with the checkpoint: next time */
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "DELETE FROM device_seq WHERE last_seen_ms < ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, before_ms);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? sqlite3_changes(s->db) : -1;
}

static bool sidecar_staged(const struct spool *s)
{
	return s->sidecar.staged && s->sidecar.staged(s->sidecar.arg);
}

bool spool_dirty(const struct spool *s)
{
	return s->staged_head || s->ndeletes || s->nseqs ||
	       (s->sidecar.dirty && s->sidecar.dirty(s->sidecar.arg));
}

bool spool_has_staged(const struct spool *s)
{
	return s->staged_head || s->nseqs || sidecar_staged(s);
}

void spool_set_sidecar(struct spool *s, const struct spool_sidecar *sc)
{
	s->sidecar = sc ? *sc : (struct spool_sidecar){0};
}

struct sqlite3 *spool_db(struct spool *s)
{
	return s->db;
}

int64_t spool_commit_due_in(const struct spool *s)
{
	if (s->lent)
		return -1; /* the checkpoint's end wakes the loop (spool_flush_fd) */
	if (spool_has_staged(s))
		return 0;
	if (!s->ndeletes)
		return -1;
	if (s->ndeletes >= DELETE_BATCH)
		return 0;
	int64_t left = s->first_delete_ms + DELETE_DELAY_MS - mono_ms();
	return left > 0 ? left : 0;
}

/* ---- committing ---- */

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int write_entries(struct spool *s)
{
	int64_t now_ms = wall_ms();
	for (struct spool_entry *e = s->staged_head; e; e = e->next) {
		sqlite3_bind_int64(s->st_insert, 1, (sqlite3_int64)e->id);
		sqlite3_bind_text(s->st_insert, 2, e->topic, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(s->st_insert, 3, e->payload, e->len, SQLITE_STATIC);
		sqlite3_bind_int64(s->st_insert, 4, e->enqueued_ms);
		if (e->owner)
			sqlite3_bind_text(s->st_insert, 5, e->owner->name, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s->st_insert, 5);
		if (step_reset(s->st_insert) != 0)
			return -1;
	}
	for (size_t i = 0; i < s->nseqs; i++) {
		sqlite3_bind_text(s->st_seq, 1, s->seqs[i].device, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->st_seq, 2, (sqlite3_int64)s->seqs[i].seq);
		sqlite3_bind_int64(s->st_seq, 3, now_ms);
		if (step_reset(s->st_seq) != 0)
			return -1;
	}
	return 0;
}

static int write_deletes(struct spool *s)
{
	for (size_t i = 0; i < s->ndeletes; i++) {
		sqlite3_bind_int64(s->st_delete, 1, (sqlite3_int64)s->deletes[i]);
		if (step_reset(s->st_delete) != 0)
			return -1;
	}
	return 0;
}

/* One transaction: the deletes and the sidecar's rows (a few commands:
 * small, and what lets the broker have its PUBACKs), and the new entries
 * with the sequence numbers unless deletes_only. 0, or -1 with SQLite's reason in err and
 * nothing written. */
static int transaction(struct spool *s, bool deletes_only, char *err, size_t errlen)
{
	int failed = step_reset(s->st_begin) != 0 || write_deletes(s) != 0 ||
		     (!deletes_only && write_entries(s) != 0) ||
		     (s->sidecar.write && s->sidecar.write(s->sidecar.arg, s->db) != 0) ||
		     step_reset(s->st_commit) != 0;
	if (failed) {
		(void)reason_fail(err, errlen, "%s", sqlite3_errmsg(s->db));
		/* Some errors (SQLITE_FULL among them) may or may not have
		 * rolled back already. */
		if (!sqlite3_get_autocommit(s->db))
			(void)step_reset(s->st_rollback);
	}
	return failed ? -1 : 0;
}

int spool_commit(struct spool *s, char *err, size_t errlen)
{
	assert(!s->lent); /* callers wait for spool_commit_due_in / spool_lent */
	if (!spool_dirty(s))
		return 0;
	uint64_t written = PAGE_ESTIMATE * (1 + s->ndeletes / 64 + s->nseqs / 32);
	for (struct spool_entry *e = s->staged_head; e; e = e->next)
		written += spool_entry_cost(strlen(e->topic), e->len);
	if (transaction(s, false, err, errlen) != 0) {
		/* Most likely the disk is full. Stop taking new entries, give
		 * the WAL back, and let the deletes through on their own: they
		 * need little room, and every entry the broker has taken frees
		 * pages for the ones still staged. */
		s->disk_low = true;
		spool_checkpoint_truncate(s);
		bool side = sidecar_staged(s);
		if ((s->ndeletes || side) && (s->staged_head || s->nseqs) &&
		    transaction(s, true, NULL, 0) == 0) {
			s->ndeletes = 0;
			s->commits++;
			if (side)
				s->must_flush = s->commits;
			if (s->sidecar.committed)
				s->sidecar.committed(s->sidecar.arg, s->commits);
		}
		(void)spool_check_disk(s);
		return -1;
	}
	s->commits++;
	/* A commit of deletes alone needs no flush: losing it after a power
	 * cut only re-sends entries the broker already has (duplicates that
	 * carry their seq); the next flush covers it anyway. */
	if (s->staged_head || s->nseqs || sidecar_staged(s))
		s->must_flush = s->commits;
	if (s->sidecar.committed)
		s->sidecar.committed(s->sidecar.arg, s->commits);
	/* Committed: staged entries join the send queue (sending one before it
	 * is flushed risks only a duplicate). They stay in memory
	 * unless there is a backlog on disk ahead of them (order) or the
	 * in-memory window is full. */
	struct spool_entry *e = s->staged_head;
	s->staged_head = s->staged_tail = NULL;
	s->nstaged = 0;
	while (e) {
		struct spool_entry *next = e->next;
		if (s->unloaded == 0 && s->nready < READY_MAX) {
			ready_append(s, e);
		} else {
			s->unloaded++;
			entry_free(e);
		}
		e = next;
	}
	s->ndeletes = 0;
	clear_seqs(s);
	spool_maybe_check_disk(s, written);
	spool_maybe_checkpoint(s);
	return 0;
}

/* ---- sending ---- */

static void load_batch(struct spool *s)
{
	uint64_t room = READY_MAX - s->nready;
	if (room > LOAD_BATCH)
		room = LOAD_BATCH;
	sqlite3_bind_int64(s->st_load, 1, (sqlite3_int64)s->load_after);
	sqlite3_bind_int64(s->st_load, 2, (sqlite3_int64)room);
	while (sqlite3_step(s->st_load) == SQLITE_ROW) {
		const void *topic = sqlite3_column_text(s->st_load, 1);
		size_t tlen = (size_t)sqlite3_column_bytes(s->st_load, 1);
		const void *payload = sqlite3_column_blob(s->st_load, 2);
		size_t len = (size_t)sqlite3_column_bytes(s->st_load, 2);
		struct spool_entry *e =
			entry_new((uint64_t)sqlite3_column_int64(s->st_load, 0),
				  topic ? topic : "", topic ? tlen : 0, payload, len,
				  sqlite3_column_int64(s->st_load, 3));
		if (!e)
			break; /* out of memory: retried at the next call */
		/* Charged at its spool_put or at open (spool_load_totals). */
		e->owner = spool_owner_find(
			s, (const char *)sqlite3_column_text(s->st_load, 4));
		ready_append(s, e);
		s->unloaded--;
	}
	sqlite3_reset(s->st_load);
}

struct spool_entry *spool_next_unsent(struct spool *s)
{
	if (!s->cursor && s->unloaded > 0 && s->nready < READY_MAX && !s->lent)
		load_batch(s);
	return s->cursor;
}

void spool_mark_inflight(struct spool *s, struct spool_entry *e, int mid, uint64_t now_us)
{
	/* Entries go out strictly in order, so e is always the cursor. */
	e->inflight = true;
	e->mid = mid;
	e->sends++;
	e->sent_us = now_us;
	s->inflight++;
	s->cursor = e->next;
}

int spool_ack(struct spool *s, int mid, uint64_t *sent_us)
{
	/* In-flight entries form a prefix of the ready list no longer than the
	 * upstream window, so this scan is bounded by the window. */
	struct spool_entry *prev = NULL;
	for (struct spool_entry *e = s->head; e && e->inflight; prev = e, e = e->next) {
		if (e->mid != mid)
			continue;
		uint64_t *d = grow(s->deletes, s->ndeletes, &s->capdeletes, sizeof *s->deletes);
		if (!d)
			return -1; /* kept in flight; re-sent after a reconnect */
		s->deletes = d;
		if (s->ndeletes == 0)
			s->first_delete_ms = mono_ms();
		s->deletes[s->ndeletes++] = e->id;
		if (prev)
			prev->next = e->next;
		else
			s->head = e->next;
		if (s->tail == e)
			s->tail = prev;
		s->nready--;
		s->count--;
		uint64_t cost = spool_entry_cost(strlen(e->topic), e->len);
		s->bytes -= cost;
		spool_owner_release(s, e->owner, cost);
		s->inflight--;
		if (sent_us)
			*sent_us = e->sent_us;
		entry_free(e);
		return 0;
	}
	return -1;
}

void spool_requeue_inflight(struct spool *s)
{
	for (struct spool_entry *e = s->head; e && e->inflight; e = e->next)
		e->inflight = false;
	s->inflight = 0;
	s->cursor = s->head;
}

/* ---- figures ---- */

uint64_t spool_count(const struct spool *s)
{
	return s->count;
}

uint64_t spool_bytes(const struct spool *s)
{
	return s->bytes;
}

unsigned spool_inflight(const struct spool *s)
{
	return s->inflight;
}

uint64_t spool_oldest_age_ms(struct spool *s, int64_t now_ms)
{
	int64_t oldest = -1;
	if (s->head) {
		oldest = s->head->enqueued_ms;
	} else if (s->unloaded && s->lent) {
		oldest = s->oldest_ms; /* as last read: the database is with the checkpoint */
	} else if (s->unloaded) {
		sqlite3_bind_int64(s->st_oldest, 1, (sqlite3_int64)s->load_after);
		if (sqlite3_step(s->st_oldest) == SQLITE_ROW)
			oldest = sqlite3_column_int64(s->st_oldest, 0);
		sqlite3_reset(s->st_oldest);
		s->oldest_ms = oldest;
	} else if (s->staged_head) {
		oldest = s->staged_head->enqueued_ms;
	}
	if (oldest < 0 || now_ms < oldest)
		return 0;
	return (uint64_t)(now_ms - oldest);
}

double spool_fill(const struct spool *s)
{
	double m = s->max_messages ? (double)s->count / (double)s->max_messages : 0;
	double b = s->max_bytes ? (double)s->bytes / (double)s->max_bytes : 0;
	return m > b ? m : b;
}

uint64_t spool_commits(const struct spool *s)
{
	return s->commits;
}

uint64_t spool_syncs(const struct spool *s)
{
	return spool_vfs_syncs() + (s->sync ? spool_sync_count(s->sync) : 0);
}
