/*
 * eventsource_poll.h - drive an eventsource_multi_t with plain poll(2).
 *
 * Copyright (c) 2026 the libeventsource developers. MIT licence, see COPYING.
 *
 * Header-only: every function is static inline, nothing to link but
 * libeventsource itself. The adapter installs the multi's socket and timer
 * callbacks, keeps the descriptors they announce in a pollfd table (indexed
 * by descriptor, so every update is O(1)) and the one timer they ask for, and
 * turns what poll() reports into eventsource_multi_socket_action() and
 * eventsource_multi_timeout() calls. It is also the model to follow for
 * adapting any other event loop. For thousands of streams prefer
 * eventsource_multi_run() (epoll) or the libuv/libevent adapters: poll()
 * itself costs O(descriptors) per wait.
 *
 *   eventsource_multi_t *m;
 *   eventsource_poll_t p;
 *   eventsource_multi_new(&m);
 *   eventsource_poll_attach(&p, m);        before the first source is added
 *   eventsource_multi_add(m, es1); ...
 *   eventsource_poll_run(&p);              until every source is CLOSED
 *   eventsource_multi_free(m);
 *   eventsource_poll_detach(&p);
 *
 * Ownership   The caller owns the eventsource_poll_t (any storage) and the
 *             multi; the adapter owns the tables it allocates, freed by
 *             eventsource_poll_detach(). The struct's members are private.
 * Lifetime    The multi calls the adapter's callbacks until it is freed, the
 *             last time from inside eventsource_multi_free(). So free the
 *             multi first, then detach. Detaching first is allowed too (the
 *             multi is then no longer driven and must only be freed), but the
 *             eventsource_poll_t itself must stay valid until the multi is
 *             freed.
 * Threads     Every function here runs on the loop thread, and none from a
 *             listener or hook. Other threads wake the loop with
 *             eventsource_close(), eventsource_restart() or
 *             eventsource_multi_wakeup(): the multi's wakeup descriptor is in
 *             the table like the others.
 * Errors      eventsource_error_t as everywhere in the library. The adapter
 *             allocates only when a descriptor number larger than any before
 *             is announced; if that fails the socket callback reports failure
 *             to libcurl, which fails the transfers of the multi.
 * Needs       POSIX poll() and clock_gettime(CLOCK_MONOTONIC): compile with
 *             _POSIX_C_SOURCE >= 200809L (or _GNU_SOURCE / _DEFAULT_SOURCE).
 */
#ifndef EVENTSOURCE_POLL_H
#define EVENTSOURCE_POLL_H

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventsource.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eventsource_poll {
  /* Private: read them for debugging only. */
  eventsource_multi_t *multi; /* NULL once the multi was freed */
  struct pollfd *fds;         /* the descriptors being watched, packed */
  struct pollfd *ready;       /* scratch for one wait, as large as fds */
  size_t nfds, capfds;
  int *slot;                  /* slot[fd]: index in fds + 1, 0 if unwatched */
  size_t nslot;
  int wakefd;                 /* the multi's wakeup descriptor */
  int attached;
  int timer_set;
  uint64_t timer_at;          /* CLOCK_MONOTONIC ms */
} eventsource_poll_t;

static inline uint64_t eventsource_poll_now_ms_(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void eventsource_poll_forget_(eventsource_poll_t *p, int fd) {
  if (fd < 0 || (size_t)fd >= p->nslot || p->slot[fd] == 0)
    return;
  size_t i = (size_t)p->slot[fd] - 1, last = p->nfds - 1;
  p->slot[fd] = 0;
  if (i != last) {
    p->fds[i] = p->fds[last];
    p->slot[p->fds[i].fd] = (int)i + 1;
  }
  p->nfds = last;
}

/* Watches fd for events; 0, or -1 when a table could not grow. */
static inline int eventsource_poll_watch_(eventsource_poll_t *p, int fd, short events) {
  if ((size_t)fd >= p->nslot) {
    size_t n = p->nslot ? p->nslot : 64;
    while (n <= (size_t)fd)
      n *= 2;
    int *s = (int *)realloc(p->slot, n * sizeof *s);
    if (!s)
      return -1;
    memset(s + p->nslot, 0, (n - p->nslot) * sizeof *s);
    p->slot = s;
    p->nslot = n;
  }
  if (p->slot[fd]) {
    p->fds[p->slot[fd] - 1].events = events;
    return 0;
  }
  if (p->nfds == p->capfds) {
    size_t n = p->capfds ? p->capfds * 2 : 16;
    struct pollfd *f = (struct pollfd *)realloc(p->fds, n * sizeof *f);
    if (!f)
      return -1;
    p->fds = f;
    /* ready grows with fds, so a wait never needs to allocate. */
    f = (struct pollfd *)realloc(p->ready, n * sizeof *f);
    if (!f)
      return -1;
    p->ready = f;
    p->capfds = n;
  }
  p->fds[p->nfds].fd = fd;
  p->fds[p->nfds].events = events;
  p->fds[p->nfds].revents = 0;
  p->slot[fd] = (int)++p->nfds;
  return 0;
}

static inline int eventsource_poll_socket_cb_(eventsource_multi_t *m, int fd, int what,
                                              void *userdata, void *socketp) {
  eventsource_poll_t *p = (eventsource_poll_t *)userdata;
  (void)m;
  (void)socketp;
  if (p->wakefd < 0)
    p->wakefd = fd; /* announced first, from eventsource_poll_attach() */
  if (!p->attached)
    return 0;
  if (what & EVENTSOURCE_POLL_REMOVE) {
    eventsource_poll_forget_(p, fd);
    if (fd == p->wakefd)
      p->multi = NULL; /* only eventsource_multi_free() removes it */
    return 0;
  }
  short events = (short)(((what & EVENTSOURCE_POLL_IN) ? POLLIN : 0) |
                         ((what & EVENTSOURCE_POLL_OUT) ? POLLOUT : 0));
  if (!events) {
    eventsource_poll_forget_(p, fd);
    return 0;
  }
  return eventsource_poll_watch_(p, fd, events);
}

static inline int eventsource_poll_timer_cb_(eventsource_multi_t *m, long timeout_ms,
                                             void *userdata) {
  eventsource_poll_t *p = (eventsource_poll_t *)userdata;
  (void)m;
  if (timeout_ms < 0) {
    p->timer_set = 0;
  } else {
    p->timer_set = 1;
    p->timer_at = eventsource_poll_now_ms_() + (uint64_t)timeout_ms;
  }
  return 0;
}

/* Attaches p to m: installs m's socket and timer callbacks. Call it before
 * the first source is added to m. p needs no initialisation (it is
 * overwritten) and must stay at the same address while attached.
 * Errors: INVALID_ARGUMENT (p or m NULL), STATE (m already has sources or
 * socket callbacks), NOMEM. On failure p holds nothing to free.
 * Loop thread; not from a callback. */
static inline eventsource_error_t eventsource_poll_attach(eventsource_poll_t *p,
                                                          eventsource_multi_t *m) {
  if (!p || !m)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  memset(p, 0, sizeof *p);
  p->multi = m;
  p->wakefd = -1;
  p->attached = 1;
  eventsource_error_t rc =
      eventsource_multi_set_socket_callback(m, eventsource_poll_socket_cb_, p);
  if (rc == EVENTSOURCE_OK)
    rc = eventsource_multi_set_timer_callback(m, eventsource_poll_timer_cb_, p);
  if (rc != EVENTSOURCE_OK) {
    /* A failed set_socket_callback leaves m without callbacks; the timer
     * one cannot fail once the socket one succeeded (both check the same). */
    free(p->fds);
    free(p->ready);
    free(p->slot);
    memset(p, 0, sizeof *p);
    return rc == EVENTSOURCE_ERR_CALLBACK ? EVENTSOURCE_ERR_NOMEM : rc;
  }
  return EVENTSOURCE_OK;
}

/* Waits up to max_wait_ms (-1: no limit, 0: do not block) for one of the
 * multi's descriptors or its timer, then does the work that is ready: the
 * listeners of the sources concerned run inside this call. It returns
 * earlier than max_wait_ms when anything happened, a signal interrupted the
 * wait, or the multi's timer is due.
 * Errors: INVALID_ARGUMENT (p not attached, or its multi freed), SYSTEM
 * (poll() failed), CURL (libcurl failed). Loop thread; not from a callback. */
static inline eventsource_error_t eventsource_poll_once(eventsource_poll_t *p,
                                                        int max_wait_ms) {
  if (!p || !p->attached || !p->multi)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  int wait = max_wait_ms < 0 ? -1 : max_wait_ms;
  if (p->timer_set) {
    uint64_t now = eventsource_poll_now_ms_();
    uint64_t left = p->timer_at > now ? p->timer_at - now : 0;
    if (left > INT_MAX)
      left = INT_MAX;
    if (wait < 0 || (uint64_t)wait > left)
      wait = (int)left;
  }
  int n = poll(p->fds, (nfds_t)p->nfds, wait);
  if (n < 0)
    return errno == EINTR ? EVENTSOURCE_OK : EVENTSOURCE_ERR_SYSTEM;
  eventsource_error_t rc = EVENTSOURCE_OK, r;
  /* Each action may change the table: act on a copy of what was ready. */
  size_t nready = 0;
  for (size_t i = 0; i < p->nfds && nready < (size_t)n; i++)
    if (p->fds[i].revents)
      p->ready[nready++] = p->fds[i];
  for (size_t i = 0; i < nready && p->multi; i++) {
    int fd = p->ready[i].fd;
    short re = p->ready[i].revents;
    if ((size_t)fd >= p->nslot || !p->slot[fd])
      continue; /* removed by an earlier action */
    if (re & POLLNVAL) {
      /* Closed without a REMOVE: stop polling it rather than spin. */
      eventsource_poll_forget_(p, fd);
      continue;
    }
    int what = ((re & (POLLIN | POLLHUP | POLLERR)) ? EVENTSOURCE_POLL_IN : 0) |
               ((re & (POLLOUT | POLLERR)) ? EVENTSOURCE_POLL_OUT : 0);
    r = eventsource_multi_socket_action(p->multi, fd, what);
    if (r != EVENTSOURCE_OK && rc == EVENTSOURCE_OK)
      rc = r;
  }
  if (p->multi && p->timer_set && eventsource_poll_now_ms_() >= p->timer_at) {
    p->timer_set = 0; /* the multi asks again if it needs to */
    r = eventsource_multi_timeout(p->multi);
    if (r != EVENTSOURCE_OK && rc == EVENTSOURCE_OK)
      rc = r;
  }
  return rc;
}

/* Calls eventsource_poll_once(p, -1) until no source of the multi is active
 * (every one CLOSED or removed). Returns OK then, or the first error.
 * Errors as eventsource_poll_once(). Loop thread; not from a callback. */
static inline eventsource_error_t eventsource_poll_run(eventsource_poll_t *p) {
  if (!p || !p->attached || !p->multi)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  while (p->multi && eventsource_multi_active(p->multi) > 0) {
    eventsource_error_t rc = eventsource_poll_once(p, -1);
    if (rc != EVENTSOURCE_OK)
      return rc;
  }
  return EVENTSOURCE_OK;
}

/* Frees the adapter's tables; p may then be reused or freed (but see
 * Lifetime above: free the multi first). NULL or a detached p does nothing.
 * Loop thread; not from a callback. */
static inline void eventsource_poll_detach(eventsource_poll_t *p) {
  if (!p || !p->attached)
    return;
  free(p->fds);
  free(p->ready);
  free(p->slot);
  p->fds = p->ready = NULL;
  p->slot = NULL;
  p->nfds = p->capfds = p->nslot = 0;
  p->attached = 0;
  p->timer_set = 0;
  p->multi = NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* EVENTSOURCE_POLL_H */
