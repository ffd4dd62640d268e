/*
 * source.c - the connection's state machine (WHATWG HTML 9.2.2-9.2.4).
 *
 * Bytes come in from the transfer (the sink), events go out to the
 * listeners, and what the connection needs next goes back to the loop as a
 * value (es_next): connect now, add this transfer, wait until T, done. Every
 * entry point takes the time, so the reconnection logic runs on an explicit
 * clock in the tests. Nothing here calls the loop.
 */
#include <string.h>

#include "internal.h"
#include "os.h"
#include "policy.h"

static const es_next NOTHING = {ES_GO_NONE, 0, 0, NULL};

/* ------------------------------------------------------------------------ */
/* Calling the user                                                         */
/* ------------------------------------------------------------------------ */

/* Listeners and hooks run under cb_lock (eventsource_close() from another
 * thread waits on it), and not at all once the source is closed. enter()
 * returns 0 when closed; otherwise leave() must follow. */
static int enter(eventsource_t *es) {
  pthread_mutex_lock(&es->cb_lock);
  if (!es_is_closed(es))
    return 1;
  pthread_mutex_unlock(&es->cb_lock);
  return 0;
}

static void leave(eventsource_t *es) { pthread_mutex_unlock(&es->cb_lock); }

/* Dispatches ev (the caller holds cb_lock); no listener is called once the
 * source is closed (the registry checks before each call). */
static void dispatch(eventsource_t *es, const eventsource_event_t *ev) {
  es_listeners_dispatch(&es->listeners, es, ev, &es->closed);
}

/* The HTTP version and reuse of the response (0 and 0 when none began). */
static void response_version(const eventsource_t *es, eventsource_event_t *ev) {
  ev->http_version = (long)es_stat_load(&es->stats.v[EVENTSOURCE_STAT_HTTP_VERSION]);
  ev->conn_reused = (int)es_stat_load(&es->stats.v[EVENTSOURCE_STAT_CONNECTION_REUSED]);
}

/* A response began (it opened, or a transfer ended with one): its
 * statistics, the multi's count of connections, and the origin's gate. */
static void response_began(eventsource_t *es) {
  es_stats_response(&es->stats, es->tr.easy);
  uint64_t v = es_stat_load(&es->stats.v[EVENTSOURCE_STAT_HTTP_VERSION]);
  if (v && es->link.up && !es_stat_load(&es->stats.v[EVENTSOURCE_STAT_CONNECTION_REUSED]))
    es_stat_add(&es->link.up->v[EVENTSOURCE_MULTI_STAT_CONNECTIONS], 1);
  es_gate_response(es, (long)v);
}

static void notify_error(eventsource_t *es, int will_reconnect, long delay) {
  eventsource_event_t ev;
  size_t id_len;
  const char *id = es_parser_last_event_id(es->parser, &id_len);
  es_event_init(&ev, EVENTSOURCE_KIND_ERROR, id, id_len);
  ev.error = es->last.code;
  ev.http_status = es->last.status;
  ev.message = es->last.msg;
  ev.will_reconnect = will_reconnect;
  ev.reconnect_ms = will_reconnect ? delay : -1;
  ev.curl_code = es->last.curl_code;
  ev.resp = &es->tr.resp;
  response_version(es, &ev);
  dispatch(es, &ev);
}

/* Is the source closed, or one of the requests in ops queued (by a listener
 * or another thread)? */
static inline int asked(const eventsource_t *es, unsigned ops) {
  return es_is_closed(es) || (atomic_load(&((eventsource_t *)(uintptr_t)es)->ops) & ops);
}
#define close_asked(es) asked(es, ES_OP_CLOSE)
#define stop_asked(es) asked(es, ES_OP_CLOSE | ES_OP_RESTART)

/* Non-zero: stop parsing (closed, restarted or no longer open). */
static inline int stop_parsing(eventsource_t *es) {
  return es->phase != ES_OPEN || stop_asked(es);
}

/* ------------------------------------------------------------------------ */
/* The parser's callbacks                                                   */
/* ------------------------------------------------------------------------ */

/* A piece of body is parsed without cb_lock; the first callback that calls
 * a listener takes it (and sink_bytes() lets it go at the end of the piece),
 * so a piece that completes no event takes no lock. 0: the source is closed,
 * stop. */
static inline int hold(eventsource_t *es) {
  if (es->cb_held)
    return 1;
  if (!enter(es))
    return 0;
  es->cb_held = 1;
  return 1;
}

static int on_event(void *ctx, const char *type, size_t type_len,
                    const char *data, size_t data_len, const char *id,
                    size_t id_len) {
  eventsource_t *es = ctx;
  if (!hold(es))
    return 1;
  es->delivered = 1;
  /* The multi's total follows per piece of body (sink_bytes). */
  es_stat_add(&es->stats.v[EVENTSOURCE_STAT_EVENTS], 1);
  if (es->stats.first_due)
    es_stats_first_event(&es->stats);
  eventsource_event_t ev;
  es_event_init(&ev, EVENTSOURCE_KIND_MESSAGE, id, id_len);
  ev.type = type;
  ev.type_len = type_len;
  ev.data = data;
  ev.data_len = data_len;
  dispatch(es, &ev);
  return stop_parsing(es);
}

static int on_retry(void *ctx, uint64_t ms) {
  eventsource_t *es = ctx;
  /* As sent (max-retry bounds the backoff only), up to the sanity ceiling. */
  es->retry_ms = es_retry_capped(ms, es->opt.max_server_retry_ms);
  return 0;
}

static int on_comment(void *ctx, const char *text, size_t len) {
  eventsource_t *es = ctx;
  if (!hold(es))
    return 1;
  es_stat_bump(&es->stats, es->link.up, COMMENTS, 1);
  eventsource_event_t ev;
  size_t id_len;
  const char *id = es_parser_last_event_id(es->parser, &id_len);
  es_event_init(&ev, EVENTSOURCE_KIND_COMMENT, id, id_len);
  ev.data = text;
  ev.data_len = len;
  dispatch(es, &ev);
  return stop_parsing(es);
}

static int on_parse_error(void *ctx, eventsource_error_t code,
                          const char *message) {
  eventsource_t *es = ctx;
  if (!hold(es))
    return 1;
  /* TOO_LARGE drops an event, but for an id: over its limit (the field
   * alone is ignored), told by its message (lib/parser.h). */
  if (code == EVENTSOURCE_ERR_TOO_LARGE && message != es_parser_msg_id)
    es_stat_bump(&es->stats, es->link.up, DROPPED, 1);
  es_set_error(es, code, 0, 0, "%s", message);
  notify_error(es, 0, -1);
  return stop_parsing(es);
}

const es_parser_callbacks es_source_parser_callbacks = {on_event, on_retry, on_comment,
                                                       on_parse_error};

/* ------------------------------------------------------------------------ */
/* The transfer's sink (inside libcurl's callbacks)                         */
/* ------------------------------------------------------------------------ */

int es_source_opened(eventsource_t *es, uint64_t now) {
  es->phase = ES_OPEN;
  es->opened_at = now;
  es->delivered = 0;
  es_stat_bump(&es->stats, es->link.up, OPENS, 1);
  response_began(es);
  es_set_ready_state(es, EVENTSOURCE_OPEN);
  if (enter(es)) {
    eventsource_event_t ev;
    size_t id_len;
    const char *id = es_parser_last_event_id(es->parser, &id_len);
    es_event_init(&ev, EVENTSOURCE_KIND_OPEN, id, id_len);
    ev.resp = &es->tr.resp;
    response_version(es, &ev);
    dispatch(es, &ev);
    leave(es);
  }
  return !stop_parsing(es);
}

static int sink_opened(void *ctx) { return es_source_opened(ctx, es_now_ms()); }

static int sink_bytes(void *ctx, const char *buf, size_t len) {
  eventsource_t *es = ctx;
  if (stop_parsing(es))
    return ES_PARSER_STOPPED;
  es->cb_held = 0;
  es_mstats *up = es->link.up;
  uint64_t events = es_stat_load(&es->stats.v[EVENTSOURCE_STAT_EVENTS]);
  es_stat_bump(&es->stats, up, BYTES, len);
  int rc = es_parser_feed(es->parser, buf, len);
  /* The events of this piece, in the multi's total at once (on_event
   * counts only the source's: one add per event). */
  if (up)
    es_stat_add(&up->v[EVENTSOURCE_MULTI_STAT_EVENTS],
                es_stat_load(&es->stats.v[EVENTSOURCE_STAT_EVENTS]) - events);
  if (es->cb_held) {
    es->cb_held = 0;
    leave(es);
  }
  return rc;
}

const es_transfer_sink es_source_sink = {sink_opened, sink_bytes};

/* ------------------------------------------------------------------------ */
/* The states                                                               */
/* ------------------------------------------------------------------------ */

/* The source is finished: CLOSED. */
static es_next finish(eventsource_t *es, eventsource_error_t why) {
  es->phase = ES_DONE;
  es->close_reason = why;
  atomic_store(&es->closed, 1);
  es_set_ready_state(es, EVENTSOURCE_CLOSED);
  es_next n = {ES_GO_DONE, 1, 0, NULL};
  return n;
}

/* Fails the connection (HTML: "fail the connection"): CLOSED, then error. The
 * notification is made while the source is still open to listeners. */
static es_next fail(eventsource_t *es, eventsource_error_t why) {
  es->phase = ES_DONE;
  es_set_ready_state(es, EVENTSOURCE_CLOSED);
  if (enter(es)) {
    notify_error(es, 0, -1);
    leave(es);
  }
  return finish(es, why);
}

/* Starts one request of the current attempt: the first, or a redirect's
 * next hop. */
static es_next start_request(eventsource_t *es, uint64_t now) {
  if (close_asked(es))
    return NOTHING;
  es->phase = ES_TRANSFER;
  es_set_ready_state(es, EVENTSOURCE_CONNECTING);
  es_response_reset(&es->tr.resp); /* an error from here on has no response */
  if (es->opt.prepare_fn) {
    int rc = 0;
    if (enter(es)) {
      rc = es->opt.prepare_fn(es, es->attempt + 1, es->opt.prepare_ud);
      leave(es);
    }
    if (close_asked(es))
      return NOTHING; /* closed from the hook: the queued close follows */
    if (rc != 0) {
      es_set_error(es, EVENTSOURCE_ERR_CALLBACK, 0, 0,
                   "the prepare callback refused the connection (returned %d)", rc);
      return fail(es, EVENTSOURCE_ERR_CALLBACK);
    }
  }
  size_t id_len;
  const char *id = es_parser_last_event_id(es->parser, &id_len);
  eventsource_error_t rc = es_transfer_prepare(&es->tr, id, id_len, now);
  if (rc == EVENTSOURCE_OK)
    rc = es_http_setup(es); /* before the user's hook, which may change it */
  if (rc)
    return fail(es, rc);
  if (es->opt.curl_fn) {
    CURLcode cc = CURLE_OK;
    if (enter(es)) {
      cc = es->opt.curl_fn(es, es->tr.easy, es->opt.curl_ud);
      leave(es);
    }
    if (close_asked(es))
      return NOTHING;
    if (cc != CURLE_OK) {
      es_set_error(es, EVENTSOURCE_ERR_CURL, 0, (int)cc, "the curl callback failed: %s",
                   curl_easy_strerror(cc));
      return fail(es, EVENTSOURCE_ERR_CURL);
    }
  }
  rc = es_transfer_finish_setup(&es->tr);
  if (rc)
    return fail(es, rc);
  es_parser_reset(es->parser);
  es_stat_bump(&es->stats, es->link.up, REQUESTS, 1);
  es_stats_request(&es->stats);
  es_next n = {ES_GO_ADD, 0, 0, es->tr.easy};
  if (es->opt.read_timeout_ms > 0)
    n.at = now + (uint64_t)es->opt.read_timeout_ms;
  return n;
}

es_next es_source_connect(eventsource_t *es, uint64_t now) {
  es_stat_bump(&es->stats, es->link.up, ATTEMPTS, 1);
  es_transfer_new_attempt(&es->tr);
  return start_request(es, now);
}

es_next es_source_add_failed(eventsource_t *es, uint64_t now) {
  es_set_error(es, EVENTSOURCE_ERR_CURL, 0, 0, "curl_multi_add_handle failed");
  return fail(es, EVENTSOURCE_ERR_CURL);
}

/* The connection ended with why: ask the policy, then reestablish or fail. */
static es_next connection_ended(eventsource_t *es, eventsource_error_t why,
                                uint64_t now) {
  es->attempt = es_next_attempt(es->attempt, es->phase == ES_OPEN, es->delivered,
                                es->opened_at, now, es->opt.backoff_reset_ms);
  es_parser_finish(es->parser);
  /* The spec reestablishes after a clean end too; reconnect_on_end 0 makes
   * that end final (an answer to a POST must not be asked for again). */
  int ended = why == EVENTSOURCE_ERR_EOF && !es->opt.reconnect_on_end;
  int def = es_default_reconnect(why) && !ended;
  if (ended)
    es_set_error(es, why, 0, 0, "the server ended the stream (reconnect on end is off)");
  int reconnect = def;
  long delay = es_backoff_delay(es->retry_ms, es->opt.max_retry_ms, es->attempt,
                                es->opt.jitter, es_random_next(&es->rnd));
  if (!es->tr.open) {
    /* A refused response's Retry-After is the least wait it asks for (the
     * policy sees it as the default delay). */
    long ra = es_retry_after_ms(es_response_header(&es->tr.resp, "Retry-After"),
                                es_wall_ms(), es->opt.max_retry_after_ms);
    if (ra > delay)
      delay = ra;
  }
  if (es->opt.policy_fn) {
    if (enter(es)) {
      es->opt.policy_fn(es, why, es->last.status, es->attempt, &reconnect, &delay,
                        es->opt.policy_ud);
      leave(es);
    }
    if (delay < 0)
      delay = 0;
    if (delay > ES_MAX_DELAY_MS)
      delay = ES_MAX_DELAY_MS;
  }
  if (close_asked(es))
    return NOTHING;
  if (!reconnect) {
    /* A policy that stops what the default would reestablish is POLICY. */
    return fail(es, def ? EVENTSOURCE_ERR_POLICY : why);
  }
  /* Reestablish the connection (HTML 9.2.3): CONNECTING, error, wait. */
  es->phase = ES_WAITING;
  es_set_ready_state(es, EVENTSOURCE_CONNECTING);
  if (enter(es)) {
    notify_error(es, 1, delay);
    leave(es);
  }
  if (close_asked(es))
    return NOTHING; /* closed from the error listener: the queued close follows */
  es_next n = {ES_GO_TIMER, 0, now + (uint64_t)delay, NULL};
  return n;
}

es_next es_source_refused(eventsource_t *es, long limit, uint64_t now) {
  es_set_error(es, EVENTSOURCE_ERR_CONNECTION_LIMIT, 0, 0,
               "no connection to %s can be had: the multi handle allows %ld per host, "
               "all in use", es_transfer_url(&es->tr), limit);
  return connection_ended(es, EVENTSOURCE_ERR_CONNECTION_LIMIT, now);
}

es_next es_source_transfer_done(eventsource_t *es, CURLcode result, uint64_t now) {
  if (stop_asked(es))
    return NOTHING; /* the queued op takes over */
  eventsource_error_t why = EVENTSOURCE_OK;
  if (!es->tr.open)
    response_began(es); /* a refused response, if any */
  if (es_transfer_end(&es->tr, result, &why) == ES_TRANSFER_REDIRECT)
    return start_request(es, now); /* the next hop of the same attempt */
  return connection_ended(es, why, now);
}

es_next es_source_deadline(eventsource_t *es, uint64_t now) {
  es_next n = {ES_GO_TIMER, 0, 0, NULL};
  if (stop_asked(es)) {
    /* a queued close or restart takes over: no deadline until then */
  } else if (es->phase == ES_WAITING) {
    es_stat_bump(&es->stats, es->link.up, RECONNECTS, 1);
    n.go = ES_GO_CONNECT;
  } else if ((es->phase == ES_TRANSFER || es->phase == ES_OPEN) &&
             es->opt.read_timeout_ms > 0) {
    uint64_t due = es_transfer_activity(&es->tr) + (uint64_t)es->opt.read_timeout_ms;
    if (due > now) {
      n.at = due; /* data came in meanwhile */
    } else if (es->tr.fail) {
      /* a refused response whose body stopped coming: the refusal stands */
      n = connection_ended(es, es->tr.fail, now);
      n.drop = 1;
    } else {
      es_set_error(es, EVENTSOURCE_ERR_READ_TIMEOUT, 0, 0, "no data for %ld ms",
                   es->opt.read_timeout_ms);
      n = connection_ended(es, EVENTSOURCE_ERR_READ_TIMEOUT, now);
      n.drop = 1;
    }
  }
  return n;
}

int es_source_note_failure(eventsource_t *es, eventsource_error_t code,
                           const char *msg) {
  /* A refused response whose body is being kept fails with its refusal. */
  if (es->tr.fail && !es->tr.keep_body)
    return 0;
  if (!es->tr.fail) {
    es->tr.fail = code;
    es_set_error(es, code, 0, 0, "%s", msg);
  }
  es->tr.keep_body = 0;
  return 1;
}

es_next es_source_ops(eventsource_t *es, unsigned ops, uint64_t now) {
  if ((ops & ES_OP_CLOSE) || es_is_closed(es)) {
    if (es->phase == ES_DONE && es->close_reason) {
      es_next n = {ES_GO_DONE, 1, 0, NULL}; /* failed already */
      return n;
    }
    return finish(es, atomic_load(&es->user_closed) ? EVENTSOURCE_OK : es->close_reason);
  }
  if (ops & (ES_OP_FAIL | ES_OP_RESTART)) {
    if (es->phase == ES_DONE)
      return NOTHING;
    /* A restart is no failure, and it ends a connection that may have been
     * a success: then the backoff starts over. */
    if (es->phase == ES_OPEN &&
        es_next_attempt(es->attempt, 1, es->delivered, es->opened_at, now,
                        es->opt.backoff_reset_ms) == 1)
      es->attempt = 0;
    es_parser_finish(es->parser);
    if (ops & ES_OP_FAIL) {
      es_next n = fail(es, es->tr.fail ? es->tr.fail : EVENTSOURCE_ERR_CALLBACK);
      return n;
    }
    es_next n = {ES_GO_CONNECT, 1, 0, NULL}; /* restart: no error, no backoff */
    return n;
  }
  if ((ops & ES_OP_START) && es->phase == ES_IDLE) {
    es_next n = {ES_GO_CONNECT, 0, 0, NULL};
    return n;
  }
  return NOTHING;
}

int es_source_can_join(const eventsource_t *es) {
  return !es_is_closed(es) && es->phase != ES_DONE;
}

void es_source_joined(eventsource_t *es) { es->phase = ES_IDLE; }

void es_source_left(eventsource_t *es) {
  if (es->phase != ES_DONE)
    es->phase = ES_IDLE;
}
