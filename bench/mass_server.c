/*
 * mass_server.c - a loopback SSE server for many connections on one thread
 * (see mass_server.h).
 *
 * One thread waits in epoll for the listening socket, an eventfd (poked by
 * the other threads after they queue output) and every connection. All
 * shared state is behind one mutex; the thread never blocks while holding it
 * (sockets are non-blocking), so queuing from another thread is cheap. Waits
 * are a condition variable on CLOCK_MONOTONIC.
 */
#include "mass_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MASS_REQ_MAX 8192

static const char mass_ok[] = "HTTP/1.1 200 OK\r\n"
                              "Content-Type: text/event-stream\r\n"
                              "Cache-Control: no-cache\r\n"
                              "Connection: close\r\n\r\n";
static const char mass_404[] = "HTTP/1.1 404 Not Found\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 0\r\n"
                               "Connection: close\r\n\r\n";

struct mass_conn {
  int fd;
  int stream;      /* answered with 200: the connection is a stream */
  int close_after; /* close once the output is written (the 404) */
  int want_out;    /* EPOLLOUT requested */
  int dead;        /* closed; freed after the current batch of events */
  int id;          /* the number at the end of the path, or -1 */
  size_t index;    /* in mass_server.conns */
  size_t dirty;    /* index + 1 in mass_server.dirty, 0 when not there */
  struct mass_conn *next_dead;
  char req[MASS_REQ_MAX];
  size_t reqlen;
  char *out;
  size_t outpos, outlen, outcap;
};

struct mass_server {
  int lfd, efd, wfd, port;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stopping;
  struct mass_conn **conns;   /* every connection */
  size_t nconns, capconns;
  struct mass_conn **dirty;   /* those with output queued and not yet tried */
  size_t ndirty, capdirty;
  struct mass_conn **by_id;   /* the latest open stream of each id */
  size_t capid;
  struct mass_conn *dead;     /* closed, freed after the batch */
  int answered, open, closed;
};

/* Ids beyond this are not indexed (send() does not find them). */
#define MASS_MAX_ID (1 << 20)

static void *mass_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fprintf(stderr, "mass_server: out of memory\n");
    abort();
  }
  return q;
}

static void mass_poke(mass_server *s) {
  uint64_t one = 1;
  while (write(s->wfd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

/* ------------------------------------------------------------------------ */
/* Connections (the server thread, mutex held)                              */
/* ------------------------------------------------------------------------ */

static void mass_conn_close(mass_server *s, struct mass_conn *c, int by_client) {
  epoll_ctl(s->efd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  if (c->stream) {
    s->open--;
    if (by_client)
      s->closed++;
    pthread_cond_broadcast(&s->cv);
  }
  size_t last = s->nconns - 1;
  s->conns[c->index] = s->conns[last];
  s->conns[c->index]->index = c->index;
  s->nconns = last;
  if (c->dirty) {
    size_t i = c->dirty - 1, dl = s->ndirty - 1;
    s->dirty[i] = s->dirty[dl];
    s->dirty[i]->dirty = i + 1;
    s->ndirty = dl;
    c->dirty = 0;
  }
  if (c->id >= 0 && (size_t)c->id < s->capid && s->by_id[c->id] == c)
    s->by_id[c->id] = NULL;
  c->dead = 1;
  c->next_dead = s->dead;
  s->dead = c;
}

static void mass_free_dead(mass_server *s) {
  while (s->dead) {
    struct mass_conn *c = s->dead;
    s->dead = c->next_dead;
    free(c->out);
    free(c);
  }
}

static void mass_mark_dirty(mass_server *s, struct mass_conn *c) {
  if (c->dirty)
    return;
  if (s->ndirty == s->capdirty) {
    s->capdirty = s->capdirty ? s->capdirty * 2 : 64;
    s->dirty = mass_xrealloc(s->dirty, s->capdirty * sizeof *s->dirty);
  }
  s->dirty[s->ndirty++] = c;
  c->dirty = s->ndirty;
}

static void mass_queue(struct mass_conn *c, const void *bytes, size_t len,
                       int count) {
  size_t need = len * (size_t)count;
  if (c->outpos > 0 && c->outpos == c->outlen)
    c->outpos = c->outlen = 0;
  if (c->outlen + need > c->outcap) {
    if (c->outpos > 0) {
      memmove(c->out, c->out + c->outpos, c->outlen - c->outpos);
      c->outlen -= c->outpos;
      c->outpos = 0;
    }
    if (c->outlen + need > c->outcap) {
      size_t cap = c->outcap ? c->outcap : 256;
      while (cap < c->outlen + need)
        cap *= 2;
      c->out = mass_xrealloc(c->out, cap);
      c->outcap = cap;
    }
  }
  for (int i = 0; i < count; i++) {
    memcpy(c->out + c->outlen, bytes, len);
    c->outlen += len;
  }
}

/* Writes what the socket takes. Returns 0, or -1 if c was closed. */
static int mass_flush(mass_server *s, struct mass_conn *c) {
  while (c->outpos < c->outlen) {
    ssize_t n = send(c->fd, c->out + c->outpos, c->outlen - c->outpos,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c->outpos += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(s->efd, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = 1;
      }
      return 0;
    }
    mass_conn_close(s, c, 1);
    return -1;
  }
  c->outpos = c->outlen = 0;
  if (c->want_out) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(s->efd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = 0;
  }
  if (c->close_after) {
    mass_conn_close(s, c, 0);
    return -1;
  }
  return 0;
}

/* The request is complete: answer it. */
static void mass_answer(mass_server *s, struct mass_conn *c) {
  char path[256] = "";
  const char *sp = memchr(c->req, ' ', c->reqlen);
  if (sp) {
    const char *p = sp + 1, *end = c->req + c->reqlen;
    size_t n = 0;
    while (p < end && *p != ' ' && *p != '\r' && n + 1 < sizeof path)
      path[n++] = *p++;
    path[n] = '\0';
  }
  if (strcmp(path, "/404") == 0) {
    c->close_after = 1;
    mass_queue(c, mass_404, sizeof mass_404 - 1, 1);
    mass_flush(s, c);
    return;
  }
  size_t n = strlen(path), digits = 0;
  while (digits < n && path[n - 1 - digits] >= '0' && path[n - 1 - digits] <= '9')
    digits++;
  c->id = digits && digits < 8 ? atoi(path + n - digits) : -1;
  if (c->id >= 0 && c->id < MASS_MAX_ID) {
    if ((size_t)c->id >= s->capid) {
      size_t cap = s->capid ? s->capid : 64;
      while (cap <= (size_t)c->id)
        cap *= 2;
      s->by_id = mass_xrealloc(s->by_id, cap * sizeof *s->by_id);
      memset(s->by_id + s->capid, 0, (cap - s->capid) * sizeof *s->by_id);
      s->capid = cap;
    }
    s->by_id[c->id] = c;
  }
  c->stream = 1;
  s->answered++;
  s->open++;
  pthread_cond_broadcast(&s->cv);
  mass_queue(c, mass_ok, sizeof mass_ok - 1, 1);
  mass_flush(s, c);
}

static void mass_readable(mass_server *s, struct mass_conn *c) {
  for (;;) {
    char discard[4096];
    char *dst = c->stream ? discard : c->req + c->reqlen;
    size_t room = c->stream ? sizeof discard : sizeof c->req - 1 - c->reqlen;
    if (room == 0) { /* request too large */
      mass_conn_close(s, c, 0);
      return;
    }
    ssize_t n = recv(c->fd, dst, room, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n <= 0) {
      mass_conn_close(s, c, 1);
      return;
    }
    if (c->stream)
      continue;
    c->reqlen += (size_t)n;
    c->req[c->reqlen] = '\0';
    if (strstr(c->req, "\r\n\r\n")) {
      mass_answer(s, c);
      return; /* c may be gone; anything more arrives as a new event */
    }
  }
}

static void mass_accept(mass_server *s) {
  for (;;) {
    int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        fprintf(stderr, "mass_server: accept: %s\n", strerror(errno));
        struct timespec ts = {0, 10 * 1000000L}; /* do not spin on EMFILE */
        nanosleep(&ts, NULL);
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct mass_conn *c = mass_xrealloc(NULL, sizeof *c);
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->id = -1;
    if (s->nconns == s->capconns) {
      s->capconns = s->capconns ? s->capconns * 2 : 64;
      s->conns = mass_xrealloc(s->conns, s->capconns * sizeof *s->conns);
    }
    c->index = s->nconns;
    s->conns[s->nconns++] = c;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(s->efd, EPOLL_CTL_ADD, fd, &ev) != 0)
      mass_conn_close(s, c, 0);
  }
}

static void *mass_main(void *arg) {
  mass_server *s = arg;
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(s->efd, evs, 256, -1);
    if (n < 0 && errno != EINTR)
      break;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
      pthread_mutex_unlock(&s->mu);
      break;
    }
    for (int i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == (void *)&s->lfd) {
        mass_accept(s);
      } else if (p == (void *)&s->wfd) {
        uint64_t v;
        while (read(s->wfd, &v, sizeof v) < 0 && errno == EINTR) {
        }
      } else {
        struct mass_conn *c = p;
        if (c->dead) /* closed by an earlier event of this batch */
          continue;
        if ((evs[i].events & EPOLLOUT) && mass_flush(s, c) != 0)
          continue;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
          mass_readable(s, c);
      }
    }
    /* Output queued by the other threads. */
    while (s->ndirty) {
      struct mass_conn *c = s->dirty[--s->ndirty];
      c->dirty = 0;
      if (!c->want_out)
        mass_flush(s, c);
    }
    mass_free_dead(s);
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* The API                                                                  */
/* ------------------------------------------------------------------------ */

mass_server *mass_server_start(void) {
  mass_server *s = mass_xrealloc(NULL, sizeof *s);
  memset(s, 0, sizeof *s);
  s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  s->efd = epoll_create1(EPOLL_CLOEXEC);
  s->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->lfd < 0 || s->efd < 0 || s->wfd < 0)
    goto fail;
  int one = 1;
  setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 4096) != 0 ||
      getsockname(s->lfd, (struct sockaddr *)&a, &alen) != 0)
    goto fail;
  s->port = ntohs(a.sin_port);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->lfd};
  struct epoll_event ew = {.events = EPOLLIN, .data.ptr = &s->wfd};
  if (epoll_ctl(s->efd, EPOLL_CTL_ADD, s->lfd, &ev) != 0 ||
      epoll_ctl(s->efd, EPOLL_CTL_ADD, s->wfd, &ew) != 0)
    goto fail;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&s->mu, NULL);
  if (pthread_create(&s->thread, NULL, mass_main, s) != 0) {
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    goto fail;
  }
  return s;
fail:
  if (s->lfd >= 0)
    close(s->lfd);
  if (s->efd >= 0)
    close(s->efd);
  if (s->wfd >= 0)
    close(s->wfd);
  free(s);
  return NULL;
}

void mass_server_stop(mass_server *s) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  pthread_mutex_unlock(&s->mu);
  mass_poke(s);
  pthread_join(s->thread, NULL);
  for (size_t i = 0; i < s->nconns; i++) {
    close(s->conns[i]->fd);
    free(s->conns[i]->out);
    free(s->conns[i]);
  }
  free(s->conns);
  mass_free_dead(s);
  free(s->dirty);
  free(s->by_id);
  close(s->lfd);
  close(s->efd);
  close(s->wfd);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int mass_server_port(const mass_server *s) { return s->port; }

static int mass_get(mass_server *s, const int *field) {
  pthread_mutex_lock(&s->mu);
  int v = *field;
  pthread_mutex_unlock(&s->mu);
  return v;
}

int mass_server_streams_answered(mass_server *s) { return mass_get(s, &s->answered); }
int mass_server_streams_open(mass_server *s) { return mass_get(s, &s->open); }
int mass_server_streams_closed(mass_server *s) { return mass_get(s, &s->closed); }

static int mass_wait(mass_server *s, const int *field, int n, int timeout_ms) {
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  dl.tv_sec += timeout_ms / 1000;
  dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->mu);
  while (*field < n && pthread_cond_timedwait(&s->cv, &s->mu, &dl) == 0) {
  }
  int v = *field;
  pthread_mutex_unlock(&s->mu);
  return v;
}

int mass_server_wait_answered(mass_server *s, int n, int timeout_ms) {
  return mass_wait(s, &s->answered, n, timeout_ms);
}

int mass_server_wait_closed(mass_server *s, int n, int timeout_ms) {
  return mass_wait(s, &s->closed, n, timeout_ms);
}

static int mass_enqueue(mass_server *s, int all, int id, const void *bytes,
                        size_t len, int count) {
  if (count <= 0 || len == 0)
    return 0;
  int queued = 0;
  pthread_mutex_lock(&s->mu);
  if (all) {
    for (size_t i = 0; i < s->nconns; i++) {
      struct mass_conn *c = s->conns[i];
      if (c->stream) {
        mass_queue(c, bytes, len, count);
        mass_mark_dirty(s, c);
        queued++;
      }
    }
  } else if (id >= 0 && (size_t)id < s->capid && s->by_id[id]) {
    mass_queue(s->by_id[id], bytes, len, count);
    mass_mark_dirty(s, s->by_id[id]);
    queued = 1;
  }
  pthread_mutex_unlock(&s->mu);
  if (queued)
    mass_poke(s);
  return queued;
}

int mass_server_broadcast(mass_server *s, const void *bytes, size_t len, int count) {
  return mass_enqueue(s, 1, 0, bytes, len, count);
}

int mass_server_send(mass_server *s, int id, const void *bytes, size_t len,
                     int count) {
  return mass_enqueue(s, 0, id, bytes, len, count);
}
