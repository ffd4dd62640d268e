/*
 * sse-test-service - the test service that LaunchDarkly's SSE conformance
 * suite (sse-contract-tests) drives. See test/contract/README.md.
 *
 * Copyright (c) 2026 the libeventsource developers. MIT licence, see COPYING.
 *
 *   sse-test-service [--port N] [--ready-fd FD] [--driver multi|start] [-v]
 *
 * It listens on 127.0.0.1:N (default 8000) until DELETE / and speaks the
 * suite's protocol (docs/service_spec.md of launchdarkly/sse-contract-tests):
 *
 *   GET /                 200 {"capabilities":[...],"name":"libeventsource"}
 *   DELETE /              204, then the process exits with status 0
 *   POST /                creates a stream from a JSON description; 201 with
 *                         Location: /streams/N, 400 for bad parameters
 *   POST /streams/N       {"command":"restart"} or
 *                         {"command":"listen","listen":{"type":T}}
 *                         204; 400 unknown command; 404 unknown stream
 *   DELETE /streams/N     closes the stream; 204 (404 unknown stream)
 *
 * Every stream reports what its source sees by POSTing JSON to
 * {callbackUrl}/1, /2, ... one at a time and in order:
 *   {"kind":"event","event":{"type":T,"data":D,"id":LAST_EVENT_ID}}
 *   {"kind":"comment","comment":TEXT}
 *   {"kind":"error","error":MESSAGE}
 *
 * Design. Only the public API (eventsource.h) is used. All sources live in
 * one multi handle driven by one thread, the loop thread; the HTTP server
 * (libmicrohttpd, a thread per connection) hands it commands through a queue
 * and eventsource_multi_wakeup(), and waits for each to be done, so that for
 * example a "listen" command has taken effect before the suite is told 204.
 * Listeners run on the loop thread: they only format the JSON and append it
 * to the stream's callback queue; a sender thread per stream POSTs the queue
 * in order with libcurl, so a slow callback never blocks a source.
 *
 * --driver start drives each source on its own thread with
 * eventsource_start() instead; commands then run on the HTTP thread, and
 * since eventsource_add_listener() is for the source's own thread only, an
 * any-listener filters events by the set of types listened to.
 *
 * --port 0 lets the kernel pick the port; --ready-fd FD writes the bound
 * port and a newline to FD, then closes it, once the service accepts
 * requests (used by test/test_contract.c). -v logs every request and
 * callback to stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <microhttpd.h>

#include "eventsource.h"

#define SERVICE_NAME "libeventsource"
#define DEFAULT_PORT 8000
#define MAX_REQUEST_BODY (1024 * 1024)
#define CALLBACK_TIMEOUT_MS 10000L

static const char *const capabilities[] = {
    "comments",
    "headers",
    "last-event-id",
    "post",
    "report",
    "read-timeout",
    "restart",
    "bom",
    "server-directed-shutdown-request",
    "event-type-listeners",
};

static int verbose;

/* How sources are driven: all in one multi handle on the loop thread
 * (default), or each on its own thread with eventsource_start(). */
static enum { DRIVER_MULTI, DRIVER_START } driver = DRIVER_MULTI;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
  struct timespec ts;
  va_list ap;
  char line[2048];
  int n;

  clock_gettime(CLOCK_REALTIME, &ts);
  n = snprintf(line, sizeof line, "sse-test-service %02ld:%02ld:%02ld.%03ld ",
               (long)(ts.tv_sec / 3600 % 24), (long)(ts.tv_sec / 60 % 60),
               (long)(ts.tv_sec % 60), ts.tv_nsec / 1000000L);
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s\n", line);
}
#define VLOG(...)                                                              \
  do {                                                                         \
    if (verbose)                                                               \
      logf_(__VA_ARGS__);                                                      \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Growable buffer and JSON string encoding                                 */
/* ------------------------------------------------------------------------ */

typedef struct buf {
  char *p;
  size_t len, cap;
  int failed;
} buf_t;

static void buf_add(buf_t *b, const void *data, size_t n) {
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    char *p;
    while (cap < b->len + n + 1)
      cap *= 2;
    p = realloc(b->p, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void buf_adds(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

/* A JSON string literal for the n bytes at s (UTF-8, may contain NUL). */
static void buf_add_json_string(buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t i, run = 0;

  buf_add(b, "\"", 1);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[7];
    size_t elen = 0;

    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      elen = 2;
    } else if (c < 0x20) {
      esc[0] = '\\';
      switch (c) {
      case '\n': esc[1] = 'n'; elen = 2; break;
      case '\r': esc[1] = 'r'; elen = 2; break;
      case '\t': esc[1] = 't'; elen = 2; break;
      case '\b': esc[1] = 'b'; elen = 2; break;
      case '\f': esc[1] = 'f'; elen = 2; break;
      default:
        esc[1] = 'u';
        esc[2] = '0';
        esc[3] = '0';
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        elen = 6;
      }
    }
    if (elen) {
      buf_add(b, s + i - run, run);
      run = 0;
      buf_add(b, esc, elen);
    } else {
      run++;
    }
  }
  buf_add(b, s + n - run, run);
  buf_add(b, "\"", 1);
}

/* ------------------------------------------------------------------------ */
/* Streams and their callback senders                                       */
/* ------------------------------------------------------------------------ */

typedef struct cb_msg {
  struct cb_msg *next;
  unsigned long n; /* the callback counter: POSTed to {callbackUrl}/n */
  char *json;
  size_t len;
} cb_msg_t;

typedef struct listen_type {
  struct listen_type *next;
  char *type;
} listen_type_t;

typedef struct stream {
  struct stream *next; /* in the service's list (see svc.streams) */
  unsigned long id;    /* assigned by the loop thread */
  eventsource_t *es;   /* owned by the loop thread once added */
  char *callback_url;  /* without trailing '/' */
  char *tag;
  listen_type_t *types; /* types listened to (under mu) */

  /* Callback queue: filled by listeners (loop thread), drained by sender. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  cb_msg_t *head, *tail;
  unsigned long next_n;
  int stopping;
  int sender_started;
  pthread_t sender;
} stream_t;

static void stream_enqueue(stream_t *st, buf_t *b) {
  cb_msg_t *m;

  if (b->failed) {
    logf_("[%s] out of memory formatting a callback", st->tag);
    free(b->p);
    return;
  }
  m = calloc(1, sizeof *m);
  if (!m) {
    free(b->p);
    return;
  }
  m->json = b->p;
  m->len = b->len;
  pthread_mutex_lock(&st->mu);
  if (st->stopping) {
    pthread_mutex_unlock(&st->mu);
    free(m->json);
    free(m);
    return;
  }
  m->n = ++st->next_n;
  if (st->tail)
    st->tail->next = m;
  else
    st->head = m;
  st->tail = m;
  pthread_cond_signal(&st->cv);
  pthread_mutex_unlock(&st->mu);
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  (void)ptr;
  (void)ud;
  return size * nmemb;
}

static void *sender_main(void *arg) {
  stream_t *st = arg;
  CURL *curl = curl_easy_init();
  struct curl_slist *hdrs = NULL;
  size_t urlcap = strlen(st->callback_url) + 32;
  char *url = malloc(urlcap);

  hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
  if (!curl || !url || !hdrs)
    logf_("[%s] cannot set up the callback sender", st->tag);

  for (;;) {
    cb_msg_t *m;

    pthread_mutex_lock(&st->mu);
    while (!st->head && !st->stopping)
      pthread_cond_wait(&st->cv, &st->mu);
    if (st->stopping) {
      pthread_mutex_unlock(&st->mu);
      break;
    }
    m = st->head;
    st->head = m->next;
    if (!st->head)
      st->tail = NULL;
    pthread_mutex_unlock(&st->mu);

    if (curl && url && hdrs) {
      CURLcode rc;
      long status = 0;

      snprintf(url, urlcap, "%s/%lu", st->callback_url, m->n);
      curl_easy_setopt(curl, CURLOPT_URL, url);
      curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, m->json);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->len);
      curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, CALLBACK_TIMEOUT_MS);
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
      VLOG("[%s] callback %lu: %s", st->tag, m->n, m->json);
      rc = curl_easy_perform(curl);
      if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      if (rc != CURLE_OK)
        logf_("[%s] callback %lu to %s failed: %s", st->tag, m->n, url,
              curl_easy_strerror(rc));
      else if (status >= 300)
        logf_("[%s] callback %lu to %s: HTTP %ld", st->tag, m->n, url, status);
    }
    free(m->json);
    free(m);
  }
  curl_slist_free_all(hdrs);
  if (curl)
    curl_easy_cleanup(curl);
  free(url);
  return NULL;
}

static stream_t *stream_alloc(const char *callback_url, const char *tag) {
  stream_t *st = calloc(1, sizeof *st);
  size_t n;

  if (!st)
    return NULL;
  st->callback_url = strdup(callback_url);
  st->tag = strdup(tag ? tag : "");
  pthread_mutex_init(&st->mu, NULL);
  pthread_cond_init(&st->cv, NULL);
  if (!st->callback_url || !st->tag) {
    free(st->callback_url);
    free(st->tag);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
    return NULL;
  }
  n = strlen(st->callback_url);
  while (n > 0 && st->callback_url[n - 1] == '/')
    st->callback_url[--n] = '\0';
  return st;
}

/* Stops the sender (dropping what it has not sent) and frees st. The source
 * must already be freed (or never have been added to the loop). */
static void stream_destroy(stream_t *st) {
  cb_msg_t *m;
  listen_type_t *t;

  if (!st)
    return;
  pthread_mutex_lock(&st->mu);
  st->stopping = 1;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  if (st->sender_started)
    pthread_join(st->sender, NULL);
  while ((m = st->head)) {
    st->head = m->next;
    free(m->json);
    free(m);
  }
  while ((t = st->types)) {
    st->types = t->next;
    free(t->type);
    free(t);
  }
  pthread_mutex_destroy(&st->mu);
  pthread_cond_destroy(&st->cv);
  free(st->callback_url);
  free(st->tag);
  free(st);
}

/* ------------------------------------------------------------------------ */
/* Listeners (on the thread driving the source)                             */
/* ------------------------------------------------------------------------ */

static void report_event(stream_t *st, const eventsource_event_t *ev) {
  buf_t b = {0};
  const char *s;
  size_t n;

  buf_adds(&b, "{\"kind\":\"event\",\"event\":{\"type\":");
  s = eventsource_event_type(ev, &n);
  buf_add_json_string(&b, s, n);
  buf_adds(&b, ",\"data\":");
  s = eventsource_event_data(ev, &n);
  buf_add_json_string(&b, s, n);
  buf_adds(&b, ",\"id\":");
  s = eventsource_event_last_event_id(ev, &n);
  buf_add_json_string(&b, s, n);
  buf_adds(&b, "}}");
  stream_enqueue(st, &b);
}

static void report_error(stream_t *st, const eventsource_event_t *ev) {
  buf_t b = {0};
  char msg[1024];
  eventsource_error_t code = eventsource_event_error(ev);
  long status = eventsource_event_http_status(ev);

  if (eventsource_event_will_reconnect(ev))
    snprintf(msg, sizeof msg, "%s: %s (HTTP status %ld; reconnecting in %ld ms)",
             eventsource_error_name(code), eventsource_event_message(ev),
             status, eventsource_event_reconnect_ms(ev));
  else
    snprintf(msg, sizeof msg, "%s: %s (HTTP status %ld; not reconnecting)",
             eventsource_error_name(code), eventsource_event_message(ev),
             status);
  buf_adds(&b, "{\"kind\":\"error\",\"error\":");
  buf_add_json_string(&b, msg, strlen(msg));
  buf_adds(&b, "}");
  stream_enqueue(st, &b);
}

/* Multi driver: registered for "message" and for every type the suite says
 * to listen to. A listener for "open" or "error" also sees the connection's
 * own notifications; only server events are reported as events. */
static void on_event(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  (void)es;
  if (eventsource_event_kind(ev) == EVENTSOURCE_KIND_MESSAGE)
    report_event(ud, ev);
}

/* Multi driver: registered for "error", reports the connection's errors. */
static void on_error(eventsource_t *es, const eventsource_event_t *ev,
                     void *ud) {
  (void)es;
  if (eventsource_event_kind(ev) == EVENTSOURCE_KIND_ERROR)
    report_error(ud, ev);
}

static int listening_to(stream_t *st, const char *type) {
  listen_type_t *t;
  int found = 0;

  pthread_mutex_lock(&st->mu);
  for (t = st->types; t && !found; t = t->next)
    found = strcmp(t->type, type) == 0;
  pthread_mutex_unlock(&st->mu);
  return found;
}

/* Start driver: eventsource_add_listener() may only be called on the
 * source's own thread, so one any-listener filters server events by the set
 * of types listened to, which other threads may extend. */
static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  stream_t *st = ud;

  (void)es;
  switch (eventsource_event_kind(ev)) {
  case EVENTSOURCE_KIND_MESSAGE:
    if (listening_to(st, eventsource_event_type(ev, NULL)))
      report_event(st, ev);
    break;
  case EVENTSOURCE_KIND_ERROR:
    report_error(st, ev);
    break;
  default:
    break;
  }
}

static void on_comment(eventsource_t *es, const eventsource_event_t *ev,
                       void *ud) {
  stream_t *st = ud;
  buf_t b = {0};
  const char *s;
  size_t n;

  (void)es;
  if (eventsource_event_kind(ev) != EVENTSOURCE_KIND_COMMENT)
    return;
  buf_adds(&b, "{\"kind\":\"comment\",\"comment\":");
  s = eventsource_event_data(ev, &n);
  buf_add_json_string(&b, s, n);
  buf_adds(&b, "}");
  stream_enqueue(st, &b);
}

/* Starts listening to type unless already listening: with the multi
 * driver, adds an event listener (on the loop thread, or before the source
 * runs); with the start driver, adds the type to the filter. */
static eventsource_error_t stream_listen(stream_t *st, const char *type) {
  listen_type_t *t;
  eventsource_error_t err;

  if (listening_to(st, type))
    return EVENTSOURCE_OK;
  t = calloc(1, sizeof *t);
  if (!t || !(t->type = strdup(type))) {
    free(t);
    return EVENTSOURCE_ERR_NOMEM;
  }
  if (driver == DRIVER_MULTI) {
    err = eventsource_add_listener(st->es, type, on_event, st, NULL);
    if (err != EVENTSOURCE_OK) {
      free(t->type);
      free(t);
      return err;
    }
  }
  pthread_mutex_lock(&st->mu);
  t->next = st->types;
  st->types = t;
  pthread_mutex_unlock(&st->mu);
  return EVENTSOURCE_OK;
}

/* ------------------------------------------------------------------------ */
/* The loop thread and its commands                                         */
/* ------------------------------------------------------------------------ */

typedef enum cmd_kind { CMD_ADD, CMD_LISTEN, CMD_RESTART, CMD_CLOSE, CMD_QUIT } cmd_kind_t;

typedef struct cmd {
  struct cmd *next;
  cmd_kind_t kind;
  unsigned long id;  /* LISTEN, RESTART, CLOSE */
  stream_t *st;      /* ADD: the new stream; CLOSE, QUIT: the removed ones */
  const char *type;  /* LISTEN */
  int done;
  int status;        /* HTTP status to answer */
  char msg[256];     /* message for an error status */
} cmd_t;

static struct service {
  eventsource_multi_t *multi;
  pthread_t loop;
  pthread_mutex_t mu;
  pthread_cond_t done_cv;
  cmd_t *cmds, *cmds_tail;
  stream_t *streams; /* loop thread only (start driver: under mu) */
  unsigned long next_id;
  int quit_pipe[2];  /* written to when the service should exit */
} svc = {.mu = PTHREAD_MUTEX_INITIALIZER, .done_cv = PTHREAD_COND_INITIALIZER,
         .quit_pipe = {-1, -1}};

static int exec_cmd(cmd_t *c);

/* Runs c on the loop thread and waits until it is done (start driver: runs
 * it here, one command at a time). */
static void run_cmd(cmd_t *c) {
  eventsource_error_t err;

  pthread_mutex_lock(&svc.mu);
  if (driver == DRIVER_START) {
    exec_cmd(c);
    c->done = 1;
    pthread_mutex_unlock(&svc.mu);
    return;
  }
  c->next = NULL;
  c->done = 0;
  if (svc.cmds_tail)
    svc.cmds_tail->next = c;
  else
    svc.cmds = c;
  svc.cmds_tail = c;
  /* Still holding the lock: the loop thread cannot take the command (and,
   * for QUIT, free the multi handle) before the wakeup is made. */
  err = eventsource_multi_wakeup(svc.multi);
  if (err != EVENTSOURCE_OK)
    logf_("eventsource_multi_wakeup: %s", eventsource_strerror(err));
  while (!c->done)
    pthread_cond_wait(&svc.done_cv, &svc.mu);
  pthread_mutex_unlock(&svc.mu);
}

static stream_t **find_stream(unsigned long id) {
  stream_t **pp;

  for (pp = &svc.streams; *pp; pp = &(*pp)->next)
    if ((*pp)->id == id)
      return pp;
  return NULL;
}

static void set_status(cmd_t *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_status(cmd_t *c, int status, const char *fmt, ...) {
  va_list ap;

  c->status = status;
  va_start(ap, fmt);
  vsnprintf(c->msg, sizeof c->msg, fmt, ap);
  va_end(ap);
}

/* Executes one command on the loop thread (start driver: under svc.mu on
 * the HTTP thread). Returns 1 for QUIT. */
static int exec_cmd(cmd_t *c) {
  stream_t **pp, *st;
  eventsource_error_t err;

  switch (c->kind) {
  case CMD_ADD:
    st = c->st;
    if (driver == DRIVER_MULTI)
      err = eventsource_multi_add(svc.multi, st->es);
    else
      err = eventsource_start(st->es);
    if (err != EVENTSOURCE_OK) {
      set_status(c, 500, "%s: %s",
                 driver == DRIVER_MULTI ? "eventsource_multi_add" : "eventsource_start",
                 eventsource_strerror(err));
      return 0;
    }
    st->id = ++svc.next_id;
    st->next = svc.streams;
    svc.streams = st;
    set_status(c, 201, "created");
    return 0;
  case CMD_LISTEN:
  case CMD_RESTART:
  case CMD_CLOSE:
    pp = find_stream(c->id);
    if (!pp) {
      set_status(c, 404, "no stream %lu", c->id);
      return 0;
    }
    st = *pp;
    if (c->kind == CMD_LISTEN) {
      err = stream_listen(st, c->type);
      if (err != EVENTSOURCE_OK)
        set_status(c, err == EVENTSOURCE_ERR_INVALID_ARGUMENT ? 400 : 500,
                   "eventsource_add_listener: %s", eventsource_strerror(err));
      else
        set_status(c, 204, "listening");
    } else if (c->kind == CMD_RESTART) {
      err = eventsource_restart(st->es);
      if (err != EVENTSOURCE_OK)
        set_status(c, 409, "eventsource_restart: %s", eventsource_strerror(err));
      else
        set_status(c, 204, "restarted");
    } else {
      *pp = st->next;
      st->next = NULL;
      /* Multi driver, on the loop thread: removed from the multi and freed.
       * Start driver: closed, its thread joined, freed. */
      eventsource_free(st->es);
      st->es = NULL;
      c->st = st;
      set_status(c, 204, "closed");
    }
    return 0;
  case CMD_QUIT:
    c->st = NULL;
    while ((st = svc.streams)) {
      svc.streams = st->next;
      eventsource_free(st->es);
      st->es = NULL;
      st->next = c->st;
      c->st = st;
    }
    set_status(c, 204, "quit");
    return 1;
  }
  return 0;
}

static void *loop_main(void *arg) {
  int quit = 0, failures = 0;

  (void)arg;
  while (!quit) {
    eventsource_error_t err = eventsource_multi_poll(svc.multi, -1);

    if (err != EVENTSOURCE_OK) {
      /* Should not happen; do not spin if it keeps happening. */
      if (failures++ < 10)
        logf_("eventsource_multi_poll: %s", eventsource_strerror(err));
      poll(NULL, 0, 20);
    }
    for (;;) {
      cmd_t *c;

      pthread_mutex_lock(&svc.mu);
      c = svc.cmds;
      if (c) {
        svc.cmds = c->next;
        if (!svc.cmds)
          svc.cmds_tail = NULL;
      }
      pthread_mutex_unlock(&svc.mu);
      if (!c)
        break;
      if (exec_cmd(c))
        quit = 1;
      pthread_mutex_lock(&svc.mu);
      c->done = 1;
      pthread_cond_broadcast(&svc.done_cv);
      pthread_mutex_unlock(&svc.mu);
    }
  }
  eventsource_multi_free(svc.multi);
  svc.multi = NULL;
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Creating a stream from the suite's JSON                                  */
/* ------------------------------------------------------------------------ */

static int is_http_url(const char *s) {
  size_t i;

  if (strncasecmp(s, "http://", 7) != 0 && strncasecmp(s, "https://", 8) != 0)
    return 0;
  for (i = 0; s[i]; i++)
    if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
      return 0;
  return 1;
}

/* An optional string member: absent or null gives NULL. Returns -1 if it is
 * present with another type. */
static int opt_string(const cJSON *obj, const char *name, const char **out) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

  *out = NULL;
  if (!it || cJSON_IsNull(it))
    return 0;
  if (!cJSON_IsString(it) || !it->valuestring)
    return -1;
  *out = it->valuestring;
  return 0;
}

/* An optional non-negative integer member (milliseconds): absent or null
 * gives -1. Returns -1 for another type, a fraction or a negative number. */
static int opt_ms(const cJSON *obj, const char *name, long *out) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
  double d;

  *out = -1;
  if (!it || cJSON_IsNull(it))
    return 0;
  if (!cJSON_IsNumber(it))
    return -1;
  d = it->valuedouble;
  if (!(d >= 0 && d <= (double)INT32_MAX) || (double)(long)d != d)
    return -1;
  *out = (long)d;
  return 0;
}

#define BAD(...)                                                               \
  do {                                                                         \
    *status = 400;                                                             \
    snprintf(msg, msgsize, __VA_ARGS__);                                       \
    goto fail;                                                                 \
  } while (0)

#define ES_CHECK(call, what)                                                   \
  do {                                                                         \
    eventsource_error_t e_ = (call);                                           \
    if (e_ != EVENTSOURCE_OK) {                                                \
      *status = e_ == EVENTSOURCE_ERR_NOMEM ? 500 : 400;                       \
      snprintf(msg, msgsize, "%s: %s", what, eventsource_strerror(e_));        \
      goto fail;                                                               \
    }                                                                          \
  } while (0)

/* Parses the body of POST / and creates the stream (not yet added to the
 * loop). Returns NULL with *status and msg set on failure. */
static stream_t *stream_create(const char *body, size_t len, int *status,
                               char *msg, size_t msgsize) {
  cJSON *root = cJSON_ParseWithLength(body, len);
  const cJSON *it, *hdrs;
  const char *stream_url, *callback_url, *tag, *last_id, *method, *req_body;
  long initial_delay, read_timeout;
  stream_t *st = NULL;
  eventsource_t *es = NULL;

  if (!root || !cJSON_IsObject(root))
    BAD("the body is not a JSON object");
  it = cJSON_GetObjectItemCaseSensitive(root, "streamUrl");
  if (!cJSON_IsString(it) || !it->valuestring)
    BAD("streamUrl: missing or not a string");
  stream_url = it->valuestring;
  it = cJSON_GetObjectItemCaseSensitive(root, "callbackUrl");
  if (!cJSON_IsString(it) || !it->valuestring)
    BAD("callbackUrl: missing or not a string");
  callback_url = it->valuestring;
  if (!is_http_url(callback_url))
    BAD("callbackUrl: not an http URL");
  if (opt_string(root, "tag", &tag) < 0)
    BAD("tag: not a string");
  if (opt_string(root, "lastEventId", &last_id) < 0)
    BAD("lastEventId: not a string");
  if (opt_string(root, "method", &method) < 0)
    BAD("method: not a string");
  if (opt_string(root, "body", &req_body) < 0)
    BAD("body: not a string");
  if (opt_ms(root, "initialDelayMs", &initial_delay) < 0)
    BAD("initialDelayMs: not a non-negative integer");
  if (opt_ms(root, "readTimeoutMs", &read_timeout) < 0)
    BAD("readTimeoutMs: not a non-negative integer");
  hdrs = cJSON_GetObjectItemCaseSensitive(root, "headers");
  if (hdrs && !cJSON_IsNull(hdrs) && !cJSON_IsObject(hdrs))
    BAD("headers: not an object");
  if (cJSON_IsObject(hdrs)) {
    for (it = hdrs->child; it; it = it->next)
      if (!it->string || !cJSON_IsString(it) || !it->valuestring)
        BAD("headers: the value of %s is not a string",
            it->string ? it->string : "?");
  }

  ES_CHECK(eventsource_new(&es, stream_url), "streamUrl");
  if (initial_delay >= 0) {
    /* The delay asked for, exactly: no jitter, and a cap no lower. */
    ES_CHECK(eventsource_set_retry(es, initial_delay), "initialDelayMs");
    ES_CHECK(eventsource_set_jitter(es, 0), "initialDelayMs");
    if (initial_delay > EVENTSOURCE_DEFAULT_MAX_RETRY_MS)
      ES_CHECK(eventsource_set_max_retry(es, initial_delay), "initialDelayMs");
  }
  if (read_timeout >= 0)
    ES_CHECK(eventsource_set_read_timeout(es, read_timeout), "readTimeoutMs");
  if (last_id && *last_id)
    ES_CHECK(eventsource_set_last_event_id(es, last_id), "lastEventId");
  if (method && *method)
    ES_CHECK(eventsource_set_method(es, method), "method");
  if (req_body)
    ES_CHECK(eventsource_set_body(es, req_body, strlen(req_body)), "body");
  if (cJSON_IsObject(hdrs)) {
    for (it = hdrs->child; it; it = it->next)
      ES_CHECK(eventsource_set_header(es, it->string, it->valuestring),
               "headers");
  }

  st = stream_alloc(callback_url, tag);
  if (!st) {
    *status = 500;
    snprintf(msg, msgsize, "out of memory");
    goto fail;
  }
  st->es = es;
  eventsource_set_userdata(es, st);
  ES_CHECK(stream_listen(st, "message"), "eventsource_add_listener");
  if (driver == DRIVER_MULTI)
    ES_CHECK(eventsource_add_listener(es, "error", on_error, st, NULL),
             "eventsource_add_listener");
  else
    ES_CHECK(eventsource_add_any_listener(es, on_any, st, NULL),
             "eventsource_add_any_listener");
  ES_CHECK(eventsource_add_comment_listener(es, on_comment, st, NULL),
           "eventsource_add_comment_listener");
  if (pthread_create(&st->sender, NULL, sender_main, st) != 0) {
    *status = 500;
    snprintf(msg, msgsize, "cannot create the sender thread");
    goto fail;
  }
  st->sender_started = 1;
  cJSON_Delete(root);
  return st;

fail:
  if (st) {
    st->es = NULL;
    stream_destroy(st);
  }
  eventsource_free(es);
  cJSON_Delete(root);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct request {
  buf_t body;
  int too_large;
  int quit_when_done; /* DELETE /: exit once the answer is sent */
} request_t;

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               const char *content_type, const char *body,
                               const char *location) {
  struct MHD_Response *r;
  enum MHD_Result ret;
  size_t len = body ? strlen(body) : 0;

  r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)(body ? body : ""),
                                      MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  if (content_type && len)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (location)
    MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
  ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status,
                                    const char *text) {
  char line[320];

  snprintf(line, sizeof line, "%s\n", text);
  return respond(conn, status, "text/plain; charset=utf-8", line, NULL);
}

static enum MHD_Result handle_status(struct MHD_Connection *conn) {
  buf_t b = {0};
  size_t i;
  enum MHD_Result ret;

  buf_adds(&b, "{\"capabilities\":[");
  for (i = 0; i < sizeof capabilities / sizeof capabilities[0]; i++) {
    if (i)
      buf_adds(&b, ",");
    buf_add_json_string(&b, capabilities[i], strlen(capabilities[i]));
  }
  buf_adds(&b, "],\"name\":\"" SERVICE_NAME "\",\"clientVersion\":");
  buf_add_json_string(&b, eventsource_version(), strlen(eventsource_version()));
  buf_adds(&b, "}");
  if (b.failed) {
    free(b.p);
    return respond_text(conn, 500, "out of memory");
  }
  ret = respond(conn, 200, "application/json", b.p, NULL);
  free(b.p);
  return ret;
}

static enum MHD_Result handle_create(struct MHD_Connection *conn,
                                     request_t *req) {
  char msg[256], location[64];
  int status = 500;
  stream_t *st;
  cmd_t c;

  st = stream_create(req->body.p ? req->body.p : "", req->body.len, &status,
                     msg, sizeof msg);
  if (!st) {
    VLOG("POST / -> %d %s", status, msg);
    return respond_text(conn, (unsigned)status, msg);
  }
  memset(&c, 0, sizeof c);
  c.kind = CMD_ADD;
  c.st = st;
  run_cmd(&c);
  if (c.status != 201) {
    eventsource_free(st->es);
    st->es = NULL;
    stream_destroy(st);
    logf_("POST / -> %d %s", c.status, c.msg);
    return respond_text(conn, (unsigned)c.status, c.msg);
  }
  snprintf(location, sizeof location, "/streams/%lu", st->id);
  VLOG("[%s] created %s for %s", st->tag, location, eventsource_url(st->es));
  return respond(conn, 201, NULL, NULL, location);
}

/* "/streams/N" -> N; 0 if url is not of that form. */
static unsigned long stream_id_of(const char *url) {
  const char *p;
  char *end;
  unsigned long id;

  if (strncmp(url, "/streams/", 9) != 0)
    return 0;
  p = url + 9;
  if (*p < '1' || *p > '9')
    return 0;
  errno = 0;
  id = strtoul(p, &end, 10);
  if (errno || *end != '\0')
    return 0;
  return id;
}

static enum MHD_Result handle_command(struct MHD_Connection *conn,
                                      unsigned long id, request_t *req) {
  cJSON *root = cJSON_ParseWithLength(req->body.p ? req->body.p : "",
                                      req->body.len);
  const cJSON *command, *listen, *type;
  cmd_t c;
  enum MHD_Result ret;

  memset(&c, 0, sizeof c);
  c.id = id;
  if (!root || !cJSON_IsObject(root)) {
    ret = respond_text(conn, 400, "the body is not a JSON object");
    goto out;
  }
  command = cJSON_GetObjectItemCaseSensitive(root, "command");
  if (!cJSON_IsString(command) || !command->valuestring) {
    ret = respond_text(conn, 400, "command: missing or not a string");
    goto out;
  }
  if (strcmp(command->valuestring, "restart") == 0) {
    c.kind = CMD_RESTART;
  } else if (strcmp(command->valuestring, "listen") == 0) {
    /* The suite's Go struct has no JSON tag on this field, so it sends
     * "Listen"; match the member name case-insensitively. */
    listen = cJSON_GetObjectItem(root, "listen");
    type = cJSON_IsObject(listen) ? cJSON_GetObjectItem(listen, "type") : NULL;
    if (!cJSON_IsString(type) || !type->valuestring || !*type->valuestring) {
      ret = respond_text(conn, 400, "listen: missing type");
      goto out;
    }
    c.kind = CMD_LISTEN;
    c.type = type->valuestring;
  } else {
    char msg[200];

    snprintf(msg, sizeof msg, "unknown command \"%.64s\"", command->valuestring);
    ret = respond_text(conn, 400, msg);
    goto out;
  }
  run_cmd(&c);
  VLOG("POST /streams/%lu %s -> %d %s", id, command->valuestring, c.status,
       c.msg);
  if (c.status == 204)
    ret = respond(conn, 204, NULL, NULL, NULL);
  else
    ret = respond_text(conn, (unsigned)c.status, c.msg);
out:
  cJSON_Delete(root);
  return ret;
}

static enum MHD_Result handle_close(struct MHD_Connection *conn,
                                    unsigned long id) {
  cmd_t c;

  memset(&c, 0, sizeof c);
  c.kind = CMD_CLOSE;
  c.id = id;
  run_cmd(&c);
  VLOG("DELETE /streams/%lu -> %d %s", id, c.status, c.msg);
  if (c.status != 204)
    return respond_text(conn, (unsigned)c.status, c.msg);
  stream_destroy(c.st);
  return respond(conn, 204, NULL, NULL, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  request_t *req = *con_cls;
  unsigned long id;

  (void)cls;
  (void)version;
  if (!req) {
    req = calloc(1, sizeof *req);
    if (!req)
      return MHD_NO;
    *con_cls = req;
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (req->body.len + *upload_data_size > MAX_REQUEST_BODY)
      req->too_large = 1;
    else
      buf_add(&req->body, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  VLOG("%s %s", method, url);
  if (req->too_large || req->body.failed)
    return respond_text(conn, 413, "request body too large");

  if (strcmp(url, "/") == 0) {
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
      return handle_status(conn);
    if (strcmp(method, "POST") == 0)
      return handle_create(conn, req);
    if (strcmp(method, "DELETE") == 0) {
      req->quit_when_done = 1;
      return respond(conn, 204, NULL, NULL, NULL);
    }
    return respond_text(conn, 405, "method not allowed");
  }
  id = stream_id_of(url);
  if (!id)
    return respond_text(conn, 404, "not found");
  if (strcmp(method, "POST") == 0)
    return handle_command(conn, id, req);
  if (strcmp(method, "DELETE") == 0)
    return handle_close(conn, id);
  return respond_text(conn, 405, "method not allowed");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  request_t *req = *con_cls;

  (void)cls;
  (void)conn;
  (void)toe;
  if (!req)
    return;
  if (req->quit_when_done) {
    VLOG("DELETE / answered: exiting");
    if (write(svc.quit_pipe[1], "q", 1) < 0) {
      /* nothing to do: the pipe is never full with one byte */
    }
  }
  free(req->body.p);
  free(req);
  *con_cls = NULL;
}

static void on_signal(int sig) {
  int saved = errno;

  (void)sig;
  if (write(svc.quit_pipe[1], "s", 1) < 0) {
    /* ignore */
  }
  errno = saved;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  char line[1024];

  (void)cls;
  vsnprintf(line, sizeof line, fmt, ap);
  line[strcspn(line, "\n")] = '\0';
  logf_("libmicrohttpd: %s", line);
}

static void usage(FILE *f) {
  fprintf(f, "usage: sse-test-service [--port N] [--ready-fd FD] [--driver D] [-v]\n"
             "  --port N      listen on 127.0.0.1:N (default %d; 0: any free port)\n"
             "  --driver D    multi (default): every source in one multi handle\n"
             "                driven by one thread; start: eventsource_start(),\n"
             "                a thread per source\n"
             "  --ready-fd FD write the port and a newline to FD, then close it,\n"
             "                once requests are accepted\n"
             "  -v            log requests and callbacks to stderr\n",
          DEFAULT_PORT);
}

static int parse_int(const char *s, long lo, long hi, long *out) {
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  long port = DEFAULT_PORT, ready_fd = -1;
  struct sockaddr_in addr;
  struct MHD_Daemon *d;
  const union MHD_DaemonInfo *info;
  unsigned bound_port;
  struct sigaction sa;
  eventsource_error_t err;
  cmd_t quit;
  stream_t *st;
  char ch;
  int i;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      if (parse_int(argv[++i], 0, 65535, &port) < 0) {
        fprintf(stderr, "sse-test-service: bad port %s\n", argv[i]);
        return 2;
      }
    } else if (strcmp(argv[i], "--ready-fd") == 0 && i + 1 < argc) {
      if (parse_int(argv[++i], 0, INT_MAX, &ready_fd) < 0) {
        fprintf(stderr, "sse-test-service: bad descriptor %s\n", argv[i]);
        return 2;
      }
    } else if (strcmp(argv[i], "--driver") == 0 && i + 1 < argc) {
      i++;
      if (strcmp(argv[i], "multi") == 0)
        driver = DRIVER_MULTI;
      else if (strcmp(argv[i], "start") == 0)
        driver = DRIVER_START;
      else {
        fprintf(stderr, "sse-test-service: unknown driver %s\n", argv[i]);
        return 2;
      }
    } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
      verbose = 1;
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }

  if (pipe2(svc.quit_pipe, O_CLOEXEC) != 0) {
    perror("sse-test-service: pipe");
    return 1;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "sse-test-service: curl_global_init failed\n");
    return 1;
  }
  if (driver == DRIVER_MULTI) {
    err = eventsource_multi_new(&svc.multi);
    if (err != EVENTSOURCE_OK) {
      fprintf(stderr, "sse-test-service: eventsource_multi_new: %s\n",
              eventsource_strerror(err));
      return 1;
    }
    if (pthread_create(&svc.loop, NULL, loop_main, NULL) != 0) {
      fprintf(stderr, "sse-test-service: cannot create the loop thread\n");
      return 1;
    }
  }

  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
                           MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG,
                       (uint16_t)port, NULL, NULL, on_request, NULL,
                       MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                       MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                       MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                       MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "sse-test-service: cannot listen on 127.0.0.1:%ld\n", port);
    return 1;
  }
  info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  bound_port = info ? info->port : (unsigned)port;
  if (ready_fd >= 0) {
    dprintf((int)ready_fd, "%u\n", bound_port);
    close((int)ready_fd);
  }
  VLOG("listening on 127.0.0.1:%u (libeventsource %s, %s driver)", bound_port,
       eventsource_version(), driver == DRIVER_MULTI ? "multi" : "start");

  /* Wait for DELETE / or a signal. */
  for (;;) {
    ssize_t n = read(svc.quit_pipe[0], &ch, 1);

    if (n == 1 || (n < 0 && errno != EINTR))
      break;
  }

  MHD_stop_daemon(d);
  memset(&quit, 0, sizeof quit);
  quit.kind = CMD_QUIT;
  run_cmd(&quit);
  if (driver == DRIVER_MULTI)
    pthread_join(svc.loop, NULL);
  while ((st = quit.st)) {
    quit.st = st->next;
    stream_destroy(st);
  }
  close(svc.quit_pipe[0]);
  close(svc.quit_pipe[1]);
  curl_global_cleanup();
  VLOG("exiting");
  return 0;
}
