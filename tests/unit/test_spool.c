/* spool: order, group commit, acknowledgement, requeue, persistence across
 * reopen, backlogs larger than the in-memory window, limits, the lock. Uses
 * a real SQLite database in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "iotgw/spool.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/iotgw-spool-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static struct spool *open_spool(uint64_t max_messages, uint64_t max_bytes)
{
	/* A small reserve: the WAL is checkpointed every 16 pages. */
	struct cfg_spool cfg = {.dir = dir,
				.durability = CFG_DURABLE_FSYNC,
				.max_messages = max_messages,
				.max_bytes = max_bytes,
				.min_free = 64 * 1024};
	char err[256] = "";
	struct spool *s = spool_open(&cfg, err, sizeof err);
	if (!s)
		fail_msg("spool_open: %s", err);
	return s;
}

/* Stages reading-n, charged to device d<n % 3>. */
static void put(struct spool *s, int n)
{
	char payload[32], device[8];
	int len = snprintf(payload, sizeof payload, "reading-%d", n);
	snprintf(device, sizeof device, "d%d", n % 3);
	assert_int_equal(
		spool_put(s, device, "sensors/d/temperature", payload, (size_t)len, 1000 + n), 0);
}

static uint64_t usage(struct spool *s, const char *device)
{
	uint64_t n, bytes;
	spool_device_usage(s, device, &n, &bytes);
	/* Every test entry has the same topic and a payload of 9 or 10 bytes. */
	assert_in_range(bytes, n * spool_entry_cost(21, 9), n * spool_entry_cost(21, 10));
	return n;
}

/* Waits for the job of the flush thread to end and collects it. */
static void wait_job(struct spool *s)
{
	char err[256];
	struct pollfd p = {.fd = spool_flush_fd(s), .events = POLLIN};
	int rc;
	do {
		assert_int_equal(poll(&p, 1, 10000), 1);
		rc = spool_flush_finish(s, err, sizeof err);
	} while (rc == 1);
	if (rc != 0)
		fail_msg("flush: %s", err);
}

/* Commits, after a checkpoint that holds the database, as the gateway does. */
static void commit(struct spool *s)
{
	char err[256] = "";
	while (spool_lent(s))
		wait_job(s);
	if (spool_commit(s, err, sizeof err) != 0)
		fail_msg("spool_commit: %s", err);
}

/* Sends the next entry with message id mid and checks it is reading-n. */
static void expect_next(struct spool *s, int n, int mid)
{
	struct spool_entry *e = spool_next_unsent(s);
	/* The backlog on disk waits while a checkpoint holds the database (the
	 * gateway offers the upstream more when it ends). */
	while (!e && spool_lent(s)) {
		wait_job(s);
		e = spool_next_unsent(s);
	}
	assert_non_null(e);
	char want[32];
	snprintf(want, sizeof want, "reading-%d", n);
	assert_int_equal(e->len, strlen(want));
	assert_memory_equal(e->payload, want, e->len);
	assert_string_equal(e->topic, "sensors/d/temperature");
	spool_mark_inflight(s, e, mid, 0);
}

static void test_staged_entries_are_not_sent_before_commit(void **state)
{
	(void)state;
	struct spool *s = open_spool(100, 1 << 20);
	put(s, 1);
	put(s, 2);
	assert_true(spool_dirty(s));
	assert_int_equal(spool_count(s), 2);
	assert_null(spool_next_unsent(s));
	commit(s);
	assert_false(spool_dirty(s));
	assert_int_equal(spool_commits(s), 1);
	expect_next(s, 1, 11);
	expect_next(s, 2, 12);
	assert_null(spool_next_unsent(s));
	spool_close(s);
}

static void test_ack_deletes_and_requeue_resends_in_order(void **state)
{
	(void)state;
	struct spool *s = open_spool(100, 1 << 20);
	for (int i = 1; i <= 4; i++)
		put(s, i);
	commit(s);
	expect_next(s, 1, 1);
	expect_next(s, 2, 2);
	expect_next(s, 3, 3);
	assert_int_equal(spool_inflight(s), 3);
	assert_int_equal(spool_ack(s, 2, NULL), 0); /* out of order is fine */
	assert_int_equal(spool_ack(s, 2, NULL), -1);
	assert_int_equal(spool_count(s), 3);
	spool_requeue_inflight(s);
	assert_int_equal(spool_inflight(s), 0);
	expect_next(s, 1, 5);
	expect_next(s, 3, 6);
	expect_next(s, 4, 7);
	spool_close(s);
}

static void test_survives_reopen_with_deletes_and_seqs(void **state)
{
	(void)state;
	struct spool *s = open_spool(100, 1 << 20);
	for (int i = 1; i <= 3; i++)
		put(s, i);
	assert_int_equal(spool_put_seq(s, "dev1", 3), 0);
	commit(s);
	expect_next(s, 1, 1);
	assert_int_equal(spool_ack(s, 1, NULL), 0);
	commit(s);
	spool_close(s);

	s = open_spool(100, 1 << 20);
	assert_int_equal(spool_count(s), 2);
	assert_int_equal(spool_oldest_age_ms(s, 1010), 8); /* reading-2, enqueued at 1002 */
	expect_next(s, 2, 1);
	expect_next(s, 3, 2);
	put(s, 4); /* new entries go behind the replayed backlog */
	commit(s);
	expect_next(s, 4, 3);
	spool_close(s);
}

static uint64_t loaded_seq;
static int64_t loaded_seen;
static int loaded_rows;
static void on_seq(void *ctx, const char *device, uint64_t seq, int64_t last_seen_ms)
{
	(void)ctx;
	loaded_rows++;
	if (strcmp(device, "dev1") == 0) {
		loaded_seq = seq;
		loaded_seen = last_seen_ms;
	}
}

static void test_seq_is_persisted_with_the_readings(void **state)
{
	(void)state;
	struct spool *s = open_spool(100, 1 << 20);
	put(s, 1);
	assert_int_equal(spool_put_seq(s, "dev1", 41), 0);
	assert_int_equal(spool_put_seq(s, "dev1", 42), 0);
	commit(s);
	spool_close(s);
	s = open_spool(100, 1 << 20);
	loaded_seq = 0;
	assert_int_equal(spool_load_seqs(s, on_seq, NULL), 0);
	assert_int_equal(loaded_seq, 42);
	/* Seen when the commit wrote it (ms since the epoch, not 0). */
	assert_true(loaded_seen > 1700000000000LL);
	/* Forgetting what was seen before a cut-off: nothing before now - 1 h,
	 * everything before a time in the future. */
	assert_int_equal(spool_forget_devices(s, loaded_seen - 3600 * 1000), 0);
	assert_int_equal(spool_forget_devices(s, loaded_seen + 1), 1);
	loaded_rows = 0;
	assert_int_equal(spool_load_seqs(s, on_seq, NULL), 0);
	assert_int_equal(loaded_rows, 0);
	spool_close(s);
}

static void test_uncommitted_entries_are_committed_at_close(void **state)
{
	(void)state;
	struct spool *s = open_spool(100, 1 << 20);
	put(s, 1);
	spool_close(s);
	s = open_spool(100, 1 << 20);
	assert_int_equal(spool_count(s), 1);
	expect_next(s, 1, 1);
	spool_close(s);
}

static void test_backlog_larger_than_the_memory_window_keeps_order(void **state)
{
	(void)state;
	enum { N = 10000 };
	struct spool *s = open_spool(N, 64 << 20);
	int next = 1, mid = 1;
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < N / 10; i++)
			put(s, next++);
		commit(s);
	}
	assert_int_equal(spool_count(s), N);
	assert_false(spool_has_room(s, 10, 10)); /* max_messages reached */
	assert_int_equal(spool_put(s, "d0", "t", "x", 1, 0), -1);
	/* Send and ack everything, adding more behind it while draining. */
	int want = 1;
	while (want < next) {
		for (int i = 0; i < 32 && want < next; i++)
			expect_next(s, want++, mid++);
		for (int m = mid - 32; m < mid; m++)
			if (m > 0)
				(void)spool_ack(s, m, NULL);
		if (want == 5000) {
			put(s, next++);
			commit(s);
		}
		commit(s);
	}
	assert_int_equal(spool_count(s), 0);
	assert_null(spool_next_unsent(s));
	spool_close(s);
	s = open_spool(N, 64 << 20);
	assert_int_equal(spool_count(s), 0);
	spool_close(s);
}

/* What each device holds: charged when staged, released when the broker's
 * ack deletes an entry, rebuilt from the rows at open (also for a backlog
 * read back from disk), and nobody's for entries without a device. */
static void test_devices_are_charged_and_released(void **state)
{
	(void)state;
	struct spool *s = open_spool(100, 1 << 20);
	for (int i = 1; i <= 6; i++)
		put(s, i);
	assert_int_equal(spool_put(s, NULL, "status", "x", 1, 0), 0);
	assert_int_equal(spool_devices(s), 3);
	assert_int_equal(usage(s, "d1"), 2);
	assert_int_equal(usage(s, "nobody"), 0);
	commit(s);
	expect_next(s, 1, 1);
	assert_int_equal(spool_ack(s, 1, NULL), 0);
	assert_int_equal(usage(s, "d1"), 1);
	assert_int_equal(usage(s, "d0"), 2);
	spool_close(s);

	s = open_spool(100, 1 << 20);
	assert_int_equal(spool_count(s), 6);
	assert_int_equal(spool_devices(s), 3);
	assert_int_equal(usage(s, "d1"), 1);
	assert_int_equal(usage(s, "d2"), 2);
	for (int n = 2, mid = 1; n <= 6; n++, mid++) {
		expect_next(s, n, mid);
		assert_int_equal(spool_ack(s, mid, NULL), 0);
	}
	assert_int_equal(spool_devices(s), 0);
	assert_int_equal(spool_count(s), 1); /* the status entry, nobody's */
	spool_close(s);
}

/* The ranking behind top_devices: most entries first, ties by name, at
 * most n, devices without entries absent. */
static void test_top_devices(void **state)
{
	(void)state;
	struct spool *s = open_spool(100, 1 << 20);
	struct spool_holder top[3];
	assert_int_equal(spool_top_devices(s, top, 3), 0);
	static const char *const devs[] = {"b", "a", "c", "a", "d", "c", "a", "e", "d"};
	for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++)
		assert_int_equal(spool_put(s, devs[i], "t", "x", 1, 0), 0);
	/* a=3, c=2, d=2, b=1, e=1 */
	assert_int_equal(spool_top_devices(s, top, 3), 3);
	assert_string_equal(top[0].device, "a");
	assert_int_equal(top[0].entries, 3);
	assert_string_equal(top[1].device, "c");
	assert_string_equal(top[2].device, "d");
	assert_int_equal(top[2].entries, 2);
	struct spool_holder all[8];
	assert_int_equal(spool_top_devices(s, all, 8), 5);
	assert_string_equal(all[3].device, "b");
	assert_string_equal(all[4].device, "e");
	assert_int_equal(spool_top_devices(s, all, 1), 1);
	assert_string_equal(all[0].device, "a");
	spool_close(s);
}

/* A spool.db of an earlier version (no device column) opens: its rows are
 * kept and sent, charged to nobody; new ones are charged. */
static void test_spool_without_device_column_is_upgraded(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, SPOOL_DB_NAME);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "PRAGMA journal_mode=WAL;"
			     "CREATE TABLE spool(id INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
			     " payload BLOB NOT NULL, enqueued_ms INTEGER NOT NULL);"
			     "INSERT INTO spool VALUES (1, 'sensors/d/temperature', "
			     "CAST('reading-1' AS BLOB), 1001);",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	struct spool *s = open_spool(100, 1 << 20);
	assert_int_equal(spool_count(s), 1);
	assert_int_equal(spool_devices(s), 0);
	put(s, 2);
	commit(s);
	expect_next(s, 1, 1);
	expect_next(s, 2, 2);
	spool_close(s);
	s = open_spool(100, 1 << 20);
	assert_int_equal(usage(s, "d2"), 1);
	spool_close(s);
}

static void test_byte_limit(void **state)
{
	(void)state;
	struct spool *s = open_spool(1000, 200);
	/* topic 21 + payload 9 + overhead 32 = 62 bytes: three fit in 200 */
	put(s, 1);
	put(s, 2);
	put(s, 3);
	assert_false(spool_has_room(s, 21, 9));
	assert_true(spool_fill(s) > 0.9);
	commit(s);
	expect_next(s, 1, 1);
	assert_int_equal(spool_ack(s, 1, NULL), 0);
	assert_true(spool_has_room(s, 21, 9));
	spool_close(s);
}

static void test_second_open_of_the_same_dir_is_refused(void **state)
{
	(void)state;
	struct spool *s = open_spool(10, 1 << 20);
	struct cfg_spool cfg = {.dir = dir, .max_messages = 10, .max_bytes = 1 << 20};
	char err[256] = "";
	assert_null(spool_open(&cfg, err, sizeof err));
	assert_non_null(strstr(err, "in use by another iotgw"));
	spool_close(s);
	struct spool *again = spool_open(&cfg, err, sizeof err);
	assert_non_null(again);
	spool_close(again);
}

static void wait_flush(struct spool *s)
{
	wait_job(s);
}

/* durability = fsync: the WAL's checkpoints run on the flush thread, on the
 * spool's connection lent to it: once the WAL holds ckpt_pages (16 here:
 * no reserve), the commit that crossed it starts one; while it runs
 * nothing is committed (staging goes on) and a flush cannot start; when it
 * ends the database is back and commits go on. */
static void test_checkpoint_on_the_flush_thread(void **state)
{
	(void)state;
	struct spool *s = open_spool(1000000, 1 << 30);
	char err[256] = "";
	int n = 0;
	while (!spool_lent(s) && n < 100000) {
		for (int i = 0; i < 10; i++)
			put(s, n++);
		assert_int_equal(spool_commit(s, err, sizeof err), 0);
	}
	assert_true(spool_lent(s));
	assert_true(spool_flush_pending(s)); /* nothing flushed yet */
	put(s, n++);
	assert_int_equal(spool_commit_due_in(s), -1); /* staged, but the database is lent */
	assert_false(spool_flush_start(s));           /* the thread is busy */
	uint64_t failed = 1;
	assert_int_equal(spool_checkpoints(s, &failed), 0);
	wait_job(s);
	assert_false(spool_lent(s));
	/* The checkpoint synced the WAL first: every commit before it is flushed. */
	assert_false(spool_flush_pending(s));
	assert_int_equal(spool_checkpoints(s, &failed), 1);
	assert_int_equal(failed, 0);
	assert_int_equal(spool_commit_due_in(s), 0);
	commit(s);
	assert_true(spool_flush_start(s));
	wait_flush(s);
	assert_false(spool_flush_pending(s));
	/* Everything is still there, in order, after a reopen. */
	spool_close(s);
	s = open_spool(1000000, 1 << 30);
	assert_int_equal(spool_count(s), (uint64_t)n);
	spool_close(s);
}

/* durability = fsync: commits reach the WAL without a sync, and one flush
 * (off the caller's thread) covers every commit before it. */
static void test_one_flush_covers_many_commits(void **state)
{
	(void)state;
	struct spool *s = open_spool(1000, 1 << 20);
	assert_true(spool_flush_fd(s) >= 0);
	uint64_t before = spool_syncs(s);
	for (int c = 0; c < 5; c++) {
		for (int i = 0; i < 20; i++)
			put(s, c * 20 + i);
		commit(s);
	}
	assert_int_equal(spool_syncs(s) - before, 0); /* no sync inside a commit */
	assert_true(spool_flush_pending(s));
	assert_true(spool_flush_start(s));
	assert_false(spool_flush_start(s)); /* one at a time */
	wait_flush(s);
	assert_false(spool_flush_pending(s));
	assert_int_equal(spool_syncs(s) - before, 1);
	/* Deletes alone need no flush. */
	struct spool_entry *e = spool_next_unsent(s);
	assert_non_null(e);
	spool_mark_inflight(s, e, 7, 0);
	assert_int_equal(spool_ack(s, 7, NULL), 0);
	commit(s);
	assert_false(spool_flush_pending(s));
	/* A commit after the flush started is not covered by it. */
	put(s, 1000);
	commit(s);
	assert_true(spool_flush_start(s));
	put(s, 1001);
	commit(s);
	wait_flush(s);
	assert_true(spool_flush_pending(s));
	assert_true(spool_flush_start(s));
	wait_flush(s);
	assert_false(spool_flush_pending(s));
	spool_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_staged_entries_are_not_sent_before_commit,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ack_deletes_and_requeue_resends_in_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_reopen_with_deletes_and_seqs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_seq_is_persisted_with_the_readings, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_uncommitted_entries_are_committed_at_close,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_backlog_larger_than_the_memory_window_keeps_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_byte_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_top_devices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_devices_are_charged_and_released, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spool_without_device_column_is_upgraded,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_open_of_the_same_dir_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_on_the_flush_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_flush_covers_many_commits,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
