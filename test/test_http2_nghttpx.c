/*
 * test_http2_nghttpx.c - HTTP/2 against a real HTTP/2 server: nghttpx
 * (ts_nghttpx.h) in front of the loopback server, over TLS (h2 by ALPN,
 * certificates from ts_tls.h) and over h2c (cleartext, prior knowledge).
 *
 * The backend is a ts_server handler (a "feed"): the stream of path /s/I
 * carries events "id: K" / "data: I K", K = 1, 2, ... up to the feed's
 * target, continues after the Last-Event-ID of the request, and stays open
 * waiting for the test to raise the target (or to reset that one stream).
 * Each source checks, event by event, that it got exactly the next one:
 * no gap, no duplicate, no stranger's event. The multi is driven by
 * eventsource_multi_poll() on the test thread, so the listeners run there
 * and the waits synchronise on what they recorded.
 *
 * nghttpx is a declared test dependency (mk/deps.sh test): a missing
 * binary fails the suite, it does not skip it.
 */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventsource.h"
#include "eventsource_curl.h"
#include "support/sse_server.h"
#include "support/ts_nghttpx.h"
#include "support/ts_tls.h"
#include "support/ts_util.h"

#define WAIT_MS 20000 /* deadline of one wait */

/* ------------------------------------------------------------------------ */
/* The backend: numbered events per stream                                  */
/* ------------------------------------------------------------------------ */

typedef struct feed {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int target;    /* every stream gets its events up to this id */
  int reset_idx; /* the stream to end with a RST now, -1 none */
  int stopping;
  int heartbeat_ms; /* > 0: a comment line after that long without events */
} feed;

static void feed_init(feed *f, int target) {
  pthread_condattr_t ca; /* ts_deadline_in() is on CLOCK_MONOTONIC */
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, &ca);
  pthread_condattr_destroy(&ca);
  f->target = target;
  f->heartbeat_ms = 0;
  f->reset_idx = -1;
  f->stopping = 0;
}

static void feed_update(feed *f, int target, int reset_idx, int stopping) {
  pthread_mutex_lock(&f->mu);
  if (target > f->target)
    f->target = target;
  if (reset_idx >= 0)
    f->reset_idx = reset_idx;
  if (stopping)
    f->stopping = 1;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

static void feed_handler(ts_conn *c, const ts_request *req, void *ud) {
  feed *f = ud;
  int idx, next = 1;
  char lei[64];
  if (sscanf(req->path, "/s/%d", &idx) != 1) {
    ts_conn_writes(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                      "Connection: close\r\n\r\n");
    return;
  }
  if (ts_request_header(req, "Last-Event-ID", lei, sizeof lei))
    next = atoi(lei) + 1;
  if (ts_conn_writes(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        "Cache-Control: no-cache\r\nConnection: close\r\n\r\n") != 0)
    return;
  for (;;) {
    int beat = 0;
    pthread_mutex_lock(&f->mu);
    struct timespec until;
    ts_deadline_in(&until, f->heartbeat_ms);
    while (!f->stopping && next > f->target && f->reset_idx != idx && !beat) {
      if (f->heartbeat_ms <= 0)
        pthread_cond_wait(&f->cv, &f->mu);
      else
        beat = pthread_cond_timedwait(&f->cv, &f->mu, &until) != 0;
    }
    if (beat) {
      pthread_mutex_unlock(&f->mu);
      if (ts_conn_writes(c, ": heartbeat\n") != 0)
        return;
      continue;
    }
    if (f->stopping) {
      pthread_mutex_unlock(&f->mu);
      return;
    }
    if (f->reset_idx == idx) {
      f->reset_idx = -1;
      pthread_mutex_unlock(&f->mu);
      ts_conn_close(c, 1);
      return;
    }
    int last = f->target;
    pthread_mutex_unlock(&f->mu);
    char buf[8192];
    size_t len = 0;
    for (; next <= last && len < sizeof buf - 64; next++)
      len += (size_t)snprintf(buf + len, sizeof buf - len, "id: %d\ndata: %d %d\n\n",
                              next, idx, next);
    if (ts_conn_write(c, buf, len) != 0)
      return;
  }
}

/* ------------------------------------------------------------------------ */
/* What one source saw                                                      */
/* ------------------------------------------------------------------------ */

typedef struct rec {
  int idx;
  eventsource_t *es;
  int last; /* id of the last event, 0 before the first */
  int events, opens, errors, bad, comments;
  long open_version, first_open_version;
  int first_open_reused;
  int curl_code; /* of the last error */
  eventsource_error_t error;
  long reconnect_ms; /* of the last error */
  int last_at_error; /* last when the last error came */
  int goaways;       /* libcurl's "GOAWAY" info lines on its transfers */
  int errors_before_open; /* errors of every source when this one opened first */
  char why[160]; /* the first bad event */
  int close_after; /* eventsource_close() after this many events (0: never) */
} rec;

static int g_errors; /* every source's, since the test began */

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  rec *r = ud;
  switch (eventsource_event_kind(ev)) {
  case EVENTSOURCE_KIND_OPEN:
    r->open_version = eventsource_event_http_version(ev);
    if (r->opens++ == 0) {
      r->errors_before_open = g_errors;
      r->first_open_version = r->open_version;
      r->first_open_reused = eventsource_event_connection_reused(ev);
    }
    break;
  case EVENTSOURCE_KIND_ERROR:
    g_errors++;
    r->errors++;
    r->error = eventsource_event_error(ev);
    r->curl_code = eventsource_event_curl_code(ev);
    r->reconnect_ms = eventsource_event_reconnect_ms(ev);
    r->last_at_error = r->last;
    break;
  case EVENTSOURCE_KIND_MESSAGE: {
    size_t dlen, ilen;
    const char *d = eventsource_event_data(ev, &dlen);
    const char *id = eventsource_event_last_event_id(ev, &ilen);
    char want[64];
    snprintf(want, sizeof want, "%d %d", r->idx, r->last + 1);
    if (!(ilen > 0 && atoi(id) == r->last + 1 && dlen == strlen(want) &&
          memcmp(d, want, dlen) == 0) &&
        r->bad++ == 0)
      snprintf(r->why, sizeof r->why, "source %d: expected \"%s\", got id %.*s data \"%.*s\"",
               r->idx, want, (int)ilen, id, (int)dlen, d);
    r->last = ilen > 0 ? atoi(id) : r->last;
    if (++r->events == r->close_after)
      eventsource_close(es);
    break;
  }
  default:
    break;
  }
}

static void on_comment(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  (void)es;
  (void)ev;
  ((rec *)ud)->comments++;
}

/* ------------------------------------------------------------------------ */
/* Fixture: TLS material, the feed, its server, nghttpx, the sources        */
/* ------------------------------------------------------------------------ */

#define MAX_SOURCES 256

static struct {
  ts_tls *tls;
  feed feed;
  int feed_ready;
  ts_server *srv;
  ts_nghttpx *px;
  eventsource_multi_t *multi;
  rec recs[MAX_SOURCES];
  int n;
} g;

static void setup(void) {
  memset(&g, 0, sizeof g);
  g_errors = 0;
  ck_assert_msg(ts_nghttpx_binary() != NULL,
                "nghttpx is not installed: it is a test dependency (mk/deps.sh test "
                "installs the Debian package nghttp2-proxy)");
  g.tls = ts_tls_new("IP:127.0.0.1");
  ck_assert_ptr_nonnull(g.tls);
}

static void teardown(void) {
  for (int i = 0; i < g.n; i++)
    if (g.recs[i].es && g.multi)
      eventsource_multi_remove(g.multi, g.recs[i].es);
  eventsource_multi_free(g.multi);
  for (int i = 0; i < g.n; i++)
    eventsource_free(g.recs[i].es);
  if (g.feed_ready)
    feed_update(&g.feed, 0, -1, 1);
  ts_nghttpx_free(g.px);
  if (g.srv)
    ts_server_stop(g.srv);
  if (g.feed_ready) {
    pthread_mutex_destroy(&g.feed.mu);
    pthread_cond_destroy(&g.feed.cv);
  }
  ts_tls_free(g.tls);
  memset(&g, 0, sizeof g);
}

/* The feed's server (first events up to target) and nghttpx in front of
 * it, over TLS (tls 1) or h2c; extra: more nghttpx options or NULL. */
static void start_proxy_with(int tls, int target, const char *const *extra, int flags) {
  feed_init(&g.feed, target);
  g.feed_ready = 1;
  g.srv = ts_start_server();
  ts_server_set_handler(g.srv, feed_handler, &g.feed);
  g.px = ts_nghttpx_start_with(ts_server_port(g.srv), tls ? g.tls : NULL, extra, flags);
  ck_assert_msg(g.px != NULL, "nghttpx did not start (see above)");
}

static void start_proxy(int tls, int target, const char *const *extra) {
  start_proxy_with(tls, target, extra, 0);
}

/* Source i of g (URL /s/i on the proxy) with the given HTTP version, the
 * test CA, and short reconnection delays. */
static eventsource_t *new_source(int i, eventsource_http_version_t v) {
  rec *r = &g.recs[i];
  ck_assert_int_lt(i, MAX_SOURCES);
  memset(r, 0, sizeof *r);
  r->idx = i;
  char path[32];
  snprintf(path, sizeof path, "/s/%d", i);
  ck_assert_int_eq(eventsource_new(&r->es, ts_nghttpx_url(g.px, path)), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_http_version(r->es, v), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_curl_callback(r->es, ts_tls_trust_ca, (void *)ts_tls_ca_file(g.tls)),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(r->es, EVENTSOURCE_MIN_RECONNECT_MS), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_max_retry(r->es, 400), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(r->es, 1), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_any_listener(r->es, on_any, r, NULL), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_comment_listener(r->es, on_comment, r, NULL), EVENTSOURCE_OK);
  if (i >= g.n)
    g.n = i + 1;
  return r->es;
}

/* n sources in one multi (max_streams per connection, 0: the default),
 * all added at once. */
static void add_sources(int n, eventsource_http_version_t v, long max_streams) {
  ck_assert_int_le(n, MAX_SOURCES);
  ck_assert_int_eq(eventsource_multi_new(&g.multi), EVENTSOURCE_OK);
  if (max_streams)
    ck_assert_int_eq(eventsource_multi_set_max_streams(g.multi, max_streams), EVENTSOURCE_OK);
  for (int i = 0; i < n; i++)
    ck_assert_int_eq(eventsource_multi_add(g.multi, new_source(i, v)), EVENTSOURCE_OK);
}

/* Polls the multi until cond holds, at most WAIT_MS. */
#define WAIT_FOR(cond, ...)                                                    \
  do {                                                                         \
    long deadline_ = ts_now_ms() + WAIT_MS;                                    \
    while (!(cond) && ts_now_ms() < deadline_)                                 \
      ck_assert_int_eq(eventsource_multi_poll(g.multi, 50), EVENTSOURCE_OK);   \
    ck_assert_msg((cond), __VA_ARGS__);                                        \
  } while (0)

/* The least value of the int field at offset off over every source. */
static int min_of(size_t off) {
  int m = 0;
  for (int i = 0; i < g.n; i++) {
    int v = *(const int *)(const void *)((const char *)&g.recs[i] + off);
    if (i == 0 || v < m)
      m = v;
  }
  return m;
}
#define MIN_OF(field) min_of(offsetof(rec, field))

/* Every source got exactly the events 1..k, in order. */
static void expect_exact(int k) {
  for (int i = 0; i < g.n; i++) {
    rec *r = &g.recs[i];
    ck_assert_msg(r->bad == 0, "%s (%d bad events)", r->why, r->bad);
    ck_assert_msg(r->events == k && r->last == k, "source %d: %d events, last id %d, expected %d",
                  i, r->events, r->last, k);
  }
}

static int small(void) { return ts_small_scale(); }

/* Whether h2c streams share connections: the library gives every h2c
 * request a connection of its own on libcurl before 8.0.0, which fails
 * requests on a reused h2c connection (curl issue #10634). TLS h2 always
 * shares. */
static int shares(int tls) {
  return tls || curl_version_info(CURLVERSION_NOW)->version_num >= 0x080000;
}

/* The connections n streams may use: ceil(n / per_conn) to slack more
 * (2 or 3 for 200 streams of 100 per connection with slack 1), or n when
 * they do not share. */
static void expect_connections(long got, int tls, int n, int per_conn, int slack,
                               const char *what) {
  long lo = shares(tls) ? (n + per_conn - 1) / per_conn : n;
  long hi = shares(tls) ? lo + slack : n;
  ck_assert_msg(got >= lo && got <= hi, "%s: %ld connections for %d streams (expected %ld to %ld)",
                what, got, n, lo, hi);
}

/* ------------------------------------------------------------------------ */
/* eventsource_run() over h2, h2c and HTTP/1.1                              */
/* ------------------------------------------------------------------------ */

/* Closes es if the run is not over within WAIT_MS (a hang fails the test
 * even with CK_FORK=no, where Check's timeouts do not apply). */
typedef struct watchdog {
  eventsource_t *es;
  int done;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} watchdog;

static void *watchdog_main(void *arg) {
  watchdog *w = arg;
  struct timespec until;
  ts_deadline_in(&until, WAIT_MS);
  pthread_mutex_lock(&w->mu);
  while (!w->done && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
    ;
  int fire = !w->done;
  pthread_mutex_unlock(&w->mu);
  if (fire)
    eventsource_close(w->es);
  return NULL;
}

/* One source run alone to its 5th event (its listener closes it). */
static void run_one(eventsource_http_version_t v, long want_version) {
  rec *r = &g.recs[0];
  eventsource_t *es = new_source(0, v);
  r->close_after = 5;
  watchdog w = {.es = es};
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w.cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&w.mu, NULL);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, watchdog_main, &w), 0);
  eventsource_error_t rc = eventsource_run(es);
  pthread_mutex_lock(&w.mu);
  w.done = 1;
  pthread_cond_signal(&w.cv);
  pthread_mutex_unlock(&w.mu);
  pthread_join(th, NULL);
  pthread_cond_destroy(&w.cv);
  pthread_mutex_destroy(&w.mu);
  ck_assert_int_eq(rc, EVENTSOURCE_OK);
  expect_exact(5);
  ck_assert_int_eq(r->opens, 1);
  ck_assert_int_eq(r->errors, 0);
  ck_assert_int_eq(r->open_version, want_version);
  ck_assert_uint_eq(eventsource_stat(es, EVENTSOURCE_STAT_HTTP_VERSION), (uint64_t)want_version);
  ck_assert_uint_eq(eventsource_stat(es, EVENTSOURCE_STAT_ATTEMPTS), 1);
  eventsource_free(es);
  r->es = NULL;
}

START_TEST(test_run_h2_tls) {
  start_proxy(1, 5, NULL);
  run_one(EVENTSOURCE_HTTP_VERSION_2, 20);
}
END_TEST

START_TEST(test_run_default_tls) {
  start_proxy(1, 5, NULL); /* libcurl's default: h2 by ALPN on https */
  run_one(EVENTSOURCE_HTTP_VERSION_DEFAULT, 20);
}
END_TEST

START_TEST(test_run_http11_tls) {
  start_proxy(1, 5, NULL);
  run_one(EVENTSOURCE_HTTP_VERSION_1_1, 11);
}
END_TEST

START_TEST(test_run_h2c) {
  start_proxy(0, 5, NULL);
  run_one(EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE, 20);
}
END_TEST

START_TEST(test_run_h2_on_http_is_http11) {
  start_proxy(0, 5, NULL); /* HTTP_VERSION_2 on an http: URL: no upgrade, 1.1 */
  run_one(EVENTSOURCE_HTTP_VERSION_2, 11);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Many sources in one multi share a few connections                        */
/* ------------------------------------------------------------------------ */

/* 200 sources (40 under valgrind, where nghttpx allows 20 streams per
 * connection: the same ratio) added at once: 2 or 3 connections, every
 * event exact. max_streams: the multi's streams per connection, 0 for its
 * default (100). server: nghttpx's streams per connection, 0 for its
 * default (100; 20 under valgrind): below the multi's, the library learns
 * it from the first connection. */
static void many_sources(int tls, long max_streams, int server) {
  char few[64];
  if (!server)
    server = small() ? 20 : 100;
  snprintf(few, sizeof few, "--frontend-http2-max-concurrent-streams=%d", server);
  const char *extra[] = {few, NULL};
  int n = small() ? 40 : 200;
  int per_conn = max_streams && max_streams < server ? (int)max_streams : server;
  start_proxy(tls, 5, extra);
  add_sources(n, tls ? EVENTSOURCE_HTTP_VERSION_2 : EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE,
              max_streams);
  WAIT_FOR(MIN_OF(last) >= 5, "not every source got 5 events (the slowest has %d)", MIN_OF(last));
  int conns = ts_nghttpx_client_connections(g.px);
  uint64_t opened = eventsource_multi_stat(g.multi, EVENTSOURCE_MULTI_STAT_CONNECTIONS);
  /* a server's lower limit is learnt when the requests of one batch (8)
   * found the first connection full and each made one */
  int slack = per_conn < (max_streams ? max_streams : 100) ? 8 : 1;
  expect_connections(conns, tls, n, per_conn, slack, "client connections to nghttpx");
  expect_connections((long)opened, tls, n, per_conn, slack, "EVENTSOURCE_MULTI_STAT_CONNECTIONS");
  /* They keep streaming on those connections. */
  feed_update(&g.feed, 8, -1, 0);
  WAIT_FOR(MIN_OF(last) >= 8, "not every source got 8 events (the slowest has %d)", MIN_OF(last));
  expect_exact(8);
  int reused = 0;
  for (int i = 0; i < n; i++) {
    rec *r = &g.recs[i];
    ck_assert_msg(r->opens == 1 && r->errors == 0, "source %d: %d opens, %d errors (curl %d)", i,
                  r->opens, r->errors, r->curl_code);
    ck_assert_int_eq(r->first_open_version, 20);
    ck_assert_uint_eq(eventsource_stat(r->es, EVENTSOURCE_STAT_ATTEMPTS), 1);
    reused += r->first_open_reused;
  }
  ck_assert_int_eq(reused, n - (int)opened);
  ck_assert_int_eq(ts_nghttpx_client_connections(g.px), conns);
}

START_TEST(test_many_sources_tls) { many_sources(1, 0, 0); }
END_TEST

START_TEST(test_many_sources_h2c) { many_sources(0, 0, 0); }
END_TEST

/* The server allows 30 streams a connection (10 under valgrind), the
 * multi 100: the library learns the server's limit from its first
 * connection, so 200 sources take 7 connections, and at most a batch (8)
 * more, not one each past the first 30 (170). */
START_TEST(test_server_fewer_streams_tls) { many_sources(1, 0, small() ? 10 : 30); }
END_TEST

/* eventsource_multi_set_max_streams() below the server's limit: 200
 * sources on 4 or 5 connections (40 on 4 or 5 under valgrind). */
START_TEST(test_max_streams_tls) { many_sources(1, small() ? 10 : 50, 0); }
END_TEST

/* ------------------------------------------------------------------------ */
/* A limit on connections per host                                          */
/* ------------------------------------------------------------------------ */

/* Sources (not CLOSED) with at least k events. */
static int count_at(int k) {
  int c = 0;
  for (int i = 0; i < g.n; i++)
    c += g.recs[i].last >= k && eventsource_ready_state(g.recs[i].es) != EVENTSOURCE_CLOSED;
  return c;
}

/* One connection of 10 streams for 15 sources: 10 stream, 5 fail with
 * CONNECTION_LIMIT and retry (none waits for ever in libcurl's queue);
 * when 3 streams are closed, 3 of the 5 get in. */
START_TEST(test_host_connection_limit) {
  start_proxy(1, 3, NULL);
  add_sources(15, EVENTSOURCE_HTTP_VERSION_2, 10);
  ck_assert_int_eq(eventsource_multi_set_max_host_connections(g.multi, 1), EVENTSOURCE_OK);
  WAIT_FOR(count_at(3) == 10, "%d sources streaming", count_at(3));
  for (int i = 0; i < g.n; i++) {
    rec *r = &g.recs[i];
    if (r->last == 0)
      WAIT_FOR(r->errors >= 1, "source %d got neither events nor an error", i);
  }
  for (int i = 0; i < g.n; i++) {
    rec *r = &g.recs[i];
    ck_assert_msg(r->bad == 0, "%s", r->why);
    if (r->last == 0)
      ck_assert_msg(r->error == EVENTSOURCE_ERR_CONNECTION_LIMIT && r->opens == 0,
                    "source %d: %s, %d opens", i, eventsource_strerror(r->error), r->opens);
    else
      ck_assert_msg(r->last == 3 && r->errors == 0, "source %d: last %d, %d errors", i, r->last,
                    r->errors);
  }
  ck_assert_int_eq(ts_nghttpx_client_connections(g.px), 1);
  for (int i = 0, closed = 0; i < g.n && closed < 3; i++)
    if (g.recs[i].last == 3) {
      eventsource_close(g.recs[i].es);
      closed++;
    }
  WAIT_FOR(count_at(3) == 10, "%d sources streaming after 3 closed", count_at(3));
  ck_assert_int_eq(ts_nghttpx_client_connections(g.px), 1);
  int waiting = 0;
  for (int i = 0; i < g.n; i++) {
    rec *r = &g.recs[i];
    ck_assert_msg(r->bad == 0, "%s", r->why);
    waiting += r->last == 0;
  }
  ck_assert_int_eq(waiting, 2);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* nghttpx killed and restarted                                             */
/* ------------------------------------------------------------------------ */

/* 120 streams (24 under valgrind) at event 3; nghttpx is killed; once
 * every source has seen the error it is restarted on the same port; every
 * stream resumes with its Last-Event-ID and gets 4..6 exactly once. */
static void proxy_restart(int tls) {
  int n = small() ? 24 : 120;
  start_proxy(tls, 3, NULL);
  add_sources(n, tls ? EVENTSOURCE_HTTP_VERSION_2 : EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE,
              0);
  WAIT_FOR(MIN_OF(last) >= 3, "not every source got 3 events (the slowest has %d)", MIN_OF(last));
  expect_exact(3);
  int before = ts_server_request_count(g.srv);
  ck_assert_int_eq(before, n);
  uint64_t opened = eventsource_multi_stat(g.multi, EVENTSOURCE_MULTI_STAT_CONNECTIONS);

  ts_nghttpx_kill(g.px);
  WAIT_FOR(MIN_OF(errors) >= 1, "not every source saw the proxy go");
  feed_update(&g.feed, 6, -1, 0);
  ck_assert_int_eq(ts_nghttpx_restart(g.px), 0);
  WAIT_FOR(MIN_OF(last) >= 6, "not every source resumed (the slowest has %d)", MIN_OF(last));
  expect_exact(6);
  for (int i = 0; i < n; i++) {
    rec *r = &g.recs[i];
    ck_assert_msg(r->opens == 2, "source %d: %d opens", i, r->opens);
    ck_assert_int_eq(r->open_version, 20);
  }
  /* Every request after the restart carried the last ID seen: 3. */
  int after = ts_server_request_count(g.srv);
  ck_assert_int_eq(after, 2 * n);
  for (int i = before; i < after; i++) {
    ts_request q;
    char lei[64];
    ck_assert_int_eq(ts_server_get_request(g.srv, i, &q), 0);
    ck_assert_msg(ts_request_header(&q, "Last-Event-ID", lei, sizeof lei) == 1,
                  "request %d (%s) has no Last-Event-ID", i, q.path);
    ck_assert_str_eq(lei, "3");
  }
  expect_connections(ts_nghttpx_client_connections(g.px), tls, n, 100, 1,
                     "client connections after the restart");
  opened = eventsource_multi_stat(g.multi, EVENTSOURCE_MULTI_STAT_CONNECTIONS) - opened;
  expect_connections((long)opened, tls, n, 100, 1, "connections opened after the restart");
}

START_TEST(test_restart_tls) { proxy_restart(1); }
END_TEST

START_TEST(test_restart_h2c) { proxy_restart(0); }
END_TEST

/* ------------------------------------------------------------------------ */
/* A real GOAWAY: nghttpx shut down gracefully                              */
/* ------------------------------------------------------------------------ */

/* Counts libcurl's informational lines about a GOAWAY frame ("recveived
 * GOAWAY, error=0, last_stream=..." in 7.88, "received" later): the
 * evidence that one came. libcurl logs it on the transfer that read it. */
static int on_debug(CURL *easy, curl_infotype type, char *text, size_t len, void *ud) {
  (void)easy;
  static const char word[] = "GOAWAY";
  if (type == CURLINFO_TEXT && len >= sizeof word - 1)
    for (size_t i = 0; i + sizeof word - 1 <= len; i++)
      if (memcmp(text + i, word, sizeof word - 1) == 0) {
        ((rec *)ud)->goaways++;
        break;
      }
  return 0;
}

static CURLcode set_ca_debug(eventsource_t *es, CURL *easy, void *ud) {
  CURLcode rc = ts_tls_trust_ca(es, easy, (void *)ts_tls_ca_file(g.tls));
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, on_debug);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(easy, CURLOPT_DEBUGDATA, ud);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);
  return rc;
}

/* Source i (as new_source, h2 over TLS) with libcurl's GOAWAY lines
 * counted, and a reconnection time of 1 s: its delays, with jitter, are
 * drawn from [1000, 1500] ms. */
static void add_goaway_source(int i) {
  eventsource_t *es = new_source(i, EVENTSOURCE_HTTP_VERSION_2);
  ck_assert_int_eq(eventsource_set_curl_callback(es, set_ca_debug, &g.recs[i]), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(es, 1000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_max_retry(es, 1500), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_add(g.multi, es), EVENTSOURCE_OK);
}

/* How many of sources 0..n-1 have the int field at offset off >= v. */
static int count_ge(size_t off, int n, int v) {
  int k = 0;
  for (int i = 0; i < n; i++)
    k += *(const int *)(const void *)((const char *)&g.recs[i] + off) >= v;
  return k;
}
#define COUNT_GE(field, n, v) count_ge(offsetof(rec, field), n, v)

static int goaways(void) {
  int k = 0;
  for (int i = 0; i < g.n; i++)
    k += g.recs[i].goaways;
  return k;
}

/* 50 streams (10 under valgrind) on one TLS h2 connection at event 3. A
 * multi-process nghttpx gets SIGQUIT: it closes its port at once, sends a
 * GOAWAY (NO_ERROR, last stream 2^31-1: the shutdown notice), 2 s later
 * a second one (NO_ERROR, its last stream), and keeps the connection
 * for its grace period, 4 s here, then closes it: each stream ends (curl
 * 18, PARTIAL_FILE). A new nghttpx is started on the port at once. The
 * feed goes on to 6 meanwhile, on the old connection while it lasts (some
 * of it may be lost in flight). A late source added after the second
 * GOAWAY, while the old connection is still up, must not go on it: it
 * opens before the cut and never fails. Every stream then reconnects
 * after its own jittered delay with its Last-Event-ID, and gets every
 * event up to 9 (sent once all were cut) exactly once. */
START_TEST(test_goaway_tls) {
  int n = small() ? 10 : 50, late = n;
  const char *grace[] = {"--worker-process-grace-shutdown-period=4", NULL};
  start_proxy_with(1, 3, grace, TS_NGHTTPX_MULTI_PROCESS);
  ck_assert_int_eq(eventsource_multi_new(&g.multi), EVENTSOURCE_OK);
  for (int i = 0; i < n; i++)
    add_goaway_source(i);
  WAIT_FOR(MIN_OF(last) >= 3, "not every source got 3 events (the slowest has %d)", MIN_OF(last));
  expect_exact(3);
  ck_assert_int_eq(ts_server_request_count(g.srv), n);
  ck_assert_int_eq(goaways(), 0);

  ck_assert_int_eq(ts_nghttpx_graceful(g.px), 0);
  ck_assert_int_eq(ts_nghttpx_restart(g.px), 0);
  feed_update(&g.feed, 6, -1, 0);
  WAIT_FOR(goaways() >= 2, "libcurl reported %d GOAWAY frames, not 2", goaways());
  ck_assert_msg(g_errors == 0, "%d errors before the connection was closed", g_errors);
  add_goaway_source(late);
  rec *l = &g.recs[late];
  WAIT_FOR(l->opens >= 1 || g_errors > 0, "the late source did not open");
  ck_assert_msg(l->opens == 1 && l->errors_before_open == 0,
                "the late source opened after the cut (%d errors), not beside the old connection",
                l->errors_before_open);
  WAIT_FOR(COUNT_GE(errors, n, 1) == n, "not every stream ended (%d of %d)",
           COUNT_GE(errors, n, 1), n);
  feed_update(&g.feed, 9, -1, 0);
  WAIT_FOR(MIN_OF(last) >= 9 && COUNT_GE(opens, n, 2) == n,
           "not every source resumed (the slowest has %d)", MIN_OF(last));
  expect_exact(9);

  long lo = 0, hi = 0;
  for (int i = 0; i < n; i++) {
    rec *r = &g.recs[i];
    ck_assert_msg(r->errors == 1 && r->opens == 2, "source %d: %d errors, %d opens", i, r->errors,
                  r->opens);
    ck_assert_msg(r->error == EVENTSOURCE_ERR_NETWORK && r->curl_code == CURLE_PARTIAL_FILE,
                  "source %d: %s (curl %d)", i, eventsource_strerror(r->error), r->curl_code);
    ck_assert_msg(r->reconnect_ms >= 1000 && r->reconnect_ms <= 1500,
                  "source %d: reconnection delay %ld", i, r->reconnect_ms);
    lo = i == 0 || r->reconnect_ms < lo ? r->reconnect_ms : lo;
    hi = i == 0 || r->reconnect_ms > hi ? r->reconnect_ms : hi;
    ck_assert_int_eq(r->open_version, 20);
  }
  ck_assert_msg(hi > lo, "every reconnection delay is %ld ms: no jitter spread", lo);
  ck_assert_msg(l->errors == 0 && l->opens == 1,
                "the source added after the GOAWAY: %d errors (curl %d), %d opens", l->errors,
                l->curl_code, l->opens);
  /* The late request, then each source's resumption with the last ID it
   * had when its stream ended. */
  ck_assert_int_eq(ts_server_request_count(g.srv), 2 * n + 1);
  for (int i = n; i < 2 * n + 1; i++) {
    ts_request q;
    char lei[64], want[16];
    int idx = -1;
    ck_assert_int_eq(ts_server_get_request(g.srv, i, &q), 0);
    ck_assert_int_eq(sscanf(q.path, "/s/%d", &idx), 1);
    int has = ts_request_header(&q, "Last-Event-ID", lei, sizeof lei);
    if (idx == late) {
      ck_assert_msg(!has, "the late request has a Last-Event-ID");
      continue;
    }
    ck_assert_msg(idx >= 0 && idx < n && has == 1, "request %d (%s) has no Last-Event-ID", i,
                  q.path);
    snprintf(want, sizeof want, "%d", g.recs[idx].last_at_error);
    ck_assert_str_eq(lei, want);
  }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* One reset stream leaves its neighbours alone                             */
/* ------------------------------------------------------------------------ */

/* 50 streams (10 under valgrind) on one connection; the backend ends one
 * stream's connection with a RST, nghttpx resets that h2 stream; it
 * resumes, the others see nothing. */
static void one_reset(int tls) {
  int n = small() ? 10 : 50, victim = n / 2;
  start_proxy(tls, 3, NULL);
  add_sources(n, tls ? EVENTSOURCE_HTTP_VERSION_2 : EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE,
              0);
  WAIT_FOR(MIN_OF(last) >= 3, "not every source got 3 events (the slowest has %d)", MIN_OF(last));
  /* On one connection (each on its own where h2c does not share). */
  expect_connections(ts_nghttpx_client_connections(g.px), tls, n, 100, 0, "client connections");
  expect_connections((long)eventsource_multi_stat(g.multi, EVENTSOURCE_MULTI_STAT_CONNECTIONS), tls,
                     n, 100, 0, "EVENTSOURCE_MULTI_STAT_CONNECTIONS");

  rec *v = &g.recs[victim];
  feed_update(&g.feed, 0, victim, 0);
  WAIT_FOR(v->errors >= 1 && v->opens >= 2, "the reset stream did not come back (%d errors, %d opens)",
           v->errors, v->opens);
  ck_assert_msg(v->error == EVENTSOURCE_ERR_NETWORK, "the reset stream's error: %s (curl %d)",
                eventsource_strerror(v->error), v->curl_code);
  ck_assert_int_eq(v->curl_code, CURLE_HTTP2_STREAM);
  feed_update(&g.feed, 6, -1, 0);
  WAIT_FOR(MIN_OF(last) >= 6, "not every source got 6 events (the slowest has %d)", MIN_OF(last));
  expect_exact(6);
  ck_assert_int_eq(v->errors, 1);
  ck_assert_int_eq(v->opens, 2);
  ck_assert_uint_eq(eventsource_stat(v->es, EVENTSOURCE_STAT_ATTEMPTS), 2);
  for (int i = 0; i < n; i++) {
    if (i == victim)
      continue;
    rec *r = &g.recs[i];
    ck_assert_msg(r->errors == 0 && r->opens == 1, "neighbour %d: %d errors (curl %d), %d opens", i,
                  r->errors, r->curl_code, r->opens);
    ck_assert_uint_eq(eventsource_stat(r->es, EVENTSOURCE_STAT_ATTEMPTS), 1);
  }
}

START_TEST(test_reset_tls) { one_reset(1); }
END_TEST

START_TEST(test_reset_h2c) { one_reset(0); }
END_TEST

/* ------------------------------------------------------------------------ */
/* Silent streams behind a proxy                                            */
/* ------------------------------------------------------------------------ */

/* nghttpx resets a stream whose backend was silent for its
 * --backend-read-timeout (default 1 min; 1 s here): RST_STREAM
 * INTERNAL_ERROR, which the source sees as NETWORK (curl 92); it resumes
 * with no gap. */
START_TEST(test_silent_stream_cut) {
  const char *fast[] = {"--backend-read-timeout=1s", NULL};
  start_proxy(1, 3, fast);
  add_sources(4, EVENTSOURCE_HTTP_VERSION_2, 0);
  WAIT_FOR(MIN_OF(last) >= 3, "not every source got 3 events");
  WAIT_FOR(MIN_OF(errors) >= 1 && MIN_OF(opens) >= 2, "nghttpx did not cut the silent streams");
  for (int i = 0; i < g.n; i++)
    ck_assert_msg(g.recs[i].error == EVENTSOURCE_ERR_NETWORK && g.recs[i].curl_code == CURLE_HTTP2_STREAM,
                  "source %d: %s (curl %d)", i, eventsource_strerror(g.recs[i].error),
                  g.recs[i].curl_code);
  feed_update(&g.feed, 6, -1, 0);
  WAIT_FOR(MIN_OF(last) >= 6, "not every source got 6 events");
  expect_exact(6);
}
END_TEST

/* Heartbeats (a comment every 300 ms) keep them: each source gets 8 of
 * them (2.4 s, more than twice the proxy's 1 s) with no error. */
START_TEST(test_heartbeats_keep_streams) {
  const char *fast[] = {"--backend-read-timeout=1s", NULL};
  start_proxy(1, 3, fast);
  g.feed.heartbeat_ms = 300;
  add_sources(4, EVENTSOURCE_HTTP_VERSION_2, 0);
  WAIT_FOR(MIN_OF(comments) >= 8, "the heartbeats did not arrive (the fewest: %d)", MIN_OF(comments));
  expect_exact(3);
  for (int i = 0; i < g.n; i++)
    ck_assert_msg(g.recs[i].errors == 0 && g.recs[i].opens == 1, "source %d: %d errors (curl %d)", i,
                  g.recs[i].errors, g.recs[i].curl_code);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* sse-cat                                                                  */
/* ------------------------------------------------------------------------ */

/* sse-cat FLAG [--json] --stats --max-events 3 URL [--cacert CA]: its
 * output is the 3 events (with --json after the open record, which shows
 * the version), its statistics say version want. */
static void sse_cat(const char *flag, int tls, long want, int json) {
  char path[4096], version[32], expected[512];
  const char *dir = getenv("ES_BUILD_DIR");
  ck_assert_msg(dir != NULL && *dir != '\0', "ES_BUILD_DIR is not set");
  snprintf(path, sizeof path, "%s/demo/sse-cat", dir);
  start_proxy(tls, 3, NULL);
  const char *argv[16];
  int n = 0;
  argv[n++] = path;
  argv[n++] = flag;
  if (json)
    argv[n++] = "--json";
  argv[n++] = "--stats";
  argv[n++] = "--max-events";
  argv[n++] = "3";
  argv[n++] = ts_nghttpx_url(g.px, "/s/7");
  if (tls) {
    argv[n++] = "--cacert";
    argv[n++] = ts_tls_ca_file(g.tls);
  }
  argv[n] = NULL;
  if (json)
    snprintf(expected, sizeof expected,
             "{\"kind\":\"open\",\"http_version\":%ld,\"reused\":false}\n"
             "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"7 1\",\"id\":\"1\"}\n"
             "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"7 2\",\"id\":\"2\"}\n"
             "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"7 3\",\"id\":\"3\"}\n",
             want);
  else
    snprintf(expected, sizeof expected, "event: message\nid: 1\ndata: 7 1\n\n"
                                        "event: message\nid: 2\ndata: 7 2\n\n"
                                        "event: message\nid: 3\ndata: 7 3\n\n");
  char *out = NULL, *err = NULL;
  int st = ts_run_capture(argv, WAIT_MS, &out, &err);
  snprintf(version, sizeof version, "\nhttp_version=%ld\n", want);
  int ok_out = out && strcmp(out, expected) == 0;
  int ok_version = err && strstr(err, version) != NULL;
  char msg[4096];
  snprintf(msg, sizeof msg, "sse-cat %s: status %d\nstdout:\n%s\nexpected:\n%s\nstderr:\n%s", flag,
           st, out ? out : "", expected, err ? err : "");
  free(out);
  free(err);
  ck_assert_msg(st == 0 && ok_out && ok_version, "%s", msg);
}

START_TEST(test_ssecat_http2) { sse_cat("--http2", 1, 20, 0); }
END_TEST

START_TEST(test_ssecat_http2_json) { sse_cat("--http2", 1, 20, 1); }
END_TEST

START_TEST(test_ssecat_http11) { sse_cat("--http1.1", 1, 11, 0); }
END_TEST

START_TEST(test_ssecat_prior_knowledge) { sse_cat("--http2-prior-knowledge", 0, 20, 1); }
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *http2_nghttpx_suite(void) {
  Suite *s = suite_create("http2_nghttpx");
  TCase *tc = tcase_create("nghttpx");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_run_h2_tls);
  tcase_add_test(tc, test_run_default_tls);
  tcase_add_test(tc, test_run_http11_tls);
  tcase_add_test(tc, test_run_h2c);
  tcase_add_test(tc, test_run_h2_on_http_is_http11);
  tcase_add_test(tc, test_many_sources_tls);
  tcase_add_test(tc, test_many_sources_h2c);
  tcase_add_test(tc, test_max_streams_tls);
  tcase_add_test(tc, test_server_fewer_streams_tls);
  tcase_add_test(tc, test_host_connection_limit);
  tcase_add_test(tc, test_restart_tls);
  tcase_add_test(tc, test_restart_h2c);
  tcase_add_test(tc, test_goaway_tls);
  tcase_add_test(tc, test_reset_tls);
  tcase_add_test(tc, test_reset_h2c);
  tcase_add_test(tc, test_silent_stream_cut);
  tcase_add_test(tc, test_heartbeats_keep_streams);
  tcase_add_test(tc, test_ssecat_http2);
  tcase_add_test(tc, test_ssecat_http2_json);
  tcase_add_test(tc, test_ssecat_http11);
  tcase_add_test(tc, test_ssecat_prior_knowledge);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(http2_nghttpx_suite(), CK_NORMAL); }
