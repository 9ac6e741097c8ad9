/* ini: the line syntax of iotgw.conf and the syntax of its values.
 *
 * A reader, not a parser: ini_read splits a text into lines and hands every
 * line that is not blank or a comment to a callback, with its line number.
 * Which sections and keys exist, and what a value means, is the caller's
 * business (config.c keeps them in one table).
 *
 * Our own rather than inih: Debian's shared libinih is built without
 * INI_HANDLER_LINENO, so its handler never learns the line of a key, and
 * every configuration diagnostic must be FILE:LINE. The format is small on
 * purpose: [kind] or [kind NAME] headers, `key = value` lines, full-line
 * comments starting with # or ; (no inline comments: MQTT topic filters
 * contain '#'), no quoting, no continuation lines; LF or CRLF line ends and
 * a UTF-8 byte order mark at the very start are accepted.
 *
 * Pure: no I/O and no messages. A line that cannot be read is an event like
 * any other, and the caller words the diagnostic. Nothing here allocates
 * for the caller: the strings a callback sees belong to the reader and live
 * only during the call; the parsers write into the caller's variables. */
#ifndef IOTGW_INI_H
#define IOTGW_INI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes per line, without the line ending: a configuration line has no
 * reason to be longer, and a bound keeps the line buffer fixed. */
#define INI_LINE_MAX 4096

enum ini_event {
	INI_SECTION,    /* "[kind]" or "[kind NAME]" */
	INI_KEY,        /* "key = value" */
	INI_TOO_LONG,   /* more than INI_LINE_MAX bytes; not looked at further */
	INI_CONTROL,    /* a control character other than tab (NUL, ESC, lone CR, DEL) */
	INI_BAD_HEADER, /* starts with '[' but does not end with ']' */
	INI_NO_EQUALS,  /* neither blank, comment, header nor key = value */
	INI_NO_KEY,     /* "= value": nothing before the '=' */
};

/* One line as the callback sees it. Leading and trailing blanks (space,
 * tab) are already gone from every string. The strings live in the reader's
 * line buffer: valid only during the callback. Members not listed for an
 * event are NULL or 0. */
struct ini_line {
	enum ini_event ev;
	int line; /* 1-based */
	/* INI_SECTION: the text between the brackets ("listener  a" for
	 * "[ listener  a ]"), kind_len the length of its first word and name the
	 * rest ("a"; "" when there is none). INI_BAD_HEADER: the whole line. */
	const char *text;
	size_t kind_len;
	const char *name;
	/* INI_KEY: key is never empty, value may be; the value is everything
	 * after the first '=', '#' and ';' included. */
	const char *key, *value;
	unsigned char ch; /* INI_CONTROL: the first offending byte */
};

typedef void (*ini_handler)(void *ctx, const struct ini_line *l);

/* Reads text (len bytes, need not be NUL-terminated) and calls fn for each
 * line in order; a bad line is reported and reading goes on, so one pass
 * finds every problem. Returns 0, or -1 when the line buffer cannot be
 * allocated (fn was not called then). */
__attribute__((warn_unused_result)) int ini_read(const char *text, size_t len, ini_handler fn,
						 void *ctx);

/* ---- values ----
 *
 * The value parsers take a whole, already trimmed value and return 0 (and
 * set *out), INI_ESYNTAX when it is not of the form, or INI_ERANGE when it
 * is but does not fit (the caller checks its own narrower range). *out is
 * untouched on failure. Integers are decimal digits only, with no sign
 * and no leading blanks: strtoull alone would take " 12", and "-1" and wrap
 * it. */

enum { INI_ESYNTAX = -1, INI_ERANGE = -2 };

/* Binary size units and durations in milliseconds. */
#define INI_KIB UINT64_C(1024)
#define INI_MIB (1024 * INI_KIB)
#define INI_GIB (1024 * INI_MIB)
#define INI_SEC UINT64_C(1000)
#define INI_MIN (60 * INI_SEC)
#define INI_HOUR (60 * INI_MIN)

/* Decimal digits only: "8883", "008883". */
__attribute__((warn_unused_result)) int ini_parse_uint(const char *s, uint64_t *out);

/* In milliseconds: "10" (seconds), "10s", "500ms", "2m", "1h"; blanks are
 * allowed between number and unit, units are case-sensitive. */
__attribute__((warn_unused_result)) int ini_parse_duration_ms(const char *s, uint64_t *ms);

/* In bytes: "16384", "16K", "16KiB", "64M", "64MiB", "1G", "1GiB" (all binary
 * units); blanks are allowed between number and unit. */
__attribute__((warn_unused_result)) int ini_parse_size(const char *s, uint64_t *n);

/* A finite decimal number: "-50", "+2.5", "1e-2", "3.". Not "nan", "inf"
 * or hex floats, which strtod alone would take. */
__attribute__((warn_unused_result)) int ini_parse_double(const char *s, double *out);

/* yes/no, true/false, on/off, 1/0, in any case. Returns 0 or INI_ESYNTAX. */
__attribute__((warn_unused_result)) int ini_parse_bool(const char *s, bool *out);

/* The inverse of the two unit parsers, for messages: the largest unit that
 * divides the value ("90s", "500ms", "2m", "1h"; "128", "16K", "64M", "1G").
 * Truncated to cap bytes like snprintf; 24 bytes always suffice. */
void ini_format_duration_ms(uint64_t ms, char *out, size_t cap);
void ini_format_size(uint64_t n, char *out, size_t cap);

#endif
