/*
 * test_parser.c - Check suite for the text/event-stream parser (lib/parser.c,
 * WHATWG HTML 9.2.5 "Parsing an event stream" and 9.2.6 "Interpreting an
 * event stream").
 *
 * ---------------------------------------------------------------------------
 * VECTOR FILES: test/vectors/<name>.vec, found through $ES_SRC_DIR (fallback
 * ".") + "/test/vectors". One vector per file; lines are:
 *
 *   # text                 a comment (also blank lines)
 *   opt max-line N         limits passed to es_parser_new (default 0: none)
 *   opt max-event N
 *   opt last-event-id "S"  es_parser_set_last_event_id() before any input
 *   opt stop-after N       the N-th callback (of any kind, counting from 1)
 *                          returns non-zero
 *   in "S" ["S" ...]       stream bytes; consecutive `in` lines form one
 *                          segment (no newline is added between them)
 *   finish                 es_parser_finish(), then records `lastid`
 *   reset                  es_parser_reset(), then records `lastid`
 *   setid "S"              es_parser_set_last_event_id()
 *   out RECORD             the next expected record of the transcript
 *
 * Strings are double-quoted, with the escapes \\ \" \n \r \t \0 \xHH (one
 * raw byte) and \u{H...} (the UTF-8 encoding of that code point).
 *
 * The transcript is the sequence of records the run produces:
 *   event "TYPE" "DATA" "ID"   on_event (ID: the last event ID string)
 *   comment "TEXT"             on_comment
 *   retry N                    on_retry
 *   error TOO_LARGE            on_error (code name)
 *   stopped                    es_parser_feed() returned ES_PARSER_STOPPED
 *                              (the runner then feeds nothing more until the
 *                              next finish/reset)
 *   nomem                      es_parser_feed() returned ES_PARSER_NOMEM
 *   lastid "ID"                after each finish/reset directive
 * Expected and actual records are compared in one canonical spelling
 * (printable ASCII as is, valid non-ASCII as \u{..}, anything else escaped).
 * At the end of the file the runner calls es_parser_finish() silently.
 *
 * Each vector is run: whole (one feed per segment), byte by byte (with an
 * empty feed before each byte), split in 2 at every offset, split in 3 at
 * every pair of offsets (vectors up to 200 bytes; 64 with
 * ES_TEST_SCALE=small), in random chunkings, and with
 * allocation failures injected at every allocation (whole and byte by byte).
 * Every chunk is fed from its own exactly sized heap copy, so an over-read
 * is an ASan/valgrind error. Two more properties are checked at every
 * prefix P of the input: the transcript after feeding P byte by byte equals
 * the transcript of P fed whole (no callback depends on a later byte), and
 * when P ends with CR, feeding P + "\n" adds nothing (a lone CR ends its
 * line at once; the LF after it belongs to the same line ending).
 * ---------------------------------------------------------------------------
 *
 * Besides the vectors: an independent, non-incremental reference
 * implementation (test/support/ts_refmodel.c, shared with the fuzzer
 * fuzz/fuzz_parser.c; written straight from the spec text: decode the whole
 * stream with the Encoding Standard's decoder, split lines, interpret),
 * checked against the vectors and then compared with the parser on random
 * streams at random chunkings; and C-level tests for sizes (100 MB, or 20 MB
 * with ES_TEST_SCALE=small or a sanitizer), the default limits, limits and
 * resynchronisation, stopping, allocation failure, reset/finish, setting the
 * last event ID (also from a callback) and the warm no-allocation guarantee.
 *
 * ES_TEST_VERBOSE=1 prints, per vector, how many runs, feeds and bytes its
 * checks used.
 */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "eventsource.h"
#include "parser.h"
#include "support/ts_refmodel.h"

/* ------------------------------------------------------------------------ */
/* Scale                                                                    */
/* ------------------------------------------------------------------------ */

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

/* ES_TEST_SCALE=small (valgrind) or a sanitizer build: smaller workloads. */
static int small_scale(void) {
  const char *s = getenv("ES_TEST_SCALE");
  return UNDER_SANITIZER || (s && strcmp(s, "small") == 0);
}

/* The size of the "100 MB" tests. */
static size_t big_size(void) {
  /* ES_TEST_FULL=1 forces the full size (make test sets it: 100 MB costs a
   * few seconds even under ASan). */
  const char *full = getenv("ES_TEST_FULL");
  if (full && strcmp(full, "1") == 0)
    return (size_t)100 << 20;
  return small_scale() ? (size_t)20 << 20 : (size_t)100 << 20;
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

/* A list of owned strings (a transcript). */
typedef struct list {
  char **v;
  size_t n, cap;
} list_t;

static void list_push(list_t *l, char *s) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    l->v = ts_xrealloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = s;
}

static void list_free(list_t *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

/* ------------------------------------------------------------------------ */
/* Vectors                                                                  */
/* ------------------------------------------------------------------------ */

enum op_kind { OP_IN, OP_FINISH, OP_RESET, OP_SETID };

typedef struct op {
  enum op_kind k;
  char *b;
  size_t n;
} op_t;

typedef struct vector {
  char name[256];
  size_t max_line, max_event;
  int has_init_id;
  char *init_id;
  size_t init_id_n;
  long stop_after;
  op_t *ops;
  size_t nops;
  size_t total; /* input bytes over all segments */
  list_t expect;
} vector_t;

static void vector_free(vector_t *v) {
  for (size_t i = 0; i < v->nops; i++)
    free(v->ops[i].b);
  free(v->ops);
  free(v->init_id);
  list_free(&v->expect);
  memset(v, 0, sizeof *v);
}

static void vec_add_op(vector_t *v, enum op_kind k, const char *b, size_t n) {
  if (k == OP_IN && v->nops && v->ops[v->nops - 1].k == OP_IN) {
    op_t *o = &v->ops[v->nops - 1];
    o->b = ts_xrealloc(o->b, o->n + n);
    memcpy(o->b + o->n, b, n);
    o->n += n;
  } else {
    v->ops = ts_xrealloc(v->ops, (v->nops + 1) * sizeof *v->ops);
    op_t *o = &v->ops[v->nops++];
    o->k = k;
    o->b = ts_xmalloc(n);
    memcpy(o->b, b, n);
    o->n = n;
  }
  if (k == OP_IN)
    v->total += n;
}

static const char *skip_ws(const char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  return s;
}

/* Parses "out ..." record text into its canonical spelling. */
static char *canon_record(const char *s, int *err) {
  ts_sb_t o = {0};
  ts_sb_t a = {0};
  *err = 0;
  s = skip_ws(s);
  if (strncmp(s, "event ", 6) == 0) {
    s += 6;
    ts_sb_puts(&o, "event");
    for (int i = 0; i < 3; i++) {
      a.len = 0;
      if (ts_unesc(&s, &a)) {
        *err = 1;
        break;
      }
      ts_sb_putc(&o, ' ');
      ts_esc(&o, a.p, a.len);
    }
  } else if (strncmp(s, "comment ", 8) == 0 || strncmp(s, "lastid ", 7) == 0) {
    int c = s[0] == 'c';
    s += c ? 8 : 7;
    ts_sb_puts(&o, c ? "comment " : "lastid ");
    if (ts_unesc(&s, &a))
      *err = 1;
    else
      ts_esc(&o, a.p, a.len);
  } else if (strncmp(s, "retry ", 6) == 0) {
    char *end;
    s = skip_ws(s + 6);
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
      *err = 1;
    ts_sb_printf(&o, "retry %llu", v);
    s = end;
  } else if (strncmp(s, "error ", 6) == 0) {
    s = skip_ws(s + 6);
    size_t n = strcspn(s, " \t\r\n");
    ts_sb_puts(&o, "error ");
    ts_sb_put(&o, s, n);
    s += n;
  } else if (strncmp(s, "stopped", 7) == 0 || strncmp(s, "nomem", 5) == 0) {
    size_t n = strcspn(s, " \t\r\n");
    ts_sb_put(&o, s, n);
    s += n;
  } else {
    *err = 1;
  }
  s = skip_ws(s);
  if (*s && *s != '\n' && *s != '\r')
    *err = 1;
  free(a.p);
  return ts_sb_take(&o);
}

/* Loads a vector file. Returns 0 or -1 (message in err). */
static int vector_load(vector_t *v, const char *path, const char *name,
                       char *err, size_t errlen) {
  memset(v, 0, sizeof *v);
  snprintf(v->name, sizeof v->name, "%s", name);
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%.400s: cannot open", path);
    return -1;
  }
  char line[65536];
  int lineno = 0, bad = 0;
  ts_sb_t a = {0};
  while (!bad && fgets(line, sizeof line, f)) {
    lineno++;
    const char *s = skip_ws(line);
    if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0')
      continue;
    if (strncmp(s, "in ", 3) == 0) {
      s += 3;
      a.len = 0;
      do {
        if (ts_unesc(&s, &a))
          bad = 1;
        s = skip_ws(s);
      } while (!bad && *s == '"');
      if (!bad && a.len)
        vec_add_op(v, OP_IN, a.p, a.len);
    } else if (strncmp(s, "finish", 6) == 0) {
      vec_add_op(v, OP_FINISH, "", 0);
    } else if (strncmp(s, "reset", 5) == 0) {
      vec_add_op(v, OP_RESET, "", 0);
    } else if (strncmp(s, "setid ", 6) == 0) {
      s += 6;
      a.len = 0;
      if (ts_unesc(&s, &a))
        bad = 1;
      else
        vec_add_op(v, OP_SETID, a.p, a.len);
    } else if (strncmp(s, "out ", 4) == 0) {
      int e;
      char *r = canon_record(s + 4, &e);
      if (e) {
        free(r);
        bad = 1;
      } else {
        list_push(&v->expect, r);
      }
    } else if (strncmp(s, "opt ", 4) == 0) {
      s = skip_ws(s + 4);
      if (strncmp(s, "max-line ", 9) == 0)
        v->max_line = strtoul(s + 9, NULL, 10);
      else if (strncmp(s, "max-event ", 10) == 0)
        v->max_event = strtoul(s + 10, NULL, 10);
      else if (strncmp(s, "stop-after ", 11) == 0)
        v->stop_after = strtol(s + 11, NULL, 10);
      else if (strncmp(s, "last-event-id ", 14) == 0) {
        s += 14;
        a.len = 0;
        if (ts_unesc(&s, &a)) {
          bad = 1;
        } else {
          v->has_init_id = 1;
          v->init_id = ts_xmalloc(a.len);
          memcpy(v->init_id, a.p, a.len);
          v->init_id_n = a.len;
        }
      } else {
        bad = 1;
      }
    } else {
      bad = 1;
    }
  }
  fclose(f);
  free(a.p);
  if (bad) {
    snprintf(err, errlen, "%.400s:%d: syntax error", path, lineno);
    vector_free(v);
    return -1;
  }
  if (!v->nops) {
    snprintf(err, errlen, "%.400s: no input", path);
    vector_free(v);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Running a vector                                                         */
/* ------------------------------------------------------------------------ */

typedef struct rctx {
  list_t *out;
  es_parser *p;
  long stop_after;
  long calls;
} rctx_t;

static int rc_count(rctx_t *c) {
  c->calls++;
  return c->stop_after > 0 && c->calls == c->stop_after;
}

/* Checks a string handed to a callback; a violation becomes a record. */
static void rc_check(rctx_t *c, const char *what, const char *s, size_t n,
                     int nul_ok) {
  ts_sb_t o = {0};
  if (!s)
    ts_sb_printf(&o, "INVALID %s: NULL", what);
  else if (s[n] != '\0')
    ts_sb_printf(&o, "INVALID %s: not NUL-terminated", what);
  else if (!nul_ok && memchr(s, 0, n))
    ts_sb_printf(&o, "INVALID %s: contains U+0000", what);
  else if (!ts_utf8_valid(s, n))
    ts_sb_printf(&o, "INVALID %s: not UTF-8", what);
  if (o.len)
    list_push(c->out, ts_sb_take(&o));
}

static int rc_event(void *ctx, const char *type, size_t tl, const char *data,
                    size_t dl, const char *id, size_t il) {
  rctx_t *c = ctx;
  rc_check(c, "type", type, tl, 1); /* "event:\0" is a type with U+0000 */
  rc_check(c, "data", data, dl, 1);
  rc_check(c, "id", id, il, 0);
  if (tl == 0)
    list_push(c->out, strdup("INVALID type: empty"));
  size_t pl;
  const char *pid = es_parser_last_event_id(c->p, &pl);
  if (pl != il || memcmp(pid, id, il) != 0)
    list_push(c->out, strdup("INVALID id: differs from es_parser_last_event_id"));
  ts_sb_t o = {0};
  ts_sb_puts(&o, "event ");
  ts_esc(&o, type, tl);
  ts_sb_putc(&o, ' ');
  ts_esc(&o, data, dl);
  ts_sb_putc(&o, ' ');
  ts_esc(&o, id, il);
  list_push(c->out, ts_sb_take(&o));
  return rc_count(c);
}

static int rc_retry(void *ctx, uint64_t ms) {
  rctx_t *c = ctx;
  ts_sb_t o = {0};
  ts_sb_printf(&o, "retry %llu", (unsigned long long)ms);
  list_push(c->out, ts_sb_take(&o));
  return rc_count(c);
}

static int rc_comment(void *ctx, const char *text, size_t len) {
  rctx_t *c = ctx;
  rc_check(c, "comment", text, len, 1);
  ts_sb_t o = {0};
  ts_sb_puts(&o, "comment ");
  ts_esc(&o, text, len);
  list_push(c->out, ts_sb_take(&o));
  return rc_count(c);
}

static int rc_error(void *ctx, eventsource_error_t code, const char *msg) {
  rctx_t *c = ctx;
  ts_sb_t o = {0};
  if (code == EVENTSOURCE_ERR_TOO_LARGE)
    ts_sb_puts(&o, "error TOO_LARGE");
  else
    ts_sb_printf(&o, "error code%d", (int)code);
  if (!msg || !*msg)
    ts_sb_puts(&o, " (INVALID: no message)");
  list_push(c->out, ts_sb_take(&o));
  return rc_count(c);
}

static const es_parser_callbacks rc_callbacks = {rc_event, rc_retry,
                                                 rc_comment, rc_error};

static void push_lastid(rctx_t *c) {
  size_t n;
  const char *id = es_parser_last_event_id(c->p, &n);
  rc_check(c, "lastid", id, n, 0);
  ts_sb_t o = {0};
  ts_sb_puts(&o, "lastid ");
  ts_esc(&o, id, n);
  list_push(c->out, ts_sb_take(&o));
}

/* Statistics, printed with ES_TEST_VERBOSE=1. */
static unsigned long long g_runs, g_feeds, g_bytes_fed;

/* Feeds n bytes from an exactly sized copy (n == 0: a NULL, 0 feed). */
static int feed_copy(es_parser *p, const char *b, size_t n) {
  if (!n)
    return es_parser_feed(p, NULL, 0);
  char *c = ts_xmalloc(n);
  memcpy(c, b, n);
  g_feeds++;
  g_bytes_fed += n;
  int r = es_parser_feed(p, c, n);
  free(c);
  return r;
}

/* How a run feeds its input. */
typedef struct plan {
  const unsigned char *cut; /* cut[g]: a feed boundary before global byte g */
  int all_bytes;            /* a boundary before every byte */
  int empty_feeds;          /* an empty feed before every chunk */
  size_t trunc;             /* stop after this many input bytes (prefix run) */
  const char *extra;        /* fed after the truncation point */
  size_t *snap;             /* snap[g]: transcript length after g bytes */
} plan_t;

static void run_vector(const vector_t *v, const plan_t *pl, list_t *out) {
  rctx_t c = {out, NULL, v->stop_after, 0};
  g_runs++;
  es_parser *p = es_parser_new(&rc_callbacks, &c, v->max_line, v->max_event);
  if (!p) {
    list_push(out, strdup("newfail"));
    return;
  }
  c.p = p;
  if (v->has_init_id && es_parser_set_last_event_id(p, v->init_id, v->init_id_n))
    list_push(out, strdup("nomem setid"));
  size_t g = 0;
  int dead = 0, done = 0;
  for (size_t i = 0; i < v->nops && !done; i++) {
    const op_t *o = &v->ops[i];
    switch (o->k) {
    case OP_IN: {
      size_t len = o->n;
      if (g + len >= pl->trunc) {
        len = pl->trunc - g;
        done = 1;
      }
      size_t start = 0;
      for (size_t j = 1; j <= len && !dead; j++) {
        if (j < len && !pl->all_bytes && !(pl->cut && pl->cut[g + j]))
          continue;
        if (pl->empty_feeds && feed_copy(p, NULL, 0) != ES_PARSER_OK)
          list_push(out, strdup("INVALID empty feed failed"));
        int r = feed_copy(p, o->b + start, j - start);
        if (r == ES_PARSER_STOPPED) {
          list_push(out, strdup("stopped"));
          dead = 1;
        } else if (r == ES_PARSER_NOMEM) {
          list_push(out, strdup("nomem"));
          dead = 1;
        } else if (r != ES_PARSER_OK) {
          list_push(out, strdup("INVALID feed result"));
          dead = 1;
        }
        if (pl->snap)
          pl->snap[g + j] = out->n;
        start = j;
      }
      if (pl->snap && dead)
        for (size_t j = start + 1; j <= len; j++)
          pl->snap[g + j] = out->n;
      g += len;
      if (done && pl->extra && !dead) {
        int r = feed_copy(p, pl->extra, strlen(pl->extra));
        if (r == ES_PARSER_STOPPED)
          list_push(out, strdup("stopped"));
        else if (r != ES_PARSER_OK)
          list_push(out, strdup("nomem"));
      }
      break;
    }
    case OP_FINISH:
    case OP_RESET:
      if (o->k == OP_FINISH)
        es_parser_finish(p);
      else
        es_parser_reset(p);
      dead = 0;
      push_lastid(&c);
      break;
    case OP_SETID:
      if (es_parser_set_last_event_id(p, o->b, o->n))
        list_push(out, strdup("nomem setid"));
      break;
    }
  }
  /* Clean-up, not part of the transcript: a truncated run (the prefix checks)
   * may end inside a line whose finish reports a limit error. */
  list_t sink = {0};
  c.out = &sink;
  es_parser_finish(p);
  list_free(&sink);
  es_parser_free(p);
}

/* Compares transcripts; on a difference returns a report (malloc'd). */
static char *compare(const vector_t *v, const char *mode, const list_t *want,
                     size_t want_n, const list_t *got) {
  size_t i = 0;
  while (i < want_n && i < got->n && strcmp(want->v[i], got->v[i]) == 0)
    i++;
  if (i == want_n && i == got->n)
    return NULL;
  ts_sb_t o = {0};
  ts_sb_printf(&o, "vector %s, %s: transcripts differ at record %zu\n", v->name,
            mode, i);
  ts_sb_puts(&o, "  expected:\n");
  for (size_t j = 0; j < want_n; j++) {
    ts_sb_puts(&o, j == i ? "  > " : "    ");
    ts_sb_puts(&o, want->v[j]);
    ts_sb_putc(&o, '\n');
  }
  ts_sb_puts(&o, "  got:\n");
  for (size_t j = 0; j < got->n; j++) {
    ts_sb_puts(&o, j == i ? "  > " : "    ");
    ts_sb_puts(&o, got->v[j]);
    ts_sb_putc(&o, '\n');
  }
  return ts_sb_take(&o);
}

/* Runs v with one plan and compares with want; returns a report or NULL. */
static char *check_plan(const vector_t *v, const plan_t *pl, const char *mode,
                        const list_t *want) {
  list_t got = {0};
  run_vector(v, pl, &got);
  char *r = compare(v, mode, want, want->n, &got);
  list_free(&got);
  return r;
}

/* Runs v with allocation failures injected at the n-th allocation for every n
 * until a run needs no failure; every run must end cleanly and the clean one
 * must give the expected transcript. */
static char *check_alloc_failures(const vector_t *v, const plan_t *pl,
                                  const char *mode, const list_t *want) {
  for (long n = 0; n < 100000; n++) {
    list_t got = {0};
    es_alloc_fail_after(n);
    run_vector(v, pl, &got);
    unsigned long failures = es_alloc_failures();
    es_alloc_fail_reset();
    if (failures) {
      /* a failed run may only differ by nomem/newfail records */
      for (size_t i = 0; i < got.n; i++)
        if (strncmp(got.v[i], "INVALID", 7) == 0) {
          ts_sb_t o = {0};
          ts_sb_printf(&o, "vector %s, %s, failing allocation %ld: %s", v->name,
                    mode, n, got.v[i]);
          list_free(&got);
          return ts_sb_take(&o);
        }
      list_free(&got);
      continue;
    }
    char m[128];
    snprintf(m, sizeof m, "%s (after %ld failing runs)", mode, n);
    char *r = compare(v, m, want, want->n, &got);
    list_free(&got);
    return r;
  }
  return strdup("allocation failure loop did not end");
}

/* All the checks for one vector against want. quick: fewer chunkings. */
static char *check_vector(const vector_t *v, const list_t *want, int quick,
                          uint64_t seed) {
  size_t T = v->total;
  char *r = NULL;
  char mode[160];
  unsigned char *cut = calloc(T + 2, 1);
  size_t *snap = calloc(T + 2, sizeof *snap);
  if (!cut || !snap)
    abort();
  plan_t pl = {NULL, 0, 0, SIZE_MAX, NULL, NULL};

  /* whole */
  if ((r = check_plan(v, &pl, "fed whole", want)))
    goto out;
  /* byte by byte, with empty feeds between, recording snapshots */
  {
    plan_t pb = {NULL, 1, 1, SIZE_MAX, NULL, snap};
    list_t got = {0};
    run_vector(v, &pb, &got);
    r = compare(v, "fed byte by byte", want, want->n, &got);
    if (!r && !quick) {
      /* prefix property and lone-CR property */
      for (size_t k = 1; k <= T && !r; k++) {
        plan_t pp = {NULL, 0, 0, k, NULL, NULL};
        snprintf(mode, sizeof mode, "prefix of %zu bytes fed whole vs byte by byte", k);
        list_t pre = {0};
        run_vector(v, &pp, &pre);
        r = compare(v, mode, &got, snap[k], &pre);
        list_free(&pre);
        /* the byte at global offset k-1 */
        size_t g = 0;
        char last = 0;
        for (size_t i = 0; i < v->nops; i++)
          if (v->ops[i].k == OP_IN) {
            if (k - 1 < g + v->ops[i].n) {
              last = v->ops[i].b[k - 1 - g];
              break;
            }
            g += v->ops[i].n;
          }
        if (!r && last == '\r') {
          plan_t pc = {NULL, 0, 0, k, "\n", NULL};
          snprintf(mode, sizeof mode,
                   "prefix of %zu bytes ending in CR, then LF: the CR must end its line at once", k);
          run_vector(v, &pc, &pre);
          r = compare(v, mode, &got, snap[k], &pre);
          list_free(&pre);
        }
      }
    }
    list_free(&got);
    if (r)
      goto out;
  }
  pl.cut = cut;
  /* split in two at every offset */
  for (size_t k = 1; k < T; k++) {
    cut[k] = 1;
    snprintf(mode, sizeof mode, "split at %zu", k);
    r = check_plan(v, &pl, mode, want);
    cut[k] = 0;
    if (r)
      goto out;
  }
  /* split in three at every pair of offsets (short vectors) */
  const char *scale = getenv("ES_TEST_SCALE");
  size_t lim3 = quick ? 0 : scale && strcmp(scale, "small") == 0 ? 64 : 200;
  if (T <= lim3) {
    for (size_t i = 1; i < T; i++)
      for (size_t j = i + 1; j < T; j++) {
        cut[i] = cut[j] = 1;
        snprintf(mode, sizeof mode, "split at %zu and %zu", i, j);
        r = check_plan(v, &pl, mode, want);
        cut[i] = cut[j] = 0;
        if (r)
          goto out;
      }
  }
  /* random chunkings */
  int nrand = quick ? 4 : 40;
  for (int t = 0; t < nrand; t++) {
    memset(cut, 0, T + 2);
    size_t maxc = 1 + ts_rng_below(&seed, 24);
    for (size_t g = ts_rng_below(&seed, maxc) + 1; g < T; g += 1 + ts_rng_below(&seed, maxc))
      cut[g] = 1;
    snprintf(mode, sizeof mode, "random chunking #%d (seed-dependent, chunks <= %zu)", t, maxc);
    if ((r = check_plan(v, &pl, mode, want)))
      goto out;
  }
  /* allocation failures */
  if (!quick) {
    pl.cut = NULL;
    if ((r = check_alloc_failures(v, &pl, "fed whole with failing allocations", want)))
      goto out;
    plan_t pb = {NULL, 1, 0, SIZE_MAX, NULL, NULL};
    if ((r = check_alloc_failures(v, &pb, "byte by byte with failing allocations", want)))
      goto out;
  }
out:
  free(cut);
  free(snap);
  return r;
}

/* The vectors, loaded by main() before the suite is built. */
static vector_t *g_vectors;
static size_t g_nvectors;
static char g_vector_error[1024];

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_vectors(void) {
  const char *src = getenv("ES_SRC_DIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/test/vectors", src && *src ? src : ".");
  DIR *d = opendir(dir);
  if (!d) {
    snprintf(g_vector_error, sizeof g_vector_error,
             "cannot open %.900s (set ES_SRC_DIR)", dir);
    return;
  }
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".vec") == 0) {
      names = ts_xrealloc(names, (n + 1) * sizeof *names);
      names[n++] = strdup(e->d_name);
    }
  }
  closedir(d);
  if (n)
    qsort(names, n, sizeof *names, name_cmp);
  g_vectors = calloc(n ? n : 1, sizeof *g_vectors);
  for (size_t i = 0; i < n; i++) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    char err[512];
    if (vector_load(&g_vectors[g_nvectors], path, names[i], err, sizeof err)) {
      if (!g_vector_error[0])
        snprintf(g_vector_error, sizeof g_vector_error, "%.900s", err);
    } else {
      g_nvectors++;
    }
    free(names[i]);
  }
  free(names);
  if (!g_nvectors && !g_vector_error[0])
    snprintf(g_vector_error, sizeof g_vector_error, "no vectors in %.900s", dir);
}

static void free_vectors(void) {
  for (size_t i = 0; i < g_nvectors; i++)
    vector_free(&g_vectors[i]);
  free(g_vectors);
}

START_TEST(test_vectors_loaded) {
  ck_assert_msg(g_vector_error[0] == '\0', "%s", g_vector_error);
  ck_assert_uint_ge(g_nvectors, 60);
}
END_TEST

START_TEST(test_vector) {
  ck_assert_uint_lt((size_t)_i, g_nvectors);
  const vector_t *v = &g_vectors[_i];
  g_runs = g_feeds = g_bytes_fed = 0;
  char *r = check_vector(v, &v->expect, 0, UINT64_C(0x9E3779B97F4A7C15) + (uint64_t)_i);
  if (getenv("ES_TEST_VERBOSE"))
    fprintf(stderr, "%-45s %4zu bytes: %7llu runs, %8llu feeds, %9llu bytes fed\n",
            v->name, v->total, g_runs, g_feeds, g_bytes_fed);
  if (r) {
    fprintf(stderr, "%s", r);
    ck_abort_msg("%s", r);
  }
  free(r);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Reference implementation (test/support/ts_refmodel.c)                    */
/* ------------------------------------------------------------------------ */

static void ref_emit(void *ctx, const char *record) {
  list_push(ctx, strdup(record));
}

/* The reference model's transcript of a vector (opt last-event-id: a set-id
 * before any input). */
static void ref_run(const vector_t *v, list_t *out) {
  ts_ref_cfg_t c = {v->max_line, v->max_event, v->stop_after, 0, NULL, 0};
  ts_ref_op_t *ops = ts_xmalloc((v->nops + 1) * sizeof *ops);
  size_t n = 0;
  if (v->has_init_id)
    ops[n++] = (ts_ref_op_t){TS_REF_SETID, v->init_id, v->init_id_n};
  for (size_t i = 0; i < v->nops; i++) {
    static const ts_ref_kind_t kinds[] = {[OP_IN] = TS_REF_IN, [OP_FINISH] = TS_REF_FINISH,
                                          [OP_RESET] = TS_REF_RESET, [OP_SETID] = TS_REF_SETID};
    ops[n++] = (ts_ref_op_t){kinds[v->ops[i].k], v->ops[i].b, v->ops[i].n};
  }
  ts_ref_run(&c, ops, n, ref_emit, out);
  free(ops);
}

static const char *const RAND_TOKENS[] = {
    "data", "data:", "data: ", "data:  ", "event:", "event: ", "event", "id:",
    "id: ", "id", "retry:", "retry: ", "retry", ":", " ", "x", "yz", "123",
    "0", "99999999999999999999", "\r", "\n", "\r\n", "\n\n", "\r\r", "\n\r",
    "\xEF\xBB\xBF", "\xEF\xBB", "\xEF", "\xC3\xA9", "\xE2\x82\xAC",
    "\xF0\x9F\x98\x80", "\xE2\x82", "\xF0\x9F", "\xF0\x9F\x98", "\x80", "\xFF",
    "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE0\x80", "\xC2", "Data",
    "foo:", "\t", "ab:cd", "\xF4\x8F\xBF\xBF", "\xEF\xBF\xBD", "\xF5\x80", "\xF7",
};

static void random_stream(uint64_t *seed, ts_sb_t *o) {
  size_t ntok = sizeof RAND_TOKENS / sizeof RAND_TOKENS[0];
  size_t n = ts_rng_below(seed, 48);
  if (ts_rng_below(seed, 4) == 0)
    ts_sb_put(o, "\xEF\xBB\xBF", 3);
  for (size_t i = 0; i < n; i++) {
    size_t t = ts_rng_below(seed, ntok + 1);
    if (t == ntok) /* NUL is not expressible in the token table */
      ts_sb_put(o, "\0", 1);
    else
      ts_sb_puts(o, RAND_TOKENS[t]);
  }
}

START_TEST(test_random_vs_reference) {
  uint64_t seed = UINT64_C(0x243F6A8885A308D3) + (uint64_t)_i * 7919;
  int rounds = small_scale() ? 400 : 1500;
  for (int round = 0; round < rounds; round++) {
    vector_t v;
    memset(&v, 0, sizeof v);
    snprintf(v.name, sizeof v.name, "random #%d.%d", _i, round);
    if (ts_rng_below(&seed, 2)) {
      v.max_line = ts_rng_below(&seed, 3) ? 1 + ts_rng_below(&seed, 30) : 0;
      v.max_event = ts_rng_below(&seed, 3) ? 1 + ts_rng_below(&seed, 30) : 0;
    }
    size_t nstreams = 1 + ts_rng_below(&seed, 3);
    for (size_t s = 0; s < nstreams; s++) {
      ts_sb_t b = {0};
      random_stream(&seed, &b);
      if (b.len)
        vec_add_op(&v, OP_IN, b.p, b.len);
      vec_add_op(&v, OP_FINISH, "", 0);
      free(b.p);
    }
    list_t want = {0};
    ref_run(&v, &want);
    char *r = check_vector(&v, &want, 1, seed);
    if (r) {
      ts_sb_t o = {0};
      ts_sb_puts(&o, r);
      ts_sb_printf(&o, "  limits: max-line %zu max-event %zu\n  input:", v.max_line, v.max_event);
      for (size_t i = 0; i < v.nops; i++) {
        if (v.ops[i].k == OP_IN) {
          ts_sb_puts(&o, " in ");
          ts_esc(&o, v.ops[i].b, v.ops[i].n);
        } else {
          ts_sb_puts(&o, " finish");
        }
      }
      free(r);
      list_free(&want);
      vector_free(&v);
      fprintf(stderr, "%s\n", o.p);
      ck_abort_msg("%s", o.p);
    }
    list_free(&want);
    vector_free(&v);
  }
}
END_TEST

/* The reference itself must agree with the spec examples (so that the
 * random comparison compares against something right). */
START_TEST(test_reference_on_vectors) {
  size_t checked = 0;
  /* every vector: the model expresses set-id, opt last-event-id and
   * stop-after too (it used to skip the stop-* and setid vectors) */
  for (size_t i = 0; i < g_nvectors; i++) {
    const vector_t *v = &g_vectors[i];
    list_t got = {0};
    ref_run(v, &got);
    char *r = compare(v, "reference implementation", &v->expect, v->expect.n, &got);
    list_free(&got);
    if (r) {
      fprintf(stderr, "%s", r);
      ck_abort_msg("%s", r);
    }
    checked++;
  }
  ck_assert_uint_ge(checked, 50);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* C-level tests                                                            */
/* ------------------------------------------------------------------------ */

/* A simple recorder for the C-level tests. */
typedef struct rec {
  size_t events, comments, retries, errors;
  char last_type[64];
  char last_id[64];
  size_t last_data_len;
  uint64_t last_retry;
  char *last_data; /* kept when keep_data */
  int keep_data;
  /* check the data of each event against a generator */
  int (*verify)(struct rec *, const char *, size_t);
  size_t verify_bad;
  uint64_t sum;
  int stop_on; /* 1 event, 2 comment, 3 retry, 4 error */
} rec_t;

static int r_event(void *ctx, const char *type, size_t tl, const char *data,
                   size_t dl, const char *id, size_t il) {
  rec_t *r = ctx;
  r->events++;
  snprintf(r->last_type, sizeof r->last_type, "%.*s", (int)tl, type);
  snprintf(r->last_id, sizeof r->last_id, "%.*s", (int)il, id);
  r->last_data_len = dl;
  if (data[dl] != '\0')
    r->verify_bad++;
  if (r->keep_data) {
    free(r->last_data);
    r->last_data = ts_xmalloc(dl + 1);
    memcpy(r->last_data, data, dl + 1);
  }
  if (r->verify && !r->verify(r, data, dl))
    r->verify_bad++;
  for (size_t i = 0; i < dl; i += 4093)
    r->sum = r->sum * 31 + (unsigned char)data[i];
  r->sum += dl;
  return r->stop_on == 1;
}

static int r_comment(void *ctx, const char *t, size_t n) {
  rec_t *r = ctx;
  r->comments++;
  (void)t;
  (void)n;
  return r->stop_on == 2;
}

static int r_retry(void *ctx, uint64_t ms) {
  rec_t *r = ctx;
  r->retries++;
  r->last_retry = ms;
  return r->stop_on == 3;
}

static int r_error(void *ctx, eventsource_error_t code, const char *msg) {
  rec_t *r = ctx;
  ck_assert_int_eq(code, EVENTSOURCE_ERR_TOO_LARGE);
  ck_assert_ptr_nonnull(msg);
  r->errors++;
  return r->stop_on == 4;
}

static const es_parser_callbacks r_callbacks = {r_event, r_retry, r_comment,
                                                r_error};

static void feed_ok(es_parser *p, const char *s, size_t n) {
  ck_assert_int_eq(es_parser_feed(p, s, n), ES_PARSER_OK);
}

static void feed_str(es_parser *p, const char *s) { feed_ok(p, s, strlen(s)); }

static void feed_chunked(es_parser *p, const char *s, size_t n, size_t chunk) {
  for (size_t i = 0; i < n; i += chunk)
    feed_ok(p, s + i, n - i < chunk ? n - i : chunk);
}

/* The payload of the big-line tests: byte i is PATTERN[i % 36]. */
#define PAT_PERIOD 36
#define PAT_BLOCK (PAT_PERIOD * 114) /* a multiple of the period, > 4 KiB */
static char g_pat[PAT_BLOCK + PAT_PERIOD];

static void pattern_init(void) {
  static const char A[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (size_t i = 0; i < sizeof g_pat; i++)
    g_pat[i] = A[i % PAT_PERIOD];
}

/* Writes payload bytes [off, off + n) to dst. */
static void pattern_fill(char *dst, size_t off, size_t n) {
  while (n) {
    size_t k = n < PAT_BLOCK ? n : PAT_BLOCK;
    memcpy(dst, g_pat + off % PAT_PERIOD, k);
    dst += k;
    off += k;
    n -= k;
  }
}

static int verify_pattern(rec_t *r, const char *d, size_t n) {
  (void)r;
  for (size_t i = 0; i < n; i += PAT_BLOCK)
    if (memcmp(d + i, g_pat, n - i < PAT_BLOCK ? n - i : PAT_BLOCK) != 0)
      return 0;
  return 1;
}

/* "data: " + N pattern bytes + "\r\n\r\n", generated 1 KiB at a time: the
 * line is never whole in a chunk. */
START_TEST(test_big_line_in_1k_pieces) {
  size_t N = big_size();
  rec_t r = {0};
  r.verify = verify_pattern;
  es_parser *p = es_parser_new(&r_callbacks, &r, 0, 0);
  ck_assert_ptr_nonnull(p);
  pattern_init();
  size_t total = 6 + N + 4;
  char piece[1024];
  for (size_t off = 0; off < total; off += sizeof piece) {
    size_t n = total - off < sizeof piece ? total - off : sizeof piece;
    if (off >= 6 && off + n <= 6 + N) {
      pattern_fill(piece, off - 6, n);
    } else {
      for (size_t i = 0; i < n; i++) {
        size_t g = off + i;
        piece[i] = g < 6 ? "data: "[g] : g < 6 + N ? g_pat[(g - 6) % PAT_PERIOD] : "\r\n\r\n"[g - 6 - N];
      }
    }
    feed_ok(p, piece, n);
    ck_assert_uint_eq(r.events, 0 + (off + n == total));
  }
  ck_assert_uint_eq(r.events, 1);
  ck_assert_uint_eq(r.last_data_len, N);
  ck_assert_uint_eq(r.verify_bad, 0);
  ck_assert_str_eq(r.last_type, "message");
  es_parser_free(p);
}
END_TEST

/* Multi-byte text (2, 3 and 4-byte characters) in one big line fed in pieces
 * of 1000 bytes, so characters are split across pieces. */
static char *gen_utf8_line(size_t N, size_t *len, size_t *payload_start,
                           size_t *payload_len) {
  static const char *chars[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "a",
                                "\xD0\x96", "\xE4\xB8\xAD", "\xF4\x8F\xBF\xBF"};
  static const char head[] = "event: \xE2\x82\xAC\ndata:";
  char *in = ts_xmalloc(N + 64);
  size_t n = sizeof head - 1;
  memcpy(in, head, n);
  *payload_start = n;
  for (size_t i = 0; n < N; i++) {
    const char *c = chars[(i * 7 + i / 3) % 7];
    size_t cl = strlen(c);
    memcpy(in + n, c, cl);
    n += cl;
  }
  *payload_len = n - *payload_start;
  memcpy(in + n, "\n\n", 2);
  *len = n + 2;
  return in;
}

START_TEST(test_big_utf8_line_in_pieces) {
  static const size_t pieces[] = {1000, 3};
  for (int k = 0; k < 2; k++) {
    /* 1000-byte pieces over a big line, 3-byte pieces over a shorter one */
    size_t N = k == 0 ? big_size() / 4 : big_size() / 64;
    size_t len, start, plen;
    char *in = gen_utf8_line(N, &len, &start, &plen);
    rec_t r = {0};
    r.keep_data = 1;
    es_parser *p = es_parser_new(&r_callbacks, &r, 0, 0);
    ck_assert_ptr_nonnull(p);
    feed_chunked(p, in, len, pieces[k]);
    ck_assert_uint_eq(r.events, 1);
    ck_assert_str_eq(r.last_type, "\xE2\x82\xAC");
    ck_assert_uint_eq(r.last_data_len, plen);
    ck_assert(memcmp(r.last_data, in + start, plen) == 0);
    es_parser_free(p);
    free(r.last_data);
    free(in);
  }
}
END_TEST

/* ~100 MB fed in one call: many small events, then one 100 MB line. */
START_TEST(test_big_feed_at_once) {
  size_t N = big_size();
  char *in = ts_xmalloc(N + 64);
  size_t len = 0, events = 0;
  while (len + 64 < N) {
    int n = snprintf(in + len, 64, "id: %zu\ndata: event %zu\n\n", events, events);
    len += (size_t)n;
    events++;
  }
  rec_t r = {0};
  es_parser *p = es_parser_new(&r_callbacks, &r, 0, 0);
  ck_assert_ptr_nonnull(p);
  feed_ok(p, in, len);
  ck_assert_uint_eq(r.events, events);
  char want[32];
  snprintf(want, sizeof want, "%zu", events - 1);
  ck_assert_str_eq(r.last_id, want);
  /* one line of N bytes in one call */
  pattern_init();
  memcpy(in, "data:", 5);
  pattern_fill(in + 5, 0, N - 5);
  memcpy(in + N, "\n\n", 2);
  r.verify = verify_pattern;
  feed_ok(p, in, N + 2);
  ck_assert_uint_eq(r.events, events + 1);
  ck_assert_uint_eq(r.last_data_len, N - 5);
  ck_assert_uint_eq(r.verify_bad, 0);
  es_parser_free(p);
  free(in);
}
END_TEST

/* 10 MB events pass with the default limits; 17 MiB do not, and parsing
 * resumes after the next blank line. */
START_TEST(test_default_limits) {
  size_t M = (size_t)10 << 20;
  char *in = ts_xmalloc(M + ((size_t)8 << 20));
  rec_t r = {0};
  r.verify = verify_pattern;
  es_parser *p = es_parser_new(&r_callbacks, &r, EVENTSOURCE_DEFAULT_MAX_LINE,
                               EVENTSOURCE_DEFAULT_MAX_EVENT);
  ck_assert_ptr_nonnull(p);
  /* one line */
  pattern_init();
  memcpy(in, "data: ", 6);
  pattern_fill(in + 6, 0, M);
  memcpy(in + 6 + M, "\n\n", 2);
  feed_chunked(p, in, M + 8, 65536);
  ck_assert_uint_eq(r.errors, 0);
  ck_assert_uint_eq(r.events, 1);
  ck_assert_uint_eq(r.last_data_len, M);
  ck_assert_uint_eq(r.verify_bad, 0);
  /* ten lines of 1 MiB: data joined with LF */
  r.verify = NULL;
  size_t L = (size_t)1 << 20, len = 0;
  for (int k = 0; k < 10; k++) {
    memcpy(in + len, "data:", 5);
    memset(in + len + 5, 'a' + k, L);
    in[len + 5 + L] = '\n';
    len += L + 6;
  }
  in[len++] = '\n';
  feed_chunked(p, in, len, 100000);
  ck_assert_uint_eq(r.errors, 0);
  ck_assert_uint_eq(r.events, 2);
  ck_assert_uint_eq(r.last_data_len, 10 * L + 9);
  /* 17 MiB: over both limits */
  size_t B = (size_t)17 << 20;
  memcpy(in, "data: ", 6);
  memset(in + 6, 'z', B);
  memcpy(in + 6 + B, "\n\ndata: ok\n\n", 12);
  feed_chunked(p, in, B + 18, 65536);
  ck_assert_uint_eq(r.errors, 1);
  ck_assert_uint_eq(r.events, 3);
  ck_assert_uint_eq(r.last_data_len, 2);
  es_parser_free(p);
  free(in);
}
END_TEST

/* While skipping after a limit, nothing is stored: with allocation failing,
 * a huge over-limit line and a long over-limit event still parse. */
START_TEST(test_limit_skip_does_not_buffer) {
  size_t ML = 4096, ME = 8000;
  rec_t r = {0};
  es_parser *p = es_parser_new(&r_callbacks, &r, ML, ME);
  ck_assert_ptr_nonnull(p);
  /* warm every buffer to its limit */
  char *line = ts_xmalloc(ML + 1);
  ts_sb_t w = {0};
  for (int round = 0; round < 4; round++) {
    w.len = 0;
    memset(line, 'd', ML);
    ts_sb_puts(&w, "data: ");
    ts_sb_put(&w, line, ML - 6);
    ts_sb_puts(&w, "\ndata: ");
    ts_sb_put(&w, line, ME - (ML - 6) - 1);
    ts_sb_puts(&w, "\nevent: ");
    ts_sb_put(&w, line, ML - 7);
    ts_sb_puts(&w, "\n: ");
    ts_sb_put(&w, line, ML - 2);
    ts_sb_puts(&w, "\nid: ");
    ts_sb_put(&w, line, ML - 4);
    ts_sb_puts(&w, "\n\n");
    feed_ok(p, w.p, w.len);
  }
  ck_assert_uint_eq(r.errors, 0);
  ck_assert_uint_eq(r.events, 4);
  ck_assert_uint_eq(r.last_data_len, ME);

  es_alloc_fail_after(0);
  /* a line far over max_line, in 64 KiB pieces */
  size_t N = big_size() / 2;
  char *big = ts_xmalloc(65536);
  memset(big, 'x', 65536);
  feed_str(p, "data: ");
  for (size_t off = 0; off < N; off += 65536)
    feed_ok(p, big, 65536);
  feed_str(p, "\ndata: more\n: comment\nretry: 5\nid: 9\n\n");
  ck_assert_uint_eq(r.errors, 1);
  feed_str(p, "data: ok\n\n");
  ck_assert_uint_eq(r.events, 5);
  ck_assert_uint_eq(r.comments, 4); /* only the warm-up's */
  ck_assert_uint_eq(r.retries, 0);
  ck_assert_uint_eq(r.last_data_len, 2);
  /* an event over max_event made of lines under max_line */
  for (int i = 0; i < 2000; i++) {
    feed_str(p, "data: ");
    feed_ok(p, big, 3000);
    feed_str(p, "\r\n");
  }
  feed_str(p, "\r\ndata: ok2\r\n\r\n");
  ck_assert_uint_eq(r.errors, 2);
  ck_assert_uint_eq(r.events, 6);
  ck_assert_uint_eq(r.last_data_len, 3);
  ck_assert_uint_eq(es_alloc_failures(), 0);
  es_alloc_fail_reset();
  es_parser_free(p);
  free(big);
  free(line);
  free(w.p);
}
END_TEST

/* A lone CR dispatches at once, without waiting for the next byte. */
START_TEST(test_lone_cr_at_once) {
  rec_t r = {0};
  es_parser *p = es_parser_new(&r_callbacks, &r, 0, 0);
  ck_assert_ptr_nonnull(p);
  feed_str(p, "data: a\r\r");
  ck_assert_uint_eq(r.events, 1);
  feed_str(p, "data: b\r");
  ck_assert_uint_eq(r.events, 1);
  feed_str(p, "\r");
  ck_assert_uint_eq(r.events, 2);
  feed_str(p, "\n"); /* belongs to the CR: not a second blank line */
  feed_str(p, "data: c\r");
  feed_str(p, "\n");
  ck_assert_uint_eq(r.events, 2);
  feed_str(p, "\r");
  ck_assert_uint_eq(r.events, 3);
  feed_str(p, "retry: 7\r");
  ck_assert_uint_eq(r.retries, 1);
  ck_assert_uint_eq(r.last_retry, 7);
  feed_str(p, ":c\r");
  ck_assert_uint_eq(r.comments, 1);
  es_parser_free(p);
}
END_TEST

/* A callback returning non-zero stops the feed at once. */
START_TEST(test_stop_from_callback) {
  static const char in[] =
      ": c1\nretry: 5\ndata: a\n\n: c2\nretry: 6\ndata: b\n\n"
      "data: 0123456789abcdef\n\ndata: c\n\n";
  for (int kind = 1; kind <= 4; kind++) {
    for (size_t chunk = 1; chunk <= sizeof in; chunk = chunk * 3 + 1) {
      rec_t r = {0};
      r.stop_on = kind;
      es_parser *p = es_parser_new(&r_callbacks, &r, 16, 0);
      ck_assert_ptr_nonnull(p);
      int res = ES_PARSER_OK;
      for (size_t i = 0; i < sizeof in - 1 && res == ES_PARSER_OK; i += chunk) {
        size_t n = sizeof in - 1 - i < chunk ? sizeof in - 1 - i : chunk;
        res = es_parser_feed(p, in + i, n);
      }
      ck_assert_int_eq(res, ES_PARSER_STOPPED);
      /* exactly the callbacks up to the first of that kind */
      switch (kind) {
      case 1:
        ck_assert_uint_eq(r.events, 1);
        ck_assert_uint_eq(r.comments, 1);
        ck_assert_uint_eq(r.retries, 1);
        break;
      case 2:
        ck_assert_uint_eq(r.comments, 1);
        ck_assert_uint_eq(r.retries + r.events, 0);
        break;
      case 3:
        ck_assert_uint_eq(r.retries, 1);
        ck_assert_uint_eq(r.events, 0);
        break;
      case 4:
        ck_assert_uint_eq(r.errors, 1);
        ck_assert_uint_eq(r.events, 2);
        break;
      }
      ck_assert_uint_eq(r.errors, kind == 4);
      es_parser_reset(p);
      r.stop_on = 0;
      size_t before = r.events;
      feed_str(p, "data: z\n\n");
      ck_assert_uint_eq(r.events, before + 1);
      ck_assert_uint_eq(r.last_data_len, 1);
      es_parser_free(p);
    }
  }
}
END_TEST

/* Everything a parser allocates for, fed with allocations failing at every
 * point in turn: NOMEM (or NULL from es_parser_new), never a crash or a leak;
 * after a reset the parser works again. */
static void alloc_stream(ts_sb_t *o) {
  ts_sb_puts(o, "\xEF\xBB\xBF: hello\nid: 1\nevent: t\ndata: a\ndata: \xFF\xE2\x82\n\n");
  for (int i = 0; i < 6; i++) {
    ts_sb_puts(o, "data: ");
    for (int k = 0; k < (40 << i); k++)
      ts_sb_putc(o, (char)('a' + k % 26));
    ts_sb_puts(o, "\r\n: ");
    for (int k = 0; k < (30 << i); k++)
      ts_sb_putc(o, 'c');
    ts_sb_puts(o, "\rid: ");
    for (int k = 0; k < (20 << i); k++)
      ts_sb_putc(o, 'i');
    ts_sb_puts(o, "\nevent: ");
    for (int k = 0; k < (10 << i); k++)
      ts_sb_putc(o, 'e');
    ts_sb_puts(o, "\n\n");
  }
  ts_sb_puts(o, "data: ");
  for (int k = 0; k < 1600; k++)
    ts_sb_putc(o, 'L');
  ts_sb_puts(o, "\n\ndata: end\n\n");
}

START_TEST(test_alloc_failure) {
  ts_sb_t in = {0};
  alloc_stream(&in);
  static const size_t chunks[] = {SIZE_MAX, 1, 7, 100};
  for (size_t ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
    size_t chunk = chunks[ci];
    /* the reference run */
    rec_t ref = {0};
    es_parser *p = es_parser_new(&r_callbacks, &ref, 0, 1500);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(es_parser_set_last_event_id(p, "init\xFF", 5), 0);
    feed_chunked(p, in.p, in.len, chunk == SIZE_MAX ? in.len : chunk);
    es_parser_free(p);
    ck_assert_uint_eq(ref.events, 8);
    ck_assert_uint_eq(ref.errors, 1);
    int succeeded = 0;
    for (long n = 0; n < 10000 && !succeeded; n++) {
      rec_t r = {0};
      es_alloc_fail_after(n);
      p = es_parser_new(&r_callbacks, &r, 0, 1500);
      if (!p) {
        ck_assert_uint_gt(es_alloc_failures(), 0);
        es_alloc_fail_reset();
        continue;
      }
      int res = es_parser_set_last_event_id(p, "init\xFF", 5) ? ES_PARSER_NOMEM : ES_PARSER_OK;
      if (res != ES_PARSER_OK) {
        /* unchanged */
        size_t l;
        ck_assert_str_eq(es_parser_last_event_id(p, &l), "");
      }
      size_t step = chunk == SIZE_MAX ? in.len : chunk;
      for (size_t i = 0; i < in.len && res == ES_PARSER_OK; i += step)
        res = es_parser_feed(p, in.p + i, in.len - i < step ? in.len - i : step);
      unsigned long failures = es_alloc_failures();
      es_alloc_fail_reset();
      if (res == ES_PARSER_NOMEM) {
        ck_assert_uint_gt(failures, 0);
        /* usable again after a reset */
        es_parser_reset(p);
        size_t before = r.events;
        feed_str(p, "data: again\n\n");
        ck_assert_uint_eq(r.events, before + 1);
        ck_assert_uint_eq(r.last_data_len, 5);
      } else {
        ck_assert_int_eq(res, ES_PARSER_OK);
        if (failures == 0) {
          succeeded = 1;
          ck_assert_uint_eq(r.events, ref.events);
          ck_assert_uint_eq(r.comments, ref.comments);
          ck_assert_uint_eq(r.errors, ref.errors);
          ck_assert_uint_eq(r.sum, ref.sum);
          ck_assert_str_eq(r.last_id, ref.last_id);
        }
      }
      es_parser_free(p);
    }
    ck_assert_msg(succeeded, "never succeeded");
  }
  free(in.p);
}
END_TEST

/* Reset and finish: partial line, incomplete event and uncommitted id go;
 * the committed id stays; BOM skipping and the decoder start over. */
START_TEST(test_reset_finish) {
  for (int use_finish = 0; use_finish < 2; use_finish++) {
    rec_t r = {0};
    r.keep_data = 1;
    es_parser *p = es_parser_new(&r_callbacks, &r, 0, 0);
    ck_assert_ptr_nonnull(p);
    void (*end)(es_parser *) = use_finish ? es_parser_finish : es_parser_reset;
    size_t l;
    feed_str(p, "id: 1\n\nid: 2\nevent: t\ndata: x\ndata: part");
    ck_assert_str_eq(es_parser_last_event_id(p, &l), "1");
    end(p);
    ck_assert_str_eq(es_parser_last_event_id(p, &l), "1");
    ck_assert_uint_eq(l, 1);
    feed_str(p, "data: y\n\n");
    ck_assert_uint_eq(r.events, 1);
    ck_assert_str_eq(r.last_data, "y");
    ck_assert_str_eq(r.last_type, "message");
    ck_assert_str_eq(r.last_id, "1");
    /* a BOM later in the stream is data; after reset it is skipped again */
    feed_str(p, "\xEF\xBB\xBF" "data: no\n\n");
    ck_assert_uint_eq(r.events, 1);
    end(p);
    feed_str(p, "\xEF\xBB");
    feed_str(p, "\xBF" "data: yes\n\n");
    ck_assert_uint_eq(r.events, 2);
    ck_assert_str_eq(r.last_data, "yes");
    /* a partial BOM then reset: the new stream starts from scratch */
    end(p);
    feed_str(p, "\xEF\xBB");
    end(p);
    feed_str(p, "\xEF\xBB\xBF" "data: bom\n\n");
    ck_assert_uint_eq(r.events, 3);
    ck_assert_str_eq(r.last_data, "bom");
    /* the decoder: a truncated sequence is dropped with its line */
    feed_str(p, "data: \xE2\x82");
    end(p);
    feed_str(p, "data: \xAC\n\n");
    ck_assert_uint_eq(r.events, 4);
    ck_assert_str_eq(r.last_data, "\xEF\xBF\xBD");
    /* skip mode after a limit is dropped too */
    es_parser_set_limits(p, 4, 0);
    end(p);
    feed_str(p, "data: long\n");
    ck_assert_uint_eq(r.errors, 1);
    end(p);
    es_parser_set_limits(p, 0, 0);
    end(p);
    feed_str(p, "data: after\n\n");
    ck_assert_uint_eq(r.events, 5);
    /* set_last_event_id sets string and buffer */
    feed_str(p, "id: 5\n");
    ck_assert_int_eq(es_parser_set_last_event_id(p, "set", 3), 0);
    ck_assert_str_eq(es_parser_last_event_id(p, &l), "set");
    feed_str(p, "data: z\n\n");
    ck_assert_str_eq(r.last_id, "set");
    feed_str(p, "id: 6\n");
    end(p);
    ck_assert_str_eq(es_parser_last_event_id(p, &l), "set");
    es_parser_free(p);
    free(r.last_data);
  }
}
END_TEST

/* A callback changing the last event ID: the id it was given stays valid. */
typedef struct setid_ctx {
  es_parser *p;
  int calls;
  char seen[64];
} setid_ctx_t;

static int setid_event(void *ctx, const char *type, size_t tl, const char *data,
                       size_t dl, const char *id, size_t il) {
  setid_ctx_t *c = ctx;
  (void)type, (void)tl, (void)data, (void)dl;
  char before[64];
  snprintf(before, sizeof before, "%.*s", (int)il, id);
  /* long enough to need a bigger buffer, and invalid UTF-8 once */
  static const char longid[] = "a-new-id-much-longer-than-sixty-four-bytes-"
                               "so-that-buffers-have-to-grow-for-it-xxxxxxxx";
  ck_assert_int_eq(es_parser_set_last_event_id(c->p, longid, sizeof longid - 1), 0);
  ck_assert_int_eq(es_parser_set_last_event_id(c->p, "\xFF", 1), 0);
  snprintf(c->seen, sizeof c->seen, "%.*s", (int)il, id); /* read after */
  ck_assert_str_eq(c->seen, before);
  c->calls++;
  return 0;
}

START_TEST(test_set_last_event_id_from_callback) {
  setid_ctx_t c = {NULL, 0, ""};
  es_parser_callbacks cb = {setid_event, NULL, NULL, NULL};
  c.p = es_parser_new(&cb, &c, 0, 0);
  ck_assert_ptr_nonnull(c.p);
  feed_str(c.p, "id: first\ndata: x\n\nid: second-id\ndata: y\n\ndata: z\n\n");
  ck_assert_int_eq(c.calls, 3);
  ck_assert_str_eq(c.seen, "\xEF\xBF\xBD"); /* the third event saw the callback's id */
  size_t l;
  ck_assert_str_eq(es_parser_last_event_id(c.p, &l), "\xEF\xBF\xBD");
  es_parser_free(c.p);
}
END_TEST

START_TEST(test_set_last_event_id) {
  rec_t r = {0};
  es_parser *p = es_parser_new(&r_callbacks, &r, 0, 0);
  ck_assert_ptr_nonnull(p);
  size_t l = 99;
  ck_assert_str_eq(es_parser_last_event_id(p, &l), "");
  ck_assert_uint_eq(l, 0);
  ck_assert_str_eq(es_parser_last_event_id(p, NULL), "");
  ck_assert_int_eq(es_parser_set_last_event_id(p, "abc", 3), 0);
  ck_assert_str_eq(es_parser_last_event_id(p, &l), "abc");
  /* U+0000 is refused, the id is unchanged */
  ck_assert_int_eq(es_parser_set_last_event_id(p, "a\0b", 3), -1);
  ck_assert_str_eq(es_parser_last_event_id(p, &l), "abc");
  /* invalid UTF-8 is decoded with replacements */
  ck_assert_int_eq(es_parser_set_last_event_id(p, "x\xC0\xAFy", 4), 0);
  ck_assert_str_eq(es_parser_last_event_id(p, &l), "x\xEF\xBF\xBD\xEF\xBF\xBDy");
  ck_assert_uint_eq(l, 8);
  /* even in the middle of a line with a pending partial character */
  feed_str(p, "data: \xE2\x82");
  ck_assert_int_eq(es_parser_set_last_event_id(p, "\xFF", 1), 0);
  feed_str(p, "\xAC\n\n");
  ck_assert_uint_eq(r.events, 1);
  ck_assert_str_eq(r.last_id, "\xEF\xBF\xBD");
  ck_assert_uint_eq(r.last_data_len, 3); /* the euro sign, whole */
  ck_assert_int_eq(es_parser_set_last_event_id(p, "", 0), 0);
  ck_assert_str_eq(es_parser_last_event_id(p, &l), "");
  ck_assert_uint_eq(l, 0);
  ck_assert_int_eq(es_parser_set_last_event_id(p, NULL, 0), 0);
  /* out of memory: -1 and unchanged */
  ck_assert_int_eq(es_parser_set_last_event_id(p, "keep", 4), 0);
  char longid[300];
  memset(longid, 'q', sizeof longid);
  es_alloc_fail_after(0);
  ck_assert_int_eq(es_parser_set_last_event_id(p, longid, sizeof longid), -1);
  ck_assert_int_eq(es_parser_set_last_event_id(p, "\xFF", 1), -1);
  es_alloc_fail_reset();
  ck_assert_str_eq(es_parser_last_event_id(p, &l), "keep");
  es_parser_free(p);
}
END_TEST

/* Limits changed with es_parser_set_limits apply from the next line (max_line)
 * and the next event (max_event). */
START_TEST(test_set_limits) {
  rec_t r = {0};
  es_parser *p = es_parser_new(&r_callbacks, &r, 0, 0);
  ck_assert_ptr_nonnull(p);
  feed_str(p, "data: 0123456789");
  es_parser_set_limits(p, 8, 0);
  feed_str(p, "abcdef\n\n");
  ck_assert_uint_eq(r.errors, 0);
  ck_assert_uint_eq(r.events, 1);
  feed_str(p, "data: 0123456789\n\n");
  ck_assert_uint_eq(r.errors, 1);
  ck_assert_uint_eq(r.events, 1);
  es_parser_set_limits(p, 0, 0);
  feed_str(p, "data: 0123456789\n");
  es_parser_set_limits(p, 0, 5);
  feed_str(p, "data: x\n\n"); /* the event began under no limit */
  ck_assert_uint_eq(r.events, 2);
  ck_assert_uint_eq(r.last_data_len, 12);
  feed_str(p, "data: 0123456789\n\n");
  ck_assert_uint_eq(r.errors, 2);
  feed_str(p, "data: 12345\n\n");
  ck_assert_uint_eq(r.events, 3);
  ck_assert_uint_eq(r.errors, 2);
  es_parser_free(p);
}
END_TEST

/* Once its buffers are warm, a parser does not allocate per event. */
START_TEST(test_no_alloc_when_warm) {
  ts_sb_t json = {0};
  ts_sb_puts(&json, "{\"k\": [");
  for (int i = 0; i < 40; i++)
    ts_sb_printf(&json, "%d, ", i);
  ts_sb_puts(&json, "0], \"s\": \"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"}");
  ts_sb_t ev = {0};
  ts_sb_puts(&ev, "event: update\nid: 1234567\n: keep-alive\nretry: 3000\ndata: ");
  ts_sb_put(&ev, json.p, json.len);
  ts_sb_puts(&ev, "\ndata: second line\n\n");
  ts_sb_t many = {0};
  size_t count = small_scale() ? 2000 : 10000;
  for (size_t i = 0; i < count; i++)
    ts_sb_put(&many, ev.p, ev.len);
  rec_t r = {0};
  es_parser *p = es_parser_new(&r_callbacks, &r, EVENTSOURCE_DEFAULT_MAX_LINE,
                               EVENTSOURCE_DEFAULT_MAX_EVENT);
  ck_assert_ptr_nonnull(p);
  for (int i = 0; i < 4; i++)
    feed_ok(p, ev.p, ev.len);
  ck_assert_uint_eq(r.events, 4);
  size_t want = r.events;
  es_alloc_fail_after(0);
  static const size_t chunks[] = {1, 2, 7, 64, 4096, SIZE_MAX};
  for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
    size_t step = chunks[c] == SIZE_MAX ? many.len : chunks[c];
    size_t n = chunks[c] < 7 ? many.len / 10 / ev.len * ev.len : many.len;
    feed_chunked(p, many.p, n, step);
    want += n / ev.len;
    ck_assert_uint_eq(r.events, want);
  }
  ck_assert_uint_eq(es_alloc_failures(), 0);
  es_alloc_fail_reset();
  ck_assert_uint_eq(r.errors, 0);
  ck_assert_uint_eq(r.verify_bad, 0);
  ck_assert_uint_eq(r.last_data_len, json.len + 12);
  ck_assert_str_eq(r.last_type, "update");
  ck_assert_str_eq(r.last_id, "1234567");
  es_parser_free(p);
  free(ev.p);
  free(json.p);
  free(many.p);
}
END_TEST

/* NULL callbacks, empty feeds. */
START_TEST(test_null_callbacks) {
  es_parser *p = es_parser_new(NULL, NULL, 8, 4);
  ck_assert_ptr_nonnull(p);
  static const char in[] =
      "\xEF\xBB\xBF: c\nretry: 1\nid: 7\ndata: a\n\ndata: toolong\n\nevent: x\ndata: b\n\n";
  ck_assert_int_eq(es_parser_feed(p, NULL, 0), ES_PARSER_OK);
  ck_assert_int_eq(es_parser_feed(p, in, sizeof in - 1), ES_PARSER_OK);
  ck_assert_int_eq(es_parser_feed(p, in, 0), ES_PARSER_OK);
  size_t l;
  ck_assert_str_eq(es_parser_last_event_id(p, &l), "7");
  es_parser_finish(p);
  es_parser_free(p);
  es_parser_free(NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *parser_suite(void) {
  Suite *s = suite_create("parser");
  int slow = small_scale();

  TCase *tv = tcase_create("vectors");
  tcase_set_timeout(tv, 120);
  tcase_add_test(tv, test_vectors_loaded);
  tcase_add_test(tv, test_reference_on_vectors);
  tcase_add_loop_test(tv, test_vector, 0, (int)g_nvectors);
  suite_add_tcase(s, tv);

  TCase *tr = tcase_create("reference");
  tcase_set_timeout(tr, 120);
  tcase_add_loop_test(tr, test_random_vs_reference, 0, 4);
  suite_add_tcase(s, tr);

  TCase *tb = tcase_create("big");
  tcase_set_timeout(tb, slow ? 300 : 60);
  tcase_add_test(tb, test_big_line_in_1k_pieces);
  tcase_add_test(tb, test_big_utf8_line_in_pieces);
  tcase_add_test(tb, test_big_feed_at_once);
  tcase_add_test(tb, test_default_limits);
  tcase_add_test(tb, test_limit_skip_does_not_buffer);
  suite_add_tcase(s, tb);

  TCase *tc = tcase_create("api");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_lone_cr_at_once);
  tcase_add_test(tc, test_stop_from_callback);
  tcase_add_test(tc, test_alloc_failure);
  tcase_add_test(tc, test_reset_finish);
  tcase_add_test(tc, test_set_last_event_id);
  tcase_add_test(tc, test_set_last_event_id_from_callback);
  tcase_add_test(tc, test_set_limits);
  tcase_add_test(tc, test_no_alloc_when_warm);
  tcase_add_test(tc, test_null_callbacks);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  load_vectors();
  SRunner *sr = srunner_create(parser_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  free_vectors();
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
