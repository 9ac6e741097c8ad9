/* conn_tls: the OpenSSL implementation of the connection interface.
 *
 * Non-blocking throughout: SSL_accept/SSL_read/SSL_write return WANT_READ or
 * WANT_WRITE, which become flags that conn_update_interest folds into the
 * epoll interest. A read that needs the socket writable (or a write that
 * needs it readable) happens when TLS sends a record of its own, e.g. a
 * session ticket or a key update. What the peer's certificate says (identity,
 * description of a refused one, re-verification) is tls_peer's; this file
 * only hands it the SSL.
 *
 * The parsed peer certificate is released at the first read after the
 * handshake (tls_peer_release): by then the owner has taken the identity
 * (handler->up comes first), and an idle connection keeps its encoding
 * instead of about 7 KiB of parsed certificate and key. The accessors below
 * work either way.
 *
 * Handshakes that have not read a complete ClientHello yet wait in one list,
 * oldest first, so that at max_handshakes a new connection can take the slot
 * of the oldest (conn_evict_stalled_hello): an honest device sends its
 * ClientHello in one segment right after connecting, so it leaves the list
 * within a loop iteration or two, and what stays there is a peer that
 * connected and then sent nothing, or part of a hello, which costs it
 * nothing to keep doing from many addresses (issue 12, scenario 6b). Oldest
 * first rather than "from the address that holds the most": under such a
 * load the oldest waiting handshakes are the attacker's anyway, and the
 * per-address choice would need the counts ordered (a structure per
 * address); max_handshakes_per_address already bounds one address.
 *
 * The list is the process's, like max_handshakes, whichever worker thread
 * has each connection: under its own mutex (taken when a handshake starts
 * and when it reads its ClientHello or ends, never per reading). A worker
 * evicts the oldest wherever it is without touching it: it marks it
 * evicted and shuts its socket down for reading, which the connection's own
 * worker sees as readable; that worker's next handshake step fails it. The
 * socket stays open while the connection is in the list (it leaves the
 * list, under the mutex, before it is freed). */
#include "conn_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "iotgw/tls_peer.h"

struct conn_tls {
	struct conn c; /* first member: a struct conn * is a struct conn_tls * */
	SSL *ssl;
	bool released;               /* tls_peer_release was tried */
	struct tls_peer_kept *kept; /* what it kept, when it released */
	/* In hello_wait while the handshake has not read a whole ClientHello
	 * (waiting, and the links, under wait_mu), since waiting_since_ms;
	 * evicted: by conn_evict_stalled_hello, maybe on another thread, after
	 * evicted_after_ms; reported at the next handshake step. */
	struct conn_tls *wait_prev, *wait_next;
	atomic_bool waiting, evicted;
	uint64_t waiting_since_ms, evicted_after_ms;
};

/* The handshakes waiting for their ClientHello, oldest at the head. */
static pthread_mutex_t wait_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct conn_tls *head, *tail;
} hello_wait;

static void unlink_held(struct conn_tls *t)
{
	if (!atomic_load_explicit(&t->waiting, memory_order_relaxed))
		return;
	if (t->wait_prev)
		t->wait_prev->wait_next = t->wait_next;
	else
		hello_wait.head = t->wait_next;
	if (t->wait_next)
		t->wait_next->wait_prev = t->wait_prev;
	else
		hello_wait.tail = t->wait_prev;
	t->wait_prev = t->wait_next = NULL;
	atomic_store_explicit(&t->waiting, false, memory_order_relaxed);
}

static void wait_unlink(struct conn_tls *t)
{
	if (!atomic_load_explicit(&t->waiting, memory_order_acquire))
		return; /* not in the list (an evictor takes it out under wait_mu) */
	pthread_mutex_lock(&wait_mu);
	unlink_held(t);
	pthread_mutex_unlock(&wait_mu);
}

static struct conn_tls *tls_of(const struct conn *c)
{
	return (struct conn_tls *)(uintptr_t)c;
}

static enum conn_fail_class classify_failure(int err, long vr, unsigned long e)
{
	switch (vr) {
	case X509_V_OK:
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		return CONN_FAIL_UNKNOWN_CA;
	case X509_V_ERR_CERT_REVOKED:
		return CONN_FAIL_REVOKED;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return CONN_FAIL_EXPIRED;
	default:
		return CONN_FAIL_BAD_CERT;
	}
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
	     ERR_GET_REASON(e) == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED))
		return CONN_FAIL_NO_CERT;
	if ((e == 0 && err == SSL_ERROR_SYSCALL) ||
	    (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
		return CONN_FAIL_CLOSED; /* EOF or reset, no TLS-level reason */
	return CONN_FAIL_PROTOCOL;
}

/* Describes a failed TLS operation for the log: the certificate problem when
 * verification failed, else OpenSSL's reason, else the errno story. */
static void describe_failure(struct conn *c, SSL *ssl, int ret, const char *op)
{
	int err = SSL_get_error(ssl, ret);
	long vr = SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_last_error();
	if (c->state == CONN_STATE_HANDSHAKE)
		c->fail_class = classify_failure(err, vr, e);
	if (vr != X509_V_OK && c->state == CONN_STATE_HANDSHAKE) {
		char who[400];
		tls_peer_describe(tls_peer_refused(ssl), who, sizeof who);
		conn_set_error(c, "%s: certificate verify failed: %s%s", op,
			       X509_verify_cert_error_string(vr), who);
	} else if (e != 0) {
		char buf[120];
		ERR_error_string_n(e, buf, sizeof buf);
		const char *reason = ERR_reason_error_string(e);
		conn_set_error(c, "%s: %s", op, reason ? reason : buf);
	} else if (err == SSL_ERROR_SYSCALL && errno != 0) {
		conn_set_error(c, "%s: %s", op, strerror(errno));
	} else {
		conn_set_error(c, "%s: connection closed by peer", op);
	}
	ERR_clear_error();
}

static void tls_handshake_begin(struct conn *c)
{
	struct conn_tls *t = tls_of(c);
	pthread_mutex_lock(&wait_mu);
	if (!atomic_load_explicit(&t->waiting, memory_order_relaxed) &&
	    !atomic_load_explicit(&t->evicted, memory_order_relaxed)) {
		atomic_store_explicit(&t->waiting, true, memory_order_relaxed);
		t->waiting_since_ms = ev_clock_ms();
		t->wait_prev = hello_wait.tail;
		t->wait_next = NULL;
		if (hello_wait.tail)
			hello_wait.tail->wait_next = t;
		else
			hello_wait.head = t;
		hello_wait.tail = t;
	}
	pthread_mutex_unlock(&wait_mu);
}

/* Has the handshake read a complete ClientHello? The server side sits in
 * TLS_ST_BEFORE until a whole record of it arrived and in
 * TLS_ST_SR_CLNT_HELLO while the message is incomplete (a hello split over
 * records) or being processed; any later state means it was read, for TLS
 * 1.2 and 1.3 alike (a HelloRetryRequest included: the server answered). */
static bool hello_read(SSL *ssl)
{
	OSSL_HANDSHAKE_STATE st = SSL_get_state(ssl);
	return st != TLS_ST_BEFORE && st != TLS_ST_SR_CLNT_HELLO;
}

static int tls_handshake(struct conn *c)
{
	struct conn_tls *t = tls_of(c);
	SSL *ssl = t->ssl;
	if (atomic_load_explicit(&t->evicted, memory_order_acquire)) {
		c->fail_class = CONN_FAIL_TIMEOUT;
		conn_set_error(c,
			       "evicted: no complete ClientHello after %llu ms while "
			       "max_handshakes was reached",
			       (unsigned long long)t->evicted_after_ms);
		return -1;
	}
	ERR_clear_error();
	errno = 0;
	int r = SSL_accept(ssl);
	if (r == 1 || hello_read(ssl))
		wait_unlink(t);
	if (r == 1)
		return 1;
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		c->hs_want_write = false;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		c->hs_want_write = true;
		return 0;
	default:
		wait_unlink(t);
		describe_failure(c, ssl, r, "handshake");
		return -1;
	}
}

bool conn_evict_stalled_hello(void)
{
	pthread_mutex_lock(&wait_mu);
	struct conn_tls *t = hello_wait.head;
	if (t) {
		unlink_held(t);
		t->evicted_after_ms = ev_clock_ms() - t->waiting_since_ms;
		atomic_store_explicit(&t->evicted, true, memory_order_release);
		/* Readable for its worker, wherever it is: tls_handshake reports
		 * it on that worker's next turn. Its socket is open while it is
		 * in the list (tls_destroy leaves the list first). */
		(void)shutdown(t->c.fd, SHUT_RD);
	}
	pthread_mutex_unlock(&wait_mu);
	return t != NULL;
}

/* The one mapping of an SSL_read/SSL_write result: > 0 bytes; -1 to try
 * again when the socket is ready (the direction it waits for is noted, so
 * conn_update_interest asks epoll for it) or after a failure (the state
 * says which); 0 when the peer closed (reads only). */
static ssize_t tls_result(struct conn *c, int r, bool reading)
{
	SSL *ssl = tls_of(c)->ssl;
	bool *opposite = reading ? &c->want_write_for_read : &c->want_read_for_write;
	if (r > 0) {
		*opposite = false;
		return r;
	}
	int e = SSL_get_error(ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*opposite = e == (reading ? SSL_ERROR_WANT_WRITE : SSL_ERROR_WANT_READ);
		return -1;
	}
	if (reading && (e == SSL_ERROR_ZERO_RETURN ||
			(e == SSL_ERROR_SYSCALL && (errno == 0 || errno == ECONNRESET)))) {
		conn_set_state(c, CONN_STATE_EOF);
		return 0;
	}
	conn_set_state(c, CONN_STATE_ERROR);
	describe_failure(c, ssl, r, reading ? "read" : "write");
	return -1;
}

static ssize_t tls_read(struct conn *c, void *p, size_t n)
{
	struct conn_tls *t = tls_of(c);
	if (!t->released) {
		t->released = true;
		t->kept = tls_peer_release(t->ssl);
	}
	ERR_clear_error();
	errno = 0;
	return tls_result(c, SSL_read(tls_of(c)->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n), true);
}

static ssize_t tls_write(struct conn *c, const void *p, size_t n)
{
	ERR_clear_error();
	errno = 0;
	return tls_result(c, SSL_write(tls_of(c)->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n),
			  false);
}

static void tls_destroy(struct conn *c)
{
	struct conn_tls *t = tls_of(c);
	wait_unlink(t); /* first: an evictor may use the socket while it is listed */
	if (t->ssl) {
		if (c->state == CONN_STATE_OPEN) {
			/* One non-blocking attempt at close_notify; we never wait
			 * for the peer's reply. */
			ERR_clear_error();
			(void)SSL_shutdown(t->ssl);
			ERR_clear_error();
		}
		SSL_free(t->ssl);
	}
	tls_peer_kept_free(t->kept);
	free(t);
}

static struct conn *tls_create(SSL_CTX *ctx, int fd, char *err, size_t errlen)
{
	struct conn_tls *t = calloc(1, sizeof *t);
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->ssl = SSL_new(ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
		ERR_error_string_n(ERR_get_error(), err, errlen);
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	SSL_set_accept_state(t->ssl);
	return &t->c;
}

/* A whole record read ahead (read-ahead is on) or decrypted bytes not yet
 * returned: SSL_read will give data without the socket being readable. */
static bool tls_pending(const struct conn *c)
{
	return SSL_has_pending(tls_of(c)->ssl) == 1;
}

const struct conn_type conn_type_tls = {
	.name = "tls",
	.create = tls_create,
	.handshakes = true,
	.handshake = tls_handshake,
	.handshake_begin = tls_handshake_begin,
	.read = tls_read,
	.write = tls_write,
	.pending = tls_pending,
	.destroy = tls_destroy,
};

const char *conn_tls_version(const struct conn *c)
{
	/* Before its ClientHello is read nothing is negotiated: SSL_get_version
	 * would name the highest version allowed, not one the peer spoke. */
	if (!conn_is_tls(c) || !hello_read(tls_of(c)->ssl))
		return NULL;
	return SSL_get_version(tls_of(c)->ssl);
}

const char *conn_tls_cipher(const struct conn *c)
{
	return conn_is_tls(c) ? SSL_get_cipher_name(tls_of(c)->ssl) : NULL;
}

int conn_peer_identity(struct conn *c, enum cfg_identity source, char *out, size_t cap)
{
	if (!conn_is_tls(c)) {
		conn_set_error(c, "no TLS peer certificate on a plaintext connection");
		return -1;
	}
	char why[sizeof c->error];
	const struct conn_tls *t = tls_of(c);
	if ((t->kept ? tls_peer_kept_identity(t->kept, source, out, cap, why, sizeof why)
		     : tls_peer_identity(SSL_get0_peer_certificate(t->ssl), source, out, cap, why,
					 sizeof why)) != 0) {
		conn_set_error(c, "%s", why);
		return -1;
	}
	return 0;
}

/* The reason for the refusal is what conn_error() must keep saying: the
 * identity's own reason is dropped. */
int conn_refused_identity(struct conn *c, enum cfg_identity source, char *out, size_t cap)
{
	X509 *cert = conn_is_tls(c) ? tls_peer_refused(tls_of(c)->ssl) : NULL;
	return cert ? tls_peer_identity(cert, source, out, cap, NULL, 0) : -1;
}

int conn_peer_not_after(const struct conn *c, time_t *out)
{
	return conn_is_tls(c) ? tls_peer_not_after(tls_of(c)->ssl, tls_of(c)->kept, out) : -1;
}

int conn_recheck_peer(const struct conn *c, SSL_CTX *new_ctx, char *why, size_t whylen)
{
	if (!conn_is_tls(c)) {
		snprintf(why, whylen, "not a TLS connection");
		return -1;
	}
	return tls_peer_recheck(new_ctx, tls_of(c)->ssl, tls_of(c)->kept, why, whylen);
}
