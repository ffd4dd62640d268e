/* e2e_streams.c - bench_e2e's streams and loopback server (e2e_streams.h). */
#include "e2e_streams.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define PERIOD_TARGET (4u << 20) /* bytes of body a period holds, about */
#define LARGE_DATA 65536u
#define CHUNK 65536u

static const char *const shape_names[E2E_NSHAPES] = {"small", "llm", "large"};

const char *e2e_shape_name(e2e_shape s) { return shape_names[s]; }
const char *e2e_shape_type(e2e_shape s) { return s == E2E_SMALL ? "tick" : "message"; }

uint64_t e2e_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "bench_e2e: out of memory\n");
    exit(1);
  }
  return p;
}

/* The n-th event of a shape into out (room enough); its length. */
static size_t make_event(e2e_shape s, size_t n, char *out, size_t room, size_t *data_len) {
  static const char *const words[] = {"The", " quick", " brown", " fox", " jumps",
                                      " over", " the", " lazy", " dog", ",", " and",
                                      " then", " it", " sleeps", "."};
  int w = 0;
  switch (s) {
  case E2E_SMALL: /* data: exactly 48 bytes */
    w = snprintf(out, room,
                 "id: %zu\nevent: tick\ndata: {\"seq\":%08zu,\"v\":\"abcdefghijklmnopqrstuvwxy\"}\n\n",
                 n, n % 100000000u);
    *data_len = 48;
    break;
  case E2E_LLM: {
    const char *word = words[n % (sizeof words / sizeof words[0])];
    int d = snprintf(out, room,
                     "data: {\"id\":\"chatcmpl-%010zu\",\"object\":\"chat.completion.chunk\","
                     "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"}}]}\n\n",
                     n, word);
    w = d;
    *data_len = (size_t)d - 8; /* "data: " and "\n\n" */
    break;
  }
  case E2E_LARGE: {
    size_t len = 6 + LARGE_DATA + 2;
    if (room < len)
      return 0;
    memcpy(out, "data: ", 6);
    for (size_t i = 0; i < LARGE_DATA; i++)
      out[6 + i] = (char)('a' + (n + i) % 26);
    memcpy(out + 6 + LARGE_DATA, "\n\n", 2);
    *data_len = LARGE_DATA;
    return len;
  }
  default:
    break;
  }
  return w > 0 && (size_t)w < room ? (size_t)w : 0;
}

static void period_make(e2e_shape s, e2e_period *p) {
  size_t cap = PERIOD_TARGET + 2 * (LARGE_DATA + 64);
  p->body = xmalloc(cap);
  p->framed = xmalloc(cap + cap / 8 + 64 * 1024);
  p->len = p->framed_len = p->events = p->data_bytes = 0;
  size_t fcap = cap + cap / 8 + 64 * 1024;
  while (p->len < PERIOD_TARGET) {
    size_t dl = 0;
    size_t n = make_event(s, p->events + 1, p->body + p->len, cap - p->len, &dl);
    if (n == 0 || fcap - p->framed_len < n + 32) {
      fprintf(stderr, "bench_e2e: event does not fit\n");
      exit(1);
    }
    int h = snprintf(p->framed + p->framed_len, 32, "%zx\r\n", n);
    p->framed_len += (size_t)h;
    memcpy(p->framed + p->framed_len, p->body + p->len, n);
    p->framed_len += n;
    memcpy(p->framed + p->framed_len, "\r\n", 2);
    p->framed_len += 2;
    p->len += n;
    p->events++;
    p->data_bytes += dl;
  }
}

void e2e_periods_make(e2e_period out[E2E_NSHAPES]) {
  for (int s = 0; s < E2E_NSHAPES; s++)
    period_make((e2e_shape)s, &out[s]);
}

void e2e_periods_free(e2e_period p[E2E_NSHAPES]) {
  for (int s = 0; s < E2E_NSHAPES; s++) {
    free(p[s].body);
    free(p[s].framed);
  }
}

size_t e2e_periods_for(const e2e_period *p, uint64_t total_bytes) {
  uint64_t n = (total_bytes + p->len / 2) / p->len;
  return n ? (size_t)n : 1;
}

/* ---- the server (child process) ------------------------------------------ */

/* Writes every byte of iov[0..n) (modified); 0, or -1. */
static int writev_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(fd, iov, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

static int write_all(int fd, const void *p, size_t len) {
  struct iovec v = {(void *)(uintptr_t)p, len};
  return writev_all(fd, &v, 1);
}

static const char HEAD[] = "HTTP/1.1 200 OK\r\n"
                           "Content-Type: text/event-stream\r\n"
                           "Cache-Control: no-cache\r\n"
                           "Transfer-Encoding: chunked\r\n"
                           "Connection: close\r\n\r\n";
static const char LAST[] = "0\r\n\r\n";

/* The body in 64 KiB chunks, a few chunks per writev, straight from the
 * period (a chunk may wrap around its end). */
static int send_chunked_64k(int fd, const e2e_period *p, size_t periods) {
  static char hdr[16];
  int hl = snprintf(hdr, sizeof hdr, "%x\r\n", CHUNK);
  uint64_t total = (uint64_t)p->len * periods, pos = 0;
  enum { BATCH = 8 };
  struct iovec iov[BATCH * 4];
  char lasthdr[16];
  while (pos < total) {
    int n = 0;
    for (int c = 0; c < BATCH && pos < total; c++) {
      size_t len = total - pos < CHUNK ? (size_t)(total - pos) : CHUNK;
      if (len == CHUNK) {
        iov[n++] = (struct iovec){hdr, (size_t)hl};
      } else {
        int l = snprintf(lasthdr, sizeof lasthdr, "%zx\r\n", len);
        iov[n++] = (struct iovec){lasthdr, (size_t)l};
      }
      size_t at = (size_t)(pos % p->len), first = p->len - at < len ? p->len - at : len;
      iov[n++] = (struct iovec){p->body + at, first};
      if (first < len)
        iov[n++] = (struct iovec){p->body, len - first};
      iov[n++] = (struct iovec){(void *)(uintptr_t)"\r\n", 2};
      pos += len;
    }
    if (writev_all(fd, iov, n) != 0)
      return -1;
  }
  return write_all(fd, LAST, sizeof LAST - 1);
}

static int send_per_event(int fd, const e2e_period *p, size_t periods) {
  for (size_t i = 0; i < periods; i++)
    if (write_all(fd, p->framed, p->framed_len) != 0)
      return -1;
  return write_all(fd, LAST, sizeof LAST - 1);
}

static int send_latency(int fd, long n, long interval_us) {
  uint64_t start = e2e_now_ns();
  for (long i = 1; i <= n; i++) {
    uint64_t at = start + (uint64_t)i * (uint64_t)interval_us * 1000u;
    struct timespec ts = {(time_t)(at / 1000000000u), (long)(at % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
      ;
    char ev[64], buf[96];
    int el = snprintf(ev, sizeof ev, "data: %llu\n\n", (unsigned long long)e2e_now_ns());
    int bl = snprintf(buf, sizeof buf, "%x\r\n%s\r\n", (unsigned)el, ev);
    if (write_all(fd, buf, (size_t)bl) != 0)
      return -1;
  }
  return write_all(fd, LAST, sizeof LAST - 1);
}

/* Reads the request head; the path into path. 0, or -1. */
static int read_request(int fd, char *path, size_t size) {
  char buf[8192];
  size_t len = 0;
  for (;;) {
    if (len == sizeof buf - 1)
      return -1;
    ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    len += (size_t)r;
    buf[len] = '\0';
    if (strstr(buf, "\r\n\r\n"))
      break;
  }
  char *sp = strchr(buf, ' '), *end = sp ? strchr(sp + 1, ' ') : NULL;
  if (!sp || !end || (size_t)(end - sp - 1) >= size)
    return -1;
  memcpy(path, sp + 1, (size_t)(end - sp - 1));
  path[end - sp - 1] = '\0';
  return 0;
}

static void serve(int fd, const e2e_period periods[E2E_NSHAPES]) {
  char path[1024], shape[32], framing[32];
  size_t nper;
  long n, interval;
  if (read_request(fd, path, sizeof path) != 0)
    return;
  if (sscanf(path, "/stream/%31[a-z]/%31[a-z0-9]/%zu", shape, framing, &nper) == 3) {
    int s = 0;
    while (s < E2E_NSHAPES && strcmp(shape_names[s], shape) != 0)
      s++;
    if (s == E2E_NSHAPES || write_all(fd, HEAD, sizeof HEAD - 1) != 0)
      return;
    if (strcmp(framing, "event") == 0)
      send_per_event(fd, &periods[s], nper);
    else
      send_chunked_64k(fd, &periods[s], nper);
  } else if (sscanf(path, "/latency/%ld/%ld", &n, &interval) == 2) {
    if (write_all(fd, HEAD, sizeof HEAD - 1) == 0)
      send_latency(fd, n, interval);
  } else {
    static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n";
    write_all(fd, nf, sizeof nf - 1);
  }
}

int e2e_server_start(e2e_server *s, const e2e_period periods[E2E_NSHAPES]) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0)
    return -1;
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 16) != 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
    close(lfd);
    return -1;
  }
  s->port = ntohs(a.sin_port);
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(lfd);
    return -1;
  }
  if (pid == 0) {
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
      int fd = accept(lfd, NULL, NULL);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED)
          continue;
        _exit(1);
      }
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      serve(fd, periods);
      shutdown(fd, SHUT_WR);
      close(fd);
    }
  }
  close(lfd);
  s->pid = pid;
  return 0;
}

void e2e_server_stop(e2e_server *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
  }
}
