/*
 * test_ssecat.c - runs the sse-cat program ($ES_BUILD_DIR/demo/sse-cat) as a
 * child process against the scripted loopback server and checks its output,
 * what reaches the server, and its exit status.
 *
 * Synchronisation is only on what is observed: lines read from the child's
 * stdout (with a deadline), requests and client closes recorded by the
 * server, the child's exit. Every wait has a deadline of its own so that a
 * hang fails the test even with CK_FORK=no (where Check's timeouts do not
 * apply); on a failure the checked teardown kills the child and stops the
 * server.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eventsource.h"
#include "support/sse_server.h"
#include "support/ts_encode.h"
#include "support/ts_util.h"

extern char **environ;

#define STEP_MS 15000 /* deadline of one wait */

/* ------------------------------------------------------------------------ */
/* Child processes                                                          */
/* ------------------------------------------------------------------------ */

typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

typedef struct proc {
  pid_t pid; /* 0: none */
  int fd[2]; /* read ends of the child's stdout and stderr; -1 once at EOF */
  buf out, err;
  size_t opos; /* stdout consumed by next_line() */
  int reaped;
  int wstatus;
} proc;

static ts_server *g_srv;
static ts_server *g_srv2; /* a second origin, for redirects */
static ts_tls *g_tls;     /* g_srv2's certificates when it is https */
static proc g_proc;
static char g_tmpfile[64];

static void buf_append(buf *b, const char *data, size_t n) {
  if (b->cap - b->len < n + 1) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n + 1)
      cap *= 2;
    b->p = realloc(b->p, cap);
    ck_assert_ptr_nonnull(b->p);
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static const char *sse_cat_path(void) {
  static char path[4096];
  const char *dir = getenv("ES_BUILD_DIR");
  ck_assert_msg(dir != NULL && *dir != '\0', "ES_BUILD_DIR is not set");
  snprintf(path, sizeof path, "%s/demo/sse-cat", dir);
  ck_assert_msg(access(path, X_OK) == 0, "%s is missing or not executable", path);
  return path;
}

/* Starts sse-cat with args (NULL-terminated, without argv[0]); stdin is
 * in_fd when >= 0 (the caller closes its copy), else the file in_path;
 * stdout and stderr are pipes. */
static proc *spawn_stdin(const char *const *args, const char *in_path, int in_fd) {
  proc *p = &g_proc;
  const char *argv[64];
  int out[2], err[2], n = 0, rc;
  posix_spawn_file_actions_t fa;

  ck_assert_int_eq(p->pid, 0);
  argv[n++] = sse_cat_path();
  for (int i = 0; args[i] != NULL; i++) {
    ck_assert_int_lt(n, 63);
    argv[n++] = args[i];
  }
  argv[n] = NULL;

  ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
  ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
  ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
  if (in_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  else
    posix_spawn_file_actions_addopen(&fa, 0, in_path, O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  rc = posix_spawn(&p->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(err[1]);
  p->fd[0] = out[0];
  p->fd[1] = err[0];
  if (rc != 0) {
    p->pid = 0;
    ck_abort_msg("posix_spawn %s: %s", argv[0], strerror(rc));
  }
  return p;
}

/* spawn_stdin() with stdin /dev/null. */
static proc *spawn_args(const char *const *args) { return spawn_stdin(args, "/dev/null", -1); }

/* Waits up to timeout_ms for output, reads what is there. 0 if something
 * happened (data or EOF), -1 on timeout or when both pipes are at EOF. */
static int pump(proc *p, int timeout_ms) {
  struct pollfd pfd[2];
  int n = 0, idx[2];
  for (int i = 0; i < 2; i++) {
    if (p->fd[i] >= 0) {
      pfd[n].fd = p->fd[i];
      pfd[n].events = POLLIN;
      pfd[n].revents = 0;
      idx[n++] = i;
    }
  }
  if (n == 0)
    return -1;
  if (timeout_ms < 0)
    timeout_ms = 0;
  int rc = poll(pfd, (nfds_t)n, timeout_ms);
  if (rc < 0 && errno == EINTR)
    return 0;
  ck_assert_int_ge(rc, 0);
  if (rc == 0)
    return -1;
  for (int k = 0; k < n; k++) {
    if (pfd[k].revents == 0)
      continue;
    char tmp[8192];
    ssize_t r = read(pfd[k].fd, tmp, sizeof tmp);
    if (r > 0) {
      buf_append(idx[k] == 0 ? &p->out : &p->err, tmp, (size_t)r);
    } else if (r == 0 || errno != EINTR) {
      close(p->fd[idx[k]]);
      p->fd[idx[k]] = -1;
    }
  }
  return 0;
}

/* The next stdout line (without its LF, NUL-terminated in place of the LF),
 * or NULL on EOF or timeout. */
static const char *next_line(proc *p, int timeout_ms) {
  long long deadline = ts_now_ms() + timeout_ms;
  for (;;) {
    char *start = p->out.p ? p->out.p + p->opos : NULL;
    char *nl = start ? memchr(start, '\n', p->out.len - p->opos) : NULL;
    if (nl != NULL) {
      *nl = '\0';
      p->opos = (size_t)(nl - p->out.p) + 1;
      return start;
    }
    if (p->fd[0] < 0)
      return NULL;
    if (pump(p, (int)(deadline - ts_now_ms())) != 0 && ts_now_ms() >= deadline)
      return NULL;
  }
}

static const char *stderr_text(proc *p) {
  return p->err.p ? p->err.p : "";
}

/* Reads everything until both pipes are at EOF and reaps the child. Returns
 * its exit status (128 + signal if killed by one), or -1 if it did not end
 * within timeout_ms (it is then killed). */
static int finish(proc *p, int timeout_ms) {
  long long deadline = ts_now_ms() + timeout_ms;
  while ((p->fd[0] >= 0 || p->fd[1] >= 0) && ts_now_ms() < deadline)
    pump(p, (int)(deadline - ts_now_ms()));
  while (!p->reaped) {
    pid_t r = waitpid(p->pid, &p->wstatus, WNOHANG);
    if (r == p->pid) {
      p->reaped = 1;
      break;
    }
    ck_assert_int_ne(r, -1);
    if (ts_now_ms() >= deadline) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &p->wstatus, 0);
      p->reaped = 1;
      return -1;
    }
    /* Pipes are closed but the process has not ended yet: a bounded wait
     * for an exit that is already under way, not synchronisation. */
    poll(NULL, 0, 2);
  }
  if (WIFEXITED(p->wstatus))
    return WEXITSTATUS(p->wstatus);
  if (WIFSIGNALED(p->wstatus))
    return 128 + WTERMSIG(p->wstatus);
  return -1;
}

static void proc_cleanup(proc *p) {
  if (p->pid > 0 && !p->reaped) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &p->wstatus, 0);
  }
  for (int i = 0; i < 2; i++)
    if (p->fd[i] >= 0)
      close(p->fd[i]);
  free(p->out.p);
  free(p->err.p);
  memset(p, 0, sizeof *p);
  p->fd[0] = p->fd[1] = -1;
}

#define EXPECT_LINE(p, expected)                                               \
  do {                                                                         \
    const char *got_ = next_line((p), STEP_MS);                                \
    ck_assert_msg(got_ != NULL && strcmp(got_, (expected)) == 0,              \
                  "expected line\n  %s\ngot\n  %s\nstderr: %s", (expected),    \
                  got_ ? got_ : "(EOF or timeout)", stderr_text(p));           \
  } while (0)

#define EXPECT_EXIT(p, code)                                                   \
  do {                                                                         \
    int st_ = finish((p), STEP_MS);                                            \
    ck_assert_msg(st_ == (code), "exit status %d, expected %d; stderr: %s",   \
                  st_, (code), stderr_text(p));                                \
  } while (0)

/* The rest of stdout must be empty. */
#define EXPECT_NO_MORE_OUTPUT(p)                                               \
  ck_assert_msg((p)->opos == (p)->out.len, "unexpected output: %s",          \
                (p)->out.p + (p)->opos)

static const char *const no_headers[] = {NULL};

static int starts_with(const char *s, const char *prefix) {
  return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ------------------------------------------------------------------------ */
/* Fixture                                                                  */
/* ------------------------------------------------------------------------ */

static void setup(void) {
  memset(&g_proc, 0, sizeof g_proc);
  g_proc.fd[0] = g_proc.fd[1] = -1;
  g_tmpfile[0] = '\0';
  g_srv = ts_server_start();
  ck_assert_ptr_nonnull(g_srv);
}

static void teardown(void) {
  proc_cleanup(&g_proc);
  if (g_srv != NULL)
    ts_server_stop(g_srv);
  g_srv = NULL;
  if (g_srv2 != NULL)
    ts_server_stop(g_srv2);
  g_srv2 = NULL;
  ts_tls_free(g_tls);
  g_tls = NULL;
  if (g_tmpfile[0] != '\0')
    unlink(g_tmpfile);
}

static char *url(const char *path) {
  static char u[2][256];
  static int which;
  which ^= 1;
  snprintf(u[which], sizeof u[which], "%s", ts_server_url(g_srv, path));
  return u[which];
}

/* The header's value in request i, asserting that it is there. */
static void expect_header(int i, const char *name, const char *value) {
  ts_request r;
  char v[1024];
  ck_assert_int_eq(ts_server_get_request(g_srv, i, &r), 0);
  ck_assert_msg(ts_request_header(&r, name, v, sizeof v) == 1,
                "request %d has no %s header", i, name);
  ck_assert_str_eq(v, value);
}

/* ------------------------------------------------------------------------ */
/* JSON output                                                              */
/* ------------------------------------------------------------------------ */

START_TEST(test_json_events) {
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_headers(sc);
  ts_script_writes(sc, "id: 1\ndata: plain\n\n");
  ts_script_writes(sc, ": a comment\n");
  ts_script_writes(sc, "event: custom\nid: abc\ndata: line1\ndata: line2\n\n");
  ts_script_writes(sc, "data: say \"hi\" \\ back\\slash\n\n");
  ts_script_write(sc, "data: nul\0x\n\n", 13);
  ts_script_writes(sc, "data: h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\n\n");
  ts_script_writes(sc, "data: ctl\x01\x1f\ttab\x7f\n\n");
  ts_script_hold(sc);

  const char *args[] = {"--json", "--comments", "--max-events", "6", url("/s"), NULL};
  proc *p = spawn_args(args);
  EXPECT_LINE(p, "{\"kind\":\"open\",\"http_version\":11,\"reused\":false}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"plain\",\"id\":\"1\"}");
  EXPECT_LINE(p, "{\"kind\":\"comment\",\"comment\":\" a comment\"}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"custom\",\"data\":\"line1\\nline2\",\"id\":\"abc\"}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\","
                 "\"data\":\"say \\\"hi\\\" \\\\ back\\\\slash\",\"id\":\"abc\"}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"nul\\u0000x\",\"id\":\"abc\"}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\","
                 "\"data\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\",\"id\":\"abc\"}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\","
                 "\"data\":\"ctl\\u0001\\u001f\\ttab\x7f\",\"id\":\"abc\"}");
  EXPECT_EXIT(p, 0);
  EXPECT_NO_MORE_OUTPUT(p);
  ck_assert_int_ge(ts_server_wait_client_closes(g_srv, 1, STEP_MS), 1);
}
END_TEST

/* Without --comments, comments are not printed (and not counted). */
START_TEST(test_json_no_comments) {
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_headers(sc);
  ts_script_writes(sc, ": hidden\n\n:another\ndata: x\n\n: after\ndata: y\n\n");
  ts_script_hold(sc);

  const char *args[] = {"--json", "--max-events=2", url("/"), NULL};
  proc *p = spawn_args(args);
  EXPECT_LINE(p, "{\"kind\":\"open\",\"http_version\":11,\"reused\":false}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"x\",\"id\":\"\"}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"y\",\"id\":\"\"}");
  EXPECT_EXIT(p, 0);
  EXPECT_NO_MORE_OUTPUT(p);
}
END_TEST

START_TEST(test_json_404) {
  const char *const hdrs[] = {"Content-Type: text/plain", "Content-Length: 9", NULL};
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_status(sc, 404, "Not Found", hdrs);
  ts_script_writes(sc, "not here\n");

  const char *args[] = {"--json", url("/missing"), NULL};
  proc *p = spawn_args(args);
  const char *line = next_line(p, STEP_MS);
  ck_assert_msg(line != NULL, "no output; stderr: %s", stderr_text(p));
  const char *head = "{\"kind\":\"error\",\"code\":\"HTTP_STATUS\",\"status\":404,\"message\":\"";
  const char *tail = "\",\"reconnect\":false,\"delay_ms\":-1}";
  ck_assert_msg(strncmp(line, head, strlen(head)) == 0, "bad error line: %s", line);
  ck_assert_msg(strlen(line) > strlen(head) + strlen(tail) &&
                    strcmp(line + strlen(line) - strlen(tail), tail) == 0,
                "bad error line: %s", line);
  EXPECT_EXIT(p, 1);
  EXPECT_NO_MORE_OUTPUT(p);
  ck_assert_msg(strstr(stderr_text(p), "sse-cat: ") != NULL, "no message on stderr");
  ck_assert_int_eq(ts_server_request_count(g_srv), 1);
}
END_TEST

/* The readable (non-JSON) form: wire-like records, NUL bytes escaped,
 * notices on stderr. */
START_TEST(test_plain_output) {
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_headers(sc);
  ts_script_writes(sc, "event: ping\nid: 9\ndata: a\ndata: b\n\n");
  ts_script_write(sc, "data: n\0l\n\n", 11);
  ts_script_writes(sc, ": note\n");
  ts_script_writes(sc, "id\ndata\n\n");
  ts_script_hold(sc);

  const char *args[] = {"--max-events", "3", "--comments", url("/"), NULL};
  proc *p = spawn_args(args);
  EXPECT_EXIT(p, 0);
  static const char expected[] = "event: ping\nid: 9\ndata: a\ndata: b\n\n"
                                 "event: message\nid: 9\ndata: n\\x00l\n\n"
                                 ": note\n"
                                 "event: message\ndata:\n\n";
  ck_assert_msg(p->out.len == sizeof expected - 1 &&
                    memcmp(p->out.p, expected, sizeof expected - 1) == 0,
                "unexpected output (%zu bytes): %s", p->out.len, p->out.p ? p->out.p : "");
  ck_assert_msg(strncmp(stderr_text(p), "sse-cat: ", 9) == 0, "no open notice: %s",
                stderr_text(p));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Control characters from the server                                       */
/* ------------------------------------------------------------------------ */

/* A raw terminal control in b: a C0 control other than LF and TAB, DEL, or a
 * C1 control (U+0080-U+009F, UTF-8 C2 80..C2 9F). NULL if none. */
static const char *find_control(const buf *b) {
  for (size_t i = 0; i < b->len; i++) {
    unsigned char c = (unsigned char)b->p[i];
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
      return b->p + i;
    if (c == 0xc2 && i + 1 < b->len && (unsigned char)b->p[i + 1] >= 0x80 &&
        (unsigned char)b->p[i + 1] <= 0x9f)
      return b->p + i;
  }
  return NULL;
}

#define EXPECT_NO_CONTROLS(p, b, what)                                         \
  do {                                                                         \
    const char *c_ = find_control(&(p)->b);                                    \
    ck_assert_msg(c_ == NULL, "raw control byte 0x%02x on " what " at %zu: %s", \
                  c_ ? (unsigned char)*c_ : 0, c_ ? (size_t)(c_ - (p)->b.p) : 0, \
                  (p)->b.p);                                                   \
  } while (0)

/* One event with controls in its type, id and data (ESC sequences, BEL, NUL,
 * DEL, C1 controls), and a comment with ESC; then the stream ends and the
 * reconnection (whose -v notice shows the Last-Event-ID) gets 204. */
static void control_script(void) {
  static const char ev[] = ": c\x1b[1m\x7f\n"
                           "event: t\x1b]0;x\x07y\n"
                           "id: a\x1b[31mb\n"
                           "data: d\x1b[2Jz\n"
                           "data: tab\there\x01\n"
                           "data: n\0l\n"
                           "data: c1 \xc2\x9b" "31m \xc2\x85 \xc2\x80\xc2\x9f ok \xc2\xa0\xc3\xa9 \xe2\x82\xac\n"
                           "\n";
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_headers(sc);
  ts_script_write(sc, ev, sizeof ev - 1);
  ts_script_close(sc);
  sc = ts_server_add_script(g_srv);
  ts_script_status(sc, 204, "No Content", no_headers);
}

/* The readable output escapes every control character on stdout and stderr;
 * LF separates data: lines and TAB is kept. */
START_TEST(test_escape_controls) {
  control_script();
  const char *args[] = {"-v", "--comments", "--retry", "10", url("/c"), NULL};
  proc *p = spawn_args(args);
  EXPECT_EXIT(p, 0);
  static const char expected[] = ": c\\x1b[1m\\x7f\n"
                                 "event: t\\x1b]0;x\\x07y\n"
                                 "id: a\\x1b[31mb\n"
                                 "data: d\\x1b[2Jz\n"
                                 "data: tab\there\\x01\n"
                                 "data: n\\x00l\n"
                                 "data: c1 \\u009b31m \\u0085 \\u0080\\u009f ok \xc2\xa0\xc3\xa9 \xe2\x82\xac\n"
                                 "\n";
  ck_assert_msg(p->out.len == sizeof expected - 1 &&
                    memcmp(p->out.p, expected, sizeof expected - 1) == 0,
                "unexpected output (%zu bytes): %s", p->out.len, p->out.p ? p->out.p : "");
  EXPECT_NO_CONTROLS(p, out, "stdout");
  EXPECT_NO_CONTROLS(p, err, "stderr");
  ck_assert_msg(strstr(stderr_text(p), "Last-Event-ID a\\x1b[31mb)\n") != NULL,
                "no escaped Last-Event-ID on stderr: %s", stderr_text(p));
  ck_assert_int_eq(ts_server_request_count(g_srv), 2);
  expect_header(1, "Last-Event-ID", "a\x1b[31mb"); /* sent as received */
}
END_TEST

/* --json is unchanged: JSON's own escapes (\u001b ...; DEL and C1 controls
 * are not JSON control characters and stay as they are). The -v notices on
 * stderr are escaped as in the readable mode. */
START_TEST(test_escape_json_unchanged) {
  control_script();
  const char *args[] = {"--json", "-v", "--comments", "--retry", "10", url("/c"), NULL};
  proc *p = spawn_args(args);
  EXPECT_LINE(p, "{\"kind\":\"open\",\"http_version\":11,\"reused\":false}");
  EXPECT_LINE(p, "{\"kind\":\"comment\",\"comment\":\" c\\u001b[1m\x7f\"}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"t\\u001b]0;x\\u0007y\","
                 "\"data\":\"d\\u001b[2Jz\\ntab\\there\\u0001\\nn\\u0000l\\n"
                 "c1 \xc2\x9b" "31m \xc2\x85 \xc2\x80\xc2\x9f ok \xc2\xa0\xc3\xa9 \xe2\x82\xac\","
                 "\"id\":\"a\\u001b[31mb\"}");
  const char *line = next_line(p, STEP_MS);
  ck_assert_msg(starts_with(line, "{\"kind\":\"error\",\"code\":\"EOF\","), "bad EOF line: %s",
                line ? line : "(none)");
  line = next_line(p, STEP_MS);
  ck_assert_msg(starts_with(line, "{\"kind\":\"error\",\"code\":\"HTTP_STATUS\",\"status\":204,"),
                "bad 204 line: %s", line ? line : "(none)");
  EXPECT_EXIT(p, 0);
  EXPECT_NO_MORE_OUTPUT(p);
  ck_assert_ptr_null(memchr(p->out.p, 0x1b, p->out.len));
  EXPECT_NO_CONTROLS(p, err, "stderr");
  ck_assert_msg(strstr(stderr_text(p), "Last-Event-ID a\\x1b[31mb)\n") != NULL,
                "no escaped Last-Event-ID on stderr: %s", stderr_text(p));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Ending                                                                   */
/* ------------------------------------------------------------------------ */

START_TEST(test_max_events) {
  int n = ts_small_scale() ? 3 : 40;
  ts_script *sc = ts_server_add_script(g_srv);
  char *all = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&all, &len);
  ck_assert_ptr_nonnull(f);
  for (int i = 0; i < n + 5; i++)
    fprintf(f, "id: %d\ndata: event %d\n\n", i, i);
  fclose(f);
  ts_script_headers(sc);
  ts_script_write(sc, all, len); /* one write: all events in one chunk */
  ts_script_hold(sc);
  free(all);

  char nbuf[16];
  snprintf(nbuf, sizeof nbuf, "%d", n);
  const char *args[] = {url("/"), "--json", "--max-events", nbuf, NULL};
  proc *p = spawn_args(args);
  EXPECT_LINE(p, "{\"kind\":\"open\",\"http_version\":11,\"reused\":false}");
  for (int i = 0; i < n; i++) {
    char exp[128];
    snprintf(exp, sizeof exp,
             "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"event %d\",\"id\":\"%d\"}", i,
             i);
    EXPECT_LINE(p, exp);
  }
  EXPECT_EXIT(p, 0);
  EXPECT_NO_MORE_OUTPUT(p);
  ck_assert_int_ge(ts_server_wait_client_closes(g_srv, 1, STEP_MS), 1);
}
END_TEST

/* A stream that ends is reconnected to with Last-Event-ID; 204 then ends
 * sse-cat with status 0. --last-event-id goes in the first request. */
START_TEST(test_reconnect_then_204) {
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_headers(sc);
  ts_script_writes(sc, "id: 7\ndata: x\n\n");
  ts_script_close(sc);
  sc = ts_server_add_script(g_srv);
  ts_script_status(sc, 204, "No Content", no_headers);

  const char *args[] = {"--json", "--last-event-id", "start-5", "--retry=10", url("/r"), NULL};
  proc *p = spawn_args(args);
  EXPECT_LINE(p, "{\"kind\":\"open\",\"http_version\":11,\"reused\":false}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"x\",\"id\":\"7\"}");
  const char *line = next_line(p, STEP_MS);
  ck_assert_msg(line != NULL, "no EOF error line; stderr: %s", stderr_text(p));
  ck_assert_msg(starts_with(line, "{\"kind\":\"error\",\"code\":\"EOF\",\"status\":0,\"message\":\"") &&
                    strstr(line, "\",\"reconnect\":true,\"delay_ms\":") != NULL,
                "bad EOF error line: %s", line);
  /* --retry=10: the first reconnection delay is d = 10 ms raised to the
   * library's floor, EVENTSOURCE_MIN_RECONNECT_MS; jitter only adds, up to
   * half: [d, 1.5 d]. (The default, 3000 ms, would be far above.) */
  long delay = strtol(strstr(line, "\"delay_ms\":") + 11, NULL, 10);
  long d = 10 > EVENTSOURCE_MIN_RECONNECT_MS ? 10 : EVENTSOURCE_MIN_RECONNECT_MS;
  ck_assert_msg(delay >= d && delay <= d + d / 2, "delay_ms %ld with --retry=10", delay);
  line = next_line(p, STEP_MS);
  ck_assert_msg(line != NULL, "no 204 line; stderr: %s", stderr_text(p));
  ck_assert_msg(starts_with(line, "{\"kind\":\"error\",\"code\":\"HTTP_STATUS\",\"status\":204,"
                                  "\"message\":\"") &&
                    strstr(line, "\",\"reconnect\":false,\"delay_ms\":-1}") != NULL,
                "bad 204 line: %s", line);
  EXPECT_EXIT(p, 0);
  EXPECT_NO_MORE_OUTPUT(p);
  ck_assert_int_eq(ts_server_request_count(g_srv), 2);
  expect_header(0, "Last-Event-ID", "start-5");
  expect_header(1, "Last-Event-ID", "7");
}
END_TEST

/* --stats: the statistics on stderr at exit, one name=value line each, in
 * the documented order, after every other line; none without it. */
START_TEST(test_stats) {
  static const char body[] = "data: a\n\n: note\ndata: b\n\n";
  for (int with = 0; with < 2; with++) {
    ts_script *sc = ts_server_add_script(g_srv);
    ts_script_headers(sc);
    ts_script_writes(sc, body);
    ts_script_close(sc);
    sc = ts_server_add_script(g_srv);
    ts_script_status(sc, 204, "No Content", no_headers);
    const char *args[] = {"--json", "--retry=10", url("/s"), with ? "--stats" : NULL, NULL};
    proc *p = spawn_args(args);
    EXPECT_LINE(p, "{\"kind\":\"open\",\"http_version\":11,\"reused\":false}");
    EXPECT_EXIT(p, 0);
    const char *err = stderr_text(p);
    if (!with) {
      ck_assert_msg(strstr(err, "events=") == NULL, "stats without --stats: %s", err);
      proc_cleanup(p);
      continue;
    }
    char want[512];
    snprintf(want, sizeof want,
             "attempts=2\nrequests=2\nopens=1\nreconnects=1\nevents=2\nbytes=%zu\n"
             "comments=1\ndropped=0\nttfb_ms=",
             sizeof body - 1);
    const char *at = strstr(err, want);
    ck_assert_msg(at != NULL, "no stats block in stderr: %s", err);
    /* the 204's connection: its time to the first byte, no event */
    char *end = NULL;
    long ttfb = strtol(at + strlen(want), &end, 10);
    ck_assert_int_ge(ttfb, 1);
    ck_assert_str_eq(end, "\nfirst_event_ms=0\nhttp_version=11\nconnection_reused=0\n");
  }
}
END_TEST

/* --read-timeout: a silent stream is dropped and reconnected. (The timeout
 * also covers the wait for the response headers, so it must be long enough
 * for a slow machine to get from connect to open.) */
START_TEST(test_read_timeout) {
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_headers(sc);
  ts_script_hold(sc);
  sc = ts_server_add_script(g_srv);
  ts_script_status(sc, 204, "No Content", no_headers);

  const char *args[] = {"--json", "--read-timeout", "1000", "--retry", "10", "--max-retry=50",
                        url("/"), NULL};
  proc *p = spawn_args(args);
  EXPECT_LINE(p, "{\"kind\":\"open\",\"http_version\":11,\"reused\":false}");
  const char *line = next_line(p, STEP_MS);
  ck_assert_msg(line != NULL &&
                    starts_with(line, "{\"kind\":\"error\",\"code\":\"READ_TIMEOUT\",") &&
                    strstr(line, "\"reconnect\":true") != NULL,
                "bad read-timeout line: %s", line ? line : "(none)");
  line = next_line(p, STEP_MS);
  ck_assert_msg(line != NULL && strstr(line, "\"status\":204") != NULL, "bad 204 line: %s",
                line ? line : "(none)");
  EXPECT_EXIT(p, 0);
  ck_assert_int_ge(ts_server_wait_client_closes(g_srv, 1, STEP_MS), 1);
  ck_assert_int_eq(ts_server_request_count(g_srv), 2);
}
END_TEST

/* --no-reconnect-on-end: the end of the stream ends sse-cat with status 0,
 * after one request (an answer to a POST is not asked for again); in the
 * readable mode nothing is said on stderr but with -v. A server's retry:
 * over --max-retry would be used as sent (the delay is not shown here, the
 * source does not reconnect). */
START_TEST(test_no_reconnect_on_end) {
  {
    int json = _i;
    ts_script *sc = ts_server_add_script(g_srv);
    ts_script_headers(sc);
    ts_script_writes(sc, "retry: 5\nid: 1\ndata: answer\n\n");
    ts_script_close(sc);
    sc = ts_server_add_script(g_srv);
    ts_script_headers(sc);
    ts_script_writes(sc, "data: again\n\n");
    ts_script_hold(sc);
    const char *args_json[] = {"--json", "--no-reconnect-on-end", "-d", "{}", url("/llm"), NULL};
    const char *args_plain[] = {"--no-reconnect-on-end", "-v", url("/llm"), NULL};
    proc *p = spawn_args(json ? args_json : args_plain);
    if (json) {
      EXPECT_LINE(p, "{\"kind\":\"open\",\"http_version\":11,\"reused\":false}");
      EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"answer\",\"id\":\"1\"}");
      const char *line = next_line(p, STEP_MS);
      ck_assert_msg(line != NULL &&
                        starts_with(line, "{\"kind\":\"error\",\"code\":\"EOF\",\"status\":0,") &&
                        strstr(line, "\"reconnect\":false,\"delay_ms\":-1}") != NULL,
                    "bad EOF line: %s; stderr: %s", line ? line : "(none)", stderr_text(p));
    } else {
      EXPECT_LINE(p, "event: message");
      EXPECT_LINE(p, "id: 1");
      EXPECT_LINE(p, "data: answer");
      EXPECT_LINE(p, "");
    }
    EXPECT_EXIT(p, 0);
    if (json) {
      ck_assert_msg(strstr(stderr_text(p), "giving up") == NULL, "stderr: %s", stderr_text(p));
    } else {
      ck_assert_msg(strstr(stderr_text(p), "the server ended the stream (--no-reconnect-on-end)"),
                    "stderr: %s", stderr_text(p));
      ck_assert_msg(strstr(stderr_text(p), "error ") == NULL, "stderr: %s", stderr_text(p));
    }
    EXPECT_NO_MORE_OUTPUT(p);
    ck_assert_int_eq(ts_server_request_count(g_srv), 1);
    if (json) {
      ts_request r;
      ck_assert_int_eq(ts_server_get_request(g_srv, 0, &r), 0);
      ck_assert_str_eq(r.method, "POST");
    }
  }
}
END_TEST

/* A failure the library does not retry (here a 401 or a 404) ends sse-cat
 * at once with status 1 and the reason on stderr: the code's name, the HTTP
 * status, eventsource_strerror() and the message, then the response's body;
 * in both output modes. */
static const struct {
  int status, json;
} fatal_cases[] = {{401, 0}, {404, 0}, {401, 1}, {404, 1}};

START_TEST(test_fatal_status) {
  int status = fatal_cases[_i].status, json = fatal_cases[_i].json;
  const char *const hdrs[] = {"Content-Type: text/plain", "Content-Length: 5", NULL};
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_status(sc, status, status == 401 ? "Unauthorized" : "Not Found", hdrs);
  ts_script_writes(sc, "nope\n");

  const char *args[] = {url("/f"), json ? "--json" : NULL, NULL};
  proc *p = spawn_args(args);
  EXPECT_EXIT(p, 1);
  char expected[256];
  snprintf(expected, sizeof expected,
           "sse-cat: error HTTP_STATUS (HTTP %d): %s: HTTP status %d (expected 200); "
           "giving up\nsse-cat: HTTP %d body: nope\n",
           status, eventsource_strerror(EVENTSOURCE_ERR_HTTP_STATUS), status, status);
  if (json) {
    ck_assert_str_eq(stderr_text(p), expected); /* the only line */
    const char *line = next_line(p, STEP_MS);
    char head[128];
    snprintf(head, sizeof head, "{\"kind\":\"error\",\"code\":\"HTTP_STATUS\",\"status\":%d,",
             status);
    ck_assert_msg(starts_with(line, head) && strstr(line, "\"reconnect\":false") != NULL,
                  "bad error line: %s", line ? line : "(none)");
    EXPECT_NO_MORE_OUTPUT(p);
  } else {
    ck_assert_uint_eq(p->out.len, 0);
    ck_assert_msg(strstr(stderr_text(p), expected) != NULL, "expected\n  %sgot\n  %s", expected,
                  stderr_text(p));
  }
  ck_assert_int_eq(ts_server_request_count(g_srv), 1); /* not retried */
}
END_TEST

/* The body of a refused response, on stderr after the reason: one line per
 * line (CRLF or LF), escaped like every stderr line, U+0000 included. */
START_TEST(test_fatal_body_shown) {
  const char *const hdrs[] = {"Content-Type: application/json", NULL};
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_status(sc, 429, "Too Many Requests", hdrs);
  static const char body[] = "{\r\n  \"error\": \"rate \x1b[31mlimited\",\n  \"n\": \"a\0b\"\n}\n";
  ts_script_write(sc, body, sizeof body - 1);

  const char *args[] = {url("/b"), NULL};
  proc *p = spawn_args(args);
  EXPECT_EXIT(p, 1);
  const char *want = "; giving up\n"
                     "sse-cat: HTTP 429 body: {\n"
                     "sse-cat: HTTP 429 body:   \"error\": \"rate \\x1b[31mlimited\",\n"
                     "sse-cat: HTTP 429 body:   \"n\": \"a\\x00b\"\n"
                     "sse-cat: HTTP 429 body: }\n";
  const char *err = stderr_text(p);
  size_t el = strlen(err), wl = strlen(want);
  ck_assert_msg(el >= wl && strcmp(err + el - wl, want) == 0, "stderr:\n%s", err);
  ck_assert_ptr_nonnull(strstr(err, "error HTTP_STATUS (HTTP 429)"));
  EXPECT_NO_CONTROLS(p, err, "stderr");
}
END_TEST

/* An untrusted certificate is not retried either: TLS, exit 1 at once. */
START_TEST(test_fatal_tls) {
  g_tls = ts_tls_new("IP:127.0.0.1");
  ck_assert_ptr_nonnull(g_tls);
  g_srv2 = ts_server_start_tls(g_tls);
  ck_assert_ptr_nonnull(g_srv2);

  const char *args[] = {"--retry", "10", ts_server_url(g_srv2, "/tls"), NULL};
  proc *p = spawn_args(args);
  EXPECT_EXIT(p, 1);
  ck_assert_uint_eq(p->out.len, 0);
  char head[160];
  snprintf(head, sizeof head, "sse-cat: error TLS: %s: ",
           eventsource_strerror(EVENTSOURCE_ERR_TLS));
  const char *line = strstr(stderr_text(p), head);
  ck_assert_msg(line != NULL && strstr(line, "; giving up\n") != NULL, "stderr: %s",
                stderr_text(p));
  EXPECT_NO_CONTROLS(p, err, "stderr");
  /* The server may count the failed handshake after sse-cat has gone. */
  ck_assert_int_eq(ts_server_wait_tls_failures(g_srv2, 1, STEP_MS), 1); /* one attempt */
}
END_TEST

static const int term_signals[] = {SIGTERM, SIGINT};

/* A signal during a held, silent stream closes the source; exit 0. */
START_TEST(test_signal) {
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_headers(sc);
  ts_script_hold(sc);

  const char *args[] = {"--json", url("/"), NULL};
  proc *p = spawn_args(args);
  EXPECT_LINE(p, "{\"kind\":\"open\",\"http_version\":11,\"reused\":false}");
  ck_assert_int_eq(kill(p->pid, term_signals[_i]), 0);
  EXPECT_EXIT(p, 0);
  EXPECT_NO_MORE_OUTPUT(p);
  ck_assert_int_ge(ts_server_wait_client_closes(g_srv, 1, STEP_MS), 1);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Selection                                                                */
/* ------------------------------------------------------------------------ */

START_TEST(test_type_filter) {
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_headers(sc);
  ts_script_writes(sc, "event: b\ndata: 1\n\nevent: a\ndata: 2\n\nevent: b\ndata: 3\n\n"
                       "data: 4\n\nevent: a\ndata: 5\n\n");
  ts_script_hold(sc);

  const char *args[] = {"--json", "--type=a", "--type", "message", "--max-events", "2",
                        url("/"), NULL};
  proc *p = spawn_args(args);
  EXPECT_LINE(p, "{\"kind\":\"open\",\"http_version\":11,\"reused\":false}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"a\",\"data\":\"2\",\"id\":\"\"}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"4\",\"id\":\"\"}");
  EXPECT_EXIT(p, 0);
  EXPECT_NO_MORE_OUTPUT(p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The request                                                              */
/* ------------------------------------------------------------------------ */

static void one_event_script(void) {
  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: ok\n\n");
  ts_script_hold(sc);
}

START_TEST(test_headers_method_body) {
  one_event_script();
  const char *args[] = {"-H",   "X-Test: hello world", "-HX-Other:two",  "-H",
                        "Accept: application/x-test",  "-X",             "POST",
                        "-d",   "a=1&b=2",             "--max-events=1", url("/post"),
                        NULL};
  proc *p = spawn_args(args);
  EXPECT_EXIT(p, 0);
  ck_assert_str_eq(p->out.p ? p->out.p : "", "event: message\ndata: ok\n\n");

  ts_request r;
  ck_assert_int_eq(ts_server_request_count(g_srv), 1);
  ck_assert_int_eq(ts_server_get_request(g_srv, 0, &r), 0);
  ck_assert_str_eq(r.method, "POST");
  ck_assert_str_eq(r.path, "/post");
  expect_header(0, "X-Test", "hello world");
  expect_header(0, "X-Other", "two");
  expect_header(0, "Accept", "application/x-test");
  int accepts = 0;
  for (int i = 0; i < r.nheaders; i++)
    if (strncasecmp(r.headers[i], "Accept:", 7) == 0)
      accepts++;
  ck_assert_int_eq(accepts, 1); /* -H replaced the default */
  ck_assert_uint_eq(r.body_len, 7);
  ck_assert_mem_eq(r.body, "a=1&b=2", 7);
}
END_TEST

/* -d @file: binary-safe; with -d and no -X the method is POST. */
START_TEST(test_body_from_file) {
  static const char body[] = "bin\0ary\r\n\xff\x01 body";
  int fd;
  char arg[80];
  snprintf(g_tmpfile, sizeof g_tmpfile, "/tmp/test_ssecat_XXXXXX");
  fd = mkstemp(g_tmpfile);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
  close(fd);
  one_event_script();
  one_event_script();

  snprintf(arg, sizeof arg, "--data=@%s", g_tmpfile);
  const char *args[] = {arg, "--header=Content-Type: application/octet-stream",
                        "--max-events", "1", url("/file"), NULL};
  proc *p = spawn_args(args);
  EXPECT_EXIT(p, 0);

  ts_request r;
  ck_assert_int_eq(ts_server_get_request(g_srv, 0, &r), 0);
  ck_assert_str_eq(r.method, "POST");
  expect_header(0, "Content-Type", "application/octet-stream");
  ck_assert_uint_eq(r.body_len, sizeof body - 1);
  ck_assert_mem_eq(r.body, body, sizeof body - 1);
  proc_cleanup(p);

  /* -X wins over the implied POST. */
  const char *args2[] = {"-X", "REPORT", "-d", arg + 7, "--max-events", "1", url("/file"),
                         NULL};
  p = spawn_args(args2);
  EXPECT_EXIT(p, 0);
  ck_assert_int_eq(ts_server_get_request(g_srv, 1, &r), 0);
  ck_assert_str_eq(r.method, "REPORT");
  ck_assert_uint_eq(r.body_len, sizeof body - 1);
  ck_assert_mem_eq(r.body, body, sizeof body - 1);
}
END_TEST

/* --max-last-event-id is passed to the library before --last-event-id, to
 * which it applies (a longer one is a usage error), and to the stream: a
 * longer id: field is not adopted. */
START_TEST(test_max_last_event_id) {
  const char *too_long[] = {"--max-last-event-id", "3", "--last-event-id", "abcd", url("/"),
                            NULL};
  proc *p = spawn_args(too_long);
  EXPECT_EXIT(p, 2);
  ck_assert_msg(strstr(stderr_text(p), "sse-cat: --last-event-id: ") != NULL, "stderr: %s",
                stderr_text(p));
  ck_assert_uint_eq(p->out.len, 0);
  ck_assert_int_eq(ts_server_request_count(g_srv), 0);
  proc_cleanup(p);

  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: a\n\nid: 12345\ndata: b\n\n");
  ts_script_hold(sc);
  const char *args[] = {"--json", "--max-last-event-id=4", "--last-event-id", "abcd",
                        "--max-events", "2", url("/"), NULL};
  p = spawn_args(args);
  EXPECT_LINE(p, "{\"kind\":\"open\",\"http_version\":11,\"reused\":false}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"a\",\"id\":\"abcd\"}");
  const char *line = next_line(p, STEP_MS);
  ck_assert_msg(starts_with(line, "{\"kind\":\"error\",\"code\":\"TOO_LARGE\",") &&
                    strstr(line, "\"reconnect\":false") != NULL,
                "bad TOO_LARGE line: %s", line ? line : "(none)");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"b\",\"id\":\"abcd\"}");
  EXPECT_EXIT(p, 0);
  EXPECT_NO_MORE_OUTPUT(p);
  expect_header(0, "Last-Event-ID", "abcd");
}
END_TEST

/* Without the option the library's default limit applies (sse-cat does not
 * set one); 0 lifts it. */
START_TEST(test_max_last_event_id_default) {
  char id[EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID + 2];
  memset(id, 'i', sizeof id - 1);
  id[sizeof id - 1] = '\0';
  const char *dflt[] = {"--last-event-id", id, url("/"), NULL};
  proc *p = spawn_args(dflt);
  EXPECT_EXIT(p, 2);
  ck_assert_int_eq(ts_server_request_count(g_srv), 0);
  proc_cleanup(p);

  one_event_script();
  const char *unlimited[] = {"--max-last-event-id", "0", "--last-event-id", id,
                             "--max-events", "1", url("/"), NULL};
  p = spawn_args(unlimited);
  EXPECT_EXIT(p, 0);
  ck_assert_int_eq(ts_server_request_count(g_srv), 1);
}
END_TEST

/* A redirect from s to location (307 keeps the method). */
static void redirect_script(ts_server *s, int status, const char *location) {
  char loc[300];
  snprintf(loc, sizeof loc, "Location: %s", location);
  const char *const hdrs[] = {loc, "Content-Length: 0", NULL};
  ts_script *sc = ts_server_add_script(s);
  ts_script_status(sc, status, "Redirect", hdrs);
}

/* The -H headers reach the other origin a redirect leads to only with
 * --location-trusted (_i 1); Accept goes everywhere. */
START_TEST(test_location_trusted) {
  g_srv2 = ts_server_start();
  ck_assert_ptr_nonnull(g_srv2);
  ts_script *sc = ts_server_add_script(g_srv2);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: moved\n\n");
  ts_script_hold(sc);
  redirect_script(g_srv, 307, ts_server_url(g_srv2, "/there"));

  const char *args[] = {"-H", "X-Api-Key: k1", "--max-events", "1", url("/here"),
                        _i ? "--location-trusted" : NULL, NULL};
  proc *p = spawn_args(args);
  EXPECT_EXIT(p, 0);
  ck_assert_str_eq(p->out.p ? p->out.p : "", "event: message\ndata: moved\n\n");
  ts_request r;
  char v[64];
  expect_header(0, "X-Api-Key", "k1");
  ck_assert_int_eq(ts_server_request_count(g_srv2), 1);
  ck_assert_int_eq(ts_server_get_request(g_srv2, 0, &r), 0);
  ck_assert_str_eq(r.path, "/there");
  ck_assert_int_eq(ts_request_header(&r, "Accept", v, sizeof v), 1);
  if (_i) {
    ck_assert_int_eq(ts_request_header(&r, "X-Api-Key", v, sizeof v), 1);
    ck_assert_str_eq(v, "k1");
  } else {
    ck_assert_int_eq(ts_request_header(&r, "X-Api-Key", v, sizeof v), 0);
  }
}
END_TEST

/* https -> http redirects: refused (exit 1, the reason on stderr) unless
 * --allow-http-redirect (_i 1). */
START_TEST(test_allow_http_redirect) {
  g_tls = ts_tls_new("IP:127.0.0.1");
  ck_assert_ptr_nonnull(g_tls);
  g_srv2 = ts_server_start_tls(g_tls);
  ck_assert_ptr_nonnull(g_srv2);
  redirect_script(g_srv2, 302, url("/plain"));
  one_event_script();

  const char *args[] = {"--cacert", ts_tls_ca_file(g_tls), "--max-events", "1",
                        ts_server_url(g_srv2, "/tls"), _i ? "--allow-http-redirect" : NULL,
                        NULL};
  proc *p = spawn_args(args);
  if (_i) {
    EXPECT_EXIT(p, 0);
    ck_assert_str_eq(p->out.p ? p->out.p : "", "event: message\ndata: ok\n\n");
    ck_assert_int_eq(ts_server_request_count(g_srv), 1);
  } else {
    EXPECT_EXIT(p, 1);
    ck_assert_uint_eq(p->out.len, 0);
    ck_assert_msg(strstr(stderr_text(p), "sse-cat: error REDIRECT (HTTP 302): ") != NULL,
                  "stderr: %s", stderr_text(p));
    ck_assert_int_eq(ts_server_request_count(g_srv), 0);
  }
  ck_assert_int_eq(ts_server_request_count(g_srv2), 1);
}
END_TEST

/* Accept-Encoding only with --compressed (_i 1); a compressed body is
 * decoded. */
START_TEST(test_compressed) {
  static const char stream[] = "data: squeezed\n\n";
  unsigned char *z = NULL;
  size_t zlen = 0;
  char clen[64];
  ck_assert_int_eq(ts_encode("gzip", stream, sizeof stream - 1, &z, &zlen), 0);
  snprintf(clen, sizeof clen, "Content-Length: %zu", zlen);
  const char *const hdrs[] = {"Content-Type: text/event-stream", "Content-Encoding: gzip", clen,
                              NULL};
  ts_script *sc = ts_server_add_script(g_srv);
  if (_i) {
    ts_script_status(sc, 200, "OK", hdrs);
    ts_script_write(sc, z, zlen);
  } else {
    ts_script_headers(sc);
    ts_script_writes(sc, stream);
  }
  ts_script_hold(sc);
  free(z);

  const char *args[] = {"--max-events", "1", url("/"), _i ? "--compressed" : NULL, NULL};
  proc *p = spawn_args(args);
  EXPECT_EXIT(p, 0);
  ck_assert_str_eq(p->out.p ? p->out.p : "", "event: message\ndata: squeezed\n\n");
  ts_request r;
  char v[256];
  ck_assert_int_eq(ts_server_get_request(g_srv, 0, &r), 0);
  if (_i) {
    ck_assert_int_eq(ts_request_header(&r, "Accept-Encoding", v, sizeof v), 1);
    ck_assert_msg(strstr(v, "gzip") != NULL, "Accept-Encoding: %s", v);
  } else {
    ck_assert_int_eq(ts_request_header(&r, "Accept-Encoding", v, sizeof v), 0);
  }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* --file: a recorded stream                                                */
/* ------------------------------------------------------------------------ */

/* A capture: a BOM, CRLF and CR line ends, comments, retry:, ids, a type,
 * NUL and an ESC in data, and a last event without its blank line (not
 * dispatched at the end of the file, as the spec says). */
static const char RECORDED[] = "\xEF\xBB\xBF: welcome\r\n"
                               "retry: 1000\r\n"
                               "id: 1\r\n"
                               "data: first\r\n"
                               "\r\n"
                               "event: update\r"
                               "data: two\r"
                               "data: lines\r"
                               "\r"
                               ": keep-alive\n"
                               "id: 3\n"
                               "data: n\0l \x1b[2J\n"
                               "\n"
                               "data: partial, never dispatched\n";

static const char RECORDED_PLAIN[] = ": welcome\n"
                                     "event: message\nid: 1\ndata: first\n\n"
                                     "event: update\nid: 1\ndata: two\ndata: lines\n\n"
                                     ": keep-alive\n"
                                     "event: message\nid: 3\ndata: n\\x00l \\x1b[2J\n\n";

/* Writes RECORDED into g_tmpfile (removed by the teardown). */
static const char *recorded_file(void) {
  snprintf(g_tmpfile, sizeof g_tmpfile, "/tmp/test_ssecat_XXXXXX");
  int fd = mkstemp(g_tmpfile);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, RECORDED, sizeof RECORDED - 1), (ssize_t)(sizeof RECORDED - 1));
  close(fd);
  return g_tmpfile;
}

static void expect_output(const proc *p, const char *expected, size_t len) {
  ck_assert_msg(p->out.len == len && memcmp(p->out.p, expected, len) == 0,
                "unexpected output (%zu bytes, expected %zu):\n%s\nstderr: %s", p->out.len,
                len, p->out.p ? p->out.p : "", p->err.p ? p->err.p : "");
}

/* The readable form of a recorded file, exactly; and the live stream of
 * the same bytes prints the same. */
START_TEST(test_file_replay) {
  const char *args[] = {"--comments", "--file", recorded_file(), NULL};
  proc *p = spawn_args(args);
  EXPECT_EXIT(p, 0);
  expect_output(p, RECORDED_PLAIN, sizeof RECORDED_PLAIN - 1);
  ck_assert_uint_eq(p->err.len, 0); /* no connection notices */
  ck_assert_int_eq(ts_server_request_count(g_srv), 0);
  proc_cleanup(p);

  ts_script *sc = ts_server_add_script(g_srv);
  ts_script_headers(sc);
  ts_script_write(sc, RECORDED, sizeof RECORDED - 1);
  ts_script_hold(sc);
  const char *live[] = {"--comments", "--max-events", "3", url("/"), NULL};
  p = spawn_args(live);
  EXPECT_EXIT(p, 0);
  expect_output(p, RECORDED_PLAIN, sizeof RECORDED_PLAIN - 1);
}
END_TEST

/* "-" reads standard input; --json prints as for a live stream, without
 * the open notification (there is no connection). */
START_TEST(test_file_stdin_json) {
  const char *args[] = {"--json", "--file", "-", NULL};
  proc *p = spawn_stdin(args, recorded_file(), -1);
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"first\",\"id\":\"1\"}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"update\",\"data\":\"two\\nlines\",\"id\":\"1\"}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\","
                 "\"data\":\"n\\u0000l \\u001b[2J\",\"id\":\"3\"}");
  EXPECT_EXIT(p, 0);
  EXPECT_NO_MORE_OUTPUT(p);
}
END_TEST

/* A pipe is printed as it is written: each event appears before the next
 * one is sent, even when its bytes come in pieces. */
START_TEST(test_file_stdin_streaming) {
  int in[2];
  ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
  const char *args[] = {"--json", "--file=-", NULL};
  proc *p = spawn_stdin(args, NULL, in[0]);
  close(in[0]);
  ck_assert_int_eq(write(in[1], "\xEF\xBB", 2), 2);
  ck_assert_int_eq(write(in[1], "\xBF" "data: a\r", 10), 10);
  ck_assert_int_eq(write(in[1], "\n\r\n", 3), 3);
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"a\",\"id\":\"\"}");
  ck_assert_int_eq(write(in[1], "id: 2\ndata: b\n", 14), 14);
  ck_assert_int_eq(write(in[1], "\n", 1), 1);
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"b\",\"id\":\"2\"}");
  ck_assert_int_eq(write(in[1], "data: partial", 13), 13);
  close(in[1]);
  EXPECT_EXIT(p, 0);
  EXPECT_NO_MORE_OUTPUT(p);
}
END_TEST

/* --type, --max-events, --last-event-id and --max-last-event-id apply to a
 * recorded stream too; a limit error is shown as for a live stream. */
START_TEST(test_file_options) {
  const char *args[] = {"--type", "update", "--max-events", "1", "--file", recorded_file(),
                        NULL};
  proc *p = spawn_args(args);
  EXPECT_EXIT(p, 0);
  static const char one[] = "event: update\nid: 1\ndata: two\ndata: lines\n\n";
  expect_output(p, one, sizeof one - 1);
  proc_cleanup(p);

  const char *ids[] = {"--json", "--last-event-id", "0", "--max-last-event-id", "0", "--file",
                       "-", NULL};
  static const char stream[] = "data: a\n\nid: 12345\ndata: b\n\n";
  int in[2];
  ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
  ck_assert_int_eq(write(in[1], stream, sizeof stream - 1), (ssize_t)(sizeof stream - 1));
  close(in[1]);
  p = spawn_stdin(ids, NULL, in[0]);
  close(in[0]);
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"a\",\"id\":\"0\"}");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"b\",\"id\":\"12345\"}");
  EXPECT_EXIT(p, 0);
  proc_cleanup(p);

  ids[4] = "3"; /* --max-last-event-id 3: the id: is not adopted */
  ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
  ck_assert_int_eq(write(in[1], stream, sizeof stream - 1), (ssize_t)(sizeof stream - 1));
  close(in[1]);
  p = spawn_stdin(ids, NULL, in[0]);
  close(in[0]);
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"a\",\"id\":\"0\"}");
  const char *line = next_line(p, STEP_MS);
  ck_assert_msg(starts_with(line, "{\"kind\":\"error\",\"code\":\"TOO_LARGE\",\"status\":0,"),
                "line: %s", line ? line : "(none)");
  EXPECT_LINE(p, "{\"kind\":\"event\",\"type\":\"message\",\"data\":\"b\",\"id\":\"0\"}");
  EXPECT_EXIT(p, 0);
  proc_cleanup(p);

  /* an initial ID longer than the limit is a usage error */
  const char *too_long[] = {"--max-last-event-id", "1", "--last-event-id", "12", "--file", "-",
                            NULL};
  p = spawn_args(too_long);
  EXPECT_EXIT(p, 2);
  ck_assert_uint_eq(p->out.len, 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The command line                                                         */
/* ------------------------------------------------------------------------ */

#define BAD_URL "http://127.0.0.1:9/never"
static const char *const usage_cases[][8] = {
    {NULL},
    {BAD_URL, "http://127.0.0.1:9/second", NULL},
    {"--json", NULL},
    {"--bogus", BAD_URL, NULL},
    {"-q", BAD_URL, NULL},
    {BAD_URL, "--max-events", NULL},
    {"--max-events", "abc", BAD_URL, NULL},
    {"--max-events", "0", BAD_URL, NULL},
    {"--max-events=", BAD_URL, NULL},
    {"--max-events", "3x", BAD_URL, NULL},
    {"--max-events", " 3", BAD_URL, NULL},
    {"--max-events", "99999999999999999999999", BAD_URL, NULL},
    {"--cacert", "/nonexistent/ca.pem", "https://127.0.0.1:9/", NULL},
    {"--retry", "-5", BAD_URL, NULL},
    {"--retry=1.5", BAD_URL, NULL},
    {"--max-retry", "", BAD_URL, NULL},
    {"--read-timeout", "99999999999999999999999", BAD_URL, NULL},
    {"-H", "NoColon", BAD_URL, NULL},
    {"-H", ": empty name", BAD_URL, NULL},
    {"-H", "Bad Name: x", BAD_URL, NULL},
    {"-H", "Last-Event-ID: 5", BAD_URL, NULL},
    {"--header=X-A\x01: b", BAD_URL, NULL},
    {"-X", "BAD METHOD", BAD_URL, NULL},
    {"-X", "", BAD_URL, NULL},
    {"-d", "@/nonexistent/sse-cat-test", BAD_URL, NULL},
    {"--last-event-id", "a\nb", BAD_URL, NULL},
    {"--json=yes", BAD_URL, NULL},
    {"ftp://127.0.0.1/x", NULL},
    {"not a url", NULL},
    /* Controls in the arguments are escaped in the messages too. */
    {"--max-events", "\x1b[2J", BAD_URL, NULL},
    {"--bogus\x1b[2J", BAD_URL, NULL},
    {"-\x1b", BAD_URL, NULL},
    {"--json=\x1b[2J", BAD_URL, NULL},
    {"-H", "X-\x1b[2J: v", BAD_URL, NULL},
    {BAD_URL, "http://127.0.0.1:9/\x1b[2J", NULL},
    {"http://127.0.0.1:9/\x1b[2J\x9b", NULL},
    {"--max-last-event-id", "-1", BAD_URL, NULL},
    {"--max-last-event-id=x", BAD_URL, NULL},
    {BAD_URL, "--max-last-event-id", NULL},
    {"--compressed=yes", BAD_URL, NULL},
    {"--location-trusted=1", BAD_URL, NULL},
    {"--allow-http-redirect=", BAD_URL, NULL},
    {"--file", NULL},
    {"--file=", NULL},
    {"--file", "/nonexistent/sse-cat-recording", NULL},
    {"--file", "-", BAD_URL, NULL},
    {"--file=-", "-H", "A: b", NULL},
    {"--file", "-", "--retry", "5", NULL},
    {"--file", "-", "-d", "x", NULL},
    {"--file", "-", "--no-reconnect-on-end", NULL},
    {"--file", "-", "--stats", NULL},
    {"--stats=1", BAD_URL, NULL},
};

START_TEST(test_bad_usage) {
  proc *p = spawn_args(usage_cases[_i]);
  EXPECT_EXIT(p, 2);
  ck_assert_msg(p->out.len == 0, "case %d: output on stdout: %s", _i, p->out.p);
  ck_assert_msg(strncmp(stderr_text(p), "sse-cat: ", 9) == 0, "case %d: stderr: %s", _i,
                stderr_text(p));
  EXPECT_NO_CONTROLS(p, err, "stderr");
  ck_assert_int_eq(ts_server_request_count(g_srv), 0);
}
END_TEST

START_TEST(test_help_version) {
  const char *help[] = {"--help", NULL};
  proc *p = spawn_args(help);
  EXPECT_EXIT(p, 0);
  ck_assert_ptr_nonnull(p->out.p);
  ck_assert_msg(strncmp(p->out.p, "Usage: sse-cat ", 15) == 0, "help: %s", p->out.p);
  ck_assert_ptr_nonnull(strstr(p->out.p, "--max-events"));
  static const char *const opts[] = {"--compressed", "--location-trusted",
                                     "--allow-http-redirect", "--max-last-event-id N",
                                     "--file PATH", "--stats"};
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
    ck_assert_msg(strstr(p->out.p, opts[i]) != NULL, "no %s in the help", opts[i]);
  char dflt[64];
  snprintf(dflt, sizeof dflt, "(default %ld\n", (long)EVENTSOURCE_DEFAULT_READ_TIMEOUT_MS);
  ck_assert_msg(strstr(p->out.p, dflt) != NULL, "no read-timeout default in the help");
  ck_assert_ptr_nonnull(strstr(p->out.p, "0 waits for ever"));
  ck_assert_uint_eq(p->err.len, 0);
  proc_cleanup(p);

  const char *version[] = {"--version", NULL};
  p = spawn_args(version);
  EXPECT_EXIT(p, 0);
  ck_assert_ptr_nonnull(p->out.p);
  ck_assert_ptr_nonnull(strstr(p->out.p, "0."));
  ck_assert_msg(strncmp(p->out.p, "sse-cat ", 8) == 0, "version: %s", p->out.p);
}
END_TEST

/* ------------------------------------------------------------------------ */

/* A test case of s, with the fixture and that timeout (seconds). */
static TCase *fixture_tcase(Suite *s, const char *name, double timeout) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, timeout);
  suite_add_tcase(s, tc);
  return tc;
}

static Suite *ssecat_suite(void) {
  Suite *s = suite_create("sse-cat");
  TCase *tc;

  tc = fixture_tcase(s, "json", 60);
  tcase_add_test(tc, test_json_events);
  tcase_add_test(tc, test_json_no_comments);
  tcase_add_test(tc, test_json_404);
  tcase_add_test(tc, test_plain_output);

  tc = fixture_tcase(s, "escape", 60);
  tcase_add_test(tc, test_escape_controls);
  tcase_add_test(tc, test_escape_json_unchanged);

  tc = fixture_tcase(s, "ending", 60);
  tcase_add_test(tc, test_max_events);
  tcase_add_test(tc, test_reconnect_then_204);
  tcase_add_test(tc, test_stats);
  tcase_add_test(tc, test_read_timeout);
  tcase_add_loop_test(tc, test_no_reconnect_on_end, 0, 2);
  tcase_add_test(tc, test_fatal_body_shown);
  tcase_add_loop_test(tc, test_fatal_status, 0,
                      (int)(sizeof fatal_cases / sizeof fatal_cases[0]));
  tcase_add_test(tc, test_fatal_tls);
  tcase_add_loop_test(tc, test_signal, 0, (int)(sizeof term_signals / sizeof term_signals[0]));

  tc = fixture_tcase(s, "request", 60);
  tcase_add_test(tc, test_type_filter);
  tcase_add_test(tc, test_headers_method_body);
  tcase_add_test(tc, test_body_from_file);
  tcase_add_test(tc, test_max_last_event_id);
  tcase_add_test(tc, test_max_last_event_id_default);
  tcase_add_loop_test(tc, test_location_trusted, 0, 2);
  tcase_add_loop_test(tc, test_allow_http_redirect, 0, 2);
  tcase_add_loop_test(tc, test_compressed, 0, 2);

  tc = fixture_tcase(s, "file", 60);
  tcase_add_test(tc, test_file_replay);
  tcase_add_test(tc, test_file_stdin_json);
  tcase_add_test(tc, test_file_stdin_streaming);
  tcase_add_test(tc, test_file_options);

  tc = fixture_tcase(s, "usage", 120);
  tcase_add_loop_test(tc, test_bad_usage, 0,
                      (int)(sizeof usage_cases / sizeof usage_cases[0]));
  tcase_add_test(tc, test_help_version);
  return s;
}

int main(void) { return ts_run_suite(ssecat_suite(), CK_NORMAL); }
