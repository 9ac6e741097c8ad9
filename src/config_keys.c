/* config_keys: which keys iotgw.conf has, and the code the odd ones need.
 *
 * Owns the option table (cfg_opts: every key with its section, type,
 * default, range and field), the checks of string values the table names,
 * the custom setters of the keys that are more than one typed value (bind,
 * publish_acl, devices, format) with what releases them, and the names of
 * the enumerated values. How a key is applied by its type, sections and the
 * entry points are config.c's; the rules across keys config_check.c's. The
 * three share the parser state over config_int.h. Pure. */
#include "iotgw/config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "iotgw/auth.h"
#include "iotgw/cmdtopic.h"
#include "iotgw/decoder.h"
#include "iotgw/ini.h"
#include "iotgw/log_level.h"
#include "iotgw/mqtt_codec.h"
#include "iotgw/reading.h"

#define CFG_GATEWAY_NAME_MAX 64

/* short names for the option table */
#define KIB INI_KIB
#define MIB INI_MIB
#define GIB INI_GIB
#define SEC INI_SEC /* durations are handled in milliseconds */
#define MIN INI_MIN
#define HOUR INI_HOUR
#define DAY CFG_DAY

#define DEFAULT_GROUPS "X25519:P-256:P-384:P-521"

/* ---- checks used by the table ---- */

static int check_gateway_name(const char *v, char *why, size_t whylen)
{
	if (cfg_name_ok(v, CFG_GATEWAY_NAME_MAX))
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

/* `bind = ADDR:PORT [ADDR:PORT ...]` of a listener or of [metrics]: one
 * section, several sockets (an IPv4 and an IPv6 address of one port,
 * typically); all or nothing. */
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

static void release_bind(void *obj)
{
	struct cfg_listener *l = obj;
	free_binds(l->binds, &l->nbinds);
}

static void release_metrics_bind(void *obj)
{
	struct cfg_metrics *m = obj;
	free_binds(m->binds, &m->nbinds);
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

/* The same compiler the session uses, so what is accepted is what is enforced. */
static int check_subscribe_acl(const char *v, char *why, size_t whylen)
{
	struct auth_acl *acl = NULL;
	if (!mqtt_utf8_valid(v, strlen(v))) {
		snprintf(why, whylen, "not valid UTF-8");
		return -1;
	}
	int rc = auth_acl_compile(v, &acl, why, whylen);
	auth_acl_free(acl);
	return rc;
}

static int check_downlink_topic(const char *v, char *why, size_t whylen)
{
	return strcmp(v, "none") == 0 ? 0 : cmdtopic_check(CMDTOPIC_UPSTREAM, v, why, whylen);
}

static int check_device_topic(const char *v, char *why, size_t whylen)
{
	return cmdtopic_check(CMDTOPIC_DEVICE, v, why, whylen);
}

static int check_status_topic(const char *v, char *why, size_t whylen)
{
	return strcmp(v, "none") == 0 ? 0 : cmdtopic_check(CMDTOPIC_STATUS, v, why, whylen);
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

/* ---- values that are lists of words (devices, publish_acl) ----
 * kept as a char ** and a count in the section's struct */

static void words_free(char ***list, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
	*n = 0;
}

/* Appends word, which the list takes over (and frees on failure): 0, or -1
 * when out of memory. */
static int words_add(char ***list, size_t *n, char *word)
{
	char **nl = realloc(*list, (*n + 1) * sizeof *nl);
	if (!nl) {
		free(word);
		return -1;
	}
	*list = nl;
	(*list)[(*n)++] = word;
	return 0;
}

/* The next word of *s (words are separated by any of seps) as a new string
 * in *word, its length in *n, and *s moved past it; false at the end.
 * Out of memory: true with *word NULL. */
static bool next_word(const char **s, const char *seps, char **word, size_t *n)
{
	*s += strspn(*s, seps);
	if (**s == '\0')
		return false;
	*n = strcspn(*s, seps);
	*word = strndup(*s, *n);
	*s += *n;
	return true;
}

/* Also the release function of `devices`. */
static void free_devices(void *obj)
{
	struct dec_rule *r = obj;
	words_free(&r->devices, &r->ndevices);
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
	char qb[CFG_QUOTE_CAP], *id;
	size_t n;
	free_devices(r);
	for (const char *s = v; next_word(&s, seps, &id, &n);) {
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
		if (words_add(&r->devices, &r->ndevices, id) != 0) {
			cfg_diag(p, CFG_ERROR, line, "out of memory");
			return -1;
		}
	}
	if (r->ndevices == 0) {
		cfg_diag(p, CFG_ERROR, line, "empty value for 'devices'");
		return -1;
	}
	return 0;
}

/* threads = auto | N: auto (0) is resolved at start to the CPUs the process
 * may run on. */
static int set_threads(struct parser *p, void *obj, const char *v, int line)
{
	struct cfg_gateway *g = obj;
	uint64_t n;
	if (strcmp(v, "auto") == 0) {
		g->threads = 0;
		return 0;
	}
	if (ini_parse_uint(v, &n) != 0 || n < 1 || n > CFG_THREADS_MAX) {
		char qb[CFG_QUOTE_CAP];
		cfg_diag(p, CFG_ERROR, line,
			 "invalid value '%s' for 'threads' (allowed: auto, or 1 to %d)",
			 cfg_quote(v, qb), CFG_THREADS_MAX);
		return -1;
	}
	g->threads = (unsigned)n;
	return 0;
}

/* `proxy_from = RANGE [RANGE ...]`: CIDR ranges (cidr_parse), separated
 * by spaces or commas; all or nothing. */
static int set_proxy_from(struct parser *p, void *obj, const char *v, int line)
{
	struct cfg_listener *l = obj;
	static const char seps[] = " \t,";
	char qb[CFG_QUOTE_CAP], why[160], *word;
	size_t n, count = 0;
	struct cidr ranges[CFG_PROXY_FROM_MAX];
	for (const char *s = v; next_word(&s, seps, &word, &n);) {
		if (!word) {
			cfg_diag(p, CFG_ERROR, line, "out of memory");
			return -1;
		}
		bool bad = true;
		if (count == CFG_PROXY_FROM_MAX)
			snprintf(why, sizeof why, "more than %d ranges", CFG_PROXY_FROM_MAX);
		else
			bad = cidr_parse(word, &ranges[count], why, sizeof why) != 0;
		if (bad)
			cfg_diag(p, CFG_ERROR, line, "proxy_from '%s': %s", cfg_quote(word, qb), why);
		free(word);
		if (bad)
			return -1;
		count++;
	}
	if (count == 0) {
		cfg_diag(p, CFG_ERROR, line,
			 "empty value for 'proxy_from' (the balancers' addresses, e.g. 10.0.0.0/8)");
		return -1;
	}
	memcpy(l->proxy_from, ranges, count * sizeof ranges[0]);
	l->nproxy_from = count;
	return 0;
}

/* Also the release function of `publish_acl`. */
static void free_acl(void *obj)
{
	struct cfg_listener *l = obj;
	words_free(&l->publish_acl, &l->npublish_acl);
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
	char qb[CFG_QUOTE_CAP], why[160], *pat;
	size_t n;
	free_acl(l);
	if (strcmp(v, AUTH_ACL_NONE) == 0)
		return 0;
	for (const char *s = v; next_word(&s, seps, &pat, &n);) {
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
		if (words_add(&l->publish_acl, &l->npublish_acl, pat) != 0) {
			cfg_diag(p, CFG_ERROR, line, "out of memory");
			goto fail;
		}
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
static const int clid_values[] = {AUTH_CID_MATCH, AUTH_CID_EXACT, AUTH_CID_ANY};
static const char *const rate_action_names[] = {"slow", "disconnect", NULL};
static const int rate_action_values[] = {CFG_RATE_SLOW, CFG_RATE_DISCONNECT};
static const char *const proxy_names[] = {"off", "v1", "v2", "optional", NULL};
static const int proxy_values[] = {CFG_PROXY_OFF, CFG_PROXY_V1, CFG_PROXY_V2, CFG_PROXY_OPTIONAL};
static const char *const proxy_id_names[] = {"off", "ssl-cn", NULL};
static const int proxy_id_values[] = {CFG_PROXY_ID_OFF, CFG_PROXY_ID_SSL_CN};
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
#define O_CUSTOM(S, K, SET, REL, DEF)                                                              \
	{.sec = S, .key = K, .type = T_CUSTOM, .set = SET, .release = REL, .def_str = DEF}
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
#define DL SEC_DOWNLINK, struct cfg_downlink
#define DC SEC_DECODE, struct dec_rule

const struct opt cfg_opts[] = {
	O_STR(GW, "name", name, "iotgw", check_gateway_name),
	O_ENUM(GW, "log_level", log_level, log_level_names, log_level_values, 6),
	O_SIZE(GW, "max_packet_size", max_packet_size, 128, 1 * MIB, 16 * KIB),
	O_DUR(GW, "connect_timeout", connect_timeout_ms, 1, 1 * SEC, 300 * SEC, false, 10 * SEC),
	O_DUR(GW, "max_keepalive", max_keepalive_s, 1000, 1 * SEC, 18 * HOUR, true, 1 * HOUR),
	O_BOOL(GW, "watch_tls_files", watch_tls_files, 0),
	O_BOOL(GW, "keep_tls_sessions", keep_tls_sessions, 1),
	O_DUR(GW, "expiry_warning", expiry_warning_s, 1000, 1 * HOUR, 365 * DAY, true, 30 * DAY),
	O_UINT(GW, "max_handshakes", max_handshakes, 1, 1000000, 1024),
	O_UINT(GW, "max_handshakes_per_address", max_handshakes_per_address, 1, 1000000, 128),
	O_UINT(GW, "auth_backoff_after", auth_backoff_after, 0, 1000000, 10),
	O_SIZE(GW, "max_preauth_memory", max_preauth_memory, 64 * KIB, 16 * GIB, 64 * MIB),
	O_CUSTOM(SEC_GATEWAY, "threads", set_threads, NULL, NULL),

	O_CUSTOM(SEC_LISTENER, "bind", set_bind, release_bind, NULL),
	O_ENUM(LS, "tls", tls, tls_names, tls_values, CFG_TLS_MUTUAL),
	O_PATH(LS, "cert", cert),
	O_PATH(LS, "key", key),
	O_PATH(LS, "ca", ca),
	O_PATH(LS, "crl", crl),
	O_PATH(LS, "password_file", password_file),
	O_ENUM(LS, "identity", identity, id_names, id_values, CFG_ID_CN),
	O_ENUM(LS, "client_id", client_id, clid_names, clid_values, AUTH_CID_MATCH),
	O_CUSTOM(SEC_LISTENER, "publish_acl", set_acl, free_acl, AUTH_ACL_DEFAULT),
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
	O_STR(LS, "subscribe_acl", subscribe_acl, AUTH_SUBSCRIBE_ACL_DEFAULT, check_subscribe_acl),
	O_UINT(LS, "max_message_rate", max_message_rate, 0, 10000000, 1000),
	O_SIZE(LS, "max_byte_rate", max_byte_rate, 0, 1 * GIB, 1 * MIB),
	O_ENUM(LS, "rate_limit_action", rate_limit_action, rate_action_names, rate_action_values,
	       CFG_RATE_SLOW),
	O_UINT(LS, "max_connection_rate_per_address", max_connection_rate_per_address, 0, 1000000,
	       100),
	O_ENUM(LS, "proxy_protocol", proxy_protocol, proxy_names, proxy_values, CFG_PROXY_OFF),
	O_CUSTOM(SEC_LISTENER, "proxy_from", set_proxy_from, NULL, NULL),
	O_ENUM(LS, "proxy_identity", proxy_identity, proxy_id_names, proxy_id_values,
	       CFG_PROXY_ID_OFF),

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
	/* A day of uplink outage for a site of about a thousand sensors
	 * reporting every ten seconds (docs/iotgw.conf.5); min_free keeps the
	 * disk from filling first. */
	O_UINT(SP, "max_messages", max_messages, 1, 100000000, 10000000),
	O_SIZE(SP, "max_bytes", max_bytes, 4 * KIB, 64 * GIB, 2 * GIB),
	O_SIZE(SP, "min_free", min_free, 256 * KIB, 64 * GIB, 64 * MIB),
	O_UINT(SP, "max_messages_per_device", max_messages_per_device, 0, 100000000, 0),
	O_SIZE(SP, "max_bytes_per_device", max_bytes_per_device, 0, 64 * GIB, 0),
	O_BOOL(SP, "fair_share", fair_share, 1),
	O_DUR(SP, "forget_devices_after", forget_devices_after_s, 1000, 1 * SEC, 3650 * DAY, true,
	      90 * DAY),

	O_CUSTOM(SEC_METRICS, "bind", set_metrics_bind, release_metrics_bind, NULL),

	O_STR(DL, "topic", topic, "none", check_downlink_topic),
	O_STR(DL, "device_topic", device_topic, "iot-2/cmd/{command}/fmt/json", check_device_topic),
	O_STR(DL, "status_topic", status_topic, "none", check_status_topic),
	O_DUR(DL, "command_ttl", command_ttl_ms, 1, 0, 7 * DAY, true, 5 * MIN),
	O_SIZE(DL, "max_payload", max_payload, 1, 256 * KIB, 4 * KIB),
	O_UINT(DL, "max_queued_per_device", max_queued_per_device, 1, 100000, 32),
	O_UINT(DL, "max_queued", max_queued, 1, 10000000, 10000),
	O_BOOL(DL, "validate_json", validate_json, 0),

	O_STR(DC, "topic", topic_filter, NULL, check_topic_filter),
	O_CUSTOM(SEC_DECODE, "format", set_format, NULL, NULL),
	O_CUSTOM(SEC_DECODE, "devices", set_devices, free_devices, NULL),
	O_DBL(DC, "scale", scale, 1.0),
	O_DBL(DC, "offset", offset, 0.0),
	O_DBL(DC, "min", min_c, -40.0),
	O_DBL(DC, "max", max_c, 125.0),
	O_ENUM(DC, "unit", default_unit, unit_names, unit_values, 'C'),
};

const size_t cfg_nopts = sizeof cfg_opts / sizeof cfg_opts[0];

const struct opt *cfg_opt_find(enum sec_kind k, const char *key, size_t *idx)
{
	for (size_t i = 0; i < cfg_nopts; i++) {
		if (cfg_opts[i].sec == k && strcmp(cfg_opts[i].key, key) == 0) {
			*idx = i;
			return &cfg_opts[i];
		}
	}
	return NULL;
}

static size_t opt_index(enum sec_kind k, const char *key)
{
	size_t i = 0;
	if (!cfg_opt_find(k, key, &i))
		abort(); /* a typo in config_check.c, not in the configuration */
	return i;
}

int cfg_key_line(const struct secrec *s, const char *key)
{
	return s->seen[opt_index(s->kind, key)];
}

/* ---- names of enumerated values, from the lists the table uses ---- */

static const char *value_name(const char *const *names, const int *values, int v)
{
	for (size_t i = 0; names[i]; i++)
		if (values[i] == v)
			return names[i];
	return "?";
}

const char *cfg_tls_profile_name(enum cfg_tls_profile pr)
{
	return value_name(profile_names, profile_values, (int)pr);
}

const char *cfg_proxy_mode_name(enum cfg_proxy_mode m)
{
	return value_name(proxy_names, proxy_values, (int)m);
}

const char *cfg_tls_mode_name(enum cfg_tls_mode m)
{
	return value_name(tls_names, tls_values, (int)m);
}
