/* conn_tcp: plaintext TCP as a connection type (conn_int.h). Devices on a
 * tls = off listener; everything it reads the kernel held, so epoll sees
 * all of it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn_int.h"

static int tcp_handshake(struct conn *c)
{
	(void)c;
	return 1;
}

static ssize_t tcp_read(struct conn *c, void *p, size_t n)
{
	ssize_t r = read(c->io.fd, p, n);
	if (r > 0)
		return r;
	if (r == 0) {
		conn_set_state(c, CONN_STATE_EOF);
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -1;
	conn_set_state(c, CONN_STATE_ERROR);
	conn_set_error(c, "read: %s", strerror(errno));
	return -1;
}

static ssize_t tcp_write(struct conn *c, const void *p, size_t n)
{
	ssize_t r = send(c->io.fd, p, n, MSG_NOSIGNAL);
	if (r >= 0)
		return r;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -1;
	conn_set_state(c, CONN_STATE_ERROR);
	conn_set_error(c, "write: %s", strerror(errno));
	return -1;
}

static void tcp_destroy(struct conn *c)
{
	free(c);
}

static struct conn *tcp_create(SSL_CTX *ctx, int fd, char *err, size_t errlen)
{
	(void)ctx;
	(void)fd;
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		snprintf(err, errlen, "out of memory");
	return c;
}

const struct conn_type conn_type_tcp = {
	.name = "tcp",
	.create = tcp_create,
	.handshakes = false,
	.handshake = tcp_handshake,
	.read = tcp_read,
	.write = tcp_write,
	.pending = NULL, /* the kernel holds everything: epoll sees it */
	.destroy = tcp_destroy,
};

