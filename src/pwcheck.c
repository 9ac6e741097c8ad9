/* pwcheck: password checks on threads of their own (pwcheck.h).
 *
 * Jobs wait in one FIFO under the pool's mutex; a thread takes one, runs
 * the KDF with nothing shared, and puts it on its port's done list; the
 * port's eventfd wakes that port's loop, which runs the callbacks and frees
 * the jobs. Only the port's loop thread reads or writes a job's owner, so
 * cancelling needs the mutex only for the queue. */
#include "iotgw/pwcheck.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define PWCHECK_THREADS_MAX 8

struct pwcheck_job {
	struct pwcheck_job *next;
	struct auth_pw_entry entry;
	uint8_t *pw;
	size_t len;
	bool good;
	bool started;         /* under mu: a thread took it */
	struct pwcheck_port *port;
	pwcheck_done_fn done; /* the port's loop thread only */
	void *owner;          /* the port's loop thread only; NULL once cancelled */
};

struct pwcheck {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pwcheck_job *todo, *todo_tail; /* under mu */
	bool stopping;                        /* under mu */
	unsigned queued, queue_max;           /* under mu: waiting, running or unreported */
	pthread_t threads[PWCHECK_THREADS_MAX];
	unsigned nthreads;
};

struct pwcheck_port {
	struct pwcheck *pc;
	struct ev_loop *loop;
	int efd;
	struct ev_io io;
	struct pwcheck_job *finished; /* under the pool's mu */
};

static void job_free(struct pwcheck_job *j)
{
	if (j->pw) {
		OPENSSL_cleanse(j->pw, j->len);
		free(j->pw);
	}
	OPENSSL_cleanse(&j->entry, sizeof j->entry);
	free(j);
}

static void *worker(void *arg)
{
	struct pwcheck *pc = arg;
	pthread_mutex_lock(&pc->mu);
	for (;;) {
		while (!pc->todo && !pc->stopping)
			pthread_cond_wait(&pc->cv, &pc->mu);
		if (pc->stopping)
			break;
		struct pwcheck_job *j = pc->todo;
		pc->todo = j->next;
		if (!pc->todo)
			pc->todo_tail = NULL;
		j->started = true;
		pthread_mutex_unlock(&pc->mu);
		j->good = auth_pw_check(&j->entry, j->pw, j->len);
		pthread_mutex_lock(&pc->mu);
		struct pwcheck_port *port = j->port;
		j->next = port->finished;
		port->finished = j;
		uint64_t one = 1;
		ssize_t w = write(port->efd, &one, sizeof one);
		(void)w; /* the counter cannot overflow with a few jobs */
	}
	pthread_mutex_unlock(&pc->mu);
	return NULL;
}

static void on_done(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct pwcheck_port *port = io->arg;
	struct pwcheck *pc = port->pc;
	uint64_t v;
	ssize_t r = read(port->efd, &v, sizeof v);
	(void)r;
	pthread_mutex_lock(&pc->mu);
	struct pwcheck_job *list = port->finished;
	port->finished = NULL;
	for (struct pwcheck_job *j = list; j; j = j->next)
		pc->queued--;
	pthread_mutex_unlock(&pc->mu);
	/* The list is newest first: reverse it, so callbacks run in the order
	 * the checks finished. */
	struct pwcheck_job *ordered = NULL;
	while (list) {
		struct pwcheck_job *n = list->next;
		list->next = ordered;
		ordered = list;
		list = n;
	}
	while (ordered) {
		struct pwcheck_job *j = ordered;
		ordered = j->next;
		if (j->owner)
			j->done(j->owner, j->good);
		job_free(j);
	}
}

struct pwcheck *pwcheck_new(unsigned threads, unsigned queue_max)
{
	struct pwcheck *pc = calloc(1, sizeof *pc);
	if (!pc)
		return NULL;
	pc->queue_max = queue_max;
	pthread_mutex_init(&pc->mu, NULL);
	pthread_cond_init(&pc->cv, NULL);
	if (threads > PWCHECK_THREADS_MAX)
		threads = PWCHECK_THREADS_MAX;
	/* Our threads take no signals (they inherit this mask): SIGTERM and
	 * SIGHUP belong to the main loop's signalfd, whenever we are created. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = 0;
	for (unsigned i = 0; i < threads && e == 0; i++) {
		e = pthread_create(&pc->threads[i], NULL, worker, pc);
		if (e == 0)
			pc->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		errno = e;
		pwcheck_free(pc);
		return NULL;
	}
	return pc;
}

void pwcheck_free(struct pwcheck *pc)
{
	if (!pc)
		return;
	pthread_mutex_lock(&pc->mu);
	pc->stopping = true;
	pthread_cond_broadcast(&pc->cv);
	pthread_mutex_unlock(&pc->mu);
	for (unsigned i = 0; i < pc->nthreads; i++)
		pthread_join(pc->threads[i], NULL);
	while (pc->todo) {
		struct pwcheck_job *j = pc->todo;
		pc->todo = j->next;
		job_free(j);
	}
	pthread_cond_destroy(&pc->cv);
	pthread_mutex_destroy(&pc->mu);
	free(pc);
}

struct pwcheck_port *pwcheck_port_new(struct pwcheck *pc, struct ev_loop *loop)
{
	struct pwcheck_port *port = calloc(1, sizeof *port);
	if (!port)
		return NULL;
	port->pc = pc;
	port->loop = loop;
	port->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (port->efd < 0 || ev_io_start(loop, &port->io, port->efd, EPOLLIN, on_done, port) != 0) {
		int e = errno;
		if (port->efd >= 0)
			close(port->efd);
		free(port);
		errno = e;
		return NULL;
	}
	return port;
}

void pwcheck_port_free(struct pwcheck_port *port)
{
	if (!port)
		return;
	while (port->finished) {
		struct pwcheck_job *j = port->finished;
		port->finished = j->next;
		job_free(j);
	}
	ev_io_stop(port->loop, &port->io);
	close(port->efd);
	free(port);
}

struct pwcheck_job *pwcheck_submit(struct pwcheck_port *port, const struct auth_pwfile *pf,
				   const char *device, const uint8_t *pw, size_t len,
				   pwcheck_done_fn done, void *owner)
{
	struct pwcheck_job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	auth_pw_lookup(pf, device, &j->entry);
	j->len = len;
	j->pw = malloc(len ? len : 1);
	if (!j->pw) {
		job_free(j);
		return NULL;
	}
	memcpy(j->pw, pw, len);
	j->done = done;
	j->owner = owner;
	j->port = port;
	struct pwcheck *pc = port->pc;
	pthread_mutex_lock(&pc->mu);
	if (pc->queued >= pc->queue_max) {
		pthread_mutex_unlock(&pc->mu);
		job_free(j);
		return NULL;
	}
	pc->queued++;
	if (pc->todo_tail)
		pc->todo_tail->next = j;
	else
		pc->todo = j;
	pc->todo_tail = j;
	pthread_cond_signal(&pc->cv);
	pthread_mutex_unlock(&pc->mu);
	return j;
}

void pwcheck_cancel(struct pwcheck_job *job)
{
	job->owner = NULL;
	/* Not started yet: nobody will want it, so nobody computes it (a
	 * flood of wrong passwords that hangs up costs nothing more). */
	struct pwcheck *pc = job->port->pc;
	pthread_mutex_lock(&pc->mu);
	bool unlinked = false;
	if (!job->started) {
		struct pwcheck_job **pp = &pc->todo, *prev = NULL;
		while (*pp && *pp != job) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		if (*pp) {
			*pp = job->next;
			if (pc->todo_tail == job)
				pc->todo_tail = prev;
			unlinked = true;
			pc->queued--;
		}
	}
	pthread_mutex_unlock(&pc->mu);
	if (unlinked)
		job_free(job);
}

unsigned pwcheck_queued(struct pwcheck_port *port)
{
	struct pwcheck *pc = port->pc;
	pthread_mutex_lock(&pc->mu);
	unsigned n = pc->queued;
	pthread_mutex_unlock(&pc->mu);
	return n;
}
