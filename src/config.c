/* config: the /etc/iotgw.conf parser, on top of the line reader in ini.c.
 *
 * All keys live in one table (opts[] below): section kind, key, type,
 * default, range and where the value goes. Applying a key, the defaults and
 * cfg_free are generic over that table; only cross-field rules are code, in
 * config_check.c. Every problem is reported and parsing continues, so one
 * `iotgw -t` run shows all of them. Pure: no file access except in
 * cfg_load_file. */
#include "iotgw/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "iotgw/auth.h"
#include "iotgw/decoder.h"
#include "iotgw/ini.h"
#include "iotgw/log_level.h"
#include "iotgw/mqtt_codec.h"
#include "iotgw/reading.h"

#define CFG_FILE_MAX (1024 * 1024)      /* cfg_load_file refuses bigger files */
#define CFG_SECTION_NAME_MAX 32         /* [listener NAME], [decode NAME] */
#define CFG_GATEWAY_NAME_MAX 64
#define CFG_MSG_MAX 512

/* short names for the option table */
#define KIB INI_KIB
#define MIB INI_MIB
#define GIB INI_GIB
#define SEC INI_SEC /* durations are handled in milliseconds */
#define MIN INI_MIN
#define HOUR INI_HOUR
#define DAY (24 * INI_HOUR)

#define DEFAULT_GROUPS "X25519:P-256:P-384:P-521"

static const struct {
	const char *name;
	bool named; /* [kind NAME], any number; else at most once, no name */
} kinds[SEC_KINDS] = {
	[SEC_GATEWAY] = {"gateway", false},
	[SEC_LISTENER] = {"listener", true},
	[SEC_UPSTREAM] = {"upstream", false},
	[SEC_SPOOL] = {"spool", false},
	[SEC_DECODE] = {"decode", true},
	[SEC_METRICS] = {"metrics", false},
};

enum opt_type {
	T_STR,      /* char *, strdup'd */
	T_PATH,     /* struct cfg_path */
	T_BOOL,     /* bool, ini_parse_bool syntax */
	T_UINT,     /* unsigned integer of `width` bytes, min..max */
	T_DURATION, /* unsigned of `width` bytes in units of `unit_ms`, min..max in ms */
	T_SIZE,     /* unsigned of `width` bytes, min..max bytes */
	T_DOUBLE,   /* double, finite */
	T_ENUM,     /* one of names[], stored as values[] in `width` bytes */
	T_CUSTOM,   /* set() does everything */
};

struct opt {
	enum sec_kind sec;
	const char *key;
	enum opt_type type;
	size_t off;   /* offset of the field in the section's struct */
	size_t width; /* sizeof the field, for integers, enums and bools */
	uint64_t min, max;
	unsigned unit_ms; /* T_DURATION: 1 (field in ms) or 1000 (field in seconds) */
	bool zero_ok;     /* T_DURATION: 0 allowed as well as min..max ("no limit") */
	bool empty_ok;    /* "key =" allowed: stores NULL */
	const char *const *names; /* T_ENUM, NULL-terminated */
	const int *values;
	const char *def_str;
	uint64_t def_u;
	double def_d;
	/* T_STR: extra validation; 0 ok, else -1 and a reason in why */
	int (*check)(const char *v, char *why, size_t whylen);
	/* T_CUSTOM: 0 ok, else -1 after reporting through p */
	int (*set)(struct parser *p, void *obj, const char *v, int line);
};

/* ---- diagnostics ---- */

void cfg_report(struct cfg_diag_sink *d, enum cfg_severity sev, int line, const char *fmt, ...)
{
	if (sev == CFG_ERROR)
		d->errors++;
	if (!d->fn)
		return;
	char msg[CFG_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	d->fn(d->ctx, sev, d->file, line, msg);
}

const char *cfg_quote(const char *s, char *out)
{
	return text_quote(out, CFG_QUOTE_CAP, s, strlen(s), CFG_QUOTE_MAX,
			  TEXT_KEEP_UTF8 | TEXT_UNQUOTED);
}

/* ---- storing values ---- */

static void store_uint(void *field, size_t width, uint64_t v)
{
	switch (width) {
	case 1: {
		uint8_t x = (uint8_t)v;
		memcpy(field, &x, 1);
		break;
	}
	case 2: {
		uint16_t x = (uint16_t)v;
		memcpy(field, &x, 2);
		break;
	}
	case 4: {
		uint32_t x = (uint32_t)v;
		memcpy(field, &x, 4);
		break;
	}
	default: {
		memcpy(field, &v, 8);
		break;
	}
	}
}

static void store_bool(void *field, bool v)
{
	memcpy(field, &v, sizeof v);
}

/* ---- durations: ini's units plus days ---- */

/* ini_parse_duration_ms plus "Nd" (days): certificate and session
 * lifetimes are counted in days. */
static int parse_duration(const char *v, uint64_t *ms)
{
	size_t n = strlen(v);
	if (n < 2 || v[n - 1] != 'd')
		return ini_parse_duration_ms(v, ms);
	size_t k = n - 1;
	while (k > 0 && (v[k - 1] == ' ' || v[k - 1] == '\t'))
		k--;
	if (k == 0 || strspn(v, "0123456789") != k)
		return INI_ESYNTAX;
	char num[24];
	if (k >= sizeof num)
		return INI_ERANGE;
	memcpy(num, v, k);
	num[k] = '\0';
	uint64_t days;
	int rc = ini_parse_uint(num, &days);
	if (rc != 0)
		return rc;
	if (days > UINT64_MAX / DAY)
		return INI_ERANGE;
	*ms = days * DAY;
	return 0;
}

static void format_duration(uint64_t ms, char *out, size_t cap)
{
	if (ms != 0 && ms % DAY == 0)
		snprintf(out, cap, "%" PRIu64 "d", ms / DAY);
	else
		ini_format_duration_ms(ms, out, cap);
}

/* ---- checks used by the table ---- */

static bool name_chars_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	return n >= 1 && n <= max &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int check_gateway_name(const char *v, char *why, size_t whylen)
{
	if (name_chars_ok(v, CFG_GATEWAY_NAME_MAX))
		return 0;
	snprintf(why, whylen, "use 1-%d characters A-Z a-z 0-9 . _ -", CFG_GATEWAY_NAME_MAX);
	return -1;
}

static int check_host(const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v);
	if (n <= 253 &&
	    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:") == n)
		return 0;
	snprintf(why, whylen, "expected a host name or numeric address");
	return -1;
}

/* Client id, user name: MQTT UTF-8 strings (1.5.3, 3.1.3). */
static int check_mqtt_string(const char *v, char *why, size_t whylen)
{
	if (mqtt_utf8_valid(v, strlen(v)))
		return 0;
	snprintf(why, whylen, "not valid UTF-8 (MQTT 3.1.1 section 1.5.3)");
	return -1;
}

static int check_topic_filter(const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v);
	if (mqtt_utf8_valid(v, n) && mqtt_filter_valid(v, n))
		return 0;
	snprintf(why, whylen,
		 "not a valid MQTT topic filter ('#' only last and alone in its level, '+' alone "
		 "in its level; MQTT 3.1.1 section 4.7.1)");
	return -1;
}

static int check_dir(const char *v, char *why, size_t whylen)
{
	if (v[0] && strlen(v) < 3500)
		return 0;
	snprintf(why, whylen, "expected a directory path");
	return -1;
}

/* ---- custom setters ---- */

/* "A.B.C.D:PORT" or "[IPv6]:PORT", numeric only: a listener must not depend
 * on name resolution at start-up. */
static int parse_bind(const char *v, char *host, size_t hostcap, uint16_t *port)
{
	const char *h, *colon;
	size_t hlen;
	int af;
	if (v[0] == '[') {
		const char *rb = strchr(v, ']');
		if (!rb || rb[1] != ':')
			return -1;
		h = v + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
		af = AF_INET6;
	} else {
		colon = strchr(v, ':');
		if (!colon || strchr(colon + 1, ':'))
			return -1;
		h = v;
		hlen = (size_t)(colon - v);
		af = AF_INET;
	}
	if (hlen == 0 || hlen >= hostcap)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	unsigned char addr[16];
	if (inet_pton(af, host, addr) != 1)
		return -1;
	/* canonical form for logs and comparisons: "0::0" -> "::" */
	if (!inet_ntop(af, addr, host, (socklen_t)hostcap))
		return -1;
	uint64_t p;
	if (ini_parse_uint(colon + 1, &p) != 0)
		return -1;
	if (p < 1 || p > 65535)
		return -2;
	*port = (uint16_t)p;
	return 0;
}

static void free_binds(struct cfg_bind binds[CFG_BINDS_MAX], size_t *nbinds)
{
	for (size_t i = 0; i < *nbinds; i++)
		free(binds[i].host);
	memset(binds, 0, CFG_BINDS_MAX * sizeof binds[0]);
	*nbinds = 0;
}

void cfg_bind_format(const struct cfg_bind *b, char *out, size_t cap)
{
	bool v6 = strchr(b->host, ':') != NULL;
	snprintf(out, cap, "%s%s%s:%u", v6 ? "[" : "", b->host, v6 ? "]" : "",
		 (unsigned)b->port);
}

void cfg_binds_format(const struct cfg_bind *binds, size_t nbinds, char *out, size_t cap)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < nbinds && used + 1 < cap; i++) {
		char one[CFG_BIND_TEXT];
		cfg_bind_format(&binds[i], one, sizeof one);
		int n = snprintf(out + used, cap - used, "%s%s", i ? " " : "", one);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* `bind = ADDR:PORT [ADDR:PORT ...]`: one listener, several sockets (an
 * IPv4 and an IPv6 address of one port, typically). */
/* `bind = ADDR:PORT ...` of a listener or of [metrics]: all or nothing. */
static int parse_binds(struct parser *p, const char *v, int line, struct cfg_bind *binds,
		       size_t *nbinds, int *bind_line)
{
	struct cfg_listener fresh = {0};
	char qb[CFG_QUOTE_CAP];
	const char *sp = " \t";
	for (const char *t = v + strspn(v, sp); *t; t += strspn(t, sp)) {
		size_t tlen = strcspn(t, sp);
		char word[INET6_ADDRSTRLEN + 16], host[INET6_ADDRSTRLEN + 1];
		snprintf(word, sizeof word, "%.*s", (int)tlen, t);
		t += tlen;
		uint16_t port = 0;
		int rc = tlen < sizeof word ? parse_bind(word, host, sizeof host, &port) : -1;
		if (rc == -2) {
			cfg_diag(p, CFG_ERROR, line, "bind '%s': port out of range 1..65535",
				 cfg_quote(word, qb));
			goto fail;
		}
		if (rc != 0) {
			cfg_diag(p, CFG_ERROR, line,
				 "bind '%s': expected a numeric address and port, \"A.B.C.D:PORT\" "
				 "or \"[IPv6]:PORT\" (several: separated by spaces)",
				 cfg_quote(tlen < sizeof word ? word : v, qb));
			goto fail;
		}
		if (fresh.nbinds == CFG_BINDS_MAX) {
			cfg_diag(p, CFG_ERROR, line, "bind: more than %d addresses", CFG_BINDS_MAX);
			goto fail;
		}
		char *dup = strdup(host);
		if (!dup) {
			cfg_diag(p, CFG_ERROR, line, "out of memory");
			goto fail;
		}
		fresh.binds[fresh.nbinds++] = (struct cfg_bind){dup, port};
	}
	if (fresh.nbinds == 0) {
		cfg_diag(p, CFG_ERROR, line, "bind: no address given");
		return -1;
	}
	free_binds(binds, nbinds);
	memcpy(binds, fresh.binds, sizeof fresh.binds);
	*nbinds = fresh.nbinds;
	*bind_line = line;
	return 0;
fail:
	free_binds(fresh.binds, &fresh.nbinds);
	return -1;
}

static int set_bind(struct parser *p, void *obj, const char *v, int line)
{
	struct cfg_listener *l = obj;
	return parse_binds(p, v, line, l->binds, &l->nbinds, &l->bind_line);
}

static int set_metrics_bind(struct parser *p, void *obj, const char *v, int line)
{
	struct cfg_metrics *m = obj;
	return parse_binds(p, v, line, m->binds, &m->nbinds, &m->bind_line);
}

/* A topic the gateway publishes about itself: "none", or a template with
 * {gateway} at most (no device or event to fill in). */
static int check_gateway_topic(const char *v, char *why, size_t whylen)
{
	if (strcmp(v, "none") == 0)
		return 0;
	if (strstr(v, "{device}") || strstr(v, "{event}")) {
		snprintf(why, whylen, "only {gateway} can be filled in here");
		return -1;
	}
	return reading_topic_check(v, why, whylen);
}

static int set_format(struct parser *p, void *obj, const char *v, int line)
{
	struct dec_rule *r = obj;
	char qb[CFG_QUOTE_CAP];
	if (dec_format_parse(v, &r->format) != 0) {
		cfg_diag(p, CFG_ERROR, line,
			 "invalid value '%s' for 'format' (allowed: auto, watson, json, number, "
			 "adc)",
			 cfg_quote(v, qb));
		return -1;
	}
	return 0;
}

static void free_devices(struct dec_rule *r)
{
	for (size_t i = 0; i < r->ndevices; i++)
		free(r->devices[i]);
	free(r->devices);
	r->devices = NULL;
	r->ndevices = 0;
}

static bool has_device(const struct dec_rule *r, const char *s, size_t n)
{
	for (size_t i = 0; i < r->ndevices; i++)
		if (strlen(r->devices[i]) == n && memcmp(r->devices[i], s, n) == 0)
			return true;
	return false;
}

/* "dev0001 dev0002" or "dev0001, dev0002": device ids as the listener
 * derives them (certificate CN/SAN or MQTT client id). */
static int set_devices(struct parser *p, void *obj, const char *v, int line)
{
	struct dec_rule *r = obj;
	static const char seps[] = " \t,";
	char qb[CFG_QUOTE_CAP];
	free_devices(r);
	for (const char *s = v + strspn(v, seps); *s; s += strspn(s, seps)) {
		size_t n = strcspn(s, seps);
		char *id = strndup(s, n);
		s += n;
		if (!id) {
			cfg_diag(p, CFG_ERROR, line, "out of memory");
			return -1;
		}
		if (!mqtt_utf8_valid(id, n)) {
			cfg_diag(p, CFG_ERROR, line, "device id '%s' is not valid UTF-8",
				 cfg_quote(id, qb));
			free(id);
			return -1;
		}
		if (has_device(r, id, n)) {
			cfg_diag(p, CFG_WARNING, line, "device '%s' listed twice in 'devices'",
				 cfg_quote(id, qb));
			free(id);
			continue;
		}
		char **nd = realloc(r->devices, (r->ndevices + 1) * sizeof *nd);
		if (!nd) {
			free(id);
			cfg_diag(p, CFG_ERROR, line, "out of memory");
			return -1;
		}
		r->devices = nd;
		r->devices[r->ndevices++] = id;
	}
	if (r->ndevices == 0) {
		cfg_diag(p, CFG_ERROR, line, "empty value for 'devices'");
		return -1;
	}
	return 0;
}

static void free_acl(struct cfg_listener *l)
{
	for (size_t i = 0; i < l->npublish_acl; i++)
		free(l->publish_acl[i]);
	free(l->publish_acl);
	l->publish_acl = NULL;
	l->npublish_acl = 0;
}

/* One publish_acl pattern: UTF-8 (topics are, MQTT 1.5.3), and the level
 * rules of auth_acl_pattern_check, the same function that compiles the ACL
 * for the session, so that what the parser accepts is what gets enforced. */
static int check_acl_pattern(const char *v, size_t n, char *why, size_t whylen)
{
	if (!mqtt_utf8_valid(v, n)) {
		snprintf(why, whylen, "not valid UTF-8");
		return -1;
	}
	return auth_acl_pattern_check(v, n, why, whylen);
}

/* "PATTERN PATTERN ..." or "none" (no check: a warning, in config_check.c). */
static int set_acl(struct parser *p, void *obj, const char *v, int line)
{
	struct cfg_listener *l = obj;
	static const char seps[] = " \t";
	char qb[CFG_QUOTE_CAP], why[160];
	free_acl(l);
	if (strcmp(v, AUTH_ACL_NONE) == 0)
		return 0;
	for (const char *s = v + strspn(v, seps); *s; s += strspn(s, seps)) {
		size_t n = strcspn(s, seps);
		char *pat = strndup(s, n);
		s += n;
		if (!pat) {
			cfg_diag(p, CFG_ERROR, line, "out of memory");
			goto fail;
		}
		if (strcmp(pat, AUTH_ACL_NONE) == 0) {
			cfg_diag(p, CFG_ERROR, line,
				 "'none' must be the only value of 'publish_acl'");
			free(pat);
			goto fail;
		}
		if (check_acl_pattern(pat, n, why, sizeof why) != 0) {
			cfg_diag(p, CFG_ERROR, line, "invalid publish_acl pattern '%s': %s",
				 cfg_quote(pat, qb), why);
			free(pat);
			goto fail;
		}
		if (l->npublish_acl == AUTH_ACL_PATTERNS_MAX) {
			cfg_diag(p, CFG_ERROR, line, "more than %d patterns in 'publish_acl'",
				 AUTH_ACL_PATTERNS_MAX);
			free(pat);
			goto fail;
		}
		char **na = realloc(l->publish_acl, (l->npublish_acl + 1) * sizeof *na);
		if (!na) {
			free(pat);
			cfg_diag(p, CFG_ERROR, line, "out of memory");
			goto fail;
		}
		l->publish_acl = na;
		l->publish_acl[l->npublish_acl++] = pat;
	}
	return 0;
fail:
	/* never half a list: a bad value leaves the default in place */
	free_acl(l);
	(void)set_acl(p, obj, AUTH_ACL_DEFAULT, line);
	return -1;
}

/* ---- the option table ---- */

static const char *const tls_names[] = {"off", "server", "mutual", NULL};
static const int tls_values[] = {CFG_TLS_OFF, CFG_TLS_SERVER, CFG_TLS_MUTUAL};
static const char *const id_names[] = {"cn", "san-dns", "san-uri", "san-email", "serial", NULL};
static const int id_values[] = {CFG_ID_CN, CFG_ID_SAN_DNS, CFG_ID_SAN_URI, CFG_ID_SAN_EMAIL,
				CFG_ID_SERIAL};
static const char *const clid_names[] = {"match", "exact", "any", NULL};
static const int clid_values[] = {CFG_CLIENT_ID_MATCH, CFG_CLIENT_ID_EXACT, CFG_CLIENT_ID_ANY};
static const char *const profile_names[] = {"modern", "compatible", "legacy", NULL};
static const int profile_values[] = {CFG_TLS_MODERN, CFG_TLS_COMPATIBLE, CFG_TLS_LEGACY};
static const char *const tlsver_names[] = {"1.2", "1.3", NULL};
static const int tlsver_values[] = {12, 13};
static const char *const uptls_names[] = {"mutual", "off", NULL};
static const int uptls_values[] = {1, 0};
static const char *const durability_names[] = {"fsync", "os", NULL};
static const int durability_values[] = {CFG_DURABLE_FSYNC, CFG_DURABLE_OS};
static const char *const unit_names[] = {"C", "F", NULL};
static const int unit_values[] = {'C', 'F'};

#define FW(T, F) sizeof(((T *)0)->F)
#define O_STR_(S, T, K, F, DEF, CHK)                                                               \
	{.sec = S, .key = K, .type = T_STR, .off = offsetof(T, F), .def_str = DEF, .check = CHK}
#define O_OPTSTR_(S, T, K, F, CHK)                                                                 \
	{.sec = S, .key = K, .type = T_STR, .off = offsetof(T, F), .empty_ok = true, .check = CHK}
#define O_PATH_(S, T, K, F) {.sec = S, .key = K, .type = T_PATH, .off = offsetof(T, F)}
#define O_UINT_(S, T, K, F, LO, HI, DEF)                                                           \
	{.sec = S, .key = K, .type = T_UINT, .off = offsetof(T, F), .width = FW(T, F), .min = LO,  \
	 .max = HI, .def_u = DEF}
#define O_DUR_(S, T, K, F, UNIT, LO, HI, ZERO, DEF)                                                \
	{.sec = S, .key = K, .type = T_DURATION, .off = offsetof(T, F), .width = FW(T, F),         \
	 .unit_ms = UNIT, .min = LO, .max = HI, .zero_ok = ZERO, .def_u = DEF}
#define O_SIZE_(S, T, K, F, LO, HI, DEF)                                                           \
	{.sec = S, .key = K, .type = T_SIZE, .off = offsetof(T, F), .width = FW(T, F), .min = LO,  \
	 .max = HI, .def_u = DEF}
#define O_DBL_(S, T, K, F, DEF)                                                                    \
	{.sec = S, .key = K, .type = T_DOUBLE, .off = offsetof(T, F), .def_d = DEF}
#define O_ENUM_(S, T, K, F, NAMES, VALUES, DEF)                                                    \
	{.sec = S, .key = K, .type = T_ENUM, .off = offsetof(T, F), .width = FW(T, F),             \
	 .names = NAMES, .values = VALUES, .def_u = DEF}
#define O_BOOL_(S, T, K, F, DEF)                                                                   \
	{.sec = S, .key = K, .type = T_BOOL, .off = offsetof(T, F), .width = FW(T, F), .def_u = DEF}
#define O_CUSTOM(S, K, SET) {.sec = S, .key = K, .type = T_CUSTOM, .set = SET}
/* One more expansion step, so that GW etc. below split into section and type. */
#define O_STR(...) O_STR_(__VA_ARGS__)
#define O_OPTSTR(...) O_OPTSTR_(__VA_ARGS__)
#define O_PATH(...) O_PATH_(__VA_ARGS__)
#define O_UINT(...) O_UINT_(__VA_ARGS__)
#define O_DUR(...) O_DUR_(__VA_ARGS__)
#define O_SIZE(...) O_SIZE_(__VA_ARGS__)
#define O_DBL(...) O_DBL_(__VA_ARGS__)
#define O_ENUM(...) O_ENUM_(__VA_ARGS__)
#define O_BOOL(...) O_BOOL_(__VA_ARGS__)

#define GW SEC_GATEWAY, struct cfg_gateway
#define LS SEC_LISTENER, struct cfg_listener
#define UP SEC_UPSTREAM, struct cfg_upstream
#define SP SEC_SPOOL, struct cfg_spool
#define DC SEC_DECODE, struct dec_rule

static const struct opt opts[] = {
	O_STR(GW, "name", name, "iotgw", check_gateway_name),
	O_ENUM(GW, "log_level", log_level, log_level_names, log_level_values, 6),
	O_SIZE(GW, "max_packet_size", max_packet_size, 128, 1 * MIB, 16 * KIB),
	O_DUR(GW, "connect_timeout", connect_timeout_ms, 1, 1 * SEC, 300 * SEC, false, 10 * SEC),
	O_DUR(GW, "max_keepalive", max_keepalive_s, 1000, 1 * SEC, 18 * HOUR, true, 1 * HOUR),
	O_BOOL(GW, "watch_tls_files", watch_tls_files, 0),
	O_DUR(GW, "expiry_warning", expiry_warning_s, 1000, 1 * HOUR, 365 * DAY, true, 30 * DAY),

	O_CUSTOM(SEC_LISTENER, "bind", set_bind),
	O_ENUM(LS, "tls", tls, tls_names, tls_values, CFG_TLS_MUTUAL),
	O_PATH(LS, "cert", cert),
	O_PATH(LS, "key", key),
	O_PATH(LS, "ca", ca),
	O_PATH(LS, "crl", crl),
	O_PATH(LS, "password_file", password_file),
	O_ENUM(LS, "identity", identity, id_names, id_values, CFG_ID_CN),
	O_ENUM(LS, "client_id", client_id, clid_names, clid_values, CFG_CLIENT_ID_MATCH),
	O_CUSTOM(SEC_LISTENER, "publish_acl", set_acl),
	O_DUR(LS, "handshake_timeout", handshake_timeout_ms, 1, 1 * SEC, 300 * SEC, false,
	      10 * SEC),
	O_UINT(LS, "max_connections", max_connections, 1, 1000000, 10000),
	O_ENUM(LS, "tls_min_version", tls_min_version, tlsver_names, tlsver_values, 12),
	O_ENUM(LS, "tls_profile", tls_profile, profile_names, profile_values, CFG_TLS_COMPATIBLE),
	O_STR(LS, "ciphers", ciphers, NULL, NULL),
	O_STR(LS, "ciphersuites", ciphersuites, NULL, NULL),
	O_STR(LS, "groups", groups, DEFAULT_GROUPS, NULL),
	O_BOOL(LS, "session_resumption", session_resumption, 1),
	O_DUR(LS, "session_lifetime", session_lifetime_s, 1000, 1 * MIN, 7 * DAY, false, 2 * HOUR),
	O_DUR(LS, "cert_expiry_warning", cert_expiry_warning_s, 1000, 1 * HOUR, 365 * DAY, true,
	      30 * DAY),
	O_BOOL(LS, "disconnect_revoked", disconnect_revoked, 1),

	O_STR(UP, "host", host, NULL, check_host),
	O_UINT(UP, "port", port, 1, 65535, 8883),
	O_STR(UP, "client_id", client_id, NULL, check_mqtt_string),
	O_ENUM(UP, "tls", tls, uptls_names, uptls_values, 1),
	O_PATH(UP, "ca", ca),
	O_PATH(UP, "cert", cert),
	O_PATH(UP, "key", key),
	O_PATH(UP, "crl", crl),
	O_DUR(UP, "keepalive", keepalive_s, 1000, 5 * SEC, 1 * HOUR, false, 60 * SEC),
	O_UINT(UP, "inflight", inflight, 1, 65535, 32),
	O_DUR(UP, "reconnect_min", reconnect_min_ms, 1, 100, 1 * HOUR, false, 1 * SEC),
	O_DUR(UP, "reconnect_max", reconnect_max_ms, 1, 100, 1 * HOUR, false, 60 * SEC),
	O_STR(UP, "topic", topic, "sensors/{device}/temperature", reading_topic_check),
	O_STR(UP, "dead_letter_topic", dead_letter_topic, "iotgw/{gateway}/deadletter/{device}",
	      reading_topic_check),
	O_OPTSTR(UP, "username", username, check_mqtt_string),
	O_OPTSTR(UP, "password", password, NULL),
	O_STR(UP, "presence_topic", presence_topic, "iotgw/{gateway}/status", check_gateway_topic),
	O_STR(UP, "stats_topic", stats_topic, "none", check_gateway_topic),
	O_DUR(UP, "stats_interval", stats_interval_ms, 1, 1 * SEC, 1 * DAY, false, 60 * SEC),

	O_STR(SP, "dir", dir, IOTGW_STATE_DIR, check_dir),
	O_ENUM(SP, "durability", durability, durability_names, durability_values,
	       CFG_DURABLE_FSYNC),
	O_UINT(SP, "max_messages", max_messages, 1, 100000000, 100000),
	O_SIZE(SP, "max_bytes", max_bytes, 4 * KIB, 64 * GIB, 64 * MIB),
	O_SIZE(SP, "min_free", min_free, 256 * KIB, 64 * GIB, 64 * MIB),

	O_CUSTOM(SEC_METRICS, "bind", set_metrics_bind),

	O_STR(DC, "topic", topic_filter, NULL, check_topic_filter),
	O_CUSTOM(SEC_DECODE, "format", set_format),
	O_CUSTOM(SEC_DECODE, "devices", set_devices),
	O_DBL(DC, "scale", scale, 1.0),
	O_DBL(DC, "offset", offset, 0.0),
	O_DBL(DC, "min", min_c, -40.0),
	O_DBL(DC, "max", max_c, 125.0),
	O_ENUM(DC, "unit", default_unit, unit_names, unit_values, 'C'),
};

#define NOPTS (sizeof opts / sizeof opts[0])

static const struct opt *opt_find(enum sec_kind k, const char *key, size_t *idx)
{
	for (size_t i = 0; i < NOPTS; i++) {
		if (opts[i].sec == k && strcmp(opts[i].key, key) == 0) {
			*idx = i;
			return &opts[i];
		}
	}
	return NULL;
}

static size_t opt_index(enum sec_kind k, const char *key)
{
	size_t i = 0;
	if (!opt_find(k, key, &i))
		abort(); /* a typo in this file, not in the configuration */
	return i;
}

int cfg_key_line(const struct secrec *s, const char *key)
{
	return s->seen[opt_index(s->kind, key)];
}

/* ---- section objects: defaults and freeing, driven by the table ---- */

/* Fills obj with the defaults of kind k; returns -1 when out of memory. */
static int obj_defaults(enum sec_kind k, void *obj)
{
	int rc = 0;
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		if (o->sec != k)
			continue;
		char *field = (char *)obj + o->off;
		switch (o->type) {
		case T_STR: {
			char *s = NULL;
			if (o->def_str && !(s = strdup(o->def_str)))
				rc = -1;
			memcpy(field, &s, sizeof s);
			break;
		}
		case T_UINT:
		case T_SIZE:
		case T_ENUM:
			store_uint(field, o->width, o->def_u);
			break;
		case T_DURATION:
			store_uint(field, o->width, o->def_u / o->unit_ms);
			break;
		case T_BOOL:
			store_bool(field, o->def_u != 0);
			break;
		case T_DOUBLE:
			memcpy(field, &o->def_d, sizeof o->def_d);
			break;
		case T_PATH:
		case T_CUSTOM:
			break; /* zero: not set */
		}
	}
	return rc;
}

static void obj_free(enum sec_kind k, void *obj)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		if (o->sec != k)
			continue;
		char *field = (char *)obj + o->off;
		if (o->type == T_STR) {
			char *s;
			memcpy(&s, field, sizeof s);
			free(s);
			s = NULL;
			memcpy(field, &s, sizeof s);
		} else if (o->type == T_PATH) {
			struct cfg_path *cp = (struct cfg_path *)(void *)field;
			free(cp->path);
			cp->path = NULL;
		}
	}
	if (k == SEC_LISTENER) {
		struct cfg_listener *l = obj;
		free_acl(l);
		free(l->name);
		l->name = NULL;
		free_binds(l->binds, &l->nbinds);
	} else if (k == SEC_METRICS) {
		struct cfg_metrics *m = obj;
		free_binds(m->binds, &m->nbinds);
	} else if (k == SEC_DECODE) {
		struct dec_rule *r = obj;
		free(r->name);
		r->name = NULL;
		free_devices(r);
	}
}

static size_t obj_size(enum sec_kind k)
{
	switch (k) {
	case SEC_GATEWAY:
		return sizeof(struct cfg_gateway);
	case SEC_LISTENER:
		return sizeof(struct cfg_listener);
	case SEC_UPSTREAM:
		return sizeof(struct cfg_upstream);
	case SEC_SPOOL:
		return sizeof(struct cfg_spool);
	case SEC_METRICS:
		return sizeof(struct cfg_metrics);
	default:
		return sizeof(struct dec_rule);
	}
}

static void *sec_obj(struct parser *p, const struct secrec *s)
{
	if (s->scratch)
		return s->scratch_obj;
	switch (s->kind) {
	case SEC_GATEWAY:
		return &p->cfg->gateway;
	case SEC_LISTENER:
		return &p->cfg->listeners[s->index];
	case SEC_UPSTREAM:
		return &p->cfg->upstream;
	case SEC_SPOOL:
		return &p->cfg->spool;
	case SEC_METRICS:
		return &p->cfg->metrics;
	default:
		return &p->cfg->rules[s->index];
	}
}

/* ---- applying one key ---- */

static void set_value(struct parser *p, struct secrec *s, const struct opt *o, const char *v,
		      int line)
{
	void *obj = sec_obj(p, s);
	char *field = (char *)obj + o->off;
	char qv[CFG_QUOTE_CAP], lo[32], hi[32], why[256];
	uint64_t u = 0;
	int rc;

	cfg_quote(v, qv); /* for the messages */
	switch (o->type) {
	case T_STR:
	case T_PATH: {
		why[0] = '\0';
		if (o->check && o->check(v, why, sizeof why) != 0) {
			cfg_diag(p, CFG_ERROR, line, "invalid value '%s' for '%s': %s", qv,
				 o->key, why);
			return;
		}
		char *dup = NULL;
		if (*v != '\0' && !(dup = strdup(v))) {
			cfg_diag(p, CFG_ERROR, line, "out of memory");
			return;
		}
		if (o->type == T_PATH) {
			struct cfg_path *cp = (struct cfg_path *)(void *)field;
			free(cp->path);
			cp->path = dup;
			cp->line = line;
		} else {
			char *old;
			memcpy(&old, field, sizeof old);
			free(old);
			memcpy(field, &dup, sizeof dup);
		}
		return;
	}
	case T_BOOL: {
		bool b;
		if (ini_parse_bool(v, &b) != 0) {
			cfg_diag(p, CFG_ERROR, line,
				 "invalid value '%s' for '%s' (allowed: yes, no, true, false, on, "
				 "off, 1, 0)",
				 qv, o->key);
			return;
		}
		store_bool(field, b);
		return;
	}
	case T_UINT:
		rc = ini_parse_uint(v, &u);
		if (rc == INI_ESYNTAX) {
			cfg_diag(p, CFG_ERROR, line,
				 "invalid value '%s' for '%s': not a whole number", qv,
				 o->key);
			return;
		}
		if (rc == INI_ERANGE || u < o->min || u > o->max) {
			cfg_diag(p, CFG_ERROR, line,
				 "value '%s' for '%s' out of range %" PRIu64 "..%" PRIu64, qv,
				 o->key, o->min, o->max);
			return;
		}
		store_uint(field, o->width, u);
		return;
	case T_DURATION:
		format_duration(o->min, lo, sizeof lo);
		format_duration(o->max, hi, sizeof hi);
		rc = parse_duration(v, &u);
		if (rc == INI_ESYNTAX) {
			cfg_diag(p, CFG_ERROR, line,
				 "invalid duration '%s' for '%s' (use e.g. 10, 10s, 500ms, 2m, 1h)",
				 qv, o->key);
			return;
		}
		if (rc == INI_ERANGE || (u < o->min && !(o->zero_ok && u == 0)) || u > o->max) {
			cfg_diag(p, CFG_ERROR, line, "duration '%s' for '%s' out of range %s%s..%s",
				 qv, o->key, o->zero_ok ? "0 or " : "", lo, hi);
			return;
		}
		if (u % o->unit_ms != 0) {
			cfg_diag(p, CFG_ERROR, line, "duration '%s' for '%s' must be whole seconds",
				 qv, o->key);
			return;
		}
		store_uint(field, o->width, u / o->unit_ms);
		return;
	case T_SIZE:
		ini_format_size(o->min, lo, sizeof lo);
		ini_format_size(o->max, hi, sizeof hi);
		rc = ini_parse_size(v, &u);
		if (rc == INI_ESYNTAX) {
			cfg_diag(p, CFG_ERROR, line,
				 "invalid size '%s' for '%s' (use e.g. 16384, 16K, 64M, 1G)",
				 qv, o->key);
			return;
		}
		if (rc == INI_ERANGE || u < o->min || u > o->max) {
			cfg_diag(p, CFG_ERROR, line, "size '%s' for '%s' out of range %s..%s",
				 qv, o->key, lo, hi);
			return;
		}
		store_uint(field, o->width, u);
		return;
	case T_DOUBLE: {
		double d;
		rc = ini_parse_double(v, &d);
		if (rc == INI_ESYNTAX) {
			cfg_diag(p, CFG_ERROR, line, "invalid value '%s' for '%s': not a number",
				 qv, o->key);
			return;
		}
		if (rc == INI_ERANGE) {
			cfg_diag(p, CFG_ERROR, line, "value '%s' for '%s' out of range", qv,
				 o->key);
			return;
		}
		memcpy(field, &d, sizeof d);
		return;
	}
	case T_ENUM: {
		for (size_t i = 0; o->names[i]; i++) {
			if (strcmp(v, o->names[i]) == 0) {
				store_uint(field, o->width, (uint64_t)o->values[i]);
				return;
			}
		}
		char allowed[128];
		size_t n = 0;
		allowed[0] = '\0';
		for (size_t i = 0; o->names[i] && n < sizeof allowed; i++) {
			int w = snprintf(allowed + n, sizeof allowed - n, "%s%s", i ? ", " : "",
					 o->names[i]);
			if (w < 0)
				break;
			n += (size_t)w;
		}
		cfg_diag(p, CFG_ERROR, line, "invalid value '%s' for '%s' (allowed: %s)", qv,
			 o->key, allowed);
		return;
	}
	case T_CUSTOM:
		o->set(p, obj, v, line);
		return;
	}
}

/* ---- sections ---- */

static void end_section(struct parser *p)
{
	if (p->in_sec) {
		struct secrec *s = &p->secs[p->cur];
		if (s->scratch && s->scratch_obj) {
			obj_free(s->kind, s->scratch_obj);
			free(s->scratch_obj);
			s->scratch_obj = NULL;
		}
	}
	p->in_sec = false;
	p->skipping = false;
}

/* Makes room for element n of arr (capacity *cap, elements of elsize bytes);
 * returns the possibly moved array, or NULL (arr untouched) when out of memory. */
static void *grow(void *arr, size_t n, size_t *cap, size_t elsize)
{
	if (n < *cap)
		return arr;
	size_t ncap = *cap ? *cap * 2 : 4;
	if (ncap > SIZE_MAX / elsize)
		return NULL;
	void *na = realloc(arr, ncap * elsize);
	if (na)
		*cap = ncap;
	return na;
}

static const struct secrec *find_section(struct parser *p, enum sec_kind k, const char *name)
{
	for (size_t i = 0; i < p->nsecs; i++) {
		const struct secrec *s = &p->secs[i];
		if (s->scratch || s->kind != k)
			continue;
		if (!kinds[k].named)
			return s;
		const char *other = k == SEC_LISTENER ? p->cfg->listeners[s->index].name
						      : p->cfg->rules[s->index].name;
		if (other && strcmp(other, name) == 0)
			return s;
	}
	return NULL;
}

/* A new section record; NULL when out of memory. */
static struct secrec *new_secrec(struct parser *p, enum sec_kind kind, int line)
{
	struct secrec *ns = grow(p->secs, p->nsecs, &p->capsecs, sizeof *ns);
	if (!ns)
		return NULL;
	p->secs = ns;
	struct secrec *s = &p->secs[p->nsecs];
	memset(s, 0, sizeof *s);
	s->kind = kind;
	s->line = line;
	s->seen = calloc(NOPTS, sizeof *s->seen);
	if (!s->seen)
		return NULL;
	p->nsecs++;
	return s;
}

/* The object keys of a new section go to: the embedded struct, a new
 * listeners[]/rules[] element with its defaults, or a scratch object. */
static void *new_obj(struct parser *p, struct secrec *s, const char *name)
{
	struct iotgw_config *c = p->cfg;
	void *obj;
	if (s->scratch) {
		obj = s->scratch_obj = calloc(1, obj_size(s->kind));
	} else if (s->kind == SEC_LISTENER) {
		struct cfg_listener *nl = grow(c->listeners, c->nlisteners, &p->listeners_cap,
					       sizeof *nl);
		if (!nl)
			return NULL;
		c->listeners = nl;
		s->index = c->nlisteners++;
		obj = &c->listeners[s->index];
		memset(obj, 0, sizeof *nl);
	} else if (s->kind == SEC_DECODE) {
		struct dec_rule *nr = grow(c->rules, c->nrules, &p->rules_cap, sizeof *nr);
		if (!nr)
			return NULL;
		c->rules = nr;
		s->index = c->nrules++;
		obj = &c->rules[s->index];
		memset(obj, 0, sizeof *nr);
	} else {
		return sec_obj(p, s); /* embedded, defaults applied at the start */
	}
	if (!obj)
		return NULL;
	if (obj_defaults(s->kind, obj) != 0)
		cfg_diag(p, CFG_ERROR, s->line, "out of memory");
	if (s->kind == SEC_LISTENER)
		(void)set_acl(p, obj, AUTH_ACL_DEFAULT, s->line);
	if (s->kind == SEC_LISTENER || s->kind == SEC_DECODE) {
		char *nm = strdup(name);
		if (!nm)
			cfg_diag(p, CFG_ERROR, s->line, "out of memory");
		if (s->kind == SEC_LISTENER) {
			struct cfg_listener *l = obj;
			l->name = nm;
			l->line = s->line;
		} else {
			struct dec_rule *r = obj;
			r->name = nm;
			r->line = s->line;
		}
	}
	return obj;
}

/* hdr: the text between [ and ], "kind" or "kind NAME"; klen: the length of
 * "kind"; name: "NAME" or "". */
static void begin_section(struct parser *p, const char *hdr, size_t klen, const char *name,
			  int line)
{
	char qb[CFG_QUOTE_CAP], qn[CFG_QUOTE_CAP];
	end_section(p);
	int k = -1;
	for (int i = 0; i < SEC_KINDS; i++)
		if (strlen(kinds[i].name) == klen && memcmp(hdr, kinds[i].name, klen) == 0)
			k = i;
	if (k < 0) {
		cfg_diag(p, CFG_ERROR, line,
			 "unknown section [%s] (expected [gateway], [listener NAME], [upstream], "
			 "[spool] or [decode NAME])",
			 cfg_quote(hdr, qb));
		p->skipping = true;
		return;
	}
	enum sec_kind kind = (enum sec_kind)k;
	const char *kn = kinds[kind].name;
	/* A badly named [listener]/[decode] is parsed into a scratch object so that
	 * its keys are still checked; a name on [gateway] etc. is only an error. */
	bool scratch = false;
	if (kinds[kind].named && *name == '\0') {
		cfg_diag(p, CFG_ERROR, line, "section [%s] needs a name: [%s NAME]", kn, kn);
		scratch = true;
	} else if (kinds[kind].named && !name_chars_ok(name, CFG_SECTION_NAME_MAX)) {
		cfg_diag(p, CFG_ERROR, line,
			 "invalid section name '%s' (use 1-%d characters A-Z a-z 0-9 . _ -)",
			 cfg_quote(name, qn), CFG_SECTION_NAME_MAX);
		scratch = true;
	} else if (!kinds[kind].named && *name != '\0') {
		cfg_diag(p, CFG_ERROR, line, "section [%s] takes no name", kn);
	}
	const struct secrec *first = scratch ? NULL : find_section(p, kind, name);
	if (first) {
		if (kinds[kind].named)
			cfg_diag(p, CFG_ERROR, line,
				 "duplicate section [%s %s], first at line %d", kn, name,
				 first->line);
		else
			cfg_diag(p, CFG_ERROR, line, "duplicate section [%s], first at line %d", kn,
				 first->line);
		scratch = true;
	}

	struct secrec *s = new_secrec(p, kind, line);
	if (!s) {
		cfg_diag(p, CFG_ERROR, line, "out of memory");
		p->skipping = true;
		return;
	}
	s->scratch = scratch;
	if (kinds[kind].named && *name)
		snprintf(s->label, sizeof s->label, "[%s %s]", kn, cfg_quote(name, qn));
	else
		snprintf(s->label, sizeof s->label, "[%s]", kn);
	if (!new_obj(p, s, name)) {
		s->scratch = true; /* keys are ignored; keep the record for end_section */
		cfg_diag(p, CFG_ERROR, line, "out of memory");
		p->skipping = true;
		return;
	}
	p->cur = p->nsecs - 1;
	p->in_sec = true;
}

static void set_key(struct parser *p, const char *key, const char *value, int lineno)
{
	char qb[CFG_QUOTE_CAP];
	if (p->skipping)
		return;
	if (!p->in_sec) {
		cfg_diag(p, CFG_ERROR, lineno, "key '%s' outside any section", cfg_quote(key, qb));
		return;
	}
	struct secrec *s = &p->secs[p->cur];
	size_t idx;
	const struct opt *o = opt_find(s->kind, key, &idx);
	if (!o) {
		cfg_diag(p, CFG_ERROR, lineno, "unknown key '%s' in section %s", cfg_quote(key, qb),
			 s->label);
		return;
	}
	if (s->seen[idx]) {
		cfg_diag(p, CFG_ERROR, lineno, "duplicate key '%s', first set at line %d", o->key,
			 s->seen[idx]);
		return;
	}
	s->seen[idx] = lineno;
	if (*value == '\0' && !o->empty_ok) {
		cfg_diag(p, CFG_ERROR, lineno, "empty value for '%s'", o->key);
		return;
	}
	set_value(p, s, o, value, lineno);
}

/* The ini_read callback: every line that is not blank or a comment. */
static void on_line(void *ctx, const struct ini_line *l)
{
	struct parser *p = ctx;
	char qb[CFG_QUOTE_CAP];
	switch (l->ev) {
	case INI_SECTION:
		begin_section(p, l->text, l->kind_len, l->name, l->line);
		return;
	case INI_KEY:
		set_key(p, l->key, l->value, l->line);
		return;
	case INI_TOO_LONG:
		cfg_diag(p, CFG_ERROR, l->line, "line too long (more than %d bytes)", INI_LINE_MAX);
		return;
	case INI_CONTROL:
		cfg_diag(p, CFG_ERROR, l->line, "control character 0x%02x in line", l->ch);
		return;
	case INI_BAD_HEADER:
		cfg_diag(p, CFG_ERROR, l->line, "malformed section header '%s' (missing ']')",
			 cfg_quote(l->text, qb));
		end_section(p);
		p->skipping = true; /* its keys would only add noise */
		return;
	case INI_NO_EQUALS:
		/* not echoed: it may be a mistyped "password: secret" */
		cfg_diag(p, CFG_ERROR, l->line,
			 "malformed line (expected 'key = value', '[section]' or a comment)");
		return;
	case INI_NO_KEY:
		cfg_diag(p, CFG_ERROR, l->line, "missing key before '='");
		return;
	}
}

/* ---- entry points ---- */

int cfg_parse_string(const char *text, size_t len, const char *filename,
		     struct iotgw_config *out, cfg_diag_fn diagfn, void *ctx)
{
	memset(out, 0, sizeof *out);
	struct parser p = {.cfg = out};
	p.out = (struct cfg_diag_sink){filename ? filename : "<config>", diagfn, ctx, 0};
	if (filename && !(out->path = strdup(filename)))
		cfg_diag(&p, CFG_ERROR, 0, "out of memory");
	if (obj_defaults(SEC_GATEWAY, &out->gateway) != 0 ||
	    obj_defaults(SEC_UPSTREAM, &out->upstream) != 0 ||
	    obj_defaults(SEC_SPOOL, &out->spool) != 0)
		cfg_diag(&p, CFG_ERROR, 0, "out of memory");

	if (ini_read(text, len, on_line, &p) != 0) {
		cfg_diag(&p, CFG_ERROR, 0, "out of memory");
		return p.out.errors;
	}
	end_section(&p);
	cfg_cross_checks(&p);

	for (size_t i = 0; i < p.nsecs; i++)
		free(p.secs[i].seen);
	free(p.secs);
	return p.out.errors;
}

int cfg_load_file(const char *path, struct iotgw_config *out, cfg_diag_fn diagfn, void *ctx)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t n = 0;
	int err = 0;
	const char *what = NULL;
	if (!f) {
		err = errno;
	} else {
		data = malloc(CFG_FILE_MAX + 1);
		if (!data) {
			err = ENOMEM;
		} else {
			n = fread(data, 1, CFG_FILE_MAX + 1, f);
			if (ferror(f))
				err = errno ? errno : EIO;
			else if (n > CFG_FILE_MAX)
				what = "file too large (more than 1 MiB)";
		}
		fclose(f);
	}
	if (err || what) {
		memset(out, 0, sizeof *out);
		out->path = strdup(path);
		if (diagfn) {
			char msg[CFG_MSG_MAX];
			if (what)
				snprintf(msg, sizeof msg, "%s", what);
			else
				snprintf(msg, sizeof msg, "cannot read: %s", strerror(err));
			diagfn(ctx, CFG_ERROR, path, 0, msg);
		}
		free(data);
		return 1;
	}
	int rc = cfg_parse_string(data, n, path, out, diagfn, ctx);
	free(data);
	return rc;
}

void cfg_free(struct iotgw_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	obj_free(SEC_GATEWAY, &cfg->gateway);
	obj_free(SEC_UPSTREAM, &cfg->upstream);
	obj_free(SEC_SPOOL, &cfg->spool);
	obj_free(SEC_METRICS, &cfg->metrics);
	for (size_t i = 0; i < cfg->nlisteners; i++)
		obj_free(SEC_LISTENER, &cfg->listeners[i]);
	free(cfg->listeners);
	for (size_t i = 0; i < cfg->nrules; i++)
		obj_free(SEC_DECODE, &cfg->rules[i]);
	free(cfg->rules);
	memset(cfg, 0, sizeof *cfg);
}

void cfg_diag_print(void *ctx, enum cfg_severity sev, const char *file, int line,
		    const char *msg)
{
	FILE *f = ctx ? ctx : stderr;
	const char *w = sev == CFG_WARNING ? "warning: " : "";
	if (line > 0)
		fprintf(f, "%s:%d: %s%s\n", file, line, w, msg);
	else
		fprintf(f, "%s: %s%s\n", file, w, msg);
}

const char *cfg_tls_profile_name(enum cfg_tls_profile pr)
{
	switch (pr) {
	case CFG_TLS_MODERN:
		return "modern";
	case CFG_TLS_COMPATIBLE:
		return "compatible";
	case CFG_TLS_LEGACY:
		return "legacy";
	}
	return "?";
}

const char *cfg_tls_mode_name(enum cfg_tls_mode m)
{
	switch (m) {
	case CFG_TLS_OFF:
		return "off";
	case CFG_TLS_SERVER:
		return "server";
	case CFG_TLS_MUTUAL:
		return "mutual";
	}
	return "?";
}
