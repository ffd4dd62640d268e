/*
 * test_contract.c - the sse-contract-tests service (test/contract/) on its
 * own: each test starts $ES_BUILD_DIR/test/contract/sse-test-service on a
 * free loopback port, a scripted SSE server for its streams and a second
 * loopback server that records the service's callbacks (both
 * test/support/sse_server.h), and drives the service's HTTP protocol with
 * libcurl, as the suite does. Every test runs twice: with the service's
 * multi driver (all sources in one eventsource_multi_t) and with its start
 * driver (eventsource_start(), a thread per source).
 *
 * Copyright (c) 2026 the libeventsource developers. MIT licence, see COPYING.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/sse_server.h"
#include "support/ts_util.h"

#define WAIT_MS 10000
#define TEST_TIMEOUT 30

/* ------------------------------------------------------------------------ */
/* Fixture: the service, the stream server, the callback receiver            */
/* ------------------------------------------------------------------------ */

static struct {
  const char *driver;   /* the service's --driver */
  pid_t pid;            /* the service, 0 once reaped */
  int exit_status;      /* wait status once reaped */
  char base[64];        /* "http://127.0.0.1:PORT" */
  ts_server *stream;    /* the SSE endpoint the service's sources connect to */
  ts_server *cb;        /* records the service's callbacks */
  char stream_url[256];
  char cb_url[256];
} fx;

static void service_path(char *out, size_t size) {
  const char *dir = getenv("ES_BUILD_DIR");

  if (dir && *dir)
    snprintf(out, size, "%s/test/contract/sse-test-service", dir);
  else
    snprintf(out, size, "build/test/contract/sse-test-service");
}

static void service_start(void) {
  char path[4096], fdarg[16], portbuf[32];
  char *argv[10];
  size_t got = 0;
  int p[2], i = 0;
  pid_t pid;

  service_path(path, sizeof path);
  ck_assert_msg(access(path, X_OK) == 0,
                "%s is missing: build it (make O=... run-tests builds it)", path);
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  /* Everything the child needs is prepared before fork(): the test process
   * has threads (the loopback servers). */
  snprintf(fdarg, sizeof fdarg, "%d", p[1]);
  argv[i++] = path;
  argv[i++] = (char *)"--port";
  argv[i++] = (char *)"0";
  argv[i++] = (char *)"--ready-fd";
  argv[i++] = fdarg;
  argv[i++] = (char *)"--driver";
  argv[i++] = (char *)fx.driver;
  if (getenv("ES_CONTRACT_VERBOSE"))
    argv[i++] = (char *)"-v";
  argv[i] = NULL;
  pid = fork();
  if (pid == 0) {
    /* Only async-signal-safe calls until execv(), and no Check macro (not
     * even the ck_assert on pid: a passing one records its location, which
     * mallocs). The servers' threads may hold an allocator lock at fork();
     * in the child no thread ever releases it, and under ASan malloc then
     * waits for ever, so the service never starts. Never outlive the test
     * process, whatever happens to it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(p[0]);
    fcntl(p[1], F_SETFD, 0);
    execv(path, argv);
    _exit(127);
  }
  ck_assert_int_ge(pid, 0);
  close(p[1]);
  fx.pid = pid;
  /* The service writes its port once it accepts requests. */
  while (got < sizeof portbuf - 1) {
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    ssize_t n;

    ck_assert_msg(poll(&pfd, 1, WAIT_MS) == 1, "the service did not start");
    n = read(p[0], portbuf + got, sizeof portbuf - 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
    if (memchr(portbuf, '\n', got))
      break;
  }
  close(p[0]);
  portbuf[got] = '\0';
  ck_assert_msg(got > 1 && atoi(portbuf) > 0, "the service did not report its port");
  snprintf(fx.base, sizeof fx.base, "http://127.0.0.1:%d", atoi(portbuf));
}

/* Waits for the service to exit (blocking: the test's timeout bounds it). */
static int service_wait(void) {
  int st;

  if (fx.pid <= 0)
    return fx.exit_status;
  while (waitpid(fx.pid, &st, 0) < 0 && errno == EINTR)
    ;
  fx.pid = 0;
  fx.exit_status = st;
  return st;
}

/* ------------------------------------------------------------------------ */
/* HTTP client                                                              */
/* ------------------------------------------------------------------------ */

typedef struct resp {
  long status;
  char body[8192];
  size_t len;
  char location[256];
  char content_type[256];
} resp_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  resp_t *r = ud;
  size_t n = size * nmemb, room = sizeof r->body - 1 - r->len;

  memcpy(r->body + r->len, ptr, n < room ? n : room);
  r->len += n < room ? n : room;
  r->body[r->len] = '\0';
  return n;
}

static void header_value(const char *line, size_t n, const char *name,
                         char *out, size_t outsize) {
  size_t nl = strlen(name), vlen;

  if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
    return;
  line += nl + 1;
  n -= nl + 1;
  while (n && (*line == ' ' || *line == '\t'))
    line++, n--;
  while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
    n--;
  vlen = n < outsize - 1 ? n : outsize - 1;
  memcpy(out, line, vlen);
  out[vlen] = '\0';
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  resp_t *r = ud;
  size_t n = size * nmemb;

  header_value(ptr, n, "Location", r->location, sizeof r->location);
  header_value(ptr, n, "Content-Type", r->content_type, sizeof r->content_type);
  return n;
}

/* method path-on-the-service [body] -> status (0 when no answer). */
static long http(const char *method, const char *path, const char *body,
                 resp_t *r) {
  static resp_t scratch;
  CURL *c = curl_easy_init();
  struct curl_slist *h = NULL;
  char url[512];
  CURLcode rc;

  if (!r)
    r = &scratch;
  memset(r, 0, sizeof *r);
  ck_assert_ptr_nonnull(c);
  snprintf(url, sizeof url, "%s%s", fx.base, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)WAIT_MS);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  if (body) {
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  rc = curl_easy_perform(c);
  if (rc == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r->status;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static void setup(const char *driver) {
  memset(&fx, 0, sizeof fx);
  fx.driver = driver;
  fx.stream = ts_start_server();
  fx.cb = ts_start_server();
  /* Every callback is answered 202, as the suite does. */
  ts_script_status(ts_server_add_script(fx.cb), 202, "Accepted", NULL);
  snprintf(fx.stream_url, sizeof fx.stream_url, "%s", ts_server_url(fx.stream, "/stream"));
  snprintf(fx.cb_url, sizeof fx.cb_url, "%s", ts_server_url(fx.cb, "/cb"));
  service_start();
}

/* Every test runs with both of the service's drivers. */
static void setup_multi(void) { setup("multi"); }
static void setup_start(void) { setup("start"); }

/* Stops the service if the test did not, and checks that it exited with
 * status 0: under ASan that also means it leaked nothing. */
static void teardown(void) {
  long status = 0;
  int st;

  if (fx.pid > 0) {
    status = http("DELETE", "/", NULL, NULL);
    if (status == 0)
      kill(fx.pid, SIGKILL);
  }
  st = service_wait();
  ts_server_stop(fx.stream);
  ts_server_stop(fx.cb);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "the service did not exit cleanly (DELETE / -> %ld, wait status %d)",
                status, st);
}

/* POSTs / with streamUrl, callbackUrl, tag and the given extra members
 * (",\"name\":value..." or ""); returns the status, the stream's path in
 * path (if not NULL). */
static long create_stream(const char *extra, char *path, size_t pathsize) {
  char body[4096];
  resp_t r;
  long status;

  snprintf(body, sizeof body,
           "{\"streamUrl\":\"%s\",\"callbackUrl\":\"%s\",\"tag\":\"test\"%s}",
           fx.stream_url, fx.cb_url, extra);
  status = http("POST", "/", body, &r);
  if (status == 201) {
    ck_assert_msg(strncmp(r.location, "/streams/", 9) == 0,
                  "Location \"%s\" is not /streams/N", r.location);
    if (path)
      snprintf(path, pathsize, "%s", r.location);
  }
  return status;
}

static void wait_stream_requests(int n) {
  ck_assert_int_ge(ts_server_wait_requests(fx.stream, n, WAIT_MS), n);
}

/* Callback i (from 1): checks method, path and content type, returns the
 * parsed body (cJSON_Delete it); its raw text in raw (if not NULL). */
static cJSON *callback_raw(int i, char *raw, size_t rawsize) {
  ts_request *req = calloc(1, sizeof *req);
  char want[300], ctype[256];
  cJSON *j;

  ck_assert_ptr_nonnull(req);
  ck_assert_msg(ts_server_wait_requests(fx.cb, i, WAIT_MS) >= i,
                "callback %d never came", i);
  ck_assert_int_eq(ts_server_get_request(fx.cb, i - 1, req), 0);
  ck_assert_str_eq(req->method, "POST");
  snprintf(want, sizeof want, "/cb/%d", i);
  ck_assert_str_eq(req->path, want);
  ck_assert(ts_request_header(req, "Content-Type", ctype, sizeof ctype));
  ck_assert_str_eq(ctype, "application/json");
  ck_assert_ptr_nonnull(req->body);
  j = cJSON_ParseWithLength(req->body, req->body_len);
  ck_assert_msg(j != NULL, "callback %d is not JSON: %.*s", i, (int)req->body_len,
                req->body);
  if (raw)
    snprintf(raw, rawsize, "%.*s", (int)req->body_len, req->body);
  free(req);
  return j;
}

static const char *str_member(const cJSON *o, const char *name) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

  ck_assert_msg(cJSON_IsString(it), "member %s missing or not a string", name);
  return it->valuestring;
}

static void expect_event(int i, const char *type, const char *data,
                         const char *id) {
  char raw[2048];
  cJSON *j = callback_raw(i, raw, sizeof raw);
  const cJSON *ev;

  ck_assert_msg(strcmp(str_member(j, "kind"), "event") == 0,
                "callback %d is not an event: %s", i, raw);
  ev = cJSON_GetObjectItemCaseSensitive(j, "event");
  ck_assert(cJSON_IsObject(ev));
  ck_assert_str_eq(str_member(ev, "type"), type);
  ck_assert_str_eq(str_member(ev, "data"), data);
  ck_assert_str_eq(str_member(ev, "id"), id);
  cJSON_Delete(j);
}

static void expect_comment(int i, const char *text) {
  char raw[2048];
  cJSON *j = callback_raw(i, raw, sizeof raw);

  ck_assert_msg(strcmp(str_member(j, "kind"), "comment") == 0,
                "callback %d is not a comment: %s", i, raw);
  ck_assert_str_eq(str_member(j, "comment"), text);
  cJSON_Delete(j);
}

/* Returns the error message (static copy). */
static const char *expect_error(int i) {
  static char msg[1024];
  char raw[2048];
  cJSON *j = callback_raw(i, raw, sizeof raw);

  ck_assert_msg(strcmp(str_member(j, "kind"), "error") == 0,
                "callback %d is not an error: %s", i, raw);
  snprintf(msg, sizeof msg, "%s", str_member(j, "error"));
  ck_assert_msg(msg[0] != '\0', "empty error message");
  cJSON_Delete(j);
  return msg;
}

static ts_script *sse_script(void) {
  ts_script *sc = ts_server_add_script(fx.stream);

  ts_script_headers(sc);
  return sc;
}

/* A 200 text/event-stream answer: body, then hold (or close). */
static void sse_stream(const char *body, int hold) {
  ts_script *sc = sse_script();

  ts_script_writes(sc, body);
  if (hold)
    ts_script_hold(sc);
  else
    ts_script_close(sc);
}

/* The "restart" command on the stream at path, accepted. */
static void restart_stream(const char *path) {
  ck_assert_int_eq(http("POST", path, "{\"command\":\"restart\"}", NULL), 204);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(test_capabilities) {
  static const char *const want[] = {
      "comments", "headers", "last-event-id", "post", "report", "read-timeout",
      "restart", "bom", "server-directed-shutdown-request",
      "event-type-listeners"};
  resp_t r;
  cJSON *j, *caps;
  size_t i;

  ck_assert_int_eq(http("GET", "/", NULL, &r), 200);
  ck_assert_msg(strncmp(r.content_type, "application/json", 16) == 0,
                "Content-Type %s", r.content_type);
  j = cJSON_Parse(r.body);
  ck_assert_ptr_nonnull(j);
  ck_assert_str_eq(str_member(j, "name"), "libeventsource");
  caps = cJSON_GetObjectItemCaseSensitive(j, "capabilities");
  ck_assert(cJSON_IsArray(caps));
  for (i = 0; i < sizeof want / sizeof want[0]; i++) {
    const cJSON *c;
    int found = 0;

    cJSON_ArrayForEach(c, caps) {
      if (cJSON_IsString(c) && strcmp(c->valuestring, want[i]) == 0)
        found = 1;
    }
    ck_assert_msg(found, "capability %s missing", want[i]);
  }
  cJSON_Delete(j);
}
END_TEST

START_TEST(test_callbacks_in_order) {
  ts_script *sc = sse_script();
  char path[256];
  const char *err;

  ts_script_writes(sc, "id: 1\ndata: one\n\n");
  ts_script_writes(sc, ":note\n");
  ts_script_writes(sc, "data: two\n\n");
  ts_script_writes(sc, "data: q\"b\\s\tt \xe2\x82\xac\x01\n\n");
  ts_script_write(sc, "data: a\0b\n\n", 11); /* U+0000 in the data */
  ts_script_writes(sc, "data: \xff!\n\n");  /* not UTF-8: U+FFFD */
  ts_script_close(sc);
  /* A long reconnection delay: nothing else happens during the test. */
  ck_assert_int_eq(create_stream(",\"initialDelayMs\":60000", path, sizeof path), 201);
  ck_assert_str_eq(path, "/streams/1");

  expect_event(1, "message", "one", "1");
  expect_comment(2, "note");
  expect_event(3, "message", "two", "1"); /* the last event ID is kept */
  expect_event(4, "message", "q\"b\\s\tt \xe2\x82\xac\x01", "1");
  {
    char raw[512];
    cJSON *j = callback_raw(5, raw, sizeof raw);

    ck_assert_msg(strstr(raw, "\"data\":\"a\\u0000b\"") != NULL, "callback 5: %s", raw);
    cJSON_Delete(j);
  }
  expect_event(6, "message", "\xef\xbf\xbd!", "1");
  err = expect_error(7);
  ck_assert_msg(strncmp(err, "EOF", 3) == 0, "error: %s", err);
  ck_assert_msg(strstr(err, "reconnecting in 60000 ms") != NULL, "error: %s", err);
  ck_assert_int_eq(ts_server_request_count(fx.stream), 1);
}
END_TEST

START_TEST(test_listen) {
  ts_script *sc = sse_script();
  char path[256];
  char body[128];

  ts_script_gate(sc, 1);
  ts_script_writes(sc, "event: other\ndata: x\n\n");
  ts_script_writes(sc, "event: greeting\ndata: hi\n\n");
  ts_script_writes(sc, "event: error\ndata: server error event\n\n");
  ts_script_writes(sc, "data: m\n\n");
  ts_script_hold(sc);
  ck_assert_int_eq(create_stream("", path, sizeof path), 201);
  wait_stream_requests(1);

  /* The suite sends the member as "Listen" (a Go field without a tag). */
  ck_assert_int_eq(http("POST", path, "{\"command\":\"listen\",\"Listen\":{\"type\":\"greeting\"}}", NULL), 204);
  ck_assert_int_eq(http("POST", path, "{\"command\":\"listen\",\"listen\":{\"type\":\"error\"}}", NULL), 204);
  /* Listening twice to a type adds no second listener. */
  ck_assert_int_eq(http("POST", path, "{\"command\":\"listen\",\"listen\":{\"type\":\"greeting\"}}", NULL), 204);
  snprintf(body, sizeof body, "{\"command\":\"listen\",\"listen\":{}}");
  ck_assert_int_eq(http("POST", path, body, NULL), 400);
  ts_server_release(fx.stream, 1);

  /* "other" is not listened to: dropped. */
  expect_event(1, "greeting", "hi", "");
  expect_event(2, "error", "server error event", "");
  expect_event(3, "message", "m", "");
}
END_TEST

START_TEST(test_restart) {
  char path[256];

  sse_stream("id: a1\ndata: a\n\n", 1);
  sse_stream("data: b\n\n", 1);
  ck_assert_int_eq(create_stream(",\"initialDelayMs\":0", path, sizeof path), 201);
  expect_event(1, "message", "a", "a1");

  restart_stream(path);
  wait_stream_requests(2);
  ck_assert_int_ge(ts_server_wait_client_closes(fx.stream, 1, WAIT_MS), 1);
  /* No error callback between the two events. */
  expect_event(2, "message", "b", "a1");
  {
    ts_request *req = calloc(1, sizeof *req);
    char v[64];

    ck_assert_ptr_nonnull(req);
    ck_assert_int_eq(ts_server_get_request(fx.stream, 1, req), 0);
    ck_assert(ts_request_header(req, "Last-Event-ID", v, sizeof v));
    ck_assert_str_eq(v, "a1");
    free(req);
  }
}
END_TEST

START_TEST(test_restart_during_wait) {
  char path[256];
  const char *err;

  sse_stream("data: a\n\n", 0);
  sse_stream("data: b\n\n", 1);
  /* The server ends the stream; the source waits a minute to reconnect... */
  ck_assert_int_eq(create_stream(",\"initialDelayMs\":60000", path, sizeof path), 201);
  expect_event(1, "message", "a", "");
  err = expect_error(2);
  ck_assert_msg(strstr(err, "reconnecting in 60000 ms") != NULL, "error: %s", err);
  /* ... unless restarted, which reconnects at once. */
  restart_stream(path);
  wait_stream_requests(2);
  expect_event(3, "message", "b", "");
}
END_TEST

START_TEST(test_delete_and_unknown_streams) {
  ts_script *sc = sse_script();
  char path[256];

  ts_script_hold(sc);
  ck_assert_int_eq(create_stream("", path, sizeof path), 201);
  wait_stream_requests(1);

  ck_assert_int_eq(http("DELETE", path, NULL, NULL), 204);
  /* The source is closed: its connection is dropped. */
  ck_assert_int_ge(ts_server_wait_client_closes(fx.stream, 1, WAIT_MS), 1);
  ck_assert_int_eq(http("DELETE", path, NULL, NULL), 404);
  ck_assert_int_eq(http("POST", path, "{\"command\":\"restart\"}", NULL), 404);
  ck_assert_int_eq(http("POST", "/streams/999", "{\"command\":\"restart\"}", NULL), 404);
  ck_assert_int_eq(http("DELETE", "/streams/999", NULL, NULL), 404);
  ck_assert_int_eq(http("DELETE", "/streams/abc", NULL, NULL), 404);
  ck_assert_int_eq(http("GET", "/nowhere", NULL, NULL), 404);

  /* The next stream gets the next number. */
  ck_assert_int_eq(create_stream("", path, sizeof path), 201);
  ck_assert_str_eq(path, "/streams/2");
  ck_assert_int_eq(http("DELETE", path, NULL, NULL), 204);
}
END_TEST

START_TEST(test_bad_commands) {
  char path[256];

  sse_stream("data: a\n\n", 1);
  sse_stream("data: b\n\n", 1);
  ck_assert_int_eq(create_stream(",\"initialDelayMs\":0", path, sizeof path), 201);
  expect_event(1, "message", "a", "");

  ck_assert_int_eq(http("POST", path, "{\"command\":\"dance\"}", NULL), 400);
  ck_assert_int_eq(http("POST", path, "{\"command\":7}", NULL), 400);
  ck_assert_int_eq(http("POST", path, "{}", NULL), 400);
  ck_assert_int_eq(http("POST", path, "not json", NULL), 400);
  ck_assert_int_eq(http("POST", path, "{\"command\":\"listen\"}", NULL), 400);
  /* The stream is unharmed. */
  restart_stream(path);
  expect_event(2, "message", "b", "");
}
END_TEST

START_TEST(test_create_parameters) {
  static const char *const bad[] = {
      "{",
      "[]",
      "\"x\"",
      "{\"callbackUrl\":\"http://127.0.0.1:1/cb\"}",
      "{\"streamUrl\":\"http://127.0.0.1:1/s\"}",
      "{\"streamUrl\":5,\"callbackUrl\":\"http://127.0.0.1:1/cb\"}",
      "{\"streamUrl\":\"http://127.0.0.1:1/s\",\"callbackUrl\":null}",
      "{\"streamUrl\":\"ftp://127.0.0.1:1/s\",\"callbackUrl\":\"http://127.0.0.1:1/cb\"}",
      "{\"streamUrl\":\"http://127.0.0.1:1/s\",\"callbackUrl\":\"nonsense\"}",
      "{\"streamUrl\":\"http://127.0.0.1:1/s\",\"callbackUrl\":\"http://127.0.0.1:1/cb\",\"tag\":1}",
  };
  static const char *const bad_extra[] = {
      ",\"initialDelayMs\":\"10\"",
      ",\"initialDelayMs\":-1",
      ",\"initialDelayMs\":1.5",
      ",\"readTimeoutMs\":true",
      ",\"readTimeoutMs\":{}",
      ",\"lastEventId\":3",
      ",\"method\":[]",
      ",\"body\":false",
      ",\"headers\":[]",
      ",\"headers\":\"x\"",
      ",\"headers\":{\"x-a\":1}",
      ",\"headers\":{\"bad name\":\"v\"}",
      ",\"headers\":{\"x-a\":\"line\\r\\nbreak\"}",
      ",\"method\":\"NOT A TOKEN\"",
      ",\"lastEventId\":\"a\\nb\"",
  };
  size_t i;

  ts_script_hold(sse_script());
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    resp_t r;

    ck_assert_msg(http("POST", "/", bad[i], &r) == 400, "%s: %ld", bad[i], r.status);
  }
  for (i = 0; i < sizeof bad_extra / sizeof bad_extra[0]; i++)
    ck_assert_msg(create_stream(bad_extra[i], NULL, 0) == 400, "%s", bad_extra[i]);
  /* Nothing was created. */
  ck_assert_int_eq(ts_server_request_count(fx.stream), 0);

  /* null is absent; absent optional members are fine. */
  ck_assert_int_eq(create_stream(",\"initialDelayMs\":null,\"readTimeoutMs\":null,"
                                 "\"lastEventId\":null,\"method\":null,\"body\":null,"
                                 "\"headers\":null", NULL, 0), 201);
  ck_assert_int_eq(create_stream(",\"initialDelayMs\":0,\"readTimeoutMs\":0,"
                                 "\"lastEventId\":\"\",\"headers\":{},\"unknown\":[1]",
                                 NULL, 0), 201);
  {
    char body[1024];

    snprintf(body, sizeof body, "{\"streamUrl\":\"%s\",\"callbackUrl\":\"%s\"}",
             fx.stream_url, fx.cb_url);
    ck_assert_int_eq(http("POST", "/", body, NULL), 201);
  }
  wait_stream_requests(3);
}
END_TEST

START_TEST(test_request_options) {
  ts_script *sc = sse_script();
  ts_request *req = calloc(1, sizeof *req);
  char v[256];

  ck_assert_ptr_nonnull(req);
  ts_script_hold(sc);
  ck_assert_int_eq(create_stream(",\"method\":\"REPORT\",\"body\":\"{\\\"hello\\\": \\\"world\\\"}\","
                                 "\"lastEventId\":\"abc\",\"headers\":{\"content-type\":"
                                 "\"application/json; charset=utf-8\",\"x-custom\":\"v1\"}",
                                 NULL, 0), 201);
  wait_stream_requests(1);
  ck_assert_int_eq(ts_server_get_request(fx.stream, 0, req), 0);
  ck_assert_str_eq(req->method, "REPORT");
  ck_assert_str_eq(req->path, "/stream");
  ck_assert_uint_eq(req->body_len, strlen("{\"hello\": \"world\"}"));
  ck_assert(memcmp(req->body, "{\"hello\": \"world\"}", req->body_len) == 0);
  ck_assert(ts_request_header(req, "Content-Type", v, sizeof v));
  ck_assert_str_eq(v, "application/json; charset=utf-8");
  ck_assert(ts_request_header(req, "X-Custom", v, sizeof v));
  ck_assert_str_eq(v, "v1");
  ck_assert(ts_request_header(req, "Last-Event-ID", v, sizeof v));
  ck_assert_str_eq(v, "abc");
  ck_assert(ts_request_header(req, "Accept", v, sizeof v));
  ck_assert_str_eq(v, "text/event-stream");
  free(req);
}
END_TEST

START_TEST(test_read_timeout) {
  const char *err;
  int i;

  sse_stream("data: a\n\n", 1);
  sse_stream("data: b\n\n", 1);
  ck_assert_int_eq(create_stream(",\"initialDelayMs\":0,\"readTimeoutMs\":300", NULL, 0), 201);
  expect_event(1, "message", "a", "");
  err = expect_error(2);
  ck_assert_msg(strncmp(err, "READ_TIMEOUT", 12) == 0, "error: %s", err);
  wait_stream_requests(2);
  /* The new connection works. On a loaded machine it may itself time out
   * before "b" arrives (then the last script is replayed): skip such
   * READ_TIMEOUT errors, nothing else. */
  for (i = 3;; i++) {
    char raw[2048];
    cJSON *j = callback_raw(i, raw, sizeof raw);
    int is_timeout = strcmp(str_member(j, "kind"), "error") == 0 &&
                     strncmp(str_member(j, "error"), "READ_TIMEOUT", 12) == 0;

    cJSON_Delete(j);
    if (!is_timeout)
      break;
    ck_assert_msg(i < 10, "the source keeps timing out");
  }
  expect_event(i, "message", "b", "");
}
END_TEST

START_TEST(test_204_stops) {
  const char *err;

  ts_script_status(ts_server_add_script(fx.stream), 204, "No Content", NULL);
  ck_assert_int_eq(create_stream(",\"initialDelayMs\":0", NULL, 0), 201);
  err = expect_error(1);
  ck_assert_msg(strstr(err, "not reconnecting") != NULL, "error: %s", err);
  ck_assert_int_eq(ts_server_request_count(fx.stream), 1);
  /* The source is CLOSED: it cannot be restarted. */
  ck_assert_int_eq(http("POST", "/streams/1", "{\"command\":\"restart\"}", NULL), 409);
  ck_assert_int_eq(http("DELETE", "/streams/1", NULL, NULL), 204);
}
END_TEST

START_TEST(test_shutdown) {
  int st;

  sse_stream("data: a\n\n", 1);
  /* Live streams with pending work do not keep the service from exiting. */
  ck_assert_int_eq(create_stream("", NULL, 0), 201);
  ck_assert_int_eq(create_stream("", NULL, 0), 201);
  wait_stream_requests(2);
  ck_assert_int_eq(http("DELETE", "/", NULL, NULL), 204);
  st = service_wait();
  ck_assert_msg(WIFEXITED(st), "the service did not exit normally (status %d)", st);
  ck_assert_int_eq(WEXITSTATUS(st), 0);
  ck_assert_int_ge(ts_server_wait_client_closes(fx.stream, 2, WAIT_MS), 2);
}
END_TEST

static Suite *contract_suite(void) {
  Suite *s = suite_create("contract");
  struct {
    const char *name;
    const TTest *fn;
  } tests[] = {
      {"capabilities", test_capabilities},
      {"callbacks", test_callbacks_in_order},
      {"listen", test_listen},
      {"restart", test_restart},
      {"restart_wait", test_restart_during_wait},
      {"delete", test_delete_and_unknown_streams},
      {"commands", test_bad_commands},
      {"parameters", test_create_parameters},
      {"options", test_request_options},
      {"read_timeout", test_read_timeout},
      {"status_204", test_204_stops},
      {"shutdown", test_shutdown},
  };
  static char names[2][sizeof tests / sizeof tests[0]][64];
  size_t i, d;

  for (d = 0; d < 2; d++) {
    for (i = 0; i < sizeof tests / sizeof tests[0]; i++) {
      TCase *tc;

      snprintf(names[d][i], sizeof names[d][i], "%s_%s", d ? "start" : "multi",
               tests[i].name);
      tc = tcase_create(names[d][i]);
      tcase_set_timeout(tc, TEST_TIMEOUT);
      tcase_add_checked_fixture(tc, d ? setup_start : setup_multi, teardown);
      tcase_add_test(tc, tests[i].fn);
      suite_add_tcase(s, tc);
    }
  }
  return s;
}

int main(void) {
  int status;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  status = ts_run_suite(contract_suite(), CK_NORMAL);
  curl_global_cleanup();
  return status;
}
