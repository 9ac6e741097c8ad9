/* upstream: the one libmosquitto client that forwards spool entries to the
 * upstream broker with QoS 1 over mutual TLS.
 *
 * Its socket is driven by the gateway's epoll loop (mosquitto_loop_read /
 * loop_write / loop_misc). Only the connect call runs on a short-lived
 * thread, because libmosquitto resolves the host with a blocking
 * getaddrinfo and connects with a blocking connect(); see
 * docs/architecture.md. While that thread runs, the loop does not touch the
 * mosquitto handle. Every connection attempt uses a fresh handle, so no
 * message state survives inside libmosquitto: the spool is the only queue. */
#ifndef IOTGW_UPSTREAM_H
#define IOTGW_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "iotgw/config.h"
#include "iotgw/evloop.h"
#include "iotgw/prom.h"
#include "iotgw/spool.h"

typedef struct ssl_ctx_st SSL_CTX;
struct upstream;

/* Why a connection attempt failed or a connection ended. */
enum up_drop_class {
	UP_DROP_NETWORK,         /* resolve, connect, read or write failed */
	UP_DROP_TLS,             /* a TLS error (not a refused certificate) */
	UP_DROP_CERT_REFUSED,    /* the broker refused our client certificate */
	UP_DROP_CONNACK_REFUSED, /* the broker answered CONNECT with a refusal */
	UP_DROP_TIMEOUT,         /* no CONNACK in time */
	UP_DROP_CLOSED,          /* the broker closed the connection */
	UP_DROP_RECONFIGURED,    /* a reload changed the settings */
	UP_DROP__COUNT
};
const char *upstream_drop_name(enum up_drop_class c); /* "certificate_refused" */

/* The upstream's figures, owned by it, read by metrics and status. */
struct upstream_metrics {
	uint64_t connects;
	uint64_t disconnects[UP_DROP__COUNT];
	uint64_t refusals[6]; /* CONNACK refusals by return code 1..5 */
	uint64_t forwarded;   /* readings the broker acknowledged */
	uint64_t resent;      /* readings published again after a lost connection */
	uint64_t dropped;     /* entries the broker can never take (EV_UPSTREAM_REJECTED) */
	struct prom_histo puback;
	int64_t last_connected_unix_ms; /* 0: never */
	uint64_t down_since_ms;         /* monotonic; meaningful while not connected */
	char why[512];                  /* the last failure, explained; "" while connected */
	/* The broker granted the downlink's subscription on this connection
	 * (its SUBACK); false while not connected, before the SUBACK, after a
	 * refusal, and while a reload's new filter awaits its SUBACK. */
	bool downlink_subscribed;
};

/* on_progress is called (from the loop) after entries were acknowledged and
 * deleted from the spool, so the gateway can resume paused devices. */
struct upstream *upstream_new(struct ev_loop *loop, struct spool *spool,
			      void (*on_progress)(void *), void *arg);

/* Applies (a copy of) cfg; reconnects if connection settings changed. The
 * first call starts connecting. Takes ownership of ctx (tls_ctx_upstream;
 * NULL with tls = off), used from the next connection on. Returns 0, or -1
 * when out of memory. */
int upstream_configure(struct upstream *up, const struct cfg_upstream *cfg, SSL_CTX *ctx);

/* New entries are in the spool: send what the window allows. */
void upstream_kick(struct upstream *up);
/* Writes what this loop iteration queued for the broker, in one write(2)
 * where the socket takes it: call once per iteration, last. */
void upstream_flush(struct upstream *up);

/* Disconnects (in-flight entries go back to the spool) and frees. */
void upstream_free(struct upstream *up);

bool upstream_connected(const struct upstream *up);
const struct upstream_metrics *upstream_metrics(const struct upstream *up);

/* Presence on the broker: `birth` is published retained (QoS 1) on topic on
 * every connect, `will` is registered as each connection's Last Will
 * (retained), `goodbye` is published retained before the clean DISCONNECT
 * of upstream_free. Copies the strings; topic NULL turns it off. Takes
 * effect from the next connection. 0, or -1 out of memory (then off). */
int upstream_set_presence(struct upstream *up, const char *topic, const char *birth,
			  const char *will, const char *goodbye);
/* A message beside the spool (gateway stats): QoS 0, not retained, and
 * only while connected. false when not sent. */
bool upstream_publish_aside(struct upstream *up, const char *topic, const char *payload);
/* Commands: subscribes to filter (QoS 1, again on every connection; NULL:
 * none) with a persistent session so the broker keeps commands while the
 * gateway is away, hands every message to on_command, and holds back
 * everything it would write (the PUBACKs of commands first) while hold
 * says a command is not on disk yet. A new filter replaces the old one at
 * once when connected. Copies filter; 0, or -1 out of memory. */
int upstream_set_downlink(struct upstream *up, const char *filter,
			  void (*on_command)(void *arg, const char *topic, const void *payload,
					     size_t len),
			  bool (*hold)(void *arg), void *arg);

/* The context the next connection uses (NULL with tls = off); the
 * upstream keeps ownership. */
SSL_CTX *upstream_tls_ctx(const struct upstream *up);
const char *upstream_state_name(const struct upstream *up);

#endif
