/*
 * test_machine.c - the connection's state machine (lib/source.c) on an
 * explicit clock, without sockets and without a loop.
 *
 * The test plays the loop (lib/multi.c, apply()): it calls the entry points
 * of internal.h with times it chooses, checks each decision (es_next: go,
 * drop, at, easy) and does what the loop would (ES_GO_CONNECT:
 * es_source_connect()). libcurl is played too: es_source_transfer_done()
 * with the CURLcode a transfer would end with, es->tr.open = 1 and
 * es_source_opened() for a validated response, es_source_sink.bytes() for
 * the body, es->tr.last_activity for the transfer's clock. The easy handle
 * of ES_GO_ADD is never added to a curl multi: no connection is made.
 * Jitter is off everywhere, so every delay is exact.
 */
#include <check.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventsource.h"
#include "internal.h"
#include "support/ts_util.h"

#define URL "http://127.0.0.1:9/x"
/* An arbitrary origin for the test's clock (ms). */
#define T0 1000000u

/* ------------------------------------------------------------------------ */
/* The notification log, the hooks and their settings                       */
/* ------------------------------------------------------------------------ */

typedef struct rec {
  eventsource_kind_t kind;
  char type[32];
  char data[64];
  eventsource_error_t error;
  long status;
  int will_reconnect;
  long reconnect_ms;
  int curl_code;
  char message[128];
  eventsource_ready_state_t state; /* readyState seen by the listener */
} rec;

#define MAX_REC 64
#define MAX_CALLS 32

typedef struct mctx {
  rec v[MAX_REC];
  int n;
  /* eventsource_close() from the listener on the nth (1-based) record of
   * this kind (0: never) */
  int close_kind;
  int close_nth;
  int kind_seen[4];
  /* the prepare hook */
  unsigned prepare_attempt[MAX_CALLS];
  int nprepare;
  int prepare_rc;    /* what it returns */
  int prepare_close; /* it closes the source */
  /* the policy hook */
  eventsource_error_t policy_why[MAX_CALLS];
  long policy_status[MAX_CALLS];
  unsigned policy_attempt[MAX_CALLS];
  int policy_def_reconnect[MAX_CALLS];
  long policy_def_delay[MAX_CALLS];
  int npolicy;
  int policy_set_reconnect; /* -1: leave */
  int policy_change_delay;
  long policy_delay;
  int policy_close;
} mctx;

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  mctx *c = ud;
  ck_assert_int_lt(c->n, MAX_REC);
  rec *r = &c->v[c->n++];
  memset(r, 0, sizeof *r);
  r->kind = eventsource_event_kind(ev);
  size_t len;
  const char *s = eventsource_event_type(ev, &len);
  snprintf(r->type, sizeof r->type, "%.*s", (int)len, s);
  s = eventsource_event_data(ev, &len);
  snprintf(r->data, sizeof r->data, "%.*s", (int)len, s);
  r->error = eventsource_event_error(ev);
  r->status = eventsource_event_http_status(ev);
  r->will_reconnect = eventsource_event_will_reconnect(ev);
  r->reconnect_ms = eventsource_event_reconnect_ms(ev);
  r->curl_code = eventsource_event_curl_code(ev);
  snprintf(r->message, sizeof r->message, "%s", eventsource_event_message(ev));
  r->state = eventsource_ready_state(es);
  if (r->kind >= 0 && r->kind < 4 && ++c->kind_seen[r->kind] == c->close_nth &&
      (int)r->kind == c->close_kind)
    eventsource_close(es);
}

static int prepare_hook(eventsource_t *es, unsigned attempt, void *ud) {
  mctx *c = ud;
  ck_assert_int_lt(c->nprepare, MAX_CALLS);
  c->prepare_attempt[c->nprepare++] = attempt;
  if (c->prepare_close)
    eventsource_close(es);
  return c->prepare_rc;
}

static void policy_hook(eventsource_t *es, eventsource_error_t why, long status,
                        unsigned attempt, int *reconnect, long *delay_ms, void *ud) {
  mctx *c = ud;
  ck_assert_int_lt(c->npolicy, MAX_CALLS);
  int i = c->npolicy++;
  c->policy_why[i] = why;
  c->policy_status[i] = status;
  c->policy_attempt[i] = attempt;
  c->policy_def_reconnect[i] = *reconnect;
  c->policy_def_delay[i] = *delay_ms;
  if (c->policy_set_reconnect >= 0)
    *reconnect = c->policy_set_reconnect;
  if (c->policy_change_delay)
    *delay_ms = c->policy_delay;
  if (c->policy_close)
    eventsource_close(es);
}

/* ------------------------------------------------------------------------ */
/* Playing the loop and libcurl                                             */
/* ------------------------------------------------------------------------ */

static const char *go_name(es_go g) {
  switch (g) {
  case ES_GO_NONE: return "NONE";
  case ES_GO_CONNECT: return "CONNECT";
  case ES_GO_ADD: return "ADD";
  case ES_GO_TIMER: return "TIMER";
  case ES_GO_DONE: return "DONE";
  }
  return "?";
}

/* n is {go, drop, at}. */
#define expect_next(n, g, d, a)                                                    \
  do {                                                                             \
    es_next n_ = (n);                                                              \
    ck_assert_msg(n_.go == (g) && n_.drop == (d) && n_.at == (uint64_t)(a),         \
                  "next: %s drop %d at %llu; expected %s drop %d at %llu",        \
                  go_name(n_.go), n_.drop, (unsigned long long)n_.at, go_name(g), \
                  (d), (unsigned long long)(uint64_t)(a));                        \
  } while (0)

/* A source with the recording any-listener, exact delays (retry ms, no
 * jitter) and no read timeout unless the test sets one. */
static eventsource_t *m_new(mctx *c, long retry_ms) {
  memset(c, 0, sizeof *c);
  c->policy_set_reconnect = -1;
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, URL), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_any_listener(es, on_any, c, NULL), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(es, retry_ms), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_read_timeout(es, 0), EVENTSOURCE_OK);
  return es;
}

/* The loop applies ES_GO_CONNECT at now: the transfer is set up and its
 * read-timeout clock starts at now. */
static es_next m_connect(eventsource_t *es, uint64_t now) {
  es_next n = es_source_connect(es, now);
  if (n.go == ES_GO_ADD) {
    ck_assert_uint_eq(es_transfer_activity(&es->tr), now);
    ck_assert_ptr_nonnull(n.easy);
    ck_assert_ptr_eq(n.easy, es->tr.easy);
    ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CONNECTING);
  }
  return n;
}

/* ES_OP_START then the connection at now; asserts the transfer is added
 * with deadline at. */
static void m_start(eventsource_t *es, uint64_t now, uint64_t at) {
  expect_next(es_source_ops(es, ES_OP_START, now), ES_GO_CONNECT, 0, 0);
  expect_next(m_connect(es, now), ES_GO_ADD, 0, at);
}

/* The response was validated at now (as response_ready() does). */
static void m_open(eventsource_t *es, uint64_t now) {
  es->tr.open = 1;
  atomic_store(&es->tr.last_activity, now);
  ck_assert_int_eq(es_source_opened(es, now), 1);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_OPEN);
}

/* A piece of the body (the parser goes on). */
static void m_feed(eventsource_t *es, const char *s) {
  ck_assert_int_eq(es_source_sink.bytes(es, s, strlen(s)), ES_PARSER_OK);
}

/* The reconnection deadline at: the loop connects again. */
static void m_reconnect(eventsource_t *es, uint64_t at) {
  expect_next(es_source_deadline(es, at), ES_GO_CONNECT, 0, 0);
  expect_next(m_connect(es, at), ES_GO_ADD, 0,
              es->opt.read_timeout_ms > 0 ? at + (uint64_t)es->opt.read_timeout_ms : 0);
}

/* The last record is an error notification with code, will_reconnect and
 * reconnect_ms, seen in state. */
static void expect_error(const mctx *c, eventsource_error_t code, int will, long ms,
                         eventsource_ready_state_t state) {
  ck_assert_int_gt(c->n, 0);
  const rec *r = &c->v[c->n - 1];
  ck_assert_int_eq(r->kind, EVENTSOURCE_KIND_ERROR);
  ck_assert_str_eq(r->type, "error");
  ck_assert_msg(r->error == code, "error %s, expected %s", eventsource_error_name(r->error),
                eventsource_error_name(code));
  ck_assert_int_eq(r->will_reconnect, will);
  ck_assert_int_eq(r->reconnect_ms, ms);
  ck_assert_int_eq(r->state, state);
}

/* One failed attempt at now (no connection): the error notification
 * announces delay, the next deadline is now + delay. */
static void m_fail_attempt(eventsource_t *es, mctx *c, uint64_t now, long delay) {
  int before = c->n;
  expect_next(es_source_transfer_done(es, CURLE_COULDNT_CONNECT, now), ES_GO_TIMER, 0,
              now + (uint64_t)delay);
  ck_assert_int_eq(c->n, before + 1);
  expect_error(c, EVENTSOURCE_ERR_NETWORK, 1, delay, EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(c->v[c->n - 1].curl_code, CURLE_COULDNT_CONNECT);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(es->phase, ES_WAITING);
}

/* A failed attempt at *t announcing delay, then the reconnection when it is
 * due (*t moves to it). */
static void m_fail_then_reconnect(eventsource_t *es, mctx *c, uint64_t *t, long delay) {
  m_fail_attempt(es, c, *t, delay);
  *t += (uint64_t)delay;
  m_reconnect(es, *t);
}

/* ------------------------------------------------------------------------ */
/* Starting                                                                 */
/* ------------------------------------------------------------------------ */

START_TEST(test_start_read_timeout_deadline) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_read_timeout(es, 5000), EVENTSOURCE_OK);
  ck_assert(es_source_can_join(es));
  es_source_joined(es);
  ck_assert_int_eq(es->phase, ES_IDLE);
  m_start(es, T0, T0 + 5000);
  ck_assert_int_eq(es->phase, ES_TRANSFER);
  ck_assert_int_eq(c.n, 0); /* no notification yet */
  /* A second start while the transfer runs does nothing. */
  expect_next(es_source_ops(es, ES_OP_START, T0 + 1), ES_GO_NONE, 0, 0);
  ck_assert_int_eq(es->phase, ES_TRANSFER);
  eventsource_free(es);
}
END_TEST

START_TEST(test_start_no_read_timeout) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  m_start(es, T0, 0); /* read timeout 0: no deadline */
  /* A stray deadline while the transfer runs changes nothing. */
  expect_next(es_source_deadline(es, T0 + 999999), ES_GO_TIMER, 0, 0);
  ck_assert_int_eq(es->phase, ES_TRANSFER);
  ck_assert_int_eq(c.n, 0);
  eventsource_free(es);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Backoff                                                                  */
/* ------------------------------------------------------------------------ */

START_TEST(test_backoff_exponential) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_max_retry(es, 8000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_prepare_callback(es, prepare_hook, &c), EVENTSOURCE_OK);
  const long want[] = {1000, 2000, 4000, 8000, 8000, 8000};
  uint64_t t = T0;
  m_start(es, t, 0);
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    t += 10;
    m_fail_attempt(es, &c, t, want[i]);
    ck_assert_uint_eq(es->attempt, i + 1);
    t += (uint64_t)want[i];
    m_reconnect(es, t);
  }
  ck_assert_int_eq(c.n, 6);
  /* The prepare hook counted the attempts: 1 for the first connection. */
  ck_assert_int_eq(c.nprepare, 7);
  for (int i = 0; i < 7; i++)
    ck_assert_uint_eq(c.prepare_attempt[i], (unsigned)i + 1);
  eventsource_free(es);
}
END_TEST

/* Issue 10: a reconnection time of 0 must not spin. */
START_TEST(test_retry_zero_floor) {
  mctx c;
  eventsource_t *es = m_new(&c, 0);
  const long want[] = {100, 200, 400, 800};
  uint64_t t = T0;
  m_start(es, t, 0);
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    m_fail_attempt(es, &c, t, want[i]);
    t += (uint64_t)want[i];
    m_reconnect(es, t);
  }
  eventsource_free(es);

  /* And with a maximum of 0 too: the floor every time. */
  es = m_new(&c, 0);
  ck_assert_int_eq(eventsource_set_max_retry(es, 0), EVENTSOURCE_OK);
  t = T0;
  m_start(es, t, 0);
  for (int i = 0; i < 4; i++) {
    m_fail_attempt(es, &c, t, EVENTSOURCE_MIN_RECONNECT_MS);
    t += EVENTSOURCE_MIN_RECONNECT_MS;
    m_reconnect(es, t);
  }
  eventsource_free(es);
}
END_TEST

/* Issue 10 from the server's side: "retry: 0", then events, then the end of
 * the stream, over and over: the floor each time, never 0, never growing. */
START_TEST(test_server_retry_zero_floor) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  uint64_t t = T0;
  m_start(es, t, 0);
  for (int i = 0; i < 5; i++) {
    m_open(es, t + 1);
    m_feed(es, "retry: 0\ndata: x\n\n");
    ck_assert_int_eq(es->retry_ms, 0);
    t += 2;
    expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0,
                t + EVENTSOURCE_MIN_RECONNECT_MS);
    expect_error(&c, EVENTSOURCE_ERR_EOF, 1, EVENTSOURCE_MIN_RECONNECT_MS,
                 EVENTSOURCE_CONNECTING);
    t += EVENTSOURCE_MIN_RECONNECT_MS;
    m_reconnect(es, t);
  }
  ck_assert_int_eq(c.n, 15); /* open, message, error, five times */
  eventsource_free(es);
}
END_TEST

/* A connection that opened and delivered an event, then ended cleanly, was
 * a success: the reconnection time, and the count starts again. */
START_TEST(test_eof_after_event_is_success) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  uint64_t t = T0;
  m_start(es, t, 0);
  m_fail_then_reconnect(es, &c, &t, 1000);
  m_fail_then_reconnect(es, &c, &t, 2000);
  c.n = 0;
  m_open(es, t + 5);
  m_feed(es, "id: 7\ndata: x\n\n");
  t += 10;
  expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0, t + 1000);
  ck_assert_int_eq(c.n, 3);
  ck_assert_int_eq(c.v[0].kind, EVENTSOURCE_KIND_OPEN);
  ck_assert_str_eq(c.v[0].type, "open");
  ck_assert_int_eq(c.v[0].state, EVENTSOURCE_OPEN);
  ck_assert_int_eq(c.v[1].kind, EVENTSOURCE_KIND_MESSAGE);
  ck_assert_str_eq(c.v[1].type, "message");
  ck_assert_str_eq(c.v[1].data, "x");
  ck_assert_int_eq(c.v[1].state, EVENTSOURCE_OPEN);
  expect_error(&c, EVENTSOURCE_ERR_EOF, 1, 1000, EVENTSOURCE_CONNECTING);
  ck_assert_uint_eq(es->attempt, 1);
  ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_ERR_EOF);
  /* The next failure counts from there: 2000, not 8000. */
  t += 1000;
  m_reconnect(es, t);
  m_fail_attempt(es, &c, t, 2000);
  eventsource_free(es);
}
END_TEST

/* Opened, but no event (a comment and a retry: field are not events), then
 * the end: a failure, the backoff grows. */
START_TEST(test_eof_without_event_grows) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  uint64_t t = T0;
  m_start(es, t, 0);
  m_fail_then_reconnect(es, &c, &t, 1000);
  m_open(es, t + 1);
  m_feed(es, ": hello\n\nretry: 1000\n\n");
  t += 2;
  expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0, t + 2000);
  expect_error(&c, EVENTSOURCE_ERR_EOF, 1, 2000, EVENTSOURCE_CONNECTING);
  ck_assert_uint_eq(es->attempt, 2);
  /* An event cut off by the end of the stream is not dispatched either. */
  t += 2000;
  m_reconnect(es, t);
  m_open(es, t + 1);
  m_feed(es, "data: cut");
  t += 2;
  expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0, t + 4000);
  for (int i = 0; i < c.n; i++)
    ck_assert_int_ne(c.v[i].kind, EVENTSOURCE_KIND_MESSAGE);
  eventsource_free(es);
}
END_TEST

/* A connection open at least backoff_reset ms resets the backoff, even
 * without an event; one ms less does not. */
START_TEST(test_backoff_reset_time) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_backoff_reset(es, 10000), EVENTSOURCE_OK);
  uint64_t t = T0;
  m_start(es, t, 0);
  m_fail_then_reconnect(es, &c, &t, 1000);
  m_fail_then_reconnect(es, &c, &t, 2000);
  /* open for 9999 ms: attempt 3 */
  m_open(es, t);
  t += 9999;
  expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0, t + 4000);
  expect_error(&c, EVENTSOURCE_ERR_EOF, 1, 4000, EVENTSOURCE_CONNECTING);
  t += 4000;
  m_reconnect(es, t);
  /* open for 10000 ms: back to the reconnection time, even though the
   * connection then broke (a network error, not the end) */
  m_open(es, t);
  t += 10000;
  expect_next(es_source_transfer_done(es, CURLE_RECV_ERROR, t), ES_GO_TIMER, 0, t + 1000);
  expect_error(&c, EVENTSOURCE_ERR_NETWORK, 1, 1000, EVENTSOURCE_CONNECTING);
  ck_assert_uint_eq(es->attempt, 1);
  eventsource_free(es);
}
END_TEST

/* retry: from the server sets the reconnection time, as sent: max-retry
 * bounds the backoff's growth, not the server's value (issue 13). */
START_TEST(test_server_retry_field) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_max_retry(es, 20000), EVENTSOURCE_OK);
  uint64_t t = T0;
  m_start(es, t, 0);
  m_open(es, t + 1);
  m_feed(es, "retry: 5000\ndata: x\n\n");
  t += 2;
  expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0, t + 5000);
  expect_error(&c, EVENTSOURCE_ERR_EOF, 1, 5000, EVENTSOURCE_CONNECTING);
  t += 5000;
  m_reconnect(es, t);
  /* it stays for the failures that follow, and backs off from there */
  m_fail_then_reconnect(es, &c, &t, 10000);
  m_open(es, t + 1);
  m_feed(es, "retry: 50000\n");
  ck_assert_int_eq(es->retry_ms, 50000); /* over max-retry: kept as sent */
  m_feed(es, "data: y\n\n");
  t += 2;
  expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0, t + 50000);
  expect_error(&c, EVENTSOURCE_ERR_EOF, 1, 50000, EVENTSOURCE_CONNECTING);
  /* Failures after it do not grow it (it is over max-retry already). */
  t += 50000;
  m_reconnect(es, t);
  m_fail_then_reconnect(es, &c, &t, 50000);
  m_fail_then_reconnect(es, &c, &t, 50000);
  ck_assert_uint_eq(es->attempt, 3);
  /* An invalid retry: is ignored. */
  m_open(es, t + 1);
  m_feed(es, "retry: 12x\nretry: -5\ndata: z\n\n");
  t += 2;
  expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0, t + 50000);
  eventsource_free(es);
}
END_TEST

/* Issue 13: retry: 60000 over the default max-retry (30000) is waited
 * exactly 60000 ms after a clean end, jitter on (jitter never takes a delay
 * over the larger of max-retry and the reconnection time). */
START_TEST(test_server_retry_over_max_retry_exact) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_jitter(es, 1), EVENTSOURCE_OK);
  ck_assert_int_eq(es->opt.max_retry_ms, EVENTSOURCE_DEFAULT_MAX_RETRY_MS);
  uint64_t t = T0;
  m_start(es, t, 0);
  for (int i = 0; i < 20; i++) {
    m_open(es, t + 1);
    m_feed(es, "retry: 60000\ndata: x\n\n");
    t += 2;
    expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0, t + 60000);
    expect_error(&c, EVENTSOURCE_ERR_EOF, 1, 60000, EVENTSOURCE_CONNECTING);
    t += 60000;
    m_reconnect(es, t);
  }
  eventsource_free(es);
}
END_TEST

/* The ceiling on a server's retry: 24 h by default, settable; it does not
 * apply to eventsource_set_retry(). */
START_TEST(test_server_retry_ceiling) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(es->opt.max_server_retry_ms, EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS);
  ck_assert_int_eq(EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS, 86400000L);
  uint64_t t = T0;
  m_start(es, t, 0);
  m_open(es, t + 1);
  m_feed(es, "retry: 99999999999999999999999\ndata: x\n\n");
  ck_assert_int_eq(es->retry_ms, EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS);
  t += 2;
  expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0,
              t + EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS);
  expect_error(&c, EVENTSOURCE_ERR_EOF, 1, EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS,
               EVENTSOURCE_CONNECTING);
  /* A lower ceiling, from the next retry: on (the old capping at 30 s). */
  ck_assert_int_eq(eventsource_set_max_server_retry(es, 30000), EVENTSOURCE_OK);
  t += EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS;
  m_reconnect(es, t);
  m_open(es, t + 1);
  m_feed(es, "retry: 45000\ndata: y\n\n");
  ck_assert_int_eq(es->retry_ms, 30000);
  m_feed(es, "retry: 29999\n");
  ck_assert_int_eq(es->retry_ms, 29999);
  t += 2;
  expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0, t + 29999);
  /* The setter's range is that of every time option. */
  ck_assert_int_eq(eventsource_set_max_server_retry(es, -1), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_server_retry(es, ES_MAX_DELAY_MS + 1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_max_server_retry(NULL, 5), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(es->opt.max_server_retry_ms, 30000);
  ck_assert_int_eq(eventsource_set_max_server_retry(es, 0), EVENTSOURCE_OK);
  /* The user's reconnection time is not the server's: not bounded by it. */
  ck_assert_int_eq(eventsource_set_retry(es, 40000), EVENTSOURCE_OK);
  ck_assert_int_eq(es->retry_ms, 40000);
  eventsource_free(es);
}
END_TEST

/* MCP Streamable HTTP resumability (SEP-1699): the server sends retry:, a
 * priming event (an id and empty data) and closes on purpose, over and
 * over. Each connection delivered an event: a success, so the delay stays
 * the server's reconnection time and the attempt count stays 1. */
START_TEST(test_mcp_retry_then_close_no_growth) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  uint64_t t = T0;
  m_start(es, t, 0);
  m_fail_then_reconnect(es, &c, &t, 1000); /* one failure first */
  for (int i = 0; i < 6; i++) {
    char buf[64];
    m_open(es, t + 1);
    snprintf(buf, sizeof buf, "retry: 2500\nid: %d\ndata:\n\n", i + 1);
    m_feed(es, buf);
    ck_assert_int_eq(c.v[c.n - 1].kind, EVENTSOURCE_KIND_MESSAGE);
    ck_assert_str_eq(c.v[c.n - 1].data, "");
    t += 2;
    expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0, t + 2500);
    expect_error(&c, EVENTSOURCE_ERR_EOF, 1, 2500, EVENTSOURCE_CONNECTING);
    ck_assert_uint_eq(es->attempt, 1);
    t += 2500;
    m_reconnect(es, t);
  }
  /* A failure then counts from the server's time: 5000, not more. */
  m_fail_attempt(es, &c, t, 5000);
  eventsource_free(es);
}
END_TEST

/* reconnect_on_end 0: a clean end closes the source (EOF, will_reconnect 0,
 * CLOSED); no second request. */
START_TEST(test_reconnect_on_end_off) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(es->opt.reconnect_on_end, 1); /* the spec's default */
  ck_assert_int_eq(eventsource_set_reconnect_on_end(NULL, 0), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_reconnect_on_end(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_prepare_callback(es, prepare_hook, &c), EVENTSOURCE_OK);
  m_start(es, T0, 0);
  m_open(es, T0 + 1);
  m_feed(es, "retry: 5\ndata: answer\n\n");
  expect_next(es_source_transfer_done(es, CURLE_OK, T0 + 2), ES_GO_DONE, 1, 0);
  ck_assert_int_eq(c.n, 3);
  expect_error(&c, EVENTSOURCE_ERR_EOF, 0, -1, EVENTSOURCE_CLOSED);
  ck_assert_ptr_nonnull(strstr(c.v[2].message, "reconnect on end is off"));
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_ERR_EOF);
  ck_assert(!es_source_can_join(es));
  expect_next(es_source_deadline(es, T0 + 999999), ES_GO_TIMER, 0, 0);
  expect_next(es_source_ops(es, ES_OP_START, T0 + 999999), ES_GO_DONE, 1, 0);
  ck_assert_int_eq(c.nprepare, 1); /* one request */
  ck_assert_int_eq(c.n, 3);
  eventsource_free(es);
}
END_TEST

/* reconnect_on_end 0 still reconnects after failures: a network error
 * mid-stream, a read timeout, a failed attempt; a policy callback sees the
 * clean end with reconnect 0 and may reconnect anyway. */
START_TEST(test_reconnect_on_end_off_failures_retry) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_reconnect_on_end(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_read_timeout(es, 5000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c), EVENTSOURCE_OK);
  uint64_t t = T0;
  m_start(es, t, t + 5000);
  m_open(es, t + 1);
  m_feed(es, "data: a\n\n");
  t += 2;
  expect_next(es_source_transfer_done(es, CURLE_RECV_ERROR, t), ES_GO_TIMER, 0, t + 1000);
  expect_error(&c, EVENTSOURCE_ERR_NETWORK, 1, 1000, EVENTSOURCE_CONNECTING);
  t += 1000;
  m_reconnect(es, t);
  m_fail_then_reconnect(es, &c, &t, 2000);
  m_open(es, t + 1);
  atomic_store(&es->tr.last_activity, t + 1);
  expect_next(es_source_deadline(es, t + 5001), ES_GO_TIMER, 1, t + 5001 + 4000);
  expect_error(&c, EVENTSOURCE_ERR_READ_TIMEOUT, 1, 4000, EVENTSOURCE_CONNECTING);
  t += 5001 + 4000;
  m_reconnect(es, t);
  ck_assert_int_eq(c.npolicy, 3);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(c.policy_def_reconnect[i], 1);
  /* The clean end: the policy's default is 0; it reconnects anyway. */
  c.policy_set_reconnect = 1;
  m_open(es, t + 1);
  m_feed(es, "data: b\n\n");
  t += 2;
  expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_TIMER, 0, t + 1000);
  ck_assert_int_eq(c.npolicy, 4);
  ck_assert_int_eq(c.policy_why[3], EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(c.policy_def_reconnect[3], 0);
  expect_error(&c, EVENTSOURCE_ERR_EOF, 1, 1000, EVENTSOURCE_CONNECTING);
  /* Left to its default, the end is final, and not a POLICY stop. */
  c.policy_set_reconnect = -1;
  t += 1000;
  m_reconnect(es, t);
  m_open(es, t + 1);
  t += 2;
  expect_next(es_source_transfer_done(es, CURLE_OK, t), ES_GO_DONE, 1, 0);
  expect_error(&c, EVENTSOURCE_ERR_EOF, 0, -1, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_EOF);
  eventsource_free(es);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Deadlines                                                                */
/* ------------------------------------------------------------------------ */

START_TEST(test_deadline_while_waiting) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_read_timeout(es, 7000), EVENTSOURCE_OK);
  m_start(es, T0, T0 + 7000);
  expect_next(es_source_transfer_done(es, CURLE_COULDNT_CONNECT, T0 + 5), ES_GO_TIMER, 0,
              T0 + 1005);
  ck_assert_int_eq(es->phase, ES_WAITING);
  /* The read timeout plays no part while waiting. */
  expect_next(es_source_deadline(es, T0 + 1005), ES_GO_CONNECT, 0, 0);
  /* The new attempt gets its own read-timeout deadline. */
  expect_next(m_connect(es, T0 + 1006), ES_GO_ADD, 0, T0 + 1006 + 7000);
  ck_assert_int_eq(es->phase, ES_TRANSFER);
  ck_assert_int_eq(c.n, 1);
  eventsource_free(es);
}
END_TEST

/* The read timeout on an open stream: data that came in moves the deadline;
 * silence past it ends the connection (drop) and reconnects. */
START_TEST(test_read_timeout_open) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_read_timeout(es, 5000), EVENTSOURCE_OK);
  m_start(es, T0, T0 + 5000);
  m_open(es, T0 + 500);
  m_feed(es, "data: x\n\n");
  atomic_store(&es->tr.last_activity, T0 + 3000);
  /* not due: wait until 5000 ms after the last byte */
  expect_next(es_source_deadline(es, T0 + 5000), ES_GO_TIMER, 0, T0 + 8000);
  ck_assert_int_eq(c.n, 2);
  ck_assert_int_eq(es->phase, ES_OPEN);
  expect_next(es_source_deadline(es, T0 + 7999), ES_GO_TIMER, 0, T0 + 8000);
  /* due: READ_TIMEOUT, the transfer dropped, reconnect after the
   * reconnection time (an event was delivered: a success) */
  expect_next(es_source_deadline(es, T0 + 8000), ES_GO_TIMER, 1, T0 + 9000);
  ck_assert_int_eq(c.n, 3);
  expect_error(&c, EVENTSOURCE_ERR_READ_TIMEOUT, 1, 1000, EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_ERR_READ_TIMEOUT);
  ck_assert_int_eq(es->phase, ES_WAITING);
  m_reconnect(es, T0 + 9000);
  eventsource_free(es);
}
END_TEST

/* A server that accepts and never answers: the read timeout bounds the wait
 * for the headers, and counts as a failure. */
START_TEST(test_read_timeout_before_open) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_read_timeout(es, 5000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c), EVENTSOURCE_OK);
  uint64_t t = T0;
  m_start(es, t, t + 5000);
  expect_next(es_source_deadline(es, t + 5000), ES_GO_TIMER, 1, t + 6000);
  expect_error(&c, EVENTSOURCE_ERR_READ_TIMEOUT, 1, 1000, EVENTSOURCE_CONNECTING);
  t += 6000;
  m_reconnect(es, t);
  expect_next(es_source_deadline(es, t + 5000), ES_GO_TIMER, 1, t + 5000 + 2000);
  expect_error(&c, EVENTSOURCE_ERR_READ_TIMEOUT, 1, 2000, EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(c.npolicy, 2);
  ck_assert_int_eq(c.policy_why[1], EVENTSOURCE_ERR_READ_TIMEOUT);
  ck_assert_uint_eq(c.policy_attempt[1], 2);
  eventsource_free(es);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The policy hook                                                          */
/* ------------------------------------------------------------------------ */

START_TEST(test_policy_stops) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c), EVENTSOURCE_OK);
  m_start(es, T0, 0);
  m_fail_attempt(es, &c, T0 + 1, 1000);
  m_reconnect(es, T0 + 1001);
  c.policy_set_reconnect = 0;
  expect_next(es_source_transfer_done(es, CURLE_COULDNT_CONNECT, T0 + 1002), ES_GO_DONE, 1, 0);
  ck_assert_int_eq(c.npolicy, 2);
  ck_assert_int_eq(c.policy_why[1], EVENTSOURCE_ERR_NETWORK);
  ck_assert_int_eq(c.policy_status[1], 0);
  ck_assert_uint_eq(c.policy_attempt[1], 2);
  ck_assert_int_eq(c.policy_def_reconnect[1], 1);
  ck_assert_int_eq(c.policy_def_delay[1], 2000);
  /* CLOSED before the notification, which carries why; the source's
   * reason is POLICY (the spec would have reconnected). */
  expect_error(&c, EVENTSOURCE_ERR_NETWORK, 0, -1, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_POLICY);
  ck_assert(!es_source_can_join(es));
  /* Nothing more happens. */
  int n = c.n;
  expect_next(es_source_deadline(es, T0 + 999999), ES_GO_TIMER, 0, 0);
  expect_next(es_source_ops(es, ES_OP_START, T0 + 999999), ES_GO_DONE, 1, 0);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_POLICY);
  ck_assert_int_eq(c.n, n);
  eventsource_free(es);
}
END_TEST

START_TEST(test_policy_changes_delay) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c), EVENTSOURCE_OK);
  c.policy_change_delay = 1;
  uint64_t t = T0;
  m_start(es, t, 0);
  const long set[] = {50, 7777, -5, ES_MAX_DELAY_MS + 1, 0};
  const long want[] = {50, 7777, 0, ES_MAX_DELAY_MS, 0};
  for (int i = 0; i < 5; i++) {
    c.policy_delay = set[i];
    m_fail_attempt(es, &c, t, want[i]);
    ck_assert_int_eq(c.policy_def_delay[i], 1000L << i); /* the default grew */
    ck_assert_uint_eq(c.policy_attempt[i], (unsigned)i + 1);
    t += (uint64_t)want[i];
    m_reconnect(es, t);
  }
  eventsource_free(es);
}
END_TEST

/* The policy may retry what the spec would not (a 503), and stop it. */
START_TEST(test_policy_permanent) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c), EVENTSOURCE_OK);
  c.policy_set_reconnect = 1;
  m_start(es, T0, 0);
  /* what refuse() does with a 503 response */
  es->tr.fail = EVENTSOURCE_ERR_HTTP_STATUS;
  es_set_error(es, EVENTSOURCE_ERR_HTTP_STATUS, 503, 0, "HTTP status 503 (expected 200)");
  expect_next(es_source_transfer_done(es, CURLE_WRITE_ERROR, T0 + 1), ES_GO_TIMER, 0,
              T0 + 1001);
  ck_assert_int_eq(c.policy_why[0], EVENTSOURCE_ERR_HTTP_STATUS);
  ck_assert_int_eq(c.policy_status[0], 503);
  ck_assert_int_eq(c.policy_def_reconnect[0], 0);
  expect_error(&c, EVENTSOURCE_ERR_HTTP_STATUS, 1, 1000, EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(c.v[c.n - 1].status, 503);
  m_reconnect(es, T0 + 1001);
  /* a permanent failure stopped by the policy keeps its own reason */
  c.policy_set_reconnect = 0;
  es->tr.fail = EVENTSOURCE_ERR_CONTENT_TYPE;
  es_set_error(es, EVENTSOURCE_ERR_CONTENT_TYPE, 200, 0, "Content-Type is not text/event-stream");
  expect_next(es_source_transfer_done(es, CURLE_WRITE_ERROR, T0 + 1002), ES_GO_DONE, 1, 0);
  expect_error(&c, EVENTSOURCE_ERR_CONTENT_TYPE, 0, -1, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_CONTENT_TYPE);
  eventsource_free(es);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Permanent failures                                                       */
/* ------------------------------------------------------------------------ */

START_TEST(test_permanent_failure) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_read_timeout(es, 5000), EVENTSOURCE_OK);
  m_start(es, T0, T0 + 5000);
  /* the response was refused in the header callback (refuse()) */
  es->tr.fail = EVENTSOURCE_ERR_HTTP_STATUS;
  es_set_error(es, EVENTSOURCE_ERR_HTTP_STATUS, 404, 0, "HTTP status 404 (expected 200)");
  expect_next(es_source_transfer_done(es, CURLE_WRITE_ERROR, T0 + 3), ES_GO_DONE, 1, 0);
  ck_assert_int_eq(c.n, 1);
  expect_error(&c, EVENTSOURCE_ERR_HTTP_STATUS, 0, -1, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(c.v[0].status, 404);
  ck_assert_str_eq(c.v[0].message, "HTTP status 404 (expected 200)");
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(es->phase, ES_DONE);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_HTTP_STATUS);
  ck_assert(!es_source_can_join(es));
  es_source_left(es);
  ck_assert_int_eq(es->phase, ES_DONE);
  /* no reconnection, no read timeout */
  expect_next(es_source_deadline(es, T0 + 100000), ES_GO_TIMER, 0, 0);
  ck_assert_int_eq(c.n, 1);
  eventsource_free(es);

  /* A transfer that finished without a response that could be validated
   * (a 204, say): HTTP_STATUS. */
  es = m_new(&c, 1000);
  m_start(es, T0, 0);
  es->tr.resp_status = 204;
  expect_next(es_source_transfer_done(es, CURLE_OK, T0 + 3), ES_GO_DONE, 1, 0);
  expect_error(&c, EVENTSOURCE_ERR_HTTP_STATUS, 0, -1, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(c.v[0].status, 204);
  eventsource_free(es);

  /* An unusable URL (libcurl's verdict): URL, not retried. */
  es = m_new(&c, 1000);
  m_start(es, T0, 0);
  expect_next(es_source_transfer_done(es, CURLE_URL_MALFORMAT, T0 + 3), ES_GO_DONE, 1, 0);
  expect_error(&c, EVENTSOURCE_ERR_URL, 0, -1, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_URL);
  eventsource_free(es);
}
END_TEST

START_TEST(test_add_failed) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  m_start(es, T0, 0);
  expect_next(es_source_add_failed(es, T0), ES_GO_DONE, 1, 0);
  expect_error(&c, EVENTSOURCE_ERR_CURL, 0, -1, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_CURL);
  eventsource_free(es);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Requests from the user: close, restart, fail                             */
/* ------------------------------------------------------------------------ */

START_TEST(test_op_close) {
  /* in each phase: transferring, open, waiting */
  for (int phase = 0; phase < 3; phase++) {
    mctx c;
    eventsource_t *es = m_new(&c, 1000);
    ck_assert_int_eq(eventsource_set_read_timeout(es, 5000), EVENTSOURCE_OK);
    m_start(es, T0, T0 + 5000);
    if (phase == 1)
      m_open(es, T0 + 1);
    if (phase == 2)
      m_fail_attempt(es, &c, T0 + 1, 1000);
    int n = c.n;
    expect_next(es_source_ops(es, ES_OP_CLOSE, T0 + 2), ES_GO_DONE, 1, 0);
    ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
    ck_assert_int_eq(es->phase, ES_DONE);
    ck_assert_int_eq(es->close_reason, EVENTSOURCE_OK);
    ck_assert_int_eq(c.n, n); /* no notification */
    ck_assert(!es_source_can_join(es));
    /* whatever comes later does nothing */
    expect_next(es_source_transfer_done(es, CURLE_OK, T0 + 3), ES_GO_NONE, 0, 0);
    expect_next(es_source_deadline(es, T0 + 100000), ES_GO_TIMER, 0, 0);
    expect_next(es_source_ops(es, ES_OP_RESTART, T0 + 4), ES_GO_DONE, 1, 0);
    ck_assert_int_eq(c.n, n);
    ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
    eventsource_free(es);
  }
}
END_TEST

START_TEST(test_op_restart) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_read_timeout(es, 5000), EVENTSOURCE_OK);
  m_start(es, T0, T0 + 5000);
  m_open(es, T0 + 1);
  m_feed(es, "data: a\n\ndata: cut-");
  ck_assert_int_eq(c.n, 2);
  /* restart: drop the transfer, connect at once, no error, no backoff */
  expect_next(es_source_ops(es, ES_OP_RESTART, T0 + 2), ES_GO_CONNECT, 1, 0);
  ck_assert_int_eq(c.n, 2);
  expect_next(m_connect(es, T0 + 2), ES_GO_ADD, 0, T0 + 5002);
  ck_assert_int_eq(es->phase, ES_TRANSFER);
  /* the half event of the old stream is gone */
  m_open(es, T0 + 3);
  m_feed(es, "data: b\n\n");
  ck_assert_int_eq(c.n, 4);
  ck_assert_int_eq(c.v[2].kind, EVENTSOURCE_KIND_OPEN);
  ck_assert_str_eq(c.v[3].data, "b");
  for (int i = 0; i < c.n; i++)
    ck_assert_int_ne(c.v[i].kind, EVENTSOURCE_KIND_ERROR);

  /* restart while waiting: connect now, the reconnection deadline dropped */
  expect_next(es_source_transfer_done(es, CURLE_RECV_ERROR, T0 + 4), ES_GO_TIMER, 0, T0 + 1004);
  expect_next(es_source_ops(es, ES_OP_RESTART, T0 + 5), ES_GO_CONNECT, 1, 0);
  expect_next(m_connect(es, T0 + 5), ES_GO_ADD, 0, T0 + 5005);

  /* a transfer that ends while a restart is queued: the restart takes over */
  atomic_fetch_or(&es->ops, ES_OP_RESTART);
  int n = c.n;
  expect_next(es_source_transfer_done(es, CURLE_RECV_ERROR, T0 + 6), ES_GO_NONE, 0, 0);
  ck_assert_int_eq(c.n, n);
  unsigned ops = atomic_exchange(&es->ops, 0);
  expect_next(es_source_ops(es, ops, T0 + 6), ES_GO_CONNECT, 1, 0);
  expect_next(m_connect(es, T0 + 6), ES_GO_ADD, 0, T0 + 5006);
  ck_assert_int_eq(c.n, n);
  eventsource_free(es);
}
END_TEST

/* A restart ends a stream that was a success: the backoff starts over, and
 * the prepare hook counts attempts from 1 again. */
START_TEST(test_restart_after_success) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_max_retry(es, 60000), EVENTSOURCE_OK);
  m_start(es, T0, 0);
  m_fail_attempt(es, &c, T0 + 1, 1000);
  m_reconnect(es, T0 + 1001);
  m_fail_attempt(es, &c, T0 + 1002, 2000);
  m_reconnect(es, T0 + 3002);
  m_open(es, T0 + 3003);
  m_feed(es, "data: x\n\n");
  expect_next(es_source_ops(es, ES_OP_RESTART, T0 + 3004), ES_GO_CONNECT, 1, 0);
  ck_assert_uint_eq(es->attempt, 0);
  expect_next(m_connect(es, T0 + 3004), ES_GO_ADD, 0, 0);
  m_fail_attempt(es, &c, T0 + 3005, 1000);

  /* a restart of a stream that delivered nothing keeps the count */
  m_reconnect(es, T0 + 4005);
  m_open(es, T0 + 4006);
  expect_next(es_source_ops(es, ES_OP_RESTART, T0 + 4007), ES_GO_CONNECT, 1, 0);
  ck_assert_uint_eq(es->attempt, 1);
  expect_next(m_connect(es, T0 + 4007), ES_GO_ADD, 0, 0);
  m_fail_attempt(es, &c, T0 + 4008, 2000);
  eventsource_free(es);
}
END_TEST

START_TEST(test_op_fail) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c), EVENTSOURCE_OK);
  m_start(es, T0, 0);
  m_open(es, T0 + 1);
  /* a descriptor that could not be watched: the first failure counts */
  ck_assert_int_eq(es_source_note_failure(es, EVENTSOURCE_ERR_SYSTEM, "epoll_ctl failed"), 1);
  ck_assert_int_eq(es_source_note_failure(es, EVENTSOURCE_ERR_NOMEM, "second"), 0);
  expect_next(es_source_ops(es, ES_OP_FAIL, T0 + 2), ES_GO_DONE, 1, 0);
  ck_assert_int_eq(c.n, 2);
  expect_error(&c, EVENTSOURCE_ERR_SYSTEM, 0, -1, EVENTSOURCE_CLOSED);
  ck_assert_str_eq(c.v[1].message, "epoll_ctl failed");
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_SYSTEM);
  ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_ERR_SYSTEM);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  /* the failure of the connection is final: nothing after it */
  expect_next(es_source_ops(es, ES_OP_FAIL, T0 + 3), ES_GO_DONE, 1, 0);
  expect_next(es_source_transfer_done(es, CURLE_RECV_ERROR, T0 + 3), ES_GO_NONE, 0, 0);
  ck_assert_int_eq(c.n, 2);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_SYSTEM);
  eventsource_free(es);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The prepare hook                                                         */
/* ------------------------------------------------------------------------ */

START_TEST(test_prepare_refuses) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_prepare_callback(es, prepare_hook, &c), EVENTSOURCE_OK);
  m_start(es, T0, 0);
  m_fail_attempt(es, &c, T0 + 1, 1000);
  c.prepare_rc = 3;
  expect_next(es_source_deadline(es, T0 + 1001), ES_GO_CONNECT, 0, 0);
  expect_next(es_source_connect(es, T0 + 1001), ES_GO_DONE, 1, 0);
  ck_assert_int_eq(c.nprepare, 2);
  ck_assert_uint_eq(c.prepare_attempt[1], 2);
  expect_error(&c, EVENTSOURCE_ERR_CALLBACK, 0, -1, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_CALLBACK);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  eventsource_free(es);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* eventsource_close() from a listener or a hook (the source in no multi:   */
/* the close is applied at once; then the loop would apply ES_OP_CLOSE)    */
/* ------------------------------------------------------------------------ */

/* The queued close, as the loop applies it after the step. */
static void m_apply_close(eventsource_t *es, uint64_t now) {
  expect_next(es_source_ops(es, ES_OP_CLOSE, now), ES_GO_DONE, 1, 0);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_OK);
}

START_TEST(test_close_in_error_listener) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  c.close_kind = EVENTSOURCE_KIND_ERROR;
  c.close_nth = 1;
  m_start(es, T0, 0);
  /* The reconnect notification: the listener closes, so no reconnection
   * is scheduled (the queued close follows). */
  es_next n = es_source_transfer_done(es, CURLE_COULDNT_CONNECT, T0 + 1);
  ck_assert_msg(n.go == ES_GO_NONE, "next: %s", go_name(n.go));
  ck_assert_int_eq(c.n, 1);
  ck_assert_int_eq(c.v[0].will_reconnect, 1);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(es->phase, ES_DONE);
  /* the deadline, if the loop set one, does not reconnect */
  expect_next(es_source_deadline(es, T0 + 1001), ES_GO_TIMER, 0, 0);
  m_apply_close(es, T0 + 1001);
  ck_assert_int_eq(c.n, 1);
  eventsource_free(es);
}
END_TEST

START_TEST(test_close_in_open_listener) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  c.close_kind = EVENTSOURCE_KIND_OPEN;
  c.close_nth = 1;
  m_start(es, T0, 0);
  es->tr.open = 1;
  ck_assert_int_eq(es_source_opened(es, T0 + 1), 0); /* end the transfer */
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(es_source_sink.bytes(es, "data: x\n\n", 9), ES_PARSER_STOPPED);
  expect_next(es_source_transfer_done(es, CURLE_WRITE_ERROR, T0 + 2), ES_GO_NONE, 0, 0);
  m_apply_close(es, T0 + 2);
  ck_assert_int_eq(c.n, 1); /* the open notification only */
  eventsource_free(es);
}
END_TEST

START_TEST(test_close_in_message_listener) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  c.close_kind = EVENTSOURCE_KIND_MESSAGE;
  c.close_nth = 1;
  m_start(es, T0, 0);
  m_open(es, T0 + 1);
  const char *s = "data: a\n\ndata: b\n\n";
  ck_assert_int_eq(es_source_sink.bytes(es, s, strlen(s)), ES_PARSER_STOPPED);
  ck_assert_int_eq(c.n, 2); /* open, "a"; not "b" */
  ck_assert_str_eq(c.v[1].data, "a");
  expect_next(es_source_transfer_done(es, CURLE_WRITE_ERROR, T0 + 2), ES_GO_NONE, 0, 0);
  expect_next(es_source_deadline(es, T0 + 3), ES_GO_TIMER, 0, 0);
  m_apply_close(es, T0 + 3);
  ck_assert_int_eq(c.n, 2);
  eventsource_free(es);
}
END_TEST

START_TEST(test_close_in_hooks) {
  mctx c;
  /* the prepare hook closes: no transfer */
  eventsource_t *es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_prepare_callback(es, prepare_hook, &c), EVENTSOURCE_OK);
  c.prepare_close = 1;
  expect_next(es_source_ops(es, ES_OP_START, T0), ES_GO_CONNECT, 0, 0);
  expect_next(es_source_connect(es, T0), ES_GO_NONE, 0, 0);
  ck_assert_int_eq(c.nprepare, 1);
  m_apply_close(es, T0);
  ck_assert_int_eq(c.n, 0);
  eventsource_free(es);

  /* the policy hook closes: no notification, no deadline */
  es = m_new(&c, 1000);
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_hook, &c), EVENTSOURCE_OK);
  c.policy_close = 1;
  m_start(es, T0, 0);
  expect_next(es_source_transfer_done(es, CURLE_COULDNT_CONNECT, T0 + 1), ES_GO_NONE, 0, 0);
  ck_assert_int_eq(c.npolicy, 1);
  ck_assert_int_eq(c.n, 0);
  m_apply_close(es, T0 + 1);
  eventsource_free(es);

  /* the error listener of a permanent failure closes: DONE all the same,
   * the failure stays the reason */
  es = m_new(&c, 1000);
  c.close_kind = EVENTSOURCE_KIND_ERROR;
  c.close_nth = 1;
  m_start(es, T0, 0);
  es->tr.fail = EVENTSOURCE_ERR_HTTP_STATUS;
  es_set_error(es, EVENTSOURCE_ERR_HTTP_STATUS, 500, 0, "HTTP status 500 (expected 200)");
  expect_next(es_source_transfer_done(es, CURLE_WRITE_ERROR, T0 + 1), ES_GO_DONE, 1, 0);
  ck_assert_int_eq(c.n, 1);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_HTTP_STATUS);
  expect_next(es_source_ops(es, ES_OP_CLOSE, T0 + 1), ES_GO_DONE, 1, 0);
  ck_assert_int_eq(es->close_reason, EVENTSOURCE_ERR_HTTP_STATUS);
  eventsource_free(es);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Joining and leaving a multi                                              */
/* ------------------------------------------------------------------------ */

/* cb_lock (what eventsource_close() from another thread waits on) is taken
 * only for a piece of body that calls a listener: with another thread
 * holding it, a piece that completes no event is parsed at once (were the
 * lock taken, this test would hang until its timeout); the piece that
 * completes the event waits for it, and the lock is let go afterwards. */
typedef struct holder {
  eventsource_t *es;
  sem_t held, release;
} holder;

static void *hold_lock(void *arg) {
  holder *h = arg;
  pthread_mutex_lock(&h->es->cb_lock);
  sem_post(&h->held);
  while (sem_wait(&h->release) != 0) {
  }
  pthread_mutex_unlock(&h->es->cb_lock);
  return NULL;
}

START_TEST(test_lock_only_for_listeners) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  m_start(es, T0, 0);
  m_open(es, T0 + 1);
  holder h = {.es = es};
  ck_assert_int_eq(sem_init(&h.held, 0, 0), 0);
  ck_assert_int_eq(sem_init(&h.release, 0, 0), 0);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, hold_lock, &h), 0);
  while (sem_wait(&h.held) != 0) {
  }
  m_feed(es, "id: 7\nevent: tick\ndata: par");
  m_feed(es, "tial\ndata: more");
  ck_assert_int_eq(c.n, 1); /* the open notification only */
  ck_assert_int_eq(es->cb_held, 0);
  sem_post(&h.release);
  m_feed(es, "\n\n: a comment\n");
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  ck_assert_int_eq(c.n, 2); /* the event; comments go to comment listeners only */
  ck_assert_str_eq(c.v[1].type, "tick");
  ck_assert_str_eq(c.v[1].data, "partial\nmore");
  ck_assert_int_eq(es->cb_held, 0);
  /* and it is free again */
  ck_assert_int_eq(pthread_mutex_trylock(&es->cb_lock), 0);
  pthread_mutex_unlock(&es->cb_lock);
  sem_destroy(&h.held);
  sem_destroy(&h.release);
  eventsource_free(es);
}
END_TEST

START_TEST(test_join_leave) {
  mctx c;
  eventsource_t *es = m_new(&c, 1000);
  ck_assert(es_source_can_join(es));
  es_source_joined(es);
  /* nothing but START starts it */
  expect_next(es_source_ops(es, 0, T0), ES_GO_NONE, 0, 0);
  m_start(es, T0, 0);
  m_fail_attempt(es, &c, T0 + 1, 1000);
  /* removed while waiting, added again: idle until started */
  es_source_left(es);
  ck_assert_int_eq(es->phase, ES_IDLE);
  ck_assert(es_source_can_join(es));
  es_source_joined(es);
  expect_next(es_source_deadline(es, T0 + 1001), ES_GO_TIMER, 0, 0);
  m_start(es, T0 + 2000, 0);
  /* the backoff was kept across */
  m_fail_attempt(es, &c, T0 + 2001, 2000);
  eventsource_free(es);
}
END_TEST

static Suite *machine_suite(void) {
  Suite *s = suite_create("machine");
  TCase *t = tcase_create("machine");
  tcase_set_timeout(t, 10);
  tcase_add_test(t, test_start_read_timeout_deadline);
  tcase_add_test(t, test_start_no_read_timeout);
  tcase_add_test(t, test_backoff_exponential);
  tcase_add_test(t, test_retry_zero_floor);
  tcase_add_test(t, test_server_retry_zero_floor);
  tcase_add_test(t, test_eof_after_event_is_success);
  tcase_add_test(t, test_eof_without_event_grows);
  tcase_add_test(t, test_backoff_reset_time);
  tcase_add_test(t, test_server_retry_field);
  tcase_add_test(t, test_server_retry_over_max_retry_exact);
  tcase_add_test(t, test_server_retry_ceiling);
  tcase_add_test(t, test_mcp_retry_then_close_no_growth);
  tcase_add_test(t, test_reconnect_on_end_off);
  tcase_add_test(t, test_reconnect_on_end_off_failures_retry);
  tcase_add_test(t, test_deadline_while_waiting);
  tcase_add_test(t, test_read_timeout_open);
  tcase_add_test(t, test_read_timeout_before_open);
  tcase_add_test(t, test_policy_stops);
  tcase_add_test(t, test_policy_changes_delay);
  tcase_add_test(t, test_policy_permanent);
  tcase_add_test(t, test_permanent_failure);
  tcase_add_test(t, test_add_failed);
  tcase_add_test(t, test_op_close);
  tcase_add_test(t, test_op_restart);
  tcase_add_test(t, test_restart_after_success);
  tcase_add_test(t, test_op_fail);
  tcase_add_test(t, test_prepare_refuses);
  tcase_add_test(t, test_close_in_error_listener);
  tcase_add_test(t, test_close_in_open_listener);
  tcase_add_test(t, test_close_in_message_listener);
  tcase_add_test(t, test_close_in_hooks);
  tcase_add_test(t, test_lock_only_for_listeners);
  tcase_add_test(t, test_join_leave);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return ts_run_suite(machine_suite(), CK_ENV); }
