/*
 * test_restart.c - eventsource_restart(): from another thread, from a listener, during
 * the reconnection wait and while connecting.
 *
 * Part of the connection suites (test/support/ts_source.h): every test runs
 * one source against the scripted loopback server, records every
 * notification and waits on what it observes, with a deadline.
 */
#include <check.h>
#include <stdlib.h>

#include "eventsource.h"
#include "support/sse_server.h"
#include "support/ts_util.h"
#include "support/ts_source.h"

/* ------------------------------------------------------------------------ */
/* restart, close, free                                                     */
/* ------------------------------------------------------------------------ */

START_TEST(test_restart_reconnects_silently) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "id: 7\ndata: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  /* a long delay: a restart that waited for it would miss the deadline */
  ts_set_retry_exact(es, 30000);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_OK); /* any thread */
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 2);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ck_assert_str_eq(ts_req_header(&c, 1, "Last-Event-ID"), "7");
  ck_assert_int_ge(ts_server_wait_client_closes(c.srv, 1, TS_WAIT_MS), 1);
  ts_rec b = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1);
  ts_assert_data(&b, "b");
  ck_assert_str_eq(b.id, "7");
  eventsource_close(es);
  ck_assert(ts_ctx_wait_run(&c, TS_WAIT_MS));
  ck_assert_int_eq(ts_ctx_run_rc(&c), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_ERR_CLOSED);
  ts_ctx_fini(&c);
}
END_TEST

static void on_message_restart_once(eventsource_t *es,
                                    const eventsource_event_t *ev, void *ud) {
  ts_ctx *c = ud;
  if (ts_counter_get(c, 0) == 0 &&
      eventsource_restart(es) != EVENTSOURCE_OK)
    ts_counter_inc(c, 6);
  ts_counter_inc(c, 0);
}

START_TEST(test_restart_from_listener) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "id: 3\ndata: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, 30000), EVENTSOURCE_OK);
  ts_ctx_listen(&c, "message", on_message_restart_once);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_int_eq(ts_counter_get(&c, 6), 0);
  ck_assert_int_eq(ts_counter_get(&c, 0), 2); /* a type listener runs before "any" */
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 2);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ck_assert_str_eq(ts_req_header(&c, 1, "Last-Event-ID"), "3");
  ck_assert_int_ge(ts_server_wait_client_closes(c.srv, 1, TS_WAIT_MS), 1);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_restart_during_reconnect_wait) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "data: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_set_retry_exact(es, 30000);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  ck_assert_int_eq(ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).reconnect_ms, 30000);
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_OK);
  /* well before the 30 s delay */
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 2);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_restart_while_connecting) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_gate(sc, 1); /* no answer until the test ends */
  ts_script_headers(sc);
  ts_script_hold(sc);
  ts_add_stream(&c, 1, "data: second\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, 30000), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ck_assert_int_eq(ts_server_wait_requests(c.srv, 1, TS_WAIT_MS), 1);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_OK);
  ck_assert_int_eq(ts_server_wait_requests(c.srv, 2, TS_WAIT_MS), 2);
  ck_assert_msg(ts_log_wait(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1, TS_WAIT_MS) == 1,
                "no message; log size %zu, client closes %d, state %d",
                ts_log_size(&c), ts_server_client_closes(c.srv),
                (int)eventsource_ready_state(es));
  ts_rec m = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  ts_assert_data(&m, "second");
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ts_server_release(c.srv, 1);
  ts_ctx_fini(&c);
}
END_TEST

static Suite *restart_suite(void) {
  Suite *s = suite_create("restart");
  TCase *tc;

  tc = tcase_create("restart");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_restart_reconnects_silently);
  tcase_add_test(tc, test_restart_from_listener);
  tcase_add_test(tc, test_restart_during_reconnect_wait);
  tcase_add_test(tc, test_restart_while_connecting);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(restart_suite(), CK_ENV); }
