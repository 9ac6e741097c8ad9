/* tls_ctx_resume: session resumption for the listener contexts of tls_ctx
 * (see tls_ctx.h, "Session resumption").
 *
 * Owns the session store, one per listener name that outlives every context
 * built for it (so devices resume after a reload), OpenSSL's new-session and
 * get-session callbacks that fill and read it, the server session cache
 * settings and the session id context digest. tls_ctx.c calls
 * tls_ctx_resumption once per listener context (tls_ctx_int.h);
 * tls_ctx_sessions_save and _load carry the stores across a restart;
 * tls_ctx_cleanup wipes them. */
#include "iotgw/tls_ctx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "iotgw/strmap.h"
#include "tls_ctx_int.h"

/* ---- the session store ---- */

/* Stateful resumption: a TLS 1.3 ticket (SSL_OP_NO_TICKET makes OpenSSL
 * issue stateful ones) or a TLS 1.2 session id names an entry here. Not
 * stateless tickets: OpenSSL 3.0 builds each one by encoding the session,
 * decoding it again (a second parse of the device's certificate, whose key
 * decoding alone costs about as much as an ECDSA verification) and encoding
 * that; a full handshake with a stateless ticket cost about 15 % more CPU.
 * An entry is OpenSSL's encoding of the session (i2d_SSL_SESSION: cipher,
 * master secret, the device's certificate, the session id context), about
 * 0.5-1 KiB, not the SSL_SESSION with its parsed certificate (several KiB). */
struct stored {
	struct stored *older, *newer; /* insertion order: expiry and eviction */
	uint64_t expires;             /* monotonic seconds */
	unsigned idlen;
	unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
	size_t len;
	unsigned char der[];
};

/* The sessions of one listener name, kept across reloads. */
struct sess_store {
	struct sess_store *next;
	char *listener;
	uint64_t lifetime_s;
	size_t max;
	struct strmap *by_id; /* hex id -> struct stored (SipHash: TLS 1.2 ids come from clients) */
	struct stored *oldest, *newest;
};

/* A session longer than this is not kept (a device with a huge chain). */
#define STORED_MAX 16384

/* Handshake threads ([gateway] threads) fill and read the stores from
 * OpenSSL's callbacks: everything below that touches them holds store_mu
 * (taken once per full or resumed handshake, and by the loop for a reload
 * or a save). */
static pthread_mutex_t store_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sess_store *stores;
static int store_index = -1;
/* Bumped by every new session: what tls_ctx_sessions_save has not seen. */
static uint64_t generation, saved_generation;

static uint64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

static void hex_id(const unsigned char *id, unsigned len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < len; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	out[2 * len] = '\0';
}

static struct sess_store *store_for(const char *listener, unsigned lifetime_s, size_t max)
{
	if (store_index < 0) {
		store_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
		if (store_index < 0)
			return NULL;
	}
	struct sess_store *st = stores;
	while (st && strcmp(st->listener, listener) != 0)
		st = st->next;
	if (!st) {
		st = calloc(1, sizeof *st);
		if (!st)
			return NULL;
		st->listener = strdup(listener);
		st->by_id = strmap_new();
		if (!st->listener || !st->by_id) {
			free(st->listener);
			strmap_free(st->by_id, NULL);
			free(st);
			return NULL;
		}
		st->next = stores;
		stores = st;
	}
	st->lifetime_s = lifetime_s ? lifetime_s : 1;
	st->max = max;
	return st;
}

/* Unlinks e from st and wipes it (it holds a master secret). */
static void store_drop(struct sess_store *st, struct stored *e)
{
	char key[2 * SSL_MAX_SSL_SESSION_ID_LENGTH + 1];
	hex_id(e->id, e->idlen, key);
	(void)strmap_del(st->by_id, key);
	if (e->older)
		e->older->newer = e->newer;
	else
		st->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		st->newest = e->older;
	OPENSSL_clear_free(e, sizeof *e + e->len);
	generation++;
}

/* Expired entries first, then the oldest while more than room remain. */
static void store_trim(struct sess_store *st, uint64_t now, size_t room)
{
	while (st->oldest && (st->oldest->expires <= now || strmap_size(st->by_id) > room))
		store_drop(st, st->oldest);
}

static struct sess_store *store_of(SSL *ssl)
{
	return store_index < 0 ? NULL : SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), store_index);
}

/* Files e (its der filled in) under id, the newest of st; replaces an
 * entry of the same id. Frees e when it cannot be filed. */
static void store_insert(struct sess_store *st, struct stored *e, const unsigned char *id,
			 unsigned idlen, size_t len, uint64_t expires)
{
	char key[2 * SSL_MAX_SSL_SESSION_ID_LENGTH + 1];
	hex_id(id, idlen, key);
	struct stored *old = strmap_get(st->by_id, key);
	if (old)
		store_drop(st, old);
	e->len = len;
	e->idlen = idlen;
	memcpy(e->id, id, idlen);
	e->expires = expires;
	if (strmap_put(st->by_id, key, e) != 0) {
		OPENSSL_clear_free(e, sizeof *e + e->len);
		return;
	}
	e->newer = NULL;
	e->older = st->newest;
	if (st->newest)
		st->newest->newer = e;
	else
		st->oldest = e;
	st->newest = e;
	generation++;
}

/* OpenSSL's new-session callback: a full handshake made a resumable
 * session (TLS 1.3: with each ticket). Returns 0: the store keeps an
 * encoding, no reference. */
static int store_new_locked(SSL *ssl, SSL_SESSION *sess)
{
	struct sess_store *st = store_of(ssl);
	unsigned idlen = 0;
	const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
	int len = i2d_SSL_SESSION(sess, NULL);
	if (!st || idlen == 0 || idlen > SSL_MAX_SSL_SESSION_ID_LENGTH || len <= 0 ||
	    len > STORED_MAX)
		return 0;
	struct stored *e = malloc(sizeof *e + (size_t)len);
	if (!e)
		return 0;
	unsigned char *p = e->der;
	if (i2d_SSL_SESSION(sess, &p) != len) {
		OPENSSL_clear_free(e, sizeof *e + (size_t)len);
		return 0;
	}
	uint64_t now = mono_s();
	/* Every store loses its expired sessions, also the store of a listener
	 * that a reload removed or renamed (nothing is looked up there). */
	for (struct sess_store *o = stores; o; o = o->next)
		store_trim(o, now, o == st ? (st->max ? st->max - 1 : 0) : SIZE_MAX);
	store_insert(st, e, id, idlen, (size_t)len, now + st->lifetime_s);
	return 0;
}

/* OpenSSL's get-session callback: the session a TLS 1.3 ticket or a TLS 1.2
 * session id names, decoded afresh (*copy = 0: the caller owns it), or
 * NULL. OpenSSL then checks its lifetime, session id context (a reload that
 * changed trust makes old sessions useless) and cipher. A TLS 1.3 ticket is
 * used once: the resumed handshake issues the device a new one. */
static SSL_SESSION *store_get_locked(SSL *ssl, const unsigned char *id, int idlen, int *copy)
{
	*copy = 0;
	struct sess_store *st = store_of(ssl);
	if (!st || idlen <= 0 || idlen > SSL_MAX_SSL_SESSION_ID_LENGTH)
		return NULL;
	store_trim(st, mono_s(), st->max);
	char key[2 * SSL_MAX_SSL_SESSION_ID_LENGTH + 1];
	hex_id(id, (unsigned)idlen, key);
	struct stored *e = strmap_get(st->by_id, key);
	if (!e)
		return NULL;
	const unsigned char *p = e->der;
	SSL_SESSION *sess = d2i_SSL_SESSION(NULL, &p, (long)e->len);
	if (!sess || SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION)
		store_drop(st, e);
	return sess;
}

static int store_new(SSL *ssl, SSL_SESSION *sess)
{
	pthread_mutex_lock(&store_mu);
	int r = store_new_locked(ssl, sess);
	pthread_mutex_unlock(&store_mu);
	return r;
}

static SSL_SESSION *store_get(SSL *ssl, const unsigned char *id, int idlen, int *copy)
{
	pthread_mutex_lock(&store_mu);
	SSL_SESSION *sess = store_get_locked(ssl, id, idlen, copy);
	pthread_mutex_unlock(&store_mu);
	return sess;
}

void tls_ctx_cleanup(void)
{
	pthread_mutex_lock(&store_mu);
	while (stores) {
		struct sess_store *st = stores;
		stores = st->next;
		while (st->oldest)
			store_drop(st, st->oldest);
		strmap_free(st->by_id, NULL);
		free(st->listener);
		free(st);
	}
	pthread_mutex_unlock(&store_mu);
}

/* ---- across a restart ---- */

/* The file: FILE_MAGIC, then one record per session,
 *   u8 name length, listener name, u8 id length, id,
 *   u64 expiry (Unix seconds), u32 length, the session's encoding,
 * and a record with name length 0 at the end (a file without it was cut
 * short). Numbers little-endian as this host writes them: the file is
 * read back by the same gateway on the same box. */
static const char FILE_MAGIC[8] = {'I', 'O', 'T', 'G', 'W', 'T', 'S', '1'};

static int put(FILE *f, const void *p, size_t n)
{
	return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int save_store(FILE *f, const struct sess_store *st, uint64_t mono_now, uint64_t wall_now,
		      long *n)
{
	size_t nl = strlen(st->listener);
	if (nl == 0 || nl > 255)
		return 0;
	uint8_t nl8 = (uint8_t)nl;
	for (const struct stored *e = st->oldest; e; e = e->newer) {
		if (e->expires <= mono_now)
			continue;
		uint64_t exp = wall_now + (e->expires - mono_now);
		uint8_t il = (uint8_t)e->idlen;
		uint32_t len = (uint32_t)e->len;
		if (put(f, &nl8, 1) || put(f, st->listener, nl) || put(f, &il, 1) ||
		    put(f, e->id, il) || put(f, &exp, sizeof exp) || put(f, &len, sizeof len) ||
		    put(f, e->der, e->len))
			return -1;
		(*n)++;
	}
	return 0;
}

static long sessions_save_locked(const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	/* 0600: a session holds its master secret. */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!f) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	long n = 0;
	uint64_t mono_now = mono_s(), wall_now = (uint64_t)time(NULL);
	uint8_t end = 0;
	int rc = put(f, FILE_MAGIC, sizeof FILE_MAGIC);
	for (const struct sess_store *st = stores; st && rc == 0; st = st->next)
		rc = save_store(f, st, mono_now, wall_now, &n);
	if (rc == 0)
		rc = put(f, &end, 1);
	int saved_errno = errno;
	if (fclose(f) != 0 && rc == 0) {
		rc = -1;
		saved_errno = errno;
	}
	/* No fsync: a file lost to a power cut costs full handshakes, and a
	 * torn one is refused by its end record (a session that does not decode
	 * is dropped when a device asks for it). */
	if (rc != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", rc ? tmp : path, strerror(rc ? saved_errno : errno));
		(void)unlink(tmp);
		return -1;
	}
	saved_generation = generation;
	return n;
}

/* Under the lock throughout: a few thousand sessions are written in a few
 * milliseconds, and handshakes wait that long, once every few minutes. */
long tls_ctx_sessions_save(const char *path, char *err, size_t errlen)
{
	pthread_mutex_lock(&store_mu);
	long n = sessions_save_locked(path, err, errlen);
	pthread_mutex_unlock(&store_mu);
	return n;
}

bool tls_ctx_sessions_changed(void)
{
	pthread_mutex_lock(&store_mu);
	bool changed = generation != saved_generation;
	pthread_mutex_unlock(&store_mu);
	return changed;
}

static int get(FILE *f, void *p, size_t n)
{
	return fread(p, 1, n, f) == n ? 0 : -1;
}

/* One record into its listener's store (if that listener still has one and
 * the session has not expired); 1: the end record, -1: cut short. */
static int load_one(FILE *f, uint64_t mono_now, uint64_t wall_now, long *n)
{
	uint8_t nl, il;
	char name[256];
	unsigned char id[256];
	uint64_t exp;
	uint32_t len;
	if (get(f, &nl, 1))
		return -1;
	if (nl == 0)
		return 1;
	if (get(f, name, nl) || get(f, &il, 1) || get(f, id, il) || get(f, &exp, sizeof exp) ||
	    get(f, &len, sizeof len) || len == 0 || len > STORED_MAX ||
	    il > SSL_MAX_SSL_SESSION_ID_LENGTH || il == 0)
		return -1;
	name[nl] = '\0';
	struct stored *e = malloc(sizeof *e + len);
	if (!e || get(f, e->der, len)) {
		free(e);
		return -1;
	}
	struct sess_store *st = stores;
	while (st && strcmp(st->listener, name) != 0)
		st = st->next;
	/* Not decoded here (a start with 20k sessions would pay 20k certificate
	 * parses): store_get decodes each when it is asked for, and drops one
	 * that does not decode. */
	if (!st || exp <= wall_now || strmap_size(st->by_id) >= st->max) {
		OPENSSL_clear_free(e, sizeof *e + len);
		return 0;
	}
	uint64_t left = exp - wall_now;
	if (left > st->lifetime_s) /* session_lifetime was shortened since */
		left = st->lifetime_s;
	store_insert(st, e, id, il, len, mono_now + left);
	(*n)++;
	return 0;
}

static long sessions_load_locked(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rbe");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char magic[sizeof FILE_MAGIC];
	long n = 0;
	int rc = get(f, magic, sizeof magic) || memcmp(magic, FILE_MAGIC, sizeof magic) ? -1 : 0;
	uint64_t mono_now = mono_s(), wall_now = (uint64_t)time(NULL);
	while (rc == 0)
		rc = load_one(f, mono_now, wall_now, &n);
	fclose(f);
	saved_generation = generation;
	if (rc < 0) {
		snprintf(err, errlen,
			 "%s: not a complete session file (%ld session(s) read before the damage)",
			 path, n);
		return -1;
	}
	return n;
}

long tls_ctx_sessions_load(const char *path, char *err, size_t errlen)
{
	pthread_mutex_lock(&store_mu);
	long n = sessions_load_locked(path, err, errlen);
	pthread_mutex_unlock(&store_mu);
	return n;
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

static int setup_sessions(struct cfg_diag_sink *d, SSL_CTX *ctx, const struct cfg_listener *l)
{
	if (!l->session_resumption) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		if (SSL_CTX_set_num_tickets(ctx, 0) != 1)
			cfg_report(d, CFG_ERROR, l->line, "listener %s: cannot turn tickets off",
				   l->name);
		return 0;
	}
	/* One session per device is the usual need; more connections than
	 * max_connections have rarely been made within a lifetime. */
	unsigned long cap = l->max_connections;
	pthread_mutex_lock(&store_mu);
	struct sess_store *st = store_for(l->name, l->session_lifetime_s,
					  cap < 256 ? 256 : cap > 20480 ? 20480 : cap);
	pthread_mutex_unlock(&store_mu);
	if (!st || SSL_CTX_set_ex_data(ctx, store_index, st) != 1) {
		cfg_report(d, CFG_ERROR, l->line, "listener %s: cannot set up session resumption",
			   l->name);
		return -1;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(ctx, store_new);
	SSL_CTX_sess_set_get_cb(ctx, store_get);
	/* Stateful: TLS 1.3 tickets that name a stored session, TLS 1.2 session
	 * ids. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_timeout(ctx, (long)l->session_lifetime_s);
	/* One ticket per handshake: a sensor keeps one, and it saves a
	 * record on a slow link. */
	if (SSL_CTX_set_num_tickets(ctx, 1) != 1)
		cfg_report(d, CFG_ERROR, l->line, "listener %s: cannot set up session tickets",
			   l->name);
	return 0;
}

void tls_ctx_resumption(struct cfg_diag_sink *d, SSL_CTX *ctx, const struct cfg_listener *l)
{
	(void)setup_sessions(d, ctx, l);
	/* Needed for resumption with client certificates, and it keeps
	 * sessions from crossing listeners or policies. */
	if (set_sid_ctx(ctx, l) != 0)
		cfg_report(d, CFG_ERROR, l->line, "listener %s: cannot set the session id context",
			   l->name);
}
