/*
 * heap.c - the deadline min-heap (see heap.h).
 */
#include "heap.h"

#include "alloc.h"
#include "internal.h"

void es_heap_init(es_heap *h) {
  h->v = NULL;
  h->n = h->cap = 0;
}

void es_heap_free(es_heap *h) {
  es_free(h->v);
  es_heap_init(h);
}

int es_heap_reserve(es_heap *h, size_t n) {
  if (n <= h->cap)
    return 0;
  size_t cap = h->cap ? h->cap : 16;
  while (cap < n) {
    if (cap > SIZE_MAX / 2 / sizeof *h->v)
      return -1;
    cap *= 2;
  }
  eventsource_t **v = es_realloc(h->v, cap * sizeof *v);
  if (!v)
    return -1;
  h->v = v;
  h->cap = cap;
  return 0;
}

static void swap(es_heap *h, size_t a, size_t b) {
  eventsource_t *t = h->v[a];
  h->v[a] = h->v[b];
  h->v[b] = t;
  h->v[a]->link.heap_index = a;
  h->v[b]->link.heap_index = b;
}

static void up(es_heap *h, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h->v[p]->link.deadline <= h->v[i]->link.deadline)
      break;
    swap(h, i, p);
    i = p;
  }
}

static void down(es_heap *h, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, s = i;
    if (l < h->n && h->v[l]->link.deadline < h->v[s]->link.deadline)
      s = l;
    if (r < h->n && h->v[r]->link.deadline < h->v[s]->link.deadline)
      s = r;
    if (s == i)
      break;
    swap(h, i, s);
    i = s;
  }
}

void es_heap_remove(es_heap *h, eventsource_t *es) {
  size_t i = es->link.heap_index;
  if (i == SIZE_MAX || i >= h->n || h->v[i] != es)
    return;
  es->link.heap_index = SIZE_MAX;
  h->n--;
  if (i == h->n)
    return;
  h->v[i] = h->v[h->n];
  h->v[i]->link.heap_index = i;
  up(h, i);
  down(h, h->v[i]->link.heap_index);
}

void es_heap_set(es_heap *h, eventsource_t *es, uint64_t at) {
  if (at == 0) {
    es_heap_remove(h, es);
    es->link.deadline = 0;
    return;
  }
  es->link.deadline = at;
  if (es->link.heap_index != SIZE_MAX) {
    up(h, es->link.heap_index);
    down(h, es->link.heap_index);
    return;
  }
  if (h->n == h->cap)
    return; /* no room reserved: a caller's bug; never reached from multi.c */
  es->link.heap_index = h->n;
  h->v[h->n++] = es;
  up(h, es->link.heap_index);
}

eventsource_t *es_heap_top(const es_heap *h) { return h->n ? h->v[0] : NULL; }
