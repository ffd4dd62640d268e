/*
 * test_request.c - the request a source sends: method and body, the default headers,
 * Last-Event-ID, and the headers set, added and removed by the application.
 *
 * Part of the connection suites (test/support/ts_source.h): every test runs
 * one source against the scripted loopback server, records every
 * notification and waits on what it observes, with a deadline.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "eventsource.h"
#include "support/sse_server.h"
#include "support/ts_util.h"
#include "support/ts_source.h"

START_TEST(test_get_request_headers) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: hi\n\n", NULL);
  ts_ctx_new_es(&c, "/stream?x=1");
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  const ts_request *r = ts_req_get(&c, 0);
  ck_assert_str_eq(r->method, "GET");
  ck_assert_str_eq(r->path, "/stream?x=1");
  ck_assert_ptr_null(r->body);
  ck_assert_int_eq(ts_request_header_count(r, "Accept"), 1);
  ck_assert_int_eq(ts_request_header_count(r, "Cache-Control"), 1);
  ck_assert_str_eq(ts_req_header(&c, 0, "Accept"), "text/event-stream");
  ck_assert_str_eq(ts_req_header(&c, 0, "Cache-Control"), "no-cache");
  ck_assert_ptr_null(ts_req_header(&c, 0, "Last-Event-ID"));
  ck_assert_ptr_null(ts_req_header(&c, 0, "Content-Length"));
  ck_assert_ptr_nonnull(ts_req_header(&c, 0, "Host"));
  eventsource_close(c.es);
  ts_expect_run_ended(&c, EVENTSOURCE_OK);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_initial_last_event_id) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: hi\n\n", NULL);
  ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_last_event_id(c.es, "bad\nid"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_last_event_id(c.es, "bad\rid"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_last_event_id(NULL, "x"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_last_event_id(c.es, "abc-1"), EVENTSOURCE_OK);
  ck_assert_str_eq(eventsource_last_event_id(c.es, NULL), "abc-1");
  ts_ctx_start(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_str_eq(ts_req_header(&c, 0, "Last-Event-ID"), "abc-1");
  ck_assert_int_eq(ts_request_header_count(ts_req_get(&c, 0), "Last-Event-ID"), 1);
  ts_rec m = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, "message", 0);
  ck_assert_str_eq(m.id, "abc-1");
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_last_event_id_cleared_before_start) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: hi\n\n", NULL);
  ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_last_event_id(c.es, "x"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_last_event_id(c.es, ""), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_ptr_null(ts_req_header(&c, 0, "Last-Event-ID"));
  ck_assert_int_eq(ts_request_header_count(ts_req_get(&c, 0), "Last-Event-ID"), 0);
  ck_assert_str_eq(ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0).id, "");
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_post_body_resent) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "data: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/post");
  ck_assert_int_ne(eventsource_set_method(es, "BAD METHOD"), EVENTSOURCE_OK);
  ck_assert_int_ne(eventsource_set_method(es, ""), EVENTSOURCE_OK);
  ts_set_post(es);
  ts_set_retry_exact(es, 0);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  for (int i = 0; i < 2; i++)
    ts_assert_post(&c, i, "/post");
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_custom_method_without_body) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: a\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_method(es, "REPORT"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_body(es, "x", 1), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_body(es, NULL, 0), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  const ts_request *r = ts_req_get(&c, 0);
  ck_assert_str_eq(r->method, "REPORT");
  ck_assert_str_eq(r->path, "/");
  ck_assert_uint_eq(r->body_len, 0);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_header_validation_and_semantics) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: a\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  /* refused */
  ck_assert_int_eq(eventsource_set_header(es, "X-A\r", "v"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X\nA", "v"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X-B", "a\r\nX-Injected: 1"),
                   EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X-B", "a\n"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X-B", "\r"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_add_header(es, "X-C", "v\r\n"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_add_header(es, "X-C\n", "v"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "Last-Event-ID", "1"),
                   EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_add_header(es, "last-event-id", "1"),
                   EVENTSOURCE_ERR_HEADER);
  ck_assert_int_ne(eventsource_set_header(es, "Bad Name", "v"), EVENTSOURCE_OK);
  ck_assert_int_ne(eventsource_set_header(es, "Bad:Name", "v"), EVENTSOURCE_OK);
  ck_assert_int_ne(eventsource_set_header(es, "", "v"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(NULL, "X", "v"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_header(es, NULL, "v"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_remove_header(es, "X-None"), EVENTSOURCE_ERR_NOT_FOUND);
  ck_assert_int_eq(eventsource_remove_header(NULL, "X"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  /* set replaces, case-insensitively */
  ck_assert_int_eq(eventsource_set_header(es, "X-One", "1"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(es, "x-one", "2"), EVENTSOURCE_OK);
  /* add appends */
  ck_assert_int_eq(eventsource_add_header(es, "X-Multi", "a"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_header(es, "X-Multi", "b"), EVENTSOURCE_OK);
  /* set after add replaces all */
  ck_assert_int_eq(eventsource_add_header(es, "X-Mix", "1"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_header(es, "X-Mix", "2"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(es, "X-MIX", "3"), EVENTSOURCE_OK);
  /* remove removes all */
  ck_assert_int_eq(eventsource_add_header(es, "X-Gone", "g1"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_header(es, "X-Gone", "g2"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_remove_header(es, "x-gone"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_remove_header(es, "x-gone"), EVENTSOURCE_ERR_NOT_FOUND);
  /* the defaults may be replaced */
  ck_assert_int_eq(eventsource_set_header(es, "Accept", "text/event-stream, */*;q=0.1"),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(es, "X-Empty", ""), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  const ts_request *r = ts_req_get(&c, 0);
  ck_assert_int_eq(ts_request_header_count(r, "X-One"), 1);
  ck_assert_str_eq(ts_req_header(&c, 0, "X-One"), "2");
  r = ts_req_get(&c, 0);
  ck_assert_int_eq(ts_request_header_count(r, "X-Multi"), 2);
  char v[64];
  ck_assert(ts_request_header_nth(r, "X-Multi", 0, v, sizeof v));
  ck_assert_str_eq(v, "a");
  ck_assert(ts_request_header_nth(r, "X-Multi", 1, v, sizeof v));
  ck_assert_str_eq(v, "b");
  ck_assert_int_eq(ts_request_header_count(r, "X-Mix"), 1);
  ck_assert(ts_request_header(r, "X-Mix", v, sizeof v));
  ck_assert_str_eq(v, "3");
  ck_assert_int_eq(ts_request_header_count(r, "X-Gone"), 0);
  ck_assert_int_eq(ts_request_header_count(r, "Accept"), 1);
  ck_assert(ts_request_header(r, "Accept", v, sizeof v));
  ck_assert_str_eq(v, "text/event-stream, */*;q=0.1");
  ck_assert_int_eq(ts_request_header_count(r, "Cache-Control"), 1);
  ck_assert_int_eq(ts_request_header_count(r, "X-Empty"), 1);
  ck_assert_int_eq(ts_request_header_count(r, "X-Injected"), 0);
  ck_assert_int_eq(ts_request_header_count(r, "X-A"), 0);
  ck_assert_int_eq(ts_request_header_count(r, "X-B"), 0);
  ck_assert_int_eq(ts_request_header_count(r, "X-C"), 0);
  ck_assert_int_eq(ts_request_header_count(r, "Last-Event-ID"), 0);
  ts_ctx_fini(&c);
}
END_TEST

static Suite *request_suite(void) {
  Suite *s = suite_create("request");
  TCase *tc;

  tc = tcase_create("request");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_get_request_headers);
  tcase_add_test(tc, test_initial_last_event_id);
  tcase_add_test(tc, test_last_event_id_cleared_before_start);
  tcase_add_test(tc, test_post_body_resent);
  tcase_add_test(tc, test_custom_method_without_body);
  tcase_add_test(tc, test_header_validation_and_semantics);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(request_suite(), CK_ENV); }
