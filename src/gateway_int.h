/* Shared between gateway.c (owner of the process-wide state), listener.c and
 * session.c. Not a public interface. */
#ifndef IOTGW_GATEWAY_INT_H
#define IOTGW_GATEWAY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotgw/auth.h"
#include "iotgw/buf.h"
#include "iotgw/config.h"
#include "iotgw/conn.h"
#include "iotgw/evloop.h"
#include "iotgw/log.h"
#include "iotgw/mqtt_codec.h"
#include "iotgw/prom.h"
#include "iotgw/spool.h"
#include "iotgw/status.h"
#include "iotgw/strmap.h"
#include "iotgw/upstream.h"
#include "ingest.h"
#include "trust.h"
#include "wq.h"

#define IOTGW_DEVICE_MAX 64

struct gateway;

/* One bound, listening socket of a listener: one per bind address and
 * worker (SO_REUSEPORT with more than one), accepted on by that worker. */
struct listen_sock {
	struct listener *l;
	unsigned worker;
	int fd;
	struct ev_io io;        /* on the worker's loop */
	bool paused;            /* out of descriptors: wait before accepting again */
	struct ev_timer retry;  /* ... for this long */
	char desc[CFG_BIND_TEXT]; /* "[::1]:8883" */
};

/* TLS version of an open connection, for iotgw_connections. */
enum tls_slot { TLS_SLOT_NONE, TLS_SLOT_12, TLS_SLOT_13, TLS_SLOT_OTHER, TLS_SLOT__COUNT };

/* Connections a PROXY protocol listener closed before TLS or MQTT, by
 * reason (iotgw_proxy_refusals_total). */
enum proxy_refusal {
	PROXY_REFUSED_UNTRUSTED, /* the address is not in proxy_from */
	PROXY_REFUSED_INVALID,   /* the header was malformed, or the connection ended in it */
	PROXY_REFUSED_TIMEOUT,   /* no header within handshake_timeout */
	PROXY_REFUSED__COUNT
};

/* A listener's figures for /metrics, kept where they happen (session.c),
 * so a scrape reads them without walking sessions. They survive a reload
 * that keeps the listener. */
struct listener_metrics {
	/* Workers count here, once per connection event (never per
	 * reading): atomics, read by a scrape. */
	_Atomic uint64_t conns[TLS_SLOT__COUNT]; /* open, past the handshake (a gauge) */
	_Atomic uint64_t handshakes;
	_Atomic uint64_t hs_failures[CONN_FAIL__COUNT];
	_Atomic uint64_t connects;
	_Atomic uint64_t refusals[6]; /* by CONNACK return code 1..5 */
	_Atomic uint64_t protocol_errors, acl_denials, auth_failures;
	_Atomic uint64_t subscribe_refusals; /* filters refused a SUBACK grant */
	_Atomic uint64_t rate_limited;       /* episodes of a device over its rate */
	_Atomic uint64_t conn_rate_refusals; /* connections over max_connection_rate_per_address */
	_Atomic uint64_t proxy_refusals[PROXY_REFUSED__COUNT];
};

/* A [listener NAME] section at run time: its sockets (one per bind
 * address) and the settings, TLS context and trust they all share.
 * Sessions accepted on it keep it alive (nconns) after a reload removed it,
 * so their logs can still name it; the gateway frees it after the last
 * (listener_reap). */
struct listener {
	struct listener *next;
	struct gateway *gw;
	char *name;
	/* Every bind address, as cfg_binds_format writes them: how a reload
	 * recognises the listener. */
	char bind_desc[CFG_BINDS_TEXT];
	struct listen_sock *socks; /* bind address i, worker k: socks[i * nworkers + k] */
	size_t nsocks;
	enum cfg_tls_mode tls;
	enum cfg_identity identity;
	unsigned handshake_timeout_ms;
	unsigned max_connections;
	const struct conn_type *ct; /* the kind of connection it accepts */
	SSL_CTX *ctx;               /* NULL for tls = off */
	/* Device trust (listener keys of the same names). */
	struct trust_policy trust;    /* for trust_connect; borrows name and pwfile */
	struct auth_acl *acl;         /* NULL: publish_acl not enforced here */
	struct auth_acl *sub_acl;     /* subscribe_acl (never NULL once open) */
	struct auth_pwfile *pwfile;   /* NULL: no password_file */
	unsigned cert_expiry_warning_s;
	bool disconnect_revoked;
	/* Rates (listener keys of the same names; 0: no limit). */
	unsigned max_message_rate;
	uint32_t max_byte_rate;
	enum cfg_rate_action rate_action;
	unsigned conn_rate; /* max_connection_rate_per_address */
	/* PROXY protocol (listener keys of the same names): its connections
	 * come from balancers, and their per-address limits and identity wait
	 * for the header (session_proxy.c). */
	enum cfg_proxy_mode proxy;
	struct cidr proxy_from[CFG_PROXY_FROM_MAX];
	size_t nproxy_from;
	enum cfg_proxy_identity proxy_identity;
	atomic_uint nconns;
	struct listener_metrics m;
};

/* The gateway's own figures (per listener ones are in struct listener,
 * ingest's in ingest.c, the upstream's in upstream.c, the spool's in
 * spool.c). */
struct gw_metrics {
	uint64_t reloads_ok, reloads_failed;
	int64_t start_unix_ms;
};

struct worker;

struct gateway {
	struct ev_loop *loop; /* the owner's (worker 0 runs on it too) */
	struct iotgw_config *cfg;
	struct listener *listeners;
	struct listener *retired; /* closed, still named by sessions (listener_reap) */
	/* The workers that own the devices' sessions (worker.h), and the
	 * owner's queue of their messages (owner.c handles them). */
	struct worker *workers;
	unsigned nworkers;
	struct wq owner_inbox;
	/* Parking the workers (worker.c): requested, how many wait, and the
	 * end of their threads. */
	struct {
		pthread_mutex_t mu;
		pthread_cond_t cv;
		atomic_bool requested;
		unsigned parked;
		atomic_bool stop;
	} park;
	/* Ingest holds every device back (spool full or failing): a worker
	 * does not decode a PUBLISH meanwhile. Set before NEWS_HOLD_DEVICES
	 * reaches the workers, cleared before NEWS_READ_DEVICES. */
	atomic_bool holding;
	/* Owner: client id -> the token of the session holding it. */
	struct strmap *by_client_id;
	struct spool *spool;
	struct ingest *ingest; /* readings into the spool, and its news back (ingest.h) */
	struct upstream *up;
	struct gw_metrics m;
	bool stopping;  /* SIGTERM received: draining, not ready */
	/* The per-address tables below (registry.c), which every worker
	 * consults at accept and at CONNECT. */
	pthread_mutex_t admit_mu;
	/* TLS handshakes in progress (registry.c), all and by source address
	 * (address -> count, as a pointer-sized integer), and the refusals of
	 * the current episode at max_handshakes. */
	unsigned handshakes;
	struct strmap *hs_by_addr;
	struct strmap *auth_fails;   /* address -> struct auth_fails (registry.c) */
	struct pwcheck *pwcheck;     /* password checks off the loops (each worker has a port) */
	struct conn_rates *conn_rates; /* connection rates by address (registry.c) */
	/* Input buffers of connections before their CONNECT (session.c), and
	 * the connections closed over max_preauth_memory. */
	atomic_size_t preauth_bytes;
	_Atomic uint64_t preauth_refusals;
	uint64_t hs_refused, hs_refused_total;
	uint64_t hs_evicted, hs_evicted_total; /* stalled hellos evicted at max_handshakes */
	bool hs_full;
	struct metrics_http *http; /* [metrics] bind; NULL when off */
	struct downlink *dl;       /* commands to devices (downlink.c) */
};

/* Every worker's sessions, and their counts (the workers' figures summed). */
#define GW_FOR_EACH_WORKER(gw, w) for (struct worker *w = (gw)->workers; w < (gw)->workers + (gw)->nworkers; w++)
size_t gateway_sessions(const struct gateway *gw);
size_t gateway_active_sessions(const struct gateway *gw);

/* gateway_status.c */
/* [gateway] threads: the number it stands for (auto: the CPUs this process
 * may use, its affinity lowered by a CPU quota: iotgw/cpus.h) and, in why,
 * how it came to be; and its name as written ("auto" or the number). */
unsigned gateway_threads_resolve(unsigned configured, char *why, size_t cap);
void gateway_threads_name(unsigned configured, char *out, size_t cap);
void gateway_snapshot(struct gateway *gw, struct status_snapshot *s);
void gateway_write_status(struct gateway *gw); /* DIR/status, for `iotgw status` */

/* metrics.c: the Prometheus exposition of everything above. 0 or -1. */
int metrics_render(struct gateway *gw, struct buf *out);
/* A connection on l is past its handshake (tls_version NULL: plaintext):
 * counted by TLS version; returns the slot for metrics_conn_closed, which
 * takes -1 (never opened) too. */
int metrics_conn_opened(struct listener *l, const char *tls_version);
void metrics_conn_closed(struct listener *l, int slot);

/* listener.c */
/* What a listener gets besides its config section: built (and checked) by
 * gateway.c before anything changes; the listener takes ownership. */
struct listener_parts {
	SSL_CTX *ctx;               /* NULL for tls = off */
	struct auth_acl *acl;       /* NULL: not enforced */
	struct auth_acl *sub_acl;   /* subscribe_acl */
	struct auth_pwfile *pwfile; /* NULL: no password_file */
};

/* Binds every address of cfg. A socket that a listener of `running` (the
 * list in service, may be NULL) already has bound to the same address is
 * shared (dup) instead, so a reload can move an address from one listener
 * to another; closing the old listener later leaves it open. */
struct listener *listener_open(struct gateway *gw, const struct cfg_listener *cfg,
			       struct listener_parts *parts, const struct listener *running,
			       char *err, size_t errlen);
/* Takes new settings and parts for a listener bound to the same address. */
void listener_update(struct listener *l, const struct cfg_listener *cfg,
		     struct listener_parts *parts);
/* Stops accepting. A listener without sessions is freed now; one with
 * sessions (nconns, which the sessions keep) joins gw->retired, and
 * listener_reap frees those whose last session has gone. */
void listener_close(struct listener *l);
void listener_reap(struct gateway *gw);

/* registry.c (owner): client id -> the token of the session holding it.
 * claim puts token there and gives the token it takes over from (0:
 * none); 0, or -1 out of memory (nothing changed). release removes the
 * entry if token still holds it. */
struct session;
int gateway_registry_claim(struct gateway *gw, const char *client_id, uint64_t token,
			   uint64_t *old);
void gateway_registry_release(struct gateway *gw, const char *client_id, uint64_t token);

/* owner.c: the owner's side of the workers' messages. */
int owner_init(struct gateway *gw); /* the inbox on gw->loop; 0 or -1 */
void owner_free(struct gateway *gw);
/* Takes and handles what the workers posted (batches go to ingest). */
void owner_drain(struct gateway *gw);
/* ingest's and the downlink's hooks: news to the workers, a command to a
 * session's worker. */
void owner_news(void *arg, const struct ingest_news *n);
int owner_deliver(void *arg, void *session, const uint8_t *pkt, size_t n);

/* registry.c: TLS handshakes in progress, counted by source address (of
 * peer, "addr:port"). admit: may a new connection from peer start one?
 * (at max_handshakes: yes when the oldest handshake without a complete
 * ClientHello could be evicted to make room; false: refused, and logged
 * once per episode at max_handshakes);
 * begin/end: one started / finished or failed. */
bool gateway_hs_admit(struct gateway *gw, const struct listener *l, const char *peer);
/* registry.c: within the listener's max_connection_rate_per_address? A
 * refusal is counted and logged once per episode. */
bool gateway_conn_admit(struct gateway *gw, struct listener *l, const char *peer);
void gateway_conn_rates_free(struct gateway *gw);
void gateway_hs_begin(struct gateway *gw, const char *peer);
void gateway_hs_end(struct gateway *gw, const char *peer);

/* registry.c: wrong passwords by source address (peer "addr:port"). After
 * [gateway] auth_backoff_after failures with less than AUTH_FAILS_FORGET
 * between them, each further one
 * makes the address wait (1 s, doubling, at most 60 s) before its passwords
 * are checked again: backoff returns the seconds left, 0 when free. A
 * right password clears the address. */
void gateway_auth_failed(struct gateway *gw, const char *peer);
void gateway_auth_ok(struct gateway *gw, const char *peer);
unsigned gateway_auth_backoff(struct gateway *gw, const char *peer);

/* session.c */
struct session *session_new(struct worker *w, struct listener *l, int fd, const char *peer);
/* A command from the downlink (session_sub.c): a PUBLISH to the device,
 * in reply order. 0, or -1 when the session is not active. */
int session_deliver(struct session *s, const uint8_t *pkt, size_t n);
/* Closes with a log line; the memory is freed after the current batch. */
/* (A macro, so that the journal's CODE_FILE/CODE_LINE name the caller.) */
#define session_close(...) session_close_at(__FILE__, __LINE__, __func__, __VA_ARGS__)
void session_close_at(const char *file, int line, const char *func, struct session *s, int prio,
		      enum iotgw_event event, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
struct session *session_next(const struct session *s);
/* After a reload: closes the session if the new configuration would refuse
 * it now: its certificate chain no longer verifies against the listener's
 * new CA/CRL (disconnect_revoked), or it came through a balancer no longer
 * in the listener's proxy_from. */
void session_recheck(struct session *s);

#endif
