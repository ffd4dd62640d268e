/*
 * parser_fast.h - the parser's fast path (internal, included by parser.c
 * only): a whole ASCII line of one of the common fields (data:, id:,
 * event:) whose end is in the chunk is taken without the general machinery
 * of parser.c: the name is told by its first byte and the length, the value
 * is copied once into its buffer, nothing is decoded. Anything else is left
 * to the general path, unchanged.
 */
#ifndef EVENTSOURCE_PARSER_FAST_H
#define EVENTSOURCE_PARSER_FAST_H

#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "parser_int.h"

/* fast_line() returns R_SLOW, having changed nothing, for anything but the
 * common fields of a whole ASCII line (a comment, retry:, a limit hit, a
 * name without colon, an unknown field), which the general path then
 * takes. */
#define R_SLOW 4
#define R_DATA 5 /* fast_line(): a data: line, done */

/* b holds v[0..vl) (no allocation when vl is 0). 0, or -1 when out of memory. */
static ES_HOT_INLINE int set_value(es_buf *b, const unsigned char *v, size_t vl) {
  b->len = 0;
  if (vl) {
    if (es_buf_reserve(b, vl, 0))
      return -1;
    es_copy_short(b->p, v, vl);
    b->len = vl;
  }
  return 0;
}

/* Does v[0..n) hold a 0 byte? Ids are short: words, no call. */
static ES_HOT_INLINE int has_nul(const unsigned char *v, size_t n) {
  const uint64_t ones = UINT64_C(0x0101010101010101), highs = ones << 7;
  uint64_t w;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      memcpy(&w, v + i, 8);
      if ((w - ones) & ~w & highs)
        return 1;
    }
    memcpy(&w, v + n - 8, 8);
    return ((w - ones) & ~w & highs) != 0;
  }
  if (n >= 4) {
    uint32_t a, b;
    memcpy(&a, v, 4);
    memcpy(&b, v + n - 4, 4);
    w = (uint64_t)a | (uint64_t)b << 32;
    return ((w - ones) & ~w & highs) != 0;
  }
  for (size_t i = 0; i < n; i++)
    if (!v[i])
      return 1;
  return 0;
}

/* One leading space off the value v[0..*vl) of a line whose end byte is in
 * the chunk: v[0] is readable even when the value is empty (it is the CR or
 * LF then), so no test of the length is needed. */
static ES_HOT_INLINE void skip_space(const unsigned char **v, size_t *vl) {
  size_t sp = **v == ' ';
  *v += sp;
  *vl -= sp;
}

/* A whole ASCII line s[0..len), len > 0, at a line start, its end in the
 * chunk. The name is told by its first byte and length. */
static ES_HOT_INLINE int fast_line(es_parser *p, const unsigned char *s, size_t len) {
  const unsigned char *v;
  size_t vl;
  if (s[0] == 'd') { /* data: first, the most common line */
    if (len < 5 || memcmp(s + 1, "ata:", 4) != 0)
      return R_SLOW;
    v = s + 5;
    vl = len - 5;
    skip_space(&v, &vl);
    size_t hint = 0;
    if (p->max_event) {
      if (p->data.len > p->max_event || vl > p->max_event - p->data.len)
        return R_SLOW; /* TOO_LARGE, the general way */
      hint = p->max_event + 1;
    }
    if (es_buf_reserve(&p->data, vl + 1, hint))
      return ES_PARSER_NOMEM;
    es_copy_short(p->data.p + p->data.len, v, vl);
    p->data.len += vl;
    p->data.p[p->data.len++] = '\n';
    return R_DATA;
  }
  switch (s[0]) {
  case 'i':
    if (len < 3 || s[1] != 'd' || s[2] != ':')
      return R_SLOW;
    v = s + 3;
    vl = len - 3;
    skip_space(&v, &vl);
    if ((p->max_id && vl > p->max_id) || has_nul(v, vl))
      return R_SLOW; /* not adopted, or ignored (U+0000): the general way */
    /* straight into the pending buffer (never the one lent to on_event) */
    if (set_value(&p->idbuf, v, vl))
      return ES_PARSER_NOMEM;
    es_buf_str(&p->idbuf); /* idstr must stay NUL-terminated once swapped in */
    p->id_dirty = 1;
    return ES_PARSER_OK;
  case 'e':
    if (len < 6 || memcmp(s + 1, "vent:", 5) != 0)
      return R_SLOW;
    v = s + 6;
    vl = len - 6;
    skip_space(&v, &vl);
    return set_value(&p->type, v, vl) ? ES_PARSER_NOMEM : ES_PARSER_OK;
  default:
    return R_SLOW;
  }
}

/* The stream after the BOM: one scan per line finds its end (CR or LF) and
 * tells whether it is ASCII; whole ASCII lines take fast_line(), blank
 * lines dispatch at once, the rest goes the general way. */

#endif
