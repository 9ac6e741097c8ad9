/* tokens: a worker's sessions by token. A token names a session in the
 * messages between its worker and the owner for as long as the process
 * runs (a later session never gets it): the worker's own count, with the
 * worker's index in the low bits (TOKEN_WORKER), so that news for a session
 * finds its worker; a message for a token that has gone finds nothing.
 * Owns the map's entries, not the sessions; the worker's thread only. */
#ifndef IOTGW_TOKENS_H
#define IOTGW_TOKENS_H

#include <stdint.h>

struct worker;
struct session;

uint64_t tokens_new(struct worker *w);
/* 0, or -1 out of memory. */
int tokens_put(struct worker *w, uint64_t token, struct session *s);
/* Removes token's entry if it is still s's. */
void tokens_del(struct worker *w, uint64_t token, const struct session *s);
struct session *tokens_get(struct worker *w, uint64_t token);

#endif
