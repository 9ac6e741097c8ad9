/* tls_ctx: builds and checks OpenSSL contexts from the configuration.
 *
 * A context is built completely (certificate chain, key, key/certificate
 * match, CA, ciphers, groups) before anyone uses it, so a reload can build
 * new contexts aside and swap them in only if every one succeeded. SSL
 * objects keep a reference to their SSL_CTX, so established connections keep
 * the old context alive after a swap. Problems are reported through the
 * config diagnostics sink with the config line that named the file. */
#ifndef IOTGW_TLS_CTX_H
#define IOTGW_TLS_CTX_H

#include "iotgw/config.h"

typedef struct ssl_ctx_st SSL_CTX;

/* Server context for a listener with tls != off. Returns NULL after
 * reporting every problem found. */
SSL_CTX *tls_ctx_listener(const struct cfg_listener *l, const char *cfgfile, cfg_diag_fn diag,
			  void *dctx);

/* Checks the upstream CA, client certificate and key (readable, parse, key
 * matches certificate). Returns the number of errors reported. */
int tls_check_upstream(const struct cfg_upstream *u, const char *cfgfile, cfg_diag_fn diag,
		       void *dctx);

#endif
