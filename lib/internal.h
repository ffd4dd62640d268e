/*
 * internal.h - struct eventsource and the state machine's interface to the
 * loop (internal). docs/HACKING.md has the module map.
 *
 * Calls go one way: run.c -> multi.c -> source.c -> transfer.c -> options,
 * response, parser, listeners, policy, event. The state machine (source.c)
 * never calls the loop: each of its entry points takes the time and returns
 * what the loop is to do next (es_next), a value the loop applies.
 */
#ifndef EVENTSOURCE_INTERNAL_H
#define EVENTSOURCE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>

#include "error.h"
#include "event.h"
#include "eventsource.h"
#include "eventsource_curl.h"
#include "http2.h"
#include "listeners.h"
#include "options.h"
#include "parser.h"
#include "stats.h"
#include "transfer.h"

/* The most a delay option may be (24 h): keeps the arithmetic in range. */
#define ES_MAX_DELAY_MS (24L * 3600 * 1000)

/* Where a source is in its life (readyState is derived from it and kept in
 * an atomic for other threads). Written by source.c only. */
typedef enum es_phase {
  ES_IDLE = 0,     /* not in a multi, or added but not started yet */
  ES_WAITING,      /* waiting for the reconnection deadline */
  ES_TRANSFER,     /* a transfer is running (CONNECTING until validated) */
  ES_OPEN,         /* the transfer was validated: 200 text/event-stream */
  ES_DONE          /* CLOSED */
} es_phase;

/* Requests queued for the loop (bit flags in eventsource.ops). */
#define ES_OP_START 1u
#define ES_OP_CLOSE 2u
#define ES_OP_RESTART 4u
#define ES_OP_REMOVE 8u
#define ES_OP_FREE 16u
#define ES_OP_FAIL 32u /* fail the connection with the transfer's failure */

/* What a source is to the multi it is in: written by multi.c only (on the
 * loop thread, except `queued` and `pending_next`, under the multi's lock). */
typedef struct es_link {
  eventsource_t *next, *prev;  /* in the multi's list of sources */
  size_t heap_index;           /* in the deadline heap, or SIZE_MAX */
  uint64_t deadline;           /* ms; 0: none */
  CURL *in_curl;               /* the easy handle added to the curl multi */
  int counted_active;          /* counted in the multi's active sources */
  int queued;                  /* in the multi's pending list */
  eventsource_t *pending_next;
  es_mstats *up;               /* the multi's totals, bumped by source.c */
} es_link;

struct eventsource {
  char *url;
  void *userdata;
  es_options opt;

  es_listeners listeners;
  es_parser *parser;
  es_transfer tr;

  /* the state machine (source.c, on the loop thread) */
  es_phase phase;
  long retry_ms;             /* the reconnection time (user, then retry: fields) */
  unsigned attempt;          /* consecutive failures */
  uint64_t opened_at;        /* ms, when the last connection opened */
  int delivered;             /* it dispatched an event (a success) */
  uint64_t rnd;              /* the jitter's random state */
  eventsource_error_t close_reason;
  es_error last;             /* the last failure */
  es_stats stats;            /* eventsource_stat(): written here, read anywhere */

  /* read and written from any thread */
  _Atomic int ready_state;
  _Atomic int closed;        /* set first by eventsource_close() */
  _Atomic int user_closed;   /* closed by eventsource_close() */
  _Atomic unsigned ops;      /* ES_OP_*: requests waiting for the loop */
  /* Held by the loop thread while it runs listeners and hooks of this
   * source, so that eventsource_close() from another thread can wait for a
   * listener that is running to return (the header documents it). Taken
   * at most once per piece of body libcurl hands over, by the first event
   * of the piece (es_parser_feed() of it may dispatch many), and not at all
   * for a piece that completes none; cb_held says it is held (loop thread). */
  pthread_mutex_t cb_lock;
  int cb_held;
  /* Guards `multi` for other threads (close, restart, remove). */
  pthread_mutex_t multi_lock;

  /* the loop (multi.c) */
  eventsource_multi_t *multi;
  es_link link;
  es_gate_link gate;         /* at its origin's gate (http2.c) */
  int conn_broken;           /* the last transfer's connection broke */
  int free_deferred;         /* freed from a callback: destroy at a safe point */

  /* eventsource_run() / eventsource_start() (run.c) */
  eventsource_multi_t *own_multi;
  pthread_t thread;
  int thread_started;
  int running;
};

static inline int es_is_closed(const eventsource_t *es) {
  return atomic_load(&((eventsource_t *)(uintptr_t)es)->closed) != 0;
}
static inline void es_set_ready_state(eventsource_t *es, eventsource_ready_state_t s) {
  atomic_store(&es->ready_state, (int)s);
}

/* ---- handle.c ---- */
/* Records the source's last failure (eventsource_last_error() and the rest). */
#define es_set_error(es, ...) es_error_set(&(es)->last, __VA_ARGS__)
/* Frees everything. The source must not be in a multi. */
void es_source_destroy(eventsource_t *es);

/* ---- source.c: the state machine ---- */

/* What the loop does next for a source. */
typedef enum es_go {
  ES_GO_NONE,    /* nothing (a queued request takes over) */
  ES_GO_CONNECT, /* call es_source_connect() now */
  ES_GO_ADD,     /* add `easy` to the curl multi; deadline `at` (0: none) */
  ES_GO_TIMER,   /* deadline `at` (0: none), then es_source_deadline() */
  ES_GO_DONE     /* CLOSED: no deadline, no longer active */
} es_go;

typedef struct es_next {
  es_go go;
  int drop;      /* first: the running transfer out of the curl multi, no deadline */
  uint64_t at;   /* ms on es_now_ms()'s clock */
  CURL *easy;    /* ES_GO_ADD */
} es_next;

/* The parser's callbacks and the transfer's sink, with the source as their
 * context (handle.c wires them up). */
extern const es_parser_callbacks es_source_parser_callbacks;
extern const es_transfer_sink es_source_sink;

/* May es join a multi (not closed)? Then es_source_joined(). */
int es_source_can_join(const eventsource_t *es);
void es_source_joined(eventsource_t *es);
/* es left its multi (the loop took its transfer out already). */
void es_source_left(eventsource_t *es);

/* The requests in ops (ES_OP_START, CLOSE, FAIL, RESTART), applied. */
es_next es_source_ops(eventsource_t *es, unsigned ops, uint64_t now);
/* Starts a connection attempt at the source's URL. */
es_next es_source_connect(eventsource_t *es, uint64_t now);
/* libcurl is done with the transfer (already out of the curl multi). */
es_next es_source_transfer_done(eventsource_t *es, CURLcode result, uint64_t now);
/* The source's deadline passed: reconnect, or check the read timeout. */
es_next es_source_deadline(eventsource_t *es, uint64_t now);
/* The multi's connection limit leaves no room for es's request (limit
 * connections per host): CONNECTION_LIMIT, retried as a network error. */
es_next es_source_refused(eventsource_t *es, long limit, uint64_t now);
/* The loop could not add the transfer to the curl multi. */
es_next es_source_add_failed(eventsource_t *es, uint64_t now);
/* A failure found inside a libcurl callback (a descriptor that could not be
 * watched): recorded; returns 1 when it is the transfer's first, and then
 * the loop queues ES_OP_FAIL. */
int es_source_note_failure(eventsource_t *es, eventsource_error_t code, const char *msg);
/* The response was validated at now: OPEN, then the open notification.
 * Returns 0 to end the transfer (closed from a listener). */
int es_source_opened(eventsource_t *es, uint64_t now);

/* ---- multi.c, for run.c ---- */
/* Queues ops for the loop and wakes it when called from another thread. */
void es_multi_queue(eventsource_multi_t *m, eventsource_t *es, unsigned ops);
int es_multi_on_loop_thread(const eventsource_multi_t *m);
/* Is the loop inside a step (libcurl or user callbacks may be on the stack)? */
int es_multi_in_step(const eventsource_multi_t *m);
/* The last loop failure's message ("" when none). */
const char *es_multi_error(const eventsource_multi_t *m);

#endif
