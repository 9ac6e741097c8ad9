/* conn: one connection interface over plaintext TCP and TLS.
 *
 * The rest of the daemon never calls OpenSSL for device I/O: it sees a conn
 * that (1) completes its handshake (instant for TCP), (2) tells its owner
 * when bytes can be read, and (3) owns an output buffer that it flushes
 * itself. WANT_READ/WANT_WRITE from OpenSSL are folded into the epoll
 * interest here (interest = what the owner wants OR what OpenSSL needs), so
 * the owner just reads, sends and pauses.
 *
 * conn_read behaves like read(2): >0 bytes, 0 at orderly EOF, -1 with
 * conn_failed() telling a real error from "try again later". */
#ifndef IOTGW_CONN_H
#define IOTGW_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "iotgw/config.h"
#include "iotgw/evloop.h"

struct conn;
typedef struct ssl_ctx_st SSL_CTX;

/* Why a handshake failed, in the classes an operator alerts on
 * (iotgw_handshake_failures_total). TIMEOUT is the owner's deadline: conn
 * itself never reports it. */
enum conn_fail_class {
	CONN_FAIL_PROTOCOL, /* anything not below: bad TLS, no common cipher, ... */
	CONN_FAIL_UNKNOWN_CA,
	CONN_FAIL_REVOKED,
	CONN_FAIL_EXPIRED, /* or not yet valid */
	CONN_FAIL_NO_CERT,
	CONN_FAIL_BAD_CERT, /* other verification failures: purpose, signature, ... */
	CONN_FAIL_CLOSED,   /* the peer went away mid-handshake */
	CONN_FAIL_TIMEOUT,
	CONN_FAIL__COUNT
};

/* How the PROXY protocol phase of a connection ended (handler->proxied):
 * the header a balancer put before the device's bytes was read, or there
 * was none to read (proxy_protocol = optional), or the connection failed. */
struct conn_proxied {
	bool ok;         /* false: failed (malformed, closed, ...); error says why */
	char error[256];
	unsigned version; /* 1 or 2; 0: no header */
	bool has_source;  /* the header named the device's address ... */
	char source[64];  /* ... as "1.2.3.4:5678" or "[2001:db8::7]:5678" */
	/* The client certificate CN the balancer verified (a v2 header from a
	 * balancer that terminated TLS: pp_verified_cn), or why there is none. */
	bool has_cn;
	char cn[AUTH_DEVICE_MAX + 1];
	char cn_why[160];
};

/* Events delivered to the owner. */
struct conn_handler {
	void (*up)(void *owner);       /* handshake completed */
	void (*readable)(void *owner); /* conn_read may return data */
	void (*drained)(void *owner);  /* output buffer fully written */
	void (*failed)(void *owner);   /* handshake or I/O failed, or peer closed */
	/* The PROXY protocol phase ended (only on connections made with a
	 * proxy mode). Returns false when the owner closed the connection (no
	 * more events come); after true the handshake starts, or, for
	 * plaintext, up follows. A failed phase reports here, not to failed. */
	bool (*proxied)(void *owner, const struct conn_proxied *p);
};

/* What kind of connection a listener makes (its listener carries it, as
 * Redis's connListener carries its ConnectionType). */
struct conn_type;
extern const struct conn_type conn_type_tcp; /* plaintext (conn_tcp.c) */
extern const struct conn_type conn_type_tls; /* TLS server side (conn_tls.c) */

/* Wraps an accepted, non-blocking socket as a connection of `type` (ctx:
 * its TLS context, NULL for plaintext). The conn owns fd from now on; the
 * caller owns the conn (conn_free). NULL on allocation failure (fd
 * closed). A plaintext conn is open at once (conn_is_open); a TLS one
 * reports handler->up when its handshake completed. With a proxy mode
 * other than CFG_PROXY_OFF, the PROXY protocol header is read first from
 * the raw socket (handler->proxied), and only then does the handshake (or,
 * for plaintext, up) follow; the owner's deadline covers both. */
struct conn *conn_new(struct ev_loop *loop, int fd, const struct conn_type *type, SSL_CTX *ctx,
		      enum cfg_proxy_mode proxy, size_t out_max, const struct conn_handler *handler,
		      void *owner);

/* Stops all I/O, closes the socket and frees. Call from ev_defer or outside
 * event callbacks of this conn. */
void conn_free(struct conn *c);

ssize_t conn_read(struct conn *c, void *p, size_t n);
bool conn_failed(const struct conn *c);
bool conn_is_open(const struct conn *c); /* handshake done, not failed or closed */
bool conn_is_tls(const struct conn *c);
bool conn_awaiting_proxy(const struct conn *c); /* still reading the PROXY header */
/* The address the TCP connection comes from: the balancer's when a PROXY
 * header named the device's. 0, or -1 (errno). */
struct sockaddr_storage;
int conn_socket_peer(const struct conn *c, struct sockaddr_storage *ss);
/* Why the handshake failed, after handler->failed in the handshake. */
enum conn_fail_class conn_fail_class(const struct conn *c);

/* Queues bytes and tries to write them now. Returns 0, or -1 if the output
 * buffer ceiling is reached (the owner should close the connection). */
int conn_send(struct conn *c, const void *p, size_t n);
size_t conn_pending_output(const struct conn *c);

void conn_pause_reading(struct conn *c);
/* The owner stops reading for this loop turn although more may be there:
 * it gets a readable event again on the next iteration (epoll reports what
 * the socket holds; what TLS already decrypted is fed). */
void conn_yield_reading(struct conn *c);
/* Resumes reading; if decrypted bytes are already buffered inside TLS (which
 * epoll cannot see), the owner gets a readable event on the next iteration
 * all the same (ev_io_feed). */
void conn_resume_reading(struct conn *c);

/* At max_handshakes (registry.c): fails the TLS connection that has waited
 * longest for a complete ClientHello (its handshake read less than one, so
 * it never cost a key exchange), to make room for a new one. The conn
 * fails with an "evicted: ..." error and the class CONN_FAIL_TIMEOUT, and
 * its owner hears handler->failed on the next loop iteration, never from
 * inside this call. false: no handshake is waiting for its ClientHello
 * (each one read it, or is past it). O(1). Whichever worker has the
 * connection: it is marked and its socket shut down for reading, and its
 * worker fails it on its next turn. */
bool conn_evict_stalled_hello(void);

/* Why it failed, for a log line; the conn owns the text. */
const char *conn_error(const struct conn *c);

/* TLS only (NULL / -1 for plaintext). */
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);
/* Copies the identity from the verified peer certificate into out. Returns 0,
 * or -1 with a reason in conn_error(). */
int conn_peer_identity(struct conn *c, enum cfg_identity source, char *out, size_t cap);
/* The same for the certificate a failed handshake refused (expired,
 * revoked, unknown CA): whose it claims to be, for the log line that says
 * it was refused. -1 when no certificate was refused. conn_error() is kept. */
int conn_refused_identity(struct conn *c, enum cfg_identity source, char *out, size_t cap);
/* notAfter of the peer certificate (for event=cert_expiring). 0, or -1 on a
 * plaintext connection or without a peer certificate. */
int conn_peer_not_after(const struct conn *c, time_t *out);
/* Re-verifies the peer's certificate chain against new_ctx's CA and CRLs
 * (tls_peer_recheck): 0 still valid, -1 with a reason in why. For
 * disconnect_revoked at reload; new_ctx is the new tls = mutual context. */
int conn_recheck_peer(const struct conn *c, SSL_CTX *new_ctx, char *why, size_t whylen);

#endif
