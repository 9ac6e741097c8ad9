/* Unit tests for src/config.c and src/config_check.c: every key, every
 * default, every class of diagnostic with its exact line. Diagnostics are
 * collected in a sink and matched by severity, line and a message substring.
 * The line reader and the value syntax underneath (src/ini.c) have their own
 * tests in test_ini.c; here they are seen through the messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "iotgw/config.h"

#define MAX_DIAGS 256

struct diagrec {
	enum cfg_severity sev;
	int line;
	char file[64];
	char msg[600];
};

static struct diagrec diags[MAX_DIAGS];
static size_t ndiags;
static struct iotgw_config cfg;

static void sink(void *ctx, enum cfg_severity sev, const char *file, int line, const char *msg)
{
	(void)ctx;
	if (ndiags == MAX_DIAGS)
		return;
	struct diagrec *d = &diags[ndiags++];
	d->sev = sev;
	d->line = line;
	snprintf(d->file, sizeof d->file, "%s", file);
	snprintf(d->msg, sizeof d->msg, "%s", msg);
}

static void nop_sink(void *ctx, enum cfg_severity sev, const char *file, int line, const char *msg)
{
	(void)ctx;
	(void)sev;
	(void)file;
	(void)line;
	(void)msg;
}

static int teardown(void **state)
{
	(void)state;
	cfg_free(&cfg);
	ndiags = 0;
	return 0;
}

static int parse_len(const char *text, size_t len)
{
	cfg_free(&cfg);
	ndiags = 0;
	return cfg_parse_string(text, len, "test.conf", &cfg, sink, NULL);
}

static int parse(const char *text)
{
	return parse_len(text, strlen(text));
}

static void dump_diags(void)
{
	for (size_t i = 0; i < ndiags; i++)
		print_message("  diag: %s:%d: %s%s\n", diags[i].file, diags[i].line,
			      diags[i].sev == CFG_WARNING ? "warning: " : "", diags[i].msg);
}

static size_t count(enum cfg_severity sev)
{
	size_t n = 0;
	for (size_t i = 0; i < ndiags; i++)
		n += diags[i].sev == sev;
	return n;
}

static void expect_diag_(enum cfg_severity sev, int line, const char *sub, const char *file,
			 int srcline)
{
	for (size_t i = 0; i < ndiags; i++)
		if (diags[i].sev == sev && diags[i].line == line && strstr(diags[i].msg, sub))
			return;
	print_message("expected %s at line %d containing \"%s\"; got:\n",
		      sev == CFG_ERROR ? "error" : "warning", line, sub);
	dump_diags();
	_fail(file, srcline);
}

#define expect_error(line, sub) expect_diag_(CFG_ERROR, line, sub, __FILE__, __LINE__)
#define expect_warning(line, sub) expect_diag_(CFG_WARNING, line, sub, __FILE__, __LINE__)

/* Exactly n errors, and the parse result agrees. */
#define expect_errors(rc, n)                                                                      \
	do {                                                                                      \
		if ((size_t)(rc) != (size_t)(n) || count(CFG_ERROR) != (size_t)(n)) {             \
			print_message("rc %d, %zu error diagnostics, expected %d:\n", (int)(rc),  \
				      count(CFG_ERROR), (int)(n));                                \
			dump_diags();                                                             \
			fail();                                                                   \
		}                                                                                 \
	} while (0)

/* A valid configuration of 10 lines; tests append to it from line 11 on,
 * which continues the [upstream] section. */
#define BASE                                                                                      \
	"[listener main]\n"                                                                       \
	"bind = 127.0.0.1:8883\n"                                                                 \
	"cert = /etc/iotgw/server.pem\n"                                                          \
	"key = /etc/iotgw/server.key\n"                                                           \
	"ca = /etc/iotgw/devices-ca.pem\n"                                                        \
	"[upstream]\n"                                                                            \
	"host = broker.example.net\n"                                                             \
	"ca = /etc/iotgw/upstream-ca.pem\n"                                                       \
	"cert = /etc/iotgw/upstream-client.pem\n"                                                 \
	"key = /etc/iotgw/upstream-client.key\n"
#define L(n) (10 + (n)) /* line n of the text appended to BASE */

static char text[16384];

static int parse_base(const char *extra)
{
	snprintf(text, sizeof text, "%s%s", BASE, extra);
	return parse(text);
}

/* BASE plus one key: upstream keys land on line 11; other sections get
 * their header on line 11 and the key on line 12 ([decode t] also gets a
 * topic, so its key is on line 13). Returns the number of errors. */
static int one(const char *section, const char *key, const char *value)
{
	char extra[1024];
	if (strcmp(section, "upstream") == 0)
		snprintf(extra, sizeof extra, "%s = %s\n", key, value);
	else if (strcmp(section, "decode") == 0 && strcmp(key, "topic") != 0)
		snprintf(extra, sizeof extra, "[decode t]\ntopic = #\n%s = %s\n", key, value);
	else if (strcmp(section, "decode") == 0)
		snprintf(extra, sizeof extra, "[decode t]\n%s = %s\n", key, value);
	else
		snprintf(extra, sizeof extra, "[%s]\n%s = %s\n", section, key, value);
	return parse_base(extra);
}

/* ---- valid files ---- */

static const char full_conf[] =
	"# every key\n"                                            /* 1 */
	"[gateway]\n"                                              /* 2 */
	"name = gw-1\n"                                            /* 3 */
	"log_level = debug\n"                                      /* 4 */
	"max_packet_size = 32K\n"                                  /* 5 */
	"connect_timeout = 15s\n"                                  /* 6 */
	"max_keepalive = 2h\n"                                     /* 7 */
	"\n"                                                       /* 8 */
	"[listener mtls4]\n"                                       /* 9 */
	"bind = 0.0.0.0:8883\n"                                    /* 10 */
	"tls = mutual\n"                                           /* 11 */
	"cert = /etc/iotgw/server.pem\n"                           /* 12 */
	"key = /etc/iotgw/server.key\n"                            /* 13 */
	"ca = /etc/iotgw/devices-ca.pem\n"                         /* 14 */
	"identity = san-dns\n"                                     /* 15 */
	"handshake_timeout = 5s\n"                                 /* 16 */
	"max_connections = 5000\n"                                 /* 17 */
	"tls_min_version = 1.2\n"                                  /* 18 */
	"ciphers = ECDHE-ECDSA-AES128-GCM-SHA256\n"                /* 19 */
	"ciphersuites = TLS_AES_128_GCM_SHA256\n"                  /* 20 */
	"groups = X25519\n"                                        /* 21 */
	"\n"                                                       /* 22 */
	"[listener mtls6]\n"                                       /* 23 */
	"bind = [::]:8883\n"                                       /* 24 */
	"cert = /etc/iotgw/server.pem\n"                           /* 25 */
	"key = /etc/iotgw/server.key\n"                            /* 26 */
	"ca = /etc/iotgw/devices-ca.pem\n"                         /* 27 */
	"\n"                                                       /* 28 */
	"[upstream]\n"                                             /* 29 */
	"host = broker.example.net\n"                              /* 30 */
	"port = 8884\n"                                            /* 31 */
	"client_id = gw-one\n"                                     /* 32 */
	"tls = mutual\n"                                           /* 33 */
	"ca = /etc/iotgw/upstream-ca.pem\n"                        /* 34 */
	"cert = /etc/iotgw/upstream-client.pem\n"                  /* 35 */
	"key = /etc/iotgw/upstream-client.key\n"                   /* 36 */
	"keepalive = 30s\n"                                        /* 37 */
	"inflight = 64\n"                                          /* 38 */
	"reconnect_min = 500ms\n"                                  /* 39 */
	"reconnect_max = 2m\n"                                     /* 40 */
	"topic = site/{gateway}/{device}/{event}\n"                /* 41 */
	"dead_letter_topic = dl/{gateway}/{device}\n"              /* 42 */
	"username = gw\n"                                          /* 43 */
	"password = s3cret=with=equals\n"                          /* 44 */
	"\n"                                                       /* 45 */
	"[spool]\n"                                                /* 46 */
	"max_messages = 5000\n"                                    /* 47 */
	"max_bytes = 1G\n"                                         /* 48 */
	"\n"                                                       /* 49 */
	"[decode watson]\n"                                        /* 50 */
	"topic = iot-2/evt/+/fmt/json\n"                           /* 51 */
	"format = watson\n"                                        /* 52 */
	"\n"                                                       /* 53 */
	"[decode tmp36]\n"                                         /* 54 */
	"topic = sensors/+/raw\n"                                  /* 55 */
	"format = adc\n"                                           /* 56 */
	"devices = dev0001 dev0002, dev0003\n"                     /* 57 */
	"scale = 0.1\n"                                            /* 58 */
	"offset = -50\n"                                           /* 59 */
	"min = -40\n"                                              /* 60 */
	"max = 125\n"                                              /* 61 */
	"unit = F\n"                                               /* 62 */
	"\n"                                                       /* 63 */
	"[decode rest]\n"                                          /* 64 */
	"topic = #\n";                                             /* 65 */

static void test_full_config_every_key(void **state)
{
	(void)state;
	int rc = parse(full_conf);
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 0);

	assert_string_equal(cfg.path, "test.conf");
	assert_string_equal(cfg.gateway.name, "gw-1");
	assert_int_equal(cfg.gateway.log_level, 7);
	assert_int_equal(cfg.gateway.max_packet_size, 32768);
	assert_int_equal(cfg.gateway.connect_timeout_ms, 15000);
	assert_int_equal(cfg.gateway.max_keepalive_s, 7200);

	assert_int_equal(cfg.nlisteners, 2);
	const struct cfg_listener *l = &cfg.listeners[0];
	assert_string_equal(l->name, "mtls4");
	assert_int_equal(l->line, 9);
	assert_string_equal(l->binds[0].host, "0.0.0.0");
	assert_int_equal(l->binds[0].port, 8883);
	assert_int_equal(l->bind_line, 10);
	assert_int_equal(l->tls, CFG_TLS_MUTUAL);
	assert_string_equal(l->cert.path, "/etc/iotgw/server.pem");
	assert_int_equal(l->cert.line, 12);
	assert_string_equal(l->key.path, "/etc/iotgw/server.key");
	assert_int_equal(l->key.line, 13);
	assert_string_equal(l->ca.path, "/etc/iotgw/devices-ca.pem");
	assert_int_equal(l->ca.line, 14);
	assert_int_equal(l->identity, CFG_ID_SAN_DNS);
	assert_int_equal(l->handshake_timeout_ms, 5000);
	assert_int_equal(l->max_connections, 5000);
	assert_int_equal(l->tls_min_version, 12);
	assert_string_equal(l->ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
	assert_string_equal(l->ciphersuites, "TLS_AES_128_GCM_SHA256");
	assert_string_equal(l->groups, "X25519");
	l = &cfg.listeners[1];
	assert_string_equal(l->name, "mtls6");
	assert_string_equal(l->binds[0].host, "::");
	assert_int_equal(l->binds[0].port, 8883);

	const struct cfg_upstream *u = &cfg.upstream;
	assert_string_equal(u->host, "broker.example.net");
	assert_int_equal(u->host_line, 30);
	assert_int_equal(u->port, 8884);
	assert_string_equal(u->client_id, "gw-one");
	assert_true(u->tls);
	assert_string_equal(u->ca.path, "/etc/iotgw/upstream-ca.pem");
	assert_int_equal(u->ca.line, 34);
	assert_string_equal(u->cert.path, "/etc/iotgw/upstream-client.pem");
	assert_string_equal(u->key.path, "/etc/iotgw/upstream-client.key");
	assert_int_equal(u->keepalive_s, 30);
	assert_int_equal(u->inflight, 64);
	assert_int_equal(u->reconnect_min_ms, 500);
	assert_int_equal(u->reconnect_max_ms, 120000);
	assert_string_equal(u->topic, "site/{gateway}/{device}/{event}");
	assert_string_equal(u->dead_letter_topic, "dl/{gateway}/{device}");
	assert_string_equal(u->username, "gw");
	assert_string_equal(u->password, "s3cret=with=equals");

	assert_int_equal(cfg.spool.max_messages, 5000);
	assert_true(cfg.spool.max_bytes == 1024ull * 1024 * 1024);

	assert_int_equal(cfg.nrules, 3);
	const struct dec_rule *r = &cfg.rules[0];
	assert_string_equal(r->name, "watson");
	assert_int_equal(r->line, 50);
	assert_string_equal(r->topic_filter, "iot-2/evt/+/fmt/json");
	assert_int_equal(r->format, DEC_WATSON);
	assert_null(r->devices);
	assert_int_equal(r->ndevices, 0);
	r = &cfg.rules[1];
	assert_string_equal(r->name, "tmp36");
	assert_int_equal(r->format, DEC_ADC);
	assert_int_equal(r->ndevices, 3);
	assert_string_equal(r->devices[0], "dev0001");
	assert_string_equal(r->devices[1], "dev0002");
	assert_string_equal(r->devices[2], "dev0003");
	assert_true(r->scale == 0.1);
	assert_true(r->offset == -50.0);
	assert_true(r->min_c == -40.0);
	assert_true(r->max_c == 125.0);
	assert_int_equal(r->default_unit, 'F');
	r = &cfg.rules[2];
	assert_string_equal(r->topic_filter, "#");
	assert_int_equal(r->format, DEC_AUTO);
}

static void test_defaults(void **state)
{
	(void)state;
	int rc = parse(BASE);
	expect_errors(rc, 0);
	assert_int_equal(ndiags, 0);

	assert_string_equal(cfg.gateway.name, "iotgw");
	assert_int_equal(cfg.gateway.log_level, 6);
	assert_int_equal(cfg.gateway.max_packet_size, 16384);
	assert_int_equal(cfg.gateway.connect_timeout_ms, 10000);
	assert_int_equal(cfg.gateway.max_keepalive_s, 3600);

	const struct cfg_listener *l = &cfg.listeners[0];
	assert_int_equal(l->tls, CFG_TLS_MUTUAL);
	assert_int_equal(l->identity, CFG_ID_CN);
	assert_int_equal(l->handshake_timeout_ms, 10000);
	assert_int_equal(l->max_connections, 10000);
	assert_int_equal(l->max_message_rate, 1000);
	assert_int_equal(l->max_byte_rate, 1024 * 1024);
	assert_int_equal(l->rate_limit_action, CFG_RATE_SLOW);
	assert_int_equal(l->max_connection_rate_per_address, 100);
	assert_int_equal(l->tls_min_version, 12);
	/* unset: the tls_profile decides */
	assert_null(l->ciphers);
	assert_null(l->ciphersuites);
	assert_string_equal(l->groups, "X25519:P-256:P-384:P-521");
	/* device trust (SPEC Issue 4) */
	assert_int_equal(l->tls_profile, CFG_TLS_COMPATIBLE);
	assert_int_equal(l->tls_profile_line, 1); /* the section header */
	assert_int_equal(l->ciphers_line, 1);
	assert_int_equal(l->ciphersuites_line, 1);
	assert_int_equal(l->groups_line, 1);
	assert_int_equal(l->client_id, AUTH_CID_MATCH);
	assert_int_equal(l->npublish_acl, 3);
	assert_string_equal(l->publish_acl[0], "{device}/#");
	assert_string_equal(l->publish_acl[1], "+/{device}/#");
	assert_string_equal(l->publish_acl[2], "iot-2/evt/+/fmt/+");
	assert_int_equal(l->publish_acl_line, 0); /* not set */
	assert_null(l->crl.path);
	assert_null(l->password_file.path);
	assert_true(l->session_resumption);
	assert_int_equal(l->session_lifetime_s, 7200);
	assert_int_equal(l->cert_expiry_warning_s, 30 * 86400);
	assert_true(l->disconnect_revoked);
	assert_false(cfg.gateway.watch_tls_files);
	assert_null(cfg.upstream.crl.path);

	const struct cfg_upstream *u = &cfg.upstream;
	assert_int_equal(u->host_line, 7);
	assert_int_equal(u->port, 8883);
	assert_string_equal(u->client_id, "iotgw-iotgw");
	assert_true(u->tls);
	assert_int_equal(u->keepalive_s, 60);
	assert_int_equal(u->inflight, 32);
	assert_int_equal(u->reconnect_min_ms, 1000);
	assert_int_equal(u->reconnect_max_ms, 60000);
	assert_string_equal(u->topic, "sensors/{device}/temperature");
	assert_string_equal(u->dead_letter_topic, "iotgw/{gateway}/deadletter/{device}");
	assert_null(u->username);
	assert_null(u->password);

	assert_int_equal(cfg.spool.max_messages, 10000000);
	assert_true(cfg.spool.max_bytes == 2048ull * 1024 * 1024);
	assert_string_equal(cfg.spool.dir, "/var/lib/iotgw");
	assert_int_equal(cfg.spool.durability, CFG_DURABLE_FSYNC);
	assert_int_equal(cfg.nrules, 0);
	assert_null(cfg.rules);
}

static void test_decode_defaults(void **state)
{
	(void)state;
	int rc = parse_base("[decode x]\ntopic = sensors/#\n");
	expect_errors(rc, 0);
	assert_int_equal(cfg.nrules, 1);
	const struct dec_rule *r = &cfg.rules[0];
	assert_string_equal(r->name, "x");
	assert_int_equal(r->line, L(1));
	assert_string_equal(r->topic_filter, "sensors/#");
	assert_int_equal(r->format, DEC_AUTO);
	assert_null(r->devices);
	assert_true(r->scale == 1.0);
	assert_true(r->offset == 0.0);
	assert_true(r->min_c == -40.0);
	assert_true(r->max_c == 125.0);
	assert_int_equal(r->default_unit, 'C');
}

static void test_client_id_from_gateway_name(void **state)
{
	(void)state;
	int rc = parse("[gateway]\nname = gw-7\n" BASE);
	expect_errors(rc, 0);
	assert_string_equal(cfg.upstream.client_id, "iotgw-gw-7");
}

/* ---- structure errors ---- */

static void test_unknown_section(void **state)
{
	(void)state;
	int rc = parse_base("[bogus]\nfoo = bar\nname = x\n");
	expect_errors(rc, 1); /* its keys are not reported one by one */
	expect_error(L(1), "unknown section [bogus]");
}

static void test_keys_resume_after_unknown_section(void **state)
{
	(void)state;
	int rc = parse_base("[bogus]\nfoo = bar\n[gateway]\nnope = 1\n");
	expect_errors(rc, 2);
	expect_error(L(1), "unknown section [bogus]");
	expect_error(L(4), "unknown key 'nope' in section [gateway]");
}

static void test_unknown_key_names_section(void **state)
{
	(void)state;
	int rc = parse("[listener main]\nbind = 127.0.0.1:8883\ncert = c\nkey = k\nca = a\n"
		       "colour = blue\n"
		       "[upstream]\nhost = h\nca = a\ncert = c\nkey = k\nprot = 1\n");
	expect_errors(rc, 2);
	expect_error(6, "unknown key 'colour' in section [listener main]");
	expect_error(12, "unknown key 'prot' in section [upstream]");
}

static void test_duplicate_key(void **state)
{
	(void)state;
	int rc = parse_base("port = 1883\nport = 8883\n");
	expect_errors(rc, 1);
	expect_error(L(2), "duplicate key 'port', first set at line 11");
	assert_int_equal(cfg.upstream.port, 1883); /* the first one counts */
}

static void test_duplicate_key_bad_first_value(void **state)
{
	(void)state;
	int rc = parse_base("port = 0\nport = 8883\n");
	expect_errors(rc, 2);
	expect_error(L(1), "out of range 1..65535");
	expect_error(L(2), "duplicate key 'port', first set at line 11");
}

static void test_duplicate_named_section(void **state)
{
	(void)state;
	int rc = parse_base("[listener main]\nbind = 127.0.0.1:9999\n");
	expect_errors(rc, 1);
	expect_error(L(1), "duplicate section [listener main], first at line 1");
	assert_int_equal(cfg.nlisteners, 1);
	assert_int_equal(cfg.listeners[0].binds[0].port, 8883);
}

static void test_duplicate_singleton_section_keys_still_checked(void **state)
{
	(void)state;
	int rc = parse("[gateway]\nname = a\n" BASE "[gateway]\nname = b\nlog_level = loud\n");
	expect_errors(rc, 2);
	expect_error(13, "duplicate section [gateway], first at line 1");
	expect_error(15, "invalid value 'loud' for 'log_level'");
	assert_string_equal(cfg.gateway.name, "a");
	assert_string_equal(cfg.upstream.client_id, "iotgw-a");
}

static void test_duplicate_decode_and_upstream_sections(void **state)
{
	(void)state;
	int rc = parse_base("[decode a]\ntopic = #\n[decode a]\ntopic = x\n[upstream]\n"
			    "host = other\n");
	expect_errors(rc, 2);
	expect_error(L(3), "duplicate section [decode a], first at line 11");
	expect_error(L(5), "duplicate section [upstream], first at line 6");
	assert_int_equal(cfg.nrules, 1);
	assert_string_equal(cfg.upstream.host, "broker.example.net");
}

static void test_key_outside_section(void **state)
{
	(void)state;
	snprintf(text, sizeof text, "# header comment\nname = gw\n%s", BASE);
	int rc = parse(text);
	expect_errors(rc, 1);
	expect_error(2, "key 'name' outside any section");
}

static void test_malformed_lines(void **state)
{
	(void)state;
	int rc = parse_base("password: s3cret\n= value\n[gateway\nname = x\n");
	expect_errors(rc, 3);
	expect_error(L(1), "malformed line (expected 'key = value', '[section]' or a comment)");
	expect_error(L(2), "missing key before '='");
	expect_error(L(3), "malformed section header '[gateway' (missing ']')");
	for (size_t i = 0; i < ndiags; i++)
		assert_null(strstr(diags[i].msg, "s3cret"));
}

static void test_section_names(void **state)
{
	(void)state;
	int rc = parse_base("[listener]\n"
			    "[listener bad name]\n"
			    "[decode 0123456789012345678901234567890123]\n"
			    "[listener ok.name_1-2]\nbind = 127.0.0.1:1\ntls = off\n"
			    "[spool extra]\nmax_messages = 7\n"
			    "[decode]\n");
	expect_errors(rc, 5);
	expect_error(L(1), "section [listener] needs a name: [listener NAME]");
	expect_error(L(2), "invalid section name 'bad name'");
	expect_error(L(3), "invalid section name '0123456789012345678901234567890123'");
	expect_error(L(7), "section [spool] takes no name");
	expect_error(L(9), "section [decode] needs a name");
	assert_int_equal(cfg.nlisteners, 2);
	assert_string_equal(cfg.listeners[1].name, "ok.name_1-2");
	assert_int_equal(cfg.spool.max_messages, 7); /* [spool extra] still counts */
	assert_int_equal(cfg.nrules, 0);
}

static void test_section_name_32_chars_ok(void **state)
{
	(void)state;
	int rc = parse_base("[decode 01234567890123456789012345678901]\ntopic = #\n");
	expect_errors(rc, 0);
	assert_string_equal(cfg.rules[0].name, "01234567890123456789012345678901");
}

static void test_badly_named_section_keys_checked(void **state)
{
	(void)state;
	int rc = parse_base("[listener a/b]\nbind = nowhere\nwhat = 1\n");
	expect_errors(rc, 3);
	expect_error(L(1), "invalid section name 'a/b'");
	expect_error(L(2), "bind 'nowhere'");
	expect_error(L(3), "unknown key 'what' in section [listener a/b]");
	assert_int_equal(cfg.nlisteners, 1);
}

static void test_empty_value(void **state)
{
	(void)state;
	int rc = parse_base("port =\nkeepalive =   \n");
	expect_errors(rc, 2);
	expect_error(L(1), "empty value for 'port'");
	expect_error(L(2), "empty value for 'keepalive'");
}

static void test_empty_username_password_allowed(void **state)
{
	(void)state;
	int rc = parse_base("username =\npassword =\n");
	expect_errors(rc, 0);
	assert_null(cfg.upstream.username);
	assert_null(cfg.upstream.password);
}

static void test_password_requires_username(void **state)
{
	(void)state;
	int rc = parse_base("password = x\n");
	expect_errors(rc, 1);
	expect_error(L(1), "'password' requires 'username'");
}

/* ---- numbers ---- */

static void test_uint_values(void **state)
{
	(void)state;
	assert_int_equal(one("upstream", "port", "1"), 0);
	assert_int_equal(cfg.upstream.port, 1);
	assert_int_equal(one("upstream", "port", "65535"), 0);
	assert_int_equal(cfg.upstream.port, 65535);
	assert_int_equal(one("upstream", "port", "008883"), 0);
	assert_int_equal(cfg.upstream.port, 8883);
	assert_int_equal(one("spool", "max_messages", "100000000"), 0);
	assert_int_equal(cfg.spool.max_messages, 100000000);

	static const struct {
		const char *v, *msg;
	} bad[] = {
		{"12x", "invalid value '12x' for 'port': not a whole number"},
		{"-1", "not a whole number"},
		{"+5", "not a whole number"},
		{"0x10", "not a whole number"},
		{"1 2", "not a whole number"},
		{"1.0", "not a whole number"},
		{"0", "value '0' for 'port' out of range 1..65535"},
		{"65536", "out of range 1..65535"},
		{"99999999999999999999", "out of range 1..65535"},
		{"18446744073709551616", "out of range"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = one("upstream", "port", bad[i].v);
		expect_errors(rc, 1);
		expect_error(L(1), bad[i].msg);
		assert_int_equal(cfg.upstream.port, 8883); /* default kept */
	}
	int rc = parse_base("[listener big]\nbind = 127.0.0.1:1\ncert = c\nkey = k\nca = a\n"
			    "max_connections = 1000001\n");
	expect_errors(rc, 1);
	expect_error(L(6), "value '1000001' for 'max_connections' out of range 1..1000000");
}

static void test_durations(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		unsigned s;
	} ok_s[] = {{"90", 90}, {"90s", 90}, {"2m", 120}, {"1h", 3600}, {"5 s", 5},
		    {"60000ms", 60}, {"0005s", 5}};
	for (size_t i = 0; i < sizeof ok_s / sizeof ok_s[0]; i++) {
		int rc = one("upstream", "keepalive", ok_s[i].v);
		expect_errors(rc, 0);
		assert_int_equal(cfg.upstream.keepalive_s, ok_s[i].s);
	}
	assert_int_equal(one("gateway", "connect_timeout", "1500ms"), 0);
	assert_int_equal(cfg.gateway.connect_timeout_ms, 1500);
	assert_int_equal(one("upstream", "reconnect_min", "100ms"), 0);
	assert_int_equal(cfg.upstream.reconnect_min_ms, 100);

	static const struct {
		const char *v, *msg;
	} bad[] = {
		{"12x", "invalid duration '12x' for 'keepalive' (use e.g. 10, 10s, 500ms, 2m, 1h)"},
		{"-5s", "invalid duration"},
		{"1.5s", "invalid duration"},
		{"s", "invalid duration"},
		{"10 sec", "invalid duration"},
		{"10S", "invalid duration"},
		{"4s", "duration '4s' for 'keepalive' out of range 5s..1h"},
		{"61m", "out of range 5s..1h"},
		{"99999999999999999999s", "out of range 5s..1h"},
		{"18446744073709551615h", "out of range"},
		{"18446744073709551615", "out of range"},
		{"5500ms", "duration '5500ms' for 'keepalive' must be whole seconds"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = one("upstream", "keepalive", bad[i].v);
		expect_errors(rc, 1);
		expect_error(L(1), bad[i].msg);
		assert_int_equal(cfg.upstream.keepalive_s, 60);
	}
	int rc = one("gateway", "connect_timeout", "999ms");
	expect_errors(rc, 1);
	expect_error(L(2), "out of range 1s..5m");
	rc = one("upstream", "reconnect_min", "99ms");
	expect_errors(rc, 1);
	expect_error(L(1), "out of range 100ms..1h");
}

static void test_max_keepalive_zero_or_range(void **state)
{
	(void)state;
	assert_int_equal(one("gateway", "max_keepalive", "0"), 0);
	assert_int_equal(cfg.gateway.max_keepalive_s, 0);
	assert_int_equal(one("gateway", "max_keepalive", "0s"), 0);
	assert_int_equal(cfg.gateway.max_keepalive_s, 0);
	assert_int_equal(one("gateway", "max_keepalive", "18h"), 0);
	assert_int_equal(cfg.gateway.max_keepalive_s, 64800);
	assert_int_equal(one("gateway", "max_keepalive", "1s"), 0);
	assert_int_equal(cfg.gateway.max_keepalive_s, 1);
	int rc = one("gateway", "max_keepalive", "19h");
	expect_errors(rc, 1);
	expect_error(L(2), "out of range 0 or 1s..18h");
	rc = one("gateway", "max_keepalive", "500ms");
	expect_errors(rc, 1);
	expect_error(L(2), "out of range 0 or 1s..18h");
}

static void test_sizes(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		uint32_t n;
	} ok[] = {{"128", 128},        {"16384", 16384}, {"16K", 16384},     {"16KiB", 16384},
		  {"1M", 1048576},     {"1MiB", 1048576}, {"1024 K", 1048576}, {"1000", 1000}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int rc = one("gateway", "max_packet_size", ok[i].v);
		expect_errors(rc, 0);
		assert_int_equal(cfg.gateway.max_packet_size, ok[i].n);
	}
	assert_int_equal(one("spool", "max_bytes", "64G"), 0);
	assert_true(cfg.spool.max_bytes == 64ull << 30);
	assert_int_equal(one("spool", "max_bytes", "4KiB"), 0);
	assert_true(cfg.spool.max_bytes == 4096);
	assert_int_equal(one("spool", "max_bytes", "2GiB"), 0);
	assert_true(cfg.spool.max_bytes == 2ull << 30);

	static const struct {
		const char *v, *msg;
	} bad[] = {
		{"16k", "invalid size '16k' for 'max_packet_size' (use e.g. 16384, 16K, 64M, 1G)"},
		{"16KB", "invalid size"},
		{"-1K", "invalid size"},
		{"1.5K", "invalid size"},
		{"K", "invalid size"},
		{"127", "size '127' for 'max_packet_size' out of range 128..1M"},
		{"2M", "out of range 128..1M"},
		{"99999999999999999999", "out of range"},
		{"18446744073709551615G", "out of range"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = one("gateway", "max_packet_size", bad[i].v);
		expect_errors(rc, 1);
		expect_error(L(2), bad[i].msg);
		assert_int_equal(cfg.gateway.max_packet_size, 16384);
	}
	int rc = one("spool", "max_bytes", "65G");
	expect_errors(rc, 1);
	expect_error(L(2), "out of range 4K..64G");
}

static void test_doubles(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		double d;
	} ok[] = {{"0.1", 0.1}, {"-50", -50.0}, {"1e-2", 0.01}, {"+2.5", 2.5}, {"3.", 3.0}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int rc = one("decode", "scale", ok[i].v);
		expect_errors(rc, 0);
		assert_true(cfg.rules[0].scale == ok[i].d);
	}
	static const struct {
		const char *v, *msg;
	} bad[] = {
		{"abc", "invalid value 'abc' for 'scale': not a number"},
		{"nan", "not a number"},
		{"inf", "not a number"},
		{"0x10", "not a number"},
		{"1.5.3", "not a number"},
		{"1,5", "not a number"},
		{"-", "not a number"},
		{"1e999", "value '1e999' for 'scale' out of range"},
		{"1e-999", "out of range"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = one("decode", "scale", bad[i].v);
		expect_errors(rc, 1);
		expect_error(L(3), bad[i].msg);
		assert_true(cfg.rules[0].scale == 1.0);
	}
}

static void test_enums(void **state)
{
	(void)state;
	static const struct {
		const char *sec, *key, *v, *msg;
		int line;
	} bad[] = {
		{"gateway", "log_level", "loud",
		 "invalid value 'loud' for 'log_level' (allowed: err, error, warning, notice, "
		 "info, debug)",
		 L(2)},
		{"gateway", "log_level", "INFO", "allowed:", L(2)},
		{"upstream", "tls", "server",
		 "invalid value 'server' for 'tls' (allowed: mutual, off)", L(1)},
		{"decode", "unit", "K", "invalid value 'K' for 'unit' (allowed: C, F)", L(3)},
		{"decode", "format", "xml",
		 "invalid value 'xml' for 'format' (allowed: auto, watson, json, number, adc)",
		 L(3)},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = one(bad[i].sec, bad[i].key, bad[i].v);
		expect_errors(rc, 1);
		expect_error(bad[i].line, bad[i].msg);
	}
	static const struct {
		const char *v;
		int level;
	} levels[] = {{"err", 3}, {"error", 3}, {"warning", 4}, {"notice", 5}, {"info", 6},
		      {"debug", 7}};
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		assert_int_equal(one("gateway", "log_level", levels[i].v), 0);
		assert_int_equal(cfg.gateway.log_level, levels[i].level);
	}
	static const struct {
		const char *v;
		enum dec_format f;
	} fmts[] = {{"auto", DEC_AUTO},     {"watson", DEC_WATSON}, {"json", DEC_JSON},
		    {"number", DEC_NUMBER}, {"adc", DEC_ADC}};
	for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
		assert_int_equal(one("decode", "format", fmts[i].v), 0);
		assert_int_equal(cfg.rules[0].format, fmts[i].f);
	}
}

static void test_listener_enums(void **state)
{
	(void)state;
	int rc = parse("[listener l]\nbind = 127.0.0.1:8883\ncert = c\nkey = k\nca = a\n"
		       "tls = tls\nidentity = ou\ntls_min_version = 1.1\n"
		       "[upstream]\nhost = h\nca = a\ncert = c\nkey = k\n");
	expect_errors(rc, 3);
	expect_error(6, "invalid value 'tls' for 'tls' (allowed: off, server, mutual)");
	expect_error(7, "invalid value 'ou' for 'identity' (allowed: cn, san-dns, san-uri, "
			"san-email, serial)");
	expect_error(8, "invalid value '1.1' for 'tls_min_version' (allowed: 1.2, 1.3)");

	rc = parse("[listener l]\nbind = 127.0.0.1:8883\ncert = c\nkey = k\nca = a\n"
		   "identity = san-email\ntls_min_version = 1.3\nmax_connections = 1000000\n"
		   "handshake_timeout = 300s\n"
		   "[upstream]\nhost = h\nca = a\ncert = c\nkey = k\n");
	expect_errors(rc, 0);
	assert_int_equal(cfg.listeners[0].identity, CFG_ID_SAN_EMAIL);
	assert_int_equal(cfg.listeners[0].tls_min_version, 13);
	assert_int_equal(cfg.listeners[0].max_connections, 1000000);
	assert_int_equal(cfg.listeners[0].handshake_timeout_ms, 300000);
}

/* ---- bind ---- */

static const char *listener_with_bind(const char *bind)
{
	snprintf(text, sizeof text,
		 "[listener l]\nbind = %s\ncert = c\nkey = k\nca = a\n"
		 "[upstream]\nhost = h\nca = a\ncert = c\nkey = k\n",
		 bind);
	return text;
}

static void test_bind_ipv4_ipv6(void **state)
{
	(void)state;
	static const struct {
		const char *bind, *host;
		uint16_t port;
	} ok[] = {{"0.0.0.0:8883", "0.0.0.0", 8883},
		  {"127.0.0.1:1", "127.0.0.1", 1},
		  {"[::1]:8883", "::1", 8883},
		  {"[::]:65535", "::", 65535},
		  {"[2001:db8::17]:1883", "2001:db8::17", 1883},
		  {"[::ffff:192.0.2.1]:8883", "::ffff:192.0.2.1", 8883}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int rc = parse(listener_with_bind(ok[i].bind));
		expect_errors(rc, 0);
		assert_string_equal(cfg.listeners[0].binds[0].host, ok[i].host);
		assert_int_equal(cfg.listeners[0].binds[0].port, ok[i].port);
		assert_int_equal(cfg.listeners[0].bind_line, 2);
	}
}

static void test_bind_bad(void **state)
{
	(void)state;
	static const struct {
		const char *bind, *msg;
	} bad[] = {
		{"localhost:80", "bind 'localhost:80': expected a numeric address and port"},
		{"1.2.3.4", "expected a numeric address"},
		{"1.2.3.4:", "expected a numeric address"},
		{":8883", "expected a numeric address"},
		{"1.2.3.4:80x", "expected a numeric address"},
		{"1.2.3.4:-1", "expected a numeric address"},
		{"256.1.1.1:80", "expected a numeric address"},
		{"1.2.3:80", "expected a numeric address"},
		{"::1:8883", "expected a numeric address"},
		{"[::1]", "expected a numeric address"},
		{"[::1]8883", "expected a numeric address"},
		{"[::1:8883", "expected a numeric address"},
		{"[]:8883", "expected a numeric address"},
		{"[1.2.3.4]:80", "expected a numeric address"},
		{"[fe80::1%eth0]:8883", "expected a numeric address"},
		{"[::1]:0", "bind '[::1]:0': port out of range 1..65535"},
		{"[::1]:70000", "port out of range 1..65535"},
		{"1.2.3.4:0", "port out of range"},
		{"1.2.3.4:99999999999999999999", "expected a numeric address"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = parse(listener_with_bind(bad[i].bind));
		expect_errors(rc, 1); /* no extra "bind is required" */
		expect_error(2, bad[i].msg);
		assert_int_equal(cfg.listeners[0].nbinds, 0);
	}
}

#define LISTENER(name, bind) "[listener " name "]\nbind = " bind "\ncert = c\nkey = k\nca = a\n"

static void test_duplicate_bind(void **state)
{
	(void)state;
	/* main is on 127.0.0.1:8883 (line 2) */
	int rc = parse_base(LISTENER("v6any", "[::]:8883")         /* 11 */
			    LISTENER("again", "127.0.0.1:8883")    /* 16 */
			    LISTENER("v6b", "[0::0]:8883")         /* 21 */
			    LISTENER("other", "127.0.0.1:8884")    /* 26 */
			    LISTENER("v6lo", "[::1]:8884"));       /* 31 */
	expect_errors(rc, 2);
	expect_error(L(7), "listener 'again': bind address 127.0.0.1:8883 already used by "
			   "listener 'main' (line 2)");
	expect_error(L(12), "listener 'v6b': bind address [::]:8883 already used by listener "
			    "'v6any' (line 12)");
	assert_int_equal(cfg.nlisteners, 6);
}

static void test_wildcard_bind_overlap(void **state)
{
	(void)state;
	int rc = parse_base(LISTENER("any4", "0.0.0.0:8883")      /* 11 */
			    LISTENER("any6", "[::]:8883")         /* 16 */
			    LISTENER("lo6", "[::1]:8883")         /* 21 */
			    LISTENER("any4b", "0.0.0.0:9999"));   /* 26 */
	expect_errors(rc, 2);
	expect_error(L(2), "listener 'any4': bind address 0.0.0.0:8883 overlaps 127.0.0.1:8883 "
			   "of listener 'main' (line 2)");
	expect_error(L(12), "listener 'lo6': bind address [::1]:8883 overlaps [::]:8883 of "
			    "listener 'any6' (line 17)");
}

/* One listener, several addresses: every one is checked like a listener's. */
static void test_bind_several(void **state)
{
	(void)state;
	int rc = parse(listener_with_bind(" 0.0.0.0:8883\t[::]:8883  [::1]:9 "));
	expect_errors(rc, 0);
	const struct cfg_listener *l = &cfg.listeners[0];
	assert_int_equal(l->nbinds, 3);
	assert_string_equal(l->binds[0].host, "0.0.0.0");
	assert_string_equal(l->binds[1].host, "::");
	assert_string_equal(l->binds[2].host, "::1");
	assert_int_equal(l->binds[2].port, 9);
	char desc[CFG_BINDS_TEXT];
	cfg_binds_format(l->binds, l->nbinds, desc, sizeof desc);
	assert_string_equal(desc, "0.0.0.0:8883 [::]:8883 [::1]:9");

	static const struct {
		const char *bind, *msg;
	} bad[] = {
		{"127.0.0.1:1 localhost:2", "bind 'localhost:2': expected a numeric address"},
		{"127.0.0.1:1 127.0.0.1:0", "bind '127.0.0.1:0': port out of range"},
		{"127.0.0.1:1 127.0.0.1:1",
		 "listener 'l': bind address 127.0.0.1:1 repeats 127.0.0.1:1 in the same list"},
		{"127.0.0.1:1 0.0.0.0:1",
		 "listener 'l': bind address 0.0.0.0:1 overlaps 127.0.0.1:1 in the same list"},
		{"1.1.1.1:1 1.1.1.1:2 1.1.1.1:3 1.1.1.1:4 1.1.1.1:5 1.1.1.1:6 1.1.1.1:7 1.1.1.1:8 "
		 "1.1.1.1:9",
		 "bind: more than 8 addresses"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		rc = parse(listener_with_bind(bad[i].bind));
		expect_errors(rc, 1);
		expect_error(2, bad[i].msg);
	}
	/* Against another listener: the second address collides. */
	rc = parse_base(LISTENER("dual", "127.0.0.2:8883 127.0.0.1:8883"));
	expect_errors(rc, 1);
	expect_error(L(2), "listener 'dual': bind address 127.0.0.1:8883 already used by "
			   "listener 'main' (line 2)");
}

/* Two mutual listeners trusting one CA must refuse the same devices. */
static void test_revocation_twins(void **state)
{
	(void)state;
	static const struct {
		const char *keys, *msg;
	} cases[] = {
		{"crl = /etc/iotgw/devices-ca.crl.pem\n", "but has a crl, the other none"},
		{"disconnect_revoked = no\n", "but has a different disconnect_revoked"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char extra[512];
		snprintf(extra, sizeof extra,
			 "[listener six]\nbind = [::1]:8883\ncert = c\nkey = k\n"
			 "ca = /etc/iotgw/devices-ca.pem\n%s",
			 cases[i].keys);
		int rc = parse_base(extra);
		expect_errors(rc, 0);
		assert_int_equal(count(CFG_WARNING), 1);
		expect_warning(i == 0 ? L(6) : L(1), cases[i].msg);
		expect_warning(i == 0 ? L(6) : L(1),
			       "listener 'six' trusts the same ca as listener 'main' (line 1)");
	}
	/* Another CA, or the same settings: nothing to say. */
	int rc = parse_base("[listener six]\nbind = [::1]:8883\ncert = c\nkey = k\n"
			    "ca = /etc/iotgw/other-ca.pem\ncrl = x.crl\n"
			    "[listener seven]\nbind = [::1]:8884\ncert = c\nkey = k\n"
			    "ca = /etc/iotgw/devices-ca.pem\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 0);
}

/* ---- cross-field rules ---- */

static void test_no_listener(void **state)
{
	(void)state;
	int rc = parse("[upstream]\nhost = h\nca = a\ncert = c\nkey = k\n");
	expect_errors(rc, 1);
	expect_error(0, "at least one listener is required");
}

static void test_upstream_required(void **state)
{
	(void)state;
	int rc = parse("[listener l]\nbind = 127.0.0.1:1\ntls = off\n");
	expect_errors(rc, 1);
	expect_error(0, "missing [upstream] section");

	rc = parse("[listener l]\nbind = 127.0.0.1:1\ntls = off\n"
		   "[upstream]\nca = a\ncert = c\nkey = k\n");
	expect_errors(rc, 1);
	expect_error(4, "[upstream]: 'host' is required");
}

static void test_empty_file(void **state)
{
	(void)state;
	int rc = parse("");
	expect_errors(rc, 2);
	expect_error(0, "missing [upstream] section");
	expect_error(0, "at least one listener is required");
	assert_string_equal(cfg.gateway.name, "iotgw");
}

static void test_listener_requirements(void **state)
{
	(void)state;
	int rc = parse_base("[listener s]\nbind = 127.0.0.1:1\ntls = server\n"
			    "[listener m]\nbind = 127.0.0.1:2\ncert = c\nkey = k\n"
			    "[listener nob]\ntls = off\n");
	expect_errors(rc, 4);
	expect_error(L(1), "listener 's': 'cert' is required unless tls = off");
	expect_error(L(1), "listener 's': 'key' is required unless tls = off");
	expect_error(L(4), "listener 'm': 'ca' is required for tls = mutual");
	expect_error(L(8), "listener 'nob': 'bind' is required");
	expect_warning(L(9), "plaintext listener: listener 'nob'");
	/* only 'cert' missing */
	rc = parse_base("[listener x]\nbind = 127.0.0.1:1\nkey = k\nca = a\n");
	expect_errors(rc, 1);
	expect_error(L(1), "listener 'x': 'cert' is required unless tls = off");
}

static void test_ca_identity_warnings_on_non_mutual(void **state)
{
	(void)state;
	int rc = parse_base("[listener s]\nbind = 127.0.0.1:1\ntls = server\ncert = c\nkey = k\n"
			    "ca = a\nidentity = san-uri\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 2);
	expect_warning(L(6), "listener 's': 'ca' is ignored unless tls = mutual");
	expect_warning(L(7), "listener 's': 'identity' is ignored unless tls = mutual");
}

static void test_plaintext_listener_warning(void **state)
{
	(void)state;
	int rc = parse_base("[listener dev]\nbind = [::1]:1883\ntls = off\ncert = c\n");
	expect_errors(rc, 0);
	expect_warning(L(3), "plaintext listener: listener 'dev' on [::1]:1883");
	expect_warning(L(4), "listener 'dev': 'cert' is ignored when tls = off");
	assert_int_equal(cfg.listeners[1].tls, CFG_TLS_OFF);
}

static void test_upstream_mutual_requires_files(void **state)
{
	(void)state;
	int rc = parse("[listener l]\nbind = 127.0.0.1:1\ntls = off\n"
		       "[upstream]\nhost = h\ncert = c\n");
	expect_errors(rc, 2);
	expect_error(4, "[upstream]: 'ca' is required for tls = mutual");
	expect_error(4, "[upstream]: 'key' is required for tls = mutual");
}

static void test_upstream_tls_off_warning(void **state)
{
	(void)state;
	int rc = parse("[listener l]\nbind = 127.0.0.1:1\ntls = off\n"
		       "[upstream]\nhost = 127.0.0.1\nport = 1883\ntls = off\nca = a\n");
	expect_errors(rc, 0);
	expect_warning(7, "upstream tls = off");
	expect_warning(8, "[upstream]: 'ca' is ignored when tls = off");
	assert_false(cfg.upstream.tls);
	assert_int_equal(count(CFG_WARNING), 3); /* plus the plaintext listener */
}

static void test_reconnect_min_max(void **state)
{
	(void)state;
	int rc = parse_base("reconnect_min = 2m\nreconnect_max = 1m\n");
	expect_errors(rc, 1);
	expect_error(L(2), "reconnect_min (120000ms) is greater than reconnect_max (60000ms)");
	/* only min set: reported on its line against the default max */
	rc = parse_base("reconnect_min = 90s\n");
	expect_errors(rc, 1);
	expect_error(L(1), "is greater than reconnect_max");
	rc = parse_base("reconnect_min = 1m\nreconnect_max = 1m\n");
	expect_errors(rc, 0);
}

static void test_decode_min_max(void **state)
{
	(void)state;
	int rc = parse_base("[decode a]\ntopic = #\nmin = 50\nmax = 50\n");
	expect_errors(rc, 1);
	expect_error(L(4), "decode 'a': min (50) must be less than max (50)");
	rc = parse_base("[decode a]\ntopic = #\nmin = 130\n");
	expect_errors(rc, 1);
	expect_error(L(3), "min (130) must be less than max (125)");
	rc = parse_base("[decode a]\ntopic = #\nmin = -10.5\nmax = 40\n");
	expect_errors(rc, 0);
	assert_true(cfg.rules[0].min_c == -10.5);
	assert_true(cfg.rules[0].max_c == 40.0);
}

static void test_scale_offset_on_non_adc(void **state)
{
	(void)state;
	int rc = parse_base("[decode a]\ntopic = #\nformat = number\nscale = 2\noffset = 1\n"
			    "[decode b]\ntopic = x/#\nscale = 2\n"
			    "[decode c]\ntopic = y\nformat = adc\nscale = 0.1\noffset = -50\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 3);
	expect_warning(L(4), "decode 'a': 'scale' only applies to format = adc");
	expect_warning(L(5), "decode 'a': 'offset' only applies to format = adc");
	expect_warning(L(8), "decode 'b': 'scale' only applies to format = adc");
}

static void test_decode_topic(void **state)
{
	(void)state;
	int rc = parse_base("[decode a]\nformat = json\n");
	expect_errors(rc, 1);
	expect_error(L(1), "decode 'a': 'topic' is required");

	static const char *const bad[] = {"a/#/b", "a/b#", "a+/b", "sensors/++"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		rc = one("decode", "topic", bad[i]);
		expect_errors(rc, 1);
		expect_error(L(2), "not a valid MQTT topic filter");
	}
	static const char *const ok[] = {"#", "+", "sensors/+/temp", "iot-2/evt/+/fmt/json", "a/#",
					 "/leading/slash"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		rc = one("decode", "topic", ok[i]);
		expect_errors(rc, 0);
		assert_string_equal(cfg.rules[0].topic_filter, ok[i]);
	}
}

static void test_decode_devices(void **state)
{
	(void)state;
	int rc = one("decode", "devices", "dev1 dev2,dev3 ,  dev4\t,dev5");
	expect_errors(rc, 0);
	assert_int_equal(cfg.rules[0].ndevices, 5);
	assert_string_equal(cfg.rules[0].devices[0], "dev1");
	assert_string_equal(cfg.rules[0].devices[3], "dev4");
	assert_string_equal(cfg.rules[0].devices[4], "dev5");

	rc = one("decode", "devices", "dev1 dev1");
	expect_errors(rc, 0);
	expect_warning(L(3), "device 'dev1' listed twice");
	assert_int_equal(cfg.rules[0].ndevices, 1);

	rc = one("decode", "devices", ", ,");
	expect_errors(rc, 1);
	expect_error(L(3), "empty value for 'devices'");
	assert_int_equal(cfg.rules[0].ndevices, 0);

	rc = one("decode", "devices", "ok \xff\xfe");
	expect_errors(rc, 1);
	expect_error(L(3), "is not valid UTF-8");
}

static void test_topic_templates(void **state)
{
	(void)state;
	int rc = one("upstream", "topic", "sensors/{nope}");
	expect_errors(rc, 1);
	expect_error(L(1), "invalid value 'sensors/{nope}' for 'topic'");
	rc = one("upstream", "dead_letter_topic", "dl/+/{device}");
	expect_errors(rc, 1);
	expect_error(L(1), "invalid value 'dl/+/{device}' for 'dead_letter_topic'");
	rc = one("upstream", "topic", "t/{device");
	expect_errors(rc, 1);
	expect_error(L(1), "for 'topic'");
	rc = one("upstream", "topic", "plain/topic");
	expect_errors(rc, 0);
	assert_string_equal(cfg.upstream.topic, "plain/topic");
}

static void test_string_checks(void **state)
{
	(void)state;
	int rc = one("gateway", "name", "gw 1");
	expect_errors(rc, 1);
	expect_error(L(2), "invalid value 'gw 1' for 'name': use 1-64 characters");
	rc = one("gateway", "name",
		 "a1234567890123456789012345678901234567890123456789012345678901234"); /* 65 */
	expect_errors(rc, 1);
	rc = one("gateway", "name",
		 "a123456789012345678901234567890123456789012345678901234567890123"); /* 64 */
	expect_errors(rc, 0);
	rc = one("upstream", "host", "bad host");
	expect_errors(rc, 1);
	expect_error(L(1), "duplicate key 'host'");
	rc = parse("[listener l]\nbind = 127.0.0.1:1\ntls = off\n"
		   "[upstream]\nhost = bad host\ntls = off\n");
	expect_errors(rc, 1);
	expect_error(5, "invalid value 'bad host' for 'host'");
	rc = one("upstream", "client_id", "id-\xc3\x28");
	expect_errors(rc, 1);
	expect_error(L(1), "for 'client_id': not valid UTF-8");
	rc = one("upstream", "client_id", "caf\xc3\xa9");
	expect_errors(rc, 0);
}

/* ---- lexical ---- */

static void test_comments_and_whitespace(void **state)
{
	(void)state;
	int rc = parse("# comment\n; another\n   # indented comment\n\t; tab\n\n"
		       "  [ listener   a ]  \n"
		       "\tbind\t=\t127.0.0.1:8883   \n"
		       "cert=c\nkey =k\nca= a\n"
		       "[upstream]\nhost = h\nca = a\ncert = c\nkey = k\n"
		       "topic = t/{device}\n"
		       "[decode all]\ntopic = sensors/#\n");
	expect_errors(rc, 0);
	assert_string_equal(cfg.listeners[0].name, "a");
	assert_string_equal(cfg.listeners[0].binds[0].host, "127.0.0.1");
	assert_string_equal(cfg.listeners[0].cert.path, "c");
	assert_string_equal(cfg.listeners[0].ca.path, "a");
	/* no inline comments: '#' belongs to the value */
	assert_string_equal(cfg.rules[0].topic_filter, "sensors/#");
}

static void test_inline_hash_is_value(void **state)
{
	(void)state;
	int rc = one("gateway", "name", "gw # comment");
	expect_errors(rc, 1);
	expect_error(L(2), "invalid value 'gw # comment' for 'name'");
}

static void test_crlf(void **state)
{
	(void)state;
	static const char crlf[] = "[gateway]\r\nname = gw-crlf\r\n\r\n# c\r\n"
				   "[listener a]\r\nbind = [::1]:8883\r\ncert = c\r\nkey = k\r\n"
				   "ca = a\r\n"
				   "[upstream]\r\nhost = h\r\nca = a\r\ncert = c\r\nkey = k\r\n"
				   "bogus = 1\r\n";
	int rc = parse(crlf);
	expect_errors(rc, 1);
	expect_error(15, "unknown key 'bogus' in section [upstream]");
	assert_string_equal(cfg.gateway.name, "gw-crlf");
	assert_string_equal(cfg.upstream.key.path, "k");
	assert_int_equal(cfg.listeners[0].binds[0].port, 8883);
}

static void test_bom(void **state)
{
	(void)state;
	snprintf(text, sizeof text, "\xEF\xBB\xBF[gateway]\nname = bom\nx = 1\n%s", BASE);
	int rc = parse(text);
	expect_errors(rc, 1);
	expect_error(3, "unknown key 'x' in section [gateway]");
	assert_string_equal(cfg.gateway.name, "bom");
	/* a BOM anywhere else is just bytes */
	snprintf(text, sizeof text, "%s\xEF\xBB\xBF[gateway]\n", BASE);
	rc = parse(text);
	expect_errors(rc, 1);
	expect_error(L(1), "malformed line");
}

static void test_no_trailing_newline_and_not_nul_terminated(void **state)
{
	(void)state;
	snprintf(text, sizeof text, "%s[gateway]\nname = abcGARBAGE", BASE);
	size_t len = strlen(text) - strlen("GARBAGE");
	int rc = parse_len(text, len);
	expect_errors(rc, 0);
	assert_string_equal(cfg.gateway.name, "abc");
}

static void test_long_line(void **state)
{
	(void)state;
	char *big = malloc(20000);
	assert_non_null(big);
	int n = snprintf(big, 20000, "%s[gateway]\nname = ", BASE);
	memset(big + n, 'a', 4100);
	n += 4100;
	snprintf(big + n, (size_t)(20000 - n), "\nlog_level = nope\n");
	int rc = parse(big);
	expect_errors(rc, 2);
	expect_error(L(2), "line too long (more than 4096 bytes)");
	expect_error(L(3), "invalid value 'nope' for 'log_level'"); /* parsing went on */
	/* exactly 4096 bytes is fine (a comment) */
	n = snprintf(big, 20000, "%s", BASE);
	memset(big + n, '#', 4096);
	big[n + 4096] = '\0';
	rc = parse(big);
	expect_errors(rc, 0);
	free(big);
}

static void test_control_characters(void **state)
{
	(void)state;
	static const char withnul[] = "[gateway]\nname = a\0b\nlog_level = x\n";
	snprintf(text, sizeof text, "%s", BASE);
	size_t n = strlen(text);
	memcpy(text + n, withnul, sizeof withnul - 1);
	int rc = parse_len(text, n + sizeof withnul - 1);
	expect_errors(rc, 2);
	expect_error(L(2), "control character 0x00 in line");
	expect_error(L(3), "invalid value 'x' for 'log_level'");

	rc = parse_base("[gateway]\nname = a\x1b[31mred\n");
	expect_errors(rc, 1);
	expect_error(L(2), "control character 0x1b");
	rc = parse_base("[gateway]\nname = a\rb\n");
	expect_errors(rc, 1);
	expect_error(L(2), "control character 0x0d");
}

static void test_messages_escape_values(void **state)
{
	(void)state;
	char v[200];
	memset(v, 'x', sizeof v - 1);
	v[sizeof v - 1] = '\0';
	int rc = one("gateway", "log_level", v);
	expect_errors(rc, 1);
	expect_error(L(2), "xxx...' for 'log_level'");
	assert_true(strlen(diags[0].msg) < 200);
}

static void test_messages_do_not_split_utf8(void **state)
{
	(void)state;
	char v[200] = "x"; /* then 'é' (2 bytes) repeated: byte 60 falls inside one */
	for (size_t i = 0; i < 60; i++)
		memcpy(v + 1 + 2 * i, "\xc3\xa9", 3);
	int rc = one("gateway", "log_level", v);
	expect_errors(rc, 1);
	expect_error(L(2), "\xc3\xa9...' for 'log_level'");
}

static void test_multiple_errors_all_reported(void **state)
{
	(void)state;
	static const char bad[] = "[gateway]\n"            /* 1 */
				  "name = ok\n"            /* 2 */
				  "max_packet_size = 12x\n" /* 3 */
				  "name = again\n"         /* 4 */
				  "[listener a]\n"         /* 5 */
				  "bind = localhost:80\n"  /* 6 */
				  "tls = maybe\n"          /* 7 */
				  "garbage line\n"         /* 8 */
				  "[listener a]\n"         /* 9 */
				  "[upstream]\n"           /* 10 */
				  "port = 70000\n"         /* 11 */
				  "keepalive = -1s\n"      /* 12 */
				  "[spool]\n"              /* 13 */
				  "max_bytes = 1K\n"       /* 14 */
				  "[decode d]\n"           /* 15 */
				  "min = 10\n"             /* 16 */
				  "max = 5\n"              /* 17 */
				  "[nope]\n";              /* 18 */
	int rc = parse(bad);
	expect_error(3, "invalid size '12x'");
	expect_error(4, "duplicate key 'name', first set at line 2");
	expect_error(6, "bind 'localhost:80'");
	expect_error(7, "invalid value 'maybe' for 'tls'");
	expect_error(8, "malformed line");
	expect_error(9, "duplicate section [listener a], first at line 5");
	expect_error(11, "out of range 1..65535");
	expect_error(12, "invalid duration '-1s'");
	expect_error(14, "out of range 4K..64G");
	expect_error(17, "min (10) must be less than max (5)");
	expect_error(18, "unknown section [nope]");
	/* cross-field errors at the header lines */
	expect_error(5, "listener 'a': 'cert' is required");
	expect_error(5, "listener 'a': 'key' is required");
	expect_error(5, "listener 'a': 'ca' is required");
	expect_error(10, "[upstream]: 'host' is required");
	expect_error(10, "[upstream]: 'ca' is required");
	expect_error(10, "[upstream]: 'cert' is required");
	expect_error(10, "[upstream]: 'key' is required");
	expect_error(15, "decode 'd': 'topic' is required");
	expect_errors(rc, 19);
	/* diagnostics carry the file name */
	assert_string_equal(diags[0].file, "test.conf");
}

/* ---- lifecycle, files, printing ---- */

static void test_cfg_free_after_failure_and_twice(void **state)
{
	(void)state;
	struct iotgw_config c;
	memset(&c, 0xa5, sizeof c); /* "or not": cfg_parse_string overwrites */
	int rc = cfg_parse_string("[listener a]\nbind = x\n[decode d]\ndevices = a b c\n"
				  "[decode d]\ndevices = e f\n[gateway]\nname = bad name\n",
				  strlen("[listener a]\nbind = x\n[decode d]\ndevices = a b c\n"
					 "[decode d]\ndevices = e f\n[gateway]\nname = bad name\n"),
				  "f", &c, NULL, NULL);
	assert_true(rc > 0);
	assert_int_equal(c.nrules, 1);
	assert_int_equal(c.rules[0].ndevices, 3);
	cfg_free(&c);
	assert_null(c.listeners);
	assert_int_equal(c.nlisteners, 0);
	cfg_free(&c);
	struct iotgw_config z = {0};
	cfg_free(&z);
	cfg_free(NULL);
}

static void test_load_file(void **state)
{
	(void)state;
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(BASE "[gateway]\nname = from-file\nbad = 1\n", f);
	fclose(f);
	ndiags = 0;
	int rc = cfg_load_file(path, &cfg, sink, NULL);
	expect_errors(rc, 1);
	expect_error(L(3), "unknown key 'bad'");
	assert_string_equal(diags[0].file, path);
	assert_string_equal(cfg.path, path);
	assert_string_equal(cfg.gateway.name, "from-file");
	cfg_free(&cfg);

	/* larger than 1 MiB: refused as a whole */
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 40000; i++)
		fputs("# 0123456789012345678901234567890\n", f);
	fclose(f);
	ndiags = 0;
	rc = cfg_load_file(path, &cfg, sink, NULL);
	expect_errors(rc, 1);
	expect_error(0, "file too large");
	cfg_free(&cfg);
	unlink(path);

	ndiags = 0;
	rc = cfg_load_file(path, &cfg, sink, NULL);
	expect_errors(rc, 1);
	expect_error(0, "cannot read: No such file or directory");
	assert_string_equal(cfg.path, path);
	cfg_free(&cfg);

	ndiags = 0;
	rc = cfg_load_file("/tmp", &cfg, sink, NULL);
	expect_errors(rc, 1);
	expect_error(0, "cannot read");
}

static void test_example_config_parses(void **state)
{
	(void)state;
	const char *path = "conf/iotgw.conf";
	if (access(path, R_OK) != 0)
		path = "../../conf/iotgw.conf";
	if (access(path, R_OK) != 0)
		skip();
	ndiags = 0;
	int rc = cfg_load_file(path, &cfg, sink, NULL);
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 0);
	/* One dual-stack listener: IPv4 and IPv6 share its crl and keys. */
	assert_int_equal(cfg.nlisteners, 1);
	assert_int_equal(cfg.listeners[0].nbinds, 2);
	assert_true(cfg.upstream.tls);
	assert_true(cfg.nrules >= 2);
}

static void test_diag_print(void **state)
{
	(void)state;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	assert_non_null(f);
	cfg_diag_print(f, CFG_ERROR, "a.conf", 12, "bad thing");
	cfg_diag_print(f, CFG_WARNING, "a.conf", 3, "odd thing");
	cfg_diag_print(f, CFG_ERROR, "a.conf", 0, "no listener");
	cfg_diag_print(f, CFG_WARNING, "a.conf", 0, "whole file");
	fclose(f);
	assert_string_equal(out, "a.conf:12: bad thing\n"
				 "a.conf:3: warning: odd thing\n"
				 "a.conf: no listener\n"
				 "a.conf: warning: whole file\n");
	free(out);
}

static void test_tls_mode_name(void **state)
{
	(void)state;
	assert_string_equal(cfg_tls_mode_name(CFG_TLS_OFF), "off");
	assert_string_equal(cfg_tls_mode_name(CFG_TLS_SERVER), "server");
	assert_string_equal(cfg_tls_mode_name(CFG_TLS_MUTUAL), "mutual");
}

static void test_null_sink_and_filename(void **state)
{
	(void)state;
	struct iotgw_config c;
	int rc = cfg_parse_string("[x]\n", 4, NULL, &c, nop_sink, NULL);
	assert_int_equal(rc, 3);
	assert_null(c.path);
	cfg_free(&c);
	ndiags = 0;
	rc = cfg_parse_string("[x]\n", 4, NULL, &c, sink, NULL);
	assert_int_equal(rc, 3);
	assert_string_equal(diags[0].file, "<config>");
	cfg_free(&c);
}

static void test_many_sections(void **state)
{
	(void)state;
	/* enough listeners and rules to make the arrays grow several times */
	size_t cap = 200000, n = 0;
	char *big = malloc(cap);
	assert_non_null(big);
	n += (size_t)snprintf(big + n, cap - n, "[upstream]\nhost = h\ntls = off\n");
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(big + n, cap - n,
				      "[listener l%d]\nbind = 127.0.0.1:%d\ntls = off\n"
				      "[decode d%d]\ntopic = t/%d\n",
				      i, 1000 + i, i, i);
	int rc = parse_len(big, n);
	expect_errors(rc, 0);
	assert_int_equal(cfg.nlisteners, 300);
	assert_int_equal(cfg.nrules, 300);
	assert_string_equal(cfg.listeners[299].name, "l299");
	assert_int_equal(cfg.listeners[299].binds[0].port, 1299);
	assert_string_equal(cfg.rules[299].topic_filter, "t/299");
	free(big);
}


/* ---- device trust (SPEC Issue 4) ---- */

/* BASE plus "[listener t]" on line 11 (bind, cert, key, ca on 12..15) plus
 * extra from line 16 on: LT(n) is line n of extra. The listener is
 * cfg.listeners[1]. */
#define LT(n) (15 + (n))
static int trust(const char *tls, const char *extra)
{
	char buf[4096];
	snprintf(buf, sizeof buf,
		 "[listener t]\nbind = 127.0.0.1:9\ncert = c\nkey = k\n%s\n%s",
		 strcmp(tls, "mutual") == 0 ? "ca = a" : strcmp(tls, "server") == 0
			 ? "tls = server" : "tls = off",
		 extra);
	return parse_base(buf);
}

static void test_trust_every_key(void **state)
{
	(void)state;
	int rc = parse_base("[listener t]\n"                                /* 11 */
			    "bind = 127.0.0.1:9\n"                          /* 12 */
			    "cert = /etc/iotgw/server.pem\n"                /* 13 */
			    "key = /etc/iotgw/server.key\n"                 /* 14 */
			    "ca = /etc/iotgw/field-ca.pem\n"                /* 15 */
			    "crl = /etc/iotgw/devices-ca.crl.pem\n"         /* 16 */
			    "identity = serial\n"                           /* 17 */
			    "client_id = exact\n"                           /* 18 */
			    "publish_acl = a/{device}/+ b/#\n"              /* 19 */
			    "cert_expiry_warning = 7d\n"                    /* 20 */
			    "tls_profile = modern\n"                        /* 21 */
			    "ciphers = ECDHE-ECDSA-AES128-GCM-SHA256\n"     /* 22 */
			    "ciphersuites = TLS_AES_128_GCM_SHA256\n"       /* 23 */
			    "groups = P-256\n"                              /* 24 */
			    "session_resumption = no\n"                     /* 25 */
			    "disconnect_revoked = off\n"                    /* 26 */
			    "[listener p]\n"                                /* 27 */
			    "bind = 127.0.0.1:10\n"                         /* 28 */
			    "tls = server\n"                                /* 29 */
			    "cert = c\n"                                    /* 30 */
			    "key = k\n"                                     /* 31 */
			    "password_file = /etc/iotgw/passwords\n"        /* 32 */
			    "client_id = any\n"                             /* 33 */
			    "session_lifetime = 1d\n"                       /* 34 */
			    "[gateway]\n"                                   /* 35 */
			    "watch_tls_files = yes\n"                       /* 36 */
			    "[spool]\n"                                     /* 37 */
			    "dir = /srv/iotgw\n"                            /* 38 */
			    "durability = os\n");                           /* 39 */
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 0);
	const struct cfg_listener *l = &cfg.listeners[1];
	assert_string_equal(l->crl.path, "/etc/iotgw/devices-ca.crl.pem");
	assert_int_equal(l->crl.line, 16);
	assert_int_equal(l->identity, CFG_ID_SERIAL);
	assert_int_equal(l->client_id, AUTH_CID_EXACT);
	assert_int_equal(l->npublish_acl, 2);
	assert_string_equal(l->publish_acl[0], "a/{device}/+");
	assert_string_equal(l->publish_acl[1], "b/#");
	assert_int_equal(l->publish_acl_line, 19);
	assert_int_equal(l->cert_expiry_warning_s, 7 * 86400);
	assert_int_equal(l->tls_profile, CFG_TLS_MODERN);
	assert_int_equal(l->tls_profile_line, 21);
	assert_string_equal(l->ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
	assert_int_equal(l->ciphers_line, 22);
	assert_string_equal(l->ciphersuites, "TLS_AES_128_GCM_SHA256");
	assert_int_equal(l->ciphersuites_line, 23);
	assert_int_equal(l->groups_line, 24);
	assert_false(l->session_resumption);
	assert_int_equal(l->session_lifetime_s, 7200);
	assert_false(l->disconnect_revoked);
	l = &cfg.listeners[2];
	assert_string_equal(l->password_file.path, "/etc/iotgw/passwords");
	assert_int_equal(l->password_file.line, 32);
	assert_int_equal(l->client_id, AUTH_CID_ANY);
	assert_int_equal(l->session_lifetime_s, 86400);
	assert_true(cfg.gateway.watch_tls_files);
	assert_string_equal(cfg.spool.dir, "/srv/iotgw");
	assert_int_equal(cfg.spool.durability, CFG_DURABLE_OS);
}

static void test_trust_enums_and_bools(void **state)
{
	(void)state;
	static const struct {
		const char *extra, *msg;
	} bad[] = {
		{"identity = SERIAL\n",
		 "invalid value 'SERIAL' for 'identity' (allowed: cn, san-dns, san-uri, san-email, "
		 "serial)"},
		{"client_id = same\n",
		 "invalid value 'same' for 'client_id' (allowed: match, exact, any)"},
		{"tls_profile = strict\n",
		 "invalid value 'strict' for 'tls_profile' (allowed: modern, compatible, legacy)"},
		{"session_resumption = maybe\n",
		 "invalid value 'maybe' for 'session_resumption' (allowed: yes, no, true, false, "
		 "on, off, 1, 0)"},
		{"disconnect_revoked = 2\n", "invalid value '2' for 'disconnect_revoked'"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = trust("mutual", bad[i].extra);
		expect_errors(rc, 1);
		expect_error(LT(1), bad[i].msg);
	}
	int rc = one("gateway", "watch_tls_files", "sometimes");
	expect_errors(rc, 1);
	expect_error(L(2), "invalid value 'sometimes' for 'watch_tls_files' (allowed: yes, no");
	static const struct {
		const char *v;
		bool b;
	} bools[] = {{"yes", true}, {"NO", false}, {"On", true}, {"false", false}, {"1", true},
		     {"0", false}};
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
		char extra[64];
		snprintf(extra, sizeof extra, "session_resumption = %s\n", bools[i].v);
		expect_errors(trust("mutual", extra), 0);
		assert_int_equal(cfg.listeners[1].session_resumption, bools[i].b);
		snprintf(extra, sizeof extra, "disconnect_revoked = %s\n", bools[i].v);
		expect_errors(trust("mutual", extra), 0);
		assert_int_equal(cfg.listeners[1].disconnect_revoked, bools[i].b);
		expect_errors(one("gateway", "watch_tls_files", bools[i].v), 0);
		assert_int_equal(cfg.gateway.watch_tls_files, bools[i].b);
	}
	static const struct {
		const char *v;
		enum cfg_tls_profile p;
	} profiles[] = {{"modern", CFG_TLS_MODERN},
			{"compatible", CFG_TLS_COMPATIBLE},
			{"legacy", CFG_TLS_LEGACY}};
	for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
		char extra[64];
		snprintf(extra, sizeof extra, "tls_profile = %s\n", profiles[i].v);
		expect_errors(trust("mutual", extra), 0);
		assert_int_equal(cfg.listeners[1].tls_profile, profiles[i].p);
		assert_int_equal(cfg.listeners[1].tls_profile_line, LT(1));
		assert_string_equal(cfg_tls_profile_name(profiles[i].p), profiles[i].v);
	}
	static const struct {
		const char *v;
		enum auth_cid_policy c;
	} ids[] = {{"match", AUTH_CID_MATCH},
		   {"exact", AUTH_CID_EXACT},
		   {"any", AUTH_CID_ANY}};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		char extra[64];
		snprintf(extra, sizeof extra, "client_id = %s\n", ids[i].v);
		expect_errors(trust("mutual", extra), 0);
		assert_int_equal(cfg.listeners[1].client_id, ids[i].c);
	}
}

static void test_publish_acl(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"#", "+/+", "{device}", "{device}/#", "sensors/{device}/temperature",
		"a/+/{device}/+/#", "/leading", "x/{device}/y\t  z/#",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char extra[128];
		snprintf(extra, sizeof extra, "publish_acl = %s\n", ok[i]);
		int rc = trust("mutual", extra);
		expect_errors(rc, 0);
		assert_int_equal(count(CFG_WARNING), 0);
		assert_true(cfg.listeners[1].npublish_acl >= 1);
	}
	int rc = trust("mutual", "publish_acl = x/{device}/y\t  z/#\n");
	expect_errors(rc, 0);
	assert_int_equal(cfg.listeners[1].npublish_acl, 2);
	assert_string_equal(cfg.listeners[1].publish_acl[0], "x/{device}/y");
	assert_string_equal(cfg.listeners[1].publish_acl[1], "z/#");

	/* none: no check, and a warning that says what that means */
	rc = trust("off", "publish_acl = none\n");
	expect_errors(rc, 0);
	expect_warning(LT(1), "listener 't': publish_acl = none: devices may publish to any topic");
	assert_int_equal(cfg.listeners[1].npublish_acl, 0);
	assert_null(cfg.listeners[1].publish_acl);
	/* the default on the other listener is untouched */
	assert_int_equal(cfg.listeners[0].npublish_acl, 3);

	static const struct {
		const char *v, *msg;
	} bad[] = {
		{"a/#/b", "invalid publish_acl pattern 'a/#/b': '#' must be the last level"},
		{"a+/b", "invalid publish_acl pattern 'a+/b': '+' and '#' must be a whole level"},
		{"a/b#", "'+' and '#' must be a whole level"},
		{"{devices}/#",
		 "invalid publish_acl pattern '{devices}/#': '{' and '}' are only allowed in a "
		 "whole {device} level"},
		{"dev-{device}/#", "only allowed in a whole {device} level"},
		{"x/{gateway}", "only allowed in a whole {device} level"},
		{"ok/# none", "'none' must be the only value of 'publish_acl'"},
		{"none none", "'none' must be the only value of 'publish_acl'"},
		{"ok/# bad\xc3\x28", "not valid UTF-8"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char extra[128];
		snprintf(extra, sizeof extra, "publish_acl = %s\n", bad[i].v);
		rc = trust("mutual", extra);
		expect_errors(rc, 1);
		expect_error(LT(1), bad[i].msg);
		/* a bad value leaves the default, never half a list */
		assert_int_equal(cfg.listeners[1].npublish_acl, 3);
		assert_string_equal(cfg.listeners[1].publish_acl[0], "{device}/#");
	}
	rc = trust("mutual", "publish_acl =\n");
	expect_errors(rc, 1);
	expect_error(LT(1), "empty value for 'publish_acl'");

	char big[1200] = "publish_acl =";
	for (int i = 0; i < 65; i++)
		snprintf(big + strlen(big), sizeof big - strlen(big), " t%d", i);
	snprintf(big + strlen(big), sizeof big - strlen(big), "\n");
	rc = trust("mutual", big);
	expect_errors(rc, 1);
	expect_error(LT(1), "more than 64 patterns in 'publish_acl'");

	char longpat[1100] = "publish_acl = ";
	size_t n = strlen(longpat);
	memset(longpat + n, 'a', 1025);
	longpat[n + 1025] = '\n';
	longpat[n + 1026] = '\0';
	rc = trust("mutual", longpat);
	expect_errors(rc, 1);
	expect_error(LT(1), "longer than 1024 bytes");

	rc = trust("mutual", "publish_acl = a/#\npublish_acl = b/#\n");
	expect_errors(rc, 1);
	expect_error(LT(2), "duplicate key 'publish_acl', first set at line 16");
}

static void test_password_file_and_crl_rules(void **state)
{
	(void)state;
	int rc = trust("mutual", "password_file = /etc/iotgw/pw\n");
	expect_errors(rc, 1);
	expect_error(LT(1), "listener 't': 'password_file' cannot be used with tls = mutual");
	rc = trust("server", "password_file = /etc/iotgw/pw\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 0);
	rc = trust("off", "password_file = /etc/iotgw/pw\n");
	expect_errors(rc, 0);
	assert_string_equal(cfg.listeners[1].password_file.path, "/etc/iotgw/pw");

	rc = trust("server", "crl = /etc/iotgw/ca.crl\n");
	expect_errors(rc, 1);
	expect_error(LT(1), "listener 't': 'crl' requires tls = mutual");
	rc = trust("off", "crl = /etc/iotgw/ca.crl\n");
	expect_errors(rc, 1);
	expect_error(LT(1), "'crl' requires tls = mutual");
	rc = trust("mutual", "crl = /etc/iotgw/ca.crl\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 0);

	/* upstream crl: fine with mutual, ignored with tls = off */
	rc = parse_base("crl = /etc/iotgw/upstream-ca.crl\n");
	expect_errors(rc, 0);
	assert_string_equal(cfg.upstream.crl.path, "/etc/iotgw/upstream-ca.crl");
	assert_int_equal(cfg.upstream.crl.line, L(1));
	rc = parse("[listener l]\nbind = 127.0.0.1:1\ntls = off\n"
		   "[upstream]\nhost = h\ntls = off\ncrl = x\n");
	expect_errors(rc, 0);
	expect_warning(7, "[upstream]: 'crl' is ignored when tls = off");
}

static void test_trust_keys_ignored_warnings(void **state)
{
	(void)state;
	/* tls = server without password_file: the client id IS the device id */
	int rc = trust("server", "client_id = exact\ncert_expiry_warning = 1d\n"
				 "disconnect_revoked = no\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 3);
	expect_warning(LT(1), "listener 't': 'client_id' is ignored unless tls = mutual or "
			      "password_file is set");
	expect_warning(LT(2), "listener 't': 'cert_expiry_warning' is ignored unless tls = mutual");
	expect_warning(LT(3), "listener 't': 'disconnect_revoked' is ignored unless tls = mutual");
	/* with a password file the client id check applies */
	rc = trust("server", "password_file = p\nclient_id = exact\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 0);

	rc = trust("off", "tls_profile = modern\nsession_resumption = no\nsession_lifetime = 1h\n");
	expect_errors(rc, 0);
	expect_warning(LT(1), "listener 't': 'tls_profile' is ignored when tls = off");
	expect_warning(LT(2), "'session_resumption' is ignored when tls = off");
	expect_warning(LT(3), "'session_lifetime' is ignored when tls = off");

	rc = trust("mutual", "session_resumption = no\nsession_lifetime = 1h\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 1);
	expect_warning(LT(2), "'session_lifetime' is ignored when session_resumption = no");

	rc = trust("mutual", "tls_min_version = 1.3\nciphers = AES128-SHA\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 1);
	expect_warning(LT(2), "'ciphers' is ignored with tls_min_version = 1.3");
}

static void test_tls_profile_legacy_warnings(void **state)
{
	(void)state;
	int rc = trust("mutual", "tls_profile = legacy\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 1);
	expect_warning(LT(1), "listener 't': tls_profile = legacy accepts TLS 1.2 RSA key exchange "
			      "(no forward secrecy");
	rc = trust("server", "tls_min_version = 1.3\ntls_profile = legacy\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 1);
	expect_warning(LT(2), "tls_profile = legacy has no effect with tls_min_version = 1.3");
	/* an explicit list overrides the profile: nothing to warn about here
	 * (the daemon still logs event=tls_legacy if the list has RSA suites) */
	rc = trust("mutual", "tls_profile = legacy\nciphers = ECDHE-ECDSA-AES128-GCM-SHA256\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 0);
	rc = trust("mutual", "tls_profile = modern\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 0);
}

static void test_trust_durations(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		unsigned s;
	} ok[] = {{"30d", 30 * 86400}, {"0", 0},         {"0d", 0},     {"1h", 3600},
		  {"365d", 365 * 86400}, {"2 d", 2 * 86400}, {"48h", 172800}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char extra[64];
		snprintf(extra, sizeof extra, "cert_expiry_warning = %s\n", ok[i].v);
		int rc = trust("mutual", extra);
		expect_errors(rc, 0);
		assert_int_equal(cfg.listeners[1].cert_expiry_warning_s, ok[i].s);
	}
	static const struct {
		const char *key, *v, *msg;
	} bad[] = {
		{"cert_expiry_warning", "30m",
		 "duration '30m' for 'cert_expiry_warning' out of range 0 or 1h..365d"},
		{"cert_expiry_warning", "366d", "out of range 0 or 1h..365d"},
		{"cert_expiry_warning", "1.5d",
		 "invalid duration '1.5d' for 'cert_expiry_warning'"},
		{"cert_expiry_warning", "d", "invalid duration 'd'"},
		{"cert_expiry_warning", "-1d", "invalid duration '-1d'"},
		{"cert_expiry_warning", "99999999999999999999d", "out of range 0 or 1h..365d"},
		{"cert_expiry_warning", "999999999999999999999999d", "out of range"},
		{"cert_expiry_warning", "3D", "invalid duration '3D'"},
		{"session_lifetime", "30s",
		 "duration '30s' for 'session_lifetime' out of range 1m..7d"},
		{"session_lifetime", "8d", "out of range 1m..7d"},
		{"session_lifetime", "0", "out of range 1m..7d"},
		{"session_lifetime", "90500ms", "must be whole seconds"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char extra[96];
		snprintf(extra, sizeof extra, "%s = %s\n", bad[i].key, bad[i].v);
		int rc = trust("mutual", extra);
		expect_errors(rc, 1);
		expect_error(LT(1), bad[i].msg);
		assert_int_equal(cfg.listeners[1].cert_expiry_warning_s, 30 * 86400);
		assert_int_equal(cfg.listeners[1].session_lifetime_s, 7200);
	}
	/* days are a unit of every duration */
	int rc = one("gateway", "max_keepalive", "1d");
	expect_errors(rc, 1);
	expect_error(L(2), "duration '1d' for 'max_keepalive' out of range 0 or 1s..18h");
	expect_errors(trust("mutual", "session_lifetime = 7d\n"), 0);
	assert_int_equal(cfg.listeners[1].session_lifetime_s, 7 * 86400);
	expect_errors(trust("mutual", "session_lifetime = 1m\n"), 0);
	assert_int_equal(cfg.listeners[1].session_lifetime_s, 60);
}

static void test_spool_dir_durability(void **state)
{
	(void)state;
	int rc = one("spool", "durability", "never");
	expect_errors(rc, 1);
	expect_error(L(2), "invalid value 'never' for 'durability' (allowed: fsync, os)");
	rc = one("spool", "durability", "fsync");
	expect_errors(rc, 0);
	assert_int_equal(cfg.spool.durability, CFG_DURABLE_FSYNC);
	rc = one("spool", "dir", "/var/lib/iotgw-test");
	expect_errors(rc, 0);
	assert_string_equal(cfg.spool.dir, "/var/lib/iotgw-test");
	rc = one("spool", "dir", "");
	expect_errors(rc, 1);
	expect_error(L(2), "empty value for 'dir'");
	assert_string_equal(cfg.spool.dir, "/var/lib/iotgw");
}

static void test_ciphers_override_lines(void **state)
{
	(void)state;
	int rc = trust("mutual", "groups = P-256\nciphersuites = TLS_AES_128_GCM_SHA256\n"
				 "ciphers = AES128-SHA\n");
	expect_errors(rc, 0);
	const struct cfg_listener *l = &cfg.listeners[1];
	assert_int_equal(l->groups_line, LT(1));
	assert_int_equal(l->ciphersuites_line, LT(2));
	assert_int_equal(l->ciphers_line, LT(3));
	assert_int_equal(l->tls_profile_line, L(1)); /* not set: the header */
	rc = trust("mutual", "ciphers =\n");
	expect_errors(rc, 1);
	expect_error(LT(1), "empty value for 'ciphers'");
}

/* [downlink]: templates checked where they are written, defaults, and a
 * status topic that would come back as a command refused. */
static void test_downlink(void **state)
{
	(void)state;
	expect_errors(parse_base(""), 0);
	assert_string_equal(cfg.downlink.topic, "none");
	assert_string_equal(cfg.downlink.device_topic, "iot-2/cmd/{command}/fmt/json");
	assert_string_equal(cfg.downlink.status_topic, "none");
	assert_int_equal(cfg.downlink.command_ttl_ms, 300000);
	assert_int_equal(cfg.downlink.max_payload, 4096);
	assert_int_equal(cfg.downlink.max_queued_per_device, 32);
	assert_int_equal(cfg.downlink.max_queued, 10000);
	assert_string_equal(cfg.listeners[0].subscribe_acl, "iot-2/cmd/+/fmt/+");
	teardown(NULL);
	expect_errors(parse_base("[downlink]\ntopic = commands/{gateway}/{device}/{command}\n"
				 "status_topic = {topic}/status\ncommand_ttl = 0\n"),
		      0);
	assert_int_equal(cfg.downlink.command_ttl_ms, 0);
	teardown(NULL);
	expect_errors(one("downlink", "topic", "commands/{device}"), 1);
	expect_error(L(2), "{command}");
	teardown(NULL);
	expect_errors(one("downlink", "device_topic", "iot-2/cmd/+/fmt/json"), 1);
	expect_error(L(2), "not allowed");
	teardown(NULL);
	expect_errors(parse_base("[downlink]\ntopic = c/{device}/{command}\n"
				 "status_topic = c/{device}/status\n"),
		      1);
	expect_error(L(3), "would be received as a command");
	teardown(NULL);
	expect_errors(parse_base("tls = off\n[downlink]\ntopic = c/{device}/{command}\n"), 0);
	expect_warning(L(3), "before the command is on disk");
	teardown(NULL);
	expect_errors(parse_base("[listener p]\nbind = 127.0.0.1:1883\ntls = off\n"
				 "subscribe_acl = a/#/b\n"),
		      1);
	expect_error(L(4), "'#' must be the last level");
}

/* PROXY protocol keys: proxy_protocol, proxy_from, proxy_identity. */
static void test_proxy_keys(void **state)
{
	(void)state;
	int rc = trust("mutual", "proxy_protocol = v2\n"
				 "proxy_from = 10.0.0.0/8 192.168.1.7, 2001:db8::/32\n");
	expect_errors(rc, 0);
	assert_int_equal(count(CFG_WARNING), 0);
	const struct cfg_listener *l = &cfg.listeners[1];
	assert_int_equal(l->proxy_protocol, CFG_PROXY_V2);
	assert_int_equal(l->proxy_identity, CFG_PROXY_ID_OFF);
	assert_int_equal(l->nproxy_from, 3);
	assert_int_equal(l->proxy_from[0].prefix, 8);
	assert_int_equal(l->proxy_from[1].prefix, 32);
	assert_int_equal(l->proxy_from[2].prefix, 32);
	assert_int_equal(cfg.listeners[0].proxy_protocol, CFG_PROXY_OFF);
	assert_int_equal(cfg.listeners[0].nproxy_from, 0);
	assert_string_equal(cfg_proxy_mode_name(CFG_PROXY_OPTIONAL), "optional");

	rc = trust("mutual", "proxy_from = 10.0.0.0/8\n");
	expect_errors(rc, 0);
	expect_warning(LT(1), "'proxy_from' is ignored when proxy_protocol = off");

	/* ssl-cn: tls = off, v2 only, no password_file; the CN is authenticated, so
	 * client_id applies. */
	rc = trust("off", "proxy_protocol = v2\nproxy_from = 127.0.0.1\n"
			  "proxy_identity = ssl-cn\nclient_id = exact\n");
	expect_errors(rc, 0);
	assert_int_equal(cfg.listeners[1].proxy_identity, CFG_PROXY_ID_SSL_CN);
	expect_warning(15, "takes devices authenticated by its balancer (proxy_identity = "
			   "ssl-cn) over plaintext");
	for (size_t i = 0; i < ndiags; i++)
		assert_null(strstr(diags[i].msg, "'client_id' is ignored"));

	/* One error each, at the line of the key. */
	static const struct {
		const char *tls, *extra;
		int line;
		const char *error;
	} bad[] = {
		{"mutual", "proxy_protocol = v1\n", LT(1),
		 "listener 't': proxy_protocol = v1 requires proxy_from"},
		{"mutual", "proxy_protocol = optional\nproxy_from = 10.0.0.1/8\n", LT(2),
		 "proxy_from '10.0.0.1/8': host bits set after the /8 prefix (the range is "
		 "10.0.0.0/8)"},
		{"mutual", "proxy_protocol = v2\nproxy_from = 10.0.0.0/8 gw.example\n", LT(2),
		 "proxy_from 'gw.example': not a numeric IPv4 or IPv6 address"},
		{"mutual", "proxy_protocol = v2\nproxy_from = ::/129\n", LT(2),
		 "proxy_from '::/129': prefix length after '/' must be 0-128"},
		{"mutual", "proxy_protocol = v2\nproxy_from = ,\n", LT(2),
		 "empty value for 'proxy_from'"},
		{"mutual", "proxy_protocol = v3\n", LT(1), "invalid value 'v3' for 'proxy_protocol'"},
		{"mutual", "proxy_protocol = v2\nproxy_from = 127.0.0.1\nproxy_identity = ssl-cn\n",
		 LT(3), "proxy_identity = ssl-cn requires tls = off"},
		{"off", "proxy_protocol = v1\nproxy_from = 127.0.0.1\nproxy_identity = ssl-cn\n",
		 LT(3), "proxy_identity = ssl-cn requires proxy_protocol = v2"},
		{"off", "proxy_identity = ssl-cn\n", LT(1),
		 "proxy_identity = ssl-cn requires proxy_protocol = v2"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		rc = trust(bad[i].tls, bad[i].extra);
		expect_errors(rc, 1);
		expect_error(bad[i].line, bad[i].error);
	}
	char many[1024] = "proxy_protocol = v2\nproxy_from =";
	for (int i = 0; i <= CFG_PROXY_FROM_MAX; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), " 10.0.%d.0/24", i);
	snprintf(many + strlen(many), sizeof many - strlen(many), "\n");
	rc = trust("mutual", many);
	expect_errors(rc, 1);
	expect_error(LT(2), "proxy_from '10.0.32.0/24': more than 32 ranges");
	rc = trust("server", "password_file = /etc/iotgw/pw\nproxy_protocol = v2\n"
			     "proxy_from = 10.0.0.0/8\nproxy_identity = ssl-cn\n");
	expect_errors(rc, 2);
	expect_error(LT(4), "proxy_identity = ssl-cn requires tls = off");
	expect_error(LT(1), "'password_file' cannot be used with proxy_identity = ssl-cn");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
		T(test_full_config_every_key),
		T(test_defaults),
		T(test_downlink),
		T(test_decode_defaults),
		T(test_client_id_from_gateway_name),
		T(test_unknown_section),
		T(test_keys_resume_after_unknown_section),
		T(test_unknown_key_names_section),
		T(test_duplicate_key),
		T(test_duplicate_key_bad_first_value),
		T(test_duplicate_named_section),
		T(test_duplicate_singleton_section_keys_still_checked),
		T(test_duplicate_decode_and_upstream_sections),
		T(test_key_outside_section),
		T(test_malformed_lines),
		T(test_section_names),
		T(test_section_name_32_chars_ok),
		T(test_badly_named_section_keys_checked),
		T(test_empty_value),
		T(test_empty_username_password_allowed),
		T(test_password_requires_username),
		T(test_uint_values),
		T(test_durations),
		T(test_max_keepalive_zero_or_range),
		T(test_sizes),
		T(test_doubles),
		T(test_enums),
		T(test_listener_enums),
		T(test_bind_ipv4_ipv6),
		T(test_bind_bad),
		T(test_duplicate_bind),
		T(test_wildcard_bind_overlap),
		T(test_bind_several),
		T(test_revocation_twins),
		T(test_no_listener),
		T(test_upstream_required),
		T(test_empty_file),
		T(test_listener_requirements),
		T(test_ca_identity_warnings_on_non_mutual),
		T(test_plaintext_listener_warning),
		T(test_upstream_mutual_requires_files),
		T(test_upstream_tls_off_warning),
		T(test_reconnect_min_max),
		T(test_decode_min_max),
		T(test_scale_offset_on_non_adc),
		T(test_decode_topic),
		T(test_decode_devices),
		T(test_topic_templates),
		T(test_string_checks),
		T(test_comments_and_whitespace),
		T(test_inline_hash_is_value),
		T(test_crlf),
		T(test_bom),
		T(test_no_trailing_newline_and_not_nul_terminated),
		T(test_long_line),
		T(test_control_characters),
		T(test_messages_escape_values),
		T(test_messages_do_not_split_utf8),
		T(test_multiple_errors_all_reported),
		T(test_cfg_free_after_failure_and_twice),
		T(test_load_file),
		T(test_example_config_parses),
		T(test_diag_print),
		T(test_tls_mode_name),
		T(test_null_sink_and_filename),
		T(test_many_sections),
		T(test_trust_every_key),
		T(test_trust_enums_and_bools),
		T(test_proxy_keys),
		T(test_publish_acl),
		T(test_password_file_and_crl_rules),
		T(test_trust_keys_ignored_warnings),
		T(test_tls_profile_legacy_warnings),
		T(test_trust_durations),
		T(test_spool_dir_durability),
		T(test_ciphers_override_lines),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
