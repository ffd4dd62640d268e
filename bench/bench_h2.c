/*
 * bench_h2.c - N event streams in one multi handle through a real HTTP/2
 * server, nghttpx over TLS, and the same N streams over HTTP/1.1 through the
 * same TLS frontend, in one run (issue 14).
 *
 *   bench_h2 [N]          N streams per protocol (default 1000)
 *
 * Per protocol, in a process of its own (forked before any libcurl state,
 * so that one protocol's heap does not serve the other's figures), three
 * processes: the client (one eventsource_multi_t, eventsource_multi_poll()
 * on its main thread), nghttpx (Debian nghttp2-proxy, a child process: TLS
 * frontend on 127.0.0.1 with a certificate made at run time, h2 or http/1.1
 * by ALPN) and behind it bench/mass_server.c (one epoll thread, in a child
 * process: bench/mass_child.c), so the client's RSS is the library's, libcurl's
 * and OpenSSL's alone.
 *
 * This benchmark links test code: test/support/ts_nghttpx.c (nghttpx as a
 * child process, its client connections) and ts_tls.c (the certificates),
 * with OpenSSL; see mk/bench_h2.mk.
 *
 * Measured, for the N streams of each protocol:
 *   open_all_ms          from the first eventsource_multi_add() to the Nth
 *                        OPEN (every one checked to be HTTP/2, or HTTP/1.1);
 *   connections          EVENTSOURCE_MULTI_STAT_CONNECTIONS, checked against
 *                        the client's established sockets to the frontend
 *                        (ts_nghttpx_client_connections);
 *   rss_per_stream_kib   (client RSS with N open idle streams - RSS before) / N;
 *   events_per_s         events delivered per second while every stream
 *                        receives PER_ROUND events per round (about
 *                        BROADCAST_TOTAL events in all), from the first
 *                        queued to the last delivered.
 * Each protocol prints exactly one line:
 *   bench-h2: proto=h2|http1.1 streams=N connections=N rss_per_stream_kib=K events_per_s=E open_all_ms=T
 * Exits non-zero with a message when something does not work: a stream that
 * fails or does not open in time, the wrong HTTP version, connections that
 * disagree, more HTTP/2 connections than ceil(N / max streams) + 2 (12 for
 * 1000 streams), or an HTTP/1.1 connection per stream that is missing.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eventsource.h"
#include "eventsource_curl.h"
#include "common.h"
#include "mass_child.h"
#include "../test/support/ts_nghttpx.h"

#define PAYLOAD "data: the quick brown fox\n\n"
#define BROADCAST_TOTAL 1000000
#define PER_ROUND 100
#define WAIT_S 30 /* the most any phase may take */
/* Streams per HTTP/2 connection: the library's default, and nghttpx's. */
#define MAX_STREAMS EVENTSOURCE_DEFAULT_MAX_STREAMS

typedef struct proto {
  const char *name;
  eventsource_http_version_t version;
  long expect; /* eventsource_event_http_version() on OPEN */
} proto;

static const proto PROTOS[] = {
    {"h2", EVENTSOURCE_HTTP_VERSION_2, 20},
    {"http1.1", EVENTSOURCE_HTTP_VERSION_1_1, 11},
};

static const proto *cur;
static long total_events, total_opens;

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  (void)es;
  (void)ud;
  switch (eventsource_event_kind(ev)) {
  case EVENTSOURCE_KIND_OPEN:
    if (eventsource_event_http_version(ev) != cur->expect)
      bench_die("proto=%s: a stream opened with HTTP version %ld, not %ld", cur->name,
                eventsource_event_http_version(ev), cur->expect);
    total_opens++;
    break;
  case EVENTSOURCE_KIND_MESSAGE:
    total_events++;
    break;
  case EVENTSOURCE_KIND_ERROR:
    bench_die("proto=%s: stream error: %s", cur->name, eventsource_event_message(ev));
    break;
  default:
    break;
  }
}

static void poll_until(eventsource_multi_t *m, const long *counter, long target,
                       const char *what) {
  double deadline = bench_now_s() + WAIT_S;
  while (*counter < target) {
    eventsource_error_t rc = eventsource_multi_poll(m, 1000);
    if (rc)
      bench_die("proto=%s: eventsource_multi_poll: %s", cur->name, eventsource_strerror(rc));
    if (bench_now_s() > deadline)
      bench_die("proto=%s: timed out after %d s waiting for %s (%ld of %ld)", cur->name,
                WAIT_S, what, *counter, target);
  }
}

/* n sources to port's streams first.., made but not added. */
static void make_streams(eventsource_t **es, int n, int port, int first, const char *ca) {
  for (int i = 0; i < n; i++) {
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/s/%d", port, first + i);
    if (eventsource_new(&es[i], url) != EVENTSOURCE_OK ||
        eventsource_set_http_version(es[i], cur->version) != EVENTSOURCE_OK ||
        eventsource_add_any_listener(es[i], on_any, NULL, NULL) != EVENTSOURCE_OK ||
        eventsource_set_curl_callback(es[i], ts_tls_trust_ca, (void *)ca) != EVENTSOURCE_OK)
      bench_die("proto=%s: cannot create a stream", cur->name);
  }
}

static void add_streams(eventsource_multi_t *m, eventsource_t **es, int n) {
  for (int i = 0; i < n; i++)
    if (eventsource_multi_add(m, es[i]) != EVENTSOURCE_OK)
      bench_die("proto=%s: eventsource_multi_add failed", cur->name);
}

static void close_streams(eventsource_multi_t *m, eventsource_t **es, int n) {
  for (int i = 0; i < n; i++)
    eventsource_close(es[i]);
  if (eventsource_multi_run(m) != EVENTSOURCE_OK)
    bench_die("proto=%s: eventsource_multi_run failed", cur->name);
  for (int i = 0; i < n; i++)
    eventsource_free(es[i]);
}

/* The streams nghttpx allows per HTTP/2 connection: the library's limit
 * unless the second argument says otherwise (a server with a lower limit
 * than the multi handle's: the library learns it). */
static long server_streams = MAX_STREAMS;

/* One protocol, start to end, in the current process. */
static void run(const proto *p, int n) {
  cur = p;
  int backend = mass_child_start(PAYLOAD, sizeof PAYLOAD - 1);
  ts_tls *tls = ts_tls_new("IP:127.0.0.1");
  if (!tls)
    bench_die("proto=%s: cannot make the certificates", p->name);
  /* nghttpx's limits, for N streams: its frontend's streams per HTTP/2
   * connection, said explicitly (its default, as the library's); no limit on
   * frontend connections (one per stream over HTTP/1.1) nor on backend ones
   * (one per stream, to mass_server): in this (reverse proxy) mode the
   * per-frontend limit applies, 0 by default, and the per-host one (default
   * 8) only with --http2-proxy, but both are opened; idle streams are not
   * timed out while the benchmark runs. */
  char streams_opt[64], backend_opt[64];
  snprintf(streams_opt, sizeof streams_opt, "--frontend-http2-max-concurrent-streams=%ld",
           server_streams);
  snprintf(backend_opt, sizeof backend_opt, "--backend-connections-per-host=%d", 2 * n);
  const char *extra[] = {streams_opt,
                         backend_opt,
                         "--backend-connections-per-frontend=0",
                         "--worker-frontend-connections=0",
                         "--backend-read-timeout=10m",
                         "--frontend-read-timeout=10m",
                         "--frontend-http2-read-timeout=10m",
                         NULL};
  ts_nghttpx *ngx = ts_nghttpx_start(backend, tls, extra);
  if (!ngx)
    bench_die("proto=%s: cannot start nghttpx", p->name);
  int port = ts_nghttpx_port(ngx);
  const char *ca = ts_tls_ca_file(tls);

  /* Warm up in a multi of its own (its connection goes with it): one
   * stream and one event, so that libcurl's, OpenSSL's and the library's
   * one-time allocations are not counted per stream. */
  eventsource_multi_t *m = NULL;
  eventsource_t *warm[1];
  if (eventsource_multi_new(&m) != EVENTSOURCE_OK)
    bench_die("%s", "eventsource_multi_new failed");
  make_streams(warm, 1, port, 0, ca);
  add_streams(m, warm, 1);
  poll_until(m, &total_opens, 1, "the warm-up stream to open");
  mass_child_send(0);
  poll_until(m, &total_events, 1, "the warm-up event");
  close_streams(m, warm, 1);
  eventsource_multi_free(m);
  total_opens = total_events = 0;

  if (eventsource_multi_new(&m) != EVENTSOURCE_OK ||
      eventsource_multi_set_max_streams(m, MAX_STREAMS) != EVENTSOURCE_OK)
    bench_die("%s", "eventsource_multi_new failed");
  eventsource_t **es = calloc((size_t)n, sizeof *es);
  if (!es)
    bench_die("%s", "out of memory");
  make_streams(es, n, port, 1, ca);
  long rss0 = bench_rss_bytes();
  double t0 = bench_now_s();
  add_streams(m, es, n);
  poll_until(m, &total_opens, n, "the streams to open");
  double open_s = bench_now_s() - t0;
  long rss1 = bench_rss_bytes();
  double per_stream_kib = (double)(rss1 - rss0) / n / 1024.0;

  long conns = (long)eventsource_multi_stat(m, EVENTSOURCE_MULTI_STAT_CONNECTIONS);
  int sockets = ts_nghttpx_client_connections(ngx);
  if (sockets != conns)
    bench_die("proto=%s: %ld connections opened (EVENTSOURCE_MULTI_STAT_CONNECTIONS) but "
              "%d sockets established to the frontend",
              p->name, conns, sockets);

  int rounds = BROADCAST_TOTAL / (PER_ROUND * n) > 0 ? BROADCAST_TOTAL / (PER_ROUND * n) : 1;
  t0 = bench_now_s();
  for (int r = 0; r < rounds; r++) {
    long target = total_events + (long)PER_ROUND * n;
    int q = mass_child_broadcast(PER_ROUND);
    if (q != n)
      bench_die("proto=%s: the broadcast reached %d streams of %d", p->name, q, n);
    poll_until(m, &total_events, target, "the broadcast");
  }
  double events_per_s = (double)total_events / (bench_now_s() - t0);
  long counted = (long)eventsource_multi_stat(m, EVENTSOURCE_MULTI_STAT_EVENTS);
  if (counted != total_events)
    bench_die("proto=%s: %ld events delivered but EVENTSOURCE_MULTI_STAT_EVENTS %ld", p->name,
              total_events, counted);

  close_streams(m, es, n);
  eventsource_multi_free(m);
  free(es);
  ts_nghttpx_free(ngx);
  ts_tls_free(tls);
  mass_child_stop();

  printf("bench-h2: proto=%s streams=%d connections=%ld rss_per_stream_kib=%.1f "
         "events_per_s=%.0f open_all_ms=%.0f\n",
         p->name, n, conns, per_stream_kib < 0 ? 0 : per_stream_kib, events_per_s,
         open_s * 1000);
  long per = server_streams < MAX_STREAMS ? server_streams : MAX_STREAMS;
  long most = p->expect == 20 ? (n + per - 1) / per + 2 : n;
  if (p->expect == 20 ? conns > most : conns != most)
    bench_die("proto=%s: %ld connections for %d streams, %s %ld", p->name, conns, n,
              p->expect == 20 ? "expected at most" : "expected", most);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  if (n < 1 || n > 100000)
    bench_die("bad number of streams: %s", argc > 1 ? argv[1] : "");
  if (argc > 2)
    server_streams = atol(argv[2]);
  if (server_streams < 1 || server_streams > 10000)
    bench_die("bad number of streams per connection: %s", argv[2]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* Inherited by every process: over HTTP/1.1 the client holds a socket per
   * stream, mass_server one, and nghttpx two (frontend and backend). */
  bench_raise_nofile(2UL * (unsigned long)n + 256);
  signal(SIGPIPE, SIG_IGN);
  int failed = 0;
  for (size_t i = 0; i < sizeof PROTOS / sizeof PROTOS[0]; i++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
      bench_die("%s", "fork failed");
    if (pid == 0) {
      run(&PROTOS[i], n);
      exit(0);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "bench_h2: proto=%s failed\n", PROTOS[i].name);
      failed = 1;
    }
  }
  return failed;
}
