/* Unit tests for src/trust.c: the CONNECT verdict (CONNACK code, log event,
 * device id) for every combination of tls mode, password file and client_id
 * policy that matters, with plain and Watson client ids and certificate
 * identities present or missing; the publish_acl enforcement rule; the
 * policy built from a listener's config; certificate expiry warnings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../src/trust.h"

#define ID64 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
#define ID65 ID64 "x"
#define LISTENER "devices"

/* dev1 and dev2 have password "s3cret", dev3 "other". */
static struct auth_pwfile *pwfile;

static void add_entry(char *text, size_t cap, const char *device, const char *pw)
{
	static const uint8_t salt[AUTH_PW_SALT_LEN] = "0123456789abcdef";
	char line[AUTH_PW_LINE_MAX], why[160];
	int rc = auth_pw_hash_line(device, (const uint8_t *)pw, strlen(pw), AUTH_PW_MIN_ITERATIONS,
				   salt, sizeof salt, line, sizeof line, why, sizeof why);
	assert_int_equal(rc, 0);
	size_t n = strlen(text);
	int w = snprintf(text + n, cap - n, "%s\n", line);
	assert_true(w > 0 && (size_t)w < cap - n);
}

static int setup(void **state)
{
	(void)state;
	char text[4 * AUTH_PW_LINE_MAX] = "";
	add_entry(text, sizeof text, "dev1", "s3cret");
	add_entry(text, sizeof text, "dev2", "s3cret");
	add_entry(text, sizeof text, "dev3", "other");
	return auth_pwfile_parse(text, strlen(text), "pw", &pwfile, NULL, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	auth_pwfile_free(pwfile);
	return 0;
}

/* ---- trust_connect ---- */

/* pw: NO_PW or PW (a password_file), or BAL: no password file and
 * proxy_identity = ssl-cn (the balancer's CN is the certificate identity). */
enum { NO_PW, PW, BAL };

struct connect_case {
	int line;
	enum cfg_tls_mode tls;
	int pw; /* NO_PW, PW (the listener has a password_file) or BAL */
	enum auth_cid_policy cid_policy;
	const char *cert;     /* identity from the certificate; "" when unusable */
	const char *client_id;
	const char *user;     /* NULL: no user name in the CONNECT */
	const char *password; /* NULL: no password */
	uint8_t connack;
	enum iotgw_event event;
	const char *device; /* what the buffer holds afterwards, refusals included */
	const char *why;    /* a part of the reason; NULL: not checked */
};

#define ACC MQTT_CONNACK_ACCEPTED
#define IDREJ MQTT_CONNACK_IDENTIFIER_REJECTED
#define BADPW MQTT_CONNACK_BAD_USERNAME_PASSWORD
#define NOTAUTH MQTT_CONNACK_NOT_AUTHORIZED
#define OFF CFG_TLS_OFF
#define SERVER CFG_TLS_SERVER
#define MUTUAL CFG_TLS_MUTUAL
#define MATCH AUTH_CID_MATCH
#define EXACT AUTH_CID_EXACT
#define ANY AUTH_CID_ANY
#define WATSON1 "d:acme:sensor:dev1"
#define C(...) {__LINE__, __VA_ARGS__}

static const struct connect_case connect_cases[] = {
	/* No authenticated identity (tls = off or server, no password file): the
	 * device id is the client id, or the <id> of a Watson one; the client_id
	 * policy is not applied and a certificate identity is never looked at. */
	C(OFF, NO_PW, MATCH, "", "dev1", NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(OFF, NO_PW, MATCH, "", WATSON1, NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(OFF, NO_PW, EXACT, "", WATSON1, NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(OFF, NO_PW, ANY, "", WATSON1, NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(OFF, NO_PW, MATCH, "", "d:o:t:a:b", NULL, NULL, ACC, EV_NONE, "a:b", NULL),
	C(OFF, NO_PW, MATCH, "certdev", "dev1", NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(OFF, NO_PW, MATCH, "", "dev1", "dev2", "wrong", ACC, EV_NONE, "dev1", NULL),
	C(OFF, NO_PW, MATCH, "", ID64, NULL, NULL, ACC, EV_NONE, ID64, NULL),
	/* Not Watson forms: the whole client id is the device id. */
	C(OFF, NO_PW, MATCH, "", "d:acme", NULL, NULL, ACC, EV_NONE, "d:acme", NULL),
	C(OFF, NO_PW, MATCH, "", "D:acme:sensor:dev1", NULL, NULL, ACC, EV_NONE,
	  "D:acme:sensor:dev1", NULL),
	/* Unlike auth_watson_device, the device id of an unauthenticated client
	 * takes an empty org or type: "d::t:x" is device x (kept as it was). */
	C(OFF, NO_PW, MATCH, "", "d::sensor:dev1", NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	/* Client ids that give no usable device id: refused as identifiers. */
	C(OFF, NO_PW, MATCH, "", "", NULL, NULL, IDREJ, EV_CONNECT_REFUSED, "",
	  "is not a usable device id"),
	C(OFF, NO_PW, ANY, "", "a/b", NULL, NULL, IDREJ, EV_CONNECT_REFUSED, "", "\"a/b\""),
	C(OFF, NO_PW, MATCH, "", "dev 1", NULL, NULL, IDREJ, EV_CONNECT_REFUSED, "", NULL),
	C(OFF, NO_PW, MATCH, "", "dev+", NULL, NULL, IDREJ, EV_CONNECT_REFUSED, "", NULL),
	C(OFF, NO_PW, MATCH, "", "d:acme:sensor:", NULL, NULL, IDREJ, EV_CONNECT_REFUSED, "", NULL),
	C(OFF, NO_PW, MATCH, "", "d:acme:sensor:a#", NULL, NULL, IDREJ, EV_CONNECT_REFUSED, "",
	  NULL),
	C(OFF, NO_PW, MATCH, "", ID65, NULL, NULL, IDREJ, EV_CONNECT_REFUSED, "", NULL),
	C(SERVER, NO_PW, MATCH, "", "dev1", NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(SERVER, NO_PW, EXACT, "", WATSON1, NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(SERVER, NO_PW, MATCH, "certdev", "dev2", NULL, NULL, ACC, EV_NONE, "dev2", NULL),
	C(SERVER, NO_PW, MATCH, "", "", NULL, NULL, IDREJ, EV_CONNECT_REFUSED, "", NULL),
	C(SERVER, NO_PW, ANY, "", "a/b", NULL, NULL, IDREJ, EV_CONNECT_REFUSED, "", NULL),

	/* tls = mutual: the device is its certificate; the client id must fit it. */
	C(MUTUAL, NO_PW, MATCH, "dev1", "dev1", NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(MUTUAL, NO_PW, MATCH, "dev1", WATSON1, NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(MUTUAL, NO_PW, MATCH, "dev1", "dev2", NULL, NULL, NOTAUTH, EV_CLIENT_ID_MISMATCH, "dev1",
	  "client id \"dev2\" does not match device dev1 (client_id = match)"),
	C(MUTUAL, NO_PW, MATCH, "dev1", "d:acme:sensor:dev2", NULL, NULL, NOTAUTH,
	  EV_CLIENT_ID_MISMATCH, "dev1", NULL),
	C(MUTUAL, NO_PW, MATCH, "dev1", "d::sensor:dev1", NULL, NULL, NOTAUTH,
	  EV_CLIENT_ID_MISMATCH, "dev1", NULL),
	C(MUTUAL, NO_PW, MATCH, "dev1", "", NULL, NULL, NOTAUTH, EV_CLIENT_ID_MISMATCH, "dev1",
	  NULL),
	C(MUTUAL, NO_PW, MATCH, "dev1", "a/b", NULL, NULL, NOTAUTH, EV_CLIENT_ID_MISMATCH, "dev1",
	  NULL),
	C(MUTUAL, NO_PW, EXACT, "dev1", "dev1", NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(MUTUAL, NO_PW, EXACT, "dev1", WATSON1, NULL, NULL, NOTAUTH, EV_CLIENT_ID_MISMATCH, "dev1",
	  "(client_id = exact)"),
	C(MUTUAL, NO_PW, EXACT, "dev1", "", NULL, NULL, NOTAUTH, EV_CLIENT_ID_MISMATCH, "dev1",
	  NULL),
	C(MUTUAL, NO_PW, ANY, "dev1", "dev2", NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(MUTUAL, NO_PW, ANY, "dev1", "", NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(MUTUAL, NO_PW, ANY, "dev1", "a/b", NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(MUTUAL, NO_PW, MATCH, ID64, ID64, NULL, NULL, ACC, EV_NONE, ID64, NULL),
	/* A certificate identity is taken whole, even in the Watson form. */
	C(MUTUAL, NO_PW, MATCH, WATSON1, WATSON1, NULL, NULL, ACC, EV_NONE, WATSON1, NULL),
	/* A user name and password are not looked at without a password file. */
	C(MUTUAL, NO_PW, MATCH, "dev1", "dev1", "dev2", "wrong", ACC, EV_NONE, "dev1", NULL),
	/* No usable certificate identity: refused whatever the client id. */
	C(MUTUAL, NO_PW, MATCH, "", "dev1", NULL, NULL, NOTAUTH, EV_CONNECT_REFUSED, "",
	  "certificate identity is not a usable device id"),
	C(MUTUAL, NO_PW, ANY, "", "dev1", NULL, NULL, NOTAUTH, EV_CONNECT_REFUSED, "", NULL),
	C(MUTUAL, NO_PW, MATCH, "dev 1", "dev 1", NULL, NULL, NOTAUTH, EV_CONNECT_REFUSED, "",
	  NULL),
	C(MUTUAL, NO_PW, MATCH, "a/b", "a/b", NULL, NULL, NOTAUTH, EV_CONNECT_REFUSED, "", NULL),
	C(MUTUAL, NO_PW, ANY, ID65, "dev1", NULL, NULL, NOTAUTH, EV_CONNECT_REFUSED, "", NULL),

	/* password_file: the device is who its password says it is (the user
	 * name, or the <id> of a Watson client id with use-token-auth); the
	 * client id must fit it. */
	C(OFF, PW, MATCH, "", "dev1", "dev1", "s3cret", ACC, EV_NONE, "dev1", NULL),
	C(OFF, PW, MATCH, "", WATSON1, "dev1", "s3cret", ACC, EV_NONE, "dev1", NULL),
	C(OFF, PW, MATCH, "", WATSON1, "use-token-auth", "s3cret", ACC, EV_NONE, "dev1", NULL),
	C(OFF, PW, EXACT, "", "dev1", "dev1", "s3cret", ACC, EV_NONE, "dev1", NULL),
	C(OFF, PW, EXACT, "", WATSON1, "use-token-auth", "s3cret", NOTAUTH, EV_CLIENT_ID_MISMATCH,
	  "dev1", "(client_id = exact)"),
	C(OFF, PW, MATCH, "", "dev2", "dev1", "s3cret", NOTAUTH, EV_CLIENT_ID_MISMATCH, "dev1",
	  "client id \"dev2\" does not match device dev1"),
	C(OFF, PW, ANY, "", "dev2", "dev1", "s3cret", ACC, EV_NONE, "dev1", NULL),
	C(OFF, PW, ANY, "", "whatever", "dev3", "other", ACC, EV_NONE, "dev3", NULL),
	/* The password, not the client id, names the device. */
	C(OFF, PW, MATCH, "", "dev1", "dev2", "s3cret", NOTAUTH, EV_CLIENT_ID_MISMATCH, "dev2",
	  NULL),
	C(OFF, PW, ANY, "", "dev1", "dev2", "s3cret", ACC, EV_NONE, "dev2", NULL),
	/* A certificate identity is not looked at (and cannot be, below mutual). */
	C(OFF, PW, MATCH, "dev2", "dev1", "dev1", "s3cret", ACC, EV_NONE, "dev1", NULL),
	/* Bad or missing credentials: one code whatever went wrong. The device
	 * buffer keeps the id taken from the client id, for the log line. */
	C(OFF, PW, MATCH, "", "dev1", "dev1", "wrong", BADPW, EV_AUTH_FAILED, "dev1",
	  "wrong password for device dev1"),
	C(OFF, PW, MATCH, "", "dev1", "dev3", "s3cret", BADPW, EV_AUTH_FAILED, "dev1", NULL),
	C(OFF, PW, MATCH, "", "dev9", "dev9", "s3cret", BADPW, EV_AUTH_FAILED, "dev9",
	  "or no such device"),
	C(OFF, PW, MATCH, "", "dev1", NULL, NULL, BADPW, EV_AUTH_FAILED, "dev1",
	  "listener " LISTENER " requires a user name and password"),
	C(OFF, PW, ANY, "", "dev1", "dev1", NULL, BADPW, EV_AUTH_FAILED, "dev1",
	  "requires a user name and password"),
	C(OFF, PW, MATCH, "", "dev1", "dev1", "", BADPW, EV_AUTH_FAILED, "dev1", NULL),
	C(OFF, PW, MATCH, "", "dev1", "use-token-auth", "s3cret", BADPW, EV_AUTH_FAILED, "dev1",
	  NULL),
	C(OFF, PW, MATCH, "", "d:acme:sensor:dev9", "use-token-auth", "s3cret", BADPW,
	  EV_AUTH_FAILED, "dev9", NULL),
	C(OFF, PW, MATCH, "", "dev1", "a/b", "s3cret", BADPW, EV_AUTH_FAILED, "dev1", NULL),
	/* The client id must still give a usable device id, before any password
	 * is checked: an empty one is refused as an identifier. */
	C(OFF, PW, ANY, "", "", "dev1", "s3cret", IDREJ, EV_CONNECT_REFUSED, "", NULL),
	C(OFF, PW, ANY, "", "a/b", "dev1", "s3cret", IDREJ, EV_CONNECT_REFUSED, "", NULL),
	C(SERVER, PW, MATCH, "", "dev1", "dev1", "s3cret", ACC, EV_NONE, "dev1", NULL),
	C(SERVER, PW, MATCH, "", WATSON1, "use-token-auth", "s3cret", ACC, EV_NONE, "dev1", NULL),
	C(SERVER, PW, MATCH, "", "dev2", "dev1", "s3cret", NOTAUTH, EV_CLIENT_ID_MISMATCH, "dev1",
	  NULL),
	C(SERVER, PW, ANY, "", "dev2", "dev1", "s3cret", ACC, EV_NONE, "dev1", NULL),
	C(SERVER, PW, MATCH, "", "dev1", "dev1", "wrong", BADPW, EV_AUTH_FAILED, "dev1", NULL),
	C(SERVER, PW, MATCH, "", "dev1", NULL, NULL, BADPW, EV_AUTH_FAILED, "dev1", NULL),
	C(SERVER, PW, MATCH, "", "", "dev1", "s3cret", IDREJ, EV_CONNECT_REFUSED, "", NULL),

	/* tls = off with proxy_identity = ssl-cn: the CN the balancer verified is
	 * the device, as a certificate's on tls = mutual; the client id must fit
	 * it, and without a CN nobody is anybody. */
	C(OFF, BAL, MATCH, "dev1", "dev1", NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(OFF, BAL, MATCH, "dev1", WATSON1, NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(OFF, BAL, ANY, "dev1", "whatever", NULL, NULL, ACC, EV_NONE, "dev1", NULL),
	C(OFF, BAL, MATCH, "dev1", "dev2", NULL, NULL, NOTAUTH, EV_CLIENT_ID_MISMATCH, "dev1",
	  "client id \"dev2\" does not match device dev1 (client_id = match)"),
	C(OFF, BAL, MATCH, "", "dev2", NULL, NULL, NOTAUTH, EV_CONNECT_REFUSED, "",
	  "certificate identity is not a usable device id"),
	C(OFF, BAL, MATCH, "dev 1", "dev 1", NULL, NULL, NOTAUTH, EV_CONNECT_REFUSED, "", NULL),
};

static struct mqtt_str str_of(const char *s)
{
	return (struct mqtt_str){s, (uint16_t)strlen(s)};
}

static bool run_connect(const struct connect_case *t)
{
	struct cfg_listener cfg = {.tls = t->tls, .client_id = t->cid_policy};
	if (t->pw == BAL)
		cfg.proxy_identity = CFG_PROXY_ID_SSL_CN;
	struct trust_policy p;
	trust_policy_init(&p, LISTENER, &cfg, t->pw == PW ? pwfile : NULL);
	struct mqtt_connect c = {.protocol_level = 4, .clean_session = true};
	c.client_id = str_of(t->client_id);
	if (t->user) {
		c.has_username = true;
		c.username = str_of(t->user);
	}
	if (t->password) {
		c.has_password = true;
		c.password = str_of(t->password);
	}
	char device[AUTH_DEVICE_MAX + 1] = "";
	struct trust_verdict v;
	memset(&v, 0x5a, sizeof v);
	trust_connect(&p, t->cert, &c, t->client_id, TRUST_PW_UNCHECKED, device, sizeof device,
		      &v);
	/* The password is asked for only on password listeners, and nothing is
	 * accepted there without it. */
	bool asked = v.connack == TRUST_CHECK_PASSWORD;
	/* ... for the device the user name names (Watson: the client id's). */
	bool right_device = !asked || strcmp(device, t->user ? t->user : "") == 0 ||
			    strchr(t->client_id, ':') != NULL;
	if (v.connack == TRUST_CHECK_PASSWORD) {
		/* What the gateway's password workers do, here inline. */
		bool good = auth_pw_verify(p.pwfile, device, (const uint8_t *)c.password.ptr,
					   c.password.len);
		trust_connect(&p, t->cert, &c, t->client_id, good ? TRUST_PW_GOOD : TRUST_PW_BAD,
			      device, sizeof device, &v);
	}
	bool ok = right_device && (t->pw == PW || !asked) &&
		  (t->pw != PW || t->connack != ACC || asked) &&
		  v.connack == t->connack && v.event == t->event &&
		  strcmp(device, t->device) == 0 &&
		  (t->connack == ACC) == (v.why[0] == '\0') &&
		  (!t->why || strstr(v.why, t->why) != NULL);
	if (!ok)
		print_error("line %d: connack %u event %d device \"%s\" why \"%s\"; "
			    "expected connack %u event %d device \"%s\" why containing \"%s\"\n",
			    t->line, v.connack, (int)v.event, device, v.why, t->connack,
			    (int)t->event, t->device, t->why ? t->why : "");
	return ok;
}

static void test_connect_table(void **state)
{
	(void)state;
	int failed = 0;
	for (size_t i = 0; i < sizeof connect_cases / sizeof connect_cases[0]; i++)
		failed += !run_connect(&connect_cases[i]);
	assert_int_equal(failed, 0);
}

/* ---- the policy and the ACL rule ---- */

static void test_policy_init(void **state)
{
	(void)state;
	static const struct {
		enum auth_cid_policy cfg;
		enum auth_cid_policy policy;
	} ids[] = {{AUTH_CID_MATCH, AUTH_CID_MATCH},
		   {AUTH_CID_EXACT, AUTH_CID_EXACT},
		   {AUTH_CID_ANY, AUTH_CID_ANY}};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		struct cfg_listener cfg = {.tls = CFG_TLS_SERVER, .client_id = ids[i].cfg};
		struct trust_policy p;
		memset(&p, 0x5a, sizeof p);
		trust_policy_init(&p, LISTENER, &cfg, pwfile);
		assert_int_equal(p.client_id, ids[i].policy);
		assert_int_equal(p.tls, CFG_TLS_SERVER);
		assert_ptr_equal(p.pwfile, pwfile);
		assert_string_equal(p.listener, LISTENER);
	}
	struct cfg_listener cfg = {.tls = CFG_TLS_MUTUAL};
	struct trust_policy p;
	trust_policy_init(&p, "x", &cfg, NULL);
	assert_int_equal(p.tls, CFG_TLS_MUTUAL);
	assert_int_equal(p.client_id, AUTH_CID_MATCH);
	assert_null(p.pwfile);
	assert_false(p.balancer_cn);
	cfg = (struct cfg_listener){.tls = CFG_TLS_OFF, .proxy_identity = CFG_PROXY_ID_SSL_CN};
	trust_policy_init(&p, "x", &cfg, NULL);
	assert_true(p.balancer_cn);
}

enum acl_setting {
	ACL_DEFAULT,  /* publish_acl not set: AUTH_ACL_DEFAULT */
	ACL_EXPLICIT, /* publish_acl = {device}/# */
	ACL_NONE,     /* publish_acl = none */
};

struct acl_case {
	int line;
	enum cfg_tls_mode tls;
	int pw;
	enum acl_setting acl;
	bool enforced;
};

static const struct acl_case acl_cases[] = {
	/* The device id is only claimed: the default ACL protects nothing. */
	C(OFF, NO_PW, ACL_DEFAULT, false),
	C(OFF, NO_PW, ACL_EXPLICIT, true),
	C(OFF, NO_PW, ACL_NONE, false),
	C(SERVER, NO_PW, ACL_DEFAULT, false),
	C(SERVER, NO_PW, ACL_EXPLICIT, true),
	C(SERVER, NO_PW, ACL_NONE, false),
	/* An authenticated device id: the ACL always holds, unless none. */
	C(MUTUAL, NO_PW, ACL_DEFAULT, true),
	C(MUTUAL, NO_PW, ACL_EXPLICIT, true),
	C(MUTUAL, NO_PW, ACL_NONE, false),
	C(OFF, PW, ACL_DEFAULT, true),
	C(OFF, PW, ACL_EXPLICIT, true),
	C(OFF, PW, ACL_NONE, false),
	C(SERVER, PW, ACL_DEFAULT, true),
	C(SERVER, PW, ACL_EXPLICIT, true),
	C(SERVER, PW, ACL_NONE, false),
	C(OFF, BAL, ACL_DEFAULT, true),
	C(OFF, BAL, ACL_EXPLICIT, true),
	C(OFF, BAL, ACL_NONE, false),
};

static void test_acl_enforced_table(void **state)
{
	(void)state;
	static char *const dflt[] = {"{device}/#", "+/{device}/#", "iot-2/evt/+/fmt/+"};
	static char *const expl[] = {"{device}/#"};
	int failed = 0;
	for (size_t i = 0; i < sizeof acl_cases / sizeof acl_cases[0]; i++) {
		const struct acl_case *t = &acl_cases[i];
		struct cfg_listener cfg = {.tls = t->tls, .line = 3};
		cfg.password_file.path = t->pw == PW ? "/etc/iotgw/passwd" : NULL;
		cfg.password_file.line = t->pw == PW ? 7 : 0;
		cfg.proxy_identity = t->pw == BAL ? CFG_PROXY_ID_SSL_CN : CFG_PROXY_ID_OFF;
		switch (t->acl) {
		case ACL_DEFAULT:
			cfg.publish_acl = (char **)dflt;
			cfg.npublish_acl = 3;
			break;
		case ACL_EXPLICIT:
			cfg.publish_acl = (char **)expl;
			cfg.npublish_acl = 1;
			cfg.publish_acl_line = 9;
			break;
		case ACL_NONE:
			cfg.publish_acl_line = 9;
			break;
		}
		if (trust_acl_enforced(&cfg) != t->enforced) {
			print_error("line %d: enforced %d, expected %d\n", t->line, !t->enforced,
				    t->enforced);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* ---- certificate expiry ---- */

static void test_cert_expiring(void **state)
{
	(void)state;
	const time_t now = 1700000000; /* 2023-11-14T22:13:20Z */
	char msg[256] = "";
	assert_false(trust_cert_expiring(now + 86400, now, 0, "dev1", msg, sizeof msg));
	assert_false(trust_cert_expiring(now + 31 * 86400, now, 30 * 86400, "dev1", msg,
					 sizeof msg));
	assert_string_equal(msg, "");
	assert_true(
		trust_cert_expiring(now + 30 * 86400, now, 30 * 86400, "dev1", msg, sizeof msg));
	assert_string_equal(msg, "certificate of device dev1 expires 2023-12-14T22:13:20Z (in 30 "
				 "day(s)); provision a new one");
	assert_true(trust_cert_expiring(now - 86400, now, 1, "dev1", msg, sizeof msg));
	assert_non_null(strstr(msg, "(in -1 day(s))"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_table),
		cmocka_unit_test(test_policy_init),
		cmocka_unit_test(test_acl_enforced_table),
		cmocka_unit_test(test_cert_expiring),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
