/*
 * parser_int.h - the parser's state, shared by parser.c (the stream) and
 * parser_id.c (the last event ID API) (internal).
 */
#ifndef EVENTSOURCE_PARSER_INT_H
#define EVENTSOURCE_PARSER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "parser.h"
#include "utf8.h"

/* For the small helpers of the per-line path that GCC would otherwise keep
 * out of line (measured: 1% more instructions on small events). */
#if defined(__GNUC__)
#define ES_HOT_INLINE inline __attribute__((always_inline))
#else
#define ES_HOT_INLINE inline
#endif

/* Internal result besides ES_PARSER_OK/STOPPED/NOMEM. */
#define R_TOO_LARGE 3

enum line_state {
  LS_START,  /* nothing of the line seen yet */
  LS_NAME,   /* in the field name */
  LS_VSTART, /* just after the ':' (one space may follow) */
  LS_VALUE,  /* in the value (or the comment text) */
  LS_IGNORE, /* rest of the line ignored (unknown field, bad retry/id) */
  LS_SKIP    /* resynchronising after a limit: rest of the line ignored */
};

enum field { F_NONE, F_DATA, F_EVENT, F_ID, F_RETRY, F_COMMENT };

struct es_parser {
  es_parser_callbacks cb;
  void *ctx;

  size_t max_line, max_event;         /* limits in force */
  size_t next_max_line, next_max_event; /* set by es_parser_set_limits */
  size_t fast_max; /* next_max_line, SIZE_MAX for none: the fast path's test */
  size_t max_id; /* longest id: value adopted, decoded bytes (0: none) */

  /* stream state */
  unsigned char bom;     /* BOM bytes matched so far; 3: no longer looking */
  unsigned char skip_lf; /* the previous byte was a CR that ended a line */
  unsigned char skipping; /* after a limit error: until a blank line */

  /* line state */
  unsigned char ls;    /* enum line_state */
  unsigned char field; /* enum field */
  unsigned char name_len; /* saturates at sizeof name */
  char name[6]; /* the first bytes of the name; 6: longer than any known */
  size_t line_len; /* raw bytes of the current line so far */

  /* field state */
  es_buf *dst;        /* where decoded value bytes go */
  size_t dst_limit;   /* dst->len may not exceed this (SIZE_MAX: none) */
  uint64_t retry;     /* retry: value so far (saturated) */
  size_t retry_digits;

  es_u8 u8; /* the WHATWG UTF-8 decoder's state */
  unsigned char ascii; /* the bytes line_bytes() is given are all ASCII */

  /* buffers */
  es_buf data;    /* data buffer */
  es_buf type;    /* event type buffer */
  es_buf scratch; /* value of the current id: line, or comment text */
  es_buf idstr;   /* last event ID string (committed) */
  es_buf idbuf;   /* last event ID buffer when id_dirty */
  unsigned char id_dirty;
  const char *lent_id; /* the id passed to the running on_event, or NULL */
};

/* Decodes s[0..n) whole (U+FFFD for invalid sequences, a partial one at
 * the end included) into out, without disturbing the line in progress.
 * 0, or -1 when out of memory. */
int es_parser_decode_whole(es_parser *p, es_buf *out, const char *s, size_t n);

#endif
