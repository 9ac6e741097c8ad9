/* Unit tests for src/status.c: the DIR/status file round-trips every field
 * (iotgw status reads what the daemon wrote), readiness ignores the upstream,
 * and the report and STATUS= line say why and since when it is down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iotgw/status.h"

static struct status_snapshot sample(void)
{
	struct status_snapshot s = {
		.pid = 4242,
		.now_unix = 1000000,
		.start_unix = 1000000 - 3 * 3600 - 120,
		.listeners = 2,
		.addresses = 3,
		.connections = 37,
		.upstream_since_unix = 1000000 - 42,
		.inflight = 3,
		.queued = 1234,
		.bytes = 210 * 1024,
		.max_messages = 100000,
		.max_bytes = 64u << 20,
		.oldest_age_s = 40,
		.readings = 99,
		.rejected = 2,
		.forwarded = 97,
		.commits = 50,
		.fsyncs = 51,
	};
	snprintf(s.version, sizeof s.version, "9.8.7");
	snprintf(s.upstream, sizeof s.upstream, "down");
	snprintf(s.upstream_why, sizeof s.upstream_why, "the broker refused: bad\ncertificate");
	return s;
}

static void test_file_round_trips(void **state)
{
	(void)state;
	struct status_snapshot s = sample();
	s.full = true;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_int_equal(status_write_kv(&s, f), 0);
	fclose(f);
	/* A reason is one line in the file: cut at the newline. */
	assert_non_null(strstr(text, "upstream_why: the broker refused: bad\nqueued") ||
			strstr(text, "upstream_why: the broker refused: bad\ninflight"));
	struct status_snapshot r;
	assert_int_equal(status_parse_kv(text, &r), 0);
	/* Written again, the parsed snapshot gives the same text: every field
	 * came back. */
	char *again = NULL;
	size_t alen = 0;
	f = open_memstream(&again, &alen);
	assert_int_equal(status_write_kv(&r, f), 0);
	fclose(f);
	assert_string_equal(again, text);
	free(again);
	assert_int_equal(r.pid, 4242);
	assert_true(r.full);
	assert_false(r.stopping);
	assert_int_equal(r.start_unix, s.start_unix);
	assert_string_equal(r.upstream_why, "the broker refused: bad");
	free(text);
	assert_int_equal(status_parse_kv("queued: 3\n", &r), -1); /* no pid */
	assert_int_equal(status_parse_kv("pid: 7\nunknown: x\nqueued: 3", &r), 0);
	assert_int_equal(r.queued, 3);
}

static void test_readiness(void **state)
{
	(void)state;
	char why[128];
	struct status_snapshot s = sample();
	assert_true(status_ready(&s, why, sizeof why)); /* upstream down: still ready */
	s.full = true;
	assert_true(status_ready(&s, why, sizeof why)); /* held back, but writing */
	s.write_failed = true;
	assert_false(status_ready(&s, why, sizeof why));
	assert_non_null(strstr(why, "spool cannot write"));
	s.write_failed = false;
	s.listeners_unbound = 1;
	assert_false(status_ready(&s, why, sizeof why));
	s.listeners_unbound = 0;
	s.stopping = true;
	assert_false(status_ready(&s, why, sizeof why));
	assert_string_equal(why, "stopping");
}

static void test_report_and_line(void **state)
{
	(void)state;
	struct status_snapshot s = sample();
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(status_report(&s, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	assert_string_equal((char *)b.data,
			    "iotgw 9.8.7, pid 4242, up 3h 2m: ready\n"
			    "listeners: 2 (3 addresses), 37 connections\n"
			    "upstream: down for 42 s: the broker refused: bad\ncertificate\n"
			    "spool: 1234 queued (210 KiB of 65536 KiB, 1234 of 100000 messages), "
			    "oldest 40 s\n"
			    "readings: 99 accepted, 2 rejected, 97 forwarded\n");
	buf_free(&b);
	char line[512];
	status_line(&s, line, sizeof line);
	assert_string_equal(line, "37 connections; upstream down; spool 1234 queued (oldest 40s); "
				  "99 readings, 2 rejected; 50 commits, 51 fsyncs; upstream down "
				  "for 42 s: the broker refused: bad\ncertificate");
	snprintf(s.upstream, sizeof s.upstream, "connected");
	s.full = true;
	status_line(&s, line, sizeof line);
	assert_string_equal(line, "37 connections; upstream connected; spool 1234 queued (oldest "
				  "40s) FULL; 99 readings, 2 rejected; 50 commits, 51 fsyncs");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_round_trips),
		cmocka_unit_test(test_readiness),
		cmocka_unit_test(test_report_and_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
