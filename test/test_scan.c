/*
 * test_scan.c - lib/scan.h: the vector path (as built) and the portable
 * scalar path give the same answer as a byte-by-byte reference, for every
 * length and position of line ends and high bytes.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef ES_SCAN_SCALAR
#define ES_SCAN_SCALAR_BUILD 1 /* make test-scalar */
#endif
#include "scan.h"
/* the same header again, as the scalar path under other names */
#undef EVENTSOURCE_SCAN_H
#ifndef ES_SCAN_SCALAR
#define ES_SCAN_SCALAR
#endif
#define es_scan_eol es_scan_eol_scalar
#define es_scan_path es_scan_path_scalar
#define es_scan_block es_scan_block_scalar
#define es_scan_bytes es_scan_bytes_scalar
#include "scan.h"
#undef es_scan_eol
#undef es_scan_path
#undef es_scan_block
#undef es_scan_bytes

#include "support/ts_util.h"

static size_t ref_eol(const unsigned char *s, size_t n, unsigned *high) {
  size_t i = 0;
  for (; i < n && s[i] != '\n' && s[i] != '\r'; i++)
    if (s[i] >= 0x80)
      *high = 1;
  return i;
}

static void check_one(const unsigned char *s, size_t n) {
  unsigned hr = 0, hv = 0, hs = 0;
  size_t r = ref_eol(s, n, &hr);
  size_t v = es_scan_eol(s, n, &hv);
  size_t c = es_scan_eol_scalar(s, n, &hs);
  ck_assert_msg(v == r && hv == hr, "%s path: %zu/%u, reference %zu/%u (n %zu)", es_scan_path(),
                v, hv, r, hr, n);
  ck_assert_msg(c == r && hs == hr, "scalar path: %zu/%u, reference %zu/%u (n %zu)", c, hs, r,
                hr, n);
}

START_TEST(test_paths_named) {
  ck_assert_str_eq(es_scan_path_scalar(), "scalar");
#if defined(ES_SCAN_SCALAR_BUILD)
  ck_assert_str_eq(es_scan_path(), "scalar");
#elif defined(__x86_64__)
  ck_assert_str_eq(es_scan_path(), "sse2");
#elif defined(__aarch64__)
  ck_assert_str_eq(es_scan_path(), "neon");
#endif
}
END_TEST

/* Every buffer length up to 200 with one line end (LF or CR) at every
 * position, one high byte before or after it, or none. */
START_TEST(test_every_position) {
  unsigned char buf[256];
  size_t max = ts_small_scale() ? 80 : 200; /* valgrind: fewer */
  for (size_t n = 0; n <= max; n++) {
    for (size_t at = 0; at <= n; at++) {
      for (int hi = -1; hi <= (int)n; hi += n > 20 ? 7 : 1) {
        memset(buf, 'a', n);
        if (hi >= 0 && (size_t)hi < n)
          buf[hi] = 0xC3;
        if (at < n)
          buf[at] = (at & 1) ? '\r' : '\n';
        check_one(buf, n);
      }
    }
  }
}
END_TEST

/* Random bytes from an alphabet rich in line ends, high bytes and the
 * bytes around them, at random offsets (unaligned loads). */
START_TEST(test_random) {
  static const unsigned char alpha[] = {'\n', '\r', 0x80, 0xFF, 0x7F, 0x0B, 0x0C, 0x8A,
                                        0x8D, 'x',  ':',  ' ',  0x00, 0xC3, 0x0E, 0x09};
  uint64_t st = 0x9E3779B97F4A7C15ull;
  unsigned char buf[600];
  int rounds = ts_small_scale() ? 2000 : 20000;
  for (int round = 0; round < rounds; round++) {
    st ^= st << 13, st ^= st >> 7, st ^= st << 17;
    size_t n = (size_t)(st % 520);
    size_t off = (size_t)((st >> 20) % 64);
    int density = (int)((st >> 30) % 64) + 1; /* one special byte in `density` */
    for (size_t i = 0; i < n; i++) {
      st ^= st << 13, st ^= st >> 7, st ^= st << 17;
      buf[off + i] = (st % (uint64_t)density) ? (unsigned char)('a' + st % 26)
                                               : alpha[(st >> 8) % sizeof alpha];
    }
    check_one(buf + off, n);
  }
}
END_TEST

static Suite *scan_suite(void) {
  Suite *s = suite_create("scan");
  TCase *tc = tcase_create("eol");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_paths_named);
  tcase_add_test(tc, test_every_position);
  tcase_add_test(tc, test_random);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(scan_suite(), CK_NORMAL); }
