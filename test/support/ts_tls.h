/*
 * ts_tls.h - certificates made at test time, for the loopback server's TLS
 * listener (ts_server_start_tls() in sse_server.h).
 *
 * ts_tls_new() makes, in memory and in a few milliseconds (EC P-256 keys):
 * a CA key and self-signed CA certificate, and a leaf key and certificate
 * signed by that CA whose subjectAltName is san ("IP:127.0.0.1" for one that
 * matches the server's URL, "DNS:wrong.invalid" for one that does not). The
 * CA certificate is written, in PEM, to a temporary file for the client
 * (libcurl's CURLOPT_CAINFO); ts_tls_server_files() writes the leaf's
 * certificate and key too, for a server in another process. Nothing is
 * global; OpenSSL 3.
 */
#ifndef TS_TLS_H
#define TS_TLS_H

#include <curl/curl.h>

#include "eventsource.h"

typedef struct ts_tls ts_tls;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

/* NULL on failure (with a line on stderr saying why). */
ts_tls *ts_tls_new(const char *san);
/* The path of the CA certificate's PEM file (valid until ts_tls_free). */
const char *ts_tls_ca_file(const ts_tls *t);
/* The server context: the leaf certificate and key, TLS 1.2 at least.
 * Borrowed; a server that keeps it takes a reference (SSL_CTX_up_ref). */
struct ssl_ctx_st *ts_tls_ssl_ctx(const ts_tls *t);
/* Writes the leaf certificate and its private key, in PEM, to two
 * temporary files (the first call; later calls return the same files), for
 * a server in another process (nghttpx: key, then certificate). 0 and the
 * paths (valid until ts_tls_free, which removes the files), or -1 (with a
 * line on stderr). */
int ts_tls_server_files(ts_tls *t, const char **cert_file, const char **key_file);
/* A curl callback (eventsource_set_curl_callback()) that makes libcurl
 * trust the CA in the PEM file userdata (ts_tls_ca_file()). */
CURLcode ts_tls_trust_ca(eventsource_t *es, CURL *easy, void *userdata);
/* Removes the CA file (and the server files) and frees everything. NULL does nothing. A server
 * started with t may still be running: it holds its own reference. */
void ts_tls_free(ts_tls *t);

#endif
