/* tls_ctx: OpenSSL contexts from the configuration (see tls_ctx.h).
 *
 * Owns building and checking the contexts: cipher profiles, certificate,
 * key and CA files, CRLs, the upstream context, the expiry of the gateway's
 * own certificates and CRLs. What a peer's certificate says (names,
 * identity, a refused device, re-verification) is tls_peer.c's, which this
 * file calls for names and the verify callback. Session resumption (the
 * session store that outlives a context, the session id context) is
 * tls_ctx_resume.c's, called once per listener context over tls_ctx_int.h. */
#include "iotgw/tls_ctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "iotgw/tls_peer.h"
#include "tls_ctx_int.h"

/* ---- cipher profiles (iotgw.conf(5) "tls_profile") ---- */

/* The same TLS 1.3 suites in every profile: all are AEAD with ECDHE. */
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
/* Forward secrecy and AES-GCM / ChaCha20-Poly1305 only. */
#define MODERN_12                                                                                 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                            \
	"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"                                \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* What mbedTLS and BearSSL builds for small devices commonly offer: still
 * ECDHE, but AES-CCM(8) and AES-CBC with HMAC (encrypt-then-MAC is not
 * everywhere, so CBC stays behind the AEAD suites in server order). */
#define COMPAT_12                                                                                 \
	"ECDHE-ECDSA-AES128-CCM:ECDHE-ECDSA-AES256-CCM:ECDHE-ECDSA-AES128-CCM8:"                  \
	"ECDHE-ECDSA-AES256-CCM8:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"              \
	"ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA:"               \
	"ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA"
/* RSA key exchange for axTLS (ESP8266 Arduino core before BearSSL): no
 * forward secrecy, so last in server order and logged as event=tls_legacy. */
#define LEGACY_12                                                                                 \
	"AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA"

static const char *profile_ciphers(enum cfg_tls_profile p)
{
	switch (p) {
	case CFG_TLS_MODERN:
		return MODERN_12;
	case CFG_TLS_LEGACY:
		return MODERN_12 ":" COMPAT_12 ":" LEGACY_12;
	case CFG_TLS_COMPATIBLE:
		break;
	}
	return MODERN_12 ":" COMPAT_12;
}

/* ---- diagnostics (through the config sink, cfg_report) ---- */

/* The most specific OpenSSL reason for the last failure, then clears the queue. */
static const char *ssl_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	snprintf(buf, cap, "%s", r ? r : "unknown OpenSSL error");
	ERR_clear_error();
	return buf;
}

static const char *time_str(const ASN1_TIME *t, char *out, size_t cap)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, cap, "?");
	return out;
}

/* ---- files ---- */

/* Separates "cannot open" (errno) from "opened but not a certificate". */
static bool readable(struct cfg_diag_sink *d, const struct cfg_path *p, const char *what)
{
	if (!p->path)
		return false; /* missing: the parser already reported it */
	if (access(p->path, R_OK) != 0) {
		cfg_report(d, CFG_ERROR, p->line, "cannot read %s %s: %s", what, p->path,
			   strerror(errno));
		return false;
	}
	return true;
}

/* A private key anyone on the machine can read is as good as published:
 * refused, not warned about. Group-readable is fine (root:iotgw 0640). */
static void check_key_mode(struct cfg_diag_sink *d, const struct cfg_path *key)
{
	struct stat st;
	if (!key->path || stat(key->path, &st) != 0)
		return; /* readable() reported it */
	if (st.st_mode & S_IROTH)
		cfg_report(d, CFG_ERROR, key->line,
			   "key file %s is readable by other users (mode %04o); chmod 600 or 640",
			   key->path, (unsigned)(st.st_mode & 07777));
}


/* A daemon cannot answer "Enter PEM pass phrase": OpenSSL's default
 * callback would read the terminal (and block `iotgw -t` run by hand).
 * Refuse, and remember that the key wanted one. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(bool *)userdata = true;
	return 0;
}

/* The certificate must be usable for its side of TLS: a listener's for
 * TLS servers (extendedKeyUsage serverAuth, when the extension is there),
 * the upstream one for TLS clients. Devices refuse a server certificate
 * without serverAuth, and the error they see says nothing useful. */
static void check_purpose(struct cfg_diag_sink *d, SSL_CTX *ctx, const struct cfg_path *cert,
			  int purpose)
{
	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	if (!leaf || X509_check_purpose(leaf, purpose, 0) == 1)
		return;
	bool server = purpose == X509_PURPOSE_SSL_SERVER;
	cfg_report(d, CFG_ERROR, cert->line,
		   "certificate %s is not for TLS %s (its extendedKeyUsage lacks %s): %s would "
		   "refuse it; issue one with `iotgw-pki %s`",
		   cert->path, server ? "servers" : "clients", server ? "serverAuth" : "clientAuth",
		   server ? "devices" : "the broker",
		   server ? "server NAME --ca CA" : "client NAME --ca CA");
	ERR_clear_error();
}

static int load_cert_and_key(struct cfg_diag_sink *d, SSL_CTX *ctx, const struct cfg_path *cert,
			     const struct cfg_path *key, int purpose)
{
	char why[160];
	int before = d->errors;
	if (!cert->path || !key->path)
		return -1; /* the parser reported the missing key */
	if (readable(d, cert, "certificate") &&
	    SSL_CTX_use_certificate_chain_file(ctx, cert->path) != 1)
		cfg_report(d, CFG_ERROR, cert->line, "cannot load certificate %s: %s", cert->path,
			   ssl_reason(why, sizeof why));
	else if (d->errors == before)
		check_purpose(d, ctx, cert, purpose);
	bool asked = false;
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
	int loaded = readable(d, key, "private key")
			     ? SSL_CTX_use_PrivateKey_file(ctx, key->path, SSL_FILETYPE_PEM)
			     : 1;
	SSL_CTX_set_default_passwd_cb(ctx, NULL);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	if (loaded != 1 && asked) {
		cfg_report(d, CFG_ERROR, key->line,
			   "private key %s is encrypted: a service cannot type its pass phrase; "
			   "store it unencrypted, readable by the service's group only "
			   "(openssl pkey -in %s -out NEW.key; chmod 0640)",
			   key->path, key->path);
		ERR_clear_error();
	} else if (loaded != 1) {
		/* OpenSSL checks the pair while loading the key */
		if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
			cfg_report(d, CFG_ERROR, key->line,
				   "private key %s does not match certificate %s", key->path,
				   cert->path);
		else
			cfg_report(d, CFG_ERROR, key->line, "cannot load private key %s: %s",
				   key->path, ssl_reason(why, sizeof why));
		ERR_clear_error();
	}
	if (d->errors == before && SSL_CTX_check_private_key(ctx) != 1)
		cfg_report(d, CFG_ERROR, key->line, "private key %s does not match certificate %s",
			   key->path, cert->path);
	ERR_clear_error();
	check_key_mode(d, key);
	return d->errors == before ? 0 : -1;
}

static int load_ca(struct cfg_diag_sink *d, SSL_CTX *ctx, const struct cfg_path *ca,
		   bool client_names)
{
	char why[160];
	if (!ca->path)
		return -1;
	if (!readable(d, ca, "CA file"))
		return -1;
	if (SSL_CTX_load_verify_locations(ctx, ca->path, NULL) != 1) {
		cfg_report(d, CFG_ERROR, ca->line, "cannot load CA file %s: %s", ca->path,
			   ssl_reason(why, sizeof why));
		return -1;
	}
	/* A device (leaf) certificate in `ca` verifies nobody: every handshake
	 * would then fail with "unable to get local issuer certificate". */
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
		if (!x || X509_check_ca(x) != 0)
			continue;
		char subject[120];
		X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
		cfg_report(d, CFG_ERROR, ca->line,
			   "CA file %s holds %s, which is not a CA certificate (no "
			   "basicConstraints CA:TRUE): name the CA that issued the certificates "
			   "instead",
			   ca->path, subject);
		ERR_clear_error();
		return -1;
	}
	if (client_names) {
		/* Sent in CertificateRequest so clients holding several
		 * certificates pick the one our CA issued. */
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca->path);
		if (!names) {
			cfg_report(d, CFG_ERROR, ca->line, "CA file %s holds no certificate",
				   ca->path);
			ERR_clear_error();
			return -1;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	return 0;
}

/* ---- CRLs ---- */

/* The CA certificate in store whose subject is name, or NULL. */
static X509 *store_cert_by_subject(X509_STORE *store, const X509_NAME *name)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
		if (x && X509_NAME_cmp(X509_get_subject_name(x), name) == 0)
			return x;
	}
	return NULL;
}

static bool store_has_crl_for(X509_STORE *store, const X509_NAME *issuer)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509_CRL *c = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
		if (c && X509_NAME_cmp(X509_CRL_get_issuer(c), issuer) == 0)
			return true;
	}
	return false;
}

/* Adds every CRL of crl->path to the store of ctx (which already holds the
 * CA certificates) and turns on CRL checking for the whole chain. A CRL that
 * a CA in the store did not sign, or a CA without a CRL, is an error: with
 * X509_V_FLAG_CRL_CHECK_ALL either would refuse every device it concerns,
 * which is better found by `iotgw -t` than by the fleet. */
static int load_crls(struct cfg_diag_sink *d, SSL_CTX *ctx, const struct cfg_path *crl,
		     const struct cfg_path *ca)
{
	char why[160], nm[201];
	int before = d->errors;
	if (!readable(d, crl, "CRL file"))
		return -1;
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	BIO *b = BIO_new_file(crl->path, "r");
	if (!b) {
		cfg_report(d, CFG_ERROR, crl->line, "cannot read CRL file %s: %s", crl->path,
			   ssl_reason(why, sizeof why));
		return -1;
	}
	int n = 0;
	for (;;) {
		ERR_clear_error();
		X509_CRL *c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
		if (!c) {
			unsigned long e = ERR_peek_last_error();
			bool at_end = ERR_GET_LIB(e) == ERR_LIB_PEM &&
				      ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
			if (at_end) {
				ERR_clear_error();
				if (n == 0)
					cfg_report(d, CFG_ERROR, crl->line,
						   "CRL file %s holds no CRL", crl->path);
			} else {
				cfg_report(d, CFG_ERROR, crl->line, "cannot load CRL file %s: %s",
					   crl->path, ssl_reason(why, sizeof why));
			}
			break;
		}
		n++;
		const X509_NAME *issuer = X509_CRL_get_issuer(c);
		X509 *cacert = store_cert_by_subject(store, issuer);
		EVP_PKEY *pk = cacert ? X509_get0_pubkey(cacert) : NULL;
		if (pk && X509_CRL_verify(c, pk) != 1) {
			cfg_report(d, CFG_ERROR, crl->line,
				   "CRL of %s in %s: signature does not verify with that CA's key "
				   "from %s",
				   tls_peer_name(issuer, nm, sizeof nm), crl->path, ca->path);
		}
		if (X509_STORE_add_crl(store, c) != 1)
			ERR_clear_error(); /* the same CRL twice: harmless */
		X509_CRL_free(c);
	}
	BIO_free(b);
	ERR_clear_error();
	if (d->errors != before)
		return -1;
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
		if (x && !store_has_crl_for(store, X509_get_subject_name(x)))
			cfg_report(d, CFG_ERROR, crl->line,
				   "CRL file %s has no CRL of CA %s (from %s): every certificate "
				   "that CA issued would be refused",
				   crl->path, tls_peer_name(X509_get_subject_name(x), nm, sizeof nm),
				   ca->path);
	}
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	return d->errors == before ? 0 : -1;
}

/* ---- contexts ---- */

bool tls_ctx_is_legacy(SSL_CTX *ctx, char *suites, size_t cap)
{
	if (cap)
		suites[0] = '\0';
	if (!ctx || SSL_CTX_get_min_proto_version(ctx) == TLS1_3_VERSION)
		return false;
	STACK_OF(SSL_CIPHER) *cs = SSL_CTX_get_ciphers(ctx);
	size_t n = 0;
	bool any = false;
	for (int i = 0; i < sk_SSL_CIPHER_num(cs); i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(cs, i);
		if (SSL_CIPHER_get_kx_nid(c) != NID_kx_rsa)
			continue;
		any = true;
		if (n < cap) {
			int w = snprintf(suites + n, cap - n, "%s%s", n ? ":" : "",
					 SSL_CIPHER_get_name(c));
			n = w < 0 ? cap : n + (size_t)w;
		}
	}
	return any;
}

/* RSA key exchange needs an RSA certificate: with ECDSA only, the legacy
 * suites can never be negotiated and an axTLS device still fails. */
static void check_legacy_cert(struct cfg_diag_sink *d, SSL_CTX *ctx, const struct cfg_listener *l)
{
	char suites[64];
	if (!tls_ctx_is_legacy(ctx, suites, sizeof suites))
		return;
	EVP_PKEY *pk = SSL_CTX_get0_privatekey(ctx);
	if (pk && EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)
		cfg_report(d, CFG_WARNING, l->ciphers ? l->ciphers_line : l->tls_profile_line,
			   "listener %s: TLS 1.2 RSA key exchange suites are enabled but %s is not "
			   "an RSA certificate, so they cannot be negotiated",
			   l->name, l->cert.path);
}

/* ---- expiry of the gateway's own certificates and CRLs ---- */

/* Reports t (a notAfter or nextUpdate) through fn if it falls before
 * now + horizon_s. */
static void expiry_of(const ASN1_TIME *t, time_t now, unsigned horizon_s,
		      enum tls_expiry_kind kind, const char *what, tls_expiry_fn fn, void *arg)
{
	if (!t)
		return;
	time_t limit = now + (time_t)horizon_s;
	if (X509_cmp_time(t, &limit) > 0)
		return;
	bool expired = X509_cmp_time(t, &now) <= 0;
	int days = 0, secs = 0;
	ASN1_TIME *n = ASN1_TIME_set(NULL, now);
	if (!n || ASN1_TIME_diff(&days, &secs, n, t) != 1)
		days = 0;
	ASN1_TIME_free(n);
	char when[40], text[400];
	time_str(t, when, sizeof when);
	if (expired)
		snprintf(text, sizeof text, "%s expired on %s", what, when);
	else
		snprintf(text, sizeof text, "%s expires on %s (in %d day%s)", what, when, days,
			 days == 1 ? "" : "s");
	fn(arg, kind, expired, text);
}

void tls_ctx_expiring(SSL_CTX *ctx, time_t now, unsigned horizon_s, tls_expiry_fn fn, void *arg)
{
	char nm[201], what[300];
	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	if (leaf) {
		snprintf(what, sizeof what, "certificate %s",
			 tls_peer_name(X509_get_subject_name(leaf), nm, sizeof nm));
		expiry_of(X509_get0_notAfter(leaf), now, horizon_s, TLS_EXPIRY_CERT, what, fn, arg);
	}
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509_CRL *c = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
		if (!c)
			continue;
		snprintf(what, sizeof what,
			 "CRL of %s (certificates it covers are refused once it has expired)",
			 tls_peer_name(X509_CRL_get_issuer(c), nm, sizeof nm));
		expiry_of(X509_CRL_get0_nextUpdate(c), now, horizon_s, TLS_EXPIRY_CRL, what, fn,
			  arg);
	}
	ERR_clear_error();
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

static void earliest(time_t *acc, time_t t)
{
	if (t && (!*acc || t < *acc))
		*acc = t;
}

void tls_ctx_expiry(SSL_CTX *ctx, time_t *cert, time_t *ca, time_t *crl)
{
	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	*cert = leaf ? asn1_to_time(X509_get0_notAfter(leaf)) : 0;
	*ca = *crl = 0;
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509_OBJECT *o = sk_X509_OBJECT_value(objs, i);
		X509_CRL *c = X509_OBJECT_get0_X509_CRL(o);
		X509 *x = X509_OBJECT_get0_X509(o);
		if (c)
			earliest(crl, asn1_to_time(X509_CRL_get0_nextUpdate(c)));
		if (x)
			earliest(ca, asn1_to_time(X509_get0_notAfter(x)));
	}
	ERR_clear_error();
}

SSL_CTX *tls_ctx_listener(const struct cfg_listener *l, const char *cfgfile, cfg_diag_fn diag,
			  void *dctx)
{
	struct cfg_diag_sink d = {cfgfile, diag, dctx, 0};
	char why[160];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		cfg_report(&d, CFG_ERROR, l->line, "listener %s: SSL_CTX_new: %s", l->name,
			   ssl_reason(why, sizeof why));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, l->tls_min_version == 13 ? TLS1_3_VERSION
								   : TLS1_2_VERSION);
	/* Partial and moving writes: our output buffer may be reallocated
	 * between a WANT_WRITE and the retry. Release buffers: an idle TLS
	 * connection then holds no 16 KiB record buffers. A client's
	 * max_fragment_length extension (RFC 6066) is honoured by OpenSSL. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	/* Read ahead: one read(2) takes every record the device has sent
	 * (a window of PUBLISHes is a window of records), instead of two
	 * syscalls per record, header then body. */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* Server order (AES-GCM first), except for a device whose first choice
	 * is ChaCha20-Poly1305: it gets ChaCha20 (every profile and TLS13_SUITES
	 * have it). BearSSL (ESP8266 Arduino core) asks for it first: without
	 * AES hardware it is much faster than AES-GCM in software. ESP-IDF's
	 * mbedTLS leaves ChaCha20 out by default and still gets AES-GCM, which
	 * the ESP32 computes in hardware. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_PRIORITIZE_CHACHA | SSL_OP_NO_COMPRESSION);
	const char *ciphers = l->ciphers ? l->ciphers : profile_ciphers(l->tls_profile);
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
		cfg_report(&d, CFG_ERROR, l->ciphers ? l->ciphers_line : l->tls_profile_line,
			   "listener %s: no usable cipher in \"%s\"", l->name, ciphers);
	const char *suites = l->ciphersuites ? l->ciphersuites : TLS13_SUITES;
	if (SSL_CTX_set_ciphersuites(ctx, suites) != 1)
		cfg_report(&d, CFG_ERROR, l->ciphersuites_line,
			   "listener %s: bad ciphersuites \"%s\"", l->name, suites);
	if (l->groups && SSL_CTX_set1_groups_list(ctx, l->groups) != 1)
		cfg_report(&d, CFG_ERROR, l->groups_line, "listener %s: bad groups \"%s\"", l->name,
			   l->groups);
	ERR_clear_error();
	if (load_cert_and_key(&d, ctx, &l->cert, &l->key, X509_PURPOSE_SSL_SERVER) == 0)
		check_legacy_cert(&d, ctx, l);
	if (l->tls == CFG_TLS_MUTUAL) {
		if (load_ca(&d, ctx, &l->ca, true) == 0) {
			if (l->crl.path)
				(void)load_crls(&d, ctx, &l->crl, &l->ca);
			tls_peer_set_verify(ctx,
					    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
		}
	}
	tls_ctx_resumption(&d, ctx, l);
	ERR_clear_error();
	if (d.errors || !l->cert.path || !l->key.path ||
	    (l->tls == CFG_TLS_MUTUAL && !l->ca.path)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static SSL_CTX *build_upstream(struct cfg_diag_sink *d, const struct cfg_upstream *u)
{
	char why[160];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		cfg_report(d, CFG_ERROR, u->host_line, "upstream: SSL_CTX_new: %s",
			   ssl_reason(why, sizeof why));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* The broker's PUBACKs come one record each; libmosquitto reads them
	 * a few bytes at a time. Read ahead turns two syscalls per record into
	 * one per socket buffer. */
	SSL_CTX_set_read_ahead(ctx, 1);
	(void)load_cert_and_key(d, ctx, &u->cert, &u->key, X509_PURPOSE_SSL_CLIENT);
	if (load_ca(d, ctx, &u->ca, false) == 0 && u->crl.path)
		(void)load_crls(d, ctx, &u->crl, &u->ca);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* libmosquitto does not check the broker's name on a context it is
	 * handed: the verification parameters do it. */
	X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
	unsigned char addr[16];
	int ok = 1;
	if (u->host && (inet_pton(AF_INET, u->host, addr) == 1 ||
			inet_pton(AF_INET6, u->host, addr) == 1)) {
		ok = X509_VERIFY_PARAM_set1_ip_asc(vp, u->host);
	} else if (u->host) {
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = X509_VERIFY_PARAM_set1_host(vp, u->host, 0);
	}
	if (ok != 1)
		cfg_report(d, CFG_ERROR, u->host_line,
			   "upstream: cannot verify the broker as %s: %s", u->host,
			   ssl_reason(why, sizeof why));
	ERR_clear_error();
	if (d->errors) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *tls_ctx_upstream(const struct cfg_upstream *u, const char *cfgfile, cfg_diag_fn diag,
			  void *dctx)
{
	struct cfg_diag_sink d = {cfgfile, diag, dctx, 0};
	return u->tls ? build_upstream(&d, u) : NULL;
}
