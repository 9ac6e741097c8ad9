#include "iotgw/spool.h"

#include <stdlib.h>
#include <string.h>

struct spool {
	struct spool_entry *head, *tail;
	struct spool_entry *cursor; /* first entry not in flight; NULL = none */
	uint64_t count, bytes;
	unsigned inflight;
	uint64_t max_messages, max_bytes;
};

/* What an entry costs against max_bytes: its data plus bookkeeping. */
static size_t entry_cost(size_t topic_len, size_t payload_len)
{
	return sizeof(struct spool_entry) + topic_len + 1 + payload_len;
}

struct spool *spool_new(uint64_t max_messages, uint64_t max_bytes)
{
	struct spool *s = calloc(1, sizeof *s);
	if (s)
		spool_set_limits(s, max_messages, max_bytes);
	return s;
}

void spool_set_limits(struct spool *s, uint64_t max_messages, uint64_t max_bytes)
{
	s->max_messages = max_messages;
	s->max_bytes = max_bytes;
}

static void entry_free(struct spool_entry *e)
{
	free(e->topic);
	free(e->payload);
	free(e);
}

void spool_free(struct spool *s)
{
	if (!s)
		return;
	struct spool_entry *e = s->head;
	while (e) {
		struct spool_entry *next = e->next;
		entry_free(e);
		e = next;
	}
	free(s);
}

bool spool_has_room(const struct spool *s, size_t topic_len, size_t payload_len)
{
	return s->count < s->max_messages &&
	       s->bytes + entry_cost(topic_len, payload_len) <= s->max_bytes;
}

int spool_put(struct spool *s, const char *topic, const void *payload, size_t len,
	      uint64_t now_ms)
{
	size_t tlen = strlen(topic);
	if (!spool_has_room(s, tlen, len))
		return -1;
	struct spool_entry *e = calloc(1, sizeof *e);
	if (!e)
		return -1;
	e->topic = strdup(topic);
	e->payload = malloc(len ? len : 1);
	if (!e->topic || !e->payload) {
		entry_free(e);
		return -1;
	}
	memcpy(e->payload, payload, len);
	e->len = len;
	e->enqueued_ms = now_ms;
	if (s->tail)
		s->tail->next = e;
	else
		s->head = e;
	s->tail = e;
	if (!s->cursor)
		s->cursor = e;
	s->count++;
	s->bytes += entry_cost(tlen, len);
	return 0;
}

struct spool_entry *spool_next_unsent(struct spool *s)
{
	return s->cursor;
}

void spool_mark_inflight(struct spool *s, struct spool_entry *e, int mid)
{
	/* Entries go out strictly in order, so e is always the cursor. */
	e->inflight = true;
	e->mid = mid;
	s->inflight++;
	s->cursor = e->next;
}

int spool_ack(struct spool *s, int mid)
{
	/* In-flight entries form a prefix of the list no longer than the
	 * upstream window, so this scan is bounded by the window. */
	struct spool_entry *prev = NULL;
	for (struct spool_entry *e = s->head; e && e->inflight; prev = e, e = e->next) {
		if (e->mid != mid)
			continue;
		if (prev)
			prev->next = e->next;
		else
			s->head = e->next;
		if (s->tail == e)
			s->tail = prev;
		s->count--;
		s->bytes -= entry_cost(strlen(e->topic), e->len);
		s->inflight--;
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

uint64_t spool_oldest_age_ms(const struct spool *s, uint64_t now_ms)
{
	if (!s->head || now_ms < s->head->enqueued_ms)
		return 0;
	return now_ms - s->head->enqueued_ms;
}

double spool_fill(const struct spool *s)
{
	double m = s->max_messages ? (double)s->count / (double)s->max_messages : 0;
	double b = s->max_bytes ? (double)s->bytes / (double)s->max_bytes : 0;
	return m > b ? m : b;
}
