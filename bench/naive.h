/*
 * naive.h - the baselines of bench/bench_parser.c.
 *
 * naive_parser: what a quick C event-stream parser looks like (about 100
 * lines): memchr for each LF, a CR before it stripped, no lone-CR line
 * ends, no UTF-8 decoding or validation, no BOM, no limits, type and id
 * truncated to fixed buffers. It accumulates data lines and dispatches on a
 * blank line, with the callback signature of lib/parser.h's on_event (type
 * "message" by default, the id the last one seen, data without its final
 * LF and not NUL-terminated).
 *
 * scan_crlf: counts the CR and LF bytes of a buffer, 16 bytes at a time with
 * SSE2 on x86-64, byte by byte elsewhere: a bound on any parser that has to
 * find line ends.
 */
#ifndef BENCH_NAIVE_H
#define BENCH_NAIVE_H

#include <stddef.h>

typedef int (*naive_on_event)(void *ctx, const char *type, size_t type_len,
                              const char *data, size_t data_len, const char *id,
                              size_t id_len);

typedef struct naive_parser {
  naive_on_event on_event;
  void *ctx;
  char *line; /* a line split across feeds */
  size_t line_len, line_cap;
  char *data;
  size_t data_len, data_cap;
  size_t type_len, id_len;
  char type[64], id[256];
} naive_parser;

void naive_init(naive_parser *p, naive_on_event on_event, void *ctx);
void naive_free(naive_parser *p);
/* Returns 0, the callback's non-zero value, or -1 when out of memory. */
int naive_feed(naive_parser *p, const char *buf, size_t len);
/* End of stream: drops a partial line and an undispatched event. */
void naive_finish(naive_parser *p);

/* The number of '\r' and '\n' bytes in p[0..n). */
size_t scan_crlf(const char *p, size_t n);

#endif
