/* ini: the iotgw.conf line reader and value syntax (see iotgw/ini.h). Pure:
 * no I/O; the only allocation is the line buffer of ini_read. */
#include "iotgw/ini.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char *trim(char *s)
{
	while (is_blank(*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && is_blank(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* ---- lines ---- */

/* line: one line, NUL-terminated, free of control characters; modified. */
static void read_line(char *line, int lineno, ini_handler fn, void *ctx)
{
	struct ini_line l = {.line = lineno};
	line = trim(line);
	if (*line == '\0' || *line == '#' || *line == ';')
		return;
	if (*line == '[') {
		size_t n = strlen(line);
		if (line[n - 1] != ']') {
			l.ev = INI_BAD_HEADER;
			l.text = line;
			fn(ctx, &l);
			return;
		}
		line[n - 1] = '\0';
		l.ev = INI_SECTION;
		l.text = trim(line + 1);
		l.kind_len = strcspn(l.text, " \t");
		/* text is trimmed at its end, so the name after the blanks is too */
		l.name = l.text + l.kind_len;
		while (is_blank(*l.name))
			l.name++;
		fn(ctx, &l);
		return;
	}
	char *eq = strchr(line, '=');
	if (!eq) {
		l.ev = INI_NO_EQUALS;
		fn(ctx, &l);
		return;
	}
	*eq = '\0';
	l.key = trim(line);
	l.value = trim(eq + 1);
	if (*l.key == '\0') {
		l.ev = INI_NO_KEY;
		l.key = l.value = NULL;
		fn(ctx, &l);
		return;
	}
	l.ev = INI_KEY;
	fn(ctx, &l);
}

int ini_read(const char *text, size_t len, ini_handler fn, void *ctx)
{
	char *buf = malloc(INI_LINE_MAX + 1);
	if (!buf)
		return -1;
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
		if (ll > INI_LINE_MAX) {
			struct ini_line l = {.ev = INI_TOO_LONG, .line = lineno};
			fn(ctx, &l);
			continue;
		}
		/* A NUL would cut the line short unseen, and an ESC or a lone CR
		 * echoed in a message could forge log lines. */
		size_t bad = 0;
		while (bad < ll) {
			unsigned char c = (unsigned char)ls[bad];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				break;
			bad++;
		}
		if (bad < ll) {
			struct ini_line l = {.ev = INI_CONTROL,
					     .line = lineno,
					     .ch = (unsigned char)ls[bad]};
			fn(ctx, &l);
			continue;
		}
		memcpy(buf, ls, ll);
		buf[ll] = '\0';
		read_line(buf, lineno, fn, ctx);
	}
	free(buf);
	return 0;
}

/* ---- values ---- */

/* Decimal digits at s. Returns 0 and sets *end, INI_ESYNTAX if s does not
 * start with a digit, INI_ERANGE on overflow. */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
	if (!is_digit(*s))
		return INI_ESYNTAX;
	errno = 0;
	char *e;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno == ERANGE || v > UINT64_MAX)
		return INI_ERANGE;
	*out = (uint64_t)v;
	*end = e;
	return 0;
}

int ini_parse_uint(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v;
	int rc = parse_digits(s, &v, &end);
	if (rc != 0)
		return rc;
	if (*end != '\0')
		return INI_ESYNTAX;
	*out = v;
	return 0;
}

struct ini_unit {
	const char *name;
	uint64_t mult;
};

/* Digits, optional blanks, then one of the units (the first entry, "",
 * is the bare number); the product must fit in 64 bits. */
static int parse_with_unit(const char *s, const struct ini_unit *units, size_t nunits,
			   uint64_t *out)
{
	uint64_t v;
	const char *u;
	int rc = parse_digits(s, &v, &u);
	if (rc != 0)
		return rc;
	while (is_blank(*u))
		u++;
	for (size_t i = 0; i < nunits; i++) {
		if (strcmp(u, units[i].name) != 0)
			continue;
		if (v > UINT64_MAX / units[i].mult)
			return INI_ERANGE;
		*out = v * units[i].mult;
		return 0;
	}
	return INI_ESYNTAX;
}

int ini_parse_duration_ms(const char *s, uint64_t *ms)
{
	static const struct ini_unit units[] = {
		{"", INI_SEC}, {"s", INI_SEC}, {"ms", 1}, {"m", INI_MIN}, {"h", INI_HOUR},
	};
	return parse_with_unit(s, units, sizeof units / sizeof units[0], ms);
}

int ini_parse_size(const char *s, uint64_t *n)
{
	static const struct ini_unit units[] = {
		{"", 1},	   {"K", INI_KIB}, {"KiB", INI_KIB}, {"M", INI_MIB},
		{"MiB", INI_MIB}, {"G", INI_GIB}, {"GiB", INI_GIB},
	};
	return parse_with_unit(s, units, sizeof units / sizeof units[0], n);
}

int ini_parse_double(const char *s, double *out)
{
	/* only these characters: strtod would also take "nan", "inf", hex
	 * floats and leading blanks */
	if (*s == '\0' || strspn(s, "0123456789+-.eE") != strlen(s))
		return INI_ESYNTAX;
	errno = 0;
	char *end;
	double d = strtod(s, &end);
	if (end == s || *end != '\0')
		return INI_ESYNTAX;
	if (errno == ERANGE || !isfinite(d))
		return INI_ERANGE;
	*out = d;
	return 0;
}

int ini_parse_bool(const char *s, bool *out)
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
	return INI_ESYNTAX;
}

void ini_format_duration_ms(uint64_t ms, char *out, size_t cap)
{
	if (ms != 0 && ms % INI_HOUR == 0)
		snprintf(out, cap, "%" PRIu64 "h", ms / INI_HOUR);
	else if (ms != 0 && ms % INI_MIN == 0)
		snprintf(out, cap, "%" PRIu64 "m", ms / INI_MIN);
	else if (ms % INI_SEC == 0)
		snprintf(out, cap, "%" PRIu64 "s", ms / INI_SEC);
	else
		snprintf(out, cap, "%" PRIu64 "ms", ms);
}

void ini_format_size(uint64_t n, char *out, size_t cap)
{
	if (n != 0 && n % INI_GIB == 0)
		snprintf(out, cap, "%" PRIu64 "G", n / INI_GIB);
	else if (n != 0 && n % INI_MIB == 0)
		snprintf(out, cap, "%" PRIu64 "M", n / INI_MIB);
	else if (n != 0 && n % INI_KIB == 0)
		snprintf(out, cap, "%" PRIu64 "K", n / INI_KIB);
	else
		snprintf(out, cap, "%" PRIu64, n);
}
