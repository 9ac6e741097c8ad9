#include "iotgw/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct strmap_node {
	struct strmap_node *next;
	void *value;
	char key[]; /* NUL-terminated copy */
};

struct strmap {
	struct strmap_node **buckets;
	size_t nbuckets; /* power of two */
	size_t size;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

struct strmap *strmap_new(void)
{
	struct strmap *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->nbuckets = 64;
	m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
	if (!m->buckets) {
		free(m);
		return NULL;
	}
	return m;
}

void strmap_free(struct strmap *m, void (*free_value)(void *))
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct strmap_node *n = m->buckets[i];
		while (n) {
			struct strmap_node *next = n->next;
			if (free_value && n->value)
				free_value(n->value);
			free(n);
			n = next;
		}
	}
	free(m->buckets);
	free(m);
}

static struct strmap_node **slot(const struct strmap *m, const char *key)
{
	struct strmap_node **p = &m->buckets[hash(key) & (m->nbuckets - 1)];
	while (*p && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	return p;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_node *n = *slot(m, key);
	return n ? n->value : NULL;
}

static void grow(struct strmap *m)
{
	size_t nb = m->nbuckets * 2;
	struct strmap_node **b = calloc(nb, sizeof *b);
	if (!b)
		return; /* stay correct, just slower */
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct strmap_node *n = m->buckets[i];
		while (n) {
			struct strmap_node *next = n->next;
			size_t j = hash(n->key) & (nb - 1);
			n->next = b[j];
			b[j] = n;
			n = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = nb;
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
	struct strmap_node **p = slot(m, key);
	if (*p) {
		(*p)->value = value;
		return 0;
	}
	size_t len = strlen(key);
	struct strmap_node *n = malloc(sizeof *n + len + 1);
	if (!n)
		return -1;
	memcpy(n->key, key, len + 1);
	n->value = value;
	n->next = NULL;
	*p = n;
	if (++m->size > m->nbuckets)
		grow(m);
	return 0;
}

void *strmap_del(struct strmap *m, const char *key)
{
	struct strmap_node **p = slot(m, key);
	struct strmap_node *n = *p;
	if (!n)
		return NULL;
	*p = n->next;
	void *v = n->value;
	free(n);
	m->size--;
	return v;
}

size_t strmap_size(const struct strmap *m)
{
	return m->size;
}
