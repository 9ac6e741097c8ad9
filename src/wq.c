/* wq: messages between the owner and the workers (wq.h). */
#include "wq.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct wmsg *wmsg_new(enum wmsg_kind kind, size_t len)
{
	struct wmsg *m = calloc(1, sizeof *m + len + 1);
	if (!m)
		return NULL;
	m->kind = kind;
	m->len = len;
	return m;
}

struct wmsg *wmsg_text(enum wmsg_kind kind, const char *a, const char *b, const char *c)
{
	const char *s[3] = {a ? a : "", b ? b : "", c ? c : ""};
	size_t l[3], len = 0;
	for (int i = 0; i < 3; i++)
		len += (l[i] = strlen(s[i])) + 1;
	struct wmsg *m = wmsg_new(kind, len);
	if (!m)
		return NULL;
	uint8_t *p = m->data;
	for (int i = 0; i < 3; i++) {
		memcpy(p, s[i], l[i] + 1);
		p += l[i] + 1;
	}
	return m;
}

const char *wmsg_str(const struct wmsg *m, unsigned i)
{
	const char *p = (const char *)m->data, *end = p + m->len;
	while (i-- && p < end)
		p += strlen(p) + 1;
	return p < end ? p : "";
}

void wmsg_free(struct wmsg *m)
{
	free(m);
}

int wq_init(struct wq *q, struct ev_loop *loop, ev_io_fn fn, void *arg)
{
	memset(q, 0, sizeof *q);
	pthread_mutex_init(&q->mu, NULL);
	q->loop = loop;
	q->home = pthread_self();
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0)
		return -1;
	if (ev_io_start(loop, &q->io, q->efd, EPOLLIN, fn, arg) != 0) {
		close(q->efd);
		q->efd = -1;
		return -1;
	}
	return 0;
}

void wq_set_home(struct wq *q, pthread_t home)
{
	pthread_mutex_lock(&q->mu);
	q->home = home;
	pthread_mutex_unlock(&q->mu);
}

void wq_destroy(struct wq *q)
{
	if (q->efd >= 0) {
		ev_io_stop(q->loop, &q->io);
		close(q->efd);
		q->efd = -1;
	}
	struct wmsg *m = q->head;
	while (m) {
		struct wmsg *next = m->next;
		rbatch_free(m->batch);
		if (m->kind == W_NEWS)
			rbatch_free(m->news.batch);
		wmsg_free(m);
		m = next;
	}
	q->head = q->tail = NULL;
	pthread_mutex_destroy(&q->mu);
}

static void post(struct wq *q, struct wmsg *m, bool may_wake)
{
	m->next = NULL;
	pthread_mutex_lock(&q->mu);
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	/* Once per take: what follows a wake is taken with it. */
	bool wake = may_wake && !q->woken && !pthread_equal(q->home, pthread_self());
	if (wake)
		q->woken = true;
	pthread_mutex_unlock(&q->mu);
	if (wake)
		wq_wake(q);
}

void wq_post(struct wq *q, struct wmsg *m)
{
	post(q, m, true);
}

void wq_post_quiet(struct wq *q, struct wmsg *m)
{
	post(q, m, false);
}

void wq_wake(struct wq *q)
{
	uint64_t one = 1;
	ssize_t w = write(q->efd, &one, sizeof one);
	(void)w; /* EAGAIN: the counter is non-zero, the receiver wakes anyway */
}

void wq_woken(struct wq *q)
{
	uint64_t v;
	ssize_t r = read(q->efd, &v, sizeof v);
	(void)r; /* EAGAIN: a drain before sleeping took the posts already */
}

struct wmsg *wq_take(struct wq *q)
{
	pthread_mutex_lock(&q->mu);
	struct wmsg *m = q->head;
	q->head = q->tail = NULL;
	q->woken = false;
	pthread_mutex_unlock(&q->mu);
	return m;
}
