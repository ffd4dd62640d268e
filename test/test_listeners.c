/*
 * test_listeners.c - the listener registry (lib/listeners.c): order and
 * types, removing and adding during a dispatch, allocation failure. (Was the
 * "listeners" suite of test_core.c.)
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "eventsource.h"
#include "internal.h" /* struct eventsource_event */
#include "listeners.h"

/* ---- listeners ---------------------------------------------------------- */

typedef struct {
  es_listeners *l;
  char log[256];
  eventsource_listener_id_t ids[8];
  int remove_index; /* listener that removes ids[remove_index] */
  int add_once;
} reg_ctx;

static reg_ctx *g_ctx;

static _Atomic int never_stop; /* the source is never closed here */

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
  es_listeners_dispatch(&l, NULL, &ev, &never_stop);
  ck_assert_str_eq(c.log, "ab*"); /* type listeners in order, then any */
  c.log[0] = 0;
  ev = mk_event(EVENTSOURCE_KIND_MESSAGE, "Message"); /* case-sensitive */
  es_listeners_dispatch(&l, NULL, &ev, &never_stop);
  ck_assert_str_eq(c.log, "*");
  c.log[0] = 0;
  ev = mk_event(EVENTSOURCE_KIND_COMMENT, "comment");
  es_listeners_dispatch(&l, NULL, &ev, &never_stop);
  ck_assert_str_eq(c.log, "c");
  c.log[0] = 0;
  ev = mk_event(EVENTSOURCE_KIND_MESSAGE, "greet");
  es_listeners_dispatch(&l, NULL, &ev, &never_stop);
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
  es_listeners_dispatch(&l, NULL, &ev, &never_stop);
  ck_assert_str_eq(c.log, "r");
  ck_assert_int_eq(es_listeners_remove(&l, c.ids[1]), EVENTSOURCE_ERR_NOT_FOUND);
  /* A listener removing itself. */
  c.remove_index = 0;
  c.log[0] = 0;
  es_listeners_dispatch(&l, NULL, &ev, &never_stop);
  es_listeners_dispatch(&l, NULL, &ev, &never_stop);
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
  es_listeners_dispatch(&l, NULL, &ev, &never_stop);
  ck_assert_str_eq(c.log, "A123"); /* the new one waits for the next event */
  c.log[0] = 0;
  es_listeners_dispatch(&l, NULL, &ev, &never_stop);
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

int main(void) {
  SRunner *sr = srunner_create(listeners_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
