#include "iotgw/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct strmap_node {
	struct strmap_node *next;
	void *value;
	char key[]; /* NUL-terminated copy */
};

struct strmap {
	struct strmap_node **buckets;
	size_t nbuckets; /* power of two */
	size_t size;
	uint64_t key[2]; /* the hash key, random per map */
};

/* SipHash-2-4 (Aumasson and Bernstein, the reference variant, checked
 * against the paper's test vectors) under a random key per map: client ids are chosen by
 * whoever connects, and with an unkeyed hash (FNV-1a before) anyone can
 * make every id land in one bucket, turning each lookup into a scan. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                  \
	do {                                                                                      \
		v0 += v1;                                                                         \
		v1 = ROTL(v1, 13);                                                                \
		v1 ^= v0;                                                                         \
		v0 = ROTL(v0, 32);                                                                \
		v2 += v3;                                                                         \
		v3 = ROTL(v3, 16);                                                                \
		v3 ^= v2;                                                                         \
		v0 += v3;                                                                         \
		v3 = ROTL(v3, 21);                                                                \
		v3 ^= v0;                                                                         \
		v2 += v1;                                                                         \
		v1 = ROTL(v1, 17);                                                                \
		v1 ^= v2;                                                                         \
		v2 = ROTL(v2, 32);                                                                \
	} while (0)

static uint64_t load_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t strmap_siphash24(const uint64_t key[2], const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t v0 = 0x736f6d6570736575ull ^ key[0], v1 = 0x646f72616e646f6dull ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ key[0], v3 = 0x7465646279746573ull ^ key[1];
	size_t whole = len & ~(size_t)7;
	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = load_le64(p + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	for (size_t i = 0; i < (len & 7); i++)
		b |= (uint64_t)p[whole + i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t hash(const struct strmap *m, const char *s)
{
	return strmap_siphash24(m->key, s, strlen(s));
}

/* A key nobody outside the process can know. getrandom without flags only
 * blocks before the kernel's pool is seeded, at early boot; should it
 * fail, the clock and the address of the map still differ per run. */
static void new_key(struct strmap *m)
{
	if (getrandom(m->key, sizeof m->key, 0) == (ssize_t)sizeof m->key)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	m->key[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid();
	m->key[1] = (uint64_t)(uintptr_t)m ^ 0x9e3779b97f4a7c15ull;
}

struct strmap *strmap_new(void)
{
	struct strmap *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	new_key(m);
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
	struct strmap_node **p = &m->buckets[hash(m, key) & (m->nbuckets - 1)];
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
			size_t j = hash(m, n->key) & (nb - 1);
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

size_t strmap_sweep(struct strmap *m, bool (*drop)(void *ctx, const char *key, void *value),
		    void *ctx, void (*free_value)(void *))
{
	size_t n = 0;
	for (size_t b = 0; b < m->nbuckets; b++) {
		for (struct strmap_node **p = &m->buckets[b]; *p;) {
			struct strmap_node *node = *p;
			if (!drop(ctx, node->key, node->value)) {
				p = &node->next;
				continue;
			}
			*p = node->next;
			if (free_value)
				free_value(node->value);
			free(node);
			m->size--;
			n++;
		}
	}
	return n;
}

size_t strmap_size(const struct strmap *m)
{
	return m->size;
}
