/*
 * source.c - the connection's state machine (WHATWG HTML 9.2.2-9.2.4).
 *
 * Flow: multi.c starts a transfer (es_source_connect); libcurl's header
 * callback validates the response and announces the connection; the write
 * callback feeds the parser, whose callbacks dispatch events; when the
 * transfer ends multi.c calls es_source_transfer_done, which decides, with
 * the policy, between reestablishing the connection and failing it.
 */
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "os.h"
#include "policy.h"

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                 */
/* ------------------------------------------------------------------------ */

/* Every notification goes through here; nothing is dispatched once closed.
 * (eventsource_free() and eventsource_close() tell that they run inside a
 * callback from the multi's step, es_multi_in_step().) */
void es_source_dispatch(eventsource_t *es, const eventsource_event_t *ev) {
  if (es_is_closed(es))
    return;
  es_listeners_dispatch(&es->listeners, es, ev, es_is_closed);
}

static void notify_error(eventsource_t *es, int will_reconnect, long delay) {
  eventsource_event_t ev;
  size_t id_len;
  const char *id = es_parser_last_event_id(es->parser, &id_len);
  es_event_init(&ev, EVENTSOURCE_KIND_ERROR, id, id_len);
  ev.error = es->last_error;
  ev.http_status = es->last_status;
  ev.message = es->last_msg;
  ev.will_reconnect = will_reconnect;
  ev.reconnect_ms = will_reconnect ? delay : -1;
  ev.curl_code = es->last_curl_code;
  es_source_dispatch(es, &ev);
}

/* ------------------------------------------------------------------------ */
/* Parser callbacks                                                         */
/* ------------------------------------------------------------------------ */

/* Non-zero stops the parser: the source was closed or restarted from a
 * listener, so the rest of the chunk belongs to nobody. */
int es_source_stop_parsing(eventsource_t *es) {
  return es_is_closed(es) || (es->ops & (ES_OP_RESTART | ES_OP_CLOSE)) ||
         es->phase != ES_OPEN;
}

static int on_event(void *ctx, const char *type, size_t type_len,
                    const char *data, size_t data_len, const char *id,
                    size_t id_len) {
  eventsource_t *es = ctx;
  es->delivered = 1;
  eventsource_event_t ev;
  es_event_init(&ev, EVENTSOURCE_KIND_MESSAGE, id, id_len);
  ev.type = type;
  ev.type_len = type_len;
  ev.data = data;
  ev.data_len = data_len;
  es_source_dispatch(es, &ev);
  return es_source_stop_parsing(es);
}

static int on_retry(void *ctx, uint64_t ms) {
  eventsource_t *es = ctx;
  es->retry_ms = es_retry_capped(ms, es->max_retry_ms);
  return 0;
}

static int on_comment(void *ctx, const char *text, size_t len) {
  eventsource_t *es = ctx;
  eventsource_event_t ev;
  size_t id_len;
  const char *id = es_parser_last_event_id(es->parser, &id_len);
  es_event_init(&ev, EVENTSOURCE_KIND_COMMENT, id, id_len);
  ev.data = text;
  ev.data_len = len;
  es_source_dispatch(es, &ev);
  return es_source_stop_parsing(es);
}

static int on_parse_error(void *ctx, eventsource_error_t code,
                          const char *message) {
  eventsource_t *es = ctx;
  es_set_error(es, code, 0, 0, "%s", message);
  notify_error(es, 0, -1);
  return es_source_stop_parsing(es);
}

const es_parser_callbacks es_source_parser_callbacks = {on_event, on_retry, on_comment,
                                                       on_parse_error};

int es_source_opened(eventsource_t *es) {
  es->phase = ES_OPEN;
  es->opened_at = es_now_ms();
  es->delivered = 0;
  es_set_ready_state(es, EVENTSOURCE_OPEN);
  eventsource_event_t ev;
  size_t id_len;
  const char *id = es_parser_last_event_id(es->parser, &id_len);
  es_event_init(&ev, EVENTSOURCE_KIND_OPEN, id, id_len);
  es_source_dispatch(es, &ev);
  return !es_source_stop_parsing(es);
}

/* The source is finished: CLOSED, out of the deadline heap. */
static void finish(eventsource_t *es, eventsource_error_t why) {
  es->phase = ES_DONE;
  es->close_reason = why;
  atomic_store(&es->closed, 1);
  es_set_ready_state(es, EVENTSOURCE_CLOSED);
  if (es->multi) {
    es_multi_set_deadline(es->multi, es, 0);
    es_multi_source_closed(es->multi, es);
  }
}

/* Fails the connection (HTML: "fail the connection"): CLOSED, then error. The
 * notification is made while the source is still open to listeners. */
static void fail(eventsource_t *es, eventsource_error_t why) {
  es->phase = ES_DONE;
  es_set_ready_state(es, EVENTSOURCE_CLOSED);
  pthread_mutex_lock(&es->cb_lock);
  notify_error(es, 0, -1);
  pthread_mutex_unlock(&es->cb_lock);
  finish(es, why);
}

/* Starts one request of the current attempt: the first, or a redirect's
 * next hop (req_url, hop_get and hop_foreign already set). */
static void start_request(eventsource_t *es) {
  eventsource_multi_t *m = es->multi;
  es_multi_set_deadline(m, es, 0);
  es->phase = ES_TRANSFER;
  es_set_ready_state(es, EVENTSOURCE_CONNECTING);
  es->pending_fail = EVENTSOURCE_OK;
  es->pending_redirect = 0;
  es->resp_status = 0;
  es->resp_type_ok = 0;
  es->resp_headers_done = 0;
  es->resp_encoding_bad = 0;
  es->curl_errbuf[0] = '\0';
  if (es->prepare_fn) {
    pthread_mutex_lock(&es->cb_lock);
    int rc = es_is_closed(es) ? 0 : es->prepare_fn(es, es->attempt + 1, es->prepare_ud);
    pthread_mutex_unlock(&es->cb_lock);
    if (es_is_closed(es) || (es->ops & ES_OP_CLOSE))
      return; /* closed from the hook; the queued close finishes it */
    if (rc != 0) {
      es_set_error(es, EVENTSOURCE_ERR_CALLBACK, 0, 0,
                "the prepare callback refused the connection (returned %d)", rc);
      fail(es, EVENTSOURCE_ERR_CALLBACK);
      return;
    }
  }
  if (!es->easy) {
    es->easy = curl_easy_init();
    if (!es->easy) {
      es_set_error(es, EVENTSOURCE_ERR_CURL, 0, 0, "curl_easy_init failed");
      fail(es, EVENTSOURCE_ERR_CURL);
      return;
    }
  }
  eventsource_error_t rc = es_transfer_build(es);
  if (rc) {
    fail(es, rc);
    return;
  }
  if (es->curl_fn) {
    pthread_mutex_lock(&es->cb_lock);
    CURLcode cc = es_is_closed(es) ? CURLE_OK : es->curl_fn(es, es->easy, es->curl_ud);
    pthread_mutex_unlock(&es->cb_lock);
    if (es_is_closed(es) || (es->ops & ES_OP_CLOSE))
      return;
    if (cc != CURLE_OK) {
      es_set_error(es, EVENTSOURCE_ERR_CURL, 0, (int)cc,
                "the curl callback failed: %s", curl_easy_strerror(cc));
      fail(es, EVENTSOURCE_ERR_CURL);
      return;
    }
  }
  CURLcode cc = es_transfer_drop_foreign_credentials(es);
  if (cc != CURLE_OK) {
    es_set_error(es, EVENTSOURCE_ERR_CURL, 0, (int)cc, "libcurl: %s", curl_easy_strerror(cc));
    fail(es, EVENTSOURCE_ERR_CURL);
    return;
  }
  es_parser_reset(es->parser);
  if (es_multi_add_easy(m, es) != 0) {
    es_set_error(es, EVENTSOURCE_ERR_CURL, 0, 0, "curl_multi_add_handle failed");
    fail(es, EVENTSOURCE_ERR_CURL);
    return;
  }
  atomic_store(&es->last_activity, es_now_ms());
  if (es->read_timeout_ms > 0)
    es_multi_set_deadline(m, es, es_now_ms() + (uint64_t)es->read_timeout_ms);
}

void es_source_connect(eventsource_t *es) {
  /* A new attempt starts at the URL the user gave. */
  es_free(es->req_url);
  es->req_url = NULL;
  es->hops = 0;
  es->hop_get = 0;
  es->hop_foreign = 0;
  start_request(es);
}

void es_source_drop_transfer(eventsource_t *es) {
  if (es->in_multi_curl && es->multi)
    es_multi_remove_easy(es->multi, es);
  if (es->multi)
    es_multi_set_deadline(es->multi, es, 0);
}

/* The connection ended with why: ask the policy, then reestablish or fail. */
static void connection_ended(eventsource_t *es, eventsource_error_t why) {
  uint64_t now = es_now_ms();
  es->attempt = es_next_attempt(es->attempt, es->phase == ES_OPEN, es->delivered,
                                es->opened_at, now, es->backoff_reset_ms);
  es_parser_finish(es->parser);
  int reconnect = es_default_reconnect(why);
  long delay = es_backoff_delay(es->retry_ms, es->max_retry_ms, es->attempt,
                                es->jitter, es_multi_random(es->multi));
  if (es->policy_fn) {
    pthread_mutex_lock(&es->cb_lock);
    if (!es_is_closed(es))
      es->policy_fn(es, why, es->last_status, es->attempt, &reconnect, &delay,
                    es->policy_ud);
    pthread_mutex_unlock(&es->cb_lock);
    if (delay < 0)
      delay = 0;
    if (delay > ES_MAX_DELAY_MS)
      delay = ES_MAX_DELAY_MS;
  }
  if (es_is_closed(es) || (es->ops & ES_OP_CLOSE))
    return;
  if (!reconnect) {
    if (es_default_reconnect(why)) {
      /* The policy stopped a connection the spec would reestablish. */
      fail(es, EVENTSOURCE_ERR_POLICY);
    } else {
      fail(es, why);
    }
    return;
  }
  /* Reestablish the connection (HTML 9.2.3): CONNECTING, error, wait. */
  es->phase = ES_WAITING;
  es_set_ready_state(es, EVENTSOURCE_CONNECTING);
  es_multi_set_deadline(es->multi, es, now + (uint64_t)delay);
  pthread_mutex_lock(&es->cb_lock);
  notify_error(es, 1, delay);
  pthread_mutex_unlock(&es->cb_lock);
}



void es_source_transfer_done(eventsource_t *es, CURLcode result) {
  es_source_drop_transfer(es);
  if (es_is_closed(es) || (es->ops & (ES_OP_CLOSE | ES_OP_RESTART)))
    return; /* the queued op takes over */
  if (es->pending_redirect) {
    start_request(es); /* the next hop of the same attempt */
    return;
  }
  eventsource_error_t why;
  if (es->pending_fail) {
    why = es->pending_fail;
  } else if (result == CURLE_OK) {
    if (es->phase == ES_OPEN) {
      why = EVENTSOURCE_ERR_EOF;
      es_set_error(es, why, 0, 0, "the server ended the stream");
    } else {
      /* Finished without a response we could validate. */
      why = EVENTSOURCE_ERR_HTTP_STATUS;
      es_set_error(es, why, es->resp_status, 0, "HTTP status %ld (expected 200)",
                es->resp_status);
    }
  } else {
    why = es_transfer_classify(es, result);
  }
  connection_ended(es, why);
}

void es_source_read_timeout(eventsource_t *es) {
  es_source_drop_transfer(es);
  es_set_error(es, EVENTSOURCE_ERR_READ_TIMEOUT, 0, 0,
            "no data for %ld ms", es->read_timeout_ms);
  connection_ended(es, EVENTSOURCE_ERR_READ_TIMEOUT);
}

void es_source_apply_close(eventsource_t *es) {
  es_source_drop_transfer(es);
  if (es->phase != ES_DONE || !es->close_reason)
    finish(es, es->user_closed ? EVENTSOURCE_OK : es->close_reason);
}

void es_source_queue_fail(eventsource_t *es, eventsource_error_t code,
                          const char *msg) {
  if (es->pending_fail)
    return;
  es->pending_fail = code;
  es_set_error(es, code, 0, 0, "%s", msg);
  es_multi_queue(es->multi, es, ES_OP_FAIL);
}

void es_source_apply_fail(eventsource_t *es) {
  if (es_is_closed(es) || es->phase == ES_DONE)
    return;
  es_source_drop_transfer(es);
  es_parser_finish(es->parser);
  fail(es, es->pending_fail ? es->pending_fail : EVENTSOURCE_ERR_CALLBACK);
}

void es_source_apply_restart(eventsource_t *es) {
  if (es_is_closed(es) || es->phase == ES_DONE)
    return;
  es_source_drop_transfer(es);
  es_parser_finish(es->parser);
  es_source_connect(es);
}
