/*
 * test_loop.c - the built-in loop's pieces on their own: the deadline heap
 * (lib/heap.c) and the loop backend compiled in (lib/loop.h: loop_epoll.c
 * or loop_poll.c). The Makefile compiles this suite with
 * -DES_EXPECT_LOOP="$(LOOP)": it fails when the library holds another
 * backend than the one asked for, both by its internal name and by the kind
 * of wakeup descriptor the public socket callback announces (an eventfd for
 * epoll, a pipe for poll).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eventsource.h"
#include "heap.h"
#include "internal.h"
#include "loop.h"

/* ---- the backend ------------------------------------------------------- */

static int announced_fd = -1;

static int note_socket(eventsource_multi_t *m, int fd, int what, void *ud, void *sp) {
  if (announced_fd < 0 && (what & EVENTSOURCE_POLL_IN))
    announced_fd = fd;
  return 0;
}

START_TEST(test_backend_is_the_one_built) {
#ifndef ES_EXPECT_LOOP
  ck_abort_msg("compile with -DES_EXPECT_LOOP=\"epoll\" or \"poll\" (the Makefile does)");
#else
  ck_assert_str_eq(es_loop_backend_name(), ES_EXPECT_LOOP);
  /* What the application sees: the wakeup descriptor given to its socket
   * callback is the backend's (a pipe only for poll). */
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_set_socket_callback(m, note_socket, NULL), EVENTSOURCE_OK);
  ck_assert_int_ge(announced_fd, 0);
  struct stat st;
  ck_assert_int_eq(fstat(announced_fd, &st), 0);
  ck_assert_int_eq(S_ISFIFO(st.st_mode) != 0, strcmp(ES_EXPECT_LOOP, "poll") == 0);
  /* Both ends of the self-pipe, or the eventfd, are close-on-exec and
   * non-blocking. */
  ck_assert(fcntl(announced_fd, F_GETFD) & FD_CLOEXEC);
  ck_assert(fcntl(announced_fd, F_GETFL) & O_NONBLOCK);
  eventsource_multi_free(m);
#endif
}
END_TEST

/* ---- the heap ---------------------------------------------------------- */

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void) {
  rnd_state ^= rnd_state << 13;
  rnd_state ^= rnd_state >> 7;
  rnd_state ^= rnd_state << 17;
  return rnd_state;
}

START_TEST(test_heap_order) {
  enum { N = 500 };
  eventsource_t *es = calloc(N, sizeof *es);
  ck_assert_ptr_nonnull(es);
  es_heap h;
  es_heap_init(&h);
  ck_assert_ptr_null(es_heap_top(&h));
  ck_assert_int_eq(es_heap_reserve(&h, N), 0);
  for (int i = 0; i < N; i++) {
    es[i].link.heap_index = SIZE_MAX;
    es_heap_set(&h, &es[i], 1 + rnd() % 1000);
  }
  /* Move some, take some out (at 0 or es_heap_remove), twice is harmless. */
  for (int i = 0; i < N; i += 3)
    es_heap_set(&h, &es[i], 1 + rnd() % 1000);
  for (int i = 1; i < N; i += 7) {
    es_heap_set(&h, &es[i], 0);
    ck_assert_uint_eq(es[i].link.deadline, 0);
    ck_assert_uint_eq(es[i].link.heap_index, SIZE_MAX);
    es_heap_remove(&h, &es[i]);
  }
  for (int i = 2; i < N; i += 11)
    es_heap_remove(&h, &es[i]);
  size_t expect = 0;
  for (int i = 0; i < N; i++)
    expect += es[i].link.heap_index != SIZE_MAX;
  ck_assert_uint_eq(h.n, expect);
  uint64_t last = 0;
  size_t popped = 0;
  eventsource_t *top;
  while ((top = es_heap_top(&h))) {
    ck_assert_uint_ge(top->link.deadline, last);
    last = top->link.deadline;
    es_heap_remove(&h, top);
    ck_assert_uint_eq(top->link.heap_index, SIZE_MAX);
    popped++;
  }
  ck_assert_uint_eq(popped, expect);
  es_heap_free(&h);
  ck_assert_ptr_null(h.v);
  free(es);
}
END_TEST

START_TEST(test_heap_reserve_grows) {
  es_heap h;
  es_heap_init(&h);
  ck_assert_int_eq(es_heap_reserve(&h, 1), 0);
  size_t cap = h.cap;
  ck_assert_uint_ge(cap, 1);
  ck_assert_int_eq(es_heap_reserve(&h, cap), 0);
  ck_assert_uint_eq(h.cap, cap); /* enough already: no reallocation */
  ck_assert_int_eq(es_heap_reserve(&h, cap + 1), 0);
  ck_assert_uint_gt(h.cap, cap);
  ck_assert_int_ne(es_heap_reserve(&h, SIZE_MAX), 0); /* an error, not a crash */
  es_heap_free(&h);
}
END_TEST

/* ---- the loop ---------------------------------------------------------- */

typedef struct seen {
  int n;
  int fd[512];
  unsigned ready[512];
  es_loop *loop;
  int pair[2]; /* with loop: the first report of one unwatches the other */
} seen;

static void record(int fd, unsigned ready, void *ud) {
  seen *s = ud;
  if (s->n < 512) {
    s->fd[s->n] = fd;
    s->ready[s->n] = ready;
  }
  s->n++;
  if (s->loop && s->n == 1)
    es_loop_unwatch(s->loop, fd == s->pair[0] ? s->pair[1] : s->pair[0]);
}

static int reported(const seen *s, int fd) {
  int k = 0;
  for (int i = 0; i < s->n && i < 512; i++)
    k += s->fd[i] == fd;
  return k;
}

static void wait_once(es_loop *l, int timeout, seen *s) {
  memset(s, 0, sizeof *s);
  ck_assert_int_eq(es_loop_wait(l, timeout, record, s), 0);
}

START_TEST(test_loop_watch_unwatch) {
  es_loop *l = NULL;
  ck_assert_int_eq(es_loop_new(&l), 0);
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  seen s;
  wait_once(l, 0, &s);
  ck_assert_int_eq(s.n, 0);
  ck_assert_int_eq(es_loop_watch(l, p[0], ES_LOOP_IN), 0);
  ck_assert_int_eq(es_loop_watch(l, p[1], ES_LOOP_OUT), 0);
  wait_once(l, 1000, &s);
  ck_assert_int_eq(s.n, 1);
  ck_assert_int_eq(s.fd[0], p[1]);
  ck_assert(s.ready[0] & ES_LOOP_OUT);
  ck_assert_int_eq(es_loop_watch(l, p[1], 0), 0); /* changed: nothing wanted */
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  wait_once(l, 1000, &s);
  ck_assert_int_eq(s.n, 1);
  ck_assert_int_eq(s.fd[0], p[0]);
  ck_assert_uint_eq(s.ready[0], ES_LOOP_IN);
  /* Unwatched, still readable and open: not reported again, ever. */
  es_loop_unwatch(l, p[0]);
  es_loop_unwatch(l, p[0]);
  for (int i = 0; i < 3; i++) {
    wait_once(l, 0, &s);
    ck_assert_int_eq(s.n, 0);
  }
  /* Watched again. */
  ck_assert_int_eq(es_loop_watch(l, p[0], ES_LOOP_IN), 0);
  wait_once(l, 1000, &s);
  ck_assert_int_eq(s.n, 1);
  ck_assert_int_eq(s.fd[0], p[0]);
  /* Closed first, unwatched after (what libcurl does); the number is then
   * reused by a new descriptor, which is watched and reported. */
  int old = p[0];
  close(p[0]);
  close(p[1]);
  es_loop_unwatch(l, old);
  es_loop_unwatch(l, p[1]);
  ck_assert_int_eq(pipe(p), 0);
  ck_assert(p[0] == old || p[1] == old);
  int r = p[0] == old ? p[0] : p[1];
  ck_assert_int_eq(es_loop_watch(l, r, r == p[0] ? ES_LOOP_IN : ES_LOOP_OUT), 0);
  if (r == p[0])
    ck_assert_int_eq(write(p[1], "x", 1), 1);
  wait_once(l, 1000, &s);
  ck_assert_int_eq(s.n, 1);
  ck_assert_int_eq(s.fd[0], r);
  /* Closed and never unwatched: reported at most once more, then never. */
  close(p[0]);
  close(p[1]);
  wait_once(l, 0, &s);
  ck_assert_int_le(s.n, 1);
  wait_once(l, 0, &s);
  ck_assert_int_eq(s.n, 0);
  ck_assert_int_ne(es_loop_watch(l, -1, ES_LOOP_IN), 0);
  es_loop_unwatch(l, -1);
  es_loop_unwatch(l, 100000);
  es_loop_free(l);
}
END_TEST

static void *wake_later(void *arg) {
  usleep(50 * 1000);
  ck_assert_int_eq(es_loop_wakeup((es_loop *)arg), 0);
  return NULL;
}

START_TEST(test_loop_wakeup) {
  es_loop *l = NULL;
  ck_assert_int_eq(es_loop_new(&l), 0);
  int w = es_loop_wakeup_fd(l);
  ck_assert_int_ge(w, 0);
  ck_assert(fcntl(w, F_GETFD) & FD_CLOEXEC);
  ck_assert(fcntl(w, F_GETFL) & O_NONBLOCK);
  ck_assert_int_ne(es_loop_watch(l, w, ES_LOOP_IN), 0); /* the loop's own */
  /* Many wakeups before a wait: one report, and drained it is quiet. */
  for (int i = 0; i < 100000; i++)
    ck_assert_int_eq(es_loop_wakeup(l), 0);
  seen s;
  wait_once(l, 1000, &s);
  ck_assert_int_eq(s.n, 1);
  ck_assert_int_eq(s.fd[0], w);
  es_loop_drain(l);
  wait_once(l, 0, &s);
  ck_assert_int_eq(s.n, 0);
  es_loop_drain(l); /* empty: does not block */
  /* From another thread, ending a wait without limit. */
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, wake_later, l), 0);
  wait_once(l, -1, &s);
  ck_assert_int_eq(s.n, 1);
  ck_assert_int_eq(s.fd[0], w);
  pthread_join(t, NULL);
  es_loop_drain(l);
  es_loop_free(l);
}
END_TEST

/* Many descriptors, half unwatched in a scattered order: exactly the others
 * are reported; one unwatched by the callback is not reported after. */
START_TEST(test_loop_many) {
  enum { N = 150 };
  es_loop *l = NULL;
  ck_assert_int_eq(es_loop_new(&l), 0);
  int p[N][2];
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(pipe(p[i]), 0);
    ck_assert_int_eq(es_loop_watch(l, p[i][0], ES_LOOP_IN), 0);
    ck_assert_int_eq(write(p[i][1], "x", 1), 1);
  }
  for (int i = 0; i < N; i++)
    if ((i * 7) % 3 == 0)
      es_loop_unwatch(l, p[(i * 37) % N][0]);
  int want = 0;
  for (int i = 0; i < N; i++) {
    int gone = 0;
    for (int j = 0; j < N; j++)
      gone |= (j * 7) % 3 == 0 && (j * 37) % N == i;
    want += !gone;
  }
  /* epoll reports at most 64 a wait: wait until every one was seen, each
   * reading its byte so it is not reported twice. */
  int got = 0;
  for (int round = 0; round < 10 && got < want; round++) {
    seen s;
    wait_once(l, 1000, &s);
    for (int i = 0; i < s.n; i++) {
      char c;
      ck_assert_int_eq(read(s.fd[i], &c, 1), 1);
    }
    got += s.n;
  }
  ck_assert_int_eq(got, want);
  for (int i = 0; i < N; i++) {
    es_loop_unwatch(l, p[i][0]);
    close(p[i][0]);
    close(p[i][1]);
  }
  /* Two ready; the first report unwatches the other. */
  int a[2], b[2];
  ck_assert_int_eq(pipe(a), 0);
  ck_assert_int_eq(pipe(b), 0);
  ck_assert_int_eq(es_loop_watch(l, a[0], ES_LOOP_IN), 0);
  ck_assert_int_eq(es_loop_watch(l, b[0], ES_LOOP_IN), 0);
  ck_assert_int_eq(write(a[1], "x", 1), 1);
  ck_assert_int_eq(write(b[1], "x", 1), 1);
  seen s;
  memset(&s, 0, sizeof s);
  s.loop = l;
  s.pair[0] = a[0];
  s.pair[1] = b[0];
  /* Both are ready before the wait: one report only. */
  ck_assert_int_eq(es_loop_wait(l, 1000, record, &s), 0);
  ck_assert_int_eq(s.n, 1);
  ck_assert_int_eq(reported(&s, a[0]) + reported(&s, b[0]), 1);
  es_loop_free(l);
  close(a[0]);
  close(a[1]);
  close(b[0]);
  close(b[1]);
}
END_TEST

static Suite *loop_suite(void) {
  Suite *su = suite_create("loop");
  TCase *tc = tcase_create("backend");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_backend_is_the_one_built);
  suite_add_tcase(su, tc);
  tc = tcase_create("heap");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_heap_order);
  tcase_add_test(tc, test_heap_reserve_grows);
  suite_add_tcase(su, tc);
  tc = tcase_create("loop");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_loop_watch_unwatch);
  tcase_add_test(tc, test_loop_wakeup);
  tcase_add_test(tc, test_loop_many);
  suite_add_tcase(su, tc);
  return su;
}

int main(void) {
  SRunner *sr = srunner_create(loop_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
