/*
 * test_util.h - small helpers shared by several suites: the clock, the test
 * scale, the usual event server, a counter another thread can wait on, and
 * main()'s runner. Nothing here holds global state.
 */
#ifndef TS_TEST_UTIL_H
#define TS_TEST_UTIL_H

#include <check.h>
#include <pthread.h>
#include <time.h>

#include "eventsource.h"
#include "support/sse_server.h"

/* CLOCK_MONOTONIC in milliseconds. */
long tu_now_ms(void);

/* The absolute CLOCK_MONOTONIC time ms from now, for
 * pthread_cond_timedwait() on a condition variable using that clock. */
void tu_deadline_in(struct timespec *ts, long ms);

/* 1 when ES_TEST_SCALE=small (valgrind): fewer streams and iterations. */
int tu_small_scale(void);

/* A started loopback server (asserted). */
ts_server *tu_server_start(void);

/* A server whose every connection gets: 200 headers, nevents events
 * ("data: e1" ...), then it holds the connection open. */
ts_server *tu_events_server(int nevents);

/* A counter bumped by one thread (a listener) and waited on by another. */
typedef struct tu_counter {
  int n;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} tu_counter;

void tu_counter_init(tu_counter *c);
void tu_counter_destroy(tu_counter *c);
void tu_counter_inc(tu_counter *c);
/* Waits without limit until the counter reaches n. */
void tu_counter_wait(tu_counter *c, int n);

/* A thread (tu_close_thread) that waits until `opened` reaches n, then
 * closes es[0..n-1]. */
typedef struct tu_closer {
  eventsource_t **es;
  int n;
  tu_counter opened;
} tu_closer;

void *tu_close_thread(void *arg);

/* Runs the suite, prints in the given mode, frees the runner; the exit
 * status for main(). */
int tu_run_suite(Suite *s, enum print_output mode);

#endif
