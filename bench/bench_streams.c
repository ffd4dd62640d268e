/*
 * bench_streams.c - many streams on one thread: memory per idle stream,
 * events per second, time to open them all, and the cost of one event as
 * the number of open streams grows.
 *
 *   bench_streams [N [BUFSIZE]]     N streams (default 1000); BUFSIZE sets
 *                                   libcurl's receive buffer (CURLOPT_BUFFERSIZE)
 *                                   through the curl hook, to see what it costs
 *
 * The server is bench/mass_server.c (one epoll thread) in a child
 * process (bench/mass_child.c), so the client's RSS is the library's alone;
 * the parent drives it over a pipe. The client is one eventsource_multi_t run with
 * eventsource_multi_poll() on the main thread.
 *
 * Measured, for the N streams:
 *   open_all_ms          from the first eventsource_multi_add() to the last
 *                        open notification;
 *   rss_per_stream_kib   (RSS with N open idle streams - RSS before) / N;
 *   events_per_s         events delivered per second while every stream
 *                        receives 100 events per round (100000 events in
 *                        all; at fewer streams, more rounds), from the
 *                        first queued to the last delivered.
 * Then, at 10, 100 and N streams, the cost of one event: client CPU per
 * event during that broadcast, and a ping-pong on one stream while all the
 * others stay open and idle (wall time per round trip and client CPU per
 * event). Work per event that grew with the number of streams would show in
 * the ping-pong figures.
 *
 * The last line is exactly:
 *   streams=N rss_per_stream_kib=N events_per_s=N open_all_ms=N
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventsource.h"
#include "eventsource_curl.h"
#include "common.h"
#include "mass_child.h"

#define PAYLOAD "data: the quick brown fox\n\n"
#define PINGS 2000
#define BROADCAST_TOTAL 100000
#define PER_ROUND 100

/* ------------------------------------------------------------------------ */
/* The client                                                               */
/* ------------------------------------------------------------------------ */

typedef struct stream {
  eventsource_t *es;
  long events;
  int open;
} stream;

static long total_events, total_opens;
static long buffer_size; /* CURLOPT_BUFFERSIZE, 0 for libcurl's default */

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  stream *st = ud;
  (void)es;
  switch (eventsource_event_kind(ev)) {
  case EVENTSOURCE_KIND_OPEN:
    st->open = 1;
    total_opens++;
    break;
  case EVENTSOURCE_KIND_MESSAGE:
    st->events++;
    total_events++;
    break;
  case EVENTSOURCE_KIND_ERROR:
    bench_die("stream error: %s", eventsource_event_message(ev));
    break;
  default:
    break;
  }
}

static CURLcode set_buffer(eventsource_t *es, CURL *easy, void *ud) {
  (void)es;
  (void)ud;
  return curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, buffer_size);
}

static void poll_until(eventsource_multi_t *m, const long *counter, long target,
                       const char *what) {
  double deadline = bench_now_s() + 120;
  while (*counter < target) {
    eventsource_error_t rc = eventsource_multi_poll(m, 1000);
    if (rc)
      bench_die("eventsource_multi_poll: %s", eventsource_strerror(rc));
    if (bench_now_s() > deadline)
      bench_die("timed out waiting for %s", what);
  }
}

/* Opens n streams with ids first..first+n-1; returns the seconds it took. */
static double open_streams(eventsource_multi_t *m, int port, stream *st, int n, int first) {
  long target = total_opens + n;
  double t0 = bench_now_s();
  for (int i = 0; i < n; i++) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/s/%d", port, first + i);
    memset(&st[i], 0, sizeof st[i]);
    if (eventsource_new(&st[i].es, url) != EVENTSOURCE_OK ||
        eventsource_add_any_listener(st[i].es, on_any, &st[i], NULL) != EVENTSOURCE_OK ||
        (buffer_size && eventsource_set_curl_callback(st[i].es, set_buffer, NULL)) ||
        eventsource_multi_add(m, st[i].es) != EVENTSOURCE_OK)
      bench_die("%s", "cannot create a stream");
  }
  poll_until(m, &total_opens, target, "the streams to open");
  return bench_now_s() - t0;
}

static void close_streams(eventsource_multi_t *m, stream *st, int n) {
  for (int i = 0; i < n; i++)
    eventsource_close(st[i].es);
  if (eventsource_multi_run(m) != EVENTSOURCE_OK)
    bench_die("%s", "eventsource_multi_run failed");
  for (int i = 0; i < n; i++)
    eventsource_free(st[i].es);
}

typedef struct cost {
  int streams;
  double bcast_cpu_ns; /* client CPU per event, all streams receiving */
  double events_per_s;
  double rtt_us;       /* one stream's ping-pong, wall time per event */
  double rtt_cpu_us;   /* client CPU per ping-pong event */
} cost;

/* Events on all n streams, then a ping-pong on stream st[0] (id first).
 * The broadcast sends PER_ROUND events to every stream per round, in as many
 * rounds as make about BROADCAST_TOTAL events, so that each size sees the
 * same batching (events per read) and the figures compare. */
static cost measure(eventsource_multi_t *m, stream *st, int n, int first) {
  cost c = {.streams = n};
  int rounds = BROADCAST_TOTAL / (PER_ROUND * n) > 0 ? BROADCAST_TOTAL / (PER_ROUND * n) : 1;
  double t0 = bench_now_s(), c0 = bench_cpu_s();
  for (int r = 0; r < rounds; r++) {
    long target = total_events + (long)PER_ROUND * n;
    int q = mass_child_broadcast(PER_ROUND);
    if (q != n)
      bench_die("broadcast reached %d streams", q);
    poll_until(m, &total_events, target, "the broadcast");
  }
  double dt = bench_now_s() - t0, dc = bench_cpu_s() - c0;
  double events = (double)rounds * PER_ROUND * n;
  c.events_per_s = events / dt;
  c.bcast_cpu_ns = dc * 1e9 / events;

  t0 = bench_now_s();
  c0 = bench_cpu_s();
  for (int i = 0; i < PINGS; i++) {
    long want = st[0].events + 1;
    mass_child_send(first);
    while (st[0].events < want)
      if (eventsource_multi_poll(m, 1000) != EVENTSOURCE_OK)
        bench_die("%s", "eventsource_multi_poll failed");
  }
  c.rtt_us = (bench_now_s() - t0) * 1e6 / PINGS;
  c.rtt_cpu_us = (bench_cpu_s() - c0) * 1e6 / PINGS;
  return c;
}

static void print_cost(const cost *c) {
  printf("per_event streams=%d broadcast_cpu_ns=%.0f broadcast_events_per_s=%.0f "
         "pingpong_rtt_us=%.1f pingpong_client_cpu_us=%.2f\n",
         c->streams, c->bcast_cpu_ns, c->events_per_s, c->rtt_us, c->rtt_cpu_us);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  buffer_size = argc > 2 ? atol(argv[2]) : 0;
  if (n < 1 || n > 1000000)
    bench_die("bad number of streams: %s", argc > 1 ? argv[1] : "");
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* Each process needs a descriptor per stream (the client its sockets, the
   * server its connections) and a few more. */
  bench_raise_nofile((unsigned long)n + 64);
  signal(SIGPIPE, SIG_IGN);
  /* Before any thread or libcurl state. */
  int port = mass_child_start(PAYLOAD, sizeof PAYLOAD - 1);

  eventsource_multi_t *m = NULL;
  if (eventsource_multi_new(&m) != EVENTSOURCE_OK)
    bench_die("%s", "eventsource_multi_new failed");
  stream *st = calloc((size_t)n, sizeof *st);
  if (!st)
    bench_die("%s", "out of memory");

  /* Warm up: one stream and one event, so that libcurl's and the library's
   * one-time allocations are not counted per stream. */
  open_streams(m, port, st, 1, 0);
  mass_child_send(0);
  poll_until(m, &total_events, 1, "the first event");
  close_streams(m, st, 1);

  long rss0 = bench_rss_bytes();
  double open_s = open_streams(m, port, st, n, 1);
  long rss1 = bench_rss_bytes();
  double per_stream_kib = (double)(rss1 - rss0) / n / 1024.0;
  printf("open streams=%d open_all_ms=%.0f rss_before_kib=%ld rss_open_kib=%ld "
         "rss_per_stream_kib=%.1f\n",
         n, open_s * 1000, rss0 / 1024, rss1 / 1024, per_stream_kib);
  cost big = measure(m, st, n, 1);
  long rss2 = bench_rss_bytes();
  printf("after events: rss_kib=%ld rss_per_stream_kib=%.1f\n", rss2 / 1024,
         (double)(rss2 - rss0) / n / 1024.0);
  close_streams(m, st, n);

  /* The same at 10 and 100 streams (measured after the big run, so that its
   * memory figures start from a clean heap). */
  cost small[2];
  int nsmall = 0, next_id = n + 1;
  const int sizes[2] = {10, 100};
  for (int i = 0; i < 2; i++) {
    if (sizes[i] >= n)
      continue;
    open_streams(m, port, st, sizes[i], next_id);
    small[nsmall++] = measure(m, st, sizes[i], next_id);
    close_streams(m, st, sizes[i]);
    next_id += sizes[i];
  }
  for (int i = 0; i < nsmall; i++)
    print_cost(&small[i]);
  print_cost(&big);

  eventsource_multi_free(m);
  free(st);
  mass_child_stop();
  printf("streams=%d rss_per_stream_kib=%.0f events_per_s=%.0f open_all_ms=%.0f\n", n,
         per_stream_kib < 0 ? 0 : per_stream_kib, big.events_per_s, open_s * 1000);
  return 0;
}
