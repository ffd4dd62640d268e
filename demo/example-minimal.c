/*
 * example-minimal.c - the smallest useful libeventsource program.
 *
 *   example-minimal URL [N]
 *
 * Connects to URL, prints the data of every "message" event (events without
 * an event: field) and stops after N of them (default 3) by closing the
 * source from its own listener, which makes eventsource_run() return
 * EVENTSOURCE_OK. Lost connections are re-established by the library, with
 * Last-Event-ID, without any code here.
 *
 * Build against an installed library:
 *   cc example-minimal.c $(pkg-config --cflags --libs eventsource)
 */
#include <stdio.h>
#include <stdlib.h>

#include <eventsource.h>

struct counter {
  long seen;
  long max;
};

static void on_message(eventsource_t *es, const eventsource_event_t *ev,
                       void *userdata) {
  struct counter *count = userdata;
  size_t len;
  /* Borrowed: valid until this function returns. Data may contain NUL bytes,
   * hence fwrite() with the length rather than printf("%s"). */
  const char *data = eventsource_event_data(ev, &len);
  printf("message id=%s: ", eventsource_event_last_event_id(ev, NULL));
  fwrite(data, 1, len, stdout);
  putchar('\n');
  fflush(stdout);
  if (++count->seen == count->max)
    eventsource_close(es); /* eventsource_run() returns once we are back */
}

int main(int argc, char **argv) {
  struct counter count = {0, 3};
  eventsource_t *es = NULL;
  eventsource_error_t err;

  if (argc < 2 || argc > 3 || (argc == 3 && (count.max = atol(argv[2])) <= 0)) {
    fprintf(stderr, "usage: %s URL [N]\n", argv[0]);
    return 2;
  }

  err = eventsource_new(&es, argv[1]);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_new: %s\n", eventsource_strerror(err));
    return 1;
  }
  err = eventsource_add_listener(es, "message", on_message, &count, NULL);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_add_listener: %s\n", eventsource_strerror(err));
    eventsource_free(es);
    return 1;
  }

  err = eventsource_run(es);
  if (err != EVENTSOURCE_OK)
    fprintf(stderr, "eventsource_run: %s: %s\n", eventsource_strerror(err),
            eventsource_last_error_message(es));

  eventsource_free(es);
  return err == EVENTSOURCE_OK && count.seen == count.max ? 0 : 1;
}
