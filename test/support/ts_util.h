/*
 * ts_util.h - small helpers shared by several suites: the clock, the test
 * scale, the usual event server, a counter another thread can wait on, and
 * main()'s runner. Nothing here holds global state.
 */
#ifndef TS_UTIL_H
#define TS_UTIL_H

#include <check.h>
#include <pthread.h>
#include <time.h>

#include "eventsource.h"
#include "support/sse_server.h"

/* CLOCK_MONOTONIC in milliseconds. */
long ts_now_ms(void);

/* The absolute CLOCK_MONOTONIC time ms from now, for
 * pthread_cond_timedwait() on a condition variable using that clock. */
void ts_deadline_in(struct timespec *ts, long ms);

/* 1 when ES_TEST_SCALE=small (valgrind): fewer streams and iterations. */
int ts_small_scale(void);

/* A started loopback server (asserted). */
ts_server *ts_start_server(void);

/* A server whose every connection gets: 200 headers, nevents events
 * ("data: e1" ...), then it holds the connection open. */
ts_server *ts_events_server(int nevents);

/* A counter bumped by one thread (a listener) and waited on by another. */
typedef struct ts_count {
  int n;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} ts_count;

void ts_count_init(ts_count *c);
void ts_count_destroy(ts_count *c);
void ts_count_inc(ts_count *c);
/* Waits without limit until the counter reaches n. */
void ts_count_wait(ts_count *c, int n);

/* A thread (ts_close_thread) that waits until `opened` reaches n, then
 * closes es[0..n-1]. */
typedef struct ts_closer {
  eventsource_t **es;
  int n;
  ts_count opened;
} ts_closer;

void *ts_close_thread(void *arg);

/* Runs the suite, prints in the given mode, frees the runner; the exit
 * status for main(). */
int ts_run_suite(Suite *s, enum print_output mode);

#endif
