/* numfmt: decimal text of numbers for the normalized reading and the
 * decoders. Every reading carries one to three numbers, so the usual ones
 * are converted exactly by hand; printf, sscanf and strtod (locale-aware,
 * and far slower) only see the rare rest. Pure. */
#include "iotgw/numfmt.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fast paths rest on one double multiplication or division being
 * correctly rounded to double (IEEE 754, round to nearest). With excess
 * precision (x87, FLT_EVAL_METHOD 2) results would be rounded twice, so
 * there everything goes through the C library. */
#if FLT_EVAL_METHOD == 0
#define EXACT_ARITH true
#else
#define EXACT_ARITH false
#endif

/* 10^0 .. 10^22, each exact in a double (5^22 < 2^53). */
static const double pow10_exact[23] = {
	1e0,  1e1,  1e2,  1e3,	1e4,  1e5,  1e6,  1e7,	1e8,  1e9,  1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#define FRAC_MAX 6 /* fraction digits the formatter writes by hand */

static const uint64_t pow10_u64[FRAC_MAX + 1] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Decimal digits of v, right-aligned so that they end at end; returns where
 * they start. */
static char *digits_u64(uint64_t v, char *end)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

/* out = optional '-', then [p, end), then a NUL. */
static size_t emit(char out[NUMFMT_JSON_CAP], bool minus, const char *p, const char *end)
{
	size_t n = 0;
	if (minus)
		out[n++] = '-';
	memcpy(out + n, p, (size_t)(end - p));
	n += (size_t)(end - p);
	out[n] = '\0';
	return n;
}

size_t numfmt_json_fast(double v, char out[NUMFMT_JSON_CAP])
{
	if (!isfinite(v)) {
		memcpy(out, "null", 5);
		return 4;
	}
	double a = fabs(v);
	if (!EXACT_ARITH || !(a < 1e15))
		return 0;
	char d[24];
	char *end = d + sizeof(d);
	/* Integral values: "%d" (within int) and "%1.15g" (at most 15 digits
	 * here, so fixed notation and exact) both print all the digits, and
	 * -0.0 is "0" ((int)-0.0 is 0; -0.0 < 0 is false). The conversion
	 * truncates, exactly. */
	uint64_t whole = (uint64_t)a;
	if ((double)whole == a)
		return emit(out, v < 0, digits_u64(whole, end), end);
	if (a < 1e-4)
		return 0; /* "%1.15g" uses an exponent there */
	/* Not integral: cJSON prints "%1.15g" when that reads back. Look for
	 * the decimal D = m / 10^k (k <= 6, m < 10^15) whose nearest double is
	 * a; if a is that, a * 10^k is within 2^-52 * 10^15 < 0.25 of m, so
	 * rounding finds m.
	 *
	 * Why "%1.15g" of a is then exactly D, without trailing zeros: m and
	 * 10^k are exact doubles and the division is correctly rounded, so the
	 * check below means a is the double nearest to D, |a - D| <= 2^-53 a.
	 * D has at most 15 significant digits; with 10^e <= D < 10^(e+1) it lies
	 * on the 15-digit grid of spacing 10^(e-14), and a is within
	 * 2^-53 * 10^(e+1) < 1.2 * 10^(e-15) of it, less than half the spacing,
	 * so rounding a to 15 digits gives D. (Should a fall just below 10^e = D,
	 * the grid there is ten times finer, but then |a - D| <= 2^-53 * 10^e
	 * < 1.2 * 10^(e-16) is still less than half of it.) %g then writes D in
	 * fixed notation, its exponent being within -4 .. 14 (a >= 1e-4 rules
	 * out a D below 1e-4, which with 6 decimals would be <= 0.000099), and
	 * drops trailing zeros. D reads back as its nearest double, a, so cJSON
	 * keeps this form; and a is not integral, so "%d" does not apply. */
	for (int k = 1; k <= FRAC_MAX; k++) {
		double s = a * pow10_exact[k];
		if (s >= 1e15)
			return 0; /* more than 15 significant digits */
		uint64_t m = (uint64_t)(s + 0.5); /* s < 2^52: s + 0.5 is exact */
		if ((double)m / pow10_exact[k] != a)
			continue;
		uint64_t f = m % pow10_u64[k];
		if (f == 0)
			return 0; /* D integral: a would be too, handled above */
		int fd = k;
		while (f % 10 == 0) {
			f /= 10;
			fd--;
		}
		char *p = end;
		for (int i = 0; i < fd; i++) {
			*--p = (char)('0' + f % 10);
			f /= 10;
		}
		*--p = '.';
		p = digits_u64(m / pow10_u64[k], p);
		return emit(out, v < 0, p, end);
	}
	return 0;
}

size_t numfmt_json(double v, char out[NUMFMT_JSON_CAP])
{
	size_t n = numfmt_json_fast(v, out);
	if (n > 0)
		return n;
	/* The rest (more digits, tiny or huge magnitudes): cJSON's own rule,
	 * its read-back check included (a relative DBL_EPSILON, not equality). */
	double a = fabs(v);
	int len;
	if (a <= INT_MAX && v == (double)(int)v) {
		len = snprintf(out, NUMFMT_JSON_CAP, "%d", (int)v);
	} else {
		double back = 0;
		len = snprintf(out, NUMFMT_JSON_CAP, "%1.15g", v);
		if (sscanf(out, "%lg", &back) != 1 ||
		    fabs(back - v) > fmax(fabs(back), a) * DBL_EPSILON)
			len = snprintf(out, NUMFMT_JSON_CAP, "%1.17g", v);
	}
	return len > 0 ? (size_t)len : 0;
}

enum scan_rc { SCAN_EXACT, SCAN_STRTOD, SCAN_SYNTAX };

/* Appends a mantissa digit; false once m holds 19 significant digits (a
 * 20th could overflow uint64_t). Leading zeros are not significant. */
static bool add_digit(uint64_t *m, int *sig, char c)
{
	if (*m == 0 && c == '0')
		return true;
	if (*sig == 19)
		return false;
	*m = *m * 10 + (uint64_t)(c - '0');
	(*sig)++;
	return true;
}

/* Checks the grammar of p[0..n) (n <= NUMFMT_PARSE_MAX) and, when it can,
 * computes the value exactly (Clinger's fast path): with m <= 2^53 and
 * |e| <= 22 both m and 10^|e| are exact doubles, so the one correctly
 * rounded multiplication or division m * 10^e (m / 10^-e) is the double
 * nearest to the decimal, which is what strtod returns. */
static enum scan_rc scan(const char *p, size_t n, double *out)
{
	size_t i = 0, digits = 0;
	bool neg = false, exact = true;
	uint64_t m = 0;
	int sig = 0, e10 = 0;

	if (i < n && (p[i] == '+' || p[i] == '-'))
		neg = p[i++] == '-';
	for (; i < n && is_digit(p[i]); i++, digits++)
		exact = add_digit(&m, &sig, p[i]) && exact;
	if (i < n && p[i] == '.') {
		for (i++; i < n && is_digit(p[i]); i++, digits++) {
			exact = add_digit(&m, &sig, p[i]) && exact;
			e10--; /* n is small: no overflow */
		}
	}
	if (digits == 0)
		return SCAN_SYNTAX;
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		bool eneg = false;
		int e = 0;
		size_t start;
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			eneg = p[i++] == '-';
		for (start = i; i < n && is_digit(p[i]); i++)
			if (e < 100000) /* far beyond any double; saturate */
				e = e * 10 + (p[i] - '0');
		if (i == start)
			return SCAN_SYNTAX;
		e10 += eneg ? -e : e;
	}
	if (i != n)
		return SCAN_SYNTAX;
	if (m == 0 && exact) {
		*out = neg ? -0.0 : 0.0; /* zero with any exponent, as strtod */
		return SCAN_EXACT;
	}
	if (!exact || !EXACT_ARITH || m > (UINT64_C(1) << 53) || e10 < -22 || e10 > 22)
		return SCAN_STRTOD;
	double x = (double)m;
	x = e10 < 0 ? x / pow10_exact[-e10] : x * pow10_exact[e10];
	*out = neg ? -x : x;
	return SCAN_EXACT;
}

int numfmt_parse_fast(const char *p, size_t n, double *out)
{
	if (n > NUMFMT_PARSE_MAX)
		return -1;
	return scan(p, n, out) == SCAN_EXACT ? 0 : -1;
}

int numfmt_parse(const char *p, size_t n, double *out)
{
	if (n > NUMFMT_PARSE_MAX)
		return -1;
	switch (scan(p, n, out)) {
	case SCAN_EXACT:
		return 0;
	case SCAN_SYNTAX:
		return -1;
	case SCAN_STRTOD:
		break;
	}
	/* Many digits or a large exponent: strtod decides, in the "C" locale,
	 * on a NUL-terminated copy. It reads the whole of what scan accepted. */
	char buf[NUMFMT_PARSE_MAX + 1];
	char *end = NULL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	double v = strtod(buf, &end);
	if (end != buf + n)
		return -1; /* only with a foreign decimal point */
	*out = v;
	return 0;
}
