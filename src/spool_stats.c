/* spool_stats: `iotgw --spool-stats`, an operator's view of the spool.
 *
 * Runs as a separate process, with or without a gateway running; whether
 * one runs comes from the lock it holds. A running gateway keeps its
 * database to itself (spool.c: locking_mode = EXCLUSIVE, so that no
 * transaction pays for file locks), so then every figure comes from the
 * status file it rewrites every second. Otherwise the queue figures come
 * from the database itself (read-only, so it never creates files the
 * daemon's user could not open later). */
#include "iotgw/spool_stats.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "iotgw/spool.h"
#include "iotgw/status.h"

long spool_running_pid(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, SPOOL_LOCK_NAME);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	long pid = 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		flock(fd, LOCK_UN);
	} else if (errno == EWOULDBLOCK) {
		char buf[32] = "";
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		pid = strtol(buf, NULL, 10);
		if (pid <= 0)
			pid = -1;
	}
	close(fd);
	return pid;
}

static int query_u64(sqlite3 *db, const char *sql, uint64_t *out, bool *null)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (null)
			*null = sqlite3_column_type(st, 0) == SQLITE_NULL;
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Copies the live lines of the status file (those the database cannot
 * answer) to out. */
static void print_live(const char *dir, FILE *out)
{
	static const char *const keys[] = {"upstream",	     "connections",   "full",
					   "readings_total", "rejected_total", "commits_total",
					   "fsyncs_total",   "updated_unix",  NULL};
	char path[PATH_MAX], line[256];
	snprintf(path, sizeof path, "%s/%s", dir, SPOOL_STATUS_NAME);
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(out, "status: no status file yet (%s)\n", path);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		for (size_t i = 0; keys[i]; i++) {
			size_t n = strlen(keys[i]);
			if (strncmp(line, keys[i], n) == 0 && line[n] == ':') {
				fputs(line, out);
				break;
			}
		}
	}
	fclose(f);
}

/* Counting the devices sorts the queue, and a long read holds back the
 * daemon's checkpoints: only up to this many entries. */
#define TOP_DEVICES_MAX_QUEUED 1000000

/* The devices holding most of the queue ("which device fills my
 * spool?"), on one line: "top_devices: dev1=120 dev7=33". Nothing for a
 * spool written before entries carried their device. */
static void print_top_devices(sqlite3 *db, uint64_t queued, FILE *out)
{
	if (queued > TOP_DEVICES_MAX_QUEUED) {
		fprintf(out, "top_devices: not counted (more than %d queued)\n",
			TOP_DEVICES_MAX_QUEUED);
		return;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "SELECT device, count(*) AS n FROM spool WHERE device IS NOT NULL "
			       "GROUP BY device ORDER BY n DESC, device LIMIT 5",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	fputs("top_devices:", out);
	while (sqlite3_step(st) == SQLITE_ROW)
		fprintf(out, " %s=%lld", (const char *)sqlite3_column_text(st, 0),
			(long long)sqlite3_column_int64(st, 1));
	fputc('\n', out);
	sqlite3_finalize(st);
}

/* The queue as the running gateway last wrote it (at most a second old:
 * updated_unix says when). */
static int print_running(const char *dir, const char *db, long pid, FILE *out, FILE *err)
{
	char path[PATH_MAX], text[8192];
	snprintf(path, sizeof path, "%s/%s", dir, SPOOL_STATUS_NAME);
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
	if (f)
		fclose(f);
	text[n] = '\0';
	struct status_snapshot st;
	/* A status file of an earlier run (a crash) names another pid. */
	if (status_parse_kv(text, &st) != 0 || (pid > 0 && st.pid != pid)) {
		fprintf(err,
			"iotgw: spool %s is in use by the running gateway (pid %ld), which has "
			"not written its status file %s yet (it does once it is ready); try again "
			"in a moment\n",
			db, pid, path);
		return 1;
	}
	fprintf(out, "spool: %s\n", db);
	fprintf(out, "queued: %llu\n", (unsigned long long)st.queued);
	fprintf(out, "bytes: %llu\n", (unsigned long long)st.bytes);
	fprintf(out, "oldest_age_s: %llu\n", (unsigned long long)st.oldest_age_s);
	fprintf(out, "devices: %llu\n", (unsigned long long)st.devices);
	fprintf(out, "top_devices:%s%s\n", st.top_devices[0] ? " " : "", st.top_devices);
	if (pid > 0)
		fprintf(out, "daemon: running (pid %ld)\n", pid);
	else
		fprintf(out, "daemon: running (pid unknown)\n");
	print_live(dir, out);
	return 0;
}

int spool_stats_print(const char *dir, FILE *out, FILE *err)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s", dir, SPOOL_DB_NAME) >= (int)sizeof path) {
		fprintf(err, "iotgw: spool directory %s: path too long\n", dir);
		return 1;
	}
	if (access(path, F_OK) != 0) {
		fprintf(err, "iotgw: cannot open spool %s: %s\n", path, strerror(errno));
		return 1;
	}
	long pid = spool_running_pid(dir);
	if (pid != 0)
		return print_running(dir, path, pid, out, err);
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		sqlite3_busy_timeout(db, 2000);
	uint64_t queued = 0, bytes = 0, oldest = 0, devices = 0;
	bool empty = true;
	if (rc != SQLITE_OK ||
	    query_u64(db, "SELECT count(*) FROM spool", &queued, NULL) != 0 ||
	    query_u64(db,
		      "SELECT coalesce(sum(length(CAST(topic AS BLOB)) + length(payload)), 0) "
		      "FROM spool",
		      &bytes, NULL) != 0 ||
	    query_u64(db, "SELECT min(enqueued_ms) FROM spool", &oldest, &empty) != 0 ||
	    query_u64(db, "SELECT count(*) FROM device_seq", &devices, NULL) != 0) {
		fprintf(err, "iotgw: cannot open spool %s: %s\n", path,
			db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return 1;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	uint64_t age = !empty && now_ms > oldest ? (now_ms - oldest) / 1000 : 0;
	fprintf(out, "spool: %s\n", path);
	fprintf(out, "queued: %llu\n", (unsigned long long)queued);
	fprintf(out, "bytes: %llu\n",
		(unsigned long long)(bytes + queued * SPOOL_ENTRY_OVERHEAD));
	fprintf(out, "oldest_age_s: %llu\n", (unsigned long long)age);
	fprintf(out, "devices: %llu\n", (unsigned long long)devices);
	print_top_devices(db, queued, out);
	sqlite3_close(db);
	fprintf(out, "daemon: not running\n");
	return 0;
}
