/*
 * transfer.h - one HTTP exchange of a source on a libcurl easy handle
 * (internal).
 *
 * The transfer builds the request from the options, checks the response
 * (HTML 9.2.3: 200 and text/event-stream, a decodable encoding), follows
 * redirects with fetch's rules (one hop per transfer, so that it decides per
 * hop what goes to which origin) and tells what a finished transfer means.
 * It reports upwards only through its sink: "opened" once the response was
 * validated, then "bytes" for each piece of the body. It knows nothing of
 * the multi handle: whoever drives it adds t->easy to a libcurl multi and
 * calls es_transfer_end() with the CURLcode when libcurl is done with it.
 */
#ifndef EVENTSOURCE_TRANSFER_H
#define EVENTSOURCE_TRANSFER_H

#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>

#include "error.h"
#include "options.h"
#include "response.h"

typedef struct es_transfer_sink {
  /* The response is the stream. Returns 0 to end the transfer at once. */
  int (*opened)(void *ctx);
  /* A piece of the stream's body. Returns ES_PARSER_OK to go on, or
   * another ES_PARSER_* code to end the transfer (ES_PARSER_NOMEM: out of
   * memory; the rest: on purpose). */
  int (*bytes)(void *ctx, const char *buf, size_t len);
} es_transfer_sink;

/* How a transfer ended (es_transfer_end()). */
typedef enum es_transfer_end_t {
  ES_TRANSFER_FAILED,  /* why and *err say what happened */
  ES_TRANSFER_REDIRECT /* a redirect to follow: es_transfer_prepare() again */
} es_transfer_end_t;

typedef struct es_transfer {
  /* set by es_transfer_init() */
  const char *url;           /* the URL the user gave (the first hop's) */
  const es_options *opt;
  const es_transfer_sink *sink;
  void *ctx;
  es_error *err;             /* where failures are recorded */
  const uint64_t *clock;     /* the driver's time (ms) of the libcurl call
                              * running the callbacks, or NULL: read it */
  long buffer_size;          /* libcurl's receive buffer, set by whoever drives
                              * the transfer (0: libcurl's default, 16 KiB) */

  CURL *easy;                /* created on the first prepare, then reused */
  struct curl_slist *slist;
  /* this attempt: redirects */
  char *req_url;             /* the current hop's URL after a redirect (NULL: url) */
  unsigned hops;             /* redirects followed in this attempt */
  int hop_get;               /* this hop is a GET without body (301/302 POST, 303) */
  int hop_foreign;           /* this hop goes to another origin than url's */
  int pending_redirect;      /* the response is a redirect to follow: req_url */
  /* this response */
  long resp_status;
  int resp_type_ok;          /* its Content-Type is text/event-stream */
  int resp_headers_done;     /* its blank line was seen */
  int resp_encoding_bad;     /* a Content-Encoding libcurl cannot decode */
  char resp_encoding[64];    /* that encoding, for the message */
  char *resp_location;       /* its Location value, or NULL */
  es_response resp;          /* its header fields, a refused one's body */
  int keep_body;             /* refused: its body is kept, then it ends */
  uint64_t body_until;       /* ... until this time at the latest */
  int open;                  /* validated: the body is the stream */
  eventsource_error_t fail;  /* set by a callback that ended the transfer */
  _Atomic uint64_t last_activity; /* ms of the last byte received */
  char errbuf[CURL_ERROR_SIZE];
} es_transfer;

void es_transfer_init(es_transfer *t, const char *url, const es_options *opt,
                      const es_transfer_sink *sink, void *ctx, es_error *err);
/* Frees the easy handle and everything else (t->easy must not be in a multi). */
void es_transfer_cleanup(es_transfer *t);

/* A new attempt: its first hop goes to the URL the user gave. */
void es_transfer_new_attempt(es_transfer *t);
/* The URL of the current hop. */
const char *es_transfer_url(const es_transfer *t);

/* Sets up t->easy for the current hop, with last_id as Last-Event-ID (none
 * when id_len is 0); now (ms) counts as its last activity. Returns OK, or
 * NOMEM, CURL or REQUEST_TOO_LARGE with *err set. t->easy must not be in a
 * multi. */
eventsource_error_t es_transfer_prepare(es_transfer *t, const char *last_id,
                                        size_t id_len, uint64_t now);
/* After the user's curl hook: clears the credentials it may have set when
 * this hop goes to another origin (as the user's headers are). */
eventsource_error_t es_transfer_finish_setup(es_transfer *t);

/* libcurl finished with result (the easy handle may already be out of the
 * multi). A redirect to follow, or a failure with *why (EOF for a stream
 * that ended cleanly) and *err set. */
es_transfer_end_t es_transfer_end(es_transfer *t, CURLcode result,
                                  eventsource_error_t *why);

/* The ms of the last byte received (headers included). */
static inline uint64_t es_transfer_activity(const es_transfer *t) {
  return atomic_load_explicit(&((es_transfer *)(uintptr_t)t)->last_activity,
                              memory_order_relaxed);
}

#endif
