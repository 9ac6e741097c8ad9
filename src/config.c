/* config: the /etc/iotgw.conf reader.
 *
 * Our own small INI reader rather than inih: Debian's shared libinih is built
 * without INI_HANDLER_LINENO, so its handler never learns the line of a key,
 * and every diagnostic here must be FILE:LINE. The format is deliberately
 * small: [section] or [kind NAME] headers, `key = value` lines, full-line
 * comments starting with # or ; (no inline comments: MQTT topic filters
 * contain '#'), no quoting, no continuation lines.
 *
 * All keys live in one table (opts[] below): section kind, key, type,
 * default, range and where the value goes. The line parser, the defaults and
 * cfg_free are generic over that table; only cross-field rules are code.
 * Every problem is reported and parsing continues, so one `iotgw -t` run
 * shows all of them. Pure: no file access except in cfg_load_file. */
#include "iotgw/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iotgw/decoder.h"
#include "iotgw/mqtt_codec.h"
#include "iotgw/reading.h"

#define CFG_LINE_MAX 4096               /* bytes per line, without the line ending */
#define CFG_FILE_MAX (1024 * 1024)      /* cfg_load_file refuses bigger files */
#define CFG_SECTION_NAME_MAX 32         /* [listener NAME], [decode NAME] */
#define CFG_GATEWAY_NAME_MAX 64
#define CFG_MSG_MAX 512

#define KIB UINT64_C(1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define SEC UINT64_C(1000) /* durations are handled in milliseconds */
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

#define DEFAULT_CIPHERS                                                                           \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                            \
	"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"                                \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                              \
	"ECDHE-ECDSA-AES128-CCM:ECDHE-ECDSA-AES128-CCM8"
#define DEFAULT_CIPHERSUITES                                                                      \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define DEFAULT_GROUPS "X25519:P-256:P-384:P-521"

enum sec_kind { SEC_GATEWAY, SEC_LISTENER, SEC_UPSTREAM, SEC_SPOOL, SEC_DECODE, SEC_KINDS };

static const struct {
	const char *name;
	bool named; /* [kind NAME], any number; else at most once, no name */
} kinds[SEC_KINDS] = {
	[SEC_GATEWAY] = {"gateway", false},
	[SEC_LISTENER] = {"listener", true},
	[SEC_UPSTREAM] = {"upstream", false},
	[SEC_SPOOL] = {"spool", false},
	[SEC_DECODE] = {"decode", true},
};

enum opt_type {
	T_STR,      /* char *, strdup'd */
	T_PATH,     /* struct cfg_path */
	T_BOOL,     /* bool: yes/no/true/false/on/off/1/0 */
	T_UINT,     /* unsigned integer of `width` bytes, min..max */
	T_DURATION, /* unsigned of `width` bytes in units of `unit_ms`, min..max in ms */
	T_SIZE,     /* unsigned of `width` bytes, min..max bytes */
	T_DOUBLE,   /* double, finite */
	T_ENUM,     /* one of names[], stored as values[] in `width` bytes */
	T_CUSTOM,   /* set() does everything */
};

struct parser;

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

/* Per section instance: where it started and on which line each key was set,
 * kept until the cross-field checks run. */
struct secrec {
	enum sec_kind kind;
	int line;
	size_t index;       /* into listeners[] / rules[] for named kinds */
	bool scratch;       /* duplicate or badly named section: parsed, then discarded */
	void *scratch_obj;
	char label[96];     /* "[listener a]" for messages */
	int *seen;          /* [nopts]: line of each key, 0 when not set */
};

struct parser {
	struct iotgw_config *cfg;
	const char *file;
	cfg_diag_fn diag;
	void *ctx;
	int errors;
	struct secrec *secs;
	size_t nsecs, capsecs;
	size_t cur;    /* index into secs of the current section */
	bool in_sec;   /* cur is valid */
	bool skipping; /* inside an unknown section: its keys are ignored */
	size_t listeners_cap, rules_cap;
};

/* ---- diagnostics ---- */

__attribute__((format(printf, 4, 5))) static void diag(struct parser *p, enum cfg_severity sev,
						       int line, const char *fmt, ...)
{
	if (sev == CFG_ERROR)
		p->errors++;
	if (!p->diag)
		return;
	char msg[CFG_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	p->diag(p->ctx, sev, p->file, line, msg);
}

/* A value made safe to echo in a message: at most ~60 bytes, control
 * characters replaced so a config file cannot forge log lines. */
static const char *q(const char *s, char out[72])
{
	size_t i = 0;
	for (; s[i] && i < 60; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (s[i]) {
		/* do not cut a UTF-8 sequence in two */
		while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
			i--;
		memcpy(out + i, "...", 4);
	} else {
		out[i] = '\0';
	}
	return out;
}

/* "90s", "500ms", "2m", "1h" */
static void fmt_ms(uint64_t ms, char *out, size_t cap)
{
	if (ms != 0 && ms % HOUR == 0)
		snprintf(out, cap, "%" PRIu64 "h", ms / HOUR);
	else if (ms != 0 && ms % MIN == 0)
		snprintf(out, cap, "%" PRIu64 "m", ms / MIN);
	else if (ms % SEC == 0)
		snprintf(out, cap, "%" PRIu64 "s", ms / SEC);
	else
		snprintf(out, cap, "%" PRIu64 "ms", ms);
}

/* "128", "16K", "64M", "1G" */
static void fmt_size(uint64_t n, char *out, size_t cap)
{
	if (n != 0 && n % GIB == 0)
		snprintf(out, cap, "%" PRIu64 "G", n / GIB);
	else if (n != 0 && n % MIB == 0)
		snprintf(out, cap, "%" PRIu64 "M", n / MIB);
	else if (n != 0 && n % KIB == 0)
		snprintf(out, cap, "%" PRIu64 "K", n / KIB);
	else
		snprintf(out, cap, "%" PRIu64, n);
}

/* ---- value syntax ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Decimal digits at s (no sign, no blanks: strtoull would accept "-1" and
 * wrap it). Returns 0 and sets *end, -1 if s does not start with a digit, -2
 * on overflow. */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
	if (!is_digit(*s))
		return -1;
	errno = 0;
	char *e;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno == ERANGE || v > UINT64_MAX)
		return -2;
	*out = (uint64_t)v;
	*end = e;
	return 0;
}

/* A whole string of decimal digits. 0, -1 not a number, -2 too large. */
static int parse_uint(const char *s, uint64_t *out)
{
	const char *end;
	int rc = parse_digits(s, out, &end);
	if (rc != 0)
		return rc;
	return *end == '\0' ? 0 : -1;
}

/* "10" (seconds), "10s", "500ms", "2m", "1h"; blanks allowed before the
 * unit. 0, -1 syntax, -2 too large. */
static int parse_duration_ms(const char *s, uint64_t *ms)
{
	uint64_t v;
	const char *u;
	int rc = parse_digits(s, &v, &u);
	if (rc != 0)
		return rc;
	while (is_blank(*u))
		u++;
	uint64_t mult;
	if (*u == '\0' || strcmp(u, "s") == 0)
		mult = SEC;
	else if (strcmp(u, "ms") == 0)
		mult = 1;
	else if (strcmp(u, "m") == 0)
		mult = MIN;
	else if (strcmp(u, "h") == 0)
		mult = HOUR;
	else
		return -1;
	if (v > UINT64_MAX / mult)
		return -2;
	*ms = v * mult;
	return 0;
}

/* "16384", "16K", "16KiB", "64M", "64MiB", "1G", "1GiB" (binary units). */
static int parse_size(const char *s, uint64_t *n)
{
	uint64_t v;
	const char *u;
	int rc = parse_digits(s, &v, &u);
	if (rc != 0)
		return rc;
	while (is_blank(*u))
		u++;
	uint64_t mult;
	if (*u == '\0')
		mult = 1;
	else if (strcmp(u, "K") == 0 || strcmp(u, "KiB") == 0)
		mult = KIB;
	else if (strcmp(u, "M") == 0 || strcmp(u, "MiB") == 0)
		mult = MIB;
	else if (strcmp(u, "G") == 0 || strcmp(u, "GiB") == 0)
		mult = GIB;
	else
		return -1;
	if (v > UINT64_MAX / mult)
		return -2;
	*n = v * mult;
	return 0;
}

/* A decimal floating-point number, whole string, finite. Only [0-9+-.eE]:
 * strtod alone would also take "nan", "inf", hex floats and leading blanks.
 * 0, -1 syntax, -2 out of range. */
static int parse_double(const char *s, double *out)
{
	if (*s == '\0' || strspn(s, "0123456789+-.eE") != strlen(s))
		return -1;
	errno = 0;
	char *end;
	double d = strtod(s, &end);
	if (end == s || *end != '\0')
		return -1;
	if (errno == ERANGE || !isfinite(d))
		return -2;
	*out = d;
	return 0;
}

/* Boolean syntax of the file format (no key uses it yet; the table type is
 * ready). Not static: tests/unit/test_config.c calls it directly. */
int cfg_parse_bool(const char *s, bool *out);
int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

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
	if (parse_uint(colon + 1, &p) != 0)
		return -1;
	if (p < 1 || p > 65535)
		return -2;
	*port = (uint16_t)p;
	return 0;
}

static int set_bind(struct parser *p, void *obj, const char *v, int line)
{
	struct cfg_listener *l = obj;
	char host[INET6_ADDRSTRLEN + 1], qb[72];
	uint16_t port = 0;
	int rc = parse_bind(v, host, sizeof host, &port);
	if (rc == -2) {
		diag(p, CFG_ERROR, line, "bind '%s': port out of range 1..65535", q(v, qb));
		return -1;
	}
	if (rc != 0) {
		diag(p, CFG_ERROR, line,
		     "bind '%s': expected a numeric address and port, \"A.B.C.D:PORT\" or "
		     "\"[IPv6]:PORT\"",
		     q(v, qb));
		return -1;
	}
	char *dup = strdup(host);
	if (!dup) {
		diag(p, CFG_ERROR, line, "out of memory");
		return -1;
	}
	free(l->bind_host);
	l->bind_host = dup;
	l->port = port;
	l->bind_line = line;
	return 0;
}

static int set_format(struct parser *p, void *obj, const char *v, int line)
{
	struct dec_rule *r = obj;
	char qb[72];
	if (dec_format_parse(v, &r->format) != 0) {
		diag(p, CFG_ERROR, line,
		     "invalid value '%s' for 'format' (allowed: auto, watson, json, number, adc)",
		     q(v, qb));
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
	char qb[72];
	free_devices(r);
	for (const char *s = v + strspn(v, seps); *s; s += strspn(s, seps)) {
		size_t n = strcspn(s, seps);
		char *id = strndup(s, n);
		s += n;
		if (!id) {
			diag(p, CFG_ERROR, line, "out of memory");
			return -1;
		}
		if (!mqtt_utf8_valid(id, n)) {
			diag(p, CFG_ERROR, line, "device id '%s' is not valid UTF-8", q(id, qb));
			free(id);
			return -1;
		}
		if (has_device(r, id, n)) {
			diag(p, CFG_WARNING, line, "device '%s' listed twice in 'devices'",
			     q(id, qb));
			free(id);
			continue;
		}
		char **nd = realloc(r->devices, (r->ndevices + 1) * sizeof *nd);
		if (!nd) {
			free(id);
			diag(p, CFG_ERROR, line, "out of memory");
			return -1;
		}
		r->devices = nd;
		r->devices[r->ndevices++] = id;
	}
	if (r->ndevices == 0) {
		diag(p, CFG_ERROR, line, "empty value for 'devices'");
		return -1;
	}
	return 0;
}

/* ---- the option table ---- */

static const char *const log_names[] = {"err",  "error", "warning", "notice",
					 "info", "debug", NULL};
static const int log_values[] = {3, 3, 4, 5, 6, 7};
static const char *const tls_names[] = {"off", "server", "mutual", NULL};
static const int tls_values[] = {CFG_TLS_OFF, CFG_TLS_SERVER, CFG_TLS_MUTUAL};
static const char *const id_names[] = {"cn", "san-dns", "san-uri", "san-email", NULL};
static const int id_values[] = {CFG_ID_CN, CFG_ID_SAN_DNS, CFG_ID_SAN_URI, CFG_ID_SAN_EMAIL};
static const char *const tlsver_names[] = {"1.2", "1.3", NULL};
static const int tlsver_values[] = {12, 13};
static const char *const uptls_names[] = {"mutual", "off", NULL};
static const int uptls_values[] = {1, 0};
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

#define GW SEC_GATEWAY, struct cfg_gateway
#define LS SEC_LISTENER, struct cfg_listener
#define UP SEC_UPSTREAM, struct cfg_upstream
#define SP SEC_SPOOL, struct cfg_spool
#define DC SEC_DECODE, struct dec_rule

static const struct opt opts[] = {
	O_STR(GW, "name", name, "iotgw", check_gateway_name),
	O_ENUM(GW, "log_level", log_level, log_names, log_values, 6),
	O_SIZE(GW, "max_packet_size", max_packet_size, 128, 1 * MIB, 16 * KIB),
	O_DUR(GW, "connect_timeout", connect_timeout_ms, 1, 1 * SEC, 300 * SEC, false, 10 * SEC),
	O_DUR(GW, "max_keepalive", max_keepalive_s, 1000, 1 * SEC, 18 * HOUR, true, 1 * HOUR),

	O_CUSTOM(SEC_LISTENER, "bind", set_bind),
	O_ENUM(LS, "tls", tls, tls_names, tls_values, CFG_TLS_MUTUAL),
	O_PATH(LS, "cert", cert),
	O_PATH(LS, "key", key),
	O_PATH(LS, "ca", ca),
	O_ENUM(LS, "identity", identity, id_names, id_values, CFG_ID_CN),
	O_DUR(LS, "handshake_timeout", handshake_timeout_ms, 1, 1 * SEC, 300 * SEC, false,
	      10 * SEC),
	O_UINT(LS, "max_connections", max_connections, 1, 1000000, 10000),
	O_ENUM(LS, "tls_min_version", tls_min_version, tlsver_names, tlsver_values, 12),
	O_STR(LS, "ciphers", ciphers, DEFAULT_CIPHERS, NULL),
	O_STR(LS, "ciphersuites", ciphersuites, DEFAULT_CIPHERSUITES, NULL),
	O_STR(LS, "groups", groups, DEFAULT_GROUPS, NULL),

	O_STR(UP, "host", host, NULL, check_host),
	O_UINT(UP, "port", port, 1, 65535, 8883),
	O_STR(UP, "client_id", client_id, NULL, check_mqtt_string),
	O_ENUM(UP, "tls", tls, uptls_names, uptls_values, 1),
	O_PATH(UP, "ca", ca),
	O_PATH(UP, "cert", cert),
	O_PATH(UP, "key", key),
	O_DUR(UP, "keepalive", keepalive_s, 1000, 5 * SEC, 1 * HOUR, false, 60 * SEC),
	O_UINT(UP, "inflight", inflight, 1, 65535, 32),
	O_DUR(UP, "reconnect_min", reconnect_min_ms, 1, 100, 1 * HOUR, false, 1 * SEC),
	O_DUR(UP, "reconnect_max", reconnect_max_ms, 1, 100, 1 * HOUR, false, 60 * SEC),
	O_STR(UP, "topic", topic, "sensors/{device}/temperature", reading_topic_check),
	O_STR(UP, "dead_letter_topic", dead_letter_topic, "iotgw/{gateway}/deadletter/{device}",
	      reading_topic_check),
	O_OPTSTR(UP, "username", username, check_mqtt_string),
	O_OPTSTR(UP, "password", password, NULL),

	O_UINT(SP, "max_messages", max_messages, 1, 100000000, 100000),
	O_SIZE(SP, "max_bytes", max_bytes, 4 * KIB, 64 * GIB, 64 * MIB),

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
		free(l->name);
		l->name = NULL;
		free(l->bind_host);
		l->bind_host = NULL;
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
	char qb[72], lo[32], hi[32], why[256];
	uint64_t u = 0;
	int rc;

	switch (o->type) {
	case T_STR:
	case T_PATH: {
		why[0] = '\0';
		if (o->check && o->check(v, why, sizeof why) != 0) {
			diag(p, CFG_ERROR, line, "invalid value '%s' for '%s': %s", q(v, qb),
			     o->key, why);
			return;
		}
		char *dup = NULL;
		if (*v != '\0' && !(dup = strdup(v))) {
			diag(p, CFG_ERROR, line, "out of memory");
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
		if (cfg_parse_bool(v, &b) != 0) {
			diag(p, CFG_ERROR, line,
			     "invalid value '%s' for '%s' (allowed: yes, no, true, false, on, off, "
			     "1, 0)",
			     q(v, qb), o->key);
			return;
		}
		store_bool(field, b);
		return;
	}
	case T_UINT:
		rc = parse_uint(v, &u);
		if (rc == -1) {
			diag(p, CFG_ERROR, line, "invalid value '%s' for '%s': not a whole number",
			     q(v, qb), o->key);
			return;
		}
		if (rc == -2 || u < o->min || u > o->max) {
			diag(p, CFG_ERROR, line,
			     "value '%s' for '%s' out of range %" PRIu64 "..%" PRIu64, q(v, qb),
			     o->key, o->min, o->max);
			return;
		}
		store_uint(field, o->width, u);
		return;
	case T_DURATION:
		fmt_ms(o->min, lo, sizeof lo);
		fmt_ms(o->max, hi, sizeof hi);
		rc = parse_duration_ms(v, &u);
		if (rc == -1) {
			diag(p, CFG_ERROR, line,
			     "invalid duration '%s' for '%s' (use e.g. 10, 10s, 500ms, 2m, 1h)",
			     q(v, qb), o->key);
			return;
		}
		if (rc == -2 || (u < o->min && !(o->zero_ok && u == 0)) || u > o->max) {
			diag(p, CFG_ERROR, line, "duration '%s' for '%s' out of range %s%s..%s",
			     q(v, qb), o->key, o->zero_ok ? "0 or " : "", lo, hi);
			return;
		}
		if (u % o->unit_ms != 0) {
			diag(p, CFG_ERROR, line, "duration '%s' for '%s' must be whole seconds",
			     q(v, qb), o->key);
			return;
		}
		store_uint(field, o->width, u / o->unit_ms);
		return;
	case T_SIZE:
		fmt_size(o->min, lo, sizeof lo);
		fmt_size(o->max, hi, sizeof hi);
		rc = parse_size(v, &u);
		if (rc == -1) {
			diag(p, CFG_ERROR, line,
			     "invalid size '%s' for '%s' (use e.g. 16384, 16K, 64M, 1G)", q(v, qb),
			     o->key);
			return;
		}
		if (rc == -2 || u < o->min || u > o->max) {
			diag(p, CFG_ERROR, line, "size '%s' for '%s' out of range %s..%s", q(v, qb),
			     o->key, lo, hi);
			return;
		}
		store_uint(field, o->width, u);
		return;
	case T_DOUBLE: {
		double d;
		rc = parse_double(v, &d);
		if (rc == -1) {
			diag(p, CFG_ERROR, line, "invalid value '%s' for '%s': not a number",
			     q(v, qb), o->key);
			return;
		}
		if (rc == -2) {
			diag(p, CFG_ERROR, line, "value '%s' for '%s' out of range", q(v, qb),
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
		diag(p, CFG_ERROR, line, "invalid value '%s' for '%s' (allowed: %s)", q(v, qb),
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

static void trim(char **s)
{
	char *b = *s;
	while (is_blank(*b))
		b++;
	size_t n = strlen(b);
	while (n > 0 && is_blank(b[n - 1]))
		b[--n] = '\0';
	*s = b;
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
		diag(p, CFG_ERROR, s->line, "out of memory");
	if (s->kind == SEC_LISTENER || s->kind == SEC_DECODE) {
		char *nm = strdup(name);
		if (!nm)
			diag(p, CFG_ERROR, s->line, "out of memory");
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

/* hdr: the text between [ and ], "kind" or "kind NAME". */
static void begin_section(struct parser *p, char *hdr, int line)
{
	char qb[72], qn[72];
	end_section(p);
	trim(&hdr);
	size_t klen = strcspn(hdr, " \t");
	char *name = hdr + klen;
	trim(&name);
	int k = -1;
	for (int i = 0; i < SEC_KINDS; i++)
		if (strlen(kinds[i].name) == klen && memcmp(hdr, kinds[i].name, klen) == 0)
			k = i;
	if (k < 0) {
		diag(p, CFG_ERROR, line,
		     "unknown section [%s] (expected [gateway], [listener NAME], [upstream], "
		     "[spool] or [decode NAME])",
		     q(hdr, qb));
		p->skipping = true;
		return;
	}
	enum sec_kind kind = (enum sec_kind)k;
	const char *kn = kinds[kind].name;
	/* A badly named [listener]/[decode] is parsed into a scratch object so that
	 * its keys are still checked; a name on [gateway] etc. is only an error. */
	bool scratch = false;
	if (kinds[kind].named && *name == '\0') {
		diag(p, CFG_ERROR, line, "section [%s] needs a name: [%s NAME]", kn, kn);
		scratch = true;
	} else if (kinds[kind].named && !name_chars_ok(name, CFG_SECTION_NAME_MAX)) {
		diag(p, CFG_ERROR, line,
		     "invalid section name '%s' (use 1-%d characters A-Z a-z 0-9 . _ -)",
		     q(name, qn), CFG_SECTION_NAME_MAX);
		scratch = true;
	} else if (!kinds[kind].named && *name != '\0') {
		diag(p, CFG_ERROR, line, "section [%s] takes no name", kn);
	}
	const struct secrec *first = scratch ? NULL : find_section(p, kind, name);
	if (first) {
		if (kinds[kind].named)
			diag(p, CFG_ERROR, line, "duplicate section [%s %s], first at line %d", kn,
			     name, first->line);
		else
			diag(p, CFG_ERROR, line, "duplicate section [%s], first at line %d", kn,
			     first->line);
		scratch = true;
	}

	struct secrec *s = new_secrec(p, kind, line);
	if (!s) {
		diag(p, CFG_ERROR, line, "out of memory");
		p->skipping = true;
		return;
	}
	s->scratch = scratch;
	if (kinds[kind].named && *name)
		snprintf(s->label, sizeof s->label, "[%s %s]", kn, q(name, qn));
	else
		snprintf(s->label, sizeof s->label, "[%s]", kn);
	if (!new_obj(p, s, name)) {
		s->scratch = true; /* keys are ignored; keep the record for end_section */
		diag(p, CFG_ERROR, line, "out of memory");
		p->skipping = true;
		return;
	}
	p->cur = p->nsecs - 1;
	p->in_sec = true;
}

static void parse_line(struct parser *p, char *line, int lineno)
{
	char qb[72];
	trim(&line);
	if (*line == '\0' || *line == '#' || *line == ';')
		return;
	if (*line == '[') {
		size_t n = strlen(line);
		if (line[n - 1] != ']') {
			diag(p, CFG_ERROR, lineno, "malformed section header '%s' (missing ']')",
			     q(line, qb));
			end_section(p);
			p->skipping = true; /* its keys would only add noise */
			return;
		}
		line[n - 1] = '\0';
		begin_section(p, line + 1, lineno);
		return;
	}
	char *eq = strchr(line, '=');
	if (!eq) {
		/* not echoed: it may be a mistyped "password: secret" */
		diag(p, CFG_ERROR, lineno,
		     "malformed line (expected 'key = value', '[section]' or a comment)");
		return;
	}
	*eq = '\0';
	char *key = line, *value = eq + 1;
	trim(&key);
	trim(&value);
	if (*key == '\0') {
		diag(p, CFG_ERROR, lineno, "missing key before '='");
		return;
	}
	if (p->skipping)
		return;
	if (!p->in_sec) {
		diag(p, CFG_ERROR, lineno, "key '%s' outside any section", q(key, qb));
		return;
	}
	struct secrec *s = &p->secs[p->cur];
	size_t idx;
	const struct opt *o = opt_find(s->kind, key, &idx);
	if (!o) {
		diag(p, CFG_ERROR, lineno, "unknown key '%s' in section %s", q(key, qb), s->label);
		return;
	}
	if (s->seen[idx]) {
		diag(p, CFG_ERROR, lineno, "duplicate key '%s', first set at line %d", o->key,
		     s->seen[idx]);
		return;
	}
	s->seen[idx] = lineno;
	if (*value == '\0' && !o->empty_ok) {
		diag(p, CFG_ERROR, lineno, "empty value for '%s'", o->key);
		return;
	}
	set_value(p, s, o, value, lineno);
}

/* ---- cross-field checks ---- */

static int seen_line(const struct secrec *s, const char *key)
{
	return s->seen[opt_index(s->kind, key)];
}

/* The line of the first of the keys that is set, else the section header. */
static int line_of(const struct secrec *s, const char *key1, const char *key2)
{
	int l = seen_line(s, key1);
	if (!l && key2)
		l = seen_line(s, key2);
	return l ? l : s->line;
}

/* 0: the two binds do not collide; 1: same address and port; 2: one is the
 * wildcard of the other's family on the same port, which Linux refuses
 * (EADDRINUSE) just the same. IPv4 and IPv6 never collide: IPv6 listeners
 * are v6only. */
static int bind_conflict(const struct cfg_listener *a, const struct cfg_listener *b)
{
	static const unsigned char any[16];
	unsigned char x[16], y[16];
	int af = strchr(a->bind_host, ':') ? AF_INET6 : AF_INET;
	int bf = strchr(b->bind_host, ':') ? AF_INET6 : AF_INET;
	if (af != bf || a->port != b->port)
		return 0;
	if (inet_pton(af, a->bind_host, x) != 1 || inet_pton(bf, b->bind_host, y) != 1)
		return 0;
	size_t n = af == AF_INET6 ? 16 : 4;
	if (memcmp(x, y, n) == 0)
		return 1;
	return memcmp(x, any, n) == 0 || memcmp(y, any, n) == 0 ? 2 : 0;
}

/* "0.0.0.0:8883" or "[::]:8883" */
static void fmt_bind(const struct cfg_listener *l, char *out, size_t cap)
{
	bool v6 = strchr(l->bind_host, ':') != NULL;
	snprintf(out, cap, "%s%s%s:%u", v6 ? "[" : "", l->bind_host, v6 ? "]" : "",
		 (unsigned)l->port);
}

static void check_listener(struct parser *p, const struct secrec *s)
{
	const struct cfg_listener *l = &p->cfg->listeners[s->index];
	const char *nm = l->name ? l->name : "?";
	if (!seen_line(s, "bind"))
		diag(p, CFG_ERROR, s->line, "listener '%s': 'bind' is required", nm);
	if (l->tls != CFG_TLS_OFF) {
		if (!seen_line(s, "cert"))
			diag(p, CFG_ERROR, s->line,
			     "listener '%s': 'cert' is required unless tls = off", nm);
		if (!seen_line(s, "key"))
			diag(p, CFG_ERROR, s->line,
			     "listener '%s': 'key' is required unless tls = off", nm);
	}
	if (l->tls == CFG_TLS_MUTUAL) {
		if (!seen_line(s, "ca"))
			diag(p, CFG_ERROR, s->line,
			     "listener '%s': 'ca' is required for tls = mutual (it verifies the "
			     "device certificates)",
			     nm);
	} else {
		if (seen_line(s, "ca"))
			diag(p, CFG_WARNING, seen_line(s, "ca"),
			     "listener '%s': 'ca' is ignored unless tls = mutual", nm);
		if (seen_line(s, "identity"))
			diag(p, CFG_WARNING, seen_line(s, "identity"),
			     "listener '%s': 'identity' is ignored unless tls = mutual (the MQTT "
			     "client id names the device)",
			     nm);
	}
	char addr[INET6_ADDRSTRLEN + 16], other[INET6_ADDRSTRLEN + 16];
	if (l->bind_host)
		fmt_bind(l, addr, sizeof addr);
	if (l->tls == CFG_TLS_OFF) {
		diag(p, CFG_WARNING, line_of(s, "tls", NULL),
		     "plaintext listener: listener '%s'%s%s accepts MQTT without TLS; devices are "
		     "not authenticated and readings can be read and forged on the network",
		     nm, l->bind_host ? " on " : "", l->bind_host ? addr : "");
		if (seen_line(s, "cert"))
			diag(p, CFG_WARNING, seen_line(s, "cert"),
			     "listener '%s': 'cert' is ignored when tls = off", nm);
		if (seen_line(s, "key"))
			diag(p, CFG_WARNING, seen_line(s, "key"),
			     "listener '%s': 'key' is ignored when tls = off", nm);
	}
	if (!l->bind_host)
		return;
	for (size_t i = 0; i < s->index; i++) {
		const struct cfg_listener *o = &p->cfg->listeners[i];
		int c = o->bind_host ? bind_conflict(o, l) : 0;
		if (c == 0)
			continue;
		fmt_bind(o, other, sizeof other);
		if (c == 1)
			diag(p, CFG_ERROR, l->bind_line,
			     "listener '%s': bind address %s already used by listener '%s' (line "
			     "%d)",
			     nm, addr, o->name ? o->name : "?", o->bind_line);
		else
			diag(p, CFG_ERROR, l->bind_line,
			     "listener '%s': bind address %s overlaps %s of listener '%s' (line "
			     "%d)",
			     nm, addr, other, o->name ? o->name : "?", o->bind_line);
		break;
	}
}

static void check_upstream(struct parser *p, const struct secrec *s)
{
	struct cfg_upstream *u = &p->cfg->upstream;
	u->host_line = seen_line(s, "host");
	if (!seen_line(s, "host"))
		diag(p, CFG_ERROR, s->line, "[upstream]: 'host' is required");
	static const char *const files[] = {"ca", "cert", "key"};
	for (size_t i = 0; i < 3; i++) {
		int l = seen_line(s, files[i]);
		if (u->tls && !l)
			diag(p, CFG_ERROR, s->line, "[upstream]: '%s' is required for tls = mutual",
			     files[i]);
		else if (!u->tls && l)
			diag(p, CFG_WARNING, l, "[upstream]: '%s' is ignored when tls = off",
			     files[i]);
	}
	if (!u->tls)
		diag(p, CFG_WARNING, line_of(s, "tls", NULL),
		     "upstream tls = off: readings and credentials cross the network unencrypted "
		     "and the broker is not authenticated");
	if (u->reconnect_min_ms > u->reconnect_max_ms)
		diag(p, CFG_ERROR, line_of(s, "reconnect_max", "reconnect_min"),
		     "reconnect_min (%ums) is greater than reconnect_max (%ums)",
		     u->reconnect_min_ms, u->reconnect_max_ms);
	/* MQTT 3.1.1 3.1.2-22: a password flag requires the user name flag */
	if (u->password && !u->username)
		diag(p, CFG_ERROR, seen_line(s, "password"),
		     "'password' requires 'username' (MQTT 3.1.1 section 3.1.2.9)");
}

static void check_decode(struct parser *p, const struct secrec *s)
{
	const struct dec_rule *r = &p->cfg->rules[s->index];
	const char *nm = r->name ? r->name : "?";
	if (!seen_line(s, "topic"))
		diag(p, CFG_ERROR, s->line, "decode '%s': 'topic' is required", nm);
	if (!(r->min_c < r->max_c))
		diag(p, CFG_ERROR, line_of(s, "max", "min"),
		     "decode '%s': min (%g) must be less than max (%g)", nm, r->min_c, r->max_c);
	if (r->format != DEC_ADC) {
		if (seen_line(s, "scale"))
			diag(p, CFG_WARNING, seen_line(s, "scale"),
			     "decode '%s': 'scale' only applies to format = adc", nm);
		if (seen_line(s, "offset"))
			diag(p, CFG_WARNING, seen_line(s, "offset"),
			     "decode '%s': 'offset' only applies to format = adc", nm);
	}
}

static void cross_checks(struct parser *p)
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
	}
	if (up)
		check_upstream(p, up);
	else
		diag(p, CFG_ERROR, 0, "missing [upstream] section ('host' is required)");
	if (p->cfg->nlisteners == 0)
		diag(p, CFG_ERROR, 0,
		     "no [listener NAME] section: at least one listener is required");

	struct iotgw_config *c = p->cfg;
	if (!c->upstream.client_id && c->gateway.name) {
		size_t n = strlen(c->gateway.name) + sizeof "iotgw-";
		c->upstream.client_id = malloc(n);
		if (c->upstream.client_id)
			snprintf(c->upstream.client_id, n, "iotgw-%s", c->gateway.name);
		else
			diag(p, CFG_ERROR, 0, "out of memory");
	}
}

/* ---- entry points ---- */

int cfg_parse_string(const char *text, size_t len, const char *filename,
		     struct iotgw_config *out, cfg_diag_fn diagfn, void *ctx)
{
	memset(out, 0, sizeof *out);
	struct parser p = {.cfg = out, .file = filename ? filename : "<config>", .diag = diagfn,
			   .ctx = ctx};
	if (filename && !(out->path = strdup(filename)))
		diag(&p, CFG_ERROR, 0, "out of memory");
	if (obj_defaults(SEC_GATEWAY, &out->gateway) != 0 ||
	    obj_defaults(SEC_UPSTREAM, &out->upstream) != 0 ||
	    obj_defaults(SEC_SPOOL, &out->spool) != 0)
		diag(&p, CFG_ERROR, 0, "out of memory");

	char *buf = malloc(CFG_LINE_MAX + 1);
	if (!buf) {
		diag(&p, CFG_ERROR, 0, "out of memory");
		return p.errors;
	}
	size_t pos = 0;
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		pos = 3; /* UTF-8 byte order mark, as some Windows editors write */
	int lineno = 0;
	while (pos < len && lineno < INT_MAX) {
		lineno++;
		const char *ls = text + pos;
		const char *nl = memchr(ls, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - ls) : len - pos;
		pos += ll + (nl ? 1 : 0);
		if (ll > 0 && ls[ll - 1] == '\r')
			ll--; /* CRLF */
		if (ll > CFG_LINE_MAX) {
			diag(&p, CFG_ERROR, lineno, "line too long (more than %d bytes)",
			     CFG_LINE_MAX);
			continue;
		}
		size_t bad = 0;
		while (bad < ll) {
			unsigned char c = (unsigned char)ls[bad];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				break;
			bad++;
		}
		if (bad < ll) {
			diag(&p, CFG_ERROR, lineno, "control character 0x%02x in line",
			     (unsigned char)ls[bad]);
			continue;
		}
		memcpy(buf, ls, ll);
		buf[ll] = '\0';
		parse_line(&p, buf, lineno);
	}
	free(buf);
	end_section(&p);
	cross_checks(&p);

	for (size_t i = 0; i < p.nsecs; i++)
		free(p.secs[i].seen);
	free(p.secs);
	return p.errors;
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
