/*
 * loop_epoll.c - the loop backend for Linux: epoll and an eventfd (loop.h).
 *
 * Unwatching makes no system call: libcurl 7.88 closes the socket of a
 * transfer removed while connecting and only then reports it removed, when
 * the descriptor's number may already belong to another thread's new file.
 * Closing a descriptor takes it out of the epoll set by itself; a socket
 * that libcurl keeps open (a cached connection) stays in the set, marked
 * REMOVED in our table, and is deleted from the set when epoll first reports
 * it: then it is certainly still libcurl's open socket, because that is done
 * before anything of the wait calls back into libcurl.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "loop.h"

#define MAX_EVENTS 64

enum { FD_UNKNOWN = 0, FD_WATCHED, FD_REMOVED };

struct es_loop {
  int epfd;
  int wakefd;
  unsigned char *state; /* state[fd]: FD_*, for fd < nstate */
  size_t nstate;
};

const char *es_loop_backend_name(void) { return "epoll"; }

int es_loop_new(es_loop **out) {
  es_loop *l = es_calloc(1, sizeof *l);
  if (!l)
    return ENOMEM;
  int rc = 0;
  l->wakefd = -1;
  l->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (l->epfd < 0) {
    rc = errno;
    goto fail;
  }
  l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (l->wakefd < 0) {
    rc = errno;
    goto fail;
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.fd = l->wakefd;
  if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) != 0) {
    rc = errno;
    goto fail;
  }
  *out = l;
  return 0;
fail:
  if (l->wakefd >= 0)
    close(l->wakefd);
  if (l->epfd >= 0)
    close(l->epfd);
  es_free(l);
  return rc ? rc : EIO;
}

void es_loop_free(es_loop *l) {
  if (!l)
    return;
  close(l->epfd);
  close(l->wakefd);
  es_free(l->state);
  es_free(l);
}

int es_loop_wakeup_fd(const es_loop *l) { return l->wakefd; }

int es_loop_wakeup(es_loop *l) {
  uint64_t one = 1;
  ssize_t n;
  do
    n = write(l->wakefd, &one, sizeof one);
  while (n < 0 && errno == EINTR);
  /* EAGAIN: the counter is already non-zero, the loop will wake. */
  return n < 0 && errno != EAGAIN ? errno : 0;
}

void es_loop_drain(es_loop *l) {
  uint64_t v;
  while (read(l->wakefd, &v, sizeof v) < 0 && errno == EINTR)
    ;
}

static int grow(es_loop *l, int fd) {
  if ((size_t)fd < l->nstate)
    return 0;
  size_t n = l->nstate ? l->nstate : 64;
  while (n <= (size_t)fd)
    n *= 2;
  unsigned char *s = es_realloc(l->state, n);
  if (!s)
    return ENOMEM;
  memset(s + l->nstate, FD_UNKNOWN, n - l->nstate);
  l->state = s;
  l->nstate = n;
  return 0;
}

int es_loop_watch(es_loop *l, int fd, unsigned events) {
  if (fd < 0 || fd == l->wakefd)
    return EBADF;
  int rc = grow(l, fd);
  if (rc)
    return rc;
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = ((events & ES_LOOP_IN) ? EPOLLIN : 0u) | ((events & ES_LOOP_OUT) ? EPOLLOUT : 0u);
  ev.data.fd = fd;
  /* A descriptor we never added is added; one that is (or may still be) in
   * the set is modified; each falls back to the other. */
  int first = l->state[fd] == FD_UNKNOWN ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(l->epfd, first, fd, &ev) != 0) {
    int again = first == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if ((errno != EEXIST && errno != ENOENT) || epoll_ctl(l->epfd, again, fd, &ev) != 0)
      return errno;
  }
  l->state[fd] = FD_WATCHED;
  return 0;
}

void es_loop_unwatch(es_loop *l, int fd) {
  if (fd >= 0 && (size_t)fd < l->nstate && l->state[fd] == FD_WATCHED)
    l->state[fd] = FD_REMOVED; /* no system call: see the top of the file */
}

static unsigned ready_flags(uint32_t events) {
  return ((events & (EPOLLIN | EPOLLHUP)) ? ES_LOOP_IN : 0u) |
         ((events & EPOLLOUT) ? ES_LOOP_OUT : 0u) | ((events & EPOLLERR) ? ES_LOOP_ERR : 0u);
}

int es_loop_wait(es_loop *l, int timeout_ms, es_loop_ready_fn fn, void *userdata) {
  struct epoll_event evs[MAX_EVENTS];
  int n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : errno;
  /* First the sockets unwatched but still open, before fn can let libcurl
   * close them. */
  for (int i = 0; i < n; i++) {
    int fd = evs[i].data.fd;
    if (fd != l->wakefd && (size_t)fd < l->nstate && l->state[fd] == FD_REMOVED) {
      epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
      l->state[fd] = FD_UNKNOWN;
      evs[i].data.fd = -1;
    }
  }
  for (int i = 0; i < n; i++) {
    int fd = evs[i].data.fd;
    if (fd == l->wakefd)
      fn(fd, ES_LOOP_IN, userdata);
    else if (fd >= 0 && (size_t)fd < l->nstate && l->state[fd] == FD_WATCHED)
      fn(fd, ready_flags(evs[i].events), userdata);
  }
  return 0;
}
