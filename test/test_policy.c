/*
 * test_policy.c - the reconnection delays and decisions as pure functions
 * (lib/policy.c): backoff, jitter, the retry cap, the attempt clock, the
 * default reconnect decision. (Was the "policy" suite of test_core.c.)
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "eventsource.h"
#include "policy.h"

/* ---- policy ------------------------------------------------------------- */

START_TEST(test_backoff_exact) {
  /* No jitter: base, then doubling, capped at max. */
  ck_assert_int_eq(es_backoff_delay(1000, 30000, 1, 0, 0), 1000);
  ck_assert_int_eq(es_backoff_delay(1000, 30000, 2, 0, 0), 2000);
  ck_assert_int_eq(es_backoff_delay(1000, 30000, 3, 0, 0), 4000);
  ck_assert_int_eq(es_backoff_delay(1000, 30000, 5, 0, 0), 16000);
  ck_assert_int_eq(es_backoff_delay(1000, 30000, 6, 0, 0), 30000);
  ck_assert_int_eq(es_backoff_delay(1000, 30000, 4000000000u, 0, 0), 30000);
  /* A reconnection time of 0 backs off from the floor (was: 0 for ever, a
   * tight loop against a dead server after "retry: 0"). */
  ck_assert_int_eq(es_backoff_delay(0, 30000, 1, 0, 0), EVENTSOURCE_MIN_RECONNECT_MS);
  ck_assert_int_eq(es_backoff_delay(0, 30000, 7, 0, 0), 64 * EVENTSOURCE_MIN_RECONNECT_MS);
  ck_assert_int_eq(es_backoff_delay(0, 30000, 40, 0, 0), 30000);
  /* A maximum below the floor does not bring the delay under it. */
  ck_assert_int_eq(es_backoff_delay(0, 0, 5, 0, 0), EVENTSOURCE_MIN_RECONNECT_MS);
  /* The maximum bounds the growth, never the reconnection time (issue 13:
   * a server's retry: is used as sent): a base at or above it is used
   * exactly, however many failures, jitter or not. */
  ck_assert_int_eq(es_backoff_delay(1000, 0, 1, 1, 77), 1000);
  ck_assert_int_eq(es_backoff_delay(1000, 0, 9, 1, 77), 1000);
  ck_assert_int_eq(es_backoff_delay(90000, 30000, 1, 0, 0), 90000);
  ck_assert_int_eq(es_backoff_delay(90000, 30000, 5, 0, 0), 90000);
  ck_assert_int_eq(es_backoff_delay(60000, 30000, 1, 1, 12345), 60000);
  ck_assert_int_eq(es_backoff_delay(30000, 30000, 1, 1, 12345), 30000);
  ck_assert_int_eq(es_backoff_delay(86400000, 30000, 4000000000u, 1, 999), 86400000);
  /* Below the maximum it still doubles up to the maximum. */
  ck_assert_int_eq(es_backoff_delay(20000, 30000, 2, 0, 0), 30000);
}
END_TEST

START_TEST(test_backoff_jitter_range) {
  /* Jitter draws from [d, min(1.5 d, max)]: never below the reconnection
   * time, and both ends are reachable. */
  ck_assert_int_eq(es_backoff_delay(1000, 30000, 1, 1, 0), 1000);
  ck_assert_int_eq(es_backoff_delay(1000, 30000, 1, 1, 500), 1500);
  ck_assert_int_eq(es_backoff_delay(1000, 30000, 1, 1, 501), 1000);
  ck_assert_int_eq(es_backoff_delay(4000, 30000, 2, 1, 123), 8000 + 123);
  /* Near the cap the span shrinks so the maximum holds. */
  ck_assert_int_eq(es_backoff_delay(25000, 30000, 1, 1, 5000), 30000);
  ck_assert_int_eq(es_backoff_delay(25000, 30000, 1, 1, 5001), 25000);
  ck_assert_int_eq(es_backoff_delay(1000, 30000, 9, 1, 777), 30000);
  uint64_t st = 42;
  long lo = 1 << 30, hi = 0;
  for (int i = 0; i < 10000; i++) {
    long d = es_backoff_delay(3000, 30000, 3, 1, es_random_next(&st));
    ck_assert(d >= 12000 && d <= 18000);
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
  }
  /* The random source is used: the draws spread over the range. */
  ck_assert_int_lt(lo, 12500);
  ck_assert_int_gt(hi, 17500);
}
END_TEST

START_TEST(test_retry_cap) {
  ck_assert_int_eq(es_retry_capped(5, 30000), 5);
  ck_assert_int_eq(es_retry_capped(30001, 30000), 30000);
  ck_assert_int_eq(es_retry_capped(UINT64_MAX, 30000), 30000);
  /* The default ceiling on a server's retry: (24 h). */
  ck_assert_int_eq(es_retry_capped(45000, EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS), 45000);
  ck_assert_int_eq(es_retry_capped(UINT64_MAX, EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS),
                   EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS);
  ck_assert_int_eq(es_retry_capped(0, EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS), 0);
}
END_TEST

START_TEST(test_attempt_clock) {
  /* A failure before opening, or a short connection, counts up. */
  ck_assert_uint_eq(es_next_attempt(0, 0, 0, 0, 1000, 60000), 1);
  ck_assert_uint_eq(es_next_attempt(3, 0, 0, 0, 1000000, 60000), 4);
  ck_assert_uint_eq(es_next_attempt(3, 1, 0, 1000, 1000 + 59999, 60000), 4);
  /* A connection that stayed open for the reset time starts over. */
  ck_assert_uint_eq(es_next_attempt(3, 1, 0, 1000, 1000 + 60000, 60000), 1);
  ck_assert_uint_eq(es_next_attempt(7, 1, 0, 5, 5, 0), 1);
  /* So does one that delivered an event, however short. */
  ck_assert_uint_eq(es_next_attempt(3, 1, 1, 1000, 1001, 60000), 1);
  /* "Delivered" without having opened cannot happen; it does not reset. */
  ck_assert_uint_eq(es_next_attempt(3, 0, 1, 1000, 1001, 60000), 4);
  /* Saturates instead of wrapping to 0. */
  ck_assert_uint_eq(es_next_attempt(UINT32_MAX, 0, 0, 0, 0, 1), UINT32_MAX);
}
END_TEST

START_TEST(test_default_decision) {
  ck_assert(es_default_reconnect(EVENTSOURCE_ERR_NETWORK));
  ck_assert(es_default_reconnect(EVENTSOURCE_ERR_EOF));
  ck_assert(es_default_reconnect(EVENTSOURCE_ERR_READ_TIMEOUT));
  ck_assert(!es_default_reconnect(EVENTSOURCE_ERR_HTTP_STATUS));
  ck_assert(!es_default_reconnect(EVENTSOURCE_ERR_CONTENT_TYPE));
  ck_assert(!es_default_reconnect(EVENTSOURCE_ERR_REDIRECT));
  ck_assert(!es_default_reconnect(EVENTSOURCE_ERR_NOMEM));
}
END_TEST

static Suite *policy_suite(void) {
  Suite *s = suite_create("policy");
  TCase *t = tcase_create("policy");
  tcase_set_timeout(t, 10);
  tcase_add_test(t, test_backoff_exact);
  tcase_add_test(t, test_backoff_jitter_range);
  tcase_add_test(t, test_retry_cap);
  tcase_add_test(t, test_attempt_clock);
  tcase_add_test(t, test_default_decision);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(policy_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
