/*
 * drive.c - running a multi handle's steps: the built-in wait
 * (eventsource_multi_poll/run, on lib/loop.h) and the application's own
 * event loop (socket and timer callbacks, eventsource_multi_socket_action and
 * eventsource_multi_timeout). Both feed libcurl's multi_socket interface and
 * wrap it in a step (multi.c), which applies what follows from it.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "loop.h"
#include "multi_int.h"
#include "os.h"

/* If libcurl ever declares the whole multi dead (CURLM_ABORTED_BY_CALLBACK;
 * our socket callback no longer returns errors, but a future libcurl might),
 * libcurl 7.88 crashes in the next curl_multi_socket_action(): stop calling
 * it. Failures are remembered with libcurl's message for es_multi_error(). */
static CURLMcode socket_action(eventsource_multi_t *m, curl_socket_t fd, int flags) {
  int running;
  if (m->curl_dead)
    return CURLM_ABORTED_BY_CALLBACK;
  m->now = es_now_ms(); /* the transfers' clock for the callbacks that follow */
  CURLMcode mc = curl_multi_socket_action(m->cm, fd, flags, &running);
  if (mc == CURLM_ABORTED_BY_CALLBACK)
    m->curl_dead = 1;
  if (mc != CURLM_OK)
    snprintf(m->error, sizeof m->error, "curl_multi_socket_action: %s (CURLMcode %d)",
             curl_multi_strerror(mc), (int)mc);
  return mc;
}

const char *es_multi_error(const eventsource_multi_t *m) { return m->error; }

struct ready_ctx {
  eventsource_multi_t *m;
  eventsource_error_t rc;
};

/* A descriptor the built-in loop found ready (es_loop_wait). */
static void on_ready(int fd, unsigned ready, void *userdata) {
  struct ready_ctx *ctx = userdata;
  eventsource_multi_t *m = ctx->m;
  if (fd == m->wakefd) {
    es_multi_drain_wakeup(m);
    return;
  }
  int flags = ((ready & ES_LOOP_IN) ? CURL_CSELECT_IN : 0) |
              ((ready & ES_LOOP_OUT) ? CURL_CSELECT_OUT : 0) |
              ((ready & ES_LOOP_ERR) ? CURL_CSELECT_ERR : 0);
  if (socket_action(m, fd, flags) != CURLM_OK)
    ctx->rc = EVENTSOURCE_ERR_CURL;
}

eventsource_error_t eventsource_multi_poll(eventsource_multi_t *m, int timeout_ms) {
  if (!m)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (m->sock_fn || m->timer_fn || m->in_step)
    return EVENTSOURCE_ERR_STATE;
  es_multi_begin_step(m);
  es_multi_settle(m);
  uint64_t now = es_now_ms();
  uint64_t at = es_multi_next_deadline(m, now);
  int wait;
  if (es_multi_has_pending(m))
    wait = 0;
  else if (at == NO_DEADLINE)
    wait = timeout_ms;
  else {
    uint64_t d = at <= now ? 0 : at - now;
    if (d > INT32_MAX)
      d = INT32_MAX;
    wait = timeout_ms >= 0 && (uint64_t)timeout_ms < d ? timeout_ms : (int)d;
  }
  struct ready_ctx ctx = {m, EVENTSOURCE_OK};
  int werr = es_loop_wait(m->loop, wait, on_ready, &ctx);
  eventsource_error_t rc = ctx.rc;
  if (werr) {
    snprintf(m->error, sizeof m->error, "waiting with %s: %s", es_loop_backend_name(),
             strerror(werr));
    rc = EVENTSOURCE_ERR_SYSTEM;
  }
  long ct = -1;
  if (curl_multi_timeout(m->cm, &ct) == CURLM_OK && ct == 0)
    if (socket_action(m, CURL_SOCKET_TIMEOUT, 0) != CURLM_OK)
      rc = EVENTSOURCE_ERR_CURL;
  es_multi_end_step(m);
  return rc;
}

eventsource_error_t eventsource_multi_run(eventsource_multi_t *m) {
  if (!m)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  while (m->nactive > 0 || es_multi_has_pending(m)) {
    eventsource_error_t rc = eventsource_multi_poll(m, -1);
    if (rc)
      return rc;
  }
  return EVENTSOURCE_OK;
}

/* ------------------------------------------------------------------------ */
/* Driving from the application's loop                                       */
/* ------------------------------------------------------------------------ */

eventsource_error_t eventsource_multi_set_socket_callback(eventsource_multi_t *m,
                                                          eventsource_socket_fn fn,
                                                          void *userdata) {
  if (!m || !fn)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (m->nsources || m->sock_fn)
    return EVENTSOURCE_ERR_STATE;
  m->sock_fn = fn;
  m->sock_ud = userdata;
  if (fn(m, m->wakefd, EVENTSOURCE_POLL_IN, userdata, NULL) != 0) {
    m->sock_fn = NULL;
    return EVENTSOURCE_ERR_CALLBACK;
  }
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_multi_set_timer_callback(eventsource_multi_t *m,
                                                         eventsource_timer_fn fn,
                                                         void *userdata) {
  if (!m || !fn)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (m->nsources)
    return EVENTSOURCE_ERR_STATE;
  m->timer_fn = fn;
  m->timer_ud = userdata;
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_multi_assign(eventsource_multi_t *m, int fd,
                                             void *socketp) {
  if (!m || fd < 0)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (fd == m->wakefd) {
    m->wake_socketp = socketp;
    return EVENTSOURCE_OK;
  }
  return curl_multi_assign(m->cm, fd, socketp) == CURLM_OK ? EVENTSOURCE_OK
                                                           : EVENTSOURCE_ERR_NOT_FOUND;
}

eventsource_error_t eventsource_multi_socket_action(eventsource_multi_t *m, int fd,
                                                    int events) {
  if (!m || fd < 0 || m->in_step)
    return m && m->in_step ? EVENTSOURCE_ERR_STATE : EVENTSOURCE_ERR_INVALID_ARGUMENT;
  es_multi_begin_step(m);
  eventsource_error_t rc = EVENTSOURCE_OK;
  if (fd == m->wakefd) {
    es_multi_drain_wakeup(m);
  } else {
    int flags = ((events & EVENTSOURCE_POLL_IN) ? CURL_CSELECT_IN : 0) |
                ((events & EVENTSOURCE_POLL_OUT) ? CURL_CSELECT_OUT : 0);
    if (socket_action(m, fd, flags) != CURLM_OK)
      rc = EVENTSOURCE_ERR_CURL;
  }
  es_multi_end_step(m);
  return rc;
}

eventsource_error_t eventsource_multi_timeout(eventsource_multi_t *m) {
  if (!m)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (m->in_step)
    return EVENTSOURCE_ERR_STATE;
  es_multi_begin_step(m);
  m->timer_armed = 0;
  eventsource_error_t rc = EVENTSOURCE_OK;
  if (socket_action(m, CURL_SOCKET_TIMEOUT, 0) != CURLM_OK)
    rc = EVENTSOURCE_ERR_CURL;
  es_multi_end_step(m);
  return rc;
}
