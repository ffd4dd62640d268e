/*
 * example-parser.c - the streaming parser on its own, for a transport that
 * is not libcurl.
 *
 *   example-parser [FILE]
 *
 * Reads a text/event-stream from FILE (standard input when FILE is missing
 * or "-") in chunks as they come, as a program with its own HTTP stack
 * would receive the body, feeds each chunk to an eventsource_parser_t and prints
 * every event (type, last event ID, data), every retry: and every limit
 * error. At the end of the input the parser is told so: an incomplete last
 * event is discarded, as the spec says. Stops after 100 events by returning
 * non-zero from the event callback.
 *
 * Build against an installed library:
 *   cc example-parser.c $(pkg-config --cflags --libs eventsource)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <eventsource_parser.h>

#define MAX_EVENTS 100

struct state {
  long events;
};

/* type, data and id are borrowed: valid until this function returns. data
 * may contain NUL bytes, hence fwrite() with the length. */
static int on_event(eventsource_parser_t *p, const char *type, size_t type_len,
                    const char *data, size_t data_len, const char *id, size_t id_len,
                    void *userdata) {
  struct state *st = userdata;
  (void)p;
  (void)type_len;
  (void)id_len;
  printf("event %s id=%s data=", type, id);
  fwrite(data, 1, data_len, stdout);
  putchar('\n');
  fflush(stdout); /* each event as it comes, also into a pipe */
  /* non-zero stops eventsource_parser_feed(), which returns CALLBACK */
  return ++st->events == MAX_EVENTS;
}

static int on_retry(eventsource_parser_t *p, uint64_t ms, void *userdata) {
  (void)p;
  (void)userdata;
  printf("retry %llu ms\n", (unsigned long long)ms);
  return 0;
}

static int on_error(eventsource_parser_t *p, eventsource_error_t code, const char *message,
                    void *userdata) {
  (void)p;
  (void)userdata;
  printf("error %s: %s\n", eventsource_error_name(code), message);
  return 0; /* the over-long event was dropped; go on */
}

int main(int argc, char **argv) {
  struct state st = {0};
  eventsource_parser_t *p = NULL;
  eventsource_error_t err;
  int fd = 0; /* standard input */
  char chunk[4096];
  ssize_t n;
  int status = 0;

  if (argc > 2) {
    fprintf(stderr, "usage: %s [FILE]\n", argv[0]);
    return 2;
  }
  if (argc == 2 && strcmp(argv[1], "-") != 0 && (fd = open(argv[1], O_RDONLY)) < 0) {
    fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
    return 1;
  }

  err = eventsource_parser_new(&p);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_parser_new: %s\n", eventsource_strerror(err));
    return 1;
  }
  /* These fail only for a NULL parser; checked all the same. */
  if (eventsource_parser_set_event_callback(p, on_event, &st) != EVENTSOURCE_OK ||
      eventsource_parser_set_retry_callback(p, on_retry, NULL) != EVENTSOURCE_OK ||
      eventsource_parser_set_error_callback(p, on_error, NULL) != EVENTSOURCE_OK ||
      eventsource_parser_set_max_event(p, 1024 * 1024) != EVENTSOURCE_OK) { /* 1 MiB */
    fprintf(stderr, "eventsource_parser_set_*: failed\n");
    eventsource_parser_free(p);
    return 1;
  }

  /* Any chunking gives the same events: here, whatever read() returns. */
  while ((n = read(fd, chunk, sizeof chunk)) != 0) {
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "read: %s\n", strerror(errno));
      status = 1;
      break;
    }
    err = eventsource_parser_feed(p, chunk, (size_t)n);
    if (err == EVENTSOURCE_ERR_CALLBACK)
      break; /* our on_event said stop */
    if (err != EVENTSOURCE_OK) {
      fprintf(stderr, "eventsource_parser_feed: %s\n", eventsource_strerror(err));
      status = 1;
      break;
    }
  }
  eventsource_parser_finish(p); /* end of stream: drops an incomplete event */
  printf("done: %ld events, last event ID \"%s\"\n", st.events,
         eventsource_parser_last_event_id(p, NULL));

  eventsource_parser_free(p);
  if (fd != 0)
    close(fd);
  return status;
}
