/*
 * eventsource_libevent.h - drive an eventsource_multi_t from a libevent 2
 * event_base.
 *
 * Copyright (c) 2026 the libeventsource developers. MIT licence, see COPYING.
 *
 * Header-only: every function is static inline; link the program with
 * libevent (-levent, or -levent_core) and libeventsource. The adapter
 * installs the multi's socket and timer callbacks: each descriptor the multi
 * announces gets a persistent struct event (found again through
 * eventsource_multi_assign(), so every update is O(1)), and the multi's
 * timer is one timer event. Listeners run inside the base's callbacks.
 *
 *   eventsource_libevent_t *a = eventsource_libevent_attach(m, base);
 *   eventsource_multi_add(m, es1); ...
 *   while (eventsource_multi_active(m) > 0)
 *     event_base_loop(base, EVLOOP_ONCE);
 *   eventsource_multi_free(m);
 *   eventsource_libevent_detach(a);
 *
 * Keeping the loop alive
 *             While attached, the multi's wakeup descriptor (used by
 *             eventsource_close() and eventsource_multi_wakeup() from other
 *             threads, and by eventsource_multi_add() outside the loop's
 *             callbacks) is always registered: libevent has no way to watch
 *             an event without counting it, and dropping it would lose
 *             wakeups. So event_base_dispatch() does not return by itself
 *             while a multi is attached: loop as above, or call
 *             event_base_loopexit() / event_base_loopbreak() when done.
 * Ownership   eventsource_libevent_attach() returns a context the adapter
 *             owns; eventsource_libevent_detach() hands it back. Events are
 *             freed at once (libevent allows it, also from their callbacks).
 * Lifetime    The multi calls the adapter until it is freed, the last time
 *             from inside eventsource_multi_free(). Either order works:
 *             multi free then detach (usual), or detach then multi free (the
 *             multi is no longer driven after detach and must only be freed;
 *             the context is freed when both happened).
 * Threads     Everything here on the thread running the base's loop, never
 *             from a listener or hook. Other threads use eventsource_close(),
 *             eventsource_restart() and eventsource_multi_wakeup().
 * Errors      eventsource_libevent_attach() returns NULL when m or base is
 *             NULL, m already has sources or callbacks, or memory or
 *             libevent failed. Errors met while driving the multi cannot be
 *             returned from libevent callbacks: the first is kept and read
 *             with eventsource_libevent_error().
 */
#ifndef EVENTSOURCE_LIBEVENT_H
#define EVENTSOURCE_LIBEVENT_H

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "eventsource.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eventsource_libevent eventsource_libevent_t;

/* One watched descriptor (private). */
typedef struct eventsource_libevent_sock_ {
  struct event *ev;
  eventsource_libevent_t *ctx;
  int fd;
  short what; /* EV_READ / EV_WRITE now registered */
  struct eventsource_libevent_sock_ *prev, *next;
} eventsource_libevent_sock_;

struct eventsource_libevent {
  /* Private. */
  eventsource_multi_t *multi; /* NULL once the multi was freed */
  struct event_base *base;
  struct event *timer;
  eventsource_libevent_sock_ *socks;
  int wakefd;
  int detached;
  eventsource_error_t error;
};

static inline void eventsource_libevent_free_sock_(eventsource_libevent_sock_ *s) {
  eventsource_libevent_t *a = s->ctx;
  if (s->prev)
    s->prev->next = s->next;
  else
    a->socks = s->next;
  if (s->next)
    s->next->prev = s->prev;
  if (s->ev)
    event_free(s->ev);
  free(s);
}

static inline void eventsource_libevent_maybe_free_(eventsource_libevent_t *a) {
  if (a->detached && !a->multi) {
    while (a->socks)
      eventsource_libevent_free_sock_(a->socks);
    if (a->timer)
      event_free(a->timer);
    free(a);
  }
}

static inline void eventsource_libevent_step_(eventsource_libevent_t *a,
                                              eventsource_error_t rc) {
  if (rc != EVENTSOURCE_OK && a->error == EVENTSOURCE_OK)
    a->error = rc;
}

static inline void eventsource_libevent_sock_cb_(evutil_socket_t fd, short events, void *arg) {
  eventsource_libevent_sock_ *s = (eventsource_libevent_sock_ *)arg;
  eventsource_libevent_t *a = s->ctx;
  if (a->detached || !a->multi)
    return;
  int what = ((events & EV_READ) ? EVENTSOURCE_POLL_IN : 0) |
             ((events & EV_WRITE) ? EVENTSOURCE_POLL_OUT : 0);
  /* s may be freed during the call; a stays. */
  eventsource_libevent_step_(a, eventsource_multi_socket_action(a->multi, (int)fd, what));
}

static inline void eventsource_libevent_timer_cb_(evutil_socket_t fd, short events,
                                                  void *arg) {
  eventsource_libevent_t *a = (eventsource_libevent_t *)arg;
  (void)fd;
  (void)events;
  if (a->detached || !a->multi)
    return;
  eventsource_libevent_step_(a, eventsource_multi_timeout(a->multi));
}

static inline int eventsource_libevent_socket_cb_(eventsource_multi_t *m, int fd, int what,
                                                  void *userdata, void *socketp) {
  eventsource_libevent_t *a = (eventsource_libevent_t *)userdata;
  eventsource_libevent_sock_ *s = (eventsource_libevent_sock_ *)socketp;
  if (what & EVENTSOURCE_POLL_REMOVE) {
    if (s)
      eventsource_libevent_free_sock_(s);
    if (fd == a->wakefd) {
      /* Only eventsource_multi_free() removes the wakeup descriptor. */
      a->multi = NULL;
      if (a->timer)
        event_del(a->timer);
      eventsource_libevent_maybe_free_(a);
    }
    return 0;
  }
  if (a->detached || !a->multi)
    return 0;
  short ev = (short)(((what & EVENTSOURCE_POLL_IN) ? EV_READ : 0) |
                     ((what & EVENTSOURCE_POLL_OUT) ? EV_WRITE : 0));
  if (!s) {
    s = (eventsource_libevent_sock_ *)calloc(1, sizeof *s);
    if (!s)
      return -1;
    s->ctx = a;
    s->fd = fd;
    s->ev = event_new(a->base, fd, (short)(ev | EV_PERSIST), eventsource_libevent_sock_cb_, s);
    if (!s->ev) {
      free(s);
      return -1;
    }
    s->next = a->socks;
    if (a->socks)
      a->socks->prev = s;
    a->socks = s;
    if (a->wakefd < 0)
      a->wakefd = fd; /* announced first, from eventsource_libevent_attach() */
    if (eventsource_multi_assign(m, fd, s) != EVENTSOURCE_OK) {
      eventsource_libevent_free_sock_(s);
      return -1;
    }
  } else if (s->what == ev) {
    return 0;
  } else {
    /* event_assign() needs a non-pending event. */
    event_del(s->ev);
    if (event_assign(s->ev, a->base, fd, (short)(ev | EV_PERSIST),
                     eventsource_libevent_sock_cb_, s) != 0)
      return -1;
  }
  s->what = ev;
  if (!ev)
    return 0;
  return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

static inline int eventsource_libevent_timer_fn_(eventsource_multi_t *m, long timeout_ms,
                                                 void *userdata) {
  eventsource_libevent_t *a = (eventsource_libevent_t *)userdata;
  (void)m;
  if (a->detached || !a->multi)
    return 0;
  if (timeout_ms < 0)
    return event_del(a->timer) == 0 ? 0 : -1;
  struct timeval tv;
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  return evtimer_add(a->timer, &tv) == 0 ? 0 : -1;
}

/* Attaches m to base: installs m's socket and timer callbacks. Call it
 * before the first source is added to m. Returns the adapter's context, or
 * NULL (m or base NULL, m already has sources or callbacks, out of memory,
 * libevent failed). Loop thread; not from a callback. */
static inline eventsource_libevent_t *eventsource_libevent_attach(eventsource_multi_t *m,
                                                                  struct event_base *base) {
  if (!m || !base)
    return NULL;
  eventsource_libevent_t *a = (eventsource_libevent_t *)calloc(1, sizeof *a);
  if (!a)
    return NULL;
  a->multi = m;
  a->base = base;
  a->wakefd = -1;
  a->timer = evtimer_new(base, eventsource_libevent_timer_cb_, a);
  if (!a->timer) {
    free(a);
    return NULL;
  }
  if (eventsource_multi_set_socket_callback(m, eventsource_libevent_socket_cb_, a) !=
      EVENTSOURCE_OK) {
    a->multi = NULL; /* m keeps no callback of ours */
    a->detached = 1;
    eventsource_libevent_maybe_free_(a);
    return NULL;
  }
  if (eventsource_multi_set_timer_callback(m, eventsource_libevent_timer_fn_, a) !=
      EVENTSOURCE_OK) {
    /* Cannot happen (m has no source, or the socket callback would have
     * been refused); if it did, m keeps a until it is freed. */
    a->detached = 1;
    return NULL;
  }
  return a;
}

/* Stops driving the multi and releases the context: the adapter's events
 * are freed at once, the context too when the multi is already freed (else
 * when it is; see Lifetime). NULL does nothing. Loop thread; not from a
 * callback. */
static inline void eventsource_libevent_detach(eventsource_libevent_t *a) {
  if (!a || a->detached)
    return;
  a->detached = 1;
  if (a->multi) {
    /* The multi may call back for these descriptors until it is freed:
     * make it pass NULL rather than a freed pointer. */
    for (eventsource_libevent_sock_ *s = a->socks; s; s = s->next)
      eventsource_multi_assign(a->multi, s->fd, NULL);
    while (a->socks)
      eventsource_libevent_free_sock_(a->socks);
    event_del(a->timer);
  }
  eventsource_libevent_maybe_free_(a);
}

/* The first error met while driving the multi (EVENTSOURCE_ERR_CURL when
 * libcurl failed), EVENTSOURCE_OK when none. Loop thread. */
static inline eventsource_error_t
eventsource_libevent_error(const eventsource_libevent_t *a) {
  return a ? a->error : EVENTSOURCE_ERR_INVALID_ARGUMENT;
}

#ifdef __cplusplus
}
#endif

#endif /* EVENTSOURCE_LIBEVENT_H */
