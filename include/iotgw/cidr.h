/* cidr: address ranges written the CIDR way ("10.0.0.0/8",
 * "2001:db8::/32", or one address, "192.0.2.7"), and whether a peer's
 * address is inside one: the balancers a listener takes PROXY protocol
 * headers from (proxy_from). Short form of the module: cidr_.
 *
 * Pure: no I/O, no allocation, no state. */
#ifndef IOTGW_CIDR_H
#define IOTGW_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network order, 4 bytes used for AF_INET; host bits zero */
	unsigned prefix;  /* 0-32, 0-128 */
};

/* "ADDRESS/PREFIX" or "ADDRESS" (all of its bits) into out: 0, or -1 with
 * a reason in why. A range with host bits set ("10.0.0.1/8") is refused,
 * naming the range it would be: a typo in who may claim any address must
 * not pass unnoticed. */
int cidr_parse(const char *s, struct cidr *out, char *why, size_t whylen);

/* Is sa's address (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts
 * as its IPv4 address) inside one of the n ranges? */
bool cidr_contains(const struct cidr *ranges, size_t n, const struct sockaddr *sa);

#endif
