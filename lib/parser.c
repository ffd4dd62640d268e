/*
 * parser.c - the incremental text/event-stream parser (WHATWG HTML 9.2.5,
 * 9.2.6). See parser.h for the interface.
 *
 * Design
 *
 * Bytes are never decoded into a line buffer first. Every byte goes through
 * three steps exactly once:
 *
 *  1. Line ends. CR and LF are ASCII and can never be part of a multi-byte
 *     UTF-8 sequence, and the WHATWG decoder turns a sequence interrupted by
 *     one into U+FFFD followed by the CR/LF itself, so lines are found on the
 *     raw bytes: scan.h finds the next CR or LF 16 bytes at a time and tells
 *     on the way whether a byte >= 0x80 came before it.
 *  2. Whole ASCII lines of the common fields (data:, id:, event:) take
 *     fast_line() (parser_fast.h): the value is copied once, nothing is
 *     decoded; a blank line dispatches at once, and the one right after a
 *     data: line is seen without a scan.
 *  3. Everything else goes through the general path: the name is matched
 *     on the raw bytes (at most 6 kept: longer is unknown, and the rest of
 *     the line is skipped), then the value is decoded straight into its
 *     destination (data, type or scratch buffer; retry: digit by digit).
 *     Valid UTF-8 is copied a run at a time (utf8.h); only invalid
 *     sequences and characters split across chunks go through the
 *     byte-wise WHATWG decoder, whose state survives chunk ends. At a line
 *     end a pending partial sequence becomes U+FFFD.
 *
 * So a line lying whole in a chunk is copied once, into the buffer where the
 * spec keeps it (the callbacks need NUL-terminated strings, so this one copy
 * is needed anyway), and nothing already seen is scanned again. Buffers keep
 * their capacity: a warm parser does not allocate per event.
 *
 * Last event ID: `idstr` is the committed string, `idbuf` the buffer when it
 * differs (id_dirty); an id: line is decoded into `scratch` and swapped into
 * `idbuf` at its end (a U+0000 in it leaves everything as it was). Commit
 * and restore swap pointers or clear the flag, so neither can fail.
 * es_parser_set_last_event_id() writes into the spare buffer and swaps it in,
 * never into the memory of the id lent to a running on_event.
 *
 * Limits: see parser.h.
 *
 * Callbacks run with the parser in a consistent state (the triggering line
 * already consumed), so returning non-zero can stop it anywhere.
 */
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "parser_fast.h"
#include "parser_int.h"
#include "scan.h"

static const unsigned char BOM[3] = {0xEF, 0xBB, 0xBF};
static const unsigned char FFFD[3] = {0xEF, 0xBF, 0xBD};

/* Appends n bytes to the current destination. */
static inline int sink(es_parser *p, const void *b, size_t n) {
  es_buf *d = p->dst;
  if (!d)
    return ES_PARSER_OK;
  if (d->len > p->dst_limit || n > p->dst_limit - d->len)
    return R_TOO_LARGE;
  if (es_buf_reserve(d, n, p->dst_limit == SIZE_MAX ? 0 : p->dst_limit + 1))
    return ES_PARSER_NOMEM;
  memcpy(d->p + d->len, b, n);
  d->len += n;
  return ES_PARSER_OK;
}

static void u8_reset(es_parser *p) { p->u8.need = 0; }

/* Feeds bytes of a pending sequence. Returns the bytes consumed, *r the
 * result of any output; on an error the offending byte is not consumed and
 * the decoder is idle again, as the WHATWG decoder "prepends" it. */
static size_t u8_continue(es_parser *p, const unsigned char *s, size_t n,
                          int *r) {
  size_t i = 0;
  *r = ES_PARSER_OK;
  while (i < n && p->u8.need) {
    unsigned c = s[i];
    if (c < p->u8.lo || c > p->u8.hi) {
      p->u8.need = 0;
      *r = sink(p, FFFD, 3);
      return i;
    }
    p->u8.lo = 0x80;
    p->u8.hi = 0xBF;
    p->u8.buf[p->u8.len++] = (unsigned char)c;
    i++;
    if (--p->u8.need == 0)
      *r = sink(p, p->u8.buf, p->u8.len);
  }
  return i;
}

/* Decodes s[0..n) (no CR or LF in it) into the current destination. */
static int decode(es_parser *p, const unsigned char *s, size_t n) {
  size_t i = 0;
  int r;
  if (p->u8.need) {
    i = u8_continue(p, s, n, &r);
    if (r)
      return r;
  }
  while (i < n) {
    size_t v = es_utf8_valid_prefix(s + i, n - i);
    if (v) {
      if ((r = sink(p, s + i, v)))
        return r;
      i += v;
      if (i == n)
        break;
    }
    /* s[i] starts an invalid or a truncated sequence */
    if (!es_u8_start(&p->u8, s[i])) {
      if ((r = sink(p, FFFD, 3)))
        return r;
      i++;
      continue;
    }
    i++;
    i += u8_continue(p, s + i, n - i, &r);
    if (r)
      return r;
  }
  return ES_PARSER_OK;
}

/* End of line: a pending partial sequence is one U+FFFD. */
static int decode_flush(es_parser *p) {
  if (!p->u8.need)
    return ES_PARSER_OK;
  p->u8.need = 0;
  return sink(p, FFFD, 3);
}

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

static int stopped(int rc) { return rc ? ES_PARSER_STOPPED : ES_PARSER_OK; }

/* Drops the event being built after a limit was hit and starts skipping to
 * the end of the next blank line. The caller sets the line state. */
static int too_large(es_parser *p, const char *what) {
  p->data.len = 0;
  p->type.len = 0;
  p->scratch.len = 0;
  p->id_dirty = 0;
  p->skipping = 1;
  p->dst = NULL;
  u8_reset(p);
  if (!p->cb.on_error)
    return ES_PARSER_OK;
  return stopped(p->cb.on_error(p->ctx, EVENTSOURCE_ERR_TOO_LARGE, what));
}

static const char MSG_LINE[] = "line longer than the max_line limit";
static const char MSG_EVENT[] = "event data larger than the max_event limit";
const char es_parser_msg_id[] = "id: field longer than the max_last_event_id limit "
                             "(not adopted: the last event ID is unchanged)";

/* A blank line: 9.2.6 "dispatch the event". */
static int dispatch(es_parser *p) {
  if (p->id_dirty) {
    es_buf_swap(&p->idstr, &p->idbuf);
    p->id_dirty = 0;
  }
  p->max_event = p->next_max_event;
  if (p->data.len == 0) {
    p->type.len = 0;
    return ES_PARSER_OK;
  }
  /* the data buffer always ends with the LF of its last data: line */
  p->data.len--;
  p->data.p[p->data.len] = '\0';
  const char *type = "message";
  size_t type_len = 7;
  if (p->type.len) {
    type = es_buf_str(&p->type);
    type_len = p->type.len;
  }
  size_t data_len = p->data.len;
  p->data.len = 0;
  p->type.len = 0;
  if (!p->cb.on_event)
    return ES_PARSER_OK;
  /* idstr is kept NUL-terminated by every writer (parser_id.c) */
  const char *id = p->idstr.p ? p->idstr.p : "";
  p->lent_id = p->idstr.p;
  int rc = p->cb.on_event(p->ctx, type, type_len, p->data.p, data_len, id, p->idstr.len);
  p->lent_id = NULL;
  return stopped(rc);
}

/* The field name n[0..len) is complete (':' seen, or the line ended). Sets
 * p->field and the destination; returns LS_VSTART or LS_IGNORE in *next. */
static int field_begin(es_parser *p, const void *name, size_t len,
                       unsigned char *next) {
  const char *n = name;
  p->dst = NULL;
  p->dst_limit = SIZE_MAX;
  *next = LS_VSTART;
  if (len == 4 && memcmp(n, "data", 4) == 0) {
    p->field = F_DATA;
    if (p->max_event) {
      if (p->data.len > p->max_event)
        return R_TOO_LARGE;
      p->dst_limit = p->max_event;
    }
    p->dst = &p->data;
  } else if (len == 5 && memcmp(n, "event", 5) == 0) {
    p->field = F_EVENT;
    p->type.len = 0;
    p->dst = &p->type;
  } else if (len == 2 && memcmp(n, "id", 2) == 0) {
    p->field = F_ID;
    p->scratch.len = 0;
    p->dst = &p->scratch;
  } else if (len == 5 && memcmp(n, "retry", 5) == 0) {
    p->field = F_RETRY;
    p->retry = 0;
    p->retry_digits = 0;
  } else {
    p->field = F_NONE;
    *next = LS_IGNORE;
  }
  return ES_PARSER_OK;
}

/* Value bytes (no CR/LF) of the current field. */
static int field_bytes(es_parser *p, const unsigned char *s, size_t n) {
  switch (p->field) {
  case F_ID:
    if (memchr(s, 0, n)) { /* U+0000: the whole field is ignored */
      p->ls = LS_IGNORE;
      p->dst = NULL;
      u8_reset(p);
      return ES_PARSER_OK;
    }
    return decode(p, s, n);
  case F_RETRY:
    for (size_t i = 0; i < n; i++) {
      unsigned d = (unsigned)s[i] - '0';
      if (d > 9) {
        p->ls = LS_IGNORE;
        return ES_PARSER_OK;
      }
      if (p->retry > (UINT64_MAX - d) / 10)
        p->retry = UINT64_MAX;
      else
        p->retry = p->retry * 10 + d;
    }
    p->retry_digits += n;
    return ES_PARSER_OK;
  default: /* data, event, comment */
    /* bytes known to be ASCII need no decoding between characters */
    return p->ascii && !p->u8.need ? sink(p, s, n) : decode(p, s, n);
  }
}

/* Bytes of the current line, without CR or LF, within the line limit. */
static int line_chunk(es_parser *p, const unsigned char *s, size_t n) {
  while (n) {
    switch (p->ls) {
    case LS_START:
      if (*s == ':') {
        p->field = F_COMMENT;
        p->scratch.len = 0;
        p->dst = &p->scratch;
        p->dst_limit = SIZE_MAX;
        p->ls = LS_VALUE;
        s++;
        n--;
        break;
      }
      p->name_len = 0;
      p->ls = LS_NAME;
      /* fall through */
    case LS_NAME: {
      /* the known names have at most 5 bytes: a line whose first 6 bytes
       * hold no ':' is an unknown field (or a name without value), and the
       * rest of it need not be looked at */
      size_t room = sizeof p->name - p->name_len;
      size_t lim = n < room ? n : room, k = 0;
      while (k < lim && s[k] != ':')
        k++;
      const void *name = s;
      size_t name_len = k;
      if (k == lim || p->name_len) {
        /* the name spans chunks, or has not ended yet: keep it */
        memcpy(p->name + p->name_len, s, k);
        p->name_len = (unsigned char)(p->name_len + k);
        if (k == lim) {
          if (p->name_len == sizeof p->name)
            p->ls = LS_IGNORE;
          return ES_PARSER_OK;
        }
        name = p->name;
        name_len = p->name_len;
      }
      s += k + 1;
      n -= k + 1;
      unsigned char next;
      int r = field_begin(p, name, name_len, &next);
      if (r)
        return r;
      p->ls = next;
      break;
    }
    case LS_VSTART:
      if (*s == ' ') {
        s++;
        n--;
      }
      p->ls = LS_VALUE;
      break;
    case LS_VALUE:
      return field_bytes(p, s, n);
    default: /* LS_IGNORE, LS_SKIP */
      return ES_PARSER_OK;
    }
  }
  return ES_PARSER_OK;
}

/* Bytes of the current line (no CR or LF). */
static int line_bytes(es_parser *p, const unsigned char *s, size_t n) {
  if (p->ls == LS_SKIP)
    return ES_PARSER_OK;
  if (p->ls == LS_START) {
    if (p->skipping) {
      p->ls = LS_SKIP;
      return ES_PARSER_OK;
    }
    p->max_line = p->next_max_line;
  }
  size_t take = n;
  int over = 0;
  if (p->max_line && n > p->max_line - p->line_len) {
    take = p->max_line - p->line_len;
    over = 1;
  }
  p->line_len += take;
  int r = line_chunk(p, s, take);
  if (r == R_TOO_LARGE) {
    p->ls = LS_SKIP;
    return too_large(p, MSG_EVENT);
  }
  if (r)
    return r;
  if (over) {
    p->ls = LS_SKIP;
    return too_large(p, MSG_LINE);
  }
  return ES_PARSER_OK;
}

/* The id: line in scratch becomes the buffer of the last event ID (adopted
 * at the next dispatch). */
static ES_HOT_INLINE void commit_id(es_parser *p) {
  es_buf_str(&p->scratch); /* idstr must stay NUL-terminated once swapped in */
  es_buf_swap(&p->scratch, &p->idbuf);
  p->scratch.len = 0;
  p->id_dirty = 1;
}

/* A CR or LF ended the current line. */
static int line_end(es_parser *p) {
  unsigned char ls = p->ls;
  int r = ES_PARSER_OK;
  p->ls = LS_START;
  p->line_len = 0;

  if (ls == LS_START) { /* blank line */
    if (p->skipping) {
      p->skipping = 0;
      p->max_event = p->next_max_event;
      return ES_PARSER_OK;
    }
    return dispatch(p);
  }
  if (ls == LS_NAME) { /* no colon: the whole line is the name */
    unsigned char next;
    r = field_begin(p, p->name, p->name_len, &next);
    if (r == R_TOO_LARGE)
      return too_large(p, MSG_EVENT);
    if (next == LS_IGNORE)
      return ES_PARSER_OK;
  } else if (ls == LS_IGNORE || ls == LS_SKIP) {
    u8_reset(p);
    return ES_PARSER_OK;
  }
  /* LS_NAME with a known field, LS_VSTART or LS_VALUE */
  r = decode_flush(p);
  if (r == R_TOO_LARGE)
    return too_large(p, MSG_EVENT);
  if (r)
    return r;
  p->dst = NULL;
  switch (p->field) {
  case F_DATA:
    if (es_buf_reserve(&p->data, 1, p->max_event ? p->max_event + 1 : 0))
      return ES_PARSER_NOMEM;
    p->data.p[p->data.len++] = '\n';
    return ES_PARSER_OK;
  case F_ID:
    if (p->max_id && p->scratch.len > p->max_id) {
      /* Not adopted, never truncated; the event itself is kept. */
      p->scratch.len = 0;
      return p->cb.on_error
                 ? stopped(p->cb.on_error(p->ctx, EVENTSOURCE_ERR_TOO_LARGE, es_parser_msg_id))
                 : ES_PARSER_OK;
    }
    commit_id(p);
    return ES_PARSER_OK;
  case F_RETRY:
    if (!p->retry_digits || !p->cb.on_retry)
      return ES_PARSER_OK;
    return stopped(p->cb.on_retry(p->ctx, p->retry));
  case F_COMMENT: {
    size_t len = p->scratch.len;
    p->scratch.len = 0;
    if (!p->cb.on_comment)
      return ES_PARSER_OK;
    const char *t = "";
    if (p->scratch.p) {
      p->scratch.p[len] = '\0';
      t = p->scratch.p;
    }
    return stopped(p->cb.on_comment(p->ctx, t, len));
  }
  default: /* F_EVENT: the type buffer already holds the value */
    return ES_PARSER_OK;
  }
}

/* Whether the parser is at a line start outside a skipped event: only the
 * general path changes that. */
static ES_HOT_INLINE int fast_state(const es_parser *p) {
  return p->ls == LS_START && !p->skipping;
}

static int feed_lines(es_parser *p, const unsigned char *s, size_t n) {
  const unsigned char *end = s + n;
  if (p->skip_lf) {
    p->skip_lf = 0;
    if (n && *s == '\n')
      s++;
  }
  int fast = fast_state(p);
  while (s < end) {
    unsigned high = 0;
    size_t len = es_scan_eol(s, (size_t)(end - s), &high);
    const unsigned char *eol = s + len;
    int r = R_SLOW;
    if (eol < end && !high && fast && len <= p->fast_max) {
      if (!len) {
        r = dispatch(p);
      } else if ((r = fast_line(p, s, len)) == R_DATA) {
        /* the blank line that so often follows at once needs no scan */
        const unsigned char *q = eol + 1;
        if (*eol == '\r' && q < end && *q == '\n')
          q++;
        r = ES_PARSER_OK;
        if (q < end && (*q == '\n' || *q == '\r')) {
          r = dispatch(p);
          eol = q;
        }
      }
    }
    if (r == R_SLOW) {
      p->ascii = !high;
      if (len && (r = line_bytes(p, s, len)) != ES_PARSER_OK)
        return r;
      if (eol == end)
        break;
      r = line_end(p);
      fast = fast_state(p);
    }
    s = eol + 1;
    if (*eol == '\r') { /* a CRLF is one line end */
      if (s == end)
        p->skip_lf = 1;
      else if (*s == '\n')
        s++;
    }
    if (r)
      return r;
  }
  return ES_PARSER_OK;
}

/* ------------------------------------------------------------------------ */
/* Public functions                                                         */
/* ------------------------------------------------------------------------ */

es_parser *es_parser_new(const es_parser_callbacks *cb, void *ctx,
                         size_t max_line, size_t max_event) {
  es_parser *p = es_calloc(1, sizeof *p);
  if (!p)
    return NULL;
  if (cb)
    p->cb = *cb;
  p->ctx = ctx;
  /* scratch from the start: the fast path writes ids straight into idbuf,
   * and the general one (a split or non-ASCII id: line, a comment) should
   * not make a warm parser allocate the first time it runs */
  if (es_buf_reserve(&p->scratch, 0, 0)) {
    es_free(p);
    return NULL;
  }
  p->next_max_line = p->max_line = max_line;
  p->fast_max = max_line ? max_line : SIZE_MAX;
  p->next_max_event = p->max_event = max_event;
  es_parser_reset(p);
  return p;
}

void es_parser_free(es_parser *p) {
  if (!p)
    return;
  es_free(p->data.p);
  es_free(p->type.p);
  es_free(p->scratch.p);
  es_free(p->idstr.p);
  es_free(p->idbuf.p);
  es_free(p);
}

void es_parser_set_limits(es_parser *p, size_t max_line, size_t max_event) {
  p->next_max_line = max_line;
  p->fast_max = max_line ? max_line : SIZE_MAX;
  p->next_max_event = max_event;
}

void es_parser_set_max_id(es_parser *p, size_t max_id) { p->max_id = max_id; }

void es_parser_reset(es_parser *p) {
  /* Bytes held as a possible BOM that never completed are ordinary input:
   * they still count against the line limit before the line is discarded. */
  if (p->bom > 0 && p->bom < 3) {
    size_t k = p->bom;
    p->bom = 3;
    (void)feed_lines(p, BOM, k); /* all is discarded next; a stop changes nothing */
  }
  p->bom = 0;
  p->skip_lf = 0;
  p->skipping = 0;
  p->ls = LS_START;
  p->field = F_NONE;
  p->line_len = 0;
  p->dst = NULL;
  u8_reset(p);
  p->data.len = 0;
  p->type.len = 0;
  p->scratch.len = 0;
  p->id_dirty = 0;
  p->max_line = p->next_max_line;
  p->max_event = p->next_max_event;
}

void es_parser_finish(es_parser *p) { es_parser_reset(p); }

int es_parser_feed(es_parser *p, const char *buf, size_t len) {
  const unsigned char *s = (const unsigned char *)buf;
  while (p->bom < 3 && len) {
    if (*s == BOM[p->bom]) {
      p->bom++;
      s++;
      len--;
      continue;
    }
    /* not a BOM: the bytes matched so far are ordinary input */
    size_t k = p->bom;
    p->bom = 3;
    if (k) {
      int r = feed_lines(p, BOM, k);
      if (r)
        return r;
    }
  }
  if (!len)
    return ES_PARSER_OK;
  return feed_lines(p, s, len);
}

int es_parser_decode_whole(es_parser *p, es_buf *out, const char *s, size_t n) {
  es_buf *odst = p->dst;
  size_t olimit = p->dst_limit;
  es_u8 saved = p->u8;
  p->dst = out;
  p->dst_limit = SIZE_MAX;
  p->u8.need = 0;
  int r = es_buf_reserve(out, 0, 0) ? ES_PARSER_NOMEM
                                    : decode(p, (const unsigned char *)s, n);
  if (!r)
    r = decode_flush(p);
  p->dst = odst;
  p->dst_limit = olimit;
  p->u8 = saved;
  return r ? -1 : 0;
}
