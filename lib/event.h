/*
 * event.h - the event handed to listeners (internal): what the opaque
 * eventsource_event_t of the public header holds, and its constructor.
 *
 * An event only borrows its strings: it lives on the dispatcher's stack for
 * the duration of one dispatch.
 */
#ifndef EVENTSOURCE_EVENT_H
#define EVENTSOURCE_EVENT_H

#include <stddef.h>

#include "eventsource.h"

_Static_assert(EVENTSOURCE_KIND_MESSAGE == 0 && EVENTSOURCE_KIND_OPEN == 1 &&
                   EVENTSOURCE_KIND_ERROR == 2 && EVENTSOURCE_KIND_COMMENT == 3,
               "es_event_init() indexes its names by kind");

struct eventsource_event {
  eventsource_kind_t kind;
  const char *type;
  size_t type_len;
  const char *data;
  size_t data_len;
  const char *id;
  size_t id_len;
  /* ERROR notifications only */
  eventsource_error_t error;
  long http_status;
  const char *message;
  int will_reconnect;
  long reconnect_ms;
  int curl_code;
  /* OPEN and ERROR notifications: the response's HTTP version (10, 11, 20,
   * 30; 0: none) and whether its connection was reused */
  long http_version;
  int conn_reused;
  /* OPEN and ERROR notifications: the response (response.h), or NULL */
  const struct es_response *resp;
};

/* An event of kind with its last event ID (id, id_len): the type is the
 * kind's name ("message", "open", "error", "comment"), data and message are
 * "", reconnect_ms is -1 and the rest 0. */
static inline void es_event_init(eventsource_event_t *ev, eventsource_kind_t kind,
                                 const char *id, size_t id_len) {
  /* inline: it runs once per event */
  static const char *const names[] = {"message", "open", "error", "comment"};
  static const unsigned char lens[] = {7, 4, 5, 7};
  *ev = (eventsource_event_t){.kind = kind,
                              .type = names[kind],
                              .type_len = lens[kind],
                              .data = "",
                              .id = id,
                              .id_len = id_len,
                              .message = "",
                              .reconnect_ms = -1};
}

#endif
