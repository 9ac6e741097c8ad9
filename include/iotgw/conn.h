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

#include "iotgw/buf.h"
#include "iotgw/config.h"
#include "iotgw/evloop.h"

struct conn;
typedef struct ssl_ctx_st SSL_CTX;

enum conn_state {
	CONN_STATE_HANDSHAKE, /* TLS handshake in progress */
	CONN_STATE_OPEN,
	CONN_STATE_ERROR, /* failed; conn_error() says why */
	CONN_STATE_EOF,   /* peer closed */
};

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

/* Events delivered to the owner. */
struct conn_handler {
	void (*up)(void *owner);       /* handshake completed */
	void (*readable)(void *owner); /* conn_read may return data */
	void (*drained)(void *owner);  /* output buffer fully written */
	void (*failed)(void *owner);   /* handshake or I/O failed, or peer closed */
};

struct conn_type {
	const char *name;
	int (*handshake)(struct conn *c); /* 1 done, 0 again, -1 failed */
	ssize_t (*read)(struct conn *c, void *p, size_t n);
	ssize_t (*write)(struct conn *c, const void *p, size_t n);
	void (*destroy)(struct conn *c); /* releases type-specific state */
};

struct conn {
	const struct conn_type *type;
	struct ev_loop *loop;
	struct ev_io io;
	enum conn_state state;
	bool read_paused;
	bool want_read_for_write; /* TLS: a write needs the socket readable */
	bool want_write_for_read; /* TLS: a read needs the socket writable */
	bool hs_want_write;       /* TLS handshake waits for writability */
	enum conn_fail_class fail_class; /* after a failed handshake */
	struct buf out;
	const struct conn_handler *handler;
	void *owner;
	char error[160];
};

/* Wrap an accepted, non-blocking socket. ctx NULL -> plaintext. The conn
 * owns fd from now on. Returns NULL on allocation failure (fd closed). */
struct conn *conn_new(struct ev_loop *loop, int fd, SSL_CTX *ctx, size_t out_max,
		      const struct conn_handler *handler, void *owner);

/* Stops all I/O, closes the socket and frees. Call from ev_defer or outside
 * event callbacks of this conn. */
void conn_free(struct conn *c);

ssize_t conn_read(struct conn *c, void *p, size_t n);
bool conn_failed(const struct conn *c);

/* Queues bytes and tries to write them now. Returns 0, or -1 if the output
 * buffer ceiling is reached (the owner should close the connection). */
int conn_send(struct conn *c, const void *p, size_t n);
size_t conn_pending_output(const struct conn *c);

void conn_pause_reading(struct conn *c);
/* Resumes reading; if decrypted bytes are already buffered inside TLS (which
 * epoll cannot see), the owner gets a readable event on the next iteration. */
void conn_resume_reading(struct conn *c);

const char *conn_error(const struct conn *c);
void conn_set_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
 * (tls_recheck_peer): 0 still valid, -1 with a reason in why. For
 * disconnect_revoked at reload; new_ctx is the new tls = mutual context. */
int conn_recheck_peer(const struct conn *c, SSL_CTX *new_ctx, char *why, size_t whylen);

/* Recomputes epoll interest; called by the implementations. */
void conn_update_interest(struct conn *c);

/* Internal to conn.c / conn_tls.c. */
extern const struct conn_type conn_type_tcp;
struct conn *conn_tls_new(SSL_CTX *ctx, int fd, char *err, size_t errlen);
struct conn *conn_tcp_new(void);
bool conn_is_tls(const struct conn *c);

#endif
