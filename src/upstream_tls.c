/* upstream_tls: what the upstream does under libmosquitto, in its TLS.
 * libmosquitto reduces a refused certificate to "certificate verify
 * failed" and a TLS alert to a log line: here the chain verification is
 * recorded and a failed connection is explained with what an operator
 * should check. And the writes of one loop iteration are collected: the
 * MQTT packets before encryption (so that they share TLS records), the
 * records under the SSL (so that they leave in one write(2)). The
 * connection itself, and the state machine, are in upstream.c;
 * upstream_int.h is what they share. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "upstream_int.h"

#define UP_WRITE_BUFFER (64 * 1024) /* upstream records collected per flush */
#define UP_RECORD 16384             /* the most plaintext one TLS record carries */
#define UP_PLAIN_KEEP (64 * 1024)   /* packet buffer kept between flushes, at most */

/* ---- why a connection failed ---- */

static bool has_any(const char *s, const char *const *needles)
{
	for (; *needles; needles++)
		if (strstr(s, *needles))
			return true;
	return false;
}

/* What an operator should check, from libmosquitto's reason and the TLS
 * error it reported: the TLS alerts a broker sends when it refuses our
 * client certificate, and the errors of TLS spoken to a port that is not
 * TLS, mean something precise; anything else keeps the library's words. */
const char *up_explain(struct upstream *up, const char *reason, enum up_drop_class *cls,
			char *out, size_t cap)
{
	static const char *const refused[] = {"alert unknown ca", "alert bad certificate",
					      "alert certificate required",
					      "alert certificate unknown",
					      "alert certificate revoked",
					      "alert certificate expired",
					      "alert unsupported certificate",
					      "alert access denied", NULL};
	static const char *const not_tls[] = {"wrong version number", "packet length too long",
					      "unknown protocol", "http request", NULL};
	const char *lib = up->lib_error;
	if (!lib[0] && up->awaiting_connack && up->set.tls) {
		/* Connected and TLS up, then closed before CONNACK: the broker's
		 * alert can be lost with the connection (a reset discards it),
		 * but the usual cause is the same. */
		snprintf(out, cap,
			 "%s before CONNACK: the broker closed the connection, as brokers do when "
			 "they refuse the gateway's client certificate (check [upstream] cert and key "
			 "(line %d) against the CA the broker trusts) or its client id (see the "
			 "broker's log)",
			 reason, up->set.cert_line);
		return out;
	}
	if (!lib[0])
		return reason;
	if (has_any(lib, refused)) {
		*cls = UP_DROP_CERT_REFUSED;
		snprintf(out, cap,
			 "the broker refused the gateway's client certificate (%s): check [upstream] "
			 "cert and key (line %d) against the CA the broker trusts",
			 lib, up->set.cert_line);
		return out;
	}
	if (*cls == UP_DROP_NETWORK || *cls == UP_DROP_CLOSED)
		*cls = UP_DROP_TLS; /* the library saw a TLS error */
	if (has_any(lib, not_tls))
		snprintf(out, cap,
			 "%s:%u does not answer in TLS (%s): is it a plaintext port? check [upstream] "
			 "host/port (line %d) and tls",
			 up->set.host, up->set.port, lib, up->set.host_line);
	else
		snprintf(out, cap, "%s (%s)", reason, lib);
	return out;
}

/* Why the broker's certificate was refused, for the log: through
 * libmosquitto OpenSSL only says "certificate verify failed". Set by the
 * chain verification wrapper, on whichever thread runs the handshake (the
 * connect thread, then read after pthread_join, or the loop). */
static int last_verify_error;
static int last_verify_depth;

/* Wraps the whole chain verification (libmosquitto installs its own
 * per-certificate verify callback on the context, so that hook is taken). */
int up_verify_and_record(X509_STORE_CTX *x, void *arg)
{
	(void)arg;
	int ok = X509_verify_cert(x);
	if (ok <= 0) {
		last_verify_error = X509_STORE_CTX_get_error(x);
		last_verify_depth = X509_STORE_CTX_get_error_depth(x);
	}
	return ok;
}

const char *up_failure_reason(int rc, int err, char *buf, size_t cap)
{
	if (rc == MOSQ_ERR_TLS && last_verify_error) {
		snprintf(buf, cap, "broker certificate refused: %s (depth %d)",
			 X509_verify_cert_error_string(last_verify_error), last_verify_depth);
		last_verify_error = 0;
		return buf;
	}
	return rc == MOSQ_ERR_ERRNO ? strerror(err) : mosquitto_strerror(rc);
}

void up_verify_reset(void)
{
	last_verify_error = 0;
}

/* ---- one record per iteration, not one per packet ----
 *
 * libmosquitto calls SSL_write once per MQTT packet, and OpenSSL makes a
 * TLS record of every call: each 200-byte PUBLISH became a record of its
 * own that the broker had to read, decrypt and authenticate alone (with
 * the window of 32 that bench.py uses, the broker's work per message is
 * what bounds the rate end to end: docs/benchmarks.md). libmosquitto has
 * no option to collect packets and offers no hook below its packet queue.
 * So this file defines SSL_write: the dynamic linker binds libmosquitto's
 * calls (and ours) to this definition ahead of libssl's. For an SSL that
 * carries a struct up_plain, which only the upstream's does once its
 * handshake is over (up_buffer_writes), the bytes are appended and the
 * call reports them written, as a buffered write does; upstream_flush
 * hands them to OpenSSL in pieces of up to 16 KiB, one record each. Every
 * other call goes straight to libssl's SSL_write. */

/* The packets libmosquitto wrote since the last flush, in plaintext.
 * Owned by the SSL (ex_data, freed with it). */
struct up_plain {
	unsigned char *p;
	size_t len, cap;
	size_t off; /* the first byte OpenSSL has not taken yet */
	int retry;  /* the length OpenSSL asked to be called again with (0: none) */
};

static pthread_once_t plain_once = PTHREAD_ONCE_INIT;
static int (*libssl_write)(SSL *, const void *, int);
static int plain_idx = -1;

static void plain_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
		       void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	struct up_plain *pl = ptr;
	if (pl)
		free(pl->p);
	free(pl);
}

static void plain_init(void)
{
	/* POSIX's way to take a function from dlsym without a cast between
	 * object and function pointers. */
	void *f = dlsym(RTLD_NEXT, "SSL_write");
	memcpy(&libssl_write, &f, sizeof f);
	plain_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, plain_free);
}

int up_plain_init(void)
{
	pthread_once(&plain_once, plain_init);
	return libssl_write && plain_idx >= 0 ? 0 : -1;
}

int SSL_write(SSL *ssl, const void *buf, int num)
{
	pthread_once(&plain_once, plain_init);
	if (!libssl_write)
		abort(); /* not linked against libssl: cannot happen (up_plain_init checks) */
	struct up_plain *pl = plain_idx >= 0 && ssl ? SSL_get_ex_data(ssl, plain_idx) : NULL;
	if (!pl || num <= 0)
		return libssl_write(ssl, buf, num);
	if (pl->cap - pl->len < (size_t)num) {
		size_t cap = pl->cap ? pl->cap : 4096;
		while (cap - pl->len < (size_t)num)
			cap *= 2;
		/* OpenSSL may be waiting to be called again with the old address:
		 * the SSL accepts a moved buffer (up_buffer_writes). */
		unsigned char *p = realloc(pl->p, cap);
		if (!p) {
			/* libmosquitto reads this as a failed write and drops the
			 * connection; its readings go back to the spool. */
			ERR_raise(ERR_LIB_SSL, ERR_R_MALLOC_FAILURE);
			return -1;
		}
		pl->p = p;
		pl->cap = cap;
	}
	memcpy(pl->p + pl->len, buf, (size_t)num);
	pl->len += (size_t)num;
	return num;
}

/* Hands the collected packets to OpenSSL: 0 all taken (as records in the
 * write BIO), 1 OpenSSL waits for the socket to take some first, -1 the
 * connection failed. */
static int plain_flush(struct upstream *up, SSL *ssl)
{
	struct up_plain *pl = up->plain;
	while (pl->off < pl->len) {
		size_t left = pl->len - pl->off;
		int n = pl->retry ? pl->retry : (int)(left < UP_RECORD ? left : UP_RECORD);
		ERR_clear_error();
		int r = libssl_write(ssl, pl->p + pl->off, n);
		if (r <= 0) {
			if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_WRITE)
				return -1;
			pl->retry = n; /* OpenSSL wants the same call again */
			return 1;
		}
		pl->retry = 0;
		pl->off += (size_t)r;
	}
	pl->off = pl->len = 0;
	if (pl->cap > UP_PLAIN_KEEP) {
		/* A burst of large messages (a backlog of dead letters) grew it:
		 * do not keep megabytes for a connection's lifetime. */
		free(pl->p);
		pl->p = NULL;
		pl->cap = 0;
	}
	return 0;
}

int up_flush_writes(struct upstream *up)
{
	SSL *ssl = up->mosq ? mosquitto_ssl_get(up->mosq) : NULL;
	if (!ssl || !up->wbuf)
		return 0;
	int rc = up->plain ? plain_flush(up, ssl) : 0;
	if (rc != 0 || BIO_wpending(up->wbuf) == 0 || BIO_flush(up->wbuf) > 0)
		return rc;
	return BIO_should_retry(up->wbuf) ? 1 : -1;
}

/* Collects the writes of a connection whose handshake is over: packets in
 * a struct up_plain above the SSL, records in a buffering BIO between the
 * SSL and its socket, so that an iteration's records leave in one write(2)
 * (upstream_flush) instead of one each. The SSL is ours to configure (it
 * comes from our SSL_CTX). Best effort: on failure writes simply go
 * straight through, as libmosquitto makes them. */
void up_buffer_writes(struct upstream *up)
{
	SSL *ssl = up->mosq ? mosquitto_ssl_get(up->mosq) : NULL;
	BIO *sock = ssl ? SSL_get_wbio(ssl) : NULL;
	if (!sock)
		return;
	BIO *buf = BIO_new(BIO_f_buffer());
	if (!buf || BIO_set_write_buffer_size(buf, UP_WRITE_BUFFER) != 1 || !BIO_up_ref(sock)) {
		BIO_free(buf);
		return;
	}
	/* The chain holds its own reference to the socket BIO; SSL_set0_wbio
	 * drops the SSL's write reference and takes the chain. */
	BIO_push(buf, sock);
	SSL_set0_wbio(ssl, buf);
	up->wbuf = buf;
	struct up_plain *pl = calloc(1, sizeof *pl);
	if (!pl || SSL_set_ex_data(ssl, plain_idx, pl) != 1) {
		free(pl);
		return;
	}
	SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	up->plain = pl;
}

/* Flushes and takes both out again. Needed before a DISCONNECT:
 * libmosquitto frees the SSL (and our buffers with it) right after writing
 * that packet, so it must go straight to the socket. */
void up_unbuffer_writes(struct upstream *up)
{
	if (!up->wbuf)
		return;
	SSL *ssl = mosquitto_ssl_get(up->mosq);
	BIO *sock = BIO_next(up->wbuf);
	(void)up_flush_writes(up);
	if (ssl && up->plain) {
		(void)SSL_set_ex_data(ssl, plain_idx, NULL);
		plain_free(NULL, up->plain, NULL, 0, 0, NULL);
	}
	up->plain = NULL;
	if (ssl && sock && BIO_up_ref(sock))
		SSL_set0_wbio(ssl, sock); /* frees the buffer, keeps the socket BIO */
	up->wbuf = NULL;
	up->flush_blocked = false;
}
