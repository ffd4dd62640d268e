/*
 * test_headers.c - what a listener learns of the response itself (issue 13,
 * items 1-3): its headers on OPEN and ERROR notifications
 * (eventsource_event_header()), the body of a refused response
 * (eventsource_event_body(), eventsource_set_max_error_body()) and
 * Retry-After (eventsource_set_max_retry_after(), the reconnection delay
 * the policy callback and the error notification see).
 *
 * The connection tests run one source against the scripted loopback server
 * (test/support/ts_source.h) and wait on what they observe, with a
 * deadline; delays are checked through eventsource_event_reconnect_ms() and
 * the policy callback's default, never by timing. The "module" tests call
 * lib/response.h directly, to check its bounds byte for byte.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h" /* es_alloc_fail_after(): allocation failure injection */
#include "eventsource.h"
#include "response.h" /* the module tests: es_response_*, es_retry_after_ms */
#include "support/sse_server.h"
#include "support/ts_encode.h"
#include "support/ts_source.h"
#include "support/ts_util.h"

/* ------------------------------------------------------------------------ */
/* A listener that reads headers and bodies while they are valid            */
/* ------------------------------------------------------------------------ */

#define NQ 8
#define VAL_MAX 512

/* What the probe saw, under c->mu. */
typedef struct probe {
  ts_ctx *c;
  const char *names[NQ]; /* headers to read (NULL-ended) */
  /* the first OPEN and the first ERROR notification */
  int nopen, nerr;
  int open_null[NQ], err_null[NQ];
  char open_v[NQ][VAL_MAX], err_v[NQ][VAL_MAX];
  char *body;             /* the first error's body, malloc'd */
  size_t body_len;
  int body_nul_ok;        /* body[len] was NUL */
  int body_null_len_ok;   /* eventsource_event_body(ev, NULL) worked */
  char msg[256];
  /* the last error notification: its body's length, its first header */
  size_t last_body_len;
  int last_hdr_null;
  /* every other notification: how many had a header or a body */
  int nother, other_leaked;
  /* the policy callback: its calls and the default delay it was given */
  int npolicy;
  long policy_delay[4];
  int policy_reconnect; /* what it decides for refused responses */
} probe;

static void read_headers(const eventsource_event_t *ev, const probe *p, int *isnull,
                         char (*v)[VAL_MAX]) {
  for (int i = 0; i < NQ && p->names[i]; i++) {
    const char *h = eventsource_event_header(ev, p->names[i]);
    isnull[i] = h == NULL;
    snprintf(v[i], VAL_MAX, "%s", h ? h : "");
  }
}

static void on_probe(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  (void)es;
  probe *p = ud;
  pthread_mutex_lock(&p->c->mu);
  eventsource_kind_t k = eventsource_event_kind(ev);
  size_t bl = 99;
  const char *b = eventsource_event_body(ev, &bl);
  if (k == EVENTSOURCE_KIND_ERROR) {
    p->last_body_len = bl;
    p->last_hdr_null = !p->names[0] || !eventsource_event_header(ev, p->names[0]);
  }
  if (k == EVENTSOURCE_KIND_OPEN && p->nopen++ == 0) {
    read_headers(ev, p, p->open_null, p->open_v);
  } else if (k == EVENTSOURCE_KIND_ERROR && p->nerr++ == 0) {
    read_headers(ev, p, p->err_null, p->err_v);
    p->body = malloc(bl + 1);
    ck_assert_ptr_nonnull(p->body);
    memcpy(p->body, b, bl + 1);
    p->body_len = bl;
    p->body_nul_ok = b[bl] == '\0';
    p->body_null_len_ok = eventsource_event_body(ev, NULL) == b;
    snprintf(p->msg, sizeof p->msg, "%s", eventsource_event_message(ev));
  } else if (k == EVENTSOURCE_KIND_MESSAGE || k == EVENTSOURCE_KIND_COMMENT) {
    p->nother++;
    if (eventsource_event_header(ev, "Content-Type") || bl != 0 || b[0] != '\0')
      p->other_leaked++;
  }
  pthread_cond_broadcast(&p->c->cv);
  pthread_mutex_unlock(&p->c->mu);
}

/* Reconnects after a refused response when policy_reconnect is set, with
 * the default delay; records that delay. */
static void on_policy(eventsource_t *es, eventsource_error_t why, long status,
                      unsigned attempt, int *reconnect, long *delay_ms, void *ud) {
  (void)es;
  (void)status;
  (void)attempt;
  probe *p = ud;
  pthread_mutex_lock(&p->c->mu);
  if (p->npolicy < 4)
    p->policy_delay[p->npolicy] = *delay_ms;
  p->npolicy++;
  if (p->policy_reconnect &&
      (why == EVENTSOURCE_ERR_HTTP_STATUS || why == EVENTSOURCE_ERR_CONTENT_TYPE))
    *reconnect = 1;
  pthread_mutex_unlock(&p->c->mu);
}

static probe *probe_new(ts_ctx *c, eventsource_t *es, const char *const *names) {
  probe *p = calloc(1, sizeof *p);
  ck_assert_ptr_nonnull(p);
  p->c = c;
  for (int i = 0; i < NQ - 1 && names && names[i]; i++)
    p->names[i] = names[i];
  ck_assert_int_eq(eventsource_add_any_listener(es, on_probe, p, NULL), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_comment_listener(es, on_probe, p, NULL), EVENTSOURCE_OK);
  return p;
}

static void probe_free(probe *p) {
  free(p->body);
  free(p);
}

/* Waits until the probe counted n in *field (the log's listener runs
 * before the probe: waiting on the log is not enough). */
static void probe_wait(probe *p, const int *field, int n) {
  struct timespec dl;
  ts_deadline_in(&dl, TS_WAIT_MS);
  pthread_mutex_lock(&p->c->mu);
  while (*field < n && pthread_cond_timedwait(&p->c->cv, &p->c->mu, &dl) == 0)
    ;
  int got = *field;
  pthread_mutex_unlock(&p->c->mu);
  ck_assert_msg(got >= n, "the probe saw %d, expected %d", got, n);
}

/* Index of name in p->names. */
static int qi(const probe *p, const char *name) {
  for (int i = 0; i < NQ && p->names[i]; i++)
    if (strcmp(p->names[i], name) == 0)
      return i;
  ck_abort_msg("no query %s", name);
  return -1;
}

static void assert_open(probe *p, const char *name, const char *want) {
  int i = qi(p, name);
  if (!want) {
    ck_assert_msg(p->open_null[i], "open: %s is \"%s\", expected NULL", name, p->open_v[i]);
    return;
  }
  ck_assert_msg(!p->open_null[i], "open: %s is NULL", name);
  ck_assert_str_eq(p->open_v[i], want);
}

static void assert_err(probe *p, const char *name, const char *want) {
  int i = qi(p, name);
  if (!want) {
    ck_assert_msg(p->err_null[i], "error: %s is \"%s\", expected NULL", name, p->err_v[i]);
    return;
  }
  ck_assert_msg(!p->err_null[i], "error: %s is NULL", name);
  ck_assert_str_eq(p->err_v[i], want);
}

/* Runs c->es until it gave up (run returned rc). */
static void run_until_closed(ts_ctx *c, eventsource_error_t rc) {
  ts_ctx_run(c);
  ck_assert_msg(ts_ctx_wait_run(c, TS_WAIT_MS), "eventsource_run did not return");
  ck_assert_int_eq(ts_ctx_run_rc(c), rc);
}

/* ------------------------------------------------------------------------ */
/* Headers                                                                  */
/* ------------------------------------------------------------------------ */

START_TEST(test_headers_on_open) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_writes(sc, "HTTP/1.1 200 OK\r\n"
                       "Content-Type: text/event-stream\r\n"
                       "X-Request-Id: req-42\r\n"
                       "X-List: a\r\n"
                       "x-list:   b  \r\n"
                       "X-LIST: c,d\r\n"
                       "X-Empty:\r\n"
                       "Set-Cookie: s=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT\r\n"
                       "Set-Cookie: t=2\r\n"
                       "\r\n"
                       ": hi\n\ndata: one\n\n");
  ts_script_hold(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  const char *names[] = {"x-request-id", "X-REQUEST-ID", "X-List",  "x-empty",
                         "Set-Cookie",   "content-type", "X-Absent", NULL};
  probe *p = probe_new(&c, es, names);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  probe_wait(p, &p->nother, 2);
  assert_open(p, "x-request-id", "req-42");
  assert_open(p, "X-REQUEST-ID", "req-42");
  assert_open(p, "X-List", "a, b, c,d");
  assert_open(p, "x-empty", "");
  assert_open(p, "Set-Cookie", "s=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT\nt=2");
  assert_open(p, "content-type", "text/event-stream");
  assert_open(p, "X-Absent", NULL);
  /* a message and a comment carry neither headers nor a body */
  pthread_mutex_lock(&c.mu);
  ck_assert_int_eq(p->nopen, 1);
  ck_assert_int_eq(p->nother, 2);
  ck_assert_int_eq(p->other_leaked, 0);
  pthread_mutex_unlock(&c.mu);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_headers_null_event) {
  /* NULL for the event gives NULL and "" */
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: x\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  const char *names[] = {"Content-Type", NULL};
  probe *p = probe_new(&c, es, names);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  probe_wait(p, &p->nother, 1);
  assert_open(p, "Content-Type", "text/event-stream");
  ck_assert_ptr_null(eventsource_event_header(NULL, "Content-Type"));
  size_t len = 7;
  ck_assert_str_eq(eventsource_event_body(NULL, &len), "");
  ck_assert_uint_eq(len, 0);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

static const int refused_status[] = {429, 500, 503};

START_TEST(test_headers_on_error) {
  ts_ctx c;
  ts_ctx_init(&c);
  int st = refused_status[_i];
  ts_script *sc = ts_server_add_script(c.srv);
  char line[128];
  snprintf(line, sizeof line, "HTTP/1.1 %d Nope\r\n", st);
  ts_script_writes(sc, line);
  ts_script_writes(sc, "Content-Type: application/json\r\n"
                       "X-RateLimit-Remaining: 0\r\n"
                       "X-Request-Id: e-1\r\n"
                       "X-Request-Id: e-2\r\n"
                       "Connection: close\r\n\r\n"
                       "{\"error\":\"slow down\"}");
  ts_script_close(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  const char *names[] = {"x-ratelimit-remaining", "X-Request-Id", "Content-Type",
                         "X-Absent", NULL};
  probe *p = probe_new(&c, es, names);
  run_until_closed(&c, EVENTSOURCE_ERR_HTTP_STATUS);
  pthread_mutex_lock(&c.mu);
  ck_assert_int_eq(p->nerr, 1);
  ck_assert_int_eq(p->nopen, 0);
  pthread_mutex_unlock(&c.mu);
  assert_err(p, "x-ratelimit-remaining", "0");
  assert_err(p, "X-Request-Id", "e-1, e-2");
  assert_err(p, "Content-Type", "application/json");
  assert_err(p, "X-Absent", NULL);
  ck_assert_str_eq(p->body, "{\"error\":\"slow down\"}");
  ck_assert_int_eq(ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).status, st);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_headers_after_redirect) {
  /* the final response's headers, not the redirect's */
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_status(&c, 302, "Found", "Location: /next", "X-Hop: first", NULL);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {"Content-Type: text/event-stream", "X-Final: yes", NULL};
  ts_script_status(sc, 200, "OK", hl);
  ts_script_writes(sc, "data: x\n\n");
  ts_script_hold(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  const char *names[] = {"X-Hop", "X-Final", "Location", NULL};
  probe *p = probe_new(&c, es, names);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  probe_wait(p, &p->nother, 1);
  assert_open(p, "X-Hop", NULL);
  assert_open(p, "Location", NULL);
  assert_open(p, "X-Final", "yes");
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_headers_interim_response) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_writes(sc, "HTTP/1.1 103 Early Hints\r\nX-Early: 1\r\n\r\n");
  const char *hl[] = {"Content-Type: text/event-stream", "X-Real: 2", NULL};
  ts_script_status(sc, 200, "OK", hl);
  ts_script_writes(sc, "data: x\n\n");
  ts_script_hold(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  const char *names[] = {"X-Early", "X-Real", NULL};
  probe *p = probe_new(&c, es, names);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  probe_wait(p, &p->nother, 1);
  assert_open(p, "X-Early", NULL);
  assert_open(p, "X-Real", "2");
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_headers_error_without_response) {
  /* connection refused: no response, so no header and no body */
  ts_ctx c;
  ts_ctx_init(&c);
  ts_server *gone = ts_start_server();
  char url[128];
  snprintf(url, sizeof url, "%s", ts_server_url(gone, "/"));
  ts_server_stop(gone);
  eventsource_t *es = ts_ctx_new_es_url(&c, url);
  const char *names[] = {"Content-Type", NULL};
  probe *p = probe_new(&c, es, names);
  ts_set_retry_exact(es, 60000);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  probe_wait(p, &p->nerr, 1);
  ck_assert_int_eq(ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).error,
                   EVENTSOURCE_ERR_NETWORK);
  assert_err(p, "Content-Type", NULL);
  ck_assert_uint_eq(p->body_len, 0);
  ck_assert_str_eq(p->body, "");
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_headers_error_after_open) {
  /* the stream opened, then ended: the error is about that response */
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {"Content-Type: text/event-stream", "X-Session: s9", NULL};
  ts_script_status(sc, 200, "OK", hl);
  ts_script_writes(sc, "data: x\n\n");
  ts_script_close(sc);
  ts_add_stream(&c, 1, ": hold\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  const char *names[] = {"X-Session", NULL};
  probe *p = probe_new(&c, es, names);
  ts_set_retry_exact(es, 60000);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  probe_wait(p, &p->nerr, 1);
  ck_assert_int_eq(ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).error,
                   EVENTSOURCE_ERR_EOF);
  assert_err(p, "X-Session", "s9");
  ck_assert_uint_eq(p->body_len, 0); /* a stream's body is no error body */
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

/* _i 0: a single 100 KB header line; 1: 200 lines of 1 KB (200 KB in all).
 * libcurl takes both; the library keeps at most 64 KiB of them and the
 * stream works. */
START_TEST(test_headers_huge) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_writes(sc, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                       "X-Before: 1\r\n");
  if (_i == 0) {
    ts_script_writes(sc, "X-Big: ");
    ts_script_fill(sc, 'a', 100 * 1000);
    ts_script_writes(sc, "\r\n");
  } else {
    for (int i = 0; i < 200; i++) {
      char name[32];
      snprintf(name, sizeof name, "X-H%d: ", i);
      ts_script_writes(sc, name);
      ts_script_fill(sc, 'b', 1000);
      ts_script_writes(sc, "\r\n");
    }
  }
  ts_script_writes(sc, "X-After: 2\r\n\r\ndata: still here\n\n");
  ts_script_hold(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  const char *names[] = {"X-Before", "X-Big", "X-After", "X-H0", "X-H199", NULL};
  probe *p = probe_new(&c, es, names);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  ts_assert_data(&r, "still here");
  probe_wait(p, &p->nother, 1);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  assert_open(p, "X-Before", "1");
  assert_open(p, "X-After", "2"); /* small fields after the dropped ones fit */
  assert_open(p, "X-Big", NULL);
  if (_i == 1) {
    ck_assert_int_eq(p->open_null[qi(p, "X-H0")], 0);
    ck_assert_uint_eq(strlen(p->open_v[qi(p, "X-H0")]), VAL_MAX - 1); /* 1000, cut by the probe */
    assert_open(p, "X-H199", NULL); /* past 64 KiB */
  }
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Error bodies                                                             */
/* ------------------------------------------------------------------------ */

START_TEST(test_error_body_json) {
  ts_ctx c;
  ts_ctx_init(&c);
  const char *json = "{\"error\":{\"type\":\"rate_limit\",\"message\":\"Too many requests\"}}";
  ts_add_status(&c, 429, "Too Many Requests", "Content-Type: application/json", NULL, json);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  probe *p = probe_new(&c, es, NULL);
  run_until_closed(&c, EVENTSOURCE_ERR_HTTP_STATUS);
  ck_assert_str_eq(p->body, json);
  ck_assert_uint_eq(p->body_len, strlen(json));
  ck_assert(p->body_nul_ok);
  ck_assert(p->body_null_len_ok);
  ck_assert_ptr_null(strstr(p->msg, "cut"));
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_error_body_content_type) {
  /* a 200 that is not an event stream: its body too, NUL bytes included */
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {"Content-Type: text/html", NULL};
  ts_script_status(sc, 200, "OK", hl);
  ts_script_write(sc, "<p>login\0</p>", 13);
  ts_script_close(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  probe *p = probe_new(&c, es, NULL);
  run_until_closed(&c, EVENTSOURCE_ERR_CONTENT_TYPE);
  ck_assert_uint_eq(p->body_len, 13);
  ck_assert_mem_eq(p->body, "<p>login\0</p>", 13);
  ck_assert(p->body_nul_ok);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_error_body_gzip) {
  /* compressed with compression on: libcurl decodes it */
  ts_ctx c;
  ts_ctx_init(&c);
  const char *plain = "{\"error\":\"compressed explanation\"}";
  unsigned char *z;
  size_t zlen;
  ck_assert_int_eq(ts_encode("gzip", plain, strlen(plain), &z, &zlen), 0);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {"Content-Type: application/json", "Content-Encoding: gzip", NULL};
  ts_script_status(sc, 503, "Unavailable", hl);
  ts_script_write(sc, z, zlen);
  ts_script_close(sc);
  free(z);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_compression(es, 1), EVENTSOURCE_OK);
  probe *p = probe_new(&c, es, NULL);
  run_until_closed(&c, EVENTSOURCE_ERR_HTTP_STATUS);
  ck_assert_str_eq(p->body, plain);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

static const struct body_case {
  long max;      /* -1: the default */
  size_t size;   /* of the body sent */
  size_t want;   /* kept */
  int cut;       /* the message says it was cut */
} body_cases[] = {
    {1000, 100000, 1000, 1},
    {1000, 1000, 1000, 0}, /* exactly the bound: nothing cut */
    {1000, 999, 999, 0},
    {0, 5000, 0, 0},       /* none kept */
    {-1, 200000, 65536, 1},
    {-1, 65536, 65536, 0},
    {1, 2, 1, 1},
};

START_TEST(test_error_body_bound) {
  const struct body_case *bc = &body_cases[_i];
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {"Content-Type: text/plain", NULL};
  ts_script_status(sc, 500, "Oops", hl);
  ts_script_fill(sc, 'z', bc->size);
  ts_script_close(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  if (bc->max >= 0)
    ck_assert_int_eq(eventsource_set_max_error_body(es, (size_t)bc->max), EVENTSOURCE_OK);
  probe *p = probe_new(&c, es, NULL);
  run_until_closed(&c, EVENTSOURCE_ERR_HTTP_STATUS);
  ck_assert_uint_eq(p->body_len, bc->want);
  ck_assert_uint_eq(strlen(p->body), bc->want);
  for (size_t i = 0; i < bc->want; i++)
    ck_assert_int_eq(p->body[i], 'z');
  ck_assert_msg(!strstr(p->msg, "cut") == !bc->cut, "message: %s", p->msg);
  ck_assert_ptr_nonnull(strstr(p->msg, "HTTP status 500"));
  if (bc->cut) {
    char want[64];
    snprintf(want, sizeof want, "cut at %zu bytes", bc->want);
    ck_assert_ptr_nonnull(strstr(p->msg, want));
  }
  ck_assert_int_eq(ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).status, 500);
  ck_assert_int_eq(eventsource_last_http_status(es), 500);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_error_body_setter) {
  eventsource_t *es;
  ck_assert_int_eq(eventsource_new(&es, "http://127.0.0.1:1/"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_max_error_body(NULL, 10), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_error_body(es, EVENTSOURCE_MAX_ERROR_BODY + 1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_error_body(es, EVENTSOURCE_MAX_ERROR_BODY),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_max_error_body(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_max_retry_after(NULL, 10), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_retry_after(es, -1), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_retry_after(es, 86400001L),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_retry_after(es, 86400000L), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_max_retry_after(es, 0), EVENTSOURCE_OK);
  eventsource_free(es);
}
END_TEST

START_TEST(test_error_body_held) {
  /* a refused response whose body never ends: the read timeout ends the
   * wait, and the refusal (not READ_TIMEOUT) is the failure */
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {"Content-Type: text/plain", NULL};
  ts_script_status(sc, 502, "Bad Gateway", hl);
  ts_script_writes(sc, "partial explanation");
  ts_script_hold(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_read_timeout(es, 300), EVENTSOURCE_OK);
  probe *p = probe_new(&c, es, NULL);
  run_until_closed(&c, EVENTSOURCE_ERR_HTTP_STATUS);
  ck_assert_str_eq(p->body, "partial explanation");
  ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(r.error, EVENTSOURCE_ERR_HTTP_STATUS);
  ck_assert_int_eq(r.status, 502);
  ck_assert_int_eq(r.will_reconnect, 0);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_error_body_drip) {
  /* a refused response whose body drips a byte every 50 ms, each within
   * the read timeout (300 ms): the body is read for the read timeout in
   * all, not for the 5 s the server would take */
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {"Content-Type: text/plain", NULL};
  ts_script_status(sc, 500, "Oops", hl);
  char body[100];
  memset(body, 'x', sizeof body);
  ts_script_drip(sc, body, sizeof body, 50);
  ts_script_close(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_read_timeout(es, 300), EVENTSOURCE_OK);
  probe *p = probe_new(&c, es, NULL);
  run_until_closed(&c, EVENTSOURCE_ERR_HTTP_STATUS);
  ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(r.error, EVENTSOURCE_ERR_HTTP_STATUS);
  ck_assert_int_eq(r.status, 500);
  ck_assert_msg(strstr(p->msg, "it took too long") != NULL, "message: %s", p->msg);
  ck_assert_uint_gt(strlen(p->body), 0);
  ck_assert_uint_lt(strlen(p->body), sizeof body);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_error_body_reset_on_reconnect) {
  /* a 503 with a body, retried by the policy, then a 503 without one: the
   * second error has no body left over from the first */
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_status(&c, 503, "Busy", "Content-Type: text/plain", "X-N: 1", "first body");
  ts_add_status(&c, 503, "Busy", "Content-Length: 0", NULL, NULL);
  ts_add_stream(&c, 1, "data: x\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_set_retry_exact(es, 0);
  const char *names[] = {"X-N", NULL};
  probe *p = probe_new(&c, es, names);
  p->policy_reconnect = 1;
  ck_assert_int_eq(eventsource_set_policy_callback(es, on_policy, p), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ck_assert_str_eq(p->body, "first body");
  assert_err(p, "X-N", "1");
  pthread_mutex_lock(&c.mu);
  ck_assert_int_eq(p->nerr, 2);
  ck_assert_uint_eq(p->last_body_len, 0);
  ck_assert_int_eq(p->last_hdr_null, 1);
  pthread_mutex_unlock(&c.mu);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Retry-After                                                              */
/* ------------------------------------------------------------------------ */

static const struct ra_case {
  int status;
  const char *header; /* a header line, or NULL */
  long retry;         /* the reconnection time (jitter off) */
  long ceiling;       /* -1: the default */
  long want;          /* reconnect_ms */
} ra_cases[] = {
    {503, "Retry-After: 2", 100, -1, 2000},
    {429, "Retry-After: 1", 100, -1, 1000},
    {500, "Retry-After: 3", 100, -1, 3000},  /* any refused status the policy retries */
    {429, "retry-after:   4  ", 100, -1, 4000},
    {503, "Retry-After: 1", 5000, -1, 5000}, /* the backoff is longer: it stands */
    {503, "Retry-After: 0", 100, -1, 100},
    {503, NULL, 100, -1, 100},
    {503, "Retry-After: soon", 100, -1, 100},
    {503, "Retry-After: -5", 100, -1, 100},
    {503, "Retry-After: 1.5", 100, -1, 100},
    {503, "Retry-After: 10s", 100, -1, 100},
    {503, "Retry-After: 1, 2", 100, -1, 100},
    {503, "Retry-After:", 100, -1, 100},
    {503, "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT", 100, -1, 100}, /* past */
    {503, "Retry-After: Sunday, 06-Nov-94 08:49:37 GMT", 100, -1, 100}, /* past, RFC 850 */
    {503, "Retry-After: Wed, 99 Foo 2015 07:28:00 GMT", 100, -1, 100},  /* no date */
    {429, "Retry-After: 7200", 100, 3000, 3000},                        /* ceiling */
    {429, "Retry-After: 99999999999999999999999", 100, -1, 3600000},    /* default ceiling */
    {503, "Retry-After: Sun Nov  6 08:49:37 2094", 100, 4000, 4000},    /* asctime, far */
    {503, "Retry-After: Fri, 01 Jan 2100 00:00:00 GMT", 100, 2500, 2500},
    {503, "Retry-After: 2", 100, 0, 100},                               /* ceiling 0: ignored */
};

START_TEST(test_retry_after) {
  const struct ra_case *rc = &ra_cases[_i];
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_status(&c, rc->status, "Later", rc->header, "Content-Length: 0", NULL);
  ts_add_stream(&c, 1, ": hold\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_set_retry_exact(es, rc->retry);
  if (rc->ceiling >= 0)
    ck_assert_int_eq(eventsource_set_max_retry_after(es, rc->ceiling), EVENTSOURCE_OK);
  probe *p = probe_new(&c, es, NULL);
  p->policy_reconnect = 1;
  ck_assert_int_eq(eventsource_set_policy_callback(es, on_policy, p), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(r.error, EVENTSOURCE_ERR_HTTP_STATUS);
  ck_assert_int_eq(r.will_reconnect, 1);
  ck_assert_msg(r.reconnect_ms == rc->want, "%s: reconnect_ms %ld, expected %ld",
                rc->header ? rc->header : "(none)", r.reconnect_ms, rc->want);
  pthread_mutex_lock(&c.mu);
  ck_assert_int_ge(p->npolicy, 1);
  ck_assert_int_eq(p->policy_delay[0], rc->want); /* the hook saw it first */
  pthread_mutex_unlock(&c.mu);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_retry_after_http_date) {
  /* a date 120 s ahead: the delay is counted from the wall clock */
  ts_ctx c;
  ts_ctx_init(&c);
  time_t when = time(NULL) + 120;
  struct tm tm;
  gmtime_r(&when, &tm);
  char line[128];
  strftime(line, sizeof line, "Retry-After: %a, %d %b %Y %H:%M:%S GMT", &tm);
  ts_add_status(&c, 503, "Later", line, "Content-Length: 0", NULL);
  ts_add_stream(&c, 1, ": hold\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_set_retry_exact(es, 100);
  probe *p = probe_new(&c, es, NULL);
  p->policy_reconnect = 1;
  ck_assert_int_eq(eventsource_set_policy_callback(es, on_policy, p), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(r.will_reconnect, 1);
  /* at most 120 s; at least 120 s less the second cut off and the time the
   * test took (a failure bound, generous for valgrind) */
  ck_assert_msg(r.reconnect_ms <= 120000 && r.reconnect_ms > 120000 - 1000 - TS_WAIT_MS,
                "%s: reconnect_ms %ld", line, r.reconnect_ms);
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_retry_after_default_not_retried) {
  /* without a policy a 429 or 503 is still not retried: Retry-After only
   * changes the delay of a reconnection that happens */
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_status(&c, 429, "Too Many", "Retry-After: 1", NULL, "slow down");
  ts_add_stream(&c, 1, ": hold\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  probe *p = probe_new(&c, es, NULL);
  run_until_closed(&c, EVENTSOURCE_ERR_HTTP_STATUS);
  ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(r.will_reconnect, 0);
  ck_assert_int_eq(r.reconnect_ms, -1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ck_assert_str_eq(p->body, "slow down");
  ts_ctx_fini(&c);
  probe_free(p);
}
END_TEST

START_TEST(test_retry_after_not_from_a_stream) {
  /* a stream that opened and ended is no refusal: its Retry-After is not
   * used */
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  const char *hl[] = {"Content-Type: text/event-stream", "Retry-After: 30", NULL};
  ts_script_status(sc, 200, "OK", hl);
  ts_script_writes(sc, "data: x\n\n");
  ts_script_close(sc);
  ts_add_stream(&c, 1, ": hold\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_set_retry_exact(es, 100);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(r.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(r.reconnect_ms, 100);
  ts_ctx_fini(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Allocation failures                                                      */
/* ------------------------------------------------------------------------ */

/* The prepare hook (loop thread, just before the request is built): every
 * library allocation from the n-th on fails (ud: n). */
static int fail_allocs_hook(eventsource_t *es, unsigned attempt, void *ud) {
  (void)es;
  (void)attempt;
  es_alloc_fail_after((long)(intptr_t)ud);
  return 0;
}

/* Fails the n-th allocation after the prepare hook, for n = 0, 1, ... until
 * the run gets through: each failure is NOMEM (CLOSED, one error
 * notification, no crash, no leak under ASan), and among them are the
 * header storage's and the body's. */
START_TEST(test_nomem_keeping_response) {
  int saw_header = 0, saw_body = 0, done = 0;
  for (long n = 0; n < 32 && !done; n++) {
    ts_ctx c;
    ts_ctx_init(&c);
    const char *hl[] = {"Content-Type: text/plain", "X-A: 1", NULL};
    ts_script *sc = ts_server_add_script(c.srv);
    ts_script_status(sc, 500, "Oops", hl);
    ts_script_writes(sc, "an explanation");
    ts_script_close(sc);
    eventsource_t *es = ts_ctx_new_es(&c, "/");
    probe *p = probe_new(&c, es, NULL);
    ck_assert_int_eq(eventsource_set_prepare_callback(es, fail_allocs_hook, (void *)(intptr_t)n),
                     EVENTSOURCE_OK);
    ts_ctx_run(&c);
    int returned = ts_ctx_wait_run(&c, TS_WAIT_MS);
    es_alloc_fail_reset();
    ck_assert_msg(returned, "eventsource_run did not return");
    eventsource_error_t rc = ts_ctx_run_rc(&c);
    ck_assert_msg(rc == EVENTSOURCE_ERR_NOMEM || rc == EVENTSOURCE_ERR_HTTP_STATUS,
                  "n %ld: %s", n, eventsource_error_name(rc));
    ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
    ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
    ck_assert_int_eq(r.error, rc);
    ck_assert_int_eq(r.will_reconnect, 0);
    ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
    const char *msg = eventsource_last_error_message(es);
    saw_header |= strstr(msg, "keeping a response header") != NULL;
    saw_body |= strstr(msg, "keeping a response body") != NULL;
    if (rc == EVENTSOURCE_ERR_HTTP_STATUS) {
      ck_assert_str_eq(p->body, "an explanation");
      done = 1;
    }
    ts_ctx_fini(&c);
    probe_free(p);
  }
  ck_assert_msg(done, "every run failed");
  ck_assert(saw_header);
  ck_assert(saw_body);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The module itself (lib/response.h)                                       */
/* ------------------------------------------------------------------------ */

static void feed(es_response *r, const char *line) {
  ck_assert_int_eq(es_response_field(r, line, strlen(line)), 0);
}

START_TEST(test_module_bound) {
  es_response r;
  memset(&r, 0, sizeof r);
  es_response_begin(&r);
  feed(&r, "X-A: 1\r\n");
  /* a 100 KB field: dropped whole, nothing grows past the bound */
  size_t big = 100 * 1000;
  char *line = malloc(big + 16);
  ck_assert_ptr_nonnull(line);
  memcpy(line, "X-Big: ", 7);
  memset(line + 7, 'a', big);
  memcpy(line + 7 + big, "\r\n", 3);
  feed(&r, line);
  ck_assert(r.dropped);
  ck_assert_uint_le(r.hdr_cap, 4096);
  /* many fields: kept up to the bound, never past it */
  for (int i = 0; i < 2000; i++) {
    char l[128];
    snprintf(l, sizeof l, "X-Field-%d: %064d\r\n", i, i);
    feed(&r, l);
    ck_assert_uint_le(r.hdr_len, ES_RESPONSE_MAX_HEADERS);
    ck_assert_uint_le(r.hdr_cap, ES_RESPONSE_MAX_HEADERS);
  }
  /* joining a repeated field is bounded the same way */
  for (int i = 0; i < 2000; i++)
    feed(&r, "X-A: 1\r\n");
  ck_assert_uint_le(r.hdr_len, ES_RESPONSE_MAX_HEADERS);
  es_response_complete(&r);
  ck_assert_ptr_null(es_response_header(&r, "X-Big"));
  ck_assert_str_eq(es_response_header(&r, "x-field-0"),
                   "0000000000000000000000000000000000000000000000000000000000000000");
  ck_assert_ptr_null(es_response_header(&r, "X-Field-1999"));
  ck_assert_ptr_nonnull(es_response_header(&r, "X-A"));
  /* trailers (after the blank line) are not taken */
  feed(&r, "X-Trailer: t\r\n");
  ck_assert_ptr_null(es_response_header(&r, "X-Trailer"));
  /* the next request starts empty and gives the large buffer back */
  es_response_reset(&r);
  ck_assert_uint_eq(r.hdr_len, 0);
  ck_assert_uint_eq(r.hdr_cap, 0);
  ck_assert_ptr_null(es_response_header(&r, "X-A"));
  free(line);
  es_response_free(&r);
}
END_TEST

START_TEST(test_module_fields) {
  es_response r;
  memset(&r, 0, sizeof r);
  es_response_begin(&r);
  feed(&r, "X-A: 1\r\n");
  feed(&r, "  folded continuation\r\n"); /* obs-fold: ignored */
  feed(&r, "no colon here\r\n");
  feed(&r, ": no name\r\n");
  ck_assert_int_eq(es_response_field(&r, "X-Nul: a\0b\r\n", 12), 0);
  feed(&r, "X-E:\r\n");
  feed(&r, "X-E: later\r\n"); /* joined onto an empty first value: no separator */
  feed(&r, "X-A:\r\n");       /* an empty repeat adds nothing */
  feed(&r, "x-a:\t2\t\r\n");
  /* not complete yet: nothing is shown */
  ck_assert_ptr_null(es_response_header(&r, "X-A"));
  es_response_complete(&r);
  ck_assert_str_eq(es_response_header(&r, "X-A"), "1, 2");
  ck_assert_str_eq(es_response_header(&r, "x-e"), "later");
  ck_assert_ptr_null(es_response_header(&r, "X-Nul"));
  ck_assert_ptr_null(es_response_header(&r, ""));
  ck_assert_ptr_null(es_response_header(&r, NULL));
  ck_assert_ptr_null(es_response_header(NULL, "X-A"));
  /* a new status line (an interim response was followed by the real one) */
  es_response_begin(&r);
  ck_assert_ptr_null(es_response_header(&r, "X-A"));
  es_response_free(&r);
}
END_TEST

START_TEST(test_module_retry_after) {
  int64_t now = 1700000000000; /* 2023-11-14T22:13:20Z */
  long ceil = 3600000;
  ck_assert_int_eq(es_retry_after_ms(NULL, now, ceil), -1);
  ck_assert_int_eq(es_retry_after_ms("", now, ceil), -1);
  ck_assert_int_eq(es_retry_after_ms("0", now, ceil), 0);
  ck_assert_int_eq(es_retry_after_ms("120", now, ceil), 120000);
  ck_assert_int_eq(es_retry_after_ms("007", now, ceil), 7000);
  ck_assert_int_eq(es_retry_after_ms("3601", now, ceil), ceil);
  ck_assert_int_eq(es_retry_after_ms("18446744073709551616", now, ceil), ceil);
  ck_assert_int_eq(es_retry_after_ms("-1", now, ceil), -1);
  ck_assert_int_eq(es_retry_after_ms("+1", now, ceil), -1);
  ck_assert_int_eq(es_retry_after_ms("1e3", now, ceil), -1);
  ck_assert_int_eq(es_retry_after_ms("12 13", now, ceil), -1);
  ck_assert_int_eq(es_retry_after_ms("garbage", now, ceil), -1);
  ck_assert_int_eq(es_retry_after_ms("-Tue, 14 Nov 2023 22:13:30 GMT", now, ceil), -1);
  /* 10 s after now, in the three forms */
  ck_assert_int_eq(es_retry_after_ms("Tue, 14 Nov 2023 22:13:30 GMT", now, ceil), 10000);
  ck_assert_int_eq(es_retry_after_ms("Tuesday, 14-Nov-23 22:13:30 GMT", now, ceil), 10000);
  ck_assert_int_eq(es_retry_after_ms("Tue Nov 14 22:13:30 2023", now, ceil), 10000);
  /* now and before: ignored */
  ck_assert_int_eq(es_retry_after_ms("Tue, 14 Nov 2023 22:13:20 GMT", now, ceil), -1);
  ck_assert_int_eq(es_retry_after_ms("Tue, 14 Nov 2023 22:13:19 GMT", now, ceil), -1);
  ck_assert_int_eq(es_retry_after_ms("Thu, 01 Jan 1970 00:00:00 GMT", now, ceil), -1);
  /* the ceiling */
  ck_assert_int_eq(es_retry_after_ms("Wed, 15 Nov 2023 22:13:20 GMT", now, ceil), ceil);
  ck_assert_int_eq(es_retry_after_ms("Tue, 14 Nov 2023 22:13:30 GMT", now, 500), 500);
  ck_assert_int_eq(es_retry_after_ms("5", now, 0), 0);
}
END_TEST

START_TEST(test_module_body) {
  es_response r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(es_response_body(&r, "abc", 3, 5), 0);
  ck_assert_int_eq(es_response_body(&r, "de", 2, 5), 0);
  ck_assert_str_eq(r.body, "abcde");
  ck_assert_int_eq(r.body_truncated, 0);
  ck_assert_int_eq(es_response_body(&r, "f", 1, 5), 1);
  ck_assert_int_eq(r.body_truncated, 1);
  ck_assert_uint_eq(r.body_len, 5);
  ck_assert_uint_le(r.body_cap, 6);
  es_response_reset(&r);
  ck_assert_ptr_null(r.body);
  ck_assert_uint_eq(r.body_len, 0);
  es_response_free(&r);
}
END_TEST

static Suite *headers_suite(void) {
  Suite *s = suite_create("headers");
  TCase *tc;

  tc = tcase_create("headers");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_headers_on_open);
  tcase_add_test(tc, test_headers_null_event);
  tcase_add_loop_test(tc, test_headers_on_error, 0,
                      (int)(sizeof refused_status / sizeof refused_status[0]));
  tcase_add_test(tc, test_headers_after_redirect);
  tcase_add_test(tc, test_headers_interim_response);
  tcase_add_test(tc, test_headers_error_without_response);
  tcase_add_test(tc, test_headers_error_after_open);
  tcase_add_loop_test(tc, test_headers_huge, 0, 2);
  suite_add_tcase(s, tc);

  tc = tcase_create("error_body");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_error_body_json);
  tcase_add_test(tc, test_error_body_content_type);
  tcase_add_test(tc, test_error_body_gzip);
  tcase_add_loop_test(tc, test_error_body_bound, 0,
                      (int)(sizeof body_cases / sizeof body_cases[0]));
  tcase_add_test(tc, test_error_body_setter);
  tcase_add_test(tc, test_error_body_held);
  tcase_add_test(tc, test_error_body_drip);
  tcase_add_test(tc, test_error_body_reset_on_reconnect);
  suite_add_tcase(s, tc);

  tc = tcase_create("retry_after");
  tcase_set_timeout(tc, 30);
  tcase_add_loop_test(tc, test_retry_after, 0, (int)(sizeof ra_cases / sizeof ra_cases[0]));
  tcase_add_test(tc, test_retry_after_http_date);
  tcase_add_test(tc, test_retry_after_default_not_retried);
  tcase_add_test(tc, test_retry_after_not_from_a_stream);
  suite_add_tcase(s, tc);

  tc = tcase_create("nomem");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_nomem_keeping_response);
  suite_add_tcase(s, tc);

  tc = tcase_create("module");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_module_bound);
  tcase_add_test(tc, test_module_fields);
  tcase_add_test(tc, test_module_retry_after);
  tcase_add_test(tc, test_module_body);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(headers_suite(), CK_ENV); }
