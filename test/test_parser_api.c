/*
 * test_parser_api.c - the public streaming parser (include/eventsource_parser.h,
 * lib/parser_api.c): every callback, any chunking gives the same callbacks,
 * limits and the error callback, stopping from a callback, re-entrant calls
 * refused, NULL arguments, failed allocations, the last event ID.
 *
 * Each test records what the callbacks see as a transcript (one line per
 * call) and compares it; test_vectors also runs every parser vector of
 * test_parser (test/vectors) through the public API, whole, byte by byte
 * and split at every offset: the public parser is the client's. No
 * network, no threads.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h" /* es_alloc_fail_after() */
#include "eventsource_parser.h"
#include "support/ts_refmodel.h"
#include "support/ts_util.h"

/* ------------------------------------------------------------------------ */
/* A recorder: the transcript of the callbacks                              */
/* ------------------------------------------------------------------------ */

typedef struct rec {
  ts_sb_t log;
  int calls;
  int stop_at;   /* return non-zero from the call numbered stop_at (1-based; 0 never) */
  int reenter;   /* from the event callback, try every refused call */
  int refused;   /* how many of those were refused as documented */
  eventsource_parser_t *self;
} rec;

/* Bytes as they are, but NUL as \0, LF as \n, CR as \r, '|' as \| so that
 * the transcript shows them. */
static void put_esc(ts_sb_t *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    switch (s[i]) {
    case '\0':
      ts_sb_puts(b, "\\0");
      break;
    case '\n':
      ts_sb_puts(b, "\\n");
      break;
    case '\r':
      ts_sb_puts(b, "\\r");
      break;
    case '|':
      ts_sb_puts(b, "\\|");
      break;
    default:
      ts_sb_putc(b, s[i]);
    }
  }
}

static int next_rc(rec *r) {
  r->calls++;
  return r->stop_at && r->calls == r->stop_at;
}

static int on_event(eventsource_parser_t *p, const char *type, size_t tl, const char *data,
                    size_t dl, const char *id, size_t il, void *ud) {
  rec *r = ud;
  ck_assert_ptr_eq(p, r->self);
  /* the strings are NUL-terminated too */
  ck_assert(type[tl] == '\0' && data[dl] == '\0' && id[il] == '\0');
  ck_assert_uint_eq(strlen(id), il);
  ts_sb_puts(&r->log, "event ");
  put_esc(&r->log, type, tl);
  ts_sb_putc(&r->log, '|');
  put_esc(&r->log, data, dl);
  ts_sb_putc(&r->log, '|');
  put_esc(&r->log, id, il);
  ts_sb_putc(&r->log, '\n');
  if (r->reenter) {
    r->refused += eventsource_parser_feed(p, "data: x\n\n", 9) == EVENTSOURCE_ERR_STATE;
    r->refused += eventsource_parser_feed(p, NULL, 0) == EVENTSOURCE_ERR_STATE;
    r->refused += eventsource_parser_finish(p) == EVENTSOURCE_ERR_STATE;
    r->refused += eventsource_parser_reset(p) == EVENTSOURCE_ERR_STATE;
    eventsource_parser_free(p); /* refused: does nothing (ASan would see a use after free) */
    /* the calls allowed in a callback */
    size_t len;
    ck_assert_str_eq(eventsource_parser_last_event_id(p, &len), id);
    ck_assert_int_eq(eventsource_parser_set_max_line(p, 0), EVENTSOURCE_OK);
    ck_assert_int_eq(eventsource_parser_set_max_event(p, 0), EVENTSOURCE_OK);
    ck_assert_int_eq(eventsource_parser_set_max_last_event_id(p, 0), EVENTSOURCE_OK);
    ck_assert_int_eq(eventsource_parser_set_last_event_id(p, "from-callback"), EVENTSOURCE_OK);
    /* the id this callback was given is unchanged */
    ck_assert_uint_eq(strlen(id), il);
    ck_assert_str_eq(eventsource_parser_last_event_id(p, NULL), "from-callback");
  }
  return next_rc(r);
}

static int on_retry(eventsource_parser_t *p, uint64_t ms, void *ud) {
  rec *r = ud;
  ck_assert_ptr_eq(p, r->self);
  ts_sb_printf(&r->log, "retry %llu\n", (unsigned long long)ms);
  return next_rc(r);
}

static int on_comment(eventsource_parser_t *p, const char *text, size_t len, void *ud) {
  rec *r = ud;
  ck_assert_ptr_eq(p, r->self);
  ck_assert(text[len] == '\0');
  ts_sb_puts(&r->log, "comment ");
  put_esc(&r->log, text, len);
  ts_sb_putc(&r->log, '\n');
  return next_rc(r);
}

static int on_error(eventsource_parser_t *p, eventsource_error_t code, const char *msg,
                    void *ud) {
  rec *r = ud;
  ck_assert_ptr_eq(p, r->self);
  ck_assert_ptr_nonnull(msg);
  ck_assert_uint_gt(strlen(msg), 0);
  /* the first word of the message says what went over */
  ts_sb_printf(&r->log, "error %s %.*s\n", eventsource_error_name(code),
               (int)strcspn(msg, " "), msg);
  return next_rc(r);
}

/* A parser with all four callbacks recording into r. */
static eventsource_parser_t *new_parser(rec *r) {
  eventsource_parser_t *p = NULL;
  memset(r, 0, sizeof *r);
  ck_assert_int_eq(eventsource_parser_new(&p), EVENTSOURCE_OK);
  ck_assert_ptr_nonnull(p);
  r->self = p;
  ck_assert_int_eq(eventsource_parser_set_event_callback(p, on_event, r), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_retry_callback(p, on_retry, r), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_comment_callback(p, on_comment, r), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_error_callback(p, on_error, r), EVENTSOURCE_OK);
  return p;
}

static const char *log_str(rec *r) { return r->log.p ? r->log.p : ""; }

static void done(eventsource_parser_t *p, rec *r) {
  eventsource_parser_free(p);
  ts_sb_free(&r->log);
}

#define FEED(p, s) ck_assert_int_eq(eventsource_parser_feed((p), (s), sizeof(s) - 1), EVENTSOURCE_OK)

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                */
/* ------------------------------------------------------------------------ */

/* A stream that uses every callback and most of the syntax: a BOM, CRLF,
 * CR and LF line ends, a comment, retry:, typed and untyped events, several
 * data: lines, an id: and an id that resets it, NUL in data, invalid UTF-8,
 * a multi-byte character, a block without data, and a partial last event. */
static const char STREAM[] =
    "\xEF\xBB\xBF: hello\r\n"
    "retry: 1500\r\n"
    "retry: 12x\n"
    "id: 7\n"
    "data: first\n"
    "\n"
    "event: update\r"
    "data:  two\r"
    "data:\r"
    "data: lines\r"
    "\r"
    "event: ignored\n"
    "\n"
    "data: n\0l \xff \xc3\xa9\n"
    "unknown: field\n"
    "data\n"
    "\n"
    "id\n"
    "data: no id\n"
    "\n"
    "data: partial\n";

static const char STREAM_LOG[] = "comment  hello\n"
                                 "retry 1500\n"
                                 "event message|first|7\n"
                                 "event update| two\\n\\nlines|7\n"
                                 "event message|n\\0l \xef\xbf\xbd \xc3\xa9\\n|7\n"
                                 "event message|no id|\n";

START_TEST(test_every_callback) {
  rec r;
  eventsource_parser_t *p = new_parser(&r);
  ck_assert_int_eq(eventsource_parser_feed(p, STREAM, sizeof STREAM - 1), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_finish(p), EVENTSOURCE_OK);
  ck_assert_str_eq(log_str(&r), STREAM_LOG);
  ck_assert_str_eq(eventsource_parser_last_event_id(p, NULL), "");
  done(p, &r);
}
END_TEST

/* A callback that is not set is skipped; the others still run. */
START_TEST(test_callbacks_optional) {
  rec r;
  eventsource_parser_t *p = new_parser(&r);
  ck_assert_int_eq(eventsource_parser_set_comment_callback(p, NULL, NULL), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_retry_callback(p, NULL, NULL), EVENTSOURCE_OK);
  FEED(p, ": c\nretry: 5\ndata: a\n\n");
  ck_assert_str_eq(log_str(&r), "event message|a|\n");
  /* and none at all */
  ck_assert_int_eq(eventsource_parser_set_event_callback(p, NULL, NULL), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_error_callback(p, NULL, NULL), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_max_line(p, 8), EVENTSOURCE_OK);
  FEED(p, "id: 9\ndata: b\n\ndata: too long\n\n");
  ck_assert_str_eq(log_str(&r), "event message|a|\n");
  ck_assert_str_eq(eventsource_parser_last_event_id(p, NULL), "9");
  done(p, &r);
}
END_TEST

/* finish() is the end of the stream: the incomplete event is not
 * dispatched, and the next stream starts afresh (a BOM again), keeping the
 * last event ID. reset() does the same. */
START_TEST(test_finish_discards_partial) {
  rec r;
  eventsource_parser_t *p = new_parser(&r);
  FEED(p, "id: 1\ndata: a\n\ndata: b\nid: 2\n");
  ck_assert_int_eq(eventsource_parser_finish(p), EVENTSOURCE_OK);
  FEED(p, "\n\n");
  FEED(p, "data: c"); /* a partial line */
  ck_assert_int_eq(eventsource_parser_finish(p), EVENTSOURCE_OK);
  FEED(p, "\n\n\xEF\xBB\xBF");
  ck_assert_int_eq(eventsource_parser_reset(p), EVENTSOURCE_OK);
  FEED(p, "\xEF\xBB\xBF"
          "data: d\n\n");
  ck_assert_str_eq(log_str(&r), "event message|a|1\nevent message|d|1\n");
  ck_assert_int_eq(eventsource_parser_finish(p), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_finish(p), EVENTSOURCE_OK); /* twice: nothing */
  done(p, &r);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Chunking                                                                 */
/* ------------------------------------------------------------------------ */

/* The transcript of STREAM fed in the pieces cut at cuts[0..ncuts). */
static char *run_cut(const size_t *cuts, size_t ncuts) {
  rec r;
  eventsource_parser_t *p = new_parser(&r);
  size_t at = 0;
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : sizeof STREAM - 1;
    /* a copy of exactly the piece, so ASan sees any read past it */
    char *piece = malloc(end - at + 1);
    ck_assert_ptr_nonnull(piece);
    memcpy(piece, STREAM + at, end - at);
    ck_assert_int_eq(eventsource_parser_feed(p, piece, end - at), EVENTSOURCE_OK);
    free(piece);
    at = end;
  }
  ck_assert_int_eq(eventsource_parser_finish(p), EVENTSOURCE_OK);
  char *s = ts_sb_take(&r.log);
  eventsource_parser_free(p);
  return s;
}

START_TEST(test_split_every_offset) {
  const size_t n = sizeof STREAM - 1;
  /* in two at every offset (empty pieces included) */
  for (size_t i = 0; i <= n; i++) {
    char *s = run_cut(&i, 1);
    ck_assert_msg(strcmp(s, STREAM_LOG) == 0, "split at %zu:\n%s", i, s);
    free(s);
  }
  /* in three at every pair of offsets */
  for (size_t i = 1; i < n; i++)
    for (size_t j = i + 1; j < n; j++) {
      size_t cuts[2] = {i, j};
      char *s = run_cut(cuts, 2);
      ck_assert_msg(strcmp(s, STREAM_LOG) == 0, "split at %zu and %zu:\n%s", i, j, s);
      free(s);
    }
  /* byte by byte */
  size_t *all = malloc(n * sizeof *all);
  ck_assert_ptr_nonnull(all);
  for (size_t i = 0; i < n; i++)
    all[i] = i + 1;
  char *s = run_cut(all, n - 1);
  ck_assert_str_eq(s, STREAM_LOG);
  free(s);
  free(all);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Limits                                                                   */
/* ------------------------------------------------------------------------ */

START_TEST(test_max_line) {
  rec r;
  eventsource_parser_t *p = new_parser(&r);
  ck_assert_int_eq(eventsource_parser_set_max_line(p, 10), EVENTSOURCE_OK);
  /* "data: 1234" is 10 bytes: allowed; one more is not, and the event is
   * dropped up to the blank line (the comment and retry: in it too) */
  FEED(p, "data: 1234\n\n"
          "data: a\ndata: 12345\n: in the dropped event\nretry: 5\n\n"
          "data: b\n\n");
  ck_assert_str_eq(log_str(&r), "event message|1234|\n"
                                "error TOO_LARGE line\n"
                                "event message|b|\n");
  /* 0: no limit */
  ck_assert_int_eq(eventsource_parser_set_max_line(p, 0), EVENTSOURCE_OK);
  r.log.len = 0;
  FEED(p, "data: a long line, longer than ten bytes\n\n");
  ck_assert_str_eq(log_str(&r), "event message|a long line, longer than ten bytes|\n");
  done(p, &r);
}
END_TEST

START_TEST(test_max_event) {
  rec r;
  eventsource_parser_t *p = new_parser(&r);
  ck_assert_int_eq(eventsource_parser_set_max_event(p, 5), EVENTSOURCE_OK);
  FEED(p, "data: ab\ndata: cd\n\n" /* "ab\ncd": 5 bytes */
          "event: big\ndata: abc\ndata: def\n\n"
          "data: ok\n\n");
  ck_assert_str_eq(log_str(&r), "event message|ab\\ncd|\n"
                                "error TOO_LARGE event\n"
                                "event message|ok|\n");
  /* set before a stream's first byte, a limit applies to its first event */
  ck_assert_int_eq(eventsource_parser_reset(p), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_max_event(p, 2), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_max_line(p, 9), EVENTSOURCE_OK);
  r.log.len = 0;
  FEED(p, "data: abc\n\nevent: 0123\n\ndata: ab\n\n");
  ck_assert_str_eq(log_str(&r), "error TOO_LARGE event\n"
                                "error TOO_LARGE line\n"
                                "event message|ab|\n");
  done(p, &r);
}
END_TEST

START_TEST(test_max_last_event_id) {
  rec r;
  eventsource_parser_t *p = new_parser(&r);
  /* the default is the client's */
  char big[EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID + 16];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ck_assert_int_eq(eventsource_parser_set_last_event_id(p, big), EVENTSOURCE_ERR_TOO_LARGE);
  big[EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID] = '\0';
  ck_assert_int_eq(eventsource_parser_set_last_event_id(p, big), EVENTSOURCE_OK);

  ck_assert_int_eq(eventsource_parser_set_max_last_event_id(p, 3), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_last_event_id(p, "abcd"), EVENTSOURCE_ERR_TOO_LARGE);
  ck_assert_uint_eq(strlen(eventsource_parser_last_event_id(p, NULL)),
                    EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID); /* unchanged */
  ck_assert_int_eq(eventsource_parser_set_last_event_id(p, "abc"), EVENTSOURCE_OK);
  /* a longer id: is not adopted, the event goes on with the previous ID */
  FEED(p, "id: 1234\ndata: a\n\nid: 12\ndata: b\n\n");
  ck_assert_str_eq(log_str(&r), "error TOO_LARGE id:\n"
                                "event message|a|abc\n"
                                "event message|b|12\n");
  done(p, &r);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Stopping and re-entrant calls                                            */
/* ------------------------------------------------------------------------ */

/* Each kind of callback can stop the feed: CALLBACK, the rest of the chunk
 * is not parsed, the parser refuses to go on (STATE) until a reset. */
START_TEST(test_stop_from_callback) {
  /* the call numbered _i + 1 stops: comment, retry, event, error */
  static const char in[] = ": c\nretry: 9\ndata: a\n\ndata: toolong\n\ndata: after\n\n";
  static const char *const logs[] = {
      "comment  c\n",
      "comment  c\nretry 9\n",
      "comment  c\nretry 9\nevent message|a|\n",
      "comment  c\nretry 9\nevent message|a|\nerror TOO_LARGE line\n",
  };
  rec r;
  eventsource_parser_t *p = new_parser(&r);
  r.stop_at = _i + 1;
  ck_assert_int_eq(eventsource_parser_set_max_line(p, 8), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_feed(p, in, sizeof in - 1), EVENTSOURCE_ERR_CALLBACK);
  ck_assert_str_eq(log_str(&r), logs[_i]);
  ck_assert_int_eq(eventsource_parser_feed(p, "data: x\n\n", 9), EVENTSOURCE_ERR_STATE);
  ck_assert_int_eq(eventsource_parser_feed(p, NULL, 0), EVENTSOURCE_ERR_STATE);
  ck_assert_str_eq(log_str(&r), logs[_i]);
  /* reset: a new stream */
  ck_assert_int_eq(eventsource_parser_reset(p), EVENTSOURCE_OK);
  r.log.len = 0;
  FEED(p, "data: x\n\n");
  ck_assert_str_eq(log_str(&r), "event message|x|\n");
  /* and finish() clears the stop too */
  r.stop_at = r.calls + 1;
  ck_assert_int_eq(eventsource_parser_feed(p, "data: y\n\ndata: z\n\n", 18),
                   EVENTSOURCE_ERR_CALLBACK);
  ck_assert_int_eq(eventsource_parser_finish(p), EVENTSOURCE_OK);
  FEED(p, "data: w\n\n");
  ck_assert_str_eq(log_str(&r), "event message|x|\nevent message|y|\nevent message|w|\n");
  done(p, &r);
}
END_TEST

/* From its own callback, feed, finish and reset are refused with STATE and
 * free does nothing; the getters and setters work. */
START_TEST(test_reentrancy_refused) {
  rec r;
  eventsource_parser_t *p = new_parser(&r);
  r.reenter = 1;
  FEED(p, "id: 5\ndata: a\n\ndata: b\n\n");
  ck_assert_int_eq(r.refused, 8);
  /* the setters applied: the id set in the first callback is the second's */
  ck_assert_str_eq(log_str(&r), "event message|a|5\nevent message|b|from-callback\n");
  /* the parser is still whole and usable */
  r.reenter = 0;
  FEED(p, "data: c\n\n");
  ck_assert_int_eq(r.calls, 3);
  done(p, &r);
}
END_TEST

/* The error callback may run during reset and finish too (bytes held as a
 * possible BOM meet the line limit): re-entrant calls are refused there as
 * well. */
static int refuse_in_error(eventsource_parser_t *p, eventsource_error_t code, const char *msg,
                           void *ud) {
  int *n = ud;
  *n += eventsource_parser_reset(p) == EVENTSOURCE_ERR_STATE;
  *n += eventsource_parser_finish(p) == EVENTSOURCE_ERR_STATE;
  *n += eventsource_parser_feed(p, "x", 1) == EVENTSOURCE_ERR_STATE;
  *n += 10 * (code == EVENTSOURCE_ERR_TOO_LARGE);
  return 0;
}

START_TEST(test_reentrancy_in_finish) {
  eventsource_parser_t *p = NULL;
  int n = 0;
  ck_assert_int_eq(eventsource_parser_new(&p), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_error_callback(p, refuse_in_error, &n),
                   EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_max_line(p, 1), EVENTSOURCE_OK);
  FEED(p, "\xEF\xBB");
  ck_assert_int_eq(n, 0);
  ck_assert_int_eq(eventsource_parser_finish(p), EVENTSOURCE_OK);
  ck_assert_int_eq(n, 13);
  eventsource_parser_free(p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Arguments, allocation failures, the last event ID                        */
/* ------------------------------------------------------------------------ */

START_TEST(test_null_arguments) {
  const eventsource_error_t bad = EVENTSOURCE_ERR_INVALID_ARGUMENT;
  ck_assert_int_eq(eventsource_parser_new(NULL), bad);
  ck_assert_int_eq(eventsource_parser_feed(NULL, "x", 1), bad);
  ck_assert_int_eq(eventsource_parser_feed(NULL, NULL, 0), bad);
  ck_assert_int_eq(eventsource_parser_finish(NULL), bad);
  ck_assert_int_eq(eventsource_parser_reset(NULL), bad);
  ck_assert_int_eq(eventsource_parser_set_event_callback(NULL, on_event, NULL), bad);
  ck_assert_int_eq(eventsource_parser_set_retry_callback(NULL, on_retry, NULL), bad);
  ck_assert_int_eq(eventsource_parser_set_comment_callback(NULL, on_comment, NULL), bad);
  ck_assert_int_eq(eventsource_parser_set_error_callback(NULL, on_error, NULL), bad);
  ck_assert_int_eq(eventsource_parser_set_max_line(NULL, 1), bad);
  ck_assert_int_eq(eventsource_parser_set_max_event(NULL, 1), bad);
  ck_assert_int_eq(eventsource_parser_set_max_last_event_id(NULL, 1), bad);
  ck_assert_int_eq(eventsource_parser_set_last_event_id(NULL, "1"), bad);
  size_t len = 99;
  ck_assert_str_eq(eventsource_parser_last_event_id(NULL, &len), "");
  ck_assert_uint_eq(len, 0);
  eventsource_parser_free(NULL);

  rec r;
  eventsource_parser_t *p = new_parser(&r);
  ck_assert_int_eq(eventsource_parser_feed(p, NULL, 1), bad);
  ck_assert_int_eq(eventsource_parser_feed(p, NULL, 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_feed(p, "", 0), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_last_event_id(p, "a\nb"), bad);
  ck_assert_int_eq(eventsource_parser_set_last_event_id(p, "a\rb"), bad);
  ck_assert_str_eq(eventsource_parser_last_event_id(p, NULL), "");
  ck_assert_str_eq(log_str(&r), "");
  done(p, &r);
}
END_TEST

START_TEST(test_last_event_id) {
  rec r;
  eventsource_parser_t *p = new_parser(&r);
  size_t len = 99;
  ck_assert_str_eq(eventsource_parser_last_event_id(p, &len), "");
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(eventsource_parser_set_last_event_id(p, "resume-41"), EVENTSOURCE_OK);
  ck_assert_str_eq(eventsource_parser_last_event_id(p, &len), "resume-41");
  ck_assert_uint_eq(len, 9);
  FEED(p, "data: a\n\nid: 42\ndata: b\n\n");
  ck_assert_str_eq(eventsource_parser_last_event_id(p, &len), "42");
  ck_assert_uint_eq(len, 2);
  /* an id: is adopted at the blank line, even without data */
  FEED(p, "id: 43\n");
  ck_assert_str_eq(eventsource_parser_last_event_id(p, NULL), "42");
  FEED(p, "\n");
  ck_assert_str_eq(eventsource_parser_last_event_id(p, NULL), "43");
  /* an uncommitted id: is dropped by finish, the committed one kept */
  FEED(p, "id: 44\ndata: c\n");
  ck_assert_int_eq(eventsource_parser_finish(p), EVENTSOURCE_OK);
  ck_assert_str_eq(eventsource_parser_last_event_id(p, NULL), "43");
  /* invalid UTF-8 is decoded; NULL and "" clear it */
  ck_assert_int_eq(eventsource_parser_set_last_event_id(p, "a\xff"), EVENTSOURCE_OK);
  ck_assert_str_eq(eventsource_parser_last_event_id(p, NULL), "a\xef\xbf\xbd");
  ck_assert_int_eq(eventsource_parser_set_last_event_id(p, NULL), EVENTSOURCE_OK);
  ck_assert_str_eq(eventsource_parser_last_event_id(p, &len), "");
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(eventsource_parser_set_last_event_id(p, "x"), EVENTSOURCE_OK);
  ck_assert_int_eq(eventsource_parser_set_last_event_id(p, ""), EVENTSOURCE_OK);
  ck_assert_str_eq(eventsource_parser_last_event_id(p, NULL), "");
  ck_assert_str_eq(log_str(&r), "event message|a|resume-41\nevent message|b|42\n");
  done(p, &r);
}
END_TEST

/* Fails the n-th allocation for n = 0, 1, ... until a whole run succeeds
 * with no failure injected: every failure is NOMEM (a failed constructor
 * leaves *out untouched), the parser stays usable after a reset, and ASan
 * finds no leak. */
START_TEST(test_allocation_failure) {
  static const char in[] = "id: 1\nevent: t\ndata: some data\n\n: comment\nid: \xff\ndata: x\xff\n\n";
  int clean = 0;
  for (long n = 0; n < 1000 && !clean; n++) {
    rec r;
    memset(&r, 0, sizeof r);
    eventsource_parser_t *p = (eventsource_parser_t *)&r; /* a marker: must stay */
    unsigned long before = es_alloc_failures();
    es_alloc_fail_after(n);
    eventsource_error_t rc = eventsource_parser_new(&p);
    if (rc != EVENTSOURCE_OK) {
      es_alloc_fail_reset();
      ck_assert_int_eq(rc, EVENTSOURCE_ERR_NOMEM);
      ck_assert_ptr_eq(p, (eventsource_parser_t *)&r);
      continue;
    }
    r.self = p;
    eventsource_parser_set_event_callback(p, on_event, &r);
    eventsource_parser_set_comment_callback(p, on_comment, &r);
    rc = eventsource_parser_set_last_event_id(p, "start\xfe");
    ck_assert(rc == EVENTSOURCE_OK || rc == EVENTSOURCE_ERR_NOMEM);
    if (rc == EVENTSOURCE_OK)
      ck_assert_str_eq(eventsource_parser_last_event_id(p, NULL), "start\xef\xbf\xbd");
    else
      ck_assert_str_eq(eventsource_parser_last_event_id(p, NULL), "");
    rc = eventsource_parser_feed(p, in, sizeof in - 1);
    ck_assert(rc == EVENTSOURCE_OK || rc == EVENTSOURCE_ERR_NOMEM);
    if (rc == EVENTSOURCE_ERR_NOMEM)
      ck_assert_int_eq(eventsource_parser_feed(p, in, 1), EVENTSOURCE_ERR_STATE);
    clean = es_alloc_failures() == before;
    es_alloc_fail_reset();
    if (clean)
      ck_assert_str_eq(log_str(&r), "event t|some data|1\n"
                                    "comment  comment\n"
                                    "event message|x\xef\xbf\xbd|\xef\xbf\xbd\n");
    /* with memory again, a reset parser parses as a new one would */
    ck_assert_int_eq(eventsource_parser_reset(p), EVENTSOURCE_OK);
    r.log.len = 0;
    FEED(p, "id: 2\ndata: again\n\n");
    ck_assert_str_eq(log_str(&r), "event message|again|2\n");
    done(p, &r);
  }
  ck_assert_msg(clean, "no run without a failed allocation");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The parser's vectors, through the public API                             */
/* ------------------------------------------------------------------------ */

/*
 * The files test/vectors/NAME.vec (their format: test/test_parser.c) run through
 * eventsource_parser_*, whole, byte by byte (with an empty feed before each
 * byte) and split in two at every offset, must give the transcripts the
 * internal parser is held to: the public parser is the client's parser.
 */

enum vop { V_IN, V_FINISH, V_RESET, V_SETID };

typedef struct vstep {
  enum vop k;
  char *b; /* V_IN: bytes; V_SETID: a NUL-terminated id */
  size_t n;
} vstep;

typedef struct vec {
  size_t max_line, max_event;
  char *init_id;
  long stop_after;
  vstep *steps;
  size_t nsteps, total;
  ts_sb_t want; /* canonical records, one per line */
} vec;

static void vec_free(vec *v) {
  for (size_t i = 0; i < v->nsteps; i++)
    free(v->steps[i].b);
  free(v->steps);
  free(v->init_id);
  ts_sb_free(&v->want);
}

static const char *ws(const char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  return s;
}

/* A quoted vector string as a C string (NULL if it holds NUL, CR or LF,
 * which eventsource_parser_set_last_event_id() cannot take). */
static char *vec_cstr(const ts_sb_t *a) {
  if (a->len && (memchr(a->p, 0, a->len) || memchr(a->p, '\r', a->len) ||
                 memchr(a->p, '\n', a->len)))
    return NULL;
  char *c = ts_xmalloc(a->len + 1);
  if (a->len)
    memcpy(c, a->p, a->len);
  c[a->len] = '\0';
  return c;
}

/* "out RECORD" in the canonical spelling the runner produces. 0 or -1. */
static int vec_canon(vec *v, const char *s) {
  ts_sb_t a = {0};
  int bad = 0, nq = 0;
  s = ws(s);
  size_t word = strcspn(s, " \t\r\n");
  ts_sb_put(&v->want, s, word);
  if (strncmp(s, "event", word) == 0 && word == 5)
    nq = 3;
  else if ((word == 7 && strncmp(s, "comment", 7) == 0) || (word == 6 && strncmp(s, "lastid", 6) == 0))
    nq = 1;
  s += word;
  for (int i = 0; i < nq && !bad; i++) {
    a.len = 0;
    bad = ts_unesc(&s, &a) != 0;
    ts_sb_putc(&v->want, ' ');
    ts_esc(&v->want, a.p, a.len);
  }
  if (!nq) { /* retry N, error NAME, stopped */
    s = ws(s);
    size_t n = strcspn(s, " \t\r\n");
    if (n) {
      ts_sb_putc(&v->want, ' ');
      ts_sb_put(&v->want, s, n);
    }
    s += n;
  }
  ts_sb_putc(&v->want, '\n');
  free(a.p);
  s = ws(s);
  return bad || (*s && *s != '\n' && *s != '\r') ? -1 : 0;
}

static void vec_step(vec *v, enum vop k, const char *b, size_t n) {
  if (k == V_IN && v->nsteps && v->steps[v->nsteps - 1].k == V_IN) {
    vstep *st = &v->steps[v->nsteps - 1];
    st->b = ts_xrealloc(st->b, st->n + n);
    memcpy(st->b + st->n, b, n);
    st->n += n;
  } else {
    v->steps = ts_xrealloc(v->steps, (v->nsteps + 1) * sizeof *v->steps);
    vstep *st = &v->steps[v->nsteps++];
    st->k = k;
    st->b = ts_xmalloc(n ? n : 1);
    if (n)
      memcpy(st->b, b, n);
    st->n = n;
  }
  if (k == V_IN)
    v->total += n;
}

/* Loads one vector; 0, 1 (uses what the public API cannot express: skip)
 * or -1 (syntax error). */
static int vec_load(vec *v, const char *path) {
  memset(v, 0, sizeof *v);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  static char line[65536];
  ts_sb_t a = {0};
  int rc = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    const char *s = ws(line);
    if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0')
      continue;
    a.len = 0;
    if (strncmp(s, "in ", 3) == 0) {
      s += 3;
      do {
        if (ts_unesc(&s, &a))
          rc = -1;
        s = ws(s);
      } while (rc == 0 && *s == '"');
      if (rc == 0 && a.len)
        vec_step(v, V_IN, a.p, a.len);
    } else if (strncmp(s, "finish", 6) == 0) {
      vec_step(v, V_FINISH, "", 0);
    } else if (strncmp(s, "reset", 5) == 0) {
      vec_step(v, V_RESET, "", 0);
    } else if (strncmp(s, "setid ", 6) == 0) {
      s += 6;
      char *c = ts_unesc(&s, &a) ? NULL : vec_cstr(&a);
      if (!c) {
        rc = 1;
      } else {
        vec_step(v, V_SETID, c, strlen(c) + 1);
        free(c);
      }
    } else if (strncmp(s, "out ", 4) == 0) {
      rc = vec_canon(v, s + 4);
    } else if (strncmp(s, "opt ", 4) == 0) {
      s = ws(s + 4);
      if (strncmp(s, "max-line ", 9) == 0)
        v->max_line = strtoul(s + 9, NULL, 10);
      else if (strncmp(s, "max-event ", 10) == 0)
        v->max_event = strtoul(s + 10, NULL, 10);
      else if (strncmp(s, "stop-after ", 11) == 0)
        v->stop_after = strtol(s + 11, NULL, 10);
      else if (strncmp(s, "last-event-id ", 14) == 0) {
        s += 14;
        free(v->init_id);
        v->init_id = ts_unesc(&s, &a) ? NULL : vec_cstr(&a);
        if (!v->init_id)
          rc = 1;
      } else
        rc = -1;
    } else {
      rc = -1;
    }
  }
  fclose(f);
  free(a.p);
  return rc;
}

typedef struct vrun {
  ts_sb_t got;
  long calls, stop_after;
  int quiet; /* the final, unrecorded finish */
} vrun;

static int vr_count(vrun *r) {
  r->calls++;
  return r->stop_after > 0 && r->calls == r->stop_after;
}

static int vr_event(eventsource_parser_t *p, const char *type, size_t tl, const char *data,
                    size_t dl, const char *id, size_t il, void *ud) {
  vrun *r = ud;
  if (r->quiet)
    return 0;
  ts_sb_puts(&r->got, "event ");
  ts_esc(&r->got, type, tl);
  ts_sb_putc(&r->got, ' ');
  ts_esc(&r->got, data, dl);
  ts_sb_putc(&r->got, ' ');
  ts_esc(&r->got, id, il);
  ts_sb_putc(&r->got, '\n');
  return vr_count(r);
}

static int vr_retry(eventsource_parser_t *p, uint64_t ms, void *ud) {
  vrun *r = ud;
  if (r->quiet)
    return 0;
  ts_sb_printf(&r->got, "retry %llu\n", (unsigned long long)ms);
  return vr_count(r);
}

static int vr_comment(eventsource_parser_t *p, const char *text, size_t len, void *ud) {
  vrun *r = ud;
  if (r->quiet)
    return 0;
  ts_sb_puts(&r->got, "comment ");
  ts_esc(&r->got, text, len);
  ts_sb_putc(&r->got, '\n');
  return vr_count(r);
}

static int vr_error(eventsource_parser_t *p, eventsource_error_t code, const char *msg,
                    void *ud) {
  vrun *r = ud;
  if (r->quiet)
    return 0;
  ts_sb_printf(&r->got, "error %s\n", eventsource_error_name(code));
  return vr_count(r);
}

static void vr_lastid(vrun *r, eventsource_parser_t *p) {
  size_t n;
  const char *id = eventsource_parser_last_event_id(p, &n);
  ts_sb_puts(&r->got, "lastid ");
  ts_esc(&r->got, id, n);
  ts_sb_putc(&r->got, '\n');
}

/* Feeds from an exactly sized copy; records a stop. 1 when stopped. */
static int vr_feed(vrun *r, eventsource_parser_t *p, const char *b, size_t n) {
  char *c = n ? ts_xmalloc(n) : NULL;
  if (n)
    memcpy(c, b, n);
  eventsource_error_t rc = eventsource_parser_feed(p, c, n);
  free(c);
  if (rc == EVENTSOURCE_ERR_CALLBACK) {
    ts_sb_puts(&r->got, "stopped\n");
    return 1;
  }
  ck_assert_int_eq(rc, EVENTSOURCE_OK);
  return 0;
}

/* mode 0: one feed per segment; 1: byte by byte, an empty feed before each;
 * 2: split in two at global offset cut. The transcript, malloc'd. */
static char *vec_run(const vec *v, int mode, size_t cut) {
  vrun r = {.stop_after = v->stop_after};
  eventsource_parser_t *p = NULL;
  ck_assert_int_eq(eventsource_parser_new(&p), EVENTSOURCE_OK);
  eventsource_parser_set_event_callback(p, vr_event, &r);
  eventsource_parser_set_retry_callback(p, vr_retry, &r);
  eventsource_parser_set_comment_callback(p, vr_comment, &r);
  eventsource_parser_set_error_callback(p, vr_error, &r);
  eventsource_parser_set_max_line(p, v->max_line);
  eventsource_parser_set_max_event(p, v->max_event);
  eventsource_parser_set_max_last_event_id(p, 0); /* the vectors have none */
  if (v->init_id)
    ck_assert_int_eq(eventsource_parser_set_last_event_id(p, v->init_id), EVENTSOURCE_OK);
  size_t g = 0;
  int dead = 0;
  for (size_t i = 0; i < v->nsteps; i++) {
    const vstep *st = &v->steps[i];
    switch (st->k) {
    case V_IN:
      if (dead) {
        /* stopped: the parser refuses more until finish/reset */
        ck_assert_int_eq(eventsource_parser_feed(p, st->b, st->n), EVENTSOURCE_ERR_STATE);
      } else if (mode == 1) {
        for (size_t j = 0; j < st->n && !dead; j++) {
          ck_assert_int_eq(eventsource_parser_feed(p, NULL, 0), EVENTSOURCE_OK);
          dead = vr_feed(&r, p, st->b + j, 1);
        }
      } else if (mode == 2 && cut > g && cut < g + st->n) {
        dead = vr_feed(&r, p, st->b, cut - g);
        if (!dead)
          dead = vr_feed(&r, p, st->b + (cut - g), st->n - (cut - g));
      } else {
        dead = vr_feed(&r, p, st->b, st->n);
      }
      g += st->n;
      break;
    case V_FINISH:
    case V_RESET:
      ck_assert_int_eq(st->k == V_FINISH ? eventsource_parser_finish(p)
                                         : eventsource_parser_reset(p),
                       EVENTSOURCE_OK);
      dead = 0;
      vr_lastid(&r, p);
      break;
    case V_SETID:
      ck_assert_int_eq(eventsource_parser_set_last_event_id(p, st->b), EVENTSOURCE_OK);
      break;
    }
  }
  r.quiet = 1;
  ck_assert_int_eq(eventsource_parser_finish(p), EVENTSOURCE_OK);
  eventsource_parser_free(p);
  return ts_sb_take(&r.got);
}

START_TEST(test_vectors) {
  const char *src = getenv("ES_SRC_DIR");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/test/vectors", src && *src ? src : ".");
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "ls '%s' | grep '\\.vec$'", dir);
  FILE *ls = popen(cmd, "r");
  ck_assert_ptr_nonnull(ls);
  char name[256];
  int ran = 0, skipped = 0;
  while (fgets(name, sizeof name, ls)) {
    name[strcspn(name, "\n")] = '\0';
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    vec v;
    int rc = vec_load(&v, path);
    ck_assert_msg(rc >= 0, "%s: syntax error", name);
    if (rc == 1) {
      skipped++;
      vec_free(&v);
      continue;
    }
    const char *want = v.want.p ? v.want.p : "";
    for (int mode = 0; mode < 2; mode++) {
      char *got = vec_run(&v, mode, 0);
      ck_assert_msg(strcmp(got, want) == 0, "%s, %s:\nexpected:\n%sgot:\n%s", name,
                    mode ? "byte by byte" : "whole", want, got);
      free(got);
    }
    for (size_t cut = 1; cut < v.total && v.total <= 4096; cut++) {
      char *got = vec_run(&v, 2, cut);
      ck_assert_msg(strcmp(got, want) == 0, "%s, split at %zu:\nexpected:\n%sgot:\n%s", name,
                    cut, want, got);
      free(got);
    }
    vec_free(&v);
    ran++;
  }
  pclose(ls);
  fprintf(stderr, "test_parser_api: %d vectors run through the public API, %d skipped\n", ran,
          skipped);
  ck_assert_int_ge(ran, 100);
  ck_assert_int_eq(skipped, 0);
}
END_TEST

static Suite *parser_api_suite(void) {
  Suite *s = suite_create("parser_api");
  TCase *tc = tcase_create("callbacks");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_every_callback);
  tcase_add_test(tc, test_callbacks_optional);
  tcase_add_test(tc, test_finish_discards_partial);
  tcase_add_test(tc, test_split_every_offset);
  tcase_add_test(tc, test_vectors);
  suite_add_tcase(s, tc);

  tc = tcase_create("limits");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_max_line);
  tcase_add_test(tc, test_max_event);
  tcase_add_test(tc, test_max_last_event_id);
  suite_add_tcase(s, tc);

  tc = tcase_create("control");
  tcase_set_timeout(tc, 30);
  tcase_add_loop_test(tc, test_stop_from_callback, 0, 4);
  tcase_add_test(tc, test_reentrancy_refused);
  tcase_add_test(tc, test_reentrancy_in_finish);
  tcase_add_test(tc, test_null_arguments);
  tcase_add_test(tc, test_last_event_id);
  tcase_add_test(tc, test_allocation_failure);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(parser_api_suite(), CK_NORMAL); }
