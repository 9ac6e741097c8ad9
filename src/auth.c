/* auth: device ids, the publish ACL, the client id policy and which device a
 * password is for (see include/iotgw/auth.h); the password file itself, with
 * PBKDF2 and base64, is auth_pwfile.c's.
 *
 * Everything decides on bytes it is handed and says why it refused; the
 * session logs. Inputs from the network (topics, client ids, user names,
 * passwords) are views with explicit lengths and may hold any byte. */
#include "iotgw/auth.h"

#include <stdlib.h>
#include <string.h>

#include "iotgw/reason.h"
#include "iotgw/text.h"

bool auth_device_id_valid(const char *id, size_t len)
{
	if (!id || len == 0 || len > AUTH_DEVICE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];
		if (c <= 0x20 || c >= 0x7f || c == '/' || c == '+' || c == '#')
			return false;
	}
	return true;
}

/* ==== publish ACL ==== */

enum acl_kind { ACL_LIT, ACL_PLUS, ACL_HASH, ACL_DEVICE };

struct acl_level {
	enum acl_kind kind;
	const char *lit; /* ACL_LIT: into auth_acl.text */
	size_t len;
};

struct acl_pattern {
	struct acl_level *levels;
	size_t nlevels;
};

struct auth_acl {
	bool none;
	char *text; /* copy of the value; literals point into it */
	struct acl_pattern pats[AUTH_ACL_PATTERNS_MAX];
	size_t npats;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int auth_acl_pattern_check(const char *pat, size_t len, char *why, size_t whylen)
{
	if (len == 0)
		return reason_fail(why, whylen, "empty pattern");
	if (len > AUTH_ACL_PATTERN_MAX)
		return reason_fail(why, whylen, "longer than %d bytes", AUTH_ACL_PATTERN_MAX);
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && pat[i] != '/')
			continue;
		const char *lv = pat + start;
		size_t n = i - start;
		bool last = i == len;
		if (memchr(lv, '+', n) || memchr(lv, '#', n)) {
			/* 4.7.1.2/4.7.1.3: a wildcard is a whole level, '#' the last. */
			if (n != 1)
				return reason_fail(why, whylen, "'+' and '#' must be a whole level");
			if (lv[0] == '#' && !last)
				return reason_fail(why, whylen, "'#' must be the last level");
		} else if (memchr(lv, '{', n) || memchr(lv, '}', n)) {
			/* Catches typos like {Device} or {device}-x, which would
			 * otherwise be literals that never match. */
			if (n != 8 || memcmp(lv, "{device}", 8) != 0)
				return reason_fail(why, whylen, "'{' and '}' are only allowed in a "
								"whole {device} level");
		}
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)lv[k];
			if (c < 0x20 || c == 0x7f)
				return reason_fail(why, whylen, "control character in pattern");
		}
		start = i + 1;
	}
	return 0;
}

void auth_acl_free(struct auth_acl *acl)
{
	if (!acl)
		return;
	for (size_t i = 0; i < acl->npats; i++)
		free(acl->pats[i].levels);
	free(acl->text);
	free(acl);
}

/* Splits an already checked pattern into levels. */
static int acl_add(struct auth_acl *acl, const char *pat, size_t len)
{
	size_t n = 1;
	for (size_t i = 0; i < len; i++)
		n += pat[i] == '/';
	struct acl_level *lv = calloc(n, sizeof *lv);
	if (!lv)
		return -1;
	size_t k = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && pat[i] != '/')
			continue;
		struct acl_level *l = &lv[k++];
		l->lit = pat + start;
		l->len = i - start;
		if (l->len == 1 && l->lit[0] == '+')
			l->kind = ACL_PLUS;
		else if (l->len == 1 && l->lit[0] == '#')
			l->kind = ACL_HASH;
		else if (l->len == 8 && memcmp(l->lit, "{device}", 8) == 0)
			l->kind = ACL_DEVICE;
		else
			l->kind = ACL_LIT;
		start = i + 1;
	}
	acl->pats[acl->npats].levels = lv;
	acl->pats[acl->npats].nlevels = n;
	acl->npats++;
	return 0;
}

int auth_acl_compile(const char *patterns, struct auth_acl **out, char *why, size_t whylen)
{
	*out = NULL;
	struct auth_acl *acl = calloc(1, sizeof *acl);
	if (!acl || !(acl->text = strdup(patterns))) {
		free(acl);
		return reason_fail(why, whylen, "out of memory");
	}
	const char *p = acl->text;
	char q[TEXT_QUOTE_CAP(AUTH_DEVICE_MAX)];
	while (*p) {
		while (is_space(*p))
			p++;
		if (!*p)
			break;
		const char *e = p;
		while (*e && !is_space(*e))
			e++;
		size_t n = (size_t)(e - p);
		char reason[128];
		if (n == 4 && memcmp(p, AUTH_ACL_NONE, 4) == 0) {
			acl->none = true;
		} else if (auth_acl_pattern_check(p, n, reason, sizeof reason) != 0) {
			/* p points into acl->text: quote before freeing */
			text_quote(q, sizeof q, p, n, AUTH_DEVICE_MAX, 0);
			(void)reason_fail(why, whylen, "pattern %s: %s", q, reason);
			auth_acl_free(acl);
			return -1;
		} else if (acl->npats == AUTH_ACL_PATTERNS_MAX) {
			auth_acl_free(acl);
			return reason_fail(why, whylen, "more than %d patterns", AUTH_ACL_PATTERNS_MAX);
		} else if (acl_add(acl, p, n) != 0) {
			auth_acl_free(acl);
			return reason_fail(why, whylen, "out of memory");
		}
		p = e;
	}
	if (acl->none && acl->npats > 0) {
		auth_acl_free(acl);
		return reason_fail(why, whylen, "\"none\" disables the check and cannot be combined "
						"with patterns");
	}
	if (!acl->none && acl->npats == 0) {
		auth_acl_free(acl);
		return reason_fail(why, whylen, "no patterns (use \"none\" to disable the check)");
	}
	*out = acl;
	return 0;
}

int auth_acl_from_list(const char *const *patterns, size_t n, struct auth_acl **out, char *why,
		       size_t whylen)
{
	*out = NULL;
	if (n == 0)
		return reason_fail(why, whylen, "no patterns (use \"none\" to disable the check)");
	size_t total = 1;
	for (size_t i = 0; i < n; i++) {
		for (const char *c = patterns[i]; *c; c++)
			if (is_space(*c))
				return reason_fail(why, whylen, "pattern %zu contains white space", i + 1);
		total += strlen(patterns[i]) + 1;
	}
	char *text = malloc(total);
	if (!text)
		return reason_fail(why, whylen, "out of memory");
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(patterns[i]);
		memcpy(text + o, patterns[i], k);
		o += k;
		text[o++] = ' ';
	}
	text[o] = '\0';
	int rc = auth_acl_compile(text, out, why, whylen);
	free(text);
	return rc;
}

bool auth_acl_is_none(const struct auth_acl *acl)
{
	return acl && acl->none;
}

bool auth_topic_allowed(const struct auth_acl *acl, const char *device, const char *topic,
			size_t topic_len)
{
	/* 4.7.3-1: an empty topic is not a topic name. A topic has no
	 * wildcard levels, so "covered by a pattern" is "matched by it". */
	return auth_filter_allowed(acl, device, topic, topic_len);
}

/* Does pattern cover every topic filter f can match (for a topic name,
 * which has no wildcards: does it match, MQTT 4.7)? Level by level: a
 * pattern '#' covers the rest (also none: the parent level, 4.7.1.2),
 * '+' one level that is not '#' (possibly empty, 4.7.1.3), a literal or
 * {device} only the same literal text. */
static bool pattern_covers(const struct acl_pattern *pat, const char *device, size_t dlen,
			   bool device_ok, const char *f, size_t flen)
{
	/* 4.7.2: a filter on $-topics is covered only by a pattern naming them. */
	if (f[0] == '$' && (pat->levels[0].kind == ACL_PLUS || pat->levels[0].kind == ACL_HASH))
		return false;
	size_t pos = 0;
	bool more = true;
	for (size_t i = 0; i < pat->nlevels; i++) {
		const struct acl_level *l = &pat->levels[i];
		if (l->kind == ACL_HASH)
			return true;
		if (!more)
			return false;
		const char *seg = f + pos;
		const char *slash = memchr(seg, '/', flen - pos);
		size_t n = slash ? (size_t)(slash - seg) : flen - pos;
		bool wild = n == 1 && (seg[0] == '+' || seg[0] == '#');
		switch (l->kind) {
		case ACL_LIT:
			if (wild || n != l->len || memcmp(seg, l->lit, n) != 0)
				return false;
			break;
		case ACL_DEVICE:
			if (wild || !device_ok || n != dlen || memcmp(seg, device, n) != 0)
				return false;
			break;
		case ACL_PLUS:
			if (n == 1 && seg[0] == '#')
				return false;
			break;
		case ACL_HASH:
			break;
		}
		if (slash)
			pos += n + 1;
		else
			more = false;
	}
	return !more;
}

bool auth_filter_allowed(const struct auth_acl *acl, const char *device, const char *filter,
			 size_t filter_len)
{
	if (!acl)
		return false;
	if (acl->none)
		return true;
	if (!filter || filter_len == 0)
		return false;
	size_t dlen = device ? strlen(device) : 0;
	bool device_ok = dlen > 0 && !strpbrk(device, "/+#");
	for (size_t i = 0; i < acl->npats; i++)
		if (pattern_covers(&acl->pats[i], device, dlen, device_ok, filter, filter_len))
			return true;
	return false;
}

/* ==== client id policy ==== */

static const char *const cid_names[] = {"match", "exact", "any"};

int auth_cid_policy_parse(const char *s, enum auth_cid_policy *out)
{
	for (size_t i = 0; i < sizeof cid_names / sizeof cid_names[0]; i++) {
		if (strcmp(s, cid_names[i]) == 0) {
			*out = (enum auth_cid_policy)i;
			return 0;
		}
	}
	return -1;
}

const char *auth_cid_policy_name(enum auth_cid_policy p)
{
	return (unsigned)p < sizeof cid_names / sizeof cid_names[0] ? cid_names[p] : "?";
}

bool auth_watson_device(const char *cid, size_t len, const char **id, size_t *idlen)
{
	if (!cid || len < 2 || cid[0] != 'd' || cid[1] != ':')
		return false;
	const char *end = cid + len;
	const char *org = cid + 2;
	const char *c1 = memchr(org, ':', (size_t)(end - org));
	if (!c1 || c1 == org)
		return false;
	const char *type = c1 + 1;
	const char *c2 = memchr(type, ':', (size_t)(end - type));
	if (!c2 || c2 == type || c2 + 1 == end)
		return false;
	if (id)
		*id = c2 + 1;
	if (idlen)
		*idlen = (size_t)(end - (c2 + 1));
	return true;
}

bool auth_client_id_ok(enum auth_cid_policy policy, const char *device, const char *cid,
		       size_t len)
{
	if (policy == AUTH_CID_ANY)
		return true;
	if (!device || !cid)
		return false;
	size_t dlen = strlen(device);
	if (!auth_device_id_valid(device, dlen))
		return false;
	if (len == dlen && memcmp(cid, device, len) == 0)
		return true;
	if (policy != AUTH_CID_MATCH)
		return false;
	const char *id;
	size_t idlen;
	return auth_watson_device(cid, len, &id, &idlen) && idlen == dlen &&
	       memcmp(id, device, dlen) == 0;
}

int auth_password_device(const char *username, size_t ulen, const char *cid, size_t clen,
			 char *out, size_t cap, char *why, size_t whylen)
{
	char q[TEXT_QUOTE_CAP(AUTH_DEVICE_MAX)];
	const char *dev = username;
	size_t dlen = ulen;
	if (cap > 0)
		out[0] = '\0';
	if (!username)
		return reason_fail(why, whylen, "no user name and password (this listener requires them)");
	if (ulen == strlen(AUTH_WATSON_TOKEN_USER) &&
	    memcmp(username, AUTH_WATSON_TOKEN_USER, ulen) == 0) {
		if (!auth_watson_device(cid, clen, &dev, &dlen))
			return reason_fail(why, whylen,
					   "user name use-token-auth needs a Watson client id "
					   "d:<org>:<type>:<id>, not %s",
					   text_quote(q, sizeof q, cid, cid ? clen : 0, AUTH_DEVICE_MAX,
						      0));
	}
	if (!auth_device_id_valid(dev, dlen))
		return reason_fail(why, whylen,
				   "%s %s is not a usable device id (1-64 printable characters, no "
				   "'/', '+', '#' or spaces)",
				   dev == username ? "user name" : "Watson device id",
				   text_quote(q, sizeof q, dev, dlen, AUTH_DEVICE_MAX, 0));
	if (cap <= dlen)
		return reason_fail(why, whylen, "device id buffer too small");
	memcpy(out, dev, dlen);
	out[dlen] = '\0';
	return 0;
}
