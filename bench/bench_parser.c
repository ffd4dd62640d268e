/*
 * bench_parser.c - throughput of the text/event-stream parser (lib/parser.c).
 *
 *   bench_parser                     every workload at its default size, best
 *                                    of 5 runs, each next to a memcpy baseline
 *   bench_parser WORKLOAD [SIZE]     one workload (SIZE in bytes, or with a
 *                                    K/M/G suffix)
 *   bench_parser WORKLOAD SIZE --once
 *                                    one run, no baseline: for callgrind, e.g.
 *     valgrind --tool=callgrind --toggle-collect=feed_all bench_parser small 8M --once
 *                                    counts only the parser's work (see
 *                                    `make bench-parser-callgrind`).
 *
 * Workloads:
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

int main(int argc, char **argv) {
  size_t nw = sizeof workloads / sizeof workloads[0];
  if (argc == 1) {
    printf("parser throughput, best of 5 (ratio = parser time / memcpy time)\n");
    for (size_t i = 0; i < nw; i++)
      bench(&workloads[i], workloads[i].default_size, 0, 5);
    return 0;
  }
  const workload_t *w = NULL;
  for (size_t i = 0; i < nw; i++)
    if (strcmp(argv[1], workloads[i].name) == 0)
      w = &workloads[i];
  if (!w) {
    fprintf(stderr,
            "usage: %s [small|small-1k|bigline|bigline-warm|utf8|crlf [SIZE[K|M|G]] [--once]]\n",
            argv[0]);
    return 2;
  }
  size_t size = argc > 2 ? parse_size(argv[2]) : w->default_size;
  int once = argc > 3 && strcmp(argv[3], "--once") == 0;
  bench(w, size, once, 5);
  return 0;
}
