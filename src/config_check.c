/* config_check: the configuration rules that involve more than one key or
 * section (required keys, keys that only apply with some other setting,
 * insecure settings, colliding listeners). They run after the whole file is
 * read, so they see final values whatever the key order, and their messages
 * point at the line of the key involved, else at the section header. */
#include "iotgw/config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "iotgw/cmdtopic.h"
#include "iotgw/mqtt_codec.h"
#include "iotgw/decoder.h"

/* The line of the first of the keys that is set, else the section header. */
static int line_of(const struct secrec *s, const char *key1, const char *key2)
{
	int l = cfg_key_line(s, key1);
	if (!l && key2)
		l = cfg_key_line(s, key2);
	return l ? l : s->line;
}

/* 0: the two binds do not collide; 1: same address and port; 2: one is the
 * wildcard of the other's family on the same port, which Linux refuses
 * (EADDRINUSE) just the same. IPv4 and IPv6 never collide: IPv6 listeners
 * are v6only. */
static int bind_conflict(const struct cfg_bind *a, const struct cfg_bind *b)
{
	static const unsigned char any[16];
	unsigned char x[16], y[16];
	int af = strchr(a->host, ':') ? AF_INET6 : AF_INET;
	int bf = strchr(b->host, ':') ? AF_INET6 : AF_INET;
	if (af != bf || a->port != b->port)
		return 0;
	if (inet_pton(af, a->host, x) != 1 || inet_pton(bf, b->host, y) != 1)
		return 0;
	size_t n = af == AF_INET6 ? 16 : 4;
	if (memcmp(x, y, n) == 0)
		return 1;
	return memcmp(x, any, n) == 0 || memcmp(y, any, n) == 0 ? 2 : 0;
}

/* Each of l's binds against its own earlier ones and those of the
 * listeners before it: one FILE:LINE error for the first collision. */
static void check_binds(struct parser *p, const struct cfg_listener *l, size_t index,
			const char *nm)
{
	char addr[CFG_BIND_TEXT], other[CFG_BIND_TEXT];
	for (size_t b = 0; b < l->nbinds; b++) {
		for (size_t i = 0; i <= index; i++) {
			const struct cfg_listener *o = &p->cfg->listeners[i];
			size_t upto = o == l ? b : o->nbinds;
			for (size_t ob = 0; ob < upto; ob++) {
				int c = bind_conflict(&o->binds[ob], &l->binds[b]);
				if (c == 0)
					continue;
				cfg_bind_format(&l->binds[b], addr, sizeof addr);
				cfg_bind_format(&o->binds[ob], other, sizeof other);
				if (o == l)
					cfg_diag(p, CFG_ERROR, l->bind_line,
						 "listener '%s': bind address %s %s %s in the same "
						 "list",
						 nm, addr, c == 1 ? "repeats" : "overlaps", other);
				else if (c == 1)
					cfg_diag(p, CFG_ERROR, l->bind_line,
						 "listener '%s': bind address %s already used by "
						 "listener '%s' (line %d)",
						 nm, addr, o->name ? o->name : "?", o->bind_line);
				else
					cfg_diag(p, CFG_ERROR, l->bind_line,
						 "listener '%s': bind address %s overlaps %s of "
						 "listener '%s' (line %d)",
						 nm, addr, other, o->name ? o->name : "?",
						 o->bind_line);
				return;
			}
		}
	}
}

static bool same_path(const struct cfg_path *a, const struct cfg_path *b)
{
	return (!a->path && !b->path) || (a->path && b->path && strcmp(a->path, b->path) == 0);
}

/* Two mutual listeners that trust the same CA admit the same devices, so
 * they must refuse the same ones: a CRL on one and not on the other lets a
 * revoked device in through the other (typically the IPv6 twin of an IPv4
 * listener; one listener with both addresses avoids the question). */
static void check_revocation_twins(struct parser *p, const struct cfg_listener *l,
				   size_t index, const char *nm)
{
	if (l->tls != CFG_TLS_MUTUAL || !l->ca.path)
		return;
	for (size_t i = 0; i < index; i++) {
		const struct cfg_listener *o = &p->cfg->listeners[i];
		if (o->tls != CFG_TLS_MUTUAL || !o->ca.path || strcmp(o->ca.path, l->ca.path) != 0)
			continue;
		const char *what = NULL;
		if (!same_path(&o->crl, &l->crl))
			what = l->crl.path && o->crl.path ? "a different crl"
			       : l->crl.path		  ? "a crl, the other none"
							  : "no crl, the other one";
		else if (o->disconnect_revoked != l->disconnect_revoked)
			what = "a different disconnect_revoked";
		if (!what)
			continue;
		cfg_diag(p, CFG_WARNING, l->crl.line ? l->crl.line : l->line,
			 "listener '%s' trusts the same ca as listener '%s' (line %d) but has %s: "
			 "a device revoked on one can still connect through the other; give "
			 "both the same revocation settings, or make them one listener with "
			 "several addresses (bind = 0.0.0.0:8883 [::]:8883)",
			 nm, o->name ? o->name : "?", o->line, what);
		return;
	}
}

/* Warns about each listed key that is set although it has no effect. */
static void warn_ignored(struct parser *p, const struct secrec *s, const char *nm,
			 const char *const *keys, const char *why)
{
	for (size_t i = 0; keys[i]; i++) {
		int line = cfg_key_line(s, keys[i]);
		if (line)
			cfg_diag(p, CFG_WARNING, line, "listener '%s': '%s' is ignored %s", nm,
				 keys[i], why);
	}
}

/* Device trust: revocation, passwords, client ids, ACL, TLS profile and
 * session keys (docs/security.md, section 4: what each setting protects
 * against). */
static void check_listener_trust(struct parser *p, const struct secrec *s,
				 struct cfg_listener *l, const char *nm)
{
	l->publish_acl_line = cfg_key_line(s, "publish_acl");
	l->tls_profile_line = line_of(s, "tls_profile", NULL);
	l->ciphers_line = line_of(s, "ciphers", NULL);
	l->ciphersuites_line = line_of(s, "ciphersuites", NULL);
	l->groups_line = line_of(s, "groups", NULL);

	/* A certificate already names the device: a password on top would be
	 * a second, weaker identity that could disagree with it. */
	if (l->tls == CFG_TLS_MUTUAL && cfg_key_line(s, "password_file"))
		cfg_diag(p, CFG_ERROR, cfg_key_line(s, "password_file"),
			 "listener '%s': 'password_file' cannot be used with tls = mutual (the "
			 "client certificate identifies the device); use tls = server",
			 nm);
	/* Only client certificates are checked against a CRL: accepting it
	 * elsewhere would suggest revocation that never happens. */
	if (l->tls != CFG_TLS_MUTUAL && cfg_key_line(s, "crl"))
		cfg_diag(p, CFG_ERROR, cfg_key_line(s, "crl"),
			 "listener '%s': 'crl' requires tls = mutual (it revokes device "
			 "certificates)",
			 nm);
	if (l->tls != CFG_TLS_MUTUAL && !l->password_file.path &&
	    l->proxy_identity != CFG_PROXY_ID_SSL_CN)
		warn_ignored(p, s, nm, (const char *const[]){"client_id", NULL},
			     "unless tls = mutual or password_file is set (the client id is the "
			     "device id)");
	if (l->tls != CFG_TLS_MUTUAL)
		warn_ignored(p, s, nm,
			     (const char *const[]){"cert_expiry_warning", "disconnect_revoked",
						   NULL},
			     "unless tls = mutual");
	if (l->tls == CFG_TLS_OFF)
		warn_ignored(p, s, nm,
			     (const char *const[]){"tls_profile", "session_resumption",
						   "session_lifetime", NULL},
			     "when tls = off");
	if (l->tls != CFG_TLS_OFF && !l->session_resumption)
		warn_ignored(p, s, nm, (const char *const[]){"session_lifetime", NULL},
			     "when session_resumption = no");
	if (l->tls != CFG_TLS_OFF && l->tls_min_version == 13)
		warn_ignored(p, s, nm, (const char *const[]){"ciphers", NULL},
			     "with tls_min_version = 1.3 (it lists TLS 1.2 suites)");
	if (l->tls != CFG_TLS_OFF && l->tls_profile == CFG_TLS_LEGACY) {
		if (l->tls_min_version == 13)
			cfg_diag(p, CFG_WARNING, l->tls_profile_line,
				 "listener '%s': tls_profile = legacy has no effect with "
				 "tls_min_version = 1.3",
				 nm);
		else if (!l->ciphers)
			cfg_diag(p, CFG_WARNING, l->tls_profile_line,
				 "listener '%s': tls_profile = legacy accepts TLS 1.2 RSA key "
				 "exchange (no forward secrecy: a stolen server key decrypts "
				 "recorded sessions) and CBC ciphers; use it only for devices "
				 "that cannot do ECDHE, and only with an RSA certificate",
				 nm);
	}
	if (cfg_key_line(s, "publish_acl") && l->npublish_acl == 0)
		cfg_diag(p, CFG_WARNING, cfg_key_line(s, "publish_acl"),
			 "listener '%s': publish_acl = none: devices may publish to any topic, "
			 "including other devices' topics",
			 nm);
}

/* PROXY protocol: a header is taken only from the balancers named, and
 * the CN of a balancer that terminated TLS names the device only where
 * nothing else could (docs/deployment.md). */
static void check_listener_proxy(struct parser *p, const struct secrec *s,
				 const struct cfg_listener *l, const char *nm)
{
	int id_line = cfg_key_line(s, "proxy_identity");
	if (l->proxy_protocol == CFG_PROXY_OFF) {
		warn_ignored(p, s, nm, (const char *const[]){"proxy_from", NULL},
			     "when proxy_protocol = off");
	} else if (!cfg_key_line(s, "proxy_from")) {
		cfg_diag(p, CFG_ERROR, line_of(s, "proxy_protocol", NULL),
			 "listener '%s': proxy_protocol = %s requires proxy_from, the addresses of "
			 "the balancers that send the header (e.g. proxy_from = 10.0.0.0/8): "
			 "anyone else could claim any address",
			 nm, cfg_proxy_mode_name(l->proxy_protocol));
	}
	if (l->proxy_identity != CFG_PROXY_ID_SSL_CN)
		return;
	if (l->proxy_protocol != CFG_PROXY_V2)
		cfg_diag(p, CFG_ERROR, id_line,
			 "listener '%s': proxy_identity = ssl-cn requires proxy_protocol = v2 (only a "
			 "v2 header carries the client certificate CN)",
			 nm);
	if (l->tls != CFG_TLS_OFF)
		cfg_diag(p, CFG_ERROR, id_line,
			 "listener '%s': proxy_identity = ssl-cn requires tls = off: it is for a "
			 "listener behind a balancer that terminates TLS itself (with TLS here, the "
			 "device's own certificate is verified here)",
			 nm);
	if (cfg_key_line(s, "password_file"))
		cfg_diag(p, CFG_ERROR, cfg_key_line(s, "password_file"),
			 "listener '%s': 'password_file' cannot be used with proxy_identity = ssl-cn "
			 "(the certificate CN identifies the device)",
			 nm);
}

static void check_listener(struct parser *p, const struct secrec *s)
{
	struct cfg_listener *l = &p->cfg->listeners[s->index];
	const char *nm = l->name ? l->name : "?";
	if (!cfg_key_line(s, "bind"))
		cfg_diag(p, CFG_ERROR, s->line, "listener '%s': 'bind' is required", nm);
	if (l->tls != CFG_TLS_OFF) {
		if (!cfg_key_line(s, "cert"))
			cfg_diag(p, CFG_ERROR, s->line,
				 "listener '%s': 'cert' is required unless tls = off", nm);
		if (!cfg_key_line(s, "key"))
			cfg_diag(p, CFG_ERROR, s->line,
				 "listener '%s': 'key' is required unless tls = off", nm);
	}
	if (l->tls == CFG_TLS_MUTUAL) {
		if (!cfg_key_line(s, "ca"))
			cfg_diag(p, CFG_ERROR, s->line,
				 "listener '%s': 'ca' is required for tls = mutual (it verifies "
				 "the device certificates)",
				 nm);
	} else {
		if (cfg_key_line(s, "ca"))
			cfg_diag(p, CFG_WARNING, cfg_key_line(s, "ca"),
				 "listener '%s': 'ca' is ignored unless tls = mutual", nm);
		if (cfg_key_line(s, "identity"))
			cfg_diag(p, CFG_WARNING, cfg_key_line(s, "identity"),
				 "listener '%s': 'identity' is ignored unless tls = mutual (the "
				 "MQTT client id names the device)",
				 nm);
	}
	check_listener_trust(p, s, l, nm);
	check_listener_proxy(p, s, l, nm);
	char addr[CFG_BINDS_TEXT];
	cfg_binds_format(l->binds, l->nbinds, addr, sizeof addr);
	if (l->tls == CFG_TLS_OFF && l->proxy_identity == CFG_PROXY_ID_SSL_CN)
		cfg_diag(p, CFG_WARNING, line_of(s, "tls", NULL),
			 "plaintext listener: listener '%s'%s%s takes devices authenticated by "
			 "its balancer (proxy_identity = ssl-cn) over plaintext: keep the link "
			 "from the balancer private, since any host in proxy_from can claim to be "
			 "any device",
			 nm, l->nbinds ? " on " : "", addr);
	else if (l->tls == CFG_TLS_OFF)
		cfg_diag(p, CFG_WARNING, line_of(s, "tls", NULL),
			 "plaintext listener: listener '%s'%s%s accepts MQTT without TLS; devices "
			 "are not authenticated and readings can be read and forged on the "
			 "network",
			 nm, l->nbinds ? " on " : "", addr);
	if (l->tls == CFG_TLS_OFF)
		warn_ignored(p, s, nm, (const char *const[]){"cert", "key", NULL},
			     "when tls = off");
	check_binds(p, l, s->index, nm);
	check_revocation_twins(p, l, s->index, nm);
}

static void check_upstream(struct parser *p, const struct secrec *s)
{
	struct cfg_upstream *u = &p->cfg->upstream;
	u->host_line = cfg_key_line(s, "host");
	if (!cfg_key_line(s, "host"))
		cfg_diag(p, CFG_ERROR, s->line, "[upstream]: 'host' is required");
	static const char *const files[] = {"ca", "cert", "key"};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		int l = cfg_key_line(s, files[i]);
		if (u->tls && !l)
			cfg_diag(p, CFG_ERROR, s->line,
				 "[upstream]: '%s' is required for tls = mutual", files[i]);
		else if (!u->tls && l)
			cfg_diag(p, CFG_WARNING, l, "[upstream]: '%s' is ignored when tls = off",
				 files[i]);
	}
	if (!u->tls && cfg_key_line(s, "crl"))
		cfg_diag(p, CFG_WARNING, cfg_key_line(s, "crl"),
			 "[upstream]: 'crl' is ignored when tls = off");
	if (!u->tls)
		cfg_diag(p, CFG_WARNING, line_of(s, "tls", NULL),
			 "upstream tls = off: readings and credentials cross the network "
			 "unencrypted and the broker is not authenticated");
	if (u->reconnect_min_ms > u->reconnect_max_ms)
		cfg_diag(p, CFG_ERROR, line_of(s, "reconnect_max", "reconnect_min"),
			 "reconnect_min (%ums) is greater than reconnect_max (%ums)",
			 u->reconnect_min_ms, u->reconnect_max_ms);
	/* MQTT 3.1.1 3.1.2-22: a password flag requires the user name flag */
	if (u->password && !u->username)
		cfg_diag(p, CFG_ERROR, cfg_key_line(s, "password"),
			 "'password' requires 'username' (MQTT 3.1.1 section 3.1.2.9)");
}

static void check_decode(struct parser *p, const struct secrec *s)
{
	const struct dec_rule *r = &p->cfg->rules[s->index];
	const char *nm = r->name ? r->name : "?";
	if (!cfg_key_line(s, "topic"))
		cfg_diag(p, CFG_ERROR, s->line, "decode '%s': 'topic' is required", nm);
	if (!(r->min_c < r->max_c))
		cfg_diag(p, CFG_ERROR, line_of(s, "max", "min"),
			 "decode '%s': min (%g) must be less than max (%g)", nm, r->min_c,
			 r->max_c);
	if (r->format != DEC_ADC) {
		if (cfg_key_line(s, "scale"))
			cfg_diag(p, CFG_WARNING, cfg_key_line(s, "scale"),
				 "decode '%s': 'scale' only applies to format = adc", nm);
		if (cfg_key_line(s, "offset"))
			cfg_diag(p, CFG_WARNING, cfg_key_line(s, "offset"),
				 "decode '%s': 'offset' only applies to format = adc", nm);
	}
}

/* [metrics] needs an address, and it must not be a device listener's:
 * the two would fight over the port. Not on loopback: a warning, since
 * the figures (and /readyz) describe the site to whoever can reach it. */
/* A status the gateway publishes must not come back to it as a command. */
static void check_downlink(struct parser *p, const struct secrec *s)
{
	const struct cfg_downlink *d = &p->cfg->downlink;
	const char *gw = p->cfg->gateway.name ? p->cfg->gateway.name : "iotgw";
	if (strcmp(d->topic, "none") == 0)
		return;
	/* Without TLS there is no write buffer to hold the PUBACK in. */
	if (!p->cfg->upstream.tls)
		cfg_diag(p, CFG_WARNING, cfg_key_line(s, "topic"),
			 "[downlink] with [upstream] tls = off: the broker gets its PUBACK for a "
			 "command before the command is on disk; a crash right after loses it");
	if (strcmp(d->status_topic, "none") == 0)
		return;
	char sub[CMDTOPIC_MAX], cmd[CMDTOPIC_MAX], status[CMDTOPIC_MAX];
	struct cmdtopic_vars v = {.gateway = gw};
	if (cmdtopic_render(d->topic, &v, sub, sizeof sub) < 0)
		return;
	v.device = "dev";
	v.command = "cmd";
	if (cmdtopic_render(d->topic, &v, cmd, sizeof cmd) < 0)
		return;
	v.topic = cmd;
	if (cmdtopic_render(d->status_topic, &v, status, sizeof status) < 0 ||
	    !mqtt_topic_matches(sub, status, strlen(status)))
		return;
	int line = cfg_key_line(s, "status_topic");
	cfg_diag(p, CFG_ERROR, line ? line : s->line,
		 "[downlink]: status_topic %s would be received as a command (it matches the "
		 "subscription %s)",
		 d->status_topic, sub);
}

static void check_metrics(struct parser *p, const struct secrec *s)
{
	const struct cfg_metrics *m = &p->cfg->metrics;
	if (!cfg_key_line(s, "bind")) {
		cfg_diag(p, CFG_ERROR, s->line, "[metrics]: 'bind' is required (e.g. bind = "
						"127.0.0.1:9883)");
		return;
	}
	char addr[CFG_BIND_TEXT];
	for (size_t b = 0; b < m->nbinds; b++) {
		cfg_bind_format(&m->binds[b], addr, sizeof addr);
		for (size_t i = 0; i < p->cfg->nlisteners; i++) {
			const struct cfg_listener *l = &p->cfg->listeners[i];
			for (size_t lb = 0; lb < l->nbinds; lb++)
				if (bind_conflict(&l->binds[lb], &m->binds[b]))
					cfg_diag(p, CFG_ERROR, m->bind_line,
						 "[metrics]: bind address %s collides with listener "
						 "'%s' (line %d)",
						 addr, l->name ? l->name : "?", l->bind_line);
		}
		if (strcmp(m->binds[b].host, "127.0.0.1") != 0 && strcmp(m->binds[b].host, "::1") != 0)
			cfg_diag(p, CFG_WARNING, m->bind_line,
				 "[metrics]: %s is not loopback: anyone who can reach it reads the "
				 "gateway's figures; keep it behind a firewall",
				 addr);
	}
}

/* A per-device limit at or above the spool's own never holds anyone back
 * before the spool is full: almost certainly a unit mistake. */
static void check_share(struct parser *p, const struct secrec *s, const char *key, uint64_t v,
			const char *spool_key, uint64_t max)
{
	if (v >= max)
		cfg_diag(p, CFG_WARNING, cfg_key_line(s, key),
			 "%s (%llu) is not below %s (%llu): it never applies", key,
			 (unsigned long long)v, spool_key, (unsigned long long)max);
}

static void check_spool(struct parser *p, const struct secrec *s)
{
	const struct cfg_spool *sp = &p->cfg->spool;
	check_share(p, s, "max_messages_per_device", sp->max_messages_per_device, "max_messages",
		    sp->max_messages);
	check_share(p, s, "max_bytes_per_device", sp->max_bytes_per_device, "max_bytes",
		    sp->max_bytes);
}

void cfg_cross_checks(struct parser *p)
{
	const struct secrec *up = NULL;
	for (size_t i = 0; i < p->nsecs; i++) {
		const struct secrec *s = &p->secs[i];
		if (s->scratch)
			continue;
		if (s->kind == SEC_LISTENER)
			check_listener(p, s);
		else if (s->kind == SEC_UPSTREAM)
			up = s;
		else if (s->kind == SEC_DECODE)
			check_decode(p, s);
		else if (s->kind == SEC_METRICS)
			check_metrics(p, s);
		else if (s->kind == SEC_DOWNLINK)
			check_downlink(p, s);
		else if (s->kind == SEC_SPOOL && cfg_key_line(s, "max_messages_per_device") +
							cfg_key_line(s, "max_bytes_per_device"))
			check_spool(p, s);
	}
	if (up)
		check_upstream(p, up);
	else
		cfg_diag(p, CFG_ERROR, 0, "missing [upstream] section ('host' is required)");
	if (p->cfg->nlisteners == 0)
		cfg_diag(p, CFG_ERROR, 0,
			 "no [listener NAME] section: at least one listener is required");

	struct iotgw_config *c = p->cfg;
	if (!c->upstream.client_id && c->gateway.name) {
		size_t n = strlen(c->gateway.name) + sizeof "iotgw-";
		c->upstream.client_id = malloc(n);
		if (c->upstream.client_id)
			snprintf(c->upstream.client_id, n, "iotgw-%s", c->gateway.name);
		else
			cfg_diag(p, CFG_ERROR, 0, "out of memory");
	}
}
