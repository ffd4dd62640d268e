/*
 * example-close.c - the two ways to stop a source.
 *
 *   example-close URL
 *
 * 1. From a listener, while eventsource_run() drives the source on this
 *    thread: eventsource_close() inside the listener, and eventsource_run()
 *    returns EVENTSOURCE_OK when the listener returns.
 * 2. From another thread: eventsource_start() runs the source on a thread
 *    of the library's; the main thread waits on a condition variable until
 *    the listener has seen an event, then calls eventsource_close(). Once
 *    that returns no listener runs again, and eventsource_free() joins the
 *    library's thread.
 *
 * Exits 0 when both worked.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <eventsource.h>

/* ---- 1. closing from a listener ----------------------------------------- */

static void close_on_first(eventsource_t *es, const eventsource_event_t *ev,
                           void *userdata) {
  long *seen = userdata;
  if (eventsource_event_kind(ev) != EVENTSOURCE_KIND_MESSAGE)
    return; /* open and error notifications */
  printf("1: got \"%s\" id=%s, closing from the listener\n",
         eventsource_event_type(ev, NULL), eventsource_event_last_event_id(ev, NULL));
  fflush(stdout);
  (*seen)++;
  eventsource_close(es);
}

static int close_from_listener(const char *url) {
  eventsource_t *es = NULL;
  eventsource_error_t err;
  long seen = 0;
  int ok;

  err = eventsource_new(&es, url);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_new: %s\n", eventsource_strerror(err));
    return -1;
  }
  err = eventsource_add_any_listener(es, close_on_first, &seen, NULL);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_add_any_listener: %s\n", eventsource_strerror(err));
    eventsource_free(es);
    return -1;
  }
  err = eventsource_run(es);
  if (err != EVENTSOURCE_OK)
    fprintf(stderr, "eventsource_run: %s: %s\n", eventsource_strerror(err),
            eventsource_last_error_message(es));
  ok = err == EVENTSOURCE_OK && seen == 1 &&
       eventsource_ready_state(es) == EVENTSOURCE_CLOSED;
  if (ok)
    printf("1: eventsource_run() returned OK, readyState CLOSED\n");
  eventsource_free(es);
  return ok ? 0 : -1;
}

/* ---- 2. closing from another thread ------------------------------------- */

struct shared {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t main_thread;
  long events;     /* events the listener has seen */
  int closed;      /* eventsource_close() has returned */
  long late;       /* listener calls after that: must stay 0 */
  int other_thread; /* the listener ran on a thread other than main's */
};

/* Runs on the library's thread. */
static void on_event(eventsource_t *es, const eventsource_event_t *ev,
                     void *userdata) {
  struct shared *sh = userdata;
  (void)es;
  if (eventsource_event_kind(ev) != EVENTSOURCE_KIND_MESSAGE)
    return;
  pthread_mutex_lock(&sh->lock);
  if (sh->closed)
    sh->late++;
  sh->events++;
  sh->other_thread = !pthread_equal(pthread_self(), sh->main_thread);
  pthread_cond_signal(&sh->cond);
  pthread_mutex_unlock(&sh->lock);
}

static int close_from_thread(const char *url) {
  struct shared sh;
  eventsource_t *es = NULL;
  eventsource_error_t err;
  struct timespec deadline;
  long seen;
  int rc = 0, ok;

  memset(&sh, 0, sizeof sh);
  sh.main_thread = pthread_self();
  if (pthread_mutex_init(&sh.lock, NULL) != 0)
    return -1;
  if (pthread_cond_init(&sh.cond, NULL) != 0) {
    pthread_mutex_destroy(&sh.lock);
    return -1;
  }

  err = eventsource_new(&es, url);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_new: %s\n", eventsource_strerror(err));
    goto out;
  }
  err = eventsource_add_any_listener(es, on_event, &sh, NULL);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_add_any_listener: %s\n", eventsource_strerror(err));
    goto out;
  }
  err = eventsource_start(es);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_start: %s\n", eventsource_strerror(err));
    goto out;
  }

  /* Wait (at most 10 s) for the first event. */
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 10;
  pthread_mutex_lock(&sh.lock);
  while (sh.events == 0 && rc == 0)
    rc = pthread_cond_timedwait(&sh.cond, &sh.lock, &deadline);
  pthread_mutex_unlock(&sh.lock);
  if (rc != 0)
    fprintf(stderr, "2: no event within 10 s (%s)\n", strerror(rc));

  /* Never call eventsource_close() with a lock the listener takes held: it
   * waits for a running listener to return. */
  eventsource_close(es);
  pthread_mutex_lock(&sh.lock);
  sh.closed = 1;
  seen = sh.events;
  pthread_mutex_unlock(&sh.lock);
  printf("2: closed from the main thread after %ld event(s); listener ran on %s\n",
         seen, sh.other_thread ? "the library's thread" : "the main thread?!");
  if (eventsource_ready_state(es) != EVENTSOURCE_CLOSED) {
    fprintf(stderr, "2: readyState is not CLOSED after eventsource_close()\n");
    err = EVENTSOURCE_ERR_STATE;
  }

out:
  eventsource_free(es); /* joins the library's thread; NULL is fine */
  /* The thread is gone: no lock needed any more. */
  ok = err == EVENTSOURCE_OK && rc == 0 && sh.late == 0 && sh.other_thread;
  if (sh.late != 0)
    fprintf(stderr, "2: %ld listener call(s) after eventsource_close() returned\n",
            sh.late);
  if (ok)
    printf("2: no listener call after eventsource_close(); freed\n");
  pthread_cond_destroy(&sh.cond);
  pthread_mutex_destroy(&sh.lock);
  return ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s URL\n", argv[0]);
    return 2;
  }
  if (close_from_listener(argv[1]) != 0)
    return 1;
  if (close_from_thread(argv[1]) != 0)
    return 1;
  return 0;
}
