/*
 * gen.h - deterministic text/event-stream generator for the benchmarks
 * (bench/bench_parser.c, make bench-node). A fixed seed, its own PRNG (no
 * rand()): the same shape and size give the same bytes on every machine.
 *
 * Shapes (pure ASCII, LF line endings but crlf):
 *   small      "id: N", "event: tick", a 48-byte JSON "data:" line, a blank
 *              line: about 80 bytes per event
 *   crlf       the same events with CRLF line endings
 *   llm        OpenAI-style streamed chunks, about 121 bytes, no id or event:
 *              data: {"id":"chatcmpl-..","object":"chat.completion.chunk",
 *                     "choices":[{"delta":{"content":"word "}}]}
 *   multiline  20 "data:" lines of 80 bytes of text per event
 *   large      one "data:" line of 64 KiB of text per event
 */
#ifndef BENCH_GEN_H
#define BENCH_GEN_H

#include <stddef.h>
#include <stdint.h>

typedef enum gen_shape {
  GEN_SMALL,
  GEN_CRLF,
  GEN_LLM,
  GEN_MULTILINE,
  GEN_LARGE,
  GEN_NSHAPES
} gen_shape;

typedef struct gen_stream {
  char *p;             /* the bytes (malloc'd, gen_free()) */
  size_t len;          /* whole events only: at most the size asked for and
                          less than one event short of it */
  uint64_t events;     /* the events a spec-exact parser dispatches */
  uint64_t data_bytes; /* the sum of their data lengths */
} gen_stream;

/* The shape's name ("small", ...), or NULL. */
const char *gen_shape_name(int shape);
/* The shape named name, or -1. */
int gen_shape_find(const char *name);
/* Generates about size bytes of shape. Returns 0, or -1 when out of memory. */
int gen_make(gen_shape shape, size_t size, gen_stream *out);
void gen_free(gen_stream *s);

#endif
