/*
 * os.h - what the library needs of the operating system besides the loop
 * backends (lib/loop_*.c): a monotonic clock and the date (internal).
 */
#ifndef EVENTSOURCE_OS_H
#define EVENTSOURCE_OS_H

#include <stdint.h>

/* Milliseconds on a monotonic clock (never goes back, unrelated to the date). */
uint64_t es_now_ms(void);
/* Milliseconds since the epoch on the wall clock (for HTTP dates). */
int64_t es_wall_ms(void);

#endif
