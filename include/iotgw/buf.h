/* buf: a growable byte buffer with a ceiling fixed at init.
 *
 * Every dynamic buffer in iotgw has a maximum size; growing past it fails
 * cleanly instead of letting a peer make us allocate without bound.
 * Storage is allocated on demand and can be released when empty, so an idle
 * connection holds no buffer memory at all. The buf owns its storage. */
#ifndef IOTGW_BUF_H
#define IOTGW_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t len; /* bytes in use, from data[0] */
	size_t cap; /* bytes allocated */
	size_t max; /* ceiling for cap */
};

void buf_init(struct buf *b, size_t max);

/* Makes room for at least `extra` more bytes. Returns 0, or -1 if that would
 * pass the ceiling or memory is exhausted (the buffer is left unchanged). */
__attribute__((warn_unused_result)) int buf_reserve(struct buf *b, size_t extra);

__attribute__((warn_unused_result)) int buf_append(struct buf *b, const void *p, size_t n);

/* Appends printf-formatted text (without its NUL). 0, or -1 (unchanged)
 * past the ceiling. */
__attribute__((warn_unused_result, format(printf, 2, 3))) int buf_appendf(struct buf *b,
									  const char *fmt, ...);

/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);

/* Frees the storage if the buffer is empty (idle connections keep nothing). */
void buf_shrink_if_empty(struct buf *b);

void buf_free(struct buf *b);

#endif
