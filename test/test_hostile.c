/*
 * test_hostile.c - servers and networks that misbehave (issue 10): long ids,
 * "retry: 0" against a dead server, servers that never answer, redirects
 * that would carry secrets elsewhere, permanent failures, compressed and
 * undecodable bodies, oversized headers, control bytes in header values.
 *
 * Each source runs on its own thread (eventsource_start); a listener for
 * every notification records it, and the test waits on the records.
 */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventsource.h"
#include "eventsource_curl.h"
#include "internal.h" /* the default read timeout, which has no getter */
#include "support/sse_server.h"
#include "support/ts_util.h"
#include "support/ts_encode.h"
#include "support/ts_tls.h"

#define WAIT_MS 10000
#define MAXREC 64

typedef struct rec {
  eventsource_kind_t kind;
  eventsource_error_t error;
  int will_reconnect;
  long reconnect_ms;
  long status;
  int state;
  char data[256];
  char id[256];
  char msg[256];
} rec;

typedef struct hx {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int n;
  rec r[MAXREC];
  /* the prepare hook's view of every request */
  int nurls;
  char urls[8][512];
  const char *ca_file; /* CURLOPT_CAINFO from the curl hook, or NULL */
  const char *userpwd; /* CURLOPT_USERPWD from the curl hook, or NULL */
  eventsource_t *es;
} hx;

static void copy(char *dst, size_t size, const char *src, size_t len) {
  if (len >= size)
    len = size - 1;
  memcpy(dst, src, len);
  dst[len] = '\0';
}

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  hx *h = ud;
  size_t len;
  const char *s;
  pthread_mutex_lock(&h->mu);
  if (h->n < MAXREC) {
    rec *r = &h->r[h->n++];
    r->kind = eventsource_event_kind(ev);
    r->error = eventsource_event_error(ev);
    r->will_reconnect = eventsource_event_will_reconnect(ev);
    r->reconnect_ms = eventsource_event_reconnect_ms(ev);
    r->status = eventsource_event_http_status(ev);
    r->state = eventsource_ready_state(es);
    s = eventsource_event_data(ev, &len);
    copy(r->data, sizeof r->data, s, len);
    s = eventsource_event_last_event_id(ev, &len);
    copy(r->id, sizeof r->id, s, len);
    s = eventsource_event_message(ev);
    copy(r->msg, sizeof r->msg, s, strlen(s));
  }
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

static int on_prepare(eventsource_t *es, unsigned attempt, void *ud) {
  hx *h = ud;
  pthread_mutex_lock(&h->mu);
  if (h->nurls < 8)
    copy(h->urls[h->nurls++], sizeof h->urls[0], eventsource_request_url(es),
         strlen(eventsource_request_url(es)));
  pthread_mutex_unlock(&h->mu);
  return 0;
}

static CURLcode on_curl(eventsource_t *es, CURL *easy, void *ud) {
  hx *h = ud;
  CURLcode rc = CURLE_OK;
  if (h->ca_file)
    rc = curl_easy_setopt(easy, CURLOPT_CAINFO, h->ca_file);
  if (rc == CURLE_OK && h->userpwd)
    rc = curl_easy_setopt(easy, CURLOPT_USERPWD, h->userpwd);
  return rc;
}

/* A source for url with the recording listener and both hooks. */
static eventsource_t *hx_new(hx *h, const char *url) {
  memset(h, 0, sizeof *h);
  pthread_mutex_init(&h->mu, NULL);
  pthread_condattr_t ca; /* ts_deadline_in() is on CLOCK_MONOTONIC */
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->cv, &ca);
  pthread_condattr_destroy(&ca);
  ck_assert_int_eq(eventsource_new(&h->es, url), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_any_listener(h->es, on_any, h, NULL), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_prepare_callback(h->es, on_prepare, h), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_curl_callback(h->es, on_curl, h), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(h->es, 0), EVENTSOURCE_OK);
  return h->es;
}

static void hx_free(hx *h) {
  eventsource_free(h->es); /* closes and joins */
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
}

/* Waits until n records of that kind exist; returns how many there are. */
static int hx_wait(hx *h, eventsource_kind_t kind, int n) {
  struct timespec ts;
  ts_deadline_in(&ts, WAIT_MS);
  pthread_mutex_lock(&h->mu);
  int got;
  for (;;) {
    got = 0;
    for (int i = 0; i < h->n; i++)
      got += h->r[i].kind == kind;
    if (got >= n || pthread_cond_timedwait(&h->cv, &h->mu, &ts) != 0)
      break;
  }
  if (got < n)
    for (int i = 0; i < h->n; i++) /* for the log of a failing test */
      fprintf(stderr, "record %d: kind %d error %s will_reconnect %d: %s\n", i,
              h->r[i].kind, eventsource_error_name(h->r[i].error),
              h->r[i].will_reconnect, h->r[i].msg);
  pthread_mutex_unlock(&h->mu);
  return got;
}

/* The i-th record of that kind (asserted to exist). */
static rec hx_nth(hx *h, eventsource_kind_t kind, int i) {
  rec out;
  int found = 0;
  pthread_mutex_lock(&h->mu);
  for (int k = 0; k < h->n && !found; k++)
    if (h->r[k].kind == kind && i-- == 0) {
      out = h->r[k];
      found = 1;
    }
  pthread_mutex_unlock(&h->mu);
  ck_assert_msg(found, "no such record");
  return out;
}

static int hx_count(hx *h, eventsource_kind_t kind) {
  int n = 0;
  pthread_mutex_lock(&h->mu);
  for (int k = 0; k < h->n; k++)
    n += h->r[k].kind == kind;
  pthread_mutex_unlock(&h->mu);
  return n;
}

/* Starts the source and waits for its one, final error: CLOSED, no retry. */
static rec expect_final_error(hx *h, eventsource_error_t want) {
  ck_assert_int_eq(eventsource_start(h->es), EVENTSOURCE_OK);
  ck_assert_int_eq(hx_wait(h, EVENTSOURCE_KIND_ERROR, 1), 1);
  rec e = hx_nth(h, EVENTSOURCE_KIND_ERROR, 0);
  ck_assert_msg(e.error == want, "error %s (%s), want %s", eventsource_error_name(e.error),
                e.msg, eventsource_error_name(want));
  ck_assert_int_eq(e.will_reconnect, 0);
  ck_assert_int_eq(e.reconnect_ms, -1);
  ck_assert_int_eq(e.state, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_ready_state(h->es), EVENTSOURCE_CLOSED);
  return e;
}

static const char *req_header(ts_server *s, int i, const char *name) {
  static char buf[2048];
  ts_request r;
  ck_assert_int_eq(ts_server_get_request(s, i, &r), 0);
  return ts_request_header(&r, name, buf, sizeof buf) ? buf : NULL;
}

static void script_stream(ts_server *s, const char *body, int hold) {
  ts_script *sc = ts_server_add_script(s);
  ts_script_headers(sc);
  ts_script_writes(sc, body);
  if (hold)
    ts_script_hold(sc);
}

/* ---- 1. the last event ID is bounded ------------------------------------ */

START_TEST(test_long_id_not_adopted) {
  ts_server *s = ts_start_server();
  size_t n = EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID + 1;
  char *body = malloc(n + 64);
  ck_assert_ptr_nonnull(body);
  memcpy(body, "id: ", 4);
  memset(body + 4, 'x', n);
  strcpy(body + 4 + n, "\ndata: a\n\n");
  script_stream(s, body, 0);
  script_stream(s, "data: b\n\n", 1);
  hx h;
  eventsource_t *es = hx_new(&h, ts_server_url(s, "/"));
  ck_assert_int_eq(eventsource_set_last_event_id(es, "start"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
  ck_assert_int_eq(hx_wait(&h, EVENTSOURCE_KIND_MESSAGE, 2), 2);
  /* the event is kept, with the previous ID; the ID is not truncated either */
  rec a = hx_nth(&h, EVENTSOURCE_KIND_MESSAGE, 0);
  ck_assert_str_eq(a.data, "a");
  ck_assert_str_eq(a.id, "start");
  rec e = hx_nth(&h, EVENTSOURCE_KIND_ERROR, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_TOO_LARGE);
  ck_assert_int_eq(e.will_reconnect, 0);
  ck_assert_int_eq(e.state, EVENTSOURCE_OPEN);
  ck_assert_ptr_nonnull(strstr(e.msg, "id"));
  /* the reconnection resumes from the last adopted ID */
  ck_assert_int_eq(ts_server_request_count(s), 2);
  ck_assert_str_eq(req_header(s, 1, "Last-Event-ID"), "start");
  hx_free(&h);
  free(body);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_long_id_setters) {
  eventsource_t *es;
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1:1/"), EVENTSOURCE_OK);
  char id[EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID + 2];
  memset(id, 'i', sizeof id - 1);
  id[sizeof id - 1] = '\0';
  ck_assert_int_eq(eventsource_set_last_event_id(es, id), EVENTSOURCE_ERR_REQUEST_TOO_LARGE);
  ck_assert_str_eq(eventsource_last_event_id(es, NULL), ""); /* unchanged */
  id[EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID] = '\0';           /* exactly the limit */
  ck_assert_int_eq(eventsource_set_last_event_id(es, id), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_max_last_event_id(NULL, 5), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_last_event_id(es, 5), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_last_event_id(es, "123456"),
                   EVENTSOURCE_ERR_REQUEST_TOO_LARGE);
  ck_assert_int_eq(eventsource_set_last_event_id(es, "12345"), EVENTSOURCE_OK);
  eventsource_free(es);
}
END_TEST

START_TEST(test_url_too_long_refused) {
  size_t n = EVENTSOURCE_MAX_URL + 1;
  char *url = malloc(n + 1);
  ck_assert_ptr_nonnull(url);
  memcpy(url, "http://127.0.0.1/", 17);
  memset(url + 17, 'p', n - 17);
  url[n] = '\0';
  eventsource_t *es = (eventsource_t *)url; /* untouched on failure */
  ck_assert_int_eq(eventsource_new(&es, url), EVENTSOURCE_ERR_REQUEST_TOO_LARGE);
  ck_assert_ptr_eq(es, (eventsource_t *)url);
  url[EVENTSOURCE_MAX_URL] = '\0';
  ck_assert_int_eq(eventsource_new(&es, url), EVENTSOURCE_OK);
  eventsource_free(es);
  free(url);
}
END_TEST

/* With no limit on the ID, a request libcurl could never send fails at once,
 * with a message naming the cause, and is not retried (it used to be retried
 * for ever with libcurl's "Out of memory"). */
START_TEST(test_request_too_large_not_retried) {
  ts_server *s = ts_start_server();
  script_stream(s, "data: never\n\n", 1);
  hx h;
  eventsource_t *es = hx_new(&h, ts_server_url(s, "/"));
  ck_assert_int_eq(eventsource_set_max_last_event_id(es, 0), EVENTSOURCE_OK);
  size_t n = 1100 * 1024;
  char *id = malloc(n + 1);
  ck_assert_ptr_nonnull(id);
  memset(id, 'z', n);
  id[n] = '\0';
  ck_assert_int_eq(eventsource_set_last_event_id(es, id), EVENTSOURCE_OK);
  rec e = expect_final_error(&h, EVENTSOURCE_ERR_REQUEST_TOO_LARGE);
  ck_assert_ptr_nonnull(strstr(e.msg, "limit"));
  ck_assert_ptr_null(strstr(e.msg, "Out of memory"));
  ck_assert_int_eq(ts_server_request_count(s), 0);
  hx_free(&h);
  free(id);
  ts_server_stop(s);
}
END_TEST

/* ---- 2. backoff from a floor -------------------------------------------- */

/* "retry: 0", then a server that answers nothing: the delays grow from the
 * floor (they were 0: 88,000 attempts in 5 s). */
START_TEST(test_retry_zero_dead_server_backs_off) {
  ts_server *s = ts_start_server();
  script_stream(s, "retry: 0\ndata: a\n\n", 0);
  ts_script_close(ts_server_add_script(s)); /* replayed: nothing answered */
  hx h;
  eventsource_t *es = hx_new(&h, ts_server_url(s, "/"));
  long t0 = ts_now_ms();
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
  ck_assert_int_eq(hx_wait(&h, EVENTSOURCE_KIND_ERROR, 4), 4);
  long took = ts_now_ms() - t0;
  const long B = EVENTSOURCE_MIN_RECONNECT_MS;
  /* the stream that delivered an event: the reconnection time (the floor) */
  ck_assert_int_eq(hx_nth(&h, EVENTSOURCE_KIND_ERROR, 0).error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(hx_nth(&h, EVENTSOURCE_KIND_ERROR, 0).reconnect_ms, B);
  /* then consecutive failures, doubling */
  for (int i = 1; i < 4; i++) {
    rec e = hx_nth(&h, EVENTSOURCE_KIND_ERROR, i);
    ck_assert_int_eq(e.error, EVENTSOURCE_ERR_NETWORK);
    ck_assert_int_eq(e.will_reconnect, 1);
    ck_assert_int_eq(e.reconnect_ms, B << i);
  }
  /* the first three delays were waited for: B + 2B + 4B */
  ck_assert_int_ge(took, 7 * B);
  ck_assert_int_le(ts_server_request_count(s), 5);
  hx_free(&h);
  ts_server_stop(s);
}
END_TEST

/* A server that closes on purpose after its events: each reconnection
 * waits the reconnection time, which does not grow, and never less than
 * the floor. */
START_TEST(test_clean_end_after_events_does_not_grow) {
  ts_server *s = ts_start_server();
  script_stream(s, "retry: 0\ndata: a\n\n", 0); /* replayed for every request */
  hx h;
  eventsource_t *es = hx_new(&h, ts_server_url(s, "/"));
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
  ck_assert_int_eq(hx_wait(&h, EVENTSOURCE_KIND_ERROR, 5), 5);
  for (int i = 0; i < 5; i++) {
    rec e = hx_nth(&h, EVENTSOURCE_KIND_ERROR, i);
    ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
    ck_assert_int_eq(e.reconnect_ms, EVENTSOURCE_MIN_RECONNECT_MS);
  }
  hx_free(&h);
  ts_server_stop(s);
}
END_TEST

/* ---- 3. a server that accepts and never answers ------------------------- */

START_TEST(test_never_answers_times_out) {
  ts_server *s = ts_start_server();
  ts_script_hold(ts_server_add_script(s)); /* accepts, reads, never answers */
  hx h;
  eventsource_t *es = hx_new(&h, ts_server_url(s, "/"));
  ck_assert_int_eq(eventsource_set_read_timeout(es, 300), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
  ck_assert_int_eq(hx_wait(&h, EVENTSOURCE_KIND_ERROR, 1), 1);
  rec e = hx_nth(&h, EVENTSOURCE_KIND_ERROR, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_READ_TIMEOUT);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(hx_count(&h, EVENTSOURCE_KIND_OPEN), 0);
  hx_free(&h);
  ts_server_stop(s);
}
END_TEST

/* The default: 5 minutes, not "for ever". */
START_TEST(test_default_read_timeout) {
  eventsource_t *es;
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1:1/"), EVENTSOURCE_OK);
  ck_assert_int_eq(es->opt.read_timeout_ms, EVENTSOURCE_DEFAULT_READ_TIMEOUT_MS);
  ck_assert_int_eq(EVENTSOURCE_DEFAULT_READ_TIMEOUT_MS, 300000);
  ck_assert_int_eq(eventsource_set_read_timeout(es, 0), EVENTSOURCE_OK); /* still off */
  ck_assert_int_eq(es->opt.read_timeout_ms, 0);
  eventsource_free(es);
}
END_TEST

/* ---- 4. redirects and secrets ------------------------------------------- */

static void script_redirect(ts_server *s, int status, const char *location) {
  char loc[1200];
  snprintf(loc, sizeof loc, "Location: %s", location);
  const char *hl[] = {loc, "Content-Length: 0", NULL};
  ts_script_status(ts_server_add_script(s), status, "Moved", hl);
}

static void set_secrets(eventsource_t *es) {
  ck_assert_int_eq(eventsource_set_header(es, "X-Api-Key", "secret-key"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(es, "Authorization", "Bearer secret"),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_last_event_id(es, "7"), EVENTSOURCE_OK);
}

/* _i: 0 default (headers stay home), 1 eventsource_set_redirect_headers(1) */
START_TEST(test_redirect_other_origin_drops_headers) {
  ts_server *a = ts_start_server(), *b = ts_start_server();
  char target[512];
  snprintf(target, sizeof target, "%s", ts_server_url(b, "/moved"));
  script_redirect(a, 302, target);
  script_stream(b, "data: there\n\n", 1);
  hx h;
  eventsource_t *es = hx_new(&h, ts_server_url(a, "/start"));
  set_secrets(es);
  if (_i)
    ck_assert_int_eq(eventsource_set_redirect_headers(es, 1), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_redirect_headers(NULL, 1), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
  ck_assert_int_eq(hx_wait(&h, EVENTSOURCE_KIND_MESSAGE, 1), 1);
  /* the origin the user named got everything */
  ck_assert_str_eq(req_header(a, 0, "X-Api-Key"), "secret-key");
  ck_assert_str_eq(req_header(a, 0, "Authorization"), "Bearer secret");
  /* the other one only what the library itself sends, unless allowed */
  if (_i) {
    ck_assert_str_eq(req_header(b, 0, "X-Api-Key"), "secret-key");
    ck_assert_str_eq(req_header(b, 0, "Authorization"), "Bearer secret");
  } else {
    ck_assert_ptr_null(req_header(b, 0, "X-Api-Key"));
    ck_assert_ptr_null(req_header(b, 0, "Authorization"));
  }
  ck_assert_str_eq(req_header(b, 0, "Accept"), "text/event-stream");
  ck_assert_str_eq(req_header(b, 0, "Last-Event-ID"), "7");
  /* the prepare hook saw both requests, with their URLs */
  pthread_mutex_lock(&h.mu);
  ck_assert_int_eq(h.nurls, 2);
  ck_assert_str_eq(h.urls[0], eventsource_url(es));
  ck_assert_str_eq(h.urls[1], target);
  pthread_mutex_unlock(&h.mu);
  hx_free(&h);
  ts_server_stop(a);
  ts_server_stop(b);
}
END_TEST

/* Credentials set through the curl hook do not follow either. */
START_TEST(test_redirect_other_origin_drops_curl_credentials) {
  ts_server *a = ts_start_server(), *b = ts_start_server();
  script_redirect(a, 307, ts_server_url(b, "/moved"));
  script_stream(b, "data: there\n\n", 1);
  hx h;
  hx_new(&h, ts_server_url(a, "/start"));
  h.userpwd = "user:password";
  ck_assert_int_eq(eventsource_start(h.es), EVENTSOURCE_OK);
  ck_assert_int_eq(hx_wait(&h, EVENTSOURCE_KIND_MESSAGE, 1), 1);
  ck_assert_ptr_nonnull(req_header(a, 0, "Authorization"));
  ck_assert_ptr_null(req_header(b, 0, "Authorization"));
  hx_free(&h);
  ts_server_stop(a);
  ts_server_stop(b);
}
END_TEST

/* A redirect within the origin keeps the headers. */
START_TEST(test_redirect_same_origin_keeps_headers) {
  ts_server *a = ts_start_server();
  script_redirect(a, 301, "/moved");
  script_stream(a, "data: here\n\n", 1);
  hx h;
  eventsource_t *es = hx_new(&h, ts_server_url(a, "/start"));
  set_secrets(es);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
  ck_assert_int_eq(hx_wait(&h, EVENTSOURCE_KIND_MESSAGE, 1), 1);
  ck_assert_str_eq(req_header(a, 1, "X-Api-Key"), "secret-key");
  ck_assert_str_eq(req_header(a, 1, "Authorization"), "Bearer secret");
  hx_free(&h);
  ts_server_stop(a);
}
END_TEST

/* https -> http: refused unless allowed (_i 1). */
START_TEST(test_redirect_https_to_http) {
  ts_tls *t = ts_tls_new("IP:127.0.0.1");
  ck_assert_ptr_nonnull(t);
  ts_server *a = ts_server_start_tls(t), *b = ts_start_server();
  ck_assert_ptr_nonnull(a);
  script_redirect(a, 302, ts_server_url(b, "/plain"));
  script_stream(b, "data: clear\n\n", 1);
  hx h;
  eventsource_t *es = hx_new(&h, ts_server_url(a, "/"));
  h.ca_file = ts_tls_ca_file(t);
  set_secrets(es);
  if (_i) {
    ck_assert_int_eq(eventsource_set_redirect_downgrade(es, 1), EVENTSOURCE_OK);
    ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
    ck_assert_int_eq(hx_wait(&h, EVENTSOURCE_KIND_MESSAGE, 1), 1);
    ck_assert_ptr_null(req_header(b, 0, "X-Api-Key")); /* another origin */
  } else {
    rec e = expect_final_error(&h, EVENTSOURCE_ERR_REDIRECT);
    ck_assert_int_eq(e.status, 302);
    ck_assert_ptr_nonnull(strstr(e.msg, "https to http"));
    ck_assert_int_eq(ts_server_request_count(b), 0);
    ck_assert_int_eq(ts_server_request_count(a), 1);
  }
  hx_free(&h);
  ts_server_stop(a);
  ts_server_stop(b);
  ts_tls_free(t);
}
END_TEST

/* 303 turns any method into GET without a body, as fetch does. */
START_TEST(test_redirect_303_custom_method_becomes_get) {
  ts_server *a = ts_start_server();
  script_redirect(a, 303, "/see");
  script_stream(a, "data: ok\n\n", 1);
  hx h;
  eventsource_t *es = hx_new(&h, ts_server_url(a, "/q"));
  ck_assert_int_eq(eventsource_set_method(es, "REPORT"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_body(es, "{}", 2), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
  ck_assert_int_eq(hx_wait(&h, EVENTSOURCE_KIND_MESSAGE, 1), 1);
  ts_request r;
  ck_assert_int_eq(ts_server_get_request(a, 0, &r), 0);
  ck_assert_str_eq(r.method, "REPORT");
  ck_assert_int_eq(ts_server_get_request(a, 1, &r), 0);
  ck_assert_str_eq(r.method, "GET");
  ck_assert_uint_eq(r.body_len, 0);
  hx_free(&h);
  ts_server_stop(a);
}
END_TEST

/* ---- 5. permanent failures are not retried ------------------------------- */

/* _i: 0 a CA the client does not trust, 1 a trusted CA but a certificate
 * for another name. Either way: TLS, CLOSED, one attempt. */
START_TEST(test_tls_failure_not_retried) {
  ts_tls *t = ts_tls_new(_i ? "DNS:wrong.invalid" : "IP:127.0.0.1");
  ck_assert_ptr_nonnull(t);
  ts_server *s = ts_server_start_tls(t);
  ck_assert_ptr_nonnull(s);
  script_stream(s, "data: never\n\n", 1);
  hx h;
  hx_new(&h, ts_server_url(s, "/"));
  if (_i)
    h.ca_file = ts_tls_ca_file(t);
  rec e = expect_final_error(&h, EVENTSOURCE_ERR_TLS);
  ck_assert_ptr_nonnull(strstr(e.msg, "TLS"));
  ck_assert_int_eq(eventsource_last_curl_code(h.es), CURLE_PEER_FAILED_VERIFICATION);
  ck_assert_int_eq(ts_server_request_count(s), 0);
  ck_assert_int_eq(hx_count(&h, EVENTSOURCE_KIND_ERROR), 1);
  hx_free(&h);
  ts_server_stop(s);
  ts_tls_free(t);
}
END_TEST

START_TEST(test_tls_trusted_works) {
  ts_tls *t = ts_tls_new("IP:127.0.0.1");
  ck_assert_ptr_nonnull(t);
  ts_server *s = ts_server_start_tls(t);
  script_stream(s, "data: secure\n\n", 1);
  hx h;
  hx_new(&h, ts_server_url(s, "/"));
  h.ca_file = ts_tls_ca_file(t);
  ck_assert_int_eq(eventsource_start(h.es), EVENTSOURCE_OK);
  ck_assert_int_eq(hx_wait(&h, EVENTSOURCE_KIND_MESSAGE, 1), 1);
  ck_assert_str_eq(hx_nth(&h, EVENTSOURCE_KIND_MESSAGE, 0).data, "secure");
  hx_free(&h);
  ts_server_stop(s);
  ts_tls_free(t);
}
END_TEST

/* ---- 6. compressed bodies ------------------------------------------------ */

static const char *const encodings[] = {"gzip", "deflate", "br", "zstd"};

static int libcurl_decodes(const char *enc) {
  const curl_version_info_data *ci = curl_version_info(CURLVERSION_NOW);
  if (!strcmp(enc, "br"))
    return (ci->features & CURL_VERSION_BROTLI) != 0;
  if (!strcmp(enc, "zstd"))
    return (ci->features & CURL_VERSION_ZSTD) != 0;
  return (ci->features & CURL_VERSION_LIBZ) != 0;
}

/* _i: the encoding; also once with compression asked for (Accept-Encoding). */
START_TEST(test_compressed_body_decoded) {
  const char *enc = encodings[_i % 4];
  ck_assert_msg(libcurl_decodes(enc), "this libcurl does not decode %s", enc);
  static const char stream[] = "id: 1\ndata: compressed \xc3\xa9v\xc3\xa9nement\n\n"
                               "data: second\n\n";
  unsigned char *z;
  size_t zlen;
  ck_assert_int_eq(ts_encode(enc, stream, sizeof stream - 1, &z, &zlen), 0);
  ts_server *s = ts_start_server();
  char ce[64];
  snprintf(ce, sizeof ce, "Content-Encoding: %s", enc);
  const char *hl[] = {"Content-Type: text/event-stream", ce, NULL};
  ts_script *sc = ts_server_add_script(s);
  ts_script_status(sc, 200, "OK", hl);
  ts_script_write(sc, z, zlen);
  ts_script_hold(sc);
  hx h;
  eventsource_t *es = hx_new(&h, ts_server_url(s, "/"));
  int ask = _i >= 4;
  if (ask)
    ck_assert_int_eq(eventsource_set_compression(es, 1), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
  ck_assert_int_eq(hx_wait(&h, EVENTSOURCE_KIND_MESSAGE, 2), 2);
  ck_assert_str_eq(hx_nth(&h, EVENTSOURCE_KIND_MESSAGE, 0).data,
                   "compressed \xc3\xa9v\xc3\xa9nement");
  ck_assert_str_eq(hx_nth(&h, EVENTSOURCE_KIND_MESSAGE, 1).data, "second");
  ck_assert_int_eq(hx_count(&h, EVENTSOURCE_KIND_ERROR), 0);
  const char *ae = req_header(s, 0, "Accept-Encoding");
  if (ask) {
    ck_assert_ptr_nonnull(ae);
    ck_assert_ptr_nonnull(strstr(ae, enc));
  } else {
    ck_assert_ptr_null(ae); /* not advertised unless asked for */
  }
  hx_free(&h);
  free(z);
  ts_server_stop(s);
}
END_TEST

/* An encoding libcurl cannot decode, or a body that is not what it claims:
 * ENCODING, CLOSED, never silent garbage. */
START_TEST(test_undecodable_body_fails) {
  ts_server *s = ts_start_server();
  const char *hl[] = {"Content-Type: text/event-stream",
                      _i ? "Content-Encoding: gzip" : "Content-Encoding: compress", NULL};
  ts_script *sc = ts_server_add_script(s);
  ts_script_status(sc, 200, "OK", hl);
  ts_script_writes(sc, "data: this is not gzip at all, not even close\n\n");
  ts_script_hold(sc);
  hx h;
  hx_new(&h, ts_server_url(s, "/"));
  rec e = expect_final_error(&h, EVENTSOURCE_ERR_ENCODING);
  if (!_i) {
    ck_assert_ptr_nonnull(strstr(e.msg, "compress"));
    ck_assert_int_eq(hx_count(&h, EVENTSOURCE_KIND_OPEN), 0);
  }
  ck_assert_int_eq(hx_count(&h, EVENTSOURCE_KIND_MESSAGE), 0);
  ck_assert_int_eq(ts_server_request_count(s), 1);
  hx_free(&h);
  ts_server_stop(s);
}
END_TEST

/* ---- 8. oversized response headers: a message that names the cause ------ */

/* _i 0: one 200 KB header line; 1: 400 lines of 1 KB (300 KiB in all). */
START_TEST(test_oversized_response_headers) {
  ts_server *s = ts_start_server();
  ts_script *sc = ts_server_add_script(s);
  ts_script_writes(sc, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n");
  if (_i == 0) {
    ts_script_writes(sc, "X-Big: ");
    ts_script_fill(sc, 'a', 200 * 1000);
    ts_script_writes(sc, "\r\n");
  } else {
    for (int i = 0; i < 400; i++) {
      char name[32];
      snprintf(name, sizeof name, "X-H%d: ", i);
      ts_script_writes(sc, name);
      ts_script_fill(sc, 'b', 1000);
      ts_script_writes(sc, "\r\n");
    }
  }
  ts_script_writes(sc, "\r\ndata: x\n\n");
  ts_script_hold(sc);
  hx h;
  hx_new(&h, ts_server_url(s, "/"));
  rec e = expect_final_error(&h, EVENTSOURCE_ERR_RESPONSE_TOO_LARGE);
  ck_assert_ptr_nonnull(strstr(e.msg, "limit"));
  ck_assert_msg(strncmp(e.msg, "Out of memory", 13) != 0, "message: %s", e.msg);
  ck_assert_int_eq(ts_server_request_count(s), 1);
  hx_free(&h);
  ts_server_stop(s);
}
END_TEST

/* ---- 9. control bytes in header values ---------------------------------- */

START_TEST(test_header_value_controls_refused) {
  eventsource_t *es;
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1:1/"), EVENTSOURCE_OK);
  static const char *const bad[] = {"a\x1b[31mb", "\x01", "x\x0b", "del\x7f", "\x1f"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_int_eq(eventsource_set_header(es, "X-A", bad[i]),
                     EVENTSOURCE_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(eventsource_add_header(es, "X-A", bad[i]),
                     EVENTSOURCE_ERR_INVALID_ARGUMENT);
  }
  /* nothing was added */
  ck_assert_int_eq(eventsource_remove_header(es, "X-A"), EVENTSOURCE_ERR_NOT_FOUND);
  /* HTAB stays allowed; CR and LF remain HEADER (injection) */
  ck_assert_int_eq(eventsource_set_header(es, "X-A", "a\tb"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(es, "X-A", "a\rb"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X-A", "a\nb"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X-A", "caf\xc3\xa9"), EVENTSOURCE_OK);
  eventsource_free(es);
}
END_TEST

static Suite *hostile_suite(void) {
  Suite *s = suite_create("hostile");
  TCase *tc = tcase_create("hostile");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_long_id_not_adopted);
  tcase_add_test(tc, test_long_id_setters);
  tcase_add_test(tc, test_url_too_long_refused);
  tcase_add_test(tc, test_request_too_large_not_retried);
  tcase_add_test(tc, test_retry_zero_dead_server_backs_off);
  tcase_add_test(tc, test_clean_end_after_events_does_not_grow);
  tcase_add_test(tc, test_never_answers_times_out);
  tcase_add_test(tc, test_default_read_timeout);
  tcase_add_loop_test(tc, test_redirect_other_origin_drops_headers, 0, 2);
  tcase_add_test(tc, test_redirect_other_origin_drops_curl_credentials);
  tcase_add_test(tc, test_redirect_same_origin_keeps_headers);
  tcase_add_loop_test(tc, test_redirect_https_to_http, 0, 2);
  tcase_add_test(tc, test_redirect_303_custom_method_becomes_get);
  tcase_add_loop_test(tc, test_tls_failure_not_retried, 0, 2);
  tcase_add_test(tc, test_tls_trusted_works);
  tcase_add_loop_test(tc, test_compressed_body_decoded, 0, 8);
  tcase_add_loop_test(tc, test_undecodable_body_fails, 0, 2);
  tcase_add_loop_test(tc, test_oversized_response_headers, 0, 2);
  tcase_add_test(tc, test_header_value_controls_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(hostile_suite(), CK_NORMAL); }
