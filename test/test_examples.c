/*
 * test_examples.c - the demo server and the example programs, run as the
 * user would run them: $ES_BUILD_DIR/demo/sse-demo-server on port 0, each
 * example as a child process against it, exit status and output checked.
 *
 * Synchronisation is on what the programs print (the server's "listening on"
 * line, its log file, the children's output until EOF), never on sleeps.
 * Every child dies with the test process (PR_SET_PDEATHSIG), the server
 * also stops by itself (--duration), and an unchecked fixture removes the
 * files, so a failing test leaves nothing behind.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 10000  /* the longest any single step may take */
#define CHILD_MS 20000 /* the longest an example may run */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *build_dir(void) {
  const char *d = getenv("ES_BUILD_DIR");
  return d != NULL && *d != '\0' ? d : "build";
}

/* ------------------------------------------------------------------------ */
/* Output buffers and child processes                                       */
/* ------------------------------------------------------------------------ */

struct buf {
  char *p;
  size_t len, cap;
};

static void buf_add(struct buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
      cap *= 2;
    b->p = realloc(b->p, cap);
    ck_assert_ptr_nonnull(b->p);
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void buf_free(struct buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* Occurrences of needle in b. */
static int count(const struct buf *b, const char *needle) {
  int n = 0;
  const char *p = b->p ? b->p : "";
  while ((p = strstr(p, needle)) != NULL) {
    n++;
    p += strlen(needle);
  }
  return n;
}

/* Reads fd into b until EOF (returns 1), until b contains needle (when not
 * NULL; returns 1) or until deadline (returns 0). */
static int read_until(int fd, struct buf *b, const char *needle, long long deadline) {
  for (;;) {
    char chunk[4096];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    long long left = deadline - now_ms();
    ssize_t n;
    if (needle != NULL && b->p != NULL && strstr(b->p, needle) != NULL)
      return 1;
    if (left <= 0)
      return 0;
    if (poll(&pfd, 1, (int)left) < 0) {
      if (errno == EINTR)
        continue;
      return 0;
    }
    if (pfd.revents == 0)
      continue;
    n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return needle == NULL || (b->p != NULL && strstr(b->p, needle) != NULL);
    buf_add(b, chunk, (size_t)n);
  }
}

/* Forks and executes argv with stdout (and stderr when err_fd < 0) on a pipe
 * whose read end goes to *out_fd. The child dies with the test process. */
static pid_t spawn(char *const argv[], int *out_fd, int err_fd) {
  int p[2];
  pid_t pid;
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (dup2(p[1], 1) < 0 || dup2(err_fd >= 0 ? err_fd : p[1], 2) < 0)
      _exit(126);
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(p[1]);
  *out_fd = p[0];
  return pid;
}

/* Runs argv to its end (at most CHILD_MS) with stdout and stderr into out;
 * returns the wait status, or -1 if it had to be killed. */
static int run(char *const argv[], struct buf *out) {
  int fd, status;
  pid_t pid = spawn(argv, &fd, -1);
  int finished = read_until(fd, out, NULL, now_ms() + CHILD_MS);
  close(fd);
  if (!finished)
    kill(pid, SIGKILL);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  /* Shown by Check when an assertion on it fails; useful when debugging. */
  fprintf(stderr, "---- %s (status %d):\n%s----\n", argv[0], status,
          out->p ? out->p : "");
  return finished ? status : -1;
}

/* The exit code of a wait status; 1000 + signal when killed, -1 stays -1. */
static int exit_code(int status) {
  if (status == -1)
    return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
}

static char *example_path(const char *name) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/demo/%s", build_dir(), name);
  return path;
}

/* ------------------------------------------------------------------------ */
/* The demo server                                                          */
/* ------------------------------------------------------------------------ */

struct server {
  pid_t pid;
  int out_fd; /* its stdout */
  int port;
  char dir[96];
  char port_file[128];
  char log[128];
  char url[160];
};

/* All the files of one run of a TCase live under base, created and removed
 * (whatever the tests did) by an unchecked fixture, which runs in the
 * runner's process. */
static char base[64];

/* The running server's pid when the tests run in the runner's process
 * (CK_FORK=no, e.g. under valgrind), so that a failed test's server is
 * stopped by the next test or the fixture. In fork mode the server dies with
 * the test's process (PR_SET_PDEATHSIG). */
static pid_t running_pid;

static void kill_running(void) {
  if (running_pid > 0) {
    kill(running_pid, SIGKILL);
    waitpid(running_pid, NULL, 0);
  }
  running_pid = 0;
}

static void base_setup(void) {
  snprintf(base, sizeof base, "/tmp/es-test-examples.XXXXXX");
  if (mkdtemp(base) == NULL)
    base[0] = '\0';
}

static void base_teardown(void) {
  char cmd[128];
  kill_running();
  if (base[0] == '\0')
    return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", base);
  base[0] = '\0';
}

/* Starts the demo server (events every interval ms) and waits for its
 * "listening on" line. */
static void server_start(struct server *s, const char *interval) {
  char path[4096];
  char *argv[12];
  struct buf out = {0};
  int log_fd, port_from_file = -1, n = 0;
  FILE *f;

  kill_running();
  memset(s, 0, sizeof *s);
  ck_assert_msg(base[0] != '\0', "no temporary directory");
  snprintf(s->dir, sizeof s->dir, "%s/server.XXXXXX", base);
  ck_assert_ptr_nonnull(mkdtemp(s->dir));
  snprintf(s->port_file, sizeof s->port_file, "%s/port", s->dir);
  snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
  snprintf(path, sizeof path, "%s/demo/sse-demo-server", build_dir());
  log_fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ck_assert_int_ge(log_fd, 0);

  argv[n++] = path;
  argv[n++] = (char *)"--port";
  argv[n++] = (char *)"0";
  argv[n++] = (char *)"--port-file";
  argv[n++] = s->port_file;
  argv[n++] = (char *)"--duration";
  argv[n++] = (char *)"60";
  argv[n++] = (char *)"--interval";
  argv[n++] = (char *)interval;
  argv[n] = NULL;
  s->pid = spawn(argv, &s->out_fd, log_fd);
  running_pid = s->pid;
  close(log_fd);

  ck_assert_msg(read_until(s->out_fd, &out, "/\n", now_ms() + WAIT_MS),
                "no \"listening on\" line from the demo server: %s",
                out.p ? out.p : "(nothing)");
  ck_assert_int_eq(sscanf(out.p, "listening on http://127.0.0.1:%d/", &s->port), 1);
  ck_assert_int_gt(s->port, 0);
  buf_free(&out);

  /* The port file is written (atomically) before that line is printed. */
  f = fopen(s->port_file, "r");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fscanf(f, "%d", &port_from_file), 1);
  fclose(f);
  ck_assert_int_eq(port_from_file, s->port);
  snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
}

static const char *server_url(struct server *s, const char *path) {
  static char url[256];
  snprintf(url, sizeof url, "%s%s", s->url, path);
  return url;
}

static void server_log(const struct server *s, struct buf *b) {
  int fd = open(s->log, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  read_until(fd, b, NULL, now_ms() + WAIT_MS);
  close(fd);
}

/* Stops the server with SIGTERM: it must exit 0 and remove its port file. */
static void server_stop(struct server *s) {
  int status = -1, port_file_left;
  ck_assert_int_eq(kill(s->pid, SIGTERM), 0);
  ck_assert_int_eq(waitpid(s->pid, &status, 0), s->pid);
  s->pid = running_pid = 0;
  close(s->out_fd);
  port_file_left = access(s->port_file, F_OK) == 0;
  unlink(s->port_file);
  unlink(s->log);
  ck_assert_int_eq(rmdir(s->dir), 0);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "the demo server ended with status %d", status);
  ck_assert_msg(!port_file_left, "the demo server left its port file");
}

/* A raw HTTP exchange: sends request, reads until the server closes. */
static void raw_exchange(const struct server *s, const char *request, struct buf *out) {
  struct sockaddr_in a;
  size_t off = 0, len = strlen(request);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((unsigned short)s->port);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  while (off < len) {
    ssize_t n = send(fd, request + off, len - off, MSG_NOSIGNAL);
    ck_assert_int_gt(n, 0);
    off += (size_t)n;
  }
  ck_assert_msg(read_until(fd, out, NULL, now_ms() + WAIT_MS),
                "the server did not close the connection: %s", out->p ? out->p : "");
  close(fd);
}

/* ------------------------------------------------------------------------ */
/* The server on its own                                                    */
/* ------------------------------------------------------------------------ */

/* Last-Event-ID: 3 continues at 4; the connection is dropped after 5 events
 * (ids 4 to 8); retry: comes first; heartbeats between events. */
START_TEST(server_resumes_after_last_event_id) {
  struct server s;
  struct buf out = {0};
  const char *id;
  server_start(&s, "20");
  raw_exchange(&s,
               "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Accept: text/event-stream\r\nLast-Event-ID: 3\r\n\r\n",
               &out);
  ck_assert_msg(strncmp(out.p, "HTTP/1.1 200 ", 13) == 0, "%s", out.p);
  ck_assert_ptr_nonnull(strstr(out.p, "\r\nContent-Type: text/event-stream\r\n"));
  id = strstr(out.p, "\nid: ");
  ck_assert_ptr_nonnull(id);
  ck_assert_int_eq(atoi(id + 5), 4);
  ck_assert_ptr_nonnull(strstr(out.p, "\r\n\r\nretry: 1000\n\n"));
  ck_assert_int_eq(count(&out, "\nid: "), 5);
  ck_assert_ptr_nonnull(strstr(out.p, "\nid: 8\n"));
  ck_assert_int_eq(count(&out, "\nid: 9\n"), 0);
  ck_assert_int_eq(count(&out, "event: tick\nid: 5\ndata: {\"seq\":5,"), 1);
  ck_assert_int_ge(count(&out, "\n: heartbeat\n"), 4);
  buf_free(&out);

  /* No Last-Event-ID: from 1. */
  raw_exchange(&s, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", &out);
  id = strstr(out.p, "\nid: ");
  ck_assert_ptr_nonnull(id);
  ck_assert_int_eq(atoi(id + 5), 1);
  buf_free(&out);

  server_log(&s, &out);
  ck_assert_int_eq(count(&out, "client resumed from Last-Event-ID 3, continuing at id 4"), 1);
  buf_free(&out);
  server_stop(&s);
}
END_TEST

START_TEST(server_endpoints) {
  struct server s;
  struct buf out = {0};
  server_start(&s, "20");

  raw_exchange(&s, "GET /close HTTP/1.1\r\nHost: x\r\n\r\n", &out);
  ck_assert_msg(strncmp(out.p, "HTTP/1.1 204 ", 13) == 0, "%s", out.p);
  buf_free(&out);

  raw_exchange(&s,
               "POST /llm HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: 2\r\n\r\n{}",
               &out);
  ck_assert_msg(strncmp(out.p, "HTTP/1.1 401 ", 13) == 0, "%s", out.p);
  buf_free(&out);

  raw_exchange(&s,
               "POST /llm HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
               "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
               &out);
  ck_assert_msg(strncmp(out.p, "HTTP/1.1 415 ", 13) == 0, "%s", out.p);
  buf_free(&out);

  raw_exchange(&s,
               "POST /llm HTTP/1.1\r\nHost: x\r\nauthorization: bearer t\r\n"
               "content-type: application/json; charset=utf-8\r\n"
               "Content-Length: 8\r\n\r\n{\"a\":1}\n",
               &out);
  ck_assert_msg(strncmp(out.p, "HTTP/1.1 200 ", 13) == 0, "%s", out.p);
  ck_assert_int_eq(count(&out, "\ndata: {\"index\":"), 12);
  ck_assert_ptr_nonnull(strstr(out.p, "\nevent: done\ndata: {\"tokens\":12,\"prompt_bytes\":8}\n\n"));
  buf_free(&out);

  raw_exchange(&s,
               "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: 2\r\n\r\n{}",
               &out);
  ck_assert_msg(strncmp(out.p, "HTTP/1.1 200 ", 13) == 0, "%s", out.p);
  ck_assert_ptr_nonnull(strstr(out.p, "\r\n\r\nretry: 300\nid: 1\ndata:\n\nid: 2\ndata: {"));
  ck_assert_int_eq(count(&out, "\nid: "), 2); /* closed on purpose after two */
  buf_free(&out);

  raw_exchange(&s, "GET /mcp HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 4\r\n\r\n", &out);
  ck_assert_msg(strncmp(out.p, "HTTP/1.1 200 ", 13) == 0, "%s", out.p);
  ck_assert_ptr_nonnull(strstr(out.p, "\r\n\r\nid: 5\ndata: {"));
  ck_assert_ptr_nonnull(strstr(out.p, "\nid: 6\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":"));
  buf_free(&out);

  raw_exchange(&s, "GET /mcp HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 6\r\n\r\n", &out);
  ck_assert_msg(strncmp(out.p, "HTTP/1.1 204 ", 13) == 0, "%s", out.p);
  buf_free(&out);

  raw_exchange(&s, "GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n", &out);
  ck_assert_msg(strncmp(out.p, "HTTP/1.1 400 ", 13) == 0, "%s", out.p);
  buf_free(&out);

  raw_exchange(&s, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", &out);
  ck_assert_msg(strncmp(out.p, "HTTP/1.1 404 ", 13) == 0, "%s", out.p);
  buf_free(&out);
  server_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The examples                                                             */
/* ------------------------------------------------------------------------ */

/* Three "message" events, ids 2, 4, 6: the server drops the connection
 * after id 5, so the library must resume with Last-Event-ID 5. */
START_TEST(example_minimal) {
  struct server s;
  struct buf out = {0};
  char *argv[4];
  server_start(&s, "20");
  argv[0] = example_path("example-minimal");
  argv[1] = (char *)server_url(&s, "/events");
  argv[2] = (char *)"3";
  argv[3] = NULL;
  ck_assert_int_eq(exit_code(run(argv, &out)), 0);
  ck_assert_int_eq(count(&out, "message id="), 3);
  ck_assert_ptr_nonnull(strstr(out.p, "message id=2: plain message 2 "));
  ck_assert_ptr_nonnull(strstr(out.p, "message id=4: plain message 4 "));
  ck_assert_ptr_nonnull(strstr(out.p, "message id=6: plain message 6 "));
  ck_assert(strstr(out.p, "id=4") < strstr(out.p, "id=6"));
  buf_free(&out);
  server_log(&s, &out);
  ck_assert_int_eq(count(&out, "client resumed from Last-Event-ID 5, continuing at id 6"), 1);
  buf_free(&out);
  server_stop(&s);
}
END_TEST

/* A 204 answer stops the source for good: eventsource_run() fails, once. */
START_TEST(example_minimal_204) {
  struct server s;
  struct buf out = {0};
  char *argv[3];
  server_start(&s, "20");
  argv[0] = example_path("example-minimal");
  argv[1] = (char *)server_url(&s, "/close");
  argv[2] = NULL;
  ck_assert_int_eq(exit_code(run(argv, &out)), 1);
  ck_assert_ptr_nonnull(strstr(out.p, "eventsource_run: "));
  ck_assert_int_eq(count(&out, "message id="), 0);
  buf_free(&out);
  server_log(&s, &out);
  ck_assert_int_eq(count(&out, "GET /close"), 1);
  buf_free(&out);
  server_stop(&s);
}
END_TEST

START_TEST(example_types) {
  struct server s;
  struct buf out = {0};
  char *argv[4];
  server_start(&s, "20");
  argv[0] = example_path("example-types");
  argv[1] = (char *)server_url(&s, "/events");
  argv[2] = (char *)"4";
  argv[3] = NULL;
  ck_assert_int_eq(exit_code(run(argv, &out)), 0);
  ck_assert_ptr_nonnull(strstr(out.p, "tick    id=1 data={\"seq\":1,"));
  ck_assert_ptr_nonnull(strstr(out.p, "tick    id=7 data={\"seq\":7,"));
  ck_assert_ptr_nonnull(strstr(out.p, "message id=6 data=plain message 6 "));
  ck_assert_ptr_nonnull(strstr(out.p, "comment id=1 data= heartbeat\n"));
  ck_assert_ptr_nonnull(strstr(out.p, "(the comment listener removed itself)"));
  ck_assert_int_eq(count(&out, "open    connected to "), 2);
  ck_assert_int_eq(count(&out, "error   EOF"), 1);
  ck_assert_ptr_nonnull(strstr(out.p, "reconnecting in "));
  ck_assert_ptr_nonnull(strstr(out.p, "with Last-Event-ID 5\n"));
  /* The any listener misses the last tick: its tick listener closed the
   * source, and after eventsource_close() no listener runs. */
  ck_assert_ptr_nonnull(strstr(out.p, "done: 4 ticks, 3 messages, 2 opens, 1 errors, "
                                      "1 comments, 9 notifications in all\n"));
  buf_free(&out);
  server_stop(&s);
}
END_TEST

START_TEST(example_llm) {
  struct server s;
  struct buf out = {0};
  char *argv[4];
  server_start(&s, "20");
  argv[0] = example_path("example-llm");
  argv[1] = (char *)server_url(&s, "/llm");
  argv[2] = (char *)"secret";
  argv[3] = NULL;
  ck_assert_int_eq(exit_code(run(argv, &out)), 0);
  ck_assert_int_eq(count(&out, "token: {\"index\":"), 12);
  ck_assert_ptr_nonnull(strstr(out.p, "token: {\"index\":0,\"token\":\"Server\"}\n"));
  ck_assert_ptr_nonnull(strstr(out.p, "done: {\"tokens\":12,\"prompt_bytes\":"));
  ck_assert_ptr_nonnull(strstr(out.p, "12 tokens in 1 attempt(s)\n"));
  buf_free(&out);
  server_log(&s, &out);
  ck_assert_int_eq(count(&out, "POST /llm"), 1);
  ck_assert_int_eq(count(&out, "JSON body, Bearer secret-1\n"), 1);
  buf_free(&out);
  server_stop(&s);
}
END_TEST

/* A stream cut before "done" (the server ends it cleanly): with
 * reconnect-on-end off the request is not sent again, so the example fails
 * after exactly one request, and says why. */
START_TEST(example_llm_no_resend) {
  struct server s;
  struct buf out = {0};
  char *argv[3];
  server_start(&s, "20");
  argv[0] = example_path("example-llm");
  argv[1] = (char *)server_url(&s, "/llm?cut=3");
  argv[2] = NULL;
  ck_assert_int_eq(exit_code(run(argv, &out)), 1);
  ck_assert_int_eq(count(&out, "token: {\"index\":"), 3);
  ck_assert_int_eq(count(&out, "done: "), 0);
  ck_assert_ptr_nonnull(strstr(out.p, "error: EOF"));
  ck_assert_ptr_nonnull(strstr(out.p, "reconnect on end is off"));
  buf_free(&out);
  server_log(&s, &out);
  ck_assert_int_eq(count(&out, "POST /llm"), 1);
  buf_free(&out);
  server_stop(&s);
}
END_TEST

/* MCP-style resumption: POST with a body first, then GET with Last-Event-ID
 * after each close on purpose, after the server's retry: (300 ms, as sent,
 * with jitter: [300, 450]), until the result. */
START_TEST(example_resume) {
  struct server s;
  struct buf out = {0};
  char *argv[3];
  const char *p;
  server_start(&s, "20");
  argv[0] = example_path("example-resume");
  argv[1] = (char *)server_url(&s, "/mcp");
  argv[2] = NULL;
  ck_assert_int_eq(exit_code(run(argv, &out)), 0);
  ck_assert_ptr_nonnull(strstr(out.p, "request 1: POST http://127.0.0.1:"));
  ck_assert_ptr_nonnull(strstr(out.p, "/mcp, Last-Event-ID 2\n"));
  ck_assert_ptr_nonnull(strstr(out.p, "/mcp, Last-Event-ID 4\n"));
  ck_assert_int_eq(count(&out, ": GET http://127.0.0.1:"), 2);
  ck_assert_int_eq(count(&out, ": POST "), 1);
  ck_assert_ptr_nonnull(strstr(out.p, "primed: id 1\n"));
  ck_assert_int_eq(count(&out, "progress: id "), 4);
  ck_assert_ptr_nonnull(strstr(out.p, "result: id 6: {\"jsonrpc\":\"2.0\",\"id\":1,"));
  ck_assert_ptr_nonnull(strstr(out.p, "4 progress notifications in 3 requests\n"));
  /* The delay is the server's each time (never backed off). */
  ck_assert_int_eq(count(&out, "stream ended (EOF); resuming in "), 2);
  for (p = strstr(out.p, "resuming in "); p != NULL; p = strstr(p + 1, "resuming in ")) {
    long ms = strtol(p + 12, NULL, 10);
    ck_assert_msg(ms >= 300 && ms <= 450, "resuming in %ld ms", ms);
  }
  buf_free(&out);
  server_log(&s, &out);
  ck_assert_int_eq(count(&out, "POST /mcp"), 1);
  ck_assert_int_eq(count(&out, "/mcp call, 87-byte JSON body"), 1);
  ck_assert_int_eq(count(&out, "GET /mcp"), 2);
  ck_assert_int_eq(count(&out, "/mcp resumed from Last-Event-ID 2, continuing at id 3"), 1);
  ck_assert_int_eq(count(&out, "/mcp resumed from Last-Event-ID 4, continuing at id 5"), 1);
  buf_free(&out);
  server_stop(&s);
}
END_TEST

START_TEST(example_close) {
  struct server s;
  struct buf out = {0};
  char *argv[3];
  server_start(&s, "20");
  argv[0] = example_path("example-close");
  argv[1] = (char *)server_url(&s, "/events");
  argv[2] = NULL;
  ck_assert_int_eq(exit_code(run(argv, &out)), 0);
  ck_assert_ptr_nonnull(strstr(out.p, "1: got \"tick\" id=1, closing from the listener\n"));
  ck_assert_ptr_nonnull(strstr(out.p, "1: eventsource_run() returned OK, readyState CLOSED\n"));
  ck_assert_ptr_nonnull(strstr(out.p, "listener ran on the library's thread\n"));
  ck_assert_ptr_nonnull(strstr(out.p, "2: no listener call after eventsource_close(); freed\n"));
  buf_free(&out);
  server_stop(&s);
}
END_TEST

/* Writes n bytes of s to base/name; returns the path (static). */
static char *base_file(const char *name, const char *s, size_t n) {
  static char path[160];
  FILE *f;
  ck_assert_msg(base[0] != '\0', "no temporary directory");
  snprintf(path, sizeof path, "%s/%s", base, name);
  f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(s, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
  return path;
}

/* A recorded stream from a file: BOM, CRLF, retry:, types, ids, an event
 * over the example's 1 MiB limit (an error, then the stream goes on), and an
 * incomplete last event (discarded at the end). */
START_TEST(example_parser) {
  static const char head[] = "\xEF\xBB\xBF: recorded\r\nretry: 2500\r\n"
                             "id: 1\r\ndata: hello\r\n\r\n"
                             "event: tick\nid: 2\ndata: a\ndata: b\n\n"
                             "data: ";
  static const char tail[] = "\n\nevent: after\ndata: big one dropped\n\n"
                             "id: 9\ndata: incomplete\n";
  size_t big = 1100 * 1024, n = 0;
  char *in = malloc(sizeof head + big + sizeof tail);
  struct buf out = {0};
  char *argv[3];
  ck_assert_ptr_nonnull(in);
  memcpy(in, head, sizeof head - 1);
  n += sizeof head - 1;
  memset(in + n, 'x', big);
  n += big;
  memcpy(in + n, tail, sizeof tail - 1);
  n += sizeof tail - 1;
  argv[0] = example_path("example-parser");
  argv[1] = base_file("recorded.sse", in, n);
  argv[2] = NULL;
  free(in);
  ck_assert_int_eq(exit_code(run(argv, &out)), 0);
  ck_assert_ptr_nonnull(strstr(out.p, "retry 2500 ms\n"
                                      "event message id=1 data=hello\n"
                                      "event tick id=2 data=a\nb\n"
                                      "error TOO_LARGE: "));
  ck_assert_ptr_nonnull(strstr(out.p, "event after id=2 data=big one dropped\n"
                                      "done: 3 events, last event ID \"2\"\n"));
  ck_assert_int_eq(count(&out, "incomplete"), 0);
  buf_free(&out);
}
END_TEST

/* The event callback stops the parser after 100 events. */
START_TEST(example_parser_stop) {
  struct buf in = {0}, out = {0};
  char *argv[3];
  for (int i = 1; i <= 150; i++) {
    char line[64];
    int len = snprintf(line, sizeof line, "id: %d\ndata: e%d\n\n", i, i);
    buf_add(&in, line, (size_t)len);
  }
  argv[0] = example_path("example-parser");
  argv[1] = base_file("many.sse", in.p, in.len);
  argv[2] = NULL;
  buf_free(&in);
  ck_assert_int_eq(exit_code(run(argv, &out)), 0);
  ck_assert_int_eq(count(&out, "event message id="), 100);
  ck_assert_ptr_nonnull(strstr(out.p, "event message id=100 data=e100\n"
                                      "done: 100 events, last event ID \"100\"\n"));
  buf_free(&out);
}
END_TEST

static Suite *examples_suite(void) {
  Suite *su = suite_create("examples");
  TCase *tc = tcase_create("server");
  tcase_add_test(tc, server_resumes_after_last_event_id);
  tcase_add_test(tc, server_endpoints);
  tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
  tcase_set_timeout(tc, 30);
  suite_add_tcase(su, tc);

  tc = tcase_create("examples");
  tcase_add_test(tc, example_minimal);
  tcase_add_test(tc, example_minimal_204);
  tcase_add_test(tc, example_types);
  tcase_add_test(tc, example_llm);
  tcase_add_test(tc, example_llm_no_resend);
  tcase_add_test(tc, example_resume);
  tcase_add_test(tc, example_close);
  tcase_add_test(tc, example_parser);
  tcase_add_test(tc, example_parser_stop);
  tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(su, tc);
  return su;
}

int main(void) {
  SRunner *sr = srunner_create(examples_suite());
  int failed;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
