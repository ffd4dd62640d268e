/*
 * test_adapters.c - the event-loop adapters (include/eventsource_poll.h,
 * eventsource_libuv.h, eventsource_libevent.h) driving real streams against
 * loopback servers. Every scenario runs once per adapter (a loop test: _i is
 * the adapter): events on several sources, reconnection, read timeout, close
 * from a listener and from another thread, a 404 that leaves the other
 * sources alone, attach errors, detaching before freeing the multi. Each
 * run must end by itself once every source is closed.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventsource.h"
#include "eventsource_libevent.h"
#include "eventsource_libuv.h"
#include "eventsource_poll.h"
#include "support/sse_server.h"
#include "support/ts_util.h"

#define WAIT_MS 10000

/* ------------------------------------------------------------------------ */
/* The three adapters behind one interface                                  */
/* ------------------------------------------------------------------------ */

typedef struct driver {
  const char *name;
  void (*attach)(eventsource_multi_t *m);
  void (*run)(eventsource_multi_t *m);          /* until no source is active */
  void (*step)(eventsource_multi_t *m, int ms); /* one wait of at most ms */
  void (*detach)(void);                         /* stop driving */
  void (*finish)(void);                         /* after multi free and detach */
} driver;

/* poll */
static eventsource_poll_t g_poll;

static void poll_attach(eventsource_multi_t *m) {
  ck_assert_int_eq(eventsource_poll_attach(&g_poll, m), EVENTSOURCE_OK);
}
static void poll_run(eventsource_multi_t *m) {
  ck_assert_int_eq(eventsource_poll_run(&g_poll), EVENTSOURCE_OK);
  ck_assert_uint_eq(eventsource_multi_active(m), 0);
}
static void poll_step(eventsource_multi_t *m, int ms) {
  (void)m;
  ck_assert_int_eq(eventsource_poll_once(&g_poll, ms), EVENTSOURCE_OK);
}
static void poll_detach(void) { eventsource_poll_detach(&g_poll); }
static void poll_finish(void) {
  /* Detached: nothing is driven any more. */
  ck_assert_int_eq(eventsource_poll_once(&g_poll, 0), EVENTSOURCE_ERR_INVALID_ARGUMENT);
}

/* libuv */
static uv_loop_t g_loop;
static eventsource_libuv_t *g_uv;

static void uv_attach(eventsource_multi_t *m) {
  ck_assert_int_eq(uv_loop_init(&g_loop), 0);
  g_uv = eventsource_libuv_attach(m, &g_loop);
  ck_assert_ptr_nonnull(g_uv);
}
static void uv_run_all(eventsource_multi_t *m) {
  /* No loop of ours around it: uv_run returns once no source is active. */
  uv_run(&g_loop, UV_RUN_DEFAULT);
  ck_assert_uint_eq(eventsource_multi_active(m), 0);
  ck_assert_int_eq(eventsource_libuv_error(g_uv), EVENTSOURCE_OK);
}
static void uv_step_timer_cb(uv_timer_t *t) { (void)t; }
static void uv_step(eventsource_multi_t *m, int ms) {
  (void)m;
  uv_timer_t t;
  uv_timer_init(&g_loop, &t);
  uv_timer_start(&t, uv_step_timer_cb, (uint64_t)ms, 0);
  uv_run(&g_loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&g_loop, UV_RUN_NOWAIT); /* the close callback, before t goes away */
}
static void uv_detach(void) { eventsource_libuv_detach(g_uv); }
static void uv_finish(void) {
  /* The close callbacks free the context; then the loop holds nothing. */
  uv_run(&g_loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&g_loop), 0);
  g_uv = NULL;
}

/* libevent */
static struct event_base *g_base;
static eventsource_libevent_t *g_ev;

static void ev_attach(eventsource_multi_t *m) {
  g_base = event_base_new();
  ck_assert_ptr_nonnull(g_base);
  g_ev = eventsource_libevent_attach(m, g_base);
  ck_assert_ptr_nonnull(g_ev);
}
static void ev_run(eventsource_multi_t *m) {
  while (eventsource_multi_active(m) > 0)
    ck_assert_int_ge(event_base_loop(g_base, EVLOOP_ONCE), 0);
  ck_assert_int_eq(eventsource_libevent_error(g_ev), EVENTSOURCE_OK);
}
static void ev_step_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
}
static void ev_step(eventsource_multi_t *m, int ms) {
  (void)m;
  struct event *t = evtimer_new(g_base, ev_step_cb, NULL);
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  evtimer_add(t, &tv);
  ck_assert_int_ge(event_base_loop(g_base, EVLOOP_ONCE), 0);
  event_free(t);
}
static void ev_detach(void) { eventsource_libevent_detach(g_ev); }
static void ev_finish(void) {
  event_base_free(g_base);
  g_base = NULL;
  g_ev = NULL;
}

static const driver drivers[] = {
    {"poll", poll_attach, poll_run, poll_step, poll_detach, poll_finish},
    {"libuv", uv_attach, uv_run_all, uv_step, uv_detach, uv_finish},
    {"libevent", ev_attach, ev_run, ev_step, ev_detach, ev_finish},
};
#define NDRIVERS ((int)(sizeof drivers / sizeof drivers[0]))

/* The usual order: free the multi, then detach, then let the loop finish. */
static void teardown(const driver *d, eventsource_multi_t *m) {
  eventsource_multi_free(m);
  d->detach();
  d->finish();
}

/* Steps until *flag is non-zero or the deadline passes. */
static void step_until(const driver *d, eventsource_multi_t *m, const int *flag) {
  long dl = ts_now_ms() + WAIT_MS;
  while (!*flag && ts_now_ms() < dl)
    d->step(m, 50);
}

/* ------------------------------------------------------------------------ */
/* A probe: what one source saw                                             */
/* ------------------------------------------------------------------------ */

typedef struct probe {
  eventsource_t *es;
  int opens, messages, errors;
  eventsource_error_t last_error;
  long last_status;
  int last_will_reconnect;
  long last_reconnect_ms;
  char last_data[64];
  int close_after;                /* close after this many messages */
  int close_on_error;             /* close on an error notification */
  eventsource_t *also_close;      /* closed together with this one */
  ts_server *release_on_error;    /* opens gate 1 of it on an error */
  ts_count *opened;             /* counts opens for another thread */
} probe;

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  probe *p = ud;
  switch (eventsource_event_kind(ev)) {
  case EVENTSOURCE_KIND_OPEN:
    p->opens++;
    if (p->opened)
      ts_count_inc(p->opened);
    break;
  case EVENTSOURCE_KIND_ERROR:
    p->errors++;
    p->last_error = eventsource_event_error(ev);
    p->last_status = eventsource_event_http_status(ev);
    p->last_will_reconnect = eventsource_event_will_reconnect(ev);
    p->last_reconnect_ms = eventsource_event_reconnect_ms(ev);
    if (p->release_on_error)
      ts_server_release(p->release_on_error, 1);
    if (p->close_on_error) {
      eventsource_close(es);
      if (p->also_close)
        eventsource_close(p->also_close);
    }
    break;
  case EVENTSOURCE_KIND_MESSAGE: {
    size_t len;
    const char *d = eventsource_event_data(ev, &len);
    snprintf(p->last_data, sizeof p->last_data, "%.*s", (int)len, d);
    p->messages++;
    if (p->close_after && p->messages >= p->close_after) {
      eventsource_close(es);
      if (p->also_close)
        eventsource_close(p->also_close);
    }
    break;
  }
  default:
    break;
  }
}

static eventsource_t *add_source(eventsource_multi_t *m, const char *url, probe *p) {
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, url), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_any_listener(es, on_any, p, NULL), EVENTSOURCE_OK);
  p->es = es;
  ck_assert_int_eq(eventsource_multi_add(m, es), EVENTSOURCE_OK);
  return es;
}

static eventsource_multi_t *new_multi(const driver *d) {
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  d->attach(m);
  return m;
}

/* ------------------------------------------------------------------------ */
/* Scenarios                                                                */
/* ------------------------------------------------------------------------ */

/* Five sources, three events each; each closes itself after the third (a
 * close from a listener), and the run ends. */
START_TEST(test_events) {
  enum { N = 5 };
  const driver *d = &drivers[_i];
  ts_server *srv = ts_events_server(3);
  eventsource_multi_t *m = new_multi(d);
  probe p[N];
  memset(p, 0, sizeof p);
  for (int i = 0; i < N; i++) {
    p[i].close_after = 3;
    add_source(m, ts_server_url(srv, "/events"), &p[i]);
  }
  d->run(m);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(p[i].opens, 1);
    ck_assert_int_eq(p[i].messages, 3);
    ck_assert_str_eq(p[i].last_data, "e3");
    ck_assert_int_eq(p[i].errors, 0);
    ck_assert_int_eq(eventsource_ready_state(p[i].es), EVENTSOURCE_CLOSED);
  }
  ck_assert_int_eq(ts_server_wait_client_closes(srv, N, WAIT_MS), N);
  teardown(d, m);
  for (int i = 0; i < N; i++)
    eventsource_free(p[i].es);
  ts_server_stop(srv);
}
END_TEST

/* The server ends the stream after one event: each source waits its retry
 * time (the adapter's timer), reconnects with Last-Event-ID, gets the
 * second event and closes. */
START_TEST(test_reconnect) {
  enum { N = 3 };
  const driver *d = &drivers[_i];
  eventsource_multi_t *m = new_multi(d);
  ts_server *srv[N];
  probe p[N];
  memset(p, 0, sizeof p);
  for (int i = 0; i < N; i++) {
    srv[i] = ts_start_server();
    ts_script *sc = ts_server_add_script(srv[i]);
    ts_script_headers(sc);
    ts_script_writes(sc, "id: 7\ndata: first\n\n");
    ts_script_close(sc);
    sc = ts_server_add_script(srv[i]);
    ts_script_headers(sc);
    ts_script_writes(sc, "data: second\n\n");
    ts_script_hold(sc);
    p[i].close_after = 2;
    eventsource_t *es = add_source(m, ts_server_url(srv[i], "/r"), &p[i]);
    ck_assert_int_eq(eventsource_set_retry(es, 150), EVENTSOURCE_OK);
    ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  }
  long t0 = ts_now_ms();
  d->run(m);
  ck_assert_int_ge(ts_now_ms() - t0, 150); /* the retry time was waited for */
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(p[i].opens, 2);
    ck_assert_int_eq(p[i].messages, 2);
    ck_assert_str_eq(p[i].last_data, "second");
    ck_assert_int_eq(p[i].errors, 1);
    ck_assert_int_eq(p[i].last_error, EVENTSOURCE_ERR_EOF);
    ck_assert_int_eq(p[i].last_will_reconnect, 1);
    ck_assert_int_eq(p[i].last_reconnect_ms, 150);
    ck_assert_int_eq(ts_server_request_count(srv[i]), 2);
    ts_request r;
    char id[32];
    ck_assert_int_eq(ts_server_get_request(srv[i], 1, &r), 0);
    ck_assert_int_eq(ts_request_header(&r, "Last-Event-ID", id, sizeof id), 1);
    ck_assert_str_eq(id, "7");
  }
  teardown(d, m);
  for (int i = 0; i < N; i++) {
    eventsource_free(p[i].es);
    ts_server_stop(srv[i]);
  }
}
END_TEST

/* A silent connection hits its read timeout (the adapter's timer); on that
 * error the listener closes it and its silent neighbour. */
START_TEST(test_read_timeout) {
  const driver *d = &drivers[_i];
  ts_server *srv = ts_events_server(1);
  eventsource_multi_t *m = new_multi(d);
  probe a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  eventsource_t *es = add_source(m, ts_server_url(srv, "/a"), &a);
  ck_assert_int_eq(eventsource_set_read_timeout(es, 200), EVENTSOURCE_OK);
  add_source(m, ts_server_url(srv, "/b"), &b);
  a.close_on_error = 1;
  a.also_close = b.es;
  long t0 = ts_now_ms();
  d->run(m);
  ck_assert_int_ge(ts_now_ms() - t0, 200);
  ck_assert_int_eq(a.opens, 1);
  ck_assert_int_eq(a.messages, 1);
  ck_assert_int_eq(a.errors, 1);
  ck_assert_int_eq(a.last_error, EVENTSOURCE_ERR_READ_TIMEOUT);
  ck_assert_int_eq(a.last_will_reconnect, 1);
  ck_assert_int_eq(b.opens, 1);
  ck_assert_int_eq(b.errors, 0);
  ck_assert_int_eq(eventsource_ready_state(b.es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(ts_server_wait_client_closes(srv, 2, WAIT_MS), 2);
  teardown(d, m);
  eventsource_free(a.es);
  eventsource_free(b.es);
  ts_server_stop(srv);
}
END_TEST

/* Five open, silent sources closed from another thread: the multi's wakeup
 * descriptor wakes the loop, and the run ends. */
START_TEST(test_close_from_thread) {
  enum { N = 5 };
  const driver *d = &drivers[_i];
  ts_server *srv = ts_events_server(0);
  eventsource_multi_t *m = new_multi(d);
  probe p[N];
  memset(p, 0, sizeof p);
  eventsource_t *es[N];
  ts_closer c = {.es = es, .n = N};
  ts_count_init(&c.opened);
  for (int i = 0; i < N; i++) {
    p[i].opened = &c.opened;
    es[i] = add_source(m, ts_server_url(srv, "/t"), &p[i]);
  }
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, ts_close_thread, &c), 0);
  d->run(m);
  pthread_join(t, NULL);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(p[i].opens, 1);
    ck_assert_int_eq(p[i].errors, 0);
    ck_assert_int_eq(eventsource_ready_state(p[i].es), EVENTSOURCE_CLOSED);
  }
  ck_assert_int_eq(ts_server_wait_client_closes(srv, N, WAIT_MS), N);
  teardown(d, m);
  for (int i = 0; i < N; i++)
    eventsource_free(p[i].es);
  ts_count_destroy(&c.opened);
  ts_server_stop(srv);
}
END_TEST

/* One source gets 404 and fails (no reconnection); the four others, held
 * at a gate until that failure, go on with their events. */
START_TEST(test_404_isolated) {
  enum { N = 4 };
  const driver *d = &drivers[_i];
  ts_server *ok = ts_start_server(), *bad = ts_start_server();
  ts_script *sc = ts_server_add_script(ok);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: one\n\n");
  ts_script_gate(sc, 1);
  ts_script_writes(sc, "data: two\n\n");
  ts_script_hold(sc);
  sc = ts_server_add_script(bad);
  ts_script_status(sc, 404, "Not Found", NULL);
  ts_script_close(sc);

  eventsource_multi_t *m = new_multi(d);
  probe p[N], f;
  memset(p, 0, sizeof p);
  memset(&f, 0, sizeof f);
  for (int i = 0; i < N; i++) {
    p[i].close_after = 2;
    add_source(m, ts_server_url(ok, "/ok"), &p[i]);
  }
  f.release_on_error = ok;
  add_source(m, ts_server_url(bad, "/missing"), &f);
  d->run(m);
  ck_assert_int_eq(f.opens, 0);
  ck_assert_int_eq(f.errors, 1);
  ck_assert_int_eq(f.last_error, EVENTSOURCE_ERR_HTTP_STATUS);
  ck_assert_int_eq(f.last_status, 404);
  ck_assert_int_eq(f.last_will_reconnect, 0);
  ck_assert_int_eq(eventsource_ready_state(f.es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(ts_server_request_count(bad), 1);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(p[i].opens, 1);
    ck_assert_int_eq(p[i].messages, 2);
    ck_assert_str_eq(p[i].last_data, "two");
    ck_assert_int_eq(p[i].errors, 0);
  }
  teardown(d, m);
  for (int i = 0; i < N; i++)
    eventsource_free(p[i].es);
  eventsource_free(f.es);
  ts_server_stop(ok);
  ts_server_stop(bad);
}
END_TEST

/* Detaching before the multi is freed: the multi is not driven any more,
 * freeing it afterwards (which calls the adapter back) is safe, and nothing
 * leaks (valgrind) or stays in the loop (uv_loop_close). */
START_TEST(test_detach_first) {
  const driver *d = &drivers[_i];
  ts_server *srv = ts_events_server(1);
  eventsource_multi_t *m = new_multi(d);
  probe p;
  memset(&p, 0, sizeof p);
  add_source(m, ts_server_url(srv, "/d"), &p);
  step_until(d, m, &p.messages);
  ck_assert_int_eq(p.messages, 1);
  d->detach();
  ck_assert_uint_eq(eventsource_multi_active(m), 1);
  eventsource_multi_free(m); /* removes the open source: a socket REMOVE */
  d->finish();
  ck_assert_int_eq(ts_server_wait_client_closes(srv, 1, WAIT_MS), 1);
  ck_assert_int_eq(eventsource_ready_state(p.es), EVENTSOURCE_OPEN);
  eventsource_free(p.es);
  ts_server_stop(srv);
}
END_TEST

/* A source added from the loop after everything went quiet starts (the
 * adapter's wakeup path), and is run to the end. */
START_TEST(test_add_later) {
  const driver *d = &drivers[_i];
  ts_server *srv = ts_events_server(2);
  eventsource_multi_t *m = new_multi(d);
  probe a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.close_after = 2;
  add_source(m, ts_server_url(srv, "/a"), &a);
  d->run(m);
  ck_assert_int_eq(a.messages, 2);
  b.close_after = 2;
  add_source(m, ts_server_url(srv, "/b"), &b);
  step_until(d, m, &b.opens);
  ck_assert_int_eq(b.opens, 1);
  d->run(m);
  ck_assert_int_eq(b.messages, 2);
  teardown(d, m);
  eventsource_free(a.es);
  eventsource_free(b.es);
  ts_server_stop(srv);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Attaching                                                                */
/* ------------------------------------------------------------------------ */

START_TEST(test_attach_errors) {
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1:1/"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_add(m, es), EVENTSOURCE_OK);

  /* Sources already added: every adapter refuses, and leaves nothing. */
  eventsource_poll_t p;
  ck_assert_int_eq(eventsource_poll_attach(&p, m), EVENTSOURCE_ERR_STATE);
  ck_assert_int_eq(eventsource_poll_attach(NULL, m), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_poll_attach(&p, NULL), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_poll_once(NULL, 0), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_poll_run(NULL), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  eventsource_poll_detach(NULL);
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_ptr_null(eventsource_libuv_attach(m, &loop));
  ck_assert_ptr_null(eventsource_libuv_attach(NULL, &loop));
  ck_assert_ptr_null(eventsource_libuv_attach(m, NULL));
  eventsource_libuv_detach(NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  struct event_base *base = event_base_new();
  ck_assert_ptr_nonnull(base);
  ck_assert_ptr_null(eventsource_libevent_attach(m, base));
  ck_assert_ptr_null(eventsource_libevent_attach(NULL, base));
  ck_assert_ptr_null(eventsource_libevent_attach(m, NULL));
  eventsource_libevent_detach(NULL);
  ck_assert_int_eq(eventsource_multi_remove(m, es), EVENTSOURCE_OK);

  /* Emptied again, m takes one adapter, and only one. */
  ck_assert_int_eq(eventsource_poll_attach(&p, m), EVENTSOURCE_OK);
  eventsource_poll_t p2;
  ck_assert_int_eq(eventsource_poll_attach(&p2, m), EVENTSOURCE_ERR_STATE);
  ck_assert_ptr_null(eventsource_libevent_attach(m, base));
  /* The multi's own wait is refused once callbacks are installed. */
  ck_assert_int_eq(eventsource_multi_poll(m, 0), EVENTSOURCE_ERR_STATE);
  eventsource_multi_free(m);
  eventsource_poll_detach(&p);
  event_base_free(base);
  eventsource_free(es);
}
END_TEST

/* The application's socket callback refuses to watch one connection: only
 * that source fails (CALLBACK, no reconnection); the other gets its event,
 * and libcurl's multi handle stays usable. */
static int refuse_calls, refuse_fd = -1;
static int refusing_sock_cb(eventsource_multi_t *m, int fd, int what, void *ud,
                            void *sp) {
  /* The first call announces the wakeup descriptor; refuse the next one, the
   * first connection's socket. */
  if (++refuse_calls == 2 && what != EVENTSOURCE_POLL_REMOVE) {
    refuse_fd = fd;
    return -1;
  }
  return eventsource_poll_socket_cb_(m, fd, what, ud, sp);
}

START_TEST(test_socket_callback_refuses) {
  ts_server *srv = ts_events_server(1);
  eventsource_multi_t *m = NULL;
  eventsource_poll_t p;
  memset(&p, 0, sizeof p);
  refuse_calls = 0;
  refuse_fd = -1;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  /* The poll adapter's own callbacks, with the socket one wrapped. */
  p.multi = m;
  p.wakefd = -1;
  p.attached = 1;
  ck_assert_int_eq(eventsource_multi_set_socket_callback(m, refusing_sock_cb, &p),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_set_timer_callback(m, eventsource_poll_timer_cb_, &p),
                   EVENTSOURCE_OK);
  probe a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.close_after = b.close_after = 1;
  add_source(m, ts_server_url(srv, "/a"), &a);
  ck_assert_int_eq(eventsource_multi_poll(m, 0), EVENTSOURCE_ERR_STATE); /* callbacks set */
  ck_assert_int_eq(eventsource_poll_run(&p), EVENTSOURCE_OK);
  add_source(m, ts_server_url(srv, "/b"), &b);
  ck_assert_int_eq(eventsource_poll_run(&p), EVENTSOURCE_OK);
  ck_assert_int_ge(refuse_fd, 0);
  ck_assert_int_eq(a.errors, 1);
  ck_assert_int_eq(a.last_error, EVENTSOURCE_ERR_CALLBACK);
  ck_assert_int_eq(a.last_will_reconnect, 0);
  ck_assert_int_eq(a.messages, 0);
  ck_assert_int_eq(eventsource_ready_state(a.es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(b.errors, 0);
  ck_assert_int_eq(b.messages, 1);
  ck_assert_uint_eq(eventsource_multi_active(m), 0);
  eventsource_multi_free(m);
  eventsource_poll_detach(&p);
  eventsource_free(a.es);
  eventsource_free(b.es);
  ts_server_stop(srv);
}
END_TEST

static Suite *adapters_suite(void) {
  Suite *s = suite_create("adapters");
  TCase *tc = tcase_create("streams");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_events, 0, NDRIVERS);
  tcase_add_loop_test(tc, test_reconnect, 0, NDRIVERS);
  tcase_add_loop_test(tc, test_read_timeout, 0, NDRIVERS);
  tcase_add_loop_test(tc, test_close_from_thread, 0, NDRIVERS);
  tcase_add_loop_test(tc, test_404_isolated, 0, NDRIVERS);
  tcase_add_loop_test(tc, test_detach_first, 0, NDRIVERS);
  tcase_add_loop_test(tc, test_add_later, 0, NDRIVERS);
  suite_add_tcase(s, tc);

  tc = tcase_create("attach");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_attach_errors);
  tcase_add_test(tc, test_socket_callback_refuses);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(adapters_suite(), CK_NORMAL); }
