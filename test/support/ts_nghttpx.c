/* ts_nghttpx.c - see ts_nghttpx.h. */
#include "ts_nghttpx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define NGHTTPX_MAX_ARGS 48
#define READY_MS 10000 /* the most a start waits for the frontend */
#define STOP_MS 5000   /* the most a stop waits for the exit after SIGTERM */

struct ts_nghttpx {
  pid_t pid;      /* 0: not running */
  pid_t draining; /* after ts_nghttpx_graceful(): the old one, 0 none */
  int port, tls, flags;
  int argc;
  char *argv[NGHTTPX_MAX_ARGS + 1]; /* owned copies, NULL-terminated */
  char log[4096];                   /* the error log (stdout and stderr too) */
  char url[1300];
};

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A bounded pause between two polls of something another process does
 * (its exit, its listening socket): not synchronisation on time. */
static void pause_ms(int ms) { poll(NULL, 0, ms); }

const char *ts_nghttpx_binary(void) {
  const char *p = getenv("NGHTTPX");
  if (!p || !*p)
    p = "/usr/sbin/nghttpx";
  return access(p, X_OK) == 0 ? p : NULL;
}

/* A port on 127.0.0.1 that was free a moment ago (bound to port 0, then
 * closed), or -1. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

/* 1 when a TCP connection to 127.0.0.1:port is accepted. */
static int accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

static void print_log(const ts_nghttpx *n) {
  FILE *f = fopen(n->log, "r");
  if (!f)
    return;
  char line[1024];
  while (fgets(line, sizeof line, f))
    fprintf(stderr, "  nghttpx: %s", line);
  fclose(f);
}

/* Reaps the child *pid if it has exited (or waits for it, block 1), then
 * sets *pid to 0. 1 when it is gone. */
static int reap_pid(pid_t *pid, int block) {
  int st;
  pid_t r = waitpid(*pid, &st, block ? 0 : WNOHANG);
  if (r == *pid || (r < 0 && errno == ECHILD)) {
    *pid = 0;
    return 1;
  }
  return 0;
}

static int reap(ts_nghttpx *n, int block) { return reap_pid(&n->pid, block); }

/* SIGTERM to *pid, then up to STOP_MS for its exit, then SIGKILL. */
static void stop_pid(pid_t *pid) {
  if (*pid <= 0)
    return;
  kill(*pid, SIGTERM);
  long deadline = now_ms() + STOP_MS;
  while (!reap_pid(pid, 0)) {
    if (now_ms() >= deadline) {
      kill(*pid, SIGKILL);
      reap_pid(pid, 1);
      return;
    }
    pause_ms(5);
  }
}

/* Spawns nghttpx with n->argv and waits until the frontend accepts. */
static int launch(ts_nghttpx *n) {
  int logfd = open(n->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (logfd < 0) {
    fprintf(stderr, "ts_nghttpx: cannot open %s: %s\n", n->log, strerror(errno));
    return -1;
  }
  int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (nullfd < 0) {
    close(logfd);
    return -1;
  }
  pid_t parent = getpid();
  n->pid = fork();
  if (n->pid == 0) {
    /* The child: async-signal-safe calls only. It dies with the test (a
     * test killed by its timeout must not leave a proxy behind), gets
     * none of the test's sockets (libcurl's, the backend's), and its
     * output goes to the log. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
      _exit(127);
    if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
      _exit(127);
    close_range(3, ~0U, 0);
    execv(n->argv[0], n->argv);
    _exit(127);
  }
  int e = errno;
  close(logfd);
  close(nullfd);
  if (n->pid < 0) {
    n->pid = 0;
    fprintf(stderr, "ts_nghttpx: fork: %s\n", strerror(e));
    return -1;
  }
  long deadline = now_ms() + READY_MS;
  for (;;) {
    if (accepts(n->port))
      return 0;
    if (reap(n, 0)) {
      fprintf(stderr, "ts_nghttpx: nghttpx exited before it listened on %d:\n",
              n->port);
      print_log(n);
      return -1;
    }
    if (now_ms() >= deadline) {
      fprintf(stderr, "ts_nghttpx: nghttpx did not listen on %d within %d ms:\n",
              n->port, READY_MS);
      print_log(n);
      ts_nghttpx_kill(n);
      return -1;
    }
    pause_ms(10);
  }
}

static int add_arg(ts_nghttpx *n, const char *arg) {
  if (n->argc >= NGHTTPX_MAX_ARGS || !(n->argv[n->argc] = strdup(arg)))
    return -1;
  n->argc++;
  return 0;
}

ts_nghttpx *ts_nghttpx_start(int backend_port, ts_tls *tls,
                             const char *const *extra) {
  return ts_nghttpx_start_with(backend_port, tls, extra, 0);
}

ts_nghttpx *ts_nghttpx_start_with(int backend_port, ts_tls *tls,
                                  const char *const *extra, int flags) {
  const char *bin = ts_nghttpx_binary();
  if (!bin) {
    fprintf(stderr, "ts_nghttpx: nghttpx is not installed (%s is not executable; "
                    "it is a test dependency: mk/deps.sh test installs "
                    "nghttp2-proxy, or set NGHTTPX)\n",
            getenv("NGHTTPX") ? getenv("NGHTTPX") : "/usr/sbin/nghttpx");
    return NULL;
  }
  const char *cert = NULL, *key = NULL;
  if (tls && ts_tls_server_files(tls, &cert, &key) != 0)
    return NULL;
  ts_nghttpx *n = calloc(1, sizeof *n);
  if (!n)
    return NULL;
  n->tls = tls != NULL;
  n->flags = flags;
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir)
    dir = "/tmp";
  snprintf(n->log, sizeof n->log, "%s/ts_nghttpx_log_XXXXXX", dir);
  int fd = mkstemp(n->log);
  if (fd < 0) {
    fprintf(stderr, "ts_nghttpx: mkstemp(%s): %s\n", n->log, strerror(errno));
    free(n);
    return NULL;
  }
  close(fd);
  if ((n->port = free_port()) < 0) {
    fprintf(stderr, "ts_nghttpx: no free port\n");
    goto fail;
  }
  char frontend[64], backend[64], log[4200];
  snprintf(frontend, sizeof frontend, "--frontend=127.0.0.1,%d%s", n->port,
           tls ? "" : ";no-tls");
  snprintf(backend, sizeof backend, "--backend=127.0.0.1,%d", backend_port);
  snprintf(log, sizeof log, "--errorlog-file=%s", n->log);
  int multi = (flags & TS_NGHTTPX_MULTI_PROCESS) != 0;
  const char *base[] = {bin,      "--conf=/dev/null", "--workers=1", frontend, backend, log,
                        "--no-ocsp", multi ? NULL : "--single-process", NULL};
  int bad = 0;
  for (int i = 0; !bad && base[i]; i++)
    bad = add_arg(n, base[i]);
  for (int i = 0; !bad && extra && extra[i]; i++)
    bad = add_arg(n, extra[i]);
  if (!bad && tls)
    bad = add_arg(n, key) || add_arg(n, cert);
  if (bad) {
    fprintf(stderr, "ts_nghttpx: too many options, or out of memory\n");
    goto fail;
  }
  if (launch(n) != 0)
    goto fail;
  return n;
fail:
  ts_nghttpx_free(n);
  return NULL;
}

void ts_nghttpx_kill(ts_nghttpx *n) {
  if (!n || n->pid <= 0)
    return;
  kill(n->pid, SIGKILL);
  reap(n, 1);
}

void ts_nghttpx_stop(ts_nghttpx *n) {
  if (n)
    stop_pid(&n->pid);
}

int ts_nghttpx_graceful(ts_nghttpx *n) {
  if (n->pid <= 0 || !(n->flags & TS_NGHTTPX_MULTI_PROCESS) || n->draining > 0) {
    fprintf(stderr, "ts_nghttpx: graceful shutdown needs a running multi-process "
                    "nghttpx and none draining\n");
    return -1;
  }
  if (kill(n->pid, SIGQUIT) != 0)
    return -1;
  n->draining = n->pid;
  n->pid = 0;
  /* Its main process and its worker close the listening socket at once;
   * the worker keeps its connections for the grace period. */
  long deadline = now_ms() + STOP_MS;
  while (accepts(n->port)) {
    if (now_ms() >= deadline) {
      fprintf(stderr, "ts_nghttpx: still listening on %d %d ms after SIGQUIT\n",
              n->port, STOP_MS);
      return -1;
    }
    pause_ms(5);
  }
  return 0;
}

int ts_nghttpx_restart(ts_nghttpx *n) {
  if (n->pid > 0) {
    fprintf(stderr, "ts_nghttpx: restart while it is running\n");
    return -1;
  }
  return launch(n);
}

void ts_nghttpx_free(ts_nghttpx *n) {
  if (!n)
    return;
  ts_nghttpx_stop(n);
  stop_pid(&n->draining);
  for (int i = 0; i < n->argc; i++)
    free(n->argv[i]);
  unlink(n->log);
  free(n);
}

int ts_nghttpx_port(const ts_nghttpx *n) { return n->port; }

const char *ts_nghttpx_url(ts_nghttpx *n, const char *path) {
  snprintf(n->url, sizeof n->url, "%s://127.0.0.1:%d%s", n->tls ? "https" : "http",
           n->port, path ? path : "");
  return n->url;
}

int ts_nghttpx_client_connections(const ts_nghttpx *n) {
  FILE *f = fopen("/proc/net/tcp", "r");
  if (!f)
    return -1;
  char line[512];
  int count = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned laddr, lport, raddr, rport, st;
    if (sscanf(line, " %*d: %8x:%4x %8x:%4x %2x", &laddr, &lport, &raddr, &rport,
               &st) != 5)
      continue; /* the heading */
    if (rport == (unsigned)n->port && st == 1 /* TCP_ESTABLISHED */ &&
        raddr == htonl(INADDR_LOOPBACK) && laddr == htonl(INADDR_LOOPBACK))
      count++;
  }
  fclose(f);
  return count;
}

/* ------------------------------------------------------------------------ */
/* ts_run_capture                                                           */
/* ------------------------------------------------------------------------ */

typedef struct cbuf {
  char *p;
  size_t len, cap;
} cbuf;

static int cbuf_append(cbuf *b, const char *d, size_t n) {
  if (b->cap - b->len < n + 1) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap - b->len < n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
      return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

/* Hands b over to *to (an empty string when nothing was read), or frees it. */
static void cbuf_give(cbuf *b, char **to) {
  if (!to) {
    free(b->p);
    return;
  }
  if (!b->p)
    b->p = calloc(1, 1);
  *to = b->p;
}

int ts_run_capture(const char *const *argv, int timeout_ms, char **out,
                   char **err) {
  int po[2], pe[2];
  if (pipe2(po, O_CLOEXEC) != 0)
    return -1;
  if (pipe2(pe, O_CLOEXEC) != 0) {
    close(po[0]);
    close(po[1]);
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, po[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(po[1]);
  close(pe[1]);
  cbuf b[2] = {{0}, {0}};
  int fds[2] = {po[0], pe[0]};
  if (rc != 0) {
    fprintf(stderr, "ts_run_capture: posix_spawn %s: %s\n", argv[0], strerror(rc));
    close(fds[0]);
    close(fds[1]);
    cbuf_give(&b[0], out);
    cbuf_give(&b[1], err);
    return -1;
  }
  long deadline = now_ms() + timeout_ms;
  int timed_out = 0;
  while (fds[0] >= 0 || fds[1] >= 0) {
    long left = deadline - now_ms();
    if (left <= 0) {
      timed_out = 1;
      break;
    }
    struct pollfd p[2];
    int np = 0, which[2];
    for (int i = 0; i < 2; i++)
      if (fds[i] >= 0) {
        p[np] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        which[np++] = i;
      }
    int r = poll(p, (nfds_t)np, (int)left);
    if (r < 0 && errno != EINTR)
      break;
    for (int k = 0; r > 0 && k < np; k++) {
      if (!p[k].revents)
        continue;
      char tmp[8192];
      ssize_t got = read(p[k].fd, tmp, sizeof tmp);
      if (got > 0 && cbuf_append(&b[which[k]], tmp, (size_t)got) == 0)
        continue;
      if (got < 0 && errno == EINTR)
        continue;
      close(fds[which[k]]);
      fds[which[k]] = -1;
    }
  }
  int st = 0;
  while (!timed_out && waitpid(pid, &st, WNOHANG) == 0) {
    if (now_ms() >= deadline) {
      timed_out = 1;
      break;
    }
    pause_ms(2); /* its output is closed: an exit under way */
  }
  if (timed_out) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
  }
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  cbuf_give(&b[0], out);
  cbuf_give(&b[1], err);
  if (timed_out)
    return -1;
  if (WIFEXITED(st))
    return WEXITSTATUS(st);
  return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}
