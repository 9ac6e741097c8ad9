/* conn_int: what conn.c shares with the connection types (conn_tcp.c,
 * conn_tls.c) and its PROXY protocol phase (conn_proxy.c), and nobody else
 * sees: the conn itself and the type's operations. The rest of the daemon
 * holds a conn only through conn.h. */
#ifndef IOTGW_CONN_INT_H
#define IOTGW_CONN_INT_H

#include "iotgw/buf.h"
#include "iotgw/conn.h"

enum conn_state {
	CONN_STATE_PROXY,     /* reading the PROXY protocol header (conn_proxy.c) */
	CONN_STATE_HANDSHAKE, /* TLS handshake in progress */
	CONN_STATE_OPEN,
	CONN_STATE_ERROR, /* failed; conn_error() says why */
	CONN_STATE_EOF,   /* peer closed */
};

struct conn_type {
	const char *name;
	/* A conn of this type on fd (allocated with the type's own room
	 * after struct conn); NULL with a reason in err. */
	struct conn *(*create)(SSL_CTX *ctx, int fd, char *err, size_t errlen);
	bool handshakes; /* starts in CONN_STATE_HANDSHAKE */
	int (*handshake)(struct conn *c); /* 1 done, 0 again, -1 failed */
	/* The conn entered CONN_STATE_HANDSHAKE (at conn_new, or after the
	 * PROXY header). NULL: nothing to do. */
	void (*handshake_begin)(struct conn *c);
	ssize_t (*read)(struct conn *c, void *p, size_t n);
	ssize_t (*write)(struct conn *c, const void *p, size_t n);
	/* Bytes already read from the socket and not yet returned by read
	 * (TLS records), which epoll cannot see. NULL: never. */
	bool (*pending)(const struct conn *c);
	void (*destroy)(struct conn *c); /* releases type-specific state and c */
};

/* Where a connection is, for the handshake threads (conn_offload.c). */
enum conn_where {
	CONN_HOME,      /* the loop thread's */
	CONN_TO_THREAD, /* queued for a handshake thread */
	CONN_ON_THREAD, /* a handshake thread has it */
	CONN_TO_HOME,   /* handed back, not yet reported by the loop */
};

struct hs_thread;

struct conn {
	const struct conn_type *type;
	struct ev_loop *loop; /* of the thread that has it */
	struct ev_io io;
	int fd; /* the socket, also while io is stopped */
	enum conn_state state;
	bool read_paused;
	bool want_read_for_write; /* TLS: a write needs the socket readable */
	bool want_write_for_read; /* TLS: a read needs the socket writable */
	bool hs_want_write;       /* TLS handshake waits for writability */
	enum conn_fail_class fail_class; /* after a failed handshake */
	struct buf out;
	struct conn_proxy *proxy; /* during CONN_STATE_PROXY only */
	const struct conn_handler *handler;
	void *owner;
	char error[160];
	/* The handshake threads. away: the loop's own flag, set while a
	 * thread may have it (the loop then touches nothing but this, fd, out
	 * and read_paused, which the handshake does not read); where, abandoned and off_next under conn_offload's mutex;
	 * th_next and th_abandoned the thread's; hs_result how the handshake
	 * ended there (1 done, -1 failed), read by the loop once back. */
	bool away;
	int hs_errno; /* a handshake thread could not watch it (errno), or 0 */
	enum conn_where where;
	bool abandoned;
	bool th_abandoned;
	int hs_result;
	struct conn *off_next, *th_next;
	struct hs_thread *thread;
};

void conn_set_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The one place the state changes after conn_new; an illegal change is a
 * bug and aborts. */
void conn_set_state(struct conn *c, enum conn_state next);
/* Recomputes epoll interest after a type changed what it waits for. */
void conn_update_interest(struct conn *c);

/* What conn_offload.c calls back in conn.c (given at start, so that the
 * calls go one way: conn.c uses conn_offload, never the reverse). step: one
 * step of the handshake on a thread (1 done, 0 again with the interest set,
 * -1 failed with state and error set); returned: on the loop, a thread
 * handed c back (hs_result, hs_errno): report it as conn_on_io would have;
 * destroy: free c at once, on the thread that has it. */
struct conn_offload_ops {
	int (*step)(struct conn *c);
	void (*returned)(struct conn *c);
	void (*destroy)(struct conn *c);
};
int conn_offload_start(struct ev_loop *loop, unsigned n, const struct conn_offload_ops *ops,
		       char *err, size_t errlen);

/* conn_offload.c, loop thread: pick: should the connection whose
 * ClientHello was just read go to a handshake thread (round-robin); send:
 * hand it over; abandon: its owner frees it while away: true when its
 * thread will free it, false when it is the loop's again (conn_free goes
 * on); count_home: a handshake finished on the loop. */
bool conn_offload_pick(void);
void conn_offload_send(struct conn *c);
bool conn_offload_abandon(struct conn *c);
void conn_offload_count_home(void);

/* What a type's handshake returns besides 1, 0 and -1: the ClientHello is
 * read and the handshake goes on on a handshake thread (conn_offload_pick). */
#define CONN_HS_OFFLOAD 2

/* conn_proxy.c: the PROXY protocol phase. begin: its state for mode (-1
 * out of memory); read: what the socket holds of the header, consuming
 * exactly the header's bytes: 1 ended (out says how), 0 more to come,
 * -1 failed (out says why); end: its state released (also at conn_free). */
int conn_proxy_begin(struct conn *c, enum cfg_proxy_mode mode);
int conn_proxy_read(struct conn *c, struct conn_proxied *out);
void conn_proxy_end(struct conn *c);

#endif
