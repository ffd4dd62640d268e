/*
 * test_multi.c - the multi handle on its own (no adapter): several sources
 * on one thread with eventsource_multi_run() and eventsource_multi_poll(),
 * adding and removing during a run and from listeners, waking the loop from
 * another thread, and a thousand streams on one thread.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "eventsource.h"
#include "../bench/mass_server.h"
#include "support/sse_server.h"
#include "support/ts_util.h"

#define WAIT_MS 10000

/* ------------------------------------------------------------------------ */
/* A probe: what one source saw                                             */
/* ------------------------------------------------------------------------ */

typedef struct probe {
  eventsource_t *es;
  eventsource_multi_t *multi;
  int opens, messages, errors;
  eventsource_error_t last_error;
  int close_after;          /* close the source after this many messages */
  char last_data[64];
  /* actions on the first message */
  eventsource_t *add_on_first;    /* eventsource_multi_add() it */
  eventsource_t *remove_on_first; /* eventsource_multi_remove() it */
  int remove_self_on_first;
  int free_self_on_first;
  eventsource_error_t poll_rc;    /* eventsource_multi_poll() from a listener */
  /* shared counters (thread-safe), may be NULL */
  ts_count *opened_counter;
} probe;

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  probe *p = ud;
  switch (eventsource_event_kind(ev)) {
  case EVENTSOURCE_KIND_OPEN:
    p->opens++;
    if (p->opened_counter)
      ts_count_inc(p->opened_counter);
    break;
  case EVENTSOURCE_KIND_ERROR:
    p->errors++;
    p->last_error = eventsource_event_error(ev);
    break;
  case EVENTSOURCE_KIND_MESSAGE: {
    size_t len;
    const char *d = eventsource_event_data(ev, &len);
    snprintf(p->last_data, sizeof p->last_data, "%.*s", (int)len, d);
    p->messages++;
    if (p->messages == 1) {
      if (p->multi)
        p->poll_rc = eventsource_multi_poll(p->multi, 0);
      if (p->add_on_first)
        ck_assert_int_eq(eventsource_multi_add(p->multi, p->add_on_first), EVENTSOURCE_OK);
      if (p->remove_on_first)
        ck_assert_int_eq(eventsource_multi_remove(p->multi, p->remove_on_first),
                         EVENTSOURCE_OK);
      if (p->remove_self_on_first)
        ck_assert_int_eq(eventsource_multi_remove(p->multi, es), EVENTSOURCE_OK);
      if (p->free_self_on_first) {
        p->es = NULL;
        eventsource_free(es);
        return;
      }
    }
    if (p->close_after && p->messages >= p->close_after)
      eventsource_close(es);
    break;
  }
  default:
    break;
  }
}

static eventsource_t *new_source(const char *url, probe *p) {
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, url), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_any_listener(es, on_any, p, NULL), EVENTSOURCE_OK);
  p->es = es;
  return es;
}

static eventsource_multi_t *new_multi(void) {
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  return m;
}

/* A new source for url (see new_source) added to m. */
static void add_source(eventsource_multi_t *m, const char *url, probe *p) {
  ck_assert_int_eq(eventsource_multi_add(m, new_source(url, p)), EVENTSOURCE_OK);
}

/* Polls m until *flag is non-zero (or the deadline). */
static void poll_until(eventsource_multi_t *m, const int *flag, int timeout_ms) {
  long dl = ts_now_ms() + timeout_ms;
  while (!*flag && ts_now_ms() < dl)
    ck_assert_int_eq(eventsource_multi_poll(m, 50), EVENTSOURCE_OK);
}

/* ------------------------------------------------------------------------ */
/* Several sources                                                          */
/* ------------------------------------------------------------------------ */

START_TEST(test_run_several) {
  enum { N = 5 };
  ts_server *srv = ts_events_server(3);
  eventsource_multi_t *m = new_multi();
  probe p[N];
  memset(p, 0, sizeof p);
  for (int i = 0; i < N; i++) {
    p[i].close_after = 3;
    add_source(m, ts_server_url(srv, "/s"), &p[i]);
  }
  ck_assert_uint_eq(eventsource_multi_active(m), N);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  ck_assert_uint_eq(eventsource_multi_active(m), 0);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(p[i].opens, 1);
    ck_assert_int_eq(p[i].messages, 3);
    ck_assert_str_eq(p[i].last_data, "e3");
    ck_assert_int_eq(p[i].errors, 0);
    ck_assert_int_eq(eventsource_ready_state(p[i].es), EVENTSOURCE_CLOSED);
  }
  ck_assert_int_eq(ts_server_wait_client_closes(srv, N, WAIT_MS), N);
  ck_assert_int_eq(ts_server_request_count(srv), N);
  eventsource_multi_free(m);
  for (int i = 0; i < N; i++)
    eventsource_free(p[i].es);
  ts_server_stop(srv);
}
END_TEST

/* A multi whose sources are all closed has nothing to run. */
START_TEST(test_run_empty) {
  eventsource_multi_t *m = new_multi();
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_poll(m, 0), EVENTSOURCE_OK);
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1:1/"), EVENTSOURCE_OK);
  eventsource_close(es);
  ck_assert_int_eq(eventsource_multi_add(m, es), EVENTSOURCE_ERR_STATE);
  ck_assert_int_eq(eventsource_multi_poll(NULL, 0), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_multi_run(NULL), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_multi_add(m, NULL), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_multi_remove(m, es), EVENTSOURCE_ERR_NOT_FOUND);
  eventsource_free(es);
  eventsource_multi_free(m);
  eventsource_multi_free(NULL);
}
END_TEST

/* eventsource_multi_poll(m, 0) never blocks, even with a connection open
 * and silent; the work still gets done over successive calls. */
START_TEST(test_poll_nonblocking) {
  ts_server *srv = ts_server_start();
  ts_script *sc = ts_server_add_script(srv);
  ts_script_headers(sc);
  ts_script_gate(sc, 1);
  ts_script_writes(sc, "data: late\n\n");
  ts_script_hold(sc);
  eventsource_multi_t *m = new_multi();
  long t0 = ts_now_ms();
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(eventsource_multi_poll(m, 0), EVENTSOURCE_OK);
  ck_assert_int_lt(ts_now_ms() - t0, 1000);

  probe p;
  memset(&p, 0, sizeof p);
  p.multi = m;
  p.poll_rc = -1;
  add_source(m, ts_server_url(srv, "/"), &p);
  /* Only non-blocking steps until the connection is open. */
  long dl = ts_now_ms() + WAIT_MS;
  while (p.opens == 0 && ts_now_ms() < dl)
    ck_assert_int_eq(eventsource_multi_poll(m, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(p.opens, 1);
  /* Open and silent: each step returns at once. */
  t0 = ts_now_ms();
  for (int i = 0; i < 20; i++)
    ck_assert_int_eq(eventsource_multi_poll(m, 0), EVENTSOURCE_OK);
  ck_assert_int_lt(ts_now_ms() - t0, 1000);
  ck_assert_int_eq(p.messages, 0);

  ts_server_release(srv, 1);
  poll_until(m, &p.messages, WAIT_MS);
  ck_assert_str_eq(p.last_data, "late");
  /* From a listener, polling is refused. */
  ck_assert_int_eq(p.poll_rc, EVENTSOURCE_ERR_STATE);

  eventsource_close(p.es);
  dl = ts_now_ms() + WAIT_MS;
  while (eventsource_multi_active(m) > 0 && ts_now_ms() < dl)
    ck_assert_int_eq(eventsource_multi_poll(m, 0), EVENTSOURCE_OK);
  ck_assert_uint_eq(eventsource_multi_active(m), 0);
  ck_assert_int_eq(ts_server_wait_client_closes(srv, 1, WAIT_MS), 1);
  eventsource_multi_free(m);
  eventsource_free(p.es);
  ts_server_stop(srv);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Adding and removing during a run                                         */
/* ------------------------------------------------------------------------ */

/* A's listener adds B; B closes itself and A after its events. */
START_TEST(test_add_from_listener) {
  ts_server *srv = ts_events_server(2);
  eventsource_multi_t *m = new_multi();
  probe a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.multi = b.multi = m;
  new_source(ts_server_url(srv, "/a"), &a);
  new_source(ts_server_url(srv, "/b"), &b);
  a.add_on_first = b.es;
  a.close_after = 2;
  b.close_after = 2;
  ck_assert_int_eq(eventsource_multi_add(m, a.es), EVENTSOURCE_OK);
  ck_assert_uint_eq(eventsource_multi_active(m), 1);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  ck_assert_int_eq(a.messages, 2);
  ck_assert_int_eq(b.opens, 1);
  ck_assert_int_eq(b.messages, 2);
  ck_assert_int_eq(ts_server_request_count(srv), 2);
  /* A source belongs to one multi; a closed one cannot be added. */
  ck_assert_int_eq(eventsource_multi_add(m, b.es), EVENTSOURCE_ERR_STATE);
  eventsource_multi_free(m);
  eventsource_free(a.es);
  eventsource_free(b.es);
  ts_server_stop(srv);
}
END_TEST

/* A's listener removes B and then A itself: the run ends with both still
 * open (removed, not closed); A added again reconnects. */
START_TEST(test_remove_from_listener) {
  ts_server *a_srv = ts_events_server(2), *b_srv = ts_events_server(0);
  eventsource_multi_t *m = new_multi();
  probe a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.multi = b.multi = m;
  new_source(ts_server_url(a_srv, "/a"), &a);
  new_source(ts_server_url(b_srv, "/b"), &b);
  ck_assert_int_eq(eventsource_multi_add(m, b.es), EVENTSOURCE_OK);
  /* B connected first, so A's removal hits an open transfer. */
  poll_until(m, &b.opens, WAIT_MS);
  ck_assert_int_eq(b.opens, 1);
  a.remove_on_first = b.es;
  a.remove_self_on_first = 1;
  ck_assert_int_eq(eventsource_multi_add(m, a.es), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  ck_assert_uint_eq(eventsource_multi_active(m), 0);
  /* Removal takes effect when the listener returns: the second event of the
   * same chunk may or may not have been delivered, never more. */
  ck_assert_int_ge(a.messages, 1);
  ck_assert_int_le(a.messages, 2);
  ck_assert_int_eq(eventsource_ready_state(a.es), EVENTSOURCE_OPEN);
  ck_assert_int_eq(eventsource_ready_state(b.es), EVENTSOURCE_OPEN);
  ck_assert_int_eq(eventsource_multi_remove(m, b.es), EVENTSOURCE_ERR_NOT_FOUND);
  ck_assert_int_eq(ts_server_wait_client_closes(a_srv, 1, WAIT_MS), 1);
  ck_assert_int_eq(ts_server_wait_client_closes(b_srv, 1, WAIT_MS), 1);

  /* Added again, A reconnects; this time it closes itself. */
  a.remove_on_first = NULL;
  a.remove_self_on_first = 0;
  a.messages = 0;
  a.close_after = 2;
  ck_assert_int_eq(eventsource_multi_add(m, a.es), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  ck_assert_int_eq(a.opens, 2);
  ck_assert_int_eq(a.messages, 2);
  ck_assert_int_eq(eventsource_ready_state(a.es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(ts_server_request_count(a_srv), 2);
  eventsource_multi_free(m);
  eventsource_free(a.es);
  eventsource_free(b.es);
  ts_server_stop(a_srv);
  ts_server_stop(b_srv);
}
END_TEST

/* eventsource_free() from a source's own listener, in a multi run: freed
 * when the listener returns, the others go on. */
START_TEST(test_free_from_listener) {
  ts_server *srv = ts_events_server(2);
  eventsource_multi_t *m = new_multi();
  probe a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  new_source(ts_server_url(srv, "/a"), &a);
  new_source(ts_server_url(srv, "/b"), &b);
  a.free_self_on_first = 1;
  b.close_after = 2;
  ck_assert_int_eq(eventsource_multi_add(m, a.es), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_add(m, b.es), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  ck_assert_ptr_null(a.es);
  ck_assert_int_eq(a.messages, 1);
  ck_assert_int_eq(b.messages, 2);
  ck_assert_int_eq(ts_server_wait_client_closes(srv, 2, WAIT_MS), 2);
  eventsource_multi_free(m);
  eventsource_free(b.es);
  ts_server_stop(srv);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Other threads                                                            */
/* ------------------------------------------------------------------------ */

struct waker {
  eventsource_multi_t *m;
  atomic_int done;
};

static void *wake_thread(void *arg) {
  struct waker *w = arg;
  atomic_store(&w->done, 1);
  ck_assert_int_eq(eventsource_multi_wakeup(w->m), EVENTSOURCE_OK);
  return NULL;
}

/* eventsource_multi_wakeup() from another thread ends a wait without limit. */
START_TEST(test_wakeup_thread) {
  ts_server *srv = ts_events_server(0);
  eventsource_multi_t *m = new_multi();
  probe p;
  memset(&p, 0, sizeof p);
  add_source(m, ts_server_url(srv, "/"), &p);
  poll_until(m, &p.opens, WAIT_MS);
  ck_assert_int_eq(p.opens, 1);
  for (int round = 0; round < 3; round++) {
    struct waker w = {m, 0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, wake_thread, &w), 0);
    /* Nothing else will happen: only the wakeup can end these waits. */
    while (!atomic_load(&w.done))
      ck_assert_int_eq(eventsource_multi_poll(m, -1), EVENTSOURCE_OK);
    pthread_join(t, NULL);
  }
  ck_assert_int_eq(eventsource_multi_wakeup(NULL), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_ready_state(p.es), EVENTSOURCE_OPEN);
  eventsource_multi_free(m);
  eventsource_free(p.es);
  ts_server_stop(srv);
}
END_TEST

/* eventsource_close() from another thread wakes eventsource_multi_run(). */
START_TEST(test_close_from_thread) {
  enum { N = 3 };
  ts_server *srv = ts_events_server(1);
  eventsource_multi_t *m = new_multi();
  probe p[N];
  memset(p, 0, sizeof p);
  eventsource_t *es[N];
  ts_closer c = {.es = es, .n = N};
  ts_count_init(&c.opened);
  for (int i = 0; i < N; i++) {
    p[i].opened_counter = &c.opened;
    es[i] = new_source(ts_server_url(srv, "/"), &p[i]);
    ck_assert_int_eq(eventsource_multi_add(m, es[i]), EVENTSOURCE_OK);
  }
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, ts_close_thread, &c), 0);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  pthread_join(t, NULL);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(p[i].opens, 1);
    ck_assert_int_eq(eventsource_ready_state(p[i].es), EVENTSOURCE_CLOSED);
    ck_assert_int_eq(p[i].errors, 0);
  }
  ck_assert_int_eq(ts_server_wait_client_closes(srv, N, WAIT_MS), N);
  eventsource_multi_free(m);
  for (int i = 0; i < N; i++)
    eventsource_free(p[i].es);
  ts_count_destroy(&c.opened);
  ts_server_stop(srv);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A thousand streams on one thread                                         */
/* ------------------------------------------------------------------------ */

/* Raises RLIMIT_NOFILE's soft limit to what n descriptors need; 0 on
 * success, else fills why. */
static int ensure_nofile(long n, char *why, size_t whylen) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    snprintf(why, whylen, "getrlimit(RLIMIT_NOFILE) failed");
    return -1;
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= (rlim_t)n)
    return 0;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)n) {
    snprintf(why, whylen,
             "RLIMIT_NOFILE hard limit is %lu, this test needs %ld descriptors "
             "(raise it, e.g. `ulimit -Hn 4096` as root, or run with "
             "ES_TEST_SCALE=small)",
             (unsigned long)rl.rlim_max, n);
    return -1;
  }
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    snprintf(why, whylen, "setrlimit(RLIMIT_NOFILE, %lu) failed",
             (unsigned long)rl.rlim_max);
    return -1;
  }
  return 0;
}

typedef struct mass_probe {
  int opens, messages, errors;
} mass_probe;

static int mass_opens, mass_closed_by_listener;

static void on_mass(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  mass_probe *p = ud;
  switch (eventsource_event_kind(ev)) {
  case EVENTSOURCE_KIND_OPEN:
    p->opens++;
    mass_opens++;
    break;
  case EVENTSOURCE_KIND_ERROR:
    p->errors++;
    break;
  case EVENTSOURCE_KIND_MESSAGE:
    if (++p->messages == 3) {
      eventsource_close(es);
      mass_closed_by_listener++;
    }
    break;
  default:
    break;
  }
}

/* Opens N streams (1000; 100 under ES_TEST_SCALE=small) against one
 * loopback server, delivers three events on every one, and each closes
 * itself after the third: the run ends when all are closed. */
START_TEST(test_thousand_streams) {
  const int n = ts_small_scale() ? 100 : 1000;
  char why[256];
  /* Client and server sockets live in this process, plus a margin for the
   * multi, the server and the runtime. */
  if (ensure_nofile(2L * n + 128, why, sizeof why) != 0)
    ck_abort_msg("%s", why);
  mass_server *srv = mass_server_start();
  ck_assert_ptr_nonnull(srv);
  eventsource_multi_t *m = new_multi();
  eventsource_t **es = calloc((size_t)n, sizeof *es);
  mass_probe *p = calloc((size_t)n, sizeof *p);
  ck_assert_ptr_nonnull(es);
  ck_assert_ptr_nonnull(p);
  mass_opens = mass_closed_by_listener = 0;
  long t0 = ts_now_ms();
  for (int i = 0; i < n; i++) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/s/%d", mass_server_port(srv), i);
    ck_assert_int_eq(eventsource_new(&es[i], url), EVENTSOURCE_OK);
    ck_assert_int_eq(eventsource_add_any_listener(es[i], on_mass, &p[i], NULL),
                     EVENTSOURCE_OK);
    ck_assert_int_eq(eventsource_multi_add(m, es[i]), EVENTSOURCE_OK);
  }
  ck_assert_uint_eq(eventsource_multi_active(m), (size_t)n);
  long dl = ts_now_ms() + 60000;
  while (mass_opens < n && ts_now_ms() < dl)
    ck_assert_int_eq(eventsource_multi_poll(m, 100), EVENTSOURCE_OK);
  long t_open = ts_now_ms() - t0;
  ck_assert_int_eq(mass_opens, n);
  ck_assert_int_eq(mass_server_streams_open(srv), n);

  long t1 = ts_now_ms();
  static const char ev[] = "data: hello\n\n";
  ck_assert_int_eq(mass_server_broadcast(srv, ev, sizeof ev - 1, 3), n);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  long t_events = ts_now_ms() - t1;
  ck_assert_int_eq(mass_closed_by_listener, n);
  for (int i = 0; i < n; i++) {
    ck_assert_int_eq(p[i].opens, 1);
    ck_assert_int_eq(p[i].messages, 3);
    ck_assert_int_eq(p[i].errors, 0);
    ck_assert_int_eq(eventsource_ready_state(es[i]), EVENTSOURCE_CLOSED);
  }
  ck_assert_int_eq(mass_server_wait_closed(srv, n, 60000), n);
  fprintf(stderr, "test_thousand_streams: %d streams opened in %ld ms, %d events in %ld ms\n",
          n, t_open, 3 * n, t_events);
  eventsource_multi_free(m);
  for (int i = 0; i < n; i++)
    eventsource_free(es[i]);
  free(es);
  free(p);
  mass_server_stop(srv);
}
END_TEST

/* Removal from another thread while the loop runs: the removal is queued,
 * the loop wakes and detaches the sources; eventsource_multi_run() returns
 * since none is left, and the removed sources were not closed. */
typedef struct remover {
  eventsource_multi_t *m;
  eventsource_t **es;
  int n;
  ts_count opened;
  eventsource_error_t rc[4];
} remover;

static void *remove_thread(void *arg) {
  remover *r = arg;
  ts_count_wait(&r->opened, r->n);
  for (int i = 0; i < r->n; i++)
    r->rc[i] = eventsource_multi_remove(r->m, r->es[i]);
  return NULL;
}

START_TEST(test_remove_from_thread) {
  enum { N = 3 };
  ts_server *srv = ts_events_server(1);
  eventsource_multi_t *m = new_multi();
  probe p[N];
  memset(p, 0, sizeof p);
  eventsource_t *es[N];
  remover r = {.m = m, .es = es, .n = N};
  ts_count_init(&r.opened);
  for (int i = 0; i < N; i++) {
    p[i].opened_counter = &r.opened;
    es[i] = new_source(ts_server_url(srv, "/"), &p[i]);
    ck_assert_int_eq(eventsource_multi_add(m, es[i]), EVENTSOURCE_OK);
  }
  /* One step on this thread first, so that it is the loop thread. */
  ck_assert_int_eq(eventsource_multi_poll(m, 0), EVENTSOURCE_OK);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, remove_thread, &r), 0);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  pthread_join(t, NULL);
  ck_assert_uint_eq(eventsource_multi_active(m), 0);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(r.rc[i], EVENTSOURCE_OK);
    ck_assert_int_eq(p[i].opens, 1);
    ck_assert_int_eq(p[i].errors, 0);
    /* Removed, not closed: readyState stays, and it is no longer in m. */
    ck_assert_int_eq(eventsource_ready_state(es[i]), EVENTSOURCE_OPEN);
    ck_assert_int_eq(eventsource_multi_remove(m, es[i]), EVENTSOURCE_ERR_NOT_FOUND);
  }
  /* Their connections were dropped. */
  ck_assert_int_eq(ts_server_wait_client_closes(srv, N, WAIT_MS), N);
  eventsource_multi_free(m);
  for (int i = 0; i < N; i++)
    eventsource_free(es[i]);
  ts_count_destroy(&r.opened);
  ts_server_stop(srv);
}
END_TEST

/* eventsource_multi_add() on the loop thread between steps while another
 * thread removes other sources: both change the multi's list, so add must
 * take the step lock that remove takes (make tsan reports the race
 * otherwise; a corrupt list loses or keeps sources, caught below). */
enum { CHURN_N = 64 };

typedef struct churn {
  eventsource_multi_t *m;
  eventsource_t **es;
  eventsource_error_t rc[CHURN_N];
} churn;

static void *remove_all(void *arg) {
  churn *c = arg;
  for (int i = 0; i < CHURN_N; i++)
    c->rc[i] = eventsource_multi_remove(c->m, c->es[i]);
  return NULL;
}

START_TEST(test_add_while_removed_from_thread) {
  eventsource_multi_t *m = new_multi();
  probe p[2 * CHURN_N];
  memset(p, 0, sizeof p);
  eventsource_t *gone[CHURN_N], *kept[CHURN_N];
  /* port 9 (discard): nothing connects, no step runs while they churn */
  for (int i = 0; i < CHURN_N; i++) {
    gone[i] = new_source("http://127.0.0.1:9/", &p[i]);
    kept[i] = new_source("http://127.0.0.1:9/", &p[CHURN_N + i]);
    ck_assert_int_eq(eventsource_multi_add(m, gone[i]), EVENTSOURCE_OK);
  }
  /* one step on this thread first, so that it is the loop thread */
  ck_assert_int_eq(eventsource_multi_poll(m, 0), EVENTSOURCE_OK);
  churn c = {.m = m, .es = gone};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, remove_all, &c), 0);
  for (int i = 0; i < CHURN_N; i++)
    ck_assert_int_eq(eventsource_multi_add(m, kept[i]), EVENTSOURCE_OK);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  /* a removal that found a step lock held was queued: a step carries it out */
  ck_assert_int_eq(eventsource_multi_poll(m, 0), EVENTSOURCE_OK);
  for (int i = 0; i < CHURN_N; i++) {
    ck_assert_int_eq(c.rc[i], EVENTSOURCE_OK);
    ck_assert_int_eq(eventsource_multi_remove(m, gone[i]), EVENTSOURCE_ERR_NOT_FOUND);
  }
  ck_assert_uint_eq(eventsource_multi_stat(m, EVENTSOURCE_MULTI_STAT_SOURCES), CHURN_N);
  for (int i = 0; i < CHURN_N; i++)
    ck_assert_int_eq(eventsource_multi_remove(m, kept[i]), EVENTSOURCE_OK);
  ck_assert_uint_eq(eventsource_multi_stat(m, EVENTSOURCE_MULTI_STAT_SOURCES), 0);
  eventsource_multi_free(m);
  for (int i = 0; i < CHURN_N; i++) {
    eventsource_free(gone[i]);
    eventsource_free(kept[i]);
  }
}
END_TEST

/* Many requests from other threads at once (restarts from two threads, then
 * closes) while the loop runs on a third: none may be lost, so the run ends
 * once every source is closed. (A lost request left a source open for ever:
 * the test then fails on its timeout.) */
enum { STORM_N = 16 };

typedef struct storm {
  eventsource_t **es;
  int restarts;
} storm;

static void *restart_storm(void *arg) {
  storm *st = arg;
  for (int k = 0; k < st->restarts; k++)
    for (int i = 0; i < STORM_N; i++)
      eventsource_restart(st->es[i]);
  return NULL;
}

typedef struct runner {
  eventsource_multi_t *m;
  eventsource_error_t rc;
} runner;

static void *run_loop(void *arg) {
  runner *r = arg;
  r->rc = eventsource_multi_run(r->m);
  return NULL;
}

START_TEST(test_requests_from_threads) {
  ts_server *srv = ts_events_server(1);
  eventsource_multi_t *m = new_multi();
  probe p[STORM_N];
  memset(p, 0, sizeof p);
  eventsource_t *es[STORM_N];
  for (int i = 0; i < STORM_N; i++) {
    es[i] = new_source(ts_server_url(srv, "/"), &p[i]);
    ck_assert_int_eq(eventsource_multi_add(m, es[i]), EVENTSOURCE_OK);
  }
  runner r = {.m = m, .rc = EVENTSOURCE_ERR_STATE};
  storm st = {.es = es, .restarts = ts_small_scale() ? 50 : 500};
  pthread_t loop, s1, s2;
  ck_assert_int_eq(pthread_create(&loop, NULL, run_loop, &r), 0);
  ck_assert_int_eq(pthread_create(&s1, NULL, restart_storm, &st), 0);
  ck_assert_int_eq(pthread_create(&s2, NULL, restart_storm, &st), 0);
  pthread_join(s1, NULL);
  pthread_join(s2, NULL);
  for (int i = 0; i < STORM_N; i++)
    eventsource_close(es[i]);
  pthread_join(loop, NULL); /* hangs (test timeout) if a close was lost */
  ck_assert_int_eq(r.rc, EVENTSOURCE_OK);
  ck_assert_uint_eq(eventsource_multi_active(m), 0);
  for (int i = 0; i < STORM_N; i++) {
    ck_assert_int_eq(eventsource_ready_state(es[i]), EVENTSOURCE_CLOSED);
    ck_assert_int_eq(eventsource_restart(es[i]), EVENTSOURCE_ERR_CLOSED);
  }
  eventsource_multi_free(m);
  for (int i = 0; i < STORM_N; i++)
    eventsource_free(es[i]);
  ts_server_stop(srv);
}
END_TEST

static Suite *multi_suite(void) {
  Suite *s = suite_create("multi");
  TCase *tc = tcase_create("run");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_run_several);
  tcase_add_test(tc, test_run_empty);
  tcase_add_test(tc, test_poll_nonblocking);
  suite_add_tcase(s, tc);

  tc = tcase_create("membership");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_add_from_listener);
  tcase_add_test(tc, test_remove_from_listener);
  tcase_add_test(tc, test_free_from_listener);
  suite_add_tcase(s, tc);

  tc = tcase_create("threads");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_wakeup_thread);
  tcase_add_test(tc, test_close_from_thread);
  tcase_add_test(tc, test_remove_from_thread);
  tcase_add_test(tc, test_add_while_removed_from_thread);
  tcase_add_test(tc, test_requests_from_threads);
  suite_add_tcase(s, tc);

  tc = tcase_create("mass");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, test_thousand_streams);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(multi_suite(), CK_NORMAL); }
