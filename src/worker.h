/* worker: one thread's share of the devices ([gateway] threads).
 *
 * A worker owns its sessions end to end: their connections (TLS), MQTT,
 * decoding, ACLs, rates, timers and the replies they hold until durable;
 * and the batch its sessions' readings go into. It talks to the owner
 * (the spool, the per-device seq, the upstream, the downlink and the
 * registry of client ids, on the main thread) only through messages
 * (wq.h): its batch once per turn, a session's attach, detach,
 * subscriptions and command acks; and it hears back the same way, in
 * its own turn: which commit holds its batch, the durable commit, holds,
 * attach and subscribe answers, commands to deliver, takeovers. No lock is
 * taken per reading.
 *
 * Worker 0 shares the main thread and its loop with the owner; it talks to
 * it through the same queues, drained in the same turn. Workers 1..n-1
 * each run a thread and a loop of their own.
 *
 * What the owner changes in the workers' state (a reload: listeners,
 * contexts, the configuration, sessions a new CRL refuses; a stop), it
 * changes with every worker parked (workers_park): each waits, between two
 * turns of its loop, until workers_unpark. Rare, and short. */
#ifndef IOTGW_WORKER_H
#define IOTGW_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotgw/evloop.h"
#include "iotgw/prom.h"
#include "iotgw/strmap.h"
#include "rbatch.h"
#include "wq.h"

struct gateway;
struct session;
struct pwcheck_port;

struct worker {
	unsigned index;
	struct gateway *gw;
	struct ev_loop *loop;
	struct wq inbox; /* from the owner */
	/* Its sessions (doubly linked through session.prev/next) and the
	 * counts the owner reads (status, metrics, shares). */
	struct session *sessions;
	atomic_size_t nsessions;
	atomic_size_t nactive; /* past their CONNECT: devices competing for the spool */
	struct strmap *by_token; /* token (hex) -> struct session * (tokens.c) */
	uint64_t next_id;
	/* Sessions with replies since the last seal; with sealed replies not
	 * yet released; held over their share; waiting for room in the batch
	 * (session_int.h has the links). */
	struct session *unsealed, *sealed, *share_held, *batch_wait;
	/* The batch its sessions fill this turn, the one that came back (kept
	 * for the next), and whether one is with the owner (one at a time). */
	struct rbatch *filling, *spare;
	bool inflight;
	uint64_t durable; /* every commit up to here is on disk */
	/* Device PUBLISH read -> its PUBACK written; mu: a scrape reads it. */
	pthread_mutex_t mu;
	struct prom_histo puback;
	struct pwcheck_port *pwcheck; /* its way to the password checks (gw->pwcheck) */
	int reserve_fd;          /* spare descriptor released when accept hits EMFILE */
	atomic_uint_fast64_t handshakes; /* TLS handshakes finished here, failed ones too */
	pthread_t tid;
	bool started;
	/* The owner's (owner.c): the latest commit this worker heard about,
	 * and the latest durable one it was told. */
	uint64_t awaits_commit, told_durable;
};

/* Sets up worker index on loop (the calling thread receives its inbox
 * until worker_set_thread). 0, or -1 with a reason in err. */
int worker_init(struct worker *w, struct gateway *gw, unsigned index, struct ev_loop *loop,
		char *err, size_t errlen);
/* Closes its sessions without logging, frees what it holds. */
void worker_free(struct worker *w);

/* Before the worker's loop sleeps: seals the replies held this turn and
 * hands the batch to the owner, unless one is with it already. */
void worker_hand_batch(struct worker *w);
/* Acts on what the owner posted. true when something was done that may
 * have read devices (another round of hand and drain may be due). */
bool worker_drain(struct worker *w);


/* The owner's: starts the threads of workers 1..n-1 (0, or -1 with a
 * reason), stops and joins them, and parks and unparks them. */
int workers_start(struct gateway *gw, char *err, size_t errlen);
void workers_stop(struct gateway *gw);
void workers_park(struct gateway *gw);
void workers_unpark(struct gateway *gw);

#endif
