/*
 * bench_e2e.c - the client end to end over loopback, next to bare libcurl
 * in the same run (issue 12): throughput, delivery latency, allocations
 * per event.
 *
 *   bench_e2e [MB]             throughput and latency (the default run);
 *                              MB per stream (default 256; ES_BENCH_MB too:
 *                              ES_BENCH_MB=1000 gives the 1 GB figures)
 *   bench_e2e throughput [MB]  throughput only
 *   bench_e2e latency          latency only
 *   bench_e2e bufsize [MB]     libcurl's receive buffer (CURLOPT_BUFFERSIZE,
 *                              16 KiB by default) at 16, 64 and 128 KiB, set
 *                              through the curl hook, on small and large
 *
 * The server is bench/e2e_streams.c in a child process (one core each on a
 * 2-core machine). Three clients read the same streams (shapes small, llm
 * and large, see e2e_streams.h):
 *   bare    a libcurl easy handle whose write callback only counts bytes
 *           (the baseline of every throughput figure);
 *   naive   libcurl and a minimal parser (memchr per line, LF only, no
 *           UTF-8, no BOM, no retry:): what C without the spec costs;
 *   client  libeventsource through its public API: eventsource_new, a
 *           listener for the shape's type that counts events and data
 *           bytes, an "error" listener that closes the source when the
 *           stream ends, eventsource_run.
 * Every client must receive exactly the bytes (bare) or the events and data
 * bytes (naive, client) the server sent, or the program exits 1. Runs are
 * interleaved (bare naive client, bare naive client, ...: ES_BENCH_ROUNDS,
 * default 3) and each figure is the best of its rounds, so a baseline comes
 * from the same run as its figure. Each figure is one line:
 *   bench: name=e2e_small value=<client MB/s> baseline=<bare MB/s> ratio=<value/baseline>
 * for e2e_small, e2e_llm, e2e_large (64 KiB HTTP chunks) and
 * e2e_small_chunk_per_event (one HTTP chunk per event); e2e_*_naive is the
 * naive parser against the same baseline. MB is 10^6 bytes of SSE body.
 *
 * Latency: the server sends one event every 5 ms carrying its send time
 * (CLOCK_MONOTONIC ns); the delay to the listener (client) or to the naive
 * parser's dispatch (bare libcurl with a minimal parser, the baseline),
 * ES_BENCH_LAT_EVENTS events each (default 2000), in two interleaved halves:
 *   bench: name=latency_p50_us value=<client> baseline=<bare> ratio=...
 *   bench: name=latency_p99_us ...
 *
 * Allocations: es_alloc_count() (lib/alloc.h, the library's own
 * allocations; libcurl's are not counted) read by the small client's
 * listener after 1000 events and at the last event:
 *   bench: name=alloc_per_event value=<allocations per event> baseline=0 ratio=...
 * The target is 0, so the ratio is given as 1 when the value is 0 and inf
 * otherwise.
 *
 * ES_BENCH_ONLY=e2e_large runs one throughput case; ES_BENCH_VERBOSE=1
 * prints every round's figures on stderr.
 *
 * On a 2-core VM bare libcurl seems bound by the server and the loopback,
 * not by its own CPU: it reads 16 KiB at a time faster than the server
 * writes, so it waits in poll() (under strace its poll() calls take about
 * three times as long as the client's, for as many reads); its figure varies
 * between rounds (2.0 to 4.0 GB/s on the machine of the README), which is
 * why each figure is the best of its rounds. A client slower than the
 * server finds data waiting and never sleeps, so on large events it can
 * beat the baseline (ratio above 1).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "alloc.h" /* es_alloc_count(): the library's allocation counter */
#include "e2e_streams.h"
#include "eventsource.h"
#include "eventsource_curl.h"

#define WARM_EVENTS 1000
#define LAT_INTERVAL_US 5000

static e2e_period periods[E2E_NSHAPES];
static e2e_server srv;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench_e2e: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  e2e_server_stop(&srv);
  exit(1);
}

static double now_s(void) { return (double)e2e_now_ns() / 1e9; }

static void grow(char **p, size_t *cap, size_t need) {
  if (need <= *cap)
    return;
  size_t n = *cap ? *cap : 256;
  while (n < need)
    n *= 2;
  char *q = realloc(*p, n);
  if (!q)
    die("out of memory");
  *p = q;
  *cap = n;
}

/* ---- latency samples ------------------------------------------------------ */

typedef struct samples {
  uint64_t *v;
  size_t n, cap;
} samples;

static void sample_add(samples *s, uint64_t x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 1024;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (!s->v)
      die("out of memory");
  }
  s->v[s->n++] = x;
}

/* The latency of an event whose data is its send time in ns. */
static void sample_event(samples *s, const char *data, size_t len) {
  uint64_t now = e2e_now_ns(), sent = 0;
  for (size_t i = 0; i < len && data[i] >= '0' && data[i] <= '9'; i++)
    sent = sent * 10 + (uint64_t)(data[i] - '0');
  sample_add(s, now > sent ? now - sent : 0);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double percentile_us(samples *s, int pct) {
  qsort(s->v, s->n, sizeof *s->v, cmp_u64);
  return s->n ? (double)s->v[(s->n - 1) * (size_t)pct / 100] / 1e3 : 0;
}

/* ---- the naive parser ------------------------------------------------------ */

/* LF-terminated lines found with memchr; a line cut by a chunk boundary is
 * carried over; data: lines are joined with LF; event: and id: are copied
 * (truncated); a blank line counts an event that had a data: line. */
typedef struct naive {
  char *carry;
  size_t clen, ccap;
  char *data;
  size_t dlen, dcap;
  int has_data;
  char type[64];
  size_t tlen;
  char id[256];
  size_t ilen;
  uint64_t events, data_bytes;
  samples *lat; /* when set, each event's latency */
} naive;

static void naive_line(naive *n, const char *line, size_t len) {
  if (len == 0) {
    if (n->has_data) {
      n->events++;
      n->data_bytes += n->dlen;
      if (n->lat)
        sample_event(n->lat, n->data, n->dlen);
    }
    n->dlen = 0;
    n->has_data = 0;
    n->tlen = 0;
    return;
  }
  if (line[0] == ':')
    return;
  const char *colon = memchr(line, ':', len);
  size_t nl = colon ? (size_t)(colon - line) : len;
  const char *v = colon ? colon + 1 : line + len;
  size_t vl = len - (size_t)(v - line);
  if (vl && *v == ' ') {
    v++;
    vl--;
  }
  if (nl == 4 && memcmp(line, "data", 4) == 0) {
    grow(&n->data, &n->dcap, n->dlen + vl + 2);
    if (n->has_data)
      n->data[n->dlen++] = '\n';
    memcpy(n->data + n->dlen, v, vl);
    n->dlen += vl;
    n->data[n->dlen] = '\0';
    n->has_data = 1;
  } else if (nl == 5 && memcmp(line, "event", 5) == 0) {
    n->tlen = vl < sizeof n->type ? vl : sizeof n->type - 1;
    memcpy(n->type, v, n->tlen);
  } else if (nl == 2 && memcmp(line, "id", 2) == 0) {
    n->ilen = vl < sizeof n->id ? vl : sizeof n->id - 1;
    memcpy(n->id, v, n->ilen);
  }
}

static void naive_feed(naive *n, const char *p, size_t len) {
  const char *nl;
  if (n->clen) {
    nl = memchr(p, '\n', len);
    size_t take = nl ? (size_t)(nl - p) : len;
    grow(&n->carry, &n->ccap, n->clen + take);
    memcpy(n->carry + n->clen, p, take);
    n->clen += take;
    if (!nl)
      return;
    naive_line(n, n->carry, n->clen);
    n->clen = 0;
    len -= take + 1;
    p = nl + 1;
  }
  while ((nl = memchr(p, '\n', len))) {
    naive_line(n, p, (size_t)(nl - p));
    len -= (size_t)(nl - p) + 1;
    p = nl + 1;
  }
  if (len) {
    grow(&n->carry, &n->ccap, len);
    memcpy(n->carry, p, len);
    n->clen = len;
  }
}

static void naive_free(naive *n) {
  free(n->carry);
  free(n->data);
}

/* ---- libcurl alone ----------------------------------------------------- */

typedef struct curl_run {
  uint64_t bytes;
  naive *nv; /* NULL: count bytes only */
} curl_run;

static size_t curl_write(char *p, size_t size, size_t nmemb, void *ud) {
  curl_run *r = ud;
  r->bytes += nmemb;
  if (r->nv)
    naive_feed(r->nv, p, nmemb);
  return nmemb;
}

/* One transfer of url; seconds. */
static double run_curl(const char *url, curl_run *r, long bufsize) {
  CURL *e = curl_easy_init();
  if (!e)
    die("curl_easy_init failed");
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (bufsize)
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, bufsize);
  double t0 = now_s();
  CURLcode rc = curl_easy_perform(e);
  double t = now_s() - t0;
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  if (rc != CURLE_OK || status != 200)
    die("%s: curl: %s (status %ld)", url, curl_easy_strerror(rc), status);
  return t;
}

/* ---- the client ------------------------------------------------------------ */

typedef struct client_run {
  uint64_t events, data_bytes;
  uint64_t expected; /* the alloc reading at the last event */
  uint64_t warm_at;  /* and after this many (0: none) */
  unsigned long alloc_warm, alloc_end;
  int ended;
  eventsource_error_t end_err;
  samples *lat;
} client_run;

static void on_event(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  client_run *c = ud;
  size_t len;
  const char *data = eventsource_event_data(ev, &len);
  c->events++;
  c->data_bytes += len;
  if (c->lat)
    sample_event(c->lat, data, len);
  if (c->events == c->warm_at)
    c->alloc_warm = es_alloc_count();
  if (c->events == c->expected)
    c->alloc_end = es_alloc_count();
}

static void on_error(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  client_run *c = ud;
  if (eventsource_event_kind(ev) != EVENTSOURCE_KIND_ERROR)
    return;
  c->ended = 1;
  c->end_err = eventsource_event_error(ev);
  eventsource_close(es);
}

static CURLcode set_bufsize(eventsource_t *es, CURL *easy, void *ud) {
  return curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, *(const long *)ud);
}

static double run_client(const char *url, const char *type, client_run *c, long *bufsize) {
  eventsource_t *es = NULL;
  if (eventsource_new(&es, url) != EVENTSOURCE_OK ||
      eventsource_add_listener(es, type, on_event, c, NULL) != EVENTSOURCE_OK ||
      eventsource_add_listener(es, "error", on_error, c, NULL) != EVENTSOURCE_OK)
    die("cannot make the source");
  if (bufsize && eventsource_set_curl_callback(es, set_bufsize, bufsize) != EVENTSOURCE_OK)
    die("cannot set the curl hook");
  double t0 = now_s();
  eventsource_error_t rc = eventsource_run(es);
  double t = now_s() - t0;
  eventsource_free(es);
  if (rc != EVENTSOURCE_OK || !c->ended || c->end_err != EVENTSOURCE_ERR_EOF)
    die("%s: the client ended with %s (run: %s)", url,
        c->ended ? eventsource_error_name(c->end_err) : "no error notification",
        eventsource_error_name(rc));
  return t;
}

/* ---- throughput --------------------------------------------------------- */

typedef struct stream_case {
  const char *name;
  e2e_shape shape;
  const char *framing; /* "64k" or "event" */
} stream_case;

typedef struct figures {
  double bare, naive, client; /* best MB/s */
  double alloc_per_event;     /* the worst round's (small, 64k only) */
} figures;

static void line(const char *name, double value, double baseline) {
  printf("bench: name=%s value=%.0f baseline=%.0f ratio=%.3f\n", name, value, baseline,
         baseline > 0 ? value / baseline : 0);
  fflush(stdout);
}

static double max_d(double a, double b) { return a > b ? a : b; }

static void stream_url(char *url, size_t size, const stream_case *sc, size_t np) {
  snprintf(url, size, "http://127.0.0.1:%d/stream/%s/%s/%zu", srv.port,
           e2e_shape_name(sc->shape), sc->framing, np);
}

/* Checked runs of one client kind; MB/s. */
static double once_bare(const stream_case *sc, uint64_t mb, long bufsize) {
  const e2e_period *p = &periods[sc->shape];
  size_t np = e2e_periods_for(p, mb * 1000000u);
  char url[256];
  stream_url(url, sizeof url, sc, np);
  curl_run r = {0};
  double t = run_curl(url, &r, bufsize);
  if (r.bytes != (uint64_t)p->len * np)
    die("%s bare: %llu bytes, the server sent %llu", sc->name, (unsigned long long)r.bytes,
        (unsigned long long)p->len * np);
  return (double)r.bytes / 1e6 / t;
}

static double once_naive(const stream_case *sc, uint64_t mb) {
  const e2e_period *p = &periods[sc->shape];
  size_t np = e2e_periods_for(p, mb * 1000000u);
  char url[256];
  stream_url(url, sizeof url, sc, np);
  naive nv = {0};
  curl_run r = {.nv = &nv};
  double t = run_curl(url, &r, 0);
  if (nv.events != (uint64_t)p->events * np || nv.data_bytes != (uint64_t)p->data_bytes * np ||
      nv.clen != 0)
    die("%s naive: %llu events, the server sent %llu", sc->name,
        (unsigned long long)nv.events, (unsigned long long)p->events * np);
  naive_free(&nv);
  return (double)r.bytes / 1e6 / t;
}

static double once_client(const stream_case *sc, uint64_t mb, long *bufsize, double *alloc) {
  const e2e_period *p = &periods[sc->shape];
  size_t np = e2e_periods_for(p, mb * 1000000u);
  char url[256];
  stream_url(url, sizeof url, sc, np);
  client_run c = {.expected = (uint64_t)p->events * np};
  if (c.expected > 2 * WARM_EVENTS)
    c.warm_at = WARM_EVENTS;
  double t = run_client(url, e2e_shape_type(sc->shape), &c, bufsize);
  if (c.events != c.expected || c.data_bytes != (uint64_t)p->data_bytes * np)
    die("%s client: %llu events (%llu data bytes), the server sent %llu (%llu)", sc->name,
        (unsigned long long)c.events, (unsigned long long)c.data_bytes,
        (unsigned long long)c.expected, (unsigned long long)p->data_bytes * np);
  if (alloc && c.warm_at)
    *alloc = max_d(*alloc, (double)(c.alloc_end - c.alloc_warm) /
                               (double)(c.expected - c.warm_at));
  return (double)p->len * (double)np / 1e6 / t;
}

static int rounds(void) {
  const char *e = getenv("ES_BENCH_ROUNDS");
  int n = e ? atoi(e) : 3;
  return n > 0 ? n : 3;
}

static void throughput(uint64_t mb) {
  static const stream_case cases[] = {
      {"e2e_small", E2E_SMALL, "64k"},
      {"e2e_llm", E2E_LLM, "64k"},
      {"e2e_large", E2E_LARGE, "64k"},
      {"e2e_small_chunk_per_event", E2E_SMALL, "event"},
  };
  double alloc = 0;
  int have_alloc = 0;
  const char *only = getenv("ES_BENCH_ONLY");
  int verbose = getenv("ES_BENCH_VERBOSE") != NULL;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const stream_case *sc = &cases[i];
    if (only && strcmp(only, sc->name) != 0)
      continue;
    figures f = {0};
    for (int r = 0; r < rounds(); r++) {
      double b = once_bare(sc, mb, 0), n = once_naive(sc, mb);
      int small = sc->shape == E2E_SMALL && strcmp(sc->framing, "64k") == 0;
      double c = once_client(sc, mb, NULL, small ? &alloc : NULL);
      have_alloc |= small;
      if (verbose)
        fprintf(stderr, "bench_e2e: %s round %d: bare %.0f naive %.0f client %.0f MB/s\n",
                sc->name, r + 1, b, n, c);
      f.bare = max_d(f.bare, b);
      f.naive = max_d(f.naive, n);
      f.client = max_d(f.client, c);
    }
    line(sc->name, f.client, f.bare);
    char name[96];
    snprintf(name, sizeof name, "%s_naive", sc->name);
    line(name, f.naive, f.bare);
  }
  if (have_alloc)
    printf("bench: name=alloc_per_event value=%.4g baseline=0 ratio=%s\n", alloc,
           alloc == 0 ? "1" : "inf");
  fflush(stdout);
}

/* ---- libcurl's receive buffer ------------------------------------------ */

static void bufsizes(uint64_t mb) {
  static const stream_case cases[] = {
      {"small", E2E_SMALL, "64k"},
      {"large", E2E_LARGE, "64k"},
  };
  static const long sizes[] = {16384, 65536, 131072};
  enum { NS = sizeof sizes / sizeof sizes[0] };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const stream_case *sc = &cases[i];
    double bare[NS] = {0}, client[NS] = {0};
    for (int r = 0; r < rounds(); r++)
      for (int k = 0; k < NS; k++) {
        long bs = sizes[k];
        bare[k] = max_d(bare[k], once_bare(sc, mb, k ? bs : 0));
        client[k] = max_d(client[k], once_client(sc, mb, k ? &bs : NULL, NULL));
      }
    for (int k = 0; k < NS; k++) {
      char name[96];
      snprintf(name, sizeof name, "e2e_%s_buf%ldk", sc->name, sizes[k] / 1024);
      line(name, client[k], bare[0]);
      snprintf(name, sizeof name, "bare_%s_buf%ldk", sc->name, sizes[k] / 1024);
      line(name, bare[k], bare[0]);
    }
  }
}

/* ---- latency ------------------------------------------------------------ */

static void latency(void) {
  const char *e = getenv("ES_BENCH_LAT_EVENTS");
  long total = e ? atol(e) : 2000;
  if (total < 2)
    total = 2000;
  long half = total / 2;
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/latency/%ld/%d", srv.port, half,
           LAT_INTERVAL_US);
  samples cl = {0}, base = {0};
  for (int r = 0; r < 2; r++) {
    client_run c = {.lat = &cl};
    run_client(url, "message", &c, NULL);
    if (c.events != (uint64_t)half)
      die("latency client: %llu events, the server sent %ld", (unsigned long long)c.events,
          half);
    naive nv = {.lat = &base};
    curl_run cr = {.nv = &nv};
    run_curl(url, &cr, 0);
    if (nv.events != (uint64_t)half)
      die("latency bare: %llu events, the server sent %ld", (unsigned long long)nv.events,
          half);
    naive_free(&nv);
  }
  static const int pcts[] = {50, 99};
  for (size_t i = 0; i < 2; i++) {
    double v = percentile_us(&cl, pcts[i]), b = percentile_us(&base, pcts[i]);
    printf("bench: name=latency_p%d_us value=%.1f baseline=%.1f ratio=%.3f\n", pcts[i], v, b,
           b > 0 ? v / b : 0);
  }
  fflush(stdout);
  free(cl.v);
  free(base.v);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  const char *mode = "all";
  const char *env = getenv("ES_BENCH_MB");
  uint64_t mb = env ? strtoull(env, NULL, 10) : 256;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] >= '0' && argv[i][0] <= '9')
      mb = strtoull(argv[i], NULL, 10);
    else if (!strcmp(argv[i], "all") || !strcmp(argv[i], "throughput") ||
             !strcmp(argv[i], "latency") || !strcmp(argv[i], "bufsize"))
      mode = argv[i];
    else {
      fprintf(stderr, "usage: bench_e2e [all|throughput|latency|bufsize] [MB]\n");
      return 2;
    }
  }
  if (mb == 0)
    mb = 1;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    die("curl_global_init failed");
  e2e_periods_make(periods);
  for (int k = 0; k < E2E_NSHAPES; k++)
    fprintf(stderr, "bench_e2e: %s: %.1f B an event, %zu events (%zu B) a period, %llu MB a stream\n",
            e2e_shape_name((e2e_shape)k), (double)periods[k].len / (double)periods[k].events,
            periods[k].events, periods[k].len, (unsigned long long)mb);
  if (e2e_server_start(&srv, periods) != 0)
    die("cannot start the server: %s", strerror(errno));
  if (!strcmp(mode, "all") || !strcmp(mode, "throughput"))
    throughput(mb);
  if (!strcmp(mode, "bufsize"))
    bufsizes(mb);
  if (!strcmp(mode, "all") || !strcmp(mode, "latency"))
    latency();
  e2e_server_stop(&srv);
  e2e_periods_free(periods);
  curl_global_cleanup();
  return 0;
}
