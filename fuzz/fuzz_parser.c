/*
 * fuzz_parser.c - libFuzzer target for the text/event-stream parser
 * (lib/parser.c). See fuzz/README.md for building and running it.
 *
 * Input layout
 *
 *   h[0]  max_line:  < 0x80: 0 (none), else 1 + (h & 63)
 *   h[1]  max_event: the same
 *   h[2]  chunking of run A: mode = h & 3 (0: segment whole, 1: byte by
 *         byte, 2: fixed size k, 3: random sizes 1..k), k = 1 + (h >> 2)
 *   h[3]  stop-after: >= 0xF0: the ((h & 15) + 1)-th callback returns
 *         non-zero (then nothing is fed until the next finish/reset)
 *   h[4]  >= 0xF0: the ((h & 15) + 1)-th callback calls
 *         es_parser_set_last_event_id() (string h[6] & 7; twice if h[6] & 8)
 *   h[5]  >= 0x80: run C makes allocations fail after (h & 0x7F) more
 *   h[6]  bits 0-2: callback id string, bit 3: set it twice, bit 4: an
 *         empty feed before every chunk of run A
 *   h[7]  seed of the random chunk sizes
 *   then the stream. The two bytes FF FE start a directive:
 *     FF FE 'f'            es_parser_finish() (then lastid is recorded)
 *     FF FE 'r'            es_parser_reset()  (then lastid is recorded)
 *     FF FE 'i' L bytes    es_parser_set_last_event_id() with (L & 15) bytes
 *     FF FE 'l' a b        es_parser_set_limits() (a, b coded as h[0], h[1])
 *   any other byte after FF FE: FF FE are stream bytes.
 *
 * Runs
 *
 *   A  the stream fed in chunks (h[2]), each from an exactly sized heap copy
 *   B  the same, each segment between directives fed whole
 *   R  an independent, non-incremental reference (the one of
 *      test/test_parser.c, extended with stop-after, set-last-event-id
 *      between chunks and from a callback); skipped when set_limits is used,
 *      or when both kinds of set-id are (see the entry point)
 *   C  like A with allocation failures injected (h[5]): every callback
 *      before the first failure must match A; after ES_PARSER_NOMEM the
 *      parser is reset and fed on (no crash, no leak)
 *
 * Every callback checks its strings: valid UTF-8 (strict validator below),
 * NUL-terminated at [len], the id without U+0000, the type non-empty, the id
 * equal to es_parser_last_event_id(). Transcripts A, B and R must be equal.
 * A violation prints both transcripts and aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "eventsource.h"
#include "parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p)
    abort();
  return p;
}

typedef struct sb {
  char *p;
  size_t len, cap;
} sb_t;

static void sb_put(sb_t *b, const void *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t c = b->cap ? b->cap : 64;
    while (c < b->len + n + 1)
      c *= 2;
    b->p = xrealloc(b->p, c);
    b->cap = c;
  }
  if (n)
    memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}
static void sb_putc(sb_t *b, char c) { sb_put(b, &c, 1); }
static void sb_puts(sb_t *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_free(sb_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * UINT64_C(2685821657736338717);
}

/* ------------------------------------------------------------------------ */
/* Strict UTF-8 (Unicode Table 3-7, well-formed byte sequences)             */
/* ------------------------------------------------------------------------ */

/* Length of the well-formed sequence at s, 0 when there is none. */
static size_t u8_wf(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned a = s[0];
  if (a <= 0x7F) {
    *cp = a;
    return 1;
  }
  unsigned lo = 0x80, hi = 0xBF;
  size_t len;
  if (a >= 0xC2 && a <= 0xDF)
    len = 2;
  else if (a == 0xE0)
    len = 3, lo = 0xA0;
  else if (a == 0xED)
    len = 3, hi = 0x9F;
  else if (a >= 0xE1 && a <= 0xEF)
    len = 3;
  else if (a == 0xF0)
    len = 4, lo = 0x90;
  else if (a >= 0xF1 && a <= 0xF3)
    len = 4;
  else if (a == 0xF4)
    len = 4, hi = 0x8F;
  else
    return 0;
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  uint32_t c = a & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (size_t i = 1; i < len; i++)
    c = c << 6 | (s[i] & 0x3F);
  *cp = c;
  return len;
}

static int utf8_ok(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  uint32_t cp;
  for (size_t i = 0; i < n;) {
    size_t k = u8_wf(u + i, n - i, &cp);
    if (!k)
      return 0;
    i += k;
  }
  return 1;
}

static void utf8_put(sb_t *o, uint32_t cp) {
  unsigned char b[4];
  size_t n;
  if (cp < 0x80)
    b[0] = (unsigned char)cp, n = 1;
  else if (cp < 0x800)
    b[0] = (unsigned char)(0xC0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 0x3F)), n = 2;
  else if (cp < 0x10000)
    b[0] = (unsigned char)(0xE0 | cp >> 12), b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)),
    b[2] = (unsigned char)(0x80 | (cp & 0x3F)), n = 3;
  else
    b[0] = (unsigned char)(0xF0 | cp >> 18), b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F)),
    b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)), b[3] = (unsigned char)(0x80 | (cp & 0x3F)), n = 4;
  sb_put(o, b, n);
}

/* Canonical quoted spelling (as in test/test_parser.c). */
static void esc(sb_t *o, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  char tmp[16];
  sb_putc(o, '"');
  for (size_t i = 0; i < n;) {
    unsigned c = u[i];
    uint32_t cp;
    size_t k;
    if (c >= 0x80 && (k = u8_wf(u + i, n - i, &cp)) != 0) {
      snprintf(tmp, sizeof tmp, "\\u{%X}", (unsigned)cp);
      sb_puts(o, tmp);
      i += k;
      continue;
    }
    if (c == '\\')
      sb_puts(o, "\\\\");
    else if (c == '"')
      sb_puts(o, "\\\"");
    else if (c == '\n')
      sb_puts(o, "\\n");
    else if (c == '\r')
      sb_puts(o, "\\r");
    else if (c >= 0x20 && c < 0x7F)
      sb_putc(o, (char)c);
    else {
      snprintf(tmp, sizeof tmp, "\\x%02X", c);
      sb_puts(o, tmp);
    }
    i++;
  }
  sb_putc(o, '"');
}

/* ------------------------------------------------------------------------ */
/* The decoded input                                                        */
/* ------------------------------------------------------------------------ */

enum op_kind { OP_IN, OP_FINISH, OP_RESET, OP_SETID, OP_LIMITS };

typedef struct op {
  enum op_kind k;
  const unsigned char *b; /* into the fuzzer's input */
  size_t n;
  size_t ml, me; /* OP_LIMITS */
} op_t;

typedef struct cfg {
  size_t max_line, max_event;
  unsigned mode, k;
  long stop_after;
  long cb_setid_at;
  int cb_setid_twice;
  const char *cb_id;
  size_t cb_id_n;
  long fail_after; /* -1: run C not done */
  int empty_feeds;
  uint64_t seed;
  op_t *ops;
  size_t nops;
  int has_limits_op;
  int has_setid_op;
} cfg_t;

static const struct {
  const char *s;
  size_t n;
} CB_IDS[8] = {
    {"", 0},          {"cb", 2},          {"\xFF\x41", 2}, {"\xC3\xA9", 2},
    {"a\0b", 3},      {"\xE2\x82", 2},    {"long-id-value-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 72},
    {"\xF0\x9F\x98\x80", 4},
};

static size_t limit_of(unsigned char h) { return h < 0x80 ? 0 : 1 + (size_t)(h & 63); }

static void add_op(cfg_t *c, op_t o) {
  c->ops = xrealloc(c->ops, (c->nops + 1) * sizeof *c->ops);
  c->ops[c->nops++] = o;
}

static void parse_input(cfg_t *c, const uint8_t *d, size_t n) {
  uint8_t h[8] = {0};
  size_t hn = n < 8 ? n : 8;
  memcpy(h, d, hn);
  d += hn;
  n -= hn;
  c->max_line = limit_of(h[0]);
  c->max_event = limit_of(h[1]);
  c->mode = h[2] & 3;
  c->k = 1 + (h[2] >> 2);
  c->stop_after = h[3] >= 0xF0 ? (h[3] & 15) + 1 : 0;
  c->cb_setid_at = h[4] >= 0xF0 ? (h[4] & 15) + 1 : 0;
  c->cb_id = CB_IDS[h[6] & 7].s;
  c->cb_id_n = CB_IDS[h[6] & 7].n;
  c->cb_setid_twice = (h[6] & 8) != 0;
  c->empty_feeds = (h[6] & 16) != 0;
  c->fail_after = h[5] >= 0x80 ? (long)(h[5] & 0x7F) : -1;
  c->seed = UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)h[7] << 17 | h[7]);
  size_t start = 0, i = 0;
  while (i + 2 < n) {
    if (d[i] != 0xFF || d[i + 1] != 0xFE) {
      i++;
      continue;
    }
    unsigned char k = d[i + 2];
    op_t o = {0};
    size_t len = 3;
    if (k == 'f') {
      o.k = OP_FINISH;
    } else if (k == 'r') {
      o.k = OP_RESET;
    } else if (k == 'i' && i + 3 < n) {
      size_t l = d[i + 3] & 15;
      if (l > n - (i + 4))
        l = n - (i + 4);
      o.k = OP_SETID;
      c->has_setid_op = 1;
      o.b = d + i + 4;
      o.n = l;
      len = 4 + l;
    } else if (k == 'l' && i + 4 < n) {
      o.k = OP_LIMITS;
      o.ml = limit_of(d[i + 3]);
      o.me = limit_of(d[i + 4]);
      len = 5;
      c->has_limits_op = 1;
    } else {
      i++;
      continue;
    }
    if (i > start)
      add_op(c, (op_t){OP_IN, d + start, i - start, 0, 0});
    add_op(c, o);
    i += len;
    start = i;
  }
  if (n > start)
    add_op(c, (op_t){OP_IN, d + start, n - start, 0, 0});
}

/* ------------------------------------------------------------------------ */
/* Running the parser                                                       */
/* ------------------------------------------------------------------------ */

typedef struct run {
  const cfg_t *c;
  es_parser *p;
  sb_t out;    /* the transcript: one record per line */
  long calls;  /* callbacks so far */
  int alloc;   /* run C: allocation failures are expected */
  size_t good; /* run C: transcript length before the first failure */
  int failed;  /* run C: a failure was seen */
} run_t;

static void dump_and_abort(const cfg_t *c, const char *what, const char *a,
                           const char *b);

static void check_str(run_t *r, const char *what, const char *s, size_t n,
                      int nul_ok) {
  const char *bad = NULL;
  if (!s)
    bad = "NULL";
  else if (s[n] != '\0')
    bad = "not NUL-terminated";
  else if (!nul_ok && memchr(s, 0, n))
    bad = "contains U+0000";
  else if (!utf8_ok(s, n))
    bad = "not UTF-8";
  if (bad) {
    char msg[128];
    snprintf(msg, sizeof msg, "INVALID %s: %s", what, bad);
    dump_and_abort(r->c, msg, r->out.p ? r->out.p : "", "");
  }
}

static void rec_end(run_t *r) { sb_putc(&r->out, '\n'); }

/* After each callback: maybe set the id, maybe stop. */
static int after_cb(run_t *r) {
  r->calls++;
  const cfg_t *c = r->c;
  if (c->cb_setid_at && r->calls == c->cb_setid_at) {
    int want = memchr(c->cb_id, 0, c->cb_id_n) ? -1 : 0;
    for (int t = 0; t < (c->cb_setid_twice ? 2 : 1); t++) {
      int rc = es_parser_set_last_event_id(r->p, c->cb_id, c->cb_id_n);
      if (rc != want && !(r->alloc && rc == -1))
        dump_and_abort(c, "callback set_last_event_id returned wrong value", r->out.p, "");
      if (rc != want && !r->failed) {
        r->failed = 1;
        r->good = r->out.len;
      }
    }
  }
  return c->stop_after && r->calls == c->stop_after;
}

static int cb_event(void *ctx, const char *type, size_t tl, const char *d,
                    size_t dl, const char *id, size_t il) {
  run_t *r = ctx;
  check_str(r, "type", type, tl, 1);
  check_str(r, "data", d, dl, 1);
  check_str(r, "id", id, il, 0);
  if (tl == 0)
    dump_and_abort(r->c, "INVALID type: empty", r->out.p, "");
  size_t pl;
  const char *pid = es_parser_last_event_id(r->p, &pl);
  if (pl != il || memcmp(pid, id, il) != 0)
    dump_and_abort(r->c, "INVALID id differs from es_parser_last_event_id", r->out.p, "");
  sb_puts(&r->out, "event ");
  esc(&r->out, type, tl);
  sb_putc(&r->out, ' ');
  esc(&r->out, d, dl);
  sb_putc(&r->out, ' ');
  esc(&r->out, id, il);
  rec_end(r);
  /* the strings must stay valid across set_last_event_id in the callback */
  sb_t copy = {0};
  sb_put(&copy, id, il);
  int stop = after_cb(r);
  if (memcmp(copy.p, id, il) != 0 || id[il] != '\0')
    dump_and_abort(r->c, "id changed by set_last_event_id in on_event", r->out.p, "");
  check_str(r, "type after setid", type, tl, 1);
  check_str(r, "data after setid", d, dl, 1);
  sb_free(&copy);
  return stop;
}

static int cb_retry(void *ctx, uint64_t ms) {
  run_t *r = ctx;
  char tmp[40];
  snprintf(tmp, sizeof tmp, "retry %llu\n", (unsigned long long)ms);
  sb_puts(&r->out, tmp);
  return after_cb(r);
}

static int cb_comment(void *ctx, const char *t, size_t n) {
  run_t *r = ctx;
  check_str(r, "comment", t, n, 1);
  sb_puts(&r->out, "comment ");
  esc(&r->out, t, n);
  rec_end(r);
  return after_cb(r);
}

static int cb_error(void *ctx, eventsource_error_t code, const char *msg) {
  run_t *r = ctx;
  if (code != EVENTSOURCE_ERR_TOO_LARGE || !msg || !*msg)
    dump_and_abort(r->c, "INVALID on_error code or message", r->out.p, "");
  sb_puts(&r->out, "error TOO_LARGE\n");
  return after_cb(r);
}

static const es_parser_callbacks CBS = {cb_event, cb_retry, cb_comment, cb_error};

static void push_lastid(run_t *r) {
  size_t n;
  const char *id = es_parser_last_event_id(r->p, &n);
  check_str(r, "lastid", id, n, 0);
  sb_puts(&r->out, "lastid ");
  esc(&r->out, id, n);
  rec_end(r);
}

static void note_failure(run_t *r) {
  if (!r->failed) {
    r->failed = 1;
    r->good = r->out.len;
  }
}

/* Feeds n bytes from an exactly sized copy. Returns the feed result. */
static int feed_copy(run_t *r, const unsigned char *b, size_t n) {
  if (!n)
    return es_parser_feed(r->p, NULL, 0);
  char *c = malloc(n);
  if (!c)
    abort();
  memcpy(c, b, n);
  int rc = es_parser_feed(r->p, c, n);
  free(c);
  return rc;
}

/* chunked: 0 (run B, whole segments) or 1 (cfg's chunking). */
static void run_parser(run_t *r, int chunked) {
  const cfg_t *c = r->c;
  uint64_t seed = c->seed;
  if (r->alloc)
    es_alloc_fail_after(c->fail_after);
  r->p = es_parser_new(&CBS, r, c->max_line, c->max_event);
  if (!r->p) {
    es_alloc_fail_reset();
    note_failure(r);
    return;
  }
  int dead = 0;
  for (size_t i = 0; i < c->nops; i++) {
    const op_t *o = &c->ops[i];
    switch (o->k) {
    case OP_IN: {
      size_t off = 0;
      while (off < o->n && !dead) {
        size_t len = o->n - off;
        if (chunked) {
          size_t want = len;
          if (c->mode == 1)
            want = 1;
          else if (c->mode == 2)
            want = c->k;
          else if (c->mode == 3)
            want = 1 + (size_t)(rng_next(&seed) % c->k);
          if (want < len)
            len = want;
          if (c->empty_feeds && feed_copy(r, NULL, 0) != ES_PARSER_OK)
            dump_and_abort(c, "empty feed failed", r->out.p, "");
        }
        int rc = feed_copy(r, o->b + off, len);
        off += len;
        if (rc == ES_PARSER_STOPPED) {
          sb_puts(&r->out, "stopped\n");
          dead = 1;
        } else if (rc == ES_PARSER_NOMEM) {
          if (!r->alloc)
            dump_and_abort(c, "NOMEM without allocation failure", r->out.p, "");
          note_failure(r);
          sb_puts(&r->out, "nomem\n");
          es_alloc_fail_reset();
          es_parser_reset(r->p);
        } else if (rc != ES_PARSER_OK) {
          dump_and_abort(c, "bad feed result", r->out.p, "");
        }
      }
      break;
    }
    case OP_FINISH:
    case OP_RESET:
      if (o->k == OP_FINISH)
        es_parser_finish(r->p);
      else
        es_parser_reset(r->p);
      dead = 0;
      push_lastid(r);
      break;
    case OP_SETID: {
      int want = memchr(o->b, 0, o->n) ? -1 : 0;
      int rc = es_parser_set_last_event_id(r->p, (const char *)o->b, o->n);
      if (rc != want) {
        if (!(r->alloc && rc == -1))
          dump_and_abort(c, "set_last_event_id returned wrong value", r->out.p, "");
        note_failure(r);
      }
      size_t n;
      const char *id = es_parser_last_event_id(r->p, &n);
      check_str(r, "lastid after setid", id, n, 0);
      break;
    }
    case OP_LIMITS:
      es_parser_set_limits(r->p, o->ml, o->me);
      break;
    }
  }
  es_parser_finish(r->p);
  es_parser_free(r->p);
  r->p = NULL;
  if (r->alloc) {
    if (es_alloc_failures())
      note_failure(r);
    es_alloc_fail_reset();
  }
}

/* ------------------------------------------------------------------------ */
/* Reference (from test/test_parser.c, non-incremental, spec text)          */
/* ------------------------------------------------------------------------ */

static void ref_decode(const unsigned char *s, size_t n, int flush, sb_t *o) {
  uint32_t cp = 0;
  unsigned seen = 0, needed = 0, lower = 0x80, upper = 0xBF;
  sb_put(o, "", 0);
  for (size_t i = 0; i <= n; i++) {
    if (i == n) {
      if (needed && flush)
        utf8_put(o, 0xFFFD);
      break;
    }
    unsigned b = s[i];
    if (needed == 0) {
      if (b <= 0x7F) {
        sb_putc(o, (char)b);
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
        utf8_put(o, 0xFFFD);
      }
      continue;
    }
    if (b < lower || b > upper) {
      cp = needed = seen = 0;
      lower = 0x80;
      upper = 0xBF;
      i--;
      utf8_put(o, 0xFFFD);
      continue;
    }
    lower = 0x80;
    upper = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
    if (++seen != needed)
      continue;
    utf8_put(o, cp);
    cp = needed = seen = 0;
  }
}

typedef struct setid_at {
  size_t off;
  const unsigned char *b;
  size_t n;
} setid_at_t;

typedef struct ref {
  const cfg_t *c;
  sb_t *out;
  sb_t data, type, idbuf, idstr;
  int skipping, dead;
  long calls;
} ref_t;

static void ref_setid(ref_t *r, const void *b, size_t n) {
  if (memchr(b, 0, n))
    return;
  r->idstr.len = 0;
  ref_decode(b, n, 1, &r->idstr);
  r->idbuf.len = 0;
  sb_put(&r->idbuf, r->idstr.p, r->idstr.len);
}

/* After a callback record: the callback's own actions. */
static void ref_after_cb(ref_t *r) {
  r->calls++;
  if (r->c->cb_setid_at && r->calls == r->c->cb_setid_at)
    ref_setid(r, r->c->cb_id, r->c->cb_id_n);
  if (r->c->stop_after && r->calls == r->c->stop_after) {
    sb_puts(r->out, "stopped\n");
    r->dead = 1;
  }
}

static void ref_error(ref_t *r) {
  sb_puts(r->out, "error TOO_LARGE\n");
  r->data.len = r->type.len = 0;
  r->idbuf.len = 0;
  sb_put(&r->idbuf, r->idstr.p, r->idstr.len);
  r->skipping = 1;
  ref_after_cb(r);
}

static void ref_dispatch(ref_t *r) {
  r->idstr.len = 0;
  sb_put(&r->idstr, r->idbuf.p, r->idbuf.len);
  if (r->data.len == 0) {
    r->type.len = 0;
    return;
  }
  if (r->data.p[r->data.len - 1] == '\n')
    r->data.len--;
  sb_puts(r->out, "event ");
  if (r->type.len)
    esc(r->out, r->type.p, r->type.len);
  else
    esc(r->out, "message", 7);
  sb_putc(r->out, ' ');
  esc(r->out, r->data.p, r->data.len);
  sb_putc(r->out, ' ');
  esc(r->out, r->idstr.p, r->idstr.len);
  sb_putc(r->out, '\n');
  r->data.len = r->type.len = 0;
  ref_after_cb(r);
}

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
  sb_t t = {0};
  ref_decode(raw, n, 1, &t);
  if (t.len == 0) {
    ref_dispatch(r);
  } else if (t.p[0] == ':') {
    sb_puts(r->out, "comment ");
    esc(r->out, t.p + 1, t.len - 1);
    sb_putc(r->out, '\n');
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
      sb_put(&r->type, val, vl);
    } else if (nl == 4 && memcmp(t.p, "data", 4) == 0) {
      if (max_event && (r->data.len > max_event || r->data.len + vl > max_event)) {
        ref_error(r);
      } else {
        sb_put(&r->data, val, vl);
        sb_putc(&r->data, '\n');
      }
    } else if (nl == 2 && memcmp(t.p, "id", 2) == 0) {
      if (!memchr(val, 0, vl)) {
        r->idbuf.len = 0;
        sb_put(&r->idbuf, val, vl);
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
        char tmp[40];
        snprintf(tmp, sizeof tmp, "retry %llu\n", (unsigned long long)v);
        sb_puts(r->out, tmp);
        ref_after_cb(r);
      }
    }
  }
  sb_free(&t);
}

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
  sb_t t = {0};
  ref_decode(val, vl, 0, &t);
  if (r->data.len + t.len > max_event)
    ref_error(r);
  sb_free(&t);
}

/* One stream with the set-id directives at their offsets: a directive at
 * offset g is applied before the first line whose terminator is at or after g. */
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
  ref_partial(r, s + start, n - start);
}

static void ref_end_stream(ref_t *r) {
  r->data.len = r->type.len = 0;
  r->idbuf.len = 0;
  sb_put(&r->idbuf, r->idstr.p, r->idstr.len);
  r->skipping = 0;
  r->dead = 0;
}

static void ref_run(const cfg_t *c, sb_t *out) {
  ref_t r = {0};
  r.c = c;
  r.out = out;
  sb_put(out, "", 0);
  sb_put(&r.idstr, "", 0);
  sb_put(&r.idbuf, "", 0);
  sb_t stream = {0};
  setid_at_t *ids = NULL;
  size_t nids = 0;
  for (size_t i = 0; i <= c->nops; i++) {
    const op_t *o = i < c->nops ? &c->ops[i] : NULL;
    if (o && o->k == OP_IN) {
      sb_put(&stream, o->b, o->n);
    } else if (o && o->k == OP_SETID) {
      ids = xrealloc(ids, (nids + 1) * sizeof *ids);
      ids[nids++] = (setid_at_t){stream.len, o->b, o->n};
    } else if (!o || o->k == OP_FINISH || o->k == OP_RESET) {
      ref_stream(&r, (const unsigned char *)(stream.p ? stream.p : ""), stream.len, ids, nids);
      ref_end_stream(&r);
      stream.len = 0;
      nids = 0;
      if (o) {
        sb_puts(out, "lastid ");
        esc(out, r.idstr.p, r.idstr.len);
        sb_putc(out, '\n');
      }
    }
  }
  free(ids);
  sb_free(&stream);
  sb_free(&r.data);
  sb_free(&r.type);
  sb_free(&r.idbuf);
  sb_free(&r.idstr);
}

/* ------------------------------------------------------------------------ */
/* Reporting                                                                */
/* ------------------------------------------------------------------------ */

static void dump_and_abort(const cfg_t *c, const char *what, const char *a,
                           const char *b) {
  sb_t o = {0};
  char tmp[200];
  snprintf(tmp, sizeof tmp,
           "fuzz_parser: %s\n  max_line %zu max_event %zu chunking mode %u k %u "
           "stop-after %ld cb-setid-at %ld fail-after %ld empty-feeds %d\n  input:",
           what, c->max_line, c->max_event, c->mode, c->k, c->stop_after,
           c->cb_setid_at, c->fail_after, c->empty_feeds);
  sb_puts(&o, tmp);
  for (size_t i = 0; i < c->nops; i++) {
    const op_t *op = &c->ops[i];
    switch (op->k) {
    case OP_IN:
      sb_puts(&o, " in ");
      esc(&o, (const char *)op->b, op->n);
      break;
    case OP_FINISH: sb_puts(&o, " finish"); break;
    case OP_RESET: sb_puts(&o, " reset"); break;
    case OP_SETID:
      sb_puts(&o, " setid ");
      esc(&o, (const char *)op->b, op->n);
      break;
    case OP_LIMITS:
      snprintf(tmp, sizeof tmp, " limits %zu %zu", op->ml, op->me);
      sb_puts(&o, tmp);
      break;
    }
  }
  fprintf(stderr, "%s\n--- transcript 1:\n%s--- transcript 2:\n%s---\n", o.p,
          a ? a : "(null)\n", b ? b : "(null)\n");
  abort();
}

/* ------------------------------------------------------------------------ */
/* Entry point                                                              */
/* ------------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cfg_t c;
  memset(&c, 0, sizeof c);
  parse_input(&c, data, size);

  run_t a = {.c = &c}, b = {.c = &c};
  run_parser(&a, 1);
  run_parser(&b, 0);
  sb_put(&a.out, "", 0);
  sb_put(&b.out, "", 0);
  if (a.out.len != b.out.len || memcmp(a.out.p, b.out.p, a.out.len) != 0)
    dump_and_abort(&c, "MISMATCH chunked (1) vs whole (2)", a.out.p, b.out.p);

  /* The reference applies a set-id directive before the line it falls in,
   * which commutes with everything but a set-id made by a TOO_LARGE
   * callback fired earlier in that same line: skip those combinations. */
  if (!c.has_limits_op && !(c.cb_setid_at && c.has_setid_op)) {
    sb_t r = {0};
    ref_run(&c, &r);
    if (a.out.len != r.len || memcmp(a.out.p, r.p, r.len) != 0)
      dump_and_abort(&c, "MISMATCH parser (1) vs reference (2)", a.out.p, r.p);
    sb_free(&r);
  }

  if (c.fail_after >= 0) {
    run_t f = {.c = &c, .alloc = 1};
    run_parser(&f, 1);
    sb_put(&f.out, "", 0);
    size_t good = f.failed ? f.good : f.out.len;
    if (good > a.out.len || memcmp(f.out.p, a.out.p, good) != 0)
      dump_and_abort(&c, "MISMATCH before the first allocation failure (1) vs no failure (2)",
                     f.out.p, a.out.p);
    sb_free(&f.out);
  }
  sb_free(&a.out);
  sb_free(&b.out);
  free(c.ops);
  return 0;
}
