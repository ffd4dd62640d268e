/*
 * test_stats.c - statistics: eventsource_stat() and eventsource_multi_stat()
 * after scripted streams (events, bytes, comments, dropped events,
 * attempts, opens, reconnects), the values of the current connection (time
 * to the first byte and event, HTTP version, reused connection) set and
 * reset per connection, reading them from another thread while events flow,
 * the multi's totals, and NULL or unknown values.
 *
 * Against the scripted loopback server (test/support/ts_source.h), and for
 * the reused connection a small keep-alive server of this file's own (the
 * scripted one closes every connection after its answer).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "eventsource.h"
#include "support/sse_server.h"
#include "support/ts_source.h"
#include "support/ts_util.h"

#define NSTATS ((int)EVENTSOURCE_STAT_REQUESTS + 1)

/* ------------------------------------------------------------------------ */
/* Snapshots: every statistic, read by a listener at each notification      */
/* ------------------------------------------------------------------------ */

typedef struct snap {
  eventsource_kind_t kind;
  uint64_t v[NSTATS];
} snap;

typedef struct snaps {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  snap s[64];
  int n;
} snaps;

static void snaps_init(snaps *p) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
}

static void snaps_fini(snaps *p) {
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
}

/* Listener: all the statistics as they are when the notification comes. */
static void on_snap(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  snaps *p = ud;
  pthread_mutex_lock(&p->mu);
  if (p->n < 64) {
    snap *s = &p->s[p->n++];
    s->kind = eventsource_event_kind(ev);
    for (int i = 0; i < NSTATS; i++)
      s->v[i] = eventsource_stat(es, (eventsource_stat_t)i);
  }
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* Waits for the nth (0-based) snapshot of that kind; returns a copy. */
static snap snaps_wait(snaps *p, eventsource_kind_t kind, int nth) {
  struct timespec dl;
  ts_deadline_in(&dl, TS_WAIT_MS);
  pthread_mutex_lock(&p->mu);
  for (;;) {
    int seen = 0;
    for (int i = 0; i < p->n; i++)
      if (p->s[i].kind == kind && seen++ == nth) {
        snap s = p->s[i];
        pthread_mutex_unlock(&p->mu);
        return s;
      }
    if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT)
      break;
  }
  pthread_mutex_unlock(&p->mu);
  ck_abort_msg("no snapshot %d of kind %d", nth, (int)kind);
  snap none = {0};
  return none;
}

static void add_snaps(eventsource_t *es, snaps *p) {
  ck_assert_int_eq(eventsource_add_any_listener(es, on_snap, p, NULL), EVENTSOURCE_OK);
}

#define STAT(es, name) eventsource_stat((es), EVENTSOURCE_STAT_##name)

/* ------------------------------------------------------------------------ */
/* Counters                                                                 */
/* ------------------------------------------------------------------------ */

/* Events, comments, bytes, a dropped event, an id over its limit (no drop),
 * and one reconnect: every counter after the streams. */
START_TEST(test_counters_after_streams) {
  static const char *one[] = {"data: a\n\n", ": c1\n", "data: b\n\n",
                              "data: 0123456789abcdefghij\n\n", /* over 16: dropped */
                              ": c2\n", "id: 0123456789\ndata: c\n\n", /* id too long */
                              NULL};
  static const char two[] = "data: d\n\n: c3\n";
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  size_t bytes = 0;
  for (int i = 0; one[i]; i++) {
    ts_script_writes(sc, one[i]);
    bytes += strlen(one[i]);
  }
  ts_script_close(sc);
  ts_add_stream(&c, 1, two, NULL);
  bytes += strlen(two);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_max_event(es, 16), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_max_last_event_id(es, 4), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_comment_listener(es, ts_on_comment, &c, NULL),
                   EVENTSOURCE_OK);
  ts_set_retry_exact(es, 0);
  for (int i = 0; i < NSTATS; i++)
    ck_assert_uint_eq(eventsource_stat(es, (eventsource_stat_t)i), 0);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 4);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_COMMENT, 3);
  /* the comment after the last event is the last thing of the stream */
  ck_assert_uint_eq(STAT(es, EVENTS), 4);
  ck_assert_uint_eq(STAT(es, COMMENTS), 3);
  ck_assert_uint_eq(STAT(es, DROPPED), 1);
  ck_assert_uint_eq(STAT(es, BYTES), bytes);
  ck_assert_uint_eq(STAT(es, ATTEMPTS), 2);
  ck_assert_uint_eq(STAT(es, REQUESTS), 2);
  ck_assert_uint_eq(STAT(es, OPENS), 2);
  ck_assert_uint_eq(STAT(es, RECONNECTS), 1);
  ck_assert_uint_eq(STAT(es, HTTP_VERSION), 11);
  ck_assert_uint_eq(STAT(es, CONNECTION_REUSED), 0);
  /* both TOO_LARGE notifications were made, one dropped an event */
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 3); /* 2 TOO_LARGE + the EOF */
  ck_assert_uint_eq(STAT(es, DROPPED), 1);
  ts_ctx_fini(&c);
}
END_TEST

/* A restart is an attempt but no reconnect; a redirect is one attempt of
 * two requests. */
START_TEST(test_restart_and_redirect) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_status(&c, 307, "Temporary Redirect", "Location: /b", NULL, NULL);
  ts_add_stream(&c, 1, "data: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/a");
  ts_ctx_start(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_uint_eq(STAT(es, ATTEMPTS), 1);
  ck_assert_uint_eq(STAT(es, REQUESTS), 2);
  ck_assert_uint_eq(STAT(es, OPENS), 1);
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_OK);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_uint_eq(STAT(es, ATTEMPTS), 2);
  ck_assert_uint_eq(STAT(es, REQUESTS), 3);
  ck_assert_uint_eq(STAT(es, OPENS), 2);
  ck_assert_uint_eq(STAT(es, RECONNECTS), 0);
  ck_assert_uint_eq(STAT(es, EVENTS), 2);
  ts_ctx_fini(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The current connection                                                   */
/* ------------------------------------------------------------------------ */

/* Time to the first byte and to the first event: set on each connection,
 * 0 again while the next one waits for its response. */
START_TEST(test_ttfb_and_first_event) {
  ts_ctx c;
  snaps p;
  snaps_init(&p);
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_sleep(sc, 150); /* before the first byte */
  ts_script_headers(sc);
  ts_script_sleep(sc, 100); /* before the first event */
  ts_script_writes(sc, "data: a\n\n");
  ts_script_writes(sc, "data: b\n\n");
  ts_script_close(sc);
  sc = ts_server_add_script(c.srv);
  ts_script_gate(sc, 1);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: c\n\n");
  ts_script_hold(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  add_snaps(es, &p);
  ts_set_retry_exact(es, 0);
  ts_ctx_run(&c);

  snap open = snaps_wait(&p, EVENTSOURCE_KIND_OPEN, 0);
  ck_assert_uint_ge(open.v[EVENTSOURCE_STAT_TTFB_MS], 150);
  ck_assert_uint_lt(open.v[EVENTSOURCE_STAT_TTFB_MS], TS_WAIT_MS);
  ck_assert_uint_eq(open.v[EVENTSOURCE_STAT_FIRST_EVENT_MS], 0); /* not yet */
  ck_assert_uint_eq(open.v[EVENTSOURCE_STAT_HTTP_VERSION], 11);
  snap a = snaps_wait(&p, EVENTSOURCE_KIND_MESSAGE, 0);
  uint64_t first = a.v[EVENTSOURCE_STAT_FIRST_EVENT_MS];
  ck_assert_uint_ge(first, 250);
  ck_assert_uint_ge(first, open.v[EVENTSOURCE_STAT_TTFB_MS] + 100);
  ck_assert_uint_eq(a.v[EVENTSOURCE_STAT_TTFB_MS], open.v[EVENTSOURCE_STAT_TTFB_MS]);
  snap b = snaps_wait(&p, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_uint_eq(b.v[EVENTSOURCE_STAT_FIRST_EVENT_MS], first); /* the first only */
  snap eof = snaps_wait(&p, EVENTSOURCE_KIND_ERROR, 0);
  ck_assert_uint_eq(eof.v[EVENTSOURCE_STAT_FIRST_EVENT_MS], first); /* kept after the end */

  /* the second request is in, its answer held back at the gate: the values
   * of the current connection are back to 0 */
  ck_assert_int_eq(ts_server_wait_requests(c.srv, 2, TS_WAIT_MS), 2);
  ck_assert_uint_eq(STAT(es, TTFB_MS), 0);
  ck_assert_uint_eq(STAT(es, FIRST_EVENT_MS), 0);
  ck_assert_uint_eq(STAT(es, HTTP_VERSION), 0);
  ck_assert_uint_eq(STAT(es, OPENS), 1);
  ts_server_release(c.srv, 1);
  snap cc = snaps_wait(&p, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_uint_ge(cc.v[EVENTSOURCE_STAT_TTFB_MS], 1);
  ck_assert_uint_ge(cc.v[EVENTSOURCE_STAT_FIRST_EVENT_MS], cc.v[EVENTSOURCE_STAT_TTFB_MS]);
  ck_assert_uint_eq(cc.v[EVENTSOURCE_STAT_HTTP_VERSION], 11);
  ck_assert_uint_eq(cc.v[EVENTSOURCE_STAT_OPENS], 2);
  ck_assert_uint_eq(cc.v[EVENTSOURCE_STAT_RECONNECTS], 1);
  ts_ctx_fini(&c);
  snaps_fini(&p);
}
END_TEST

/* The HTTP version of each response: 1.0, 1.1, and a refused 1.0 one
 * (set on its error notification, with the time to its first byte). */
START_TEST(test_http_version) {
  ts_ctx c;
  snaps p;
  snaps_init(&p);
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_writes(sc, "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
  ts_script_writes(sc, "data: a\n\n");
  ts_script_close(sc);
  ts_add_stream(&c, 0, "data: b\n\n", NULL);
  sc = ts_server_add_script(c.srv);
  ts_script_writes(sc, "HTTP/1.0 500 Oops\r\nContent-Length: 0\r\n\r\n");
  ts_script_close(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  add_snaps(es, &p);
  ts_set_retry_exact(es, 0);
  ts_ctx_run(&c);
  ck_assert_uint_eq(snaps_wait(&p, EVENTSOURCE_KIND_MESSAGE, 0).v[EVENTSOURCE_STAT_HTTP_VERSION],
                    10);
  ck_assert_uint_eq(snaps_wait(&p, EVENTSOURCE_KIND_MESSAGE, 1).v[EVENTSOURCE_STAT_HTTP_VERSION],
                    11);
  ts_expect_run_ended(&c, EVENTSOURCE_ERR_HTTP_STATUS);
  snap refused = snaps_wait(&p, EVENTSOURCE_KIND_ERROR, 2);
  ck_assert_uint_eq(refused.v[EVENTSOURCE_STAT_HTTP_VERSION], 10);
  ck_assert_uint_ge(refused.v[EVENTSOURCE_STAT_TTFB_MS], 1);
  ck_assert_uint_eq(refused.v[EVENTSOURCE_STAT_FIRST_EVENT_MS], 0);
  ck_assert_uint_eq(STAT(es, HTTP_VERSION), 10);
  ck_assert_uint_eq(STAT(es, ATTEMPTS), 3);
  ck_assert_uint_eq(STAT(es, OPENS), 2);
  ck_assert_uint_eq(STAT(es, RECONNECTS), 2);
  ts_ctx_fini(&c);
  snaps_fini(&p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Reused connections: a keep-alive server                                  */
/* ------------------------------------------------------------------------ */

/* Answers every request on a connection with a stream of one event and a
 * Content-Length, and keeps the connection open for the next request; the
 * answer to request `hold_from` (1-based) on has no length and is held
 * open. Counts connections and requests. */
typedef struct ka_server {
  int lfd, port, stop[2];
  int hold_from;
  pthread_t thr;
  _Atomic int connections, requests;
} ka_server;

static void ka_serve(ka_server *k, int fd) {
  char buf[4096];
  size_t len = 0;
  struct pollfd pf[2] = {{fd, POLLIN, 0}, {k->stop[0], POLLIN, 0}};
  for (;;) {
    if (poll(pf, 2, -1) < 0 || pf[1].revents)
      return;
    ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (n <= 0)
      return;
    len += (size_t)n;
    buf[len] = '\0';
    char *end;
    while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
      int nreq = atomic_fetch_add(&k->requests, 1) + 1;
      char resp[256];
      if (nreq >= k->hold_from)
        snprintf(resp, sizeof resp,
                 "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                 "data: k%d\n\n",
                 nreq);
      else
        snprintf(resp, sizeof resp,
                 "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 "Content-Length: %d\r\n\r\ndata: k%d\n\n",
                 nreq < 10 ? 10 : 11, nreq);
      if (send(fd, resp, strlen(resp), MSG_NOSIGNAL) < 0)
        return;
      size_t used = (size_t)(end + 4 - buf);
      memmove(buf, buf + used, len - used + 1);
      len -= used;
    }
  }
}

static void *ka_thread(void *arg) {
  ka_server *k = arg;
  int fds[8];
  int nfds = 0;
  for (;;) {
    struct pollfd pf[2] = {{k->lfd, POLLIN, 0}, {k->stop[0], POLLIN, 0}};
    if (poll(pf, 2, -1) < 0 || pf[1].revents)
      break;
    int fd = accept(k->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    atomic_fetch_add(&k->connections, 1);
    if (nfds < 8)
      fds[nfds++] = fd;
    /* one connection at a time: the source has one */
    ka_serve(k, fd);
  }
  for (int i = 0; i < nfds; i++)
    close(fds[i]);
  return NULL;
}

static void ka_start(ka_server *k, int hold_from) {
  memset(k, 0, sizeof *k);
  k->hold_from = hold_from;
  k->lfd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(k->lfd, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(k->lfd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(k->lfd, 8), 0);
  socklen_t al = sizeof a;
  ck_assert_int_eq(getsockname(k->lfd, (struct sockaddr *)&a, &al), 0);
  k->port = ntohs(a.sin_port);
  ck_assert_int_eq(pipe(k->stop), 0);
  ck_assert_int_eq(pthread_create(&k->thr, NULL, ka_thread, k), 0);
}

static void ka_stop(ka_server *k) {
  ck_assert_int_eq(write(k->stop[1], "x", 1), 1);
  pthread_join(k->thr, NULL);
  close(k->lfd);
  close(k->stop[0]);
  close(k->stop[1]);
}

/* libcurl keeps the connection of a response with a Content-Length that the
 * server leaves open, and the reconnect to the same server reuses it: the
 * first connection is new (0), the next two are reused (1), one TCP
 * connection in all. A stream that ends with its connection leaves nothing
 * to reuse (test_counters_after_streams: 0 after the reconnect). */
START_TEST(test_reused_connection) {
  ka_server k;
  ka_start(&k, 3);
  ts_ctx c;
  snaps p;
  snaps_init(&p);
  ts_ctx_init(&c);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", k.port);
  eventsource_t *es = ts_ctx_new_es_url(&c, url);
  add_snaps(es, &p);
  ts_set_retry_exact(es, 0);
  ts_ctx_run(&c);
  snap s1 = snaps_wait(&p, EVENTSOURCE_KIND_MESSAGE, 0);
  snap s2 = snaps_wait(&p, EVENTSOURCE_KIND_MESSAGE, 1);
  snap s3 = snaps_wait(&p, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_uint_eq(s1.v[EVENTSOURCE_STAT_CONNECTION_REUSED], 0);
  ck_assert_uint_eq(s2.v[EVENTSOURCE_STAT_CONNECTION_REUSED], 1);
  ck_assert_uint_eq(s3.v[EVENTSOURCE_STAT_CONNECTION_REUSED], 1);
  ck_assert_uint_eq(s3.v[EVENTSOURCE_STAT_OPENS], 3);
  ck_assert_uint_eq(s3.v[EVENTSOURCE_STAT_RECONNECTS], 2);
  ck_assert_uint_eq(s3.v[EVENTSOURCE_STAT_HTTP_VERSION], 11);
  ck_assert_int_eq(atomic_load(&k.connections), 1);
  ck_assert_int_eq(atomic_load(&k.requests), 3);
  ts_ctx_fini(&c);
  snaps_fini(&p);
  ka_stop(&k);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Another thread                                                           */
/* ------------------------------------------------------------------------ */

typedef struct reader {
  eventsource_t *es;
  _Atomic int stop;
  long reads;
  int went_down;
  uint64_t last_events, last_bytes;
} reader;

static void *reader_thread(void *arg) {
  reader *r = arg;
  while (!atomic_load(&r->stop)) {
    uint64_t e = eventsource_stat(r->es, EVENTSOURCE_STAT_EVENTS);
    uint64_t b = eventsource_stat(r->es, EVENTSOURCE_STAT_BYTES);
    (void)eventsource_stat(r->es, EVENTSOURCE_STAT_FIRST_EVENT_MS);
    (void)eventsource_stat(r->es, EVENTSOURCE_STAT_TTFB_MS);
    if (e < r->last_events || b < r->last_bytes)
      r->went_down = 1;
    r->last_events = e;
    r->last_bytes = b;
    r->reads++;
    sched_yield(); /* valgrind runs one thread at a time: let the loop run */
  }
  return NULL;
}

/* A thread polls the counters while the loop thread delivers 20000 events
 * (1000 under valgrind):
 * they never go down and end at the exact totals. */
START_TEST(test_read_from_another_thread) {
  enum { PER = 100 };
  const int WRITES = ts_small_scale() ? 10 : 200; /* valgrind: fewer */
  static const char ev[] = "data: xyz\n\n";
  char *chunk = malloc(PER * (sizeof ev - 1) + 1);
  ck_assert_ptr_nonnull(chunk);
  chunk[0] = '\0';
  for (int i = 0; i < PER; i++)
    strcat(chunk, ev);
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  for (int i = 0; i < WRITES; i++)
    ts_script_writes(sc, chunk);
  ts_script_hold(sc);
  free(chunk);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  reader r;
  memset(&r, 0, sizeof r);
  r.es = es;
  pthread_t thr;
  ck_assert_int_eq(pthread_create(&thr, NULL, reader_thread, &r), 0);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, (size_t)WRITES * PER);
  atomic_store(&r.stop, 1);
  pthread_join(thr, NULL);
  ck_assert_int_eq(r.went_down, 0);
  ck_assert_int_gt(r.reads, 0);
  ck_assert_uint_eq(STAT(es, EVENTS), (uint64_t)WRITES * PER);
  ck_assert_uint_eq(STAT(es, BYTES), (uint64_t)WRITES * PER * (sizeof ev - 1));
  ck_assert_uint_le(r.last_events, (uint64_t)WRITES * PER);
  ck_assert_uint_ge(STAT(es, FIRST_EVENT_MS), 1);
  ts_ctx_fini(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The multi handle                                                         */
/* ------------------------------------------------------------------------ */

static void poll_until_events(eventsource_multi_t *m, eventsource_t *a, eventsource_t *b,
                              uint64_t n) {
  long until = ts_now_ms() + TS_WAIT_MS;
  while ((STAT(a, EVENTS) < n || STAT(b, EVENTS) < n) && ts_now_ms() < until)
    ck_assert_int_eq(eventsource_multi_poll(m, 50), EVENTSOURCE_OK);
  ck_assert_uint_ge(STAT(a, EVENTS), n);
  ck_assert_uint_ge(STAT(b, EVENTS), n);
}

#define MSTAT(m, name) eventsource_multi_stat((m), EVENTSOURCE_MULTI_STAT_##name)

START_TEST(test_multi_totals) {
  static const char body[] = "data: a\n\n: keep\ndata: b\n\n";
  ts_server *srv = ts_start_server();
  for (int i = 0; i < 2; i++) {
    ts_script *sc = ts_server_add_script(srv);
    ts_script_headers(sc);
    ts_script_writes(sc, body);
    ts_script_hold(sc);
  }
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  for (int i = 0; i <= (int)EVENTSOURCE_MULTI_STAT_REQUESTS; i++)
    ck_assert_uint_eq(eventsource_multi_stat(m, (eventsource_multi_stat_t)i), 0);
  eventsource_t *a = NULL, *b = NULL;
  ck_assert_int_eq(eventsource_new(&a, ts_server_url(srv, "/a")), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_new(&b, ts_server_url(srv, "/b")), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_add(m, a), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_add(m, b), EVENTSOURCE_OK);
  ck_assert_uint_eq(MSTAT(m, ADDED), 2);
  ck_assert_uint_eq(MSTAT(m, SOURCES), 2);
  ck_assert_uint_eq(MSTAT(m, ACTIVE), 2);
  poll_until_events(m, a, b, 2);
  /* the comment comes before the second event: everything is in */
  ck_assert_uint_eq(MSTAT(m, EVENTS), 4);
  ck_assert_uint_eq(MSTAT(m, COMMENTS), 2);
  ck_assert_uint_eq(MSTAT(m, BYTES), 2 * (sizeof body - 1));
  ck_assert_uint_eq(MSTAT(m, OPENS), 2);
  ck_assert_uint_eq(MSTAT(m, ATTEMPTS), 2);
  ck_assert_uint_eq(MSTAT(m, REQUESTS), 2);
  ck_assert_uint_eq(MSTAT(m, RECONNECTS), 0);
  ck_assert_uint_eq(MSTAT(m, DROPPED), 0);
  ck_assert_uint_eq(MSTAT(m, CONNECTIONS), 2); /* HTTP/1.1: one each */
  ck_assert_uint_eq(MSTAT(m, BYTES), STAT(a, BYTES) + STAT(b, BYTES));
  /* a source that leaves: its counts stay in the totals */
  ck_assert_int_eq(eventsource_multi_remove(m, a), EVENTSOURCE_OK);
  ck_assert_uint_eq(MSTAT(m, SOURCES), 1);
  ck_assert_uint_eq(MSTAT(m, ACTIVE), 1);
  ck_assert_uint_eq(MSTAT(m, ADDED), 2);
  ck_assert_uint_eq(MSTAT(m, EVENTS), 4);
  eventsource_close(b);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  ck_assert_uint_eq(MSTAT(m, ACTIVE), 0);
  ck_assert_uint_eq(MSTAT(m, SOURCES), 1);
  /* unknown values and NULL */
  ck_assert_uint_eq(eventsource_multi_stat(m, (eventsource_multi_stat_t)(EVENTSOURCE_MULTI_STAT_CONNECTIONS + 1)), 0);
  ck_assert_uint_eq(eventsource_multi_stat(m, (eventsource_multi_stat_t)-1), 0);
  ck_assert_uint_eq(eventsource_multi_stat(NULL, EVENTSOURCE_MULTI_STAT_EVENTS), 0);
  eventsource_multi_free(m);
  eventsource_free(a);
  eventsource_free(b);
  ts_server_stop(srv);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Arguments                                                                */
/* ------------------------------------------------------------------------ */

START_TEST(test_null_and_unknown) {
  ck_assert_uint_eq(eventsource_stat(NULL, EVENTSOURCE_STAT_EVENTS), 0);
  ck_assert_uint_eq(eventsource_stat(NULL, (eventsource_stat_t)12345), 0);
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1:1/"), EVENTSOURCE_OK);
  for (int i = 0; i < NSTATS; i++)
    ck_assert_uint_eq(eventsource_stat(es, (eventsource_stat_t)i), 0);
  ck_assert_uint_eq(eventsource_stat(es, (eventsource_stat_t)NSTATS), 0);
  ck_assert_uint_eq(eventsource_stat(es, (eventsource_stat_t)-1), 0);
  ck_assert_uint_eq(eventsource_stat(es, (eventsource_stat_t)0x7fffffff), 0);
  eventsource_free(es);
}
END_TEST

static Suite *stats_suite(void) {
  Suite *s = suite_create("stats");
  TCase *tc = tcase_create("stats");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_counters_after_streams);
  tcase_add_test(tc, test_restart_and_redirect);
  tcase_add_test(tc, test_ttfb_and_first_event);
  tcase_add_test(tc, test_http_version);
  tcase_add_test(tc, test_reused_connection);
  tcase_add_test(tc, test_read_from_another_thread);
  tcase_add_test(tc, test_multi_totals);
  tcase_add_test(tc, test_null_and_unknown);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(stats_suite(), CK_ENV); }
