#include "iotgw/tls_ctx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct diag {
	const char *file;
	cfg_diag_fn fn;
	void *ctx;
	int errors;
};

__attribute__((format(printf, 4, 5))) static void report(struct diag *d, enum cfg_severity sev,
							  int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (sev == CFG_ERROR)
		d->errors++;
	d->fn(d->ctx, sev, d->file, line, msg);
}

/* The most specific OpenSSL reason for the last failure, then clears the queue. */
static const char *ssl_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	snprintf(buf, cap, "%s", r ? r : "unknown OpenSSL error");
	ERR_clear_error();
	return buf;
}

/* Separates "cannot open" (errno) from "opened but not a certificate". */
static bool readable(struct diag *d, const struct cfg_path *p, const char *what)
{
	if (!p->path)
		return false; /* missing: the parser already reported it */
	if (access(p->path, R_OK) != 0) {
		report(d, CFG_ERROR, p->line, "cannot read %s %s: %s", what, p->path,
		       strerror(errno));
		return false;
	}
	return true;
}

static void warn_if_expired(struct diag *d, SSL_CTX *ctx, const struct cfg_path *cert)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	if (x && X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		report(d, CFG_WARNING, cert->line, "certificate %s has expired", cert->path);
}

static int load_cert_and_key(struct diag *d, SSL_CTX *ctx, const struct cfg_path *cert,
			     const struct cfg_path *key)
{
	char why[160];
	int before = d->errors;
	if (!cert->path || !key->path)
		return -1; /* the parser reported the missing key */
	if (readable(d, cert, "certificate") &&
	    SSL_CTX_use_certificate_chain_file(ctx, cert->path) != 1)
		report(d, CFG_ERROR, cert->line, "cannot load certificate %s: %s", cert->path,
		       ssl_reason(why, sizeof why));
	if (readable(d, key, "private key") &&
	    SSL_CTX_use_PrivateKey_file(ctx, key->path, SSL_FILETYPE_PEM) != 1)
		report(d, CFG_ERROR, key->line, "cannot load private key %s: %s", key->path,
		       ssl_reason(why, sizeof why));
	if (d->errors == before && SSL_CTX_check_private_key(ctx) != 1)
		report(d, CFG_ERROR, key->line, "private key %s does not match certificate %s",
		       key->path, cert->path);
	ERR_clear_error();
	if (d->errors == before)
		warn_if_expired(d, ctx, cert);
	return d->errors == before ? 0 : -1;
}

static int load_ca(struct diag *d, SSL_CTX *ctx, const struct cfg_path *ca, bool client_names)
{
	char why[160];
	if (!ca->path)
		return -1;
	if (!readable(d, ca, "CA file"))
		return -1;
	if (SSL_CTX_load_verify_locations(ctx, ca->path, NULL) != 1) {
		report(d, CFG_ERROR, ca->line, "cannot load CA file %s: %s", ca->path,
		       ssl_reason(why, sizeof why));
		return -1;
	}
	if (client_names) {
		/* Sent in CertificateRequest so clients holding several
		 * certificates pick the one our CA issued. */
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca->path);
		if (!names) {
			report(d, CFG_ERROR, ca->line, "CA file %s holds no certificate", ca->path);
			ERR_clear_error();
			return -1;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	return 0;
}

SSL_CTX *tls_ctx_listener(const struct cfg_listener *l, const char *cfgfile, cfg_diag_fn diag,
			  void *dctx)
{
	struct diag d = {cfgfile, diag, dctx, 0};
	char why[160];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		report(&d, CFG_ERROR, l->line, "listener %s: SSL_CTX_new: %s", l->name,
		       ssl_reason(why, sizeof why));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, l->tls_min_version == 13 ? TLS1_3_VERSION
								   : TLS1_2_VERSION);
	/* Partial and moving writes: our output buffer may be reallocated
	 * between a WANT_WRITE and the retry. Release buffers: an idle TLS
	 * connection then holds no 16 KiB record buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_COMPRESSION);
	if (l->ciphers && SSL_CTX_set_cipher_list(ctx, l->ciphers) != 1)
		report(&d, CFG_ERROR, l->line, "listener %s: no usable cipher in \"%s\"", l->name,
		       l->ciphers);
	if (l->ciphersuites && SSL_CTX_set_ciphersuites(ctx, l->ciphersuites) != 1)
		report(&d, CFG_ERROR, l->line, "listener %s: bad ciphersuites \"%s\"", l->name,
		       l->ciphersuites);
	if (l->groups && SSL_CTX_set1_groups_list(ctx, l->groups) != 1)
		report(&d, CFG_ERROR, l->line, "listener %s: bad groups \"%s\"", l->name,
		       l->groups);
	ERR_clear_error();
	(void)load_cert_and_key(&d, ctx, &l->cert, &l->key);
	if (l->tls == CFG_TLS_MUTUAL) {
		if (load_ca(&d, ctx, &l->ca, true) == 0)
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
					   NULL);
	}
	/* Session resumption with client certificates needs a context id. */
	const unsigned char sid[] = "iotgw";
	SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
	if (d.errors || !l->cert.path || !l->key.path ||
	    (l->tls == CFG_TLS_MUTUAL && !l->ca.path)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int tls_check_upstream(const struct cfg_upstream *u, const char *cfgfile, cfg_diag_fn diag,
		       void *dctx)
{
	struct diag d = {cfgfile, diag, dctx, 0};
	if (!u->tls)
		return 0;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		report(&d, CFG_ERROR, u->host_line, "upstream: SSL_CTX_new failed");
		return d.errors;
	}
	(void)load_cert_and_key(&d, ctx, &u->cert, &u->key);
	(void)load_ca(&d, ctx, &u->ca, false);
	SSL_CTX_free(ctx);
	return d.errors;
}
