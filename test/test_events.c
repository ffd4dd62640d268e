/*
 * test_events.c - the events of an open stream: dispatching in one chunk and split at
 * every byte, readyState, listeners by type (and changed from a listener),
 * limits, chunked bodies, UTF-8, large events, allocation failures.
 *
 * Part of the connection suites (test/support/ts_source.h): every test runs
 * one source against the scripted loopback server, records every
 * notification and waits on what it observes, with a deadline.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h" /* es_alloc_fail_after(): allocation failure injection */
#include "eventsource.h"
#include "support/sse_server.h"
#include "support/ts_util.h"
#include "support/ts_source.h"

/* ------------------------------------------------------------------------ */
/* Events and readyState                                                    */
/* ------------------------------------------------------------------------ */

static const char STREAM[] = ": hello\n"
                             "data: first\n\n"
                             "event: custom\ndata: line1\ndata: line2\nid: 42\n\n"
                             "data: third\r\n\r\n"
                             "data:fourth\rdata: x\r\r"
                             "data: nul\0byte\n\n";


static void on_custom(eventsource_t *es, const eventsource_event_t *ev,
                      void *ud) {
  ts_log_push(ud, es, ev, "custom");
}

static void check_stream_log(ts_ctx *c) {
  ck_assert_uint_eq(ts_log_wait(c, EVENTSOURCE_KIND_MESSAGE, NULL, 5 + 1, TS_WAIT_MS),
                    6); /* 4 messages + custom via "custom" and via "any" */
  ts_log_wait_eq(c, EVENTSOURCE_KIND_COMMENT, 1);
  /* in order: open, comment, first, custom (twice), third, fourth, nul */
  ts_rec r = ts_log_at(c, 1);
  ck_assert_int_eq(r.kind, EVENTSOURCE_KIND_COMMENT);
  ck_assert_str_eq(r.type, "comment");
  ts_assert_data(&r, " hello");
  r = ts_log_at(c, 0);
  ck_assert_int_eq(r.kind, EVENTSOURCE_KIND_OPEN);
  ck_assert_str_eq(r.type, "open");
  ck_assert_int_eq(r.state, EVENTSOURCE_OPEN);
  ck_assert_uint_eq(r.data_len, 0);
  ck_assert_int_eq(r.error, EVENTSOURCE_OK);
  ck_assert_int_eq(r.reconnect_ms, -1);
  r = ts_log_at(c, 2);
  ck_assert_int_eq(r.kind, EVENTSOURCE_KIND_MESSAGE);
  ck_assert_str_eq(r.type, "message");
  ts_assert_data(&r, "first");
  ck_assert_str_eq(r.id, "");
  ck_assert_int_eq(r.state, EVENTSOURCE_OPEN);
  r = ts_log_at(c, 3);
  ck_assert_str_eq(r.via, "custom");
  ck_assert_str_eq(r.type, "custom");
  ts_assert_data(&r, "line1\nline2");
  ck_assert_str_eq(r.id, "42");
  r = ts_log_at(c, 4);
  ck_assert_str_eq(r.via, "any");
  ck_assert_str_eq(r.type, "custom");
  r = ts_log_at(c, 5);
  ck_assert_str_eq(r.type, "message");
  ts_assert_data(&r, "third");
  ck_assert_str_eq(r.id, "42");
  r = ts_log_at(c, 6);
  ts_assert_data(&r, "fourth\nx");
  r = ts_log_at(c, 7);
  ck_assert_uint_eq(r.data_len, 8);
  ck_assert_int_eq(memcmp(r.data, "nul\0byte", 8), 0);
  ck_assert_uint_eq(ts_log_count(c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_int_eq(ts_server_request_count(c->srv), 1);
}

START_TEST(test_events_one_chunk) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  ts_script_write(sc, STREAM, sizeof STREAM - 1);
  ts_script_hold(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_comment_listener(es, ts_on_comment, &c, NULL),
                   EVENTSOURCE_OK);
  ts_ctx_listen(&c, "custom", on_custom);
  ts_ctx_start(&c);
  check_stream_log(&c);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_OPEN);
  eventsource_close(es);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(ts_server_wait_client_closes(c.srv, 1, TS_WAIT_MS), 1);
  ck_assert_uint_eq(ts_log_size(&c), 8); /* close notifies nobody */
  ts_ctx_fini(&c);
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
  ts_ctx c;
  ts_ctx_init(&c);
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
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_comment_listener(es, ts_on_comment, &c, NULL),
                   EVENTSOURCE_OK);
  ts_ctx_listen(&c, "custom", on_custom);
  ts_ctx_curl_hook(&c, TS_CURL_TRACE);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_OPEN, 1);
  for (size_t i = 0; i < n; i++) {
    /* the server waits at gate i + 1: the client has exactly i bytes */
    ck_assert_uint_eq(ts_in_bytes_wait(&c, i, TS_WAIT_MS), i);
    size_t msgs = ts_log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL);
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
  ck_assert_uint_eq(ts_in_bytes_wait(&c, n, TS_WAIT_MS), n);
  pthread_mutex_lock(&c.mu);
  size_t chunks = c.in_chunks, biggest = c.in_max;
  pthread_mutex_unlock(&c.mu);
  ck_assert_uint_eq(chunks, n);
  ck_assert_uint_eq(biggest, 1);
  ck_assert_int_eq(ts_ctx_get(&c, &c.curl_bad), 0);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_ready_state_transitions) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "data: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_set_retry_exact(es, 0);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
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
  ck_assert_uint_eq(ts_log_size(&c), 5);
  for (size_t i = 0; i < 5; i++) {
    ts_rec r = ts_log_at(&c, i);
    ck_assert_msg(r.kind == want[i].kind && r.state == want[i].state,
                  "record %zu: kind %d state %d, want %d %d", i, r.kind,
                  r.state, want[i].kind, want[i].state);
    ts_assert_data(&r, want[i].data);
  }
  ts_rec e = ts_log_at(&c, 2);
  ck_assert_str_eq(e.type, "error");
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, EVENTSOURCE_MIN_RECONNECT_MS); /* retry 0: the floor */
  ck_assert_int_eq(e.curl_code, 0);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  eventsource_close(es);
  ts_expect_run_ended(&c, EVENTSOURCE_OK);
  ck_assert_uint_eq(ts_log_size(&c), 5); /* close notifies nobody */
  ts_ctx_fini(&c);
}
END_TEST

static void on_error_type(eventsource_t *es, const eventsource_event_t *ev,
                          void *ud) {
  ts_log_push(ud, es, ev, "error-listener");
}
static void on_open_type(eventsource_t *es, const eventsource_event_t *ev,
                         void *ud) {
  ts_log_push(ud, es, ev, "open-listener");
}

START_TEST(test_server_events_named_error_and_open) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "event: error\ndata: boom\n\n",
                "event: open\ndata: hi\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_listen(&c, "error", on_error_type);
  ts_ctx_listen(&c, "open", on_open_type);
  ts_ctx_run(&c);
  /* each server event reaches its type listener and the any-listener */
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 4);
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
  ck_assert_uint_eq(ts_log_size(&c), 6);
  for (size_t i = 0; i < 6; i++) {
    ts_rec r = ts_log_at(&c, i);
    ck_assert_str_eq(r.via, want[i].via);
    ck_assert_int_eq(r.kind, want[i].kind);
    ck_assert_str_eq(r.type, want[i].type);
    ts_assert_data(&r, want[i].data);
    ck_assert_int_eq(r.error, EVENTSOURCE_OK);
    ck_assert_int_eq(r.state, EVENTSOURCE_OPEN);
  }
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_OPEN);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_too_large_event_dropped) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: small\n\n",
                "data: this line is far too long for the limit\n\n",
                "data: ok\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_max_event(es, 16), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ts_rec a = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  ts_rec b = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1);
  ts_assert_data(&a, "small");
  ts_assert_data(&b, "ok");
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_TOO_LARGE);
  ck_assert_int_eq(e.will_reconnect, 0);
  ck_assert_int_eq(e.state, EVENTSOURCE_OPEN);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_chunked_response) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_writes(sc, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n");
  ts_script_writes(sc, "7\r\ndata: a\r\n");
  ts_script_writes(sc, "3\r\nbc\n\r\n");
  ts_script_writes(sc, "1\r\n\n\r\n");
  ts_script_writes(sc, "9\r\ndata: d\n\n\r\n0\r\n\r\n");
  ts_script_hold(sc); /* the body ended: EOF for the client */
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, 30000), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ts_rec a = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  ts_rec d = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1);
  ts_assert_data(&a, "abc");
  ts_assert_data(&d, "d");
  /* the end of the chunked body is the end of the stream */
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  ck_assert_int_eq(ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).error,
                   EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0).will_reconnect, 1);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_utf8_split_and_invalid) {
  ts_ctx c;
  ts_ctx_init(&c);
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
  ts_ctx_new_es(&c, "/");
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ts_rec a = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  ts_rec b = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1);
  ck_assert_str_eq(a.type, "message"); /* the BOM did not spoil the field name */
  ts_assert_data(&a, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  ts_assert_data(&b, "a\xEF\xBF\xBD"
                     "b");
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_large_event) {
  ts_ctx c;
  ts_ctx_init(&c);
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
  ts_ctx_new_es(&c, "/");
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  ck_assert_uint_eq(r.data_len, n);
  ck_assert_int_eq(memcmp(r.data, big + 6, n), 0);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  free(big);
  ts_ctx_fini(&c);
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
  ts_ctx c;
  ts_ctx_init(&c);
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
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_ctx_listen(&c, "open", on_open_fail_allocs);
  ts_ctx_run(&c);
  int returned = ts_ctx_wait_run(&c, TS_WAIT_MS);
  es_alloc_fail_reset();
  ck_assert_msg(returned, "eventsource_run did not return");
  ck_assert_int_eq(ts_ctx_run_rc(&c), EVENTSOURCE_ERR_NOMEM);
  ck_assert_int_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ck_assert_int_eq(ts_log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 0);
  ts_rec r = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(r.error, EVENTSOURCE_ERR_NOMEM);
  ck_assert_int_eq(r.will_reconnect, 0);
  ck_assert_int_eq(eventsource_ready_state(es), EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_ERR_NOMEM);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_ctx_fini(&c);
}
END_TEST

static void on_l_a(eventsource_t *es, const eventsource_event_t *ev, void *ud);
static void on_l_b(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  ts_counter_inc(ud, 1);
}
static void on_l_c(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  ts_counter_inc(ud, 2);
}
static void on_l_d(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  ts_ctx *c = ud;
  ts_counter_inc(c, 3);
  if (eventsource_remove_listener(es, c->ids[3]) != EVENTSOURCE_OK)
    ts_counter_inc(c, 6);
}
static void on_l_a(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  ts_ctx *c = ud;
  ts_counter_inc(c, 0);
  if (ts_counter_get(c, 0) == 1) {
    if (eventsource_remove_listener(es, c->ids[1]) != EVENTSOURCE_OK)
      ts_counter_inc(c, 6);
    if (eventsource_remove_listener(es, c->ids[1]) != EVENTSOURCE_ERR_NOT_FOUND)
      ts_counter_inc(c, 6);
    if (eventsource_add_listener(es, "message", on_l_c, c, &c->ids[2]) !=
        EVENTSOURCE_OK)
      ts_counter_inc(c, 6);
  }
}

START_TEST(test_listeners_changed_in_listener) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: 1\n\n", "data: 2\n\n", "data: 3\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_l_a, &c, &c.ids[0]),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_l_b, &c, &c.ids[1]),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_listener(es, "message", on_l_d, &c, &c.ids[3]),
                   EVENTSOURCE_OK);
  ck_assert_uint_ne(c.ids[0], 0);
  ck_assert_uint_ne(c.ids[0], c.ids[1]);
  ts_ctx_run(&c);
  /* the any-listener runs last: when it has seen 3 messages, all ran */
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 3);
  ck_assert_int_eq(ts_counter_get(&c, 0), 3); /* A */
  ck_assert_int_eq(ts_counter_get(&c, 1), 0); /* B, removed before its turn */
  ck_assert_int_eq(ts_counter_get(&c, 2), 2); /* C, added during event 1 */
  ck_assert_int_eq(ts_counter_get(&c, 3), 1); /* D, removed itself */
  ck_assert_int_eq(ts_counter_get(&c, 6), 0); /* no API call failed */
  ts_ctx_fini(&c);
}
END_TEST

static Suite *events_suite(void) {
  Suite *s = suite_create("events");
  TCase *tc;

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

  tc = tcase_create("listeners");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_listeners_changed_in_listener);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(events_suite(), CK_ENV); }
