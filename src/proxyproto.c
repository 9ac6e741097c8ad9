/* proxyproto: the PROXY protocol header, versions 1 and 2; see proxyproto.h.
 * Section numbers are those of HAProxy's doc/proxy-protocol.txt. */
#include "iotgw/proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "iotgw/text.h"

/* 2.2: twelve bytes no other protocol starts with (a NUL in the middle). */
static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
/* 2.1: "PROXY" and exactly one space. */
static const uint8_t v1_sig[6] = {'P', 'R', 'O', 'X', 'Y', ' '};

#define PP2_CMD_LOCAL 0x0
#define PP2_CMD_PROXY 0x1
#define PP2_AF_UNSPEC 0x0
#define PP2_AF_INET 0x1
#define PP2_AF_INET6 0x2
#define PP2_AF_UNIX 0x3
#define PP2_PROTO_UNSPEC 0x0
#define PP2_PROTO_STREAM 0x1
#define PP2_PROTO_DGRAM 0x2
#define PP2_TYPE_CRC32C 0x03
#define PP2_TYPE_SSL 0x20
#define PP2_SUBTYPE_SSL_CN 0x22
#define TLV_HEAD 3           /* type, length (2 bytes) */
#define SSL_FIXED 5          /* client (1 byte), verify (4 bytes) */
#define QUOTE_MAX 40         /* bytes of a bad v1 field shown in a reason */

__attribute__((format(printf, 3, 4))) static enum pp_result fail(char *why, size_t whylen,
								 const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return PP_ERROR;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static size_t be16(const uint8_t *p)
{
	return (size_t)p[0] << 8 | p[1];
}

/* The first bytes as hex ("16 03 01 00 a5 ..."), for a reason. */
static const char *hex_start(const uint8_t *p, size_t n, char *out, size_t cap)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && i < 8 && used + 4 < cap; i++)
		used += (size_t)snprintf(out + used, cap - used, "%s%02x", i ? " " : "", p[i]);
	if (n > 8 && used + 5 < cap)
		snprintf(out + used, cap - used, " ...");
	return out;
}

/* 2.2.3: CRC32c (Castagnoli, RFC 4960 appendix B), reflected, bit by bit:
 * a header is checked once per connection, a table would not pay. */
static uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return crc;
}

/* ---- version 1 ---- */

/* A decimal field of 1-5 digits without leading zeros (2.1: no octal
 * confusion), at most 65535. */
static bool v1_port(const char *f, size_t n, uint16_t *out)
{
	if (n == 0 || n > 5 || (n > 1 && f[0] == '0'))
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (f[i] < '0' || f[i] > '9')
			return false;
		v = v * 10 + (unsigned)(f[i] - '0');
	}
	if (v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* 2.1: exactly four decimal numbers 0-255, one dot between each, no
 * leading zeros. Written out rather than inet_pton, whose acceptance of
 * such details is the C library's to decide. */
static bool v1_ipv4(const char *f, size_t n, uint8_t out[4])
{
	size_t i = 0;
	for (int k = 0; k < 4; k++) {
		if (k > 0) {
			if (i >= n || f[i] != '.')
				return false;
			i++;
		}
		size_t start = i;
		unsigned v = 0;
		while (i < n && f[i] >= '0' && f[i] <= '9' && i - start < 3)
			v = v * 10 + (unsigned)(f[i++] - '0');
		if (i == start || v > 255 || (i - start > 1 && f[start] == '0'))
			return false;
		out[k] = (uint8_t)v;
	}
	return i == n;
}

/* One address field of family af into ss (the port is set later). */
static bool v1_addr(int af, const char *f, size_t n, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		uint8_t a[4];
		if (!v1_ipv4(f, n, a))
			return false;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a, 4);
		return true;
	}
	char text[INET6_ADDRSTRLEN];
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (n >= sizeof text)
		return false;
	memcpy(text, f, n);
	text[n] = '\0';
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
		return false;
	sin6->sin6_family = AF_INET6;
	return true;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* The fields of a v1 line after "PROXY ", CRLF excluded (2.1): the
 * protocol, then for TCP4 and TCP6 the source and destination addresses
 * and ports, each after exactly one space. */
static enum pp_result v1_fields(const char *s, size_t n, struct pp_header *h, char *why,
				size_t whylen)
{
	static const char *const names[] = {"source address", "destination address",
					    "source port", "destination port"};
	char q[TEXT_QUOTE_CAP(QUOTE_MAX)];
	size_t plen = 0;
	while (plen < n && s[plen] != ' ')
		plen++;
	if (plen == 7 && memcmp(s, "UNKNOWN", 7) == 0)
		return PP_DONE; /* 2.1: the rest of the line is ignored; no address */
	int af;
	if (plen == 4 && memcmp(s, "TCP4", 4) == 0)
		af = AF_INET;
	else if (plen == 4 && memcmp(s, "TCP6", 4) == 0)
		af = AF_INET6;
	else if (n == 0)
		return fail(why, whylen, "v1: nothing after PROXY (TCP4, TCP6 or UNKNOWN)");
	else if (plen == 0)
		return fail(why, whylen, "v1: a second space after PROXY (exactly one separates "
					 "the fields)");
	else
		return fail(why, whylen, "v1: unknown protocol %s (TCP4, TCP6 or UNKNOWN)",
			    text_quote(q, sizeof q, s, plen, QUOTE_MAX, 0));
	const char *proto = af == AF_INET ? "TCP4" : "TCP6";
	uint16_t ports[2] = {0, 0};
	size_t pos = plen;
	for (int k = 0; k < 4; k++) {
		if (pos >= n)
			return fail(why, whylen, "v1: %s line ends before its %s", proto, names[k]);
		pos++; /* the one space (fields end only at a space) */
		size_t start = pos;
		while (pos < n && s[pos] != ' ')
			pos++;
		const char *f = s + start;
		size_t flen = pos - start;
		if (flen == 0)
			return fail(why, whylen,
				    "v1: an empty %s (two spaces, or a space before CRLF; exactly "
				    "one space separates the fields)",
				    names[k]);
		bool ok = k < 2 ? v1_addr(af, f, flen, k == 0 ? &h->src : &h->dst)
				: v1_port(f, flen, &ports[k - 2]);
		if (!ok)
			return fail(why, whylen, "v1: %s %s is not %s", names[k],
				    text_quote(q, sizeof q, f, flen, QUOTE_MAX, 0),
				    k >= 2	     ? "a port (0-65535, no leading zeros)"
				    : af == AF_INET ? "an IPv4 address (a.b.c.d, no leading zeros)"
						    : "an IPv6 address");
	}
	if (pos < n)
		return fail(why, whylen, "v1: %s after the destination port",
			    text_quote(q, sizeof q, s + pos, n - pos, QUOTE_MAX, 0));
	set_port(&h->src, ports[0]);
	set_port(&h->dst, ports[1]);
	h->has_addr = true;
	return PP_DONE;
}

/* 2.1: a line of printable US-ASCII ending in CRLF within 107 bytes; no
 * lone CR or LF. */
static enum pp_result parse_v1(const uint8_t *p, size_t n, struct pp_header *h, char *why,
			       size_t whylen)
{
	size_t lim = n < PP_V1_MAX ? n : PP_V1_MAX;
	for (size_t i = sizeof v1_sig; i < lim; i++) {
		uint8_t c = p[i];
		if (c == '\r') {
			if (i + 2 > PP_V1_MAX)
				break;
			if (i + 1 == n)
				return PP_INCOMPLETE;
			if (p[i + 1] != '\n')
				return fail(why, whylen, "v1: CR without LF at byte %zu", i);
			h->len = i + 2;
			return v1_fields((const char *)p + sizeof v1_sig, i - sizeof v1_sig, h, why,
					 whylen);
		}
		if (c == '\n')
			return fail(why, whylen, "v1: LF without CR at byte %zu", i);
		if (c < 0x20 || c > 0x7e)
			return fail(why, whylen, "v1: byte 0x%02x at %zu is not printable ASCII", c,
				    i);
	}
	if (n < PP_V1_MAX)
		return PP_INCOMPLETE;
	return fail(why, whylen, "v1: no CRLF within the first %d bytes", PP_V1_MAX);
}

/* ---- version 2 ---- */

/* 2.2.6: client (1 byte), verify (4 bytes, 0 when the client's certificate
 * was verified), then sub-TLVs, of which the CN is used. */
static enum pp_result parse_ssl(const uint8_t *v, size_t n, struct pp_header *h, char *why,
				size_t whylen)
{
	if (h->ssl)
		return fail(why, whylen, "v2: two SSL TLVs");
	if (n < SSL_FIXED)
		return fail(why, whylen, "v2: SSL TLV of %zu bytes (client and verify take 5)", n);
	h->ssl = true;
	h->ssl_client = v[0];
	h->ssl_verify = be32(v + 1);
	for (size_t off = SSL_FIXED; off < n;) {
		if (n - off < TLV_HEAD)
			return fail(why, whylen, "v2: %zu stray byte(s) at the end of the SSL TLV",
				    n - off);
		uint8_t type = v[off];
		size_t len = be16(v + off + 1);
		if (len > n - off - TLV_HEAD)
			return fail(why, whylen,
				    "v2: SSL sub-TLV 0x%02x says %zu bytes, %zu are left in "
				    "the SSL TLV",
				    type, len, n - off - TLV_HEAD);
		if (type == PP2_SUBTYPE_SSL_CN) {
			if (h->cn)
				return fail(why, whylen, "v2: two CN sub-TLVs in the SSL TLV");
			h->cn = v + off + TLV_HEAD;
			h->cn_len = len;
		}
		off += TLV_HEAD + len;
	}
	return PP_DONE;
}

/* 2.2: the TLVs between the address block and the header's end. Unknown
 * types (ALPN, authority, NOOP, unique id, netns, custom) are skipped;
 * their lengths must still add up. A CRC32C, when present, covers the whole
 * header with its own value taken as zeros (2.2.3). */
static enum pp_result parse_tlvs(const uint8_t *p, size_t off, size_t total,
				 struct pp_header *h, char *why, size_t whylen)
{
	const uint8_t *crc = NULL;
	while (off < total) {
		if (total - off < TLV_HEAD)
			return fail(why, whylen,
				    "v2: %zu stray byte(s) after the last TLV (a TLV takes at "
				    "least 3)",
				    total - off);
		uint8_t type = p[off];
		size_t len = be16(p + off + 1);
		const uint8_t *v = p + off + TLV_HEAD;
		if (len > total - off - TLV_HEAD)
			return fail(why, whylen,
				    "v2: TLV 0x%02x at byte %zu says %zu bytes, %zu are left in "
				    "the header",
				    type, off, len, total - off - TLV_HEAD);
		if (type == PP2_TYPE_CRC32C) {
			if (crc)
				return fail(why, whylen, "v2: two CRC32C TLVs");
			if (len != 4)
				return fail(why, whylen, "v2: CRC32C TLV of %zu bytes (it has 4)",
					    len);
			crc = v;
		} else if (type == PP2_TYPE_SSL && parse_ssl(v, len, h, why, whylen) != PP_DONE) {
			return PP_ERROR;
		}
		off += TLV_HEAD + len;
	}
	if (crc) {
		static const uint8_t zeros[4];
		uint32_t c = crc32c_update(0xffffffffu, p, (size_t)(crc - p));
		c = crc32c_update(c, zeros, sizeof zeros);
		c = crc32c_update(c, crc + 4, total - (size_t)(crc + 4 - p)) ^ 0xffffffffu;
		if (c != be32(crc))
			return fail(why, whylen,
				    "v2: CRC32C mismatch: the header says %08x, its bytes give "
				    "%08x",
				    be32(crc), c);
		h->crc32c = true;
	}
	return PP_DONE;
}

/* 2.2: signature, version and command, family and protocol, length, then
 * the address block and TLVs. What the fixed part gets wrong is an error
 * as soon as it is seen, before the rest arrives. */
static enum pp_result parse_v2(const uint8_t *p, size_t n, struct pp_header *h, char *why,
			       size_t whylen)
{
	if (n <= 12)
		return PP_INCOMPLETE;
	if (p[12] >> 4 != 2)
		return fail(why, whylen, "v2: version %u (2 is the only one)", p[12] >> 4);
	unsigned cmd = p[12] & 0xfu;
	if (cmd != PP2_CMD_LOCAL && cmd != PP2_CMD_PROXY)
		return fail(why, whylen, "v2: command 0x%x (0 LOCAL or 1 PROXY)", cmd);
	if (n < PP_V2_FIXED)
		return PP_INCOMPLETE;
	size_t total = PP_V2_FIXED + be16(p + 14);
	if (total > PP_HEADER_MAX)
		return fail(why, whylen, "v2: a header of %zu bytes (at most %d are accepted)",
			    total, PP_HEADER_MAX);
	unsigned fam = p[13] >> 4, proto = p[13] & 0xfu;
	size_t alen = 0;
	if (cmd == PP2_CMD_PROXY) {
		if (fam > PP2_AF_UNIX)
			return fail(why, whylen,
				    "v2: address family 0x%x (0 UNSPEC, 1 INET, 2 INET6, 3 UNIX)",
				    fam);
		if (proto > PP2_PROTO_DGRAM)
			return fail(why, whylen,
				    "v2: transport protocol 0x%x (0 UNSPEC, 1 STREAM, 2 DGRAM)",
				    proto);
		if (proto == PP2_PROTO_DGRAM)
			return fail(why, whylen, "v2: a datagram (DGRAM) connection relayed over "
						 "a TCP stream");
		static const size_t block[] = {0, 12, 36, 216};
		static const char *const what[] = {"", "TCP over IPv4", "TCP over IPv6",
						   "a UNIX stream"};
		if (proto == PP2_PROTO_STREAM)
			alen = block[fam];
		if (total - PP_V2_FIXED < alen)
			return fail(why, whylen, "v2: %zu address bytes, %s needs %zu",
				    total - PP_V2_FIXED, what[fam], alen);
	}
	if (n < total)
		return PP_INCOMPLETE;
	h->len = total;
	/* LOCAL (a balancer's own connection, e.g. a health check), and
	 * UNSPEC: the connection's own endpoints stand and the rest is
	 * ignored (2.2). */
	if (cmd == PP2_CMD_LOCAL || fam == PP2_AF_UNSPEC || proto == PP2_PROTO_UNSPEC)
		return PP_DONE;
	const uint8_t *a = p + PP_V2_FIXED;
	if (fam == PP2_AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&h->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&h->dst;
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2); /* network order, as on the wire */
		memcpy(&d->sin_port, a + 10, 2);
		h->has_addr = true;
	} else if (fam == PP2_AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&h->dst;
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
		h->has_addr = true;
	} /* AF_UNIX: a path, not an address iotgw can name a peer by */
	return parse_tlvs(p, PP_V2_FIXED + alen, total, h, why, whylen);
}

enum pp_result pp_parse(const uint8_t *p, size_t n, unsigned accept, struct pp_header *h,
			char *why, size_t whylen)
{
	memset(h, 0, sizeof *h);
	if (why && whylen)
		why[0] = '\0';
	if (n == 0)
		return PP_INCOMPLETE;
	if ((accept & PP_ACCEPT_NONE) && p[0] != v1_sig[0] && p[0] != v2_sig[0])
		return PP_ABSENT;
	unsigned version = 0;
	if (memcmp(p, v1_sig, n < sizeof v1_sig ? n : sizeof v1_sig) == 0)
		version = 1;
	else if (memcmp(p, v2_sig, n < sizeof v2_sig ? n : sizeof v2_sig) == 0)
		version = 2;
	if (version == 0) {
		char hex[48];
		return fail(why, whylen,
			    "not a PROXY protocol header: the connection starts with %s",
			    hex_start(p, n, hex, sizeof hex));
	}
	if (n < (version == 1 ? sizeof v1_sig : sizeof v2_sig))
		return PP_INCOMPLETE;
	if (!(accept & (version == 1 ? PP_ACCEPT_V1 : PP_ACCEPT_V2)))
		return fail(why, whylen,
			    "a PROXY protocol v%u header, but only v%u is accepted here", version,
			    version == 1 ? 2 : 1);
	h->version = version;
	enum pp_result r = version == 1 ? parse_v1(p, n, h, why, whylen)
					: parse_v2(p, n, h, why, whylen);
	if (r != PP_DONE) {
		memset(h, 0, sizeof *h);
		return r;
	}
	return PP_DONE;
}

int pp_verified_cn(const struct pp_header *h, char *out, size_t cap, char *why, size_t whylen)
{
	const char *no = NULL;
	if (cap)
		out[0] = '\0';
	if (!h->ssl)
		no = "the PROXY header has no SSL TLV (the balancer must terminate TLS and send "
		     "it: send-proxy-v2-ssl-cn)";
	else if (!(h->ssl_client & PP_CLIENT_SSL))
		no = "the balancer says the client did not connect over TLS";
	else if (!(h->ssl_client & (PP_CLIENT_CERT_CONN | PP_CLIENT_CERT_SESS)))
		no = "the balancer says the client presented no certificate";
	else if (!h->cn || h->cn_len == 0)
		no = "the balancer sent no client certificate CN";
	if (no) {
		fail(why, whylen, "%s", no);
		return -1;
	}
	if (h->ssl_verify != 0) {
		fail(why, whylen, "the balancer could not verify the client certificate (verify "
				  "result %lu)",
		     (unsigned long)h->ssl_verify);
		return -1;
	}
	if (h->cn_len >= cap) {
		fail(why, whylen, "the client certificate CN has %zu bytes (at most %zu)",
		     h->cn_len, cap ? cap - 1 : 0);
		return -1;
	}
	for (size_t i = 0; i < h->cn_len; i++) {
		if (h->cn[i] < 0x20 || h->cn[i] > 0x7e) {
			fail(why, whylen,
			     "the client certificate CN has byte 0x%02x at %zu (printable ASCII "
			     "only)",
			     h->cn[i], i);
			return -1;
		}
	}
	memcpy(out, h->cn, h->cn_len);
	out[h->cn_len] = '\0';
	return 0;
}

void pp_format_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		snprintf(out, cap, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
		snprintf(out, cap, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
	} else {
		snprintf(out, cap, "unknown");
	}
}
