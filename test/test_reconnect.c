/*
 * test_reconnect.c - reconnection: retry: and the delay setters, Last-Event-ID and
 * partial events across connections, the read and connect timeouts, refused
 * connections, backoff, and a thousand reconnections without a leak.
 *
 * Part of the connection suites (test/support/ts_source.h): every test runs
 * one source against the scripted loopback server, records every
 * notification and waits on what it observes, with a deadline.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "eventsource.h"
#include "support/sse_server.h"
#include "support/ts_util.h"
#include "support/ts_source.h"

/* ------------------------------------------------------------------------ */
/* Reconnection                                                             */
/* ------------------------------------------------------------------------ */

START_TEST(test_retry_field_sets_delay) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "retry: 140\ndata: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, 140);
  ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_set_retry_and_bad_retry_field) {
  ts_ctx c;
  ts_ctx_init(&c);
  /* not a number: ignored */
  ts_add_stream(&c, 0, "retry: 4x\nretry:\nretry: -5\ndata: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, -1), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_retry(NULL, 10), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ts_set_retry_exact(es, 125);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.reconnect_ms, 125);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_last_event_id_on_reconnect) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "id: 1\ndata: a\n\n", NULL);
  ts_add_stream(&c, 0, "data: b\n\n", NULL);          /* id kept */
  ts_add_stream(&c, 0, "id:\ndata: c\n\n", NULL);     /* id reset */
  ts_add_stream(&c, 0, "id: 7\n", "data: d\n\n", NULL);
  ts_add_stream(&c, 1, "data: e\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_set_retry_exact(es, 0);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 5);
  ck_assert_int_eq(ts_server_request_count(c.srv), 5);
  ck_assert_ptr_null(ts_req_header(&c, 0, "Last-Event-ID"));
  ck_assert_str_eq(ts_req_header(&c, 1, "Last-Event-ID"), "1");
  ck_assert_str_eq(ts_req_header(&c, 2, "Last-Event-ID"), "1");
  ck_assert_ptr_null(ts_req_header(&c, 3, "Last-Event-ID"));
  ck_assert_str_eq(ts_req_header(&c, 4, "Last-Event-ID"), "7");
  const char *ids[] = {"1", "1", "", "7", "7"};
  for (size_t i = 0; i < 5; i++) {
    ts_rec m = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, i);
    ck_assert_str_eq(m.id, ids[i]);
  }
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 4);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_last_event_id_utf8) {
  /* U+00FC, then U+00E9 U+2713 from the stream: sent as their UTF-8 bytes */
  static const char first[] = "\xC3\xBC";
  static const char second[] = "\xC3\xA9\xE2\x9C\x93";
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "id: \xC3\xA9\xE2\x9C\x93\ndata: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_last_event_id(es, first), EVENTSOURCE_OK);
  ts_set_retry_exact(es, 0);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ck_assert_int_eq(ts_server_request_count(c.srv), 2);
  ck_assert_str_eq(ts_req_header(&c, 0, "Last-Event-ID"), first);
  ck_assert_str_eq(ts_req_header(&c, 1, "Last-Event-ID"), second);
  ck_assert_int_eq(ts_request_header_count(ts_req_get(&c, 1), "Last-Event-ID"), 1);
  ck_assert_str_eq(ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0).id, second);
  ck_assert_str_eq(ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1).id, second);
  ck_assert_str_eq(ts_log_nth(&c, EVENTSOURCE_KIND_OPEN, NULL, 0).id, first);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_partial_event_dropped) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "id: 5\ndata: full\n\n", "id: 6\ndata: partial\n",
                "data: more", NULL);
  ts_add_stream(&c, 1, "data: next\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_set_retry_exact(es, 0);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ts_rec a = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  ts_rec b = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 1);
  ts_assert_data(&a, "full");
  ck_assert_str_eq(a.id, "5");
  ts_assert_data(&b, "next");
  ck_assert_str_eq(b.id, "5");
  ck_assert_str_eq(ts_req_header(&c, 1, "Last-Event-ID"), "5");
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_str_eq(e.id, "5");
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 2);
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_read_timeout_reconnects) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 1, "data: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_read_timeout(es, 300), EVENTSOURCE_OK);
  ts_set_retry_exact(es, 0);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 2);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_READ_TIMEOUT);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, EVENTSOURCE_MIN_RECONNECT_MS);
  ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  /* the first connection was dropped by the client */
  ck_assert_int_ge(ts_server_wait_client_closes(c.srv, 1, TS_WAIT_MS), 1);
  ck_assert_int_ge(ts_server_request_count(c.srv), 2);
  ts_ctx_fini(&c);
}
END_TEST

/* An error listener that records the notification (the any-listener runs
 * after the type listeners, so it would see nothing once closed), then
 * closes the source: the test reads the announced delay without waiting
 * for it. */
static void record_and_close(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  ts_log_push(ud, es, ev, "error");
  eventsource_close(es);
}

/* Issue 13: max-retry (30 s) bounds the backoff, not the server's retry:
 * 45000 is announced as sent, jitter on (a reconnection time over
 * max-retry is waited exactly). */
START_TEST(test_retry_over_max_retry_used) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "retry: 45000\ndata: a\n\n", NULL);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_max_retry(es, 30000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(es, 1), EVENTSOURCE_OK);
  ts_ctx_listen(&c, "error", record_and_close);
  ts_ctx_run(&c);
  ts_expect_run_ended(&c, EVENTSOURCE_OK);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, 45000);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_ctx_fini(&c);
}
END_TEST

/* An absurd retry: meets the ceiling: 24 h by default, or the one set. */
START_TEST(test_retry_ceiling) {
  for (int lowered = 0; lowered < 2; lowered++) {
    ts_ctx c;
    ts_ctx_init(&c);
    ts_add_stream(&c, 0, "retry: 18446744073709551616000\ndata: a\n\n", NULL);
    eventsource_t *es = ts_ctx_new_es(&c, "/");
    ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
    if (lowered)
      ck_assert_int_eq(eventsource_set_max_server_retry(es, 90000), EVENTSOURCE_OK);
    ts_ctx_listen(&c, "error", record_and_close);
    ts_ctx_run(&c);
    ts_expect_run_ended(&c, EVENTSOURCE_OK);
    ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
    ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
    ck_assert_int_eq(e.will_reconnect, 1);
    ck_assert_int_eq(e.reconnect_ms, lowered ? 90000 : EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS);
    ck_assert_int_eq(ts_server_request_count(c.srv), 1);
    ts_ctx_fini(&c);
  }
}
END_TEST

/* MCP Streamable HTTP resumability (SEP-1699): the first request is a POST
 * with a body, the server sends retry:, a priming event (an id, empty
 * data) and closes on purpose; the client resumes with a GET carrying
 * Last-Event-ID (the prepare hook switches the method), and the delay stays
 * the server's, never growing: each connection delivered an event. */
static int post_then_get(eventsource_t *es, unsigned attempt, void *ud) {
  (void)ud;
  if (attempt == 1) {
    ts_set_post(es);
    return 0;
  }
  if (eventsource_set_method(es, "GET") != EVENTSOURCE_OK ||
      eventsource_set_body(es, NULL, 0) != EVENTSOURCE_OK)
    return -1;
  eventsource_error_t rc = eventsource_remove_header(es, "Content-Type");
  return rc == EVENTSOURCE_OK || rc == EVENTSOURCE_ERR_NOT_FOUND ? 0 : -1;
}

START_TEST(test_mcp_retry_then_close) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "retry: 150\nid: 1\ndata:\n\n", NULL);
  ts_add_stream(&c, 0, "id: 2\ndata:\n\n", NULL);
  ts_add_stream(&c, 0, "id: 3\ndata: {\"progress\":3}\n\n", NULL);
  ts_add_stream(&c, 1, "id: 4\ndata: {\"result\":{}}\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/mcp");
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_prepare_callback(es, post_then_get, &c), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 4);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 3);
  for (size_t i = 0; i < 3; i++) {
    ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, i);
    ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
    ck_assert_int_eq(e.will_reconnect, 1);
    ck_assert_int_eq(e.reconnect_ms, 150); /* the server's, never doubled */
  }
  ts_assert_post(&c, 0, "/mcp");
  ck_assert_ptr_null(ts_req_header(&c, 0, "Last-Event-ID"));
  for (int i = 1; i < 4; i++) {
    const ts_request *r = ts_req_get(&c, i);
    char want[8];
    ck_assert_str_eq(r->method, "GET");
    ck_assert_uint_eq(r->body_len, 0);
    ck_assert_ptr_null(ts_req_header(&c, i, "Content-Type"));
    snprintf(want, sizeof want, "%d", i);
    ck_assert_str_eq(ts_req_header(&c, i, "Last-Event-ID"), want);
  }
  ts_rec m = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 0);
  ts_assert_data(&m, ""); /* the priming event is dispatched, with empty data */
  ck_assert_str_eq(m.id, "1");
  m = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, 3);
  ts_assert_data(&m, "{\"result\":{}}");
  ck_assert_str_eq(m.id, "4");
  ts_ctx_fini(&c);
}
END_TEST

/* reconnect_on_end 0: a POST whose answer ended cleanly is not sent again:
 * CLOSED, EOF with will_reconnect 0, eventsource_run() returns EOF, one
 * request. */
START_TEST(test_reconnect_on_end_off) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_add_stream(&c, 0, "retry: 0\ndata: answer\n\n", NULL);
  ts_add_stream(&c, 0, "data: answer again\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/llm");
  ts_set_post(es);
  ck_assert_int_eq(eventsource_set_reconnect_on_end(es, 0), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_expect_run_ended(&c, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_assert_post(&c, 0, "/llm");
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL), 1);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 1);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.will_reconnect, 0);
  ck_assert_int_eq(e.reconnect_ms, -1);
  ck_assert_int_eq(e.state, EVENTSOURCE_CLOSED);
  ck_assert_int_eq(eventsource_last_error(es), EVENTSOURCE_ERR_EOF);
  ck_assert_ptr_nonnull(strstr(eventsource_last_error_message(es), "reconnect on end is off"));
  ts_ctx_fini(&c);
}
END_TEST

/* reconnect_on_end 0 still reconnects after failures: a connection reset
 * mid-stream (NETWORK), a read timeout; then a clean end ends it. */
START_TEST(test_reconnect_on_end_off_failures_retry) {
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: a\n\n");
  ts_script_reset(sc);
  ts_add_stream(&c, 1, "data: b\n\n", NULL);
  ts_add_stream(&c, 0, "data: c\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ts_set_retry_exact(es, 0);
  ck_assert_int_eq(eventsource_set_read_timeout(es, 1000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_reconnect_on_end(es, 0), EVENTSOURCE_OK);
  ts_ctx_run(&c);
  ts_expect_run_ended(&c, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(ts_server_request_count(c.srv), 3);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 3);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_NETWORK);
  ck_assert_int_eq(e.will_reconnect, 1);
  e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 1);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_READ_TIMEOUT);
  ck_assert_int_eq(e.will_reconnect, 1);
  e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 2);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
  ck_assert_int_eq(e.will_reconnect, 0);
  ck_assert_int_eq(e.state, EVENTSOURCE_CLOSED);
  /* "a" may be lost to the reset; "b" and "c" came on their connections. */
  size_t nm = ts_log_count(&c, EVENTSOURCE_KIND_MESSAGE, NULL);
  ck_assert(nm == 2 || nm == 3);
  ts_rec m = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, nm - 1);
  ts_assert_data(&m, "c");
  m = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, nm - 2);
  ts_assert_data(&m, "b");
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_connection_refused) {
  ts_ctx c;
  ts_ctx_init(&c);
  /* a port where nothing listens */
  ts_server *gone = ts_server_start();
  ck_assert_ptr_nonnull(gone);
  char url[1300];
  snprintf(url, sizeof url, "%s", ts_server_url(gone, "/"));
  ts_server_stop(gone);
  eventsource_t *es = ts_ctx_new_es_url(&c, url);
  ts_set_retry_exact(es, 120);
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 2);
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_NETWORK);
  ck_assert_int_ne(e.curl_code, 0);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, 120);
  ck_assert_int_eq(e.status, 0);
  ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  ts_rec e2 = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 1);
  ck_assert_int_eq(e2.error, EVENTSOURCE_ERR_NETWORK);
  ck_assert_int_ne(e2.curl_code, 0);
  ck_assert_int_eq(e2.will_reconnect, 1);
  ck_assert_int_eq(e2.reconnect_ms, 240); /* the second failure in a row: doubled */
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 0);
  ts_ctx_fini(&c);
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
  ck_assert_int_eq(poll(&p, 1, TS_WAIT_MS), 1);
  return l;
}

START_TEST(test_connect_timeout) {
  ts_ctx c;
  ts_ctx_init(&c);
  int port, filler;
  int l = silent_listener(&port, &filler);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  eventsource_t *es = ts_ctx_new_es_url(&c, url);
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
  ts_set_retry_exact(es, 30000);
  long t0 = ts_now_ms();
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_ERROR, 1);
  long took = ts_now_ms() - t0;
  ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, 0);
  ck_assert_int_eq(e.error, EVENTSOURCE_ERR_NETWORK); /* "counts as a network error" */
  ck_assert_int_eq(e.curl_code, CURLE_OPERATION_TIMEDOUT);
  ck_assert_int_eq(e.status, 0);
  ck_assert_int_eq(e.will_reconnect, 1);
  ck_assert_int_eq(e.reconnect_ms, 30000);
  ck_assert_int_eq(e.state, EVENTSOURCE_CONNECTING);
  ck_assert_msg(took >= 190, "connect timeout after %ld ms, set to 200", took);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 0);
  ts_ctx_fini(&c);
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
  ts_ctx c;
  ts_ctx_init(&c);
  for (int i = 0; i < 3; i++) {
    if (t->opens) {
      ts_add_stream(&c, 0, t->events ? "data: x\n\n" : ":no event\n\n", NULL);
    } else {
      ts_script *sc = ts_server_add_script(c.srv);
      ts_script_close(sc); /* the request is read, nothing is answered */
    }
  }
  ts_add_stream(&c, 1, "data: last\n\n", NULL);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_set_retry(es, EVENTSOURCE_MIN_RECONNECT_MS),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_max_retry(es, 10000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_backoff_reset(es, -1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  if (t->reset_ms >= 0)
    ck_assert_int_eq(eventsource_set_backoff_reset(es, t->reset_ms), EVENTSOURCE_OK);
  ts_ctx_policy_hook(&c, TS_POLICY_RECORD, 0); /* records, changes nothing */
  ts_ctx_run(&c);
  size_t msgs = (size_t)(3 * t->events + 1);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, msgs);
  ts_rec last = ts_log_nth(&c, EVENTSOURCE_KIND_MESSAGE, NULL, msgs - 1);
  ts_assert_data(&last, "last");
  ck_assert_int_eq(ts_server_request_count(c.srv), 4);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL),
                    (size_t)(3 * t->opens + 1));
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 3);
  for (size_t i = 0; i < 3; i++) {
    ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, i);
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
  ts_ctx_fini(&c);
}
END_TEST

START_TEST(test_comments_keep_read_timeout_away) {
  /* gaps of a tenth of the read timeout, twice the timeout in all; slower
   * under valgrind (the margin, not the ratio, is what it needs) */
  long timeout = ts_small_scale() ? 2000 : 500;
  int gaps = 20, gap = (int)(timeout / 10);
  ts_ctx c;
  ts_ctx_init(&c);
  ts_script *sc = ts_server_add_script(c.srv);
  ts_script_headers(sc);
  for (int i = 0; i < gaps; i++) {
    ts_script_writes(sc, ":\n");
    ts_script_sleep(sc, gap);
  }
  ts_script_writes(sc, "data: done\n\n");
  ts_script_hold(sc);
  eventsource_t *es = ts_ctx_new_es(&c, "/");
  ck_assert_int_eq(eventsource_add_comment_listener(es, ts_on_comment, &c, NULL),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_read_timeout(es, timeout), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(es, 0), EVENTSOURCE_OK);
  long t0 = ts_now_ms();
  ts_ctx_run(&c);
  ts_log_wait_eq(&c, EVENTSOURCE_KIND_MESSAGE, 1);
  /* the server slept through every gap first: twice the timeout at least */
  long took = ts_now_ms() - t0;
  ck_assert_msg(took >= (long)gaps * gap && took > timeout,
                "%ld ms of comments, timeout %ld", took, timeout);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_COMMENT, NULL), (size_t)gaps);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_ERROR, NULL), 0);
  ck_assert_uint_eq(ts_log_count(&c, EVENTSOURCE_KIND_OPEN, NULL), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_ctx_fini(&c);
}
END_TEST

static int count_fds(void) { return ts_count_entries("/proc/self/fd"); }

static void on_message_count_close(eventsource_t *es,
                                   const eventsource_event_t *ev, void *ud) {
  ts_ctx *c = ud;
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
static void reconnect_many(ts_ctx *c, int n) {
  ts_script *sc = ts_server_add_script(c->srv);
  static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             "Connection: close\r\n\r\ndata: x\n\n";
  ts_script_write(sc, resp, sizeof resp - 1);
  eventsource_t *es = ts_ctx_new_es(c, "/");
  ts_set_retry_exact(es, 0);
  ck_assert_int_eq(eventsource_set_policy_callback(es, policy_no_delay, NULL),
                   EVENTSOURCE_OK);
  c->close_after = n;
  ts_ctx_listen(c, "message", on_message_count_close);
  ts_ctx_run(c);
  ck_assert(ts_ctx_wait_run(c, 120000));
  ck_assert_int_eq(ts_ctx_run_rc(c), EVENTSOURCE_OK);
  ck_assert_int_eq(ts_counter_get(c, 0), n);
  ck_assert_int_eq(ts_server_request_count(c->srv), n);
  ck_assert_uint_eq(ts_log_count(c, EVENTSOURCE_KIND_OPEN, NULL), (size_t)n);
  ck_assert_uint_eq(ts_log_count(c, EVENTSOURCE_KIND_ERROR, NULL), (size_t)n - 1);
  ck_assert_uint_eq(ts_log_count(c, EVENTSOURCE_KIND_MESSAGE, NULL), (size_t)n - 1);
}

START_TEST(test_many_reconnections_no_fd_leak) {
  int n = ts_small_scale() ? 100 : 1000;
  /* warm up whatever libcurl initialises once */
  ts_ctx w;
  ts_ctx_init(&w);
  reconnect_many(&w, 2);
  eventsource_free(w.es);
  w.es = NULL;
  ts_ctx_fini(&w);

  int fds_before = count_fds();
  ts_ctx c;
  ts_ctx_init(&c);
  reconnect_many(&c, n);
  for (size_t i = 0; i < (size_t)n - 1; i++) {
    ts_rec e = ts_log_nth(&c, EVENTSOURCE_KIND_ERROR, NULL, i);
    ck_assert_int_eq(e.error, EVENTSOURCE_ERR_EOF);
    ck_assert_int_eq(e.will_reconnect, 1);
    ck_assert_int_eq(e.reconnect_ms, 0);
  }
  eventsource_free(c.es);
  c.es = NULL;
  ts_ctx_fini(&c);
  /* <=: under CK_FORK=no a descriptor of an earlier test may close meanwhile */
  int fds_after = count_fds();
  ck_assert_msg(fds_after <= fds_before, "%d descriptors before, %d after",
                fds_before, fds_after);
}
END_TEST

static Suite *reconnect_suite(void) {
  Suite *s = suite_create("reconnect");
  TCase *tc;

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
  tcase_add_test(tc, test_retry_over_max_retry_used);
  tcase_add_test(tc, test_retry_ceiling);
  tcase_add_test(tc, test_mcp_retry_then_close);
  tcase_add_test(tc, test_reconnect_on_end_off);
  tcase_add_test(tc, test_reconnect_on_end_off_failures_retry);
  tcase_add_test(tc, test_comments_keep_read_timeout_away);
  suite_add_tcase(s, tc);

  tc = tcase_create("stress");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_many_reconnections_no_fd_leak);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(reconnect_suite(), CK_ENV); }
