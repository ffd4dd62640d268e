/*
 * ts_refmodel.h - the parser's reference model and the helpers around it,
 * shared by test/test_parser.c and fuzz/fuzz_parser.c (and, for the vector
 * string syntax, fuzz/vec2seed.c).
 *
 * Nothing here uses Check or the library: the fuzzer compiles this file on
 * its own (mk/fuzz.mk), and every function is written from the definitions
 * (UTF-8, the Encoding Standard's decoder, WHATWG HTML 9.2.5 "Parsing an
 * event stream" and 9.2.6 "Interpreting an event stream"), not from
 * lib/parser.c.
 */
#ifndef TS_REFMODEL_H
#define TS_REFMODEL_H

#include <stddef.h>
#include <stdint.h>

/* malloc/realloc that abort on failure (n == 0 allocates 1 byte). */
void *ts_xmalloc(size_t n);
void *ts_xrealloc(void *p, size_t n);

/* ---- string builder ----------------------------------------------------- */

/* A growing byte string, always NUL-terminated once anything was put. A
 * zeroed ts_sb_t is empty. */
typedef struct ts_sb {
  char *p;
  size_t len, cap;
} ts_sb_t;

void ts_sb_put(ts_sb_t *b, const void *s, size_t n);
void ts_sb_putc(ts_sb_t *b, char c);
void ts_sb_puts(ts_sb_t *b, const char *s);
__attribute__((format(printf, 2, 3))) void ts_sb_printf(ts_sb_t *b, const char *fmt, ...);
/* Hands the string over (never NULL) and leaves b empty. */
char *ts_sb_take(ts_sb_t *b);
void ts_sb_free(ts_sb_t *b);

/* ---- deterministic RNG (xorshift64*) ------------------------------------ */

uint64_t ts_rng_next(uint64_t *s);
/* 0 .. n-1 (0 when n is 0). */
size_t ts_rng_below(uint64_t *s, size_t n);

/* ---- UTF-8 -------------------------------------------------------------- */

/* The length of the well-formed UTF-8 character at s (0: none), its code
 * point in *cp. */
size_t ts_utf8_char(const unsigned char *s, size_t n, uint32_t *cp);
/* s[0..n) is well-formed UTF-8. */
int ts_utf8_valid(const char *s, size_t n);
void ts_utf8_encode(ts_sb_t *o, uint32_t cp);
/* The Encoding Standard's UTF-8 decoder (with replacement), appending to o;
 * with flush = 0 a trailing incomplete sequence is left out (not yet
 * decoded). */
void ts_utf8_decode(const unsigned char *s, size_t n, int flush, ts_sb_t *o);

/* ---- the canonical quoted spelling of transcripts and vectors ----------- */

/* Appends s[0..n) double-quoted: printable ASCII as is, \\ \" \n \r \t,
 * well-formed non-ASCII as \u{HEX}, any other byte as \xHH. */
void ts_esc(ts_sb_t *o, const char *s, size_t n);
/* Parses one quoted string at *sp (after blanks) with the escapes \\ \" \n
 * \r \t \0 \xHH and \u{H...}, appends its bytes to o (which then is
 * NUL-terminated, also when empty) and moves *sp past it. Returns 0, or -1
 * on a syntax error. */
int ts_unesc(const char **sp, ts_sb_t *o);

/* ---- the reference model ------------------------------------------------ */

/*
 * An independent, non-incremental implementation of the parser's contract:
 * each stream (the input between finish/reset) is taken whole, its leading
 * BOM dropped, split into lines at CRLF, LF or CR, each line decoded and
 * interpreted as WHATWG HTML 9.2.6 says. On top of the spec it models the
 * library's additions: the limits (a line over max_line bytes, or data over
 * max_event bytes, gives "error TOO_LARGE" and everything up to the next
 * blank line is skipped; the pending event and uncommitted id are dropped),
 * es_parser_set_last_event_id() between feeds and from a callback (an id
 * with U+0000 is refused and changes nothing, as for the "id" field), and a
 * callback that stops the parser (then nothing until the next
 * finish/reset).
 *
 * The transcript is handed to emit, one record at a time, in the spelling
 * of test/test_parser.c's vectors (without a newline):
 *   event "TYPE" "DATA" "ID" | comment "TEXT" | retry N | error TOO_LARGE |
 *   stopped | lastid "ID" (after each finish or reset)
 */
typedef enum ts_ref_kind {
  TS_REF_IN,     /* stream bytes b[0..n) */
  TS_REF_FINISH, /* es_parser_finish() */
  TS_REF_RESET,  /* es_parser_reset() (the same, for the model) */
  TS_REF_SETID   /* es_parser_set_last_event_id(b, n) */
} ts_ref_kind_t;

typedef struct ts_ref_op {
  ts_ref_kind_t k;
  const void *b;
  size_t n;
} ts_ref_op_t;

typedef struct ts_ref_cfg {
  size_t max_line, max_event; /* 0: no limit */
  long stop_after;            /* > 0: the stop_after-th callback returns non-zero */
  long cb_setid_at;           /* > 0: that callback sets the id cb_id[0..cb_id_n) */
  const char *cb_id;
  size_t cb_id_n;
} ts_ref_cfg_t;

typedef void (*ts_ref_emit_fn)(void *ctx, const char *record);

/* Runs ops[0..nops) (the end of ops finishes silently). A set-id op is
 * applied before the first line whose terminator is at or after the point
 * in the stream where it stands. */
void ts_ref_run(const ts_ref_cfg_t *c, const ts_ref_op_t *ops, size_t nops,
                ts_ref_emit_fn emit, void *ctx);

#endif
