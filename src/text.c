/* text: see include/iotgw/text.h. */
#include "iotgw/text.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The length of the one well-formed UTF-8 sequence at s[0..n), 0 if there is
 * none. Unicode 3.9 table 3-7: the tightened ranges of the second byte
 * exclude overlong forms (E0, F0), the surrogates U+D800..U+DFFF (ED) and
 * code points above U+10FFFF (F4); C0, C1 and F5..FF never lead. */
static size_t seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t more;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		more = 1;
	} else if (c >= 0xe0 && c <= 0xef) {
		more = 2;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		more = 3;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0; /* continuation byte, C0/C1 overlong lead, F5..FF */
	}
	if (n - 1 < more || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k <= more; k++)
		if ((s[k] & 0xc0u) != 0x80u)
			return 0;
	return more + 1;
}

size_t text_utf8_span(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0;
	while (i < n) {
		if (s[i] < 0x80) { /* the usual case, without a call */
			i++;
			continue;
		}
		size_t k = seq_len(s + i, n - i);
		if (k == 0)
			break;
		i += k;
	}
	return i;
}

const char *text_quote(char *dst, size_t cap, const char *p, size_t n, size_t max,
		       unsigned flags)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)p;
	bool quoted = !(flags & TEXT_UNQUOTED), utf8 = flags & TEXT_KEEP_UTF8;
	size_t o = 0;

	if (cap < TEXT_QUOTE_CAP(0)) {
		if (cap > 0)
			dst[0] = '\0';
		return dst;
	}
	if (cap < TEXT_QUOTE_CAP(max))
		max = (cap - TEXT_QUOTE_CAP(0)) / 4;
	size_t shown = n < max ? n : max;
	if (utf8)
		while (shown > 0 && shown < n && (s[shown] & 0xc0u) == 0x80u)
			shown--; /* do not cut a character in two */
	if (quoted)
		dst[o++] = '"';
	for (size_t i = 0; i < shown;) {
		unsigned char c = s[i];
		size_t k = utf8 && c >= 0x80 ? seq_len(s + i, shown - i) : 0;
		if (k > 0) {
			memcpy(dst + o, s + i, k);
			o += k;
			i += k;
			continue;
		}
		if (quoted && (c == '"' || c == '\\')) {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
		i++;
	}
	if (quoted)
		dst[o++] = '"';
	if (shown < n && quoted)
		snprintf(dst + o, cap - o, "... (%zu bytes)", n);
	else if (shown < n)
		memcpy(dst + o, "...", 4);
	else
		dst[o] = '\0';
	return dst;
}

const char *text_peer_address(const char *peer, char *out, size_t cap)
{
	if (!peer)
		return NULL;
	const char *start = peer, *end = strrchr(peer, ':');
	if (peer[0] == '[') {
		start = peer + 1;
		end = strchr(start, ']');
	}
	if (!end || end <= start || (size_t)(end - start) >= cap)
		return NULL;
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
	return out;
}
