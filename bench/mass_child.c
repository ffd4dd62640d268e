/* mass_child.c - see mass_child.h. */
#include "mass_child.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "mass_server.h"

/* Commands, one line each: "B count" broadcasts count events to every stream
 * (answers "ok QUEUED"), "S id" sends one event to stream id (no answer),
 * "Q" quits. The child answers its port first. */
static int cmd_fd = -1, reply_fd = -1;
static pid_t child = -1;

static void write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      bench_die("pipe write failed: %s", strerror(errno));
    s += w;
    n -= (size_t)w;
  }
}

/* Reads one line (without LF) into buf; 0 at EOF. */
static int read_line(int fd, char *buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return 0;
    if (c == '\n')
      break;
    buf[n++] = c;
  }
  buf[n] = '\0';
  return 1;
}

static void server_child(int in, int out, const char *payload, size_t len) {
  mass_server *s = mass_server_start();
  if (!s)
    bench_die("%s", "cannot start the server");
  char line[64];
  snprintf(line, sizeof line, "%d\n", mass_server_port(s));
  write_all(out, line, strlen(line));
  /* Reading the pipe a byte at a time keeps a ping-pong simple; a command
   * is a few bytes. */
  while (read_line(in, line, sizeof line)) {
    if (line[0] == 'B') {
      int q = mass_server_broadcast(s, payload, len, atoi(line + 2));
      char ok[32];
      snprintf(ok, sizeof ok, "ok %d\n", q);
      write_all(out, ok, strlen(ok));
    } else if (line[0] == 'S') {
      mass_server_send(s, atoi(line + 2), payload, len, 1);
    } else {
      break;
    }
  }
  mass_server_stop(s);
  _exit(0);
}

int mass_child_start(const char *payload, size_t len) {
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0)
    bench_die("pipe: %s", strerror(errno));
  child = fork();
  if (child < 0)
    bench_die("fork: %s", strerror(errno));
  if (child == 0) {
    close(to_child[1]);
    close(from_child[0]);
    server_child(to_child[0], from_child[1], payload, len);
  }
  close(to_child[0]);
  close(from_child[1]);
  cmd_fd = to_child[1];
  reply_fd = from_child[0];
  char line[32];
  if (!read_line(reply_fd, line, sizeof line))
    bench_die("%s", "the server did not start");
  return atoi(line);
}

int mass_child_broadcast(int count) {
  char cmd[32], reply[32];
  snprintf(cmd, sizeof cmd, "B %d\n", count);
  write_all(cmd_fd, cmd, strlen(cmd));
  if (!read_line(reply_fd, reply, sizeof reply) || strncmp(reply, "ok ", 3) != 0)
    bench_die("%s", "the server did not answer a broadcast");
  return atoi(reply + 3);
}

void mass_child_send(int id) {
  char cmd[32];
  snprintf(cmd, sizeof cmd, "S %d\n", id);
  write_all(cmd_fd, cmd, strlen(cmd));
}

void mass_child_stop(void) {
  write_all(cmd_fd, "Q\n", 2);
  close(cmd_fd);
  close(reply_fd);
  waitpid(child, NULL, 0);
  cmd_fd = reply_fd = -1;
  child = -1;
}
