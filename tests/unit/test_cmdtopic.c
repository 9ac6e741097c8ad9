/* cmdtopic: checking, rendering and splitting the downlink's templates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iotgw/cmdtopic.h"

static void check_ok(enum cmdtopic_kind k, const char *t)
{
	char why[128] = "";
	if (cmdtopic_check(k, t, why, sizeof why) != 0) {
		print_error("%s refused: %s\n", t, why);
		fail();
	}
}

static void check_bad(enum cmdtopic_kind k, const char *t, const char *reason)
{
	char why[128] = "";
	if (cmdtopic_check(k, t, why, sizeof why) == 0) {
		print_error("%s accepted\n", t);
		fail();
	}
	if (!strstr(why, reason)) {
		print_error("%s: reason '%s' lacks '%s'\n", t, why, reason);
		fail();
	}
}

static void test_check(void **state)
{
	(void)state;
	check_ok(CMDTOPIC_UPSTREAM, "commands/{device}/{command}");
	check_ok(CMDTOPIC_UPSTREAM, "commands/{gateway}/+/{device}/{command}");
	check_bad(CMDTOPIC_UPSTREAM, "commands/{device}", "{command}");
	check_bad(CMDTOPIC_UPSTREAM, "commands/{device}/{command}/{device}", "once");
	check_bad(CMDTOPIC_UPSTREAM, "commands/x{device}/{command}", "whole level");
	check_bad(CMDTOPIC_UPSTREAM, "commands/{device}/{command}/#", "'#'");
	check_bad(CMDTOPIC_UPSTREAM, "commands/a+/{device}/{command}", "'+'");
	check_bad(CMDTOPIC_UPSTREAM, "c/{topic}/{device}/{command}", "{topic}");
	check_bad(CMDTOPIC_UPSTREAM, "", "1 to 1023");
	check_ok(CMDTOPIC_DEVICE, "iot-2/cmd/{command}/fmt/json");
	check_ok(CMDTOPIC_DEVICE, "devices/{device}/commands/{command}");
	check_bad(CMDTOPIC_DEVICE, "iot-2/cmd/+/fmt/json", "not allowed");
	check_bad(CMDTOPIC_DEVICE, "iot-2/cmd/fmt/json", "{command}");
	check_ok(CMDTOPIC_STATUS, "{topic}/status");
	check_ok(CMDTOPIC_STATUS, "status/{gateway}/{device}/{command}");
	check_bad(CMDTOPIC_STATUS, "{topic}/+", "not allowed");
}

static void test_render(void **state)
{
	(void)state;
	char out[64];
	struct cmdtopic_vars sub = {.gateway = "gw1"};
	assert_int_equal(cmdtopic_render("commands/{gateway}/{device}/{command}", &sub, out,
					 sizeof out),
			 (int)strlen("commands/gw1/+/+"));
	assert_string_equal(out, "commands/gw1/+/+");
	struct cmdtopic_vars v = {.device = "dev01", .command = "display", .gateway = "gw1"};
	assert_true(cmdtopic_render("iot-2/cmd/{command}/fmt/json", &v, out, sizeof out) > 0);
	assert_string_equal(out, "iot-2/cmd/display/fmt/json");
	v.topic = "commands/gw1/dev01/display";
	assert_true(cmdtopic_render("{topic}/status", &v, out, sizeof out) > 0);
	assert_string_equal(out, "commands/gw1/dev01/display/status");
	/* No value for {topic}, and too small a buffer. */
	v.topic = NULL;
	assert_int_equal(cmdtopic_render("{topic}/status", &v, out, sizeof out), -1);
	assert_int_equal(cmdtopic_render("iot-2/cmd/{command}/fmt/json", &v, out, 26), -1);
	assert_int_equal(cmdtopic_render("iot-2/cmd/{command}/fmt/json", &v, out, 27), 26);
}

static int parse(const char *tmpl, const char *topic, char *dev, char *cmd)
{
	return cmdtopic_parse(tmpl, "gw1", topic, strlen(topic), dev, 16, cmd, 16);
}

static void test_parse(void **state)
{
	(void)state;
	char dev[16], cmd[16];
	const char *t = "commands/{gateway}/+/{device}/{command}";
	assert_int_equal(parse(t, "commands/gw1/site9/dev01/display", dev, cmd), 0);
	assert_string_equal(dev, "dev01");
	assert_string_equal(cmd, "display");
	assert_int_equal(parse(t, "commands/gw2/site9/dev01/display", dev, cmd), -1);
	assert_int_equal(parse(t, "commands/gw1/site9/dev01", dev, cmd), -1);
	assert_int_equal(parse(t, "commands/gw1/site9/dev01/display/x", dev, cmd), -1);
	assert_int_equal(parse(t, "commands/gw1/site9//display", dev, cmd), -1);
	assert_int_equal(parse(t, "commands/gw1/site9/dev01/", dev, cmd), -1);
	assert_int_equal(parse(t, "commands/gw1/site9/dev0123456789abcdef/x", dev, cmd), -1);
	assert_int_equal(parse("c/{device}/{command}", "c/d/e", dev, cmd), 0);
	assert_string_equal(dev, "d");
	assert_int_equal(parse("c/{device}/{command}", "x/d/e", dev, cmd), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
