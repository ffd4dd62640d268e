/*
 * vec2seed.c - turns a parser vector (test/vectors/NAME.vec) into a seed
 * input of fuzz_parser (layout: see fuzz_parser.c).
 *
 *   vec2seed FILE.vec OUT [MODE]
 *
 * The 8 header bytes take the vector's limits and stop-after; MODE (a byte
 * value, default 1: byte by byte) is the chunking byte h[2]. `in` strings
 * become stream bytes, finish/reset/setid become FF FE directives. Vectors
 * the fuzzer's header cannot express (limits over 64, stop-after over 16)
 * get the nearest value. Exit status 0 on success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/ts_refmodel.h"

/* Appends the bytes of the quoted strings at s (one or more, the syntax of
 * test/test_parser.c, parsed by the same ts_unesc()) to o; -1 on a syntax
 * error. */
static int unquote_all(const char *s, ts_sb_t *o) {
  do {
    if (ts_unesc(&s, o))
      return -1;
    while (*s == ' ' || *s == '\t')
      s++;
  } while (*s == '"');
  return 0;
}

static int limit_byte(long v) {
  if (v <= 0)
    return 0;
  if (v > 64)
    v = 64;
  return 0x80 | (int)(v - 1);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: vec2seed FILE.vec OUT [MODE]\n");
    return 2;
  }
  FILE *in = fopen(argv[1], "r");
  if (!in) {
    perror(argv[1]);
    return 1;
  }
  ts_sb_t body = {0}, str = {0};
  long ml = 0, me = 0, stop = 0;
  int lineno = 0;
  char line[65536];
  while (fgets(line, sizeof line, in)) {
    lineno++;
    line[strcspn(line, "\r\n")] = '\0';
    const char *s = line;
    while (*s == ' ' || *s == '\t')
      s++;
    int bad = 0;
    str.len = 0;
    if (strncmp(s, "opt max-line ", 13) == 0) {
      ml = atol(s + 13);
    } else if (strncmp(s, "opt max-event ", 14) == 0) {
      me = atol(s + 14);
    } else if (strncmp(s, "opt stop-after ", 15) == 0) {
      stop = atol(s + 15);
    } else if (strncmp(s, "opt last-event-id ", 18) == 0 ||
               strncmp(s, "setid ", 6) == 0) {
      const char *q = s[0] == 'o' ? s + 18 : s + 6;
      if (ts_unesc(&q, &str)) {
        bad = 1;
      } else {
        size_t n = str.len > 15 ? 15 : str.len;
        ts_sb_put(&body, "\xFF\xFE" "i", 3);
        ts_sb_putc(&body, (char)n);
        ts_sb_put(&body, str.p, n);
      }
    } else if (strncmp(s, "in ", 3) == 0) {
      if (unquote_all(s + 3, &str))
        bad = 1;
      else
        ts_sb_put(&body, str.p, str.len);
    } else if (strcmp(s, "finish") == 0 || strcmp(s, "reset") == 0) {
      ts_sb_put(&body, s[0] == 'f' ? "\xFF\xFE" "f" : "\xFF\xFE" "r", 3);
    }
    if (bad) {
      fprintf(stderr, "%s:%d: syntax error\n", argv[1], lineno);
      fclose(in);
      return 1;
    }
  }
  fclose(in);
  FILE *out = fopen(argv[2], "wb");
  if (!out) {
    perror(argv[2]);
    return 1;
  }
  int mode = argc > 3 ? atoi(argv[3]) : 1;
  unsigned char h[8] = {(unsigned char)limit_byte(ml), (unsigned char)limit_byte(me),
                        (unsigned char)mode,
                        (unsigned char)(stop > 0 ? 0xF0 | ((stop > 16 ? 16 : stop) - 1) : 0),
                        0, 0, 0, 0};
  fwrite(h, 1, sizeof h, out);
  fwrite(body.p ? body.p : "", 1, body.len, out);
  ts_sb_free(&body);
  ts_sb_free(&str);
  return fclose(out) ? 1 : 0;
}
