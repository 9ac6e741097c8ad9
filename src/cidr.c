/* cidr: address ranges; see cidr.h. */
#include "iotgw/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Clears the bits of addr past prefix; true when some were set. */
static bool clear_host_bits(uint8_t *addr, size_t len, unsigned prefix)
{
	bool had = false;
	for (size_t i = 0; i < len; i++) {
		unsigned first = (unsigned)i * 8; /* the bit this byte starts at */
		unsigned bits = prefix <= first ? 0 : prefix - first; /* of it in the prefix */
		uint8_t keep = (uint8_t)(bits >= 8 ? 0xffu : 0xff00u >> bits);
		had = had || (addr[i] & (uint8_t)~keep);
		addr[i] &= keep;
	}
	return had;
}

int cidr_parse(const char *s, struct cidr *out, char *why, size_t whylen)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	memset(out, 0, sizeof *out);
	if (hlen == 0 || hlen >= sizeof host) {
		snprintf(why, whylen, "expected an address or ADDRESS/PREFIX");
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
	} else {
		snprintf(why, whylen, "not a numeric IPv4 or IPv6 address");
		return -1;
	}
	unsigned max = out->family == AF_INET ? 32 : 128;
	out->prefix = max;
	if (slash) {
		const char *d = slash + 1;
		size_t n = strlen(d);
		unsigned v = 0;
		bool digits = n >= 1 && n <= 3 && strspn(d, "0123456789") == n &&
			      (n == 1 || d[0] != '0');
		for (size_t i = 0; digits && i < n; i++)
			v = v * 10 + (unsigned)(d[i] - '0');
		if (!digits || v > max) {
			snprintf(why, whylen, "prefix length after '/' must be 0-%u", max);
			return -1;
		}
		out->prefix = v;
	}
	if (clear_host_bits(out->addr, max / 8, out->prefix)) {
		char net[INET6_ADDRSTRLEN] = "?";
		inet_ntop(out->family, out->addr, net, sizeof net);
		snprintf(why, whylen, "host bits set after the /%u prefix (the range is %s/%u)",
			 out->prefix, net, out->prefix);
		return -1;
	}
	return 0;
}

static bool inside(const struct cidr *c, const uint8_t *addr)
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;
	if (memcmp(c->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (addr[full] & mask) == c->addr[full];
}

bool cidr_contains(const struct cidr *ranges, size_t n, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const uint8_t *addr;
	int family = sa->sa_family;
	if (family == AF_INET) {
		addr = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		addr = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (memcmp(addr, v4mapped, sizeof v4mapped) == 0) {
			family = AF_INET;
			addr += sizeof v4mapped;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (ranges[i].family == family && inside(&ranges[i], addr))
			return true;
	return false;
}
