/* listeners.c - the listener registry. */
#include "listeners.h"

#include <string.h>

#include "alloc.h"
#include "event.h"

/* FNV-1a: cheap for the few bytes of an event type. */
static uint32_t type_hash(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

void es_listeners_init(es_listeners *l) {
  memset(l, 0, sizeof *l);
  l->next_id = 1;
}

void es_listeners_free(es_listeners *l) {
  for (size_t i = 0; i < l->n; i++)
    es_free(l->v[i].type);
  es_free(l->v);
  memset(l, 0, sizeof *l);
}

eventsource_error_t es_listeners_add(es_listeners *l, int what, const char *type,
                                     eventsource_listener_fn fn, void *userdata,
                                     eventsource_listener_id_t *id) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 4;
    es_listener *v = es_realloc(l->v, cap * sizeof *v);
    if (!v)
      return EVENTSOURCE_ERR_NOMEM;
    l->v = v;
    l->cap = cap;
  }
  es_listener *e = &l->v[l->n];
  memset(e, 0, sizeof *e);
  if (type) {
    e->type_len = strlen(type);
    e->type = es_memdup0(type, e->type_len);
    if (!e->type)
      return EVENTSOURCE_ERR_NOMEM;
    e->hash = type_hash(e->type, e->type_len);
  }
  e->id = l->next_id++;
  e->what = what;
  e->fn = fn;
  e->userdata = userdata;
  l->n++;
  l->live[what]++;
  if (id)
    *id = e->id;
  return EVENTSOURCE_OK;
}

static void compact(es_listeners *l) {
  size_t j = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (l->v[i].id == 0)
      es_free(l->v[i].type);
    else
      l->v[j++] = l->v[i];
  }
  l->n = j;
  l->removed = 0;
}

eventsource_error_t es_listeners_remove(es_listeners *l,
                                        eventsource_listener_id_t id) {
  if (id == 0)
    return EVENTSOURCE_ERR_NOT_FOUND;
  for (size_t i = 0; i < l->n; i++) {
    if (l->v[i].id == id) {
      l->v[i].id = 0;
      l->live[l->v[i].what]--;
      l->removed = 1;
      if (!l->dispatching)
        compact(l);
      return EVENTSOURCE_OK;
    }
  }
  return EVENTSOURCE_ERR_NOT_FOUND;
}

/* Calls, in order, each of the first n listeners of kind `what` (for
 * ES_LISTEN_TYPE: of ev's type, whose hash is h). 0 once *closed is set. */
static inline int call_kind(es_listeners *l, size_t n, int what, uint32_t h,
                            eventsource_t *es, const eventsource_event_t *ev,
                            const _Atomic int *closed) {
  for (size_t i = 0; l->live[what] && i < n; i++) {
    es_listener *e = &l->v[i];
    if (e->id == 0 || e->what != what)
      continue;
    if (what == ES_LISTEN_TYPE &&
        (e->hash != h || e->type_len != ev->type_len ||
         memcmp(e->type, ev->type, ev->type_len) != 0))
      continue;
    if (atomic_load(closed))
      return 0;
    e->fn(es, ev, e->userdata);
  }
  return 1;
}

void es_listeners_dispatch(es_listeners *l, eventsource_t *es,
                           const eventsource_event_t *ev, const _Atomic int *closed) {
  /* Only the listeners present now; the array may move if one is added. */
  size_t n = l->n;
  l->dispatching++;
  if (ev->kind == EVENTSOURCE_KIND_COMMENT)
    call_kind(l, n, ES_LISTEN_COMMENT, 0, es, ev, closed);
  else if (!l->live[ES_LISTEN_TYPE] ||
           call_kind(l, n, ES_LISTEN_TYPE, type_hash(ev->type, ev->type_len), es, ev, closed))
    call_kind(l, n, ES_LISTEN_ANY, 0, es, ev, closed);
  if (--l->dispatching == 0 && l->removed)
    compact(l);
}
