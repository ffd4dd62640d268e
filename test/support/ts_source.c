/*
 * ts_source.c - one source under test and its notification log (see
 * ts_source.h).
 */
#include "support/ts_source.h"

#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "support/ts_util.h"

long ts_prompt_ms(void) { return ts_small_scale() ? 6000 : 2000; }

void ts_ctx_init(ts_ctx *c) {
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

void ts_log_push(ts_ctx *c, eventsource_t *es, const eventsource_event_t *ev,
                 const char *via) {
  ts_rec r;
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
void ts_on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  ts_log_push(ud, es, ev, "any");
}

static int matches(const ts_rec *r, int kind, const char *type) {
  return (kind == TS_ANY_KIND || (int)r->kind == kind) &&
         (!type || strcmp(r->type, type) == 0);
}

static size_t count_locked(ts_ctx *c, int kind, const char *type) {
  size_t k = 0;
  for (size_t i = 0; i < c->n; i++)
    if (matches(&c->v[i], kind, type))
      k++;
  return k;
}

size_t ts_log_count(ts_ctx *c, int kind, const char *type) {
  pthread_mutex_lock(&c->mu);
  size_t k = count_locked(c, kind, type);
  pthread_mutex_unlock(&c->mu);
  return k;
}

size_t ts_log_size(ts_ctx *c) { return ts_log_count(c, TS_ANY_KIND, NULL); }

/* Waits until the log holds at least n records of that kind and type;
 * returns how many it holds. */
size_t ts_log_wait(ts_ctx *c, int kind, const char *type, size_t n, long timeout_ms) {
  struct timespec dl;
  ts_deadline_in(&dl, timeout_ms);
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
ts_rec ts_log_at(ts_ctx *c, size_t i) {
  pthread_mutex_lock(&c->mu);
  ck_assert_uint_lt(i, c->n);
  ts_rec r = c->v[i];
  pthread_mutex_unlock(&c->mu);
  return r;
}

/* The index of the n-th (0-based) record of that kind and type, or -1. */
static long log_find(ts_ctx *c, int kind, const char *type, size_t nth) {
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

ts_rec ts_log_nth(ts_ctx *c, int kind, const char *type, size_t nth) {
  long i = log_find(c, kind, type, nth);
  ck_assert_msg(i >= 0, "no record #%zu of kind %d type %s", nth, kind,
                type ? type : "(any)");
  return ts_log_at(c, (size_t)i);
}

/* A source for url (any server), with the logging any-listener, in c->es. */
eventsource_t *ts_ctx_new_es_url(ts_ctx *c, const char *url) {
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, url), EVENTSOURCE_OK);
  ck_assert_ptr_nonnull(es);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(eventsource_add_any_listener(es, ts_on_any, c, NULL), EVENTSOURCE_OK);
  c->es = es;
  return es;
}

/* The same for a path on the test's server. */
eventsource_t *ts_ctx_new_es(ts_ctx *c, const char *path) {
  return ts_ctx_new_es_url(c, ts_server_url(c->srv, path));
}

static void *runner_main(void *arg) {
  ts_ctx *c = arg;
  eventsource_error_t rc = eventsource_run(c->es);
  pthread_mutex_lock(&c->mu);
  c->run_rc = rc;
  c->run_done = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

/* Runs c->es with eventsource_run() in a helper thread. */
void ts_ctx_run(ts_ctx *c) {
  ck_assert_int_eq(pthread_create(&c->runner, NULL, runner_main, c), 0);
  c->runner_started = 1;
}

/* Runs c->es with eventsource_start(). */
void ts_ctx_start(ts_ctx *c) {
  ck_assert_int_eq(eventsource_start(c->es), EVENTSOURCE_OK);
  c->started = 1;
}

/* Waits until eventsource_run() returned; 1 if it did. */
int ts_ctx_wait_run(ts_ctx *c, long timeout_ms) {
  struct timespec dl;
  ts_deadline_in(&dl, timeout_ms);
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

eventsource_error_t ts_ctx_run_rc(ts_ctx *c) {
  pthread_mutex_lock(&c->mu);
  eventsource_error_t rc = c->run_rc;
  pthread_mutex_unlock(&c->mu);
  return rc;
}

/* Closes (if still running), waits, frees everything. */
void ts_ctx_fini(ts_ctx *c) {
  if (c->es && !c->es_freed) {
    if (c->runner_started) {
      eventsource_close(c->es);
      ck_assert_msg(ts_ctx_wait_run(c, TS_WAIT_MS), "eventsource_run did not return");
    }
    eventsource_free(c->es); /* joins the thread of eventsource_start() */
  } else if (c->runner_started) {
    ck_assert_msg(ts_ctx_wait_run(c, TS_WAIT_MS), "eventsource_run did not return");
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
void ts_set_retry_exact(eventsource_t *es, long ms) {
  ck_assert_int_eq(eventsource_set_retry(es, ms), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
}

/* Waits for n records of that kind (any type) and asserts there are n. */
void ts_log_wait_eq(ts_ctx *c, int kind, size_t n) {
  ck_assert_uint_eq(ts_log_wait(c, kind, NULL, n, TS_WAIT_MS), n);
}

/* eventsource_run() of c->es returned rc and left the source closed. */
void ts_expect_run_ended(ts_ctx *c, eventsource_error_t rc) {
  ck_assert(ts_ctx_wait_run(c, TS_WAIT_MS));
  ck_assert_int_eq(ts_ctx_run_rc(c), rc);
  ck_assert_int_eq(eventsource_ready_state(c->es), EVENTSOURCE_CLOSED);
}

/* Request i as the server recorded it (in c->req). */
const ts_request *ts_req_get(ts_ctx *c, int i) {
  ck_assert_int_eq(ts_server_get_request(c->srv, i, c->req), 0);
  return c->req;
}

/* The value of a header in request i, or NULL when absent. */
const char *ts_req_header(ts_ctx *c, int i, const char *name) {
  const ts_request *r = ts_req_get(c, i);
  return ts_request_header(r, name, c->hbuf, sizeof c->hbuf) ? c->hbuf : NULL;
}

void ts_counter_inc(ts_ctx *c, int k) {
  pthread_mutex_lock(&c->mu);
  c->counter[k]++;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

int ts_counter_get(ts_ctx *c, int k) {
  pthread_mutex_lock(&c->mu);
  int v = c->counter[k];
  pthread_mutex_unlock(&c->mu);
  return v;
}

int ts_counter_wait(ts_ctx *c, int k, int n, long timeout_ms) {
  struct timespec dl;
  ts_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&c->mu);
  while (c->counter[k] < n && pthread_cond_timedwait(&c->cv, &c->mu, &dl) == 0) {
  }
  int v = c->counter[k];
  pthread_mutex_unlock(&c->mu);
  return v;
}

void ts_assert_data(const ts_rec *r, const char *want) {
  ck_assert_msg(r->data_len == strlen(want) && memcmp(r->data, want, r->data_len) == 0,
                "data '%s', want '%s'", r->data, want);
}

/* A script: headers, the given writes (NULL-ended), then hold or close. */
ts_script *ts_add_stream(ts_ctx *c, int hold, const char *first, ...) {
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

void ts_add_status(ts_ctx *c, int status, const char *reason, const char *h1,
                   const char *h2, const char *body) {
  ts_script *sc = ts_server_add_script(c->srv);
  const char *hl[3] = {h1, h1 ? h2 : NULL, NULL};
  ts_script_status(sc, status, reason, hl);
  if (body)
    ts_script_writes(sc, body);
  ts_script_close(sc);
}

/* CURLINFO_DATA_IN is every piece of the body as libcurl received it, passed
 * here before the library's write function sees it. */
static int on_curl_debug(CURL *easy, curl_infotype type, char *data,
                         size_t size, void *ud) {
  (void)easy;
  (void)data;
  if (type != CURLINFO_DATA_IN)
    return 0;
  ts_ctx *c = ud;
  pthread_mutex_lock(&c->mu);
  c->in_bytes += size;
  c->in_chunks++;
  if (size > c->in_max)
    c->in_max = size;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

/* Waits until the client has received at least n body bytes (TS_CURL_TRACE);
 * returns how many it has. */
size_t ts_in_bytes_wait(ts_ctx *c, size_t n, long timeout_ms) {
  struct timespec dl;
  ts_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&c->mu);
  while (c->in_bytes < n && pthread_cond_timedwait(&c->cv, &c->mu, &dl) == 0) {
  }
  size_t got = c->in_bytes;
  pthread_mutex_unlock(&c->mu);
  return got;
}

CURLcode ts_curl_hook(eventsource_t *es, CURL *easy, void *ud) {
  ts_ctx *c = ud;
  pthread_mutex_lock(&c->mu);
  if (c->ncurl < TS_MAX_PREPARE)
    c->curl_nprepare[c->ncurl] = c->nprepare;
  c->ncurl++;
  if (es != c->es || !easy)
    c->curl_bad++;
  int mode = c->curl_mode;
  pthread_mutex_unlock(&c->mu);
  CURLcode rc = CURLE_OK;
  switch (mode) {
  case TS_CURL_USER_AGENT:
    rc = curl_easy_setopt(easy, CURLOPT_USERAGENT, "es-test/1");
    break;
  case TS_CURL_FAIL:
    return CURLE_BAD_FUNCTION_ARGUMENT;
  case TS_CURL_CLOSE:
    eventsource_close(es);
    break;
  case TS_CURL_TRACE:
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

/* Installs ts_curl_hook in the given mode on c->es. */
void ts_ctx_curl_hook(ts_ctx *c, int mode) {
  c->curl_mode = mode;
  ck_assert_int_eq(eventsource_set_curl_callback(c->es, ts_curl_hook, c), EVENTSOURCE_OK);
}

void ts_ctx_listen(ts_ctx *c, const char *type, eventsource_listener_fn fn) {
  ck_assert_int_eq(eventsource_add_listener(c->es, type, fn, c, NULL), EVENTSOURCE_OK);
}

int ts_ctx_get(ts_ctx *c, const int *field) {
  pthread_mutex_lock(&c->mu);
  int v = *field;
  pthread_mutex_unlock(&c->mu);
  return v;
}

void ts_on_comment(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  ts_log_push(ud, es, ev, "comment");
}

static const char post_body[] = "{\"q\":1}\0tail";

/* POST with post_body and a Content-Type. */
void ts_set_post(eventsource_t *es) {
  ck_assert_int_eq(eventsource_set_method(es, "POST"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_body(es, post_body, sizeof post_body - 1),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_header(es, "Content-Type", "application/json"),
                   EVENTSOURCE_OK);
}

/* Request i was the POST of ts_set_post() to path. */
void ts_assert_post(ts_ctx *c, int i, const char *path) {
  const ts_request *r = ts_req_get(c, i);
  ck_assert_str_eq(r->method, "POST");
  ck_assert_str_eq(r->path, path);
  ck_assert_uint_eq(r->body_len, sizeof post_body - 1);
  ck_assert_int_eq(memcmp(r->body, post_body, sizeof post_body - 1), 0);
  ck_assert_str_eq(ts_req_header(c, i, "Content-Type"), "application/json");
  ck_assert_str_eq(ts_req_header(c, i, "Accept"), "text/event-stream");
}

int ts_prepare_hook(eventsource_t *es, unsigned attempt, void *ud) {
  ts_ctx *c = ud;
  char v[32];
  snprintf(v, sizeof v, "%u", attempt);
  eventsource_error_t rc = eventsource_set_header(es, "X-Attempt", v);
  pthread_mutex_lock(&c->mu);
  if (c->nprepare < TS_MAX_PREPARE)
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

void ts_policy_hook(eventsource_t *es, eventsource_error_t why, long http_status,
                    unsigned attempt, int *reconnect, long *delay_ms, void *ud) {
  ts_ctx *c = ud;
  pthread_mutex_lock(&c->mu);
  if (c->npolicy < TS_MAX_POLICY) {
    ts_policy_call *p = &c->policy[c->npolicy];
    p->why = why;
    p->status = http_status;
    p->attempt = attempt;
    p->default_reconnect = *reconnect;
    p->default_delay = *delay_ms;
  }
  c->npolicy++;
  switch (c->policy_mode) {
  case TS_POLICY_RECONNECT_STATUS:
    if (why == EVENTSOURCE_ERR_HTTP_STATUS && http_status == 503) {
      *reconnect = 1;
      *delay_ms = c->policy_delay;
    }
    break;
  case TS_POLICY_STOP:
    *reconnect = 0;
    break;
  case TS_POLICY_DELAY:
    *delay_ms = c->policy_delay;
    break;
  default:
    break;
  }
  pthread_mutex_unlock(&c->mu);
}

int ts_count_entries(const char *dir) {
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
int ts_wait_threads_at_most(int n, long timeout_ms) {
  long deadline = ts_now_ms() + timeout_ms;
  int k;
  while ((k = ts_count_entries("/proc/self/task")) > n && ts_now_ms() < deadline) {
    struct timespec ts = {0, 2 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return k;
}

void ts_ctx_prepare_hook(ts_ctx *c, int prepare_fail) {
  c->prepare_fail = prepare_fail;
  ck_assert_int_eq(eventsource_set_prepare_callback(c->es, ts_prepare_hook, c),
                   EVENTSOURCE_OK);
}

void ts_ctx_policy_hook(ts_ctx *c, int mode, long delay_ms) {
  c->policy_mode = mode;
  c->policy_delay = delay_ms;
  ck_assert_int_eq(eventsource_set_policy_callback(c->es, ts_policy_hook, c),
                   EVENTSOURCE_OK);
}
