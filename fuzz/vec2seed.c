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

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static void put_utf8(FILE *o, unsigned long cp) {
  if (cp < 0x80) {
    fputc((int)cp, o);
  } else if (cp < 0x800) {
    fputc((int)(0xC0 | cp >> 6), o);
    fputc((int)(0x80 | (cp & 0x3F)), o);
  } else if (cp < 0x10000) {
    fputc((int)(0xE0 | cp >> 12), o);
    fputc((int)(0x80 | (cp >> 6 & 0x3F)), o);
    fputc((int)(0x80 | (cp & 0x3F)), o);
  } else {
    fputc((int)(0xF0 | cp >> 18), o);
    fputc((int)(0x80 | (cp >> 12 & 0x3F)), o);
    fputc((int)(0x80 | (cp >> 6 & 0x3F)), o);
    fputc((int)(0x80 | (cp & 0x3F)), o);
  }
}

/* Writes the quoted strings of s (one or more) to o; returns bytes written. */
static long put_quoted(const char *s, FILE *o) {
  long start = ftell(o);
  for (;;) {
    while (*s == ' ' || *s == '\t')
      s++;
    if (*s != '"')
      break;
    s++;
    while (*s && *s != '"') {
      if (*s != '\\') {
        fputc(*s++, o);
        continue;
      }
      s++;
      char c = *s++;
      switch (c) {
      case 'n': fputc('\n', o); break;
      case 'r': fputc('\r', o); break;
      case 't': fputc('\t', o); break;
      case '0': fputc(0, o); break;
      case 'x': {
        int h = hexval(s[0]), l = hexval(s[1]);
        if (h >= 0 && l >= 0) {
          fputc(h * 16 + l, o);
          s += 2;
        }
        break;
      }
      case 'u': {
        unsigned long cp = 0;
        if (*s == '{')
          s++;
        while (hexval(*s) >= 0)
          cp = cp * 16 + (unsigned long)hexval(*s++);
        if (*s == '}')
          s++;
        put_utf8(o, cp);
        break;
      }
      default:
        if (c)
          fputc(c, o);
        else
          s--;
      }
    }
    if (*s == '"')
      s++;
  }
  return ftell(o) - start;
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
  FILE *body = tmpfile();
  if (!body)
    return 1;
  long ml = 0, me = 0, stop = 0;
  char line[8192];
  while (fgets(line, sizeof line, in)) {
    line[strcspn(line, "\r\n")] = '\0';
    const char *s = line;
    while (*s == ' ' || *s == '\t')
      s++;
    if (strncmp(s, "opt max-line ", 13) == 0) {
      ml = atol(s + 13);
    } else if (strncmp(s, "opt max-event ", 14) == 0) {
      me = atol(s + 14);
    } else if (strncmp(s, "opt stop-after ", 15) == 0) {
      stop = atol(s + 15);
    } else if (strncmp(s, "opt last-event-id ", 18) == 0 ||
               strncmp(s, "setid ", 6) == 0) {
      const char *q = s[0] == 'o' ? s + 18 : s + 6;
      FILE *t = tmpfile();
      if (!t)
        return 1;
      long n = put_quoted(q, t);
      if (n > 15)
        n = 15;
      fputc(0xFF, body);
      fputc(0xFE, body);
      fputc('i', body);
      fputc((int)n, body);
      rewind(t);
      for (long i = 0; i < n; i++)
        fputc(fgetc(t), body);
      fclose(t);
    } else if (strncmp(s, "in ", 3) == 0) {
      put_quoted(s + 3, body);
    } else if (strcmp(s, "finish") == 0 || strcmp(s, "reset") == 0) {
      fputc(0xFF, body);
      fputc(0xFE, body);
      fputc(s[0] == 'f' ? 'f' : 'r', body);
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
  rewind(body);
  int c;
  while ((c = fgetc(body)) != EOF)
    fputc(c, out);
  fclose(body);
  return fclose(out) ? 1 : 0;
}
