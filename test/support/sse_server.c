/*
 * sse_server.c - a scripted loopback HTTP server for the tests
 * (see sse_server.h).
 *
 * One accept thread polls the listening socket and a wakeup pipe; every
 * accepted connection gets a thread of its own (joined when the next
 * connection is accepted, and at stop). All shared state is behind one mutex;
 * every wait is a condition variable (CLOCK_MONOTONIC) or a poll() that
 * ts_server_stop() interrupts with shutdown().
 */
#include "sse_server.h"
#include "ts_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ts_tls.h"

/* The pause after a write step that is followed by another write, so that
 * separate steps tend to arrive as separate reads. Correctness never depends
 * on it. */
#define TS_FLUSH_US 1000L
/* Limits on what the server accepts from a client. */
#define TS_MAX_LINE (64 * 1024)
#define TS_MAX_HEADERS 256
#define TS_MAX_BODY (64UL * 1024 * 1024)

enum step_kind { ST_WRITE, ST_SLEEP, ST_GATE, ST_HOLD, ST_CLOSE, ST_RESET, ST_DRIP };

struct step {
  enum step_kind kind;
  char *data; /* ST_WRITE, ST_DRIP: owned; never moved or freed until stop */
  size_t len;
  int arg; /* ST_SLEEP, ST_DRIP: ms; ST_GATE: gate number */
};

struct ts_script {
  ts_server *srv;
  struct step *steps;
  size_t n, cap;
};

/* A recorded request, stored compactly (ts_request is large). */
struct req {
  char method[16];
  char *path;
  int nheaders;
  char **headers;
  char *body;
  size_t body_len;
};

struct ts_conn {
  ts_server *srv;
  int fd; /* -1 once closed (changed under the mutex) */
  SSL *ssl; /* TLS listener: set once the handshake is done */
  int done;
  int closed;    /* conn_finish() ran (connection thread only) */
  int peer_gone; /* a write failed: the client's close was counted */
  pthread_t thread;
  struct ts_conn *next;
};

struct ts_server {
  int lfd;
  int port;
  int wake[2];
  pthread_t acceptor;
  int acceptor_started;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stopping;

  struct ts_conn *conns;

  /* TLS listener (ts_server_start_tls): a reference of its own to the
   * context, and the socket BIO that writes with MSG_NOSIGNAL. */
  SSL_CTX *tls_ctx;
  BIO_METHOD *bio_meth;
  int tls_failures;

  ts_handler_fn handler;
  void *handler_ud;

  ts_script **scripts;
  size_t nscripts, capscripts, next_script;

  struct req *reqs;
  size_t nreqs, capreqs;

  int *gates;
  size_t ngates, capgates;

  int client_closes;
  int open_conns;

  char url[1300];
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fprintf(stderr, "sse_server: out of memory\n");
    abort();
  }
  return q;
}

static char *xmemdup0(const char *s, size_t len) {
  char *p = xrealloc(NULL, len + 1);
  if (len)
    memcpy(p, s, len);
  p[len] = '\0';
  return p;
}


/* Waits on s->cv (s->mu held) until the deadline; returns 0 on timeout. */
static int wait_until(ts_server *s, const struct timespec *dl) {
  int rc = pthread_cond_timedwait(&s->cv, &s->mu, dl);
  return rc != ETIMEDOUT;
}

static void short_pause(void) {
  struct timespec ts = {0, TS_FLUSH_US * 1000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ------------------------------------------------------------------------ */
/* Connection I/O: the socket, or TLS over it                               */
/* ------------------------------------------------------------------------ */

static int send_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Writes every byte; 0, or -1 when the peer is gone. */
static int conn_send(struct ts_conn *c, const void *p, size_t len) {
  if (!c->ssl)
    return send_all(c->fd, p, len);
  const char *b = p;
  while (len > 0) {
    size_t n = 0;
    if (SSL_write_ex(c->ssl, b, len, &n) != 1) {
      int e = SSL_get_error(c->ssl, 0);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        continue;
      ERR_clear_error();
      return -1;
    }
    b += n;
    len -= n;
  }
  return 0;
}

/* Reads up to len bytes (blocking); the count, or 0 on EOF or error. */
static size_t conn_recv(struct ts_conn *c, void *p, size_t len) {
  for (;;) {
    if (c->ssl) {
      size_t n = 0;
      if (SSL_read_ex(c->ssl, p, len, &n) == 1)
        return n;
      int e = SSL_get_error(c->ssl, 0);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        continue;
      ERR_clear_error();
      return 0;
    }
    ssize_t n = recv(c->fd, p, len, 0);
    if (n > 0)
      return (size_t)n;
    if (n < 0 && errno == EINTR)
      continue;
    return 0;
  }
}

/* OpenSSL's socket BIO writes with write(), which raises SIGPIPE when the
 * client is gone: this one is the socket BIO with send(MSG_NOSIGNAL). */
static int nosignal_write(BIO *b, const char *data, int len) {
  int fd = -1;
  BIO_get_fd(b, &fd);
  BIO_clear_retry_flags(b);
  ssize_t n;
  do {
    n = send(fd, data, (size_t)len, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    BIO_set_retry_write(b);
  return (int)n;
}

static BIO_METHOD *nosignal_socket_method(void) {
  const BIO_METHOD *sock = BIO_s_socket();
  BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOCKET, "ts socket");
  if (!m)
    return NULL;
  if (!BIO_meth_set_write(m, nosignal_write) ||
      !BIO_meth_set_read(m, BIO_meth_get_read(sock)) ||
      !BIO_meth_set_puts(m, BIO_meth_get_puts(sock)) ||
      !BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock)) ||
      !BIO_meth_set_create(m, BIO_meth_get_create(sock)) ||
      !BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock))) {
    BIO_meth_free(m);
    return NULL;
  }
  return m;
}

/* The server side of the handshake; 1 when it succeeded (c->ssl set). */
static int tls_accept(struct ts_conn *c) {
  ts_server *s = c->srv;
  SSL *ssl = SSL_new(s->tls_ctx);
  BIO *bio = ssl ? BIO_new(s->bio_meth) : NULL;
  if (!bio) {
    SSL_free(ssl);
    return 0;
  }
  BIO_set_fd(bio, c->fd, BIO_NOCLOSE);
  SSL_set_bio(ssl, bio, bio);
  for (;;) {
    int rc = SSL_accept(ssl);
    if (rc == 1)
      break;
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
      continue;
    ERR_clear_error();
    SSL_free(ssl);
    return 0;
  }
  c->ssl = ssl;
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Reading the request                                                      */
/* ------------------------------------------------------------------------ */

struct rbuf {
  struct ts_conn *c;
  char *buf;
  size_t pos, len, cap;
};

/* Reads more bytes; 1 on success, 0 on EOF or error. */
static int rb_fill(struct rbuf *r) {
  if (r->pos > 0) {
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
  }
  if (r->len == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 4096;
    r->buf = xrealloc(r->buf, r->cap + 1);
  }
  size_t n = conn_recv(r->c, r->buf + r->len, r->cap - r->len);
  r->len += n;
  return n > 0;
}

/* The next line without its LF (and CR), NUL-terminated, in a malloc'd copy;
 * NULL on EOF, error or a line longer than TS_MAX_LINE. */
static char *rb_line(struct rbuf *r) {
  for (;;) {
    char *start = r->buf ? r->buf + r->pos : NULL;
    size_t avail = r->len - r->pos;
    char *lf = avail ? memchr(start, '\n', avail) : NULL;
    if (lf) {
      size_t l = (size_t)(lf - start);
      r->pos += l + 1;
      if (l > 0 && start[l - 1] == '\r')
        l--;
      return xmemdup0(start, l);
    }
    if (avail > TS_MAX_LINE)
      return NULL;
    if (!rb_fill(r))
      return NULL;
  }
}

/* Copies exactly n bytes into dst; 1 on success, 0 on EOF or error. */
static int rb_read(struct rbuf *r, char *dst, size_t n) {
  while (n > 0) {
    if (r->pos == r->len && !rb_fill(r))
      return 0;
    size_t take = r->len - r->pos;
    if (take > n)
      take = n;
    memcpy(dst, r->buf + r->pos, take);
    r->pos += take;
    dst += take;
    n -= take;
  }
  return 1;
}

/* The value of header line `line` if its name is `name`, else NULL. */
static const char *header_match(const char *line, const char *name) {
  size_t nl = strlen(name);
  if (strncasecmp(line, name, nl) != 0 || line[nl] != ':')
    return NULL;
  const char *v = line + nl + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  return v;
}

static void req_free(struct req *q) {
  free(q->path);
  for (int i = 0; i < q->nheaders; i++)
    free(q->headers[i]);
  free(q->headers);
  free(q->body);
  memset(q, 0, sizeof *q);
}

/* Reads a chunked body into body and len; 1 on success. */
static int read_chunked(struct rbuf *r, char **body, size_t *len) {
  size_t total = 0;
  char *b = NULL;
  for (;;) {
    char *line = rb_line(r);
    if (!line)
      goto fail;
    char *end;
    errno = 0;
    unsigned long long sz = strtoull(line, &end, 16);
    int bad = end == line || errno != 0 || sz > TS_MAX_BODY ||
              total + sz > TS_MAX_BODY;
    free(line);
    if (bad)
      goto fail;
    if (sz == 0)
      break;
    b = xrealloc(b, total + (size_t)sz + 1);
    if (!rb_read(r, b + total, (size_t)sz))
      goto fail;
    total += (size_t)sz;
    line = rb_line(r); /* the CRLF after the data */
    if (!line)
      goto fail;
    free(line);
  }
  /* trailers up to the blank line */
  for (;;) {
    char *line = rb_line(r);
    if (!line)
      goto fail;
    int blank = line[0] == '\0';
    free(line);
    if (blank)
      break;
  }
  if (b)
    b[total] = '\0';
  *body = total ? b : NULL;
  if (!total)
    free(b);
  *len = total;
  return 1;
fail:
  free(b);
  return 0;
}

/* Reads one request; 1 when complete. */
static int read_request(struct ts_conn *c, struct rbuf *r, struct req *q) {
  memset(q, 0, sizeof *q);
  r->c = c;
  char *line;
  /* Skip leading empty lines (RFC 9112 2.2). */
  do {
    line = rb_line(r);
    if (!line)
      return 0;
    if (line[0] == '\0')
      free(line);
    else
      break;
  } while (1);
  char *sp1 = strchr(line, ' ');
  if (!sp1) {
    free(line);
    return 0;
  }
  size_t ml = (size_t)(sp1 - line);
  if (ml >= sizeof q->method)
    ml = sizeof q->method - 1;
  memcpy(q->method, line, ml);
  q->method[ml] = '\0';
  char *target = sp1 + 1;
  char *sp2 = strchr(target, ' ');
  q->path = sp2 ? xmemdup0(target, (size_t)(sp2 - target))
                : xmemdup0(target, strlen(target));
  free(line);

  int chunked = 0, expect_continue = 0;
  unsigned long long clen = 0;
  for (;;) {
    line = rb_line(r);
    if (!line)
      goto fail;
    if (line[0] == '\0') {
      free(line);
      break;
    }
    if (q->nheaders >= TS_MAX_HEADERS) {
      free(line);
      goto fail;
    }
    const char *v;
    if ((v = header_match(line, "Content-Length")) != NULL)
      clen = strtoull(v, NULL, 10);
    else if ((v = header_match(line, "Transfer-Encoding")) != NULL &&
             strcasestr(v, "chunked"))
      chunked = 1;
    else if ((v = header_match(line, "Expect")) != NULL &&
             strncasecmp(v, "100-continue", 12) == 0)
      expect_continue = 1;
    q->headers = xrealloc(q->headers, sizeof(char *) * (size_t)(q->nheaders + 1));
    q->headers[q->nheaders++] = line;
  }
  if (expect_continue &&
      conn_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0)
    goto fail;
  if (chunked) {
    if (!read_chunked(r, &q->body, &q->body_len))
      goto fail;
  } else if (clen > 0) {
    if (clen > TS_MAX_BODY)
      goto fail;
    q->body = xrealloc(NULL, (size_t)clen + 1);
    if (!rb_read(r, q->body, (size_t)clen))
      goto fail;
    q->body[clen] = '\0';
    q->body_len = (size_t)clen;
  }
  return 1;
fail:
  req_free(q);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

static int gate_open(const ts_server *s, int gate) {
  for (size_t i = 0; i < s->ngates; i++)
    if (s->gates[i] == gate)
      return 1;
  return 0;
}

static void note_client_close(ts_server *s) {
  pthread_mutex_lock(&s->mu);
  if (!s->stopping) {
    s->client_closes++;
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
}

/* A failed write: the client is gone (counted once per connection). */
static void peer_gone(struct ts_conn *c) {
  if (!c->peer_gone) {
    c->peer_gone = 1;
    note_client_close(c->srv);
  }
}

/* Waits until the client closes (EOF or error) or the server stops. */
static void hold(struct ts_conn *c) {
  char scratch[4096];
  if (c->ssl) {
    /* Blocking reads of whole records; ts_server_stop()'s shutdown() ends
     * them. */
    while (conn_recv(c, scratch, sizeof scratch) > 0) {
    }
    peer_gone(c);
    return;
  }
  for (;;) {
    struct pollfd p = {c->fd, POLLIN, 0};
    int n = poll(&p, 1, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    ssize_t got = recv(c->fd, scratch, sizeof scratch, MSG_DONTWAIT);
    if (got > 0)
      continue; /* ignore whatever the client sends */
    if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
      continue;
    break;
  }
  peer_gone(c);
}

/* Sleeps ms or until the server stops; 0 when it stops. */
static int pause_ms(ts_server *s, int ms) {
  struct timespec dl;
  ts_deadline_in(&dl, ms);
  pthread_mutex_lock(&s->mu);
  while (!s->stopping && wait_until(s, &dl)) {
  }
  int go_on = !s->stopping;
  pthread_mutex_unlock(&s->mu);
  return go_on;
}

/* Ends the connection: gracefully (TLS close_notify, FIN, then the client's
 * unread bytes dropped so that close() does not answer with a RST that
 * could destroy data in flight), or with a RST (SO_LINGER {1, 0}, close).
 * Once per connection; later calls do nothing. Connection thread only. */
static void conn_finish(struct ts_conn *c, int rst) {
  ts_server *s = c->srv;
  if (c->closed)
    return;
  c->closed = 1;
  if (rst) {
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  } else {
    if (c->ssl && !c->peer_gone) {
      SSL_shutdown(c->ssl); /* sends close_notify, does not wait */
      ERR_clear_error();
    }
    shutdown(c->fd, SHUT_WR);
    char scratch[1024];
    while (recv(c->fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0) {
    }
  }
  pthread_mutex_lock(&s->mu);
  close(c->fd);
  c->fd = -1;
  pthread_mutex_unlock(&s->mu);
}

static const char default_503[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    "Content-Length: 0\r\nConnection: close\r\n\r\n";

/* Plays the first nsteps steps of sc (NULL: the default 503); returns 1 when
 * the script ends the connection with a RST. */
static int play(struct ts_conn *c, ts_script *sc, size_t nsteps) {
  ts_server *s = c->srv;
  if (!sc) {
    if (conn_send(c, default_503, sizeof default_503 - 1) != 0)
      peer_gone(c);
    return 0;
  }
  for (size_t i = 0; i < nsteps; i++) {
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
      pthread_mutex_unlock(&s->mu);
      return 0;
    }
    struct step st = sc->steps[i];
    int next_is_write = i + 1 < nsteps && sc->steps[i + 1].kind == ST_WRITE;
    pthread_mutex_unlock(&s->mu);

    switch (st.kind) {
    case ST_WRITE:
      if (conn_send(c, st.data, st.len) != 0) {
        peer_gone(c);
        return 0;
      }
      if (next_is_write)
        short_pause();
      break;
    case ST_DRIP:
      for (size_t k = 0; k < st.len; k++) {
        if (k > 0 && st.arg > 0 && !pause_ms(s, st.arg))
          return 0;
        if (conn_send(c, st.data + k, 1) != 0) {
          peer_gone(c);
          return 0;
        }
      }
      if (next_is_write)
        short_pause();
      break;
    case ST_SLEEP:
      pause_ms(s, st.arg);
      break;
    case ST_GATE:
      pthread_mutex_lock(&s->mu);
      while (!s->stopping && !gate_open(s, st.arg))
        pthread_cond_wait(&s->cv, &s->mu);
      pthread_mutex_unlock(&s->mu);
      break;
    case ST_HOLD:
      hold(c);
      return 0;
    case ST_CLOSE:
      return 0;
    case ST_RESET:
      return 1;
    }
  }
  return 0;
}

/* The public view of a recorded request (body borrowed from q). */
static void req_export(const struct req *q, ts_request *out);

static void *conn_main(void *arg) {
  struct ts_conn *c = arg;
  ts_server *s = c->srv;
  struct rbuf r = {0};
  struct req q;
  int rst = 0;

  if (s->tls_ctx && !tls_accept(c)) {
    /* An untrusting client, or not TLS at all: the connection ends here. */
    pthread_mutex_lock(&s->mu);
    s->tls_failures++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
  } else if (read_request(c, &r, &q)) {
    /* Recording the request and taking its script is one step, so that
     * request i always gets script i. */
    pthread_mutex_lock(&s->mu);
    if (s->nreqs == s->capreqs) {
      s->capreqs = s->capreqs ? s->capreqs * 2 : 16;
      s->reqs = xrealloc(s->reqs, s->capreqs * sizeof *s->reqs);
    }
    s->reqs[s->nreqs++] = q;
    ts_handler_fn fn = s->handler;
    void *ud = s->handler_ud;
    ts_script *sc = NULL;
    if (fn) {
      /* handler mode: the script queue is left alone */
    } else if (s->next_script < s->nscripts) {
      sc = s->scripts[s->next_script++];
    } else if (s->nscripts > 0) {
      sc = s->scripts[s->nscripts - 1];
    }
    size_t nsteps = sc ? sc->n : 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (fn) {
      ts_request *pub = xrealloc(NULL, sizeof *pub);
      /* q's strings are the recorded ones: never changed before stop. */
      req_export(&q, pub);
      fn(c, pub, ud);
      free(pub);
    } else {
      rst = play(c, sc, nsteps);
    }
  }
  free(r.buf);

  conn_finish(c, rst);
  SSL_free(c->ssl);
  c->ssl = NULL;
  pthread_mutex_lock(&s->mu);
  c->done = 1;
  s->open_conns--;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Joins and frees the connections whose threads have finished. */
static void reap(ts_server *s, int all) {
  struct ts_conn *list = NULL;
  pthread_mutex_lock(&s->mu);
  struct ts_conn **pp = &s->conns;
  while (*pp) {
    struct ts_conn *c = *pp;
    if (all || c->done) {
      *pp = c->next;
      c->next = list;
      list = c;
    } else {
      pp = &c->next;
    }
  }
  pthread_mutex_unlock(&s->mu);
  while (list) {
    struct ts_conn *c = list;
    list = c->next;
    pthread_join(c->thread, NULL);
    free(c);
  }
}

static void *accept_main(void *arg) {
  ts_server *s = arg;
  for (;;) {
    struct pollfd p[2] = {{s->lfd, POLLIN, 0}, {s->wake[0], POLLIN, 0}};
    int n = poll(p, 2, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (p[1].revents)
      break;
    if (!(p[0].revents & POLLIN))
      continue;
    int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM)
        short_pause();
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    reap(s, 0);

    struct ts_conn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->srv = s;
    c->fd = fd;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
      pthread_mutex_unlock(&s->mu);
      close(fd);
      free(c);
      break;
    }
    if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
      pthread_mutex_unlock(&s->mu);
      close(fd);
      free(c);
      continue;
    }
    c->next = s->conns;
    s->conns = c;
    s->open_conns++;
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Server                                                                   */
/* ------------------------------------------------------------------------ */

static ts_server *server_start(SSL_CTX *tls_ctx) {
  ts_server *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->lfd = -1;
  s->wake[0] = s->wake[1] = -1;
  if (tls_ctx) {
    if (!(s->bio_meth = nosignal_socket_method()) || !SSL_CTX_up_ref(tls_ctx)) {
      BIO_meth_free(s->bio_meth);
      free(s);
      return NULL;
    }
    s->tls_ctx = tls_ctx;
  }

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&s->mu, NULL);

  if (pipe2(s->wake, O_CLOEXEC) != 0)
    goto fail;
  s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s->lfd < 0)
    goto fail;
  int one = 1;
  setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0)
    goto fail;
  if (listen(s->lfd, 128) != 0)
    goto fail;
  socklen_t al = sizeof a;
  if (getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0)
    goto fail;
  s->port = ntohs(a.sin_port);
  if (pthread_create(&s->acceptor, NULL, accept_main, s) != 0)
    goto fail;
  s->acceptor_started = 1;
  return s;
fail:
  if (s->lfd >= 0)
    close(s->lfd);
  if (s->wake[0] >= 0) {
    close(s->wake[0]);
    close(s->wake[1]);
  }
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  SSL_CTX_free(s->tls_ctx);
  BIO_meth_free(s->bio_meth);
  free(s);
  return NULL;
}

ts_server *ts_server_start(void) { return server_start(NULL); }

ts_server *ts_server_start_tls(ts_tls *t) {
  return t ? server_start(ts_tls_ssl_ctx(t)) : NULL;
}

void ts_server_stop(ts_server *s) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  for (struct ts_conn *c = s->conns; c; c = c->next)
    if (c->fd >= 0)
      shutdown(c->fd, SHUT_RDWR);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);

  if (s->acceptor_started) {
    ssize_t w;
    do {
      w = write(s->wake[1], "x", 1);
    } while (w < 0 && errno == EINTR);
    pthread_join(s->acceptor, NULL);
  }
  reap(s, 1);

  for (size_t i = 0; i < s->nscripts; i++) {
    ts_script *sc = s->scripts[i];
    for (size_t j = 0; j < sc->n; j++)
      free(sc->steps[j].data);
    free(sc->steps);
    free(sc);
  }
  free(s->scripts);
  for (size_t i = 0; i < s->nreqs; i++)
    req_free(&s->reqs[i]);
  free(s->reqs);
  free(s->gates);
  close(s->lfd);
  close(s->wake[0]);
  close(s->wake[1]);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  SSL_CTX_free(s->tls_ctx);
  BIO_meth_free(s->bio_meth);
  free(s);
}

int ts_server_port(const ts_server *s) { return s->port; }

const char *ts_server_url(ts_server *s, const char *path) {
  if (!path)
    path = "";
  snprintf(s->url, sizeof s->url, "%s://127.0.0.1:%d%s",
           s->tls_ctx ? "https" : "http", s->port, path);
  return s->url;
}

ts_script *ts_server_add_script(ts_server *s) {
  ts_script *sc = calloc(1, sizeof *sc);
  if (!sc) {
    fprintf(stderr, "sse_server: out of memory\n");
    abort();
  }
  sc->srv = s;
  pthread_mutex_lock(&s->mu);
  if (s->nscripts == s->capscripts) {
    s->capscripts = s->capscripts ? s->capscripts * 2 : 8;
    s->scripts = xrealloc(s->scripts, s->capscripts * sizeof *s->scripts);
  }
  s->scripts[s->nscripts++] = sc;
  pthread_mutex_unlock(&s->mu);
  return sc;
}

static void add_step(ts_script *sc, enum step_kind kind, const void *data,
                     size_t len, int arg) {
  struct step st = {kind, NULL, len, arg};
  if (kind == ST_WRITE || kind == ST_DRIP)
    st.data = xmemdup0(data, len);
  ts_server *s = sc->srv;
  pthread_mutex_lock(&s->mu);
  if (sc->n == sc->cap) {
    sc->cap = sc->cap ? sc->cap * 2 : 8;
    sc->steps = xrealloc(sc->steps, sc->cap * sizeof *sc->steps);
  }
  sc->steps[sc->n++] = st;
  pthread_mutex_unlock(&s->mu);
}

void ts_script_write(ts_script *sc, const void *bytes, size_t len) {
  add_step(sc, ST_WRITE, bytes, len, 0);
}

void ts_script_writes(ts_script *sc, const char *str) {
  ts_script_write(sc, str, strlen(str));
}

void ts_script_headers(ts_script *sc) {
  ts_script_writes(sc, "HTTP/1.1 200 OK\r\n"
                       "Content-Type: text/event-stream\r\n"
                       "Cache-Control: no-cache\r\n"
                       "Connection: close\r\n\r\n");
}

void ts_script_status(ts_script *sc, int status, const char *reason,
                      const char *const *header_lines) {
  size_t cap = 256, len = 0;
  if (!reason)
    reason = "";
  cap += strlen(reason);
  for (size_t i = 0; header_lines && header_lines[i]; i++)
    cap += strlen(header_lines[i]) + 2;
  char *b = xrealloc(NULL, cap);
  len += (size_t)snprintf(b + len, cap - len, "HTTP/1.1 %d %s\r\n", status,
                          reason);
  for (size_t i = 0; header_lines && header_lines[i]; i++)
    len += (size_t)snprintf(b + len, cap - len, "%s\r\n", header_lines[i]);
  len += (size_t)snprintf(b + len, cap - len, "Connection: close\r\n\r\n");
  ts_script_write(sc, b, len);
  free(b);
}

void ts_script_sleep(ts_script *sc, int ms) {
  add_step(sc, ST_SLEEP, NULL, 0, ms < 0 ? 0 : ms);
}

void ts_script_gate(ts_script *sc, int gate) {
  add_step(sc, ST_GATE, NULL, 0, gate);
}

void ts_script_hold(ts_script *sc) { add_step(sc, ST_HOLD, NULL, 0, 0); }

void ts_script_close(ts_script *sc) { add_step(sc, ST_CLOSE, NULL, 0, 0); }

void ts_script_reset(ts_script *sc) { add_step(sc, ST_RESET, NULL, 0, 0); }

void ts_script_drip(ts_script *sc, const void *bytes, size_t len, int delay_ms) {
  add_step(sc, ST_DRIP, bytes, len, delay_ms < 0 ? 0 : delay_ms);
}

void ts_script_fill(ts_script *sc, char byte, size_t count) {
  char *b = xrealloc(NULL, count);
  memset(b, byte, count);
  ts_script_write(sc, b, count);
  free(b);
}

void ts_server_set_handler(ts_server *s, ts_handler_fn fn, void *ud) {
  pthread_mutex_lock(&s->mu);
  s->handler = fn;
  s->handler_ud = ud;
  pthread_mutex_unlock(&s->mu);
}

int ts_conn_write(ts_conn *c, const void *bytes, size_t len) {
  if (c->closed || c->peer_gone)
    return -1;
  if (conn_send(c, bytes, len) != 0) {
    peer_gone(c);
    return -1;
  }
  return 0;
}

int ts_conn_writes(ts_conn *c, const char *str) {
  return ts_conn_write(c, str, strlen(str));
}

void ts_conn_close(ts_conn *c, int rst) { conn_finish(c, rst); }

ts_server *ts_conn_server(const ts_conn *c) { return c->srv; }

int ts_server_tls_failures(ts_server *s) {
  pthread_mutex_lock(&s->mu);
  int got = s->tls_failures;
  pthread_mutex_unlock(&s->mu);
  return got;
}

int ts_server_wait_tls_failures(ts_server *s, int n, int timeout_ms) {
  struct timespec dl;
  ts_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&s->mu);
  while (s->tls_failures < n && wait_until(s, &dl)) {
  }
  int got = s->tls_failures;
  pthread_mutex_unlock(&s->mu);
  return got;
}

void ts_server_release(ts_server *s, int gate) {
  pthread_mutex_lock(&s->mu);
  if (!gate_open(s, gate)) {
    if (s->ngates == s->capgates) {
      s->capgates = s->capgates ? s->capgates * 2 : 8;
      s->gates = xrealloc(s->gates, s->capgates * sizeof *s->gates);
    }
    s->gates[s->ngates++] = gate;
  }
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

int ts_server_wait_requests(ts_server *s, int n, int timeout_ms) {
  struct timespec dl;
  ts_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&s->mu);
  while ((int)s->nreqs < n && wait_until(s, &dl)) {
  }
  int got = (int)s->nreqs;
  pthread_mutex_unlock(&s->mu);
  return got;
}

int ts_server_request_count(ts_server *s) {
  pthread_mutex_lock(&s->mu);
  int got = (int)s->nreqs;
  pthread_mutex_unlock(&s->mu);
  return got;
}

static void copy_trunc(char *dst, size_t size, const char *src) {
  size_t l = strlen(src);
  if (l >= size)
    l = size - 1;
  memcpy(dst, src, l);
  dst[l] = '\0';
}

static void req_export(const struct req *q, ts_request *out) {
  memset(out, 0, sizeof *out);
  copy_trunc(out->method, sizeof out->method, q->method);
  copy_trunc(out->path, sizeof out->path, q->path);
  int nh = q->nheaders;
  if (nh > (int)(sizeof out->headers / sizeof out->headers[0]))
    nh = (int)(sizeof out->headers / sizeof out->headers[0]);
  out->nheaders = nh;
  for (int h = 0; h < nh; h++)
    copy_trunc(out->headers[h], sizeof out->headers[h], q->headers[h]);
  /* The stored body is never changed or freed before stop. */
  out->body = q->body;
  out->body_len = q->body_len;
}

int ts_server_get_request(ts_server *s, int i, ts_request *out) {
  pthread_mutex_lock(&s->mu);
  if (i < 0 || (size_t)i >= s->nreqs) {
    pthread_mutex_unlock(&s->mu);
    return -1;
  }
  req_export(&s->reqs[i], out);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

int ts_request_header_nth(const ts_request *r, const char *name, int n,
                          char *buf, size_t bufsize) {
  for (int h = 0; h < r->nheaders; h++) {
    const char *v = header_match(r->headers[h], name);
    if (!v)
      continue;
    if (n-- > 0)
      continue;
    if (buf && bufsize > 0) {
      size_t l = strlen(v);
      while (l > 0 && (v[l - 1] == ' ' || v[l - 1] == '\t'))
        l--;
      if (l >= bufsize)
        l = bufsize - 1;
      memcpy(buf, v, l);
      buf[l] = '\0';
    }
    return 1;
  }
  return 0;
}

int ts_request_header(const ts_request *r, const char *name, char *buf,
                      size_t bufsize) {
  return ts_request_header_nth(r, name, 0, buf, bufsize);
}

int ts_request_header_count(const ts_request *r, const char *name) {
  int count = 0;
  for (int h = 0; h < r->nheaders; h++)
    if (header_match(r->headers[h], name))
      count++;
  return count;
}

int ts_server_wait_client_closes(ts_server *s, int n, int timeout_ms) {
  struct timespec dl;
  ts_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&s->mu);
  while (s->client_closes < n && wait_until(s, &dl)) {
  }
  int got = s->client_closes;
  pthread_mutex_unlock(&s->mu);
  return got;
}

int ts_server_client_closes(ts_server *s) {
  pthread_mutex_lock(&s->mu);
  int got = s->client_closes;
  pthread_mutex_unlock(&s->mu);
  return got;
}

int ts_server_open_connections(ts_server *s) {
  pthread_mutex_lock(&s->mu);
  int got = s->open_conns;
  pthread_mutex_unlock(&s->mu);
  return got;
}

int ts_server_wait_open_connections(ts_server *s, int at_most, int timeout_ms) {
  struct timespec dl;
  ts_deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&s->mu);
  while (s->open_conns > at_most && wait_until(s, &dl)) {
  }
  int got = s->open_conns;
  pthread_mutex_unlock(&s->mu);
  return got;
}
