/* wq: messages between the owner and the workers, one queue per receiver.
 * Any thread posts; the receiving thread takes them all at once, in the
 * order they were posted, on its own loop. A post from another thread
 * wakes the receiver through an eventfd (once until the receiver takes
 * what is queued); a post from the receiver's own thread does not, as each
 * thread drains its queue before it sleeps. The queue owns a message from its post
 * until the receiver takes it; the receiver then frees it (wmsg_free).
 *
 * What crosses (never per reading): batches of readings and their commits,
 * the durable commit, holds; a session's attach, detach, subscriptions and
 * command acks; commands to deliver; a takeover. */
#ifndef IOTGW_WQ_H
#define IOTGW_WQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotgw/evloop.h"
#include "ingest.h"
#include "rbatch.h"

enum wmsg_kind {
	/* worker -> owner */
	O_BATCH,       /* batch: the worker's sealed batch */
	O_ATTACH,      /* token, flag = clean; text: client id, device, peer */
	O_DETACH,      /* token, flag = registered; text: client id, device */
	O_SUBSCRIBE,   /* token, n = packet id; text: device; data: filters (wmsg_filters) */
	O_UNSUBSCRIBE, /* token; text: device; data: filters */
	O_CMD_ACK,     /* token, n = packet id; text: device */
	/* owner -> worker */
	W_NEWS,     /* news: ingest's, for this worker */
	W_ATTACHED, /* token, flag = session present, n = 0 ok / 1 out of memory */
	W_SUBACK,   /* token, n = packet id; data: the return codes */
	W_TAKEOVER, /* token; text: the new connection's peer */
	W_DELIVER,  /* token; data: a PUBLISH packet */
};

/* Why a SUBSCRIBE's filter was refused (W_SUBACK's reason byte). */
enum sub_refusal { SUB_GRANTED, SUB_NO_DOWNLINK, SUB_ACL, SUB_TOO_MANY };

struct wmsg {
	struct wmsg *next;
	enum wmsg_kind kind;
	unsigned worker; /* the sender (O_*) */
	uint64_t token;
	uint64_t n;
	bool flag;
	struct rbatch *batch;
	struct ingest_news news; /* W_NEWS; waits point into data */
	size_t len;
	uint8_t data[]; /* NUL-separated strings, or bytes */
};

/* A message with len bytes of data (zeroed). NULL: out of memory. */
struct wmsg *wmsg_new(enum wmsg_kind kind, size_t len);
/* With the strings a, b, c (NULL: empty) as data, NUL-separated. */
struct wmsg *wmsg_text(enum wmsg_kind kind, const char *a, const char *b, const char *c);
/* The i-th NUL-separated string of the data ("" past the end). */
const char *wmsg_str(const struct wmsg *m, unsigned i);
void wmsg_free(struct wmsg *m);

struct wq {
	pthread_mutex_t mu;
	struct wmsg *head, *tail; /* under mu */
	bool woken;               /* under mu: woken since the last take */
	int efd;
	pthread_t home; /* the receiving thread */
	struct ev_loop *loop;
	struct ev_io io;
};

/* Registers the eventfd on loop (the receiver's), calling fn(arg) when
 * posts from other threads arrive. 0 or -1 (errno). The calling thread is
 * the receiver until wq_set_home. */
int wq_init(struct wq *q, struct ev_loop *loop, ev_io_fn fn, void *arg);
void wq_set_home(struct wq *q, pthread_t home); /* the receiving thread, once it exists */
/* Frees what is still queued (with wmsg_free; batches too). */
void wq_destroy(struct wq *q);
void wq_post(struct wq *q, struct wmsg *m);
/* Posts without waking the receiver: for news that another message, sure to
 * follow, will wake it for (it also takes it at the start of its next turn). */
void wq_post_quiet(struct wq *q, struct wmsg *m);
/* Everything posted so far, oldest first (a list through next). NULL:
 * nothing. */
struct wmsg *wq_take(struct wq *q);
/* The eventfd's callback resets it with this before taking. */
void wq_woken(struct wq *q);
/* Wakes the receiver with nothing posted (it looks at its flags). */
void wq_wake(struct wq *q);

#endif
