/*
 * response.h - what a source keeps of the final response of a request
 * (internal): its header fields, the body of a refused response, and what
 * its Retry-After asks for.
 *
 * The transfer (transfer.c) feeds it from libcurl's header and write
 * callbacks; the state machine (source.c) lends it to the OPEN and ERROR
 * notifications, whose accessors eventsource_event_header() and
 * eventsource_event_body() read it. Everything kept is bounded: the header
 * fields by ES_RESPONSE_MAX_HEADERS bytes in all (a field that does not fit
 * is dropped whole), the body by the source's max_error_body. Memory is
 * allocated per response (never per event) and kept for the next one up to
 * a small size.
 */
#ifndef EVENTSOURCE_RESPONSE_H
#define EVENTSOURCE_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* The most bytes of header fields kept per response, separators included
 * (the header documents it as EVENTSOURCE_MAX_RESPONSE_HEADERS). */
#define ES_RESPONSE_MAX_HEADERS (64u * 1024u)

typedef struct es_response {
  /* The fields: "name\0value\0" for each name, in the order first seen; a
   * repeated name's values joined into the first one's (", ", Set-Cookie
   * with "\n"). */
  char *hdr;
  size_t hdr_len, hdr_cap;
  int complete;       /* the final response's blank line was seen */
  int dropped;        /* fields were dropped (over the bound) */
  /* The body of a refused response, NUL-terminated. */
  char *body;
  size_t body_len, body_cap;
  int body_truncated; /* more came than the bound */
} es_response;

/* Frees everything (r stays usable: as after a reset). */
void es_response_free(es_response *r);
/* A new request: nothing kept (no header, no body). */
void es_response_reset(es_response *r);
/* A status line: a new response (interim, final) replaces the fields. */
void es_response_begin(es_response *r);
/* One header line as libcurl passes it ("Name: value\r\n"). Lines after the
 * final response's blank line (trailers), lines without a colon and
 * obs-fold continuation lines are ignored. Returns 0, or -1 when out of
 * memory. */
int es_response_field(es_response *r, const char *line, size_t len);
/* The final response's header block is complete. */
void es_response_complete(es_response *r);
/* A piece of a refused response's body, kept up to max bytes. Returns 1
 * when bytes beyond max came (then body_truncated is set: the transfer may
 * stop), -1 when out of memory, 0 otherwise. */
int es_response_body(es_response *r, const char *buf, size_t len, size_t max);

/* Adds to err's message that the body was cut at max bytes. */
void es_response_note_cut(es_error *err, size_t max);
/* Adds to err's message that the body took too long (its time ran out);
 * returns 1. */
int es_response_note_late(es_error *err);

/* The value of header name (case-insensitive), or NULL when the response
 * is not complete or has no such field. */
const char *es_response_header(const es_response *r, const char *name);

/* What a Retry-After value asks for, in ms, at most ceiling: delta-seconds
 * (digits only), or an HTTP-date (curl_getdate()) later than wall_ms (ms
 * since the epoch). -1 for none: NULL, empty, garbage, negative, a date not
 * in the future. */
long es_retry_after_ms(const char *value, int64_t wall_ms, long ceiling);

#endif
