/*
 * test_server.c - the scripted loopback server (test/support/sse_server.c)
 * checked with plain sockets as the client; its TLS listener and the
 * compressed bodies of ts_encode.c with libcurl as the client (never the
 * library under test).
 */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "support/sse_server.h"
#include "support/ts_util.h"
#include "support/ts_encode.h"
#include "support/ts_tls.h"

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
  long deadline = ts_now_ms() + timeout_ms;
  for (;;) {
    if (needle && b->p && strstr(b->p, needle))
      return 1;
    long left = deadline - ts_now_ms();
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
  ts_server *s = ts_start_server();
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
  ts_server *s = ts_start_server();
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
  ts_server *s = ts_start_server();
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
  ts_server *s = ts_start_server();
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
  ts_server *s = ts_start_server();
  char *resp = exchange(s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ck_assert_msg(strncmp(resp, "HTTP/1.1 503 ", 13) == 0, "got %s", resp);
  free(resp);
  ck_assert_int_eq(ts_server_request_count(s), 1);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_script_queue_and_replay) {
  ts_server *s = ts_start_server();
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
  ts_server *s = ts_start_server();
  const char *const h[] = {"Location: /there", "X-A: 1", NULL};
  ts_script_status(ts_server_add_script(s), 307, "Temporary Redirect", h);
  expect_exchange(s, "GET / HTTP/1.1\r\n\r\n",
                  "HTTP/1.1 307 Temporary Redirect\r\nLocation: "
                  "/there\r\nX-A: 1\r\nConnection: close\r\n\r\n");
  ts_server_stop(s);
}
END_TEST

START_TEST(test_gate_and_sleep) {
  ts_server *s = ts_start_server();
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
  ts_server *s = ts_start_server();
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
  ts_server *s = ts_start_server();
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
  ts_server *s = ts_start_server();
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
  ts_server *s = ts_start_server();
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
  ts_server *s = ts_start_server();
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

  long t0 = ts_now_ms();
  ts_server_stop(s);
  ck_assert_int_lt(ts_now_ms() - t0, 3000);
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
  ts_server *s = ts_start_server();
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
  ts_server *s = ts_start_server();
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

/* ------------------------------------------------------------------------ */
/* Faults                                                                   */
/* ------------------------------------------------------------------------ */

/* Reads into b until the connection ends; 0 for EOF, the errno of a failed
 * read (ECONNRESET), or -1 on timeout. */
static int cl_read_end(int fd, struct buf *b, int timeout_ms) {
  long deadline = ts_now_ms() + timeout_ms;
  for (;;) {
    long left = deadline - ts_now_ms();
    if (left <= 0)
      return -1;
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    if (b->cap - b->len < 4097) {
      b->cap = b->cap * 2 + 8192;
      b->p = realloc(b->p, b->cap);
      ck_assert_ptr_nonnull(b->p);
    }
    ssize_t got = recv(fd, b->p + b->len, b->cap - b->len - 1, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return errno;
    if (got == 0)
      return 0;
    b->len += (size_t)got;
    b->p[b->len] = '\0';
  }
}

START_TEST(test_reset_and_fin) {
  ts_server *s = ts_start_server();
  ts_script *rst = ts_server_add_script(s);
  ts_script_headers(rst);
  ts_script_writes(rst, "data: before the reset\n\n");
  ts_script_reset(rst);
  ts_script_writes(rst, "never sent");
  ts_script *fin = ts_server_add_script(s);
  ts_script_writes(fin, "data: before the FIN\n\n");
  ts_script_close(fin);
  ts_script_writes(fin, "never sent");

  int fd = cl_request(s, "GET / HTTP/1.1\r\n\r\n");
  struct buf b = {0};
  /* The bytes written before the RST are read first, then ECONNRESET. */
  ck_assert_int_eq(cl_read_end(fd, &b, WAIT_MS), ECONNRESET);
  char want[512];
  snprintf(want, sizeof want, "%sdata: before the reset\n\n", HEADERS_200);
  ck_assert_str_eq(b.p, want);
  buf_free(&b);
  close(fd);

  fd = cl_request(s, "GET / HTTP/1.1\r\n\r\n");
  ck_assert_int_eq(cl_read_end(fd, &b, WAIT_MS), 0); /* EOF */
  ck_assert_str_eq(b.p, "data: before the FIN\n\n");
  buf_free(&b);
  close(fd);
  ck_assert_int_eq(ts_server_wait_open_connections(s, 0, WAIT_MS), 0);
  ck_assert_int_eq(ts_server_request_count(s), 2);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_drip_one_byte_per_send) {
  ts_server *s = ts_start_server();
  ts_script *sc = ts_server_add_script(s);
  ts_script_writes(sc, "[");
  ts_script_drip(sc, "drip", 4, 40);
  ts_script_writes(sc, "]");
  int fd = cl_request(s, "GET / HTTP/1.1\r\n\r\n");
  struct buf b = {0};
  ck_assert_int_eq(cl_read(fd, &b, "[", WAIT_MS), 1);
  long t0 = ts_now_ms();
  int reads = 0;
  size_t before = b.len;
  while (b.len < 6) { /* one read per arrival */
    struct pollfd p = {fd, POLLIN, 0};
    ck_assert_int_eq(poll(&p, 1, WAIT_MS), 1);
    ssize_t got = recv(fd, b.p + b.len, b.cap - b.len - 1, 0);
    ck_assert_int_gt(got, 0);
    b.len += (size_t)got;
    b.p[b.len] = '\0';
    reads++;
  }
  ck_assert_uint_gt(b.len, before);
  ck_assert_int_eq(cl_read(fd, &b, NULL, WAIT_MS), 1);
  long took = ts_now_ms() - t0;
  ck_assert_str_eq(b.p, "[drip]");
  /* three pauses of 40 ms between the four bytes */
  ck_assert_int_ge(took, 110);
  ck_assert_int_ge(reads, 2);
  buf_free(&b);
  close(fd);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_drip_stops_with_server) {
  ts_server *s = ts_start_server();
  ts_script *sc = ts_server_add_script(s);
  ts_script_drip(sc, "0123456789", 10, 10000);
  int fd = cl_request(s, "GET / HTTP/1.1\r\n\r\n");
  struct buf b = {0};
  ck_assert_int_eq(cl_read(fd, &b, "0", WAIT_MS), 1);
  long t0 = ts_now_ms();
  ts_server_stop(s);
  ck_assert_int_lt(ts_now_ms() - t0, 3000);
  ck_assert_int_eq(cl_read_end(fd, &b, WAIT_MS), 0);
  ck_assert_str_eq(b.p, "0");
  buf_free(&b);
  close(fd);
}
END_TEST

START_TEST(test_hold_alone_never_writes) {
  /* A server that accepts, reads the request and never answers. */
  ts_server *s = ts_start_server();
  ts_script_hold(ts_server_add_script(s));
  int fd = cl_request(s, "GET / HTTP/1.1\r\n\r\n");
  ck_assert_int_eq(ts_server_wait_requests(s, 1, WAIT_MS), 1);
  struct pollfd p = {fd, POLLIN, 0};
  ck_assert_int_eq(poll(&p, 1, 200), 0); /* not a byte, not an EOF */
  ck_assert_int_eq(ts_server_open_connections(s), 1);
  close(fd);
  ck_assert_int_eq(ts_server_wait_client_closes(s, 1, WAIT_MS), 1);
  ck_assert_int_eq(ts_server_wait_open_connections(s, 0, WAIT_MS), 0);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_fill_oversized_header) {
  ts_server *s = ts_start_server();
  ts_script *sc = ts_server_add_script(s);
  size_t n = 200 * 1024;
  ts_script_writes(sc, "HTTP/1.1 200 OK\r\nX-Big: ");
  ts_script_fill(sc, 'v', n);
  ts_script_writes(sc, "\r\n\r\n");
  ts_script_fill(sc, '-', 0); /* nothing */
  int fd = cl_request(s, "GET / HTTP/1.1\r\n\r\n");
  struct buf b = {0};
  ck_assert_int_eq(cl_read_end(fd, &b, WAIT_MS), 0);
  size_t head = strlen("HTTP/1.1 200 OK\r\nX-Big: ");
  ck_assert_uint_eq(b.len, head + n + 4);
  for (size_t i = 0; i < n; i++)
    if (b.p[head + i] != 'v')
      ck_abort_msg("byte %zu is %d", i, b.p[head + i]);
  ck_assert_str_eq(b.p + head + n, "\r\n\r\n");
  buf_free(&b);
  close(fd);
  ts_server_stop(s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* libcurl as the client                                                    */
/* ------------------------------------------------------------------------ */

struct cbuf {
  char *p;
  size_t len;
};

static size_t cbuf_write(char *ptr, size_t size, size_t n, void *ud) {
  struct cbuf *b = ud;
  size_t add = size * n;
  b->p = realloc(b->p, b->len + add + 1);
  ck_assert_ptr_nonnull(b->p);
  memcpy(b->p + b->len, ptr, add);
  b->len += add;
  b->p[b->len] = '\0';
  return add;
}

/* One GET of url with libcurl; the body in *body (caller frees b->p). ca:
 * the CA file (NULL: the system's); verify 0 turns verification off. */
static CURLcode curl_get(const char *url, const char *ca, int verify,
                         const char *accept_encoding, struct cbuf *body) {
  CURL *h = curl_easy_init();
  ck_assert_ptr_nonnull(h);
  memset(body, 0, sizeof *body);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)WAIT_MS);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cbuf_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
  if (ca)
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
  if (accept_encoding)
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, accept_encoding);
  CURLcode rc = curl_easy_perform(h);
  curl_easy_cleanup(h);
  return rc;
}

static int curl_has(int feature) {
  return (curl_version_info(CURLVERSION_NOW)->features & feature) != 0;
}

START_TEST(test_encode_roundtrip_through_curl) {
  /* An event stream with multi-byte UTF-8, repetitive enough to shrink. */
  size_t n = 0;
  char *text = malloc(64 * 1024);
  ck_assert_ptr_nonnull(text);
  for (int i = 0; n < 60 * 1024; i++)
    n += (size_t)snprintf(text + n, 64 * 1024 - n,
                          "id: %d\ndata: caf\xc3\xa9 \xe2\x82\xac%d \xf0\x9f\x98\x80\n\n",
                          i, i * 7);
  const char *codings[] = {"gzip", "deflate", "br", "zstd"};
  const int features[] = {CURL_VERSION_LIBZ, CURL_VERSION_LIBZ,
                          CURL_VERSION_BROTLI, CURL_VERSION_ZSTD};
  ts_server *s = ts_start_server();
  for (int i = 0; i < 4; i++) {
    unsigned char *enc = NULL;
    size_t elen = 0;
    ck_assert_int_eq(ts_encode(codings[i], text, n, &enc, &elen), 0);
    ck_assert_ptr_nonnull(enc);
    ck_assert_uint_gt(elen, 0);
    ck_assert_uint_lt(elen, n / 2);
    if (!curl_has(features[i])) {
      fprintf(stderr, "test_server: libcurl cannot decode %s: only encoded\n",
              codings[i]);
      free(enc);
      continue;
    }
    char head[256];
    snprintf(head, sizeof head,
             "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
             "Content-Encoding: %s\r\nContent-Length: %zu\r\n\r\n",
             codings[i], elen);
    ts_script *sc = ts_server_add_script(s);
    ts_script_writes(sc, head);
    ts_script_write(sc, enc, elen);
    free(enc);
    struct cbuf body;
    ck_assert_int_eq(curl_get(ts_server_url(s, "/"), NULL, 1, "", &body), CURLE_OK);
    ck_assert_msg(body.len == n && memcmp(body.p, text, n) == 0,
                  "%s: %zu bytes decoded, %zu sent", codings[i], body.len, n);
    free(body.p);
  }
  ts_server_stop(s);

  /* empty input, unknown codings */
  unsigned char *out = NULL;
  size_t olen = 0;
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(ts_encode(codings[i], "", 0, &out, &olen), 0);
    ck_assert_uint_gt(olen, 0);
    free(out);
    out = NULL;
  }
  ck_assert_int_eq(ts_encode("compress", text, n, &out, &olen), -1);
  ck_assert_int_eq(ts_encode("identity", text, n, &out, &olen), -1);
  ck_assert_int_eq(ts_encode(NULL, text, n, &out, &olen), -1);
  ck_assert_ptr_null(out);
  free(text);
}
END_TEST

START_TEST(test_tls_trusted) {
  ts_tls *t = ts_tls_new("IP:127.0.0.1");
  ck_assert_ptr_nonnull(t);
  const char *ca = ts_tls_ca_file(t);
  ck_assert_int_eq(access(ca, R_OK), 0);
  ts_server *s = ts_server_start_tls(t);
  ck_assert_ptr_nonnull(s);
  char want[64];
  snprintf(want, sizeof want, "https://127.0.0.1:%d/e", ts_server_port(s));
  ck_assert_str_eq(ts_server_url(s, "/e"), want);
  ts_script *sc = ts_server_add_script(s);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: one\n\n");
  ts_script_drip(sc, "data: two\n\n", 11, 1);
  sc = ts_server_add_script(s);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: cut\n\n");
  ts_script_reset(sc);

  struct cbuf body;
  ck_assert_int_eq(curl_get(ts_server_url(s, "/e?x=1"), ca, 1, NULL, &body), CURLE_OK);
  ck_assert_str_eq(body.p, "data: one\n\ndata: two\n\n");
  free(body.p);
  ts_request *r = malloc(sizeof *r);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(ts_server_get_request(s, 0, r), 0);
  ck_assert_str_eq(r->method, "GET");
  ck_assert_str_eq(r->path, "/e?x=1");
  free(r);
  /* a RST over TLS: the bytes before it, then a receive error */
  ck_assert_int_eq(curl_get(ts_server_url(s, "/"), ca, 1, NULL, &body),
                   CURLE_RECV_ERROR);
  ck_assert_str_eq(body.p, "data: cut\n\n");
  free(body.p);
  ck_assert_int_eq(ts_server_tls_failures(s), 0);
  /* the server holds its own reference to the context */
  char path[4096];
  snprintf(path, sizeof path, "%s", ca);
  ts_tls_free(t);
  ck_assert_int_eq(access(path, F_OK), -1); /* removed */
  ck_assert_int_eq(curl_get(ts_server_url(s, "/"), NULL, 0, NULL, &body),
                   CURLE_RECV_ERROR);
  free(body.p);
  ts_server_stop(s);
}
END_TEST

START_TEST(test_tls_untrusted_mismatched_and_plain) {
  ts_tls *good = ts_tls_new("IP:127.0.0.1");
  ts_tls *other = ts_tls_new("IP:127.0.0.1");
  ts_tls *wrong = ts_tls_new("DNS:wrong.invalid");
  ck_assert_ptr_nonnull(good);
  ck_assert_ptr_nonnull(other);
  ck_assert_ptr_nonnull(wrong);
  ts_server *s = ts_server_start_tls(good);
  ts_server *w = ts_server_start_tls(wrong);
  ck_assert_ptr_nonnull(s);
  ck_assert_ptr_nonnull(w);
  ts_script *sc = ts_server_add_script(s);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: ok\n\n");
  sc = ts_server_add_script(w);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: ok\n\n");

  struct cbuf body;
  /* another CA */
  ck_assert_int_eq(curl_get(ts_server_url(s, "/"), ts_tls_ca_file(other), 1,
                            NULL, &body),
                   CURLE_PEER_FAILED_VERIFICATION);
  free(body.p);
  ck_assert_int_eq(ts_server_wait_tls_failures(s, 1, WAIT_MS), 1);
  /* the system's CAs */
  ck_assert_int_eq(curl_get(ts_server_url(s, "/"), NULL, 1, NULL, &body),
                   CURLE_PEER_FAILED_VERIFICATION);
  free(body.p);
  ck_assert_int_eq(ts_server_wait_tls_failures(s, 2, WAIT_MS), 2);
  /* a plain HTTP client on the TLS port */
  int fd = cl_request(s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  struct buf b = {0};
  ck_assert_int_ne(cl_read_end(fd, &b, WAIT_MS), -1);
  buf_free(&b);
  close(fd);
  ck_assert_int_eq(ts_server_wait_tls_failures(s, 3, WAIT_MS), 3);
  ck_assert_int_eq(ts_server_request_count(s), 0);
  /* the server survived them all */
  ck_assert_int_eq(curl_get(ts_server_url(s, "/"), ts_tls_ca_file(good), 1,
                            NULL, &body),
                   CURLE_OK);
  ck_assert_str_eq(body.p, "data: ok\n\n");
  free(body.p);

  /* the trusted CA, a name that does not match */
  ck_assert_int_eq(curl_get(ts_server_url(w, "/"), ts_tls_ca_file(wrong), 1,
                            NULL, &body),
                   CURLE_PEER_FAILED_VERIFICATION);
  free(body.p);
  /* libcurl checks the name after the handshake, then closes without a
   * request */
  ck_assert_int_eq(ts_server_wait_open_connections(w, 0, WAIT_MS), 0);
  ck_assert_int_eq(ts_server_request_count(w), 0);
  /* only the name: without verification the same server answers */
  ck_assert_int_eq(curl_get(ts_server_url(w, "/"), NULL, 0, NULL, &body), CURLE_OK);
  ck_assert_str_eq(body.p, "data: ok\n\n");
  free(body.p);
  ck_assert_int_eq(ts_server_request_count(w), 1);

  ts_server_stop(s);
  ts_server_stop(w);
  ts_tls_free(good);
  ts_tls_free(other);
  ts_tls_free(wrong);
  ts_tls_free(NULL);
}
END_TEST

struct curl_run {
  const char *url, *ca;
  CURLcode rc;
  struct cbuf body;
  ts_count got; /* bumped for every piece of the body */
};

static size_t curl_run_write(char *ptr, size_t size, size_t n, void *ud) {
  struct curl_run *cr = ud;
  size_t r = cbuf_write(ptr, size, n, &cr->body);
  ts_count_inc(&cr->got);
  return r;
}

static void *curl_thread(void *arg) {
  struct curl_run *cr = arg;
  CURL *h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, cr->url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_CAINFO, cr->ca);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_run_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, cr);
  cr->rc = curl_easy_perform(h);
  curl_easy_cleanup(h);
  return NULL;
}

START_TEST(test_tls_hold_and_stop) {
  ts_tls *t = ts_tls_new(NULL); /* IP:127.0.0.1 */
  ck_assert_ptr_nonnull(t);
  ts_server *s = ts_server_start_tls(t);
  ck_assert_ptr_nonnull(s);
  ts_script *sc = ts_server_add_script(s);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: held\n\n");
  ts_script_hold(sc);
  char url[128];
  snprintf(url, sizeof url, "%s", ts_server_url(s, "/"));
  struct curl_run cr = {url, ts_tls_ca_file(t), CURLE_OK, {0}, {0}};
  ts_count_init(&cr.got);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, curl_thread, &cr), 0);
  ts_count_wait(&cr.got, 1); /* the body arrived: the server holds */
  ck_assert_int_eq(ts_server_open_connections(s), 1);
  long t0 = ts_now_ms();
  ts_server_stop(s);
  pthread_join(th, NULL);
  ck_assert_int_lt(ts_now_ms() - t0, 3000);
  ck_assert_int_ne(cr.rc, CURLE_OPERATION_TIMEDOUT);
  ck_assert_str_eq(cr.body.p, "data: held\n\n");
  free(cr.body.p);
  ts_count_destroy(&cr.got);
  ts_tls_free(t);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Handler mode                                                             */
/* ------------------------------------------------------------------------ */

struct echo {
  ts_count calls;
  int write_after_close; /* ts_conn_write's result after ts_conn_close */
  int flood_result;      /* /flood: the failing write's result */
  long flood_bytes;
};

static void echo_handler(ts_conn *c, const ts_request *req, void *ud) {
  struct echo *e = ud;
  char lei[256] = "-", out[2048];
  ts_request_header(req, "Last-Event-ID", lei, sizeof lei);
  if (strcmp(req->path, "/flood") == 0) {
    ck_assert_int_eq(ts_conn_writes(c, "HTTP/1.1 200 OK\r\n\r\n"), 0);
    static char chunk[64 * 1024];
    int rc;
    while ((rc = ts_conn_write(c, chunk, sizeof chunk)) == 0)
      e->flood_bytes += (long)sizeof chunk;
    e->flood_result = rc;
    ck_assert_int_eq(ts_conn_write(c, "x", 1), -1);
  } else {
    snprintf(out, sizeof out,
             "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n%s %s lei=%s body=%.*s",
             req->method, req->path, lei, (int)req->body_len,
             req->body ? req->body : "");
    ck_assert_int_eq(ts_conn_writes(c, out), 0);
    if (strcmp(req->path, "/rst") == 0 || strcmp(req->path, "/fin") == 0) {
      ts_conn_close(c, req->path[1] == 'r');
      ts_conn_close(c, 0); /* does nothing */
      e->write_after_close = ts_conn_write(c, "late", 4);
    }
  }
  ck_assert_ptr_eq(ts_conn_server(c), ts_conn_server(c));
  ts_count_inc(&e->calls);
}

START_TEST(test_handler_mode) {
  struct echo e;
  memset(&e, 0, sizeof e);
  ts_count_init(&e.calls);
  ts_server *s = ts_start_server();
  ts_script_writes(ts_server_add_script(s), "scripted");
  ts_server_set_handler(s, echo_handler, &e);

  expect_exchange(s, "GET /a HTTP/1.1\r\nLast-Event-ID: 41\r\n\r\n",
                  "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nGET /a lei=41 body=");
  expect_exchange(s, "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz",
                  "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nPOST /b lei=- body=xyz");
  /* recorded like any request */
  ck_assert_int_eq(ts_server_wait_requests(s, 2, WAIT_MS), 2);
  ts_request *r = malloc(sizeof *r);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(ts_server_get_request(s, 1, r), 0);
  ck_assert_str_eq(r->path, "/b");
  ck_assert_str_eq(r->body, "xyz");
  free(r);

  /* closes: RST and FIN, later writes fail */
  int fd = cl_request(s, "GET /rst HTTP/1.1\r\n\r\n");
  struct buf b = {0};
  ck_assert_int_eq(cl_read_end(fd, &b, WAIT_MS), ECONNRESET);
  ck_assert_ptr_nonnull(strstr(b.p, "GET /rst lei=-"));
  buf_free(&b);
  close(fd);
  ts_count_wait(&e.calls, 3);
  ck_assert_int_eq(e.write_after_close, -1);
  e.write_after_close = 0;
  fd = cl_request(s, "GET /fin HTTP/1.1\r\n\r\n");
  ck_assert_int_eq(cl_read_end(fd, &b, WAIT_MS), 0);
  ck_assert_ptr_nonnull(strstr(b.p, "GET /fin lei=-"));
  buf_free(&b);
  close(fd);
  ts_count_wait(&e.calls, 4);
  ck_assert_int_eq(e.write_after_close, -1);

  /* a write to a client that went away fails, and counts as its close */
  ck_assert_int_eq(ts_server_client_closes(s), 0);
  fd = cl_request(s, "GET /flood HTTP/1.1\r\n\r\n");
  ck_assert_int_eq(cl_read(fd, &b, "\r\n\r\n", WAIT_MS), 1);
  buf_free(&b);
  close(fd);
  ts_count_wait(&e.calls, 5);
  ck_assert_int_eq(e.flood_result, -1);
  ck_assert_int_eq(ts_server_wait_client_closes(s, 1, WAIT_MS), 1);

  /* back to scripts: the queue was left alone */
  ts_server_set_handler(s, NULL, NULL);
  expect_exchange(s, "GET / HTTP/1.1\r\n\r\n", "scripted");
  ck_assert_int_eq(ts_server_wait_open_connections(s, 0, WAIT_MS), 0);
  ts_server_stop(s);
  ts_count_destroy(&e.calls);
}
END_TEST

START_TEST(test_handler_over_tls) {
  struct echo e;
  memset(&e, 0, sizeof e);
  ts_count_init(&e.calls);
  ts_tls *t = ts_tls_new("IP:127.0.0.1");
  ck_assert_ptr_nonnull(t);
  ts_server *s = ts_server_start_tls(t);
  ck_assert_ptr_nonnull(s);
  ts_server_set_handler(s, echo_handler, &e);
  struct cbuf body;
  ck_assert_int_eq(curl_get(ts_server_url(s, "/secure"), ts_tls_ca_file(t), 1,
                            NULL, &body),
                   CURLE_OK);
  ck_assert_str_eq(body.p, "GET /secure lei=- body=");
  free(body.p);
  ck_assert_int_eq(curl_get(ts_server_url(s, "/rst"), ts_tls_ca_file(t), 1,
                            NULL, &body),
                   CURLE_RECV_ERROR);
  ck_assert_str_eq(body.p, "GET /rst lei=- body=");
  free(body.p);
  ts_server_stop(s);
  ts_tls_free(t);
  ts_count_destroy(&e.calls);
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

  TCase *faults = tcase_create("faults");
  tcase_set_timeout(faults, 20);
  tcase_add_test(faults, test_reset_and_fin);
  tcase_add_test(faults, test_drip_one_byte_per_send);
  tcase_add_test(faults, test_drip_stops_with_server);
  tcase_add_test(faults, test_hold_alone_never_writes);
  tcase_add_test(faults, test_fill_oversized_header);
  tcase_add_test(faults, test_encode_roundtrip_through_curl);
  suite_add_tcase(su, faults);

  TCase *tls = tcase_create("tls");
  tcase_set_timeout(tls, 30);
  tcase_add_test(tls, test_tls_trusted);
  tcase_add_test(tls, test_tls_untrusted_mismatched_and_plain);
  tcase_add_test(tls, test_tls_hold_and_stop);
  suite_add_tcase(su, tls);

  TCase *handler = tcase_create("handler");
  tcase_set_timeout(handler, 20);
  tcase_add_test(handler, test_handler_mode);
  tcase_add_test(handler, test_handler_over_tls);
  suite_add_tcase(su, handler);
  return su;
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = ts_run_suite(server_suite(), CK_ENV);
  curl_global_cleanup();
  return rc;
}
