/*
 * error.h - a failure record: code, HTTP status, libcurl code and message
 * (internal). A source keeps its last one in a fixed buffer, so reporting a
 * failure never allocates.
 */
#ifndef EVENTSOURCE_ERROR_H
#define EVENTSOURCE_ERROR_H

#include <stdarg.h>

#include "eventsource.h"

typedef struct es_error {
  eventsource_error_t code;
  long status;   /* HTTP status, 0 when none */
  int curl_code; /* CURLcode, 0 when none */
  char msg[256];
} es_error;

void es_error_set(es_error *e, eventsource_error_t code, long status, int curl_code,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void es_error_set_va(es_error *e, eventsource_error_t code, long status, int curl_code,
                     const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#endif
