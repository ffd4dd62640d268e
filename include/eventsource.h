/*
 * eventsource.h - libeventsource, an EventSource (Server-Sent Events) client for C.
 *
 * Copyright (c) 2026 the libeventsource developers. MIT licence, see COPYING.
 *
 * The library behaves like the browser's EventSource (WHATWG HTML 9.2): a
 * libcurl streaming transfer feeds an incremental text/event-stream parser,
 * events go to listeners registered per event type, and the source
 * reconnects as the spec says, with Last-Event-ID and retry:.
 *
 * Conventions that hold for every function unless its comment says otherwise:
 *
 * Ownership   The library copies every string and buffer it is given; the
 *             caller keeps ownership of its own pointers. Pointers the library
 *             returns (event fields, URL, messages) are borrowed: valid until
 *             the documented point and never to be freed by the caller.
 * Strings     Every string the library hands out is NUL-terminated and, where
 *             it may contain U+0000 (event data), also comes with its length.
 *             Everything handed to listeners is valid UTF-8, except the
 *             response's own bytes (eventsource_event_header() and _body()).
 * Errors      Functions that can fail return an eventsource_error_t;
 *             EVENTSOURCE_OK (0) is success. A constructor that fails leaves
 *             its output untouched. eventsource_strerror() names every code.
 *             In the comments below, "Errors: NOMEM" means EVENTSOURCE_ERR_NOMEM.
 * Threads     A source is driven by one thread at a time: the thread inside
 *             eventsource_run(), the library's own thread after
 *             eventsource_start(), or the thread driving the multi handle it
 *             belongs to ("the loop thread"). Listeners and hooks run on that
 *             thread. Only the functions marked "any thread" may be called
 *             from other threads while the source is running.
 * Callbacks   Listeners and hooks may call every function marked "callback: yes".
 * Allocation  The library never prints, never exits and never aborts: a failed
 *             allocation is reported as EVENTSOURCE_ERR_NOMEM.
 */
#ifndef EVENTSOURCE_H
#define EVENTSOURCE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define EVENTSOURCE_EXPORT
#elif defined(__GNUC__) && __GNUC__ >= 4
#define EVENTSOURCE_EXPORT __attribute__((visibility("default")))
#else
#define EVENTSOURCE_EXPORT
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

#define EVENTSOURCE_VERSION_MAJOR 0
#define EVENTSOURCE_VERSION_MINOR 1
#define EVENTSOURCE_VERSION_PATCH 0
#define EVENTSOURCE_VERSION "0.1.0"
/* 0xMMmmpp: comparable with < and >. */
#define EVENTSOURCE_VERSION_NUM                                                \
  ((EVENTSOURCE_VERSION_MAJOR << 16) | (EVENTSOURCE_VERSION_MINOR << 8) |      \
   EVENTSOURCE_VERSION_PATCH)

/* The version of the library actually linked, as "MAJOR.MINOR.PATCH" (a static
 * string) and as EVENTSOURCE_VERSION_NUM would give it. Any thread; callback: yes. */
EVENTSOURCE_EXPORT const char *eventsource_version(void);
EVENTSOURCE_EXPORT unsigned eventsource_version_num(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* X(name, number, description); the enum names are EVENTSOURCE_<name>. Numbers are fixed forever; new codes are only
 * ever appended. */
#define EVENTSOURCE_ERROR_MAP(X)                                               \
  X(OK, 0, "no error")                                                         \
  X(ERR_INVALID_ARGUMENT, 1, "invalid argument")                                   \
  X(ERR_NOMEM, 2, "out of memory")                                                 \
  X(ERR_URL, 3, "URL is not a valid http or https URL")                            \
  X(ERR_STATE, 4, "operation not allowed in the source's current state")           \
  X(ERR_HEADER, 5, "header name or value is invalid")                              \
  X(ERR_NETWORK, 6, "network error")                                               \
  X(ERR_HTTP_STATUS, 7, "server answered with a status other than 200")            \
  X(ERR_CONTENT_TYPE, 8, "server answered with a type other than text/event-stream") \
  X(ERR_REDIRECT, 9, "redirect without a usable http or https Location")           \
  X(ERR_READ_TIMEOUT, 10, "no data received within the read timeout")              \
  X(ERR_EOF, 11, "server ended the stream")                                        \
  X(ERR_TOO_LARGE, 12, "line or event larger than the configured limit")           \
  X(ERR_CLOSED, 13, "source is closed")                                            \
  X(ERR_NOT_FOUND, 14, "no such listener or source")                               \
  X(ERR_SYSTEM, 15, "system call failed")                                          \
  X(ERR_CURL, 16, "libcurl failed")                                                \
  X(ERR_CALLBACK, 17, "a user callback reported failure")                          \
  X(ERR_POLICY, 18, "the reconnection policy stopped the source")             \
  X(ERR_TLS, 19, "TLS failed: certificate not trusted or not matching, or no usable TLS settings") \
  X(ERR_REQUEST_TOO_LARGE, 20, "request too large to send")                        \
  X(ERR_RESPONSE_TOO_LARGE, 21, "response headers larger than libcurl's limit")    \
  X(ERR_ENCODING, 22, "response Content-Encoding cannot be decoded")            \
  X(ERR_CONNECTION_LIMIT, 23, "no connection to the server can be had within the multi handle's limits")

typedef enum eventsource_error {
#define EVENTSOURCE_ERROR_ENUM_(name, num, desc) EVENTSOURCE_##name = num,
  EVENTSOURCE_ERROR_MAP(EVENTSOURCE_ERROR_ENUM_)
#undef EVENTSOURCE_ERROR_ENUM_
  EVENTSOURCE_ERROR_MAX_ /* not a code: one past the largest */
} eventsource_error_t;

/* A static English description of code ("unknown error" for a number not in
 * the list); never NULL. Any thread; callback: yes. */
EVENTSOURCE_EXPORT const char *eventsource_strerror(eventsource_error_t code);

/* The code's name without prefix, e.g. "HTTP_STATUS" for
 * EVENTSOURCE_ERR_HTTP_STATUS, "OK" for 0, "UNKNOWN" otherwise. Static, never
 * NULL. Any thread; callback: yes. */
EVENTSOURCE_EXPORT const char *eventsource_error_name(eventsource_error_t code);

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

/* An EventSource: one URL, its listeners, its connection. Opaque. */
typedef struct eventsource eventsource_t;

/* A notification handed to a listener. Opaque and borrowed: it and every
 * pointer read from it are valid only until the listener returns. */
typedef struct eventsource_event eventsource_event_t;

/* readyState, with the browser's numbers. */
typedef enum eventsource_ready_state {
  EVENTSOURCE_CONNECTING = 0,
  EVENTSOURCE_OPEN = 1,
  EVENTSOURCE_CLOSED = 2
} eventsource_ready_state_t;

/* What a notification is. A server event whose type is "open" or "error" is
 * EVENTSOURCE_KIND_MESSAGE; only the connection's own notifications have
 * EVENTSOURCE_KIND_OPEN and EVENTSOURCE_KIND_ERROR. */
typedef enum eventsource_kind {
  EVENTSOURCE_KIND_MESSAGE = 0, /* an event dispatched from the stream */
  EVENTSOURCE_KIND_OPEN = 1,    /* the connection was established */
  EVENTSOURCE_KIND_ERROR = 2,   /* the connection failed or a limit was hit */
  EVENTSOURCE_KIND_COMMENT = 3  /* a ':' line, for comment listeners only */
} eventsource_kind_t;

/* A listener. es is the source, ev the borrowed notification. */
typedef void (*eventsource_listener_fn)(eventsource_t *es,
                                        const eventsource_event_t *ev,
                                        void *userdata);

/* Identifies a registered listener; never 0. */
typedef uint64_t eventsource_listener_id_t;

/* ------------------------------------------------------------------------ */
/* Creating and freeing                                                     */
/* ------------------------------------------------------------------------ */

/* Creates a source for url, which must be an absolute http:// or https:// URL
 * (scheme case-insensitive) without CR, LF, NUL or spaces, and at most
 * EVENTSOURCE_MAX_URL bytes long (a longer one could never be sent: servers
 * and libcurl refuse such requests). The URL is copied.
 * Nothing connects until eventsource_run(), eventsource_start() or
 * eventsource_multi_add(). On success *out is the new source in state
 * CONNECTING; on failure *out is untouched.
 * Errors: INVALID_ARGUMENT (out or url NULL), URL, REQUEST_TOO_LARGE (url
 * longer than EVENTSOURCE_MAX_URL), NOMEM, CURL (libcurl could not be
 * initialised).
 * Any thread; callback: yes (the new source is independent). */
#define EVENTSOURCE_MAX_URL 65536UL
EVENTSOURCE_EXPORT eventsource_error_t eventsource_new(eventsource_t **out,
                                                       const char *url);

/* Closes and frees es and everything it owns. NULL does nothing.
 * - Not running: freed at once.
 * - Started with eventsource_start(): closes it, joins its thread, frees it
 *   (any thread but that thread; from its own listeners it is deferred as below).
 * - From one of its own listeners or hooks: closes it now and defers the free
 *   until the callback returns; es stays valid until then.
 * - In a multi handle, from the loop thread: removed from the multi and freed.
 * Freeing a source that another thread is driving (run or multi) is not safe:
 * close it, wait for the run to return, then free. */
EVENTSOURCE_EXPORT void eventsource_free(eventsource_t *es);

/* An opaque pointer for the caller, returned by eventsource_userdata()
 * (NULL until set). Any thread; callback: yes. */
EVENTSOURCE_EXPORT void eventsource_set_userdata(eventsource_t *es, void *data);
EVENTSOURCE_EXPORT void *eventsource_userdata(const eventsource_t *es);

/* ------------------------------------------------------------------------ */
/* Listeners (addEventListener / removeEventListener)                       */
/* ------------------------------------------------------------------------ */

/* Adds a listener for notifications of one type: "message" (events without an
 * event: field), any custom event type, "open" (the connection opened) or
 * "error" (the connection failed). Like the browser, a listener for "open" or
 * "error" also receives server events of that type; eventsource_event_kind()
 * tells them apart. type is copied and compared exactly (case-sensitive).
 * Listeners run in the order they were added. On success *id (if id is not
 * NULL) identifies the listener for eventsource_remove_listener().
 * Errors: INVALID_ARGUMENT (es, type or fn NULL), NOMEM.
 * Loop thread; callback: yes (a listener added during a dispatch is first
 * called for the next notification). */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_add_listener(eventsource_t *es, const char *type,
                         eventsource_listener_fn fn, void *userdata,
                         eventsource_listener_id_t *id);

/* Adds a listener that receives every notification except comments: every
 * server event whatever its type, and every open and error notification. It
 * runs after the type's own listeners. Errors and threads as
 * eventsource_add_listener(). */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_add_any_listener(eventsource_t *es, eventsource_listener_fn fn,
                             void *userdata, eventsource_listener_id_t *id);

/* Adds a listener for comment lines (":text"); the event's kind is
 * EVENTSOURCE_KIND_COMMENT and its data is the text after the colon (a leading
 * space is kept). Errors and threads as eventsource_add_listener(). */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_add_comment_listener(eventsource_t *es, eventsource_listener_fn fn,
                                 void *userdata, eventsource_listener_id_t *id);

/* Removes a listener. A listener removed during a dispatch is not called
 * again, not even for the notification being dispatched.
 * Errors: INVALID_ARGUMENT (es NULL), NOT_FOUND (no listener with that id).
 * Loop thread; callback: yes (a listener may remove itself). */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_remove_listener(eventsource_t *es, eventsource_listener_id_t id);

/* ------------------------------------------------------------------------ */
/* The notification passed to a listener. These accessors read only the     */
/* event: any thread that holds a valid event may call them (in practice    */
/* the listener); ev must not be NULL.                                      */
/* ------------------------------------------------------------------------ */

/* What the notification is. */
EVENTSOURCE_EXPORT eventsource_kind_t
eventsource_event_kind(const eventsource_event_t *ev);

/* The event type: the event: field or "message" for server events, "open",
 * "error" or "comment" for the others. Never NULL. len may be NULL. */
EVENTSOURCE_EXPORT const char *
eventsource_event_type(const eventsource_event_t *ev, size_t *len);

/* The data (server events: the data: lines joined with LF; comments: the
 * comment text; open and error: ""). May contain U+0000, so use *len; it is
 * also NUL-terminated. Never NULL. len may be NULL. */
EVENTSOURCE_EXPORT const char *
eventsource_event_data(const eventsource_event_t *ev, size_t *len);

/* The source's last event ID when the notification was made (for a server
 * event: its lastEventId). "" when none. Never contains U+0000. */
EVENTSOURCE_EXPORT const char *
eventsource_event_last_event_id(const eventsource_event_t *ev, size_t *len);

/* Error notifications only (0, 0, "", 0 and -1 for the other kinds): */
/* Why: NETWORK, HTTP_STATUS, CONTENT_TYPE, REDIRECT, READ_TIMEOUT, EOF,
 * TOO_LARGE, TLS, REQUEST_TOO_LARGE, RESPONSE_TOO_LARGE, ENCODING, URL, CURL,
 * CALLBACK, POLICY, NOMEM, SYSTEM. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_event_error(const eventsource_event_t *ev);
/* The HTTP status of the failed response, 0 when there was none. */
EVENTSOURCE_EXPORT long eventsource_event_http_status(const eventsource_event_t *ev);
/* A human-readable message (includes curl's message for network errors). */
EVENTSOURCE_EXPORT const char *eventsource_event_message(const eventsource_event_t *ev);
/* 1 if the source will reconnect (it is CONNECTING), 0 if not. For TOO_LARGE
 * the connection stays OPEN: the event was dropped and parsing resumes after
 * the next blank line, so this is 0 and readyState is unchanged. */
EVENTSOURCE_EXPORT int eventsource_event_will_reconnect(const eventsource_event_t *ev);
/* Milliseconds until the reconnection attempt, -1 when none. A server's
 * retry: shows here as sent (max-retry bounds only the backoff). */
EVENTSOURCE_EXPORT long eventsource_event_reconnect_ms(const eventsource_event_t *ev);
/* The libcurl error code (CURLcode) behind the failure when libcurl reported
 * it (NETWORK, CURL, and REDIRECT or URL found by libcurl), else 0. */
EVENTSOURCE_EXPORT int eventsource_event_curl_code(const eventsource_event_t *ev);
/* The HTTP version of the response, on OPEN notifications and on ERROR
 * notifications about a response: 10 (HTTP/1.0), 11 (HTTP/1.1), 20
 * (HTTP/2), 30 (HTTP/3); 0 on every other notification (no response began).
 * The same value as EVENTSOURCE_STAT_HTTP_VERSION at that moment. */
EVENTSOURCE_EXPORT long eventsource_event_http_version(const eventsource_event_t *ev);
/* On the same notifications: 1 when the request went out on a connection
 * that was already open (another stream's HTTP/2 connection, or a kept
 * HTTP/1.1 one), 0 when a new connection was made for it, or no response
 * began (EVENTSOURCE_STAT_CONNECTION_REUSED). */
EVENTSOURCE_EXPORT int eventsource_event_connection_reused(const eventsource_event_t *ev);

/* --- Response headers, error bodies and Retry-After ---------------------- */

/* The value of the response header name (compared case-insensitively), or
 * NULL. Valid on OPEN notifications (the response that opened the stream)
 * and on ERROR notifications about a response: the one that was refused
 * (a status other than 200, a Content-Type other than text/event-stream, a
 * redirect not followed), or the one that opened the stream that failed;
 * NULL on an ERROR without a complete response (connection refused, TLS,
 * a timeout before the headers, ...) and on every other kind. The headers
 * are those of the final response: after redirects, the last hop's; after
 * interim 1xx responses, the real one's. A name that came more than once
 * has its values joined with ", " in order, as HTTP does, except
 * Set-Cookie, whose values (which may hold commas) are joined with "\n".
 * Leading and trailing white space of each value is removed; an empty value
 * is "". Values are the bytes the server sent (not checked to be UTF-8,
 * unlike the rest of what listeners get). Bounded: at most
 * EVENTSOURCE_MAX_RESPONSE_HEADERS bytes of fields are kept per response
 * (names, values and separators); a field that would go past it is dropped
 * whole, and so are obs-fold continuation lines and fields holding U+0000;
 * the stream itself is not affected. Borrowed: valid until the listener
 * returns. name NULL gives NULL. */
#define EVENTSOURCE_MAX_RESPONSE_HEADERS 65536UL
EVENTSOURCE_EXPORT const char *eventsource_event_header(const eventsource_event_t *ev,
                                                        const char *name);

/* ERROR notifications about a refused response (HTTP_STATUS: a status other
 * than 200; CONTENT_TYPE: a 200 that is not text/event-stream): the
 * response's body, up to eventsource_set_max_error_body() bytes, decoded
 * when it came compressed in an encoding libcurl decodes. It may hold any
 * bytes (U+0000 included: use *len; it is NUL-terminated too) and is not
 * checked to be UTF-8. A longer body is cut at the bound (the message then
 * says so: "its body was cut at N bytes"). "" with *len 0 when there is
 * none (no body, a redirect, any other error, the bound 0, other
 * kinds). len may be NULL. Borrowed: valid until the listener returns. */
EVENTSOURCE_EXPORT const char *eventsource_event_body(const eventsource_event_t *ev,
                                                      size_t *len);

/* ------------------------------------------------------------------------ */
/* Request options. Unless said otherwise: loop thread, before the source     */
/* starts or from a callback; the new value is used from the next connection */
/* attempt. Errors: INVALID_ARGUMENT (es NULL or a bad value), NOMEM.        */
/* Times are milliseconds from 0 to 24 h (86400000); other values are       */
/* INVALID_ARGUMENT.                                                        */
/* ------------------------------------------------------------------------ */

/* The request method, e.g. "POST" or "REPORT" (default "GET"). Must be an HTTP
 * token. Sent again, with the body, on every reconnection. */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_set_method(eventsource_t *es,
                                                              const char *method);

/* The request body (copied; may contain NUL; NULL/0 removes it). Sent with
 * the method on every attempt; set Content-Type with eventsource_set_header(). */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_body(eventsource_t *es, const void *body, size_t len);

/* Request headers. Names are matched case-insensitively. set replaces every
 * header of that name (or adds it), add appends one more, remove removes every
 * header of that name (NOT_FOUND when there was none). A name must be an HTTP
 * token; a name or value containing CR, LF or NUL is refused with HEADER (no
 * header injection), and a value holding any other control byte (0x01-0x1F
 * but HTAB, and 0x7F: RFC 9110 forbids them in field values) with
 * INVALID_ARGUMENT.
 * Accept and Cache-Control default to "text/event-stream" and "no-cache" and
 * may be replaced; Last-Event-ID is managed by the library (HEADER if set
 * here: use eventsource_set_last_event_id()). */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_header(eventsource_t *es, const char *name, const char *value);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_add_header(eventsource_t *es, const char *name, const char *value);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_remove_header(eventsource_t *es, const char *name);

/* The last event ID to start from (sent as Last-Event-ID on the first request;
 * "" or NULL for none). Refused with INVALID_ARGUMENT if it contains CR or LF
 * (NUL cannot be passed in a C string), with REQUEST_TOO_LARGE if it is
 * longer than the limit (eventsource_set_max_last_event_id()). Any later id:
 * field replaces it. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_last_event_id(eventsource_t *es, const char *id);

/* The reconnection time in ms before the first reconnection attempt (default
 * EVENTSOURCE_DEFAULT_RETRY_MS). A retry: field replaces it, as sent (up to
 * the ceiling of eventsource_set_max_server_retry()). max-retry does not
 * shorten it. */
#define EVENTSOURCE_DEFAULT_RETRY_MS 3000L
EVENTSOURCE_EXPORT eventsource_error_t eventsource_set_retry(eventsource_t *es,
                                                             long ms);

/* The most the exponential backoff may grow a reconnection delay to
 * (default EVENTSOURCE_DEFAULT_MAX_RETRY_MS). It bounds the growth only: a
 * reconnection time above it (eventsource_set_retry(), or a server's
 * retry:) is used as it is, and then does not grow. (Earlier snapshots
 * capped a retry: field at max-retry; eventsource_set_max_server_retry()
 * with the same value does that.) */
#define EVENTSOURCE_DEFAULT_MAX_RETRY_MS 30000L
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_max_retry(eventsource_t *es, long ms);

/* The sanity ceiling on a server's retry: field (default
 * EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS, 24 h, the most any delay may
 * be). The spec's reconnection time is the server's, so a retry: is used as
 * sent up to this; a larger one (a typo, a hostile server) becomes ms. Set
 * it lower to bound how long a server may make the source wait. It does not
 * bound eventsource_set_retry() or a policy callback's delay. */
#define EVENTSOURCE_DEFAULT_MAX_SERVER_RETRY_MS (24L * 3600 * 1000)
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_max_server_retry(eventsource_t *es, long ms);

/* A connection that stayed open at least this long resets the backoff
 * even if it delivered no event (default EVENTSOURCE_DEFAULT_BACKOFF_RESET_MS). */
#define EVENTSOURCE_DEFAULT_BACKOFF_RESET_MS 60000L
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_backoff_reset(eventsource_t *es, long ms);

/* The delay before a reconnection attempt is d = the reconnection time, or
 * EVENTSOURCE_MIN_RECONNECT_MS if that is more, doubled for each consecutive
 * failure after the first, at most the maximum (eventsource_set_max_retry),
 * or the reconnection time itself when that is more (never doubled then),
 * and never less than EVENTSOURCE_MIN_RECONNECT_MS. A failure is an attempt
 * that did not connect, a refused response, or a connection that ended
 * before it delivered any event (unless it stayed open for the backoff-reset
 * time). A connection that delivered an event was a success, however it
 * ended: the count starts again (attempt 1), so a server that closes on
 * purpose after its events (MCP's resumable streams) is reconnected after
 * the reconnection time, and even with "retry: 0" never in a tight loop.
 * Jitter on (default, 1): the delay is drawn uniformly from
 * [d, min(1.5 d, maximum)], so it never falls short of the reconnection
 * time, as the spec requires; off (0): exactly d. Jitter applies to a
 * server's retry: too, but never takes a delay above the larger of
 * max-retry and the reconnection time: a reconnection time at or above
 * max-retry (retry: 60000 with the default 30000) is waited exactly. A
 * policy callback may set any delay, shorter ones included. */
#define EVENTSOURCE_MIN_RECONNECT_MS 100L
EVENTSOURCE_EXPORT eventsource_error_t eventsource_set_jitter(eventsource_t *es,
                                                              int enabled);

/* What a clean end of the stream does: the response body of an open
 * connection ended without an error (EOF). on 1 (default, the spec's):
 * reconnect, like any transient failure. on 0: the end is final: the source
 * becomes CLOSED, its error notification has EOF, will_reconnect 0 and a
 * message saying so, and eventsource_run() returns EVENTSOURCE_ERR_EOF. For
 * a POST whose answer is the stream (an LLM completion), which must not be
 * sent again. Failures (NETWORK mid-stream, READ_TIMEOUT) still reconnect
 * as the policy says. A policy callback sees why EOF with *reconnect 0 and
 * may still reconnect. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_reconnect_on_end(eventsource_t *es, int on);

/* Reconnect when no byte (comments included) arrives for ms, counted from
 * the start of each attempt, so it also bounds the wait for the response
 * headers of a server that accepts and never answers (default
 * EVENTSOURCE_DEFAULT_READ_TIMEOUT_MS, 5 minutes, as okhttp-eventsource and
 * the LaunchDarkly clients; 0 waits for ever). The failure is READ_TIMEOUT and
 * is retried. A server that keeps streams quiet longer than this should send
 * comments (":\n") as heartbeats. */
#define EVENTSOURCE_DEFAULT_READ_TIMEOUT_MS 300000L
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_read_timeout(eventsource_t *es, long ms);

/* Give up a connection attempt not established within ms (default 30000; 0
 * leaves libcurl's default). The failure counts as a network error. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_connect_timeout(eventsource_t *es, long ms);

/* How many redirects (301, 302, 303, 307, 308; http and https only) one
 * attempt follows (default 10; 0 follows none; at most 1000). More, or a
 * Location that is not a usable http(s) URL, fails the source with REDIRECT
 * (not retried). Fetch's rules apply: 303 turns any method but HEAD into a
 * GET without body, 301 and 302 turn a POST into a GET, and 307 and 308
 * keep the method and the body. Every reconnection starts again at the URL
 * given to eventsource_new(). */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_max_redirects(eventsource_t *es, long n);

/* Redirects are followed by the library itself, one request per hop, so that
 * what is sent to each origin (scheme, host and port) is decided per hop:
 * - A redirect from https to http is refused (REDIRECT, not retried) unless
 *   eventsource_set_redirect_downgrade(es, 1) allows it (default 0).
 * - A hop to an origin other than that of the URL given to eventsource_new()
 *   carries no header set with eventsource_set_header() or _add_header()
 *   (Authorization, API keys, cookies, ...), except Content-Type when the
 *   body goes along (307, 308), and the credentials a curl callback set
 *   (CURLOPT_USERPWD, CURLOPT_USERNAME, CURLOPT_PASSWORD,
 *   CURLOPT_XOAUTH2_BEARER, CURLOPT_COOKIE) are cleared, unless
 *   eventsource_set_redirect_headers(es, 1) (default 0). Accept,
 *   Cache-Control and Last-Event-ID are always sent. A hop back to the
 *   original origin carries them again.
 * The prepare and curl callbacks run before every hop as well;
 * eventsource_request_url() tells them where the request goes. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_redirect_downgrade(eventsource_t *es, int allow);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_redirect_headers(eventsource_t *es, int allow);

/* Content-Encoding. Whatever the setting, a response body in any encoding
 * libcurl can decode (gzip, deflate, and br and zstd when libcurl has them)
 * is decoded; one it cannot decode fails the source with ENCODING (not
 * retried). enabled 1 also advertises them (Accept-Encoding), so that the
 * server may compress; 0 (default) sends no Accept-Encoding (a user header of
 * that name is sent as given). */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_compression(eventsource_t *es, int enabled);

/* The HTTP version a source asks for (eventsource_set_http_version()). */
typedef enum eventsource_http_version {
  /* libcurl's default: HTTP/2 when TLS negotiates it (ALPN), HTTP/1.1
   * otherwise and on http: URLs. */
  EVENTSOURCE_HTTP_VERSION_DEFAULT = 0,
  /* HTTP/1.1 only (ALPN offers http/1.1 alone). */
  EVENTSOURCE_HTTP_VERSION_1_1 = 1,
  /* HTTP/2 over TLS, negotiated with ALPN (HTTP/1.1 when the server does
   * not take it); HTTP/1.1 on http: URLs. As libcurl's default today, but
   * said explicitly. */
  EVENTSOURCE_HTTP_VERSION_2 = 2,
  /* HTTP/2 without negotiation ("prior knowledge"): h2c on http: URLs, h2
   * on https: ones; a server that does not speak HTTP/2 fails the attempt
   * (a network error). */
  EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE = 3
} eventsource_http_version_t;

/* Which HTTP version es asks for, from its next request on (default
 * EVENTSOURCE_HTTP_VERSION_DEFAULT). HTTP/2 streams of sources in one multi
 * handle to one origin share connections (see eventsource_multi_set_max_streams()).
 * The version used shows on the OPEN notification
 * (eventsource_event_http_version()) and in EVENTSOURCE_STAT_HTTP_VERSION.
 * Errors: INVALID_ARGUMENT (es NULL or v not a value above), CURL (v asks
 * for HTTP/2 and the libcurl linked was built without it: message says
 * so). Loop thread; callback: yes. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_http_version(eventsource_t *es, eventsource_http_version_t v);
/* Limits on one line and on one event's data, in bytes (defaults
 * EVENTSOURCE_DEFAULT_MAX_LINE and EVENTSOURCE_DEFAULT_MAX_EVENT, 16 MiB
 * each; 0 means no limit). An event over a limit is dropped: its listeners
 * see an error notification with TOO_LARGE, the connection stays open and
 * parsing resumes after the next blank line. */
#define EVENTSOURCE_DEFAULT_MAX_LINE (16UL * 1024 * 1024)
#define EVENTSOURCE_DEFAULT_MAX_EVENT (16UL * 1024 * 1024)
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_max_line(eventsource_t *es, size_t bytes);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_max_event(eventsource_t *es, size_t bytes);

/* The longest last event ID in bytes (default
 * EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID, 4 KiB; 0 means no limit). The ID is
 * sent back as the Last-Event-ID request header, and servers and libcurl
 * refuse long requests, so a longer id: field is not adopted: the last event
 * ID stays what it was (it is never truncated: that would resume at the
 * wrong place), the event is still dispatched, with the previous ID, and
 * listeners see an error notification TOO_LARGE (the connection stays
 * open). eventsource_set_last_event_id() with a longer ID fails with
 * REQUEST_TOO_LARGE. */
#define EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID 4096UL
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_max_last_event_id(eventsource_t *es, size_t bytes);
/* How many bytes of a refused response's body are kept for the ERROR
 * notification (eventsource_event_body(); default
 * EVENTSOURCE_DEFAULT_MAX_ERROR_BODY, 64 KiB; at most
 * EVENTSOURCE_MAX_ERROR_BODY, 1 GiB, else INVALID_ARGUMENT). The
 * notification is made once the body has ended, or once more than this has
 * come (the rest is not read), or when no byte came for the read timeout,
 * or when bytes still come EVENTSOURCE_ERROR_BODY_TIMEOUT_MS (10 s) after
 * the headers, or the read timeout if it is shorter (a server that drips
 * its body cannot hold the attempt; the message then ends "its body was
 * cut: it took too long"). The refusal stands: HTTP_STATUS or
 * CONTENT_TYPE, not READ_TIMEOUT. With the read timeout off (0) a server
 * that sends nothing more and neither ends the body nor closes holds the
 * attempt. 0 keeps none, and the refusal ends the transfer as soon as the
 * headers are in. */
#define EVENTSOURCE_DEFAULT_MAX_ERROR_BODY (64UL * 1024)
#define EVENTSOURCE_ERROR_BODY_TIMEOUT_MS 10000L
#define EVENTSOURCE_MAX_ERROR_BODY (1024UL * 1024 * 1024)
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_max_error_body(eventsource_t *es, size_t bytes);

/* The ceiling on a Retry-After, in ms (default
 * EVENTSOURCE_DEFAULT_MAX_RETRY_AFTER_MS, 1 hour; 0 to 24 h). When a
 * refused response (any status: 429 and 503 above all) carries Retry-After
 * and the source reconnects after it (which takes a policy callback: the
 * default is not to retry a refused response), the delay before the
 * reconnection is at least what Retry-After asks for, at most this ceiling:
 * the delay is the larger of the backoff delay and the Retry-After time.
 * Both forms are understood: delta-seconds ("120") and an HTTP-date ("Wed,
 * 21 Oct 2026 07:28:00 GMT", or the RFC 850 and asctime forms), counted
 * from the current wall-clock time. A value that is neither (garbage, a
 * negative or fractional number, several values), or a date not in the
 * future, is ignored: the backoff delay applies. The policy callback sees
 * the resulting delay as its default *delay_ms; the error notification's
 * eventsource_event_reconnect_ms() reports the delay used. 0 ignores
 * Retry-After. A stream that opened (200 text/event-stream) and then ended
 * is not a refusal: its Retry-After is not used. */
#define EVENTSOURCE_DEFAULT_MAX_RETRY_AFTER_MS 3600000L
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_max_retry_after(eventsource_t *es, long ms);

/* Called on the loop thread before every connection attempt, the first
 * included, and before each redirected request of an attempt (same attempt
 * number; eventsource_request_url() tells where the request goes). It may
 * change headers, method and body (a fresh Authorization token, say; or a
 * POST with a body on attempt 1, the first connection, and a GET on the
 * reconnections that resume with Last-Event-ID, as MCP's resumable streams
 * do: demo/example-resume.c).
 * Returning non-zero fails the source: CLOSED, error CALLBACK. */
typedef int (*eventsource_prepare_fn)(eventsource_t *es, unsigned attempt,
                                      void *userdata);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_prepare_callback(eventsource_t *es, eventsource_prepare_fn fn,
                                 void *userdata);

/* The reconnection policy hook, called on the loop thread when a connection
 * ends or fails, before the error notification. why is NETWORK, EOF,
 * READ_TIMEOUT, CONNECTION_LIMIT (eventsource_multi_set_max_host_connections()), HTTP_STATUS, CONTENT_TYPE, REDIRECT, URL (a URL libcurl
 * cannot use), TLS, REQUEST_TOO_LARGE, RESPONSE_TOO_LARGE or ENCODING,
 * rarely NOMEM, SYSTEM or CALLBACK; http_status the status of the refused
 * response (HTTP_STATUS, CONTENT_TYPE, REDIRECT; 0 for the others); attempt
 * counts consecutive failures (1 for the first; reset by a connection that
 * delivered an event or stayed open for the backoff-reset time).
 * *reconnect and *delay_ms hold the default decision and may be changed (the
 * delay is clamped to [0, 24 h]); after a refused response with a
 * Retry-After, *delay_ms is already at least what it asks for, within the
 * ceiling (eventsource_set_max_retry_after()). The default is the spec's:
 * reconnect after the transient failures, NETWORK (no connection, a reset,
 * a broken transfer), EOF, READ_TIMEOUT and CONNECTION_LIMIT, with the backoff delay; stop
 * after the permanent ones, which retrying the same request cannot heal: a refused
 * response (HTTP_STATUS, CONTENT_TYPE, REDIRECT), TLS (an untrusted or
 * mismatched certificate, unusable TLS files), URL, REQUEST_TOO_LARGE,
 * RESPONSE_TOO_LARGE, ENCODING.
 * Stopping makes the source CLOSED; its error notification carries why, and
 * eventsource_run() returns why, or POLICY when the policy stopped a
 * connection the spec would have reestablished (NETWORK, EOF, READ_TIMEOUT,
 * CONNECTION_LIMIT).
 * Reconnecting after HTTP_STATUS, CONTENT_TYPE or REDIRECT is allowed (how
 * 5xx and 429 are retried). */
typedef void (*eventsource_policy_fn)(eventsource_t *es, eventsource_error_t why,
                                      long http_status, unsigned attempt,
                                      int *reconnect, long *delay_ms,
                                      void *userdata);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_policy_callback(eventsource_t *es, eventsource_policy_fn fn,
                                void *userdata);

/* ------------------------------------------------------------------------ */
/* State                                                                    */
/* ------------------------------------------------------------------------ */

/* readyState. Any thread; callback: yes. */
EVENTSOURCE_EXPORT eventsource_ready_state_t
eventsource_ready_state(const eventsource_t *es);

/* The URL given to eventsource_new() (borrowed, valid until free). Any thread. */
EVENTSOURCE_EXPORT const char *eventsource_url(const eventsource_t *es);

/* The URL of the request being prepared or in flight: eventsource_url() for
 * the first request of every attempt, the redirect's target for the hops
 * after a redirect. Meant for the prepare and curl callbacks, which run
 * before every request. Borrowed: valid until the next request starts or
 * free. Loop thread; callback: yes. */
EVENTSOURCE_EXPORT const char *eventsource_request_url(const eventsource_t *es);

/* The current last event ID (borrowed; valid until the next event or free).
 * len may be NULL. Loop thread; callback: yes. */
EVENTSOURCE_EXPORT const char *eventsource_last_event_id(const eventsource_t *es,
                                                         size_t *len);

/* The code, message and HTTP status of the last failure (OK, "" and 0 when
 * none). The message lives in the handle: valid until the next failure.
 * Loop thread; callback: yes. */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_last_error(const eventsource_t *es);
EVENTSOURCE_EXPORT const char *eventsource_last_error_message(const eventsource_t *es);
EVENTSOURCE_EXPORT long eventsource_last_http_status(const eventsource_t *es);
/* The libcurl error code (CURLcode) of the last failure, 0 when it was not
 * libcurl's. Loop thread; callback: yes. */
EVENTSOURCE_EXPORT int eventsource_last_curl_code(const eventsource_t *es);

/* ------------------------------------------------------------------------ */
/* Running and closing                                                      */
/* ------------------------------------------------------------------------ */

/* Connects and runs the source on the calling thread until it is CLOSED,
 * reconnecting as needed. Returns OK when closed by eventsource_close(), or
 * the code that closed it (HTTP_STATUS, CONTENT_TYPE, REDIRECT, POLICY, ...).
 * Errors also: INVALID_ARGUMENT, STATE (already running or closed), NOMEM,
 * SYSTEM, CURL. Not from a callback.
 * If a listener or hook called eventsource_free(es) during the run, es is
 * freed just before this returns: do not use or free it again.
 * A source run alone (eventsource_run() or eventsource_start()) reads with a
 * 128 KiB receive buffer (libcurl's CURLOPT_BUFFERSIZE; a curl callback may
 * set another); sources in a multi handle keep libcurl's 16 KiB, which keeps
 * thousands of streams small. */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_run(eventsource_t *es);

/* Like eventsource_run() on a thread the library creates; returns at once.
 * Listeners then run on that thread. eventsource_free() joins it.
 * Errors: INVALID_ARGUMENT, STATE, NOMEM, CURL, SYSTEM (thread creation or
 * the loop's descriptors failed). */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_start(eventsource_t *es);

/* Closes the source: readyState CLOSED, the connection and any pending
 * reconnection dropped, and after it returns no listener of es is called
 * again. Idempotent. Any thread (wakes the loop; from another thread it waits
 * for a listener of es that is running to return); callback: yes. */
EVENTSOURCE_EXPORT void eventsource_close(eventsource_t *es);

/* Drops the current connection (or pending wait) and reconnects at once,
 * without an error notification or backoff. The last event ID is kept. A
 * restart is no failure; one that ends a successful connection (it delivered
 * an event, or stayed open for the backoff reset time) starts the backoff
 * over. On a source that is not running yet it does nothing and returns OK.
 * Errors: INVALID_ARGUMENT, CLOSED. Any thread; callback: yes. */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_restart(eventsource_t *es);

/* ------------------------------------------------------------------------ */
/* Many sources on one thread                                               */
/* ------------------------------------------------------------------------ */

/* A multi handle drives many sources through one libcurl multi handle on one
 * thread. Opaque. Either let it wait itself (eventsource_multi_run() or
 * eventsource_multi_poll()), or plug it into your own event loop with the
 * socket and timer callbacks (see include/eventsource_poll.h,
 * eventsource_libuv.h and eventsource_libevent.h). Do not mix the two. */
typedef struct eventsource_multi eventsource_multi_t;

/* Creates a multi handle. On failure *out is untouched.
 * Errors: INVALID_ARGUMENT, NOMEM, CURL, SYSTEM. Any thread. */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_multi_new(eventsource_multi_t **out);

/* Frees the multi handle. Sources still in it are removed (not closed, not
 * freed: they remain the caller's). NULL does nothing. Loop thread; from a
 * callback it is refused (does nothing). */
EVENTSOURCE_EXPORT void eventsource_multi_free(eventsource_multi_t *m);

/* Adds es, which starts connecting on the next step of the loop. A source
 * belongs to at most one multi handle at a time.
 * Errors: INVALID_ARGUMENT, STATE (es already in a multi, running, or
 * CLOSED), NOMEM. Loop thread; callback: yes. */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_multi_add(eventsource_multi_t *m,
                                                             eventsource_t *es);

/* Removes es: drops its connection without closing it (readyState stays as it
 * was; adding it again reconnects). Errors: INVALID_ARGUMENT, NOT_FOUND.
 * Callback: yes, it takes effect when the callback returns. Any thread
 * otherwise: es is removed at once when no step of the loop is running; if
 * one is (the loop may be waiting for events), the removal is queued, the
 * loop is woken and its thread removes es at the end of that step. Free es
 * only once it is out (eventsource_multi_run() returned, or from the loop
 * thread). */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_multi_remove(eventsource_multi_t *m,
                                                                eventsource_t *es);

/* The number of sources in m that are not CLOSED. Loop thread; callback: yes. */
EVENTSOURCE_EXPORT size_t eventsource_multi_active(const eventsource_multi_t *m);

/* HTTP/2 connection sharing. Sources of one multi handle whose requests may
 * be multiplexed (HTTP/2 over TLS, which is libcurl's default on https:
 * URLs, and prior knowledge on any URL) share connections per origin
 * (scheme, host, port): the first request to an origin opens a connection,
 * the others wait until its response begins (then the server's own limit
 * is known), or until its connection has been made for a second (a server
 * that sends its headers late), or at most EVENTSOURCE_SHARE_WAIT_MS for a
 * connection that is not made (then each goes on alone), and then go out
 * on it, up to n
 * streams per connection; only then is another connection opened. So N
 * sources added at once use about ceil(N / n) connections. n is also the
 * most streams libcurl puts on one connection. A server that allows fewer
 * (its SETTINGS) is noticed when a request finds its connections full, and
 * its limit is used for that origin from then on. Default
 * EVENTSOURCE_DEFAULT_MAX_STREAMS; 1 to 10000. HTTP/1.x requests are not
 * held: each stream has a connection of its own.
 * Errors: INVALID_ARGUMENT. Loop thread, before or between steps; callback:
 * yes (applies to requests started after it). */
#define EVENTSOURCE_DEFAULT_MAX_STREAMS 100L
#define EVENTSOURCE_SHARE_WAIT_MS 10000L
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_multi_set_max_streams(eventsource_multi_t *m, long n);

/* At most n connections to one host (0, the default: no limit; at most
 * 100000). An event stream never ends, so a request that found no room
 * would wait for ever in libcurl's queue: here it does not wait. A request
 * that would need a connection past the limit (n streams on HTTP/1.1, n
 * times the streams per connection on HTTP/2) fails at once with
 * EVENTSOURCE_ERR_CONNECTION_LIMIT, which is retried with the backoff by
 * default, so the source gets in when another leaves.
 * Errors: INVALID_ARGUMENT. As eventsource_multi_set_max_streams(). */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_multi_set_max_host_connections(eventsource_multi_t *m, long n);

/* Waits up to timeout_ms (0: do not wait, -1: until something happens) for
 * network activity, timers or a wakeup, then does all the work that is ready.
 * Errors: INVALID_ARGUMENT, STATE (socket callbacks set, or called from a
 * callback), SYSTEM, CURL. Loop thread. */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_multi_poll(eventsource_multi_t *m,
                                                              int timeout_ms);

/* Runs eventsource_multi_poll() until no source in m is active (every one is
 * CLOSED or removed). Errors as eventsource_multi_poll(). */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_multi_run(eventsource_multi_t *m);

/* Makes a waiting eventsource_multi_poll() return (with the socket
 * callbacks: makes the wakeup descriptor readable). Errors: INVALID_ARGUMENT,
 * SYSTEM (the write to the wakeup descriptor failed). Any thread. */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_multi_wakeup(eventsource_multi_t *m);

/* --- Driving a multi handle from your own event loop --------------------- */

#define EVENTSOURCE_POLL_IN 1     /* watch fd for reading */
#define EVENTSOURCE_POLL_OUT 2    /* watch fd for writing */
#define EVENTSOURCE_POLL_REMOVE 4 /* stop watching fd */

/* Tells the application to watch fd for what (EVENTSOURCE_POLL_IN and/or
 * _OUT), or to stop watching it (EVENTSOURCE_POLL_REMOVE). socketp is what
 * the application stored with eventsource_multi_assign() for fd (NULL until
 * then). Return 0. Non-zero when asked to watch means the descriptor cannot
 * be watched: only the source whose connection it is fails (CLOSED, error
 * notification CALLBACK); the others go on. Non-zero for REMOVE is ignored. */
typedef int (*eventsource_socket_fn)(eventsource_multi_t *m, int fd, int what,
                                     void *userdata, void *socketp);

/* Tells the application to call eventsource_multi_timeout() once, in
 * timeout_ms milliseconds (0: as soon as possible), replacing any earlier
 * request; -1 cancels the timer. Return 0 (the value is not used). */
typedef int (*eventsource_timer_fn)(eventsource_multi_t *m, long timeout_ms,
                                    void *userdata);

/* Installs the callbacks (both, before the first source is added). The
 * multi's own wakeup descriptor (for eventsource_close() and friends from
 * other threads) is announced through fn as well: first, from
 * eventsource_multi_set_socket_callback() itself, and it is removed only by
 * eventsource_multi_free(), as the very last call of the callbacks. Adding a
 * source from outside a step calls the timer callback with 0.
 * Errors: INVALID_ARGUMENT, STATE (sources already added, or a socket
 * callback already installed), CALLBACK (fn refused the wakeup descriptor).
 * Loop thread. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_multi_set_socket_callback(eventsource_multi_t *m,
                                      eventsource_socket_fn fn, void *userdata);
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_multi_set_timer_callback(eventsource_multi_t *m,
                                     eventsource_timer_fn fn, void *userdata);

/* Stores a pointer the socket callback gets back for fd. Errors:
 * INVALID_ARGUMENT, NOT_FOUND (fd not watched). Loop thread; callback: yes. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_multi_assign(eventsource_multi_t *m, int fd, void *socketp);

/* Reports that fd is ready for events (EVENTSOURCE_POLL_IN/_OUT; 0 if
 * unknown) and does the work that follows. Errors: INVALID_ARGUMENT, STATE
 * (called from a callback), CURL. Loop thread. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_multi_socket_action(eventsource_multi_t *m, int fd, int events);

/* Reports that the timer requested by the timer callback expired. Errors:
 * INVALID_ARGUMENT, STATE (called from a callback), CURL. Loop thread. */
EVENTSOURCE_EXPORT eventsource_error_t eventsource_multi_timeout(eventsource_multi_t *m);

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */
/* ------------------------------------------------------------------------ */

/* A source's statistics, read one at a time with eventsource_stat(): no
 * struct crosses the ABI, and values are only ever appended to this enum.
 * Counters start at 0 with eventsource_new() and only grow for the life of
 * the handle (over reconnects, restarts and multi handles). The values of
 * "the current connection" start again at 0 when each request starts (a
 * reconnect, a restart, a redirect's next hop) and stay after it ended, until
 * the next request. Times are in milliseconds, rounded up, so a time that
 * was measured is at least 1 and 0 means "not yet". */
typedef enum eventsource_stat {
  /* Connection attempts started: the first, each reconnect, each restart
   * and each re-add to a multi handle (the hops of a redirect are one
   * attempt). */
  EVENTSOURCE_STAT_ATTEMPTS = 0,
  /* Connections that opened (the OPEN notifications). */
  EVENTSOURCE_STAT_OPENS = 1,
  /* Attempts made to reestablish the connection after it ended or failed
   * (HTML's "reestablish the connection"); restarts are not counted. */
  EVENTSOURCE_STAT_RECONNECTS = 2,
  /* Events dispatched (message kind), whether or not a listener took them. */
  EVENTSOURCE_STAT_EVENTS = 3,
  /* Body bytes of the streams that opened, as the parser got them (after
   * Content-Encoding is decoded); headers and the bodies of refused
   * responses and redirects are not counted. */
  EVENTSOURCE_STAT_BYTES = 4,
  /* Comment lines (":..."), whether or not a comment listener took them. */
  EVENTSOURCE_STAT_COMMENTS = 5,
  /* Events dropped for a limit: eventsource_set_max_event() or
   * eventsource_set_max_line() (the TOO_LARGE error notifications, but for
   * an id: over eventsource_set_max_last_event_id(), which drops no event). */
  EVENTSOURCE_STAT_DROPPED = 6,
  /* The current connection: from the start of its request to the first
   * byte of the response (libcurl's CURLINFO_STARTTRANSFER_TIME_T: name
   * resolution, connect and TLS included). Set when the response began:
   * by the OPEN notification, or by the ERROR one of a refused response. */
  EVENTSOURCE_STAT_TTFB_MS = 7,
  /* The current connection: from the start of its request to its first
   * event (set before that event's listeners run). */
  EVENTSOURCE_STAT_FIRST_EVENT_MS = 8,
  /* The current connection's HTTP version: 10 (HTTP/1.0), 11 (HTTP/1.1),
   * 20 (HTTP/2), 30 (HTTP/3); 0 until a response began. */
  EVENTSOURCE_STAT_HTTP_VERSION = 9,
  /* 1 when the current connection's request went out on a connection
   * libcurl kept from an earlier transfer (CURLINFO_NUM_CONNECTS 0), 0 when
   * it made a new one or no response began yet. libcurl keeps a connection
   * only after a response that did not end it: a stream that ends with the
   * connection (Connection: close, the usual end of an event stream) leaves
   * nothing to reuse, while one with a Content-Length that the server keeps
   * open is reused by the reconnect to the same server. */
  EVENTSOURCE_STAT_CONNECTION_REUSED = 10,
  /* HTTP requests sent: every attempt's first, and each redirect hop. */
  EVENTSOURCE_STAT_REQUESTS = 11
} eventsource_stat_t;

/* The statistic `which` of es. Returns 0 when es is NULL or `which` is not
 * a value of eventsource_stat_t this library knows (a program built against
 * a newer header, say): 0 is also every counter's value before it happened.
 * Never fails, never blocks, never allocates. Any thread, while the source
 * runs (the counters are atomics; a value read is one the counter had, and
 * successive reads of a counter never go down); callback: yes. */
EVENTSOURCE_EXPORT uint64_t eventsource_stat(const eventsource_t *es,
                                             eventsource_stat_t which);

/* A multi handle's statistics: its sources, and totals of the sources'
 * counters (eventsource_stat_t) over the time each source was in it (what a
 * source did before it was added or after it left is not in them).
 * Append-only, like eventsource_stat_t. */
typedef enum eventsource_multi_stat {
  EVENTSOURCE_MULTI_STAT_ADDED = 0,      /* successful eventsource_multi_add() */
  EVENTSOURCE_MULTI_STAT_SOURCES = 1,    /* sources in it now */
  EVENTSOURCE_MULTI_STAT_ACTIVE = 2,     /* eventsource_multi_active() */
  EVENTSOURCE_MULTI_STAT_ATTEMPTS = 3,   /* totals of EVENTSOURCE_STAT_... */
  EVENTSOURCE_MULTI_STAT_OPENS = 4,
  EVENTSOURCE_MULTI_STAT_RECONNECTS = 5,
  EVENTSOURCE_MULTI_STAT_EVENTS = 6,
  EVENTSOURCE_MULTI_STAT_BYTES = 7,
  EVENTSOURCE_MULTI_STAT_COMMENTS = 8,
  EVENTSOURCE_MULTI_STAT_DROPPED = 9,
  EVENTSOURCE_MULTI_STAT_REQUESTS = 10,
  /* Connections opened: requests whose response began on a connection
   * made for them (EVENTSOURCE_STAT_CONNECTION_REUSED 0). */
  EVENTSOURCE_MULTI_STAT_CONNECTIONS = 11
} eventsource_multi_stat_t;

/* The statistic `which` of m; 0 when m is NULL or `which` is unknown, as
 * eventsource_stat(). Any thread; callback: yes. */
EVENTSOURCE_EXPORT uint64_t eventsource_multi_stat(const eventsource_multi_t *m,
                                                   eventsource_multi_stat_t which);

#ifdef __cplusplus
}
#endif

#endif /* EVENTSOURCE_H */
