/* buf.c - growing a byte buffer (the rare path, out of line). */
#include "buf.h"

#include <stdint.h>

#include "alloc.h"

int es_buf_grow(es_buf *b, size_t extra, size_t hint) {
  if (extra > SIZE_MAX - 1 - b->len)
    return -1;
  size_t need = b->len + extra + 1;
  size_t ncap = b->cap ? b->cap : 64;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2) {
      ncap = need;
      break;
    }
    ncap *= 2;
  }
  if (hint && hint < SIZE_MAX - 1 && ncap > hint + 1 && need <= hint + 1)
    ncap = hint + 1;
  char *np = es_realloc(b->p, ncap);
  if (!np)
    return -1;
  b->p = np;
  b->cap = ncap;
  return 0;
}
