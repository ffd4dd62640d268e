/* ts_util.c - see ts_util.h. */
#include "support/ts_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long ts_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ts_deadline_in(struct timespec *ts, long ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

int ts_small_scale(void) {
  const char *s = getenv("ES_TEST_SCALE");
  return s != NULL && strcmp(s, "small") == 0;
}

ts_server *ts_start_server(void) {
  ts_server *s = ts_server_start();
  ck_assert_ptr_nonnull(s);
  return s;
}

ts_server *ts_events_server(int nevents) {
  ts_server *s = ts_start_server();
  ts_script *sc = ts_server_add_script(s);
  ts_script_headers(sc);
  for (int i = 0; i < nevents; i++) {
    char line[64];
    snprintf(line, sizeof line, "data: e%d\n\n", i + 1);
    ts_script_writes(sc, line);
  }
  ts_script_hold(sc);
  return s;
}

void ts_count_init(ts_count *c) {
  c->n = 0;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
}

void ts_count_destroy(ts_count *c) {
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
}

void ts_count_inc(ts_count *c) {
  pthread_mutex_lock(&c->mu);
  c->n++;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

void ts_count_wait(ts_count *c, int n) {
  pthread_mutex_lock(&c->mu);
  while (c->n < n)
    pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
}

void *ts_close_thread(void *arg) {
  ts_closer *c = arg;
  ts_count_wait(&c->opened, c->n);
  for (int i = 0; i < c->n; i++)
    eventsource_close(c->es[i]);
  return NULL;
}

int ts_run_suite(Suite *s, enum print_output mode) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, mode);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
