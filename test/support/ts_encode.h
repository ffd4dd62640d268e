/*
 * ts_encode.h - compressed bodies for the loopback server's scripts
 * (Content-Encoding tests).
 */
#ifndef TS_ENCODE_H
#define TS_ENCODE_H

#include <stddef.h>

/* Encodes in[0..len) with the HTTP content coding encoding: "gzip", "deflate"
 * (the zlib format, RFC 1950, which is what HTTP's deflate is), "br"
 * (brotli) or "zstd" (a zstd frame with its content size). On success
 * *out is a malloc'd buffer of *out_len bytes (the caller frees it) and the
 * result is 0; -1 for an unknown coding or a failure (*out untouched). */
int ts_encode(const char *encoding, const void *in, size_t len,
              unsigned char **out, size_t *out_len);

#endif
