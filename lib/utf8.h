/*
 * utf8.h - UTF-8 for the parser (internal): a validator that finds the
 * longest valid prefix of a buffer at close to memory speed, and the state
 * of the WHATWG Encoding Standard's byte-wise UTF-8 decoder, which survives
 * chunk ends.
 *
 * The functions are inline (the parser's inner loop inlines them); their
 * tables are in utf8.c.
 */
#ifndef EVENTSOURCE_UTF8_H
#define EVENTSOURCE_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The tables are shared by every file that includes this, and hidden, so
 * the inlined loops reach them without an indirection. */
#if defined(__GNUC__)
#define ES_UTF8_HIDDEN __attribute__((visibility("hidden")))
#else
#define ES_UTF8_HIDDEN
#endif

/* The WHATWG UTF-8 decoder between bytes: continuation bytes still needed
 * (0: idle), the bounds for the next one, and the bytes of the sequence so
 * far. */
typedef struct es_u8 {
  unsigned char need, lo, hi, len;
  unsigned char buf[4];
} es_u8;

#define HIGH_BITS UINT64_C(0x8080808080808080)

/* Skips ASCII from s[i] 32 bytes at a time: returns the first i' >= i with
 * fewer than 32 bytes left or a non-ASCII byte in s[i'..i'+32). */
static inline size_t es_ascii_run32(const unsigned char *s, size_t i, size_t n) {
  while (n - i >= 32) {
    uint64_t a, b, c, d;
    memcpy(&a, s + i, 8);
    memcpy(&b, s + i + 8, 8);
    memcpy(&c, s + i + 16, 8);
    memcpy(&d, s + i + 24, 8);
    if ((a | b | c | d) & HIGH_BITS)
      break;
    i += 32;
  }
  return i;
}

/* For each lead byte: the sequence length (0: cannot start one) and the
 * range allowed for the second byte, as len | lo << 8 | hi << 16 (the
 * WHATWG decoder's "UTF-8 lower/upper boundary"). In utf8.c. */
ES_UTF8_HIDDEN extern const uint32_t es_utf8_lead[256];

/* The length of the longest prefix of s[0..n) made of complete, valid UTF-8
 * sequences, character by character (used near errors). Runs of ASCII go 32
 * or 8 bytes at a time. */
static inline size_t es_utf8_valid_slow(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i], c1;
    if (c < 0x80) {
      i++;
      if (i < n && s[i] < 0x80) { /* a run: go wide */
        i = es_ascii_run32(s, i, n);
        while (n - i >= 8) {
          uint64_t w;
          memcpy(&w, s + i, 8);
          if (w & HIGH_BITS)
            break;
          i += 8;
        }
        while (i < n && s[i] < 0x80)
          i++;
      }
      continue;
    }
    size_t left = n - i;
    if (c < 0xE0) { /* C2..DF 80..BF */
      if (c < 0xC2 || left < 2 || (s[i + 1] & 0xC0) != 0x80)
        return i;
      i += 2;
    } else if (c < 0xF0) { /* E0 A0..BF, ED 80..9F, others 80..BF; then 80..BF */
      if (left < 3)
        return i;
      c1 = s[i + 1];
      if (c1 < (c == 0xE0 ? 0xA0u : 0x80u) || c1 > (c == 0xED ? 0x9Fu : 0xBFu) ||
          (s[i + 2] & 0xC0) != 0x80)
        return i;
      i += 3;
    } else { /* F0 90..BF, F4 80..8F, F1..F3 80..BF; then 2x 80..BF */
      if (c > 0xF4 || left < 4)
        return i;
      c1 = s[i + 1];
      if (c1 < (c == 0xF0 ? 0x90u : 0x80u) || c1 > (c == 0xF4 ? 0x8Fu : 0xBFu) ||
          (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
        return i;
      i += 4;
    }
  }
  return i;
}

/* A shift-based DFA validating UTF-8 (the Encoding Standard's decoder
 * without its output): a state is a bit offset, and es_utf8_dfa[byte] holds the
 * next state for every state at that state's offset, so one step is
 * (es_utf8_dfa[b] >> state) & 63. */
enum {
  S_ACC = 0,  /* between characters */
  S_REJ = 6,  /* error (absorbing) */
  S_C1 = 12,  /* one more 80..BF */
  S_C2 = 18,  /* two more */
  S_C3 = 24,  /* three more */
  S_E0 = 30,  /* after E0: A0..BF, then one more */
  S_ED = 36,  /* after ED: 80..9F, then one more */
  S_F0 = 42,  /* after F0: 90..BF, then two more */
  S_F4 = 48   /* after F4: 80..8F, then two more */
};
/* The DFA's rows (in utf8.c). */
ES_UTF8_HIDDEN extern const uint64_t es_utf8_dfa[256];

/* Where the character containing s[i-1] starts, given the DFA state at i
 * (no error before i). */
static inline size_t es_utf8_char_start(const unsigned char *s, size_t i, unsigned st) {
  if (st == S_ACC)
    return i;
  while (i > 0 && (s[i - 1] & 0xC0) == 0x80)
    i--;
  return i ? i - 1 : 0;
}

/* The length of the longest prefix of s[0..n) made of complete, valid UTF-8
 * sequences: ASCII 32 or 16 bytes at a time, other text through the DFA 16
 * bytes at a time. A truncated character at the end is found from the final
 * state; after an error only the bytes since the last character boundary
 * before its 16-byte block are looked at again. */
static inline size_t es_utf8_valid_prefix(const unsigned char *s, size_t n) {
  size_t i = 0;
  /* only the low 6 bits of st are the state: shifting by st & 63 lets the
   * compiler use the machine shift as is */
  uint64_t st = S_ACC;
#define STEP(b) (st = es_utf8_dfa[(b)] >> (st & 63))
  for (;;) {
    if ((st & 63) == S_ACC) {
      i = es_ascii_run32(s, i, n);
      if (n - i >= 16) {
        uint64_t a, b;
        memcpy(&a, s + i, 8);
        memcpy(&b, s + i + 8, 8);
        if (!((a | b) & HIGH_BITS)) {
          i += 16;
          continue;
        }
      } else {
        if (n - i >= 8) {
          uint64_t w;
          memcpy(&w, s + i, 8);
          if (!(w & HIGH_BITS))
            i += 8;
        }
        while (i < n && s[i] < 0x80)
          i++;
      }
    }
    uint64_t st0 = st & 63;
    if (n - i >= 16) {
      const unsigned char *q = s + i;
      STEP(q[0]); STEP(q[1]); STEP(q[2]); STEP(q[3]);
      STEP(q[4]); STEP(q[5]); STEP(q[6]); STEP(q[7]);
      STEP(q[8]); STEP(q[9]); STEP(q[10]); STEP(q[11]);
      STEP(q[12]); STEP(q[13]); STEP(q[14]); STEP(q[15]);
      if ((st & 63) != S_REJ) {
        i += 16;
        continue;
      }
    } else {
      if (i == n)
        break;
      for (size_t j = i; j < n; j++)
        STEP(s[j]);
      if ((st & 63) != S_REJ) {
        i = n;
        break;
      }
    }
    /* an error in s[i..i+16): look again from the last boundary */
    size_t b = es_utf8_char_start(s, i, (unsigned)st0);
    return b + es_utf8_valid_slow(s + b, n - b);
  }
#undef STEP
  return es_utf8_char_start(s, n, (unsigned)(st & 63));
}

/* Starts a multi-byte sequence with lead byte c. Returns 0 when c cannot
 * start one (it is an error by itself). */
static inline int es_u8_start(es_u8 *d, unsigned c) {
  uint32_t t = es_utf8_lead[c];
  if ((t & 0xFF) < 2)
    return 0;
  d->need = (unsigned char)((t & 0xFF) - 1);
  d->lo = (unsigned char)(t >> 8);
  d->hi = (unsigned char)(t >> 16);
  d->buf[0] = (unsigned char)c;
  d->len = 1;
  return 1;
}


#endif
