/*
 * stats.h - the counters behind eventsource_stat() and
 * eventsource_multi_stat() (internal).
 *
 * One writer, many readers: only the loop thread that drives a source (or
 * a multi) writes its counters, any thread may read them. So a counter is
 * bumped with a relaxed load and a relaxed store (no locked read-modify-
 * write, no fence: a plain add on the common targets), and read with a
 * relaxed load, which is race-free and never tears. The indices are the
 * public enums' values, so reading one is an array load.
 */
#ifndef EVENTSOURCE_STATS_H
#define EVENTSOURCE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>

#include "eventsource.h"

/* One past the last value of each enum (append-only, like the enums). */
#define ES_STAT_N ((int)EVENTSOURCE_STAT_REQUESTS + 1)
#define ES_MSTAT_N ((int)EVENTSOURCE_MULTI_STAT_CONNECTIONS + 1)

/* A source's counters, indexed by eventsource_stat_t, and what measuring
 * the current connection needs (loop thread only). */
typedef struct es_stats {
  _Atomic uint64_t v[ES_STAT_N];
  uint64_t started_us; /* when the current request started */
  int first_due;       /* its first event is still to come */
} es_stats;

/* A multi's counters, indexed by eventsource_multi_stat_t (its totals are
 * bumped by its sources, on its loop thread). */
typedef struct es_mstats {
  _Atomic uint64_t v[ES_MSTAT_N];
} es_mstats;

static inline uint64_t es_stat_load(const _Atomic uint64_t *c) {
  return atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)c, memory_order_relaxed);
}
static inline void es_stat_store(_Atomic uint64_t *c, uint64_t v) {
  atomic_store_explicit(c, v, memory_order_relaxed);
}
/* Single writer: load and store, no read-modify-write. */
static inline void es_stat_add(_Atomic uint64_t *c, uint64_t n) {
  es_stat_store(c, es_stat_load(c) + n);
}

/* A counter of the source and, when it is in a multi (up != NULL), the
 * same total of the multi. */
#define es_stat_bump(s, up, name, n)                                           \
  do {                                                                         \
    es_stat_add(&(s)->v[EVENTSOURCE_STAT_##name], (n));                        \
    if (up)                                                                    \
      es_stat_add(&(up)->v[EVENTSOURCE_MULTI_STAT_##name], (n));               \
  } while (0)

/* A request starts: the values of "the current connection" go back to 0
 * (time to the first byte and event, HTTP version, reused), and its time
 * is taken. */
void es_stats_request(es_stats *s);
/* A response began on easy (it opened, or the transfer ended with one):
 * records its HTTP version, whether its connection was reused and the time
 * to its first byte, from libcurl. Does nothing when there was no response. */
void es_stats_response(es_stats *s, CURL *easy);
/* The first event of the connection (s->first_due was set): the time
 * since its request started. */
void es_stats_first_event(es_stats *s);

#endif
