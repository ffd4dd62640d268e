/*
 * test_hooks.c - the application's hooks: the prepare callback (per attempt,
 * failing, closing), the reconnection policy, and the curl callback.
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

#include "eventsource.h"
#include "support/sse_server.h"
#include "support/ts_util.h"
#include "support/ts_source.h"

/* ------------------------------------------------------------------------ */
/* Hooks                                                                    */
/* ------------------------------------------------------------------------ */


START_TEST(test_prepare_sets_header_per_attempt) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_status(&c, 503, "Busy", NULL, NULL, NULL);
  ts_add_status(&c, 503, "Busy", NULL, NULL, NULL);
  ts_add_stream(&c, 1, "data: ok\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_prepare_hook(&c, 0);
  ts_ctx_policy_hook(&c, TS_POLICY_RECONNECT_STATUS, 0);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 3);
  pthread_mutex_lock(&c.mu);
  int np = c.nprepare;
  unsigned at[3];
  memcpy(at, c.prepare_attempts, sizeof at);
  int set_failures = c.counter[7];
  pthread_mutex_unlock(&c.mu);
  ck_assert_int_eq(np, 3);
  ck_assert_int_eq(set_failures, 0);
  for (int i = 0; i < 3; i++) {
    char want[32];
    snprintf(want, sizeof want, "%u", at[i]);
    const char *got = ts_req_header(&c, i, "X-Attempt");
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(ts_request_header_count(ts_req_get(&c, i), "X-Attempt"), 1);
    if (i > 0)
      ck_assert_uint_gt(at[i], at[i - 1]);
  }
  ts_ctx_fini(&c);
}
END_TEST

/* A source whose prepare hook refuses (mode 1) or closes the source (mode 2)
 * before the first attempt, run in the helper thread; the server would
 * stream an event. */
static void run_with_failing_prepare(ts_ctx *c, int mode) {
  ts_ctx_init(c);
  ts_add_stream(c, 1, "data: never\n\n", NULL);
  ts_ctx_new_es(c, "/");
  ts_ctx_prepare_hook(c, mode);
  ts_ctx_run(c);
}

START_TEST(test_prepare_failure_closes) {
  ts_ctx c;
  run_with_failing_prepare(&c, 1);
  ts_expect_run_ended(&c, EVENTSOURCE_ERR_CALLBACK);
  ck_assert_int_eq(ts_server_request_count(c.srv), 0);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_CALLBACK);
  ck_assert_int_eq(e.will_reconnect, 0);
  ck_assert_uint_eq(ts_log_size(&c), 1);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_policy_reconnects_on_503) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_status(&c, 503, "Busy", "Retry-After: 1", NULL, NULL);
  ts_add_status(&c, 503, "Busy", NULL, NULL, NULL);
  ts_add_stream(&c, 1, "data: ok\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_policy_hook(&c, TS_POLICY_RECONNECT_STATUS, 15);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 3);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 2);
  for (size_t i = 0; i < 2; i++) {
    ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, i);
    ck_assert_int_eq(e.error, EVENTSOURCE_ERR_HTTP_STATUS);
    ck_assert_int_eq(e.status, 503);
    ck_assert_int_eq(e.will_reconnect, 1);
    ck_assert_int_eq(e.reconnect_ms, 15);
    ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  }
  pthread_mutex_lock(&c.mu);
  ck_assert_int_eq(c.npolicy, 2);
  for (unsigned i = 0; i < 2; i++) {
    ck_assert_int_eq(c.policy[i].why, EVENTSOURCE_ERR_HTTP_STATUS);
    ck_assert_int_eq(c.policy[i].status, 503);
    ck_assert_uint_eq(c.policy[i].attempt, i + 1);
    ck_assert_int_eq(c.policy[i].default_reconnect, 0);
  }
  pthread_mutex_unlock(&c.mu);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_OPEN);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_policy_stops) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "data: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: never\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_policy_hook(&c, TS_POLICY_STOP, 0);
  ts_set_retry_exact(es, 0);
  ts_ctx_run(&c);
  ck_assert(ts_ctx_wait_run(&c, TS_WAIT_MS));
  /* the policy stopped a connection the spec would have reestablished */
  eventsource_error_t rc = ts_ctx_run_rc(&c);
  ck_assert_msg(rc == EVENTSOURCE_ERR_POLICY, "run returned %s",
                eventsource_error_name(rc));
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF); /* "carries why" */
  ck_assert_int_eq(e.will_reconnect, 0);
  ck_assert_int_eq(e.reconnect_ms, -1);
  ck_assert_int_eq(e.state, EVENTSOURCE_CLOSED);
  pthread_mutex_lock(&c.mu);
  ck_assert_int_eq(c.npolicy, 1);
  ck_assert_int_eq(c.policy[0].why, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(c.policy[0].status, 0);
  ck_assert_uint_eq(c.policy[0].attempt, 1);
  ck_assert_int_eq(c.policy[0].default_reconnect, 1);
  ck_assert_int_eq(c.policy[0].default_delay, EVENTSOURCE_MIN_RECONNECT_MS);
  pthread_mutex_unlock(&c.mu);
  ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(eventsource_run(es), EVENTSOURCE_ERR_STATE);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_policy_changes_delay) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "data: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_policy_hook(&c, TS_POLICY_DELAY, 77);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, 77);
  ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  pthread_mutex_lock(&c.mu);
  ck_assert_int_eq(c.npolicy, 1);
  ck_assert_int_eq(c.policy[0].why, EVENTSOURCE_ERR_EOF);
  ck_assert_uint_eq(c.policy[0].attempt, 1);
  ck_assert_int_eq(c.policy[0].default_reconnect, 1);
  ck_assert_int_eq(c.policy[0].default_delay, EVENTSOURCE_DEFAULT_RETRY_MS);
  /* EOF after a 200: the status is only for refused responses, 0 here */
  ck_assert_int_eq(c.policy[0].status, 0);
  pthread_mutex_unlock(&c.mu);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_curl_hook_every_attempt) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "data: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_curl_callback(NULL, ts_curl_hook, &c),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  /* removing a hook that was never set is fine */
  ck_assert_int_eq(eventsource_set_curl_callback(es, NULL, NULL), EVENTSOURCE_OK);
  ts_ctx_prepare_hook(&c, 0);
  ts_ctx_curl_hook(&c, TS_CURL_USER_AGENT);
  ts_set_retry_exact(es, 0);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  /* once per attempt, after the prepare callback of the same attempt */
  ck_assert_int_eq(ts_ctx_get(&c, &c.ncurl), 2);
  ck_assert_int_eq(ts_ctx_get(&c, &c.nprepare), 2);
  ck_assert_int_eq(ts_ctx_get(&c, &c.curl_nprepare[0]), 1);
  ck_assert_int_eq(ts_ctx_get(&c, &c.curl_nprepare[1]), 2);
  ck_assert_int_eq(ts_ctx_get(&c, &c.curl_bad), 0);
  for (int i = 0; i < 2; i++) {
    ck_assert_str_eq(ts_req_header(&c, i, "User-Agent"), "es-test/1");
    ck_assert_int_eq(ts_request_header_count(ts_req_get(&c, i), "User-Agent"), 1);
    ck_assert_ptr_nonnull(ts_req_header(&c, i, "X-Attempt"));
    /* what the library set itself is still there */
    ck_assert_str_eq(ts_req_header(&c, i, "Accept"), "text/event-stream");
  }
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  ck_assert_int_eq(ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).error,
                   EVENTSOURCE_ERR_EOF);
  ts_ctx_fini(&c);
}
END_TEST

/* A hook that fails, and one that closes the source: nothing connects. */
static const struct curl_stop {
  int mode;
  eventsource_error_t want_rc;
  size_t want_log;
} curl_stops[] = {
    {TS_CURL_FAIL, EVENTSOURCE_ERR_CURL, 1},
    {TS_CURL_CLOSE, EVENTSOURCE_OK, 0},
};

START_TEST(test_curl_hook_stops) {
  const struct curl_stop *t = &curl_stops[_i];
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: never\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_curl_hook(&c, t->mode);
  ts_ctx_run(&c);
  ts_expect_run_ended(&c, t->want_rc);
  ck_assert_int_eq(ts_ctx_get(&c, &c.ncurl), 1);
  ck_assert_int_eq(ts_ctx_get(&c, &c.curl_bad), 0);
  /* run has returned: no connection can be made any more */
  ck_assert_int_eq(ts_server_request_count(c.srv), 0);
  ck_assert_uint_eq(ts_log_size(&c), t->want_log);
  if (t->want_log) {
    ts_rec e = ts_log_at(&c, 0);
    ck_assert_int_eq(e.kind, EVENTSOURCE_KIND_ERROR);
    ck_assert_int_eq(e.error, EVENTSOURCE_ERR_CURL);
    ck_assert_int_eq(e.curl_code, CURLE_BAD_FUNCTION_ARGUMENT);
    ck_assert_int_eq(e.status, 0);
    ck_assert_int_eq(e.will_reconnect, 0);
    ck_assert_int_eq(e.reconnect_ms, -1);
    ck_assert_int_eq(e.state, EVENTSOURCE_CLOSED);
    ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_ERR_CURL);
  } else {
    ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_OK);
  }
  ck_assert_int_eq(eventsource_run(es), EVENTSOURCE_ERR_STATE);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_close_from_prepare) {
  ts_ctx c;
  run_with_failing_prepare(&c, 2);
  ts_expect_run_ended(&c, EVENTSOURCE_OK);
  ck_assert_uint_eq(ts_log_size(&c), 0);
  /* nothing connected (a connection may have been opened and dropped at
   * most, but no request completed after the close) */
  ck_assert_int_eq(ts_server_request_count(c.srv), 0);
  ts_ctx_fini(&c);
}
END_TEST

static Suite *hooks_suite(void) {
  Suite *s = suite_create("hooks");
  TCase *tc;

  tc = tcase_create("hooks");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_prepare_sets_header_per_attempt);
  tcase_add_test(tc, test_prepare_failure_closes);
  tcase_add_test(tc, test_policy_reconnects_on_503);
  tcase_add_test(tc, test_policy_stops);
  tcase_add_test(tc, test_policy_changes_delay);
  tcase_add_test(tc, test_curl_hook_every_attempt);
  tcase_add_loop_test(tc, test_curl_hook_stops, 0,
                      (int)(sizeof curl_stops / sizeof curl_stops[0]));
  tcase_add_test(tc, test_close_from_prepare);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(hooks_suite(), CK_ENV); }
