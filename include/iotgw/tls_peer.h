/* tls_peer: the identity and description of a TLS peer's certificate.
 *
 * Owns everything said about the certificate a device presents: the identity
 * taken from it (CN, a subjectAltName or the serial number, as iotgw.conf(5)
 * "identity" selects), the one printer of certificate names and the one
 * formatter of serial numbers, the certificate a failed handshake refused
 * (which OpenSSL would otherwise forget), the re-verification of an
 * established peer against a new context and the peer's notAfter, and the
 * release of an established peer's parsed certificate (what is kept of it
 * instead: its encoding and notAfter). It
 * returns texts and reasons; its callers (conn_tls, tls_ctx) decide what to
 * log. Names are printed RFC 2253 style with bytes above 0x7f escaped, so the
 * texts are safe in a log line.
 *
 * Ownership: certificates, names and SSL objects stay the caller's (a
 * refused certificate belongs to its SSL and lives as long as it does);
 * texts go into the caller's buffers. Not thread-safe: call from the event
 * loop thread only. */
#ifndef IOTGW_TLS_PEER_H
#define IOTGW_TLS_PEER_H

#include <stddef.h>
#include <time.h>

#include "iotgw/config.h"

typedef struct x509_st X509;
typedef struct X509_name_st X509_NAME;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

/* What is kept of an established peer's certificate after tls_peer_release:
 * the encoding of the certificate and of the intermediate CAs it was
 * verified with, and its notAfter. Opaque; freed with tls_peer_kept_free. */
struct tls_peer_kept;

/* "CN=devices-ca,O=..." (RFC 2253 order and escaping, bytes above 0x7f as
 * \XX), truncated to cap - 1 bytes; "?" when n is empty or cannot be printed.
 * Returns out. */
const char *tls_peer_name(const X509_NAME *n, char *out, size_t cap);

/* The serial number as upper-case hex without separators, the way `openssl
 * x509 -serial` prints it ("4A0F...", even number of digits; a negative one
 * starts with '-'). 0, or -1 when it cannot be converted or does not fit in
 * cap. */
int tls_peer_serial(const X509 *cert, char *out, size_t cap);

/* Copies the identity that source selects from cert into out: the only
 * subject CN, the first subjectAltName of the type, or the serial number
 * (tls_peer_serial, not negative). Text must be printable, without NUL, and
 * fit in cap. 0, or -1 with a reason in why ("client certificate has no
 * subject CN"; "no client certificate" when cert is NULL); out is then
 * undefined. why may be NULL when whylen is 0. */
int tls_peer_identity(X509 *cert, enum cfg_identity source, char *out, size_t cap, char *why,
		      size_t whylen);

/* " (subject CN=dev0004, serial 1A2B, issuer CN=devices-ca)" for a refused
 * certificate, each name cut at 60 bytes; "" when cert is NULL. */
void tls_peer_describe(X509 *cert, char *out, size_t cap);

/* SSL_CTX_set_verify(ctx, mode, ...) with a callback that only watches: the
 * verdict stays OpenSSL's, but the leaf certificate of a failed verification
 * is kept with the SSL for tls_peer_refused. */
void tls_peer_set_verify(SSL_CTX *ctx, int mode);

/* The leaf certificate a device presented on a context set up with
 * tls_peer_set_verify when its verification failed (expired, revoked,
 * unknown CA, ...), so that the refusal can name the device; NULL when none
 * was refused. The SSL owns it. */
X509 *tls_peer_refused(const SSL *ssl);

/* Releases the parsed certificate of an established connection's peer, the
 * largest part of an idle mutual-TLS connection's memory (about 7 KiB with a
 * P-256 key: the X509, its public key and a copy of the curve). Call once
 * the identity has been taken (tls_peer_identity): afterwards the SSL has no
 * peer certificate, no verified chain and no peer chain. The SSL's session
 * is decoded in place from an encoding of itself without the certificate
 * (same protocol, cipher, master secret, ids, host name); sessions for
 * resumption are stored encoded elsewhere (tls_ctx), so the parsed
 * certificate is then freed. Returns what is kept instead (the caller's,
 * tls_peer_kept_free), or NULL when nothing was released and the SSL keeps
 * its certificate as before: no peer certificate, a session that negotiated
 * max_fragment_length (the record layer reads it from the session and the
 * encoding cannot carry it back), out of memory. Relies on OpenSSL 3.0
 * reading nothing else of an established server session than what the
 * encoding carries (see docs/architecture.md). */
struct tls_peer_kept *tls_peer_release(SSL *ssl);
void tls_peer_kept_free(struct tls_peer_kept *k);

/* tls_peer_identity of a released certificate (parsed again for it). */
int tls_peer_kept_identity(const struct tls_peer_kept *k, enum cfg_identity source, char *out,
			   size_t cap, char *why, size_t whylen);

/* Verifies the certificate chain an established connection presented
 * against new_ctx's trust store and CRLs (e.g. after a reload changed the
 * CA or CRL files), at the current time. Uses kept when the certificate was
 * released (its intermediates are those of the handshake's verification),
 * else the chain verified at the handshake when OpenSSL kept it, else the
 * peer's chain; after a resumed handshake only the leaf is known, so
 * intermediates must then be in `ca`. Returns 0 when it still verifies, -1
 * with a reason in why ("certificate revoked (depth 0, CN=dev0001)") when
 * not or when there is no peer certificate. new_ctx must be a tls = mutual
 * listener context. */
int tls_peer_recheck(SSL_CTX *new_ctx, SSL *ssl, const struct tls_peer_kept *kept, char *why,
		     size_t whylen);

/* notAfter of the peer's certificate (kept's when it was released) as a
 * time_t. 0, or -1 when there is no peer certificate or its time cannot be
 * converted. */
int tls_peer_not_after(const SSL *ssl, const struct tls_peer_kept *kept, time_t *out);

#endif
