/* Unit tests for src/auth.c: publish ACL matching (MQTT 4.7 level rules,
 * {device}), client id policies and the Watson forms, the password file
 * (parser diagnostics, PBKDF2 known answers, verification, editing, loader). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "iotgw/auth.h"

/* ---- helpers ---- */

#define MAX_DIAGS 32

struct diag {
	char file[64];
	int line;
	char msg[400];
};

static struct diag diags[MAX_DIAGS];
static size_t ndiags;

static void collect(void *ctx, const char *file, int line, const char *msg)
{
	(void)ctx;
	assert_true(ndiags < MAX_DIAGS);
	struct diag *d = &diags[ndiags++];
	snprintf(d->file, sizeof d->file, "%s", file);
	d->line = line;
	snprintf(d->msg, sizeof d->msg, "%s", msg);
}

static int parse(const char *text, struct auth_pwfile **pf)
{
	ndiags = 0;
	return auth_pwfile_parse(text, strlen(text), "pw", pf, collect, NULL);
}

/* Asserts that parsing text gives exactly one error, on line, containing needle. */
static void expect_one_error(const char *text, int line, const char *needle)
{
	struct auth_pwfile *pf = (struct auth_pwfile *)1;
	int n = parse(text, &pf);
	if (n != 1 || ndiags != 1 || diags[0].line != line || !strstr(diags[0].msg, needle)) {
		print_error("text %s: %d error(s), %zu diag(s); first: line %d: %s\n", text, n,
			    ndiags, ndiags ? diags[0].line : -1, ndiags ? diags[0].msg : "");
		fail();
	}
	assert_string_equal(diags[0].file, "pw");
	assert_null(pf);
}

static bool allowed(const struct auth_acl *acl, const char *device, const char *topic)
{
	return auth_topic_allowed(acl, device, topic, strlen(topic));
}

static struct auth_acl *compile_ok(const char *patterns)
{
	struct auth_acl *acl = NULL;
	char why[256] = "";
	if (auth_acl_compile(patterns, &acl, why, sizeof why) != 0) {
		print_error("compile \"%s\": %s\n", patterns, why);
		fail();
	}
	assert_non_null(acl);
	return acl;
}

static void compile_err(const char *patterns, const char *needle)
{
	struct auth_acl *acl = (struct auth_acl *)1;
	char why[256] = "";
	assert_int_equal(auth_acl_compile(patterns, &acl, why, sizeof why), -1);
	assert_null(acl);
	if (!strstr(why, needle)) {
		print_error("compile \"%s\": reason \"%s\" lacks \"%s\"\n", patterns, why, needle);
		fail();
	}
}

static bool verify(const struct auth_pwfile *pf, const char *device, const char *pw)
{
	return auth_pw_verify(pf, device, (const uint8_t *)pw, strlen(pw));
}

/* Made with Python's hashlib.pbkdf2_hmac (an independent implementation):
 * salt bytes 0..15, 1000 iterations, password "correct horse battery staple". */
#define KAT_LINE                                                                                   \
	"dev0001:$iotgw-pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$"                           \
	"ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4="
#define KAT_PW "correct horse battery staple"
/* Same tool: salt "0123456789abcdef", 2000 iterations, password bytes ff 00 'p' 'w'. */
#define KAT_LINE2                                                                                  \
	"d:$iotgw-pbkdf2-sha256$2000$MDEyMzQ1Njc4OWFiY2RlZg==$"                                  \
	"tfVw62534L3jb314RbToaI5bd7+YfDzxjsa8N+iaMgw="

/* ---- device ids ---- */

static void test_device_id_valid(void **state)
{
	(void)state;
	assert_true(auth_device_id_valid("dev0001", 7));
	assert_true(auth_device_id_valid("a", 1));
	assert_true(auth_device_id_valid("ESP_32-a.b:c$", 13));
	char id[AUTH_DEVICE_MAX + 2];
	memset(id, 'x', sizeof id);
	assert_true(auth_device_id_valid(id, AUTH_DEVICE_MAX));
	assert_false(auth_device_id_valid(id, AUTH_DEVICE_MAX + 1));
	assert_false(auth_device_id_valid("", 0));
	assert_false(auth_device_id_valid(NULL, 0));
	assert_false(auth_device_id_valid("a/b", 3));
	assert_false(auth_device_id_valid("a+b", 3));
	assert_false(auth_device_id_valid("a#b", 3));
	assert_false(auth_device_id_valid("a b", 3));
	assert_false(auth_device_id_valid("a\tb", 3));
	assert_false(auth_device_id_valid("a\x7f", 2));
	assert_false(auth_device_id_valid("caf\xc3\xa9", 5));
	assert_false(auth_device_id_valid("ab\0c", 4)); /* embedded NUL */
}

/* ---- publish ACL ---- */

static void test_acl_default(void **state)
{
	(void)state;
	struct auth_acl *acl = compile_ok(AUTH_ACL_DEFAULT);
	assert_false(auth_acl_is_none(acl));
	/* {device}/# including the parent level (4.7.1.2) and empty levels */
	assert_true(allowed(acl, "dev1", "dev1/temp"));
	assert_true(allowed(acl, "dev1", "dev1"));
	assert_true(allowed(acl, "dev1", "dev1/"));
	assert_true(allowed(acl, "dev1", "dev1//x"));
	assert_true(allowed(acl, "dev1", "dev1/a/b/c"));
	/* +/{device}/# */
	assert_true(allowed(acl, "dev1", "esp/dev1/temp"));
	assert_true(allowed(acl, "dev1", "esp/dev1"));
	assert_true(allowed(acl, "dev1", "/dev1/temp")); /* '+' matches an empty level */
	/* Watson events, any event name and format */
	assert_true(allowed(acl, "dev1", "iot-2/evt/status/fmt/json"));
	assert_true(allowed(acl, "dev1", "iot-2/evt/alarm/fmt/txt"));
	assert_true(allowed(acl, "dev1", "iot-2/evt//fmt/json"));
	assert_false(allowed(acl, "dev1", "iot-2/evt/status/fmt"));
	assert_false(allowed(acl, "dev1", "iot-2/evt/status/fmt/json/x"));
	assert_false(allowed(acl, "dev1", "iot-2/cmd/display/fmt/json"));
	assert_false(allowed(acl, "dev1", "iot-2/type/esp/id/dev2/evt/x/fmt/json"));
	/* other devices and near misses */
	assert_false(allowed(acl, "dev1", "dev2/temp"));
	assert_false(allowed(acl, "dev1", "esp/dev2/temp"));
	assert_false(allowed(acl, "dev1", "dev10/temp"));
	assert_false(allowed(acl, "dev1", "dev/temp"));
	assert_false(allowed(acl, "dev1", "Dev1/temp"));
	assert_false(allowed(acl, "dev1", "a/b/dev1"));
	assert_false(allowed(acl, "dev1", "esp/t"));
	assert_false(allowed(acl, "dev1", "dev1x"));
	assert_false(allowed(acl, "dev1", ""));
	assert_false(auth_topic_allowed(acl, "dev1", NULL, 0));
	/* the length is honoured: "dev1/x" cut to "dev" is not dev1's */
	assert_false(auth_topic_allowed(acl, "dev1", "dev1/x", 3));
	assert_true(auth_topic_allowed(acl, "dev1", "dev1/x", 4));
	/* the device's own tree, not someone else's that merely contains the id */
	assert_true(allowed(acl, "dev2", "dev2/temp"));
	auth_acl_free(acl);
}

static void test_acl_bad_device_ids(void **state)
{
	(void)state;
	struct auth_acl *acl = compile_ok("{device}/# +/{device}/# x/{device}");
	/* An id with a separator or wildcard must not stretch over levels. */
	assert_false(allowed(acl, "a/b", "a/b/c"));
	assert_false(allowed(acl, "a/b", "a/b"));
	assert_false(allowed(acl, "a/b", "x/a/b"));
	assert_false(allowed(acl, "+", "+/x"));
	assert_false(allowed(acl, "#", "#"));
	assert_false(allowed(acl, "a#", "a#/x"));
	/* An empty id would turn {device} into an empty level. */
	assert_false(allowed(acl, "", "/x"));
	assert_false(allowed(acl, "", "a//x"));
	assert_false(allowed(acl, "", "x/"));
	assert_false(allowed(acl, NULL, "/x"));
	assert_false(allowed(acl, NULL, "x/"));
	assert_true(allowed(acl, "ok", "x/ok"));
	auth_acl_free(acl);
}

static void test_acl_levels(void **state)
{
	(void)state;
	struct auth_acl *acl = compile_ok("+");
	assert_true(allowed(acl, "d", "a"));
	assert_false(allowed(acl, "d", "a/b"));
	assert_false(allowed(acl, "d", "/"));
	auth_acl_free(acl);

	acl = compile_ok("+/+");
	assert_true(allowed(acl, "d", "/"));
	assert_true(allowed(acl, "d", "a/"));
	assert_true(allowed(acl, "d", "/b"));
	assert_false(allowed(acl, "d", "a"));
	assert_false(allowed(acl, "d", "a/b/c"));
	auth_acl_free(acl);

	acl = compile_ok("a//b /lead sensors/+/raw");
	assert_true(allowed(acl, "d", "a//b"));
	assert_false(allowed(acl, "d", "a/b"));
	assert_false(allowed(acl, "d", "a///b"));
	assert_true(allowed(acl, "d", "/lead"));
	assert_false(allowed(acl, "d", "lead"));
	assert_true(allowed(acl, "d", "sensors/x/raw"));
	assert_false(allowed(acl, "d", "sensors/x/raw/"));
	auth_acl_free(acl);

	acl = compile_ok("#");
	assert_true(allowed(acl, "d", "a"));
	assert_true(allowed(acl, "d", "/"));
	assert_true(allowed(acl, "d", "a/b/c/d"));
	auth_acl_free(acl);

	acl = compile_ok("{device}");
	assert_true(allowed(acl, "d", "d"));
	assert_false(allowed(acl, "d", "d/"));
	assert_false(allowed(acl, "d", "d/x"));
	auth_acl_free(acl);

	acl = compile_ok("a/{device}/+/#");
	assert_true(allowed(acl, "d", "a/d/x"));
	assert_true(allowed(acl, "d", "a/d/x/y"));
	assert_true(allowed(acl, "d", "a/d/")); /* '+' empty, '#' none */
	assert_false(allowed(acl, "d", "a/d"));
	auth_acl_free(acl);
}

static void test_acl_dollar_topics(void **state)
{
	(void)state;
	/* 4.7.2: a leading wildcard does not match topics starting with '$'. */
	struct auth_acl *acl = compile_ok("# +/x +");
	assert_false(allowed(acl, "d", "$SYS/x"));
	assert_false(allowed(acl, "d", "$SYS"));
	assert_false(allowed(acl, "d", "$x"));
	assert_true(allowed(acl, "d", "a$/x"));
	auth_acl_free(acl);
	acl = compile_ok("$SYS/# {device}/#");
	assert_true(allowed(acl, "d", "$SYS/x"));
	assert_true(allowed(acl, "d", "$SYS"));
	/* {device} is not a wildcard: a device named $d owns $d/... */
	assert_true(allowed(acl, "$d", "$d/t"));
	assert_false(allowed(acl, "d", "$d/t"));
	auth_acl_free(acl);
}

static void test_acl_none_and_null(void **state)
{
	(void)state;
	struct auth_acl *acl = compile_ok("none");
	assert_true(auth_acl_is_none(acl));
	assert_true(allowed(acl, "dev1", "dev2/x"));
	assert_true(allowed(acl, "", "$SYS/x"));
	auth_acl_free(acl);
	acl = compile_ok("  none\t");
	assert_true(auth_acl_is_none(acl));
	auth_acl_free(acl);
	/* NONE is an ordinary one-level pattern */
	acl = compile_ok("NONE");
	assert_false(auth_acl_is_none(acl));
	assert_true(allowed(acl, "d", "NONE"));
	assert_false(allowed(acl, "d", "none"));
	auth_acl_free(acl);
	/* fail closed */
	assert_false(auth_topic_allowed(NULL, "dev1", "dev1/t", 6));
	assert_false(auth_acl_is_none(NULL));
	auth_acl_free(NULL);
}

static void test_acl_pattern_check(void **state)
{
	(void)state;
	static const char *const good[] = {"#",   "+",      "{device}", "a//b",
					   "/",   "a/+/b",  "$SYS/#",   "a/#",
					   "x/{device}/#",  "caf\xc3\xa9"};
	char why[128];
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		why[0] = '\0';
		if (auth_acl_pattern_check(good[i], strlen(good[i]), why, sizeof why) != 0) {
			print_error("\"%s\" refused: %s\n", good[i], why);
			fail();
		}
	}
	static const struct {
		const char *pat, *why;
	} bad[] = {
		{"", "empty"},
		{"a/#/b", "'#' must be the last level"},
		{"#/a", "'#' must be the last level"},
		{"a#", "whole level"},
		{"a/b#", "whole level"},
		{"+a", "whole level"},
		{"a/+b", "whole level"},
		{"++", "whole level"},
		{"{device}x", "{device}"},
		{"{Device}/#", "{device}"},
		{"a/{dev}", "{device}"},
		{"a/{device", "{device}"},
		{"}", "{device}"},
		{"a\x01" "b", "control character"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		assert_int_equal(auth_acl_pattern_check(bad[i].pat, strlen(bad[i].pat), why,
							sizeof why),
				 -1);
		if (!strstr(why, bad[i].why)) {
			print_error("\"%s\": reason \"%s\" lacks \"%s\"\n", bad[i].pat, why,
				    bad[i].why);
			fail();
		}
	}
	char longp[AUTH_ACL_PATTERN_MAX + 2];
	memset(longp, 'a', sizeof longp);
	assert_int_equal(auth_acl_pattern_check(longp, AUTH_ACL_PATTERN_MAX, why, sizeof why), 0);
	assert_int_equal(auth_acl_pattern_check(longp, AUTH_ACL_PATTERN_MAX + 1, why, sizeof why),
			 -1);
	assert_non_null(strstr(why, "longer than"));
	/* a NULL why is allowed */
	assert_int_equal(auth_acl_pattern_check("a#", 2, NULL, 0), -1);
}

static void test_acl_compile_errors(void **state)
{
	(void)state;
	compile_err("", "no patterns");
	compile_err(" \t ", "no patterns");
	compile_err("none {device}/#", "cannot be combined");
	compile_err("{device}/# none", "cannot be combined");
	compile_err("{device}/# a/#/b", "pattern \"a/#/b\": '#' must be the last level");
	compile_err("a/{Device}", "pattern \"a/{Device}\"");
	/* the quoted pattern is printable even if the value is not */
	compile_err("a\x01#", "pattern \"a\\x01#\"");
	char many[AUTH_ACL_PATTERNS_MAX * 3 + 8];
	size_t o = 0;
	for (int i = 0; i < AUTH_ACL_PATTERNS_MAX; i++) {
		many[o++] = 'a';
		many[o++] = ' ';
	}
	many[o] = '\0';
	struct auth_acl *acl = compile_ok(many);
	auth_acl_free(acl);
	many[o++] = 'b';
	many[o] = '\0';
	compile_err(many, "more than 64 patterns");
	/* whitespace of any kind separates */
	acl = compile_ok("\n{device}/#\t\tx/y\r\n");
	assert_true(allowed(acl, "d", "d/z"));
	assert_true(allowed(acl, "d", "x/y"));
	auth_acl_free(acl);
}

static void test_acl_from_list(void **state)
{
	(void)state;
	static const char *const list[] = {"{device}/#", "iot-2/evt/+/fmt/+"};
	struct auth_acl *acl = NULL;
	char why[256];
	assert_int_equal(auth_acl_from_list(list, 2, &acl, why, sizeof why), 0);
	assert_true(allowed(acl, "d", "d/t"));
	assert_true(allowed(acl, "d", "iot-2/evt/x/fmt/json"));
	assert_false(allowed(acl, "d", "e/t"));
	auth_acl_free(acl);
	static const char *const none[] = {"none"};
	assert_int_equal(auth_acl_from_list(none, 1, &acl, why, sizeof why), 0);
	assert_true(auth_acl_is_none(acl));
	auth_acl_free(acl);
	assert_int_equal(auth_acl_from_list(list, 0, &acl, why, sizeof why), -1);
	assert_null(acl);
	assert_non_null(strstr(why, "no patterns"));
	static const char *const spaced[] = {"a/b", "c d"};
	assert_int_equal(auth_acl_from_list(spaced, 2, &acl, why, sizeof why), -1);
	assert_non_null(strstr(why, "pattern 2 contains white space"));
	static const char *const bad[] = {"a/b", "x/#/y"};
	assert_int_equal(auth_acl_from_list(bad, 2, &acl, why, sizeof why), -1);
	assert_non_null(strstr(why, "pattern \"x/#/y\": '#' must be the last level"));
}

/* ---- client id policy ---- */

static void test_cid_policy_names(void **state)
{
	(void)state;
	enum auth_cid_policy p;
	assert_int_equal(auth_cid_policy_parse("match", &p), 0);
	assert_int_equal(p, AUTH_CID_MATCH);
	assert_int_equal(auth_cid_policy_parse("exact", &p), 0);
	assert_int_equal(p, AUTH_CID_EXACT);
	assert_int_equal(auth_cid_policy_parse("any", &p), 0);
	assert_int_equal(p, AUTH_CID_ANY);
	assert_int_equal(auth_cid_policy_parse("Match", &p), -1);
	assert_int_equal(auth_cid_policy_parse("", &p), -1);
	assert_int_equal(auth_cid_policy_parse("none", &p), -1);
	assert_string_equal(auth_cid_policy_name(AUTH_CID_MATCH), "match");
	assert_string_equal(auth_cid_policy_name(AUTH_CID_EXACT), "exact");
	assert_string_equal(auth_cid_policy_name(AUTH_CID_ANY), "any");
	assert_string_equal(auth_cid_policy_name((enum auth_cid_policy)7), "?");
}

static void watson_id(const char *cid, const char *expect)
{
	const char *id = NULL;
	size_t n = 0;
	bool ok = auth_watson_device(cid, strlen(cid), &id, &n);
	if (!expect) {
		if (ok) {
			print_error("%s taken as Watson id\n", cid);
			fail();
		}
		return;
	}
	assert_true(ok);
	assert_int_equal(n, strlen(expect));
	assert_memory_equal(id, expect, n);
}

static void test_watson_device(void **state)
{
	(void)state;
	watson_id("d:myorg:esp32:dev0043", "dev0043");
	watson_id("d:z53u40:ESP8266:dev01", "dev01");
	watson_id("d:o:t:a:b", "a:b");
	watson_id("d:o:t:x", "x");
	watson_id("d::t:x", NULL);
	watson_id("d:o::x", NULL);
	watson_id("d:o:t:", NULL);
	watson_id("d:o:t", NULL);
	watson_id("d:o", NULL);
	watson_id("d:", NULL);
	watson_id("d", NULL);
	watson_id("", NULL);
	watson_id("D:o:t:x", NULL);
	watson_id("g:o:t:x", NULL);
	watson_id("a:o:x", NULL);
	watson_id("dev0001", NULL);
	assert_false(auth_watson_device(NULL, 0, NULL, NULL));
	/* only len bytes count: the id ends where the view ends */
	const char *id;
	size_t n;
	assert_true(auth_watson_device("d:o:t:dev1XYZ", 10, &id, &n));
	assert_int_equal(n, 4);
	assert_memory_equal(id, "dev1", 4);
	assert_false(auth_watson_device("d:o:t:dev1", 6, &id, &n));
	/* id/idlen may be NULL */
	assert_true(auth_watson_device("d:o:t:x", 7, NULL, NULL));
}

static bool cid_ok(enum auth_cid_policy p, const char *device, const char *cid)
{
	return auth_client_id_ok(p, device, cid, strlen(cid));
}

static void test_client_id_ok(void **state)
{
	(void)state;
	assert_true(cid_ok(AUTH_CID_MATCH, "dev0001", "dev0001"));
	assert_true(cid_ok(AUTH_CID_MATCH, "dev0001", "d:myorg:esp32:dev0001"));
	assert_false(cid_ok(AUTH_CID_MATCH, "dev0001", "d:myorg:esp32:dev0002"));
	assert_false(cid_ok(AUTH_CID_MATCH, "dev0001", "d::esp32:dev0001"));
	assert_false(cid_ok(AUTH_CID_MATCH, "dev0001", "g:myorg:esp32:dev0001"));
	assert_false(cid_ok(AUTH_CID_MATCH, "dev0001", "d:myorg:esp32:dev0001x"));
	assert_false(cid_ok(AUTH_CID_MATCH, "dev0001", "dev0002"));
	assert_false(cid_ok(AUTH_CID_MATCH, "dev0001", "dev000"));
	assert_false(cid_ok(AUTH_CID_MATCH, "dev0001", "dev00011"));
	assert_false(cid_ok(AUTH_CID_MATCH, "dev0001", "DEV0001"));
	assert_false(cid_ok(AUTH_CID_MATCH, "dev0001", ""));
	assert_false(cid_ok(AUTH_CID_MATCH, "dev0001", "esp-a1b2c3"));
	assert_false(auth_client_id_ok(AUTH_CID_MATCH, "dev0001", "dev0001\0x", 9));
	assert_true(auth_client_id_ok(AUTH_CID_MATCH, "dev0001", "dev0001\0x", 7));

	assert_true(cid_ok(AUTH_CID_EXACT, "dev0001", "dev0001"));
	assert_false(cid_ok(AUTH_CID_EXACT, "dev0001", "d:myorg:esp32:dev0001"));
	assert_false(cid_ok(AUTH_CID_EXACT, "dev0001", "dev0002"));
	/* a Watson-looking device id is compared as is under exact */
	assert_true(cid_ok(AUTH_CID_EXACT, "d:o:t:x", "d:o:t:x"));

	assert_true(cid_ok(AUTH_CID_ANY, "dev0001", "anything"));
	assert_true(cid_ok(AUTH_CID_ANY, "dev0001", ""));
	assert_true(auth_client_id_ok(AUTH_CID_ANY, NULL, NULL, 0));

	/* no usable device id: nothing matches it */
	assert_false(cid_ok(AUTH_CID_MATCH, "", ""));
	assert_false(cid_ok(AUTH_CID_EXACT, "a/b", "a/b"));
	assert_false(cid_ok(AUTH_CID_MATCH, "a b", "d:o:t:a b"));
	assert_false(auth_client_id_ok(AUTH_CID_MATCH, NULL, "x", 1));
	assert_false(auth_client_id_ok(AUTH_CID_EXACT, "x", NULL, 0));
}

/* ---- user name -> device ---- */

static int pwdev(const char *user, const char *cid, char *out, char *why)
{
	return auth_password_device(user, user ? strlen(user) : 0, cid, cid ? strlen(cid) : 0,
				    out, AUTH_DEVICE_MAX + 1, why, 256);
}

static void test_password_device(void **state)
{
	(void)state;
	char dev[AUTH_DEVICE_MAX + 1], why[256];
	assert_int_equal(pwdev("dev0001", "whatever", dev, why), 0);
	assert_string_equal(dev, "dev0001");
	assert_int_equal(pwdev("dev0001", "d:org:esp:dev0002", dev, why), 0);
	assert_string_equal(dev, "dev0001"); /* the user name rules */
	assert_int_equal(pwdev("use-token-auth", "d:org:esp:dev0002", dev, why), 0);
	assert_string_equal(dev, "dev0002");
	assert_int_equal(pwdev("use-token-auth", "d:z53u40:ESP8266:dev01", dev, why), 0);
	assert_string_equal(dev, "dev01");

	assert_int_equal(pwdev(NULL, "dev0001", dev, why), -1);
	assert_string_equal(dev, "");
	assert_non_null(strstr(why, "no user name"));
	assert_int_equal(pwdev("use-token-auth", "dev0002", dev, why), -1);
	assert_non_null(strstr(why, "use-token-auth needs a Watson client id"));
	assert_non_null(strstr(why, "\"dev0002\""));
	assert_int_equal(pwdev("use-token-auth", "d:o:t:", dev, why), -1);
	assert_int_equal(pwdev("use-token-auth", "d:o:t:a/b", dev, why), -1);
	assert_non_null(strstr(why, "Watson device id \"a/b\""));
	assert_int_equal(pwdev("Use-Token-Auth", "d:o:t:x", dev, why), 0);
	assert_string_equal(dev, "Use-Token-Auth"); /* only the exact name is special */
	assert_int_equal(pwdev("", "x", dev, why), -1);
	assert_int_equal(pwdev("a/b", "x", dev, why), -1);
	assert_non_null(strstr(why, "user name \"a/b\" is not a usable device id"));
	/* control bytes never reach a log line raw */
	assert_int_equal(pwdev("a\nb", "x", dev, why), -1);
	assert_non_null(strstr(why, "\"a\\x0ab\""));
	char longu[AUTH_DEVICE_MAX + 2];
	memset(longu, 'u', sizeof longu - 1);
	longu[sizeof longu - 1] = '\0';
	assert_int_equal(pwdev(longu, "x", dev, why), -1);
	longu[AUTH_DEVICE_MAX] = '\0';
	assert_int_equal(pwdev(longu, "x", dev, why), 0);
	assert_string_equal(dev, longu);
	/* the output buffer must hold the id */
	char small[4];
	assert_int_equal(auth_password_device("dev0001", 7, "x", 1, small, sizeof small, why,
					      sizeof why),
			 -1);
	/* a user name is a length-counted view */
	assert_int_equal(auth_password_device("dev0001XX", 7, "x", 1, dev, sizeof dev, why,
					      sizeof why),
			 0);
	assert_string_equal(dev, "dev0001");
}

/* ---- PBKDF2 and the password file ---- */

static void test_pbkdf2_known_answers(void **state)
{
	(void)state;
	/* RFC 7914 section 11, PBKDF2-HMAC-SHA256 test vectors. */
	static const uint8_t v1[64] = {
		0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25,
		0x44, 0xb6, 0x05, 0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b,
		0x9d, 0x57, 0xc2, 0x0d, 0xac, 0xbc, 0x49, 0xca, 0x9c, 0xcc, 0xf1, 0x79, 0xb6,
		0x45, 0x99, 0x16, 0x64, 0xb3, 0x9d, 0x77, 0xef, 0x31, 0x7c, 0x71, 0xb8, 0x45,
		0xb1, 0xe3, 0x0b, 0xd5, 0x09, 0x11, 0x20, 0x41, 0xd3, 0xa1, 0x97, 0x83};
	static const uint8_t v2[64] = {
		0x4d, 0xdc, 0xd8, 0xf6, 0x0b, 0x98, 0xbe, 0x21, 0x83, 0x0c, 0xee, 0x5e, 0xf2,
		0x27, 0x01, 0xf9, 0x64, 0x1a, 0x44, 0x18, 0xd0, 0x4c, 0x04, 0x14, 0xae, 0xff,
		0x08, 0x87, 0x6b, 0x34, 0xab, 0x56, 0xa1, 0xd4, 0x25, 0xa1, 0x22, 0x58, 0x33,
		0x54, 0x9a, 0xdb, 0x84, 0x1b, 0x51, 0xc9, 0xb3, 0x17, 0x6a, 0x27, 0x2b, 0xde,
		0xbb, 0xa1, 0xd0, 0x78, 0x47, 0x8f, 0x62, 0xb3, 0x97, 0xf3, 0x3c, 0x8d};
	uint8_t out[64];
	assert_int_equal(auth_pbkdf2_sha256((const uint8_t *)"passwd", 6,
					    (const uint8_t *)"salt", 4, 1, out, sizeof out),
			 0);
	assert_memory_equal(out, v1, sizeof v1);
	assert_int_equal(auth_pbkdf2_sha256((const uint8_t *)"Password", 8,
					    (const uint8_t *)"NaCl", 4, 80000, out, sizeof out),
			 0);
	assert_memory_equal(out, v2, sizeof v2);
	assert_int_equal(auth_pbkdf2_sha256((const uint8_t *)"x", 1, (const uint8_t *)"s", 1, 0,
					    out, sizeof out),
			 -1);
	/* an empty password is a valid KDF input (the dummy path may see one) */
	assert_int_equal(auth_pbkdf2_sha256(NULL, 0, (const uint8_t *)"salt", 4, 1, out, 32), 0);
}

static void test_pwfile_known_answer(void **state)
{
	(void)state;
	struct auth_pwfile *pf = NULL;
	assert_int_equal(parse(KAT_LINE "\n" KAT_LINE2 "\n", &pf), 0);
	assert_int_equal(ndiags, 0);
	assert_non_null(pf);
	assert_int_equal(auth_pwfile_count(pf), 2);
	assert_true(auth_pwfile_has(pf, "dev0001"));
	assert_true(auth_pwfile_has(pf, "d"));
	assert_false(auth_pwfile_has(pf, "dev0002"));
	assert_false(auth_pwfile_has(pf, NULL));
	assert_true(verify(pf, "dev0001", KAT_PW));
	assert_false(verify(pf, "dev0001", "correct horse battery stapl"));
	assert_false(verify(pf, "dev0001", "correct horse battery staplE"));
	assert_false(verify(pf, "dev0001", KAT_PW " "));
	assert_false(verify(pf, "dev0001", ""));
	assert_false(verify(pf, "d", KAT_PW)); /* another device's password */
	assert_false(verify(pf, "dev0002", KAT_PW)); /* no such device */
	assert_false(verify(pf, NULL, KAT_PW));
	assert_false(auth_pw_verify(pf, "dev0001", NULL, 0));
	/* binary passwords, NUL included */
	static const uint8_t bin[] = {0xff, 0x00, 'p', 'w'};
	assert_true(auth_pw_verify(pf, "d", bin, sizeof bin));
	assert_false(auth_pw_verify(pf, "d", bin, 1));
	/* over the MQTT limit: refused without hashing 64 KiB+ */
	assert_false(auth_pw_verify(pf, "dev0001", (const uint8_t *)KAT_PW, AUTH_PW_MAX_LEN + 1));
	auth_pwfile_free(pf);
	assert_false(verify(NULL, "dev0001", KAT_PW));
	auth_pwfile_free(NULL);
}

static void test_pwfile_layout(void **state)
{
	(void)state;
	struct auth_pwfile *pf = NULL;
	/* comments, blank lines, CRLF, surrounding blanks, no final newline */
	const char *text = "# iotgw password file\n"
			   "\n"
			   "   \t\n"
			   "  # indented comment\r\n"
			   "\t" KAT_LINE "  \r\n"
			   "#dev0002:$iotgw-pbkdf2-sha256$junk\n" KAT_LINE2;
	assert_int_equal(parse(text, &pf), 0);
	assert_int_equal(auth_pwfile_count(pf), 2);
	assert_true(verify(pf, "dev0001", KAT_PW));
	assert_false(auth_pwfile_has(pf, "dev0002"));
	auth_pwfile_free(pf);

	assert_int_equal(parse("", &pf), 0);
	assert_non_null(pf);
	assert_int_equal(auth_pwfile_count(pf), 0);
	assert_false(verify(pf, "dev0001", KAT_PW));
	auth_pwfile_free(pf);

	assert_int_equal(parse("# only a comment", &pf), 0);
	assert_int_equal(auth_pwfile_count(pf), 0);
	auth_pwfile_free(pf);
}

static void test_pwfile_errors(void **state)
{
	(void)state;
	const char *h = "$iotgw-pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$"
			"ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=";
	char text[512];
	expect_one_error("dev0001", 1, "expected DEVICE:");
	expect_one_error("# c\n\ndev0001 $iotgw-pbkdf2-sha256$", 3, "expected DEVICE:");
	snprintf(text, sizeof text, "a/b:%s", h);
	expect_one_error(text, 1, "device id \"a/b\" is not usable");
	snprintf(text, sizeof text, ":%s", h);
	expect_one_error(text, 1, "device id \"\" is not usable");
	snprintf(text, sizeof text, "dev 1:%s", h);
	expect_one_error(text, 1, "device id \"dev 1\"");
	expect_one_error("dev0001:", 1, "unsupported hash scheme");
	expect_one_error("dev0001:$2y$10$abcdefghijklmnopqrstuv", 1,
			 "unsupported hash scheme \"$2y$\" (expected $iotgw-pbkdf2-sha256$)");
	expect_one_error("dev0001:plaintext", 1, "unsupported hash scheme \"plaintext\"");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$1000", 1, "ITERATIONS$SALT$HASH");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==", 1,
			 "ITERATIONS$SALT$HASH");
	snprintf(text, sizeof text, "dev0001:%s$extra", h);
	expect_one_error(text, 1, "ITERATIONS$SALT$HASH");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$999$AAECAwQFBgcICQoLDA0ODw==$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=",
			 1, "iterations 999 outside 1000..10000000");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$10000001$AAECAwQFBgcICQoLDA0ODw==$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=",
			 1, "iterations 10000001 outside");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$9999999999$AAECAwQFBgcICQoLDA0ODw==$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=",
			 1, "iterations must be");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$$AAECAwQFBgcICQoLDA0ODw==$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=",
			 1, "iterations must be");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$-1000$AAECAwQFBgcICQoLDA0ODw==$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=",
			 1, "iterations: not a number");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$1000$!!!!AwQFBgcICQoLDA0ODw==$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=",
			 1, "salt is not base64");
	/* unused bits set: not the canonical spelling */
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODx==$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=",
			 1, "salt is not base64");
	/* missing padding */
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=",
			 1, "salt is not base64");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$1000$AAECAw==$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=",
			 1, "salt of 4 bytes is too short");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cQ==",
			 1, "hash is not base64 of 32 bytes");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$", 1,
			 "hash is not base64 of 32 bytes");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=ppsX",
			 1, "hash is not base64 of 32 bytes");
	expect_one_error("dev0001:$iotgw-pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$"
			 "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4= x",
			 1, "hash is not base64");
	/* duplicate: reported on the later line, naming the earlier one */
	snprintf(text, sizeof text, "# x\n%s\n\n%s\n", KAT_LINE, KAT_LINE);
	expect_one_error(text, 4, "device dev0001 already has an entry on line 2");
	/* a NUL byte inside a line */
	struct auth_pwfile *pf = NULL;
	static const char nul[] = "dev0001:$iotgw\0x\n";
	ndiags = 0;
	assert_int_equal(auth_pwfile_parse(nul, sizeof nul - 1, "pw", &pf, collect, NULL), 1);
	assert_null(pf);
	assert_non_null(strstr(diags[0].msg, "NUL byte"));
}

static void test_pwfile_all_errors_reported(void **state)
{
	(void)state;
	struct auth_pwfile *pf = (struct auth_pwfile *)1;
	const char *text = "bad1\n" KAT_LINE "\n# fine\nbad/2:x\n" KAT_LINE2 "\nbad3:$1$x\n";
	assert_int_equal(parse(text, &pf), 3);
	assert_null(pf);
	assert_int_equal(ndiags, 3);
	assert_int_equal(diags[0].line, 1);
	assert_int_equal(diags[1].line, 4);
	assert_int_equal(diags[2].line, 6);
	/* no diagnostics sink: still counted */
	assert_int_equal(auth_pwfile_parse(text, strlen(text), "pw", &pf, NULL, NULL), 3);
	assert_null(pf);
}

static void test_pw_hash_line(void **state)
{
	(void)state;
	uint8_t salt[16];
	for (int i = 0; i < 16; i++)
		salt[i] = (uint8_t)i;
	char line[AUTH_PW_LINE_MAX], why[200];
	/* same salt and count as the Python-made KAT_LINE: same text */
	assert_int_equal(auth_pw_hash_line("dev0001", (const uint8_t *)KAT_PW, strlen(KAT_PW), 1000,
					   salt, sizeof salt, line, sizeof line, why, sizeof why),
			 0);
	assert_string_equal(line, KAT_LINE);

	/* random salts: two entries for one password differ, both verify */
	char a[AUTH_PW_LINE_MAX], b[AUTH_PW_LINE_MAX];
	assert_int_equal(auth_pw_hash_line("dev0005", (const uint8_t *)"s3cret", 6,
					   AUTH_PW_MIN_ITERATIONS, NULL, 0, a, sizeof a, why,
					   sizeof why),
			 0);
	assert_int_equal(auth_pw_hash_line("dev0006", (const uint8_t *)"s3cret", 6,
					   AUTH_PW_MIN_ITERATIONS, NULL, 0, b, sizeof b, why,
					   sizeof why),
			 0);
	assert_string_not_equal(strchr(a, '$'), strchr(b, '$'));
	char text[2 * AUTH_PW_LINE_MAX + 4];
	snprintf(text, sizeof text, "%s\n%s\n", a, b);
	struct auth_pwfile *pf = NULL;
	assert_int_equal(parse(text, &pf), 0);
	assert_true(verify(pf, "dev0005", "s3cret"));
	assert_true(verify(pf, "dev0006", "s3cret"));
	assert_false(verify(pf, "dev0005", "s3cret!"));
	auth_pwfile_free(pf);

	/* the default count, longest device id, largest salt fit AUTH_PW_LINE_MAX */
	char dev[AUTH_DEVICE_MAX + 1];
	memset(dev, 'd', AUTH_DEVICE_MAX);
	dev[AUTH_DEVICE_MAX] = '\0';
	uint8_t bigsalt[AUTH_PW_SALT_MAX] = {0};
	assert_int_equal(auth_pw_hash_line(dev, (const uint8_t *)"p", 1,
					   AUTH_PW_MAX_ITERATIONS / 10, bigsalt, sizeof bigsalt,
					   line, sizeof line, why, sizeof why),
			 0);
	assert_true(strlen(line) < AUTH_PW_LINE_MAX);

	static const struct {
		const char *dev, *pw;
		unsigned it;
		size_t saltlen;
		size_t cap;
		const char *why;
	} bad[] = {
		{"a:b", "pw", 1000, 16, AUTH_PW_LINE_MAX, "':'"},
		{"a/b", "pw", 1000, 16, AUTH_PW_LINE_MAX, "not a usable device id"},
		{"", "pw", 1000, 16, AUTH_PW_LINE_MAX, "not a usable device id"},
		{"dev", "", 1000, 16, AUTH_PW_LINE_MAX, "empty password"},
		{"dev", "pw", 999, 16, AUTH_PW_LINE_MAX, "iterations must be"},
		{"dev", "pw", AUTH_PW_MAX_ITERATIONS + 1, 16, AUTH_PW_LINE_MAX,
		 "iterations must be"},
		{"dev", "pw", 1000, 4, AUTH_PW_LINE_MAX, "salt must be"},
		{"dev", "pw", 1000, 16, 40, "longer than the buffer"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		line[0] = 'x';
		assert_int_equal(auth_pw_hash_line(bad[i].dev, (const uint8_t *)bad[i].pw,
						   strlen(bad[i].pw), bad[i].it, salt,
						   bad[i].saltlen, line, bad[i].cap, why,
						   sizeof why),
				 -1);
		assert_string_equal(line, "");
		if (!strstr(why, bad[i].why)) {
			print_error("case %zu: \"%s\" lacks \"%s\"\n", i, why, bad[i].why);
			fail();
		}
	}
	assert_int_equal(auth_pw_hash_line(NULL, (const uint8_t *)"p", 1, 1000, NULL, 0, line,
					   sizeof line, why, sizeof why),
			 -1);
	assert_int_equal(auth_pw_hash_line("d", (const uint8_t *)"p", AUTH_PW_MAX_LEN + 1, 1000,
					   NULL, 0, line, sizeof line, why, sizeof why),
			 -1);
	assert_non_null(strstr(why, "longer than 65535"));
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double min_verify_time(const struct auth_pwfile *pf, const char *device, const char *pw)
{
	double best = 1e9;
	for (int i = 0; i < 3; i++) {
		double t0 = now_s();
		(void)verify(pf, device, pw);
		double t = now_s() - t0;
		if (t < best)
			best = t;
	}
	return best;
}

/* An unknown device costs a KDF run like a known one: response time does not
 * tell an attacker which device ids exist. Coarse on purpose (factor 2),
 * with enough iterations that the KDF dwarfs everything else. */
static void test_pw_verify_unknown_device_costs_a_kdf(void **state)
{
	(void)state;
	char line[AUTH_PW_LINE_MAX], why[200];
	assert_int_equal(auth_pw_hash_line("known", (const uint8_t *)"pw", 2, 100000, NULL, 0, line,
					   sizeof line, why, sizeof why),
			 0);
	struct auth_pwfile *pf = NULL;
	assert_int_equal(parse(line, &pf), 0);
	double known = min_verify_time(pf, "known", "wrong");
	double unknown = min_verify_time(pf, "unknown", "wrong");
	double nodev = min_verify_time(pf, NULL, "wrong");
	if (unknown < known / 2 || nodev < known / 2) {
		print_error("known %.4f s, unknown %.4f s, no device %.4f s\n", known, unknown,
			    nodev);
		fail();
	}
	auth_pwfile_free(pf);
}

/* ---- editing ---- */

static void edit(const char *text, const char *device, const char *entry, const char *expect,
		 bool expect_found)
{
	char *out = NULL;
	size_t n = 0;
	bool found = !expect_found;
	assert_int_equal(auth_pwfile_edit(text, strlen(text), device, entry, &out, &n, &found), 0);
	assert_non_null(out);
	assert_int_equal(n, strlen(out));
	assert_string_equal(out, expect);
	assert_int_equal(found, expect_found);
	free(out);
}

static void test_pwfile_edit(void **state)
{
	(void)state;
	const char *text = "# devices\n"
			   "dev1:$old1\n"
			   "\n"
			   "dev10:$old10\r\n"
			   "# dev2:$commented\n"
			   "  dev2:$old2\n"
			   "dev3:$old3";
	/* replace: everything else byte for byte, line endings kept */
	edit(text, "dev1", "dev1:$new",
	     "# devices\ndev1:$new\n\ndev10:$old10\r\n# dev2:$commented\n  dev2:$old2\ndev3:$old3",
	     true);
	edit(text, "dev10", "dev10:$new",
	     "# devices\ndev1:$old1\n\ndev10:$new\r\n# dev2:$commented\n  dev2:$old2\ndev3:$old3",
	     true);
	edit(text, "dev2", "dev2:$new",
	     "# devices\ndev1:$old1\n\ndev10:$old10\r\n# dev2:$commented\ndev2:$new\ndev3:$old3",
	     true);
	edit(text, "dev3", "dev3:$new",
	     "# devices\ndev1:$old1\n\ndev10:$old10\r\n# dev2:$commented\n  dev2:$old2\ndev3:$new",
	     true);
	/* append: after a newline added to an unterminated last line */
	edit(text, "dev4", "dev4:$new",
	     "# devices\ndev1:$old1\n\ndev10:$old10\r\n# dev2:$commented\n  dev2:$old2\n"
	     "dev3:$old3\ndev4:$new\n",
	     false);
	edit("a:$x\n", "b", "b:$y", "a:$x\nb:$y\n", false);
	edit("", "b", "b:$y", "b:$y\n", false);
	/* "dev" is a prefix of dev1 and dev10, not their entry */
	edit("dev1:$a\ndev10:$b\n", "dev", "dev:$c", "dev1:$a\ndev10:$b\ndev:$c\n", false);
	/* delete */
	edit(text, "dev10", NULL,
	     "# devices\ndev1:$old1\n\n# dev2:$commented\n  dev2:$old2\ndev3:$old3", true);
	edit(text, "dev3", NULL,
	     "# devices\ndev1:$old1\n\ndev10:$old10\r\n# dev2:$commented\n  dev2:$old2\n", true);
	edit(text, "dev9", NULL, text, false);
	edit("", "dev9", NULL, "", false);
	edit("dev9:$a\n", "dev9", NULL, "", true);
}

/* ---- loading from a file ---- */

static char tmpdir[64];

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_pwfile_load(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_auth.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	char path[128];
	snprintf(path, sizeof path, "%s/passwd", tmpdir);
	struct auth_pwfile *pf = NULL;

	write_file(path, "# x\n" KAT_LINE "\n", 0640);
	ndiags = 0;
	assert_int_equal(auth_pwfile_load(path, &pf, collect, NULL), 0);
	assert_int_equal(auth_pwfile_count(pf), 1);
	assert_true(verify(pf, "dev0001", KAT_PW));
	auth_pwfile_free(pf);

	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(auth_pwfile_load(path, &pf, collect, NULL), 0);
	auth_pwfile_free(pf);

	/* readable or writable by others: refused like a private key */
	assert_int_equal(chmod(path, 0644), 0);
	ndiags = 0;
	assert_int_equal(auth_pwfile_load(path, &pf, collect, NULL), 1);
	assert_null(pf);
	assert_int_equal(diags[0].line, 0);
	assert_non_null(strstr(diags[0].msg, "is readable by other users (mode 0644); chmod 640"));
	assert_string_equal(diags[0].file, path);
	assert_int_equal(chmod(path, 0642), 0);
	ndiags = 0;
	assert_int_equal(auth_pwfile_load(path, &pf, collect, NULL), 1);
	assert_non_null(strstr(diags[0].msg, "writable by other users (mode 0642)"));
	assert_int_equal(chmod(path, 0641), 0); /* x for others: harmless */
	assert_int_equal(auth_pwfile_load(path, &pf, collect, NULL), 0);
	auth_pwfile_free(pf);

	/* parse errors carry the path and the line */
	write_file(path, "# x\n\nbroken\n", 0640);
	ndiags = 0;
	assert_int_equal(auth_pwfile_load(path, &pf, collect, NULL), 1);
	assert_string_equal(diags[0].file, path);
	assert_int_equal(diags[0].line, 3);

	/* empty file: valid, no devices */
	write_file(path, "", 0640);
	assert_int_equal(auth_pwfile_load(path, &pf, collect, NULL), 0);
	assert_int_equal(auth_pwfile_count(pf), 0);
	auth_pwfile_free(pf);

	ndiags = 0;
	assert_int_equal(auth_pwfile_load(tmpdir, &pf, collect, NULL), 1);
	assert_non_null(strstr(diags[0].msg, "not a regular file"));
	assert_int_equal(unlink(path), 0);
	ndiags = 0;
	assert_int_equal(auth_pwfile_load(path, &pf, collect, NULL), 1);
	assert_non_null(strstr(diags[0].msg, "cannot open password file: No such file"));
	assert_null(pf);
	assert_int_equal(rmdir(tmpdir), 0);
}

/* Subscribe ACL: a filter is allowed when a pattern covers every topic it
 * can match, so a wildcard never reaches wider than the ACL. */
static void test_filter_allowed(void **state)
{
	(void)state;
	struct auth_acl *acl = compile_ok("iot-2/cmd/+/fmt/+ devices/{device}/cmd/# $own/x");
	static const struct {
		const char *device, *filter;
		bool ok;
	} cases[] = {
		{"dev1", "iot-2/cmd/display/fmt/json", true},
		{"dev1", "iot-2/cmd/+/fmt/+", true},
		{"dev1", "iot-2/cmd/+/fmt/json", true},
		{"dev1", "iot-2/cmd/#", false},       /* wider than the pattern */
		{"dev1", "iot-2/#", false},
		{"dev1", "#", false},
		{"dev1", "+/cmd/+/fmt/+", false},
		{"dev1", "iot-2/cmd/display/fmt", false}, /* fewer levels */
		{"dev1", "iot-2/cmd/display/fmt/json/x", false},
		{"dev1", "devices/dev1/cmd/#", true},
		{"dev1", "devices/dev1/cmd", true}, /* '#' covers its parent level */
		{"dev1", "devices/dev1/cmd/a/b", true},
		{"dev1", "devices/dev2/cmd/#", false}, /* another device's */
		{"dev1", "devices/+/cmd/#", false},    /* every device's */
		{"dev1", "devices/#", false},
		{"dev+", "devices/dev+/cmd/x", false}, /* an id that is a wildcard */
		{"dev1", "$own/x", true},
		{"dev1", "$SYS/#", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool got = auth_filter_allowed(acl, cases[i].device, cases[i].filter,
					       strlen(cases[i].filter));
		if (got != cases[i].ok) {
			print_error("%s subscribing to %s: got %d\n", cases[i].device,
				    cases[i].filter, got);
			fail();
		}
	}
	auth_acl_free(acl);
	struct auth_acl *any = compile_ok("#");
	assert_false(auth_filter_allowed(any, "dev1", "$SYS/x", 6)); /* 4.7.2 */
	assert_true(auth_filter_allowed(any, "dev1", "a/#", 3));
	auth_acl_free(any);
	assert_false(auth_filter_allowed(NULL, "dev1", "a", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_device_id_valid),
		cmocka_unit_test(test_acl_default),
		cmocka_unit_test(test_acl_bad_device_ids),
		cmocka_unit_test(test_acl_levels),
		cmocka_unit_test(test_acl_dollar_topics),
		cmocka_unit_test(test_acl_none_and_null),
		cmocka_unit_test(test_acl_pattern_check),
		cmocka_unit_test(test_acl_compile_errors),
		cmocka_unit_test(test_acl_from_list),
		cmocka_unit_test(test_filter_allowed),
		cmocka_unit_test(test_cid_policy_names),
		cmocka_unit_test(test_watson_device),
		cmocka_unit_test(test_client_id_ok),
		cmocka_unit_test(test_password_device),
		cmocka_unit_test(test_pbkdf2_known_answers),
		cmocka_unit_test(test_pwfile_known_answer),
		cmocka_unit_test(test_pwfile_layout),
		cmocka_unit_test(test_pwfile_errors),
		cmocka_unit_test(test_pwfile_all_errors_reported),
		cmocka_unit_test(test_pw_hash_line),
		cmocka_unit_test(test_pw_verify_unknown_device_costs_a_kdf),
		cmocka_unit_test(test_pwfile_edit),
		cmocka_unit_test(test_pwfile_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
