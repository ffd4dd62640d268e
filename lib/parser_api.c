/*
 * parser_api.c - the public streaming parser (include/eventsource_parser.h).
 *
 * A thin wrapper over the client's own parser (parser.c, parser_id.c), not
 * a second parser: it adds the public conventions (error codes, one
 * userdata per callback, the parser handed to each callback), the stopped
 * state after a stop or a failed allocation, and the refusal of feed,
 * finish, reset and free from inside a callback. Nothing here runs per
 * byte: the trampolines run once per event, retry:, comment or error.
 */
#include <string.h>

#include "alloc.h"
#include "eventsource_parser.h"
#include "parser.h"

struct eventsource_parser {
  es_parser *p;
  eventsource_parser_event_fn on_event;
  void *event_ud;
  eventsource_parser_retry_fn on_retry;
  void *retry_ud;
  eventsource_parser_comment_fn on_comment;
  void *comment_ud;
  eventsource_parser_error_fn on_error;
  void *error_ud;
  size_t max_line, max_event, max_id;
  /* Inside es_parser_feed/finish/reset, whose callbacks call the user: the
   * re-entrant calls that would pull the parser from under them are
   * refused. */
  unsigned char busy;
  /* A feed stopped (a callback) or failed (NOMEM) part-way: the rest of its
   * bytes were not parsed, so the stream cannot go on until a reset. */
  unsigned char stopped;
  /* Nothing fed since new, reset or finish: a limit set now applies at once
   * (es_parser_set_limits() defers it to the next line or event, and for a
   * stream not yet begun only a reset makes it current). */
  unsigned char fresh;
};

static int t_event(void *ctx, const char *type, size_t type_len, const char *data,
                   size_t data_len, const char *id, size_t id_len) {
  eventsource_parser_t *ep = ctx;
  if (!ep->on_event)
    return 0;
  return ep->on_event(ep, type, type_len, data, data_len, id, id_len, ep->event_ud) != 0;
}

static int t_retry(void *ctx, uint64_t ms) {
  eventsource_parser_t *ep = ctx;
  return ep->on_retry ? ep->on_retry(ep, ms, ep->retry_ud) != 0 : 0;
}

static int t_comment(void *ctx, const char *text, size_t len) {
  eventsource_parser_t *ep = ctx;
  return ep->on_comment ? ep->on_comment(ep, text, len, ep->comment_ud) != 0 : 0;
}

static int t_error(void *ctx, eventsource_error_t code, const char *message) {
  eventsource_parser_t *ep = ctx;
  return ep->on_error ? ep->on_error(ep, code, message, ep->error_ud) != 0 : 0;
}

static const es_parser_callbacks trampolines = {t_event, t_retry, t_comment, t_error};

eventsource_error_t eventsource_parser_new(eventsource_parser_t **out) {
  if (!out)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  eventsource_parser_t *ep = es_calloc(1, sizeof *ep);
  if (!ep)
    return EVENTSOURCE_ERR_NOMEM;
  ep->max_line = EVENTSOURCE_DEFAULT_MAX_LINE;
  ep->max_event = EVENTSOURCE_DEFAULT_MAX_EVENT;
  ep->max_id = EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID;
  ep->p = es_parser_new(&trampolines, ep, ep->max_line, ep->max_event);
  if (!ep->p) {
    es_free(ep);
    return EVENTSOURCE_ERR_NOMEM;
  }
  es_parser_set_max_id(ep->p, ep->max_id);
  ep->fresh = 1;
  *out = ep;
  return EVENTSOURCE_OK;
}

void eventsource_parser_free(eventsource_parser_t *ep) {
  if (!ep || ep->busy)
    return;
  es_parser_free(ep->p);
  es_free(ep);
}

eventsource_error_t eventsource_parser_set_event_callback(eventsource_parser_t *ep,
                                                          eventsource_parser_event_fn fn,
                                                          void *userdata) {
  if (!ep)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  ep->on_event = fn;
  ep->event_ud = userdata;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_parser_set_retry_callback(eventsource_parser_t *ep,
                                                          eventsource_parser_retry_fn fn,
                                                          void *userdata) {
  if (!ep)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  ep->on_retry = fn;
  ep->retry_ud = userdata;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_parser_set_comment_callback(eventsource_parser_t *ep,
                                                            eventsource_parser_comment_fn fn,
                                                            void *userdata) {
  if (!ep)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  ep->on_comment = fn;
  ep->comment_ud = userdata;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_parser_set_error_callback(eventsource_parser_t *ep,
                                                          eventsource_parser_error_fn fn,
                                                          void *userdata) {
  if (!ep)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  ep->on_error = fn;
  ep->error_ud = userdata;
  return EVENTSOURCE_OK;
}

static void apply_limits(eventsource_parser_t *ep) {
  es_parser_set_limits(ep->p, ep->max_line, ep->max_event);
  if (ep->fresh && !ep->busy)
    es_parser_reset(ep->p); /* nothing held: only makes the limits current */
}

eventsource_error_t eventsource_parser_set_max_line(eventsource_parser_t *ep, size_t bytes) {
  if (!ep)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  ep->max_line = bytes;
  apply_limits(ep);
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_parser_set_max_event(eventsource_parser_t *ep, size_t bytes) {
  if (!ep)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  ep->max_event = bytes;
  apply_limits(ep);
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_parser_set_max_last_event_id(eventsource_parser_t *ep,
                                                             size_t bytes) {
  if (!ep)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  ep->max_id = bytes;
  es_parser_set_max_id(ep->p, bytes);
  return EVENTSOURCE_OK;
}

const char *eventsource_parser_last_event_id(const eventsource_parser_t *ep, size_t *len) {
  if (!ep) {
    if (len)
      *len = 0;
    return "";
  }
  return es_parser_last_event_id(ep->p, len);
}

eventsource_error_t eventsource_parser_set_last_event_id(eventsource_parser_t *ep,
                                                         const char *id) {
  if (!ep)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (!id)
    id = "";
  if (strpbrk(id, "\r\n"))
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  size_t len = strlen(id);
  if (ep->max_id && len > ep->max_id)
    return EVENTSOURCE_ERR_TOO_LARGE;
  /* the parser keeps the id lent to a running event callback intact */
  return es_parser_set_last_event_id(ep->p, id, len) == 0 ? EVENTSOURCE_OK
                                                          : EVENTSOURCE_ERR_NOMEM;
}

eventsource_error_t eventsource_parser_feed(eventsource_parser_t *ep, const char *buf,
                                            size_t len) {
  if (!ep || (!buf && len))
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (ep->busy || ep->stopped)
    return EVENTSOURCE_ERR_STATE;
  if (!len)
    return EVENTSOURCE_OK;
  ep->busy = 1;
  ep->fresh = 0;
  int r = es_parser_feed(ep->p, buf, len);
  ep->busy = 0;
  if (r == ES_PARSER_OK)
    return EVENTSOURCE_OK;
  ep->stopped = 1;
  return r == ES_PARSER_STOPPED ? EVENTSOURCE_ERR_CALLBACK : EVENTSOURCE_ERR_NOMEM;
}

/* finish and reset: the internal parser treats them alike (the spec drops
 * the incomplete event at the end of the stream). */
static eventsource_error_t end_stream(eventsource_parser_t *ep, void (*fn)(es_parser *)) {
  if (!ep)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (ep->busy)
    return EVENTSOURCE_ERR_STATE;
  ep->busy = 1; /* a possible BOM held back may still meet the line limit */
  fn(ep->p);
  ep->busy = 0;
  ep->stopped = 0;
  ep->fresh = 1;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_parser_finish(eventsource_parser_t *ep) {
  return end_stream(ep, es_parser_finish);
}

eventsource_error_t eventsource_parser_reset(eventsource_parser_t *ep) {
  return end_stream(ep, es_parser_reset);
}
