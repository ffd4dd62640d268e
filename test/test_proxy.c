/*
 * test_proxy.c - a source reached through an HTTP proxy tunnel (CONNECT).
 *
 * Regression test for the proxy's own response leaking into the library's
 * header callback: libcurl used to pass the proxy's "HTTP/1.1 200 Connection
 * established" header block to CURLOPT_HEADERFUNCTION, where the library took
 * it for the origin's response (status 200 but no text/event-stream) and
 * failed the source with CONTENT_TYPE. The library now sets
 * CURLOPT_SUPPRESS_CONNECT_HEADERS.
 *
 * The proxy (px_*) is a tiny loopback CONNECT proxy on 127.0.0.1, port 0, in
 * a thread of its own. It serves one connection at a time: reads the CONNECT
 * request and its headers, records the target and the Proxy-* headers,
 * connects to the target (only 127.0.0.1 is allowed), answers per its mode,
 * then relays bytes both ways until either side closes. Every wait it makes
 * is a poll() that px_stop() interrupts through a pipe, with a deadline.
 *
 * The origin is the scripted server of test/support/sse_server.h. Sources run
 * with eventsource_start(); every notification is recorded in a log under a
 * mutex and a condition variable, and the tests wait on that log, on the
 * proxy or on the server with deadlines, never on a sleep.
 */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "eventsource.h"
#include "eventsource_curl.h"
#include "support/sse_server.h"
#include "support/ts_util.h"

/* Deadlines are failure bounds only: a passing run never waits for them. */
#define WAIT_MS 10000


static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* pthread_cond_t with CLOCK_MONOTONIC, for ts_deadline_in(). */
static void cond_init_mono(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

/* ------------------------------------------------------------------------ */
/* The CONNECT proxy                                                        */
/* ------------------------------------------------------------------------ */

enum px_mode {
  PX_TUNNEL,        /* 200 Connection established + Proxy-Agent */
  PX_TUNNEL_EXTRA,  /* the same plus Content-Type: text/plain and others */
  PX_REFUSE         /* 403 Forbidden, no tunnel */
};

#define PX_MAX_REC 8
#define PX_MAX_HDR 16
#define PX_LINE 512

typedef struct px {
  int lfd;        /* listening socket */
  int wake[2];    /* px_stop() writes to wake[1]; every poll watches wake[0] */
  int port;
  enum px_mode mode;
  pthread_t thread;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  int accepted;             /* connections accepted */
  int nconnect;             /* CONNECT requests read */
  char targets[PX_MAX_REC][PX_LINE];
  int nproxy_hdr;           /* Proxy-* header lines seen, over all requests */
  char proxy_hdr[PX_MAX_HDR][PX_LINE];
  int nleaked;              /* origin headers sent to the proxy (Accept, ...) */
  char leaked[PX_MAX_HDR][PX_LINE];
  int bad;                  /* malformed request, bad target, failed connect */
  char bad_why[PX_LINE];
  int tunnels;              /* 200 answers sent (tunnels opened) */
  int refused;              /* 403 answers sent */
  int finished;             /* connections fully handled (closed) */
  size_t up_bytes, down_bytes; /* relayed client->target, target->client */
} px;

static void px_note_bad(px *p, const char *why) {
  pthread_mutex_lock(&p->mu);
  if (!p->bad++)
    snprintf(p->bad_why, sizeof p->bad_why, "%s", why);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static int px_stopping(px *p) {
  struct pollfd pf = {.fd = p->wake[0], .events = POLLIN};
  return poll(&pf, 1, 0) > 0;
}

/* Writes all of buf to fd (loopback, small amounts). 0 or -1. */
static int px_send_all(px *p, int fd, const char *buf, size_t len) {
  while (len) {
    struct pollfd pf[2] = {{.fd = fd, .events = POLLOUT},
                           {.fd = p->wake[0], .events = POLLIN}};
    int r = poll(pf, 2, WAIT_MS);
    if (r <= 0 || (pf[1].revents & POLLIN))
      return -1;
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      continue;
    if (n <= 0)
      return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads the request head (up to and including the blank line) into buf; the
 * bytes after it, if any, stay in buf after the head. Returns the head's
 * length (*total: bytes in buf), or -1. */
static long px_read_head(px *p, int fd, char *buf, size_t cap, size_t *total) {
  size_t n = 0;
  long end_ms = now_ms() + WAIT_MS;
  for (;;) {
    buf[n] = '\0';
    char *e = strstr(buf, "\r\n\r\n");
    if (e) {
      *total = n;
      return (long)(e + 4 - buf);
    }
    if (n + 1 >= cap)
      return -1;
    long left = end_ms - now_ms();
    if (left <= 0)
      return -1;
    struct pollfd pf[2] = {{.fd = fd, .events = POLLIN},
                           {.fd = p->wake[0], .events = POLLIN}};
    int r = poll(pf, 2, (int)left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0 || (pf[1].revents & POLLIN))
      return -1;
    ssize_t got = recv(fd, buf + n, cap - 1 - n, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return -1;
    n += (size_t)got;
  }
}

/* Records the request line's target and the header lines of interest. */
static int px_parse_head(px *p, char *head, char *host, size_t hostcap,
                         int *port) {
  char *line_end = strstr(head, "\r\n");
  if (!line_end)
    return -1;
  *line_end = '\0';
  char target[PX_LINE];
  char version[32];
  if (sscanf(head, "CONNECT %511s %31s", target, version) != 2 ||
      strncmp(version, "HTTP/1.", 7) != 0)
    return -1;
  pthread_mutex_lock(&p->mu);
  if (p->nconnect < PX_MAX_REC)
    snprintf(p->targets[p->nconnect], PX_LINE, "%s", target);
  p->nconnect++;
  /* Header lines. */
  char *l = line_end + 2;
  while (*l && strncmp(l, "\r\n", 2) != 0) {
    char *e = strstr(l, "\r\n");
    if (!e)
      break;
    *e = '\0';
    if (strncasecmp(l, "Proxy-", 6) == 0) {
      if (p->nproxy_hdr < PX_MAX_HDR)
        snprintf(p->proxy_hdr[p->nproxy_hdr], PX_LINE, "%s", l);
      p->nproxy_hdr++;
    } else if (strncasecmp(l, "Accept:", 7) == 0 ||
               strncasecmp(l, "Cache-Control:", 14) == 0 ||
               strncasecmp(l, "Last-Event-ID:", 14) == 0 ||
               strncasecmp(l, "X-Origin-Only:", 14) == 0) {
      if (p->nleaked < PX_MAX_HDR)
        snprintf(p->leaked[p->nleaked], PX_LINE, "%s", l);
      p->nleaked++;
    }
    l = e + 2;
  }
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  /* host:port; only 127.0.0.1 is allowed. */
  char *colon = strrchr(target, ':');
  if (!colon)
    return -1;
  *colon = '\0';
  char *endp;
  long pn = strtol(colon + 1, &endp, 10);
  if (*endp || pn <= 0 || pn > 65535)
    return -1;
  snprintf(host, hostcap, "%s", target);
  *port = (int)pn;
  return 0;
}

static int px_connect_target(const char *host, int port) {
  if (strcmp(host, "127.0.0.1") != 0)
    return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* Loopback: refused or accepted at once, never a long wait. */
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Relays bytes both ways until either side closes (or px_stop()). */
static void px_relay(px *p, int cfd, int tfd) {
  char buf[16384];
  for (;;) {
    struct pollfd pf[3] = {{.fd = cfd, .events = POLLIN},
                           {.fd = tfd, .events = POLLIN},
                           {.fd = p->wake[0], .events = POLLIN}};
    int r = poll(pf, 3, -1); /* px_stop() ends it */
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 || (pf[2].revents & POLLIN))
      return;
    for (int i = 0; i < 2; i++) {
      if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      int from = i == 0 ? cfd : tfd, to = i == 0 ? tfd : cfd;
      ssize_t n = recv(from, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return; /* EOF or error on one side: the tunnel ends */
      if (px_send_all(p, to, buf, (size_t)n) != 0)
        return;
      pthread_mutex_lock(&p->mu);
      if (i == 0)
        p->up_bytes += (size_t)n;
      else
        p->down_bytes += (size_t)n;
      pthread_mutex_unlock(&p->mu);
    }
  }
}

static void px_serve(px *p, int cfd) {
  char buf[8192];
  size_t total = 0;
  long head_len = px_read_head(p, cfd, buf, sizeof buf, &total);
  if (head_len < 0) {
    if (!px_stopping(p))
      px_note_bad(p, "could not read the request head");
    return;
  }
  /* The bytes after the head (none expected: curl waits for the answer). */
  char extra[sizeof buf];
  size_t nextra = total - (size_t)head_len;
  memcpy(extra, buf + head_len, nextra);
  buf[head_len] = '\0';

  char host[PX_LINE];
  int port = 0;
  if (px_parse_head(p, buf, host, sizeof host, &port) != 0) {
    px_note_bad(p, "malformed CONNECT request");
    static const char bad_req[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    px_send_all(p, cfd, bad_req, sizeof bad_req - 1);
    return;
  }
  if (p->mode == PX_REFUSE) {
    static const char refuse[] = "HTTP/1.1 403 Forbidden\r\n\r\n";
    px_send_all(p, cfd, refuse, sizeof refuse - 1);
    pthread_mutex_lock(&p->mu);
    p->refused++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return;
  }
  int tfd = px_connect_target(host, port);
  if (tfd < 0) {
    px_note_bad(p, "target not 127.0.0.1 or connect failed");
    static const char bad_gw[] = "HTTP/1.1 502 Bad Gateway\r\n\r\n";
    px_send_all(p, cfd, bad_gw, sizeof bad_gw - 1);
    return;
  }
  static const char ok[] = "HTTP/1.1 200 Connection established\r\n"
                           "Proxy-Agent: px\r\n\r\n";
  /* Headers that would fail the source (or mislead it) if they were taken
   * for the origin's: a wrong type, a Location, a Content-Length that
   * libcurl must ignore in a 2xx CONNECT answer. */
  static const char ok_extra[] = "HTTP/1.1 200 Connection established\r\n"
                                 "Proxy-Agent: px\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "Location: http://127.0.0.1:1/elsewhere\r\n"
                                 "Cache-Control: no-store\r\n"
                                 "Content-Length: 0\r\n"
                                 "\r\n";
  const char *answer = p->mode == PX_TUNNEL_EXTRA ? ok_extra : ok;
  size_t alen = p->mode == PX_TUNNEL_EXTRA ? sizeof ok_extra - 1 : sizeof ok - 1;
  if (px_send_all(p, cfd, answer, alen) != 0 ||
      (nextra && px_send_all(p, tfd, extra, nextra) != 0)) {
    close(tfd);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->tunnels++;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  px_relay(p, cfd, tfd);
  close(tfd);
}

/* One connection at a time: the next one waits in the backlog. */
static void *px_main(void *arg) {
  px *p = arg;
  for (;;) {
    struct pollfd pf[2] = {{.fd = p->lfd, .events = POLLIN},
                           {.fd = p->wake[0], .events = POLLIN}};
    int r = poll(pf, 2, -1); /* px_stop() ends it */
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 || (pf[1].revents & POLLIN))
      break;
    if (!(pf[0].revents & POLLIN))
      continue;
    int cfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0)
      continue;
    pthread_mutex_lock(&p->mu);
    p->accepted++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    px_serve(p, cfd);
    close(cfd);
    pthread_mutex_lock(&p->mu);
    p->finished++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  return NULL;
}

static px *px_start(enum px_mode mode) {
  px *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->mode = mode;
  p->lfd = -1;
  p->wake[0] = p->wake[1] = -1;
  pthread_mutex_init(&p->mu, NULL);
  cond_init_mono(&p->cv);
  if (pipe2(p->wake, O_CLOEXEC) != 0)
    goto fail;
  p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (p->lfd < 0)
    goto fail;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  if (bind(p->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(p->lfd, 16) != 0 ||
      getsockname(p->lfd, (struct sockaddr *)&sa, &sl) != 0)
    goto fail;
  p->port = ntohs(sa.sin_port);
  if (pthread_create(&p->thread, NULL, px_main, p) != 0)
    goto fail;
  return p;
fail:
  if (p->lfd >= 0)
    close(p->lfd);
  if (p->wake[0] >= 0) {
    close(p->wake[0]);
    close(p->wake[1]);
  }
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
  return NULL;
}

static void px_stop(px *p) {
  if (!p)
    return;
  char b = 1;
  ssize_t w;
  do
    w = write(p->wake[1], &b, 1);
  while (w < 0 && errno == EINTR);
  pthread_join(p->thread, NULL);
  close(p->lfd);
  close(p->wake[0]);
  close(p->wake[1]);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

/* Waits until *field (under p->mu) reaches at least n; returns its value. */
static int px_wait(px *p, const int *field, int n, long timeout_ms) {
  struct timespec dl;
  ts_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&p->mu);
  while (*field < n && pthread_cond_timedwait(&p->cv, &p->mu, &dl) == 0) {
  }
  int v = *field;
  pthread_mutex_unlock(&p->mu);
  return v;
}

static int px_get(px *p, const int *field) {
  pthread_mutex_lock(&p->mu);
  int v = *field;
  pthread_mutex_unlock(&p->mu);
  return v;
}

/* ------------------------------------------------------------------------ */
/* The source side: a notification log                                     */
/* ------------------------------------------------------------------------ */

#define LOG_MAX 64

typedef struct rec {
  eventsource_kind_t kind;
  char type[32];
  char data[128];
  eventsource_error_t error;
  long status;
  int will_reconnect;
  long reconnect_ms;
  int curl_code;
  char message[256];
  eventsource_ready_state_t state; /* readyState seen from the listener */
  long last_http_status;           /* eventsource_last_http_status() then */
} rec;

typedef struct ctx {
  ts_server *srv;
  px *proxy;
  eventsource_t *es;
  char proxy_url[64];
  const char *userpwd; /* CURLOPT_PROXYUSERPWD, or NULL */
  int ncurl;           /* calls of the curl hook */
  int curl_failed;     /* curl_easy_setopt() failures in the hook */

  pthread_mutex_t mu;
  pthread_cond_t cv;
  rec log[LOG_MAX];
  int n;
} ctx;

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  ctx *c = ud;
  rec r;
  memset(&r, 0, sizeof r);
  r.kind = eventsource_event_kind(ev);
  snprintf(r.type, sizeof r.type, "%s", eventsource_event_type(ev, NULL));
  snprintf(r.data, sizeof r.data, "%s", eventsource_event_data(ev, NULL));
  r.error = eventsource_event_error(ev);
  r.status = eventsource_event_http_status(ev);
  r.will_reconnect = eventsource_event_will_reconnect(ev);
  r.reconnect_ms = eventsource_event_reconnect_ms(ev);
  r.curl_code = eventsource_event_curl_code(ev);
  snprintf(r.message, sizeof r.message, "%s", eventsource_event_message(ev));
  r.state = eventsource_ready_state(es);
  r.last_http_status = eventsource_last_http_status(es);
  pthread_mutex_lock(&c->mu);
  if (c->n < LOG_MAX)
    c->log[c->n++] = r;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static CURLcode px_curl_hook(eventsource_t *es, CURL *easy, void *ud) {
  ctx *c = ud;
  (void)es;
  CURLcode rc = curl_easy_setopt(easy, CURLOPT_PROXY, c->proxy_url);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(easy, CURLOPT_HTTPPROXYTUNNEL, 1L);
  if (rc == CURLE_OK && c->userpwd)
    rc = curl_easy_setopt(easy, CURLOPT_PROXYUSERPWD, c->userpwd);
  pthread_mutex_lock(&c->mu);
  c->ncurl++;
  if (rc != CURLE_OK)
    c->curl_failed++;
  pthread_mutex_unlock(&c->mu);
  return rc;
}

/* Waits for the first notification of kind at or after index *from; copies
 * it to *out and sets *from past it. 1 if found, 0 on timeout. */
static int wait_kind(ctx *c, eventsource_kind_t kind, int *from, rec *out,
                     long timeout_ms) {
  struct timespec dl;
  ts_deadline_in(&dl, timeout_ms);
  int found = 0;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    for (int i = *from; i < c->n; i++) {
      if (c->log[i].kind == kind) {
        *out = c->log[i];
        *from = i + 1;
        found = 1;
        break;
      }
    }
    if (found || pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0)
      break;
  }
  pthread_mutex_unlock(&c->mu);
  return found;
}

static int log_count(ctx *c, eventsource_kind_t kind) {
  pthread_mutex_lock(&c->mu);
  int k = 0;
  for (int i = 0; i < c->n; i++)
    k += c->log[i].kind == kind;
  pthread_mutex_unlock(&c->mu);
  return k;
}

/* Prints the log (on failure paths, to make the report useful). */
static void log_dump(ctx *c, const char *why) {
  pthread_mutex_lock(&c->mu);
  fprintf(stderr, "test_proxy: %s; %d notification(s):\n", why, c->n);
  for (int i = 0; i < c->n; i++)
    fprintf(stderr, "  [%d] kind %d type '%s' data '%s' error %s status %ld "
                    "reconnect %d curl %d msg '%s'\n",
            i, (int)c->log[i].kind, c->log[i].type, c->log[i].data,
            eventsource_error_name(c->log[i].error), c->log[i].status,
            c->log[i].will_reconnect, c->log[i].curl_code, c->log[i].message);
  pthread_mutex_unlock(&c->mu);
}

static void ctx_setup(ctx *c, enum px_mode mode) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  cond_init_mono(&c->cv);
  c->srv = ts_server_start();
  ck_assert_ptr_nonnull(c->srv);
  ts_script *sc = ts_server_add_script(c->srv);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: hello\n\n");
  ts_script_hold(sc);
  c->proxy = px_start(mode);
  ck_assert_ptr_nonnull(c->proxy);
  snprintf(c->proxy_url, sizeof c->proxy_url, "http://127.0.0.1:%d",
           c->proxy->port);
  ck_assert_int_eq(eventsource_new(&c->es, ts_server_url(c->srv, "/")),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_any_listener(c->es, on_any, c, NULL),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_curl_callback(c->es, px_curl_hook, c),
                   EVENTSOURCE_OK);
}

/* Closes and frees the source (joins its thread), then the proxy and the
 * origin. */
static void ctx_teardown(ctx *c) {
  if (c->es) {
    eventsource_close(c->es);
    eventsource_free(c->es);
    c->es = NULL;
  }
  px_stop(c->proxy);
  ts_server_stop(c->srv);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
}

/* The common body of the tunnel tests: opens, receives "hello", checks what
 * the proxy and the origin saw, closes. */
static void tunnel_opens_and_receives(enum px_mode mode) {
  ctx c;
  ctx_setup(&c, mode);
  ck_assert_int_eq(eventsource_start(c.es), EVENTSOURCE_OK);

  int at = 0;
  rec r;
  int opened = wait_kind(&c, EVENTSOURCE_KIND_OPEN, &at, &r, WAIT_MS);
  if (!opened)
    log_dump(&c, "no open notification");
  ck_assert_msg(opened, "no OPEN notification through the tunnel");
  ck_assert_int_eq(r.state, EVENTSOURCE_OPEN);
  ck_assert_str_eq(r.type, "open");
  /* Nothing failed before the open (a CONTENT_TYPE error would be here). */
  ck_assert_int_eq(log_count(&c, EVENTSOURCE_KIND_ERROR), 0);

  int got = wait_kind(&c, EVENTSOURCE_KIND_MESSAGE, &at, &r, WAIT_MS);
  if (!got)
    log_dump(&c, "no message");
  ck_assert_msg(got, "no message through the tunnel");
  ck_assert_str_eq(r.type, "message");
  ck_assert_str_eq(r.data, "hello");
  ck_assert_int_eq(r.state, EVENTSOURCE_OPEN);
  ck_assert_int_eq(eventsource_ready_state(c.es), EVENTSOURCE_OPEN);

  /* The proxy: exactly one CONNECT, for the origin, nothing malformed. */
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%d", ts_server_port(c.srv));
  pthread_mutex_lock(&c.proxy->mu);
  int nconnect = c.proxy->nconnect, tunnels = c.proxy->tunnels;
  int bad = c.proxy->bad, nleaked = c.proxy->nleaked;
  int nproxy_hdr = c.proxy->nproxy_hdr;
  char target[PX_LINE], bad_why[PX_LINE], leaked[PX_LINE];
  snprintf(target, sizeof target, "%s", c.proxy->targets[0]);
  snprintf(bad_why, sizeof bad_why, "%s", c.proxy->bad_why);
  snprintf(leaked, sizeof leaked, "%s", nleaked ? c.proxy->leaked[0] : "");
  pthread_mutex_unlock(&c.proxy->mu);
  ck_assert_msg(bad == 0, "proxy: %s", bad_why);
  ck_assert_int_eq(nconnect, 1);
  ck_assert_int_eq(tunnels, 1);
  ck_assert_str_eq(target, want);
  /* The request headers are the origin's: libcurl keeps them off the
   * CONNECT (CURLHEADER_SEPARATE, its default). */
  ck_assert_msg(nleaked == 0, "origin header sent to the proxy: %s", leaked);
  (void)nproxy_hdr;

  /* The origin: one GET / with Accept: text/event-stream, and no Proxy-*. */
  ck_assert_int_eq(ts_server_wait_requests(c.srv, 1, WAIT_MS), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 1);
  ts_request *req = malloc(sizeof *req);
  ck_assert_ptr_nonnull(req);
  ck_assert_int_eq(ts_server_get_request(c.srv, 0, req), 0);
  ck_assert_str_eq(req->method, "GET");
  ck_assert_str_eq(req->path, "/");
  char val[256];
  ck_assert(ts_request_header(req, "Accept", val, sizeof val));
  ck_assert_str_eq(val, "text/event-stream");
  int proxy_hdrs_at_origin = 0;
  for (int i = 0; i < req->nheaders; i++)
    proxy_hdrs_at_origin += strncasecmp(req->headers[i], "Proxy-", 6) == 0;
  ck_assert_int_eq(proxy_hdrs_at_origin, 0);
  free(req);

  /* Close: the tunnel ends, the origin sees the client go, the proxy
   * finishes the connection, and nothing reconnected. */
  eventsource_close(c.es);
  ck_assert_int_eq(eventsource_ready_state(c.es), EVENTSOURCE_CLOSED);
  eventsource_free(c.es);
  c.es = NULL;
  ck_assert_int_ge(ts_server_wait_client_closes(c.srv, 1, WAIT_MS), 1);
  ck_assert_int_ge(px_wait(c.proxy, &c.proxy->finished, 1, WAIT_MS), 1);
  ck_assert_int_eq(px_get(c.proxy, &c.proxy->nconnect), 1);
  ck_assert_int_eq(px_get(c.proxy, &c.proxy->accepted), 1);
  ck_assert_int_eq(log_count(&c, EVENTSOURCE_KIND_ERROR), 0);
  ck_assert_int_eq(log_count(&c, EVENTSOURCE_KIND_OPEN), 1);
  ck_assert_int_eq(c.ncurl, 1);
  ck_assert_int_eq(c.curl_failed, 0);
  ctx_teardown(&c);
}

/* 1. A plain tunnel: "200 Connection established" + Proxy-Agent. Before the
 * fix, the proxy's header block reached the header callback and the source
 * failed with CONTENT_TYPE. */
START_TEST(test_tunnel_opens_and_receives) {
  tunnel_opens_and_receives(PX_TUNNEL);
}
END_TEST

/* 2. The proxy's 200 carries Content-Type: text/plain, a Location, a
 * Cache-Control and Content-Length: 0: none of it counts for the origin. */
START_TEST(test_tunnel_proxy_headers_never_count) {
  tunnel_opens_and_receives(PX_TUNNEL_EXTRA);
}
END_TEST

/* 3. The proxy refuses the tunnel with 403. The origin was never reached:
 * it is the network path that failed, so the expected report is a NETWORK
 * error carrying libcurl's code, with a reconnection scheduled; never the
 * proxy's status taken for the origin's (HTTP_STATUS 403, or CONTENT_TYPE). */
START_TEST(test_tunnel_refused_is_network_error) {
  ctx c;
  ctx_setup(&c, PX_REFUSE);
  /* A long reconnection time: exactly one attempt within the test. */
  ck_assert_int_eq(eventsource_set_max_retry(c.es, 120000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(c.es, 60000), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(c.es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_start(c.es), EVENTSOURCE_OK);

  int at = 0;
  rec r;
  int got = wait_kind(&c, EVENTSOURCE_KIND_ERROR, &at, &r, WAIT_MS);
  if (!got)
    log_dump(&c, "no error notification");
  ck_assert_msg(got, "no error notification after the proxy's 403");
  fprintf(stderr,
          "test_proxy: refused tunnel -> error %s, http_status %ld, curl %d "
          "(%s), will_reconnect %d, reconnect_ms %ld, message '%s'\n",
          eventsource_error_name(r.error), r.status, r.curl_code,
          curl_easy_strerror((CURLcode)r.curl_code), r.will_reconnect,
          r.reconnect_ms, r.message);
  ck_assert_msg(r.error != EVENTSOURCE_ERR_CONTENT_TYPE &&
                    r.error != EVENTSOURCE_ERR_HTTP_STATUS,
                "the proxy's 403 was taken for the origin's answer: %s",
                eventsource_error_name(r.error));
  ck_assert_msg(r.error == EVENTSOURCE_ERR_NETWORK, "error %s, not NETWORK",
                eventsource_error_name(r.error));
  ck_assert_int_ne(r.curl_code, 0);
  /* No origin response: no HTTP status, neither on the event nor the source. */
  ck_assert_int_eq(r.status, 0);
  ck_assert_int_eq(r.last_http_status, 0);
  ck_assert_int_eq(r.will_reconnect, 1);
  ck_assert_int_eq(r.reconnect_ms, 60000);
  ck_assert_int_eq(r.state, EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(eventsource_ready_state(c.es), EVENTSOURCE_CONNECTING);
  ck_assert_int_eq(log_count(&c, EVENTSOURCE_KIND_OPEN), 0);

  /* The proxy saw one CONNECT for the origin and refused it; the origin saw
   * nothing. */
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%d", ts_server_port(c.srv));
  ck_assert_int_eq(px_wait(c.proxy, &c.proxy->finished, 1, WAIT_MS), 1);
  pthread_mutex_lock(&c.proxy->mu);
  int nconnect = c.proxy->nconnect, refused = c.proxy->refused;
  int tunnels = c.proxy->tunnels, bad = c.proxy->bad;
  char target[PX_LINE];
  snprintf(target, sizeof target, "%s", c.proxy->targets[0]);
  pthread_mutex_unlock(&c.proxy->mu);
  ck_assert_int_eq(bad, 0);
  ck_assert_int_eq(nconnect, 1);
  ck_assert_int_eq(refused, 1);
  ck_assert_int_eq(tunnels, 0);
  ck_assert_str_eq(target, want);
  ck_assert_int_eq(ts_server_request_count(c.srv), 0);

  /* Close during the reconnection wait: CLOSED at once, no more attempts. */
  eventsource_close(c.es);
  ck_assert_int_eq(eventsource_ready_state(c.es), EVENTSOURCE_CLOSED);
  eventsource_free(c.es);
  c.es = NULL;
  ck_assert_int_eq(px_get(c.proxy, &c.proxy->accepted), 1);
  ck_assert_int_eq(log_count(&c, EVENTSOURCE_KIND_ERROR), 1);
  ck_assert_int_eq(ts_server_request_count(c.srv), 0);
  ctx_teardown(&c);
}
END_TEST

/* 4. Proxy credentials go to the proxy only: Proxy-Authorization reaches the
 * CONNECT, never the origin, and the source still opens. */
START_TEST(test_tunnel_proxy_credentials_stay_at_proxy) {
  ctx c;
  ctx_setup(&c, PX_TUNNEL);
  c.userpwd = "user:secret";
  ck_assert_int_eq(eventsource_set_header(c.es, "X-Origin-Only", "1"),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_start(c.es), EVENTSOURCE_OK);
  int at = 0;
  rec r;
  int got = wait_kind(&c, EVENTSOURCE_KIND_MESSAGE, &at, &r, WAIT_MS);
  if (!got)
    log_dump(&c, "no message");
  ck_assert(got);
  ck_assert_str_eq(r.data, "hello");

  pthread_mutex_lock(&c.proxy->mu);
  int auth = 0;
  for (int i = 0; i < c.proxy->nproxy_hdr && i < PX_MAX_HDR; i++)
    auth += strcasecmp(c.proxy->proxy_hdr[i],
                       "Proxy-Authorization: Basic dXNlcjpzZWNyZXQ=") == 0;
  int nleaked = c.proxy->nleaked;
  pthread_mutex_unlock(&c.proxy->mu);
  ck_assert_int_eq(auth, 1);
  ck_assert_int_eq(nleaked, 0); /* neither Accept nor X-Origin-Only */

  ck_assert_int_eq(ts_server_wait_requests(c.srv, 1, WAIT_MS), 1);
  ts_request *req = malloc(sizeof *req);
  ck_assert_ptr_nonnull(req);
  ck_assert_int_eq(ts_server_get_request(c.srv, 0, req), 0);
  char val[64];
  ck_assert(ts_request_header(req, "X-Origin-Only", val, sizeof val));
  ck_assert_str_eq(val, "1");
  ck_assert(!ts_request_header(req, "Proxy-Authorization", val, sizeof val));
  free(req);
  ctx_teardown(&c);
}
END_TEST

static Suite *proxy_suite(void) {
  Suite *s = suite_create("proxy");
  TCase *tc = tcase_create("connect-tunnel");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_tunnel_opens_and_receives);
  tcase_add_test(tc, test_tunnel_proxy_headers_never_count);
  tcase_add_test(tc, test_tunnel_refused_is_network_error);
  tcase_add_test(tc, test_tunnel_proxy_credentials_stay_at_proxy);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(proxy_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
