/* tls_ctx_int: what the two files of the tls_ctx module share. tls_ctx.c
 * builds the contexts and calls tls_ctx_resume.c for session resumption;
 * nothing else includes this header. */
#ifndef IOTGW_TLS_CTX_INT_H
#define IOTGW_TLS_CTX_INT_H

#include "iotgw/config.h"
#include "iotgw/tls_ctx.h"

/* Sets up resumption on a new listener context: the listener name's session
 * store and its callbacks, stateful tickets (or tickets and the cache off,
 * with session_resumption = no), and the session id context. Problems
 * go to d as errors at the listener's line. */
void tls_ctx_resumption(struct cfg_diag_sink *d, SSL_CTX *ctx, const struct cfg_listener *l);

#endif
