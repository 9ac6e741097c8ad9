/* proxyproto: the PROXY protocol header a load balancer (HAProxy, IPVS
 * with a proxy, AWS NLB, ...) puts in front of a connection's own bytes to
 * say whose connection it relays, versions 1 (one line of text) and 2
 * (binary, with TLVs), as HAProxy's doc/proxy-protocol.txt specifies them.
 * Short form of the module: pp_.
 *
 * pp_parse reads the header from the first bytes a connection received and
 * says one of: more bytes are needed, the header is malformed (a precise
 * reason), there is no header (only when the caller allows that), or the
 * header is complete, with its exact length (the caller consumes that many
 * bytes and not one more: what follows is the device's TLS or MQTT), the
 * device's address and port, and, from a v2 header, what the balancer says
 * about the TLS connection it terminated (PP2_TYPE_SSL and its CN).
 *
 * Every prefix of a valid header is INCOMPLETE, never an error, so a header
 * that arrives a byte at a time is read correctly; bytes that cannot begin
 * a header are an error at once (the spec: abort as soon as possible).
 *
 * Pure: no I/O, no allocation, no state. A parsed header's cn points into
 * the caller's buffer and is valid as long as those bytes are. */
#ifndef IOTGW_PROXYPROTO_H
#define IOTGW_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A v1 line, CRLF included, is at most 107 bytes (spec 2.1). */
#define PP_V1_MAX 107
/* The fixed part of a v2 header: signature, version/command, family,
 * length. */
#define PP_V2_FIXED 16
/* The longest header accepted, TLVs included: the spec designs both
 * formats to fit the smallest segment every TCP host must take (576 - 40
 * bytes), which leaves room for every TLV a balancer sends in practice
 * (SSL with version, CN and cipher, ALPN, authority, unique id, CRC32C)
 * next to the largest address block (AF_UNIX, 216 bytes), and bounds
 * what a connection may make us buffer before anything is known. */
#define PP_HEADER_MAX 536

/* The PP2_TYPE_SSL client bits (spec 2.2.6). */
#define PP_CLIENT_SSL 0x01u
#define PP_CLIENT_CERT_CONN 0x02u
#define PP_CLIENT_CERT_SESS 0x04u

/* What pp_parse accepts (bits). */
#define PP_ACCEPT_V1 1u
#define PP_ACCEPT_V2 2u
/* A connection may come without a header: one whose first byte cannot
 * begin either version (anything but 'P' and CR; a TLS ClientHello starts
 * with 0x16, an MQTT CONNECT with 0x10) has none, and is PP_ABSENT. */
#define PP_ACCEPT_NONE 4u

enum pp_result {
	PP_ERROR = -1,     /* malformed, or a version not accepted: why says which */
	PP_INCOMPLETE = 0, /* a valid beginning: read more */
	PP_DONE = 1,       /* a complete header of h->len bytes */
	PP_ABSENT = 2,     /* no header at all (PP_ACCEPT_NONE only); nothing to consume */
};

struct pp_header {
	size_t len;       /* bytes of the header, CRLF or TLVs included */
	unsigned version; /* 1 or 2 */
	/* false: the header carries no address to use (v1 UNKNOWN, v2 LOCAL,
	 * AF_UNSPEC or AF_UNIX): the connection's own addresses stand, as the
	 * spec says. */
	bool has_addr;
	struct sockaddr_storage src, dst; /* AF_INET or AF_INET6, port set; when has_addr */
	/* v2 PP2_TYPE_SSL, when present (ssl): the client bits, the
	 * verification result (0: the client certificate was verified) and
	 * the PP2_SUBTYPE_SSL_CN (cn NULL when absent; not NUL-terminated). */
	bool ssl;
	uint8_t ssl_client;
	uint32_t ssl_verify;
	const uint8_t *cn;
	size_t cn_len;
	bool crc32c; /* a PP2_TYPE_CRC32C was present, and matched */
};

/* Reads a header from the n bytes at p (the first bytes of a connection;
 * bytes after the header are not looked at). accept: PP_ACCEPT_* bits.
 * DONE fills h; ERROR writes a reason (printable ASCII, bytes from the
 * input only as hex or quoted) into why, which may be NULL. */
enum pp_result pp_parse(const uint8_t *p, size_t n, unsigned accept, struct pp_header *h,
			char *why, size_t whylen);

/* The client certificate CN of a header whose balancer terminated TLS and
 * verified that certificate, as a device identity: 0 with it copied into
 * out (NUL-terminated, at most cap - 1 bytes, printable ASCII), or -1 with
 * the reason it is not usable in why (no SSL TLV, no certificate, verify
 * failed, no CN, too long, unprintable bytes). */
int pp_verified_cn(const struct pp_header *h, char *out, size_t cap, char *why, size_t whylen);

/* An address as iotgw names peers: "1.2.3.4:5678", "[2001:db8::1]:5678",
 * or "unknown" for another family. 64 bytes are always enough. */
void pp_format_addr(const struct sockaddr_storage *ss, char *out, size_t cap);

#endif
