/*
 * buf.h - a growable byte buffer, the unit of output of the row normalizer.
 *
 * The buffer owns its memory (free with buf_free). Growth doubles capacity, so
 * appending is amortised O(1). Allocation failure aborts the process: a row
 * that cannot be held in memory cannot be spooled either, and an abort leaves
 * the spool in a state recovery handles (an incomplete partition).
 */
#ifndef INGESTA_BUF_H
#define INGESTA_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

/* Make room for `extra` more bytes (plus a spare byte for a NUL terminator). */
void buf_reserve(struct buf *b, size_t extra);

static inline void buf_append(struct buf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n + 1)
		buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static inline void buf_putc(struct buf *b, char c)
{
	if (b->cap - b->len < 2)
		buf_reserve(b, 1);
	b->data[b->len++] = c;
}

static inline void buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* NUL-terminate without changing len; returns data (never NULL). */
const char *buf_cstr(struct buf *b);

static inline void buf_reset(struct buf *b)
{
	b->len = 0;
}

void buf_free(struct buf *b);

#endif
