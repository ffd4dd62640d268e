/*
 * source.c - the EventSource handle: options, listeners, the connection's
 * state machine (WHATWG HTML 9.2.2-9.2.4) and its libcurl easy transfer.
 *
 * Flow: multi.c starts a transfer (es_source_connect); libcurl's header
 * callback validates the response and announces the connection; the write
 * callback feeds the parser, whose callbacks dispatch events; when the
 * transfer ends multi.c calls es_source_transfer_done, which decides, with
 * the policy, between reestablishing the connection and failing it.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "internal.h"
#include "policy.h"

/* The most a delay option may be (24 h): keeps the arithmetic in range. */
#define ES_MAX_DELAY_MS (24L * 3600 * 1000)

uint64_t es_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_error(eventsource_t *es, eventsource_error_t code, long status,
                      int curl_code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set_error_va(eventsource_t *es, eventsource_error_t code, long status,
                         int curl_code, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static void set_error_va(eventsource_t *es, eventsource_error_t code, long status,
                         int curl_code, const char *fmt, va_list ap) {
  es->last_error = code;
  es->last_status = status;
  es->last_curl_code = curl_code;
  vsnprintf(es->last_msg, sizeof es->last_msg, fmt, ap);
}

static void set_error(eventsource_t *es, eventsource_error_t code, long status,
                      int curl_code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_error_va(es, code, status, curl_code, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                 */
/* ------------------------------------------------------------------------ */

static int is_closed(const eventsource_t *es) {
  return atomic_load(&es->closed) != 0;
}

/* Every notification goes through here; nothing is dispatched once closed.
 * (eventsource_free() and eventsource_close() tell that they run inside a
 * callback from the multi's step, es_multi_in_step().) */
static void dispatch(eventsource_t *es, const eventsource_event_t *ev) {
  if (is_closed(es))
    return;
  es_listeners_dispatch(&es->listeners, es, ev, is_closed);
}

static void notify_error(eventsource_t *es, int will_reconnect, long delay) {
  eventsource_event_t ev = {0};
  ev.kind = EVENTSOURCE_KIND_ERROR;
  ev.type = "error";
  ev.type_len = 5;
  ev.data = "";
  ev.id = es_parser_last_event_id(es->parser, &ev.id_len);
  ev.error = es->last_error;
  ev.http_status = es->last_status;
  ev.message = es->last_msg;
  ev.will_reconnect = will_reconnect;
  ev.reconnect_ms = will_reconnect ? delay : -1;
  ev.curl_code = es->last_curl_code;
  dispatch(es, &ev);
}

static void set_ready_state(eventsource_t *es, eventsource_ready_state_t s) {
  atomic_store(&es->ready_state, (int)s);
}

/* ------------------------------------------------------------------------ */
/* Parser callbacks                                                         */
/* ------------------------------------------------------------------------ */

/* Non-zero stops the parser: the source was closed or restarted from a
 * listener, so the rest of the chunk belongs to nobody. */
static int stop_parsing(eventsource_t *es) {
  return is_closed(es) || (es->ops & (ES_OP_RESTART | ES_OP_CLOSE)) ||
         es->phase != ES_OPEN;
}

static int on_event(void *ctx, const char *type, size_t type_len,
                    const char *data, size_t data_len, const char *id,
                    size_t id_len) {
  eventsource_t *es = ctx;
  es->delivered = 1;
  eventsource_event_t ev = {0};
  ev.kind = EVENTSOURCE_KIND_MESSAGE;
  ev.type = type;
  ev.type_len = type_len;
  ev.data = data;
  ev.data_len = data_len;
  ev.id = id;
  ev.id_len = id_len;
  ev.message = "";
  ev.reconnect_ms = -1;
  dispatch(es, &ev);
  return stop_parsing(es);
}

static int on_retry(void *ctx, uint64_t ms) {
  eventsource_t *es = ctx;
  es->retry_ms = es_retry_capped(ms, es->max_retry_ms);
  return 0;
}

static int on_comment(void *ctx, const char *text, size_t len) {
  eventsource_t *es = ctx;
  eventsource_event_t ev = {0};
  ev.kind = EVENTSOURCE_KIND_COMMENT;
  ev.type = "comment";
  ev.type_len = 7;
  ev.data = text;
  ev.data_len = len;
  ev.id = es_parser_last_event_id(es->parser, &ev.id_len);
  ev.message = "";
  ev.reconnect_ms = -1;
  dispatch(es, &ev);
  return stop_parsing(es);
}

static int on_parse_error(void *ctx, eventsource_error_t code,
                          const char *message) {
  eventsource_t *es = ctx;
  set_error(es, code, 0, 0, "%s", message);
  notify_error(es, 0, -1);
  return stop_parsing(es);
}

static const es_parser_callbacks parser_cbs = {on_event, on_retry, on_comment,
                                               on_parse_error};

/* ------------------------------------------------------------------------ */
/* Creating and options                                                     */
/* ------------------------------------------------------------------------ */

/* An absolute http(s) URL with a host, that libcurl's URL parser accepts
 * (so a malformed URL is refused here, not retried for ever), without bytes
 * that could split the request line, and short enough to be sent. Returns OK,
 * URL, REQUEST_TOO_LARGE or NOMEM. */
static eventsource_error_t check_url(const char *url) {
  size_t skip;
  if (strlen(url) > EVENTSOURCE_MAX_URL)
    return EVENTSOURCE_ERR_REQUEST_TOO_LARGE;
  if (strncasecmp(url, "http://", 7) == 0)
    skip = 7;
  else if (strncasecmp(url, "https://", 8) == 0)
    skip = 8;
  else
    return EVENTSOURCE_ERR_URL;
  if (url[skip] == '\0' || url[skip] == '/' || url[skip] == '?' || url[skip] == '#')
    return EVENTSOURCE_ERR_URL;
  for (const unsigned char *p = (const unsigned char *)url; *p; p++)
    if (*p <= 0x20 || *p == 0x7f)
      return EVENTSOURCE_ERR_URL;
  CURLU *u = curl_url();
  if (!u)
    return EVENTSOURCE_ERR_NOMEM;
  eventsource_error_t rc = EVENTSOURCE_OK;
  char *host = NULL;
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc == CURLUE_OUT_OF_MEMORY)
    rc = EVENTSOURCE_ERR_NOMEM;
  else if (uc != CURLUE_OK)
    rc = EVENTSOURCE_ERR_URL;
  else if ((uc = curl_url_get(u, CURLUPART_HOST, &host, 0)) != CURLUE_OK || !host || !*host)
    rc = uc == CURLUE_OUT_OF_MEMORY ? EVENTSOURCE_ERR_NOMEM : EVENTSOURCE_ERR_URL;
  curl_free(host);
  curl_url_cleanup(u);
  return rc;
}

/* curl_global_init() is reference counted, and thread-safe in the libcurl
 * versions we build against (7.84 and later); each source holds one reference. */
static int curl_global_ready(void) {
  return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

eventsource_error_t eventsource_new(eventsource_t **out, const char *url) {
  if (!out || !url)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  eventsource_error_t urc = check_url(url);
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
  es->parser = es_parser_new(&parser_cbs, es, EVENTSOURCE_DEFAULT_MAX_LINE,
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
  set_ready_state(es, EVENTSOURCE_CONNECTING);
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

/* RFC 9110 token characters. */
static int is_token(const char *s) {
  if (!*s)
    return 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c)))
      return 0;
  }
  return 1;
}

eventsource_error_t eventsource_set_method(eventsource_t *es, const char *method) {
  if (!es || !method || !is_token(method))
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  char *m = es_strdup(method);
  if (!m)
    return EVENTSOURCE_ERR_NOMEM;
  es_free(es->method);
  es->method = m;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_body(eventsource_t *es, const void *body,
                                         size_t len) {
  if (!es || (!body && len))
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  char *b = NULL;
  if (body && len) {
    b = es_memdup0(body, len);
    if (!b)
      return EVENTSOURCE_ERR_NOMEM;
  }
  es_free(es->body);
  es->body = b;
  es->body_len = b ? len : 0;
  return EVENTSOURCE_OK;
}

/* CR and LF would split the request (HEADER); other controls but HTAB are
 * not allowed in a field value by RFC 9110 (INVALID_ARGUMENT). */
static eventsource_error_t check_header(const char *name, const char *value) {
  if (!is_token(name))
    return EVENTSOURCE_ERR_HEADER;
  if (strcasecmp(name, "Last-Event-ID") == 0)
    return EVENTSOURCE_ERR_HEADER;
  if (!value)
    return EVENTSOURCE_OK;
  eventsource_error_t rc = EVENTSOURCE_OK;
  for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
    if (*p == '\r' || *p == '\n')
      return EVENTSOURCE_ERR_HEADER;
    if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
      rc = EVENTSOURCE_ERR_INVALID_ARGUMENT;
  }
  return rc;
}

static eventsource_error_t header_append(eventsource_t *es, const char *name,
                                         const char *value) {
  es_header *v = es_realloc(es->headers, (es->nheaders + 1) * sizeof *v);
  if (!v)
    return EVENTSOURCE_ERR_NOMEM;
  es->headers = v;
  char *n = es_strdup(name), *val = es_strdup(value);
  if (!n || !val) {
    es_free(n);
    es_free(val);
    return EVENTSOURCE_ERR_NOMEM;
  }
  v[es->nheaders].name = n;
  v[es->nheaders].value = val;
  es->nheaders++;
  return EVENTSOURCE_OK;
}

static size_t header_remove_all(eventsource_t *es, const char *name) {
  size_t j = 0, removed = 0;
  for (size_t i = 0; i < es->nheaders; i++) {
    if (strcasecmp(es->headers[i].name, name) == 0) {
      es_free(es->headers[i].name);
      es_free(es->headers[i].value);
      removed++;
    } else {
      es->headers[j++] = es->headers[i];
    }
  }
  es->nheaders = j;
  return removed;
}

eventsource_error_t eventsource_set_header(eventsource_t *es, const char *name,
                                           const char *value) {
  if (!es || !name || !value)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  eventsource_error_t rc = check_header(name, value);
  if (rc)
    return rc;
  /* Append first so a failed allocation leaves the old value in place. */
  size_t before = es->nheaders;
  rc = header_append(es, name, value);
  if (rc)
    return rc;
  es_header added = es->headers[before];
  es->nheaders = before;
  header_remove_all(es, name);
  es->headers[es->nheaders++] = added;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_add_header(eventsource_t *es, const char *name,
                                           const char *value) {
  if (!es || !name || !value)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  eventsource_error_t rc = check_header(name, value);
  return rc ? rc : header_append(es, name, value);
}

eventsource_error_t eventsource_remove_header(eventsource_t *es, const char *name) {
  if (!es || !name)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  eventsource_error_t rc = check_header(name, NULL);
  if (rc)
    return rc;
  return header_remove_all(es, name) ? EVENTSOURCE_OK : EVENTSOURCE_ERR_NOT_FOUND;
}

eventsource_error_t eventsource_set_last_event_id(eventsource_t *es, const char *id) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (!id)
    id = "";
  if (strpbrk(id, "\r\n"))
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (es->max_id && strlen(id) > es->max_id)
    return EVENTSOURCE_ERR_REQUEST_TOO_LARGE;
  return es_parser_set_last_event_id(es->parser, id, strlen(id)) == 0
             ? EVENTSOURCE_OK
             : EVENTSOURCE_ERR_NOMEM;
}

static eventsource_error_t set_ms(eventsource_t *es, long *field, long ms,
                                  long min) {
  if (!es || ms < min || ms > ES_MAX_DELAY_MS)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  *field = ms;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_retry(eventsource_t *es, long ms) {
  return set_ms(es, es ? &es->retry_ms : NULL, ms, 0);
}
eventsource_error_t eventsource_set_max_retry(eventsource_t *es, long ms) {
  return set_ms(es, es ? &es->max_retry_ms : NULL, ms, 0);
}
eventsource_error_t eventsource_set_backoff_reset(eventsource_t *es, long ms) {
  return set_ms(es, es ? &es->backoff_reset_ms : NULL, ms, 0);
}
eventsource_error_t eventsource_set_read_timeout(eventsource_t *es, long ms) {
  return set_ms(es, es ? &es->read_timeout_ms : NULL, ms, 0);
}
eventsource_error_t eventsource_set_connect_timeout(eventsource_t *es, long ms) {
  return set_ms(es, es ? &es->connect_timeout_ms : NULL, ms, 0);
}

static eventsource_error_t set_flag(eventsource_t *es, int *field, int on) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  *field = on != 0;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_jitter(eventsource_t *es, int enabled) {
  return set_flag(es, es ? &es->jitter : NULL, enabled);
}

eventsource_error_t eventsource_set_max_redirects(eventsource_t *es, long n) {
  if (!es || n < 0 || n > 1000)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->max_redirects = n;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_max_line(eventsource_t *es, size_t bytes) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->max_line = bytes;
  es_parser_set_limits(es->parser, es->max_line, es->max_event);
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_max_event(eventsource_t *es, size_t bytes) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->max_event = bytes;
  es_parser_set_limits(es->parser, es->max_line, es->max_event);
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_max_last_event_id(eventsource_t *es,
                                                      size_t bytes) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->max_id = bytes;
  es_parser_set_max_id(es->parser, bytes);
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_redirect_downgrade(eventsource_t *es, int allow) {
  return set_flag(es, es ? &es->redirect_downgrade : NULL, allow);
}
eventsource_error_t eventsource_set_redirect_headers(eventsource_t *es, int allow) {
  return set_flag(es, es ? &es->redirect_headers : NULL, allow);
}
eventsource_error_t eventsource_set_compression(eventsource_t *es, int enabled) {
  return set_flag(es, es ? &es->compression : NULL, enabled);
}

eventsource_error_t eventsource_set_prepare_callback(eventsource_t *es,
                                                     eventsource_prepare_fn fn,
                                                     void *userdata) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->prepare_fn = fn;
  es->prepare_ud = userdata;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_policy_callback(eventsource_t *es,
                                                    eventsource_policy_fn fn,
                                                    void *userdata) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->policy_fn = fn;
  es->policy_ud = userdata;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_curl_callback(eventsource_t *es,
                                                  eventsource_curl_fn fn,
                                                  void *userdata) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->curl_fn = fn;
  es->curl_ud = userdata;
  return EVENTSOURCE_OK;
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

eventsource_ready_state_t eventsource_ready_state(const eventsource_t *es) {
  if (!es)
    return EVENTSOURCE_CLOSED;
  /* closed is set first by eventsource_close(): the loop thread may still
   * store CONNECTING or OPEN before it applies the close. */
  if (is_closed(es))
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

/* ------------------------------------------------------------------------ */
/* The transfer                                                             */
/* ------------------------------------------------------------------------ */

static void touch(eventsource_t *es) {
  if (es->read_timeout_ms > 0)
    atomic_store_explicit(&es->last_activity, es_now_ms(), memory_order_relaxed);
}

/* Is the MIME type of a Content-Type value text/event-stream? Parameters and
 * surrounding white space are ignored, the comparison is case-insensitive. */
static int is_event_stream(const char *v, size_t n) {
  while (n && (*v == ' ' || *v == '\t'))
    v++, n--;
  size_t m = 0;
  while (m < n && v[m] != ';' && v[m] != ' ' && v[m] != '\t' && v[m] != '\r' &&
         v[m] != '\n')
    m++;
  return m == 17 && strncasecmp(v, "text/event-stream", 17) == 0;
}

static const char *decodable_encodings(void);

static int is_redirect_status(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 ||
         status == 308;
}

/* Fails the response being received with code (applied when the transfer
 * ends); always 0, the header callback's "abort". */
static int refuse(eventsource_t *es, eventsource_error_t code, long status,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int refuse(eventsource_t *es, eventsource_error_t code, long status,
                  const char *fmt, ...) {
  es->pending_fail = code;
  va_list ap;
  va_start(ap, fmt);
  set_error_va(es, code, status, 0, fmt, ap);
  va_end(ap);
  return 0;
}

/* "scheme://host:port" of an absolute URL, lower case, the port explicit.
 * Returns 0, or -1 when it cannot be told (then it counts as foreign). */
static int url_origin(const char *url, char *out, size_t size) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = -1;
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    int n = snprintf(out, size, "%s://%s:%s", scheme, host, port);
    if (n > 0 && (size_t)n < size) {
      for (char *c = out; *c; c++)
        *c = (char)tolower((unsigned char)*c);
      rc = 0;
    }
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

static int same_origin(const char *a, const char *b) {
  char oa[512], ob[512];
  return url_origin(a, oa, sizeof oa) == 0 && url_origin(b, ob, sizeof ob) == 0 &&
         strcmp(oa, ob) == 0;
}

/* The absolute URL of a Location value, relative to base (curl_free() it),
 * or NULL when it is not a URL. */
static char *resolve_location(const char *base, const char *location) {
  CURLU *u = curl_url();
  char *out = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
      curl_url_set(u, CURLUPART_URL, location, CURLU_URLENCODE) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK)
    out = NULL;
  curl_url_cleanup(u);
  return out;
}

/* A redirect response (status 301, 302, 303, 307, 308): set up the next hop
 * (pending_redirect, req_url, hop_get, hop_foreign) or refuse it with
 * REDIRECT. The library follows redirects itself, so that it decides per
 * hop what goes to which origin. Always returns 0: this transfer ends. */
static int take_redirect(eventsource_t *es, long status) {
  if (!es->resp_location)
    return refuse(es, EVENTSOURCE_ERR_REDIRECT, status,
                  "HTTP %ld redirect without a Location", status);
  if (es->hops >= (unsigned long)es->max_redirects)
    return refuse(es, EVENTSOURCE_ERR_REDIRECT, status,
                  "HTTP %ld redirect not followed (max redirects %ld)", status,
                  es->max_redirects);
  const char *from = eventsource_request_url(es);
  char *target = resolve_location(from, es->resp_location);
  if (!target || check_url(target) != EVENTSOURCE_OK) {
    curl_free(target);
    return refuse(es, EVENTSOURCE_ERR_REDIRECT, status,
                  "HTTP %ld redirect to a Location that is not a usable http(s) URL",
                  status);
  }
  if (strncasecmp(from, "https:", 6) == 0 && strncasecmp(target, "http:", 5) == 0 &&
      !es->redirect_downgrade) {
    curl_free(target);
    return refuse(es, EVENTSOURCE_ERR_REDIRECT, status,
                  "HTTP %ld redirect from https to http refused "
                  "(eventsource_set_redirect_downgrade() allows it)",
                  status);
  }
  char *copy = es_strdup(target);
  curl_free(target);
  if (!copy)
    return refuse(es, EVENTSOURCE_ERR_NOMEM, 0, "out of memory following a redirect");
  es_free(es->req_url);
  es->req_url = copy;
  es->hops++;
  /* Fetch's rules: 303 becomes a GET (HEAD stays), 301 and 302 turn a POST
   * into a GET; 307 and 308 keep the method and the body. */
  const char *method = es->hop_get ? "GET" : es->method;
  if ((status == 303 && strcmp(method, "HEAD") != 0) ||
      ((status == 301 || status == 302) && strcmp(method, "POST") == 0))
    es->hop_get = 1;
  es->hop_foreign = !same_origin(es->url, copy);
  es->pending_redirect = 1;
  return 0;
}

/* Is every coding of a Content-Encoding value one libcurl decodes here?
 * Otherwise the first that is not goes to es->resp_encoding. */
static int encoding_supported(eventsource_t *es, const char *v, size_t n) {
  const curl_version_info_data *ci = curl_version_info(CURLVERSION_NOW);
  while (n) {
    while (n && (*v == ' ' || *v == '\t' || *v == ',' || *v == '\r' || *v == '\n'))
      v++, n--;
    size_t m = 0;
    while (m < n && v[m] != ',' && v[m] != ' ' && v[m] != '\t' && v[m] != '\r' &&
           v[m] != '\n')
      m++;
    if (!m)
      break;
#define IS(word) (m == sizeof word - 1 && strncasecmp(v, word, m) == 0)
    int ok = IS("identity") ||
             ((IS("gzip") || IS("x-gzip") || IS("deflate")) &&
              (ci->features & CURL_VERSION_LIBZ)) ||
             (IS("br") && (ci->features & CURL_VERSION_BROTLI)) ||
             (IS("zstd") && (ci->features & CURL_VERSION_ZSTD));
#undef IS
    if (!ok) {
      size_t k = m < sizeof es->resp_encoding - 1 ? m : sizeof es->resp_encoding - 1;
      memcpy(es->resp_encoding, v, k);
      es->resp_encoding[k] = '\0';
      return 0;
    }
    v += m, n -= m;
  }
  return 1;
}

/* The response headers are complete: validate them (HTML 9.2.3). Returns 0
 * to end the transfer (refused, or a redirect to follow). */
static int response_ready(eventsource_t *es) {
  long status = es->resp_status;
  if (status >= 100 && status < 200)
    return 1; /* interim response; the real one follows */
  es->resp_headers_done = 1;
  if (is_redirect_status(status))
    return take_redirect(es, status);
  if (status != 200)
    return refuse(es, EVENTSOURCE_ERR_HTTP_STATUS, status,
                  "HTTP status %ld (expected 200)", status);
  if (!es->resp_type_ok)
    return refuse(es, EVENTSOURCE_ERR_CONTENT_TYPE, status,
                  "Content-Type is not text/event-stream");
  if (es->resp_encoding_bad)
    return refuse(es, EVENTSOURCE_ERR_ENCODING, status,
                  "Content-Encoding \"%s\" cannot be decoded (libcurl decodes: %s)",
                  es->resp_encoding, decodable_encodings());
  /* Announce the connection. */
  es->phase = ES_OPEN;
  es->opened_at = es_now_ms();
  es->delivered = 0;
  set_ready_state(es, EVENTSOURCE_OPEN);
  eventsource_event_t ev = {0};
  ev.kind = EVENTSOURCE_KIND_OPEN;
  ev.type = "open";
  ev.type_len = 4;
  ev.data = "";
  ev.id = es_parser_last_event_id(es->parser, &ev.id_len);
  ev.message = "";
  ev.reconnect_ms = -1;
  dispatch(es, &ev);
  return !stop_parsing(es);
}

static size_t header_cb(char *buf, size_t size, size_t n, void *ud) {
  eventsource_t *es = ud;
  size_t len = size * n;
  touch(es);
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    /* A new response (the first, an interim one, or after a redirect). */
    es->resp_status = 0;
    es->resp_type_ok = 0;
    es_free(es->resp_location);
    es->resp_location = NULL;
    es->resp_encoding_bad = 0;
    const char *sp = memchr(buf, ' ', len);
    if (sp) {
      long st = 0;
      for (const char *p = sp + 1; p < buf + len && *p >= '0' && *p <= '9'; p++)
        st = st * 10 + (*p - '0');
      es->resp_status = st;
    }
    return len;
  }
  if (len <= 2 && (buf[0] == '\r' || buf[0] == '\n')) {
    int go_on;
    pthread_mutex_lock(&es->cb_lock);
    go_on = response_ready(es);
    pthread_mutex_unlock(&es->cb_lock);
    return go_on ? len : 0;
  }
  const char *colon = memchr(buf, ':', len);
  if (!colon)
    return len;
  size_t nl = (size_t)(colon - buf);
  if (nl == 12 && strncasecmp(buf, "content-type", 12) == 0)
    es->resp_type_ok = is_event_stream(colon + 1, len - nl - 1);
  else if (nl == 16 && strncasecmp(buf, "content-encoding", 16) == 0) {
    if (!es->resp_encoding_bad && !encoding_supported(es, colon + 1, len - nl - 1))
      es->resp_encoding_bad = 1;
  }
  else if (nl == 8 && strncasecmp(buf, "location", 8) == 0) {
    const char *v = colon + 1, *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
      v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
                       end[-1] == '\n'))
      end--;
    es_free(es->resp_location);
    es->resp_location = v < end ? es_memdup0(v, (size_t)(end - v)) : NULL;
    if (v < end && !es->resp_location)
      return refuse(es, EVENTSOURCE_ERR_NOMEM, 0, "out of memory reading a Location");
  }
  return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *ud) {
  eventsource_t *es = ud;
  size_t len = size * n;
  touch(es);
  if (es->phase != ES_OPEN)
    return len; /* the body of a redirect or of a response being refused */
  pthread_mutex_lock(&es->cb_lock);
  int rc = stop_parsing(es) ? ES_PARSER_STOPPED : es_parser_feed(es->parser, buf, len);
  pthread_mutex_unlock(&es->cb_lock);
  if (rc == ES_PARSER_OK)
    return len;
  if (rc == ES_PARSER_NOMEM && !es->pending_fail) {
    es->pending_fail = EVENTSOURCE_ERR_NOMEM;
    set_error(es, EVENTSOURCE_ERR_NOMEM, 0, 0, "out of memory while parsing the stream");
  }
  return 0; /* abort the transfer */
}

/* Appends "name: value" to *sl ("name;" for an empty value, libcurl's way of
 * sending a header with no value). Returns 0, or -1 when out of memory. */
static int slist_add_header(struct curl_slist **sl, const char *name,
                            size_t nl, const char *value, size_t vl) {
  char *h = es_malloc(nl + vl + 3);
  if (!h)
    return -1;
  memcpy(h, name, nl);
  if (vl) {
    memcpy(h + nl, ": ", 2);
    memcpy(h + nl + 2, value, vl);
    h[nl + 2 + vl] = '\0';
  } else {
    memcpy(h + nl, ";", 2);
  }
  struct curl_slist *t = curl_slist_append(*sl, h);
  es_free(h);
  if (!t)
    return -1;
  *sl = t;
  return 0;
}

/* libcurl 7.88 and later build the request line, the headers and a body
 * under 64 KiB in one buffer of at most 1 MiB, and fail with "Out of memory"
 * past it: a request over that can never be sent. */
#define ES_CURL_MAX_REQUEST (1024u * 1024u)
#define ES_CURL_INLINE_BODY (64u * 1024u)
/* Room for what libcurl adds (Host, Content-Length, Accept-Encoding, ...). */
#define ES_REQUEST_SLACK 4096u

/* The libcurl Content-Encodings this libcurl decodes, for messages. */
static const char *decodable_encodings(void) {
  const curl_version_info_data *ci = curl_version_info(CURLVERSION_NOW);
  static const char *const names[8] = {
      "identity only",  "gzip, deflate",         "br",         "gzip, deflate, br",
      "zstd",           "gzip, deflate, zstd",   "br, zstd",   "gzip, deflate, br, zstd"};
  unsigned i = ((ci->features & CURL_VERSION_LIBZ) ? 1u : 0u) |
               ((ci->features & CURL_VERSION_BROTLI) ? 2u : 0u) |
               ((ci->features & CURL_VERSION_ZSTD) ? 4u : 0u);
  return names[i];
}

/* Is user header i sent on this hop? All of them to the URL's own origin;
 * to another one only with eventsource_set_redirect_headers(), except the
 * Content-Type of a body that goes along. */
static int header_sent(const eventsource_t *es, size_t i, int has_body) {
  if (!es->hop_foreign || es->redirect_headers)
    return 1;
  return has_body && strcasecmp(es->headers[i].name, "Content-Type") == 0;
}

static eventsource_error_t build_request(eventsource_t *es) {
  CURL *e = es->easy;
  struct curl_slist *sl = NULL;
  const char *url = eventsource_request_url(es);
  const char *method = es->hop_get ? "GET" : es->method;
  const char *body = es->hop_get ? NULL : es->body;
  size_t body_len = body ? es->body_len : 0;
  size_t idlen;
  const char *id = es_parser_last_event_id(es->parser, &idlen);
  size_t size = strlen(method) + strlen(url) + 16 + (idlen ? idlen + 17 : 0) +
                (body_len < ES_CURL_INLINE_BODY ? body_len : 0) + ES_REQUEST_SLACK;
  int has_accept = 0, has_cache = 0, has_ctype = 0, has_encoding = 0;
  for (size_t i = 0; i < es->nheaders; i++) {
    if (!header_sent(es, i, body != NULL))
      continue;
    const char *n = es->headers[i].name;
    has_accept |= strcasecmp(n, "Accept") == 0;
    has_cache |= strcasecmp(n, "Cache-Control") == 0;
    has_ctype |= strcasecmp(n, "Content-Type") == 0;
    has_encoding |= strcasecmp(n, "Accept-Encoding") == 0;
    size += strlen(n) + strlen(es->headers[i].value) + 4;
  }
  if (size > ES_CURL_MAX_REQUEST) {
    set_error(es, EVENTSOURCE_ERR_REQUEST_TOO_LARGE, 0, 0,
              "the request would be about %zu bytes (URL %zu, Last-Event-ID %zu), "
              "over libcurl's limit of %u bytes",
              size, strlen(url), idlen, ES_CURL_MAX_REQUEST);
    return EVENTSOURCE_ERR_REQUEST_TOO_LARGE;
  }
  /* The defaults a user header does not replace; "Expect:" and an empty
   * "Content-Type:" remove libcurl's own (100-continue round trips, and the
   * form type: a body has no type unless the user sets one); an empty
   * "Accept-Encoding:" keeps libcurl from advertising the encodings it
   * decodes (it decodes them all the same) unless compression is asked for. */
  const char *fixed[5];
  size_t nfixed = 0;
  if (!has_accept)
    fixed[nfixed++] = "Accept: text/event-stream";
  if (!has_cache)
    fixed[nfixed++] = "Cache-Control: no-cache";
  fixed[nfixed++] = "Expect:";
  if (body && !has_ctype)
    fixed[nfixed++] = "Content-Type:";
  if (!es->compression && !has_encoding)
    fixed[nfixed++] = "Accept-Encoding:";
  for (size_t i = 0; i < nfixed; i++) {
    struct curl_slist *t = curl_slist_append(sl, fixed[i]);
    if (!t)
      goto nomem;
    sl = t;
  }
  for (size_t i = 0; i < es->nheaders; i++)
    if (header_sent(es, i, body != NULL) &&
        slist_add_header(&sl, es->headers[i].name, strlen(es->headers[i].name),
                         es->headers[i].value, strlen(es->headers[i].value)) != 0)
      goto nomem;
  if (idlen && slist_add_header(&sl, "Last-Event-ID", 13, id, idlen) != 0)
    goto nomem;
  curl_slist_free_all(es->slist);
  es->slist = sl;

  CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                          \
  do {                                                                         \
    if (rc == CURLE_OK)                                                        \
      rc = curl_easy_setopt(e, opt, val);                                      \
  } while (0)
  SET(CURLOPT_URL, url);
  SET(CURLOPT_HTTPHEADER, es->slist);
  SET(CURLOPT_PRIVATE, (void *)es);
  SET(CURLOPT_WRITEFUNCTION, write_cb);
  SET(CURLOPT_WRITEDATA, (void *)es);
  SET(CURLOPT_HEADERFUNCTION, header_cb);
  SET(CURLOPT_HEADERDATA, (void *)es);
  SET(CURLOPT_ERRORBUFFER, es->curl_errbuf);
  SET(CURLOPT_NOSIGNAL, 1L);
  /* Redirects are followed here, one transfer per hop (take_redirect). */
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  /* Decode every encoding libcurl knows ("": all of them). */
  SET(CURLOPT_ACCEPT_ENCODING, "");
  /* The headers of a proxy's CONNECT response are not the server's response. */
  SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  SET(CURLOPT_CONNECTTIMEOUT_MS, es->connect_timeout_ms);
  if (body) {
    /* libcurl keeps its own copy: the user may replace the body (from a
     * listener) while this transfer still sends it. */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    SET(CURLOPT_COPYPOSTFIELDS, body);
  } else {
    SET(CURLOPT_HTTPGET, 1L);
    if (strcmp(method, "POST") == 0) {
      SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
      SET(CURLOPT_POSTFIELDS, "");
    }
  }
  /* libcurl's own verbs are GET without a body and POST with one (or the
   * empty one above); anything else, GET with a body included, is named. */
  int plain = strcmp(method, "POST") == 0 || (strcmp(method, "GET") == 0 && !body);
  SET(CURLOPT_CUSTOMREQUEST, plain ? NULL : method);
#undef SET
  if (rc != CURLE_OK) {
    set_error(es, EVENTSOURCE_ERR_CURL, 0, (int)rc, "libcurl: %s",
              curl_easy_strerror(rc));
    return EVENTSOURCE_ERR_CURL;
  }
  return EVENTSOURCE_OK;
nomem:
  curl_slist_free_all(sl);
  set_error(es, EVENTSOURCE_ERR_NOMEM, 0, 0, "out of memory building the request");
  return EVENTSOURCE_ERR_NOMEM;
}

/* The credentials a curl callback may have set travel with the handle:
 * cleared for a hop to another origin, as the user's headers are. */
static CURLcode drop_foreign_credentials(eventsource_t *es) {
  if (!es->hop_foreign || es->redirect_headers)
    return CURLE_OK;
  CURLcode rc = curl_easy_setopt(es->easy, CURLOPT_USERPWD, (char *)NULL);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(es->easy, CURLOPT_USERNAME, (char *)NULL);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(es->easy, CURLOPT_PASSWORD, (char *)NULL);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(es->easy, CURLOPT_XOAUTH2_BEARER, (char *)NULL);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(es->easy, CURLOPT_COOKIE, (char *)NULL);
  return rc;
}

/* The source is finished: CLOSED, out of the deadline heap. */
static void finish(eventsource_t *es, eventsource_error_t why) {
  es->phase = ES_DONE;
  es->close_reason = why;
  atomic_store(&es->closed, 1);
  set_ready_state(es, EVENTSOURCE_CLOSED);
  if (es->multi) {
    es_multi_set_deadline(es->multi, es, 0);
    es_multi_source_closed(es->multi, es);
  }
}

/* Fails the connection (HTML: "fail the connection"): CLOSED, then error. The
 * notification is made while the source is still open to listeners. */
static void fail(eventsource_t *es, eventsource_error_t why) {
  es->phase = ES_DONE;
  set_ready_state(es, EVENTSOURCE_CLOSED);
  pthread_mutex_lock(&es->cb_lock);
  notify_error(es, 0, -1);
  pthread_mutex_unlock(&es->cb_lock);
  finish(es, why);
}

/* Starts one request of the current attempt: the first, or a redirect's
 * next hop (req_url, hop_get and hop_foreign already set). */
static void start_request(eventsource_t *es) {
  eventsource_multi_t *m = es->multi;
  es_multi_set_deadline(m, es, 0);
  es->phase = ES_TRANSFER;
  set_ready_state(es, EVENTSOURCE_CONNECTING);
  es->pending_fail = EVENTSOURCE_OK;
  es->pending_redirect = 0;
  es->resp_status = 0;
  es->resp_type_ok = 0;
  es->resp_headers_done = 0;
  es->resp_encoding_bad = 0;
  es->curl_errbuf[0] = '\0';
  if (es->prepare_fn) {
    pthread_mutex_lock(&es->cb_lock);
    int rc = is_closed(es) ? 0 : es->prepare_fn(es, es->attempt + 1, es->prepare_ud);
    pthread_mutex_unlock(&es->cb_lock);
    if (is_closed(es) || (es->ops & ES_OP_CLOSE))
      return; /* closed from the hook; the queued close finishes it */
    if (rc != 0) {
      set_error(es, EVENTSOURCE_ERR_CALLBACK, 0, 0,
                "the prepare callback refused the connection (returned %d)", rc);
      fail(es, EVENTSOURCE_ERR_CALLBACK);
      return;
    }
  }
  if (!es->easy) {
    es->easy = curl_easy_init();
    if (!es->easy) {
      set_error(es, EVENTSOURCE_ERR_CURL, 0, 0, "curl_easy_init failed");
      fail(es, EVENTSOURCE_ERR_CURL);
      return;
    }
  }
  eventsource_error_t rc = build_request(es);
  if (rc) {
    fail(es, rc);
    return;
  }
  if (es->curl_fn) {
    pthread_mutex_lock(&es->cb_lock);
    CURLcode cc = is_closed(es) ? CURLE_OK : es->curl_fn(es, es->easy, es->curl_ud);
    pthread_mutex_unlock(&es->cb_lock);
    if (is_closed(es) || (es->ops & ES_OP_CLOSE))
      return;
    if (cc != CURLE_OK) {
      set_error(es, EVENTSOURCE_ERR_CURL, 0, (int)cc,
                "the curl callback failed: %s", curl_easy_strerror(cc));
      fail(es, EVENTSOURCE_ERR_CURL);
      return;
    }
  }
  CURLcode cc = drop_foreign_credentials(es);
  if (cc != CURLE_OK) {
    set_error(es, EVENTSOURCE_ERR_CURL, 0, (int)cc, "libcurl: %s", curl_easy_strerror(cc));
    fail(es, EVENTSOURCE_ERR_CURL);
    return;
  }
  es_parser_reset(es->parser);
  if (es_multi_add_easy(m, es) != 0) {
    set_error(es, EVENTSOURCE_ERR_CURL, 0, 0, "curl_multi_add_handle failed");
    fail(es, EVENTSOURCE_ERR_CURL);
    return;
  }
  atomic_store(&es->last_activity, es_now_ms());
  if (es->read_timeout_ms > 0)
    es_multi_set_deadline(m, es, es_now_ms() + (uint64_t)es->read_timeout_ms);
}

void es_source_connect(eventsource_t *es) {
  /* A new attempt starts at the URL the user gave. */
  es_free(es->req_url);
  es->req_url = NULL;
  es->hops = 0;
  es->hop_get = 0;
  es->hop_foreign = 0;
  start_request(es);
}

void es_source_drop_transfer(eventsource_t *es) {
  if (es->in_multi_curl && es->multi)
    es_multi_remove_easy(es->multi, es);
  if (es->multi)
    es_multi_set_deadline(es->multi, es, 0);
}

/* The connection ended with why: ask the policy, then reestablish or fail. */
static void connection_ended(eventsource_t *es, eventsource_error_t why) {
  uint64_t now = es_now_ms();
  es->attempt = es_next_attempt(es->attempt, es->phase == ES_OPEN, es->delivered,
                                es->opened_at, now, es->backoff_reset_ms);
  es_parser_finish(es->parser);
  int reconnect = es_default_reconnect(why);
  long delay = es_backoff_delay(es->retry_ms, es->max_retry_ms, es->attempt,
                                es->jitter, es_multi_random(es->multi));
  if (es->policy_fn) {
    pthread_mutex_lock(&es->cb_lock);
    if (!is_closed(es))
      es->policy_fn(es, why, es->last_status, es->attempt, &reconnect, &delay,
                    es->policy_ud);
    pthread_mutex_unlock(&es->cb_lock);
    if (delay < 0)
      delay = 0;
    if (delay > ES_MAX_DELAY_MS)
      delay = ES_MAX_DELAY_MS;
  }
  if (is_closed(es) || (es->ops & ES_OP_CLOSE))
    return;
  if (!reconnect) {
    if (es_default_reconnect(why)) {
      /* The policy stopped a connection the spec would reestablish. */
      fail(es, EVENTSOURCE_ERR_POLICY);
    } else {
      fail(es, why);
    }
    return;
  }
  /* Reestablish the connection (HTML 9.2.3): CONNECTING, error, wait. */
  es->phase = ES_WAITING;
  set_ready_state(es, EVENTSOURCE_CONNECTING);
  es_multi_set_deadline(es->multi, es, now + (uint64_t)delay);
  pthread_mutex_lock(&es->cb_lock);
  notify_error(es, 1, delay);
  pthread_mutex_unlock(&es->cb_lock);
}

/* A failed transfer: what it means, with the message the user sees. */
static eventsource_error_t classify_curl(eventsource_t *es, CURLcode result) {
  const char *detail = es->curl_errbuf[0] ? es->curl_errbuf : curl_easy_strerror(result);
  eventsource_error_t why = EVENTSOURCE_ERR_NETWORK;
  switch (result) {
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
    why = EVENTSOURCE_ERR_URL;
    set_error(es, why, 0, (int)result, "unusable URL: %s", detail);
    return why;
  /* Retrying the same handshake cannot heal these. */
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_CLIENTCERT:
  case CURLE_USE_SSL_FAILED:
    why = EVENTSOURCE_ERR_TLS;
    set_error(es, why, 0, (int)result, "TLS: %s", detail);
    return why;
  case CURLE_BAD_CONTENT_ENCODING:
    why = EVENTSOURCE_ERR_ENCODING;
    set_error(es, why, 0, (int)result, "the response body cannot be decoded: %s", detail);
    return why;
  case CURLE_NOT_BUILT_IN:
  case CURLE_BAD_FUNCTION_ARGUMENT:
  case CURLE_UNKNOWN_OPTION:
    why = EVENTSOURCE_ERR_CURL;
    set_error(es, why, 0, (int)result, "libcurl: %s", detail);
    return why;
  case CURLE_OUT_OF_MEMORY: {
    /* libcurl's word for a request over its 1 MiB buffer, and for a response
     * header line over CURL_MAX_HTTP_HEADER: tell them apart by what was sent. */
    long req_size = 0;
    curl_easy_getinfo(es->easy, CURLINFO_REQUEST_SIZE, &req_size);
    if (req_size == 0) {
      why = EVENTSOURCE_ERR_REQUEST_TOO_LARGE;
      set_error(es, why, 0, (int)result,
                "libcurl could not build the request: larger than its limit of %u "
                "bytes (or out of memory)", ES_CURL_MAX_REQUEST);
      return why;
    }
    if (!es->resp_headers_done) {
      why = EVENTSOURCE_ERR_RESPONSE_TOO_LARGE;
      set_error(es, why, es->resp_status, (int)result,
                "a response header line is longer than libcurl's limit of %d bytes "
                "(or out of memory)", CURL_MAX_HTTP_HEADER);
      return why;
    }
    break;
  }
  case CURLE_RECV_ERROR:
    if (!es->resp_headers_done &&
        strncmp(es->curl_errbuf, "Too large response headers", 26) == 0) {
      why = EVENTSOURCE_ERR_RESPONSE_TOO_LARGE;
      set_error(es, why, es->resp_status, (int)result,
                "the response headers are larger than libcurl's limit: %s", detail);
      return why;
    }
    break;
  default:
    break;
  }
  set_error(es, why, 0, (int)result, "%s", detail);
  return why;
}

void es_source_transfer_done(eventsource_t *es, CURLcode result) {
  es_source_drop_transfer(es);
  if (is_closed(es) || (es->ops & (ES_OP_CLOSE | ES_OP_RESTART)))
    return; /* the queued op takes over */
  if (es->pending_redirect) {
    start_request(es); /* the next hop of the same attempt */
    return;
  }
  eventsource_error_t why;
  if (es->pending_fail) {
    why = es->pending_fail;
  } else if (result == CURLE_OK) {
    if (es->phase == ES_OPEN) {
      why = EVENTSOURCE_ERR_EOF;
      set_error(es, why, 0, 0, "the server ended the stream");
    } else {
      /* Finished without a response we could validate. */
      why = EVENTSOURCE_ERR_HTTP_STATUS;
      set_error(es, why, es->resp_status, 0, "HTTP status %ld (expected 200)",
                es->resp_status);
    }
  } else {
    why = classify_curl(es, result);
  }
  connection_ended(es, why);
}

void es_source_read_timeout(eventsource_t *es) {
  es_source_drop_transfer(es);
  set_error(es, EVENTSOURCE_ERR_READ_TIMEOUT, 0, 0,
            "no data for %ld ms", es->read_timeout_ms);
  connection_ended(es, EVENTSOURCE_ERR_READ_TIMEOUT);
}

/* ------------------------------------------------------------------------ */
/* Closing, restarting, freeing                                             */
/* ------------------------------------------------------------------------ */

void eventsource_close(eventsource_t *es) {
  if (!es)
    return;
  if (atomic_exchange(&es->closed, 1)) {
    return; /* already closed */
  }
  set_ready_state(es, EVENTSOURCE_CLOSED);
  es->user_closed = 1;
  pthread_mutex_lock(&es->multi_lock);
  eventsource_multi_t *m = es->multi;
  int on_loop = m && es_multi_on_loop_thread(m);
  pthread_mutex_unlock(&es->multi_lock);
  if (!m) {
    es->phase = ES_DONE;
    return;
  }
  if (!on_loop) {
    /* Wait for a listener running on the loop thread to return: after this,
     * every later dispatch sees `closed`. */
    pthread_mutex_lock(&es->cb_lock);
    pthread_mutex_unlock(&es->cb_lock);
  }
  /* Under multi_lock: the loop cannot detach es and free m meanwhile. */
  pthread_mutex_lock(&es->multi_lock);
  if (es->multi)
    es_multi_queue(es->multi, es, ES_OP_CLOSE);
  pthread_mutex_unlock(&es->multi_lock);
}

eventsource_error_t eventsource_restart(eventsource_t *es) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (is_closed(es))
    return EVENTSOURCE_ERR_CLOSED;
  pthread_mutex_lock(&es->multi_lock);
  if (es->multi)
    es_multi_queue(es->multi, es, ES_OP_RESTART);
  pthread_mutex_unlock(&es->multi_lock);
  return EVENTSOURCE_OK;
}

void es_source_apply_close(eventsource_t *es) {
  es_source_drop_transfer(es);
  if (es->phase != ES_DONE || !es->close_reason)
    finish(es, es->user_closed ? EVENTSOURCE_OK : es->close_reason);
}

void es_source_queue_fail(eventsource_t *es, eventsource_error_t code,
                          const char *msg) {
  if (es->pending_fail)
    return;
  es->pending_fail = code;
  set_error(es, code, 0, 0, "%s", msg);
  es_multi_queue(es->multi, es, ES_OP_FAIL);
}

void es_source_apply_fail(eventsource_t *es) {
  if (is_closed(es) || es->phase == ES_DONE)
    return;
  es_source_drop_transfer(es);
  es_parser_finish(es->parser);
  fail(es, es->pending_fail ? es->pending_fail : EVENTSOURCE_ERR_CALLBACK);
}

void es_source_apply_restart(eventsource_t *es) {
  if (is_closed(es) || es->phase == ES_DONE)
    return;
  es_source_drop_transfer(es);
  es_parser_finish(es->parser);
  es_source_connect(es);
}

/* Drives es's own multi handle until es is CLOSED. */
static eventsource_error_t run_own(eventsource_t *es) {
  eventsource_error_t rc = eventsource_multi_run(es->own_multi);
  if (rc && !is_closed(es)) {
    const char *why = es_multi_error(es->own_multi);
    set_error(es, rc, 0, 0, "the loop failed: %s", *why ? why : eventsource_strerror(rc));
    atomic_store(&es->closed, 1);
    set_ready_state(es, EVENTSOURCE_CLOSED);
  }
  return rc ? rc : es->close_reason;
}

/* Creates es's own multi handle and adds es to it. */
static eventsource_error_t make_own(eventsource_t *es) {
  if (es->running || es->multi || is_closed(es) || es->phase == ES_DONE)
    return EVENTSOURCE_ERR_STATE;
  eventsource_multi_t *m;
  eventsource_error_t rc = eventsource_multi_new(&m);
  if (rc)
    return rc;
  rc = eventsource_multi_add(m, es);
  if (rc) {
    eventsource_multi_free(m);
    return rc;
  }
  es->own_multi = m;
  es->running = 1;
  return EVENTSOURCE_OK;
}

static void drop_own(eventsource_t *es) {
  eventsource_multi_free(es->own_multi); /* removes es */
  es->own_multi = NULL;
  es->running = 0;
}

static void *thread_main(void *arg) {
  eventsource_t *es = arg;
  pthread_mutex_lock(&es->cb_lock); /* until eventsource_start() is done with es */
  pthread_mutex_unlock(&es->cb_lock);
  run_own(es);
  if (es->free_deferred) {
    /* Freed from one of its listeners: nobody will join this thread. */
    pthread_detach(pthread_self());
    drop_own(es);
    es_source_destroy(es);
  }
  return NULL;
}

eventsource_error_t eventsource_start(eventsource_t *es) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (es->thread_started)
    return EVENTSOURCE_ERR_STATE;
  /* The multi exists before the thread, so close() finds it at once. */
  eventsource_error_t rc = make_own(es);
  if (rc)
    return rc;
  /* Hold cb_lock until es->thread and thread_started are stored: the thread
   * may free es (eventsource_free from a hook) as soon as it runs. */
  pthread_mutex_lock(&es->cb_lock);
  es->thread_started = 1;
  if (pthread_create(&es->thread, NULL, thread_main, es) != 0) {
    es->thread_started = 0;
    pthread_mutex_unlock(&es->cb_lock);
    drop_own(es);
    set_error(es, EVENTSOURCE_ERR_SYSTEM, 0, 0, "pthread_create failed");
    return EVENTSOURCE_ERR_SYSTEM;
  }
  pthread_mutex_unlock(&es->cb_lock);
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_run(eventsource_t *es) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  eventsource_error_t rc = make_own(es);
  if (rc)
    return rc;
  rc = run_own(es);
  int deferred = es->free_deferred;
  drop_own(es);
  if (deferred)
    es_source_destroy(es); /* freed by one of its listeners */
  return rc;
}

void eventsource_free(eventsource_t *es) {
  if (!es)
    return;
  if (es->multi && es_multi_in_step(es->multi)) {
    /* From one of its own callbacks: close now, free at a safe point. */
    es->free_deferred = 1;
    eventsource_close(es);
    if (es->multi && !es->own_multi)
      es_multi_queue(es->multi, es, ES_OP_FREE);
    return;
  }
  if (es->thread_started) {
    eventsource_close(es);
    pthread_join(es->thread, NULL);
    es->thread_started = 0;
    drop_own(es);
    es_source_destroy(es);
    return;
  }
  if (es->multi)
    eventsource_multi_remove(es->multi, es);
  es_source_destroy(es);
}
