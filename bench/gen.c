/*
 * gen.c - deterministic text/event-stream generator (gen.h).
 */
#include "gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_SEED 0x9E3779B97F4A7C15ull
#define SMALL_DATA 48
#define LLM_ID 19        /* chars after "chatcmpl-": ~121-byte chunks */
#define LLM_PER_ID 400   /* chunks per completion (one id each) */
#define ML_LINES 20
#define ML_LINE 80
#define LARGE_LINE 65536
#define TEXT_SPAN 4096   /* text slices start in the first TEXT_SPAN bytes */

static const char *const names[GEN_NSHAPES] = {"small", "crlf", "llm", "multiline",
                                               "large"};

const char *gen_shape_name(int shape) {
  return shape >= 0 && shape < GEN_NSHAPES ? names[shape] : NULL;
}

int gen_shape_find(const char *name) {
  for (int i = 0; i < GEN_NSHAPES; i++)
    if (strcmp(name, names[i]) == 0)
      return i;
  return -1;
}

/* xorshift64* */
static uint64_t rnd(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

static unsigned rndn(uint64_t *s, unsigned n) { return (unsigned)((rnd(s) >> 32) % n); }

/* Printable ASCII text with spaces, like prose or JSON: a block that slices
 * of up to LARGE_LINE bytes are taken from. */
static char *make_text(uint64_t *s) {
  static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789 ,.;:-_{}[]\"'()/+=*&%$#@!?<>";
  size_t n = (size_t)LARGE_LINE + TEXT_SPAN;
  char *t = malloc(n);
  if (!t)
    return NULL;
  for (size_t i = 0; i < n; i++)
    t[i] = (i % 7 == 6) ? ' ' : alpha[rndn(s, sizeof alpha - 1)];
  return t;
}

static const char *const words[] = {
    "the",     "of",    "and",       "to",     "in",      "a",        "is",    "that",
    "for",     "it",    "as",        "with",   "was",     "on",       "be",    "by",
    "this",    "model", "parser",    "stream", "event",   "token",    "data",  "server",
    "client",  "sent",  "response",  "we",     "can",     "which",    "from",  "an",
    "example", "value", "function",  "return", "because", "however",  "each",  "line",
    "byte",    "fast",  "benchmark", "result", "number",  "language", "large", "small"};

/* Writes one event of shape into e (room for any event); returns its length
 * and adds its data length to *data. */
static size_t event(gen_shape shape, uint64_t i, uint64_t *s, const char *text, char *e,
                    char *llm_id, uint64_t *data) {
  static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  size_t n = 0;
  switch (shape) {
  case GEN_SMALL:
  case GEN_CRLF: {
    const char *nl = shape == GEN_CRLF ? "\r\n" : "\n";
    char sym[5];
    for (int k = 0; k < 4; k++)
      sym[k] = (char)('A' + rndn(s, 26));
    sym[4] = '\0';
    unsigned px = rndn(s, 100000), qty = rndn(s, 10000);
    int m = snprintf(e, 256,
                     "id: %llu%sevent: tick%sdata: {\"sym\":\"%s\",\"px\":%03u.%02u,"
                     "\"qty\":%04u,\"side\":\"%c\"}%s%s",
                     (unsigned long long)i + 1, nl, nl, sym, px / 100, px % 100, qty,
                     rndn(s, 2) ? 'b' : 's', nl, nl);
    n = (size_t)m;
    *data += SMALL_DATA;
    break;
  }
  case GEN_LLM: {
    if (i % LLM_PER_ID == 0) {
      for (int k = 0; k < LLM_ID; k++)
        llm_id[k] = alnum[rndn(s, sizeof alnum - 1)];
      llm_id[LLM_ID] = '\0';
    }
    const char *w = words[rndn(s, sizeof words / sizeof words[0])];
    int m = snprintf(e, 256,
                     "data: {\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion.chunk\","
                     "\"choices\":[{\"delta\":{\"content\":\"%s \"}}]}\n\n",
                     llm_id, w);
    n = (size_t)m;
    *data += n - 8; /* "data: " and "\n\n" */
    break;
  }
  case GEN_MULTILINE:
    for (int l = 0; l < ML_LINES; l++) {
      memcpy(e + n, "data: ", 6);
      memcpy(e + n + 6, text + rndn(s, TEXT_SPAN), ML_LINE);
      e[n + 6 + ML_LINE] = '\n';
      n += 6 + ML_LINE + 1;
    }
    e[n++] = '\n';
    *data += ML_LINES * (ML_LINE + 1) - 1;
    break;
  default: /* GEN_LARGE */
    memcpy(e, "data: ", 6);
    memcpy(e + 6, text + rndn(s, TEXT_SPAN), LARGE_LINE);
    memcpy(e + 6 + LARGE_LINE, "\n\n", 2);
    n = 6 + LARGE_LINE + 2;
    *data += LARGE_LINE;
    break;
  }
  return n;
}

int gen_make(gen_shape shape, size_t size, gen_stream *out) {
  memset(out, 0, sizeof *out);
  uint64_t s = GEN_SEED ^ ((uint64_t)shape + 1) * 0x100000001B3ull;
  char *text = make_text(&s);
  char *e = malloc((size_t)LARGE_LINE + 4096);
  out->p = malloc(size ? size : 1);
  if (!text || !e || !out->p) {
    free(text);
    free(e);
    free(out->p);
    out->p = NULL;
    return -1;
  }
  char llm_id[LLM_ID + 1];
  for (uint64_t i = 0;; i++) {
    uint64_t d = 0;
    size_t n = event(shape, i, &s, text, e, llm_id, &d);
    if (out->len + n > size)
      break;
    memcpy(out->p + out->len, e, n);
    out->len += n;
    out->events++;
    out->data_bytes += d;
  }
  free(text);
  free(e);
  return 0;
}

void gen_free(gen_stream *s) {
  free(s->p);
  memset(s, 0, sizeof *s);
}
