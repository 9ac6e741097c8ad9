/* rbatch: the readings one worker decoded in one turn, on their way to the
 * spool. A worker fills one from its sessions' PUBLISHes (ingest_decode),
 * seals it and hands it to the owner, which stages its entries in order
 * (ingest.c) and gives it back emptied, with the number of the commit that
 * holds it, for the worker to fill again.
 *
 * Owns its entries; whoever holds the batch owns it (the worker while it
 * fills it, the owner from the hand-over until it gives it back). Pure: no
 * I/O, no locks. */
#ifndef IOTGW_RBATCH_H
#define IOTGW_RBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "iotgw/buf.h"
#include "iotgw/decoder.h"

/* A worker stops adding at this size (the entry that crosses it is
 * taken): its devices wait for the next batch. One entry may be a dead
 * letter of a max_packet_size payload (1M, base64 later), hence the
 * ceiling. */
#define RBATCH_FULL (1u << 20)
#define RBATCH_MAX (RBATCH_FULL + (2u << 20))
#define RBATCH_ENTRIES_FULL 16384

/* A reading (ok) or a dead letter (its topic, reason and payload kept). */
struct rb_entry {
	uint32_t size; /* the whole entry, a multiple of 8 */
	uint16_t device_len, event_len;
	uint32_t topic_len, why_len, payload_len; /* a dead letter's; 0 for a reading */
	bool ok, has_event;
	uint8_t reject; /* enum reject_class of a dead letter */
	uint64_t token;   /* the session it came from */
	uint64_t ack_pos; /* that session's ackq position before its ack */
	struct timespec ts;
	struct dec_result value;
	char text[]; /* device NUL, event NUL, topic, why, payload */
};

struct rbatch {
	struct buf data; /* entries, back to back */
	size_t n;        /* entries */
	size_t off;      /* the owner's position: entries before it are staged */
	bool replies;    /* sessions' replies were sealed with it: they wait for its commit */
};

struct rbatch *rbatch_new(void); /* NULL: out of memory */
void rbatch_free(struct rbatch *b);
void rbatch_reset(struct rbatch *b); /* empty, memory kept */
bool rbatch_full(const struct rbatch *b);
/* Appends an entry: the header's fixed fields (size and lengths are set
 * here) and its strings. 0, or -1 out of memory or at the ceiling. */
int rbatch_add(struct rbatch *b, const struct rb_entry *head, const char *device,
	       const char *event, const char *topic, size_t topic_len, const char *why,
	       const void *payload, size_t payload_len);
/* Appends a copy of an entry (another batch's). */
int rbatch_add_copy(struct rbatch *b, const struct rb_entry *e);
/* The first entry not yet staged, or NULL; rbatch_pop moves past it. */
const struct rb_entry *rbatch_peek(const struct rbatch *b);
void rbatch_pop(struct rbatch *b);
bool rbatch_done(const struct rbatch *b); /* every entry staged */
/* The entries after `e` (NULL: from the first not yet staged). */
const struct rb_entry *rbatch_after(const struct rbatch *b, const struct rb_entry *e);

static inline const char *rb_device(const struct rb_entry *e)
{
	return e->text;
}
static inline const char *rb_event(const struct rb_entry *e)
{
	return e->has_event ? e->text + e->device_len + 1 : NULL;
}
static inline const char *rb_topic(const struct rb_entry *e)
{
	return e->text + e->device_len + 1 + e->event_len + 1;
}
static inline const char *rb_why(const struct rb_entry *e)
{
	return rb_topic(e) + e->topic_len;
}
static inline const uint8_t *rb_payload(const struct rb_entry *e)
{
	return (const uint8_t *)rb_why(e) + e->why_len;
}

#endif
