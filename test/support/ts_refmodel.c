/*
 * ts_refmodel.c - the parser's reference model, string builder, escapes,
 * UTF-8 helpers and RNG (see ts_refmodel.h). Used by test/test_parser.c and
 * fuzz/fuzz_parser.c; must build without Check and without the library.
 */
#include "ts_refmodel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *ts_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p)
    abort();
  return p;
}

void *ts_xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p)
    abort();
  return p;
}

/* ------------------------------------------------------------------------ */
/* String builder                                                           */
/* ------------------------------------------------------------------------ */

void ts_sb_put(ts_sb_t *b, const void *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t c = b->cap ? b->cap : 64;
    while (c < b->len + n + 1)
      c *= 2;
    b->p = ts_xrealloc(b->p, c);
    b->cap = c;
  }
  if (n)
    memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void ts_sb_putc(ts_sb_t *b, char c) { ts_sb_put(b, &c, 1); }

void ts_sb_puts(ts_sb_t *b, const char *s) { ts_sb_put(b, s, strlen(s)); }

void ts_sb_printf(ts_sb_t *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  if ((size_t)n < sizeof tmp) {
    ts_sb_put(b, tmp, (size_t)n);
    return;
  }
  char *big = ts_xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  ts_sb_put(b, big, (size_t)n);
  free(big);
}

char *ts_sb_take(ts_sb_t *b) {
  if (!b->p)
    ts_sb_put(b, "", 0);
  char *p = b->p;
  b->p = NULL;
  b->len = b->cap = 0;
  return p;
}

void ts_sb_free(ts_sb_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* ------------------------------------------------------------------------ */
/* RNG                                                                      */
/* ------------------------------------------------------------------------ */

uint64_t ts_rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * UINT64_C(2685821657736338717);
}

size_t ts_rng_below(uint64_t *s, size_t n) {
  return n ? (size_t)(ts_rng_next(s) % n) : 0;
}

/* ------------------------------------------------------------------------ */
/* UTF-8 (written from the definition, not from lib/parser.c)               */
/* ------------------------------------------------------------------------ */

/* Decodes the sequence its lead byte announces and refuses overlong forms,
 * surrogates and code points over U+10FFFF: exactly the well-formed
 * sequences of Unicode Table 3-7. */
size_t ts_utf8_char(const unsigned char *s, size_t n, uint32_t *cp) {
  if (!n)
    return 0;
  uint32_t c = s[0];
  size_t len;
  uint32_t min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, c &= 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, c &= 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, c &= 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  *cp = c;
  return len;
}

int ts_utf8_valid(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  uint32_t cp;
  while (i < n) {
    size_t k = ts_utf8_char(u + i, n - i, &cp);
    if (!k)
      return 0;
    i += k;
  }
  return 1;
}

void ts_utf8_encode(ts_sb_t *o, uint32_t cp) {
  char b[4];
  if (cp < 0x80) {
    b[0] = (char)cp;
    ts_sb_put(o, b, 1);
  } else if (cp < 0x800) {
    b[0] = (char)(0xC0 | (cp >> 6));
    b[1] = (char)(0x80 | (cp & 0x3F));
    ts_sb_put(o, b, 2);
  } else if (cp < 0x10000) {
    b[0] = (char)(0xE0 | (cp >> 12));
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (char)(0x80 | (cp & 0x3F));
    ts_sb_put(o, b, 3);
  } else {
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    ts_sb_put(o, b, 4);
  }
}

/* The WHATWG UTF-8 decoder, as written in the Encoding Standard. */
void ts_utf8_decode(const unsigned char *s, size_t n, int flush, ts_sb_t *o) {
  uint32_t cp = 0;
  unsigned seen = 0, needed = 0, lower = 0x80, upper = 0xBF;
  ts_sb_put(o, "", 0);
  for (size_t i = 0; i <= n; i++) {
    if (i == n) { /* end of queue */
      if (needed && flush)
        ts_utf8_encode(o, 0xFFFD);
      break;
    }
    unsigned b = s[i];
    if (needed == 0) {
      if (b <= 0x7F) {
        ts_sb_putc(o, (char)b);
      } else if (b >= 0xC2 && b <= 0xDF) {
        needed = 1;
        cp = b & 0x1F;
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0)
          lower = 0xA0;
        if (b == 0xED)
          upper = 0x9F;
        needed = 2;
        cp = b & 0xF;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0)
          lower = 0x90;
        if (b == 0xF4)
          upper = 0x8F;
        needed = 3;
        cp = b & 0x7;
      } else {
        ts_utf8_encode(o, 0xFFFD);
      }
      continue;
    }
    if (b < lower || b > upper) {
      cp = needed = seen = 0;
      lower = 0x80;
      upper = 0xBF;
      i--; /* prepend the byte to the stream */
      ts_utf8_encode(o, 0xFFFD);
      continue;
    }
    lower = 0x80;
    upper = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
    if (++seen != needed)
      continue;
    ts_utf8_encode(o, cp);
    cp = needed = seen = 0;
  }
}

/* ------------------------------------------------------------------------ */
/* Quoting                                                                  */
/* ------------------------------------------------------------------------ */

void ts_esc(ts_sb_t *o, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  ts_sb_putc(o, '"');
  for (size_t i = 0; i < n;) {
    unsigned c = u[i];
    uint32_t cp;
    size_t k;
    if (c >= 0x80 && (k = ts_utf8_char(u + i, n - i, &cp)) != 0) {
      ts_sb_printf(o, "\\u{%X}", (unsigned)cp);
      i += k;
      continue;
    }
    if (c == '\\')
      ts_sb_puts(o, "\\\\");
    else if (c == '"')
      ts_sb_puts(o, "\\\"");
    else if (c == '\n')
      ts_sb_puts(o, "\\n");
    else if (c == '\r')
      ts_sb_puts(o, "\\r");
    else if (c == '\t')
      ts_sb_puts(o, "\\t");
    else if (c >= 0x20 && c < 0x7F)
      ts_sb_putc(o, (char)c);
    else
      ts_sb_printf(o, "\\x%02X", c);
    i++;
  }
  ts_sb_putc(o, '"');
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int ts_unesc(const char **sp, ts_sb_t *o) {
  const char *s = *sp;
  while (*s == ' ' || *s == '\t')
    s++;
  if (*s != '"')
    return -1;
  s++;
  ts_sb_put(o, "", 0);
  for (;;) {
    char c = *s++;
    if (c == '\0')
      return -1;
    if (c == '"')
      break;
    if (c != '\\') {
      ts_sb_putc(o, c);
      continue;
    }
    c = *s++;
    switch (c) {
    case '\\': ts_sb_putc(o, '\\'); break;
    case '"': ts_sb_putc(o, '"'); break;
    case 'n': ts_sb_putc(o, '\n'); break;
    case 'r': ts_sb_putc(o, '\r'); break;
    case 't': ts_sb_putc(o, '\t'); break;
    case '0': ts_sb_putc(o, '\0'); break;
    case 'x': {
      int h = hexval(s[0]), l = h < 0 ? -1 : hexval(s[1]);
      if (l < 0)
        return -1;
      ts_sb_putc(o, (char)(h * 16 + l));
      s += 2;
      break;
    }
    case 'u': {
      if (*s++ != '{')
        return -1;
      uint32_t cp = 0;
      int digits = 0, h;
      while ((h = hexval(*s)) >= 0) {
        cp = cp * 16 + (uint32_t)h;
        s++;
        if (++digits > 6)
          return -1;
      }
      if (*s++ != '}' || !digits || cp > 0x10FFFF)
        return -1;
      ts_utf8_encode(o, cp);
      break;
    }
    default:
      return -1;
    }
  }
  *sp = s;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The reference model (non-incremental, straight from the spec)            */
/* ------------------------------------------------------------------------ */

typedef struct setid_at {
  size_t off; /* where in the stream the set-id stands */
  const void *b;
  size_t n;
} setid_at_t;

typedef struct ref {
  const ts_ref_cfg_t *c;
  ts_ref_emit_fn emit;
  void *ctx;
  ts_sb_t rec;                    /* the record being written */
  ts_sb_t data, type, idbuf, idstr; /* idstr: the last event ID string */
  int skipping;                   /* after a limit, until a blank line */
  int dead;                       /* a callback stopped the parser */
  int in_finish;                  /* a callback of es_parser_finish()/reset() */
  long calls;                     /* callbacks so far */
} ref_t;

/* es_parser_set_last_event_id(): U+0000 refused, the rest decoded. It sets
 * the string and the buffer. */
static void ref_setid(ref_t *r, const void *b, size_t n) {
  if (n && memchr(b, 0, n))
    return;
  r->idstr.len = 0;
  ts_utf8_decode(b, n, 1, &r->idstr);
  r->idbuf.len = 0;
  ts_sb_put(&r->idbuf, r->idstr.p, r->idstr.len);
}

/* Hands the record in r->rec to emit and starts a new one. */
static void ref_emit(ref_t *r) {
  ts_sb_put(&r->rec, "", 0);
  r->emit(r->ctx, r->rec.p);
  r->rec.len = 0;
}

/* After a callback's record: the callback's own actions. */
static void ref_after_cb(ref_t *r) {
  ref_emit(r);
  r->calls++;
  if (r->c->cb_setid_at > 0 && r->calls == r->c->cb_setid_at)
    ref_setid(r, r->c->cb_id, r->c->cb_id_n);
  /* A stop asked from a callback that finish/reset makes cannot be
   * reported (they return nothing) and changes nothing: the stream is over. */
  if (r->c->stop_after > 0 && r->calls == r->c->stop_after && !r->in_finish) {
    ts_sb_puts(&r->rec, "stopped");
    ref_emit(r);
    r->dead = 1;
  }
}

/* A limit: the event being built and the uncommitted id are dropped, the
 * rest up to the next blank line is skipped. */
static void ref_error(ref_t *r) {
  r->data.len = r->type.len = 0;
  r->idbuf.len = 0;
  ts_sb_put(&r->idbuf, r->idstr.p, r->idstr.len);
  r->skipping = 1;
  ts_sb_puts(&r->rec, "error TOO_LARGE");
  ref_after_cb(r);
}

/* 9.2.6, "dispatch the event". */
static void ref_dispatch(ref_t *r) {
  r->idstr.len = 0;
  ts_sb_put(&r->idstr, r->idbuf.p, r->idbuf.len);
  if (r->data.len == 0) {
    r->type.len = 0;
    return;
  }
  if (r->data.p[r->data.len - 1] == '\n')
    r->data.len--;
  ts_sb_puts(&r->rec, "event ");
  if (r->type.len)
    ts_esc(&r->rec, r->type.p, r->type.len);
  else
    ts_esc(&r->rec, "message", 7);
  ts_sb_putc(&r->rec, ' ');
  ts_esc(&r->rec, r->data.p, r->data.len);
  ts_sb_putc(&r->rec, ' ');
  ts_esc(&r->rec, r->idstr.p, r->idstr.len);
  r->data.len = r->type.len = 0;
  ref_after_cb(r);
}

/* One complete line (raw bytes, without its line ending). */
static void ref_line(ref_t *r, const unsigned char *raw, size_t n) {
  size_t max_line = r->c->max_line, max_event = r->c->max_event;
  if (r->dead)
    return;
  if (r->skipping) {
    if (n == 0)
      r->skipping = 0;
    return;
  }
  if (max_line && n > max_line) {
    ref_error(r);
    return;
  }
  ts_sb_t t = {0};
  ts_utf8_decode(raw, n, 1, &t);
  if (t.len == 0) {
    ref_dispatch(r);
  } else if (t.p[0] == ':') {
    ts_sb_puts(&r->rec, "comment ");
    ts_esc(&r->rec, t.p + 1, t.len - 1);
    ref_after_cb(r);
  } else {
    char *colon = memchr(t.p, ':', t.len);
    size_t nl = colon ? (size_t)(colon - t.p) : t.len;
    const char *val = colon ? colon + 1 : t.p + t.len;
    size_t vl = colon ? t.len - nl - 1 : 0;
    if (vl && *val == ' ')
      val++, vl--;
    if (nl == 5 && memcmp(t.p, "event", 5) == 0) {
      r->type.len = 0;
      ts_sb_put(&r->type, val, vl);
    } else if (nl == 4 && memcmp(t.p, "data", 4) == 0) {
      if (max_event && (r->data.len > max_event || r->data.len + vl > max_event)) {
        ref_error(r);
      } else {
        ts_sb_put(&r->data, val, vl);
        ts_sb_putc(&r->data, '\n');
      }
    } else if (nl == 2 && memcmp(t.p, "id", 2) == 0) {
      if (!memchr(val, 0, vl)) {
        r->idbuf.len = 0;
        ts_sb_put(&r->idbuf, val, vl);
      }
    } else if (nl == 5 && memcmp(t.p, "retry", 5) == 0) {
      int ok = vl > 0;
      uint64_t v = 0;
      for (size_t i = 0; i < vl && ok; i++) {
        if (val[i] < '0' || val[i] > '9')
          ok = 0;
        else if (v > (UINT64_MAX - (uint64_t)(val[i] - '0')) / 10)
          v = UINT64_MAX;
        else
          v = v * 10 + (uint64_t)(val[i] - '0');
      }
      if (ok) {
        ts_sb_printf(&r->rec, "retry %llu", (unsigned long long)v);
        ref_after_cb(r);
      }
    }
  }
  ts_sb_free(&t);
}

/* The incomplete last line at the end of a stream: discarded, but its bytes
 * may already have gone over a limit. */
static void ref_partial(ref_t *r, const unsigned char *raw, size_t n) {
  size_t max_line = r->c->max_line, max_event = r->c->max_event;
  if (r->dead || r->skipping || n == 0)
    return;
  if (max_line && n > max_line) {
    ref_error(r);
    return;
  }
  if (!max_event || raw[0] == ':')
    return;
  const unsigned char *colon = memchr(raw, ':', n);
  if (!colon || colon - raw != 4 || memcmp(raw, "data", 4) != 0)
    return;
  if (r->data.len > max_event) {
    ref_error(r);
    return;
  }
  const unsigned char *val = colon + 1;
  size_t vl = n - 5;
  if (vl && *val == ' ')
    val++, vl--;
  ts_sb_t t = {0};
  ts_utf8_decode(val, vl, 0, &t);
  if (r->data.len + t.len > max_event)
    ref_error(r);
  ts_sb_free(&t);
}

/* One stream: BOM, lines, end of stream; the set-id ops at their offsets
 * (a set-id at offset g is applied before the first line whose terminator
 * is at or after g). */
static void ref_stream(ref_t *r, const unsigned char *s, size_t n,
                       const setid_at_t *ids, size_t nids) {
  size_t i = 0, next_id = 0;
  if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
    i = 3;
  size_t start = i;
  while (i < n) {
    if (s[i] == '\r' || s[i] == '\n') {
      while (next_id < nids && ids[next_id].off <= i) {
        ref_setid(r, ids[next_id].b, ids[next_id].n);
        next_id++;
      }
      ref_line(r, s + start, i - start);
      if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
        i++;
      start = ++i;
    } else {
      i++;
    }
  }
  for (; next_id < nids; next_id++)
    ref_setid(r, ids[next_id].b, ids[next_id].n);
  /* Bytes held as a possible BOM (a strict prefix of one, the whole stream)
   * reach the line rules only when the stream ends: in es_parser_finish(). */
  static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
  r->in_finish = start == 0 && n > 0 && n < 3 && memcmp(s, bom, n) == 0;
  ref_partial(r, s + start, n - start);
  r->in_finish = 0;
}

/* finish/reset: the partial event and the uncommitted id go, the last event
 * ID string stays. */
static void ref_end_stream(ref_t *r) {
  r->data.len = r->type.len = 0;
  r->idbuf.len = 0;
  ts_sb_put(&r->idbuf, r->idstr.p, r->idstr.len);
  r->skipping = 0;
  r->dead = 0;
}

void ts_ref_run(const ts_ref_cfg_t *c, const ts_ref_op_t *ops, size_t nops,
                ts_ref_emit_fn emit, void *ctx) {
  ref_t r;
  memset(&r, 0, sizeof r);
  r.c = c;
  r.emit = emit;
  r.ctx = ctx;
  ts_sb_put(&r.idstr, "", 0);
  ts_sb_put(&r.idbuf, "", 0);
  ts_sb_t stream = {0};
  setid_at_t *ids = NULL;
  size_t nids = 0;
  for (size_t i = 0; i <= nops; i++) {
    const ts_ref_op_t *o = i < nops ? &ops[i] : NULL;
    if (o && o->k == TS_REF_IN) {
      ts_sb_put(&stream, o->b, o->n);
    } else if (o && o->k == TS_REF_SETID) {
      ids = ts_xrealloc(ids, (nids + 1) * sizeof *ids);
      ids[nids++] = (setid_at_t){stream.len, o->b, o->n};
    } else {
      ref_stream(&r, (const unsigned char *)(stream.p ? stream.p : ""), stream.len, ids, nids);
      ref_end_stream(&r);
      stream.len = 0;
      nids = 0;
      if (o) {
        ts_sb_puts(&r.rec, "lastid ");
        ts_esc(&r.rec, r.idstr.p, r.idstr.len);
        ref_emit(&r);
      }
    }
  }
  free(ids);
  ts_sb_free(&stream);
  ts_sb_free(&r.rec);
  ts_sb_free(&r.data);
  ts_sb_free(&r.type);
  ts_sb_free(&r.idbuf);
  ts_sb_free(&r.idstr);
}
