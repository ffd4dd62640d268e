/*
 * http2.h - the HTTP version of a source's requests, and sharing HTTP/2
 * connections between the sources of a multi handle (internal).
 *
 * libcurl multiplexes the transfers of one multi handle on one connection
 * per origin only when a transfer finds that connection already made (or
 * waits for it: CURLOPT_PIPEWAIT), and past a full connection every
 * transfer added in the same burst opens its own. So the multi keeps a gate
 * per origin: the first request of a burst (the pioneer) goes alone; when
 * its response begins (by then the server's SETTINGS are in: libcurl keeps
 * to its stream limit; a pioneer on a kept connection goes on as soon as it
 * is on it, CURLOPT_PREREQFUNCTION) or it ended, the requests that waited go
 * out with PIPEWAIT, which puts them on that connection, 8 at a time (each
 * tells, when its request goes out, whether it found room or had to make a
 * connection), as long as the origin's connections have room by the gate's
 * count (connections known times streams per connection, less its
 * transfers); then the next becomes the pioneer of the next connection. A
 * joiner that had to make a connection means the server allows fewer
 * streams than max_streams: what the first connection took becomes the
 * origin's limit. The requests waiting do not wait for an answer more than
 * ES_GATE_SETTLE_MS after the pioneer's connection is made (by then the
 * SETTINGS came: a server that answers late shares all the same), nor more
 * than EVENTSOURCE_SHARE_WAIT_MS for a connection that is not made (then
 * each goes alone). HTTP/1.x
 * requests are never held (PIPEWAIT would make libcurl hold a cleartext
 * HTTP/1.1 request behind a stream that never ends).
 *
 * The gate also keeps the connections-per-host limit from turning into
 * libcurl's queue, where an event stream would wait for ever: a request
 * past the limit fails with CONNECTION_LIMIT instead.
 *
 * Everything here runs on the multi's loop thread; the callbacks from
 * inside libcurl only set flags, and the multi applies them between libcurl
 * calls (es_gate_next()).
 */
#ifndef EVENTSOURCE_HTTP2_H
#define EVENTSOURCE_HTTP2_H

#include <stdint.h>

#include <curl/curl.h>

#include "eventsource.h"

typedef struct es_origin es_origin;

/* An origin (scheme, host, port) with a source waiting or admitted. */
struct es_origin {
  es_origin *next;
  int mux;                   /* known: 1 HTTP/2, -1 HTTP/1.x, 0 not yet */
  long conns;                /* its HTTP/2 connections, as far as known */
  long cap;                  /* streams a connection takes, when the server
                              * allows fewer than max_streams (learned); 0:
                              * max_streams */
  long joined;               /* requests that joined its first connection */
  long unsure;               /* let through to join, connection not known yet */
  int capped;                /* cap was learned (once) */
  int hurry;                 /* share the pioneer's connection before its answer */
  long in;                   /* its transfers in libcurl */
  long nwait;                /* waiting in its queue */
  eventsource_t *pioneer;    /* opening a connection, or NULL */
  eventsource_t *head, *tail; /* waiting, oldest first */
  char key[];                /* "scheme://host:port", lower case */
};

/* A multi handle's gates. */
typedef struct es_gates {
  es_origin *origins;        /* those with a source waiting or admitted */
  eventsource_t *ready, *ready_tail; /* let through, to be added to libcurl */
  long max_streams;
  long max_host_connections; /* 0: no limit */
  int dirty;                 /* a pioneer connected or a mode changed */
} es_gates;

/* A source's place at its origin's gate (in struct eventsource). */
typedef enum es_gate_state {
  ES_GATE_NONE = 0,  /* not gated (or not in a multi) */
  ES_GATE_WAITING,   /* held: in the origin's queue */
  ES_GATE_READY,     /* let through, not yet added to libcurl */
  ES_GATE_IN,        /* its transfer is in libcurl, counted at the origin */
} es_gate_state;

typedef struct es_gate_link {
  es_origin *origin;
  es_gate_state state;
  int pioneer;               /* it opens its origin's next connection */
  int joined;                /* let through to share a connection (PIPEWAIT) */
  int reported;              /* a joiner whose connection is known */
  int answered;              /* a pioneer whose response began */
  int refused;               /* let out of the queue past the host limit */
  int connected;             /* its connection is made (PREREQFUNCTION): 2 a
                              * new one, 1 one that was open already */
  eventsource_t *next;       /* in the origin's queue, or the ready list */
  uint64_t since;            /* ms, when it started waiting */
  uint64_t connected_at;     /* ms, when a pioneer's connection was made */
} es_gate_link;

void es_gates_init(es_gates *g);
/* Frees the origins (every source has left). */
void es_gates_free(es_gates *g);

/* Sets the options of es's next request that the HTTP version and
 * connection reuse decide (before the user's curl hook runs, which may
 * change them). Returns OK, or CURL with es's error set. */
eventsource_error_t es_http_setup(eventsource_t *es);

/* A transfer that ended with result: did its connection break (so that the
 * next attempt should not reuse it)? */
int es_http_broken(CURLcode result);

typedef enum es_gate_verdict {
  ES_GATE_GO,    /* add the transfer to libcurl now */
  ES_GATE_HOLD,  /* it waits; es_gate_next() gives it back */
  ES_GATE_FULL   /* no connection can be had: CONNECTION_LIMIT */
} es_gate_verdict;

/* es's prepared transfer asks to go out (now: ms). */
es_gate_verdict es_gate_enter(es_gates *g, eventsource_t *es, uint64_t now);
/* es, let through to share a connection, got one (PREREQFUNCTION):
 * made_connection when libcurl made a new one for it (every connection was
 * full: the server allows fewer streams than max_streams). */
void es_gate_joined(es_gates *g, eventsource_t *es, int made_connection);
/* How often a waiting request looks at its pioneer (ms): once the
 * pioneer's connection has been made this long, the waiting requests share
 * it without waiting for its answer. */
#define ES_GATE_SETTLE_MS 1000

/* A waiting es's deadline came (now: ms): when its pioneer's connection has
 * been made for ES_GATE_SETTLE_MS, share that connection now; when es waited
 * EVENTSOURCE_SHARE_WAIT_MS and the pioneer is still not connected, let it
 * through alone. 1: es still waits (deadline again in ES_GATE_SETTLE_MS),
 * 0: es_gate_next() gives it back. */
int es_gate_expire(es_gates *g, eventsource_t *es, uint64_t now);
/* A response began on es's transfer (inside libcurl's callbacks). */
void es_gate_response(eventsource_t *es, long http_version);
/* es's transfer left libcurl, or es stopped waiting (closed, removed,
 * restarted); broken: its connection broke. */
void es_gate_leave(es_gates *g, eventsource_t *es, int broken);
/* The next source let through, to be added to libcurl (NULL: none). Its
 * gate state is then IN; or, with gate.refused set (clear it), it left the
 * gate: no connection can be had under the host limit (CONNECTION_LIMIT). */
eventsource_t *es_gate_next(es_gates *g);

#endif
