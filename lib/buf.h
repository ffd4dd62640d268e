/*
 * buf.h - a growable byte buffer that always has room for a NUL (internal).
 * It keeps its capacity when emptied, so a warm parser does not allocate.
 */
#ifndef EVENTSOURCE_BUF_H
#define EVENTSOURCE_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct es_buf {
  char *p;
  size_t len;
  size_t cap; /* always > len when p != NULL: room for a NUL */
} es_buf;

/* Makes room for extra more bytes plus a NUL. hint (0: none) is the largest
 * length the buffer should need: growth is clamped to it. 0, or -1 when out
 * of memory or the size would overflow (the buffer is unchanged). */
int es_buf_grow(es_buf *b, size_t extra, size_t hint);

static inline int es_buf_reserve(es_buf *b, size_t extra, size_t hint) {
  if (b->p && b->cap - b->len > extra)
    return 0;
  return es_buf_grow(b, extra, hint);
}

static inline void es_buf_swap(es_buf *a, es_buf *b) {
  es_buf t = *a;
  *a = *b;
  *b = t;
}

/* The contents as a NUL-terminated string ("" when never allocated). */
static inline const char *es_buf_str(es_buf *b) {
  if (!b->p)
    return "";
  b->p[b->len] = '\0';
  return b->p;
}

/* memcpy() for the short values of typical lines, without a call: fixed-size
 * moves that may overlap (both ranges are exactly n bytes). */
static inline void es_copy_short(char *d, const unsigned char *v, size_t n) {
  if (n > 64) {
    memcpy(d, v, n);
  } else if (n >= 16) {
    size_t i = 0;
    for (; i + 16 < n; i += 16)
      memcpy(d + i, v + i, 16);
    memcpy(d + n - 16, v + n - 16, 16);
  } else if (n >= 8) {
    memcpy(d, v, 8);
    memcpy(d + n - 8, v + n - 8, 8);
  } else if (n >= 4) {
    memcpy(d, v, 4);
    memcpy(d + n - 4, v + n - 4, 4);
  } else {
    for (size_t i = 0; i < n; i++)
      d[i] = (char)v[i];
  }
}

#endif
