/*
 * test_errors.c - errors and version (lib/error.c): every code has a message
 * and a name, the published numbers, the version macros and functions.
 * (Was the "errors" suite of test_core.c.)
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventsource.h"

/* ---- errors and version ------------------------------------------------ */

START_TEST(test_strerror_every_code) {
  for (int c = 0; c < EVENTSOURCE_ERROR_MAX_; c++) {
    const char *s = eventsource_strerror((eventsource_error_t)c);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_ne(s, "unknown error");
    const char *n = eventsource_error_name((eventsource_error_t)c);
    ck_assert_str_ne(n, "UNKNOWN");
    ck_assert_msg(strncmp(n, "ERR_", 4) != 0, "name %s keeps its prefix", n);
  }
  ck_assert_str_eq(eventsource_strerror((eventsource_error_t)9999), "unknown error");
  ck_assert_str_eq(eventsource_strerror((eventsource_error_t)-1), "unknown error");
  ck_assert_str_eq(eventsource_error_name((eventsource_error_t)9999), "UNKNOWN");
}
END_TEST

START_TEST(test_error_numbers_fixed) {
  /* Published numbers never change. */
  ck_assert_int_eq(EVENTSOURCE_OK, 0);
  ck_assert_int_eq(EVENTSOURCE_ERR_INVALID_ARGUMENT, 1);
  ck_assert_int_eq(EVENTSOURCE_ERR_NOMEM, 2);
  ck_assert_int_eq(EVENTSOURCE_ERR_HTTP_STATUS, 7);
  ck_assert_int_eq(EVENTSOURCE_ERR_EOF, 11);
  ck_assert_int_eq(EVENTSOURCE_ERR_POLICY, 18);
  ck_assert_str_eq(eventsource_error_name(EVENTSOURCE_OK), "OK");
  ck_assert_str_eq(eventsource_error_name(EVENTSOURCE_ERR_HTTP_STATUS), "HTTP_STATUS");
  ck_assert_str_eq(eventsource_error_name(EVENTSOURCE_ERR_READ_TIMEOUT), "READ_TIMEOUT");
}
END_TEST

START_TEST(test_version) {
  ck_assert_str_eq(eventsource_version(), EVENTSOURCE_VERSION);
  ck_assert_uint_eq(eventsource_version_num(), EVENTSOURCE_VERSION_NUM);
  char buf[32];
  snprintf(buf, sizeof buf, "%d.%d.%d", EVENTSOURCE_VERSION_MAJOR,
           EVENTSOURCE_VERSION_MINOR, EVENTSOURCE_VERSION_PATCH);
  ck_assert_str_eq(buf, EVENTSOURCE_VERSION);
}
END_TEST

static Suite *errors_suite(void) {
  Suite *s = suite_create("errors");
  TCase *t = tcase_create("errors");
  tcase_set_timeout(t, 10);
  tcase_add_test(t, test_strerror_every_code);
  tcase_add_test(t, test_error_numbers_fixed);
  tcase_add_test(t, test_version);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(errors_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
