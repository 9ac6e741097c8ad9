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
#include "iotgw/spool.h"

typedef struct ssl_ctx_st SSL_CTX;
struct upstream;

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
/* The context the next connection uses (NULL with tls = off); the
 * upstream keeps ownership. */
SSL_CTX *upstream_tls_ctx(const struct upstream *up);
const char *upstream_state_name(const struct upstream *up);

#endif
