/* jscan: reads the simple JSON that sensors send in place: no tree, no
 * allocation, no copy. The decoder's fast path for JSON payloads.
 *
 * "Simple" is RFC 8259 JSON without backslash escapes or control bytes in
 * strings, with numbers of at most NUMFMT_PARSE_MAX characters, nested at
 * most JSCAN_DEPTH_MAX deep. cJSON reads such text the same way (the same
 * structure, the same key and string bytes, numbers by strtod, which
 * numfmt_parse matches bit for bit); for anything else jscan says no, and
 * the caller hands the text to cJSON, which reads it or says precisely why
 * not. tests/unit/test_jscan.c checks that agreement against cJSON.
 *
 * Pure: no I/O, no allocation, no global state. Values point into the
 * caller's text and are valid as long as it is. */
#ifndef IOTGW_JSCAN_H
#define IOTGW_JSCAN_H

#include <stdbool.h>
#include <stddef.h>

#define JSCAN_DEPTH_MAX 32 /* objects and arrays within each other */

enum jscan_type {
	JSCAN_OBJECT,
	JSCAN_ARRAY,
	JSCAN_STRING,
	JSCAN_NUMBER,
	JSCAN_TRUE,
	JSCAN_FALSE,
	JSCAN_NULL,
};

struct jscan_val {
	enum jscan_type type;
	/* A string's bytes between the quotes (its value: there are no
	 * escapes); for the other types the value's own text, brackets
	 * included for objects and arrays. */
	const char *p;
	size_t n;
};

/* p[0..n) must be exactly one simple JSON value, with optional JSON
 * whitespace around it. Returns 0 and sets *v, or -1 if it is not. */
int jscan_parse(const char *p, size_t n, struct jscan_val *v);

struct jscan_iter {
	const char *p; /* the object or array, brackets included */
	size_t n;
	size_t i; /* where the next member or element starts, or its comma */
	bool object;
};

/* Iterates the members of an object or the elements of an array: v comes
 * from jscan_parse or jscan_next (so it is known to be well formed). */
void jscan_iter_init(struct jscan_iter *it, const struct jscan_val *v);

/* The next member (*key is its name, a JSCAN_STRING) or element (*key has
 * p NULL and n 0), in text order: 1, or 0 after the last. */
int jscan_next(struct jscan_iter *it, struct jscan_val *key, struct jscan_val *val);

#endif
