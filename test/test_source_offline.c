/*
 * test_source_offline.c - the handle without the network (lib/source.c,
 * and eventsource_multi_new/add/remove): argument and URL checking,
 * allocation failure, options, headers, close before run. No connection is
 * made. (Was the "source (no network)" suite of test_core.c.)
 */
#include <check.h>
#include <stdlib.h>

#include "alloc.h"
#include "eventsource.h"
#include "internal.h"

/* ---- the handle, without the network ------------------------------------ */

/* Argument and URL checking (no connection is made). */
START_TEST(test_new_arguments) {
  eventsource_t *sentinel = (eventsource_t *)&sentinel;
  eventsource_t *es = sentinel;
  const char *bad[] = {"ftp://127.0.0.1/x", "file:///etc/passwd", "127.0.0.1/x",
                       "/path", "", "http//x", "ws://127.0.0.1/",
                       "http://exa mple.com/", "http://a\r\n/b", "http://a/\nb",
                       "http://[::1/x", "http://:80/", "http://a:99999/",
                       "http://", "https:///x", "javascript:alert(1)", "http:///path",
                       "https://exa\x01mple.com/", "HTTP://a b/"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(eventsource_new(&es, bad[i]) == EVENTSOURCE_ERR_URL,
                  "URL '%s' accepted", bad[i]);
    ck_assert_ptr_eq(es, sentinel);
  }
  ck_assert_int_eq(eventsource_new(NULL, "http://127.0.0.1/"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_new(&es, NULL), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_eq(es, sentinel);
  const char *good[] = {"http://127.0.0.1:1/", "HTTPS://example.com/a?b=c",
                        "Http://[::1]:8080/x", "https://example.com:443/path?q=1#f",
                        "http://[::1]:8080/", "http://localhost"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    es = NULL;
    ck_assert_msg(eventsource_new(&es, good[i]) == EVENTSOURCE_OK,
                  "URL '%s' refused", good[i]);
    ck_assert_ptr_nonnull(es);
    ck_assert_str_eq(eventsource_url(es), good[i]);
    ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CONNECTING);
    ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_OK);
    eventsource_free(es);
  }
  eventsource_free(NULL);
  ck_assert_int_eq(eventsource_run(NULL), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_start(NULL), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_restart(NULL), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  eventsource_close(NULL);
}
END_TEST

START_TEST(test_new_nomem) {
  /* Every allocation failure becomes NOMEM with nothing leaked, until it
   * succeeds. */
  int ok = 0;
  for (long n = 0; n < 50 && !ok; n++) {
    eventsource_t *es = NULL;
    es_alloc_fail_after(n);
    eventsource_error_t rc = eventsource_new(&es, "http://127.0.0.1/");
    es_alloc_fail_reset();
    if (rc == EVENTSOURCE_OK) {
      ok = 1;
      eventsource_free(es);
    } else {
      ck_assert_int_eq(rc, EVENTSOURCE_ERR_NOMEM);
      ck_assert_ptr_null(es);
    }
  }
  ck_assert(ok);
}
END_TEST

START_TEST(test_multi_new_nomem) {
  int ok = 0;
  for (long n = 0; n < 20 && !ok; n++) {
    eventsource_multi_t *m = NULL;
    es_alloc_fail_after(n);
    eventsource_error_t rc = eventsource_multi_new(&m);
    es_alloc_fail_reset();
    if (rc == EVENTSOURCE_OK) {
      ok = 1;
      eventsource_multi_free(m);
    } else {
      ck_assert_int_eq(rc, EVENTSOURCE_ERR_NOMEM);
      ck_assert_ptr_null(m);
    }
  }
  ck_assert(ok);
}
END_TEST

START_TEST(test_options_validation) {
  eventsource_t *es;
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1/"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_method(es, "POST"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_method(es, "PO ST"), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_method(es, ""), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_method(es, NULL), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_body(es, "a\0b", 3), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_body(es, NULL, 3), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_body(es, NULL, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(es, -1), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_retry(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_max_retry(es, 1000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_read_timeout(es, -5), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_redirects(es, -1), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_last_event_id(es, "a\nb"), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_last_event_id(es, "42"), EVENTSOURCE_OK);
  ck_assert_str_eq(eventsource_last_event_id(es, NULL), "42");
  ck_assert_int_eq(eventsource_set_last_event_id(es, NULL), EVENTSOURCE_OK);
  ck_assert_str_eq(eventsource_last_event_id(es, NULL), "");
  ck_assert_int_eq(eventsource_add_listener(es, NULL, NULL, NULL, NULL),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_remove_listener(es, 12345), EVENTSOURCE_ERR_NOT_FOUND);
  int x;
  eventsource_set_userdata(es, &x);
  ck_assert_ptr_eq(eventsource_userdata(es), &x);
  eventsource_free(es);
}
END_TEST

START_TEST(test_headers) {
  eventsource_t *es;
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1/"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(es, "X-A", "1"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_header(es, "x-a", "2"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_header(es, "X-B", "3"), EVENTSOURCE_OK);
  ck_assert_uint_eq(es->opt.nheaders, 3);
  ck_assert_int_eq(eventsource_set_header(es, "X-a", "4"), EVENTSOURCE_OK);
  ck_assert_uint_eq(es->opt.nheaders, 2);
  ck_assert_str_eq(es->opt.headers[0].name, "X-B");
  ck_assert_str_eq(es->opt.headers[1].value, "4");
  ck_assert_int_eq(eventsource_remove_header(es, "X-A"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_remove_header(es, "X-A"), EVENTSOURCE_ERR_NOT_FOUND);
  /* Injection attempts and bad names. */
  ck_assert_int_eq(eventsource_set_header(es, "X-C", "v\r\nEvil: 1"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X-C", "v\n"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X-C", "v\r"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_add_header(es, "X C", "v"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_add_header(es, "X:C", "v"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_add_header(es, "", "v"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_add_header(es, "X\nC", "v"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "Last-Event-ID", "1"), EVENTSOURCE_ERR_HEADER);
  ck_assert_uint_eq(es->opt.nheaders, 1);
  /* A failed allocation leaves the old value in place. */
  es_alloc_fail_after(0);
  ck_assert_int_eq(eventsource_set_header(es, "X-B", "new"), EVENTSOURCE_ERR_NOMEM);
  es_alloc_fail_reset();
  ck_assert_uint_eq(es->opt.nheaders, 1);
  ck_assert_str_eq(es->opt.headers[0].value, "3");
  eventsource_free(es);
}
END_TEST

START_TEST(test_close_before_run) {
  eventsource_t *es;
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1:9/"), EVENTSOURCE_OK);
  eventsource_close(es);
  eventsource_close(es); /* idempotent */
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_run(es), EVENTSOURCE_ERR_STATE);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_ERR_STATE);
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_ERR_CLOSED);
  eventsource_free(es);
}
END_TEST

/* A source run alone reads with a 128 KiB buffer; one in a multi keeps
 * libcurl's default (thousands of streams). */
START_TEST(test_receive_buffer) {
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1:9/x"), EVENTSOURCE_OK);
  ck_assert_int_eq(es->tr.buffer_size, 0);
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_add(m, es), EVENTSOURCE_OK);
  ck_assert_int_eq(es->tr.buffer_size, 0);
  ck_assert_int_eq(eventsource_multi_remove(m, es), EVENTSOURCE_OK);
  eventsource_multi_free(m);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
  ck_assert_int_eq(es->tr.buffer_size, 128 * 1024);
  eventsource_free(es);
}
END_TEST

START_TEST(test_multi_arguments) {
  eventsource_multi_t *m;
  eventsource_t *es;
  ck_assert_int_eq(eventsource_multi_new(NULL), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1:9/"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_remove(m, es), EVENTSOURCE_ERR_NOT_FOUND);
  ck_assert_int_eq(eventsource_multi_add(m, es), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_add(m, es), EVENTSOURCE_ERR_STATE);
  ck_assert_uint_eq(eventsource_multi_active(m), 1);
  ck_assert_int_eq(eventsource_run(es), EVENTSOURCE_ERR_STATE); /* already in a multi */
  ck_assert_int_eq(eventsource_multi_remove(m, es), EVENTSOURCE_OK);
  ck_assert_uint_eq(eventsource_multi_active(m), 0);
  ck_assert_int_eq(eventsource_multi_poll(m, 0), EVENTSOURCE_OK);
  eventsource_free(es);
  eventsource_multi_free(m);
  eventsource_multi_free(NULL);
}
END_TEST

static Suite *source_suite(void) {
  Suite *s = suite_create("source (no network)");
  TCase *t = tcase_create("handle");
  tcase_set_timeout(t, 10);
  tcase_add_test(t, test_new_arguments);
  tcase_add_test(t, test_new_nomem);
  tcase_add_test(t, test_multi_new_nomem);
  tcase_add_test(t, test_options_validation);
  tcase_add_test(t, test_headers);
  tcase_add_test(t, test_close_before_run);
  tcase_add_test(t, test_multi_arguments);
  tcase_add_test(t, test_receive_buffer);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(source_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
