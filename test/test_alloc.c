/*
 * test_alloc.c - a warm source allocates nothing per event (issue 12).
 *
 * One source runs against the scripted loopback server, which sends
 * WARMUP + MEASURED events of the small benchmark shape ("id: N",
 * "event: tick", a 48-byte data: line) in one response. A listener for
 * "tick" reads es_alloc_count() (lib/alloc.h: every es_malloc, es_calloc
 * and es_realloc call, from every thread) at event WARMUP and at the last
 * event; the test asserts that no allocation was made in between. Only the
 * library's own allocations are counted, not libcurl's. The test waits on
 * what it observes (a counter, with a deadline), never on a sleep.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h" /* es_alloc_count() */
#include "eventsource.h"
#include "support/sse_server.h"
#include "support/ts_source.h"
#include "support/ts_util.h"

#define WARMUP 200
#define MEASURED 2000

typedef struct alloc_probe {
  ts_ctx *c;
  int events;
  unsigned long at_warm, at_end;
} alloc_probe;

/* On the loop thread; the counter the test waits on is bumped (under the
 * context's lock) only once both readings are taken. */
static void on_tick(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  alloc_probe *p = ud;
  unsigned long now = es_alloc_count();
  p->events++;
  if (p->events == WARMUP) {
    p->at_warm = now;
  } else if (p->events == WARMUP + MEASURED) {
    p->at_end = now;
    ts_counter_inc(p->c, 0);
  }
}

/* "id: N\nevent: tick\ndata: <48 bytes>\n\n" for N = 1..n, one buffer. */
static char *small_stream(int n, size_t *len) {
  size_t cap = (size_t)n * 96, off = 0;
  char *s = malloc(cap);
  ck_assert_ptr_nonnull(s);
  for (int i = 1; i <= n; i++) {
    int w = snprintf(s + off, cap - off,
                     "id: %d\nevent: tick\ndata: {\"seq\":%08d,\"v\":\"abcdefghijklmnopqrstuvwxy\"}\n\n",
                     i, i);
    ck_assert(w > 0 && (size_t)w < cap - off);
    off += (size_t)w;
  }
  *len = off;
  return s;
}

START_TEST(test_no_allocation_per_event) {
  ts_ctx c;
  ts_ctx_init(&c);
  size_t len;
  char *body = small_stream(WARMUP + MEASURED, &len);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  /* several writes: the client sees many chunks, of different sizes */
  size_t piece = 16384 + 77;
  for (size_t off = 0; off < len; off += piece)
    ts_script_write(sc, body + off, len - off < piece ? len - off : piece);
  ts_script_hold(sc);
  free(body);

  alloc_probe p = {.c = &c};
  unsigned long before = es_alloc_count();
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_listener(es, "tick", on_tick, &p, NULL), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ck_assert_int_eq(ts_counter_wait(&c, 0, 1, TS_WAIT_MS), 1);
  /* the mutex behind the counter orders the readings before this read */
  /* the counter counts: making and starting the source allocated */
  ck_assert_uint_gt(p.at_warm, before);
  unsigned long n = p.at_end - p.at_warm;
  fprintf(stderr, "test_alloc: %lu library allocations in the %d events after %d warm-up events\n",
          n, MEASURED, WARMUP);
  ck_assert_msg(n == 0, "%lu allocations in %d warm events (%.3f per event)", n, MEASURED,
                (double)n / MEASURED);
  ts_ctx_fini(&c);
}
END_TEST

static Suite *alloc_suite(void) {
  Suite *s = suite_create("alloc");
  TCase *tc = tcase_create("per_event");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_no_allocation_per_event);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(alloc_suite(), CK_ENV); }
