/* numfmt: numbers to and from decimal text on the per-reading path, without
 * printf, scanf or locale-dependent libc calls for the usual values.
 *
 * Both directions have an exact fast path for the numbers sensors send and
 * fall back to the C library for the rest, so the results are exactly those
 * of the C library calls they replace (tests/unit/test_numfmt.c compares them
 * on fixed edge cases and a few hundred thousand pseudo-random values).
 * The fallbacks assume the "C" LC_NUMERIC locale, which the daemon never
 * changes (it does not call setlocale), and the default rounding mode.
 * Pure: no I/O, no allocation, no global state. */
#ifndef IOTGW_NUMFMT_H
#define IOTGW_NUMFMT_H

#include <stddef.h>

/* Room for any numfmt_json text and its NUL: "%1.17g" needs at most 24
 * characters ("-2.2250738585072014e-308"). */
#define NUMFMT_JSON_CAP 32

/* v as cJSON prints a number, the documented form of numbers in the
 * normalized reading: "null" if not finite; "%d" for integral values within
 * int (so -0 is "0"); else "%1.15g" if that reads back as v (within cJSON's
 * relative DBL_EPSILON), else "%1.17g". Writes the text and a NUL into out;
 * returns its length. */
size_t numfmt_json(double v, char out[NUMFMT_JSON_CAP]);

/* The same text for the values it covers, written digit by digit: "null",
 * integral values below 1e15 in magnitude, and values from 1e-4 to 1e15 in
 * magnitude that are the double nearest to a decimal with at most 6
 * fraction digits and 15 significant digits (21.37, -40.25, 0.1). Returns
 * the length, or 0 (out unspecified) for the rest, which numfmt_json hands
 * to snprintf. Exposed for the tests. */
size_t numfmt_json_fast(double v, char out[NUMFMT_JSON_CAP]);

/* Longest number text numfmt_parse reads (cJSON reads no more either). */
#define NUMFMT_PARSE_MAX 63

/* p[0..n) must be exactly a decimal number: [+-] digits [. digits]
 * [(e|E) [+-] digits], with at least one digit before the exponent (".5",
 * "5." and "007" are fine; hex, "inf", "nan" and whitespace are not).
 * Sets *out to what strtod returns for it (the nearest double; overflow is
 * +-HUGE_VAL, underflow rounds towards 0) and returns 0; -1, with *out
 * untouched, if p is not such a number or n > NUMFMT_PARSE_MAX. */
int numfmt_parse(const char *p, size_t n, double *out);

/* numfmt_parse's exact path alone: 0 with *out set when p[0..n) has at most
 * 19 significant digits making an integer m <= 2^53 and a decimal exponent
 * e with |e| <= 22 (value m * 10^e, or zero); -1 otherwise, including for
 * text that is not a number. Exposed for the tests. */
int numfmt_parse_fast(const char *p, size_t n, double *out);

#endif
