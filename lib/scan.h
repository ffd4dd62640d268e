/*
 * scan.h - the parser's one pass over the bytes (internal): find the next
 * CR or LF and tell, on the way, whether any byte before it is >= 0x80, 16
 * bytes at a time (SSE2 on x86-64, NEON on arm64, 8-byte words elsewhere).
 * An ASCII line needs no UTF-8 decoding: its bytes are its characters.
 * The vector path is chosen at build time (SSE2 is part of x86-64, NEON of
 * arm64), so there is nothing to detect at run time.
 */
#ifndef EVENTSOURCE_SCAN_H
#define EVENTSOURCE_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ES_SCAN_SCALAR forces the portable path (tests compare the two). */
#undef ES_SCAN_SSE2
#undef ES_SCAN_NEON
#if defined(ES_SCAN_SCALAR)
#elif defined(__SSE2__)
#include <emmintrin.h>
#define ES_SCAN_SSE2 1
#elif defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#define ES_SCAN_NEON 1
#endif

/* The name of the path compiled in ("sse2", "neon" or "scalar"). */
static inline const char *es_scan_path(void) {
#if defined(ES_SCAN_SSE2)
  return "sse2";
#elif defined(ES_SCAN_NEON)
  return "neon";
#else
  return "scalar";
#endif
}

/* The byte-wise end of a scan: from s[i], h the high bits seen so far. */
static inline size_t es_scan_bytes(const unsigned char *s, size_t n, size_t i, unsigned h,
                                   unsigned *high) {
  for (; i < n; i++) {
    unsigned c = s[i];
    if (c == '\n' || c == '\r')
      break;
    h |= c & 0x80u;
  }
  if (h)
    *high = 1;
  return i;
}

#if defined(ES_SCAN_SSE2)
/* One 16-byte block at s: the CR/LF mask and the high-bit mask. */
static inline unsigned es_scan_block(const unsigned char *s, unsigned *hb) {
  const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
  __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
  *hb = (unsigned)_mm_movemask_epi8(v);
  return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
}

#define ES_SCAN_ROUND()                                                        \
  do {                                                                         \
    unsigned hb, m = es_scan_block(s + i, &hb);                                \
    if (m) {                                                                   \
      unsigned at = (unsigned)__builtin_ctz(m);                                \
      if (h | (hb & ((1u << at) - 1u)))                                        \
        *high = 1;                                                             \
      return i + at;                                                           \
    }                                                                          \
    h |= hb;                                                                   \
    i += 16;                                                                   \
  } while (0)

/* es_scan_eol() past the first 64 bytes (i of them seen, h: a byte >= 0x80
 * among them): 64 at a time while no line end is among them, the one that
 * has one from its four masks at once, the tail 16 at a time. Out of line,
 * so that the short lines' path, inlined into the parser, stays small. */
static __attribute__((noinline, unused)) size_t es_scan_long(const unsigned char *s, size_t n,
                                                             size_t i, unsigned h,
                                                             unsigned *high) {
  const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
  while (n - i >= 64) {
    const __m128i *q = (const __m128i *)(const void *)(s + i);
    __m128i v0 = _mm_loadu_si128(q), v1 = _mm_loadu_si128(q + 1);
    __m128i v2 = _mm_loadu_si128(q + 2), v3 = _mm_loadu_si128(q + 3);
    __m128i e0 = _mm_or_si128(_mm_cmpeq_epi8(v0, lf), _mm_cmpeq_epi8(v0, cr));
    __m128i e1 = _mm_or_si128(_mm_cmpeq_epi8(v1, lf), _mm_cmpeq_epi8(v1, cr));
    __m128i e2 = _mm_or_si128(_mm_cmpeq_epi8(v2, lf), _mm_cmpeq_epi8(v2, cr));
    __m128i e3 = _mm_or_si128(_mm_cmpeq_epi8(v3, lf), _mm_cmpeq_epi8(v3, cr));
    __m128i hv = _mm_or_si128(_mm_or_si128(v0, v1), _mm_or_si128(v2, v3));
    if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(e0, e1), _mm_or_si128(e2, e3)))) {
      uint64_t m = (uint64_t)(unsigned)_mm_movemask_epi8(e0) |
                   (uint64_t)(unsigned)_mm_movemask_epi8(e1) << 16 |
                   (uint64_t)(unsigned)_mm_movemask_epi8(e2) << 32 |
                   (uint64_t)(unsigned)_mm_movemask_epi8(e3) << 48;
      if (!h && _mm_movemask_epi8(hv)) {
        uint64_t hm = (uint64_t)(unsigned)_mm_movemask_epi8(v0) |
                      (uint64_t)(unsigned)_mm_movemask_epi8(v1) << 16 |
                      (uint64_t)(unsigned)_mm_movemask_epi8(v2) << 32 |
                      (uint64_t)(unsigned)_mm_movemask_epi8(v3) << 48;
        h = (hm & (m - 1) & ~m) != 0; /* (m - 1) & ~m: the bits below it */
      }
      if (h)
        *high = 1;
      return i + (size_t)__builtin_ctzll(m);
    }
    h |= (unsigned)_mm_movemask_epi8(hv);
    i += 64;
  }
  while (n - i >= 16)
    ES_SCAN_ROUND();
  return es_scan_bytes(s, n, i, h, high);
}
#endif

/* Bytes before the first CR or LF in s[0..n) (n when none); *high gets
 * non-zero when one of those bytes is >= 0x80 (and is left alone
 * otherwise, so that a caller can accumulate it). */
static inline size_t es_scan_eol(const unsigned char *s, size_t n, unsigned *high) {
  size_t i = 0;
  unsigned h = 0;
#if defined(ES_SCAN_SSE2)
  /* The first 64 bytes 16 at a time (most lines end there), the rest out
   * of line (es_scan_long), the short tail 16 at a time. */
  if (n >= 64) {
    ES_SCAN_ROUND();
    ES_SCAN_ROUND();
    ES_SCAN_ROUND();
    ES_SCAN_ROUND();
    return es_scan_long(s, n, i, h, high);
  }
  while (n - i >= 16)
    ES_SCAN_ROUND();
#elif defined(ES_SCAN_NEON)
  const uint8x16_t lf = vdupq_n_u8('\n'), cr = vdupq_n_u8('\r');
  for (; n - i >= 16; i += 16) {
    uint8x16_t v = vld1q_u8(s + i);
    uint8x16_t m = vorrq_u8(vceqq_u8(v, lf), vceqq_u8(v, cr));
    if (vmaxvq_u8(m))
      break; /* the byte-wise tail finds it and the high bits before it */
    h |= vmaxvq_u8(v) & 0x80u;
  }
#else
  const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
  for (; n - i >= 8; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    uint64_t a = w ^ (ones * '\n'), b = w ^ (ones * '\r');
    /* a zero byte in a or b: an LF or a CR (exact test of "has zero byte") */
    uint64_t za = (a - ones) & ~a & highs, zb = (b - ones) & ~b & highs;
    if (za | zb)
      break; /* the byte-wise tail finds it and the high bits before it */
    h |= (unsigned)((w & highs) != 0);
  }
#endif
  return es_scan_bytes(s, n, i, h, high);
}
#undef ES_SCAN_ROUND

#endif
