/* pwcheck: password checks on worker threads (pwcheck.h).
 *
 * Jobs wait in a FIFO under a mutex; workers take one, run the KDF with
 * nothing shared, and put it on the done list; an eventfd wakes the loop,
 * which runs the callbacks and frees the jobs. Only the loop thread reads
 * or writes a job's owner, so cancelling needs no lock. */
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
	bool started;         /* under mu: a worker took it */
	struct pwcheck *pc;
	pwcheck_done_fn done; /* loop thread only */
	void *owner;          /* loop thread only; NULL once cancelled */
};

struct pwcheck {
	struct ev_loop *loop;
	int efd;
	struct ev_io io;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pwcheck_job *todo, *todo_tail; /* under mu */
	struct pwcheck_job *finished;         /* under mu */
	bool stopping;                        /* under mu */
	unsigned queued, queue_max;           /* loop thread */
	pthread_t threads[PWCHECK_THREADS_MAX];
	unsigned nthreads;
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
		j->next = pc->finished;
		pc->finished = j;
		uint64_t one = 1;
		ssize_t w = write(pc->efd, &one, sizeof one);
		(void)w; /* the counter cannot overflow with a few jobs */
	}
	pthread_mutex_unlock(&pc->mu);
	return NULL;
}

static void on_done(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct pwcheck *pc = io->arg;
	uint64_t v;
	ssize_t r = read(pc->efd, &v, sizeof v);
	(void)r;
	pthread_mutex_lock(&pc->mu);
	struct pwcheck_job *list = pc->finished;
	pc->finished = NULL;
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
		pc->queued--;
		if (j->owner)
			j->done(j->owner, j->good);
		job_free(j);
	}
}

struct pwcheck *pwcheck_new(struct ev_loop *loop, unsigned threads, unsigned queue_max)
{
	struct pwcheck *pc = calloc(1, sizeof *pc);
	if (!pc)
		return NULL;
	pc->loop = loop;
	pc->queue_max = queue_max;
	pc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&pc->mu, NULL);
	pthread_cond_init(&pc->cv, NULL);
	if (pc->efd < 0 || ev_io_start(loop, &pc->io, pc->efd, EPOLLIN, on_done, pc) != 0) {
		pwcheck_free(pc);
		return NULL;
	}
	if (threads > PWCHECK_THREADS_MAX)
		threads = PWCHECK_THREADS_MAX;
	/* Workers take no signals (they inherit this mask): SIGTERM and
	 * SIGHUP belong to the loop's signalfd, whenever we are created. */
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
	for (struct pwcheck_job *lists[2] = {pc->todo, pc->finished}, **l = lists; l < lists + 2;
	     l++)
		while (*l) {
			struct pwcheck_job *j = *l;
			*l = j->next;
			job_free(j);
		}
	if (pc->efd >= 0) {
		ev_io_stop(pc->loop, &pc->io);
		close(pc->efd);
	}
	pthread_cond_destroy(&pc->cv);
	pthread_mutex_destroy(&pc->mu);
	free(pc);
}

struct pwcheck_job *pwcheck_submit(struct pwcheck *pc, const struct auth_pwfile *pf,
				   const char *device, const uint8_t *pw, size_t len,
				   pwcheck_done_fn done, void *owner)
{
	if (pc->queued >= pc->queue_max)
		return NULL;
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
	j->pc = pc;
	pc->queued++;
	pthread_mutex_lock(&pc->mu);
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
	struct pwcheck *pc = job->pc;
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
		}
	}
	pthread_mutex_unlock(&pc->mu);
	if (unlinked) {
		pc->queued--;
		job_free(job);
	}
}

unsigned pwcheck_queued(const struct pwcheck *pc)
{
	return pc->queued;
}
