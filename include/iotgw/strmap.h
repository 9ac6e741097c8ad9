/* strmap: a string-keyed hash map (client ids, device ids).
 *
 * Keys come from devices, so the hash is keyed (SipHash-2-4 under a random
 * key per map): nobody can choose ids that all land in one bucket.
 *
 * Ownership: strmap_new's map is the caller's, freed with strmap_free. The
 * map owns its copies of the keys; values stay the caller's (borrowed
 * pointers): strmap_get and strmap_del hand them back and the map frees
 * none, except through strmap_free's free_value. */
#ifndef IOTGW_STRMAP_H
#define IOTGW_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap;

struct strmap *strmap_new(void);
/* Calls free_value on each value (if not NULL), then frees the map. */
void strmap_free(struct strmap *m, void (*free_value)(void *));
void *strmap_get(const struct strmap *m, const char *key);
/* Inserts or replaces. Returns 0, or -1 when out of memory. */
int strmap_put(struct strmap *m, const char *key, void *value);
/* Removes the key; returns its value or NULL. */
void *strmap_del(struct strmap *m, const char *key);
size_t strmap_size(const struct strmap *m);
/* Removes every entry drop() says yes to (freeing its value with
 * free_value, if given); drop must not change the map. The number removed.
 * O(size + buckets): for periodic pruning, not per message. */
size_t strmap_sweep(struct strmap *m, bool (*drop)(void *ctx, const char *key, void *value),
		    void *ctx, void (*free_value)(void *));

/* SipHash-2-4 of data under key (exposed for its test vectors). */
uint64_t strmap_siphash24(const uint64_t key[2], const void *data, size_t len);

#endif
