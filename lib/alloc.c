/* alloc.c - allocation with failure injection for tests. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* -1: never fail. Otherwise the number of allocations still allowed. Plain
 * globals: only tests set them, from one thread, before starting work. */
static long fail_after = -1;
static unsigned long failures;

/* Every es_malloc(), es_calloc() and es_realloc() call, successful or not
 * (es_memdup0() and es_strdup() count through es_malloc()). Relaxed atomic:
 * exact across threads, ordered with nothing else; a reader sees the calls
 * made by its own thread and, after any synchronisation with another
 * thread, that thread's too. */
static atomic_ulong alloc_calls;

static int should_fail(void) {
  atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
  if (fail_after < 0)
    return 0;
  if (fail_after == 0) {
    failures++;
    return 1;
  }
  fail_after--;
  return 0;
}

void *es_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }

void *es_calloc(size_t count, size_t n) {
  return should_fail() ? NULL : calloc(count ? count : 1, n ? n : 1);
}

void *es_realloc(void *p, size_t n) {
  return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void es_free(void *p) { free(p); }

char *es_memdup0(const char *s, size_t len) {
  char *d = es_malloc(len + 1);
  if (!d)
    return NULL;
  if (len)
    memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

char *es_strdup(const char *s) { return es_memdup0(s, strlen(s)); }

void es_alloc_fail_after(long after) { fail_after = after; }
void es_alloc_fail_reset(void) { fail_after = -1; failures = 0; }
unsigned long es_alloc_failures(void) { return failures; }
unsigned long es_alloc_count(void) {
  return atomic_load_explicit(&alloc_calls, memory_order_relaxed);
}
