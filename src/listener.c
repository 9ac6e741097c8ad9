/* listener: bound sockets and accept. Each listener carries its TLS context
 * (or none), so the accept path does not care which kind it is. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "gateway_int.h"
#include "iotgw/log.h"

#define ACCEPT_BATCH 64

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		port = ntohs(sin->sin_port);
		snprintf(out, cap, "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
		port = ntohs(sin6->sin6_port);
		snprintf(out, cap, "[%s]:%u", host, port);
	} else {
		snprintf(out, cap, "unknown");
	}
}

static void on_accept_retry(struct ev_loop *loop, struct ev_timer *t)
{
	struct listener *l = t->arg;
	l->accept_paused = false;
	(void)ev_io_set(loop, &l->io, EPOLLIN);
}

/* Out of descriptors: the pending connection would make epoll report the
 * listener readable forever. Spend the reserve descriptor to accept and
 * close it, and pause accepting for a moment (the classic EMFILE trick). */
static void shed_connection(struct listener *l)
{
	struct gateway *gw = l->gw;
	if (gw->reserve_fd >= 0) {
		close(gw->reserve_fd);
		int fd = accept(l->fd, NULL, NULL);
		if (fd >= 0)
			close(fd);
		gw->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	struct log_fields f = {.listener = l->name};
	log_event(LOG_ERR, "connection_limit", &f,
		  "out of file descriptors with %zu connections; refusing new ones for 1 s",
		  gw->nsessions);
	l->accept_paused = true;
	(void)ev_io_set(gw->loop, &l->io, 0);
	ev_timer_start(gw->loop, &l->accept_retry, 1000);
}

static void on_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct listener *l = io->arg;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				shed_connection(l);
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				 errno != ECONNABORTED) {
				struct log_fields f = {.listener = l->name};
				log_event(LOG_ERR, "accept_failed", &f, "accept: %s",
					  strerror(errno));
			}
			return;
		}
		char peer[64];
		format_peer(&ss, peer, sizeof peer);
		if (l->nconns >= l->max_connections) {
			struct log_fields f = {.listener = l->name, .peer = peer};
			log_event(LOG_WARNING, "connection_limit", &f,
				  "listener at max_connections (%u); connection refused",
				  l->max_connections);
			close(fd);
			continue;
		}
		int one = 1;
		/* MQTT acks are tiny and latency-bound; do not let Nagle hold them. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
		(void)session_new(l->gw, l, fd, peer);
	}
}

static void apply_settings(struct listener *l, const struct cfg_listener *cfg,
			   struct listener_parts *parts)
{
	l->tls = cfg->tls;
	l->identity = cfg->identity;
	l->handshake_timeout_ms = cfg->handshake_timeout_ms;
	l->max_connections = cfg->max_connections;
	l->client_id_policy = cfg->client_id;
	l->cert_expiry_warning_s = cfg->cert_expiry_warning_s;
	l->disconnect_revoked = cfg->disconnect_revoked;
	/* Live SSL objects hold their own reference to the old context. */
	if (l->ctx)
		SSL_CTX_free(l->ctx);
	auth_acl_free(l->acl);
	auth_pwfile_free(l->pwfile);
	l->ctx = parts->ctx;
	l->acl = parts->acl;
	l->pwfile = parts->pwfile;
	memset(parts, 0, sizeof *parts);
}

struct listener *listener_open(struct gateway *gw, const struct cfg_listener *cfg,
			       struct listener_parts *parts, char *err, size_t errlen)
{
	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} sa;
	memset(&sa, 0, sizeof sa);
	socklen_t salen;
	int family;
	if (inet_pton(AF_INET, cfg->bind_host, &sa.v4.sin_addr) == 1) {
		family = AF_INET;
		sa.v4.sin_family = AF_INET;
		sa.v4.sin_port = htons(cfg->port);
		salen = sizeof sa.v4;
	} else if (inet_pton(AF_INET6, cfg->bind_host, &sa.v6.sin6_addr) == 1) {
		family = AF_INET6;
		sa.v6.sin6_family = AF_INET6;
		sa.v6.sin6_port = htons(cfg->port);
		salen = sizeof sa.v6;
	} else {
		snprintf(err, errlen, "bad bind address %s", cfg->bind_host);
		return NULL;
	}
	struct listener *l = calloc(1, sizeof *l);
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->name = strdup(cfg->name);
	l->bind_host = strdup(cfg->bind_host);
	snprintf(l->bind_desc, sizeof l->bind_desc, family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 cfg->bind_host, cfg->port);
	l->port = cfg->port;
	l->gw = gw;
	l->refs = 1;
	l->io.fd = -1;
	ev_timer_init(&l->accept_retry, on_accept_retry, l);
	l->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (!l->name || !l->bind_host || l->fd < 0 ||
	    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    (family == AF_INET6 &&
	     setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
	    bind(l->fd, (struct sockaddr *)&sa, salen) != 0 || listen(l->fd, 1024) != 0 ||
	    ev_io_start(gw->loop, &l->io, l->fd, EPOLLIN, on_accept, l) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", l->bind_desc, strerror(errno));
		if (l->fd >= 0)
			close(l->fd);
		free(l->name);
		free(l->bind_host);
		free(l);
		return NULL;
	}
	apply_settings(l, cfg, parts);
	return l;
}

void listener_update(struct listener *l, const struct cfg_listener *cfg,
		     struct listener_parts *parts)
{
	apply_settings(l, cfg, parts);
}

void listener_close(struct listener *l)
{
	ev_io_stop(l->gw->loop, &l->io);
	ev_timer_stop(l->gw->loop, &l->accept_retry);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	listener_unref(l);
}

void listener_ref(struct listener *l)
{
	l->refs++;
}

void listener_unref(struct listener *l)
{
	if (--l->refs > 0)
		return;
	if (l->ctx)
		SSL_CTX_free(l->ctx);
	auth_acl_free(l->acl);
	auth_pwfile_free(l->pwfile);
	free(l->name);
	free(l->bind_host);
	free(l);
}
