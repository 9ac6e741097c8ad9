/* spool: the bounded queue between ingestion and upstream.
 *
 * Entries stay in arrival order. The upstream sends from the head, marking
 * entries in flight; an entry is deleted only when the broker acknowledged
 * it, and a lost upstream connection puts every in-flight entry back to be
 * sent again, in the same order. This version keeps entries in memory; the
 * durable on-disk spool replaces the storage behind the same interface. */
#ifndef IOTGW_SPOOL_H
#define IOTGW_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spool_entry {
	struct spool_entry *next;
	char *topic;
	uint8_t *payload;
	size_t len;
	uint64_t enqueued_ms;
	int mid;       /* upstream message id while in flight */
	bool inflight;
};

struct spool;

struct spool *spool_new(uint64_t max_messages, uint64_t max_bytes);
void spool_free(struct spool *s);
void spool_set_limits(struct spool *s, uint64_t max_messages, uint64_t max_bytes);

/* Would an entry of this size fit now? */
bool spool_has_room(const struct spool *s, size_t topic_len, size_t payload_len);

/* Appends a copy. Returns 0, or -1 when full or out of memory. */
int spool_put(struct spool *s, const char *topic, const void *payload, size_t len,
	      uint64_t now_ms);

/* The oldest entry not yet in flight, or NULL. */
struct spool_entry *spool_next_unsent(struct spool *s);
void spool_mark_inflight(struct spool *s, struct spool_entry *e, int mid);
/* Deletes the in-flight entry with this message id; -1 if none. */
int spool_ack(struct spool *s, int mid);
/* Upstream lost: every in-flight entry becomes unsent again. */
void spool_requeue_inflight(struct spool *s);

uint64_t spool_count(const struct spool *s);
uint64_t spool_bytes(const struct spool *s);
unsigned spool_inflight(const struct spool *s);
/* Age in ms of the oldest entry, 0 when empty. */
uint64_t spool_oldest_age_ms(const struct spool *s, uint64_t now_ms);
/* Fill level as a fraction of the tighter of the two limits. */
double spool_fill(const struct spool *s);

#endif
