/* conn: the connection interface's shared half: the output buffer, the
 * epoll interest (what the owner wants OR what the type needs), pausing,
 * and the events to the owner. The types (conn_tcp.c, conn_tls.c) only
 * handshake, read, write and say whether they hold unread bytes; the PROXY
 * protocol phase before them is conn_proxy.c's. */
#include "conn_int.h"
#include "iotgw/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void conn_on_io(struct ev_loop *loop, struct ev_io *io, uint32_t events);

struct conn *conn_new(struct ev_loop *loop, int fd, const struct conn_type *type, SSL_CTX *ctx,
		      enum cfg_proxy_mode proxy, size_t out_max, const struct conn_handler *handler,
		      void *owner)
{
	char err[160] = "";
	struct conn *c = type->create(ctx, fd, err, sizeof err);
	if (!c) {
		close(fd);
		return NULL;
	}
	c->type = type;
	c->loop = loop;
	c->io.fd = -1;
	c->fd = fd;
	c->state = type->handshakes ? CONN_STATE_HANDSHAKE : CONN_STATE_OPEN; /* the start */
	if (proxy != CFG_PROXY_OFF)
		c->state = CONN_STATE_PROXY;
	c->handler = handler;
	c->owner = owner;
	buf_init(&c->out, out_max);
	if ((proxy != CFG_PROXY_OFF && conn_proxy_begin(c, proxy) != 0) ||
	    ev_io_start(loop, &c->io, fd, EPOLLIN, conn_on_io, c) != 0) {
		close(fd);
		conn_proxy_end(c);
		c->type->destroy(c);
		return NULL;
	}
	if (c->state == CONN_STATE_HANDSHAKE && type->handshake_begin)
		type->handshake_begin(c);
	return c;
}

static void conn_destroy(struct conn *c)
{
	int fd = c->fd;
	ev_io_stop(c->loop, &c->io);
	buf_free(&c->out);
	conn_proxy_end(c);
	c->type->destroy(c); /* TLS: best-effort close_notify while fd is open */
	if (fd >= 0)
		close(fd);
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	conn_destroy(c);
}

static const char *const state_names[] = {"proxy", "handshake", "open", "error", "eof"};

/* From (row) to (column): the PROXY header leads to the handshake (or
 * straight to open, for plaintext) or fails, a handshake opens or fails,
 * an open conn fails or ends; an ended or failed conn stays so (a failure
 * seen twice, e.g. a write after a failed read, is the same failure). */
static const bool legal[5][5] = {
	[CONN_STATE_PROXY] = {[CONN_STATE_HANDSHAKE] = true, [CONN_STATE_OPEN] = true,
			      [CONN_STATE_ERROR] = true},
	[CONN_STATE_HANDSHAKE] = {[CONN_STATE_OPEN] = true, [CONN_STATE_ERROR] = true,
				  [CONN_STATE_EOF] = true},
	[CONN_STATE_OPEN] = {[CONN_STATE_ERROR] = true, [CONN_STATE_EOF] = true},
	[CONN_STATE_ERROR] = {[CONN_STATE_ERROR] = true},
	[CONN_STATE_EOF] = {[CONN_STATE_EOF] = true, [CONN_STATE_ERROR] = true},
};

void conn_set_state(struct conn *c, enum conn_state next)
{
	if (!legal[c->state][next]) {
		log_event(LOG_CRIT, EV_NONE, NULL, "conn: illegal state change %s -> %s",
			  state_names[c->state], state_names[next]);
		abort();
	}
	c->state = next;
}

bool conn_failed(const struct conn *c)
{
	return c->state == CONN_STATE_ERROR || c->state == CONN_STATE_EOF;
}

bool conn_is_open(const struct conn *c)
{
	return c->state == CONN_STATE_OPEN;
}

bool conn_is_tls(const struct conn *c)
{
	return c->type == &conn_type_tls;
}

bool conn_awaiting_proxy(const struct conn *c)
{
	return c->state == CONN_STATE_PROXY;
}

int conn_socket_peer(const struct conn *c, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof *ss;
	if (c->fd < 0) {
		errno = EBADF;
		return -1;
	}
	return getpeername(c->fd, (struct sockaddr *)ss, &len);
}

enum conn_fail_class conn_fail_class(const struct conn *c)
{
	return c->fail_class;
}

const char *conn_error(const struct conn *c)
{
	if (c->error[0])
		return c->error;
	return c->state == CONN_STATE_EOF ? "connection closed by peer" : "no error";
}

void conn_set_error(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof c->error, fmt, ap);
	va_end(ap);
}

void conn_update_interest(struct conn *c)
{
	uint32_t ev = 0;
	switch (c->state) {
	case CONN_STATE_PROXY:
		ev = c->proxy ? EPOLLIN : 0;
		break;
	case CONN_STATE_HANDSHAKE:
		ev = c->hs_want_write ? EPOLLOUT : EPOLLIN;
		break;
	case CONN_STATE_OPEN:
		if (!c->read_paused || c->want_read_for_write)
			ev |= EPOLLIN;
		if ((c->out.len > 0 && !c->want_read_for_write) || c->want_write_for_read)
			ev |= EPOLLOUT;
		break;
	default:
		break;
	}
	(void)ev_io_set(c->loop, &c->io, ev);
}

ssize_t conn_read(struct conn *c, void *p, size_t n)
{
	if (c->state != CONN_STATE_OPEN)
		return -1;
	ssize_t r = c->type->read(c, p, n);
	if (c->want_write_for_read)
		conn_update_interest(c);
	return r;
}

/* Writes as much of the output buffer as the socket takes. Returns -1 if the
 * connection failed, else 0. */
static int flush(struct conn *c)
{
	while (c->out.len > 0) {
		ssize_t n = c->type->write(c, c->out.data, c->out.len);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (conn_failed(c))
			return -1;
		break; /* would block */
	}
	buf_shrink_if_empty(&c->out);
	conn_update_interest(c);
	return 0;
}

int conn_send(struct conn *c, const void *p, size_t n)
{
	if (c->state != CONN_STATE_OPEN)
		return -1;
	if (buf_append(&c->out, p, n) != 0) {
		conn_set_error(c, "output buffer full (%zu bytes unsent)", c->out.len);
		return -1;
	}
	if (c->want_read_for_write)
		return 0; /* TLS must read first; conn_on_io retries */
	return flush(c);
}

size_t conn_pending_output(const struct conn *c)
{
	return c->out.len;
}

void conn_pause_reading(struct conn *c)
{
	if (c->read_paused)
		return;
	c->read_paused = true;
	conn_update_interest(c);
}

void conn_yield_reading(struct conn *c)
{
	if (c->state == CONN_STATE_OPEN && !c->read_paused && c->type->pending &&
	    c->type->pending(c))
		ev_io_feed(c->loop, &c->io, EPOLLIN);
}

void conn_resume_reading(struct conn *c)
{
	if (!c->read_paused)
		return;
	c->read_paused = false;
	conn_update_interest(c);
	/* What the type already holds, epoll will never report (Redis keeps
	 * a pending list for the same reason in its tls.c). */
	if (c->state == CONN_STATE_OPEN && c->type->pending && c->type->pending(c))
		ev_io_feed(c->loop, &c->io, EPOLLIN);
}

/* The handshake is done (or there is none): up, then what is readable. */
static void opened(struct conn *c)
{
	conn_set_state(c, CONN_STATE_OPEN);
	conn_update_interest(c);
	c->handler->up(c->owner);
	/* The client's first MQTT bytes may already sit decrypted inside
	 * TLS, where epoll cannot see them. */
	if (c->state == CONN_STATE_OPEN && !c->read_paused)
		c->handler->readable(c->owner);
}

/* The PROXY header, then on to the handshake. The ClientHello behind the
 * header is still in the socket, so epoll reports it in the next round. */
static void proxy_phase(struct conn *c)
{
	if (!c->proxy)
		return; /* its owner closed it when the phase ended; it is freed soon */
	struct conn_proxied p;
	int r = conn_proxy_read(c, &p);
	if (r == 0)
		return;
	conn_proxy_end(c);
	if (r < 0) {
		conn_set_state(c, CONN_STATE_ERROR);
		conn_set_error(c, "%s", p.error);
		conn_update_interest(c);
		(void)c->handler->proxied(c->owner, &p);
		return;
	}
	if (!c->handler->proxied(c->owner, &p))
		return;
	if (!c->type->handshakes) {
		opened(c);
		return;
	}
	conn_set_state(c, CONN_STATE_HANDSHAKE);
	if (c->type->handshake_begin)
		c->type->handshake_begin(c);
	conn_update_interest(c);
}

static void conn_on_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	struct conn *c = io->arg;

	if (c->state == CONN_STATE_PROXY) {
		proxy_phase(c);
		return;
	}
	if (c->state == CONN_STATE_HANDSHAKE) {
		int r = c->type->handshake(c);
		if (r < 0) {
			conn_set_state(c, CONN_STATE_ERROR);
			conn_update_interest(c);
			c->handler->failed(c->owner);
			return;
		}
		if (r == 0) {
			conn_update_interest(c);
			return;
		}
		opened(c);
		return;
	}
	if (c->state != CONN_STATE_OPEN)
		return;

	bool had_output = c->out.len > 0;
	if ((events & EPOLLOUT) || (c->want_read_for_write && (events & EPOLLIN))) {
		if (c->out.len > 0 && flush(c) != 0) {
			c->handler->failed(c->owner);
			return;
		}
		if (had_output && c->out.len == 0 && c->handler->drained)
			c->handler->drained(c->owner);
		if (c->state != CONN_STATE_OPEN)
			return;
	}
	bool readable = (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ||
			(c->want_write_for_read && (events & EPOLLOUT));
	if (readable && !c->read_paused) {
		c->handler->readable(c->owner);
	} else if ((events & (EPOLLHUP | EPOLLERR)) && c->read_paused) {
		/* Paused readers would otherwise spin on a level-triggered
		 * hang-up; nothing unread was acknowledged, so dropping is safe. */
		conn_set_state(c, CONN_STATE_ERROR);
		conn_set_error(c, "peer hung up while reading was paused");
		conn_update_interest(c);
		c->handler->failed(c->owner);
	}
}
