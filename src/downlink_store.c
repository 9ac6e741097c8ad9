/* downlink_store: the `commands` table in the spool's database. The
 * statements are prepared once; writes happen inside the spool's
 * transactions (spool_sidecar), so a command shares the group commit and
 * the flush of the readings. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "downlink_int.h"

struct dl_store {
	sqlite3 *db;
	sqlite3_stmt *ins, *del;
};

static const char schema[] = "CREATE TABLE IF NOT EXISTS commands("
			     " id INTEGER PRIMARY KEY,"
			     " device TEXT NOT NULL,"
			     " name TEXT NOT NULL,"
			     " topic TEXT NOT NULL,"
			     " payload BLOB NOT NULL,"
			     " received_ms INTEGER NOT NULL,"
			     " expires_ms INTEGER NOT NULL)";

void dl_cmd_free(struct cmd *c)
{
	if (!c)
		return;
	free(c->device);
	free(c->name);
	free(c->topic);
	free(c->payload);
	free(c);
}

struct dl_store *dl_store_open(sqlite3 *db, char *err, size_t errlen)
{
	struct dl_store *st = calloc(1, sizeof *st);
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->db = db;
	if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(db,
			       "INSERT INTO commands(id, device, name, topic, payload, received_ms, "
			       "expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			       -1, SQLITE_PREPARE_PERSISTENT, &st->ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(db, "DELETE FROM commands WHERE id = ?1", -1,
			       SQLITE_PREPARE_PERSISTENT, &st->del, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "commands table: %s", sqlite3_errmsg(db));
		dl_store_close(st);
		return NULL;
	}
	return st;
}

void dl_store_close(struct dl_store *st)
{
	if (!st)
		return;
	sqlite3_finalize(st->ins);
	sqlite3_finalize(st->del);
	free(st);
}

static char *col_dup(sqlite3_stmt *q, int i)
{
	const char *t = (const char *)sqlite3_column_text(q, i);
	return strdup(t ? t : "");
}

int dl_store_load(struct dl_store *st, void (*fn)(void *ctx, struct cmd *c), void *ctx)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(st->db,
			       "SELECT id, device, name, topic, payload, received_ms, expires_ms "
			       "FROM commands ORDER BY id",
			       -1, &q, NULL) != SQLITE_OK)
		return -1;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct cmd *c = calloc(1, sizeof *c);
		size_t len = (size_t)sqlite3_column_bytes(q, 4);
		if (!c || !(c->payload = malloc(len ? len : 1))) {
			free(c);
			rc = SQLITE_NOMEM;
			break;
		}
		memcpy(c->payload, sqlite3_column_blob(q, 4), len);
		c->len = len;
		c->id = (uint64_t)sqlite3_column_int64(q, 0);
		c->device = col_dup(q, 1);
		c->name = col_dup(q, 2);
		c->topic = col_dup(q, 3);
		c->received_ms = sqlite3_column_int64(q, 5);
		c->expires_ms = sqlite3_column_int64(q, 6);
		c->commit = 1; /* on disk */
		if (!c->device || !c->name || !c->topic) {
			dl_cmd_free(c);
			rc = SQLITE_NOMEM;
			break;
		}
		fn(ctx, c);
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int dl_store_write(struct dl_store *st, struct cmd *const *ins, size_t nins, const uint64_t *del,
		   size_t ndel)
{
	for (size_t i = 0; i < nins; i++) {
		const struct cmd *c = ins[i];
		sqlite3_bind_int64(st->ins, 1, (sqlite3_int64)c->id);
		sqlite3_bind_text(st->ins, 2, c->device, -1, SQLITE_STATIC);
		sqlite3_bind_text(st->ins, 3, c->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st->ins, 4, c->topic, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(st->ins, 5, c->payload, c->len, SQLITE_STATIC);
		sqlite3_bind_int64(st->ins, 6, c->received_ms);
		sqlite3_bind_int64(st->ins, 7, c->expires_ms);
		if (step_reset(st->ins) != 0)
			return -1;
	}
	/* After the inserts: a command acknowledged in the iteration it came
	 * in is inserted and deleted in the same transaction. */
	for (size_t i = 0; i < ndel; i++) {
		sqlite3_bind_int64(st->del, 1, (sqlite3_int64)del[i]);
		if (step_reset(st->del) != 0)
			return -1;
	}
	return 0;
}
