/* libFuzzer target for src/proxyproto.c (and src/cidr.c).
 *
 * The input is the first bytes of a connection to a proxy_protocol
 * listener. It is parsed with every accept mask and at every length, the
 * way the daemon reads it (a few bytes at a time): a result never changes
 * once it is an error or a complete header, a complete header has the same
 * length and fields however much follows it, and what it says is checked
 * against the bytes. The input as text is also a proxy_from range, which
 * must contain its own address. Invariants are checked with abort() so that
 * a wrong answer is reported like a crash; ASan/UBSan catch the rest. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "iotgw/cidr.h"
#include "iotgw/proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void check_why(const char *why)
{
	check(why[0] != '\0');
	for (size_t i = 0; why[i]; i++)
		check(why[i] >= 0x20 && why[i] <= 0x7e);
}

static bool same(const struct pp_header *a, const struct pp_header *b)
{
	if (a->len != b->len || a->version != b->version || a->has_addr != b->has_addr ||
	    a->ssl != b->ssl || a->ssl_client != b->ssl_client || a->ssl_verify != b->ssl_verify ||
	    a->cn != b->cn || a->cn_len != b->cn_len || a->crc32c != b->crc32c)
		return false;
	return !a->has_addr || (memcmp(&a->src, &b->src, sizeof a->src) == 0 &&
				memcmp(&a->dst, &b->dst, sizeof a->dst) == 0);
}

/* What a complete header says, against its bytes. */
static void check_done(const uint8_t *p, size_t n, unsigned accept, const struct pp_header *h)
{
	check(h->len >= 8 && h->len <= n && h->len <= PP_HEADER_MAX);
	check(h->version == 1 || h->version == 2);
	check(accept & (h->version == 1 ? PP_ACCEPT_V1 : PP_ACCEPT_V2));
	if (h->version == 1) {
		check(h->len <= PP_V1_MAX && memcmp(p, "PROXY ", 6) == 0);
		check(p[h->len - 2] == '\r' && p[h->len - 1] == '\n');
		check(memchr(p, '\n', h->len - 1) == NULL && memchr(p, '\r', h->len - 2) == NULL);
		check(!h->ssl && !h->cn && !h->crc32c);
	} else {
		check(h->len == PP_V2_FIXED + ((size_t)p[14] << 8 | p[15]));
		check(p[12] >> 4 == 2);
		check(h->cn == NULL || (h->ssl && h->cn >= p + PP_V2_FIXED &&
					h->cn + h->cn_len <= p + h->len));
	}
	if (h->has_addr) {
		check(h->src.ss_family == h->dst.ss_family);
		check(h->src.ss_family == AF_INET || h->src.ss_family == AF_INET6);
		char a[64];
		pp_format_addr(&h->src, a, sizeof a);
		check(strlen(a) < sizeof a && a[0] != 'u');
	}
	char cn[65], why[256] = "";
	if (pp_verified_cn(h, cn, sizeof cn, why, sizeof why) == 0) {
		check(h->cn && strlen(cn) == h->cn_len && h->ssl_verify == 0);
		check(memcmp(cn, h->cn, h->cn_len) == 0);
	} else {
		check(cn[0] == '\0');
		check_why(why);
	}
}

static void one_mask(const uint8_t *data, size_t size, unsigned accept)
{
	struct pp_header h, hp;
	char why[256] = "";
	enum pp_result r = pp_parse(data, size, accept, &h, why, sizeof why);
	check(r >= PP_ERROR && r <= PP_ABSENT);
	if (r == PP_ERROR)
		check_why(why);
	if (r == PP_ABSENT)
		check((accept & PP_ACCEPT_NONE) && size > 0 && data[0] != 'P' && data[0] != '\r');
	if (r != PP_DONE)
		check(h.len == 0);
	if (r == PP_DONE) {
		check_done(data, size, accept, &h);
		/* The header alone says the same; a byte less is a valid start. */
		check(pp_parse(data, h.len, accept, &hp, NULL, 0) == PP_DONE && same(&h, &hp));
		check(pp_parse(data, h.len - 1, accept, &hp, NULL, 0) == PP_INCOMPLETE);
	}
	/* Read as the daemon does, one length after another: an error or a
	 * complete header is final. (Bounded: the daemon never holds more.) */
	size_t upto = size < PP_HEADER_MAX + 16 ? size : PP_HEADER_MAX + 16;
	enum pp_result last = PP_INCOMPLETE;
	for (size_t n = 0; n <= upto; n++) {
		enum pp_result rn = pp_parse(data, n, accept, &hp, why, sizeof why);
		if (last == PP_ERROR || last == PP_ABSENT)
			check(rn == last);
		if (last == PP_DONE)
			check(rn == PP_DONE && hp.len == h.len);
		if (rn == PP_DONE && last != PP_DONE)
			check(r == PP_DONE && hp.len == h.len);
		last = rn;
	}
	if (size <= upto)
		check(last == r);
}

/* The input as a proxy_from range: one that parses contains its own
 * address. */
static void range(const uint8_t *data, size_t size)
{
	char text[80];
	if (size >= sizeof text)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	struct cidr c;
	char why[160] = "";
	if (cidr_parse(text, &c, why, sizeof why) != 0) {
		check_why(why);
		return;
	}
	check(c.family == AF_INET ? c.prefix <= 32 : c.family == AF_INET6 && c.prefix <= 128);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	ss.ss_family = (sa_family_t)c.family;
	if (c.family == AF_INET)
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, c.addr, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, c.addr, 16);
	check(cidr_contains(&c, 1, (struct sockaddr *)&ss));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned masks[] = {
		PP_ACCEPT_V1,
		PP_ACCEPT_V2,
		PP_ACCEPT_V1 | PP_ACCEPT_V2,
		PP_ACCEPT_V1 | PP_ACCEPT_V2 | PP_ACCEPT_NONE,
	};
	for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++)
		one_mask(data, size, masks[i]);
	/* A header accepted with both versions is the same with its own. */
	struct pp_header both, own;
	if (pp_parse(data, size, PP_ACCEPT_V1 | PP_ACCEPT_V2, &both, NULL, 0) == PP_DONE) {
		unsigned mask = both.version == 1 ? PP_ACCEPT_V1 : PP_ACCEPT_V2;
		check(pp_parse(data, size, mask, &own, NULL, 0) == PP_DONE && same(&both, &own));
	}
	range(data, size);
	return 0;
}
