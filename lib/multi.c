/*
 * multi.c - the loop: many sources on one libcurl multi handle.
 *
 * libcurl's multi_socket interface tells us which descriptors to watch; we
 * either watch them ourselves (lib/loop.h; eventsource_multi_poll/run) or pass
 * them to the application's event loop (socket and timer callbacks). Besides
 * libcurl's own timer, each source may have one deadline (its reconnection
 * time or its read timeout), kept in a binary min-heap, so the work per event
 * and per timer does not grow with the number of sources. Requests from
 * other threads and from inside callbacks (close, restart, add, remove,
 * free) are queued and applied between libcurl calls; the loop's wakeup
 * descriptor wakes it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "heap.h"
#include "internal.h"
#include "loop.h"
#include "multi_int.h"
#include "os.h"
#include "policy.h"


/* ------------------------------------------------------------------------ */
/* Deadlines (lib/heap.c)                                                   */
/* ------------------------------------------------------------------------ */

/* Sets es's deadline (0: none) and updates the heap. */
static void set_deadline(eventsource_multi_t *m, eventsource_t *es, uint64_t at) {
  /* The heap has room for every source (reserved in eventsource_multi_add),
   * so inserting never allocates and never fails. */
  es_heap_set(&m->heap, es, at);
}

/* ------------------------------------------------------------------------ */
/* Wakeup and pending requests                                              */
/* ------------------------------------------------------------------------ */

int es_multi_on_loop_thread(const eventsource_multi_t *m) {
  return atomic_load(&((eventsource_multi_t *)(uintptr_t)m)->loop_thread_set) &&
         pthread_equal(m->loop_thread, pthread_self());
}

int es_multi_in_step(const eventsource_multi_t *m) {
  return es_multi_on_loop_thread(m) && m->in_step;
}

eventsource_error_t eventsource_multi_wakeup(eventsource_multi_t *m) {
  if (!m)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (atomic_exchange(&m->wake_pending, 1))
    return EVENTSOURCE_OK; /* a wakeup is already on its way */
  return es_loop_wakeup(m->loop) ? EVENTSOURCE_ERR_SYSTEM : EVENTSOURCE_OK;
}

void es_multi_drain_wakeup(eventsource_multi_t *m) {
  atomic_store(&m->wake_pending, 0);
  es_loop_drain(m->loop);
}

void es_multi_queue(eventsource_multi_t *m, eventsource_t *es, unsigned ops) {
  pthread_mutex_lock(&m->lock);
  atomic_fetch_or(&es->ops, ops);
  if (!es->link.queued) {
    es->link.queued = 1;
    es->link.pending_next = NULL;
    if (m->pending_tail)
      m->pending_tail->link.pending_next = es;
    else
      m->pending = es;
    m->pending_tail = es;
  }
  pthread_mutex_unlock(&m->lock);
  /* Inside a step the loop looks at the queue before it waits again. */
  if (!es_multi_in_step(m))
    eventsource_multi_wakeup(m);
}

static void unqueue(eventsource_multi_t *m, eventsource_t *es) {
  pthread_mutex_lock(&m->lock);
  if (es->link.queued) {
    eventsource_t **pp = &m->pending, *prev = NULL;
    while (*pp && *pp != es) {
      prev = *pp;
      pp = &(*pp)->link.pending_next;
    }
    if (*pp) {
      *pp = es->link.pending_next;
      if (m->pending_tail == es)
        m->pending_tail = prev;
    }
    es->link.queued = 0;
  }
  atomic_store(&es->ops, 0);
  pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------------------ */
/* Membership                                                               */
/* ------------------------------------------------------------------------ */

/* Counts es as no longer active. */
static void source_closed(eventsource_multi_t *m, eventsource_t *es) {
  if (es->link.counted_active) {
    es->link.counted_active = 0;
    m->nactive--;
  }
}

/* Takes es's transfer out of the curl multi (or its origin's gate), and its
 * deadline. */
static void drop_transfer(eventsource_multi_t *m, eventsource_t *es) {
  if (es->link.in_curl) {
    curl_multi_remove_handle(m->cm, es->link.in_curl);
    es->link.in_curl = NULL;
  }
  es_gate_leave(&m->gates, es, es->conn_broken);
  set_deadline(m, es, 0);
}

/* Adds es's prepared transfer to libcurl, with deadline at (its read
 * timeout; 0: none). 0, or -1 when libcurl refused it. */
static int add_to_curl(eventsource_multi_t *m, eventsource_t *es, uint64_t at) {
  if (curl_multi_add_handle(m->cm, es->tr.easy) != CURLM_OK)
    return -1;
  es->link.in_curl = es->tr.easy;
  es->tr.clock = &m->now;
  set_deadline(m, es, at);
  return 0;
}

static void apply(eventsource_multi_t *m, eventsource_t *es, es_next n);

/* The requests their origins' gates let through (http2.c). */
static void admit_ready(eventsource_multi_t *m) {
  eventsource_t *es;
  while ((es = es_gate_next(&m->gates))) {
    uint64_t now = es_now_ms();
    if (es->gate.refused) {
      es->gate.refused = 0;
      set_deadline(m, es, 0);
      apply(m, es, es_source_refused(es, m->gates.max_host_connections, now));
      continue;
    }
    /* It waited: its read timeout counts from now (the gate reset its
     * last activity when it let it through). */
    uint64_t at = es->opt.read_timeout_ms > 0 ? now + (uint64_t)es->opt.read_timeout_ms : 0;
    if (add_to_curl(m, es, at) != 0) {
      es_gate_leave(&m->gates, es, 0);
      apply(m, es, es_source_add_failed(es, now));
    }
  }
}

/* Does what the state machine decided for es. */
static void apply(eventsource_multi_t *m, eventsource_t *es, es_next n) {
  for (;;) {
    if (n.drop)
      drop_transfer(m, es);
    switch (n.go) {
    case ES_GO_NONE:
      return;
    case ES_GO_CONNECT:
      set_deadline(m, es, 0);
      n = es_source_connect(es, es_now_ms());
      continue;
    case ES_GO_ADD: {
      uint64_t now = es_now_ms();
      es_gate_verdict v = es_gate_enter(&m->gates, es, now);
      if (v == ES_GATE_FULL) {
        n = es_source_refused(es, m->gates.max_host_connections, now);
        continue;
      }
      if (v == ES_GATE_HOLD) {
        /* waits for its origin's connection, within a bound */
        set_deadline(m, es, now + ES_GATE_SETTLE_MS);
        return;
      }
      if (add_to_curl(m, es, n.at) != 0) {
        es_gate_leave(&m->gates, es, 0);
        n = es_source_add_failed(es, now);
        continue;
      }
      return;
    }
    case ES_GO_TIMER:
      set_deadline(m, es, n.at);
      return;
    case ES_GO_DONE:
      set_deadline(m, es, 0);
      source_closed(m, es);
      return;
    }
    return;
  }
}

/* Takes es out of m at once (outside libcurl callbacks). */
static void detach(eventsource_multi_t *m, eventsource_t *es) {
  drop_transfer(m, es);
  es->tr.clock = NULL;
  source_closed(m, es);
  if (es->link.prev)
    es->link.prev->link.next = es->link.next;
  else
    m->sources = es->link.next;
  if (es->link.next)
    es->link.next->link.prev = es->link.prev;
  es->link.next = es->link.prev = NULL;
  m->nsources--;
  es->link.up = NULL;
  atomic_fetch_sub(&m->stats.v[EVENTSOURCE_MULTI_STAT_SOURCES], 1);
  pthread_mutex_lock(&es->multi_lock);
  es->multi = NULL;
  pthread_mutex_unlock(&es->multi_lock);
  /* After es->multi is NULL: no other thread can queue es on m any more. */
  unqueue(m, es);
  es_source_left(es);
}

/* Links es into m (the caller holds step_lock, or is m's step). */
static eventsource_error_t attach(eventsource_multi_t *m, eventsource_t *es) {
  if (es->multi || !es_source_can_join(es))
    return EVENTSOURCE_ERR_STATE;
  if (es_heap_reserve(&m->heap, m->nsources + 1) != 0)
    return EVENTSOURCE_ERR_NOMEM;
  pthread_mutex_lock(&es->multi_lock);
  es->multi = m;
  pthread_mutex_unlock(&es->multi_lock);
  es->link.prev = NULL;
  es->link.next = m->sources;
  if (m->sources)
    m->sources->link.prev = es;
  m->sources = es;
  m->nsources++;
  m->nactive++;
  es->link.counted_active = 1;
  es->link.up = &m->stats;
  atomic_fetch_add(&m->stats.v[EVENTSOURCE_MULTI_STAT_ADDED], 1);
  atomic_fetch_add(&m->stats.v[EVENTSOURCE_MULTI_STAT_SOURCES], 1);
  es_source_joined(es);
  es->link.heap_index = SIZE_MAX;
  es_multi_queue(m, es, ES_OP_START);
  return EVENTSOURCE_OK;
}

eventsource_error_t eventsource_multi_add(eventsource_multi_t *m, eventsource_t *es) {
  if (!m || !es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  /* The list is the loop thread's, but eventsource_multi_remove() from
   * another thread detaches between steps under step_lock: take it too,
   * unless this is a step (a listener adding a source). */
  int locked = !es_multi_in_step(m);
  if (locked)
    pthread_mutex_lock(&m->step_lock);
  eventsource_error_t rc = attach(m, es);
  if (locked)
    pthread_mutex_unlock(&m->step_lock);
  if (rc == EVENTSOURCE_OK && m->timer_fn && !m->in_step) {
    /* Driven by the application's loop, which may be idle and not watching
     * the wakeup descriptor with a reference: ask it for a step, as libcurl
     * does from curl_multi_add_handle(). */
    m->timer_armed = 1;
    m->announced = es_now_ms();
    m->timer_fn(m, 0, m->timer_ud);
  }
  return rc;
}

/* Queues the removal of es for the loop thread, if es is still in m. Under
 * es->multi_lock, as in eventsource_close(): the loop may be detaching es. */
static eventsource_error_t queue_remove(eventsource_multi_t *m, eventsource_t *es) {
  pthread_mutex_lock(&es->multi_lock);
  int found = es->multi == m;
  if (found)
    es_multi_queue(m, es, ES_OP_REMOVE);
  pthread_mutex_unlock(&es->multi_lock);
  return found ? EVENTSOURCE_OK : EVENTSOURCE_ERR_NOT_FOUND;
}

eventsource_error_t eventsource_multi_remove(eventsource_multi_t *m, eventsource_t *es) {
  if (!m || !es)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  /* From a callback: when the step's callbacks are done. */
  if (es_multi_in_step(m))
    return queue_remove(m, es);
  /* Any thread, no step running: the loop thread touches the sources only
   * inside steps, so holding step_lock makes detaching here safe. A step
   * running on another thread (perhaps waiting in the loop): queue and wake
   * it. */
  if (pthread_mutex_trylock(&m->step_lock) != 0)
    return queue_remove(m, es);
  eventsource_error_t rc = EVENTSOURCE_OK;
  if (es->multi != m)
    rc = EVENTSOURCE_ERR_NOT_FOUND;
  else
    detach(m, es);
  pthread_mutex_unlock(&m->step_lock);
  /* eventsource_multi_run() on another thread may have counted es as active
   * just before: wake it so that it counts again instead of waiting. */
  if (rc == EVENTSOURCE_OK && !es_multi_on_loop_thread(m))
    eventsource_multi_wakeup(m);
  return rc;
}

size_t eventsource_multi_active(const eventsource_multi_t *m) {
  return m ? m->nactive : 0;
}

/* ------------------------------------------------------------------------ */
/* libcurl's socket callback                                                */
/* ------------------------------------------------------------------------ */

/* A descriptor could not be watched. Returning an error to libcurl would make
 * it abort every transfer of the multi, so fail only the source it belongs to. */
static void watch_failed(eventsource_multi_t *m, CURL *easy, eventsource_error_t code,
                         const char *msg) {
  char *priv = NULL;
  if (!easy || curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv)
    return;
  eventsource_t *es = (eventsource_t *)(void *)priv;
  if (es->multi == m && es_source_note_failure(es, code, msg))
    es_multi_queue(m, es, ES_OP_FAIL);
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp,
                   void *socketp) {
  eventsource_multi_t *m = userp;
  if (m->sock_fn) {
    int w = what == CURL_POLL_REMOVE ? EVENTSOURCE_POLL_REMOVE
                                     : ((what & CURL_POLL_IN) ? EVENTSOURCE_POLL_IN : 0) |
                                           ((what & CURL_POLL_OUT) ? EVENTSOURCE_POLL_OUT : 0);
    if (m->sock_fn(m, (int)s, w, m->sock_ud, socketp) != 0 && what != CURL_POLL_REMOVE)
      watch_failed(m, easy, EVENTSOURCE_ERR_CALLBACK,
                   "the socket callback refused to watch the connection");
    return 0;
  }
  if (what == CURL_POLL_REMOVE) {
    es_loop_unwatch(m->loop, (int)s); /* may already be closed */
    return 0;
  }
  int rc = es_loop_watch(m->loop, (int)s,
                         ((what & CURL_POLL_IN) ? ES_LOOP_IN : 0u) |
                             ((what & CURL_POLL_OUT) ? ES_LOOP_OUT : 0u));
  if (rc == ENOMEM)
    watch_failed(m, easy, EVENTSOURCE_ERR_NOMEM, "no memory to watch the connection");
  else if (rc)
    watch_failed(m, easy, EVENTSOURCE_ERR_SYSTEM, "the loop could not watch the connection");
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Creating and freeing                                                     */
/* ------------------------------------------------------------------------ */

eventsource_error_t eventsource_multi_new(eventsource_multi_t **out) {
  if (!out)
    return EVENTSOURCE_ERR_INVALID_ARGUMENT;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return EVENTSOURCE_ERR_CURL;
  eventsource_multi_t *m = es_calloc(1, sizeof *m);
  if (!m) {
    curl_global_cleanup();
    return EVENTSOURCE_ERR_NOMEM;
  }
  eventsource_error_t rc = EVENTSOURCE_ERR_SYSTEM;
  m->wakefd = -1;
  es_heap_init(&m->heap);
  if (pthread_mutex_init(&m->lock, NULL) != 0)
    goto fail_mutex;
  if (pthread_mutex_init(&m->step_lock, NULL) != 0) {
    pthread_mutex_destroy(&m->lock);
    goto fail_mutex;
  }
  int lrc = es_loop_new(&m->loop);
  if (lrc) {
    rc = lrc == ENOMEM ? EVENTSOURCE_ERR_NOMEM : EVENTSOURCE_ERR_SYSTEM;
    goto fail;
  }
  m->wakefd = es_loop_wakeup_fd(m->loop);
  m->cm = curl_multi_init();
  if (!m->cm) {
    rc = EVENTSOURCE_ERR_CURL;
    goto fail;
  }
  if (curl_multi_setopt(m->cm, CURLMOPT_SOCKETFUNCTION, sock_cb) != CURLM_OK ||
      curl_multi_setopt(m->cm, CURLMOPT_SOCKETDATA, (void *)m) != CURLM_OK) {
    rc = EVENTSOURCE_ERR_CURL;
    goto fail;
  }
  es_gates_init(&m->gates);
  m->announced = NO_DEADLINE;
  *out = m;
  return EVENTSOURCE_OK;
fail:
  if (m->cm)
    curl_multi_cleanup(m->cm);
  es_loop_free(m->loop);
  pthread_mutex_destroy(&m->step_lock);
  pthread_mutex_destroy(&m->lock);
fail_mutex:
  es_free(m);
  curl_global_cleanup();
  return rc;
}

void eventsource_multi_free(eventsource_multi_t *m) {
  if (!m || es_multi_in_step(m))
    return; /* from a callback: refused (documented), freeing would pull the
               loop from under the step that is running */
  while (m->sources) {
    eventsource_t *es = m->sources;
    /* A source freed from a listener whose free was still queued is ours to
     * finish; one run by eventsource_run()/start() is freed by them. */
    int destroy = es->free_deferred && !es->own_multi;
    detach(m, es);
    if (destroy)
      es_source_destroy(es);
  }
  curl_multi_cleanup(m->cm); /* may still call the socket callback */
  /* The last callback of all: an adapter may release itself on it. */
  if (m->sock_fn)
    m->sock_fn(m, m->wakefd, EVENTSOURCE_POLL_REMOVE, m->sock_ud, m->wake_socketp);
  es_loop_free(m->loop);
  pthread_mutex_destroy(&m->step_lock);
  pthread_mutex_destroy(&m->lock);
  es_heap_free(&m->heap);
  es_gates_free(&m->gates);
  es_free(m);
  curl_global_cleanup();
}

/* ------------------------------------------------------------------------ */
/* The step                                                                 */
/* ------------------------------------------------------------------------ */

void es_multi_begin_step(eventsource_multi_t *m) {
  pthread_mutex_lock(&m->step_lock);
  if (!atomic_load(&m->loop_thread_set) ||
      !pthread_equal(m->loop_thread, pthread_self())) {
    m->loop_thread = pthread_self();
    atomic_store(&m->loop_thread_set, 1);
  }
  m->in_step = 1;
}

/* Transfers that libcurl finished. */
static void process_done(eventsource_multi_t *m) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(m->cm, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    CURL *easy = msg->easy_handle;
    CURLcode result = msg->data.result;
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    eventsource_t *es = (eventsource_t *)(void *)priv;
    if (es && es->multi == m) {
      es->conn_broken = es_http_broken(result);
      drop_transfer(m, es);
      apply(m, es, es_source_transfer_done(es, result, es_now_ms()));
    }
  }
}

static void process_pending(eventsource_multi_t *m) {
  for (;;) {
    /* One at a time, under the lock: another thread may queue es again (and
     * link others after it) as soon as es->link.queued is 0. */
    pthread_mutex_lock(&m->lock);
    eventsource_t *es = m->pending;
    if (es) {
      m->pending = es->link.pending_next;
      if (!m->pending)
        m->pending_tail = NULL;
      es->link.pending_next = NULL;
      es->link.queued = 0;
    }
    pthread_mutex_unlock(&m->lock);
    if (!es)
      return;
    unsigned ops = atomic_exchange(&es->ops, 0);
    if (es->multi != m)
      continue;
    if (ops & ES_OP_FREE) {
      detach(m, es);
      es_source_destroy(es);
      continue;
    }
    if (ops & ES_OP_REMOVE) {
      detach(m, es);
      continue;
    }
    apply(m, es, es_source_ops(es, ops, es_now_ms()));
  }
}

/* Sources whose deadline has passed: reconnect, or check the read timeout. */
static void process_deadlines(eventsource_multi_t *m) {
  uint64_t now = es_now_ms();
  /* Each step moves or clears the top's deadline, so this ends. */
  eventsource_t *es;
  while ((es = es_heap_top(&m->heap)) && es->link.deadline <= now) {
    if (es->gate.state == ES_GATE_WAITING) {
      /* waited long enough: alone, or sharing without the server's answer */
      set_deadline(m, es, es_gate_expire(&m->gates, es, now) ? now + ES_GATE_SETTLE_MS : 0);
      continue;
    }
    apply(m, es, es_source_deadline(es, now));
  }
}

/* The earliest of libcurl's timer and our deadlines, absolute ms. */
uint64_t es_multi_next_deadline(eventsource_multi_t *m, uint64_t now) {
  uint64_t at = NO_DEADLINE;
  long ct = -1;
  if (curl_multi_timeout(m->cm, &ct) == CURLM_OK && ct >= 0)
    at = now + (uint64_t)ct;
  eventsource_t *top = es_heap_top(&m->heap);
  if (top && top->link.deadline < at)
    at = top->link.deadline;
  return at;
}

int es_multi_has_pending(eventsource_multi_t *m) {
  pthread_mutex_lock(&m->lock);
  int r = m->pending != NULL;
  pthread_mutex_unlock(&m->lock);
  return r;
}

/* After libcurl did its work: completions, queued requests, deadlines. */
void es_multi_settle(eventsource_multi_t *m) {
  do {
    process_done(m);
    process_pending(m);
    process_deadlines(m);
    admit_ready(m);
    process_done(m);
  } while (es_multi_has_pending(m));
}

/* Tells the application's timer callback about a changed deadline. */
static void announce_timer(eventsource_multi_t *m) {
  if (!m->timer_fn)
    return;
  uint64_t now = es_now_ms();
  uint64_t at = es_multi_next_deadline(m, now);
  if (at == NO_DEADLINE) {
    if (m->timer_armed) {
      m->timer_armed = 0;
      m->announced = NO_DEADLINE;
      m->timer_fn(m, -1, m->timer_ud);
    }
    return;
  }
  if (m->timer_armed && at == m->announced)
    return;
  m->announced = at;
  m->timer_armed = 1;
  long ms = at <= now ? 0 : (long)(at - now);
  m->timer_fn(m, ms, m->timer_ud);
}

void es_multi_end_step(eventsource_multi_t *m) {
  es_multi_settle(m);
  m->in_step = 0;
  announce_timer(m);
  pthread_mutex_unlock(&m->step_lock);
}

