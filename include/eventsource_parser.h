/*
 * eventsource_parser.h - the text/event-stream parser of libeventsource, for
 * programs with a transport of their own.
 *
 * Copyright (c) 2026 the libeventsource developers. MIT licence, see COPYING.
 *
 * The same parser the client uses (WHATWG HTML 9.2.5 "Parsing an event
 * stream" and 9.2.6 "Interpreting an event stream"), without I/O: feed it
 * the bytes of one stream in chunks of any size, as they arrive from an
 * embedded HTTP stack, a proxy, a file or a test, and it calls back with
 * each event, retry: field, comment and limit error. Splitting the bytes
 * differently never changes what is called back. A BOM at the start of the
 * stream is skipped; CR, LF and CRLF all end lines; invalid UTF-8 becomes
 * U+FFFD.
 *
 * The conventions of eventsource.h hold (ownership, strings, errors): the
 * parser is opaque; functions that can fail return an eventsource_error_t;
 * eventsource_parser_new() leaves *out untouched on failure; a failed
 * allocation is NOMEM, never an abort; nothing is printed.
 *
 * Threads: a parser is used by one thread at a time (any thread, one after
 * the other, with the caller's own synchronisation in between); different
 * parsers are independent. Callbacks run on the thread that called
 * eventsource_parser_feed(), _finish() or _reset(), before it returns.
 *
 * Callbacks: each returns 0 to go on, non-zero to stop. Every string they
 * are given is valid UTF-8, NUL-terminated and borrowed: valid until the
 * callback returns (copy what you keep). Inside a callback the functions
 * marked "callback: yes" below may be called on the same parser; feed,
 * finish, reset and free may not (they are refused: STATE, or for free
 * nothing happens). Other parsers, and the rest of the library, may be used
 * freely.
 *
 * Memory is bounded by the limits (eventsource_parser_set_max_line() and
 * _set_max_event()); a warm parser does not allocate per event.
 */
#ifndef EVENTSOURCE_PARSER_PUBLIC_H
#define EVENTSOURCE_PARSER_PUBLIC_H

#include <stddef.h>
#include <stdint.h>

#include "eventsource.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A parser for one stream at a time. Opaque. */
typedef struct eventsource_parser eventsource_parser_t;

/* A dispatched event (a blank line ended a block with at least one data:
 * line). type is the event: field, or "message" when there was none; data
 * is the data: lines joined with LF (no final LF); id is the last event ID
 * in force for this event (after this block's id: fields; "" when none).
 * data and type may contain U+0000 (use the lengths); id never does. */
typedef int (*eventsource_parser_event_fn)(eventsource_parser_t *p, const char *type,
                                           size_t type_len, const char *data,
                                           size_t data_len, const char *id,
                                           size_t id_len, void *userdata);

/* A retry: field whose value is only ASCII digits, in ms (saturating at
 * UINT64_MAX). Other retry: fields are ignored, as the spec says. */
typedef int (*eventsource_parser_retry_fn)(eventsource_parser_t *p, uint64_t ms,
                                           void *userdata);

/* A comment line: text is what follows the ':' (a leading space is kept). */
typedef int (*eventsource_parser_comment_fn)(eventsource_parser_t *p, const char *text,
                                             size_t len, void *userdata);

/* A limit was hit; code is EVENTSOURCE_ERR_TOO_LARGE, message says which (an
 * English sentence, static; its wording may change).
 * - A line over max_line or an event's data over max_event: the event being
 *   built is dropped, and everything up to and including the next blank
 *   line is ignored (comments and retry: included).
 * - An id: value over max_last_event_id: that field alone is ignored (the
 *   last event ID stays what it was, never truncated); the event goes on. */
typedef int (*eventsource_parser_error_fn)(eventsource_parser_t *p, eventsource_error_t code,
                                           const char *message, void *userdata);

/* Creates a parser with no callbacks, the client's default limits
 * (EVENTSOURCE_DEFAULT_MAX_LINE, EVENTSOURCE_DEFAULT_MAX_EVENT,
 * EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID) and an empty last event ID. On
 * success *out is the parser; on failure *out is untouched.
 * Errors: INVALID_ARGUMENT (out NULL), NOMEM. Any thread; callback: yes (a
 * new parser is independent). */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_parser_new(eventsource_parser_t **out);

/* Frees p and everything it owns (pending partial input is discarded, no
 * callback runs). NULL does nothing. From one of p's own callbacks it is
 * refused and does nothing: return non-zero to stop, then free p after
 * eventsource_parser_feed() returns. */
EVENTSOURCE_EXPORT void eventsource_parser_free(eventsource_parser_t *p);

/* Install (or with fn NULL remove) a callback; userdata is passed to it.
 * Without an event callback events are parsed and discarded, and so on.
 * Errors: INVALID_ARGUMENT (p NULL). Callback: yes (applies from the next
 * call of that callback). */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_parser_set_event_callback(eventsource_parser_t *p, eventsource_parser_event_fn fn,
                                      void *userdata);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_parser_set_retry_callback(eventsource_parser_t *p, eventsource_parser_retry_fn fn,
                                      void *userdata);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_parser_set_comment_callback(eventsource_parser_t *p,
                                        eventsource_parser_comment_fn fn, void *userdata);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_parser_set_error_callback(eventsource_parser_t *p, eventsource_parser_error_fn fn,
                                      void *userdata);

/* Limits in bytes, 0 meaning none; see eventsource_parser_error_fn for what
 * going over one does.
 * - max_line: the raw bytes of one line, without its line end (default
 *   EVENTSOURCE_DEFAULT_MAX_LINE, 16 MiB); applies from the next line.
 * - max_event: the bytes of one event's data as it would be dispatched
 *   (decoded: an invalid byte counts as the 3 bytes of U+FFFD; default
 *   EVENTSOURCE_DEFAULT_MAX_EVENT, 16 MiB); applies from the next event.
 * - max_last_event_id: the longest id: value adopted, decoded bytes (default
 *   EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID, 4 KiB); applies from the next
 *   id: line and to eventsource_parser_set_last_event_id().
 * Set before the first feed of a stream (after _new(), _reset() or
 * _finish()), a limit applies to all of it.
 * The parser holds at most about max_event bytes of data and 3 * max_line
 * bytes of one line's value: with both limits set, its memory is bounded.
 * Errors: INVALID_ARGUMENT (p NULL). Callback: yes. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_parser_set_max_line(eventsource_parser_t *p, size_t bytes);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_parser_set_max_event(eventsource_parser_t *p, size_t bytes);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_parser_set_max_last_event_id(eventsource_parser_t *p, size_t bytes);

/* The last event ID: the one set, or adopted from id: fields at each
 * dispatch (a blank line). NUL-terminated, never contains U+0000, never
 * NULL ("" for a NULL p); len may be NULL. Borrowed: valid until the next
 * call of _feed(), _set_last_event_id() or _free() on p (inside an event
 * callback it is the id that callback was given). Callback: yes. */
EVENTSOURCE_EXPORT const char *eventsource_parser_last_event_id(const eventsource_parser_t *p,
                                                                size_t *len);

/* Sets the last event ID (to resume a stream: the ID the next events are
 * reported with until an id: field changes it); id is copied; NULL or ""
 * clears it. Invalid UTF-8 is decoded with U+FFFD replacements. From an
 * event callback it does not change the id that callback was given.
 * Errors: INVALID_ARGUMENT (p NULL; id contains CR or LF, which no id: field
 * can hold), TOO_LARGE (strlen(id) over max_last_event_id), NOMEM; on an error
 * the ID is unchanged. Callback: yes. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_parser_set_last_event_id(eventsource_parser_t *p, const char *id);

/* Parses the next len bytes of the stream (buf may be NULL when len is 0),
 * calling the callbacks for what they complete; a partial line or event is
 * kept for the next call. Returns:
 * - OK: all of buf was parsed.
 * - CALLBACK: a callback returned non-zero; parsing stopped right after the
 *   line that callback was called for, and the rest of buf was not parsed.
 * - NOMEM: an allocation failed; the event being built may be lost.
 * After CALLBACK or NOMEM the parser is stopped: a further feed returns
 * STATE until eventsource_parser_reset() or _finish() (a stream cannot go
 * on once bytes of it were skipped).
 * Errors besides: INVALID_ARGUMENT (p NULL, or buf NULL with len > 0), STATE
 * (stopped; or called from one of p's callbacks: nothing is parsed). */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_parser_feed(eventsource_parser_t *p,
                                                               const char *buf, size_t len);

/* The end of the stream: a partial last line and an incomplete event (no
 * blank line after it) are discarded, as the spec says (9.2.6: "once the
 * end of the file is reached, any pending data must be discarded"); no
 * event is dispatched for them. The parser is then ready for a new stream,
 * as after eventsource_parser_reset().
 * Errors: INVALID_ARGUMENT (p NULL), STATE (from one of p's callbacks:
 * nothing is done). */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_parser_finish(eventsource_parser_t *p);

/* Starts a new stream (a new connection), whatever the state: discards a
 * partial line and an incomplete event, expects a BOM again, clears the
 * stopped state. Keeps the last event ID, the callbacks, the limits and the
 * buffers. (Bytes held as a possible BOM are still checked against
 * max_line first, so the error callback may run, here and in _finish();
 * its return value is then ignored: there is nothing left to stop.)
 * Errors: INVALID_ARGUMENT (p NULL), STATE (from one of p's callbacks:
 * nothing is done). */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_parser_reset(eventsource_parser_t *p);

#ifdef __cplusplus
}
#endif

#endif /* EVENTSOURCE_PARSER_PUBLIC_H */
