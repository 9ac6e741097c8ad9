/* tls_ctx: builds and checks OpenSSL contexts from the configuration.
 *
 * A context is built completely (certificate chain, key, key/certificate
 * match, CA, CRLs, cipher profile, groups, session resumption) before anyone
 * uses it, so a reload can build new contexts aside and swap them in only if
 * every one succeeded. SSL objects keep a reference to their SSL_CTX, so
 * established connections keep the old context alive after a swap. Problems
 * are reported through the config diagnostics sink with the config line that
 * named the file.
 *
 * Session resumption: stateful. A listener context issues TLS 1.3 tickets
 * that only name a session, and TLS 1.2 session ids; the sessions are kept in
 * a store per listener NAME, not per context: it lives in this module for the
 * life of the process and survives a reload, so devices resume after SIGHUP.
 * It holds each session encoded (with the device's certificate), at most
 * max_connections of them (256 to 20480), each for session_lifetime. A TLS 1.3
 * ticket resumes once (the resumed handshake brings a new one), a TLS 1.2
 * session id until it expires. The session id context is a digest of the
 * listener name, its TLS mode, cipher settings and the bytes of its CA and
 * CRL files: a session made under another CA, CRL or cipher policy is never
 * resumed (that would skip the new checks); the device does a full handshake
 * instead.
 *
 * Ownership: a context returned is the caller's, freed with SSL_CTX_free;
 * the module keeps the session stores (tls_ctx_cleanup) and nothing else. Texts
 * go into the caller's buffers. What a peer's certificate says (identity,
 * a refused certificate, re-verification after a reload) is tls_peer.h's.
 *
 * Not thread-safe: call from the event loop thread only. */
#ifndef IOTGW_TLS_CTX_H
#define IOTGW_TLS_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "iotgw/config.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

/* Server context for a listener with tls != off; the caller frees it with
 * SSL_CTX_free. Returns NULL after reporting every problem found. Errors
 * include: unreadable or bad files, a key that does not match its
 * certificate, a private key readable by other users, a CRL file without
 * CRLs or whose CRL does not verify, a CA in `ca` with no CRL in `crl`, no
 * usable cipher. */
SSL_CTX *tls_ctx_listener(const struct cfg_listener *l, const char *cfgfile, cfg_diag_fn diag,
			  void *dctx);

/* Client context for the upstream connection (tls = mutual): TLS >= 1.2,
 * broker verified against `ca` (and `crl` when set, whole chain) with the
 * host name or IP address of `host` checked, client certificate and key.
 * For libmosquitto's MOSQ_OPT_SSL_CTX (with MOSQ_OPT_SSL_CTX_WITH_DEFAULTS
 * off: everything is set here). Caller frees with SSL_CTX_free. NULL after
 * reporting every problem; NULL without a report when u->tls is off. */
SSL_CTX *tls_ctx_upstream(const struct cfg_upstream *u, const char *cfgfile, cfg_diag_fn diag,
			  void *dctx);

/* True when ctx (a listener context) accepts TLS 1.2 suites with RSA key
 * exchange, which have no forward secrecy: tls_profile = legacy, or an
 * explicit `ciphers` list with such suites. suites receives their names,
 * ':'-separated (truncated to cap). The daemon logs event=tls_legacy then. */
bool tls_ctx_is_legacy(SSL_CTX *ctx, char *suites, size_t cap);

/* What in ctx expires soon: its own certificate (notAfter) and every CRL
 * in its store (nextUpdate; an expired CRL refuses every certificate it
 * covers). fn is called for each that expires before now + horizon_s
 * (expired ones too) with a sentence saying what and when. Used at start,
 * at reload (with FILE:LINE, via the config diagnostics) and daily. */
enum tls_expiry_kind { TLS_EXPIRY_CERT, TLS_EXPIRY_CRL };
typedef void (*tls_expiry_fn)(void *arg, enum tls_expiry_kind kind, bool expired,
			      const char *text);
void tls_ctx_expiring(SSL_CTX *ctx, time_t now, unsigned horizon_s, tls_expiry_fn fn, void *arg);

/* The same as times for /metrics: cert receives ctx's own certificate's
 * notAfter, ca the earliest notAfter of the CA certificates it trusts, crl
 * the earliest nextUpdate of its CRLs; 0 for none. */
void tls_ctx_expiry(SSL_CTX *ctx, time_t *cert, time_t *ca, time_t *crl);

/* Wipes and frees the session stores of every listener. Meant for exit,
 * once the last listener context is freed (a context points at its
 * listener's store); until it is called the sessions stay in memory, as
 * resumption needs them to. */
void tls_ctx_cleanup(void);

/* Across a restart: every unexpired session of every store, written to
 * path (0600, through path.tmp and a rename; it holds master secrets), and
 * read back into the stores of the listeners that exist (call it after the
 * contexts are built). A session is resumed only if its listener, trust
 * and cipher policy are unchanged (the session id context) and it has not
 * expired. Both return how many sessions, or -1 with err (load: the
 * sessions before the damage are kept); a missing file loads 0. */
long tls_ctx_sessions_save(const char *path, char *err, size_t errlen);
long tls_ctx_sessions_load(const char *path, char *err, size_t errlen);
/* A session was made or dropped since the last save or load. */
bool tls_ctx_sessions_changed(void);

#endif
