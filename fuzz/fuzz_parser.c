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
 *   R  the independent, non-incremental reference model that
 *      test/test_parser.c uses too (test/support/ts_refmodel.c, with
 *      stop-after, set-last-event-id between chunks and from a callback);
 *      skipped when set_limits is used, or when both kinds of set-id are
 *      (see the entry point)
 *   C  like A with allocation failures injected (h[5]): every callback
 *      before the first failure must match A; after ES_PARSER_NOMEM the
 *      parser is reset and fed on (no crash, no leak)
 *
 * Every callback checks its strings: valid UTF-8 (ts_utf8_valid(), strict),
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
#include "support/ts_refmodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
  c->ops = ts_xrealloc(c->ops, (c->nops + 1) * sizeof *c->ops);
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
  ts_sb_t out;    /* the transcript: one record per line */
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
  else if (!ts_utf8_valid(s, n))
    bad = "not UTF-8";
  if (bad) {
    char msg[128];
    snprintf(msg, sizeof msg, "INVALID %s: %s", what, bad);
    dump_and_abort(r->c, msg, r->out.p ? r->out.p : "", "");
  }
}

static void rec_end(run_t *r) { ts_sb_putc(&r->out, '\n'); }

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
  ts_sb_puts(&r->out, "event ");
  ts_esc(&r->out, type, tl);
  ts_sb_putc(&r->out, ' ');
  ts_esc(&r->out, d, dl);
  ts_sb_putc(&r->out, ' ');
  ts_esc(&r->out, id, il);
  rec_end(r);
  /* the strings must stay valid across set_last_event_id in the callback */
  ts_sb_t copy = {0};
  ts_sb_put(&copy, id, il);
  int stop = after_cb(r);
  if (memcmp(copy.p, id, il) != 0 || id[il] != '\0')
    dump_and_abort(r->c, "id changed by set_last_event_id in on_event", r->out.p, "");
  check_str(r, "type after setid", type, tl, 1);
  check_str(r, "data after setid", d, dl, 1);
  ts_sb_free(&copy);
  return stop;
}

static int cb_retry(void *ctx, uint64_t ms) {
  run_t *r = ctx;
  char tmp[40];
  snprintf(tmp, sizeof tmp, "retry %llu\n", (unsigned long long)ms);
  ts_sb_puts(&r->out, tmp);
  return after_cb(r);
}

static int cb_comment(void *ctx, const char *t, size_t n) {
  run_t *r = ctx;
  check_str(r, "comment", t, n, 1);
  ts_sb_puts(&r->out, "comment ");
  ts_esc(&r->out, t, n);
  rec_end(r);
  return after_cb(r);
}

static int cb_error(void *ctx, eventsource_error_t code, const char *msg) {
  run_t *r = ctx;
  if (code != EVENTSOURCE_ERR_TOO_LARGE || !msg || !*msg)
    dump_and_abort(r->c, "INVALID on_error code or message", r->out.p, "");
  ts_sb_puts(&r->out, "error TOO_LARGE\n");
  return after_cb(r);
}

static const es_parser_callbacks CBS = {cb_event, cb_retry, cb_comment, cb_error};

static void push_lastid(run_t *r) {
  size_t n;
  const char *id = es_parser_last_event_id(r->p, &n);
  check_str(r, "lastid", id, n, 0);
  ts_sb_puts(&r->out, "lastid ");
  ts_esc(&r->out, id, n);
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
            want = 1 + (size_t)(ts_rng_next(&seed) % c->k);
          if (want < len)
            len = want;
          if (c->empty_feeds && feed_copy(r, NULL, 0) != ES_PARSER_OK)
            dump_and_abort(c, "empty feed failed", r->out.p, "");
        }
        int rc = feed_copy(r, o->b + off, len);
        off += len;
        if (rc == ES_PARSER_STOPPED) {
          ts_sb_puts(&r->out, "stopped\n");
          dead = 1;
        } else if (rc == ES_PARSER_NOMEM) {
          if (!r->alloc)
            dump_and_abort(c, "NOMEM without allocation failure", r->out.p, "");
          note_failure(r);
          ts_sb_puts(&r->out, "nomem\n");
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
/* Reference (test/support/ts_refmodel.c, shared with test/test_parser.c)   */
/* ------------------------------------------------------------------------ */

static void ref_emit(void *ctx, const char *record) {
  ts_sb_puts(ctx, record);
  ts_sb_putc(ctx, '\n');
}

/* The reference model's transcript of c (not for inputs with OP_LIMITS). */
static void ref_run(const cfg_t *c, ts_sb_t *out) {
  ts_ref_cfg_t rc = {c->max_line, c->max_event, c->stop_after,
                     c->cb_setid_at, c->cb_id, c->cb_id_n};
  ts_ref_op_t *ops = ts_xmalloc((c->nops + 1) * sizeof *ops);
  size_t n = 0;
  for (size_t i = 0; i < c->nops; i++) {
    const op_t *o = &c->ops[i];
    switch (o->k) {
    case OP_IN: ops[n++] = (ts_ref_op_t){TS_REF_IN, o->b, o->n}; break;
    case OP_FINISH: ops[n++] = (ts_ref_op_t){TS_REF_FINISH, NULL, 0}; break;
    case OP_RESET: ops[n++] = (ts_ref_op_t){TS_REF_RESET, NULL, 0}; break;
    case OP_SETID: ops[n++] = (ts_ref_op_t){TS_REF_SETID, o->b, o->n}; break;
    case OP_LIMITS: break;
    }
  }
  ts_sb_put(out, "", 0);
  ts_ref_run(&rc, ops, n, ref_emit, out);
  free(ops);
}

/* ------------------------------------------------------------------------ */
/* Reporting                                                                */
/* ------------------------------------------------------------------------ */

static void dump_and_abort(const cfg_t *c, const char *what, const char *a,
                           const char *b) {
  ts_sb_t o = {0};
  char tmp[200];
  snprintf(tmp, sizeof tmp,
           "fuzz_parser: %s\n  max_line %zu max_event %zu chunking mode %u k %u "
           "stop-after %ld cb-setid-at %ld fail-after %ld empty-feeds %d\n  input:",
           what, c->max_line, c->max_event, c->mode, c->k, c->stop_after,
           c->cb_setid_at, c->fail_after, c->empty_feeds);
  ts_sb_puts(&o, tmp);
  for (size_t i = 0; i < c->nops; i++) {
    const op_t *op = &c->ops[i];
    switch (op->k) {
    case OP_IN:
      ts_sb_puts(&o, " in ");
      ts_esc(&o, (const char *)op->b, op->n);
      break;
    case OP_FINISH: ts_sb_puts(&o, " finish"); break;
    case OP_RESET: ts_sb_puts(&o, " reset"); break;
    case OP_SETID:
      ts_sb_puts(&o, " setid ");
      ts_esc(&o, (const char *)op->b, op->n);
      break;
    case OP_LIMITS:
      snprintf(tmp, sizeof tmp, " limits %zu %zu", op->ml, op->me);
      ts_sb_puts(&o, tmp);
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
  ts_sb_put(&a.out, "", 0);
  ts_sb_put(&b.out, "", 0);
  if (a.out.len != b.out.len || memcmp(a.out.p, b.out.p, a.out.len) != 0)
    dump_and_abort(&c, "MISMATCH chunked (1) vs whole (2)", a.out.p, b.out.p);

  /* The reference applies a set-id directive before the line it falls in,
   * which commutes with everything but a set-id made by a TOO_LARGE
   * callback fired earlier in that same line: skip those combinations. */
  if (!c.has_limits_op && !(c.cb_setid_at && c.has_setid_op)) {
    ts_sb_t r = {0};
    ref_run(&c, &r);
    if (a.out.len != r.len || memcmp(a.out.p, r.p, r.len) != 0)
      dump_and_abort(&c, "MISMATCH parser (1) vs reference (2)", a.out.p, r.p);
    ts_sb_free(&r);
  }

  if (c.fail_after >= 0) {
    run_t f = {.c = &c, .alloc = 1};
    run_parser(&f, 1);
    ts_sb_put(&f.out, "", 0);
    size_t good = f.failed ? f.good : f.out.len;
    if (good > a.out.len || memcmp(f.out.p, a.out.p, good) != 0)
      dump_and_abort(&c, "MISMATCH before the first allocation failure (1) vs no failure (2)",
                     f.out.p, a.out.p);
    ts_sb_free(&f.out);
  }
  ts_sb_free(&a.out);
  ts_sb_free(&b.out);
  free(c.ops);
  return 0;
}
