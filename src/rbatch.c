/* rbatch: a worker's decoded readings on their way to the spool (rbatch.h). */
#include "rbatch.h"

#include <stdlib.h>
#include <string.h>

struct rbatch *rbatch_new(void)
{
	struct rbatch *b = calloc(1, sizeof *b);
	if (b)
		buf_init(&b->data, RBATCH_MAX);
	return b;
}

void rbatch_free(struct rbatch *b)
{
	if (!b)
		return;
	buf_free(&b->data);
	free(b);
}

void rbatch_reset(struct rbatch *b)
{
	b->data.len = 0;
	b->n = 0;
	b->off = 0;
	b->replies = false;
	/* A burst's memory goes back once the batch is idle again. */
	if (b->data.cap > 4 * RBATCH_FULL / 16)
		buf_shrink_if_empty(&b->data);
}

bool rbatch_full(const struct rbatch *b)
{
	return b->data.len >= RBATCH_FULL || b->n >= RBATCH_ENTRIES_FULL;
}

static size_t padded(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

int rbatch_add(struct rbatch *b, const struct rb_entry *head, const char *device,
	       const char *event, const char *topic, size_t topic_len, const char *why,
	       const void *payload, size_t payload_len)
{
	size_t dl = strlen(device), el = event ? strlen(event) : 0, wl = why ? strlen(why) : 0;
	if (dl > UINT16_MAX || el > UINT16_MAX || topic_len > UINT32_MAX ||
	    payload_len > UINT32_MAX)
		return -1;
	size_t size = padded(sizeof *head + dl + 1 + el + 1 + topic_len + wl + payload_len);
	if (size > UINT32_MAX || buf_reserve(&b->data, size) != 0)
		return -1;
	struct rb_entry *e = (struct rb_entry *)(void *)(b->data.data + b->data.len);
	*e = *head;
	e->size = (uint32_t)size;
	e->device_len = (uint16_t)dl;
	e->event_len = (uint16_t)el;
	e->has_event = event != NULL;
	e->topic_len = (uint32_t)topic_len;
	e->why_len = (uint32_t)wl;
	e->payload_len = (uint32_t)payload_len;
	char *p = e->text;
	memcpy(p, device, dl + 1);
	p += dl + 1;
	if (el)
		memcpy(p, event, el);
	p[el] = '\0';
	p += el + 1;
	if (topic_len)
		memcpy(p, topic, topic_len);
	p += topic_len;
	if (wl)
		memcpy(p, why, wl);
	p += wl;
	if (payload_len)
		memcpy(p, payload, payload_len);
	b->data.len += size;
	b->n++;
	return 0;
}

int rbatch_add_copy(struct rbatch *b, const struct rb_entry *e)
{
	if (buf_reserve(&b->data, e->size) != 0)
		return -1;
	memcpy(b->data.data + b->data.len, e, e->size);
	b->data.len += e->size;
	b->n++;
	return 0;
}

const struct rb_entry *rbatch_peek(const struct rbatch *b)
{
	if (b->off >= b->data.len)
		return NULL;
	return (const struct rb_entry *)(const void *)(b->data.data + b->off);
}

void rbatch_pop(struct rbatch *b)
{
	const struct rb_entry *e = rbatch_peek(b);
	if (e)
		b->off += e->size;
}

bool rbatch_done(const struct rbatch *b)
{
	return b->off >= b->data.len;
}

const struct rb_entry *rbatch_after(const struct rbatch *b, const struct rb_entry *e)
{
	if (!e)
		return rbatch_peek(b);
	size_t off = (size_t)((const uint8_t *)e - b->data.data) + e->size;
	if (off >= b->data.len)
		return NULL;
	return (const struct rb_entry *)(const void *)(b->data.data + off);
}
