/*
 * test_http2.c - choosing the HTTP version, seeing it, and the multi's
 * per-origin gates (lib/http2.c), without an HTTP/2 server: the setters'
 * checks, the version and reuse on OPEN and ERROR over HTTP/1.1, the gate's
 * waves and limits driven directly on real sources, an HTTPS burst whose
 * server picks HTTP/1.1 (nothing held for ever), the connections-per-host
 * trap and a mass drop reconnecting with its jitter spread. The same
 * against a real HTTP/2 server (nghttpx) is test_http2_nghttpx.c.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/internal.h"
#include "../lib/multi_int.h"
#include "eventsource.h"
#include "eventsource_curl.h"
#include "support/sse_server.h"
#include "support/ts_util.h"

#define WAIT_MS 10000

/* ------------------------------------------------------------------------ */
/* Setters                                                                  */
/* ------------------------------------------------------------------------ */

START_TEST(test_setters) {
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, "https://127.0.0.1:1/"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_http_version(NULL, EVENTSOURCE_HTTP_VERSION_1_1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_http_version(es, (eventsource_http_version_t)4),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_http_version(es, (eventsource_http_version_t)-1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_set_http_version(es, EVENTSOURCE_HTTP_VERSION_1_1),
                   EVENTSOURCE_OK);
  int h2 = (curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2) != 0;
  eventsource_error_t want = h2 ? EVENTSOURCE_OK : EVENTSOURCE_ERR_CURL;
  ck_assert_int_eq(eventsource_set_http_version(es, EVENTSOURCE_HTTP_VERSION_2), want);
  ck_assert_int_eq(eventsource_set_http_version(es, EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE),
                   want);
  ck_assert_int_eq(eventsource_set_http_version(es, EVENTSOURCE_HTTP_VERSION_DEFAULT),
                   EVENTSOURCE_OK);
  eventsource_free(es);

  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  ck_assert_int_eq(m->gates.max_streams, EVENTSOURCE_DEFAULT_MAX_STREAMS);
  ck_assert_int_eq(eventsource_multi_set_max_streams(m, 0), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_multi_set_max_streams(m, 10001),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_multi_set_max_streams(NULL, 5), EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_multi_set_max_streams(m, 5), EVENTSOURCE_OK);
  ck_assert_int_eq(m->gates.max_streams, 5);
  ck_assert_int_eq(eventsource_multi_set_max_host_connections(m, -1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_multi_set_max_host_connections(m, 100001),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_multi_set_max_host_connections(NULL, 1),
                   EVENTSOURCE_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(eventsource_multi_set_max_host_connections(m, 3), EVENTSOURCE_OK);
  ck_assert_int_eq(m->gates.max_host_connections, 3);
  ck_assert_int_eq(eventsource_multi_set_max_host_connections(m, 0), EVENTSOURCE_OK);
  eventsource_multi_free(m);
  ck_assert_str_eq(eventsource_error_name(EVENTSOURCE_ERR_CONNECTION_LIMIT),
                   "CONNECTION_LIMIT");
  ck_assert_int_eq(EVENTSOURCE_ERR_CONNECTION_LIMIT, 23);
  ck_assert_int_eq(eventsource_event_http_version(NULL), 0);
  ck_assert_int_eq(eventsource_event_connection_reused(NULL), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The version and reuse on notifications                                   */
/* ------------------------------------------------------------------------ */

typedef struct seen {
  int opens, errors, messages;
  long open_version, error_version;
  int open_reused, error_reused;
  eventsource_error_t error;
  int will_reconnect;
  long reconnect_ms;
  const char *ca;
  int close_on_error;
} seen;

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  seen *s = ud;
  switch (eventsource_event_kind(ev)) {
  case EVENTSOURCE_KIND_OPEN:
    s->opens++;
    s->open_version = eventsource_event_http_version(ev);
    s->open_reused = eventsource_event_connection_reused(ev);
    break;
  case EVENTSOURCE_KIND_ERROR:
    s->errors++;
    s->error = eventsource_event_error(ev);
    s->error_version = eventsource_event_http_version(ev);
    s->error_reused = eventsource_event_connection_reused(ev);
    s->will_reconnect = eventsource_event_will_reconnect(ev);
    s->reconnect_ms = eventsource_event_reconnect_ms(ev);
    if (s->close_on_error)
      eventsource_close(es);
    break;
  case EVENTSOURCE_KIND_MESSAGE:
    s->messages++;
    break;
  default:
    break;
  }
}

static eventsource_t *watched(const char *url, seen *s) {
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, url), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_add_any_listener(es, on_any, s, NULL), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_retry(es, 50), EVENTSOURCE_OK);
  if (s->ca)
    ck_assert_int_eq(eventsource_set_curl_callback(es, ts_tls_trust_ca, (void *)(uintptr_t)s->ca),
                     EVENTSOURCE_OK);
  return es;
}

static void poll_until(eventsource_multi_t *m, const int *flag, int n) {
  long dl = ts_now_ms() + WAIT_MS;
  while (*flag < n && ts_now_ms() < dl)
    ck_assert_int_eq(eventsource_multi_poll(m, 50), EVENTSOURCE_OK);
  ck_assert_int_ge(*flag, n);
}

/* n sources on url (trusting ca, NULL for none), watched by s[0..n-1],
 * added to m at once. */
static void add_watched(eventsource_multi_t *m, eventsource_t **es, seen *s, int n,
                        const char *url, const char *ca) {
  memset(s, 0, (size_t)n * sizeof *s);
  for (int i = 0; i < n; i++) {
    s[i].ca = ca;
    es[i] = watched(url, &s[i]);
    ck_assert_int_eq(eventsource_multi_add(m, es[i]), EVENTSOURCE_OK);
  }
}

/* Closes es[0..n-1], runs m until they are all CLOSED, frees it and them. */
static void close_all(eventsource_multi_t *m, eventsource_t **es, int n) {
  for (int i = 0; i < n; i++)
    eventsource_close(es[i]);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  eventsource_multi_free(m);
  for (int i = 0; i < n; i++)
    eventsource_free(es[i]);
}

/* OPEN over HTTP/1.1: 11 and a new connection; an ERROR about a refused
 * response: its version; an ERROR without a response: 0. */
START_TEST(test_version_on_notifications) {
  ts_server *srv = ts_start_server();
  ts_script *sc = ts_server_add_script(srv);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: a\n\n");
  ts_script_close(sc);
  sc = ts_server_add_script(srv);
  ts_script_writes(sc, "HTTP/1.1 500 Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  ts_script_close(sc);
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  seen s = {0};
  eventsource_t *es = watched(ts_server_url(srv, "/v"), &s);
  ck_assert_int_eq(eventsource_set_http_version(es, EVENTSOURCE_HTTP_VERSION_1_1),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_add(m, es), EVENTSOURCE_OK);
  poll_until(m, &s.errors, 2); /* the end of the stream, then the 500 */
  ck_assert_int_eq(s.opens, 1);
  ck_assert_int_eq(s.open_version, 11);
  ck_assert_int_eq(s.open_reused, 0);
  ck_assert_int_eq(s.error, EVENTSOURCE_ERR_HTTP_STATUS);
  ck_assert_int_eq(s.error_version, 11);
  ck_assert_uint_eq(eventsource_stat(es, EVENTSOURCE_STAT_HTTP_VERSION), 11);
  ck_assert_uint_eq(eventsource_multi_stat(m, EVENTSOURCE_MULTI_STAT_CONNECTIONS), 2);
  eventsource_multi_free(m);
  eventsource_free(es);

  /* nobody listens on the port any more: no response began */
  int port = ts_server_port(srv);
  ts_server_stop(srv);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  seen z = {.close_on_error = 1};
  es = watched(url, &z);
  ck_assert_int_eq(eventsource_multi_add(m, es), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  ck_assert_int_eq(z.errors, 1);
  ck_assert_int_eq(z.error, EVENTSOURCE_ERR_NETWORK);
  ck_assert_int_eq(z.error_version, 0);
  ck_assert_int_eq(z.error_reused, 0);
  eventsource_multi_free(m);
  eventsource_free(es);
}
END_TEST

/* Prior knowledge against a server that only speaks HTTP/1.1: a network
 * error, retried (a server may come back speaking HTTP/2). */
START_TEST(test_prior_knowledge_to_http1_server) {
  ts_server *srv = ts_events_server(1);
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  seen s = {.close_on_error = 1};
  eventsource_t *es = watched(ts_server_url(srv, "/pk"), &s);
  ck_assert_int_eq(eventsource_set_http_version(es, EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_add(m, es), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  ck_assert_int_eq(s.opens, 0);
  ck_assert_int_eq(s.errors, 1);
  ck_assert_int_eq(s.error, EVENTSOURCE_ERR_NETWORK);
  ck_assert_int_eq(s.will_reconnect, 1);
  ck_assert_int_ne(eventsource_last_curl_code(es), 0);
  eventsource_multi_free(m);
  eventsource_free(es);
  ts_server_stop(srv);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The gate, driven directly                                                */
/* ------------------------------------------------------------------------ */

/* A source whose request to url is prepared as the multi would have it (an
 * easy handle, not added anywhere), pretending to be in m. */
static eventsource_t *gated(eventsource_multi_t *m, const char *url) {
  eventsource_t *es = NULL;
  ck_assert_int_eq(eventsource_new(&es, url), EVENTSOURCE_OK);
  es->tr.easy = curl_easy_init();
  ck_assert_ptr_nonnull(es->tr.easy);
  es->multi = m;
  return es;
}

static void ungate(eventsource_t *es) {
  es->multi = NULL;
  eventsource_free(es);
}

/* Every one of es[0..n-1] leaves its gate and is freed. */
static void ungate_all(es_gates *g, eventsource_t **es, int n) {
  for (int i = 0; i < n; i++) {
    es_gate_leave(g, es[i], 0);
    ungate(es[i]);
  }
}

/* The pioneer of a gate's origin connects on a new connection, and its
 * response begins. */
static void connect_pioneer(es_gates *g, eventsource_t *es) {
  ck_assert_int_eq(es->gate.pioneer, 1);
  es->gate.connected = 2;
  g->dirty = 1;
  ck_assert_ptr_null(es_gate_next(g)); /* nothing before the answer */
  es->gate.answered = 1;
  g->dirty = 1;
}

/* Takes what the gate lets through, batch after batch: each joiner reports
 * that it joined a connection (but the made-th, which had to make one: 0
 * none), until nothing more comes. Returns how many came; the
 * next pioneer, if one came, in *pioneer. */
static int drain(es_gates *g, eventsource_t **pioneer, int made) {
  int n = 0;
  eventsource_t *r;
  while ((r = es_gate_next(g))) {
    ck_assert_int_eq(r->gate.state, ES_GATE_IN);
    n++;
    if (r->gate.pioneer) {
      *pioneer = r;
    } else {
      ck_assert_int_eq(r->gate.joined, 1);
      /* no more than a batch out before they report */
      ck_assert_int_le(r->gate.origin->unsure, 8);
      es_gate_joined(g, r, n == made);
    }
  }
  return n;
}

/* 250 requests to one origin with 100 streams a connection: a pioneer, then
 * its 99 followers and the next pioneer, and so on: 3 connections. Another
 * origin is a gate of its own; HTTP/1.1 and plain http are not held. */
START_TEST(test_gate_waves) {
  enum { N = 250 };
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  es_gates *g = &m->gates;
  eventsource_t *es[N];
  int go = 0, hold = 0;
  for (int i = 0; i < N; i++) {
    es[i] = gated(m, "https://Example.test/a");
    es_gate_verdict v = es_gate_enter(g, es[i], 1000);
    go += v == ES_GATE_GO;
    hold += v == ES_GATE_HOLD;
  }
  ck_assert_int_eq(go, 1);
  ck_assert_int_eq(hold, N - 1);
  ck_assert_int_eq(es[0]->gate.pioneer, 1);
  ck_assert_ptr_null(es_gate_next(g)); /* the pioneer has not connected yet */
  /* same origin, spelled differently: held too */
  eventsource_t *same = gated(m, "https://example.test:443/other?x");
  ck_assert_int_eq(es_gate_enter(g, same, 1000), ES_GATE_HOLD);
  es_gate_leave(g, same, 0);
  ungate(same);
  /* another origin: a pioneer of its own */
  eventsource_t *other = gated(m, "https://example.test:8443/");
  ck_assert_int_eq(es_gate_enter(g, other, 1000), ES_GATE_GO);
  ck_assert_int_eq(other->gate.pioneer, 1);
  /* HTTP/1.1 asked for, and cleartext HTTP/1.1: never held */
  eventsource_t *h1 = gated(m, "https://example.test/a");
  ck_assert_int_eq(eventsource_set_http_version(h1, EVENTSOURCE_HTTP_VERSION_1_1),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(es_gate_enter(g, h1, 1000), ES_GATE_GO);
  ck_assert_ptr_null(h1->gate.origin);
  eventsource_t *plain = gated(m, "http://example.test/a");
  ck_assert_int_eq(es_gate_enter(g, plain, 1000), ES_GATE_GO);
  ck_assert_ptr_null(plain->gate.origin);

  /* each wave: the 99 that join the pioneer's connection, and the pioneer
   * of the next one while requests are left */
  static const int waves[] = {100, 100, 49};
  int pioneers = 1, let = 1;
  eventsource_t *pioneer = es[0];
  for (int w = 0; w < 3; w++) {
    connect_pioneer(g, pioneer);
    int wave = 0;
    eventsource_t *next_pioneer = NULL;
    wave = drain(g, &next_pioneer, 0);
    ck_assert_int_eq(wave, waves[w]);
    let += wave;
    if (next_pioneer) {
      pioneers++;
      pioneer = next_pioneer;
    }
  }
  ck_assert_int_eq(let, N);
  ck_assert_int_eq(pioneers, 3); /* ceil(250 / 100) connections */
  es_origin *o = es[0]->gate.origin;
  ck_assert_ptr_nonnull(o);
  ungate_all(g, es, N);
  es_gate_leave(g, other, 0);
  ungate(other);
  ungate(h1);
  ungate(plain);
  ck_assert_ptr_null(g->origins); /* freed with their last source */
  eventsource_multi_free(m);
}
END_TEST

/* A pioneer that fails before it connects hands the gate to the next; one
 * that waited too long goes alone; a held source that leaves is forgotten;
 * an origin that turns out to speak HTTP/1.1 is not held any more. */
START_TEST(test_gate_failures) {
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  es_gates *g = &m->gates;
  eventsource_t *a = gated(m, "https://h.test/"), *b = gated(m, "https://h.test/"),
                *c = gated(m, "https://h.test/"), *d = gated(m, "https://h.test/");
  ck_assert_int_eq(es_gate_enter(g, a, 0), ES_GATE_GO);
  ck_assert_int_eq(es_gate_enter(g, b, 0), ES_GATE_HOLD);
  ck_assert_int_eq(es_gate_enter(g, c, 0), ES_GATE_HOLD);
  ck_assert_int_eq(es_gate_enter(g, d, 0), ES_GATE_HOLD);
  /* a's connection broke before it was made: b is the next pioneer */
  es_gate_leave(g, a, 1);
  ck_assert_ptr_eq(es_gate_next(g), b);
  ck_assert_int_eq(b->gate.pioneer, 1);
  ck_assert_ptr_null(es_gate_next(g));
  /* c waited too long: it goes alone, not as a pioneer */
  ck_assert_int_eq(es_gate_expire(g, c, 5000), 1); /* not yet 10 s */
  ck_assert_int_eq(es_gate_expire(g, c, EVENTSOURCE_SHARE_WAIT_MS), 0);
  ck_assert_ptr_eq(es_gate_next(g), c);
  ck_assert_int_eq(c->gate.pioneer, 0);
  /* d leaves while held (closed, say) */
  es_gate_leave(g, d, 0);
  ck_assert_ptr_null(d->gate.origin);
  /* b's response says HTTP/1.1: the origin is not held any more */
  es_gate_response(b, 11);
  eventsource_t *e = gated(m, "https://h.test/");
  ck_assert_ptr_null(es_gate_next(g));
  ck_assert_int_eq(es_gate_enter(g, e, 0), ES_GATE_GO);
  ck_assert_int_eq(e->gate.pioneer, 0);
  eventsource_t *all[] = {b, c, e};
  ungate_all(g, all, 3);
  ungate(a);
  ungate(d);
  ck_assert_ptr_null(g->origins);
  eventsource_multi_free(m);
}
END_TEST

/* A pioneer refused or redirected on a good connection (a 503 for
 * everyone, say): the others share that connection at once instead of
 * going one by one, each waiting for its own answer. */
START_TEST(test_gate_pioneer_refused) {
  enum { N = 40 };
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  es_gates *g = &m->gates;
  eventsource_t *es[N];
  for (int i = 0; i < N; i++) {
    es[i] = gated(m, "https://busy.test/");
    ck_assert_int_eq(es_gate_enter(g, es[i], 0), i ? ES_GATE_HOLD : ES_GATE_GO);
  }
  es[0]->gate.connected = 2; /* its request went out on a new connection */
  es_gate_leave(g, es[0], 0); /* and it was refused */
  eventsource_t *p = NULL;
  ck_assert_int_eq(drain(g, &p, 0), N - 1);
  ck_assert_ptr_null(p); /* all joined: no second pioneer */
  ungate_all(g, es, N);
  ck_assert_ptr_null(g->origins);
  eventsource_multi_free(m);
}
END_TEST

/* A pioneer connected whose answer does not come (a server that sends its
 * headers with its first event): a second later the others share its
 * connection anyway. */
START_TEST(test_gate_slow_answer) {
  enum { N = 10 };
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  es_gates *g = &m->gates;
  eventsource_t *es[N];
  for (int i = 0; i < N; i++) {
    es[i] = gated(m, "https://slow.test/");
    ck_assert_int_eq(es_gate_enter(g, es[i], 1000), i ? ES_GATE_HOLD : ES_GATE_GO);
  }
  es[0]->gate.connected = 2;
  es[0]->gate.connected_at = 1100;
  g->dirty = 1;
  ck_assert_ptr_null(es_gate_next(g)); /* no answer yet */
  ck_assert_int_eq(es_gate_expire(g, es[1], 1100 + ES_GATE_SETTLE_MS - 1), 1);
  ck_assert_ptr_null(es_gate_next(g));
  ck_assert_int_eq(es_gate_expire(g, es[1], 1100 + ES_GATE_SETTLE_MS), 1);
  eventsource_t *p = NULL;
  ck_assert_int_eq(drain(g, &p, 0), N - 1); /* all joined */
  ck_assert_ptr_null(p);
  ungate_all(g, es, N);
  eventsource_multi_free(m);
}
END_TEST

/* A server that allows 30 streams per connection where the multi allows
 * 100: the joiner that found the connection full made one of its own; the
 * gate takes 30 as the origin's limit from then on. */
START_TEST(test_gate_learns_server_limit) {
  enum { N = 100 };
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  es_gates *g = &m->gates;
  eventsource_t *es[N];
  for (int i = 0; i < N; i++) {
    es[i] = gated(m, "https://few.test/");
    ck_assert_int_eq(es_gate_enter(g, es[i], 0), i ? ES_GATE_HOLD : ES_GATE_GO);
  }
  connect_pioneer(g, es[0]);
  eventsource_t *p = NULL;
  /* 29 join the pioneer's connection, the 30th makes a new one: 30 is the
   * limit, and the second connection takes 29 more; then the next pioneer */
  int n = drain(g, &p, 30);
  es_origin *o = es[0]->gate.origin;
  ck_assert_int_eq(o->cap, 30);
  ck_assert_int_eq(o->conns, 2);
  ck_assert_int_eq(n, 60);
  ck_assert_ptr_eq(p, es[60]);
  ck_assert_int_eq(o->in, 61);
  ungate_all(g, es, N);
  ck_assert_ptr_null(g->origins);
  eventsource_multi_free(m);
}
END_TEST

/* With 2 connections per host and 3 streams per connection, the 7th HTTP/2
 * request is refused (FULL) instead of waiting in libcurl's queue for
 * ever; on HTTP/1.1 the 3rd is. A stream that leaves makes room. */
START_TEST(test_gate_capacity) {
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_set_max_streams(m, 3), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_set_max_host_connections(m, 2), EVENTSOURCE_OK);
  es_gates *g = &m->gates;
  eventsource_t *s[7];
  int in = 0;
  for (int i = 0; i < 7; i++)
    s[i] = gated(m, "https://cap.test/");
  ck_assert_int_eq(es_gate_enter(g, s[0], 0), ES_GATE_GO);
  for (int i = 1; i < 6; i++)
    ck_assert_int_eq(es_gate_enter(g, s[i], 0), ES_GATE_HOLD);
  in = 1;
  eventsource_t *p = s[0], *r;
  while (in < 6) {
    connect_pioneer(g, p);
    while ((r = es_gate_next(g))) {
      in++;
      if (r->gate.pioneer)
        p = r;
    }
  }
  ck_assert_int_eq(es_gate_enter(g, s[6], 0), ES_GATE_FULL);
  ck_assert_ptr_null(s[6]->gate.origin);
  es_gate_leave(g, s[2], 0);
  ck_assert_int_eq(es_gate_enter(g, s[6], 0), ES_GATE_GO); /* joins: room came free */
  ck_assert_int_eq(s[6]->gate.pioneer, 0);

  for (int i = 0; i < 7; i++) {
    es_gate_leave(g, s[i], 0);
  }
  /* a burst of 7 while the first connection is being made: 6 wait, the 7th
   * is refused at once (it would wait for ever) */
  ck_assert_int_eq(es_gate_enter(g, s[0], 0), ES_GATE_GO);
  for (int i = 1; i < 6; i++)
    ck_assert_int_eq(es_gate_enter(g, s[i], 0), ES_GATE_HOLD);
  ck_assert_int_eq(es_gate_enter(g, s[6], 0), ES_GATE_FULL);
  /* the server turns out to allow 2 streams a connection: of the 5 that
   * waited, 3 fit under the limit (4 streams), the other 2 are refused */
  s[0]->gate.origin->cap = 2;
  s[0]->gate.origin->capped = 1;
  int went = 0, refused = 0;
  p = s[0];
  for (int round = 0; round < 2; round++) {
    connect_pioneer(g, p);
    while ((r = es_gate_next(g))) {
      if (r->gate.refused) {
        refused++;
        r->gate.refused = 0;
        ck_assert_ptr_null(r->gate.origin);
      } else {
        went++;
        if (r->gate.pioneer)
          p = r;
        else
          es_gate_joined(g, r, 0);
      }
    }
  }
  ck_assert_int_eq(refused, 2);
  ck_assert_int_eq(went, 3);
  ck_assert_int_eq(s[0]->gate.origin->in, 4);

  /* HTTP/1.1: one stream per connection */
  eventsource_t *h[3];
  for (int i = 0; i < 3; i++) {
    h[i] = gated(m, "http://cap.test/");
    es_gate_verdict want = i < 2 ? ES_GATE_GO : ES_GATE_FULL;
    ck_assert_int_eq(es_gate_enter(g, h[i], 0), want);
  }
  ungate_all(g, h, 3);
  ungate_all(g, s, 7);
  ck_assert_ptr_null(g->origins);
  eventsource_multi_free(m);
}
END_TEST

/* h2c: on libcurl before 8.0 every reuse of an h2c connection fails (curl
 * #10634), so h2c requests are not shared there; from 8.0 on they are. */
START_TEST(test_gate_h2c) {
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  eventsource_t *a = gated(m, "http://c.test/"), *b = gated(m, "http://c.test/");
  ck_assert_int_eq(eventsource_set_http_version(a, EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_set_http_version(b, EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE),
                   EVENTSOURCE_OK);
  int shared = curl_version_info(CURLVERSION_NOW)->version_num >= 0x080000;
  ck_assert_int_eq(es_gate_enter(&m->gates, a, 0), ES_GATE_GO);
  ck_assert_int_eq(es_gate_enter(&m->gates, b, 0), shared ? ES_GATE_HOLD : ES_GATE_GO);
  es_gate_leave(&m->gates, a, 0);
  es_gate_leave(&m->gates, b, 0);
  ungate(a);
  ungate(b);
  eventsource_multi_free(m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Through the loop                                                         */
/* ------------------------------------------------------------------------ */

/* 30 sources added at once to an https origin whose server picks HTTP/1.1
 * (no ALPN): the first goes alone, the rest go when its connection is
 * made, each on its own connection; every one opens with 11 and gets its
 * events. */
START_TEST(test_https_burst_on_http1) {
  enum { N = 30 };
  ts_tls *t = ts_tls_new("IP:127.0.0.1");
  ck_assert_ptr_nonnull(t);
  ts_server *srv = ts_server_start_tls(t);
  ck_assert_ptr_nonnull(srv);
  ts_script *sc = ts_server_add_script(srv);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: one\n\ndata: two\n\n");
  ts_script_hold(sc);
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  seen s[N];
  eventsource_t *es[N];
  add_watched(m, es, s, N, ts_server_url(srv, "/b"), ts_tls_ca_file(t));
  long dl = ts_now_ms() + WAIT_MS;
  uint64_t events;
  while ((events = eventsource_multi_stat(m, EVENTSOURCE_MULTI_STAT_EVENTS)) < 2 * N &&
         ts_now_ms() < dl)
    ck_assert_int_eq(eventsource_multi_poll(m, 50), EVENTSOURCE_OK);
  ck_assert_uint_eq(events, 2 * N);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(s[i].opens, 1);
    ck_assert_int_eq(s[i].messages, 2);
    ck_assert_int_eq(s[i].errors, 0);
    ck_assert_int_eq(s[i].open_version, 11);
  }
  ck_assert_uint_eq(eventsource_multi_stat(m, EVENTSOURCE_MULTI_STAT_CONNECTIONS), N);
  for (int i = 0; i < N; i++)
    eventsource_close(es[i]);
  ck_assert_int_eq(eventsource_multi_run(m), EVENTSOURCE_OK);
  ck_assert_ptr_null(m->gates.origins);
  close_all(m, es, N);
  ts_server_stop(srv);
  ts_tls_free(t);
}
END_TEST

/* An https server that sends its headers only when it has an event (here:
 * when the test says): the first request's connection is made, its answer
 * does not come, and the others go about a second later (ES_GATE_SETTLE_MS),
 * well before EVENTSOURCE_SHARE_WAIT_MS. */
START_TEST(test_https_headers_late) {
  enum { N = 10 };
  ts_tls *t = ts_tls_new("IP:127.0.0.1");
  ck_assert_ptr_nonnull(t);
  ts_server *srv = ts_server_start_tls(t);
  ck_assert_ptr_nonnull(srv);
  ts_script *sc = ts_server_add_script(srv);
  ts_script_gate(sc, 1);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: late\n\n");
  ts_script_hold(sc);
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  seen s[N];
  eventsource_t *es[N];
  add_watched(m, es, s, N, ts_server_url(srv, "/late"), ts_tls_ca_file(t));
  long t0 = ts_now_ms(), dl = t0 + EVENTSOURCE_SHARE_WAIT_MS - 2000;
  while (ts_server_request_count(srv) < N && ts_now_ms() < dl)
    ck_assert_int_eq(eventsource_multi_poll(m, 50), EVENTSOURCE_OK);
  ck_assert_int_eq(ts_server_request_count(srv), N);
  ts_server_release(srv, 1);
  long dl2 = ts_now_ms() + WAIT_MS;
  while (eventsource_multi_stat(m, EVENTSOURCE_MULTI_STAT_EVENTS) < N && ts_now_ms() < dl2)
    ck_assert_int_eq(eventsource_multi_poll(m, 50), EVENTSOURCE_OK);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(s[i].messages, 1);
    ck_assert_int_eq(s[i].open_version, 11);
  }
  close_all(m, es, N);
  ts_server_stop(srv);
  ts_tls_free(t);
}
END_TEST

/* The connections-per-host trap: 2 allowed, 3 streams. The third is told
 * CONNECTION_LIMIT (and retries) instead of waiting for ever behind two
 * streams that never end; when one of them closes, it gets in. */
START_TEST(test_host_connection_limit) {
  ts_server *srv = ts_events_server(1);
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_multi_set_max_host_connections(m, 2), EVENTSOURCE_OK);
  seen s[3];
  eventsource_t *es[3];
  add_watched(m, es, s, 2, ts_server_url(srv, "/l"), NULL);
  poll_until(m, &s[0].messages, 1);
  poll_until(m, &s[1].messages, 1);
  add_watched(m, es + 2, s + 2, 1, ts_server_url(srv, "/l"), NULL);
  poll_until(m, &s[2].errors, 1);
  ck_assert_int_eq(s[2].error, EVENTSOURCE_ERR_CONNECTION_LIMIT);
  ck_assert_int_eq(s[2].will_reconnect, 1);
  ck_assert_ptr_nonnull(strstr(eventsource_last_error_message(es[2]), "2 per host"));
  ck_assert_int_eq(s[2].opens, 0);
  ck_assert_int_eq(ts_server_request_count(srv), 2); /* nothing was sent */
  eventsource_close(es[0]);
  poll_until(m, &s[2].messages, 1);
  ck_assert_int_eq(s[2].opens, 1);
  close_all(m, es, 3);
  ts_server_stop(srv);
}
END_TEST

/* Every stream of a connection lost at once (as a GOAWAY or a proxy's
 * restart ends them): they reconnect spread by their jitter, not in one
 * herd, each with its Last-Event-ID. */
START_TEST(test_mass_drop_spread) {
  enum { N = 20 };
  ts_server *srv = ts_start_server();
  ts_script *sc;
  for (int i = 0; i < N; i++) {
    sc = ts_server_add_script(srv);
    ts_script_headers(sc);
    ts_script_writes(sc, "id: 7\ndata: x\n\n");
    ts_script_gate(sc, 1);
    ts_script_close(sc);
  }
  sc = ts_server_add_script(srv);
  ts_script_headers(sc);
  ts_script_writes(sc, "data: again\n\n");
  ts_script_hold(sc);
  eventsource_multi_t *m = NULL;
  ck_assert_int_eq(eventsource_multi_new(&m), EVENTSOURCE_OK);
  seen s[N];
  eventsource_t *es[N];
  memset(s, 0, sizeof s);
  for (int i = 0; i < N; i++) {
    es[i] = watched(ts_server_url(srv, "/d"), &s[i]);
    ck_assert_int_eq(eventsource_set_retry(es[i], 1000), EVENTSOURCE_OK);
    ck_assert_int_eq(eventsource_multi_add(m, es[i]), EVENTSOURCE_OK);
  }
  for (int i = 0; i < N; i++)
    poll_until(m, &s[i].messages, 1);
  ts_server_release(srv, 1); /* every stream ends now */
  for (int i = 0; i < N; i++)
    poll_until(m, &s[i].errors, 1);
  long lo = s[0].reconnect_ms, hi = s[0].reconnect_ms;
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(s[i].error, EVENTSOURCE_ERR_EOF);
    ck_assert_int_ge(s[i].reconnect_ms, 1000);
    ck_assert_int_le(s[i].reconnect_ms, 1500);
    lo = s[i].reconnect_ms < lo ? s[i].reconnect_ms : lo;
    hi = s[i].reconnect_ms > hi ? s[i].reconnect_ms : hi;
  }
  ck_assert_int_gt(hi - lo, 50); /* spread, not one herd */
  for (int i = 0; i < N; i++)
    poll_until(m, &s[i].messages, 2);
  ck_assert_int_eq(ts_server_wait_requests(srv, 2 * N, WAIT_MS), 2 * N);
  for (int i = N; i < 2 * N; i++) {
    ts_request r;
    char id[16];
    ck_assert_int_eq(ts_server_get_request(srv, i, &r), 0);
    ck_assert_int_ge(ts_request_header(&r, "Last-Event-ID", id, sizeof id), 0);
    ck_assert_str_eq(id, "7");
  }
  close_all(m, es, N);
  ts_server_stop(srv);
}
END_TEST

static Suite *http2_suite(void) {
  Suite *s = suite_create("http2");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_setters);
  tcase_add_test(tc, test_version_on_notifications);
  tcase_add_test(tc, test_prior_knowledge_to_http1_server);
  tcase_add_test(tc, test_gate_waves);
  tcase_add_test(tc, test_gate_failures);
  tcase_add_test(tc, test_gate_pioneer_refused);
  tcase_add_test(tc, test_gate_slow_answer);
  tcase_add_test(tc, test_gate_learns_server_limit);
  tcase_add_test(tc, test_gate_capacity);
  tcase_add_test(tc, test_gate_h2c);
  tcase_add_test(tc, test_https_burst_on_http1);
  tcase_add_test(tc, test_https_headers_late);
  tcase_add_test(tc, test_host_connection_limit);
  tcase_add_test(tc, test_mass_drop_spread);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(http2_suite(), CK_NORMAL); }
