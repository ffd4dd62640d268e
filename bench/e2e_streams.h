/*
 * e2e_streams.h - the streams and the loopback HTTP/1.1 server of
 * bench_e2e (issue 12's end-to-end figures).
 *
 * Shapes (deterministic; each is a "period" of about 4 MiB of whole events,
 * built once, that the server repeats as often as the total size asks; ids
 * count from 1 within a period):
 *   small  "id: N\nevent: tick\ndata: <48 bytes>\n\n", about 80 B an event
 *   llm    OpenAI-style "data: {chat.completion.chunk json}\n\n", about
 *          121 B an event (a token of 1 to 9 letters in "content")
 *   large  "data: <65536 bytes>\n\n"
 *
 * The server (e2e_server_start) listens on 127.0.0.1, port 0, and serves
 * its connections one after the other in a child process, so its CPU is not
 * the client's (2 cores: one each). Each request's path says what to send:
 *   /stream/SHAPE/FRAMING/PERIODS   200 text/event-stream, chunked: the
 *          shape's period PERIODS times; FRAMING "64k" cuts the body into
 *          64 KiB HTTP chunks (writev from the period, no copy), "event"
 *          sends one HTTP chunk per event (what servers that flush per event
 *          send). Then the last chunk, then the connection is closed.
 *   /latency/N/INTERVAL_US   N events, one every INTERVAL_US microseconds
 *          (absolute deadlines), each one HTTP chunk, its data the
 *          CLOCK_MONOTONIC time in ns when it was written
 *          ("data: 123456789\n\n"); client and server share the clock.
 * Nothing here links the library or test/ code.
 */
#ifndef BENCH_E2E_STREAMS_H
#define BENCH_E2E_STREAMS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum { E2E_SMALL, E2E_LLM, E2E_LARGE, E2E_NSHAPES } e2e_shape;

/* "small", "llm", "large". */
const char *e2e_shape_name(e2e_shape s);
/* The event type a listener waits for: "tick" or "message". */
const char *e2e_shape_type(e2e_shape s);

/* One period of a shape: plain SSE bytes, and the same events with one HTTP
 * chunk each ("%zx\r\n" event "\r\n"). */
typedef struct e2e_period {
  char *body;
  size_t len;
  size_t events;
  size_t data_bytes; /* the sum of the events' data lengths */
  char *framed;
  size_t framed_len;
} e2e_period;

/* Builds every shape's period (exits on allocation failure). */
void e2e_periods_make(e2e_period out[E2E_NSHAPES]);
void e2e_periods_free(e2e_period p[E2E_NSHAPES]);

/* Periods of about total_bytes (at least 1). */
size_t e2e_periods_for(const e2e_period *p, uint64_t total_bytes);

typedef struct e2e_server {
  pid_t pid;
  int port;
} e2e_server;

/* Forks the server; the periods must be built. 0, or -1 (errno). */
int e2e_server_start(e2e_server *s, const e2e_period periods[E2E_NSHAPES]);
/* Kills and reaps it. */
void e2e_server_stop(e2e_server *s);

/* CLOCK_MONOTONIC in ns. */
uint64_t e2e_now_ns(void);

#endif
