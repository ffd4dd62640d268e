/*
 * options.c - the request options of a source: their setters, the checks of
 * URLs, methods and header fields, and the list of the user's headers.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "internal.h"

eventsource_error_t es_options_init(es_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->max_retry_ms = EVENTSOURCE_DEFAULT_MAX_RETRY_MS;
  opt->max_server_retry_ms = EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS;
  opt->reconnect_on_end = 1;
  opt->backoff_reset_ms = EVENTSOURCE_DEFAULT_BACKOFF_RESET_MS;
  opt->jitter = 1;
  opt->connect_timeout_ms = 30000;
  opt->max_redirects = 10;
  opt->max_line = EVENTSOURCE_DEFAULT_MAX_LINE;
  opt->max_event = EVENTSOURCE_DEFAULT_MAX_EVENT;
  opt->max_id = EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID;
  opt->read_timeout_ms = EVENTSOURCE_DEFAULT_READ_TIMEOUT_MS;
  opt->max_error_body = EVENTSOURCE_DEFAULT_MAX_ERROR_BODY;
  opt->max_retry_after_ms = EVENTSOURCE_DEFAULT_MAX_RETRY_AFTER_MS;
  opt->method = es_strdup("GET");
  return opt->method ? EVENTSOURCE_OK : EVENTSOURCE_ERR_NOMEM;
}

void es_options_free(es_options *opt) {
  for (size_t i = 0; i < opt->nheaders; i++) {
    es_free(opt->headers[i].name);
    es_free(opt->headers[i].value);
  }
  es_free(opt->headers);
  es_free(opt->method);
  es_free(opt->body);
  memset(opt, 0, sizeof *opt);
}

/* An absolute http(s) URL with a host, that libcurl's URL parser accepts
 * (so a malformed URL is refused here, not retried for ever), without bytes
 * that could split the request line, and short enough to be sent. Returns OK,
 * URL, REQUEST_TOO_LARGE or NOMEM. */
eventsource_error_t es_check_url(const char *url) {
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
  es_free(es->opt.method);
  es->opt.method = m;
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
  es_free(es->opt.body);
  es->opt.body = b;
  es->opt.body_len = b ? len : 0;
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
  es_header *v = es_realloc(es->opt.headers, (es->opt.nheaders + 1) * sizeof *v);
  if (!v)
    return EVENTSOURCE_ERR_NOMEM;
  es->opt.headers = v;
  char *n = es_strdup(name), *val = es_strdup(value);
  if (!n || !val) {
    es_free(n);
    es_free(val);
    return EVENTSOURCE_ERR_NOMEM;
  }
  v[es->opt.nheaders].name = n;
  v[es->opt.nheaders].value = val;
  es->opt.nheaders++;
  return EVENTSOURCE_OK;
}

static size_t header_remove_all(eventsource_t *es, const char *name) {
  size_t j = 0, removed = 0;
  for (size_t i = 0; i < es->opt.nheaders; i++) {
    if (strcasecmp(es->opt.headers[i].name, name) == 0) {
      es_free(es->opt.headers[i].name);
      es_free(es->opt.headers[i].value);
      removed++;
    } else {
      es->opt.headers[j++] = es->opt.headers[i];
    }
  }
  es->opt.nheaders = j;
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
  size_t before = es->opt.nheaders;
  rc = header_append(es, name, value);
  if (rc)
    return rc;
  es_header added = es->opt.headers[before];
  es->opt.nheaders = before;
  header_remove_all(es, name);
  es->opt.headers[es->opt.nheaders++] = added;
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
  if (es->opt.max_id && strlen(id) > es->opt.max_id)
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
  return set_ms(es, es ? &es->opt.max_retry_ms : NULL, ms, 0);
}
eventsource_error_t eventsource_set_max_server_retry(eventsource_t *es, long ms) {
  return set_ms(es, es ? &es->opt.max_server_retry_ms : NULL, ms, 0);
}
eventsource_error_t eventsource_set_backoff_reset(eventsource_t *es, long ms) {
  return set_ms(es, es ? &es->opt.backoff_reset_ms : NULL, ms, 0);
}
eventsource_error_t eventsource_set_read_timeout(eventsource_t *es, long ms) {
  return set_ms(es, es ? &es->opt.read_timeout_ms : NULL, ms, 0);
}
eventsource_error_t eventsource_set_connect_timeout(eventsource_t *es, long ms) {
  return set_ms(es, es ? &es->opt.connect_timeout_ms : NULL, ms, 0);
}
eventsource_error_t eventsource_set_max_retry_after(eventsource_t *es, long ms) {
  return set_ms(es, es ? &es->opt.max_retry_after_ms : NULL, ms, 0);
}

eventsource_error_t eventsource_set_max_error_body(eventsource_t *es, size_t bytes) {
  if (!es || bytes > EVENTSOURCE_MAX_ERROR_BODY)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->opt.max_error_body = bytes;
  return EVENTSOURCE_OK;
}

static eventsource_error_t set_flag(eventsource_t *es, int *field, int on) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  *field = on != 0;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_jitter(eventsource_t *es, int enabled) {
  return set_flag(es, es ? &es->opt.jitter : NULL, enabled);
}

eventsource_error_t eventsource_set_reconnect_on_end(eventsource_t *es, int on) {
  return set_flag(es, es ? &es->opt.reconnect_on_end : NULL, on);
}

eventsource_error_t eventsource_set_max_redirects(eventsource_t *es, long n) {
  if (!es || n < 0 || n > 1000)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->opt.max_redirects = n;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_max_line(eventsource_t *es, size_t bytes) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->opt.max_line = bytes;
  es_parser_set_limits(es->parser, es->opt.max_line, es->opt.max_event);
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_max_event(eventsource_t *es, size_t bytes) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->opt.max_event = bytes;
  es_parser_set_limits(es->parser, es->opt.max_line, es->opt.max_event);
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_max_last_event_id(eventsource_t *es,
                                                      size_t bytes) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->opt.max_id = bytes;
  es_parser_set_max_id(es->parser, bytes);
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_redirect_downgrade(eventsource_t *es, int allow) {
  return set_flag(es, es ? &es->opt.redirect_downgrade : NULL, allow);
}
eventsource_error_t eventsource_set_redirect_headers(eventsource_t *es, int allow) {
  return set_flag(es, es ? &es->opt.redirect_headers : NULL, allow);
}
eventsource_error_t eventsource_set_compression(eventsource_t *es, int enabled) {
  return set_flag(es, es ? &es->opt.compression : NULL, enabled);
}

eventsource_error_t eventsource_set_http_version(eventsource_t *es,
                                                 eventsource_http_version_t v) {
  if (!es || (unsigned)v > (unsigned)EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if ((v == EVENTSOURCE_HTTP_VERSION_2 || v == EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE) &&
      !(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2)) {
    es_set_error(es, EVENTSOURCE_ERR_CURL, 0, 0,
                 "the libcurl linked (%s) was built without HTTP/2",
                 curl_version_info(CURLVERSION_NOW)->version);
    return EVENTSOURCE_ERR_CURL;
  }
  es->opt.http_version = (int)v;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_prepare_callback(eventsource_t *es,
                                                     eventsource_prepare_fn fn,
                                                     void *userdata) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->opt.prepare_fn = fn;
  es->opt.prepare_ud = userdata;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_policy_callback(eventsource_t *es,
                                                    eventsource_policy_fn fn,
                                                    void *userdata) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->opt.policy_fn = fn;
  es->opt.policy_ud = userdata;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_set_curl_callback(eventsource_t *es,
                                                  eventsource_curl_fn fn,
                                                  void *userdata) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es->opt.curl_fn = fn;
  es->opt.curl_ud = userdata;
  return EVENTSOURCE_OK;
}
