/*
 * example-types.c - one listener per event type, like addEventListener().
 *
 *   example-types URL [N]
 *
 * Listens to the custom type "tick", to plain "message" events, to the
 * connection's own "open" and "error" notifications and to comments (the
 * demo server's ": heartbeat" lines), and stops after N ticks (default 4).
 * The comment listener removes itself after the first comment, to show that
 * a listener may do so while it runs. An "any" listener counts everything.
 *
 * Against the demo server (make demo, or demo/sse-demo-server), the ticker
 * drops the connection every 5 events: the "error" listener then shows the
 * library reconnecting, and the ids go on without a gap.
 */
#include <stdio.h>
#include <stdlib.h>

#include <eventsource.h>

struct stats {
  long max_ticks;
  long ticks, messages, opens, errors, comments, total;
  eventsource_listener_id_t comment_listener;
};

static void print_data(const char *what, const eventsource_event_t *ev) {
  size_t len;
  const char *data = eventsource_event_data(ev, &len);
  printf("%s id=%s data=", what, eventsource_event_last_event_id(ev, NULL));
  fwrite(data, 1, len, stdout);
  putchar('\n');
  fflush(stdout);
}

static void on_tick(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  struct stats *st = ud;
  print_data("tick   ", ev);
  if (++st->ticks == st->max_ticks)
    eventsource_close(es);
}

static void on_message(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  struct stats *st = ud;
  (void)es;
  print_data("message", ev);
  st->messages++;
}

/* "open" and "error" listeners also receive server events named "open" or
 * "error"; the kind tells the connection's own notifications apart. */
static void on_open(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  struct stats *st = ud;
  if (eventsource_event_kind(ev) != EVENTSOURCE_KIND_OPEN) {
    print_data("server event \"open\"", ev);
    return;
  }
  st->opens++;
  printf("open    connected to %s\n", eventsource_url(es));
  fflush(stdout);
}

static void on_error(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  struct stats *st = ud;
  (void)es;
  if (eventsource_event_kind(ev) != EVENTSOURCE_KIND_ERROR) {
    print_data("server event \"error\"", ev);
    return;
  }
  st->errors++;
  printf("error   %s (%s)", eventsource_error_name(eventsource_event_error(ev)),
         eventsource_event_message(ev));
  if (eventsource_event_will_reconnect(ev))
    printf(", reconnecting in %ld ms with Last-Event-ID %s\n",
           eventsource_event_reconnect_ms(ev),
           eventsource_event_last_event_id(ev, NULL));
  else
    printf(", not reconnecting\n");
  fflush(stdout);
}

static void on_comment(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  struct stats *st = ud;
  eventsource_error_t err;
  print_data("comment", ev);
  st->comments++;
  err = eventsource_remove_listener(es, st->comment_listener);
  if (err != EVENTSOURCE_OK)
    fprintf(stderr, "eventsource_remove_listener: %s\n", eventsource_strerror(err));
  else
    printf("        (the comment listener removed itself)\n");
}

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  struct stats *st = ud;
  (void)es;
  (void)ev;
  st->total++;
}

int main(int argc, char **argv) {
  struct stats st = {0};
  eventsource_t *es = NULL;
  eventsource_error_t err;
  const char *step = "";

  st.max_ticks = 4;
  if (argc < 2 || argc > 3 || (argc == 3 && (st.max_ticks = atol(argv[2])) <= 0)) {
    fprintf(stderr, "usage: %s URL [N]\n", argv[0]);
    return 2;
  }

  err = eventsource_new(&es, argv[1]);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_new: %s\n", eventsource_strerror(err));
    return 1;
  }
  /* Stops at the first failing step; step names it. */
  if ((err = eventsource_add_listener(es, "tick", on_tick, &st, NULL)) != EVENTSOURCE_OK)
    step = "eventsource_add_listener(tick)";
  else if ((err = eventsource_add_listener(es, "message", on_message, &st, NULL)) !=
           EVENTSOURCE_OK)
    step = "eventsource_add_listener(message)";
  else if ((err = eventsource_add_listener(es, "open", on_open, &st, NULL)) !=
           EVENTSOURCE_OK)
    step = "eventsource_add_listener(open)";
  else if ((err = eventsource_add_listener(es, "error", on_error, &st, NULL)) !=
           EVENTSOURCE_OK)
    step = "eventsource_add_listener(error)";
  else if ((err = eventsource_add_comment_listener(es, on_comment, &st,
                                                   &st.comment_listener)) !=
           EVENTSOURCE_OK)
    step = "eventsource_add_comment_listener";
  else if ((err = eventsource_add_any_listener(es, on_any, &st, NULL)) != EVENTSOURCE_OK)
    step = "eventsource_add_any_listener";
  else if ((err = eventsource_run(es)) != EVENTSOURCE_OK)
    step = "eventsource_run";

  if (err != EVENTSOURCE_OK)
    fprintf(stderr, "%s: %s: %s\n", step, eventsource_strerror(err),
            eventsource_last_error_message(es));
  else
    printf("done: %ld ticks, %ld messages, %ld opens, %ld errors, %ld comments, "
           "%ld notifications in all\n",
           st.ticks, st.messages, st.opens, st.errors, st.comments, st.total);

  eventsource_free(es);
  return err == EVENTSOURCE_OK && st.ticks == st.max_ticks ? 0 : 1;
}
