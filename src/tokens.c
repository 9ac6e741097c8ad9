/* tokens: a worker's sessions by token (tokens.h). */
#include "tokens.h"

#include <inttypes.h>
#include <stdio.h>

#include "ingest.h"
#include "worker.h"

uint64_t tokens_new(struct worker *w)
{
	return ++w->next_id * INGEST_WORKERS_MAX + w->index;
}

static void key_of(uint64_t token, char key[17])
{
	snprintf(key, 17, "%016" PRIx64, token);
}

int tokens_put(struct worker *w, uint64_t token, struct session *s)
{
	char key[17];
	key_of(token, key);
	return strmap_put(w->by_token, key, s);
}

void tokens_del(struct worker *w, uint64_t token, const struct session *s)
{
	char key[17];
	key_of(token, key);
	if (strmap_get(w->by_token, key) == s)
		(void)strmap_del(w->by_token, key);
}

struct session *tokens_get(struct worker *w, uint64_t token)
{
	char key[17];
	key_of(token, key);
	return strmap_get(w->by_token, key);
}
