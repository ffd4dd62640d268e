/*
 * test_close.c - the end of a source: eventsource_close() and eventsource_free() from
 * listeners, hooks and other threads, at every stage of a connection, and
 * run/start on a source that runs or has ended.
 *
 * Part of the connection suites (test/support/ts_source.h): every test runs
 * one source against the scripted loopback server, records every
 * notification and waits on what it observes, with a deadline.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventsource.h"
#include "support/sse_server.h"
#include "support/ts_util.h"
#include "support/ts_source.h"

static void on_message_close(eventsource_t *es, const eventsource_event_t *ev,
                             void *ud) {
  ts_ctx *c = ud;
  ts_counter_inc(c, 0);
  eventsource_close(es);
  eventsource_close(es); /* idempotent */
  pthread_mutex_lock(&c->mu);
  c->seen_state = eventsource_ready_state(es);
  pthread_mutex_unlock(&c->mu);
}

START_TEST(test_close_from_listener) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: 1\n\ndata: 2\n\ndata: 3\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_listen(&c, "message", on_message_close);
  ts_ctx_run(&c);
  ck_assert(ts_ctx_wait_run(&c, TS_WAIT_MS));
  ck_assert_int_eq(ts_ctx_run_rc(&c), EVENTSOURCE_OK);
  ck_assert_int_eq(ts_counter_get(&c, 0), 1);
  ck_assert_int_eq(c.seen_state, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  /* no listener after close: not even the any-listener for the same event */
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 0);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ck_assert_int_eq(ts_server_wait_client_closes(c.srv, 1, TS_WAIT_MS), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_ctx_fini(&c);
}
END_TEST

/* Closes c->es from this thread, the test's, while it runs in the helper
 * thread: CLOSED at once, eventsource_run() returns OK within
 * ts_prompt_ms(), and nothing is notified after the close. */
static void close_promptly(ts_ctx *c) {
  long t0 = ts_now_ms();
  eventsource_close(c->es);
  size_t after_close = ts_log_size(c);
  ck_assert_int_eq(eventsource_ready_state(c->es), EVENTSOURCE_CLOSED);
  ck_assert_msg(ts_ctx_wait_run(c, ts_prompt_ms()), "run did not return after close");
  ck_assert_int_lt(ts_now_ms() - t0, ts_prompt_ms());
  ck_assert_int_eq(ts_ctx_run_rc(c), EVENTSOURCE_OK);
  ck_assert_uint_eq(ts_log_size(c), after_close);
}

START_TEST(test_close_from_other_thread_while_silent) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  ts_script_hold(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_OPEN, 1);
  close_promptly(&c);
  ck_assert_uint_eq(ts_log_size(&c), 1);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(ts_server_wait_client_closes(c.srv, 1, TS_WAIT_MS), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_close_during_reconnect_wait) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "data: a\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_set_retry_exact(es, 30000);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, 30000);
  close_promptly(&c);
  ck_assert_uint_eq(ts_log_size(&c), 3); /* open, the message, the error */
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ts_ctx_fini(&c);
}
END_TEST

/* Frees es from its own listener or hook, notes the state it then has (es
 * stays valid until the callback returns) and that the test must not free
 * it, and bumps counter 0. */
static void free_from_callback(ts_ctx *c, eventsource_t *es) {
  eventsource_free(es);
  eventsource_ready_state_t st = eventsource_ready_state(es);
  pthread_mutex_lock(&c->mu);
  c->seen_state = st;
  c->es_freed = 1;
  c->counter[0]++;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void on_message_free(eventsource_t *es, const eventsource_event_t *ev,
                            void *ud) {
  free_from_callback(ud, es);
}

START_TEST(test_free_from_listener_run) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: 1\n\ndata: 2\n\n", NULL);
  ts_ctx_new_es(&c, "/");
  ts_ctx_listen(&c, "message", on_message_free);
  ts_ctx_run(&c);
  ck_assert(ts_ctx_wait_run(&c, TS_WAIT_MS)); /* es is gone: do not touch it */
  ck_assert_int_eq(ts_counter_get(&c, 0), 1);
  ck_assert_int_eq(c.seen_state, EVENTSOURCE_CLOSED);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 0);
  ck_assert_int_eq(ts_server_wait_client_closes(c.srv, 1, TS_WAIT_MS), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_free_from_listener_start) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: 1\n\ndata: 2\n\n", NULL);
  ts_ctx_new_es(&c, "/");
  ts_ctx_listen(&c, "message", on_message_free);
  int threads = ts_count_entries("/proc/self/task");
  ts_ctx_start(&c);
  ck_assert_int_eq(ts_counter_wait(&c, 0, 1, TS_WAIT_MS), 1);
  ck_assert_int_eq(ts_server_wait_client_closes(c.srv, 1, TS_WAIT_MS), 1);
  /* the library's thread ends by itself (nobody can join it) */
  ck_assert_int_le(ts_wait_threads_at_most(threads, TS_WAIT_MS), threads);
  ck_assert_int_eq(ts_counter_get(&c, 0), 1);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 0);
  ts_ctx_fini(&c);
}
END_TEST

/* Counter 0: calls; 4: the listener is inside; 5: the test let it go. */
static void on_message_block(eventsource_t *es, const eventsource_event_t *ev,
                             void *ud) {
  ts_ctx *c = ud;
  struct timespec dl;
  ts_deadline_in(&dl, TS_WAIT_MS);
  pthread_mutex_lock(&c->mu);
  c->counter[0]++;
  c->counter[4] = 1;
  pthread_cond_broadcast(&c->cv);
  while (!c->counter[5] && pthread_cond_timedwait(&c->cv, &c->mu, &dl) == 0) {
  }
  pthread_mutex_unlock(&c->mu);
}

struct closer {
  ts_ctx *c;
  eventsource_t *es;
  int done;
  size_t log_at_return;
  int calls_at_return;
};

static void *closer_main(void *arg) {
  struct closer *cl = arg;
  eventsource_close(cl->es);
  size_t n = ts_log_size(cl->c);
  int calls = ts_counter_get(cl->c, 0);
  pthread_mutex_lock(&cl->c->mu);
  cl->log_at_return = n;
  cl->calls_at_return = calls;
  cl->done = 1;
  pthread_cond_broadcast(&cl->c->cv);
  pthread_mutex_unlock(&cl->c->mu);
  return NULL;
}

static int closer_wait(struct closer *cl, long timeout_ms) {
  struct timespec dl;
  ts_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&cl->c->mu);
  while (!cl->done && pthread_cond_timedwait(&cl->c->cv, &cl->c->mu, &dl) == 0) {
  }
  int d = cl->done;
  pthread_mutex_unlock(&cl->c->mu);
  return d;
}

START_TEST(test_close_waits_for_running_listener) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: 1\n\ndata: 2\n\n", "data: 3\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_listen(&c, "message", on_message_block);
  ts_ctx_run(&c);
  ck_assert_int_eq(ts_counter_wait(&c, 4, 1, TS_WAIT_MS), 1);
  struct closer cl = {&c, es, 0, 0, 0};
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, closer_main, &cl), 0);
  /* close() from another thread waits for the running listener (a broken
   * implementation is caught here; a correct one always passes) */
  ck_assert_int_eq(closer_wait(&cl, 150), 0);
  pthread_mutex_lock(&c.mu);
  c.counter[5] = 1;
  pthread_cond_broadcast(&c.cv);
  pthread_mutex_unlock(&c.mu);
  ck_assert(closer_wait(&cl, TS_WAIT_MS));
  pthread_join(th, NULL);
  ck_assert(ts_ctx_wait_run(&c, TS_WAIT_MS));
  ck_assert_int_eq(ts_ctx_run_rc(&c), EVENTSOURCE_OK);
  ck_assert_int_eq(cl.calls_at_return, 1);
  ck_assert_int_eq(ts_counter_get(&c, 0), 1);
  ck_assert_uint_eq(ts_log_size(&c), cl.log_at_return);
  /* the any-listener, after the blocked one, was not called for event 1 */
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 0);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_close_races_event_flood) {
  /* many events in flight; close from another thread after k of them: no
   * notification once close() returned */
  static const int after[] = {1, 7, 50, 300};
  size_t len = 0, cap = 40000 * 16;
  char *flood = malloc(cap);
  ck_assert_ptr_nonnull(flood);
  for (int i = 0; i < 40000; i++)
    len += (size_t)snprintf(flood + len, cap - len, "data: %d\n\n", i);
  for (size_t k = 0; k < sizeof after / sizeof after[0]; k++) {
    ts_ctx c;
    ts_ctx_init(&c);
    ts_script *sc = ts_server_add_script(c.srv);
    ts_script_headers(sc);
    ts_script_write(sc, flood, len);
    ts_script_hold(sc);
    eventsource_t *es = ts_ctx_new_es(&c, "/");
    ts_ctx_run(&c);
    ck_assert_uint_ge(
        ts_log_wait(&c, EVENTSOURCE_KIND_MESSAGE, NULL, (size_t)after[k], TS_WAIT_MS),
        (size_t)after[k]);
    eventsource_close(es);
    size_t at_close = ts_log_size(&c);
    ck_assert(ts_ctx_wait_run(&c, TS_WAIT_MS));
    ck_assert_uint_eq(ts_log_size(&c), at_close);
    ck_assert_int_eq(ts_ctx_run_rc(&c), EVENTSOURCE_OK);
    ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
    ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
    ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
    /* and the events that were delivered came in order */
    size_t nm = ts_log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL);
    for (size_t i = 0; i < nm; i += 1 + nm / 50) {
      ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, i);
      char want[32];
      snprintf(want, sizeof want, "%zu", i);
      ts_assert_data(&r, want);
    }
    ts_ctx_fini(&c);
  }
  free(flood);
}
END_TEST

START_TEST(test_run_and_start_state_errors) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: a\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_start(&c);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_ERR_STATE);
  ck_assert_int_eq(eventsource_run(es), EVENTSOURCE_ERR_STATE);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_ERR_STATE);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  eventsource_close(es);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_ERR_STATE);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_close_while_connecting) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_gate(sc, 1);
  ts_script_headers(sc);
  ts_script_hold(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_run(&c);
  ck_assert_int_eq(ts_server_wait_requests(c.srv, 1, TS_WAIT_MS), 1);
  close_promptly(&c);
  ck_assert_uint_eq(ts_log_size(&c), 0);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ts_server_release(c.srv, 1);
  ts_ctx_fini(&c);
}
END_TEST

static int prepare_free(eventsource_t *es, unsigned attempt, void *ud) {
  free_from_callback(ud, es);
  return 0;
}

/* Freed from a hook right at the start of the library's thread, while
 * eventsource_start() may still be returning. */
START_TEST(test_free_from_prepare_start) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: never\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_prepare_callback(es, prepare_free, &c),
                   EVENTSOURCE_OK);
  int threads = ts_count_entries("/proc/self/task");
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
  c.started = 1;
  ck_assert_int_eq(ts_counter_wait(&c, 0, 1, TS_WAIT_MS), 1);
  ck_assert_int_le(ts_wait_threads_at_most(threads, TS_WAIT_MS), threads);
  ck_assert_int_eq(c.seen_state, EVENTSOURCE_CLOSED);
  ck_assert_uint_eq(ts_log_size(&c), 0);
  ck_assert_int_eq(ts_server_request_count(c.srv), 0);
  ts_ctx_fini(&c);
}
END_TEST

static Suite *close_suite(void) {
  Suite *s = suite_create("close");
  TCase *tc;

  tc = tcase_create("close");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_close_from_listener);
  tcase_add_test(tc, test_close_from_other_thread_while_silent);
  tcase_add_test(tc, test_close_during_reconnect_wait);
  tcase_add_test(tc, test_close_waits_for_running_listener);
  tcase_add_test(tc, test_close_races_event_flood);
  tcase_add_test(tc, test_run_and_start_state_errors);
  tcase_add_test(tc, test_close_while_connecting);
  suite_add_tcase(s, tc);

  tc = tcase_create("free");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_free_from_listener_run);
  tcase_add_test(tc, test_free_from_listener_start);
  tcase_add_test(tc, test_free_from_prepare_start);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(close_suite(), CK_ENV); }
