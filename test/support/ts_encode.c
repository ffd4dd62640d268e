/* ts_encode.c - see ts_encode.h. zlib, libbrotlienc, libzstd. */
#include "ts_encode.h"

#include <brotli/encode.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* windowBits 15: zlib format; 15 + 16: gzip. */
static int zlib_encode(int window_bits, const void *in, size_t len,
                       unsigned char **out, size_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  /* deflateBound() does not count the gzip header's extra bytes. */
  size_t cap = deflateBound(&z, (uLong)len) + 32;
  unsigned char *b = malloc(cap);
  if (!b) {
    deflateEnd(&z);
    return -1;
  }
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)len;
  z.next_out = b;
  z.avail_out = (uInt)cap;
  int rc = deflate(&z, Z_FINISH);
  size_t n = cap - z.avail_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    free(b);
    return -1;
  }
  *out = b;
  *out_len = n;
  return 0;
}

static int br_encode(const void *in, size_t len, unsigned char **out,
                     size_t *out_len) {
  size_t cap = BrotliEncoderMaxCompressedSize(len);
  if (cap == 0)
    return -1;
  unsigned char *b = malloc(cap);
  if (!b)
    return -1;
  size_t n = cap;
  if (!BrotliEncoderCompress(BROTLI_DEFAULT_QUALITY, BROTLI_DEFAULT_WINDOW,
                             BROTLI_MODE_TEXT, len, in, &n, b)) {
    free(b);
    return -1;
  }
  *out = b;
  *out_len = n;
  return 0;
}

static int zstd_encode(const void *in, size_t len, unsigned char **out,
                       size_t *out_len) {
  size_t cap = ZSTD_compressBound(len);
  unsigned char *b = malloc(cap ? cap : 1);
  if (!b)
    return -1;
  size_t n = ZSTD_compress(b, cap, in, len, 3);
  if (ZSTD_isError(n)) {
    free(b);
    return -1;
  }
  *out = b;
  *out_len = n;
  return 0;
}

int ts_encode(const char *encoding, const void *in, size_t len,
              unsigned char **out, size_t *out_len) {
  if (!encoding || !out || !out_len || (!in && len))
    return -1;
  if (!in)
    in = "";
  if (len > 0x7fffffffUL)
    return -1;
  if (strcmp(encoding, "gzip") == 0)
    return zlib_encode(15 + 16, in, len, out, out_len);
  if (strcmp(encoding, "deflate") == 0)
    return zlib_encode(15, in, len, out, out_len);
  if (strcmp(encoding, "br") == 0)
    return br_encode(in, len, out, out_len);
  if (strcmp(encoding, "zstd") == 0)
    return zstd_encode(in, len, out, out_len);
  return -1;
}
