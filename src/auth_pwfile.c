/* auth_pwfile: the password file of the auth module (see include/iotgw/auth.h):
 * parsing and loading it, verifying a password against it with
 * PBKDF2-HMAC-SHA256 in constant time, and writing and editing entries for
 * `iotgw passwd`, with the strict base64 its entries use. Device ids are
 * checked by auth_device_id_valid (auth.c), the only call between the two.
 *
 * Inputs from the network (passwords) are views with explicit lengths and
 * may hold any byte; key material is wiped with OPENSSL_cleanse. */
#include "iotgw/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "iotgw/reason.h"
#include "iotgw/text.h"

/* ==== base64 (RFC 4648, standard alphabet, padded) ==== */

/* OpenSSL's EVP_EncodeBlock writes it (as reading.c does for dead letters);
 * its EVP_DecodeBlock is lax (white space around, '=' anywhere, padding
 * counted as bytes, any unused bits), so the strict rules are checked here
 * before it decodes. */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;
	return p ? (int)(p - b64_alphabet) : -1;
}

/* Strict decoding: length a multiple of 4, padding only at the end, unused
 * bits zero (so each byte string has exactly one accepted spelling). Returns
 * the decoded length, or -1 if malformed or longer than cap. Inputs are the
 * salt and hash fields of one entry, so at most 3 * 32 bytes come out. */
static long b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	uint8_t all[3 * 32];
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof all)
		return -1;
	size_t pad = in[n - 1] == '=' ? (in[n - 2] == '=' ? 2 : 1) : 0;
	for (size_t i = 0; i < n - pad; i++)
		if (b64_value(in[i]) < 0)
			return -1;
	if (pad > 0 && (b64_value(in[n - pad - 1]) & (pad == 1 ? 0x3 : 0xf)) != 0)
		return -1;
	int got = EVP_DecodeBlock(all, (const unsigned char *)in, (int)n);
	if (got < 0 || (size_t)got - pad > cap)
		return -1;
	memcpy(out, all, (size_t)got - pad);
	return got - (long)pad;
}

/* ==== password file ==== */

struct pw_entry {
	char device[AUTH_DEVICE_MAX + 1];
	unsigned iterations;
	uint8_t salt[AUTH_PW_SALT_MAX];
	size_t saltlen;
	uint8_t hash[AUTH_PW_HASH_LEN];
	int line;
};

struct auth_pwfile {
	struct pw_entry *entries; /* sorted by device */
	size_t n;
	struct pw_entry dummy; /* verified against for unknown devices */
};

int auth_pbkdf2_sha256(const uint8_t *pw, size_t len, const uint8_t *salt, size_t saltlen,
		       unsigned iterations, uint8_t *out, size_t outlen)
{
	if (iterations == 0 || iterations > INT_MAX || len > INT_MAX || saltlen > INT_MAX ||
	    outlen > INT_MAX)
		return -1;
	/* PKCS5_PBKDF2_HMAC wants a non-NULL pointer even for length 0. */
	static const uint8_t empty[1];
	return PKCS5_PBKDF2_HMAC((const char *)(pw ? pw : empty), (int)len,
				 salt ? salt : empty, (int)saltlen, (int)iterations, EVP_sha256(),
				 (int)outlen, out) == 1
		       ? 0
		       : -1;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pw_entry *)a)->device, ((const struct pw_entry *)b)->device);
}

/* Parses "$iotgw-pbkdf2-sha256$N$SALT$HASH" (p[0..n)) into e. */
static int parse_hash(const char *p, size_t n, struct pw_entry *e, char *why, size_t whylen)
{
	size_t sl = strlen(AUTH_PW_SCHEME);
	if (n < sl || memcmp(p, AUTH_PW_SCHEME, sl) != 0) {
		char q[TEXT_QUOTE_CAP(AUTH_DEVICE_MAX)];
		const char *d = memchr(p + (n > 0), '$', n > 0 ? n - 1 : 0);
		size_t shown = d ? (size_t)(d - p) + 1 : n;
		return reason_fail(why, whylen, "unsupported hash scheme %s (expected %s)",
				   text_quote(q, sizeof q, p, shown, AUTH_DEVICE_MAX, 0),
				   AUTH_PW_SCHEME);
	}
	p += sl;
	n -= sl;
	/* ITERATIONS$SALT$HASH: exactly two more '$' */
	const char *end = p + n;
	const char *d1 = memchr(p, '$', n);
	const char *d2 = d1 ? memchr(d1 + 1, '$', (size_t)(end - d1 - 1)) : NULL;
	if (!d2 || memchr(d2 + 1, '$', (size_t)(end - d2 - 1)))
		return reason_fail(why, whylen, "expected %sITERATIONS$SALT$HASH", AUTH_PW_SCHEME);
	size_t itn = (size_t)(d1 - p);
	unsigned long it = 0;
	if (itn == 0 || itn > 9)
		return reason_fail(why, whylen, "iterations must be %u..%u", AUTH_PW_MIN_ITERATIONS,
				   AUTH_PW_MAX_ITERATIONS);
	for (size_t i = 0; i < itn; i++) {
		if (p[i] < '0' || p[i] > '9')
			return reason_fail(why, whylen, "iterations: not a number");
		it = it * 10 + (unsigned long)(p[i] - '0');
	}
	if (it < AUTH_PW_MIN_ITERATIONS || it > AUTH_PW_MAX_ITERATIONS)
		return reason_fail(why, whylen, "iterations %lu outside %u..%u", it,
				   AUTH_PW_MIN_ITERATIONS, AUTH_PW_MAX_ITERATIONS);
	e->iterations = (unsigned)it;
	long sn = b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), e->salt, sizeof e->salt);
	if (sn < 0)
		return reason_fail(why, whylen, "salt is not base64 of at most %u bytes",
				   AUTH_PW_SALT_MAX);
	if ((size_t)sn < AUTH_PW_SALT_MIN)
		return reason_fail(why, whylen, "salt of %ld bytes is too short (at least %u)", sn,
				   AUTH_PW_SALT_MIN);
	e->saltlen = (size_t)sn;
	uint8_t h[AUTH_PW_HASH_LEN + 3];
	long hn = b64_decode(d2 + 1, (size_t)(end - d2 - 1), h, sizeof h);
	if (hn != (long)AUTH_PW_HASH_LEN)
		return reason_fail(why, whylen, "hash is not base64 of %u bytes", AUTH_PW_HASH_LEN);
	memcpy(e->hash, h, AUTH_PW_HASH_LEN);
	return 0;
}

__attribute__((format(printf, 5, 6))) static void diagf(auth_diag_fn diag, void *ctx,
							const char *file, int line,
							const char *fmt, ...)
{
	if (!diag)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	diag(ctx, file, line, msg);
}

/* Parses one non-comment line into e; 0 or -1 with why. */
static int parse_entry(const char *p, size_t n, struct pw_entry *e, char *why, size_t whylen)
{
	const char *colon = memchr(p, ':', n);
	if (!colon)
		return reason_fail(why, whylen, "expected DEVICE:%sITERATIONS$SALT$HASH", AUTH_PW_SCHEME);
	size_t dlen = (size_t)(colon - p);
	if (!auth_device_id_valid(p, dlen)) {
		char q[TEXT_QUOTE_CAP(AUTH_DEVICE_MAX)];
		return reason_fail(why, whylen,
				   "device id %s is not usable (1-64 printable characters, no '/', "
				   "'+', '#' or spaces)",
				   text_quote(q, sizeof q, p, dlen, AUTH_DEVICE_MAX, 0));
	}
	memcpy(e->device, p, dlen);
	e->device[dlen] = '\0';
	return parse_hash(colon + 1, n - dlen - 1, e, why, whylen);
}

int auth_pwfile_parse(const char *text, size_t len, const char *filename,
		      struct auth_pwfile **out, auth_diag_fn diag, void *ctx)
{
	*out = NULL;
	struct auth_pwfile *pf = calloc(1, sizeof *pf);
	size_t cap = 0;
	int errors = 0, line = 0;
	if (!pf) {
		diagf(diag, ctx, filename, 0, "out of memory");
		return 1;
	}
	size_t pos = 0;
	while (pos < len) {
		line++;
		const char *p = text + pos;
		const char *nl = memchr(p, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - p) : len - pos;
		pos += n + (nl != NULL);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		while (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0 || p[0] == '#')
			continue;
		if (memchr(p, '\0', n)) {
			diagf(diag, ctx, filename, line, "NUL byte in line");
			errors++;
			continue;
		}
		if (pf->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct pw_entry *ne = realloc(pf->entries, ncap * sizeof *ne);
			if (!ne) {
				diagf(diag, ctx, filename, line, "out of memory");
				errors++;
				break;
			}
			pf->entries = ne;
			cap = ncap;
		}
		struct pw_entry *e = &pf->entries[pf->n];
		memset(e, 0, sizeof *e);
		char why[320];
		if (parse_entry(p, n, e, why, sizeof why) != 0) {
			diagf(diag, ctx, filename, line, "%s", why);
			errors++;
			continue;
		}
		e->line = line;
		pf->n++;
	}
	if (pf->n > 1)
		qsort(pf->entries, pf->n, sizeof *pf->entries, entry_cmp);
	for (size_t i = 1; i < pf->n; i++) {
		if (strcmp(pf->entries[i - 1].device, pf->entries[i].device) == 0) {
			const struct pw_entry *a = &pf->entries[i - 1], *b = &pf->entries[i];
			int first = a->line < b->line ? a->line : b->line;
			int second = a->line < b->line ? b->line : a->line;
			diagf(diag, ctx, filename, second,
			      "device %s already has an entry on line %d", a->device, first);
			errors++;
		}
	}
	if (errors) {
		auth_pwfile_free(pf);
		return errors;
	}
	/* The dummy costs what the dearest real entry costs (see the header). */
	pf->dummy.iterations = AUTH_PW_DEFAULT_ITERATIONS;
	for (size_t i = 0; i < pf->n; i++)
		if (i == 0 || pf->entries[i].iterations > pf->dummy.iterations)
			pf->dummy.iterations = pf->entries[i].iterations;
	pf->dummy.saltlen = AUTH_PW_SALT_LEN;
	memset(pf->dummy.salt, 0x5a, AUTH_PW_SALT_LEN);
	*out = pf;
	return 0;
}

int auth_pwfile_load(const char *path, struct auth_pwfile **out, auth_diag_fn diag, void *ctx)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		diagf(diag, ctx, path, 0, "cannot open password file: %s", strerror(errno));
		return 1;
	}
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int errors = 1;
	if (fstat(fd, &st) != 0) {
		diagf(diag, ctx, path, 0, "cannot stat password file: %s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		diagf(diag, ctx, path, 0, "password file is not a regular file");
	} else if (st.st_mode & 0006) {
		diagf(diag, ctx, path, 0,
		      "password file %s is %s by other users (mode %04o); chmod 640", path,
		      (st.st_mode & 0004) ? "readable" : "writable",
		      (unsigned)(st.st_mode & 07777));
	} else if ((uintmax_t)st.st_size > AUTH_PWFILE_MAX_BYTES) {
		diagf(diag, ctx, path, 0, "password file larger than %u bytes",
		      AUTH_PWFILE_MAX_BYTES);
	} else if (!(text = malloc((size_t)st.st_size + 1))) {
		diagf(diag, ctx, path, 0, "out of memory");
	} else {
		/* One byte more than fstat said: filling it means the file grew
		 * while we read it (an editor saving): better refuse than cut. */
		size_t cap = (size_t)st.st_size + 1;
		ssize_t r = 0;
		while (len < cap &&
		       ((r = read(fd, text + len, cap - len)) > 0 || (r < 0 && errno == EINTR)))
			len += r > 0 ? (size_t)r : 0;
		if (r < 0)
			diagf(diag, ctx, path, 0, "cannot read password file: %s", strerror(errno));
		else if (len == cap)
			diagf(diag, ctx, path, 0, "password file changed while being read");
		else
			errors = 0;
	}
	close(fd);
	if (errors == 0)
		errors = auth_pwfile_parse(text, len, path, out, diag, ctx);
	if (text)
		OPENSSL_cleanse(text, len);
	free(text);
	return errors;
}

size_t auth_pwfile_count(const struct auth_pwfile *pf)
{
	return pf ? pf->n : 0;
}

static int device_cmp(const void *device, const void *e)
{
	return strcmp(device, ((const struct pw_entry *)e)->device);
}

static const struct pw_entry *find_entry(const struct auth_pwfile *pf, const char *device)
{
	if (!pf || !device || pf->n == 0)
		return NULL;
	return bsearch(device, pf->entries, pf->n, sizeof *pf->entries, device_cmp);
}

bool auth_pwfile_has(const struct auth_pwfile *pf, const char *device)
{
	return find_entry(pf, device) != NULL;
}

void auth_pw_lookup(const struct auth_pwfile *pf, const char *device, struct auth_pw_entry *out)
{
	memset(out, 0, sizeof *out);
	if (!pf)
		return;
	const struct pw_entry *e = find_entry(pf, device);
	out->known = e != NULL;
	if (!e)
		e = &pf->dummy;
	out->iterations = e->iterations;
	memcpy(out->salt, e->salt, e->saltlen);
	out->saltlen = e->saltlen;
	memcpy(out->hash, e->hash, sizeof out->hash);
}

bool auth_pw_check(const struct auth_pw_entry *e, const uint8_t *pw, size_t len)
{
	/* Empty passwords are never valid (iotgw passwd refuses to store one);
	 * refusing them early depends on nothing secret. */
	if (!pw || len == 0 || len > AUTH_PW_MAX_LEN || e->iterations == 0)
		return false;
	uint8_t h[AUTH_PW_HASH_LEN];
	if (auth_pbkdf2_sha256(pw, len, e->salt, e->saltlen, e->iterations, h, sizeof h) != 0)
		return false;
	/* Constant time: the position of the first differing byte must not
	 * leak, or the hash could be learned byte by byte. */
	bool same = CRYPTO_memcmp(h, e->hash, sizeof h) == 0;
	OPENSSL_cleanse(h, sizeof h);
	return e->known && same;
}

bool auth_pw_verify(const struct auth_pwfile *pf, const char *device, const uint8_t *pw,
		    size_t len)
{
	if (!pf)
		return false;
	struct auth_pw_entry e;
	auth_pw_lookup(pf, device, &e);
	bool ok = auth_pw_check(&e, pw, len);
	OPENSSL_cleanse(&e, sizeof e);
	return ok;
}

void auth_pwfile_free(struct auth_pwfile *pf)
{
	if (!pf)
		return;
	if (pf->entries)
		OPENSSL_cleanse(pf->entries, pf->n * sizeof *pf->entries);
	free(pf->entries);
	free(pf);
}

int auth_pw_hash_line(const char *device, const uint8_t *pw, size_t len, unsigned iterations,
		      const uint8_t *salt, size_t saltlen, char *out, size_t cap, char *why,
		      size_t whylen)
{
	if (cap > 0)
		out[0] = '\0';
	if (!device || !auth_device_id_valid(device, strlen(device)) || strchr(device, ':'))
		return reason_fail(why, whylen,
				   "not a usable device id (1-64 printable characters, no '/', '+', "
				   "'#', ':' or spaces)");
	if (len == 0)
		return reason_fail(why, whylen, "empty password");
	if (len > AUTH_PW_MAX_LEN)
		return reason_fail(why, whylen, "password longer than %u bytes", AUTH_PW_MAX_LEN);
	if (iterations < AUTH_PW_MIN_ITERATIONS || iterations > AUTH_PW_MAX_ITERATIONS)
		return reason_fail(why, whylen, "iterations must be %u..%u", AUTH_PW_MIN_ITERATIONS,
				   AUTH_PW_MAX_ITERATIONS);
	uint8_t s[AUTH_PW_SALT_MAX];
	if (!salt) {
		saltlen = AUTH_PW_SALT_LEN;
		if (RAND_bytes(s, (int)saltlen) != 1)
			return reason_fail(why, whylen, "no random bytes for the salt");
	} else {
		if (saltlen < AUTH_PW_SALT_MIN || saltlen > AUTH_PW_SALT_MAX)
			return reason_fail(why, whylen, "salt must be %u..%u bytes", AUTH_PW_SALT_MIN,
					   AUTH_PW_SALT_MAX);
		memcpy(s, salt, saltlen);
	}
	uint8_t h[AUTH_PW_HASH_LEN];
	if (auth_pbkdf2_sha256(pw, len, s, saltlen, iterations, h, sizeof h) != 0)
		return reason_fail(why, whylen, "PBKDF2 failed");
	char s64[4 * ((AUTH_PW_SALT_MAX + 2) / 3) + 1];
	char h64[4 * ((AUTH_PW_HASH_LEN + 2) / 3) + 1];
	(void)EVP_EncodeBlock((unsigned char *)s64, s, (int)saltlen);
	(void)EVP_EncodeBlock((unsigned char *)h64, h, (int)sizeof h);
	OPENSSL_cleanse(h, sizeof h);
	int n = snprintf(out, cap, "%s:%s%u$%s$%s", device, AUTH_PW_SCHEME, iterations, s64, h64);
	if (n < 0 || (size_t)n >= cap) {
		if (cap > 0)
			out[0] = '\0';
		return reason_fail(why, whylen, "entry longer than the buffer");
	}
	return 0;
}

/* Is p[0..n) (one line without its newline) the entry of device? */
static bool is_entry_of(const char *p, size_t n, const char *device, size_t dlen)
{
	while (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
		p++;
		n--;
	}
	return n > dlen && p[dlen] == ':' && memcmp(p, device, dlen) == 0;
}

int auth_pwfile_edit(const char *text, size_t len, const char *device, const char *entry,
		     char **out, size_t *outlen, bool *found)
{
	size_t dlen = strlen(device);
	size_t elen = entry ? strlen(entry) : 0;
	/* Never longer than the old text plus the entry and two newlines. */
	char *o = malloc(len + elen + 3);
	*found = false;
	*out = NULL;
	*outlen = 0;
	if (!o)
		return -1;
	size_t w = 0, pos = 0;
	while (pos < len) {
		const char *p = text + pos;
		const char *nl = memchr(p, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - p) : len - pos;
		size_t whole = n + (nl != NULL);
		pos += whole;
		if (!*found && is_entry_of(p, n, device, dlen)) {
			*found = true;
			if (entry) {
				memcpy(o + w, entry, elen);
				w += elen;
				/* Keep the line's own ending (LF, CRLF or none). */
				size_t keep = (n > 0 && p[n - 1] == '\r') ? 1 : 0;
				memcpy(o + w, p + n - keep, keep + (nl != NULL));
				w += keep + (nl != NULL);
			}
			continue;
		}
		memcpy(o + w, p, whole);
		w += whole;
	}
	if (!*found && entry) {
		if (w > 0 && o[w - 1] != '\n')
			o[w++] = '\n';
		memcpy(o + w, entry, elen);
		w += elen;
		o[w++] = '\n';
	}
	o[w] = '\0';
	*out = o;
	*outlen = w;
	return 0;
}
