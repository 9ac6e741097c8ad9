/* text: the rules for reading untrusted bytes as text, in one place.
 *
 *   - text_utf8_span: how much of a byte string is well-formed UTF-8. The
 *     MQTT string rule (mqtt_utf8_valid) and the decoder's payload rule add
 *     their own bans (U+0000, control bytes) on top of this one scanner.
 *   - text_quote: the one way to show untrusted bytes (a topic, a client id,
 *     a payload, a config value, a whole log message) in a reason or a log
 *     line: bounded, and printable, so that nobody can forge log lines with
 *     newlines or terminal escapes or make one unbounded.
 *
 * Pure: no I/O, no allocation, no state. text_quote writes into the caller's
 * buffer and returns it; nothing here keeps a pointer to its arguments.
 * Short form of the module: text_. */
#ifndef IOTGW_TEXT_H
#define IOTGW_TEXT_H

#include <stddef.h>

/* The length of the well-formed UTF-8 at the start of p[0..n) (Unicode
 * table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF;
 * U+0000 is well-formed): n when all of it is, else the offset of the first
 * byte that does not start a well-formed sequence. */
size_t text_utf8_span(const char *p, size_t n);

/* text_quote flags. */
/* Well-formed UTF-8 is shown as it is, and a cut never splits a character:
 * for text a person wrote (a config value, a formatted log message). */
#define TEXT_KEEP_UTF8 1u
/* No double quotes around the text, so '"' and '\' are not escaped either,
 * and a cut is marked "..." alone: for a message that puts its own quotes
 * around the value ('%s'), or for a whole log line. */
#define TEXT_UNQUOTED 2u

/* Room text_quote needs to show max bytes whatever they are. */
#define TEXT_QUOTE_CAP(max) (4 * (size_t)(max) + sizeof "\"\"... (18446744073709551615 bytes)")

/* Writes the first max bytes of p[0..n) into dst (capacity cap) as printable
 * ASCII and returns dst. By default: "text" in double quotes, '"' and '\' as
 * \" and \\, every byte outside 0x20..0x7e as \xHH (with TEXT_KEEP_UTF8,
 * well-formed UTF-8 stays), and when more than max bytes were given, the
 * total after the closing quote: "abc"... (517 bytes). A cap below
 * TEXT_QUOTE_CAP(max) shows fewer bytes, never overflows; below
 * TEXT_QUOTE_CAP(0), dst is "". p may be NULL when n is 0. */
const char *text_quote(char *dst, size_t cap, const char *p, size_t n, size_t max,
		       unsigned flags);

/* The address of a peer written as "1.2.3.4:5678" or "[::1]:5678"
 * ("1.2.3.4", "::1") into out; returns out, or NULL when peer is NULL, has
 * no port or does not fit. */
const char *text_peer_address(const char *peer, char *out, size_t cap);

#endif
