/*
 * parser.h - the incremental text/event-stream parser (internal).
 *
 * Implements WHATWG HTML 9.2.5 "Parsing an event stream" and 9.2.6
 * "Interpreting an event stream" for one source: bytes in (any chunking),
 * callbacks out. No I/O, no curl. Buffers grow as needed and are reused, so
 * a warm parser does not allocate per event.
 */
#ifndef EVENTSOURCE_PARSER_H
#define EVENTSOURCE_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "eventsource.h"

/* Callbacks. Each returns 0 to go on; non-zero stops es_parser_feed() at once
 * (it returns ES_PARSER_STOPPED; the rest of that chunk is not parsed: the
 * owner is closing or restarting and will call es_parser_reset()). Every
 * string is valid UTF-8 and NUL-terminated; data may contain U+0000, and so
 * may the type ("event:\0x") and comment text, as the spec allows: use the
 * lengths. The id never does. Pointers are valid until the callback returns.
 * Any callback may be NULL. A callback may call es_parser_last_event_id(),
 * es_parser_set_last_event_id() and es_parser_set_limits() (the pointers it
 * was given stay valid), but not feed, reset, finish or free the parser:
 * it returns non-zero instead. */
typedef struct es_parser_callbacks {
  /* A dispatched event: type is the event: field or "message"; id is the
   * source's last event ID string after this block's id: fields. */
  int (*on_event)(void *ctx, const char *type, size_t type_len,
                  const char *data, size_t data_len, const char *id,
                  size_t id_len);
  /* A retry: field with only ASCII digits; ms saturates at UINT64_MAX. */
  int (*on_retry)(void *ctx, uint64_t ms);
  /* A comment line: the text after the ':' (leading space kept). */
  int (*on_comment)(void *ctx, const char *text, size_t len);
  /* A line or event went over a limit: the event was dropped and the parser
   * skips to the end of the next blank line. Or an id: value was longer than
   * the id limit: that field alone is ignored (the event goes on). code is
   * EVENTSOURCE_ERR_TOO_LARGE. */
  int (*on_error)(void *ctx, eventsource_error_t code, const char *message);
} es_parser_callbacks;

typedef struct es_parser es_parser;

/* Result of es_parser_feed(). */
#define ES_PARSER_OK 0
#define ES_PARSER_STOPPED 1 /* a callback returned non-zero */
#define ES_PARSER_NOMEM 2   /* allocation failed; the parser must be reset */

/* Creates a parser (NULL when out of memory). max_line and max_event are the
 * limits in bytes (0: none). cb is copied. */
es_parser *es_parser_new(const es_parser_callbacks *cb, void *ctx,
                         size_t max_line, size_t max_event);
void es_parser_free(es_parser *p);

/*
 * Limits: max_line counts the raw bytes of one line (without its line
 * ending); max_event counts the bytes of the event's data as it would be
 * dispatched (the data buffer without its final LF; decoded bytes, so an
 * invalid byte counts as the 3 bytes of U+FFFD). Going over either calls
 * on_error(TOO_LARGE) as soon as the first byte over the limit is seen, drops
 * the data and type buffers, restores the last event ID buffer to the
 * committed string, and ignores everything (comments and retry: included)
 * up to and including the next blank line. Nothing is stored while skipping.
 * Memory: the data buffer never exceeds max_event + 2 bytes; the type and
 * scratch buffers hold one decoded line value, at most 3 * max_line bytes
 * (every raw byte invalid). A limit set with es_parser_set_limits() applies
 * from the next line (max_line) or the next event (max_event).
 */
/* Changes the limits (for the next line / event). */
void es_parser_set_limits(es_parser *p, size_t max_line, size_t max_event);

/* The longest id: value (decoded bytes) adopted as the last event ID (0, the
 * default: no limit); a longer one is ignored with on_error, whose message
 * is then es_parser_msg_id (the same pointer: the event itself is kept, so
 * a caller counting dropped events tells the two apart by it). */
void es_parser_set_max_id(es_parser *p, size_t max_id);
extern const char es_parser_msg_id[];

/* Starts a new stream (a new connection): discards any partial line and
 * incomplete event (and its uncommitted id), expects a BOM again, and resets
 * the UTF-8 decoder. Keeps the last event ID string. Keeps its buffers.
 * Bytes held as a possible BOM count against the line limit first (on_error
 * may be called). */
void es_parser_reset(es_parser *p);

/* Feeds len bytes of the stream. Returns ES_PARSER_OK, ES_PARSER_STOPPED or
 * ES_PARSER_NOMEM. */
int es_parser_feed(es_parser *p, const char *buf, size_t len);

/* End of stream: the same as es_parser_reset() (the spec discards the
 * incomplete event at end of file). */
void es_parser_finish(es_parser *p);

/* The last event ID string (committed at dispatch, i.e. at each blank line),
 * NUL-terminated, never contains U+0000; len may be NULL. */
const char *es_parser_last_event_id(const es_parser *p, size_t *len);

/* Sets the last event ID string (the initial one, or a restore). Returns 0, or
 * -1 when out of memory or when id contains U+0000 (unchanged). Invalid UTF-8
 * is decoded with U+FFFD replacements. id may be NULL when len is 0. */
int es_parser_set_last_event_id(es_parser *p, const char *id, size_t len);

#endif
