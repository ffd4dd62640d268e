/*
 * buf.h - a growable byte buffer that always has room for a NUL (internal).
 * It keeps its capacity when emptied, so a warm parser does not allocate.
 */
#ifndef EVENTSOURCE_BUF_H
#define EVENTSOURCE_BUF_H

#include <stddef.h>

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

#endif
