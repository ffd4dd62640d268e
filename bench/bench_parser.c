/*
 * bench_parser.c - throughput of the text/event-stream parser (lib/parser.c).
 *
 *   bench_parser [MB]                the workload table below (each next to a
 *                                    memcpy baseline), then the five shapes
 *                                    of bench/gen.h, MB (10^6 bytes; default
 *                                    $ES_BENCH_MB, else 100) each, next to
 *                                    the naive parser (bench/naive.h)
 *   bench_parser --shapes [MB]       the shapes only
 *   bench_parser WORKLOAD [SIZE]     one workload (SIZE in bytes, or with a
 *                                    K/M/G suffix)
 *   bench_parser WORKLOAD SIZE --once
 *                                    one run, no baseline: for callgrind, e.g.
 *     valgrind --tool=callgrind --toggle-collect=feed_all bench_parser small 8M --once
 *                                    counts only the parser's work (see
 *                                    `make bench-parser-callgrind`).
 *   bench_parser --cg SHAPE SIZE es|naive
 *                                    one run of a shape through
 *                                    libeventsource's parser (collect
 *                                    feed_all) or the naive one (collect
 *                                    naive_feed_all): `make bench-callgrind`
 *   bench_parser --write SHAPE FILE [SIZE]
 *                                    writes a shape's bytes (default 100 MB)
 *                                    to FILE and prints "bytes events data"
 *   bench_parser --measure FILE [REPS]
 *                                    libeventsource's parser on FILE's bytes
 *                                    in 64 KiB pieces, best of REPS (3):
 *                                    prints "mbps events data" (make
 *                                    bench-node compares npm's parser to it)
 *
 * Shapes (bench/gen.h: small, crlf, llm, multiline, large), fed in 64 KiB
 * pieces: libeventsource's parser, the naive parser and, for large, a
 * vectorised CR/LF scan of the same bytes, run in turn (A B A B ...), best of
 * $ES_BENCH_REPS (5) each, and printed as one line per figure:
 *   bench: name=parser_SHAPE value=<MB/s> baseline=<naive MB/s> ratio=<value/baseline>
 *   bench: name=parser_large_vs_scan value=<MB/s> baseline=<scan MB/s> ratio=...
 * Both parsers must count the events, data bytes and a checksum of what they
 * deliver that the generator expects: otherwise it exits 1.
 *
 * Workloads (the table):
 *   small     many small events ("id:", "event:", a ~90-byte JSON data: line,
 *             a blank line), fed in 16 KiB chunks (a typical network read)
 *   small-1k  the same stream fed in 1 KiB chunks
 *   bigline   one data: line of SIZE bytes (default 100 MB) fed in 1 KiB
 *             chunks, the parser built without limits (a new parser each
 *             run: the figure includes the first touch of the pages of its
 *             growing data buffer)
 *   bigline-warm  the same through a parser that already holds a buffer
 *             that big (its first, untimed run warmed it)
 *   utf8      events whose data is multi-byte UTF-8 text (2, 3 and 4-byte
 *             characters), 16 KiB chunks
 *   crlf      the small stream with CRLF line endings, 16 KiB chunks
 *
 * For each workload it prints MB/s (10^6 bytes) and ns/byte for the parser
 * and for the baseline: memcpy of the same bytes, in the same chunks, into a
 * buffer of the same size. The ratio is parser time / memcpy time.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gen.h"
#include "naive.h"
#include "parser.h"

typedef struct sink {
  uint64_t events, bytes, check;
} sink_t;

static int on_event(void *ctx, const char *type, size_t tl, const char *data,
                    size_t dl, const char *id, size_t il) {
  sink_t *s = ctx;
  s->events++;
  s->bytes += dl;
  s->check += (unsigned char)type[0] + tl + il + (dl ? (unsigned char)data[dl - 1] : 0u) +
              (il ? (unsigned char)id[0] : 0u);
  return 0;
}

static int on_retry(void *ctx, uint64_t ms) {
  ((sink_t *)ctx)->check += ms;
  return 0;
}

static int on_comment(void *ctx, const char *t, size_t n) {
  ((sink_t *)ctx)->check += n + (n ? (unsigned char)t[0] : 0u);
  return 0;
}

static int on_error(void *ctx, eventsource_error_t code, const char *msg) {
  (void)msg;
  ((sink_t *)ctx)->check += (uint64_t)code;
  return 0;
}

static const es_parser_callbacks callbacks = {on_event, on_retry, on_comment,
                                              on_error};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct buf {
  char *p;
  size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *s, size_t n) {
  if (b->len + n > b->cap) {
    size_t c = b->cap ? b->cap : 1 << 20;
    while (c < b->len + n)
      c *= 2;
    b->p = realloc(b->p, c);
    if (!b->p) {
      fprintf(stderr, "out of memory\n");
      exit(1);
    }
    b->cap = c;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

/* The small-event stream, about size bytes. */
static void gen_small(buf_t *b, size_t size, int crlf) {
  const char *nl = crlf ? "\r\n" : "\n";
  char tmp[256];
  for (unsigned long i = 0; b->len < size; i++) {
    int n = snprintf(tmp, sizeof tmp,
                     "id: %lu%sevent: tick%sdata: {\"seq\": %lu, \"sym\": \"ABCD\", "
                     "\"price\": %lu.%02lu, \"qty\": %lu, \"side\": \"buy\"}%s%s",
                     i, nl, nl, i, 100 + i % 900, i % 100, 1 + i % 1000, nl, nl);
    put(b, tmp, (size_t)n);
  }
}

/* One data: line of size bytes. */
static void gen_bigline(buf_t *b, size_t size) {
  puts_(b, "data: ");
  static const char A[] = "abcdefghijklmnopqrstuvwxyz0123456789{}[]\":,";
  char blk[4096];
  for (size_t i = 0; i < sizeof blk; i++)
    blk[i] = A[(i * 7) % (sizeof A - 1)];
  for (size_t left = size; left;) {
    size_t n = left < sizeof blk ? left : sizeof blk;
    put(b, blk, n);
    left -= n;
  }
  puts_(b, "\n\n");
}

/* Events of multi-byte text. */
static void gen_utf8(buf_t *b, size_t size) {
  static const char *words[] = {
      "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", /* Cyrillic */
      "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C",  /* CJK */
      "\xF0\x9F\x98\x80\xF0\x9F\x9A\x80",                  /* emoji */
      "caf\xC3\xA9", "na\xC3\xAFve", ("\xE2\x82\xAC" "42"),
      "\xCE\xB1\xCE\xB2\xCE\xB3", "\xE3\x81\x82\xE3\x82\x8A\xE3\x81\x8C\xE3\x81\xA8\xE3\x81\x86"};
  for (unsigned long i = 0; b->len < size; i++) {
    puts_(b, "event: text\ndata: ");
    for (int w = 0; w < 60; w++) {
      puts_(b, words[(i + (unsigned long)w * 3) % 8]);
      put(b, " ", 1);
    }
    puts_(b, "\n\n");
  }
}

/* The function callgrind collects (--toggle-collect=feed_all). */
__attribute__((noinline)) int feed_all(es_parser *p, const char *s, size_t n,
                                       size_t chunk);
__attribute__((noinline)) int feed_all(es_parser *p, const char *s, size_t n,
                                       size_t chunk) {
  for (size_t i = 0; i < n; i += chunk) {
    int r = es_parser_feed(p, s + i, n - i < chunk ? n - i : chunk);
    if (r)
      return r;
  }
  es_parser_finish(p);
  return 0;
}

/* The untimed first run of a warm workload, not collected by callgrind (its
 * body differs from feed_all's so that the compiler cannot merge them). */
static volatile size_t warm_chunks;
__attribute__((noinline)) static int warm_all(es_parser *p, const char *s,
                                              size_t n, size_t chunk) {
  for (size_t i = 0; i < n; i += chunk) {
    warm_chunks++;
    int r = es_parser_feed(p, s + i, n - i < chunk ? n - i : chunk);
    if (r)
      return r;
  }
  es_parser_finish(p);
  return 0;
}

__attribute__((noinline)) static void copy_all(char *dst, const char *s,
                                               size_t n, size_t chunk) {
  for (size_t i = 0; i < n; i += chunk)
    memcpy(dst + i, s + i, n - i < chunk ? n - i : chunk);
}

typedef struct workload {
  const char *name;
  size_t default_size;
  size_t chunk;
  int kind; /* 0 small, 1 bigline, 2 utf8, 3 crlf */
  int warm; /* time a second run through the same parser */
} workload_t;

static const workload_t workloads[] = {
    {"small", 64u << 20, 16384, 0, 0},   {"small-1k", 64u << 20, 1024, 0, 0},
    {"bigline", 100u << 20, 1024, 1, 0}, {"bigline-warm", 100u << 20, 1024, 1, 1},
    {"utf8", 64u << 20, 16384, 2, 0},    {"crlf", 64u << 20, 16384, 3, 0},
};

static double run_parser(const workload_t *w, const buf_t *in, sink_t *sk) {
  es_parser *p = es_parser_new(&callbacks, sk, 0, 0);
  if (!p) {
    fprintf(stderr, "es_parser_new failed\n");
    exit(1);
  }
  int r = 0;
  if (w->warm)
    r = warm_all(p, in->p, in->len, w->chunk);
  double t0 = now();
  if (!r)
    r = feed_all(p, in->p, in->len, w->chunk);
  double t = now() - t0;
  es_parser_free(p);
  if (r) {
    fprintf(stderr, "%s: feed failed (%d)\n", w->name, r);
    exit(1);
  }
  return t;
}

static void bench(const workload_t *w, size_t size, int once, int reps) {
  buf_t in = {0};
  switch (w->kind) {
  case 0: gen_small(&in, size, 0); break;
  case 1: gen_bigline(&in, size); break;
  case 2: gen_utf8(&in, size); break;
  default: gen_small(&in, size, 1); break;
  }
  sink_t sk = {0};
  if (once) {
    double t = run_parser(w, &in, &sk);
    printf("%-12s %10zu bytes  %9.1f MB/s  %6.3f ns/byte  events %llu data %llu "
           "(check %llu)\n",
           w->name, in.len, (double)in.len / t / 1e6, t * 1e9 / (double)in.len,
           (unsigned long long)sk.events, (unsigned long long)sk.bytes,
           (unsigned long long)sk.check);
    free(in.p);
    return;
  }
  char *dst = malloc(in.len);
  if (!dst) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  memset(dst, 0, in.len); /* fault the pages in before timing */
  double best_p = 1e30, best_c = 1e30;
  for (int i = 0; i < reps; i++) {
    double t0 = now();
    copy_all(dst, in.p, in.len, w->chunk);
    double tc = now() - t0;
    if (tc < best_c)
      best_c = tc;
    sk.events = sk.bytes = 0;
    double tp = run_parser(w, &in, &sk);
    if (tp < best_p)
      best_p = tp;
  }
  if (memcmp(dst, in.p, in.len) != 0) {
    fprintf(stderr, "baseline copy differs\n");
    exit(1);
  }
  double n = (double)in.len;
  printf("%-12s %6.1f MB chunk %5zu | parser %8.1f MB/s %6.3f ns/B | memcpy %8.1f MB/s "
         "%6.3f ns/B | ratio %5.2fx | %llu events\n",
         w->name, n / 1e6, w->chunk, n / best_p / 1e6, best_p * 1e9 / n,
         n / best_c / 1e6, best_c * 1e9 / n, best_p / best_c,
         (unsigned long long)sk.events);
  free(dst);
  free(in.p);
}

static size_t parse_size(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || v <= 0) {
    fprintf(stderr, "bad size: %s\n", s);
    exit(2);
  }
  switch (*end) {
  case 'k': case 'K': v *= 1024; break;
  case 'm': case 'M': v *= 1024 * 1024; break;
  case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
  default: break;
  }
  return (size_t)v;
}

/* ---- the shapes (bench/gen.h) against the naive parser ----------------- */

/* The piece size, a variable so that the compiler does not specialise the
 * collected functions below (callgrind names them). */
size_t bench_piece = 65536;

/* What callgrind collects for the naive parser (--toggle-collect). */
__attribute__((noinline)) int naive_feed_all(naive_parser *p, const char *s, size_t n,
                                             size_t chunk);
__attribute__((noinline)) int naive_feed_all(naive_parser *p, const char *s, size_t n,
                                             size_t chunk) {
  for (size_t i = 0; i < n; i += chunk) {
    int r = naive_feed(p, s + i, n - i < chunk ? n - i : chunk);
    if (r)
      return r;
  }
  naive_finish(p);
  return 0;
}

__attribute__((noinline)) size_t scan_all(const char *s, size_t n, size_t chunk);
__attribute__((noinline)) size_t scan_all(const char *s, size_t n, size_t chunk) {
  size_t c = 0;
  for (size_t i = 0; i < n; i += chunk)
    c += scan_crlf(s + i, n - i < chunk ? n - i : chunk);
  return c;
}

static double time_es(const char *s, size_t n, sink_t *sk) {
  memset(sk, 0, sizeof *sk);
  es_parser *p = es_parser_new(&callbacks, sk, 0, 0);
  if (!p) {
    fprintf(stderr, "es_parser_new failed\n");
    exit(1);
  }
  double t0 = now();
  int r = feed_all(p, s, n, bench_piece);
  double t = now() - t0;
  es_parser_free(p);
  if (r) {
    fprintf(stderr, "es_parser_feed failed (%d)\n", r);
    exit(1);
  }
  return t;
}

static double time_naive(const char *s, size_t n, sink_t *sk) {
  memset(sk, 0, sizeof *sk);
  naive_parser p;
  naive_init(&p, on_event, sk);
  double t0 = now();
  int r = naive_feed_all(&p, s, n, bench_piece);
  double t = now() - t0;
  naive_free(&p);
  if (r) {
    fprintf(stderr, "naive_feed failed (%d)\n", r);
    exit(1);
  }
  return t;
}

static double time_scan(const char *s, size_t n, size_t *count) {
  double t0 = now();
  *count = scan_all(s, n, bench_piece);
  return now() - t0;
}

static void make_shape(int shape, size_t size, gen_stream *g) {
  if (gen_make((gen_shape)shape, size, g) != 0) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  if (!g->events) {
    fprintf(stderr, "%s: %zu bytes hold no event\n", gen_shape_name(shape), size);
    exit(2);
  }
}

/* Does a run's sink hold what the generator wrote (and what the other
 * parser saw)? */
static int sink_ok(const char *who, const char *shape, const gen_stream *g, const sink_t *sk,
                   const sink_t *ref) {
  if (sk->events == g->events && sk->bytes == g->data_bytes && (!ref || sk->check == ref->check))
    return 1;
  fprintf(stderr,
          "%s on %s: %llu events, %llu data bytes, check %llu; expected %llu events, "
          "%llu data bytes, check %llu\n",
          who, shape, (unsigned long long)sk->events, (unsigned long long)sk->bytes,
          (unsigned long long)sk->check, (unsigned long long)g->events,
          (unsigned long long)g->data_bytes, ref ? (unsigned long long)ref->check : 0ull);
  return 0;
}

static void line_out(const char *name, double n, double t, double tb) {
  printf("bench: name=%s value=%.1f baseline=%.1f ratio=%.2f\n", name, n / t / 1e6,
         n / tb / 1e6, tb / t);
  fflush(stdout);
}

static size_t crlf_count(const gen_stream *g) {
  size_t c = 0;
  for (size_t i = 0; i < g->len; i++)
    c += g->p[i] == '\r' || g->p[i] == '\n';
  return c;
}

/* Returns 0, or 1 when a parser miscounted. */
static int bench_shapes(size_t size, int reps) {
  printf("# shapes: %.0f MB each in %zu-byte pieces, best of %d, run in turn; value "
         "libeventsource MB/s, baseline the naive parser's (large_vs_scan: a CR/LF scan's)\n",
         (double)size / 1e6, bench_piece, reps);
  int bad = 0;
  for (int s = 0; s < GEN_NSHAPES; s++) {
    gen_stream g;
    make_shape(s, size, &g);
    int large = s == GEN_LARGE;
    size_t want_scan = large ? crlf_count(&g) : 0;
    sink_t ref = {0}, sk;
    double be = 1e30, bn = 1e30, bs = 1e30;
    for (int r = 0; r < reps; r++) {
      double t = time_es(g.p, g.len, &sk);
      be = t < be ? t : be;
      if (!sink_ok("libeventsource", gen_shape_name(s), &g, &sk, r ? &ref : NULL))
        bad = 1;
      ref = sk;
      t = time_naive(g.p, g.len, &sk);
      bn = t < bn ? t : bn;
      if (!sink_ok("naive", gen_shape_name(s), &g, &sk, &ref))
        bad = 1;
      if (large) {
        size_t c;
        t = time_scan(g.p, g.len, &c);
        bs = t < bs ? t : bs;
        if (c != want_scan) {
          fprintf(stderr, "scan_crlf on %s: %zu, expected %zu\n", gen_shape_name(s), c,
                  want_scan);
          bad = 1;
        }
      }
    }
    char name[64];
    snprintf(name, sizeof name, "parser_%s", gen_shape_name(s));
    line_out(name, (double)g.len, be, bn);
    if (large)
      line_out("parser_large_vs_scan", (double)g.len, be, bs);
    gen_free(&g);
  }
  if (bad)
    fprintf(stderr, "bench_parser: the parsers disagree\n");
  return bad;
}

static int shape_arg(const char *name) {
  int s = gen_shape_find(name);
  if (s < 0) {
    fprintf(stderr, "unknown shape %s (small, crlf, llm, multiline, large)\n", name);
    exit(2);
  }
  return s;
}

/* --cg SHAPE SIZE es|naive: one run for callgrind. */
static int cg_once(const char *shape, size_t size, const char *which) {
  int s = shape_arg(shape);
  int naive = strcmp(which, "naive") == 0;
  if (!naive && strcmp(which, "es") != 0) {
    fprintf(stderr, "--cg: es or naive, not %s\n", which);
    return 2;
  }
  gen_stream g;
  make_shape(s, size, &g);
  sink_t sk;
  if (naive)
    time_naive(g.p, g.len, &sk);
  else
    time_es(g.p, g.len, &sk);
  int ok = sink_ok(naive ? "naive" : "libeventsource", shape, &g, &sk, NULL);
  printf("%s %zu bytes %llu events (%s)\n", shape, g.len, (unsigned long long)sk.events,
         which);
  gen_free(&g);
  return ok ? 0 : 1;
}

/* --write SHAPE FILE [SIZE] */
static int write_shape(const char *shape, const char *file, size_t size) {
  int s = shape_arg(shape);
  gen_stream g;
  make_shape(s, size, &g);
  FILE *f = fopen(file, "wb");
  if (!f || fwrite(g.p, 1, g.len, f) != g.len || fclose(f) != 0) {
    perror(file);
    return 1;
  }
  printf("%zu %llu %llu\n", g.len, (unsigned long long)g.events,
         (unsigned long long)g.data_bytes);
  gen_free(&g);
  return 0;
}

/* --measure FILE [REPS] */
static int measure_file(const char *file, int reps) {
  FILE *f = fopen(file, "rb");
  if (!f) {
    perror(file);
    return 1;
  }
  buf_t in = {0};
  char tmp[65536];
  size_t n;
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
    put(&in, tmp, n);
  fclose(f);
  sink_t sk;
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t = time_es(in.p, in.len, &sk);
    best = t < best ? t : best;
  }
  printf("%.1f %llu %llu\n", (double)in.len / best / 1e6, (unsigned long long)sk.events,
         (unsigned long long)sk.bytes);
  free(in.p);
  return 0;
}

static int is_number(const char *s) {
  if (!*s)
    return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return 0;
  return 1;
}

static size_t env_mb(void) {
  const char *e = getenv("ES_BENCH_MB");
  if (!e || !*e)
    return 100;
  if (!is_number(e) || atol(e) <= 0) {
    fprintf(stderr, "ES_BENCH_MB=%s: a number of MB\n", e);
    exit(2);
  }
  return (size_t)atol(e);
}

static int env_reps(void) {
  const char *e = getenv("ES_BENCH_REPS");
  int r = e && *e ? atoi(e) : 5;
  return r > 0 ? r : 5;
}

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [MB]\n"
          "       %s --shapes [MB]\n"
          "       %s small|small-1k|bigline|bigline-warm|utf8|crlf [SIZE[K|M|G]] [--once]\n"
          "       %s --cg SHAPE SIZE es|naive\n"
          "       %s --write SHAPE FILE [SIZE]\n"
          "       %s --measure FILE [REPS]\n",
          argv0, argv0, argv0, argv0, argv0, argv0);
}

int main(int argc, char **argv) {
  size_t nw = sizeof workloads / sizeof workloads[0];
  if (argc == 1 || (argc == 2 && is_number(argv[1]))) {
    size_t mb = argc == 2 ? (size_t)atol(argv[1]) : env_mb();
    if (!mb) {
      usage(argv[0]);
      return 2;
    }
    int sized = argc == 2 || getenv("ES_BENCH_MB");
    printf("parser throughput, best of 5 (ratio = parser time / memcpy time)\n");
    for (size_t i = 0; i < nw; i++)
      bench(&workloads[i], sized ? mb * 1000000 : workloads[i].default_size, 0, 5);
    return bench_shapes(mb * 1000000, env_reps());
  }
  if (strcmp(argv[1], "--shapes") == 0) {
    size_t mb = argc > 2 && is_number(argv[2]) ? (size_t)atol(argv[2]) : env_mb();
    if (!mb || argc > 3) {
      usage(argv[0]);
      return 2;
    }
    return bench_shapes(mb * 1000000, env_reps());
  }
  if (strcmp(argv[1], "--cg") == 0) {
    if (argc != 5) {
      usage(argv[0]);
      return 2;
    }
    return cg_once(argv[2], parse_size(argv[3]), argv[4]);
  }
  if (strcmp(argv[1], "--write") == 0) {
    if (argc < 4 || argc > 5) {
      usage(argv[0]);
      return 2;
    }
    return write_shape(argv[2], argv[3], argc > 4 ? parse_size(argv[4]) : env_mb() * 1000000);
  }
  if (strcmp(argv[1], "--measure") == 0) {
    if (argc < 3 || argc > 4) {
      usage(argv[0]);
      return 2;
    }
    return measure_file(argv[2], argc > 3 && atoi(argv[3]) > 0 ? atoi(argv[3]) : 3);
  }
  const workload_t *w = NULL;
  for (size_t i = 0; i < nw; i++)
    if (strcmp(argv[1], workloads[i].name) == 0)
      w = &workloads[i];
  if (!w) {
    usage(argv[0]);
    return 2;
  }
  size_t size = argc > 2 ? parse_size(argv[2]) : w->default_size;
  int once = argc > 3 && strcmp(argv[3], "--once") == 0;
  bench(w, size, once, 5);
  return 0;
}
