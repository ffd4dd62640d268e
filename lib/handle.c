/*
 * handle.c - the eventsource_t handle: creating and destroying it, its last
 * failure, its listeners, and the getters of its state.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"
#include "os.h"
#include "policy.h"

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
  int opt_ok = es_options_init(&es->opt) == EVENTSOURCE_OK;
  es->parser = es_parser_new(&es_source_parser_callbacks, es, EVENTSOURCE_DEFAULT_MAX_LINE,
                             EVENTSOURCE_DEFAULT_MAX_EVENT);
  if (!es->url || !opt_ok || !es->parser ||
      pthread_mutex_init(&es->cb_lock, NULL) != 0 ||
      pthread_mutex_init(&es->multi_lock, NULL) != 0) {
    es_parser_free(es->parser);
    es_options_free(&es->opt);
    es_free(es->url);
    es_free(es);
    curl_global_cleanup();
    return EVENTSOURCE_ERR_NOMEM;
  }
  es_listeners_init(&es->listeners);
  es->retry_ms = EVENTSOURCE_DEFAULT_RETRY_MS;
  es_parser_set_max_id(es->parser, es->opt.max_id);
  es_transfer_init(&es->tr, es->url, &es->opt, &es_source_sink, es, &es->last);
  es->rnd = es_now_ms() ^ (uint64_t)(uintptr_t)es ^ ((uint64_t)getpid() << 32);
  es->link.heap_index = SIZE_MAX;
  es->phase = ES_IDLE;
  es_set_ready_state(es, EVENTSOURCE_CONNECTING);
  *out = es;
  return EVENTSOURCE_OK;
}

void es_source_destroy(eventsource_t *es) {
  es_transfer_cleanup(&es->tr);
  es_options_free(&es->opt);
  es_listeners_free(&es->listeners);
  es_parser_free(es->parser);
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
  return es_transfer_url(&es->tr);
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
  return es ? es->last.code : EVENTSOURCE_ERR_INVALID_ARGUMENT;
}

const char *eventsource_last_error_message(const eventsource_t *es) {
  return es ? es->last.msg : "";
}

long eventsource_last_http_status(const eventsource_t *es) {
  return es ? es->last.status : 0;
}

int eventsource_last_curl_code(const eventsource_t *es) {
  return es ? es->last.curl_code : 0;
}
