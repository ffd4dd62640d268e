/*
 * sse_server.h - a scripted loopback HTTP server for the tests.
 *
 * It listens on 127.0.0.1, port 0 (the kernel picks), in a thread of its own.
 * Each accepted connection reads one HTTP/1.1 request (headers and a
 * Content-Length body), records it, then plays the next script in the queue
 * (the last script is replayed when the queue runs out; with no script it
 * answers 503). A script is a list of steps played in order: write exact
 * bytes (each write is one send(), so chunk boundaries are kept as far as TCP
 * allows; steps are separated by a short flush), sleep, wait until the test
 * releases a gate, close. Everything a test needs to synchronise on (requests
 * received, connections closed by the client) can be waited for with a
 * timeout. No global state; several servers may run at once.
 *
 * Bytes are written raw: a script writes the status line and headers itself,
 * or uses ts_script_headers() for the usual 200 text/event-stream answer.
 * Connections use "Connection: close" semantics: the body ends when the
 * script closes.
 *
 * Faults: a script can end the connection with a FIN (ts_script_close, or
 * the end of the script) or a RST (ts_script_reset), drip bytes one send()
 * at a time (ts_script_drip), stall for ever after the request
 * (ts_script_hold as the only step: nothing is ever written), and write
 * anything at all (oversized headers: ts_script_fill; broken chunked
 * encoding, compressed bodies from ts_encode.h: raw writes). A TLS listener
 * (ts_server_start_tls, certificates from ts_tls.h) plays the same scripts
 * over TLS. A handler (ts_server_set_handler) replaces the scripts with code
 * that writes each response itself, for servers whose answer depends on the
 * request.
 *
 * Its job: every test that scripts what a server says, on a few connections
 * at a time (a thread each). Many streams on one thread (a thousand, fed by
 * broadcasts) are bench/mass_server.h's job; the demo server
 * (demo/sse-demo-server.c) is a program for people, not a test fixture.
 */
#ifndef TS_SSE_SERVER_H
#define TS_SSE_SERVER_H

#include <stddef.h>

#include "ts_tls.h"

typedef struct ts_server ts_server;
typedef struct ts_script ts_script;

/* A recorded request. All strings NUL-terminated; body may contain NUL. */
typedef struct ts_request {
  char method[16];
  char path[1024];
  /* Header lines as received, "Name: value" each, in order. */
  int nheaders;
  char headers[64][1024];
  char *body; /* owned by the server; NULL when empty */
  size_t body_len;
} ts_request;

/* Starts a server. NULL on failure. */
ts_server *ts_server_start(void);
/* Stops it: closes every connection, joins its threads, frees everything. */
void ts_server_stop(ts_server *s);
int ts_server_port(const ts_server *s);
/* "http://127.0.0.1:PORT" + path, in a buffer owned by the server (valid
 * until the next call of this function on s, or stop). */
const char *ts_server_url(ts_server *s, const char *path);

/* Appends a new script to the queue and returns it for filling in. */
ts_script *ts_server_add_script(ts_server *s);

/* Script steps. */
void ts_script_write(ts_script *sc, const void *bytes, size_t len);
void ts_script_writes(ts_script *sc, const char *str);          /* strlen */
/* "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n
 *  Cache-Control: no-cache\r\nConnection: close\r\n\r\n" */
void ts_script_headers(ts_script *sc);
/* status line + given extra header lines (each "Name: value", NULL-ended) +
 * Connection: close + blank line. */
void ts_script_status(ts_script *sc, int status, const char *reason,
                      const char *const *header_lines);
void ts_script_sleep(ts_script *sc, int ms);
/* Waits until ts_server_release(s, gate) is called (or the server stops). */
void ts_script_gate(ts_script *sc, int gate);
/* Keeps the connection open, silent, until the client closes it (or the
 * server stops). */
void ts_script_hold(ts_script *sc);
/* Closes the connection (also implied at the end of every script). */
void ts_script_close(ts_script *sc);

/* Opens gate n (every script waiting on it, now or later, goes on). */
void ts_server_release(ts_server *s, int gate);

/* Waits until at least n requests have been received in total; returns the
 * count (less than n on timeout). */
int ts_server_wait_requests(ts_server *s, int n, int timeout_ms);
int ts_server_request_count(ts_server *s);
/* Copies request i (0-based, in arrival order) into *out (body copied into
 * a buffer owned by the server). Returns 0, or -1 if there is no such request. */
int ts_server_get_request(ts_server *s, int i, ts_request *out);
/* The value of header name (case-insensitive) in request i, copied into buf;
 * returns 1 if present, 0 if not. */
int ts_request_header(const ts_request *r, const char *name, char *buf,
                      size_t bufsize);

/* Waits until at least n connections have been closed by the client (EOF
 * or error on read while holding or writing); returns the count. */
int ts_server_wait_client_closes(ts_server *s, int n, int timeout_ms);

/* Number of connections currently open on the server side. */
int ts_server_open_connections(ts_server *s);

/* --- Additions ------------------------------------------------------------ */

/* Like ts_request_header() for the n-th (0-based) header of that name. */
int ts_request_header_nth(const ts_request *r, const char *name, int n,
                          char *buf, size_t bufsize);
/* How many headers of that name (case-insensitive) request r has. */
int ts_request_header_count(const ts_request *r, const char *name);
/* Connections closed by the client so far (see ts_server_wait_client_closes). */
int ts_server_client_closes(ts_server *s);
/* Waits until at most at_most connections are open on the server side;
 * returns the number open. */
int ts_server_wait_open_connections(ts_server *s, int at_most, int timeout_ms);

/* --- Faults, TLS and handlers ---------------------------------------------- */

/* Ends the connection with a RST (SO_LINGER {1, 0}, then close) instead of
 * the FIN of ts_script_close(): bytes the client has not read yet may be
 * lost, and its next read fails with ECONNRESET. */
void ts_script_reset(ts_script *sc);
/* Writes bytes one send() per byte, delay_ms between two bytes (the server's
 * stop interrupts the wait). */
void ts_script_drip(ts_script *sc, const void *bytes, size_t len, int delay_ms);
/* Writes count copies of byte in one step (a 200 KB header value, say). */
void ts_script_fill(ts_script *sc, char byte, size_t count);

/* Starts a server whose connections do a TLS handshake (server side, with
 * t's leaf certificate) and then read the request and play scripts (or the
 * handler) over TLS exactly as ts_server_start()'s do; ts_server_url() then
 * gives "https://127.0.0.1:PORT...". A client that fails the handshake
 * (it does not trust the CA, or the name does not match) only ends its own
 * connection: it is counted by ts_server_tls_failures() and records no
 * request (libcurl checks the name only after the handshake: a mismatch
 * is a connection that closes without a request). The server keeps its own reference to t's context: t may be
 * freed before the server is stopped. NULL on failure. */
ts_server *ts_server_start_tls(ts_tls *t);
/* Handshakes that failed so far; wait: until at least n (the count). */
int ts_server_tls_failures(ts_server *s);
int ts_server_wait_tls_failures(ts_server *s, int n, int timeout_ms);

/* Handler mode: when a handler is set, each connection, once its request is
 * read and recorded (ts_server_get_request() sees it), calls fn on that
 * connection's thread instead of playing a script (the script queue is left
 * as it is). req is valid until fn returns. When fn returns, the connection
 * is closed with a FIN unless fn closed it already. Connections are
 * concurrent: fn must be thread-safe. NULL goes back to scripts (for the
 * connections accepted from then on). */
typedef struct ts_conn ts_conn;
typedef void (*ts_handler_fn)(ts_conn *c, const ts_request *req, void *ud);
void ts_server_set_handler(ts_server *s, ts_handler_fn fn, void *ud);
/* Writes every byte (one send(), or one SSL_write()); 0, or -1 when the
 * peer is gone (counted once as a client close), the connection was closed
 * or the server is stopping. */
int ts_conn_write(ts_conn *c, const void *bytes, size_t len);
int ts_conn_writes(ts_conn *c, const char *str); /* strlen */
/* Closes the connection now: rst 0 with a FIN (TLS: close_notify first),
 * 1 with a RST. Later writes fail; later closes do nothing. */
void ts_conn_close(ts_conn *c, int rst);
/* The server the connection belongs to. */
ts_server *ts_conn_server(const ts_conn *c);

#endif
