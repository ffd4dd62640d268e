/* policy.c - reconnection delays. */
#include "policy.h"

long es_backoff_delay(long base, long max, unsigned attempt, int jitter,
                      uint32_t rnd) {
  /* The floor keeps "retry: 0" and a 0 maximum from a tight loop: doubling
   * 0 would stay 0. */
  if (base < EVENTSOURCE_MIN_RECONNECT_MS)
    base = EVENTSOURCE_MIN_RECONNECT_MS;
  /* max bounds the backoff's growth only: a reconnection time above it (a
   * server's retry:, say) is used as it is, never shortened. */
  if (max < base)
    max = base;
  long d = base;
  /* Doubling stops at max; no overflow since d <= max before each step. */
  for (unsigned i = 1; i < attempt && d < max; i++)
    d = d > max / 2 ? max : d * 2;
  if (jitter && d < max) {
    /* Only upwards: the spec's wait is the reconnection time, then optionally
     * more. Draw from [d, min(d + d/2, max)]. */
    long span = d / 2;
    if (span > max - d)
      span = max - d;
    d += (long)(rnd % ((uint32_t)span + 1));
  }
  return d;
}

long es_retry_capped(uint64_t ms, long max) {
  return ms > (uint64_t)max ? max : (long)ms;
}

uint32_t es_random_next(uint64_t *state) {
  uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *state = x;
  return (uint32_t)(x >> 32);
}

unsigned es_next_attempt(unsigned attempt, int was_open, int delivered,
                         uint64_t opened_at, uint64_t now, long reset_ms) {
  if (was_open &&
      (delivered ||
       (now >= opened_at && now - opened_at >= (uint64_t)(reset_ms < 0 ? 0 : reset_ms))))
    attempt = 0;
  return attempt == UINT32_MAX ? attempt : attempt + 1;
}

int es_default_reconnect(eventsource_error_t why) {
  return why == EVENTSOURCE_ERR_NETWORK || why == EVENTSOURCE_ERR_EOF ||
         why == EVENTSOURCE_ERR_READ_TIMEOUT || why == EVENTSOURCE_ERR_CONNECTION_LIMIT;
}
