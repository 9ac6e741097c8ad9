/* jscan: simple JSON read in place, for the decoder's fast path. It accepts
 * only what cJSON reads identically (see the header), so a "no" is always
 * safe: the caller falls back to cJSON. Pure. */
#include "iotgw/jscan.h"

#include <stdint.h>
#include <string.h>

#include "iotgw/numfmt.h"

/* RFC 8259 whitespace. cJSON skips every byte <= 32 (\v, \f, ...): such
 * text is left to it. */
static size_t skip_ws(const char *p, size_t n, size_t i)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A string at p[*i] (the opening quote); *i moves past the closing one.
 * cJSON copies raw control bytes and decodes escapes (and fails on bad
 * ones); both are rare in sensor JSON and left to it. */
static int scan_string(const char *p, size_t n, size_t *i)
{
	size_t j = *i;
	if (j >= n || p[j] != '"')
		return -1;
	for (j++; j < n && p[j] != '"'; j++)
		if (p[j] == '\\' || (unsigned char)p[j] < 0x20)
			return -1;
	if (j >= n)
		return -1;
	*i = j + 1;
	return 0;
}

/* RFC 8259 number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?.
 * cJSON reads the bytes [0-9.eE+-] that follow (63 at most) with strtod:
 * for such a number followed by a delimiter that is exactly its text. A
 * longer number cJSON would cut short, so it is not simple. */
static int scan_number(const char *p, size_t n, size_t *i)
{
	size_t j = *i, start = *i;
	if (j < n && p[j] == '-')
		j++;
	if (j < n && p[j] == '0') {
		j++;
	} else {
		if (j >= n || !is_digit(p[j]))
			return -1;
		while (j < n && is_digit(p[j]))
			j++;
	}
	if (j < n && p[j] == '.') {
		if (++j >= n || !is_digit(p[j]))
			return -1;
		while (j < n && is_digit(p[j]))
			j++;
	}
	if (j < n && (p[j] == 'e' || p[j] == 'E')) {
		j++;
		if (j < n && (p[j] == '+' || p[j] == '-'))
			j++;
		if (j >= n || !is_digit(p[j]))
			return -1;
		while (j < n && is_digit(p[j]))
			j++;
	}
	if (j - start > NUMFMT_PARSE_MAX)
		return -1;
	*i = j;
	return 0;
}

static int scan_word(const char *p, size_t n, size_t *i, const char *word)
{
	size_t len = strlen(word);
	if (n - *i < len || memcmp(p + *i, word, len) != 0)
		return -1;
	*i += len;
	return 0;
}

/* The value at p[start..end) of type t. */
static void set_val(struct jscan_val *v, enum jscan_type t, const char *p, size_t start,
		    size_t end)
{
	v->type = t;
	v->p = p + start;
	v->n = end - start;
	if (t == JSCAN_STRING) {
		v->p++;
		v->n -= 2;
	}
}

/* A member's name (into *key unless NULL) and its colon, at p[*i]
 * (whitespace first); *i moves to the value. */
static int scan_key(const char *p, size_t n, size_t *i, struct jscan_val *key)
{
	size_t j = skip_ws(p, n, *i), start = j;
	if (scan_string(p, n, &j) != 0)
		return -1;
	if (key)
		set_val(key, JSCAN_STRING, p, start, j);
	j = skip_ws(p, n, j);
	if (j >= n || p[j] != ':')
		return -1;
	*i = skip_ws(p, n, j + 1);
	return 0;
}

/* One value at p[*i] (no whitespace first), checked all through; *i moves
 * past it and *type is its type. Iterative, with one bit per open
 * container (1 for an object), so that nesting cannot exhaust the stack. */
static int scan_value(const char *p, size_t n, size_t *i, enum jscan_type *type)
{
	uint32_t objects = 0;
	int depth = 0;
	size_t j = *i;
	bool outer = true;

	for (;;) {
		/* A value starts at j. */
		enum jscan_type t;
		int rc = 0;
		char c = j < n ? p[j] : '\0';
		if (c == '{' || c == '[') {
			t = c == '{' ? JSCAN_OBJECT : JSCAN_ARRAY;
			if (outer)
				*type = t;
			outer = false;
			if (depth == JSCAN_DEPTH_MAX)
				return -1;
			objects = (objects & ~(UINT32_C(1) << depth)) |
				  (uint32_t)(c == '{') << depth;
			depth++;
			j = skip_ws(p, n, j + 1);
			if (j < n && p[j] == (c == '{' ? '}' : ']')) {
				j++;
				depth--;
			} else {
				if (c == '{' && scan_key(p, n, &j, NULL) != 0)
					return -1;
				continue; /* the first member's or element's value */
			}
		} else {
			if (c == '"') {
				t = JSCAN_STRING;
				rc = scan_string(p, n, &j);
			} else if (c == '-' || is_digit(c)) {
				t = JSCAN_NUMBER;
				rc = scan_number(p, n, &j);
			} else if (c == 't') {
				t = JSCAN_TRUE;
				rc = scan_word(p, n, &j, "true");
			} else if (c == 'f') {
				t = JSCAN_FALSE;
				rc = scan_word(p, n, &j, "false");
			} else if (c == 'n') {
				t = JSCAN_NULL;
				rc = scan_word(p, n, &j, "null");
			} else {
				return -1;
			}
			if (rc != 0)
				return -1;
			if (outer)
				*type = t;
			outer = false;
		}
		/* A value ended at j: close what it completes, or go on to the
		 * next member or element. */
		for (;;) {
			if (depth == 0) {
				*i = j;
				return 0;
			}
			bool obj = (objects >> (depth - 1)) & 1;
			j = skip_ws(p, n, j);
			if (j < n && p[j] == ',') {
				j = skip_ws(p, n, j + 1);
				if (obj && scan_key(p, n, &j, NULL) != 0)
					return -1;
				break;
			}
			if (j >= n || p[j] != (obj ? '}' : ']'))
				return -1;
			j++;
			depth--;
		}
	}
}

int jscan_parse(const char *p, size_t n, struct jscan_val *v)
{
	enum jscan_type t = JSCAN_NULL;
	size_t start = skip_ws(p, n, 0), end = start;
	if (scan_value(p, n, &end, &t) != 0 || skip_ws(p, n, end) != n)
		return -1;
	set_val(v, t, p, start, end);
	return 0;
}

void jscan_iter_init(struct jscan_iter *it, const struct jscan_val *v)
{
	it->p = v->p;
	it->n = v->n;
	it->i = 1; /* past the bracket */
	it->object = v->type == JSCAN_OBJECT;
	if (v->type != JSCAN_OBJECT && v->type != JSCAN_ARRAY)
		it->i = it->n; /* nothing to iterate */
}

int jscan_next(struct jscan_iter *it, struct jscan_val *key, struct jscan_val *val)
{
	const char *p = it->p;
	size_t n = it->n;
	size_t j = skip_ws(p, n, it->i);
	enum jscan_type t = JSCAN_NULL;

	if (j < n && p[j] == ',')
		j = skip_ws(p, n, j + 1);
	if (j >= n || p[j] == '}' || p[j] == ']') {
		it->i = n;
		return 0;
	}
	key->type = JSCAN_STRING;
	key->p = NULL;
	key->n = 0;
	/* Both were checked when the container was read: neither fails here. */
	if (it->object && scan_key(p, n, &j, key) != 0) {
		it->i = n;
		return 0;
	}
	size_t start = j;
	if (scan_value(p, n, &j, &t) != 0) {
		it->i = n;
		return 0;
	}
	set_val(val, t, p, start, j);
	it->i = j;
	return 1;
}
