/*
 * test_response.c - what a source accepts as the answer to its request: the
 * Content-Type, the status, interim responses, and redirects (followed,
 * unusable, looping, refused, keeping the method).
 *
 * Part of the connection suites (test/support/ts_source.h): every test runs
 * one source against the scripted loopback server, records every
 * notification and waits on what it observes, with a deadline.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventsource.h"
#include "support/sse_server.h"
#include "support/ts_util.h"
#include "support/ts_source.h"

/* ------------------------------------------------------------------------ */
/* Response validation                                                      */
/* ------------------------------------------------------------------------ */

static const char *const good_types[] = {
    "Content-Type: text/event-stream; charset=utf-8",
    "Content-Type: Text/Event-Stream",
    "content-type: text/event-stream;charset=UTF-8",
};

START_TEST(test_content_type_accepted) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {good_types[_i], NULL};
  ts_script_status(sc, 200, "OK", hl);
  ts_script_writes(sc, "data: ok\n\n");
  ts_script_hold(sc);
  ts_ctx_new_es(&c, "/");
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  ts_assert_data(&r, "ok");
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ts_ctx_fini(&c);
}
END_TEST

static const struct bad_response {
  int status;
  const char *reason;
  const char *ctype; /* header line or NULL */
  const char *body;
  eventsource_error_t want;
} bad_responses[] = {
    {204, "No Content", NULL, NULL, EVENTSOURCE_ERR_HTTP_STATUS},
    {404, "Not Found", "Content-Type: text/html", "<p>nope</p>",
     EVENTSOURCE_ERR_HTTP_STATUS},
    {500, "Internal Server Error", "Content-Type: text/event-stream",
     "data: x\n\n", EVENTSOURCE_ERR_HTTP_STATUS},
    {503, "Service Unavailable", "Content-Type: text/event-stream",
     "data: x\n\n", EVENTSOURCE_ERR_HTTP_STATUS},
    {201, "Created", "Content-Type: text/event-stream", "data: x\n\n",
     EVENTSOURCE_ERR_HTTP_STATUS},
    {200, "OK", NULL, "data: x\n\n", EVENTSOURCE_ERR_CONTENT_TYPE},
    {200, "OK", "Content-Type: text/plain", "data: x\n\n",
     EVENTSOURCE_ERR_CONTENT_TYPE},
    {200, "OK", "Content-Type: text/event-streams", "data: x\n\n",
     EVENTSOURCE_ERR_CONTENT_TYPE},
    {200, "OK", "Content-Type: application/json", "data: x\n\n",
     EVENTSOURCE_ERR_CONTENT_TYPE},
};

START_TEST(test_bad_response_closes) {
  const struct bad_response *b = &bad_responses[_i];
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_status(&c, b->status, b->reason, b->ctype, NULL, b->body);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, 0), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ck_assert_msg(ts_ctx_wait_run(&c, TS_WAIT_MS), "run did not return after %d",
                b->status);
  ck_assert_int_eq(ts_ctx_run_rc(&c), b->want);
  /* run has returned: no reconnection can happen any more */
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_uint_eq(ts_log_size(&c), 1);
  ts_rec r = ts_log_at(&c, 0);
  ck_assert_int_eq(r.kind, EVENTSOURCE_KIND_ERROR);
  ck_assert_str_eq(r.type, "error");
  ck_assert_int_eq(r.error, b->want);
  ck_assert_int_eq(r.status, b->status);
  ck_assert_int_eq(r.will_reconnect, 0);
  ck_assert_int_eq(r.reconnect_ms, -1);
  ck_assert_int_eq(r.state, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_last_error(es), b->want);
  ck_assert_int_eq(eventsource_last_http_status(es), b->status);
  ck_assert_ptr_nonnull(eventsource_last_error_message(es));
  /* a closed source cannot be run again */
  ck_assert_int_eq(eventsource_run(es), EVENTSOURCE_ERR_STATE);
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_ERR_CLOSED);
  ts_ctx_fini(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Redirects                                                                */
/* ------------------------------------------------------------------------ */

static const int redirect_codes[] = {301, 302, 303, 307, 308};

START_TEST(test_redirect_followed) {
  ts_ctx c;
  ts_ctx_init(&c);
  int code = redirect_codes[_i];
  char loc[1200];
  if (_i % 2) /* absolute and relative Locations */
    snprintf(loc, sizeof loc, "Location: %s", ts_server_url(c.srv, "/moved"));
  else
    snprintf(loc, sizeof loc, "Location: /moved");
  ts_add_status(&c, code, "Moved", loc, "Content-Length: 0", NULL);
  ts_add_stream(&c, 1, "data: here\n\n", NULL);
  ts_ctx_new_es(&c, "/start");
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ck_assert_str_eq(ts_req_get(&c, 0)->path, "/start");
  ck_assert_str_eq(ts_req_get(&c, 1)->path, "/moved");
  ck_assert_str_eq(ts_req_get(&c, 1)->method, "GET");
  ck_assert_str_eq(ts_req_header(&c, 1, "Accept"), "text/event-stream");
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  ts_assert_data(&r, "here");
  ts_ctx_fini(&c);
}
END_TEST

/* Runs c->es, which must fail with REDIRECT after the server received
 * `requests` requests, the last answered with `status`: CLOSED, one error
 * notification, no reconnection. */
static void expect_redirect_failure(ts_ctx *c, int requests, long status) {
  ts_ctx_run(c);
  ck_assert(ts_ctx_wait_run(c, TS_WAIT_MS));
  ck_assert_int_eq(ts_ctx_run_rc(c), EVENTSOURCE_ERR_REDIRECT);
  /* run has returned: no reconnection can happen any more */
  ck_assert_int_eq(ts_server_request_count(c->srv), requests);
  ck_assert_int_eq(eventsource_ready_state(c->es), EVENTSOURCE_CLOSED);
  ck_assert_uint_eq(ts_log_size(c), 1);
  ts_rec r = ts_log_at(c, 0);
  ck_assert_int_eq(r.kind, EVENTSOURCE_KIND_ERROR);
  ck_assert_int_eq(r.error, EVENTSOURCE_ERR_REDIRECT);
  ck_assert_int_eq(r.status, status);
  ck_assert_int_eq(r.will_reconnect, 0);
  ck_assert_int_eq(r.reconnect_ms, -1);
  ck_assert_int_eq(r.state, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_last_error(c->es), EVENTSOURCE_ERR_REDIRECT);
  ck_assert_int_eq(eventsource_last_http_status(c->es), status);
}

static const char *const bad_locations[] = {
    NULL, /* no Location at all */
    "Location: ftp://127.0.0.1/x",
    "Location: ftp://x/",
    "Location: http://[::1",
    "Location: http://",
};

START_TEST(test_redirect_unusable) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_status(&c, 302, "Found", bad_locations[_i], NULL, NULL);
  ts_add_stream(&c, 1, "data: never\n\n", NULL);
  ts_ctx_new_es(&c, "/");
  expect_redirect_failure(&c, 1, 302);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_redirect_loop_limited) {
  ts_ctx c;
  ts_ctx_init(&c);
  /* /a -> /b -> /a -> /b -> (a 4th redirect, one too many) */
  for (int i = 0; i < 4; i++)
    ts_add_status(&c, 302, "Found", i % 2 ? "Location: /a" : "Location: /b",
                  "Content-Length: 0", NULL);
  ts_add_stream(&c, 1, "data: too far\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/a");
  ck_assert_int_eq(eventsource_set_max_redirects(es, -1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_redirects(NULL, 3),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_redirects(es, 3), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(es, 0), EVENTSOURCE_OK);
  expect_redirect_failure(&c, 4, 302);
  for (int i = 0; i < 4; i++)
    ck_assert_str_eq(ts_req_get(&c, i)->path, i % 2 ? "/b" : "/a");
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_redirect_none_allowed) {
  ts_ctx c;
  ts_ctx_init(&c);
  int code = redirect_codes[_i];
  ts_add_status(&c, code, "Moved", "Location: /moved", "Content-Length: 0", NULL);
  ts_add_stream(&c, 1, "data: not followed\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_max_redirects(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(es, 0), EVENTSOURCE_OK);
  expect_redirect_failure(&c, 1, code);
  ts_ctx_fini(&c);
}
END_TEST


static const int method_keeping_redirects[] = {307, 308};

START_TEST(test_redirect_keeps_post) {
  ts_ctx c;
  ts_ctx_init(&c);
  int code = method_keeping_redirects[_i];
  ts_add_status(&c, code, "Redirect", "Location: /new", "Content-Length: 0", NULL);
  ts_add_stream(&c, 1, "data: ok\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/old");
  ts_set_post(es);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ts_assert_post(&c, 0, "/old");
  ts_assert_post(&c, 1, "/new");
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_content_type_with_space_before_params) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {"Content-Type:   text/event-stream ; charset=utf-8  ", NULL};
  ts_script_status(sc, 200, "OK", hl);
  ts_script_writes(sc, "data: ok\n\n");
  ts_script_hold(sc);
  ts_ctx_new_es(&c, "/");
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ts_ctx_fini(&c);
}
END_TEST


START_TEST(test_redirect_then_bad_type) {
  /* the type of the final response counts, not that of the redirect */
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_status(&c, 302, "Found", "Location: /next",
                "Content-Type: text/event-stream", NULL);
  ts_add_status(&c, 200, "OK", "Content-Type: text/plain", NULL, "data: x\n\n");
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_run(&c);
  ck_assert(ts_ctx_wait_run(&c, TS_WAIT_MS));
  ck_assert_int_eq(ts_ctx_run_rc(&c), EVENTSOURCE_ERR_CONTENT_TYPE);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ck_assert_uint_eq(ts_log_size(&c), 1);
  ck_assert_int_eq(ts_log_at(&c, 0).error, EVENTSOURCE_ERR_CONTENT_TYPE);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_interim_100_response) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_writes(sc, "HTTP/1.1 100 Continue\r\n\r\n");
  ts_script_headers(sc);
  ts_script_writes(sc, "data: ok\n\n");
  ts_script_hold(sc);
  ts_ctx_new_es(&c, "/");
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_ctx_fini(&c);
}
END_TEST

static Suite *response_suite(void) {
  Suite *s = suite_create("response");
  TCase *tc;

  tc = tcase_create("response");
  tcase_set_timeout(tc, 30);
  tcase_add_loop_test(tc, test_content_type_accepted, 0,
                      (int)(sizeof good_types / sizeof good_types[0]));
  tcase_add_test(tc, test_content_type_with_space_before_params);
  tcase_add_test(tc, test_redirect_then_bad_type);
  tcase_add_test(tc, test_interim_100_response);
  tcase_add_loop_test(tc, test_bad_response_closes, 0,
                      (int)(sizeof bad_responses / sizeof bad_responses[0]));
  suite_add_tcase(s, tc);

  tc = tcase_create("redirect");
  tcase_set_timeout(tc, 30);
  tcase_add_loop_test(tc, test_redirect_followed, 0,
                      (int)(sizeof redirect_codes / sizeof redirect_codes[0]));
  tcase_add_loop_test(tc, test_redirect_unusable, 0,
                      (int)(sizeof bad_locations / sizeof bad_locations[0]));
  tcase_add_test(tc, test_redirect_loop_limited);
  tcase_add_loop_test(tc, test_redirect_none_allowed, 0,
                      (int)(sizeof redirect_codes / sizeof redirect_codes[0]));
  tcase_add_loop_test(tc, test_redirect_keeps_post, 0,
                      (int)(sizeof method_keeping_redirects /
                            sizeof method_keeping_redirects[0]));
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(response_suite(), CK_ENV); }
