/*
 * internal.h - struct eventsource, shared by the modules that make up a
 * source (internal). docs/HACKING.md has the module map.
 */
#ifndef EVENTSOURCE_INTERNAL_H
#define EVENTSOURCE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>

#include "eventsource.h"
#include "eventsource_curl.h"
#include "event.h"
#include "listeners.h"
#include "parser.h"

/* Where a source is in its life, as the loop sees it (readyState is derived
 * from it and kept in an atomic for other threads). */
typedef enum es_phase {
  ES_IDLE = 0,     /* not in a multi, or added but not started yet */
  ES_WAITING,      /* waiting for the reconnection deadline */
  ES_TRANSFER,     /* a transfer is running (CONNECTING until validated) */
  ES_OPEN,         /* the transfer was validated: 200 text/event-stream */
  ES_DONE          /* CLOSED */
} es_phase;

/* The most a delay option may be (24 h): keeps the arithmetic in range. */
#define ES_MAX_DELAY_MS (24L * 3600 * 1000)

/* Requests queued for the loop (bit flags in eventsource.ops). */
#define ES_OP_START 1u
#define ES_OP_CLOSE 2u
#define ES_OP_RESTART 4u
#define ES_OP_REMOVE 8u
#define ES_OP_FREE 16u
#define ES_OP_FAIL 32u /* fail the connection with pending_fail */

typedef struct es_header {
  char *name;
  char *value;
} es_header;


struct eventsource {
  char *url;
  void *userdata;

  /* options */
  char *method;
  char *body;
  size_t body_len;
  es_header *headers;
  size_t nheaders;
  long retry_ms; /* the reconnection time (user, then retry: fields) */
  long max_retry_ms;
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
  eventsource_prepare_fn prepare_fn;
  void *prepare_ud;
  eventsource_policy_fn policy_fn;
  void *policy_ud;
  eventsource_curl_fn curl_fn;
  void *curl_ud;

  es_listeners listeners;
  es_parser *parser;

  /* state */
  _Atomic int ready_state;
  _Atomic int closed;       /* set first by eventsource_close() */
  es_phase phase;
  unsigned attempt;          /* consecutive failures */
  uint64_t opened_at;        /* ms, when the last connection opened */
  int delivered;             /* it dispatched an event (a success) */
  uint64_t deadline;         /* reconnection or read-timeout deadline, ms */
  _Atomic uint64_t last_activity; /* ms of the last byte received */
  size_t heap_index;         /* position in the multi's deadline heap, or SIZE_MAX */
  eventsource_error_t close_reason;
  _Atomic int user_closed;   /* written by eventsource_close() from any thread */
  int counted_active;        /* counted in multi->nactive */

  /* the transfer */
  CURL *easy;
  char *req_url;             /* the current hop's URL after a redirect (NULL: url) */
  unsigned hops;             /* redirects followed in this attempt */
  int hop_get;               /* this hop is a GET without body (301/302 POST, 303) */
  int hop_foreign;           /* this hop goes to another origin than url's */
  int pending_redirect;      /* the response is a redirect to follow: req_url */
  int resp_headers_done;     /* the response's blank line was seen */
  int resp_encoding_bad;     /* a Content-Encoding libcurl cannot decode */
  char resp_encoding[64];    /* that encoding, for the message */
  struct curl_slist *slist;
  long resp_status;          /* status of the response being received */
  int resp_type_ok;          /* its Content-Type is text/event-stream */
  char *resp_location;       /* its Location value, or NULL */
  eventsource_error_t pending_fail; /* set by a callback that aborted the transfer */
  int in_multi_curl;         /* easy added to the curl multi */

  /* last failure */
  eventsource_error_t last_error;
  long last_status;
  int last_curl_code;
  char last_msg[256];
  char curl_errbuf[CURL_ERROR_SIZE];

  /* the loop */
  eventsource_multi_t *multi;
  eventsource_t *next, *prev;  /* in multi->sources */
  _Atomic unsigned ops;       /* ES_OP_*: requests waiting for the loop */
  int queued;                  /* in multi->pending (under multi->lock) */
  eventsource_t *pending_next;
  int free_deferred;
  pthread_mutex_t cb_lock;     /* held by the loop thread while it calls listeners */
  pthread_mutex_t multi_lock;  /* guards es->multi for other threads (close, restart) */

  /* eventsource_run() / eventsource_start() */
  eventsource_multi_t *own_multi;
  pthread_t thread;
  int thread_started;
  int running;
};

/* ---- handle.c ---- */
/* Records the source's last failure (eventsource_last_error() and the rest). */
void es_set_error(eventsource_t *es, eventsource_error_t code, long status,
                  int curl_code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void es_set_error_va(eventsource_t *es, eventsource_error_t code, long status,
                     int curl_code, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static inline int es_is_closed(const eventsource_t *es) {
  return atomic_load(&es->closed) != 0;
}
static inline void es_set_ready_state(eventsource_t *es, eventsource_ready_state_t s) {
  atomic_store(&es->ready_state, (int)s);
}

/* ---- options.c ---- */
/* An absolute http(s) URL with a host, that libcurl's URL parser accepts,
 * without bytes that could split the request line, and short enough to be
 * sent. Returns OK, URL, REQUEST_TOO_LARGE or NOMEM. */
eventsource_error_t es_check_url(const char *url);

/* ---- transfer.c ---- */
/* Builds the request of the current hop on es->easy. */
eventsource_error_t es_transfer_build(eventsource_t *es);
/* Clears credentials a curl hook set, for a hop to another origin. */
CURLcode es_transfer_drop_foreign_credentials(eventsource_t *es);
/* What a failed transfer means, with the message the user sees. */
eventsource_error_t es_transfer_classify(eventsource_t *es, CURLcode result);

/* ---- source.c, for multi.c ---- */
/* Starts a connection attempt now, at the source's URL. A failure is
 * reported and handled there (the source is then DONE). */
void es_source_connect(eventsource_t *es);
/* The transfer ended with result (CURLMsg done). */
void es_source_transfer_done(eventsource_t *es, CURLcode result);
/* The read timeout fired: the transfer was removed from the curl multi. */
void es_source_read_timeout(eventsource_t *es);
/* Drops the transfer (removing it from the curl multi). */
void es_source_drop_transfer(eventsource_t *es);
/* Frees everything. The source must not be in a multi. */
void es_source_destroy(eventsource_t *es);
/* Applies a queued close (outside any libcurl callback). */
void es_source_apply_close(eventsource_t *es);
/* Records a failure found inside a libcurl callback (code, msg) and queues
 * ES_OP_FAIL; es_source_apply_fail() then fails the connection. */
void es_source_queue_fail(eventsource_t *es, eventsource_error_t code, const char *msg);
void es_source_apply_fail(eventsource_t *es);
/* Applies a queued restart: drop and reconnect now, no error, no backoff. */
void es_source_apply_restart(eventsource_t *es);

/* The parser's callbacks, with the source as their context. */
extern const es_parser_callbacks es_source_parser_callbacks;
/* The listeners of es, unless es is closed. */
void es_source_dispatch(eventsource_t *es, const eventsource_event_t *ev);
/* Non-zero: stop parsing (closed, restarted or no longer open). */
int es_source_stop_parsing(eventsource_t *es);
/* The response was validated: OPEN, then the open notification. Returns 0
 * to end the transfer (closed from a listener). */
int es_source_opened(eventsource_t *es);

/* ---- multi.c, for source.c ---- */
/* Queues ops for the loop and wakes it when called from another thread. */
void es_multi_queue(eventsource_multi_t *m, eventsource_t *es, unsigned ops);
/* Sets es->deadline (0: none) and updates the heap. */
void es_multi_set_deadline(eventsource_multi_t *m, eventsource_t *es, uint64_t at);
int es_multi_add_easy(eventsource_multi_t *m, eventsource_t *es);
void es_multi_remove_easy(eventsource_multi_t *m, eventsource_t *es);
int es_multi_on_loop_thread(const eventsource_multi_t *m);
/* Counts the source as no longer active. */
void es_multi_source_closed(eventsource_multi_t *m, eventsource_t *es);
/* Is the loop inside a step (libcurl or user callbacks may be on the stack)? */
int es_multi_in_step(const eventsource_multi_t *m);
uint32_t es_multi_random(eventsource_multi_t *m);
/* The last loop failure's message ("" when none). */
const char *es_multi_error(const eventsource_multi_t *m);

#endif
