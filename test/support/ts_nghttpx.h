/*
 * ts_nghttpx.h - a real HTTP/2 server for the tests: nghttpx (Debian
 * nghttp2-proxy, a declared test dependency: mk/deps.sh) run as a child
 * process in front of a loopback HTTP/1.1 backend (a ts_server).
 *
 * The frontend listens on 127.0.0.1 on a free port (found by binding port
 * 0), either over TLS (h2 or HTTP/1.1 by ALPN, with the leaf certificate
 * of a ts_tls) or in cleartext (";no-tls": h2c with prior knowledge, and
 * HTTP/1.1). nghttpx runs as one process (--single-process, --workers=1;
 * or as a main process and one worker: TS_NGHTTPX_MULTI_PROCESS),
 * reads no configuration file, keeps no access log and writes its error
 * log to a temporary file (printed on stderr when it fails to start). Its
 * port stays the same across ts_nghttpx_kill()/_stop() and
 * ts_nghttpx_restart(), so that clients reconnect to the same URL.
 *
 * Also here: ts_run_capture(), which runs a program to its end with a
 * deadline and captures its output (sse-cat against nghttpx).
 */
#ifndef TS_NGHTTPX_H
#define TS_NGHTTPX_H

#include "ts_tls.h"

typedef struct ts_nghttpx ts_nghttpx;

/* The nghttpx binary ($NGHTTPX, else /usr/sbin/nghttpx), or NULL when it is
 * not executable. */
const char *ts_nghttpx_binary(void);

/* Starts nghttpx in front of 127.0.0.1:backend_port and waits (at most
 * 10 s) until its frontend accepts connections. tls NULL: cleartext (h2c)
 * frontend; else TLS with tls's leaf certificate (tls must outlive the
 * proxy). extra: more nghttpx options ("--frontend-http2-max-concurrent-
 * streams=20"), NULL-terminated, copied; NULL for none. NULL on failure,
 * with the reason on stderr (a missing binary included). */
ts_nghttpx *ts_nghttpx_start(int backend_port, ts_tls *tls,
                             const char *const *extra);
/* Flags of ts_nghttpx_start_with(). MULTI_PROCESS: no --single-process,
 * so that nghttpx handles signals (SIGQUIT: ts_nghttpx_graceful()). */
#define TS_NGHTTPX_MULTI_PROCESS 1
/* ts_nghttpx_start() with flags (0: the same). */
ts_nghttpx *ts_nghttpx_start_with(int backend_port, ts_tls *tls,
                                  const char *const *extra, int flags);
/* SIGTERM, then waits up to 5 s for the exit, then SIGKILL. Its frontend
 * port is kept for ts_nghttpx_restart(). Nothing when it is not running. */
void ts_nghttpx_stop(ts_nghttpx *n);
/* SIGKILL and reaps it: a crash (connections end without GOAWAY). */
void ts_nghttpx_kill(ts_nghttpx *n);
/* Graceful shutdown (a MULTI_PROCESS nghttpx only): SIGQUIT, then waits
 * (at most 5 s) until the frontend port is closed. nghttpx sends a GOAWAY
 * on each HTTP/2 connection and keeps them for its
 * --worker-process-grace-shutdown-period (default: no limit, until they
 * end), then closes them. It drains in the background while
 * ts_nghttpx_restart() starts a new one on the port; ts_nghttpx_free()
 * ends it if it is still there. 0, or -1 (reason on stderr). */
int ts_nghttpx_graceful(ts_nghttpx *n);
/* Starts it again, on the same port and with the same options, and waits
 * until it accepts connections. 0, or -1 (reason on stderr). */
int ts_nghttpx_restart(ts_nghttpx *n);
/* Stops it (ts_nghttpx_stop) and frees everything. NULL does nothing. */
void ts_nghttpx_free(ts_nghttpx *n);

int ts_nghttpx_port(const ts_nghttpx *n);
/* "https://127.0.0.1:PORT" (TLS) or "http://127.0.0.1:PORT" + path, in a
 * buffer owned by n (valid until the next call on n, or free). */
const char *ts_nghttpx_url(ts_nghttpx *n, const char *path);
/* Established TCP connections from 127.0.0.1 to the frontend port, seen
 * from the client side (/proc/net/tcp: remote port = the frontend's, state
 * ESTABLISHED), or -1 when /proc/net/tcp cannot be read. */
int ts_nghttpx_client_connections(const ts_nghttpx *n);

/* Runs argv[0] (a path) with argv, stdin /dev/null, until it exits or
 * timeout_ms passes (then it is killed: SIGKILL). *out and *err (either may
 * be NULL) get its stdout and stderr, NUL-terminated, malloc'd (free them).
 * Returns the exit status, 128 + the signal if a signal ended it, or -1
 * when it could not be started or timed out. */
int ts_run_capture(const char *const *argv, int timeout_ms, char **out,
                   char **err);

#endif
