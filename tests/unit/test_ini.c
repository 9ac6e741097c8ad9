/* Unit tests for src/ini.c: the events the line reader hands out, with their
 * line numbers, and the value parsers and formatters. How config.c words
 * these events is tested in test_config.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iotgw/ini.h"

#define MAX_EVENTS 32

/* A copy of one event: the reader's strings do not outlive the callback. */
struct rec {
	enum ini_event ev;
	int line;
	char text[64], kind[64], name[64], key[64], value[64];
	bool has_text, has_name, has_key, has_value;
	unsigned char ch;
};

static struct rec recs[MAX_EVENTS];
static size_t nrecs;

static void copy(char *dst, const char *src, bool *has)
{
	*has = src != NULL;
	snprintf(dst, 64, "%s", src ? src : "");
}

static void record(void *ctx, const struct ini_line *l)
{
	(void)ctx;
	assert_true(nrecs < MAX_EVENTS);
	struct rec *r = &recs[nrecs++];
	memset(r, 0, sizeof *r);
	r->ev = l->ev;
	r->line = l->line;
	r->ch = l->ch;
	copy(r->text, l->text, &r->has_text);
	copy(r->name, l->name, &r->has_name);
	copy(r->key, l->key, &r->has_key);
	copy(r->value, l->value, &r->has_value);
	if (l->text) {
		assert_true(l->kind_len <= strlen(l->text));
		snprintf(r->kind, sizeof r->kind, "%.*s", (int)l->kind_len, l->text);
	} else {
		assert_int_equal(l->kind_len, 0);
	}
}

static void read_len(const char *text, size_t len)
{
	nrecs = 0;
	assert_int_equal(ini_read(text, len, record, NULL), 0);
}

static void read_str(const char *text)
{
	read_len(text, strlen(text));
}

static void expect_section(size_t i, int line, const char *text, const char *kind,
			   const char *name)
{
	assert_true(i < nrecs);
	assert_int_equal(recs[i].ev, INI_SECTION);
	assert_int_equal(recs[i].line, line);
	assert_string_equal(recs[i].text, text);
	assert_string_equal(recs[i].kind, kind);
	assert_string_equal(recs[i].name, name);
	assert_false(recs[i].has_key);
	assert_false(recs[i].has_value);
}

static void expect_key(size_t i, int line, const char *key, const char *value)
{
	assert_true(i < nrecs);
	assert_int_equal(recs[i].ev, INI_KEY);
	assert_int_equal(recs[i].line, line);
	assert_string_equal(recs[i].key, key);
	assert_string_equal(recs[i].value, value);
	assert_false(recs[i].has_text);
	assert_false(recs[i].has_name);
}

/* An event that carries nothing but its kind and line (and ch). */
static void expect_bare(size_t i, int line, enum ini_event ev)
{
	assert_true(i < nrecs);
	assert_int_equal(recs[i].ev, ev);
	assert_int_equal(recs[i].line, line);
	assert_false(recs[i].has_key);
	assert_false(recs[i].has_value);
	assert_false(recs[i].has_name);
	if (ev != INI_BAD_HEADER)
		assert_false(recs[i].has_text);
}

/* ---- the reader ---- */

static void test_sections_and_keys(void **state)
{
	(void)state;
	read_str("[gateway]\n"                   /* 1 */
		 "name = gw\n"                   /* 2 */
		 "  [ listener \t a ]  \n"       /* 3 */
		 "\tbind\t=\t127.0.0.1:8883  \n" /* 4 */
		 "k=v\n"                         /* 5 */
		 "[kind two words]\n"            /* 6 */
		 "[]\n");                        /* 7 */
	assert_int_equal(nrecs, 7);
	expect_section(0, 1, "gateway", "gateway", "");
	expect_key(1, 2, "name", "gw");
	/* text keeps the inner blanks, for messages that quote the header */
	expect_section(2, 3, "listener \t a", "listener", "a");
	expect_key(3, 4, "bind", "127.0.0.1:8883");
	expect_key(4, 5, "k", "v");
	expect_section(5, 6, "kind two words", "kind", "two words");
	expect_section(6, 7, "", "", "");
}

static void test_values_keep_what_follows_the_first_equals(void **state)
{
	(void)state;
	read_str("password = s3cret=with=equals\n"
		 "topic = sensors/# ; not a comment\n"
		 "empty =\n"
		 "blank =   \t\n"
		 "key with blank = x\n");
	assert_int_equal(nrecs, 5);
	expect_key(0, 1, "password", "s3cret=with=equals");
	expect_key(1, 2, "topic", "sensors/# ; not a comment");
	expect_key(2, 3, "empty", "");
	expect_key(3, 4, "blank", "");
	expect_key(4, 5, "key with blank", "x");
}

static void test_comments_and_blank_lines_are_skipped(void **state)
{
	(void)state;
	read_str("# comment\n; another\n   # indented\n\t; tab\n\n  \t \nk = v\n#[x]\n;a = b\n");
	assert_int_equal(nrecs, 1);
	expect_key(0, 7, "k", "v");
}

static void test_malformed_lines(void **state)
{
	(void)state;
	read_str("password: s3cret\n" /* 1 */
		 "= value\n"          /* 2 */
		 " =\n"               /* 3 */
		 "  [gateway  \n"     /* 4 */
		 "[\n"                /* 5 */
		 "[a] # comment\n"    /* 6 */
		 "a = b\n");          /* 7 */
	assert_int_equal(nrecs, 7);
	expect_bare(0, 1, INI_NO_EQUALS);
	expect_bare(1, 2, INI_NO_KEY);
	expect_bare(2, 3, INI_NO_KEY);
	expect_bare(3, 4, INI_BAD_HEADER);
	assert_string_equal(recs[3].text, "[gateway");
	expect_bare(4, 5, INI_BAD_HEADER);
	assert_string_equal(recs[4].text, "[");
	expect_bare(5, 6, INI_BAD_HEADER);
	assert_string_equal(recs[5].text, "[a] # comment");
	expect_key(6, 7, "a", "b"); /* reading goes on */
}

static void test_crlf_and_last_line(void **state)
{
	(void)state;
	read_str("[s]\r\na = 1\r\n\r\n# c\r\nb = 2\r");
	assert_int_equal(nrecs, 3);
	expect_section(0, 1, "s", "s", "");
	expect_key(1, 2, "a", "1");
	expect_key(2, 5, "b", "2"); /* a CR that ends the text goes like that of a CRLF */

	read_str("a = 1"); /* no newline at all */
	assert_int_equal(nrecs, 1);
	expect_key(0, 1, "a", "1");

	read_str("a = 1\n\n\n");
	assert_int_equal(nrecs, 1);
}

static void test_empty_input(void **state)
{
	(void)state;
	read_len("", 0);
	assert_int_equal(nrecs, 0);
	read_len("\xEF\xBB\xBF", 3);
	assert_int_equal(nrecs, 0);
}

static void test_not_nul_terminated(void **state)
{
	(void)state;
	static const char text[] = "a = abcGARBAGE";
	read_len(text, strlen("a = abc"));
	assert_int_equal(nrecs, 1);
	expect_key(0, 1, "a", "abc");
}

static void test_bom_only_at_start(void **state)
{
	(void)state;
	read_str("\xEF\xBB\xBF[gateway]\nname = bom\n");
	assert_int_equal(nrecs, 2);
	expect_section(0, 1, "gateway", "gateway", "");
	expect_key(1, 2, "name", "bom");

	/* anywhere else it is just bytes of the line */
	read_str("a = 1\n\xEF\xBB\xBF[gateway]\n\xEF\xBB\xBFk = v\n");
	assert_int_equal(nrecs, 3);
	expect_bare(1, 2, INI_NO_EQUALS);
	expect_key(2, 3, "\xEF\xBB\xBFk", "v");
}

static void test_line_length_limit(void **state)
{
	(void)state;
	size_t cap = 3 * INI_LINE_MAX;
	char *big = malloc(cap);
	assert_non_null(big);

	/* INI_LINE_MAX bytes, then CRLF: the CR is not counted */
	memset(big, '#', INI_LINE_MAX);
	memcpy(big + INI_LINE_MAX, "\r\na = 1\n", 8);
	read_len(big, INI_LINE_MAX + 8);
	assert_int_equal(nrecs, 1);
	expect_key(0, 2, "a", "1");

	/* one more byte: reported, the line is not looked at, reading goes on */
	size_t n = 0;
	memcpy(big, "a = ", 4);
	memset(big + 4, 'x', INI_LINE_MAX - 3);
	n = INI_LINE_MAX + 1;
	memcpy(big + n, "\nb = 2\n", 7);
	n += 7;
	read_len(big, n);
	assert_int_equal(nrecs, 2);
	expect_bare(0, 1, INI_TOO_LONG);
	expect_key(1, 2, "b", "2");

	/* a long last line without a newline */
	memset(big, 'x', 2 * INI_LINE_MAX);
	read_len(big, 2 * INI_LINE_MAX);
	assert_int_equal(nrecs, 1);
	expect_bare(0, 1, INI_TOO_LONG);
	free(big);
}

static void test_control_characters(void **state)
{
	(void)state;
	static const char text[] = "a = x\0y\n"  /* 1: NUL */
				   "b = \x1b[31m\n"  /* 2: ESC */
				   "c = a\rb\n"       /* 3: lone CR */
				   "d = \x7f\n"       /* 4: DEL */
				   "e\t=\tok\t\n"     /* 5: tabs are blanks */
				   "f = \x01\x02\n"  /* 6: the first one is reported */
				   "g = \xc3\xa9\n"; /* 7: UTF-8 is not control */
	read_len(text, sizeof text - 1);
	assert_int_equal(nrecs, 7);
	static const unsigned char ch[] = {0x00, 0x1b, 0x0d, 0x7f};
	for (size_t i = 0; i < 4; i++) {
		expect_bare(i, (int)i + 1, INI_CONTROL);
		assert_int_equal(recs[i].ch, ch[i]);
	}
	expect_key(4, 5, "e", "ok");
	expect_bare(5, 6, INI_CONTROL);
	assert_int_equal(recs[5].ch, 0x01);
	expect_key(6, 7, "g", "\xc3\xa9");
}

/* ---- values ---- */

static void test_parse_uint(void **state)
{
	(void)state;
	uint64_t v = 0;
	assert_int_equal(ini_parse_uint("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(ini_parse_uint("008883", &v), 0);
	assert_true(v == 8883);
	assert_int_equal(ini_parse_uint("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);

	static const char *const syntax[] = {"", "12x", "-1", "+5", "0x10", "1 2", "1.0", " 1",
					     "1 "};
	for (size_t i = 0; i < sizeof syntax / sizeof syntax[0]; i++) {
		v = 42;
		assert_int_equal(ini_parse_uint(syntax[i], &v), INI_ESYNTAX);
		assert_true(v == 42); /* untouched */
	}
	v = 42;
	assert_int_equal(ini_parse_uint("18446744073709551616", &v), INI_ERANGE);
	assert_int_equal(ini_parse_uint("99999999999999999999", &v), INI_ERANGE);
	assert_true(v == 42);
}

static void test_parse_duration(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		uint64_t ms;
	} ok[] = {{"90", 90000},   {"90s", 90000},   {"2m", 120000},   {"1h", 3600000},
		  {"5 s", 5000},   {"500ms", 500},   {"0", 0},         {"0005s", 5000},
		  {"1\tm", 60000}, {"60000ms", 60000}, {"18446744073709551615ms", UINT64_MAX}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		uint64_t ms = 1;
		assert_int_equal(ini_parse_duration_ms(ok[i].s, &ms), 0);
		assert_true(ms == ok[i].ms);
	}
	static const char *const syntax[] = {"",   "s",   "-5s",     "1.5s", "10 sec",
					     "10S", "1H",  "10s ",    " 10s", "10 ms x"};
	for (size_t i = 0; i < sizeof syntax / sizeof syntax[0]; i++) {
		uint64_t ms = 7;
		assert_int_equal(ini_parse_duration_ms(syntax[i], &ms), INI_ESYNTAX);
		assert_true(ms == 7);
	}
	uint64_t ms = 7;
	assert_int_equal(ini_parse_duration_ms("18446744073709551615", &ms), INI_ERANGE);
	assert_int_equal(ini_parse_duration_ms("18446744073709551615h", &ms), INI_ERANGE);
	assert_int_equal(ini_parse_duration_ms("99999999999999999999s", &ms), INI_ERANGE);
	assert_true(ms == 7);
}

static void test_parse_size(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		uint64_t n;
	} ok[] = {{"128", 128},          {"16K", 16384},       {"16KiB", 16384},
		  {"1M", 1048576},       {"1MiB", 1048576},    {"1024 K", 1048576},
		  {"2G", 2ull << 30},    {"2GiB", 2ull << 30}, {"0", 0},
		  {"16\tK", 16384}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		uint64_t n = 1;
		assert_int_equal(ini_parse_size(ok[i].s, &n), 0);
		assert_true(n == ok[i].n);
	}
	static const char *const syntax[] = {"", "K", "16k", "16KB", "-1K", "1.5K", "1T", "16K "};
	for (size_t i = 0; i < sizeof syntax / sizeof syntax[0]; i++) {
		uint64_t n = 7;
		assert_int_equal(ini_parse_size(syntax[i], &n), INI_ESYNTAX);
		assert_true(n == 7);
	}
	uint64_t n = 7;
	assert_int_equal(ini_parse_size("18446744073709551615G", &n), INI_ERANGE);
	assert_int_equal(ini_parse_size("17179869184G", &n), INI_ERANGE); /* 2^34 GiB */
	assert_int_equal(ini_parse_size("99999999999999999999", &n), INI_ERANGE);
	assert_true(n == 7);
	assert_int_equal(ini_parse_size("17179869183G", &n), 0);
	assert_true(n == (17179869183ull << 30));
}

static void test_parse_double(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		double d;
	} ok[] = {{"0.1", 0.1}, {"-50", -50.0}, {"1e-2", 0.01}, {"+2.5", 2.5}, {"3.", 3.0},
		  {".5", 0.5},  {"1E3", 1000.0}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		double d = 0;
		assert_int_equal(ini_parse_double(ok[i].s, &d), 0);
		assert_true(d == ok[i].d);
	}
	static const char *const syntax[] = {"",    "abc", "nan", "inf",   "-inf", "0x10",
					     "1.5.3", "1,5", "-",   " 1",  "1 ",   "1e"};
	for (size_t i = 0; i < sizeof syntax / sizeof syntax[0]; i++) {
		double d = 7.0;
		assert_int_equal(ini_parse_double(syntax[i], &d), INI_ESYNTAX);
		assert_true(d == 7.0);
	}
	double d = 7.0;
	assert_int_equal(ini_parse_double("1e999", &d), INI_ERANGE);
	assert_int_equal(ini_parse_double("-1e999", &d), INI_ERANGE);
	assert_int_equal(ini_parse_double("1e-999", &d), INI_ERANGE);
	assert_true(d == 7.0);
}

static void test_parse_bool(void **state)
{
	(void)state;
	static const char *const yes[] = {"yes", "true", "on", "1", "YES", "True"};
	static const char *const no[] = {"no", "false", "off", "0", "No", "OFF"};
	static const char *const bad[] = {"", "2", "y", "n", "yes ", "enable", "01"};
	bool b;
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		b = false;
		assert_int_equal(ini_parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		b = true;
		assert_int_equal(ini_parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		b = true;
		assert_int_equal(ini_parse_bool(bad[i], &b), INI_ESYNTAX);
		assert_true(b);
	}
}

static void test_format(void **state)
{
	(void)state;
	static const struct {
		uint64_t v;
		const char *dur, *size;
	} cases[] = {
		{0, "0s", "0"},
		{100, "100ms", "100"},
		{1000, "1s", "1000"},
		{1024, "1024ms", "1K"},
		{90000, "90s", "90000"},
		{120000, "2m", "120000"},
		{3600000, "1h", "3600000"},
		{64800000, "18h", "64800000"},
		{1048576, "1048576ms", "1M"},
		{1536ull << 20, "1610612736ms", "1536M"},
		{64ull << 30, "68719476736ms", "64G"},
		{UINT64_MAX, "18446744073709551615ms", "18446744073709551615"},
	};
	char out[24];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ini_format_duration_ms(cases[i].v, out, sizeof out);
		assert_string_equal(out, cases[i].dur);
		ini_format_size(cases[i].v, out, sizeof out);
		assert_string_equal(out, cases[i].size);
	}
	/* what the formatters write, the parsers read back */
	static const uint64_t back[] = {0, 500, 1000, 60000, 3600000, 1024, 1 << 20, 1ull << 30};
	for (size_t i = 0; i < sizeof back / sizeof back[0]; i++) {
		uint64_t v;
		ini_format_duration_ms(back[i], out, sizeof out);
		assert_int_equal(ini_parse_duration_ms(out, &v), 0);
		assert_true(v == back[i]);
		ini_format_size(back[i], out, sizeof out);
		assert_int_equal(ini_parse_size(out, &v), 0);
		assert_true(v == back[i]);
	}
	/* truncated like snprintf, always terminated */
	char small[4];
	ini_format_duration_ms(123456, small, sizeof small);
	assert_string_equal(small, "123");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sections_and_keys),
		cmocka_unit_test(test_values_keep_what_follows_the_first_equals),
		cmocka_unit_test(test_comments_and_blank_lines_are_skipped),
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_crlf_and_last_line),
		cmocka_unit_test(test_empty_input),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_bom_only_at_start),
		cmocka_unit_test(test_line_length_limit),
		cmocka_unit_test(test_control_characters),
		cmocka_unit_test(test_parse_uint),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_double),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
