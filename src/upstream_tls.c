/* upstream_tls: what the upstream does under libmosquitto, in its TLS.
 * libmosquitto reduces a refused certificate to "certificate verify
 * failed" and a TLS alert to a log line: here the chain verification is
 * recorded and a failed connection is explained with what an operator
 * should check. And a buffering BIO under the SSL lets the records of one
 * loop iteration leave in one write(2). The connection itself, and the
 * state machine, are in upstream.c; upstream_int.h is what they share. */
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "upstream_int.h"

#define UP_WRITE_BUFFER (64 * 1024) /* upstream records collected per flush */

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

/* ---- buffering writes ---- */

/* Puts a buffering BIO between libmosquitto's SSL and its socket, so that
 * the records of one loop iteration leave in one write(2) (upstream_flush)
 * instead of one each. Without it every PUBLISH costs a syscall and a TCP
 * segment; libmosquitto has no option for this, and the SSL is ours to
 * configure (it comes from our SSL_CTX). Best effort: on failure writes
 * simply go straight to the socket. */
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
}

/* Flushes and takes the buffer out again. Needed before a DISCONNECT:
 * libmosquitto frees the SSL (and our buffer with it) right after writing
 * that packet, so it must go straight to the socket. */
void up_unbuffer_writes(struct upstream *up)
{
	if (!up->wbuf)
		return;
	SSL *ssl = mosquitto_ssl_get(up->mosq);
	BIO *sock = BIO_next(up->wbuf);
	(void)BIO_flush(up->wbuf);
	if (ssl && sock && BIO_up_ref(sock))
		SSL_set0_wbio(ssl, sock); /* frees the buffer, keeps the socket BIO */
	up->wbuf = NULL;
	up->flush_blocked = false;
}
