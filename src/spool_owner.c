/* spool_owner: what each device holds in the spool (see spool_int.h).
 *
 * Counted in memory, charged when an entry is staged and released when the
 * broker's acknowledgement deletes it, because most of a backlog lives on
 * disk, not in memory. Each row carries its device (column `device`), so
 * the counts survive a restart: spool_load_totals rebuilds them in the
 * scan that counts the whole spool. */
#include <stdlib.h>
#include <string.h>

#include "spool_int.h"

struct spool_owner *spool_owner_find(const struct spool *s, const char *device)
{
	return s->owners && device ? strmap_get(s->owners, device) : NULL;
}

static struct spool_owner *owner_new(struct spool *s, const char *device)
{
	if (!s->owners && !(s->owners = strmap_new()))
		return NULL;
	size_t n = strlen(device);
	struct spool_owner *o = calloc(1, sizeof *o + n + 1);
	if (!o)
		return NULL;
	memcpy(o->name, device, n + 1);
	if (strmap_put(s->owners, device, o) != 0) {
		free(o);
		return NULL;
	}
	return o;
}

struct spool_owner *spool_owner_charge(struct spool *s, const char *device, uint64_t cost)
{
	struct spool_owner *o = spool_owner_find(s, device);
	if (!o && !(o = owner_new(s, device)))
		return NULL;
	o->count++;
	o->bytes += cost;
	return o;
}

void spool_owner_release(struct spool *s, struct spool_owner *o, uint64_t cost)
{
	if (!o)
		return;
	o->count--;
	o->bytes -= cost;
	if (o->count == 0) {
		(void)strmap_del(s->owners, o->name);
		free(o);
	}
}

void spool_device_usage(const struct spool *s, const char *device, uint64_t *messages,
			uint64_t *bytes)
{
	const struct spool_owner *o = spool_owner_find(s, device);
	*messages = o ? o->count : 0;
	*bytes = o ? o->bytes : 0;
}

size_t spool_devices(const struct spool *s)
{
	return s->owners ? strmap_size(s->owners) : 0;
}

struct top_walk {
	struct spool_holder *top;
	size_t n, have;
};

/* A strmap_sweep visitor that keeps every entry: inserts o into the
 * ranking if it belongs there. */
static bool rank_owner(void *ctx, const char *key, void *value)
{
	(void)key;
	struct top_walk *w = ctx;
	const struct spool_owner *o = value;
	size_t i = w->have;
	while (i > 0 && (w->top[i - 1].entries < o->count ||
			 (w->top[i - 1].entries == o->count &&
			  strcmp(w->top[i - 1].device, o->name) > 0)))
		i--;
	if (i == w->n)
		return false;
	size_t last = w->have < w->n ? w->have : w->n - 1;
	memmove(&w->top[i + 1], &w->top[i], (last - i) * sizeof w->top[0]);
	w->top[i] = (struct spool_holder){o->name, o->count};
	if (w->have < w->n)
		w->have++;
	return false;
}

size_t spool_top_devices(const struct spool *s, struct spool_holder *top, size_t n)
{
	struct top_walk w = {top, n, 0};
	if (s->owners && n)
		(void)strmap_sweep(s->owners, rank_owner, &w, NULL);
	return w.have;
}

static void free_owner(void *p)
{
	free(p);
}

void spool_owners_free(struct spool *s)
{
	strmap_free(s->owners, free_owner);
	s->owners = NULL;
}

int spool_load_totals(struct spool *s)
{
	/* One scan in id order, summed here: a GROUP BY would sort the whole
	 * spool (ten times slower on a backlog of millions). Rows from before
	 * the device column have NULL and count for nobody. length() of a
	 * blob reads no overflow page. */
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT device, length(CAST(topic AS BLOB)) + length(payload), id "
			       "FROM spool",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	uint64_t max_id = 0;
	struct spool_owner *o = NULL; /* the previous row's: devices often repeat */
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *device = (const char *)sqlite3_column_text(st, 0);
		uint64_t cost = (uint64_t)sqlite3_column_int64(st, 1) + SPOOL_ENTRY_OVERHEAD;
		uint64_t id = (uint64_t)sqlite3_column_int64(st, 2);
		s->count++;
		s->bytes += cost;
		if (id > max_id)
			max_id = id;
		if (!device)
			continue;
		if (!o || strcmp(o->name, device) != 0)
			o = spool_owner_find(s, device);
		if (!o && !(o = owner_new(s, device))) {
			rc = SQLITE_NOMEM;
			break;
		}
		o->count++;
		o->bytes += cost;
	}
	sqlite3_finalize(st);
	s->unloaded = s->count;
	s->next_id = max_id + 1;
	return rc == SQLITE_DONE ? 0 : -1;
}
