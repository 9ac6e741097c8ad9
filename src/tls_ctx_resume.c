/* tls_ctx_resume: session resumption for the listener contexts of tls_ctx
 * (see tls_ctx.h, "Session resumption").
 *
 * Owns the ticket keys, one ring per listener name that outlives every
 * context built for it (so devices resume after a reload) and is rotated
 * lazily, OpenSSL's ticket key callback, the server session cache settings
 * and the session id context digest. tls_ctx.c calls tls_ctx_resumption once
 * per listener context (tls_ctx_int.h); tls_ctx_cleanup wipes the keys. */
#include "iotgw/tls_ctx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "tls_ctx_int.h"

/* ---- session tickets ---- */

struct ticket_key {
	unsigned char name[16];
	unsigned char aes[32];  /* AES-256-CBC */
	unsigned char hmac[32]; /* HMAC-SHA256 */
	uint64_t born;          /* monotonic seconds */
};

/* The keys of one listener name, kept across reloads. */
struct ticket_ring {
	struct ticket_ring *next;
	char *listener;
	uint64_t lifetime_s;
	struct ticket_key cur, prev;
	bool have_cur, have_prev;
};

static struct ticket_ring *rings;
static int ring_index = -1;

static uint64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

static struct ticket_ring *ring_for(const char *listener, unsigned lifetime_s)
{
	if (ring_index < 0) {
		ring_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
		if (ring_index < 0)
			return NULL;
	}
	struct ticket_ring *r = rings;
	while (r && strcmp(r->listener, listener) != 0)
		r = r->next;
	if (!r) {
		r = OPENSSL_secure_zalloc(sizeof *r);
		if (!r)
			return NULL;
		r->listener = strdup(listener);
		if (!r->listener) {
			OPENSSL_secure_free(r);
			return NULL;
		}
		r->next = rings;
		rings = r;
	}
	r->lifetime_s = lifetime_s ? lifetime_s : 1;
	return r;
}

/* A key encrypts tickets for lifetime_s from its birth; a ticket lives at
 * most lifetime_s (the session timeout), so the key must decrypt for
 * 2 x lifetime_s and is then wiped. Lazy: runs on each ticket operation. */
static int ring_rotate(struct ticket_ring *r, uint64_t now)
{
	uint64_t life = r->lifetime_s;
	if (r->have_prev && now - r->prev.born >= 2 * life) {
		OPENSSL_cleanse(&r->prev, sizeof r->prev);
		r->have_prev = false;
	}
	if (r->have_cur && now - r->cur.born < life)
		return 0;
	struct ticket_key k;
	if (RAND_bytes(k.name, sizeof k.name) != 1 || RAND_priv_bytes(k.aes, sizeof k.aes) != 1 ||
	    RAND_priv_bytes(k.hmac, sizeof k.hmac) != 1) {
		OPENSSL_cleanse(&k, sizeof k);
		return -1;
	}
	k.born = now;
	if (r->have_cur && now - r->cur.born < 2 * life) {
		r->prev = r->cur;
		r->have_prev = true;
	} else {
		OPENSSL_cleanse(&r->prev, sizeof r->prev);
		r->have_prev = false;
	}
	r->cur = k;
	r->have_cur = true;
	OPENSSL_cleanse(&k, sizeof k);
	return 0;
}

/* OpenSSL's ticket key callback: enc 1 picks the current key and a fresh
 * IV; enc 0 finds the key by name. Returns 1 (use), 2 (use, then issue a
 * new ticket under the current key), 0 (unknown key: full handshake), -1
 * (failure). */
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
		     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	int fail = enc ? -1 : 0;
	struct ticket_ring *r = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index);
	if (!r || ring_rotate(r, mono_s()) != 0)
		return fail;
	const struct ticket_key *k = &r->cur;
	int rc = 1;
	if (enc) {
		if (RAND_bytes(iv, 16) != 1)
			return fail;
		memcpy(key_name, k->name, sizeof k->name);
	} else if (memcmp(key_name, r->cur.name, sizeof r->cur.name) != 0) {
		if (!r->have_prev || memcmp(key_name, r->prev.name, sizeof r->prev.name) != 0)
			return 0;
		k = &r->prev;
		rc = 2;
	}
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)(uintptr_t)k->hmac,
						  sizeof k->hmac),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t)"SHA256",
						 0),
		OSSL_PARAM_construct_end(),
	};
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return fail;
	int ok = enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv)
		     : EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv);
	return ok == 1 ? rc : fail;
}

void tls_ctx_cleanup(void)
{
	while (rings) {
		struct ticket_ring *r = rings;
		rings = r->next;
		free(r->listener);
		OPENSSL_secure_clear_free(r, sizeof *r);
	}
}

/* ---- session id context ---- */

static int digest_bytes(EVP_MD_CTX *m, const void *p, size_t n)
{
	uint64_t len = n; /* length-prefixed: "ab"+"c" differs from "a"+"bc" */
	return EVP_DigestUpdate(m, &len, sizeof len) == 1 && EVP_DigestUpdate(m, p, n) == 1 ? 0
											      : -1;
}

static int digest_str(EVP_MD_CTX *m, const char *s)
{
	return digest_bytes(m, s ? s : "", s ? strlen(s) : 0);
}

static int digest_file(EVP_MD_CTX *m, const char *path)
{
	if (!path)
		return digest_str(m, NULL);
	FILE *f = fopen(path, "rb");
	if (!f)
		return digest_str(m, path); /* unreadable: reported by the loader already */
	unsigned char buf[4096];
	size_t n;
	int rc = 0;
	while (rc == 0 && (n = fread(buf, 1, sizeof buf, f)) > 0)
		rc = EVP_DigestUpdate(m, buf, n) == 1 ? 0 : -1;
	if (ferror(f))
		rc = -1;
	fclose(f);
	return rc;
}

/* See tls_ctx.h: sessions resume only under the same listener, trust
 * anchors, CRLs and cipher policy. */
static int set_sid_ctx(SSL_CTX *ctx, const struct cfg_listener *l)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char nums[64];
	snprintf(nums, sizeof nums, "%d/%d/%d", (int)l->tls, (int)l->tls_profile,
		 l->tls_min_version);
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
		 digest_str(m, "iotgw session context 1") == 0 && digest_str(m, l->name) == 0 &&
		 digest_str(m, nums) == 0 && digest_str(m, l->ciphers) == 0 &&
		 digest_str(m, l->ciphersuites) == 0 &&
		 digest_file(m, l->tls == CFG_TLS_MUTUAL ? l->ca.path : NULL) == 0 &&
		 digest_file(m, l->tls == CFG_TLS_MUTUAL ? l->crl.path : NULL) == 0 &&
		 EVP_DigestFinal_ex(m, md, &mdlen) == 1;
	EVP_MD_CTX_free(m);
	if (!ok)
		return -1;
	if (mdlen > SSL_MAX_SID_CTX_LENGTH)
		mdlen = SSL_MAX_SID_CTX_LENGTH;
	return SSL_CTX_set_session_id_context(ctx, md, mdlen) == 1 ? 0 : -1;
}

static int setup_tickets(struct cfg_diag_sink *d, SSL_CTX *ctx, const struct cfg_listener *l)
{
	if (!l->session_resumption) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		if (SSL_CTX_set_num_tickets(ctx, 0) != 1)
			cfg_report(d, CFG_ERROR, l->line, "listener %s: cannot turn tickets off",
				   l->name);
		return 0;
	}
	struct ticket_ring *r = ring_for(l->name, l->session_lifetime_s);
	if (!r || SSL_CTX_set_ex_data(ctx, ring_index, r) != 1 ||
	    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1) {
		cfg_report(d, CFG_ERROR, l->line, "listener %s: cannot set up session tickets",
			   l->name);
		return -1;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_timeout(ctx, (long)l->session_lifetime_s);
	/* The server cache only serves TLS 1.2 clients without ticket support;
	 * each entry holds the client certificate, so bound it. */
	unsigned long cache = l->max_connections;
	SSL_CTX_sess_set_cache_size(ctx, (long)(cache < 256 ? 256 : cache > 20480 ? 20480 : cache));
	/* One ticket per handshake: a sensor keeps one, and it saves a
	 * record on a slow link. */
	if (SSL_CTX_set_num_tickets(ctx, 1) != 1)
		cfg_report(d, CFG_ERROR, l->line, "listener %s: cannot set up session tickets",
			   l->name);
	return 0;
}

void tls_ctx_resumption(struct cfg_diag_sink *d, SSL_CTX *ctx, const struct cfg_listener *l)
{
	(void)setup_tickets(d, ctx, l);
	/* Needed for resumption with client certificates, and it keeps
	 * sessions from crossing listeners or policies. */
	if (set_sid_ctx(ctx, l) != 0)
		cfg_report(d, CFG_ERROR, l->line, "listener %s: cannot set the session id context",
			   l->name);
}
