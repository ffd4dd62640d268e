/*
 * alloc.h - the library's allocation functions (internal).
 *
 * Every allocation in lib/ goes through these, so tests can make the n-th
 * allocation fail and check that the failure becomes EVENTSOURCE_ERR_NOMEM.
 */
#ifndef EVENTSOURCE_ALLOC_H
#define EVENTSOURCE_ALLOC_H

#include <stddef.h>

void *es_malloc(size_t n);
void *es_calloc(size_t count, size_t n);
void *es_realloc(void *p, size_t n);
void es_free(void *p);
/* Copies len bytes and adds a NUL. */
char *es_memdup0(const char *s, size_t len);
char *es_strdup(const char *s);

/* Test hook: after `after` more successful allocations, every allocation fails
 * until es_alloc_fail_reset(); -1 (the default) never fails. Not thread-safe:
 * tests only. es_alloc_failures() counts failures injected so far. */
void es_alloc_fail_after(long after);
void es_alloc_fail_reset(void);
unsigned long es_alloc_failures(void);

/* How many times es_malloc(), es_calloc() and es_realloc() were called
 * (es_memdup0() and es_strdup() included, failed calls included) since the
 * program started, by every thread: a relaxed atomic counter, exact, never
 * reset. For tests and benchmarks that check that a warm source allocates
 * nothing per event (test_alloc, bench_e2e). Only the library's own
 * allocations: libcurl's are not counted. */
unsigned long es_alloc_count(void);

#endif
