/*
 * mass_server.h - a loopback SSE server for many connections on one thread.
 *
 * Its job: thousands of idle or broadcast-fed streams at a cost the client's
 * figures can ignore. It belongs to the benchmarks (bench/bench_streams.c
 * runs it in a child process) and is also linked into test/test_multi.c's
 * thousand-streams test; it includes and links nothing of test/ (the
 * benchmarks must build without the test tree). Everything else a test needs
 * from a server (scripts, faults, recorded requests, TLS, handlers) is
 * test/support/sse_server.h, which plays one script per connection on a
 * thread of its own: right for scripted tests, too heavy for a thousand
 * streams. This one serves every connection from a single epoll thread:
 *
 *   GET /404 ...        answered "404 Not Found" and closed;
 *   any other request   answered "200 text/event-stream" and kept open: the
 *                       connection is now a stream, fed by broadcast/send.
 *
 * A stream's id is the number at the end of its path ("/s/17" is stream 17;
 * no number: -1), so a client can address one stream. Nothing is written to
 * a stream but what the caller sends. Everything a caller synchronises on
 * (streams answered, streams closed by the client) can be waited for with a
 * timeout. Listens on 127.0.0.1, port 0. No global state; all functions but
 * stop are thread-safe. Data to send is copied.
 */
#ifndef MASS_SERVER_H
#define MASS_SERVER_H

#include <stddef.h>

typedef struct mass_server mass_server;

/* Starts a server (its thread included). NULL on failure. */
mass_server *mass_server_start(void);
/* Stops it: closes every connection, joins its thread, frees everything. */
void mass_server_stop(mass_server *s);
int mass_server_port(const mass_server *s);

/* Streams answered with 200 so far (open or not), and open now. */
int mass_server_streams_answered(mass_server *s);
int mass_server_streams_open(mass_server *s);
/* Connections the client closed after its stream was answered. */
int mass_server_streams_closed(mass_server *s);

/* Wait until the count reaches n (at least n answered / at least n closed)
 * or timeout_ms passes; return the count. */
int mass_server_wait_answered(mass_server *s, int n, int timeout_ms);
int mass_server_wait_closed(mass_server *s, int n, int timeout_ms);

/* Queues len bytes, count times, for every open stream (broadcast) or for
 * the latest open stream whose id is id (send; ids up to 2^20). Returns how
 * many streams the bytes were queued for. The server thread writes them as
 * the sockets allow; a broadcast costs O(streams), a send O(1). */
int mass_server_broadcast(mass_server *s, const void *bytes, size_t len,
                          int count);
int mass_server_send(mass_server *s, int id, const void *bytes, size_t len,
                     int count);

#endif
