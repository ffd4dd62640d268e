/*
 * http2.c - HTTP versions, fresh connections after broken ones, and the
 * per-origin gates that make the sources of a multi share HTTP/2
 * connections (http2.h says why and how).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "http2.h"
#include "internal.h"
#include "multi_int.h"
#include "os.h"


/* libcurl before 8.0.0 fails every request after the first on a reused h2c
 * connection (curl issue #10634): h2c there gets a connection per request. */
static int h2c_reuse_broken(void) {
  return curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
}

static int is_https(const char *url) { return strncasecmp(url, "https:", 6) == 0; }

/* May the current request of es be multiplexed? */
static int muxable(const eventsource_t *es) {
  const char *url = es_transfer_url(&es->tr);
  switch (es->opt.http_version) {
  case EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE:
    return is_https(url) || !h2c_reuse_broken();
  case EVENTSOURCE_HTTP_VERSION_DEFAULT:
  case EVENTSOURCE_HTTP_VERSION_2:
    return is_https(url) &&
           (curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2);
  default:
    return 0;
  }
}

/* Did libcurl make a new connection for es's request (rather than put it
 * on one that was open)? */
static int made_connection(const eventsource_t *es) {
  long connects = 0;
  (void)curl_easy_getinfo(es->tr.easy, CURLINFO_NUM_CONNECTS, &connects);
  return connects > 0;
}

/* The pioneer es is on its connection: 2 a new one, 1 one that was open. */
static void pioneer_connected(eventsource_t *es) {
  es->gate.connected = made_connection(es) ? 2 : 1;
  es->gate.connected_at = es_now_ms();
}

#if LIBCURL_VERSION_NUM >= 0x075000
/* The connection of a request is made (TLS included), just before the
 * request goes out: a pioneer lets the requests waiting behind it go. */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port) {
  (void)conn_primary_ip;
  (void)conn_local_ip;
  (void)conn_primary_port;
  (void)conn_local_port;
  eventsource_t *es = ud;
  if (!es->multi || !es->gate.origin)
    return CURL_PREREQFUNC_OK;
  if (es->gate.pioneer && !es->gate.connected) {
    pioneer_connected(es);
    es->multi->gates.dirty = 1;
  } else if (es->gate.joined && !es->gate.pioneer) {
    es_gate_joined(&es->multi->gates, es, made_connection(es));
  }
  return CURL_PREREQFUNC_OK;
}
#endif

eventsource_error_t es_http_setup(eventsource_t *es) {
  CURL *e = es->tr.easy;
  long v = CURL_HTTP_VERSION_NONE;
  switch (es->opt.http_version) {
  case EVENTSOURCE_HTTP_VERSION_1_1:
    v = CURL_HTTP_VERSION_1_1;
    break;
  case EVENTSOURCE_HTTP_VERSION_2:
    v = CURL_HTTP_VERSION_2TLS;
    break;
  case EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE:
    v = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    break;
  default:
    break;
  }
  int h2c_alone = es->opt.http_version == EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE &&
                  !is_https(es_transfer_url(&es->tr)) && h2c_reuse_broken();
  /* After a broken connection the next request makes a new one (the gate
   * may let it join a pioneer's fresh connection instead). */
  long fresh = es->conn_broken || h2c_alone;
  es->conn_broken = 0;
  CURLcode rc = curl_easy_setopt(e, CURLOPT_HTTP_VERSION, v);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(e, CURLOPT_PIPEWAIT, 0L);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, fresh);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(e, CURLOPT_FORBID_REUSE, (long)h2c_alone);
#if LIBCURL_VERSION_NUM >= 0x075000
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(e, CURLOPT_PREREQDATA, (void *)es);
#endif
  if (rc == CURLE_OK)
    return EVENTSOURCE_OK;
  es_set_error(es, EVENTSOURCE_ERR_CURL, 0, (int)rc, "libcurl: %s", curl_easy_strerror(rc));
  return EVENTSOURCE_ERR_CURL;
}

int es_http_broken(CURLcode result) {
  switch (result) {
  case CURLE_HTTP2:                 /* 16 */
  case CURLE_PARTIAL_FILE:          /* 18 */
  case CURLE_HTTP2_STREAM:          /* 92 */
  case CURLE_SEND_ERROR:            /* 55 */
  case CURLE_RECV_ERROR:            /* 56 */
    return 1;
  default:
    return 0;
  }
}

/* ------------------------------------------------------------------------ */
/* The gates                                                                */
/* ------------------------------------------------------------------------ */

void es_gates_init(es_gates *g) {
  memset(g, 0, sizeof *g);
  g->max_streams = EVENTSOURCE_DEFAULT_MAX_STREAMS;
}

void es_gates_free(es_gates *g) {
  while (g->origins) {
    es_origin *o = g->origins;
    g->origins = o->next;
    es_free(o);
  }
}

/* "scheme://host:port" of url, lower case, into key (size n); 0 if it does
 * not fit. The URL was checked (es_check_url) or came from libcurl. */
static int origin_key(const char *url, char *key, size_t n) {
  const char *p = strstr(url, "://");
  if (!p)
    return 0;
  size_t slen = (size_t)(p - url);
  const char *auth = p + 3, *end = auth + strcspn(auth, "/?#");
  for (const char *at = auth; at < end; at++)
    if (*at == '@')
      auth = at + 1; /* no userinfo */
  const char *host_end = end;
  if (*auth == '[') {
    const char *rb = memchr(auth, ']', (size_t)(end - auth));
    if (rb)
      host_end = rb + 1;
  } else {
    const char *colon = memchr(auth, ':', (size_t)(end - auth));
    if (colon)
      host_end = colon;
  }
  const char *port = host_end < end && *host_end == ':' ? host_end + 1 : NULL;
  const char *dflt = slen == 5 ? "443" : "80";
  size_t plen = port && port < end ? (size_t)(end - port) : strlen(dflt);
  size_t hlen = (size_t)(host_end - auth);
  if (slen + 3 + hlen + 1 + plen + 1 > n)
    return 0;
  char *k = key;
  for (size_t i = 0; i < slen; i++)
    *k++ = (char)tolower((unsigned char)url[i]);
  memcpy(k, "://", 3);
  k += 3;
  for (size_t i = 0; i < hlen; i++)
    *k++ = (char)tolower((unsigned char)auth[i]);
  *k++ = ':';
  memcpy(k, port && port < end ? port : dflt, plen);
  k[plen] = '\0';
  return 1;
}

static es_origin *find_origin(es_gates *g, const char *url) {
  char key[EVENTSOURCE_MAX_URL + 16];
  if (!origin_key(url, key, sizeof key))
    return NULL;
  for (es_origin *o = g->origins; o; o = o->next)
    if (strcmp(o->key, key) == 0)
      return o;
  size_t len = strlen(key);
  es_origin *o = es_calloc(1, sizeof *o + len + 1);
  if (!o)
    return NULL; /* not gated: the request goes out as libcurl likes */
  memcpy(o->key, key, len + 1);
  o->next = g->origins;
  g->origins = o;
  return o;
}

/* Frees o when nothing refers to it any more. */
static void release_origin(es_gates *g, es_origin *o) {
  if (o->in > 0 || o->head || o->pioneer)
    return;
  for (es_origin **pp = &g->origins; *pp; pp = &(*pp)->next)
    if (*pp == o) {
      *pp = o->next;
      es_free(o);
      return;
    }
}

/* Streams one connection of o takes. */
static long per_conn(const es_gates *g, const es_origin *o) {
  return o->cap ? o->cap : g->max_streams;
}

/* The room left on o's connections: what they take, less its transfers in
 * libcurl. An estimate that errs low: a request that finds no room goes as
 * a pioneer and joins a connection with room if there is one. */
static long room(const es_gates *g, const es_origin *o) {
  return o->conns * per_conn(g, o) - o->in;
}

/* Requests go out to join a connection ES_GATE_BATCH at a time: each batch
 * reports (its connection is known at once, on a connection that is made)
 * before the next goes. libcurl opens a connection for every request that
 * finds the connections full, so a guess of the room that is too high (a
 * server that allows fewer streams than max_streams, streams of others)
 * costs at most a batch's worth of connections instead of one per request
 * past the limit. */
#define ES_GATE_BATCH 8

/* The most transfers o may have in libcurl under the connections-per-host
 * limit. */
static long capacity(const es_gates *g, const es_origin *o, int mux) {
  return g->max_host_connections * (mux ? per_conn(g, o) : 1);
}

/* May another request be let through to join o's connections? */
static int may_join(const es_gates *g, const es_origin *o) {
  return room(g, o) > 0 && o->unsure < ES_GATE_BATCH;
}

void es_gate_joined(es_gates *g, eventsource_t *es, int made_connection) {
  es_origin *o = es->gate.origin;
  if (!o || es->gate.reported)
    return;
  es->gate.reported = 1;
  o->unsure--;
  g->dirty = 1; /* the next batch may go */
  if (!made_connection) {
    o->joined++;
    return;
  }
  /* Sent to share a connection, it found every one full and made its own:
   * the server allows fewer streams than max_streams (its SETTINGS). When
   * there was one connection, what it took is the limit. */
  if (!o->capped && o->conns == 1 && o->joined > 0) {
    long took = o->joined + 1;
    if (took < g->max_streams)
      o->cap = took;
    o->capped = 1;
  }
  o->conns++;
}

/* es goes out: PIPEWAIT (join the connection being made), and no fresh
 * connection for one that joins. */
static void let_through(eventsource_t *es, int join) {
  es->gate.joined = join;
  es->gate.reported = 0;
  if (join) {
    (void)curl_easy_setopt(es->tr.easy, CURLOPT_PIPEWAIT, 1L);
    (void)curl_easy_setopt(es->tr.easy, CURLOPT_FRESH_CONNECT, 0L);
  }
  /* The read timeout counts from when the request really goes out. */
  atomic_store(&es->tr.last_activity, es_now_ms());
}

/* es, let through with PIPEWAIT (it joins a connection that has room
 * rather than open one), is o's pioneer. */
static void mark_pioneer(es_origin *o, eventsource_t *es) {
  o->pioneer = es;
  es->gate.pioneer = 1;
  es->gate.connected = 0;
  es->gate.answered = 0;
  es->gate.reported = 1; /* not one of a batch */
}

/* The pioneer p is done with its connection or on it: the connection
 * counts when p made it, or when p found a kept one the gate did not know
 * of (an idle one from earlier streams). */
static void count_connection(es_origin *o, const eventsource_t *p) {
  if (p->gate.connected == 2 || (p->gate.connected == 1 && o->conns == 0))
    o->conns++;
}

es_gate_verdict es_gate_enter(es_gates *g, eventsource_t *es, uint64_t now) {
  es->gate.pioneer = 0;
  es->gate.connected = 0;
  int mux = muxable(es);
  if (!mux && !g->max_host_connections)
    return ES_GATE_GO;
  es_origin *o = find_origin(g, es_transfer_url(&es->tr));
  if (!o)
    return ES_GATE_GO;
  if (o->mux < 0)
    mux = 0;
  if (g->max_host_connections && o->in + o->nwait >= capacity(g, o, mux)) {
    release_origin(g, o);
    return ES_GATE_FULL;
  }
  es->gate.origin = o;
  if (mux && (o->pioneer || o->head || (room(g, o) > 0 && !may_join(g, o)))) {
    es->gate.state = ES_GATE_WAITING;
    es->gate.since = now;
    es->gate.next = NULL;
    if (o->tail)
      o->tail->gate.next = es;
    else
      o->head = es;
    o->tail = es;
    o->nwait++;
    return ES_GATE_HOLD;
  }
  es->gate.state = ES_GATE_IN;
  int join = mux && room(g, o) > 0;
  o->in++;
  if (!mux) {
    let_through(es, 0);
  } else if (join) {
    o->unsure++;
    let_through(es, 1);
  } else {
    let_through(es, 1);
    mark_pioneer(o, es);
  }
  return ES_GATE_GO;
}

/* Takes es out of the list head..tail (linked by gate.next); 1 if it was
 * in it. */
static int list_remove(eventsource_t **head, eventsource_t **tail, eventsource_t *es) {
  eventsource_t *prev = NULL;
  for (eventsource_t *w = *head; w; prev = w, w = w->gate.next)
    if (w == es) {
      if (prev)
        prev->gate.next = es->gate.next;
      else
        *head = es->gate.next;
      if (*tail == es)
        *tail = prev;
      es->gate.next = NULL;
      return 1;
    }
  es->gate.next = NULL;
  return 0;
}

/* Takes es out of its origin's queue. */
static void unqueue(es_origin *o, eventsource_t *es) {
  if (list_remove(&o->head, &o->tail, es))
    o->nwait--;
}

static void make_ready(es_gates *g, es_origin *o, eventsource_t *es, int join) {
  es->gate.state = ES_GATE_READY;
  es->gate.next = NULL;
  /* Past the connections-per-host limit (the origin's limit learnt since,
   * or a burst): refused, not left in libcurl's queue for ever. */
  es->gate.refused = g->max_host_connections && o->in >= capacity(g, o, o->mux >= 0);
  if (!es->gate.refused) {
    o->in++;
    let_through(es, join);
  }
  if (g->ready_tail)
    g->ready_tail->gate.next = es;
  else
    g->ready = es;
  g->ready_tail = es;
}

int es_gate_expire(es_gates *g, eventsource_t *es, uint64_t now) {
  es_origin *o = es->gate.origin;
  if (es->gate.state != ES_GATE_WAITING || !o)
    return 0;
  eventsource_t *p = o->pioneer;
  if (p && p->gate.connected && now >= p->gate.connected_at + ES_GATE_SETTLE_MS) {
    /* The pioneer's connection is made, its response is slow to come (a
     * server that sends its headers with its first event, or one that
     * speaks HTTP/1.1): share it. The server's SETTINGS came long ago. */
    o->hurry = 1;
    g->dirty = 1;
    return 1;
  }
  if (now < es->gate.since + (uint64_t)EVENTSOURCE_SHARE_WAIT_MS ||
      (p && g->max_host_connections))
    return 1; /* wait on (alone, it would need a connection past the limit) */
  unqueue(o, es);
  make_ready(g, o, es, 0); /* alone: it makes a connection of its own */
  return 0;
}

/* The pioneer of o connected or ended, or o turned out not to multiplex:
 * let the waiting requests through. */
static void open_gate(es_gates *g, es_origin *o) {
  eventsource_t *p = o->pioneer;
  /* A new connection is shared once its first response began: by then the
   * server's SETTINGS (its streams per connection) are in, and libcurl
   * keeps to them. Before, it would put max_streams streams on it and the
   * server refuse those past its limit. A kept connection is shared at
   * once. */
  if (p && o->mux >= 0 &&
      !(p->gate.connected == 1 || (p->gate.connected == 2 && (p->gate.answered || o->hurry))))
    return; /* still connecting, or waiting for the answer */
  o->hurry = 0;
  if (p) {
    count_connection(o, p); /* room for the rest */
    p->gate.pioneer = 0;
    o->pioneer = NULL;
  }
  while (o->head) {
    eventsource_t *es = o->head;
    if (o->mux < 0) {
      unqueue(o, es);
      make_ready(g, o, es, 0);
    } else if (may_join(g, o)) {
      unqueue(o, es);
      make_ready(g, o, es, 1);
      o->unsure += !es->gate.refused;
    } else if (room(g, o) > 0) {
      break; /* the batch out reports first */
    } else {
      unqueue(o, es);
      make_ready(g, o, es, 1);
      if (es->gate.refused)
        continue;
      mark_pioneer(o, es);
      break;
    }
  }
}

eventsource_t *es_gate_next(es_gates *g) {
  if (g->dirty) {
    g->dirty = 0;
    for (es_origin *o = g->origins; o; o = o->next)
      if (o->head || o->pioneer)
        open_gate(g, o);
  }
  eventsource_t *es = g->ready;
  if (!es)
    return NULL;
  g->ready = es->gate.next;
  if (!g->ready)
    g->ready_tail = NULL;
  es->gate.next = NULL;
  es->gate.state = ES_GATE_IN;
  if (es->gate.refused) {
    es_origin *o = es->gate.origin;
    es->gate.state = ES_GATE_NONE;
    es->gate.origin = NULL;
    release_origin(g, o);
  }
  return es;
}

void es_gate_response(eventsource_t *es, long http_version) {
  es_origin *o = es->gate.origin;
  if (!o || !es->multi || http_version == 0)
    return;
  int mux = http_version >= 20 ? 1 : -1;
  if (o->mux != mux) {
    o->mux = mux;
    es->multi->gates.dirty = 1;
  }
  /* Not told by PREREQFUNCTION (old libcurl, or the user's own): the
   * response tells. */
  if (es->gate.joined && !es->gate.pioneer && !es->gate.reported)
    es_gate_joined(&es->multi->gates, es, made_connection(es));
  if (es->gate.pioneer) {
    if (!es->gate.connected)
      pioneer_connected(es);
    es->gate.answered = 1;
    es->multi->gates.dirty = 1;
  }
}

void es_gate_leave(es_gates *g, eventsource_t *es, int broken) {
  es_origin *o = es->gate.origin;
  if (!o)
    return;
  if (es->gate.state == ES_GATE_READY)
    (void)list_remove(&g->ready, &g->ready_tail, es);
  switch (es->gate.state) {
  case ES_GATE_WAITING:
    unqueue(o, es);
    break;
  case ES_GATE_READY: /* counted, as IN (unless refused) */
  case ES_GATE_IN:
    if (es->gate.refused)
      break;
    o->in--;
    if (es->gate.joined && !es->gate.pioneer && !es->gate.reported) {
      o->unsure--; /* it never told: the next batch may go */
      g->dirty = 1;
    }
    if (broken) {
      /* its connection may be gone: count no more than the streams left need */
      long need = (o->in + per_conn(g, o) - 1) / per_conn(g, o);
      if (o->conns > need)
        o->conns = need;
    }
    if (o->pioneer == es) {
      /* Done on a connection that is still good (a refused response, a
       * redirect): the others share it; else the next becomes the pioneer. */
      if (!broken)
        count_connection(o, es);
      o->pioneer = NULL;
      g->dirty = 1;
    }
    break;
  default:
    break;
  }
  if (o->head && !o->pioneer)
    g->dirty = 1;
  es->gate.state = ES_GATE_NONE;
  es->gate.origin = NULL;
  es->gate.pioneer = 0;
  es->gate.next = NULL;
  release_origin(g, o);
}

/* ------------------------------------------------------------------------ */
/* The multi's limits                                                       */
/* ------------------------------------------------------------------------ */

eventsource_error_t eventsource_multi_set_max_streams(eventsource_multi_t *m, long n) {
  if (!m || n < 1 || n > 10000)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (curl_multi_setopt(m->cm, CURLMOPT_MAX_CONCURRENT_STREAMS, n) != CURLM_OK)
    return EVENTSOURCE_ERR_CURL;
  m->gates.max_streams = n;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_multi_set_max_host_connections(eventsource_multi_t *m,
                                                               long n) {
  if (!m || n < 0 || n > 100000)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (curl_multi_setopt(m->cm, CURLMOPT_MAX_HOST_CONNECTIONS, n) != CURLM_OK)
    return EVENTSOURCE_ERR_CURL;
  m->gates.max_host_connections = n;
  return EVENTSOURCE_OK;
}
