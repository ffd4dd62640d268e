/*
 * test_server.c - the scripted loopback server (test/support/sse_server.c)
 * checked with plain sockets as the client.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "support/sse_server.h"
#include "support/test_util.h"

#define WAIT_MS 5000

/* ------------------------------------------------------------------------ */
/* A minimal blocking client                                                */
/* ------------------------------------------------------------------------ */

static int cl_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((unsigned short)port);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static void cl_send(int fd, const void *p, size_t len) {
  const char *c = p;
  while (len > 0) {
    ssize_t n = send(fd, c, len, MSG_NOSIGNAL);
    ck_assert_int_gt(n, 0);
    c += n;
    len -= (size_t)n;
  }
}

static void cl_sends(int fd, const char *s) { cl_send(fd, s, strlen(s)); }

struct buf {
  char *p;
  size_t len, cap;
};

/* Reads into b until EOF (returns 1), or until b holds needle (when not NULL,
 * returns 1), or the timeout (returns 0). */
static int cl_read(int fd, struct buf *b, const char *needle, int timeout_ms) {
  long deadline = tu_now_ms() + timeout_ms;
  for (;;) {
    if (needle && b->p && strstr(b->p, needle))
      return 1;
    long left = deadline - tu_now_ms();
    if (left <= 0)
      return 0;
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return 0;
    if (b->cap - b->len < 4097) {
      b->cap = b->cap * 2 + 8192;
      b->p = realloc(b->p, b->cap);
      ck_assert_ptr_nonnull(b->p);
    }
    ssize_t got = recv(fd, b->p + b->len, b->cap - b->len - 1, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return needle == NULL;
    b->len += (size_t)got;
    b->p[b->len] = '\0';
  }
}

static void buf_free(struct buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* A connection to s that sent request (more may follow). */
static int cl_request(ts_server *s, const char *request) {
  int fd = cl_connect(ts_server_port(s));
  cl_sends(fd, request);
  return fd;
}

/* One request/response exchange; returns the response (caller frees). */
static char *exchange(ts_server *s, const char *request) {
  int fd = cl_request(s, request);
  struct buf b = {0};
  ck_assert_int_eq(cl_read(fd, &b, NULL, WAIT_MS), 1);
  close(fd);
  if (!b.p)
    b.p = calloc(1, 1);
  return b.p;
}

/* One exchange whose response must be want. */
static void expect_exchange(ts_server *s, const char *request, const char *want) {
  char *resp = exchange(s, request);
  ck_assert_str_eq(resp, want);
  free(resp);
}

static const char *const HEADERS_200 =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(test_url_and_port) {
  ts_server *s = tu_server_start();
  int port = ts_server_port(s);
  ck_assert_int_gt(port, 0);
  char want[64];
  snprintf(want, sizeof want, "http://127.0.0.1:%d/a/b?c=d", port);
  ck_assert_str_eq(ts_server_url(s, "/a/b?c=d"), want);
  ck_assert_int_eq(ts_server_request_count(s), 0);
  ck_assert_int_eq(ts_server_open_connections(s), 0);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_get_recorded_and_script_played) {
  ts_server *s = tu_server_start();
  ts_script *sc = ts_server_add_script(s);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: one\n\n");
  ts_script_writes(sc, "data: two\n\n");
  ts_script_close(sc);
  ts_script_writes(sc, "never sent");

  char *resp = exchange(s, "GET /events?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Accept: text/event-stream\r\n"
                           "X-Dup: a\r\nx-dup:   b  \r\n\r\n");
  char want[512];
  snprintf(want, sizeof want, "%sdata: one\n\ndata: two\n\n", HEADERS_200);
  ck_assert_str_eq(resp, want);
  free(resp);

  ck_assert_int_eq(ts_server_wait_requests(s, 1, WAIT_MS), 1);
  ts_request *r = malloc(sizeof *r);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(ts_server_get_request(s, 0, r), 0);
  ck_assert_str_eq(r->method, "GET");
  ck_assert_str_eq(r->path, "/events?x=1");
  ck_assert_int_eq(r->nheaders, 4);
  ck_assert_str_eq(r->headers[0], "Host: 127.0.0.1");
  ck_assert_str_eq(r->headers[3], "x-dup:   b  ");
  ck_assert_ptr_null(r->body);
  ck_assert_uint_eq(r->body_len, 0);
  char v[64];
  ck_assert_int_eq(ts_request_header(r, "accept", v, sizeof v), 1);
  ck_assert_str_eq(v, "text/event-stream");
  ck_assert_int_eq(ts_request_header(r, "X-DUP", v, sizeof v), 1);
  ck_assert_str_eq(v, "a");
  ck_assert_int_eq(ts_request_header_nth(r, "X-Dup", 1, v, sizeof v), 1);
  ck_assert_str_eq(v, "b");
  ck_assert_int_eq(ts_request_header_nth(r, "X-Dup", 2, v, sizeof v), 0);
  ck_assert_int_eq(ts_request_header_count(r, "x-dup"), 2);
  ck_assert_int_eq(ts_request_header(r, "X-Du", v, sizeof v), 0);
  ck_assert_int_eq(ts_request_header(r, "Last-Event-ID", v, sizeof v), 0);
  /* truncation */
  char small[5];
  ck_assert_int_eq(ts_request_header(r, "Accept", small, sizeof small), 1);
  ck_assert_str_eq(small, "text");
  ck_assert_int_eq(ts_server_get_request(s, 1, r), -1);
  ck_assert_int_eq(ts_server_get_request(s, -1, r), -1);
  free(r);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_post_body_content_length) {
  ts_server *s = tu_server_start();
  ts_script_status(ts_server_add_script(s), 204, "No Content", NULL);
  static const char req[] = "POST /p HTTP/1.1\r\nHost: x\r\n"
                            "Content-Type: application/octet-stream\r\n"
                            "Content-Length: 7\r\n\r\nab\0cd\r\n";
  int fd = cl_connect(ts_server_port(s));
  /* the body in a separate write, as a slow client would send it */
  size_t head = sizeof req - 1 - 7;
  cl_send(fd, req, head);
  cl_send(fd, req + head, 7);
  struct buf b = {0};
  ck_assert_int_eq(cl_read(fd, &b, NULL, WAIT_MS), 1);
  close(fd);
  ck_assert_str_eq(b.p, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  buf_free(&b);

  ts_request *r = malloc(sizeof *r);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(ts_server_get_request(s, 0, r), 0);
  ck_assert_str_eq(r->method, "POST");
  ck_assert_uint_eq(r->body_len, 7);
  ck_assert_mem_eq(r->body, "ab\0cd\r\n", 7);
  free(r);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_post_body_chunked_and_expect) {
  ts_server *s = tu_server_start();
  ts_script_status(ts_server_add_script(s), 200, "OK",
                   (const char *const[]){"Content-Type: text/plain", NULL});
  int fd = cl_request(s, "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         "Expect: 100-continue\r\n\r\n");
  struct buf b = {0};
  ck_assert_int_eq(cl_read(fd, &b, "100 Continue\r\n\r\n", WAIT_MS), 1);
  ck_assert_str_eq(b.p, "HTTP/1.1 100 Continue\r\n\r\n");
  buf_free(&b);
  cl_sends(fd, "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
  ck_assert_int_eq(cl_read(fd, &b, NULL, WAIT_MS), 1);
  close(fd);
  ck_assert_str_eq(b.p, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        "Connection: close\r\n\r\n");
  buf_free(&b);
  ts_request *r = malloc(sizeof *r);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(ts_server_get_request(s, 0, r), 0);
  ck_assert_str_eq(r->method, "PUT");
  ck_assert_uint_eq(r->body_len, 11);
  ck_assert_str_eq(r->body, "hello world");
  free(r);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_no_script_answers_503) {
  ts_server *s = tu_server_start();
  char *resp = exchange(s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ck_assert_msg(strncmp(resp, "HTTP/1.1 503 ", 13) == 0, "got %s", resp);
  free(resp);
  ck_assert_int_eq(ts_server_request_count(s), 1);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_script_queue_and_replay) {
  ts_server *s = tu_server_start();
  ts_script_writes(ts_server_add_script(s), "first");
  ts_script_writes(ts_server_add_script(s), "second");
  const char *want[] = {"first", "second", "second", "second"};
  for (int i = 0; i < 4; i++) {
    expect_exchange(s, "GET / HTTP/1.1\r\n\r\n", want[i]);
  }
  /* a script added after the queue ran out is played next */
  ts_script_writes(ts_server_add_script(s), "third");
  expect_exchange(s, "GET / HTTP/1.1\r\n\r\n", "third");
  ck_assert_int_eq(ts_server_wait_requests(s, 5, WAIT_MS), 5);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_status_lines) {
  ts_server *s = tu_server_start();
  const char *const h[] = {"Location: /there", "X-A: 1", NULL};
  ts_script_status(ts_server_add_script(s), 307, "Temporary Redirect", h);
  expect_exchange(s, "GET / HTTP/1.1\r\n\r\n",
                  "HTTP/1.1 307 Temporary Redirect\r\nLocation: "
                  "/there\r\nX-A: 1\r\nConnection: close\r\n\r\n");
  ts_server_stop(s);
}
END_TEST

START_TEST(test_gate_and_sleep) {
  ts_server *s = tu_server_start();
  ts_script *sc = ts_server_add_script(s);
  ts_script_writes(sc, "one;");
  ts_script_gate(sc, 7);
  ts_script_writes(sc, "two;");
  ts_script_sleep(sc, 20);
  ts_script_writes(sc, "three");

  int fd = cl_request(s, "GET / HTTP/1.1\r\n\r\n");
  struct buf b = {0};
  ck_assert_int_eq(cl_read(fd, &b, "one;", WAIT_MS), 1);
  /* Held by the gate: nothing more arrives (a broken gate may be caught). */
  ck_assert_int_eq(cl_read(fd, &b, "two;", 100), 0);
  ck_assert_str_eq(b.p, "one;");
  ck_assert_int_eq(ts_server_open_connections(s), 1);
  ts_server_release(s, 8); /* not our gate */
  ts_server_release(s, 7);
  ck_assert_int_eq(cl_read(fd, &b, NULL, WAIT_MS), 1);
  ck_assert_str_eq(b.p, "one;two;three");
  buf_free(&b);
  close(fd);

  /* a gate already open lets later connections through at once */
  expect_exchange(s, "GET / HTTP/1.1\r\n\r\n", "one;two;three");
  ck_assert_int_eq(ts_server_wait_open_connections(s, 0, WAIT_MS), 0);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_hold_until_client_closes) {
  ts_server *s = tu_server_start();
  ts_script *sc = ts_server_add_script(s);
  ts_script_headers(sc);
  ts_script_hold(sc);
  ts_script_writes(sc, "unreachable");

  int fd = cl_request(s, "GET / HTTP/1.1\r\n\r\n");
  struct buf b = {0};
  ck_assert_int_eq(cl_read(fd, &b, "\r\n\r\n", WAIT_MS), 1);
  ck_assert_str_eq(b.p, HEADERS_200);
  ck_assert_int_eq(ts_server_open_connections(s), 1);
  ck_assert_int_eq(ts_server_client_closes(s), 0);
  ck_assert_int_eq(ts_server_wait_client_closes(s, 1, 50), 0);
  close(fd);
  ck_assert_int_eq(ts_server_wait_client_closes(s, 1, WAIT_MS), 1);
  ck_assert_int_eq(ts_server_wait_open_connections(s, 0, WAIT_MS), 0);
  buf_free(&b);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_client_close_while_writing) {
  ts_server *s = tu_server_start();
  ts_script *sc = ts_server_add_script(s);
  ts_script_headers(sc);
  ts_script_gate(sc, 1);
  static char big[256 * 1024];
  memset(big, 'x', sizeof big);
  for (int i = 0; i < 64; i++)
    ts_script_write(sc, big, sizeof big);

  int fd = cl_request(s, "GET / HTTP/1.1\r\n\r\n");
  struct buf b = {0};
  ck_assert_int_eq(cl_read(fd, &b, "\r\n\r\n", WAIT_MS), 1);
  close(fd);
  ts_server_release(s, 1);
  /* EPIPE/ECONNRESET, never SIGPIPE */
  ck_assert_int_eq(ts_server_wait_client_closes(s, 1, WAIT_MS), 1);
  ck_assert_int_eq(ts_server_wait_open_connections(s, 0, WAIT_MS), 0);
  buf_free(&b);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_large_write_arrives_whole) {
  ts_server *s = tu_server_start();
  size_t n = 2 * 1024 * 1024;
  char *big = malloc(n);
  ck_assert_ptr_nonnull(big);
  for (size_t i = 0; i < n; i++)
    big[i] = (char)('a' + i % 26);
  ts_script_write(ts_server_add_script(s), big, n);
  int fd = cl_request(s, "GET / HTTP/1.1\r\n\r\n");
  struct buf b = {0};
  ck_assert_int_eq(cl_read(fd, &b, NULL, WAIT_MS), 1);
  close(fd);
  ck_assert_uint_eq(b.len, n);
  ck_assert_int_eq(memcmp(b.p, big, n), 0);
  buf_free(&b);
  free(big);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_wait_requests_times_out) {
  ts_server *s = tu_server_start();
  ck_assert_int_eq(ts_server_wait_requests(s, 1, 30), 0);
  ck_assert_int_eq(ts_server_wait_client_closes(s, 1, 30), 0);
  /* a connection without a complete request is not a request */
  int fd = cl_request(s, "GET / HTTP/1.1\r\nHost: x\r\n");
  ck_assert_int_eq(ts_server_wait_requests(s, 1, 50), 0);
  close(fd);
  ck_assert_int_eq(ts_server_wait_open_connections(s, 0, WAIT_MS), 0);
  ck_assert_int_eq(ts_server_request_count(s), 0);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_stop_with_busy_connections) {
  ts_server *s = tu_server_start();
  ts_script *hold = ts_server_add_script(s);
  ts_script_headers(hold);
  ts_script_hold(hold);
  ts_script *gate = ts_server_add_script(s);
  ts_script_headers(gate);
  ts_script_gate(gate, 99);
  ts_script *slow = ts_server_add_script(s);
  ts_script_headers(slow);
  ts_script_sleep(slow, 60000);

  int fds[4];
  struct buf b = {0};
  for (int i = 0; i < 3; i++) {
    fds[i] = cl_request(s, "GET / HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(cl_read(fds[i], &b, "\r\n\r\n", WAIT_MS), 1);
    buf_free(&b);
  }
  /* one more that never completes its request */
  fds[3] = cl_request(s, "GET / HT");
  ck_assert_int_eq(ts_server_wait_requests(s, 3, WAIT_MS), 3);

  long t0 = tu_now_ms();
  ts_server_stop(s);
  ck_assert_int_lt(tu_now_ms() - t0, 3000);
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(cl_read(fds[i], &b, NULL, WAIT_MS), 1); /* EOF */
    buf_free(&b);
    close(fds[i]);
  }
}
END_TEST

START_TEST(test_two_servers) {
  ts_server *a = ts_server_start();
  ts_server *b = ts_server_start();
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_int_ne(ts_server_port(a), ts_server_port(b));
  ts_script_writes(ts_server_add_script(a), "A");
  ts_script_writes(ts_server_add_script(b), "B");
  char *ra = exchange(a, "GET / HTTP/1.1\r\n\r\n");
  char *rb = exchange(b, "GET / HTTP/1.1\r\n\r\n");
  ck_assert_str_eq(ra, "A");
  ck_assert_str_eq(rb, "B");
  free(ra);
  free(rb);
  ck_assert_int_eq(ts_server_request_count(a), 1);
  ck_assert_int_eq(ts_server_request_count(b), 1);
  ts_server_stop(a);
  ts_server_stop(b);
}
END_TEST

START_TEST(test_many_connections) {
  ts_server *s = tu_server_start();
  ts_script *sc = ts_server_add_script(s);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: x\n\n");
  int n = 200;
  for (int i = 0; i < n; i++) {
    char *resp = exchange(s, "GET / HTTP/1.1\r\n\r\n");
    ck_assert_uint_eq(strlen(resp), strlen(HEADERS_200) + 9);
    free(resp);
  }
  ck_assert_int_eq(ts_server_wait_requests(s, n, WAIT_MS), n);
  ck_assert_int_eq(ts_server_wait_open_connections(s, 0, WAIT_MS), 0);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_request_order_is_script_order) {
  /* request i always gets script i, whatever the threads' scheduling */
  ts_server *s = tu_server_start();
  ts_script *a = ts_server_add_script(s);
  ts_script_gate(a, 1);
  ts_script_writes(a, "first");
  ts_script_writes(ts_server_add_script(s), "second");
  for (int round = 0; round < 20; round++) {
    int fa = cl_connect(ts_server_port(s));
    int fb = cl_connect(ts_server_port(s));
    cl_sends(fa, "GET /a HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(ts_server_wait_requests(s, 2 * round + 1, WAIT_MS),
                     2 * round + 1);
    cl_sends(fb, "GET /b HTTP/1.1\r\n\r\n");
    struct buf b = {0};
    ck_assert_int_eq(cl_read(fb, &b, NULL, WAIT_MS), 1);
    ck_assert_str_eq(b.p, "second");
    buf_free(&b);
    ts_server_release(s, 1);
    ck_assert_int_eq(cl_read(fa, &b, NULL, WAIT_MS), 1);
    ck_assert_str_eq(b.p, round == 0 ? "first" : "second");
    buf_free(&b);
    close(fa);
    close(fb);
  }
  ts_server_stop(s);
}
END_TEST

static Suite *server_suite(void) {
  Suite *su = suite_create("sse_server");
  TCase *tc = tcase_create("server");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, test_url_and_port);
  tcase_add_test(tc, test_get_recorded_and_script_played);
  tcase_add_test(tc, test_post_body_content_length);
  tcase_add_test(tc, test_post_body_chunked_and_expect);
  tcase_add_test(tc, test_no_script_answers_503);
  tcase_add_test(tc, test_script_queue_and_replay);
  tcase_add_test(tc, test_status_lines);
  tcase_add_test(tc, test_gate_and_sleep);
  tcase_add_test(tc, test_hold_until_client_closes);
  tcase_add_test(tc, test_client_close_while_writing);
  tcase_add_test(tc, test_large_write_arrives_whole);
  tcase_add_test(tc, test_wait_requests_times_out);
  tcase_add_test(tc, test_stop_with_busy_connections);
  tcase_add_test(tc, test_two_servers);
  tcase_add_test(tc, test_many_connections);
  tcase_add_test(tc, test_request_order_is_script_order);
  suite_add_tcase(su, tc);
  return su;
}

int main(void) { return tu_run_suite(server_suite(), CK_ENV); }
