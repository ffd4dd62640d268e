/*
 * stats.c - statistics: the getters of a source's and a multi's counters,
 * and what libcurl tells of a response (HTTP version, reused connection,
 * time to the first byte). The counters themselves are bumped where things
 * happen (source.c, multi.c) with the inline helpers of stats.h.
 */
#include <time.h>

#include "internal.h"
#include "multi_int.h"
#include "stats.h"

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Whole milliseconds, rounded up: a time that was measured is never 0
 * (0 means "not yet"), even under a millisecond on loopback. */
static uint64_t ms_up(uint64_t us) { return us ? (us + 999) / 1000 : 1; }

void es_stats_request(es_stats *s) {
  es_stat_store(&s->v[EVENTSOURCE_STAT_TTFB_MS], 0);
  es_stat_store(&s->v[EVENTSOURCE_STAT_FIRST_EVENT_MS], 0);
  es_stat_store(&s->v[EVENTSOURCE_STAT_HTTP_VERSION], 0);
  es_stat_store(&s->v[EVENTSOURCE_STAT_CONNECTION_REUSED], 0);
  s->started_us = now_us();
  s->first_due = 1;
}

/* libcurl's CURL_HTTP_VERSION_* as the documented numbers (0: unknown). */
static uint64_t http_version(long v) {
  switch (v) {
  case CURL_HTTP_VERSION_1_0:
    return 10;
  case CURL_HTTP_VERSION_1_1:
    return 11;
  case CURL_HTTP_VERSION_2_0:
    return 20;
#ifdef CURL_HTTP_VERSION_3
  case CURL_HTTP_VERSION_3:
    return 30;
#endif
  default:
    return 0;
  }
}

void es_stats_response(es_stats *s, CURL *easy) {
  long version = 0, connects = 0;
  curl_off_t ttfb = 0;
  if (!easy || curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version) != CURLE_OK ||
      version == 0)
    return; /* no response (yet) */
  es_stat_store(&s->v[EVENTSOURCE_STAT_HTTP_VERSION], http_version(version));
  /* New connections libcurl made for this transfer: none means it was sent
   * on a connection kept from an earlier one. */
  if (curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK)
    es_stat_store(&s->v[EVENTSOURCE_STAT_CONNECTION_REUSED], connects == 0);
  if (curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &ttfb) == CURLE_OK &&
      ttfb >= 0)
    es_stat_store(&s->v[EVENTSOURCE_STAT_TTFB_MS], ms_up((uint64_t)ttfb));
}

void es_stats_first_event(es_stats *s) {
  s->first_due = 0;
  uint64_t now = now_us();
  es_stat_store(&s->v[EVENTSOURCE_STAT_FIRST_EVENT_MS],
                ms_up(now > s->started_us ? now - s->started_us : 0));
}

/* ------------------------------------------------------------------------ */
/* The public getters                                                       */
/* ------------------------------------------------------------------------ */

uint64_t eventsource_stat(const eventsource_t *es, eventsource_stat_t which) {
  if (!es || (unsigned)which >= (unsigned)ES_STAT_N)
    return 0;
  return es_stat_load(&es->stats.v[which]);
}

uint64_t eventsource_multi_stat(const eventsource_multi_t *m,
                                eventsource_multi_stat_t which) {
  if (!m || (unsigned)which >= (unsigned)ES_MSTAT_N)
    return 0;
  if (which == EVENTSOURCE_MULTI_STAT_ACTIVE)
    return atomic_load(&((eventsource_multi_t *)(uintptr_t)m)->nactive);
  return es_stat_load(&m->stats.v[which]);
}
