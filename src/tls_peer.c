/* tls_peer: the identity and description of a TLS peer's certificate (see
 * tls_peer.h).
 *
 * Owns the identity a certificate gives (CN, subjectAltName, serial), the
 * printing of certificate names and serial numbers, the watch that keeps a
 * refused certificate with its SSL, the re-verification and notAfter of
 * an established peer, and the release of its parsed certificate. Calls
 * OpenSSL only: conn_tls and tls_ctx call here, never the other way. */
#include "iotgw/tls_peer.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

struct tls_peer_kept {
	time_t not_after;
	bool has_not_after;
	size_t len;
	unsigned char der[]; /* the leaf, then its intermediates, each DER */
};

void tls_peer_kept_free(struct tls_peer_kept *k)
{
	free(k);
}

static bool not_after_of(X509 *x, time_t *out)
{
	struct tm tm;
	if (!x || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return false;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*out = t;
	return true;
}

/* The certificates of k: the leaf (returned) and, when chain is not NULL, a
 * new stack of the intermediates. NULL when they cannot be parsed. */
static X509 *kept_certs(const struct tls_peer_kept *k, STACK_OF(X509) **chain)
{
	const unsigned char *p = k->der, *end = k->der + k->len;
	X509 *leaf = d2i_X509(NULL, &p, (long)(end - p));
	if (chain) {
		*chain = sk_X509_new_null();
		while (leaf && *chain && p < end) {
			X509 *x = d2i_X509(NULL, &p, (long)(end - p));
			if (!x || sk_X509_push(*chain, x) <= 0) {
				X509_free(x);
				X509_free(leaf);
				leaf = NULL;
			}
		}
		if (!leaf || !*chain) {
			sk_X509_pop_free(*chain, X509_free);
			*chain = NULL;
			X509_free(leaf);
			leaf = NULL;
		}
	}
	ERR_clear_error();
	return leaf;
}

/* The encoding of a session like old (protocol, cipher, ids, master
 * secret, host name) without the peer's certificate; 0 on failure. */
static int encode_without_peer(const SSL_SESSION *old, unsigned char **der)
{
	unsigned char mk[256]; /* a TLS 1.3 resumption secret is at most 64 bytes */
	unsigned int idlen = 0, ctxlen = 0;
	const unsigned char *id = SSL_SESSION_get_id(old, &idlen);
	const unsigned char *sidctx = SSL_SESSION_get0_id_context(old, &ctxlen);
	size_t mklen = SSL_SESSION_get_master_key(old, NULL, 0);
	const char *host = SSL_SESSION_get0_hostname(old);
	SSL_SESSION *s = mklen <= sizeof mk ? SSL_SESSION_new() : NULL;
	bool ok = s && SSL_SESSION_get_master_key(old, mk, sizeof mk) == mklen &&
		  SSL_SESSION_set_protocol_version(s, SSL_SESSION_get_protocol_version(old)) &&
		  SSL_SESSION_set_cipher(s, SSL_SESSION_get0_cipher(old)) &&
		  SSL_SESSION_set1_master_key(s, mk, mklen) && SSL_SESSION_set1_id(s, id, idlen) &&
		  SSL_SESSION_set1_id_context(s, sidctx, ctxlen) &&
		  (!host || SSL_SESSION_set1_hostname(s, host));
	OPENSSL_cleanse(mk, sizeof mk);
	int len = 0;
	if (ok) {
		(void)SSL_SESSION_set_time(s, SSL_SESSION_get_time(old));
		(void)SSL_SESSION_set_timeout(s, SSL_SESSION_get_timeout(old));
		len = i2d_SSL_SESSION(s, der);
	}
	SSL_SESSION_free(s);
	return len > 0 ? len : 0;
}

/* Empties a stack the SSL owns (get0), freeing its certificates; the SSL
 * frees the empty stack itself. */
static void empty_certs(STACK_OF(X509) *sk)
{
	while (sk && sk_X509_num(sk) > 0)
		X509_free(sk_X509_pop(sk));
}

struct tls_peer_kept *tls_peer_release(SSL *ssl)
{
	SSL_SESSION *sess = SSL_get_session(ssl);
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	if (!sess || !leaf || !SSL_is_init_finished(ssl) ||
	    SSL_SESSION_get_max_fragment_length(sess) != TLSEXT_max_fragment_length_DISABLED)
		return NULL;
	/* The intermediates: those of the handshake's verification, between the
	 * leaf and the trust anchor (which the CA file holds). A resumed
	 * session was not verified and keeps no chain. */
	STACK_OF(X509) *vc = SSL_get0_verified_chain(ssl);
	int nvc = vc ? sk_X509_num(vc) : 0;
	int len = i2d_X509(leaf, NULL);
	for (int i = 1; len > 0 && i < nvc - 1; i++) {
		int n = i2d_X509(sk_X509_value(vc, i), NULL);
		len = n > 0 && len <= INT_MAX - n ? len + n : -1;
	}
	unsigned char *bare = NULL;
	int barelen = len > 0 ? encode_without_peer(sess, &bare) : 0;
	struct tls_peer_kept *k = barelen ? malloc(sizeof *k + (size_t)len) : NULL;
	if (!k) {
		OPENSSL_clear_free(bare, (size_t)barelen);
		ERR_clear_error();
		return NULL;
	}
	unsigned char *p = k->der;
	(void)i2d_X509(leaf, &p);
	for (int i = 1; i < nvc - 1; i++)
		(void)i2d_X509(sk_X509_value(vc, i), &p);
	k->len = (size_t)(p - k->der);
	k->has_not_after = not_after_of(leaf, &k->not_after);
	/* The session is decoded from the bare encoding in place: the SSL keeps
	 * the same object (SSL_set_session on an established connection would
	 * reset its record layer), whose certificate d2i frees. OpenSSL 3.0's
	 * d2i leaves the cipher to be looked up later: set it again. The
	 * verified chain holds the leaf too; the chain the device sent holds
	 * its intermediates. */
	const SSL_CIPHER *cipher = SSL_SESSION_get0_cipher(sess);
	const unsigned char *q = bare;
	(void)d2i_SSL_SESSION(&sess, &q, barelen);
	OPENSSL_clear_free(bare, (size_t)barelen);
	/* Also after a failed decoding (out of memory), which may have got
	 * past the cipher: the object stays the SSL's either way, and the
	 * accessors read the kept copy. */
	(void)SSL_SESSION_set_cipher(sess, cipher);
	ERR_clear_error();
	empty_certs(vc);
	empty_certs(SSL_get_peer_cert_chain(ssl));
	return k;
}

int tls_peer_kept_identity(const struct tls_peer_kept *k, enum cfg_identity source, char *out,
			   size_t cap, char *why, size_t whylen)
{
	X509 *leaf = kept_certs(k, NULL);
	int r = tls_peer_identity(leaf, source, out, cap, why, whylen);
	X509_free(leaf);
	return r;
}

int tls_peer_recheck(SSL_CTX *new_ctx, SSL *ssl, const struct tls_peer_kept *kept, char *why,
		     size_t whylen)
{
	STACK_OF(X509) *owned = NULL;
	X509 *leaf = kept ? kept_certs(kept, &owned) : SSL_get0_peer_certificate(ssl);
	if (!leaf) {
		snprintf(why, whylen, kept ? "cannot parse the kept certificate"
					   : "no client certificate");
		return -1;
	}
	/* The chain as verified at the handshake (leaf to trust anchor, or
	 * without the anchor when kept); the old anchor is only a candidate
	 * here: trust comes from new_ctx. */
	STACK_OF(X509) *chain = owned;
	if (!kept) {
		chain = SSL_get0_verified_chain(ssl);
		if (!chain || sk_X509_num(chain) == 0)
			chain = SSL_get_peer_cert_chain(ssl);
	}
	X509_STORE_CTX *vc = X509_STORE_CTX_new();
	int rc = 0;
	if (!vc || X509_STORE_CTX_init(vc, SSL_CTX_get_cert_store(new_ctx), leaf, chain) != 1) {
		snprintf(why, whylen, "cannot verify: out of memory");
		rc = -1;
		goto out;
	}
	/* What the handshake checks: a client certificate, the context's flags
	 * (CRL_CHECK | CRL_CHECK_ALL live in the store and are inherited). */
	X509_STORE_CTX_set_default(vc, "ssl_client");
	X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(vc), SSL_CTX_get0_param(new_ctx));
	if (X509_verify_cert(vc) != 1) {
		int err = X509_STORE_CTX_get_error(vc);
		X509 *bad = X509_STORE_CTX_get_current_cert(vc);
		char nm[201] = "?";
		if (bad)
			tls_peer_name(X509_get_subject_name(bad), nm, sizeof nm);
		if ((!chain || sk_X509_num(chain) == 0) &&
		    err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
			/* A resumed session keeps the leaf only (stored sessions
			 * do not carry the chain): fail closed, and say how to
			 * avoid it. */
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
out:
	X509_STORE_CTX_free(vc);
	if (kept) {
		X509_free(leaf);
		sk_X509_pop_free(owned, X509_free);
	}
	ERR_clear_error();
	return rc;
}

int tls_peer_not_after(const SSL *ssl, const struct tls_peer_kept *kept, time_t *out)
{
	if (kept) {
		if (!kept->has_not_after)
			return -1;
		*out = kept->not_after;
		return 0;
	}
	return not_after_of(SSL_get0_peer_certificate(ssl), out) ? 0 : -1;
}
