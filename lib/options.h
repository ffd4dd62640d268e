/*
 * options.h - what the user set on a source (internal). options.c has the
 * setters and the checks; the transfer reads the options, nothing else
 * writes them.
 */
#ifndef EVENTSOURCE_OPTIONS_H
#define EVENTSOURCE_OPTIONS_H

#include <stddef.h>

#include "eventsource.h"
#include "eventsource_curl.h"

typedef struct es_header {
  char *name;
  char *value;
} es_header;

typedef struct es_options {
  char *method;
  char *body;
  size_t body_len;
  es_header *headers;
  size_t nheaders;
  long max_retry_ms;         /* bounds the backoff's growth */
  long max_server_retry_ms;  /* the sanity ceiling on a retry: field */
  int reconnect_on_end;      /* reconnect after a clean end of the stream */
  long backoff_reset_ms;
  int jitter;
  long read_timeout_ms;
  long connect_timeout_ms;
  long max_redirects;
  size_t max_line, max_event;
  size_t max_id;             /* longest last event ID adopted (0: no limit) */
  int redirect_downgrade;    /* follow https -> http redirects */
  int redirect_headers;      /* send user headers to other origins */
  int compression;           /* advertise Accept-Encoding */
  int http_version;          /* eventsource_http_version_t */
  size_t max_error_body;     /* bytes of a refused response's body kept */
  long max_retry_after_ms;   /* the ceiling on a Retry-After */
  eventsource_prepare_fn prepare_fn;
  void *prepare_ud;
  eventsource_policy_fn policy_fn;
  void *policy_ud;
  eventsource_curl_fn curl_fn;
  void *curl_ud;
} es_options;

/* The defaults (GET, no body, no headers, the documented limits). Returns
 * OK or NOMEM (then es_options_free() is still safe). */
eventsource_error_t es_options_init(es_options *opt);
void es_options_free(es_options *opt);

/* An absolute http(s) URL with a host, that libcurl's URL parser accepts,
 * without bytes that could split the request line, and short enough to be
 * sent. Returns OK, URL, REQUEST_TOO_LARGE or NOMEM. */
eventsource_error_t es_check_url(const char *url);

#endif
