/* tls_peer: the identity and description of a TLS peer's certificate (see
 * tls_peer.h).
 *
 * Owns the identity a certificate gives (CN, subjectAltName, serial), the
 * printing of certificate names and serial numbers, the watch that keeps a
 * refused certificate with its SSL, and the re-verification and notAfter of
 * an established peer. Calls OpenSSL only: conn_tls and tls_ctx call here,
 * never the other way. */
#include "iotgw/tls_peer.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

/* ---- names and serial numbers ---- */

const char *tls_peer_name(const X509_NAME *n, char *out, size_t cap)
{
	snprintf(out, cap, "?");
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return out;
	/* XN_FLAG_RFC2253 includes ASN1_STRFLGS_ESC_MSB: a name is the
	 * device's text, and ends up in a log line. */
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
		char *p;
		long len = BIO_get_mem_data(b, &p);
		if (len > 0)
			snprintf(out, cap, "%.*s", (int)(len < INT_MAX ? len : INT_MAX), p);
	}
	BIO_free(b);
	return out;
}

int tls_peer_serial(const X509 *cert, char *out, size_t cap)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
	BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	int r = -1;
	if (hex && strlen(hex) < cap) {
		memcpy(out, hex, strlen(hex) + 1);
		r = 0;
	}
	OPENSSL_free(hex);
	BN_free(bn);
	ERR_clear_error();
	return r;
}

void tls_peer_describe(X509 *cert, char *out, size_t cap)
{
	out[0] = '\0';
	if (!cert)
		return;
	char subject[61], issuer[61], serial[256];
	if (tls_peer_serial(cert, serial, sizeof serial) != 0)
		snprintf(serial, sizeof serial, "?");
	snprintf(out, cap, " (subject %s, serial %s, issuer %s)",
		 tls_peer_name(X509_get_subject_name(cert), subject, sizeof subject), serial,
		 tls_peer_name(X509_get_issuer_name(cert), issuer, sizeof issuer));
}

/* ---- identity ---- */

/* Copies an ASN.1 string that must be printable text without NUL. */
static int copy_asn1_text(const unsigned char *p, int len, char *out, size_t cap)
{
	if (len <= 0 || (size_t)len >= cap)
		return -1;
	for (int i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return -1;
	memcpy(out, p, (size_t)len);
	out[len] = '\0';
	return 0;
}

static int identity_from_cn(X509 *cert, char *out, size_t cap, char *why, size_t whylen)
{
	X509_NAME *subject = X509_get_subject_name(cert);
	int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	if (idx < 0) {
		snprintf(why, whylen, "client certificate has no subject CN");
		return -1;
	}
	if (X509_NAME_get_index_by_NID(subject, NID_commonName, idx) >= 0) {
		snprintf(why, whylen, "client certificate has more than one subject CN");
		return -1;
	}
	ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
	unsigned char *utf8 = NULL;
	int len = ASN1_STRING_to_UTF8(&utf8, cn);
	int r = len < 0 ? -1 : copy_asn1_text(utf8, len, out, cap);
	OPENSSL_free(utf8);
	if (r != 0)
		snprintf(why, whylen, "client certificate CN is empty, too long or not text");
	return r;
}

static int identity_from_san(X509 *cert, int type, const char *what, char *out, size_t cap,
			     char *why, size_t whylen)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int r = -1;
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		if (gn->type != type)
			continue;
		const ASN1_IA5STRING *s = gn->d.ia5; /* dNSName, URI and email are IA5 */
		r = copy_asn1_text(ASN1_STRING_get0_data(s), ASN1_STRING_length(s), out, cap);
		break;
	}
	GENERAL_NAMES_free(names);
	if (r != 0)
		snprintf(why, whylen, "client certificate has no usable subjectAltName %s", what);
	return r;
}

int tls_peer_identity(X509 *cert, enum cfg_identity source, char *out, size_t cap, char *why,
		      size_t whylen)
{
	if (!cert) {
		snprintf(why, whylen, "no client certificate");
		return -1;
	}
	switch (source) {
	case CFG_ID_CN:
		return identity_from_cn(cert, out, cap, why, whylen);
	case CFG_ID_SAN_DNS:
		return identity_from_san(cert, GEN_DNS, "DNS", out, cap, why, whylen);
	case CFG_ID_SAN_URI:
		return identity_from_san(cert, GEN_URI, "URI", out, cap, why, whylen);
	case CFG_ID_SAN_EMAIL:
		return identity_from_san(cert, GEN_EMAIL, "email", out, cap, why, whylen);
	case CFG_ID_SERIAL:
		if (tls_peer_serial(cert, out, cap) == 0 && out[0] != '-')
			return 0;
		snprintf(why, whylen, "client certificate serial number is negative or too long");
		return -1;
	}
	snprintf(why, whylen, "unknown identity source");
	return -1;
}

/* ---- the certificate of a refused device ---- */

/* OpenSSL forgets a client certificate whose verification failed: the
 * session never gets it. The verify callback keeps the leaf with the SSL, so
 * the handshake failure can say whose it was. */
static int refused_index = -1;

static void free_refused(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			 void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	X509_free(ptr);
}

static int remember_refused(int ok, X509_STORE_CTX *x)
{
	if (ok || refused_index < 0)
		return ok;
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	X509 *leaf = X509_STORE_CTX_get0_cert(x);
	if (ssl && leaf && !SSL_get_ex_data(ssl, refused_index) && X509_up_ref(leaf) == 1 &&
	    SSL_set_ex_data(ssl, refused_index, leaf) != 1)
		X509_free(leaf);
	return ok; /* only watching: the verdict stays OpenSSL's */
}

void tls_peer_set_verify(SSL_CTX *ctx, int mode)
{
	if (refused_index < 0)
		refused_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_refused);
	SSL_CTX_set_verify(ctx, mode, remember_refused);
}

X509 *tls_peer_refused(const SSL *ssl)
{
	return refused_index < 0 ? NULL : SSL_get_ex_data(ssl, refused_index);
}

/* ---- established connections ---- */

int tls_peer_recheck(SSL_CTX *new_ctx, SSL *ssl, char *why, size_t whylen)
{
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	if (!leaf) {
		snprintf(why, whylen, "no client certificate");
		return -1;
	}
	/* The chain as verified at the handshake (leaf to trust anchor); the
	 * old anchor is only a candidate here: trust comes from new_ctx. */
	STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
	if (!chain)
		chain = SSL_get_peer_cert_chain(ssl);
	X509_STORE_CTX *vc = X509_STORE_CTX_new();
	if (!vc || X509_STORE_CTX_init(vc, SSL_CTX_get_cert_store(new_ctx), leaf, chain) != 1) {
		X509_STORE_CTX_free(vc);
		ERR_clear_error();
		snprintf(why, whylen, "cannot verify: out of memory");
		return -1;
	}
	/* What the handshake checks: a client certificate, the context's flags
	 * (CRL_CHECK | CRL_CHECK_ALL live in the store and are inherited). */
	X509_STORE_CTX_set_default(vc, "ssl_client");
	X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(vc), SSL_CTX_get0_param(new_ctx));
	int rc = 0;
	if (X509_verify_cert(vc) != 1) {
		int err = X509_STORE_CTX_get_error(vc);
		X509 *bad = X509_STORE_CTX_get_current_cert(vc);
		char nm[201] = "?";
		if (bad)
			tls_peer_name(X509_get_subject_name(bad), nm, sizeof nm);
		if ((!chain || sk_X509_num(chain) == 0) &&
		    err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
			/* A resumed session keeps the leaf only (tickets do not
			 * carry the chain): fail closed, and say how to avoid it. */
			snprintf(why, whylen,
				 "cannot re-verify a resumed session: the issuer of %s is not in "
				 "the ca file (add the intermediate CA certificates there)",
				 nm);
		else
			snprintf(why, whylen, "%s (depth %d, %s)",
				 X509_verify_cert_error_string(err),
				 X509_STORE_CTX_get_error_depth(vc), nm);
		rc = -1;
	}
	X509_STORE_CTX_free(vc);
	ERR_clear_error();
	return rc;
}

int tls_peer_not_after(const SSL *ssl, time_t *out)
{
	X509 *x = SSL_get0_peer_certificate(ssl);
	struct tm tm;
	if (!x || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return -1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = t;
	return 0;
}
