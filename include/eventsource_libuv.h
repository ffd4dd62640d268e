/*
 * eventsource_libuv.h - drive an eventsource_multi_t from a libuv loop.
 *
 * Copyright (c) 2026 the libeventsource developers. MIT licence, see COPYING.
 *
 * Header-only: every function is static inline; link the program with libuv
 * (-luv) and libeventsource. The adapter installs the multi's socket and
 * timer callbacks: each descriptor the multi announces gets a uv_poll_t
 * (found again through eventsource_multi_assign(), so every update is O(1)),
 * and the multi's timer is one uv_timer_t. Listeners run inside the loop's
 * callbacks, on the loop's thread.
 *
 *   eventsource_libuv_t *a = eventsource_libuv_attach(m, loop);   before
 *   eventsource_multi_add(m, es1); ...                            adding
 *   uv_run(loop, UV_RUN_DEFAULT);      returns once every source is CLOSED
 *   eventsource_multi_free(m);
 *   eventsource_libuv_detach(a);
 *   uv_run(loop, UV_RUN_DEFAULT);      runs the close callbacks
 *
 * Keeping the loop alive
 *             The adapter's handles keep the loop alive while the multi has
 *             an active source (one not CLOSED or removed) or a timer: a
 *             uv_run(UV_RUN_DEFAULT) returns once every source is closed and
 *             nothing else of yours is alive. The multi's wakeup descriptor
 *             (used by eventsource_close() and eventsource_multi_wakeup() from
 *             other threads) is watched all the time but only referenced
 *             while sources are active. Sources added from a callback of the
 *             running loop start at once; sources added while the loop is not
 *             running are started by the next uv_run() only if the loop has
 *             something else alive at that point, or if they are added right
 *             after attaching (the adapter schedules one first step).
 * Ownership   eventsource_libuv_attach() returns a context the adapter owns;
 *             eventsource_libuv_detach() hands it back. The adapter closes
 *             its handles with uv_close() and frees the context from the
 *             last close callback, so the loop must run once more after
 *             detaching (and before uv_loop_close()).
 * Lifetime    The multi calls the adapter until it is freed, the last time
 *             from inside eventsource_multi_free(). Either order works:
 *             multi free then detach (usual), or detach then multi free (the
 *             multi is no longer driven after detach and must only be freed;
 *             the context is released after both happened).
 * Threads     Everything here on the loop's thread, never from a listener or
 *             hook. Other threads use eventsource_close(),
 *             eventsource_restart() and eventsource_multi_wakeup(), which
 *             wake the loop.
 * Errors      eventsource_libuv_attach() returns NULL when m is NULL, already
 *             has sources or callbacks, or memory or libuv failed.
 *             Errors met while driving the multi (libcurl failures) cannot be
 *             returned from libuv callbacks: the first is kept and read with
 *             eventsource_libuv_error().
 */
#ifndef EVENTSOURCE_LIBUV_H
#define EVENTSOURCE_LIBUV_H

#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "eventsource.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eventsource_libuv eventsource_libuv_t;

/* One watched descriptor (private). */
typedef struct eventsource_libuv_sock_ {
  uv_poll_t poll;
  eventsource_libuv_t *ctx;
  int fd;
  struct eventsource_libuv_sock_ *prev, *next;
} eventsource_libuv_sock_;

struct eventsource_libuv {
  /* Private. */
  eventsource_multi_t *multi; /* NULL once the multi was freed */
  uv_loop_t *loop;
  uv_timer_t timer;
  eventsource_libuv_sock_ *socks; /* open uv_poll_t handles */
  eventsource_libuv_sock_ *wake;  /* the one for the multi's wakeup fd */
  int wakefd;
  unsigned handles;               /* ours, open or closing, the timer included */
  int detached;
  int timer_closing;
  eventsource_error_t error;
};

static inline void eventsource_libuv_maybe_free_(eventsource_libuv_t *a) {
  if (a->detached && !a->multi && a->handles == 0)
    free(a);
}

static inline void eventsource_libuv_sock_closed_(uv_handle_t *h) {
  eventsource_libuv_sock_ *s = (eventsource_libuv_sock_ *)h->data;
  eventsource_libuv_t *a = s->ctx;
  free(s);
  a->handles--;
  eventsource_libuv_maybe_free_(a);
}

static inline void eventsource_libuv_timer_closed_(uv_handle_t *h) {
  eventsource_libuv_t *a = (eventsource_libuv_t *)h->data;
  a->handles--;
  eventsource_libuv_maybe_free_(a);
}

static inline void eventsource_libuv_close_sock_(eventsource_libuv_sock_ *s) {
  eventsource_libuv_t *a = s->ctx;
  if (s->prev)
    s->prev->next = s->next;
  else
    a->socks = s->next;
  if (s->next)
    s->next->prev = s->prev;
  if (a->wake == s)
    a->wake = NULL;
  uv_close((uv_handle_t *)&s->poll, eventsource_libuv_sock_closed_);
}

/* The timer is the last handle to go: closed once detached and the multi is
 * freed, so the context is always freed from a close callback, never from
 * inside a call of the multi. */
static inline void eventsource_libuv_close_timer_(eventsource_libuv_t *a) {
  if (a->detached && !a->multi && !a->timer_closing) {
    a->timer_closing = 1;
    uv_close((uv_handle_t *)&a->timer, eventsource_libuv_timer_closed_);
  }
}

/* After each step: reference the wakeup handle only while sources are
 * active, so that the loop ends when the multi has nothing left to do. */
static inline void eventsource_libuv_after_step_(eventsource_libuv_t *a,
                                                 eventsource_error_t rc) {
  if (rc != EVENTSOURCE_OK && a->error == EVENTSOURCE_OK)
    a->error = rc;
  if (!a->wake || !a->multi)
    return;
  if (eventsource_multi_active(a->multi) > 0)
    uv_ref((uv_handle_t *)&a->wake->poll);
  else
    uv_unref((uv_handle_t *)&a->wake->poll);
}

static inline void eventsource_libuv_poll_cb_(uv_poll_t *h, int status, int events) {
  eventsource_libuv_sock_ *s = (eventsource_libuv_sock_ *)h->data;
  eventsource_libuv_t *a = s->ctx;
  if (a->detached || !a->multi)
    return;
  int what = 0;
  if (status < 0) {
    what = EVENTSOURCE_POLL_IN | EVENTSOURCE_POLL_OUT; /* libcurl finds the error */
  } else {
    if (events & (UV_READABLE | UV_DISCONNECT))
      what |= EVENTSOURCE_POLL_IN;
    if (events & UV_WRITABLE)
      what |= EVENTSOURCE_POLL_OUT;
  }
  /* s may be closed during the call (its memory lives until the close
   * callback); a lives until detached. */
  eventsource_libuv_after_step_(a, eventsource_multi_socket_action(a->multi, s->fd, what));
}

static inline void eventsource_libuv_timer_cb_(uv_timer_t *t) {
  eventsource_libuv_t *a = (eventsource_libuv_t *)t->data;
  if (a->detached || !a->multi)
    return;
  eventsource_libuv_after_step_(a, eventsource_multi_timeout(a->multi));
}

static inline int eventsource_libuv_socket_cb_(eventsource_multi_t *m, int fd, int what,
                                               void *userdata, void *socketp) {
  eventsource_libuv_t *a = (eventsource_libuv_t *)userdata;
  eventsource_libuv_sock_ *s = (eventsource_libuv_sock_ *)socketp;
  if (what & EVENTSOURCE_POLL_REMOVE) {
    if (s)
      eventsource_libuv_close_sock_(s);
    if (fd == a->wakefd) {
      /* Only eventsource_multi_free() removes the wakeup descriptor. */
      a->multi = NULL;
      uv_timer_stop(&a->timer);
      eventsource_libuv_close_timer_(a);
    }
    return 0;
  }
  if (a->detached || !a->multi)
    return 0;
  int events = ((what & EVENTSOURCE_POLL_IN) ? UV_READABLE : 0) |
               ((what & EVENTSOURCE_POLL_OUT) ? UV_WRITABLE : 0);
  if (!s) {
    s = (eventsource_libuv_sock_ *)calloc(1, sizeof *s);
    if (!s)
      return -1;
    if (uv_poll_init_socket(a->loop, &s->poll, fd) != 0) {
      free(s); /* a failed init leaves nothing in the loop */
      return -1;
    }
    s->poll.data = s;
    s->ctx = a;
    s->fd = fd;
    s->next = a->socks;
    if (a->socks)
      a->socks->prev = s;
    a->socks = s;
    a->handles++;
    if (a->wakefd < 0) {
      /* Announced first, from eventsource_libuv_attach(). */
      a->wakefd = fd;
      a->wake = s;
    }
    if (eventsource_multi_assign(m, fd, s) != EVENTSOURCE_OK) {
      eventsource_libuv_close_sock_(s);
      return -1;
    }
  }
  if (!events)
    return uv_poll_stop(&s->poll) == 0 ? 0 : -1;
  return uv_poll_start(&s->poll, events, eventsource_libuv_poll_cb_) == 0 ? 0 : -1;
}

static inline int eventsource_libuv_timer_fn_(eventsource_multi_t *m, long timeout_ms,
                                              void *userdata) {
  eventsource_libuv_t *a = (eventsource_libuv_t *)userdata;
  (void)m;
  if (a->detached || !a->multi)
    return 0;
  if (timeout_ms < 0)
    return uv_timer_stop(&a->timer) == 0 ? 0 : -1;
  /* The loop's clock is cached at the start of each iteration. */
  uv_update_time(a->loop);
  return uv_timer_start(&a->timer, eventsource_libuv_timer_cb_, (uint64_t)timeout_ms, 0) == 0
             ? 0
             : -1;
}

static inline void eventsource_libuv_detach(eventsource_libuv_t *a);

/* Attaches m to loop: installs m's socket and timer callbacks. Call it
 * before the first source is added to m. Returns the adapter's context, or
 * NULL (m NULL or loop NULL, m already has sources or callbacks, out of
 * memory, libuv failed). Loop thread; not from a callback. */
static inline eventsource_libuv_t *eventsource_libuv_attach(eventsource_multi_t *m,
                                                            uv_loop_t *loop) {
  if (!m || !loop)
    return NULL;
  eventsource_libuv_t *a = (eventsource_libuv_t *)calloc(1, sizeof *a);
  if (!a)
    return NULL;
  a->multi = m;
  a->loop = loop;
  a->wakefd = -1;
  if (eventsource_multi_set_socket_callback(m, eventsource_libuv_socket_cb_, a) !=
      EVENTSOURCE_OK) {
    /* m keeps no callback of ours. The wakeup handle, if one was opened,
     * is closed asynchronously and frees a from its close callback. */
    a->multi = NULL;
    a->detached = 1;
    while (a->socks)
      eventsource_libuv_close_sock_(a->socks);
    if (a->handles == 0)
      free(a);
    return NULL;
  }
  uv_timer_init(loop, &a->timer); /* cannot fail on Unix */
  a->timer.data = a;
  a->handles++;
  if (eventsource_multi_set_timer_callback(m, eventsource_libuv_timer_fn_, a) !=
      EVENTSOURCE_OK) {
    /* Cannot happen (the socket callback was accepted, so m has no source);
     * if it did, m keeps a until it is freed. */
    eventsource_libuv_detach(a);
    return NULL;
  }
  /* One first step, so that sources added before uv_run() start. */
  uv_timer_start(&a->timer, eventsource_libuv_timer_cb_, 0, 0);
  return a;
}

/* Stops driving the multi and releases the context: every handle of the
 * adapter is closed with uv_close() and the context is freed from the last
 * close callback, once the multi is freed too (see Lifetime). The loop must
 * run afterwards for the close callbacks. NULL does nothing.
 * Loop thread; not from a callback. */
static inline void eventsource_libuv_detach(eventsource_libuv_t *a) {
  if (!a || a->detached)
    return;
  a->detached = 1;
  uv_timer_stop(&a->timer);
  while (a->socks) {
    /* The multi may call back for these descriptors later (until it is
     * freed): make it pass NULL rather than a freed pointer. */
    if (a->multi)
      eventsource_multi_assign(a->multi, a->socks->fd, NULL);
    eventsource_libuv_close_sock_(a->socks);
  }
  eventsource_libuv_close_timer_(a);
}

/* The first error met while driving the multi (EVENTSOURCE_ERR_CURL when
 * libcurl failed), EVENTSOURCE_OK when none. Loop thread. */
static inline eventsource_error_t eventsource_libuv_error(const eventsource_libuv_t *a) {
  return a ? a->error : EVENTSOURCE_ERR_INVALID_ARGUMENT;
}

#ifdef __cplusplus
}
#endif

#endif /* EVENTSOURCE_LIBUV_H */
