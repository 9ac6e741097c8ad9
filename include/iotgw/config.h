/* config: /etc/iotgw.conf, an INI file with one section per concern.
 *
 * Parsing is pure (cfg_parse_string works on a string, no file access) and
 * table-driven: each key is declared once with its type, default and range.
 * Every problem is reported, not just the first, through a diagnostics sink
 * as FILE:LINE: message. Unknown sections and keys, duplicate keys and
 * sections, and bad values are errors. Checks that need the file system or
 * OpenSSL (files exist, key matches certificate) live in tls_ctx, which
 * reports through the same sink.
 *
 * Ownership: struct iotgw_config owns every string and array in it (also
 * those of its listeners and [decode] rules); cfg_free releases them all.
 * Names (cfg_tls_mode_name ...) are static; formatting writes into the
 * caller's buffer. A diagnostics sink borrows its file name. */
#ifndef IOTGW_CONFIG_H
#define IOTGW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotgw/auth.h"
#include "iotgw/cidr.h"
#include "iotgw/decoder.h"

enum cfg_tls_mode {
	CFG_TLS_OFF = 0, /* plaintext; logs a warning */
	CFG_TLS_SERVER,  /* TLS, server authenticated only */
	CFG_TLS_MUTUAL,  /* TLS, client certificate required and verified */
};

/* Where a TLS device's identity comes from. */
enum cfg_identity {
	CFG_ID_CN = 0,    /* subject commonName */
	CFG_ID_SAN_DNS,   /* first subjectAltName of type DNS */
	CFG_ID_SAN_URI,   /* first subjectAltName of type URI */
	CFG_ID_SAN_EMAIL, /* first subjectAltName of type email */
	CFG_ID_SERIAL,    /* certificate serial number: upper-case hex, no separators */
};


/* Which TLS 1.2 cipher suites a listener offers (explicit ciphers= /
 * ciphersuites= override the profile). TLS 1.3 suites are the same in all. */
enum cfg_tls_profile {
	CFG_TLS_MODERN = 0,  /* ECDHE with AES-GCM / ChaCha20-Poly1305 only */
	CFG_TLS_COMPATIBLE,  /* modern + ECDHE AES-CBC and AES-CCM(8): mbedTLS, BearSSL */
	CFG_TLS_LEGACY,      /* compatible + RSA key exchange AES (axTLS on ESP8266) */
};

/* A file path with the config line that named it (for later diagnostics). */
struct cfg_path {
	char *path; /* NULL when not set */
	int line;
};

/* One address a listener binds. */
struct cfg_bind {
	char *host; /* numeric, canonical: "0.0.0.0", "::", "127.0.0.1", "::1" */
	uint16_t port;
};

/* Addresses one listener may bind (`bind = 0.0.0.0:8883 [::]:8883`). */
#define CFG_BINDS_MAX 8
/* Room for one bind as text ("[v6]:port") and for a whole listener's. */
#define CFG_BIND_TEXT 56
#define CFG_BINDS_TEXT (CFG_BINDS_MAX * CFG_BIND_TEXT)

/* A device over its rate: not read until it is back within it (TCP slows
 * it), or disconnected. */
enum cfg_rate_action { CFG_RATE_SLOW = 0, CFG_RATE_DISCONNECT };

/* The PROXY protocol header (HAProxy's) a listener reads before TLS or
 * MQTT: none, one version, or either version or none (optional). */
enum cfg_proxy_mode { CFG_PROXY_OFF = 0, CFG_PROXY_V1, CFG_PROXY_V2, CFG_PROXY_OPTIONAL };
/* Whether the client certificate CN a TLS-terminating balancer sends in
 * its v2 header (PP2_SUBTYPE_SSL_CN) names the device. */
enum cfg_proxy_identity { CFG_PROXY_ID_OFF = 0, CFG_PROXY_ID_SSL_CN };
/* Ranges in one proxy_from. */
#define CFG_PROXY_FROM_MAX 32

struct cfg_listener {
	char *name;
	int line; /* line of the [listener NAME] header */
	/* Every address shares the listener's settings, TLS context, trust and
	 * limits: one section, one policy, however many sockets. */
	struct cfg_bind binds[CFG_BINDS_MAX];
	size_t nbinds; /* 0 until `bind` was set */
	int bind_line;
	enum cfg_tls_mode tls;
	struct cfg_path cert, key, ca;
	struct cfg_path crl;           /* PEM CRLs for the device chains; tls = mutual only */
	struct cfg_path password_file; /* device passwords; tls = off or server only */
	enum cfg_identity identity;
	/* How the MQTT client id must relate to the device id where the device
	 * id does not come from the client id (tls = mutual, password_file). */
	enum auth_cid_policy client_id;
	/* Topic patterns a device may publish to, each checked by
	 * auth_acl_pattern_check (levels literal, '+', '#' last, or exactly
	 * "{device}"); default AUTH_ACL_DEFAULT. Owned by the config.
	 * npublish_acl == 0 (and publish_acl NULL) only after
	 * `publish_acl = none`: no check at all. */
	char **publish_acl;
	size_t npublish_acl;
	int publish_acl_line; /* 0 when publish_acl was not set (the default) */
	unsigned handshake_timeout_ms;
	unsigned max_connections;
	int tls_min_version; /* 12 or 13 */
	enum cfg_tls_profile tls_profile;
	char *ciphers;        /* TLS 1.2 cipher list (OpenSSL syntax); NULL: the profile's */
	char *ciphersuites;   /* TLS 1.3 suites; NULL: the profile's */
	char *groups;         /* key exchange groups, e.g. "P-256:P-384:X25519" */
	/* Lines of these keys for diagnostics; the section header when not set. */
	int tls_profile_line, ciphers_line, ciphersuites_line, groups_line;
	bool session_resumption;    /* session cache + tickets */
	unsigned session_lifetime_s; /* session / ticket lifetime */
	unsigned cert_expiry_warning_s; /* warn when a device certificate expires within; 0 off */
	bool disconnect_revoked; /* at reload, close sessions whose chain no longer verifies */
	/* Per device: messages and bytes per second (0: no limit), and what
	 * happens to a device over them; per source address: new connections
	 * per second (0: no limit). */
	unsigned max_message_rate;
	uint32_t max_byte_rate;
	enum cfg_rate_action rate_limit_action;
	unsigned max_connection_rate_per_address;
	/* PROXY protocol: which header, the balancers that may send it (a
	 * listener with a header refuses every other address), and where the
	 * device's identity may come from (docs/deployment.md). */
	enum cfg_proxy_mode proxy_protocol;
	struct cidr proxy_from[CFG_PROXY_FROM_MAX];
	size_t nproxy_from;
	enum cfg_proxy_identity proxy_identity;
	/* Topic filters a device may subscribe to (auth_filter_allowed),
	 * whitespace-separated patterns as publish_acl; default
	 * AUTH_SUBSCRIBE_ACL_DEFAULT. */
	char *subscribe_acl;
};

struct cfg_gateway {
	char *name;    /* gateway id in readings and topics */
	int log_level; /* syslog priority: 3 err .. 7 debug */
	uint32_t max_packet_size;     /* MQTT remaining length limit, bytes */
	unsigned connect_timeout_ms;  /* transport up -> CONNECT received */
	unsigned max_keepalive_s;     /* keepalive cap (0 = none): 0 from a device is replaced by this */
	bool watch_tls_files;         /* inotify on cert/key/ca/crl files: reload on change */
	bool keep_tls_sessions;       /* resumable TLS sessions kept in DIR/tls-sessions */
	unsigned expiry_warning_s;    /* own certificates and CRLs: warn this long ahead; 0 off */
	unsigned max_handshakes;      /* TLS handshakes in progress, all listeners */
	unsigned max_handshakes_per_address; /* ... from one source address */
	unsigned auth_backoff_after; /* wrong passwords from an address before it waits; 0 off */
	uint64_t max_preauth_memory; /* input buffers of connections before CONNECT, in all */
	unsigned threads; /* threads doing TLS handshakes, the loop's included; 0 = auto (CPUs) */
};

/* The most `threads` may say: more handshake threads than this buys nothing
 * on any box iotgw is meant for. */
#define CFG_THREADS_MAX 64

struct cfg_upstream {
	char *host;
	int host_line;
	uint16_t port;
	char *client_id; /* default "iotgw-" + gateway name */
	bool tls;        /* mutual TLS (default); "tls = off" logs a warning */
	struct cfg_path ca, cert, key;
	struct cfg_path crl; /* PEM CRLs the broker's chain is checked against; optional */
	unsigned keepalive_s;
	unsigned inflight; /* QoS 1 messages awaiting PUBACK at once */
	unsigned reconnect_min_ms, reconnect_max_ms;
	char *topic;             /* template: {device} {gateway} {event} */
	char *dead_letter_topic; /* template */
	char *username, *password;
	char *presence_topic; /* template with {gateway}; "none": no presence */
	char *stats_topic;    /* the same; "none" (default): no periodic stats */
	unsigned stats_interval_ms;
};

/* When a committed spool transaction is on stable storage. */
enum cfg_durability {
	CFG_DURABLE_FSYNC = 0, /* fsync per commit: survives power loss (default) */
	CFG_DURABLE_OS,        /* the kernel flushes: survives a crash of iotgw, not of the machine */
};

/* The state directory systemd's StateDirectory=iotgw makes; [spool] dir's default. */
#define IOTGW_STATE_DIR "/var/lib/iotgw"

struct cfg_spool {
	char *dir; /* state directory holding spool.db; default /var/lib/iotgw */
	enum cfg_durability durability;
	uint64_t max_messages;
	uint64_t max_bytes;
	uint64_t min_free; /* free space kept on the spool's file system */
	/* One device's share (iotgw/share.h): 0 = no fixed limit; fair_share
	 * divides the spool among the devices once it is half full. */
	uint64_t max_messages_per_device;
	uint64_t max_bytes_per_device;
	bool fair_share;
	unsigned forget_devices_after_s; /* devices not seen this long are forgotten; 0 never */
};

/* [downlink]: commands from the upstream broker to devices. */
struct cfg_downlink {
	char *topic;        /* upstream template with {device} {command}; "none": off */
	char *device_topic; /* what the device receives: template with {command} */
	char *status_topic; /* "none" or a template that may use {topic} */
	unsigned command_ttl_ms; /* held for a device this long; 0: only to subscribed ones */
	uint32_t max_payload;
	unsigned max_queued_per_device;
	unsigned max_queued;
	bool validate_json;
};

/* [metrics]: the HTTP listener for /metrics, /healthz and /readyz. */
struct cfg_metrics {
	struct cfg_bind binds[CFG_BINDS_MAX];
	size_t nbinds; /* 0: off (the default) */
	int bind_line;
};

struct iotgw_config {
	char *path;
	struct cfg_gateway gateway;
	struct cfg_listener *listeners;
	size_t nlisteners;
	struct cfg_upstream upstream;
	struct cfg_spool spool;
	struct cfg_metrics metrics;
	struct cfg_downlink downlink;
	struct dec_rule *rules; /* [decode NAME] sections in file order; may be 0 */
	size_t nrules;
};

enum cfg_severity { CFG_ERROR, CFG_WARNING };

/* Receives each diagnostic; file and line identify its origin (line 0 when
 * it concerns the whole file). msg has no trailing newline. */
typedef void (*cfg_diag_fn)(void *ctx, enum cfg_severity sev, const char *file, int line,
			    const char *msg);

/* One file's diagnostics on their way to a sink, counted: the parser, the
 * TLS checks (tls_ctx) and whoever else checks a file the configuration
 * names report through one of these, so the total is exact. */
struct cfg_diag_sink {
	const char *file; /* FILE of FILE:LINE; not owned */
	cfg_diag_fn fn;   /* may be NULL: count only */
	void *ctx;
	int errors; /* CFG_ERROR diagnostics so far */
};

/* Formats the message (truncated to 511 bytes), counts it when it is an
 * error, and hands it to d->fn as d->file:line (line 0: the whole file). */
__attribute__((format(printf, 4, 5))) void cfg_report(struct cfg_diag_sink *d,
						      enum cfg_severity sev, int line,
						      const char *fmt, ...);

/* Parses text (len bytes, need not be NUL-terminated) named filename into
 * out, which the caller zero-initializes... or not: it is overwritten. Returns the
 * number of errors; out is usable only when that is 0, and must be freed with
 * cfg_free either way. Warnings do not count as errors. */
int cfg_parse_string(const char *text, size_t len, const char *filename,
		     struct iotgw_config *out, cfg_diag_fn diag, void *ctx);

/* Reads the file and parses it; an unreadable file is one error with line 0. */
int cfg_load_file(const char *path, struct iotgw_config *out, cfg_diag_fn diag, void *ctx);

void cfg_free(struct iotgw_config *cfg);

/* A diag sink that prints "FILE:LINE: message" / "FILE:LINE: warning: message"
 * to the FILE * passed as ctx. */
void cfg_diag_print(void *ctx, enum cfg_severity sev, const char *file, int line,
		    const char *msg);

const char *cfg_tls_mode_name(enum cfg_tls_mode m);
const char *cfg_proxy_mode_name(enum cfg_proxy_mode m);
/* "0.0.0.0:8883" or "[::]:8883" into out (CFG_BIND_TEXT is enough). */
void cfg_bind_format(const struct cfg_bind *b, char *out, size_t cap);
/* Every bind of a listener (or of [metrics]), space-separated
 * (CFG_BINDS_TEXT is enough): also how a running listener is recognised
 * across a reload. */
void cfg_binds_format(const struct cfg_bind *binds, size_t nbinds, char *out, size_t cap);
const char *cfg_tls_profile_name(enum cfg_tls_profile p);

#endif
