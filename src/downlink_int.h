/* downlink_int: the command and its rows, as downlink.c (the queue and
 * delivery) and downlink_store.c (its SQL in the spool's database) both see
 * them. Not a public interface. */
#ifndef IOTGW_DOWNLINK_INT_H
#define IOTGW_DOWNLINK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sqlite3;

struct cmd {
	struct cmd *next;               /* the device's queue */
	struct cmd *all_prev, *all_next; /* every queued command, for expiry */
	uint64_t id;       /* row id: arrival order, across restarts */
	int64_t received_ms, expires_ms; /* wall clock; expires_ms 0: with the connection (ttl 0) */
	uint64_t commit;   /* the spool commit that wrote it; 0 while staged */
	uint16_t pid;      /* packet id while sent and unacknowledged, else 0 */
	bool inflight;     /* written on the current connection, unacknowledged */
	unsigned sends;
	char *device, *name, *topic; /* topic: the upstream one, for {topic} */
	uint8_t *payload;
	size_t len;
};

struct dl_store;

/* Creates the table and prepares the statements. NULL with a reason. */
struct dl_store *dl_store_open(struct sqlite3 *db, char *err, size_t errlen);
void dl_store_close(struct dl_store *st);
/* Every row, in id order, as commands (fn takes ownership). 0 or -1. */
int dl_store_load(struct dl_store *st, void (*fn)(void *ctx, struct cmd *c), void *ctx);
/* Inside the spool's transaction: the staged inserts and deletes. */
int dl_store_write(struct dl_store *st, struct cmd *const *ins, size_t nins,
		   const uint64_t *del, size_t ndel);

void dl_cmd_free(struct cmd *c);

#endif
