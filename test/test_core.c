/*
 * test_core.c - the small modules: errors and version (error.c), the
 * reconnection delays (policy.c), the listener registry (listeners.c), and the
 * handle's argument checking and options (source.c, no network).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "eventsource.h"
#include "internal.h"
#include "listeners.h"
#include "policy.h"

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
  ck_assert_int_eq(es_backoff_delay(1000, 0, 1, 1, 77), EVENTSOURCE_MIN_RECONNECT_MS);
  /* A base above the maximum is capped. */
  ck_assert_int_eq(es_backoff_delay(90000, 30000, 1, 0, 0), 30000);
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

/* ---- listeners ---------------------------------------------------------- */

typedef struct {
  es_listeners *l;
  char log[256];
  eventsource_listener_id_t ids[8];
  int remove_index; /* listener that removes ids[remove_index] */
  int add_once;
} reg_ctx;

static reg_ctx *g_ctx;

static int never_stop(const eventsource_t *es) { (void)es; return 0; }

static void rec(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  (void)es;
  (void)ev;
  strcat(g_ctx->log, (const char *)ud);
}

static void remover(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  rec(es, ev, ud);
  es_listeners_remove(g_ctx->l, g_ctx->ids[g_ctx->remove_index]);
}

static void adder(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  rec(es, ev, ud);
  if (g_ctx->add_once) {
    g_ctx->add_once = 0;
    ck_assert_int_eq(es_listeners_add(g_ctx->l, ES_LISTEN_TYPE, "message", rec,
                                      (void *)"N", NULL),
                     EVENTSOURCE_OK);
  }
}

static eventsource_event_t mk_event(eventsource_kind_t kind, const char *type) {
  eventsource_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.type = type;
  ev.type_len = strlen(type);
  ev.data = "";
  return ev;
}

START_TEST(test_listener_order_and_types) {
  es_listeners l;
  reg_ctx c = {0};
  es_listeners_init(&l);
  c.l = &l;
  g_ctx = &c;
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_ANY, NULL, rec, (void *)"*", NULL), 0);
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_TYPE, "message", rec, (void *)"a", NULL), 0);
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_TYPE, "greet", rec, (void *)"g", NULL), 0);
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_TYPE, "message", rec, (void *)"b", NULL), 0);
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_COMMENT, NULL, rec, (void *)"c", NULL), 0);
  eventsource_event_t ev = mk_event(EVENTSOURCE_KIND_MESSAGE, "message");
  es_listeners_dispatch(&l, NULL, &ev, never_stop);
  ck_assert_str_eq(c.log, "ab*"); /* type listeners in order, then any */
  c.log[0] = 0;
  ev = mk_event(EVENTSOURCE_KIND_MESSAGE, "Message"); /* case-sensitive */
  es_listeners_dispatch(&l, NULL, &ev, never_stop);
  ck_assert_str_eq(c.log, "*");
  c.log[0] = 0;
  ev = mk_event(EVENTSOURCE_KIND_COMMENT, "comment");
  es_listeners_dispatch(&l, NULL, &ev, never_stop);
  ck_assert_str_eq(c.log, "c");
  c.log[0] = 0;
  ev = mk_event(EVENTSOURCE_KIND_MESSAGE, "greet");
  es_listeners_dispatch(&l, NULL, &ev, never_stop);
  ck_assert_str_eq(c.log, "g*");
  es_listeners_free(&l);
}
END_TEST

START_TEST(test_listener_remove_during_dispatch) {
  es_listeners l;
  reg_ctx c = {0};
  es_listeners_init(&l);
  c.l = &l;
  g_ctx = &c;
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_TYPE, "message", remover, (void *)"r", &c.ids[0]), 0);
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_TYPE, "message", rec, (void *)"x", &c.ids[1]), 0);
  c.remove_index = 1; /* the first removes the second before it runs */
  eventsource_event_t ev = mk_event(EVENTSOURCE_KIND_MESSAGE, "message");
  es_listeners_dispatch(&l, NULL, &ev, never_stop);
  ck_assert_str_eq(c.log, "r");
  ck_assert_int_eq(es_listeners_remove(&l, c.ids[1]), EVENTSOURCE_ERR_NOT_FOUND);
  /* A listener removing itself. */
  c.remove_index = 0;
  c.log[0] = 0;
  es_listeners_dispatch(&l, NULL, &ev, never_stop);
  es_listeners_dispatch(&l, NULL, &ev, never_stop);
  ck_assert_str_eq(c.log, "r");
  ck_assert_uint_eq(l.n, 0);
  ck_assert_int_eq(es_listeners_remove(&l, 0), EVENTSOURCE_ERR_NOT_FOUND);
  es_listeners_free(&l);
}
END_TEST

START_TEST(test_listener_add_during_dispatch) {
  es_listeners l;
  reg_ctx c = {0};
  es_listeners_init(&l);
  c.l = &l;
  g_ctx = &c;
  c.add_once = 1;
  /* Fill to capacity so the add inside the dispatch moves the array. */
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_TYPE, "message", adder, (void *)"A", NULL), 0);
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_TYPE, "message", rec, (void *)"1", NULL), 0);
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_TYPE, "message", rec, (void *)"2", NULL), 0);
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_TYPE, "message", rec, (void *)"3", NULL), 0);
  eventsource_event_t ev = mk_event(EVENTSOURCE_KIND_MESSAGE, "message");
  es_listeners_dispatch(&l, NULL, &ev, never_stop);
  ck_assert_str_eq(c.log, "A123"); /* the new one waits for the next event */
  c.log[0] = 0;
  es_listeners_dispatch(&l, NULL, &ev, never_stop);
  ck_assert_str_eq(c.log, "A123N");
  es_listeners_free(&l);
}
END_TEST

START_TEST(test_listener_add_nomem) {
  es_listeners l;
  es_listeners_init(&l);
  es_alloc_fail_after(0);
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_TYPE, "message", rec, NULL, NULL),
                   EVENTSOURCE_ERR_NOMEM);
  es_alloc_fail_after(1); /* the array, not the type copy */
  ck_assert_int_eq(es_listeners_add(&l, ES_LISTEN_TYPE, "message", rec, NULL, NULL),
                   EVENTSOURCE_ERR_NOMEM);
  es_alloc_fail_reset();
  ck_assert_uint_eq(l.n, 0);
  es_listeners_free(&l);
}
END_TEST

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

/* One Check suite per module, run by one runner. */
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

static Suite *listeners_suite(void) {
  Suite *s = suite_create("listeners");
  TCase *t = tcase_create("listeners");
  tcase_set_timeout(t, 10);
  tcase_add_test(t, test_listener_order_and_types);
  tcase_add_test(t, test_listener_remove_during_dispatch);
  tcase_add_test(t, test_listener_add_during_dispatch);
  tcase_add_test(t, test_listener_add_nomem);
  suite_add_tcase(s, t);
  return s;
}

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
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(errors_suite());
  srunner_add_suite(sr, policy_suite());
  srunner_add_suite(sr, listeners_suite());
  srunner_add_suite(sr, source_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
