/*
 * sse-demo-server.c - a small Server-Sent Events server to try libeventsource
 * against, offline. Plain POSIX sockets and poll(), one thread, no libraries.
 *
 *   sse-demo-server [--port N] [--port-file F] [--duration S]
 *                   [--drop-after N] [--interval MS]
 *
 * It listens on 127.0.0.1 only. Endpoints:
 *
 *   GET  /events  A ticker. Starts with "retry: 1000", then one event per
 *                 interval with increasing ids: odd ids are "event: tick"
 *                 with JSON data, even ids are plain (type "message") events.
 *                 A ": heartbeat" comment goes out between two events. A
 *                 request with Last-Event-ID: N continues at N + 1, so a
 *                 client that reconnects sees no gap and no duplicate. Every
 *                 connection is dropped after --drop-after events to show
 *                 exactly that.
 *   POST /llm     Needs "Authorization: Bearer TOKEN" (else 401) and a JSON
 *                 object body with Content-Type: application/json (else 415
 *                 or 400). Streams a few token events (data: JSON), then
 *                 "event: done", then closes. Every request streams afresh.
 *                 /llm?cut=N ends the stream after N tokens, without "done",
 *                 as a broken connection would.
 *   POST /mcp     MCP Streamable HTTP resumability (SEP-1699), in miniature:
 *                 a JSON body (Content-Type: application/json) is a tool
 *   GET  /mcp     call. The answer starts with "retry: 300" and a priming
 *                 event (an id, empty data), then progress events, then the
 *                 JSON-RPC result, ids 1 to 6; the server closes every
 *                 connection on purpose after two events. A GET with
 *                 Last-Event-ID: N continues at N + 1 (no Last-Event-ID:
 *                 400; nothing left: 204). Stateless: the ids say it all.
 *   *    /close   204 No Content: an EventSource gives up without retrying.
 *   GET  /        A short text/plain description of the above.
 *
 * Requests and what the server does with them are logged to stderr; stdout
 * gets exactly one line, "listening on http://127.0.0.1:PORT/". It stops by
 * itself after --duration seconds (0: never) or on SIGINT or SIGTERM.
 *
 * Responses carry "Connection: close" and no Content-Length for streams: the
 * stream ends when the server closes the connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define MAX_HEAD (16 * 1024)        /* request line and headers */
#define MAX_BODY (64 * 1024)        /* request body */
#define MAX_PENDING (256 * 1024)    /* unsent output before a client is dropped */
#define RETRY_MS 1000
#define LLM_TOKEN_MS 40
#define MCP_RETRY_MS 300
#define MCP_LAST_ID 6     /* 1 priming, 2-5 progress, 6 the result */
#define MCP_PER_CONN 2    /* events before the server closes on purpose */

enum conn_state {
  ST_REQUEST, /* reading the request */
  ST_EVENTS,  /* streaming /events */
  ST_LLM,     /* streaming /llm */
  ST_MCP,     /* streaming /mcp */
  ST_CLOSING  /* sending what is left, then closing */
};

struct conn {
  int fd;
  int dead;
  enum conn_state state;
  char peer[64];
  /* The request as received. */
  char *in;
  size_t in_len, in_cap;
  size_t head_len;    /* bytes up to and including the blank line; 0 until seen */
  size_t content_len; /* the body's length */
  int sent_continue;  /* "100 Continue" already sent */
  /* Output not yet accepted by the socket. */
  char *out;
  size_t out_off, out_len, out_cap;
  /* Streams. */
  long long next_ms;      /* when the next step is due (monotonic ms) */
  unsigned long next_id;  /* /events, /mcp: id of the next event */
  unsigned sent;          /* events sent on this connection */
  int heartbeat_next;     /* /events: the next step is a heartbeat */
  size_t prompt_bytes;    /* /llm: the size of the request body */
  long cut;               /* /llm: tokens before the stream is cut; -1: none */
};

struct server {
  int listen_fd;
  int port;
  unsigned drop_after;
  long interval_ms;
  struct conn *conns[MAX_CONNS];
  size_t nconns;
};

/* The self-pipe: the signal handler writes a byte so poll() wakes up. */
static int signal_pipe[2] = {-1, -1};

static const char *const llm_tokens[] = {
    "Server", "-Sent", " Events", " stream", " a", " reply", " one",
    " token", " at", " a", " time", "."};

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void logmsg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("sse-demo-server: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig) {
  int saved = errno;
  char b = (char)sig;
  /* Nothing to do if the pipe is full: a byte is already waiting. */
  if (write(signal_pipe[1], &b, 1) < 0) {
  }
  errno = saved;
}

static void usage(FILE *f) {
  fputs("usage: sse-demo-server [--port N] [--port-file FILE] [--duration S]\n"
        "                       [--drop-after N] [--interval MS]\n"
        "  --port N        port on 127.0.0.1 (default 0: the system picks one)\n"
        "  --port-file F   write the port number to F once listening\n"
        "  --duration S    stop after S seconds (default 30; 0: run until killed)\n"
        "  --drop-after N  close each /events connection after N events, to\n"
        "                  show reconnection with Last-Event-ID (default 5; 0: never)\n"
        "  --interval MS   time between two /events events (default 250)\n",
        f);
}

/* Parses a whole decimal number in [min, max]. */
static int parse_long(const char *s, long min, long max, long *out) {
  char *end;
  long v;
  if (s == NULL || *s == '\0')
    return -1;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

/* ---- output ------------------------------------------------------------- */

static int out_append(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Queues formatted bytes for c; -1 (and c marked dead) when out of memory or
 * when the client does not read what it is sent. */
static int out_append(struct conn *c, const char *fmt, ...) {
  va_list ap;
  int n;
  size_t need;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    goto fail;
  if (c->out_off > 0 && c->out_off == c->out_len)
    c->out_off = c->out_len = 0;
  need = c->out_len + (size_t)n + 1;
  if (need - c->out_off > MAX_PENDING) {
    logmsg("%s: not reading, dropped", c->peer);
    goto fail;
  }
  if (need > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 1024;
    char *p;
    while (cap < need)
      cap *= 2;
    p = realloc(c->out, cap);
    if (p == NULL)
      goto fail;
    c->out = p;
    c->out_cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(c->out + c->out_len, c->out_cap - c->out_len, fmt, ap);
  va_end(ap);
  c->out_len += (size_t)n;
  return 0;
fail:
  c->dead = 1;
  return -1;
}

/* Sends what the socket accepts now; the rest waits for POLLOUT. */
static void out_flush(struct conn *c) {
  while (!c->dead && c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                     MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        logmsg("%s: connection lost (%s)", c->peer, strerror(errno));
        c->dead = 1;
      }
      return;
    }
    c->out_off += (size_t)n;
  }
  if (c->out_off == c->out_len && c->state == ST_CLOSING)
    c->dead = 1;
}

/* A complete response with a small text body; the connection then closes. */
static void respond(struct conn *c, int status, const char *reason,
                    const char *extra_header, const char *body) {
  size_t len = body ? strlen(body) : 0;
  out_append(c,
             "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             status, reason, len ? "Content-Type: text/plain; charset=utf-8\r\n" : "",
             extra_header ? extra_header : "", extra_header ? "\r\n" : "", len,
             body ? body : "");
  c->state = ST_CLOSING;
}

static void start_stream(struct conn *c) {
  out_append(c, "HTTP/1.1 200 OK\r\n"
                "Content-Type: text/event-stream\r\n"
                "Cache-Control: no-cache\r\n"
                "Connection: close\r\n\r\n");
}

/* ---- streams ------------------------------------------------------------ */

static void events_step(struct server *srv, struct conn *c, long long now) {
  unsigned long id = c->next_id;
  if (c->heartbeat_next) {
    out_append(c, ": heartbeat\n");
    c->heartbeat_next = 0;
    c->next_ms = now + srv->interval_ms - srv->interval_ms / 2;
    return;
  }
  if (id % 2 == 1)
    out_append(c, "event: tick\nid: %lu\ndata: {\"seq\":%lu,\"time_ms\":%lld}\n\n",
               id, id, wall_ms());
  else
    out_append(c, "id: %lu\ndata: plain message %lu (no event: field, so its type "
                  "is \"message\")\n\n",
               id, id);
  c->next_id++;
  c->sent++;
  c->heartbeat_next = 1;
  c->next_ms = now + srv->interval_ms / 2;
  if (srv->drop_after > 0 && c->sent >= srv->drop_after) {
    logmsg("%s: dropping the connection after %u events (last id %lu); the "
           "client should reconnect with Last-Event-ID: %lu",
           c->peer, c->sent, id, id);
    c->state = ST_CLOSING;
  }
}

static void llm_step(struct conn *c, long long now) {
  size_t ntokens = sizeof llm_tokens / sizeof llm_tokens[0];
  if (c->cut >= 0 && c->sent >= (unsigned long)c->cut) {
    logmsg("%s: /llm cut after %u tokens (?cut=%ld), closing without \"done\"",
           c->peer, c->sent, c->cut);
    c->state = ST_CLOSING;
    return;
  }
  if (c->sent < ntokens) {
    out_append(c, "data: {\"index\":%u,\"token\":\"%s\"}\n\n", c->sent,
               llm_tokens[c->sent]);
    c->sent++;
    c->next_ms = now + LLM_TOKEN_MS;
    return;
  }
  out_append(c, "event: done\ndata: {\"tokens\":%zu,\"prompt_bytes\":%zu}\n\n",
             ntokens, c->prompt_bytes);
  logmsg("%s: /llm sent %zu tokens and \"done\", closing", c->peer, ntokens);
  c->state = ST_CLOSING;
}

static void mcp_step(struct conn *c, long long now) {
  unsigned long id = c->next_id;
  if (id > MCP_LAST_ID || c->sent >= MCP_PER_CONN) {
    logmsg("%s: /mcp closing on purpose after id %lu; the client resumes with "
           "GET and Last-Event-ID: %lu",
           c->peer, id - 1, id - 1);
    c->state = ST_CLOSING;
    return;
  }
  if (id == 1)
    out_append(c, "retry: %d\nid: 1\ndata:\n\n", MCP_RETRY_MS); /* priming */
  else if (id < MCP_LAST_ID)
    out_append(c, "id: %lu\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\","
                  "\"params\":{\"progressToken\":1,\"progress\":%lu,\"total\":%d}}\n\n",
               id, id - 1, MCP_LAST_ID - 2);
  else
    out_append(c, "id: %lu\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":"
                  "[{\"type\":\"text\",\"text\":\"done\"}]}}\n\n",
               id);
  c->next_id++;
  c->sent++;
  c->next_ms = now + LLM_TOKEN_MS;
}

/* ---- requests ----------------------------------------------------------- */

/* Finds the value of header name (case-insensitive) in the request head and
 * copies it, trimmed, into buf. Returns 1 if found, 0 if not. A value too
 * long for buf is cut. */
static int find_header(const struct conn *c, const char *name, char *buf,
                       size_t size) {
  size_t name_len = strlen(name);
  const char *p = memchr(c->in, '\n', c->head_len);
  const char *end = c->in + c->head_len;
  while (p != NULL && ++p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *v, *ve;
    size_t n;
    if (eol == NULL)
      break;
    if ((size_t)(eol - p) > name_len && p[name_len] == ':' &&
        strncasecmp(p, name, name_len) == 0) {
      v = p + name_len + 1;
      ve = eol;
      while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      n = (size_t)(ve - v);
      if (n >= size)
        n = size - 1;
      memcpy(buf, v, n);
      buf[n] = '\0';
      return 1;
    }
    p = eol;
  }
  buf[0] = '\0';
  return 0;
}

/* The end of the head (after the blank line), or 0 when not yet received. */
static size_t head_end(const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    if (s[i] != '\n')
      continue;
    if (i + 1 < len && s[i + 1] == '\n')
      return i + 2;
    if (i + 2 < len && s[i + 1] == '\r' && s[i + 2] == '\n')
      return i + 3;
  }
  return 0;
}

/* 1 when body is a JSON object as far as a demo cares: '{' ... '}'. */
static int looks_like_json_object(const char *body, size_t len) {
  size_t a = 0, b = len;
  while (a < b && strchr(" \t\r\n", body[a]) != NULL)
    a++;
  while (b > a && strchr(" \t\r\n", body[b - 1]) != NULL)
    b--;
  return b - a >= 2 && body[a] == '{' && body[b - 1] == '}';
}

static void handle_events(struct conn *c, long long now) {
  char id[256];
  unsigned long long last = 0;
  c->next_id = 1;
  if (find_header(c, "Last-Event-ID", id, sizeof id) && id[0] != '\0') {
    char *end;
    errno = 0;
    last = strtoull(id, &end, 10);
    if (errno == 0 && *end == '\0' && id[0] >= '0' && id[0] <= '9' &&
        last < ULONG_MAX) {
      c->next_id = (unsigned long)last + 1;
      logmsg("%s: client resumed from Last-Event-ID %s, continuing at id %lu",
             c->peer, id, c->next_id);
    } else {
      logmsg("%s: Last-Event-ID \"%s\" is not one of ours, starting at id 1",
             c->peer, id);
    }
  } else {
    logmsg("%s: new /events client, starting at id 1", c->peer);
  }
  start_stream(c);
  out_append(c, "retry: %d\n\n", RETRY_MS);
  c->state = ST_EVENTS;
  c->heartbeat_next = 0;
  c->next_ms = now;
}

static void handle_llm(struct conn *c, const char *method, const char *query,
                       long long now) {
  char auth[512], type[256];
  const char *body = c->in + c->head_len;
  c->cut = -1;
  if (query != NULL && strncmp(query, "cut=", 4) == 0 &&
      parse_long(query + 4, 0, 1000, &c->cut) != 0) {
    respond(c, 400, "Bad Request", NULL, "cut=N: N must be a number\n");
    return;
  }
  if (strcmp(method, "POST") != 0) {
    respond(c, 405, "Method Not Allowed", "Allow: POST", "POST a JSON body to /llm\n");
    return;
  }
  if (!find_header(c, "Authorization", auth, sizeof auth) ||
      strncasecmp(auth, "Bearer ", 7) != 0 || auth[7] == '\0') {
    logmsg("%s: /llm without \"Authorization: Bearer ...\": 401", c->peer);
    respond(c, 401, "Unauthorized", "WWW-Authenticate: Bearer realm=\"sse-demo-server\"",
            "missing \"Authorization: Bearer TOKEN\"\n");
    return;
  }
  find_header(c, "Content-Type", type, sizeof type);
  if (strncasecmp(type, "application/json", 16) != 0 ||
      (type[16] != '\0' && type[16] != ';' && type[16] != ' ')) {
    logmsg("%s: /llm with Content-Type \"%s\": 415", c->peer, type);
    respond(c, 415, "Unsupported Media Type", NULL,
            "the body must be Content-Type: application/json\n");
    return;
  }
  if (!looks_like_json_object(body, c->content_len)) {
    logmsg("%s: /llm body is not a JSON object: 400", c->peer);
    respond(c, 400, "Bad Request", NULL, "the body must be a JSON object\n");
    return;
  }
  logmsg("%s: /llm %zu-byte JSON body, %s", c->peer, c->content_len, auth);
  start_stream(c);
  c->state = ST_LLM;
  c->prompt_bytes = c->content_len;
  c->sent = 0;
  c->next_ms = now;
}

static void handle_mcp(struct conn *c, const char *method, long long now) {
  char type[256], id[64];
  const char *body = c->in + c->head_len;
  c->next_id = 1;
  if (strcmp(method, "POST") == 0) {
    find_header(c, "Content-Type", type, sizeof type);
    if (strncasecmp(type, "application/json", 16) != 0 ||
        (type[16] != '\0' && type[16] != ';' && type[16] != ' ')) {
      respond(c, 415, "Unsupported Media Type", NULL,
              "the body must be Content-Type: application/json\n");
      return;
    }
    if (!looks_like_json_object(body, c->content_len)) {
      respond(c, 400, "Bad Request", NULL, "the body must be a JSON object\n");
      return;
    }
    logmsg("%s: /mcp call, %zu-byte JSON body", c->peer, c->content_len);
  } else if (strcmp(method, "GET") == 0) {
    char *end;
    unsigned long last;
    if (!find_header(c, "Last-Event-ID", id, sizeof id) || id[0] < '0' || id[0] > '9') {
      respond(c, 400, "Bad Request", NULL, "GET /mcp resumes: send Last-Event-ID\n");
      return;
    }
    errno = 0;
    last = strtoul(id, &end, 10);
    if (errno != 0 || *end != '\0' || last == 0) {
      respond(c, 400, "Bad Request", NULL, "Last-Event-ID is not one of ours\n");
      return;
    }
    if (last >= MCP_LAST_ID) {
      respond(c, 204, "No Content", NULL, NULL);
      return;
    }
    c->next_id = last + 1;
    logmsg("%s: /mcp resumed from Last-Event-ID %lu, continuing at id %lu", c->peer, last,
           c->next_id);
  } else {
    respond(c, 405, "Method Not Allowed", "Allow: GET, POST", "POST or GET /mcp\n");
    return;
  }
  start_stream(c);
  c->state = ST_MCP;
  c->sent = 0;
  c->next_ms = now;
}

/* The request is complete: route it. */
static void handle_request(struct conn *c, long long now) {
  char method[16], target[256];
  const char *q;
  int n;
  char line[sizeof method + sizeof target + 32];
  const char *eol = memchr(c->in, '\n', c->head_len);
  size_t len = (size_t)(eol - c->in);
  size_t path_len;
  if (len >= sizeof line)
    len = sizeof line - 1;
  memcpy(line, c->in, len);
  line[len] = '\0';
  n = sscanf(line, "%15s %255s HTTP/1.%*d", method, target);
  if (n != 2 || target[0] != '/') {
    respond(c, 400, "Bad Request", NULL, "bad request line\n");
    return;
  }
  q = strchr(target, '?');
  path_len = q ? (size_t)(q - target) : strlen(target);
  logmsg("%s: %s %s", c->peer, method, target);
  if (path_len == 7 && strncmp(target, "/events", 7) == 0) {
    if (strcmp(method, "GET") != 0)
      respond(c, 405, "Method Not Allowed", "Allow: GET", "GET /events\n");
    else
      handle_events(c, now);
  } else if (path_len == 4 && strncmp(target, "/llm", 4) == 0) {
    handle_llm(c, method, q ? q + 1 : NULL, now);
  } else if (path_len == 4 && strncmp(target, "/mcp", 4) == 0) {
    handle_mcp(c, method, now);
  } else if (path_len == 6 && strncmp(target, "/close", 6) == 0) {
    respond(c, 204, "No Content", NULL, NULL);
  } else if (path_len == 1) {
    respond(c, 200, "OK", NULL,
            "sse-demo-server, a Server-Sent Events demo for libeventsource\n"
            "  GET  /events  ticker (tick and message events, ids, retry:, heartbeats,\n"
            "                resumes after Last-Event-ID, drops every few events)\n"
            "  POST /llm     token stream ending with event: done; needs\n"
            "                Authorization: Bearer TOKEN and a JSON body;\n"
            "                /llm?cut=N ends the stream after N tokens, without done\n"
            "  POST /mcp     a tool call answered as MCP resumable streams are: retry:,\n"
            "  GET  /mcp     a priming event, progress, the result; closed on purpose\n"
            "                every two events, resumed by GET with Last-Event-ID\n"
            "  *    /close   204 No Content (an EventSource stops for good)\n");
  } else {
    respond(c, 404, "Not Found", NULL, "no such endpoint; GET / lists them\n");
  }
}

/* New bytes of the request have arrived. */
static void request_progress(struct conn *c, long long now) {
  char value[64];
  if (c->head_len == 0) {
    c->head_len = head_end(c->in, c->in_len);
    if (c->head_len == 0) {
      if (c->in_len >= MAX_HEAD)
        respond(c, 431, "Request Header Fields Too Large", NULL, "headers too large\n");
      return;
    }
    if (find_header(c, "Transfer-Encoding", value, sizeof value)) {
      respond(c, 411, "Length Required", NULL, "send the body with a Content-Length\n");
      return;
    }
    if (find_header(c, "Content-Length", value, sizeof value)) {
      long n;
      if (parse_long(value, 0, MAX_BODY, &n) != 0) {
        respond(c, 413, "Content Too Large", NULL, "bad or too large Content-Length\n");
        return;
      }
      c->content_len = (size_t)n;
    }
  }
  if (c->in_len - c->head_len < c->content_len) {
    /* A client that asked to wait for 100 Continue gets it (curl does this
     * for large bodies). */
    if (!c->sent_continue && find_header(c, "Expect", value, sizeof value) &&
        strcasecmp(value, "100-continue") == 0) {
      out_append(c, "HTTP/1.1 100 Continue\r\n\r\n");
      c->sent_continue = 1;
    }
    return;
  }
  handle_request(c, now);
}

static void conn_read(struct conn *c, long long now) {
  for (;;) {
    char scratch[4096];
    char *dst = scratch;
    size_t room = sizeof scratch;
    ssize_t n;
    if (c->state == ST_REQUEST) {
      size_t limit = MAX_HEAD + MAX_BODY + 1;
      if (c->in_cap - c->in_len < 4096 && c->in_cap < limit) {
        size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
        char *p = realloc(c->in, cap);
        if (p == NULL) {
          c->dead = 1;
          return;
        }
        c->in = p;
        c->in_cap = cap;
      }
      dst = c->in + c->in_len;
      room = c->in_cap - c->in_len;
      if (room == 0) {
        respond(c, 413, "Content Too Large", NULL, "request too large\n");
        return;
      }
    }
    n = recv(c->fd, dst, room, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        logmsg("%s: connection lost (%s)", c->peer, strerror(errno));
        c->dead = 1;
      }
      return;
    }
    if (n == 0) {
      if (c->state == ST_EVENTS || c->state == ST_LLM || c->state == ST_MCP)
        logmsg("%s: client closed the stream", c->peer);
      c->dead = 1;
      return;
    }
    if (c->state == ST_REQUEST) {
      c->in_len += (size_t)n;
      request_progress(c, now);
    } /* else: bytes after the request are ignored */
  }
}

/* ---- connections -------------------------------------------------------- */

static void conn_free(struct conn *c) {
  if (c->fd >= 0) {
    shutdown(c->fd, SHUT_WR);
    close(c->fd);
  }
  free(c->in);
  free(c->out);
  free(c);
}

static void accept_all(struct server *srv) {
  for (;;) {
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    struct conn *c;
    int one = 1;
    int fd = accept4(srv->listen_fd, (struct sockaddr *)&addr, &alen,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        logmsg("accept: %s", strerror(errno));
      return;
    }
    if (srv->nconns == MAX_CONNS || (c = calloc(1, sizeof *c)) == NULL) {
      static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                 "Content-Length: 0\r\nConnection: close\r\n\r\n";
      logmsg("too many connections, answering 503");
      if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL) < 0) {
      }
      close(fd);
      continue;
    }
    /* Events are small and should leave at once. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = ST_REQUEST;
    snprintf(c->peer, sizeof c->peer, "%s:%u", inet_ntoa(addr.sin_addr),
             (unsigned)ntohs(addr.sin_port));
    srv->conns[srv->nconns++] = c;
  }
}

static int listen_on(int port) {
  struct sockaddr_in addr;
  int one = 1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    logmsg("socket: %s", strerror(errno));
    return -1;
  }
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((unsigned short)port);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(fd, 64) != 0) {
    logmsg("cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

static int bound_port(int fd) {
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
    return -1;
  return ntohs(addr.sin_port);
}

/* Writes the port to path through a temporary file and rename(), so a reader
 * never sees a half-written file. */
static int write_port_file(const char *path, int port) {
  size_t n = strlen(path) + 5;
  char *tmp = malloc(n);
  FILE *f;
  int ok;
  if (tmp == NULL)
    return -1;
  snprintf(tmp, n, "%s.tmp", path);
  f = fopen(tmp, "w");
  if (f == NULL) {
    logmsg("%s: %s", tmp, strerror(errno));
    free(tmp);
    return -1;
  }
  ok = fprintf(f, "%d\n", port) > 0;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    logmsg("%s: %s", path, strerror(errno));
    unlink(tmp);
    free(tmp);
    return -1;
  }
  free(tmp);
  return 0;
}

static int install_signals(void) {
  struct sigaction sa;
  if (pipe2(signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
    logmsg("pipe: %s", strerror(errno));
    return -1;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
    return -1;
  sa.sa_handler = SIG_IGN;
  if (sigaction(SIGPIPE, &sa, NULL) != 0)
    return -1;
  return 0;
}

/* The main loop: until the deadline (0: none) or a signal. */
static void serve(struct server *srv, long long deadline) {
  struct pollfd pfds[MAX_CONNS + 2];
  struct conn *polled[MAX_CONNS];
  for (;;) {
    long long now = now_ms(), wake = deadline;
    size_t i, np = 0, npolled;
    int timeout, rc;
    if (deadline != 0 && now >= deadline) {
      logmsg("--duration reached, stopping");
      return;
    }
    for (i = 0; i < srv->nconns; i++) {
      const struct conn *c = srv->conns[i];
      if ((c->state == ST_EVENTS || c->state == ST_LLM || c->state == ST_MCP) &&
          (wake == 0 || c->next_ms < wake))
        wake = c->next_ms;
    }
    timeout = -1;
    if (wake != 0)
      timeout = wake <= now ? 0 : (int)(wake - now > INT_MAX ? INT_MAX : wake - now);
    pfds[np].fd = signal_pipe[0];
    pfds[np++].events = POLLIN;
    pfds[np].fd = srv->listen_fd;
    pfds[np++].events = POLLIN;
    for (i = 0; i < srv->nconns; i++) {
      struct conn *c = srv->conns[i];
      polled[i] = c;
      pfds[np].fd = c->fd;
      pfds[np].events = POLLIN;
      if (c->out_off < c->out_len)
        pfds[np].events |= POLLOUT;
      np++;
    }
    npolled = srv->nconns;
    rc = poll(pfds, (nfds_t)np, timeout);
    if (rc < 0) {
      if (errno == EINTR)
        continue;
      logmsg("poll: %s", strerror(errno));
      return;
    }
    if (pfds[0].revents != 0) {
      logmsg("signal received, stopping");
      return;
    }
    now = now_ms();
    for (i = 0; i < npolled; i++) {
      struct conn *c = polled[i];
      short re = pfds[i + 2].revents;
      if (re & (POLLIN | POLLHUP | POLLERR))
        conn_read(c, now);
      if (!c->dead && (re & POLLOUT))
        out_flush(c);
    }
    /* Streams whose next step is due. */
    for (i = 0; i < srv->nconns; i++) {
      struct conn *c = srv->conns[i];
      if (c->dead || c->next_ms > now)
        continue;
      if (c->state == ST_EVENTS)
        events_step(srv, c, now);
      else if (c->state == ST_LLM)
        llm_step(c, now);
      else if (c->state == ST_MCP)
        mcp_step(c, now);
    }
    for (i = 0; i < srv->nconns; i++)
      if (!srv->conns[i]->dead)
        out_flush(srv->conns[i]);
    /* Sweep closed connections. */
    for (i = 0; i < srv->nconns;) {
      if (srv->conns[i]->dead) {
        conn_free(srv->conns[i]);
        srv->conns[i] = srv->conns[--srv->nconns];
      } else {
        i++;
      }
    }
    if (pfds[1].revents & POLLIN)
      accept_all(srv);
  }
}

int main(int argc, char **argv) {
  struct server srv;
  const char *port_file = NULL;
  long port = 0, duration = 30, drop_after = 5, interval = 250;
  int i, status = 1;
  size_t k;
  memset(&srv, 0, sizeof srv);
  srv.listen_fd = -1;
  /* Every option takes a value: they go in pairs. */
  for (i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = 0;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--port") == 0) {
      bad = parse_long(v, 0, 65535, &port);
    } else if (strcmp(a, "--port-file") == 0) {
      port_file = v;
      bad = v == NULL || *v == '\0';
    } else if (strcmp(a, "--duration") == 0) {
      bad = parse_long(v, 0, 24L * 3600 * 365, &duration);
    } else if (strcmp(a, "--drop-after") == 0) {
      bad = parse_long(v, 0, 1000000, &drop_after);
    } else if (strcmp(a, "--interval") == 0) {
      bad = parse_long(v, 2, 3600000, &interval);
    } else {
      fprintf(stderr, "sse-demo-server: unknown argument \"%s\"\n", a);
      usage(stderr);
      return 2;
    }
    if (bad) {
      fprintf(stderr, "sse-demo-server: %s needs a valid value\n", a);
      usage(stderr);
      return 2;
    }
  }
  srv.drop_after = (unsigned)drop_after;
  srv.interval_ms = interval;

  if (install_signals() != 0)
    goto out;
  srv.listen_fd = listen_on((int)port);
  if (srv.listen_fd < 0)
    goto out;
  srv.port = bound_port(srv.listen_fd);
  if (srv.port <= 0)
    goto out;
  if (port_file != NULL && write_port_file(port_file, srv.port) != 0)
    goto out;
  if (printf("listening on http://127.0.0.1:%d/\n", srv.port) < 0 || fflush(stdout) != 0)
    goto out;
  logmsg("try: sse-cat http://127.0.0.1:%d/events", srv.port);
  serve(&srv, duration > 0 ? now_ms() + duration * 1000 : 0);
  status = 0;
out:
  for (k = 0; k < srv.nconns; k++)
    conn_free(srv.conns[k]);
  if (srv.listen_fd >= 0)
    close(srv.listen_fd);
  if (port_file != NULL && srv.port > 0)
    unlink(port_file);
  for (i = 0; i < 2; i++)
    if (signal_pipe[i] >= 0)
      close(signal_pipe[i]);
  return status;
}
