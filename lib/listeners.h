/*
 * listeners.h - the listener registry of one source (internal).
 *
 * Listeners may be added and removed while a dispatch is running: a dispatch
 * calls only the listeners that existed when it began and skips any removed
 * since; removed entries are compacted once no dispatch is running.
 */
#ifndef EVENTSOURCE_LISTENERS_H
#define EVENTSOURCE_LISTENERS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "eventsource.h"

#define ES_LISTEN_TYPE 0    /* one event type */
#define ES_LISTEN_ANY 1     /* everything but comments */
#define ES_LISTEN_COMMENT 2 /* comments */

typedef struct es_listener {
  eventsource_listener_id_t id; /* 0 once removed */
  int what;
  char *type;
  size_t type_len;
  uint32_t hash; /* of type: compared before the bytes */
  eventsource_listener_fn fn;
  void *userdata;
} es_listener;

typedef struct es_listeners {
  es_listener *v;
  size_t n, cap;
  eventsource_listener_id_t next_id;
  int dispatching; /* nesting depth */
  int removed;     /* entries waiting to be compacted */
  size_t live[3];  /* listeners of each ES_LISTEN_* not removed */
} es_listeners;

void es_listeners_init(es_listeners *l);
void es_listeners_free(es_listeners *l);
eventsource_error_t es_listeners_add(es_listeners *l, int what, const char *type,
                                     eventsource_listener_fn fn, void *userdata,
                                     eventsource_listener_id_t *id);
eventsource_error_t es_listeners_remove(es_listeners *l,
                                        eventsource_listener_id_t id);

/* Calls, in order, each listener that matches ev (type listeners first, then
 * any-listeners, or comment listeners for a comment), stopping as soon as
 * *closed is set (the source was closed by one of them or another thread).
 * An event type is found by its hash and length before its bytes are
 * compared, and a kind of listener no one registered costs nothing. */
void es_listeners_dispatch(es_listeners *l, eventsource_t *es,
                           const eventsource_event_t *ev, const _Atomic int *closed);

#endif
