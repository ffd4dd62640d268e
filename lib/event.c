/*
 * event.c - the public accessors of eventsource_event_t (event.h has the
 * struct and its inline constructor).
 */
#include "event.h"

eventsource_kind_t eventsource_event_kind(const eventsource_event_t *ev) {
  return ev ? ev->kind : EVENTSOURCE_KIND_MESSAGE;
}

const char *eventsource_event_type(const eventsource_event_t *ev, size_t *len) {
  if (len)
    *len = ev ? ev->type_len : 0;
  return ev ? ev->type : "";
}

const char *eventsource_event_data(const eventsource_event_t *ev, size_t *len) {
  if (len)
    *len = ev ? ev->data_len : 0;
  return ev ? ev->data : "";
}

const char *eventsource_event_last_event_id(const eventsource_event_t *ev,
                                            size_t *len) {
  if (len)
    *len = ev ? ev->id_len : 0;
  return ev && ev->id ? ev->id : "";
}

eventsource_error_t eventsource_event_error(const eventsource_event_t *ev) {
  return ev && ev->kind == EVENTSOURCE_KIND_ERROR ? ev->error : EVENTSOURCE_OK;
}

long eventsource_event_http_status(const eventsource_event_t *ev) {
  return ev && ev->kind == EVENTSOURCE_KIND_ERROR ? ev->http_status : 0;
}

const char *eventsource_event_message(const eventsource_event_t *ev) {
  return ev && ev->kind == EVENTSOURCE_KIND_ERROR && ev->message ? ev->message : "";
}

int eventsource_event_will_reconnect(const eventsource_event_t *ev) {
  return ev && ev->kind == EVENTSOURCE_KIND_ERROR ? ev->will_reconnect : 0;
}

long eventsource_event_reconnect_ms(const eventsource_event_t *ev) {
  return ev && ev->kind == EVENTSOURCE_KIND_ERROR ? ev->reconnect_ms : -1;
}

int eventsource_event_curl_code(const eventsource_event_t *ev) {
  return ev && ev->kind == EVENTSOURCE_KIND_ERROR ? ev->curl_code : 0;
}

long eventsource_event_http_version(const eventsource_event_t *ev) {
  return ev ? ev->http_version : 0;
}

int eventsource_event_connection_reused(const eventsource_event_t *ev) {
  return ev ? ev->conn_reused : 0;
}
