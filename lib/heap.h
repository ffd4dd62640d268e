/*
 * heap.h - the deadline min-heap of a multi (internal).
 *
 * A binary min-heap of sources ordered by their deadline (absolute ms), so
 * that finding the earliest deadline is O(1) and setting or removing one is
 * O(log n). Of a source it knows only es->link.deadline and es->link.heap_index (its
 * position, SIZE_MAX when not in a heap); nothing of libcurl or the multi.
 * Not thread-safe: the loop thread owns it.
 */
#ifndef EVENTSOURCE_HEAP_H
#define EVENTSOURCE_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct eventsource;

typedef struct es_heap {
  struct eventsource **v;
  size_t n, cap;
} es_heap;

/* An empty heap (no allocation). */
void es_heap_init(es_heap *h);
/* Frees the heap's array (not the sources); the heap is empty after. */
void es_heap_free(es_heap *h);
/* Makes room for n sources, so that es_heap_set() never allocates and never
 * fails while at most n are in the heap. 0, or -1 when out of memory (the
 * heap is unchanged). */
int es_heap_reserve(es_heap *h, size_t n);
/* Sets es->link.deadline to at and puts es in the heap or moves it; at 0 takes
 * es out (es->deadline 0). Needs room (es_heap_reserve) for a new source. */
void es_heap_set(es_heap *h, struct eventsource *es, uint64_t at);
/* Takes es out of the heap, if it is in; es->deadline is left as it is. */
void es_heap_remove(es_heap *h, struct eventsource *es);
/* The source with the earliest deadline, or NULL when the heap is empty. */
struct eventsource *es_heap_top(const es_heap *h);

#endif
