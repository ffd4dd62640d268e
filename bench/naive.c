/*
 * naive.c - the naive parser and the CR/LF scan (naive.h).
 */
#include "naive.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>
#define SCAN_SSE2 1
#endif

void naive_init(naive_parser *p, naive_on_event on_event, void *ctx) {
  memset(p, 0, sizeof *p);
  p->on_event = on_event;
  p->ctx = ctx;
}

void naive_free(naive_parser *p) {
  free(p->line);
  free(p->data);
  memset(p, 0, sizeof *p);
}

/* The buffers are page-aligned: where malloc puts them must not decide the
 * speed of the copies. (On AMD Zen, glibc's memcpy of 64 KiB whose source
 * lies 1-63 bytes below its destination modulo 4096 runs 15 times slower:
 * a split line copied from the line buffer to the data buffer fell there or
 * not depending on the stream's size.) */
static int append(char **b, size_t *len, size_t *cap, const char *s, size_t n) {
  if (*len + n > *cap) {
    size_t c = *cap ? *cap : 4096;
    while (c < *len + n)
      c *= 2;
    char *nb = aligned_alloc(4096, c);
    if (!nb)
      return -1;
    if (*len)
      memcpy(nb, *b, *len);
    free(*b);
    *b = nb;
    *cap = c;
  }
  memcpy(*b + *len, s, n);
  *len += n;
  return 0;
}

static void set(char *dst, size_t cap, size_t *len, const char *s, size_t n) {
  *len = n < cap ? n : cap;
  memcpy(dst, s, *len);
}

static int line(naive_parser *p, const char *l, size_t n) {
  if (n == 0) {
    int r = 0;
    if (p->data_len)
      r = p->type_len ? p->on_event(p->ctx, p->type, p->type_len, p->data, p->data_len - 1,
                                    p->id, p->id_len)
                      : p->on_event(p->ctx, "message", 7, p->data, p->data_len - 1, p->id,
                                    p->id_len);
    p->data_len = p->type_len = 0;
    return r;
  }
  if (l[0] == ':')
    return 0;
  const char *colon = memchr(l, ':', n);
  size_t fl = colon ? (size_t)(colon - l) : n;
  const char *v = colon ? colon + 1 : l + n;
  size_t vl = (size_t)(l + n - v);
  if (vl && *v == ' ')
    v++, vl--;
  if (fl == 4 && memcmp(l, "data", 4) == 0) {
    if (append(&p->data, &p->data_len, &p->data_cap, v, vl) ||
        append(&p->data, &p->data_len, &p->data_cap, "\n", 1))
      return -1;
  } else if (fl == 5 && memcmp(l, "event", 5) == 0) {
    set(p->type, sizeof p->type, &p->type_len, v, vl);
  } else if (fl == 2 && memcmp(l, "id", 2) == 0) {
    set(p->id, sizeof p->id, &p->id_len, v, vl);
  }
  return 0;
}

int naive_feed(naive_parser *p, const char *buf, size_t len) {
  const char *s = buf, *end = buf + len;
  while (s < end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl)
      return append(&p->line, &p->line_len, &p->line_cap, s, (size_t)(end - s));
    const char *l = s;
    size_t n = (size_t)(nl - s);
    if (p->line_len) {
      if (append(&p->line, &p->line_len, &p->line_cap, s, n))
        return -1;
      l = p->line;
      n = p->line_len;
    }
    if (n && l[n - 1] == '\r')
      n--;
    int r = line(p, l, n);
    p->line_len = 0;
    if (r)
      return r;
    s = nl + 1;
  }
  return 0;
}

void naive_finish(naive_parser *p) { p->line_len = p->data_len = p->type_len = 0; }

size_t scan_crlf(const char *p, size_t n) {
  size_t count = 0, i = 0;
#ifdef SCAN_SSE2
  const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
  while (n - i >= 64) {
    /* each byte counter of acc takes at most 4 per round: 63 rounds */
    size_t rounds = (n - i) / 64;
    if (rounds > 63)
      rounds = 63;
    __m128i acc = zero;
    for (size_t k = 0; k < rounds; k++, i += 64) {
      for (int j = 0; j < 4; j++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 16 * j));
        acc = _mm_sub_epi8(acc, _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
      }
    }
    __m128i sum = _mm_sad_epu8(acc, zero);
    count += (size_t)_mm_cvtsi128_si32(sum) + (size_t)_mm_extract_epi16(sum, 4);
  }
#endif
  for (; i < n; i++)
    count += p[i] == '\r' || p[i] == '\n';
  return count;
}
