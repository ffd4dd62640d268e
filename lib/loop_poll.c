/*
 * loop_poll.c - the portable loop backend: POSIX poll() and a self-pipe
 * (loop.h).
 *
 * The watched descriptors are kept packed in a pollfd array, with slot[fd]
 * (index + 1, 0 when unwatched) so that watching, changing and unwatching
 * are O(1) and never scan it; only poll() itself is O(n). fds[0] is always
 * the wakeup pipe. Unwatching only forgets the descriptor (poll() needs no
 * registration), so a descriptor libcurl closed before reporting it removed
 * is never touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "loop.h"

struct es_loop {
  int rd, wr;            /* the self-pipe: wakeup descriptor, its writing end */
  struct pollfd *fds;    /* watched, packed; fds[0] is rd */
  struct pollfd *ready;  /* scratch for one wait, as large as fds */
  size_t nfds, cap;
  size_t *slot;          /* slot[fd]: index in fds + 1, 0 if unwatched */
  size_t nslot;
};

const char *es_loop_backend_name(void) { return "poll"; }

static int set_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return errno;
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
    return errno;
  return 0;
}

static int grow_fds(es_loop *l) {
  if (l->nfds < l->cap)
    return 0;
  size_t n = l->cap ? l->cap * 2 : 16;
  if (n > SIZE_MAX / sizeof(struct pollfd))
    return ENOMEM;
  struct pollfd *f = es_realloc(l->fds, n * sizeof *f);
  if (!f)
    return ENOMEM;
  l->fds = f;
  /* ready grows with fds, so a wait never allocates. */
  f = es_realloc(l->ready, n * sizeof *f);
  if (!f)
    return ENOMEM; /* fds is larger than cap: harmless, cap stays */
  l->ready = f;
  l->cap = n;
  return 0;
}

static int grow_slot(es_loop *l, int fd) {
  if ((size_t)fd < l->nslot)
    return 0;
  size_t n = l->nslot ? l->nslot : 64;
  while (n <= (size_t)fd)
    n *= 2;
  if (n > SIZE_MAX / sizeof(size_t))
    return ENOMEM;
  size_t *s = es_realloc(l->slot, n * sizeof *s);
  if (!s)
    return ENOMEM;
  memset(s + l->nslot, 0, (n - l->nslot) * sizeof *s);
  l->slot = s;
  l->nslot = n;
  return 0;
}

static short poll_events(unsigned events) {
  return (short)(((events & ES_LOOP_IN) ? POLLIN : 0) | ((events & ES_LOOP_OUT) ? POLLOUT : 0));
}

/* Adds fd (not watched yet) to the table. */
static int add(es_loop *l, int fd, unsigned events) {
  int rc = grow_slot(l, fd);
  if (!rc)
    rc = grow_fds(l);
  if (rc)
    return rc;
  l->fds[l->nfds].fd = fd;
  l->fds[l->nfds].events = poll_events(events);
  l->fds[l->nfds].revents = 0;
  l->slot[fd] = ++l->nfds;
  return 0;
}

int es_loop_new(es_loop **out) {
  es_loop *l = es_calloc(1, sizeof *l);
  if (!l)
    return ENOMEM;
  int p[2];
  if (pipe(p) != 0) {
    int rc = errno;
    es_free(l);
    return rc;
  }
  l->rd = p[0];
  l->wr = p[1];
  int rc = set_flags(l->rd);
  if (!rc)
    rc = set_flags(l->wr);
  if (!rc)
    rc = add(l, l->rd, ES_LOOP_IN);
  if (rc) {
    es_loop_free(l);
    return rc;
  }
  *out = l;
  return 0;
}

void es_loop_free(es_loop *l) {
  if (!l)
    return;
  close(l->rd);
  close(l->wr);
  es_free(l->fds);
  es_free(l->ready);
  es_free(l->slot);
  es_free(l);
}

int es_loop_wakeup_fd(const es_loop *l) { return l->rd; }

int es_loop_wakeup(es_loop *l) {
  static const char one = 1;
  ssize_t n;
  do
    n = write(l->wr, &one, 1);
  while (n < 0 && errno == EINTR);
  /* EAGAIN: the pipe is full of wakeups, the loop will wake. */
  return n < 0 && errno != EAGAIN ? errno : 0;
}

void es_loop_drain(es_loop *l) {
  char buf[64];
  for (;;) {
    ssize_t n = read(l->rd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < (ssize_t)sizeof buf)
      return; /* empty (EAGAIN), or all there was */
  }
}

int es_loop_watch(es_loop *l, int fd, unsigned events) {
  if (fd < 0 || fd == l->rd)
    return EBADF;
  if ((size_t)fd < l->nslot && l->slot[fd]) {
    l->fds[l->slot[fd] - 1].events = poll_events(events);
    return 0;
  }
  return add(l, fd, events);
}

void es_loop_unwatch(es_loop *l, int fd) {
  if (fd < 0 || fd == l->rd || (size_t)fd >= l->nslot || l->slot[fd] == 0)
    return;
  size_t i = l->slot[fd] - 1, last = l->nfds - 1;
  l->slot[fd] = 0;
  if (i != last) {
    l->fds[i] = l->fds[last];
    l->slot[l->fds[i].fd] = i + 1;
  }
  l->nfds = last;
}

static unsigned ready_flags(short revents) {
  return ((revents & (POLLIN | POLLHUP)) ? ES_LOOP_IN : 0u) |
         ((revents & POLLOUT) ? ES_LOOP_OUT : 0u) |
         ((revents & (POLLERR | POLLNVAL)) ? ES_LOOP_ERR : 0u);
}

int es_loop_wait(es_loop *l, int timeout_ms, es_loop_ready_fn fn, void *userdata) {
  int n = poll(l->fds, (nfds_t)l->nfds, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : errno;
  /* Copied out first: fn may watch and unwatch, which reorders fds. */
  size_t k = 0;
  for (size_t i = 0; i < l->nfds && k < (size_t)n; i++)
    if (l->fds[i].revents)
      l->ready[k++] = l->fds[i];
  for (size_t i = 0; i < k; i++) {
    int fd = l->ready[i].fd;
    short rev = l->ready[i].revents;
    if (fd == l->rd) {
      fn(fd, ES_LOOP_IN, userdata);
      continue;
    }
    if ((size_t)fd >= l->nslot || l->slot[fd] == 0)
      continue; /* unwatched by an earlier fn of this wait */
    /* Not an open descriptor: whoever owned it closed it without telling
     * us. Forget it, or every poll() would return at once for it. */
    if (rev & POLLNVAL)
      es_loop_unwatch(l, fd);
    fn(fd, ready_flags(rev), userdata);
  }
  return 0;
}
