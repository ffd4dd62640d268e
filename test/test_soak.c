/*
 * test_soak.c - the resume soak: a source reconnects again and again to a
 * server that drops every connection in the middle of an event, and must
 * still see every event exactly once, in order, with exactly its data.
 *
 * The server (test/support/sse_server.c in handler mode) numbers events
 * 1, 2, 3, ... and resumes at N + 1 when the request carries
 * Last-Event-ID: N. Event N's type and data lines are a function of N alone
 * (expect_event()): several data lines, empty ones, leading spaces, colons,
 * multi-byte UTF-8, now and then a long line. How they are written is drawn
 * per connection from the seed: line ends (LF, CRLF or CR for the whole
 * connection), a BOM, chunked transfer encoding or not (random chunk sizes),
 * the field order (id: first or last), "data:" with or without its space,
 * comments, the size of every send(). Each connection sends at least one
 * whole event, then part of the next one and drops the connection, with a
 * FIN or a RST, at a byte chosen among: inside a line's value, inside a
 * field name, between the CR and the LF of a line (CRLF), inside a
 * multi-byte UTF-8 character, right before the blank line that would have
 * dispatched the event.
 *
 * The client is the library's public API only: eventsource_run() on the test
 * thread, retry 0 and no jitter (so each reconnection waits
 * EVENTSOURCE_MIN_RECONNECT_MS), one listener for everything. It counts the
 * reconnections from the error notifications that will reconnect and closes
 * the source after the target.
 *
 *   ES_SOAK_RECONNECTS   the target (100; 20 with ES_TEST_SCALE=small;
 *                        `make soak`: 1000)
 *   ES_SOAK_SEED         the seed (printed; set it to replay a run)
 *   ES_SOAK_TIMEOUT      the test's timeout in seconds (default from the
 *                        target)
 *   ES_SOAK_VERBOSE=1    also prints the details (cuts, RST/FIN, chunked,
 *                        connections without an event, slow reconnections)
 *
 * Output: one line "soak: events=N lost=0 dup=0 reordered=0 reconnects=N
 * seconds=S", after a line "test_soak: seed ..." with the seed and the
 * target.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventsource.h"
#include "support/sse_server.h"
#include "support/ts_util.h"

#define DEFAULT_SEED 20260110ULL

/* ------------------------------------------------------------------------ */
/* Random numbers and growing buffers                                       */
/* ------------------------------------------------------------------------ */

static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
  r->s += 0x9e3779b97f4a7c15ULL;
  return mix64(r->s);
}

/* Uniform in [0, n). */
static unsigned rng_below(rng *r, unsigned n) {
  return n ? (unsigned)(rng_next(r) % n) : 0;
}

static int rng_chance(rng *r, unsigned one_in) { return rng_below(r, one_in) == 0; }

typedef struct sbuf {
  char *p;
  size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->p = realloc(b->p, b->cap);
    ck_assert_ptr_nonnull(b->p);
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_adds(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  ck_assert(n >= 0 && (size_t)n < sizeof tmp);
  sb_add(b, tmp, (size_t)n);
}

/* ------------------------------------------------------------------------ */
/* Event N                                                                  */
/* ------------------------------------------------------------------------ */

/* Pieces of data lines: 2-, 3- and 4-byte UTF-8, colons, JSON. */
static const char *const WORDS[] = {
    "caf\xc3\xa9",                  /* café */
    "\xe2\x82\xac" "42",            /* €42 */
    "\xf0\x9f\x98\x80",             /* 😀 */
    "na\xc3\xafve",                 /* naïve */
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", /* 日本語 */
    "plain",
    "colon: inside",
    "{\"k\": [1, 2]}",
    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", /* Привет */
};
#define NWORDS (sizeof WORDS / sizeof WORDS[0])

#define MAX_LINES 6

/* Event n: its type (NULL for "message") and data lines, a function of n
 * alone. Each line is a malloc'd string without CR or LF. */
typedef struct expect {
  const char *type;
  int nlines;
  char *line[MAX_LINES];
} expect;

static void expect_event(uint64_t n, expect *e) {
  uint64_t h = mix64(n * 0x100000001b3ULL);
  memset(e, 0, sizeof *e);
  e->type = n % 7 == 3 ? "tick" : NULL;
  e->nlines = 1 + (int)(h % 4);
  for (int j = 0; j < e->nlines; j++) {
    uint64_t hj = mix64(h + (uint64_t)j);
    sbuf b = {0};
    if (j == 0) {
      /* Every event names itself and has a multi-byte character. */
      sb_printf(&b, "n=%" PRIu64 " \xe2\x82\xac", n);
    } else if (hj % 9 == 0) {
      sb_adds(&b, ""); /* an empty data line */
    } else {
      if (hj % 5 == 0)
        sb_adds(&b, " lead"); /* kept: only one space follows "data:" */
      int words = 1 + (int)((hj >> 8) % 5);
      for (int w = 0; w < words; w++) {
        if (w > 0 || b.len > 0)
          sb_adds(&b, " ");
        sb_adds(&b, WORDS[(hj >> (16 + 4 * w)) % NWORDS]);
      }
    }
    if (j == 1 && n % 97 == 0) /* now and then a long line */
      for (int k = 0; k < 400; k++)
        sb_adds(&b, " \xc3\xa9t\xc3\xa9");
    if (!b.p)
      sb_adds(&b, "");
    e->line[j] = b.p;
  }
}

static void expect_free(expect *e) {
  for (int j = 0; j < e->nlines; j++)
    free(e->line[j]);
}

/* The data the listener must see: the lines joined with LF. */
static char *expect_data(const expect *e, size_t *len) {
  sbuf b = {0};
  for (int j = 0; j < e->nlines; j++) {
    if (j > 0)
      sb_adds(&b, "\n");
    sb_adds(&b, e->line[j]);
  }
  *len = b.len;
  return b.p;
}

/* ------------------------------------------------------------------------ */
/* The server                                                               */
/* ------------------------------------------------------------------------ */

enum cut_kind {
  CUT_MID_LINE,    /* inside a field's value */
  CUT_MID_NAME,    /* inside a field name */
  CUT_CR_LF,       /* between CR and LF (CRLF connections) */
  CUT_UTF8,        /* inside a multi-byte character */
  CUT_BEFORE_BLANK, /* every field line sent, not the blank line */
  NCUTS
};

typedef struct cuts {
  size_t *at[NCUTS];
  size_t n[NCUTS], cap[NCUTS];
} cuts;

static void cut_add(cuts *c, enum cut_kind k, size_t off) {
  if (c->n[k] == c->cap[k]) {
    c->cap[k] = c->cap[k] ? c->cap[k] * 2 : 16;
    c->at[k] = realloc(c->at[k], c->cap[k] * sizeof *c->at[k]);
    ck_assert_ptr_nonnull(c->at[k]);
  }
  c->at[k][c->n[k]++] = off;
}

static void cuts_free(cuts *c) {
  for (int k = 0; k < NCUTS; k++)
    free(c->at[k]);
}

/* One field line "name" + sep + value + le into b; the cut points inside
 * it go into c (offsets in b) when c is not NULL. */
static void field_line(sbuf *b, cuts *c, const char *name, const char *sep,
                       const char *value, const char *le) {
  size_t start = b->len;
  sb_adds(b, name);
  size_t name_end = b->len;
  sb_adds(b, sep);
  size_t value_start = b->len;
  sb_adds(b, value);
  size_t value_end = b->len;
  sb_adds(b, le);
  if (!c)
    return;
  for (size_t k = start + 1; k < name_end; k++)
    cut_add(c, CUT_MID_NAME, k);
  for (size_t k = value_start + 1; k < value_end; k++) {
    if (((unsigned char)b->p[k] & 0xc0) == 0x80)
      cut_add(c, CUT_UTF8, k);
    else
      cut_add(c, CUT_MID_LINE, k);
  }
  if (strcmp(le, "\r\n") == 0)
    cut_add(c, CUT_CR_LF, value_end + 1);
}

/* Event n as one connection writes it (r: that connection's choices), with
 * its cut points when c is not NULL. */
static void write_event(sbuf *b, cuts *c, rng *r, uint64_t n, const char *le) {
  expect e;
  expect_event(n, &e);
  char id[32];
  snprintf(id, sizeof id, "%" PRIu64, n);
  int id_first = rng_chance(r, 2);
  if (rng_chance(r, 6))
    field_line(b, c, "", ":", " keep-alive", le); /* a comment */
  if (id_first)
    field_line(b, c, "id", rng_chance(r, 2) ? ": " : ":", id, le);
  if (e.type)
    field_line(b, c, "event", ": ", e.type, le);
  else if (rng_chance(r, 8))
    field_line(b, c, "event", ":", "message", le);
  for (int j = 0; j < e.nlines; j++) {
    /* "data:" + value is the same only when value does not start with a
     * space. */
    int tight = e.line[j][0] != ' ' && rng_chance(r, 3);
    field_line(b, c, "data", tight ? ":" : ": ", e.line[j], le);
  }
  if (!id_first)
    field_line(b, c, "id", ": ", id, le);
  if (c)
    cut_add(c, CUT_BEFORE_BLANK, b->len);
  sb_adds(b, le);
  expect_free(&e);
}

typedef struct soak_server {
  uint64_t seed;
  pthread_mutex_t mu;
  uint64_t conns;       /* handler calls so far */
  int bad_requests;     /* a Last-Event-ID the server could not resume from */
  char bad_detail[256];
  uint64_t cut_counts[NCUTS], rsts, fins, chunked;
} soak_server;

static void bad_request(soak_server *sv, const char *what, const char *value) {
  pthread_mutex_lock(&sv->mu);
  if (sv->bad_requests++ == 0)
    snprintf(sv->bad_detail, sizeof sv->bad_detail, "%s%s", what, value);
  pthread_mutex_unlock(&sv->mu);
}

/* The wire bytes of body: as is, or in chunks of random sizes; a chunked
 * stream is never terminated, and its last chunk may announce more bytes
 * than are sent. */
static void frame(sbuf *wire, rng *r, const sbuf *body, int chunked) {
  if (!chunked) {
    sb_add(wire, body->p, body->len);
    return;
  }
  size_t pos = 0;
  int cut_mid_chunk = rng_chance(r, 2);
  while (pos < body->len) {
    size_t size = rng_chance(r, 4) ? 1 + rng_below(r, 3) : 1 + rng_below(r, 400);
    if (pos + size >= body->len) {
      size_t rest = body->len - pos;
      sb_printf(wire, "%zx\r\n", cut_mid_chunk ? rest + 1 + rng_below(r, 64) : rest);
      sb_add(wire, body->p + pos, rest);
      if (!cut_mid_chunk)
        sb_adds(wire, "\r\n");
      return;
    }
    sb_printf(wire, "%zx%s\r\n", size, rng_chance(r, 10) ? ";ext=1" : "");
    sb_add(wire, body->p + pos, size);
    sb_adds(wire, "\r\n");
    pos += size;
  }
}

static void soak_handler(ts_conn *c, const ts_request *req, void *ud) {
  soak_server *sv = ud;
  uint64_t first = 1;
  char lei[128];
  if (ts_request_header(req, "Last-Event-ID", lei, sizeof lei)) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(lei, &end, 10);
    if (end == lei || *end || errno)
      bad_request(sv, "Last-Event-ID: ", lei);
    else
      first = (uint64_t)v + 1;
  }
  pthread_mutex_lock(&sv->mu);
  uint64_t index = sv->conns++;
  pthread_mutex_unlock(&sv->mu);
  if (index > 0 && first == 1)
    bad_request(sv, "a reconnection without Last-Event-ID", "");

  rng r = {mix64(sv->seed ^ mix64(index))};
  static const char *const ENDS[] = {"\n", "\r\n", "\r"};
  const char *le = ENDS[rng_below(&r, 3)];
  int chunked = rng_chance(&r, 2);
  int rst = rng_chance(&r, 2);
  unsigned whole = 1 + rng_below(&r, 6);

  sbuf head = {0};
  sb_adds(&head, "HTTP/1.1 200 OK\r\n");
  sb_adds(&head, rng_chance(&r, 3) ? "Content-Type: text/event-stream; charset=utf-8\r\n"
                                   : "Content-Type: text/event-stream\r\n");
  sb_adds(&head, "Cache-Control: no-cache\r\n");
  sb_adds(&head, chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
  sb_adds(&head, "\r\n");

  /* The whole events, then the one that is cut. */
  sbuf body = {0};
  if (rng_chance(&r, 8))
    sb_adds(&body, "\xef\xbb\xbf"); /* a BOM, stripped by the parser */
  for (unsigned i = 0; i < whole; i++)
    write_event(&body, NULL, &r, first + i, le);
  size_t cut_base = body.len;
  sbuf last = {0};
  cuts cp;
  memset(&cp, 0, sizeof cp);
  write_event(&last, &cp, &r, first + whole, le);
  enum cut_kind kinds[NCUTS];
  unsigned nk = 0;
  for (int k = 0; k < NCUTS; k++)
    if (cp.n[k] > 0)
      kinds[nk++] = (enum cut_kind)k;
  ck_assert_uint_gt(nk, 0);
  enum cut_kind kind = kinds[rng_below(&r, nk)];
  size_t cut = cp.at[kind][rng_below(&r, (unsigned)cp.n[kind])];
  sb_add(&body, last.p, cut);
  ck_assert_uint_gt(body.len, cut_base);

  sbuf wire = {0};
  sb_add(&wire, head.p, head.len);
  frame(&wire, &r, &body, chunked);

  /* Sends of random sizes (each one send()), now and then a pause so that
   * the client's reads end at those points. */
  size_t pos = 0;
  int ok = 1;
  while (ok && pos < wire.len) {
    size_t n;
    switch (rng_below(&r, 4)) {
    case 0: n = 1 + rng_below(&r, 3); break;
    case 1: n = wire.len - pos; break;
    default: n = 1 + rng_below(&r, 700); break;
    }
    if (n > wire.len - pos)
      n = wire.len - pos;
    ok = ts_conn_write(c, wire.p + pos, n) == 0;
    pos += n;
    if (rng_chance(&r, 16)) {
      struct timespec ts = {0, 300 * 1000L};
      nanosleep(&ts, NULL);
    }
  }
  ts_conn_close(c, rst);

  pthread_mutex_lock(&sv->mu);
  sv->cut_counts[kind]++;
  if (rst)
    sv->rsts++;
  else
    sv->fins++;
  if (chunked)
    sv->chunked++;
  pthread_mutex_unlock(&sv->mu);

  cuts_free(&cp);
  free(head.p);
  free(body.p);
  free(last.p);
  free(wire.p);
}

/* ------------------------------------------------------------------------ */
/* The client                                                               */
/* ------------------------------------------------------------------------ */

typedef struct soak_client {
  int target;
  /* ids seen: seen[i] for id i (1-based) */
  unsigned char *seen;
  size_t seen_cap;
  uint64_t max_id, events, dup, reordered, distinct;
  uint64_t bad_data, bad_id;
  char bad_detail[512];
  int reconnects, opens, empty_conns, fatal;
  long slow_reconnects; /* reconnect_ms other than the floor */
  int conn_events;
  char fatal_detail[256];
} soak_client;

static void client_bad(soak_client *cl, uint64_t n, const char *what,
                       const char *got) {
  if (cl->bad_detail[0] == '\0')
    snprintf(cl->bad_detail, sizeof cl->bad_detail, "event %" PRIu64 ": %s \"%s\"",
             n, what, got);
}

static void on_message(soak_client *cl, const eventsource_event_t *ev) {
  size_t idlen;
  const char *ids = eventsource_event_last_event_id(ev, &idlen);
  char *end;
  errno = 0;
  unsigned long long v = strtoull(ids, &end, 10);
  cl->events++;
  cl->conn_events++;
  if (idlen == 0 || end != ids + idlen || errno || v == 0 || v > (1ULL << 30)) {
    cl->bad_id++;
    client_bad(cl, cl->events, "id", ids);
    return;
  }
  uint64_t id = v;
  if (id >= cl->seen_cap) {
    size_t cap = (size_t)id * 2 + 1024;
    cl->seen = realloc(cl->seen, cap);
    ck_assert_ptr_nonnull(cl->seen);
    memset(cl->seen + cl->seen_cap, 0, cap - cl->seen_cap);
    cl->seen_cap = cap;
  }
  if (cl->seen[id]) {
    cl->dup++;
  } else {
    if (id < cl->max_id)
      cl->reordered++;
    cl->seen[id] = 1;
    cl->distinct++;
  }
  if (id > cl->max_id)
    cl->max_id = id;

  expect e;
  expect_event(id, &e);
  size_t want_len, got_len, type_len;
  char *want = expect_data(&e, &want_len);
  const char *got = eventsource_event_data(ev, &got_len);
  const char *type = eventsource_event_type(ev, &type_len);
  const char *want_type = e.type ? e.type : "message";
  if (got_len != want_len || memcmp(got, want, want_len) != 0) {
    cl->bad_data++;
    client_bad(cl, id, "data", got);
  } else if (strcmp(type, want_type) != 0) {
    cl->bad_data++;
    client_bad(cl, id, "type", type);
  }
  free(want);
  expect_free(&e);
}

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  soak_client *cl = ud;
  switch (eventsource_event_kind(ev)) {
  case EVENTSOURCE_KIND_OPEN:
    cl->opens++;
    cl->conn_events = 0;
    break;
  case EVENTSOURCE_KIND_MESSAGE:
    on_message(cl, ev);
    break;
  case EVENTSOURCE_KIND_ERROR:
    if (!eventsource_event_will_reconnect(ev)) {
      if (cl->fatal++ == 0)
        snprintf(cl->fatal_detail, sizeof cl->fatal_detail, "%s: %s",
                 eventsource_error_name(eventsource_event_error(ev)),
                 eventsource_event_message(ev));
      eventsource_close(es);
      break;
    }
    cl->reconnects++;
    if (cl->conn_events == 0)
      cl->empty_conns++;
    cl->conn_events = 0;
    if (eventsource_event_reconnect_ms(ev) != EVENTSOURCE_MIN_RECONNECT_MS)
      cl->slow_reconnects++;
    if (cl->reconnects >= cl->target)
      eventsource_close(es);
    break;
  case EVENTSOURCE_KIND_COMMENT:
    break;
  }
}

/* ------------------------------------------------------------------------ */
/* The test                                                                 */
/* ------------------------------------------------------------------------ */

static long env_long(const char *name, long dflt, long min, long max) {
  const char *s = getenv(name);
  if (!s || !*s)
    return dflt;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 0);
  if (*end || errno || v < min || v > max) {
    fprintf(stderr, "test_soak: %s=%s is not a number in [%ld, %ld]; using %ld\n",
            name, s, min, max, dflt);
    return dflt;
  }
  return v;
}

static int soak_target(void) {
  return (int)env_long("ES_SOAK_RECONNECTS", ts_small_scale() ? 20 : 100, 1,
                       1000000);
}

static uint64_t soak_seed(void) {
  const char *s = getenv("ES_SOAK_SEED");
  if (!s || !*s)
    return DEFAULT_SEED;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (*end || errno) {
    fprintf(stderr, "test_soak: ES_SOAK_SEED=%s is not a number; using %llu\n", s,
            (unsigned long long)DEFAULT_SEED);
    return DEFAULT_SEED;
  }
  return (uint64_t)v;
}

START_TEST(test_resume_soak) {
  soak_server sv;
  memset(&sv, 0, sizeof sv);
  sv.seed = soak_seed();
  pthread_mutex_init(&sv.mu, NULL);
  soak_client cl;
  memset(&cl, 0, sizeof cl);
  cl.target = soak_target();
  printf("test_soak: seed %" PRIu64 ", target %d reconnections "
         "(replay: ES_SOAK_SEED=%" PRIu64 " ES_SOAK_RECONNECTS=%d)\n",
         sv.seed, cl.target, sv.seed, cl.target);
  fflush(stdout);

  ts_server *s = ts_start_server();
  ts_server_set_handler(s, soak_handler, &sv);
  eventsource_t *es;
  ck_assert_int_eq(eventsource_new(&es, ts_server_url(s, "/soak")), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_jitter(es, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_any_listener(es, on_any, &cl, NULL),
                   EVENTSOURCE_OK);

  long t0 = ts_now_ms();
  eventsource_error_t rc = eventsource_run(es);
  double seconds = (double)(ts_now_ms() - t0) / 1000.0;
  eventsource_free(es);
  ts_server_stop(s);

  uint64_t lost = cl.max_id - cl.distinct;
  printf("soak: events=%" PRIu64 " lost=%" PRIu64 " dup=%" PRIu64
         " reordered=%" PRIu64 " reconnects=%d seconds=%.1f\n",
         cl.events, lost, cl.dup, cl.reordered, cl.reconnects, seconds);
  fflush(stdout);

  char detail[2048];
  snprintf(detail, sizeof detail,
           "seed %" PRIu64 ": run %s, opens %d, fatal %d (%s), bad ids %" PRIu64
           ", bad data %" PRIu64 " (%s), server: %d bad requests (%s), "
           "%" PRIu64 " connections (%" PRIu64 " RST, %" PRIu64 " FIN, %" PRIu64
           " chunked; cuts mid-line %" PRIu64 ", mid-name %" PRIu64
           ", CR|LF %" PRIu64 ", UTF-8 %" PRIu64 ", before blank %" PRIu64
           "), empty connections %d, reconnect delays off the floor %ld",
           sv.seed, eventsource_error_name(rc), cl.opens, cl.fatal, cl.fatal_detail,
           cl.bad_id, cl.bad_data, cl.bad_detail, sv.bad_requests, sv.bad_detail,
           sv.conns, sv.rsts, sv.fins, sv.chunked, sv.cut_counts[CUT_MID_LINE],
           sv.cut_counts[CUT_MID_NAME], sv.cut_counts[CUT_CR_LF],
           sv.cut_counts[CUT_UTF8], sv.cut_counts[CUT_BEFORE_BLANK],
           cl.empty_conns, cl.slow_reconnects);
  if (getenv("ES_SOAK_VERBOSE") && *getenv("ES_SOAK_VERBOSE"))
    printf("test_soak: %s\n", detail);
  ck_assert_msg(rc == EVENTSOURCE_OK, "%s", detail);
  ck_assert_msg(lost == 0 && cl.dup == 0 && cl.reordered == 0, "%s", detail);
  ck_assert_msg(cl.bad_id == 0 && cl.bad_data == 0, "%s", detail);
  ck_assert_msg(cl.fatal == 0 && sv.bad_requests == 0, "%s", detail);
  ck_assert_msg(cl.reconnects >= cl.target, "%s", detail);
  /* Every connection sends at least one whole event before its cut (a RST
   * drops only bytes still unsent: far less than a socket buffer is sent). */
  ck_assert_msg(cl.empty_conns == 0, "%s", detail);
  ck_assert_msg(cl.events > 0 && cl.max_id == cl.events, "%s", detail);
  free(cl.seen);
  pthread_mutex_destroy(&sv.mu);
}
END_TEST

static Suite *soak_suite(void) {
  Suite *su = suite_create("soak");
  TCase *tc = tcase_create("resume");
  /* About 0.1 s per reconnection (the library's floor), with room for
   * slow machines and sanitizers. */
  long dflt = 60 + (long)soak_target() / 2;
  tcase_set_timeout(tc, (double)env_long("ES_SOAK_TIMEOUT", dflt, 1, 86400));
  tcase_add_test(tc, test_resume_soak);
  suite_add_tcase(su, tc);
  return su;
}

int main(void) { return ts_run_suite(soak_suite(), CK_ENV); }
