/* conn_proxy: the PROXY protocol phase of a connection (conn_int.h).
 *
 * Before its type's handshake (TLS) or first read (plaintext), a
 * connection on a proxy_protocol listener reads the header its balancer put
 * in front of the device's bytes, from the raw socket, and exactly the
 * header: bytes are peeked first and only those pp_parse counts as header
 * are consumed, so what follows it (a ClientHello, a CONNECT) is still in
 * the socket, from its first byte, for a type that knows nothing of this.
 * A header that arrives in pieces is consumed piece by piece (bytes before
 * its end cannot be anything else) into a buffer that lives only during
 * this phase. What the header says goes to the owner (handler->proxied),
 * as text: the device's address, the CN a TLS-terminating balancer
 * verified, or why the connection must close. */
#include "conn_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "iotgw/proxyproto.h"

struct conn_proxy {
	unsigned accept; /* PP_ACCEPT_* */
	size_t have;     /* header bytes consumed so far, in buf */
	uint8_t buf[PP_HEADER_MAX];
};

int conn_proxy_begin(struct conn *c, enum cfg_proxy_mode mode)
{
	static const unsigned accept[] = {
		[CFG_PROXY_OFF] = 0,
		[CFG_PROXY_V1] = PP_ACCEPT_V1,
		[CFG_PROXY_V2] = PP_ACCEPT_V2,
		[CFG_PROXY_OPTIONAL] = PP_ACCEPT_V1 | PP_ACCEPT_V2 | PP_ACCEPT_NONE,
	};
	c->proxy = calloc(1, sizeof *c->proxy);
	if (!c->proxy)
		return -1;
	c->proxy->accept = accept[mode];
	return 0;
}

void conn_proxy_end(struct conn *c)
{
	free(c->proxy);
	c->proxy = NULL;
}

__attribute__((format(printf, 2, 3))) static int fail(struct conn_proxied *out, const char *fmt,
						      ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->error, sizeof out->error, fmt, ap);
	va_end(ap);
	out->ok = false;
	return -1;
}

/* Takes n bytes the socket is known to hold (they were peeked) into dst. */
static int consume(int fd, uint8_t *dst, size_t n)
{
	while (n > 0) {
		ssize_t r = recv(fd, dst, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		dst += r;
		n -= (size_t)r;
	}
	return 0;
}

static void describe(const struct pp_header *h, struct conn_proxied *out)
{
	out->ok = true;
	out->version = h->version;
	out->has_source = h->has_addr;
	if (h->has_addr)
		pp_format_addr(&h->src, out->source, sizeof out->source);
	out->has_cn = pp_verified_cn(h, out->cn, sizeof out->cn, out->cn_why,
				     sizeof out->cn_why) == 0;
}

int conn_proxy_read(struct conn *c, struct conn_proxied *out)
{
	struct conn_proxy *px = c->proxy;
	memset(out, 0, sizeof *out);
	for (;;) {
		/* Never empty: pp_parse ends (or fails) any header by
		 * PP_HEADER_MAX bytes. */
		size_t room = sizeof px->buf - px->have;
		ssize_t n = recv(c->io.fd, px->buf + px->have, room, MSG_PEEK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return fail(out, "reading the PROXY protocol header: %s", strerror(errno));
		if (n == 0 && px->have == 0)
			return fail(out, "connection closed before the PROXY protocol header");
		if (n == 0)
			return fail(out, "connection closed after %zu bytes of the PROXY protocol "
					 "header",
				    px->have);
		struct pp_header h;
		char why[200];
		enum pp_result r = pp_parse(px->buf, px->have + (size_t)n, px->accept, &h, why,
					    sizeof why);
		if (r == PP_ERROR)
			return fail(out, "PROXY protocol header: %s", why);
		/* Incomplete: all of it is header; complete: up to its end;
		 * absent: nothing, it is the device's. */
		size_t take = r == PP_DONE ? h.len - px->have : r == PP_ABSENT ? 0 : (size_t)n;
		if (consume(c->io.fd, px->buf + px->have, take) != 0)
			return fail(out, "reading the PROXY protocol header: %s",
				    errno ? strerror(errno) : "fewer bytes than peeked");
		px->have += take;
		if (r == PP_INCOMPLETE)
			continue; /* more may have come meanwhile; else EAGAIN */
		describe(&h, out);
		return 1;
	}
}
