/* metrics_http: the small HTTP/1.x server behind [metrics] bind.
 *
 * GET /metrics (Prometheus exposition), /healthz (the loop turns: that we
 * answer at all says so) and /readyz (status_ready; the report as body).
 * One request per connection, answered from the counters in memory while
 * the request is read, then closed; scrapes within HTTP_RENDER_REUSE_MS of
 * each other share one rendering. A scraper cannot hurt devices: at most
 * HTTP_CLIENTS connections at once (more wait in the kernel's backlog),
 * requests larger than HTTP_REQUEST_MAX or slower than HTTP_TIMEOUT_MS are
 * dropped, and a scrape never walks the sessions. */
#include "metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iotgw/log.h"

#define HTTP_CLIENTS 16
#define HTTP_REQUEST_MAX 4096
#define HTTP_TIMEOUT_MS 5000
#define HTTP_RESPONSE_MAX (4u << 20)
/* Scrapes this close together get the same exposition: a real scraper
 * waits a second or more, and a flood then costs copies, not renders. */
#define HTTP_RENDER_REUSE_MS 200

enum http_path { PATH_METRICS, PATH_HEALTHZ, PATH_READYZ, PATH_OTHER, PATH__COUNT };
static const char *const path_names[PATH__COUNT] = {"/metrics", "/healthz", "/readyz", "other"};
static const int codes[] = {200, 400, 404, 405, 500, 503};
#define NCODES (sizeof codes / sizeof codes[0])

struct http_client {
	struct metrics_http *h;
	int fd;
	struct ev_io io;
	struct ev_timer timer;
	struct buf in, out;
	size_t sent;
	bool responding;
};

struct http_sock {
	struct metrics_http *h;
	int fd;
	struct ev_io io;
};

struct metrics_http {
	struct gateway *gw;
	char desc[CFG_BINDS_TEXT];
	struct http_sock socks[CFG_BINDS_MAX];
	size_t nsocks;
	struct http_client *clients[HTTP_CLIENTS];
	size_t nclients;
	bool accepting;
	uint64_t requests[PATH__COUNT][NCODES];
	struct buf exposition; /* the last /metrics body (owned) */
	uint64_t rendered_at_ms;
};

static void set_accepting(struct metrics_http *h, bool on)
{
	if (h->accepting == on)
		return;
	h->accepting = on;
	for (size_t i = 0; i < h->nsocks; i++)
		(void)ev_io_set(h->gw->loop, &h->socks[i].io, on ? EPOLLIN : 0);
}

static void client_free(void *p)
{
	struct http_client *c = p;
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

static void client_close(struct http_client *c)
{
	struct metrics_http *h = c->h;
	ev_io_stop(h->gw->loop, &c->io);
	ev_timer_stop(h->gw->loop, &c->timer);
	close(c->fd);
	for (size_t i = 0; i < h->nclients; i++)
		if (h->clients[i] == c) {
			h->clients[i] = h->clients[--h->nclients];
			break;
		}
	set_accepting(h, true);
	ev_defer(h->gw->loop, client_free, c);
}

static void count(struct metrics_http *h, enum http_path p, int code)
{
	for (size_t i = 0; i < NCODES; i++)
		if (codes[i] == code)
			h->requests[p][i]++;
}

static int render_requests(struct metrics_http *h, struct buf *b)
{
	int rc = prom_family(b, "iotgw_http_requests_total", "counter",
			     "Requests to the metrics listener, by path and status code.");
	char labels[64];
	for (int p = 0; p < PATH__COUNT; p++)
		for (size_t i = 0; i < NCODES; i++) {
			/* The scrape being answered counts as a 200 already. */
			uint64_t n = h->requests[p][i] + (p == PATH_METRICS && codes[i] == 200);
			if (!n)
				continue;
			snprintf(labels, sizeof labels, "path=\"%s\",code=\"%d\"", path_names[p],
				 codes[i]);
			rc |= prom_sample_u64(b, "iotgw_http_requests_total", labels, n);
		}
	return rc;
}

static void respond(struct http_client *c, enum http_path p, int code, const char *ctype,
		    const struct buf *body, bool head)
{
	const char *reason = code == 200   ? "OK"
			     : code == 400 ? "Bad Request"
			     : code == 404 ? "Not Found"
			     : code == 405 ? "Method Not Allowed"
			     : code == 503 ? "Service Unavailable"
					   : "Internal Server Error";
	char hdr[256];
	int n = snprintf(hdr, sizeof hdr,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
			 code, reason, ctype, body ? body->len : 0,
			 code == 405 ? "Allow: GET, HEAD\r\n" : "");
	count(c->h, p, code);
	c->out.len = 0;
	if (buf_append(&c->out, hdr, (size_t)n) != 0 ||
	    (body && !head && buf_append(&c->out, body->data, body->len) != 0)) {
		client_close(c);
		return;
	}
	c->responding = true;
	(void)ev_io_set(c->h->gw->loop, &c->io, EPOLLOUT);
}

static void respond_text(struct http_client *c, enum http_path p, int code, const char *text,
			 bool head)
{
	struct buf b = {.data = (uint8_t *)(uintptr_t)text, .len = strlen(text)};
	respond(c, p, code, "text/plain; charset=utf-8", &b, head);
}

static void handle_request(struct http_client *c, const char *req, size_t len)
{
	/* "GET /metrics HTTP/1.1": method, target (query ignored), version. */
	char method[8], target[128];
	const char *sp1 = memchr(req, ' ', len);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - req)) : NULL;
	if (!sp1 || !sp2 || sp1 - req >= (long)sizeof method ||
	    sp2 - sp1 - 1 >= (long)sizeof target || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		respond_text(c, PATH_OTHER, 400, "bad request\n", false);
		return;
	}
	snprintf(method, sizeof method, "%.*s", (int)(sp1 - req), req);
	snprintf(target, sizeof target, "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
	target[strcspn(target, "?")] = '\0';
	enum http_path p = PATH_OTHER;
	for (int i = 0; i < PATH_OTHER; i++)
		if (strcmp(target, path_names[i]) == 0)
			p = (enum http_path)i;
	bool head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		respond_text(c, p, 405, "only GET and HEAD\n", false);
		return;
	}
	struct gateway *gw = c->h->gw;
	struct buf body;
	buf_init(&body, HTTP_RESPONSE_MAX);
	switch (p) {
	case PATH_METRICS: {
		struct metrics_http *h = c->h;
		uint64_t now = ev_now_ms(gw->loop);
		if (!h->exposition.len || now - h->rendered_at_ms >= HTTP_RENDER_REUSE_MS) {
			h->exposition.len = 0;
			if (metrics_render(gw, &h->exposition) != 0 ||
			    render_requests(h, &h->exposition) != 0) {
				h->exposition.len = 0;
				respond_text(c, p, 500, "out of memory\n", head);
				break;
			}
			h->rendered_at_ms = now;
		}
		respond(c, p, 200, "text/plain; version=0.0.4; charset=utf-8", &h->exposition,
			head);
		break;
	}
	case PATH_HEALTHZ:
		respond_text(c, p, 200, "ok\n", head);
		break;
	case PATH_READYZ: {
		struct status_snapshot s;
		char why[128];
		gateway_snapshot(gw, &s);
		bool ready = status_ready(&s, why, sizeof why);
		if (status_report(&s, &body) != 0)
			respond_text(c, p, 500, "out of memory\n", head);
		else
			respond(c, p, ready ? 200 : 503, "text/plain; charset=utf-8", &body, head);
		break;
	}
	case PATH_OTHER:
	case PATH__COUNT:
		respond_text(c, p, 404, "not found: try /metrics, /healthz or /readyz\n", head);
		break;
	}
	buf_free(&body);
}

static void on_client(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct http_client *c = io->arg;
	if (c->responding) {
		while (c->sent < c->out.len) {
			ssize_t n = send(c->fd, c->out.data + c->sent, c->out.len - c->sent,
					 MSG_NOSIGNAL);
			if (n > 0) {
				c->sent += (size_t)n;
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			break;
		}
		client_close(c);
		return;
	}
	if (buf_reserve(&c->in, 1024) != 0) {
		respond_text(c, PATH_OTHER, 400, "request too large\n", false);
		return;
	}
	ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(c);
		return;
	}
	c->in.len += (size_t)n;
	c->in.data[c->in.len] = '\0';
	const char *text = (const char *)c->in.data;
	/* The request line is all we need, but a client expects its headers
	 * read before the answer: wait for the blank line. */
	if (!strstr(text, "\r\n\r\n") && !strstr(text, "\n\n"))
		return;
	handle_request(c, text, strcspn(text, "\r\n"));
	if (c->responding)
		on_client(loop, io, EPOLLOUT); /* most answers go out at once */
}

static void on_client_timeout(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	client_close(t->arg);
}

static void on_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)events;
	struct http_sock *hs = io->arg;
	struct metrics_http *h = hs->h;
	while (h->nclients < HTTP_CLIENTS) {
		int fd = accept4(hs->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or EMFILE: the backlog keeps it */
		struct http_client *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			return;
		}
		c->h = h;
		c->fd = fd;
		buf_init(&c->in, HTTP_REQUEST_MAX);
		buf_init(&c->out, HTTP_RESPONSE_MAX + 256);
		ev_timer_init(&c->timer, on_client_timeout, c);
		if (ev_io_start(loop, &c->io, fd, EPOLLIN, on_client, c) != 0) {
			close(fd);
			free(c);
			return;
		}
		ev_timer_start(loop, &c->timer, HTTP_TIMEOUT_MS);
		h->clients[h->nclients++] = c;
	}
	set_accepting(h, false); /* full: the rest wait in the backlog */
}

static int bind_one(const struct cfg_bind *b, char *err, size_t errlen)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	bool v6 = strchr(b->host, ':') != NULL;
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(b->port);
		inet_pton(AF_INET6, b->host, &a->sin6_addr);
		sl = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(b->port);
		inet_pton(AF_INET, b->host, &a->sin_addr);
		sl = sizeof *a;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0) {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (v6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	}
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 64) != 0) {
		char addr[CFG_BIND_TEXT];
		cfg_bind_format(b, addr, sizeof addr);
		snprintf(err, errlen, "[metrics] bind %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct metrics_http *metrics_http_open(struct gateway *gw, const struct cfg_metrics *cfg,
				       char *err, size_t errlen)
{
	struct metrics_http *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->gw = gw;
	h->accepting = true;
	buf_init(&h->exposition, HTTP_RESPONSE_MAX);
	cfg_binds_format(cfg->binds, cfg->nbinds, h->desc, sizeof h->desc);
	for (size_t i = 0; i < cfg->nbinds; i++) {
		int fd = bind_one(&cfg->binds[i], err, errlen);
		if (fd < 0) {
			metrics_http_close(h);
			return NULL;
		}
		struct http_sock *s = &h->socks[h->nsocks++];
		s->h = h;
		s->fd = fd;
		if (ev_io_start(gw->loop, &s->io, fd, EPOLLIN, on_accept, s) != 0) {
			snprintf(err, errlen, "[metrics]: %s", strerror(errno));
			metrics_http_close(h);
			return NULL;
		}
	}
	return h;
}

void metrics_http_close(struct metrics_http *h)
{
	if (!h)
		return;
	while (h->nclients)
		client_close(h->clients[0]);
	for (size_t i = 0; i < h->nsocks; i++) {
		ev_io_stop(h->gw->loop, &h->socks[i].io);
		close(h->socks[i].fd);
	}
	buf_free(&h->exposition);
	free(h);
}

const char *metrics_http_where(const struct metrics_http *h)
{
	return h->desc;
}
