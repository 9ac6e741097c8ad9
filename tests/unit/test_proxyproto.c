/* Unit tests for src/proxyproto.c (cmocka): the PROXY protocol header, v1
 * and v2, from tables. Every valid header is also read a byte short at
 * every length (always INCOMPLETE), with the device's bytes behind it
 * (never read), and, heap-copied to its exact size, under ASan. Every
 * error has a row with a part of its reason; each is also read at every
 * shorter length, where it may be INCOMPLETE or an error, and once an
 * error, an error from then on. Then the verified CN, the address
 * format, and the CIDR ranges of proxy_from (src/cidr.c). Section numbers
 * are those of HAProxy's doc/proxy-protocol.txt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "iotgw/cidr.h"
#include "iotgw/proxyproto.h"

#define V1 PP_ACCEPT_V1
#define V2 PP_ACCEPT_V2
#define BOTH (PP_ACCEPT_V1 | PP_ACCEPT_V2)
#define ANY (PP_ACCEPT_V1 | PP_ACCEPT_V2 | PP_ACCEPT_NONE)

/* ---- building headers ---- */

struct hb {
	uint8_t b[2048];
	size_t len;
};

static void put(struct hb *h, const void *p, size_t n)
{
	assert_true(n <= sizeof h->b - h->len);
	memcpy(h->b + h->len, p, n);
	h->len += n;
}

static void put8(struct hb *h, unsigned v)
{
	uint8_t b = (uint8_t)v;
	put(h, &b, 1);
}

static void put16(struct hb *h, unsigned v)
{
	put8(h, v >> 8);
	put8(h, v & 0xff);
}

static void puts_(struct hb *h, const char *s)
{
	put(h, s, strlen(s));
}

static const uint8_t SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* Signature, version/command, family/protocol and a length fixed by end(). */
static void v2(struct hb *h, unsigned vercmd, unsigned fam)
{
	h->len = 0;
	put(h, SIG, sizeof SIG);
	put8(h, vercmd);
	put8(h, fam);
	put16(h, 0);
}

static void end(struct hb *h)
{
	size_t n = h->len - 16;
	h->b[14] = (uint8_t)(n >> 8);
	h->b[15] = (uint8_t)n;
}

/* TCP over IPv4: 192.0.2.10:40001 -> 198.51.100.1:8883. */
static void addr4(struct hb *h)
{
	static const uint8_t a[12] = {192, 0, 2, 10, 198, 51, 100, 1, 0x9c, 0x41, 0x22, 0xb3};
	put(h, a, sizeof a);
}

/* TCP over IPv6: [2001:db8::7]:65535 -> [2001:db8::1]:8883. */
static void addr6(struct hb *h)
{
	uint8_t a[36] = {0};
	a[0] = 0x20, a[1] = 0x01, a[2] = 0x0d, a[3] = 0xb8, a[15] = 7;
	a[16] = 0x20, a[17] = 0x01, a[18] = 0x0d, a[19] = 0xb8, a[31] = 1;
	a[32] = 0xff, a[33] = 0xff, a[34] = 0x22, a[35] = 0xb3;
	put(h, a, sizeof a);
}

static void tlv(struct hb *h, unsigned type, const void *v, size_t n)
{
	put8(h, type);
	put16(h, (unsigned)n);
	put(h, v, n);
}

/* An SSL TLV: client bits, verify, then a version and (cn != NULL) a CN. */
static void ssl_tlv(struct hb *h, unsigned client, uint32_t verify, const char *cn)
{
	struct hb v = {.len = 0};
	put8(&v, client);
	put8(&v, verify >> 24);
	put8(&v, (verify >> 16) & 0xff);
	put8(&v, (verify >> 8) & 0xff);
	put8(&v, verify & 0xff);
	tlv(&v, 0x21, "TLSv1.3", 7);
	if (cn)
		tlv(&v, 0x22, cn, strlen(cn));
	tlv(h, 0x20, v.b, v.len);
}

/* CRC32c, table-driven (the module under test computes it bit by bit). */
static uint32_t ref_crc32c(const uint8_t *p, size_t n)
{
	static uint32_t table[256];
	if (!table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
			table[i] = c;
		}
	}
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* A CRC32C TLV last, its value computed over the finished header
 * (plus delta, to make it wrong). */
static void crc_tlv(struct hb *h, uint32_t delta)
{
	static const uint8_t zero[4];
	tlv(h, 0x03, zero, 4);
	end(h);
	uint32_t c = ref_crc32c(h->b, h->len) + delta;
	uint8_t *at = h->b + h->len - 4;
	at[0] = (uint8_t)(c >> 24), at[1] = (uint8_t)(c >> 16), at[2] = (uint8_t)(c >> 8);
	at[3] = (uint8_t)c;
}

/* ---- the headers of the tables ---- */

static void b_v1_tcp4(struct hb *h)
{
	puts_(h, "PROXY TCP4 192.0.2.10 198.51.100.1 40001 8883\r\n");
}
static void b_v1_tcp4_max(struct hb *h)
{
	puts_(h, "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
}
static void b_v1_tcp4_zero(struct hb *h)
{
	puts_(h, "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n");
}
static void b_v1_tcp6(struct hb *h)
{
	puts_(h, "PROXY TCP6 2001:db8::7 2001:db8::1 65535 8883\r\n");
}
/* 2.1: the longest line, 104 bytes. */
static void b_v1_tcp6_long(struct hb *h)
{
	puts_(h, "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
}
static void b_v1_unknown(struct hb *h)
{
	puts_(h, "PROXY UNKNOWN\r\n");
}
/* 2.1: the worst case, 107 bytes; what follows UNKNOWN is ignored. */
static void b_v1_unknown_long(struct hb *h)
{
	puts_(h, "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
}
static void b_v2_tcp4(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	end(h);
}
static void b_v2_tcp6(struct hb *h)
{
	v2(h, 0x21, 0x21);
	addr6(h);
	end(h);
}
/* 2.2: LOCAL (a health check): the family and any bytes are ignored. */
static void b_v2_local(struct hb *h)
{
	v2(h, 0x20, 0x00);
	end(h);
}
static void b_v2_local_bytes(struct hb *h)
{
	v2(h, 0x20, 0x11);
	addr4(h);
	put(h, "\x03\x00", 2); /* would be a broken TLV: LOCAL reads none */
	end(h);
}
static void b_v2_unspec(struct hb *h)
{
	v2(h, 0x21, 0x00);
	put(h, "ignored", 7);
	end(h);
}
static void b_v2_unix(struct hb *h)
{
	uint8_t paths[216] = {'/', 't', 'm', 'p'};
	v2(h, 0x21, 0x31);
	put(h, paths, sizeof paths);
	end(h);
}
/* 2.2: unknown TLVs are skipped: NOOP, ALPN, authority, unique id, netns,
 * custom, and an empty one. */
static void b_v2_tlvs(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	tlv(h, 0x04, "\0\0\0", 3);
	tlv(h, 0x01, "mqtt", 4);
	tlv(h, 0x02, "gw.example", 10);
	tlv(h, 0x05, "0123456789abcdef", 16);
	tlv(h, 0x30, "ns1", 3);
	tlv(h, 0xe0, "", 0);
	end(h);
}
static void b_v2_ssl_cn(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	ssl_tlv(h, PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 0, "dev0001");
	end(h);
}
static void b_v2_ssl_nocert(struct hb *h)
{
	v2(h, 0x21, 0x21);
	addr6(h);
	ssl_tlv(h, PP_CLIENT_SSL, 1, NULL);
	end(h);
}
static void b_v2_crc(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	ssl_tlv(h, PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 0, "dev0002");
	crc_tlv(h, 0);
}
/* The longest header accepted. */
static void b_v2_max(struct hb *h)
{
	static const uint8_t pad[PP_HEADER_MAX];
	v2(h, 0x21, 0x11);
	addr4(h);
	tlv(h, 0x04, pad, PP_HEADER_MAX - 16 - 12 - 3);
	end(h);
}

struct ok_case {
	const char *name;
	void (*build)(struct hb *);
	unsigned accept;
	unsigned version;
	const char *src, *dst; /* NULL: no address */
	const char *cn;        /* NULL: none */
	uint8_t ssl_client;
	uint32_t ssl_verify;
	bool crc32c;
};

/* The addresses of addr4() and addr6(), and no SSL TLV. */
#define A4 "192.0.2.10:40001", "198.51.100.1:8883"
#define A6 "[2001:db8::7]:65535", "[2001:db8::1]:8883"
#define NONE NULL, NULL
#define NO_SSL NULL, 0, 0, false
#define FF "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"

static const struct ok_case ok_cases[] = {
	{"v1 TCP4", b_v1_tcp4, V1, 1, A4, NO_SSL},
	{"v1 TCP4 either", b_v1_tcp4, BOTH, 1, A4, NO_SSL},
	{"v1 TCP4 optional", b_v1_tcp4, ANY, 1, A4, NO_SSL},
	{"v1 TCP4 largest", b_v1_tcp4_max, V1, 1, "255.255.255.255:65535", "255.255.255.255:65535",
	 NO_SSL},
	{"v1 TCP4 zeros", b_v1_tcp4_zero, V1, 1, "0.0.0.0:0", "0.0.0.0:0", NO_SSL},
	{"v1 TCP6", b_v1_tcp6, V1, 1, A6, NO_SSL},
	{"v1 TCP6 longest", b_v1_tcp6_long, V1, 1, FF, FF, NO_SSL},
	{"v1 UNKNOWN", b_v1_unknown, V1, 1, NONE, NO_SSL},
	{"v1 UNKNOWN 107 bytes", b_v1_unknown_long, BOTH, 1, NONE, NO_SSL},
	{"v2 TCP4", b_v2_tcp4, V2, 2, A4, NO_SSL},
	{"v2 TCP4 optional", b_v2_tcp4, ANY, 2, A4, NO_SSL},
	{"v2 TCP6", b_v2_tcp6, BOTH, 2, A6, NO_SSL},
	{"v2 LOCAL", b_v2_local, V2, 2, NONE, NO_SSL},
	{"v2 LOCAL with bytes", b_v2_local_bytes, V2, 2, NONE, NO_SSL},
	{"v2 UNSPEC", b_v2_unspec, V2, 2, NONE, NO_SSL},
	{"v2 UNIX stream", b_v2_unix, V2, 2, NONE, NO_SSL},
	{"v2 unknown TLVs", b_v2_tlvs, V2, 2, A4, NO_SSL},
	{"v2 SSL CN", b_v2_ssl_cn, V2, 2, A4, "dev0001", PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 0,
	 false},
	{"v2 SSL no cert", b_v2_ssl_nocert, V2, 2, A6, NULL, PP_CLIENT_SSL, 1, false},
	{"v2 CRC32C", b_v2_crc, V2, 2, A4, "dev0002", PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 0, true},
	{"v2 longest", b_v2_max, V2, 2, A4, NO_SSL},
};

/* pp_parse on an exact-size heap copy of p[0..n) (ASan sees any overread). */
static enum pp_result parse_copy(const uint8_t *p, size_t n, unsigned accept,
				 struct pp_header *h, char *why, size_t whylen)
{
	uint8_t *c = malloc(n ? n : 1);
	assert_non_null(c);
	if (n)
		memcpy(c, p, n);
	enum pp_result r = pp_parse(c, n, accept, h, why, whylen);
	/* The CN is a view into the input: checked by the caller on p. */
	if (h->cn) {
		assert_true(h->cn >= c && h->cn + h->cn_len <= c + n);
		h->cn = p + (h->cn - c);
	}
	free(c);
	return r;
}

static void check_ok(const struct ok_case *t, const struct hb *hdr, const uint8_t *p, size_t n)
{
	struct pp_header h;
	char why[256] = "";
	enum pp_result r = parse_copy(p, n, t->accept, &h, why, sizeof why);
	if (r != PP_DONE)
		fail_msg("%s: %d (%s)", t->name, r, why);
	assert_int_equal(h.len, hdr->len);
	assert_int_equal(h.version, t->version);
	assert_int_equal(h.has_addr, t->src != NULL);
	if (t->src) {
		char a[64];
		pp_format_addr(&h.src, a, sizeof a);
		assert_string_equal(a, t->src);
		pp_format_addr(&h.dst, a, sizeof a);
		assert_string_equal(a, t->dst);
	}
	assert_int_equal(h.cn != NULL, t->cn != NULL);
	if (t->cn) {
		assert_int_equal(h.cn_len, strlen(t->cn));
		assert_memory_equal(h.cn, t->cn, h.cn_len);
	}
	assert_int_equal(h.ssl, t->ssl_client != 0);
	assert_int_equal(h.ssl_client, t->ssl_client);
	assert_int_equal(h.ssl_verify, t->ssl_verify);
	assert_int_equal(h.crc32c, t->crc32c);
}

static void test_valid(void **state)
{
	(void)state;
	/* What devices send after the header: never part of it. */
	static const uint8_t after[][8] = {
		{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01}, /* a TLS ClientHello */
		{0x10, 0x1a, 0x00, 0x04, 'M', 'Q'},   /* an MQTT CONNECT */
		{'\r', '\n', 'P', 'R', 'O', 'X'},     /* bytes that look like more header */
	};
	for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
		const struct ok_case *t = &ok_cases[i];
		struct hb hdr = {.len = 0};
		t->build(&hdr);
		assert_true(hdr.len <= PP_HEADER_MAX);
		check_ok(t, &hdr, hdr.b, hdr.len);
		for (size_t a = 0; a < sizeof after / sizeof after[0]; a++) {
			struct hb more = hdr;
			put(&more, after[a], sizeof after[a]);
			check_ok(t, &hdr, more.b, more.len);
		}
		/* Truncated at every byte: a valid beginning. */
		for (size_t n = 0; n < hdr.len; n++) {
			struct pp_header h;
			char why[256] = "";
			enum pp_result r = parse_copy(hdr.b, n, t->accept, &h, why, sizeof why);
			if (r != PP_INCOMPLETE)
				fail_msg("%s cut at %zu: %d (%s)", t->name, n, r, why);
		}
	}
}

/* ---- errors ---- */

static void b_tls(struct hb *h)
{
	put(h, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11);
}
static void b_mqtt(struct hb *h)
{
	put(h, "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c", 12);
}
static void b_v1_no_crlf(struct hb *h)
{
	puts_(h, "PROXY UNKNOWN ");
	for (int i = 0; i < 100; i++)
		put8(h, 'a');
}
/* A CRLF that would end at byte 108. */
static void b_v1_crlf_late(struct hb *h)
{
	puts_(h, "PROXY UNKNOWN ");
	for (int i = 0; i < 92; i++)
		put8(h, 'a');
	puts_(h, "\r\n");
}
static void b_v2_short4(struct hb *h)
{
	v2(h, 0x21, 0x11);
	put(h, "\xc0\x00\x02\x0a\xc6\x33\x64\x01\x9c\x41", 10);
	end(h);
}
static void b_v2_short6(struct hb *h)
{
	v2(h, 0x21, 0x21);
	addr4(h);
	end(h);
}
static void b_v2_short_unix(struct hb *h)
{
	uint8_t paths[200] = {0};
	v2(h, 0x21, 0x31);
	put(h, paths, sizeof paths);
	end(h);
}
static void b_v2_too_long(struct hb *h)
{
	static const uint8_t pad[PP_HEADER_MAX];
	v2(h, 0x21, 0x11);
	addr4(h);
	tlv(h, 0x04, pad, PP_HEADER_MAX - 16 - 12 - 2);
	end(h);
}
/* A length near 64 KiB: refused from the fixed part alone. */
static void b_v2_len_huge(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	h->b[14] = 0xff, h->b[15] = 0xf0;
}
static void b_v2_tlv_stray(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	put(h, "\x04\x00", 2);
	end(h);
}
static void b_v2_tlv_overrun(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	put(h, "\x01\x00\x09mqtt", 7);
	end(h);
}
static void b_v2_ssl_short(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	tlv(h, 0x20, "\x07\x00\x00\x00", 4);
	end(h);
}
static void b_v2_ssl_twice(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	ssl_tlv(h, 7, 0, "a");
	ssl_tlv(h, 7, 0, "b");
	end(h);
}
static void b_v2_ssl_sub_overrun(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	tlv(h, 0x20, "\x03\x00\x00\x00\x00\x22\x00\x08" "dev1", 12);
	end(h);
}
static void b_v2_ssl_sub_stray(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	tlv(h, 0x20, "\x03\x00\x00\x00\x00\x22\x00", 7);
	end(h);
}
static void b_v2_cn_twice(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	tlv(h, 0x20, "\x03\x00\x00\x00\x00\x22\x00\x01" "a\x22\x00\x01" "b", 13);
	end(h);
}
static void b_v2_crc_bad(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	crc_tlv(h, 1);
}
static void b_v2_crc_size(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	tlv(h, 0x03, "\0\0\0", 3);
	end(h);
}
static void b_v2_crc_twice(struct hb *h)
{
	v2(h, 0x21, 0x11);
	addr4(h);
	tlv(h, 0x03, "\0\0\0\0", 4);
	crc_tlv(h, 0);
}

struct err_case {
	const char *name;
	void (*build)(struct hb *); /* NULL: bytes, else a v2 header with vercmd and fam */
	unsigned accept;
	const char *why; /* a part of the reason */
	uint8_t vercmd, fam;
	const char *bytes;
	size_t n;
};

#define E(name, build, accept, why) {name, build, accept, why, 0, 0, NULL, 0}
/* The 13th and 14th bytes of an otherwise valid v2 header. */
#define E2(name, vercmd, fam, why) {name, NULL, V2, why, vercmd, fam, NULL, 0}
/* These bytes (a string literal, NULs included). */
#define EB(name, lit, accept, why) {name, NULL, accept, why, 0, 0, lit, sizeof(lit) - 1}

static const struct err_case err_cases[] = {
	EB("HTTP", "GET / HTTP/1.1\r\n\r\n", BOTH,
	   "not a PROXY protocol header: the connection starts with 47 45 54 20 2f 20 48 54 ..."),
	E("TLS without header", b_tls, V2, "starts with 16 03 01 00 a5 01 00 00 ..."),
	E("MQTT without header", b_mqtt, V1, "starts with 10 0c 00 04 4d 51 54 54 ..."),
	EB("lower-case proxy", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", BOTH,
	   "not a PROXY protocol header"),
	EB("v2 signature", "\r\n\r\n\0\r\nQUIT\r", V2, "starts with 0d 0a 0d 0a 00 0d 0a 51 ..."),
	E("v1 on v2 listener", b_v1_tcp4, V2, "a PROXY protocol v1 header, but only v2"),
	E("v2 on v1 listener", b_v2_tcp4, V1, "a PROXY protocol v2 header, but only v1"),
	EB("v1 two spaces after PROXY", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", V1,
	   "a second space after PROXY"),
	EB("v1 nothing", "PROXY \r\n", V1, "nothing after PROXY"),
	EB("v1 TCP5", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", V1,
	   "unknown protocol \"TCP5\" (TCP4, TCP6 or UNKNOWN)"),
	EB("v1 UDP4", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", V1, "unknown protocol \"UDP4\""),
	EB("v1 UNKNOWNX", "PROXY UNKNOWNX\r\n", V1, "unknown protocol \"UNKNOWNX\""),
	E("v1 no CRLF", b_v1_no_crlf, V1, "v1: no CRLF within the first 107 bytes"),
	E("v1 CRLF at 108", b_v1_crlf_late, V1, "v1: no CRLF within the first 107 bytes"),
	EB("v1 lone LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", V1, "v1: LF without CR at byte 30"),
	EB("v1 lone CR", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", V1, "v1: CR without LF at byte 30"),
	EB("v1 NUL", "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", V1,
	   "v1: byte 0x00 at 18 is not printable ASCII"),
	EB("v1 UTF-8", "PROXY TCP4 1.2.3.4 5.6.7.\xc3\xa9 1 2\r\n", V1, "v1: byte 0xc3 at 25"),
	EB("v1 three fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", V1,
	   "TCP4 line ends before its destination port"),
	EB("v1 five fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", V1,
	   "\" 3\" after the destination port"),
	EB("v1 double space", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", V1,
	   "an empty destination address"),
	EB("v1 trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", V1,
	   "\" \" after the destination port"),
	EB("v1 octal", "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", V1,
	   "source address \"01.2.3.4\" is not an IPv4 address"),
	EB("v1 256", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", V1,
	   "source address \"1.2.3.256\" is not an IPv4"),
	EB("v1 three octets", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", V1, "source address \"1.2.3\""),
	EB("v1 five octets", "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", V1,
	   "source address \"1.2.3.4.5\""),
	EB("v1 IPv6 in TCP4", "PROXY TCP4 1.2.3.4 ::1 1 2\r\n", V1,
	   "destination address \"::1\" is not an IPv4"),
	EB("v1 IPv4 in TCP6", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", V1,
	   "source address \"1.2.3.4\" is not an IPv6 address"),
	EB("v1 bad IPv6", "PROXY TCP6 2001:db8:::1 ::1 1 2\r\n", V1,
	   "source address \"2001:db8:::1\""),
	EB("v1 long IPv6", "PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0 ::1 1 2\r\n", V1,
	   "is not an IPv6 address"),
	EB("v1 port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", V1,
	   "source port \"65536\" is not a port"),
	EB("v1 port 08883", "PROXY TCP4 1.2.3.4 5.6.7.8 1 08883\r\n", V1,
	   "destination port \"08883\" is not a port"),
	EB("v1 port +1", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", V1, "source port \"+1\""),
	EB("v1 port 100000", "PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n", V1,
	   "source port \"100000\""),
	EB("v1 too short", "PROXY TCP4 1.2.3.4\r\n", V1,
	   "TCP4 line ends before its destination address"),
	E2("v2 version 1", 0x11, 0x11, "v2: version 1 (2 is the only one)"),
	E2("v2 version 3", 0x31, 0x11, "v2: version 3"),
	E2("v2 command 2", 0x22, 0x11, "v2: command 0x2 (0 LOCAL or 1 PROXY)"),
	E2("v2 family 4", 0x21, 0x41, "v2: address family 0x4"),
	E2("v2 protocol 3", 0x21, 0x13, "v2: transport protocol 0x3"),
	E2("v2 UDP", 0x21, 0x12, "v2: a datagram (DGRAM) connection"),
	E("v2 short IPv4 block", b_v2_short4, V2, "v2: 10 address bytes, TCP over IPv4 needs 12"),
	E("v2 short IPv6 block", b_v2_short6, V2, "v2: 12 address bytes, TCP over IPv6 needs 36"),
	E("v2 short UNIX block", b_v2_short_unix, V2, "v2: 200 address bytes, a UNIX stream needs"),
	E("v2 too long", b_v2_too_long, V2, "v2: a header of 537 bytes (at most 536"),
	E("v2 huge length", b_v2_len_huge, V2, "v2: a header of 65536 bytes"),
	E("v2 stray bytes", b_v2_tlv_stray, V2, "v2: 2 stray byte(s) after the last TLV"),
	E("v2 TLV overrun", b_v2_tlv_overrun, V2,
	  "v2: TLV 0x01 at byte 28 says 9 bytes, 4 are left in the header"),
	E("v2 SSL short", b_v2_ssl_short, V2, "v2: SSL TLV of 4 bytes (client and verify take 5)"),
	E("v2 SSL twice", b_v2_ssl_twice, V2, "v2: two SSL TLVs"),
	E("v2 SSL sub-TLV overrun", b_v2_ssl_sub_overrun, V2,
	  "v2: SSL sub-TLV 0x22 says 8 bytes, 4 are left in the SSL TLV"),
	E("v2 SSL stray", b_v2_ssl_sub_stray, V2, "v2: 2 stray byte(s) at the end of the SSL TLV"),
	E("v2 CN twice", b_v2_cn_twice, V2, "v2: two CN sub-TLVs"),
	E("v2 CRC wrong", b_v2_crc_bad, V2, "v2: CRC32C mismatch: the header says"),
	E("v2 CRC size", b_v2_crc_size, V2, "v2: CRC32C TLV of 3 bytes (it has 4)"),
	E("v2 CRC twice", b_v2_crc_twice, V2, "v2: two CRC32C TLVs"),
};

static void test_errors(void **state) {
	(void)state;
	for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
		const struct err_case *t = &err_cases[i];
		struct hb b = {.len = 0};
		if (t->build) {
			t->build(&b);
		} else if (t->bytes) {
			put(&b, t->bytes, t->n);
		} else {
			v2(&b, t->vercmd, t->fam);
			addr4(&b);
			end(&b);
		}
		struct pp_header h;
		char why[256] = "";
		enum pp_result r = parse_copy(b.b, b.len, t->accept, &h, why, sizeof why);
		if (r != PP_ERROR || !strstr(why, t->why))
			fail_msg("%s: %d (%s), expected an error with \"%s\"", t->name, r, why,
				 t->why);
		for (size_t k = 0; why[k]; k++)
			assert_true(why[k] >= 0x20 && why[k] <= 0x7e);
		assert_int_equal(h.len, 0);
		/* Every beginning: a valid start or an error, and once an error,
		 * an error from then on. */
		bool failed = false;
		for (size_t n = 0; n < b.len; n++) {
			r = parse_copy(b.b, n, t->accept, &h, why, sizeof why);
			if (r == PP_ERROR)
				failed = true;
			else if (r != PP_INCOMPLETE || failed)
				fail_msg("%s cut at %zu: %d (after an error: %d)", t->name, n,
					 r, failed);
		}
	}
}

/* Bytes that cannot begin a header: an error at the first byte. */
static void test_early_errors(void **state)
{
	(void)state;
	struct pp_header h;
	char why[128];
	static const uint8_t firsts[] = {0x16, 0x10, 0x80, 'G', 'p', 0x00, 0xff};
	for (size_t i = 0; i < sizeof firsts; i++) {
		assert_int_equal(pp_parse(&firsts[i], 1, BOTH, &h, why, sizeof why), PP_ERROR);
		assert_int_equal(pp_parse(&firsts[i], 1, V2, &h, why, sizeof why), PP_ERROR);
	}
	assert_int_equal(pp_parse((const uint8_t *)"PROX ", 5, V1, &h, why, sizeof why),
			 PP_ERROR);
	assert_int_equal(pp_parse((const uint8_t *)"\r\n\r\n\0\r\nQUIT\n\x11", 13, V2, &h, why,
				  sizeof why),
			 PP_ERROR);
	assert_non_null(strstr(why, "version 1"));
	/* A v2 length past the limit is refused from the fixed part alone. */
	struct hb b;
	b_v2_len_huge(&b);
	assert_int_equal(pp_parse(b.b, 16, V2, &h, why, sizeof why), PP_ERROR);
	/* why may be left out. */
	assert_int_equal(pp_parse(firsts, 1, V1, &h, NULL, 0), PP_ERROR);
}

/* optional: no header where the first byte cannot begin one. */
static void test_absent(void **state)
{
	(void)state;
	struct pp_header h;
	char why[128] = "x";
	struct hb b = {.len = 0};
	b_tls(&b);
	assert_int_equal(pp_parse(b.b, b.len, ANY, &h, why, sizeof why), PP_ABSENT);
	assert_int_equal(pp_parse(b.b, 1, ANY, &h, why, sizeof why), PP_ABSENT);
	assert_int_equal(h.len, 0);
	b.len = 0;
	b_mqtt(&b);
	assert_int_equal(pp_parse(b.b, b.len, ANY, &h, why, sizeof why), PP_ABSENT);
	/* 'P' and CR begin headers: then one must follow. */
	assert_int_equal(pp_parse((const uint8_t *)"P", 1, ANY, &h, why, sizeof why),
			 PP_INCOMPLETE);
	assert_int_equal(pp_parse((const uint8_t *)"\r", 1, ANY, &h, why, sizeof why),
			 PP_INCOMPLETE);
	assert_int_equal(pp_parse((const uint8_t *)"POST /", 6, ANY, &h, why, sizeof why),
			 PP_ERROR);
	assert_int_equal(pp_parse((const uint8_t *)"", 0, ANY, &h, why, sizeof why),
			 PP_INCOMPLETE);
	/* With only one version taken, 'P' or CR of the other is refused by name. */
	assert_int_equal(pp_parse((const uint8_t *)"PROXY ", 6, V2 | PP_ACCEPT_NONE, &h, why,
				  sizeof why),
			 PP_ERROR);
	assert_non_null(strstr(why, "only v2"));
}

/* ---- the CN a balancer verified ---- */

struct cn_case {
	const char *name;
	unsigned client;
	uint32_t verify;
	const char *cn; /* NULL: no CN sub-TLV */
	bool no_ssl;
	const char *want; /* the identity, or NULL and a part of the reason */
	const char *why;
};

static const struct cn_case cn_cases[] = {
	{"verified", PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 0, "dev0001", false, "dev0001", NULL},
	{"resumed session", PP_CLIENT_SSL | PP_CLIENT_CERT_SESS, 0, "dev0002", false, "dev0002",
	 NULL},
	{"no SSL TLV", 0, 0, NULL, true, NULL, "no SSL TLV"},
	{"not TLS", PP_CLIENT_CERT_CONN, 0, "dev1", false, NULL, "did not connect over TLS"},
	{"no certificate", PP_CLIENT_SSL, 0, "dev1", false, NULL, "presented no certificate"},
	{"verify failed", PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 10, "dev1", false, NULL,
	 "could not verify the client certificate (verify result 10)"},
	{"no CN", PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 0, NULL, false, NULL, "no client "
									      "certificate CN"},
	{"empty CN", PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 0, "", false, NULL, "no client "
									      "certificate CN"},
	{"CN too long", PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 0,
	 "0123456789012345678901234567890123456789012345678901234567890123x", false, NULL,
	 "CN has 65 bytes (at most 64)"},
	{"CN 64 bytes", PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 0,
	 "0123456789012345678901234567890123456789012345678901234567890123", false,
	 "0123456789012345678901234567890123456789012345678901234567890123", NULL},
	{"CN control byte", PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 0, "dev\n1", false, NULL,
	 "byte 0x0a at 3"},
	{"CN UTF-8", PP_CLIENT_SSL | PP_CLIENT_CERT_CONN, 0, "d\xc3\xa9v", false, NULL,
	 "byte 0xc3 at 1"},
};

static void test_verified_cn(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cn_cases / sizeof cn_cases[0]; i++) {
		const struct cn_case *t = &cn_cases[i];
		struct hb b;
		v2(&b, 0x21, 0x11);
		addr4(&b);
		if (!t->no_ssl)
			ssl_tlv(&b, t->client, t->verify, t->cn);
		end(&b);
		struct pp_header h;
		char why[256] = "", out[65] = "junk";
		if (pp_parse(b.b, b.len, V2, &h, why, sizeof why) != PP_DONE)
			fail_msg("%s: %s", t->name, why);
		int rc = pp_verified_cn(&h, out, sizeof out, why, sizeof why);
		if (t->want) {
			if (rc != 0)
				fail_msg("%s: %s", t->name, why);
			assert_string_equal(out, t->want);
		} else {
			if (rc != -1 || !strstr(why, t->why))
				fail_msg("%s: %d (%s), expected \"%s\"", t->name, rc, why, t->why);
			assert_string_equal(out, "");
		}
	}
	/* A v1 header carries no CN. */
	struct pp_header h;
	char why[256], out[65];
	assert_int_equal(pp_parse((const uint8_t *)"PROXY UNKNOWN\r\n", 15, V1, &h, why,
				  sizeof why),
			 PP_DONE);
	assert_int_equal(pp_verified_cn(&h, out, sizeof out, why, sizeof why), -1);
	assert_non_null(strstr(why, "no SSL TLV"));
}

static void test_format_addr(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	char out[64];
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(1883);
	assert_int_equal(inet_pton(AF_INET, "10.1.2.3", &sin->sin_addr), 1);
	pp_format_addr(&ss, out, sizeof out);
	assert_string_equal(out, "10.1.2.3:1883");
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(65535);
	assert_int_equal(inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6->sin6_addr), 1);
	pp_format_addr(&ss, out, sizeof out);
	assert_string_equal(out, "[::ffff:10.1.2.3]:65535");
	ss.ss_family = AF_UNIX;
	pp_format_addr(&ss, out, sizeof out);
	assert_string_equal(out, "unknown");
}

/* ---- proxy_from ranges (cidr) ---- */

struct cidr_case {
	const char *text;
	const char *why; /* NULL: valid */
};

static const struct cidr_case cidr_cases[] = {
	{"10.0.0.0/8", NULL},
	{"127.0.0.1", NULL},
	{"0.0.0.0/0", NULL},
	{"192.0.2.128/25", NULL},
	{"2001:db8::/32", NULL},
	{"::1", NULL},
	{"::/0", NULL},
	{"fe80::/10", NULL},
	{"10.0.0.1/8", "host bits set after the /8 prefix (the range is 10.0.0.0/8)"},
	{"2001:db8::1/32", "(the range is 2001:db8::/32)"},
	{"10.0.0.0/33", "prefix length after '/' must be 0-32"},
	{"::/129", "must be 0-128"},
	{"10.0.0.0/", "prefix length"},
	{"10.0.0.0/08", "prefix length"},
	{"10.0.0.0/-1", "prefix length"},
	{"10.0.0.0/8/8", "prefix length"},
	{"/8", "expected an address"},
	{"", "expected an address"},
	{"example.com/8", "not a numeric IPv4 or IPv6 address"},
	{"10.0.0/8", "not a numeric"},
	{"0000:0000:0000:0000:0000:0000:0000:0000:0000:0000/8", "expected an address"},
};

static void test_cidr_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cidr_cases / sizeof cidr_cases[0]; i++) {
		const struct cidr_case *t = &cidr_cases[i];
		struct cidr c;
		char why[128] = "";
		int rc = cidr_parse(t->text, &c, why, sizeof why);
		if (t->why ? rc != -1 || !strstr(why, t->why) : rc != 0)
			fail_msg("%s: %d (%s)", t->text, rc, why);
	}
}

static struct sockaddr_storage sa(const char *addr)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	if (strchr(addr, ':')) {
		ss.ss_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr,
					   &((struct sockaddr_in6 *)&ss)->sin6_addr),
				 1);
	} else {
		ss.ss_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr),
				 1);
	}
	return ss;
}

static void test_cidr_contains(void **state)
{
	(void)state;
	static const char *const ranges_text[] = {"10.0.0.0/8", "192.0.2.128/25", "127.0.0.1",
						  "2001:db8::/32", "fe80::/10"};
	struct cidr r[5];
	char why[128];
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(cidr_parse(ranges_text[i], &r[i], why, sizeof why), 0);
	static const struct {
		const char *addr;
		bool in;
	} cases[] = {
		{"10.0.0.0", true},	    {"10.255.255.255", true}, {"11.0.0.0", false},
		{"9.255.255.255", false}, {"192.0.2.128", true},    {"192.0.2.255", true},
		{"192.0.2.127", false},   {"127.0.0.1", true},      {"127.0.0.2", false},
		{"2001:db8::1", true},    {"2001:db9::1", false},   {"fe80::1", true},
		{"febf::1", true},	    {"fec0::1", false},	      {"::ffff:10.9.8.7", true},
		{"::ffff:11.9.8.7", false}, {"::10.9.8.7", false},  {"::1", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sockaddr_storage ss = sa(cases[i].addr);
		if (cidr_contains(r, 5, (struct sockaddr *)&ss) != cases[i].in)
			fail_msg("%s: expected %s", cases[i].addr, cases[i].in ? "in" : "out");
	}
	struct sockaddr_storage ss = sa("10.0.0.1");
	assert_false(cidr_contains(r, 0, (struct sockaddr *)&ss));
	struct cidr all;
	assert_int_equal(cidr_parse("0.0.0.0/0", &all, why, sizeof why), 0);
	assert_true(cidr_contains(&all, 1, (struct sockaddr *)&ss));
	ss = sa("::1");
	assert_false(cidr_contains(&all, 1, (struct sockaddr *)&ss));
	ss.ss_family = AF_UNIX;
	assert_false(cidr_contains(r, 5, (struct sockaddr *)&ss));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),	     cmocka_unit_test(test_errors),
		cmocka_unit_test(test_early_errors), cmocka_unit_test(test_absent),
		cmocka_unit_test(test_verified_cn),  cmocka_unit_test(test_format_addr),
		cmocka_unit_test(test_cidr_parse),   cmocka_unit_test(test_cidr_contains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
