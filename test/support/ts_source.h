/*
 * ts_source.h - one source under test, end to end, against the scripted
 * loopback server (sse_server.h), through the public API only: the context
 * of the connection suites (test_request, test_events, test_response,
 * test_reconnect, test_hooks, test_restart, test_close).
 *
 * A test makes a ts_ctx (ts_ctx_init: a started server), scripts the
 * server's answers (ts_add_stream, ts_add_status), makes the source
 * (ts_ctx_new_es: with an any-listener that records every notification in
 * the context's log), runs it with eventsource_run() in a helper thread
 * (ts_ctx_run) or with eventsource_start() (ts_ctx_start), and waits on the
 * log (ts_log_wait...), a counter or the server with a deadline. Nothing
 * waits on a sleep: the deadlines are failure bounds only. ts_ctx_fini
 * closes, waits and frees everything.
 *
 * The log, the counters and every field the listeners and hooks below write
 * are under c->mu; c->cv is broadcast on every change.
 */
#ifndef TS_SOURCE_H
#define TS_SOURCE_H

#include <pthread.h>
#include <stddef.h>

#include "eventsource.h"
#include "eventsource_curl.h"
#include "support/sse_server.h"

/* Deadlines are failure bounds only: a passing run never waits for them. */
#define TS_WAIT_MS 10000
/* A kind that matches every kind, for ts_log_count() and friends. */
#define TS_ANY_KIND (-1)

/* The bound within which a close must take effect (a safety bound, not a
 * timing dependency; more slack under valgrind). */
long ts_prompt_ms(void);

/* ------------------------------------------------------------------------ */
/* The notification log and the test context                                */
/* ------------------------------------------------------------------------ */

/* One notification, as a listener saw it. */
typedef struct ts_rec {
  eventsource_kind_t kind;
  char type[64];
  char *data;
  size_t data_len;
  char id[128];
  eventsource_error_t error;
  long status;
  int will_reconnect;
  long reconnect_ms;
  int curl_code;
  eventsource_ready_state_t state;
  const char *via; /* which listener recorded it */
} ts_rec;

#define TS_MAX_PREPARE 16
#define TS_MAX_POLICY 16

/* One call of ts_policy_hook. */
typedef struct ts_policy_call {
  eventsource_error_t why;
  long status;
  unsigned attempt;
  int default_reconnect;
  long default_delay;
} ts_policy_call;

typedef struct ts_ctx {
  ts_server *srv;
  eventsource_t *es;
  int es_freed; /* freed by the test itself (from a listener) */

  pthread_mutex_t mu;
  pthread_cond_t cv;
  ts_rec *v;
  size_t n, cap;

  /* the helper thread running eventsource_run() */
  pthread_t runner;
  int runner_started;
  int run_done;
  eventsource_error_t run_rc;
  int started; /* eventsource_start() used instead */

  /* per-test counters and settings, under mu */
  int counter[8];
  eventsource_listener_id_t ids[8];
  int close_after; /* close from a listener after this many messages */
  eventsource_ready_state_t seen_state;
  unsigned prepare_attempts[TS_MAX_PREPARE];
  int nprepare;
  int prepare_fail;
  ts_policy_call policy[TS_MAX_POLICY];
  int npolicy;
  int policy_mode;
  long policy_delay;

  /* the curl hook (ts_curl_hook) and what it saw */
  int curl_mode;
  int ncurl;                         /* calls */
  int curl_nprepare[TS_MAX_PREPARE]; /* nprepare when call i was made */
  int curl_bad;                      /* calls that found something wrong */
  /* CURLINFO_DATA_IN, counted by the debug function of TS_CURL_TRACE */
  size_t in_bytes;
  size_t in_chunks;
  size_t in_max;

  ts_request *req; /* scratch for ts_req_get() */
  char hbuf[1024];
} ts_ctx;

/* Zeroes c, starts its server (asserted). */
void ts_ctx_init(ts_ctx *c);
/* Closes (if still running), waits, frees everything. */
void ts_ctx_fini(ts_ctx *c);

/* Appends a record of ev (es's state now, recorded by `via`). */
void ts_log_push(ts_ctx *c, eventsource_t *es, const eventsource_event_t *ev,
                 const char *via);
/* The any-listener every test installs (via "any"); ud is the ts_ctx. */
void ts_on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud);
/* A comment listener that records (via "comment"); ud is the ts_ctx. */
void ts_on_comment(eventsource_t *es, const eventsource_event_t *ev, void *ud);

/* Records of that kind (TS_ANY_KIND: any) and type (NULL: any). */
size_t ts_log_count(ts_ctx *c, int kind, const char *type);
size_t ts_log_size(ts_ctx *c);
/* Waits until the log holds at least n records of that kind and type;
 * returns how many it holds. */
size_t ts_log_wait(ts_ctx *c, int kind, const char *type, size_t n, long timeout_ms);
/* Waits for n records of that kind (any type) and asserts there are n. */
void ts_log_wait_eq(ts_ctx *c, int kind, size_t n);
/* A copy of the i-th record (asserted to exist; records never change). */
ts_rec ts_log_at(ts_ctx *c, size_t i);
/* A copy of the nth (0-based) record of that kind and type (asserted). */
ts_rec ts_log_nth(ts_ctx *c, int kind, const char *type, size_t nth);
/* r's data is exactly want. */
void ts_assert_data(const ts_rec *r, const char *want);

/* ------------------------------------------------------------------------ */
/* The source and how it runs                                               */
/* ------------------------------------------------------------------------ */

/* A source for url (any server), with the logging any-listener, in c->es. */
eventsource_t *ts_ctx_new_es_url(ts_ctx *c, const char *url);
/* The same for a path on the test's server. */
eventsource_t *ts_ctx_new_es(ts_ctx *c, const char *path);
/* Runs c->es with eventsource_run() in a helper thread. */
void ts_ctx_run(ts_ctx *c);
/* Runs c->es with eventsource_start(). */
void ts_ctx_start(ts_ctx *c);
/* Waits until eventsource_run() returned; 1 if it did. */
int ts_ctx_wait_run(ts_ctx *c, long timeout_ms);
/* What eventsource_run() returned. */
eventsource_error_t ts_ctx_run_rc(ts_ctx *c);
/* eventsource_run() of c->es returned rc and left the source closed. */
void ts_expect_run_ended(ts_ctx *c, eventsource_error_t rc);
/* Adds a listener for type on c->es with c as its user data (asserted). */
void ts_ctx_listen(ts_ctx *c, const char *type, eventsource_listener_fn fn);
/* *field, read under c->mu. */
int ts_ctx_get(ts_ctx *c, const int *field);

/* Fixed reconnection delay: retry ms, no jitter. */
void ts_set_retry_exact(eventsource_t *es, long ms);

/* c->counter[k]: bump (and broadcast), read, wait until >= n (returns it). */
void ts_counter_inc(ts_ctx *c, int k);
int ts_counter_get(ts_ctx *c, int k);
int ts_counter_wait(ts_ctx *c, int k, int n, long timeout_ms);

/* ------------------------------------------------------------------------ */
/* The server's side                                                        */
/* ------------------------------------------------------------------------ */

/* A script: headers, the given writes (NULL-ended), then hold or close. */
ts_script *ts_add_stream(ts_ctx *c, int hold, const char *first, ...)
    __attribute__((sentinel));
/* A script: status line, up to two header lines (NULL: none), the body (or
 * none), then close. */
void ts_add_status(ts_ctx *c, int status, const char *reason, const char *h1,
                   const char *h2, const char *body);
/* Request i as the server recorded it (in c->req). */
const ts_request *ts_req_get(ts_ctx *c, int i);
/* The value of a header in request i, or NULL when absent. */
const char *ts_req_header(ts_ctx *c, int i, const char *name);

/* POST of a fixed body (with a NUL byte) and a Content-Type on es. */
void ts_set_post(eventsource_t *es);
/* Request i was the POST of ts_set_post() to path. */
void ts_assert_post(ts_ctx *c, int i, const char *path);

/* ------------------------------------------------------------------------ */
/* Hooks                                                                    */
/* ------------------------------------------------------------------------ */

/* What ts_curl_hook, the hook of eventsource_set_curl_callback(), does. */
enum {
  TS_CURL_USER_AGENT, /* sets CURLOPT_USERAGENT "es-test/1" */
  TS_CURL_FAIL,       /* returns CURLE_BAD_FUNCTION_ARGUMENT */
  TS_CURL_CLOSE,      /* closes the source */
  TS_CURL_TRACE       /* counts the body bytes received (in_bytes ...) */
};

/* Counts its calls (ncurl, curl_nprepare, curl_bad), then does curl_mode;
 * ud is the ts_ctx. */
CURLcode ts_curl_hook(eventsource_t *es, CURL *easy, void *ud);
/* Installs ts_curl_hook in the given mode on c->es. */
void ts_ctx_curl_hook(ts_ctx *c, int mode);
/* Waits until the client has received at least n body bytes (TS_CURL_TRACE);
 * returns how many it has. */
size_t ts_in_bytes_wait(ts_ctx *c, size_t n, long timeout_ms);

/* The prepare hook: sets "X-Attempt: <attempt>" (a failure to set it bumps
 * counter[7]), records the attempt (prepare_attempts, nprepare), then
 * returns prepare_fail, except that prepare_fail 2 closes the source and
 * returns 0. ud is the ts_ctx. */
int ts_prepare_hook(eventsource_t *es, unsigned attempt, void *ud);
/* Installs ts_prepare_hook with that prepare_fail on c->es. */
void ts_ctx_prepare_hook(ts_ctx *c, int prepare_fail);

/* What ts_policy_hook does after recording the call (policy, npolicy). */
enum {
  TS_POLICY_RECORD,           /* nothing else */
  TS_POLICY_RECONNECT_STATUS, /* reconnect after a 503, in policy_delay */
  TS_POLICY_STOP,             /* never reconnect */
  TS_POLICY_DELAY             /* the default decision, in policy_delay */
};

/* The policy hook, in mode policy_mode; ud is the ts_ctx. */
void ts_policy_hook(eventsource_t *es, eventsource_error_t why, long http_status,
                    unsigned attempt, int *reconnect, long *delay_ms, void *ud);
/* Installs ts_policy_hook in that mode, with that policy_delay, on c->es. */
void ts_ctx_policy_hook(ts_ctx *c, int mode, long delay_ms);

/* ------------------------------------------------------------------------ */
/* The process                                                              */
/* ------------------------------------------------------------------------ */

/* The entries of a directory, "." ones left out (/proc/self/task: threads,
 * /proc/self/fd: descriptors). */
int ts_count_entries(const char *dir);
/* Waits (observing, with a deadline) until the process has at most n
 * threads; returns how many it has. */
int ts_wait_threads_at_most(int n, long timeout_ms);

#endif
