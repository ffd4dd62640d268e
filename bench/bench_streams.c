/*
 * bench_streams.c - many streams on one thread: memory per idle stream,
 * events per second, time to open them all, and the cost of one event as
 * the number of open streams grows.
 *
 *   bench_streams [N [BUFSIZE]]     N streams (default 1000); BUFSIZE sets
 *                                   libcurl's receive buffer (CURLOPT_BUFFERSIZE)
 *                                   through the curl hook, to see what it costs
 *
 * The server is bench/mass_server.c (one epoll thread) in a child
 * process, so the client's RSS is the library's alone; the parent drives it
 * over a pipe. The client is one eventsource_multi_t run with
 * eventsource_multi_poll() on the main thread.
 *
 * Measured, for the N streams:
 *   open_all_ms          from the first eventsource_multi_add() to the last
 *                        open notification;
 *   rss_per_stream_kib   (RSS with N open idle streams - RSS before) / N;
 *   events_per_s         events delivered per second while every stream
 *                        receives 100 events per round (100000 events in
 *                        all; at fewer streams, more rounds), from the
 *                        first queued to the last delivered.
 * Then, at 10, 100 and N streams, the cost of one event: client CPU per
 * event during that broadcast, and a ping-pong on one stream while all the
 * others stay open and idle (wall time per round trip and client CPU per
 * event). Work per event that grew with the number of streams would show in
 * the ping-pong figures.
 *
 * The last line is exactly:
 *   streams=N rss_per_stream_kib=N events_per_s=N open_all_ms=N
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eventsource.h"
#include "eventsource_curl.h"
#include "mass_server.h"

#define PAYLOAD "data: the quick brown fox\n\n"
#define PINGS 2000
#define BROADCAST_TOTAL 100000
#define PER_ROUND 100

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench_streams: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2)
    die("cannot read %s", "/proc/self/statm");
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

/* ------------------------------------------------------------------------ */
/* The server, in a child process                                           */
/* ------------------------------------------------------------------------ */

/* Commands, one line each: "B count" broadcasts count events to every stream
 * (answers "ok QUEUED"), "S id" sends one event to stream id (no answer),
 * "Q" quits. The child answers its port first. */
static int cmd_fd = -1, reply_fd = -1;
static pid_t child = -1;

static void write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      die("pipe write failed: %s", strerror(errno));
    s += w;
    n -= (size_t)w;
  }
}

/* Reads one line (without LF) into buf; 0 at EOF. */
static int read_line(int fd, char *buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return 0;
    if (c == '\n')
      break;
    buf[n++] = c;
  }
  buf[n] = '\0';
  return 1;
}

static void server_child(int in, int out) {
  mass_server *s = mass_server_start();
  if (!s)
    die("%s", "cannot start the server");
  char line[64];
  snprintf(line, sizeof line, "%d\n", mass_server_port(s));
  write_all(out, line, strlen(line));
  /* Reading the pipe a byte at a time keeps the ping-pong simple; a command
   * is a few bytes. */
  while (read_line(in, line, sizeof line)) {
    if (line[0] == 'B') {
      int q = mass_server_broadcast(s, PAYLOAD, sizeof PAYLOAD - 1, atoi(line + 2));
      char ok[32];
      snprintf(ok, sizeof ok, "ok %d\n", q);
      write_all(out, ok, strlen(ok));
    } else if (line[0] == 'S') {
      mass_server_send(s, atoi(line + 2), PAYLOAD, sizeof PAYLOAD - 1, 1);
    } else {
      break;
    }
  }
  mass_server_stop(s);
  _exit(0);
}

static int start_server(void) {
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0)
    die("pipe: %s", strerror(errno));
  child = fork();
  if (child < 0)
    die("fork: %s", strerror(errno));
  if (child == 0) {
    close(to_child[1]);
    close(from_child[0]);
    server_child(to_child[0], from_child[1]);
  }
  close(to_child[0]);
  close(from_child[1]);
  cmd_fd = to_child[1];
  reply_fd = from_child[0];
  char line[32];
  if (!read_line(reply_fd, line, sizeof line))
    die("%s", "the server did not start");
  return atoi(line);
}

static void stop_server(void) {
  write_all(cmd_fd, "Q\n", 2);
  close(cmd_fd);
  close(reply_fd);
  waitpid(child, NULL, 0);
}

/* ------------------------------------------------------------------------ */
/* The client                                                               */
/* ------------------------------------------------------------------------ */

typedef struct stream {
  eventsource_t *es;
  long events;
  int open;
} stream;

static long total_events, total_opens;
static long buffer_size; /* CURLOPT_BUFFERSIZE, 0 for libcurl's default */

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  stream *st = ud;
  (void)es;
  switch (eventsource_event_kind(ev)) {
  case EVENTSOURCE_KIND_OPEN:
    st->open = 1;
    total_opens++;
    break;
  case EVENTSOURCE_KIND_MESSAGE:
    st->events++;
    total_events++;
    break;
  case EVENTSOURCE_KIND_ERROR:
    die("stream error: %s", eventsource_event_message(ev));
    break;
  default:
    break;
  }
}

static CURLcode set_buffer(eventsource_t *es, CURL *easy, void *ud) {
  (void)es;
  (void)ud;
  return curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, buffer_size);
}

static void poll_until(eventsource_multi_t *m, const long *counter, long target,
                       const char *what) {
  double deadline = now_s() + 120;
  while (*counter < target) {
    eventsource_error_t rc = eventsource_multi_poll(m, 1000);
    if (rc)
      die("eventsource_multi_poll: %s", eventsource_strerror(rc));
    if (now_s() > deadline)
      die("timed out waiting for %s", what);
  }
}

/* Opens n streams with ids first..first+n-1; returns the seconds it took. */
static double open_streams(eventsource_multi_t *m, int port, stream *st, int n, int first) {
  long target = total_opens + n;
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/s/%d", port, first + i);
    memset(&st[i], 0, sizeof st[i]);
    if (eventsource_new(&st[i].es, url) != EVENTSOURCE_OK ||
        eventsource_add_any_listener(st[i].es, on_any, &st[i], NULL) != EVENTSOURCE_OK ||
        (buffer_size && eventsource_set_curl_callback(st[i].es, set_buffer, NULL)) ||
        eventsource_multi_add(m, st[i].es) != EVENTSOURCE_OK)
      die("%s", "cannot create a stream");
  }
  poll_until(m, &total_opens, target, "the streams to open");
  return now_s() - t0;
}

static void close_streams(eventsource_multi_t *m, stream *st, int n) {
  for (int i = 0; i < n; i++)
    eventsource_close(st[i].es);
  if (eventsource_multi_run(m) != EVENTSOURCE_OK)
    die("%s", "eventsource_multi_run failed");
  for (int i = 0; i < n; i++)
    eventsource_free(st[i].es);
}

typedef struct cost {
  int streams;
  double bcast_cpu_ns; /* client CPU per event, all streams receiving */
  double events_per_s;
  double rtt_us;       /* one stream's ping-pong, wall time per event */
  double rtt_cpu_us;   /* client CPU per ping-pong event */
} cost;

/* Events on all n streams, then a ping-pong on stream st[0] (id first).
 * The broadcast sends PER_ROUND events to every stream per round, in as many
 * rounds as make about BROADCAST_TOTAL events, so that each size sees the
 * same batching (events per read) and the figures compare. */
static cost measure(eventsource_multi_t *m, stream *st, int n, int first) {
  cost c = {.streams = n};
  int rounds = BROADCAST_TOTAL / (PER_ROUND * n) > 0 ? BROADCAST_TOTAL / (PER_ROUND * n) : 1;
  char cmd[64], reply[64];
  snprintf(cmd, sizeof cmd, "B %d\n", PER_ROUND);
  double t0 = now_s(), c0 = cpu_s();
  for (int r = 0; r < rounds; r++) {
    long target = total_events + (long)PER_ROUND * n;
    write_all(cmd_fd, cmd, strlen(cmd));
    if (!read_line(reply_fd, reply, sizeof reply) || atoi(reply + 3) != n)
      die("broadcast reached %s streams", reply);
    poll_until(m, &total_events, target, "the broadcast");
  }
  double dt = now_s() - t0, dc = cpu_s() - c0;
  double events = (double)rounds * PER_ROUND * n;
  c.events_per_s = events / dt;
  c.bcast_cpu_ns = dc * 1e9 / events;

  snprintf(cmd, sizeof cmd, "S %d\n", first);
  size_t cl = strlen(cmd);
  t0 = now_s();
  c0 = cpu_s();
  for (int i = 0; i < PINGS; i++) {
    long want = st[0].events + 1;
    write_all(cmd_fd, cmd, cl);
    while (st[0].events < want)
      if (eventsource_multi_poll(m, 1000) != EVENTSOURCE_OK)
        die("%s", "eventsource_multi_poll failed");
  }
  c.rtt_us = (now_s() - t0) * 1e6 / PINGS;
  c.rtt_cpu_us = (cpu_s() - c0) * 1e6 / PINGS;
  return c;
}

static void print_cost(const cost *c) {
  printf("per_event streams=%d broadcast_cpu_ns=%.0f broadcast_events_per_s=%.0f "
         "pingpong_rtt_us=%.1f pingpong_client_cpu_us=%.2f\n",
         c->streams, c->bcast_cpu_ns, c->events_per_s, c->rtt_us, c->rtt_cpu_us);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  buffer_size = argc > 2 ? atol(argv[2]) : 0;
  if (n < 1 || n > 1000000)
    die("bad number of streams: %s", argc > 1 ? argv[1] : "");
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* Each process needs a descriptor per stream (the client its sockets, the
   * server its connections) and a few more. */
  struct rlimit rl;
  rlim_t need = (rlim_t)n + 64;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < need) {
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
      die("%lu descriptors allowed (ulimit -Hn), %lu needed", (unsigned long)rl.rlim_max,
          (unsigned long)need);
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      die("setrlimit: %s", strerror(errno));
  }
  signal(SIGPIPE, SIG_IGN);
  int port = start_server(); /* before any thread or libcurl state */

  eventsource_multi_t *m = NULL;
  if (eventsource_multi_new(&m) != EVENTSOURCE_OK)
    die("%s", "eventsource_multi_new failed");
  stream *st = calloc((size_t)n, sizeof *st);
  if (!st)
    die("%s", "out of memory");

  /* Warm up: one stream and one event, so that libcurl's and the library's
   * one-time allocations are not counted per stream. */
  open_streams(m, port, st, 1, 0);
  write_all(cmd_fd, "S 0\n", 4);
  poll_until(m, &total_events, 1, "the first event");
  close_streams(m, st, 1);

  long rss0 = rss_bytes();
  double open_s = open_streams(m, port, st, n, 1);
  long rss1 = rss_bytes();
  double per_stream_kib = (double)(rss1 - rss0) / n / 1024.0;
  printf("open streams=%d open_all_ms=%.0f rss_before_kib=%ld rss_open_kib=%ld "
         "rss_per_stream_kib=%.1f\n",
         n, open_s * 1000, rss0 / 1024, rss1 / 1024, per_stream_kib);
  cost big = measure(m, st, n, 1);
  long rss2 = rss_bytes();
  printf("after events: rss_kib=%ld rss_per_stream_kib=%.1f\n", rss2 / 1024,
         (double)(rss2 - rss0) / n / 1024.0);
  close_streams(m, st, n);

  /* The same at 10 and 100 streams (measured after the big run, so that its
   * memory figures start from a clean heap). */
  cost small[2];
  int nsmall = 0, next_id = n + 1;
  const int sizes[2] = {10, 100};
  for (int i = 0; i < 2; i++) {
    if (sizes[i] >= n)
      continue;
    open_streams(m, port, st, sizes[i], next_id);
    small[nsmall++] = measure(m, st, sizes[i], next_id);
    close_streams(m, st, sizes[i]);
    next_id += sizes[i];
  }
  for (int i = 0; i < nsmall; i++)
    print_cost(&small[i]);
  print_cost(&big);

  eventsource_multi_free(m);
  free(st);
  stop_server();
  printf("streams=%d rss_per_stream_kib=%.0f events_per_s=%.0f open_all_ms=%.0f\n", n,
         per_stream_kib < 0 ? 0 : per_stream_kib, big.events_per_s, open_s * 1000);
  return 0;
}
