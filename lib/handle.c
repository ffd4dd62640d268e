/*
 * handle.c - the eventsource_t handle: creating and destroying it, its last
 * failure, its listeners, and the getters of its state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "os.h"

void es_set_error_va(eventsource_t *es, eventsource_error_t code, long status,
                         int curl_code, const char *fmt, va_list ap) {
  es->last_error = code;
  es->last_status = status;
  es->last_curl_code = curl_code;
  vsnprintf(es->last_msg, sizeof es->last_msg, fmt, ap);
}

void es_set_error(eventsource_t *es, eventsource_error_t code, long status,
                      int curl_code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  es_set_error_va(es, code, status, curl_code, fmt, ap);
  va_end(ap);
}

/* curl_global_init() is reference counted, and thread-safe in the libcurl
 * versions we build against (7.84 and later); each source holds one reference. */
static int curl_global_ready(void) {
  return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

eventsource_error_t eventsource_new(eventsource_t **out, const char *url) {
  if (!out || !url)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  eventsource_error_t urc = es_check_url(url);
  if (urc)
    return urc;
  if (!curl_global_ready())
    return EVENTSOURCE_ERR_CURL;
  eventsource_t *es = es_calloc(1, sizeof *es);
  if (!es) {
    curl_global_cleanup();
    return EVENTSOURCE_ERR_NOMEM;
  }
  es->url = es_strdup(url);
  es->method = es_strdup("GET");
  es->parser = es_parser_new(&es_source_parser_callbacks, es, EVENTSOURCE_DEFAULT_MAX_LINE,
                             EVENTSOURCE_DEFAULT_MAX_EVENT);
  if (!es->url || !es->method || !es->parser ||
      pthread_mutex_init(&es->cb_lock, NULL) != 0 ||
      pthread_mutex_init(&es->multi_lock, NULL) != 0) {
    es_parser_free(es->parser);
    es_free(es->method);
    es_free(es->url);
    es_free(es);
    curl_global_cleanup();
    return EVENTSOURCE_ERR_NOMEM;
  }
  es_listeners_init(&es->listeners);
  es->retry_ms = EVENTSOURCE_DEFAULT_RETRY_MS;
  es->max_retry_ms = EVENTSOURCE_DEFAULT_MAX_RETRY_MS;
  es->backoff_reset_ms = EVENTSOURCE_DEFAULT_BACKOFF_RESET_MS;
  es->jitter = 1;
  es->connect_timeout_ms = 30000;
  es->max_redirects = 10;
  es->max_line = EVENTSOURCE_DEFAULT_MAX_LINE;
  es->max_event = EVENTSOURCE_DEFAULT_MAX_EVENT;
  es->max_id = EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID;
  es_parser_set_max_id(es->parser, es->max_id);
  es->read_timeout_ms = EVENTSOURCE_DEFAULT_READ_TIMEOUT_MS;
  es->heap_index = SIZE_MAX;
  es->phase = ES_IDLE;
  es_set_ready_state(es, EVENTSOURCE_CONNECTING);
  *out = es;
  return EVENTSOURCE_OK;
}

void es_source_destroy(eventsource_t *es) {
  es_source_drop_transfer(es);
  if (es->easy)
    curl_easy_cleanup(es->easy);
  curl_slist_free_all(es->slist);
  for (size_t i = 0; i < es->nheaders; i++) {
    es_free(es->headers[i].name);
    es_free(es->headers[i].value);
  }
  es_free(es->headers);
  es_listeners_free(&es->listeners);
  es_parser_free(es->parser);
  es_free(es->method);
  es_free(es->body);
  es_free(es->req_url);
  es_free(es->resp_location);
  es_free(es->url);
  pthread_mutex_destroy(&es->cb_lock);
  pthread_mutex_destroy(&es->multi_lock);
  es_free(es);
  curl_global_cleanup();
}

void eventsource_set_userdata(eventsource_t *es, void *data) {
  if (es)
    es->userdata = data;
}

void *eventsource_userdata(const eventsource_t *es) {
  return es ? es->userdata : NULL;
}



/* ------------------------------------------------------------------------ */
/* Listeners and accessors                                                  */
/* ------------------------------------------------------------------------ */

eventsource_error_t eventsource_add_listener(eventsource_t *es, const char *type,
                                             eventsource_listener_fn fn,
                                             void *userdata,
                                             eventsource_listener_id_t *id) {
  if (!es || !type || !fn)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  return es_listeners_add(&es->listeners, ES_LISTEN_TYPE, type, fn, userdata, id);
}

eventsource_error_t eventsource_add_any_listener(eventsource_t *es,
                                                 eventsource_listener_fn fn,
                                                 void *userdata,
                                                 eventsource_listener_id_t *id) {
  if (!es || !fn)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  return es_listeners_add(&es->listeners, ES_LISTEN_ANY, NULL, fn, userdata, id);
}

eventsource_error_t eventsource_add_comment_listener(eventsource_t *es,
                                                     eventsource_listener_fn fn,
                                                     void *userdata,
                                                     eventsource_listener_id_t *id) {
  if (!es || !fn)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  return es_listeners_add(&es->listeners, ES_LISTEN_COMMENT, NULL, fn, userdata, id);
}

eventsource_error_t eventsource_remove_listener(eventsource_t *es,
                                                eventsource_listener_id_t id) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  return es_listeners_remove(&es->listeners, id);
}

eventsource_ready_state_t eventsource_ready_state(const eventsource_t *es) {
  if (!es)
    return EVENTSOURCE_CLOSED;
  /* closed is set first by eventsource_close(): the loop thread may still
   * store CONNECTING or OPEN before it applies the close. */
  if (es_is_closed(es))
    return EVENTSOURCE_CLOSED;
  return (eventsource_ready_state_t)atomic_load(
      &((eventsource_t *)(uintptr_t)es)->ready_state);
}

const char *eventsource_url(const eventsource_t *es) { return es ? es->url : ""; }

const char *eventsource_request_url(const eventsource_t *es) {
  if (!es)
    return "";
  return es->req_url ? es->req_url : es->url;
}

const char *eventsource_last_event_id(const eventsource_t *es, size_t *len) {
  if (!es) {
    if (len)
      *len = 0;
    return "";
  }
  return es_parser_last_event_id(es->parser, len);
}

eventsource_error_t eventsource_last_error(const eventsource_t *es) {
  return es ? es->last_error : EVENTSOURCE_ERR_INVALID_ARGUMENT;
}

const char *eventsource_last_error_message(const eventsource_t *es) {
  return es ? es->last_msg : "";
}

long eventsource_last_http_status(const eventsource_t *es) {
  return es ? es->last_status : 0;
}

int eventsource_last_curl_code(const eventsource_t *es) {
  return es ? es->last_curl_code : 0;
}
