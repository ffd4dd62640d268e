/*
 * test_connection.c - the connection of a source, end to end, against the
 * scripted loopback server (test/support/sse_server.h), through the public
 * API only.
 *
 * Every test runs its source either with eventsource_run() in a helper
 * thread or with eventsource_start(), records every notification in a log
 * protected by a mutex and a condition variable, and waits on that log (or on
 * the server) with a deadline. Nothing waits on a sleep.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h" /* es_alloc_fail_after(): allocation failure injection */
#include "eventsource.h"
#include "eventsource_curl.h"
#include "support/sse_server.h"
#include "support/test_util.h"

/* Deadlines are failure bounds only: a passing run never waits for them. */
#define WAIT_MS 10000
#define ANY_KIND (-1)

/* The bound within which a close must take effect (a safety bound, not a
 * timing dependency; more slack under valgrind). */
static long prompt_ms(void) { return tu_small_scale() ? 6000 : 2000; }

/* ------------------------------------------------------------------------ */
/* The notification log and the test context                                */
/* ------------------------------------------------------------------------ */

typedef struct rec {
  eventsource_kind_t kind;
  char type[64];
  char *data;
  size_t data_len;
  char id[128];
  eventsource_error_t error;
  long status;
  int will_reconnect;
  long reconnect_ms;
  int curl_code;
  eventsource_ready_state_t state;
  const char *via; /* which listener recorded it */
} rec;

#define MAX_PREPARE 16
#define MAX_POLICY 16

typedef struct policy_call {
  eventsource_error_t why;
  long status;
  unsigned attempt;
  int default_reconnect;
  long default_delay;
} policy_call;

typedef struct ctx {
  ts_server *srv;
  eventsource_t *es;
  int es_freed; /* freed by the test itself (from a listener) */

  pthread_mutex_t mu;
  pthread_cond_t cv;
  rec *v;
  size_t n, cap;

  /* the helper thread running eventsource_run() */
  pthread_t runner;
  int runner_started;
  int run_done;
  eventsource_error_t run_rc;
  int started; /* eventsource_start() used instead */

  /* per-test counters and settings, under mu */
  int counter[8];
  eventsource_listener_id_t ids[8];
  int close_after; /* close from a listener after this many messages */
  eventsource_ready_state_t seen_state;
  unsigned prepare_attempts[MAX_PREPARE];
  int nprepare;
  int prepare_fail;
  policy_call policy[MAX_POLICY];
  int npolicy;
  int policy_mode;
  long policy_delay;

  /* the curl hook (curl_hook) and what it saw */
  int curl_mode;
  int ncurl;                        /* calls */
  int curl_nprepare[MAX_PREPARE];   /* nprepare when call i was made */
  int curl_bad;                     /* calls that found something wrong */
  /* CURLINFO_DATA_IN, counted by the debug function of CURL_TRACE */
  size_t in_bytes;
  size_t in_chunks;
  size_t in_max;

  ts_request *req; /* scratch for req_get() */
  char hbuf[1024];
} ctx;

static void ctx_init(ctx *c) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cv, &ca);
  pthread_condattr_destroy(&ca);
  c->req = malloc(sizeof *c->req);
  ck_assert_ptr_nonnull(c->req);
  c->srv = ts_server_start();
  ck_assert_ptr_nonnull(c->srv);
}

static void log_push(ctx *c, eventsource_t *es, const eventsource_event_t *ev,
                     const char *via) {
  rec r;
  memset(&r, 0, sizeof r);
  r.kind = eventsource_event_kind(ev);
  snprintf(r.type, sizeof r.type, "%s", eventsource_event_type(ev, NULL));
  size_t dl = 0;
  const char *d = eventsource_event_data(ev, &dl);
  r.data = malloc(dl + 1);
  if (r.data) {
    memcpy(r.data, d, dl);
    r.data[dl] = '\0';
    r.data_len = dl;
  }
  snprintf(r.id, sizeof r.id, "%s", eventsource_event_last_event_id(ev, NULL));
  r.error = eventsource_event_error(ev);
  r.status = eventsource_event_http_status(ev);
  r.will_reconnect = eventsource_event_will_reconnect(ev);
  r.reconnect_ms = eventsource_event_reconnect_ms(ev);
  r.curl_code = eventsource_event_curl_code(ev);
  r.state = eventsource_ready_state(es);
  r.via = via;
  pthread_mutex_lock(&c->mu);
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 64;
    c->v = realloc(c->v, c->cap * sizeof *c->v);
    if (!c->v)
      abort();
  }
  c->v[c->n++] = r;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

/* The any-listener every test installs. */
static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  log_push(ud, es, ev, "any");
}

static int matches(const rec *r, int kind, const char *type) {
  return (kind == ANY_KIND || (int)r->kind == kind) &&
         (!type || strcmp(r->type, type) == 0);
}

static size_t count_locked(ctx *c, int kind, const char *type) {
  size_t k = 0;
  for (size_t i = 0; i < c->n; i++)
    if (matches(&c->v[i], kind, type))
      k++;
  return k;
}

static size_t log_count(ctx *c, int kind, const char *type) {
  pthread_mutex_lock(&c->mu);
  size_t k = count_locked(c, kind, type);
  pthread_mutex_unlock(&c->mu);
  return k;
}

static size_t log_size(ctx *c) { return log_count(c, ANY_KIND, NULL); }

/* Waits until the log holds at least n records of that kind and type;
 * returns how many it holds. */
static size_t log_wait(ctx *c, int kind, const char *type, size_t n,
                       long timeout_ms) {
  struct timespec dl;
  tu_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&c->mu);
  size_t k;
  while ((k = count_locked(c, kind, type)) < n &&
         pthread_cond_timedwait(&c->cv, &c->mu, &dl) == 0) {
  }
  k = count_locked(c, kind, type);
  pthread_mutex_unlock(&c->mu);
  return k;
}

/* A copy of the i-th record (records are never changed once logged). */
static rec log_at(ctx *c, size_t i) {
  pthread_mutex_lock(&c->mu);
  ck_assert_uint_lt(i, c->n);
  rec r = c->v[i];
  pthread_mutex_unlock(&c->mu);
  return r;
}

/* The index of the n-th (0-based) record of that kind and type, or -1. */
static long log_find(ctx *c, int kind, const char *type, size_t nth) {
  pthread_mutex_lock(&c->mu);
  long found = -1;
  for (size_t i = 0; i < c->n; i++)
    if (matches(&c->v[i], kind, type) && nth-- == 0) {
      found = (long)i;
      break;
    }
  pthread_mutex_unlock(&c->mu);
  return found;
}

static rec log_nth(ctx *c, int kind, const char *type, size_t nth) {
  long i = log_find(c, kind, type, nth);
  ck_assert_msg(i >= 0, "no record #%zu of kind %d type %s", nth, kind,
                type ? type : "(any)");
  return log_at(c, (size_t)i);
}

/* A source for url (any server), with the logging any-listener, in c->es. */
static eventsource_t *ctx_new_es_url(ctx *c, const char *url) {
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, url), EVENTSOURCE_OK);
  ck_assert_ptr_nonnull(es);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(eventsource_add_any_listener(es, on_any, c, NULL),
                   EVENTSOURCE_OK);
  c->es = es;
  return es;
}

/* The same for a path on the test's server. */
static eventsource_t *ctx_new_es(ctx *c, const char *path) {
  return ctx_new_es_url(c, ts_server_url(c->srv, path));
}

static void *runner_main(void *arg) {
  ctx *c = arg;
  eventsource_error_t rc = eventsource_run(c->es);
  pthread_mutex_lock(&c->mu);
  c->run_rc = rc;
  c->run_done = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

/* Runs c->es with eventsource_run() in a helper thread. */
static void ctx_run(ctx *c) {
  ck_assert_int_eq(pthread_create(&c->runner, NULL, runner_main, c), 0);
  c->runner_started = 1;
}

/* Runs c->es with eventsource_start(). */
static void ctx_start(ctx *c) {
  ck_assert_int_eq(eventsource_start(c->es), EVENTSOURCE_OK);
  c->started = 1;
}

/* Waits until eventsource_run() returned; 1 if it did. */
static int ctx_wait_run(ctx *c, long timeout_ms) {
  struct timespec dl;
  tu_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&c->mu);
  while (!c->run_done && pthread_cond_timedwait(&c->cv, &c->mu, &dl) == 0) {
  }
  int done = c->run_done;
  pthread_mutex_unlock(&c->mu);
  if (done && c->runner_started) {
    pthread_join(c->runner, NULL);
    c->runner_started = 0;
  }
  return done;
}

static eventsource_error_t ctx_run_rc(ctx *c) {
  pthread_mutex_lock(&c->mu);
  eventsource_error_t rc = c->run_rc;
  pthread_mutex_unlock(&c->mu);
  return rc;
}

/* Closes (if still running), waits, frees everything. */
static void ctx_fini(ctx *c) {
  if (c->es && !c->es_freed) {
    if (c->runner_started) {
      eventsource_close(c->es);
      ck_assert_msg(ctx_wait_run(c, WAIT_MS), "eventsource_run did not return");
    }
    eventsource_free(c->es); /* joins the thread of eventsource_start() */
  } else if (c->runner_started) {
    ck_assert_msg(ctx_wait_run(c, WAIT_MS), "eventsource_run did not return");
  }
  c->es = NULL;
  ts_server_stop(c->srv);
  c->srv = NULL;
  for (size_t i = 0; i < c->n; i++)
    free(c->v[i].data);
  free(c->v);
  free(c->req);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
}

/* Fixed reconnection delay: retry ms, no jitter. */
static void set_retry_exact(eventsource_t *es, long ms) {
  ck_assert_int_eq(eventsource_set_retry(es, ms), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
}

/* Waits for n records of that kind (any type) and asserts there are n. */
static void log_wait_eq(ctx *c, int kind, size_t n) {
  ck_assert_uint_eq(log_wait(c, kind, NULL, n, WAIT_MS), n);
}

/* eventsource_run() of c->es returned rc and left the source closed. */
static void expect_run_ended(ctx *c, eventsource_error_t rc) {
  ck_assert(ctx_wait_run(c, WAIT_MS));
  ck_assert_int_eq(ctx_run_rc(c), rc);
  ck_assert_int_eq(eventsource_ready_state(c->es), EVENTSOURCE_CLOSED);
}

/* Request i as the server recorded it (in c->req). */
static const ts_request *req_get(ctx *c, int i) {
  ck_assert_int_eq(ts_server_get_request(c->srv, i, c->req), 0);
  return c->req;
}

/* The value of a header in request i, or NULL when absent. */
static const char *req_header(ctx *c, int i, const char *name) {
  const ts_request *r = req_get(c, i);
  return ts_request_header(r, name, c->hbuf, sizeof c->hbuf) ? c->hbuf : NULL;
}

static void counter_inc(ctx *c, int k) {
  pthread_mutex_lock(&c->mu);
  c->counter[k]++;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static int counter_get(ctx *c, int k) {
  pthread_mutex_lock(&c->mu);
  int v = c->counter[k];
  pthread_mutex_unlock(&c->mu);
  return v;
}

static int counter_wait(ctx *c, int k, int n, long timeout_ms) {
  struct timespec dl;
  tu_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&c->mu);
  while (c->counter[k] < n && pthread_cond_timedwait(&c->cv, &c->mu, &dl) == 0) {
  }
  int v = c->counter[k];
  pthread_mutex_unlock(&c->mu);
  return v;
}

static void assert_data(const rec *r, const char *want) {
  ck_assert_msg(r->data_len == strlen(want) && memcmp(r->data, want, r->data_len) == 0,
                "data '%s', want '%s'", r->data, want);
}

/* A script: headers, the given writes (NULL-ended), then hold or close. */
static ts_script *script_stream(ctx *c, int hold, const char *first, ...)
    __attribute__((sentinel));
static ts_script *script_stream(ctx *c, int hold, const char *first, ...) {
  ts_script *sc = ts_server_add_script(c->srv);
  ts_script_headers(sc);
  va_list ap;
  va_start(ap, first);
  for (const char *w = first; w; w = va_arg(ap, const char *))
    ts_script_writes(sc, w);
  va_end(ap);
  if (hold)
    ts_script_hold(sc);
  else
    ts_script_close(sc);
  return sc;
}

static void script_status(ctx *c, int status, const char *reason,
                          const char *h1, const char *h2, const char *body) {
  ts_script *sc = ts_server_add_script(c->srv);
  const char *hl[3] = {h1, h1 ? h2 : NULL, NULL};
  ts_script_status(sc, status, reason, hl);
  if (body)
    ts_script_writes(sc, body);
  ts_script_close(sc);
}

/* What curl_hook, the hook of eventsource_set_curl_callback(), does. */
enum {
  CURL_USER_AGENT, /* sets CURLOPT_USERAGENT "es-test/1" */
  CURL_FAIL,       /* returns CURLE_BAD_FUNCTION_ARGUMENT */
  CURL_CLOSE,      /* closes the source */
  CURL_TRACE       /* counts the body bytes received (on_curl_debug) */
};

/* CURLINFO_DATA_IN is every piece of the body as libcurl received it, passed
 * here before the library's write function sees it. */
static int on_curl_debug(CURL *easy, curl_infotype type, char *data,
                         size_t size, void *ud) {
  (void)easy;
  (void)data;
  if (type != CURLINFO_DATA_IN)
    return 0;
  ctx *c = ud;
  pthread_mutex_lock(&c->mu);
  c->in_bytes += size;
  c->in_chunks++;
  if (size > c->in_max)
    c->in_max = size;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

/* Waits until the client has received at least n body bytes (CURL_TRACE);
 * returns how many it has. */
static size_t in_bytes_wait(ctx *c, size_t n, long timeout_ms) {
  struct timespec dl;
  tu_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&c->mu);
  while (c->in_bytes < n && pthread_cond_timedwait(&c->cv, &c->mu, &dl) == 0) {
  }
  size_t got = c->in_bytes;
  pthread_mutex_unlock(&c->mu);
  return got;
}

static CURLcode curl_hook(eventsource_t *es, CURL *easy, void *ud) {
  ctx *c = ud;
  pthread_mutex_lock(&c->mu);
  if (c->ncurl < MAX_PREPARE)
    c->curl_nprepare[c->ncurl] = c->nprepare;
  c->ncurl++;
  if (es != c->es || !easy)
    c->curl_bad++;
  int mode = c->curl_mode;
  pthread_mutex_unlock(&c->mu);
  CURLcode rc = CURLE_OK;
  switch (mode) {
  case CURL_USER_AGENT:
    rc = curl_easy_setopt(easy, CURLOPT_USERAGENT, "es-test/1");
    break;
  case CURL_FAIL:
    return CURLE_BAD_FUNCTION_ARGUMENT;
  case CURL_CLOSE:
    eventsource_close(es);
    break;
  case CURL_TRACE:
    rc = curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, on_curl_debug);
    if (rc == CURLE_OK)
      rc = curl_easy_setopt(easy, CURLOPT_DEBUGDATA, (void *)c);
    if (rc == CURLE_OK)
      rc = curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);
    break;
  default:
    break;
  }
  if (rc != CURLE_OK) {
    pthread_mutex_lock(&c->mu);
    c->curl_bad++;
    pthread_mutex_unlock(&c->mu);
  }
  return rc;
}

/* Installs curl_hook in the given mode on c->es. */
static void ctx_curl_hook(ctx *c, int mode) {
  c->curl_mode = mode;
  ck_assert_int_eq(eventsource_set_curl_callback(c->es, curl_hook, c),
                   EVENTSOURCE_OK);
}

static int ctx_get(ctx *c, const int *field) {
  pthread_mutex_lock(&c->mu);
  int v = *field;
  pthread_mutex_unlock(&c->mu);
  return v;
}

/* ------------------------------------------------------------------------ */
/* The request                                                              */
/* ------------------------------------------------------------------------ */

START_TEST(test_get_request_headers) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: hi\n\n", NULL);
  ctx_new_es(&c, "/stream?x=1");
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  const ts_request *r = req_get(&c, 0);
  ck_assert_str_eq(r->method, "GET");
  ck_assert_str_eq(r->path, "/stream?x=1");
  ck_assert_ptr_null(r->body);
  ck_assert_int_eq(ts_request_header_count(r, "Accept"), 1);
  ck_assert_int_eq(ts_request_header_count(r, "Cache-Control"), 1);
  ck_assert_str_eq(req_header(&c, 0, "Accept"), "text/event-stream");
  ck_assert_str_eq(req_header(&c, 0, "Cache-Control"), "no-cache");
  ck_assert_ptr_null(req_header(&c, 0, "Last-Event-ID"));
  ck_assert_ptr_null(req_header(&c, 0, "Content-Length"));
  ck_assert_ptr_nonnull(req_header(&c, 0, "Host"));
  eventsource_close(c.es);
  expect_run_ended(&c, EVENTSOURCE_OK);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_initial_last_event_id) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: hi\n\n", NULL);
  ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_last_event_id(c.es, "bad\nid"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_last_event_id(c.es, "bad\rid"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_last_event_id(NULL, "x"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_last_event_id(c.es, "abc-1"), EVENTSOURCE_OK);
  ck_assert_str_eq(eventsource_last_event_id(c.es, NULL), "abc-1");
  ctx_start(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_str_eq(req_header(&c, 0, "Last-Event-ID"), "abc-1");
  ck_assert_int_eq(ts_request_header_count(req_get(&c, 0), "Last-Event-ID"), 1);
  rec m = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, "message", 0);
  ck_assert_str_eq(m.id, "abc-1");
  ctx_fini(&c);
}
END_TEST

START_TEST(test_last_event_id_cleared_before_start) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: hi\n\n", NULL);
  ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_last_event_id(c.es, "x"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_last_event_id(c.es, ""), EVENTSOURCE_OK);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_ptr_null(req_header(&c, 0, "Last-Event-ID"));
  ctx_fini(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Events and readyState                                                    */
/* ------------------------------------------------------------------------ */

static const char STREAM[] = ": hello\n"
                             "data: first\n\n"
                             "event: custom\ndata: line1\ndata: line2\nid: 42\n\n"
                             "data: third\r\n\r\n"
                             "data:fourth\rdata: x\r\r"
                             "data: nul\0byte\n\n";

static void on_comment(eventsource_t *es, const eventsource_event_t *ev,
                       void *ud) {
  log_push(ud, es, ev, "comment");
}

static void on_custom(eventsource_t *es, const eventsource_event_t *ev,
                      void *ud) {
  log_push(ud, es, ev, "custom");
}

static void check_stream_log(ctx *c) {
  ck_assert_uint_eq(log_wait(c, EVENTSOURCE_KIND_MESSAGE, NULL, 5 + 1, WAIT_MS),
                    6); /* 4 messages + custom via "custom" and via "any" */
  log_wait_eq(c, EVENTSOURCE_KIND_COMMENT, 1);
  /* in order: open, comment, first, custom (twice), third, fourth, nul */
  rec r = log_at(c, 1);
  ck_assert_int_eq(r.kind, EVENTSOURCE_KIND_COMMENT);
  ck_assert_str_eq(r.type, "comment");
  assert_data(&r, " hello");
  r = log_at(c, 0);
  ck_assert_int_eq(r.kind, EVENTSOURCE_KIND_OPEN);
  ck_assert_str_eq(r.type, "open");
  ck_assert_int_eq(r.state, EVENTSOURCE_OPEN);
  ck_assert_uint_eq(r.data_len, 0);
  ck_assert_int_eq(r.error, EVENTSOURCE_OK);
  ck_assert_int_eq(r.reconnect_ms, -1);
  r = log_at(c, 2);
  ck_assert_int_eq(r.kind, EVENTSOURCE_KIND_MESSAGE);
  ck_assert_str_eq(r.type, "message");
  assert_data(&r, "first");
  ck_assert_str_eq(r.id, "");
  ck_assert_int_eq(r.state, EVENTSOURCE_OPEN);
  r = log_at(c, 3);
  ck_assert_str_eq(r.via, "custom");
  ck_assert_str_eq(r.type, "custom");
  assert_data(&r, "line1\nline2");
  ck_assert_str_eq(r.id, "42");
  r = log_at(c, 4);
  ck_assert_str_eq(r.via, "any");
  ck_assert_str_eq(r.type, "custom");
  r = log_at(c, 5);
  ck_assert_str_eq(r.type, "message");
  assert_data(&r, "third");
  ck_assert_str_eq(r.id, "42");
  r = log_at(c, 6);
  assert_data(&r, "fourth\nx");
  r = log_at(c, 7);
  ck_assert_uint_eq(r.data_len, 8);
  ck_assert_int_eq(memcmp(r.data, "nul\0byte", 8), 0);
  ck_assert_uint_eq(log_count(c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_int_eq(ts_server_request_count(c->srv), 1);
}

START_TEST(test_events_one_chunk) {
  ctx c;
  ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  ts_script_write(sc, STREAM, sizeof STREAM - 1);
  ts_script_hold(sc);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_comment_listener(es, on_comment, &c, NULL),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_listener(es, "custom", on_custom, &c, NULL),
                   EVENTSOURCE_OK);
  ctx_start(&c);
  check_stream_log(&c);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_OPEN);
  eventsource_close(es);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(ts_server_wait_client_closes(c.srv, 1, WAIT_MS), 1);
  ctx_fini(&c);
}
END_TEST

/* The message records (any-listener and "custom" listener) that the events
 * of STREAM complete within its first `prefix` bytes make. */
static size_t stream_msgs_upto(size_t prefix) {
  static const struct {
    const char *tail; /* the event's end (its dispatching byte last) */
    size_t len;
    size_t recs;
  } ends[] = {
      {"first\n\n", 7, 1},
      {"id: 42\n\n", 8, 2},
      {"third\r\n\r", 8, 1}, /* a blank line's CR dispatches at once */
      {"x\r\r", 3, 1},
      {"byte\n\n", 6, 1},
  };
  size_t k = 0;
  for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
    const char *at = memmem(STREAM, sizeof STREAM - 1, ends[i].tail, ends[i].len);
    ck_assert_ptr_nonnull(at);
    if ((size_t)(at - STREAM) + ends[i].len <= prefix)
      k += ends[i].recs;
  }
  return k;
}

/* The body one byte at a time, and each byte only once the client has
 * received the one before (a gate per byte, opened when libcurl's debug
 * function has reported the previous byte): every byte is a read of its own,
 * and after every byte the events dispatched are those the bytes so far
 * complete (the last byte may still be on its way through the library). */
START_TEST(test_events_split_every_byte) {
  ctx c;
  ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             "Connection: close\r\n\r\n";
  for (size_t i = 0; i < sizeof head - 1; i++)
    ts_script_write(sc, head + i, 1);
  size_t n = sizeof STREAM - 1;
  for (size_t i = 0; i < n; i++) {
    ts_script_gate(sc, (int)i + 1);
    ts_script_write(sc, STREAM + i, 1);
  }
  ts_script_hold(sc);
  ck_assert_uint_eq(stream_msgs_upto(n), 6);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_comment_listener(es, on_comment, &c, NULL),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_listener(es, "custom", on_custom, &c, NULL),
                   EVENTSOURCE_OK);
  ctx_curl_hook(&c, CURL_TRACE);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_OPEN, 1);
  for (size_t i = 0; i < n; i++) {
    /* the server waits at gate i + 1: the client has exactly i bytes */
    ck_assert_uint_eq(in_bytes_wait(&c, i, WAIT_MS), i);
    size_t msgs = log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL);
    /* nothing before its end arrived */
    ck_assert_msg(msgs <= stream_msgs_upto(i), "%zu records after %zu bytes", msgs, i);
    /* byte i - 1 may still be in the library; every earlier one went through
     * (libcurl reports a read to the debug function before it delivers it,
     * and reads the next only after) */
    if (i > 0)
      ck_assert_msg(msgs >= stream_msgs_upto(i - 1), "%zu records after %zu bytes",
                    msgs, i);
    ts_server_release(c.srv, (int)i + 1);
  }
  check_stream_log(&c);
  ck_assert_uint_eq(in_bytes_wait(&c, n, WAIT_MS), n);
  pthread_mutex_lock(&c.mu);
  size_t chunks = c.in_chunks, biggest = c.in_max;
  pthread_mutex_unlock(&c.mu);
  ck_assert_uint_eq(chunks, n);
  ck_assert_uint_eq(biggest, 1);
  ck_assert_int_eq(ctx_get(&c, &c.curl_bad), 0);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_ready_state_transitions) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "data: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  set_retry_exact(es, 0);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  struct {
    eventsource_kind_t kind;
    eventsource_ready_state_t state;
    const char *data;
  } want[] = {
      {EVENTSOURCE_KIND_OPEN, EVENTSOURCE_OPEN, ""},
      {EVENTSOURCE_KIND_MESSAGE, EVENTSOURCE_OPEN, "a"},
      {EVENTSOURCE_KIND_ERROR, EVENTSOURCE_CONNECTING, ""},
      {EVENTSOURCE_KIND_OPEN, EVENTSOURCE_OPEN, ""},
      {EVENTSOURCE_KIND_MESSAGE, EVENTSOURCE_OPEN, "b"},
  };
  ck_assert_uint_eq(log_size(&c), 5);
  for (size_t i = 0; i < 5; i++) {
    rec r = log_at(&c, i);
    ck_assert_msg(r.kind == want[i].kind && r.state == want[i].state,
                  "record %zu: kind %d state %d, want %d %d", i, r.kind,
                  r.state, want[i].kind, want[i].state);
    assert_data(&r, want[i].data);
  }
  rec e = log_at(&c, 2);
  ck_assert_str_eq(e.type, "error");
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, EVENTSOURCE_MIN_RECONNECT_MS); /* retry 0: the floor */
  ck_assert_int_eq(e.curl_code, 0);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  eventsource_close(es);
  expect_run_ended(&c, EVENTSOURCE_OK);
  ck_assert_uint_eq(log_size(&c), 5); /* close notifies nobody */
  ctx_fini(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Response validation                                                      */
/* ------------------------------------------------------------------------ */

static const char *const good_types[] = {
    "Content-Type: text/event-stream; charset=utf-8",
    "Content-Type: Text/Event-Stream",
    "content-type: text/event-stream;charset=UTF-8",
};

START_TEST(test_content_type_accepted) {
  ctx c;
  ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {good_types[_i], NULL};
  ts_script_status(sc, 200, "OK", hl);
  ts_script_writes(sc, "data: ok\n\n");
  ts_script_hold(sc);
  ctx_new_es(&c, "/");
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  rec r = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  assert_data(&r, "ok");
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ctx_fini(&c);
}
END_TEST

static const struct bad_response {
  int status;
  const char *reason;
  const char *ctype; /* header line or NULL */
  const char *body;
  eventsource_error_t want;
} bad_responses[] = {
    {204, "No Content", NULL, NULL, EVENTSOURCE_ERR_HTTP_STATUS},
    {404, "Not Found", "Content-Type: text/html", "<p>nope</p>",
     EVENTSOURCE_ERR_HTTP_STATUS},
    {500, "Internal Server Error", "Content-Type: text/event-stream",
     "data: x\n\n", EVENTSOURCE_ERR_HTTP_STATUS},
    {503, "Service Unavailable", "Content-Type: text/event-stream",
     "data: x\n\n", EVENTSOURCE_ERR_HTTP_STATUS},
    {201, "Created", "Content-Type: text/event-stream", "data: x\n\n",
     EVENTSOURCE_ERR_HTTP_STATUS},
    {200, "OK", NULL, "data: x\n\n", EVENTSOURCE_ERR_CONTENT_TYPE},
    {200, "OK", "Content-Type: text/plain", "data: x\n\n",
     EVENTSOURCE_ERR_CONTENT_TYPE},
    {200, "OK", "Content-Type: text/event-streams", "data: x\n\n",
     EVENTSOURCE_ERR_CONTENT_TYPE},
    {200, "OK", "Content-Type: application/json", "data: x\n\n",
     EVENTSOURCE_ERR_CONTENT_TYPE},
};

START_TEST(test_bad_response_closes) {
  const struct bad_response *b = &bad_responses[_i];
  ctx c;
  ctx_init(&c);
  script_status(&c, b->status, b->reason, b->ctype, NULL, b->body);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, 0), EVENTSOURCE_OK);
  ctx_run(&c);
  ck_assert_msg(ctx_wait_run(&c, WAIT_MS), "run did not return after %d",
                b->status);
  ck_assert_int_eq(ctx_run_rc(&c), b->want);
  /* run has returned: no reconnection can happen any more */
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_uint_eq(log_size(&c), 1);
  rec r = log_at(&c, 0);
  ck_assert_int_eq(r.kind, EVENTSOURCE_KIND_ERROR);
  ck_assert_str_eq(r.type, "error");
  ck_assert_int_eq(r.error, b->want);
  ck_assert_int_eq(r.status, b->status);
  ck_assert_int_eq(r.will_reconnect, 0);
  ck_assert_int_eq(r.reconnect_ms, -1);
  ck_assert_int_eq(r.state, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_last_error(es), b->want);
  ck_assert_int_eq(eventsource_last_http_status(es), b->status);
  ck_assert_ptr_nonnull(eventsource_last_error_message(es));
  /* a closed source cannot be run again */
  ck_assert_int_eq(eventsource_run(es), EVENTSOURCE_ERR_STATE);
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_ERR_CLOSED);
  ctx_fini(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Redirects                                                                */
/* ------------------------------------------------------------------------ */

static const int redirect_codes[] = {301, 302, 303, 307, 308};

START_TEST(test_redirect_followed) {
  ctx c;
  ctx_init(&c);
  int code = redirect_codes[_i];
  char loc[1200];
  if (_i % 2) /* absolute and relative Locations */
    snprintf(loc, sizeof loc, "Location: %s", ts_server_url(c.srv, "/moved"));
  else
    snprintf(loc, sizeof loc, "Location: /moved");
  script_status(&c, code, "Moved", loc, "Content-Length: 0", NULL);
  script_stream(&c, 1, "data: here\n\n", NULL);
  ctx_new_es(&c, "/start");
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ck_assert_str_eq(req_get(&c, 0)->path, "/start");
  ck_assert_str_eq(req_get(&c, 1)->path, "/moved");
  ck_assert_str_eq(req_get(&c, 1)->method, "GET");
  ck_assert_str_eq(req_header(&c, 1, "Accept"), "text/event-stream");
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  rec r = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  assert_data(&r, "here");
  ctx_fini(&c);
}
END_TEST

/* Runs c->es, which must fail with REDIRECT after the server received
 * `requests` requests, the last answered with `status`: CLOSED, one error
 * notification, no reconnection. */
static void expect_redirect_failure(ctx *c, int requests, long status) {
  ctx_run(c);
  ck_assert(ctx_wait_run(c, WAIT_MS));
  ck_assert_int_eq(ctx_run_rc(c), EVENTSOURCE_ERR_REDIRECT);
  /* run has returned: no reconnection can happen any more */
  ck_assert_int_eq(ts_server_request_count(c->srv), requests);
  ck_assert_int_eq(eventsource_ready_state(c->es), EVENTSOURCE_CLOSED);
  ck_assert_uint_eq(log_size(c), 1);
  rec r = log_at(c, 0);
  ck_assert_int_eq(r.kind, EVENTSOURCE_KIND_ERROR);
  ck_assert_int_eq(r.error, EVENTSOURCE_ERR_REDIRECT);
  ck_assert_int_eq(r.status, status);
  ck_assert_int_eq(r.will_reconnect, 0);
  ck_assert_int_eq(r.reconnect_ms, -1);
  ck_assert_int_eq(r.state, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_last_error(c->es), EVENTSOURCE_ERR_REDIRECT);
  ck_assert_int_eq(eventsource_last_http_status(c->es), status);
}

static const char *const bad_locations[] = {
    NULL, /* no Location at all */
    "Location: ftp://127.0.0.1/x",
    "Location: ftp://x/",
    "Location: http://[::1",
    "Location: http://",
};

START_TEST(test_redirect_unusable) {
  ctx c;
  ctx_init(&c);
  script_status(&c, 302, "Found", bad_locations[_i], NULL, NULL);
  script_stream(&c, 1, "data: never\n\n", NULL);
  ctx_new_es(&c, "/");
  expect_redirect_failure(&c, 1, 302);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_redirect_loop_limited) {
  ctx c;
  ctx_init(&c);
  /* /a -> /b -> /a -> /b -> (a 4th redirect, one too many) */
  for (int i = 0; i < 4; i++)
    script_status(&c, 302, "Found", i % 2 ? "Location: /a" : "Location: /b",
                  "Content-Length: 0", NULL);
  script_stream(&c, 1, "data: too far\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/a");
  ck_assert_int_eq(eventsource_set_max_redirects(es, -1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_redirects(NULL, 3),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_redirects(es, 3), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(es, 0), EVENTSOURCE_OK);
  expect_redirect_failure(&c, 4, 302);
  for (int i = 0; i < 4; i++)
    ck_assert_str_eq(req_get(&c, i)->path, i % 2 ? "/b" : "/a");
  ctx_fini(&c);
}
END_TEST

START_TEST(test_redirect_none_allowed) {
  ctx c;
  ctx_init(&c);
  int code = redirect_codes[_i];
  script_status(&c, code, "Moved", "Location: /moved", "Content-Length: 0", NULL);
  script_stream(&c, 1, "data: not followed\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_max_redirects(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(es, 0), EVENTSOURCE_OK);
  expect_redirect_failure(&c, 1, code);
  ctx_fini(&c);
}
END_TEST

static const char post_body[] = "{\"q\":1}\0tail";

/* POST with post_body and a Content-Type. */
static void set_post(eventsource_t *es) {
  ck_assert_int_eq(eventsource_set_method(es, "POST"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_body(es, post_body, sizeof post_body - 1),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(es, "Content-Type", "application/json"),
                   EVENTSOURCE_OK);
}

/* Request i was the POST of set_post() to path. */
static void assert_post(ctx *c, int i, const char *path) {
  const ts_request *r = req_get(c, i);
  ck_assert_str_eq(r->method, "POST");
  ck_assert_str_eq(r->path, path);
  ck_assert_uint_eq(r->body_len, sizeof post_body - 1);
  ck_assert_int_eq(memcmp(r->body, post_body, sizeof post_body - 1), 0);
  ck_assert_str_eq(req_header(c, i, "Content-Type"), "application/json");
  ck_assert_str_eq(req_header(c, i, "Accept"), "text/event-stream");
}

static const int method_keeping_redirects[] = {307, 308};

START_TEST(test_redirect_keeps_post) {
  ctx c;
  ctx_init(&c);
  int code = method_keeping_redirects[_i];
  script_status(&c, code, "Redirect", "Location: /new", "Content-Length: 0", NULL);
  script_stream(&c, 1, "data: ok\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/old");
  set_post(es);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  assert_post(&c, 0, "/old");
  assert_post(&c, 1, "/new");
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ctx_fini(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Reconnection                                                             */
/* ------------------------------------------------------------------------ */

START_TEST(test_retry_field_sets_delay) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "retry: 140\ndata: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, 140);
  ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_set_retry_and_bad_retry_field) {
  ctx c;
  ctx_init(&c);
  /* not a number: ignored */
  script_stream(&c, 0, "retry: 4x\nretry:\nretry: -5\ndata: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, -1), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_retry(NULL, 10), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  set_retry_exact(es, 125);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.reconnect_ms, 125);
  ck_assert_int_eq(e.will_reconnect, 1);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_last_event_id_on_reconnect) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "id: 1\ndata: a\n\n", NULL);
  script_stream(&c, 0, "data: b\n\n", NULL);          /* id kept */
  script_stream(&c, 0, "id:\ndata: c\n\n", NULL);     /* id reset */
  script_stream(&c, 0, "id: 7\n", "data: d\n\n", NULL);
  script_stream(&c, 1, "data: e\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  set_retry_exact(es, 0);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 5);
  ck_assert_int_eq(ts_server_request_count(c.srv), 5);
  ck_assert_ptr_null(req_header(&c, 0, "Last-Event-ID"));
  ck_assert_str_eq(req_header(&c, 1, "Last-Event-ID"), "1");
  ck_assert_str_eq(req_header(&c, 2, "Last-Event-ID"), "1");
  ck_assert_ptr_null(req_header(&c, 3, "Last-Event-ID"));
  ck_assert_str_eq(req_header(&c, 4, "Last-Event-ID"), "7");
  const char *ids[] = {"1", "1", "", "7", "7"};
  for (size_t i = 0; i < 5; i++) {
    rec m = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, i);
    ck_assert_str_eq(m.id, ids[i]);
  }
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 4);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_last_event_id_utf8) {
  /* U+00FC, then U+00E9 U+2713 from the stream: sent as their UTF-8 bytes */
  static const char first[] = "\xC3\xBC";
  static const char second[] = "\xC3\xA9\xE2\x9C\x93";
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "id: \xC3\xA9\xE2\x9C\x93\ndata: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_last_event_id(es, first), EVENTSOURCE_OK);
  set_retry_exact(es, 0);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ck_assert_str_eq(req_header(&c, 0, "Last-Event-ID"), first);
  ck_assert_str_eq(req_header(&c, 1, "Last-Event-ID"), second);
  ck_assert_int_eq(ts_request_header_count(req_get(&c, 1), "Last-Event-ID"), 1);
  ck_assert_str_eq(log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0).id, second);
  ck_assert_str_eq(log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1).id, second);
  ck_assert_str_eq(log_nth(&c, EVENTSOURCE_KIND_OPEN, NULL, 0).id, first);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_partial_event_dropped) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "id: 5\ndata: full\n\n", "id: 6\ndata: partial\n",
                "data: more", NULL);
  script_stream(&c, 1, "data: next\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  set_retry_exact(es, 0);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  rec a = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  rec b = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1);
  assert_data(&a, "full");
  ck_assert_str_eq(a.id, "5");
  assert_data(&b, "next");
  ck_assert_str_eq(b.id, "5");
  ck_assert_str_eq(req_header(&c, 1, "Last-Event-ID"), "5");
  rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_str_eq(e.id, "5");
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 2);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_read_timeout_reconnects) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_read_timeout(es, 300), EVENTSOURCE_OK);
  set_retry_exact(es, 0);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_READ_TIMEOUT);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, EVENTSOURCE_MIN_RECONNECT_MS);
  ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  /* the first connection was dropped by the client */
  ck_assert_int_ge(ts_server_wait_client_closes(c.srv, 1, WAIT_MS), 1);
  ck_assert_int_ge(ts_server_request_count(c.srv), 2);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_post_body_resent) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "data: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/post");
  ck_assert_int_ne(eventsource_set_method(es, "BAD METHOD"), EVENTSOURCE_OK);
  ck_assert_int_ne(eventsource_set_method(es, ""), EVENTSOURCE_OK);
  set_post(es);
  set_retry_exact(es, 0);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  for (int i = 0; i < 2; i++)
    assert_post(&c, i, "/post");
  ctx_fini(&c);
}
END_TEST

START_TEST(test_custom_method_without_body) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: a\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_method(es, "REPORT"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_body(es, "x", 1), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_body(es, NULL, 0), EVENTSOURCE_OK);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  const ts_request *r = req_get(&c, 0);
  ck_assert_str_eq(r->method, "REPORT");
  ck_assert_uint_eq(r->body_len, 0);
  ctx_fini(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Hooks                                                                    */
/* ------------------------------------------------------------------------ */

static int prepare_hook(eventsource_t *es, unsigned attempt, void *ud) {
  ctx *c = ud;
  char v[32];
  snprintf(v, sizeof v, "%u", attempt);
  eventsource_error_t rc = eventsource_set_header(es, "X-Attempt", v);
  pthread_mutex_lock(&c->mu);
  if (c->nprepare < MAX_PREPARE)
    c->prepare_attempts[c->nprepare] = attempt;
  c->nprepare++;
  if (rc != EVENTSOURCE_OK)
    c->counter[7]++;
  int fail = c->prepare_fail;
  pthread_mutex_unlock(&c->mu);
  if (fail == 2) { /* close from the hook instead of failing */
    eventsource_close(es);
    return 0;
  }
  return fail;
}

enum { POLICY_RECORD, POLICY_RECONNECT_STATUS, POLICY_STOP, POLICY_DELAY };

static void policy_hook(eventsource_t *es, eventsource_error_t why,
                        long http_status, unsigned attempt, int *reconnect,
                        long *delay_ms, void *ud) {
  ctx *c = ud;
  pthread_mutex_lock(&c->mu);
  if (c->npolicy < MAX_POLICY) {
    policy_call *p = &c->policy[c->npolicy];
    p->why = why;
    p->status = http_status;
    p->attempt = attempt;
    p->default_reconnect = *reconnect;
    p->default_delay = *delay_ms;
  }
  c->npolicy++;
  switch (c->policy_mode) {
  case POLICY_RECONNECT_STATUS:
    if (why == EVENTSOURCE_ERR_HTTP_STATUS && http_status == 503) {
      *reconnect = 1;
      *delay_ms = c->policy_delay;
    }
    break;
  case POLICY_STOP:
    *reconnect = 0;
    break;
  case POLICY_DELAY:
    *delay_ms = c->policy_delay;
    break;
  default:
    break;
  }
  pthread_mutex_unlock(&c->mu);
}

START_TEST(test_prepare_sets_header_per_attempt) {
  ctx c;
  ctx_init(&c);
  script_status(&c, 503, "Busy", NULL, NULL, NULL);
  script_status(&c, 503, "Busy", NULL, NULL, NULL);
  script_stream(&c, 1, "data: ok\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_prepare_callback(es, prepare_hook, &c),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c),
                   EVENTSOURCE_OK);
  c.policy_mode = POLICY_RECONNECT_STATUS;
  c.policy_delay = 0;
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 3);
  pthread_mutex_lock(&c.mu);
  int np = c.nprepare;
  unsigned at[3];
  memcpy(at, c.prepare_attempts, sizeof at);
  int set_failures = c.counter[7];
  pthread_mutex_unlock(&c.mu);
  ck_assert_int_eq(np, 3);
  ck_assert_int_eq(set_failures, 0);
  for (int i = 0; i < 3; i++) {
    char want[32];
    snprintf(want, sizeof want, "%u", at[i]);
    const char *got = req_header(&c, i, "X-Attempt");
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(ts_request_header_count(req_get(&c, i), "X-Attempt"), 1);
    if (i > 0)
      ck_assert_uint_gt(at[i], at[i - 1]);
  }
  ctx_fini(&c);
}
END_TEST

/* A source whose prepare hook refuses (mode 1) or closes the source (mode 2)
 * before the first attempt, run in the helper thread; the server would
 * stream an event. */
static void run_with_failing_prepare(ctx *c, int mode) {
  ctx_init(c);
  script_stream(c, 1, "data: never\n\n", NULL);
  eventsource_t *es = ctx_new_es(c, "/");
  c->prepare_fail = mode;
  ck_assert_int_eq(eventsource_set_prepare_callback(es, prepare_hook, c),
                   EVENTSOURCE_OK);
  ctx_run(c);
}

START_TEST(test_prepare_failure_closes) {
  ctx c;
  run_with_failing_prepare(&c, 1);
  expect_run_ended(&c, EVENTSOURCE_ERR_CALLBACK);
  ck_assert_int_eq(ts_server_request_count(c.srv), 0);
  rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_CALLBACK);
  ck_assert_int_eq(e.will_reconnect, 0);
  ck_assert_uint_eq(log_size(&c), 1);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_policy_reconnects_on_503) {
  ctx c;
  ctx_init(&c);
  script_status(&c, 503, "Busy", "Retry-After: 1", NULL, NULL);
  script_status(&c, 503, "Busy", NULL, NULL, NULL);
  script_stream(&c, 1, "data: ok\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  c.policy_mode = POLICY_RECONNECT_STATUS;
  c.policy_delay = 15;
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 3);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 2);
  for (size_t i = 0; i < 2; i++) {
    rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, i);
    ck_assert_int_eq(e.error, EVENTSOURCE_ERR_HTTP_STATUS);
    ck_assert_int_eq(e.status, 503);
    ck_assert_int_eq(e.will_reconnect, 1);
    ck_assert_int_eq(e.reconnect_ms, 15);
    ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  }
  pthread_mutex_lock(&c.mu);
  ck_assert_int_eq(c.npolicy, 2);
  for (unsigned i = 0; i < 2; i++) {
    ck_assert_int_eq(c.policy[i].why, EVENTSOURCE_ERR_HTTP_STATUS);
    ck_assert_int_eq(c.policy[i].status, 503);
    ck_assert_uint_eq(c.policy[i].attempt, i + 1);
    ck_assert_int_eq(c.policy[i].default_reconnect, 0);
  }
  pthread_mutex_unlock(&c.mu);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_OPEN);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_policy_stops) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "data: a\n\n", NULL);
  script_stream(&c, 1, "data: never\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c),
                   EVENTSOURCE_OK);
  set_retry_exact(es, 0);
  c.policy_mode = POLICY_STOP;
  ctx_run(&c);
  ck_assert(ctx_wait_run(&c, WAIT_MS));
  /* the policy stopped a connection the spec would have reestablished */
  eventsource_error_t rc = ctx_run_rc(&c);
  ck_assert_msg(rc == EVENTSOURCE_ERR_POLICY, "run returned %s",
                eventsource_error_name(rc));
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF); /* "carries why" */
  ck_assert_int_eq(e.will_reconnect, 0);
  ck_assert_int_eq(e.reconnect_ms, -1);
  ck_assert_int_eq(e.state, EVENTSOURCE_CLOSED);
  pthread_mutex_lock(&c.mu);
  ck_assert_int_eq(c.npolicy, 1);
  ck_assert_int_eq(c.policy[0].why, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(c.policy[0].status, 0);
  ck_assert_uint_eq(c.policy[0].attempt, 1);
  ck_assert_int_eq(c.policy[0].default_reconnect, 1);
  ck_assert_int_eq(c.policy[0].default_delay, EVENTSOURCE_MIN_RECONNECT_MS);
  pthread_mutex_unlock(&c.mu);
  ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(eventsource_run(es), EVENTSOURCE_ERR_STATE);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_policy_changes_delay) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "data: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  c.policy_mode = POLICY_DELAY;
  c.policy_delay = 77;
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, 77);
  pthread_mutex_lock(&c.mu);
  ck_assert_int_eq(c.npolicy, 1);
  ck_assert_int_eq(c.policy[0].why, EVENTSOURCE_ERR_EOF);
  ck_assert_uint_eq(c.policy[0].attempt, 1);
  ck_assert_int_eq(c.policy[0].default_reconnect, 1);
  ck_assert_int_eq(c.policy[0].default_delay, EVENTSOURCE_DEFAULT_RETRY_MS);
  /* EOF after a 200: the status is only for refused responses, 0 here */
  ck_assert_int_eq(c.policy[0].status, 0);
  pthread_mutex_unlock(&c.mu);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_curl_hook_every_attempt) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "data: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_curl_callback(NULL, curl_hook, &c),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  /* removing a hook that was never set is fine */
  ck_assert_int_eq(eventsource_set_curl_callback(es, NULL, NULL), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_prepare_callback(es, prepare_hook, &c),
                   EVENTSOURCE_OK);
  ctx_curl_hook(&c, CURL_USER_AGENT);
  set_retry_exact(es, 0);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  /* once per attempt, after the prepare callback of the same attempt */
  ck_assert_int_eq(ctx_get(&c, &c.ncurl), 2);
  ck_assert_int_eq(ctx_get(&c, &c.nprepare), 2);
  ck_assert_int_eq(ctx_get(&c, &c.curl_nprepare[0]), 1);
  ck_assert_int_eq(ctx_get(&c, &c.curl_nprepare[1]), 2);
  ck_assert_int_eq(ctx_get(&c, &c.curl_bad), 0);
  for (int i = 0; i < 2; i++) {
    ck_assert_str_eq(req_header(&c, i, "User-Agent"), "es-test/1");
    ck_assert_int_eq(ts_request_header_count(req_get(&c, i), "User-Agent"), 1);
    ck_assert_ptr_nonnull(req_header(&c, i, "X-Attempt"));
    /* what the library set itself is still there */
    ck_assert_str_eq(req_header(&c, i, "Accept"), "text/event-stream");
  }
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  ck_assert_int_eq(log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).error,
                   EVENTSOURCE_ERR_EOF);
  ctx_fini(&c);
}
END_TEST

/* A hook that fails, and one that closes the source: nothing connects. */
static const struct curl_stop {
  int mode;
  eventsource_error_t want_rc;
  size_t want_log;
} curl_stops[] = {
    {CURL_FAIL, EVENTSOURCE_ERR_CURL, 1},
    {CURL_CLOSE, EVENTSOURCE_OK, 0},
};

START_TEST(test_curl_hook_stops) {
  const struct curl_stop *t = &curl_stops[_i];
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: never\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ctx_curl_hook(&c, t->mode);
  ctx_run(&c);
  expect_run_ended(&c, t->want_rc);
  ck_assert_int_eq(ctx_get(&c, &c.ncurl), 1);
  ck_assert_int_eq(ctx_get(&c, &c.curl_bad), 0);
  /* run has returned: no connection can be made any more */
  ck_assert_int_eq(ts_server_request_count(c.srv), 0);
  ck_assert_uint_eq(log_size(&c), t->want_log);
  if (t->want_log) {
    rec e = log_at(&c, 0);
    ck_assert_int_eq(e.kind, EVENTSOURCE_KIND_ERROR);
    ck_assert_int_eq(e.error, EVENTSOURCE_ERR_CURL);
    ck_assert_int_eq(e.curl_code, CURLE_BAD_FUNCTION_ARGUMENT);
    ck_assert_int_eq(e.status, 0);
    ck_assert_int_eq(e.will_reconnect, 0);
    ck_assert_int_eq(e.reconnect_ms, -1);
    ck_assert_int_eq(e.state, EVENTSOURCE_CLOSED);
    ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_ERR_CURL);
  } else {
    ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_OK);
  }
  ck_assert_int_eq(eventsource_run(es), EVENTSOURCE_ERR_STATE);
  ctx_fini(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Headers and construction                                                 */
/* ------------------------------------------------------------------------ */

START_TEST(test_header_validation_and_semantics) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: a\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  /* refused */
  ck_assert_int_eq(eventsource_set_header(es, "X-A\r", "v"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X\nA", "v"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X-B", "a\r\nX-Injected: 1"),
                   EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X-B", "a\n"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "X-B", "\r"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_add_header(es, "X-C", "v\r\n"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_add_header(es, "X-C\n", "v"), EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_set_header(es, "Last-Event-ID", "1"),
                   EVENTSOURCE_ERR_HEADER);
  ck_assert_int_eq(eventsource_add_header(es, "last-event-id", "1"),
                   EVENTSOURCE_ERR_HEADER);
  ck_assert_int_ne(eventsource_set_header(es, "Bad Name", "v"), EVENTSOURCE_OK);
  ck_assert_int_ne(eventsource_set_header(es, "Bad:Name", "v"), EVENTSOURCE_OK);
  ck_assert_int_ne(eventsource_set_header(es, "", "v"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(NULL, "X", "v"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_header(es, NULL, "v"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_remove_header(es, "X-None"), EVENTSOURCE_ERR_NOT_FOUND);
  ck_assert_int_eq(eventsource_remove_header(NULL, "X"),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  /* set replaces, case-insensitively */
  ck_assert_int_eq(eventsource_set_header(es, "X-One", "1"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(es, "x-one", "2"), EVENTSOURCE_OK);
  /* add appends */
  ck_assert_int_eq(eventsource_add_header(es, "X-Multi", "a"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_header(es, "X-Multi", "b"), EVENTSOURCE_OK);
  /* set after add replaces all */
  ck_assert_int_eq(eventsource_add_header(es, "X-Mix", "1"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_header(es, "X-Mix", "2"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(es, "X-MIX", "3"), EVENTSOURCE_OK);
  /* remove removes all */
  ck_assert_int_eq(eventsource_add_header(es, "X-Gone", "g1"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_header(es, "X-Gone", "g2"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_remove_header(es, "x-gone"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_remove_header(es, "x-gone"), EVENTSOURCE_ERR_NOT_FOUND);
  /* the defaults may be replaced */
  ck_assert_int_eq(eventsource_set_header(es, "Accept", "text/event-stream, */*;q=0.1"),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(es, "X-Empty", ""), EVENTSOURCE_OK);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  const ts_request *r = req_get(&c, 0);
  ck_assert_int_eq(ts_request_header_count(r, "X-One"), 1);
  ck_assert_str_eq(req_header(&c, 0, "X-One"), "2");
  r = req_get(&c, 0);
  ck_assert_int_eq(ts_request_header_count(r, "X-Multi"), 2);
  char v[64];
  ck_assert(ts_request_header_nth(r, "X-Multi", 0, v, sizeof v));
  ck_assert_str_eq(v, "a");
  ck_assert(ts_request_header_nth(r, "X-Multi", 1, v, sizeof v));
  ck_assert_str_eq(v, "b");
  ck_assert_int_eq(ts_request_header_count(r, "X-Mix"), 1);
  ck_assert(ts_request_header(r, "X-Mix", v, sizeof v));
  ck_assert_str_eq(v, "3");
  ck_assert_int_eq(ts_request_header_count(r, "X-Gone"), 0);
  ck_assert_int_eq(ts_request_header_count(r, "Accept"), 1);
  ck_assert(ts_request_header(r, "Accept", v, sizeof v));
  ck_assert_str_eq(v, "text/event-stream, */*;q=0.1");
  ck_assert_int_eq(ts_request_header_count(r, "Cache-Control"), 1);
  ck_assert_int_eq(ts_request_header_count(r, "X-Empty"), 1);
  ck_assert_int_eq(ts_request_header_count(r, "X-Injected"), 0);
  ck_assert_int_eq(ts_request_header_count(r, "X-A"), 0);
  ck_assert_int_eq(ts_request_header_count(r, "X-B"), 0);
  ck_assert_int_eq(ts_request_header_count(r, "X-C"), 0);
  ck_assert_int_eq(ts_request_header_count(r, "Last-Event-ID"), 0);
  ctx_fini(&c);
}
END_TEST


/* ------------------------------------------------------------------------ */
/* restart, close, free                                                     */
/* ------------------------------------------------------------------------ */

START_TEST(test_restart_reconnects_silently) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "id: 7\ndata: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  /* a long delay: a restart that waited for it would miss the deadline */
  set_retry_exact(es, 30000);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_OK); /* any thread */
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 2);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ck_assert_str_eq(req_header(&c, 1, "Last-Event-ID"), "7");
  ck_assert_int_ge(ts_server_wait_client_closes(c.srv, 1, WAIT_MS), 1);
  rec b = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1);
  assert_data(&b, "b");
  ck_assert_str_eq(b.id, "7");
  eventsource_close(es);
  ck_assert(ctx_wait_run(&c, WAIT_MS));
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_ERR_CLOSED);
  ctx_fini(&c);
}
END_TEST

static void on_message_close(eventsource_t *es, const eventsource_event_t *ev,
                             void *ud) {
  ctx *c = ud;
  counter_inc(c, 0);
  eventsource_close(es);
  eventsource_close(es); /* idempotent */
  pthread_mutex_lock(&c->mu);
  c->seen_state = eventsource_ready_state(es);
  pthread_mutex_unlock(&c->mu);
}

START_TEST(test_close_from_listener) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: 1\n\ndata: 2\n\ndata: 3\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_message_close, &c, NULL),
                   EVENTSOURCE_OK);
  ctx_run(&c);
  ck_assert(ctx_wait_run(&c, WAIT_MS));
  ck_assert_int_eq(ctx_run_rc(&c), EVENTSOURCE_OK);
  ck_assert_int_eq(counter_get(&c, 0), 1);
  ck_assert_int_eq(c.seen_state, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  /* no listener after close: not even the any-listener for the same event */
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 0);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ck_assert_int_eq(ts_server_wait_client_closes(c.srv, 1, WAIT_MS), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_close_from_other_thread_while_silent) {
  ctx c;
  ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  ts_script_hold(sc);
  eventsource_t *es = ctx_new_es(&c, "/");
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_OPEN, 1);
  long t0 = tu_now_ms();
  eventsource_close(es);
  size_t after_close = log_size(&c);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_msg(ctx_wait_run(&c, prompt_ms()), "run did not return after close");
  ck_assert_int_lt(tu_now_ms() - t0, prompt_ms());
  ck_assert_int_eq(ctx_run_rc(&c), EVENTSOURCE_OK);
  ck_assert_uint_eq(log_size(&c), after_close);
  ck_assert_uint_eq(log_size(&c), 1);
  ck_assert_int_eq(ts_server_wait_client_closes(c.srv, 1, WAIT_MS), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_close_during_reconnect_wait) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "data: a\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  set_retry_exact(es, 30000);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, 30000);
  long t0 = tu_now_ms();
  eventsource_close(es);
  size_t after_close = log_size(&c);
  ck_assert_msg(ctx_wait_run(&c, prompt_ms()), "run did not return after close");
  ck_assert_int_lt(tu_now_ms() - t0, prompt_ms());
  ck_assert_int_eq(ctx_run_rc(&c), EVENTSOURCE_OK);
  ck_assert_uint_eq(log_size(&c), after_close);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ctx_fini(&c);
}
END_TEST

static void on_message_free(eventsource_t *es, const eventsource_event_t *ev,
                            void *ud) {
  ctx *c = ud;
  eventsource_free(es);
  /* es stays valid until this listener returns */
  eventsource_ready_state_t st = eventsource_ready_state(es);
  pthread_mutex_lock(&c->mu);
  c->seen_state = st;
  c->es_freed = 1;
  c->counter[0]++;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

START_TEST(test_free_from_listener_run) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: 1\n\ndata: 2\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_message_free, &c, NULL),
                   EVENTSOURCE_OK);
  ctx_run(&c);
  ck_assert(ctx_wait_run(&c, WAIT_MS)); /* es is gone: do not touch it */
  ck_assert_int_eq(counter_get(&c, 0), 1);
  ck_assert_int_eq(c.seen_state, EVENTSOURCE_CLOSED);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 0);
  ck_assert_int_eq(ts_server_wait_client_closes(c.srv, 1, WAIT_MS), 1);
  ctx_fini(&c);
}
END_TEST

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

/* Waits (observing, with a deadline) until the process has at most n
 * threads. */
static int wait_threads_at_most(int n, long timeout_ms) {
  long deadline = tu_now_ms() + timeout_ms;
  int k;
  while ((k = count_entries("/proc/self/task")) > n && tu_now_ms() < deadline) {
    struct timespec ts = {0, 2 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return k;
}

START_TEST(test_free_from_listener_start) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: 1\n\ndata: 2\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_message_free, &c, NULL),
                   EVENTSOURCE_OK);
  int threads = count_entries("/proc/self/task");
  ctx_start(&c);
  ck_assert_int_eq(counter_wait(&c, 0, 1, WAIT_MS), 1);
  ck_assert_int_eq(ts_server_wait_client_closes(c.srv, 1, WAIT_MS), 1);
  /* the library's thread ends by itself (nobody can join it) */
  ck_assert_int_le(wait_threads_at_most(threads, WAIT_MS), threads);
  ck_assert_int_eq(counter_get(&c, 0), 1);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 0);
  ctx_fini(&c);
}
END_TEST

static void on_l_a(eventsource_t *es, const eventsource_event_t *ev, void *ud);
static void on_l_b(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  counter_inc(ud, 1);
}
static void on_l_c(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  counter_inc(ud, 2);
}
static void on_l_d(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  ctx *c = ud;
  counter_inc(c, 3);
  if (eventsource_remove_listener(es, c->ids[3]) != EVENTSOURCE_OK)
    counter_inc(c, 6);
}
static void on_l_a(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  ctx *c = ud;
  counter_inc(c, 0);
  if (counter_get(c, 0) == 1) {
    if (eventsource_remove_listener(es, c->ids[1]) != EVENTSOURCE_OK)
      counter_inc(c, 6);
    if (eventsource_remove_listener(es, c->ids[1]) != EVENTSOURCE_ERR_NOT_FOUND)
      counter_inc(c, 6);
    if (eventsource_add_listener(es, "message", on_l_c, c, &c->ids[2]) !=
        EVENTSOURCE_OK)
      counter_inc(c, 6);
  }
}

START_TEST(test_listeners_changed_in_listener) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: 1\n\n", "data: 2\n\n", "data: 3\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_l_a, &c, &c.ids[0]),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_l_b, &c, &c.ids[1]),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_l_d, &c, &c.ids[3]),
                   EVENTSOURCE_OK);
  ck_assert_uint_ne(c.ids[0], 0);
  ck_assert_uint_ne(c.ids[0], c.ids[1]);
  ctx_run(&c);
  /* the any-listener runs last: when it has seen 3 messages, all ran */
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 3);
  ck_assert_int_eq(counter_get(&c, 0), 3); /* A */
  ck_assert_int_eq(counter_get(&c, 1), 0); /* B, removed before its turn */
  ck_assert_int_eq(counter_get(&c, 2), 2); /* C, added during event 1 */
  ck_assert_int_eq(counter_get(&c, 3), 1); /* D, removed itself */
  ck_assert_int_eq(counter_get(&c, 6), 0); /* no API call failed */
  ctx_fini(&c);
}
END_TEST

START_TEST(test_connection_refused) {
  ctx c;
  ctx_init(&c);
  /* a port where nothing listens */
  ts_server *gone = ts_server_start();
  ck_assert_ptr_nonnull(gone);
  char url[1300];
  snprintf(url, sizeof url, "%s", ts_server_url(gone, "/"));
  ts_server_stop(gone);
  eventsource_t *es = ctx_new_es_url(&c, url);
  set_retry_exact(es, 120);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 2);
  rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_NETWORK);
  ck_assert_int_ne(e.curl_code, 0);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, 120);
  ck_assert_int_eq(e.status, 0);
  ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  rec e2 = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 1);
  ck_assert_int_eq(e2.error, EVENTSOURCE_ERR_NETWORK);
  ck_assert_int_ne(e2.curl_code, 0);
  ck_assert_int_eq(e2.will_reconnect, 1);
  ck_assert_int_eq(e2.reconnect_ms, 240); /* the second failure in a row: doubled */
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 0);
  ctx_fini(&c);
}
END_TEST

/* A loopback address that never answers a connection attempt: a listening
 * socket with a backlog of 0 whose one accept-queue slot is taken by a
 * connection of ours that is never accepted. Linux drops every further SYN
 * while the accept queue is full, so a client's connect() stays pending
 * (SYN retransmitted after 1 s, 3 s, ...) until its own timeout. Returns the
 * listening socket and its port; *filler is our connection. */
static int silent_listener(int *port, int *filler) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(l, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(l, 0), 0);
  socklen_t al = sizeof a;
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &al), 0);
  *port = ntohs(a.sin_port);
  *filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(*filler, 0);
  ck_assert_int_eq(connect(*filler, (struct sockaddr *)&a, sizeof a), 0);
  /* readable = the filler is in the accept queue, which is now full */
  struct pollfd p = {l, POLLIN, 0};
  ck_assert_int_eq(poll(&p, 1, WAIT_MS), 1);
  return l;
}

START_TEST(test_connect_timeout) {
  ctx c;
  ctx_init(&c);
  int port, filler;
  int l = silent_listener(&port, &filler);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  eventsource_t *es = ctx_new_es_url(&c, url);
  /* the argument: 0 (libcurl's default) up to 24 h */
  ck_assert_int_eq(eventsource_set_connect_timeout(es, -1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_connect_timeout(es, 24L * 3600 * 1000 + 1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_connect_timeout(NULL, 100),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_connect_timeout(es, 24L * 3600 * 1000),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_connect_timeout(es, 0), EVENTSOURCE_OK);
  /* 200 ms: with the default (30 s) the wait below would fail */
  ck_assert_int_eq(eventsource_set_connect_timeout(es, 200), EVENTSOURCE_OK);
  set_retry_exact(es, 30000);
  long t0 = tu_now_ms();
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  long took = tu_now_ms() - t0;
  rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_NETWORK); /* "counts as a network error" */
  ck_assert_int_eq(e.curl_code, CURLE_OPERATION_TIMEDOUT);
  ck_assert_int_eq(e.status, 0);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, 30000);
  ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  ck_assert_msg(took >= 190, "connect timeout after %ld ms, set to 200", took);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 0);
  ctx_fini(&c);
  close(filler);
  close(l);
}
END_TEST

/* Backoff, jitter off: three connections in a row end, then one stays. The
 * reconnection time is the floor, EVENTSOURCE_MIN_RECONNECT_MS. */
#define B EVENTSOURCE_MIN_RECONNECT_MS
static const struct backoff_case {
  int opens;     /* 1: each opens (200) before it ends (EOF);
                    0: each fails before opening (no response: NETWORK) */
  int events;    /* with opens: 1 when each delivers an event, 0 a comment */
  long reset_ms; /* eventsource_set_backoff_reset(), -1: the default (60 s) */
  long want[3];  /* the reconnect_ms of the three error notifications */
  unsigned attempt[3];
} backoff_cases[] = {
    {0, 0, -1, {B, 2 * B, 4 * B}, {1, 2, 3}},
    /* only a connection that opened can reset the counter */
    {0, 0, 0, {B, 2 * B, 4 * B}, {1, 2, 3}},
    /* opened, but no event and less than the reset time: still failures */
    {1, 0, -1, {B, 2 * B, 4 * B}, {1, 2, 3}},
    /* opened and delivered an event, then ended: a success, no growth */
    {1, 1, -1, {B, B, B}, {1, 1, 1}},
    /* a reset time of 0: every connection that opened resets it */
    {1, 0, 0, {B, B, B}, {1, 1, 1}},
};
#undef B

START_TEST(test_backoff) {
  const struct backoff_case *t = &backoff_cases[_i];
  ctx c;
  ctx_init(&c);
  for (int i = 0; i < 3; i++) {
    if (t->opens) {
      script_stream(&c, 0, t->events ? "data: x\n\n" : ":no event\n\n", NULL);
    } else {
      ts_script *sc = ts_server_add_script(c.srv);
      ts_script_close(sc); /* the request is read, nothing is answered */
    }
  }
  script_stream(&c, 1, "data: last\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, EVENTSOURCE_MIN_RECONNECT_MS),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_max_retry(es, 10000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_backoff_reset(es, -1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  if (t->reset_ms >= 0)
    ck_assert_int_eq(eventsource_set_backoff_reset(es, t->reset_ms), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c),
                   EVENTSOURCE_OK); /* POLICY_RECORD: records, changes nothing */
  ctx_run(&c);
  size_t msgs = (size_t)(3 * t->events + 1);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, msgs);
  rec last = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, msgs - 1);
  assert_data(&last, "last");
  ck_assert_int_eq(ts_server_request_count(c.srv), 4);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), (size_t)(3 * t->opens + 1));
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 3);
  for (size_t i = 0; i < 3; i++) {
    rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, i);
    ck_assert_int_eq(e.error, t->opens ? EVENTSOURCE_ERR_EOF : EVENTSOURCE_ERR_NETWORK);
    ck_assert_int_eq(e.curl_code, t->opens ? 0 : CURLE_GOT_NOTHING);
    ck_assert_int_eq(e.status, 0);
    ck_assert_int_eq(e.will_reconnect, 1);
    ck_assert_msg(e.reconnect_ms == t->want[i], "error %zu: reconnect_ms %ld, want %ld",
                  i, e.reconnect_ms, t->want[i]);
    ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  }
  pthread_mutex_lock(&c.mu);
  ck_assert_int_eq(c.npolicy, 3);
  for (int i = 0; i < 3; i++) {
    ck_assert_uint_eq(c.policy[i].attempt, t->attempt[i]);
    ck_assert_int_eq(c.policy[i].default_reconnect, 1);
    ck_assert_int_eq(c.policy[i].default_delay, t->want[i]);
    ck_assert_int_eq(c.policy[i].status, 0);
  }
  pthread_mutex_unlock(&c.mu);
  ctx_fini(&c);
}
END_TEST

static int count_fds(void) { return count_entries("/proc/self/fd"); }

static void on_message_count_close(eventsource_t *es,
                                   const eventsource_event_t *ev, void *ud) {
  ctx *c = ud;
  pthread_mutex_lock(&c->mu);
  int n = ++c->counter[0];
  int limit = c->close_after;
  pthread_mutex_unlock(&c->mu);
  if (n >= limit)
    eventsource_close(es);
}

/* A policy that reconnects at once: below the library's floor, which only
 * a policy may do (keeps a thousand reconnections fast). */
static void policy_no_delay(eventsource_t *es, eventsource_error_t why, long status,
                            unsigned attempt, int *reconnect, long *delay_ms,
                            void *ud) {
  *delay_ms = 0;
}

/* One source through `n` connections, closed from a listener at the n-th
 * message. */
static void reconnect_many(ctx *c, int n) {
  ts_script *sc = ts_server_add_script(c->srv);
  static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             "Connection: close\r\n\r\ndata: x\n\n";
  ts_script_write(sc, resp, sizeof resp - 1);
  eventsource_t *es = ctx_new_es(c, "/");
  set_retry_exact(es, 0);
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_no_delay, NULL),
                   EVENTSOURCE_OK);
  c->close_after = n;
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_message_count_close,
                                            c, NULL),
                   EVENTSOURCE_OK);
  ctx_run(c);
  ck_assert(ctx_wait_run(c, 120000));
  ck_assert_int_eq(ctx_run_rc(c), EVENTSOURCE_OK);
  ck_assert_int_eq(counter_get(c, 0), n);
  ck_assert_int_eq(ts_server_request_count(c->srv), n);
  ck_assert_uint_eq(log_count(c, EVENTSOURCE_KIND_OPEN, NULL), (size_t)n);
  ck_assert_uint_eq(log_count(c, EVENTSOURCE_KIND_ERROR, NULL), (size_t)n - 1);
  ck_assert_uint_eq(log_count(c, EVENTSOURCE_KIND_MESSAGE, NULL), (size_t)n - 1);
}

START_TEST(test_many_reconnections_no_fd_leak) {
  int n = tu_small_scale() ? 100 : 1000;
  /* warm up whatever libcurl initialises once */
  ctx w;
  ctx_init(&w);
  reconnect_many(&w, 2);
  eventsource_free(w.es);
  w.es = NULL;
  ctx_fini(&w);

  int fds_before = count_fds();
  ctx c;
  ctx_init(&c);
  reconnect_many(&c, n);
  for (size_t i = 0; i < (size_t)n - 1; i++) {
    rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, i);
    ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
    ck_assert_int_eq(e.will_reconnect, 1);
    ck_assert_int_eq(e.reconnect_ms, 0);
  }
  eventsource_free(c.es);
  c.es = NULL;
  ctx_fini(&c);
  /* <=: under CK_FORK=no a descriptor of an earlier test may close meanwhile */
  int fds_after = count_fds();
  ck_assert_msg(fds_after <= fds_before, "%d descriptors before, %d after",
                fds_before, fds_after);
}
END_TEST

static void on_error_type(eventsource_t *es, const eventsource_event_t *ev,
                          void *ud) {
  log_push(ud, es, ev, "error-listener");
}
static void on_open_type(eventsource_t *es, const eventsource_event_t *ev,
                         void *ud) {
  log_push(ud, es, ev, "open-listener");
}

START_TEST(test_server_events_named_error_and_open) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "event: error\ndata: boom\n\n",
                "event: open\ndata: hi\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_listener(es, "error", on_error_type, &c, NULL),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_listener(es, "open", on_open_type, &c, NULL),
                   EVENTSOURCE_OK);
  ctx_run(&c);
  /* each server event reaches its type listener and the any-listener */
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 4);
  struct {
    const char *via;
    eventsource_kind_t kind;
    const char *type, *data;
  } want[] = {
      {"open-listener", EVENTSOURCE_KIND_OPEN, "open", ""},
      {"any", EVENTSOURCE_KIND_OPEN, "open", ""},
      {"error-listener", EVENTSOURCE_KIND_MESSAGE, "error", "boom"},
      {"any", EVENTSOURCE_KIND_MESSAGE, "error", "boom"},
      {"open-listener", EVENTSOURCE_KIND_MESSAGE, "open", "hi"},
      {"any", EVENTSOURCE_KIND_MESSAGE, "open", "hi"},
  };
  ck_assert_uint_eq(log_size(&c), 6);
  for (size_t i = 0; i < 6; i++) {
    rec r = log_at(&c, i);
    ck_assert_str_eq(r.via, want[i].via);
    ck_assert_int_eq(r.kind, want[i].kind);
    ck_assert_str_eq(r.type, want[i].type);
    assert_data(&r, want[i].data);
    ck_assert_int_eq(r.error, EVENTSOURCE_OK);
    ck_assert_int_eq(r.state, EVENTSOURCE_OPEN);
  }
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_OPEN);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_too_large_event_dropped) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: small\n\n",
                "data: this line is far too long for the limit\n\n",
                "data: ok\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_max_event(es, 16), EVENTSOURCE_OK);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  rec a = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  rec b = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1);
  assert_data(&a, "small");
  assert_data(&b, "ok");
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  rec e = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_TOO_LARGE);
  ck_assert_int_eq(e.will_reconnect, 0);
  ck_assert_int_eq(e.state, EVENTSOURCE_OPEN);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ctx_fini(&c);
}
END_TEST


START_TEST(test_close_from_prepare) {
  ctx c;
  run_with_failing_prepare(&c, 2);
  expect_run_ended(&c, EVENTSOURCE_OK);
  ck_assert_uint_eq(log_size(&c), 0);
  /* nothing connected (a connection may have been opened and dropped at
   * most, but no request completed after the close) */
  ck_assert_int_eq(ts_server_request_count(c.srv), 0);
  ctx_fini(&c);
}
END_TEST

/* Counter 0: calls; 4: the listener is inside; 5: the test let it go. */
static void on_message_block(eventsource_t *es, const eventsource_event_t *ev,
                             void *ud) {
  ctx *c = ud;
  struct timespec dl;
  tu_deadline_in(&dl, WAIT_MS);
  pthread_mutex_lock(&c->mu);
  c->counter[0]++;
  c->counter[4] = 1;
  pthread_cond_broadcast(&c->cv);
  while (!c->counter[5] && pthread_cond_timedwait(&c->cv, &c->mu, &dl) == 0) {
  }
  pthread_mutex_unlock(&c->mu);
}

struct closer {
  ctx *c;
  eventsource_t *es;
  int done;
  size_t log_at_return;
  int calls_at_return;
};

static void *closer_main(void *arg) {
  struct closer *cl = arg;
  eventsource_close(cl->es);
  size_t n = log_size(cl->c);
  int calls = counter_get(cl->c, 0);
  pthread_mutex_lock(&cl->c->mu);
  cl->log_at_return = n;
  cl->calls_at_return = calls;
  cl->done = 1;
  pthread_cond_broadcast(&cl->c->cv);
  pthread_mutex_unlock(&cl->c->mu);
  return NULL;
}

static int closer_wait(struct closer *cl, long timeout_ms) {
  struct timespec dl;
  tu_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&cl->c->mu);
  while (!cl->done && pthread_cond_timedwait(&cl->c->cv, &cl->c->mu, &dl) == 0) {
  }
  int d = cl->done;
  pthread_mutex_unlock(&cl->c->mu);
  return d;
}

START_TEST(test_close_waits_for_running_listener) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: 1\n\ndata: 2\n\n", "data: 3\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_message_block, &c, NULL),
                   EVENTSOURCE_OK);
  ctx_run(&c);
  ck_assert_int_eq(counter_wait(&c, 4, 1, WAIT_MS), 1);
  struct closer cl = {&c, es, 0, 0, 0};
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, closer_main, &cl), 0);
  /* close() from another thread waits for the running listener (a broken
   * implementation is caught here; a correct one always passes) */
  ck_assert_int_eq(closer_wait(&cl, 150), 0);
  pthread_mutex_lock(&c.mu);
  c.counter[5] = 1;
  pthread_cond_broadcast(&c.cv);
  pthread_mutex_unlock(&c.mu);
  ck_assert(closer_wait(&cl, WAIT_MS));
  pthread_join(th, NULL);
  ck_assert(ctx_wait_run(&c, WAIT_MS));
  ck_assert_int_eq(ctx_run_rc(&c), EVENTSOURCE_OK);
  ck_assert_int_eq(cl.calls_at_return, 1);
  ck_assert_int_eq(counter_get(&c, 0), 1);
  ck_assert_uint_eq(log_size(&c), cl.log_at_return);
  /* the any-listener, after the blocked one, was not called for event 1 */
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 0);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_close_races_event_flood) {
  /* many events in flight; close from another thread after k of them: no
   * notification once close() returned */
  static const int after[] = {1, 7, 50, 300};
  size_t len = 0, cap = 40000 * 16;
  char *flood = malloc(cap);
  ck_assert_ptr_nonnull(flood);
  for (int i = 0; i < 40000; i++)
    len += (size_t)snprintf(flood + len, cap - len, "data: %d\n\n", i);
  for (size_t k = 0; k < sizeof after / sizeof after[0]; k++) {
    ctx c;
    ctx_init(&c);
    ts_script *sc = ts_server_add_script(c.srv);
    ts_script_headers(sc);
    ts_script_write(sc, flood, len);
    ts_script_hold(sc);
    eventsource_t *es = ctx_new_es(&c, "/");
    ctx_run(&c);
    ck_assert_uint_ge(log_wait(&c, EVENTSOURCE_KIND_MESSAGE, NULL,
                               (size_t)after[k], WAIT_MS),
                      (size_t)after[k]);
    eventsource_close(es);
    size_t at_close = log_size(&c);
    ck_assert(ctx_wait_run(&c, WAIT_MS));
    ck_assert_uint_eq(log_size(&c), at_close);
    /* and the events that were delivered came in order */
    size_t nm = log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL);
    for (size_t i = 0; i < nm; i += 1 + nm / 50) {
      rec r = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, i);
      char want[32];
      snprintf(want, sizeof want, "%zu", i);
      assert_data(&r, want);
    }
    ctx_fini(&c);
  }
  free(flood);
}
END_TEST

static void on_message_restart_once(eventsource_t *es,
                                    const eventsource_event_t *ev, void *ud) {
  ctx *c = ud;
  if (counter_get(c, 0) == 0 &&
      eventsource_restart(es) != EVENTSOURCE_OK)
    counter_inc(c, 6);
  counter_inc(c, 0);
}

START_TEST(test_restart_from_listener) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "id: 3\ndata: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, 30000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_message_restart_once,
                                            &c, NULL),
                   EVENTSOURCE_OK);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_int_eq(counter_get(&c, 6), 0);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 2);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ck_assert_str_eq(req_header(&c, 1, "Last-Event-ID"), "3");
  ck_assert_int_ge(ts_server_wait_client_closes(c.srv, 1, WAIT_MS), 1);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_restart_during_reconnect_wait) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "data: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  set_retry_exact(es, 30000);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  ck_assert_int_eq(log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).reconnect_ms, 30000);
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_OK);
  /* well before the 30 s delay */
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_run_and_start_state_errors) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: a\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ctx_start(&c);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_ERR_STATE);
  ck_assert_int_eq(eventsource_run(es), EVENTSOURCE_ERR_STATE);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_ERR_STATE);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  eventsource_close(es);
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_ERR_STATE);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_chunked_response) {
  ctx c;
  ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_writes(sc, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n");
  ts_script_writes(sc, "7\r\ndata: a\r\n");
  ts_script_writes(sc, "3\r\nbc\n\r\n");
  ts_script_writes(sc, "1\r\n\n\r\n");
  ts_script_writes(sc, "9\r\ndata: d\n\n\r\n0\r\n\r\n");
  ts_script_hold(sc); /* the body ended: EOF for the client */
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, 30000), EVENTSOURCE_OK);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  rec a = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  rec d = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1);
  assert_data(&a, "abc");
  assert_data(&d, "d");
  /* the end of the chunked body is the end of the stream */
  log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  ck_assert_int_eq(log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).error,
                   EVENTSOURCE_ERR_EOF);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_utf8_split_and_invalid) {
  ctx c;
  ctx_init(&c);
  /* BOM, then 2-, 3- and 4-byte sequences, then an invalid byte */
  static const char body[] = "\xEF\xBB\xBF"
                             "data: \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\n\n"
                             "data: a\xFF"
                             "b\n\n";
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  for (size_t i = 0; i < sizeof body - 1; i++)
    ts_script_write(sc, body + i, 1);
  ts_script_hold(sc);
  ctx_new_es(&c, "/");
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  rec a = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  rec b = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1);
  ck_assert_str_eq(a.type, "message"); /* the BOM did not spoil the field name */
  assert_data(&a, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  assert_data(&b, "a\xEF\xBF\xBD"
                  "b");
  ctx_fini(&c);
}
END_TEST

START_TEST(test_large_event) {
  ctx c;
  ctx_init(&c);
  size_t n = 1024 * 1024;
  char *big = malloc(n + 16);
  ck_assert_ptr_nonnull(big);
  memcpy(big, "data: ", 6);
  for (size_t i = 0; i < n; i++)
    big[6 + i] = (char)('a' + i % 26);
  memcpy(big + 6 + n, "\n\n", 2);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  ts_script_write(sc, big, n + 8);
  ts_script_hold(sc);
  ctx_new_es(&c, "/");
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  rec r = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  ck_assert_uint_eq(r.data_len, n);
  ck_assert_int_eq(memcmp(r.data, big + 6, n), 0);
  free(big);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_retry_capped_by_max_retry) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 0, "retry: 100000\ndata: a\n\n", NULL);
  script_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_max_retry(es, 150), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_int_eq(log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).reconnect_ms, 150);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_content_type_with_space_before_params) {
  ctx c;
  ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {"Content-Type:   text/event-stream ; charset=utf-8  ", NULL};
  ts_script_status(sc, 200, "OK", hl);
  ts_script_writes(sc, "data: ok\n\n");
  ts_script_hold(sc);
  ctx_new_es(&c, "/");
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ctx_fini(&c);
}
END_TEST


START_TEST(test_redirect_then_bad_type) {
  /* the type of the final response counts, not that of the redirect */
  ctx c;
  ctx_init(&c);
  script_status(&c, 302, "Found", "Location: /next",
                "Content-Type: text/event-stream", NULL);
  script_status(&c, 200, "OK", "Content-Type: text/plain", NULL, "data: x\n\n");
  eventsource_t *es = ctx_new_es(&c, "/");
  ctx_run(&c);
  ck_assert(ctx_wait_run(&c, WAIT_MS));
  ck_assert_int_eq(ctx_run_rc(&c), EVENTSOURCE_ERR_CONTENT_TYPE);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ck_assert_uint_eq(log_size(&c), 1);
  ck_assert_int_eq(log_at(&c, 0).error, EVENTSOURCE_ERR_CONTENT_TYPE);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_interim_100_response) {
  ctx c;
  ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_writes(sc, "HTTP/1.1 100 Continue\r\n\r\n");
  ts_script_headers(sc);
  ts_script_writes(sc, "data: ok\n\n");
  ts_script_hold(sc);
  ctx_new_es(&c, "/");
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_comments_keep_read_timeout_away) {
  /* gaps of a tenth of the read timeout, twice the timeout in all; slower
   * under valgrind (the margin, not the ratio, is what it needs) */
  long timeout = tu_small_scale() ? 2000 : 500;
  int gaps = 20, gap = (int)(timeout / 10);
  ctx c;
  ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  for (int i = 0; i < gaps; i++) {
    ts_script_writes(sc, ":\n");
    ts_script_sleep(sc, gap);
  }
  ts_script_writes(sc, "data: done\n\n");
  ts_script_hold(sc);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_comment_listener(es, on_comment, &c, NULL),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_read_timeout(es, timeout), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(es, 0), EVENTSOURCE_OK);
  long t0 = tu_now_ms();
  ctx_run(&c);
  log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  /* the server slept through every gap first: twice the timeout at least */
  long took = tu_now_ms() - t0;
  ck_assert_msg(took >= (long)gaps * gap && took > timeout,
                "%ld ms of comments, timeout %ld", took, timeout);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_COMMENT, NULL), (size_t)gaps);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_restart_while_connecting) {
  ctx c;
  ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_gate(sc, 1); /* no answer until the test ends */
  ts_script_headers(sc);
  ts_script_hold(sc);
  script_stream(&c, 1, "data: second\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, 30000), EVENTSOURCE_OK);
  ctx_run(&c);
  ck_assert_int_eq(ts_server_wait_requests(c.srv, 1, WAIT_MS), 1);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(eventsource_restart(es), EVENTSOURCE_OK);
  ck_assert_int_eq(ts_server_wait_requests(c.srv, 2, WAIT_MS), 2);
  ck_assert_msg(log_wait(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1, WAIT_MS) == 1,
                "no message; log size %zu, client closes %d, state %d",
                log_size(&c), ts_server_client_closes(c.srv),
                (int)eventsource_ready_state(es));
  rec m = log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  assert_data(&m, "second");
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ts_server_release(c.srv, 1);
  ctx_fini(&c);
}
END_TEST

START_TEST(test_close_while_connecting) {
  ctx c;
  ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_gate(sc, 1);
  ts_script_headers(sc);
  ts_script_hold(sc);
  eventsource_t *es = ctx_new_es(&c, "/");
  ctx_run(&c);
  ck_assert_int_eq(ts_server_wait_requests(c.srv, 1, WAIT_MS), 1);
  long t0 = tu_now_ms();
  eventsource_close(es);
  ck_assert_msg(ctx_wait_run(&c, prompt_ms()), "run did not return after close");
  ck_assert_int_lt(tu_now_ms() - t0, prompt_ms());
  ck_assert_int_eq(ctx_run_rc(&c), EVENTSOURCE_OK);
  ck_assert_uint_eq(log_size(&c), 0);
  ts_server_release(c.srv, 1);
  ctx_fini(&c);
}
END_TEST


static int prepare_free(eventsource_t *es, unsigned attempt, void *ud) {
  ctx *c = ud;
  eventsource_free(es);
  eventsource_ready_state_t st = eventsource_ready_state(es); /* still valid */
  pthread_mutex_lock(&c->mu);
  c->seen_state = st;
  c->es_freed = 1;
  c->counter[0]++;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

/* Freed from a hook right at the start of the library's thread, while
 * eventsource_start() may still be returning. */
START_TEST(test_free_from_prepare_start) {
  ctx c;
  ctx_init(&c);
  script_stream(&c, 1, "data: never\n\n", NULL);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_prepare_callback(es, prepare_free, &c),
                   EVENTSOURCE_OK);
  int threads = count_entries("/proc/self/task");
  ck_assert_int_eq(eventsource_start(es), EVENTSOURCE_OK);
  c.started = 1;
  ck_assert_int_eq(counter_wait(&c, 0, 1, WAIT_MS), 1);
  ck_assert_int_le(wait_threads_at_most(threads, WAIT_MS), threads);
  ck_assert_int_eq(c.seen_state, EVENTSOURCE_CLOSED);
  ck_assert_uint_eq(log_size(&c), 0);
  ck_assert_int_eq(ts_server_request_count(c.srv), 0);
  ctx_fini(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */

/* An allocation failing while the stream is parsed: the source fails with
 * NOMEM (CLOSED, error notification, eventsource_run() returns NOMEM), and
 * nothing crashes or leaks. */

static void on_open_fail_allocs(eventsource_t *es, const eventsource_event_t *ev,
                                void *ud) {
  (void)es;
  (void)ud;
  if (eventsource_event_kind(ev) == EVENTSOURCE_KIND_OPEN)
    es_alloc_fail_after(0); /* loop thread: every library allocation fails */
}

START_TEST(test_nomem_while_parsing) {
  ctx c;
  ctx_init(&c);
  /* A 256 KiB event needs the parser's buffers to grow. */
  size_t big = 256 * 1024;
  char *line = malloc(big + 16);
  ck_assert_ptr_nonnull(line);
  memcpy(line, "data: ", 6);
  memset(line + 6, 'x', big);
  memcpy(line + 6 + big, "\n\n", 3);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  ts_script_writes(sc, line);
  ts_script_hold(sc);
  free(line);
  eventsource_t *es = ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_listener(es, "open", on_open_fail_allocs, NULL, NULL),
                   EVENTSOURCE_OK);
  ctx_run(&c);
  int returned = ctx_wait_run(&c, WAIT_MS);
  es_alloc_fail_reset();
  ck_assert_msg(returned, "eventsource_run did not return");
  ck_assert_int_eq(ctx_run_rc(&c), EVENTSOURCE_ERR_NOMEM);
  ck_assert_int_eq(log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ck_assert_int_eq(log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 0);
  rec r = log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(r.error, EVENTSOURCE_ERR_NOMEM);
  ck_assert_int_eq(r.will_reconnect, 0);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_ERR_NOMEM);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ctx_fini(&c);
}
END_TEST

static Suite *connection_suite(void) {
  Suite *s = suite_create("connection");
  TCase *tc;

  tc = tcase_create("request");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_get_request_headers);
  tcase_add_test(tc, test_initial_last_event_id);
  tcase_add_test(tc, test_last_event_id_cleared_before_start);
  tcase_add_test(tc, test_post_body_resent);
  tcase_add_test(tc, test_custom_method_without_body);
  tcase_add_test(tc, test_header_validation_and_semantics);
  suite_add_tcase(s, tc);

  tc = tcase_create("events");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_events_one_chunk);
  tcase_add_test(tc, test_nomem_while_parsing);
  tcase_add_test(tc, test_events_split_every_byte);
  tcase_add_test(tc, test_ready_state_transitions);
  tcase_add_test(tc, test_server_events_named_error_and_open);
  tcase_add_test(tc, test_too_large_event_dropped);
  tcase_add_test(tc, test_chunked_response);
  tcase_add_test(tc, test_utf8_split_and_invalid);
  tcase_add_test(tc, test_large_event);
  suite_add_tcase(s, tc);

  tc = tcase_create("response");
  tcase_set_timeout(tc, 30);
  tcase_add_loop_test(tc, test_content_type_accepted, 0,
                      (int)(sizeof good_types / sizeof good_types[0]));
  tcase_add_test(tc, test_content_type_with_space_before_params);
  tcase_add_test(tc, test_redirect_then_bad_type);
  tcase_add_test(tc, test_interim_100_response);
  tcase_add_loop_test(tc, test_bad_response_closes, 0,
                      (int)(sizeof bad_responses / sizeof bad_responses[0]));
  tcase_add_loop_test(tc, test_redirect_followed, 0,
                      (int)(sizeof redirect_codes / sizeof redirect_codes[0]));
  tcase_add_loop_test(tc, test_redirect_unusable, 0,
                      (int)(sizeof bad_locations / sizeof bad_locations[0]));
  tcase_add_test(tc, test_redirect_loop_limited);
  tcase_add_loop_test(tc, test_redirect_none_allowed, 0,
                      (int)(sizeof redirect_codes / sizeof redirect_codes[0]));
  tcase_add_loop_test(tc, test_redirect_keeps_post, 0,
                      (int)(sizeof method_keeping_redirects /
                            sizeof method_keeping_redirects[0]));
  suite_add_tcase(s, tc);

  tc = tcase_create("reconnect");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_retry_field_sets_delay);
  tcase_add_test(tc, test_set_retry_and_bad_retry_field);
  tcase_add_test(tc, test_last_event_id_on_reconnect);
  tcase_add_test(tc, test_last_event_id_utf8);
  tcase_add_test(tc, test_partial_event_dropped);
  tcase_add_test(tc, test_read_timeout_reconnects);
  tcase_add_test(tc, test_connection_refused);
  tcase_add_test(tc, test_connect_timeout);
  tcase_add_loop_test(tc, test_backoff, 0,
                      (int)(sizeof backoff_cases / sizeof backoff_cases[0]));
  tcase_add_test(tc, test_prepare_sets_header_per_attempt);
  tcase_add_test(tc, test_prepare_failure_closes);
  tcase_add_test(tc, test_policy_reconnects_on_503);
  tcase_add_test(tc, test_policy_stops);
  tcase_add_test(tc, test_policy_changes_delay);
  tcase_add_test(tc, test_curl_hook_every_attempt);
  tcase_add_loop_test(tc, test_curl_hook_stops, 0,
                      (int)(sizeof curl_stops / sizeof curl_stops[0]));
  tcase_add_test(tc, test_restart_reconnects_silently);
  tcase_add_test(tc, test_restart_from_listener);
  tcase_add_test(tc, test_restart_during_reconnect_wait);
  tcase_add_test(tc, test_retry_capped_by_max_retry);
  tcase_add_test(tc, test_close_from_prepare);
  tcase_add_test(tc, test_comments_keep_read_timeout_away);
  tcase_add_test(tc, test_restart_while_connecting);
  suite_add_tcase(s, tc);

  tc = tcase_create("lifecycle");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_close_from_listener);
  tcase_add_test(tc, test_close_from_other_thread_while_silent);
  tcase_add_test(tc, test_close_during_reconnect_wait);
  tcase_add_test(tc, test_free_from_listener_run);
  tcase_add_test(tc, test_free_from_listener_start);
  tcase_add_test(tc, test_free_from_prepare_start);
  tcase_add_test(tc, test_listeners_changed_in_listener);
  tcase_add_test(tc, test_close_waits_for_running_listener);
  tcase_add_test(tc, test_close_races_event_flood);
  tcase_add_test(tc, test_run_and_start_state_errors);
  tcase_add_test(tc, test_close_while_connecting);
  suite_add_tcase(s, tc);

  tc = tcase_create("stress");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_many_reconnections_no_fd_leak);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(connection_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
