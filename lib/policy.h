/*
 * policy.h - the reconnection delay as pure functions (internal).
 *
 * The random source is passed in, so tests can check exact values.
 */
#ifndef EVENTSOURCE_POLICY_H
#define EVENTSOURCE_POLICY_H

#include <stdint.h>

#include "eventsource.h"

/* The delay before reconnection attempt number `attempt` (1 for the first
 * after a failure): d = base * 2^(attempt-1), capped at max, then with
 * jitter drawn uniformly from [d, min(d + d/2, max)] using rnd (any 32-bit
 * value) when jitter is set. base and max are ms (at most 24 h); base is
 * raised to EVENTSOURCE_MIN_RECONNECT_MS first, so the delay never is less,
 * and max to base: max bounds the growth, never the reconnection time itself
 * (a base at or over max is used exactly, without jitter). */
long es_backoff_delay(long base, long max, unsigned attempt, int jitter,
                      uint32_t rnd);

/* The retry: value to use: the server's ms capped at max (the sanity
 * ceiling of eventsource_set_max_server_retry(), not max-retry). */
long es_retry_capped(uint64_t ms, long max);

/* The attempt number after a connection ended: one more than before, or 1
 * when the connection had opened (was_open) at opened_at and either
 * delivered an event or stayed open at least reset_ms until now (all ms on
 * one monotonic clock). */
unsigned es_next_attempt(unsigned attempt, int was_open, int delivered,
                         uint64_t opened_at, uint64_t now, long reset_ms);

/* The spec's decision: reestablish after a network error, the end of the
 * stream or a read timeout (1), and after a refusal for the multi's
 * connection limit (no request went out); fail the connection otherwise (0). */
int es_default_reconnect(eventsource_error_t why);

/* A 32-bit random number from a xorshift state (seeded by the caller). */
uint32_t es_random_next(uint64_t *state);

#endif
