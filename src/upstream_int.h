/* upstream_int: the state of the upstream connection, shared by upstream.c
 * (the connection and its state machine) and upstream_tls.c (explaining
 * failures, buffering writes under TLS). Not part of the upstream
 * interface: nothing outside these two files includes it. */
#ifndef IOTGW_UPSTREAM_INT_H
#define IOTGW_UPSTREAM_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "iotgw/upstream.h"

struct mosquitto;
struct up_plain;

enum up_state {
	UP_IDLE,       /* waiting for the reconnect timer */
	UP_RESOLVING,  /* connect thread running mosquitto_connect */
	UP_CONNECTING, /* TCP up; TLS handshake and CONNACK pending */
	UP_CONNECTED,
};

/* The settings we keep a private copy of (the config may be freed on reload). */
struct up_settings {
	char *host, *client_id, *ca, *cert, *key, *username, *password;
	uint16_t port;
	bool tls;
	unsigned keepalive_s, inflight, reconnect_min_ms, reconnect_max_ms;
	int host_line, cert_line; /* for "check [upstream] cert (line N)" */
};

struct upstream {
	struct ev_loop *loop;
	struct spool *spool;
	void (*on_progress)(void *);
	void *arg;

	struct up_settings set;
	SSL_CTX *ctx; /* built by tls_ctx_upstream (CA, CRL, client cert); NULL: no TLS */
	bool configured;
	bool reconnect_wanted; /* settings changed while the connect thread ran */
	bool stopping;

	enum up_state state;
	struct mosquitto *mosq;
	/* Above the SSL libmosquitto writes to, the MQTT packets of a loop
	 * iteration collect in plain; upstream_flush encrypts them in as few
	 * records as fit, which collect in wbuf under the SSL and go out in
	 * one write(2). Both NULL without TLS; both owned by the SSL. */
	struct up_plain *plain;
	BIO *wbuf;
	bool flush_blocked; /* the socket took only part of the last flush */
	struct ev_io io;
	struct ev_timer retry_timer; /* reconnect backoff */
	struct ev_timer misc_timer;  /* mosquitto_loop_misc: keepalive pings */
	struct ev_timer connack_timer;
	unsigned attempts;

	pthread_t thread;
	bool thread_running; /* the loop must not touch mosq meanwhile */
	int thread_rc;
	int thread_errno;
	int efd; /* the connect thread signals completion here */
	struct ev_io efd_io;

	bool acked_since_kick;
	/* What libmosquitto (OpenSSL, through it) last said went wrong: folded
	 * into our one line about the failure instead of logged beside it.
	 * Written by the connect thread or the loop, never both at once. */
	char lib_error[200];
	bool awaiting_connack; /* connected (TLS up), CONNACK not yet received */

	/* The downlink (upstream_set_downlink): its subscription (NULL: off),
	 * where commands go, and whether their PUBACKs must wait. */
	char *sub_filter;
	int sub_mid; /* message id of its SUBSCRIBE in flight (0: none) */
	void (*on_command)(void *arg, const char *topic, const void *payload, size_t len);
	bool (*hold)(void *arg);
	void *dl_arg;

	/* Presence (upstream_set_presence); topic NULL: off. */
	char *presence_topic, *birth, *will, *goodbye;

	struct upstream_metrics m;
};

/* upstream_tls.c */
/* The line up_drop logs for reason: a refused client certificate, TLS
 * spoken to a plaintext port and a close before CONNACK say what to
 * check, from what the library reported (lib_error); *cls becomes
 * UP_DROP_CERT_REFUSED or UP_DROP_TLS where the library saw one. Returns
 * reason itself or out. */
const char *up_explain(struct upstream *up, const char *reason, enum up_drop_class *cls,
		       char *out, size_t cap);
/* The context's certificate verification: records why the broker's chain
 * was refused, for up_failure_reason. */
int up_verify_and_record(X509_STORE_CTX *x, void *arg);
/* A libmosquitto result (err: errno for MOSQ_ERR_ERRNO) in words; a refused
 * broker certificate with the reason verification recorded. */
const char *up_failure_reason(int rc, int err, char *buf, size_t cap);
/* Forgets a recorded verification failure: before each connection. */
void up_verify_reset(void);
/* Makes SSL_write collect the upstream's packets (see upstream_tls.c):
 * once, before the first connection; -1 if libssl's SSL_write cannot be
 * found behind ours. */
int up_plain_init(void);
/* Puts the write buffers (up->plain, up->wbuf) on the SSL of a new
 * connection, and takes them out (flushed) before a DISCONNECT. */
void up_buffer_writes(struct upstream *up);
void up_unbuffer_writes(struct upstream *up);
/* Writes what the buffers collected: 0 all of it, 1 the rest waits for
 * the socket to be writable, -1 the connection failed. */
int up_flush_writes(struct upstream *up);

#endif
