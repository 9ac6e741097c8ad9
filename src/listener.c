/* listener: bound sockets and accept. A listener binds one or more
 * addresses that share its settings; it carries its TLS context (or none),
 * so the accept path does not care which kind it is. */
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
#include "worker.h"
#include "iotgw/cidr.h"
#include "iotgw/log.h"
#include "iotgw/proxyproto.h"
#include "iotgw/text.h"

#define ACCEPT_BATCH 64
#define DEVICE_SNDBUF (32 * 1024) /* the kernel doubles it */

/* trust_connect writes device ids into the sessions' buffers. */
_Static_assert(AUTH_DEVICE_MAX == IOTGW_DEVICE_MAX, "one device id length everywhere");

/* A proxy_protocol listener takes connections from its balancers only:
 * anyone else could claim any address (and, with proxy_identity, any
 * device) in a header. One line per refusal; a flood is summarized by the
 * log's per-event limit. */
static bool proxy_trusted(struct listener *l, const struct sockaddr_storage *ss,
			  const char *peer)
{
	if (cidr_contains(l->proxy_from, l->nproxy_from, (const struct sockaddr *)ss))
		return true;
	char a[64];
	const char *addr = text_peer_address(peer, a, sizeof a) ? a : peer;
	l->m.proxy_refusals[PROXY_REFUSED_UNTRUSTED]++;
	struct log_fields f = {.listener = l->name, .peer = peer};
	log_event(LOG_WARNING, EV_PROXY_UNTRUSTED, &f,
		  "connection from %s refused: not in proxy_from of listener %s "
		  "(proxy_protocol = %s takes connections from its balancers only)",
		  addr, l->name, cfg_proxy_mode_name(l->proxy));
	return false;
}

static struct worker *worker_of(const struct listen_sock *ls)
{
	return &ls->l->gw->workers[ls->worker];
}

static void set_accepting(struct listen_sock *ls, bool on)
{
	ls->paused = !on;
	(void)ev_io_set(worker_of(ls)->loop, &ls->io, on ? EPOLLIN : 0);
}

static void on_accept_retry(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	set_accepting(t->arg, true);
}

/* Out of descriptors: the pending connection would make epoll report the
 * listener readable forever. Spend the reserve descriptor to accept and
 * close it, and pause accepting for a moment (the classic EMFILE trick). */
static void shed_connection(struct listen_sock *ls)
{
	struct listener *l = ls->l;
	struct worker *w = worker_of(ls);
	if (w->reserve_fd >= 0) {
		close(w->reserve_fd);
		int fd = accept(ls->fd, NULL, NULL);
		if (fd >= 0)
			close(fd);
		w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	struct log_fields f = {.listener = l->name};
	log_event(LOG_ERR, EV_CONNECTION_LIMIT, &f,
		  "out of file descriptors with %zu connections; refusing new ones for 1 s",
		  gateway_sessions(l->gw));
	set_accepting(ls, false);
	ev_timer_start(w->loop, &ls->retry, 1000);
}

static void on_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct listen_sock *ls = io->arg;
	struct listener *l = ls->l;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(ls->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				shed_connection(ls);
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				 errno != ECONNABORTED) {
				struct log_fields f = {.listener = l->name};
				log_event(LOG_ERR, EV_ACCEPT_FAILED, &f, "accept: %s",
					  strerror(errno));
			}
			return;
		}
		char peer[64];
		pp_format_addr(&ss, peer, sizeof peer);
		if (l->proxy != CFG_PROXY_OFF && !proxy_trusted(l, &ss, peer)) {
			close(fd);
			continue;
		}
		/* Behind a balancer every connection comes from its address:
		 * the per-address limits apply to the device's, once the
		 * header names it (session_proxy.c). */
		bool direct = l->proxy == CFG_PROXY_OFF;
		if (direct && !gateway_conn_admit(l->gw, l, peer)) {
			close(fd);
			continue;
		}
		if (direct && l->tls != CFG_TLS_OFF && !gateway_hs_admit(l->gw, l, peer)) {
			close(fd);
			continue;
		}
		if (atomic_load(&l->nconns) >= l->max_connections) {
			struct log_fields f = {.listener = l->name, .peer = peer};
			log_event(LOG_WARNING, EV_CONNECTION_LIMIT, &f,
				  "listener at max_connections (%u); connection refused",
				  l->max_connections);
			close(fd);
			continue;
		}
		int one = 1;
		/* MQTT acks are tiny and latency-bound; do not let Nagle hold them. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
		/* Devices are sent acknowledgements (4 bytes each) and a handshake:
		 * a fixed, small send buffer instead of the kernel's autotuned one
		 * (megabytes on a fast link) lets a device that stops reading
		 * show soon (device_not_reading) and bounds kernel memory per
		 * connection. */
		int sndbuf = DEVICE_SNDBUF;
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
		(void)session_new(worker_of(ls), l, fd, peer);
	}
}

static void apply_settings(struct listener *l, const struct cfg_listener *cfg,
			   struct listener_parts *parts)
{
	l->tls = cfg->tls;
	l->ct = cfg->tls == CFG_TLS_OFF ? &conn_type_tcp : &conn_type_tls;
	l->identity = cfg->identity;
	l->handshake_timeout_ms = cfg->handshake_timeout_ms;
	l->max_connections = cfg->max_connections;
	l->cert_expiry_warning_s = cfg->cert_expiry_warning_s;
	l->disconnect_revoked = cfg->disconnect_revoked;
	l->max_message_rate = cfg->max_message_rate;
	l->max_byte_rate = cfg->max_byte_rate;
	l->rate_action = cfg->rate_limit_action;
	l->conn_rate = cfg->max_connection_rate_per_address;
	l->proxy = cfg->proxy_protocol;
	memcpy(l->proxy_from, cfg->proxy_from, sizeof l->proxy_from);
	l->nproxy_from = cfg->nproxy_from;
	l->proxy_identity = cfg->proxy_identity;
	/* Live SSL objects hold their own reference to the old context. */
	if (l->ctx)
		SSL_CTX_free(l->ctx);
	auth_acl_free(l->acl);
	auth_acl_free(l->sub_acl);
	auth_pwfile_free(l->pwfile);
	l->ctx = parts->ctx;
	l->acl = parts->acl;
	l->sub_acl = parts->sub_acl;
	l->pwfile = parts->pwfile;
	memset(parts, 0, sizeof *parts);
	trust_policy_init(&l->trust, l->name, cfg, l->pwfile);
}

/* The descriptor of worker's socket bound to `desc` in a listener of
 * `running`, or -1. */
static int running_socket(const struct listener *running, const char *desc, unsigned worker)
{
	for (const struct listener *o = running; o; o = o->next)
		for (size_t i = 0; i < o->nsocks; i++)
			if (o->socks[i].fd >= 0 && o->socks[i].worker == worker &&
			    strcmp(o->socks[i].desc, desc) == 0)
				return o->socks[i].fd;
	return -1;
}

/* A listening socket on b for one worker, or the running one shared. With
 * more than one worker every worker has its own socket on the address
 * (SO_REUSEPORT): the kernel spreads new connections over them, and a
 * connection stays on the worker that accepted it. -1 with errno. */
static int bind_socket(const struct cfg_bind *b, const char *desc,
		       const struct listener *running, unsigned worker, bool reuseport)
{
	int fd = running_socket(running, desc, worker);
	if (fd >= 0)
		return fcntl(fd, F_DUPFD_CLOEXEC, 0);
	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} sa;
	memset(&sa, 0, sizeof sa);
	socklen_t salen;
	int family;
	if (inet_pton(AF_INET, b->host, &sa.v4.sin_addr) == 1) {
		family = AF_INET;
		sa.v4.sin_family = AF_INET;
		sa.v4.sin_port = htons(b->port);
		salen = sizeof sa.v4;
	} else if (inet_pton(AF_INET6, b->host, &sa.v6.sin6_addr) == 1) {
		family = AF_INET6;
		sa.v6.sin6_family = AF_INET6;
		sa.v6.sin6_port = htons(b->port);
		salen = sizeof sa.v6;
	} else {
		errno = EINVAL;
		return -1;
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
	    (family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
	    bind(fd, (struct sockaddr *)&sa, salen) != 0 || listen(fd, 1024) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void close_sockets(struct listener *l)
{
	for (size_t i = 0; i < l->nsocks; i++) {
		struct listen_sock *ls = &l->socks[i];
		/* Off epoll before close: a socket shared with another listener
		 * (dup) would otherwise stay registered under this number. The
		 * workers are parked meanwhile (worker.h), or not started. */
		struct ev_loop *loop = worker_of(ls)->loop;
		ev_timer_stop(loop, &ls->retry);
		ev_io_stop(loop, &ls->io);
		if (ls->fd >= 0)
			close(ls->fd);
		ls->fd = -1;
	}
}

struct listener *listener_open(struct gateway *gw, const struct cfg_listener *cfg,
			       struct listener_parts *parts, const struct listener *running,
			       char *err, size_t errlen)
{
	struct listener *l = calloc(1, sizeof *l);
	size_t n = cfg->nbinds * gw->nworkers;
	if (!l || !(l->name = strdup(cfg->name)) || !(l->socks = calloc(n, sizeof *l->socks))) {
		if (l)
			free(l->name);
		free(l);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cfg_binds_format(cfg->binds, cfg->nbinds, l->bind_desc, sizeof l->bind_desc);
	l->gw = gw;
	for (size_t i = 0; i < n; i++) {
		struct listen_sock *ls = &l->socks[i];
		const struct cfg_bind *b = &cfg->binds[i / gw->nworkers];
		ls->l = l;
		ls->worker = (unsigned)(i % gw->nworkers);
		ls->io.fd = -1;
		ev_timer_init(&ls->retry, on_accept_retry, ls);
		cfg_bind_format(b, ls->desc, sizeof ls->desc);
		ls->fd = bind_socket(b, ls->desc, running, ls->worker, gw->nworkers > 1);
		l->nsocks = i + 1;
		if (ls->fd < 0 || ev_io_start(worker_of(ls)->loop, &ls->io, ls->fd, EPOLLIN,
					      on_accept, ls) != 0) {
			snprintf(err, errlen, "cannot listen on %s: %s", ls->desc, strerror(errno));
			close_sockets(l);
			free(l->socks);
			free(l->name);
			free(l);
			return NULL;
		}
	}
	apply_settings(l, cfg, parts);
	return l;
}

void listener_update(struct listener *l, const struct cfg_listener *cfg,
		     struct listener_parts *parts)
{
	apply_settings(l, cfg, parts);
}

static void listener_free(struct listener *l)
{
	if (l->ctx)
		SSL_CTX_free(l->ctx);
	auth_acl_free(l->acl);
	auth_acl_free(l->sub_acl);
	auth_pwfile_free(l->pwfile);
	free(l->socks);
	free(l->name);
	free(l);
}

void listener_close(struct listener *l)
{
	close_sockets(l);
	if (atomic_load(&l->nconns) == 0) {
		listener_free(l);
		return;
	}
	/* Its sessions still name it in their log lines: kept until they
	 * are gone (listener_reap). */
	l->next = l->gw->retired;
	l->gw->retired = l;
}

void listener_reap(struct gateway *gw)
{
	struct listener **pp = &gw->retired;
	while (*pp) {
		struct listener *l = *pp;
		if (atomic_load(&l->nconns) == 0) {
			*pp = l->next;
			listener_free(l);
		} else {
			pp = &l->next;
		}
	}
}
