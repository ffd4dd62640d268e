/*
 * multi_int.h - the multi handle's state, shared by multi.c (membership,
 * requests, the step) and drive.c (what runs the steps) (internal).
 */
#ifndef EVENTSOURCE_MULTI_INT_H
#define EVENTSOURCE_MULTI_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>

#include "eventsource.h"
#include "heap.h"
#include "http2.h"
#include "loop.h"
#include "stats.h"

#define NO_DEADLINE UINT64_MAX

struct eventsource_multi {
  CURLM *cm;
  es_loop *loop;         /* the built-in loop's descriptors */
  int wakefd;            /* es_loop_wakeup_fd(loop) */
  _Atomic int wake_pending;

  eventsource_socket_fn sock_fn;
  void *sock_ud;
  eventsource_timer_fn timer_fn;
  void *timer_ud;
  void *wake_socketp;
  uint64_t announced;   /* absolute deadline last given to timer_fn */
  int timer_armed;

  es_heap heap;          /* the sources' deadlines */

  eventsource_t *sources; /* doubly linked */
  size_t nsources;
  _Atomic size_t nactive; /* read by eventsource_multi_run() between steps */
  es_mstats stats;        /* eventsource_multi_stat(); sources bump the totals */
  es_gates gates;         /* HTTP/2 connection sharing (http2.c) */

  pthread_mutex_t lock;   /* guards the pending list */
  /* Held by the loop thread for the whole of each step, so that another
   * thread can tell "no step yet, and none can start" apart from "a step is
   * running" before the loop thread is known (eventsource_multi_remove). */
  pthread_mutex_t step_lock;
  eventsource_t *pending, *pending_tail;

  int curl_dead;         /* libcurl declared the multi dead: do not call it */
  char error[160];       /* the last loop failure, with libcurl's message */
  pthread_t loop_thread;
  _Atomic int loop_thread_set;
  int in_step;
  uint64_t now;          /* ms, when the running socket action began */
};

/* A step: everything that runs libcurl or the sources' callbacks happens
 * between begin and end (on the loop thread, step_lock held). end_step
 * applies completions, queued requests and deadlines, then tells the timer
 * callback about the next deadline. */
void es_multi_begin_step(eventsource_multi_t *m);
void es_multi_end_step(eventsource_multi_t *m);
/* Completions, queued requests and deadlines, until none is left. */
void es_multi_settle(eventsource_multi_t *m);
/* Consumes a wakeup (the wakeup descriptor was ready). */
void es_multi_drain_wakeup(eventsource_multi_t *m);
/* Are requests queued? */
int es_multi_has_pending(eventsource_multi_t *m);
/* The earliest of libcurl's timer and the sources' deadlines, absolute ms
 * (NO_DEADLINE: none). */
uint64_t es_multi_next_deadline(eventsource_multi_t *m, uint64_t now);

#endif
