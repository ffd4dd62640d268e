/*
 * run.c - closing, restarting and freeing a source, and eventsource_run() /
 * eventsource_start(), which drive it on a private multi handle.
 */
#include "internal.h"

/* libcurl's receive buffer for eventsource_run() and eventsource_start(). */
#define ES_RUN_BUFFER_SIZE (128L * 1024)

/* ------------------------------------------------------------------------ */
/* Closing, restarting, freeing                                             */
/* ------------------------------------------------------------------------ */

void eventsource_close(eventsource_t *es) {
  if (!es)
    return;
  if (atomic_exchange(&es->closed, 1)) {
    return; /* already closed */
  }
  es_set_ready_state(es, EVENTSOURCE_CLOSED);
  atomic_store(&es->user_closed, 1);
  pthread_mutex_lock(&es->multi_lock);
  eventsource_multi_t *m = es->multi;
  int on_loop = m && es_multi_on_loop_thread(m);
  pthread_mutex_unlock(&es->multi_lock);
  if (!m) {
    es_source_ops(es, ES_OP_CLOSE, 0); /* in no loop: nothing to apply */
    return;
  }
  if (!on_loop) {
    /* Wait for a listener running on the loop thread to return: after this,
     * every later dispatch sees `closed`. */
    pthread_mutex_lock(&es->cb_lock);
    pthread_mutex_unlock(&es->cb_lock);
  }
  /* Under multi_lock: the loop cannot detach es and free m meanwhile. */
  pthread_mutex_lock(&es->multi_lock);
  if (es->multi)
    es_multi_queue(es->multi, es, ES_OP_CLOSE);
  pthread_mutex_unlock(&es->multi_lock);
}

eventsource_error_t eventsource_restart(eventsource_t *es) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (es_is_closed(es))
    return EVENTSOURCE_ERR_CLOSED;
  pthread_mutex_lock(&es->multi_lock);
  if (es->multi)
    es_multi_queue(es->multi, es, ES_OP_RESTART);
  pthread_mutex_unlock(&es->multi_lock);
  return EVENTSOURCE_OK;
}

/* Drives es's own multi handle until es is CLOSED. */
static eventsource_error_t run_own(eventsource_t *es) {
  eventsource_error_t rc = eventsource_multi_run(es->own_multi);
  if (rc && !es_is_closed(es)) {
    const char *why = es_multi_error(es->own_multi);
    es_set_error(es, rc, 0, 0, "the loop failed: %s", *why ? why : eventsource_strerror(rc));
    atomic_store(&es->closed, 1);
    es_set_ready_state(es, EVENTSOURCE_CLOSED);
  }
  return rc ? rc : es->close_reason;
}

/* Creates es's own multi handle and adds es to it. */
static eventsource_error_t make_own(eventsource_t *es) {
  if (es->running || es->multi || !es_source_can_join(es))
    return EVENTSOURCE_ERR_STATE;
  eventsource_multi_t *m;
  eventsource_error_t rc = eventsource_multi_new(&m);
  if (rc)
    return rc;
  rc = eventsource_multi_add(m, es);
  if (rc) {
    eventsource_multi_free(m);
    return rc;
  }
  es->own_multi = m;
  es->running = 1;
  /* A source running alone gets a larger receive buffer: fewer, larger
   * reads (measured: +15-25% on small events, more on large ones, with
   * bench/bench_e2e). Sources in the application's own multi keep
   * libcurl's 16 KiB, since thousands of them may share a process. */
  es->tr.buffer_size = ES_RUN_BUFFER_SIZE;
  return EVENTSOURCE_OK;
}

static void drop_own(eventsource_t *es) {
  eventsource_multi_free(es->own_multi); /* removes es */
  es->own_multi = NULL;
  es->running = 0;
  es->tr.buffer_size = 0;
}

static void *thread_main(void *arg) {
  eventsource_t *es = arg;
  pthread_mutex_lock(&es->cb_lock); /* until eventsource_start() is done with es */
  pthread_mutex_unlock(&es->cb_lock);
  run_own(es);
  if (es->free_deferred) {
    /* Freed from one of its listeners: nobody will join this thread. */
    pthread_detach(pthread_self());
    drop_own(es);
    es_source_destroy(es);
  }
  return NULL;
}

eventsource_error_t eventsource_start(eventsource_t *es) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (es->thread_started)
    return EVENTSOURCE_ERR_STATE;
  /* The multi exists before the thread, so close() finds it at once. */
  eventsource_error_t rc = make_own(es);
  if (rc)
    return rc;
  /* Hold cb_lock until es->thread and thread_started are stored: the thread
   * may free es (eventsource_free from a hook) as soon as it runs. */
  pthread_mutex_lock(&es->cb_lock);
  es->thread_started = 1;
  if (pthread_create(&es->thread, NULL, thread_main, es) != 0) {
    es->thread_started = 0;
    pthread_mutex_unlock(&es->cb_lock);
    drop_own(es);
    es_set_error(es, EVENTSOURCE_ERR_SYSTEM, 0, 0, "pthread_create failed");
    return EVENTSOURCE_ERR_SYSTEM;
  }
  pthread_mutex_unlock(&es->cb_lock);
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_run(eventsource_t *es) {
  if (!es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  eventsource_error_t rc = make_own(es);
  if (rc)
    return rc;
  rc = run_own(es);
  int deferred = es->free_deferred;
  drop_own(es);
  if (deferred)
    es_source_destroy(es); /* freed by one of its listeners */
  return rc;
}

void eventsource_free(eventsource_t *es) {
  if (!es)
    return;
  if (es->multi && es_multi_in_step(es->multi)) {
    /* From one of its own callbacks: close now, free at a safe point. */
    es->free_deferred = 1;
    eventsource_close(es);
    if (es->multi && !es->own_multi)
      es_multi_queue(es->multi, es, ES_OP_FREE);
    return;
  }
  if (es->thread_started) {
    eventsource_close(es);
    pthread_join(es->thread, NULL);
    es->thread_started = 0;
    drop_own(es);
    es_source_destroy(es);
    return;
  }
  if (es->multi)
    eventsource_multi_remove(es->multi, es);
  es_source_destroy(es);
}
