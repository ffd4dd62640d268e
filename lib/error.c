/* error.c - error names and descriptions, failure records, the version. */
#include "error.h"

#include <stdio.h>
#include <string.h>

void es_error_set_va(es_error *e, eventsource_error_t code, long status, int curl_code,
                     const char *fmt, va_list ap) {
  e->code = code;
  e->status = status;
  e->curl_code = curl_code;
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

void es_error_set(es_error *e, eventsource_error_t code, long status, int curl_code,
                  const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  es_error_set_va(e, code, status, curl_code, fmt, ap);
  va_end(ap);
}

const char *eventsource_version(void) { return EVENTSOURCE_VERSION; }

unsigned eventsource_version_num(void) { return EVENTSOURCE_VERSION_NUM; }

/* A switch with no default over the enum: with -Wswitch the compiler names any
 * code that EVENTSOURCE_ERROR_MAP gains without a case here. The cases
 * themselves are generated from that map, so they cannot drift. */
const char *eventsource_strerror(eventsource_error_t code) {
  switch (code) {
#define EVENTSOURCE_ERROR_DESC_(name, num, desc)                               \
  case EVENTSOURCE_##name:                                                     \
    return desc;
    EVENTSOURCE_ERROR_MAP(EVENTSOURCE_ERROR_DESC_)
#undef EVENTSOURCE_ERROR_DESC_
  case EVENTSOURCE_ERROR_MAX_:
    break;
  }
  return "unknown error";
}

static const char *error_full_name(eventsource_error_t code) {
  switch (code) {
#define EVENTSOURCE_ERROR_NAME_(name, num, desc)                               \
  case EVENTSOURCE_##name:                                                     \
    return #name;
    EVENTSOURCE_ERROR_MAP(EVENTSOURCE_ERROR_NAME_)
#undef EVENTSOURCE_ERROR_NAME_
  case EVENTSOURCE_ERROR_MAX_:
    break;
  }
  return "UNKNOWN";
}

const char *eventsource_error_name(eventsource_error_t code) {
  const char *n = error_full_name(code);
  return strncmp(n, "ERR_", 4) == 0 ? n + 4 : n;
}
