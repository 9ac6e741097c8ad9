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


struct conn {
	const struct conn_type *type;
	struct ev_loop *loop; /* its worker's */
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
};

void conn_set_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The one place the state changes after conn_new; an illegal change is a
 * bug and aborts. */
void conn_set_state(struct conn *c, enum conn_state next);
/* Recomputes epoll interest after a type changed what it waits for. */
void conn_update_interest(struct conn *c);


/* conn_proxy.c: the PROXY protocol phase. begin: its state for mode (-1
 * out of memory); read: what the socket holds of the header, consuming
 * exactly the header's bytes: 1 ended (out says how), 0 more to come,
 * -1 failed (out says why); end: its state released (also at conn_free). */
int conn_proxy_begin(struct conn *c, enum cfg_proxy_mode mode);
int conn_proxy_read(struct conn *c, struct conn_proxied *out);
void conn_proxy_end(struct conn *c);

#endif
